//! Differential compiler fuzzing: the bytes choose a random valid graph
//! (`tests/common/graphgen.rs`), which is compiled by Cranelift (-O0, -O2)
//! and LLVM (-O2) for x86_64, run, and compared with the interpreter
//! (`tests/common/differential.rs`). A disagreement, a compile error or a
//! failing program is a crash; `-minimize_crash=1` shrinks its bytes, and
//! so its graph.

#![no_main]

#[path = "../../tests/common/differential.rs"]
mod differential;
#[path = "../../tests/common/graphgen.rs"]
mod graphgen;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let case = graphgen::generate(data);
    differential::verified(&case.graph).expect("the generator makes valid graphs");
    let dir = std::env::temp_dir().join(format!("smelt-compile-diff-{}", std::process::id()));
    if let Err(e) = differential::check(&case, &differential::Config::ALL, &dir) {
        panic!("{e}");
    }
});
