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
    /// `armv7-unknown-linux-gnueabihf`: ARMv7-A Linux, hard-float ABI, VFPv3
    /// with 16 double registers and no NEON (the Debian armhf baseline).
    Armv7Linux,
    /// `thumbv7em-none-eabihf`: a Cortex-M4F without an operating system
    /// (hard-float ABI, single-precision FPv4), I/O through semihosting.
    ThumbV7emNone,
}

impl Target {
    /// Every supported target.
    pub const ALL: [Target; 4] = [
        Target::X86_64Linux,
        Target::Aarch64Linux,
        Target::Armv7Linux,
        Target::ThumbV7emNone,
    ];

    /// The normalized LLVM triple (four parts for ARM: a three-part
    /// `thumbv7em-none-eabihf` parses as OS `eabihf` and silently selects the
    /// soft-float calling convention).
    pub fn triple(self) -> &'static str {
        match self {
            Target::X86_64Linux => "x86_64-unknown-linux-gnu",
            Target::Aarch64Linux => "aarch64-unknown-linux-gnu",
            Target::Armv7Linux => "armv7-unknown-linux-gnueabihf",
            Target::ThumbV7emNone => "thumbv7em-unknown-none-eabihf",
        }
    }

    /// The name users write and messages print (Rust's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Target::ThumbV7emNone => "thumbv7em-none-eabihf",
            t => t.triple(),
        }
    }

    /// A short name: manifest tags (`llvm-armv7`), scratch folders and the
    /// `--target` shorthand.
    pub fn arch(self) -> &'static str {
        match self {
            Target::X86_64Linux => "x86_64",
            Target::Aarch64Linux => "aarch64",
            Target::Armv7Linux => "armv7",
            Target::ThumbV7emNone => "thumbv7em",
        }
    }

    /// The QEMU user-mode emulator that runs this target's Linux executables
    /// (`None` for bare metal, which runs under `qemu-system-arm`).
    pub fn qemu_user(self) -> Option<&'static str> {
        match self {
            Target::X86_64Linux => Some("qemu-x86_64"),
            Target::Aarch64Linux => Some("qemu-aarch64"),
            Target::Armv7Linux => Some("qemu-arm"),
            Target::ThumbV7emNone => None,
        }
    }

    /// Whether `std::env::consts::ARCH` of a machine that runs this target's
    /// executables natively is `arch`.
    pub fn runs_natively_on(self, arch: &str) -> bool {
        match self {
            Target::X86_64Linux => arch == "x86_64",
            Target::Aarch64Linux => arch == "aarch64",
            Target::Armv7Linux => arch == "arm",
            Target::ThumbV7emNone => false,
        }
    }

    /// Size of a pointer in bytes.
    pub fn pointer_bytes(self) -> u32 {
        match self {
            Target::X86_64Linux | Target::Aarch64Linux => 8,
            Target::Armv7Linux | Target::ThumbV7emNone => 4,
        }
    }

    /// Whether the target has no operating system: executables are firmware
    /// images (vector table, reset handler, a generated linker script) that
    /// talk to the host through semihosting.
    pub fn is_bare_metal(self) -> bool {
        match self {
            Target::X86_64Linux | Target::Aarch64Linux | Target::Armv7Linux => false,
            Target::ThumbV7emNone => true,
        }
    }

    /// Whether the Cranelift backend has an instruction set for the target
    /// (it has none for 32-bit ARM).
    pub fn cranelift_supported(self) -> bool {
        match self {
            Target::X86_64Linux | Target::Aarch64Linux => true,
            Target::Armv7Linux | Target::ThumbV7emNone => false,
        }
    }

    /// The CPU and LLVM feature string code generators should assume by
    /// default: the baseline the runtime is compiled for.
    pub fn default_cpu_features(self) -> (&'static str, &'static str) {
        match self {
            Target::X86_64Linux => ("x86-64", ""),
            Target::Aarch64Linux => ("generic", "+neon"),
            Target::Armv7Linux => ("generic", "+v7,+vfp3,-d32,+thumb2,-neon"),
            Target::ThumbV7emNone => ("cortex-m4", "+vfp4d16sp"),
        }
    }

    /// The target from a triple, accepting the common spellings
    /// (`aarch64-linux-gnu`, `x86_64-pc-linux-gnu`, `thumbv7em-none-eabihf`, …)
    /// and the short names of [`Target::arch`] (plus `cortex-m4f`).
    pub fn from_triple(triple: &str) -> Option<Target> {
        match triple {
            "x86_64-unknown-linux-gnu" | "x86_64-linux-gnu" | "x86_64-pc-linux-gnu" | "x86_64" => {
                Some(Target::X86_64Linux)
            }
            "aarch64-unknown-linux-gnu" | "aarch64-linux-gnu" | "aarch64" => {
                Some(Target::Aarch64Linux)
            }
            "armv7-unknown-linux-gnueabihf" | "armv7-linux-gnueabihf" | "armv7" => {
                Some(Target::Armv7Linux)
            }
            "thumbv7em-none-eabihf"
            | "thumbv7em-unknown-none-eabihf"
            | "thumbv7em"
            | "cortex-m4f" => Some(Target::ThumbV7emNone),
            _ => None,
        }
    }

    /// The clang flags (after the binary, before the source) that compile the
    /// runtime for this target.
    pub fn clang_flags(self) -> Vec<String> {
        let mut flags = vec![format!("--target={}", self.triple())];
        let arch: &[&str] = match self {
            Target::X86_64Linux => &["-march=x86-64"],
            // Atomics inline (ldaxr/stlxr), not calls to libgcc's outline helpers.
            Target::Aarch64Linux => &["-march=armv8-a", "-mno-outline-atomics"],
            Target::Armv7Linux => &["-march=armv7-a", "-mfloat-abi=hard", "-mfpu=vfpv3-d16"],
            Target::ThumbV7emNone => &[
                "-mcpu=cortex-m4",
                "-mfpu=fpv4-sp-d16",
                "-mfloat-abi=hard",
                "-mthumb",
            ],
        };
        flags.extend(arch.iter().map(|s| s.to_string()));
        flags.extend(COMMON_FLAGS.iter().map(|s| s.to_string()));
        // Linux objects may end up in position-independent executables of a
        // C program (static libraries); firmware is linked at fixed addresses.
        if !self.is_bare_metal() {
            flags.push("-fPIC".into());
        }
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
    "-Wall",
    "-Wextra",
    "-Werror",
];

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A triple the runtime has no build for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
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
