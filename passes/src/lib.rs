//! Graph analyses and optimisations over [`smelt_ir::Graph`].
//!
//! - [`egraph`]: the optimizer (egg equality saturation, cost model,
//!   extraction back to a graph), with its rules in [`rules`].
//! - [`memory`]: activation liveness and the peak-memory estimate `smelt
//!   inspect` reports.
//! - [`quantize`]: compile-time weight quantization (`--quantize`).

pub mod batched;
pub mod egraph;
pub mod memory;
pub mod quantize;
pub mod rules;

/// Re-exported for tests that inspect rules.
pub use egg;
pub use egraph::{Options, Pipeline, Report, optimize};
