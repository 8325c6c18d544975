//! `RotaryEmbedding` (opset 23): rotates halves or interleaved pairs of the
//! leading part of each head by cached cosines and sines.

use super::{Linalg, float_dtype, ty};
use crate::dtype::{DType, rounder};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// Parses a `RotaryEmbedding` node.
pub(super) fn parse_rotary_embedding(ctx: &ParseCtx<'_>) -> Result<Linalg> {
    let a = ctx.attrs;
    let rotary_dim = a.int("rotary_embedding_dim", 0)?;
    if rotary_dim < 0 {
        return Err(Error::attr("rotary_embedding_dim", "must not be negative"));
    }
    let num_heads = match a.int_opt("num_heads")? {
        None => None,
        Some(h) if h > 0 => Some(h as usize),
        Some(h) => {
            return Err(Error::attr(
                "num_heads",
                format!("must be positive, got {h}"),
            ));
        }
    };
    Ok(Linalg::RotaryEmbedding {
        interleaved: a.int("interleaved", 0)? != 0,
        rotary_dim: rotary_dim as usize,
        num_heads,
    })
}

struct RopeDims {
    batch: usize,
    heads: usize,
    seq: usize,
    head: usize,
    rot: usize,
}

fn rope_dims(
    rotary_dim: usize,
    num_heads: Option<usize>,
    x: &[usize],
    cos: &[usize],
    sin: &[usize],
    pos: Option<&[usize]>,
) -> Result<RopeDims> {
    let (batch, heads, seq, head) = match (x.len(), num_heads) {
        (4, _) => (x[0], x[1], x[2], x[3]),
        (3, Some(h)) => {
            if !x[2].is_multiple_of(h) {
                shape_err!("hidden size {} is not a multiple of num_heads {h}", x[2]);
            }
            (x[0], h, x[1], x[2] / h)
        }
        (3, None) => shape_err!("a 3-D input needs the num_heads attribute"),
        _ => shape_err!("input must be 3-D or 4-D, got {x:?}"),
    };
    let rot = if rotary_dim == 0 { head } else { rotary_dim };
    if rot > head || !rot.is_multiple_of(2) {
        shape_err!("rotary dimension {rot} must be even and at most the head size {head}");
    }
    let want_last = rot / 2;
    if cos != sin {
        shape_err!("cos_cache {cos:?} and sin_cache {sin:?} differ in shape");
    }
    match pos {
        Some(p) => {
            if p != [batch, seq] {
                shape_err!("position_ids must be [{batch}, {seq}], got {p:?}");
            }
            if cos.len() != 2 || cos[1] != want_last {
                shape_err!(
                    "with position_ids the caches must be [max_position, {want_last}], got {cos:?}"
                );
            }
        }
        None => {
            if cos != [batch, seq, want_last] {
                shape_err!(
                    "without position_ids the caches must be [{batch}, {seq}, {want_last}], got {cos:?}"
                );
            }
        }
    }
    Ok(RopeDims {
        batch,
        heads,
        seq,
        head,
        rot,
    })
}

fn eval_rope(
    interleaved: bool,
    d: &RopeDims,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    pos: Option<&Tensor>,
) -> Result<Tensor> {
    let rt = rounder(x.dtype());
    let xv = x.to_f64_vec();
    let (cv, sv) = (cos.to_f64_vec(), sin.to_f64_vec());
    let half = d.rot / 2;
    let max_pos = cos.shape()[0];
    let posv = pos.map(|p| p.to_i64_vec());
    let rank4 = x.rank() == 4;
    let mut out = xv.clone();
    for b in 0..d.batch {
        for s in 0..d.seq {
            let row = match &posv {
                Some(p) => {
                    let id = p[b * d.seq + s];
                    if id < 0 || id as usize >= max_pos {
                        return Err(Error::Eval(format!(
                            "position id {id} is outside the cache of {max_pos} rows"
                        )));
                    }
                    id as usize
                }
                None => b * d.seq + s,
            };
            let (c, sn) = (
                &cv[row * half..(row + 1) * half],
                &sv[row * half..(row + 1) * half],
            );
            for h in 0..d.heads {
                let base = if rank4 {
                    ((b * d.heads + h) * d.seq + s) * d.head
                } else {
                    ((b * d.seq + s) * d.heads + h) * d.head
                };
                for i in 0..half {
                    let (i1, i2) = if interleaved {
                        (base + 2 * i, base + 2 * i + 1)
                    } else {
                        (base + i, base + half + i)
                    };
                    let (x1, x2) = (xv[i1], xv[i2]);
                    out[i1] = rt(rt(c[i] * x1) - rt(sn[i] * x2));
                    out[i2] = rt(rt(sn[i] * x1) + rt(c[i] * x2));
                }
            }
        }
    }
    Ok(Tensor::from_vec(x.shape().to_vec(), out)?.cast(x.dtype()))
}

/// The shape rule of `RotaryEmbedding`.
pub(super) fn infer_rotary_embedding(
    rotary_dim: usize,
    num_heads: Option<usize>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 3, 4)?;
    let (x, c, s) = (
        ty(inputs, 0, "X")?,
        ty(inputs, 1, "cos_cache")?,
        ty(inputs, 2, "sin_cache")?,
    );
    float_dtype(x.dtype, "RotaryEmbedding", "X")?;
    if c.dtype != x.dtype || s.dtype != x.dtype {
        type_err!(
            "the caches must have X's type {}, got {} and {}",
            x.dtype,
            c.dtype,
            s.dtype
        );
    }
    let pos = opt(inputs, 3).map(|p| p.ty);
    if let Some(p) = pos
        && p.dtype != DType::I64
    {
        type_err!("position_ids must be i64, got {}", p.dtype);
    }
    rope_dims(
        rotary_dim,
        num_heads,
        &x.shape,
        &c.shape,
        &s.shape,
        pos.map(|p| p.shape.as_slice()),
    )?;
    Ok(vec![x.clone()])
}

/// Evaluates `RotaryEmbedding`.
pub(super) fn eval_rotary_embedding(
    interleaved: bool,
    rotary_dim: usize,
    num_heads: Option<usize>,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let (x, c, s) = (
        req(inputs, 0, "X")?,
        req(inputs, 1, "cos_cache")?,
        req(inputs, 2, "sin_cache")?,
    );
    let pos = opt(inputs, 3);
    let d = rope_dims(
        rotary_dim,
        num_heads,
        x.shape(),
        c.shape(),
        s.shape(),
        pos.map(|p| p.shape()),
    )?;
    Ok(vec![eval_rope(interleaved, &d, x, c, s, pos)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;
    use crate::ops::OpDef;
    use crate::ops::linalg::test_util::*;
    #[test]
    fn rotary_halves_and_interleaved() {
        // One head of size 4, position 0 with cos=0, sin=1: (x1, x2) -> (-x2, x1).
        let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let cos = t(&[1, 2], &[0., 0.]);
        let sin = t(&[1, 2], &[1., 1.]);
        let pos = Tensor::from_vec(vec![1, 1], vec![0i64]).unwrap();
        let op = parse("RotaryEmbedding", 23, vec![]).unwrap();
        assert_eq!(
            run(&op, &[&x, &cos, &sin, &pos])[0],
            t(&[1, 1, 1, 4], &[-3., -4., 1., 2.])
        );
        let op = parse(
            "RotaryEmbedding",
            23,
            vec![("interleaved", AttrValue::Int(1))],
        )
        .unwrap();
        assert_eq!(
            run(&op, &[&x, &cos, &sin, &pos])[0],
            t(&[1, 1, 1, 4], &[-2., 1., -4., 3.])
        );
        let far = Tensor::from_vec(vec![1, 1], vec![5i64]).unwrap();
        assert!(
            op.eval(&[Some(&x), Some(&cos), Some(&sin), Some(&far)])
                .is_err()
        );
    }
}
