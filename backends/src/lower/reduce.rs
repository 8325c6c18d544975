//! Lowering of the reduce family: `Reduce*`, `ArgMax`/`ArgMin`, `TopK` and
//! the scans `CumSum`/`CumProd`.
//!
//! A reduction runs over the coalesced view the interpreter uses: size-1
//! dims vanish and neighbouring dims that are both reduced (or both kept)
//! merge. When the innermost coalesced dim is reduced, each output is a
//! scalar accumulator over a contiguous run; when it is kept, the output row
//! itself accumulates while the input is read in order (no strided walk),
//! and a last pass finishes it (mean, square root, log).
//!
//! Float reductions accumulate in the element type (the interpreter uses
//! `f64`; the difference is within the conformance tolerance). Integer sums
//! and products wrap in the element type, which gives the interpreter's bits;
//! an integer mean divides the exact sum (32-bit types sum in `i64`);
//! integer `ReduceL2`/`LogSum`/`LogSumExp` compute in `f64` and truncate.

use smelt_ir::ops::reduce::{ArgKind, Reduce, ReduceKind, ScanKind};
use smelt_ir::shape::norm_axis;

use super::shape::{const_ints, lit};
use super::{NodeResult, Operand, loop_nest};
use crate::kernel::build::{add, bin, cast, cmp, i, mul, select, sub, un, var};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp, Var};

/// The identity of `Max` (`lowest`) or `Min` for a type.
fn extreme(ty: Scalar, lowest: bool) -> Expr {
    let (lo, hi): (i64, i64) = match ty {
        Scalar::F32 | Scalar::F64 | Scalar::F16 | Scalar::BF16 => {
            return Expr::F(
                if lowest {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                },
                ty,
            );
        }
        Scalar::Bool => (0, 1),
        Scalar::I8 => (i8::MIN as i64, i8::MAX as i64),
        Scalar::U8 => (0, u8::MAX as i64),
        Scalar::I16 => (i16::MIN as i64, i16::MAX as i64),
        Scalar::U16 => (0, u16::MAX as i64),
        Scalar::I32 => (i32::MIN as i64, i32::MAX as i64),
        Scalar::U32 => (0, u32::MAX as i64),
        Scalar::I64 => (i64::MIN, i64::MAX),
        // All ones: the bits of u64::MAX.
        Scalar::U64 => (0, -1),
    };
    Expr::I(if lowest { lo } else { hi }, ty)
}

/// `for v in 0..n { body }` nested over `dims` (outermost first).
fn nest(vars: &[(Var, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut stmts = body;
    for &(v, n) in vars.iter().rev() {
        stmts = vec![Stmt::for_loop(v, i(0), i(n as i64), stmts)];
    }
    stmts
}

/// `Σ idx[k] · stride[k]`.
fn dot(idx: &[Expr], strides: &[usize]) -> Expr {
    idx.iter()
        .zip(strides)
        .map(|(e, &s)| {
            if s == 1 {
                e.clone()
            } else {
                mul(e.clone(), i(s as i64))
            }
        })
        .reduce(add)
        .unwrap_or_else(|| i(0))
}

/// Row-major strides of `sizes`.
fn row_strides(sizes: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; sizes.len()];
    for k in (0..sizes.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * sizes[k + 1];
    }
    s
}

/// How one reduction folds, finishes and starts, in its accumulator type.
struct Fold {
    /// The accumulator type.
    acc: Scalar,
    /// The starting value.
    init: Expr,
    /// `acc ∘ x` (x already converted to `acc`).
    step: fn(Expr, Expr, Scalar) -> Expr,
    /// The final value from the accumulator, in the accumulator type.
    finish: Box<dyn Fn(Expr) -> Expr>,
}

fn fold_for(kind: ReduceKind, ty: Scalar, count: usize) -> Result<Fold, String> {
    let float = ty.is_float();
    // Integer L2/LogSum/LogSumExp go through f64; 32-bit integer means sum in i64.
    let acc = match kind {
        ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp if !float => Scalar::F64,
        ReduceKind::Mean if !float && ty.bytes() < 8 => {
            if ty.is_signed() {
                Scalar::I64
            } else {
                Scalar::U64
            }
        }
        _ => ty,
    };
    let n = count;
    let zero = lit(0.0, acc);
    let one = lit(1.0, acc);
    let unsigned = !acc.is_float() && !acc.is_signed();
    let fold = match kind {
        ReduceKind::Sum | ReduceKind::LogSum => Fold {
            acc,
            init: zero,
            step: |a, x, _| add(a, x),
            finish: if kind == ReduceKind::LogSum {
                Box::new(|a| un(UnOp::Log, a))
            } else {
                Box::new(|a| a)
            },
        },
        ReduceKind::Mean => Fold {
            acc,
            init: zero,
            step: |a, x, _| add(a, x),
            finish: if acc.is_float() {
                Box::new(move |a| bin(BinOp::Div, a, Expr::F(n as f64, acc)))
            } else if n == 0 {
                // The interpreter's integer mean of an empty set.
                Box::new(move |_| Expr::I(0, acc))
            } else {
                Box::new(move |a| bin(BinOp::Div, a, Expr::I(n as i64, acc)))
            },
        },
        ReduceKind::Prod => Fold {
            acc,
            init: one,
            step: |a, x, _| mul(a, x),
            finish: Box::new(|a| a),
        },
        ReduceKind::L1 => Fold {
            acc,
            init: zero,
            step: if unsigned {
                |a, x, _| add(a, x)
            } else {
                |a, x, _| add(a, un(UnOp::Abs, x))
            },
            finish: Box::new(|a| a),
        },
        ReduceKind::L2 | ReduceKind::SumSquare => Fold {
            acc,
            init: zero,
            step: |a, x, _| add(a, mul(x.clone(), x)),
            finish: if kind == ReduceKind::L2 {
                Box::new(|a| un(UnOp::Sqrt, a))
            } else {
                Box::new(|a| a)
            },
        },
        ReduceKind::Max => Fold {
            acc,
            init: extreme(acc, true),
            step: |a, x, _| bin(BinOp::Max, a, x),
            finish: Box::new(|a| a),
        },
        ReduceKind::Min => Fold {
            acc,
            init: extreme(acc, false),
            step: |a, x, _| bin(BinOp::Min, a, x),
            finish: Box::new(|a| a),
        },
        ReduceKind::LogSumExp => return Err("LogSumExp folds in two passes".into()),
    };
    Ok(fold)
}

fn lower_reduce(
    kind: ReduceKind,
    axes_attr: Option<&[i64]>,
    noop: bool,
    ins: &[Option<Operand>],
    out: &Operand,
    p: &mut Program,
) -> NodeResult {
    let x = ins.first().cloned().flatten().ok_or("no input")?;
    let rank = x.shape.len();
    let axes: Vec<i64> = match (axes_attr, ins.get(1).cloned().flatten()) {
        (Some(a), _) => a.to_vec(),
        (None, Some(t)) => const_ints(&t, p)?,
        (None, None) => vec![],
    };
    let mut mask = vec![axes.is_empty() && !noop; rank];
    for &a in &axes {
        mask[norm_axis(a, rank).map_err(|e| e.to_string())?] = true;
    }
    // The coalesced view.
    let mut dims: Vec<(usize, bool)> = Vec::new();
    let mut count = 1usize;
    for (&d, &r) in x.shape.iter().zip(&mask) {
        if r {
            count *= d;
        }
        if d == 1 {
            continue;
        }
        match dims.last_mut() {
            Some((n, lr)) if *lr == r => *n *= d,
            _ => dims.push((d, r)),
        }
    }
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    let ty = x.ty;
    let sizes: Vec<usize> = dims.iter().map(|d| d.0).collect();
    let in_strides = row_strides(&sizes);
    let kept: Vec<usize> = (0..dims.len()).filter(|&k| !dims[k].1).collect();
    let red: Vec<usize> = (0..dims.len()).filter(|&k| dims[k].1).collect();
    let kept_sizes: Vec<usize> = kept.iter().map(|&k| sizes[k]).collect();
    let out_strides = row_strides(&kept_sizes);
    let vars: Vec<Var> = dims.iter().map(|_| p.var(Scalar::I64)).collect();
    let in_index = dot(
        &vars.iter().map(|&v| var(v)).collect::<Vec<_>>(),
        &in_strides,
    );
    let out_index = dot(
        &kept.iter().map(|&k| var(vars[k])).collect::<Vec<_>>(),
        &out_strides,
    );
    let xv = x.load(in_index.clone());
    let to_out = |e: Expr, acc: Scalar| if acc == ty { e } else { cast(ty, e) };

    if kind == ReduceKind::LogSumExp {
        // Shift by the largest finite value so exp cannot overflow; with none
        // the shift is 0 and the infinities give the right limits.
        let acc = if ty.is_float() { ty } else { Scalar::F64 };
        let (m, s) = (p.var(acc), p.var(acc));
        let v = if acc == ty { xv } else { cast(acc, xv) };
        let finite = |e: Expr| cmp(CmpOp::Eq, sub(e.clone(), e), Expr::F(0.0, acc));
        let red_vars: Vec<(Var, usize)> = red.iter().map(|&k| (vars[k], sizes[k])).collect();
        let kept_vars: Vec<(Var, usize)> = kept.iter().map(|&k| (vars[k], sizes[k])).collect();
        let take = bin(
            BinOp::And,
            finite(v.clone()),
            cmp(CmpOp::Gt, v.clone(), var(m)),
        );
        let mut body = vec![Stmt::Set(m, Expr::F(f64::NEG_INFINITY, acc))];
        body.extend(nest(
            &red_vars,
            vec![Stmt::Set(m, select(take, v.clone(), var(m)))],
        ));
        body.push(Stmt::Set(
            m,
            select(
                cmp(CmpOp::Gt, var(m), Expr::F(f64::NEG_INFINITY, acc)),
                var(m),
                Expr::F(0.0, acc),
            ),
        ));
        body.push(Stmt::Set(s, Expr::F(0.0, acc)));
        body.extend(nest(
            &red_vars,
            vec![Stmt::Set(s, add(var(s), un(UnOp::Exp, sub(v, var(m)))))],
        ));
        body.push(Stmt::Store {
            buf: out.buf,
            index: out_index,
            value: to_out(add(un(UnOp::Log, var(s)), var(m)), acc),
        });
        return Ok(nest(&kept_vars, body));
    }

    let f = fold_for(kind, ty, count)?;
    let acc = f.acc;
    let xa = if acc == ty { xv } else { cast(acc, xv) };
    let last_kept = dims.last().is_some_and(|d| !d.1);
    if last_kept && acc == ty {
        // Accumulate into the output rows while reading the input in order.
        let out_len = out.numel();
        let o = p.var(Scalar::I64);
        let mut stmts = vec![Stmt::for_loop(
            o,
            i(0),
            i(out_len as i64),
            vec![Stmt::Store {
                buf: out.buf,
                index: var(o),
                value: f.init.clone(),
            }],
        )];
        let all: Vec<(Var, usize)> = vars.iter().copied().zip(sizes.iter().copied()).collect();
        stmts.extend(nest(
            &all,
            vec![Stmt::Store {
                buf: out.buf,
                index: out_index.clone(),
                value: (f.step)(out.load(out_index), xa, acc),
            }],
        ));
        let fin = (f.finish)(out.load(var(o)));
        if fin != out.load(var(o)) {
            stmts.push(Stmt::for_loop(
                o,
                i(0),
                i(out_len as i64),
                vec![Stmt::Store {
                    buf: out.buf,
                    index: var(o),
                    value: fin,
                }],
            ));
        }
        return Ok(stmts);
    }
    // A scalar accumulator per output.
    let a = p.var(acc);
    let red_vars: Vec<(Var, usize)> = red.iter().map(|&k| (vars[k], sizes[k])).collect();
    let kept_vars: Vec<(Var, usize)> = kept.iter().map(|&k| (vars[k], sizes[k])).collect();
    let mut body = vec![Stmt::Set(a, f.init.clone())];
    body.extend(nest(
        &red_vars,
        vec![Stmt::Set(a, (f.step)(var(a), xa, acc))],
    ));
    body.push(Stmt::Store {
        buf: out.buf,
        index: out_index,
        value: to_out((f.finish)(var(a)), acc),
    });
    Ok(nest(&kept_vars, body))
}

/// `(outer, n, inner)` around `axis`.
fn split_at(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// True when `v` should replace `best` in an arg-reduction: NaN counts as the
/// extreme both ways (the first one, or the last with `last`).
fn arg_better(v: Expr, best: Expr, ty: Scalar, max: bool, last: bool) -> Expr {
    let op = match (max, last) {
        (true, false) => CmpOp::Gt,
        (true, true) => CmpOp::Ge,
        (false, false) => CmpOp::Lt,
        (false, true) => CmpOp::Le,
    };
    let c = cmp(op, v.clone(), best.clone());
    if !ty.is_float() {
        return c;
    }
    let vn = cmp(CmpOp::Ne, v.clone(), v);
    if last {
        bin(BinOp::Or, vn, c)
    } else {
        let bn = cmp(CmpOp::Ne, best.clone(), best);
        // vn && !bn: NaN-ness differs and v is the NaN.
        bin(
            BinOp::Or,
            bin(BinOp::And, vn, cmp(CmpOp::Eq, bn, Expr::I(0, Scalar::Bool))),
            c,
        )
    }
}

/// The order TopK sorts by, as "a comes before b": NaN above every number,
/// ties to the lower index whatever the direction.
fn topk_before(a: (Expr, Expr), b: (Expr, Expr), ty: Scalar, largest: bool) -> Expr {
    let (av, ai) = a;
    let (bv, bi) = b;
    let idx_first = cmp(CmpOp::Lt, ai, bi);
    let (gt, eq) = (
        cmp(
            if largest { CmpOp::Gt } else { CmpOp::Lt },
            av.clone(),
            bv.clone(),
        ),
        cmp(CmpOp::Eq, av.clone(), bv.clone()),
    );
    if !ty.is_float() {
        return bin(BinOp::Or, gt, bin(BinOp::And, eq, idx_first));
    }
    let an = cmp(CmpOp::Ne, av.clone(), av);
    let bn = cmp(CmpOp::Ne, bv.clone(), bv);
    let not = |e: Expr| cmp(CmpOp::Eq, e, Expr::I(0, Scalar::Bool));
    // Value order with NaN greatest: (a NaN, b not) is "greater".
    let (a_wins_nan, b_wins_nan) = if largest {
        (
            bin(BinOp::And, an.clone(), not(bn.clone())),
            bin(BinOp::And, bn.clone(), not(an.clone())),
        )
    } else {
        (
            bin(BinOp::And, bn.clone(), not(an.clone())),
            bin(BinOp::And, an.clone(), not(bn.clone())),
        )
    };
    let both_nan = bin(BinOp::And, an, bn);
    let same = bin(BinOp::Or, eq, both_nan);
    bin(
        BinOp::Or,
        bin(BinOp::Or, a_wins_nan, bin(BinOp::And, not(b_wins_nan), gt)),
        bin(BinOp::And, same, idx_first),
    )
}

/// An inclusive or exclusive scan along `ax`, accumulating floats in `f64`
/// like the interpreter.
fn scan(
    p: &mut Program,
    x: &Operand,
    out: &Operand,
    ax: usize,
    sum: bool,
    exclusive: bool,
    reverse: bool,
) -> Vec<Stmt> {
    let (outer, n, inner) = split_at(&x.shape, ax);
    let ty = x.ty;
    let acc_ty = if ty.is_float() { Scalar::F64 } else { ty };
    let (acc, jj) = (p.var(acc_ty), p.var(Scalar::I64));
    let x_c = x.clone();
    let out_c = out.clone();
    loop_nest(p, &[outer, inner], |_, idx| {
        let j = if reverse {
            sub(i(n as i64 - 1), var(jj))
        } else {
            var(jj)
        };
        let at = add(
            mul(add(mul(idx[0].clone(), i(n as i64)), j), i(inner as i64)),
            idx[1].clone(),
        );
        let v = x_c.load(at.clone());
        let v = if acc_ty == ty { v } else { cast(acc_ty, v) };
        let step = Stmt::Set(
            acc,
            if sum {
                add(var(acc), v)
            } else {
                mul(var(acc), v)
            },
        );
        let emit = Stmt::Store {
            buf: out_c.buf,
            index: at,
            value: if acc_ty == ty {
                var(acc)
            } else {
                cast(ty, var(acc))
            },
        };
        let body = if exclusive {
            vec![emit, step]
        } else {
            vec![step, emit]
        };
        vec![
            Stmt::Set(acc, lit(if sum { 0.0 } else { 1.0 }, acc_ty)),
            Stmt::for_loop(jj, i(0), i(n as i64), body),
        ]
    })
}

/// Lowers one node of the reduce family.
pub fn lower(
    op: &Reduce,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    let out = &outs[0];
    let x = ins.first().cloned().flatten().ok_or("no input")?;
    let rank = x.shape.len();
    match op {
        Reduce::Reduce {
            kind,
            axes,
            keepdims: _,
            noop_with_empty_axes,
        } => lower_reduce(*kind, axes.as_deref(), *noop_with_empty_axes, ins, out, p),
        Reduce::Arg {
            kind,
            axis,
            keepdims: _,
            select_last_index,
        } => {
            let ax = norm_axis(*axis, rank).map_err(|e| e.to_string())?;
            let (outer, n, inner) = split_at(&x.shape, ax);
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            let ty = x.ty;
            let (best, bi, j, better) = (
                p.var(ty),
                p.var(Scalar::I64),
                p.var(Scalar::I64),
                p.var(Scalar::Bool),
            );
            let (max, last) = (*kind == ArgKind::Max, *select_last_index);
            let x_c = x.clone();
            let out_c = out.clone();
            Ok(loop_nest(p, &[outer, inner], |_, idx| {
                let at = |jj: Expr| {
                    add(
                        mul(add(mul(idx[0].clone(), i(n as i64)), jj), i(inner as i64)),
                        idx[1].clone(),
                    )
                };
                let v = x_c.load(at(var(j)));
                vec![
                    Stmt::Set(best, x_c.load(at(i(0)))),
                    Stmt::Set(bi, i(0)),
                    Stmt::for_loop(
                        j,
                        i(1),
                        i(n as i64),
                        vec![
                            Stmt::Set(better, arg_better(v.clone(), var(best), ty, max, last)),
                            Stmt::Set(best, select(var(better), v, var(best))),
                            Stmt::Set(bi, select(var(better), var(j), var(bi))),
                        ],
                    ),
                    Stmt::Store {
                        buf: out_c.buf,
                        index: add(mul(idx[0].clone(), i(inner as i64)), idx[1].clone()),
                        value: var(bi),
                    },
                ]
            }))
        }
        Reduce::Scan {
            kind,
            exclusive,
            reverse,
        } => {
            let a = ins.get(1).cloned().flatten().ok_or("no axis")?;
            if out.numel() == 0 {
                return Ok(vec![]);
            }
            let (sum, exclusive, reverse) = (*kind == ScanKind::Sum, *exclusive, *reverse);
            if let Ok(axis) = const_ints(&a, p) {
                let ax = norm_axis(axis[0], rank).map_err(|e| e.to_string())?;
                return Ok(scan(p, &x, out, ax, sum, exclusive, reverse));
            }
            // A run-time axis: one kernel per axis, chosen by the axis value
            // (wrapped like the interpreter wraps a valid axis; an invalid
            // one writes nothing).
            let av = p.var(Scalar::I64);
            let raw = cast(Scalar::I64, a.load(i(0)));
            let mut stmts = vec![
                Stmt::Set(av, raw),
                Stmt::Set(
                    av,
                    select(
                        cmp(CmpOp::Lt, var(av), i(0)),
                        add(var(av), i(rank as i64)),
                        var(av),
                    ),
                ),
            ];
            for ax in 0..rank {
                let body = scan(p, &x, out, ax, sum, exclusive, reverse);
                stmts.push(Stmt::If(
                    cmp(CmpOp::Eq, var(av), i(ax as i64)),
                    body,
                    vec![],
                ));
            }
            Ok(stmts)
        }
        Reduce::TopK {
            k: _,
            axis,
            largest,
            sorted: _,
        } => {
            // Selection without scratch memory: output j is the first element
            // (in TopK order) after output j - 1. O(n·k) per lane, exact.
            let ax = norm_axis(*axis, rank).map_err(|e| e.to_string())?;
            let (outer, n, inner) = split_at(&x.shape, ax);
            let k = out.shape[ax];
            let (vals, idxs) = (
                outs[0].clone(),
                outs.get(1).cloned().ok_or("no indices output")?,
            );
            if vals.numel() == 0 {
                return Ok(vec![]);
            }
            let ty = x.ty;
            let largest = *largest;
            let (pv, pi, bv, bi, t, jv) = (
                p.var(ty),
                p.var(Scalar::I64),
                p.var(ty),
                p.var(Scalar::I64),
                p.var(Scalar::I64),
                p.var(Scalar::I64),
            );
            let x_c = x.clone();
            Ok(loop_nest(p, &[outer, inner], |_, idx| {
                let at = |jj: Expr, len: usize| {
                    add(
                        mul(add(mul(idx[0].clone(), i(len as i64)), jj), i(inner as i64)),
                        idx[1].clone(),
                    )
                };
                let v = x_c.load(at(var(t), n));
                // After the previous pick (none for the first output).
                let after_prev = bin(
                    BinOp::Or,
                    cmp(CmpOp::Lt, var(pi), i(0)),
                    topk_before((var(pv), var(pi)), (v.clone(), var(t)), ty, largest),
                );
                let before_best = bin(
                    BinOp::Or,
                    cmp(CmpOp::Lt, var(bi), i(0)),
                    topk_before((v.clone(), var(t)), (var(bv), var(bi)), ty, largest),
                );
                let take = bin(BinOp::And, after_prev, before_best);
                vec![
                    Stmt::Set(pi, i(-1)),
                    Stmt::Set(pv, x_c.load(at(i(0), n))),
                    Stmt::for_loop(
                        jv,
                        i(0),
                        i(k as i64),
                        vec![
                            Stmt::Set(bi, i(-1)),
                            Stmt::Set(bv, x_c.load(at(i(0), n))),
                            Stmt::for_loop(
                                t,
                                i(0),
                                i(n as i64),
                                vec![Stmt::If(
                                    take,
                                    vec![Stmt::Set(bv, v.clone()), Stmt::Set(bi, var(t))],
                                    vec![],
                                )],
                            ),
                            Stmt::Store {
                                buf: vals.buf,
                                index: at(var(jv), k),
                                value: var(bv),
                            },
                            Stmt::Store {
                                buf: idxs.buf,
                                index: at(var(jv), k),
                                value: var(bi),
                            },
                            Stmt::Set(pv, var(bv)),
                            Stmt::Set(pi, var(bi)),
                        ],
                    ),
                ]
            }))
        }
    }
}
