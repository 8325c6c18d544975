//! The loop machinery every sliding-window kernel shares: per-axis
//! variables, the output-position loops that compute each position's range
//! of valid taps once, and the tap loops that then run without a
//! condition.

use smelt_ir::window::Geom;

use crate::kernel::build::{add, bin, i, mul, sub, var};
use crate::kernel::{BinOp, Expr, Program, Scalar, Stmt, Var};

/// Row-major strides of `shape`.
pub(super) fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

pub(super) fn imax(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Max, a, b)
}

pub(super) fn imin(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Min, a, b)
}

/// `ceil(a / d)` for a non-negative `a` and a constant `d ≥ 1`.
pub(super) fn ceil_div(a: Expr, d: usize) -> Expr {
    if d == 1 {
        a
    } else {
        bin(BinOp::Div, add(a, i(d as i64 - 1)), i(d as i64))
    }
}

/// `k_lo`, `k_hi` such that `start + k·dil` lies in `[0, limit)` exactly for
/// the taps `k_lo ≤ k < k_hi` (clamped to `[0, kernel]`; empty when
/// `k_hi ≤ k_lo`).
pub(super) fn tap_range(start: &Expr, limit: i64, dil: usize, kernel: usize) -> (Expr, Expr) {
    let k = i(kernel as i64);
    let lo = imin(
        ceil_div(imax(sub(i(0), start.clone()), i(0)), dil),
        k.clone(),
    );
    let hi = imin(ceil_div(imax(sub(i(limit), start.clone()), i(0)), dil), k);
    (lo, hi)
}

/// The per-axis variables of a sliding window.
pub(super) struct Axis {
    /// Output position (for `ConvTranspose`: input position).
    pub(super) o: Var,
    /// First valid tap.
    pub(super) lo: Var,
    /// One past the last valid tap.
    pub(super) hi: Var,
    /// Kernel tap.
    pub(super) k: Var,
    /// Flat offset of the window's origin along axes `0..=d` (may be negative).
    pub(super) off: Var,
}

pub(super) fn axes(p: &mut Program, nd: usize) -> Vec<Axis> {
    (0..nd)
        .map(|_| Axis {
            o: p.var(Scalar::I64),
            lo: p.var(Scalar::I64),
            hi: p.var(Scalar::I64),
            k: p.var(Scalar::I64),
            off: p.var(Scalar::I64),
        })
        .collect()
}

/// Wraps `inner` in loops over the window positions `positions[d]`. At each
/// level it sets the valid tap range (taps landing in `[0, limit[d])`) and
/// the origin's flat offset `base + Σ (o·stride − pad)·flat_strides[d]`.
pub(super) fn position_loops(
    g: &Geom,
    ax: &[Axis],
    positions: &[usize],
    limit: &[usize],
    flat_strides: &[usize],
    base: Expr,
    inner: Vec<Stmt>,
) -> Vec<Stmt> {
    let nd = ax.len();
    let mut body = inner;
    for d in (0..nd).rev() {
        let start = sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d]));
        let (lo, hi) = tap_range(&start, limit[d] as i64, g.dilations[d], g.kernel[d]);
        let prev = if d == 0 {
            base.clone()
        } else {
            var(ax[d - 1].off)
        };
        let mut level = vec![
            Stmt::Set(ax[d].lo, lo),
            Stmt::Set(ax[d].hi, hi),
            Stmt::Set(ax[d].off, add(prev, mul(start, i(flat_strides[d] as i64)))),
        ];
        level.extend(body);
        body = vec![Stmt::for_loop(ax[d].o, i(0), i(positions[d] as i64), level)];
    }
    body
}

/// Wraps `inner` in the tap loops `lo[d]..hi[d]`.
pub(super) fn tap_loops(ax: &[Axis], inner: Vec<Stmt>) -> Vec<Stmt> {
    let mut body = inner;
    for a in ax.iter().rev() {
        body = vec![Stmt::for_loop(a.k, var(a.lo), var(a.hi), body)];
    }
    body
}

/// `Σ k_d · scale_d` over the tap variables.
pub(super) fn tap_offset(ax: &[Axis], scale: impl Fn(usize) -> usize) -> Expr {
    ax.iter()
        .enumerate()
        .map(|(d, a)| {
            let s = scale(d);
            if s == 1 {
                var(a.k)
            } else {
                mul(var(a.k), i(s as i64))
            }
        })
        .reduce(add)
        .unwrap_or_else(|| i(0))
}

/// `N` fresh `i64` variables, numbered in order.
pub(super) fn i64_vars<const N: usize>(p: &mut Program) -> [Var; N] {
    std::array::from_fn(|_| p.var(Scalar::I64))
}

/// Wraps `body` in `for v in 0..n` loops, outermost first.
pub(super) fn nest(loops: &[(Var, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut body = body;
    for &(v, n) in loops.iter().rev() {
        body = vec![Stmt::for_loop(v, i(0), i(n as i64), body)];
    }
    body
}
