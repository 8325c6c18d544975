//! Native code generation.
//!
//! The graph is lowered to a loop-level kernel IR ([`kernel`], [`lower`])
//! with every activation placed in one arena by the memory plan ([`plan`]);
//! math functions are expanded into polynomials ([`mathexp`]); the Cranelift
//! backend ([`cranelift`]) or the LLVM backend ([`llvm`]) turns the program
//! into an object file that exports the ABI of
//! `runtime/include/smelt_model.h`.

pub mod abi;
pub mod artifact;
pub mod cranelift;
#[cfg(test)]
mod difftest;
pub mod error;
#[cfg(test)]
pub(crate) mod eval;
pub mod kernel;
pub mod kernel_parse;
pub mod llvm;
pub mod lower;
pub mod mathexp;
pub mod pipeline;
pub mod plan;
pub mod schedule;
pub mod split;
pub mod target;
pub mod verify;

pub use error::{CodegenError, Error};
