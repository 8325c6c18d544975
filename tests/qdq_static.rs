//! The examples quantized by onnxruntime's static quantizer compile to
//! native code that matches onnxruntime running the same QDQ model.
//!
//! `tests/qdq/make_static.py` quantizes `examples/{mlp,cnn,transformer}`
//! with `quantize_static` (QDQ, per-channel int8 weights, uint8
//! activations, calibrated on deterministic random samples) and records
//! onnxruntime's outputs (graph optimizations disabled) on a held-back input
//! and each output's quantization step (the scale of the `DequantizeLinear`
//! producing it). Each model is compiled for x86_64 by Cranelift and LLVM
//! and for aarch64 by LLVM (run under `qemu-aarch64` when installed); every
//! output element must lie within one step of onnxruntime's. The largest
//! error of each run, in steps, is printed with `-- --nocapture`.

#[path = "common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use smelt::{Backend, CompileOptions, Emit};
use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, read_npz};
use smelt_frontend::onnx::{ImportOptions, load};

/// The models' folder, written once per test process; `None` (after
/// saying so) without the repository's Python.
fn models() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        targets::python_models(
            "qdq_static",
            "tests/qdq/make_static.py",
            &[targets::root().join("examples")],
        )
    })
    .as_deref()
}

/// Compiles example `name`'s quantized model for `target` with `backend`,
/// runs it (under `runner`) and returns the largest error of its outputs
/// against onnxruntime's, in quantization steps.
fn max_steps(name: &str, target: &str, backend: Backend, runner: Option<&str>) -> f64 {
    let d = models().expect("models").join(name);
    let what = format!("{name} {target} {backend:?}");
    let g = load(&d.join("model.onnx"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{what}: import: {e}"));
    let work = targets::scratch("qdq_static", name);
    let exe = work.join(name);
    let opts = CompileOptions::new(target, backend, &exe)
        .unwrap()
        .emit(Emit::Exe);
    smelt::compile(&g, &opts).unwrap_or_else(|e| panic!("{what}: compile: {e}"));
    let out = work.join("out");
    targets::ok(
        targets::run_model(&exe, runner, &d.join("input.npz"), &out),
        &what,
    );
    let limits = Limits::default();
    let steps = read_npz(&d.join("steps.npz"), &limits).unwrap();
    let mut worst = 0f64;
    for (out_name, want) in read_npz(&d.join("expected.npz"), &limits).unwrap() {
        let got = read_npy(&out.join(format!("{out_name}.npy")), &limits).unwrap();
        assert_eq!(got.shape(), want.shape(), "{what}: {out_name} shape");
        let step = steps
            .iter()
            .find(|(n, _)| *n == out_name)
            .map(|(_, s)| s.to_f64_vec()[0])
            .unwrap_or_else(|| panic!("{what}: no step for {out_name}"));
        for (k, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
            let err = (a - b).abs() / step;
            assert!(
                err <= 1.0 + 1e-4,
                "{what}: {out_name}[{k}]: {a} vs onnxruntime {b} ({err:.3} steps of {step})"
            );
            worst = worst.max(err);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("{what}: max error {worst:.3} quantization steps");
    worst
}

const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// The checks of one example: x86_64 with both backends, aarch64 with LLVM.
fn check(name: &str) {
    if models().is_none() {
        return;
    }
    let llvm = || Backend::Llvm(smelt::LlvmConfig::default());
    max_steps(name, X86_64, Backend::Cranelift, None);
    max_steps(name, X86_64, llvm(), None);
    if targets::have("qemu-aarch64", "qdq_static aarch64") {
        max_steps(name, AARCH64, llvm(), Some("qemu-aarch64"));
    }
}

#[test]
fn mlp_qdq_matches_onnxruntime_within_a_step() {
    check("mlp");
}

#[test]
fn cnn_qdq_matches_onnxruntime_within_a_step() {
    check("cnn");
}

#[test]
fn transformer_qdq_matches_onnxruntime_within_a_step() {
    check("transformer");
}
