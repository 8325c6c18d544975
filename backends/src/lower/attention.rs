//! Lowering of ONNX `Attention` (opset 23): grouped-query heads, a past
//! and a present cache, masks (boolean or additive), causality, windows,
//! softcap and the optional `QK` output.
//!
//! Per query row, one pass over the keys computes each logit once (the
//! scaled `q·k`, plus the mask's bias) into a scratch row and keeps the
//! largest, a second turns the row into `e^(logit − max)` and sums it, a
//! third accumulates the weighted V rows into the output row, which is
//! then divided by the sum. A key whose bias is `−∞` (masked: past the
//! causal horizon, outside the window, or by the mask) costs no product and
//! no V row: a decode step over a KV cache of capacity `ctx` at position
//! `pos` works on `pos + 1` keys. f32 dot products run on vectors of the
//! target's width when the head width is a multiple of it.
//!
//! With the `QK` output, or a half-precision type, the older two-pass form
//! stays: the first pass over the keys finds the largest logit, the second
//! recomputes each logit and accumulates `e^(logit − max)·V` straight into
//! the output row.

use smelt_ir::ops::linalg::AttentionAttrs;

use super::{NodeResult, Operand, loop_nest};
use crate::kernel::build::{
    add, bin, cast, cmp, f, i, load, mul, reduce, select, splat, sub, un, var, vload,
};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

/// Lanes of the f32 dot products: fixed, not the target's width, so the
/// sums are added in the same order on every target (x86_64, aarch64 and
/// armv7 programs print the same tokens).
const DOT_LANES: u8 = 4;

/// Element strides (batch, head, sequence) of an attention operand with
/// `heads` heads of `seq` rows of `dim` values, 4-D `[B, H, S, D]` or 3-D
/// `[B, S, H·D]`.
fn attn_strides(rank4: bool, heads: usize, seq: usize, dim: usize) -> [i64; 3] {
    let (h, s, d) = (heads as i64, seq as i64, dim as i64);
    if rank4 {
        [h * s * d, s * d, d]
    } else {
        [s * h * d, d, h * d]
    }
}

/// `Attention` without padding lengths (`nonpad_kv_seqlen`): per query
/// row, one pass over the keys (the past ones, then the new ones) finds the
/// largest logit, a second accumulates e^(logit − max)·V straight into the
/// output row (no scratch buffer) and the row is divided by the sum. The
/// logits are recomputed in the second pass instead of stored. The optional
/// outputs (present keys and values, the `QK` product in its
/// `qk_matmul_output_mode`) are written when the node has them.
pub(super) fn attention(
    at: &AttentionAttrs,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    let get = |k: usize| ins.get(k).cloned().flatten();
    let (q, k, v) = (
        get(0).ok_or("no Q")?,
        get(1).ok_or("no K")?,
        get(2).ok_or("no V")?,
    );
    if get(6).is_some() {
        return Err("Attention with padding lengths has no native kernel yet".into());
    }
    let (past_k, past_v) = (get(4), get(5));
    if past_k.is_some() != past_v.is_some() {
        return Err("past_key and past_value come together".into());
    }
    let out = &outs[0];
    let ty = q.ty;
    if !ty.is_float() {
        return Err(format!("Attention on {ty:?}"));
    }
    let rank4 = q.shape.len() == 4;
    let (batch, hq, sq, hd, hkv, skv, vd);
    if rank4 {
        (batch, hq, sq, hd) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
        (hkv, skv, vd) = (k.shape[1], k.shape[2], v.shape[3]);
    } else {
        let nq = at.q_num_heads.ok_or("3-D Q needs q_num_heads")?;
        let nkv = at.kv_num_heads.ok_or("3-D K needs kv_num_heads")?;
        (batch, hq, sq, hd) = (q.shape[0], nq, q.shape[1], q.shape[2] / nq);
        (hkv, skv, vd) = (nkv, k.shape[1], v.shape[2] / nkv);
    }
    if hkv == 0 || hq % hkv != 0 {
        return Err("Q heads are not a multiple of K/V heads".into());
    }
    let past = past_k.as_ref().map_or(0, |t| t.shape[2]);
    let total = past + skv;
    let group = hq / hkv;
    let (qs, ks, vs) = (
        attn_strides(rank4, hq, sq, hd),
        attn_strides(rank4, hkv, skv, hd),
        attn_strides(rank4, hkv, skv, vd),
    );
    let (pks, pvs) = (
        attn_strides(true, hkv, past, hd),
        attn_strides(true, hkv, past, vd),
    );
    let os = attn_strides(out.shape.len() == 4, hq, sq, vd);
    let scale = at
        .scale
        .map(|s| s as f64)
        .unwrap_or_else(|| 1.0 / (hd as f64).sqrt());
    // Q and K are each scaled by √scale (rounded to Q's type), like the spec.
    let sc = if ty == Scalar::F32 {
        scale.sqrt() as f32 as f64
    } else {
        scale.sqrt()
    };
    let mask = get(3);
    // Keys past a short mask are masked out: the loops stop there.
    let keys = mask
        .as_ref()
        .map_or(total, |m| m.shape.last().copied().unwrap_or(1).min(total));
    let (present_k, present_v, qk_out) = (outs.get(1), outs.get(2), outs.get(3));
    let mode = at.qk_matmul_output_mode;
    if qk_out.is_some() && keys < total && mode < 3 {
        return Err(
            "Attention's QK output with a mask shorter than the keys has no native kernel yet"
                .into(),
        );
    }
    let (smax, sum, acc, w) = (p.var(ty), p.var(ty), p.var(ty), p.var(ty));
    // The one-pass-per-key form (f32 without the QK output): the scratch
    // row of logits, the key's bias and the vector dot product's sum.
    let one_pass = (ty == Scalar::F32 && qk_out.is_none()).then(|| {
        let srow = p.scratch(keys as u64 * 4);
        (srow, p.var(ty), p.vector_var(ty, DOT_LANES))
    });
    let vector_dot = hd % usize::from(DOT_LANES) == 0;
    let (hv, gv, iv, jv, dv) = (
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
    );
    let ninf = f(f64::NEG_INFINITY, ty);
    let span = |v: crate::kernel::Var, lo: usize, hi: usize, body: Vec<Stmt>| {
        Stmt::for_loop(v, i(lo as i64), i(hi as i64), body)
    };
    let lp = |v, n, body| span(v, 0, n, body);
    Ok(loop_nest(p, &[batch], |_, bidx| {
        let b = bidx[0].clone();
        // h = kh·group + g.
        let h = add(mul(var(hv), i(group as i64)), var(gv));
        let base = |st: [i64; 3], head: Expr, row: Expr| {
            add(
                add(mul(b.clone(), i(st[0])), mul(head, i(st[1]))),
                mul(row, i(st[2])),
            )
        };
        // Key j's K and V rows: from the past for j < past, else from K, V.
        let kv_row = |from_past: bool| -> (Operand, Expr, Operand, Expr) {
            match (&past_k, &past_v) {
                (Some(pk), Some(pv)) if from_past => (
                    pk.clone(),
                    base(pks, var(hv), var(jv)),
                    pv.clone(),
                    base(pvs, var(hv), var(jv)),
                ),
                _ => {
                    let j = sub(var(jv), i(past as i64));
                    (
                        k.clone(),
                        base(ks, var(hv), j.clone()),
                        v.clone(),
                        base(vs, var(hv), j),
                    )
                }
            }
        };
        let q_row = base(qs, h.clone(), var(iv));
        let o_row = base(os, h.clone(), var(iv));
        let qk_at = add(
            mul(
                add(
                    mul(add(mul(b.clone(), i(hq as i64)), h.clone()), i(sq as i64)),
                    var(iv),
                ),
                i(total as i64),
            ),
            var(jv),
        );
        let mut bias = f(0.0, ty);
        if let Some(m) = &mask {
            let r = m.shape.len();
            let last = m.shape[r - 1];
            let idx4 = [b.clone(), h.clone(), var(iv)];
            let mut flat = i(0);
            for ax in 0..r - 1 {
                let dim = m.shape[ax];
                let pos = if dim == 1 {
                    i(0)
                } else {
                    idx4[3 - (r - 1) + ax].clone()
                };
                flat = add(mul(flat, i(dim as i64)), pos);
            }
            let mv = m.load(add(mul(flat, i(last as i64)), var(jv)));
            bias = if m.ty == Scalar::Bool {
                select(
                    cmp(CmpOp::Ne, mv, Expr::I(0, Scalar::Bool)),
                    f(0.0, ty),
                    ninf.clone(),
                )
            } else {
                cast(ty, mv)
            };
        }
        // Key j is visible to query i unless masked by causality (j > i +
        // past) or outside the window (i + past − j > left, or the reverse
        // > right).
        let ip = add(var(iv), i(past as i64));
        let mut hidden: Vec<Expr> = Vec::new();
        if at.is_causal {
            hidden.push(cmp(CmpOp::Gt, var(jv), ip.clone()));
        }
        if at.left_window >= 0 {
            hidden.push(cmp(CmpOp::Gt, sub(ip.clone(), var(jv)), i(at.left_window)));
        }
        if at.right_window >= 0 {
            hidden.push(cmp(CmpOp::Gt, sub(var(jv), ip.clone()), i(at.right_window)));
        }
        for c in hidden {
            bias = add(bias, select(c, ninf.clone(), f(0.0, ty)));
        }
        let raw = var(acc);
        let capped = if at.softcap > 0.0 {
            let cap = at.softcap as f64;
            mul(
                un(UnOp::Tanh, mul(raw.clone(), f(1.0 / cap, ty))),
                f(cap, ty),
            )
        } else {
            raw.clone()
        };
        let logit = add(capped.clone(), bias.clone());
        // `out[row] += w · V[v_row]`.
        let add_v_row = |vo: &Operand, v_row: Expr| -> Stmt {
            let o_at = add(o_row.clone(), var(dv));
            lp(
                dv,
                vd,
                vec![Stmt::Store {
                    buf: out.buf,
                    index: o_at.clone(),
                    value: add(out.load(o_at), mul(var(w), vo.load(add(v_row, var(dv))))),
                }],
            )
        };
        // The passes over keys [lo, hi), all from the past or all new.
        let passes = |from_past: bool, lo: usize, hi: usize| -> (Stmt, Stmt) {
            let (ko, k_row, vo, v_row) = kv_row(from_past);
            let qd = mul(q.load(add(q_row.clone(), var(dv))), f(sc, ty));
            let kd = mul(ko.load(add(k_row, var(dv))), f(sc, ty));
            let logit_stmts = vec![
                Stmt::Set(acc, f(0.0, ty)),
                lp(dv, hd, vec![Stmt::Set(acc, add(var(acc), mul(qd, kd)))]),
            ];
            let mut pass1 = logit_stmts.clone();
            pass1.push(Stmt::Set(smax, bin(BinOp::Max, var(smax), logit.clone())));
            if let (Some(qo), true) = (qk_out, mode < 3) {
                let val = match mode {
                    0 => raw.clone(),
                    1 => capped.clone(),
                    _ => logit.clone(),
                };
                pass1.push(Stmt::Store {
                    buf: qo.buf,
                    index: qk_at.clone(),
                    value: val,
                });
            }
            let mut pass2 = logit_stmts;
            pass2.push(Stmt::Set(
                w,
                un(UnOp::Exp, bin(BinOp::Sub, logit.clone(), var(smax))),
            ));
            pass2.push(Stmt::Set(sum, add(var(sum), var(w))));
            if let (Some(qo), 3) = (qk_out, mode) {
                pass2.push(Stmt::Store {
                    buf: qo.buf,
                    index: qk_at.clone(),
                    value: var(w),
                });
            }
            pass2.push(add_v_row(&vo, v_row));
            (span(jv, lo, hi, pass1), span(jv, lo, hi, pass2))
        };
        let split = past.min(keys);
        let o_at = add(o_row.clone(), var(dv));
        // Sets every element of the output row to `value` (of `o_at`).
        let set_row = |value: Expr| {
            let store = Stmt::Store {
                buf: out.buf,
                index: o_at.clone(),
                value,
            };
            lp(dv, vd, vec![store])
        };
        // A fully masked row attends to nothing: e^(−∞ − 0) = 0.
        let unmask_max = Stmt::Set(
            smax,
            select(
                cmp(CmpOp::Eq, var(smax), ninf.clone()),
                f(0.0, ty),
                var(smax),
            ),
        );
        let normalize = Stmt::Set(
            sum,
            bin(
                BinOp::Div,
                f(1.0, ty),
                select(cmp(CmpOp::Eq, var(sum), f(0.0, ty)), f(1.0, ty), var(sum)),
            ),
        );
        // The row's loops over heads and queries, then present_key and
        // present_value.
        let finish = |row: Vec<Stmt>| -> Vec<Stmt> {
            let mut body = vec![lp(hv, hkv, vec![lp(gv, group, vec![lp(iv, sq, row)])])];
            // present_key / present_value: the past rows, then the new ones.
            for (po, src_past, src_new, st_past, st_new, dim) in [
                (present_k, &past_k, &k, pks, ks, hd),
                (present_v, &past_v, &v, pvs, vs, vd),
            ] {
                let Some(po) = po else { continue };
                let dst = attn_strides(true, hkv, total, dim);
                let d_at = add(base(dst, var(hv), var(jv)), var(dv));
                let mut copies = Vec::new();
                if let Some(pt) = src_past {
                    copies.push(span(
                        jv,
                        0,
                        past,
                        vec![lp(
                            dv,
                            dim,
                            vec![Stmt::Store {
                                buf: po.buf,
                                index: d_at.clone(),
                                value: pt.load(add(base(st_past, var(hv), var(jv)), var(dv))),
                            }],
                        )],
                    ));
                }
                let j = sub(var(jv), i(past as i64));
                copies.push(span(
                    jv,
                    past,
                    total,
                    vec![lp(
                        dv,
                        dim,
                        vec![Stmt::Store {
                            buf: po.buf,
                            index: d_at.clone(),
                            value: src_new.load(add(base(st_new, var(hv), j), var(dv))),
                        }],
                    )],
                ));
                body.push(lp(hv, hkv, copies));
            }
            body
        };
        if let Some((srow, bv, dot_acc)) = one_pass {
            let s_at = |j: Expr| load(srow, j, ty);
            let store_s = |value: Expr| Stmt::Store {
                buf: srow,
                index: var(jv),
                value,
            };
            // Keys [lo, hi): the logit into the scratch row, unless masked.
            let logits = |from_past: bool, lo: usize, hi: usize| -> Stmt {
                let (ko, k_row, _, _) = kv_row(from_past);
                let mut compute = if vector_dot {
                    let l = i64::from(DOT_LANES);
                    let at = |row: Expr| add(row, mul(var(dv), i(l)));
                    let scaled = |o: &Operand, row: Expr| {
                        mul(
                            vload(o.buf, at(row), ty, DOT_LANES),
                            splat(DOT_LANES, f(sc, ty)),
                        )
                    };
                    vec![
                        Stmt::Set(dot_acc, splat(DOT_LANES, f(0.0, ty))),
                        lp(
                            dv,
                            hd / usize::from(DOT_LANES),
                            vec![Stmt::Set(
                                dot_acc,
                                add(
                                    var(dot_acc),
                                    mul(scaled(&q, q_row.clone()), scaled(&ko, k_row.clone())),
                                ),
                            )],
                        ),
                        Stmt::Set(acc, reduce(BinOp::Add, var(dot_acc))),
                    ]
                } else {
                    let qd = mul(q.load(add(q_row.clone(), var(dv))), f(sc, ty));
                    let kd = mul(ko.load(add(k_row, var(dv))), f(sc, ty));
                    vec![
                        Stmt::Set(acc, f(0.0, ty)),
                        lp(dv, hd, vec![Stmt::Set(acc, add(var(acc), mul(qd, kd)))]),
                    ]
                };
                compute.push(Stmt::Set(w, add(capped.clone(), var(bv))));
                compute.push(store_s(var(w)));
                compute.push(Stmt::Set(smax, bin(BinOp::Max, var(smax), var(w))));
                span(
                    jv,
                    lo,
                    hi,
                    vec![
                        Stmt::Set(bv, bias.clone()),
                        Stmt::If(
                            cmp(CmpOp::Eq, var(bv), ninf.clone()),
                            vec![store_s(ninf.clone())],
                            compute,
                        ),
                    ],
                )
            };
            // Keys [lo, hi) with a weight: their V rows into the output row.
            let values = |from_past: bool, lo: usize, hi: usize| -> Stmt {
                let (_, _, vo, v_row) = kv_row(from_past);
                let acc_row = add_v_row(&vo, v_row);
                span(
                    jv,
                    lo,
                    hi,
                    vec![
                        Stmt::Set(w, s_at(var(jv))),
                        Stmt::If(cmp(CmpOp::Ne, var(w), f(0.0, ty)), vec![acc_row], vec![]),
                    ],
                )
            };
            let weights = span(
                jv,
                0,
                keys,
                vec![
                    Stmt::Set(w, un(UnOp::Exp, bin(BinOp::Sub, s_at(var(jv)), var(smax)))),
                    store_s(var(w)),
                    Stmt::Set(sum, add(var(sum), var(w))),
                ],
            );
            let row = vec![
                Stmt::Set(smax, ninf.clone()),
                logits(true, 0, split),
                logits(false, split, keys),
                unmask_max,
                Stmt::Set(sum, f(0.0, ty)),
                weights,
                set_row(f(0.0, ty)),
                values(true, 0, split),
                values(false, split, keys),
                normalize,
                set_row(mul(out.load(o_at.clone()), var(sum))),
            ];
            return finish(row);
        }
        let (p1a, p2a) = passes(true, 0, split);
        let (p1b, p2b) = passes(false, split, keys);
        let mut row = vec![
            Stmt::Set(smax, ninf.clone()),
            p1a,
            p1b,
            unmask_max,
            set_row(f(0.0, ty)),
            Stmt::Set(sum, f(0.0, ty)),
            p2a,
            p2b,
            normalize,
            set_row(mul(out.load(o_at.clone()), var(sum))),
        ];
        if let Some(qo) = qk_out {
            // Keys cut off by a short mask: raw logits are still products,
            // but the mask makes them −∞ and their probabilities 0.
            let mut tail = Vec::new();
            if mode == 3 {
                row.push(lp(
                    jv,
                    keys,
                    vec![Stmt::Store {
                        buf: qo.buf,
                        index: qk_at.clone(),
                        value: mul(qo.load(qk_at.clone()), var(sum)),
                    }],
                ));
                tail.push(Stmt::Store {
                    buf: qo.buf,
                    index: qk_at.clone(),
                    value: f(0.0, ty),
                });
            }
            if keys < total && mode == 3 {
                row.push(span(jv, keys, total, tail));
            }
        }
        finish(row)
    }))
}
