//! Lowering of Transpose and the depth/space shuffles: strided views.

use smelt_ir::shape::strides;

use super::super::{NodeResult, Operand};
use super::{Node, axis_of, copy_view};
use crate::kernel::{Program, Stmt};

/// Lowers `Transpose`.
pub(super) fn lower_transpose(perm: Option<&[i64]>, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, out, .. } = node;
    let rank = x.shape.len();
    let perm: Vec<usize> = match perm {
        Some(pm) => pm
            .iter()
            .map(|&a| axis_of(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).rev().collect(),
    };
    Ok(permuted_copy(p, &x, &x.shape, &perm, out))
}

/// Lowers `DepthToSpace` (`to_space`) or `SpaceToDepth` with block size
/// `b`: each is the 4-D input viewed as 6-D and permuted, in the
/// column-row-depth (`crd`) or depth-column-row order.
pub(super) fn lower_depth_space(
    b: usize,
    crd: bool,
    to_space: bool,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, out, .. } = node;
    let [n, c, h, w] = x.shape[..] else {
        let op = if to_space {
            "DepthToSpace"
        } else {
            "SpaceToDepth"
        };
        return Err(format!("{op} needs a 4-D input"));
    };
    let (six, perm) = match (to_space, crd) {
        (true, true) => ([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]),
        (true, false) => ([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2]),
        (false, true) => ([n, c, h / b, b, w / b, b], [0, 1, 3, 5, 2, 4]),
        (false, false) => ([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]),
    };
    Ok(permuted_copy(p, &x, &six, &perm, out))
}

/// Copies `x`, read as a row-major tensor of `shape`, into `out` with its
/// axes in the order `perm`.
fn permuted_copy(
    p: &mut Program,
    x: &Operand,
    shape: &[usize],
    perm: &[usize],
    out: &Operand,
) -> Vec<Stmt> {
    let st = strides(shape);
    let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (shape[a], st[a] as i64)).collect();
    copy_view(p, x, 0, &dims, out, 0)
}
