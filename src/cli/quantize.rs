//! `--quantize SCHEME`, `--quantize-skip NODE,…`, `--quantize-layer
//! NODE=SCHEME`, the int8 calibration flags (`--calibrate FILE.npz`,
//! `--calib`, `--calibrate-holdout`) and `--quantize-report FILE.json` for
//! `smelt compile` and `smelt inspect`, and the weight-storage table `smelt
//! inspect` prints.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use smelt_frontend::Limits;
use smelt_ir::Graph;
use smelt_passes::quantize::{
    CalibMethod, CalibrationSet, Layer, QuantizeOptions, QuantizeReport, Scheme, bytes_by_encoding,
    json,
};

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
    .arg(
        Arg::new("quantize-layer")
            .long("quantize-layer")
            .value_name("NODE=SCHEME,...")
            .action(ArgAction::Append)
            .requires("quantize")
            .help("With --quantize: quantize these nodes with another scheme, or keep them f32 with SCHEME float (repeatable or a comma list); one model can mix int8, block formats and f32"),
    )
    .arg(
        Arg::new("calibrate")
            .long("calibrate")
            .value_name("FILE.npz")
            .value_parser(value_parser!(PathBuf))
            .requires("quantize")
            .help("Calibration samples for --quantize int8 (and the accuracy report of any scheme): one array per graph input stacking N samples on a new leading axis (x: f32[1,3,224,224] takes x: f32[N,1,3,224,224])"),
    )
    .arg(
        Arg::new("calib")
            .long("calib")
            .value_name("METHOD")
            .default_value("minmax")
            .help("How --quantize int8 picks each activation's range: minmax (observed range), percentile (both tails clipped, 99.99 % of values kept; percentile=P for another P) or entropy (KL-divergence threshold over a 2048-bin |x| histogram, as TensorRT)"),
    )
    .arg(
        Arg::new("calibrate-holdout")
            .long("calibrate-holdout")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .requires("calibrate")
            .help("Hold the last N samples of --calibrate back from calibration and report the accuracy on them apart"),
    )
    .arg(
        Arg::new("quantize-report")
            .long("quantize-report")
            .value_name("FILE.json")
            .value_parser(value_parser!(PathBuf))
            .requires("quantize")
            .help("Also write the quantization report (sizes, int8 ranges, accuracy against the float model) as JSON"),
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
    let mut opts = QuantizeOptions::new(scheme).skip(skip);
    for spec in m
        .get_many::<String>("quantize-layer")
        .into_iter()
        .flatten()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        let (node, layer) = spec.split_once('=').ok_or_else(|| {
            CliError(format!(
                "--quantize-layer takes NODE=SCHEME (SCHEME a --quantize scheme or float), got '{spec}'"
            ))
        })?;
        let layer = Layer::parse(layer).map_err(|e| CliError(e.to_string()))?;
        opts = opts.layer(node, layer);
    }
    let calib = m.get_one::<String>("calib").expect("has a default");
    let method = CalibMethod::parse(calib).ok_or_else(|| {
        CliError(format!(
            "--calib takes {} or percentile=P (0 < P <= 100), not '{calib}'",
            CalibMethod::NAMES.join(", ")
        ))
    })?;
    let holdout = m.get_one::<usize>("calibrate-holdout").copied();
    Ok(Some(opts.calib(method).holdout(holdout.unwrap_or(0))))
}

/// Reads `--calibrate`'s samples for `graph` into `opts` (nothing without
/// the flag). A bad archive, or one that does not fit the graph's inputs,
/// is an error saying what to change.
pub fn calibrate(
    m: &ArgMatches,
    graph: &Graph,
    opts: QuantizeOptions,
    limits: &Limits,
) -> CliResult<QuantizeOptions> {
    let Some(path) = m.get_one::<PathBuf>("calibrate") else {
        return Ok(opts);
    };
    let entries = smelt_frontend::npy::read_npz(path, limits)?;
    let set = CalibrationSet::from_stacked(graph, &entries)
        .map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    if opts.holdout >= set.samples.len() {
        return Err(CliError(format!(
            "--calibrate-holdout {} leaves no calibration sample of the {} in {}",
            opts.holdout,
            set.samples.len(),
            path.display()
        )));
    }
    Ok(opts.calibrate(set))
}

/// Writes the report as JSON when `--quantize-report` asks for it.
pub fn write_report(m: &ArgMatches, report: &QuantizeReport) -> CliResult<()> {
    if let Some(path) = m.get_one::<PathBuf>("quantize-report") {
        write_json(path, report)?;
    }
    Ok(())
}

fn write_json(path: &Path, report: &QuantizeReport) -> CliResult<()> {
    std::fs::write(path, json::to_json(report) + "\n")
        .map_err(|e| CliError(format!("writing {}: {e}", path.display())))
}

/// Runs the pass on `graph` (for `inspect --quantize`): the quantized graph
/// and its report.
pub fn apply(graph: Graph, opts: &QuantizeOptions) -> CliResult<(Graph, QuantizeReport)> {
    let mut g = graph;
    let report =
        smelt_passes::quantize::quantize(&mut g, opts).map_err(|e| CliError(e.to_string()))?;
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
