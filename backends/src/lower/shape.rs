//! Lowering of the layout family: views that keep the bytes (Reshape,
//! Flatten, Squeeze, Unsqueeze, Identity, inference Dropout) become copies
//! (aliasing them away is a memory-plan improvement for later); Transpose and
//! Concat become loop nests.

use smelt_ir::ops::layout::Layout;

use super::{NodeResult, Operand, flat_index, loop_nest};
use crate::kernel::build::{add, i};
use crate::kernel::{Expr, Program, Stmt};

fn copy_all(src: &Operand, dst: &Operand) -> Stmt {
    let bytes = (src.numel() as u64 * src.ty.bytes()) as i64;
    Stmt::Copy {
        dst: dst.buf,
        dst_off: i(0),
        src: src.buf,
        src_off: i(0),
        bytes: i(bytes),
    }
}

/// Lowers one node of the layout family.
pub fn lower(l: &Layout, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let x = ins.first().cloned().flatten().ok_or("no input")?;
    let out = &outs[0];
    match l {
        Layout::Reshape { .. }
        | Layout::Flatten { .. }
        | Layout::Squeeze { .. }
        | Layout::Unsqueeze { .. }
        | Layout::Identity => Ok(vec![copy_all(&x, out)]),
        Layout::Dropout { outputs, .. } if *outputs == 1 => Ok(vec![copy_all(&x, out)]),
        Layout::Transpose { perm } => {
            let rank = x.shape.len();
            let perm: Vec<usize> = match perm {
                Some(p) => p
                    .iter()
                    .map(|&a| {
                        if a < 0 {
                            (a + rank as i64) as usize
                        } else {
                            a as usize
                        }
                    })
                    .collect(),
                None => (0..rank).rev().collect(),
            };
            let out_c = out.clone();
            Ok(loop_nest(p, &out.shape, |_, idx| {
                // Output index o maps to input index with in[perm[d]] = o[d].
                let mut in_idx: Vec<Expr> = vec![i(0); rank];
                for (d, &pd) in perm.iter().enumerate() {
                    in_idx[pd] = idx[d].clone();
                }
                vec![Stmt::Store {
                    buf: out_c.buf,
                    index: flat_index(&out_c.shape, idx),
                    value: x.load(flat_index(&x.shape, &in_idx)),
                }]
            }))
        }
        Layout::Concat { axis } => {
            let rank = out.shape.len() as i64;
            let ax = if *axis < 0 { axis + rank } else { *axis } as usize;
            let mut stmts = Vec::new();
            let mut offset = 0usize;
            for src in ins.iter().flatten() {
                let out_c = out.clone();
                let src_c = src.clone();
                let off = offset;
                stmts.extend(loop_nest(p, &src.shape, |_, idx| {
                    let mut o = idx.to_vec();
                    o[ax] = add(o[ax].clone(), i(off as i64));
                    vec![Stmt::Store {
                        buf: out_c.buf,
                        index: flat_index(&out_c.shape, &o),
                        value: src_c.load(flat_index(&src_c.shape, idx)),
                    }]
                }));
                offset += src.shape[ax];
            }
            Ok(stmts)
        }
        _ => Err("no native kernel for this op yet".into()),
    }
}
