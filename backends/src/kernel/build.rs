//! Builders that keep lowering code short.

use super::*;

/// An `I64` constant.
pub fn i(v: i64) -> Expr {
    Expr::I(v, Scalar::I64)
}
/// A variable reference.
pub fn var(v: Var) -> Expr {
    Expr::Var(v)
}
/// `a + b`.
pub fn add(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Add, Box::new(a), Box::new(b))
}
/// `a * b`.
pub fn mul(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Mul, Box::new(a), Box::new(b))
}
/// `a - b`.
pub fn sub(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Sub, Box::new(a), Box::new(b))
}
/// A binary op.
pub fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Bin(op, Box::new(a), Box::new(b))
}
/// A unary op.
pub fn un(op: UnOp, a: Expr) -> Expr {
    Expr::Un(op, Box::new(a))
}
/// A comparison.
pub fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
    Expr::Cmp(op, Box::new(a), Box::new(b))
}
/// `c ? a : b`.
pub fn select(c: Expr, a: Expr, b: Expr) -> Expr {
    Expr::Select(Box::new(c), Box::new(a), Box::new(b))
}
/// A load.
pub fn load(buf: Buf, index: Expr, ty: Scalar) -> Expr {
    Expr::Load {
        buf,
        index: Box::new(index),
        ty,
    }
}
/// A conversion.
pub fn cast(to: Scalar, a: Expr) -> Expr {
    Expr::Cast(to, Box::new(a))
}
/// `a` with its bits read as type `to` (of the same size; for a vector,
/// the same bit width).
pub fn bitcast(to: Scalar, a: Expr) -> Expr {
    Expr::Bitcast(to, Box::new(a))
}
/// Bitwise `a & b`.
pub fn and(a: Expr, b: Expr) -> Expr {
    bin(BinOp::And, a, b)
}
/// Bitwise `a | b`.
pub fn or(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Or, a, b)
}
/// `a << b`.
pub fn shl(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Shl, a, b)
}
/// `a >> b` (arithmetic for signed types).
pub fn shr(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Shr, a, b)
}
/// A float constant of type `ty`.
pub fn f(v: f64, ty: Scalar) -> Expr {
    Expr::F(v, ty)
}
/// A vector load of `lanes` elements from `index`.
pub fn vload(buf: Buf, index: Expr, ty: Scalar, lanes: u8) -> Expr {
    Expr::VLoad {
        buf,
        index: Box::new(index),
        ty,
        lanes,
    }
}
/// `a` in each of `lanes` lanes.
pub fn splat(lanes: u8, a: Expr) -> Expr {
    Expr::Splat(lanes, Box::new(a))
}
/// `a · b + c`, fused where the target can.
pub fn muladd(a: Expr, b: Expr, c: Expr) -> Expr {
    Expr::MulAdd(Box::new(a), Box::new(b), Box::new(c))
}
/// The lanes of `a` combined by `op`.
pub fn reduce(op: BinOp, a: Expr) -> Expr {
    Expr::Reduce(op, Box::new(a))
}
/// The `half` of `a`'s lanes, each widened to twice its width.
pub fn widen(half: Half, a: Expr) -> Expr {
    Expr::Widen(half, Box::new(a))
}
/// `acc + Σ a·b` by groups of four 8-bit lanes into `i32` lanes.
pub fn dot(a: Expr, b: Expr, acc: Expr) -> Expr {
    Expr::Dot(Box::new(a), Box::new(b), Box::new(acc))
}
