//! `smelt compile`: a model to a native artifact.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgMatches;
use smelt_backends::artifact::{
    Backend, BuildOptions, Emit, LlvmConfig, build, check_threads, llvm_target,
};
use smelt_backends::llvm::LlvmOptions;
use smelt_backends::target::Target;
use smelt_frontend::onnx::OnnxModel;

use super::{CliError, CliResult, human_bytes, import_options, memory_map};

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
        Some("asm") => Emit::Asm,
        Some("llvm-ir") => Emit::LlvmIr,
        Some(other) => {
            return Err(CliError(format!(
                "--emit takes exe, staticlib, obj, asm or llvm-ir, not '{other}'"
            )));
        }
    };
    let cpu = m.get_one::<String>("cpu").cloned();
    let features = m.get_one::<String>("features").cloned();
    let backend = match m.get_one::<String>("backend").map(String::as_str) {
        Some("llvm") => Backend::Llvm(LlvmConfig {
            cpu,
            features,
            options: LlvmOptions::default(),
        }),
        _ => {
            if cpu.is_some() || features.is_some() {
                return Err(CliError(
                    "--cpu and --features tune the LLVM backend: add --backend llvm".into(),
                ));
            }
            if matches!(emit, Emit::Asm | Emit::LlvmIr) {
                return Err(CliError(
                    "--emit asm and --emit llvm-ir need --backend llvm".into(),
                ));
            }
            Backend::Cranelift
        }
    };
    // Reject a bad --cpu or --features before the model is read.
    if let Backend::Llvm(c) = &backend {
        llvm_target(target, c).map_err(|e| CliError(e.to_string()))?;
    }
    let threads = *m.get_one::<u32>("threads").expect("has a default");
    check_threads(target, threads).map_err(|e| CliError(e.to_string()))?;
    let memory = memory_map(m)?;
    if m.get_one::<String>("memory").is_some() && !target.is_bare_metal() {
        return Err(CliError(format!(
            "--memory is for bare-metal targets (thumbv7em-none-eabihf); {target} runs under Linux"
        )));
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
            Emit::Asm => format!("{stem}.s"),
            Emit::LlvmIr => format!("{stem}.ll"),
        })
    });
    let linker = m.get_one::<PathBuf>("linker").map(PathBuf::as_path);
    let name = m.get_one::<String>("name").map(String::as_str);
    let opts = BuildOptions {
        name,
        linker,
        memory,
        threads,
        ..BuildOptions::new(emit, &stem)
    };
    let report =
        build(&graph, target, &backend, &out, &opts).map_err(|e| CliError(e.to_string()))?;
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    println!(
        "target {target}, backend {}, threads {threads}, arena {} (liveness bound {}), weights {}, object {}",
        backend.name(),
        human_bytes(report.arena_bytes),
        human_bytes(report.lower_bound),
        human_bytes(graph.const_bytes() as u64),
        human_bytes(report.object_bytes as u64)
    );
    if let Some(fw) = &report.firmware {
        println!("firmware: {fw}");
    }
    Ok(ExitCode::SUCCESS)
}
