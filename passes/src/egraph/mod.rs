//! The graph optimizer: equality saturation with egg.
//!
//! `optimize` loads a graph into an e-graph ([`convert`]), saturates it with
//! the chosen rule files (`crate::rules`) under the runner's limits, extracts
//! the cheapest graph by the cost model ([`cost`]) and rebuilds an
//! `ir::Graph` with the same inputs and outputs (names, order, types).
//!
//! Opt levels: 0 does nothing; 1 runs `algebra` and `constfold` (cleanup
//! that never changes which kernels run beyond removing them); 2 adds
//! `layout` and `fusion` (BatchNormalization folding, MatMul+Add → Gemm,
//! transposes into Gemm, recognition of decomposed GELU, SiLU, HardSwish,
//! Softmax, LayerNorm); 3 is 2 with four times the runner limits.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod extract;
pub mod lang;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use egg::{Id, Language, Runner, StopReason};
use smelt_ir::Graph;

use self::cost::{LatencyCost, PreferNew, TargetCost};
use self::lang::ENode;
use crate::rules;

/// Runner limits and rule selection.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rule files to run (names from `rules::FILES`).
    pub passes: Vec<String>,
    /// Saturation iterations at most.
    pub iter_limit: usize,
    /// E-nodes at most.
    pub node_limit: usize,
    /// Wall time at most, of saturation and extraction together (of all
    /// the phases of a [`Pipeline`]). Hitting it makes the result depend on
    /// the machine's speed (and past it during extraction the graph is kept
    /// unoptimized); the default is far above what the iteration and node
    /// limits allow on the example and benchmark models.
    pub time_limit: Duration,
    /// Largest constant folded, in elements.
    pub fold_limit: usize,
    /// Per-target figures of the cost model.
    pub target: TargetCost,
    /// Extraction: the cost model, or (tests) rewritten forms first.
    pub prefer_rewritten: bool,
    /// Only these rules (by name) when not empty (tests).
    pub only_rules: Vec<String>,
}

impl Options {
    /// The options of an opt level (0–3) for a target; `None` for level 0.
    pub fn for_level(level: u8, target: TargetCost) -> Option<Options> {
        let passes: &[&str] = match level {
            0 => return None,
            1 => &["algebra", "constfold"],
            _ => &rules::FILES,
        };
        let scale = if level >= 3 { 4 } else { 1 };
        Some(Options {
            passes: passes.iter().map(|s| s.to_string()).collect(),
            iter_limit: 12 * scale,
            node_limit: 50_000 * scale,
            time_limit: Duration::from_secs(5 * scale as u64),
            fold_limit: 1 << 24,
            target,
            prefer_rewritten: false,
            only_rules: vec![],
        })
    }
}

/// What one optimization did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Why saturation stopped.
    pub stop_reason: String,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes and e-classes at the end.
    pub egraph_nodes: usize,
    /// E-classes at the end.
    pub egraph_classes: usize,
    /// Times each rule applied, by name (rules that never applied omitted).
    pub applied: BTreeMap<String, usize>,
    /// Nodes before and after.
    pub nodes_before: usize,
    /// Nodes after.
    pub nodes_after: usize,
    /// Estimated cost (ns, the cost model's unit) before and after.
    pub cost_before: f64,
    /// Estimated cost after.
    pub cost_after: f64,
    /// Wall time of the whole optimization.
    pub time: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "optimizer: {} -> {} nodes, estimated cost {:.1} -> {:.1} us, {:.1} ms",
            self.nodes_before,
            self.nodes_after,
            self.cost_before / 1e3,
            self.cost_after / 1e3,
            self.time.as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "  stop reason: {} after {} iterations; e-graph {} nodes, {} classes",
            self.stop_reason, self.iterations, self.egraph_nodes, self.egraph_classes
        )?;
        if self.applied.is_empty() {
            writeln!(f, "  no rule applied")?;
        }
        for (rule, n) in &self.applied {
            writeln!(f, "  {n:>6}  {rule}")?;
        }
        Ok(())
    }
}

/// Why optimization failed: an unknown pass name (the user's), or a bug in
/// a rule or the rebuild (never the model's fault). Every message starts
/// with `optimizer: ` and says which.
#[derive(Debug)]
pub enum Error {
    /// `--passes` (or [`Options::passes`]) names a rule file that does not
    /// exist.
    UnknownPass(String),
    /// A rewrite merged classes of different types (a rule bug).
    Rewrite(String),
    /// The extracted e-nodes could not be rebuilt into a graph.
    Rebuild(String),
    /// The rebuilt graph does not verify.
    Verify(smelt_ir::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownPass(p) => write!(
                f,
                "optimizer: unknown pass '{p}'; the passes are {}",
                rules::FILES.join(", ")
            ),
            Error::Rewrite(e) => write!(f, "optimizer: a rewrite produced an invalid graph: {e}"),
            Error::Rebuild(e) => write!(f, "optimizer: rebuilding the graph failed: {e}"),
            Error::Verify(e) => write!(f, "optimizer: the result does not verify: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The rules selected by `opts`; an error names an unknown file.
pub fn selected_rules(opts: &Options) -> Result<Vec<rules::Rule>, Error> {
    let mut v = Vec::new();
    for p in &opts.passes {
        let r = rules::file(p).ok_or_else(|| Error::UnknownPass(p.clone()))?;
        v.extend(r);
    }
    if !opts.only_rules.is_empty() {
        v.retain(|r| opts.only_rules.iter().any(|n| r.name.as_str() == n));
    }
    Ok(v)
}

fn stop_text(r: &Option<StopReason>) -> String {
    match r {
        Some(StopReason::Saturated) => "saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(s)) => format!("time limit ({s:.1} s)"),
        Some(StopReason::Other(s)) => s.clone(),
        None => "not run".into(),
    }
}

/// Optimizes `g`; the result has the same signature and computes the same
/// function (within floating-point reassociation).
///
/// [`Options::time_limit`] bounds the whole run: saturation gets what is
/// left of it after loading, extraction what saturation left. When
/// extraction runs out of time the result is `g` itself, unoptimized, and
/// the report's stop reason says so.
pub fn optimize(g: &Graph, opts: &Options) -> Result<(Graph, Report), Error> {
    let started = Instant::now();
    let deadline = started + opts.time_limit;
    let rules = selected_rules(opts)?;
    let loaded = convert::load(g, opts.fold_limit);
    let original: Vec<ENode> = if opts.prefer_rewritten {
        loaded
            .egraph
            .classes()
            .flat_map(|c| c.nodes.iter().cloned())
            .collect()
    } else {
        Vec::new()
    };
    let cost_before = estimate(g, &opts.target);
    let convert::Loaded {
        egraph,
        value_class,
        node_class,
    } = loaded;
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(opts.iter_limit)
        .with_node_limit(opts.node_limit)
        .with_time_limit(deadline.saturating_duration_since(Instant::now()))
        .run(&rules);
    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    for it in &runner.iterations {
        for (k, n) in &it.applied {
            *applied.entry(k.to_string()).or_default() += n;
        }
    }
    let stop_reason = stop_text(&runner.stop_reason);
    let iterations = runner.iterations.len();
    let egraph = runner.egraph;
    if let Some(e) = egraph.analysis.errors.first() {
        return Err(Error::Rewrite(e.to_string()));
    }
    let loaded = convert::Loaded {
        egraph,
        value_class,
        node_class,
    };
    let eg = &loaded.egraph;
    let best = if opts.prefer_rewritten {
        let orig: HashSet<ENode> = original
            .into_iter()
            .map(|n| n.map_children(|c| eg.find(c)))
            .collect();
        let cf = PreferNew {
            egraph: eg,
            original: &orig,
        };
        extract::extract(eg, cf, Some(deadline))
    } else {
        let cf = LatencyCost {
            egraph: eg,
            target: opts.target,
        };
        extract::extract(eg, cf, Some(deadline))
    };
    let report = |out: &Graph, cost_after: f64, stop_reason: String| Report {
        stop_reason,
        iterations,
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        applied: applied.clone(),
        nodes_before: g.nodes.len(),
        nodes_after: out.nodes.len(),
        cost_before,
        cost_after,
        time: started.elapsed(),
    };
    let Ok(best) = best else {
        let why = format!(
            "{stop_reason}, then the time limit ({:.1} s) during extraction: the graph is kept unoptimized",
            opts.time_limit.as_secs_f64()
        );
        return Ok((g.clone(), report(g, cost_before, why)));
    };
    let mut out = convert::rebuild(g, &loaded, &|id| best.node(eg, id).cloned())
        .map_err(|e| Error::Rebuild(e.0))?;
    out.prune();
    smelt_ir::verify::verify(&out).map_err(Error::Verify)?;
    let report = report(&out, estimate(&out, &opts.target), stop_reason);
    Ok((out, report))
}

/// The cost model's estimate of a whole graph (each node once).
pub fn estimate(g: &Graph, target: &TargetCost) -> f64 {
    let loaded = convert::load(g, 0);
    let eg = &loaded.egraph;
    let mut seen: HashSet<Id> = HashSet::new();
    let mut total = 0.0;
    for (n, _) in g.nodes.iter().enumerate() {
        let c = eg.find(loaded.node_class[n]);
        if !seen.insert(c) {
            continue;
        }
        if let Some(node) = eg[c].nodes.iter().find(|n| matches!(n, ENode::Op(..))) {
            total += cost::node_cost(eg, target, node);
        }
    }
    total
}

/// A sequence of phases, each one saturation over a group of rule files.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The groups of rule files, run in order.
    pub phases: Vec<Vec<String>>,
    /// Limits and target shared by the phases (`passes` is set per phase).
    pub options: Options,
}

impl Pipeline {
    /// The pipeline of an opt level: nothing at 0, one phase of every file
    /// the level selects otherwise (the rules of all files then interact in
    /// one e-graph).
    pub fn for_level(level: u8, target: TargetCost) -> Pipeline {
        match Options::for_level(level, target) {
            None => Pipeline {
                phases: vec![],
                options: Options::for_level(1, target).expect("level 1 exists"),
            },
            Some(o) => Pipeline {
                phases: vec![o.passes.clone()],
                options: o,
            },
        }
    }

    /// Parses `--passes`: phases separated by `,`, files of one phase joined
    /// by `+` (`algebra+constfold,fusion`).
    pub fn parse_phases(list: &str) -> Result<Vec<Vec<String>>, Error> {
        let mut phases = Vec::new();
        for group in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut files = Vec::new();
            for f in group.split('+').map(str::trim) {
                if !rules::FILES.contains(&f) {
                    return Err(Error::UnknownPass(f.to_string()));
                }
                files.push(f.to_string());
            }
            phases.push(files);
        }
        Ok(phases)
    }

    /// The name of a phase as `--print-after` spells it.
    pub fn phase_name(phase: &[String]) -> String {
        phase.join("+")
    }

    /// Runs every phase; `after` sees each phase's name, result and report.
    /// [`Options::time_limit`] bounds all the phases together.
    pub fn run(
        &self,
        g: &Graph,
        mut after: impl FnMut(&str, &Graph, &Report),
    ) -> Result<(Graph, Vec<(String, Report)>), Error> {
        // One time limit for the whole pipeline: each phase gets what the
        // earlier ones left.
        let deadline = Instant::now() + self.options.time_limit;
        let mut cur = g.clone();
        let mut reports = Vec::new();
        for phase in &self.phases {
            let opts = Options {
                passes: phase.clone(),
                time_limit: deadline.saturating_duration_since(Instant::now()),
                ..self.options.clone()
            };
            let (next, report) = optimize(&cur, &opts)?;
            let name = Self::phase_name(phase);
            after(&name, &next, &report);
            reports.push((name, report));
            cur = next;
        }
        Ok((cur, reports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State outputs are roots: the optimized graph keeps every pair (two
    /// states whose next values become one value get an Identity), and it
    /// computes the same steps.
    #[test]
    fn state_pairs_survive_optimization() {
        use smelt_ir::interp::Interpreter;
        use smelt_ir::ops::Op;
        use smelt_ir::ops::elementwise::{BinaryFn, Elementwise};
        use smelt_ir::{DType, Tensor, TensorType};
        let mut g = Graph::new();
        let ty = TensorType::new(DType::F32, vec![3]);
        let x = g.add_input("x", ty.clone()).unwrap();
        let s = g.add_state_input("s", ty.clone()).unwrap();
        let t = g.add_state_input("t", ty.clone()).unwrap();
        let u = g.add_state_input("u", ty).unwrap();
        let one = g
            .add_const("one", &Tensor::from_vec(vec![3], vec![1f32; 3]).unwrap())
            .unwrap();
        // Node `name` computing `f(a, b)` into a value of the same name.
        let binary = |g: &mut Graph, name: &str, f, a, b| {
            let op = Op::Elementwise(Elementwise::Binary(f));
            g.add_node(name, op, vec![Some(a), Some(b)], vec![name.into()])
                .unwrap()[0]
        };
        let sx = binary(&mut g, "sx", BinaryFn::Mul, s, one);
        let y = binary(&mut g, "y", BinaryFn::Add, sx, x);
        // A second copy of y, which the e-graph merges with it.
        let y2 = binary(&mut g, "y2", BinaryFn::Add, sx, x);
        // t's next value is s * 1, which the optimizer makes s itself (a
        // rotation); u's is y2, which becomes y, s's.
        g.outputs = vec![y];
        g.add_state(s, y).unwrap();
        g.add_state(t, sx).unwrap();
        g.add_state(u, y2).unwrap();
        smelt_ir::verify::verify(&g).unwrap();
        let opts = Options::for_level(2, cost::TARGETS[0]).unwrap();
        let (o, _) = optimize(&g, &opts).unwrap();
        smelt_ir::verify::verify(&o).unwrap();
        assert_eq!(o.states.len(), 3);
        let xs = Tensor::from_vec(vec![3], vec![1f32, -2., 0.5]).unwrap();
        let (ia, ib) = (Interpreter::new(&g), Interpreter::new(&o));
        let (mut sa, mut sb) = (ia.zero_state().unwrap(), ib.zero_state().unwrap());
        for step in 0..3 {
            let (ya, na) = ia.step(vec![xs.clone()], sa).unwrap();
            let (yb, nb) = ib.step(vec![xs.clone()], sb).unwrap();
            assert_eq!((&ya, &na), (&yb, &nb), "step {step}");
            (sa, sb) = (na, nb);
        }
        let names: Vec<&str> = o
            .states
            .iter()
            .map(|p| o.value(p.input).name.as_str())
            .collect();
        assert_eq!(names, ["s", "t", "u"]);
    }

    #[test]
    fn phases_parse_and_unknown_files_are_named() {
        let p = Pipeline::parse_phases("algebra+constfold, fusion").unwrap();
        assert_eq!(
            p,
            vec![
                vec!["algebra".to_string(), "constfold".to_string()],
                vec!["fusion".to_string()]
            ]
        );
        let e = Pipeline::parse_phases("algebra,bogus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown pass 'bogus'"), "{e}");
        assert!(e.contains("algebra, constfold, layout, fusion"), "{e}");
    }

    #[test]
    fn levels_select_files_and_limits() {
        let t = cost::TARGETS[0];
        assert!(Pipeline::for_level(0, t).phases.is_empty());
        assert_eq!(
            Pipeline::for_level(1, t).phases,
            vec![vec!["algebra".to_string(), "constfold".to_string()]]
        );
        let l2 = Pipeline::for_level(2, t);
        let l3 = Pipeline::for_level(3, t);
        assert_eq!(l2.phases, l3.phases);
        assert_eq!(l2.phases[0].len(), rules::FILES.len());
        assert_eq!(l3.options.node_limit, 4 * l2.options.node_limit);
        assert_eq!(l3.options.iter_limit, 4 * l2.options.iter_limit);
    }

    #[test]
    fn targets_resolve_by_arch_or_triple() {
        for (t, want) in [
            ("x86_64-unknown-linux-gnu", "x86_64"),
            ("aarch64", "aarch64"),
            ("armv7-unknown-linux-gnueabihf", "armv7"),
            ("thumbv7em-none-eabihf", "cortex-m4"),
        ] {
            assert_eq!(TargetCost::for_target(t).unwrap().name, want);
        }
        assert!(TargetCost::for_target("riscv64").is_none());
        // Slower targets make the same kernel costlier, and on every target
        // the GEMM micro-kernel outruns a plain loop nest.
        for rate in [
            |t: &TargetCost| t.gemm_macs_per_ns,
            |t: &TargetCost| t.loop_macs_per_ns,
        ] {
            let r: Vec<f64> = cost::TARGETS.iter().map(rate).collect();
            assert!(r.windows(2).all(|w| w[0] > w[1]));
        }
        assert!(
            cost::TARGETS
                .iter()
                .all(|t| t.gemm_macs_per_ns > t.loop_macs_per_ns)
        );
    }

    /// The figures follow the vector unit: the baseline's are the table's,
    /// wider vectors and FMA make the compute rates higher, never the
    /// bandwidth.
    #[test]
    fn costs_follow_the_vector_unit() {
        for t in cost::TARGETS {
            assert_eq!(t.for_vector(t.f32_lanes, t.fma), t);
        }
        let x86 = TargetCost::for_target("x86_64").unwrap();
        let avx2 = x86.for_vector(8, true);
        assert_eq!((avx2.f32_lanes, avx2.fma), (8, true));
        assert!(avx2.gemm_macs_per_ns > 2.0 * x86.gemm_macs_per_ns);
        assert_eq!(avx2.loop_macs_per_ns, 2.0 * x86.loop_macs_per_ns);
        assert_eq!(avx2.bytes_per_ns, x86.bytes_per_ns);
        let avx512 = x86.for_vector(16, true);
        assert!(avx512.gemm_macs_per_ns > avx2.gemm_macs_per_ns);
    }

    /// Past the time limit during extraction, the graph comes back
    /// unoptimized, and the stop reason says so.
    #[test]
    fn the_time_limit_bounds_extraction() {
        use smelt_ir::ops::Op;
        use smelt_ir::ops::elementwise::{Elementwise, UnaryFn};
        use smelt_ir::{DType, TensorType};
        let mut g = Graph::new();
        let mut v = g
            .add_input("x", TensorType::new(DType::F32, vec![2]))
            .unwrap();
        // More classes than extraction visits between two looks at the
        // clock, so it sees the deadline.
        for k in 0..3000 {
            let op = Op::Elementwise(Elementwise::Unary(UnaryFn::Neg));
            v = g
                .add_node(format!("n{k}"), op, vec![Some(v)], vec![format!("v{k}")])
                .unwrap()[0];
        }
        g.outputs = vec![v];
        let mut opts = Options::for_level(2, cost::TARGETS[0]).unwrap();
        opts.time_limit = Duration::ZERO;
        let (o, report) = optimize(&g, &opts).unwrap();
        assert_eq!(o.nodes.len(), g.nodes.len());
        assert!(
            report
                .stop_reason
                .contains("during extraction: the graph is kept unoptimized"),
            "{}",
            report.stop_reason
        );
        // With time, the optimizer removes the negations in pairs.
        opts.time_limit = Duration::from_secs(60);
        let (o, _) = optimize(&g, &opts).unwrap();
        assert!(o.nodes.len() < g.nodes.len());
    }

    #[test]
    fn rule_text_uses_ir_op_names() {
        use egg::Pattern;
        let p: Pattern<ENode> = "(Mul ?x (Transpose ?y))".parse().unwrap();
        assert_eq!(p.to_string(), "(Mul ?x (Transpose ?y))");
        assert!("(NotAnOp ?x)".parse::<Pattern<ENode>>().is_err());
        // Attribute-free names are concrete (usable on a right-hand side);
        // names whose ops carry attributes are patterns.
        assert!(lang::op_from_name("Add", 2).unwrap().key.is_some());
        assert!(lang::op_from_name("Transpose", 1).unwrap().key.is_none());
        assert!(lang::op_from_name("Cast", 1).unwrap().key.is_none());
    }

    #[test]
    fn exact_widening_casts() {
        use crate::rules::algebra::widens_exactly;
        use smelt_ir::DType;
        assert!(widens_exactly(DType::F16, DType::F32));
        assert!(widens_exactly(DType::I32, DType::F64));
        assert!(!widens_exactly(DType::I32, DType::F32));
        assert!(!widens_exactly(DType::F32, DType::F16));
        assert!(!widens_exactly(DType::I64, DType::F64));
    }
}
