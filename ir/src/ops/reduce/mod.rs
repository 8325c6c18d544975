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
//!
//! [`fold`] holds the `Reduce*` kernels and [`axis`] the single-axis ones
//! (arg-reductions, `TopK`, scans), each with its tests; this file keeps the
//! closed [`Reduce`] enum, the parser and the exhaustive dispatch of [`OpDef`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{
    InferInput, OpDef, ParseCtx, check_arity, const_input, fmt_list, in_family, opt, req,
};
use crate::shape::{Shape, norm_axis, numel};
use crate::tensor::{Elem, Tensor};
use crate::{dispatch, dispatch_float, dispatch_int};

mod axis;
mod fold;

use axis::{arg_reduce, eval_scan, split_at_axis, topk};
use fold::{eval_reduce, reduce_mask, reduced_shape};
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
        // Max/Min: int8/uint8 since opset 12, bool since opset 20.
        wide_numeric(d) || (self.is_extreme() && matches!(d, DType::I8 | DType::U8 | DType::Bool))
    }

    /// Max and Min, which pick an element where the others compute.
    fn is_extreme(self) -> bool {
        matches!(self, ReduceKind::Max | ReduceKind::Min)
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
        in_family(ctx, Self::ONNX_OPS).then(|| Self::parse_known(ctx))
    }

    fn parse_known(ctx: &ParseCtx<'_>) -> Result<Reduce> {
        let a = ctx.attrs;
        let flag = |name: &str, default: i64| a.int(name, default).map(|v| v != 0);
        if let Some(kind) = ReduceKind::ALL
            .into_iter()
            .find(|k| k.name() == ctx.op_type)
        {
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
            return Ok(Reduce::Reduce {
                kind,
                axes,
                keepdims: flag("keepdims", 1)?,
                noop_with_empty_axes,
            });
        }
        Ok(match ctx.op_type {
            "ArgMax" | "ArgMin" => Reduce::Arg {
                kind: if ctx.op_type == "ArgMax" {
                    ArgKind::Max
                } else {
                    ArgKind::Min
                },
                axis: a.int("axis", 0)?,
                keepdims: flag("keepdims", 1)?,
                select_last_index: flag("select_last_index", 0)?,
            },
            "TopK" => {
                let k = if ctx.opset < 10 {
                    let k = a.int_req("k")?;
                    if k < 0 {
                        return Err(Error::attr("k", format!("must be non-negative, got {k}")));
                    }
                    Some(k)
                } else {
                    None
                };
                Reduce::TopK {
                    k,
                    axis: a.int("axis", -1)?,
                    largest: flag("largest", 1)?,
                    sorted: flag("sorted", 1)?,
                }
            }
            "CumSum" | "CumProd" => Reduce::Scan {
                kind: if ctx.op_type == "CumSum" {
                    ScanKind::Sum
                } else {
                    ScanKind::Prod
                },
                exclusive: flag("exclusive", 0)?,
                reverse: flag("reverse", 0)?,
            },
            other => {
                return Err(Error::Unsupported(format!(
                    "op {other} is not in the reduce family"
                )));
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Per-type helpers.

/// True for a NaN (the only value not comparable to itself); false for every
/// non-float type.
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
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

/// The dtypes every reduction and scan accepts: the floats and the 32- and
/// 64-bit integers.
fn wide_numeric(d: DType) -> bool {
    matches!(
        d,
        DType::F32
            | DType::F16
            | DType::BF16
            | DType::F64
            | DType::I32
            | DType::I64
            | DType::U32
            | DType::U64
    )
}

fn check_scan_dtype(kind: ScanKind, d: DType) -> Result<()> {
    if wide_numeric(d) {
        Ok(())
    } else {
        Err(Error::Type(format!("{} does not accept {d}", kind.name())))
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

/// Helpers the per-kernel test modules share.
#[cfg(test)]
mod test_util {
    use super::*;

    pub(super) use crate::ops::test_support::{i64s as axes, t};

    pub(super) fn red(kind: ReduceKind, keepdims: bool, noop: bool) -> Reduce {
        Reduce::Reduce {
            kind,
            axes: None,
            keepdims,
            noop_with_empty_axes: noop,
        }
    }

    /// Evaluates `op` and checks its outputs against `infer`'s types.
    pub(super) fn run(op: &Reduce, inputs: &[Option<&Tensor>]) -> Vec<Tensor> {
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

    pub(super) fn check(op: Reduce, inputs: &[&Tensor], want: &[Tensor]) {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        assert_eq!(run(&op, &ins), want, "{op:?}");
    }

    pub(super) fn f32s(x: &Tensor) -> Vec<f32> {
        x.as_slice::<f32>().unwrap().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{AttrValue, Attrs};

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
