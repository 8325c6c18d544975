//! Lowering of the quant family: `QuantizeLinear` and `DequantizeLinear`
//! (`linear`), `DynamicQuantizeLinear` (`dynamic`), `MatMulInteger` and
//! `QLinearMatMul` (`matmul`), `ConvInteger` and `QLinearConv` (`conv`).
//!
//! The kernels are scalar loops, bit-exact against the interpreter
//! (`smelt_ir::ops::quant`): every float operation is the interpreter's, in
//! the same type and order, and none is fused (no [`Expr::MulAdd`]). Where the
//! interpreter computes an f32 operation in f64 and rounds the result to f32,
//! the kernel computes it in f32, which gives the same bits for `+ − × ÷`
//! (f64 has more than twice f32's precision, so the double rounding is
//! innocuous). Integer products accumulate in wrapping `i32`, on the general
//! matmul loops of [`super::linalg`] and the direct convolution schedule of
//! [`super::conv`], which take their arithmetic as hooks.
//!
//! `MatMulInteger`, `QLinearMatMul` (2-D constant `B`), `ConvInteger` and
//! `QLinearConv` (2-D, one group, constant weights) with 8-bit operands and
//! per-tensor or per-column (per-channel) weight parameters run instead on
//! the packed integer GEMM of `gemm` (weights packed by `pack`): dot
//! products of raw bytes ([`Expr::Dot`]) with the zero points applied as
//! precomputed corrections, exact in wrapping `i32` like the scalar loops,
//! and the same scalar requantization in the kernel's store.
//!
//! Half-precision scales have no native kernel yet: the dtype check of the
//! lowering refuses them before these kernels run.

mod conv;
mod dynamic;
mod gemm;
mod linear;
mod matmul;
mod pack;

use smelt_ir::ops::quant::Quant;

use super::{NodeResult, Operand};
use crate::kernel::build::{add, bin, cast, f, un};
use crate::kernel::{BinOp, Expr, Program, Scalar, UnOp};

/// Lowers one node of the quant family.
pub fn lower(q: &Quant, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let y = &outs[0];
    match q {
        Quant::QuantizeLinear(a) => linear::quantize(a, ins, y, p),
        Quant::DequantizeLinear(a) => linear::dequantize(a, ins, y, p),
        Quant::DynamicQuantizeLinear => dynamic::lower(ins, outs, p),
        Quant::MatMulInteger => matmul::matmul_integer(ins, y, p),
        Quant::QLinearMatMul => matmul::qlinear_matmul(ins, y, p),
        Quant::ConvInteger(c) => conv::conv_integer(c, ins, y, p),
        Quant::QLinearConv(c) => conv::qlinear_conv(c, ins, y, p),
    }
}

/// A quantized integer type and its saturation range.
#[derive(Clone, Copy, Debug)]
struct QType {
    ty: Scalar,
    lo: i64,
    hi: i64,
}

impl QType {
    /// The quantized type `ty` (u8, i8, u16 or i16).
    fn of(ty: Scalar) -> Result<QType, String> {
        let (lo, hi) = match ty {
            Scalar::U8 => (0, 255),
            Scalar::I8 => (-128, 127),
            Scalar::U16 => (0, 65535),
            Scalar::I16 => (-32768, 32767),
            other => return Err(format!("{other:?} is not a quantized type")),
        };
        Ok(QType { ty, lo, hi })
    }

    /// `saturate(round_half_even(q) + zp)` in this type, the interpreter's
    /// `saturate_round`: `q` a float of type `qty` (read once), `zp` an
    /// integer of any type.
    ///
    /// A NaN `q` maps to the zero point: the rounded value is first clamped
    /// to ±1e15 (NaN stays NaN; any value beyond saturates either way), then
    /// converted to `i64`, which turns NaN into 0.
    fn saturate_round(self, q: Expr, qty: Scalar, zp: Expr) -> Expr {
        let big = 1e15;
        let r = un(UnOp::Nearest, q);
        let r = bin(BinOp::Max, bin(BinOp::Min, r, f(big, qty)), f(-big, qty));
        let v = add(cast(Scalar::I64, r), cast(Scalar::I64, zp));
        let v = bin(
            BinOp::Min,
            bin(BinOp::Max, v, Expr::I(self.lo, Scalar::I64)),
            Expr::I(self.hi, Scalar::I64),
        );
        cast(self.ty, v)
    }

    /// Requantizes the `i32` sum `acc`: `saturate(round(acc · mult) + zy)`
    /// with the f32 multiplier `mult` and the product in f64, as the
    /// interpreter's `requantize` does.
    fn requantize(self, acc: Expr, mult: Expr, zy: Expr) -> Expr {
        let q = bin(BinOp::Mul, cast(Scalar::F64, acc), cast(Scalar::F64, mult));
        self.saturate_round(q, Scalar::F64, zy)
    }
}

/// The requantization multiplier `(sa · sb) / sy` in f32, rounded after each
/// operation as the interpreter rounds it.
fn multiplier(sa: Expr, sb: Expr, sy: Expr) -> Expr {
    bin(BinOp::Div, bin(BinOp::Mul, sa, sb), sy)
}

/// Checks that a scale is f32 (the only scale type with native kernels).
fn f32_scale(s: &Operand, what: &str) -> Result<(), String> {
    if s.ty != Scalar::F32 {
        return Err(format!("{what} of type {:?} has no native kernel", s.ty));
    }
    Ok(())
}

/// `x` converted to `i32` minus the zero point `z` (also converted), or `x`
/// alone when there is none.
fn centered(x: Expr, z: Option<Expr>) -> Expr {
    let x = cast(Scalar::I32, x);
    match z {
        Some(z) => bin(BinOp::Sub, x, cast(Scalar::I32, z)),
        None => x,
    }
}

#[cfg(test)]
mod tests;
