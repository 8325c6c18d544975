//! A language model's chat executable (`runtime/c/llm.h`): the decode step
//! model (`smelt_decode_*`), optionally the prefill step model
//! (`smelt_prefill_*`), the `smelt_llm_descriptor` (a data-only object) and
//! the chat runtime ([`smelt_runtime::chat_runtime_object`]), linked into
//! one program.
//!
//! The two step models share one KV cache buffer, so their state layouts
//! must be the same: checked here, slot by slot. They are compiled from the
//! same weights, each constant in a section of its own, and linked with
//! `--icf=all`, which keeps one copy of every weight whose bytes both models
//! hold (a weight packed differently for the two shapes stays twice).

use std::path::Path;

use smelt_ir::Graph;

use super::{
    ArtifactError, BuildOptions, Emit, ModelSymbols, Report, codegen, find_linker, firmware,
    link_linux, lower_for_codegen, write,
};
use crate::lower::{Lowered, Schedule};
use crate::target::TargetSpec;

/// The symbol prefix of the decode model.
pub const DECODE: &str = "smelt_decode";
/// The symbol prefix of the prefill model.
pub const PREFILL: &str = "smelt_prefill";
/// The descriptor's symbol.
pub const DESCRIPTOR: &str = "smelt_llm_descriptor";

/// What a chat executable is made of.
#[derive(Clone, Copy, Debug)]
pub struct ChatProgram<'a> {
    /// The one-token step graph.
    pub decode: &'a Graph,
    /// The prompt-chunk step graph, if any.
    pub prefill: Option<&'a Graph>,
    /// The descriptor's bytes (`smelt_runtime::llm::Descriptor::to_bytes`).
    pub descriptor: &'a [u8],
    /// Heap bytes the chat runtime allocates besides the models' arena and
    /// state (tokenizer tables, logits, sampler scratch, token history):
    /// what a firmware image must leave free.
    pub runtime_heap: u64,
}

/// Compiles and links `p` into the executable `out` (`opts.emit` must be
/// [`Emit::Exe`]).
pub fn build_chat(
    p: &ChatProgram,
    spec: &TargetSpec,
    backend: &super::Backend,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Report, ArtifactError> {
    if opts.emit != Emit::Exe {
        return Err(ArtifactError::Options(
            "a language model's chat program is an executable: use --emit exe".into(),
        ));
    }
    super::check_threads(spec.target, opts.threads)?;
    let schedule = Schedule {
        shape: spec.vector,
        threads: opts.threads,
        min_work: opts.min_work,
    };
    let decode = lower_for_codegen(p.decode, &schedule)?;
    let prefill = match p.prefill {
        Some(g) => Some(lower_for_codegen(g, &schedule)?),
        None => None,
    };
    if let Some(pf) = &prefill {
        same_state(&decode, pf)?;
    }
    let dir = out.with_extension("smelt-link");
    std::fs::create_dir_all(&dir).map_err(|e| ArtifactError::Io(dir.clone(), e))?;
    let result = link(p, spec, backend, out, opts, &dir, &decode, prefill.as_ref());
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Generates the objects into `dir` and links them.
#[allow(clippy::too_many_arguments)]
fn link(
    p: &ChatProgram,
    spec: &TargetSpec,
    backend: &super::Backend,
    out: &Path,
    opts: &BuildOptions,
    dir: &Path,
    decode: &Lowered,
    prefill: Option<&Lowered>,
) -> Result<Report, ArtifactError> {
    let mut objs = vec![];
    let mut object_bytes = 0;
    for (l, prefix) in [(Some(decode), DECODE), (prefill, PREFILL)] {
        let Some(l) = l else { continue };
        let symbols = ModelSymbols::prefixed(prefix);
        let obj = codegen(l, spec, backend, Emit::Exe, opts.model_name, &symbols)?;
        object_bytes += obj.len();
        let path = dir.join(format!("{prefix}.o"));
        write(&path, &obj)?;
        objs.push(path);
    }
    let data = crate::llvm::data_object(&spec.llvm, DESCRIPTOR, p.descriptor, 16)?;
    let data_path = dir.join("llm.o");
    write(&data_path, &data)?;
    let rt = dir.join("chat-runtime.o");
    write(&rt, smelt_runtime::chat_runtime_object(spec.target))?;
    objs.extend([data_path, rt]);
    let objs: Vec<&Path> = objs.iter().map(|p| p.as_path()).collect();
    let (ld, pre) = find_linker(opts.linker)?;
    let lowered = [Some(decode), prefill];
    let arena = lowered.iter().flatten().map(|l| l.plan.arena_bytes).max();
    let bound = lowered.iter().flatten().map(|l| l.plan.lower_bound).max();
    let mut report = Report {
        files: vec![out.to_path_buf()],
        arena_bytes: arena.unwrap_or(0),
        lower_bound: bound.unwrap_or(0),
        object_bytes,
        firmware: None,
    };
    if spec.target.is_bare_metal() {
        // One arena serves both models; the state once; then the runtime's.
        let heap = super::firmware_heap(decode).max(prefill.map_or(0, super::firmware_heap))
            + p.runtime_heap;
        let usage = firmware::link(
            &ld,
            &pre,
            &objs,
            out,
            dir,
            &spec.memory,
            heap,
            &["--icf=all", "--ignore-data-address-equality"],
        );
        report.firmware = Some(usage?);
    } else {
        link_linux(
            &ld,
            &pre,
            &objs,
            out,
            &["--icf=all", "--ignore-data-address-equality"],
        )?;
    }
    Ok(report)
}

/// The two step models' KV cache layouts are the same, slot by slot.
fn same_state(decode: &Lowered, prefill: &Lowered) -> Result<(), ArtifactError> {
    let (d, p) = (&decode.plan, &prefill.plan);
    if d.state_offsets != p.state_offsets || d.state_bytes != p.state_bytes {
        return Err(ArtifactError::Options(format!(
            "the prefill and decode models lay out their state differently \
             ({} bytes at {:?} against {} bytes at {:?}): a compiler bug",
            p.state_bytes, p.state_offsets, d.state_bytes, d.state_offsets
        )));
    }
    Ok(())
}
