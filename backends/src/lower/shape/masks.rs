//! Lowering of Trilu, EyeLike, OneHot and NonZero.

use smelt_ir::OpDef;
use smelt_ir::ops::layout::Layout;
use smelt_ir::shape::norm_axis_inclusive;

use super::super::{NodeResult, Operand, flat_index, input, loop_nest, operand};
use super::{Node, add0, const_tensor, copy_all, lit, mulk};
use crate::kernel::build::{add, bin, cast, cmp, i, select, sub, var};
use crate::kernel::{BinOp, Buf, CmpOp, Program, Scalar, Stmt};

/// Lowers `Trilu`.
pub(super) fn lower_trilu(upper: bool, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    // k may be a run-time scalar.
    let k = match input(ins, 1) {
        Some(t) if t.numel() == 1 => cast(Scalar::I64, t.load(i(0))),
        _ => i(0),
    };
    let (rows, cols) = (x.shape[rank - 2], x.shape[rank - 1]);
    let batch: usize = x.shape[..rank - 2].iter().product();
    let kv = p.var(Scalar::I64);
    let (x_c, out_c) = (x.clone(), out.clone());
    let mut s = vec![Stmt::Set(kv, k)];
    s.extend(loop_nest(p, &[batch, rows, cols], |_, idx| {
        let at = flat_index(&[batch, rows, cols], idx);
        // Column minus row is small, so the comparison cannot overflow.
        let diag = sub(idx[2].clone(), idx[1].clone());
        let keep = if upper {
            cmp(CmpOp::Ge, diag, var(kv))
        } else {
            cmp(CmpOp::Le, diag, var(kv))
        };
        vec![Stmt::Store {
            buf: out_c.buf,
            index: at.clone(),
            value: select(keep, x_c.load(at), lit(0.0, out_c.ty)),
        }]
    }));
    Ok(s)
}

/// Lowers `EyeLike`.
pub(super) fn lower_eye_like(k: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { out, .. } = node;
    let (rows, cols) = (out.shape[0], out.shape[1]);
    let out_c = out.clone();
    Ok(loop_nest(p, &[rows, cols], |_, idx| {
        let on = cmp(CmpOp::Eq, sub(idx[1].clone(), idx[0].clone()), i(k));
        vec![Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&[rows, cols], idx),
            value: select(on, lit(1.0, out_c.ty), lit(0.0, out_c.ty)),
        }]
    }))
}

/// Lowers `OneHot`.
pub(super) fn lower_one_hot(a: i64, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let values = operand(ins, 2, "values")?;
    let ax = norm_axis_inclusive(a, rank).map_err(|e| e.to_string())?;
    let depth = out.shape[ax];
    let pre: usize = x.shape[..ax].iter().product();
    let post: usize = x.shape[ax..].iter().product();
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    let h = p.var(Scalar::I64);
    Ok(loop_nest(p, &[pre, depth, post], |_, idx| {
        let xv = x_c.load(add0(mulk(idx[0].clone(), post as i64), idx[2].clone()));
        let iv = cast(Scalar::I64, xv.clone());
        // Float indices match only when integral, like the reference's `==`.
        let integral = if x_c.ty.is_float() {
            Some(cmp(CmpOp::Eq, cast(x_c.ty, var(h)), xv))
        } else {
            None
        };
        let wrapped = select(
            cmp(CmpOp::Lt, var(h), i(0)),
            add(var(h), i(depth as i64)),
            var(h),
        );
        let mut hot = cmp(CmpOp::Eq, wrapped, idx[1].clone());
        if let Some(g) = integral {
            hot = bin(BinOp::And, hot, g);
        }
        vec![
            Stmt::Set(h, iv),
            Stmt::Store {
                buf: out_c.buf,
                index: flat_index(&[pre, depth, post], idx),
                value: select(hot, values.load(i(1)), values.load(i(0))),
            },
        ]
    }))
}

/// Lowers `NonZero`.
pub(super) fn lower_non_zero(l: &Layout, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, out, .. } = node;
    // The input is a compile-time constant: evaluate at compile time.
    let t = const_tensor(&x, p)?;
    let res = l.eval(&[Some(&t)]).map_err(|e| e.to_string())?;
    p.consts.push(res[0].to_le_bytes());
    let src = Operand {
        buf: Buf::Const(p.consts.len() as u32 - 1),
        shape: out.shape.clone(),
        ty: out.ty,
    };
    Ok(copy_all(&src, out))
}
