//! Run-time checks: what a [`Stmt::Check`] checks, and how lowering makes
//! one.
//!
//! An index, count or position read from run-time data (a Gather index, a
//! token id, a KV-cache position) is checked against the range its op
//! accepts before it is used. Each check is listed once in
//! [`Program::checks`] with the node that makes it; the model's info table
//! carries the list (`smelt_check_info` in `runtime/include/smelt_model.h`),
//! so a failed run's fault record (the check's number and the bad value)
//! is enough for the runtime to print
//! `node 'embed' (Gather): index 40000 out of range [-30522, 30522)`.

use super::{Expr, Program, Stmt};

/// One run-time check: the node that makes it, what it checks and the
/// values it accepts, `lo <= value < hi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckInfo {
    /// The node's name.
    pub node: String,
    /// The node's op (`Gather`, `ScatterND`, …).
    pub op: String,
    /// What the value is (`index`, `position`, …), for messages.
    pub what: String,
    /// The least valid value.
    pub lo: i64,
    /// One past the greatest valid value.
    pub hi: i64,
}

impl Program {
    /// A check that `value` (an `I64` expression) lies in `lo..hi`, made by
    /// the node being lowered ([`Program::site`]); nothing when the program
    /// is [`Program::unchecked`]. Lowering keeps clamping the value after
    /// the check, so an unchecked program still never reads or writes
    /// outside a buffer.
    pub fn check(&mut self, value: Expr, what: &str, lo: i64, hi: i64) -> Vec<Stmt> {
        if self.unchecked {
            return Vec::new();
        }
        let (node, op) = self.site.clone();
        let info = CheckInfo {
            node,
            op,
            what: what.to_string(),
            lo,
            hi,
        };
        let check = match self.checks.iter().position(|c| *c == info) {
            Some(k) => k,
            None => {
                self.checks.push(info);
                self.checks.len() - 1
            }
        };
        vec![Stmt::Check {
            value,
            check: check as u32,
        }]
    }
}
