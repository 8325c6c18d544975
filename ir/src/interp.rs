//! The reference interpreter: evaluates a graph node by node with the op
//! table's reference kernels. It is the oracle for every later stage, so it
//! favours obvious correctness; it still frees each intermediate after its last
//! use and decodes each constant once, so MobileNet-size models run in seconds.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, TensorType, ValueDef, ValueId};
use crate::ops::OpDef;
use crate::tensor::Tensor;

/// Runs one graph; reusable across runs (constants stay decoded).
pub struct Interpreter<'g> {
    graph: &'g Graph,
    consts: Vec<OnceLock<Tensor>>,
    /// For each value, the index of the last node that reads it (`usize::MAX`
    /// for graph outputs, which must survive to the end).
    last_use: Vec<usize>,
}

impl<'g> Interpreter<'g> {
    /// Prepares to run `graph`.
    pub fn new(graph: &'g Graph) -> Interpreter<'g> {
        let mut last_use = vec![0usize; graph.values.len()];
        for (n, node) in graph.nodes.iter().enumerate() {
            for id in node.inputs.iter().flatten() {
                last_use[id.index()] = n;
            }
        }
        for id in &graph.outputs {
            last_use[id.index()] = usize::MAX;
        }
        let consts = (0..graph.values.len()).map(|_| OnceLock::new()).collect();
        Interpreter {
            graph,
            consts,
            last_use,
        }
    }

    fn constant(&self, id: ValueId) -> Result<&Tensor> {
        if let Some(t) = self.consts[id.index()].get() {
            return Ok(t);
        }
        let t = self.graph.const_value(id).ok_or_else(|| {
            Error::Verify(format!(
                "value '{}' is not a constant",
                self.graph.value(id).name
            ))
        })??;
        Ok(self.consts[id.index()].get_or_init(|| t))
    }

    /// Runs the graph on `inputs` (in the order of [`Graph::inputs`]) and returns
    /// the outputs (in the order of [`Graph::outputs`]).
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.run_observed(inputs, |_, _| {})
    }

    /// Like [`Interpreter::run`], calling `observe` after every node with its
    /// outputs (for tracing and progress).
    pub fn run_observed(
        &self,
        inputs: Vec<Tensor>,
        mut observe: impl FnMut(NodeId, &[Tensor]),
    ) -> Result<Vec<Tensor>> {
        let g = self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(Error::Shape(format!(
                "the graph takes {} inputs, {} were given",
                g.inputs.len(),
                inputs.len()
            )));
        }
        let mut env: Vec<Option<Tensor>> = vec![None; g.values.len()];
        for (&id, t) in g.inputs.iter().zip(inputs) {
            let v = g.value(id);
            let got = TensorType::new(t.dtype(), t.shape().to_vec());
            if got != v.ty {
                return Err(Error::Shape(format!(
                    "input '{}' must be {}, got {got}",
                    v.name, v.ty
                )));
            }
            env[id.index()] = Some(t);
        }
        for (n, node) in g.nodes.iter().enumerate() {
            let ctx = |e: Error| e.at_node(&node.name, node.op.name());
            let mut args: Vec<Option<&Tensor>> = Vec::with_capacity(node.inputs.len());
            for inp in &node.inputs {
                args.push(match inp {
                    None => None,
                    Some(id) => Some(match &g.value(*id).def {
                        ValueDef::Const(_) => self.constant(*id).map_err(ctx)?,
                        ValueDef::Input | ValueDef::Node(..) => {
                            env[id.index()].as_ref().ok_or_else(|| {
                                ctx(Error::Verify(format!(
                                    "value '{}' is used before it is defined",
                                    g.value(*id).name
                                )))
                            })?
                        }
                    }),
                });
            }
            let outs = node.op.eval(&args).map_err(ctx)?;
            if outs.len() < node.outputs.len() {
                return Err(ctx(Error::Verify(format!(
                    "evaluation gave {} outputs, the node has {}",
                    outs.len(),
                    node.outputs.len()
                ))));
            }
            for (&id, t) in node.outputs.iter().zip(&outs) {
                let want = &g.value(id).ty;
                if t.dtype() != want.dtype || t.shape() != want.shape.as_slice() {
                    return Err(ctx(Error::Verify(format!(
                        "output '{}' evaluated to {}{:?} but was inferred as {want}",
                        g.value(id).name,
                        t.dtype(),
                        t.shape()
                    ))));
                }
            }
            observe(NodeId(n as u32), &outs);
            for (&id, t) in node.outputs.iter().zip(outs) {
                if self.last_use[id.index()] != 0 || g.outputs.contains(&id) {
                    env[id.index()] = Some(t);
                }
            }
            // Free what no later node reads.
            for id in node.inputs.iter().flatten() {
                if self.last_use[id.index()] == n {
                    env[id.index()] = None;
                }
            }
        }
        g.outputs
            .iter()
            .map(|&id| match &g.value(id).def {
                ValueDef::Const(_) => self.constant(id).cloned(),
                ValueDef::Input | ValueDef::Node(..) => env[id.index()].clone().ok_or_else(|| {
                    Error::Verify(format!("output '{}' was never computed", g.value(id).name))
                }),
            })
            .collect()
    }
}
