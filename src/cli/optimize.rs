//! The optimizer flags shared by `compile`, `run` and `inspect`, and the
//! glue that runs the pipeline and prints what `--print-after` asks for.

use std::time::Duration;

use clap::{Arg, ArgMatches, Command, value_parser};
use smelt::{Observer, OptimizeOptions};
use smelt_ir::Graph;
use smelt_passes::egraph::cost::TargetCost;
use smelt_passes::egraph::{Pipeline, Report};

use super::{CliError, CliResult};

/// The default `--opt-level`.
pub const DEFAULT_LEVEL: &str = "2";
const _: () = assert!(smelt::DEFAULT_OPT_LEVEL == 2);

/// Adds the optimizer flags.
pub fn args(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("opt-level")
            .long("opt-level")
            .short('O')
            .value_name("N")
            .default_value(DEFAULT_LEVEL)
            .value_parser(value_parser!(u8).range(0..=3))
            .help("Graph optimizer: 0 off; 1 algebra + constant folding; 2 also layout, fusion (BatchNorm folding, MatMul+Add→Gemm, GELU/SiLU/HardSwish/Softmax/LayerNorm recognition), quant (Q∘DQ pairs folded) and qlinear (QDQ Conv/MatMul/Gemm as integer QLinearConv/QLinearMatMul alternatives); 3 as 2 with 4× the runner limits"),
    )
    .arg(
        Arg::new("passes")
            .long("passes")
            .value_name("LIST")
            .help("Rule files to run instead of the level's: phases separated by ',', files of one saturation joined by '+' (algebra, constfold, layout, fusion, quant, qlinear; e.g. algebra+constfold,fusion)"),
    )
    .arg(
        Arg::new("print-after")
            .long("print-after")
            .value_name("PASS")
            .help("Print the IR after this phase (as written in --passes, e.g. fusion or algebra+constfold; 'import' for the imported graph, 'all' for every phase)"),
    )
    .arg(Arg::new("iter-limit").long("iter-limit").value_name("N").value_parser(value_parser!(usize)).help("Saturation iterations at most (default 12, ×4 at -O3)"))
    .arg(Arg::new("node-limit").long("node-limit").value_name("N").value_parser(value_parser!(usize)).help("E-graph nodes at most (default 50000, ×4 at -O3)"))
    .arg(Arg::new("time-limit").long("time-limit").value_name("SECONDS").value_parser(value_parser!(f64)).help("Wall time of the whole optimizer at most, saturation and extraction (default 5 s, ×4 at -O3); hitting it makes the output depend on machine speed, and past it during extraction the graph is kept unoptimized"))
    .arg(Arg::new("fold-limit").long("fold-limit").value_name("ELEMENTS").value_parser(value_parser!(usize)).help("Largest constant folded at compile time, in elements (default 16777216)"))
}

/// The optimizer options the flags select; errors name a bad `--passes`
/// or `--time-limit`.
pub fn options(m: &ArgMatches) -> CliResult<OptimizeOptions> {
    let mut o = OptimizeOptions::level(*m.get_one::<u8>("opt-level").expect("has a default"));
    if let Some(list) = m.get_one::<String>("passes") {
        o.phases = Some(Pipeline::parse_phases(list).map_err(|e| CliError(e.to_string()))?);
    }
    o.iter_limit = m.get_one::<usize>("iter-limit").copied();
    o.node_limit = m.get_one::<usize>("node-limit").copied();
    if let Some(&s) = m.get_one::<f64>("time-limit") {
        if !(s.is_finite() && s > 0.0) {
            return Err(CliError(format!(
                "--time-limit takes a positive number of seconds, got {s}"
            )));
        }
        o.time_limit = Some(Duration::from_secs_f64(s));
    }
    o.fold_limit = m.get_one::<usize>("fold-limit").copied();
    Ok(o)
}

/// The optimizer options the flags select, with `--print-after` checked
/// against the phases they run (with the cost figures `costs`).
pub fn checked_options(m: &ArgMatches, costs: TargetCost) -> CliResult<OptimizeOptions> {
    let o = options(m)?;
    let p = o.pipeline(costs);
    if let Some(pa) = m.get_one::<String>("print-after") {
        let known = pa == "import"
            || pa == "all"
            || p.phases.iter().any(|ph| Pipeline::phase_name(ph) == *pa);
        if !known {
            let names: Vec<String> = p.phases.iter().map(|ph| Pipeline::phase_name(ph)).collect();
            return Err(CliError(format!(
                "--print-after {pa}: no such phase; this run has: import, {}",
                if names.is_empty() {
                    "(none: --opt-level 0)".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    Ok(o)
}

/// Prints the IR after the phases `--print-after` names.
pub struct PrintAfter(pub Option<String>);

impl PrintAfter {
    /// From the flags; prints the imported graph now when asked for.
    pub fn new(m: &ArgMatches, imported: &Graph) -> PrintAfter {
        let p = PrintAfter(m.get_one::<String>("print-after").cloned());
        if p.wants("import") {
            println!("// IR after import");
            print!("{}", smelt_ir::print::print(imported));
        }
        p
    }

    fn wants(&self, name: &str) -> bool {
        self.0.as_deref() == Some(name) || self.0.as_deref() == Some("all")
    }
}

impl Observer for PrintAfter {
    fn phase(&mut self, name: &str, g: &Graph, _: &Report) {
        if self.wants(name) {
            println!("// IR after {name}");
            print!("{}", smelt_ir::print::print(g));
        }
    }
}

/// Runs the selected optimizer on `graph` with the cost figures `costs`,
/// printing `--print-after` dumps.
pub fn run(
    m: &ArgMatches,
    graph: Graph,
    costs: TargetCost,
) -> CliResult<(Graph, Vec<(String, Report)>)> {
    let o = checked_options(m, costs)?;
    let mut printer = PrintAfter::new(m, &graph);
    Ok(smelt::optimize(&graph, &o, costs, &mut printer)?)
}
