//! `smelt inspect` on a language model: the KV cache for the context a
//! compile would use, and the flash and RAM the decode step needs on the
//! target, planned as `smelt compile` plans it (same optimizer options,
//! same lowering and memory plan), plus the tokenizer's table and memory.

use clap::ArgMatches;
use smelt_backends::artifact::{Backend, LlvmConfig};
use smelt_backends::lower::{Lowered, Schedule};
use smelt_backends::target::{Target, TargetSpec};
use smelt_frontend::Model;
use smelt_frontend::llm::{DEFAULT_MAX_CTX, LlmOptions};
use smelt_frontend::llm_summary::LlmSummary;
use smelt_ir::Graph;

use super::super::{CliError, CliResult, human_bytes, memory_map};

/// `N B` with the exact count when `human_bytes` rounds it.
pub(super) fn exact(n: u64) -> String {
    let h = human_bytes(n);
    if n < 1024 { h } else { format!("{h} ({n} B)") }
}

/// Why the context is what it is: `--ctx` (maybe clamped) or the default.
fn context_source(llm: &LlmOptions, max: usize) -> String {
    match llm.ctx {
        Some(n) if n > max => format!("--ctx {n}, clamped to the model's maximum {max}"),
        Some(n) => format!("--ctx {n}"),
        None if max > DEFAULT_MAX_CTX => format!(
            "the default: the model's maximum {max}, at most {DEFAULT_MAX_CTX}; --ctx N sets it"
        ),
        None => "the default: the model's maximum; --ctx N sets it".into(),
    }
}

/// Prints the KV cache per token and for the context `llm` gives (the one
/// `smelt compile` with the same flags builds).
pub(super) fn print_kv_cache(s: &LlmSummary, llm: &LlmOptions) {
    let (Some(c), Some(per_token)) = (&s.config, s.kv_cache_bytes_per_token()) else {
        return;
    };
    let ctx = llm.context(c.max_position_embeddings);
    let whole = s
        .kv_cache_bytes(ctx)
        .map_or_else(|| "too large to count".into(), exact);
    println!(
        "KV cache: {} per token (f32 keys and values); {whole} for a context of {ctx} tokens ({})",
        exact(per_token),
        context_source(llm, c.max_position_embeddings)
    );
}

/// The tokenizer's table (in flash) and the memory the C tokenizer builds
/// from it (in RAM), or why there is none.
pub(super) enum TokenizerNeed {
    /// The table's bytes and the tables' memory.
    Table { blob: u64, memory: u64 },
    /// The checkpoint has no tokenizer, or it cannot be built: why.
    None(String),
}

impl TokenizerNeed {
    /// The tokenizer of `model`, measured by the runtime's own C tokenizer
    /// (`smelt_tok_memory` on this host: an upper bound for 32-bit targets,
    /// whose pointers are smaller).
    pub(super) fn of(model: &Model) -> TokenizerNeed {
        let data = match model.tokenizer() {
            Ok(Some(d)) => d,
            Ok(None) => return TokenizerNeed::None("the checkpoint has none".into()),
            Err(e) => return TokenizerNeed::None(e.to_string()),
        };
        let table = match smelt_frontend::tokenizer::build(&data) {
            Ok(t) => t,
            Err(e) => return TokenizerNeed::None(format!("cannot be built: {e}")),
        };
        let blob = table.blob.len() as u64;
        match smelt_runtime::tokenizer::Tokenizer::new(table.blob) {
            Ok(t) => TokenizerNeed::Table {
                blob,
                memory: t.memory_bytes() as u64,
            },
            Err(e) => TokenizerNeed::None(format!("the runtime refuses its table: {e}")),
        }
    }

    /// (table bytes, memory bytes); zero without a tokenizer.
    fn bytes(&self) -> (u64, u64) {
        match *self {
            TokenizerNeed::Table { blob, memory } => (blob, memory),
            TokenizerNeed::None(_) => (0, 0),
        }
    }
}

/// The target `--target` names (default x86_64 Linux) and the backend
/// `smelt compile` can use for it (Cranelift where it has an instruction
/// set, else LLVM).
fn target_spec(m: &ArgMatches) -> CliResult<(TargetSpec, Backend)> {
    let target: Target = m
        .get_one::<String>("target")
        .map_or("x86_64-unknown-linux-gnu", String::as_str)
        .parse()
        .map_err(|e: smelt_runtime::UnknownTarget| CliError(e.to_string()))?;
    let backend = if target.cranelift_supported() {
        Backend::Cranelift
    } else {
        Backend::Llvm(LlvmConfig::default())
    };
    let spec = TargetSpec::new(target, &backend).map_err(|e| CliError(e.to_string()))?;
    Ok((spec, backend))
}

/// The imported `graph` optimized and lowered as `smelt compile` does for
/// `spec` on `threads` threads (the steps of `smelt::compile_observed`
/// before code generation, with the same optimizer flags): the graph whose
/// constants are the weights, and the lowering whose plan gives the arena
/// and the state buffer.
fn as_compiled(
    m: &ArgMatches,
    graph: &Graph,
    spec: &TargetSpec,
    threads: u32,
) -> CliResult<(Graph, Lowered)> {
    let o = super::super::optimize::options(m)?;
    let (mut g, _) = smelt::optimize(graph, &o, spec.costs, &mut ())?;
    if !spec.is_bare_metal() {
        smelt_passes::batched::decode_batched(&mut g, smelt_passes::batched::MIN_ROWS)
            .map_err(|e| CliError(format!("decoding the weights of batched products: {e}")))?;
    }
    let schedule = Schedule {
        shape: spec.vector,
        threads,
        ..Schedule::default()
    };
    let lowered = smelt_backends::artifact::lower_for_codegen(&g, &schedule)
        .map_err(|e| CliError(e.to_string()))?;
    Ok((g, lowered))
}

/// Prints the flash and RAM the imported decode graph `graph` needs on
/// `--target`
/// (default x86_64): weights and the tokenizer table read-only; the KV
/// cache (the state buffer), the arena, the inputs and outputs and the
/// tokenizer's tables in RAM. On a bare-metal target, also the firmware
/// estimate (with the code) against `--memory`, and whether it fits.
pub(super) fn memory_report(
    m: &ArgMatches,
    graph: &Graph,
    tokenizer: &TokenizerNeed,
) -> CliResult<()> {
    let (spec, backend) = target_spec(m)?;
    let target = spec.target;
    let map = memory_map(m)?;
    let threads = m.get_one::<u32>("threads").copied().unwrap_or(1);
    smelt_backends::artifact::check_threads(target, threads)
        .map_err(|e| CliError(e.to_string()))?;
    let (g, lowered) = as_compiled(m, graph, &spec, threads)?;
    let plan = &lowered.plan;
    let weights = g.const_bytes() as u64;
    let io: u64 = lowered
        .inputs
        .iter()
        .chain(&lowered.outputs)
        .map(|b| b.bytes)
        .sum();
    let (blob, tok_memory) = tokenizer.bytes();
    println!(
        "decode step on {target}, as smelt compile plans it (backend {}, {} thread(s)):",
        backend.name(),
        threads.max(1)
    );
    println!(
        "  read-only: {} = weights and constants {} + tokenizer table {}",
        exact(weights + blob),
        exact(weights),
        exact(blob)
    );
    println!(
        "  RAM: {} = KV cache (state) {} + arena {} + inputs and outputs {} + tokenizer tables {}",
        exact(plan.state_bytes + plan.arena_bytes + io + tok_memory),
        exact(plan.state_bytes),
        exact(plan.arena_bytes),
        exact(io),
        exact(tok_memory)
    );
    if let TokenizerNeed::None(why) = tokenizer {
        println!("  tokenizer: none counted ({why})");
    }
    if target.is_bare_metal() {
        let heap = smelt_backends::artifact::firmware_heap(&lowered) + tok_memory;
        let usage =
            smelt_backends::artifact::firmware::estimate(&map, weights + blob, g.nodes.len(), heap);
        println!(
            "  firmware estimate (code estimated, runtime buffers and stack included): {usage}"
        );
        match usage.check() {
            Ok(()) => println!("  fits the memory map"),
            Err(e) => println!("  {e}"),
        }
    }
    Ok(())
}
