//! Lowering of the Gather family, with the index walkers the scatters and
//! Compress share. An index is checked against the axis (`[-d, d)`: a run
//! with an index outside fails, naming the node and the index), wrapped like
//! the interpreter wraps a valid one and then clamped into the axis, so
//! even an unchecked program (`--unchecked`) never reads outside the
//! buffer.

use smelt_ir::shape::strides;

use super::super::{NodeResult, Operand, flat_index, loop_nest, operand};
use super::{Node, add0, axis_of, copy_run, mulk, split_at};
use crate::kernel::build::{add, bin, cast, cmp, i, select, var};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, Var};

/// Lowers `Gather`.
pub(super) fn lower_gather(a: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let idx = operand(ins, 1, "indices")?;
    let ax = axis_of(a, rank)?;
    gather_rows(p, &x, &idx, out, split_at(&x.shape, ax))
}

/// Lowers `GatherElements`.
pub(super) fn lower_gather_elements(a: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let idx = operand(ins, 1, "indices")?;
    let ax = axis_of(a, rank)?;
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    let (d, stride) = (x.shape[ax], strides(&x.shape)[ax]);
    if d == 0 {
        return Err("GatherElements from an empty axis has no valid index".into());
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    Ok(over_elements(p, &x.shape, &idx.shape, ax, |p, base, at| {
        let (mut s, k) = read_index(p, &idx, at.clone(), d);
        s.push(Stmt::Store {
            buf: out_c.buf,
            index: at,
            value: x_c.load(add0(base, mulk(k, stride as i64))),
        });
        s
    }))
}

/// Lowers `GatherND`.
pub(super) fn lower_gather_nd(batch_dims: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let idx = operand(ins, 1, "indices")?;
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    let b = batch_dims as usize;
    let k = *idx.shape.last().ok_or("scalar indices")?;
    if x.shape[b..b + k].contains(&0) {
        return Err("GatherND from an empty axis has no valid index".into());
    }
    let len: usize = x.shape[b + k..].iter().product();
    let (x_c, out_c) = (x.clone(), out.clone());
    Ok(over_tuples(p, &x.shape, &idx, b, k, |p, off, t| {
        copy_run(p, &x_c, off, &out_c, mulk(t, len as i64), len)
    }))
}

/// Reads index `at` of an index operand into a fresh `I64` variable and
/// checks it against `[-d, d)` (the run fails on an index outside); the
/// index is then wrapped (negative counts from the end) and clamped into
/// `0..d`. Valid indices give exactly the interpreter's element; with the
/// check dropped (`--unchecked`) invalid ones stay inside the axis. Returns
/// the statements that read and check the index, and the index to use.
pub(in crate::lower) fn read_index(
    p: &mut Program,
    idx: &Operand,
    at: Expr,
    d: usize,
) -> (Vec<Stmt>, Expr) {
    let (set, v, k) = wrap_index(p, idx, at, d);
    let mut s = vec![set];
    s.extend(p.check(var(v), "index", -(d as i64), d as i64));
    (s, k)
}

/// [`read_index`] without the check: the statement reading the index into a
/// fresh variable, the variable, and the wrapped and clamped index.
fn wrap_index(p: &mut Program, idx: &Operand, at: Expr, d: usize) -> (Stmt, Var, Expr) {
    let v = p.var(Scalar::I64);
    let raw = cast(Scalar::I64, idx.load(at));
    let d = d as i64;
    let wrapped = select(cmp(CmpOp::Lt, var(v), i(0)), add(var(v), i(d)), var(v));
    let clamped = bin(BinOp::Max, bin(BinOp::Min, wrapped, i(d - 1)), i(0));
    (Stmt::Set(v, raw), v, clamped)
}

/// One loop checking every index of `idx` against `[-d, d)`, for a kernel
/// that reads each index many times: the checks are made once, before it,
/// instead of in its inner loops.
fn check_all(p: &mut Program, idx: &Operand, d: usize) -> Vec<Stmt> {
    if p.unchecked {
        return Vec::new();
    }
    loop_nest(p, &[idx.numel()], |p, lp| {
        let (set, v, _) = wrap_index(p, idx, lp[0].clone(), d);
        let mut s = vec![set];
        s.extend(p.check(var(v), "index", -(d as i64), d as i64));
        s
    })
}

/// `out[o, j, :] = x[o, idx[j], :]` for `x` viewed as `[outer, d, inner]`.
/// With more than one `o`, the indices are checked once before the copies
/// ([`check_all`]), not once per `o`.
pub(super) fn gather_rows(
    p: &mut Program,
    x: &Operand,
    idx: &Operand,
    out: &Operand,
    (outer, d, inner): (usize, usize, usize),
) -> NodeResult {
    let m = idx.numel();
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    if d == 0 {
        return Err("Gather from an empty axis has no valid index".into());
    }
    let (x_c, idx_c, out_c) = (x.clone(), idx.clone(), out.clone());
    let mut checks = if outer > 1 {
        check_all(p, idx, d)
    } else {
        Vec::new()
    };
    checks.extend(loop_nest(p, &[outer, m], |p, lp| {
        let (mut s, k) = if outer > 1 {
            let (set, _, k) = wrap_index(p, &idx_c, lp[1].clone(), d);
            (vec![set], k)
        } else {
            read_index(p, &idx_c, lp[1].clone(), d)
        };
        let src = mulk(add0(mulk(lp[0].clone(), d as i64), k), inner as i64);
        let dst = mulk(
            add0(mulk(lp[0].clone(), m as i64), lp[1].clone()),
            inner as i64,
        );
        s.extend(copy_run(p, &x_c, src, &out_c, dst, inner));
        s
    }));
    Ok(checks)
}

/// For GatherElements/ScatterElements: loops over the index tensor and calls
/// `body(p, data_offset_without_axis, flat_index_position, indices)`.
pub(super) fn over_elements(
    p: &mut Program,
    data: &[usize],
    ishape: &[usize],
    axis: usize,
    body: impl FnOnce(&mut Program, Expr, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let ds = strides(data);
    let ishape_c = ishape.to_vec();
    loop_nest(p, ishape, |p, idx| {
        let mut base = i(0);
        for (k, e) in idx.iter().enumerate() {
            if k != axis {
                base = add0(base, mulk(e.clone(), ds[k] as i64));
            }
        }
        body(p, base, flat_index(&ishape_c, idx))
    })
}

/// For GatherND/ScatterND: loops over index tuples and calls
/// `body(p, data_offset, tuple_number)` with the tuple's data offset.
pub(super) fn over_tuples(
    p: &mut Program,
    data: &[usize],
    idx: &Operand,
    b: usize,
    k: usize,
    body: impl FnOnce(&mut Program, Expr, Expr) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let ds = strides(data);
    let batch: usize = data[..b].iter().product();
    let per_batch: usize = idx.shape[b..idx.shape.len() - 1].iter().product();
    let batch_stride: usize = data[b..].iter().product();
    let idx_c = idx.clone();
    let data_c = data.to_vec();
    loop_nest(p, &[batch, per_batch], |p, lp| {
        let t = add0(mulk(lp[0].clone(), per_batch as i64), lp[1].clone());
        let mut pre = Vec::new();
        let mut off = mulk(lp[0].clone(), batch_stride as i64);
        for j in 0..k {
            let at = add0(mulk(t.clone(), k as i64), i(j as i64));
            let (set, e) = read_index(p, &idx_c, at, data_c[b + j]);
            pre.extend(set);
            off = add0(off, mulk(e, ds[b + j] as i64));
        }
        pre.extend(body(p, off, t));
        pre
    })
}
