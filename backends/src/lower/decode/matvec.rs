//! A scalar-loop reference kernel for a matrix product with an encoded
//! weight, `y[m, n] = Σ_k x[m, k] · w[n, k]`, organised by scale group: each
//! group's scale (and offset) is read once and multiplies the group's
//! integer dot product, `scale · Σ x·q (+ offset · Σ x)`, the shape the fast
//! kernels will have. Dense f16/bf16 weights (no scales) decode each element.

use smelt_ir::TensorType;

use super::{block_quant, block_scale_min, decode_element, scale_group_len};
use crate::kernel::build::{add, bin, cast, i, load, mul, sub, var};
use crate::kernel::{BinOp, Buf, Expr, Program, Scalar, Stmt, Var};

fn set(v: Var, e: Expr) -> Stmt {
    Stmt::Set(v, e)
}

fn for_(v: Var, end: usize, body: Vec<Stmt>) -> Stmt {
    Stmt::for_loop(v, i(0), i(end as i64), body)
}

fn zero() -> Expr {
    Expr::F(0.0, Scalar::F32)
}

/// Statements computing `y[m, n] = Σ_k x[m, k] · w[n, k]` for f32 `x`
/// (`[m, k]`, row-major, in `x`), f32 `y` (`[m, n]`) and `w` = `(buf, ty)`
/// an `[n, k]` weight of any encoding `decode_element` reads (block,
/// affine, dense f16/bf16/f32).
///
/// Sums run as [`encoded_dot`] says; the result differs from a dot product
/// with the decoded weight only by rounding (the tests bound it). Errs
/// when `w`'s shape is not `[n, k]` or its type cannot be decoded.
pub fn encoded_matvec(
    prog: &mut Program,
    x: Buf,
    w: (Buf, &TensorType),
    y: Buf,
    m: usize,
    n: usize,
    k: usize,
) -> Result<Vec<Stmt>, String> {
    let wty = w.1;
    if wty.shape != [n, k] {
        return Err(format!("the weight is {wty}, not [{n}, {k}]"));
    }
    let [mi, ni] = [(); 2].map(|_| prog.var(Scalar::I64));
    let acc = prog.var(Scalar::F32);
    let x_at = |kk: Expr| load(x, add(mul(var(mi), i(k as i64)), kk), Scalar::F32);
    let mut row = vec![set(acc, zero())];
    row.extend(encoded_dot(prog, &x_at, w, var(ni), acc)?);
    row.push(Stmt::Store {
        buf: y,
        index: add(mul(var(mi), i(n as i64)), var(ni)),
        value: var(acc),
    });
    Ok(vec![for_(mi, m, vec![for_(ni, n, row)])])
}

/// Statements adding `Σ_k x(k) · w[row, k]` to the `F32` variable `acc`,
/// where `x(k)` is the f32 activation at `k` (an `I64` expression) and
/// `w` = `(buf, ty)` is a weight of any encoding `decode_element` reads,
/// `k` running over its innermost dimension.
///
/// A weight with scales is summed by scale group: each group's scale (and
/// offset) is read once and multiplies the group's integer dot product,
/// `scale · Σ x·q (+ offset · Σ x)`, sums in f32 in `k` order within a
/// group, then across groups. A dense f16/bf16/f32 weight decodes each
/// element (`acc += x · w`). Errs when `w`'s type cannot be decoded.
pub fn encoded_dot(
    prog: &mut Program,
    x_at: &dyn Fn(Expr) -> Expr,
    w: (Buf, &TensorType),
    row: Expr,
    acc: Var,
) -> Result<Vec<Stmt>, String> {
    let (wbuf, wty) = w;
    let k = wty.shape.last().copied().unwrap_or(1);
    let [g, j] = [(); 2].map(|_| prog.var(Scalar::I64));
    let [dot, sx, scale, offset] = [(); 4].map(|_| prog.var(Scalar::F32));
    let group_len = match wty.encoding {
        smelt_ir::Encoding::Dense => None,
        _ => Some(scale_group_len(wty)?),
    };
    Ok(match group_len {
        // Dense weights: one pass decoding each element.
        None => {
            let wv = decode_element(prog, wty, wbuf, row, var(j))?;
            vec![for_(
                j,
                k,
                vec![set(acc, add(var(acc), mul(x_at(var(j)), wv)))],
            )]
        }
        Some(len) => {
            let kk = add(mul(var(g), i(len as i64)), var(j));
            let s = block_scale_min(wty, wbuf, row.clone(), var(g))?;
            let q = block_quant(wty, wbuf, row, kk.clone())?;
            let mut inner = vec![set(
                dot,
                add(var(dot), mul(x_at(kk.clone()), cast(Scalar::F32, q))),
            )];
            let mut group = vec![set(scale, s.scale), set(dot, zero())];
            let mut total = mul(var(scale), var(dot));
            if let Some(o) = s.offset {
                inner.push(set(sx, add(var(sx), x_at(kk))));
                group.extend([set(offset, o), set(sx, zero())]);
                total = add(total, mul(var(offset), var(sx)));
            }
            // The last group of an affine block along k may be shorter.
            let end = if k.is_multiple_of(len) {
                i(len as i64)
            } else {
                bin(
                    BinOp::Min,
                    i(len as i64),
                    sub(i(k as i64), mul(var(g), i(len as i64))),
                )
            };
            group.push(Stmt::for_loop(j, i(0), end, inner));
            group.push(set(acc, add(var(acc), total)));
            vec![for_(g, k.div_ceil(len), group)]
        }
    })
}
