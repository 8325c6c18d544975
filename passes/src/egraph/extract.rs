//! Extraction: the cheapest e-node of every e-class under a cost function,
//! in time linear in the e-graph (times the updates a class sees), with a
//! deadline.
//!
//! egg's `Extractor` sweeps every class until nothing changes, so a chain of
//! `n` classes visited in an unlucky order costs `n` sweeps of `n` classes:
//! minutes on a 100,000-node chain. Here a class is (re)visited only when a
//! child's cost appeared or dropped: a work list seeded with every class in
//! the e-graph's order, and each improvement queues the classes of its
//! parent e-nodes. The costs converge to the same least fixed point as
//! egg's; like egg, a class keeps its node unless another is strictly
//! cheaper, so an extracted node never depends on its own class through a
//! zero-cost cycle.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use egg::{CostFunction, Id, Language};

use super::analysis::EG;
use super::lang::ENode;

/// How many class visits pass between two looks at the clock.
const CLOCK_EVERY: usize = 1024;

/// The best e-node of every class that has a finite cost.
pub struct Best {
    costs: HashMap<Id, (f64, ENode)>,
}

/// Extraction ran past its deadline.
#[derive(Debug)]
pub struct TimedOut;

impl Best {
    /// The cheapest e-node of `class` (any id of it), if it has one (every
    /// class reachable from leaves has).
    pub fn node(&self, eg: &EG, class: Id) -> Option<&ENode> {
        self.costs.get(&eg.find(class)).map(|(_, n)| n)
    }
}

/// The cheapest e-node of every class of `eg` under `cf`; `TimedOut` when
/// `deadline` passes first.
pub fn extract<CF>(eg: &EG, mut cf: CF, deadline: Option<Instant>) -> Result<Best, TimedOut>
where
    CF: CostFunction<ENode, Cost = f64>,
{
    let mut costs: HashMap<Id, (f64, ENode)> = HashMap::with_capacity(eg.number_of_classes());
    let mut queue: VecDeque<Id> = eg.classes().map(|c| c.id).collect();
    let mut queued: HashSet<Id> = queue.iter().copied().collect();
    let mut visits = 0usize;
    while let Some(id) = queue.pop_front() {
        queued.remove(&id);
        visits += 1;
        if visits.is_multiple_of(CLOCK_EVERY) && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(TimedOut);
        }
        let class = &eg[id];
        let mut best: Option<(f64, &ENode)> = None;
        for node in class.iter() {
            if !node.all(|c| costs.contains_key(&eg.find(c))) {
                continue;
            }
            let cost = cf.cost(node, |c| costs[&eg.find(c)].0);
            // The first of equally cheap nodes, as egg's `min_by`.
            if best.is_none_or(|(b, _)| cost < b) {
                best = Some((cost, node));
            }
        }
        let Some((cost, node)) = best else {
            continue;
        };
        let improved = costs.get(&id).is_none_or(|(old, _)| cost < *old);
        if !improved {
            continue;
        }
        costs.insert(id, (cost, node.clone()));
        for parent in class.parents() {
            let p = eg.find(parent);
            if queued.insert(p) {
                queue.push_back(p);
            }
        }
    }
    Ok(Best { costs })
}
