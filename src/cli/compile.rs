//! `smelt compile`: a model to a native artifact.
//!
//! The flags become a [`smelt::CompileOptions`] (the target resolved once
//! into a `TargetSpec`, before the model is read, so a bad `--target`,
//! `--cpu` or `--features` fails fast); the model is loaded with
//! [`smelt_frontend::open`]; [`smelt::compile_observed`] runs the pipeline
//! while this module prints what the user asked to see.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgMatches;
use smelt::{CompileOptions, Observer, TargetSpec};
use smelt_backends::artifact::{Backend, Emit, LlvmConfig, check_threads};
use smelt_backends::llvm::LlvmOptions;
use smelt_backends::target::Target;
use smelt_frontend::Model;
use smelt_frontend::checkpoint::Checkpoint;
use smelt_ir::Graph;
use smelt_passes::egraph::Report;

use super::optimize::PrintAfter;
use super::{CliError, CliResult, human_bytes, import_options, memory_map};

/// What `smelt compile` prints between the stages: `--print-after` dumps
/// after each phase, one line per phase once the optimizer is done.
struct Printer(PrintAfter);

impl Observer for Printer {
    fn phase(&mut self, name: &str, g: &Graph, r: &Report) {
        self.0.phase(name, g, r);
    }

    fn optimized(&mut self, _: &Graph, reports: &[(String, Report)]) {
        for (phase, r) in reports {
            println!(
                "optimizer ({phase}): {} -> {} nodes, {}, {:.1} ms",
                r.nodes_before,
                r.nodes_after,
                r.stop_reason,
                r.time.as_secs_f64() * 1e3
            );
        }
    }
}

/// What is compiled: an imported graph, or a language model's checkpoint
/// (the chat program or library).
enum Source {
    Graph(Graph),
    Checkpoint(Box<Checkpoint>),
}

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
    // The target, resolved once: a bad --cpu or --features is rejected
    // before the model is read.
    let spec = TargetSpec::new(target, &backend).map_err(|e| CliError(e.to_string()))?;
    let threads = *m.get_one::<u32>("threads").expect("has a default");
    check_threads(target, threads).map_err(|e| CliError(e.to_string()))?;
    let memory = memory_map(m)?;
    if m.get_one::<String>("memory").is_some() && !target.is_bare_metal() {
        return Err(CliError(format!(
            "--memory is for bare-metal targets (thumbv7em-none-eabihf); {target} runs under Linux"
        )));
    }
    // A bad scheme is refused before the model is read, like a bad target.
    let quantize = super::quantize::options(m)?;
    let opts = import_options(m)?;
    let model = smelt_frontend::open(path, &opts.limits)?;
    let chunk = m.get_one::<usize>("prefill-chunk").copied();
    let step_graph = m.get_flag("step-graph");
    let llm = !matches!(model, Model::Onnx(_));
    if step_graph && !llm {
        return Err(CliError(
            "--step-graph is for language models (GGUF or Hugging Face checkpoints)".into(),
        ));
    }
    if chunk.is_some() && !llm {
        return Err(CliError(
            "--prefill-chunk is for language models (GGUF or Hugging Face checkpoints)".into(),
        ));
    }
    // A language model as an executable is a chat program; as a static
    // library, the language-model API (include/smelt_llm.h); otherwise
    // (`--step-graph`, `--emit obj`) its step graph, like any model.
    let chat = llm && !step_graph && matches!(emit, Emit::Exe | Emit::Staticlib);
    if chunk.is_some() && !chat {
        return Err(CliError(
            "--prefill-chunk is for a language model's chat executable or library (--emit \
             exe or staticlib, without --step-graph)"
                .into(),
        ));
    }
    let source = match model.checkpoint() {
        Some(ckpt) if chat => Source::Checkpoint(Box::new(ckpt?)),
        _ => Source::Graph(model.import(&opts)?),
    };
    let optimize = super::optimize::checked_options(m, spec.costs)?;
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
    let mut compile = CompileOptions::for_spec(spec.with_memory(memory), backend, out)
        .emit(emit)
        .model_name(stem)
        .threads(threads)
        .unchecked(m.get_flag("unchecked"))
        .optimize(optimize);
    compile.linker = m.get_one::<PathBuf>("linker").cloned();
    compile.name = m.get_one::<String>("name").cloned();
    let artifact = match &source {
        Source::Graph(graph) => {
            compile.quantize = match quantize {
                Some(q) => Some(super::quantize::calibrate(m, graph, q, &opts.limits)?),
                None => None,
            };
            let mut printer = Printer(PrintAfter::new(m, graph));
            smelt::compile_observed(graph, &compile, &mut printer)?
        }
        Source::Checkpoint(ckpt) => {
            compile.quantize = match quantize {
                Some(q) if q.scheme == smelt::Scheme::Int8 => {
                    return Err(CliError(
                        "--quantize int8 calibrates activations of ONNX models; a language \
                         model takes a weight-only scheme (q8_0, q4_0, …)"
                            .into(),
                    ));
                }
                q => q,
            };
            let chat = smelt::llm::ChatOptions {
                ctx: opts.llm.ctx,
                chunk,
            };
            let mut printer = Printer(PrintAfter(m.get_one::<String>("print-after").cloned()));
            smelt::llm::compile_chat_observed(ckpt, &chat, &compile, &mut printer)?
        }
    };
    if let Some(r) = &artifact.quantize {
        eprintln!("{r}");
        super::quantize::write_report(m, r)?;
    }
    for w in &artifact.warnings {
        eprintln!("warning: {w}");
    }
    for f in &artifact.files {
        println!("wrote {}", f.display());
    }
    println!(
        "target {target}, backend {}, threads {threads}, arena {} (liveness bound {}), weights {}, object {}",
        compile.backend.name(),
        human_bytes(artifact.arena_bytes),
        human_bytes(artifact.lower_bound),
        human_bytes(artifact.weights_bytes),
        human_bytes(artifact.object_bytes as u64)
    );
    if let Some(fw) = &artifact.firmware {
        println!("firmware: {fw}");
    }
    Ok(ExitCode::SUCCESS)
}
