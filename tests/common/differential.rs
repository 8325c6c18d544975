//! One differential check: a generated graph ([`super::graphgen`]) run by
//! the interpreter and compiled by each configuration (backend and opt
//! level) into an x86_64 executable that runs here; every output must
//! agree with the interpreter's within [`ATOL`] + [`RTOL`]·|expected| (NaN
//! where the interpreter has NaN, infinities of the same sign).
//!
//! The tolerance covers what the compiler may legitimately change: sums
//! reassociated by fusion and vectorization, and math functions that are
//! within a few ulp. A discontinuous op (Floor, Round, a compare, a cast)
//! fed a value that reassociation moved across a step would show as a
//! large difference; such reports are read, not trusted blindly: the
//! failure text prints the graph.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use smelt::{Backend, CompileOptions, LlvmConfig};
use smelt_frontend::Limits;
use smelt_frontend::npy::{output_file_name, read_npy, write_npy};
use smelt_ir::Graph;
use smelt_ir::interp::Interpreter;
use smelt_ir::print::print;

/// Absolute tolerance.
pub const ATOL: f64 = 1e-4;
/// Relative tolerance.
pub const RTOL: f64 = 1e-3;

/// A backend and optimization level to compile with.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `true` for LLVM, `false` for Cranelift.
    pub llvm: bool,
    /// `-O` level.
    pub opt: u8,
}

impl Config {
    /// Cranelift -O0, Cranelift -O2 and LLVM -O2: both code generators,
    /// with and without the optimizer.
    pub const ALL: [Config; 3] = [
        Config {
            llvm: false,
            opt: 0,
        },
        Config {
            llvm: false,
            opt: 2,
        },
        Config { llvm: true, opt: 2 },
    ];

    fn backend_name(self) -> &'static str {
        if self.llvm { "llvm" } else { "cranelift" }
    }

    fn backend(self) -> Backend {
        if self.llvm {
            Backend::Llvm(LlvmConfig::default())
        } else {
            Backend::Cranelift
        }
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -O{}", self.backend_name(), self.opt)
    }
}

/// Whether `got` agrees with the interpreter's `want`.
pub fn close(got: f64, want: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= ATOL + RTOL * want.abs()
}

/// Checks `case` under each of `configs`, working in `dir`: `Ok(true)`
/// when all agree, `Ok(false)` when the interpreter refuses the inputs
/// (nothing to compare), `Err` saying what disagreed (or failed to compile
/// or run), with the graph.
pub fn check(case: &super::graphgen::Case, configs: &[Config], dir: &Path) -> Result<bool, String> {
    let g = &case.graph;
    let want = match Interpreter::new(g).run(case.inputs.clone()) {
        Ok(w) => w,
        // A graph the interpreter refuses tells nothing about the compiler.
        Err(_) => return Ok(false),
    };
    let fail = |what: String| Err(format!("{what}\n{}", print(g)));
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut args = Vec::new();
    for (id, t) in g.inputs.iter().zip(&case.inputs) {
        let name = &g.value(*id).name;
        let file = dir.join(format!("{name}.npy"));
        write_npy(&file, t).map_err(|e| e.to_string())?;
        args.push("--input".to_string());
        args.push(format!("{name}={}", file.display()));
    }
    for config in configs {
        let exe = dir.join(format!("model-{}-{}", config.backend_name(), config.opt));
        let opts = CompileOptions::new("x86_64", config.backend(), &exe)
            .map_err(|e| e.to_string())?
            .opt_level(config.opt);
        if let Err(e) = smelt::compile(g, &opts) {
            return fail(format!("{config}: does not compile: {e}"));
        }
        let out_dir = dir.join(format!("out-{}-{}", config.backend_name(), config.opt));
        let run = Command::new(&exe)
            .args(&args)
            .arg("-o")
            .arg(&out_dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !run.status.success() {
            let stderr = String::from_utf8_lossy(&run.stderr);
            return fail(format!(
                "{config}: the program failed ({}): {stderr}",
                run.status
            ));
        }
        for (id, w) in g.outputs.iter().zip(&want) {
            let name = &g.value(*id).name;
            let file = out_dir.join(output_file_name(name));
            let got = read_npy(&file, &Limits::default()).map_err(|e| e.to_string())?;
            if got.shape() != w.shape() {
                return fail(format!(
                    "{config}: output '{name}' has shape {:?}, the interpreter {:?}",
                    got.shape(),
                    w.shape()
                ));
            }
            let (gv, wv) = (got.to_f64_vec(), w.to_f64_vec());
            if let Some(k) = (0..wv.len()).find(|&k| !close(gv[k], wv[k])) {
                return fail(format!(
                    "{config}: output '{name}' element {k} is {}, the interpreter says {}",
                    gv[k], wv[k]
                ));
            }
        }
    }
    Ok(true)
}

/// Checks `graph` still verifies; the optimizer fuzzer's and the smoke
/// test's first question about any graph they make.
pub fn verified(graph: &Graph) -> Result<(), String> {
    smelt_ir::verify::verify(graph).map_err(|e| format!("{e}\n{}", print(graph)))
}
