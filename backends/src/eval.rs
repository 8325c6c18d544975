//! The kernel-IR reference evaluator (tests only): every [`Expr`] and
//! [`Stmt`] form, scalars and vectors of every [`Scalar`] type, every
//! [`Buf`] kind. It computes what the generated code computes, with the
//! semantics documented at the top of `llvm/codegen.rs` (which the
//! Cranelift backend shares): `f32` arithmetic rounds every operation in
//! `f32`, integers wrap at their width, float `Min`/`Max` propagate NaN and
//! order −0 below +0, shift amounts are masked to the bit width, float →
//! int casts saturate to at least 32 bits and then truncate, `Nearest`
//! rounds half to even, `MulAdd` rounds twice (the x86-64 baseline has no
//! FMA) and `Reduce` combines lanes from lane 0.
//!
//! The schedule tests use it to check a scheduled kernel against its plain
//! form, the `mathexp` tests to check the polynomial expansions, and the
//! differential test (`difftest.rs`) to check both code generators.
//! Math functions left unexpanded (`Exp`, `Log`, `Tanh`, `Sin`, `Cos`) are
//! computed by Rust's std, in the operand's type.

use std::collections::HashMap;

use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt, UnOp};

/// A value: a scalar, or the lanes of a vector. Floats are held as `f64`
/// (an `f32` exactly), integers and bools as `i64` normalised to their
/// type (unsigned types zero-extended, `u64` by its bit pattern).
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    /// A float scalar.
    F(f64),
    /// An integer or bool scalar.
    I(i64),
    /// A vector's lanes (scalars).
    Lanes(Vec<V>),
}

impl V {
    /// The scalar as a float (an integer converted).
    pub fn f(&self) -> f64 {
        match self {
            V::F(v) => *v,
            V::I(v) => *v as f64,
            V::Lanes(_) => panic!("a vector where a scalar was expected"),
        }
    }

    /// The scalar as an integer (a float truncated).
    pub fn i(&self) -> i64 {
        match self {
            V::I(v) => *v,
            V::F(v) => *v as i64,
            V::Lanes(_) => panic!("a vector where a scalar was expected"),
        }
    }

    /// The lanes (a scalar is one lane).
    fn lanes(&self) -> Vec<V> {
        match self {
            V::Lanes(l) => l.clone(),
            s => vec![s.clone()],
        }
    }
}

/// `v` wrapped to the integer type `t` (bools to 0 or 1).
pub fn norm(v: i64, t: Scalar) -> i64 {
    match t {
        Scalar::I8 => v as i8 as i64,
        Scalar::U8 => v as u8 as i64,
        Scalar::I16 => v as i16 as i64,
        Scalar::U16 => v as u16 as i64,
        Scalar::I32 => v as i32 as i64,
        Scalar::U32 => v as u32 as i64,
        Scalar::Bool => (v != 0) as i64,
        _ => v,
    }
}

/// `v` rounded to the float type `t` as arithmetic rounds it: half types
/// compute in `f32` (the kernel IR's semantics before `expand_halves`).
pub fn fround(v: f64, t: Scalar) -> f64 {
    if t.compute() == Scalar::F32 {
        v as f32 as f64
    } else {
        v
    }
}

/// `v` rounded to the float type `t` as a cast or a store rounds it: to
/// the nearest half for the half types.
fn fround_store(v: f64, t: Scalar) -> f64 {
    match t {
        Scalar::F16 | Scalar::BF16 => from_bits(nearest_half(v, t).into(), t).f(),
        _ => fround(v, t),
    }
}

/// The bits of the `f16` (or, for `BF16`, `bf16`) nearest to `v`, ties to
/// even, rounded once. Not `half::f16::from_f64`: with F16C it converts
/// through `f32`, rounding twice. The `half` crate's `f32` conversion
/// (correct) gives a candidate at most one unit off; its neighbours decide,
/// with infinity standing for the next power of two (IEEE overflow).
fn nearest_half(v: f64, t: Scalar) -> u16 {
    let bf = t == Scalar::BF16;
    let (inf, sign): (u16, u16) = (
        if bf { 0x7f80 } else { 0x7c00 },
        if v.is_sign_negative() { 0x8000 } else { 0 },
    );
    if v.is_nan() {
        return sign | inf | if bf { 0x40 } else { 0x200 };
    }
    let m = v.abs();
    let value = |b: u16| -> f64 {
        match (b >= inf, bf) {
            (true, true) => 2f64.powi(128),
            (true, false) => 65536.0,
            (false, true) => half::bf16::from_bits(b).to_f64(),
            (false, false) => half::f16::from_bits(b).to_f64(),
        }
    };
    let c = if bf {
        half::bf16::from_f32(m as f32).to_bits()
    } else {
        half::f16::from_f32(m as f32).to_bits()
    };
    let mut best = c.min(inf);
    for cand in [c.saturating_sub(1), (c + 1).min(inf)] {
        let (d, e) = ((value(cand) - m).abs(), (value(best) - m).abs());
        if d < e || (d == e && cand % 2 == 0) {
            best = cand;
        }
    }
    sign | best
}

/// The raw bits of scalar `v` of type `ty`.
fn to_bits(v: &V, ty: Scalar) -> u64 {
    match ty {
        Scalar::F32 => (v.f() as f32).to_bits() as u64,
        Scalar::F64 => v.f().to_bits(),
        Scalar::F16 | Scalar::BF16 => nearest_half(v.f(), ty).into(),
        _ => v.i() as u64,
    }
}

/// The scalar of type `ty` whose bits are `u` (low `ty.bytes()` bytes).
fn from_bits(u: u64, ty: Scalar) -> V {
    match ty {
        Scalar::F32 => V::F(f32::from_bits(u as u32) as f64),
        Scalar::F64 => V::F(f64::from_bits(u)),
        Scalar::F16 => V::F(half::f16::from_bits(u as u16).to_f64()),
        Scalar::BF16 => V::F(half::bf16::from_bits(u as u16).to_f64()),
        other => V::I(norm(u as i64, other)),
    }
}

/// Applies `f` lane-wise when `a` is a vector.
fn lanewise(a: V, f: &impl Fn(V) -> V) -> V {
    match a {
        V::Lanes(l) => V::Lanes(l.into_iter().map(f).collect()),
        s => f(s),
    }
}

/// Applies `f` lane-wise when `a` and `b` are vectors (a scalar operand
/// is used in every lane).
fn lanewise2(a: V, b: V, f: &impl Fn(V, V) -> V) -> V {
    match (a, b) {
        (V::Lanes(x), V::Lanes(y)) => {
            V::Lanes(x.into_iter().zip(y).map(|(x, y)| f(x, y)).collect())
        }
        (V::Lanes(x), y) => V::Lanes(x.into_iter().map(|x| f(x, y.clone())).collect()),
        (x, V::Lanes(y)) => V::Lanes(y.into_iter().map(|y| f(x.clone(), y)).collect()),
        (x, y) => f(x, y),
    }
}

/// NaN-propagating minimum or maximum with −0 < +0 (`llvm.minimum`,
/// Cranelift's `fmin`).
fn fminmax(x: f64, y: f64, max: bool) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == y {
        // Equal: only the sign of zero can differ.
        return if max == x.is_sign_negative() { y } else { x };
    }
    if (x < y) != max { x } else { y }
}

/// A scalar unary operation on type `t`.
pub fn unop(op: UnOp, t: Scalar, x: &V) -> V {
    if t.is_float() {
        let x = x.f();
        let f32_ = |g: fn(f32) -> f32, h: fn(f64) -> f64| {
            if t.compute() == Scalar::F32 {
                g(x as f32) as f64
            } else {
                h(x)
            }
        };
        V::F(match op {
            UnOp::Neg => -x,
            UnOp::Abs => x.abs(),
            UnOp::Sqrt => f32_(f32::sqrt, f64::sqrt),
            UnOp::Floor => x.floor(),
            UnOp::Ceil => x.ceil(),
            UnOp::Trunc => x.trunc(),
            UnOp::Nearest => x.round_ties_even(),
            UnOp::Exp => f32_(f32::exp, f64::exp),
            UnOp::Log => f32_(f32::ln, f64::ln),
            UnOp::Tanh => f32_(f32::tanh, f64::tanh),
            UnOp::Sin => f32_(f32::sin, f64::sin),
            UnOp::Cos => f32_(f32::cos, f64::cos),
            UnOp::Not | UnOp::Erf => panic!("{op:?} on {t:?}"),
        })
    } else {
        let x = x.i();
        V::I(norm(
            match op {
                UnOp::Neg => x.wrapping_neg(),
                UnOp::Abs => x.wrapping_abs(),
                UnOp::Not if t == Scalar::Bool => x ^ 1,
                UnOp::Not => !x,
                other => panic!("{other:?} on {t:?}"),
            },
            t,
        ))
    }
}

/// A scalar binary operation on type `t` (`Pow` must be expanded first).
pub fn binop(op: BinOp, t: Scalar, x: &V, y: &V) -> V {
    if t.is_float() {
        let (x, y) = (x.f(), y.f());
        let r = if t.compute() == Scalar::F32 {
            let (a, b) = (x as f32, y as f32);
            match op {
                BinOp::Add => (a + b) as f64,
                BinOp::Sub => (a - b) as f64,
                BinOp::Mul => (a * b) as f64,
                BinOp::Div => (a / b) as f64,
                _ => f64::NAN,
            }
        } else {
            match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                _ => f64::NAN,
            }
        };
        V::F(match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => r,
            BinOp::Min => fminmax(x, y, false),
            BinOp::Max => fminmax(x, y, true),
            other => panic!("{other:?} on {t:?}"),
        })
    } else {
        let (x, y) = (x.i(), y.i());
        let bits = t.bytes() * 8;
        let ux = |v: i64| (v as u64) & (u64::MAX >> (64 - bits));
        let s = (y as u64 % bits) as u32;
        V::I(norm(
            match op {
                BinOp::Add => x.wrapping_add(y),
                BinOp::Sub => x.wrapping_sub(y),
                BinOp::Mul => x.wrapping_mul(y),
                BinOp::Div if t.is_signed() => x.wrapping_div(y),
                BinOp::Div => (ux(x) / ux(y)) as i64,
                BinOp::Rem if t.is_signed() => x.wrapping_rem(y),
                BinOp::Rem => (ux(x) % ux(y)) as i64,
                BinOp::And => x & y,
                BinOp::Or => x | y,
                BinOp::Xor => x ^ y,
                BinOp::Shl => x.wrapping_shl(s),
                BinOp::Shr if t.is_signed() => x >> s,
                BinOp::Shr => (ux(x) >> s) as i64,
                BinOp::Min if t.is_signed() => x.min(y),
                BinOp::Max if t.is_signed() => x.max(y),
                BinOp::Min => (x as u64).min(y as u64) as i64,
                BinOp::Max => (x as u64).max(y as u64) as i64,
                BinOp::Pow => panic!("Pow left unexpanded"),
            },
            t,
        ))
    }
}

/// A scalar comparison of two values of type `t` (NaN compares false
/// except `Ne`).
pub fn cmpop(op: CmpOp, t: Scalar, x: &V, y: &V) -> bool {
    let o = if t.is_float() {
        x.f().partial_cmp(&y.f())
    } else if t.is_signed() {
        Some(x.i().cmp(&y.i()))
    } else {
        Some((x.i() as u64).cmp(&(y.i() as u64)))
    };
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => o == Some(Equal),
        CmpOp::Ne => o != Some(Equal),
        CmpOp::Lt => o == Some(Less),
        CmpOp::Le => matches!(o, Some(Less | Equal)),
        CmpOp::Gt => o == Some(Greater),
        CmpOp::Ge => matches!(o, Some(Greater | Equal)),
    }
}

/// A scalar numeric conversion from `from` to `to`: float → int saturates
/// to at least 32 bits (signed for the types narrower than 32 bits) and then
/// truncates (NaN is 0), int → int wraps,
/// int → float rounds once, to bool is `!= 0`.
pub fn cast(from: Scalar, to: Scalar, x: &V) -> V {
    if to == Scalar::Bool {
        return V::I(if from.is_float() {
            x.f() != 0.0
        } else {
            x.i() != 0
        } as i64);
    }
    match (from.is_float(), to.is_float()) {
        (true, true) => V::F(fround_store(x.f(), to)),
        (false, true) => {
            let (v, unsigned) = (x.i(), !from.is_signed() && from != Scalar::Bool);
            V::F(match (to, unsigned) {
                (Scalar::F32, false) => v as f32 as f64,
                (Scalar::F32, true) => v as u64 as f32 as f64,
                (_, false) => fround_store(v as f64, to),
                (_, true) => fround_store(v as u64 as f64, to),
            })
        }
        (true, false) => {
            let v = x.f();
            V::I(norm(
                // Saturating at the bounds of the target type (NaN to 0),
                // like the code generators.
                match to {
                    Scalar::I64 => v as i64,
                    Scalar::U64 => v as u64 as i64,
                    Scalar::U32 => v as u32 as i64,
                    Scalar::I16 => v as i16 as i64,
                    Scalar::U16 => v as u16 as i64,
                    Scalar::I8 => v as i8 as i64,
                    Scalar::U8 => v as u8 as i64,
                    _ => v as i32 as i64,
                },
                to,
            ))
        }
        (false, false) => V::I(norm(x.i(), to)),
    }
}

/// Runs a [`Program`] over buffers held by [`Buf`], as little-endian
/// bytes (each `Buf` its own region: an arena offset is a separate buffer).
pub struct Eval<'a> {
    p: &'a Program,
    vars: Vec<V>,
    /// The buffers; [`Eval::new`] fills in the program's constants.
    pub mem: HashMap<Buf, Vec<u8>>,
    /// The first failed [`Stmt::Check`] (its number and the value), which
    /// stops the run as it stops generated code.
    pub fault: Option<(u32, i64)>,
}

impl<'a> Eval<'a> {
    /// An evaluator of `p` with zeroed variables and `p`'s constants.
    pub fn new(p: &'a Program) -> Self {
        let mem = (p.consts.iter().enumerate())
            .map(|(k, c)| (Buf::Const(k as u32), c.to_vec()))
            .collect();
        Eval {
            p,
            vars: vec![V::I(0); p.vars.len()],
            mem,
            fault: None,
        }
    }

    /// Runs the whole program.
    pub fn run(&mut self) {
        let p = self.p;
        self.stmts(&p.body);
    }

    /// The value of variable `v`.
    pub fn var(&self, v: crate::kernel::Var) -> &V {
        &self.vars[v.0 as usize]
    }

    /// Sets variable `v`.
    pub fn set(&mut self, v: crate::kernel::Var, x: V) {
        self.vars[v.0 as usize] = x;
    }

    /// Element `k` of `buf` as type `ty`.
    #[allow(dead_code)]
    pub fn get(&self, buf: Buf, k: usize, ty: Scalar) -> V {
        let n = ty.bytes() as usize;
        self.read(buf, k * n, ty)
    }

    /// Buffer `buf` as f32s.
    pub fn f32s(&self, buf: Buf) -> Vec<f32> {
        crate::schedule::gemm::f32s(&self.mem[&buf])
    }

    fn read(&self, buf: Buf, at: usize, ty: Scalar) -> V {
        let n = ty.bytes() as usize;
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&self.mem[&buf][at..at + n]);
        from_bits(u64::from_le_bytes(a), ty)
    }

    fn write(&mut self, buf: Buf, at: usize, ty: Scalar, v: &V) {
        let n = ty.bytes() as usize;
        let m = self.mem.get_mut(&buf).expect("buffer");
        m[at..at + n].copy_from_slice(&to_bits(v, ty).to_le_bytes()[..n]);
    }

    /// Runs `body`.
    pub fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            if self.fault.is_some() {
                return;
            }
            match s {
                Stmt::Set(v, e) => self.vars[v.0 as usize] = self.expr(e),
                Stmt::Check { value, check } => {
                    let v = self.expr(value).i();
                    let c = &self.p.checks[*check as usize];
                    if !(c.lo..c.hi).contains(&v) {
                        self.fault = Some((*check, v));
                    }
                }
                Stmt::Store { buf, index, value } | Stmt::VStore { buf, index, value } => {
                    let ty = self.p.ty(value);
                    let n = ty.bytes() as usize;
                    let k = self.expr(index).i() as usize;
                    let v = self.expr(value);
                    for (l, x) in v.lanes().iter().enumerate() {
                        self.write(*buf, (k + l) * n, ty, x);
                    }
                }
                // The counter is read back after the body, which may
                // assign it (the code generators allow that).
                Stmt::For {
                    var,
                    start,
                    end,
                    body,
                } => {
                    let (s, e) = (self.expr(start).i(), self.expr(end).i());
                    let mut k = s;
                    while k < e && self.fault.is_none() {
                        self.vars[var.0 as usize] = V::I(k);
                        self.stmts(body);
                        k = self.vars[var.0 as usize].i() + 1;
                    }
                }
                // Iterations last to first: a parallel loop's iterations
                // are independent, so any order gives the same result, and
                // one that is not fails the tests instead of passing by
                // running in order.
                Stmt::Parallel { var, extent, body } => {
                    for k in (0..*extent).rev() {
                        self.vars[var.0 as usize] = V::I(k);
                        self.stmts(body);
                    }
                }
                Stmt::If(c, t, e) => {
                    if self.expr(c).i() != 0 {
                        self.stmts(t)
                    } else {
                        self.stmts(e)
                    }
                }
                Stmt::Copy(c) => {
                    let [d, s, n] = c.exprs().map(|e| self.expr(e).i() as usize);
                    let data = self.mem[&c.src][s..s + n].to_vec();
                    self.mem.get_mut(&c.dst).expect("buffer")[d..d + n].copy_from_slice(&data);
                }
            }
        }
    }

    /// The value of `e`.
    pub fn expr(&mut self, e: &Expr) -> V {
        let p = self.p;
        match e {
            Expr::F(v, t) if t.is_float() => V::F(fround(*v, *t)),
            Expr::F(v, t) => V::I(norm(*v as i64, *t)),
            Expr::I(v, t) if t.is_float() => cast(Scalar::I64, *t, &V::I(*v)),
            Expr::I(v, t) => V::I(norm(*v, *t)),
            Expr::Var(v) => self.vars[v.0 as usize].clone(),
            Expr::Load { buf, index, ty } => {
                let k = self.expr(index).i() as usize;
                self.read(*buf, k * ty.bytes() as usize, *ty)
            }
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => {
                let (k, n) = (self.expr(index).i() as usize, ty.bytes() as usize);
                V::Lanes(
                    (0..*lanes as usize)
                        .map(|l| self.read(*buf, (k + l) * n, *ty))
                        .collect(),
                )
            }
            Expr::Splat(n, a) => V::Lanes(vec![self.expr(a); *n as usize]),
            Expr::Extract(a, k) => self.expr(a).lanes()[*k as usize].clone(),
            Expr::Reduce(op, a) => {
                let t = p.ty(a);
                let l = self.expr(a).lanes();
                (l[1..].iter()).fold(l[0].clone(), |acc, x| binop(*op, t, &acc, x))
            }
            Expr::MulAdd(a, b, c) => {
                let t = p.ty(a);
                let (x, y, z) = (self.expr(a), self.expr(b), self.expr(c));
                let xy = lanewise2(x, y, &|x, y| binop(BinOp::Mul, t, &x, &y));
                lanewise2(xy, z, &|xy, z| binop(BinOp::Add, t, &xy, &z))
            }
            Expr::Un(op, a) => {
                let t = p.ty(a);
                let x = self.expr(a);
                lanewise(x, &|x| unop(*op, t, &x))
            }
            Expr::Bin(op, a, b) => {
                let t = p.ty(a);
                let (x, y) = (self.expr(a), self.expr(b));
                lanewise2(x, y, &|x, y| binop(*op, t, &x, &y))
            }
            Expr::Cmp(op, a, b) => {
                let t = p.ty(a);
                let (x, y) = (self.expr(a), self.expr(b));
                lanewise2(x, y, &|x, y| V::I(cmpop(*op, t, &x, &y) as i64))
            }
            // Both arms are evaluated, as the generated code does.
            Expr::Select(c, a, b) => {
                let (c, a, b) = (self.expr(c), self.expr(a), self.expr(b));
                if c.i() != 0 { a } else { b }
            }
            Expr::Cast(to, a) => {
                let from = p.ty(a);
                let x = self.expr(a);
                lanewise(x, &|x| cast(from, *to, &x))
            }
            Expr::Bitcast(to, a) => {
                let from = p.ty(a);
                match self.expr(a) {
                    V::Lanes(l) => {
                        let bytes: Vec<u8> = (l.iter())
                            .flat_map(|x| {
                                to_bits(x, from).to_le_bytes()[..from.bytes() as usize].to_vec()
                            })
                            .collect();
                        let n = to.bytes() as usize;
                        V::Lanes(
                            bytes
                                .chunks(n)
                                .map(|c| {
                                    let mut b = [0u8; 8];
                                    b[..n].copy_from_slice(c);
                                    from_bits(u64::from_le_bytes(b), *to)
                                })
                                .collect(),
                        )
                    }
                    x => from_bits(to_bits(&x, from), *to),
                }
            }
            // Lanes hold integers normalised to their type, so extending is
            // re-reading the value in the wider type.
            Expr::Widen(half, a) => {
                let l = self.expr(a).lanes();
                let h = l.len() / 2;
                let part = match half {
                    crate::kernel::Half::Low => &l[..h],
                    crate::kernel::Half::High => &l[h..],
                };
                V::Lanes(part.to_vec())
            }
            Expr::Dot(a, b, acc) => {
                let (x, y, z) = (
                    self.expr(a).lanes(),
                    self.expr(b).lanes(),
                    self.expr(acc).lanes(),
                );
                V::Lanes(
                    (z.iter().enumerate())
                        .map(|(j, c)| {
                            let s: i64 = (0..4).map(|t| x[4 * j + t].i() * y[4 * j + t].i()).sum();
                            V::I(norm(c.i().wrapping_add(s), Scalar::I32))
                        })
                        .collect(),
                )
            }
        }
    }
}

/// The little-endian bytes of `v`, a test input.
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` pseudo-random values in [-1, 1] in steps of 1/1000 (xorshift from
/// `seed`), a test input.
pub(crate) fn rand_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The operands of a test kernel that reads `ins` from `Buf::Input(0..)`.
pub(crate) fn tensor_operands(ins: &[&smelt_ir::Tensor]) -> Vec<Option<crate::lower::Operand>> {
    ins.iter()
        .enumerate()
        .map(|(k, t)| {
            Some(crate::lower::Operand {
                buf: Buf::Input(k as u32),
                shape: t.shape().to_vec(),
                ty: Scalar::of(t.dtype()).expect("scalar"),
            })
        })
        .collect()
}

/// The bytes of `ins` as the inputs of a test kernel, in `Buf::Input(0..)`.
pub(crate) fn tensor_inputs(ins: &[&smelt_ir::Tensor]) -> HashMap<Buf, Vec<u8>> {
    ins.iter()
        .enumerate()
        .map(|(k, t)| (Buf::Input(k as u32), t.to_le_bytes()))
        .collect()
}
