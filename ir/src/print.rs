//! The IR text printer.
//!
//! ```text
//! graph(%x: f32[1,4]) -> (%y) {
//!   %w: f32[4,2] = const 32 bytes
//!   %y: f32[1,2] = MatMul(%x, %w)  # node "mm"
//!   %z: f32[1,2] = Clip<min=0>(%y, _, _)  # node "clip"
//! }
//! ```
//! Names that are not plain identifiers are quoted. A stateful graph lists
//! its state pairs after the signature line, one `state %s <- %s_next` each
//! (the input, then the value it takes in the next step); a stateless graph
//! has no such line. The format is stable: the golden tests compare
//! against it.

use std::fmt::Write;

use crate::graph::{Graph, ValueDef, ValueId};
use crate::ops::OpDef;

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
}

/// `%name`, quoted when the name has other characters.
pub fn value_ref(g: &Graph, id: ValueId) -> String {
    let name = &g.value(id).name;
    if is_plain(name) {
        format!("%{name}")
    } else {
        format!("%{name:?}")
    }
}

/// Renders the whole graph.
pub fn print(g: &Graph) -> String {
    let mut s = String::new();
    let ins: Vec<String> = g
        .inputs
        .iter()
        .map(|&id| format!("{}: {}", value_ref(g, id), g.value(id).ty))
        .collect();
    let outs: Vec<String> = g.outputs.iter().map(|&id| value_ref(g, id)).collect();
    let _ = writeln!(s, "graph({}) -> ({}) {{", ins.join(", "), outs.join(", "));
    for st in &g.states {
        let _ = writeln!(
            s,
            "  state {}: {} <- {}",
            value_ref(g, st.input),
            g.value(st.input).ty,
            value_ref(g, st.output)
        );
    }
    for (i, v) in g.values.iter().enumerate() {
        if let ValueDef::Const(b) = &v.def {
            let where_ = if b.is_mapped() { ", mapped" } else { "" };
            let _ = writeln!(
                s,
                "  {}: {} = const {} bytes{where_}",
                value_ref(g, ValueId(i as u32)),
                v.ty,
                b.as_slice().len()
            );
        }
    }
    for node in &g.nodes {
        let outs: Vec<String> = node
            .outputs
            .iter()
            .map(|&id| format!("{}: {}", value_ref(g, id), g.value(id).ty))
            .collect();
        let attrs = node.op.attrs();
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            let items: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("<{}>", items.join(", "))
        };
        let args: Vec<String> = node
            .inputs
            .iter()
            .map(|i| i.map(|id| value_ref(g, id)).unwrap_or_else(|| "_".into()))
            .collect();
        let _ = writeln!(
            s,
            "  {} = {}{attrs}({})  # node {:?}",
            outs.join(", "),
            node.op.name(),
            args.join(", "),
            node.name
        );
    }
    s.push_str("}\n");
    s
}
