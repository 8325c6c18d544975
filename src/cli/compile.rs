//! `smelt compile`: a model to a native artifact.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgMatches;
use smelt_backends::artifact::{Emit, build};
use smelt_backends::target::Target;
use smelt_frontend::onnx::OnnxModel;

use super::{CliError, CliResult, human_bytes, import_options};

/// Runs `smelt compile`.
pub fn run(m: &ArgMatches) -> CliResult<ExitCode> {
    let path = m.get_one::<PathBuf>("model").expect("required");
    let target_s = m.get_one::<String>("target").expect("has a default");
    let target: Target = target_s
        .parse()
        .map_err(|e: smelt_runtime::UnknownTarget| CliError(e.to_string()))?;
    let emit = match m.get_one::<String>("emit").map(String::as_str) {
        Some("exe") | None => Emit::Exe,
        Some("obj") => Emit::Obj,
        Some("staticlib") => Emit::Staticlib,
        Some(other) => {
            return Err(CliError(format!(
                "--emit takes exe, staticlib or obj, not '{other}'"
            )));
        }
    };
    if m.get_one::<String>("backend").map(String::as_str) == Some("llvm") {
        return Err(CliError(
            "--backend llvm is not implemented yet; use --backend cranelift".into(),
        ));
    }
    let opts = import_options(m)?;
    let graph = OnnxModel::read(path, &opts.limits)?.import(&opts)?;
    let (graph, reports) = super::optimize::run(m, graph, target_s)?;
    for (phase, r) in &reports {
        println!(
            "optimizer ({phase}): {} -> {} nodes, {}, {:.1} ms",
            r.nodes_before,
            r.nodes_after,
            r.stop_reason,
            r.time.as_secs_f64() * 1e3
        );
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let out = m.get_one::<PathBuf>("output").cloned().unwrap_or_else(|| {
        PathBuf::from(match emit {
            Emit::Exe => stem.clone(),
            Emit::Obj => format!("{stem}.o"),
            Emit::Staticlib => format!("lib{stem}.a"),
        })
    });
    let linker = m.get_one::<PathBuf>("linker").map(PathBuf::as_path);
    let report =
        build(&graph, target, emit, &out, &stem, linker).map_err(|e| CliError(e.to_string()))?;
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    println!(
        "target {target}, arena {} (liveness bound {}), weights {}, object {}",
        human_bytes(report.arena_bytes),
        human_bytes(report.lower_bound),
        human_bytes(graph.const_bytes() as u64),
        human_bytes(report.object_bytes as u64)
    );
    Ok(ExitCode::SUCCESS)
}
