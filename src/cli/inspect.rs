//! `smelt inspect`: what a model is and whether smelt can compile it.

mod llm;

use std::process::ExitCode;

use clap::ArgMatches;
use smelt_frontend::checkpoint::RopeScaling;
use smelt_frontend::llm_summary::LlmSummary;
use smelt_frontend::onnx::{DeclaredValue, Summary};
use smelt_ir::{Graph, OpDef, TensorType};

use super::{CliError, CliResult, grouped, human_bytes, import_options, memory_map};

fn declared(d: &DeclaredValue) -> String {
    match &d.dims {
        Some(dims) => format!("{}[{}]", d.dtype, dims.join(",")),
        None => format!("{} (no shape)", d.dtype),
    }
}

/// The constants of `g` stored in a non-dense encoding (quantized on import
/// or by an earlier `--quantize`).
fn encoded_weights(g: &Graph) -> usize {
    g.values
        .iter()
        .filter(|v| matches!(v.def, smelt_ir::ValueDef::Const(_)) && !v.ty.is_dense())
        .count()
}

/// MACs of every node, in graph order.
fn node_macs(g: &Graph) -> Vec<u64> {
    g.nodes
        .iter()
        .map(|n| {
            let ins: Vec<Option<&TensorType>> = n
                .inputs
                .iter()
                .map(|i| i.map(|id| &g.value(id).ty))
                .collect();
            let outs: Vec<TensorType> =
                n.outputs.iter().map(|&id| g.value(id).ty.clone()).collect();
            n.op.macs(&ins, &outs)
        })
        .collect()
}

/// Runs `smelt inspect`.
pub fn run(m: &ArgMatches) -> CliResult<ExitCode> {
    let path = m.get_one::<std::path::PathBuf>("model").expect("required");
    let mut opts = import_options(m)?;
    // A language model is reported as its decode graph: one token per
    // step, the last (only) token's logits.
    opts.llm.last_logits_only = true;
    let quantize = super::quantize::options(m)?;
    let model = smelt_frontend::open(path, &opts.limits)?;
    let s = model.summary();
    println!("model: {}", path.display());
    // Measured before the import takes the model.
    let tokenizer = s.llm.as_ref().map(|_| llm::TokenizerNeed::of(&model));
    match &s.llm {
        Some(summary) => {
            print_llm(summary);
            llm::print_kv_cache(summary, &opts.llm);
        }
        None => {
            if !print_onnx(&s) {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    // The report so far is on stdout; why the model cannot be imported is
    // the error line on stderr.
    let graph = model.import(&opts)?;
    // `--quantize` previews the stored sizes (the graph reported below is
    // the quantized one).
    let graph = match quantize {
        Some(q) => {
            let q = super::quantize::calibrate(m, &graph, q, &opts.limits)?;
            let encoded_before = encoded_weights(&graph);
            let (g, report) = super::quantize::apply(graph, &q)?;
            println!("{report}");
            if report.weights.is_empty() && encoded_before > 0 {
                // The pass reads f32 weights only: say why nothing changed.
                println!(
                    "  (the model's {encoded_before} product weight(s) are already stored encoded; see below)"
                );
            }
            super::quantize::write_report(m, &report)?;
            g
        }
        None => graph,
    };
    // The graph as imported (and quantized): what `smelt compile` starts
    // from, so the language-model report plans from it too.
    let imported = graph;
    let optimized = m.get_flag("optimized");
    let optimized_graph = if optimized {
        // An unknown --target is an error here, never x86_64's figures.
        let target: smelt_backends::target::Target = m
            .get_one::<String>("target")
            .map_or("x86_64-unknown-linux-gnu", String::as_str)
            .parse()
            .map_err(|e: smelt_runtime::UnknownTarget| CliError(e.to_string()))?;
        let costs = smelt_passes::egraph::cost::TargetCost::for_target(target.arch())
            .ok_or_else(|| CliError(format!("the cost model has no figures for {target}")))?;
        let (g, reports) = super::optimize::run(m, imported.clone(), costs)?;
        if reports.is_empty() {
            println!("optimizer: off (--opt-level 0)");
        }
        for (phase, r) in &reports {
            println!("phase {phase}:");
            print!("{r}");
        }
        Some(g)
    } else {
        None
    };
    let graph = optimized_graph.as_ref().unwrap_or(&imported);
    println!("static shapes (after pinning and constant folding):");
    for &id in &graph.inputs {
        println!("  input  {}: {}", graph.value(id).name, graph.value(id).ty);
    }
    for &id in &graph.outputs {
        println!("  output {}: {}", graph.value(id).name, graph.value(id).ty);
    }
    for st in &graph.states {
        let (i, o) = (graph.value(st.input), graph.value(st.output));
        println!("  state  {}: {} <- {}", i.name, i.ty, o.name);
    }
    let macs = node_macs(graph);
    let total: u64 = macs.iter().sum();
    println!(
        "compute: {} nodes after folding, {} MACs in all",
        graph.nodes.len(),
        grouped(total)
    );
    // Per-layer MACs: the layers that do real work, heaviest first.
    let mut heavy: Vec<(usize, u64)> = macs
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, m)| m > 0)
        .collect();
    heavy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    const SHOWN: usize = 20;
    for &(i, mac) in heavy.iter().take(SHOWN) {
        let n = &graph.nodes[i];
        let pct = if total > 0 {
            100.0 * mac as f64 / total as f64
        } else {
            0.0
        };
        println!(
            "  {:>16} MACs {pct:5.1}%  {} ({})",
            grouped(mac),
            n.name,
            n.op.name()
        );
    }
    if heavy.len() > SHOWN {
        println!("  … and {} more nodes", heavy.len() - SHOWN);
    }
    let peak = smelt_passes::memory::peak(graph);
    let at = peak
        .at
        .map(|n| format!(" (at node '{}')", graph.node(n).name))
        .unwrap_or_default();
    println!(
        "peak activation memory: {}{at}",
        human_bytes(peak.bytes as u64)
    );
    let mem = smelt_backends::plan::plan(graph);
    let vs = |b: u64| {
        format!(
            "{} ({:+.1}%)",
            human_bytes(b),
            over_bound(b, mem.lower_bound)
        )
    };
    println!(
        "native arena: liveness bound {}, planned {}, greedy by size {}, first-fit {}",
        human_bytes(mem.lower_bound),
        vs(mem.arena_bytes),
        vs(mem.greedy_bytes),
        vs(mem.first_fit_bytes)
    );
    println!(
        "  {} of copies aliased away by views, {} element-wise node(s) in place",
        human_bytes(mem.copy_bytes_removed),
        mem.in_place
    );
    println!(
        "weights in the graph: {}",
        human_bytes(graph.const_bytes() as u64)
    );
    super::quantize::print_weights(graph);
    if let Some(&threads) = m.get_one::<u32>("threads") {
        threads_report(threads, graph)?;
    }
    // A language model's decode step is always planned for a target
    // (x86_64 unless --target says otherwise); an ONNX model's firmware is
    // estimated when a bare-metal --target asks for it.
    if let Some(tok) = &tokenizer {
        llm::memory_report(m, &imported, tok)?;
    } else if let Some(t) = m.get_one::<String>("target") {
        firmware_estimate(m, t, graph)?;
    }
    if m.get_flag("print-ir") || optimized {
        print!("{}", smelt_ir::print::print(graph));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an ONNX model's header, signature, ops and parameters; false
/// when some node's op cannot be compiled (they are listed).
fn print_onnx(s: &Summary) -> bool {
    println!(
        "  ir_version {}, producer {}",
        s.ir_version,
        if s.producer.is_empty() {
            "unknown"
        } else {
            &s.producer
        }
    );
    let opsets: Vec<String> = s
        .opsets
        .iter()
        .map(|(d, v)| format!("{} {v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    println!("  opsets: {}", opsets.join(", "));
    println!("inputs:");
    for i in &s.inputs {
        println!("  {}: {}", i.name, declared(i));
    }
    println!("outputs:");
    for o in &s.outputs {
        println!("  {}: {}", o.name, declared(o));
    }
    let hist: Vec<String> = s
        .op_histogram
        .iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect();
    println!("ops: {} nodes: {}", s.node_count, hist.join(", "));
    println!(
        "parameters: {} ({})",
        grouped(s.param_count),
        human_bytes(s.param_bytes)
    );
    if !s.unsupported.is_empty() {
        println!(
            "unsupported: {} node(s) use ops smelt cannot compile:",
            s.unsupported.len()
        );
        for u in &s.unsupported {
            println!("  node '{}' ({}): {}", u.node, u.op, u.reason);
        }
        return false;
    }
    println!("unsupported: none");
    true
}

/// Prints a language model's format, architecture, hyper-parameters and
/// parameters by encoding.
fn print_llm(s: &LlmSummary) {
    let name = s
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    println!("  {}, architecture {}{name}", s.format, s.architecture);
    match &s.config {
        Some(c) => {
            println!(
                "  {} layers, hidden {}, ffn {}, {} heads ({} key/value, head width {}), vocabulary {}, context {}",
                c.num_layers,
                c.hidden_size,
                c.intermediate_size,
                c.num_heads,
                c.num_kv_heads,
                c.head_dim,
                grouped(c.vocab_size as u64),
                grouped(c.max_position_embeddings as u64)
            );
            let scaling = match &c.rope_scaling {
                None => "none".to_string(),
                Some(RopeScaling::Factors(f)) => format!("{} per-pair factors", f.len()),
                Some(r) => format!("{r:?}"),
            };
            println!(
                "  rms_norm_eps {:e}, rope theta {} ({:?} pairs, scaling {scaling}), {} output head",
                c.rms_norm_eps,
                c.rope_theta,
                c.rope_layout,
                if c.tie_word_embeddings {
                    "tied"
                } else {
                    "separate"
                }
            );
        }
        None => println!(
            "  cannot be built: {}",
            s.problem.as_deref().unwrap_or("unknown")
        ),
    }
    println!(
        "parameters: {} ({})",
        grouped(s.param_count),
        human_bytes(s.param_bytes)
    );
    for e in &s.by_encoding {
        println!(
            "  {}: {} tensor(s), {} parameters, {}",
            e.encoding,
            e.tensors,
            grouped(e.params),
            llm::exact(e.bytes)
        );
    }
}

/// `--target` of a bare-metal target: the flash and RAM the firmware will
/// need (weights plus a code estimate; the memory plan's arena plus inputs,
/// outputs and the runtime's buffers), against `--memory`.
fn firmware_estimate(m: &ArgMatches, target: &str, graph: &Graph) -> CliResult<()> {
    let target: smelt_backends::target::Target = target
        .parse()
        .map_err(|e: smelt_runtime::UnknownTarget| CliError(e.to_string()))?;
    if !target.is_bare_metal() {
        println!("target {target}: Linux, memory is not budgeted");
        return Ok(());
    }
    let map = memory_map(m)?;
    let lowered = smelt_backends::lower::lower(graph).map_err(|e| CliError(e.to_string()))?;
    let heap = smelt_backends::artifact::firmware_heap(&lowered);
    let usage = smelt_backends::artifact::firmware::estimate(
        &map,
        graph.const_bytes() as u64,
        graph.nodes.len(),
        heap,
    );
    println!("firmware estimate for {target}: {usage}");
    if let Err(e) = usage.check() {
        println!("  {e}");
    }
    Ok(())
}

/// `--threads N`: the parallel loops of the native code for N threads and
/// the arena it needs (depthwise convolutions take a plane per thread).
fn threads_report(threads: u32, graph: &Graph) -> CliResult<()> {
    let target = smelt_backends::target::Target::X86_64Linux;
    smelt_backends::artifact::check_threads(target, threads)
        .map_err(|e| CliError(e.to_string()))?;
    let lowered = smelt_backends::lower::lower_with(
        graph,
        &smelt_backends::lower::Schedule {
            threads,
            ..Default::default()
        },
    )
    .map_err(|e| CliError(e.to_string()))?;
    let loops = lowered
        .program
        .body
        .iter()
        .filter(|s| matches!(s, smelt_backends::kernel::Stmt::Parallel { .. }))
        .count();
    println!(
        "threads {threads}: {loops} parallel loop(s) (GEMM tiles, batched MatMuls, im2col and depthwise channels; at least {} operations per thread each), arena {}",
        smelt_backends::kernel::MIN_PARALLEL_WORK,
        human_bytes(lowered.plan.arena_bytes)
    );
    Ok(())
}

/// How far `bytes` is above `bound`, in percent.
pub(super) fn over_bound(bytes: u64, bound: u64) -> f64 {
    if bound == 0 {
        0.0
    } else {
        100.0 * (bytes as f64 - bound as f64) / bound as f64
    }
}
