//! What the LLVM backend generates code for: a normalized triple, a CPU and
//! a feature string, with safe defaults per architecture.
//!
//! Triples are normalized with LLVM's own normalizer first: a three-part
//! ARM triple such as `thumbv7em-none-eabihf` otherwise parses with `eabihf`
//! as the OS and no environment, and LLVM silently falls back to the
//! soft-float calling convention (see `toolchain-notes.md`).
//!
//! | architecture | default CPU | default features |
//! |---|---|---|
//! | `x86_64` | `x86-64-v2` (SSE4.2, POPCNT: what the Cranelift backend assumes) | — |
//! | `aarch64` | `generic` | `+neon` |
//! | `armv7` (Linux, hard float) | `generic` | `+v7,+vfp3,-d32,+thumb2,-neon` |
//! | `thumbv7em` (Cortex-M4F) | `cortex-m4` | `+vfp4d16sp` |
//!
//! `--cpu native` takes the host's CPU name and features, for the host's
//! architecture only.
//!
//! CPU and feature names are checked against the lists LLVM 19 prints
//! (`known/*.txt`, from `llc-19 -mcpu=help`): LLVM only warns about an
//! unknown name on stderr, and some of its fallbacks then abort the process
//! (an unknown CPU on x86_64 loses 64-bit mode). For the same reason x86_64
//! keeps `+64bit` whatever the flags say, and the features the hard-float
//! calling convention needs (the FPU, and NEON on aarch64) cannot be
//! removed.

use std::sync::Once;

use inkwell::targets::{InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple};

use super::CodegenError;
use crate::kernel::VectorShape;

/// A target for the LLVM backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlvmTarget {
    /// The normalized triple (`arch-vendor-os-env`).
    pub triple: String,
    /// The LLVM CPU name.
    pub cpu: String,
    /// The LLVM feature string (`+a,-b`).
    pub features: String,
}

/// The architecture families the backend is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    X86_64,
    Aarch64,
    /// A-profile ARM, ARM or Thumb-2 code (`armv7`, `armv7a`).
    ArmV7,
    /// M-profile Thumb (`thumbv7em`).
    ThumbV7em,
}

fn family(arch: &str) -> Option<Family> {
    Some(match arch {
        "x86_64" => Family::X86_64,
        "aarch64" => Family::Aarch64,
        "armv7" | "armv7a" | "thumbv7" | "thumbv7a" => Family::ArmV7,
        "thumbv7em" => Family::ThumbV7em,
        _ => return None,
    })
}

/// The CPU and feature names LLVM 19 knows for a family.
fn known(fam: Family) -> (Vec<&'static str>, Vec<&'static str>) {
    let text = match fam {
        Family::X86_64 => include_str!("known/x86.txt"),
        Family::Aarch64 => include_str!("known/aarch64.txt"),
        Family::ArmV7 | Family::ThumbV7em => include_str!("known/arm.txt"),
    };
    let (mut cpus, mut features, mut in_features) = (Vec::new(), Vec::new(), false);
    for line in text.lines() {
        match line {
            "" => {}
            l if l.starts_with('#') => {}
            "cpus:" => in_features = false,
            "features:" => in_features = true,
            l if in_features => features.push(l),
            l => cpus.push(l),
        }
    }
    (cpus, features)
}

/// Features the calling convention and the generated code rely on.
fn required(fam: Family) -> &'static [&'static str] {
    match fam {
        Family::X86_64 => &["64bit"],
        Family::Aarch64 => &["fp-armv8", "neon"],
        Family::ArmV7 | Family::ThumbV7em => &["fpregs", "vfp2", "vfp2sp"],
    }
}

/// Checks `--cpu` and `--features` names against LLVM's lists.
fn check_names(
    fam: Family,
    triple: &str,
    cpu: Option<&str>,
    features: Option<&str>,
) -> Result<(), CodegenError> {
    let (cpus, known_features) = known(fam);
    if let Some(c) = cpu
        && c != "native"
        && !cpus.contains(&c)
    {
        return Err(CodegenError(format!(
            "--cpu {c}: LLVM does not know this CPU for {triple}; known: {}",
            cpus.join(", ")
        )));
    }
    for f in features.unwrap_or("").split(',').filter(|f| !f.is_empty()) {
        let (sign, name) = f.split_at(f.find(|c| c != '+' && c != '-').unwrap_or(0));
        if sign != "+" && sign != "-" {
            return Err(CodegenError(format!(
                "--features: '{f}' must be +NAME or -NAME (comma-separated)"
            )));
        }
        if !known_features.contains(&name) {
            return Err(CodegenError(format!(
                "--features: LLVM does not know the feature '{name}' for {triple}"
            )));
        }
        if sign == "-" && required(fam).contains(&name) {
            return Err(CodegenError(format!(
                "--features: '{f}' cannot be removed for {triple}: the calling convention and \
                 the generated code need it"
            )));
        }
    }
    Ok(())
}

fn init_targets() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let c = InitializationConfig::default();
        Target::initialize_x86(&c);
        Target::initialize_aarch64(&c);
        Target::initialize_arm(&c);
    });
}

/// Normalizes a triple the way LLVM does (`thumbv7em-none-eabihf` →
/// `thumbv7em-unknown-none-eabihf`).
pub fn normalize(triple: &str) -> String {
    let t = TargetMachine::normalize_triple(&TargetTriple::create(triple));
    t.as_str().to_string_lossy().into_owned()
}

/// The host's normalized triple.
pub fn host_triple() -> String {
    let t = TargetMachine::normalize_triple(&TargetMachine::get_default_triple());
    t.as_str().to_string_lossy().into_owned()
}

impl LlvmTarget {
    /// The target for `triple` (normalized here) with `cpu` and `features`.
    ///
    /// No `cpu` means the architecture's safe baseline with its default
    /// features, followed by `features` (later features win in LLVM); a
    /// `cpu` given means that CPU with `features` only; `cpu` `native` means
    /// the host's CPU and features (plus `features`), and is an error for a
    /// triple of another architecture.
    pub fn new(
        triple: &str,
        cpu: Option<&str>,
        features: Option<&str>,
    ) -> Result<LlvmTarget, CodegenError> {
        let triple = normalize(triple);
        let arch = triple.split('-').next().unwrap_or_default();
        let Some(fam) = family(arch) else {
            return Err(CodegenError(format!(
                "the LLVM backend does not support the architecture of '{triple}': use x86_64, \
                 aarch64, armv7 or thumbv7em"
            )));
        };
        check_names(fam, &triple, cpu, features)?;
        let join = |base: &str, extra: Option<&str>| -> String {
            match (base, extra.unwrap_or("")) {
                (b, "") => b.to_string(),
                ("", e) => e.to_string(),
                (b, e) => format!("{b},{e}"),
            }
        };
        let (cpu, features) = match cpu {
            Some("native") => {
                let host = host_triple();
                let host_arch = host.split('-').next().unwrap_or_default();
                if host_arch != arch {
                    return Err(CodegenError(format!(
                        "--cpu native describes this machine ({host}), not {triple}: name a CPU \
                         of the target instead"
                    )));
                }
                let name = TargetMachine::get_host_cpu_name().to_string();
                let host_features = TargetMachine::get_host_cpu_features().to_string();
                (name, join(&host_features, features))
            }
            Some(c) => (c.to_string(), features.unwrap_or("").to_string()),
            None => {
                let (c, f) = match fam {
                    Family::X86_64 => ("x86-64-v2", ""),
                    Family::Aarch64 => ("generic", "+neon"),
                    Family::ArmV7 => ("generic", "+v7,+vfp3,-d32,+thumb2,-neon"),
                    Family::ThumbV7em => ("cortex-m4", "+vfp4d16sp"),
                };
                (c.to_string(), join(f, features))
            }
        };
        // A CPU without 64-bit mode would make LLVM abort on x86_64.
        let features = if fam == Family::X86_64 && !features.is_empty() {
            format!("{features},+64bit")
        } else if fam == Family::X86_64 && cpu != "x86-64-v2" {
            "+64bit".to_string()
        } else {
            features
        };
        // LLVM 19 aborts ("Cannot select: masked_store") on 256-bit masked
        // stores that AVX-512F without VL makes it form.
        if fam == Family::X86_64 {
            let x = x86_features(&cpu, &features);
            if x.avx512 && !x.avx512vl {
                return Err(CodegenError(format!(
                    "--features: AVX-512F without AVX-512VL (cpu '{cpu}', features \
                     '{features}') makes LLVM 19 abort: add +avx512vl"
                )));
            }
        }
        let t = LlvmTarget {
            triple,
            cpu,
            features,
        };
        // Fail here, with the triple named, if LLVM does not know it.
        t.llvm_target()?;
        Ok(t)
    }

    /// The default target for `triple` (no `--cpu`, no `--features`).
    pub fn baseline(triple: &str) -> Result<LlvmTarget, CodegenError> {
        LlvmTarget::new(triple, None, None)
    }

    pub(super) fn triple(&self) -> TargetTriple {
        TargetTriple::create(&self.triple)
    }

    pub(super) fn llvm_target(&self) -> Result<Target, CodegenError> {
        init_targets();
        Target::from_triple(&self.triple()).map_err(|e| {
            CodegenError(format!(
                "LLVM does not know the triple {}: {e}",
                self.triple
            ))
        })
    }

    /// The vector unit the schedules size vectors and register tiles for,
    /// from the CPU and the features (later features win, as in LLVM):
    ///
    /// | target | `f32` lanes | registers | FMA |
    /// |---|---|---|---|
    /// | x86_64 baseline (SSE4.2) | 4 | 16 | no |
    /// | x86_64 with AVX2 | 8 | 16 | with `+fma` |
    /// | x86_64 with AVX-512F | 16 | 32 | yes |
    /// | aarch64 (NEON) | 4 | 32 | yes |
    /// | armv7 (VFPv3-D16; NEON if enabled) | 4 | 16 | with VFPv4 |
    /// | thumbv7em (Cortex-M4F) | 4 | 16 | yes |
    ///
    /// A named x86 CPU brings its extensions ([`x86_cpu_level`]); the
    /// features given with it (or `--cpu native`'s host feature list) then
    /// add or remove them. On armv7 and Cortex-M the 4-lane vectors are split
    /// into the FPU's scalar registers by LLVM.
    pub fn vector_shape(&self) -> VectorShape {
        let arch = self.triple.split('-').next().unwrap_or_default();
        let features = self.features.split(',').filter(|f| !f.is_empty());
        match family(arch) {
            Some(Family::X86_64) => {
                let X86Features {
                    avx2, fma, avx512, ..
                } = x86_features(&self.cpu, &self.features);
                if avx512 {
                    VectorShape {
                        f32_lanes: 16,
                        registers: 32,
                        fma: true,
                    }
                } else if avx2 {
                    VectorShape {
                        f32_lanes: 8,
                        registers: 16,
                        fma,
                    }
                } else {
                    VectorShape {
                        fma,
                        ..VectorShape::BASELINE
                    }
                }
            }
            Some(Family::Aarch64) => VectorShape {
                f32_lanes: 4,
                registers: 32,
                fma: true,
            },
            Some(Family::ArmV7) => {
                let mut fma = false;
                for f in features {
                    match f {
                        "+vfp4" | "+vfp4d16" | "+vfp4sp" | "+vfp4d16sp" => fma = true,
                        "-vfp4" | "-vfp4d16" | "-vfp4sp" | "-vfp4d16sp" => fma = false,
                        _ => {}
                    }
                }
                VectorShape {
                    fma,
                    ..VectorShape::BASELINE
                }
            }
            Some(Family::ThumbV7em) => VectorShape {
                fma: true,
                ..VectorShape::BASELINE
            },
            None => VectorShape::BASELINE,
        }
    }

    /// Whether the target has an operating system (Linux); bare-metal
    /// targets (`…-none-…`) are linked at fixed addresses.
    pub fn has_os(&self) -> bool {
        self.triple.split('-').nth(2) != Some("none")
    }

    /// Position-independent code for targets with an OS (what `ld.lld
    /// -static` and C programs linking the static library both accept);
    /// static code for bare metal, whose firmware is linked at fixed
    /// addresses without a GOT.
    pub(super) fn reloc_mode(&self) -> RelocMode {
        if self.has_os() {
            RelocMode::PIC
        } else {
            RelocMode::Static
        }
    }
}

/// The vector extensions a named x86 CPU has (LLVM 19's processor table),
/// as far as the schedules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum X86Level {
    /// SSE only (up to SSE4.2 and AVX without AVX2 count here too).
    Sse,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F (with AVX2 and FMA).
    Avx512,
}

/// The x86 vector extensions of a CPU with a feature string applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct X86Features {
    avx2: bool,
    fma: bool,
    avx512: bool,
    /// AVX-512VL (the 128- and 256-bit forms of AVX-512 instructions).
    avx512vl: bool,
}

fn x86_features(cpu: &str, features: &str) -> X86Features {
    let level = x86_cpu_level(cpu);
    let (mut avx2, mut fma, mut avx512) = match level {
        X86Level::Avx512 => (true, true, true),
        X86Level::Avx2 => (true, true, false),
        X86Level::Sse => (false, false, false),
    };
    // Every AVX-512 CPU in LLVM's table but Knights Landing / Mill has VL.
    let mut vl = level == X86Level::Avx512 && !matches!(cpu, "knl" | "knm" | "mic_avx512");
    for f in features.split(',') {
        match f {
            "+avx2" => avx2 = true,
            "+fma" => fma = true,
            // LLVM: AVX-512F implies AVX2 and FMA; removing either (or
            // AVX) removes AVX-512F and what builds on it.
            "+avx512f" => (avx2, fma, avx512) = (true, true, true),
            "+avx512vl" => (avx2, fma, avx512, vl) = (true, true, true, true),
            "-avx" | "-avx2" => (avx2, avx512, vl) = (false, false, false),
            "-fma" => (fma, avx512, vl) = (false, false, false),
            "-avx512f" => (avx512, vl) = (false, false),
            "-avx512vl" => vl = false,
            _ => {}
        }
    }
    X86Features {
        avx2,
        fma,
        avx512,
        avx512vl: vl,
    }
}

fn x86_cpu_level(cpu: &str) -> X86Level {
    match cpu {
        "skylake-avx512" | "skylake_avx512" | "skx" | "cascadelake" | "cooperlake"
        | "cannonlake" | "icelake-client" | "icelake_client" | "icelake-server"
        | "icelake_server" | "tigerlake" | "rocketlake" | "sapphirerapids" | "emeraldrapids"
        | "graniterapids" | "graniterapids-d" | "graniterapids_d" | "knl" | "knm"
        | "mic_avx512" | "x86-64-v4" | "znver4" | "znver5" => X86Level::Avx512,
        "haswell"
        | "broadwell"
        | "skylake"
        | "core-avx2"
        | "core_4th_gen_avx"
        | "core_4th_gen_avx_tsx"
        | "core_5th_gen_avx"
        | "core_5th_gen_avx_tsx"
        | "alderlake"
        | "raptorlake"
        | "meteorlake"
        | "arrowlake"
        | "arrowlake-s"
        | "arrowlake_s"
        | "lunarlake"
        | "pantherlake"
        | "gracemont"
        | "sierraforest"
        | "grandridge"
        | "clearwaterforest"
        | "x86-64-v3"
        | "znver1"
        | "znver2"
        | "znver3"
        | "bdver4" => X86Level::Avx2,
        _ => X86Level::Sse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_normalized() {
        for (given, want) in [
            ("thumbv7em-none-eabihf", "thumbv7em-unknown-none-eabihf"),
            ("armv7-linux-gnueabihf", "armv7-unknown-linux-gnueabihf"),
            ("aarch64-linux-gnu", "aarch64-unknown-linux-gnu"),
            ("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"),
        ] {
            assert_eq!(LlvmTarget::baseline(given).unwrap().triple, want);
        }
    }

    #[test]
    fn defaults_per_architecture() {
        let t = LlvmTarget::baseline("armv7-unknown-linux-gnueabihf").unwrap();
        assert_eq!(
            (t.cpu.as_str(), t.features.as_str()),
            ("generic", "+v7,+vfp3,-d32,+thumb2,-neon")
        );
        let t = LlvmTarget::new("thumbv7em-none-eabihf", None, Some("+dsp")).unwrap();
        assert_eq!(
            (t.cpu.as_str(), t.features.as_str()),
            ("cortex-m4", "+vfp4d16sp,+dsp")
        );
        assert!(!t.has_os());
        let t = LlvmTarget::new("x86_64-unknown-linux-gnu", Some("skylake"), None).unwrap();
        assert_eq!((t.cpu.as_str(), t.features.as_str()), ("skylake", "+64bit"));
        let t = LlvmTarget::baseline("x86_64-unknown-linux-gnu").unwrap();
        assert_eq!((t.cpu.as_str(), t.features.as_str()), ("x86-64-v2", ""));
    }

    #[test]
    fn unknown_or_fatal_names_are_refused() {
        for (triple, cpu, features, want) in [
            (
                "x86_64-unknown-linux-gnu",
                Some("bogus"),
                None,
                "--cpu bogus",
            ),
            (
                "aarch64-unknown-linux-gnu",
                Some("skylake"),
                None,
                "--cpu skylake",
            ),
            (
                "x86_64-unknown-linux-gnu",
                None,
                Some("+nosuch"),
                "'nosuch'",
            ),
            (
                "x86_64-unknown-linux-gnu",
                None,
                Some("avx2"),
                "+NAME or -NAME",
            ),
            (
                "x86_64-unknown-linux-gnu",
                None,
                Some("-64bit"),
                "cannot be removed",
            ),
            (
                "x86_64-unknown-linux-gnu",
                None,
                Some("+avx512f"),
                "add +avx512vl",
            ),
            (
                "x86_64-unknown-linux-gnu",
                Some("knl"),
                None,
                "add +avx512vl",
            ),
            (
                "aarch64-unknown-linux-gnu",
                None,
                Some("-neon"),
                "cannot be removed",
            ),
            (
                "armv7-unknown-linux-gnueabihf",
                None,
                Some("-vfp2"),
                "cannot be removed",
            ),
            (
                "thumbv7em-none-eabihf",
                None,
                Some("-fpregs"),
                "cannot be removed",
            ),
        ] {
            let e = LlvmTarget::new(triple, cpu, features).unwrap_err();
            assert!(
                e.to_string().contains(want),
                "{triple} {cpu:?} {features:?}: {e}"
            );
        }
        // A 32-bit CPU on x86_64 keeps 64-bit mode instead of aborting.
        let t = LlvmTarget::new("x86_64-unknown-linux-gnu", Some("i386"), None).unwrap();
        let obj = super::super::compile(
            &crate::lower::Lowered {
                program: Default::default(),
                inputs: vec![],
                outputs: vec![],
                plan: crate::plan::MemoryPlan {
                    arena_bytes: 0,
                    lower_bound: 0,
                    ..crate::plan::MemoryPlan::default()
                },
            },
            &t,
            &super::super::LlvmOptions::default(),
            "empty",
        )
        .unwrap();
        assert!(!obj.is_empty());
    }

    #[test]
    fn bad_targets_are_named() {
        let e = LlvmTarget::baseline("riscv64gc-unknown-linux-gnu").unwrap_err();
        assert!(e.to_string().contains("riscv64gc-unknown-linux-gnu"), "{e}");
        let other = if host_triple().starts_with("x86_64") {
            "aarch64-unknown-linux-gnu"
        } else {
            "x86_64-unknown-linux-gnu"
        };
        let e = LlvmTarget::new(other, Some("native"), None).unwrap_err();
        assert!(e.to_string().contains("--cpu native"), "{e}");
        let native = LlvmTarget::new(&host_triple(), Some("native"), None).unwrap();
        assert!(!native.cpu.is_empty());
    }

    /// The vector unit follows the CPU and the features, later features
    /// winning; `--cpu native` gives this host's.
    #[test]
    fn vector_shapes_follow_cpu_and_features() {
        let x86 = "x86_64-unknown-linux-gnu";
        for (triple, cpu, features, lanes, regs, fma) in [
            (x86, None, None, 4, 16, false),
            (x86, None, Some("+avx2"), 8, 16, false),
            (x86, None, Some("+avx2,+fma"), 8, 16, true),
            (x86, None, Some("+avx512f,+avx512vl"), 16, 32, true),
            (x86, None, Some("+avx512vl"), 16, 32, true),
            (x86, None, Some("+avx512vl,-avx512f"), 8, 16, true),
            (x86, None, Some("+avx512vl,-fma"), 8, 16, false),
            (x86, Some("haswell"), None, 8, 16, true),
            (x86, Some("znver4"), None, 16, 32, true),
            (x86, Some("znver4"), Some("-avx2"), 4, 16, true),
            (x86, Some("x86-64-v4"), None, 16, 32, true),
            (x86, Some("nehalem"), Some("+avx2,+fma"), 8, 16, true),
            ("aarch64-unknown-linux-gnu", None, None, 4, 32, true),
            ("armv7-unknown-linux-gnueabihf", None, None, 4, 16, false),
            ("thumbv7em-none-eabihf", None, None, 4, 16, true),
        ] {
            let s = LlvmTarget::new(triple, cpu, features)
                .unwrap()
                .vector_shape();
            assert_eq!(
                (s.f32_lanes, s.registers, s.fma),
                (lanes, regs, fma),
                "{triple} {cpu:?} {features:?}"
            );
        }
        // The host's: what /proc/cpuinfo says this machine has.
        if host_triple().starts_with("x86_64")
            && let Ok(info) = std::fs::read_to_string("/proc/cpuinfo")
        {
            let flags: Vec<&str> = info
                .lines()
                .find(|l| l.starts_with("flags"))
                .map(|l| l.split_whitespace().collect())
                .unwrap_or_default();
            let want = if flags.contains(&"avx512f") {
                16
            } else if flags.contains(&"avx2") {
                8
            } else {
                4
            };
            let s = LlvmTarget::new(&host_triple(), Some("native"), None)
                .unwrap()
                .vector_shape();
            assert_eq!(s.f32_lanes, want, "{flags:?}");
        }
    }
}
