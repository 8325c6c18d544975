//! Transpose and the depth/space shuffles (DepthToSpace, SpaceToDepth), which
//! are transposes of a 6-D view of their input.

use super::view::{permuted_dims, view_tensor};
use super::{Layout, one, single, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity};
use crate::shape_err;
use crate::tensor::Tensor;

/// Parses a `Transpose` node.
pub(super) fn parse_transpose(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    Ok(Layout::Transpose {
        perm: a.ints_opt("perm")?,
    })
}

/// The `blocksize` and `mode` (true for CRD) of DepthToSpace and SpaceToDepth.
fn block_attrs(ctx: &ParseCtx<'_>) -> Result<(usize, bool)> {
    let a = ctx.attrs;
    let b = a.int_req("blocksize")?;
    if b < 1 {
        return Err(Error::attr(
            "blocksize",
            format!("must be positive, got {b}"),
        ));
    }
    let crd = match a.string("mode", "DCR")?.as_str() {
        "DCR" => false,
        "CRD" => true,
        other => return Err(Error::attr("mode", format!("'{other}' is not DCR or CRD"))),
    };
    let blocksize = usize::try_from(b).map_err(|_| Error::attr("blocksize", "is too large"))?;
    Ok((blocksize, crd))
}

/// Parses a `DepthToSpace` node.
pub(super) fn parse_depth_to_space(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let (blocksize, crd) = block_attrs(ctx)?;
    Ok(Layout::DepthToSpace { blocksize, crd })
}

/// Parses a `SpaceToDepth` node.
pub(super) fn parse_space_to_depth(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let (blocksize, crd) = block_attrs(ctx)?;
    Ok(Layout::SpaceToDepth { blocksize, crd })
}

/// The shape rule of `Transpose`.
pub(super) fn infer_transpose(
    perm: Option<&[i64]>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "data")?;
    let p = transpose_perm(x.shape.len(), perm)?;
    one(x.dtype, p.iter().map(|&i| x.shape[i]).collect())
}

/// The one `input` operand of DepthToSpace/SpaceToDepth (`op`), which must
/// be 4-D, and its dims.
fn nchw_input<'a>(
    op: &str,
    inputs: &[Option<InferInput<'a>>],
) -> Result<(&'a TensorType, [usize; 4])> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "input")?;
    let [n, c, h, w] = x.shape[..] else {
        shape_err!("{op} needs a 4-D input, got {x}")
    };
    Ok((x, [n, c, h, w]))
}

/// The shape rule of `DepthToSpace`.
pub(super) fn infer_depth_to_space(
    b: usize,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, [n, c, h, w]) = nchw_input("DepthToSpace", inputs)?;
    let bb = b
        .checked_mul(b)
        .ok_or_else(|| Error::Overflow(format!("blocksize {b}")))?;
    if c % bb != 0 {
        shape_err!("channels {c} are not a multiple of blocksize² {bb}");
    }
    let grow = |d: usize| {
        d.checked_mul(b)
            .ok_or_else(|| Error::Overflow(format!("dim {d} × {b}")))
    };
    one(x.dtype, vec![n, c / bb, grow(h)?, grow(w)?])
}

/// The shape rule of `SpaceToDepth`.
pub(super) fn infer_space_to_depth(
    b: usize,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, [n, c, h, w]) = nchw_input("SpaceToDepth", inputs)?;
    if h % b != 0 || w % b != 0 {
        shape_err!("height {h} and width {w} must be multiples of the blocksize {b}");
    }
    let c2 = b.checked_mul(b).and_then(|bb| bb.checked_mul(c));
    let c2 = c2.ok_or_else(|| Error::Overflow(format!("channels {c} × {b}²")))?;
    one(x.dtype, vec![n, c2, h / b, w / b])
}

/// Evaluates `Transpose`.
pub(super) fn eval_transpose(
    perm: Option<&[i64]>,
    x: &Tensor,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let p = transpose_perm(x.rank(), perm)?;
    single(view_tensor(
        x,
        0,
        &permuted_dims(x.shape(), &p),
        outs[0].shape.clone(),
    )?)
}

/// Evaluates `DepthToSpace`.
pub(super) fn eval_depth_to_space(
    b: usize,
    crd: bool,
    x: &Tensor,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let [n, c, h, w] = x.shape()[..] else {
        shape_err!("DepthToSpace needs a 4-D input")
    };
    let c2 = c / (b * b);
    // View the input as 6-D and transpose to [n, c2, h, b, w, b].
    let dims = if crd {
        permuted_dims(&[n, c2, b, b, h, w], &[0, 1, 4, 2, 5, 3])
    } else {
        permuted_dims(&[n, b, b, c2, h, w], &[0, 3, 4, 1, 5, 2])
    };
    single(view_tensor(x, 0, &dims, outs[0].shape.clone())?)
}

/// Evaluates `SpaceToDepth`.
pub(super) fn eval_space_to_depth(
    b: usize,
    crd: bool,
    x: &Tensor,
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let [n, c, h, w] = x.shape()[..] else {
        shape_err!("SpaceToDepth needs a 4-D input")
    };
    let six = [n, c, h / b, b, w / b, b];
    let perm: &[usize] = if crd {
        &[0, 1, 3, 5, 2, 4]
    } else {
        &[0, 3, 5, 1, 2, 4]
    };
    single(view_tensor(
        x,
        0,
        &permuted_dims(&six, perm),
        outs[0].shape.clone(),
    )?)
}

pub(super) fn transpose_perm(rank: usize, perm: Option<&[i64]>) -> Result<Vec<usize>> {
    let Some(perm) = perm else {
        return Ok((0..rank).rev().collect());
    };
    if perm.len() != rank {
        shape_err!("perm {perm:?} does not match rank {rank}");
    }
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in perm {
        let a = usize::try_from(p).ok().filter(|&a| a < rank);
        match a {
            Some(a) if !seen[a] => {
                seen[a] = true;
                out.push(a);
            }
            _ => shape_err!("perm {perm:?} is not a permutation of 0..{rank}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn transpose_permutes() {
        let x = f32s(&[2, 3]);
        check(
            Layout::Transpose { perm: None },
            &[&x],
            &t(&[3, 2], &[0f32, 3., 1., 4., 2., 5.]),
        );
        let x = f32s(&[2, 3, 4]);
        let y = run(
            &Layout::Transpose {
                perm: Some(vec![1, 2, 0]),
            },
            &[Some(&x)],
        )
        .unwrap()
        .remove(0);
        assert_eq!(y.shape(), &[3, 4, 2]);
        // y[i, j, k] = x[k, i, j]
        assert_eq!(vals(&y)[(2 * 4 + 1) * 2 + 1], (12 + 2 * 4 + 1) as f64);
        assert!(
            run(
                &Layout::Transpose {
                    perm: Some(vec![0, 0, 1])
                },
                &[Some(&x)]
            )
            .is_err()
        );
    }

    #[test]
    fn depth_space_roundtrip() {
        let x = f32s(&[1, 8, 2, 3]);
        for crd in [false, true] {
            let d2s = Layout::DepthToSpace { blocksize: 2, crd };
            let y = run(&d2s, &[Some(&x)]).unwrap().remove(0);
            assert_eq!(y.shape(), &[1, 2, 4, 6]);
            let back = run(&Layout::SpaceToDepth { blocksize: 2, crd }, &[Some(&y)])
                .unwrap()
                .remove(0);
            assert_eq!(back, x);
        }
        // output[0, 0, 0, 1] is block column 1: channel 2 in DCR order, 1 in CRD.
        let d2s = |crd| {
            run(&Layout::DepthToSpace { blocksize: 2, crd }, &[Some(&x)])
                .unwrap()
                .remove(0)
        };
        assert_eq!(vals(&d2s(false))[1], 12.0);
        let y = d2s(true);
        assert_eq!(vals(&y)[1], 6.0);
        assert_eq!(vals(&y)[6], 12.0);
    }

    #[test]
    fn tiled_transpose_matches_naive() {
        let (r, c) = (37usize, 61usize);
        let x = f32s(&[r, c]);
        let y = run(&Layout::Transpose { perm: None }, &[Some(&x)])
            .unwrap()
            .remove(0);
        let want: Vec<f64> = (0..c)
            .flat_map(|j| (0..r).map(move |i| (i * c + j) as f64))
            .collect();
        assert_eq!(vals(&y), want);
    }
}
