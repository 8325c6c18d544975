//! The `Reduce*` kernels: the reduced-axes mask, the coalesced plan that
//! walks a view block by block, and the per-type folds (floats in `f64`,
//! integer sums and products wrapping through `i128`).

use super::{ReduceKind, is_nan};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::{Shape, norm_axis};
use crate::tensor::{Elem, Int, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};
use half::{bf16, f16};

/// The identities of `ReduceMax`/`ReduceMin` for each element type.
pub(super) trait Extremes: Elem {
    /// The smallest value (identity of max).
    const LOWEST: Self;
    /// The largest value (identity of min).
    const HIGHEST: Self;
}

macro_rules! extremes {
    ($($t:ty: $lo:expr, $hi:expr;)*) => {$(
        impl Extremes for $t {
            const LOWEST: Self = $lo;
            const HIGHEST: Self = $hi;
        }
    )*};
}
extremes! {
    f32: f32::NEG_INFINITY, f32::INFINITY;
    f64: f64::NEG_INFINITY, f64::INFINITY;
    f16: f16::NEG_INFINITY, f16::INFINITY;
    bf16: bf16::NEG_INFINITY, bf16::INFINITY;
    i8: i8::MIN, i8::MAX;
    u8: u8::MIN, u8::MAX;
    i16: i16::MIN, i16::MAX;
    u16: u16::MIN, u16::MAX;
    i32: i32::MIN, i32::MAX;
    u32: u32::MIN, u32::MAX;
    i64: i64::MIN, i64::MAX;
    u64: u64::MIN, u64::MAX;
    bool: false, true;
}

/// Exact widening of the integer types, for sums and products that wrap in
/// the element type and means that must not.
pub(super) trait Wide: Int {
    /// The value as `i128` (exact for every integer type).
    fn widen(self) -> i128;
    /// The low bits of `v`, i.e. `v` wrapped into the type.
    fn narrow(v: i128) -> Self;
}

macro_rules! wide {
    ($($t:ty),*) => {$(
        impl Wide for $t {
            fn widen(self) -> i128 {
                self as i128
            }
            fn narrow(v: i128) -> Self {
                v as $t
            }
        }
    )*};
}
wide!(i8, u8, i16, u16, i32, u32, i64, u64);

// ---------------------------------------------------------------------------
// Reductions.

/// Resolves the reduced axes of a `Reduce*` op into a per-dim mask.
///
/// `axes_attr` is the attribute form, `axes_input` the input form; with
/// neither (or an empty list) every axis is reduced, unless
/// `noop_with_empty_axes` asks for the empty set of axes.
pub(super) fn reduce_mask(
    rank: usize,
    axes_attr: Option<&[i64]>,
    axes_input: Option<&Tensor>,
    noop_with_empty_axes: bool,
) -> Result<Vec<bool>> {
    let axes: Vec<i64> = match (axes_attr, axes_input) {
        (Some(a), _) => a.to_vec(),
        (None, Some(t)) => {
            if t.dtype() != DType::I64 {
                return Err(Error::Type(format!(
                    "axes must be int64, got {}",
                    t.dtype()
                )));
            }
            if t.rank() > 1 {
                return Err(Error::Shape(format!(
                    "axes must be 1-D, got shape {:?}",
                    t.shape()
                )));
            }
            t.to_i64_vec()
        }
        (None, None) => vec![],
    };
    if axes.is_empty() {
        return Ok(vec![!noop_with_empty_axes; rank]);
    }
    let mut mask = vec![false; rank];
    for &a in &axes {
        let ax = norm_axis(a, rank)?;
        if mask[ax] {
            return Err(Error::Shape(format!(
                "axis {a} is listed more than once in axes {axes:?}"
            )));
        }
        mask[ax] = true;
    }
    Ok(mask)
}

/// The output shape of a reduction.
pub(super) fn reduced_shape(shape: &[usize], mask: &[bool], keepdims: bool) -> Shape {
    shape
        .iter()
        .zip(mask)
        .filter_map(|(&d, &r)| match (r, keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// A reduction over a coalesced view of the input: `dims` are `(size, reduced)`
/// with no size-1 dims and no two neighbours of the same kind.
pub(super) struct Plan {
    dims: Vec<(usize, bool)>,
    /// Elements of the output (product of the kept dims).
    out_len: usize,
    /// Elements folded into each output (product of the reduced dims).
    count: usize,
}

impl Plan {
    fn new(shape: &[usize], mask: &[bool]) -> Plan {
        let mut dims: Vec<(usize, bool)> = Vec::with_capacity(shape.len());
        let (mut out_len, mut count) = (1usize, 1usize);
        for (&d, &r) in shape.iter().zip(mask) {
            if r {
                count *= d;
            } else {
                out_len *= d;
            }
            if d == 1 {
                continue;
            }
            match dims.last_mut() {
                Some((n, lr)) if *lr == r => *n *= d,
                _ => dims.push((d, r)),
            }
        }
        Plan {
            dims,
            out_len,
            count,
        }
    }

    /// Folds every input element into its output's accumulator:
    /// `acc[o] = f(acc[o], x, o)`. `x` must hold the plan's input shape.
    fn run<T: Copy, A: Copy>(&self, x: &[T], acc: &mut [A], mut f: impl FnMut(A, T, usize) -> A) {
        if x.is_empty() || acc.is_empty() {
            return;
        }
        let Some((&(last, last_reduced), outer)) = self.dims.split_last() else {
            // Every dim has size 1: one element, one output.
            acc[0] = f(acc[0], x[0], 0);
            return;
        };
        // Output strides of the outer dims (0 on reduced ones), innermost first.
        let mut out_strides = vec![0usize; outer.len()];
        let mut s = if last_reduced { 1 } else { last };
        for (i, &(d, r)) in outer.iter().enumerate().rev() {
            if !r {
                out_strides[i] = s;
                s *= d;
            }
        }
        let mut idx = vec![0usize; outer.len()];
        let (mut in_base, mut out_base) = (0usize, 0usize);
        loop {
            let row = &x[in_base..in_base + last];
            if last_reduced {
                let mut a = acc[out_base];
                for &v in row {
                    a = f(a, v, out_base);
                }
                acc[out_base] = a;
            } else {
                let out = &mut acc[out_base..out_base + last];
                for (i, (a, &v)) in out.iter_mut().zip(row).enumerate() {
                    *a = f(*a, v, out_base + i);
                }
            }
            in_base += last;
            // Odometer over the outer dims, once per row.
            let mut ax = outer.len();
            loop {
                if ax == 0 {
                    return;
                }
                ax -= 1;
                idx[ax] += 1;
                out_base += out_strides[ax];
                if idx[ax] < outer[ax].0 {
                    break;
                }
                out_base -= out_strides[ax] * idx[ax];
                idx[ax] = 0;
            }
        }
    }
}

/// `ReduceMax`/`ReduceMin` on any dtype, natively (exact for 64-bit integers);
/// NaN propagates and −0 < +0 (IEEE 754-2019 `maximum`/`minimum`, what the
/// generated code does).
pub(super) fn reduce_extreme<T: Extremes>(x: &[T], plan: &Plan, max: bool) -> Vec<T> {
    let init = if max { T::LOWEST } else { T::HIGHEST };
    let mut acc = vec![init; plan.out_len];
    // Of two equal zeros, the one whose sign is the right extreme wins
    // (integer zeros have no sign, so nothing changes for them).
    let zero_better = |a: T, v: T| {
        let (fa, fv) = (a.to_f64(), v.to_f64());
        fa == 0.0 && fv == 0.0 && fa.is_sign_negative() == max && fv.is_sign_negative() != max
    };
    plan.run(x, &mut acc, |a, v, _| {
        let better = if max { v > a } else { v < a } || zero_better(a, v);
        if is_nan(a) || !(better || is_nan(v)) {
            a
        } else {
            v
        }
    });
    acc
}

/// The `f64` reductions (every float kind; L2, LogSum and LogSumExp on integers).
pub(super) fn reduce_f64<T: Extremes>(kind: ReduceKind, x: &[T], plan: &Plan) -> Vec<T> {
    let mut acc = vec![if kind == ReduceKind::Prod { 1.0 } else { 0.0 }; plan.out_len];
    let f = |v: T| v.to_f64();
    match kind {
        ReduceKind::Sum | ReduceKind::Mean | ReduceKind::LogSum => {
            plan.run(x, &mut acc, |a, v, _| a + f(v))
        }
        ReduceKind::Prod => plan.run(x, &mut acc, |a, v, _| a * f(v)),
        ReduceKind::L1 => plan.run(x, &mut acc, |a, v, _| a + f(v).abs()),
        ReduceKind::L2 | ReduceKind::SumSquare => plan.run(x, &mut acc, |a, v, _| a + f(v) * f(v)),
        ReduceKind::LogSumExp => {
            // Shift by the largest finite value so exp cannot overflow; with
            // none (all infinite, NaN or an empty set) the shift is 0 and the
            // infinities give the right limits (-inf or +inf).
            let mut shift = vec![f64::NEG_INFINITY; plan.out_len];
            plan.run(x, &mut shift, |m, v, _| {
                if f(v).is_finite() && f(v) > m {
                    f(v)
                } else {
                    m
                }
            });
            for s in &mut shift {
                if !s.is_finite() {
                    *s = 0.0;
                }
            }
            plan.run(x, &mut acc, |a, v, o| a + (f(v) - shift[o]).exp());
            return acc
                .iter()
                .zip(&shift)
                .map(|(&a, &s)| T::from_f64(a.ln() + s))
                .collect();
        }
        ReduceKind::Max | ReduceKind::Min => {
            return reduce_extreme(x, plan, kind == ReduceKind::Max);
        }
    }
    let n = plan.count as f64;
    let finish = |a: f64| match kind {
        // An empty set gives 0 / 0 = NaN, like NumPy.
        ReduceKind::Mean => a / n,
        ReduceKind::L2 => a.sqrt(),
        ReduceKind::LogSum => a.ln(),
        ReduceKind::Sum
        | ReduceKind::Prod
        | ReduceKind::L1
        | ReduceKind::SumSquare
        | ReduceKind::LogSumExp
        | ReduceKind::Max
        | ReduceKind::Min => a,
    };
    acc.into_iter().map(|a| T::from_f64(finish(a))).collect()
}

/// The exact integer reductions: wrapping sums and products, and the mean
/// of the exact sum truncated toward zero.
pub(super) fn reduce_int<T: Wide + Extremes>(kind: ReduceKind, x: &[T], plan: &Plan) -> Vec<T> {
    let mut acc = vec![if kind == ReduceKind::Prod { 1i128 } else { 0 }; plan.out_len];
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => {
            plan.run(x, &mut acc, |a, v, _| a.wrapping_add(v.widen()))
        }
        ReduceKind::Prod => plan.run(x, &mut acc, |a, v, _| a.wrapping_mul(v.widen())),
        ReduceKind::L1 => plan.run(x, &mut acc, |a, v, _| {
            a.wrapping_add(v.widen().wrapping_abs())
        }),
        ReduceKind::SumSquare => plan.run(x, &mut acc, |a, v, _| {
            let v = v.widen();
            a.wrapping_add(v.wrapping_mul(v))
        }),
        ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp => {
            return reduce_f64(kind, x, plan);
        }
        ReduceKind::Max | ReduceKind::Min => {
            return reduce_extreme(x, plan, kind == ReduceKind::Max);
        }
    }
    if kind == ReduceKind::Mean {
        // NumPy's mean of an empty set is NaN, which has no integer value;
        // 0 is as good as any and never traps.
        let n = plan.count as i128;
        for a in &mut acc {
            *a = if n == 0 { 0 } else { *a / n };
        }
    }
    acc.into_iter().map(T::narrow).collect()
}

pub(super) fn eval_reduce(
    kind: ReduceKind,
    x: &Tensor,
    mask: &[bool],
    keepdims: bool,
) -> Result<Tensor> {
    if !kind.accepts(x.dtype()) {
        return Err(Error::Type(format!(
            "{} does not accept {}",
            kind.name(),
            x.dtype()
        )));
    }
    let plan = Plan::new(x.shape(), mask);
    let shape = reduced_shape(x.shape(), mask, keepdims);
    let data = if kind.is_extreme() {
        dispatch!(x.data(), v, T => T::wrap(reduce_extreme(v, &plan, kind == ReduceKind::Max)))
    } else {
        dispatch_float!(x.data(), v, T => T::wrap(reduce_f64(kind, v, &plan)),
        else dispatch_int!(x.data(), v, T => T::wrap(reduce_int(kind, v, &plan)),
            else return Err(Error::Type(format!("{} does not accept {}", kind.name(), x.dtype())))))
    };
    Tensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::TensorType;
    use crate::ops::reduce::Reduce;
    use crate::ops::reduce::test_util::*;
    use crate::ops::{InferInput, OpDef};
    use crate::shape::numel;
    use crate::shape::{for_each_index, strides};
    #[test]
    fn sum_keepdims_and_not() {
        let x = t(&[2, 3], &[1f32, 2., 3., 4., 5., 6.]);
        check(
            red(ReduceKind::Sum, true, false),
            &[&x, &axes(&[1])],
            &[t(&[2, 1], &[6f32, 15.])],
        );
        check(
            red(ReduceKind::Sum, false, false),
            &[&x, &axes(&[-2])],
            &[t(&[3], &[5f32, 7., 9.])],
        );
        // No axes: everything.
        let op = red(ReduceKind::Sum, false, false);
        assert_eq!(run(&op, &[Some(&x)]), vec![Tensor::scalar(21f32)]);
        // Empty axes input without noop: everything, kept as [1, 1].
        check(
            red(ReduceKind::Sum, true, false),
            &[&x, &axes(&[])],
            &[t(&[1, 1], &[21f32])],
        );
    }

    #[test]
    fn attribute_axes() {
        let x = t(&[2, 2], &[1f32, 2., 3., 4.]);
        let op = Reduce::Reduce {
            kind: ReduceKind::Mean,
            axes: Some(vec![0]),
            keepdims: false,
            noop_with_empty_axes: false,
        };
        check(op, &[&x], &[t(&[2], &[2f32, 3.])]);
        let all = Reduce::Reduce {
            kind: ReduceKind::Prod,
            axes: Some(vec![]),
            keepdims: true,
            noop_with_empty_axes: false,
        };
        check(all, &[&x], &[t(&[1, 1], &[24f32])]);
    }

    #[test]
    fn noop_applies_the_elementwise_part() {
        let x = t(&[3], &[-2f32, 3., 0.5]);
        check(
            red(ReduceKind::SumSquare, true, true),
            &[&x, &axes(&[])],
            &[t(&[3], &[4f32, 9., 0.25])],
        );
        check(
            red(ReduceKind::L1, true, true),
            &[&x],
            &[t(&[3], &[2f32, 3., 0.5])],
        );
        check(
            red(ReduceKind::Sum, false, true),
            &[&x],
            std::slice::from_ref(&x),
        );
        check(
            red(ReduceKind::LogSumExp, false, true),
            &[&x],
            std::slice::from_ref(&x),
        );
    }

    #[test]
    fn empty_set_identities() {
        let x = Tensor::zeros(DType::F32, vec![2, 0, 4]).unwrap();
        let a = axes(&[1]);
        let first = |k| f32s(&run(&red(k, true, false), &[Some(&x), Some(&a)])[0])[0];
        assert_eq!(first(ReduceKind::Sum), 0.);
        assert_eq!(first(ReduceKind::Prod), 1.);
        assert_eq!(first(ReduceKind::Max), f32::NEG_INFINITY);
        assert_eq!(first(ReduceKind::Min), f32::INFINITY);
        assert_eq!(first(ReduceKind::L1), 0.);
        assert_eq!(first(ReduceKind::L2), 0.);
        assert_eq!(first(ReduceKind::SumSquare), 0.);
        assert_eq!(first(ReduceKind::LogSum), f32::NEG_INFINITY);
        assert_eq!(first(ReduceKind::LogSumExp), f32::NEG_INFINITY);
        assert!(first(ReduceKind::Mean).is_nan());
        let out = run(&red(ReduceKind::Sum, true, false), &[Some(&x), Some(&a)]);
        assert_eq!(out[0].shape(), &[2, 1, 4]);

        let b = Tensor::zeros(DType::Bool, vec![2, 0]).unwrap();
        let a1 = axes(&[1]);
        check(
            red(ReduceKind::Max, false, false),
            &[&b, &a1],
            &[t(&[2], &[false, false])],
        );
        check(
            red(ReduceKind::Min, false, false),
            &[&b, &a1],
            &[t(&[2], &[true, true])],
        );
        let i = Tensor::zeros(DType::I32, vec![0, 2]).unwrap();
        check(
            red(ReduceKind::Max, false, false),
            &[&i, &axes(&[0])],
            &[t(&[2], &[i32::MIN, i32::MIN])],
        );
        // A zero-length kept axis gives an empty output.
        let z = Tensor::zeros(DType::F32, vec![2, 0, 4]).unwrap();
        let out = run(
            &red(ReduceKind::Sum, true, false),
            &[Some(&z), Some(&axes(&[2]))],
        );
        assert_eq!(out[0].shape(), &[2, 0, 1]);
    }

    #[test]
    fn max_min_nan_and_bool() {
        let x = t(&[2, 2], &[1f32, f32::NAN, 3., -1.]);
        let got = f32s(
            &run(
                &red(ReduceKind::Max, false, false),
                &[Some(&x), Some(&axes(&[1]))],
            )[0],
        );
        assert!(got[0].is_nan());
        assert_eq!(got[1], 3.);
        let got = f32s(
            &run(
                &red(ReduceKind::Min, false, false),
                &[Some(&x), Some(&axes(&[0]))],
            )[0],
        );
        assert_eq!(got[0], 1.);
        assert!(got[1].is_nan());
        let b = t(&[2, 2], &[true, false, false, false]);
        check(
            red(ReduceKind::Max, false, false),
            &[&b, &axes(&[1])],
            &[t(&[2], &[true, false])],
        );
        check(
            red(ReduceKind::Min, false, false),
            &[&b, &axes(&[1])],
            &[t(&[2], &[false, false])],
        );
    }

    #[test]
    fn integer_reductions() {
        let x = t(&[2, 2], &[i32::MAX, 1, -7, 2]);
        // Wraps like C.
        check(
            red(ReduceKind::Sum, false, false),
            &[&x, &axes(&[1])],
            &[t(&[2], &[i32::MIN, -5])],
        );
        // The mean of the exact sum, truncated toward zero.
        check(
            red(ReduceKind::Mean, false, false),
            &[&x, &axes(&[1])],
            &[t(&[2], &[1 << 30, -2])],
        );
        check(
            red(ReduceKind::L1, false, false),
            &[&x, &axes(&[0])],
            &[t(&[2], &[i32::MAX.wrapping_add(7), 3])],
        );
        let u = t(&[3], &[3u64, 4, 12]);
        check(
            red(ReduceKind::L2, false, false),
            &[&u],
            &[Tensor::scalar(13u64)],
        );
        check(
            red(ReduceKind::Prod, false, false),
            &[&u],
            &[Tensor::scalar(144u64)],
        );
        let big = t(&[2], &[i64::MAX - 1, i64::MAX]);
        check(
            red(ReduceKind::Max, false, false),
            &[&big],
            &[Tensor::scalar(i64::MAX)],
        );
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let x = t(
            &[2, 2],
            &[1000f32, 1000., f32::NEG_INFINITY, f32::NEG_INFINITY],
        );
        let got = f32s(
            &run(
                &red(ReduceKind::LogSumExp, false, false),
                &[Some(&x), Some(&axes(&[1]))],
            )[0],
        );
        assert!((got[0] - (1000. + 2f32.ln())).abs() < 1e-3);
        assert_eq!(got[1], f32::NEG_INFINITY);
        let x = t(&[2], &[f32::INFINITY, 1.]);
        assert_eq!(
            f32s(&run(&red(ReduceKind::LogSumExp, false, false), &[Some(&x)])[0]),
            vec![f32::INFINITY]
        );
    }

    #[test]
    fn half_types() {
        let x = t(&[2], &[f16::from_f32(1.5), f16::from_f32(2.0)]);
        check(
            red(ReduceKind::Prod, false, false),
            &[&x],
            &[Tensor::scalar(f16::from_f32(3.0))],
        );
        let x = t(&[2], &[bf16::from_f32(1.5), bf16::from_f32(2.0)]);
        check(
            red(ReduceKind::Sum, false, false),
            &[&x],
            &[Tensor::scalar(bf16::from_f32(3.5))],
        );
    }

    /// The blocked kernel against a per-element reference, over shapes whose
    /// reduced and kept axes interleave (including size-1 and scalar cases).
    #[test]
    fn plan_matches_naive() {
        let shapes: [&[usize]; 6] = [
            &[],
            &[5],
            &[2, 3, 4],
            &[3, 1, 2, 5],
            &[2, 2, 3, 2],
            &[1, 4, 1],
        ];
        for shape in shapes {
            let n = numel(shape).unwrap();
            let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
            let xt = t(shape, &x);
            for m in 0..(1usize << shape.len()) {
                let mask: Vec<bool> = (0..shape.len()).map(|i| m & (1 << i) != 0).collect();
                let out_shape = reduced_shape(shape, &mask, true);
                let mut want = vec![0.0; numel(&out_shape).unwrap()];
                let ost = strides(&out_shape);
                let mut flat = 0;
                for_each_index(shape, |idx| {
                    let o: usize = idx
                        .iter()
                        .zip(&mask)
                        .zip(&ost)
                        .map(|((&i, &r), &s)| if r { 0 } else { i * s })
                        .sum();
                    want[o] += x[flat];
                    flat += 1;
                });
                let got = eval_reduce(ReduceKind::Sum, &xt, &mask, true).unwrap();
                assert_eq!(got, t(&out_shape, &want), "shape {shape:?} mask {mask:?}");
            }
        }
    }

    #[test]
    fn reduce_infer_errors() {
        let ty = TensorType::new(DType::F32, vec![2, 3]);
        let x = InferInput {
            ty: &ty,
            value: None,
        };
        let ax = axes(&[1, -1]);
        let aty = TensorType::new(DType::I64, vec![2]);
        let op = red(ReduceKind::Sum, true, false);
        let dup = op.infer(&[
            Some(x),
            Some(InferInput {
                ty: &aty,
                value: Some(&ax),
            }),
        ]);
        assert!(matches!(dup, Err(Error::Shape(_))), "{dup:?}");
        let runtime = op.infer(&[
            Some(x),
            Some(InferInput {
                ty: &aty,
                value: None,
            }),
        ]);
        assert!(
            matches!(runtime, Err(Error::NotConstant { input: 1, .. })),
            "{runtime:?}"
        );
        let bty = TensorType::new(DType::Bool, vec![2]);
        let bad = op.infer(&[Some(InferInput {
            ty: &bty,
            value: None,
        })]);
        assert!(matches!(bad, Err(Error::Type(_))), "{bad:?}");
        let i8ty = TensorType::new(DType::I8, vec![2]);
        assert!(
            red(ReduceKind::Max, true, false)
                .infer(&[Some(InferInput {
                    ty: &i8ty,
                    value: None
                })])
                .is_ok()
        );
        let far = axes(&[2]);
        let oob = op.infer(&[
            Some(x),
            Some(InferInput {
                ty: &TensorType::new(DType::I64, vec![1]),
                value: Some(&far),
            }),
        ]);
        assert!(oob.is_err());
    }
}
