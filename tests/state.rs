//! Persistent state end to end, on the stateful toy model
//! `tests/state/accumulator.onnx` (`y = s + x` over f32[4], written by
//! `tests/state/make_accumulator.py`) with `--state s=y`: after N steps
//! `y = N·x`.
//!
//! - the interpreter: `smelt run --steps 3` gives 3·x;
//! - executables: compiled for every target and backend (Cranelift on
//!   x86_64 and aarch64; LLVM on x86_64, aarch64, armv7 and the Cortex-M4F
//!   firmware), run with `--steps 3` (foreign ones under QEMU), give 3·x;
//! - static libraries: a C program (`tests/state/two_states.c`) holds two
//!   independent states of one model, initialises both, interleaves their
//!   calls and checks each against its own step count, on x86_64, aarch64
//!   and armv7 (under QEMU);
//! - bad `--state` pairs are refused with a message naming both values.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, write_npy};
use smelt_ir::Tensor;

#[path = "common/targets.rs"]
mod targets;
use targets::{have, have_all, ok, root, runner_cmd, smelt};

const X: [f32; 4] = [1.0, 2.0, -0.5, 0.25];
const STEPS: usize = 3;

fn model() -> PathBuf {
    root().join("tests/state/accumulator.onnx")
}

/// A fresh folder for one check.
fn scratch(tag: &str) -> PathBuf {
    targets::scratch("state", tag)
}

/// Writes `dir/x.npy`.
fn write_x(dir: &Path) {
    let x = Tensor::from_vec(vec![4], X.to_vec()).unwrap();
    write_npy(&dir.join("x.npy"), &x).unwrap();
}

/// Checks `dir/y.npy` is `STEPS`·x.
fn check_y(dir: &Path, what: &str) {
    let y = read_npy(&dir.join("y.npy"), &Limits::default()).unwrap();
    assert_eq!(y.shape(), &[4], "{what}");
    let want: Vec<f64> = X.iter().map(|&v| (STEPS as f32 * v) as f64).collect();
    assert_eq!(y.to_f64_vec(), want, "{what}");
}

#[test]
fn the_interpreter_runs_steps() {
    let dir = scratch("interp");
    write_x(&dir);
    let (m, x, out) = (model(), dir.join("x.npy"), dir.join("out"));
    let steps = STEPS.to_string();
    let x_arg = format!("x={}", x.display());
    let run = |steps: &[&str], what: &str| {
        let mut args = vec![
            "run",
            m.to_str().unwrap(),
            "--state",
            "s=y",
            "--input",
            &x_arg,
        ];
        args.extend_from_slice(steps);
        args.extend(["-o", out.to_str().unwrap()]);
        ok(smelt(&args), what)
    };
    run(&["--steps", &steps], "smelt run --steps 3");
    check_y(&out, "smelt run");
    // One step (the default) is one addition to the zero state.
    run(&[], "smelt run");
    let y = read_npy(&out.join("y.npy"), &Limits::default()).unwrap();
    assert_eq!(y, Tensor::from_vec(vec![4], X.to_vec()).unwrap());
    // The state shows in the IR.
    let o = ok(
        smelt(&[
            "inspect",
            m.to_str().unwrap(),
            "--state",
            "s=y",
            "--print-ir",
        ]),
        "smelt inspect",
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("  state %s: f32[4] <- %y\n"), "{text}");
    assert!(text.contains("  state  s: f32[4] <- y\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_state_pairs_are_refused_naming_both_values() {
    let m = model();
    let m = m.to_str().unwrap();
    for (pair, want) in [
        ("t=y", "--state t=y: 't' is not a graph input"),
        ("s=z", "--state s=z: the graph has no value 'z'"),
        ("s", "--state takes NAME=VALUE, got 's'"),
    ] {
        let o = smelt(&["inspect", m, "--state", pair]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{pair}: {err}");
    }
    // A type mismatch: the MLP's input and output differ in shape.
    let mlp = root().join("examples/mlp/model.onnx");
    let o = smelt(&[
        "inspect",
        mlp.to_str().unwrap(),
        "--dim",
        "batch=2",
        "--state",
        "x=probs",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("--state x=probs: input 'x' is f32[2,64] but 'probs' is f32[2,10]"),
        "{err}"
    );
}

/// `smelt compile` of the accumulator (`--state s=y`) for `target` with
/// `backend` and `extra` options to `out`; `what` names the options in the
/// failure message.
fn compile_acc(target: &str, backend: &str, extra: &[&str], out: &Path, what: &str) {
    let m = model();
    let mut args = targets::compile_args(&m, target, backend);
    args.extend(["--state", "s=y"]);
    args.extend_from_slice(extra);
    args.extend(["-o", out.to_str().unwrap()]);
    ok(
        smelt(&args),
        &format!("smelt compile {what}for {target} ({backend})"),
    );
}

/// Compiles the accumulator into an executable for `target` with
/// `backend`, runs it `STEPS` steps (under `runner`) and checks `y`.
fn check_exe(backend: &str, target: &str, runner: Option<&str>) {
    let dir = scratch(&format!("exe-{target}-{backend}"));
    let exe = dir.join("acc");
    compile_acc(target, backend, &[], &exe, "");
    write_x(&dir);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let args = format!("--input x=x.npy --steps {STEPS} -o out");
    let out = targets::run_in(&exe, runner, &dir, &args);
    let what = format!("the accumulator on {target} ({backend})");
    ok(out, &what);
    check_y(&dir.join("out"), &what);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn executables_carry_state_across_steps_on_every_target_and_backend() {
    check_exe("cranelift", "x86_64-unknown-linux-gnu", None);
    check_exe("llvm", "x86_64-unknown-linux-gnu", None);
    if have("qemu-aarch64", "the aarch64 state test") {
        check_exe(
            "cranelift",
            "aarch64-unknown-linux-gnu",
            Some("qemu-aarch64"),
        );
        check_exe("llvm", "aarch64-unknown-linux-gnu", Some("qemu-aarch64"));
    }
    if have("qemu-arm", "the armv7 state test") {
        check_exe("llvm", "armv7-unknown-linux-gnueabihf", Some("qemu-arm"));
    }
    if have("qemu-system-arm", "the Cortex-M state test") {
        check_exe("llvm", "thumbv7em-none-eabihf", Some("firmware"));
    }
}

/// Compiles the accumulator into `libacc.a` + `acc.h` for `target` with
/// `backend`, builds `two_states.c` against it with `cc` and runs it (under
/// `runner`).
fn check_two_states(backend: &str, target: &str, cc: &str, runner: &[&str]) {
    let dir = scratch(&format!("lib-{target}-{backend}"));
    let lib = dir.join("libacc.a");
    compile_acc(
        target,
        backend,
        &["--emit", "staticlib"],
        &lib,
        "--emit staticlib ",
    );
    let header = std::fs::read_to_string(dir.join("acc.h")).unwrap();
    assert!(header.contains("void acc_init(void *state);"), "{header}");
    let app = dir.join("two_states");
    ok(
        Command::new(cc)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static"])
            .arg("-I")
            .arg(&dir)
            .arg(root().join("tests/state/two_states.c"))
            .arg("-L")
            .arg(&dir)
            .arg("-lacc")
            .arg("-o")
            .arg(&app)
            .output()
            .expect("cc runs"),
        &format!("{cc} two_states.c -lacc"),
    );
    let o = ok(
        runner_cmd(runner, &app).output().expect("runs"),
        &format!("two_states on {target} ({backend})"),
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_c_program_holds_two_independent_states() {
    if have("cc", "the x86_64 two-states test") {
        check_two_states("cranelift", "x86_64-unknown-linux-gnu", "cc", &[]);
        check_two_states("llvm", "x86_64-unknown-linux-gnu", "cc", &[]);
    }
    let cc = "aarch64-linux-gnu-gcc";
    if have_all(&[cc, "qemu-aarch64"], "the aarch64 two-states test") {
        check_two_states(
            "cranelift",
            "aarch64-unknown-linux-gnu",
            cc,
            &["qemu-aarch64"],
        );
        check_two_states("llvm", "aarch64-unknown-linux-gnu", cc, &["qemu-aarch64"]);
    }
    let cc = "arm-linux-gnueabihf-gcc";
    if have_all(&[cc, "qemu-arm"], "the armv7 two-states test") {
        check_two_states("llvm", "armv7-unknown-linux-gnueabihf", cc, &["qemu-arm"]);
    }
}
