//! Run-time checks in generated code: one-node models whose indices come
//! from inputs (`tests/bounds/make_models.py`: Gather with `i64` and `i32`
//! indices, GatherElements, GatherND, ScatterND, ScatterElements, OneHot),
//! compiled for every runner (x86_64 and aarch64 with both backends,
//! armv7, the Cortex-M4F firmware). In-range indices, negative ones
//! included, give the interpreter's output bit for bit; an index out of
//! range makes the program exit with status 65 and the message naming the
//! node, the op, the index and the range the interpreter would accept,
//! where the interpreter refuses the input too. OneHot's specification
//! defines an index past the depth (an all-off row): it runs and matches
//! the interpreter. A language model's step graph refuses a token id past
//! its vocabulary (`EncodedGather`) and a position past its KV cache
//! (`ScatterND`) the same way.

#[path = "common/targets.rs"]
mod targets;

use std::path::Path;
use std::process::Output;

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, write_npy};
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::interp::Interpreter;

/// The exit status of a run that failed a run-time check
/// (`EXIT_OUT_OF_RANGE` in `runtime/c/fmt.c`).
const OUT_OF_RANGE: i32 = 65;

/// A model of the script, and what its `bad.npz` must report: the message
/// after `error: `, or `None` when it must run (OneHot).
const MODELS: [(&str, Option<&str>); 7] = [
    (
        "gather",
        Some("node 'embed' (Gather): index 40000 out of range [-10, 10)"),
    ),
    (
        "gather_axis1",
        Some("node 'pick' (Gather): index -6 out of range [-5, 5)"),
    ),
    (
        "gather_elements",
        Some("node 'ge' (GatherElements): index 4 out of range [-4, 4)"),
    ),
    (
        "gather_nd",
        Some("node 'gnd' (GatherND): index -5 out of range [-4, 4)"),
    ),
    (
        "scatter_nd",
        Some("node 'snd' (ScatterND): index 7 out of range [-5, 5)"),
    ),
    (
        "scatter_elements",
        Some("node 'se' (ScatterElements): index -5 out of range [-4, 4)"),
    ),
    ("one_hot", None),
];

/// Target, backend and runner (`firmware`: Cortex-M4F under
/// `qemu-system-arm`).
const CONFIGS: [(&str, &str, Option<&str>); 6] = [
    ("x86_64-unknown-linux-gnu", "cranelift", None),
    ("x86_64-unknown-linux-gnu", "llvm", None),
    (
        "aarch64-unknown-linux-gnu",
        "cranelift",
        Some("qemu-aarch64"),
    ),
    ("aarch64-unknown-linux-gnu", "llvm", Some("qemu-aarch64")),
    ("armv7-unknown-linux-gnueabihf", "llvm", Some("qemu-arm")),
    ("thumbv7em-none-eabihf", "llvm", Some("firmware")),
];

/// The host target, where the tests of one runner run.
const X86: &str = "x86_64-unknown-linux-gnu";

/// `smelt compile` of `model` for `target` with `backend` and `flags` into
/// `exe`.
fn compile(model: &Path, target: &str, backend: &str, flags: &[&str], exe: &Path, what: &str) {
    let mut args = targets::compile_args(model, target, backend);
    args.extend(flags);
    args.extend(["-o", exe.to_str().unwrap()]);
    targets::ok(targets::smelt(&args), what);
}

/// The interpreter's result of `model` on the inputs of `npz`.
fn interpret(model: &Path, npz: &Path) -> Result<Vec<smelt_ir::Tensor>, String> {
    let g = load(model, &ImportOptions::default()).unwrap();
    let inputs = targets::npz_inputs(npz, &g);
    Interpreter::new(&g).run(inputs).map_err(|e| e.to_string())
}

/// Panics unless `dir/out/y.npy` holds `want` bit for bit.
fn check_output(dir: &Path, out: &str, want: &smelt_ir::Tensor, what: &str) {
    let got = read_npy(&dir.join(out).join("y.npy"), &Limits::default()).unwrap();
    assert_eq!(got.dtype(), want.dtype(), "{what}");
    assert_eq!(got.shape(), want.shape(), "{what}");
    assert!(
        got.to_le_bytes() == want.to_le_bytes(),
        "{what}: differs from the interpreter"
    );
}

#[test]
fn out_of_range_indices_fail_cleanly_on_every_runner() {
    let Some(dir) = targets::python_models("bounds", "tests/bounds/make_models.py", &[]) else {
        return;
    };
    for (name, message) in MODELS {
        let d = dir.join(name);
        let model = d.join("model.onnx");
        let want = interpret(&model, &d.join("good.npz")).unwrap();
        let bad = interpret(&model, &d.join("bad.npz"));
        match message {
            Some(_) => assert!(bad.is_err(), "{name}: the interpreter accepts bad.npz"),
            None => assert!(bad.is_ok(), "{name}: the interpreter refuses bad.npz"),
        }
        for (k, (target, backend, runner)) in CONFIGS.iter().enumerate() {
            let what = format!("{name} on {target} ({backend})");
            if !targets::have_runner(*runner, &what) {
                continue;
            }
            let exe = d.join(format!("exe{k}"));
            compile(&model, target, backend, &[], &exe, &what);
            let good = targets::run_on(&exe, *runner, &d, "good.npz", &format!("good{k}"));
            targets::ok(good, &format!("{what}, in-range indices"));
            check_output(&d, &format!("good{k}"), &want[0], &what);
            let out = targets::run_on(&exe, *runner, &d, "bad.npz", &format!("bad{k}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            match message {
                Some(m) => {
                    assert_eq!(out.status.code(), Some(OUT_OF_RANGE), "{what}: {stderr}");
                    assert!(
                        stderr.contains(&format!("error: {m}\n")),
                        "{what}: no {m:?} in {stderr:?}"
                    );
                }
                None => {
                    targets::ok(out, &format!("{what}, bad.npz"));
                    let bad = bad.as_ref().unwrap();
                    check_output(&d, &format!("bad{k}"), &bad[0], &what);
                }
            }
            let _ = std::fs::remove_file(&exe);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the step executable `exe` in `dir` on one token and a position
/// (`--steps` steps counting the position up); returns how it ended.
fn step(exe: &Path, dir: &Path, token: i64, pos: i64, steps: u32) -> Output {
    let (tf, pf) = (dir.join("tokens.npy"), dir.join("pos.npy"));
    let tensor = |v: i64| smelt_ir::Tensor::from_vec(vec![1], vec![v]).unwrap();
    write_npy(&tf, &tensor(token)).unwrap();
    write_npy(&pf, &tensor(pos)).unwrap();
    std::process::Command::new(exe)
        .arg("--input")
        .arg(format!("tokens={}", tf.display()))
        .arg("--input")
        .arg(format!("pos={}", pf.display()))
        .args(["--steps", &steps.to_string(), "--step-input", "pos"])
        .output()
        .expect("runs")
}

/// A language model's one-token step (a Q8_0 GGUF: the token embedding is
/// an `EncodedGather`, the KV caches `ScatterND`s at the run-time position)
/// with a context of 16, on both backends: a token id past the vocabulary
/// and a position past the cache each exit 65 naming the node; the steps up
/// to the last position run.
#[test]
fn a_language_model_step_refuses_a_token_or_position_out_of_range() {
    let Some(dir) = targets::make_llm("bounds", "llm", &["--arch", "llama", "--gguf", "q8_0"])
    else {
        return;
    };
    let gguf = dir.join("model-q8_0.gguf");
    for backend in ["cranelift", "llvm"] {
        let what = format!("the step graph ({backend})");
        let exe = dir.join(format!("step-{backend}"));
        let flags = ["--step-graph", "--ctx", "16"];
        compile(&gguf, X86, backend, &flags, &exe, &what);
        let refused = |out: Output, want: &str| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(OUT_OF_RANGE), "{what}: {stderr}");
            assert!(stderr.contains(want), "{what}: no {want:?} in {stderr:?}");
        };
        refused(
            step(&exe, &dir, 1_000_000, 0, 1),
            "(EncodedGather): index 1000000 out of range [-",
        );
        // Positions 14, 15, then 16: the third step fails.
        refused(
            step(&exe, &dir, 3, 14, 3),
            "(ScatterND): index 16 out of range [-16, 16)",
        );
        targets::ok(step(&exe, &dir, 3, 14, 2), &what);
        targets::ok(step(&exe, &dir, -1, 0, 1), &format!("{what}, token -1"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--unchecked` drops the checks: the library header says so and lists
/// none, and the executable runs an out-of-range id (clamped into the
/// table: 40000 reads the last row) with status 0.
#[test]
fn unchecked_models_clamp_and_say_so() {
    let Some(dir) = targets::python_models("bounds", "tests/bounds/make_models.py", &[]) else {
        return;
    };
    let d = dir.join("gather");
    let model = d.join("model.onnx");
    for backend in ["cranelift", "llvm"] {
        let what = format!("gather --unchecked ({backend})");
        let exe = d.join(format!("unchecked-{backend}"));
        compile(&model, X86, backend, &["--unchecked"], &exe, &what);
        let out = format!("out-{backend}");
        targets::ok(targets::run_on(&exe, None, &d, "bad.npz", &out), &what);
        let y = read_npy(&d.join(&out).join("y.npy"), &Limits::default()).unwrap();
        let y = y.to_f64_vec();
        // Ids 0, 40000 (clamped to row 9), 1: row 9 is the good input's
        // second row (id -1).
        let good = interpret(&model, &d.join("good.npz")).unwrap()[0].to_f64_vec();
        assert_eq!(y[4..8], good[4..8], "{what}");
    }
    let lib = d.join("libemb.a");
    let flags = ["--unchecked", "--emit", "staticlib"];
    compile(
        &model,
        X86,
        "cranelift",
        &flags,
        &lib,
        "gather --unchecked --emit staticlib",
    );
    let h = std::fs::read_to_string(d.join("emb.h")).unwrap();
    assert!(h.contains("#define EMB_UNCHECKED 1\n"), "{h}");
    assert!(h.contains("#define EMB_NUM_CHECKS 0\n"), "{h}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A threaded program (`--threads 2`: the MatMul after the embedding runs
/// on the thread pool) reports a bad id like a single-threaded one: the
/// checks run on the caller's thread before the threaded kernel.
#[test]
fn threaded_programs_report_a_bad_index() {
    let Some(dir) = targets::python_models("bounds", "tests/bounds/make_models.py", &[]) else {
        return;
    };
    let d = dir.join("gather_matmul");
    let model = d.join("model.onnx");
    for backend in ["cranelift", "llvm"] {
        let what = format!("gather + MatMul on 2 threads ({backend})");
        let exe = d.join(format!("threads-{backend}"));
        compile(&model, X86, backend, &["--threads", "2"], &exe, &what);
        let good = targets::run_on(&exe, None, &d, "good.npz", &format!("good-{backend}"));
        targets::ok(good, &what);
        let out = targets::run_on(&exe, None, &d, "bad.npz", &format!("bad-{backend}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(OUT_OF_RANGE), "{what}: {stderr}");
        let want = "error: node 'embed' (Gather): index 100 out of range [-100, 100)\n";
        assert!(stderr.contains(want), "{what}: {stderr:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
