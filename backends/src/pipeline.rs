//! The kernel pipeline: graph → kernel IR → the program the code generators
//! take, as one list of passes with the kernel-IR verifier
//! ([`crate::verify`]) between them (Cranelift's `Context::compile` with
//! `verify_if` is the model).
//!
//! [`PASSES`] in order:
//! 1. [`Pass::Lower`]: every node to its loop nest ([`crate::lower`]). The
//!    GEMM schedule runs inside it: the packed micro-kernel of
//!    [`crate::schedule::gemm`] is chosen per node, because only the node's
//!    lowering knows the operand layout (a transposed `B`, im2col's column
//!    matrix, a fused epilogue folded into the micro-kernel's store) and
//!    packs its weights from the graph's constant bytes. Turning the naive
//!    loop nest back into a GEMM afterwards would mean recognising it again,
//!    so that call stays in lowering; it is the only schedule that does.
//! 2. [`Pass::ExpandHalves`]: `f16`/`bf16` loads, stores and casts to `U16`
//!    accesses and integer conversions, their arithmetic to `f32`
//!    ([`crate::kernel::half`]); before the vectorizer, which then sees
//!    only the expanded form, and the code generators, which never see a
//!    half type.
//! 3. [`Pass::Vectorize`]: inner element-wise loops to vector loops.
//! 4. [`Pass::LegalizeParallel`]: parallel loops to the top level, or plain.
//! 5. [`Pass::DropUnusedConsts`]: constants replaced by packed copies.
//! 6. [`Pass::ExpandMath`]: `exp`, `tanh`, … to polynomials.
//!
//! The verifier runs after each pass in debug builds and tests, and in
//! release builds when [`PipelineOptions::verify`] asks.

use smelt_ir::Graph;

use crate::lower::{LowerError, Lowered, Schedule, Unsupported};
use crate::verify::{BufSizes, verify};

/// One pass of the kernel pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Graph to kernel IR, GEMM schedule included.
    Lower,
    /// Half types to `U16` memory and `f32` arithmetic.
    ExpandHalves,
    /// Element-wise loops to vector loops.
    Vectorize,
    /// Parallel loops made outlinable.
    LegalizeParallel,
    /// Constants nothing reads emptied.
    DropUnusedConsts,
    /// Math functions expanded into polynomials.
    ExpandMath,
}

impl Pass {
    /// The pass's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Lower => "lower",
            Pass::ExpandHalves => "expand-halves",
            Pass::Vectorize => "vectorize",
            Pass::LegalizeParallel => "legalize-parallel",
            Pass::DropUnusedConsts => "drop-unused-consts",
            Pass::ExpandMath => "expand-math",
        }
    }

    /// Runs a pass after [`Pass::Lower`] on the lowered program.
    fn run(self, l: &mut Lowered) -> Result<(), LowerError> {
        let p = &mut l.program;
        match self {
            // `run` makes the program with it; listed for the verifier.
            Pass::Lower => {}
            Pass::ExpandHalves => crate::kernel::half::expand_halves(p).map_err(|e| {
                LowerError::Unsupported(vec![Unsupported::new("(halves)", "expansion", e)])
            })?,
            Pass::Vectorize => {
                crate::schedule::vectorize::vectorize(p);
            }
            Pass::LegalizeParallel => crate::kernel::legalize_parallel(p),
            Pass::DropUnusedConsts => crate::schedule::drop_unused_consts(p),
            Pass::ExpandMath => crate::mathexp::expand(p).map_err(|e| {
                LowerError::Unsupported(vec![Unsupported::new("(math)", "expansion", e)])
            })?,
        }
        Ok(())
    }
}

/// Every pass, in the order the pipeline runs them.
pub const PASSES: [Pass; 6] = [
    Pass::Lower,
    Pass::ExpandHalves,
    Pass::Vectorize,
    Pass::LegalizeParallel,
    Pass::DropUnusedConsts,
    Pass::ExpandMath,
];

/// How the pipeline runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Verify the program after every pass (default: in debug builds).
    pub verify: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            verify: cfg!(debug_assertions),
        }
    }
}

/// The buffer sizes of a lowered program, for the verifier.
pub fn buf_sizes(l: &Lowered) -> BufSizes {
    BufSizes {
        inputs: l.inputs.iter().map(|i| i.bytes).collect(),
        outputs: l.outputs.iter().map(|o| o.bytes).collect(),
        arena: l.plan.arena_bytes,
        state: l.plan.state_bytes,
    }
}

/// Runs `passes` (which must start with [`Pass::Lower`]) on `g`, verifying
/// after each when `opts` says so.
pub fn run_passes(
    g: &Graph,
    schedule: &Schedule,
    passes: &[Pass],
    opts: &PipelineOptions,
) -> Result<Lowered, LowerError> {
    let mut l = crate::lower::lower_kernels(g, schedule)?;
    let mut legal = false;
    for &pass in passes {
        pass.run(&mut l)?;
        legal |= pass == Pass::LegalizeParallel;
        if opts.verify {
            verify(&l.program, &buf_sizes(&l), pass.name(), legal)
                .map_err(|e| LowerError::Verify(Box::new(e)))?;
        }
    }
    Ok(l)
}

/// The whole pipeline: `g` lowered, scheduled and expanded, ready for a code
/// generator.
pub fn run(g: &Graph, schedule: &Schedule, opts: &PipelineOptions) -> Result<Lowered, LowerError> {
    run_passes(g, schedule, &PASSES, opts)
}
