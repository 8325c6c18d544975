//! Native executables end to end: the example models compiled by the
//! Cranelift and the LLVM backend for x86_64 (run here) and aarch64 (run
//! under `qemu-aarch64`), and by the LLVM backend for armv7 (under
//! `qemu-arm`) and the Cortex-M4F (firmware under `qemu-system-arm`), match
//! onnxruntime's outputs; compiling twice gives byte-identical artifacts.

use std::path::PathBuf;
use std::process::Command;

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, read_npz};

#[path = "common/targets.rs"]
mod targets;
use targets::root;

/// A fresh folder for one check. Tests run in parallel and several compile
/// the same example for the same target (with different features), so each
/// call gets its own folder.
fn scratch(tag: &str) -> PathBuf {
    targets::scratch("native", tag)
}

fn smelt(args: &[&str]) {
    let out = targets::smelt(args);
    assert!(
        out.status.success(),
        "smelt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles an example for a target with a backend, runs it and compares
/// with onnxruntime.
fn check_with(
    backend: &str,
    example: &str,
    pins: &[&str],
    target: &str,
    runner: Option<&str>,
    atol: f64,
    rtol: f64,
) {
    let dir = root().join("examples").join(example);
    let work = scratch(&format!("{example}-{target}-{backend}"));
    let exe = work.join("model");
    let model = dir.join("model.onnx");
    let mut args = targets::compile_args(&model, target, backend);
    args.extend(["-o", exe.to_str().unwrap()]);
    args.extend_from_slice(pins);
    smelt(&args);
    let out_dir = work.join("out");
    let out = match runner {
        // Cortex-M firmware: semihosting, host paths relative to QEMU's
        // working directory, and an existing output folder.
        Some(FIRMWARE) => {
            std::fs::copy(dir.join("input.npz"), work.join("input.npz")).unwrap();
            std::fs::create_dir_all(&out_dir).unwrap();
            targets::firmware_cmd(&exe, &work)
                .args(["-append", "--input input.npz -o out"])
                .output()
                .expect("runs")
        }
        _ => targets::run_model(&exe, runner, &dir.join("input.npz"), &out_dir),
    };
    assert!(
        out.status.success(),
        "{example} on {target} ({backend}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, want) in read_npz(&dir.join("expected.npz"), &Limits::default()).unwrap() {
        let got = read_npy(&out_dir.join(format!("{name}.npy")), &Limits::default()).unwrap();
        assert_eq!(got.shape(), want.shape());
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let worst = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        for (a, b) in g.iter().zip(&w) {
            assert!(
                (a - b).abs() <= atol + rtol * b.abs(),
                "{example}/{name} on {target} ({backend}): {a} vs onnxruntime {b}"
            );
        }
        eprintln!(
            "{example}/{name} on {target} ({backend}): max abs err vs onnxruntime {worst:.2e}"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The runner name [`check_with`] takes for Cortex-M firmware
/// (`qemu-system-arm -M mps2-an386` with semihosting).
const FIRMWARE: &str = "firmware";

/// The MLP example's pinned dimensions.
const MLP: &[&str] = &["--dim", "batch=2"];
/// The transformer example's pinned dimensions.
const TRANSFORMER: &[&str] = &["--dim", "batch=1", "--dim", "seq=16"];

/// [`check_with`] for the Cranelift backend.
fn check(example: &str, pins: &[&str], target: &str, runner: Option<&str>, atol: f64, rtol: f64) {
    check_with("cranelift", example, pins, target, runner, atol, rtol);
}

/// [`check_with`] for the LLVM backend.
fn check_llvm(
    example: &str,
    pins: &[&str],
    target: &str,
    runner: Option<&str>,
    atol: f64,
    rtol: f64,
) {
    check_with("llvm", example, pins, target, runner, atol, rtol);
}

/// Whether this host's CPU has every x86 feature in `flags` (per
/// `/proc/cpuinfo`); prints why a test is skipped when it does not.
fn host_has(flags: &[&str], test: &str) -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let have: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let missing: Vec<&&str> = flags.iter().filter(|f| !have.contains(f)).collect();
    if std::env::consts::ARCH != "x86_64" || !missing.is_empty() {
        eprintln!("skipping {test}: this host lacks {missing:?} (or is not x86_64)");
        return false;
    }
    true
}

/// The examples with the vector extensions the schedules widen for: AVX2
/// with FMA (8-lane vectors, 6 × 2 GEMM tiles) and AVX-512F (16 lanes,
/// 8 × 3 tiles), each against onnxruntime.
#[test]
fn llvm_examples_with_avx2_and_avx512_match_onnxruntime() {
    for (flags, features) in [
        (&["avx2", "fma"][..], "+avx2,+fma"),
        (&["avx512f", "avx512vl"][..], "+avx512f,+avx512vl"),
    ] {
        if !host_has(flags, features) {
            continue;
        }
        let x86 = "x86_64-unknown-linux-gnu";
        let f = ["--features", features];
        let mlp = [&["--dim", "batch=2"][..], &f].concat();
        let transformer = [&["--dim", "batch=1", "--dim", "seq=16"][..], &f].concat();
        check_llvm("mlp", &mlp, x86, None, 1e-5, 1e-4);
        check_llvm("cnn", &f, x86, None, 1e-4, 1e-4);
        check_llvm("transformer", &transformer, x86, None, 1e-4, 1e-4);
    }
}

#[test]
fn mlp_x86_64_matches_onnxruntime() {
    check("mlp", MLP, "x86_64-unknown-linux-gnu", None, 1e-5, 1e-4);
}

#[test]
fn mlp_aarch64_matches_onnxruntime() {
    check(
        "mlp",
        MLP,
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-5,
        1e-4,
    );
}

#[test]
fn artifacts_are_byte_identical() {
    let model = root().join("examples/mlp/model.onnx");
    let work = scratch("repro");
    for backend in ["cranelift", "llvm"] {
        for (emit, ext) in [("exe", ""), ("obj", ".o")] {
            let targets: &[&str] = match backend {
                "llvm" => &[
                    "x86_64-unknown-linux-gnu",
                    "aarch64-unknown-linux-gnu",
                    "armv7-unknown-linux-gnueabihf",
                    "thumbv7em-none-eabihf",
                ],
                _ => &["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"],
            };
            for &target in targets {
                let mut bytes = Vec::new();
                for k in 0..2 {
                    // Same file name in two folders: a library's symbol
                    // prefix comes from it.
                    let dir = work.join(k.to_string());
                    std::fs::create_dir_all(&dir).unwrap();
                    let out = dir.join(format!("m{ext}"));
                    smelt(&[
                        "compile",
                        model.to_str().unwrap(),
                        "--dim",
                        "batch=2",
                        "--target",
                        target,
                        "--backend",
                        backend,
                        "--emit",
                        emit,
                        "-o",
                        out.to_str().unwrap(),
                    ]);
                    bytes.push(std::fs::read(&out).unwrap());
                }
                assert!(!bytes[0].is_empty());
                assert!(
                    bytes[0] == bytes[1],
                    "{emit} for {target} ({backend}) differs between two compiles"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn cnn_x86_64_matches_onnxruntime() {
    check("cnn", &[], "x86_64-unknown-linux-gnu", None, 1e-4, 1e-4);
}

#[test]
fn cnn_aarch64_matches_onnxruntime() {
    check(
        "cnn",
        &[],
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-4,
        1e-4,
    );
}

#[test]
fn transformer_x86_64_matches_onnxruntime() {
    check(
        "transformer",
        TRANSFORMER,
        "x86_64-unknown-linux-gnu",
        None,
        1e-4,
        1e-4,
    );
}

#[test]
fn transformer_aarch64_matches_onnxruntime() {
    check(
        "transformer",
        TRANSFORMER,
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_mlp_x86_64_matches_onnxruntime() {
    check_llvm("mlp", MLP, "x86_64-unknown-linux-gnu", None, 1e-5, 1e-4);
}

#[test]
fn llvm_mlp_aarch64_matches_onnxruntime() {
    check_llvm(
        "mlp",
        MLP,
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-5,
        1e-4,
    );
}

#[test]
fn llvm_cnn_x86_64_matches_onnxruntime() {
    check_llvm("cnn", &[], "x86_64-unknown-linux-gnu", None, 1e-4, 1e-4);
}

#[test]
fn llvm_cnn_aarch64_matches_onnxruntime() {
    check_llvm(
        "cnn",
        &[],
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_transformer_x86_64_matches_onnxruntime() {
    check_llvm(
        "transformer",
        TRANSFORMER,
        "x86_64-unknown-linux-gnu",
        None,
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_transformer_aarch64_matches_onnxruntime() {
    check_llvm(
        "transformer",
        TRANSFORMER,
        "aarch64-unknown-linux-gnu",
        Some("qemu-aarch64"),
        1e-4,
        1e-4,
    );
}

/// The compile flags of the LLVM backend: text outputs, `--cpu`/`--features`,
/// and clear errors where they do not apply.
#[test]
fn llvm_flags_and_their_errors() {
    let model = root().join("examples/mlp/model.onnx");
    let model = model.to_str().unwrap();
    let work = scratch("llvm-flags");
    let out = |f: &str| work.join(f).to_str().unwrap().to_string();
    let compile = |extra: &[&str]| {
        let mut args = vec!["compile", model, "--dim", "batch=2"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_smelt"))
            .args(&args)
            .output()
            .unwrap()
    };
    let asm = out("m.s");
    let o = compile(&["--backend", "llvm", "--emit", "asm", "-o", &asm]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read_to_string(&asm)
            .unwrap()
            .contains("smelt_model_run:")
    );
    let ll = out("m.ll");
    let o = compile(&[
        "--backend",
        "llvm",
        "--cpu",
        "skylake",
        "--features",
        "+avx2,+fma",
        "--emit",
        "llvm-ir",
        "-o",
        &ll,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ir = std::fs::read_to_string(&ll).unwrap();
    assert!(ir.contains("define void @smelt_model_run("));
    // AVX2 widens the vectorized loops to 8 lanes.
    assert!(ir.contains("<8 x float>"), "no 8-lane vectors with +avx2");
    for (args, want) in [
        (&["--emit", "asm"][..], "need --backend llvm"),
        (&["--cpu", "skylake"][..], "add --backend llvm"),
        (
            &[
                "--backend",
                "llvm",
                "--cpu",
                "native",
                "--target",
                "aarch64-unknown-linux-gnu",
            ][..],
            "--cpu native",
        ),
    ] {
        let o = compile(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn llvm_mlp_armv7_matches_onnxruntime() {
    check_llvm(
        "mlp",
        MLP,
        "armv7-unknown-linux-gnueabihf",
        Some("qemu-arm"),
        1e-5,
        1e-4,
    );
}

#[test]
fn llvm_cnn_armv7_matches_onnxruntime() {
    check_llvm(
        "cnn",
        &[],
        "armv7-unknown-linux-gnueabihf",
        Some("qemu-arm"),
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_transformer_armv7_matches_onnxruntime() {
    check_llvm(
        "transformer",
        TRANSFORMER,
        "armv7-unknown-linux-gnueabihf",
        Some("qemu-arm"),
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_mlp_thumbv7em_firmware_matches_onnxruntime() {
    check_llvm(
        "mlp",
        MLP,
        "thumbv7em-none-eabihf",
        Some(FIRMWARE),
        1e-5,
        1e-4,
    );
}

#[test]
fn llvm_cnn_thumbv7em_firmware_matches_onnxruntime() {
    check_llvm(
        "cnn",
        &[],
        "thumbv7em-none-eabihf",
        Some(FIRMWARE),
        1e-4,
        1e-4,
    );
}

#[test]
fn llvm_transformer_thumbv7em_firmware_matches_onnxruntime() {
    check_llvm(
        "transformer",
        TRANSFORMER,
        "thumbv7em-none-eabihf",
        Some(FIRMWARE),
        1e-4,
        1e-4,
    );
}
