//! The language-model tests' shared pieces: random-weight checkpoints
//! written by `scripts/make_llm.py`, and the llama.cpp reference program
//! (`tests/llm/ref_logits.c`, built by `scripts/setup-llama-cpp`).

// Each test binary includes this file and uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use crate::targets::{root, run_ok};

/// The llama.cpp dumper, or `None` (after saying so) when `scripts/setup`
/// has not built it.
pub fn reference() -> Option<PathBuf> {
    let out = run_ok(
        Command::new(root().join("scripts/setup-llama-cpp")).arg("--path"),
        "setup-llama-cpp --path",
    );
    let path = root().join(String::from_utf8_lossy(&out.stdout).trim());
    if path.exists() {
        Some(path)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no llama.cpp reference at {}: CI runs scripts/setup, which builds it",
            path.display()
        );
        eprintln!(
            "skipping: no llama.cpp reference at {} (scripts/setup builds it)",
            path.display()
        );
        None
    }
}

/// A scratch folder (tagged `tag`) filled by `make_llm.py args`, or `None`
/// (after saying so) without `.venv`.
pub fn make_llm(tag: &str, args: &[&str]) -> Option<PathBuf> {
    crate::targets::make_llm("llm", tag, args)
}
