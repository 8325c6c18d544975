//! Lowering of the conv family.

use smelt_ir::ops::conv::ConvOp;

use super::{NodeResult, Operand};
use crate::kernel::Program;

/// Lowers one node of the conv family.
pub fn lower(
    op: &ConvOp,
    _ins: &[Option<Operand>],
    _outs: &[Operand],
    _p: &mut Program,
) -> NodeResult {
    Err(format!("no native kernel for {op:?} yet"))
}
