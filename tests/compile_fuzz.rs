//! The fuzzers' generators on fixed seeds: what CI runs of them on the
//! stable toolchain (the libFuzzer targets in `fuzz/` explore further with
//! `scripts/fuzz`).
//!
//! - Differential compilation: random valid graphs (`common/graphgen.rs`)
//!   compiled by Cranelift at -O0 and -O2 and by LLVM at -O2 for x86_64,
//!   run, and compared with the interpreter (`common/differential.rs`). A
//!   failure is shrunk to a minimal graph before it is reported.
//! - The optimizer alone: the same graphs through each rule file on its own
//!   (rewritten forms preferred, so every rule that matches is exercised)
//!   and through the full level-3 pipeline; every result must verify and
//!   evaluate like the original.

#[path = "common/differential.rs"]
mod differential;
#[path = "common/graphgen.rs"]
mod graphgen;
#[path = "common/targets.rs"]
mod targets;

use differential::{Config, check, close, verified};
use graphgen::{Case, generate, shrink};
use smelt_ir::interp::Interpreter;
use smelt_ir::print::print;
use smelt_passes::egraph::cost::TARGETS;
use smelt_passes::egraph::{Options, optimize};
use smelt_passes::rules::FILES;

/// Graphs per test: `SMELT_FUZZ_SEEDS`, or 24 (a longer campaign on the
/// stable toolchain sets it; `SMELT_FUZZ_FIRST` starts elsewhere).
fn seeds() -> std::ops::Range<u64> {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let first = var("SMELT_FUZZ_FIRST", 0);
    first..first + var("SMELT_FUZZ_SEEDS", 24)
}

/// Bytes per seed: enough for the largest graph the generator makes.
const BYTES: usize = 512;

/// The byte stream of seed `seed` (xorshift).
fn stream(seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..BYTES)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

#[test]
fn random_graphs_compile_like_the_interpreter() {
    let dir = targets::scratch("compile_fuzz", "diff");
    let (mut compared, mut nodes) = (0, 0);
    for seed in seeds() {
        let bytes = stream(seed);
        let case = generate(&bytes);
        verified(&case.graph).unwrap_or_else(|e| panic!("seed {seed}: the generator made {e}"));
        let work = dir.join(format!("seed{seed}"));
        let checked = check(&case, &Config::ALL, &work);
        if checked == Ok(true) {
            compared += 1;
            nodes += case.graph.nodes.len();
        }
        if checked.is_ok() {
            // Three programs a seed: a long campaign must not fill the disk.
            let _ = std::fs::remove_dir_all(&work);
        }
        if let Err(first) = checked {
            let small = shrink(&bytes, |b| {
                check(&generate(b), &Config::ALL, &dir.join("shrink")).is_err()
            });
            let reduced = check(&generate(&small), &Config::ALL, &dir.join("shrink"));
            panic!(
                "seed {seed}: {first}\nshrunk to {} bytes {small:?}:\n{}",
                small.len(),
                reduced.err().unwrap_or_default()
            );
        }
    }
    eprintln!(
        "{compared} of {} graphs ({nodes} nodes) compiled {} ways and compared",
        seeds().count(),
        Config::ALL.len()
    );
    assert!(
        compared * 2 > seeds().count(),
        "most graphs must be compared"
    );
}

/// The interpreter's outputs of `case`'s graph `g`, or `None` when it
/// refuses them.
fn outputs(g: &smelt_ir::Graph, case: &Case) -> Option<Vec<Vec<f64>>> {
    let out = Interpreter::new(g).run(case.inputs.clone()).ok()?;
    Some(out.iter().map(|t| t.to_f64_vec()).collect())
}

#[test]
fn the_optimizer_keeps_random_graphs_equal() {
    let target = TARGETS[0];
    for seed in seeds() {
        let case = generate(&stream(1 << 32 | seed));
        let Some(want) = outputs(&case.graph, &case) else {
            continue;
        };
        let mut runs: Vec<(String, Options)> = FILES
            .iter()
            .map(|f| {
                let mut o = Options::for_level(3, target).expect("level 3 optimizes");
                o.passes = vec![f.to_string()];
                o.prefer_rewritten = true;
                (format!("rule file {f}, rewritten forms first"), o)
            })
            .collect();
        runs.push(("level 3".into(), Options::for_level(3, target).unwrap()));
        for (what, opts) in runs {
            let (opt, _) = optimize(&case.graph, &opts)
                .unwrap_or_else(|e| panic!("seed {seed}, {what}: {e}\n{}", print(&case.graph)));
            verified(&opt).unwrap_or_else(|e| panic!("seed {seed}, {what}: {e}"));
            let got = outputs(&opt, &case).unwrap_or_else(|| {
                panic!(
                    "seed {seed}, {what}: the optimized graph does not run:\n{}",
                    print(&opt)
                )
            });
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let bad = (0..w.len()).find(|&i| !close(g[i], w[i]));
                assert!(
                    g.len() == w.len() && bad.is_none(),
                    "seed {seed}, {what}: output {k} differs at {bad:?}\nbefore:\n{}\nafter:\n{}",
                    print(&case.graph),
                    print(&opt)
                );
            }
        }
    }
}
