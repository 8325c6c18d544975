//! The pools: `MaxPool` (with its indices), `AveragePool`, `LpPool`, the
//! global pools and `MaxUnpool`.

use smelt_ir::ops::conv::PoolFn;
use smelt_ir::window::Geom;

use super::super::{Operand, flat_index};
use super::window::*;
use crate::kernel::build::{add, bin, cast, cmp, f, i, mul, select, sub, un, var};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp, Var};

/// The smallest value of `ty` (`-inf` for floats): the max-pool of an empty window.
pub(super) fn lowest(ty: Scalar) -> Expr {
    match ty {
        Scalar::F32 | Scalar::F64 | Scalar::F16 | Scalar::BF16 => f(f64::NEG_INFINITY, ty),
        Scalar::I8 => Expr::I(i8::MIN as i64, ty),
        Scalar::I16 => Expr::I(i16::MIN as i64, ty),
        Scalar::I32 => Expr::I(i32::MIN as i64, ty),
        Scalar::I64 => Expr::I(i64::MIN, ty),
        Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 | Scalar::Bool => Expr::I(0, ty),
    }
}

/// The loops over `N × C` planes and the window positions of a pool; `at`
/// gets the flat input offset of the window origin's plane and returns the
/// statements for one output position (whose flat index it also gets).
pub(super) fn pool_loops(
    p: &mut Program,
    g: &Geom,
    x: &Operand,
    at: impl FnOnce(&mut Program, &[Axis], Var, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let nd = g.input.len();
    let planes = x.shape[0] * x.shape[1];
    let in_sz: usize = g.input.iter().product();
    let out_sz: usize = g.out.iter().product();
    let in_strides = strides_of(&g.input);
    let ax = axes(p, nd);
    let pl = p.var(Scalar::I64);
    let o_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let y_idx = add(mul(var(pl), i(out_sz as i64)), flat_index(&g.out, &o_idx));
    let inner = at(p, &ax, pl, y_idx);
    let positions = position_loops(
        g,
        &ax,
        &g.out,
        &g.input,
        &in_strides,
        mul(var(pl), i(in_sz as i64)),
        inner,
    );
    nest(&[(pl, planes)], positions)
}

/// `MaxPool`, with the optional `Indices` output (flat indices into X, the
/// in-plane part column-major when `column_major`). NaNs never win a
/// comparison, so they are skipped, as in the interpreter.
pub(super) fn max_pool(
    p: &mut Program,
    g: &Geom,
    x: &Operand,
    y: &Operand,
    indices: Option<&Operand>,
    column_major: bool,
) -> Vec<Stmt> {
    let nd = g.input.len();
    let in_sz: usize = g.input.iter().product();
    let in_strides = strides_of(&g.input);
    // Column-major strides within a plane.
    let mut col_strides = vec![1usize; nd];
    for d in 1..nd {
        col_strides[d] = col_strides[d - 1] * g.input[d - 1];
    }
    let ty = x.ty;
    let (best, bi, v) = (p.var(ty), p.var(Scalar::I64), p.var(ty));
    let (y, indices) = (y.clone(), indices.cloned());
    pool_loops(p, g, x, |_, ax, pl, y_idx| {
        let x_idx = add(
            var(ax[nd - 1].off),
            tap_offset(ax, |d| g.dilations[d] * in_strides[d]),
        );
        // Floats start from NaN ("nothing yet"), so that a window of NaNs
        // only gives NaN, and a value wins when it is not NaN and not below
        // the best (`!(v <= best)` also holds while best is NaN). An empty
        // window gives the lowest value, as in the interpreter.
        let (better, init) = if ty.is_float() {
            let empty = ax
                .iter()
                .map(|a| cmp(CmpOp::Le, var(a.hi), var(a.lo)))
                .reduce(|a, b| bin(BinOp::Or, a, b))
                .unwrap_or(Expr::I(0, Scalar::Bool));
            (
                bin(
                    BinOp::And,
                    cmp(CmpOp::Eq, var(v), var(v)),
                    un(UnOp::Not, cmp(CmpOp::Le, var(v), var(best))),
                ),
                select(empty, lowest(ty), f(f64::NAN, ty)),
            )
        } else {
            (cmp(CmpOp::Gt, var(v), var(best)), lowest(ty))
        };
        let mut tap = vec![
            Stmt::Set(v, x.load(x_idx.clone())),
            Stmt::Set(best, select(better.clone(), var(v), var(best))),
        ];
        let mut stmts = vec![Stmt::Set(best, init)];
        if let Some(ix) = &indices {
            // The input position along axis d is o·s − pad + k·dil.
            let flat = if column_major {
                let pos = |d: usize| {
                    add(
                        sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d])),
                        mul(var(ax[d].k), i(g.dilations[d] as i64)),
                    )
                };
                let inplane = (0..nd)
                    .map(|d| mul(pos(d), i(col_strides[d] as i64)))
                    .reduce(add)
                    .unwrap_or_else(|| i(0));
                add(mul(var(pl), i(in_sz as i64)), inplane)
            } else {
                x_idx
            };
            // Set before `best` is updated: `better` reads the old best.
            // The first tap stands in until a value wins (a window of NaNs
            // reports its first element).
            let take = bin(BinOp::Or, better, cmp(CmpOp::Eq, var(bi), i(-1)));
            tap.insert(1, Stmt::Set(bi, select(take, flat, var(bi))));
            stmts.push(Stmt::Set(bi, i(-1)));
            stmts.extend(tap_loops(ax, tap));
            stmts.push(Stmt::Store {
                buf: ix.buf,
                index: y_idx.clone(),
                value: var(bi),
            });
        } else {
            stmts.extend(tap_loops(ax, tap));
        }
        stmts.push(Stmt::Store {
            buf: y.buf,
            index: y_idx,
            value: var(best),
        });
        stmts
    })
}

pub(super) fn check_float(x: &Operand) -> Result<(), String> {
    if x.ty.is_float() {
        Ok(())
    } else {
        Err(format!("this pool on {:?} has no native kernel", x.ty))
    }
}

/// The pools that sum over the window.
#[derive(Clone, Copy)]
pub(super) enum SumPool {
    /// `AveragePool`; whether padded cells count in the divisor.
    Average(bool),
    /// `LpPool` with this exponent.
    Lp(f64),
}

/// `AveragePool` and `LpPool`.
pub(super) fn sum_pool(
    p: &mut Program,
    g: &Geom,
    x: &Operand,
    y: &Operand,
    pf: SumPool,
) -> Vec<Stmt> {
    let nd = g.input.len();
    let in_strides = strides_of(&g.input);
    let ty = x.ty;
    let acc = p.var(ty);
    let y = y.clone();
    pool_loops(p, g, x, |_, ax, _, y_idx| {
        let xv = x.load(add(
            var(ax[nd - 1].off),
            tap_offset(ax, |d| g.dilations[d] * in_strides[d]),
        ));
        let (term, result) = match pf {
            SumPool::Average(count_include_pad) => {
                // Taps inside the input, or (count_include_pad) inside the padded extent.
                let count = (0..nd)
                    .map(|d| {
                        if count_include_pad {
                            let start =
                                sub(mul(var(ax[d].o), i(g.strides[d] as i64)), i(g.pad_begin[d]));
                            let limit = g.input[d] as i64 + g.pad_end[d];
                            let lo_limit = -g.pad_begin[d];
                            // Taps with start + k·dil in [-pad_begin, input + pad_end).
                            let (lo, hi) = tap_range(
                                &sub(start, i(lo_limit)),
                                limit - lo_limit,
                                g.dilations[d],
                                g.kernel[d],
                            );
                            imax(sub(hi, lo), i(0))
                        } else {
                            imax(sub(var(ax[d].hi), var(ax[d].lo)), i(0))
                        }
                    })
                    .reduce(mul)
                    .unwrap_or_else(|| i(1));
                (xv, bin(BinOp::Div, var(acc), cast(ty, count)))
            }
            SumPool::Lp(pw) => lp_terms(xv, pw, var(acc), ty),
        };
        let mut stmts = vec![Stmt::Set(acc, f(0.0, ty))];
        stmts.extend(tap_loops(ax, vec![Stmt::Set(acc, add(var(acc), term))]));
        stmts.push(Stmt::Store {
            buf: y.buf,
            index: y_idx,
            value: result,
        });
        stmts
    })
}

/// The summed term of an Lp pool for the element `xv` and the result for the
/// sum `acc`: `(Σ |x|^p)^(1/p)`, exact for `p` = 1 and 2.
pub(super) fn lp_terms(xv: Expr, pw: f64, acc: Expr, ty: Scalar) -> (Expr, Expr) {
    if pw == 2.0 {
        (mul(xv.clone(), xv), un(UnOp::Sqrt, acc))
    } else if pw == 1.0 {
        (un(UnOp::Abs, xv), acc)
    } else {
        (
            bin(BinOp::Pow, un(UnOp::Abs, xv), f(pw, ty)),
            bin(BinOp::Pow, acc, f(1.0 / pw, ty)),
        )
    }
}

/// `GlobalMaxPool`, `GlobalAveragePool`, `GlobalLpPool`: one reduction per plane.
pub(super) fn global_pool(p: &mut Program, x: &Operand, y: &Operand, pf: PoolFn) -> Vec<Stmt> {
    let planes = x.shape[0] * x.shape[1];
    let plane: usize = x.shape[2..].iter().product();
    let ty = x.ty;
    let (pl, e, acc) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(ty));
    let xv = x.load(add(mul(var(pl), i(plane as i64)), var(e)));
    let (init, step, result) = match pf {
        // Max propagates NaN, like NumPy's max over the axes.
        PoolFn::Max { .. } => (
            f(f64::NEG_INFINITY, ty),
            bin(BinOp::Max, var(acc), xv),
            var(acc),
        ),
        PoolFn::Average { .. } => (
            f(0.0, ty),
            add(var(acc), xv),
            bin(BinOp::Div, var(acc), f(plane as f64, ty)),
        ),
        PoolFn::Lp { p: pw } => {
            let (term, result) = lp_terms(xv, pw as f64, var(acc), ty);
            (f(0.0, ty), add(var(acc), term), result)
        }
    };
    nest(
        &[(pl, planes)],
        vec![
            Stmt::Set(acc, init),
            Stmt::for_loop(e, i(0), i(plane as i64), vec![Stmt::Set(acc, step)]),
            Stmt::Store {
                buf: y.buf,
                index: var(pl),
                value: result,
            },
        ],
    )
}

/// `MaxUnpool`: zeros, then every `x[e]` goes to the flat index `I[e]` of
/// the unpooled shape `inferred`, which sits at the start of every axis of
/// the (possibly larger) output. Out-of-range indices are skipped (the
/// interpreter reports them as an error).
pub(super) fn max_unpool(
    p: &mut Program,
    x: &Operand,
    ix: &Operand,
    inferred: &[usize],
    y: &Operand,
) -> Vec<Stmt> {
    let (e, t) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let n_out = y.numel();
    let n_inf: usize = inferred.iter().product();
    let zero = match y.ty {
        t if t.is_float() => f(0.0, t),
        other => Expr::I(0, other),
    };
    let mut stmts = nest(
        &[(e, n_out)],
        vec![Stmt::Store {
            buf: y.buf,
            index: var(e),
            value: zero,
        }],
    );
    // The flat output index of the flat unpooled index `t`.
    let target = if inferred == y.shape.as_slice() {
        var(t)
    } else {
        let out_strides = strides_of(&y.shape);
        let mut rest = n_inf;
        let mut terms = Vec::new();
        for d in 0..inferred.len() {
            rest /= inferred[d].max(1);
            let coord = bin(
                BinOp::Rem,
                bin(BinOp::Div, var(t), i(rest.max(1) as i64)),
                i(inferred[d].max(1) as i64),
            );
            terms.push(mul(coord, i(out_strides[d] as i64)));
        }
        terms.into_iter().reduce(add).unwrap_or_else(|| i(0))
    };
    let in_range = bin(
        BinOp::And,
        cmp(CmpOp::Ge, var(t), i(0)),
        cmp(CmpOp::Lt, var(t), i(n_inf as i64)),
    );
    stmts.extend(nest(
        &[(e, x.numel())],
        vec![
            Stmt::Set(t, cast(Scalar::I64, ix.load(var(e)))),
            Stmt::If(
                in_range,
                vec![Stmt::Store {
                    buf: y.buf,
                    index: target,
                    value: x.load(var(e)),
                }],
                vec![],
            ),
        ],
    ));
    stmts
}
