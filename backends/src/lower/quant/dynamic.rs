//! `DynamicQuantizeLinear`: a pass for the range of `x` (NaN-propagating
//! min and max from 0, as the interpreter folds them), the scale and zero
//! point from it in f32, then a pass quantizing each element to `u8`.

use super::super::{NodeResult, Operand, operand};
use super::QType;
use crate::kernel::build::{bin, cast, cmp, f, i, select, sub, un, var};
use crate::kernel::{BinOp, CmpOp, Program, Scalar, Stmt, UnOp};

/// Lowers `DynamicQuantizeLinear` into its three outputs.
pub(super) fn lower(ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let x = operand(ins, 0, "x")?;
    let [y, y_scale, y_zp] = outs else {
        return Err("DynamicQuantizeLinear has three outputs".into());
    };
    if x.ty != Scalar::F32 {
        return Err(format!("x of type {:?} has no native kernel", x.ty));
    }
    let u8q = QType::of(Scalar::U8)?;
    let f32c = |v: f64| f(v, Scalar::F32);
    let [hi, lo, scale, zp] = [0; 4].map(|_| p.var(Scalar::F32));
    let k = p.var(Scalar::I64);
    let n = i(x.numel() as i64);
    let range = select(
        cmp(CmpOp::Eq, var(hi), var(lo)),
        f32c(1.0),
        sub(var(hi), var(lo)),
    );
    let initial_zp = sub(f32c(0.0), bin(BinOp::Div, var(lo), var(scale)));
    // NaN → 0; else clamped to [0, 255] and rounded half to even.
    let clamped = bin(
        BinOp::Max,
        bin(BinOp::Min, initial_zp.clone(), f32c(255.0)),
        f32c(0.0),
    );
    let zp_value = select(
        cmp(CmpOp::Ne, initial_zp.clone(), initial_zp),
        f32c(0.0),
        un(UnOp::Nearest, clamped),
    );
    let zp_u8 = cast(Scalar::U8, var(zp));
    Ok(vec![
        Stmt::Set(hi, f32c(0.0)),
        Stmt::Set(lo, f32c(0.0)),
        Stmt::for_loop(
            k,
            i(0),
            n.clone(),
            vec![
                Stmt::Set(hi, bin(BinOp::Max, var(hi), x.load(var(k)))),
                Stmt::Set(lo, bin(BinOp::Min, var(lo), x.load(var(k)))),
            ],
        ),
        Stmt::Set(scale, bin(BinOp::Div, range, f32c(255.0))),
        Stmt::Set(zp, zp_value),
        Stmt::Store {
            buf: y_scale.buf,
            index: i(0),
            value: var(scale),
        },
        Stmt::Store {
            buf: y_zp.buf,
            index: i(0),
            value: zp_u8.clone(),
        },
        Stmt::for_loop(
            k,
            i(0),
            n,
            vec![Stmt::Store {
                buf: y.buf,
                index: var(k),
                value: u8q.saturate_round(
                    bin(BinOp::Div, x.load(var(k)), var(scale)),
                    Scalar::F32,
                    zp_u8,
                ),
            }],
        ),
    ])
}
