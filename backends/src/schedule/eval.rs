//! A small kernel-IR evaluator for the schedule tests: integers as `i64`,
//! floats as `f32` lanes (the schedules compute in f32), vectors included.
//! It checks that a scheduled kernel computes what its plain form does
//! without going through a code generator.

use std::collections::HashMap;

use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Stmt, UnOp};

/// A value: an integer or `f32` lanes (one for a scalar).
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    /// An integer or bool.
    I(i64),
    /// Float lanes.
    F(Vec<f32>),
}

impl V {
    fn i(&self) -> i64 {
        match self {
            V::I(v) => *v,
            V::F(_) => panic!("float where an integer was expected"),
        }
    }
    fn f(&self) -> &[f32] {
        match self {
            V::F(v) => v,
            V::I(_) => panic!("integer where a float was expected"),
        }
    }
}

/// Runs `p` over `mem` (buffers by [`Buf`], as bytes).
pub struct Eval<'a> {
    p: &'a Program,
    vars: Vec<V>,
    /// The buffers.
    pub mem: HashMap<Buf, Vec<u8>>,
}

impl<'a> Eval<'a> {
    /// An evaluator whose constants are `p`'s.
    pub fn new(p: &'a Program) -> Self {
        let mut mem = HashMap::new();
        for (k, c) in p.consts.iter().enumerate() {
            mem.insert(Buf::Const(k as u32), c.to_vec());
        }
        Eval {
            p,
            vars: vec![V::I(0); p.vars.len()],
            mem,
        }
    }

    /// Runs the program.
    pub fn run(&mut self) {
        let p = self.p;
        self.stmts(&p.body);
    }

    /// Buffer `buf` as f32s.
    pub fn f32s(&self, buf: Buf) -> Vec<f32> {
        super::gemm::f32s(&self.mem[&buf])
    }

    fn read(&self, buf: Buf, k: usize) -> f32 {
        let m = &self.mem[&buf];
        f32::from_le_bytes([m[4 * k], m[4 * k + 1], m[4 * k + 2], m[4 * k + 3]])
    }

    fn write(&mut self, buf: Buf, k: usize, v: f32) {
        let m = self.mem.get_mut(&buf).expect("buffer");
        m[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            match s {
                Stmt::Set(v, e) => self.vars[v.0 as usize] = self.expr(e),
                Stmt::Store { buf, index, value } | Stmt::VStore { buf, index, value } => {
                    let k = self.expr(index).i() as usize;
                    let v = self.expr(value);
                    for (l, x) in v.f().to_vec().into_iter().enumerate() {
                        self.write(*buf, k + l, x);
                    }
                }
                Stmt::For {
                    var,
                    start,
                    end,
                    body,
                } => {
                    let (s, e) = (self.expr(start).i(), self.expr(end).i());
                    for k in s..e {
                        self.vars[var.0 as usize] = V::I(k);
                        self.stmts(body);
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
                Stmt::Copy {
                    dst,
                    dst_off,
                    src,
                    src_off,
                    bytes,
                } => {
                    let (d, s, n) = (
                        self.expr(dst_off).i() as usize,
                        self.expr(src_off).i() as usize,
                        self.expr(bytes).i() as usize,
                    );
                    let data = self.mem[src][s..s + n].to_vec();
                    self.mem.get_mut(dst).expect("buffer")[d..d + n].copy_from_slice(&data);
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) -> V {
        match e {
            Expr::F(v, _) => V::F(vec![*v as f32]),
            Expr::I(v, t) if t.is_float() => V::F(vec![*v as f32]),
            Expr::I(v, _) => V::I(*v),
            Expr::Var(v) => self.vars[v.0 as usize].clone(),
            Expr::Load { buf, index, .. } => {
                let k = self.expr(index).i() as usize;
                V::F(vec![self.read(*buf, k)])
            }
            Expr::VLoad {
                buf, index, lanes, ..
            } => {
                let k = self.expr(index).i() as usize;
                V::F(
                    (0..*lanes as usize)
                        .map(|l| self.read(*buf, k + l))
                        .collect(),
                )
            }
            Expr::Splat(n, a) => {
                let x = self.expr(a).f()[0];
                V::F(vec![x; *n as usize])
            }
            Expr::Extract(a, k) => V::F(vec![self.expr(a).f()[*k as usize]]),
            Expr::Reduce(op, a) => {
                let v = self.expr(a);
                let r = v.f()[1..]
                    .iter()
                    .fold(v.f()[0], |acc, &x| fbin(*op, acc, x));
                V::F(vec![r])
            }
            Expr::MulAdd(a, b, c) => {
                let (x, y, z) = (self.expr(a), self.expr(b), self.expr(c));
                V::F(
                    x.f()
                        .iter()
                        .zip(y.f())
                        .zip(z.f())
                        .map(|((x, y), z)| x * y + z)
                        .collect(),
                )
            }
            Expr::Bin(op, a, b) => match (self.expr(a), self.expr(b)) {
                (V::I(x), V::I(y)) => V::I(match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => x / y,
                    BinOp::Rem => x % y,
                    BinOp::Min => x.min(y),
                    BinOp::Max => x.max(y),
                    other => panic!("{other:?} on integers"),
                }),
                (V::F(x), V::F(y)) => {
                    V::F(x.iter().zip(&y).map(|(a, b)| fbin(*op, *a, *b)).collect())
                }
                _ => panic!("mixed operands"),
            },
            Expr::Un(op, a) => {
                let x = self.expr(a);
                V::F(
                    x.f()
                        .iter()
                        .map(|&v| match op {
                            UnOp::Neg => -v,
                            UnOp::Abs => v.abs(),
                            UnOp::Sqrt => v.sqrt(),
                            UnOp::Floor => v.floor(),
                            UnOp::Ceil => v.ceil(),
                            UnOp::Nearest => v.round_ties_even(),
                            // Math functions unexpanded (the code generators
                            // expand them into polynomials, tested apart).
                            UnOp::Exp => v.exp(),
                            UnOp::Tanh => v.tanh(),
                            other => panic!("{other:?} in the schedule evaluator"),
                        })
                        .collect(),
                )
            }
            Expr::Cmp(op, a, b) => {
                let (x, y) = (self.expr(a).f()[0], self.expr(b).f()[0]);
                V::I(match op {
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                } as i64)
            }
            Expr::Select(c, a, b) => {
                if self.expr(c).i() != 0 {
                    self.expr(a)
                } else {
                    self.expr(b)
                }
            }
            other => panic!("the schedule evaluator has no {other:?}"),
        }
    }
}

fn fbin(op: BinOp, a: f32, b: f32) -> f32 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Min => a.min(b),
        BinOp::Max => a.max(b),
        other => panic!("{other:?} on floats"),
    }
}
