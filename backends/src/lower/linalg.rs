//! Lowering of matrix products.
//!
//! These are the first, plain schedules: loop nests with a scalar
//! accumulator. Packing, register blocking and vectorization are kernel-IR
//! transformations that come with the fast-kernel work.

use smelt_ir::ops::linalg::Linalg;

use super::{NodeResult, Operand, flat_index, loop_nest};
use crate::kernel::build::{add, f, i, load, mul, var};
use crate::kernel::{Expr, Program, Stmt};

/// `out[b, m, n] = Σ_k a[b, m, k] · b[b, k, n]` (+ epilogue), for operands
/// already viewed as (batch, rows, cols) with explicit strides.
struct MatMulView {
    m: usize,
    n: usize,
    k: usize,
    /// Element strides of A along m and k, of B along k and n.
    a_m: usize,
    a_k: usize,
    b_k: usize,
    b_n: usize,
}

fn matmul_loops(
    p: &mut Program,
    v: &MatMulView,
    a: &Operand,
    a_base: Expr,
    b: &Operand,
    b_base: Expr,
    out: &Operand,
    out_base: Expr,
    epilogue: impl Fn(Expr, &[Expr]) -> Expr,
) -> Vec<Stmt> {
    let acc = p.var(out.ty);
    let kv = p.var(crate::kernel::Scalar::I64);
    loop_nest(p, &[v.m, v.n], |_, idx| {
        let (mi, ni) = (idx[0].clone(), idx[1].clone());
        let a_idx = add(
            a_base.clone(),
            add(
                mul(mi.clone(), i(v.a_m as i64)),
                mul(var(kv), i(v.a_k as i64)),
            ),
        );
        let b_idx = add(
            b_base.clone(),
            add(
                mul(var(kv), i(v.b_k as i64)),
                mul(ni.clone(), i(v.b_n as i64)),
            ),
        );
        let prod = mul(load(a.buf, a_idx, a.ty), load(b.buf, b_idx, b.ty));
        let out_idx = add(out_base.clone(), add(mul(mi, i(v.n as i64)), ni));
        vec![
            Stmt::Set(acc, f(0.0, out.ty)),
            Stmt::For {
                var: kv,
                start: i(0),
                end: i(v.k as i64),
                body: vec![Stmt::Set(acc, add(var(acc), prod))],
            },
            Stmt::Store {
                buf: out.buf,
                index: out_idx,
                value: epilogue(var(acc), idx),
            },
        ]
    })
}

/// Lowers one node of the linalg family.
pub fn lower(l: &Linalg, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let out = &outs[0];
    if !out.ty.is_float() {
        return Err("integer matrix products have no native kernel yet".into());
    }
    match l {
        Linalg::MatMul => {
            let (a, b) = (ins[0].clone().ok_or("no A")?, ins[1].clone().ok_or("no B")?);
            if a.shape.len() < 2 || b.shape.len() < 2 {
                return Err("MatMul with 1-D operands has no native kernel yet".into());
            }
            let (m, k) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
            let n = b.shape[b.shape.len() - 1];
            let batch: Vec<usize> = out.shape[..out.shape.len() - 2].to_vec();
            let view = MatMulView {
                m,
                n,
                k,
                a_m: k,
                a_k: 1,
                b_k: n,
                b_n: 1,
            };
            let (a_c, b_c) = (a.clone(), b.clone());
            let out_c = out.clone();
            let mut err = None;
            let stmts = loop_nest(p, &batch, |p, bidx| {
                // Broadcast batch dims: each operand's batch index, scaled by its matrix size.
                let batch_off = |o: &Operand, mat: usize| -> Expr {
                    let bs = &o.shape[..o.shape.len() - 2];
                    let e = super::broadcast_index(bs, bidx);
                    mul(e, i(mat as i64))
                };
                if a_c.shape.len() - 2 > bidx.len() || b_c.shape.len() - 2 > bidx.len() {
                    err = Some("unexpected batch rank".to_string());
                    return vec![];
                }
                let a_base = batch_off(&a_c, m * k);
                let b_base = batch_off(&b_c, k * n);
                let o_base = mul(flat_index(&batch, bidx), i((m * n) as i64));
                matmul_loops(
                    p,
                    &view,
                    &a_c,
                    a_base,
                    &b_c,
                    b_base,
                    &out_c,
                    o_base,
                    |acc, _| acc,
                )
            });
            match err {
                Some(e) => Err(e),
                None => Ok(stmts),
            }
        }
        Linalg::Gemm(g) => {
            let (a, b) = (ins[0].clone().ok_or("no A")?, ins[1].clone().ok_or("no B")?);
            let c = ins.get(2).cloned().flatten();
            let (m, n) = (out.shape[0], out.shape[1]);
            let k = if g.trans_a { a.shape[0] } else { a.shape[1] };
            let view = MatMulView {
                m,
                n,
                k,
                a_m: if g.trans_a { 1 } else { k },
                a_k: if g.trans_a { m } else { 1 },
                b_k: if g.trans_b { 1 } else { n },
                b_n: if g.trans_b { k } else { 1 },
            };
            let (alpha, beta) = (g.alpha as f64, g.beta as f64);
            let ty = out.ty;
            Ok(matmul_loops(
                p,
                &view,
                &a,
                i(0),
                &b,
                i(0),
                out,
                i(0),
                |acc, idx| {
                    let mut v = if alpha == 1.0 {
                        acc
                    } else {
                        mul(f(alpha, ty), acc)
                    };
                    if let Some(c) = &c {
                        let cv = c.load(super::broadcast_index(&c.shape, idx));
                        v = add(
                            v,
                            if beta == 1.0 {
                                cv
                            } else {
                                mul(f(beta, ty), cv)
                            },
                        );
                    }
                    v
                },
            ))
        }
        Linalg::Einsum(_)
        | Linalg::Attention(_)
        | Linalg::LinearAttention(_)
        | Linalg::RotaryEmbedding { .. }
        | Linalg::Det => Err("no native kernel for this op yet".into()),
    }
}
