//! The kernel IR text parser: the inverse of [`Program::print`].
//!
//! `print(parse(print(p))) == print(p)` for every program. The printed text
//! leaves out what no statement shows: the types of variables that are only
//! loop counters (read back as `i64`, which they are), the constants' bytes
//! (`const 0: 64 bytes` reads back as zeros) and the program's schedule
//! settings (vector shape, threads, scratch area), which the caller sets on
//! the result. Tests write kernels in this text (`tests/filetests/`).
//!
//! Buffers are read in one place ([`Parser::buf`]) and statements in another
//! ([`Parser::stmt`]), so a new buffer kind or statement is one more arm.

use std::fmt;

use smelt_ir::text::{Cursor, Expected};

use crate::kernel::{
    BinOp, Buf, CheckInfo, CmpOp, Expr, Half, MemCopy, Program, Scalar, Stmt, UnOp, Var,
};

/// What went wrong while parsing kernel IR text, and where (the shared
/// text cursor's error: line, column, what was expected, what was found).
pub type KernelParseError = Expected;

/// Parses kernel IR text as [`Program::print`] writes it.
pub fn parse_program(text: &str) -> Result<Program, KernelParseError> {
    let mut p = Parser {
        c: Cursor::new(text),
        vars: Vec::new(),
    };
    let mut prog = Program::default();
    while p.c.eat_word("const") {
        let i = p.c.int("a constant index")?;
        if usize::try_from(i).ok() != Some(prog.consts.len()) {
            return Err(p.expected(&format!("constant {}", prog.consts.len())));
        }
        p.c.expect(":")?;
        let n = p.c.int("a byte count")?;
        p.c.expect_word("bytes")?;
        let n = usize::try_from(n).map_err(|_| p.expected("a byte count"))?;
        prog.consts.push(vec![0; n]);
    }
    while p.c.eat_word("bounds") {
        let i = p.c.int("a check index")?;
        if usize::try_from(i).ok() != Some(prog.checks.len()) {
            return Err(p.expected(&format!("check {}", prog.checks.len())));
        }
        p.c.expect(":")?;
        let node = p.c.string()?;
        let op = p.c.string()?;
        let what = p.c.string()?;
        let lo = p.c.int("the least valid value")?;
        p.c.expect("..")?;
        let hi = p.c.int("one past the greatest valid value")?;
        prog.checks.push(CheckInfo {
            node,
            op,
            what,
            lo,
            hi,
        });
    }
    prog.body = p.stmts()?;
    p.c.ws();
    if !p.c.rest().is_empty() {
        return Err(p.expected("a statement"));
    }
    for (k, v) in p.vars.iter().enumerate() {
        let (ty, lanes) = v.unwrap_or((Scalar::I64, 1));
        prog.vars.push(ty);
        prog.var_lanes.resize(k, 1);
        prog.var_lanes.push(lanes);
    }
    Ok(prog)
}

/// Every scalar type; the match below breaks the build when one is added.
const SCALARS: [Scalar; 13] = [
    Scalar::F32,
    Scalar::F64,
    Scalar::I8,
    Scalar::U8,
    Scalar::I16,
    Scalar::U16,
    Scalar::I32,
    Scalar::U32,
    Scalar::I64,
    Scalar::U64,
    Scalar::Bool,
    Scalar::F16,
    Scalar::BF16,
];

const UNOPS: [UnOp; 14] = [
    UnOp::Neg,
    UnOp::Abs,
    UnOp::Sqrt,
    UnOp::Floor,
    UnOp::Ceil,
    UnOp::Trunc,
    UnOp::Nearest,
    UnOp::Not,
    UnOp::Exp,
    UnOp::Log,
    UnOp::Tanh,
    UnOp::Erf,
    UnOp::Sin,
    UnOp::Cos,
];

const BINOPS: [BinOp; 13] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Rem,
    BinOp::Min,
    BinOp::Max,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::Shl,
    BinOp::Shr,
    BinOp::Pow,
];

const CMPOPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Le,
    CmpOp::Gt,
    CmpOp::Ge,
];

/// Breaks the build when a variant is added to one of the enums above
/// without being listed there (the printer spells them with `Debug`).
#[allow(dead_code)]
fn all_variants_listed(s: Scalar, u: UnOp, b: BinOp, c: CmpOp) {
    use BinOp as B;
    use CmpOp as C;
    use Scalar as S;
    use UnOp as U;
    match s {
        S::F32 | S::F64 | S::I8 | S::U8 | S::I16 | S::U16 | S::I32 | S::U32 | S::I64 | S::U64 => {}
        S::Bool | S::F16 | S::BF16 => {}
    }
    match u {
        U::Neg | U::Abs | U::Sqrt | U::Floor | U::Ceil | U::Trunc | U::Nearest | U::Not => {}
        U::Exp | U::Log | U::Tanh | U::Erf | U::Sin | U::Cos => {}
    }
    match b {
        B::Add | B::Sub | B::Mul | B::Div | B::Rem | B::Min | B::Max => {}
        B::And | B::Or | B::Xor | B::Shl | B::Shr | B::Pow => {}
    }
    match c {
        C::Eq | C::Ne | C::Lt | C::Le | C::Gt | C::Ge => {}
    }
}

fn scalar_name(s: Scalar) -> String {
    format!("{s:?}").to_lowercase()
}

fn by_debug_name<T: fmt::Debug + Copy>(all: &[T], name: &str) -> Option<T> {
    all.iter().copied().find(|x| format!("{x:?}") == name)
}

struct Parser<'a> {
    c: Cursor<'a>,
    /// Type and lanes of each variable a `Set` declared.
    vars: Vec<Option<(Scalar, u8)>>,
}

impl<'a> Parser<'a> {
    /// "Expected `what`" at the cursor, as this parser's error.
    fn expected(&self, what: &str) -> KernelParseError {
        self.c.expected(what)
    }

    fn small(&mut self, what: &str) -> Result<u8, KernelParseError> {
        let start = self.c.pos;
        let v = self.c.int(what)?;
        u8::try_from(v).map_err(|_| {
            self.c.pos = start;
            self.expected(what)
        })
    }

    /// A scalar type name; the longest that matches (`i64` before `i6…`).
    fn scalar(&mut self) -> Result<Scalar, KernelParseError> {
        self.c.ws();
        let r = self.c.rest();
        let best = SCALARS
            .iter()
            .map(|&s| (s, scalar_name(s)))
            .filter(|(_, n)| r.starts_with(n.as_str()))
            .max_by_key(|(_, n)| n.len());
        match best {
            Some((s, n)) => {
                self.c.pos += n.len();
                Ok(s)
            }
            None => Err(self.expected("a scalar type (f32, i64, …)")),
        }
    }

    /// `vN`.
    fn var(&mut self) -> Result<Var, KernelParseError> {
        self.c.ws();
        if !self.c.rest().starts_with('v') {
            return Err(self.expected("a variable (vN)"));
        }
        self.c.pos += 1;
        let start = self.c.pos;
        let d = self.c.digits();
        let n: u32 = d.parse().map_err(|_| {
            self.c.pos = start;
            self.expected("a variable number")
        })?;
        let k = n as usize;
        if self.vars.len() <= k {
            self.vars.resize(k + 1, None);
        }
        Ok(Var(n))
    }

    /// `in0`, `out1`, `arena@64`, `const2`, `state@0`; `None` when the cursor is not at
    /// a buffer.
    fn buf(&mut self) -> Result<Option<Buf>, KernelParseError> {
        self.c.ws();
        let r = self.c.rest();
        for (prefix, make) in [
            ("in", (|n| Buf::Input(n as u32)) as fn(u64) -> Buf),
            ("out", |n| Buf::Output(n as u32)),
            ("arena@", Buf::Arena),
            ("const", |n| Buf::Const(n as u32)),
            ("state@", Buf::State),
        ] {
            let Some(after) = r.strip_prefix(prefix) else {
                continue;
            };
            if !after.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            self.c.pos += prefix.len();
            let start = self.c.pos;
            let d = self.c.digits();
            let n: u64 = d.parse().map_err(|_| {
                self.c.pos = start;
                self.expected("a buffer number")
            })?;
            let limit = if prefix == "arena@" {
                u64::MAX
            } else {
                u64::from(u32::MAX)
            };
            if n > limit {
                self.c.pos = start;
                return Err(self.expected("a buffer number below 2^32"));
            }
            return Ok(Some(make(n)));
        }
        Ok(None)
    }

    fn stmts(&mut self) -> Result<Vec<Stmt>, KernelParseError> {
        let mut out = Vec::new();
        loop {
            self.c.ws();
            if self.c.rest().is_empty() || self.c.rest().starts_with('}') {
                return Ok(out);
            }
            out.push(self.stmt()?);
        }
    }

    fn block(&mut self) -> Result<Vec<Stmt>, KernelParseError> {
        self.c.expect("{")?;
        let body = self.stmts()?;
        self.c.expect("}")?;
        Ok(body)
    }

    fn stmt(&mut self) -> Result<Stmt, KernelParseError> {
        match self.c.peek_word() {
            "for" => {
                self.c.pos += 3;
                let var = self.var()?;
                self.c.expect_word("in")?;
                let start = self.expr()?;
                self.c.expect("..")?;
                let end = self.expr()?;
                let body = self.block()?;
                Ok(Stmt::for_loop(var, start, end, body))
            }
            "parallel" => {
                self.c.pos += 8;
                self.c.expect_word("for")?;
                let var = self.var()?;
                self.c.expect_word("in")?;
                self.c.expect("0")?;
                self.c.expect("..")?;
                let extent = self.c.int("an iteration count")?;
                let body = self.block()?;
                Ok(Stmt::Parallel { var, extent, body })
            }
            "if" => {
                self.c.pos += 2;
                let c = self.expr()?;
                let t = self.block()?;
                let e = if self.c.eat_word("else") {
                    self.block()?
                } else {
                    Vec::new()
                };
                Ok(Stmt::If(c, t, e))
            }
            "check" => {
                self.c.pos += 5;
                let check = self.c.int("a check index")?;
                let check = u32::try_from(check).map_err(|_| self.expected("a check index"))?;
                self.c.expect(":")?;
                let value = self.expr()?;
                Ok(Stmt::Check { value, check })
            }
            "copy" => {
                self.c.pos += 4;
                let dst = self.some_buf()?;
                self.c.expect("+")?;
                let dst_off = self.expr()?;
                self.c.expect("<-")?;
                let src = self.some_buf()?;
                self.c.expect("+")?;
                let src_off = self.expr()?;
                self.c.expect(",")?;
                let bytes = self.expr()?;
                self.c.expect_word("bytes")?;
                Ok(Stmt::Copy(MemCopy {
                    dst,
                    dst_off,
                    src,
                    src_off,
                    bytes,
                }))
            }
            _ => {
                if let Some(buf) = self.buf()? {
                    self.c.expect("[")?;
                    let index = self.expr()?;
                    let vector = self.c.eat("..");
                    self.c.expect("]")?;
                    self.c.expect("=")?;
                    let value = self.expr()?;
                    return Ok(if vector {
                        Stmt::VStore { buf, index, value }
                    } else {
                        Stmt::Store { buf, index, value }
                    });
                }
                let v = self
                    .var()
                    .map_err(|_| self.expected("a statement (for, if, copy, vN: …, buf[…] = …)"))?;
                self.c.expect(":")?;
                let ty = self.scalar()?;
                let lanes = if self.c.rest().starts_with('x') {
                    self.c.pos += 1;
                    self.small("a lane count")?
                } else {
                    1
                };
                self.vars[v.0 as usize] = Some((ty, lanes));
                self.c.expect("=")?;
                Ok(Stmt::Set(v, self.expr()?))
            }
        }
    }

    fn some_buf(&mut self) -> Result<Buf, KernelParseError> {
        self.buf()?
            .ok_or_else(|| self.expected("a buffer (inN, outN, arena@N, constN)"))
    }

    /// `<arg>` of `cast<f32>`, `splat<4>`, `reduce<Add>`.
    fn angle<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, KernelParseError>,
    ) -> Result<T, KernelParseError> {
        self.c.expect("<")?;
        let v = inner(self)?;
        self.c.expect(">")?;
        Ok(v)
    }

    fn args<const N: usize>(&mut self) -> Result<[Box<Expr>; N], KernelParseError> {
        self.c.expect("(")?;
        let mut v = Vec::with_capacity(N);
        for k in 0..N {
            if k > 0 {
                self.c.expect(",")?;
            }
            v.push(Box::new(self.expr()?));
        }
        self.c.expect(")")?;
        v.try_into()
            .map_err(|_| self.expected("the operands of the operation"))
    }

    fn number(&mut self) -> Result<Expr, KernelParseError> {
        let start = self.c.pos;
        if self.c.rest().starts_with('-') {
            self.c.pos += 1;
        }
        let mut float = false;
        if self.c.rest().starts_with("inf") || self.c.rest().starts_with("NaN") {
            self.c.pos += 3;
            float = true;
        } else {
            self.c.digits();
            let r = self.c.rest();
            if r.starts_with('.') && r[1..].starts_with(|c: char| c.is_ascii_digit()) {
                self.c.pos += 1;
                self.c.digits();
                float = true;
            }
            let r = self.c.rest();
            let exp = r
                .strip_prefix('e')
                .map(|e| e.trim_start_matches(['-', '+']));
            if exp.is_some_and(|e| e.starts_with(|c: char| c.is_ascii_digit())) {
                self.c.pos += r.len() - exp.map_or(0, str::len);
                self.c.digits();
                float = true;
            }
        }
        let text = &self.c.src[start..self.c.pos];
        let ty = self.scalar()?;
        let bad = |p: &mut Self| {
            p.c.pos = start;
            p.expected("a number with its type (1i64, 0.5f32)")
        };
        if float {
            text.parse::<f64>()
                .map(|v| Expr::F(v, ty))
                .map_err(|_| bad(self))
        } else {
            text.parse::<i64>()
                .map(|v| Expr::I(v, ty))
                .map_err(|_| bad(self))
        }
    }

    fn expr(&mut self) -> Result<Expr, KernelParseError> {
        self.c.ws();
        let r = self.c.rest();
        if r.starts_with(|c: char| c.is_ascii_digit() || c == '-')
            || r.starts_with("inf")
            || r.starts_with("NaN")
        {
            return self.number();
        }
        if let Some(buf) = self.buf()? {
            self.c.expect(":")?;
            let ty = self.scalar()?;
            if self.c.rest().starts_with('x') {
                self.c.pos += 1;
                let lanes = self.small("a lane count")?;
                self.c.expect("[")?;
                let index = Box::new(self.expr()?);
                self.c.expect("..")?;
                self.c.expect("]")?;
                return Ok(Expr::VLoad {
                    buf,
                    index,
                    ty,
                    lanes,
                });
            }
            self.c.expect("[")?;
            let index = Box::new(self.expr()?);
            self.c.expect("]")?;
            return Ok(Expr::Load { buf, index, ty });
        }
        let word = self.c.peek_word();
        if word
            .strip_prefix('v')
            .is_some_and(|d| d.parse::<u32>().is_ok())
        {
            return Ok(Expr::Var(self.var()?));
        }
        let at = self.c.pos;
        self.c.pos += word.len();
        Ok(match word {
            "select" => {
                let [c, a, b] = self.args()?;
                Expr::Select(c, a, b)
            }
            "muladd" => {
                let [a, b, c] = self.args()?;
                Expr::MulAdd(a, b, c)
            }
            "dot" => {
                let [a, b, c] = self.args()?;
                Expr::Dot(a, b, c)
            }
            "widen_lo" | "widen_hi" => {
                let half = if word == "widen_lo" {
                    Half::Low
                } else {
                    Half::High
                };
                let [a] = self.args()?;
                Expr::Widen(half, a)
            }
            "cast" | "bitcast" => {
                let t = self.angle(Self::scalar)?;
                let [a] = self.args()?;
                if word == "cast" {
                    Expr::Cast(t, a)
                } else {
                    Expr::Bitcast(t, a)
                }
            }
            "splat" => {
                let lanes = self.angle(|p| p.small("a lane count"))?;
                let [a] = self.args()?;
                Expr::Splat(lanes, a)
            }
            "extract" => {
                let k = self.angle(|p| p.small("a lane"))?;
                let [a] = self.args()?;
                Expr::Extract(a, k)
            }
            "reduce" => {
                let op = self.angle(|p| {
                    let w = p.c.peek_word();
                    let op = by_debug_name(&BINOPS, w)
                        .ok_or_else(|| p.expected("a binary operation (Add, Min, Max)"))?;
                    p.c.pos += w.len();
                    Ok(op)
                })?;
                let [a] = self.args()?;
                Expr::Reduce(op, a)
            }
            w => {
                if let Some(op) = by_debug_name(&UNOPS, w) {
                    let [a] = self.args()?;
                    Expr::Un(op, a)
                } else if let Some(op) = by_debug_name(&BINOPS, w) {
                    let [a, b] = self.args()?;
                    Expr::Bin(op, a, b)
                } else if let Some(op) = by_debug_name(&CMPOPS, w) {
                    let [a, b] = self.args()?;
                    Expr::Cmp(op, a, b)
                } else {
                    self.c.pos = at;
                    return Err(self.expected("an expression"));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_programs_parse_back() {
        let text = "const 0: 16 bytes\n\
                    bounds 0: \"embed\" \"Gather\" \"index\" -10..10\n\
                    v0: f32 = 0.0f32\n\
                    v4: i64 = cast<i64>(in1:i32[0i64])\n\
                    check 0: v4\n\
                    for v1 in 0i64..4i64 {\n  \
                      v0: f32 = muladd(in0:f32[v1], const0:f32[Sub(3i64, v1)], v0)\n  \
                      v2: f32x4 = Add(in0:f32x4[Mul(v1, 4i64)..], splat<4>(-1.5e-7f32))\n  \
                      out0[Mul(v1, 4i64)..] = v2\n  \
                      if Lt(v1, 2i64) {\n    \
                        arena@64[v1] = cast<f64>(reduce<Max>(v2))\n  \
                      } else {\n    \
                        arena@64[v1] = select(Ne(v0, NaNf32), inff64, bitcast<f64>(1u64))\n  \
                      }\n\
                    }\n\
                    parallel for v3 in 0..8 {\n  \
                      out1[v3] = extract<2>(v2)\n\
                    }\n\
                    copy out0+0i64 <- arena@0+Mul(4i64, 2i64), 16i64 bytes\n";
        let p = parse_program(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.print(), text);
        assert_eq!(
            p.vars,
            [
                Scalar::F32,
                Scalar::I64,
                Scalar::F32,
                Scalar::I64,
                Scalar::I64
            ]
        );
        assert_eq!((p.checks[0].node.as_str(), p.checks[0].lo), ("embed", -10));
        assert_eq!(p.var_lane_count(Var(2)), 4);
    }

    /// The integer vector forms of the block kernels read back, with the
    /// lane types and counts their rules give.
    #[test]
    fn integer_vector_forms_parse_back() {
        let text = "for v0 in 0i64..2i64 {\n  \
                      v1: u8x16 = in0:u8x16[Mul(v0, 16i64)..]\n  \
                      v2: i8x16 = Sub(bitcast<i8>(And(v1, splat<16>(15u8))), splat<16>(8i8))\n  \
                      v3: i16x8 = widen_lo(v2)\n  \
                      v4: f32x4 = cast<f32>(widen_hi(v3))\n  \
                      v5: i32x4 = dot(bitcast<i8>(Shr(v1, splat<16>(4u8))), v2, splat<4>(0i32))\n  \
                      out0[Mul(v0, 4i64)..] = Add(v4, cast<f32>(bitcast<i32>(v1)))\n\
                    }\n";
        let p = parse_program(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.print(), text);
        let Stmt::For { body, .. } = &p.body[0] else {
            panic!("not a loop")
        };
        let types: Vec<(Scalar, u8)> = body
            .iter()
            .filter_map(|s| match s {
                Stmt::Set(_, e) => Some((p.ty(e), p.lanes(e))),
                _ => None,
            })
            .collect();
        use Scalar::*;
        assert_eq!(types, [(U8, 16), (I8, 16), (I16, 8), (F32, 4), (I32, 4)]);
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse_program("v0: f32 = Frob(1i64)\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 11));
        assert_eq!(
            e.to_string(),
            "line 1, column 11: expected an expression, found 'Frob(1i64)'"
        );
        let e = parse_program("for v0 in 0i64..4 {\n}\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 19));
        let e = parse_program("out0[0i64] = 1i64\n}\n").unwrap_err();
        assert_eq!(e.expected, "a statement");
    }
}
