//! Constant folding.
//!
//! The folding itself is the e-class analysis (`egraph::analysis`): any op
//! e-node whose operands are all constants is evaluated with the reference
//! kernels during saturation, within a size budget (`--fold-limit`, and never
//! a result much larger than its operands), and its class gains a literal.
//! The rules here expose more folding: they move constants together so the
//! analysis can combine them. Reassociation changes rounding (within the
//! ops' tolerance), never shapes: broadcasting is associative, so
//! `(x ∘ a) ∘ b` and `x ∘ (a ∘ b)` have the same type.

use egg::{Id, Subst, rewrite as rw};

use super::{Rule, var};
use crate::egraph::analysis::EG;

/// `?v` is a compile-time constant.
fn is_const(v: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.is_const
}

/// `?v` is not a constant (stops the commuting rules from looping).
fn not_const(v: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| !eg[s[v]].data.is_const
}

/// `?v` has a floating-point dtype (integer division does not reassociate).
fn is_float(v: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| {
        eg[s[v]]
            .data
            .ty
            .as_ref()
            .is_some_and(|t| t.dtype.is_float())
    }
}

/// The constant-folding rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        // c * x => x * c                  (constants to the right: one form for the other rules)
        rw!("mul-const-right"; "(Mul ?c ?x)"         => "(Mul ?x ?c)"         if is_const("?c") if not_const("?x")),
        // c + x => x + c
        rw!("add-const-right"; "(Add ?c ?x)"         => "(Add ?x ?c)"         if is_const("?c") if not_const("?x")),
        // (x * a) * b => x * (a * b)      (a * b folds)
        rw!("mul-mul-const";   "(Mul (Mul ?x ?a) ?b)" => "(Mul ?x (Mul ?a ?b))" if is_const("?a") if is_const("?b")),
        // (x + a) + b => x + (a + b)      (a + b folds)
        rw!("add-add-const";   "(Add (Add ?x ?a) ?b)" => "(Add ?x (Add ?a ?b))" if is_const("?a") if is_const("?b")),
        // (x - a) + b => x + (b - a)      (b - a folds)
        rw!("sub-add-const";   "(Add (Sub ?x ?a) ?b)" => "(Add ?x (Sub ?b ?a))" if is_const("?a") if is_const("?b")),
        // (x / a) * b => x * (b / a)      (b / a folds; floats only)
        rw!("div-mul-const";   "(Mul (Div ?x ?a) ?b)" => "(Mul ?x (Div ?b ?a))" if is_const("?a") if is_const("?b") if is_float("?x")),
    ]
}
