//! The single-axis kernels: `ArgMax`/`ArgMin`, `TopK` and the scans
//! `CumSum`/`CumProd`, each over its input viewed as `(outer, axis, inner)`.

use super::{ScanKind, check_scan_dtype, is_nan};
use crate::error::{Error, Result};
use crate::tensor::{Elem, Int, Tensor};
use crate::{dispatch_float, dispatch_int};

/// `(outer, n, inner)` for a single axis.
pub(super) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// True when `v` should replace `best` in an arg-reduction. NaN counts as the
/// extreme for both (NumPy's `argmax`/`argmin` return the first NaN).
pub(super) fn arg_better<T: PartialOrd + Copy>(v: T, best: T, max: bool, last: bool) -> bool {
    let (vn, bn) = (is_nan(v), is_nan(best));
    if vn || bn {
        return vn && (!bn || last);
    }
    match (max, last) {
        (true, false) => v > best,
        (true, true) => v >= best,
        (false, false) => v < best,
        (false, true) => v <= best,
    }
}

pub(super) fn arg_reduce<T: PartialOrd + Copy>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    max: bool,
    last: bool,
) -> Vec<i64> {
    let mut out = vec![0i64; outer * inner];
    let mut best: Vec<T> = Vec::with_capacity(inner);
    for o in 0..outer {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        let idx = &mut out[o * inner..(o + 1) * inner];
        best.clear();
        best.extend_from_slice(&block[..inner]);
        for j in 1..n {
            let row = &block[j * inner..(j + 1) * inner];
            for ((b, i), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
                if arg_better(v, *b, max, last) {
                    *b = v;
                    *i = j as i64;
                }
            }
        }
    }
    out
}

/// The order TopK sorts by: NaN is above every number and equal to itself
/// (NumPy's sort order); ties go to the lower index, whatever the direction.
pub(super) fn topk_order<T: PartialOrd>(
    a: &(T, usize),
    b: &(T, usize),
    largest: bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_value = match (is_nan(&a.0), is_nan(&b.0)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Both comparable (not NaN), so `partial_cmp` is `Some`.
        (false, false) => a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal),
    };
    let by_value = if largest {
        by_value.reverse()
    } else {
        by_value
    };
    by_value.then(a.1.cmp(&b.1))
}

pub(super) fn topk<T: Elem>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    k: usize,
    largest: bool,
) -> (Vec<T>, Vec<i64>) {
    let mut vals = vec![T::default(); outer * k * inner];
    let mut idxs = vec![0i64; outer * k * inner];
    let mut lane: Vec<(T, usize)> = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            lane.clear();
            lane.extend((0..n).map(|j| (x[(o * n + j) * inner + i], j)));
            // The order is total (ties broken by index), so an unstable
            // partial selection gives the same result as a full stable sort.
            if k < n && k > 0 {
                lane.select_nth_unstable_by(k - 1, |a, b| topk_order(a, b, largest));
            }
            let top = &mut lane[..k];
            top.sort_unstable_by(|a, b| topk_order(a, b, largest));
            for (j, &(v, src)) in top.iter().enumerate() {
                let at = (o * k + j) * inner + i;
                vals[at] = v;
                idxs[at] = src as i64;
            }
        }
    }
    (vals, idxs)
}

/// An inclusive or exclusive scan along the middle dim of `(outer, n, inner)`,
/// accumulating in `A`.
pub(super) fn scan<T: Elem, A: Copy>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    exclusive: bool,
    reverse: bool,
    init: A,
    step: impl Fn(A, T) -> A,
    emit: impl Fn(A) -> T,
) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let mut acc = vec![init; inner];
    for o in 0..outer {
        acc.fill(init);
        for jj in 0..n {
            let j = if reverse { n - 1 - jj } else { jj };
            let base = (o * n + j) * inner;
            let (row, dst) = (&x[base..base + inner], &mut out[base..base + inner]);
            for ((a, d), &v) in acc.iter_mut().zip(dst).zip(row) {
                if exclusive {
                    *d = emit(*a);
                    *a = step(*a, v);
                } else {
                    *a = step(*a, v);
                    *d = emit(*a);
                }
            }
        }
    }
    out
}

pub(super) fn eval_scan(
    kind: ScanKind,
    x: &Tensor,
    axis: usize,
    exclusive: bool,
    reverse: bool,
) -> Result<Tensor> {
    check_scan_dtype(kind, x.dtype())?;
    let dims = split_at_axis(x.shape(), axis);
    let sum = kind == ScanKind::Sum;
    let data = dispatch_float!(x.data(), v, T => {
        let init = if sum { 0.0 } else { 1.0 };
        T::wrap(scan(v, dims, exclusive, reverse, init, |a, e: T| if sum { a + e.to_f64() } else { a * e.to_f64() }, T::from_f64))
    }, else dispatch_int!(x.data(), v, T => {
        let init = if sum { T::ZERO } else { T::ONE };
        T::wrap(scan(v, dims, exclusive, reverse, init, |a: T, e| if sum { a.wadd(e) } else { a.wmul(e) }, |a| a))
    }, else return Err(Error::Type(format!("{} does not accept {}", kind.name(), x.dtype())))));
    Tensor::new(x.shape().to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::graph::TensorType;
    use crate::ops::reduce::test_util::*;
    use crate::ops::reduce::{ArgKind, Reduce};
    use crate::ops::{InferInput, OpDef};

    fn arg(kind: ArgKind, axis: i64, keepdims: bool, last: bool) -> Reduce {
        Reduce::Arg {
            kind,
            axis,
            keepdims,
            select_last_index: last,
        }
    }

    #[test]
    fn argmax_argmin() {
        let x = t(&[2, 2], &[2f32, 1., 3., 10.]);
        check(
            arg(ArgKind::Max, 0, true, false),
            &[&x],
            &[t(&[1, 2], &[1i64, 1])],
        );
        check(
            arg(ArgKind::Min, -1, false, false),
            &[&x],
            &[t(&[2], &[1i64, 0])],
        );
        let ties = t(&[2, 3], &[2i32, 2, 1, 5, 1, 1]);
        check(
            arg(ArgKind::Max, 1, false, false),
            &[&ties],
            &[t(&[2], &[0i64, 0])],
        );
        check(
            arg(ArgKind::Max, 1, false, true),
            &[&ties],
            &[t(&[2], &[1i64, 0])],
        );
        check(
            arg(ArgKind::Min, 1, false, true),
            &[&ties],
            &[t(&[2], &[2i64, 2])],
        );
        // NaN wins both ways; the first one unless the last is asked for.
        let n = t(&[4], &[1f32, f32::NAN, 5., f32::NAN]);
        check(
            arg(ArgKind::Max, 0, false, false),
            &[&n],
            &[Tensor::scalar(1i64)],
        );
        check(
            arg(ArgKind::Min, 0, false, false),
            &[&n],
            &[Tensor::scalar(1i64)],
        );
        check(
            arg(ArgKind::Max, 0, false, true),
            &[&n],
            &[Tensor::scalar(3i64)],
        );
        let empty = Tensor::zeros(DType::F32, vec![2, 0]).unwrap();
        assert!(
            arg(ArgKind::Max, 1, true, false)
                .eval(&[Some(&empty)])
                .is_err()
        );
        let bty = TensorType::new(DType::Bool, vec![2]);
        assert!(
            arg(ArgKind::Max, 0, true, false)
                .infer(&[Some(InferInput {
                    ty: &bty,
                    value: None
                })])
                .is_err()
        );
    }

    fn topk(axis: i64, largest: bool) -> Reduce {
        Reduce::TopK {
            k: None,
            axis,
            largest,
            sorted: true,
        }
    }

    #[test]
    fn topk_order_and_ties() {
        let x = t(&[2, 4], &[1f32, 3., 3., 2., 0., -1., 7., 0.]);
        let k = t(&[1], &[2i64]);
        check(
            topk(-1, true),
            &[&x, &k],
            &[
                t(&[2, 2], &[3f32, 3., 7., 0.]),
                t(&[2, 2], &[1i64, 2, 2, 0]),
            ],
        );
        check(
            topk(1, false),
            &[&x, &k],
            &[
                t(&[2, 2], &[1f32, 2., -1., 0.]),
                t(&[2, 2], &[0i64, 3, 1, 0]),
            ],
        );
        // Along axis 0, with an inner dim.
        let k1 = t(&[1], &[1i64]);
        check(
            topk(0, true),
            &[&x, &k1],
            &[
                t(&[1, 4], &[1f32, 3., 7., 2.]),
                t(&[1, 4], &[0i64, 0, 1, 0]),
            ],
        );
        // k = 0 gives empty outputs.
        let k0 = t(&[1], &[0i64]);
        let out = run(&topk(1, true), &[Some(&x), Some(&k0)]);
        assert_eq!(out[0].shape(), &[2, 0]);
    }

    #[test]
    fn topk_nan_is_largest() {
        let x = t(&[4], &[1f64, f64::NAN, 2., f64::NAN]);
        let k = t(&[1], &[3i64]);
        let out = run(&topk(0, true), &[Some(&x), Some(&k)]);
        let v = out[0].as_slice::<f64>().unwrap();
        assert!(v[0].is_nan() && v[1].is_nan() && v[2] == 2.);
        assert_eq!(out[1], t(&[3], &[1i64, 3, 2]));
        let out = run(&topk(0, false), &[Some(&x), Some(&k)]);
        let v = out[0].as_slice::<f64>().unwrap();
        assert!(v[0] == 1. && v[1] == 2. && v[2].is_nan());
        assert_eq!(out[1], t(&[3], &[0i64, 2, 1]));
    }

    #[test]
    fn topk_rejects_bad_k() {
        let ty = TensorType::new(DType::F32, vec![3]);
        let kty = TensorType::new(DType::I64, vec![1]);
        let (big, neg) = (t(&[1], &[4i64]), t(&[1], &[-1i64]));
        let infer = |k: Option<&Tensor>| {
            topk(0, true).infer(&[
                Some(InferInput {
                    ty: &ty,
                    value: None,
                }),
                Some(InferInput { ty: &kty, value: k }),
            ])
        };
        for k in [&big, &neg] {
            let r = infer(Some(k));
            assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
        }
        let r = infer(None);
        assert!(matches!(r, Err(Error::NotConstant { .. })), "{r:?}");
        let x = t(&[3], &[1f32, 2., 3.]);
        assert!(topk(0, true).eval(&[Some(&x), Some(&big)]).is_err());
    }

    fn scan_op(kind: ScanKind, exclusive: bool, reverse: bool) -> Reduce {
        Reduce::Scan {
            kind,
            exclusive,
            reverse,
        }
    }

    #[test]
    fn cumsum_cumprod() {
        let x = t(&[5], &[1f64, 2., 3., 4., 5.]);
        let a = Tensor::scalar(0i32);
        for (kind, exclusive, reverse, want) in [
            (ScanKind::Sum, false, false, [1f64, 3., 6., 10., 15.]),
            (ScanKind::Sum, true, false, [0., 1., 3., 6., 10.]),
            (ScanKind::Sum, false, true, [15., 14., 12., 9., 5.]),
            (ScanKind::Sum, true, true, [14., 12., 9., 5., 0.]),
            (ScanKind::Prod, true, false, [1., 1., 2., 6., 24.]),
        ] {
            check(
                scan_op(kind, exclusive, reverse),
                &[&x, &a],
                &[t(&[5], &want)],
            );
        }
        let m = t(&[2, 3], &[1i32, 2, 3, 4, 5, 6]);
        let ax = t(&[1], &[-1i64]);
        check(
            scan_op(ScanKind::Sum, false, false),
            &[&m, &ax],
            &[t(&[2, 3], &[1i32, 3, 6, 4, 9, 15])],
        );
        check(
            scan_op(ScanKind::Prod, false, false),
            &[&m, &Tensor::scalar(0i64)],
            &[t(&[2, 3], &[1i32, 2, 3, 4, 10, 18])],
        );
        assert!(
            scan_op(ScanKind::Sum, false, false)
                .eval(&[Some(&m), Some(&Tensor::scalar(2i64))])
                .is_err()
        );
        assert!(
            scan_op(ScanKind::Sum, false, false)
                .eval(&[Some(&m), Some(&Tensor::scalar(0f32))])
                .is_err()
        );
        let b = t(&[1], &[true]);
        assert!(
            scan_op(ScanKind::Sum, false, false)
                .eval(&[Some(&b), Some(&Tensor::scalar(0i64))])
                .is_err()
        );
    }
    #[test]
    fn scan_axis_may_be_a_runtime_value() {
        let (xty, aty) = (
            TensorType::new(DType::F32, vec![2, 3]),
            TensorType::new(DType::I32, vec![]),
        );
        let op = scan_op(ScanKind::Sum, false, false);
        let x = InferInput {
            ty: &xty,
            value: None,
        };
        let out = op
            .infer(&[
                Some(x),
                Some(InferInput {
                    ty: &aty,
                    value: None,
                }),
            ])
            .unwrap();
        assert_eq!(out, vec![xty.clone()]);
        let far = Tensor::scalar(-3i32);
        assert!(
            op.infer(&[
                Some(x),
                Some(InferInput {
                    ty: &aty,
                    value: Some(&far)
                })
            ])
            .is_err()
        );
        let fty = TensorType::new(DType::F32, vec![]);
        assert!(
            op.infer(&[
                Some(x),
                Some(InferInput {
                    ty: &fty,
                    value: None
                })
            ])
            .is_err()
        );
    }

    #[test]
    fn argmax_over_an_empty_axis_is_rejected_at_inference() {
        let ty = TensorType::new(DType::F32, vec![2, 0]);
        let x = InferInput {
            ty: &ty,
            value: None,
        };
        let r = arg(ArgKind::Max, 1, false, false).infer(&[Some(x)]);
        assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
        // Nothing to compute when the output is empty too.
        let out = arg(ArgKind::Min, 0, false, false)
            .infer(&[Some(x)])
            .unwrap();
        assert_eq!(out, vec![TensorType::new(DType::I64, vec![0])]);
    }
}
