//! The native memory plan against its liveness lower bound: on the example
//! models and on the benchmark models `bench/make_models.py` generates (the
//! ones that take a few seconds), the planned arena is within 5 % of the
//! largest total of arena storages live at one node, never worse than
//! largest-first greedy, and identical across two plans. A model built to
//! hit every aliasing case (`tests/memory_plan/aliasing_model.py`) runs
//! natively on x86_64 and aarch64, with Cranelift and with LLVM, and matches
//! onnxruntime.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use smelt_backends::plan::plan;
use smelt_frontend::onnx::{ImportOptions, OnnxModel};

#[path = "common/targets.rs"]
mod targets;
use targets::{root, run_ok, runner_cmd, venv_python as python};

/// Plans `model` with the symbolic dims `dims` and checks it; returns the report line.
fn check(model: &Path, dims: &[(&str, usize)]) -> String {
    let opts = ImportOptions {
        dims: dims
            .iter()
            .map(|&(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
        ..ImportOptions::default()
    };
    let g = OnnxModel::read(model, &opts.limits)
        .and_then(|m| m.import(&opts))
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let p = plan(&g);
    let name = model.display();
    assert!(p.arena_bytes >= p.lower_bound, "{name}: below the bound");
    assert!(
        p.arena_bytes as f64 <= 1.05 * p.lower_bound as f64,
        "{name}: arena {} is more than 5% over the bound {}",
        p.arena_bytes,
        p.lower_bound
    );
    assert!(p.arena_bytes <= p.greedy_bytes, "{name}: worse than greedy");
    assert_eq!(p, plan(&g), "{name}: two plans differ");
    let line = format!(
        "{name}: bound {} planned {} greedy {} first-fit {}; views removed {} B of copies, {} in place",
        p.lower_bound,
        p.arena_bytes,
        p.greedy_bytes,
        p.first_fit_bytes,
        p.copy_bytes_removed,
        p.in_place
    );
    eprintln!("{line}");
    line
}

#[test]
fn example_arenas_are_within_5_percent_of_the_bound() {
    let ex = root().join("examples");
    check(&ex.join("mlp/model.onnx"), &[("batch", 2)]);
    check(&ex.join("cnn/model.onnx"), &[]);
    check(
        &ex.join("transformer/model.onnx"),
        &[("batch", 1), ("seq", 16)],
    );
}

#[test]
fn bench_model_arenas_are_within_5_percent_of_the_bound() {
    let Some(python) = python("the bench models") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("smelt-memory-plan-{}", std::process::id()));
    // The models that generate in seconds (gpt2_decode takes far longer).
    let models = ["mlp", "mobilenetv2", "resnet18", "encoder"];
    run_ok(
        Command::new(&python)
            .arg(root().join("bench/make_models.py"))
            .arg(&dir)
            .arg("--models")
            .args(models),
        "bench/make_models.py",
    );
    for m in models {
        check(&dir.join(format!("{m}.onnx")), &[]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn aliasing_cases_run_natively_and_match_onnxruntime() {
    let Some(python) = python("the aliasing model") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("smelt-aliasing-{}", std::process::id()));
    run_ok(
        Command::new(&python)
            .arg(root().join("tests/memory_plan/aliasing_model.py"))
            .arg(&dir),
        "aliasing_model.py",
    );
    let model = dir.join("model.onnx");
    // The plan really aliases: views of the input, of a computed value and of
    // a constant; element-wise ops in place.
    let opts = ImportOptions::default();
    let g = OnnxModel::read(&model, &opts.limits)
        .and_then(|m| m.import(&opts))
        .unwrap();
    let p = plan(&g);
    assert!(p.copy_bytes_removed >= 7 * 24, "views: {p:?}");
    assert!(p.in_place >= 4, "in place: {p:?}");
    let qemu = Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_ok();
    for (target, runner) in [
        ("x86_64-unknown-linux-gnu", None),
        ("aarch64-unknown-linux-gnu", Some("qemu-aarch64")),
    ] {
        if runner.is_some() && !qemu {
            eprintln!("skipping {target}: qemu-aarch64 is not installed");
            continue;
        }
        for backend in ["cranelift", "llvm"] {
            let exe = dir.join(format!("m-{target}-{backend}"));
            run_ok(
                Command::new(env!("CARGO_BIN_EXE_smelt"))
                    .arg("compile")
                    .arg(&model)
                    .args(["--target", target, "--backend", backend, "-o"])
                    .arg(&exe),
                &format!("smelt compile for {target}"),
            );
            let out = dir.join(format!("out-{target}-{backend}"));
            run_ok(
                runner_cmd(runner.as_slice(), &exe)
                    .arg("--input")
                    .arg(dir.join("input.npz"))
                    .arg("-o")
                    .arg(&out),
                &format!("the aliasing model on {target}"),
            );
            let what = format!("{target} ({backend})");
            targets::check_npy_outputs(&dir.join("expected.npz"), &out, 1e-6, 1e-5, &what);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
