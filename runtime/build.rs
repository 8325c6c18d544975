//! Compiles the C runtime for every supported target with clang 19 into
//! `$OUT_DIR/runtime-<triple>.o` (for executables) and
//! `$OUT_DIR/libcalls-<triple>.o` (for static libraries), which `src/lib.rs`
//! embeds.

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
        let built = toolchain::compile_runtime(&clang, &src_dir, t, &runtime)
            .and_then(|()| toolchain::compile_libcalls(&clang, &src_dir, t, &libcalls));
        if let Err(e) = built {
            eprintln!("error: smelt-runtime: {e}");
            std::process::exit(1);
        }
    }
}
