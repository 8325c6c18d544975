//! The packed integer GEMM (`backends/src/lower/quant/gemm.rs`) natively:
//! one-node `QLinearMatMul`, `MatMulInteger`, `QLinearConv` and
//! `ConvInteger` models with constant weights (`tests/qdq/make_qlinear.py`:
//! `K`, `N`, `M` not multiples of the vector width or tile, `u8` and `i8`
//! activations and weights, per-tensor and per-channel parameters),
//! compiled for every runner and for the instruction sets whose dot
//! product the LLVM backend selects differently (x86 VNNI on `--cpu
//! native` where the host has it, AVX2 without VNNI, the SSE baseline,
//! aarch64 with and without `+dotprod`, armv7, Cortex-M4F `smlad`), and
//! compared bit for bit with the reference interpreter.

#[path = "common/targets.rs"]
mod targets;

use smelt_frontend::Limits;
use smelt_frontend::npy::read_npy;
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::interp::Interpreter;

/// The models the script writes.
const MODELS: [&str; 9] = [
    "qmm_u8_i8_col",
    "qmm_i8_i8",
    "qmm_i8_u8_col",
    "mmi_u8_i8",
    "mmi_i8_u8",
    "qconv_u8_i8_ch",
    "qconv_i8_i8",
    "qconv_u8_u8_ch",
    "convi_u8_i8",
];

/// Target, backend, extra `smelt compile` flags and runner (`firmware`:
/// Cortex-M4F under `qemu-system-arm`).
const CONFIGS: [(&str, &str, &[&str], Option<&str>); 10] = [
    ("x86_64-unknown-linux-gnu", "cranelift", &[], None),
    ("x86_64-unknown-linux-gnu", "llvm", &[], None),
    (
        "x86_64-unknown-linux-gnu",
        "llvm",
        &["--cpu", "native"],
        None,
    ),
    (
        "x86_64-unknown-linux-gnu",
        "llvm",
        &["--features", "+avx2,+fma"],
        None,
    ),
    (
        "aarch64-unknown-linux-gnu",
        "cranelift",
        &[],
        Some("qemu-aarch64"),
    ),
    (
        "aarch64-unknown-linux-gnu",
        "llvm",
        &[],
        Some("qemu-aarch64"),
    ),
    (
        "aarch64-unknown-linux-gnu",
        "llvm",
        &["--features", "+dotprod"],
        Some("qemu-aarch64"),
    ),
    (
        "aarch64-unknown-linux-gnu",
        "llvm",
        &["--features", "+dotprod,+i8mm"],
        Some("qemu-aarch64"),
    ),
    (
        "armv7-unknown-linux-gnueabihf",
        "llvm",
        &[],
        Some("qemu-arm"),
    ),
    ("thumbv7em-none-eabihf", "llvm", &[], Some("firmware")),
];

#[test]
fn packed_integer_kernels_match_the_interpreter_on_every_runner() {
    let Some(dir) = targets::python_models("qlinear_packed", "tests/qdq/make_qlinear.py", &[])
    else {
        return;
    };
    for name in MODELS {
        let d = dir.join(name);
        let model = d.join("model.onnx");
        let g = load(&model, &ImportOptions::default()).unwrap();
        let inputs = targets::npz_inputs(&d.join("input.npz"), &g);
        let want = Interpreter::new(&g).run(inputs).unwrap();
        for (k, (target, backend, flags, runner)) in CONFIGS.iter().enumerate() {
            let what = format!("{name} on {target} ({backend} {flags:?})");
            if !targets::have_runner(*runner, &what) {
                continue;
            }
            let exe = d.join(format!("exe{k}"));
            let mut args = targets::compile_args(&model, target, backend);
            args.extend_from_slice(flags);
            args.extend(["-o", exe.to_str().unwrap()]);
            targets::ok(targets::smelt(&args), &what);
            let out = d.join(format!("out{k}"));
            let run = targets::run_on(&exe, *runner, &d, "input.npz", &format!("out{k}"));
            targets::ok(run, &what);
            let got = read_npy(&out.join("y.npy"), &Limits::default()).unwrap();
            assert_eq!(got.dtype(), want[0].dtype(), "{what}");
            assert_eq!(got.shape(), want[0].shape(), "{what}");
            assert!(
                got.to_le_bytes() == want[0].to_le_bytes(),
                "{what}: differs from the interpreter"
            );
            let _ = std::fs::remove_file(&exe);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
