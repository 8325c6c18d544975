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
//! its state pairs after the signature line, one `state %s: TYPE <- %s_next`
//! each (the input, then the value it takes in the next step); a stateless
//! graph has no such line. The format is stable: the golden tests compare
//! against it, and [`crate::parse()`] reads it back. With
//! [`PrintOptions::values`], small constants print their elements instead of
//! their size (`const [1.0, 2.5]`), so the text carries the whole graph; the
//! default leaves them out, as weights are too big to read.

use std::fmt::Write;

use crate::dispatch;
use crate::graph::{Graph, ValueDef, ValueId};
use crate::ops::OpDef;

/// What [`print_with`] writes beyond the default form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// Constants of at most this many elements print their values
    /// (`const [1.0, 2.5]`); larger ones print their size. 0 = never.
    pub const_values_up_to: usize,
}

impl PrintOptions {
    /// Values for constants of at most `n` elements.
    pub fn values(n: usize) -> PrintOptions {
        PrintOptions {
            const_values_up_to: n,
        }
    }
}

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
    print_with(g, &PrintOptions::default())
}

/// The constant's elements as `[a, b, …]` when it has at most `limit`.
fn const_values(g: &Graph, id: ValueId, limit: usize) -> Option<String> {
    if g.value(id).ty.numel().ok()? > limit {
        return None;
    }
    let t = g.const_value(id)?.ok()?;
    let items: Vec<String> =
        dispatch!(t.data(), d, T => d.iter().map(|x| format!("{x:?}")).collect());
    Some(format!("[{}]", items.join(", ")))
}

/// Renders the whole graph with `opts`.
pub fn print_with(g: &Graph, opts: &PrintOptions) -> String {
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
            let id = ValueId(i as u32);
            let where_ = if b.is_mapped() { ", mapped" } else { "" };
            let data = const_values(g, id, opts.const_values_up_to)
                .unwrap_or_else(|| format!("{} bytes", b.as_slice().len()));
            let _ = writeln!(s, "  {}: {} = const {data}{where_}", value_ref(g, id), v.ty,);
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
