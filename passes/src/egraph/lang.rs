//! The e-graph language: one e-node per IR op application, plus leaves for
//! graph inputs, weights, folded literals and omitted optional operands.
//!
//! An op e-node carries the whole [`Op`] (attributes included) behind an
//! [`OpRef`]; its identity is the op's `Debug` text, which spells every
//! attribute, so two nodes hash-cons together exactly when they compute the
//! same function of the same operands. Rule text uses the IR op names
//! (`(Mul ?x ?y)`): a name parses to a *pattern* op that matches every op of
//! that name and arity whatever its attributes; only attribute-free ops
//! (`Add`, `Neg`, `MatMul`, `Identity`, …) parse to a concrete op that a
//! rule's right-hand side may build. Rules that need attributes read them
//! from the matched e-class in Rust (see `rules/`).
//!
//! Constants are referenced, never copied: a [`ENode::Weight`] names a
//! constant of the source graph by value id and a [`ENode::Lit`] indexes the
//! analysis' table of constants made during saturation.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use egg::{FromOp, Id, Language};
use smelt_ir::attrs::Attrs;
use smelt_ir::ops::linalg::Linalg;
use smelt_ir::ops::{Op, OpDef, ParseCtx};

/// An IR op inside an e-node: the op with its attributes, or a pattern that
/// matches every op of a name.
#[derive(Clone, Debug)]
pub struct OpRef {
    /// The ONNX op name (`"Conv"`).
    pub name: &'static str,
    /// The identity of the attributes (`Debug` of the op); `None` in a
    /// pattern that matches any attributes.
    pub key: Option<Arc<str>>,
    /// The op itself; in a pattern, the op parsed with default attributes.
    pub op: Arc<Op>,
    /// How many results the graph node exposes: 1 makes the e-class the
    /// result itself, more make it a tuple read with [`ENode::Get`].
    pub outputs: usize,
}

impl OpRef {
    /// A concrete op exposing `outputs` results.
    pub fn new(op: Op, outputs: usize) -> OpRef {
        OpRef {
            name: op.name(),
            key: Some(format!("{op:?}").into()),
            op: Arc::new(op),
            outputs,
        }
    }

    fn cmp_key(&self) -> (&'static str, Option<&str>, usize) {
        (self.name, self.key.as_deref(), self.outputs)
    }
}

impl PartialEq for OpRef {
    fn eq(&self, other: &OpRef) -> bool {
        self.cmp_key() == other.cmp_key()
    }
}

impl Eq for OpRef {}

impl Hash for OpRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cmp_key().hash(state)
    }
}

impl PartialOrd for OpRef {
    fn partial_cmp(&self, other: &OpRef) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpRef {
    fn cmp(&self, other: &OpRef) -> Ordering {
        self.cmp_key().cmp(&other.cmp_key())
    }
}

/// One e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ENode {
    /// An IR op applied to operands (an omitted optional operand is an
    /// [`ENode::Absent`] class).
    Op(OpRef, Vec<Id>),
    /// Result `.0` of a multi-result op (the class `.1[0]`).
    Get(usize, [Id; 1]),
    /// A graph input: the value id in the source graph.
    Input(u32),
    /// A constant of the source graph: its value id (never copied).
    Weight(u32),
    /// A constant made during optimization: index into the analysis' table.
    Lit(u32),
    /// An omitted optional operand.
    Absent,
}

/// What [`Language::discriminant`] groups by: the variant and the op name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    /// An op of this name.
    Op(&'static str),
    /// Any other variant, by index.
    Other(u8),
}

impl Language for ENode {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            ENode::Op(o, _) => Discriminant::Op(o.name),
            ENode::Get(..) => Discriminant::Other(0),
            ENode::Input(_) => Discriminant::Other(1),
            ENode::Weight(_) => Discriminant::Other(2),
            ENode::Lit(_) => Discriminant::Other(3),
            ENode::Absent => Discriminant::Other(4),
        }
    }

    fn matches(&self, other: &ENode) -> bool {
        match (self, other) {
            (ENode::Op(a, xs), ENode::Op(b, ys)) => {
                a.name == b.name
                    && xs.len() == ys.len()
                    && a.outputs == b.outputs
                    && (a.key.is_none() || a.key == b.key)
            }
            (ENode::Get(i, _), ENode::Get(j, _)) => i == j,
            (ENode::Input(a), ENode::Input(b))
            | (ENode::Weight(a), ENode::Weight(b))
            | (ENode::Lit(a), ENode::Lit(b)) => a == b,
            (ENode::Absent, ENode::Absent) => true,
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            ENode::Op(_, c) => c,
            ENode::Get(_, c) => c,
            ENode::Input(_) | ENode::Weight(_) | ENode::Lit(_) | ENode::Absent => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            ENode::Op(_, c) => c,
            ENode::Get(_, c) => c,
            ENode::Input(_) | ENode::Weight(_) | ENode::Lit(_) | ENode::Absent => &mut [],
        }
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ENode::Op(o, _) => {
                f.write_str(o.name)?;
                if o.key.is_some() {
                    let attrs = o.op.attrs();
                    if !attrs.is_empty() {
                        let items: Vec<String> =
                            attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(f, "<{}>", items.join(","))?;
                    }
                }
                Ok(())
            }
            ENode::Get(i, _) => write!(f, "Get{i}"),
            ENode::Input(v) => write!(f, "input{v}"),
            ENode::Weight(v) => write!(f, "weight{v}"),
            ENode::Lit(v) => write!(f, "lit{v}"),
            ENode::Absent => f.write_str("_"),
        }
    }
}

/// Why a rule's text did not parse.
#[derive(Debug)]
pub struct UnknownOp(pub String);

impl fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown op '{}' in rule text", self.0)
    }
}

/// The op an attribute-free name stands for, or a pattern op for a name
/// whose ops carry attributes.
pub fn op_from_name(name: &str, arity: usize) -> Option<OpRef> {
    let attrs = Attrs::default();
    let ctx = ParseCtx {
        op_type: name,
        domain: "",
        opset: 21,
        attrs: &attrs,
        num_inputs: arity,
        num_outputs: 1,
    };
    match Op::parse(&ctx)? {
        Ok(op) => {
            let attr_free = op.attrs().is_empty()
                && matches!(
                    op,
                    Op::Elementwise(_)
                        | Op::Linalg(Linalg::MatMul)
                        | Op::Layout(smelt_ir::ops::layout::Layout::Identity)
                );
            let mut r = OpRef::new(op, 1);
            if !attr_free {
                r.key = None;
            }
            Some(r)
        }
        // Required attributes missing: the name is still a valid pattern.
        Err(_) => {
            let placeholder = Op::Layout(smelt_ir::ops::layout::Layout::Identity);
            let name = Op::supported_onnx_ops().into_iter().find(|n| *n == name)?;
            Some(OpRef {
                name,
                key: None,
                op: Arc::new(placeholder),
                outputs: 1,
            })
        }
    }
}

impl FromOp for ENode {
    type Error = UnknownOp;

    fn from_op(op: &str, children: Vec<Id>) -> Result<ENode, UnknownOp> {
        match (op, children.len()) {
            ("_", 0) => return Ok(ENode::Absent),
            ("Get0", 1) => return Ok(ENode::Get(0, [children[0]])),
            _ => {}
        }
        let r = op_from_name(op, children.len()).ok_or_else(|| UnknownOp(op.to_string()))?;
        Ok(ENode::Op(r, children))
    }
}
