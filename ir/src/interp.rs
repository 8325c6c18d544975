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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::graph::{Graph, TensorType};
    use crate::ops::Op;
    use crate::ops::elementwise::{BinaryFn, Elementwise, UnaryFn};

    fn small_graph() -> Graph {
        // y = relu(x + c), z = x * x
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![2, 2]))
            .unwrap();
        let c = g
            .add_const("c", &Tensor::from_vec(vec![2], vec![1f32, -10.]).unwrap())
            .unwrap();
        let s = g
            .add_node(
                "add",
                Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                vec![Some(x), Some(c)],
                vec!["s".into()],
            )
            .unwrap()[0];
        let y = g
            .add_node(
                "relu",
                Op::Elementwise(Elementwise::Unary(UnaryFn::Relu)),
                vec![Some(s)],
                vec!["y".into()],
            )
            .unwrap()[0];
        let z = g
            .add_node(
                "sq",
                Op::Elementwise(Elementwise::Binary(BinaryFn::Mul)),
                vec![Some(x), Some(x)],
                vec!["z".into()],
            )
            .unwrap()[0];
        g.outputs = vec![y, z];
        g
    }

    #[test]
    fn runs_and_frees() {
        let g = small_graph();
        crate::verify::verify(&g).unwrap();
        let x = Tensor::from_vec(vec![2, 2], vec![1f32, 2., 3., 4.]).unwrap();
        let out = Interpreter::new(&g).run(vec![x]).unwrap();
        assert_eq!(
            out[0],
            Tensor::from_vec(vec![2, 2], vec![2f32, 0., 4., 0.]).unwrap()
        );
        assert_eq!(
            out[1],
            Tensor::from_vec(vec![2, 2], vec![1f32, 4., 9., 16.]).unwrap()
        );
    }

    #[test]
    fn wrong_input_type_is_an_error_naming_the_input() {
        let g = small_graph();
        let x = Tensor::from_vec(vec![4], vec![1f32, 2., 3., 4.]).unwrap();
        let e = Interpreter::new(&g).run(vec![x]).unwrap_err().to_string();
        assert!(e.contains("input 'x' must be f32[2,2]"), "{e}");
        let x = Tensor::from_vec(vec![2, 2], vec![1i64, 2, 3, 4]).unwrap();
        assert!(Interpreter::new(&g).run(vec![x]).is_err());
    }

    #[test]
    fn inference_errors_name_the_node() {
        let mut g = Graph::new();
        let a = g
            .add_input("a", TensorType::new(DType::F32, vec![2, 3]))
            .unwrap();
        let b = g
            .add_input("b", TensorType::new(DType::F32, vec![3, 2]))
            .unwrap();
        let e = g
            .add_node(
                "bad_add",
                Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                vec![Some(a), Some(b)],
                vec!["c".into()],
            )
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("node 'bad_add' (Add): shape error"), "{e}");
        let i = g
            .add_input("i", TensorType::new(DType::I64, vec![2, 3]))
            .unwrap();
        let e = g
            .add_node(
                "mixed",
                Op::Elementwise(Elementwise::Binary(BinaryFn::Add)),
                vec![Some(a), Some(i)],
                vec!["d".into()],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("different dtypes f32 and i64"), "{e}");
    }

    #[test]
    fn verifier_catches_use_before_definition() {
        let mut g = small_graph();
        g.nodes.swap(0, 1);
        let e = crate::verify::verify(&g).unwrap_err().to_string();
        assert!(e.contains("defined by a later node"), "{e}");
    }
}
