//! Compile-time packing of a constant 8-bit weight matrix for the integer
//! GEMM of [`super::gemm`]: `B[k, n]` (`K × N`, `i8` or `u8`) becomes
//! `i8` panels in the order the dot-product kernel reads them, and the sum
//! of each column is precomputed for the zero-point correction.
//!
//! Layout: panels of `NR` columns; in a panel, groups of 4 consecutive `k`;
//! in a group, the `NR` columns, each with its 4 bytes. Byte
//! `((panel · KG + g) · NR + c) · 4 + t` is `B'[4g + t, panel · NR + c]`,
//! zero past `K` or `N`. One vector load of `4 · lanes` bytes is then
//! `lanes` columns × 4 consecutive `k`: the operand of
//! [`crate::kernel::Expr::Dot`]. A `u8` weight is stored minus 128
//! (`B' = B − 128`, which fits `i8`), its zero point moved alike.

/// A weight matrix packed for the integer GEMM.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    /// The panels' bytes (`i8`).
    pub panels: Vec<u8>,
    /// `Σ_k B'[k, n]` for each column `n` (`i32`, little-endian).
    pub col_sums: Vec<u8>,
}

/// Groups of 4 `k` covering `k` (the last one zero-padded).
pub fn groups(k: usize) -> usize {
    k.div_ceil(4)
}

/// Packs the `K × N` matrix `at(k, n)` (the weight's bytes read as `i8`
/// when `unsigned` is false, as `u8` when true) into panels of `nr`
/// columns.
pub fn pack(
    k: usize,
    n: usize,
    nr: usize,
    unsigned: bool,
    at: impl Fn(usize, usize) -> u8,
) -> Packed {
    let kg = groups(k);
    let np = n.div_ceil(nr);
    let mut panels = vec![0u8; np * kg * nr * 4];
    let mut sums = vec![0i32; n];
    let value = |kk: usize, nn: usize| -> i8 {
        let b = at(kk, nn);
        if unsigned {
            (i32::from(b) - 128) as i8
        } else {
            b as i8
        }
    };
    for nn in 0..n {
        let (panel, c) = (nn / nr, nn % nr);
        for kk in 0..k {
            let v = value(kk, nn);
            sums[nn] = sums[nn].wrapping_add(i32::from(v));
            let (g, t) = (kk / 4, kk % 4);
            panels[((panel * kg + g) * nr + c) * 4 + t] = v as u8;
        }
    }
    Packed {
        panels,
        col_sums: sums.iter().flat_map(|s| s.to_le_bytes()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_hold_four_k_per_column_and_pad_with_zeros() {
        // K = 5, N = 3, panels of 2 columns: B[k, n] = 10k + n.
        let p = pack(5, 3, 2, false, |k, n| (10 * k + n) as u8);
        assert_eq!(p.panels.len(), 2 * 2 * 2 * 4);
        // Panel 0, group 0: column 0 then column 1, k = 0..4 each.
        assert_eq!(&p.panels[0..8], &[0, 10, 20, 30, 1, 11, 21, 31]);
        // Panel 0, group 1: k = 4 then zeros.
        assert_eq!(&p.panels[8..16], &[40, 0, 0, 0, 41, 0, 0, 0]);
        // Panel 1 (column 2, column 3 absent).
        assert_eq!(&p.panels[16..24], &[2, 12, 22, 32, 0, 0, 0, 0]);
        let sums: Vec<i32> = p
            .col_sums
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(sums, vec![100, 105, 110]);
    }

    #[test]
    fn unsigned_weights_move_by_128() {
        let p = pack(1, 1, 1, true, |_, _| 200);
        assert_eq!(p.panels[0] as i8, 72);
        assert_eq!(p.col_sums, 72i32.to_le_bytes());
    }
}
