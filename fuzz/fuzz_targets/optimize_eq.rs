//! The optimizer alone: the bytes choose a random valid graph
//! (`tests/common/graphgen.rs`) and a rule file; the graph is optimized by
//! that file alone with rewritten forms preferred (so each rule that
//! matches is applied) and by the full level-3 pipeline. Each result must
//! verify and evaluate like the original within the differential
//! tolerance.

#![no_main]

#[path = "../../tests/common/differential.rs"]
mod differential;
#[path = "../../tests/common/graphgen.rs"]
mod graphgen;

use libfuzzer_sys::fuzz_target;
use smelt_ir::interp::Interpreter;
use smelt_ir::print::print;
use smelt_passes::egraph::cost::TARGETS;
use smelt_passes::egraph::{Options, optimize};
use smelt_passes::rules::FILES;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let case = graphgen::generate(rest);
    let Ok(want) = Interpreter::new(&case.graph).run(case.inputs.clone()) else {
        return;
    };
    let mut opts = Options::for_level(3, TARGETS[0]).expect("level 3 optimizes");
    if let Some(file) = FILES.get(pick as usize % (FILES.len() + 1)) {
        opts.passes = vec![file.to_string()];
        opts.prefer_rewritten = true;
    }
    let (opt, _) = optimize(&case.graph, &opts).expect("the optimizer accepts a valid graph");
    differential::verified(&opt).expect("the optimized graph verifies");
    let got = Interpreter::new(&opt)
        .run(case.inputs.clone())
        .expect("the optimized graph runs");
    for (g, w) in got.iter().zip(&want) {
        let (g, w) = (g.to_f64_vec(), w.to_f64_vec());
        let same = g.len() == w.len() && g.iter().zip(&w).all(|(a, b)| differential::close(*a, *b));
        assert!(same, "{:?} changed the graph's outputs\nbefore:\n{}\nafter:\n{}", opts.passes, print(&case.graph), print(&opt));
    }
});
