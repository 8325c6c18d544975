//! The kernel IR's text form: what `Program::print` writes (and
//! `crate::kernel_parse` reads back).

use std::fmt::{self, Write};

use super::{Buf, Expr, Program, Stmt};

impl Program {
    /// Renders one statement (and what it nests) as [`Program::print`] does.
    pub fn print_stmt(&self, st: &Stmt) -> String {
        let mut s = String::new();
        print_stmts(self, std::slice::from_ref(st), 0, &mut s);
        s
    }

    /// Renders the program as text (for `--print-kernels` and golden tests).
    pub fn print(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.consts.iter().enumerate() {
            let _ = writeln!(s, "const {i}: {} bytes", c.len());
        }
        for (i, c) in self.checks.iter().enumerate() {
            let _ = writeln!(
                s,
                "bounds {i}: {:?} {:?} {:?} {}..{}",
                c.node, c.op, c.what, c.lo, c.hi
            );
        }
        print_stmts(self, &self.body, 0, &mut s);
        s
    }
}

fn print_stmts(p: &Program, body: &[Stmt], depth: usize, s: &mut String) {
    let pad = "  ".repeat(depth);
    for st in body {
        match st {
            Stmt::Set(v, e) => {
                let lanes = p.var_lane_count(*v);
                let x = if lanes == 1 {
                    String::new()
                } else {
                    format!("x{lanes}")
                };
                let _ = writeln!(
                    s,
                    "{pad}v{}: {}{x} = {}",
                    v.0,
                    p.vars.get(v.0 as usize).map_or("?", |t| t.name()),
                    ExprFmt(e)
                );
            }
            Stmt::VStore { buf, index, value } => {
                let _ = writeln!(
                    s,
                    "{pad}{}[{}..] = {}",
                    BufFmt(*buf),
                    ExprFmt(index),
                    ExprFmt(value)
                );
            }
            Stmt::Store { buf, index, value } => {
                let _ = writeln!(
                    s,
                    "{pad}{}[{}] = {}",
                    BufFmt(*buf),
                    ExprFmt(index),
                    ExprFmt(value)
                );
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => {
                let _ = writeln!(
                    s,
                    "{pad}for v{} in {}..{} {{",
                    var.0,
                    ExprFmt(start),
                    ExprFmt(end)
                );
                print_stmts(p, body, depth + 1, s);
                let _ = writeln!(s, "{pad}}}");
            }
            Stmt::Parallel { var, extent, body } => {
                let _ = writeln!(s, "{pad}parallel for v{} in 0..{extent} {{", var.0);
                print_stmts(p, body, depth + 1, s);
                let _ = writeln!(s, "{pad}}}");
            }
            Stmt::If(c, t, e) => {
                let _ = writeln!(s, "{pad}if {} {{", ExprFmt(c));
                print_stmts(p, t, depth + 1, s);
                if !e.is_empty() {
                    let _ = writeln!(s, "{pad}}} else {{");
                    print_stmts(p, e, depth + 1, s);
                }
                let _ = writeln!(s, "{pad}}}");
            }
            Stmt::Check { value, check } => {
                let _ = writeln!(s, "{pad}check {check}: {}", ExprFmt(value));
            }
            Stmt::Copy(c) => {
                let _ = writeln!(
                    s,
                    "{pad}copy {}+{} <- {}+{}, {} bytes",
                    BufFmt(c.dst),
                    ExprFmt(&c.dst_off),
                    BufFmt(c.src),
                    ExprFmt(&c.src_off),
                    ExprFmt(&c.bytes)
                );
            }
        }
    }
}

struct BufFmt(Buf);

impl fmt::Display for BufFmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Buf::Input(i) => write!(f, "in{i}"),
            Buf::Output(i) => write!(f, "out{i}"),
            Buf::Arena(o) => write!(f, "arena@{o}"),
            Buf::Const(i) => write!(f, "const{i}"),
            Buf::State(o) => write!(f, "state@{o}"),
        }
    }
}

struct ExprFmt<'a>(&'a Expr);

impl fmt::Display for ExprFmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::F(v, t) => write!(f, "{v:?}{}", t.name()),
            Expr::I(v, t) => write!(f, "{v}{}", t.name()),
            Expr::Var(v) => write!(f, "v{}", v.0),
            Expr::Load { buf, index, ty } => {
                write!(f, "{}:{}[{}]", BufFmt(*buf), ty.name(), ExprFmt(index))
            }
            Expr::Un(op, a) => write!(f, "{op:?}({})", ExprFmt(a)),
            Expr::Bin(op, a, b) => write!(f, "{op:?}({}, {})", ExprFmt(a), ExprFmt(b)),
            Expr::Cmp(op, a, b) => write!(f, "{op:?}({}, {})", ExprFmt(a), ExprFmt(b)),
            Expr::Select(c, a, b) => {
                write!(f, "select({}, {}, {})", ExprFmt(c), ExprFmt(a), ExprFmt(b))
            }
            Expr::Cast(t, a) => write!(f, "cast<{}>({})", t.name(), ExprFmt(a)),
            Expr::Bitcast(t, a) => write!(f, "bitcast<{}>({})", t.name(), ExprFmt(a)),
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => write!(
                f,
                "{}:{}x{lanes}[{}..]",
                BufFmt(*buf),
                ty.name(),
                ExprFmt(index)
            ),
            Expr::Splat(lanes, a) => write!(f, "splat<{lanes}>({})", ExprFmt(a)),
            Expr::Extract(a, k) => write!(f, "extract<{k}>({})", ExprFmt(a)),
            Expr::Reduce(op, a) => write!(f, "reduce<{op:?}>({})", ExprFmt(a)),
            Expr::MulAdd(a, b, c) => {
                write!(f, "muladd({}, {}, {})", ExprFmt(a), ExprFmt(b), ExprFmt(c))
            }
            Expr::Widen(h, a) => {
                let h = match h {
                    super::Half::Low => "lo",
                    super::Half::High => "hi",
                };
                write!(f, "widen_{h}({})", ExprFmt(a))
            }
            Expr::Dot(a, b, c) => {
                write!(f, "dot({}, {}, {})", ExprFmt(a), ExprFmt(b), ExprFmt(c))
            }
        }
    }
}
