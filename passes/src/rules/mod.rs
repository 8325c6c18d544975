//! Rewrite rules, one file per concern. Each file exports `rules()`, a
//! column-aligned table of `rw!` rewrites with unique kebab-case names and a
//! one-line math comment each; conditional rules say why they are sound.
//!
//! Rule text uses the IR op names (see `egraph::lang`). Rules whose
//! right-hand side needs attributes (a composed permutation, a fused op's
//! axis) use an [`Apply`] closure that reads the matched e-class and builds
//! the result with [`add_op`], which type-checks it first: a rule that
//! would build an ill-typed node simply does not fire.

pub mod algebra;
pub mod constfold;
pub mod fusion;
pub mod layout;
pub mod qlinear;
pub mod quant;

use std::sync::Arc;

use egg::{Applier, Id, Language, PatternAst, Subst, Symbol, Var};
use smelt_ir::ops::{InferInput, Op, OpDef};
use smelt_ir::{Tensor, TensorType};

use crate::egraph::analysis::{EG, IrAnalysis, const_value};
use crate::egraph::lang::{ENode, OpRef};

/// A rewrite of the optimizer.
pub type Rule = egg::Rewrite<ENode, IrAnalysis>;

/// The rule files, by the name `--passes` uses.
pub const FILES: [&str; 6] = [
    "algebra",
    "constfold",
    "layout",
    "fusion",
    "quant",
    "qlinear",
];

/// The rules of one file; `None` for an unknown name.
pub fn file(name: &str) -> Option<Vec<Rule>> {
    Some(match name {
        "algebra" => algebra::rules(),
        "constfold" => constfold::rules(),
        "layout" => layout::rules(),
        "fusion" => fusion::rules(),
        "quant" => quant::rules(),
        "qlinear" => qlinear::rules(),
        _ => return None,
    })
}

/// Every rule of every file.
pub fn all() -> Vec<Rule> {
    FILES.iter().flat_map(|f| file(f).expect("known")).collect()
}

/// An applier written in Rust: given the matched class and substitution it
/// returns a class equal to the match, or `None` when the rule does not apply
/// after all (a condition on attributes or values failed).
pub struct Apply<F>(pub F);

impl<F> Applier<ENode, IrAnalysis> for Apply<F>
where
    F: Fn(&mut EG, Id, &Subst) -> Option<Id> + Send + Sync,
{
    fn apply_one(
        &self,
        eg: &mut EG,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<ENode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        match (self.0)(eg, eclass, subst) {
            Some(new) if eg.union(eclass, new) => vec![eclass],
            _ => vec![],
        }
    }
}

/// The pattern variable `?name`.
pub fn var(name: &str) -> Var {
    name.parse().expect("a valid variable")
}

/// The static type of a class.
pub fn ty(eg: &EG, id: Id) -> Option<TensorType> {
    eg[id].data.ty.clone()
}

/// The constant value of a class (decoding a large weight when needed).
pub fn value(eg: &EG, id: Id) -> Option<Arc<Tensor>> {
    const_value(eg, id)
}

/// The small constant value of a class, only if already decoded.
pub fn small_value(eg: &EG, id: Id) -> Option<Arc<Tensor>> {
    eg[id].data.value.clone()
}

/// True when the class is a constant whose every element equals `x`.
pub fn is_splat(eg: &EG, id: Id, x: f64) -> bool {
    small_value(eg, id).is_some_and(|t| !t.is_empty() && t.to_f64_vec().iter().all(|&v| v == x))
}

/// True when the class is a constant whose every element is within `tol`
/// (relative) of `x` (for constants exporters round, like `sqrt(2)`).
pub fn is_near(eg: &EG, id: Id, x: f64, tol: f64) -> bool {
    small_value(eg, id).is_some_and(|t| {
        !t.is_empty()
            && t.to_f64_vec()
                .iter()
                .all(|&v| (v - x).abs() <= tol * x.abs().max(1e-30))
    })
}

/// The op e-nodes of a class with this op name: `(op, operands)`.
pub fn ops_named(eg: &EG, id: Id, name: &str) -> Vec<(Arc<Op>, Vec<Id>)> {
    eg[id]
        .nodes
        .iter()
        .filter_map(|n| match n {
            ENode::Op(o, args) if o.name == name && o.outputs == 1 => {
                Some((o.op.clone(), args.iter().map(|&a| eg.find(a)).collect()))
            }
            _ => None,
        })
        .collect()
}

/// Infers the result type of `op` on the classes `args`; `None` when it does
/// not type-check (the rule then does not fire).
pub fn infer(eg: &EG, op: &Op, args: &[Id]) -> Option<TensorType> {
    let wanted = op.const_operands();
    let vals: Vec<Option<Arc<Tensor>>> = args
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            if wanted.contains(&i) {
                const_value(eg, a)
            } else {
                None
            }
        })
        .collect();
    let tys: Vec<Option<TensorType>> = args.iter().map(|&a| ty(eg, a)).collect();
    let inputs: Vec<Option<InferInput<'_>>> = tys
        .iter()
        .zip(&vals)
        .map(|(t, v)| {
            t.as_ref().map(|ty| InferInput {
                ty,
                value: v.as_deref(),
            })
        })
        .collect();
    op.infer(&inputs).ok()?.into_iter().next()
}

/// Adds `op(args)` if it type-checks; returns its class.
pub fn add_op(eg: &mut EG, op: Op, args: Vec<Id>) -> Option<Id> {
    infer(eg, &op, &args)?;
    Some(eg.add(ENode::Op(OpRef::new(op, 1), args)))
}

/// Adds `op(args)` if its result has type `want`; returns its class.
pub fn add_op_typed(eg: &mut EG, op: Op, args: Vec<Id>, want: &TensorType) -> Option<Id> {
    if infer(eg, &op, &args)? != *want {
        return None;
    }
    Some(eg.add(ENode::Op(OpRef::new(op, 1), args)))
}

/// Adds a constant.
pub fn add_lit(eg: &mut EG, t: Tensor) -> Id {
    let n = eg.analysis.lit(t);
    eg.add(n)
}

/// Adds the absent-operand leaf.
pub fn absent(eg: &mut EG) -> Id {
    eg.add(ENode::Absent)
}

/// Adds an i64 shape constant.
pub fn shape_lit(eg: &mut EG, dims: &[usize]) -> Id {
    let v: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    add_lit(
        eg,
        Tensor::from_vec(vec![v.len()], v).expect("length matches"),
    )
}

/// A condition: `?a` has the same type as the matched class (no broadcast
/// widened the result, no dtype changed).
pub fn same_type(a: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool + use<> {
    let a = var(a);
    move |eg, id, s| {
        let (x, y) = (ty(eg, s[a]), ty(eg, id));
        x.is_some() && x == y
    }
}

/// A condition: `?c` is a constant whose elements all equal `x`.
pub fn splat(c: &str, x: f64) -> impl Fn(&mut EG, Id, &Subst) -> bool + use<> {
    let c = var(c);
    move |eg, _, s| is_splat(eg, s[c], x)
}

/// The e-node children of a pattern AST's op names, for the rule-table
/// check that right-hand sides build only attribute-free ops.
pub fn rhs_is_concrete(ast: &PatternAst<ENode>) -> bool {
    ast.as_ref().iter().all(|n| match n {
        egg::ENodeOrVar::ENode(ENode::Op(o, _)) => o.key.is_some(),
        egg::ENodeOrVar::ENode(_) | egg::ENodeOrVar::Var(_) => true,
    })
}

/// Silences the unused-import lint for `Language` in files that only use
/// its methods through trait dispatch.
#[allow(dead_code)]
fn _language_in_scope(n: &ENode) -> usize {
    n.len()
}
