//! The kernel-IR verifier, run by [`crate::pipeline`] after every pass.
//!
//! It checks what both code generators assume without checking: every
//! variable is defined before it is read and used with its declared type and
//! lane count; the operands of every expression agree in type; indices,
//! offsets and loop bounds are `I64`; a load or store whose offset is a
//! constant stays inside its buffer (inputs, outputs and constants within
//! their byte sizes, arena offsets within the arena plus the scratch area);
//! and, once [`crate::kernel::legalize_parallel`] has run, every parallel
//! loop is at the top level and reads no variable set outside it. A program
//! that passes is one the code generators can translate statement by
//! statement; one that fails names the pass that broke it and the statement.
//!
//! Offsets that depend on loop counters are not bounds-checked: that needs
//! a range analysis, and guarded stores (`if i < n { out[i] = … }`) would
//! make a simple one reject correct programs.

use std::collections::HashSet;
use std::fmt;

use crate::kernel::{BinOp, Buf, Expr, Program, Scalar, Stmt, UnOp, Var};

/// The byte sizes of the buffers a program addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BufSizes {
    /// Bytes of each graph input.
    pub inputs: Vec<u64>,
    /// Bytes of each graph output.
    pub outputs: Vec<u64>,
    /// Bytes of the arena, scratch area included.
    pub arena: u64,
    /// Bytes of the state buffer (0 for a stateless model).
    pub state: u64,
}

/// What the verifier found wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum VerifyErrorKind {
    /// A variable number the program never declared.
    UnknownVar(Var),
    /// A variable read before any statement sets it.
    UndefinedVar(Var),
    /// Operands or a destination whose types or lane counts disagree.
    Type(String),
    /// A constant offset outside its buffer: `(buffer, first byte, end
    /// byte, buffer size)`.
    OutOfBounds(String, i128, i128, u64),
    /// A parallel loop the code generators cannot outline.
    Parallel(String),
}

/// A kernel program that breaks an invariant, with the pass after which it
/// was found and the statement.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyError {
    /// The pass that produced the program.
    pub pass: &'static str,
    /// The statement (its first line as [`Program::print`] renders it).
    pub stmt: String,
    /// What is wrong.
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel IR invalid after pass '{}': ", self.pass)?;
        match &self.kind {
            VerifyErrorKind::UnknownVar(v) => write!(f, "variable v{} is not declared", v.0)?,
            VerifyErrorKind::UndefinedVar(v) => {
                write!(f, "variable v{} is read before it is set", v.0)?
            }
            VerifyErrorKind::Type(m) => write!(f, "{m}")?,
            VerifyErrorKind::OutOfBounds(b, lo, hi, size) => {
                write!(f, "bytes {lo}..{hi} of {b} are outside its {size} bytes")?
            }
            VerifyErrorKind::Parallel(m) => write!(f, "{m}")?,
        }
        write!(
            f,
            " in `{}`; this is a compiler bug, please report it",
            self.stmt
        )
    }
}

impl std::error::Error for VerifyError {}

/// Checks `p` against the invariants above; `parallel_legal` says whether
/// parallel loops must already be in their outlined form. `pass` names the
/// pass that produced `p`, for the error.
pub fn verify(
    p: &Program,
    sizes: &BufSizes,
    pass: &'static str,
    parallel_legal: bool,
) -> Result<(), VerifyError> {
    let mut v = Verifier {
        p,
        sizes,
        defined: HashSet::new(),
        parallel_legal,
        in_parallel: false,
    };
    v.stmts(&p.body, true).map_err(|(s, kind)| VerifyError {
        pass,
        stmt: p
            .print_stmt(s)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        kind,
    })
}

type Fail<'a> = (&'a Stmt, VerifyErrorKind);

struct Verifier<'a> {
    p: &'a Program,
    sizes: &'a BufSizes,
    /// Variables some earlier statement sets. Lenient on purpose: a variable
    /// set in one arm of an `If` or in a loop body counts as set after it
    /// (the lowering sets accumulators in every path it reads them from).
    defined: HashSet<Var>,
    parallel_legal: bool,
    /// Inside a [`Stmt::Parallel`] body, where a [`Stmt::Check`] may not be
    /// (an outlined task has no fault path).
    in_parallel: bool,
}

fn ty_err(m: String) -> VerifyErrorKind {
    VerifyErrorKind::Type(m)
}

impl<'a> Verifier<'a> {
    fn stmts(&mut self, body: &'a [Stmt], top: bool) -> Result<(), Fail<'a>> {
        for s in body {
            self.stmt(s, top).map_err(|k| match k {
                Ok(k) => (s, k),
                Err(inner) => inner,
            })?;
        }
        Ok(())
    }

    /// `Err(Ok(kind))` blames `s` itself, `Err(Err(..))` a nested statement.
    fn stmt(&mut self, s: &'a Stmt, top: bool) -> Result<(), Result<VerifyErrorKind, Fail<'a>>> {
        match s {
            Stmt::Set(v, e) => {
                let (ty, lanes) = self.expr(e).map_err(Ok)?;
                let (vt, vl) = self.decl(*v).map_err(Ok)?;
                if (ty, lanes) != (vt, vl) {
                    return Err(Ok(ty_err(format!(
                        "v{} is {vt:?}x{vl} but is set to {ty:?}x{lanes}",
                        v.0
                    ))));
                }
                self.defined.insert(*v);
            }
            Stmt::Store { buf, index, value } | Stmt::VStore { buf, index, value } => {
                self.index(index).map_err(Ok)?;
                let (ty, lanes) = self.expr(value).map_err(Ok)?;
                let vector = matches!(s, Stmt::VStore { .. });
                if vector != (lanes > 1) {
                    return Err(Ok(ty_err(format!(
                        "a {} stores a value of {lanes} lanes",
                        if vector { "vector store" } else { "store" }
                    ))));
                }
                self.bounds(*buf, index, ty.bytes(), u64::from(lanes))
                    .map_err(Ok)?;
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => {
                self.index(start).map_err(Ok)?;
                self.index(end).map_err(Ok)?;
                self.counter(*var).map_err(Ok)?;
                self.defined.insert(*var);
                self.stmts(body, false).map_err(Err)?;
            }
            Stmt::Parallel { var, extent, body } => {
                if *extent < 0 {
                    return Err(Ok(VerifyErrorKind::Parallel(format!(
                        "negative extent {extent}"
                    ))));
                }
                self.counter(*var).map_err(Ok)?;
                let was = std::mem::replace(&mut self.in_parallel, true);
                let r = self.parallel(*var, body, top);
                self.in_parallel = was;
                r?;
            }
            Stmt::Check { value, check } => {
                self.index(value).map_err(Ok)?;
                if self.p.checks.get(*check as usize).is_none() {
                    return Err(Ok(ty_err(format!("check {check} is not declared"))));
                }
                if self.in_parallel {
                    return Err(Ok(VerifyErrorKind::Parallel(
                        "a run-time check is inside a parallel loop".into(),
                    )));
                }
            }
            Stmt::If(c, t, e) => {
                let (ty, lanes) = self.expr(c).map_err(Ok)?;
                if (ty, lanes) != (Scalar::Bool, 1) {
                    return Err(Ok(ty_err(format!(
                        "an if condition is {ty:?}x{lanes}, not bool"
                    ))));
                }
                self.stmts(t, false).map_err(Err)?;
                self.stmts(e, false).map_err(Err)?;
            }
            Stmt::Copy(c) => {
                for e in c.exprs() {
                    self.index(e).map_err(Ok)?;
                }
                if let Some(n) = const_i64(&c.bytes) {
                    let n = n.max(0) as u64;
                    self.bounds(c.dst, &c.dst_off, 1, n).map_err(Ok)?;
                    self.bounds(c.src, &c.src_off, 1, n).map_err(Ok)?;
                }
            }
        }
        Ok(())
    }

    /// The body of a parallel loop: at the top level and reading only what
    /// it sets when the program must be outlinable (`parallel_legal`).
    fn parallel(
        &mut self,
        var: Var,
        body: &'a [Stmt],
        top: bool,
    ) -> Result<(), Result<VerifyErrorKind, Fail<'a>>> {
        if self.parallel_legal {
            if !top {
                return Err(Ok(VerifyErrorKind::Parallel(
                    "a parallel loop is nested in another statement".into(),
                )));
            }
            // The outlined body sees only its counter and what it sets.
            let outer = std::mem::replace(&mut self.defined, HashSet::from([var]));
            let r = self.stmts(body, false);
            let inner = std::mem::replace(&mut self.defined, outer);
            self.defined.extend(inner);
            r.map_err(Err)?;
        } else {
            self.defined.insert(var);
            self.stmts(body, false).map_err(Err)?;
        }
        Ok(())
    }

    fn decl(&self, v: Var) -> Result<(Scalar, u8), VerifyErrorKind> {
        match self.p.vars.get(v.0 as usize) {
            Some(&t) => Ok((t, self.p.var_lane_count(v))),
            None => Err(VerifyErrorKind::UnknownVar(v)),
        }
    }

    /// A loop counter: a scalar `I64` variable.
    fn counter(&self, v: Var) -> Result<(), VerifyErrorKind> {
        let d = self.decl(v)?;
        if d != (Scalar::I64, 1) {
            return Err(ty_err(format!(
                "loop counter v{} is {:?}x{}",
                v.0, d.0, d.1
            )));
        }
        Ok(())
    }

    /// An index, offset or bound: a scalar `I64` expression.
    fn index(&self, e: &Expr) -> Result<(), VerifyErrorKind> {
        let t = self.expr(e)?;
        if t != (Scalar::I64, 1) {
            return Err(ty_err(format!("an index is {:?}x{}, not i64", t.0, t.1)));
        }
        Ok(())
    }

    /// Checks that elements `[index, index + count)` of `elem` bytes lie in
    /// `buf` when `index` is a constant.
    fn bounds(&self, buf: Buf, index: &Expr, elem: u64, count: u64) -> Result<(), VerifyErrorKind> {
        let Some(i) = const_i64(index) else {
            return Ok(());
        };
        let (name, base, size) = match buf {
            Buf::Input(k) => (
                format!("input {k}"),
                0,
                self.sizes.inputs.get(k as usize).copied(),
            ),
            Buf::Output(k) => (
                format!("output {k}"),
                0,
                self.sizes.outputs.get(k as usize).copied(),
            ),
            Buf::Const(k) => (
                format!("constant {k}"),
                0,
                self.p.consts.get(k as usize).map(|c| c.len() as u64),
            ),
            Buf::Arena(off) => ("the arena".to_string(), off, Some(self.sizes.arena)),
            Buf::State(off) => ("the state".to_string(), off, Some(self.sizes.state)),
        };
        // A buffer number the program does not have is out of bounds at any offset.
        let Some(size) = size else {
            return Err(VerifyErrorKind::OutOfBounds(name, 0, 0, 0));
        };
        let lo = i128::from(base) + i128::from(i) * i128::from(elem);
        let hi = lo + i128::from(count) * i128::from(elem);
        if count > 0 && (lo < 0 || hi > i128::from(size)) {
            return Err(VerifyErrorKind::OutOfBounds(name, lo, hi, size));
        }
        Ok(())
    }

    /// The element type and lane count of `e`, checking its operands.
    fn expr(&self, e: &Expr) -> Result<(Scalar, u8), VerifyErrorKind> {
        Ok(match e {
            Expr::F(_, t) => {
                if !t.is_float() {
                    return Err(ty_err(format!("a float constant of type {t:?}")));
                }
                (*t, 1)
            }
            Expr::I(_, t) => (*t, 1),
            Expr::Var(v) => {
                let d = self.decl(*v)?;
                if !self.defined.contains(v) {
                    return Err(VerifyErrorKind::UndefinedVar(*v));
                }
                d
            }
            Expr::Load { buf, index, ty } => {
                self.index(index)?;
                self.bounds(*buf, index, ty.bytes(), 1)?;
                (*ty, 1)
            }
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => {
                self.index(index)?;
                self.bounds(*buf, index, ty.bytes(), u64::from(*lanes))?;
                (*ty, *lanes)
            }
            Expr::Un(op, a) => {
                let t = self.expr(a)?;
                if *op == UnOp::Not && t.0.is_float() {
                    return Err(ty_err(format!("Not of a float {:?}", t.0)));
                }
                t
            }
            Expr::Bin(op, a, b) => {
                let (ta, tb) = (self.expr(a)?, self.expr(b)?);
                if ta != tb {
                    return Err(ty_err(format!("{op:?} of {ta:?} and {tb:?}")));
                }
                if ta.0.is_float()
                    && matches!(
                        op,
                        BinOp::And | BinOp::Or | BinOp::Xor | BinOp::Shl | BinOp::Shr
                    )
                {
                    return Err(ty_err(format!("{op:?} of floats")));
                }
                if ta.1 > 1 && !ta.0.is_float() {
                    int_vector_bin(*op, ta, b)?;
                }
                ta
            }
            Expr::Cmp(op, a, b) => {
                let (ta, tb) = (self.expr(a)?, self.expr(b)?);
                if ta != tb {
                    return Err(ty_err(format!("{op:?} of {ta:?} and {tb:?}")));
                }
                (Scalar::Bool, 1)
            }
            Expr::Select(c, a, b) => {
                let tc = self.expr(c)?;
                let (ta, tb) = (self.expr(a)?, self.expr(b)?);
                if tc != (Scalar::Bool, 1) || ta != tb {
                    return Err(ty_err(format!("select({tc:?}, {ta:?}, {tb:?})")));
                }
                ta
            }
            Expr::Cast(t, a) => {
                let ta = self.expr(a)?;
                if ta.1 > 1 && (ta.0 == Scalar::Bool || *t == Scalar::Bool) {
                    return Err(ty_err(format!("a cast of {ta:?} to {t:?}")));
                }
                (*t, ta.1)
            }
            Expr::Bitcast(t, a) => {
                let ta = self.expr(a)?;
                let bits = u64::from(ta.1) * ta.0.bytes();
                let ok = if ta.1 == 1 {
                    ta.0.bytes() == t.bytes()
                } else {
                    bits.is_multiple_of(t.bytes()) && bits / t.bytes() >= 2
                };
                if !ok || ta.0 == Scalar::Bool || *t == Scalar::Bool {
                    return Err(ty_err(format!("bitcast of {ta:?} to {t:?}")));
                }
                (*t, (bits / t.bytes()) as u8)
            }
            Expr::Widen(h, a) => {
                let ta = self.expr(a)?;
                let w = crate::kernel::widened(ta.0);
                if ta.1 < 4 || ta.1 % 2 != 0 || w == ta.0 {
                    return Err(ty_err(format!("widen {h:?} of {ta:?}")));
                }
                (w, ta.1 / 2)
            }
            Expr::Dot(a, b, acc) => {
                let (ta, tb, tc) = (self.expr(a)?, self.expr(b)?, self.expr(acc)?);
                if !matches!(ta.0, Scalar::I8 | Scalar::U8)
                    || tb.0 != Scalar::I8
                    || ta.1 != tb.1
                    || tc != (Scalar::I32, ta.1 / 4)
                    || ta.1 < 8
                    || ta.1 % 4 != 0
                {
                    return Err(ty_err(format!("dot of {ta:?}, {tb:?} into {tc:?}")));
                }
                tc
            }
            Expr::Splat(lanes, a) => {
                let ta = self.expr(a)?;
                if ta.1 != 1 || *lanes < 2 {
                    return Err(ty_err(format!("splat<{lanes}> of {ta:?}")));
                }
                (ta.0, *lanes)
            }
            Expr::Extract(a, k) => {
                let ta = self.expr(a)?;
                if *k >= ta.1 {
                    return Err(ty_err(format!("lane {k} of {ta:?}")));
                }
                (ta.0, 1)
            }
            Expr::Reduce(op, a) => {
                let ta = self.expr(a)?;
                if ta.1 < 2 || !matches!(op, BinOp::Add | BinOp::Min | BinOp::Max) {
                    return Err(ty_err(format!("reduce<{op:?}> of {ta:?}")));
                }
                (ta.0, 1)
            }
            Expr::MulAdd(a, b, c) => {
                let (ta, tb, tc) = (self.expr(a)?, self.expr(b)?, self.expr(c)?);
                if ta != tb || ta != tc || !ta.0.is_float() {
                    return Err(ty_err(format!("muladd of {ta:?}, {tb:?}, {tc:?}")));
                }
                ta
            }
        })
    }
}

/// Checks a lane-wise operation on integer vectors: the operations the
/// module doc lists, with a [`Expr::Splat`] shift amount.
fn int_vector_bin(op: BinOp, t: (Scalar, u8), rhs: &Expr) -> Result<(), VerifyErrorKind> {
    let ok = match op {
        BinOp::Add | BinOp::Sub | BinOp::And | BinOp::Or | BinOp::Xor => true,
        BinOp::Min | BinOp::Max => true,
        BinOp::Mul => t.0.bytes() > 1,
        BinOp::Shl | BinOp::Shr => matches!(rhs, Expr::Splat(..)),
        BinOp::Div | BinOp::Rem | BinOp::Pow => false,
    };
    if ok && t.0 != Scalar::Bool {
        Ok(())
    } else {
        Err(ty_err(format!("{op:?} of integer vectors {t:?}")))
    }
}

/// The value of an `I64` expression made of constants only.
fn const_i64(e: &Expr) -> Option<i64> {
    match e {
        Expr::I(v, Scalar::I64) => Some(*v),
        Expr::Bin(op, a, b) => {
            let (a, b) = (const_i64(a)?, const_i64(b)?);
            match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul(b),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::build::{add, f, i, load, var};

    fn sizes() -> BufSizes {
        BufSizes {
            inputs: vec![16],
            outputs: vec![16],
            arena: 64,
            state: 8,
        }
    }

    fn check(p: &Program) -> Result<(), VerifyError> {
        verify(p, &sizes(), "test", true)
    }

    /// `out[k] = in[k] + 1` for k in 0..4: valid.
    fn good() -> Program {
        let mut p = Program::default();
        let k = p.var(Scalar::I64);
        let t = p.var(Scalar::F32);
        p.body = vec![Stmt::for_loop(
            k,
            i(0),
            i(4),
            vec![
                Stmt::Set(
                    t,
                    add(
                        load(Buf::Input(0), var(k), Scalar::F32),
                        f(1.0, Scalar::F32),
                    ),
                ),
                Stmt::Store {
                    buf: Buf::Output(0),
                    index: var(k),
                    value: var(t),
                },
            ],
        )];
        p
    }

    #[test]
    fn accepts_a_valid_program() {
        assert_eq!(check(&good()), Ok(()));
    }

    #[test]
    fn rejects_an_undefined_variable() {
        let mut p = good();
        let u = p.var(Scalar::F32);
        p.body.push(Stmt::Store {
            buf: Buf::Output(0),
            index: i(0),
            value: var(u),
        });
        let e = check(&p).unwrap_err();
        assert_eq!(e.kind, VerifyErrorKind::UndefinedVar(u));
        assert_eq!(e.pass, "test");
        assert_eq!(e.stmt, "out0[0i64] = v2");
        assert!(e.to_string().contains("after pass 'test'"), "{e}");
    }

    #[test]
    fn rejects_an_unknown_variable() {
        let mut p = good();
        p.body.push(Stmt::Set(Var(9), i(0)));
        assert_eq!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::UnknownVar(Var(9))
        );
    }

    #[test]
    fn rejects_an_out_of_bounds_static_store() {
        let mut p = good();
        // Element 4 of a 16-byte f32 output is bytes 16..20.
        p.body.push(Stmt::Store {
            buf: Buf::Output(0),
            index: add(i(2), i(2)),
            value: f(0.0, Scalar::F32),
        });
        let e = check(&p).unwrap_err();
        assert_eq!(
            e.kind,
            VerifyErrorKind::OutOfBounds("output 0".into(), 16, 20, 16)
        );
        // An arena offset counts from the buffer's base.
        let mut p = good();
        p.body.push(Stmt::Store {
            buf: Buf::Arena(60),
            index: i(1),
            value: f(0.0, Scalar::F32),
        });
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::OutOfBounds(_, 64, 68, 64)
        ));
        // A vector store's last lane counts too.
        let mut p = good();
        p.body.push(Stmt::VStore {
            buf: Buf::Input(0),
            index: i(1),
            value: crate::kernel::build::splat(4, f(0.0, Scalar::F32)),
        });
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::OutOfBounds(_, 4, 20, 16)
        ));
    }

    #[test]
    fn rejects_type_mismatches() {
        // An f32 variable set to an i64.
        let mut p = good();
        let t = Var(1);
        p.body.push(Stmt::Set(t, i(3)));
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::Type(_)
        ));
        // f32 + i64.
        let mut p = good();
        p.body.push(Stmt::Set(t, add(f(1.0, Scalar::F32), i(1))));
        let e = check(&p).unwrap_err();
        assert!(
            matches!(e.kind, VerifyErrorKind::Type(ref m) if m.starts_with("Add")),
            "{e}"
        );
        // A float index.
        let mut p = good();
        p.body.push(Stmt::Store {
            buf: Buf::Output(0),
            index: f(0.0, Scalar::F64),
            value: f(0.0, Scalar::F32),
        });
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::Type(_)
        ));
    }

    #[test]
    fn rejects_a_nested_or_leaky_parallel_loop_once_legalized() {
        let mut p = good();
        let (j, outer) = (p.var(Scalar::I64), p.var(Scalar::I64));
        let body = vec![Stmt::Store {
            buf: Buf::Output(0),
            index: var(j),
            value: f(0.0, Scalar::F32),
        }];
        p.body = vec![Stmt::for_loop(
            outer,
            i(0),
            i(1),
            vec![Stmt::Parallel {
                var: j,
                extent: 4,
                body: body.clone(),
            }],
        )];
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::Parallel(_)
        ));
        assert_eq!(verify(&p, &sizes(), "lower", false), Ok(()));
        // Reading a variable set outside the loop.
        let mut p = good();
        let (j, k) = (p.var(Scalar::I64), p.var(Scalar::I64));
        p.body = vec![
            Stmt::Set(k, i(0)),
            Stmt::Parallel {
                var: j,
                extent: 4,
                body: vec![Stmt::Store {
                    buf: Buf::Output(0),
                    index: add(var(j), var(k)),
                    value: f(0.0, Scalar::F32),
                }],
            },
        ];
        assert_eq!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::UndefinedVar(k)
        );
    }

    /// A run-time check at the top level or in a loop is fine; one inside a
    /// parallel loop (in any pass: no outlined task has a fault path), of an
    /// undeclared check or of a non-`i64` value is refused.
    #[test]
    fn checks_stay_out_of_parallel_loops() {
        let mut p = good();
        let j = p.var(Scalar::I64);
        let check_j = p.check(var(j), "index", -4, 4);
        p.body = vec![Stmt::for_loop(j, i(0), i(4), check_j.clone())];
        assert_eq!(check(&p), Ok(()));
        p.body = vec![Stmt::Parallel {
            var: j,
            extent: 4,
            body: check_j,
        }];
        for legal in [true, false] {
            let e = verify(&p, &sizes(), "test", legal).unwrap_err();
            assert!(e.to_string().contains("inside a parallel loop"), "{e}");
        }
        p.body = vec![Stmt::Check {
            value: i(0),
            check: 1,
        }];
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::Type(_)
        ));
        p.body = vec![Stmt::Check {
            value: f(0.0, Scalar::F32),
            check: 0,
        }];
        assert!(matches!(
            check(&p).unwrap_err().kind,
            VerifyErrorKind::Type(_)
        ));
    }
}
