//! Lowering of the element-wise family: one loop nest over the output with
//! broadcast loads, the op's scalar formula in the body.
//!
//! Integer semantics follow the reference interpreter (wrapping arithmetic,
//! truncating division, C or Python remainders, shifts by out-of-range
//! amounts giving 0 or the sign fill). One deliberate difference: the
//! interpreter reports integer division (and `Mod`) by zero as an error,
//! which native code cannot do per element; native `Div` and `Mod` by zero
//! give 0 and never trap (neither does `INT_MIN / -1`, which wraps).

use smelt_ir::ops::elementwise::{Elementwise, VariadicFn};

use super::{NodeResult, Operand, broadcast_index, loop_nest};
use crate::kernel::build::{bin, cast, cmp, f, mul, select};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Stmt};
use crate::mathexp;

mod binary;
mod epilogue;
mod unary;

use binary::{binary, clip};
pub use epilogue::{Epi, epilogue_expr};
use unary::{unary_float, unary_int};

/// One scalar formula, or why the lowering refuses it.
type NodeResult1 = Result<Expr, String>;

/// Lowers an element-wise node.
pub fn lower(
    e: &Elementwise,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    lower_with(e, &Epi::default(), ins, outs, p)
}

/// [`lower`] with an epilogue (residual, activation) applied to each result
/// in the same loop before it is stored: a chain `act(e(…) + r)` as one
/// kernel, one pass over memory.
pub fn lower_with(
    e: &Elementwise,
    epi: &Epi,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    let out = &outs[0];
    let shape = out.shape.clone();
    let arg = |k: usize| ins.get(k).cloned().flatten();
    let args: Vec<Operand> = ins.iter().flatten().cloned().collect();
    // Build the formula over broadcast loads, inside a nest over the output.
    let mut err = None;
    let stmts = loop_nest(p, &shape, |p, idx| {
        let mut pre = Vec::new();
        // Each operand is loaded once into a variable, so formulas may use it
        // several times.
        let ld = |o: &Operand, p: &mut Program, pre: &mut Vec<Stmt>| {
            mathexp::bind(p, o.load(broadcast_index(&o.shape, idx)), pre)
        };
        let value: Result<Expr, String> = (|| {
            Ok(match e {
                Elementwise::Unary(u) => {
                    let x = &args[0];
                    let xv = ld(x, p, &mut pre);
                    if x.ty.is_float() {
                        unary_float(*u, xv, x.ty, p, &mut pre)?
                    } else {
                        unary_int(*u, xv, x.ty, p, &mut pre)?
                    }
                }
                Elementwise::Binary(b) => {
                    let (x, y) = (&args[0], &args[1]);
                    let (xv, yv) = (ld(x, p, &mut pre), ld(y, p, &mut pre));
                    binary(*b, (x, y), (xv, yv), out.ty, p, &mut pre)?
                }
                Elementwise::Variadic(v) => {
                    let op = match v {
                        VariadicFn::Min => BinOp::Min,
                        VariadicFn::Max => BinOp::Max,
                        VariadicFn::Sum | VariadicFn::Mean => BinOp::Add,
                    };
                    let mut acc = ld(&args[0], p, &mut pre);
                    for a in &args[1..] {
                        let av = ld(a, p, &mut pre);
                        acc = bin(op, acc, av);
                    }
                    if *v == VariadicFn::Mean {
                        acc = bin(BinOp::Div, acc, f(args.len() as f64, out.ty));
                    }
                    acc
                }
                Elementwise::Where => {
                    let c = ld(&args[0], p, &mut pre);
                    let (a, b) = (ld(&args[1], p, &mut pre), ld(&args[2], p, &mut pre));
                    select(c, a, b)
                }
                Elementwise::Clip { min, max } => {
                    let x = &args[0];
                    let v = ld(x, p, &mut pre);
                    let lo = match arg(1) {
                        Some(o) => Some(ld(&o, p, &mut pre)),
                        None => min.map(|m| f(m as f64, x.ty)),
                    };
                    let hi = match arg(2) {
                        Some(o) => Some(ld(&o, p, &mut pre)),
                        None => max.map(|m| f(m as f64, x.ty)),
                    };
                    clip(v, lo, hi, p, &mut pre)
                }
                Elementwise::PRelu => {
                    let (x, s) = (&args[0], &args[1]);
                    let zero = if x.ty.is_float() {
                        f(0.0, x.ty)
                    } else {
                        Expr::I(0, x.ty)
                    };
                    let (xv, sv) = (ld(x, p, &mut pre), ld(s, p, &mut pre));
                    select(cmp(CmpOp::Lt, xv.clone(), zero), mul(xv.clone(), sv), xv)
                }
                Elementwise::Cast { .. } | Elementwise::CastLike => {
                    cast(out.ty, ld(&args[0], p, &mut pre))
                }
            })
        })();
        let at = super::flat_index(&shape, idx);
        let value = value.and_then(|v| epi.apply(p, v, out.ty, at.clone(), &mut pre));
        match value {
            Ok(v) => {
                pre.push(Stmt::Store {
                    buf: out.buf,
                    index: at,
                    value: v,
                });
                pre
            }
            Err(e) => {
                err = Some(e);
                vec![]
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(stmts),
    }
}

#[cfg(test)]
mod tests;
