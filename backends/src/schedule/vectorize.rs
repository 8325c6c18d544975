//! Vectorization of innermost unit-stride f32 loops (a kernel-IR-to-kernel-IR
//! transformation).
//!
//! An innermost `for v in s..e` whose body is straight-line f32 code —
//! `Set`s of loop-local temporaries and `Store`s at an index `base + v` —
//! becomes a loop over vectors of the target's `f32` lane count
//! ([`crate::kernel::VectorShape`]: 4, 8 or 16) followed by the original
//! loop for the remaining iterations. Loads at `base + v` become vector
//! loads, loads and values that do not depend on `v` are broadcast, and the
//! arithmetic (`Add`, `Sub`, `Mul`, `Div`, `Min`, `Max`, `Neg`, `Abs`,
//! `Sqrt`, `MulAdd`) applies lane-wise with the same per-lane rounding as the
//! scalar loop, so results are bit-identical; a clamp against a constant
//! (`x < lo ? lo : x`) becomes `max`/`min`. Anything else (comparisons,
//! other selects, casts, math functions, gathers, reductions into one element,
//! other element types) leaves the loop as it is.
//!
//! Soundness rests on two facts: distinct [`Buf`]s do not overlap (the
//! memory plan gives simultaneously live values disjoint bytes), and a loop
//! that stores to a buffer reads that buffer only at the element it stores
//! (checked), so running a vector's worth of iterations' loads before their stores changes
//! nothing (for any lane count). A temporary is vectorized only if nothing outside the loop
//! mentions it.

use std::collections::HashMap;

use crate::kernel::build::{add, i, mul, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, LANES_F32, Program, Scalar, Stmt, UnOp, Var};

/// Vectorizes every eligible innermost loop of `p`; returns how many.
pub fn vectorize(p: &mut Program) -> usize {
    let mut counts = HashMap::new();
    for s in &p.body {
        count_stmt(s, &mut counts);
    }
    let body = std::mem::take(&mut p.body);
    let mut n = 0;
    p.body = walk(p, body, &counts, &mut n);
    n
}

fn walk(
    p: &mut Program,
    body: Vec<Stmt>,
    counts: &HashMap<Var, usize>,
    n: &mut usize,
) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(body.len());
    for s in body {
        match s {
            Stmt::For {
                var: v,
                start,
                end,
                body,
            } => {
                let innermost = body
                    .iter()
                    .all(|s| matches!(s, Stmt::Set(..) | Stmt::Store { .. }));
                if innermost {
                    let lanes = p.shape.f32_lanes;
                    if let Some(vs) = try_loop(p, v, &start, &end, &body, counts, lanes) {
                        *n += 1;
                        out.extend(vs);
                        continue;
                    }
                    out.push(Stmt::for_loop(v, start, end, body));
                } else {
                    let body = walk(p, body, counts, n);
                    out.push(Stmt::for_loop(v, start, end, body));
                }
            }
            // A parallel loop is never the vectorized one; its body may hold
            // one.
            Stmt::Parallel { var, extent, body } => {
                let body = walk(p, body, counts, n);
                out.push(Stmt::Parallel { var, extent, body });
            }
            Stmt::If(c, t, e) => {
                let t = walk(p, t, counts, n);
                let e = walk(p, e, counts, n);
                out.push(Stmt::If(c, t, e));
            }
            other => out.push(other),
        }
    }
    out
}

/// The loop `for v in start..end { body }` as a loop over `lanes`-lane
/// vectors and the rest; when `lanes` is wider than 128 bits the rest (or a
/// loop too short for one wide vector, such as a 7- or 14-wide image row)
/// runs on 4-lane vectors first, then scalar.
fn try_loop(
    p: &mut Program,
    v: Var,
    start: &Expr,
    end: &Expr,
    body: &[Stmt],
    counts: &HashMap<Var, usize>,
    lanes: u8,
) -> Option<Vec<Stmt>> {
    let l = i64::from(lanes);
    // The trip count, when known, must give at least one vector.
    let trips = match (start, end) {
        (Expr::I(s, _), Expr::I(e, _)) => Some(e - s),
        _ => None,
    };
    if lanes < 2 {
        return None;
    }
    if trips.is_some_and(|t| t < l) {
        return if lanes > LANES_F32 {
            try_loop(p, v, start, end, body, counts, LANES_F32)
        } else {
            None
        };
    }
    // Loop-local temporaries: set once, f32 scalars, used only here and
    // only after their definition.
    let mut local_counts = HashMap::new();
    for s in body {
        count_stmt(s, &mut local_counts);
    }
    let mut locals: HashMap<Var, Var> = HashMap::new();
    let mut stores: Vec<(Buf, &Expr)> = Vec::new();
    for s in body {
        if let Stmt::Store { buf, index, .. } = s {
            // Two stores to one buffer at different elements could overlap
            // across iterations.
            if stores.iter().any(|(b, idx)| b == buf && *idx != index) {
                return None;
            }
            stores.push((*buf, index));
        }
    }
    let mut vbody = Vec::with_capacity(body.len());
    for s in body {
        match s {
            Stmt::Set(t, e) => {
                let ty = p.vars[t.0 as usize];
                if ty != Scalar::F32
                    || p.var_lane_count(*t) != 1
                    || locals.contains_key(t)
                    || *t == v
                    || local_counts.get(t) != counts.get(t)
                {
                    return None;
                }
                let ve = vexpr(p, e, v, &locals, &stores, lanes)?;
                let tv = p.vector_var(Scalar::F32, lanes);
                locals.insert(*t, tv);
                vbody.push(Stmt::Set(tv, ve));
            }
            Stmt::Store { buf, index, value } => {
                if coeff(index, v, &locals)? != 1 || p.ty(value) != Scalar::F32 {
                    return None;
                }
                let ve = vexpr(p, value, v, &locals, &stores, lanes)?;
                vbody.push(Stmt::VStore {
                    buf: *buf,
                    index: index.clone(),
                    value: ve,
                });
            }
            _ => return None,
        }
    }
    // A temporary read before its `Set` would see the previous iteration.
    let mut seen = Vec::new();
    for s in body {
        let (reads, set) = match s {
            Stmt::Set(t, e) => (vars_of(e), Some(*t)),
            Stmt::Store { index, value, .. } => {
                let mut r = vars_of(index);
                r.extend(vars_of(value));
                (r, None)
            }
            _ => return None,
        };
        if reads
            .iter()
            .any(|r| locals.contains_key(r) && !seen.contains(r))
        {
            return None;
        }
        seen.extend(set);
    }
    let vb = p.var(Scalar::I64);
    let n = Expr::Bin(BinOp::Sub, Box::new(end.clone()), Box::new(start.clone()));
    let (vectors, rest_start) = match (start, trips) {
        (Expr::I(s, _), Some(t)) => (i(t / l), i(s + t / l * l)),
        _ => {
            let nv = Expr::Bin(BinOp::Div, Box::new(n), Box::new(i(l)));
            (nv.clone(), add(start.clone(), mul(nv, i(l))))
        }
    };
    let mut vloop = vec![Stmt::Set(v, add(start.clone(), mul(var(vb), i(l))))];
    vloop.extend(vbody);
    let mut out = vec![Stmt::for_loop(vb, i(0), vectors, vloop)];
    if trips.is_none_or(|t| t % l != 0) {
        let narrow = if lanes > LANES_F32 {
            try_loop(p, v, &rest_start, end, body, counts, LANES_F32)
        } else {
            None
        };
        match narrow {
            Some(s) => out.extend(s),
            None => out.push(Stmt::for_loop(v, rest_start, end.clone(), body.to_vec())),
        }
    }
    Some(out)
}

/// The coefficient of `v` in an `I64` index expression, if it is affine in
/// `v` with a constant coefficient (and reads no loop-local temporary).
fn coeff(e: &Expr, v: Var, locals: &HashMap<Var, Var>) -> Option<i64> {
    match e {
        Expr::Var(x) if *x == v => Some(1),
        Expr::Var(x) if locals.contains_key(x) => None,
        Expr::Var(_) | Expr::I(..) | Expr::F(..) => Some(0),
        Expr::Bin(BinOp::Add, a, b) => Some(coeff(a, v, locals)? + coeff(b, v, locals)?),
        Expr::Bin(BinOp::Sub, a, b) => Some(coeff(a, v, locals)? - coeff(b, v, locals)?),
        Expr::Bin(BinOp::Mul, a, b) => match (coeff(a, v, locals)?, coeff(b, v, locals)?) {
            (0, 0) => Some(0),
            (0, k) => match **a {
                Expr::I(c, _) => Some(c * k),
                _ => None,
            },
            (k, 0) => match **b {
                Expr::I(c, _) => Some(c * k),
                _ => None,
            },
            _ => None,
        },
        Expr::Load { index, .. } => (coeff(index, v, locals)? == 0).then_some(0),
        Expr::Un(_, a) | Expr::Cast(_, a) | Expr::Bitcast(_, a) => {
            (coeff(a, v, locals)? == 0).then_some(0)
        }
        Expr::Bin(_, a, b) | Expr::Cmp(_, a, b) => {
            (coeff(a, v, locals)? == 0 && coeff(b, v, locals)? == 0).then_some(0)
        }
        Expr::Select(a, b, c) | Expr::MulAdd(a, b, c) => {
            (coeff(a, v, locals)? == 0 && coeff(b, v, locals)? == 0 && coeff(c, v, locals)? == 0)
                .then_some(0)
        }
        Expr::VLoad { .. } | Expr::Splat(..) | Expr::Extract(..) | Expr::Reduce(..) => None,
        Expr::Widen(..) | Expr::Dot(..) => None,
    }
}

/// The vector form of an f32 expression, or `None` if it has none.
fn vexpr(
    p: &Program,
    e: &Expr,
    v: Var,
    locals: &HashMap<Var, Var>,
    stores: &[(Buf, &Expr)],
    lanes: u8,
) -> Option<Expr> {
    if p.ty(e) != Scalar::F32 || p.lanes(e) != 1 {
        return None;
    }
    let splat = |x: Expr| Expr::Splat(lanes, Box::new(x));
    let go = |x: &Expr| vexpr(p, x, v, locals, stores, lanes).map(Box::new);
    Some(match e {
        Expr::F(..) | Expr::I(..) => splat(e.clone()),
        Expr::Var(x) => match locals.get(x) {
            Some(t) => Expr::Var(*t),
            None if *x == v => return None,
            None => splat(e.clone()),
        },
        Expr::Load { buf, index, ty } => {
            // Reading a buffer this loop writes is sound only at the very
            // element being written.
            if stores.iter().any(|(b, idx)| b == buf && *idx != &**index) {
                return None;
            }
            match coeff(index, v, locals)? {
                0 => splat(e.clone()),
                1 => Expr::VLoad {
                    buf: *buf,
                    index: index.clone(),
                    ty: *ty,
                    lanes,
                },
                _ => return None,
            }
        }
        Expr::Bin(op, a, b) => match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Min | BinOp::Max => {
                Expr::Bin(*op, go(a)?, go(b)?)
            }
            _ => return None,
        },
        Expr::Un(op, a) => match op {
            UnOp::Neg | UnOp::Abs | UnOp::Sqrt => Expr::Un(*op, go(a)?),
            _ => return None,
        },
        Expr::MulAdd(a, b, c) => Expr::MulAdd(go(a)?, go(b)?, go(c)?),
        // A clamp against a constant bound, `x < lo ? lo : x` (`Clip`,
        // `Relu6`), is `max(x, lo)`: for a non-NaN `lo` both give NaN for a
        // NaN `x` and `lo` or `x` otherwise (a zero's sign aside).
        Expr::Select(c, t, f) => match &**c {
            Expr::Cmp(op @ (CmpOp::Lt | CmpOp::Gt), x, bound)
                if x == f && bound == t && matches!(**bound, Expr::F(b, _) if !b.is_nan()) =>
            {
                let op = if *op == CmpOp::Lt {
                    BinOp::Max
                } else {
                    BinOp::Min
                };
                Expr::Bin(op, go(x)?, go(bound)?)
            }
            _ => return None,
        },
        Expr::Cmp(..)
        | Expr::Cast(..)
        | Expr::Bitcast(..)
        | Expr::VLoad { .. }
        | Expr::Splat(..)
        | Expr::Extract(..)
        | Expr::Reduce(..)
        | Expr::Widen(..)
        | Expr::Dot(..) => return None,
    })
}

fn vars_of(e: &Expr) -> Vec<Var> {
    let mut m = HashMap::new();
    count_expr(e, &mut m);
    m.into_keys().collect()
}

fn count_stmt(s: &Stmt, m: &mut HashMap<Var, usize>) {
    s.walk(&mut |s| {
        match s {
            Stmt::Set(v, _) | Stmt::For { var: v, .. } | Stmt::Parallel { var: v, .. } => {
                *m.entry(*v).or_default() += 1
            }
            Stmt::If(..)
            | Stmt::Store { .. }
            | Stmt::VStore { .. }
            | Stmt::Copy(_)
            | Stmt::Check { .. } => {}
        }
        s.for_each_expr(|e| count_expr(e, m));
    });
}

fn count_expr(e: &Expr, m: &mut HashMap<Var, usize>) {
    if let Expr::Var(v) = e {
        *m.entry(*v).or_default() += 1;
    }
    e.for_each_child(|c| count_expr(c, m));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::build::{bin, load, un};
    use crate::schedule::eval::{Eval, f32_bytes as bytes};

    /// Runs `p` before and after vectorization on the same inputs and
    /// checks the outputs are identical; returns the vectorized loop count.
    fn check(mut p: Program, ins: &[(Buf, usize)], out: (Buf, usize)) -> usize {
        let data = |k: usize, n: usize| -> Vec<f32> {
            (0..n)
                .map(|j| ((j * 7 + k * 3) % 11) as f32 * 0.37 - 1.5)
                .collect()
        };
        let run = |p: &Program| {
            let mut ev = Eval::new(p);
            for (k, (b, n)) in ins.iter().enumerate() {
                ev.mem.insert(*b, bytes(&data(k, *n)));
            }
            ev.mem
                .entry(out.0)
                .or_insert_with(|| bytes(&vec![9.0; out.1]));
            ev.run();
            ev.f32s(out.0)
        };
        let before = run(&p);
        let n = vectorize(&mut p);
        let after = run(&p);
        assert_eq!(before, after, "{}", p.print());
        n
    }

    /// `out[r, c] = (x[r, c] + s[r]) * 0.5 - |t|` with a temporary `t`, over
    /// `rows × cols`.
    fn rowwise(rows: i64, cols: i64, start: Expr) -> Program {
        let mut p = Program::default();
        let (r, c, t) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::F32));
        let idx = add(mul(var(r), i(cols)), var(c));
        p.body = vec![Stmt::for_loop(
            r,
            i(0),
            i(rows),
            vec![Stmt::for_loop(
                c,
                start,
                i(cols),
                vec![
                    Stmt::Set(t, load(Buf::Input(0), idx.clone(), Scalar::F32)),
                    Stmt::Store {
                        buf: Buf::Output(0),
                        index: idx,
                        value: bin(
                            BinOp::Sub,
                            mul(
                                add(var(t), load(Buf::Input(1), var(r), Scalar::F32)),
                                Expr::F(0.5, Scalar::F32),
                            ),
                            un(UnOp::Abs, var(t)),
                        ),
                    },
                ],
            )],
        )];
        p
    }

    #[test]
    fn unit_stride_loops_vectorize_with_a_remainder() {
        for (rows, cols) in [(3, 8), (2, 11), (1, 4), (2, 5)] {
            let p = rowwise(rows, cols, i(0));
            let n = (rows * cols) as usize;
            assert_eq!(
                check(
                    p,
                    &[(Buf::Input(0), n), (Buf::Input(1), 3)],
                    (Buf::Output(0), n)
                ),
                1
            );
        }
        // A start that is not a constant: the trip count is computed.
        let p = rowwise(3, 10, var(Var(0)));
        assert_eq!(
            check(
                p,
                &[(Buf::Input(0), 30), (Buf::Input(1), 3)],
                (Buf::Output(0), 30)
            ),
            1
        );
        // Too short for one vector: left alone.
        let p = rowwise(2, 3, i(0));
        assert_eq!(
            check(
                p,
                &[(Buf::Input(0), 6), (Buf::Input(1), 3)],
                (Buf::Output(0), 6)
            ),
            0
        );
    }

    /// 8- and 16-lane vectors (AVX2, AVX-512): the vector loop, the
    /// remainder on 4-lane vectors and scalars, and loops too short for one
    /// wide vector (4-lane vectors) or any (left alone).
    #[test]
    fn wide_vectors_follow_the_lane_count() {
        for lanes in [8u8, 16] {
            let l = i64::from(lanes);
            for (rows, cols) in [
                (2, l),
                (3, l + 3),
                (1, 3 * l - 1),
                (2, 37),
                (2, l - 1),
                (2, 7),
                (1, 3),
            ] {
                let mut p = rowwise(rows, cols, i(0));
                p.shape.f32_lanes = lanes;
                let n = (rows * cols) as usize;
                let count = check(
                    p.clone(),
                    &[(Buf::Input(0), n), (Buf::Input(1), 3)],
                    (Buf::Output(0), n),
                );
                assert_eq!(
                    count,
                    usize::from(cols >= 4),
                    "{lanes} lanes, {rows} x {cols}"
                );
                vectorize(&mut p);
                let text = p.print();
                assert_eq!(text.contains(&format!("f32x{lanes}")), cols >= l, "{text}");
                // The rest (or a row too short for one wide vector) runs on
                // 4-lane vectors first.
                assert_eq!(text.contains("f32x4"), cols % l >= 4, "{text}");
            }
        }
    }

    /// A start that is not a constant with 16 lanes: both vector loops
    /// compute their trip counts.
    #[test]
    fn wide_vectors_with_a_computed_trip_count() {
        let mut p = rowwise(3, 29, var(Var(0)));
        p.shape.f32_lanes = 16;
        let n = check(
            p,
            &[(Buf::Input(0), 87), (Buf::Input(1), 3)],
            (Buf::Output(0), 87),
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn clamps_against_constants_vectorize() {
        use crate::kernel::build::{cmp, select};
        let mut p = Program::default();
        let (c, t) = (p.var(Scalar::I64), p.var(Scalar::F32));
        let (lo, hi) = (Expr::F(-0.5, Scalar::F32), Expr::F(1.0, Scalar::F32));
        p.body = vec![Stmt::for_loop(
            c,
            i(0),
            i(10),
            vec![
                Stmt::Set(
                    t,
                    select(
                        cmp(
                            CmpOp::Lt,
                            load(Buf::Input(0), var(c), Scalar::F32),
                            lo.clone(),
                        ),
                        lo,
                        load(Buf::Input(0), var(c), Scalar::F32),
                    ),
                ),
                Stmt::Store {
                    buf: Buf::Output(0),
                    index: var(c),
                    value: select(cmp(CmpOp::Gt, var(t), hi.clone()), hi, var(t)),
                },
            ],
        )];
        assert_eq!(check(p, &[(Buf::Input(0), 10)], (Buf::Output(0), 10)), 1);
    }

    #[test]
    fn in_place_is_vectorized_but_shifted_reads_and_gathers_are_not() {
        let mk = |load_idx: fn(Var) -> Expr| {
            let mut p = Program::default();
            let c = p.var(Scalar::I64);
            p.body = vec![Stmt::for_loop(
                c,
                i(0),
                i(13),
                vec![Stmt::Store {
                    buf: Buf::Output(0),
                    index: var(c),
                    value: add(
                        load(Buf::Output(0), load_idx(c), Scalar::F32),
                        Expr::F(1.0, Scalar::F32),
                    ),
                }],
            )];
            p
        };
        // out[c] = out[c] + 1: in place.
        assert_eq!(
            check(mk(var), &[(Buf::Output(0), 16)], (Buf::Output(0), 16)),
            1
        );
        // out[c] = out[c - 1] + 1 (a prefix recurrence): must stay scalar.
        let shifted = mk(|c| {
            bin(
                BinOp::Max,
                Expr::Bin(BinOp::Sub, Box::new(var(c)), Box::new(i(1))),
                i(0),
            )
        });
        assert_eq!(
            check(shifted, &[(Buf::Output(0), 16)], (Buf::Output(0), 16)),
            0
        );
        // out[c] = out[2c mod 13] + 1 (a gather): must stay scalar.
        let gather = mk(|c| bin(BinOp::Rem, mul(var(c), i(2)), i(13)));
        assert_eq!(
            check(gather, &[(Buf::Output(0), 16)], (Buf::Output(0), 16)),
            0
        );
    }
}
