//! Lowering of Expand and Tile: strided views with zero strides.

use smelt_ir::shape::strides;

use super::super::NodeResult;
use super::{Node, copy_view};
use crate::kernel::Program;

/// Lowers `Expand`.
pub(super) fn lower_expand(node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, out, .. } = node;
    let rank = x.shape.len();
    let st = strides(&x.shape);
    let lead = out.shape.len() - rank;
    let dims: Vec<(usize, i64)> = out
        .shape
        .iter()
        .enumerate()
        .map(|(k, &d)| match k.checked_sub(lead) {
            Some(j) if x.shape[j] == d => (d, st[j] as i64),
            _ => (d, 0),
        })
        .collect();
    Ok(copy_view(p, &x, 0, &dims, out, 0))
}

/// Lowers `Tile`.
pub(super) fn lower_tile(node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, out, .. } = node;
    let st = strides(&x.shape);
    let dims: Vec<(usize, i64)> = out
        .shape
        .iter()
        .zip(&x.shape)
        .zip(&st)
        .flat_map(|((&o, &d), &s)| [(o.checked_div(d).unwrap_or(0), 0), (d, s as i64)])
        .collect();
    Ok(copy_view(p, &x, 0, &dims, out, 0))
}
