//! Differential test of the code generators: small random well-typed
//! kernel programs (deterministic seeds) compiled by Cranelift and by LLVM
//! for x86_64, linked with a C harness and run natively; each output must
//! equal the [`crate::eval`] evaluator's bit for bit (any NaN matches any
//! NaN: the payload of a generated NaN is the hardware's, not the IR's).
//!
//! A program has three inputs (`x: f32[N]`, `a: i32[N]`, `b: i64[N]`),
//! three outputs of the same types and lengths `2N`, one constant and an
//! `f32[N]` arena buffer. Its body is straight-line f32/f64/integer
//! arithmetic in a loop over the inputs (loads, stores, casts through
//! every integer width, compares and selects), a second loop reading back
//! what the first stored (under an `if`), a 4-lane vector loop with a
//! reduction, straight-line integer vector code (the block kernels' forms)
//! and a copy from the arena to an output. The
//! operations that are undefined in the kernel IR (division by zero,
//! `MIN / -1`) and math functions expanded by `mathexp` are not generated.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use smelt_ir::DType;

use crate::eval::Eval;
use crate::kernel::{
    BinOp, Buf, CmpOp, Expr, Half, LANES_F32, MemCopy, Program, Scalar, Stmt, UnOp, Var,
};
use crate::lower::{IoInfo, Lowered};
use crate::plan::MemoryPlan;

/// Elements of each input (outputs have `2N`).
const N: usize = 16;

/// Programs generated.
const PROGRAMS: u64 = 30;

/// A xorshift generator.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

fn i64c(v: i64) -> Expr {
    Expr::I(v, Scalar::I64)
}

/// The generator's state: the program, its loop counter and the scalar
/// variables set so far (by type).
struct Gen {
    r: Rng,
    p: Program,
    i: Var,
    fvars: Vec<Var>,
    ivars: Vec<(Var, Scalar)>,
}

impl Gen {
    /// An element index: the counter, a constant, or a rotated counter.
    fn index(&mut self) -> Expr {
        match self.r.below(3) {
            0 => Expr::Var(self.i),
            1 => i64c(self.r.below(N as u64) as i64),
            _ => Expr::Bin(
                BinOp::Rem,
                bx(Expr::Bin(
                    BinOp::Add,
                    bx(Expr::Var(self.i)),
                    bx(i64c(self.r.below(N as u64) as i64)),
                )),
                bx(i64c(N as i64)),
            ),
        }
    }

    /// An `f32` expression of at most `depth` levels.
    fn fexpr(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.r.below(5) == 0 {
            return match self.r.below(5) {
                0 => {
                    let c = self
                        .r
                        .pick(&[0.0, -0.0, 0.5, -1.5, 3.0, 1e10, -2.5e-3, 7.25]);
                    Expr::F(c, Scalar::F32)
                }
                1 if !self.fvars.is_empty() => {
                    let v = self.r.pick(&self.fvars);
                    Expr::Var(v)
                }
                2 => Expr::Load {
                    buf: Buf::Const(0),
                    index: bx(self.index()),
                    ty: Scalar::F32,
                },
                _ => Expr::Load {
                    buf: Buf::Input(0),
                    index: bx(self.index()),
                    ty: Scalar::F32,
                },
            };
        }
        let d = depth - 1;
        match self.r.below(10) {
            0..=3 => {
                let op = self.r.pick(&[
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Min,
                    BinOp::Max,
                ]);
                Expr::Bin(op, bx(self.fexpr(d)), bx(self.fexpr(d)))
            }
            4 => {
                let op = self.r.pick(&[
                    UnOp::Neg,
                    UnOp::Abs,
                    UnOp::Sqrt,
                    UnOp::Floor,
                    UnOp::Ceil,
                    UnOp::Trunc,
                    UnOp::Nearest,
                ]);
                Expr::Un(op, bx(self.fexpr(d)))
            }
            5 => Expr::Select(bx(self.cond(d)), bx(self.fexpr(d)), bx(self.fexpr(d))),
            6 => {
                let t = self
                    .r
                    .pick(&[Scalar::I32, Scalar::I64, Scalar::U32, Scalar::U64]);
                let x = self.iexpr(d, Scalar::I64);
                Expr::Cast(Scalar::F32, bx(Expr::Cast(t, bx(x))))
            }
            // Through f64: arithmetic there, then rounded back.
            7 => Expr::Cast(
                Scalar::F32,
                bx(Expr::Bin(
                    self.r.pick(&[BinOp::Add, BinOp::Mul, BinOp::Div]),
                    bx(Expr::Cast(Scalar::F64, bx(self.fexpr(d)))),
                    bx(Expr::Cast(Scalar::F64, bx(self.fexpr(d)))),
                )),
            ),
            8 => Expr::MulAdd(bx(self.fexpr(d)), bx(self.fexpr(d)), bx(self.fexpr(d))),
            // The sign and low mantissa bits flipped through the integer
            // bits.
            9 if self.r.below(2) == 0 => Expr::Bitcast(
                Scalar::F32,
                bx(Expr::Bin(
                    BinOp::Xor,
                    bx(Expr::Bitcast(Scalar::I32, bx(self.non_nan(d)))),
                    bx(Expr::I(
                        self.r.pick(&[i32::MIN as i64, 1, 0x7f]),
                        Scalar::I32,
                    )),
                )),
            ),
            _ => Expr::Load {
                buf: Buf::Arena(0),
                index: bx(self.index()),
                ty: Scalar::F32,
            },
        }
    }

    /// An `f32` expression with its NaNs replaced by 0: what a bitcast to
    /// an integer reads. A NaN's sign and payload are the hardware's (or
    /// LLVM's constant folder's), not fixed by the kernel IR, and the two
    /// backends differ in them.
    fn non_nan(&mut self, d: u32) -> Expr {
        let x = self.fexpr(d);
        Expr::Select(
            bx(Expr::Cmp(CmpOp::Eq, bx(x.clone()), bx(x.clone()))),
            bx(x),
            bx(Expr::F(0.0, Scalar::F32)),
        )
    }

    /// A `Bool` comparison of two f32 or two integer expressions.
    fn cond(&mut self, d: u32) -> Expr {
        let op = self.r.pick(&[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ]);
        if self.r.below(2) == 0 {
            Expr::Cmp(op, bx(self.fexpr(d)), bx(self.fexpr(d)))
        } else {
            let t = self.r.pick(&[Scalar::I32, Scalar::I64, Scalar::U32]);
            Expr::Cmp(op, bx(self.iexpr(d, t)), bx(self.iexpr(d, t)))
        }
    }

    /// An integer expression of type `t` (`I32`, `I64`, `U32`, …).
    fn iexpr(&mut self, depth: u32, t: Scalar) -> Expr {
        if depth == 0 || self.r.below(5) == 0 {
            let leaf = match self.r.below(4) {
                0 => Expr::I(
                    self.r
                        .pick(&[0, 1, -1, 3, 31, 33, 64, -7, i32::MIN as i64, i64::MAX]),
                    Scalar::I64,
                ),
                1 => Expr::Load {
                    buf: Buf::Input(1),
                    index: bx(self.index()),
                    ty: Scalar::I32,
                },
                2 => Expr::Load {
                    buf: Buf::Input(2),
                    index: bx(self.index()),
                    ty: Scalar::I64,
                },
                _ => match self.ivars.clone().as_slice() {
                    [] => Expr::Var(self.i),
                    vs => {
                        let (v, _) = self.r.pick(vs);
                        Expr::Var(v)
                    }
                },
            };
            let from = self.p.ty(&leaf);
            return if from == t {
                leaf
            } else {
                Expr::Cast(t, bx(leaf))
            };
        }
        let d = depth - 1;
        match self.r.below(9) {
            0..=3 => {
                let op = self.r.pick(&[
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::And,
                    BinOp::Or,
                    BinOp::Xor,
                    BinOp::Shl,
                    BinOp::Shr,
                    BinOp::Min,
                    BinOp::Max,
                ]);
                Expr::Bin(op, bx(self.iexpr(d, t)), bx(self.iexpr(d, t)))
            }
            // Division by a constant that is neither 0 nor −1.
            4 => {
                let c = self.r.pick(&[3, 7, -5, 64]);
                Expr::Bin(
                    self.r.pick(&[BinOp::Div, BinOp::Rem]),
                    bx(self.iexpr(d, t)),
                    bx(Expr::Cast(t, bx(i64c(c)))),
                )
            }
            5 => Expr::Un(
                self.r.pick(&[UnOp::Neg, UnOp::Abs, UnOp::Not]),
                bx(self.iexpr(d, t)),
            ),
            // Saturating float → int, through a narrower type.
            6 => {
                let via = self.r.pick(&[
                    Scalar::I8,
                    Scalar::U8,
                    Scalar::I16,
                    Scalar::U16,
                    Scalar::I32,
                    Scalar::U32,
                    Scalar::I64,
                    Scalar::U64,
                ]);
                Expr::Cast(t, bx(Expr::Cast(via, bx(self.fexpr(d)))))
            }
            7 => Expr::Select(bx(self.cond(d)), bx(self.iexpr(d, t)), bx(self.iexpr(d, t))),
            // Wrapped through a narrow type, or a bool negated.
            _ => match self.r.below(3) {
                0 => Expr::Cast(
                    t,
                    bx(Expr::Un(
                        UnOp::Not,
                        bx(Expr::Cast(Scalar::Bool, bx(self.iexpr(d, Scalar::I64)))),
                    )),
                ),
                1 => Expr::Cast(t, bx(Expr::Bitcast(Scalar::I32, bx(self.non_nan(d))))),
                _ => {
                    let via = self.r.pick(&[Scalar::I8, Scalar::U16, Scalar::Bool]);
                    let x = self.iexpr(d, Scalar::I64);
                    Expr::Cast(t, bx(Expr::Cast(via, bx(x))))
                }
            },
        }
    }
}

/// Random program number `seed`.
fn program(seed: u64) -> Program {
    let mut g = Gen {
        r: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        p: Program::default(),
        i: Var(0),
        fvars: Vec::new(),
        ivars: Vec::new(),
    };
    g.i = g.p.var(Scalar::I64);
    g.p.consts.push(
        (0..N)
            .flat_map(|k| (k as f32 * 0.75 - 4.0).to_le_bytes())
            .collect(),
    );
    let n = i64c(N as i64);
    let depth = 3;
    // Loop 1: straight-line temporaries, stores to the arena and the
    // first half of each output.
    let mut body = Vec::new();
    for _ in 0..1 + g.r.below(3) {
        let e = g.fexpr(depth);
        let v = g.p.var(Scalar::F32);
        body.push(Stmt::Set(v, e));
        g.fvars.push(v);
    }
    for t in [Scalar::I32, Scalar::I64] {
        let e = g.iexpr(depth, t);
        let v = g.p.var(t);
        body.push(Stmt::Set(v, e));
        g.ivars.push((v, t));
    }
    let i = Expr::Var(g.i);
    body.push(Stmt::Store {
        buf: Buf::Arena(0),
        index: i.clone(),
        value: g.fexpr(depth),
    });
    body.push(Stmt::Store {
        buf: Buf::Output(0),
        index: i.clone(),
        value: g.fexpr(depth),
    });
    body.push(Stmt::Store {
        buf: Buf::Output(1),
        index: i.clone(),
        value: g.iexpr(depth, Scalar::I32),
    });
    body.push(Stmt::Store {
        buf: Buf::Output(2),
        index: i.clone(),
        value: g.iexpr(depth, Scalar::I64),
    });
    let mut stmts = vec![Stmt::for_loop(g.i, i64c(0), n.clone(), body)];
    // Loop 2: the second halves, reading back the arena (any element,
    // all written by loop 1).
    g.fvars.clear();
    g.ivars.clear();
    let hi = Expr::Bin(BinOp::Add, bx(i.clone()), bx(n.clone()));
    let cond = g.cond(depth);
    let body = vec![
        Stmt::If(
            cond,
            vec![Stmt::Store {
                buf: Buf::Output(0),
                index: hi.clone(),
                value: g.fexpr(depth),
            }],
            vec![Stmt::Store {
                buf: Buf::Output(0),
                index: hi.clone(),
                value: g.fexpr(depth),
            }],
        ),
        Stmt::Store {
            buf: Buf::Output(1),
            index: hi.clone(),
            value: g.iexpr(depth, Scalar::I32),
        },
        Stmt::Store {
            buf: Buf::Output(2),
            index: hi,
            value: g.iexpr(depth, Scalar::I64),
        },
    ];
    stmts.push(Stmt::for_loop(g.i, i64c(0), n, body));
    // Loop 3: a 4-lane accumulator over x, stored over the first lanes
    // of output 0, and its reduction.
    let lanes = LANES_F32;
    let acc = g.p.vector_var(Scalar::F32, lanes);
    let k = g.p.var(Scalar::I64);
    let vx = Expr::VLoad {
        buf: Buf::Input(0),
        index: bx(Expr::Bin(BinOp::Mul, bx(Expr::Var(k)), bx(i64c(4)))),
        ty: Scalar::F32,
        lanes,
    };
    let c = g.r.pick(&[0.5, -3.0, 1e-3]);
    let splat = Expr::Splat(lanes, bx(Expr::F(c, Scalar::F32)));
    let step = match g.r.below(3) {
        0 => Expr::MulAdd(bx(vx), bx(splat), bx(Expr::Var(acc))),
        1 => Expr::Bin(
            g.r.pick(&[BinOp::Min, BinOp::Max]),
            bx(vx),
            bx(Expr::Var(acc)),
        ),
        _ => Expr::Bin(
            BinOp::Add,
            bx(Expr::Un(
                UnOp::Abs,
                bx(Expr::Bin(BinOp::Mul, bx(vx), bx(splat))),
            )),
            bx(Expr::Var(acc)),
        ),
    };
    stmts.push(Stmt::Set(
        acc,
        Expr::Splat(lanes, bx(Expr::F(0.0, Scalar::F32))),
    ));
    stmts.push(Stmt::for_loop(
        k,
        i64c(0),
        i64c((N / 4) as i64),
        vec![Stmt::Set(acc, step)],
    ));
    stmts.push(Stmt::VStore {
        buf: Buf::Output(0),
        index: i64c(0),
        value: Expr::Var(acc),
    });
    let red = g.r.pick(&[BinOp::Add, BinOp::Min, BinOp::Max]);
    stmts.push(Stmt::Store {
        buf: Buf::Output(0),
        index: i64c(4),
        value: Expr::Reduce(red, bx(Expr::Var(acc))),
    });
    stmts.extend(int_vectors(&mut g));
    // The first four arena elements over the last four of output 0 (an
    // f32 output: the arena may hold NaNs, whose bits are the hardware's).
    stmts.push(Stmt::Copy(MemCopy {
        dst: Buf::Output(0),
        dst_off: i64c(4 * (2 * N as i64 - 4)),
        src: Buf::Arena(0),
        src_off: i64c(0),
        bytes: i64c(16),
    }));
    g.p.body = stmts;
    g.p
}

/// Straight-line integer vector code over the bytes of input `a` (the
/// forms of the block kernels: 8-bit lanes masked, shifted, added; widened
/// to `i16` and `i32`; the 8-bit dot; bitcasts; a lane-wise cast to `f32`),
/// stored over `i32` lanes 0..4 of output 1 and `f32` lanes 8..12 of
/// output 0.
fn int_vectors(g: &mut Gen) -> Vec<Stmt> {
    let bytes = |ty: Scalar, at: i64| Expr::VLoad {
        buf: Buf::Input(1),
        index: bx(i64c(at)),
        ty,
        lanes: 16,
    };
    let q = g.p.vector_var(Scalar::I8, 16);
    let u = g.p.vector_var(Scalar::U8, 16);
    let w = g.p.vector_var(Scalar::I32, 4);
    let c = |v: i64, t: Scalar| Expr::Splat(16, bx(Expr::I(v, t)));
    let op =
        g.r.pick(&[BinOp::And, BinOp::Or, BinOp::Xor, BinOp::Add, BinOp::Sub]);
    let shift = g.r.pick(&[BinOp::Shl, BinOp::Shr]);
    let amount = g.r.below(8) as i64;
    let u8s = Expr::Bin(
        shift,
        bx(Expr::Bin(
            op,
            bx(bytes(Scalar::U8, 16)),
            bx(c(0x5a, Scalar::U8)),
        )),
        bx(c(amount, Scalar::U8)),
    );
    let half = |k: u64| if k == 0 { Half::Low } else { Half::High };
    let (h1, h2) = (half(g.r.below(2)), half(g.r.below(2)));
    let widened = Expr::Widen(h2, bx(Expr::Widen(h1, bx(Expr::Var(q)))));
    let a_side = if g.r.below(2) == 0 {
        Expr::Var(u)
    } else {
        Expr::Var(q)
    };
    let dot = Expr::Dot(
        bx(a_side),
        bx(bytes(Scalar::I8, 32)),
        bx(Expr::Splat(4, bx(Expr::I(-7, Scalar::I32)))),
    );
    vec![
        Stmt::Set(q, bytes(Scalar::I8, 0)),
        Stmt::Set(u, u8s),
        Stmt::Set(
            w,
            Expr::Bin(
                BinOp::Add,
                bx(dot),
                bx(Expr::Bin(
                    BinOp::Mul,
                    bx(widened),
                    bx(Expr::Bitcast(Scalar::I32, bx(Expr::Var(u)))),
                )),
            ),
        ),
        Stmt::VStore {
            buf: Buf::Output(1),
            index: i64c(0),
            value: Expr::Var(w),
        },
        Stmt::VStore {
            buf: Buf::Output(0),
            index: i64c(8),
            value: Expr::Cast(Scalar::F32, bx(Expr::Var(w))),
        },
    ]
}

/// The inputs' bytes: `x` with signed zeros, infinities, a NaN, values
/// past every integer range and fractions at .5; `a` and `b` with the
/// extremes of their types.
fn inputs() -> [Vec<u8>; 3] {
    let x: [f32; N] = [
        0.0,
        -0.0,
        1.5,
        -2.5,
        0.5,
        3e9,
        -3e9,
        1e20,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -7.75,
        300.0,
        -129.5,
        65535.5,
        1e-40,
    ];
    let a: [i32; N] = [
        0,
        1,
        -1,
        i32::MAX,
        i32::MIN,
        7,
        -7,
        31,
        32,
        33,
        255,
        -256,
        65536,
        123_456_789,
        -2,
        2,
    ];
    let b: [i64; N] = [
        0,
        1,
        -1,
        i64::MAX,
        i64::MIN,
        63,
        64,
        65,
        -64,
        1 << 40,
        -(1 << 40),
        u32::MAX as i64,
        i32::MIN as i64,
        9,
        -9,
        1_000_000_007,
    ];
    [
        x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        b.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ]
}

/// The element types of the inputs and outputs, in order.
const TYPES: [(DType, Scalar); 3] = [
    (DType::F32, Scalar::F32),
    (DType::I32, Scalar::I32),
    (DType::I64, Scalar::I64),
];

/// `p` with the differential test's signature and memory plan.
fn lowered(p: Program) -> Lowered {
    let io = |name: &str, dtype: DType, n: usize| IoInfo {
        name: name.into(),
        dtype,
        shape: vec![n],
        bytes: smelt_ir::TensorType::new(dtype, vec![n])
            .bytes()
            .expect("small") as u64,
    };
    Lowered {
        program: p,
        inputs: TYPES.iter().map(|&(d, _)| io("in", d, N)).collect(),
        outputs: TYPES.iter().map(|&(d, _)| io("out", d, 2 * N)).collect(),
        plan: MemoryPlan {
            arena_bytes: 4 * N as u64,
            lower_bound: 4 * N as u64,
            ..MemoryPlan::default()
        },
    }
}

/// The evaluator's outputs of `p` (outputs and arena start zeroed, as in
/// the harness).
fn evaluate(p: &Program) -> Vec<u8> {
    let mut ev = Eval::new(p);
    for (k, bytes) in inputs().into_iter().enumerate() {
        ev.mem.insert(Buf::Input(k as u32), bytes);
    }
    for (k, (_, t)) in TYPES.iter().enumerate() {
        ev.mem
            .insert(Buf::Output(k as u32), vec![0; 2 * N * t.bytes() as usize]);
    }
    ev.mem.insert(Buf::Arena(0), vec![0; 4 * N]);
    ev.run();
    (0..TYPES.len() as u32)
        .flat_map(|k| ev.mem[&Buf::Output(k)].clone())
        .collect()
}

/// Reads the inputs from stdin, runs the model once and writes the
/// outputs to stdout.
const HARNESS: &str = r#"
#include <stdio.h>
#include "smelt_model.h"
#define N 16
int main(void) {
    static float x[N], y[2 * N];
    static int a[N], z[2 * N];
    static long long b[N], w[2 * N];
    static _Alignas(64) unsigned char arena[4 * N];
    if (fread(x, 4, N, stdin) != N || fread(a, 4, N, stdin) != N || fread(b, 8, N, stdin) != N)
        return 2;
    const void *ins[3] = {x, a, b};
    void *outs[3] = {y, z, w};
    if (smelt_model_run(ins, outs, arena, 0, 0) != SMELT_STATUS_OK) return 3;
    fwrite(y, 4, 2 * N, stdout);
    fwrite(z, 4, 2 * N, stdout);
    fwrite(w, 8, 2 * N, stdout);
    return 0;
}
"#;

/// Links `obj` with the harness object in `dir` and runs it with `stdin`.
pub(crate) fn run_native(dir: &Path, obj: &[u8], tag: &str, stdin: &[u8]) -> Vec<u8> {
    let o = dir.join(format!("{tag}.o"));
    let exe = dir.join(tag);
    std::fs::write(&o, obj).unwrap();
    let link = Command::new("gcc")
        .arg("-static")
        .arg(dir.join("harness.o"))
        .arg(&o)
        .args(["-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        link.status.success(),
        "{tag}: gcc: {}",
        String::from_utf8_lossy(&link.stderr)
    );
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{tag}: the harness failed");
    out.stdout
}

/// The differences between `got` and `want` (the outputs' bytes), one
/// line each; NaNs of any payload match.
fn differences(got: &[u8], want: &[u8]) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut at = 0;
    for (k, (_, t)) in TYPES.iter().enumerate() {
        let n = t.bytes() as usize;
        for e in 0..2 * N {
            let (g, w) = (&got[at..at + n], &want[at..at + n]);
            at += n;
            let same = g == w
                || (*t == Scalar::F32 && {
                    let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    f(g).is_nan() && f(w).is_nan()
                });
            if !same {
                let show = |b: &[u8]| match t {
                    Scalar::F32 => format!("{:?}", f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    Scalar::I32 => format!("{}", i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    _ => format!("{}", i64::from_le_bytes(b.try_into().unwrap())),
                };
                diffs.push(format!("out{k}[{e}]: got {}, want {}", show(g), show(w)));
            }
        }
    }
    diffs
}

/// A fresh directory holding the C harness `source` compiled to
/// `harness.o` (with `smelt_model.h`), for [`run_native`]; `None` (after
/// saying why) where the native tests cannot run: not an x86_64 host, or no
/// gcc.
pub(crate) fn harness_dir(name: &str, source: &str) -> Option<PathBuf> {
    let gcc = Command::new("gcc").arg("--version").output();
    if !cfg!(target_arch = "x86_64") || !gcc.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping the native {name} test: no x86_64 host with gcc");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("smelt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("harness.c"), source).unwrap();
    std::fs::write(dir.join("smelt_model.h"), smelt_runtime::HEADER).unwrap();
    let cc = Command::new("gcc")
        .current_dir(&dir)
        .args(["-std=c11", "-O1", "-c", "harness.c", "-o", "harness.o"])
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    Some(dir)
}

/// `l` compiled for x86_64 Linux by each code generator: `(name, object)`.
pub(crate) fn compile_both(
    l: &Lowered,
) -> [(&'static str, Result<Vec<u8>, crate::error::CodegenError>); 2] {
    let llvm_target = crate::llvm::LlvmTarget::baseline("x86_64-unknown-linux-gnu").unwrap();
    [
        (
            "cranelift",
            crate::cranelift::compile(
                l,
                crate::target::Target::X86_64Linux,
                "d",
                &crate::abi::ModelSymbols::runtime(),
            ),
        ),
        (
            "llvm",
            crate::llvm::compile(l, &llvm_target, &crate::llvm::LlvmOptions::default(), "d"),
        ),
    ]
}

/// Reads the byte count from stdin, runs the model (no inputs, one output)
/// once and writes that many bytes of its output.
const OUTPUT_HARNESS: &str = r#"
#include <stdio.h>
#include "smelt_model.h"
#define MAX (1 << 22)
int main(void) {
    static _Alignas(64) unsigned char y[MAX];
    static _Alignas(64) unsigned char arena[64];
    long long n;
    if (fread(&n, 8, 1, stdin) != 1 || n > MAX)
        return 2;
    const void *ins[1] = {0};
    void *outs[1] = {y};
    if (smelt_model_run(ins, outs, arena, 0, 0) != SMELT_STATUS_OK) return 3;
    fwrite(y, 1, (size_t) n, stdout);
    return 0;
}
"#;

/// The first `bytes` bytes of the one output of `program` (no inputs, at
/// most 64 arena bytes, at most 4 MiB of output) as each code generator's
/// native code computes it: `(backend, bytes)`; empty where the native
/// tests cannot run.
pub(crate) fn run_both_bytes(
    name: &str,
    program: Program,
    bytes: usize,
) -> Vec<(&'static str, Vec<u8>)> {
    let Some(dir) = harness_dir(name, OUTPUT_HARNESS) else {
        return Vec::new();
    };
    let l = Lowered {
        program,
        inputs: vec![],
        outputs: vec![IoInfo {
            name: "y".into(),
            dtype: DType::U8,
            shape: vec![bytes],
            bytes: bytes as u64,
        }],
        plan: MemoryPlan {
            arena_bytes: 64,
            lower_bound: 64,
            ..MemoryPlan::default()
        },
    };
    let runs = compile_both(&l)
        .into_iter()
        .map(|(backend, obj)| {
            let obj = obj.unwrap_or_else(|e| panic!("{backend}: {e}"));
            let out = run_native(&dir, &obj, backend, &(bytes as i64).to_le_bytes());
            assert_eq!(out.len(), bytes, "{backend}");
            (backend, out)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    runs
}

/// Random programs give the evaluator's results bit for bit with both
/// code generators (x86_64, natively; skipped elsewhere or without gcc).
#[test]
fn both_code_generators_match_the_evaluator() {
    let Some(dir) = harness_dir("difftest", HARNESS) else {
        return;
    };
    let mut failures = Vec::new();
    for seed in 0..PROGRAMS {
        let l = lowered(program(seed));
        let want = evaluate(&l.program);
        for (backend, obj) in compile_both(&l) {
            let obj = obj
                .unwrap_or_else(|e| panic!("seed {seed}, {backend}: {e}\n{}", l.program.print()));
            let got = run_native(&dir, &obj, &format!("{backend}{seed}"), &inputs().concat());
            let diffs = differences(&got, &want);
            if !diffs.is_empty() {
                failures.push(format!(
                    "seed {seed}, {backend}:\n  {}\n{}",
                    diffs.join("\n  "),
                    l.program.print()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
