//! The activation memory plan: every intermediate value gets a fixed offset
//! in one arena, chosen at compile time from liveness.
//!
//! Values whose live ranges overlap never share bytes. Placement is greedy
//! by size (largest first), each at the lowest aligned offset that does not
//! collide with an already placed, simultaneously live value. The planned
//! arena is reported against the liveness lower bound
//! ([`smelt_passes::memory::peak`]); the e-graph issue improves on this.

use smelt_ir::{Graph, ValueDef, ValueId};
use smelt_passes::memory::{Interval, intervals};

/// Alignment of every arena offset, in bytes (a cache line, enough for any vector).
pub const ALIGN: u64 = 64;

/// Where each arena-resident value lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Arena byte offset per value (`None` for inputs, outputs and constants).
    pub offsets: Vec<Option<u64>>,
    /// Total arena size in bytes.
    pub arena_bytes: u64,
    /// The liveness lower bound, for reporting.
    pub lower_bound: u64,
}

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena for the values `in_arena` selects (intermediates).
pub fn plan(g: &Graph, in_arena: impl Fn(ValueId) -> bool) -> MemoryPlan {
    let iv = intervals(g);
    let mut items: Vec<(ValueId, Interval)> = iv
        .iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let id = ValueId(i as u32);
            let v = g.value(id);
            match (x, &v.def) {
                (Some(x), ValueDef::Node(..)) if in_arena(id) => Some((id, *x)),
                _ => None,
            }
        })
        .collect();
    // Largest first; ties by start time, then id, so the plan is deterministic.
    items.sort_by(|a, b| {
        b.1.bytes
            .cmp(&a.1.bytes)
            .then(a.1.start.cmp(&b.1.start))
            .then(a.0.cmp(&b.0))
    });
    let mut placed: Vec<(u64, u64, Interval)> = Vec::new(); // (offset, size, interval)
    let mut offsets = vec![None; g.values.len()];
    let mut arena = 0u64;
    for (id, it) in items {
        let size = align(it.bytes.max(1) as u64);
        let mut conflicts: Vec<(u64, u64)> = placed
            .iter()
            .filter(|(_, _, o)| o.start <= it.end && it.start <= o.end)
            .map(|(off, sz, _)| (*off, *sz))
            .collect();
        conflicts.sort_unstable();
        let mut off = 0u64;
        for (c_off, c_sz) in conflicts {
            if off + size <= c_off {
                break;
            }
            off = off.max(c_off + c_sz);
        }
        placed.push((off, size, it));
        offsets[id.index()] = Some(off);
        arena = arena.max(off + size);
    }
    MemoryPlan {
        offsets,
        arena_bytes: arena,
        lower_bound: smelt_passes::memory::peak(g).bytes as u64,
    }
}
