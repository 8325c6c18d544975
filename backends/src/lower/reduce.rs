//! Lowering of the reduce family.

use smelt_ir::ops::reduce::Reduce;

use super::{NodeResult, Operand};
use crate::kernel::Program;

/// Lowers one node of the reduce family.
pub fn lower(
    op: &Reduce,
    _ins: &[Option<Operand>],
    _outs: &[Operand],
    _p: &mut Program,
) -> NodeResult {
    Err(format!("no native kernel for {op:?} yet"))
}
