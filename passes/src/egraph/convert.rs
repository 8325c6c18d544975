//! Graph → e-graph and extracted e-graph → graph.
//!
//! The way in maps every value to an e-class: inputs and constants become
//! leaves that name the source value (weights are referenced, not copied),
//! each node one op e-node (a multi-result node a tuple class read with
//! `Get`). The way back walks the chosen e-nodes from the graph outputs in
//! post-order and re-adds them with `Graph::add_node`, which re-infers and
//! so re-checks every type. Names: inputs keep theirs; a class takes the
//! name of a graph output it computes, else of the first source value in it;
//! node names are kept where the class had a node; new ones are derived.
//! State pairs ([`smelt_ir::Graph::states`]) survive: state inputs are
//! leaves like inputs, state outputs are roots like outputs, and the rebuilt
//! graph pairs them again in the same order.

use std::collections::{HashMap, HashSet};

use egg::{Id, Language};
use smelt_ir::ops::layout::Layout;
use smelt_ir::{Graph, Op, TensorType, ValueDef, ValueId};

use super::analysis::{EG, IrAnalysis};
use super::lang::{ENode, OpRef};

/// The source graph's values and nodes as e-classes.
pub struct Loaded {
    /// The e-graph.
    pub egraph: EG,
    /// The class of each source value (`None` for values no node defines and
    /// no input or constant is: cannot happen in a verified graph).
    pub value_class: Vec<Option<Id>>,
    /// The class of each node (its result, or its tuple).
    pub node_class: Vec<Id>,
}

/// Builds the e-graph of `g`.
pub fn load(g: &Graph, fold_limit: usize) -> Loaded {
    let mut an = IrAnalysis::default();
    an.fold_limit = fold_limit;
    an.weights = g
        .values
        .iter()
        .map(|v| match &v.def {
            ValueDef::Const(b) => Some((v.ty.clone(), b.clone())),
            ValueDef::Input | ValueDef::Node(..) => None,
        })
        .collect();
    an.input_types = g
        .values
        .iter()
        .map(|v| match v.def {
            ValueDef::Input => Some(v.ty.clone()),
            ValueDef::Const(_) | ValueDef::Node(..) => None,
        })
        .collect();
    let mut eg = EG::new(an);
    let mut value_class: Vec<Option<Id>> = vec![None; g.values.len()];
    for (i, v) in g.values.iter().enumerate() {
        match v.def {
            ValueDef::Input => value_class[i] = Some(eg.add(ENode::Input(i as u32))),
            ValueDef::Const(_) => value_class[i] = Some(eg.add(ENode::Weight(i as u32))),
            ValueDef::Node(..) => {}
        }
    }
    let absent = eg.add(ENode::Absent);
    let mut node_class = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let args: Vec<Id> = node
            .inputs
            .iter()
            .map(|i| match i {
                Some(v) => value_class[v.index()].expect("verified graph: defined before use"),
                None => absent,
            })
            .collect();
        let n_out = node.outputs.len();
        let id = eg.add(ENode::Op(OpRef::new(node.op.clone(), n_out), args));
        node_class.push(id);
        if n_out == 1 {
            value_class[node.outputs[0].index()] = Some(id);
        } else {
            for (k, o) in node.outputs.iter().enumerate() {
                value_class[o.index()] = Some(eg.add(ENode::Get(k, [id])));
            }
        }
    }
    // State outputs are roots like graph outputs: the next step reads them.
    eg.analysis.roots = g
        .outputs
        .iter()
        .chain(g.states.iter().map(|s| &s.output))
        .filter_map(|o| value_class[o.index()])
        .collect();
    eg.rebuild();
    Loaded {
        egraph: eg,
        value_class,
        node_class,
    }
}

/// Why rebuilding the graph failed (an optimizer bug: reported, not hidden).
#[derive(Debug)]
pub struct RebuildError(pub String);

/// Builds the optimized graph from the chosen e-node of each class
/// (`choose` gives `None` for a class extraction found no node for).
pub fn rebuild(
    src: &Graph,
    loaded: &Loaded,
    choose: &dyn Fn(Id) -> Option<ENode>,
) -> Result<Graph, RebuildError> {
    let eg = &loaded.egraph;
    let find = |id: Id| eg.find(id);
    // Preferred names per class: inputs, then outputs, then first source name.
    let mut class_name: HashMap<Id, String> = HashMap::new();
    let mut node_name: HashMap<Id, String> = HashMap::new();
    let state_inputs: Vec<ValueId> = src.states.iter().map(|s| s.input).collect();
    for &i in src.inputs.iter().chain(&state_inputs) {
        if let Some(c) = loaded.value_class[i.index()] {
            class_name
                .entry(find(c))
                .or_insert_with(|| src.value(i).name.clone());
        }
    }
    for &o in &src.outputs {
        if let Some(c) = loaded.value_class[o.index()] {
            class_name
                .entry(find(c))
                .or_insert_with(|| src.value(o).name.clone());
        }
    }
    for (i, v) in src.values.iter().enumerate() {
        if let Some(c) = loaded.value_class[i] {
            class_name.entry(find(c)).or_insert_with(|| v.name.clone());
        }
    }
    for (n, node) in src.nodes.iter().enumerate() {
        node_name
            .entry(find(loaded.node_class[n]))
            .or_insert_with(|| node.name.clone());
    }
    let mut out = Graph::new();
    let mut namer = Names::default();
    let mut built: HashMap<Id, Vec<ValueId>> = HashMap::new();
    for &i in &src.inputs {
        let v = src.value(i);
        let name = namer.unique(&v.name);
        let id = out
            .add_input(name, v.ty.clone())
            .map_err(|e| RebuildError(e.to_string()))?;
        if let Some(c) = loaded.value_class[i.index()] {
            built.entry(find(c)).or_insert_with(|| vec![id]);
        }
    }
    // State inputs follow the signature, in pair order.
    let mut new_state_inputs = Vec::with_capacity(state_inputs.len());
    for &i in &state_inputs {
        let v = src.value(i);
        let name = namer.unique(&v.name);
        let id = out
            .add_state_input(name, v.ty.clone())
            .map_err(|e| RebuildError(e.to_string()))?;
        if let Some(c) = loaded.value_class[i.index()] {
            built.entry(find(c)).or_insert_with(|| vec![id]);
        }
        new_state_inputs.push(id);
    }
    // Iterative post-order over chosen e-nodes from the outputs and the
    // state outputs.
    let mut out_ids = Vec::with_capacity(src.outputs.len());
    let state_outputs: Vec<ValueId> = src.states.iter().map(|s| s.output).collect();
    let mut state_roots = Vec::with_capacity(state_outputs.len());
    for (k, &o) in src.outputs.iter().chain(&state_outputs).enumerate() {
        let root = find(loaded.value_class[o.index()].ok_or_else(|| {
            RebuildError(format!("output '{}' has no e-class", src.value(o).name))
        })?);
        let mut stack: Vec<(Id, bool)> = vec![(root, false)];
        let mut on_stack: HashSet<Id> = HashSet::new();
        while let Some((c, expanded)) = stack.pop() {
            if built.contains_key(&c) {
                continue;
            }
            let node = choose(c)
                .ok_or_else(|| RebuildError(format!("e-class {c} has no extracted e-node")))?;
            if !expanded {
                if !on_stack.insert(c) {
                    return Err(RebuildError("the chosen e-nodes form a cycle".into()));
                }
                stack.push((c, true));
                for &ch in node.children() {
                    let ch = find(ch);
                    if !built.contains_key(&ch) {
                        stack.push((ch, false));
                    }
                }
                continue;
            }
            on_stack.remove(&c);
            let kind = match &node {
                ENode::Op(o, _) => o.name.to_ascii_lowercase(),
                _ => "const".to_string(),
            };
            let name = || {
                class_name
                    .get(&c)
                    .cloned()
                    .unwrap_or_else(|| format!("opt.{kind}"))
            };
            let ids: Vec<ValueId> = match &node {
                ENode::Absent => vec![],
                ENode::Input(v) => {
                    return Err(RebuildError(format!(
                        "input value {v} reached outside the signature"
                    )));
                }
                ENode::Weight(v) => {
                    let sv = src.value(ValueId(*v));
                    let ValueDef::Const(b) = &sv.def else {
                        return Err(RebuildError(format!("value {v} is not a constant")));
                    };
                    let nm = namer.unique(&sv.name);
                    vec![
                        out.add_const_bytes(nm, sv.ty.clone(), b.clone())
                            .map_err(|e| RebuildError(e.to_string()))?,
                    ]
                }
                ENode::Lit(i) => {
                    let t = &eg.analysis.lits[*i as usize];
                    let nm = namer.unique(&name());
                    vec![
                        out.add_const(nm, t)
                            .map_err(|e| RebuildError(e.to_string()))?,
                    ]
                }
                ENode::Get(k, [t]) => {
                    let t = find(*t);
                    let vals = built
                        .get(&t)
                        .ok_or_else(|| RebuildError("tuple read before it is built".into()))?;
                    vec![
                        *vals
                            .get(*k)
                            .ok_or_else(|| RebuildError(format!("tuple has no result {k}")))?,
                    ]
                }
                ENode::Op(o, args) => {
                    let mut inputs = Vec::with_capacity(args.len());
                    for &a in args {
                        let a = find(a);
                        let v = built
                            .get(&a)
                            .ok_or_else(|| RebuildError("operand not built".into()))?;
                        inputs.push(v.first().copied());
                    }
                    let base = name();
                    let names: Vec<String> = if o.outputs == 1 {
                        vec![namer.unique(&base)]
                    } else {
                        (0..o.outputs)
                            .map(|k| namer.unique(&format!("{base}.{k}")))
                            .collect()
                    };
                    let nname = node_name.get(&c).cloned().unwrap_or_else(|| base.clone());
                    out.add_node(nname, (*o.op).clone(), inputs, names)
                        .map_err(|e| RebuildError(e.to_string()))?
                }
            };
            built.insert(c, ids);
        }
        if k < src.outputs.len() {
            out_ids.push((o, root));
        } else {
            state_roots.push(root);
        }
    }
    // Outputs keep their names; a class that is already named otherwise (an
    // input, a constant, another output) is exposed through an Identity.
    let mut taken: HashSet<ValueId> = HashSet::new();
    for (o, root) in out_ids {
        let want = &src.value(o).name;
        let v = *built[&root]
            .first()
            .ok_or_else(|| RebuildError(format!("output '{want}' has no value")))?;
        if &out.value(v).name == want && taken.insert(v) {
            out.outputs.push(v);
            continue;
        }
        // When the name went to another class (it can only be this output's
        // own source value), a suffix derives one.
        let name = namer.unique(want);
        let id = add_identity(&mut out, format!("{want}.identity"), v, name)?;
        taken.insert(id);
        out.outputs.push(id);
    }
    rebuild_states(
        &mut out,
        &built,
        &new_state_inputs,
        &state_roots,
        // The state names count their suffixes afresh.
        &mut Names {
            used: namer.used,
            fresh: 0,
        },
    )?;
    Ok(out)
}

/// Names not taken yet: a base name as it is while it is free, else with
/// the first free `.N` suffix, counting on from the last suffix given.
#[derive(Default)]
struct Names {
    used: HashSet<String>,
    fresh: usize,
}

impl Names {
    fn unique(&mut self, base: &str) -> String {
        if self.used.insert(base.to_string()) {
            return base.to_string();
        }
        loop {
            self.fresh += 1;
            let n = format!("{base}.{}", self.fresh);
            if self.used.insert(n.clone()) {
                return n;
            }
        }
    }
}

/// Pairs each rebuilt state input with the value its class's root became.
/// Two states whose next values fell into one class get an `Identity` for
/// the second, since a value is the next value of one state only.
fn rebuild_states(
    out: &mut Graph,
    built: &HashMap<Id, Vec<ValueId>>,
    inputs: &[ValueId],
    roots: &[Id],
    namer: &mut Names,
) -> Result<(), RebuildError> {
    let mut taken: HashSet<ValueId> = HashSet::new();
    for (&input, root) in inputs.iter().zip(roots) {
        let mut v = *built
            .get(root)
            .and_then(|v| v.first())
            .ok_or_else(|| RebuildError("a state output has no value".into()))?;
        if !taken.insert(v) {
            let name = namer.unique(&format!("{}.next", out.value(input).name));
            v = add_identity(out, format!("{name}.identity"), v, name)?;
            taken.insert(v);
        }
        out.add_state(input, v)
            .map_err(|e| RebuildError(e.to_string()))?;
    }
    Ok(())
}

/// Adds node `node`, an `Identity` of `v` into a value named `name`; returns
/// that value.
fn add_identity(
    out: &mut Graph,
    node: String,
    v: ValueId,
    name: String,
) -> Result<ValueId, RebuildError> {
    let ids = out
        .add_node(
            node,
            Op::Layout(Layout::Identity),
            vec![Some(v)],
            vec![name],
        )
        .map_err(|e| RebuildError(e.to_string()))?;
    Ok(ids[0])
}

/// The type of a class (for rule conditions and reports).
pub fn class_type(eg: &EG, id: Id) -> Option<&TensorType> {
    eg[id].data.ty.as_ref()
}
