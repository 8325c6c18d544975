//! Lowering of Transpose and the depth/space shuffles: strided views.

use smelt_ir::shape::strides;

use super::super::NodeResult;
use super::{Node, axis_of, copy_view};
use crate::kernel::Program;

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
    let st = strides(&x.shape);
    let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (x.shape[a], st[a] as i64)).collect();
    Ok(copy_view(p, &x, 0, &dims, out, 0))
}

/// Lowers `DepthToSpace`.
pub(super) fn lower_depth_to_space(
    b: usize,
    crd: bool,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, out, .. } = node;
    let [n, c, h, w] = x.shape[..] else {
        return Err("DepthToSpace needs a 4-D input".into());
    };
    let c2 = c / (b * b);
    let (six, perm): ([usize; 6], [usize; 6]) = if crd {
        ([n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3])
    } else {
        ([n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2])
    };
    let st = strides(&six);
    let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (six[a], st[a] as i64)).collect();
    Ok(copy_view(p, &x, 0, &dims, out, 0))
}

/// Lowers `SpaceToDepth`.
pub(super) fn lower_space_to_depth(
    b: usize,
    crd: bool,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, out, .. } = node;
    let [n, c, h, w] = x.shape[..] else {
        return Err("SpaceToDepth needs a 4-D input".into());
    };
    let six = [n, c, h / b, b, w / b, b];
    let perm: [usize; 6] = if crd {
        [0, 1, 3, 5, 2, 4]
    } else {
        [0, 3, 5, 1, 2, 4]
    };
    let st = strides(&six);
    let dims: Vec<(usize, i64)> = perm.iter().map(|&a| (six[a], st[a] as i64)).collect();
    Ok(copy_view(p, &x, 0, &dims, out, 0))
}
