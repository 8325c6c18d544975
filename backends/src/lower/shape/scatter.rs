//! Lowering of ScatterND and ScatterElements: a copy of the data, then the updates.
//!
//! The copy is left out when the memory plan put the output in the data's
//! own storage (`plan.rs`: the data dies at the scatter, or it is a state
//! input whose paired output this is — a KV cache appended in place); the
//! kernel then writes only the updated elements. Each update reads the
//! output only at the element it writes, so the result is the same.
//!
//! Indices are run-time values: each one is checked against its axis (a
//! run with an index outside `[-d, d)` fails, naming the node and the index,
//! as the interpreter refuses it), then wrapped like a valid negative index
//! and clamped into the axis (`gather::read_index`), so no index writes
//! outside the output even with the checks dropped (`--unchecked`: such an
//! update lands at the nearest end of the axis, a position past a KV cache
//! in its last row).

use super::gather::{over_elements, over_tuples, read_index};
use smelt_ir::ops::layout::Reduction;
use smelt_ir::shape::strides;

use super::super::{NodeResult, operand};
use super::{Node, add0, axis_of, copy_all, copy_run, mulk};
use crate::kernel::build::{bin, i, var};
use crate::kernel::{BinOp, Expr, Program, Scalar, Stmt};

/// Lowers `ScatterND`.
pub(super) fn lower_scatter_nd(
    reduction: Reduction,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let (idx, u) = (operand(ins, 1, "indices")?, operand(ins, 2, "updates")?);
    let mut s = copy_all(&x, out);
    let k = *idx.shape.last().ok_or("scalar indices")?;
    if u.numel() == 0 {
        return Ok(s);
    }
    if x.shape[..k].contains(&0) {
        return Err("ScatterND into an empty axis has no valid index".into());
    }
    let len: usize = x.shape[k..].iter().product();
    let (out_c, r) = (out.clone(), reduction);
    s.extend(over_tuples(p, &x.shape, &idx, 0, k, |p, off, t| {
        if r == Reduction::None {
            return copy_run(p, &u, mulk(t, len as i64), &out_c, off, len);
        }
        let e = p.var(Scalar::I64);
        let at = add0(off, var(e));
        vec![Stmt::for_loop(
            e,
            i(0),
            i(len as i64),
            vec![Stmt::Store {
                buf: out_c.buf,
                index: at.clone(),
                value: combine(
                    r,
                    out_c.load(at),
                    u.load(add0(mulk(t, len as i64), var(e))),
                    out_c.ty,
                ),
            }],
        )]
    }));
    Ok(s)
}

/// Lowers `ScatterElements`.
pub(super) fn lower_scatter_elements(
    a: i64,
    reduction: Reduction,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let (idx, u) = (operand(ins, 1, "indices")?, operand(ins, 2, "updates")?);
    let ax = axis_of(a, rank)?;
    let mut s = copy_all(&x, out);
    if u.numel() == 0 {
        return Ok(s);
    }
    let (d, stride) = (x.shape[ax], strides(&x.shape)[ax]);
    if d == 0 {
        return Err("ScatterElements into an empty axis has no valid index".into());
    }
    let (out_c, r) = (out.clone(), reduction);
    s.extend(over_elements(p, &x.shape, &idx.shape, ax, |p, base, at| {
        let (mut s, k) = read_index(p, &idx, at.clone(), d);
        let dst = add0(base, mulk(k, stride as i64));
        s.push(Stmt::Store {
            buf: out_c.buf,
            index: dst.clone(),
            value: combine(r, out_c.load(dst), u.load(at), out_c.ty),
        });
        s
    }));
    Ok(s)
}

/// The element combination of the Scatter reductions.
pub(super) fn combine(r: Reduction, a: Expr, u: Expr, ty: Scalar) -> Expr {
    match (r, ty) {
        (Reduction::None, _) => u,
        (Reduction::Add | Reduction::Max, Scalar::Bool) => bin(BinOp::Or, a, u),
        (Reduction::Mul | Reduction::Min, Scalar::Bool) => bin(BinOp::And, a, u),
        (Reduction::Add, _) => bin(BinOp::Add, a, u),
        (Reduction::Mul, _) => bin(BinOp::Mul, a, u),
        (Reduction::Max, _) => bin(BinOp::Max, a, u),
        (Reduction::Min, _) => bin(BinOp::Min, a, u),
    }
}
