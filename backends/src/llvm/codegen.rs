//! Kernel IR → the LLVM IR text of `smelt_model_run` and its body.
//!
//! The module's code is written as LLVM IR text and parsed by LLVM (the
//! constants' bytes and the info table are added through the API
//! afterwards, see [`super::info`]). Text rather than inkwell's builder
//! because the builder's `getelementptr` is an `unsafe fn`, and `unsafe` is
//! denied in this workspace; text also gives direct access to everything the
//! optimizer needs (parameter attributes, `inbounds`, `nsw`) and is
//! deterministic by construction.
//!
//! Shape of the code:
//!
//! - `smelt_model_run(inputs, outputs, arena[, state], fault)` loads the
//!   input and output pointers from the two arrays and calls the body's
//!   parts (`smelt_kernels_F_L`, see [`crate::split`]) in order, with each
//!   tensor as its own parameter (and the fault record), returning the
//!   first failing status (the parts after it do not run), else 0. A failed
//!   [`Stmt::Check`] fills the fault record (when it is not null) and
//!   returns 1 from its part; a part returns 0 at its end. The parts'
//!   parameters are `noalias` (the
//!   ABI says inputs, outputs, the arena and the state buffer never
//!   overlap; the constants
//!   are distinct globals), `nocapture`, aligned to their element size (the
//!   arena to 64), `dereferenceable` for their byte size, and inputs are
//!   `readonly`: what LLVM's vectorizer needs to prove loads and stores of
//!   different tensors independent. The parts are `noinline` so the
//!   attributes stay on real parameters, and so LLVM's time stays linear in
//!   the model.
//! - Kernel-IR variables are `alloca`s in the entry block of the function
//!   that mentions them (SROA/mem2reg turn them into SSA values). `for` loops are header/body/latch/exit blocks;
//!   the increment is `nsw` when the body never assigns the counter (the
//!   counter is below `end`, so it cannot overflow).
//! - No per-loop metadata: `llvm.loop.vectorize.enable` would override the
//!   cost model, and the loops it cannot vectorize (in-order float
//!   reductions) stay unvectorizable with it; the function is `mustprogress`
//!   instead (every kernel-IR loop is counted).
//! - Element indices are `i64` in the kernel IR; they are truncated to the
//!   pointer-sized integer before each `getelementptr` (a no-op on 64-bit
//!   targets, `i32` on 32-bit ARM).
//!
//! Vectors (`VLoad`, `VStore`, `Splat`, `Extract`, `Reduce`, `MulAdd` and
//! lane-wise arithmetic) are LLVM vector types of their lane count
//! (`<4 x float>`, `<8 x float>` with AVX2, `<16 x float>` with AVX-512); vector
//! accesses claim only element alignment; `Reduce` combines the lanes one
//! by one from lane 0 (no reassociation); `MulAdd` is `llvm.fmuladd`, fused
//! where the target has an FMA instruction, as the kernel IR allows.
//!
//! Semantics match the Cranelift backend expression by expression: `Min`/
//! `Max` are `llvm.minimum`/`llvm.maximum` (NaN-propagating, −0 < +0, like
//! Cranelift's `fmin`/`fmax`); shift amounts are masked to the bit width
//! (Cranelift's `ishl`/`sshr`/`ushr`; LLVM's shifts are poison beyond the
//! width); float → int casts saturate at the target type's bounds through
//! `llvm.fpto[su]i.sat` (NaN to 0), exactly as Cranelift's
//! `fcvt_to_[su]int_sat` (clamped for 8- and 16-bit types); `Nearest` is `llvm.rint` (round half
//! to even in the default floating-point environment, the only one the
//! generated code runs in; unlike `llvm.roundeven` it lowers to an
//! instruction or to `rintf`, which the runtime provides); a `Bool` is one
//! byte 0 or 1 (comparisons are zero-extended, conditions test `!= 0`);
//! integer division and remainder are LLVM's `sdiv`/`udiv`/`srem`/`urem`,
//! whose undefined cases (zero divisor, `MIN / -1`) the lowering never
//! produces (it guards them with selects; Cranelift would trap there).
//! Float arithmetic carries no fast-math flags, so LLVM neither reassociates
//! nor contracts: the results are Cranelift's bit for bit, except where
//! the polynomial math differs in nothing but instruction selection.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::ops::Range;

use crate::kernel::{BinOp, Buf, CmpOp, Expr, Half, Program, Scalar, Stmt, UnOp, Var};
use crate::lower::{IoInfo, Lowered};
use crate::split::Part;

use super::CodegenError;
use super::dot::DotIsa;

fn err(s: impl Into<String>) -> CodegenError {
    CodegenError(s.into())
}

/// The LLVM type of a scalar (`Bool` is a byte; the half types, which
/// `run_ir` refuses unexpanded, their storage).
fn lty(s: Scalar) -> &'static str {
    match s {
        Scalar::F32 => "float",
        Scalar::F64 => "double",
        Scalar::I8 | Scalar::U8 | Scalar::Bool => "i8",
        Scalar::I16 | Scalar::U16 | Scalar::F16 | Scalar::BF16 => "i16",
        Scalar::I32 | Scalar::U32 => "i32",
        Scalar::I64 | Scalar::U64 => "i64",
    }
}

/// The overload suffix of an intrinsic for a scalar type.
fn suffix(s: Scalar) -> &'static str {
    match s {
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
        Scalar::I8 | Scalar::U8 | Scalar::Bool => "i8",
        Scalar::I16 | Scalar::U16 | Scalar::F16 | Scalar::BF16 => "i16",
        Scalar::I32 | Scalar::U32 => "i32",
        Scalar::I64 | Scalar::U64 => "i64",
    }
}

/// The LLVM type of `lanes` elements of `s` (the scalar type for 1).
pub(super) fn vty(s: Scalar, lanes: u8) -> String {
    if lanes == 1 {
        lty(s).to_string()
    } else {
        format!("<{lanes} x {}>", lty(s))
    }
}

/// The overload suffix of an intrinsic for `lanes` elements of `s`.
fn vsuffix(s: Scalar, lanes: u8) -> String {
    if lanes == 1 {
        suffix(s).to_string()
    } else {
        format!("v{lanes}{}", suffix(s))
    }
}

/// A constant of `lanes` elements, each the literal `lit` of type `s`.
pub(super) fn splat_lit(s: Scalar, lanes: u8, lit: &str) -> String {
    if lanes == 1 {
        lit.to_string()
    } else {
        format!("splat ({} {lit})", lty(s))
    }
}

fn bits(s: Scalar) -> u32 {
    s.bytes() as u32 * 8
}

/// An LLVM float literal: the exact bits, as a double in hex (LLVM's form
/// for both `float` and `double`).
fn float_lit(v: f64, ty: Scalar) -> String {
    let v = if ty == Scalar::F32 {
        v as f32 as f64
    } else {
        v
    };
    format!("0x{:016X}", v.to_bits())
}

/// An LLVM integer literal of `v` truncated to the type's width (printed
/// signed, which LLVM accepts for every width).
fn int_lit(v: i64, ty: Scalar) -> String {
    let b = bits(ty);
    let v = if b == 64 {
        v
    } else {
        (v << (64 - b)) >> (64 - b)
    };
    v.to_string()
}

/// `init(state)`: zero bytes over the whole state buffer (nothing for a
/// stateless model, whose buffer may be NULL).
fn init_ir(l: &Lowered, iptr: &str, init: &str) -> String {
    let mut out = format!("define void @{init}(ptr %state) #0 {{\nentry:\n");
    if l.plan.state_bytes > 0 {
        let _ = writeln!(
            out,
            "  call void @llvm.memset.p0.{iptr}(ptr align {} %state, i8 0, {iptr} {}, i1 false)",
            crate::plan::ALIGN,
            l.plan.state_bytes
        );
    }
    out.push_str("  ret void\n}\n\n");
    if l.plan.state_bytes > 0 {
        let _ = writeln!(
            out,
            "declare void @llvm.memset.p0.{iptr}(ptr, i8, {iptr}, i1)\n"
        );
    }
    out
}

/// Which functions one LLVM module of a model holds (see [`super::emit`]):
/// a range of the body's parts and, in the first module, the entry point.
pub(super) struct Piece<'p, 'a> {
    /// Every part of the body (`crate::split`).
    pub parts: &'p [Part<'a>],
    /// The parts this module defines.
    pub defined: Range<usize>,
    /// Whether it holds the entry point (and the init function); the parts
    /// it does not define it declares.
    pub entry: bool,
}

impl Piece<'_, '_> {
    /// Whether this module holds the whole model.
    pub fn whole(&self) -> bool {
        self.entry && self.defined == (0..self.parts.len())
    }
}

/// The text of the functions `piece` holds: the init function when the
/// entry point takes the state buffer, the entry point, the parts and their
/// outlined parallel loops. In a module that holds the whole model the
/// parts are `internal`; otherwise `hidden`, and the caller makes them
/// internal once the modules are linked.
/// `symbols` names the entry point and the init function.
/// `dot` picks the instructions of [`Expr::Dot`].
pub(super) fn run_ir(
    l: &Lowered,
    ptr_bytes: u32,
    symbols: &crate::abi::ModelSymbols,
    dot: DotIsa,
    piece: &Piece,
) -> Result<String, CodegenError> {
    crate::kernel::half::check_expanded(&l.program).map_err(err)?;
    let iptr = if ptr_bytes == 4 { "i32" } else { "i64" };
    let run = &symbols.run;
    let takes_state = symbols.takes_state(l.has_state());
    let mut out = String::new();
    if takes_state && piece.entry {
        out.push_str(&init_ir(l, iptr, &symbols.init));
    }
    // The wrapper: unpacks the pointer arrays.
    let mut wrapper = String::new();
    let state_param = if takes_state { ", ptr %state" } else { "" };
    let _ = writeln!(
        wrapper,
        "define i32 @{run}(ptr nocapture readonly %inputs, ptr nocapture readonly \
         %outputs, ptr %arena{state_param}, ptr %fault) #0 {{\nentry:"
    );
    let mut args = Vec::new();
    for (kind, list) in [("inputs", &l.inputs), ("outputs", &l.outputs)] {
        for k in 0..list.len() {
            let _ = writeln!(
                wrapper,
                "  %{kind}.{k}.p = getelementptr inbounds ptr, ptr %{kind}, {iptr} {k}\n  \
                 %{kind}.{k} = load ptr, ptr %{kind}.{k}.p, align {ptr_bytes}"
            );
            args.push(format!("ptr %{kind}.{k}"));
        }
    }
    args.push("ptr %arena".into());
    if l.has_state() {
        args.push("ptr %state".into());
    }
    args.push("ptr %fault".into());
    // The body in parts (`crate::split`), called in order; the first
    // failing status returns at once.
    for (k, part) in piece.parts.iter().enumerate() {
        let _ = writeln!(
            wrapper,
            "  %s{k} = call i32 @{}({})\n  %f{k} = icmp ne i32 %s{k}, 0\n  \
             br i1 %f{k}, label %fail{k}, label %ok{k}\nfail{k}:\n  ret i32 %s{k}\nok{k}:",
            part.name(),
            args.join(", ")
        );
    }
    wrapper.push_str("  ret i32 0\n}\n\n");
    if piece.entry {
        out.push_str(&wrapper);
    }

    // The body.
    let param = |io: &IoInfo, name: String, readonly: bool| -> String {
        // Per element: an input or output buffer is aligned to its element
        // (graph inputs and outputs are dense; the verifier refuses encodings).
        let align = io.dtype.elem_bytes().max(1);
        let deref = if io.bytes > 0 {
            format!(" dereferenceable({})", io.bytes)
        } else {
            String::new()
        };
        let ro = if readonly { " readonly" } else { "" };
        format!("ptr noalias nocapture{ro} align {align}{deref} %{name}")
    };
    let mut params: Vec<String> = Vec::new();
    for (k, io) in l.inputs.iter().enumerate() {
        params.push(param(io, format!("in{k}"), true));
    }
    for (k, io) in l.outputs.iter().enumerate() {
        params.push(param(io, format!("out{k}"), false));
    }
    let arena_deref = if l.plan.arena_bytes > 0 {
        format!(" dereferenceable({})", l.plan.arena_bytes)
    } else {
        String::new()
    };
    params.push(format!(
        "ptr noalias nocapture align {}{arena_deref} %arena",
        crate::plan::ALIGN
    ));
    // The state buffer is the caller's, disjoint from the inputs, outputs
    // and arena (the ABI says so), so it is `noalias` too.
    if l.has_state() {
        params.push(format!(
            "ptr noalias nocapture align {} dereferenceable({}) %state",
            crate::plan::ALIGN,
            l.plan.state_bytes
        ));
    }
    let mut arg_names: Vec<String> = (0..l.inputs.len()).map(|k| format!("%in{k}")).collect();
    arg_names.extend((0..l.outputs.len()).map(|k| format!("%out{k}")));
    arg_names.push("%arena".into());
    if l.has_state() {
        arg_names.push("%state".into());
    }
    let mut g = Gen {
        p: &l.program,
        iptr,
        code: String::new(),
        next: 0,
        decls: BTreeSet::new(),
        align: Vec::new(),
        nin: l.inputs.len(),
        // The only 32-bit targets are ARM ones, where LLVM 19 cannot
        // select `llvm.maximum.f64`/`llvm.minimum.f64` ("Cannot select:
        // setcc"), with or without a double-precision FPU.
        expand_f64_minmax: ptr_bytes == 4,
        dot,
        in_task: false,
        par: Outlining {
            params: params.clone(),
            args: arg_names,
            ptr_bytes,
            tasks: String::new(),
            count: piece
                .parts
                .get(piece.defined.start)
                .map_or(0, |p| p.parallel_before as u32),
            entry: String::new(),
        },
    };
    for io in l.inputs.iter().chain(&l.outputs) {
        // Per element, as in the body's parameters above.
        g.align.push(io.dtype.elem_bytes().max(1) as u64);
    }
    let linkage = if piece.whole() { "internal" } else { "hidden" };
    if piece.entry {
        // The parts other modules define.
        let types = vec!["ptr"; params.len() + 1].join(", ");
        for (k, part) in piece.parts.iter().enumerate() {
            if !piece.defined.contains(&k) {
                let _ = writeln!(out, "declare hidden i32 @{}({types}) #0", part.name());
            }
        }
    }
    for part in &piece.parts[piece.defined.clone()] {
        g.code.clear();
        g.next = 0;
        g.par.entry.clear();
        g.stmts(part.body)?;
        // The fault record is the caller's, written only when a check fails.
        let _ = writeln!(
            out,
            "define {linkage} i32 @{}({}, ptr nocapture %fault) #1 {{\nentry:",
            part.name(),
            params.join(", ")
        );
        allocas(&mut out, &l.program, &part.vars);
        out.push_str(&g.par.entry);
        out.push_str(&g.code);
        out.push_str("  ret i32 0\n}\n\n");
    }
    out.push_str(&g.par.tasks);
    for d in &g.decls {
        let _ = writeln!(out, "{d}");
    }
    // Every function is nounwind: no unwind tables (on Thumb they would
    // reference `__aeabi_unwind_cpp_pr0`, which bare metal lacks). Every
    // loop is counted, so the body makes progress.
    out.push_str("\nattributes #0 = { nounwind }\n");
    out.push_str("attributes #1 = { nounwind noinline mustprogress }\n");
    Ok(out)
}

/// The emitter of the body's statements.
pub(super) struct Gen<'a> {
    p: &'a Program,
    /// The pointer-sized integer type.
    iptr: &'static str,
    code: String,
    next: u32,
    /// Intrinsic declarations used, in a deterministic order.
    decls: BTreeSet<String>,
    /// Alignment of inputs then outputs (their element size).
    align: Vec<u64>,
    /// The number of inputs.
    nin: usize,
    /// Spell f64 `Min`/`Max` as compares and selects instead of the
    /// intrinsics (see [`Gen::float_minmax_expanded`]).
    expand_f64_minmax: bool,
    /// The target's dot-product instructions.
    pub(super) dot: DotIsa,
    /// Emitting an outlined parallel loop, which has no fault path (the
    /// verifier keeps checks out of parallel loops).
    in_task: bool,
    /// Parallel loops outlined so far.
    par: Outlining,
}

/// The outlining of [`Stmt::Parallel`] loops.
///
/// Loop `N` becomes `smelt_part_N(<the body's parameters>, i64 %lo, i64
/// %hi)`, which runs iterations `lo..hi` with the same `noalias` parameters
/// as the body (so it optimizes alike), and `smelt_task_N(ptr %ctx, i64 %lo,
/// i64 %hi)`, which loads those parameters from `ctx` and calls it: the task
/// the runtime's `smelt_parallel_for(task, ctx, n, threads)` runs on each
/// thread. The body stores its parameters in a stack array `ctx` and calls
/// `smelt_parallel_for`.
struct Outlining {
    /// The body's parameter declarations and names.
    params: Vec<String>,
    args: Vec<String>,
    ptr_bytes: u32,
    /// The text of the outlined functions.
    tasks: String,
    count: u32,
    /// Allocas of the ctx arrays, for the entry block of the caller.
    entry: String,
}

impl Gen<'_> {
    fn tmp(&mut self) -> String {
        self.next += 1;
        format!("%t{}", self.next)
    }

    fn label(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}{}", self.next)
    }

    /// Emits `%tN = <rhs>` and returns `%tN`.
    pub(super) fn def(&mut self, rhs: String) -> String {
        let t = self.tmp();
        let _ = writeln!(self.code, "  {t} = {rhs}");
        t
    }

    fn line(&mut self, s: String) {
        self.code.push_str("  ");
        self.code.push_str(&s);
        self.code.push('\n');
    }

    /// A call of intrinsic `name` returning `ret`, declared on first use.
    pub(super) fn intrinsic(&mut self, ret: &str, name: &str, args: &[(&str, &str)]) -> String {
        let tys: Vec<&str> = args.iter().map(|a| a.0).collect();
        self.decls
            .insert(format!("declare {ret} @{name}({})", tys.join(", ")));
        let a: Vec<String> = args.iter().map(|(t, v)| format!("{t} {v}")).collect();
        self.def(format!("call {ret} @{name}({})", a.join(", ")))
    }

    /// An `i64` value as the pointer-sized integer.
    fn index_iptr(&mut self, v: String) -> String {
        if self.iptr == "i64" {
            v
        } else {
            self.def(format!("trunc i64 {v} to {}", self.iptr))
        }
    }

    /// The base pointer of a buffer and its known alignment.
    fn base(&mut self, buf: Buf) -> (String, u64) {
        let nin = self.nin;
        match buf {
            Buf::Input(k) => (format!("%in{k}"), self.align[k as usize]),
            Buf::Output(k) => (format!("%out{k}"), self.align[nin + k as usize]),
            Buf::Const(k) => (format!("@smelt_const_{k}"), 64),
            Buf::Arena(0) => ("%arena".into(), crate::plan::ALIGN),
            Buf::Arena(off) => {
                let p = self.def(format!(
                    "getelementptr inbounds i8, ptr %arena, {} {off}",
                    self.iptr
                ));
                // Offsets are multiples of the plan's alignment.
                (p, crate::plan::ALIGN)
            }
            Buf::State(0) => ("%state".into(), crate::plan::ALIGN),
            Buf::State(off) => {
                let p = self.def(format!(
                    "getelementptr inbounds i8, ptr %state, {} {off}",
                    self.iptr
                ));
                (p, crate::plan::ALIGN)
            }
        }
    }

    /// The address of element `index` of type `ty` in `buf`, and the access
    /// alignment (the element size, or less when the base is less aligned).
    fn addr(&mut self, buf: Buf, index: &Expr, ty: Scalar) -> Result<(String, u64), CodegenError> {
        let (base, balign) = self.base(buf);
        let i = self.expr(index)?;
        let i = self.index_iptr(i);
        let a = self.def(format!(
            "getelementptr inbounds {}, ptr {base}, {} {i}",
            lty(ty),
            self.iptr
        ));
        Ok((a, ty.bytes().min(balign)))
    }

    /// `for var in s0..e0 { body }` (`s0`, `e0`: `i64` values).
    fn counted_loop(
        &mut self,
        var: Var,
        s0: String,
        e0: String,
        body: &[Stmt],
    ) -> Result<(), CodegenError> {
        self.line(format!("store i64 {s0}, ptr %v{}", var.0));
        let (header, body_l, exit) = (self.label("loop"), self.label("body"), self.label("exit"));
        self.line(format!("br label %{header}"));
        let _ = writeln!(self.code, "{header}:");
        let cur = self.def(format!("load i64, ptr %v{}", var.0));
        let more = self.def(format!("icmp slt i64 {cur}, {e0}"));
        self.line(format!("br i1 {more}, label %{body_l}, label %{exit}"));
        let _ = writeln!(self.code, "{body_l}:");
        self.stmts(body)?;
        let cur = self.def(format!("load i64, ptr %v{}", var.0));
        let nsw = if crate::kernel::assigns(body, var) {
            ""
        } else {
            " nsw"
        };
        let next = self.def(format!("add{nsw} i64 {cur}, 1"));
        self.line(format!("store i64 {next}, ptr %v{}", var.0));
        self.line(format!("br label %{header}"));
        let _ = writeln!(self.code, "{exit}:");
        Ok(())
    }

    /// A parallel loop: outlined (see [`Outlining`]) and run through the
    /// runtime's `smelt_parallel_for`.
    fn parallel(&mut self, var: Var, extent: i64, body: &[Stmt]) -> Result<(), CodegenError> {
        let n = self.par.count;
        self.par.count += 1;
        let mut sub = Gen {
            p: self.p,
            iptr: self.iptr,
            code: String::new(),
            next: 0,
            decls: BTreeSet::new(),
            align: self.align.clone(),
            nin: self.nin,
            expand_f64_minmax: self.expand_f64_minmax,
            dot: self.dot,
            in_task: true,
            par: Outlining {
                params: vec![],
                args: vec![],
                ptr_bytes: self.par.ptr_bytes,
                tasks: String::new(),
                count: 0,
                entry: String::new(),
            },
        };
        sub.counted_loop(var, "%lo".into(), "%hi".into(), body)?;
        if sub.par.count > 0 {
            return Err(err("a parallel loop inside a parallel loop"));
        }
        self.decls.append(&mut sub.decls);
        let (iptr, pb) = (self.iptr, self.par.ptr_bytes);
        let np = self.par.args.len();
        let t = &mut self.par.tasks;
        let _ = writeln!(
            t,
            "define internal void @smelt_part_{n}({}, i64 %lo, i64 %hi) #1 {{\nentry:",
            self.par.params.join(", ")
        );
        let (mut vars, _) = crate::split::mentions(body);
        if !vars.contains(&var) {
            vars.push(var);
        }
        allocas(t, self.p, &vars);
        t.push_str(&sub.code);
        t.push_str("  ret void\n}\n\n");
        let _ = writeln!(
            t,
            "define internal void @smelt_task_{n}(ptr nocapture readonly %ctx, i64 %lo, i64 %hi) #0 {{\nentry:"
        );
        let mut loaded = Vec::new();
        for k in 0..np {
            let _ = writeln!(
                t,
                "  %a{k}.p = getelementptr inbounds ptr, ptr %ctx, {iptr} {k}\n  \
                 %a{k} = load ptr, ptr %a{k}.p, align {pb}"
            );
            loaded.push(format!("ptr %a{k}"));
        }
        let _ = writeln!(
            t,
            "  call void @smelt_part_{n}({}, i64 %lo, i64 %hi)\n  ret void\n}}\n",
            loaded.join(", ")
        );
        let _ = writeln!(
            self.par.entry,
            "  %ctx{n} = alloca [{np} x ptr], align {pb}"
        );
        for k in 0..np {
            let slot = self.def(format!(
                "getelementptr inbounds [{np} x ptr], ptr %ctx{n}, {iptr} 0, {iptr} {k}"
            ));
            let a = self.par.args[k].clone();
            self.line(format!("store ptr {a}, ptr {slot}, align {pb}"));
        }
        self.decls
            .insert("declare void @smelt_parallel_for(ptr, ptr, i64, i64)".into());
        let threads = self.p.threads.max(1);
        self.line(format!(
            "call void @smelt_parallel_for(ptr @smelt_task_{n}, ptr %ctx{n}, i64 {extent}, i64 {threads})"
        ));
        Ok(())
    }

    /// A run-time check: `value - lo <u hi - lo` (one compare for both
    /// bounds), else the fault record filled (when not null) and status 1
    /// returned from the body.
    fn check(&mut self, value: &Expr, check: u32) -> Result<(), CodegenError> {
        let c = (self.p.checks.get(check as usize))
            .ok_or_else(|| err(format!("check {check} is not declared")))?;
        let (lo, hi) = (c.lo, c.hi);
        if self.in_task {
            return Err(err("a run-time check inside a parallel loop"));
        }
        let v = self.expr(value)?;
        let d = self.def(format!("sub i64 {v}, {lo}"));
        let ok = self.def(format!("icmp ult i64 {d}, {}", hi.wrapping_sub(lo)));
        let (pass, fail, fill, done) = (
            self.label("check.ok"),
            self.label("check.fail"),
            self.label("check.fill"),
            self.label("check.ret"),
        );
        self.line(format!("br i1 {ok}, label %{pass}, label %{fail}"));
        let _ = writeln!(self.code, "{fail}:");
        let given = self.def("icmp ne ptr %fault, null".into());
        self.line(format!("br i1 {given}, label %{fill}, label %{done}"));
        let _ = writeln!(self.code, "{fill}:");
        for (ty, val, off) in [
            ("i32", check.to_string(), 0),
            ("i32", "0".into(), 4),
            ("i64", v, 8),
            ("i64", lo.to_string(), 16),
            ("i64", hi.to_string(), 24),
        ] {
            // Align 4: what every target's `smelt_fault` has at least.
            let at = self.def(format!("getelementptr inbounds i8, ptr %fault, i32 {off}"));
            self.line(format!("store {ty} {val}, ptr {at}, align 4"));
        }
        self.line(format!("br label %{done}"));
        let _ = writeln!(self.code, "{done}:");
        self.line("ret i32 1".into());
        let _ = writeln!(self.code, "{pass}:");
        Ok(())
    }

    fn stmts(&mut self, body: &[Stmt]) -> Result<(), CodegenError> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), CodegenError> {
        match s {
            Stmt::Set(v, e) => {
                let t = vty(self.p.vars[v.0 as usize], self.p.var_lane_count(*v));
                let x = self.expr(e)?;
                self.line(format!("store {t} {x}, ptr %v{}", v.0));
            }
            Stmt::VStore { buf, index, value } => {
                let (ty, lanes) = (self.p.ty(value), self.p.lanes(value));
                let x = self.expr(value)?;
                let (a, al) = self.addr(*buf, index, ty)?;
                // Element alignment only: vector accesses are not aligned
                // to their size.
                self.line(format!("store {} {x}, ptr {a}, align {al}", vty(ty, lanes)));
            }
            Stmt::Store { buf, index, value } => {
                self.scalar_only(value, "a scalar store")?;
                let ty = self.p.ty(value);
                let x = self.expr(value)?;
                let (a, al) = self.addr(*buf, index, ty)?;
                self.line(format!("store {} {x}, ptr {a}, align {al}", lty(ty)));
            }
            // One iteration: the body once, without the loop's blocks
            // (LLVM would delete the loop; not building it saves that work,
            // most of compiling a model of many tiny kernels).
            Stmt::For { var, body, .. } if let Some(a) = s.single_iteration() => {
                self.line(format!("store i64 {a}, ptr %v{}", var.0));
                self.stmts(body)?;
                self.line(format!("store i64 {}, ptr %v{}", a + 1, var.0));
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => {
                let s0 = self.expr(start)?;
                let e0 = self.expr(end)?;
                self.counted_loop(*var, s0, e0, body)?;
            }
            Stmt::Parallel { var, extent, body } => self.parallel(*var, *extent, body)?,
            Stmt::Check { value, check } => self.check(value, *check)?,
            Stmt::If(c, t, e) => {
                let cv = self.expr(c)?;
                let c1 = self.def(format!("icmp ne i8 {cv}, 0"));
                let (tl, el, join) = (self.label("then"), self.label("else"), self.label("join"));
                self.line(format!("br i1 {c1}, label %{tl}, label %{el}"));
                let _ = writeln!(self.code, "{tl}:");
                self.stmts(t)?;
                self.line(format!("br label %{join}"));
                let _ = writeln!(self.code, "{el}:");
                self.stmts(e)?;
                self.line(format!("br label %{join}"));
                let _ = writeln!(self.code, "{join}:");
            }
            Stmt::Copy(c) => {
                // Byte addresses: element addresses of a byte type.
                let (d, _) = self.addr(c.dst, &c.dst_off, Scalar::U8)?;
                let (sp, _) = self.addr(c.src, &c.src_off, Scalar::U8)?;
                let n = self.expr(&c.bytes)?;
                let n = self.index_iptr(n);
                let ip = self.iptr;
                let name = format!("llvm.memcpy.p0.p0.{ip}");
                self.decls
                    .insert(format!("declare void @{name}(ptr, ptr, {ip}, i1 immarg)"));
                self.line(format!(
                    "call void @{name}(ptr {d}, ptr {sp}, {ip} {n}, i1 false)"
                ));
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr) -> Result<String, CodegenError> {
        Ok(match e {
            Expr::F(v, t) if t.is_float() => float_lit(*v, *t),
            // An integer typed float constant: Cranelift's `iconst(v as i64)`.
            Expr::F(v, t) => int_lit(*v as i64, *t),
            Expr::I(v, t) if t.is_float() => float_lit(*v as f64, *t),
            Expr::I(v, t) => int_lit(*v, *t),
            Expr::Var(v) => {
                let t = vty(self.p.vars[v.0 as usize], self.p.var_lane_count(*v));
                self.def(format!("load {t}, ptr %v{}", v.0))
            }
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => {
                let (a, al) = self.addr(*buf, index, *ty)?;
                self.def(format!("load {}, ptr {a}, align {al}", vty(*ty, *lanes)))
            }
            Expr::Splat(lanes, a) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                let v = vty(ty, *lanes);
                let one = self.def(format!("insertelement {v} poison, {} {x}, i64 0", lty(ty)));
                self.def(format!(
                    "shufflevector {v} {one}, {v} poison, <{lanes} x i32> zeroinitializer"
                ))
            }
            Expr::Extract(a, k) => {
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                self.def(format!("extractelement {} {x}, i64 {k}", vty(ty, lanes)))
            }
            Expr::Reduce(op, a) => {
                // Lane by lane from lane 0, exactly as the Cranelift backend.
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let v = vty(ty, lanes);
                let mut acc = self.def(format!("extractelement {v} {x}, i64 0"));
                for k in 1..lanes {
                    let y = self.def(format!("extractelement {v} {x}, i64 {k}"));
                    acc = self.binary(*op, acc, y, ty, 1)?;
                }
                acc
            }
            Expr::MulAdd(a, b, c) => {
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let z = self.expr(c)?;
                if ty.is_float() {
                    // Fused where the target has an FMA instruction (aarch64,
                    // x86 with +fma), two roundings where not (the x86-64-v2
                    // baseline): what the kernel IR allows, and what the
                    // Cranelift backend does on the baselines.
                    let t = vty(ty, lanes);
                    self.intrinsic(
                        &t,
                        &format!("llvm.fmuladd.{}", vsuffix(ty, lanes)),
                        &[(&t, &x), (&t, &y), (&t, &z)],
                    )
                } else {
                    let m = self.binary(BinOp::Mul, x, y, ty, lanes)?;
                    self.binary(BinOp::Add, m, z, ty, lanes)?
                }
            }
            Expr::Load { buf, index, ty } => {
                let (a, al) = self.addr(*buf, index, *ty)?;
                self.def(format!("load {}, ptr {a}, align {al}", lty(*ty)))
            }
            Expr::Un(op, a) => {
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                self.unary(*op, x, ty, lanes)?
            }
            Expr::Bin(op, a, b) => {
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                self.binary(*op, x, y, ty, lanes)?
            }
            Expr::Cmp(op, a, b) => {
                self.scalar_only(a, "a comparison")?;
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let c = if ty.is_float() {
                    let cc = match op {
                        CmpOp::Eq => "oeq",
                        // Cranelift's `NotEqual` is unordered-or-not-equal.
                        CmpOp::Ne => "une",
                        CmpOp::Lt => "olt",
                        CmpOp::Le => "ole",
                        CmpOp::Gt => "ogt",
                        CmpOp::Ge => "oge",
                    };
                    self.def(format!("fcmp {cc} {} {x}, {y}", lty(ty)))
                } else {
                    let s = ty.is_signed();
                    let cc = match op {
                        CmpOp::Eq => "eq",
                        CmpOp::Ne => "ne",
                        CmpOp::Lt if s => "slt",
                        CmpOp::Le if s => "sle",
                        CmpOp::Gt if s => "sgt",
                        CmpOp::Ge if s => "sge",
                        CmpOp::Lt => "ult",
                        CmpOp::Le => "ule",
                        CmpOp::Gt => "ugt",
                        CmpOp::Ge => "uge",
                    };
                    self.def(format!("icmp {cc} {} {x}, {y}", lty(ty)))
                };
                self.def(format!("zext i1 {c} to i8"))
            }
            Expr::Select(c, a, b) => {
                self.scalar_only(a, "a select")?;
                let ty = self.p.ty(a);
                let cv = self.expr(c)?;
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let c1 = self.def(format!("icmp ne i8 {cv}, 0"));
                let t = lty(ty);
                self.def(format!("select i1 {c1}, {t} {x}, {t} {y}"))
            }
            Expr::Cast(to, a) => {
                let (from, lanes) = (self.p.ty(a), self.p.lanes(a));
                if lanes > 1 && (from == Scalar::Bool || *to == Scalar::Bool) {
                    return Err(err(format!("a cast of {from:?}x{lanes} to {to:?}")));
                }
                let x = self.expr(a)?;
                self.cast(x, from, *to, lanes)
            }
            Expr::Bitcast(to, a) => {
                let (from, lanes) = (self.p.ty(a), self.p.lanes(a));
                let to_lanes = self.p.lanes(e);
                let x = self.expr(a)?;
                if u64::from(lanes) * from.bytes() != u64::from(to_lanes) * to.bytes() {
                    return Err(err(format!(
                        "bitcast from {from:?} to {to:?}: the sizes differ"
                    )));
                }
                let (ft, tt) = (vty(from, lanes), vty(*to, to_lanes));
                if ft == tt {
                    x
                } else {
                    self.def(format!("bitcast {ft} {x} to {tt}"))
                }
            }
            Expr::Widen(half, a) => {
                let (from, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let h = lanes / 2;
                let first = match half {
                    Half::Low => 0,
                    Half::High => h,
                };
                let part = self.lanes_of(&x, from, lanes, (first..first + h).collect());
                let op = if from.is_signed() { "sext" } else { "zext" };
                let to = vty(crate::kernel::widened(from), h);
                self.def(format!("{op} {} {part} to {to}", vty(from, h)))
            }
            Expr::Dot(a, b, acc) => {
                let (ta, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let z = self.expr(acc)?;
                self.dot(x, y, z, ta, lanes)
            }
        })
    }

    fn unary(
        &mut self,
        op: UnOp,
        x: String,
        ty: Scalar,
        lanes: u8,
    ) -> Result<String, CodegenError> {
        let (f, t, sfx) = (ty.is_float(), vty(ty, lanes), vsuffix(ty, lanes));
        let t = t.as_str();
        let float_fn = |g: &mut Self, name: &str| {
            if !f {
                return Err(err(format!("{op:?} on the integer type {ty:?}")));
            }
            Ok(g.intrinsic(t, &format!("llvm.{name}.{sfx}"), &[(t, &x)]))
        };
        Ok(match op {
            UnOp::Neg if f => self.def(format!("fneg {t} {x}")),
            UnOp::Neg => self.def(format!("sub {t} {}, {x}", splat_lit(ty, lanes, "0"))),
            UnOp::Abs if f => float_fn(self, "fabs")?,
            UnOp::Abs => self.intrinsic(t, &format!("llvm.abs.{sfx}"), &[(t, &x), ("i1", "false")]),
            UnOp::Sqrt => float_fn(self, "sqrt")?,
            UnOp::Floor => float_fn(self, "floor")?,
            UnOp::Ceil => float_fn(self, "ceil")?,
            UnOp::Trunc => float_fn(self, "trunc")?,
            UnOp::Nearest => float_fn(self, "rint")?,
            UnOp::Not if ty == Scalar::Bool => {
                self.def(format!("xor {t} {x}, {}", splat_lit(ty, lanes, "1")))
            }
            UnOp::Not if f => return Err(err(format!("Not on the float type {ty:?}"))),
            UnOp::Not => self.def(format!("xor {t} {x}, {}", splat_lit(ty, lanes, "-1"))),
            UnOp::Exp | UnOp::Log | UnOp::Tanh | UnOp::Erf | UnOp::Sin | UnOp::Cos => {
                return Err(err(format!(
                    "{op:?} must be expanded before code generation"
                )));
            }
        })
    }

    fn binary(
        &mut self,
        op: BinOp,
        x: String,
        y: String,
        ty: Scalar,
        lanes: u8,
    ) -> Result<String, CodegenError> {
        let (f, s) = (ty.is_float(), ty.is_signed());
        let (t, sfx) = (vty(ty, lanes), vsuffix(ty, lanes));
        let t = t.as_str();
        let plain = |g: &mut Self, name: &str| g.def(format!("{name} {t} {x}, {y}"));
        let minmax = |g: &mut Self, name: &str| {
            if f && ty == Scalar::F64 && lanes == 1 && g.expand_f64_minmax {
                return g.float_minmax_expanded(name == "maximum", t, &x, &y);
            }
            g.intrinsic(t, &format!("llvm.{name}.{sfx}"), &[(t, &x), (t, &y)])
        };
        Ok(match op {
            BinOp::Add => plain(self, if f { "fadd" } else { "add" }),
            BinOp::Sub => plain(self, if f { "fsub" } else { "sub" }),
            BinOp::Mul => plain(self, if f { "fmul" } else { "mul" }),
            BinOp::Div if f => plain(self, "fdiv"),
            BinOp::Div if s => plain(self, "sdiv"),
            BinOp::Div => plain(self, "udiv"),
            BinOp::Rem if f => return Err(err(format!("Rem on the float type {ty:?}"))),
            BinOp::Rem if s => plain(self, "srem"),
            BinOp::Rem => plain(self, "urem"),
            BinOp::Min if f => minmax(self, "minimum"),
            BinOp::Min if s => minmax(self, "smin"),
            BinOp::Min => minmax(self, "umin"),
            BinOp::Max if f => minmax(self, "maximum"),
            BinOp::Max if s => minmax(self, "smax"),
            BinOp::Max => minmax(self, "umax"),
            BinOp::And | BinOp::Or | BinOp::Xor if f => {
                return Err(err(format!("{op:?} on the float type {ty:?}")));
            }
            BinOp::And => plain(self, "and"),
            BinOp::Or => plain(self, "or"),
            BinOp::Xor => plain(self, "xor"),
            BinOp::Shl | BinOp::Shr => {
                if f {
                    return Err(err(format!("{op:?} on the float type {ty:?}")));
                }
                // Cranelift takes the amount modulo the width.
                let mask = (bits(ty) - 1).to_string();
                let m = self.def(format!("and {t} {y}, {}", splat_lit(ty, lanes, &mask)));
                let name = match op {
                    BinOp::Shl => "shl",
                    _ if s => "ashr",
                    _ => "lshr",
                };
                self.def(format!("{name} {t} {x}, {m}"))
            }
            BinOp::Pow => return Err(err("Pow must be expanded before code generation")),
        })
    }

    /// `llvm.maximum`/`llvm.minimum` of two f64 scalars spelled out: NaN if
    /// either is NaN (`x + y` propagates it), the larger (smaller) of two
    /// ordered unequal values, and for equal values the bitwise AND (OR) of
    /// the two, which picks +0 (−0) from a pair of zeros of either sign.
    fn float_minmax_expanded(&mut self, max: bool, t: &str, x: &str, y: &str) -> String {
        let uno = self.def(format!("fcmp uno {t} {x}, {y}"));
        let nan = self.def(format!("fadd {t} {x}, {y}"));
        let (x_wins, y_wins) = if max { ("ogt", "olt") } else { ("olt", "ogt") };
        let xw = self.def(format!("fcmp {x_wins} {t} {x}, {y}"));
        let yw = self.def(format!("fcmp {y_wins} {t} {x}, {y}"));
        let xi = self.def(format!("bitcast {t} {x} to i64"));
        let yi = self.def(format!("bitcast {t} {y} to i64"));
        let tie = self.def(format!("{} i64 {xi}, {yi}", if max { "and" } else { "or" }));
        let tie = self.def(format!("bitcast i64 {tie} to {t}"));
        let r = self.def(format!("select i1 {yw}, {t} {y}, {t} {tie}"));
        let r = self.def(format!("select i1 {xw}, {t} {x}, {t} {r}"));
        self.def(format!("select i1 {uno}, {t} {nan}, {t} {r}"))
    }

    /// Refuses a vector operand where the kernel IR has scalars only.
    fn scalar_only(&self, a: &Expr, what: &str) -> Result<(), CodegenError> {
        match self.p.lanes(a) {
            1 => Ok(()),
            n => Err(err(format!(
                "{what} of a {n}-lane vector: the kernel IR keeps these scalar"
            ))),
        }
    }

    /// The lanes `pick` of the vector `x` (`ty` × `lanes`), a vector.
    pub(super) fn lanes_of(&mut self, x: &str, ty: Scalar, lanes: u8, pick: Vec<u8>) -> String {
        let mask: Vec<String> = pick.iter().map(|k| format!("i32 {k}")).collect();
        let v = vty(ty, lanes);
        self.def(format!(
            "shufflevector {v} {x}, {v} poison, <{} x i32> <{}>",
            pick.len(),
            mask.join(", ")
        ))
    }

    /// [`Expr::Dot`]: the target's instructions ([`super::dot`]) where it
    /// has them; else generic IR: the bytes extended to `i32`,
    /// multiplied, the four products of each group added (as strided
    /// shuffles), then `acc`.
    fn dot(&mut self, a: String, b: String, acc: String, ta: Scalar, lanes: u8) -> String {
        if let Some(r) = self.dot_isa((&a, &b, &acc), ta, lanes) {
            return r;
        }
        let n = lanes / 4;
        let (wide, acc_t) = (vty(Scalar::I32, lanes), vty(Scalar::I32, n));
        let op = if ta.is_signed() { "sext" } else { "zext" };
        let xa = self.def(format!("{op} {} {a} to {wide}", vty(ta, lanes)));
        let xb = self.def(format!("sext {} {b} to {wide}", vty(Scalar::I8, lanes)));
        let prod = self.def(format!("mul nsw {wide} {xa}, {xb}"));
        let parts: Vec<String> = (0..4u8)
            .map(|t| {
                self.lanes_of(
                    &prod,
                    Scalar::I32,
                    lanes,
                    (0..n).map(|j| 4 * j + t).collect(),
                )
            })
            .collect();
        let s01 = self.def(format!("add nsw {acc_t} {}, {}", parts[0], parts[1]));
        let s23 = self.def(format!("add nsw {acc_t} {}, {}", parts[2], parts[3]));
        let s = self.def(format!("add nsw {acc_t} {s01}, {s23}"));
        self.def(format!("add {acc_t} {acc}, {s}"))
    }

    fn cast(&mut self, x: String, from: Scalar, to: Scalar, lanes: u8) -> String {
        let (ft, tt) = (vty(from, lanes), vty(to, lanes));
        let (ft, tt) = (ft.as_str(), tt.as_str());
        if from == to {
            return x;
        }
        if to == Scalar::Bool {
            let c = if from.is_float() {
                // NaN is true, as with Cranelift's `NotEqual`.
                self.def(format!("fcmp une {ft} {x}, 0.0"))
            } else {
                self.def(format!("icmp ne {ft} {x}, 0"))
            };
            return self.def(format!("zext i1 {c} to i8"));
        }
        match (from.is_float(), to.is_float()) {
            (true, true) => {
                let op = if bits(to) > bits(from) {
                    "fpext"
                } else {
                    "fptrunc"
                };
                self.def(format!("{op} {ft} {x} to {tt}"))
            }
            (true, false) => {
                // Saturating at the bounds of the target type (NaN to 0).
                let name = if to.is_signed() { "fptosi" } else { "fptoui" };
                self.intrinsic(
                    tt,
                    &format!(
                        "llvm.{name}.sat.{}.{}",
                        vsuffix(to, lanes),
                        vsuffix(from, lanes)
                    ),
                    &[(ft, &x)],
                )
            }
            (false, true) => {
                let op = if from.is_signed() { "sitofp" } else { "uitofp" };
                self.def(format!("{op} {ft} {x} to {tt}"))
            }
            (false, false) => {
                if bits(to) > bits(from) {
                    let op = if from.is_signed() { "sext" } else { "zext" };
                    self.def(format!("{op} {ft} {x} to {tt}"))
                } else if bits(to) < bits(from) {
                    self.def(format!("trunc {ft} {x} to {tt}"))
                } else {
                    x
                }
            }
        }
    }
}

/// The `alloca`s of `vars` (the variables one function mentions), for its
/// entry block.
fn allocas(out: &mut String, p: &Program, vars: &[Var]) {
    for &v in vars {
        let ty = vty(p.vars[v.0 as usize], p.var_lane_count(v));
        let _ = writeln!(out, "  %v{} = alloca {ty}", v.0);
    }
}
