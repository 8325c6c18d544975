//! The verifier: checks a graph's invariants (every use defined before it,
//! definitions consistent, types re-inferable, ranks and names sane,
//! encodings only where something reads them, state pairs well formed). Run
//! after import and after every pass.

use std::collections::HashSet;

use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueDef, check_state_types};
use crate::ops::{Op, OpDef};
use crate::shape::MAX_RANK;

/// Checks every invariant of `g`, returning the first violation.
pub fn verify(g: &Graph) -> Result<()> {
    let mut names = HashSet::new();
    for v in &g.values {
        if !names.insert(v.name.as_str()) {
            return Err(Error::Verify(format!(
                "value name '{}' is defined twice",
                v.name
            )));
        }
        if v.ty.shape.len() > MAX_RANK {
            return Err(Error::Verify(format!(
                "value '{}' has rank {} (at most {MAX_RANK})",
                v.name,
                v.ty.shape.len()
            )));
        }
        v.ty.bytes()
            .map_err(|e| Error::Verify(format!("value '{}': {e}", v.name)))?;
        // Encoded bytes exist only as weights: inputs arrive dense at run
        // time and no op produces an encoded result yet.
        if !v.ty.is_dense() && !matches!(v.def, ValueDef::Const(_)) {
            let what = match v.def {
                ValueDef::Input => format!("graph input '{}'", v.name),
                _ => format!("the computed value '{}'", v.name),
            };
            return Err(Error::UnsupportedEncoding {
                encoding: v.ty.encoding,
                what,
            });
        }
    }
    for &id in &g.inputs {
        if !matches!(g.value(id).def, ValueDef::Input) {
            return Err(Error::Verify(format!(
                "graph input '{}' is not defined as an input",
                g.value(id).name
            )));
        }
    }
    for (n, node) in g.nodes.iter().enumerate() {
        let ctx = |e: Error| e.at_node(&node.name, node.op.name());
        for (k, id) in node.inputs.iter().enumerate() {
            let Some(id) = id else { continue };
            if id.index() >= g.values.len() {
                return Err(ctx(Error::Verify(format!(
                    "input refers to value #{} which does not exist",
                    id.0
                ))));
            }
            let ty = &g.value(*id).ty;
            if !ty.is_dense() && !reads_encoded(&node.op, k, ty.encoding) {
                return Err(ctx(Error::UnsupportedEncoding {
                    encoding: ty.encoding,
                    what: format!("input {k} ('{}')", g.value(*id).name),
                }));
            }
            if let ValueDef::Node(p, _) = g.value(*id).def
                && p.index() >= n
            {
                return Err(ctx(Error::Verify(format!(
                    "input '{}' is defined by a later node (the graph has a cycle or is not in topological order)",
                    g.value(*id).name
                ))));
            }
        }
        for (k, id) in node.outputs.iter().enumerate() {
            match g.values.get(id.index()).map(|v| &v.def) {
                Some(ValueDef::Node(p, i)) if p.index() == n && *i == k => {}
                _ => {
                    return Err(ctx(Error::Verify(format!(
                        "output {k} is not defined by this node"
                    ))));
                }
            }
        }
        let types = g.infer(&node.op, &node.inputs).map_err(ctx)?;
        for (k, id) in node.outputs.iter().enumerate() {
            let v = g.value(*id);
            if types.get(k) != Some(&v.ty) {
                return Err(ctx(Error::Verify(format!(
                    "output '{}' is recorded as {} but infers as {}",
                    v.name,
                    v.ty,
                    types
                        .get(k)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "nothing".into())
                ))));
            }
        }
    }
    for &id in &g.outputs {
        if id.index() >= g.values.len() {
            return Err(Error::Verify(format!(
                "graph output refers to value #{} which does not exist",
                id.0
            )));
        }
        let v = g.value(id);
        if !v.ty.is_dense() {
            return Err(Error::UnsupportedEncoding {
                encoding: v.ty.encoding,
                what: format!("graph output '{}'", v.name),
            });
        }
    }
    verify_states(g)
}

/// Checks the state pairs: each input is an input value outside the
/// signature and the input of one pair only; each output exists, has the
/// input's type and is the output of one pair only. An output may be a
/// state input (its own: the state never changes; another pair's: the
/// states rotate, which the memory plan stages).
fn verify_states(g: &Graph) -> Result<()> {
    let mut ins = HashSet::new();
    let mut outs = HashSet::new();
    for s in &g.states {
        for (id, what) in [(s.input, "input"), (s.output, "output")] {
            if id.index() >= g.values.len() {
                return Err(Error::Verify(format!(
                    "a state {what} refers to value #{} which does not exist",
                    id.0
                )));
            }
        }
        let (i, o) = (g.value(s.input), g.value(s.output));
        if !matches!(i.def, ValueDef::Input) {
            return Err(Error::Verify(format!(
                "state input '{}' is not defined as an input",
                i.name
            )));
        }
        if g.inputs.contains(&s.input) {
            return Err(Error::Verify(format!(
                "state input '{}' is also a graph input (the caller never passes state)",
                i.name
            )));
        }
        if !ins.insert(s.input) {
            return Err(Error::Verify(format!(
                "state input '{}' is paired twice",
                i.name
            )));
        }
        if !outs.insert(s.output) {
            return Err(Error::Verify(format!(
                "value '{}' is the next value of two states",
                o.name
            )));
        }
        check_state_types(i, o)?;
    }
    Ok(())
}

/// Whether `op` reads its operand `input` directly in `encoding`: the one
/// place an op declares encoded operands: `Decode`'s and `EncodedGather`'s
/// weight (input 0) and `EncodedMatMul`'s weight (input 1), in a block or
/// affine encoding. Every
/// other encoded operand is refused; the quantized kernels add their arms
/// here (and their lowering, cost and evaluation handle the encoding, see
/// `docs/adding-an-encoding.md`).
pub fn reads_encoded(op: &Op, input: usize, encoding: Encoding) -> bool {
    use crate::ops::weights::Weights;
    let encoded = matches!(encoding, Encoding::Block(_) | Encoding::Affine(_));
    match op {
        Op::Weights(Weights::Decode) => encoded && input == 0,
        Op::Weights(Weights::EncodedMatMul) => encoded && input == 1,
        Op::Weights(Weights::EncodedGather) => encoded && input == 0,
        Op::Elementwise(_)
        | Op::Linalg(_)
        | Op::Conv(_)
        | Op::Norm(_)
        | Op::Reduce(_)
        | Op::Layout(_)
        | Op::Quant(_)
        | Op::Fused(_) => false,
    }
}
