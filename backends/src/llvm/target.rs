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
}
