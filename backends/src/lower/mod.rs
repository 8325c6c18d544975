//! Graph → kernel IR.
//!
//! Every value gets the [`Buf`] the memory plan ([`crate::plan`]) chose:
//! graph inputs and outputs are the caller's buffers, constants read-only
//! data, everything else lives in the arena; views share their input's
//! buffer and emit no code, element-wise ops may write over their input. Each node is then lowered by
//! its family's lowering (one module per op family, like the op table); an
//! op without a native kernel yet is reported by name, all at once.

mod attention;
mod conv;
pub mod decode;
pub(crate) mod elementwise;
mod linalg;
mod norm;
mod quant;
mod reduce;
mod shape;
mod weights;

use std::collections::HashMap;
use std::fmt;

use smelt_ir::ops::Op;
use smelt_ir::ops::fused::Fused;
use smelt_ir::{DType, Graph, OpDef, ValueDef, ValueId};

use crate::kernel::build::{add, i, mul, var};
use crate::kernel::{Buf, Expr, MemCopy, Program, Scalar, Stmt, VectorShape};
use crate::plan::{MemoryPlan, Place, plan};

/// One node the native code generators refuse: its op, or a dtype or an
/// attribute value of it, has no native kernel yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    /// The node's name (`(math)` for the math expansion, which has no node).
    pub node: String,
    /// The op's name.
    pub op: String,
    /// The dtype with no native support, where that is why it is refused.
    pub dtype: Option<DType>,
    /// Why, in words.
    pub reason: String,
}

impl Unsupported {
    /// A refusal of `node` (an `op`) for `reason`; [`Unsupported::with_dtype`]
    /// names the dtype when that is the reason.
    pub fn new(node: impl Into<String>, op: impl Into<String>, reason: impl Into<String>) -> Self {
        Unsupported {
            node: node.into(),
            op: op.into(),
            dtype: None,
            reason: reason.into(),
        }
    }

    /// The same refusal, which is about `dtype`.
    pub fn with_dtype(self, dtype: DType) -> Self {
        Unsupported {
            dtype: Some(dtype),
            ..self
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node '{}' ({}): {}", self.node, self.op, self.reason)
    }
}

/// Why a graph cannot be lowered.
#[derive(Clone, Debug, PartialEq)]
pub enum LowerError {
    /// Nodes whose ops (or dtypes, or attribute values) have no native kernel
    /// yet, all of them.
    Unsupported(Vec<Unsupported>),
    /// A graph input or output has a dtype the native code cannot pass.
    Signature(String),
    /// A pass produced an invalid kernel program (a compiler bug).
    Verify(Box<crate::verify::VerifyError>),
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LowerError::Unsupported(v) => {
                write!(f, "{} node(s) have no native kernel yet:", v.len())?;
                for u in v {
                    write!(f, "\n  {u}")?;
                }
                Ok(())
            }
            LowerError::Signature(m) => write!(f, "{m}"),
            LowerError::Verify(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LowerError {}

/// One input or output of the compiled model.
#[derive(Clone, Debug, PartialEq)]
pub struct IoInfo {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Size in bytes.
    pub bytes: u64,
}

impl Lowered {
    /// Whether the model carries state between runs (its entry point takes
    /// the state buffer, and it has an init function).
    pub fn has_state(&self) -> bool {
        self.plan.state_bytes > 0
    }
}

/// A lowered model: the kernel program, its signature and the arena size.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// The program.
    pub program: Program,
    /// Inputs in signature order.
    pub inputs: Vec<IoInfo>,
    /// Outputs in signature order.
    pub outputs: Vec<IoInfo>,
    /// The memory plan.
    pub plan: MemoryPlan,
}

/// A tensor operand as lowering sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    /// Where it lives.
    pub buf: Buf,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type.
    pub ty: Scalar,
}

impl Operand {
    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Loads element `index`.
    pub fn load(&self, index: Expr) -> Expr {
        crate::kernel::build::load(self.buf, index, self.ty)
    }
}

/// The result of lowering one node: its statements, or why it cannot be.
pub type NodeResult = Result<Vec<Stmt>, String>;

/// Input `k` of a node, or `None` where the node omits that optional input.
fn input(ins: &[Option<Operand>], k: usize) -> Option<Operand> {
    ins.get(k).cloned().flatten()
}

/// Input `k` of a node, which the op requires; `what` names it in the error.
fn operand(ins: &[Option<Operand>], k: usize, what: &str) -> Result<Operand, String> {
    input(ins, k).ok_or(format!("no {what}"))
}

fn io_info(g: &Graph, id: ValueId) -> Result<IoInfo, LowerError> {
    let v = g.value(id);
    if Scalar::of(v.ty.dtype).is_none() {
        return Err(LowerError::Signature(format!(
            "'{}' is {}, which native code does not pass yet",
            v.name, v.ty
        )));
    }
    Ok(IoInfo {
        name: v.name.clone(),
        dtype: v.ty.dtype,
        shape: v.ty.shape.clone(),
        bytes: v.ty.bytes().unwrap_or(0) as u64,
    })
}

/// How the kernels are scheduled: for which vector unit, on how many
/// threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Schedule {
    /// The target's vector unit, which vectors and register tiles are sized
    /// for.
    pub shape: VectorShape,
    /// The threads hot loops may run on (`--threads`); 0 and 1 mean one,
    /// and then the program has no [`Stmt::Parallel`] loops.
    pub threads: u32,
    /// The least work per thread of a parallel loop (0:
    /// [`crate::kernel::MIN_PARALLEL_WORK`]; tests set 1 to split even tiny
    /// loops).
    pub min_work: u64,
    /// Make no run-time checks (`--unchecked`): indices read from inputs
    /// are only clamped into range ([`Program::unchecked`]).
    pub unchecked: bool,
}

/// Lowers a whole graph for one thread and the 128-bit baseline vector unit.
pub fn lower(g: &Graph) -> Result<Lowered, LowerError> {
    lower_with(g, &Schedule::default())
}

/// Lowers a whole graph, scheduling its kernels as `schedule` says: the hot
/// loops with enough work become [`Stmt::Parallel`] loops when there is more
/// than one thread. The kernel pipeline ([`crate::pipeline`]) up to, not
/// including, the math expansion.
pub fn lower_with(g: &Graph, schedule: &Schedule) -> Result<Lowered, LowerError> {
    use crate::pipeline::{PASSES, Pass, PipelineOptions, run_passes};
    let until = PASSES
        .iter()
        .take_while(|&&p| p != Pass::ExpandMath)
        .count();
    run_passes(g, schedule, &PASSES[..until], &PipelineOptions::default())
}

/// The pipeline's first pass: every node lowered to its loop nest (GEMM
/// schedule included), the outputs not written in place copied.
pub(crate) fn lower_kernels(g: &Graph, schedule: &Schedule) -> Result<Lowered, LowerError> {
    let inputs = g
        .inputs
        .iter()
        .map(|&id| io_info(g, id))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = g
        .outputs
        .iter()
        .map(|&id| io_info(g, id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut p = Program {
        shape: schedule.shape,
        threads: schedule.threads,
        parallel_min_work: schedule.min_work,
        unchecked: schedule.unchecked,
        ..Program::default()
    };
    let mut mem = plan(g);
    p.scratch_base = mem.arena_bytes.div_ceil(crate::plan::ALIGN) * crate::plan::ALIGN;
    let mut const_index: HashMap<ValueId, u32> = HashMap::new();
    for (i, v) in g.values.iter().enumerate() {
        if let ValueDef::Const(b) = &v.def {
            // By reference: an Arc clone of the graph's bytes, not a copy.
            p.consts.push_shared(b.clone());
            const_index.insert(ValueId(i as u32), p.consts.len() as u32 - 1);
        }
    }
    let bufs: HashMap<ValueId, Buf> = mem
        .places
        .iter()
        .enumerate()
        .filter_map(|(i, place)| {
            let buf = match *place {
                Place::Input(k) => Buf::Input(k),
                Place::Output(k) => Buf::Output(k),
                Place::Arena(off) => Buf::Arena(off),
                Place::Const(root) => Buf::Const(*const_index.get(&root)?),
                Place::State(off) => Buf::State(off),
            };
            Some((ValueId(i as u32), buf))
        })
        .collect();
    let operand = |id: ValueId| -> Option<Operand> {
        let v = g.value(id);
        Some(Operand {
            buf: *bufs.get(&id)?,
            shape: v.ty.shape.clone(),
            ty: Scalar::of(v.ty.dtype)?,
        })
    };
    let mut unsupported = Vec::new();
    for (n, node) in g.nodes.iter().enumerate() {
        let ins: Vec<Option<Operand>> = node.inputs.iter().map(|i| i.and_then(operand)).collect();
        let outs: Vec<Option<Operand>> = node.outputs.iter().map(|&o| operand(o)).collect();
        let missing_type = node
            .inputs
            .iter()
            .flatten()
            .chain(&node.outputs)
            .find(|&&id| Scalar::of(g.value(id).ty.dtype).is_none());
        let refuse = |why: String| Unsupported::new(&node.name, node.op.name(), why);
        p.site = (node.name.clone(), node.op.name().to_string());
        let result = match missing_type {
            // Weight ops read their stored weight by its full type (the
            // encoding included).
            _ if matches!(node.op, Op::Weights(_)) => {
                weights::WeightOperands::of(g, node, |id| bufs.get(&id).copied())
                    .and_then(|ops| weights::lower(&node.op, &ops, &mut p))
                    .map_err(refuse)
            }
            Some(&id) => {
                let dtype = g.value(id).ty.dtype;
                Err(refuse(format!("dtype {dtype} has no native support yet")).with_dtype(dtype))
            }
            // A view's output is its input's bytes: nothing to do (but
            // inference Dropout's mask output, which its lowering fills).
            None if mem.views[n] && node.outputs.len() == 1 => Ok(vec![]),
            None => lower_node(&node.op, &ins, &outs, &mut p).map_err(refuse),
        };
        match result {
            Ok(stmts) => p.body.extend(stmts),
            Err(u) => unsupported.push(u),
        }
    }
    if !unsupported.is_empty() {
        return Err(LowerError::Unsupported(unsupported));
    }
    // Outputs not written in place: inputs, constants, views of them, or a
    // second output sharing a buffer.
    for (k, &id) in g.outputs.iter().enumerate() {
        let src = bufs[&id];
        if src != Buf::Output(k as u32) {
            let bytes = g.value(id).ty.bytes().unwrap_or(0) as i64;
            p.body.push(Stmt::Copy(MemCopy::whole(
                Buf::Output(k as u32),
                src,
                bytes,
            )));
        }
    }
    // After the graph outputs, which may read a state input's old value.
    state_copies(g, &mem, &bufs, &mut p);
    if p.scratch_bytes > 0 {
        mem.arena_bytes = p.scratch_base + p.scratch_bytes;
    }
    for s in &g.states {
        io_info(g, s.input)?;
    }
    Ok(Lowered {
        program: p,
        inputs,
        outputs,
        plan: mem,
    })
}

/// The copies that end a run of a stateful graph: each state output into
/// its pair's slot of the state buffer. They come after every kernel, so
/// every read of a state input in this step has happened (the state inputs
/// are read-only in the plan, so no kernel wrote over one either).
///
/// A state output that is another pair's state input (or a view of one:
/// rotating states) is first copied to the scratch area, so no copy reads
/// a slot an earlier copy already overwrote; one that is its own pair's
/// input is unchanged and needs no copy.
fn state_copies(g: &Graph, mem: &MemoryPlan, bufs: &HashMap<ValueId, Buf>, p: &mut Program) {
    let bytes_of = |id: ValueId| g.value(id).ty.bytes().unwrap_or(0) as i64;
    let mut srcs = Vec::with_capacity(g.states.len());
    let mut staged = 0u64;
    for (k, s) in g.states.iter().enumerate() {
        let dst = Buf::State(mem.state_offsets[k]);
        let src = bufs[&s.output];
        let src = match src {
            Buf::State(_) if src == dst => None,
            Buf::State(_) => {
                let off = staged;
                staged +=
                    (bytes_of(s.output) as u64).div_ceil(crate::plan::ALIGN) * crate::plan::ALIGN;
                Some((src, Some(off)))
            }
            other => Some((other, None)),
        };
        srcs.push(src);
    }
    let stage = (staged > 0).then(|| p.scratch(staged));
    let copy = |dst: Buf, src: Buf, bytes: i64| Stmt::Copy(MemCopy::whole(dst, src, bytes));
    let mut finals = Vec::new();
    for (k, (s, src)) in g.states.iter().zip(srcs).enumerate() {
        let Some((src, stage_off)) = src else {
            continue;
        };
        let bytes = bytes_of(s.output);
        let src = match (stage, stage_off) {
            (Some(Buf::Arena(base)), Some(off)) => {
                let tmp = Buf::Arena(base + off);
                p.body.push(copy(tmp, src, bytes));
                tmp
            }
            _ => src,
        };
        finals.push(copy(Buf::State(mem.state_offsets[k]), src, bytes));
    }
    p.body.extend(finals);
}

fn lower_node(
    op: &Op,
    ins: &[Option<Operand>],
    outs: &[Option<Operand>],
    p: &mut Program,
) -> NodeResult {
    let outs: Vec<Operand> = outs
        .iter()
        .map(|o| o.clone().ok_or("an output has no buffer"))
        .collect::<Result<_, _>>()?;
    match op {
        Op::Elementwise(e) => elementwise::lower(e, ins, &outs, p),
        Op::Linalg(l) => linalg::lower(l, ins, &outs, p),
        Op::Layout(l) => shape::lower(l, ins, &outs, p),
        Op::Norm(n) => norm::lower(n, ins, &outs, p),
        Op::Conv(c) => conv::lower(c, ins, &outs, p),
        Op::Reduce(r) => reduce::lower(r, ins, &outs, p),
        Op::Quant(q) => quant::lower(q, ins, &outs, p),
        // Lowered before with their operands' full types (`weights::lower`).
        Op::Weights(_) => Err("a weight op without its operand types".into()),
        Op::Fused(f) => fused(f, ins, &outs, p),
    }
}

/// A fused op: the base op's lowering with the epilogue (residual `Add`,
/// activation) in the kernel's store when the base's kernel applies it (the
/// GEMM micro-kernel, the depthwise and direct convolutions, the element-wise
/// loop of an element-wise base), else followed
/// by the epilogue as passes over the result in place. Either way it is
/// applied exactly once.
fn fused(f: &Fused, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let (base_ins, residual) = match (f.residual(), ins.split_last()) {
        (true, Some((r, rest))) => (rest, Some(r.clone().ok_or("the residual has no buffer")?)),
        (true, None) => return Err("a fused op with a residual has no inputs".into()),
        (false, _) => (ins, None),
    };
    let epi = elementwise::Epi {
        residual,
        act: f.act(),
    };
    let (mut stmts, applied) = match f.base() {
        Op::Conv(c) => conv::lower_with(c, &epi, base_ins, outs, p)?,
        Op::Linalg(l) => linalg::lower_with(l, &epi, base_ins, outs, p)?,
        Op::Elementwise(e) => (elementwise::lower_with(e, &epi, base_ins, outs, p)?, true),
        other => return Err(format!("no fused kernel for a {} base", other.name())),
    };
    if !applied {
        stmts.extend(epi.passes(&outs[0], p)?);
    }
    Ok(stmts)
}

/// Builds a loop nest over `shape`; `body` gets the index expression of each
/// dimension and returns the innermost statements.
pub fn loop_nest(
    p: &mut Program,
    shape: &[usize],
    body: impl FnOnce(&mut Program, &[Expr]) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let vars: Vec<_> = shape.iter().map(|_| p.var(Scalar::I64)).collect();
    let idx: Vec<Expr> = vars.iter().map(|&v| var(v)).collect();
    let mut stmts = body(p, &idx);
    for (d, &v) in vars.iter().enumerate().rev() {
        stmts = vec![Stmt::for_loop(v, i(0), i(shape[d] as i64), stmts)];
    }
    stmts
}

/// The flat index into an operand of `shape` broadcast to an output whose
/// loop indices are `idx` (NumPy broadcasting: trailing dims align).
pub fn broadcast_index(shape: &[usize], idx: &[Expr]) -> Expr {
    let off = idx.len() - shape.len();
    let mut stride = 1usize;
    let mut terms = Vec::new();
    for d in (0..shape.len()).rev() {
        if shape[d] != 1 {
            terms.push(if stride == 1 {
                idx[off + d].clone()
            } else {
                mul(idx[off + d].clone(), i(stride as i64))
            });
        }
        stride *= shape[d];
    }
    terms.into_iter().reduce(add).unwrap_or_else(|| i(0))
}

/// The row-major flat index of `idx` in `shape`.
pub fn flat_index(shape: &[usize], idx: &[Expr]) -> Expr {
    let mut e: Option<Expr> = None;
    for d in 0..shape.len() {
        e = Some(match e {
            None => idx[d].clone(),
            Some(prev) => add(mul(prev, i(shape[d] as i64)), idx[d].clone()),
        });
    }
    e.unwrap_or_else(|| i(0))
}

#[cfg(test)]
mod state_tests {
    use super::*;
    use crate::schedule::eval::Eval;
    use smelt_ir::TensorType;
    use smelt_ir::ops::elementwise::{BinaryFn, Elementwise};

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Two states that rotate (`a <- b`, `b <- a`) and an output that
    /// reads one of them: the output sees the old state, and each slot gets
    /// the other's old bytes (staged, so the second copy does not read what
    /// the first wrote).
    #[test]
    fn rotating_states_are_staged_and_copied_after_every_read() {
        let mut g = Graph::new();
        let ty = TensorType::new(DType::F32, vec![4]);
        let x = g.add_input("x", ty.clone()).unwrap();
        let a = g.add_state_input("a", ty.clone()).unwrap();
        let b = g.add_state_input("b", ty).unwrap();
        let y = g
            .add_node(
                "y",
                Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                vec![Some(a), Some(x)],
                vec!["y".into()],
            )
            .unwrap()[0];
        g.outputs.push(y);
        g.add_state(a, b).unwrap();
        g.add_state(b, a).unwrap();
        smelt_ir::verify::verify(&g).unwrap();
        let l = lower(&g).unwrap();
        assert!(l.has_state());
        assert_eq!(l.plan.state_offsets, vec![0, 64]);
        let p = &l.program;
        let mut ev = Eval::new(p);
        let (av, bv, xv) = ([1f32, 2., 3., 4.], [5f32, 6., 7., 8.], [0.5f32; 4]);
        ev.mem.insert(Buf::Input(0), bytes(&xv));
        ev.mem.insert(Buf::Output(0), vec![0; 16]);
        ev.mem.insert(Buf::State(0), bytes(&av));
        ev.mem.insert(Buf::State(64), bytes(&bv));
        for off in [0, 64] {
            ev.mem.insert(Buf::Arena(p.scratch_base + off), vec![0; 16]);
        }
        ev.run();
        let want_y: Vec<f32> = av.iter().zip(&xv).map(|(a, x)| a + x).collect();
        assert_eq!(ev.f32s(Buf::Output(0)), want_y);
        assert_eq!(ev.f32s(Buf::State(0)), bv);
        assert_eq!(ev.f32s(Buf::State(64)), av);
        // The staging area is part of the arena.
        assert!(l.plan.arena_bytes >= p.scratch_base + 128);
    }
}

#[cfg(test)]
mod scatter_state_tests {
    use super::*;
    use crate::schedule::eval::Eval;
    use smelt_ir::interp::Interpreter;
    use smelt_ir::ops::elementwise::{Elementwise, UnaryFn};
    use smelt_ir::ops::layout::{Layout, Reduction};
    use smelt_ir::{Tensor, TensorType};

    fn bytes<T: Copy>(v: &[T], f: impl Fn(T) -> [u8; 8]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    /// A cache `k: f32[5,3]` appended two rows a step by `ScatterND` at
    /// run-time rows and read through the scatter's output: the kernel
    /// writes the rows into the state slot (no copy of the cache, none into
    /// the slot), matching the interpreter step by step; a row past the end
    /// fails the run's check, naming the node and the row, where the
    /// interpreter refuses it too.
    #[test]
    fn a_cache_is_appended_in_its_slot() {
        let mut g = Graph::new();
        let idx = g
            .add_input("idx", TensorType::new(DType::I64, vec![2, 1]))
            .unwrap();
        let u = g
            .add_input("u", TensorType::new(DType::F32, vec![2, 3]))
            .unwrap();
        let k = g
            .add_state_input("k", TensorType::new(DType::F32, vec![5, 3]))
            .unwrap();
        let scatter = Op::Layout(Layout::ScatterND {
            reduction: Reduction::None,
        });
        let kc = g
            .add_node(
                "kc",
                scatter,
                vec![Some(k), Some(idx), Some(u)],
                vec!["kc".into()],
            )
            .unwrap()[0];
        let relu = Op::Elementwise(Elementwise::Unary(UnaryFn::Relu));
        let y = g
            .add_node("y", relu, vec![Some(kc)], vec!["y".into()])
            .unwrap()[0];
        g.outputs.push(y);
        g.add_state(k, kc).unwrap();
        smelt_ir::verify::verify(&g).unwrap();
        let l = lower(&g).unwrap();
        assert_eq!(l.plan.state_in_place, 1);
        let mut copies = 0;
        for s in &l.program.body {
            s.walk(&mut |s| {
                copies += usize::from(
                    matches!(s, Stmt::Copy(c) if c.dst == Buf::State(0) && c.bytes == i(60)),
                )
            });
        }
        assert_eq!(copies, 0, "{}", l.program.print());
        let it = Interpreter::new(&g);
        let mut state = it.zero_state().unwrap();
        let mut slot = vec![0u8; 60];
        let steps: [[i64; 2]; 4] = [[0, 1], [3, 2], [-1, 4], [7, -9]];
        for (n, rows) in steps.iter().enumerate() {
            let uv: Vec<f32> = (0..6).map(|j| (n * 6 + j) as f32 - 7.5).collect();
            let mut ev = Eval::new(&l.program);
            ev.mem
                .insert(Buf::Input(0), bytes(&rows[..], i64::to_le_bytes));
            ev.mem.insert(
                Buf::Input(1),
                uv.iter().flat_map(|x| x.to_le_bytes()).collect(),
            );
            ev.mem.insert(Buf::Output(0), vec![0; 60]);
            ev.mem.insert(Buf::State(0), slot.clone());
            ev.run();
            slot = ev.mem[&Buf::State(0)].clone();
            assert_eq!(slot.len(), 60);
            let ins = vec![
                Tensor::from_vec(vec![2, 1], rows.to_vec()).unwrap(),
                Tensor::from_vec(vec![2, 3], uv.clone()).unwrap(),
            ];
            if n < 3 {
                let (outs, next) = it.step(ins, state).unwrap();
                assert_eq!(ev.f32s(Buf::Output(0)), outs[0].as_slice::<f32>().unwrap());
                assert_eq!(ev.f32s(Buf::State(0)), next[0].as_slice::<f32>().unwrap());
                state = next;
            } else {
                // Row 7 of a cache of 5: the first update's check fails.
                assert!(it.step(ins, state.clone()).is_err());
                let (check, value) = ev.fault.expect("no fault for row 7");
                assert_eq!(value, 7);
                let c = &l.program.checks[check as usize];
                assert_eq!((c.node.as_str(), c.op.as_str()), ("kc", "ScatterND"));
                assert_eq!((c.what.as_str(), c.lo, c.hi), ("index", -5, 5));
            }
        }
    }
}

#[cfg(test)]
mod unsupported_tests {
    use super::*;
    use smelt_ir::TensorType;
    use smelt_ir::ops::elementwise::Elementwise;

    /// A cast through f16 lowers (every dtype has a kernel scalar, so no
    /// node is refused for its dtype), and the pipeline leaves no half type
    /// for the code generators.
    #[test]
    fn a_cast_through_f16_lowers_and_expands() {
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![2]))
            .unwrap();
        let cast = |to| Op::Elementwise(Elementwise::Cast { to });
        let h = g
            .add_node("h", cast(DType::F16), vec![Some(x)], vec!["h".into()])
            .unwrap()[0];
        let y = g
            .add_node("y", cast(DType::BF16), vec![Some(h)], vec!["y".into()])
            .unwrap()[0];
        g.outputs.push(y);
        assert!(DType::ALL.iter().all(|&d| Scalar::of(d).is_some()));
        let l = lower(&g).unwrap();
        assert_eq!(l.outputs[0].dtype, DType::BF16);
        assert_eq!(l.outputs[0].bytes, 4);
        assert!(!crate::kernel::half::has_halves(&l.program));
    }
}
