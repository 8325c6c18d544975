//! The e-class analysis: every class knows its static type, whether it is a
//! constant (and, when small enough, its value) and whether it is known to be
//! non-negative. Constant folding happens here, during saturation: an op
//! e-node whose operands are all constants is evaluated with the reference
//! interpreter's kernels (`OpDef::eval`) and its class gains a literal.

use std::collections::HashMap;
use std::sync::Arc;

use egg::{Analysis, DidMerge, EGraph, Id};
use smelt_ir::ops::elementwise::{BinaryFn, Elementwise, UnaryFn};
use smelt_ir::ops::norm::{Norm, SoftmaxFn};
use smelt_ir::ops::{InferInput, Op, OpDef};
use smelt_ir::{Bytes, DType, Tensor, TensorType};

use super::lang::ENode;

/// The e-graph type of the optimizer.
pub type EG = EGraph<ENode, IrAnalysis>;

/// Constants with at most this many elements are kept decoded in the class
/// data, so conditions (`x * 1`) and folding read them without decoding.
pub const SMALL_CONST: usize = 4096;

/// What the analysis knows about an e-class.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// The static type; `None` for tuples and omitted operands.
    pub ty: Option<TensorType>,
    /// The result types of a multi-result op (a tuple class).
    pub tuple: Option<Arc<Vec<TensorType>>>,
    /// True when the class is a compile-time constant.
    pub is_const: bool,
    /// The constant's value when it is small or was folded here.
    pub value: Option<Arc<Tensor>>,
    /// True when every element is known to be `>= 0` (or NaN-free and
    /// non-negative): the condition of `sqrt(x) * sqrt(x) => x`.
    pub nonneg: bool,
}

/// The analysis with the tables the leaves point into.
#[derive(Debug, Default)]
pub struct IrAnalysis {
    /// Constants of the source graph, by value id (`None` for non-constants).
    pub weights: Vec<Option<(TensorType, Bytes)>>,
    /// Types of the source graph's inputs, by value id.
    pub input_types: Vec<Option<TensorType>>,
    /// Constants made during optimization ([`ENode::Lit`]).
    pub lits: Vec<Arc<Tensor>>,
    /// Literals by (dtype, shape, hash of the bytes); equal hashes are
    /// compared in full.
    lit_index: HashMap<(DType, Vec<usize>, u64), Vec<u32>>,
    /// Largest folded result, in elements.
    pub fold_limit: usize,
    /// The classes of the graph outputs (as loaded; compare canonically):
    /// rules that must know whether a value has other users read them.
    pub roots: Vec<Id>,
    /// Type inference failures of e-nodes added by rules (rule bugs); the
    /// optimizer refuses its result when this is not empty.
    pub errors: Vec<String>,
}

impl IrAnalysis {
    /// Interns a literal, returning its e-node.
    pub fn lit(&mut self, t: Tensor) -> ENode {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.to_le_bytes().hash(&mut h);
        let key = (t.dtype(), t.shape().to_vec(), h.finish());
        let same = self
            .lit_index
            .get(&key)
            .and_then(|c| c.iter().copied().find(|&i| *self.lits[i as usize] == t));
        if let Some(i) = same {
            return ENode::Lit(i);
        }
        let i = self.lits.len() as u32;
        self.lits.push(Arc::new(t));
        self.lit_index.entry(key).or_default().push(i);
        ENode::Lit(i)
    }

    fn weight_value(&self, v: u32) -> Option<Tensor> {
        let (ty, bytes) = self.weights.get(v as usize)?.as_ref()?;
        // An encoded weight has no dense value to fold with (refused, not misread).
        Tensor::from_typed_bytes(ty, bytes.as_slice()).ok()
    }
}

/// The value of a constant class, decoding a large weight when needed.
pub fn const_value(eg: &EG, id: Id) -> Option<Arc<Tensor>> {
    let d = &eg[id].data;
    if let Some(v) = &d.value {
        return Some(v.clone());
    }
    if !d.is_const {
        return None;
    }
    for n in &eg[id].nodes {
        match n {
            ENode::Weight(v) => return eg.analysis.weight_value(*v).map(Arc::new),
            ENode::Lit(i) => return Some(eg.analysis.lits[*i as usize].clone()),
            _ => {}
        }
    }
    None
}

fn all_values(t: &Tensor, f: impl Fn(f64) -> bool) -> bool {
    t.to_f64_vec().into_iter().all(f)
}

fn nonneg_of(op: &Op, args: &[Option<&Data>], same_operands: bool, value: Option<&Tensor>) -> bool {
    if let Some(v) = value {
        return v.len() <= SMALL_CONST && all_values(v, |x| x >= 0.0);
    }
    let nn = |i: usize| args.get(i).copied().flatten().is_some_and(|d| d.nonneg);
    match op {
        Op::Elementwise(Elementwise::Unary(f)) => matches!(
            f,
            UnaryFn::Relu
                | UnaryFn::Abs
                | UnaryFn::Exp
                | UnaryFn::Sigmoid
                | UnaryFn::Softplus
                | UnaryFn::Sqrt
        ),
        // x * x is non-negative (or NaN).
        Op::Elementwise(Elementwise::Binary(BinaryFn::Mul)) if same_operands => true,
        Op::Elementwise(Elementwise::Binary(BinaryFn::Add | BinaryFn::Mul | BinaryFn::Div)) => {
            nn(0) && nn(1)
        }
        Op::Norm(Norm::Softmax {
            f: SoftmaxFn::Softmax,
            ..
        }) => true,
        _ => false,
    }
}

impl Analysis<ENode> for IrAnalysis {
    type Data = Data;

    fn make(eg: &mut EG, enode: &ENode, _id: Id) -> Data {
        match enode {
            ENode::Absent => Data::default(),
            ENode::Input(v) => Data {
                ty: eg.analysis.input_types.get(*v as usize).cloned().flatten(),
                ..Data::default()
            },
            ENode::Weight(v) => {
                let ty = eg.analysis.weights[*v as usize]
                    .as_ref()
                    .map(|w| w.0.clone());
                let small = ty
                    .as_ref()
                    .is_some_and(|t| t.numel().is_ok_and(|n| n <= SMALL_CONST));
                let value = if small {
                    eg.analysis.weight_value(*v).map(Arc::new)
                } else {
                    None
                };
                let nonneg = value
                    .as_deref()
                    .is_some_and(|t| all_values(t, |x| x >= 0.0));
                Data {
                    ty,
                    tuple: None,
                    is_const: true,
                    value,
                    nonneg,
                }
            }
            ENode::Lit(i) => {
                let t = eg.analysis.lits[*i as usize].clone();
                Data {
                    ty: Some(TensorType::new(t.dtype(), t.shape().to_vec())),
                    tuple: None,
                    is_const: true,
                    // Scanning a large folded weight for signs is not worth it.
                    nonneg: t.len() <= SMALL_CONST && all_values(&t, |x| x >= 0.0),
                    value: Some(t),
                }
            }
            ENode::Get(k, [t]) => {
                let ty = eg[*t].data.tuple.as_ref().and_then(|v| v.get(*k).cloned());
                Data {
                    ty,
                    ..Data::default()
                }
            }
            ENode::Op(o, args) => make_op(eg, &o.op, o.outputs, args),
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        let mut changed_a = false;
        let mut changed_b = false;
        if a.ty.is_none() && b.ty.is_some() {
            a.ty = b.ty.clone();
            changed_a = true;
        } else if a.ty.is_some() && b.ty.is_none() {
            changed_b = true;
        } else if a.ty != b.ty {
            self.errors.push(format!(
                "a rule merged values of types {} and {}",
                a.ty.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                b.ty.as_ref().map(|t| t.to_string()).unwrap_or_default()
            ));
        }
        if a.tuple.is_none() && b.tuple.is_some() {
            a.tuple = b.tuple.clone();
            changed_a = true;
        }
        match (&a.value, &b.value) {
            (None, Some(v)) => {
                a.value = Some(v.clone());
                changed_a = true;
            }
            (Some(_), None) => changed_b = true,
            _ => {}
        }
        // Constness and non-negativity are facts: either side's holds.
        let facts =
            egg::merge_max(&mut a.is_const, b.is_const) | egg::merge_max(&mut a.nonneg, b.nonneg);
        DidMerge(changed_a, changed_b) | facts
    }

    fn modify(eg: &mut EG, id: Id) {
        // A folded class gains a literal (extraction then picks it for free).
        let Some(v) = eg[id].data.value.clone() else {
            return;
        };
        if eg[id]
            .nodes
            .iter()
            .any(|n| matches!(n, ENode::Lit(_) | ENode::Weight(_)))
        {
            return;
        }
        let lit = eg.analysis.lit((*v).clone());
        let lit_id = eg.add(lit);
        eg.union(id, lit_id);
    }
}

fn make_op(eg: &mut EG, op: &Op, outputs: usize, args: &[Id]) -> Data {
    let wanted = op.const_operands();
    let mut decoded: Vec<Option<Arc<Tensor>>> = Vec::with_capacity(args.len());
    let mut types: Vec<Option<TensorType>> = Vec::with_capacity(args.len());
    for (i, &a) in args.iter().enumerate() {
        let d = &eg[a].data;
        types.push(d.ty.clone());
        let v = if wanted.contains(&i) && d.is_const {
            const_value(eg, a)
        } else {
            d.value.clone()
        };
        decoded.push(v);
    }
    let infer_args: Vec<Option<InferInput<'_>>> = types
        .iter()
        .zip(&decoded)
        .map(|(t, v)| {
            t.as_ref().map(|ty| InferInput {
                ty,
                value: v.as_deref(),
            })
        })
        .collect();
    let out = match op.infer(&infer_args) {
        Ok(t) => t,
        Err(e) => {
            let e = format!("{} does not type-check: {e}", op.name());
            eg.analysis.errors.push(e);
            return Data::default();
        }
    };
    // Constant folding: every present operand constant, the result not much
    // larger than the operands (no expanding a scalar into a big tensor) and
    // within the limit.
    let present: Vec<Id> = args
        .iter()
        .copied()
        .filter(|&a| eg[a].data.ty.is_some())
        .collect();
    let all_const = !present.is_empty() && present.iter().all(|&a| eg[a].data.is_const);
    let mut value = None;
    // Every op of the table is a pure function of its operands, so any of
    // them folds.
    // Except `Decode`: its operand is a weight kept small on purpose (an
    // encoded or half-width constant); folding would store it widened.
    let keeps_encoded = matches!(op, Op::Weights(smelt_ir::ops::weights::Weights::Decode));
    if all_const && outputs == 1 && !keeps_encoded {
        let in_elems: usize = types
            .iter()
            .flatten()
            .map(|t| t.numel().unwrap_or(usize::MAX))
            .fold(0usize, |a, b| a.saturating_add(b));
        let out_elems = out[0].numel().unwrap_or(usize::MAX);
        if out_elems <= eg.analysis.fold_limit && out_elems <= in_elems.max(SMALL_CONST) {
            let vals: Vec<Option<Arc<Tensor>>> = args
                .iter()
                .map(|&a| {
                    if eg[a].data.ty.is_some() {
                        const_value(eg, a)
                    } else {
                        None
                    }
                })
                .collect();
            if vals
                .iter()
                .zip(&types)
                .all(|(v, t)| v.is_some() == t.is_some())
            {
                let refs: Vec<Option<&Tensor>> = vals.iter().map(|v| v.as_deref()).collect();
                if let Ok(mut r) = op.eval(&refs)
                    && !r.is_empty()
                {
                    value = Some(Arc::new(r.swap_remove(0)));
                }
            }
        }
    }
    let arg_data: Vec<Option<Data>> = args.iter().map(|&a| Some(eg[a].data.clone())).collect();
    let arg_refs: Vec<Option<&Data>> = arg_data.iter().map(|d| d.as_ref()).collect();
    let same = args.len() == 2 && eg.find(args[0]) == eg.find(args[1]);
    let nonneg = outputs == 1 && nonneg_of(op, &arg_refs, same, value.as_deref());
    if outputs == 1 {
        Data {
            ty: out.into_iter().next(),
            tuple: None,
            is_const: value.is_some(),
            value,
            nonneg,
        }
    } else {
        Data {
            ty: None,
            tuple: Some(Arc::new(out)),
            is_const: false,
            value: None,
            nonneg: false,
        }
    }
}
