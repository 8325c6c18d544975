//! `--quantize SCHEME` and `--quantize-skip NODE,…` for `smelt compile` and
//! `smelt inspect`, and the weight-storage table `smelt inspect` prints.

use clap::{Arg, ArgMatches, Command};
use smelt_ir::Graph;
use smelt_passes::quantize::{QuantizeOptions, QuantizeReport, Scheme, bytes_by_encoding};

use super::{CliError, CliResult, human_bytes};

/// Adds the quantization flags to `cmd`.
pub fn args(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("quantize")
            .long("quantize")
            .value_name("SCHEME")
            .help(format!(
                "Store the weights of MatMul/Gemm smaller and run them with weight-only kernels: \
                 {} (f16/bf16: half width; w8: int8 per output channel; the rest GGUF block \
                 formats, blocks along K; a K-quant needs K % 256 == 0, else llama.cpp's \
                 fallback, and a block format K % 32 == 0, else f16)",
                Scheme::NAMES.join(", ")
            )),
    )
    .arg(
        Arg::new("quantize-skip")
            .long("quantize-skip")
            .value_name("NODE,...")
            .requires("quantize")
            .help("With --quantize: keep these nodes' weights f32 (node names as smelt inspect --print-ir shows them)"),
    )
}

/// The options `--quantize` and `--quantize-skip` ask for, if any.
pub fn options(m: &ArgMatches) -> CliResult<Option<QuantizeOptions>> {
    let Some(name) = m.get_one::<String>("quantize") else {
        return Ok(None);
    };
    let scheme = Scheme::parse(name).map_err(|e| CliError(e.to_string()))?;
    let skip: Vec<String> = m
        .get_one::<String>("quantize-skip")
        .map(|s| {
            s.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(QuantizeOptions::new(scheme).skip(skip)))
}

/// Runs the pass on `graph` (for `inspect --quantize`): the quantized graph
/// and its report.
pub fn apply(graph: Graph, opts: &QuantizeOptions) -> CliResult<(Graph, QuantizeReport)> {
    let mut g = graph;
    let report = smelt_passes::quantize::quantize_weights(&mut g, opts)
        .map_err(|e| CliError(e.to_string()))?;
    Ok((g, report))
}

/// Constants of fewer elements are counted but not listed one by one.
const LISTED_FROM: usize = 256;

/// Prints the bytes per storage (dtype or encoding, with its share of the
/// total) and each constant of at least [`LISTED_FROM`] elements with its
/// type, encoding included.
pub fn print_weights(graph: &Graph) {
    println!("weights by storage:");
    let by = bytes_by_encoding(graph);
    let total: usize = by.iter().map(|e| e.2).sum();
    for (enc, n, bytes) in &by {
        let pct = 100.0 * *bytes as f64 / total.max(1) as f64;
        println!(
            "  {enc:<20} {n:>5} tensor(s) {:>12} {pct:5.1}%",
            human_bytes(*bytes as u64)
        );
    }
    let mut unlisted = 0usize;
    for v in &graph.values {
        if let smelt_ir::ValueDef::Const(b) = &v.def {
            if v.ty.numel().is_ok_and(|n| n >= LISTED_FROM) {
                let bytes = b.as_slice().len() as u64;
                println!("  weight {}: {} ({})", v.name, v.ty, human_bytes(bytes));
            } else {
                unlisted += 1;
            }
        }
    }
    if unlisted > 0 {
        println!("  and {unlisted} constant(s) of fewer than {LISTED_FROM} elements");
    }
}
