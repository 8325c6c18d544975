//! Activation liveness, the peak-memory lower bound, and arena packing.
//!
//! Executing nodes in graph order, a value is live from the node that defines
//! it (graph inputs: from the start) to its last reader (graph outputs and
//! state outputs: to the end). The largest total of simultaneously live activation bytes is the
//! least memory any arena plan for this order can use; the planner of the
//! native backends is measured against it. Constants are weights, not
//! activations, and are not counted.
//!
//! Packing ([`pack`]) places buffers with fixed live ranges at byte offsets so
//! that buffers live at the same time never overlap (dynamic storage
//! allocation, NP-hard in general). Three strategies, all deterministic:
//! - [`first_fit`]: in order of first use, each at the lowest offset that
//!   fits, what a run-time allocator would do; the baseline;
//! - [`greedy_by_size`]: largest first, lowest fitting offset (the classic
//!   TFLite/Glow heuristic);
//! - [`pack`]: the best of several orderings with lowest-offset and best-fit
//!   placement, then an iterated local search (swap two buffers in the
//!   placement order, keep the swap when the arena does not grow) driven by a
//!   fixed-seed generator, stopping at the lower bound or after a fixed
//!   budget of placements.

mod overlaps;

use smelt_ir::{Graph, NodeId, ValueDef};

use self::overlaps::Overlaps;

/// Liveness of one activation value, as node indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// First node at which the value is live (0 for graph inputs).
    pub start: usize,
    /// Last node at which it is live (inclusive).
    pub end: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

/// The peak of simultaneously live activation bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeakMemory {
    /// Peak bytes.
    pub bytes: usize,
    /// The node at which the peak is reached, if the graph has nodes.
    pub at: Option<NodeId>,
}

/// The live interval of every activation (`None` for constants).
pub fn intervals(g: &Graph) -> Vec<Option<Interval>> {
    let last = g.nodes.len().saturating_sub(1);
    let mut iv: Vec<Option<Interval>> = g
        .values
        .iter()
        .map(|v| {
            let bytes = v.ty.bytes().unwrap_or(usize::MAX);
            match v.def {
                ValueDef::Const(_) => None,
                ValueDef::Input => Some(Interval {
                    start: 0,
                    end: 0,
                    bytes,
                }),
                ValueDef::Node(n, _) => Some(Interval {
                    start: n.index(),
                    end: n.index(),
                    bytes,
                }),
            }
        })
        .collect();
    for (n, node) in g.nodes.iter().enumerate() {
        for id in node.inputs.iter().flatten() {
            if let Some(i) = iv[id.index()].as_mut() {
                i.end = i.end.max(n);
            }
        }
    }
    // Graph outputs and state outputs are read after the last node (by the
    // caller, or by the copy into the state region).
    for id in g.outputs.iter().chain(g.states.iter().map(|s| &s.output)) {
        if let Some(i) = iv[id.index()].as_mut() {
            i.end = last;
        }
    }
    iv
}

/// The peak of simultaneously live activation bytes over graph order.
pub fn peak(g: &Graph) -> PeakMemory {
    let iv = intervals(g);
    if g.nodes.is_empty() {
        let bytes = iv
            .iter()
            .flatten()
            .fold(0usize, |a, i| a.saturating_add(i.bytes));
        return PeakMemory { bytes, at: None };
    }
    // Sweep: +bytes at start, -bytes after end.
    let mut delta = vec![0i128; g.nodes.len() + 1];
    for i in iv.iter().flatten() {
        delta[i.start] += i.bytes as i128;
        delta[i.end + 1] -= i.bytes as i128;
    }
    let (mut cur, mut best, mut at) = (0i128, 0i128, 0usize);
    for (n, d) in delta.iter().take(g.nodes.len()).enumerate() {
        cur += d;
        if cur > best {
            best = cur;
            at = n;
        }
    }
    PeakMemory {
        bytes: usize::try_from(best).unwrap_or(usize::MAX),
        at: Some(NodeId(at as u32)),
    }
}

/// A buffer to place: its live range (node indices, inclusive) and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// First node at which it is live.
    pub start: usize,
    /// Last node at which it is live (inclusive).
    pub end: usize,
    /// Size in bytes (already rounded up to the placement alignment).
    pub bytes: u64,
}

impl Item {
    fn overlaps(&self, o: &Item) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

/// Offsets for a list of items and the arena size they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Offset of each item, in the order given.
    pub offsets: Vec<u64>,
    /// Arena bytes: the highest end of any placed item.
    pub bytes: u64,
}

/// The largest total size of items live at one node: no packing is smaller.
pub fn items_bound(items: &[Item]) -> u64 {
    let Some(last) = items.iter().map(|i| i.end).max() else {
        return 0;
    };
    let mut delta = vec![0i128; last + 2];
    for i in items {
        delta[i.start] += i.bytes as i128;
        delta[i.end + 1] -= i.bytes as i128;
    }
    let (mut cur, mut best) = (0i128, 0i128);
    for d in delta {
        cur += d;
        best = best.max(cur);
    }
    best as u64
}

/// How an item picks among the gaps between already placed, simultaneously
/// live items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// The lowest offset that fits.
    Lowest,
    /// The smallest gap that fits (the top of the stack if none does).
    Best,
}

/// Places `items` one by one in `order`; `index` finds the items live at
/// the same time as each (`None`: check every placed item).
fn place(
    items: &[Item],
    index: Option<&Overlaps>,
    order: &[usize],
    fit: Fit,
    offsets: &mut [u64],
) -> u64 {
    let mut placed: Vec<usize> = Vec::with_capacity(order.len());
    let mut is_placed = vec![false; items.len()];
    let mut busy: Vec<(u64, u64)> = Vec::new();
    let mut arena = 0u64;
    for &k in order {
        let it = items[k];
        busy.clear();
        let span = |j: usize| (offsets[j], offsets[j] + items[j].bytes);
        match index {
            Some(index) => index.for_each(items, &it, |j| {
                if is_placed[j] {
                    busy.push(span(j));
                }
            }),
            None => busy.extend(
                placed
                    .iter()
                    .filter(|&&j| items[j].overlaps(&it))
                    .map(|&j| span(j)),
            ),
        }
        busy.sort_unstable();
        // Walk the gaps between busy ranges in offset order.
        let (mut cursor, mut best): (u64, Option<(u64, u64)>) = (0, None); // (gap, offset)
        let mut chosen = None;
        for &(lo, hi) in &busy {
            if lo >= cursor + it.bytes {
                let gap = lo - cursor;
                match fit {
                    Fit::Lowest => {
                        chosen = Some(cursor);
                        break;
                    }
                    Fit::Best => {
                        if best.is_none_or(|(g, _)| gap < g) {
                            best = Some((gap, cursor));
                        }
                    }
                }
            }
            cursor = cursor.max(hi);
        }
        let off = chosen.or(best.map(|(_, o)| o)).unwrap_or(cursor);
        offsets[k] = off;
        arena = arena.max(off + it.bytes);
        placed.push(k);
        is_placed[k] = true;
    }
    arena
}

fn packing_in_order(items: &[Item], order: &[usize], fit: Fit) -> Packing {
    let index = Overlaps::new(items);
    packing_indexed(items, index.as_ref(), order, fit)
}

fn packing_indexed(items: &[Item], index: Option<&Overlaps>, order: &[usize], fit: Fit) -> Packing {
    let mut offsets = vec![0; items.len()];
    let bytes = place(items, index, order, fit, &mut offsets);
    Packing { offsets, bytes }
}

/// First-fit in order of first use (ties by index): the baseline.
pub fn first_fit(items: &[Item]) -> Packing {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| (items[k].start, k));
    packing_in_order(items, &order, Fit::Lowest)
}

/// Largest first (ties by first use, then index), each at the lowest offset
/// that fits.
pub fn greedy_by_size(items: &[Item]) -> Packing {
    packing_in_order(items, &by_size(items), Fit::Lowest)
}

fn by_size(items: &[Item]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(items[k].bytes), items[k].start, k));
    order
}

/// A small fixed-seed generator (SplitMix64), so the search is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Placements the local search may try, in all: a budget in units of
/// item-pair overlap checks, so large graphs get fewer iterations.
const SEARCH_BUDGET: usize = 40_000_000;
/// Most local-search iterations on any graph.
const MAX_ITERS: usize = 2_000;

/// The placement orders [`pack`] starts from: largest first, largest area
/// (size × lifetime) first, longest-lived first, and first use (largest
/// first among those starting together); ties by first use, then index.
fn orderings(items: &[Item]) -> Vec<Vec<usize>> {
    use std::cmp::Reverse;
    let area = |it: &Item| it.bytes.saturating_mul((it.end - it.start + 1) as u64);
    let base: Vec<usize> = (0..items.len()).collect();
    let mut out = vec![base.clone(); 4];
    out[0].sort_by_key(|&k| (Reverse(items[k].bytes), items[k].start, k));
    out[1].sort_by_key(|&k| (Reverse(area(&items[k])), items[k].start, k));
    out[2].sort_by_key(|&k| (Reverse(items[k].end - items[k].start), items[k].start, k));
    out[3].sort_by_key(|&k| (items[k].start, Reverse(items[k].bytes), k));
    out
}

/// The best packing found: several orderings × two fits, then a local
/// search on the placement order of the best one. Never worse than
/// [`greedy_by_size`]; deterministic.
pub fn pack(items: &[Item]) -> Packing {
    let n = items.len();
    let bound = items_bound(items);
    let index = Overlaps::new(items);
    let mut best: Option<(Packing, Vec<usize>, Fit)> = None;
    for order in orderings(items) {
        for fit in [Fit::Lowest, Fit::Best] {
            let p = packing_indexed(items, index.as_ref(), &order, fit);
            if best.as_ref().is_none_or(|(b, _, _)| p.bytes < b.bytes) {
                best = Some((p, order.clone(), fit));
            }
        }
    }
    let Some((mut best, mut order, fit)) = best else {
        return Packing {
            offsets: vec![],
            bytes: 0,
        };
    };
    if n < 2 || best.bytes <= bound {
        return best;
    }
    // Iterated local search: move one item earlier in the order (or swap
    // two), keep the change when the arena does not grow.
    let iters = (SEARCH_BUDGET / (n * n)).min(MAX_ITERS);
    let mut rng = Rng(0x5EED_5EED_5EED_5EED);
    let mut offsets = vec![0u64; n];
    for _ in 0..iters {
        let (a, b) = (rng.below(n), rng.below(n));
        if a == b {
            continue;
        }
        let mut cand = order.clone();
        if rng.next() & 1 == 0 {
            cand.swap(a, b);
        } else {
            let (lo, hi) = (a.min(b), a.max(b));
            let x = cand.remove(hi);
            cand.insert(lo, x);
        }
        let bytes = place(items, index.as_ref(), &cand, fit, &mut offsets);
        if bytes <= best.bytes {
            order = cand;
            if bytes < best.bytes || offsets != best.offsets {
                best = Packing {
                    offsets: offsets.clone(),
                    bytes,
                };
            }
            if bytes <= bound {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::elementwise::{Elementwise, UnaryFn};
    use smelt_ir::{DType, Op, TensorType};

    #[test]
    fn chain_peak_is_two_neighbours() {
        // x -> relu -> a -> relu -> b -> relu -> y ; each 400 bytes.
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![100]))
            .unwrap();
        let relu = || Op::Elementwise(Elementwise::Unary(UnaryFn::Relu));
        let a = g
            .add_node("r1", relu(), vec![Some(x)], vec!["a".into()])
            .unwrap()[0];
        let b = g
            .add_node("r2", relu(), vec![Some(a)], vec!["b".into()])
            .unwrap()[0];
        let y = g
            .add_node("r3", relu(), vec![Some(b)], vec!["y".into()])
            .unwrap()[0];
        g.outputs.push(y);
        assert_eq!(peak(&g).bytes, 800);
        // Keeping x alive to the end raises the peak.
        g.outputs.push(x);
        assert_eq!(peak(&g).bytes, 1200);
    }

    /// Panics when two items live at the same node overlap in bytes.
    fn assert_valid(items: &[Item], p: &Packing) {
        for (a, x) in items.iter().enumerate() {
            assert!(
                p.offsets[a] + x.bytes <= p.bytes,
                "item {a} beyond the arena"
            );
            for (b, y) in items.iter().enumerate().skip(a + 1) {
                let apart = p.offsets[a] + x.bytes <= p.offsets[b]
                    || p.offsets[b] + y.bytes <= p.offsets[a];
                assert!(!x.overlaps(y) || apart, "items {a} and {b} collide: {p:?}");
            }
        }
    }

    fn item(start: usize, end: usize, bytes: u64) -> Item {
        Item { start, end, bytes }
    }

    #[test]
    fn first_fit_fragments_where_pack_does_not() {
        // A small buffer allocated first pins the bottom; first-fit then has
        // to stack the big ones above it, largest-first does not.
        let items = [
            item(0, 3, 64),
            item(0, 1, 256),
            item(2, 3, 320),
            item(1, 2, 64),
        ];
        let (ff, packed) = (first_fit(&items), pack(&items));
        assert_valid(&items, &ff);
        assert_valid(&items, &packed);
        assert_eq!(items_bound(&items), 448);
        assert_eq!(packed.bytes, 448);
        assert!(
            ff.bytes > packed.bytes,
            "first-fit {} vs {}",
            ff.bytes,
            packed.bytes
        );
    }

    #[test]
    fn pack_is_valid_never_worse_than_greedy_and_deterministic() {
        let mut rng = Rng(7);
        for case in 0..200 {
            let n = 1 + rng.below(40);
            let items: Vec<Item> = (0..n)
                .map(|_| {
                    let start = rng.below(30);
                    let len = rng.below(if case % 2 == 0 { 4 } else { 20 });
                    item(start, start + len, 64 * (1 + rng.below(16) as u64))
                })
                .collect();
            let (p, g, f) = (pack(&items), greedy_by_size(&items), first_fit(&items));
            for x in [&p, &g, &f] {
                assert_valid(&items, x);
                assert!(
                    x.bytes >= items_bound(&items),
                    "case {case}: below the bound"
                );
            }
            assert!(
                p.bytes <= g.bytes,
                "case {case}: pack {} > greedy {}",
                p.bytes,
                g.bytes
            );
            assert_eq!(p, pack(&items), "case {case}: not deterministic");
        }
    }
}
