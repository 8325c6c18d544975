//! Argument definitions (clap builder API) and the options shared by the
//! subcommands.

pub mod compile;
pub mod inspect;
pub mod optimize;
pub mod quantize;
pub mod run;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use smelt_frontend::Limits;
use smelt_frontend::onnx::ImportOptions;

/// A CLI-level error: a message, with the cause's own text folded in.
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<smelt_frontend::Error> for CliError {
    fn from(e: smelt_frontend::Error) -> CliError {
        CliError(e.to_string())
    }
}

impl From<smelt::Error> for CliError {
    fn from(e: smelt::Error) -> CliError {
        CliError(e.to_string())
    }
}

impl From<smelt_ir::Error> for CliError {
    fn from(e: smelt_ir::Error) -> CliError {
        CliError(e.to_string())
    }
}

/// Shorthand for a CLI result.
pub type CliResult<T> = Result<T, CliError>;

fn model_args(cmd: Command) -> Command {
    let limit_help = {
        let keys: Vec<String> = Limits::KEYS
            .iter()
            .map(|(k, d)| format!("{k}: {d}"))
            .collect();
        format!(
            "Raise or lower a safety limit on untrusted files (repeatable). Keys: {}",
            keys.join("; ")
        )
    };
    cmd.arg(
        Arg::new("model")
            .value_name("MODEL")
            .required(true)
            .value_parser(value_parser!(PathBuf))
            .help("The model: an .onnx file, a GGUF checkpoint or a Hugging Face folder (config.json + safetensors + tokenizer.json)"),
    )
    .arg(
        Arg::new("ctx")
            .long("ctx")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("Language models: KV cache capacity in tokens (default: the model's maximum context, at most 4096; a larger N is clamped to the model's maximum)"),
    )
    .arg(
        Arg::new("dim")
            .long("dim")
            .value_name("NAME=N")
            .action(ArgAction::Append)
            .help("Pin a named symbolic dim (e.g. --dim batch=1); repeatable"),
    )
    .arg(
        Arg::new("input-shape")
            .long("input-shape")
            .value_name("INPUT=D0,D1,…")
            .action(ArgAction::Append)
            .help("Fix the whole shape of an input (e.g. --input-shape x=1,3,224,224); repeatable"),
    )
    .arg(
        Arg::new("bind")
            .long("bind")
            .value_name("INPUT=FILE.npy")
            .action(ArgAction::Append)
            .help(
                "Fix an input to a constant value at compile time (for shape operands); repeatable",
            ),
    )
    .arg(
        Arg::new("state")
            .long("state")
            .value_name("INPUT=OUTPUT")
            .action(ArgAction::Append)
            .help("Make graph input INPUT persistent state whose next value is OUTPUT (a graph output or any value of the same type): INPUT leaves the signature, starts at zero and takes OUTPUT's value after every step (KV caches, recurrent state); repeatable"),
    )
    .arg(
        Arg::new("weights")
            .long("weights")
            .value_name("FILE.safetensors")
            .value_parser(value_parser!(PathBuf))
            .help(
                "Take initializers from a safetensors file, by name (dtype and shape are checked)",
            ),
    )
    .arg(
        Arg::new("limit")
            .long("limit")
            .value_name("KEY=N")
            .action(ArgAction::Append)
            .help(limit_help),
    )
}

/// The `smelt` command with its subcommands.
pub fn command() -> Command {
    Command::new("smelt")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Ahead-of-time compiler from ONNX models to native code")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(quantize::args(optimize::args(model_args(
            Command::new("inspect")
                .about("Pre-flight report: signature, ops, parameters, MACs, peak activation memory, unsupported ops")
                .arg(Arg::new("print-ir").long("print-ir").action(ArgAction::SetTrue).help("Also print the imported IR"))
                .arg(Arg::new("optimized").long("optimized").action(ArgAction::SetTrue).help("Report on the graph after the optimizer (see --opt-level) and print it with the rule counts, stop reason, e-graph size and time"))
                .arg(Arg::new("target").long("target").value_name("TRIPLE").help("The target whose cost figures the optimizer uses (default x86_64-unknown-linux-gnu); for a bare-metal target (thumbv7em-none-eabihf) also estimate the firmware's flash and RAM use"))
                .arg(Arg::new("threads").long("threads").value_name("N").value_parser(value_parser!(u32)).help("Also report which loops smelt compile --threads N would run in parallel (the native kernels' parallel loops and their arena)"))
                .arg(memory_arg()),
        ))))
        .subcommand(quantize::args(optimize::args(model_args(
            Command::new("compile")
                .about("Compile a model to a native static executable, static library or object file (Cranelift or LLVM backend)")
                .arg(
                    Arg::new("target")
                        .long("target")
                        .value_name("TRIPLE")
                        .default_value("x86_64-unknown-linux-gnu")
                        .help("x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf or thumbv7em-none-eabihf (Cortex-M4F firmware; short: x86_64, aarch64, armv7, thumbv7em)"),
                )
                .arg(memory_arg())
                .arg(
                    Arg::new("emit")
                        .long("emit")
                        .value_name("KIND")
                        .default_value("exe")
                        .help("exe: a static executable (./model --input NAME=FILE.npy … [-o DIR] [--bench N]); staticlib: libNAME.a plus NAME.h for C programs; obj: the object file plus the same header; asm, llvm-ir: the generated assembly or optimized LLVM IR (--backend llvm)"),
                )
                .arg(Arg::new("output").short('o').long("output").value_name("OUT").value_parser(value_parser!(PathBuf)).help("Output path (default: the model's file stem)"))
                .arg(Arg::new("backend").long("backend").value_name("NAME").default_value("cranelift").value_parser(["cranelift", "llvm"]).help("Code generator: cranelift (fast compiles, scalar code) or llvm (optimized, vectorized code at LLVM's O3; use it for speed)"))
                .arg(Arg::new("cpu").long("cpu").value_name("NAME").help("LLVM backend: the CPU to tune and select instructions for (e.g. skylake, cortex-a72), or native for this machine's (host target only); default: a safe baseline per target (x86-64-v2, generic aarch64)"))
                .arg(Arg::new("features").long("features").value_name("+A,-B").help("LLVM backend: target features to add or remove (LLVM spelling, e.g. +avx2,+fma)"))
                .arg(Arg::new("name").long("name").value_name("NAME").help("Symbol prefix of a staticlib or obj: it defines NAME_run and NAME_model, and its header's macros start with NAME in upper case (default: NAME of libNAME.a, or the object's file stem, made a C identifier); executables always use smelt_model_run"))
                .arg(Arg::new("unchecked").long("unchecked").action(ArgAction::SetTrue).help("Drop the run-time checks of indices, token ids and positions read from the inputs (a value out of range is clamped instead of failing the run with a message); for callers that guarantee their inputs. The library header says so"))
                .arg(Arg::new("threads").long("threads").value_name("N").value_parser(value_parser!(u32)).default_value("1").help("Run the hot loops (GEMM tiles of MatMul/Gemm/Conv) on up to N threads of a tiny thread pool in the runtime (Linux targets; raw clone/futex, no libc); results are bit-identical to one thread. Executables take --threads M <= N to use fewer. Bare-metal targets: 1 only"))
                .arg(Arg::new("step-graph").long("step-graph").action(ArgAction::SetTrue).help("Language models: compile the one-token step graph (inputs tokens and pos, output logits, the KV cache as state) like any model, instead of the chat executable (--emit exe) or the language-model library (--emit staticlib); --emit obj always does"))
                .arg(Arg::new("prefill-chunk").long("prefill-chunk").value_name("N").value_parser(value_parser!(usize)).help("Language models: prompt tokens per prefill step of the chat executable (default 32 on Linux; bare metal: none, the prompt goes through the one-token decode model); 0 or 1: no prefill model"))
                .arg(Arg::new("linker").long("linker").value_name("PATH").value_parser(value_parser!(PathBuf)).help("The ld.lld to link executables with (default: ld.lld-19, ld.lld, then the Rust toolchain's rust-lld)")),
        ))))
        .subcommand(optimize::args(model_args(
            Command::new("run")
                .about("Run the reference interpreter on .npy/.npz inputs")
                .arg(
                    Arg::new("input")
                        .long("input")
                        .short('i')
                        .value_name("NAME=FILE.npy | FILE.npz")
                        .action(ArgAction::Append)
                        .help("An input tensor (repeatable), or one .npz holding all inputs by name"),
                )
                .arg(
                    Arg::new("output-dir")
                        .short('o')
                        .long("output-dir")
                        .value_name("DIR")
                        .value_parser(value_parser!(PathBuf))
                        .help("Write one DIR/<output name>.npy per graph output"),
                )
                .arg(
                    Arg::new("steps")
                        .long("steps")
                        .value_name("N")
                        .value_parser(value_parser!(u64).range(1..))
                        .default_value("1")
                        .help("Run N steps with the same inputs, carrying the --state values from each step to the next, and write the last step's outputs"),
                ),
        )))
}

/// `--memory`: the firmware memory map of bare-metal targets.
fn memory_arg() -> Arg {
    Arg::new("memory")
        .long("memory")
        .value_name("MAP")
        .help("Firmware memory map for bare-metal targets: flash=SIZE[@ORIGIN],ram=SIZE[@ORIGIN],stack=SIZE (K/M suffixes, 0x hex; default: QEMU mps2-an386, flash=4M@0x0,ram=4M@0x20000000,stack=64K)")
}

/// The `--memory` map, or the default one.
fn memory_map(m: &ArgMatches) -> CliResult<smelt_runtime::firmware::MemoryMap> {
    match m.get_one::<String>("memory") {
        Some(s) => s
            .parse()
            .map_err(|e: smelt_runtime::firmware::MemoryMapError| {
                CliError(format!("--memory: {e}"))
            }),
        None => Ok(Default::default()),
    }
}

fn split_kv<'a>(s: &'a str, flag: &str) -> CliResult<(&'a str, &'a str)> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| CliError(format!("{flag} takes NAME=VALUE, got '{s}'")))
}

fn parse_usize(s: &str, what: &str) -> CliResult<usize> {
    s.trim()
        .parse()
        .map_err(|_| CliError(format!("{what}: '{s}' is not a non-negative integer")))
}

/// Builds import options from the shared model flags.
pub fn import_options(m: &ArgMatches) -> CliResult<ImportOptions> {
    let mut opts = ImportOptions::default();
    for s in m.get_many::<String>("limit").into_iter().flatten() {
        let (k, v) = split_kv(s, "--limit")?;
        let v: u64 = v
            .parse()
            .map_err(|_| CliError(format!("--limit {k}: '{v}' is not a non-negative integer")))?;
        opts.limits.set(k, v)?;
    }
    opts.weights = m.get_one::<PathBuf>("weights").cloned();
    if let Some(&ctx) = m.get_one::<usize>("ctx") {
        if ctx == 0 {
            return Err(CliError("--ctx must be at least 1 token".into()));
        }
        // A KV cache is a language model's: on an ONNX model the flag would
        // be silently ignored. (A path that is no model at all is left to
        // the reader, whose message says what it is.)
        let path = m.get_one::<PathBuf>("model").expect("required");
        if smelt_frontend::detect(path).ok() == Some(smelt_frontend::Format::Onnx) {
            return Err(CliError(format!(
                "--ctx {ctx} sets a language model's KV cache capacity, but {} is no GGUF file or Hugging Face folder: it is read as ONNX, which has no KV cache; drop --ctx",
                path.display()
            )));
        }
        opts.llm.ctx = Some(ctx);
    }
    for s in m.get_many::<String>("dim").into_iter().flatten() {
        let (k, v) = split_kv(s, "--dim")?;
        opts.dims
            .insert(k.to_string(), parse_usize(v, &format!("--dim {k}"))?);
    }
    for s in m.get_many::<String>("input-shape").into_iter().flatten() {
        let (k, v) = split_kv(s, "--input-shape")?;
        let dims = if v.trim().is_empty() {
            vec![] // a scalar
        } else {
            v.split(',')
                .map(|d| parse_usize(d, &format!("--input-shape {k}")))
                .collect::<CliResult<Vec<_>>>()?
        };
        opts.input_shapes.insert(k.to_string(), dims);
    }
    for s in m.get_many::<String>("state").into_iter().flatten() {
        let (k, v) = split_kv(s, "--state")?;
        if v.is_empty() {
            return Err(CliError(format!("--state takes INPUT=OUTPUT, got '{s}'")));
        }
        opts.states.push((k.to_string(), v.to_string()));
    }
    for s in m.get_many::<String>("bind").into_iter().flatten() {
        let (k, v) = split_kv(s, "--bind")?;
        let t = smelt_frontend::npy::read_npy(Path::new(v), &opts.limits)?;
        opts.bind.insert(k.to_string(), t);
    }
    Ok(opts)
}

/// Formats a byte count for humans (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Formats a count with thousands separators.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Input files given as `--input`, by input name (an `.npz` supplies several).
pub fn input_files(
    m: &ArgMatches,
    limits: &Limits,
) -> CliResult<HashMap<String, smelt_ir::Tensor>> {
    let mut out = HashMap::new();
    for s in m.get_many::<String>("input").into_iter().flatten() {
        if let Some((k, v)) = s.split_once('=') {
            let t = smelt_frontend::npy::read_npy(Path::new(v), limits)?;
            if out.insert(k.to_string(), t).is_some() {
                return Err(CliError(format!("input '{k}' is given twice")));
            }
        } else if s.ends_with(".npz") {
            for (k, t) in smelt_frontend::npy::read_npz(Path::new(s), limits)? {
                if out.insert(k.clone(), t).is_some() {
                    return Err(CliError(format!("input '{k}' is given twice")));
                }
            }
        } else {
            return Err(CliError(format!(
                "--input takes NAME=FILE.npy or FILE.npz, got '{s}'"
            )));
        }
    }
    Ok(out)
}
