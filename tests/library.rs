//! The library API end to end: `examples/compile_model.rs`'s own function
//! compiles the MLP example from a program, and the executable it writes
//! runs and matches onnxruntime's outputs.

#[path = "common/targets.rs"]
mod targets;

#[allow(dead_code)]
#[path = "../examples/compile_model.rs"]
mod compile_model;

#[test]
fn the_example_compiles_a_model_that_runs() {
    let examples = targets::root().join("examples/mlp");
    let dir = std::env::temp_dir().join(format!("smelt-library-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = compile_model::compile_model(&examples.join("model.onnx"), &dir).unwrap();
    let exe = dir.join("model");
    assert_eq!(artifact.files, vec![exe.clone()]);
    assert!(artifact.object_bytes > 0 && artifact.weights_bytes > 0);
    assert!(!artifact.optimizer.is_empty(), "the default opt level runs");
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return;
    }
    let out_dir = dir.join("out");
    let out = targets::run_model(&exe, None, &examples.join("input.npz"), &out_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = examples.join("expected.npz");
    targets::check_npy_outputs(&expected, &out_dir, 1e-4, 1e-4, "mlp");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A target the runtime has no build for is refused when the options are
/// made, never compiled as x86_64.
#[test]
fn unknown_targets_are_refused() {
    let e = smelt::CompileOptions::new("riscv64", smelt::Backend::Cranelift, "out")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no build for target 'riscv64'"), "{e}");
}
