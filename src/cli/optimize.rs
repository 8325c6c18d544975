//! The optimizer flags shared by `compile`, `run` and `inspect`, and the
//! glue that runs the pipeline and prints what `--print-after` asks for.

use std::time::Duration;

use clap::{Arg, ArgMatches, Command, value_parser};
use smelt_ir::Graph;
use smelt_passes::egraph::cost::TargetCost;
use smelt_passes::egraph::{Pipeline, Report};

use super::{CliError, CliResult};

/// The default `--opt-level`.
pub const DEFAULT_LEVEL: &str = "2";

/// Adds the optimizer flags.
pub fn args(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("opt-level")
            .long("opt-level")
            .short('O')
            .value_name("N")
            .default_value(DEFAULT_LEVEL)
            .value_parser(value_parser!(u8).range(0..=3))
            .help("Graph optimizer: 0 off; 1 algebra + constant folding; 2 also layout and fusion (BatchNorm folding, MatMul+Add→Gemm, GELU/SiLU/HardSwish/Softmax/LayerNorm recognition); 3 as 2 with 4× the runner limits"),
    )
    .arg(
        Arg::new("passes")
            .long("passes")
            .value_name("LIST")
            .help("Rule files to run instead of the level's: phases separated by ',', files of one saturation joined by '+' (algebra, constfold, layout, fusion; e.g. algebra+constfold,fusion)"),
    )
    .arg(
        Arg::new("print-after")
            .long("print-after")
            .value_name("PASS")
            .help("Print the IR after this phase (as written in --passes, e.g. fusion or algebra+constfold; 'import' for the imported graph, 'all' for every phase)"),
    )
    .arg(Arg::new("iter-limit").long("iter-limit").value_name("N").value_parser(value_parser!(usize)).help("Saturation iterations at most (default 12, ×4 at -O3)"))
    .arg(Arg::new("node-limit").long("node-limit").value_name("N").value_parser(value_parser!(usize)).help("E-graph nodes at most (default 50000, ×4 at -O3)"))
    .arg(Arg::new("time-limit").long("time-limit").value_name("SECONDS").value_parser(value_parser!(f64)).help("Saturation wall time at most (default 5 s, ×4 at -O3); hitting it makes the output depend on machine speed"))
    .arg(Arg::new("fold-limit").long("fold-limit").value_name("ELEMENTS").value_parser(value_parser!(usize)).help("Largest constant folded at compile time, in elements (default 16777216)"))
}

/// The pipeline the flags select, for a target (`x86_64`, a triple, …).
pub fn pipeline(m: &ArgMatches, target: &str) -> CliResult<Pipeline> {
    let level = *m.get_one::<u8>("opt-level").expect("has a default");
    let tc = TargetCost::for_target(target).unwrap_or(smelt_passes::egraph::cost::TARGETS[0]);
    let mut p = Pipeline::for_level(level, tc);
    if let Some(list) = m.get_one::<String>("passes") {
        p.phases = Pipeline::parse_phases(list).map_err(|e| CliError(e.to_string()))?;
    }
    if let Some(&n) = m.get_one::<usize>("iter-limit") {
        p.options.iter_limit = n;
    }
    if let Some(&n) = m.get_one::<usize>("node-limit") {
        p.options.node_limit = n;
    }
    if let Some(&s) = m.get_one::<f64>("time-limit") {
        if !(s.is_finite() && s > 0.0) {
            return Err(CliError(format!(
                "--time-limit takes a positive number of seconds, got {s}"
            )));
        }
        p.options.time_limit = Duration::from_secs_f64(s);
    }
    if let Some(&n) = m.get_one::<usize>("fold-limit") {
        p.options.fold_limit = n;
    }
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
    Ok(p)
}

/// Runs the selected pipeline on `graph`, printing `--print-after` dumps.
pub fn run(
    m: &ArgMatches,
    graph: Graph,
    target: &str,
) -> CliResult<(Graph, Vec<(String, Report)>)> {
    let p = pipeline(m, target)?;
    let print_after = m.get_one::<String>("print-after").cloned();
    if print_after.as_deref() == Some("import") || print_after.as_deref() == Some("all") {
        println!("// IR after import");
        print!("{}", smelt_ir::print::print(&graph));
    }
    if p.phases.is_empty() {
        return Ok((graph, vec![]));
    }
    p.run(&graph, |name, g, _| {
        if print_after.as_deref() == Some(name) || print_after.as_deref() == Some("all") {
            println!("// IR after {name}");
            print!("{}", smelt_ir::print::print(g));
        }
    })
    .map_err(|e| CliError(e.to_string()))
}
