//! `LinearAttention` (opset 27): attention with a recurrent state updated
//! token by token by one of four rules (linear, gated, delta, gated delta).

use super::{Linalg, float_dtype, saturating_product, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req, tensor_types};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// The state update of `LinearAttention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearRule {
    /// `S += k ⊗ v`.
    Linear,
    /// `S = exp(g) * S + k ⊗ v`.
    Gated,
    /// `S += β k ⊗ (v - Sᵀk)`.
    Delta,
    /// `S = exp(g) * S; S += β k ⊗ (v - Sᵀk)`.
    GatedDelta,
}

impl LinearRule {
    /// The `update_rule` spelling.
    pub(super) fn name(self) -> &'static str {
        match self {
            LinearRule::Linear => "linear",
            LinearRule::Gated => "gated",
            LinearRule::Delta => "delta",
            LinearRule::GatedDelta => "gated_delta",
        }
    }

    fn gated(self) -> bool {
        matches!(self, LinearRule::Gated | LinearRule::GatedDelta)
    }

    fn delta(self) -> bool {
        matches!(self, LinearRule::Delta | LinearRule::GatedDelta)
    }
}

/// The attributes of `LinearAttention`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearAttnAttrs {
    /// Query heads.
    pub q_num_heads: usize,
    /// Key/value heads (and states).
    pub kv_num_heads: usize,
    /// Output scale; `0` means `1/sqrt(d_k)`.
    pub scale: f32,
    /// The recurrence.
    pub rule: LinearRule,
}

/// Parses a `LinearAttention` node.
pub(super) fn parse_linear_attention(ctx: &ParseCtx<'_>) -> Result<Linalg> {
    let a = ctx.attrs;
    let heads = |name: &str| -> Result<usize> {
        match a.int_req(name)? {
            h if h > 0 => Ok(h as usize),
            h => Err(Error::attr(name, format!("must be positive, got {h}"))),
        }
    };
    let rule = match a.string("update_rule", "gated_delta")?.as_str() {
        "linear" => LinearRule::Linear,
        "gated" => LinearRule::Gated,
        "delta" => LinearRule::Delta,
        "gated_delta" => LinearRule::GatedDelta,
        other => {
            return Err(Error::attr(
                "update_rule",
                format!("'{other}' is not linear, gated, delta or gated_delta"),
            ));
        }
    };
    Ok(Linalg::LinearAttention(LinearAttnAttrs {
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        scale: a.float("scale", 0.0)?,
        rule,
    }))
}

struct LinearDims {
    batch: usize,
    seq: usize,
    dk: usize,
    dv: usize,
    /// Decay per key dimension (`true`) or per head.
    decay_per_key: bool,
    /// Beta per kv head (`true`) or one for all heads.
    beta_per_head: bool,
}

impl LinearAttnAttrs {
    fn dims(&self, ins: &[Option<&TensorType>]) -> Result<LinearDims> {
        check_arity(ins, 3, 6)?;
        let (q, k, v) = (
            req(ins, 0, "query")?,
            req(ins, 1, "key")?,
            req(ins, 2, "value")?,
        );
        let (hq, hkv) = (self.q_num_heads, self.kv_num_heads);
        if q.shape.len() != 3 || k.shape.len() != 3 || v.shape.len() != 3 {
            shape_err!(
                "query, key and value must be 3-D, got {:?}, {:?} and {:?}",
                q.shape,
                k.shape,
                v.shape
            );
        }
        float_dtype(q.dtype, "LinearAttention", "query")?;
        if k.dtype != q.dtype || v.dtype != q.dtype {
            type_err!(
                "query, key and value must share one type, got {}, {} and {}",
                q.dtype,
                k.dtype,
                v.dtype
            );
        }
        if !hq.is_multiple_of(hkv) {
            shape_err!("q_num_heads ({hq}) must be a multiple of kv_num_heads ({hkv})");
        }
        let (batch, seq) = (q.shape[0], q.shape[1]);
        if k.shape[..2] != [batch, seq] || v.shape[..2] != [batch, seq] {
            shape_err!(
                "query {:?}, key {:?} and value {:?} disagree on batch or length",
                q.shape,
                k.shape,
                v.shape
            );
        }
        if !q.shape[2].is_multiple_of(hq) || !v.shape[2].is_multiple_of(hkv) {
            shape_err!(
                "hidden sizes {} and {} are not multiples of the head counts",
                q.shape[2],
                v.shape[2]
            );
        }
        let (dk, dv) = (q.shape[2] / hq, v.shape[2] / hkv);
        if k.shape[2] != hkv * dk {
            shape_err!(
                "key hidden size {} must be kv_num_heads * d_k = {}",
                k.shape[2],
                hkv * dk
            );
        }
        if let Some(s) = opt(ins, 3) {
            float_dtype(s.dtype, "LinearAttention", "past_state")?;
            if s.shape != [batch, hkv, dk, dv] {
                shape_err!(
                    "past_state must be [{batch}, {hkv}, {dk}, {dv}], got {:?}",
                    s.shape
                );
            }
        }
        let decay = opt(ins, 4);
        let beta = opt(ins, 5);
        if decay.is_some() != self.rule.gated() || beta.is_some() != self.rule.delta() {
            shape_err!(
                "update_rule '{}' {} decay and {} beta",
                self.rule.name(),
                if self.rule.gated() {
                    "needs"
                } else {
                    "forbids"
                },
                if self.rule.delta() {
                    "needs"
                } else {
                    "forbids"
                }
            );
        }
        let mut decay_per_key = false;
        if let Some(g) = decay {
            if g.dtype != q.dtype || g.shape.len() != 3 || g.shape[..2] != [batch, seq] {
                shape_err!("decay must be {}[{batch}, {seq}, _], got {g}", q.dtype);
            }
            decay_per_key = match g.shape[2] {
                x if x == hkv * dk => true,
                x if x == hkv => false,
                x => shape_err!(
                    "decay's last dim {x} must be kv_num_heads ({hkv}) or kv_num_heads * d_k ({})",
                    hkv * dk
                ),
            };
        }
        let mut beta_per_head = false;
        if let Some(b) = beta {
            if b.dtype != q.dtype || b.shape.len() != 3 || b.shape[..2] != [batch, seq] {
                shape_err!("beta must be {}[{batch}, {seq}, _], got {b}", q.dtype);
            }
            beta_per_head = match b.shape[2] {
                x if x == hkv => true,
                1 => false,
                x => shape_err!("beta's last dim {x} must be kv_num_heads ({hkv}) or 1"),
            };
        }
        Ok(LinearDims {
            batch,
            seq,
            dk,
            dv,
            decay_per_key,
            beta_per_head,
        })
    }
}

/// The recurrence, token by token, in `f32` like the reference (which casts
/// every input to `float32`).
pub(super) fn eval_linear_attention(
    l: &LinearAttnAttrs,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let types = tensor_types(inputs);
    let tys: Vec<Option<&TensorType>> = types.iter().map(|t| t.as_ref()).collect();
    let d = l.dims(&tys)?;
    let f32s = |t: &Tensor| -> Vec<f32> { t.to_f64_vec().into_iter().map(|x| x as f32).collect() };
    let (q, k, v) = (
        req(inputs, 0, "query")?,
        req(inputs, 1, "key")?,
        req(inputs, 2, "value")?,
    );
    let (qv, kv, vv) = (f32s(q), f32s(k), f32s(v));
    let gv = opt(inputs, 4).map(f32s);
    let bv = opt(inputs, 5).map(f32s);
    let (hq, hkv, dk, dv, seq) = (l.q_num_heads, l.kv_num_heads, d.dk, d.dv, d.seq);
    let group = hq / hkv;
    let mut state: Vec<f32> = match opt(inputs, 3) {
        Some(s) => f32s(s),
        None => vec![0.0; d.batch * hkv * dk * dv],
    };
    let scale = if l.scale == 0.0 {
        (1.0 / (dk as f64).sqrt()) as f32
    } else {
        l.scale
    };
    let mut out = vec![0.0f32; d.batch * seq * hq * dv];
    let mut vt = vec![0.0f32; dv];
    for b in 0..d.batch {
        for t in 0..seq {
            let tok = b * seq + t;
            for h in 0..hkv {
                let st = &mut state[(b * hkv + h) * dk * dv..(b * hkv + h + 1) * dk * dv];
                let kt = &kv[(tok * hkv + h) * dk..(tok * hkv + h + 1) * dk];
                vt.copy_from_slice(&vv[(tok * hkv + h) * dv..(tok * hkv + h + 1) * dv]);
                if let Some(g) = &gv {
                    for i in 0..dk {
                        let gi = if d.decay_per_key {
                            g[(tok * hkv + h) * dk + i]
                        } else {
                            g[tok * hkv + h]
                        };
                        let e = gi.exp();
                        st[i * dv..(i + 1) * dv].iter_mut().for_each(|x| *x *= e);
                    }
                }
                if let Some(beta) = &bv {
                    let bt = if d.beta_per_head {
                        beta[tok * hkv + h]
                    } else {
                        beta[tok]
                    };
                    for (m, x) in vt.iter_mut().enumerate() {
                        let retrieved: f32 = (0..dk).map(|i| st[i * dv + m] * kt[i]).sum();
                        *x = bt * (*x - retrieved);
                    }
                }
                for i in 0..dk {
                    for m in 0..dv {
                        st[i * dv + m] += kt[i] * vt[m];
                    }
                }
                for qh in h * group..(h + 1) * group {
                    let qt = &qv[(tok * hq + qh) * dk..(tok * hq + qh + 1) * dk];
                    for m in 0..dv {
                        let acc: f32 = (0..dk).map(|i| qt[i] * st[i * dv + m]).sum();
                        out[(tok * hq + qh) * dv + m] = scale * acc;
                    }
                }
            }
        }
    }
    let state_dt = opt(inputs, 3).map(|s| s.dtype()).unwrap_or(q.dtype());
    Ok(vec![
        Tensor::from_vec(vec![d.batch, seq, hq * dv], out)?.cast(q.dtype()),
        Tensor::from_vec(vec![d.batch, hkv, dk, dv], state)?.cast(state_dt),
    ])
}

/// The shape rule of `LinearAttention`.
pub(super) fn infer_linear_attention(
    l: &LinearAttnAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|x| x.ty)).collect();
    let d = l.dims(&tys)?;
    let q = ty(inputs, 0, "query")?;
    let state = opt(inputs, 3).map(|s| s.ty.dtype).unwrap_or(q.dtype);
    Ok(vec![
        TensorType::new(q.dtype, vec![d.batch, d.seq, l.q_num_heads * d.dv]),
        TensorType::new(state, vec![d.batch, l.kv_num_heads, d.dk, d.dv]),
    ])
}

/// The multiply-adds of `LinearAttention`.
pub(super) fn macs_linear_attention(l: &LinearAttnAttrs, inputs: &[Option<&TensorType>]) -> u64 {
    match l.dims(inputs) {
        // Per token and query head: the state update and the read-out.
        Ok(d) => saturating_product(&[d.batch, d.seq, l.q_num_heads, 3 * d.dk, d.dv]),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;
    use crate::ops::OpDef;
    use crate::ops::linalg::test_util::*;
    #[test]
    fn linear_attention_rules() {
        let q = t(&[1, 2, 1], &[1., 1.]);
        let k = t(&[1, 2, 1], &[1., 2.]);
        let v = t(&[1, 2, 1], &[3., 4.]);
        let attrs = |rule: &str| {
            vec![
                ("q_num_heads", AttrValue::Int(1)),
                ("kv_num_heads", AttrValue::Int(1)),
                ("scale", AttrValue::Float(1.0)),
                ("update_rule", AttrValue::String(rule.as_bytes().to_vec())),
            ]
        };
        let op = parse("LinearAttention", 27, attrs("linear")).unwrap();
        let out = run(&op, &[&q, &k, &v]);
        assert_eq!(out[0], t(&[1, 2, 1], &[3., 11.]));
        assert_eq!(out[1], t(&[1, 1, 1, 1], &[11.]));
        // Delta: v' = beta * (v - S k) = 4 - 3*2 = -2, so S = 3 + 2*(-2) = -1.
        let op = parse("LinearAttention", 27, attrs("delta")).unwrap();
        let beta = t(&[1, 2, 1], &[1., 1.]);
        let none: Option<&Tensor> = None;
        let out = op
            .eval(&[Some(&q), Some(&k), Some(&v), none, none, Some(&beta)])
            .unwrap();
        assert_eq!(out[0], t(&[1, 2, 1], &[3., -1.]));
        // Delta without beta is rejected.
        assert!(op.eval(&[Some(&q), Some(&k), Some(&v)]).is_err());
    }
}
