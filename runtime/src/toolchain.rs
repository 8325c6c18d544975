//! Finding clang 19 and compiling the C runtime with it. Shared with
//! `build.rs` (included with `#[path]`), which embeds the objects, and used by
//! the tests, which check that two compilations give the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::target::Target;

/// The clang major version the runtime is built and tested with.
pub const CLANG_MAJOR: &str = "19";

fn version_of(clang: &Path) -> Option<String> {
    let out = Command::new(clang).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Finds clang 19: `$SMELT_CLANG` if set, else `clang-19`, else `clang` if
/// `clang --version` says it is version 19. The error says how to get one.
pub fn find_clang() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SMELT_CLANG") {
        let path = PathBuf::from(path);
        return match version_of(&path) {
            Some(_) => Ok(path),
            None => Err(format!(
                "SMELT_CLANG is set to '{}', which does not run; point it at a clang {CLANG_MAJOR} binary or unset it",
                path.display()
            )),
        };
    }
    let versioned = PathBuf::from(format!("clang-{CLANG_MAJOR}"));
    if version_of(&versioned).is_some() {
        return Ok(versioned);
    }
    let plain = PathBuf::from("clang");
    if let Some(v) = version_of(&plain)
        && v.contains(&format!("clang version {CLANG_MAJOR}."))
    {
        return Ok(plain);
    }
    Err(format!(
        "clang {CLANG_MAJOR} was not found (tried $SMELT_CLANG, clang-{CLANG_MAJOR}, and clang reporting version {CLANG_MAJOR}); \
         run scripts/setup to install it, or set SMELT_CLANG to a clang {CLANG_MAJOR} binary"
    ))
}

/// Compiles the runtime (`<src_dir>/c/runtime.c`, headers in
/// `<src_dir>/include`) for `target` into the object file `out`: what
/// executables link with.
pub fn compile_runtime(
    clang: &Path,
    src_dir: &Path,
    target: Target,
    out: &Path,
) -> Result<(), String> {
    compile_c(clang, src_dir, target, "runtime.c", out)
}

/// Compiles the chat executables' runtime (`<src_dir>/c/runtime.c` with
/// `-DSMELT_CHAT`: the chat driver and sampler instead of `main.c`) for
/// `target` into `out`.
pub fn compile_chat_runtime(
    clang: &Path,
    src_dir: &Path,
    target: Target,
    out: &Path,
) -> Result<(), String> {
    let mut flags = target.clang_flags();
    flags.push("-DSMELT_CHAT".into());
    run_clang(
        clang,
        src_dir,
        &flags,
        "runtime.c",
        out,
        &target.to_string(),
    )
}

/// Compiles the language-model API object of static libraries
/// (`<src_dir>/c/llm_lib.c`: `include/smelt_llm.h` over the tokenizer and
/// the sampler, weak, no entry point) for `target` into `out`.
pub fn compile_llm_lib(
    clang: &Path,
    src_dir: &Path,
    target: Target,
    out: &Path,
) -> Result<(), String> {
    compile_c(clang, src_dir, target, "llm_lib.c", out)
}

/// Compiles the libcalls-only object (`<src_dir>/c/libcalls.c`: weak, hidden
/// `memcpy` and friends, no entry point or I/O) for `target` into `out`:
/// what static libraries carry beside the model.
pub fn compile_libcalls(
    clang: &Path,
    src_dir: &Path,
    target: Target,
    out: &Path,
) -> Result<(), String> {
    compile_c(clang, src_dir, target, "libcalls.c", out)
}

/// Compiles the tokenizer alone (`<src_dir>/c/tokenizer.c`) with `flags`
/// (a target's, or the host's when the host is not one of [`Target::ALL`])
/// into `out`: the object the crate links for its host-side FFI wrapper.
pub fn compile_tokenizer(
    clang: &Path,
    src_dir: &Path,
    flags: &[String],
    out: &Path,
) -> Result<(), String> {
    run_clang(clang, src_dir, flags, "tokenizer.c", out, "the host")
}

/// Finds an archiver (`llvm-ar-19`, `llvm-ar` or `ar`) for the host library
/// of the tokenizer.
pub fn find_ar() -> Result<PathBuf, String> {
    for cand in ["llvm-ar-19", "llvm-ar", "ar"] {
        let ok = Command::new(cand)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(PathBuf::from(cand));
        }
    }
    Err("no archiver found (tried llvm-ar-19, llvm-ar, ar); run scripts/setup".into())
}

/// Compiles `<src_dir>/c/<source>` for `target` into the object file `out`.
///
/// The compiler runs in the source folder on relative paths and without
/// debug info, so the object holds no path of the machine that built it:
/// the same sources and compiler give the same bytes.
fn compile_c(
    clang: &Path,
    src_dir: &Path,
    target: Target,
    source: &str,
    out: &Path,
) -> Result<(), String> {
    run_clang(
        clang,
        src_dir,
        &target.clang_flags(),
        source,
        out,
        &target.to_string(),
    )
}

/// Runs clang with `flags` on `<src_dir>/c/<source>`, writing the object
/// `out`; `target` names the target in the error.
fn run_clang(
    clang: &Path,
    src_dir: &Path,
    flags: &[String],
    source: &str,
    out: &Path,
    target: &str,
) -> Result<(), String> {
    let c_dir = src_dir.join("c");
    let mut cmd = Command::new(clang);
    cmd.current_dir(&c_dir)
        .args(flags)
        .arg(format!(
            "-ffile-prefix-map={}=smelt-runtime",
            src_dir.display()
        ))
        .args(["-I", "../include", "-c", source, "-o"])
        .arg(out);
    let result = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", clang.display()))?;
    if !result.status.success() {
        return Err(format!(
            "{} failed to compile {source} for {target}:\n{}",
            clang.display(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(())
}
