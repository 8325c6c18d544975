//! Static shapes and the index arithmetic shared by the op implementations.

use crate::error::{Error, Result};

/// The dimensions of a tensor, outermost first. Every dim is known at compile
/// time: symbolic ONNX dims are pinned at import.
pub type Shape = Vec<usize>;

/// The largest rank the IR accepts (ONNX allows more; real models use ≤ 6).
pub const MAX_RANK: usize = 8;

/// The element count of a shape, with overflow checked.
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::Overflow(format!("element count of shape {shape:?}")))
    })
}

/// Row-major strides (in elements) of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Resolves an ONNX axis (negative counts from the end) against a rank.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::Shape(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(a as usize)
}

/// Resolves an axis for ops that insert a dimension (valid range `-rank-1..=rank`).
pub fn norm_axis_inclusive(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r + 1 } else { axis };
    if a < 0 || a > r {
        return Err(Error::Shape(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(a as usize)
}

/// The NumPy-style broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Shape> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(Error::Shape(format!(
                    "shapes {shapes:?} cannot be broadcast together"
                )));
            }
        }
    }
    Ok(out)
}

/// For each output element of `out_shape`, the flat index into a tensor of
/// `in_shape` that broadcasts to it. `in_shape` must broadcast to `out_shape`.
pub fn broadcast_index_map(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let rank = out_shape.len();
    let off = rank - in_shape.len();
    // Strides of the input as seen from the output's axes (0 on broadcast axes).
    let in_strides = strides(in_shape);
    let mut bstrides = vec![0usize; rank];
    for i in 0..in_shape.len() {
        if in_shape[i] != 1 {
            bstrides[off + i] = in_strides[i];
        }
    }
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0usize; rank];
    let mut flat = 0usize;
    for _ in 0..n {
        out.push(flat);
        // Odometer increment over the output index.
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            flat += bstrides[ax];
            if idx[ax] < out_shape[ax] {
                break;
            }
            flat -= bstrides[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    out
}

/// Iterates over all multi-indices of a shape in row-major order.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut ax = shape.len();
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast() {
        assert_eq!(
            broadcast_shapes(&[&[2, 1, 3], &[4, 1]]).unwrap(),
            vec![2, 4, 3]
        );
        assert!(broadcast_shapes(&[&[2, 3], &[3, 2]]).is_err());
        assert_eq!(broadcast_index_map(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(
            broadcast_index_map(&[2, 1], &[2, 3]),
            vec![0, 0, 0, 1, 1, 1]
        );
    }

    #[test]
    fn axes() {
        assert_eq!(norm_axis(-1, 3).unwrap(), 2);
        assert!(norm_axis(3, 3).is_err());
        assert_eq!(norm_axis_inclusive(-1, 3).unwrap(), 3);
        assert!(numel(&[usize::MAX, 2]).is_err());
    }
}
