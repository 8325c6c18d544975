//! The LLVM backend: kernel IR → LLVM IR → an optimized relocatable object
//! (or its assembly or LLVM IR text) exporting the runtime ABI
//! (`smelt_model_run` and the `smelt_model` info table; see
//! `runtime/include/smelt_model.h`).
//!
//! It translates the same kernel IR as the Cranelift backend, after the same
//! [`crate::mathexp`] expansion, with the same semantics for every
//! expression; LLVM's `default<O3>` pipeline then unrolls and vectorizes the
//! loop nests. Unlike the Cranelift backend it is not tied to the runtime's
//! [`crate::target::Target`] list: it takes any triple LLVM's x86, AArch64
//! and ARM back ends know, with a CPU and a feature string
//! ([`LlvmTarget`]), and lays out the info table with LLVM's struct types
//! and the target's data layout, so it is right for 32-bit ARM as well.
//!
//! - [`target`]: triples (normalized), default CPUs and features, `native`;
//! - [`codegen`]: the run function (kernel IR statements and expressions);
//! - [`dot`]: the target's dot-product instructions for `Expr::Dot`;
//! - [`info`]: the `smelt_model` table and the read-only data.

use inkwell::GlobalVisibility;
use inkwell::OptimizationLevel;
use inkwell::context::Context;
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::{Linkage, Module};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, TargetMachine};
use inkwell::values::GlobalValue;

use crate::abi::ModelSymbols;
pub use crate::error::CodegenError;
use crate::lower::Lowered;

mod codegen;
pub mod dot;
mod info;
pub mod target;
#[cfg(test)]
mod tests;

pub use target::LlvmTarget;

/// Parts of the body (`crate::split`) one LLVM module holds at most.
const PARTS_PER_MODULE: usize = 64;

/// Options of the LLVM backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlvmOptions {
    /// LLVM's optimization level, 0 to 3: the `default<ON>` pass pipeline
    /// and the code generator's level.
    pub opt_level: u8,
}

impl Default for LlvmOptions {
    fn default() -> Self {
        LlvmOptions { opt_level: 3 }
    }
}

/// What [`emit`] produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A relocatable ELF object.
    Object,
    /// The target's assembly text.
    Assembly,
    /// The optimized LLVM IR text.
    LlvmIr,
}

/// Compiles a lowered model (math functions already expanded) to a
/// relocatable object for `target`.
pub fn compile(
    l: &Lowered,
    target: &LlvmTarget,
    opts: &LlvmOptions,
    model_name: &str,
) -> Result<Vec<u8>, CodegenError> {
    emit(
        l,
        target,
        opts,
        model_name,
        &ModelSymbols::runtime(),
        Output::Object,
    )
}

/// Like [`compile`], but the target's assembly text.
pub fn compile_asm(
    l: &Lowered,
    target: &LlvmTarget,
    opts: &LlvmOptions,
    model_name: &str,
) -> Result<String, CodegenError> {
    emit_text(
        l,
        target,
        opts,
        model_name,
        Output::Assembly,
        "assembly text",
    )
}

/// Like [`compile`], but the optimized LLVM IR text.
pub fn compile_llvm_ir(
    l: &Lowered,
    target: &LlvmTarget,
    opts: &LlvmOptions,
    model_name: &str,
) -> Result<String, CodegenError> {
    emit_text(l, target, opts, model_name, Output::LlvmIr, "LLVM IR text")
}

/// [`emit`] of a text output (`what` names it in the error).
fn emit_text(
    l: &Lowered,
    target: &LlvmTarget,
    opts: &LlvmOptions,
    model_name: &str,
    out: Output,
    what: &str,
) -> Result<String, CodegenError> {
    let bytes = emit(l, target, opts, model_name, &ModelSymbols::runtime(), out)?;
    String::from_utf8(bytes).map_err(|e| CodegenError(format!("{what}: {e}")))
}

/// Builds the module, verifies it, runs the pass pipeline and writes `out`;
/// `symbols` names the entry point and the info table.
pub fn emit(
    l: &Lowered,
    target: &LlvmTarget,
    opts: &LlvmOptions,
    model_name: &str,
    symbols: &ModelSymbols,
    out: Output,
) -> Result<Vec<u8>, CodegenError> {
    if opts.opt_level > 3 {
        return Err(CodegenError(format!(
            "LLVM optimization level {} is out of range: use 0 to 3",
            opts.opt_level
        )));
    }
    let tm = target_machine(target, opts)?;
    let ctx = Context::create();
    let parts = crate::split::parts(&l.program, crate::split::PART_BUDGET);
    // A model of more than `PARTS_PER_MODULE` parts is optimized a group of
    // parts at a time, each group its own module linked into the first once
    // optimized: LLVM holds every function of a module (and the analyses
    // of each) at once, so one module of a 100,000-node model took more
    // memory than the rest of the compiler together. A smaller model is
    // one module, whose optimizer sees the constants and every call.
    let groups: Vec<std::ops::Range<usize>> = (0..parts.len())
        .step_by(PARTS_PER_MODULE)
        .map(|s| s..(s + PARTS_PER_MODULE).min(parts.len()))
        .collect();
    let piece = |defined: std::ops::Range<usize>, entry| codegen::Piece {
        parts: &parts,
        defined,
        entry,
    };
    let first = groups.first().cloned().unwrap_or(0..0);
    let dot = dot::DotIsa::of(target);
    let module = build_module(&ctx, l, &tm, model_name, symbols, dot, &piece(first, true))?;
    // The other modules read the constants the first defines: visible to
    // them until linked.
    let consts: Vec<GlobalValue> = (0..l.program.consts.len())
        .filter_map(|i| module.get_global(&format!("smelt_const_{i}")))
        .collect();
    if groups.len() > 1 {
        for g in &consts {
            g.set_linkage(Linkage::External);
            g.set_visibility(GlobalVisibility::Hidden);
        }
    }
    verify(&module)?;
    optimize(&module, &tm, opts)?;
    for group in groups.iter().skip(1) {
        let m = build_group(&ctx, l, &tm, model_name, dot, &piece(group.clone(), false))?;
        verify(&m)?;
        optimize(&m, &tm, opts)?;
        module
            .link_in_module(m)
            .map_err(|e| CodegenError(format!("linking the model's modules: {e}")))?;
    }
    if groups.len() > 1 {
        // Local again, as in a single module: two models in one program
        // must not clash.
        for part in &parts {
            if let Some(f) = module.get_function(&part.name()) {
                f.as_global_value()
                    .set_visibility(GlobalVisibility::Default);
                f.set_linkage(Linkage::Internal);
            }
        }
        for g in &consts {
            g.set_visibility(GlobalVisibility::Default);
            g.set_linkage(Linkage::Private);
        }
        verify(&module)?;
    }
    match out {
        Output::LlvmIr => Ok(module.print_to_string().to_bytes().to_vec()),
        Output::Object | Output::Assembly => {
            let ft = if out == Output::Object {
                FileType::Object
            } else {
                FileType::Assembly
            };
            let buf = tm
                .write_to_memory_buffer(&module, ft)
                .map_err(|e| CodegenError(format!("LLVM code generation: {e}")))?;
            Ok(buf.as_slice().to_vec())
        }
    }
}

/// An object for target `t` holding one exported read-only symbol,
/// `symbol`, with the bytes `bytes` aligned to `align`: data the runtime
/// reads beside a model (a chat executable's `smelt_llm` descriptor). Any
/// backend's executable may link it: LLVM writes objects for every target.
pub fn data_object(
    t: &LlvmTarget,
    symbol: &str,
    bytes: &[u8],
    align: u32,
) -> Result<Vec<u8>, CodegenError> {
    let tm = target_machine(t, &LlvmOptions::default())?;
    let ctx = Context::create();
    let module = ctx.create_module(symbol);
    module.set_triple(&tm.get_triple());
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    module.set_source_file_name(symbol);
    info::define_data(&module, symbol, bytes, align);
    verify(&module)?;
    let buf = tm
        .write_to_memory_buffer(&module, FileType::Object)
        .map_err(|e| CodegenError(format!("LLVM code generation: {e}")))?;
    Ok(buf.as_slice().to_vec())
}

/// LLVM's verifier on a module we made (a failure is a backend bug).
fn verify(module: &Module) -> Result<(), CodegenError> {
    module
        .verify()
        .map_err(|e| CodegenError(format!("invalid LLVM IR (a backend bug): {e}")))
}

/// The text of one module: the target's data layout and triple, the
/// declarations of constants `consts` (defined in the first module) and
/// the code of `piece`.
#[allow(clippy::too_many_arguments)]
fn module_text(
    l: &Lowered,
    tm: &TargetMachine,
    model_name: &str,
    symbols: &ModelSymbols,
    dot: dot::DotIsa,
    piece: &codegen::Piece,
    consts: impl Iterator<Item = usize>,
) -> Result<String, CodegenError> {
    let td = tm.get_target_data();
    let layout = td.get_data_layout();
    let layout = layout.as_str().to_string_lossy();
    let triple = tm.get_triple();
    let triple = triple.as_str().to_string_lossy();
    let mut text = format!(
        "; smelt model {model_name:?}\ntarget datalayout = \"{layout}\"\ntarget triple = \"{triple}\"\n\n"
    );
    for i in consts {
        let len = l.program.consts.get(i).map_or(0, |c| c.len());
        text.push_str(&format!(
            "@smelt_const_{i} = external global [{len} x i8], align 64\n"
        ));
    }
    text.push('\n');
    let ptr_bytes = td.get_pointer_byte_size(None);
    text.push_str(&codegen::run_ir(l, ptr_bytes, symbols, dot, piece)?);
    Ok(text)
}

/// Parses `text` into a module named `model_name`.
fn parse<'c>(ctx: &'c Context, text: &str, model_name: &str) -> Result<Module<'c>, CodegenError> {
    let buf = MemoryBuffer::create_from_memory_range_copy(text.as_bytes(), model_name);
    let module = ctx.create_module_from_ir(buf).map_err(|e| {
        CodegenError(format!(
            "LLVM rejected the generated IR (a backend bug): {e}"
        ))
    })?;
    module.set_name(model_name);
    // The object's file symbol: the model name, never a path of this machine.
    module.set_source_file_name(model_name);
    Ok(module)
}

/// The first module of a lowered model, before optimization: the code of
/// `piece` (the entry point and the first parts) parsed from the text
/// [`codegen`] writes, then the constants' bytes and the info table added
/// through the API (weights never pass through text).
fn build_module<'c>(
    ctx: &'c Context,
    l: &Lowered,
    tm: &TargetMachine,
    model_name: &str,
    symbols: &ModelSymbols,
    dot: dot::DotIsa,
    piece: &codegen::Piece,
) -> Result<Module<'c>, CodegenError> {
    let all = 0..l.program.consts.len();
    let text = module_text(l, tm, model_name, symbols, dot, piece, all)?;
    let module = parse(ctx, &text, model_name)?;
    drop(text);
    info::define_consts(&module, &l.program.consts)?;
    info::define_info(&module, tm, l, model_name, &symbols.info);
    Ok(module)
}

/// A later module of a large model: the parts of `piece`, with the
/// constants they read declared.
fn build_group<'c>(
    ctx: &'c Context,
    l: &Lowered,
    tm: &TargetMachine,
    model_name: &str,
    dot: dot::DotIsa,
    piece: &codegen::Piece,
) -> Result<Module<'c>, CodegenError> {
    let mut consts: Vec<usize> = piece.parts[piece.defined.clone()]
        .iter()
        .flat_map(|p| &p.bufs)
        .filter_map(|b| match b {
            crate::kernel::Buf::Const(i) => Some(*i as usize),
            _ => None,
        })
        .collect();
    consts.sort_unstable();
    consts.dedup();
    let symbols = ModelSymbols::runtime();
    let text = module_text(l, tm, model_name, &symbols, dot, piece, consts.into_iter())?;
    parse(ctx, &text, model_name)
}

fn level(opts: &LlvmOptions) -> OptimizationLevel {
    match opts.opt_level {
        0 => OptimizationLevel::None,
        1 => OptimizationLevel::Less,
        2 => OptimizationLevel::Default,
        _ => OptimizationLevel::Aggressive,
    }
}

/// Runs the new pass manager's `default<ON>` pipeline with loop and SLP
/// vectorization on (what clang enables at O2 and above).
fn optimize(module: &Module, tm: &TargetMachine, opts: &LlvmOptions) -> Result<(), CodegenError> {
    let o = PassBuilderOptions::create();
    let vectorize = opts.opt_level >= 2;
    o.set_loop_vectorization(vectorize);
    o.set_loop_slp_vectorization(vectorize);
    o.set_loop_interleaving(vectorize);
    o.set_loop_unrolling(opts.opt_level >= 1);
    module
        .run_passes(&format!("default<O{}>", opts.opt_level), tm, o)
        .map_err(|e| CodegenError(format!("LLVM optimization: {e}")))
}

/// The target machine (relocation model: [`LlvmTarget::reloc_mode`]).
fn target_machine(t: &LlvmTarget, opts: &LlvmOptions) -> Result<TargetMachine, CodegenError> {
    let llvm_target = t.llvm_target()?;
    llvm_target
        .create_target_machine(
            &t.triple(),
            &t.cpu,
            &t.features,
            level(opts),
            t.reloc_mode(),
            CodeModel::Default,
        )
        .ok_or_else(|| {
            CodegenError(format!(
                "LLVM cannot make a target machine for {} (cpu '{}', features '{}')",
                t.triple, t.cpu, t.features
            ))
        })
}
