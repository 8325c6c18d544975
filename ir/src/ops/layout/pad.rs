//! Pad in its four border modes; [`pad_axis_map`] is the per-axis index map
//! the kernel (and lowering) fill the output from.

use super::view::remap;
use super::{Layout, int_list, norm_axes, one, opt_const_ints, single, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input, opt};
use crate::shape::strides;
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, shape_err, type_err};

/// How Pad fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// A constant value.
    Constant,
    /// Mirror without repeating the edge element (`[1,2,3]` → `3,2,[1,2,3],2,1`).
    Reflect,
    /// Repeat the edge element.
    Edge,
    /// Wrap around (periodic).
    Wrap,
}

impl PadMode {
    pub(super) fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }
}

/// Pad's operands in the attribute form of opsets before 11.
#[derive(Clone, Debug, PartialEq)]
pub struct PadAttrs {
    /// `[x1_begin, x2_begin, …, x1_end, x2_end, …]`; negative values crop.
    pub pads: Vec<i64>,
    /// The fill value of constant mode.
    pub value: f32,
}

/// Parses a `Pad` node.
pub(super) fn parse_pad(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let mode = match a.string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" if v >= 19 => PadMode::Wrap,
        other => {
            return Err(Error::attr(
                "mode",
                format!("'{other}' is not a pad mode of opset {v}"),
            ));
        }
    };
    let attrs = if v < 11 {
        let pads = match a.ints_opt("pads")? {
            Some(p) => p,
            None => a
                .ints_opt("paddings")?
                .ok_or_else(|| Error::attr("pads", "is required"))?,
        };
        Some(PadAttrs {
            pads,
            value: a.float("value", 0.0)?,
        })
    } else {
        None
    };
    Ok(Layout::Pad { mode, attrs })
}

/// Pad's per-axis amounts, from attributes or operands.
fn pad_params(
    attrs: Option<&PadAttrs>,
    inputs: &[Option<InferInput<'_>>],
    rank: usize,
) -> Result<Vec<(i64, i64)>> {
    match attrs {
        Some(a) => {
            check_arity(inputs, 1, 1)?;
            pad_amounts(rank, &a.pads, None)
        }
        None => {
            check_arity(inputs, 2, 4)?;
            let pads = int_list(const_input(inputs, 1, "pads")?, "pads")?;
            let axes = opt_const_ints(inputs, 3, "axes")?;
            pad_amounts(rank, &pads, axes.as_deref())
        }
    }
}

/// The shape rule of `Pad`.
pub(super) fn infer_pad(
    mode: PadMode,
    attrs: Option<&PadAttrs>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let x = ty(inputs, 0, "data")?;
    let amounts = pad_params(attrs, inputs, x.shape.len())?;
    if let Some(v) = opt(inputs, 2) {
        if v.ty.dtype != x.dtype {
            type_err!("constant_value is {} but data is {}", v.ty.dtype, x.dtype);
        }
        if v.ty.numel()? > 1 {
            shape_err!("constant_value must be a scalar, got {}", v.ty);
        }
    }
    let mut shape = Vec::with_capacity(amounts.len());
    for (&d, &(b, e)) in x.shape.iter().zip(&amounts) {
        shape.push(pad_axis(d, b, e, mode)?.3);
    }
    one(x.dtype, shape)
}

/// Evaluates `Pad`.
pub(super) fn eval_pad(
    mode: PadMode,
    attrs: Option<&PadAttrs>,
    x: &Tensor,
    inputs: &[Option<&Tensor>],
    ins: &[Option<InferInput<'_>>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let amounts = pad_params(attrs, ins, x.rank())?;
    let st = strides(x.shape());
    let maps: Vec<Vec<Option<usize>>> = amounts
        .iter()
        .enumerate()
        .map(|(ax, &(b, e))| {
            Ok(pad_axis_map(x.shape()[ax], b, e, mode)?
                .into_iter()
                .map(|m| m.map(|i| i * st[ax]))
                .collect())
        })
        .collect::<Result<_>>()?;
    let value = opt(inputs, 2);
    let data = map_data!(x, v, T => {
        let fill = match (value, attrs) {
            (Some(c), _) => c.as_slice::<T>()?.first().copied().unwrap_or_default(),
            (None, Some(a)) => T::from_f64(a.value as f64),
            (None, None) => T::default(),
        };
        remap(v, &maps, fill)?
    });
    single(Tensor::new(outs[0].shape.clone(), data)?)
}

/// The parameters of a Pad: per axis, the pad before and after (negative crops).
/// The interpreter and the native lowering both read a Pad's amounts here.
pub fn pad_amounts(rank: usize, pads: &[i64], axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>> {
    let axes: Vec<usize> = match axes {
        Some(a) => norm_axes(a, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        shape_err!("pads {pads:?} must have 2 × {} entries", axes.len());
    }
    let mut out = vec![(0i64, 0i64); rank];
    for (i, &ax) in axes.iter().enumerate() {
        out[ax] = (pads[i], pads[axes.len() + i]);
    }
    Ok(out)
}

/// Validates one padded axis: returns the start and length of the kept
/// (cropped) input range, the padding before it and the output length.
pub(super) fn pad_axis(
    dim: usize,
    before: i64,
    after: i64,
    mode: PadMode,
) -> Result<(i64, i64, i64, usize)> {
    // i128: pads may be any i64, and negating i64::MIN overflows.
    let (d, b, e) = (dim as i128, before as i128, after as i128);
    let lo = (-b).max(0);
    let len = d - (-e).max(0) - lo;
    let out = d + b + e;
    if out < 0 || len < 0 {
        shape_err!("pads ({before}, {after}) crop more than the dim {dim}");
    }
    if out > isize::MAX as i128 {
        return Err(Error::Overflow(format!("padded dim {out}")));
    }
    if len == 0 && mode != PadMode::Constant && out > 0 {
        shape_err!("cannot {} pad an empty dim", mode.name());
    }
    Ok((lo as i64, len as i64, b.max(0) as i64, out as usize))
}

/// For one padded axis, maps each output position to an input index (`None` =
/// filled). Negative pads crop first; the mode then pads the cropped range.
/// The interpreter and the native lowering both build a Pad's index maps here.
pub fn pad_axis_map(
    dim: usize,
    before: i64,
    after: i64,
    mode: PadMode,
) -> Result<Vec<Option<usize>>> {
    let (lo, len, pb, out_len) = pad_axis(dim, before, after, mode)?;
    let map = (0..out_len as i64)
        .map(|o| {
            let j = o - pb;
            let j = if (0..len).contains(&j) {
                Some(j)
            } else {
                match mode {
                    PadMode::Constant => None,
                    PadMode::Edge => Some(j.clamp(0, len - 1)),
                    PadMode::Wrap => Some(j.rem_euclid(len)),
                    PadMode::Reflect => {
                        if len == 1 {
                            Some(0)
                        } else {
                            let period = 2 * (len - 1);
                            let r = j.rem_euclid(period);
                            Some(if r >= len { period - r } else { r })
                        }
                    }
                }
            };
            j.map(|j| (j + lo) as usize)
        })
        .collect();
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;
    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn pad_modes() {
        let x = t(&[3], &[1f32, 2., 3.]);
        let pad = |mode: PadMode, b: i64, e: i64| {
            let op = Layout::Pad { mode, attrs: None };
            vals(
                &run(
                    &op,
                    &[Some(&x), Some(&i64s(&[b, e])), Some(&Tensor::scalar(9f32))],
                )
                .unwrap()[0],
            )
        };
        assert_eq!(pad(PadMode::Constant, 2, 1), [9.0, 9.0, 1.0, 2.0, 3.0, 9.0]);
        assert_eq!(
            pad(PadMode::Reflect, 3, 3),
            [2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]
        );
        assert_eq!(pad(PadMode::Edge, 2, 1), [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
        assert_eq!(
            pad(PadMode::Wrap, 2, 4),
            [2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
        );
        assert_eq!(pad(PadMode::Constant, -1, 1), [2.0, 3.0, 9.0]);
        let old = parse(
            "Pad",
            2,
            vec![
                ("pads", AttrValue::Ints(vec![0, 1, 0, 0])),
                ("value", AttrValue::Float(5.0)),
            ],
            1,
        )
        .unwrap();
        check(old, &[&t(&[1, 2], &[1i32, 2])], &t(&[1, 3], &[5i32, 1, 2]));
        // Axes input: pad only the last axis.
        let op = Layout::Pad {
            mode: PadMode::Constant,
            attrs: None,
        };
        let y = run(
            &op,
            &[
                Some(&f32s(&[2, 2])),
                Some(&i64s(&[1, 0])),
                None,
                Some(&i64s(&[-1])),
            ],
        )
        .unwrap();
        assert_eq!(vals(&y[0]), [0.0, 0.0, 1.0, 0.0, 2.0, 3.0]);
        let empty = f32s(&[0]);
        let op = Layout::Pad {
            mode: PadMode::Reflect,
            attrs: None,
        };
        assert!(run(&op, &[Some(&empty), Some(&i64s(&[1, 0]))]).is_err());
    }
}
