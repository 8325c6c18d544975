//! The targets the runtime is built for, their triples and the exact clang
//! flags used for each. Shared with `build.rs` (included with `#[path]`) so
//! that the build and the reproducibility test compile identically.

use std::fmt;
use std::str::FromStr;

/// A target the runtime supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `x86_64-unknown-linux-gnu` (baseline x86-64: SSE2, no SSE4.1/FMA).
    X86_64Linux,
    /// `aarch64-unknown-linux-gnu` (ARMv8.0-A).
    Aarch64Linux,
}

impl Target {
    /// Every supported target.
    pub const ALL: [Target; 2] = [Target::X86_64Linux, Target::Aarch64Linux];

    /// The normalized LLVM triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::X86_64Linux => "x86_64-unknown-linux-gnu",
            Target::Aarch64Linux => "aarch64-unknown-linux-gnu",
        }
    }

    /// The architecture as `uname -m` and QEMU's user-mode binaries name it.
    pub fn arch(self) -> &'static str {
        match self {
            Target::X86_64Linux => "x86_64",
            Target::Aarch64Linux => "aarch64",
        }
    }

    /// The target from a triple, accepting the common spellings
    /// (`aarch64-linux-gnu`, `x86_64-pc-linux-gnu`, …).
    pub fn from_triple(triple: &str) -> Option<Target> {
        match triple {
            "x86_64-unknown-linux-gnu" | "x86_64-linux-gnu" | "x86_64-pc-linux-gnu" => {
                Some(Target::X86_64Linux)
            }
            "aarch64-unknown-linux-gnu" | "aarch64-linux-gnu" => Some(Target::Aarch64Linux),
            _ => None,
        }
    }

    /// The clang flags (after the binary, before the source) that compile the
    /// runtime for this target.
    pub fn clang_flags(self) -> Vec<String> {
        let mut flags = vec![format!("--target={}", self.triple())];
        flags.push(
            match self {
                Target::X86_64Linux => "-march=x86-64",
                Target::Aarch64Linux => "-march=armv8-a",
            }
            .to_string(),
        );
        flags.extend(COMMON_FLAGS.iter().map(|s| s.to_string()));
        flags
    }
}

/// Flags for every target. `-fno-builtin` keeps clang from turning the loops
/// of `memcpy` and friends into calls to themselves; `-fno-math-errno` lets
/// `sqrtf` be the instruction; `-ffp-contract=off` keeps the float libcalls'
/// separately rounded operations separate; no stack protector, unwind tables
/// or debug info (nothing to call, nothing to unwind, and no paths in the
/// object); a section per function so linkers can drop what is unused.
const COMMON_FLAGS: &[&str] = &[
    "-std=c11",
    "-ffreestanding",
    "-nostdlib",
    "-fno-builtin",
    "-fno-math-errno",
    "-ffp-contract=off",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-O2",
    "-fPIC",
    "-Wall",
    "-Wextra",
    "-Werror",
];

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.triple())
    }
}

/// A triple the runtime has no build for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = Target::ALL.iter().map(|t| t.triple()).collect();
        write!(
            f,
            "the runtime has no build for target '{}'; supported: {}",
            self.0,
            all.join(", ")
        )
    }
}

impl std::error::Error for UnknownTarget {}

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Target, UnknownTarget> {
        Target::from_triple(s).ok_or_else(|| UnknownTarget(s.to_string()))
    }
}
