//! The functions a program's body becomes: its top-level statements cut
//! into parts of bounded size, each generated as one function, which the
//! entry point calls in order.
//!
//! Both code generators work in time and memory that grow faster than
//! linearly with the size of one function (register allocation, dominator
//! queries, LLVM's loop and alias analyses): one function for a 100,000-node
//! model took tens of gigabytes. Parts of at most [`PART_BUDGET`] kernel-IR
//! nodes keep every function small, so code generation is linear in the
//! model. A part never separates the statements that mention one variable
//! (a value set by one top-level statement and read by a later one), so every
//! variable lives in one function; a single statement larger than the
//! budget is a part of its own.
//!
//! Parts are named after the statements they hold, `smelt_kernels_F_L`
//! (top-level statements `F` to `L` of the kernel program, as
//! `--print-after` kernel dumps count them), which a profile then shows.

use std::collections::HashSet;

use crate::kernel::{Buf, Expr, Program, Stmt, Var};

/// Kernel-IR nodes (statements and expressions) of one part at most, unless
/// one top-level statement alone has more.
pub const PART_BUDGET: usize = 1024;

/// One part of the body: consecutive top-level statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Part<'a> {
    /// The index of its first top-level statement.
    pub first: usize,
    /// Its statements.
    pub body: &'a [Stmt],
    /// Every variable it mentions, in order of first mention.
    pub vars: Vec<Var>,
    /// Every buffer it reads or writes, in order of first mention.
    pub bufs: Vec<Buf>,
    /// How many [`Stmt::Parallel`] loops the parts before it hold (the
    /// outlined tasks are numbered in program order).
    pub parallel_before: usize,
    /// How many [`Stmt::Parallel`] loops it holds (at its top level, where
    /// `legalize_parallel` leaves them).
    pub parallel: usize,
}

impl Part<'_> {
    /// The function's symbol: `smelt_kernels_F_L`.
    pub fn name(&self) -> String {
        let last = self.first + self.body.len().saturating_sub(1);
        format!("smelt_kernels_{}_{last}", self.first)
    }
}

/// The parts of `p`'s body with at most `budget` nodes each (see the module
/// documentation); one part, empty, for an empty body.
pub fn parts(p: &Program, budget: usize) -> Vec<Part<'_>> {
    let body = &p.body;
    // The last top-level statement that mentions each variable, and the
    // size of each statement.
    let mut last_use: Vec<usize> = vec![0; p.vars.len()];
    let mut sizes = Vec::with_capacity(body.len());
    for (i, s) in body.iter().enumerate() {
        let mut n = 0;
        visit(s, &mut |v| last_use[v.0 as usize] = i, &mut |_| {}, &mut n);
        sizes.push(n);
    }
    let mut parts = Vec::new();
    let (mut start, mut size, mut live_until, mut parallel_before) = (0, 0, 0, 0);
    for (i, s) in body.iter().enumerate() {
        size += sizes[i];
        visit(
            s,
            &mut |v| live_until = live_until.max(last_use[v.0 as usize]),
            &mut |_| {},
            &mut 0,
        );
        let next_too_big = sizes.get(i + 1).is_some_and(|&n| size + n > budget);
        let at_end = i + 1 == body.len();
        if at_end || (next_too_big && live_until <= i) {
            let part = part(&body[start..=i], start, parallel_before);
            parallel_before += part.parallel;
            parts.push(part);
            (start, size) = (i + 1, 0);
        }
    }
    if parts.is_empty() {
        parts.push(part(&[], 0, 0));
    }
    parts
}

/// The part holding `body`, whose first statement is top-level statement
/// `first`.
fn part(body: &[Stmt], first: usize, parallel_before: usize) -> Part<'_> {
    let (vars, bufs) = mentions(body);
    Part {
        first,
        body,
        vars,
        bufs,
        parallel_before,
        parallel: body
            .iter()
            .filter(|s| matches!(s, Stmt::Parallel { .. }))
            .count(),
    }
}

/// Every variable and every buffer `body` mentions, each in order of first
/// mention.
pub fn mentions(body: &[Stmt]) -> (Vec<Var>, Vec<Buf>) {
    let (mut vars, mut bufs) = (Vec::new(), Vec::new());
    let (mut seen_v, mut seen_b) = (HashSet::new(), HashSet::new());
    for s in body {
        visit(
            s,
            &mut |v| {
                if seen_v.insert(v) {
                    vars.push(v);
                }
            },
            &mut |b| {
                if seen_b.insert(b) {
                    bufs.push(b);
                }
            },
            &mut 0,
        );
    }
    (vars, bufs)
}

/// Calls `var` on every variable and `buf` on every buffer `s` mentions
/// (nested statements included) and adds its node count to `size`.
fn visit(s: &Stmt, var: &mut impl FnMut(Var), buf: &mut impl FnMut(Buf), size: &mut usize) {
    s.walk(&mut |st| {
        *size += 1;
        match st {
            Stmt::Set(v, _) | Stmt::For { var: v, .. } | Stmt::Parallel { var: v, .. } => var(*v),
            Stmt::Store { buf: b, .. } | Stmt::VStore { buf: b, .. } => buf(*b),
            Stmt::Copy(c) => {
                buf(c.dst);
                buf(c.src);
            }
            Stmt::If(..) | Stmt::Check { .. } => {}
        }
        st.for_each_expr(|e| visit_expr(e, var, buf, size));
    });
}

fn visit_expr(e: &Expr, var: &mut impl FnMut(Var), buf: &mut impl FnMut(Buf), size: &mut usize) {
    *size += 1;
    match e {
        Expr::Var(v) => var(*v),
        Expr::Load { buf: b, .. } | Expr::VLoad { buf: b, .. } => buf(*b),
        _ => {}
    }
    e.for_each_child(|c| visit_expr(c, var, buf, size));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Scalar;
    use crate::kernel::build::{f, i, load, var};

    /// A program of `n` independent copies `out0[k] = in0[k]` (a loop
    /// each), and, when `linked`, a variable set by statement 1 and read by
    /// statement 3 instead of their loops.
    fn program(n: usize, linked: bool) -> Program {
        let mut p = Program::default();
        for _ in 0..n {
            let k = p.var(Scalar::I64);
            let body = vec![Stmt::Store {
                buf: Buf::Output(0),
                index: var(k),
                value: load(Buf::Input(0), var(k), Scalar::F32),
            }];
            p.body.push(Stmt::for_loop(k, i(0), i(4), body));
        }
        if !linked {
            return p;
        }
        let x = p.var(Scalar::F32);
        p.body[1] = Stmt::Set(x, f(1.0, Scalar::F32));
        p.body[3] = Stmt::Store {
            buf: Buf::Arena(64),
            index: i(0),
            value: var(x),
        };
        p
    }

    #[test]
    fn parts_cover_the_body_in_order_within_the_budget() {
        let p = program(40, false);
        let per = {
            let mut n = 0;
            visit(&p.body[0], &mut |_| {}, &mut |_| {}, &mut n);
            n
        };
        let parts = parts(&p, 3 * per);
        let mut next = 0;
        for part in &parts {
            assert_eq!(part.first, next);
            next += part.body.len();
            assert!(part.body.len() <= 3, "{}", part.name());
        }
        assert_eq!(next, p.body.len());
        assert!(parts.len() >= 40 / 3);
        assert_eq!(parts[0].name(), "smelt_kernels_0_2");
    }

    #[test]
    fn a_variable_is_never_split_between_parts() {
        let p = program(10, true);
        let parts = parts(&p, 1);
        // Statements 1 to 3 share a variable: one part; the others alone.
        let lens: Vec<usize> = parts.iter().map(|p| p.body.len()).collect();
        assert_eq!(lens, [1, 3, 1, 1, 1, 1, 1, 1]);
        assert_eq!(parts[1].name(), "smelt_kernels_1_3");
        assert_eq!(
            parts[1].bufs,
            [Buf::Output(0), Buf::Input(0), Buf::Arena(64)]
        );
    }

    #[test]
    fn an_empty_body_is_one_empty_part() {
        let p = Program::default();
        let parts = parts(&p, PART_BUDGET);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].body.is_empty());
    }
}
