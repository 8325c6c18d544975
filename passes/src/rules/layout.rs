//! Layout rules: transposes and reshapes composed, cancelled, sunk through
//! element-wise ops and absorbed into `Gemm`'s `transA`/`transB`.
//!
//! All of these move data without arithmetic, so they are exact. Sinking a
//! transpose below an element-wise op puts both orders in the e-graph; the
//! cost model picks, and two sunk transposes that meet cancel.

use egg::{Id, Subst, rewrite as rw};
use smelt_ir::ops::Op;
use smelt_ir::ops::elementwise::{Elementwise, UnaryFn};
use smelt_ir::ops::layout::Layout;
use smelt_ir::ops::linalg::{GemmAttrs, Linalg};

use super::{Apply, Rule, add_op, add_op_typed, ops_named, shape_lit, ty, var};
use crate::egraph::analysis::EG;

/// The permutation of a Transpose of rank `rank` (`None` = reversed axes).
fn perm_of(op: &Op, rank: usize) -> Option<Vec<usize>> {
    match op {
        Op::Layout(Layout::Transpose { perm: Some(p) }) => {
            let p: Option<Vec<usize>> = p
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i + rank as i64 } else { i };
                    usize::try_from(i).ok().filter(|&i| i < rank)
                })
                .collect();
            p.filter(|p| p.len() == rank)
        }
        Op::Layout(Layout::Transpose { perm: None }) => Some((0..rank).rev().collect()),
        _ => None,
    }
}

fn transpose(perm: Vec<usize>) -> Op {
    Op::Layout(Layout::Transpose {
        perm: Some(perm.into_iter().map(|i| i as i64).collect()),
    })
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &j)| i == j)
}

/// The Transposes of class `id` with their operand and permutation.
fn transposes(eg: &EG, id: Id) -> Vec<(Id, Vec<usize>)> {
    ops_named(eg, id, "Transpose")
        .into_iter()
        .filter_map(|(op, args)| {
            let rank = ty(eg, args[0])?.shape.len();
            Some((args[0], perm_of(&op, rank)?))
        })
        .collect()
}

/// `T_q(T_p(x)) => T_{p∘q}(x)`, or `x` when the composition is the identity.
fn transpose_transpose(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let x = eg.find(s[var("?x")]);
    for (inner, q) in transposes(eg, id) {
        for (x2, p) in transposes(eg, inner) {
            if x2 != x {
                continue;
            }
            let r: Vec<usize> = q.iter().map(|&j| p[j]).collect();
            if is_identity(&r) {
                return Some(x);
            }
            return add_op(eg, transpose(r), vec![x]);
        }
    }
    None
}

/// `T_id(x) => x`.
fn transpose_noop(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let x = eg.find(s[var("?x")]);
    transposes(eg, id)
        .into_iter()
        .find(|(a, p)| *a == x && is_identity(p))
        .map(|_| x)
}

fn reshape_like(op: &Op) -> bool {
    matches!(
        op,
        Op::Layout(
            Layout::Reshape { .. }
                | Layout::Flatten { .. }
                | Layout::Squeeze { .. }
                | Layout::Unsqueeze { .. }
        )
    )
}

/// `R2(R1(x)) => Reshape(x, shape of the result)` for any two of Reshape,
/// Flatten, Squeeze, Unsqueeze: each only re-labels the row-major order.
fn reshape_chain(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let y = eg.find(s[var("?y")]);
    let out = ty(eg, id)?;
    let inner = eg[y].nodes.iter().find_map(|n| match n {
        crate::egraph::lang::ENode::Op(o, args) if o.outputs == 1 && reshape_like(&o.op) => {
            Some(args[0])
        }
        _ => None,
    })?;
    let x = eg.find(inner);
    let shape = shape_lit(eg, &out.shape);
    add_op_typed(
        eg,
        Op::Layout(Layout::Reshape { allowzero: false }),
        vec![x, shape],
        &out,
    )
}

/// Unary element-wise ops a transpose commutes with (all of them: they act
/// per element).
fn unary_fn(op: &Op) -> Option<UnaryFn> {
    match op {
        Op::Elementwise(Elementwise::Unary(f)) => Some(*f),
        _ => None,
    }
}

/// `f(T_p(x)) => T_p(f(x))` for a unary element-wise `f`.
fn sink_unary(name: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> Option<Id> {
    move |eg, id, s| {
        let x = eg.find(s[var("?x")]);
        for (op, args) in ops_named(eg, id, name) {
            let f = unary_fn(&op)?;
            for (a, p) in transposes(eg, args[0]) {
                if a != x {
                    continue;
                }
                let fx = add_op(eg, Op::Elementwise(Elementwise::Unary(f)), vec![x])?;
                return add_op(eg, transpose(p), vec![fx]);
            }
        }
        None
    }
}

/// `T_p(x) ∘ T_p(y) => T_p(x ∘ y)` for a binary element-wise `∘` when `x`
/// and `y` have one shape (no broadcasting to reorder).
fn sink_binary(name: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> Option<Id> {
    move |eg, id, s| {
        let (x, y) = (eg.find(s[var("?x")]), eg.find(s[var("?y")]));
        if ty(eg, x)? != ty(eg, y)? {
            return None;
        }
        for (op, args) in ops_named(eg, id, name) {
            let (tx, ty_) = (transposes(eg, args[0]), transposes(eg, args[1]));
            for (a, p) in &tx {
                for (b, q) in &ty_ {
                    if *a == x && *b == y && p == q {
                        let xy = add_op(eg, (*op).clone(), vec![x, y])?;
                        return add_op(eg, transpose(p.clone()), vec![xy]);
                    }
                }
            }
        }
        None
    }
}

/// `Gemm(T(a), b, c) => Gemm<transA=!transA>(a, b, c)` and the same for `b`.
fn gemm_absorb(eg: &mut EG, id: Id, _s: &Subst) -> Option<Id> {
    for (op, args) in ops_named(eg, id, "Gemm") {
        let Op::Linalg(Linalg::Gemm(g)) = &*op else {
            continue;
        };
        for k in 0..2 {
            for (x, p) in transposes(eg, args[k]) {
                if p != [1, 0] {
                    continue;
                }
                let mut g2 = *g;
                if k == 0 {
                    g2.trans_a = !g2.trans_a;
                } else {
                    g2.trans_b = !g2.trans_b;
                }
                let mut a2 = args.clone();
                a2[k] = x;
                let want = ty(eg, id)?;
                if let Some(r) = add_op_typed(eg, Op::Linalg(Linalg::Gemm(g2)), a2, &want) {
                    return Some(r);
                }
            }
        }
    }
    None
}

/// `MatMul(T(a), b) => Gemm<transA=1>(a, b)` (and `transB` for `b`) for 2-D
/// operands, where MatMul and Gemm agree.
fn matmul_absorb(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (a, b) = (eg.find(s[var("?a")]), eg.find(s[var("?b")]));
    if ty(eg, a)?.shape.len() != 2 || ty(eg, b)?.shape.len() != 2 {
        return None;
    }
    let want = ty(eg, id)?;
    for k in 0..2 {
        let arg = if k == 0 { a } else { b };
        for (x, p) in transposes(eg, arg) {
            if p != [1, 0] {
                continue;
            }
            let g = GemmAttrs::new().with_trans(k == 0, k == 1);
            let args = if k == 0 { vec![x, b] } else { vec![a, x] };
            if let Some(r) = add_op_typed(eg, Op::Linalg(Linalg::Gemm(g)), args, &want) {
                return Some(r);
            }
        }
    }
    None
}

/// The layout rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    let mut v = vec![
        // T_q(T_p(x)) => T_{p∘q}(x); => x when p∘q is the identity
        rw!("transpose-transpose";  "(Transpose (Transpose ?x))" => { Apply(transpose_transpose) }),
        // T_id(x) => x
        rw!("transpose-identity";   "(Transpose ?x)"             => { Apply(transpose_noop) }),
        // Reshape(R(x), s) => Reshape(x, s)          (R: Reshape, Flatten, Squeeze, Unsqueeze)
        rw!("reshape-reshape";      "(Reshape ?y ?s)"            => { Apply(reshape_chain) }),
        // Flatten(R(x)) => Reshape(x, shape)
        rw!("flatten-reshape";      "(Flatten ?y)"               => { Apply(reshape_chain) }),
        // Squeeze(R(x), axes) => Reshape(x, shape)
        rw!("squeeze-reshape";      "(Squeeze ?y ?a)"            => { Apply(reshape_chain) }),
        // Unsqueeze(R(x), axes) => Reshape(x, shape)
        rw!("unsqueeze-reshape";    "(Unsqueeze ?y ?a)"          => { Apply(reshape_chain) }),
        // Reshape(x, shape(x)) => x
        rw!("reshape-noop";         "(Reshape ?x ?s)"            => "?x" if super::same_type("?x")),
        // Gemm(T(a), T(b), c) => Gemm<transA', transB'>(a, b, c)
        rw!("gemm-absorb-transpose";  "(Gemm ?a ?b ?c)"          => { Apply(gemm_absorb) }),
        // Gemm(T(a), T(b)) => Gemm<transA', transB'>(a, b)
        rw!("gemm2-absorb-transpose"; "(Gemm ?a ?b)"             => { Apply(gemm_absorb) }),
        // MatMul(T(a), b) => Gemm<transA=1>(a, b); MatMul(a, T(b)) => Gemm<transB=1>(a, b)
        rw!("matmul-absorb-transpose"; "(MatMul ?a ?b)"          => { Apply(matmul_absorb) }),
    ];
    // f(T_p(x)) => T_p(f(x)) for the common unary element-wise ops
    for (name, op) in SINK_UNARY {
        v.push(egg::Rewrite::new(format!("sink-transpose-{name}"),
            format!("({op} (Transpose ?x))").parse::<egg::Pattern<_>>().expect("valid pattern"),
            Apply(sink_unary(op))).expect("valid rule"));
    }
    // T_p(x) ∘ T_p(y) => T_p(x ∘ y) for the binary element-wise ops
    for (name, op) in SINK_BINARY {
        v.push(egg::Rewrite::new(format!("sink-transpose-{name}"),
            format!("({op} (Transpose ?x) (Transpose ?y))").parse::<egg::Pattern<_>>().expect("valid pattern"),
            Apply(sink_binary(op))).expect("valid rule"));
    }
    v
}

/// Unary ops transposes sink through: `(rule suffix, op name)`.
const SINK_UNARY: [(&str, &str); 8] = [
    ("relu", "Relu"),
    ("neg", "Neg"),
    ("exp", "Exp"),
    ("sigmoid", "Sigmoid"),
    ("tanh", "Tanh"),
    ("erf", "Erf"),
    ("sqrt", "Sqrt"),
    ("abs", "Abs"),
];

/// Binary ops transposes sink through.
const SINK_BINARY: [(&str, &str); 4] = [
    ("add", "Add"),
    ("sub", "Sub"),
    ("mul", "Mul"),
    ("div", "Div"),
];
