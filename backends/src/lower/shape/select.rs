//! Lowering of Compress, ReverseSequence and CenterCropPad.

use super::gather::gather_rows;

use super::super::{NodeResult, loop_nest, operand};
use super::{
    Node, add0, axis_of, const_ints, const_tensor, copy_all, copy_run, i64_table, lit, mulk, remap,
    split_at,
};
use crate::kernel::build::{bin, cast, cmp, i, sub, var};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt};

/// Lowers `Compress`.
pub(super) fn lower_compress(a: Option<i64>, node: Node<'_>, p: &mut Program) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let cond = const_tensor(&operand(ins, 1, "condition")?, p)?;
    let kept: Vec<i64> = cond
        .to_i64_vec()
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(k, _)| k as i64)
        .collect();
    let table = i64_table(p, &kept);
    let dims = match a {
        None => (1, x.numel(), 1),
        Some(a) => split_at(&x.shape, axis_of(a, rank)?),
    };
    gather_rows(p, &x, &table, out, dims)
}

/// Lowers `ReverseSequence`.
pub(super) fn lower_reverse_sequence(
    batch_axis: usize,
    time_axis: usize,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let lens = operand(ins, 1, "sequence_lens")?;
    let (bd, td) = (x.shape[batch_axis], x.shape[time_axis]);
    let inner: usize = x.shape[2..].iter().product();
    let d1 = x.shape[1] as i64;
    let ba = batch_axis;
    let at = move |b: Expr, t: Expr| {
        let (i0, i1) = if ba == 0 { (b, t) } else { (t, b) };
        mulk(add0(mulk(i0, d1), i1), inner as i64)
    };
    let mut s = copy_all(&x, out);
    let (x_c, out_c) = (x.clone(), out.clone());
    let lv = p.var(Scalar::I64);
    s.extend(loop_nest(p, &[bd, td], |p, idx| {
        // Clamp the length into 0..=td so no row outside the axis is read.
        let l = bin(
            BinOp::Max,
            bin(
                BinOp::Min,
                cast(Scalar::I64, lens.load(idx[0].clone())),
                i(td as i64),
            ),
            i(0),
        );
        let src_t = sub(sub(var(lv), i(1)), idx[1].clone());
        let body = copy_run(
            p,
            &x_c,
            at(idx[0].clone(), src_t),
            &out_c,
            at(idx[0].clone(), idx[1].clone()),
            inner,
        );
        vec![
            Stmt::Set(lv, l),
            Stmt::If(cmp(CmpOp::Lt, idx[1].clone(), var(lv)), body, vec![]),
        ]
    }));
    Ok(s)
}

/// Lowers `CenterCropPad`.
pub(super) fn lower_center_crop_pad(
    axes: Option<&[i64]>,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    let rank = x.shape.len();
    let target = const_ints(&operand(ins, 1, "shape")?, p)?;
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| axis_of(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let mut maps: Vec<Vec<Option<usize>>> = x
        .shape
        .iter()
        .map(|&d| (0..d).map(Some).collect())
        .collect();
    for (&ax, &t) in axes.iter().zip(&target) {
        let (t, d) = (t.max(0) as usize, x.shape[ax]);
        let off = if t <= d {
            ((d - t) / 2) as i64
        } else {
            -(((t - d) / 2) as i64)
        };
        maps[ax] = (0..t as i64)
            .map(|o| {
                let k = o + off;
                (0..d as i64).contains(&k).then_some(k as usize)
            })
            .collect();
    }
    Ok(remap(p, &x, out, &maps, lit(0.0, out.ty)))
}
