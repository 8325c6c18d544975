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
use smelt_runtime::llm::Descriptor;
use smelt_runtime::tokenizer::Tokenizer;

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
    /// Vocabulary, context, chunk, end ids, tokenizer table, chat template.
    pub descriptor: &'a Descriptor<'a>,
    /// The C tokenizer's tables (`smelt_tok_memory` of the descriptor's
    /// table; the host's figure, at least a 32-bit target's).
    pub tokenizer_memory: u64,
}

/// The text capacity `NAME_LLM_MEMORY_BYTES` provides for.
pub const HEADER_TEXT: u64 = 1024;

/// At least the bytes `smelt_llm_memory(model, text)` returns on any
/// target: `llm_layout`'s parts (`runtime/c/llm.c`), each rounded to 64
/// bytes, with a bound on the instance struct.
fn llm_memory_bound(
    decode: &Lowered,
    prefill: Option<&Lowered>,
    p: &ChatProgram,
    text: u64,
) -> u64 {
    let up = |n: u64| n.div_ceil(64) * 64;
    let arena = decode
        .plan
        .arena_bytes
        .max(prefill.map_or(0, |p| p.plan.arena_bytes));
    let d = p.descriptor;
    let (vocab, ctx, chunk) = (u64::from(d.vocab), u64::from(d.ctx), u64::from(d.chunk));
    let text = text as usize;
    let (work, ids) = (Tokenizer::work_bytes(text), Tokenizer::max_ids(text));
    [
        1024, // struct smelt_llm, well above its size on 64-bit targets
        p.tokenizer_memory,
        arena,
        decode.plan.state_bytes.max(1),
        vocab * 4,
        chunk.max(1) * 8,
        8,
        ctx * 4,
        vocab * 8 + 8,
        ids as u64 * 4,
        work as u64,
    ]
    .into_iter()
    .map(up)
    .sum()
}

/// Compiles `p` into the executable or the static library `out`.
pub fn build_chat(
    p: &ChatProgram,
    spec: &TargetSpec,
    backend: &super::Backend,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Report, ArtifactError> {
    if !matches!(opts.emit, Emit::Exe | Emit::Staticlib) {
        return Err(ArtifactError::Options(
            "a language model compiles to an executable (--emit exe) or a static library \
             (--emit staticlib); --step-graph gives its step graph as an object"
                .into(),
        ));
    }
    super::check_threads(spec.target, opts.threads)?;
    let schedule = Schedule {
        shape: spec.vector,
        threads: opts.threads,
        min_work: opts.min_work,
        unchecked: opts.unchecked,
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
    // An executable links the runtime's fixed names; a library prefixes
    // every symbol with its name, so a program can link two models.
    let lib = opts.emit == Emit::Staticlib;
    let name = if lib {
        super::symbol_prefix(opts.emit, out, opts.name)?
    } else {
        String::new()
    };
    let sym = |fixed: &str, part: &str| {
        if lib {
            format!("{name}_{part}")
        } else {
            fixed.to_string()
        }
    };
    let mut objs: Vec<(String, Vec<u8>)> = vec![];
    let mut object_bytes = 0;
    for (l, fixed, part) in [
        (Some(decode), DECODE, "decode"),
        (prefill, PREFILL, "prefill"),
    ] {
        let Some(l) = l else { continue };
        let symbols = ModelSymbols::prefixed(&sym(fixed, part));
        let obj = codegen(l, spec, backend, Emit::Exe, opts.model_name, &symbols)?;
        object_bytes += obj.len();
        objs.push((format!("{part}.o"), obj));
    }
    let descriptor = sym(DESCRIPTOR, "llm_descriptor");
    let bytes = p
        .descriptor
        .to_bytes()
        .map_err(|e| ArtifactError::Options(e.to_string()))?;
    let data = crate::llvm::data_object(&spec.llvm, &descriptor, &bytes, 16)?;
    objs.push(("llm.o".into(), data));
    let arena = decode
        .plan
        .arena_bytes
        .max(prefill.map_or(0, |p| p.plan.arena_bytes));
    let bound = decode
        .plan
        .lower_bound
        .max(prefill.map_or(0, |p| p.plan.lower_bound));
    let mut report = Report {
        files: vec![out.to_path_buf()],
        arena_bytes: arena,
        lower_bound: bound,
        object_bytes,
        firmware: None,
    };
    if lib {
        objs.push((
            "llm_api.o".into(),
            smelt_runtime::llm_library_object(spec.target).to_vec(),
        ));
        objs.push((
            "libcalls.o".into(),
            smelt_runtime::libcalls_object(spec.target).to_vec(),
        ));
        let members: Vec<(&str, &[u8])> = objs
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        write(out, &super::archive(&members))?;
        let header = out.with_file_name(format!("{}.h", super::staticlib_name(out)));
        let h = super::llm_header::render_llm(&super::llm_header::LlmHeader {
            name: &name,
            triple: spec.target.triple(),
            prefill: prefill.is_some(),
            vocab: p.descriptor.vocab.into(),
            ctx: p.descriptor.ctx.into(),
            chunk: p.descriptor.chunk.into(),
            memory_bytes: llm_memory_bound(decode, prefill, p, HEADER_TEXT),
            state_bytes: decode.plan.state_bytes,
            arena_bytes: arena,
            threads: opts.threads,
        });
        write(&header, h.as_bytes())?;
        report.files.push(header);
        return Ok(report);
    }
    let mut paths = vec![];
    for (n, bytes) in &objs {
        let path = dir.join(n);
        write(&path, bytes)?;
        paths.push(path);
    }
    let rt = dir.join("chat-runtime.o");
    write(&rt, smelt_runtime::chat_runtime_object(spec.target))?;
    paths.push(rt);
    let paths: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let (ld, pre) = find_linker(opts.linker)?;
    // Fold the weights both models hold (constants have no address
    // identity: nothing compares their addresses).
    let icf = ["--icf=all", "--ignore-data-address-equality"];
    if spec.target.is_bare_metal() {
        // The chat program's instance, sized for its longest text (a line
        // of 4 KiB and the template), and that text's buffers.
        let text = 6 * 1024;
        let heap = llm_memory_bound(decode, prefill, p, text) + 3 * text + 4 * 1024;
        let usage = firmware::link(&ld, &pre, &paths, out, dir, &spec.memory, heap, &icf);
        report.firmware = Some(usage?);
    } else {
        link_linux(&ld, &pre, &paths, out, &icf)?;
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
