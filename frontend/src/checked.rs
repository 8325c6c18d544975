//! The one place where sizes read from untrusted files become `usize`s.
//!
//! **Architecture Invariant:** every length, count, offset and dim that a
//! parser reads from a file goes through these helpers; none is used in
//! arithmetic or for an allocation before it has been checked here.

use crate::error::{Error, Result};

/// Converts a signed count/offset read from a file to `usize`, refusing
/// negative values. `what` names it for the error message.
pub fn to_usize(v: i64, what: impl FnOnce() -> String) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| Error::Graph(format!("{} is {v}, which is not a valid size", what())))
}

/// Converts an unsigned count/offset read from a file to `usize`.
pub fn u64_to_usize(v: u64, what: impl FnOnce() -> String) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| Error::Graph(format!("{} is {v}, too large for this machine", what())))
}

/// `a + b`, or an error naming the quantity.
pub fn add(a: usize, b: usize, what: impl FnOnce() -> String) -> Result<usize> {
    a.checked_add(b)
        .ok_or_else(|| Error::Graph(format!("{} overflows ({a} + {b})", what())))
}

/// `a * b`, or an error naming the quantity.
pub fn mul(a: usize, b: usize, what: impl FnOnce() -> String) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Error::Graph(format!("{} overflows ({a} × {b})", what())))
}

/// Dims read from a file as a shape: every dim non-negative, the element
/// count representable, and the rank within `max_rank`.
pub fn dims(raw: &[i64], max_rank: usize, what: &dyn Fn() -> String) -> Result<Vec<usize>> {
    if raw.len() > max_rank {
        return Err(Error::Limit {
            what: format!("the rank of {}", what()),
            value: raw.len() as u64,
            limit: max_rank as u64,
            key: "max-rank",
        });
    }
    let mut shape = Vec::with_capacity(raw.len());
    let mut n = 1usize;
    for (i, &d) in raw.iter().enumerate() {
        let d = usize::try_from(d)
            .map_err(|_| Error::Graph(format!("{} has negative dim {d} at axis {i}", what())))?;
        n = mul(n, d, || format!("the element count of {}", what()))?;
        shape.push(d);
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        let w = || "t".to_string();
        assert!(to_usize(-1, w).is_err());
        assert!(dims(&[-3], 8, &w).is_err());
        assert!(dims(&[i64::MAX, i64::MAX], 8, &w).is_err());
        assert!(dims(&[1; 9], 8, &w).is_err());
        assert_eq!(dims(&[2, 0, 3], 8, &w).unwrap(), vec![2, 0, 3]);
        assert!(add(usize::MAX, 1, w).is_err());
    }
}
