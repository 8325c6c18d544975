//! Lowering of Slice: one strided view, its plan shared with the interpreter.

use smelt_ir::ops::layout::SliceAttrs;
use smelt_ir::shape::strides;

use super::super::{NodeResult, input};
use super::{Node, const_ints, copy_view};
use crate::kernel::Program;

/// Lowers `Slice`.
pub(super) fn lower_slice(
    attrs: Option<&SliceAttrs>,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let plan = match attrs {
        Some(a) => slice_plan(&x.shape, &a.starts, &a.ends, a.axes.as_deref(), None)?,
        None => {
            let c = |k: usize| -> Result<Option<Vec<i64>>, String> {
                input(ins, k).map(|o| const_ints(&o, p)).transpose()
            };
            let starts = c(1)?.ok_or("no starts")?;
            let ends = c(2)?.ok_or("no ends")?;
            slice_plan(&x.shape, &starts, &ends, c(3)?.as_deref(), c(4)?.as_deref())?
        }
    };
    let st = strides(&x.shape);
    let offset: i64 = plan
        .iter()
        .zip(&st)
        .map(|(a, &s)| a.start as i64 * s as i64)
        .sum();
    let dims: Vec<(usize, i64)> = plan
        .iter()
        .zip(&st)
        .map(|(a, &s)| (a.count, a.step as i64 * s as i64))
        .collect();
    Ok(copy_view(p, &x, offset, &dims, out, 0))
}

/// The interpreter's resolution of `Slice` parameters (one definition of the
/// spec's clamping rules for both).
pub(super) fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<smelt_ir::ops::layout::SliceAxis>, String> {
    smelt_ir::ops::layout::slice_plan(shape, starts, ends, axes, steps).map_err(|e| e.to_string())
}
