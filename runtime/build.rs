//! Compiles the C runtime for every supported target with clang 19 into
//! `$OUT_DIR/runtime-<triple>.o` (for executables), `$OUT_DIR/chat-runtime-<triple>.o`
//! (for language models' chat executables), `$OUT_DIR/llm-lib-<triple>.o` (the
//! language-model API of their static libraries) and
//! `$OUT_DIR/libcalls-<triple>.o` (for static libraries), which `src/lib.rs`
//! embeds; and the tokenizer alone for the host into
//! `$OUT_DIR/libsmelt_tokenizer.a`, which the crate links for its FFI
//! wrapper (`src/tokenizer.rs`).

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/target.rs"]
mod target;
#[allow(dead_code)]
#[path = "src/toolchain.rs"]
mod toolchain;

fn rerun_if_changed(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rerun_if_changed(&p);
        }
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn main() {
    let src_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=SMELT_CLANG");
    println!("cargo:rerun-if-changed=src/target.rs");
    println!("cargo:rerun-if-changed=src/toolchain.rs");
    rerun_if_changed(&src_dir.join("c"));
    rerun_if_changed(&src_dir.join("include"));

    let clang = match toolchain::find_clang() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: smelt-runtime: {e}");
            std::process::exit(1);
        }
    };
    for t in target::Target::ALL {
        let runtime = out_dir.join(format!("runtime-{}.o", t.triple()));
        let libcalls = out_dir.join(format!("libcalls-{}.o", t.triple()));
        let chat = out_dir.join(format!("chat-runtime-{}.o", t.triple()));
        let llm_lib = out_dir.join(format!("llm-lib-{}.o", t.triple()));
        let built = toolchain::compile_runtime(&clang, &src_dir, t, &runtime)
            .and_then(|()| toolchain::compile_chat_runtime(&clang, &src_dir, t, &chat))
            .and_then(|()| toolchain::compile_llm_lib(&clang, &src_dir, t, &llm_lib))
            .and_then(|()| toolchain::compile_libcalls(&clang, &src_dir, t, &libcalls));
        if let Err(e) = built {
            eprintln!("error: smelt-runtime: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = host_tokenizer(&clang, &src_dir, &out_dir) {
        eprintln!("error: smelt-runtime: {e}");
        std::process::exit(1);
    }
}

/// Compiles `c/tokenizer.c` for the host (the crate's own target) into a
/// static library and tells cargo to link it.
fn host_tokenizer(clang: &Path, src_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let host = std::env::var("TARGET").map_err(|_| "TARGET is not set".to_string())?;
    let flags = match host.parse::<target::Target>() {
        Ok(t) => t.clang_flags(),
        Err(_) => vec![format!("--target={host}"), "-O2".into(), "-fPIC".into()],
    };
    let obj = out_dir.join("tokenizer-host.o");
    let lib = out_dir.join("libsmelt_tokenizer.a");
    toolchain::compile_tokenizer(clang, src_dir, &flags, &obj)?;
    let _ = std::fs::remove_file(&lib);
    let ar = toolchain::find_ar()?;
    let out = std::process::Command::new(&ar)
        .arg("crs")
        .arg(&lib)
        .arg(&obj)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", ar.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed to archive the tokenizer: {}",
            ar.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static=smelt_tokenizer");
    Ok(())
}
