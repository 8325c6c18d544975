//! The merges of a SentencePiece vocabulary, which has scores instead: the
//! rule of Hugging Face's converter (`generate_merges` in `transformers`),
//! so a GGUF `llama` vocabulary and the `tokenizer.json` converted from the
//! same model merge alike. For every normal piece, each split into two
//! normal pieces (at a character boundary) is a merge; merges are ordered
//! by the piece's score, then by the lengths in characters of the left and
//! the right part, all descending, ties kept in id order (the left then the
//! right part's id). Only normal pieces take part: control, byte, unknown
//! and unused tokens are never merged.

use std::collections::HashMap;

use super::TokenizerError;

/// The merges (left, right, result) of the pieces `pieces` (with `normal[i]`
/// false for the tokens that take no part) ordered by `scores`.
pub fn merges(
    pieces: &[&str],
    normal: &[bool],
    scores: &[f32],
) -> Result<Vec<[u32; 3]>, TokenizerError> {
    let mut index: HashMap<&str, u32> = HashMap::new();
    for (i, p) in pieces.iter().enumerate() {
        if normal[i] {
            index.entry(p).or_insert(i as u32);
        }
        if scores[i].is_nan() {
            return Err(TokenizerError::Token {
                index: i,
                msg: "its score is NaN".into(),
            });
        }
    }
    // (score, left chars, right chars, [left, right, result])
    let mut all: Vec<(f32, usize, usize, [u32; 3])> = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if !normal[i] || index.get(p) != Some(&(i as u32)) {
            continue;
        }
        let mut local = Vec::new();
        for (cut, _) in p.char_indices().skip(1) {
            let (l, r) = p.split_at(cut);
            if let (Some(&a), Some(&b)) = (index.get(l), index.get(r)) {
                local.push((
                    scores[i],
                    l.chars().count(),
                    r.chars().count(),
                    [a, b, i as u32],
                ));
            }
        }
        local.sort_by_key(|m| (m.3[0], m.3[1]));
        all.extend(local);
    }
    all.sort_by(|x, y| y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)).then(y.2.cmp(&x.2)));
    Ok(all.into_iter().map(|m| m.3).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_score_then_lengths() {
        let pieces = ["a", "b", "c", "ab", "bc", "abc", "<s>"];
        let normal = [true, true, true, true, true, true, false];
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -0.5, 0.0];
        let m = merges(&pieces, &normal, &scores).unwrap();
        // abc (-0.5): ab+c (2,1) before a+bc (1,2); then ab (-1), bc (-2).
        assert_eq!(m, vec![[3, 2, 5], [0, 4, 5], [0, 1, 3], [1, 2, 4]]);
    }
}
