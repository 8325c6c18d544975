//! Lowering of Pad: one index map per axis, holes filled with the pad value.

use smelt_ir::ops::layout::{PadAttrs, PadMode};

use super::super::{NodeResult, input, operand};
use super::{Node, axis_of, const_ints, lit, remap};
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
    let amounts: Vec<(i64, i64)> = {
        let (pads, axes) = match attrs {
            Some(a) => (a.pads.clone(), None),
            None => (
                const_ints(&operand(ins, 1, "pads")?, p)?,
                input(ins, 3).map(|o| const_ints(&o, p)).transpose()?,
            ),
        };
        let axes: Vec<usize> = match axes {
            Some(a) => a
                .iter()
                .map(|&a| axis_of(a, rank))
                .collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err("pads do not match the axes".into());
        }
        let mut v = vec![(0, 0); rank];
        for (k, &ax) in axes.iter().enumerate() {
            v[ax] = (pads[k], pads[axes.len() + k]);
        }
        v
    };
    let maps: Vec<Vec<Option<usize>>> = amounts
        .iter()
        .zip(&x.shape)
        .map(|(&(b, e), &d)| pad_axis_map(d, b, e, mode))
        .collect();
    let fill_value = match (input(ins, 2), attrs) {
        (Some(c), _) if c.numel() == 1 => c.load(i(0)),
        (Some(_), _) => lit(0.0, out.ty),
        (None, Some(a)) => lit(a.value as f64, out.ty),
        (None, None) => lit(0.0, out.ty),
    };
    Ok(remap(p, &x, out, &maps, fill_value))
}

/// Pad's map of one axis: the input index of each output position (`None`
/// = filled), after negative pads crop.
pub(super) fn pad_axis_map(
    dim: usize,
    before: i64,
    after: i64,
    mode: PadMode,
) -> Vec<Option<usize>> {
    let d = dim as i64;
    let lo = (-before).max(0);
    let len = d - (-after).max(0) - lo;
    let out_len = (d + before + after).max(0);
    let pb = before.max(0);
    (0..out_len)
        .map(|o| {
            let j = o - pb;
            let j = if (0..len).contains(&j) {
                Some(j)
            } else if len <= 0 {
                None
            } else {
                match mode {
                    PadMode::Constant => None,
                    PadMode::Edge => Some(j.clamp(0, len - 1)),
                    PadMode::Wrap => Some(j.rem_euclid(len)),
                    PadMode::Reflect => {
                        if len == 1 {
                            Some(0)
                        } else {
                            let period = 2 * (len - 1);
                            let r = j.rem_euclid(period);
                            Some(if r >= len { period - r } else { r })
                        }
                    }
                }
            };
            j.map(|j| (j + lo) as usize)
        })
        .collect()
}
