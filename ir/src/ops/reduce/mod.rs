//! Reductions (`Reduce*`), the arg-reductions `ArgMax`/`ArgMin`, `TopK` and
//! the scans `CumSum`/`CumProd`.
//!
//! Every reduction runs over a coalesced view of its input: adjacent axes that
//! are all reduced (or all kept) merge into one, size-1 axes vanish, and the
//! kernel walks the remaining dims block by block with a tight loop over the
//! innermost one (a contiguous run to fold, or a row to accumulate into a row
//! of the output), so no element pays for index decoding.
//!
//! Floats accumulate in `f64` and round once to the tensor's type. Integer
//! sums and products wrap like C (they are computed in `i128` and narrowed,
//! which gives the same bits as wrapping in the element type); integer
//! `ReduceL2`/`ReduceLogSum`/`ReduceLogSumExp` go through `f64` and truncate,
//! like the NumPy reference's `astype`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, const_input, fmt_list, opt, req};
use crate::shape::{Shape, norm_axis, numel};
use crate::tensor::{Elem, Int, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};
use half::{bf16, f16};

/// The reduction a `Reduce*` op applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// `ReduceSum`: Σx (empty set: 0).
    Sum,
    /// `ReduceMean`: Σx / n (empty set: NaN for floats).
    Mean,
    /// `ReduceMax`: NaN-propagating maximum (empty set: -inf or the type's minimum).
    Max,
    /// `ReduceMin`: NaN-propagating minimum (empty set: +inf or the type's maximum).
    Min,
    /// `ReduceProd`: Πx (empty set: 1).
    Prod,
    /// `ReduceL1`: Σ|x|.
    L1,
    /// `ReduceL2`: √Σx².
    L2,
    /// `ReduceLogSum`: ln Σx (empty set: -inf).
    LogSum,
    /// `ReduceLogSumExp`: ln Σeˣ, computed with the usual max shift (empty set: -inf).
    LogSumExp,
    /// `ReduceSumSquare`: Σx².
    SumSquare,
}

impl ReduceKind {
    const ALL: [ReduceKind; 10] = [
        ReduceKind::Sum,
        ReduceKind::Mean,
        ReduceKind::Max,
        ReduceKind::Min,
        ReduceKind::Prod,
        ReduceKind::L1,
        ReduceKind::L2,
        ReduceKind::LogSum,
        ReduceKind::LogSumExp,
        ReduceKind::SumSquare,
    ];

    /// The ONNX op type.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::LogSum => "ReduceLogSum",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::SumSquare => "ReduceSumSquare",
        }
    }

    /// The first opset in which `axes` is an input rather than an attribute
    /// (and `noop_with_empty_axes` exists).
    fn axes_input_since(self) -> i64 {
        match self {
            ReduceKind::Sum => 13,
            ReduceKind::Mean
            | ReduceKind::Max
            | ReduceKind::Min
            | ReduceKind::Prod
            | ReduceKind::L1
            | ReduceKind::L2
            | ReduceKind::LogSum
            | ReduceKind::LogSumExp
            | ReduceKind::SumSquare => 18,
        }
    }

    /// The dtypes the op accepts: the union over its opset versions.
    fn accepts(self, d: DType) -> bool {
        let base = matches!(
            d,
            DType::F32
                | DType::F16
                | DType::BF16
                | DType::F64
                | DType::I32
                | DType::I64
                | DType::U32
                | DType::U64
        );
        match self {
            // int8/uint8 since opset 12, bool since opset 20.
            ReduceKind::Max | ReduceKind::Min => {
                base || matches!(d, DType::I8 | DType::U8 | DType::Bool)
            }
            ReduceKind::Sum
            | ReduceKind::Mean
            | ReduceKind::Prod
            | ReduceKind::L1
            | ReduceKind::L2
            | ReduceKind::LogSum
            | ReduceKind::LogSumExp
            | ReduceKind::SumSquare => base,
        }
    }
}

/// Which extreme an arg-reduction looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// `ArgMax`.
    Max,
    /// `ArgMin`.
    Min,
}

/// Which product a scan accumulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanKind {
    /// `CumSum`.
    Sum,
    /// `CumProd`.
    Prod,
}

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Reduce {
    /// `Reduce*(data, axes?)`.
    Reduce {
        /// The reduction.
        kind: ReduceKind,
        /// The axes from the attribute (opsets before `axes` became input 1);
        /// `None` when they come from the input or reduce everything.
        axes: Option<Vec<i64>>,
        /// Keep reduced axes as size-1 dims.
        keepdims: bool,
        /// With no (or empty) axes, reduce over the empty set of axes instead of all.
        noop_with_empty_axes: bool,
    },
    /// `ArgMax(data)` / `ArgMin(data)`: int64 indices of the extreme along `axis`.
    Arg {
        /// Max or min.
        kind: ArgKind,
        /// The axis (negative counts from the end).
        axis: i64,
        /// Keep the reduced axis as a size-1 dim.
        keepdims: bool,
        /// On ties, the last index rather than the first.
        select_last_index: bool,
    },
    /// `TopK(X, K?)`: the `k` largest (or smallest) values along `axis` and their indices.
    TopK {
        /// `k` from the attribute (opset < 10); `None` when it is input 1.
        k: Option<i64>,
        /// The axis (negative counts from the end).
        axis: i64,
        /// Largest (true) or smallest elements.
        largest: bool,
        /// Sorted output; when false the order is unspecified and sorted anyway.
        sorted: bool,
    },
    /// `CumSum(x, axis)` / `CumProd(x, axis)`.
    Scan {
        /// Sum or product.
        kind: ScanKind,
        /// Each output excludes its own element (starts from the identity).
        exclusive: bool,
        /// Accumulate from the end of the axis.
        reverse: bool,
    },
}

impl Reduce {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceSumSquare",
        "ArgMax",
        "ArgMin",
        "TopK",
        "CumSum",
        "CumProd",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Reduce>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        let a = ctx.attrs;
        let flag = |name: &str, default: i64| a.int(name, default).map(|v| v != 0);
        if let Some(kind) = ReduceKind::ALL
            .into_iter()
            .find(|k| k.name() == ctx.op_type)
        {
            let r = (|| {
                let since = kind.axes_input_since();
                let (axes, noop_with_empty_axes) = if ctx.opset < since {
                    (a.ints_opt("axes")?, false)
                } else {
                    if a.has("axes") {
                        return Err(Error::attr(
                            "axes",
                            format!("is input 1 of {} since opset {since}", kind.name()),
                        ));
                    }
                    (None, flag("noop_with_empty_axes", 0)?)
                };
                Ok(Reduce::Reduce {
                    kind,
                    axes,
                    keepdims: flag("keepdims", 1)?,
                    noop_with_empty_axes,
                })
            })();
            return Some(r);
        }
        let r = match ctx.op_type {
            "ArgMax" | "ArgMin" => (|| {
                let kind = if ctx.op_type == "ArgMax" {
                    ArgKind::Max
                } else {
                    ArgKind::Min
                };
                Ok(Reduce::Arg {
                    kind,
                    axis: a.int("axis", 0)?,
                    keepdims: flag("keepdims", 1)?,
                    select_last_index: flag("select_last_index", 0)?,
                })
            })(),
            "TopK" => (|| {
                let k = if ctx.opset < 10 {
                    let k = a.int_req("k")?;
                    if k < 0 {
                        return Err(Error::attr("k", format!("must be non-negative, got {k}")));
                    }
                    Some(k)
                } else {
                    None
                };
                Ok(Reduce::TopK {
                    k,
                    axis: a.int("axis", -1)?,
                    largest: flag("largest", 1)?,
                    sorted: flag("sorted", 1)?,
                })
            })(),
            "CumSum" | "CumProd" => (|| {
                let kind = if ctx.op_type == "CumSum" {
                    ScanKind::Sum
                } else {
                    ScanKind::Prod
                };
                Ok(Reduce::Scan {
                    kind,
                    exclusive: flag("exclusive", 0)?,
                    reverse: flag("reverse", 0)?,
                })
            })(),
            _ => return None,
        };
        Some(r)
    }
}

// ---------------------------------------------------------------------------
// Per-type helpers.

/// True for a NaN (the only value not comparable to itself); false for every
/// non-float type.
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

/// The identities of `ReduceMax`/`ReduceMin` for each element type.
trait Extremes: Elem {
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
trait Wide: Int {
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
fn reduce_mask(
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
fn reduced_shape(shape: &[usize], mask: &[bool], keepdims: bool) -> Shape {
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
struct Plan {
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
/// NaN propagates.
fn reduce_extreme<T: Extremes>(x: &[T], plan: &Plan, max: bool) -> Vec<T> {
    let init = if max { T::LOWEST } else { T::HIGHEST };
    let mut acc = vec![init; plan.out_len];
    plan.run(x, &mut acc, |a, v, _| {
        let better = if max { v > a } else { v < a };
        if is_nan(a) || !(better || is_nan(v)) {
            a
        } else {
            v
        }
    });
    acc
}

/// The `f64` reductions (every float kind; L2, LogSum and LogSumExp on integers).
fn reduce_f64<T: Extremes>(kind: ReduceKind, x: &[T], plan: &Plan) -> Vec<T> {
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
fn reduce_int<T: Wide + Extremes>(kind: ReduceKind, x: &[T], plan: &Plan) -> Vec<T> {
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

fn eval_reduce(kind: ReduceKind, x: &Tensor, mask: &[bool], keepdims: bool) -> Result<Tensor> {
    if !kind.accepts(x.dtype()) {
        return Err(Error::Type(format!(
            "{} does not accept {}",
            kind.name(),
            x.dtype()
        )));
    }
    let plan = Plan::new(x.shape(), mask);
    let shape = reduced_shape(x.shape(), mask, keepdims);
    let data = match kind {
        ReduceKind::Max | ReduceKind::Min => {
            dispatch!(x.data(), v, T => T::wrap(reduce_extreme(v, &plan, kind == ReduceKind::Max)))
        }
        ReduceKind::Sum
        | ReduceKind::Mean
        | ReduceKind::Prod
        | ReduceKind::L1
        | ReduceKind::L2
        | ReduceKind::LogSum
        | ReduceKind::LogSumExp
        | ReduceKind::SumSquare => {
            dispatch_float!(x.data(), v, T => T::wrap(reduce_f64(kind, v, &plan)),
            else dispatch_int!(x.data(), v, T => T::wrap(reduce_int(kind, v, &plan)),
                else return Err(Error::Type(format!("{} does not accept {}", kind.name(), x.dtype())))))
        }
    };
    Tensor::new(shape, data)
}

// ---------------------------------------------------------------------------
// Arg-reductions, TopK and scans: one axis, viewed as (outer, axis, inner).

/// `(outer, n, inner)` for a single axis.
fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// True when `v` should replace `best` in an arg-reduction. NaN counts as the
/// extreme for both (NumPy's `argmax`/`argmin` return the first NaN).
fn arg_better<T: PartialOrd + Copy>(v: T, best: T, max: bool, last: bool) -> bool {
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

fn arg_reduce<T: PartialOrd + Copy>(
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
fn topk_order<T: PartialOrd>(a: &(T, usize), b: &(T, usize), largest: bool) -> std::cmp::Ordering {
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

fn topk<T: Elem>(
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
fn scan<T: Elem, A: Copy>(
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

fn eval_scan(
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

impl ScanKind {
    fn name(self) -> &'static str {
        match self {
            ScanKind::Sum => "CumSum",
            ScanKind::Prod => "CumProd",
        }
    }
}

impl ArgKind {
    fn name(self) -> &'static str {
        match self {
            ArgKind::Max => "ArgMax",
            ArgKind::Min => "ArgMin",
        }
    }
}

fn check_scan_dtype(kind: ScanKind, d: DType) -> Result<()> {
    match d {
        DType::F32
        | DType::F16
        | DType::BF16
        | DType::F64
        | DType::I32
        | DType::I64
        | DType::U32
        | DType::U64 => Ok(()),
        _ => Err(Error::Type(format!("{} does not accept {d}", kind.name()))),
    }
}

/// Arg-reductions and TopK take every numeric type, not bool.
fn check_numeric(op: &str, d: DType) -> Result<()> {
    if d.is_float() || d.is_int() {
        Ok(())
    } else {
        Err(Error::Type(format!("{op} does not accept {d}")))
    }
}

/// Validates a scan's `axis` operand type: a one-element int32/int64 tensor.
fn check_scan_axis_type(t: &TensorType) -> Result<()> {
    if !matches!(t.dtype, DType::I32 | DType::I64) {
        return Err(Error::Type(format!(
            "axis must be int32 or int64, got {}",
            t.dtype
        )));
    }
    if t.shape.len() > 1 || numel(&t.shape)? != 1 {
        return Err(Error::Shape(format!(
            "axis must be a scalar, got shape {:?}",
            t.shape
        )));
    }
    Ok(())
}

/// The scan axis from its operand's value.
fn scan_axis(t: &Tensor, rank: usize) -> Result<usize> {
    check_scan_axis_type(&TensorType::new(t.dtype(), t.shape().to_vec()))?;
    norm_axis(t.to_i64_vec()[0], rank)
}

/// TopK's `k` from its operand's value: a one-element int64 tensor.
fn topk_k(t: &Tensor) -> Result<i64> {
    if t.dtype() != DType::I64 {
        return Err(Error::Type(format!("K must be int64, got {}", t.dtype())));
    }
    if t.rank() > 1 || t.len() != 1 {
        return Err(Error::Shape(format!(
            "K must hold one value, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.to_i64_vec()[0])
}

/// Checks `k` against the axis length.
fn check_k(k: i64, dim: usize) -> Result<usize> {
    match usize::try_from(k) {
        Ok(k) if k <= dim => Ok(k),
        _ => Err(Error::Shape(format!(
            "k = {k} must be in 0..={dim}, the length of the axis"
        ))),
    }
}

/// `shape` with dim `axis` replaced by `d`, or removed when `d` is `None`.
fn with_dim(shape: &[usize], axis: usize, d: Option<usize>) -> Shape {
    let mut s = shape[..axis].to_vec();
    s.extend(d);
    s.extend_from_slice(&shape[axis + 1..]);
    s
}

fn bool_str(b: bool) -> String {
    (b as u8).to_string()
}

impl OpDef for Reduce {
    fn name(&self) -> &'static str {
        match self {
            Reduce::Reduce { kind, .. } => kind.name(),
            Reduce::Arg { kind, .. } => kind.name(),
            Reduce::TopK { .. } => "TopK",
            Reduce::Scan { kind, .. } => kind.name(),
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Reduce::Reduce {
                kind: _,
                axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                let mut v = vec![];
                if let Some(a) = axes {
                    v.push(("axes", fmt_list(a)));
                }
                v.push(("keepdims", bool_str(*keepdims)));
                if *noop_with_empty_axes {
                    v.push(("noop_with_empty_axes", bool_str(true)));
                }
                v
            }
            Reduce::Arg {
                kind: _,
                axis,
                keepdims,
                select_last_index,
            } => vec![
                ("axis", axis.to_string()),
                ("keepdims", bool_str(*keepdims)),
                ("select_last_index", bool_str(*select_last_index)),
            ],
            Reduce::TopK {
                k,
                axis,
                largest,
                sorted,
            } => {
                let mut v = vec![];
                if let Some(k) = k {
                    v.push(("k", k.to_string()));
                }
                v.push(("axis", axis.to_string()));
                v.push(("largest", bool_str(*largest)));
                v.push(("sorted", bool_str(*sorted)));
                v
            }
            Reduce::Scan {
                kind: _,
                exclusive,
                reverse,
            } => {
                vec![
                    ("exclusive", bool_str(*exclusive)),
                    ("reverse", bool_str(*reverse)),
                ]
            }
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            Reduce::Reduce { axes: Some(_), .. }
            | Reduce::TopK { k: Some(_), .. }
            | Reduce::Arg { .. } => vec![],
            Reduce::Reduce { axes: None, .. } | Reduce::TopK { k: None, .. } => vec![1],
            // The output shape does not depend on the scan axis, so a run-time
            // axis is accepted; a constant one is validated at inference.
            Reduce::Scan { .. } => vec![1],
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match self {
            Reduce::Reduce {
                kind,
                axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                check_arity(inputs, 1, if axes.is_some() { 1 } else { 2 })?;
                let x = req(inputs, 0, "data")?.ty;
                if !kind.accepts(x.dtype) {
                    return Err(Error::Type(format!(
                        "{} does not accept {}",
                        kind.name(),
                        x.dtype
                    )));
                }
                let axes_t = match (axes, opt(inputs, 1)) {
                    (None, Some(_)) => Some(const_input(inputs, 1, "axes")?),
                    _ => None,
                };
                let mask = reduce_mask(
                    x.shape.len(),
                    axes.as_deref(),
                    axes_t,
                    *noop_with_empty_axes,
                )?;
                Ok(vec![TensorType::new(
                    x.dtype,
                    reduced_shape(&x.shape, &mask, *keepdims),
                )])
            }
            Reduce::Arg {
                kind,
                axis,
                keepdims,
                select_last_index: _,
            } => {
                check_arity(inputs, 1, 1)?;
                let x = req(inputs, 0, "data")?.ty;
                check_numeric(kind.name(), x.dtype)?;
                let ax = norm_axis(*axis, x.shape.len())?;
                let shape = with_dim(&x.shape, ax, keepdims.then_some(1));
                if x.shape[ax] == 0 && numel(&shape)? != 0 {
                    return Err(Error::Shape(format!(
                        "{} over axis {axis} of length 0 has no answer",
                        kind.name()
                    )));
                }
                Ok(vec![TensorType::new(DType::I64, shape)])
            }
            Reduce::TopK {
                k,
                axis,
                largest: _,
                sorted: _,
            } => {
                check_arity(
                    inputs,
                    if k.is_some() { 1 } else { 2 },
                    if k.is_some() { 1 } else { 2 },
                )?;
                let x = req(inputs, 0, "X")?.ty;
                check_numeric("TopK", x.dtype)?;
                let ax = norm_axis(*axis, x.shape.len())?;
                let k = match k {
                    Some(k) => *k,
                    None => topk_k(const_input(inputs, 1, "K")?)?,
                };
                let shape = with_dim(&x.shape, ax, Some(check_k(k, x.shape[ax])?));
                Ok(vec![
                    TensorType::new(x.dtype, shape.clone()),
                    TensorType::new(DType::I64, shape),
                ])
            }
            Reduce::Scan {
                kind,
                exclusive: _,
                reverse: _,
            } => {
                check_arity(inputs, 2, 2)?;
                let x = req(inputs, 0, "x")?.ty;
                check_scan_dtype(*kind, x.dtype)?;
                let a = req(inputs, 1, "axis")?;
                check_scan_axis_type(a.ty)?;
                match a.value {
                    Some(v) => scan_axis(v, x.shape.len())?,
                    None => norm_axis(0, x.shape.len())?, // only checks the rank is at least 1
                };
                Ok(vec![x.clone()])
            }
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Reduce::Reduce {
                kind,
                axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                let x = req(inputs, 0, "data")?;
                let axes_t = if axes.is_none() { opt(inputs, 1) } else { None };
                let mask = reduce_mask(x.rank(), axes.as_deref(), axes_t, *noop_with_empty_axes)?;
                Ok(vec![eval_reduce(*kind, x, &mask, *keepdims)?])
            }
            Reduce::Arg {
                kind,
                axis,
                keepdims,
                select_last_index,
            } => {
                let x = req(inputs, 0, "data")?;
                let ax = norm_axis(*axis, x.rank())?;
                let dims = split_at_axis(x.shape(), ax);
                let shape = with_dim(x.shape(), ax, keepdims.then_some(1));
                if dims.1 == 0 && dims.0 * dims.2 != 0 {
                    return Err(Error::Eval(format!(
                        "{} over an axis of length 0",
                        kind.name()
                    )));
                }
                let (max, last) = (*kind == ArgKind::Max, *select_last_index);
                let out = dispatch_float!(x.data(), v, T => arg_reduce(v, dims, max, last),
                    else dispatch_int!(x.data(), v, T => arg_reduce(v, dims, max, last),
                        else return Err(Error::Type(format!("{} does not accept {}", kind.name(), x.dtype())))));
                Ok(vec![Tensor::from_vec(shape, out)?])
            }
            Reduce::TopK {
                k,
                axis,
                largest,
                sorted: _,
            } => {
                let x = req(inputs, 0, "X")?;
                check_numeric("TopK", x.dtype())?;
                let ax = norm_axis(*axis, x.rank())?;
                let k = match k {
                    Some(k) => *k,
                    None => topk_k(req(inputs, 1, "K")?)?,
                };
                let dims = split_at_axis(x.shape(), ax);
                let k = check_k(k, dims.1)?;
                let shape = with_dim(x.shape(), ax, Some(k));
                let (vals, idxs) = dispatch!(x.data(), v, T => {
                    let (vals, idxs) = topk(v, dims, k, *largest);
                    (T::wrap(vals), idxs)
                });
                Ok(vec![
                    Tensor::new(shape.clone(), vals)?,
                    Tensor::from_vec(shape, idxs)?,
                ])
            }
            Reduce::Scan {
                kind,
                exclusive,
                reverse,
            } => {
                let x = req(inputs, 0, "x")?;
                let ax = scan_axis(req(inputs, 1, "axis")?, x.rank())?;
                Ok(vec![eval_scan(*kind, x, ax, *exclusive, *reverse)?])
            }
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], _outputs: &[TensorType]) -> u64 {
        // One operation per input element: every op here reads each element
        // once (TopK's selection is linear on average, the sort only touches k).
        let n = inputs
            .first()
            .copied()
            .flatten()
            .and_then(|t| t.numel().ok())
            .unwrap_or(0) as u64;
        match self {
            Reduce::Reduce {
                kind: ReduceKind::LogSumExp,
                ..
            } => 2 * n,
            Reduce::Reduce { .. }
            | Reduce::Arg { .. }
            | Reduce::TopK { .. }
            | Reduce::Scan { .. } => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{AttrValue, Attrs};
    use crate::shape::{for_each_index, strides};

    fn t<T: Elem>(shape: &[usize], v: &[T]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn axes(v: &[i64]) -> Tensor {
        t(&[v.len()], v)
    }

    fn red(kind: ReduceKind, keepdims: bool, noop: bool) -> Reduce {
        Reduce::Reduce {
            kind,
            axes: None,
            keepdims,
            noop_with_empty_axes: noop,
        }
    }

    /// Evaluates `op` and checks its outputs against `infer`'s types.
    fn run(op: &Reduce, inputs: &[Option<&Tensor>]) -> Vec<Tensor> {
        let tys: Vec<TensorType> = inputs
            .iter()
            .map(|x| {
                x.map(|x| TensorType::new(x.dtype(), x.shape().to_vec()))
                    .unwrap_or(TensorType::new(DType::F32, vec![]))
            })
            .collect();
        let inf: Vec<Option<InferInput<'_>>> = inputs
            .iter()
            .zip(&tys)
            .map(|(x, ty)| x.map(|x| InferInput { ty, value: Some(x) }))
            .collect();
        let want = op.infer(&inf).unwrap();
        let got = op.eval(inputs).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.dtype(), g.shape()),
                (w.dtype, w.shape.as_slice()),
                "{op:?}"
            );
        }
        got
    }

    fn check(op: Reduce, inputs: &[&Tensor], want: &[Tensor]) {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        assert_eq!(run(&op, &ins), want, "{op:?}");
    }

    fn f32s(x: &Tensor) -> Vec<f32> {
        x.as_slice::<f32>().unwrap().to_vec()
    }

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

    fn ctx<'a>(op_type: &'a str, opset: i64, attrs: &'a Attrs) -> ParseCtx<'a> {
        ParseCtx {
            op_type,
            domain: "",
            opset,
            attrs,
            num_inputs: 2,
            num_outputs: 1,
        }
    }

    #[test]
    fn parse_by_opset() {
        let with_axes = Attrs::new(vec![
            ("axes".into(), AttrValue::Ints(vec![0])),
            ("keepdims".into(), AttrValue::Int(0)),
        ]);
        let op = Reduce::parse(&ctx("ReduceSum", 11, &with_axes))
            .unwrap()
            .unwrap();
        assert_eq!(
            op,
            Reduce::Reduce {
                kind: ReduceKind::Sum,
                axes: Some(vec![0]),
                keepdims: false,
                noop_with_empty_axes: false
            }
        );
        assert_eq!(op.const_operands(), Vec::<usize>::new());
        assert!(
            Reduce::parse(&ctx("ReduceSum", 13, &with_axes))
                .unwrap()
                .is_err()
        );
        assert!(
            Reduce::parse(&ctx("ReduceMean", 13, &with_axes))
                .unwrap()
                .is_ok()
        );
        assert!(
            Reduce::parse(&ctx("ReduceMean", 18, &with_axes))
                .unwrap()
                .is_err()
        );
        let none = Attrs::default();
        let op = Reduce::parse(&ctx("ReduceMax", 18, &none))
            .unwrap()
            .unwrap();
        assert_eq!(op.const_operands(), vec![1]);
        assert_eq!(op.attrs(), vec![("keepdims", "1".to_string())]);
        let topk = Reduce::parse(&ctx(
            "TopK",
            1,
            &Attrs::new(vec![("k".into(), AttrValue::Int(2))]),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            topk,
            Reduce::TopK {
                k: Some(2),
                axis: -1,
                largest: true,
                sorted: true
            }
        );
        assert!(Reduce::parse(&ctx("TopK", 1, &none)).unwrap().is_err());
        let p = ParseCtx {
            domain: "com.microsoft",
            ..ctx("ReduceSum", 1, &none)
        };
        assert!(Reduce::parse(&p).is_none());
        assert!(Reduce::parse(&ctx("Hardmax", 13, &none)).is_none());
        for name in Reduce::ONNX_OPS {
            let op = Reduce::parse(&ctx(name, 26, &none)).unwrap().unwrap();
            assert_eq!(op.name(), *name);
        }
    }

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
        for k in [&big, &neg] {
            let r = topk(0, true).infer(&[
                Some(InferInput {
                    ty: &ty,
                    value: None,
                }),
                Some(InferInput {
                    ty: &kty,
                    value: Some(k),
                }),
            ]);
            assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
        }
        let r = topk(0, true).infer(&[
            Some(InferInput {
                ty: &ty,
                value: None,
            }),
            Some(InferInput {
                ty: &kty,
                value: None,
            }),
        ]);
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
        check(
            scan_op(ScanKind::Sum, false, false),
            &[&x, &a],
            &[t(&[5], &[1f64, 3., 6., 10., 15.])],
        );
        check(
            scan_op(ScanKind::Sum, true, false),
            &[&x, &a],
            &[t(&[5], &[0f64, 1., 3., 6., 10.])],
        );
        check(
            scan_op(ScanKind::Sum, false, true),
            &[&x, &a],
            &[t(&[5], &[15f64, 14., 12., 9., 5.])],
        );
        check(
            scan_op(ScanKind::Sum, true, true),
            &[&x, &a],
            &[t(&[5], &[14f64, 12., 9., 5., 0.])],
        );
        check(
            scan_op(ScanKind::Prod, true, false),
            &[&x, &a],
            &[t(&[5], &[1f64, 1., 2., 6., 24.])],
        );
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

    #[test]
    fn printer_attrs_and_cost() {
        let op = Reduce::TopK {
            k: Some(3),
            axis: -1,
            largest: false,
            sorted: true,
        };
        let want = [
            ("k", "3"),
            ("axis", "-1"),
            ("largest", "0"),
            ("sorted", "1"),
        ];
        assert_eq!(op.attrs(), want.map(|(k, v)| (k, v.to_string())).to_vec());
        let op = Reduce::Reduce {
            kind: ReduceKind::L2,
            axes: Some(vec![0, -1]),
            keepdims: false,
            noop_with_empty_axes: false,
        };
        assert_eq!(
            op.attrs(),
            vec![
                ("axes", "[0,-1]".to_string()),
                ("keepdims", "0".to_string())
            ]
        );
        let ty = TensorType::new(DType::F32, vec![4, 5]);
        assert_eq!(op.macs(&[Some(&ty)], &[]), 20);
    }
}
