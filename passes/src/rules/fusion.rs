//! Fusion: fewer, bigger kernels.
//!
//! - BatchNormalization folded into the Conv, Gemm or MatMul before it: the
//!   weights are scaled per output channel, the bias shifted (the new
//!   constants fold at compile time).
//! - `MatMul + Add(bias)` becomes `Gemm` where Gemm's shapes allow.
//! - Decomposed activations and normalizations recognised as the IR's fused
//!   ops: GELU (erf and tanh forms) → `Gelu`, `x * sigmoid(x)` → `Swish`
//!   with `alpha = 1` (SiLU: the IR's `Swish` is that function, so no new op
//!   is needed), `x * HardSigmoid(x)` → `HardSwish`, `exp(x - max) / Σ` →
//!   `Softmax`, the mean/variance chain → `LayerNormalization`.
//! - Activations (Relu, Clip with constant bounds, Sigmoid, Tanh, HardSwish,
//!   Gelu, Swish/SiLU) after a Conv, Gemm or MatMul whose result has no other
//!   user become that op's epilogue: `FusedConv`, `FusedGemm`,
//!   `FusedMatMul` (`ir/src/ops/fused.rs`), applied by the kernel as it
//!   stores the result.
//! - A residual `Add` of such a product and another tensor of the same type
//!   (ResNet's `Relu(Conv(x) + x)`, MobileNetV2's `Conv(…) + x`) becomes
//!   the fused op's residual input, added in the store before the
//!   activation.
//!
//! - A product with a decoded weight (`MatMul(x, Transpose(Decode(w)))`,
//!   `Gemm(x, Decode(w), transB=1)` with an optional 1-D bias) becomes the
//!   weight-only kernel `EncodedMatMul(x, w[, c])` (`ir/src/ops/weights.rs`),
//!   which reads `w` in its stored encoding.
//!
//! Every recognition checks the constants it relies on (`0.5`, `√2`, the
//! `0.044715` of the tanh form, `1/6`, `3`, `6`) and the axes, and builds the
//! fused op only if it type-checks to the matched class's type. Constants
//! exporters round (`√2`, `√(2/π)`) are accepted within a relative `1e-4`;
//! the fused op then uses the exact constant, a difference far inside the
//! ops' tolerance.

use egg::{Id, Subst, rewrite as rw};
use smelt_ir::Tensor;
use smelt_ir::ops::Op;
use smelt_ir::ops::conv::ConvOp;
use smelt_ir::ops::elementwise::{BinaryFn, Elementwise, Epilogue, UnaryFn};
use smelt_ir::ops::fused::Fused;
use smelt_ir::ops::layout::Layout;
use smelt_ir::ops::linalg::{GemmAttrs, Linalg};
use smelt_ir::ops::norm::{Norm, SoftmaxFn};
use smelt_ir::ops::reduce::{Reduce, ReduceKind};
use smelt_ir::ops::weights::Weights;

use super::{
    Apply, Rule, add_lit, add_op, add_op_typed, is_near, is_splat, ops_named, small_value, ty,
    value, var,
};
use crate::egraph::analysis::EG;

/// Relative tolerance for constants exporters round.
const NEAR: f64 = 1e-4;

fn unary(f: UnaryFn) -> Op {
    Op::Elementwise(Elementwise::Unary(f))
}

fn binary(f: BinaryFn) -> Op {
    Op::Elementwise(Elementwise::Binary(f))
}

/// `scale / sqrt(var + eps)` and `B - mean * k` of a BatchNormalization, per
/// channel, when every parameter is a constant.
fn bn_affine(eg: &EG, args: &[Id], eps: f32) -> Option<(Vec<f64>, Vec<f64>)> {
    let s = value(eg, args[1])?.to_f64_vec();
    let b = value(eg, args[2])?.to_f64_vec();
    let m = value(eg, args[3])?.to_f64_vec();
    let v = value(eg, args[4])?.to_f64_vec();
    let n = s.len();
    if [b.len(), m.len(), v.len()] != [n, n, n] {
        return None;
    }
    let k: Vec<f64> = (0..n).map(|c| s[c] / (v[c] + eps as f64).sqrt()).collect();
    let shift: Vec<f64> = (0..n).map(|c| b[c] - m[c] * k[c]).collect();
    Some((k, shift))
}

fn f64_tensor(shape: Vec<usize>, v: Vec<f64>, like: smelt_ir::DType) -> Option<Tensor> {
    Some(Tensor::from_vec(shape, v).ok()?.cast(like))
}

/// The BatchNormalizations of a class whose parameters are constants:
/// `(input, k, shift)`.
fn bn_nodes(eg: &EG, id: Id) -> Vec<(Id, Vec<f64>, Vec<f64>)> {
    ops_named(eg, id, "BatchNormalization")
        .into_iter()
        .filter_map(|(op, args)| {
            let Op::Norm(Norm::BatchNormalization {
                epsilon,
                spatial: true,
            }) = &*op
            else {
                return None;
            };
            let (k, shift) = bn_affine(eg, &args, *epsilon)?;
            Some((args[0], k, shift))
        })
        .collect()
}

/// `BN(Conv(x, W, b)) => Conv(x, W * k, b * k + shift)` with
/// `k = scale / sqrt(var + eps)`, `shift = B - mean * k`: BN is an affine map
/// per output channel, and a convolution is linear in its weights.
fn bn_into_conv(eg: &mut EG, id: Id, _s: &Subst) -> Option<Id> {
    // Already folded in an earlier iteration: the class holds the Conv (the
    // rule fires again every iteration; re-scaling a large weight would cost
    // time for nothing).
    if !ops_named(eg, id, "Conv").is_empty() {
        return None;
    }
    let want = ty(eg, id)?;
    for (y, k, shift) in bn_nodes(eg, id) {
        for (op, args) in ops_named(eg, y, "Conv") {
            let Op::Conv(ConvOp::Conv { .. }) = &*op else {
                continue;
            };
            let w = args[1];
            let wt = ty(eg, w)?;
            if !eg[w].data.is_const || wt.shape.first() != Some(&k.len()) {
                continue;
            }
            // W' = W * k per output channel, computed here in one pass (a
            // Mul e-node would fold to the same, through the generic
            // broadcasting kernel, which is slow on large weights).
            let wv = value(eg, w)?;
            let per = (wv.len() / k.len()).max(1);
            let scaled = match wv.as_slice::<f32>() {
                // The common case without a detour through f64 tensors (the
                // product is still formed in f64 and rounded once).
                Ok(sl) => Tensor::from_vec(
                    wt.shape.clone(),
                    sl.iter()
                        .enumerate()
                        .map(|(i, &x)| (x as f64 * k[i / per]) as f32)
                        .collect::<Vec<f32>>(),
                )
                .ok()?,
                Err(_) => {
                    let v: Vec<f64> = wv
                        .to_f64_vec()
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| x * k[i / per])
                        .collect();
                    f64_tensor(wt.shape.clone(), v, wt.dtype)?
                }
            };
            let w2 = add_lit(eg, scaled);
            let old_b = match args.get(2) {
                Some(&b) if ty(eg, b).is_some() => value(eg, b)?.to_f64_vec(),
                _ => vec![0.0; k.len()],
            };
            let b2: Vec<f64> = (0..k.len()).map(|c| old_b[c] * k[c] + shift[c]).collect();
            let b2 = add_lit(eg, f64_tensor(vec![k.len()], b2, wt.dtype)?);
            let x = args[0];
            return add_op_typed(eg, (*op).clone(), vec![x, w2, b2], &want);
        }
    }
    None
}

/// `BN(MatMul(x, W)) => Gemm(x, W * k, shift)` for a 2-D `x` and constant
/// `W: [K, C]` (BN's channel axis is axis 1 of the `[N, C]` product), and
/// `BN(Gemm(a, B, c)) => Gemm(a, B * k, beta*c*k + shift)`: the product is
/// linear in `B`'s output columns.
fn bn_into_gemm(eg: &mut EG, id: Id, _s: &Subst) -> Option<Id> {
    let want = ty(eg, id)?;
    // Already folded in an earlier iteration (see `bn_into_conv`).
    if want.shape.len() != 2 || !ops_named(eg, id, "Gemm").is_empty() {
        return None;
    }
    for (y, k, shift) in bn_nodes(eg, id) {
        let n = k.len();
        let cands: Vec<(Option<GemmAttrs>, Vec<Id>)> = ops_named(eg, y, "MatMul")
            .into_iter()
            .map(|(_, a)| (None, a))
            .chain(
                ops_named(eg, y, "Gemm")
                    .into_iter()
                    .filter_map(|(op, a)| match &*op {
                        Op::Linalg(Linalg::Gemm(g)) => Some((Some(*g), a)),
                        _ => None,
                    }),
            )
            .collect();
        for (g, args) in cands {
            let w = args[1];
            let wt = ty(eg, w)?;
            if !eg[w].data.is_const || wt.shape.len() != 2 {
                continue;
            }
            let trans_b = g.is_some_and(|g| g.trans_b);
            // B's output-channel axis: columns, or rows when transposed.
            let kshape = if trans_b { vec![n, 1] } else { vec![1, n] };
            let klit = add_lit(eg, f64_tensor(kshape, k.clone(), wt.dtype)?);
            let w2 = add_op(eg, binary(BinaryFn::Mul), vec![w, klit])?;
            let (alpha, beta, trans_a) = g
                .map(|g| (g.alpha, g.beta, g.trans_a))
                .unwrap_or((1.0, 1.0, false));
            let c2 = match g
                .and_then(|_| args.get(2).copied())
                .filter(|&c| ty(eg, c).is_some())
            {
                Some(c) => {
                    let ct = ty(eg, c)?;
                    // beta * c * k + shift, broadcast to [n], [1, n] or [m, n].
                    let kl = add_lit(
                        eg,
                        f64_tensor(
                            vec![n],
                            k.iter().map(|x| x * beta as f64).collect(),
                            ct.dtype,
                        )?,
                    );
                    let ck = add_op(eg, binary(BinaryFn::Mul), vec![c, kl])?;
                    let sh = add_lit(eg, f64_tensor(vec![n], shift.clone(), ct.dtype)?);
                    add_op(eg, binary(BinaryFn::Add), vec![ck, sh])?
                }
                None => add_lit(eg, f64_tensor(vec![n], shift.clone(), wt.dtype)?),
            };
            let attrs = GemmAttrs::new()
                .with_scales(alpha, 1.0)
                .with_trans(trans_a, trans_b);
            if let Some(r) = add_op_typed(
                eg,
                Op::Linalg(Linalg::Gemm(attrs)),
                vec![args[0], w2, c2],
                &want,
            ) {
                return Some(r);
            }
        }
    }
    None
}

/// `MatMul(a, b) + c => Gemm(a, b, c)` for 2-D `a`, `b` when `c` broadcasts
/// to the product (Gemm's `C` broadcasts one way, to `[M, N]`, which the
/// type check enforces).
fn matmul_add_gemm(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (a, b, c) = (s[var("?a")], s[var("?b")], s[var("?c")]);
    if ty(eg, a)?.shape.len() != 2 || ty(eg, b)?.shape.len() != 2 {
        return None;
    }
    let want = ty(eg, id)?;
    let g = GemmAttrs::new();
    add_op_typed(eg, Op::Linalg(Linalg::Gemm(g)), vec![a, b, c], &want)
}

/// The stored weights `w` of the `Decode(w)` e-nodes of class `d`.
fn decoded(eg: &EG, d: Id) -> Vec<Id> {
    ops_named(eg, d, "Decode")
        .into_iter()
        .filter(|(op, _)| matches!(**op, Op::Weights(Weights::Decode)))
        .map(|(_, args)| args[0])
        .collect()
}

/// `MatMul(x, Transpose<perm=[1,0]>(Decode(w))) => EncodedMatMul(x, w)`:
/// the transposed decoded weight is `decode(w)ᵀ`, and `EncodedMatMul` is
/// defined as `MatMul(x, Transpose(Decode(w)))` (`ir/src/ops/weights.rs`);
/// the result type is checked equal, so only a 2-D weight matches.
fn matmul_decoded(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (x, wt) = (s[var("?x")], s[var("?wt")]);
    let want = ty(eg, id)?;
    let ws: Vec<Id> = ops_named(eg, wt, "Transpose")
        .into_iter()
        .filter(|(op, args)| {
            let perm = match &**op {
                Op::Layout(Layout::Transpose { perm }) => perm.as_deref(),
                _ => return false,
            };
            // The default permutation reverses the dims: [1, 0] in 2-D.
            let rank2 = ty(eg, args[0]).is_some_and(|t| t.shape.len() == 2);
            rank2 && matches!(perm, None | Some([1, 0]))
        })
        .flat_map(|(_, args)| decoded(eg, args[0]))
        .collect();
    let mm = Op::Weights(Weights::EncodedMatMul);
    ws.into_iter()
        .find_map(|w| add_op_typed(eg, mm.clone(), vec![x, w], &want))
}

/// `Gemm<transB=1>(x, Decode(w)[, c]) => EncodedMatMul(x, w[, c])` when
/// `alpha = 1`, `transA = 0` and (with `c`) `beta = 1`: Gemm is then
/// `x · decode(w)ᵀ + c`, `EncodedMatMul`'s definition; the bias must be a
/// 1-D `[N]` (`EncodedMatMul`'s type rule refuses any other, so a `c` that
/// broadcasts differently never matches).
fn gemm_decoded(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (x, dw) = (s[var("?x")], s[var("?w")]);
    // Canonical ids: the operands `ops_named` gives are, and a class the
    // substitution names may have been merged since the search.
    let c = s
        .get(var("?c"))
        .map(|&c| eg.find(c))
        .filter(|&c| ty(eg, c).is_some());
    let want = ty(eg, id)?;
    let gemm_ok = ops_named(eg, id, "Gemm").into_iter().any(|(op, args)| {
        let Op::Linalg(Linalg::Gemm(g)) = &*op else {
            return false;
        };
        let same_c = args.get(2).copied().filter(|&a| ty(eg, a).is_some()) == c;
        args[0] == eg.find(x)
            && args[1] == eg.find(dw)
            && same_c
            && g.alpha == 1.0
            && !g.trans_a
            && g.trans_b
            && (c.is_none() || g.beta == 1.0)
    });
    if !gemm_ok {
        return None;
    }
    let mm = Op::Weights(Weights::EncodedMatMul);
    decoded(eg, dw).into_iter().find_map(|w| {
        let args = std::iter::once(x).chain([w]).chain(c).collect();
        add_op_typed(eg, mm.clone(), args, &want)
    })
}

/// Builds `f(x)` if it has the matched class's type.
fn build_unary(eg: &mut EG, id: Id, x: Id, f: UnaryFn) -> Option<Id> {
    let want = ty(eg, id)?;
    if !want.dtype.is_float() {
        return None;
    }
    add_op_typed(eg, unary(f), vec![x], &want)
}

/// GELU, erf form: `(x * (erf(x / √2) + 1)) * 0.5 => Gelu(x)`.
fn gelu_erf(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let ok = is_near(eg, s[var("?r2")], std::f64::consts::SQRT_2, NEAR)
        && is_splat(eg, s[var("?one")], 1.0)
        && is_splat(eg, s[var("?half")], 0.5);
    if !ok {
        return None;
    }
    build_unary(eg, id, s[var("?x")], UnaryFn::Gelu { tanh: false })
}

/// GELU, tanh form: `(x * 0.5) * (tanh((x + x³ * 0.044715) * √(2/π)) + 1)`.
fn gelu_tanh(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let ok = is_splat(eg, s[var("?three")], 3.0)
        && is_near(eg, s[var("?k")], 0.044715, NEAR)
        && is_near(eg, s[var("?c")], c, NEAR)
        && is_splat(eg, s[var("?one")], 1.0)
        && is_splat(eg, s[var("?half")], 0.5);
    if !ok {
        return None;
    }
    build_unary(eg, id, s[var("?x")], UnaryFn::Gelu { tanh: true })
}

/// `x * sigmoid(x) => Swish<alpha=1>(x)` (SiLU).
fn silu(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    build_unary(eg, id, s[var("?x")], UnaryFn::Swish { alpha: 1.0 })
}

/// `x * HardSigmoid<alpha=1/6, beta=1/2>(x) => HardSwish(x)`.
fn hardswish_hs(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let x = eg.find(s[var("?x")]);
    let hs = s[var("?h")];
    let matched = ops_named(eg, hs, "HardSigmoid")
        .into_iter()
        .any(|(op, args)| {
            matches!(&*op, Op::Elementwise(Elementwise::Unary(UnaryFn::HardSigmoid { alpha, beta }))
            if (*alpha as f64 - 1.0 / 6.0).abs() < 1e-6 && *beta == 0.5)
                && args[0] == x
        });
    if !matched {
        return None;
    }
    build_unary(eg, id, x, UnaryFn::HardSwish)
}

/// `x * Clip(x + 3, 0, 6) / 6 => HardSwish(x)`.
fn hardswish_clip(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let ok = is_splat(eg, s[var("?three")], 3.0)
        && is_splat(eg, s[var("?lo")], 0.0)
        && is_splat(eg, s[var("?hi")], 6.0)
        && is_splat(eg, s[var("?six")], 6.0);
    if !ok {
        return None;
    }
    build_unary(eg, id, s[var("?x")], UnaryFn::HardSwish)
}

/// The axes and keepdims of a reduction node (attribute or constant input).
fn reduce_axes(eg: &EG, op: &Op, args: &[Id], kind: ReduceKind) -> Option<(Vec<i64>, bool)> {
    let Op::Reduce(Reduce::Reduce {
        kind: k,
        axes,
        keepdims,
        noop_with_empty_axes: _,
    }) = op
    else {
        return None;
    };
    if *k != kind {
        return None;
    }
    let axes = match axes {
        Some(a) => a.clone(),
        None => small_value(eg, *args.get(1)?)?.to_i64_vec(),
    };
    if axes.is_empty() {
        return None;
    }
    Some((axes, *keepdims))
}

/// Normalizes axes against a rank.
fn norm_axes(axes: &[i64], rank: usize) -> Option<Vec<usize>> {
    let mut v: Vec<usize> = axes
        .iter()
        .map(|&a| {
            usize::try_from(if a < 0 { a + rank as i64 } else { a })
                .ok()
                .filter(|&a| a < rank)
        })
        .collect::<Option<_>>()?;
    v.sort_unstable();
    v.dedup();
    Some(v)
}

/// The single axis a keepdims reduction of `kind` over `x` in class `id`
/// reduces.
fn reduces_one_axis(eg: &EG, id: Id, x: Id, kind: ReduceKind, name: &str) -> Option<usize> {
    let rank = ty(eg, x)?.shape.len();
    ops_named(eg, id, name).into_iter().find_map(|(op, args)| {
        if eg.find(args[0]) != eg.find(x) {
            return None;
        }
        let (axes, keep) = reduce_axes(eg, &op, &args, kind)?;
        let axes = norm_axes(&axes, rank)?;
        (keep && axes.len() == 1).then(|| axes[0])
    })
}

/// `exp(x - max(x)) / Σ exp(x - max(x)) => Softmax(x)` over one axis (also
/// without the max subtraction, which only guards against overflow).
fn softmax(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let e = eg.find(s[var("?e")]);
    let axis = reduces_one_axis(eg, s[var("?sum")], e, ReduceKind::Sum, "ReduceSum")?;
    // e = Exp(t), t = x - ReduceMax(x) or t = x.
    for (_, eargs) in ops_named(eg, e, "Exp") {
        let t = eargs[0];
        let mut inputs = vec![t];
        for (_, sargs) in ops_named(eg, t, "Sub") {
            if reduces_one_axis(eg, sargs[1], sargs[0], ReduceKind::Max, "ReduceMax") == Some(axis)
            {
                inputs.push(sargs[0]);
            }
        }
        // Prefer the max-subtracted input (its softmax is the same function).
        let x = *inputs.last()?;
        let op = Op::Norm(Norm::Softmax {
            f: SoftmaxFn::Softmax,
            axis: axis as i64,
            flatten: false,
        });
        let want = ty(eg, id)?;
        if let Some(r) = add_op_typed(eg, op, vec![x], &want) {
            return Some(r);
        }
    }
    None
}

/// LayerNorm: with `d = x - mean(x)` and `v = mean(d²)` over the last axes,
/// `d / sqrt(v + eps) * g + b => LayerNormalization(x, g, b)`.
fn layernorm(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (d, v, eps, g, b) = (
        eg.find(s[var("?d")]),
        eg.find(s[var("?v")]),
        s[var("?eps")],
        s[var("?g")],
        s[var("?b")],
    );
    let eps = small_value(eg, eps).filter(|t| t.len() == 1)?.to_f64_vec()[0];
    for (_, sargs) in ops_named(eg, d, "Sub") {
        let x = eg.find(sargs[0]);
        let rank = ty(eg, x)?.shape.len();
        let axis = reduces_one_axis(eg, sargs[1], x, ReduceKind::Mean, "ReduceMean")?;
        if axis + 1 != rank {
            continue;
        }
        // v = mean(d^2) or mean(d*d) over the same axis.
        let sq_ok = ops_named(eg, v, "ReduceMean")
            .into_iter()
            .any(|(op, args)| {
                let a = eg.find(args[0]);
                let axes_ok = reduce_axes(eg, &op, &args, ReduceKind::Mean)
                    .and_then(|(ax, keep)| Some((norm_axes(&ax, rank)?, keep)))
                    .is_some_and(|(ax, keep)| keep && ax == [axis]);
                let pow = ops_named(eg, a, "Pow")
                    .into_iter()
                    .any(|(_, p)| eg.find(p[0]) == d && is_splat(eg, p[1], 2.0));
                let mul = ops_named(eg, a, "Mul")
                    .into_iter()
                    .any(|(_, p)| eg.find(p[0]) == d && eg.find(p[1]) == d);
                axes_ok && (pow || mul)
            });
        if !sq_ok {
            continue;
        }
        let op = Op::Norm(Norm::LayerNormalization {
            axis: axis as i64,
            epsilon: eps as f32,
            stash_type: smelt_ir::DType::F32,
        });
        let want = ty(eg, id)?;
        if let Some(r) = add_op_typed(eg, op, vec![x, g, b], &want) {
            return Some(r);
        }
    }
    None
}

/// RMSNorm: `x / sqrt(mean(x²) + eps) * g => RMSNormalization(x, g)` over
/// the last axis.
fn rmsnorm(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (x, ms, eps, g) = (
        eg.find(s[var("?x")]),
        eg.find(s[var("?ms")]),
        s[var("?eps")],
        s[var("?g")],
    );
    let eps = small_value(eg, eps).filter(|t| t.len() == 1)?.to_f64_vec()[0];
    let rank = ty(eg, x)?.shape.len();
    // ms = mean(x^2) or mean(x*x) over the last axis, keepdims.
    let ok = ops_named(eg, ms, "ReduceMean")
        .into_iter()
        .any(|(op, args)| {
            let a = eg.find(args[0]);
            let axes_ok = reduce_axes(eg, &op, &args, ReduceKind::Mean)
                .and_then(|(ax, keep)| Some((norm_axes(&ax, rank)?, keep)))
                .is_some_and(|(ax, keep)| keep && ax == [rank - 1]);
            let pow = ops_named(eg, a, "Pow")
                .into_iter()
                .any(|(_, p)| eg.find(p[0]) == x && is_splat(eg, p[1], 2.0));
            let mul = ops_named(eg, a, "Mul")
                .into_iter()
                .any(|(_, p)| eg.find(p[0]) == x && eg.find(p[1]) == x);
            axes_ok && (pow || mul)
        });
    if !ok {
        return None;
    }
    let op = Op::Norm(Norm::RmsNormalization {
        axis: rank as i64 - 1,
        epsilon: eps as f32,
    });
    let want = ty(eg, id)?;
    add_op_typed(eg, op, vec![x, g], &want)
}

/// Scaled dot-product attention: `softmax(Q·Kᵀ·c) · V => Attention(Q, K, V)`
/// with `scale = c` for 4-D `[batch, heads, seq, head]` operands. `Kᵀ` is
/// whatever the graph has; `K` is rebuilt as its last-two-axes transpose
/// (which the layout rules then compose with the transpose that made `Kᵀ`).
/// The fused op computes the same softmax over the keys without writing the
/// score matrix to memory.
fn attention(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (sc, v) = (eg.find(s[var("?s")]), eg.find(s[var("?v")]));
    let want = ty(eg, id)?;
    if want.shape.len() != 4 || ty(eg, v)?.shape.len() != 4 || !want.dtype.is_float() {
        return None;
    }
    // The matched MatMul's first operand must be a last-axis Softmax of ?s.
    let soft_ok = ops_named(eg, id, "MatMul").into_iter().any(|(_, a)| {
        ops_named(eg, a[0], "Softmax").into_iter().any(|(op, sa)| {
            eg.find(sa[0]) == sc
                && matches!(&*op, Op::Norm(Norm::Softmax { f: SoftmaxFn::Softmax, axis, flatten: false })
                    if *axis == -1 || *axis == 3)
        }) && eg.find(a[1]) == v
    });
    if !soft_ok {
        return None;
    }
    // ?s = QKᵀ * c, QKᵀ / c, or QKᵀ.
    let mut forms: Vec<(Id, f64)> = vec![(sc, 1.0)];
    for (_, a) in ops_named(eg, sc, "Mul") {
        if let Some(c) = small_value(eg, a[1]).filter(|t| t.len() == 1) {
            forms.push((a[0], c.to_f64_vec()[0]));
        }
    }
    for (_, a) in ops_named(eg, sc, "Div") {
        if let Some(c) = small_value(eg, a[1]).filter(|t| t.len() == 1) {
            forms.push((a[0], 1.0 / c.to_f64_vec()[0]));
        }
    }
    for (qk, scale) in forms {
        for (_, a) in ops_named(eg, qk, "MatMul") {
            let (q, kt) = (a[0], a[1]);
            if ty(eg, q)?.shape.len() != 4 || ty(eg, kt)?.shape.len() != 4 {
                continue;
            }
            let k = add_op(
                eg,
                Op::Layout(Layout::Transpose {
                    perm: Some(vec![0, 1, 3, 2]),
                }),
                vec![kt],
            )?;
            let attrs = smelt_ir::ops::linalg::AttentionAttrs {
                is_causal: false,
                q_num_heads: None,
                kv_num_heads: None,
                qk_matmul_output_mode: 0,
                scale: Some(scale as f32),
                softcap: 0.0,
                softmax_precision: None,
                left_window: -1,
                right_window: -1,
            };
            if let Some(r) = add_op_typed(
                eg,
                Op::Linalg(Linalg::Attention(attrs)),
                vec![q, k, v],
                &want,
            ) {
                return Some(r);
            }
        }
    }
    None
}

/// True when the class `y` has one consumer, the activation class `id`:
/// it is no graph output, and every e-node using it is in `id` or in a class
/// that is itself used only on the way to `id` (the `Sigmoid(y)` of
/// `y * Sigmoid(y)`, the `Erf(y / √2)` chain of a decomposed GELU), up to
/// [`USE_DEPTH`] classes deep.
///
/// Why: extraction is a tree cost (see `egraph/cost.rs`), blind to sharing.
/// Were `y` also used elsewhere, the activation's class would still pick the
/// fused op (it looks cheaper than the product plus the activation) while
/// the other user keeps the plain product: the product would run twice.
/// The check is conservative: e-nodes added by other rules that extraction
/// will not pick also count as users, which only forgoes a fusion. It is
/// made when the rule fires: a user that a later rewrite gives `y` is not
/// seen (transpose sinking turns `Transpose(Relu(y))` into
/// `Relu(Transpose(y))`). Extraction then still prefers the form through the
/// fused class, which its tree cost counts as cheaper than the product plus
/// the activation, but that is a preference, not a guarantee; a DAG-aware
/// extraction (see `docs/optimizer.md`) would make it one.
fn sole_user(eg: &EG, y: Id, id: Id) -> bool {
    let (y, id) = (eg.find(y), eg.find(id));
    !is_root(eg, y) && eg[y].parents().all(|p| leads_only_to(eg, p, id, USE_DEPTH))
}

/// True when every use of class `y` is an e-node of class `id` and `y` is
/// no graph output: the strict form of [`sole_user`] the residual rule
/// needs. There, a second use that leads back to `id` is the residual's own
/// computation (MobileNetV2's `P₁ + P₂(…(P₁))`: the block's input is also the
/// expansion's input); fusing `P₁` with `P₂(…)` as the residual would still
/// need `P₁` computed on its own, so `P₁` would run twice.
fn only_user(eg: &EG, y: Id, id: Id) -> bool {
    let (y, id) = (eg.find(y), eg.find(id));
    !is_root(eg, y) && eg[y].parents().all(|p| eg.find(p) == id)
}

/// How many classes deep [`sole_user`] follows the uses of a product.
const USE_DEPTH: usize = 8;

fn is_root(eg: &EG, c: Id) -> bool {
    eg.analysis.roots.iter().any(|&r| eg.find(r) == c)
}

/// True when class `c` is `id`, or is no graph output and all its users
/// lead only to `id` within `depth` steps.
fn leads_only_to(eg: &EG, c: Id, id: Id, depth: usize) -> bool {
    let c = eg.find(c);
    c == id
        || (depth > 0
            && !is_root(eg, c)
            && eg[c].parents().len() > 0
            && eg[c].parents().all(|p| leads_only_to(eg, p, id, depth - 1)))
}

/// `act(P(…)) => FusedP<act>(…)` for `P` a Conv, Gemm or MatMul in class
/// `y` whose only user is the activation (see [`sole_user`]). Sound by
/// definition: a fused op is the composition (`ir/src/ops/fused.rs`).
fn into_product(eg: &mut EG, id: Id, y: Id, act: Epilogue) -> Option<Id> {
    let want = ty(eg, id)?;
    // Fused in an earlier iteration (the rule fires again every iteration).
    if !want.dtype.is_float() || FUSED.iter().any(|n| !ops_named(eg, id, n).is_empty()) {
        return None;
    }
    if !sole_user(eg, y, id) {
        return None;
    }
    for (op, args) in fusible(eg, y) {
        {
            let f = match &*op {
                // A residual fused earlier, no activation yet:
                // act(P(…) + r) with the Add already in the store.
                Op::Fused(f) if f.act().is_none() => {
                    Fused::with(f.base().clone(), f.residual(), Some(act))
                }
                Op::Fused(_) => None,
                other => Fused::new(other.clone(), act),
            };
            let Some(f) = f else {
                continue;
            };
            if let Some(r) = add_op_typed(eg, Op::Fused(f), args, &want) {
                return Some(r);
            }
        }
    }
    None
}

/// The names of the fused ops (a class holding one was fused already).
const FUSED: [&str; 4] = ["FusedConv", "FusedGemm", "FusedMatMul", "FusedElementwise"];

/// The e-nodes of class `y` an epilogue can fuse into, products first: a
/// Conv, Gemm or MatMul, a residual-only fused op, and an element-wise op
/// that may head a chain ([`Fused::chain_head`]: float arithmetic, the
/// activations).
fn fusible(eg: &EG, y: Id) -> Vec<(std::sync::Arc<Op>, Vec<Id>)> {
    let mut out: Vec<_> = ["Conv", "Gemm", "MatMul"]
        .into_iter()
        .chain(FUSED)
        .flat_map(|n| ops_named(eg, y, n))
        .collect();
    for n in &eg[y].nodes {
        if let crate::egraph::lang::ENode::Op(o, args) = n
            && o.outputs == 1
            && matches!(&*o.op, Op::Elementwise(e) if Fused::chain_head(e))
        {
            out.push((o.op.clone(), args.clone()));
        }
    }
    out
}

/// `P(…) + r => FusedP<residual>(…, r)` (either operand order) for `P` a
/// Conv, Gemm or MatMul in class `y` whose only user is the `Add` (see
/// [`only_user`]) and `r` a different class of exactly the sum's type (no
/// broadcasting: the kernel reads `r` at the index of the element it
/// stores). Sound by definition: the fused op is `base(…) + r`
/// (`ir/src/ops/fused.rs`), the `Add` of the same two tensors.
fn residual_into_product(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let want = ty(eg, id)?;
    // Fused in an earlier iteration (the rule fires again every iteration).
    if !want.dtype.is_float() || FUSED.iter().any(|n| !ops_named(eg, id, n).is_empty()) {
        return None;
    }
    let (a, b) = (eg.find(s[var("?a")]), eg.find(s[var("?b")]));
    for (y, r) in [(a, b), (b, a)] {
        if y == r || ty(eg, r).as_ref() != Some(&want) || !only_user(eg, y, id) {
            continue;
        }
        for (op, args) in fusible(eg, y) {
            // Not into a fused op: one residual per op.
            let Some(f) = Fused::with((*op).clone(), true, None) else {
                continue;
            };
            let mut args = args;
            args.push(r);
            if let Some(r) = add_op_typed(eg, Op::Fused(f), args, &want) {
                return Some(r);
            }
        }
    }
    None
}

/// A unary activation named `name` applied to `?y` in class `id`, fused.
fn unary_into_product(eg: &mut EG, id: Id, s: &Subst, name: &str) -> Option<Id> {
    let y = eg.find(s[var("?y")]);
    let f = ops_named(eg, id, name)
        .into_iter()
        .find_map(|(op, args)| match &*op {
            Op::Elementwise(Elementwise::Unary(f)) if args[0] == y => Some(*f),
            _ => None,
        })?;
    into_product(eg, id, y, Epilogue::Unary(f))
}

/// `Clip(y, lo, hi)` with constant scalar bounds, fused.
fn clip_into_product(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let bound = |v: &str| {
        small_value(eg, s[var(v)])
            .filter(|t| t.len() == 1)
            .map(|t| t.to_f64_vec()[0] as f32)
    };
    let (min, max) = (bound("?lo")?, bound("?hi")?);
    into_product(eg, id, s[var("?y")], Epilogue::Clip { min, max })
}

/// The fusion rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        // BN(Conv(x, W)) => Conv(x, W*k, shift)           k = s/sqrt(var+eps), shift = B - mean*k
        rw!("bn-into-conv";        "(BatchNormalization (Conv ?x ?w) ?s ?b ?m ?v)"     => { Apply(bn_into_conv) }),
        // BN(Conv(x, W, c)) => Conv(x, W*k, c*k + shift)
        rw!("bn-into-conv-bias";   "(BatchNormalization (Conv ?x ?w ?c) ?s ?b ?m ?v)"  => { Apply(bn_into_conv) }),
        // BN(MatMul(x, W)) => Gemm(x, W*k, shift)         (x 2-D, W constant)
        rw!("bn-into-matmul";      "(BatchNormalization (MatMul ?x ?w) ?s ?b ?m ?v)"   => { Apply(bn_into_gemm) }),
        // BN(Gemm(a, B, c)) => Gemm(a, B*k, beta*c*k + shift)
        rw!("bn-into-gemm";        "(BatchNormalization (Gemm ?x ?w ?c) ?s ?b ?m ?v)"  => { Apply(bn_into_gemm) }),
        // MatMul(a, b) + c => Gemm(a, b, c)                (a, b 2-D; c broadcasts to [M, N])
        rw!("matmul-add-gemm";     "(Add (MatMul ?a ?b) ?c)"                           => { Apply(matmul_add_gemm) }),
        // c + MatMul(a, b) => Gemm(a, b, c)
        rw!("add-matmul-gemm";     "(Add ?c (MatMul ?a ?b))"                           => { Apply(matmul_add_gemm) }),
        // MatMul(x, Transpose<[1,0]>(Decode(w))) => EncodedMatMul(x, w)    (w [N, K] stored encoded)
        rw!("matmul-decoded";      "(MatMul ?x ?wt)"                                   => { Apply(matmul_decoded) }),
        // Gemm<transB>(x, Decode(w), c) => EncodedMatMul(x, w, c)   (alpha = beta = 1, no transA, c [N])
        rw!("gemm-decoded";        "(Gemm ?x ?w ?c)"                                   => { Apply(gemm_decoded) }),
        // Gemm<transB>(x, Decode(w)) => EncodedMatMul(x, w)          (alpha = 1, no transA)
        rw!("gemm-decoded-nobias"; "(Gemm ?x ?w)"                                      => { Apply(gemm_decoded) }),
        // (x * (erf(x/√2) + 1)) * 0.5 => Gelu(x)
        rw!("gelu-erf";            "(Mul (Mul ?x (Add (Erf (Div ?x ?r2)) ?one)) ?half)" => { Apply(gelu_erf) }),
        // (x * 0.5) * (erf(x/√2) + 1) => Gelu(x)
        rw!("gelu-erf-half-first"; "(Mul (Mul ?x ?half) (Add (Erf (Div ?x ?r2)) ?one))" => { Apply(gelu_erf) }),
        // (x*0.5) * (tanh((x + x³*0.044715) * √(2/π)) + 1) => Gelu<tanh>(x)
        rw!("gelu-tanh";           "(Mul (Mul ?x ?half) (Add (Tanh (Mul (Add ?x (Mul (Pow ?x ?three) ?k)) ?c)) ?one))" => { Apply(gelu_tanh) }),
        // x * sigmoid(x) => Swish<alpha=1>(x)              (SiLU)
        rw!("silu";                "(Mul ?x (Sigmoid ?x))"                              => { Apply(silu) }),
        // sigmoid(x) * x => Swish<alpha=1>(x)
        rw!("silu-rev";            "(Mul (Sigmoid ?x) ?x)"                              => { Apply(silu) }),
        // x * HardSigmoid<1/6, 1/2>(x) => HardSwish(x)
        rw!("hardswish";           "(Mul ?x ?h)"                                        => { Apply(hardswish_hs) }),
        // x * Clip(x + 3, 0, 6) / 6 => HardSwish(x)
        rw!("hardswish-clip";      "(Div (Mul ?x (Clip (Add ?x ?three) ?lo ?hi)) ?six)" => { Apply(hardswish_clip) }),
        // exp(x - max(x)) / Σ exp(x - max(x)) => Softmax(x)   (one axis, keepdims)
        rw!("softmax";             "(Div ?e ?sum)"                                      => { Apply(softmax) }),
        // (x - mean(x)) / sqrt(mean((x - mean)²) + eps) * g + b => LayerNormalization(x, g, b)
        // x / sqrt(mean(x²) + eps) * g => RMSNormalization(x, g)
        rw!("rmsnorm";             "(Mul (Div ?x (Sqrt (Add ?ms ?eps))) ?g)"            => { Apply(rmsnorm) }),
        // softmax(Q·Kᵀ·c) · V => Attention<scale=c>(Q, K, V)  (4-D; K = Kᵀ transposed back)
        rw!("attention";           "(MatMul (Softmax ?s) ?v)"                          => { Apply(attention) }),
        rw!("layernorm";           "(Add (Mul (Div ?d (Sqrt (Add ?v ?eps))) ?g) ?b)"    => { Apply(layernorm) }),
        // P(…) + r => FusedP<residual>(…, r)                (P's only user; r of the sum's type, r ≠ P)
        rw!("residual-epilogue";   "(Add ?a ?b)"                                        => { Apply(residual_into_product) }),
        // Relu(P(…)) => FusedP<Relu>(…)                    (P = Conv, Gemm, MatMul or a residual-only
        //                                                   FusedP; P's only user)
        rw!("relu-epilogue";       "(Relu ?y)"                                          => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "Relu")) }),
        // Clip(P(…), lo, hi) => FusedP<Clip(lo, hi)>(…)     (lo, hi constant scalars; Relu6)
        rw!("clip-epilogue";       "(Clip ?y ?lo ?hi)"                                  => { Apply(clip_into_product) }),
        // Sigmoid(P(…)) => FusedP<Sigmoid>(…)
        rw!("sigmoid-epilogue";    "(Sigmoid ?y)"                                       => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "Sigmoid")) }),
        // Tanh(P(…)) => FusedP<Tanh>(…)
        rw!("tanh-epilogue";       "(Tanh ?y)"                                          => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "Tanh")) }),
        // HardSwish(P(…)) => FusedP<HardSwish>(…)
        rw!("hardswish-epilogue";  "(HardSwish ?y)"                                     => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "HardSwish")) }),
        // Gelu(P(…)) => FusedP<Gelu>(…)                    (erf or tanh form)
        rw!("gelu-epilogue";       "(Gelu ?y)"                                          => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "Gelu")) }),
        // Swish(P(…)) => FusedP<Swish>(…)                  (SiLU, also as recognised from y * sigmoid(y))
        rw!("swish-epilogue";      "(Swish ?y)"                                         => { Apply(|eg: &mut EG, id, s: &Subst| unary_into_product(eg, id, s, "Swish")) }),
    ]
}
