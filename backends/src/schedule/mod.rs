//! Scheduling: the fast forms of the hot kernels, built on the kernel IR's
//! vector forms, and program-wide clean-ups that follow them.
//!
//! The schedules follow the program's [`crate::kernel::VectorShape`]: the
//! target's `f32` lane count (4, 8 or 16) for vectors and a register tile
//! sized for its vector registers (see [`gemm`]).
//! Weights are packed at compile time in the order the micro-kernels read
//! them; the original constant is dropped when nothing else reads it
//! ([`drop_unused_consts`]).

pub mod gemm;
pub mod vectorize;

// The evaluator the schedule tests (and `lower/`'s) import from here.
#[cfg(test)]
pub(crate) use crate::eval;
#[cfg(test)]
mod threads;

use crate::kernel::{Buf, Expr, Program, Stmt};

/// Empties every constant that no statement reads (typically a weight the
/// schedule replaced by its packed copy), so the artifact does not carry it
/// twice. Constant numbers stay stable.
pub fn drop_unused_consts(p: &mut Program) {
    let mut used = vec![false; p.consts.len()];
    for s in &p.body {
        mark_stmt(s, &mut used);
    }
    for (c, u) in p.consts.iter_mut().zip(used) {
        if !u {
            *c = Default::default();
        }
    }
}

fn mark_buf(b: Buf, used: &mut [bool]) {
    if let Buf::Const(i) = b {
        used[i as usize] = true;
    }
}

fn mark_stmt(s: &Stmt, used: &mut [bool]) {
    s.walk(&mut |s| {
        match s {
            Stmt::Store { buf, .. } | Stmt::VStore { buf, .. } => mark_buf(*buf, used),
            Stmt::Copy(c) => {
                mark_buf(c.dst, used);
                mark_buf(c.src, used);
            }
            Stmt::Set(..)
            | Stmt::For { .. }
            | Stmt::Parallel { .. }
            | Stmt::If(..)
            | Stmt::Check { .. } => {}
        }
        s.for_each_expr(|e| mark_expr(e, used));
    });
}

fn mark_expr(e: &Expr, used: &mut [bool]) {
    if let Expr::Load { buf, .. } | Expr::VLoad { buf, .. } = e {
        mark_buf(*buf, used);
    }
    e.for_each_child(|c| mark_expr(c, used));
}
