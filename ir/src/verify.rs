//! The verifier: checks a graph's invariants (every use defined before it,
//! definitions consistent, types re-inferable, ranks and names sane, state
//! pairs well formed). Run after import and after every pass.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::graph::{Graph, ValueDef};
use crate::ops::OpDef;
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
        for id in node.inputs.iter().flatten() {
            if id.index() >= g.values.len() {
                return Err(ctx(Error::Verify(format!(
                    "input refers to value #{} which does not exist",
                    id.0
                ))));
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
        if i.ty != o.ty {
            return Err(Error::Verify(format!(
                "state input '{}' is {} but its next value '{}' is {}",
                i.name, i.ty, o.name, o.ty
            )));
        }
    }
    Ok(())
}
