//! Lowering of the normalization family (the softmax family so far).

use smelt_ir::ops::norm::{Norm, SoftmaxFn};

use super::{NodeResult, Operand, loop_nest};
use crate::kernel::build::{add, bin, f, i, mul, un, var};
use crate::kernel::{BinOp, Expr, Program, Stmt, UnOp};

/// Lowers the softmax family (other normalizations come with the CNN kernels).
pub fn lower(nm: &Norm, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let Norm::Softmax {
        f: func,
        axis,
        flatten,
    } = nm
    else {
        return Err("no native kernel for this op yet".into());
    };
    let x = ins[0].clone().ok_or("no input")?;
    let out = &outs[0];
    if !x.ty.is_float() || *func == SoftmaxFn::Hardmax {
        return Err("no native kernel for this op yet".into());
    }
    let rank = x.shape.len() as i64;
    let ax = if *axis < 0 { axis + rank } else { *axis } as usize;
    // View as (outer, n, inner): the function runs over n for each (outer, inner).
    let (outer, n, inner): (usize, usize, usize) = if *flatten {
        (
            x.shape[..ax].iter().product(),
            x.shape[ax..].iter().product(),
            1,
        )
    } else {
        (
            x.shape[..ax].iter().product(),
            x.shape[ax],
            x.shape[ax + 1..].iter().product(),
        )
    };
    let ty = x.ty;
    let (mx, sum, j) = (p.var(ty), p.var(ty), p.var(crate::kernel::Scalar::I64));
    let is_log = *func == SoftmaxFn::LogSoftmax;
    let x_c = x.clone();
    let out_c = out.clone();
    Ok(loop_nest(p, &[outer, inner], |_, idx| {
        let at = |jj: Expr| {
            add(
                add(
                    mul(idx[0].clone(), i((n * inner) as i64)),
                    mul(jj, i(inner as i64)),
                ),
                idx[1].clone(),
            )
        };
        let xj = x_c.load(at(var(j)));
        let shifted = bin(BinOp::Sub, xj.clone(), var(mx));
        let final_value = if is_log {
            bin(BinOp::Sub, shifted.clone(), un(UnOp::Log, var(sum)))
        } else {
            bin(BinOp::Div, un(UnOp::Exp, shifted.clone()), var(sum))
        };
        vec![
            Stmt::Set(mx, f(f64::NEG_INFINITY, ty)),
            Stmt::For {
                var: j,
                start: i(0),
                end: i(n as i64),
                body: vec![Stmt::Set(mx, bin(BinOp::Max, var(mx), xj))],
            },
            Stmt::Set(sum, f(0.0, ty)),
            Stmt::For {
                var: j,
                start: i(0),
                end: i(n as i64),
                body: vec![Stmt::Set(sum, add(var(sum), un(UnOp::Exp, shifted)))],
            },
            Stmt::For {
                var: j,
                start: i(0),
                end: i(n as i64),
                body: vec![Stmt::Store {
                    buf: out_c.buf,
                    index: at(var(j)),
                    value: final_value,
                }],
            },
        ]
    }))
}
