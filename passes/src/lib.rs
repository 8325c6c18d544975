//! Graph analyses and optimisations over [`smelt_ir::Graph`].
//!
//! Today: activation liveness and the peak-memory estimate `smelt inspect`
//! reports ([`memory`]). The e-graph optimizer and the arena planner land here
//! next (see ARCHITECTURE.md).

pub mod memory;
