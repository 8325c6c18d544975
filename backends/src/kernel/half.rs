//! The half types `F16` and `BF16`: their conversions to and from `f32` as
//! kernel-IR integer expressions, and [`expand_halves`], the pass that
//! rewrites a program's half-typed loads, stores, casts and variables into
//! `U16` memory accesses, those conversions and `f32` arithmetic.
//!
//! The conversions are written once, here, with integer operations and one
//! `f32` multiply or add, so every target and both code generators convert
//! the same way (Cranelift has no usable f16 type; LLVM's `fpext half` would
//! need F16C on x86 and a libcall elsewhere). They are exact where the value
//! fits and round to nearest, ties to even, where it does not: subnormals
//! included, overflow to infinity, NaN stays NaN (quieted, sign and top
//! payload bits kept), as the `half` crate and F16C hardware convert.

use crate::kernel::build::{add, and, bitcast, cast, cmp, mul, or, select, shl, shr, sub, un};
use crate::kernel::{CmpOp, Expr, Program, Scalar, Stmt, UnOp};

/// A `U32` constant.
fn u(v: i64) -> Expr {
    Expr::I(v, Scalar::U32)
}

fn f32c(v: f64) -> Expr {
    Expr::F(v, Scalar::F32)
}

/// The IEEE binary16 value whose bits are the low 16 bits of `bits` (any
/// integer expression), as an exact `F32`: normals and infinities by moving
/// the fields, subnormals as `mantissa · 2^-24` (exact, and a normal f32),
/// NaNs keep sign and payload and are made quiet (as F16C hardware and the
/// `half` crate do).
pub fn half_to_f32(bits: Expr) -> Expr {
    let h = and(cast(Scalar::U32, bits), u(0xffff));
    let man = and(h.clone(), u(0x3ff));
    let exp = and(h.clone(), u(0x7c00));
    // Exponent and mantissa moved into place; rebiased (+112) in integers.
    let mag = shl(and(h.clone(), u(0x7fff)), u(13));
    let quiet = select(cmp(CmpOp::Ne, man.clone(), u(0)), u(0x40_0000), u(0));
    let special = or(or(mag.clone(), u(0x7f80_0000)), quiet);
    let normal = add(mag, u(112 << 23));
    let tiny = bitcast(
        Scalar::U32,
        mul(cast(Scalar::F32, man), f32c(2f64.powi(-24))),
    );
    let abs = select(
        cmp(CmpOp::Eq, exp.clone(), u(0)),
        tiny,
        select(cmp(CmpOp::Eq, exp, u(0x7c00)), special, normal),
    );
    bitcast(Scalar::F32, or(abs, shl(and(h, u(0x8000)), u(16))))
}

/// The bfloat16 value whose bits are the low 16 bits of `bits` (any integer
/// expression), as an exact `F32`; NaNs are made quiet (as the `half` crate
/// does).
pub fn bf16_to_f32(bits: Expr) -> Expr {
    let b = and(cast(Scalar::U32, bits), u(0xffff));
    let nan = cmp(CmpOp::Gt, and(b.clone(), u(0x7fff)), u(0x7f80));
    let b = select(nan, or(b.clone(), u(0x40)), b);
    bitcast(Scalar::F32, shl(b, u(16)))
}

/// The binary16 bits (`U16`) of the `F32` value `x` rounded to nearest,
/// ties to even: infinity from 65520 up, subnormals below 2^-14, a NaN
/// quiet with its sign and top payload bits. `x` is evaluated several
/// times: pass a variable.
pub fn f32_to_half(x: Expr) -> Expr {
    let b = bitcast(Scalar::U32, x);
    let sign = and(shr(b.clone(), u(16)), u(0x8000));
    let a = and(b, u(0x7fff_ffff));
    let nan = or(u(0x7e00), and(shr(a.clone(), u(13)), u(0x3ff)));
    // Normal results: the exponent rebiased (−112) and the 13 dropped bits
    // rounded to nearest even; a carry moves into the exponent, up to
    // infinity (0x7c00) from 65520 on.
    let t = sub(a.clone(), u(112 << 23));
    let round = and(shr(t.clone(), u(13)), u(1));
    let normal = shr(add(add(t, u(0xfff)), round), u(13));
    // Subnormal results (|x| < 2^-14): 0.5 + |x| has a unit in the last
    // place of 2^-24, so the FPU's own rounding leaves |x| / 2^-24 rounded
    // to nearest even in its low bits.
    let sum = add(bitcast(Scalar::F32, a.clone()), f32c(0.5));
    let tiny = sub(bitcast(Scalar::U32, sum), u(0x3f00_0000));
    let mag = select(
        cmp(CmpOp::Gt, a.clone(), u(0x7f80_0000)),
        nan,
        select(
            cmp(CmpOp::Ge, a.clone(), u(0x4780_0000)),
            u(0x7c00),
            select(cmp(CmpOp::Ge, a, u(0x3880_0000)), normal, tiny),
        ),
    );
    cast(Scalar::U16, or(mag, sign))
}

/// The bfloat16 bits (`U16`) of the `F32` value `x` rounded to nearest,
/// ties to even (overflow to infinity), a NaN quiet with its sign and top
/// payload bits. `x` is evaluated several times: pass a variable.
pub fn f32_to_bf16(x: Expr) -> Expr {
    let b = bitcast(Scalar::U32, x);
    let nan = cmp(CmpOp::Gt, and(b.clone(), u(0x7fff_ffff)), u(0x7f80_0000));
    let quiet = or(shr(b.clone(), u(16)), u(0x40));
    let round = and(shr(b.clone(), u(16)), u(1));
    let near = shr(add(add(b, u(0x7fff)), round), u(16));
    cast(Scalar::U16, select(nan, quiet, near))
}

/// The `F32` value of half type `ty` whose bits (`U16`) are `bits`.
fn widen(ty: Scalar, bits: Expr) -> Expr {
    if ty == Scalar::BF16 {
        bf16_to_f32(bits)
    } else {
        half_to_f32(bits)
    }
}

/// The bits (`U16`) of the `F32` value `x` rounded to half type `ty`; `x`
/// is evaluated several times.
fn narrow(ty: Scalar, x: Expr) -> Expr {
    if ty == Scalar::BF16 {
        f32_to_bf16(x)
    } else {
        f32_to_half(x)
    }
}

/// The `F64` value `x` (a variable) as an `F32` rounded to odd: truncated
/// toward zero, its last bit set when that was inexact. Rounding that to a
/// half type (11 or 8 bits, at most 22 bits fewer than `f32`'s 24) gives the
/// correctly rounded half, which rounding to nearest twice would not always.
fn f64_to_f32_odd(p: &mut Program, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let y = crate::mathexp::bind(p, cast(Scalar::F32, x.clone()), pre);
    let bits = bitcast(Scalar::U32, y.clone());
    let away = cmp(
        CmpOp::Gt,
        un(UnOp::Abs, cast(Scalar::F64, y)),
        un(UnOp::Abs, x.clone()),
    );
    let toward = select(away, sub(bits.clone(), u(1)), bits);
    let t = crate::mathexp::bind(p, toward, pre);
    let inexact = cmp(
        CmpOp::Ne,
        cast(Scalar::F64, bitcast(Scalar::F32, t.clone())),
        x,
    );
    bitcast(Scalar::F32, select(inexact, or(t.clone(), u(1)), t))
}

/// The bits (`U16`) of `x`, an expanded expression of type `from` (not a
/// half type), converted to half type `to` with one rounding.
fn to_half_bits(p: &mut Program, to: Scalar, from: Scalar, x: Expr, pre: &mut Vec<Stmt>) -> Expr {
    let single = match from {
        Scalar::F32 => x,
        // Integers go through `f64`, exactly up to 2^53.
        Scalar::F64 => {
            let x = crate::mathexp::bind(p, x, pre);
            f64_to_f32_odd(p, x, pre)
        }
        _ => {
            let x = crate::mathexp::bind(p, cast(Scalar::F64, x), pre);
            f64_to_f32_odd(p, x, pre)
        }
    };
    let v = crate::mathexp::bind(p, single, pre);
    narrow(to, v)
}

/// Rewrites every use of the half types `F16` and `BF16` in `p`, so no
/// code generator sees them: a half-typed load becomes a `U16` load and
/// [`half_to_f32`] (or [`bf16_to_f32`]); a half-typed value is computed in
/// `f32` (its variables, constants and arithmetic become `F32`); a store of
/// a half-typed value rounds it to the buffer's type ([`f32_to_half`],
/// [`f32_to_bf16`]) and stores the `U16` bits, but a copy of a half load
/// to a buffer of the same type moves the bits unchanged; a `Cast` to a
/// half type rounds where it stands (once: from `f64` and integers through
/// [`f64_to_f32_odd`]). Values are bound to variables before a conversion
/// that reads them more than once. Vector forms of half types are refused:
/// the vectorizer runs after this pass and sees only the expanded form.
pub fn expand_halves(p: &mut Program) -> Result<(), String> {
    if !has_halves(p) {
        return Ok(());
    }
    // Original expressions are typed by the original variables; expanded
    // ones (and the variables `bind` makes) by the new ones.
    let orig = Program {
        vars: p.vars.clone(),
        var_lanes: p.var_lanes.clone(),
        ..Program::default()
    };
    for t in &mut p.vars {
        *t = t.compute();
    }
    let body = std::mem::take(&mut p.body);
    p.body = stmts(p, &orig, body)?;
    Ok(())
}

/// Whether any variable or expression of `p` has a half type.
pub fn has_halves(p: &Program) -> bool {
    let mut found = p.vars.iter().any(|t| t.is_half());
    for s in &p.body {
        s.walk(&mut |s| s.for_each_expr(|e| found |= mentions_half(p, e)));
    }
    found
}

/// The code generators' check that [`expand_halves`] has run: an error
/// naming the pass when a half type is left.
pub fn check_expanded(p: &Program) -> Result<(), String> {
    if has_halves(p) {
        return Err(
            "the program has f16/bf16 values: run the expand-halves pass \
                    (`pipeline::run`) before code generation"
                .into(),
        );
    }
    Ok(())
}

/// Whether `e` (or an operand) has a half type.
fn mentions_half(p: &Program, e: &Expr) -> bool {
    let mut found =
        p.ty(e).is_half() || matches!(e, Expr::Cast(t, _) | Expr::Bitcast(t, _) if t.is_half());
    e.for_each_child(|c| found |= mentions_half(p, c));
    found
}

fn stmts(p: &mut Program, orig: &Program, body: Vec<Stmt>) -> Result<Vec<Stmt>, String> {
    let mut out = Vec::with_capacity(body.len());
    for s in body {
        let mut pre = Vec::new();
        let s = match s {
            Stmt::Store { buf, index, value } => {
                let ty = orig.ty(&value);
                let index = expr(p, orig, index, &mut pre)?;
                let value = if ty.is_half() {
                    store_bits(p, orig, ty, value, &mut pre)?
                } else {
                    expr(p, orig, value, &mut pre)?
                };
                Stmt::Store { buf, index, value }
            }
            Stmt::VStore { ref value, .. } if orig.ty(value).is_half() => {
                return Err("vector stores of half types are not expanded".into());
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => Stmt::For {
                var,
                start: expr(p, orig, start, &mut pre)?,
                end: expr(p, orig, end, &mut pre)?,
                body: stmts(p, orig, body)?,
            },
            Stmt::If(c, t, e) => Stmt::If(
                expr(p, orig, c, &mut pre)?,
                stmts(p, orig, t)?,
                stmts(p, orig, e)?,
            ),
            Stmt::Parallel { var, extent, body } => Stmt::Parallel {
                var,
                extent,
                body: stmts(p, orig, body)?,
            },
            other @ (Stmt::Set(..) | Stmt::VStore { .. } | Stmt::Copy(_) | Stmt::Check { .. }) => {
                other.try_map_exprs(|e| expr(p, orig, e, &mut pre))?
            }
        };
        out.append(&mut pre);
        out.push(s);
    }
    Ok(out)
}

/// The `U16` bits a store of `value` (of half type `ty`) writes.
fn store_bits(
    p: &mut Program,
    orig: &Program,
    ty: Scalar,
    value: Expr,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
    Ok(match value {
        // The same type moved: its bits, unchanged.
        Expr::Load { buf, index, ty: t } if t == ty => Expr::Load {
            buf,
            index: Box::new(expr(p, orig, *index, pre)?),
            ty: Scalar::U16,
        },
        // The store rounds; the cast need not round first.
        Expr::Cast(t, a) if t == ty => {
            let from = orig.ty(&a).compute();
            let a = expr(p, orig, *a, pre)?;
            to_half_bits(p, ty, from, a, pre)
        }
        v => {
            let v = expr(p, orig, v, pre)?;
            to_half_bits(p, ty, Scalar::F32, v, pre)
        }
    })
}

/// `e` expanded: the same value, computed in `f32` where `e` has a half
/// type; statements it needs first are appended to `pre`.
fn expr(p: &mut Program, orig: &Program, e: Expr, pre: &mut Vec<Stmt>) -> Result<Expr, String> {
    Ok(match e {
        Expr::F(v, t) if t.is_half() => Expr::F(v, Scalar::F32),
        Expr::Load { buf, index, ty } if ty.is_half() => {
            let index = expr(p, orig, *index, pre)?;
            let bits = crate::mathexp::bind(
                p,
                cast(
                    Scalar::U32,
                    crate::kernel::build::load(buf, index, Scalar::U16),
                ),
                pre,
            );
            widen(ty, bits)
        }
        Expr::VLoad { ty, .. } if ty.is_half() => {
            return Err("vector loads of half types are not expanded".into());
        }
        Expr::Cast(to, a) => {
            let from = orig.ty(&a).compute();
            let a = expr(p, orig, *a, pre)?;
            if to.is_half() {
                let bits = to_half_bits(p, to, from, a, pre);
                let bits = crate::mathexp::bind(p, bits, pre);
                widen(to, bits)
            } else if to == from {
                a
            } else {
                cast(to, a)
            }
        }
        Expr::Bitcast(to, a) => {
            let from = orig.ty(&a);
            let a = expr(p, orig, *a, pre)?;
            let bits = if from.is_half() {
                let v = crate::mathexp::bind(p, a, pre);
                narrow(from, v)
            } else {
                a
            };
            if to.is_half() {
                let bits = crate::mathexp::bind(p, bits, pre);
                widen(to, bits)
            } else if from.is_half() && to == Scalar::U16 {
                bits
            } else {
                bitcast(to, bits)
            }
        }
        other => other.try_map_children(|c| expr(p, orig, c, pre))?,
    })
}

#[cfg(test)]
mod tests;
