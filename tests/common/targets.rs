//! The harness shared by the end-to-end tests: the repository root, fresh
//! scratch folders, running `smelt` and checking that a process succeeded,
//! running a compiled program (natively, under a user-mode QEMU, or as
//! Cortex-M4F firmware under `qemu-system-arm` with semihosting), reading
//! raw f32 outputs and comparing `.npy` outputs with onnxruntime's.

// Each test binary includes this file and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, read_npz};

/// The repository root (the `smelt` crate's folder).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's Python (`.venv`, with the pinned reference packages),
/// or `None` after saying that `what` is skipped without it. Under CI
/// (`CI` set) a missing `.venv` is a failure, not a skip: `scripts/setup`
/// makes it, so a reference test must never pass by not running.
pub fn venv_python(what: &str) -> Option<PathBuf> {
    let python = root().join(".venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: no .venv/bin/python; CI runs scripts/setup, which makes it"
    );
    eprintln!("skipping {what}: no .venv/bin/python (scripts/setup makes it)");
    None
}

/// A fresh, empty folder for one check of test binary `suite`. Tests run in
/// parallel and some repeat a tag, so every call gets its own folder.
pub fn scratch(suite: &str, tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "smelt-{suite}-test-{tag}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A command running the `smelt` binary under test.
pub fn smelt_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smelt"))
}

/// The arguments of `smelt compile` of `model` for `target` with
/// `backend`; the caller adds the output and any other options.
pub fn compile_args<'a>(model: &'a Path, target: &'a str, backend: &'a str) -> Vec<&'a str> {
    let model = model.to_str().expect("model paths are UTF-8");
    vec!["compile", model, "--target", target, "--backend", backend]
}

/// Runs the `smelt` binary under test with `args`.
pub fn smelt(args: &[&str]) -> Output {
    smelt_cmd().args(args).output().expect("smelt runs")
}

/// Panics with the process's output unless it succeeded; returns it.
pub fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` and panics with its output unless it succeeded.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    ok(out, what)
}

/// Whether `tool` runs; if not, says why the check is skipped.
pub fn have(tool: &str, check: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping {check}: {tool} is not installed");
    }
    ok
}

/// Whether every one of `tools` runs; if not, says why the check is skipped
/// (naming the first that is missing).
pub fn have_all(tools: &[&str], check: &str) -> bool {
    tools.iter().all(|t| have(t, check))
}

/// A command running `app`, under `runner` (a program and its arguments)
/// when not empty.
pub fn runner_cmd(runner: &[&str], app: &Path) -> Command {
    match runner {
        [] => Command::new(app),
        [r, rest @ ..] => {
            let mut c = Command::new(r);
            c.args(rest).arg(app);
            c
        }
    }
}

/// A command running Cortex-M4F firmware `exe` under `qemu-system-arm -M
/// mps2-an386` with semihosting; host paths are relative to `dir`, QEMU's
/// working directory (a command line for the firmware follows as
/// `-append`). Bounded by a minute: a firmware that hangs must not hang the
/// test.
pub fn firmware_cmd(exe: &Path, dir: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.args(["60", "qemu-system-arm", "-M", "mps2-an386", "-nographic"])
        .args(["-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(exe)
        .current_dir(dir);
    c
}

/// Runs the compiled program `exe` in `dir` with the space-separated
/// `args`: under `runner` when given, where `"firmware"` means Cortex-M4F
/// firmware under `qemu-system-arm` (the arguments then go to `-append`).
pub fn run_in(exe: &Path, runner: Option<&str>, dir: &Path, args: &str) -> Output {
    match runner {
        Some("firmware") => firmware_cmd(exe, dir).args(["-append", args]).output(),
        _ => runner_cmd(runner.as_slice(), exe)
            .args(args.split(' '))
            .current_dir(dir)
            .output(),
    }
    .expect("runs")
}

/// Whether the tool `runner` needs is installed (`firmware`:
/// `qemu-system-arm`; none to run natively); if not, says `what` is skipped.
pub fn have_runner(runner: Option<&str>, what: &str) -> bool {
    match runner {
        None => true,
        Some("firmware") => have("qemu-system-arm", what),
        Some(tool) => have(tool, what),
    }
}

/// Runs a compiled model `exe` on `dir/input` (a `.npz` file name),
/// writing its outputs to `dir/out`: natively, under the user-mode QEMU
/// `runner`, or as Cortex-M4F firmware (`firmware`, [`firmware_cmd`]).
pub fn run_on(exe: &Path, runner: Option<&str>, dir: &Path, input: &str, out: &str) -> Output {
    std::fs::create_dir_all(dir.join(out)).unwrap();
    run_in(exe, runner, dir, &format!("--input {input} -o {out}"))
}

/// Runs a compiled model `exe` (under `runner` when given) on `input`,
/// writing its outputs to `out`.
pub fn run_model(exe: &Path, runner: Option<&str>, input: &Path, out: &Path) -> Output {
    runner_cmd(runner.as_slice(), exe)
        .arg("--input")
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .expect("runs")
}

/// The little-endian f32 values of a raw output file, widened.
pub fn read_f32(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect()
}

/// Compares the `.npy` outputs a compiled model wrote to `out_dir` with the
/// tensors of `expected` (an `expected.npz` of onnxruntime's outputs): the
/// same dtypes and shapes, and every element within `atol + rtol * |expected|`.
/// Returns the largest absolute error of each output, by name.
pub fn check_npy_outputs(
    expected: &Path,
    out_dir: &Path,
    atol: f64,
    rtol: f64,
    what: &str,
) -> Vec<(String, f64)> {
    let mut worst = Vec::new();
    for (name, want) in read_npz(expected, &Limits::default()).unwrap() {
        let got = read_npy(&out_dir.join(format!("{name}.npy")), &Limits::default()).unwrap();
        assert_eq!(got.dtype(), want.dtype(), "{what}: {name} dtype");
        assert_eq!(got.shape(), want.shape(), "{what}: {name} shape");
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let mut max = 0f64;
        for (a, b) in g.iter().zip(&w) {
            assert!(
                (a - b).abs() <= atol + rtol * b.abs(),
                "{what}: {name}: {a} vs onnxruntime {b}"
            );
            max = max.max((a - b).abs());
        }
        worst.push((name, max));
    }
    worst
}

/// The tensors of the `.npz` file `path` that `g`'s inputs name, in the
/// graph's input order.
pub fn npz_inputs(path: &Path, g: &smelt_ir::Graph) -> Vec<smelt_ir::Tensor> {
    let npz = read_npz(path, &Limits::default()).unwrap();
    g.inputs
        .iter()
        .map(|&id| {
            let n = &g.value(id).name;
            npz.iter().find(|(k, _)| k == n).unwrap().1.clone()
        })
        .collect()
}

/// A scratch folder of `suite` (tagged `tag`) filled by
/// `scripts/make_llm.py args --out DIR` (random-weight language-model
/// checkpoints), or `None` (after saying so) without `.venv`.
pub fn make_llm(suite: &str, tag: &str, args: &[&str]) -> Option<PathBuf> {
    let python = venv_python(&format!("the {suite} tests"))?;
    let dir = scratch(suite, tag);
    run_ok(
        Command::new(python)
            .arg(root().join("scripts/make_llm.py"))
            .args(args)
            .arg("--out")
            .arg(&dir),
        "make_llm.py",
    );
    Some(dir)
}

/// A scratch folder of `suite` filled by the repository's Python running
/// `script` (a path under the repository) with the folder and `args`
/// after it; `None` (after saying so) without `.venv/bin/python`, which
/// `scripts/setup` makes.
pub fn python_models(suite: &str, script: &str, args: &[PathBuf]) -> Option<PathBuf> {
    let python = root().join(".venv/bin/python");
    if !python.exists() {
        eprintln!("skipping: no .venv/bin/python (scripts/setup makes it)");
        return None;
    }
    let dir = scratch(suite, "models");
    run_ok(
        Command::new(python)
            .arg(root().join(script))
            .arg(&dir)
            .args(args),
        script,
    );
    Some(dir)
}
