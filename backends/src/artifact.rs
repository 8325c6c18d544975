//! Artifacts: a relocatable object (+ the C header), or a static executable
//! linked from the model object and the runtime by `ld.lld`.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_ir::Graph;

use crate::lower::{LowerError, Lowered, lower};
use crate::target::Target;

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// A static executable taking `--input NAME=FILE.npy … [-o DIR] [--bench N]`.
    Exe,
    /// The model's relocatable object, with the header beside it.
    Obj,
}

/// Errors while producing an artifact.
#[derive(Debug)]
pub enum ArtifactError {
    /// The graph cannot be lowered (every unsupported node is listed).
    Lower(LowerError),
    /// Code generation failed.
    Codegen(String),
    /// No linker was found, or it failed.
    Link(String),
    /// Writing a file failed.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtifactError::Lower(e) => write!(f, "{e}"),
            ArtifactError::Codegen(e) => write!(f, "{e}"),
            ArtifactError::Link(e) => write!(f, "linking failed: {e}"),
            ArtifactError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for ArtifactError {}

/// What was produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Arena bytes the model needs.
    pub arena_bytes: u64,
    /// The liveness lower bound of activation memory.
    pub lower_bound: u64,
    /// Size of the model object.
    pub object_bytes: usize,
}

/// Finds `ld.lld`: the given path, else `ld.lld-19`/`ld.lld` on PATH, else the
/// `rust-lld` shipped with the Rust toolchain.
pub fn find_linker(explicit: Option<&Path>) -> Result<(PathBuf, Vec<String>), ArtifactError> {
    if let Some(p) = explicit {
        return Ok((p.to_path_buf(), vec![]));
    }
    for name in ["ld.lld-19", "ld.lld"] {
        if let Ok(out) = Command::new(name).arg("--version").output()
            && out.status.success()
        {
            return Ok((PathBuf::from(name), vec![]));
        }
    }
    if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() {
        let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let lld = Path::new(&sysroot).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
        if lld.exists() {
            return Ok((lld, vec!["-flavor".into(), "gnu".into()]));
        }
    }
    Err(ArtifactError::Link(
        "no ld.lld found: install lld-19 (scripts/setup does) or pass --linker PATH".into(),
    ))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    std::fs::write(path, bytes).map_err(|e| ArtifactError::Io(path.to_path_buf(), e))
}

/// Lowers and compiles `graph` for `target` and writes the artifact to `out`.
pub fn build(
    graph: &Graph,
    target: Target,
    emit: Emit,
    out: &Path,
    model_name: &str,
    linker: Option<&Path>,
) -> Result<Report, ArtifactError> {
    let mut lowered: Lowered = lower(graph).map_err(ArtifactError::Lower)?;
    crate::mathexp::expand(&mut lowered.program).map_err(|e| {
        ArtifactError::Lower(LowerError::Unsupported(vec![(
            "(math)".into(),
            "expansion".into(),
            e,
        )]))
    })?;
    let obj = crate::cranelift::compile(&lowered, target, model_name)
        .map_err(|e| ArtifactError::Codegen(e.to_string()))?;
    let mut report = Report {
        files: vec![],
        arena_bytes: lowered.plan.arena_bytes,
        lower_bound: lowered.plan.lower_bound,
        object_bytes: obj.len(),
    };
    match emit {
        Emit::Obj => {
            write(out, &obj)?;
            let header = out.with_extension("h");
            write(&header, smelt_runtime::HEADER.as_bytes())?;
            report.files = vec![out.to_path_buf(), header];
        }
        Emit::Exe => {
            // Link from a scratch folder beside the output, with fixed names,
            // so the executable is byte-identical for identical inputs.
            let dir = out.with_extension("smelt-link");
            std::fs::create_dir_all(&dir).map_err(|e| ArtifactError::Io(dir.clone(), e))?;
            let (model_o, rt_o) = (dir.join("model.o"), dir.join("runtime.o"));
            write(&model_o, &obj)?;
            write(&rt_o, smelt_runtime::runtime_object(target))?;
            let (ld, pre) = find_linker(linker)?;
            let status = Command::new(&ld)
                .args(&pre)
                .args([
                    "-static",
                    "-e",
                    "_start",
                    "--build-id=none",
                    "--no-undefined",
                    "-o",
                ])
                .arg(out)
                .arg(&model_o)
                .arg(&rt_o)
                .output()
                .map_err(|e| ArtifactError::Link(format!("{}: {e}", ld.display())))?;
            let _ = std::fs::remove_dir_all(&dir);
            if !status.status.success() {
                return Err(ArtifactError::Link(format!(
                    "{} exited with {}: {}",
                    ld.display(),
                    status.status,
                    String::from_utf8_lossy(&status.stderr).trim()
                )));
            }
            report.files = vec![out.to_path_buf()];
        }
    }
    Ok(report)
}
