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
//! The runtime object also carries the tokenizer (`c/tokenizer.c`: byte-level
//! and SentencePiece BPE, incremental decoding) for LLM executables;
//! [`tokenizer`] is the same C code linked into this crate for the host.
//!
//! On Linux the runtime also has a tiny thread pool (`c/linux/threads.c`,
//! [`THREAD_SYMBOLS`]: raw `clone` threads, futex dispatch, no libc, no TLS)
//! for models compiled with `--threads N`.
//!
//! Static libraries carry [`libcalls_object`] instead: only the [`LIBCALLS`]
//! (and on Linux the thread pool), weak and hidden (`c/libcalls.c`), so that a C program linking the library
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

pub mod firmware;
pub mod llm;
mod target;
pub mod tokenizer;
pub mod toolchain;

pub use target::{Target, UnknownTarget};

/// The C header of the model ABI (`include/smelt_model.h`).
pub const HEADER: &str = include_str!("../include/smelt_model.h");

/// The C header of the language-model API (`include/smelt_llm.h`), which a
/// language model's static library implements.
pub const LLM_HEADER: &str = include_str!("../include/smelt_llm.h");

/// `SMELT_ABI_VERSION` of [`HEADER`]: what generated code must store in
/// `smelt_model.abi_version`.
pub const ABI_VERSION: u32 = 3;

/// The symbols a model object must define for the runtime: the info table,
/// the entry point (which always takes the state buffer, NULL for a
/// stateless model) and the function writing the initial state.
pub const MODEL_SYMBOLS: &[&str] = &["smelt_model", "smelt_model_run", "smelt_model_init"];

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

/// The thread pool of Linux targets (`c/linux/threads.c`): what code
/// compiled with `--threads N` (N > 1) calls, `smelt_parallel_for(task, ctx,
/// n, threads)` with `task(ctx, lo, hi)`, and its thread start.
pub const THREAD_SYMBOLS: &[&str] = &["smelt_parallel_for", "smelt__clone_thread"];

/// The Arm run-time ABI helpers (`c/aeabi.c`) the runtime and libcalls
/// objects of 32-bit Arm targets define as well: what clang and LLVM call for
/// 64-bit division, shifts and conversions, half precision, block memory
/// operations and (on the Cortex-M4F, single-precision only) every double
/// operation. Integer-only, correctly rounded, tested bit for bit.
pub const AEABI_LIBCALLS: &[&str] = &[
    "__aeabi_memcpy",
    "__aeabi_memcpy4",
    "__aeabi_memcpy8",
    "__aeabi_memmove",
    "__aeabi_memmove4",
    "__aeabi_memmove8",
    "__aeabi_memset",
    "__aeabi_memset4",
    "__aeabi_memset8",
    "__aeabi_memclr",
    "__aeabi_memclr4",
    "__aeabi_memclr8",
    "__aeabi_uidiv",
    "__aeabi_uidivmod",
    "__aeabi_idiv",
    "__aeabi_idivmod",
    "__aeabi_uldivmod",
    "__aeabi_ldivmod",
    "__aeabi_llsl",
    "__aeabi_llsr",
    "__aeabi_lasr",
    "__aeabi_lmul",
    "__aeabi_dadd",
    "__aeabi_dsub",
    "__aeabi_drsub",
    "__aeabi_dmul",
    "__aeabi_ddiv",
    "__aeabi_dcmpeq",
    "__aeabi_dcmplt",
    "__aeabi_dcmple",
    "__aeabi_dcmpge",
    "__aeabi_dcmpgt",
    "__aeabi_dcmpun",
    "__aeabi_f2d",
    "__aeabi_d2f",
    "__aeabi_ul2d",
    "__aeabi_l2d",
    "__aeabi_ui2d",
    "__aeabi_i2d",
    "__aeabi_ul2f",
    "__aeabi_l2f",
    "__aeabi_d2lz",
    "__aeabi_d2ulz",
    "__aeabi_d2iz",
    "__aeabi_d2uiz",
    "__aeabi_f2lz",
    "__aeabi_f2ulz",
    "__aeabi_h2f",
    "__aeabi_f2h",
    "__aeabi_d2h",
    "__gnu_h2f_ieee",
    "__gnu_f2h_ieee",
];

/// Every global symbol the libcalls object of `target` defines: [`LIBCALLS`],
/// and on 32-bit Arm [`AEABI_LIBCALLS`] plus the two functions behind
/// `__aeabi_uldivmod`/`__aeabi_ldivmod` (`smelt__udivmod64`,
/// `smelt__sdivmod64`, which return the remainder through memory), and on
/// Linux [`THREAD_SYMBOLS`].
pub fn libcall_symbols(target: Target) -> Vec<&'static str> {
    let mut v = LIBCALLS.to_vec();
    if !target.is_bare_metal() {
        v.extend_from_slice(THREAD_SYMBOLS);
    }
    if matches!(target, Target::Armv7Linux | Target::ThumbV7emNone) {
        v.extend_from_slice(AEABI_LIBCALLS);
        v.extend_from_slice(&["smelt__udivmod64", "smelt__sdivmod64"]);
    }
    v
}

/// The object `<kind>-<triple>.o` the build script compiled into `OUT_DIR`.
macro_rules! built_object {
    ($kind:literal, $triple:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $kind, "-", $triple, ".o"))
    };
}

static X86_64_LINUX: &[u8] = built_object!("runtime", "x86_64-unknown-linux-gnu");
static AARCH64_LINUX: &[u8] = built_object!("runtime", "aarch64-unknown-linux-gnu");
static ARMV7_LINUX: &[u8] = built_object!("runtime", "armv7-unknown-linux-gnueabihf");
static THUMBV7EM_NONE: &[u8] = built_object!("runtime", "thumbv7em-unknown-none-eabihf");
static X86_64_CHAT: &[u8] = built_object!("chat-runtime", "x86_64-unknown-linux-gnu");
static AARCH64_CHAT: &[u8] = built_object!("chat-runtime", "aarch64-unknown-linux-gnu");
static ARMV7_CHAT: &[u8] = built_object!("chat-runtime", "armv7-unknown-linux-gnueabihf");
static THUMBV7EM_CHAT: &[u8] = built_object!("chat-runtime", "thumbv7em-unknown-none-eabihf");
static X86_64_LLM_LIB: &[u8] = built_object!("llm-lib", "x86_64-unknown-linux-gnu");
static AARCH64_LLM_LIB: &[u8] = built_object!("llm-lib", "aarch64-unknown-linux-gnu");
static ARMV7_LLM_LIB: &[u8] = built_object!("llm-lib", "armv7-unknown-linux-gnueabihf");
static THUMBV7EM_LLM_LIB: &[u8] = built_object!("llm-lib", "thumbv7em-unknown-none-eabihf");
static X86_64_LIBCALLS: &[u8] = built_object!("libcalls", "x86_64-unknown-linux-gnu");
static AARCH64_LIBCALLS: &[u8] = built_object!("libcalls", "aarch64-unknown-linux-gnu");
static ARMV7_LIBCALLS: &[u8] = built_object!("libcalls", "armv7-unknown-linux-gnueabihf");
static THUMBV7EM_LIBCALLS: &[u8] = built_object!("libcalls", "thumbv7em-unknown-none-eabihf");

/// The runtime as a relocatable ELF object for `target`. For a bare-metal
/// target it is linked with the script of [`firmware::MemoryMap`] and its
/// entry point is `smelt__reset`; for Linux the entry point is `_start`.
pub fn runtime_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_LINUX,
        Target::Aarch64Linux => AARCH64_LINUX,
        Target::Armv7Linux => ARMV7_LINUX,
        Target::ThumbV7emNone => THUMBV7EM_NONE,
    }
}

/// The runtime of a language model's chat executable for `target`
/// (`c/runtime.c` with `-DSMELT_CHAT`: `c/chat.c` and the sampler instead of
/// the `.npy` command line). It calls the decode and prefill step models and
/// reads the `smelt_llm` descriptor that `c/llm.h` describes; same entry
/// points as [`runtime_object`].
pub fn chat_runtime_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_CHAT,
        Target::Aarch64Linux => AARCH64_CHAT,
        Target::Armv7Linux => ARMV7_CHAT,
        Target::ThumbV7emNone => THUMBV7EM_CHAT,
    }
}

/// The language-model API (`include/smelt_llm.h`, [`LLM_HEADER`]) for
/// `target`, as a language model's static library carries it beside the
/// step models and [`libcalls_object`]: weak functions, no entry point.
pub fn llm_library_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_LLM_LIB,
        Target::Aarch64Linux => AARCH64_LLM_LIB,
        Target::Armv7Linux => ARMV7_LLM_LIB,
        Target::ThumbV7emNone => THUMBV7EM_LLM_LIB,
    }
}

/// The libcalls-only object for `target`: the functions of [`LIBCALLS`] as
/// (and on 32-bit Arm [`AEABI_LIBCALLS`]) as weak, hidden definitions, and
/// no other global symbol (no `_start`, no
/// I/O). Static libraries put it beside the model object.
pub fn libcalls_object(target: Target) -> &'static [u8] {
    match target {
        Target::X86_64Linux => X86_64_LIBCALLS,
        Target::Aarch64Linux => AARCH64_LIBCALLS,
        Target::Armv7Linux => ARMV7_LIBCALLS,
        Target::ThumbV7emNone => THUMBV7EM_LIBCALLS,
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
        for (alias, t) in [
            ("armv7-linux-gnueabihf", Target::Armv7Linux),
            ("armv7", Target::Armv7Linux),
            ("thumbv7em-none-eabihf", Target::ThumbV7emNone),
            ("thumbv7em-unknown-none-eabihf", Target::ThumbV7emNone),
            ("cortex-m4f", Target::ThumbV7emNone),
        ] {
            assert_eq!(alias.parse::<Target>(), Ok(t), "{alias}");
        }
        assert_eq!(Target::ThumbV7emNone.to_string(), "thumbv7em-none-eabihf");
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
        // e_machine at offset 18: 62 = x86-64, 183 = AArch64, 40 = Arm.
        for (t, machine) in [
            (Target::X86_64Linux, 62u16),
            (Target::Aarch64Linux, 183),
            (Target::Armv7Linux, 40),
            (Target::ThumbV7emNone, 40),
        ] {
            for o in [runtime_object(t), libcalls_object(t)] {
                assert_eq!(&o[..4], b"\x7fELF");
                assert_eq!(u16::from_le_bytes([o[18], o[19]]), machine);
            }
        }
    }
}
