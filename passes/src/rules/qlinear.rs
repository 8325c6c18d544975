//! Integer ops from QDQ patterns: a float `Conv` or matrix product between
//! `DequantizeLinear`d operands and a `QuantizeLinear` becomes the integer
//! op onnxruntime runs for it (`QLinearConv`, `QLinearMatMul`), kept in the
//! e-graph beside the float form; the cost model (`egraph::cost`, its int8
//! rate per target) picks one.
//!
//! - `Q(Conv(DQ(x_q), W, b?))` => `QLinearConv(x_q, W_q, b_q?)`, where `W`
//!   is a constant weight dequantized per tensor or per output channel: a
//!   `DequantizeLinear` of constants, or `Decode` of an affine `i8`/`u8`
//!   constant (the form the importer gives a QDQ weight). The f32 bias
//!   becomes `i32` at scale `s_x·s_w[c]` per channel, rounded half to even,
//!   as onnxruntime's quantizer stores it; a bias that would not fit `i32`
//!   (or a zero scale) leaves the float form alone.
//! - `Q(Relu(Conv(…)))`, `Q(Clip(Conv(…), lo, hi))`: the same when the
//!   activation is the integer output's own saturation, i.e. `Q(lo)` is at
//!   or below the type's minimum and `Q(hi)` at or above its maximum (Relu:
//!   the zero point is the minimum, as a calibrated Relu output has).
//! - `Q(MatMul(DQ(a_q), DQ(b_q)))` with both per tensor (attention's
//!   activation products), `Q(MatMul(DQ(a_q), W[K, N]))` and
//!   `Q(EncodedMatMul(DQ(a_q), W[N, K]))` without bias, with `W` per tensor
//!   or per output column => `QLinearMatMul` (the `[N, K]` integers
//!   transposed, exactly).
//! - `Q(EncodedMatMul(DQ(a_q), W[N, K], b))` (the importer's form of a QDQ
//!   `Gemm` with bias; ONNX has no integer product with a bias but the
//!   convolution) => `Reshape(QLinearConv(Reshape(a_q, [R, K, 1]),
//!   W[N, K, 1], b_q), […, N])`: a 1-D convolution of width 1 over `R`
//!   batch rows is the product, bias and requantization included.
//!
//! Every activation scale and zero point must be one constant (per tensor),
//! the types 8-bit, the `QuantizeLinear` per tensor with f32 arithmetic.
//!
//! Soundness (within one quantization step, what onnxruntime accepts of its
//! own QDQ and integer forms): the float form computes
//! `round(fl(Σ fl(s_x(x-z_x))·fl(s_w(w-z_w)) + b) / s_y) + z_y`, the integer
//! form `round((Σ(x-z_x)(w-z_w) + b_q)·s_x·s_w/s_y) + z_y`. The integer sum
//! is exact; the two differ by the f32 roundings of the float form (relative
//! `2^-24` per term) and the bias rounding (at most `s_x·s_w/2`, half a step
//! of the accumulator), which move the value before the final rounding by
//! far less than one output step when `s_y ≥ s_x·s_w`, as calibrated scales
//! are; a value near a rounding boundary may then land one step away.
//! Rounding and saturation are monotonic, so a clamp before `Q` is a clamp
//! after it, which saturation already is under the condition above.

use std::sync::Arc;

use egg::{Id, Subst, rewrite as rw};
use smelt_ir::ops::Op;
use smelt_ir::ops::conv::ConvOp;
use smelt_ir::ops::elementwise::{Elementwise, UnaryFn};
use smelt_ir::ops::linalg::Linalg;
use smelt_ir::ops::quant::{AutoPad, ConvAttrs, QAttrs, Quant};
use smelt_ir::ops::weights::Weights;
use smelt_ir::{AffineStorage, DType, Encoding, Granularity, Tensor, TensorType};

use smelt_ir::ops::layout::Layout;

use super::{Apply, Rule, add_lit, add_op, add_op_typed, ops_named, shape_lit, ty, value, var};
use crate::egraph::analysis::EG;
use crate::egraph::lang::ENode;

/// A per-tensor activation operand: the integers' class and the constant
/// scale and zero point (a zero of the integers' type when absent).
struct QIn {
    q: Id,
    scale: Id,
    zero_point: Id,
    scale_value: f64,
}

/// A constant weight as integers with scales and zero points, per tensor
/// (one-element tensors) or per output channel (`[M]`).
struct QWeight {
    values: Tensor,
    scales: Vec<f32>,
    zero_points: Tensor,
}

/// The saturation range of an 8-bit quantized type.
fn qrange(d: DType) -> Option<(f64, f64)> {
    match d {
        DType::I8 => Some((-128.0, 127.0)),
        DType::U8 => Some((0.0, 255.0)),
        _ => None,
    }
}

/// The value of a one-element constant class.
fn scalar(eg: &EG, id: Id) -> Option<f64> {
    let v = value(eg, id)?;
    (v.len() == 1 && v.shape().len() <= 1).then(|| v.to_f64_vec()[0])
}

/// True when class `id` is the absent-operand leaf.
fn is_absent(eg: &EG, id: Id) -> bool {
    eg[id].nodes.iter().any(|n| matches!(n, ENode::Absent))
}

/// The zero point operand `z` (or a zero of `dtype` when absent), checked
/// to be a one-element constant of `dtype`.
fn zero_point(eg: &mut EG, z: Option<Id>, dtype: DType) -> Option<Id> {
    match z {
        Some(z) if !is_absent(eg, z) => {
            (ty(eg, z)?.dtype == dtype && scalar(eg, z).is_some()).then_some(z)
        }
        _ => Some(add_lit(eg, Tensor::zeros(dtype, vec![]).ok()?)),
    }
}

/// True for a `QuantizeLinear`/`DequantizeLinear` layout this file handles:
/// no blocks, f32 arithmetic.
fn plain(a: &QAttrs) -> bool {
    a.block_size == 0 && a.precision.is_none_or(|p| p == DType::F32)
}

/// Class `x` as `DequantizeLinear(q, s, z?)` per tensor from an 8-bit `q`.
fn dq_input(eg: &mut EG, x: Id) -> Option<QIn> {
    if ty(eg, x)?.dtype != DType::F32 {
        return None;
    }
    for (op, args) in ops_named(eg, x, "DequantizeLinear") {
        let Op::Quant(Quant::DequantizeLinear(a)) = &*op else {
            continue;
        };
        let (q, s) = (args[0], args[1]);
        let Some(qt) = ty(eg, q) else { continue };
        if !plain(a) || qrange(qt.dtype).is_none() || ty(eg, s)?.dtype != DType::F32 {
            continue;
        }
        let Some(sv) = scalar(eg, s).filter(|v| v.is_finite() && *v > 0.0) else {
            continue;
        };
        if let Some(z) = zero_point(eg, args.get(2).copied(), qt.dtype) {
            return Some(QIn {
                q,
                scale: s,
                zero_point: z,
                scale_value: sv,
            });
        }
    }
    None
}

/// The integers, scales and zero points of an affine 8-bit constant of
/// `shape` (per tensor, or per index of `axis`), from its stored bytes.
fn affine_parts(ty: &TensorType, bytes: &[u8], axis: usize) -> Option<QWeight> {
    let Encoding::Affine(a) = ty.encoding else {
        return None;
    };
    let dtype = match a.storage {
        AffineStorage::I8 => DType::I8,
        AffineStorage::U8 => DType::U8,
        _ => return None,
    };
    match a.granularity {
        Granularity::PerTensor => {}
        Granularity::PerAxis { axis: ax } if ax == axis => {}
        _ => return None,
    }
    let l = a.layout(&ty.shape).ok()?;
    let values = Tensor::from_typed_bytes(
        &TensorType::new(dtype, ty.shape.clone()),
        bytes.get(..l.numel)?,
    )
    .ok()?;
    let scales: Vec<f32> = bytes
        .get(l.scales_offset..l.scales_offset + 4 * l.groups)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let zshape = if l.groups == 1 {
        vec![]
    } else {
        vec![l.groups]
    };
    let zero_points = match l.zero_points_offset {
        Some(o) => {
            Tensor::from_typed_bytes(&TensorType::new(dtype, zshape), bytes.get(o..o + l.groups)?)
                .ok()?
        }
        None => Tensor::zeros(dtype, zshape).ok()?,
    };
    Some(QWeight {
        values,
        scales,
        zero_points,
    })
}

/// Class `w` as an affine 8-bit constant of the source graph (what `Decode`
/// and `EncodedMatMul` read), per tensor or per index of `axis`.
fn encoded_weight(eg: &EG, w: Id, axis: usize) -> Option<QWeight> {
    eg[w].nodes.iter().find_map(|n| match n {
        ENode::Weight(v) => {
            let (t, bytes) = eg.analysis.weights.get(*v as usize)?.as_ref()?;
            affine_parts(t, bytes.as_slice(), axis)
        }
        _ => None,
    })
}

/// Class `w` as a constant weight quantized per tensor or per index of
/// `axis`: `Decode` of an affine constant or `DequantizeLinear` of
/// constants.
fn const_weight(eg: &EG, w: Id, axis: usize) -> Option<QWeight> {
    for (op, args) in ops_named(eg, w, "Decode") {
        if let Op::Weights(Weights::Decode) = &*op
            && let Some(parts) = encoded_weight(eg, args[0], axis)
        {
            return Some(parts);
        }
    }
    for (op, args) in ops_named(eg, w, "DequantizeLinear") {
        let Op::Quant(Quant::DequantizeLinear(a)) = &*op else {
            continue;
        };
        let (Some(values), Some(scales)) = (value(eg, args[0]), value(eg, args[1])) else {
            continue;
        };
        let rank = values.shape().len() as i64;
        let per_axis = scales.len() > 1;
        let axis_ok = !per_axis
            || (a.axis.rem_euclid(rank.max(1)) == axis as i64
                && scales.shape() == [values.shape()[axis]]);
        if !plain(a) || qrange(values.dtype()).is_none() || scales.dtype() != DType::F32 || !axis_ok
        {
            continue;
        }
        let zero_points = match args.get(2).copied().filter(|&z| !is_absent(eg, z)) {
            Some(z) => match value(eg, z) {
                Some(t) if t.dtype() == values.dtype() && t.len() == scales.len() => {
                    Arc::unwrap_or_clone(t)
                }
                _ => continue,
            },
            None => Tensor::zeros(values.dtype(), scales.shape().to_vec()).ok()?,
        };
        let scales: Vec<f32> = scales.to_f64_vec().iter().map(|&v| v as f32).collect();
        return Some(QWeight {
            values: Arc::unwrap_or_clone(values),
            scales,
            zero_points,
        });
    }
    None
}

/// The scales (and zero points) as operands: one element per tensor, `[n]`
/// per channel.
fn scale_operands(eg: &mut EG, w: &QWeight) -> (Id, Id) {
    let shape = if w.scales.len() == 1 {
        vec![]
    } else {
        vec![w.scales.len()]
    };
    let s = Tensor::from_vec(shape.clone(), w.scales.clone()).expect("length matches");
    let z = Tensor::from_vec(shape, w.zero_points.to_i64_vec())
        .expect("one zero point per scale")
        .cast(w.zero_points.dtype());
    (add_lit(eg, s), add_lit(eg, z))
}

/// The `QuantizeLinear` that matched: its output type, scale and zero point,
/// the scale's value and the output's zero point value.
struct QOut {
    want: TensorType,
    scale: Id,
    zero_point: Id,
    scale_value: f64,
    zero_value: f64,
}

/// The matched `QuantizeLinear(?y, ?s, ?z)` when it is per tensor to an
/// 8-bit type with f32 arithmetic.
fn q_output(eg: &EG, id: Id, s: &Subst) -> Option<QOut> {
    let (y, sy, zy) = (
        eg.find(s[var("?y")]),
        eg.find(s[var("?s")]),
        eg.find(s[var("?z")]),
    );
    let want = ty(eg, id)?;
    qrange(want.dtype)?;
    let plain_q = ops_named(eg, id, "QuantizeLinear")
        .iter()
        .any(|(op, args)| match &**op {
            Op::Quant(Quant::QuantizeLinear(a)) => {
                plain(a)
                    && args[..] == [y, sy, zy]
                    && a.output_dtype.is_none_or(|d| d == want.dtype)
            }
            _ => false,
        });
    let scale_value = scalar(eg, sy).filter(|v| v.is_finite() && *v > 0.0)?;
    let zero_value = scalar(eg, zy)?;
    (plain_q && ty(eg, y)?.dtype == DType::F32 && ty(eg, zy)?.dtype == want.dtype).then_some(QOut {
        want,
        scale: sy,
        zero_point: zy,
        scale_value,
        zero_value,
    })
}

/// True when the class already holds an integer form, directly or under a
/// `Reshape` (the rules fire again every iteration; rebuilding a large
/// weight would cost time for nothing).
fn done(eg: &EG, id: Id) -> bool {
    let integer = |c: Id| {
        !ops_named(eg, c, "QLinearConv").is_empty() || !ops_named(eg, c, "QLinearMatMul").is_empty()
    };
    integer(id)
        || ops_named(eg, id, "Reshape")
            .iter()
            .any(|(_, args)| integer(args[0]))
}

/// `Q(lo)` and `Q(hi)` as the float form computes them (f32 division,
/// rounding half to even, no saturation); infinite bounds stay infinite.
fn quantized_bound(v: f64, q: &QOut) -> f64 {
    if v.is_infinite() {
        return v;
    }
    ((v as f32 / q.scale_value as f32) as f64).round_ties_even() + q.zero_value
}

/// The class under an activation of class `y` that the output saturation
/// of `q` makes exact: `Relu(c)` or `Clip(c, lo, hi)` (constant bounds).
fn under_activation(eg: &EG, y: Id, q: &QOut) -> Vec<Id> {
    let (lo_q, hi_q) = qrange(q.want.dtype).expect("checked");
    let exact = |lo: f64, hi: f64| quantized_bound(lo, q) <= lo_q && quantized_bound(hi, q) >= hi_q;
    let bound = |args: &[Id], i: usize, attr: Option<f32>, default: f64| -> Option<f64> {
        match args.get(i).copied().filter(|&b| !is_absent(eg, b)) {
            Some(b) => scalar(eg, b),
            None => Some(attr.map_or(default, f64::from)),
        }
    };
    let mut out = Vec::new();
    for (op, args) in ops_named(eg, y, "Relu") {
        if matches!(&*op, Op::Elementwise(Elementwise::Unary(UnaryFn::Relu)))
            && exact(0.0, f64::INFINITY)
        {
            out.push(args[0]);
        }
    }
    for (op, args) in ops_named(eg, y, "Clip") {
        let Op::Elementwise(Elementwise::Clip { min, max }) = &*op else {
            continue;
        };
        let lo = bound(&args, 1, *min, f64::NEG_INFINITY);
        let hi = bound(&args, 2, *max, f64::INFINITY);
        if let (Some(lo), Some(hi)) = (lo, hi)
            && exact(lo, hi)
        {
            out.push(args[0]);
        }
    }
    out
}

/// The quantized-op attributes of a float `Conv`'s window and groups.
fn conv_attrs(op: &Op) -> Option<ConvAttrs> {
    let Op::Conv(ConvOp::Conv { window, group }) = op else {
        return None;
    };
    let some = |v: &Vec<usize>| (!v.is_empty()).then(|| v.clone());
    Some(ConvAttrs {
        auto_pad: window.auto_pad,
        kernel_shape: window.kernel_shape.clone(),
        strides: some(&window.strides),
        dilations: some(&window.dilations),
        pads: some(&window.pads),
        group: *group,
    })
}

/// The f32 bias `b[M]` as `i32` at scale `s_x·s_w[c]` (onnxruntime's
/// rounding: the scale product in f32, the quotient rounded half to even);
/// `None` when a nonzero value has a zero scale or does not fit `i32`.
fn quantize_bias(b: &Tensor, sx: f64, sw: &[f32], m: usize) -> Option<Tensor> {
    let bv = b.to_f64_vec();
    if bv.len() != m || (sw.len() != 1 && sw.len() != m) {
        return None;
    }
    let q: Option<Vec<i32>> = bv
        .iter()
        .enumerate()
        .map(|(c, &v)| {
            // A zero bias is 0 at any scale (even a zero one).
            if v == 0.0 {
                return Some(0);
            }
            let s = sx as f32 * sw[if sw.len() == 1 { 0 } else { c }];
            let r = (v / f64::from(s)).round_ties_even();
            (s.is_normal() && r.is_finite() && r.abs() <= f64::from(i32::MAX)).then_some(r as i32)
        })
        .collect();
    Tensor::from_vec(vec![m], q?).ok()
}

/// `Q(Conv(DQ(x), W, b?)) => QLinearConv(…)`, looking through an exact
/// activation when `act` is set (see the module doc).
fn qlinear_conv(eg: &mut EG, id: Id, s: &Subst, act: bool) -> Option<Id> {
    if done(eg, id) {
        return None;
    }
    let q = q_output(eg, id, s)?;
    let y = eg.find(s[var("?y")]);
    let convs = if act {
        under_activation(eg, y, &q)
    } else {
        vec![y]
    };
    for c in convs {
        for (op, args) in ops_named(eg, c, "Conv") {
            let Some(attrs) = conv_attrs(&op) else {
                continue;
            };
            let Some(x) = dq_input(eg, args[0]) else {
                continue;
            };
            let Some(w) = const_weight(eg, args[1], 0) else {
                continue;
            };
            let m = w.values.shape().first().copied().unwrap_or(0);
            let bias = match args.get(2).copied().filter(|&b| !is_absent(eg, b)) {
                None => None,
                Some(b) => {
                    let Some(bq) = value(eg, b)
                        .filter(|t| t.dtype() == DType::F32)
                        .and_then(|t| quantize_bias(&t, x.scale_value, &w.scales, m))
                    else {
                        continue;
                    };
                    Some(add_lit(eg, bq))
                }
            };
            let wq = add_lit(eg, w.values.clone());
            let (ws, wz) = scale_operands(eg, &w);
            let mut operands = vec![
                x.q,
                x.scale,
                x.zero_point,
                wq,
                ws,
                wz,
                q.scale,
                q.zero_point,
            ];
            operands.extend(bias);
            let op = Op::Quant(Quant::QLinearConv(attrs));
            if let Some(n) = add_op_typed(eg, op, operands, &q.want) {
                return Some(n);
            }
        }
    }
    None
}

/// The weight of a matrix product node as `[K, N]` integers quantized per
/// tensor or per column: `MatMul`'s `W[K, N]` (axis 1) or
/// `EncodedMatMul`'s `W[N, K]` (axis 0, transposed here).
fn matmul_weight(eg: &EG, name: &str, w: Id) -> Option<QWeight> {
    match name {
        "MatMul" => const_weight(eg, w, 1).filter(|q| q.values.shape().len() == 2),
        _ => {
            let t = encoded_weight(eg, w, 0)?;
            let &[n, k] = t.values.shape() else {
                return None;
            };
            let v = t.values.to_i64_vec();
            let tv: Vec<i64> = (0..k * n).map(|i| v[(i % n) * k + i / n]).collect();
            let values = Tensor::from_vec(vec![k, n], tv)
                .ok()?
                .cast(t.values.dtype());
            Some(QWeight { values, ..t })
        }
    }
}

/// `Q(MatMul(DQ(a), DQ(b)))`, `Q(MatMul(DQ(a), W))` and
/// `Q(EncodedMatMul(DQ(a), W))` => `QLinearMatMul(…)` (see the module doc).
fn qlinear_matmul(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    if done(eg, id) {
        return None;
    }
    let q = q_output(eg, id, s)?;
    let y = eg.find(s[var("?y")]);
    let mut products = Vec::new();
    for (op, args) in ops_named(eg, y, "MatMul") {
        if matches!(&*op, Op::Linalg(Linalg::MatMul)) {
            products.push(("MatMul", args));
        }
    }
    for (op, args) in ops_named(eg, y, "EncodedMatMul") {
        if matches!(&*op, Op::Weights(Weights::EncodedMatMul))
            && args.get(2).is_none_or(|&b| is_absent(eg, b))
        {
            products.push(("EncodedMatMul", args));
        }
    }
    for (name, args) in products {
        let Some(a) = dq_input(eg, args[0]) else {
            continue;
        };
        let (bq, bs, bz) = if let Some(w) = matmul_weight(eg, name, args[1]) {
            let wq = add_lit(eg, w.values.clone());
            let (ws, wz) = scale_operands(eg, &w);
            (wq, ws, wz)
        } else if name == "MatMul"
            && !eg[args[1]].data.is_const
            && let Some(b) = dq_input(eg, args[1])
        {
            (b.q, b.scale, b.zero_point)
        } else {
            continue;
        };
        let operands = vec![
            a.q,
            a.scale,
            a.zero_point,
            bq,
            bs,
            bz,
            q.scale,
            q.zero_point,
        ];
        if let Some(n) = add_op_typed(eg, Op::Quant(Quant::QLinearMatMul), operands, &q.want) {
            return Some(n);
        }
    }
    None
}

/// `Q(EncodedMatMul(DQ(a), W[N, K], b))` => `Reshape(QLinearConv(Reshape(a,
/// [R, K, 1]), W[N, K, 1], b_q), […, N])` (see the module doc).
fn qlinear_gemm(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    if done(eg, id) {
        return None;
    }
    let q = q_output(eg, id, s)?;
    let y = eg.find(s[var("?y")]);
    for (op, args) in ops_named(eg, y, "EncodedMatMul") {
        if !matches!(&*op, Op::Weights(Weights::EncodedMatMul)) || args.len() != 3 {
            continue;
        }
        let Some(a) = dq_input(eg, args[0]) else {
            continue;
        };
        let Some(w) = encoded_weight(eg, args[1], 0) else {
            continue;
        };
        let (&[n, k], Some(at)) = (w.values.shape(), ty(eg, a.q)) else {
            continue;
        };
        let rows = at.numel().ok()? / k.max(1);
        let Some(bias) = value(eg, args[2])
            .filter(|t| t.dtype() == DType::F32)
            .and_then(|t| quantize_bias(&t, a.scale_value, &w.scales, n))
        else {
            continue;
        };
        let reshape = || Op::Layout(Layout::Reshape { allowzero: false });
        let shape = shape_lit(eg, &[rows, k, 1]);
        let Some(x3) = add_op(eg, reshape(), vec![a.q, shape]) else {
            continue;
        };
        let w3 = Tensor::from_vec(vec![n, k, 1], w.values.to_i64_vec())
            .ok()?
            .cast(w.values.dtype());
        let w3 = add_lit(eg, w3);
        let (ws, wz) = scale_operands(eg, &w);
        let b = add_lit(eg, bias);
        let attrs = ConvAttrs {
            auto_pad: AutoPad::NotSet,
            kernel_shape: None,
            strides: None,
            dilations: None,
            pads: None,
            group: 1,
        };
        let operands = vec![
            x3,
            a.scale,
            a.zero_point,
            w3,
            ws,
            wz,
            q.scale,
            q.zero_point,
            b,
        ];
        let Some(conv) = add_op(eg, Op::Quant(Quant::QLinearConv(attrs)), operands) else {
            continue;
        };
        let out_shape = shape_lit(eg, &q.want.shape);
        if let Some(r) = add_op_typed(eg, reshape(), vec![conv, out_shape], &q.want) {
            return Some(r);
        }
    }
    None
}

/// The QDQ-to-integer rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        // Q(Conv(DQ(x), W, b)) => QLinearConv(x, W_q, round(b / (s_x·s_w)))   (within one output step; bias fits i32)
        rw!("qlinear-conv";      "(QuantizeLinear ?y ?s ?z)" => { Apply(|eg: &mut EG, id, s: &Subst| qlinear_conv(eg, id, s, false)) }),
        // Q(act(Conv(DQ(x), W, b))) => QLinearConv(…)   (act = Relu or Clip, exact when Q(lo) ≤ q_min and Q(hi) ≥ q_max)
        rw!("qlinear-conv-act";  "(QuantizeLinear ?y ?s ?z)" => { Apply(|eg: &mut EG, id, s: &Subst| qlinear_conv(eg, id, s, true)) }),
        // Q(MatMul(DQ(a), DQ(b) or W)) => QLinearMatMul(a, b or W_q)   (within one output step)
        rw!("qlinear-matmul";    "(QuantizeLinear ?y ?s ?z)" => { Apply(qlinear_matmul) }),
        // Q(EncodedMatMul(DQ(a), W, b)) => Reshape(QLinearConv(Reshape(a, [R, K, 1]), W[N, K, 1], b_q))   (within one output step; bias fits i32)
        rw!("qlinear-gemm";      "(QuantizeLinear ?y ?s ?z)" => { Apply(qlinear_gemm) }),
    ]
}
