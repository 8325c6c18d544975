//! Scaled dot-product `Attention` (opsets 23 to 25): grouped-query heads,
//! 3-D or 4-D operands, past key/value caches, masks, causal and window
//! constraints, soft cap and the optional `QK` output.

use super::kernel::{matmul_acc, transpose2};
use super::{Linalg, float_dtype, saturating_product};
use crate::dtype::{DType, rounder};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req, tensor_types};
use crate::shape::{Shape, numel};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// The attributes of `Attention`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionAttrs {
    /// Apply the bottom-right aligned causal mask.
    pub is_causal: bool,
    /// Heads of a 3-D `Q`.
    pub q_num_heads: Option<usize>,
    /// Heads of 3-D `K`/`V`.
    pub kv_num_heads: Option<usize>,
    /// What the fourth output holds: 0 raw `QK`, 1 after softcap, 2 after
    /// the bias, 3 after softmax.
    pub qk_matmul_output_mode: u8,
    /// Scale of `QK^T` (default `1/sqrt(head_size)`).
    pub scale: Option<f32>,
    /// Soft cap of the logits; `0` disables it.
    pub softcap: f32,
    /// Type the softmax is computed in (default: `Q`'s type).
    pub softmax_precision: Option<DType>,
    /// Keys visible to the left of the query position (`-1` = unbounded; opset 25).
    pub left_window: i64,
    /// Keys visible to the right of the query position (`-1` = unbounded; opset 25).
    pub right_window: i64,
}

/// Parses an `Attention` node.
pub(super) fn parse_attention_node(ctx: &ParseCtx<'_>) -> Result<Linalg> {
    Ok(Linalg::Attention(parse_attention(ctx)?))
}

fn parse_attention(ctx: &ParseCtx<'_>) -> Result<AttentionAttrs> {
    let a = ctx.attrs;
    let heads = |name: &str| -> Result<Option<usize>> {
        match a.int_opt(name)? {
            None => Ok(None),
            Some(h) if h > 0 => Ok(Some(h as usize)),
            Some(h) => Err(Error::attr(name, format!("must be positive, got {h}"))),
        }
    };
    let mode = a.int("qk_matmul_output_mode", 0)?;
    if !(0..=3).contains(&mode) {
        return Err(Error::attr(
            "qk_matmul_output_mode",
            format!("must be 0, 1, 2 or 3, got {mode}"),
        ));
    }
    let softmax_precision = match a.int_opt("softmax_precision")? {
        None | Some(0) => None,
        Some(code) => {
            let d = DType::from_onnx_code(code as i32)?;
            if !d.is_float() {
                return Err(Error::attr(
                    "softmax_precision",
                    format!("must be a float type, got {d}"),
                ));
            }
            Some(d)
        }
    };
    let window = |name: &str| -> Result<i64> {
        let w = a.int(name, -1)?;
        if w < -1 {
            return Err(Error::attr(
                name,
                format!("must be -1 or non-negative, got {w}"),
            ));
        }
        Ok(w)
    };
    let softcap = a.float("softcap", 0.0)?;
    if softcap < 0.0 || softcap.is_nan() {
        return Err(Error::attr(
            "softcap",
            format!("must be non-negative, got {softcap}"),
        ));
    }
    Ok(AttentionAttrs {
        is_causal: a.int("is_causal", 0)? != 0,
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        qk_matmul_output_mode: mode as u8,
        scale: a.float_opt("scale")?,
        softcap,
        softmax_precision,
        left_window: window("left_window_size")?,
        right_window: window("right_window_size")?,
    })
}

/// The resolved shapes of an `Attention` node.
#[derive(Clone, Debug)]
struct AttnDims {
    rank4: bool,
    batch: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    skv: usize,
    past: usize,
    head: usize,
    vhead: usize,
    /// `past + skv`.
    total: usize,
}

impl AttentionAttrs {
    fn dims(&self, ins: &[Option<&TensorType>]) -> Result<AttnDims> {
        let q = req(ins, 0, "Q")?;
        let k = req(ins, 1, "K")?;
        let v = req(ins, 2, "V")?;
        let (qs, ks, vs) = (&q.shape, &k.shape, &v.shape);
        if qs.len() != ks.len() || qs.len() != vs.len() || !(qs.len() == 3 || qs.len() == 4) {
            shape_err!("Q, K and V must all be 3-D or all 4-D, got {qs:?}, {ks:?} and {vs:?}");
        }
        let rank4 = qs.len() == 4;
        let (batch, hq, sq, head, hkv, skv, kh, vhead, vheads, vskv);
        if rank4 {
            (batch, hq, sq, head) = (qs[0], qs[1], qs[2], qs[3]);
            (hkv, skv, kh) = (ks[1], ks[2], ks[3]);
            (vheads, vskv, vhead) = (vs[1], vs[2], vs[3]);
            if let Some(h) = self.q_num_heads
                && h != hq
            {
                shape_err!("q_num_heads={h} but Q has {hq} heads");
            }
            if let Some(h) = self.kv_num_heads
                && h != hkv
            {
                shape_err!("kv_num_heads={h} but K has {hkv} heads");
            }
        } else {
            let (Some(nq), Some(nkv)) = (self.q_num_heads, self.kv_num_heads) else {
                shape_err!("3-D Q, K and V need the q_num_heads and kv_num_heads attributes");
            };
            if !qs[2].is_multiple_of(nq) || !ks[2].is_multiple_of(nkv) || !vs[2].is_multiple_of(nkv)
            {
                shape_err!(
                    "hidden sizes {}, {} and {} are not multiples of the head counts {nq} and {nkv}",
                    qs[2],
                    ks[2],
                    vs[2]
                );
            }
            (batch, sq, hq, head) = (qs[0], qs[1], nq, qs[2] / nq);
            (skv, hkv, kh) = (ks[1], nkv, ks[2] / nkv);
            (vskv, vheads, vhead) = (vs[1], nkv, vs[2] / nkv);
        }
        if ks[0] != batch || vs[0] != batch {
            shape_err!("Q, K and V have different batch sizes: {qs:?}, {ks:?}, {vs:?}");
        }
        if kh != head {
            shape_err!("Q has head size {head} but K has {kh}");
        }
        if vheads != hkv || vskv != skv {
            shape_err!("K {ks:?} and V {vs:?} disagree on heads or sequence length");
        }
        if hkv == 0 || !hq.is_multiple_of(hkv) {
            shape_err!("q heads ({hq}) must be a multiple of kv heads ({hkv})");
        }
        let past = match (opt(ins, 4), opt(ins, 5)) {
            (None, None) => 0,
            (Some(pk), Some(pv)) => {
                let want_k = [batch, hkv, pk.shape.get(2).copied().unwrap_or(0), head];
                let want_v = [batch, hkv, want_k[2], vhead];
                if pk.shape != want_k || pv.shape != want_v {
                    shape_err!(
                        "past_key {:?} / past_value {:?} must be {want_k:?} / {want_v:?}",
                        pk.shape,
                        pv.shape
                    );
                }
                if pk.dtype != q.dtype || pv.dtype != v.dtype {
                    type_err!("past_key/past_value must have the types of K and V");
                }
                want_k[2]
            }
            _ => shape_err!("past_key and past_value must be given together"),
        };
        let total = past
            .checked_add(skv)
            .ok_or_else(|| Error::Overflow("total sequence length".into()))?;
        if let Some(nonpad) = opt(ins, 6) {
            if past > 0 || opt(ins, 4).is_some() {
                shape_err!("nonpad_kv_seqlen cannot be combined with past_key/past_value");
            }
            if nonpad.dtype != DType::I64 || nonpad.shape != [batch] {
                shape_err!("nonpad_kv_seqlen must be i64[{batch}], got {nonpad}");
            }
        }
        if let Some(mask) = opt(ins, 3) {
            let ms = &mask.shape;
            if ms.is_empty() || ms.len() > 4 {
                shape_err!("attn_mask must have rank 1 to 4, got {ms:?}");
            }
            if ms[ms.len() - 1] > total {
                shape_err!("attn_mask {ms:?} is longer than the total sequence length {total}");
            }
            let full = [batch, hq, sq];
            let lead = &ms[..ms.len() - 1];
            for (i, &d) in lead.iter().enumerate() {
                let want = full[3 - lead.len() + i];
                if d != 1 && d != want {
                    shape_err!(
                        "attn_mask {ms:?} does not broadcast to [{batch}, {hq}, {sq}, {total}]"
                    );
                }
            }
        }
        Ok(AttnDims {
            rank4,
            batch,
            hq,
            hkv,
            sq,
            skv,
            past,
            head,
            vhead,
            total,
        })
    }
}

/// The shape rule of `Attention`.
pub(super) fn infer_attention(
    at: &AttentionAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 3, 7)?;
    let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|x| x.ty)).collect();
    let d = at.dims(&tys)?;
    let (q, k, v) = (req(&tys, 0, "Q")?, req(&tys, 1, "K")?, req(&tys, 2, "V")?);
    float_dtype(q.dtype, "Attention", "Q")?;
    float_dtype(v.dtype, "Attention", "V")?;
    if k.dtype != q.dtype {
        type_err!("Q is {} but K is {}", q.dtype, k.dtype);
    }
    let y_shape = if d.rank4 {
        vec![d.batch, d.hq, d.sq, d.vhead]
    } else {
        let hidden =
            d.hq.checked_mul(d.vhead)
                .ok_or_else(|| Error::Overflow("attention output size".into()))?;
        vec![d.batch, d.sq, hidden]
    };
    numel(&y_shape)?;
    numel(&[d.batch, d.hq, d.sq, d.total])?;
    Ok(vec![
        TensorType::new(q.dtype, y_shape),
        TensorType::new(k.dtype, vec![d.batch, d.hkv, d.total, d.head]),
        TensorType::new(v.dtype, vec![d.batch, d.hkv, d.total, d.vhead]),
        TensorType::new(q.dtype, vec![d.batch, d.hq, d.sq, d.total]),
    ])
}

/// Reads a Q/K/V operand as `[batch, heads, seq, head]`, whichever layout it has.
fn to_bhsd(t: &Tensor, rank4: bool, heads: usize) -> Vec<f64> {
    let v = t.to_f64_vec();
    if rank4 {
        return v;
    }
    let s = t.shape();
    let (b, seq, hd) = (s[0], s[1], s[2] / heads);
    let mut out = Vec::with_capacity(v.len());
    for bi in 0..b {
        for h in 0..heads {
            for si in 0..seq {
                let base = (bi * seq + si) * heads * hd + h * hd;
                out.extend_from_slice(&v[base..base + hd]);
            }
        }
    }
    out
}

/// Concatenates `[b, h, past, d]` and `[b, h, cur, d]` along the sequence axis.
fn concat_seq(
    past: &[f64],
    cur: &[f64],
    b: usize,
    h: usize,
    np: usize,
    nc: usize,
    d: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(past.len() + cur.len());
    for i in 0..b * h {
        out.extend_from_slice(&past[i * np * d..(i + 1) * np * d]);
        out.extend_from_slice(&cur[i * nc * d..(i + 1) * nc * d]);
    }
    out
}

/// The additive attention bias of one query row, from the mask, the causal
/// and window constraints and the padding lengths.
struct Bias<'a> {
    at: &'a AttentionAttrs,
    d: &'a AttnDims,
    mask: Option<(Vec<f64>, bool, Shape)>,
    nonpad: Option<Vec<i64>>,
    rt: fn(f64) -> f64,
}

impl Bias<'_> {
    /// Fills `row[j]` with the bias of query `i` of head `h` in batch `b`.
    fn row(&self, b: usize, h: usize, i: usize, row: &mut [f64]) {
        let (at, d) = (self.at, self.d);
        let ninf = f64::NEG_INFINITY;
        // The causal and window frontiers are relative to the keys that
        // precede this query block.
        let offset: i64 = match &self.nonpad {
            Some(np) => np[b].saturating_sub(d.sq as i64),
            None => d.past as i64,
        };
        for (j, out) in row.iter_mut().enumerate() {
            let mut v = 0.0;
            if let Some((m, is_bool, ms)) = &self.mask {
                let r = ms.len();
                let last = ms[r - 1];
                let mv = if j < last {
                    // Right-aligned broadcast of the mask to [b, h, i, j].
                    let idx4 = [b, h, i];
                    let mut flat = 0usize;
                    for ax in 0..r - 1 {
                        let dim = ms[ax];
                        let pos = if dim == 1 { 0 } else { idx4[3 - (r - 1) + ax] };
                        flat = flat * dim + pos;
                    }
                    let x = m[flat * last + j];
                    if *is_bool {
                        if x != 0.0 { 0.0 } else { ninf }
                    } else {
                        (self.rt)(x)
                    }
                } else {
                    // Keys past a short mask are padded as masked out.
                    ninf
                };
                v += mv;
            }
            let jj = j as i64;
            let ii = i as i64;
            if at.is_causal && jj > ii.saturating_add(offset) {
                v += ninf;
            }
            if at.left_window >= 0 || at.right_window >= 0 {
                let diff = ii.saturating_add(offset).saturating_sub(jj);
                let ok = (at.left_window < 0 || diff <= at.left_window)
                    && (at.right_window < 0 || -diff <= at.right_window);
                if !ok {
                    v += ninf;
                }
            }
            if let Some(np) = &self.nonpad
                && jj >= np[b]
            {
                v += ninf;
            }
            *out = (self.rt)(v);
        }
    }
}

pub(super) fn eval_attention(
    at: &AttentionAttrs,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let types = tensor_types(inputs);
    let infer_in: Vec<Option<InferInput<'_>>> = types
        .iter()
        .map(|t| t.as_ref().map(|ty| InferInput { ty, value: None }))
        .collect();
    let out_types = infer_attention(at, &infer_in)?;
    let tys: Vec<Option<&TensorType>> = types.iter().map(|t| t.as_ref()).collect();
    let d = at.dims(&tys)?;
    let (q, k, v) = (
        req(inputs, 0, "Q")?,
        req(inputs, 1, "K")?,
        req(inputs, 2, "V")?,
    );
    let qdt = q.dtype();
    let rt = rounder(qdt);
    let pdt = at.softmax_precision.unwrap_or(qdt);
    let rp = rounder(pdt);
    let seq_round = pdt == DType::BF16;
    let qv = to_bhsd(q, d.rank4, d.hq);
    let mut kv = to_bhsd(k, d.rank4, d.hkv);
    let mut vv = to_bhsd(v, d.rank4, d.hkv);
    if let (Some(pk), Some(pv)) = (opt(inputs, 4), opt(inputs, 5)) {
        kv = concat_seq(&pk.to_f64_vec(), &kv, d.batch, d.hkv, d.past, d.skv, d.head);
        vv = concat_seq(
            &pv.to_f64_vec(),
            &vv,
            d.batch,
            d.hkv,
            d.past,
            d.skv,
            d.vhead,
        );
    }
    let present_k =
        Tensor::from_vec(out_types[1].shape.clone(), kv.clone())?.cast(out_types[1].dtype);
    let present_v =
        Tensor::from_vec(out_types[2].shape.clone(), vv.clone())?.cast(out_types[2].dtype);

    // Q and K are each scaled by sqrt(scale) (rounded to Q's type) before the
    // product, as the spec's function body does to avoid overflow.
    let scale = at
        .scale
        .map(|s| s as f64)
        .unwrap_or_else(|| 1.0 / (d.head as f64).sqrt());
    let sc = rt(scale.sqrt());
    let qs: Vec<f64> = qv.iter().map(|&x| rt(x * sc)).collect();
    let ks: Vec<f64> = kv.iter().map(|&x| rt(x * sc)).collect();

    let mask =
        opt(inputs, 3).map(|m| (m.to_f64_vec(), m.dtype() == DType::Bool, m.shape().to_vec()));
    let nonpad = opt(inputs, 6).map(|t| t.to_i64_vec());
    let bias = Bias {
        at,
        d: &d,
        mask,
        nonpad,
        rt,
    };

    let (sq, t, hd, vd) = (d.sq, d.total, d.head, d.vhead);
    let group = d.hq / d.hkv;
    let mut y = vec![0.0f64; d.batch * d.hq * sq * vd];
    let mut qk_out = vec![0.0f64; d.batch * d.hq * sq * t];
    let mut scores = vec![0.0f64; sq * t];
    let mut probs = vec![0.0f64; sq * t];
    let mut brow = vec![0.0f64; t];
    let softcap = at.softcap as f64;
    for b in 0..d.batch {
        for kh in 0..d.hkv {
            let kbase = (b * d.hkv + kh) * t;
            let kt = transpose2(&ks[kbase * hd..(kbase + t) * hd], t, hd);
            let vmat = &vv[kbase * vd..(kbase + t) * vd];
            for h in kh * group..(kh + 1) * group {
                let qbase = (b * d.hq + h) * sq;
                scores.iter_mut().for_each(|x| *x = 0.0);
                matmul_acc(
                    sq,
                    hd,
                    t,
                    &qs[qbase * hd..(qbase + sq) * hd],
                    &kt,
                    &mut scores,
                );
                let qk = &mut qk_out[qbase * t..(qbase + sq) * t];
                for i in 0..sq {
                    bias.row(b, h, i, &mut brow);
                    let srow = &mut scores[i * t..(i + 1) * t];
                    let prow = &mut probs[i * t..(i + 1) * t];
                    for j in 0..t {
                        let raw = rt(srow[j]);
                        let capped = if softcap > 0.0 {
                            rt(rt(rt(raw / softcap).tanh()) * softcap)
                        } else {
                            raw
                        };
                        let biased = rt(capped + brow[j]);
                        qk[i * t + j] = match at.qk_matmul_output_mode {
                            0 => raw,
                            1 => capped,
                            _ => biased,
                        };
                        srow[j] = rp(biased);
                    }
                    softmax_row(srow, prow, rp, seq_round);
                    // A row whose bias masks every key attends to nothing: its
                    // probabilities are zero (not NaN), decided on the bias so
                    // that NaN logits cannot leak through.
                    let all_masked = brow.iter().all(|&x| x == f64::NEG_INFINITY);
                    for p in prow.iter_mut() {
                        *p = if all_masked { 0.0 } else { rt(*p) };
                    }
                    if at.qk_matmul_output_mode == 3 {
                        qk[i * t..(i + 1) * t].copy_from_slice(prow);
                    }
                }
                let mut out = vec![0.0f64; sq * vd];
                matmul_acc(sq, t, vd, &probs, vmat, &mut out);
                for i in 0..sq {
                    for e in 0..vd {
                        let val = rt(out[i * vd + e]);
                        let idx = if d.rank4 {
                            (qbase + i) * vd + e
                        } else {
                            ((b * sq + i) * d.hq + h) * vd + e
                        };
                        y[idx] = val;
                    }
                }
            }
        }
    }
    Ok(vec![
        Tensor::from_vec(out_types[0].shape.clone(), y)?.cast(qdt),
        present_k,
        present_v,
        Tensor::from_vec(out_types[3].shape.clone(), qk_out)?.cast(qdt),
    ])
}

/// Softmax of one row in the precision `rp` rounds to; a row that is all
/// `-inf` gives zeros. `seq_round` rounds the running sum after every
/// addition, as NumPy's reduction over `bfloat16` (which has no wider
/// accumulator) does; other types sum wide and round once.
fn softmax_row(x: &[f64], out: &mut [f64], rp: fn(f64) -> f64, seq_round: bool) {
    let mut max = f64::NEG_INFINITY;
    for &v in x {
        if v.is_nan() || max.is_nan() {
            max = f64::NAN;
        } else if v > max {
            max = v;
        }
    }
    let safe = if max == f64::NEG_INFINITY { 0.0 } else { max };
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = rp(rp(v - safe).exp());
        sum += *o;
        if seq_round {
            sum = rp(sum);
        }
    }
    let sum = rp(sum);
    let sum = if sum == 0.0 { 1.0 } else { sum };
    for o in out.iter_mut() {
        *o = rp(*o / sum);
    }
}

/// The multiply-adds of `Attention`.
pub(super) fn macs_attention(a: &AttentionAttrs, inputs: &[Option<&TensorType>]) -> u64 {
    match a.dims(inputs) {
        Ok(d) => saturating_product(&[d.batch, d.hq, d.sq, d.total, d.head + d.vhead]),
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
    fn attention_single_head() {
        // One head of size 1: scores are q*k, scale 1.
        let q = t(&[1, 1, 2, 1], &[1., 2.]);
        let k = t(&[1, 1, 2, 1], &[0., 1.]);
        let v = t(&[1, 1, 2, 1], &[10., 20.]);
        let op = attention(vec![("scale", AttrValue::Float(1.0))]);
        let y = run(&op, &[&q, &k, &v]).remove(0);
        let y = y.as_slice::<f32>().unwrap();
        let want = |s: f64| (10. + 20. * s.exp()) / (1. + s.exp());
        assert!((y[0] as f64 - want(1.)).abs() < 1e-5);
        assert!((y[1] as f64 - want(2.)).abs() < 1e-5);
        // Causal: query 0 sees key 0 only.
        let op = attention(vec![
            ("scale", AttrValue::Float(1.0)),
            ("is_causal", AttrValue::Int(1)),
        ]);
        let y = run(&op, &[&q, &k, &v]).remove(0);
        assert_eq!(y.as_slice::<f32>().unwrap()[0], 10.);
    }

    #[test]
    fn attention_fully_masked_row_is_zero() {
        let q = t(&[1, 1, 2, 1], &[1., f32::NAN]);
        let k = t(&[1, 1, 2, 1], &[0., 1.]);
        let v = t(&[1, 1, 2, 1], &[10., 20.]);
        let mask = Tensor::from_vec(vec![2, 2], vec![true, true, false, false]).unwrap();
        let op = attention(vec![("qk_matmul_output_mode", AttrValue::Int(3))]);
        let out = run(&op, &[&q, &k, &v, &mask]);
        let y = out[0].as_slice::<f32>().unwrap();
        assert!(y[0].is_finite());
        assert_eq!(y[1], 0.);
        assert_eq!(&out[3].as_slice::<f32>().unwrap()[2..], &[0., 0.]);
    }

    #[test]
    fn attention_gqa_3d_and_past() {
        // 2 query heads share 1 kv head; past of length 1.
        let q = t(&[1, 1, 2], &[1., 1.]);
        let k = t(&[1, 1, 1], &[1.]);
        let v = t(&[1, 1, 1], &[3.]);
        let pk = t(&[1, 1, 1, 1], &[1.]);
        let pv = t(&[1, 1, 1, 1], &[5.]);
        let op = attention(vec![
            ("q_num_heads", AttrValue::Int(2)),
            ("kv_num_heads", AttrValue::Int(1)),
        ]);
        let none: Option<&Tensor> = None;
        let ins = [Some(&q), Some(&k), Some(&v), none, Some(&pk), Some(&pv)];
        let out = op.eval(&ins).unwrap();
        // Equal scores: the mean of 5 and 3 for both heads.
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[4., 4.]);
        assert_eq!(out[1].shape(), &[1, 1, 2, 1]);
        assert_eq!(out[2].as_slice::<f32>().unwrap(), &[5., 3.]);
        let bad = attention(vec![
            ("q_num_heads", AttrValue::Int(2)),
            ("kv_num_heads", AttrValue::Int(3)),
        ]);
        assert!(
            bad.eval(&[
                Some(&q),
                Some(&t(&[1, 1, 3], &[1., 1., 1.])),
                Some(&t(&[1, 1, 3], &[1., 1., 1.]))
            ])
            .is_err()
        );
    }
}
