//! The targets smelt generates code for: the runtime's [`Target`] list (one
//! list for the whole compiler), and [`TargetSpec`], everything the
//! pipeline needs to know about the machine, resolved once from the user's
//! `--target`, `--backend`, `--cpu`, `--features` and `--memory` and passed
//! down to the optimizer's cost model, the schedules, the code generator and
//! the firmware linker.
//!
//! Why here: the spec combines the runtime's target list, the LLVM backend's
//! CPU and feature resolution ([`LlvmTarget`]), the kernel IR's
//! [`VectorShape`] and the optimizer's [`TargetCost`]; `backends` is the
//! lowest crate that sees all of them (`passes` cannot depend on
//! `backends`, so the cost model takes the plain figures, not the spec).

use std::str::FromStr;

use smelt_passes::egraph::cost::TargetCost;
use smelt_runtime::firmware::MemoryMap;
pub use smelt_runtime::{Target, UnknownTarget};
use target_lexicon::Triple;

use crate::artifact::Backend;
use crate::error::Error;
use crate::kernel::VectorShape;
use crate::llvm::LlvmTarget;

/// The target-lexicon triple of a target (what Cranelift's ISA lookup takes).
pub fn lexicon(t: Target) -> Triple {
    Triple::from_str(t.triple()).expect("the runtime's triples are valid")
}

/// A target resolved for one code generator: the triple, the CPU and
/// features code is generated for, the vector unit the schedules size
/// vectors and register tiles for, the optimizer's cost figures for that
/// vector unit, and the firmware memory map of bare-metal targets.
///
/// Build it with [`TargetSpec::resolve`] (from the user's spelling) or
/// [`TargetSpec::new`]; every field is derived there, so the cost model and
/// the schedules can never disagree about the machine, and an unknown
/// target is an error, never a silent x86_64.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    /// The target, one of the runtime's list.
    pub target: Target,
    /// The LLVM view of it: normalized triple, CPU and feature string. For
    /// the LLVM backend these are what it compiles for (`--cpu`,
    /// `--features`, `--cpu native`); for Cranelift they are the baseline
    /// its instruction-set flags match (x86-64-v2, generic aarch64).
    pub llvm: LlvmTarget,
    /// The vector unit the code generator targets (Cranelift: always 128
    /// bits; LLVM: from the CPU and features).
    pub vector: VectorShape,
    /// The e-graph cost model's figures for this target and vector unit.
    pub costs: TargetCost,
    /// Where flash and RAM are (bare-metal firmware only; Linux targets
    /// carry the default and ignore it).
    pub memory: MemoryMap,
}

impl TargetSpec {
    /// Resolves a target spelled as the user writes it (a triple or a short
    /// name, see [`Target::from_triple`]) for `backend`, with the default
    /// memory map.
    pub fn resolve(target: &str, backend: &Backend) -> Result<TargetSpec, Error> {
        let t: Target = target
            .parse()
            .map_err(|e: UnknownTarget| Error::Target(e.to_string()))?;
        TargetSpec::new(t, backend)
    }

    /// The spec of `target` for `backend`: the LLVM backend's CPU and
    /// features are checked here (a bad `--cpu` or `--features` is an
    /// error naming the flag), with the default memory map.
    pub fn new(target: Target, backend: &Backend) -> Result<TargetSpec, Error> {
        let (llvm, vector) = match backend {
            Backend::Llvm(c) => {
                let llvm = crate::artifact::llvm_target(target, c)?;
                let vector = llvm.vector_shape();
                (llvm, vector)
            }
            Backend::Cranelift => {
                let llvm = LlvmTarget::baseline(target.triple()).map_err(|e| Error::Target(e.0))?;
                (llvm, crate::cranelift::vector_shape(target))
            }
        };
        let costs = TargetCost::for_target(target.arch())
            .ok_or_else(|| Error::Target(format!("the cost model has no figures for {target}")))?
            .for_vector(u32::from(vector.f32_lanes), vector.fma);
        Ok(TargetSpec {
            target,
            llvm,
            vector,
            costs,
            memory: MemoryMap::default(),
        })
    }

    /// The same spec with the firmware memory map `memory`.
    pub fn with_memory(mut self, memory: MemoryMap) -> TargetSpec {
        self.memory = memory;
        self
    }

    /// The normalized triple.
    pub fn triple(&self) -> &str {
        &self.llvm.triple
    }

    /// The CPU code is generated for.
    pub fn cpu(&self) -> &str {
        &self.llvm.cpu
    }

    /// The feature string code is generated with.
    pub fn features(&self) -> &str {
        &self.llvm.features
    }

    /// Whether the target has no operating system (firmware images).
    pub fn is_bare_metal(&self) -> bool {
        self.target.is_bare_metal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::LlvmConfig;

    #[test]
    fn unknown_targets_are_refused() {
        let e = TargetSpec::resolve("riscv64gc-unknown-linux-gnu", &Backend::Cranelift)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no build for target 'riscv64gc"), "{e}");
    }

    #[test]
    fn the_spec_follows_backend_cpu_and_features() {
        let base = TargetSpec::resolve("x86_64", &Backend::Cranelift).unwrap();
        assert_eq!(base.triple(), "x86_64-unknown-linux-gnu");
        assert_eq!(base.cpu(), "x86-64-v2");
        assert_eq!(base.vector, VectorShape::BASELINE);
        assert_eq!(base.costs, TargetCost::for_target("x86_64").unwrap());
        let avx2 = TargetSpec::resolve(
            "x86_64",
            &Backend::Llvm(LlvmConfig {
                features: Some("+avx2,+fma".into()),
                ..LlvmConfig::default()
            }),
        )
        .unwrap();
        assert_eq!((avx2.vector.f32_lanes, avx2.vector.fma), (8, true));
        assert_eq!((avx2.costs.f32_lanes, avx2.costs.fma), (8, true));
        assert!(avx2.costs.gemm_macs_per_ns > base.costs.gemm_macs_per_ns);
        let m4 = TargetSpec::resolve(
            "thumbv7em-none-eabihf",
            &Backend::Llvm(LlvmConfig::default()),
        )
        .unwrap();
        assert!(m4.is_bare_metal());
        assert_eq!(m4.costs, TargetCost::for_target("thumbv7em").unwrap());
        let e = TargetSpec::resolve(
            "x86_64",
            &Backend::Llvm(LlvmConfig {
                cpu: Some("bogus".into()),
                ..LlvmConfig::default()
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--cpu bogus"), "{e}");
    }
}
