//! Walking an ONNX graph and its subgraphs: node names for messages, node
//! counts against the limits, and the dependency order the importer follows.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::{GraphProto, NodeProto};
use petgraph::graph::DiGraph;
use smelt_ir::ValueId;

use crate::error::{Error, Result};
use crate::limits::Limits;

/// Whether `d` names the default ONNX domain.
pub(super) fn default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// The subgraphs a node's attributes hold (`If` branches, `Loop` bodies…).
pub(super) fn subgraphs(node: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    node.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(&a.graphs))
}

/// Calls `f` on every node of `g` and of its subgraphs, outer nodes first.
pub(super) fn walk_nodes<'g>(g: &'g GraphProto, f: &mut dyn FnMut(&'g NodeProto)) {
    for n in &g.node {
        f(n);
        for sg in subgraphs(n) {
            walk_nodes(sg, f);
        }
    }
}

/// The op a node runs, as the op histogram and messages name it: the op type,
/// prefixed by its domain outside the default one.
pub(super) fn hist_key(node: &NodeProto) -> String {
    if default_domain(&node.domain) {
        node.op_type.clone()
    } else {
        format!("{}.{}", node.domain, node.op_type)
    }
}

/// A node's name for messages: its own, or its op and first output.
pub(super) fn node_name(node: &NodeProto) -> String {
    if !node.name.is_empty() {
        return node.name.clone();
    }
    match node.output.iter().find(|o| !o.is_empty()) {
        Some(o) => format!("{}→{o}", node.op_type),
        None => node.op_type.clone(),
    }
}

/// Counts the nodes of `g` and its subgraphs, refusing nesting deeper than
/// the limit allows.
pub(super) fn count_nodes(g: &GraphProto, depth: usize, limits: &Limits) -> Result<usize> {
    let mut n = g.node.len();
    for node in &g.node {
        if subgraphs(node).next().is_some() {
            Limits::check(
                || {
                    format!(
                        "the subgraph nesting depth inside node '{}' ({})",
                        node_name(node),
                        node.op_type
                    )
                },
                depth as u64 + 1,
                limits.max_depth as u64,
                "max-depth",
            )?;
        }
        for sg in subgraphs(node) {
            n = n.saturating_add(count_nodes(sg, depth + 1, limits)?);
        }
    }
    Ok(n)
}

/// A dependency order of `nodes`: node `b` after node `a` when `b` reads a
/// value `a` writes (also through a subgraph). Refuses cycles and values that
/// nothing defines.
pub(super) fn topo_order(
    nodes: &[NodeProto],
    scope: &HashMap<String, ValueId>,
) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            if o.is_empty() {
                continue;
            }
            if producer.insert(o.as_str(), i).is_some() || scope.contains_key(o) {
                return Err(Error::Graph(format!(
                    "value '{o}' is defined twice (again by node '{}')",
                    node_name(n)
                )));
            }
        }
    }
    let mut dag: DiGraph<usize, ()> = DiGraph::with_capacity(nodes.len(), nodes.len());
    let idx: Vec<_> = (0..nodes.len()).map(|i| dag.add_node(i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        let mut uses: Vec<&str> = n
            .input
            .iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect();
        for g in subgraphs(n) {
            free_names(g, &mut uses);
        }
        for u in uses {
            match producer.get(u) {
                Some(&p) => {
                    dag.add_edge(idx[p], idx[i], ());
                }
                None if scope.contains_key(u) => {}
                None => {
                    return Err(Error::Graph(format!(
                        "node '{}' ({}) uses '{u}', which no node, input or initializer defines",
                        node_name(n),
                        n.op_type
                    )));
                }
            }
        }
    }
    petgraph::algo::toposort(&dag, None)
        .map(|order| order.into_iter().map(|n| dag[n]).collect())
        .map_err(|cycle| {
            let n = &nodes[dag[cycle.node_id()]];
            Error::Graph(format!(
                "the graph has a cycle through node '{}' ({})",
                node_name(n),
                n.op_type
            ))
        })
}

/// Names a subgraph reads from enclosing scopes.
fn free_names<'g>(g: &'g GraphProto, out: &mut Vec<&'g str>) {
    let mut defined: HashSet<&str> = HashSet::new();
    defined.extend(g.input.iter().map(|v| v.name.as_str()));
    defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for n in &g.node {
        defined.extend(n.output.iter().map(String::as_str));
    }
    for n in &g.node {
        for i in &n.input {
            if !i.is_empty() && !defined.contains(i.as_str()) {
                out.push(i);
            }
        }
        for a in &n.attribute {
            if let Some(sg) = a.g.as_ref() {
                let mut inner = Vec::new();
                free_names(sg, &mut inner);
                out.extend(inner.into_iter().filter(|x| !defined.contains(x)));
            }
        }
    }
    for o in &g.output {
        if !defined.contains(o.name.as_str()) {
            out.push(o.name.as_str());
        }
    }
}
