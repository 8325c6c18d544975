//! Lowering of Pad: one index map per axis, holes filled with the pad value.

use smelt_ir::ops::layout::{PadAttrs, PadMode, pad_amounts, pad_axis_map};

use super::super::{NodeResult, input, operand};
use super::{Node, const_ints, lit, remap};
use crate::kernel::Program;
use crate::kernel::build::i;

/// Lowers `Pad`.
pub(super) fn lower_pad(
    mode: PadMode,
    attrs: Option<&PadAttrs>,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let (pads, axes) = match attrs {
        Some(a) => (a.pads.clone(), None),
        None => (
            const_ints(&operand(ins, 1, "pads")?, p)?,
            input(ins, 3).map(|o| const_ints(&o, p)).transpose()?,
        ),
    };
    let amounts = pad_amounts(rank, &pads, axes.as_deref()).map_err(|e| e.to_string())?;
    let maps: Vec<Vec<Option<usize>>> = amounts
        .iter()
        .zip(&x.shape)
        .map(|(&(b, e), &d)| pad_axis_map(d, b, e, mode))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let fill_value = match (input(ins, 2), attrs) {
        (Some(c), _) if c.numel() == 1 => c.load(i(0)),
        (Some(_), _) => lit(0.0, out.ty),
        (None, Some(a)) => lit(a.value as f64, out.ty),
        (None, None) => lit(0.0, out.ty),
    };
    Ok(remap(p, &x, out, &maps, fill_value))
}
