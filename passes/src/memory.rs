//! Activation liveness and the peak-memory lower bound.
//!
//! Executing nodes in graph order, a value is live from the node that defines
//! it (graph inputs: from the start) to its last reader (graph outputs: to the
//! end). The largest total of simultaneously live activation bytes is the
//! least memory any arena plan for this order can use; the planner of the
//! native backends is measured against it. Constants are weights, not
//! activations, and are not counted.

use smelt_ir::{Graph, NodeId, ValueDef};

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
    for id in &g.outputs {
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
}
