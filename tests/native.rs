//! Native executables end to end: the example models compiled by the
//! Cranelift and the LLVM backend for x86_64 (run here) and aarch64 (run
//! under `qemu-aarch64`), and by the LLVM backend for armv7 (under
//! `qemu-arm`) and the Cortex-M4F (firmware under `qemu-system-arm`), match
//! onnxruntime's outputs; compiling twice gives byte-identical artifacts.

use std::path::PathBuf;
use std::process::Command;

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

/// An example model, the dims it is compiled with and how close its outputs
/// must come to onnxruntime's (`|a - b| <= atol + rtol * |b|`).
struct Example {
    name: &'static str,
    pins: &'static [&'static str],
    atol: f64,
    rtol: f64,
}

/// An [`Example`] checked within `atol` and a relative 1e-4.
const fn example(name: &'static str, pins: &'static [&'static str], atol: f64) -> Example {
    Example {
        name,
        pins,
        atol,
        rtol: 1e-4,
    }
}

/// The MLP example, batch pinned to 2.
const MLP: Example = example("mlp", &["--dim", "batch=2"], 1e-5);
/// The CNN example.
const CNN: Example = example("cnn", &[], 1e-4);
/// The transformer example, batch 1 and 16 tokens.
const TRANSFORMER: Example = example(
    "transformer",
    &["--dim", "batch=1", "--dim", "seq=16"],
    1e-4,
);

const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const ARMV7: &str = "armv7-unknown-linux-gnueabihf";
const THUMBV7EM: &str = "thumbv7em-none-eabihf";

/// Compiles an example for a target with a backend (and `extra` options),
/// runs it and compares with onnxruntime.
fn check_with(backend: &str, ex: &Example, extra: &[&str], target: &str, runner: Option<&str>) {
    let Example {
        name: example,
        pins,
        atol,
        rtol,
    } = *ex;
    let dir = root().join("examples").join(example);
    let work = scratch(&format!("{example}-{target}-{backend}"));
    let exe = work.join("model");
    let model = dir.join("model.onnx");
    let mut args = targets::compile_args(&model, target, backend);
    args.extend(["-o", exe.to_str().unwrap()]);
    args.extend_from_slice(pins);
    args.extend_from_slice(extra);
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
    let what = format!("{example} on {target} ({backend})");
    let expected = dir.join("expected.npz");
    for (name, worst) in targets::check_npy_outputs(&expected, &out_dir, atol, rtol, &what) {
        eprintln!(
            "{example}/{name} on {target} ({backend}): max abs err vs onnxruntime {worst:.2e}"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The runner name [`check_with`] takes for Cortex-M firmware
/// (`qemu-system-arm -M mps2-an386` with semihosting).
const FIRMWARE: &str = "firmware";

/// [`check_with`] for the Cranelift backend.
fn check(ex: &Example, target: &str, runner: Option<&str>) {
    check_with("cranelift", ex, &[], target, runner);
}

/// [`check_with`] for the LLVM backend.
fn check_llvm(ex: &Example, target: &str, runner: Option<&str>) {
    check_with("llvm", ex, &[], target, runner);
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
        for ex in [&MLP, &CNN, &TRANSFORMER] {
            check_with("llvm", ex, &["--features", features], X86_64, None);
        }
    }
}

/// One `#[test]` per run: `name: check(example, target, runner);`.
macro_rules! runs {
    ($($name:ident: $check:ident($ex:ident, $target:ident, $runner:expr);)*) => {
        $(
            #[test]
            fn $name() {
                $check(&$ex, $target, $runner);
            }
        )*
    };
}

#[rustfmt::skip]
runs! {
    mlp_x86_64_matches_onnxruntime: check(MLP, X86_64, None);
    mlp_aarch64_matches_onnxruntime: check(MLP, AARCH64, Some("qemu-aarch64"));
    cnn_x86_64_matches_onnxruntime: check(CNN, X86_64, None);
    cnn_aarch64_matches_onnxruntime: check(CNN, AARCH64, Some("qemu-aarch64"));
    transformer_x86_64_matches_onnxruntime: check(TRANSFORMER, X86_64, None);
    transformer_aarch64_matches_onnxruntime: check(TRANSFORMER, AARCH64, Some("qemu-aarch64"));
    llvm_mlp_x86_64_matches_onnxruntime: check_llvm(MLP, X86_64, None);
    llvm_mlp_aarch64_matches_onnxruntime: check_llvm(MLP, AARCH64, Some("qemu-aarch64"));
    llvm_cnn_x86_64_matches_onnxruntime: check_llvm(CNN, X86_64, None);
    llvm_cnn_aarch64_matches_onnxruntime: check_llvm(CNN, AARCH64, Some("qemu-aarch64"));
    llvm_transformer_x86_64_matches_onnxruntime: check_llvm(TRANSFORMER, X86_64, None);
    llvm_transformer_aarch64_matches_onnxruntime: check_llvm(TRANSFORMER, AARCH64, Some("qemu-aarch64"));
    llvm_mlp_armv7_matches_onnxruntime: check_llvm(MLP, ARMV7, Some("qemu-arm"));
    llvm_cnn_armv7_matches_onnxruntime: check_llvm(CNN, ARMV7, Some("qemu-arm"));
    llvm_transformer_armv7_matches_onnxruntime: check_llvm(TRANSFORMER, ARMV7, Some("qemu-arm"));
    llvm_mlp_thumbv7em_firmware_matches_onnxruntime: check_llvm(MLP, THUMBV7EM, Some(FIRMWARE));
    llvm_cnn_thumbv7em_firmware_matches_onnxruntime: check_llvm(CNN, THUMBV7EM, Some(FIRMWARE));
    llvm_transformer_thumbv7em_firmware_matches_onnxruntime: check_llvm(TRANSFORMER, THUMBV7EM, Some(FIRMWARE));
}

#[test]
fn artifacts_are_byte_identical() {
    let model = root().join("examples/mlp/model.onnx");
    let work = scratch("repro");
    for backend in ["cranelift", "llvm"] {
        for (emit, ext) in [("exe", ""), ("obj", ".o")] {
            let targets: &[&str] = match backend {
                "llvm" => &[X86_64, AARCH64, ARMV7, THUMBV7EM],
                _ => &[X86_64, AARCH64],
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
    assert!(ir.contains(" i32 @smelt_model_run("));
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

/// An output named past the runtime's 4096-byte path buffer is refused with
/// a clear error; it once lost the start of its path, so a name ending in
/// `victim` overwrote `./victim.npy` beside the program (Linux) and in
/// QEMU's folder (firmware).
#[test]
fn long_output_names_never_leave_the_output_directory() {
    let name = format!("{}victim", "A".repeat(4086));
    let text = format!("graph(%x: f32[2]) -> (%{name}) {{\n  %{name}: f32[2] = Relu(%x)\n}}\n");
    let graph = smelt_ir::parse(&text).expect("the graph parses");
    let x = smelt_ir::Tensor::from_vec(vec![2], vec![-1.0f32, 2.0]).unwrap();
    for (target, firmware) in [("x86_64", false), ("thumbv7em-none-eabihf", true)] {
        if firmware && !targets::have("qemu-system-arm", "the firmware case") {
            continue;
        }
        let dir = scratch(&format!("long-name-{target}"));
        let exe = dir.join("model");
        let backend = if firmware {
            smelt::Backend::Llvm(Default::default())
        } else {
            smelt::Backend::Cranelift
        };
        let opts = smelt::CompileOptions::new(target, backend, &exe).unwrap();
        smelt::compile(&graph, &opts).expect("compiles");
        smelt_frontend::npy::write_npy(&dir.join("x.npy"), &x).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let args = ["--input", "x=x.npy", "-o", "out"];
        let out = if firmware {
            targets::firmware_cmd(&exe, &dir)
                .arg("-append")
                .arg(args.join(" "))
                .output()
                .unwrap()
        } else {
            Command::new(&exe)
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap()
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{target}: {stderr}");
        assert!(
            stderr.contains("' is longer than 4096 bytes"),
            "{target}: {stderr}"
        );
        for stray in ["victim.npy", "out/victim.npy", ".npy"] {
            assert!(!dir.join(stray).exists(), "{target}: wrote {stray}");
        }
    }
}
