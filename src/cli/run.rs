//! `smelt run`: the reference interpreter on `.npy`/`.npz` inputs.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::ArgMatches;
use smelt_ir::interp::Interpreter;
use smelt_ir::{OpDef, Tensor};
use smelt_passes::egraph::cost::TargetCost;

use super::{CliError, CliResult, import_options, input_files};

/// One line about a tensor: type, range, mean and the first values.
fn summary(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    let ty = format!("{}{:?}", t.dtype(), t.shape());
    if v.is_empty() {
        return format!("{ty} (empty)");
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.6}")).collect();
    let more = if v.len() > 6 { ", …" } else { "" };
    format!(
        "{ty} min {min:.6} max {max:.6} mean {mean:.6} [{}{more}]",
        head.join(", ")
    )
}

/// Runs `smelt run`.
pub fn run(m: &ArgMatches) -> CliResult<ExitCode> {
    let path = m.get_one::<PathBuf>("model").expect("required");
    let mut opts = import_options(m)?;
    let mut inputs = input_files(m, &opts.limits)?;
    let model = smelt_frontend::open(path, &opts.limits)?;
    let declared = model.summary().inputs;
    // Inputs fixed with --bind are constants; every other input needs a file.
    let mut missing = Vec::new();
    for d in &declared {
        // State inputs are not passed: they start at zero.
        if opts.bind.contains_key(&d.name) || opts.states.iter().any(|(i, _)| i == &d.name) {
            continue;
        }
        match inputs.get(&d.name) {
            Some(t) => {
                // The file's shape pins the input unless --input-shape did.
                opts.input_shapes
                    .entry(d.name.clone())
                    .or_insert_with(|| t.shape().to_vec());
            }
            None => missing.push(d.name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(CliError(format!(
            "no value for input(s) {}; give --input NAME=FILE.npy",
            missing.join(", ")
        )));
    }
    // A value for an input whose default is an initializer overrides it
    // (ONNX, onnxruntime): it is bound, so the initializer is not used.
    let defaults = model.summary().defaults;
    let overrides: Vec<String> = (inputs.keys())
        .filter(|n| defaults.iter().any(|d| &d.name == *n))
        .cloned()
        .collect();
    for name in overrides {
        let t = inputs.remove(&name).expect("listed above");
        opts.bind.insert(name, t);
    }
    for name in inputs.keys() {
        if !declared.iter().any(|d| &d.name == name) {
            let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            return Err(CliError(format!(
                "the model has no input '{name}' (its inputs: {})",
                names.join(", ")
            )));
        }
    }
    let graph = model.import(&opts)?;
    // The interpreter runs on this machine; the x86_64 figures only rank
    // alternatives.
    let costs = TargetCost::for_target("x86_64").expect("the cost table has x86_64");
    let (graph, _) = super::optimize::run(m, graph, costs)?;
    let mut args = Vec::with_capacity(graph.inputs.len());
    for &id in &graph.inputs {
        let v = graph.value(id);
        let t = inputs.remove(&v.name).expect("checked above");
        if t.dtype() != v.ty.dtype {
            return Err(CliError(format!(
                "input '{}': the file holds {} but the model takes {}",
                v.name,
                t.dtype(),
                v.ty
            )));
        }
        args.push(t);
    }
    let interp = Interpreter::new(&graph);
    let started = Instant::now();
    let show_progress = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let total = graph.nodes.len();
    let steps = m.get_one::<u64>("steps").copied().unwrap_or(1);
    let mut state = interp.zero_state()?;
    for _ in 1..steps {
        state = interp.step(args.clone(), state)?.1;
    }
    let outputs = interp.step_observed(args, state, |n, _| {
        // Progress for long runs, only on a terminal.
        if show_progress && last.elapsed() > Duration::from_millis(250) {
            last = Instant::now();
            let node = graph.node(n);
            eprint!(
                "\r\x1b[K[{}/{total}] {} ({})",
                n.index() + 1,
                node.name,
                node.op.name()
            );
            let _ = std::io::stderr().flush();
        }
    });
    if show_progress && started.elapsed() > Duration::from_millis(250) {
        eprint!("\r\x1b[K");
    }
    let outputs = outputs?.0;
    let dir = m.get_one::<PathBuf>("output-dir");
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError(format!("{}: {e}", dir.display())))?;
    }
    let mut written = std::collections::HashSet::new();
    for (&id, t) in graph.outputs.iter().zip(&outputs) {
        let name = &graph.value(id).name;
        println!("{name}: {}", summary(t));
        if let Some(dir) = dir {
            let file = smelt_frontend::npy::output_file_name(name);
            if !written.insert(file.clone()) {
                return Err(CliError(format!("two outputs map to the file name {file}")));
            }
            smelt_frontend::npy::write_npy(&dir.join(&file), t)?;
        }
    }
    let steps = if steps > 1 {
        format!(" × {steps} steps")
    } else {
        String::new()
    };
    eprintln!(
        "ran {} nodes{steps} in {:.3} s",
        total,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
