//! The `smelt` command line: the only place that prints.
//!
//! `smelt inspect` reports on a model before anything is compiled; `smelt run`
//! runs the reference interpreter on `.npy`/`.npz` inputs; `smelt compile`
//! turns flags into `smelt::CompileOptions` and calls the library's
//! `smelt::compile` (see `src/lib.rs`), printing what it reports.

#![allow(clippy::print_stdout)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let result = match matches.subcommand() {
        Some(("inspect", m)) => cli::inspect::run(m),
        Some(("run", m)) => cli::run::run(m),
        Some(("compile", m)) => cli::compile::run(m),
        _ => unreachable!("clap requires a subcommand"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smelt: error: {e}");
            ExitCode::FAILURE
        }
    }
}
