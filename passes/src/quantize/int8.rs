//! The static int8 rewrite (`--quantize int8`): `MatMul`, `Gemm` and `Conv`
//! with constant f32 weights become the standard ONNX integer ops every
//! smelt stage knows, after a `QuantizeLinear` of their input:
//!
//! - `QLinearMatMul` / `QLinearConv` (u8 result, then `DequantizeLinear`)
//!   when every reader of the result is another quantized node, which then
//!   reads the u8 tensor directly;
//! - otherwise `MatMulInteger` / `ConvInteger` and a float epilogue
//!   `Cast(acc) · (s_x·s_w) + bias`: the i32 accumulator is rescaled
//!   exactly instead of being rounded to 8 bits and dequantized again, which
//!   on the examples removes most of the error (a classifier's logits
//!   rounded to 256 levels tie and flip the top-1).
//!
//! - Weights: symmetric `i8`, one scale per output channel (a MatMul's
//!   column, a Gemm's row of `B` when `transB`, a Conv's output channel,
//!   grouped and depthwise ones included); a Gemm's `alpha` is folded in
//!   first.
//! - Activations: asymmetric `u8`, one scale per tensor, from the range
//!   calibration saw on the float graph ([`super::scale`] says why).
//! - Bias: a Conv's bias enters `QLinearConv` exactly as `i32` at scale
//!   `s_x · s_w[m]`. `QLinearMatMul` has no bias input, so a Gemm's bias
//!   (times `beta`) is a float `Add` after the `DequantizeLinear`, and the
//!   product's output range is calibrated without it (the observer
//!   subtracts the bias); a Gemm with a bias therefore always takes the
//!   float epilogue, whose `Add` is the bias in f32.
//! - Between quantized ops: a `u8` tensor is quantized once however many
//!   nodes read it, and when a quantized op reads the output of another one
//!   directly (no float op in between), it reads the `u8` result itself: no
//!   `DequantizeLinear → QuantizeLinear` pair.
//!
//! Every rewritten node keeps its name (the `QLinear*` node) and its result
//! value, which the `DequantizeLinear` (or the bias `Add`) now defines, so
//! nothing downstream changes.

use std::collections::HashMap;

use smelt_ir::ops::conv::{ConvOp, Window};
use smelt_ir::ops::elementwise::{BinaryFn, Elementwise};
use smelt_ir::ops::quant::{ConvAttrs, QAttrs, Quant};
use smelt_ir::{DType, Graph, Node, NodeId, Op, Tensor, ValueDef, ValueId};

#[cfg(test)]
use super::calibrate::CalibrationSet;
use super::calibrate::{Probe, observe};
use super::scale::{CalibMethod, i8_per_channel, u8_params};
use super::{QuantizeError, QuantizeReport, WeightReport, bias_input, product};

/// One node the int8 rewrite changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Node {
    /// The node's name.
    pub node: String,
    /// The integer op it became (`QLinearMatMul`, `QLinearConv`).
    pub op: &'static str,
    /// The calibrated input range `[lo, hi]` and its `u8` scale and zero
    /// point.
    pub input: ((f32, f32), f32, u8),
    /// The calibrated output range and its parameters, when the result is
    /// requantized to u8 (`None`: the i32 accumulator is rescaled to f32).
    pub output: Option<((f32, f32), f32, u8)>,
}

/// A bias for the float epilogue: a graph value or constant values.
enum Bias {
    Value(ValueId),
    Values(Vec<f32>),
}

/// The integer product of `kind` on `xq` (zero point `zx`, scale `sx`)
/// with the float epilogue that defines `y`. Returns the op's name, the
/// weight's name and shape, its elements and its channels.
fn integer(
    g: &mut Graph,
    name: &str,
    kind: Kind,
    (xq, zx, sx): (ValueId, ValueId, f32),
    y: ValueId,
) -> smelt_ir::Result<(&'static str, String, Vec<usize>, usize, usize)> {
    let konst = |g: &mut Graph, what: &str, t: Tensor| {
        let n = g.fresh_name(&format!("{name}.{what}"));
        g.add_const(n, &t)
    };
    let (op, op_name, w, scales, bshape, bias) = match kind {
        Kind::MatMul {
            w,
            scales,
            k,
            n,
            bias,
        } => (
            Op::Quant(Quant::MatMulInteger),
            "MatMulInteger",
            Tensor::from_vec(vec![k, n], w)?,
            scales,
            vec![n],
            bias.map(|b| Bias::Value(b.0)),
        ),
        Kind::Conv {
            attrs,
            w,
            shape,
            scales,
            bias,
        } => {
            // Per output channel along axis 1 of [N, M, spatial…].
            let mut bshape = vec![shape[0]];
            bshape.extend(std::iter::repeat_n(1, shape.len() - 2));
            (
                Op::Quant(Quant::ConvInteger(attrs)),
                "ConvInteger",
                Tensor::from_vec(shape, w)?,
                scales,
                bshape,
                bias.map(Bias::Values),
            )
        }
    };
    let (wshape, w_len, channels) = (w.shape().to_vec(), w.len(), scales.len());
    let wv = konst(g, "w_int8", w)?;
    let wname = g.value(wv).name.clone();
    let base = g.value(y).name.clone();
    let acc_name = g.fresh_name(&format!("{base}.i32"));
    let acc = g.add_node(name, op, vec![Some(xq), Some(wv), Some(zx)], vec![acc_name])?[0];
    let f_name = g.fresh_name(&format!("{base}.acc"));
    let cast = Op::Elementwise(Elementwise::Cast { to: DType::F32 });
    let accf = g.add_node(format!("{name}.cast"), cast, vec![Some(acc)], vec![f_name])?[0];
    let mult: Vec<f32> = scales.iter().map(|&s| sx * s).collect();
    let mv = konst(g, "scale", Tensor::from_vec(bshape.clone(), mult)?)?;
    let mul = Op::Elementwise(Elementwise::Binary(BinaryFn::Mul));
    let bias = match bias {
        None => None,
        Some(Bias::Value(v)) => Some(v),
        Some(Bias::Values(b)) => Some(konst(g, "bias", Tensor::from_vec(bshape, b)?)?),
    };
    let rescale = format!("{name}.rescale");
    let ins = vec![Some(accf), Some(mv)];
    match bias {
        None => push(
            g,
            Node {
                name: rescale,
                op: mul,
                inputs: ins,
                outputs: vec![y],
            },
        ),
        Some(b) => {
            let sn = g.fresh_name(&format!("{base}.nobias"));
            let scaled = g.add_node(rescale, mul, ins, vec![sn])?[0];
            push(
                g,
                Node {
                    name: format!("{name}.bias"),
                    op: Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                    inputs: vec![Some(scaled), Some(b)],
                    outputs: vec![y],
                },
            );
        }
    }
    Ok((op_name, wname, wshape, w_len, channels))
}

/// The integer form of a node.
enum Kind {
    /// `QLinearMatMul` with the weight `[K, N]` and an optional float bias
    /// `[N]` added after.
    MatMul {
        w: Vec<i8>,
        scales: Vec<f32>,
        k: usize,
        n: usize,
        bias: Option<(ValueId, Vec<f32>)>,
    },
    /// `QLinearConv` with the weight `[M, C/group, kernel…]` and an
    /// optional bias `[M]`.
    Conv {
        attrs: ConvAttrs,
        w: Vec<i8>,
        shape: Vec<usize>,
        scales: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
}

/// A node to rewrite.
struct Candidate {
    node: usize,
    x: ValueId,
    y: ValueId,
    kind: Kind,
}

/// The f32 values of a constant.
fn const_f32(g: &Graph, id: ValueId) -> Option<Vec<f32>> {
    let v = g.value(id);
    if !matches!(v.def, ValueDef::Const(_)) || !v.ty.is_dense() || v.ty.dtype != DType::F32 {
        return None;
    }
    Some(g.const_value(id)?.ok()?.as_slice::<f32>().ok()?.to_vec())
}

/// The integer form of node `i`, `Ok(None)` when it is not a product or
/// convolution with a constant weight, or why it stays float.
fn candidate(g: &mut Graph, i: usize) -> Result<Option<Candidate>, String> {
    let (op, inputs, y) = {
        let n = &g.nodes[i];
        (n.op.clone(), n.inputs.clone(), n.outputs[0])
    };
    if let Op::Conv(ConvOp::Conv { window, group }) = &op {
        let (Some(x), Some(wid)) = (inputs[0], inputs.get(1).copied().flatten()) else {
            return Ok(None);
        };
        let Some(wv) = const_f32(g, wid) else {
            return Ok(None);
        };
        if g.value(x).ty.dtype != DType::F32 {
            return Err(format!("the activation is {}", g.value(x).ty.dtype));
        }
        let shape = g.value(wid).ty.shape.clone();
        let m = shape[0];
        let bias = match inputs.get(2).copied().flatten() {
            None => None,
            Some(b) => Some(const_f32(g, b).ok_or("the bias is not a constant")?),
        };
        let (scales, w) = i8_per_channel(&wv, m);
        return Ok(Some(Candidate {
            node: i,
            x,
            y,
            kind: Kind::Conv {
                attrs: conv_attrs(window, *group),
                w,
                shape,
                scales,
                bias,
            },
        }));
    }
    let Some(p) = product(g, &op, &inputs)? else {
        return Ok(None);
    };
    let shape = g.value(p.w).ty.shape.clone();
    let (k, n) = if p.k_major {
        (shape[0], shape[1])
    } else {
        (shape[1], shape[0])
    };
    let wv = const_f32(g, p.w).ok_or("the weight is not an f32 constant")?;
    let bias = match p.bias {
        None => None,
        Some((c, beta)) => {
            let b = bias_input(g, c, beta, n)?;
            let values = const_f32(g, b).ok_or("the bias is not a constant")?;
            Some((b, values))
        }
    };
    let (scales, q) = i8_per_channel(&p.rows(&wv, k, n), n);
    // QLinearMatMul reads b as [K, N].
    let w = (0..k * n).map(|idx| q[(idx % n) * k + idx / n]).collect();
    Ok(Some(Candidate {
        node: i,
        x: p.x,
        y,
        kind: Kind::MatMul {
            w,
            scales,
            k,
            n,
            bias,
        },
    }))
}

/// `QLinearConv`'s attributes from `Conv`'s window.
fn conv_attrs(w: &Window, group: usize) -> ConvAttrs {
    let opt = |v: &Vec<usize>| (!v.is_empty()).then(|| v.clone());
    ConvAttrs {
        auto_pad: w.auto_pad,
        kernel_shape: w.kernel_shape.clone(),
        strides: opt(&w.strides),
        dilations: opt(&w.dilations),
        pads: opt(&w.pads),
        group,
    }
}

/// The `QuantizeLinear`/`DequantizeLinear` attributes: per tensor.
fn qattrs() -> QAttrs {
    QAttrs {
        axis: 1,
        block_size: 0,
        saturate: true,
        output_dtype: None,
        precision: None,
        opset: 21,
    }
}

/// Records a rewritten node and its int8 weight of `w_len` elements
/// (`after` bytes with the scales and zero points) in `report`.
fn record(
    report: &mut QuantizeReport,
    node: Int8Node,
    weight: String,
    shape: Vec<usize>,
    w_len: usize,
    after: usize,
) {
    report.weights.push(WeightReport {
        node: node.node.clone(),
        weight,
        shape,
        before: w_len * 4,
        after,
        encoding: format!("int8 ({})", node.op),
        fallback: None,
    });
    report.int8.push(node);
}

/// Appends `node` to the graph being rebuilt, pointing its results at it.
pub(crate) fn push(g: &mut Graph, node: Node) {
    let id = NodeId(g.nodes.len() as u32);
    for (k, o) in node.outputs.iter().enumerate() {
        g.values[o.index()].def = ValueDef::Node(id, k);
    }
    g.nodes.push(node);
}

/// Rewrites the nodes `selected` accepts (see the module doc), calibrating
/// on `samples` with `method`. Nodes it cannot rewrite are listed in
/// `report.kept`; the rewritten ones in `report.int8` and their weights in
/// `report.weights`.
pub fn rewrite(
    g: &mut Graph,
    selected: &dyn Fn(&str) -> bool,
    samples: &[Vec<Tensor>],
    method: CalibMethod,
    report: &mut QuantizeReport,
) -> Result<(), QuantizeError> {
    let mut cands = Vec::new();
    for i in 0..g.nodes.len() {
        let name = g.nodes[i].name.clone();
        if !selected(&name) {
            continue;
        }
        match candidate(g, i) {
            Ok(Some(c)) => cands.push(c),
            Ok(None) => {}
            Err(why) => report.kept.push((name, why)),
        }
    }
    if cands.is_empty() {
        return Ok(());
    }
    let mut probes = Vec::new();
    for c in &cands {
        probes.push(Probe {
            value: c.x,
            minus_bias: None,
        });
        let minus_bias = match &c.kind {
            Kind::MatMul {
                bias: Some((_, b)), ..
            } => Some(b.clone()),
            _ => None,
        };
        probes.push(Probe {
            value: c.y,
            minus_bias,
        });
    }
    let obs = observe(g, samples, &probes, method.needs_histogram())?;
    // The results every reader of which is a rewritten node's input (and
    // no graph output) stay u8 (see the module doc).
    let xs: HashMap<ValueId, usize> = cands.iter().map(|c| (c.x, c.node)).collect();
    let chained: std::collections::HashSet<ValueId> = cands
        .iter()
        .filter(|c| {
            let no_bias = !matches!(c.kind, Kind::MatMul { bias: Some(_), .. });
            let readers_ok = g.nodes.iter().enumerate().all(|(i, n)| {
                !n.inputs.iter().flatten().any(|&v| v == c.y)
                    || (n.inputs[0] == Some(c.y)
                        && cands.iter().any(|d| d.node == i)
                        && n.inputs[1..].iter().flatten().all(|&v| v != c.y))
            });
            no_bias && readers_ok && xs.contains_key(&c.y) && !g.outputs.contains(&c.y)
        })
        .map(|c| c.y)
        .collect();
    let old = std::mem::take(&mut g.nodes);
    let mut cand_at: HashMap<usize, (usize, Candidate)> = cands
        .into_iter()
        .enumerate()
        .map(|(ci, c)| (c.node, (ci, c)))
        .collect();
    // Float value -> its u8 form and parameters.
    let mut quantized: HashMap<ValueId, [ValueId; 3]> = HashMap::new();
    let ir = |node: &str| {
        let node = node.to_string();
        move |source| QuantizeError::Ir {
            node: node.clone(),
            source,
        }
    };
    for (i, node) in old.into_iter().enumerate() {
        let Some((ci, c)) = cand_at.remove(&i) else {
            push(g, node);
            continue;
        };
        let name = node.name.clone();
        let e = ir(&name);
        let x_range = obs[2 * ci].range(method);
        let y_range = obs[2 * ci + 1].range(method);
        let (sx, zx) = u8_params(x_range.0, x_range.1);
        let (sy, zy) = u8_params(y_range.0, y_range.1);
        let scalar = |g: &mut Graph, what: &str, t: Tensor| {
            let n = g.fresh_name(&format!("{name}.{what}"));
            g.add_const(n, &t)
        };
        let [xq, sxv, zxv] = match quantized.get(&c.x) {
            Some(&q) => q,
            None => {
                let s = scalar(g, "x_scale", Tensor::scalar(sx)).map_err(&e)?;
                let z = scalar(g, "x_zero_point", Tensor::scalar(zx)).map_err(&e)?;
                let qn = g.fresh_name(&format!("{}.u8", g.value(c.x).name));
                let out = g
                    .add_node(
                        format!("{name}.quantize"),
                        Op::Quant(Quant::QuantizeLinear(qattrs())),
                        vec![Some(c.x), Some(s), Some(z)],
                        vec![qn],
                    )
                    .map_err(&e)?;
                let q = [out[0], s, z];
                quantized.insert(c.x, q);
                q
            }
        };
        if !chained.contains(&c.y) {
            let (op_name, wname, shape, w_len, channels) =
                integer(g, &name, c.kind, (xq, zxv, sx), c.y).map_err(&e)?;
            let node = Int8Node {
                node: name,
                op: op_name,
                input: (x_range, sx, zx),
                output: None,
            };
            record(report, node, wname, shape, w_len, w_len + channels * 4);
            continue;
        }
        let syv = scalar(g, "y_scale", Tensor::scalar(sy)).map_err(&e)?;
        let zyv = scalar(g, "y_zero_point", Tensor::scalar(zy)).map_err(&e)?;
        let (op_name, op, extra, channels, w_len, bias) = match c.kind {
            Kind::MatMul {
                w,
                scales,
                k,
                n,
                bias,
            } => {
                let len = w.len();
                let wt = Tensor::from_vec(vec![k, n], w).map_err(&e)?;
                let st = Tensor::from_vec(vec![n], scales).map_err(&e)?;
                let zt = Tensor::from_vec(vec![n], vec![0i8; n]).map_err(&e)?;
                let ins = vec![wt, st, zt];
                (
                    "QLinearMatMul",
                    Op::Quant(Quant::QLinearMatMul),
                    ins,
                    n,
                    len,
                    bias.map(|b| b.0),
                )
            }
            Kind::Conv {
                attrs,
                w,
                shape,
                scales,
                bias,
            } => {
                let m = shape[0];
                let len = w.len();
                let b32 = bias.map(|b| {
                    b.iter()
                        .zip(&scales)
                        .map(|(&b, &s)| {
                            let q = (b as f64 / (sx as f64 * s as f64)).round_ties_even();
                            q.clamp(i32::MIN as f64, i32::MAX as f64) as i32
                        })
                        .collect::<Vec<i32>>()
                });
                let mut ins = vec![
                    Tensor::from_vec(shape, w).map_err(&e)?,
                    Tensor::from_vec(vec![m], scales).map_err(&e)?,
                    Tensor::from_vec(vec![m], vec![0i8; m]).map_err(&e)?,
                ];
                if let Some(b) = b32 {
                    ins.push(Tensor::from_vec(vec![m], b).map_err(&e)?);
                }
                (
                    "QLinearConv",
                    Op::Quant(Quant::QLinearConv(attrs)),
                    ins,
                    m,
                    len,
                    None,
                )
            }
        };
        let mut consts = Vec::new();
        for (what, t) in ["w_int8", "w_scale", "w_zero_point", "bias_int32"]
            .iter()
            .zip(extra)
        {
            consts.push(scalar(g, what, t).map_err(&e)?);
        }
        let wname = g.value(consts[0]).name.clone();
        let mut inputs = vec![xq, sxv, zxv, consts[0], consts[1], consts[2], syv, zyv];
        inputs.extend(consts.get(3).copied());
        let yq_name = g.fresh_name(&format!("{}.u8", g.value(c.y).name));
        let yq = g
            .add_node(
                name.clone(),
                op,
                inputs.into_iter().map(Some).collect(),
                vec![yq_name],
            )
            .map_err(&e)?[0];
        let dq = Op::Quant(Quant::DequantizeLinear(qattrs()));
        let dq_inputs = vec![Some(yq), Some(syv), Some(zyv)];
        match bias {
            None => {
                quantized.insert(c.y, [yq, syv, zyv]);
                push(
                    g,
                    Node {
                        name: format!("{name}.dequantize"),
                        op: dq,
                        inputs: dq_inputs,
                        outputs: vec![c.y],
                    },
                );
            }
            Some(b) => {
                let dn = g.fresh_name(&format!("{}.nobias", g.value(c.y).name));
                let d = g
                    .add_node(format!("{name}.dequantize"), dq, dq_inputs, vec![dn])
                    .map_err(&e)?[0];
                push(
                    g,
                    Node {
                        name: format!("{name}.bias"),
                        op: Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                        inputs: vec![Some(d), Some(b)],
                        outputs: vec![c.y],
                    },
                );
            }
        }
        let shape = g.value(consts[0]).ty.shape.clone();
        let node = Int8Node {
            node: name,
            op: op_name,
            input: (x_range, sx, zx),
            output: Some((y_range, sy, zy)),
        };
        record(report, node, wname, shape, w_len, w_len + channels * 5);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::{QuantizeOptions, Scheme, quantize};
    use smelt_ir::OpDef;
    use smelt_ir::ops::linalg::Linalg;
    use smelt_ir::{TensorType, interp::Interpreter};

    /// `y = (x · w1) · w2`: the first product's result is read only by the
    /// second, so it stays u8 between them.
    #[test]
    fn consecutive_products_keep_u8_between_them() {
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![2, 4]))
            .unwrap();
        let w = |g: &mut Graph, n: &str, k: f32| {
            let v: Vec<f32> = (0..16).map(|i| ((i as f32) * k).sin()).collect();
            g.add_const(n, &Tensor::from_vec(vec![4, 4], v).unwrap())
                .unwrap()
        };
        let (w1, w2) = (w(&mut g, "w1", 0.7), w(&mut g, "w2", 1.3));
        let mm = Op::Linalg(Linalg::MatMul);
        let h = g
            .add_node("mm1", mm.clone(), vec![Some(x), Some(w1)], vec!["h".into()])
            .unwrap()[0];
        let y = g
            .add_node("mm2", mm, vec![Some(h), Some(w2)], vec!["y".into()])
            .unwrap()[0];
        g.outputs = vec![y];
        let sample = |s: f32| {
            let v: Vec<f32> = (0..8).map(|i| (i as f32 * s).cos()).collect();
            vec![Tensor::from_vec(vec![2, 4], v).unwrap()]
        };
        let set = CalibrationSet {
            samples: (1..6).map(|s| sample(s as f32)).collect(),
        };
        let mut q = g.clone();
        let r = quantize(
            &mut q,
            &QuantizeOptions::new(Scheme::Int8).calibrate(set.clone()),
        )
        .unwrap();
        let ops: Vec<&str> = q.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(
            ops,
            [
                "QuantizeLinear",
                "QLinearMatMul",
                "MatMulInteger",
                "Cast",
                "Mul"
            ],
            "{r}"
        );
        assert!(r.int8[0].output.is_some() && r.int8[1].output.is_none());
        // And it still computes the product.
        let f = Interpreter::new(&g).run(set.samples[0].clone()).unwrap();
        let o = Interpreter::new(&q).run(set.samples[0].clone()).unwrap();
        let (a, b) = (
            f[0].as_slice::<f32>().unwrap(),
            o[0].as_slice::<f32>().unwrap(),
        );
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() < 0.05 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
