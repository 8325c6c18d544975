//! Compiles a model to a native executable from a Rust program, through
//! smelt's library API: `smelt::frontend::load` reads the model (the format
//! is picked by content), `smelt::CompileOptions` resolves the target once,
//! and `smelt::compile` optimizes, lowers, generates code and links.
//!
//! ```text
//! cargo run --example compile_model [MODEL.onnx] [OUT_DIR]
//! ```
//!
//! Without arguments it compiles `examples/mlp/model.onnx` for x86_64 with
//! Cranelift into a fresh temporary folder and, on an x86_64 Linux host,
//! runs the executable on `examples/mlp/input.npz`.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt::{Backend, CompileOptions, ImportOptions};

/// Compiles `model` into the executable `out_dir/model` for x86_64 with
/// Cranelift at the default opt level, its symbolic `batch` dim pinned to 2
/// (the batch of `examples/mlp/input.npz`), and returns what was built.
pub fn compile_model(model: &Path, out_dir: &Path) -> Result<smelt::Artifact, smelt::Error> {
    let graph = smelt::frontend::load(model, &ImportOptions::default().dim("batch", 2))?;
    let opts = CompileOptions::new("x86_64", Backend::Cranelift, out_dir.join("model"))?
        .model_name("mlp")
        .threads(1);
    smelt::compile(&graph, &opts)
}

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut args = std::env::args_os().skip(1);
    let model = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| examples.join("mlp/model.onnx"));
    let out_dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("smelt-compile-model-{}", std::process::id()))
    });
    std::fs::create_dir_all(&out_dir)?;
    let artifact = compile_model(&model, &out_dir)?;
    for f in &artifact.files {
        println!("wrote {}", f.display());
    }
    println!(
        "arena {} bytes (liveness bound {}), weights {} bytes, object {} bytes",
        artifact.arena_bytes, artifact.lower_bound, artifact.weights_bytes, artifact.object_bytes
    );
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        let out = Command::new(out_dir.join("model"))
            .arg("--input")
            .arg(examples.join("mlp/input.npz"))
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            return Err(format!(
                "the executable failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    Ok(())
}
