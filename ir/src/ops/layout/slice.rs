//! Slice: the attribute form of opsets before 10 and the operand form after;
//! [`slice_plan`] resolves starts, ends, axes and steps to one strided view
//! per axis (lowering uses it too).

use super::view::view_tensor;
use super::{Layout, int_list, norm_axes, one, opt_const_ints, single, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, const_input};
use crate::shape::strides;
use crate::shape_err;
use crate::tensor::Tensor;

/// Slice's operands in the attribute form of opsets before 10.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceAttrs {
    /// Start index per sliced axis.
    pub starts: Vec<i64>,
    /// End index (exclusive) per sliced axis.
    pub ends: Vec<i64>,
    /// The sliced axes (default: the first `starts.len()` axes).
    pub axes: Option<Vec<i64>>,
}

/// Parses a `Slice` node.
pub(super) fn parse_slice(ctx: &ParseCtx<'_>) -> Result<Layout> {
    let a = ctx.attrs;
    let v = ctx.opset;
    let attrs = if v < 10 {
        Some(SliceAttrs {
            starts: a
                .ints_opt("starts")?
                .ok_or_else(|| Error::attr("starts", "is required"))?,
            ends: a
                .ints_opt("ends")?
                .ok_or_else(|| Error::attr("ends", "is required"))?,
            axes: a.ints_opt("axes")?,
        })
    } else {
        None
    };
    Ok(Layout::Slice { attrs })
}

/// Slice's resolved per-axis parameters, from attributes or operands.
fn slice_params(
    attrs: Option<&SliceAttrs>,
    inputs: &[Option<InferInput<'_>>],
    shape: &[usize],
) -> Result<Vec<SliceAxis>> {
    match attrs {
        Some(a) => {
            check_arity(inputs, 1, 1)?;
            slice_plan(shape, &a.starts, &a.ends, a.axes.as_deref(), None)
        }
        None => {
            check_arity(inputs, 3, 5)?;
            let starts = int_list(const_input(inputs, 1, "starts")?, "starts")?;
            let ends = int_list(const_input(inputs, 2, "ends")?, "ends")?;
            let axes = opt_const_ints(inputs, 3, "axes")?;
            let steps = opt_const_ints(inputs, 4, "steps")?;
            slice_plan(shape, &starts, &ends, axes.as_deref(), steps.as_deref())
        }
    }
}

/// The shape rule of `Slice`.
pub(super) fn infer_slice(
    attrs: Option<&SliceAttrs>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let x = ty(inputs, 0, "data")?;
    let plan = slice_params(attrs, inputs, &x.shape)?;
    one(x.dtype, plan.iter().map(|p| p.count).collect())
}

/// Evaluates `Slice`.
pub(super) fn eval_slice(
    attrs: Option<&SliceAttrs>,
    x: &Tensor,
    ins: &[Option<InferInput<'_>>],
    outs: &[TensorType],
) -> Result<Vec<Tensor>> {
    let plan = slice_params(attrs, ins, x.shape())?;
    let st = strides(x.shape());
    let offset: usize = plan.iter().zip(&st).map(|(p, &s)| p.start * s).sum();
    let dims: Vec<(usize, isize)> = plan
        .iter()
        .zip(&st)
        .map(|(p, &s)| (p.count, p.step * s as isize))
        .collect();
    single(view_tensor(x, offset, &dims, outs[0].shape.clone())?)
}

/// One sliced axis: first index, step and count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SliceAxis {
    /// First index taken.
    pub start: usize,
    /// Distance between taken indices (negative walks backwards).
    pub step: isize,
    /// How many indices are taken.
    pub count: usize,
}

/// Resolves `Slice` parameters against a shape, exactly as the ONNX spec
/// clamps them: one [`SliceAxis`] per dim (untouched dims take everything).
/// The native lowering uses this too, so both agree by construction.
pub fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<SliceAxis>> {
    let n = starts.len();
    if ends.len() != n {
        shape_err!("starts {starts:?} and ends {ends:?} differ in length");
    }
    let axes: Vec<usize> = match axes {
        Some(a) if a.len() != n => shape_err!("axes {a:?} and starts {starts:?} differ in length"),
        Some(a) => norm_axes(a, shape.len())?,
        None if n > shape.len() => shape_err!("{n} starts for rank {}", shape.len()),
        None => (0..n).collect(),
    };
    if let Some(s) = steps
        && s.len() != n
    {
        shape_err!("steps {s:?} and starts {starts:?} differ in length");
    }
    let mut plan: Vec<SliceAxis> = shape
        .iter()
        .map(|&d| SliceAxis {
            start: 0,
            step: 1,
            count: d,
        })
        .collect();
    for (i, &ax) in axes.iter().enumerate() {
        let step = steps.map_or(1, |s| s[i]) as i128;
        if step == 0 {
            shape_err!("slice step is 0 on axis {ax}");
        }
        let d = shape[ax] as i128;
        let resolve = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
        let (mut s, mut e) = (resolve(starts[i]), resolve(ends[i]));
        let (start, count) = if step > 0 {
            s = s.clamp(0, d);
            e = e.clamp(0, d);
            (s, if e > s { (e - s - 1) / step + 1 } else { 0 })
        } else if d == 0 {
            (0, 0)
        } else {
            // Negative steps clamp the start into the dim as the spec says, like
            // onnxruntime: `start = -5` on a dim of 4 still yields index 0
            // (onnx's NumPy reference slices to nothing there instead).
            s = s.clamp(0, d - 1);
            e = e.clamp(-1, d - 1);
            (s, if s > e { (s - e - 1) / -step + 1 } else { 0 })
        };
        // A count of one never steps, so a huge step need not fit an isize.
        let step = if count <= 1 { 1 } else { step as isize };
        plan[ax] = SliceAxis {
            start: start as usize,
            step,
            count: count as usize,
        };
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {

    use crate::attrs::AttrValue;
    use crate::ops::layout::test_util::*;
    use crate::ops::layout::*;

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = f32s(&[10]);
        let s = Layout::Slice { attrs: None };
        let go = |st: i64, en: i64, step: i64| {
            let y = run(
                &s,
                &[
                    Some(&x),
                    Some(&i64s(&[st])),
                    Some(&i64s(&[en])),
                    None,
                    Some(&i64s(&[step])),
                ],
            );
            vals(&y.unwrap()[0])
        };
        assert_eq!(go(-3, 100, 1), [7.0, 8.0, 9.0]);
        assert_eq!(go(8, 1, -3), [8.0, 5.0, 2.0]);
        assert_eq!(
            go(i64::MAX, i64::MIN, -1),
            (0..10).rev().map(|i| i as f64).collect::<Vec<_>>()
        );
        assert_eq!(go(5, 2, 1), Vec::<f64>::new());
        assert_eq!(go(0, 10, i64::MAX), [0.0]);
        let x2 = f32s(&[3, 4]);
        let y = run(
            &s,
            &[
                Some(&x2),
                Some(&i64s(&[1, 1])),
                Some(&i64s(&[3, 3])),
                Some(&i64s(&[1, 0])),
            ],
        )
        .unwrap();
        assert_eq!(vals(&y[0]), [5.0, 6.0, 9.0, 10.0]);
        let old = parse(
            "Slice",
            9,
            vec![
                ("starts", AttrValue::Ints(vec![1])),
                ("ends", AttrValue::Ints(vec![-1])),
                ("axes", AttrValue::Ints(vec![1])),
            ],
            1,
        )
        .unwrap();
        assert_eq!(
            vals(&run(&old, &[Some(&x2)]).unwrap()[0]),
            [1.0, 2.0, 5.0, 6.0, 9.0, 10.0]
        );
        assert!(
            run(
                &s,
                &[
                    Some(&x),
                    Some(&i64s(&[0])),
                    Some(&i64s(&[1])),
                    None,
                    Some(&i64s(&[0]))
                ]
            )
            .is_err()
        );
    }
}
