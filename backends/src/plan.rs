//! The memory plan: where every value's bytes live, chosen at compile time.
//!
//! Values are first grouped into *storages* by aliasing, in graph order:
//! - a view (Reshape, Flatten, Squeeze, Unsqueeze, Identity, inference
//!   Dropout's data output, a Cast to the same dtype, a Transpose that keeps
//!   the order of the non-unit dims) joins its input's storage: no copy, and
//!   the storage lives as long as any of its views;
//! - an element-wise op writes in place over an input when that input's
//!   storage dies at this op (no member is read later, none is a graph
//!   output), has the output's shape and element size (so it is not
//!   broadcast: each element is loaded before the store to the same index),
//!   every other operand from that storage is read unbroadcast too, and the
//!   storage is writable (computed by a node, not a graph input or constant);
//!   a fused element-wise chain likewise, and a fused f32 convolution over its
//!   residual (and only when no other operand shares that storage);
//! - a scatter (`ScatterND`, `ScatterElements`) writes its updates in place
//!   over its data input when that storage dies at the scatter and no other
//!   operand (indices, updates) shares it: a writable storage (its kernel
//!   then skips the copy of the data), or a state input's storage when the
//!   scatter's output is that state's paired output (see below).
//!
//! A storage rooted at a graph input is that read-only input buffer; one
//! rooted at a constant is the constant's data. A computed storage holding a
//! graph output is that output's buffer (the lowest-numbered one when it holds
//! several), so producers write straight into the caller's memory; every
//! other graph output is copied at the end. The remaining storages are placed
//! in one arena by [`smelt_passes::memory::pack`], reported against the
//! liveness lower bound of those storages and against plain first-fit.
//!
//! Persistent state ([`Graph::states`]) lives in a region of its own, the
//! state buffer, laid out here at compile time: pair `k`'s slot is at
//! [`MemoryPlan::state_offsets`]`[k]` (aligned to [`ALIGN`]), and
//! [`MemoryPlan::state_bytes`] is the buffer's size. A state input's storage
//! (and every view of it) is [`Place::State`]: read-only like a graph
//! input, so nothing is ever written over it in place, and packing never
//! sees it. A state output is planned like a graph output that lives to the
//! end of the run; lowering copies it into its slot after the last node,
//! once every read of the state input in this step is done.
//!
//! The one exception is the in-place scatter over a state (a KV cache
//! appended at a run-time position): when `ScatterND`/`ScatterElements`
//! reads state input `s` as its data, its output is `s`'s paired output,
//! and `s`'s storage dies at the scatter (no node after it reads `s` or a
//! view of it, and it is no graph output and no other pair's output), the
//! output joins `s`'s storage: the kernel writes only the updated elements
//! into the slot, later readers of the output read the slot, and no copy
//! into the slot is left (its output already is its slot). Writing before
//! the last node is safe there because every read of the old value has
//! happened: the nodes before the scatter ran before it, none after it
//! reads the old value, and the scatter itself reads the data only at the
//! element it then writes (a reduction combines the old element with the
//! update in the same store).
//!
//! **Architecture Invariant:** the state region is never reused by packing,
//! and a slot is written only after the last read of its old value in the
//! step: by the copies after the last node, or by an in-place scatter that
//! is that value's last reader.

use smelt_ir::ops::Op;
use smelt_ir::ops::elementwise::Elementwise;
use smelt_ir::ops::layout::Layout;
use smelt_ir::shape::norm_axis;
use smelt_ir::{Graph, ValueDef, ValueId};
use smelt_passes::memory::{Item, first_fit, greedy_by_size, intervals, items_bound, pack};

/// Whether `op` may write its result in place over an operand's storage:
/// `Some(false)` for an element-wise op (plain or fused: every element is
/// loaded before the store to the same index), `Some(true)` for a fused f32
/// convolution with a residual, which may take over the residual's storage
/// only (every `Conv` kernel adds the residual in its store, reading each
/// element just before writing it: `lower::conv::lower_with`); `None`
/// otherwise.
fn in_place_kind(g: &Graph, op: &Op, out: ValueId) -> Option<bool> {
    match op {
        Op::Elementwise(_) => Some(false),
        Op::Fused(f) => match f.base() {
            Op::Elementwise(_) => Some(false),
            Op::Conv(_) if f.residual() && g.value(out).ty.dtype == smelt_ir::DType::F32 => {
                Some(true)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether `op` is a scatter: its output is its first input (the data) with
/// some elements replaced or combined with the updates. Its kernel copies
/// the data into the output, then reads each updated element of the output
/// only just before writing it, so it may update the data's storage itself
/// (`lower::shape::scatter`: the copy is skipped when both share a buffer).
fn is_scatter(op: &Op) -> bool {
    matches!(
        op,
        Op::Layout(Layout::ScatterND { .. } | Layout::ScatterElements { .. })
    )
}

/// Alignment of every arena offset, in bytes (a cache line, enough for any vector).
pub const ALIGN: u64 = 64;

/// Where a value's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Graph input `k` (read-only).
    Input(u32),
    /// Graph output `k` (the caller's buffer).
    Output(u32),
    /// The data of this constant value.
    Const(ValueId),
    /// The arena at this byte offset.
    Arena(u64),
    /// The state buffer at this byte offset (a state input and its views).
    State(u64),
}

/// The memory plan of a graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The place of every value.
    pub places: Vec<Place>,
    /// Per node: its (first) output aliases its first input, so it needs no code
    /// for that output.
    pub views: Vec<bool>,
    /// Total arena size in bytes (the packing used).
    pub arena_bytes: u64,
    /// The arena plain first-fit in order of first use would need.
    pub first_fit_bytes: u64,
    /// The arena largest-first greedy placement would need.
    pub greedy_bytes: u64,
    /// The liveness lower bound of the arena: the largest total of arena
    /// storages live at one node.
    pub lower_bound: u64,
    /// Bytes of copies the views no longer make.
    pub copy_bytes_removed: u64,
    /// Element-wise nodes (and scatters) that write over their input.
    pub in_place: usize,
    /// Scatters that update a state slot in place (a KV cache appended at
    /// its position): no copy of the state, none into its slot.
    pub state_in_place: usize,
    /// Per state pair ([`Graph::states`]), its slot's offset in the state
    /// buffer.
    pub state_offsets: Vec<u64>,
    /// Size of the state buffer in bytes (0 for a stateless graph), a
    /// multiple of [`ALIGN`].
    pub state_bytes: u64,
}

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN).saturating_mul(ALIGN)
}

/// Whether `op`'s first output is its first input's bytes unchanged. `false`
/// is always a safe answer (the node then copies).
fn is_view(g: &Graph, op: &Op, input: ValueId, output: ValueId) -> bool {
    let (x, y) = (&g.value(input).ty, &g.value(output).ty);
    if x.dtype != y.dtype || x.bytes().ok() != y.bytes().ok() {
        return false;
    }
    if let Op::Layout(Layout::Transpose { perm }) = op {
        let rank = x.shape.len();
        let perm: Vec<usize> = match perm {
            Some(p) => match p.iter().map(|&a| norm_axis(a, rank)).collect() {
                Ok(p) => p,
                Err(_) => return false,
            },
            None => (0..rank).rev().collect(),
        };
        // Moving only size-1 dims keeps every element's flat index.
        let kept: Vec<usize> = perm.into_iter().filter(|&a| x.shape[a] != 1).collect();
        return kept.windows(2).all(|w| w[0] < w[1]);
    }
    // Every other op computes or moves elements: `false` is the safe answer
    // for an op added later.
    match op {
        Op::Layout(l) => l.is_view(),
        Op::Elementwise(e) => matches!(e, Elementwise::Cast { .. } | Elementwise::CastLike),
        _ => false,
    }
}

/// A group of values sharing bytes.
struct Storage {
    root: ValueId,
    members: Vec<ValueId>,
    /// Last node at which a member is read (`usize::MAX` when one is a graph output).
    end: usize,
}

/// Plans where every value of `g` lives.
pub fn plan(g: &Graph) -> MemoryPlan {
    let iv = intervals(g);
    let n_nodes = g.nodes.len();
    let mut end: Vec<usize> = iv.iter().map(|i| i.map_or(0, |i| i.end)).collect();
    // State outputs are read after the last node, by the copy into their
    // slot: like graph outputs they live to the end.
    for &o in g.outputs.iter().chain(g.states.iter().map(|s| &s.output)) {
        end[o.index()] = usize::MAX;
    }
    let bytes = |id: ValueId| g.value(id).ty.bytes().unwrap_or(0) as u64;
    let mut of: Vec<usize> = Vec::with_capacity(g.values.len());
    let mut storages: Vec<Storage> = Vec::with_capacity(g.values.len());
    for i in 0..g.values.len() {
        let id = ValueId(i as u32);
        of.push(i);
        storages.push(Storage {
            root: id,
            members: vec![id],
            end: end[i],
        });
    }
    let mut views = vec![false; n_nodes];
    let (mut copy_bytes_removed, mut in_place, mut state_in_place) = (0u64, 0usize, 0usize);
    let writable = |s: &Storage| matches!(g.value(s.root).def, ValueDef::Node(..));
    // The pair whose state input `v` is.
    let pair_of = |v: ValueId| g.states.iter().position(|s| s.input == v);
    for (n, node) in g.nodes.iter().enumerate() {
        let Some(&out) = node.outputs.first() else {
            continue;
        };
        let mut join = None;
        if let Some(Some(x)) = node.inputs.first()
            && is_view(g, &node.op, *x, out)
        {
            join = Some(of[x.index()]);
            views[n] = true;
            copy_bytes_removed += bytes(out);
        } else if let Some(only_residual) = in_place_kind(g, &node.op, out)
            && node.outputs.len() == 1
        {
            let ot = &g.value(out).ty;
            // Per element: element i is read before element i is written,
            // so the sizes must match element for element (operands and
            // results of nodes are dense: the verifier refuses encodings there).
            let same = |v: ValueId| {
                let t = &g.value(v).ty;
                t.shape == ot.shape
                    && t.is_dense()
                    && ot.is_dense()
                    && t.dtype.elem_bytes() == ot.dtype.elem_bytes()
            };
            let ins: Vec<ValueId> = node.inputs.iter().flatten().copied().collect();
            let cands = if only_residual {
                &ins[ins.len().saturating_sub(1)..]
            } else {
                &ins[..]
            };
            join = cands.iter().map(|x| of[x.index()]).find(|&s| {
                let st = &storages[s];
                let from_s = ins.iter().filter(|v| of[v.index()] == s);
                writable(st)
                    && st.end <= n
                    && if only_residual {
                        // The residual is the storage's only operand: the
                        // convolution reads its other operands while it
                        // writes the result.
                        from_s.count() == 1
                    } else {
                        from_s.copied().all(same)
                    }
            });
            if join.is_some() {
                in_place += 1;
            }
        } else if is_scatter(&node.op)
            && node.outputs.len() == 1
            && let Some(Some(x)) = node.inputs.first()
        {
            let s = of[x.index()];
            let st = &storages[s];
            let (xt, ot) = (&g.value(*x).ty, &g.value(out).ty);
            // The storage dies here (no later reader, no graph or state
            // output among its members: those live to the end), and only
            // the data operand comes from it.
            let dies_here = st.end <= n
                && node
                    .inputs
                    .iter()
                    .flatten()
                    .filter(|v| of[v.index()] == s)
                    .count()
                    == 1
                && xt.is_dense()
                && xt.bytes().ok() == ot.bytes().ok();
            let into_state = pair_of(st.root).is_some_and(|k| g.states[k].output == out);
            if dies_here && (writable(st) || into_state) {
                join = Some(s);
                in_place += 1;
                state_in_place += usize::from(into_state);
            }
        }
        if let Some(s) = join {
            let own = of[out.index()];
            storages[own].members.clear();
            of[out.index()] = s;
            storages[s].members.push(out);
            storages[s].end = storages[s].end.max(end[out.index()]);
        }
    }

    // Places: inputs, constants and outputs first, the rest packed.
    let mut places = vec![Place::Arena(0); g.values.len()];
    let mut first_output = vec![None; storages.len()];
    for (k, &o) in g.outputs.iter().enumerate() {
        let s = of[o.index()];
        if first_output[s].is_none() && writable(&storages[s]) {
            first_output[s] = Some(k as u32);
        }
    }
    let input_index = |id: ValueId| g.inputs.iter().position(|&v| v == id);
    let (state_offsets, state_bytes) = state_layout(g);
    let state_offset = |id: ValueId| {
        g.states
            .iter()
            .position(|s| s.input == id)
            .map(|k| state_offsets[k])
    };
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for (s, st) in storages.iter().enumerate() {
        if st.members.is_empty() {
            continue;
        }
        let place = match g.value(st.root).def {
            ValueDef::Input => match (input_index(st.root), state_offset(st.root)) {
                (Some(k), _) => Place::Input(k as u32),
                (None, Some(off)) => Place::State(off),
                (None, None) => continue,
            },
            ValueDef::Const(_) => Place::Const(st.root),
            ValueDef::Node(..) => match first_output[s] {
                Some(k) => Place::Output(k),
                None => {
                    let start = iv[st.root.index()].map_or(0, |i| i.start);
                    items.push(Item {
                        start,
                        end: st.end.min(n_nodes.saturating_sub(1)).max(start),
                        bytes: align(bytes(st.root).max(1)),
                    });
                    owners.push(s);
                    continue;
                }
            },
        };
        for &m in &st.members {
            places[m.index()] = place;
        }
    }
    let packing = pack(&items);
    for (k, &s) in owners.iter().enumerate() {
        for &m in &storages[s].members {
            places[m.index()] = Place::Arena(packing.offsets[k]);
        }
    }
    MemoryPlan {
        places,
        views,
        arena_bytes: packing.bytes,
        first_fit_bytes: first_fit(&items).bytes,
        greedy_bytes: greedy_by_size(&items).bytes,
        lower_bound: items_bound(&items),
        copy_bytes_removed,
        in_place,
        state_in_place,
        state_offsets,
        state_bytes,
    }
}

/// The state buffer's layout: each pair's slot in declaration order at the
/// next [`ALIGN`]ed offset, and the buffer's size.
fn state_layout(g: &Graph) -> (Vec<u64>, u64) {
    let mut offsets = Vec::with_capacity(g.states.len());
    let mut at = 0u64;
    for s in &g.states {
        offsets.push(at);
        let bytes = g.value(s.input).ty.bytes().unwrap_or(0) as u64;
        at = at.saturating_add(align(bytes.max(1)));
    }
    (offsets, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::elementwise::{BinaryFn, Epilogue, UnaryFn};
    use smelt_ir::{DType, TensorType};

    fn relu() -> Op {
        Op::Elementwise(Elementwise::Unary(UnaryFn::Relu))
    }

    fn input(g: &mut Graph, name: &str, shape: Vec<usize>) -> ValueId {
        g.add_input(name, TensorType::new(DType::F32, shape))
            .unwrap()
    }

    fn node(g: &mut Graph, name: &str, op: Op, ins: &[ValueId]) -> ValueId {
        let ins = ins.iter().map(|&v| Some(v)).collect();
        g.add_node(name, op, ins, vec![name.into()]).unwrap()[0]
    }

    #[test]
    fn elementwise_chain_runs_in_place_and_ends_in_the_output() {
        // x -> relu a -> relu b -> relu y (output): a and b share one slot,
        // and since b dies at y, y takes it too: all three are the output.
        let mut g = Graph::new();
        let x = input(&mut g, "x", vec![100]);
        let a = node(&mut g, "a", relu(), &[x]);
        let b = node(&mut g, "b", relu(), &[a]);
        let y = node(&mut g, "y", relu(), &[b]);
        g.outputs.push(y);
        let p = plan(&g);
        // The graph input is read-only: a is not written over x.
        assert_eq!(p.places[x.index()], Place::Input(0));
        for v in [a, b, y] {
            assert_eq!(p.places[v.index()], Place::Output(0));
        }
        assert_eq!((p.in_place, p.arena_bytes, p.lower_bound), (2, 0, 0));
    }

    /// A fused convolution may take over its residual's storage when the
    /// residual dies there, never when the residual is also its input
    /// (ResNet's identity block reads x while it writes the result).
    #[test]
    fn fused_conv_writes_over_its_residual_only() {
        use smelt_ir::ops::conv::{AutoPad, ConvOp, Window};
        use smelt_ir::ops::fused::Fused;
        let conv = Op::Conv(ConvOp::Conv {
            window: Window {
                kernel_shape: None,
                strides: vec![1, 1],
                dilations: vec![1, 1],
                pads: vec![1, 1, 1, 1],
                auto_pad: AutoPad::NotSet,
            },
            group: 1,
        });
        let fused =
            Op::Fused(Fused::with(conv, true, Some(Epilogue::Unary(UnaryFn::Relu))).unwrap());
        for shared in [false, true] {
            let mut g = Graph::new();
            let x = input(&mut g, "x", vec![1, 2, 4, 4]);
            let w = g
                .add_const(
                    "w",
                    &smelt_ir::Tensor::from_vec(vec![2, 2, 3, 3], vec![0.5f32; 36]).unwrap(),
                )
                .unwrap();
            let a = node(&mut g, "a", relu(), &[x]);
            let r = node(&mut g, "r", relu(), &[x]);
            let xin = if shared { r } else { a };
            let y = node(&mut g, "y", fused.clone(), &[xin, w, r]);
            let z = node(&mut g, "z", relu(), &[y]);
            g.outputs.push(z);
            let p = plan(&g);
            let over_r = p.places[y.index()] == p.places[r.index()];
            assert_eq!(over_r, !shared, "shared={shared}");
        }
    }

    #[test]
    fn no_in_place_while_the_input_is_read_later_or_broadcast() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", vec![4, 8]);
        let row = input(&mut g, "row", vec![8]);
        let a = node(&mut g, "a", relu(), &[x]);
        let small = node(&mut g, "small", relu(), &[row]);
        // a is read again by c: b must not overwrite it.
        let b = node(&mut g, "b", relu(), &[a]);
        // small is broadcast over c's output: c cannot take its slot (and
        // it has another size), but it takes b's, which dies here.
        let add = Op::Elementwise(Elementwise::Binary(BinaryFn::Add));
        let c = node(&mut g, "c", add, &[small, b]);
        let d = node(
            &mut g,
            "d",
            Op::Elementwise(Elementwise::Binary(BinaryFn::Mul)),
            &[c, a],
        );
        g.outputs.push(d);
        let p = plan(&g);
        assert_ne!(p.places[a.index()], p.places[b.index()]);
        assert_ne!(p.places[small.index()], p.places[c.index()]);
        assert_eq!(p.places[b.index()], p.places[c.index()]);
        // d writes over c (c dies at d), so c's storage is the output.
        assert_eq!(p.places[c.index()], Place::Output(0));
        assert_eq!(p.in_place, 2);
    }

    #[test]
    fn views_alias_inputs_outputs_and_chains() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", vec![2, 3]);
        let id = || Op::Layout(Layout::Identity);
        let flat = || Op::Layout(Layout::Flatten { axis: 0 });
        // A chain of views of a graph input stays the read-only input.
        let v1 = node(&mut g, "v1", id(), &[x]);
        let v2 = node(&mut g, "v2", flat(), &[v1]);
        // A computed value, viewed twice; the second view is a graph output,
        // so the producer writes straight into that output's buffer.
        let a = node(&mut g, "a", relu(), &[v2]);
        let w1 = node(&mut g, "w1", flat(), &[a]);
        let y = node(&mut g, "y", relu(), &[w1]);
        let w2 = node(&mut g, "w2", id(), &[a]);
        g.outputs.extend([y, w2, v2, x]);
        let p = plan(&g);
        for v in [x, v1, v2] {
            assert_eq!(p.places[v.index()], Place::Input(0));
        }
        for v in [a, w1, w2] {
            assert_eq!(p.places[v.index()], Place::Output(1));
        }
        // y may not write over a: w2 (a graph output) still holds it.
        assert_eq!(p.places[y.index()], Place::Output(0));
        assert_eq!(p.views, vec![true, true, false, true, false, true]);
        assert_eq!(p.copy_bytes_removed, 4 * 24);
        assert_eq!((p.in_place, p.arena_bytes), (0, 0));
    }

    /// State inputs live in the state buffer, one aligned slot per pair,
    /// never in the arena; a state output lives to the end of the run, so
    /// no later node writes over it.
    #[test]
    fn state_has_its_own_region_and_its_outputs_live_to_the_end() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", vec![10]);
        let f32s = |n| TensorType::new(DType::F32, vec![n]);
        let s = g.add_state_input("s", f32s(10)).unwrap();
        let t = g.add_state_input("t", f32s(3)).unwrap();
        let add = Op::Elementwise(Elementwise::Binary(BinaryFn::Add));
        let sv = node(&mut g, "sv", Op::Layout(Layout::Identity), &[s]);
        let y = node(&mut g, "y", add, &[sv, x]);
        let z = node(&mut g, "z", relu(), &[y]);
        let w = node(&mut g, "w", relu(), &[z]);
        let u = node(&mut g, "u", relu(), &[t]);
        g.outputs.push(w);
        g.add_state(s, y).unwrap();
        g.add_state(t, u).unwrap();
        smelt_ir::verify::verify(&g).unwrap();
        let p = plan(&g);
        assert_eq!(p.state_offsets, vec![0, 64]);
        assert_eq!(p.state_bytes, 128);
        for v in [s, sv] {
            assert_eq!(p.places[v.index()], Place::State(0));
        }
        assert_eq!(p.places[t.index()], Place::State(64));
        // y is read by the copy into the state slot after the last node: z
        // must not write over it (and nothing writes over the state input).
        assert!(matches!(p.places[y.index()], Place::Arena(_)));
        assert_ne!(p.places[z.index()], p.places[y.index()]);
        assert!(matches!(p.places[u.index()], Place::Arena(_)));
        assert_ne!(p.places[u.index()], p.places[y.index()]);
        // No value of the graph is in the arena at a state place or the
        // other way round: the regions are disjoint buffers.
        let in_state = p
            .places
            .iter()
            .filter(|pl| matches!(pl, Place::State(_)))
            .count();
        assert_eq!(in_state, 3);
    }

    fn scatter_nd() -> Op {
        Op::Layout(Layout::ScatterND {
            reduction: smelt_ir::ops::layout::Reduction::None,
        })
    }

    /// A KV-cache-like step: state `k: f32[4,2]`, `kc = ScatterND(k, idx,
    /// u)` with `idx: i64[1,1]` and `u: f32[1,2]` graph inputs, `y =
    /// Relu(kc)`, and `state k <- kc` (or `k <- other` when
    /// `paired` is false). `late` adds a reader of `k` after the scatter,
    /// `k_out` makes `k` a graph output too.
    fn cache_step(paired: bool, late: bool, k_out: bool) -> (Graph, [ValueId; 3]) {
        let mut g = Graph::new();
        let idx = g
            .add_input("idx", TensorType::new(DType::I64, vec![1, 1]))
            .unwrap();
        let u = input(&mut g, "u", vec![1, 2]);
        let k = g
            .add_state_input("k", TensorType::new(DType::F32, vec![4, 2]))
            .unwrap();
        let kc = node(&mut g, "kc", scatter_nd(), &[k, idx, u]);
        let y = node(&mut g, "y", relu(), &[kc]);
        g.outputs.push(y);
        if late {
            let r = node(&mut g, "late", relu(), &[k]);
            g.outputs.push(r);
        }
        if k_out {
            g.outputs.push(k);
        }
        let next = if paired { kc } else { y };
        g.add_state(k, next).unwrap();
        smelt_ir::verify::verify(&g).unwrap();
        (g, [k, kc, y])
    }

    /// The scatter is its state input's last reader and its output is the
    /// paired state output: it writes the slot in place.
    #[test]
    fn a_scatter_updates_its_state_slot_in_place() {
        let (g, [k, kc, y]) = cache_step(true, false, false);
        let p = plan(&g);
        assert_eq!(p.places[k.index()], Place::State(0));
        assert_eq!(p.places[kc.index()], Place::State(0));
        assert_eq!(p.places[y.index()], Place::Output(0));
        assert_eq!((p.in_place, p.state_in_place), (1, 1));
        assert_eq!(p.arena_bytes, 0);
    }

    /// Not in place when the old state is read after the scatter, when it is
    /// a graph output (read after the last node), or when the scatter's
    /// output is not what the state becomes.
    #[test]
    fn a_scatter_leaves_the_state_alone_unless_it_is_the_last_reader_of_its_pair() {
        for (paired, late, k_out) in [
            (true, true, false),
            (true, false, true),
            (false, false, false),
        ] {
            let (g, [k, kc, _]) = cache_step(paired, late, k_out);
            let p = plan(&g);
            let what = format!("paired={paired} late={late} k_out={k_out}");
            assert_eq!(p.places[k.index()], Place::State(0), "{what}");
            assert_ne!(p.places[kc.index()], Place::State(0), "{what}");
            assert_eq!(p.state_in_place, 0, "{what}");
        }
    }

    /// A scatter over a computed value that dies there writes over it (no
    /// copy); not when the value is read later or when the updates come
    /// from the same storage.
    #[test]
    fn a_scatter_writes_over_a_dying_computed_value() {
        let scatter_el = Op::Layout(Layout::ScatterElements {
            axis: 0,
            reduction: smelt_ir::ops::layout::Reduction::Add,
            legacy: false,
        });
        for case in 0..3 {
            let mut g = Graph::new();
            let x = input(&mut g, "x", vec![4, 2]);
            let idx = g
                .add_input("idx", TensorType::new(DType::I64, vec![4, 2]))
                .unwrap();
            let a = node(&mut g, "a", relu(), &[x]);
            let (b, upd) = match case {
                2 => (node(&mut g, "b", scatter_el.clone(), &[a, idx, a]), a),
                _ => {
                    let u = node(&mut g, "u", relu(), &[x]);
                    (node(&mut g, "b", scatter_el.clone(), &[a, idx, u]), u)
                }
            };
            let y = node(&mut g, "y", relu(), &[b]);
            g.outputs.push(y);
            if case == 1 {
                let z = node(&mut g, "z", relu(), &[a]);
                g.outputs.push(z);
            }
            let p = plan(&g);
            let shared = p.places[a.index()] == p.places[b.index()];
            assert_eq!(shared, case == 0, "case {case}");
            assert_eq!(p.state_in_place, 0);
            assert_ne!(p.places[upd.index()], p.places[b.index()], "case {case}");
        }
    }

    #[test]
    fn transpose_is_a_view_only_when_it_moves_unit_dims() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", vec![1, 4, 1, 5]);
        let t = |perm: Vec<i64>| Op::Layout(Layout::Transpose { perm: Some(perm) });
        let a = node(&mut g, "a", t(vec![1, 0, 3, 2]), &[x]);
        let b = node(&mut g, "b", t(vec![0, 3, 2, 1]), &[x]);
        g.outputs.extend([a, b]);
        assert_eq!(plan(&g).views, vec![true, false]);
    }
}
