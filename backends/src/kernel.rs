//! The loop-level kernel IR shared by the code generators.
//!
//! A [`Program`] is the body of `smelt_model_run`: loop nests over buffers
//! with scalar loads, stores and arithmetic. Every graph op is lowered to it
//! once (`lower/`); Cranelift and LLVM generate machine code from it,
//! so a kernel is written once for every backend and target. Math functions
//! without a machine instruction (exp, tanh, erf, …) stay [`UnOp`]s here and
//! are expanded into polynomials by [`crate::mathexp`] before code
//! generation, so both backends share one approximation.
//!
//! **Architecture Invariant:** the kernel IR addresses memory only through
//! [`Buf`]s — a graph input, a graph output, an arena offset, a constant or
//! a state-buffer offset — and element indices; it never allocates.
//!
//! ## Vectors
//!
//! Besides scalars the IR has vectors of `lanes` elements of one [`Scalar`],
//! 128, 256 or 512 bits wide (`lanes · bytes` = 16, 32 or 64): the
//! schedules pick the width from the program's [`VectorShape`] (4 `f32`
//! lanes on every baseline, 8 with AVX2, 16 with AVX-512F). The LLVM backend
//! emits any of them (`<8 x float>`, `<16 x float>`); the Cranelift backend
//! has 128-bit vectors only and refuses a program with wider ones
//! ([`Program::widest_vector_bytes`]).
//! An expression's element type is [`Program::ty`], its lane count
//! [`Program::lanes`] (1 for scalars); a variable's lane count is fixed when
//! it is made ([`Program::vector_var`]). The vector forms are explicit so a
//! backend that meets one it cannot emit fails loudly instead of computing
//! one lane:
//!
//! - [`Expr::VLoad`] / [`Stmt::VStore`]: `lanes` consecutive elements from
//!   element `index` (no alignment is assumed);
//! - [`Expr::Splat`]: a scalar in every lane; [`Expr::Extract`]: one lane;
//!   [`Expr::Reduce`]: `Add`, `Min` or `Max` across the lanes, lane 0 first;
//! - [`Expr::Un`] (`Neg`, `Abs`, `Sqrt`) and [`Expr::Bin`] (`Add`, `Sub`,
//!   `Mul`, `Div`, `Min`, `Max`) apply lane-wise when their operands are
//!   float vectors of the same lane count;
//! - [`Expr::MulAdd`] is `a · b + c` for scalars or vectors, fused into one
//!   rounding where the target has an FMA instruction (aarch64, x86 with
//!   `+fma`) and two roundings where it does not (the x86-64-v2 baseline),
//!   so it is used only
//!   where either rounding is within the op's tolerance (sums of products).
//!
//!
//! Integer vectors (`i8`/`u8` lanes and up, 128 bits on every target) serve
//! the block-quantized kernels, which unpack weights in registers:
//!
//! - [`Expr::VLoad`], [`Stmt::VStore`], [`Expr::Splat`] and
//!   [`Expr::Extract`] take any integer lane type;
//! - [`Expr::Bin`] `Add`, `Sub`, `Mul`, `And`, `Or`, `Xor`, `Shl` and `Shr`
//!   apply lane-wise to integer vectors (wrapping; a shift's amount is a
//!   [`Expr::Splat`], one amount for every lane; `Mul` of 8-bit lanes is
//!   not offered, x86 has no instruction for it);
//! - [`Expr::Widen`] takes the low or high half of an integer vector's lanes
//!   and extends each to twice its width (`i8x16` → `i16x8` → `i32x4`, sign-
//!   or zero-extending by the lane type), keeping the vector's bit width;
//! - [`Expr::Cast`] of a vector converts lane by lane (same lane count) with
//!   the scalar cast's semantics; Cranelift emits only casts that keep the
//!   lane width (`i32x4` ↔ `f32x4`), LLVM any;
//! - [`Expr::Bitcast`] of a vector reinterprets its bits as a vector of
//!   another lane type and the same bit width (`u8x16` → `i32x4`);
//! - [`Expr::Dot`] is the widening multiply-accumulate of 8-bit integers,
//!   `acc[j] + Σ_{t<4} a[4j+t] · b[4j+t]` into `i32` lanes, the form of
//!   x86's `vpdpbusd`/`pmaddwd` and ARM's `sdot`; it is written generically
//!   and each backend picks the instructions.
//!
//! Comparisons, selects, loads of other types and the polynomial math
//! functions stay scalar.
//!
//! ## Half types
//!
//! [`Scalar::F16`] and [`Scalar::BF16`] are storage types: 2 bytes in
//! memory, computed in `f32`. Lowering uses them like any float type (a
//! half graph value is a half [`Buf`]), and an expression of a half type
//! means its `f32` value: loads widen exactly, arithmetic, variables and
//! constants are `f32`, and rounding to the half happens only where a value
//! is stored to a half buffer or cast to a half type. Each op's result is
//! rounded when it is stored, which is what the ONNX reference computes
//! (numpy evaluates each op in f16); inside one kernel (a reduction's
//! accumulator, a fused epilogue) values stay `f32`, which is as accurate
//! or more. The pass [`half::expand_halves`], right after lowering, makes
//! that explicit: `U16` loads and stores and the integer conversions of
//! [`half`] (round to nearest even, subnormals, overflow to infinity,
//! NaN kept), written once in the kernel IR, so every target and both code
//! generators convert alike without F16C, `fp16` extensions or libcalls.
//! The vectorizer and the code generators never see a half type; both code
//! generators refuse a program that still has one. Half vectors do not
//! exist (a half loop stays scalar).
//!
//! ## Parallel loops
//!
//! [`Stmt::Parallel`] is a loop whose iterations are independent, run on the
//! runtime's thread pool (`--threads`). Schedules make one with
//! [`Program::par_for`] / [`Program::par_nest`]; [`legalize_parallel`] keeps
//! it only at the top level of the program and reading nothing set outside
//! it, so the code generators can outline its body into a function of
//! `(ctx, lo, hi)`.

use std::convert::Infallible;

use smelt_ir::Bytes;

pub mod build;
mod check;
pub mod half;
mod print;

pub use check::CheckInfo;

/// Scalar element types the kernel IR computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Scalar {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    /// Stored as one byte, 0 or 1.
    Bool,
    /// IEEE binary16, a storage type: computed in `f32` (see the module
    /// doc, "Half types").
    F16,
    /// bfloat16 (the upper half of an `f32`), a storage type like `F16`.
    BF16,
}

impl Scalar {
    /// Size in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Scalar::I8 | Scalar::U8 | Scalar::Bool => 1,
            Scalar::I16 | Scalar::U16 | Scalar::F16 | Scalar::BF16 => 2,
            Scalar::F32 | Scalar::I32 | Scalar::U32 => 4,
            Scalar::F64 | Scalar::I64 | Scalar::U64 => 8,
        }
    }

    /// True for `F32`, `F64` and the half types.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64 | Scalar::F16 | Scalar::BF16)
    }

    /// True for the storage-only half types `F16` and `BF16`.
    pub fn is_half(self) -> bool {
        matches!(self, Scalar::F16 | Scalar::BF16)
    }

    /// The type values of this type are computed in: `F32` for the half
    /// types, the type itself otherwise.
    pub fn compute(self) -> Scalar {
        if self.is_half() { Scalar::F32 } else { self }
    }

    /// True for the signed integer types.
    pub fn is_signed(self) -> bool {
        matches!(self, Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64)
    }

    /// The scalar type of an IR dtype, if the kernel IR has one.
    pub fn of(d: smelt_ir::DType) -> Option<Scalar> {
        use smelt_ir::DType as D;
        Some(match d {
            D::F32 => Scalar::F32,
            D::F64 => Scalar::F64,
            D::I8 => Scalar::I8,
            D::U8 => Scalar::U8,
            D::I16 => Scalar::I16,
            D::U16 => Scalar::U16,
            D::I32 => Scalar::I32,
            D::U32 => Scalar::U32,
            D::I64 => Scalar::I64,
            D::U64 => Scalar::U64,
            D::Bool => Scalar::Bool,
            D::F16 => Scalar::F16,
            D::BF16 => Scalar::BF16,
        })
    }

    /// The IR dtype of this scalar type.
    pub fn dtype(self) -> smelt_ir::DType {
        use smelt_ir::DType as D;
        match self {
            Scalar::F32 => D::F32,
            Scalar::F64 => D::F64,
            Scalar::I8 => D::I8,
            Scalar::U8 => D::U8,
            Scalar::I16 => D::I16,
            Scalar::U16 => D::U16,
            Scalar::I32 => D::I32,
            Scalar::U32 => D::U32,
            Scalar::I64 => D::I64,
            Scalar::U64 => D::U64,
            Scalar::Bool => D::Bool,
            Scalar::F16 => D::F16,
            Scalar::BF16 => D::BF16,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::I8 => "i8",
            Scalar::U8 => "u8",
            Scalar::I16 => "i16",
            Scalar::U16 => "u16",
            Scalar::I32 => "i32",
            Scalar::U32 => "u32",
            Scalar::I64 => "i64",
            Scalar::U64 => "u64",
            Scalar::Bool => "bool",
            Scalar::F16 => "f16",
            Scalar::BF16 => "bf16",
        }
    }
}

/// Lanes of a 128-bit `f32` vector: the width of every baseline target and
/// of the Cranelift backend.
pub const LANES_F32: u8 = 4;

/// What the schedules may assume about the target's vector unit: the `f32`
/// lane count of one vector register, how many vector registers there are
/// (what bounds a register tile) and whether a fused multiply-add exists.
/// Chosen per target from the resolved CPU and features (for LLVM,
/// `LlvmTarget::vector_shape`); the default is the 128-bit baseline every
/// target and both code generators have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VectorShape {
    /// `f32` lanes per vector: 4, 8 or 16.
    pub f32_lanes: u8,
    /// Architectural vector (or, without a vector unit, FPU) registers.
    pub registers: u8,
    /// Whether the target has a fused multiply-add instruction.
    pub fma: bool,
}

impl VectorShape {
    /// 128-bit vectors, 16 registers, no FMA (x86-64-v2, and the shape
    /// every target can run).
    pub const BASELINE: VectorShape = VectorShape {
        f32_lanes: LANES_F32,
        registers: 16,
        fma: false,
    };

    /// Bytes of one vector register.
    pub fn vector_bytes(self) -> u32 {
        u32::from(self.f32_lanes) * 4
    }
}

impl Default for VectorShape {
    fn default() -> Self {
        VectorShape::BASELINE
    }
}

/// A memory region a kernel reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    /// Graph input `i` (read-only).
    Input(u32),
    /// Graph output `i`.
    Output(u32),
    /// The arena, at a byte offset fixed by the memory plan.
    Arena(u64),
    /// Constant `i` of the program (read-only data in the artifact).
    Const(u32),
    /// The state buffer (`NAME_run`'s fourth argument), at a byte offset
    /// fixed by the memory plan: read by the state inputs, written only by
    /// the copies after the last kernel of a run.
    State(u64),
}

/// A mutable scalar variable (loop counters, accumulators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

/// Unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum UnOp {
    Neg,
    Abs,
    Sqrt,
    Floor,
    Ceil,
    Trunc,
    /// Round half to even.
    Nearest,
    /// Bitwise not (integers), logical not (bool).
    Not,
    // Expanded to polynomials by `mathexp` before code generation.
    Exp,
    Log,
    Tanh,
    Erf,
    Sin,
    Cos,
}

/// Binary operations; both operands have the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Float division, or truncating integer division.
    Div,
    /// Integer remainder with the dividend's sign (C `%`).
    Rem,
    /// NaN-propagating for floats.
    Min,
    /// NaN-propagating for floats.
    Max,
    And,
    Or,
    Xor,
    Shl,
    /// Arithmetic for signed types.
    Shr,
    /// `powf` (floats); expanded by `mathexp`.
    Pow,
}

/// Which half of a vector's lanes an [`Expr::Widen`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Half {
    /// Lanes `0 .. lanes/2`.
    Low,
    /// Lanes `lanes/2 .. lanes`.
    High,
}

/// Comparisons; the result is `Bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A typed scalar expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A float constant.
    F(f64, Scalar),
    /// An integer (or bool) constant.
    I(i64, Scalar),
    /// The current value of a variable.
    Var(Var),
    /// Element `index` of `buf`, of type `ty`.
    Load {
        /// The buffer.
        buf: Buf,
        /// The element index (an `I64` expression).
        index: Box<Expr>,
        /// The element type.
        ty: Scalar,
    },
    /// A unary operation.
    Un(UnOp, Box<Expr>),
    /// A binary operation.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A comparison (`Bool` result; NaN compares false except `Ne`).
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`, `cond` is `Bool`.
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A numeric conversion with ONNX `Cast` semantics (float → int
    /// truncates and saturates, int → int wraps, to bool is `!= 0`); of a
    /// vector, lane by lane (the lane count stays).
    Cast(Scalar, Box<Expr>),
    /// Reinterprets the bits as another type of the same size; a vector
    /// becomes a vector of the same bit width (`u8x16` → `i32x4`), lanes in
    /// little-endian order.
    Bitcast(Scalar, Box<Expr>),
    /// One half of an integer vector's lanes, each extended to twice its
    /// width (sign-extended for signed lane types, zero-extended for
    /// unsigned): `i8`/`u8` → `i16`/`u16`, `i16`/`u16` → `i32`/`u32`,
    /// `i32`/`u32` → `i64`/`u64`. The result has half the lanes and the
    /// same bit width.
    Widen(Half, Box<Expr>),
    /// `Dot(a, b, acc)`: `a` and `b` 8-bit integer vectors of `4n` lanes
    /// (`a` `I8` or `U8`, `b` `I8`), `acc` an `I32` vector of `n` lanes;
    /// lane `j` of the result is `acc[j] + Σ_{t<4} a[4j+t] · b[4j+t]`, the
    /// products and their sum exact (at most 4 · 255 · 128 in magnitude),
    /// the addition to `acc` wrapping.
    Dot(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `lanes` consecutive elements of `buf` from element `index`: a vector.
    VLoad {
        /// The buffer.
        buf: Buf,
        /// The element index of lane 0 (an `I64` expression).
        index: Box<Expr>,
        /// The element type.
        ty: Scalar,
        /// The lane count.
        lanes: u8,
    },
    /// A vector of `lanes` copies of a scalar.
    Splat(u8, Box<Expr>),
    /// Lane `k` of a vector, a scalar.
    Extract(Box<Expr>, u8),
    /// The lanes of a vector combined by `Add`, `Min` or `Max`, in lane
    /// order: a scalar.
    Reduce(BinOp, Box<Expr>),
    /// `a · b + c` (scalars or vectors), fused where the target can.
    MulAdd(Box<Expr>, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Calls `f` on each operand (a load's index included), in order.
    pub fn for_each_child<'a>(&'a self, mut f: impl FnMut(&'a Expr)) {
        match self {
            Expr::F(..) | Expr::I(..) | Expr::Var(_) => {}
            Expr::Load { index, .. } | Expr::VLoad { index, .. } => f(index),
            Expr::Un(_, a)
            | Expr::Cast(_, a)
            | Expr::Bitcast(_, a)
            | Expr::Splat(_, a)
            | Expr::Extract(a, _)
            | Expr::Reduce(_, a)
            | Expr::Widen(_, a) => f(a),
            Expr::Bin(_, a, b) | Expr::Cmp(_, a, b) => {
                f(a);
                f(b);
            }
            Expr::Select(a, b, c) | Expr::MulAdd(a, b, c) | Expr::Dot(a, b, c) => {
                f(a);
                f(b);
                f(c);
            }
        }
    }

    /// The expression with `f` applied to each operand (a load's index
    /// included); everything else stays.
    pub fn map_children(self, mut f: impl FnMut(Expr) -> Expr) -> Expr {
        let Ok(e) = self.try_map_children(|a| Ok::<_, Infallible>(f(a)));
        e
    }

    /// [`Expr::map_children`] with an `f` that may fail: the first error,
    /// operands in order.
    pub fn try_map_children<E>(
        self,
        mut f: impl FnMut(Expr) -> Result<Expr, E>,
    ) -> Result<Expr, E> {
        let mut b = |a: Box<Expr>| f(*a).map(Box::new);
        Ok(match self {
            Expr::F(..) | Expr::I(..) | Expr::Var(_) => self,
            Expr::Load { buf, index, ty } => Expr::Load {
                buf,
                index: b(index)?,
                ty,
            },
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => Expr::VLoad {
                buf,
                index: b(index)?,
                ty,
                lanes,
            },
            Expr::Un(op, a) => Expr::Un(op, b(a)?),
            Expr::Cast(t, a) => Expr::Cast(t, b(a)?),
            Expr::Bitcast(t, a) => Expr::Bitcast(t, b(a)?),
            Expr::Splat(l, a) => Expr::Splat(l, b(a)?),
            Expr::Extract(a, k) => Expr::Extract(b(a)?, k),
            Expr::Reduce(op, a) => Expr::Reduce(op, b(a)?),
            Expr::Bin(op, a, c) => Expr::Bin(op, b(a)?, b(c)?),
            Expr::Cmp(op, a, c) => Expr::Cmp(op, b(a)?, b(c)?),
            Expr::Select(a, c, d) => Expr::Select(b(a)?, b(c)?, b(d)?),
            Expr::MulAdd(a, c, d) => Expr::MulAdd(b(a)?, b(c)?, b(d)?),
            Expr::Widen(h, a) => Expr::Widen(h, b(a)?),
            Expr::Dot(a, c, d) => Expr::Dot(b(a)?, b(c)?, b(d)?),
        })
    }
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `var = value`.
    Set(Var, Expr),
    /// `buf[index] = value`.
    Store {
        /// The buffer.
        buf: Buf,
        /// The element index (`I64`).
        index: Expr,
        /// The value.
        value: Expr,
    },
    /// `for var in start..end { body }` over `I64`, step 1.
    For {
        /// The counter (an `I64` variable).
        var: Var,
        /// First value.
        start: Expr,
        /// One past the last value.
        end: Expr,
        /// The loop body.
        body: Vec<Stmt>,
    },
    /// `if cond { then } else { else_ }`.
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `buf[index .. index + lanes] = value` for a vector `value`.
    VStore {
        /// The buffer.
        buf: Buf,
        /// The element index of lane 0 (`I64`).
        index: Expr,
        /// The vector.
        value: Expr,
    },
    /// `for var in 0..extent { body }` with independent iterations, run on
    /// up to [`Program::threads`] threads: the code generators outline the
    /// body into a function `task(ctx, lo, hi)` running `lo..hi` and call the
    /// runtime's `smelt_parallel_for(task, ctx, extent, threads)`, which
    /// splits `0..extent` into contiguous chunks; the evaluator runs it as a
    /// plain loop. See [`Program::par_for`] for what a body may do.
    Parallel {
        /// The iteration counter (an `I64` variable).
        var: Var,
        /// The iteration count.
        extent: i64,
        /// The loop body.
        body: Vec<Stmt>,
    },
    /// Copies bytes between buffers (a `memcpy`).
    Copy(MemCopy),
    /// Fails the run unless `lo <= value < hi`, the bounds of
    /// [`Program::checks`]`[check]`: the run function stops there, fills
    /// the caller's fault record (the check, `value`, the bounds) and
    /// returns a non-zero status (see `runtime/include/smelt_model.h`).
    /// `value` is an `I64` expression. Never inside a [`Stmt::Parallel`]
    /// loop (the verifier refuses one there), so only the run function
    /// itself ever returns a fault and threaded kernels need no fault path.
    Check {
        /// The run-time value checked (`I64`).
        value: Expr,
        /// Its entry in [`Program::checks`].
        check: u32,
    },
}

/// What a [`Stmt::Copy`] copies: `bytes` bytes from `src` at byte offset
/// `src_off` to `dst` at `dst_off`. Its own struct because every code
/// generator and pass takes the five fields together.
#[derive(Clone, Debug, PartialEq)]
pub struct MemCopy {
    /// Destination.
    pub dst: Buf,
    /// Destination byte offset (`I64`).
    pub dst_off: Expr,
    /// Source.
    pub src: Buf,
    /// Source byte offset (`I64`).
    pub src_off: Expr,
    /// Byte count (`I64`).
    pub bytes: Expr,
}

impl MemCopy {
    /// Copies the first `bytes` bytes of `src` to the start of `dst`.
    pub fn whole(dst: Buf, src: Buf, bytes: i64) -> MemCopy {
        MemCopy {
            dst,
            dst_off: build::i(0),
            src,
            src_off: build::i(0),
            bytes: build::i(bytes),
        }
    }

    /// The destination offset, the source offset and the byte count, in
    /// that order (the order every walker visits them in).
    pub fn exprs(&self) -> [&Expr; 3] {
        [&self.dst_off, &self.src_off, &self.bytes]
    }
}

/// The constants of a [`Program`], indexed by [`Buf::Const`]: a list of
/// [`Bytes`].
///
/// A graph constant is the graph's own `Bytes` ([`Consts::push_shared`]: an
/// `Arc` clone, owned or memory-mapped), so weights reach the kernel IR by
/// reference and are never copied; constants made while lowering (packed
/// GEMM panels, folded tables) are pushed as owned vectors
/// ([`Consts::push`]). Everything else is the `Vec`'s (through `Deref`),
/// and an element reads as a `&[u8]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consts(Vec<Bytes>);

impl Consts {
    /// Appends a constant made while lowering (owned).
    pub fn push(&mut self, bytes: Vec<u8>) {
        self.0.push(bytes.into());
    }

    /// Appends a graph constant by reference (no copy).
    pub fn push_shared(&mut self, bytes: Bytes) {
        self.0.push(bytes);
    }
}

impl std::ops::Deref for Consts {
    type Target = Vec<Bytes>;
    fn deref(&self) -> &Vec<Bytes> {
        &self.0
    }
}

impl std::ops::DerefMut for Consts {
    fn deref_mut(&mut self) -> &mut Vec<Bytes> {
        &mut self.0
    }
}

impl From<Vec<Vec<u8>>> for Consts {
    fn from(v: Vec<Vec<u8>>) -> Consts {
        Consts(v.into_iter().map(Bytes::from).collect())
    }
}

impl Stmt {
    /// `for var in start..end { body }`.
    pub fn for_loop(var: Var, start: Expr, end: Expr, body: Vec<Stmt>) -> Stmt {
        Stmt::For {
            var,
            start,
            end,
            body,
        }
    }

    /// The first counter value of a `For` of exactly one iteration (constant
    /// bounds) whose body never assigns its counter: code generators emit
    /// its body once, setting the counter to this value before and to the
    /// next one after, as the loop leaves it.
    pub fn single_iteration(&self) -> Option<i64> {
        match self {
            Stmt::For {
                var,
                start: Expr::I(a, _),
                end: Expr::I(b, _),
                body,
            } if a.checked_add(1) == Some(*b) && !assigns(body, *var) => Some(*a),
            _ => None,
        }
    }

    /// Calls `f` on each expression the statement itself holds, in order
    /// (not those of nested bodies: see [`Stmt::for_each_body`]).
    pub fn for_each_expr<'a>(&'a self, mut f: impl FnMut(&'a Expr)) {
        match self {
            Stmt::Set(_, e) | Stmt::If(e, ..) | Stmt::Check { value: e, .. } => f(e),
            Stmt::Store { index, value, .. } | Stmt::VStore { index, value, .. } => {
                f(index);
                f(value);
            }
            Stmt::For { start, end, .. } => {
                f(start);
                f(end);
            }
            Stmt::Parallel { .. } => {}
            Stmt::Copy(c) => c.exprs().into_iter().for_each(f),
        }
    }

    /// Calls `f` on each nested statement list (a loop's body, both arms of
    /// an `If`), in order.
    pub fn for_each_body<'a>(&'a self, mut f: impl FnMut(&'a [Stmt])) {
        match self {
            Stmt::For { body, .. } | Stmt::Parallel { body, .. } => f(body),
            Stmt::If(_, t, e) => {
                f(t);
                f(e);
            }
            Stmt::Set(..)
            | Stmt::Store { .. }
            | Stmt::VStore { .. }
            | Stmt::Copy(_)
            | Stmt::Check { .. } => {}
        }
    }

    /// Calls `f` on this statement and every statement nested in it, parents
    /// first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Stmt)) {
        f(self);
        self.for_each_body(|b| b.iter().for_each(|s| s.walk(f)));
    }

    /// The statement with `f` applied to each expression it holds itself
    /// (in [`Stmt::for_each_expr`]'s order); nested bodies stay.
    pub fn map_exprs(self, mut f: impl FnMut(Expr) -> Expr) -> Stmt {
        let Ok(s) = self.try_map_exprs(|e| Ok::<_, Infallible>(f(e)));
        s
    }

    /// [`Stmt::map_exprs`] with an `f` that may fail: the first error.
    pub fn try_map_exprs<E>(self, mut f: impl FnMut(Expr) -> Result<Expr, E>) -> Result<Stmt, E> {
        Ok(match self {
            Stmt::Set(v, e) => Stmt::Set(v, f(e)?),
            Stmt::Store { buf, index, value } => Stmt::Store {
                buf,
                index: f(index)?,
                value: f(value)?,
            },
            Stmt::VStore { buf, index, value } => Stmt::VStore {
                buf,
                index: f(index)?,
                value: f(value)?,
            },
            Stmt::For {
                var,
                start,
                end,
                body,
            } => Stmt::for_loop(var, f(start)?, f(end)?, body),
            Stmt::If(c, t, e) => Stmt::If(f(c)?, t, e),
            Stmt::Check { value, check } => Stmt::Check {
                value: f(value)?,
                check,
            },
            par @ Stmt::Parallel { .. } => par,
            Stmt::Copy(c) => Stmt::Copy(MemCopy {
                dst_off: f(c.dst_off)?,
                src_off: f(c.src_off)?,
                bytes: f(c.bytes)?,
                ..c
            }),
        })
    }

    /// The statement with `f` applied to each nested statement list (in
    /// [`Stmt::for_each_body`]'s order); its own expressions stay.
    pub fn map_bodies(self, mut f: impl FnMut(Vec<Stmt>) -> Vec<Stmt>) -> Stmt {
        let Ok(s) = self.try_map_bodies(|b| Ok::<_, Infallible>(f(b)));
        s
    }

    /// [`Stmt::map_bodies`] with an `f` that may fail: the first error.
    pub fn try_map_bodies<E>(
        self,
        mut f: impl FnMut(Vec<Stmt>) -> Result<Vec<Stmt>, E>,
    ) -> Result<Stmt, E> {
        Ok(match self {
            Stmt::For {
                var,
                start,
                end,
                body,
            } => Stmt::for_loop(var, start, end, f(body)?),
            Stmt::Parallel { var, extent, body } => Stmt::Parallel {
                var,
                extent,
                body: f(body)?,
            },
            Stmt::If(c, t, e) => Stmt::If(c, f(t)?, f(e)?),
            other @ (Stmt::Set(..)
            | Stmt::Store { .. }
            | Stmt::VStore { .. }
            | Stmt::Copy(_)
            | Stmt::Check { .. }) => other,
        })
    }
}

/// The body of one model's run function plus its read-only data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Program {
    /// The (element) type of every variable.
    pub vars: Vec<Scalar>,
    /// The lane count of every variable; missing entries are scalars (1).
    pub var_lanes: Vec<u8>,
    /// Statements, in execution order.
    pub body: Vec<Stmt>,
    /// Constant data (little-endian bytes), referenced by [`Buf::Const`].
    pub consts: Consts,
    /// Arena offset of the scratch area: past every planned value, so a
    /// kernel may use it for temporaries (an im2col matrix) while it runs.
    pub scratch_base: u64,
    /// The largest scratch area any kernel asked for, in bytes.
    pub scratch_bytes: u64,
    /// The target's vector unit, which the schedules size vectors and
    /// register tiles for (set before lowering).
    pub shape: VectorShape,
    /// The threads [`Stmt::Parallel`] loops may run on (`--threads`); 0 and
    /// 1 mean one, and then the program has no parallel loops.
    pub threads: u32,
    /// The least work per thread of a parallel loop; 0 means
    /// [`MIN_PARALLEL_WORK`] (tests set 1 to split even tiny loops).
    pub parallel_min_work: u64,
    /// The run-time checks [`Stmt::Check`] refers to, in the order the
    /// model's info table lists them.
    pub checks: Vec<CheckInfo>,
    /// The node being lowered (its name and op), which [`Program::check`]
    /// names in the checks it makes.
    pub site: (String, String),
    /// Make no run-time checks (`--unchecked`): [`Program::check`] gives
    /// nothing, and indices are only clamped.
    pub unchecked: bool,
}

/// The least work (multiply-adds or element operations) a parallel loop
/// must have in all, and per thread, to be worth the dispatch (a futex wake
/// and a barrier, a few microseconds).
pub const MIN_PARALLEL_WORK: u64 = 1 << 16;

impl Program {
    /// A new variable of type `ty`.
    pub fn var(&mut self, ty: Scalar) -> Var {
        self.vector_var(ty, 1)
    }

    /// The scratch area of `bytes` bytes for one kernel's temporaries (every
    /// kernel gets the same area; it is dead once the kernel ends).
    pub fn scratch(&mut self, bytes: u64) -> Buf {
        self.scratch_bytes = self.scratch_bytes.max(bytes);
        Buf::Arena(self.scratch_base)
    }

    /// `for var in 0..extent { body }`: a [`Stmt::Parallel`] when the
    /// program has threads and the loop has enough work (`work` per
    /// iteration), else a plain `For`.
    ///
    /// The caller promises that the iterations are independent: no
    /// iteration reads what another writes, they write disjoint elements, and
    /// every variable the body reads is `var` or set by the body before it is
    /// read (the outlined body has its own variables). Scratch memory the
    /// body writes must be per iteration. The order of every reduction is
    /// then the same on any number of threads, so results are bit-identical
    /// to one thread's. [`legalize_parallel`] turns a parallel loop that did
    /// not end up at the top level of the program back into a `For`.
    pub fn par_for(&mut self, var: Var, extent: usize, work: u64, body: Vec<Stmt>) -> Stmt {
        let t = u64::from(self.threads.max(1)).min(extent as u64);
        if t >= 2 && (extent as u64).saturating_mul(work) >= t * self.min_parallel_work() {
            Stmt::Parallel {
                var,
                extent: extent as i64,
                body,
            }
        } else {
            Stmt::for_loop(var, build::i(0), build::i(extent as i64), body)
        }
    }

    /// The least work per thread of a parallel loop.
    pub fn min_parallel_work(&self) -> u64 {
        if self.parallel_min_work == 0 {
            MIN_PARALLEL_WORK
        } else {
            self.parallel_min_work
        }
    }

    /// A loop nest (`For` loops from 0, each the only statement of its
    /// parent, doing `work` in all) with its outermost loop of more than one
    /// iteration made a [`Program::par_for`]; the promise about independent
    /// iterations is the caller's, as there.
    pub fn par_nest(&mut self, mut nest: Vec<Stmt>, work: u64) -> Vec<Stmt> {
        if nest.len() != 1 {
            return nest;
        }
        match nest.pop() {
            Some(Stmt::For {
                var,
                start: Expr::I(0, ty),
                end: Expr::I(e, _),
                body,
            }) if e >= 1 => {
                if e > 1 {
                    return vec![self.par_for(var, e as usize, work / e as u64, body)];
                }
                let body = self.par_nest(body, work);
                vec![Stmt::for_loop(var, Expr::I(0, ty), Expr::I(1, ty), body)]
            }
            other => other.into_iter().collect(),
        }
    }

    /// A new variable holding a vector of `lanes` elements of type `ty`.
    pub fn vector_var(&mut self, ty: Scalar, lanes: u8) -> Var {
        self.vars.push(ty);
        self.var_lanes.resize(self.vars.len() - 1, 1);
        self.var_lanes.push(lanes);
        Var(self.vars.len() as u32 - 1)
    }

    /// The lane count of a variable (1 for scalars).
    pub fn var_lane_count(&self, v: Var) -> u8 {
        self.var_lanes.get(v.0 as usize).copied().unwrap_or(1)
    }

    /// The (element) type of an expression.
    pub fn ty(&self, e: &Expr) -> Scalar {
        match e {
            Expr::F(_, t) | Expr::I(_, t) => *t,
            Expr::Var(v) => self.vars[v.0 as usize],
            Expr::Load { ty, .. } | Expr::VLoad { ty, .. } => *ty,
            Expr::Un(_, a) | Expr::Bin(_, a, _) => self.ty(a),
            Expr::Cmp(..) => Scalar::Bool,
            Expr::Select(_, a, _) => self.ty(a),
            Expr::Cast(t, _) | Expr::Bitcast(t, _) => *t,
            Expr::Splat(_, a) | Expr::Extract(a, _) | Expr::Reduce(_, a) => self.ty(a),
            Expr::MulAdd(a, _, _) => self.ty(a),
            Expr::Widen(_, a) => widened(self.ty(a)),
            Expr::Dot(..) => Scalar::I32,
        }
    }

    /// The lane count of an expression: 1 for scalars.
    pub fn lanes(&self, e: &Expr) -> u8 {
        match e {
            Expr::F(..) | Expr::I(..) | Expr::Load { .. } | Expr::Cmp(..) => 1,
            Expr::Extract(..) | Expr::Reduce(..) => 1,
            Expr::Var(v) => self.var_lane_count(*v),
            Expr::VLoad { lanes, .. } | Expr::Splat(lanes, _) => *lanes,
            Expr::Un(_, a) | Expr::Bin(_, a, _) | Expr::Select(_, a, _) => self.lanes(a),
            Expr::MulAdd(a, _, _) | Expr::Cast(_, a) | Expr::Dot(_, _, a) => self.lanes(a),
            Expr::Bitcast(t, a) => match self.lanes(a) {
                1 => 1,
                l => (u64::from(l) * self.ty(a).bytes() / t.bytes()) as u8,
            },
            Expr::Widen(_, a) => self.lanes(a) / 2,
        }
    }

    /// The widest vector the program uses, in bytes (0 if it has none): a
    /// code generator with narrower vectors refuses the program with it.
    pub fn widest_vector_bytes(&self) -> u64 {
        let mut w = 0;
        for (k, &t) in self.vars.iter().enumerate() {
            let lanes = self.var_lane_count(Var(k as u32));
            if lanes > 1 {
                w = w.max(u64::from(lanes) * t.bytes());
            }
        }
        fn expr(p: &Program, e: &Expr, w: &mut u64) {
            match e {
                Expr::VLoad { ty, lanes, .. } => *w = (*w).max(u64::from(*lanes) * ty.bytes()),
                Expr::Splat(lanes, a) => *w = (*w).max(u64::from(*lanes) * p.ty(a).bytes()),
                Expr::Cast(t, a) if p.lanes(a) > 1 => {
                    *w = (*w).max(u64::from(p.lanes(a)) * t.bytes())
                }
                _ => {}
            }
            e.for_each_child(|c| expr(p, c, w));
        }
        for s in &self.body {
            s.walk(&mut |s| s.for_each_expr(|e| expr(self, e, &mut w)));
        }
        w
    }
}

/// The lane type twice as wide as `t` ([`Expr::Widen`]'s result); `t`
/// itself when there is none (a verifier error).
pub fn widened(t: Scalar) -> Scalar {
    match t {
        Scalar::I8 => Scalar::I16,
        Scalar::U8 => Scalar::U16,
        Scalar::I16 => Scalar::I32,
        Scalar::U16 => Scalar::U32,
        Scalar::I32 => Scalar::I64,
        Scalar::U32 => Scalar::U64,
        other => other,
    }
}

/// Makes every [`Stmt::Parallel`] one the code generators can outline: at
/// the top level of the program, reading no variable it does not set.
///
/// A top-level `for v in a..a+1` around parallel loops (a batch of one) is
/// unrolled, `v` replaced by `a`, so the loops inside reach the top level; a
/// parallel loop still nested in another statement, or reading a variable
/// set outside it, becomes a plain `For` (the program is correct either way,
/// only slower). Run after every other schedule pass.
pub fn legalize_parallel(p: &mut Program) {
    let body = std::mem::take(&mut p.body);
    let mut out = Vec::with_capacity(body.len());
    for s in body {
        match s {
            Stmt::For {
                var,
                start: Expr::I(a, ty),
                end: Expr::I(b, _),
                body,
            } if b == a + 1 && body.iter().any(contains_parallel) => {
                for st in body {
                    out.push(subst_stmt(st, var, &Expr::I(a, ty)));
                }
            }
            other => out.push(other),
        }
    }
    p.body = out
        .into_iter()
        .map(|s| match s {
            Stmt::Parallel { var, extent, body } => {
                let mut set = vec![var];
                assigned(&body, &mut set);
                let mut read = Vec::new();
                for st in &body {
                    reads_stmt(st, &mut read);
                }
                let body = body.into_iter().map(demote).collect();
                if read.iter().all(|v| set.contains(v)) {
                    Stmt::Parallel { var, extent, body }
                } else {
                    demote(Stmt::Parallel { var, extent, body })
                }
            }
            other => demote(other),
        })
        .collect();
}

/// `s` with every access to `buf` moved `off` elements (of `elem_bytes`
/// bytes; `Copy` offsets are in bytes) further: how a schedule gives each
/// iteration of a parallel loop its own slice of a scratch buffer.
pub fn offset_buf(s: Stmt, buf: Buf, off: &Expr, elem_bytes: i64) -> Stmt {
    let at = |b: Buf, idx: Expr| {
        if b == buf {
            build::add(idx, off.clone())
        } else {
            idx
        }
    };
    let bytes_at = |b: Buf, o: Expr| {
        if b == buf {
            build::add(o, build::mul(off.clone(), build::i(elem_bytes)))
        } else {
            o
        }
    };
    let s = s.map_exprs(|x| offset_expr(x, buf, off)).map_bodies(|v| {
        v.into_iter()
            .map(|s| offset_buf(s, buf, off, elem_bytes))
            .collect()
    });
    match s {
        Stmt::Store {
            buf: b,
            index,
            value,
        } => Stmt::Store {
            buf: b,
            index: at(b, index),
            value,
        },
        Stmt::VStore {
            buf: b,
            index,
            value,
        } => Stmt::VStore {
            buf: b,
            index: at(b, index),
            value,
        },
        Stmt::Copy(c) => Stmt::Copy(MemCopy {
            dst_off: bytes_at(c.dst, c.dst_off),
            src_off: bytes_at(c.src, c.src_off),
            ..c
        }),
        other => other,
    }
}

fn offset_expr(x: Expr, buf: Buf, off: &Expr) -> Expr {
    let x = x.map_children(|c| offset_expr(c, buf, off));
    match x {
        Expr::Load { buf: lb, index, ty } if lb == buf => Expr::Load {
            buf: lb,
            index: Box::new(build::add(*index, off.clone())),
            ty,
        },
        Expr::VLoad {
            buf: lb,
            index,
            ty,
            lanes,
        } if lb == buf => Expr::VLoad {
            buf: lb,
            index: Box::new(build::add(*index, off.clone())),
            ty,
            lanes,
        },
        x => x,
    }
}

/// Whether some statement of `body` (nested ones included) assigns `v`
/// (a `Set`, or a loop counting with it).
pub fn assigns(body: &[Stmt], v: Var) -> bool {
    body.iter().any(|s| match s {
        Stmt::Set(w, _) => *w == v,
        Stmt::For { var, body, .. } | Stmt::Parallel { var, body, .. } => {
            *var == v || assigns(body, v)
        }
        Stmt::If(_, t, e) => assigns(t, v) || assigns(e, v),
        Stmt::Store { .. } | Stmt::VStore { .. } | Stmt::Copy(_) | Stmt::Check { .. } => false,
    })
}

/// Whether a statement is or contains a parallel loop.
pub fn contains_parallel(s: &Stmt) -> bool {
    let mut found = false;
    s.walk(&mut |s| found |= matches!(s, Stmt::Parallel { .. }));
    found
}

/// `s` with every parallel loop (itself included) a plain `For`.
fn demote(s: Stmt) -> Stmt {
    match s.map_bodies(|b| b.into_iter().map(demote).collect()) {
        Stmt::Parallel { var, extent, body } => {
            Stmt::for_loop(var, build::i(0), build::i(extent), body)
        }
        other => other,
    }
}

fn assigned(body: &[Stmt], out: &mut Vec<Var>) {
    for s in body {
        s.walk(&mut |s| match s {
            Stmt::Set(v, _) | Stmt::For { var: v, .. } | Stmt::Parallel { var: v, .. } => {
                out.push(*v)
            }
            Stmt::If(..)
            | Stmt::Store { .. }
            | Stmt::VStore { .. }
            | Stmt::Copy(_)
            | Stmt::Check { .. } => {}
        });
    }
}

fn reads_stmt(s: &Stmt, out: &mut Vec<Var>) {
    s.walk(&mut |s| s.for_each_expr(|e| reads_expr(e, out)));
}

fn reads_expr(e: &Expr, out: &mut Vec<Var>) {
    if let Expr::Var(v) = e
        && !out.contains(v)
    {
        out.push(*v);
    }
    e.for_each_child(|c| reads_expr(c, out));
}

/// `s` with every read of `v` replaced by `with` (`v` is not assigned in `s`).
fn subst_stmt(s: Stmt, v: Var, with: &Expr) -> Stmt {
    s.map_exprs(|x| subst_expr(x, v, with))
        .map_bodies(|b| b.into_iter().map(|s| subst_stmt(s, v, with)).collect())
}

fn subst_expr(x: Expr, v: Var, with: &Expr) -> Expr {
    match x {
        Expr::Var(w) if w == v => with.clone(),
        x => x.map_children(|c| subst_expr(c, v, with)),
    }
}
