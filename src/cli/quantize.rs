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

/// Prints each constant's storage and the bytes per storage.
pub fn print_weights(graph: &Graph) {
    println!("weights by storage:");
    for (enc, n, bytes) in bytes_by_encoding(graph) {
        println!(
            "  {enc:<20} {n:>5} tensor(s) {:>12}",
            human_bytes(bytes as u64)
        );
    }
    for v in &graph.values {
        if let smelt_ir::ValueDef::Const(_) = v.def
            && v.ty.numel().is_ok_and(|n| n >= 256)
        {
            let bytes = v.ty.bytes().unwrap_or(0) as u64;
            println!("  weight {}: {} ({})", v.name, v.ty, human_bytes(bytes));
        }
    }
}
