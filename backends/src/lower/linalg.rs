//! Lowering of matrix products.
//!
//! f32 `MatMul` and `Gemm` (alpha 1, no or per-column C) run the
//! register-blocked micro-kernel of [`crate::schedule::gemm`], with a
//! constant B packed at compile time. Everything else (other dtypes and
//! attributes, `Einsum`) uses the general schedule: loop nests with a
//! scalar accumulator. `Attention` is lowered in [`super::attention`].

use smelt_ir::ops::elementwise::Epilogue;
use smelt_ir::ops::linalg::{EinsumEq, Linalg, Sub};

use super::elementwise::Epi;
use super::{NodeResult, Operand, flat_index, loop_nest};
use crate::kernel::build::{add, cast, f, i, load, mul, var};
use crate::kernel::{Buf, Expr, Program, Scalar, Stmt};
use crate::schedule::gemm;

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

/// The arithmetic of the general matmul loops: what the sum accumulates in,
/// the product of an element of A and one of B, and the value stored from
/// the sum. Both hooks get the output index `[batch…, m, n]` (of the output
/// with the unit dimensions of 1-D operands kept).
pub(super) struct MatMulMath<'a> {
    /// The accumulator's type.
    pub(super) acc: Scalar,
    /// `product(a, b, idx)`.
    pub(super) product: &'a dyn Fn(Expr, Expr, &[Expr]) -> Expr,
    /// `store(sum, idx)`.
    pub(super) store: &'a dyn Fn(Expr, &[Expr]) -> Expr,
}

impl MatMulMath<'_> {
    /// Plain `Σ a·b` in the output's type, stored as is.
    fn plain(ty: Scalar) -> MatMulMath<'static> {
        MatMulMath {
            acc: ty,
            product: &|a, b, _| mul(a, b),
            store: &|acc, _| acc,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_loops(
    p: &mut Program,
    v: &MatMulView,
    a: &Operand,
    a_base: Expr,
    b: &Operand,
    b_base: Expr,
    out: &Operand,
    out_base: Expr,
    batch: &[Expr],
    math: &MatMulMath<'_>,
) -> Vec<Stmt> {
    let acc = p.var(math.acc);
    let kv = p.var(Scalar::I64);
    loop_nest(p, &[v.m, v.n], |_, idx| {
        let (mi, ni) = (idx[0].clone(), idx[1].clone());
        let full: Vec<Expr> = batch.iter().chain(idx).cloned().collect();
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
        let prod = (math.product)(load(a.buf, a_idx, a.ty), load(b.buf, b_idx, b.ty), &full);
        let out_idx = add(out_base.clone(), add(mul(mi, i(v.n as i64)), ni));
        let zero = if math.acc.is_float() {
            f(0.0, math.acc)
        } else {
            Expr::I(0, math.acc)
        };
        vec![
            Stmt::Set(acc, zero),
            Stmt::for_loop(
                kv,
                i(0),
                i(v.k as i64),
                vec![Stmt::Set(acc, add(var(acc), prod))],
            ),
            Stmt::Store {
                buf: out.buf,
                index: out_idx,
                value: (math.store)(var(acc), &full),
            },
        ]
    })
}

/// `MatMul` with NumPy semantics (1-D operands, broadcast batch dimensions)
/// as the general loop nests, computing with `math`.
pub(super) fn general_matmul(
    p: &mut Program,
    a: &Operand,
    b: &Operand,
    out: &Operand,
    math: &MatMulMath<'_>,
) -> NodeResult {
    let (a, b, (m, n, k), batch) = matmul_shape(a, b, out)?;
    let view = MatMulView {
        m,
        n,
        k,
        a_m: k,
        a_k: 1,
        b_k: n,
        b_n: 1,
    };
    if a.shape.len() - 2 > batch.len() || b.shape.len() - 2 > batch.len() {
        return Err("unexpected batch rank".to_string());
    }
    Ok(loop_nest(p, &batch, |p, bidx| {
        // Broadcast batch dims: each operand's batch index, scaled by its matrix size.
        let batch_off = |o: &Operand, mat: usize| -> Expr {
            let bs = &o.shape[..o.shape.len() - 2];
            let e = super::broadcast_index(bs, bidx);
            mul(e, i(mat as i64))
        };
        let a_base = batch_off(&a, m * k);
        let b_base = batch_off(&b, k * n);
        let o_base = mul(flat_index(&batch, bidx), i((m * n) as i64));
        matmul_loops(p, &view, &a, a_base, &b, b_base, out, o_base, bidx, math)
    }))
}

/// A `MatMul`'s operands as matrices ([`matrix`]), its `(m, n, k)` and the
/// batch dimensions of its output `out`.
type MatMulShape = (Operand, Operand, (usize, usize, usize), Vec<usize>);

fn matmul_shape(a: &Operand, b: &Operand, out: &Operand) -> Result<MatMulShape, String> {
    let dropped = (a.shape.len() < 2) as usize + (b.shape.len() < 2) as usize;
    let (a, b) = (matrix(a, true), matrix(b, false));
    let (m, k) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
    let n = b.shape[b.shape.len() - 1];
    let kept = 2 - dropped;
    if out.shape.len() < kept {
        return Err("unexpected output rank".into());
    }
    let batch = out.shape[..out.shape.len() - kept].to_vec();
    Ok((a, b, (m, n, k), batch))
}

/// A `MatMul` operand as a matrix: a 1-D A is a row (`[1, K]`), a 1-D B a
/// column (`[K, 1]`); the output drops that unit dimension but keeps its
/// layout.
fn matrix(o: &Operand, is_a: bool) -> Operand {
    let mut o = o.clone();
    if o.shape.len() < 2 {
        if is_a {
            o.shape.insert(0, 1);
        } else {
            o.shape.push(1);
        }
    }
    o
}

/// Lowers one node of the linalg family.
pub fn lower(l: &Linalg, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    lower_with(l, &Epi::default(), ins, outs, p).map(|(stmts, _)| stmts)
}

/// [`lower`] with an epilogue (residual, activation) for `MatMul` and
/// `Gemm`: the statements and whether they apply it already (the GEMM path
/// applies it in its store); when they do not, the caller appends it.
pub fn lower_with(
    l: &Linalg,
    epi: &Epi,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> Result<(Vec<Stmt>, bool), String> {
    if !epi.is_empty() && !matches!(l, Linalg::MatMul | Linalg::Gemm(_)) {
        return Err("no epilogue for this op".into());
    }
    // The fast paths apply the epilogue when the GEMM store can take it.
    let mut applied = false;
    let stmts = lower_inner(l, epi, &mut applied, ins, outs, p)?;
    Ok((stmts, !epi.is_empty() && applied))
}

fn lower_inner(
    l: &Linalg,
    epi: &Epi,
    applied: &mut bool,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    let out = &outs[0];
    // What the GEMM store applies: the epilogue if it can take it, else
    // nothing (and the caller applies it as passes).
    let store_epi = epi.for_gemm(out);
    match l {
        Linalg::MatMul => {
            let (a0, b0) = (ins[0].clone().ok_or("no A")?, ins[1].clone().ok_or("no B")?);
            let (a, b, (m, n, k), batch) = matmul_shape(&a0, &b0, out)?;
            let se = store_epi.unwrap_or_default();
            if let Some(stmts) = fast_matmul(p, &a, &b, out, &batch, (m, n, k), se) {
                *applied = store_epi.is_some();
                return Ok(stmts);
            }
            general_matmul(p, &a0, &b0, out, &MatMulMath::plain(out.ty))
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
            // beta = 0 ignores C entirely (even its NaNs), like the interpreter.
            let c = c.filter(|_| beta != 0.0);
            let se = store_epi.unwrap_or_default();
            if let Some(stmts) = fast_gemm(p, g, &a, &b, c.as_ref(), out, (beta, alpha), se) {
                *applied = store_epi.is_some();
                return Ok(stmts);
            }
            let ty = out.ty;
            // Integers: the scaled sum is computed in f64 and converted back,
            // as the interpreter does; plain A·B stays exact.
            let wide = !ty.is_float() && (alpha != 1.0 || c.is_some());
            let et = if wide { Scalar::F64 } else { ty };
            let widen = |e: Expr| if wide { cast(Scalar::F64, e) } else { e };
            let store = |acc: Expr, idx: &[Expr]| {
                let acc = widen(acc);
                let mut v = if alpha == 1.0 {
                    acc
                } else {
                    mul(f(alpha, et), acc)
                };
                if let Some(c) = &c {
                    let cv = widen(c.load(super::broadcast_index(&c.shape, idx)));
                    v = add(
                        v,
                        if beta == 1.0 {
                            cv
                        } else {
                            mul(f(beta, et), cv)
                        },
                    );
                }
                if wide { cast(ty, v) } else { v }
            };
            let math = MatMulMath {
                acc: ty,
                product: &|a, b, _| mul(a, b),
                store: &store,
            };
            Ok(matmul_loops(
                p,
                &view,
                &a,
                i(0),
                &b,
                i(0),
                out,
                i(0),
                &[],
                &math,
            ))
        }
        Linalg::Einsum(eq) => einsum(eq, ins, out, p),
        Linalg::Attention(at) => super::attention::attention(at, ins, outs, p),
        Linalg::LinearAttention(_) | Linalg::RotaryEmbedding { .. } | Linalg::Det => {
            Err("no native kernel for this op yet".into())
        }
    }
}

/// Whether `op` on these operands runs on the GEMM micro-kernel: the cost
/// model's answer ([`smelt_passes::egraph::cost::runs_on_gemm`]).
pub(super) fn on_gemm(op: &str, operands: [&Operand; 3]) -> bool {
    smelt_passes::egraph::cost::runs_on_gemm(op, operands.iter().map(|o| o.ty.dtype()))
}

/// The constant f32 data of `o`, if it is a constant.
fn const_f32(p: &Program, o: &Operand) -> Option<Vec<f32>> {
    match o.buf {
        Buf::Const(c) if o.ty == Scalar::F32 => Some(gemm::f32s(&p.consts[c as usize])),
        _ => None,
    }
}

/// `MatMul` on f32 through the register-blocked GEMM: a constant B (no
/// batch, or batch dims of 1) is packed once; otherwise B is read in place.
#[allow(clippy::too_many_arguments)]
fn fast_matmul(
    p: &mut Program,
    a: &Operand,
    b: &Operand,
    out: &Operand,
    batch: &[usize],
    (m, n, k): (usize, usize, usize),
    (residual, act): (Option<Buf>, Option<Epilogue>),
) -> Option<Vec<Stmt>> {
    if !on_gemm("MatMul", [a, b, out]) {
        return None;
    }
    if act.is_some_and(|a| !a.is_supported()) {
        return None;
    }
    if a.shape.len() - 2 > batch.len() || b.shape.len() - 2 > batch.len() {
        return None;
    }
    let t = gemm::Tiling::for_rows(m, p.shape);
    let b_batch: usize = b.shape[..b.shape.len() - 2].iter().product();
    let packed = match const_f32(p, b) {
        Some(w) if b_batch == 1 => {
            let c = p.consts.len() as u32;
            let (bytes, panels) = gemm::pack_b(t, k, n, |kk, nn| w[kk * n + nn], Buf::Const(c));
            p.consts.push(bytes);
            Some(panels)
        }
        _ => None,
    };
    // With threads, a batch of products is split by batch (each writes its
    // own slice of the output); their tiles then stay sequential.
    let work = (batch.iter().product::<usize>() * m * n * k) as u64;
    let nest = loop_nest(p, batch, |p, bidx| {
        let batch_off = |o: &Operand, mat: usize| -> Expr {
            let bs = &o.shape[..o.shape.len() - 2];
            mul(super::broadcast_index(bs, bidx), i(mat as i64))
        };
        let a_panels = gemm::strided_a(t, m, a.buf, batch_off(a, m * k), k as i64, 1);
        let b_panels = packed
            .clone()
            .unwrap_or_else(|| gemm::strided_b(t, n, b.buf, batch_off(b, k * n), n as i64));
        let g = gemm::Gemm {
            m,
            n,
            k,
            tiling: t,
            a: a_panels,
            b: b_panels,
            c: (
                out.buf,
                mul(flat_index(batch, bidx), i((m * n) as i64)),
                n as i64,
            ),
            init: gemm::Init::Zero,
            act,
            residual,
        };
        gemm::gemm(p, &g)
    });
    Some(if p.threads > 1 {
        p.par_nest(nest, work)
    } else {
        nest
    })
}

/// `Gemm` on f32 with `alpha = 1` and no C or a per-column C (`beta = 1`)
/// through the register-blocked GEMM; a constant B is packed.
#[allow(clippy::too_many_arguments)]
fn fast_gemm(
    p: &mut Program,
    g: &smelt_ir::ops::linalg::GemmAttrs,
    a: &Operand,
    b: &Operand,
    c: Option<&Operand>,
    out: &Operand,
    (beta, alpha): (f64, f64),
    (residual, act): (Option<Buf>, Option<Epilogue>),
) -> Option<Vec<Stmt>> {
    if !on_gemm("Gemm", [a, b, out]) || alpha != 1.0 {
        return None;
    }
    if act.is_some_and(|a| !a.is_supported()) {
        return None;
    }
    let (m, n) = (out.shape[0], out.shape[1]);
    let k = if g.trans_a { a.shape[0] } else { a.shape[1] };
    let init = match c {
        None => gemm::Init::Zero,
        Some(c)
            if beta == 1.0
                && c.ty == Scalar::F32
                && (c.shape == [n] || c.shape == [1, n])
                && n > 1 =>
        {
            gemm::Init::Col(c.buf, i(0))
        }
        Some(_) => return None,
    };
    let t = gemm::Tiling::for_rows(m, p.shape);
    let b_panels = match const_f32(p, b) {
        Some(w) => {
            let cid = p.consts.len() as u32;
            let tb = g.trans_b;
            let (bytes, panels) = gemm::pack_b(
                t,
                k,
                n,
                |kk, nn| if tb { w[nn * k + kk] } else { w[kk * n + nn] },
                Buf::Const(cid),
            );
            p.consts.push(bytes);
            panels
        }
        None if !g.trans_b => gemm::strided_b(t, n, b.buf, i(0), n as i64),
        None => return None,
    };
    let a_panels = if g.trans_a {
        gemm::strided_a(t, m, a.buf, i(0), 1, m as i64)
    } else {
        gemm::strided_a(t, m, a.buf, i(0), k as i64, 1)
    };
    let spec = gemm::Gemm {
        m,
        n,
        k,
        tiling: t,
        a: a_panels,
        b: b_panels,
        c: (out.buf, i(0), n as i64),
        init,
        act,
        residual,
    };
    Some(gemm::gemm(p, &spec))
}

/// Label ids: letters are their ASCII code, ellipsis dims count up from here.
const ELLIPSIS: u32 = 1 << 16;

/// Einsum as one loop nest: the output's labels outside, the contracted
/// labels inside, the product of the operands' elements summed into a
/// scalar accumulator. Covers every form the interpreter accepts
/// (transposes, traces and diagonals through repeated labels, broadcasting
/// ellipses and size-1 dims, any operand count); the interpreter contracts
/// pairwise instead, so float sums may differ in rounding order.
fn einsum(eq: &EinsumEq, ins: &[Option<Operand>], out: &Operand, p: &mut Program) -> NodeResult {
    let ops: Vec<Operand> = ins
        .iter()
        .map(|o| o.clone().ok_or("an operand has no buffer"))
        .collect::<Result<_, _>>()?;
    if ops.len() != eq.inputs.len() {
        return Err("operand count does not match the equation".into());
    }
    let ell: Vec<usize> = eq
        .inputs
        .iter()
        .zip(&ops)
        .map(|(t, o)| {
            let letters = t.iter().filter(|s| matches!(s, Sub::Label(_))).count();
            o.shape.len().saturating_sub(letters)
        })
        .collect();
    let r = ell.iter().copied().max().unwrap_or(0);
    // Labels of every operand axis, sizes and occurrence counts of labels.
    let mut order: Vec<u32> = Vec::new();
    let mut sizes = std::collections::HashMap::<u32, usize>::new();
    let mut counts = std::collections::BTreeMap::<u32, usize>::new();
    let mut axes: Vec<Vec<u32>> = Vec::new();
    for ((term, o), &e) in eq.inputs.iter().zip(&ops).zip(&ell) {
        let mut labels = Vec::new();
        for s in term {
            match s {
                Sub::Label(c) => labels.push(*c as u32),
                Sub::Ellipsis => labels.extend((r - e..r).map(|i| ELLIPSIS + i as u32)),
            }
        }
        if labels.len() != o.shape.len() {
            return Err("operand rank does not match its einsum term".into());
        }
        for (&l, &d) in labels.iter().zip(&o.shape) {
            if !order.contains(&l) {
                order.push(l);
            }
            *counts.entry(l).or_insert(0) += 1;
            let s = sizes.entry(l).or_insert(d);
            if *s == 1 {
                *s = d;
            }
        }
        axes.push(labels);
    }
    let output: Vec<u32> = match &eq.output {
        Some(t) => t
            .iter()
            .flat_map(|s| match s {
                Sub::Label(c) => vec![*c as u32],
                Sub::Ellipsis => (0..r).map(|i| ELLIPSIS + i as u32).collect(),
            })
            .collect(),
        None => (0..r)
            .map(|i| ELLIPSIS + i as u32)
            .chain(
                counts
                    .iter()
                    .filter(|&(&l, &c)| l < ELLIPSIS && c == 1)
                    .map(|(&l, _)| l),
            )
            .collect(),
    };
    let out_shape: Vec<usize> = output
        .iter()
        .map(|l| sizes.get(l).copied().unwrap_or(1))
        .collect();
    if out_shape != out.shape {
        return Err(format!(
            "einsum output shape {out_shape:?} differs from the inferred {:?}",
            out.shape
        ));
    }
    let inner: Vec<u32> = order.into_iter().filter(|l| !output.contains(l)).collect();
    let inner_shape: Vec<usize> = inner.iter().map(|l| sizes[l]).collect();
    let acc = p.var(out.ty);
    let out_c = out.clone();
    Ok(loop_nest(p, &out.shape, |p, oidx| {
        let inner_vars: Vec<_> = inner.iter().map(|_| p.var(Scalar::I64)).collect();
        let index_of = |l: u32| -> Expr {
            match output.iter().position(|&x| x == l) {
                Some(k) => oidx[k].clone(),
                None => var(inner_vars[inner.iter().position(|&x| x == l).unwrap_or(0)]),
            }
        };
        let mut prod: Option<Expr> = None;
        for (o, labels) in ops.iter().zip(&axes) {
            let mut stride = 1usize;
            let mut terms: Vec<Expr> = Vec::new();
            for ax in (0..labels.len()).rev() {
                if o.shape[ax] != 1 {
                    terms.push(mul(index_of(labels[ax]), i(stride as i64)));
                }
                stride *= o.shape[ax];
            }
            let idx = terms.into_iter().reduce(add).unwrap_or_else(|| i(0));
            let v = o.load(idx);
            prod = Some(match prod {
                None => v,
                Some(pv) => mul(pv, v),
            });
        }
        let mut body = vec![Stmt::Set(
            acc,
            add(var(acc), prod.unwrap_or_else(|| f(1.0, out_c.ty))),
        )];
        for (d, &v) in inner_vars.iter().enumerate().rev() {
            body = vec![Stmt::for_loop(v, i(0), i(inner_shape[d] as i64), body)];
        }
        let mut stmts = vec![Stmt::Set(acc, f(0.0, out_c.ty))];
        stmts.extend(body);
        stmts.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, oidx),
            value: var(acc),
        });
        stmts
    }))
}

#[cfg(test)]
mod tests {
    //! Matrix products lowered and run by the kernel-IR test evaluator,
    //! against the reference interpreter.
    use super::*;
    use crate::eval::{Eval, tensor_inputs, tensor_operands};
    use crate::kernel::Buf;
    use smelt_ir::ops::linalg::GemmAttrs;
    use smelt_ir::{DType, OpDef, Tensor};

    fn check(l: Linalg, ins: &[&Tensor]) {
        let refs: Vec<Option<&Tensor>> = ins.iter().map(|t| Some(*t)).collect();
        let want = l.eval(&refs).expect("interpreter").remove(0);
        let mut p = Program::default();
        let ops = tensor_operands(ins);
        let o = Operand {
            buf: Buf::Output(0),
            shape: want.shape().to_vec(),
            ty: Scalar::of(want.dtype()).expect("scalar"),
        };
        p.body = lower(&l, &ops, std::slice::from_ref(&o), &mut p).expect("lowers");
        let mut mem = tensor_inputs(ins);
        mem.insert(Buf::Output(0), vec![0; want.to_le_bytes().len()]);
        // One evaluator runs the vector GEMM schedule (f32) and the scalar
        // loops of the other dtypes.
        let mut ev = Eval::new(&p);
        ev.mem.extend(mem);
        ev.run();
        let out = ev.mem.remove(&Buf::Output(0)).expect("output");
        let got = Tensor::from_le_bytes(want.dtype(), want.shape().to_vec(), &out).unwrap();
        if want.dtype().is_float() {
            for (a, b) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{l:?}: {a} vs {b}");
            }
        } else {
            assert_eq!(got, want, "{l:?}");
        }
    }

    fn f(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|k| ((k * 7 % 11) as f32 - 5.0) * 0.25).collect();
        Tensor::from_vec(shape.to_vec(), v).unwrap()
    }

    fn int(shape: &[usize], d: DType) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<i64> = (0..n).map(|k| (k as i64 * 37 % 251) - 120).collect();
        Tensor::from_vec(shape.to_vec(), v).unwrap().cast(d)
    }

    #[test]
    fn matmul_shapes_and_integers() {
        for (a, b) in [
            (vec![3], vec![3]),
            (vec![3], vec![2, 3, 4]),
            (vec![2, 2, 3], vec![3]),
            (vec![2, 1, 3, 4], vec![3, 4, 2]),
            (vec![5, 4], vec![4, 3]),
        ] {
            check(Linalg::MatMul, &[&f(&a), &f(&b)]);
            for d in [DType::I8, DType::U8, DType::I32, DType::U64] {
                check(Linalg::MatMul, &[&int(&a, d), &int(&b, d)]);
            }
        }
    }

    #[test]
    fn gemm_attributes() {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0, 1.0), (0.5, 2.0), (1.0, 0.0)] {
                let g = GemmAttrs::new()
                    .with_scales(alpha, beta)
                    .with_trans(trans_a, trans_b);
                let a = if trans_a { [4, 3] } else { [3, 4] };
                let b = if trans_b { [5, 4] } else { [4, 5] };
                for c in [vec![5], vec![3, 1], vec![3, 5], vec![]] {
                    check(Linalg::Gemm(g), &[&f(&a), &f(&b), &f(&c)]);
                    let d = DType::I32;
                    check(Linalg::Gemm(g), &[&int(&a, d), &int(&b, d), &int(&c, d)]);
                }
                check(Linalg::Gemm(g), &[&f(&a), &f(&b)]);
            }
        }
    }

    #[test]
    fn einsum_forms() {
        let e = |s: &str| Linalg::Einsum(EinsumEq::parse(s).unwrap());
        check(e("ij,jk->ik"), &[&f(&[2, 3]), &f(&[3, 4])]);
        check(e("ij,jk"), &[&f(&[2, 3]), &f(&[3, 4])]);
        check(e("ij->ji"), &[&f(&[2, 3])]);
        check(e("ij->"), &[&f(&[2, 3])]);
        check(e("ii->i"), &[&f(&[3, 3])]);
        check(e("ii"), &[&f(&[3, 3])]);
        check(e("i,i"), &[&f(&[4]), &f(&[4])]);
        check(e("i,j->ij"), &[&f(&[3]), &f(&[2])]);
        check(e("ba"), &[&f(&[2, 3])]);
        check(e("...ij,jk->...ik"), &[&f(&[2, 1, 2]), &f(&[2, 3])]);
        check(e("bij,bjk->bik"), &[&f(&[2, 3, 4]), &f(&[2, 4, 5])]);
        check(e("...ii->...i"), &[&f(&[2, 3, 3])]);
        check(e("ij,jk->ik"), &[&f(&[2, 1]), &f(&[3, 1])]);
        check(e("i,i,i->"), &[&f(&[3]), &f(&[3]), &f(&[3])]);
        let d = DType::I32;
        check(e("ij,jk->ik"), &[&int(&[2, 2], d), &int(&[2, 2], d)]);
    }
}
