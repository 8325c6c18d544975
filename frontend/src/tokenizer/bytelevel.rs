//! GPT-2's byte-to-character map: byte-level BPE vocabularies spell every
//! byte as a printable character (`Ġ` for a space), and the table stores
//! the raw bytes instead.

use std::collections::HashMap;

/// The character GPT-2 writes for each byte.
pub(crate) fn byte_chars() -> [char; 256] {
    let mut map = ['\0'; 256];
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256u32;
    for b in 0..256u32 {
        let c = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        map[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    map
}

/// The inverse of [`byte_chars`].
pub(crate) fn char_bytes() -> HashMap<char, u8> {
    byte_chars()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// The raw bytes of a byte-level token spelled with [`byte_chars`], or the
/// first character that is not in the map.
pub(crate) fn decode(map: &HashMap<char, u8>, s: &str) -> Result<Vec<u8>, char> {
    s.chars().map(|c| map.get(&c).copied().ok_or(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_map() {
        let m = byte_chars();
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'a' as usize], 'a');
        let inv = char_bytes();
        assert_eq!(inv.len(), 256);
        assert_eq!(decode(&inv, "Ġhello"), Ok(b" hello".to_vec()));
        assert_eq!(decode(&inv, "x\u{4e2d}"), Err('\u{4e2d}'));
    }
}
