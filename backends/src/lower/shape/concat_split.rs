//! Lowering of Concat and Split: one strided copy per input or output.

use super::super::{NodeResult, Operand};
use super::{Node, axis_of, copy_strided, copy_view, split_at};
use crate::kernel::Program;

/// Lowers `Concat`.
pub(super) fn lower_concat(a: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { ins, out, .. } = node;
    let ax = axis_of(a, out.shape.len())?;
    let (outer, _, inner) = split_at(&out.shape, ax);
    let row = out.shape[ax] * inner;
    let mut stmts = Vec::new();
    let mut offset = 0usize;
    for src in ins.iter().flatten() {
        let chunk = src.shape[ax] * inner;
        stmts.extend(copy_strided(
            p,
            src,
            0,
            out,
            (offset * inner) as i64,
            &[(outer, chunk as i64, row as i64), (chunk, 1, 1)],
        ));
        offset += src.shape[ax];
    }
    Ok(stmts)
}

/// Lowers `Split`.
pub(super) fn lower_split(a: i64, x: Operand, outs: &[Operand], p: &mut Program) -> NodeResult {
    let rank = x.shape.len();
    let ax = axis_of(a, rank)?;
    let (outer, d, inner) = split_at(&x.shape, ax);
    let mut stmts = Vec::new();
    let mut start = 0usize;
    for o in outs {
        let len = o.shape[ax];
        stmts.extend(copy_view(
            p,
            &x,
            (start * inner) as i64,
            &[(outer, (d * inner) as i64), (len * inner, 1)],
            o,
            0,
        ));
        start += len;
    }
    Ok(stmts)
}
