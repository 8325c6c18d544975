//! smelt's runtime for native artifacts.
//!
//! A freestanding C runtime (`c/`, no libc) that a compiled model object is
//! linked with to make a static executable: the process entry point
//! (`_start`), raw Linux system calls, the `smelt run` command line, `.npy`
//! and `.npz` input, `.npy` output, `--bench`, and the C library functions
//! generated code may call ([`LIBCALLS`]). The build script compiles it with
//! clang 19 for every [`Target`]; [`runtime_object`] hands out the embedded
//! object, and [`HEADER`] is the C header of the model ABI, which is also what
//! users of a static library get.
//!
//! Static libraries carry [`libcalls_object`] instead: only the [`LIBCALLS`],
//! weak and hidden (`c/libcalls.c`), so that a C program linking the library
//! with its own C library gets no duplicate `_start`, `memcpy` or `floorf`.
//!
//! Linking an executable:
//! `ld.lld -static -e _start -o model model.o runtime.o`, where `model.o`
//! defines `smelt_model` and `smelt_model_run` as [`HEADER`] describes.
//!
//! Why C compiled at smelt's build time, rather than code emitted by smelt's
//! own backends or Rust: the runtime is mostly I/O and parsing, which the
//! kernel IR is not made for; Rust `no_std` would need `rustup target add`
//! for every target, which is not available; one clang builds every target
//! (and the later ARM ones) from one source, and the objects are embedded, so
//! `smelt compile` needs no C compiler, only a linker.

mod target;
pub mod toolchain;

pub use target::{Target, UnknownTarget};

/// The C header of the model ABI (`include/smelt_model.h`).
pub const HEADER: &str = include_str!("../include/smelt_model.h");

/// `SMELT_ABI_VERSION` of [`HEADER`]: what generated code must store in
/// `smelt_model.abi_version`.
pub const ABI_VERSION: u32 = 1;

/// The symbols a model object must define for the runtime.
pub const MODEL_SYMBOLS: &[&str] = &["smelt_model", "smelt_model_run"];

/// The C library functions the runtime object defines for generated code.
/// All are correctly rounded for every input (NaN, infinities, signed zeros,
/// subnormals) in the default rounding mode.
pub const LIBCALLS: &[&str] = &[
    "memcpy",
    "memmove",
    "memset",
    "memcmp",
    "floorf",
    "ceilf",
    "truncf",
    "rintf",
    "nearbyintf",
    "sqrtf",
    "fmaf",
    "floor",
    "ceil",
    "trunc",
    "rint",
    "nearbyint",
    "sqrt",
    "fma",
];

static X86_64_LINUX: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/runtime-x86_64-unknown-linux-gnu.o"
));
static AARCH64_LINUX: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/runtime-aarch64-unknown-linux-gnu.o"
));

static X86_64_LIBCALLS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/libcalls-x86_64-unknown-linux-gnu.o"
));
static AARCH64_LIBCALLS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/libcalls-aarch64-unknown-linux-gnu.o"
));

/// The runtime as a relocatable ELF object for `target`.
pub fn runtime_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_LINUX,
        Target::Aarch64Linux => AARCH64_LINUX,
    }
}

/// The libcalls-only object for `target`: the functions of [`LIBCALLS`] as
/// weak, hidden definitions, and no other global symbol (no `_start`, no
/// I/O). Static libraries put it beside the model object.
pub fn libcalls_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_LIBCALLS,
        Target::Aarch64Linux => AARCH64_LIBCALLS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_round_trip() {
        for t in Target::ALL {
            assert_eq!(t.triple().parse::<Target>(), Ok(t));
        }
        assert_eq!(
            "aarch64-linux-gnu".parse::<Target>(),
            Ok(Target::Aarch64Linux)
        );
        let e = "riscv64gc-unknown-linux-gnu".parse::<Target>().unwrap_err();
        assert!(
            e.to_string()
                .contains("supported: x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn header_matches_abi_version() {
        assert!(HEADER.contains(&format!("#define SMELT_ABI_VERSION {ABI_VERSION}\n")));
        for s in MODEL_SYMBOLS {
            assert!(HEADER.contains(s));
        }
    }

    #[test]
    fn objects_are_elf_for_their_machine() {
        // e_machine at offset 18: 62 = x86-64, 183 = AArch64.
        for (t, machine) in [(Target::X86_64Linux, 62u16), (Target::Aarch64Linux, 183)] {
            for o in [runtime_object(t), libcalls_object(t)] {
                assert_eq!(&o[..4], b"\x7fELF");
                assert_eq!(u16::from_le_bytes([o[18], o[19]]), machine);
            }
        }
    }
}
