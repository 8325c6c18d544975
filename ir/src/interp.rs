//! The reference interpreter: evaluates a graph node by node with the op
//! table's reference kernels. It is the oracle for every later stage, so it
//! favours obvious correctness; it still frees each intermediate after its last
//! use and decodes each constant once, so MobileNet-size models run in seconds.
//!
//! A stateful graph ([`Graph::states`]) is still evaluated as a pure
//! function: [`Interpreter::step`] takes the state inputs and returns the
//! state outputs beside the graph outputs; [`Interpreter::run_steps`]
//! carries them from step to step, starting from zero bytes.

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
        for id in graph
            .outputs
            .iter()
            .chain(graph.states.iter().map(|s| &s.output))
        {
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
        // An encoded constant is read only by the ops `verify::reads_encoded`
        // admits, whose `eval` takes its values: the reference decoder's.
        let v = self.graph.value(id);
        if let (ValueDef::Const(b), false) = (&v.def, v.ty.is_dense()) {
            let t = crate::encoding::dequantize(&v.ty, b.as_slice())?;
            return Ok(self.consts[id.index()].get_or_init(|| t));
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
    /// outputs (for tracing and progress). A stateful graph runs one step
    /// from the zero state.
    pub fn run_observed(
        &self,
        inputs: Vec<Tensor>,
        observe: impl FnMut(NodeId, &[Tensor]),
    ) -> Result<Vec<Tensor>> {
        let state = self.zero_state()?;
        Ok(self.step_observed(inputs, state, observe)?.0)
    }

    /// The initial state of every pair of [`Graph::states`]: all zero bytes.
    pub fn zero_state(&self) -> Result<Vec<Tensor>> {
        let g = self.graph;
        g.states
            .iter()
            .map(|s| {
                let ty = &g.value(s.input).ty;
                Tensor::from_le_bytes(ty.dtype, ty.shape.clone(), &vec![0u8; ty.bytes()?])
            })
            .collect()
    }

    /// One step of a stateful graph: the outputs and the next state (in the
    /// order of [`Graph::states`]) from the inputs and the current state.
    pub fn step(
        &self,
        inputs: Vec<Tensor>,
        state: Vec<Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        self.step_observed(inputs, state, |_, _| {})
    }

    /// Runs `steps` steps (at least one) from the zero state with the same
    /// inputs each step, and returns the last step's outputs.
    pub fn run_steps(&self, inputs: Vec<Tensor>, steps: usize) -> Result<Vec<Tensor>> {
        let mut state = self.zero_state()?;
        for _ in 1..steps {
            state = self.step(inputs.clone(), state)?.1;
        }
        Ok(self.step(inputs, state)?.0)
    }

    /// Like [`Interpreter::step`], calling `observe` after every node.
    pub fn step_observed(
        &self,
        inputs: Vec<Tensor>,
        state: Vec<Tensor>,
        mut observe: impl FnMut(NodeId, &[Tensor]),
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let g = self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(Error::Shape(format!(
                "the graph takes {} inputs, {} were given",
                g.inputs.len(),
                inputs.len()
            )));
        }
        if state.len() != g.states.len() {
            return Err(Error::Shape(format!(
                "the graph has {} states, {} were given",
                g.states.len(),
                state.len()
            )));
        }
        let mut env: Vec<Option<Tensor>> = vec![None; g.values.len()];
        let state_inputs = g.states.iter().map(|s| &s.input);
        for (&id, t) in g
            .inputs
            .iter()
            .chain(state_inputs)
            .zip(inputs.into_iter().chain(state))
        {
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
        let result = |id: ValueId| match &g.value(id).def {
            ValueDef::Const(_) => self.constant(id).cloned(),
            ValueDef::Input | ValueDef::Node(..) => env[id.index()].clone().ok_or_else(|| {
                Error::Verify(format!("output '{}' was never computed", g.value(id).name))
            }),
        };
        let outputs = g
            .outputs
            .iter()
            .map(|&id| result(id))
            .collect::<Result<_>>()?;
        let next = g
            .states
            .iter()
            .map(|s| result(s.output))
            .collect::<Result<_>>()?;
        Ok((outputs, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::graph::{Graph, TensorType};
    use crate::ops::Op;
    use crate::ops::elementwise::{BinaryFn, Elementwise, UnaryFn};
    use crate::ops::test_support::{input, node};

    fn binary(f: BinaryFn) -> Op {
        Op::Elementwise(Elementwise::Binary(f))
    }

    fn unary(f: UnaryFn) -> Op {
        Op::Elementwise(Elementwise::Unary(f))
    }

    fn small_graph() -> Graph {
        // y = relu(x + c), z = x * x
        let mut g = Graph::new();
        let x = input(&mut g, "x", DType::F32, &[2, 2]);
        let c = g
            .add_const("c", &Tensor::from_vec(vec![2], vec![1f32, -10.]).unwrap())
            .unwrap();
        let s = node(&mut g, "add", binary(BinaryFn::Add), &[x, c], "s").unwrap();
        let y = node(&mut g, "relu", unary(UnaryFn::Relu), &[s], "y").unwrap();
        let z = node(&mut g, "sq", binary(BinaryFn::Mul), &[x, x], "z").unwrap();
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
        let a = input(&mut g, "a", DType::F32, &[2, 3]);
        let b = input(&mut g, "b", DType::F32, &[3, 2]);
        let e = node(&mut g, "bad_add", binary(BinaryFn::Add), &[a, b], "c")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("node 'bad_add' (Add): shape error"), "{e}");
        let i = input(&mut g, "i", DType::I64, &[2, 3]);
        let e = node(&mut g, "mixed", binary(BinaryFn::Add), &[a, i], "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("different dtypes f32 and i64"), "{e}");
    }

    /// `y = s + x`, with `s` the state and `y` its next value (and the
    /// output): the accumulator of the stateful examples.
    fn accumulator() -> (Graph, ValueId, ValueId, ValueId) {
        let mut g = Graph::new();
        let ty = TensorType::new(DType::F32, vec![3]);
        let x = g.add_input("x", ty.clone()).unwrap();
        let s = g.add_state_input("s", ty).unwrap();
        let y = node(&mut g, "acc", binary(BinaryFn::Add), &[s, x], "y").unwrap();
        g.outputs = vec![y];
        g.add_state(s, y).unwrap();
        (g, x, s, y)
    }

    #[test]
    fn a_stateful_graph_carries_its_state_across_steps() {
        let (g, ..) = accumulator();
        crate::verify::verify(&g).unwrap();
        let x = Tensor::from_vec(vec![3], vec![1f32, -2., 0.5]).unwrap();
        let it = Interpreter::new(&g);
        for steps in 1..4 {
            let out = it.run_steps(vec![x.clone()], steps).unwrap();
            let k = steps as f32;
            let want = Tensor::from_vec(vec![3], vec![k, -2. * k, 0.5 * k]).unwrap();
            assert_eq!(out[0], want, "{steps} steps");
        }
        // One plain run is one step from the zero state.
        assert_eq!(it.run(vec![x.clone()]).unwrap()[0], x);
        let printed = crate::print::print(&g);
        assert!(printed.contains("  state %s: f32[3] <- %y\n"), "{printed}");
    }

    #[test]
    fn verifier_refuses_bad_state_pairs() {
        let check = |g: &Graph, want: &str| {
            let e = crate::verify::verify(g).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        // A graph input cannot be state.
        let (mut g, x, _, y) = accumulator();
        g.states.push(crate::graph::State {
            input: x,
            output: y,
        });
        check(&g, "state input 'x' is also a graph input");
        // The same input paired twice.
        let (mut g, _, s, _) = accumulator();
        let z = node(&mut g, "z", unary(UnaryFn::Relu), &[s], "z").unwrap();
        g.states.push(crate::graph::State {
            input: s,
            output: z,
        });
        check(&g, "state input 's' is paired twice");
        // Two states with one next value.
        let (mut g, _, _, y) = accumulator();
        let t = g
            .add_state_input("t", TensorType::new(DType::F32, vec![3]))
            .unwrap();
        g.add_state(t, y).unwrap();
        check(&g, "value 'y' is the next value of two states");
        // A state input that is not an input, and types that differ.
        let (mut g, _, s, y) = accumulator();
        g.states[0].input = y;
        check(&g, "state input 'y' is not defined as an input");
        let u = g
            .add_state_input("u", TensorType::new(DType::F32, vec![2]))
            .unwrap();
        g.states[0].input = s;
        g.states.push(crate::graph::State {
            input: u,
            output: s,
        });
        check(
            &g,
            "state input 'u' is f32[2] but its next value 's' is f32[3]",
        );
        assert!(g.add_state(u, y).is_err());
        // A value that does not exist.
        let (mut g, ..) = accumulator();
        g.states[0].output = ValueId(99);
        check(&g, "a state output refers to value #99");
    }

    #[test]
    fn prune_keeps_state_and_what_it_depends_on() {
        let (mut g, ..) = accumulator();
        g.outputs.clear();
        g.prune();
        crate::verify::verify(&g).unwrap();
        assert_eq!((g.nodes.len(), g.states.len()), (1, 1));
        assert_eq!(g.value(g.states[0].output).name, "y");
    }

    #[test]
    fn verifier_catches_use_before_definition() {
        let mut g = small_graph();
        g.nodes.swap(0, 1);
        let e = crate::verify::verify(&g).unwrap_err().to_string();
        assert!(e.contains("defined by a later node"), "{e}");
    }
}
