//! The extraction cost model: estimated latency of a graph on a target, plus
//! a small charge for memory.
//!
//! For one e-node (one kernel):
//!
//! ```text
//! latency = overhead + max(macs / mac_rate(op), bytes_moved / bandwidth) [ns]
//! memory  = bytes of a constant (weights end up in the binary)          [B]
//! cost    = latency + memory * NS_PER_BYTE
//! ```
//!
//! - `macs` is the op table's work count (`OpDef::macs`): multiply-accumulates
//!   for matrix ops and convolutions, elementary operations otherwise.
//! - `mac_rate(op)` depends on the kernel the backends generate for the op:
//!   f32 `MatMul`, `Gemm` and `Conv` (and their `Fused*` forms with a
//!   residual and/or activation epilogue) run on the packed, register-blocked GEMM
//!   micro-kernel (`backends/src/schedule/gemm.rs`) at `gemm_macs_per_ns`;
//!   every other op is a plain loop nest (at best vectorized innermost) at
//!   `loop_macs_per_ns`. This is what keeps the fused `Attention` op from
//!   beating two GEMM-backed `MatMul`s it would replace: its loop nest
//!   computes the scores at the loop rate (measured on the encoder: -O0
//!   with the `MatMul`s 75 ms, the fused op 92 ms). The 8-bit integer
//!   products (`QLinearConv`, `QLinearMatMul`, `ConvInteger`,
//!   `MatMulInteger` on `i8`/`u8`, see [`runs_on_int8_gemm`]) run at
//!   `int8_gemm_macs_per_ns`, the rate of a vectorised int8 GEMM on the
//!   target (see the table): this is what prices a QDQ model's integer form
//!   (`rules/qlinear.rs`) against its float form.
//! - `bytes_moved` is every operand's and every result's size: a kernel reads
//!   its inputs and writes its outputs once at least; that is what an
//!   elementwise chain pays per op and what fusion saves. A fused op
//!   (`FusedConv`, …, `FusedElementwise` at the loop rate) reads its
//!   residual and writes its result once, where the unfused `Add` and
//!   activation each read and write the whole result again and pay the
//!   kernel overhead: the fused form is cheaper by those passes and no more.
//! - `overhead` is the per-kernel fixed cost (loop set-up, call, a pass over
//!   the arena that cannot overlap with the previous kernel).
//! - Graph inputs, absent operands and tuple reads cost nothing; constants
//!   cost their bytes times `NS_PER_BYTE`, so folding `W * k` into one
//!   constant `W'` wins over keeping `W` and multiplying at run time, and a
//!   fold that duplicates a large weight is charged for it.
//!
//! The e-graph extraction is a tree cost (egg's `Extractor`): a class used
//! twice is counted twice. That over-charges shared subgraphs equally in
//! every alternative, so the choice between alternatives of one class is
//! still driven by the class's own cost.
//!
//! The per-target numbers are rough single-core figures for the code the
//! backends generate today (LLVM, 128-bit vectors, no threads), not peak
//! hardware numbers: x86_64's come from BENCHMARKS.md (the GEMM-backed CNN
//! layers reach 10–13 MAC/ns, loop nests 1–2); the others are scaled by
//! each core's vector width and clock. They only have to rank alternatives,
//! never to predict wall time.
//!
//! The int8 GEMM rates are the f32 GEMM rate times what each target's
//! integer dot instructions gain over its f32 FMA (the comment at each entry
//! says where the factor comes from): they price vectorised int8 kernels.
//! Where the lowering still runs an integer product as scalar loops the
//! integer form is slower than these figures say, so a QDQ model compiled
//! today may choose it and lose; that is the kernels' gap to close, not a
//! reason to price the form by the loops it happens to get now.
//!
//! The table's figures are for each target's baseline vector unit (4 `f32`
//! lanes; FMA on aarch64 and the Cortex-M4F, not on the x86-64-v2 or armv7
//! baselines). [`TargetCost::for_vector`] scales them to the vector unit the
//! code is actually generated for (`--cpu`, `--features`: the backends'
//! `TargetSpec` carries it), so the cost model and the schedules see the
//! same machine: both compute rates grow with the lane count, and the GEMM
//! rate by a quarter more with FMA (the micro-kernel's multiply and add
//! become one instruction; measured gains on ResNet-18 were 1.9x for 8 lanes
//! with FMA and 3.5x for 16, below the lane ratio, so the figures stay
//! rough). Memory bandwidth does not change with the vector unit.

use egg::{CostFunction, Id, Language};
use smelt_ir::OpDef;
use smelt_ir::TensorType;

use super::analysis::EG;
use super::lang::ENode;

/// Throughput figures of one target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetCost {
    /// Target name as the CLI spells it.
    pub name: &'static str,
    /// Multiply-accumulates per nanosecond of the GEMM micro-kernel.
    pub gemm_macs_per_ns: f64,
    /// 8-bit integer multiply-accumulates per nanosecond of the int8 GEMM
    /// kernel (int8 × int8 into `i32`).
    pub int8_gemm_macs_per_ns: f64,
    /// Multiply-accumulates (or elementary operations) per nanosecond of a
    /// plain loop nest.
    pub loop_macs_per_ns: f64,
    /// Bytes read or written per nanosecond.
    pub bytes_per_ns: f64,
    /// Fixed cost of one kernel, in nanoseconds.
    pub kernel_overhead_ns: f64,
    /// `f32` lanes per vector of the vector unit the figures are for.
    pub f32_lanes: u32,
    /// Whether that vector unit has fused multiply-add.
    pub fma: bool,
}

/// Charge per byte of constant data, in nanoseconds: a megabyte of extra
/// weights costs as much as 100 µs of run time.
pub const NS_PER_BYTE: f64 = 1e-4;

/// The per-target table.
pub const TARGETS: [TargetCost; 4] = [
    TargetCost {
        name: "x86_64",
        gemm_macs_per_ns: 10.0,
        // 3x f32: AVX2 `vpmaddubsw`+`vpmaddwd` and AVX-512 VNNI `vpdpbusd`
        // do 2-4x the f32 FMA's MACs per instruction (onnxruntime's and
        // oneDNN's int8 GEMMs reach ~2-4x their f32 throughput).
        int8_gemm_macs_per_ns: 30.0,
        loop_macs_per_ns: 2.0,
        bytes_per_ns: 10.0,
        kernel_overhead_ns: 200.0,
        f32_lanes: 4,
        fma: false,
    },
    TargetCost {
        name: "aarch64",
        gemm_macs_per_ns: 4.0,
        // 3x f32: NEON `sdot` multiplies 16 int8 pairs per instruction
        // against 4 f32 FMAs (4x peak; ~3x in ruy/XNNPACK int8 GEMMs).
        int8_gemm_macs_per_ns: 12.0,
        loop_macs_per_ns: 1.0,
        bytes_per_ns: 6.0,
        kernel_overhead_ns: 300.0,
        f32_lanes: 4,
        fma: true,
    },
    TargetCost {
        name: "armv7",
        gemm_macs_per_ns: 1.0,
        // 2x f32: NEON `vmull.s8` + `vpadal.s16` (8 products, then pairwise
        // accumulation) against 4 f32 `vmla` lanes (gemmlowp's ratio).
        int8_gemm_macs_per_ns: 2.0,
        loop_macs_per_ns: 0.25,
        bytes_per_ns: 1.5,
        kernel_overhead_ns: 800.0,
        f32_lanes: 4,
        fma: false,
    },
    TargetCost {
        name: "cortex-m4",
        gemm_macs_per_ns: 0.1,
        // 2x f32: SMLAD does two 16-bit MACs per cycle, the FPU one f32
        // MAC (CMSIS-NN's int8 kernels widen pairs with SXTB16 first).
        int8_gemm_macs_per_ns: 0.2,
        loop_macs_per_ns: 0.03,
        bytes_per_ns: 0.2,
        kernel_overhead_ns: 2000.0,
        f32_lanes: 4,
        fma: true,
    },
];

impl TargetCost {
    /// The figures of a target by name or triple (`x86_64`,
    /// `aarch64-unknown-linux-gnu`, `thumbv7em-none-eabihf`, …); `None` when
    /// unknown.
    pub fn for_target(name: &str) -> Option<TargetCost> {
        let arch = name.split('-').next().unwrap_or(name);
        let key = match arch {
            "x86_64" => "x86_64",
            "aarch64" | "arm64" => "aarch64",
            "armv7" | "arm" | "armv7a" => "armv7",
            "cortex" | "thumbv7em" | "thumbv7m" => "cortex-m4",
            _ => return None,
        };
        TARGETS.iter().copied().find(|t| t.name == key)
    }

    /// These figures for a vector unit of `f32_lanes` lanes, with or without
    /// FMA (see the module documentation); the figures of the table's own
    /// vector unit are returned unchanged.
    pub fn for_vector(self, f32_lanes: u32, fma: bool) -> TargetCost {
        let lanes = f64::from(f32_lanes.max(1)) / f64::from(self.f32_lanes.max(1));
        let fma_gain = match (self.fma, fma) {
            (false, true) => 1.25,
            (true, false) => 1.0 / 1.25,
            _ => 1.0,
        };
        TargetCost {
            gemm_macs_per_ns: self.gemm_macs_per_ns * lanes * fma_gain,
            int8_gemm_macs_per_ns: self.int8_gemm_macs_per_ns * lanes,
            loop_macs_per_ns: self.loop_macs_per_ns * lanes,
            f32_lanes,
            fma,
            ..self
        }
    }
}

fn bytes(t: &TensorType) -> f64 {
    t.bytes().unwrap_or(usize::MAX) as f64
}

/// Whether a node of the op named `op` (its [`smelt_ir::OpDef::name`]) whose
/// tensors have the element types `dtypes` runs on the packed GEMM
/// micro-kernel: `MatMul`, `Gemm`, `Conv` and their fused forms on f32.
/// The one answer the cost model (the GEMM rate) and the lowering
/// (`smelt_backends`' `fast_matmul`, `fast_gemm`, `fast_conv`) share; the
/// lowering may still fall back to plain loops for layouts this does not
/// see (a grouped or non-2-D `Conv`, `Gemm` with `alpha ≠ 1`).
pub fn runs_on_gemm(op: &str, dtypes: impl IntoIterator<Item = smelt_ir::DType>) -> bool {
    matches!(
        op,
        "MatMul" | "Gemm" | "Conv" | "FusedMatMul" | "FusedGemm" | "FusedConv"
    ) && dtypes.into_iter().all(|d| d == smelt_ir::DType::F32)
}

/// Whether a node of the op named `op` with operand element types
/// `dtypes` is an 8-bit integer product the cost model prices at the int8
/// GEMM rate: `QLinearConv`, `QLinearMatMul`, `ConvInteger` and
/// `MatMulInteger` whose integer operands are `i8` or `u8` (scales `f32`,
/// accumulators and bias `i32`). The lowering of these ops
/// (`smelt_backends`' `lower/quant`) is where that rate must hold.
pub fn runs_on_int8_gemm(op: &str, dtypes: impl IntoIterator<Item = smelt_ir::DType>) -> bool {
    use smelt_ir::DType;
    is_integer_product(op)
        && dtypes
            .into_iter()
            .all(|d| matches!(d, DType::I8 | DType::U8 | DType::I32 | DType::F32))
}

/// Whether `op` is one of the 8-bit integer products of the ONNX
/// quantization ops (whatever kernel runs it).
fn is_integer_product(op: &str) -> bool {
    matches!(
        op,
        "QLinearConv" | "QLinearMatMul" | "ConvInteger" | "MatMulInteger"
    )
}

/// The operand index of the weight of an 8-bit integer product (the
/// operand the packed int8 GEMM needs constant).
fn integer_weight_operand(op: &str) -> Option<usize> {
    match op {
        "QLinearConv" | "QLinearMatMul" => Some(3),
        "ConvInteger" | "MatMulInteger" => Some(1),
        _ => None,
    }
}

/// Estimated cost of one e-node given the e-graph's class data.
pub fn node_cost(eg: &EG, target: &TargetCost, enode: &ENode) -> f64 {
    match enode {
        ENode::Input(_) | ENode::Absent | ENode::Get(..) => 0.0,
        ENode::Weight(v) => eg.analysis.weights[*v as usize]
            .as_ref()
            .map(|w| bytes(&w.0) * NS_PER_BYTE)
            .unwrap_or(0.0),
        ENode::Lit(i) => {
            let t = &eg.analysis.lits[*i as usize];
            bytes(&TensorType::new(t.dtype(), t.shape().to_vec())) * NS_PER_BYTE
        }
        ENode::Op(o, args) => {
            let ins: Vec<Option<&TensorType>> =
                args.iter().map(|&a| eg[a].data.ty.as_ref()).collect();
            let outs: Vec<TensorType> = op_outputs(eg, enode);
            let macs = o.op.macs(&ins, &outs) as f64;
            let on_gemm = runs_on_gemm(o.op.name(), outs.iter().map(|t| t.dtype));
            // The packed int8 GEMM takes constant weights and one group;
            // grouped (depthwise) convolutions and products of two run-time
            // tensors still run on the scalar loops.
            let grouped = o.op.attrs().iter().any(|(k, v)| *k == "group" && v != "1");
            let weight_const = integer_weight_operand(o.op.name())
                .and_then(|i| args.get(i))
                .is_some_and(|&a| eg[a].data.is_const);
            let packed = !grouped && weight_const;
            let on_int8 = packed
                && runs_on_int8_gemm(
                    o.op.name(),
                    ins.iter()
                        .flatten()
                        .map(|t| t.dtype)
                        .chain(outs.iter().map(|t| t.dtype)),
                );
            let rate = if on_gemm {
                target.gemm_macs_per_ns
            } else if on_int8 {
                target.int8_gemm_macs_per_ns
            } else if is_integer_product(o.op.name()) {
                // Scalar loops: one lane, and a zero-point correction per MAC.
                target.loop_macs_per_ns / f64::from(target.f32_lanes.max(1))
            } else {
                target.loop_macs_per_ns
            };
            let moved: f64 = ins.iter().flatten().map(|t| bytes(t)).sum::<f64>()
                + outs.iter().map(bytes).sum::<f64>();
            target.kernel_overhead_ns + (macs / rate).max(moved / target.bytes_per_ns)
        }
    }
}

/// The result types of an op e-node (from its class data).
fn op_outputs(eg: &EG, enode: &ENode) -> Vec<TensorType> {
    // The class of an e-node is not known here; an op node's types come from
    // inference over its operands, which the analysis already did for the
    // class it lives in. Look the node up to reach that class.
    match eg.lookup(enode.clone()) {
        Some(id) => {
            let d = &eg[id].data;
            if let Some(t) = &d.tuple {
                t.to_vec()
            } else {
                d.ty.iter().cloned().collect()
            }
        }
        None => vec![],
    }
}

/// egg cost function over [`node_cost`].
pub struct LatencyCost<'a> {
    /// The saturated e-graph.
    pub egraph: &'a EG,
    /// The target's figures.
    pub target: TargetCost,
}

impl CostFunction<ENode> for LatencyCost<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &ENode, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = node_cost(self.egraph, &self.target, enode);
        enode.fold(own, |acc, id| acc + costs(id))
    }
}

/// The cost function of the soundness tests: rewritten forms first, so the
/// extracted graph uses every rule's right-hand side where one applied.
pub struct PreferNew<'a> {
    /// The saturated e-graph.
    pub egraph: &'a EG,
    /// The e-nodes of the input graph (children canonicalized after
    /// saturation); they are charged heavily.
    pub original: &'a std::collections::HashSet<ENode>,
}

impl CostFunction<ENode> for PreferNew<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &ENode, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let canon = enode.clone().map_children(|c| self.egraph.find(c));
        let own = match enode {
            ENode::Op(..) if self.original.contains(&canon) => 1000.0,
            ENode::Op(..) => 1.0,
            _ => 0.0,
        };
        enode.fold(own, |acc, id| acc + costs(id))
    }
}
