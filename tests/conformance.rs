//! Conformance against the ONNX backend node tests (the peer test suite).
//!
//! `tests/conformance/manifest.txt` lists the node tests expected to pass, one
//! name (or `re:REGEX`) per line with optional tags: tolerances (`atol=…`,
//! `rtol=…`) and runners (`cranelift-x86_64`, `cranelift-aarch64`,
//! `llvm-x86_64`, `llvm-aarch64`, `llvm-armv7`, `llvm-thumbv7em`). Each
//! listed test is imported with the frontend, run by the reference
//! interpreter and compared with the reference outputs; each test tagged for
//! a native runner is also compiled (in a child process, so that a code
//! generator that aborts fails one test only) to a static executable for that target
//! and run (under `qemu-aarch64`/`qemu-arm` for aarch64/armv7; Cortex-M
//! firmware under `qemu-system-arm -M mps2-an386` with semihosting, its
//! files relative to QEMU's working directory). Any listed run that fails
//! fails the whole.
//!
//! The data comes from the installed onnx wheel (`scripts/setup` materializes
//! it into `target/onnx-node-tests`; `SMELT_NODE_TESTS` overrides the path).
//!
//! ```text
//! cargo test --test conformance                       # the manifest
//! cargo test --test conformance -- --all              # every test, report only
//! cargo test --test conformance -- --all --filter conv --verbose
//! cargo test --test conformance -- --all --report target/conformance.md --write-manifest FILE
//! cargo test --test conformance -- --all --backend cranelift --target aarch64 --filter add
//! cargo test --test conformance -- --all --backend llvm --target x86_64
//! cargo test --test conformance -- --all --every-runner --write-manifest FILE  # a tagged manifest
//! cargo test --test conformance -- --all --every-runner --failures FILE        # why native runs fail
//! cargo test --test conformance -- --opt-level 3       # the manifest after the graph optimizer
//! cargo test --test conformance -- --all --backend llvm --features +avx2,+fma --filter conv
//! cargo test --test conformance -- --threads 3 --backend llvm   # native code on 3 threads, every loop split
//! ```
//!
//! `--features F` (LLVM only) compiles every native run with those LLVM
//! features, as `smelt --features F` does: the schedules then use the
//! target's vector width (8 `f32` lanes with AVX2, 16 with AVX-512F).
//!
//! `--opt-level N` (default 0) runs the e-graph optimizer (`smelt_passes::egraph`)
//! on each imported graph first, as `smelt --opt-level N` does: a test that
//! passes at 0 must pass at 3.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use regex::Regex;
use smelt::{CompileOptions, TargetSpec};
use smelt_backends::artifact::{Backend, LlvmConfig};
use smelt_backends::target::Target;
use smelt_frontend::npy::{output_file_name, read_npy, write_npy};
use smelt_frontend::onnx::{ImportOptions, OnnxModel, read_tensor_pb};
use smelt_frontend::{Error as FeError, Limits};
use smelt_ir::interp::Interpreter;
use smelt_ir::{DType, Tensor};
use smelt_passes::egraph::Pipeline;
use smelt_passes::egraph::cost::{TARGETS, TargetCost};
use std::process::Command;

struct Args {
    all: bool,
    filter: Option<Regex>,
    verbose: bool,
    report: Option<PathBuf>,
    write_manifest: Option<PathBuf>,
    runner: Option<Runner>,
    backend: Option<String>,
    target: Option<Target>,
    every_runner: bool,
    failures: Option<PathBuf>,
    opt_level: u8,
    threads: u32,
}

/// `--features`: the LLVM features every native run is compiled with.
static LLVM_FEATURES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn parse_args() -> Args {
    let mut a = Args {
        all: false,
        filter: None,
        verbose: false,
        report: None,
        write_manifest: None,
        runner: None,
        backend: None,
        target: None,
        every_runner: false,
        failures: None,
        opt_level: 0,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--all" => a.all = true,
            "--every-runner" => a.every_runner = true,
            "--verbose" => a.verbose = true,
            "--filter" => {
                a.filter = it
                    .next()
                    .map(|r| Regex::new(&r).expect("--filter takes a regex"))
            }
            "--report" => a.report = it.next().map(PathBuf::from),
            "--write-manifest" => a.write_manifest = it.next().map(PathBuf::from),
            "--failures" => a.failures = it.next().map(PathBuf::from),
            "--opt-level" => {
                let v = it.next().unwrap_or_default();
                a.opt_level = v
                    .parse()
                    .ok()
                    .filter(|l| *l <= 3)
                    .unwrap_or_else(|| panic!("--opt-level takes 0 to 3, not '{v}'"));
            }
            "--features" => {
                let f = it.next().expect("--features takes LLVM features (+a,-b)");
                LLVM_FEATURES.set(f).expect("--features is given once");
            }
            // Native code for N threads (Linux targets), every loop that
            // can be split split, however small.
            "--threads" => {
                let v = it.next().unwrap_or_default();
                a.threads = v
                    .parse()
                    .ok()
                    .filter(|t| (1..=64).contains(t))
                    .unwrap_or_else(|| panic!("--threads takes 1 to 64, not '{v}'"));
            }
            "--backend" => {
                let b = it.next().unwrap_or_default();
                assert!(
                    ["cranelift", "llvm", "interpreter"].contains(&b.as_str()),
                    "--backend takes cranelift, llvm or interpreter"
                );
                a.backend = Some(b);
            }
            "--target" => {
                let t = it.next().unwrap_or_default();
                let t = Target::ALL
                    .into_iter()
                    .find(|x| x.arch() == t || x.triple() == t)
                    .unwrap_or_else(|| {
                        panic!("--target takes x86_64, aarch64, armv7 or thumbv7em, not '{t}'")
                    });
                a.target = Some(t);
            }
            // Flags cargo/libtest conventions may pass along.
            "--nocapture" | "--quiet" | "-q" | "--test-threads" => {}
            other if other.starts_with("--") => {}
            other => a.filter = Some(Regex::new(other).expect("a filter regex")),
        }
    }
    a.runner = match (a.backend.as_deref(), a.target) {
        (Some("interpreter"), _) => Some(Runner::Interpreter),
        (None, None) => None,
        (b, t) => Some(Runner::Native(
            t.unwrap_or(Target::X86_64Linux),
            if b == Some("llvm") {
                CodeGen::Llvm
            } else {
                CodeGen::Cranelift
            },
        )),
    };
    a
}

/// The code generator of a native runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CodeGen {
    Cranelift,
    Llvm,
}

impl CodeGen {
    const ALL: [CodeGen; 2] = [CodeGen::Cranelift, CodeGen::Llvm];

    fn name(self) -> &'static str {
        match self {
            CodeGen::Cranelift => "cranelift",
            CodeGen::Llvm => "llvm",
        }
    }

    fn backend(self, features: Option<&str>) -> Backend {
        match self {
            CodeGen::Cranelift => Backend::Cranelift,
            CodeGen::Llvm => Backend::Llvm(LlvmConfig {
                features: features.map(str::to_string),
                ..LlvmConfig::default()
            }),
        }
    }
}

/// What executes a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// The reference interpreter.
    Interpreter,
    /// A static executable from a code generator, for a target (run under
    /// qemu when it is not the host).
    Native(Target, CodeGen),
}

impl Runner {
    /// The manifest tag that lists a test as passing on this runner.
    fn tag(self) -> Option<String> {
        match self {
            Runner::Interpreter => None,
            Runner::Native(t, g) => Some(format!("{}-{}", g.name(), t.arch())),
        }
    }
}

/// Compiles `graph` to an executable for `target`, runs it on `inputs` and
/// reads its outputs back.
fn run_native(
    graph: &smelt_ir::Graph,
    inputs: Vec<Tensor>,
    target: Target,
    codegen: CodeGen,
    test_dir: &Path,
    opt_level: u8,
    threads: u32,
) -> Result<Vec<Tensor>, String> {
    let name = test_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let work = std::env::temp_dir().join(format!(
        "smelt-native-{}-{}-{}-{name}",
        std::process::id(),
        codegen.name(),
        target.arch()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("scratch dir: {e}"))?;
    let exe = work.join("model");
    // Compile in a child process (this binary, `--compile-one`): a code
    // generator that aborts (LLVM's "Cannot select" is a fatal error) fails
    // this test instead of ending the whole run.
    let child = Command::new(std::env::current_exe().map_err(|e| format!("compile: {e}"))?)
        .arg("--compile-one")
        .arg(test_dir)
        .arg(target.arch())
        .arg(codegen.name())
        .arg(opt_level.to_string())
        .arg(&exe)
        .arg(threads.to_string())
        .args(LLVM_FEATURES.get())
        .output()
        .map_err(|e| format!("compile: {e}"))?;
    if !child.status.success() {
        let stderr = String::from_utf8_lossy(&child.stderr);
        let why = stderr
            .lines()
            .find_map(|l| {
                l.strip_prefix("compile: ")
                    .map(str::to_string)
                    .or_else(|| l.starts_with("LLVM ERROR").then(|| l.to_string()))
            })
            .unwrap_or_else(|| format!("the compiler exited with {}", child.status));
        return Err(format!("compile: {why}"));
    }
    // Paths relative to the scratch folder, the run's working directory:
    // firmware reads and writes host files relative to QEMU's.
    let mut args = Vec::new();
    for (k, (&id, t)) in graph.inputs.iter().zip(&inputs).enumerate() {
        let file = format!("in{k}.npy");
        write_npy(&work.join(&file), t).map_err(|e| e.to_string())?;
        args.push("--input".to_string());
        args.push(format!("{}={file}", graph.value(id).name));
    }
    let out_dir = work.join("out");
    // Semihosting cannot create directories.
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("scratch dir: {e}"))?;
    args.extend(["-o".to_string(), "out".to_string()]);
    let out = exe_command(target, &exe, &args, &work)
        .output()
        .map_err(|e| format!("run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "run: exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut outs = Vec::new();
    for &id in &graph.outputs {
        let p = out_dir.join(output_file_name(&graph.value(id).name));
        outs.push(read_npy(&p, &Limits::default()).map_err(|e| format!("output: {e}"))?);
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(outs)
}

/// The command that runs `exe` for `target` with `args` in `dir`: natively,
/// under QEMU user mode, or, for Cortex-M firmware, under
/// `qemu-system-arm -M mps2-an386` with semihosting (the arguments through
/// `-append`, words with spaces in double quotes; a 20 s limit, since a hung
/// firmware never exits).
fn exe_command(target: Target, exe: &Path, args: &[String], dir: &Path) -> Command {
    let mut cmd = match target.qemu_user() {
        _ if target.runs_natively_on(std::env::consts::ARCH) => Command::new(exe),
        Some(qemu) => {
            let mut c = Command::new(qemu);
            c.arg(exe);
            c
        }
        None => {
            let mut c = Command::new("timeout");
            c.args(["20", "qemu-system-arm", "-M", "mps2-an386", "-nographic"])
                .args(["-monitor", "none", "-serial", "none"])
                .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
                .arg(exe);
            let words: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.contains(' ') || a.is_empty() {
                        format!("\"{a}\"")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            c.arg("-append").arg(words.join(" ")).current_dir(dir);
            return c;
        }
    };
    cmd.args(args).current_dir(dir);
    cmd
}

/// Tolerances for one test.
#[derive(Clone, Copy, Debug)]
struct Tol {
    atol: f64,
    rtol: f64,
}

struct Entry {
    pattern: Pattern,
    tol: Option<Tol>,
    /// Runner tags (`cranelift-x86_64`, …): the test also passes there.
    tags: Vec<String>,
}

enum Pattern {
    Name(String),
    Regex(Regex),
}

fn read_manifest(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let first = parts.next().expect("non-empty line");
        let pattern = match first.strip_prefix("re:") {
            Some(r) => Pattern::Regex(
                Regex::new(&format!("^(?:{r})$"))
                    .unwrap_or_else(|e| panic!("manifest line {}: {e}", lineno + 1)),
            ),
            None => Pattern::Name(first.to_string()),
        };
        let mut tol = None;
        let mut tags = Vec::new();
        for tag in parts {
            match tag.split_once('=') {
                Some(("atol", v)) => {
                    tol.get_or_insert(Tol {
                        atol: 1e-5,
                        rtol: 1e-3,
                    })
                    .atol = v.parse().expect("atol=NUMBER")
                }
                Some(("rtol", v)) => {
                    tol.get_or_insert(Tol {
                        atol: 1e-5,
                        rtol: 1e-3,
                    })
                    .rtol = v.parse().expect("rtol=NUMBER")
                }
                _ => tags.push(tag.to_string()),
            }
        }
        out.push(Entry { pattern, tol, tags });
    }
    out
}

fn data_dir() -> PathBuf {
    if let Ok(p) = std::env::var("SMELT_NODE_TESTS") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/onnx-node-tests")
}

/// The default tolerance for an output dtype (the ONNX backend uses
/// rtol=1e-3; half types carry fewer bits).
fn default_tol(d: DType) -> Tol {
    match d {
        DType::F16 => Tol {
            atol: 1e-3,
            rtol: 1e-2,
        },
        DType::BF16 => Tol {
            atol: 1e-2,
            rtol: 2e-2,
        },
        _ => Tol {
            atol: 1e-5,
            rtol: 1e-3,
        },
    }
}

struct Outcome {
    pass: bool,
    detail: String,
    max_abs: f64,
    max_rel: f64,
}

fn compare(got: &Tensor, want: &Tensor, tol: Option<Tol>) -> Result<(f64, f64), String> {
    if got.dtype() != want.dtype() {
        return Err(format!(
            "dtype {} vs expected {}",
            got.dtype(),
            want.dtype()
        ));
    }
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} vs expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let tol = tol.unwrap_or_else(|| default_tol(want.dtype()));
    let exact = !want.dtype().is_float();
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    if exact {
        if got != want {
            let i = (0..g.len()).find(|&i| g[i] != w[i]).unwrap_or(0);
            return Err(format!(
                "integer mismatch at flat index {i}: {} vs expected {}",
                g.get(i).unwrap_or(&0.0),
                w.get(i).unwrap_or(&0.0)
            ));
        }
        return Ok((0.0, 0.0));
    }
    for i in 0..g.len() {
        let (a, b) = (g[i], w[i]);
        if a.is_nan() || b.is_nan() {
            if a.is_nan() != b.is_nan() {
                return Err(format!(
                    "NaN mismatch at flat index {i}: {a} vs expected {b}"
                ));
            }
            continue;
        }
        if a.is_infinite() || b.is_infinite() {
            if a != b {
                return Err(format!(
                    "infinity mismatch at flat index {i}: {a} vs expected {b}"
                ));
            }
            continue;
        }
        let abs = (a - b).abs();
        let rel = abs / b.abs().max(f64::MIN_POSITIVE);
        max_abs = max_abs.max(abs);
        if abs > tol.atol {
            max_rel = max_rel.max(rel);
        }
        if abs > tol.atol + tol.rtol * b.abs() {
            return Err(format!(
                "value mismatch at flat index {i}: {a} vs expected {b} (abs err {abs:.3e}, atol {}, rtol {})",
                tol.atol, tol.rtol
            ));
        }
    }
    Ok((max_abs, max_rel))
}

fn read_data_set(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        let (_, t) = read_tensor_pb(&p, &Limits::default()).map_err(|e| e.to_string())?;
        out.push(t);
    }
    Ok(out)
}

/// Imports a node test the way a user would compile it: input shapes from
/// the data set, shape operands bound to their test values, then the graph
/// optimizer at `opt_level` with the cost figures of `arch`. Returns the
/// graph, its run-time inputs in graph order and the expected outputs.
fn import_test(
    dir: &Path,
    opt_level: u8,
    arch: &str,
) -> Result<(smelt_ir::Graph, Vec<Tensor>, Vec<Tensor>), String> {
    let set = dir.join("test_data_set_0");
    let inputs = match read_data_set(&set, "input") {
        Ok(v) => v,
        Err(e) => return Err(format!("test data: {e}")),
    };
    let wants = match read_data_set(&set, "output") {
        Ok(v) => v,
        Err(e) => return Err(format!("test data: {e}")),
    };
    let model_path = dir.join("model.onnx");
    let limits = Limits::default();
    let input_names: Vec<String> = match OnnxModel::read(&model_path, &limits) {
        Ok(m) => m.summary().inputs.into_iter().map(|d| d.name).collect(),
        Err(e) => return Err(format!("import: {e}")),
    };
    if input_names.len() != inputs.len() {
        return Err(format!(
            "the model has {} inputs, the data set {}",
            input_names.len(),
            inputs.len()
        ));
    }
    let mut opts = ImportOptions::default();
    for (n, t) in input_names.iter().zip(&inputs) {
        opts.input_shapes.insert(n.clone(), t.shape().to_vec());
    }
    // Shape operands (a Reshape's target, a Slice's starts) that the test
    // feeds as graph inputs are bound to their test values, as a user would
    // with `--bind`; everything else stays a run-time input.
    let graph = loop {
        let model = match OnnxModel::read(&model_path, &limits) {
            Ok(m) => m,
            Err(e) => return Err(format!("import: {e}")),
        };
        match model.import(&opts) {
            Ok(g) => break g,
            Err(FeError::NeedsConstant {
                operand,
                is_graph_input,
                ..
            }) if opts.bind.len() < input_names.len() => {
                let to_bind: Vec<usize> = if is_graph_input {
                    input_names
                        .iter()
                        .position(|n| *n == operand)
                        .into_iter()
                        .collect()
                } else {
                    (0..inputs.len())
                        .filter(|&i| !inputs[i].dtype().is_float())
                        .collect()
                };
                let before = opts.bind.len();
                for i in to_bind {
                    opts.bind.insert(input_names[i].clone(), inputs[i].clone());
                    opts.input_shapes.remove(&input_names[i]);
                }
                if opts.bind.len() == before {
                    return Err(format!(
                        "import: operand '{operand}' cannot be made constant"
                    ));
                }
            }
            Err(e) => return Err(format!("import: {e}")),
        }
    };
    // The graph optimizer, as `smelt --opt-level N` runs it.
    let graph = if opt_level > 0 {
        let tc = TargetCost::for_target(arch).unwrap_or(TARGETS[0]);
        match Pipeline::for_level(opt_level, tc).run(&graph, |_, _, _| {}) {
            Ok((g, _)) => g,
            Err(e) => return Err(format!("optimize: {e}")),
        }
    } else {
        graph
    };
    let run_inputs: Vec<Tensor> = graph
        .inputs
        .iter()
        .map(|&id| {
            let name = &graph.value(id).name;
            let i = input_names
                .iter()
                .position(|n| n == name)
                .expect("graph inputs come from the model");
            inputs[i].clone()
        })
        .collect();
    Ok((graph, run_inputs, wants))
}

fn run_test(dir: &Path, tol: Option<Tol>, runner: Runner, opt_level: u8, threads: u32) -> Outcome {
    let fail = |detail: String| Outcome {
        pass: false,
        detail,
        max_abs: 0.0,
        max_rel: 0.0,
    };
    let arch = match runner {
        Runner::Interpreter => "x86_64",
        Runner::Native(t, _) => t.arch(),
    };
    let (graph, run_inputs, wants) = match import_test(dir, opt_level, arch) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let outs = match runner {
        Runner::Interpreter => match Interpreter::new(&graph).run(run_inputs) {
            Ok(o) => o,
            Err(e) => return fail(format!("run: {e}")),
        },
        Runner::Native(target, g) => {
            match run_native(&graph, run_inputs, target, g, dir, opt_level, threads) {
                Ok(o) => o,
                Err(e) => return fail(e),
            }
        }
    };
    if outs.len() != wants.len() {
        return fail(format!("{} outputs, expected {}", outs.len(), wants.len()));
    }
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    for (k, (g, w)) in outs.iter().zip(&wants).enumerate() {
        match compare(g, w, tol) {
            Ok((a, r)) => {
                max_abs = max_abs.max(a);
                max_rel = max_rel.max(r);
            }
            Err(e) => return fail(format!("output {k}: {e}")),
        }
    }
    Outcome {
        pass: true,
        detail: String::new(),
        max_abs,
        max_rel,
    }
}

/// The op types a test exercises, for the per-op table.
fn test_ops(dir: &Path) -> String {
    let Ok(m) = OnnxModel::read(&dir.join("model.onnx"), &Limits::default()) else {
        return "?".into();
    };
    let ops: Vec<String> = m
        .summary()
        .op_histogram
        .into_iter()
        .map(|(o, _)| o)
        .filter(|o| o != "Constant")
        .collect();
    if ops.is_empty() {
        "Constant".into()
    } else {
        ops.join("+")
    }
}

/// One run: test name, listed for this runner, outcome, the test's ops, runner.
type RunResult = (String, bool, Outcome, String, Runner);

/// `--compile-one TEST_DIR ARCH CODEGEN OPT_LEVEL OUT THREADS [FEATURES]`:
/// imports one node test, optimizes it and compiles it to the executable OUT
/// for THREADS threads (with the LLVM features FEATURES), in its own process
/// (see `run_native`).
fn compile_one(args: &[String]) -> ExitCode {
    let (dir, arch, codegen, opt_level, out, threads, features) = match args {
        [d, a, c, o, out, t] => (d, a, c, o, out, t, None),
        [d, a, c, o, out, t, f] => (d, a, c, o, out, t, Some(f.as_str())),
        _ => {
            eprintln!(
                "compile: --compile-one takes TEST_DIR ARCH CODEGEN OPT_LEVEL OUT THREADS [FEATURES]"
            );
            return ExitCode::FAILURE;
        }
    };
    let Ok(opt_level) = opt_level.parse::<u8>() else {
        eprintln!("compile: OPT_LEVEL '{opt_level}' is not a number");
        return ExitCode::FAILURE;
    };
    let Ok(threads) = threads.parse::<u32>() else {
        eprintln!("compile: THREADS '{threads}' is not a number");
        return ExitCode::FAILURE;
    };
    let Some(target) = Target::ALL.into_iter().find(|t| t.arch() == arch) else {
        eprintln!("compile: unknown target '{arch}'");
        return ExitCode::FAILURE;
    };
    let Some(codegen) = CodeGen::ALL.into_iter().find(|g| g.name() == codegen) else {
        eprintln!("compile: unknown code generator '{codegen}'");
        return ExitCode::FAILURE;
    };
    // The optimizer runs inside `smelt::compile`, with the figures of the
    // target as resolved for the code generator (as `smelt compile` does).
    let built = import_test(Path::new(dir), 0, arch).and_then(|(graph, _, _)| {
        // Bare metal has one thread; elsewhere every loop that can be
        // split is (a minimum work of 1), so the small node tests exercise
        // the parallel code.
        let threads = if target.is_bare_metal() { 1 } else { threads };
        let backend = codegen.backend(features);
        let spec = TargetSpec::new(target, &backend).map_err(|e| e.to_string())?;
        let opts = CompileOptions::for_spec(spec, backend, out)
            .threads(threads)
            .min_work(1)
            .opt_level(opt_level);
        smelt::compile(&graph, &opts).map_err(|e| e.to_string())
    });
    match built {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compile: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--compile-one") {
        return compile_one(&argv[1..]);
    }
    let args = parse_args();
    let dir = data_dir();
    if !dir.is_dir() {
        eprintln!(
            "conformance: no node tests at {}; run scripts/setup (or set SMELT_NODE_TESTS)",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("readable test dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.onnx").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let manifest = read_manifest(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/manifest.txt"),
    );
    let entry = |name: &str| -> Option<&Entry> {
        manifest.iter().find(|e| match &e.pattern {
            Pattern::Name(n) => n == name,
            Pattern::Regex(r) => r.is_match(name),
        })
    };
    for e in &manifest {
        if let Pattern::Name(n) = &e.pattern
            && !names.contains(n)
        {
            eprintln!("conformance: manifest lists '{n}', which the node-test data does not have");
            return ExitCode::FAILURE;
        }
    }
    // The runners: the one asked for, or by default the interpreter plus
    // every native target the manifest tags tests for.
    let runners: Vec<Runner> = match args.runner {
        Some(r) => vec![r],
        None => {
            let mut v = vec![Runner::Interpreter];
            for g in CodeGen::ALL {
                for t in Target::ALL {
                    if g == CodeGen::Cranelift && !t.cranelift_supported() {
                        continue;
                    }
                    let r = Runner::Native(t, g);
                    let tagged = manifest
                        .iter()
                        .any(|e| e.tags.iter().any(|g| Some(g) == r.tag().as_ref()));
                    if args.every_runner || tagged {
                        v.push(r);
                    }
                }
            }
            v
        }
    };
    let mut jobs: Vec<(String, Option<Tol>, bool, Runner)> = Vec::new();
    for &runner in &runners {
        for n in names
            .iter()
            .filter(|n| args.filter.as_ref().is_none_or(|r| r.is_match(n)))
        {
            let e = entry(n);
            let is_listed = match (e, runner.tag()) {
                (Some(_), None) => true,
                (Some(e), Some(tag)) => e.tags.contains(&tag),
                (None, _) => false,
            };
            if args.all || is_listed {
                jobs.push((n.clone(), e.and_then(|e| e.tol), is_listed, runner));
            }
        }
    }
    let results: Mutex<Vec<RunResult>> = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some((name, tol, is_listed, runner)) = jobs.get(i) else {
                        break;
                    };
                    let tdir = dir.join(name);
                    let outcome = std::panic::catch_unwind(|| {
                        run_test(&tdir, *tol, *runner, args.opt_level, args.threads)
                    })
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Outcome {
                            pass: false,
                            detail: format!("PANIC: {msg}"),
                            max_abs: 0.0,
                            max_rel: 0.0,
                        }
                    });
                    let ops = test_ops(&tdir);
                    results
                        .lock()
                        .unwrap()
                        .push((name.clone(), *is_listed, outcome, ops, *runner));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0).then(a.4.tag().cmp(&b.4.tag())));
    let mut failed_listed = 0;
    let mut passed = 0;
    for (name, is_listed, o, _, runner) in &results {
        let label = runner.tag().map(|t| format!(" [{t}]")).unwrap_or_default();
        if o.pass {
            passed += 1;
            if args.verbose {
                println!(
                    "pass  {name}{label}  (max abs err {:.2e}, max rel err {:.2e})",
                    o.max_abs, o.max_rel
                );
            }
        } else {
            if *is_listed {
                failed_listed += 1;
            }
            if *is_listed || args.verbose || args.filter.is_some() {
                println!(
                    "FAIL  {name}{label}{}: {}",
                    if *is_listed { " [listed]" } else { "" },
                    o.detail
                );
            }
        }
    }
    for &runner in &runners {
        let (p, t) = results
            .iter()
            .filter(|r| r.4 == runner)
            .fold((0, 0), |(p, t), r| (p + r.2.pass as usize, t + 1));
        let label = runner.tag().unwrap_or_else(|| "interpreter".into());
        println!("conformance: {label}: {p} of {t} run passed");
    }
    if let Some(path) = &args.report {
        // One row per op (expanded variants grouped by the op they expand),
        // one column per runner.
        let base_ops: HashMap<&str, &str> = results
            .iter()
            .map(|r| (r.0.as_str(), r.3.as_str()))
            .collect();
        let mut per_op: BTreeMap<String, (Vec<usize>, BTreeSet<&str>)> = BTreeMap::new();
        for (name, _, o, ops, runner) in &results {
            let key = match name
                .strip_suffix("_expanded")
                .or_else(|| name.find("_expanded_").map(|i| &name[..i]))
            {
                Some(base) => format!("{} (expanded)", base_ops.get(base).copied().unwrap_or("?")),
                None => ops.clone(),
            };
            let e = per_op
                .entry(key)
                .or_insert_with(|| (vec![0; runners.len()], BTreeSet::new()));
            e.1.insert(name.as_str());
            if o.pass {
                e.0[runners
                    .iter()
                    .position(|r| r == runner)
                    .expect("a known runner")] += 1;
            }
        }
        let labels: Vec<String> = runners
            .iter()
            .map(|r| r.tag().unwrap_or_else(|| "interpreter".into()))
            .collect();
        let mut md = format!(
            "| op(s) | {} | tests |\n|---|{}---:|\n",
            labels.join(" | "),
            "---:|".repeat(runners.len())
        );
        let mut totals = vec![0; runners.len()];
        let mut total_tests = 0;
        for (op, (passes, tests)) in &per_op {
            let cells: Vec<String> = passes.iter().map(|p| p.to_string()).collect();
            md.push_str(&format!(
                "| {op} | {} | {} |\n",
                cells.join(" | "),
                tests.len()
            ));
            for (t, p) in totals.iter_mut().zip(passes) {
                *t += p;
            }
            total_tests += tests.len();
        }
        let cells: Vec<String> = totals.iter().map(|p| format!("**{p}**")).collect();
        md.push_str(&format!(
            "| **total** | {} | **{total_tests}** |\n",
            cells.join(" | ")
        ));
        std::fs::write(path, md).expect("write report");
    }
    if let Some(path) = &args.failures {
        // Every run that fails although the first runner passes the test:
        // what a native backend still lacks, with the reason.
        let first_passes: BTreeSet<&str> = results
            .iter()
            .filter(|r| r.4 == runners[0] && r.2.pass)
            .map(|r| r.0.as_str())
            .collect();
        // One row per test and reason, naming every runner that fails so.
        let mut rows: BTreeMap<(&str, String), Vec<String>> = BTreeMap::new();
        for (name, _, o, _, runner) in &results {
            if !o.pass && *runner != runners[0] && first_passes.contains(name.as_str()) {
                let label = runner.tag().unwrap_or_else(|| "interpreter".into());
                let reason = o.detail.replace('|', "\\|").replace('\n', " ");
                rows.entry((name.as_str(), reason)).or_default().push(label);
            }
        }
        let mut md = String::from(
            "# Node tests that pass in the interpreter but not natively, with the reason\n\n\
             Generated by `cargo test --test conformance -- --all --every-runner --failures FILE`.\n\n\
             | test | runners | reason |\n|---|---|---|\n",
        );
        for ((name, reason), labels) in rows {
            md.push_str(&format!("| {name} | {} | {reason} |\n", labels.join(", ")));
        }
        std::fs::write(path, md).expect("write failures");
    }
    if let Some(path) = &args.write_manifest {
        // One line per test the first runner passes, tagged with every other
        // runner that passes it too.
        let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, _, o, _, runner) in &results {
            if o.pass && *runner == runners[0] {
                lines.entry(name.as_str()).or_default();
            }
        }
        for (name, _, o, _, runner) in &results {
            if o.pass
                && *runner != runners[0]
                && let (Some(tags), Some(tag)) = (lines.get_mut(name.as_str()), runner.tag())
            {
                tags.push(tag);
            }
        }
        let tags: BTreeSet<String> = runners.iter().filter_map(|r| r.tag()).collect();
        let onnx = std::fs::read_to_string(data_dir().join("ONNX_VERSION"))
            .map(|v| format!(" (onnx {})", v.trim()))
            .unwrap_or_default();
        let mut text = format!(
            "# ONNX backend node tests{onnx} that must pass in the reference interpreter.\n\
             # Tags name the native runners that must pass the test too: {}.\n\
             # One test name (or re:REGEX) per line; optional tags: atol=… rtol=… and runner tags.\n\
             # Regenerate: cargo test --test conformance -- --all --every-runner --write-manifest FILE\n",
            tags.into_iter().collect::<Vec<_>>().join(", ")
        );
        for (name, tags) in lines {
            text.push_str(name);
            for t in tags {
                text.push(' ');
                text.push_str(&t);
            }
            text.push('\n');
        }
        std::fs::write(path, text).expect("write manifest");
    }
    println!("{passed} passed, {} failed", results.len() - passed);
    if failed_listed > 0 {
        println!("conformance: {failed_listed} test(s) listed in the manifest failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
