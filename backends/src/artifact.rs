//! Artifacts: a relocatable object (+ the model's C header), a static
//! library (+ the header), or a static executable linked from the model
//! object and the runtime by `ld.lld` — for a bare-metal target a firmware
//! image laid out by a generated linker script ([`firmware`]).
//!
//! A static library `libNAME.a` holds the model object `NAME.o` and the
//! runtime's libcalls-only object `libcalls.o` (weak, hidden `memcpy` and
//! friends, no entry point), so a C program links it with its own C library
//! without clashes; `NAME.h` beside it is [`header::render`]'s. Both are
//! byte-identical for identical inputs: the archive members carry no
//! timestamps, owners or modes of the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_ir::Graph;
use smelt_runtime::firmware::MemoryMap;

pub use crate::abi::ModelSymbols;
/// The backends' error ([`crate::Error`]), under the name this module has
/// always used.
pub use crate::error::Error as ArtifactError;
use crate::llvm::{LlvmOptions, LlvmTarget, Output};
use crate::lower::{Lowered, Schedule};
use crate::target::{Target, TargetSpec};

pub mod chat;
pub mod firmware;
pub mod header;
pub mod llm_header;

/// Whether `s` is a C identifier (ASCII letters, digits and `_`, not
/// starting with a digit).
pub fn is_c_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `s` made a C identifier: other characters become `_`, and `model_` goes
/// in front of an empty name or one starting with a digit (`my-net.v2` →
/// `my_net_v2`, `2net` → `model_2net`).
pub fn c_identifier(s: &str) -> String {
    let id: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        format!("model_{id}")
    } else {
        id
    }
}

/// The symbol prefix of a library or object written to `out`: `name` when
/// given, else `NAME` of `libNAME.a` (static libraries) or the file stem
/// (objects, assembly, LLVM IR), made a C identifier.
pub fn symbol_prefix(emit: Emit, out: &Path, name: Option<&str>) -> Result<String, ArtifactError> {
    if let Some(n) = name {
        if !is_c_identifier(n) {
            return Err(ArtifactError::Name(n.to_string()));
        }
        return Ok(n.to_string());
    }
    let base = match emit {
        Emit::Staticlib => staticlib_name(out),
        Emit::Obj | Emit::Exe | Emit::Asm | Emit::LlvmIr => out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok(c_identifier(&base))
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// A static executable taking `--input NAME=FILE.npy … [-o DIR] [--bench N]`.
    Exe,
    /// The model's relocatable object, with the header beside it.
    Obj,
    /// A static library `libNAME.a` (the model and the libcalls), with the
    /// header `NAME.h` beside it.
    Staticlib,
    /// The model's assembly text (LLVM backend only).
    Asm,
    /// The model's optimized LLVM IR text (LLVM backend only).
    LlvmIr,
}

/// The code generator and its options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Cranelift: fast compiles, scalar code.
    #[default]
    Cranelift,
    /// LLVM: optimized (vectorized) code, a CPU and features to tune for.
    Llvm(LlvmConfig),
}

/// What the LLVM backend is told besides the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LlvmConfig {
    /// The CPU (`--cpu`; `native` for the host's); none: the target's baseline.
    pub cpu: Option<String>,
    /// Extra LLVM features (`--features +a,-b`).
    pub features: Option<String>,
    /// Optimization options.
    pub options: LlvmOptions,
}

impl Backend {
    /// The name the CLI uses.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cranelift => "cranelift",
            Backend::Llvm(_) => "llvm",
        }
    }
}

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
    /// Flash and RAM use of a firmware image (bare-metal executables).
    pub firmware: Option<firmware::Usage>,
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

/// The library name of a static library path: `NAME` of `DIR/libNAME.a`
/// (without `lib` or `.a` when the file name lacks them).
pub fn staticlib_name(out: &Path) -> String {
    let file = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = file.strip_suffix(".a").unwrap_or(&file);
    let name = file.strip_prefix("lib").unwrap_or(file);
    if name.is_empty() {
        "model".into()
    } else {
        name.into()
    }
}

/// The arena size and alignment code generators store in `smelt_model`.
fn model_arena(l: &Lowered) -> (u64, u64) {
    (
        l.plan.arena_bytes.max(crate::plan::ALIGN),
        crate::plan::ALIGN,
    )
}

/// The heap a firmware image needs for one run of the model: its inputs,
/// outputs, arena and state buffer (with its alignment slack), as the
/// bare-metal runtime allocates them.
pub fn firmware_heap(l: &Lowered) -> u64 {
    let (arena_bytes, arena_align) = model_arena(l);
    let state = match l.plan.state_bytes {
        0 => 0,
        b => b + crate::plan::ALIGN,
    };
    smelt_runtime::firmware::heap_need(
        l.inputs.iter().chain(&l.outputs).map(|io| io.bytes),
        arena_bytes,
        arena_align,
    ) + state
}

/// The header of the model whose symbols are prefixed `name`.
fn model_header(l: &Lowered, target: Target, name: &str) -> String {
    let (arena_bytes, arena_align) = model_arena(l);
    header::render(&header::HeaderModel {
        name,
        triple: target.triple(),
        inputs: &l.inputs,
        outputs: &l.outputs,
        arena_bytes,
        arena_align,
        state_bytes: l.plan.state_bytes,
        state_align: crate::plan::ALIGN,
        threads: l.program.threads.max(1),
        checks: l.program.checks.len(),
        unchecked: l.program.unchecked,
    })
}

/// A GNU `ar` archive with a symbol index of `members` (name, bytes), in
/// order. Every member gets mtime, uid and gid 0 and mode 0644, so the bytes
/// depend on the members only.
pub fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
    use ar_archive_writer::{ArchiveKind, DEFAULT_OBJECT_READER, NewArchiveMember};
    let members: Vec<NewArchiveMember<'_>> = members
        .iter()
        .map(|(name, bytes)| {
            let mut m = NewArchiveMember::new(*bytes, &DEFAULT_OBJECT_READER, name.to_string());
            (m.mtime, m.uid, m.gid, m.perms) = (0, 0, 0, 0o644);
            m
        })
        .collect();
    let mut out = std::io::Cursor::new(Vec::new());
    ar_archive_writer::write_archive_to_stream(&mut out, &members, ArchiveKind::Gnu, false, None)
        .expect("writing to memory does not fail");
    out.into_inner()
}

/// Lowers `graph` to kernel IR as `schedule` says, with the math functions
/// expanded: what every code generator takes.
pub fn lower_for_codegen(graph: &Graph, schedule: &Schedule) -> Result<Lowered, ArtifactError> {
    crate::pipeline::run(
        graph,
        schedule,
        &crate::pipeline::PipelineOptions::default(),
    )
    .map_err(ArtifactError::Lower)
}

/// The LLVM target for `target` and the backend's options.
pub fn llvm_target(target: Target, config: &LlvmConfig) -> Result<LlvmTarget, ArtifactError> {
    LlvmTarget::new(
        target.triple(),
        config.cpu.as_deref(),
        config.features.as_deref(),
    )
    // The message names the flag; "code generation failed" would mislead.
    .map_err(|e| ArtifactError::Target(e.0))
}

/// What [`build`] makes besides the graph, target, code generator and output
/// path. [`BuildOptions::new`] gives the defaults: no symbol prefix, the
/// linker found by [`find_linker`], the default memory map, one thread.
#[derive(Clone, Debug)]
pub struct BuildOptions<'a> {
    /// The artifact kind.
    pub emit: Emit,
    /// The model's name, recorded in its table for messages.
    pub model_name: &'a str,
    /// The symbol prefix of a library or object ([`symbol_prefix`];
    /// executables use the runtime's fixed names).
    pub name: Option<&'a str>,
    /// The linker to use instead of the one [`find_linker`] finds.
    pub linker: Option<&'a Path>,
    /// The memory map bare-metal firmware is linked for (`--memory`; Linux
    /// targets ignore it).
    pub memory: MemoryMap,
    /// The threads the hot loops run on (`--threads`; see
    /// [`check_threads`]).
    pub threads: u32,
    /// The least work per thread of a parallel loop (0:
    /// [`crate::kernel::MIN_PARALLEL_WORK`]; tests pass 1 to run even tiny
    /// models' loops in parallel).
    pub min_work: u64,
    /// Make no run-time checks (`--unchecked`; see [`Schedule::unchecked`]).
    pub unchecked: bool,
}

impl<'a> BuildOptions<'a> {
    /// An `emit` artifact of the model `model_name`, with the defaults.
    pub fn new(emit: Emit, model_name: &'a str) -> Self {
        BuildOptions {
            emit,
            model_name,
            name: None,
            linker: None,
            memory: MemoryMap::default(),
            threads: 1,
            min_work: 0,
            unchecked: false,
        }
    }
}

/// The most threads `--threads` accepts.
pub const MAX_THREADS: u32 = 64;

/// Checks a thread count for `target`: 1 to [`MAX_THREADS`], and 1 on bare
/// metal, which has one core and no threads.
pub fn check_threads(target: Target, threads: u32) -> Result<(), ArtifactError> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(ArtifactError::Options(format!(
            "--threads {threads} is out of range; use 1 to {MAX_THREADS}"
        )));
    }
    if threads > 1 && target.is_bare_metal() {
        return Err(ArtifactError::Options(format!(
            "--threads {threads}: {target} is bare metal with one core and no threads; use --threads 1"
        )));
    }
    Ok(())
}

/// Lowers and compiles `graph` for `target` with `backend` and writes the
/// artifact `opts` asks for to `out`: [`build_for`] with the target resolved
/// for the backend ([`TargetSpec::new`]) and `opts.memory` as its memory map.
pub fn build(
    graph: &Graph,
    target: Target,
    backend: &Backend,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Report, ArtifactError> {
    let spec = TargetSpec::new(target, backend)?.with_memory(opts.memory);
    build_for(graph, &spec, backend, out, opts)
}

/// Lowers and compiles `graph` for the resolved target `spec` with
/// `backend` and writes the artifact `opts` asks for to `out`. With more
/// than one thread the hot loops run on the runtime's thread pool (Linux
/// targets only). The schedules take the spec's vector shape, the LLVM
/// backend its CPU and features, firmware its memory map (`opts.memory` is
/// not read here).
pub fn build_for(
    graph: &Graph,
    spec: &TargetSpec,
    backend: &Backend,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Report, ArtifactError> {
    let BuildOptions {
        emit,
        model_name,
        name,
        linker,
        memory: _,
        threads,
        min_work,
        unchecked,
    } = *opts;
    let target = spec.target;
    let memory = &spec.memory;
    check_threads(target, threads)?;
    let prefix = symbol_prefix(emit, out, name)?;
    // Assembly and LLVM IR text show the code an executable links.
    let symbols = match emit {
        Emit::Exe | Emit::Asm | Emit::LlvmIr => ModelSymbols::runtime(),
        Emit::Obj | Emit::Staticlib => ModelSymbols::prefixed(&prefix),
    };
    // The schedules follow the code generator's vector unit, resolved once
    // in the spec (so `--cpu` and `--features` reach them).
    let schedule = Schedule {
        shape: spec.vector,
        threads,
        min_work,
        unchecked,
    };
    let lowered = lower_for_codegen(graph, &schedule)?;
    let obj = codegen(&lowered, spec, backend, emit, model_name, &symbols)?;
    let mut report = Report {
        files: vec![],
        arena_bytes: lowered.plan.arena_bytes,
        lower_bound: lowered.plan.lower_bound,
        object_bytes: obj.len(),
        firmware: None,
    };
    match emit {
        Emit::Asm | Emit::LlvmIr => {
            write(out, &obj)?;
            report.files = vec![out.to_path_buf()];
        }
        Emit::Obj => {
            write(out, &obj)?;
            let header = out.with_extension("h");
            write(&header, model_header(&lowered, target, &prefix).as_bytes())?;
            report.files = vec![out.to_path_buf(), header];
        }
        Emit::Staticlib => {
            let name = staticlib_name(out);
            let member = format!("{name}.o");
            let lib = archive(&[
                (&member, &obj),
                ("libcalls.o", smelt_runtime::libcalls_object(target)),
            ]);
            write(out, &lib)?;
            let header = out.with_file_name(format!("{name}.h"));
            write(&header, model_header(&lowered, target, &prefix).as_bytes())?;
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
            if target.is_bare_metal() {
                let heap = firmware_heap(&lowered);
                let usage =
                    firmware::link(&ld, &pre, &[&model_o, &rt_o], out, &dir, memory, heap, &[]);
                let _ = std::fs::remove_dir_all(&dir);
                report.firmware = Some(usage?);
                report.files = vec![out.to_path_buf()];
                return Ok(report);
            }
            let linked = link_linux(&ld, &pre, &[&model_o, &rt_o], out, &[]);
            let _ = std::fs::remove_dir_all(&dir);
            linked?;
            report.files = vec![out.to_path_buf()];
        }
    }
    Ok(report)
}

/// Kernel IR to the bytes `emit` asks for (an object, or assembly or LLVM IR
/// text) with `backend`, exporting `symbols`.
pub(crate) fn codegen(
    lowered: &Lowered,
    spec: &TargetSpec,
    backend: &Backend,
    emit: Emit,
    model_name: &str,
    symbols: &ModelSymbols,
) -> Result<Vec<u8>, ArtifactError> {
    let codegen = ArtifactError::from;
    Ok(match (backend, emit) {
        (Backend::Cranelift, Emit::Asm | Emit::LlvmIr) => {
            return Err(ArtifactError::Options(format!(
                "--emit {} needs --backend llvm",
                if emit == Emit::Asm { "asm" } else { "llvm-ir" }
            )));
        }
        (Backend::Cranelift, _) => {
            crate::cranelift::compile(lowered, spec.target, model_name, symbols).map_err(codegen)?
        }
        (Backend::Llvm(c), _) => {
            let kind = match emit {
                Emit::Asm => Output::Assembly,
                Emit::LlvmIr => Output::LlvmIr,
                Emit::Exe | Emit::Obj | Emit::Staticlib => Output::Object,
            };
            crate::llvm::emit(lowered, &spec.llvm, &c.options, model_name, symbols, kind)
                .map_err(codegen)?
        }
    })
}

/// Links `objs` into the static Linux executable `out` with `ld` (`pre`: its
/// leading arguments) and `extra` flags.
pub(crate) fn link_linux(
    ld: &Path,
    pre: &[String],
    objs: &[&Path],
    out: &Path,
    extra: &[&str],
) -> Result<(), ArtifactError> {
    let status = Command::new(ld)
        .args(pre)
        .args([
            "-static",
            "-e",
            "_start",
            "--build-id=none",
            "--no-undefined",
        ])
        .args(extra)
        .arg("-o")
        .arg(out)
        .args(objs)
        .output()
        .map_err(|e| ArtifactError::Link(format!("{}: {e}", ld.display())))?;
    if !status.status.success() {
        return Err(ArtifactError::Link(format!(
            "{} exited with {}: {}",
            ld.display(),
            status.status,
            String::from_utf8_lossy(&status.stderr).trim()
        )));
    }
    Ok(())
}
