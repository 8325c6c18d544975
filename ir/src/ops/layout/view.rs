//! The two shared data-movement kernels: [`copy_view`] copies a strided view
//! of a buffer, [`remap`] fills an output from one index map per axis.

use crate::dispatch;
use crate::error::{Error, Result};
use crate::shape::{Shape, for_each_index, strides};
use crate::tensor::{Elem, Tensor};

// ---------------------------------------------------------------------------
// Shared kernels.

/// Copies the strided view `(offset, [(size, stride)…])` of `src` into a new
/// row-major vector. Strides are in elements and may be zero (broadcast) or
/// negative (reversed slices). Size-1 dims are dropped and dims that are
/// contiguous with their inner neighbour merged, so the innermost loop copies
/// the longest possible runs.
pub(super) fn copy_view<T: Copy>(
    src: &[T],
    offset: usize,
    dims: &[(usize, isize)],
) -> Result<Vec<T>> {
    let mut n = 1usize;
    for &(d, _) in dims {
        n = n
            .checked_mul(d)
            .ok_or_else(|| Error::Overflow(format!("view of {dims:?}")))?;
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut ds: Vec<(usize, isize)> = Vec::with_capacity(dims.len());
    for &(d, s) in dims {
        if d == 1 {
            continue;
        }
        if let Some(last) = ds.last_mut()
            && last.1 == s * d as isize
        {
            *last = (last.0 * d, s);
            continue;
        }
        ds.push((d, s));
    }
    // Every address the view touches must be inside `src`: checked once here so
    // the loops below cannot index out of bounds.
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for &(d, s) in &ds {
        let span = s as i128 * (d as i128 - 1);
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    if lo < 0 || hi >= src.len() as i128 {
        return Err(Error::Eval(format!(
            "view at {offset} with dims {dims:?} exceeds a buffer of {} elements",
            src.len()
        )));
    }
    let (inner_n, inner_s) = ds.pop().unwrap_or((1, 1));
    // A transpose of the two innermost dims (the source contiguous along the
    // second-to-last): copy it in square tiles so reads and writes both stay
    // in cache, instead of striding through the source once per element.
    let tile_rows = match ds.last() {
        Some(&(rows, 1)) if !matches!(inner_s, 0 | 1) && rows * inner_n >= 1024 => {
            ds.pop();
            Some(rows)
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; ds.len()];
    let mut base = offset as isize;
    loop {
        let b = base as usize;
        match (tile_rows, inner_s) {
            (Some(rows), s) => {
                // Small tiles: with power-of-two row lengths every row of a tile
                // maps to the same cache set, and 8 rows fit its associativity.
                const TILE: usize = 8;
                let start = out.len();
                out.resize(start + rows * inner_n, src[b]);
                let block = &mut out[start..];
                for r0 in (0..rows).step_by(TILE) {
                    let r1 = (r0 + TILE).min(rows);
                    for c0 in (0..inner_n).step_by(TILE) {
                        for c in c0..(c0 + TILE).min(inner_n) {
                            let col = base + c as isize * s;
                            for r in r0..r1 {
                                block[r * inner_n + c] = src[(col + r as isize) as usize];
                            }
                        }
                    }
                }
            }
            (None, 1) => out.extend_from_slice(&src[b..b + inner_n]),
            (None, 0) => out.extend(std::iter::repeat_n(src[b], inner_n)),
            (None, s) => {
                let mut p = base;
                for _ in 0..inner_n {
                    out.push(src[p as usize]);
                    p += s;
                }
            }
        }
        let mut k = ds.len();
        loop {
            if k == 0 {
                return Ok(out);
            }
            k -= 1;
            idx[k] += 1;
            base += ds[k].1;
            if idx[k] < ds[k].0 {
                break;
            }
            base -= ds[k].1 * ds[k].0 as isize;
            idx[k] = 0;
        }
    }
}

/// The `(size, stride)` dims of a row-major tensor of `shape` permuted by `perm`.
pub(super) fn permuted_dims(shape: &[usize], perm: &[usize]) -> Vec<(usize, isize)> {
    let st = strides(shape);
    perm.iter().map(|&p| (shape[p], st[p] as isize)).collect()
}

/// Applies [`copy_view`] to a tensor of any dtype.
pub(super) fn view_tensor(
    x: &Tensor,
    offset: usize,
    dims: &[(usize, isize)],
    shape: Shape,
) -> Result<Tensor> {
    let data = map_data!(x, v, T => copy_view(v, offset, dims)?);
    Tensor::new(shape, data)
}

/// One run of the innermost axis of a [`remap`].
pub(super) enum Run {
    Fill(usize),
    Copy(usize, usize),
}

/// Builds `out[i0, i1, …] = src[m0[i0] + m1[i1] + …]` where each axis map holds
/// element offsets (index × stride) into `src`, and `None` marks positions
/// filled with `fill` (padding, extrapolation).
pub(super) fn remap<T: Copy>(src: &[T], maps: &[Vec<Option<usize>>], fill: T) -> Result<Vec<T>> {
    let max_off: usize = maps
        .iter()
        .map(|m| m.iter().flatten().copied().max().unwrap_or(0))
        .sum();
    let n: usize = maps.iter().map(|m| m.len()).product();
    if n == 0 {
        return Ok(Vec::new());
    }
    let any_src = maps.iter().all(|m| m.iter().any(|x| x.is_some()));
    if any_src && max_off >= src.len() {
        return Err(Error::Eval(format!(
            "index map reaches {max_off} in a buffer of {} elements",
            src.len()
        )));
    }
    let Some((last, outer)) = maps.split_last() else {
        // Rank 0: one element.
        return src
            .first()
            .map(|&x| vec![x])
            .ok_or_else(|| Error::Eval("empty scalar".into()));
    };
    // Runs of the innermost map: consecutive offsets copy as one slice.
    let mut runs: Vec<Run> = Vec::new();
    for &m in last {
        match (m, runs.last_mut()) {
            (None, Some(Run::Fill(k))) => *k += 1,
            (None, _) => runs.push(Run::Fill(1)),
            (Some(o), Some(Run::Copy(s, k))) if *s + *k == o => *k += 1,
            (Some(o), _) => runs.push(Run::Copy(o, 1)),
        }
    }
    let mut out = Vec::with_capacity(n);
    let outer_shape: Vec<usize> = outer.iter().map(Vec::len).collect();
    for_each_index(&outer_shape, |idx| {
        let mut base = Some(0usize);
        for (k, &i) in idx.iter().enumerate() {
            base = match (base, outer[k][i]) {
                (Some(b), Some(o)) => Some(b + o),
                _ => None,
            };
        }
        match base {
            None => out.extend(std::iter::repeat_n(fill, last.len())),
            Some(b) => {
                for r in &runs {
                    match *r {
                        Run::Fill(k) => out.extend(std::iter::repeat_n(fill, k)),
                        Run::Copy(s, k) => out.extend_from_slice(&src[b + s..b + s + k]),
                    }
                }
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_view_checks_bounds() {
        let v = [1, 2, 3];
        assert_eq!(copy_view(&v, 2, &[(3, -1)]).unwrap(), [3, 2, 1]);
        assert!(copy_view(&v, 1, &[(3, 1)]).is_err());
        assert_eq!(
            copy_view(&v, 0, &[(2, 0), (3, 1)]).unwrap(),
            [1, 2, 3, 1, 2, 3]
        );
    }
}
