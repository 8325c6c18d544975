//! Algebraic identities and inverses.
//!
//! Every identity rule is conditional on the kept operand having the
//! result's type: `x * ones([4])` with `x: f32[]` broadcasts, and dropping the
//! multiplication would change the shape. Floating-point notes: `x * 1`,
//! `x / 1`, `x - 0` and `--x` are exact; `x + 0` differs only in the sign of
//! a zero (`-0 + 0 = +0`), which every comparison treats as equal.

use egg::{Id, Subst, rewrite as rw};
use smelt_ir::DType;
use smelt_ir::ops::Op;
use smelt_ir::ops::elementwise::Elementwise;

use super::{Apply, Rule, ops_named, same_type, splat, var};
use crate::egraph::analysis::EG;

/// True when every value of `from` converts to `to` and back exactly.
pub fn widens_exactly(from: DType, to: DType) -> bool {
    use DType::*;
    if from == to {
        return true;
    }
    match from {
        Bool => to != Bool,
        F16 => matches!(to, F32 | F64),
        BF16 => matches!(to, F32 | F64),
        F32 => matches!(to, F64),
        I8 => matches!(to, I16 | I32 | I64 | F16 | F32 | F64),
        U8 => matches!(to, I16 | U16 | I32 | U32 | I64 | U64 | F16 | F32 | F64),
        I16 => matches!(to, I32 | I64 | F32 | F64),
        U16 => matches!(to, I32 | U32 | I64 | U64 | F32 | F64),
        I32 => matches!(to, I64 | F64),
        U32 => matches!(to, I64 | U64 | F64),
        I64 | U64 | F64 => false,
    }
}

fn cast_to(op: &Op) -> Option<DType> {
    match op {
        Op::Elementwise(Elementwise::Cast { to }) => Some(*to),
        _ => None,
    }
}

/// `Cast<to=B>(Cast<to=A>(x)) => x` when `x: B` and `A` holds every `B`
/// exactly; `=> Cast<to=B>(x)` when `A` holds every value of `x` exactly
/// and the two casts to `B` mean the same: not from an integer `x`
/// through a float `A` to an integer `B` too narrow for `x`, where
/// float-to-integer saturates but integer-to-integer wraps
/// (`u8(f32(i8 -1))` is 0, `u8(i8 -1)` is 255; `docs/semantics.md`).
fn cast_chain(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let x = s[var("?x")];
    let xt = super::ty(eg, x)?.dtype;
    for (outer, args) in ops_named(eg, id, "Cast") {
        let b = cast_to(&outer)?;
        for (inner, inner_args) in ops_named(eg, args[0], "Cast") {
            let a = cast_to(&inner)?;
            if inner_args[0] != eg.find(x) || !widens_exactly(xt, a) {
                continue;
            }
            let same_meaning =
                !a.is_float() || b.is_float() || xt.is_float() || widens_exactly(xt, b);
            if !same_meaning {
                continue;
            }
            if b == xt {
                return Some(x);
            }
            return super::add_op(eg, Op::Elementwise(Elementwise::Cast { to: b }), vec![x]);
        }
    }
    None
}

/// `Cast<to=T>(x) => x` when `x: T`.
fn cast_noop(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let x = s[var("?x")];
    let xt = super::ty(eg, x)?.dtype;
    for (op, _) in ops_named(eg, id, "Cast") {
        if cast_to(&op) == Some(xt) {
            return Some(x);
        }
    }
    None
}

/// `x` when the class is known to be non-negative: the condition of
/// `sqrt(x) * sqrt(x) => x` (for `x < 0` the left side is NaN).
fn nonneg(v: &'static str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v = var(v);
    move |eg, _, s| eg[s[v]].data.nonneg
}

/// The algebra rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        // x * 1 => x                      (sound: x already has the result's type)
        rw!("mul-one";        "(Mul ?x ?c)"               => "?x"  if splat("?c", 1.0) if same_type("?x")),
        // 1 * x => x
        rw!("one-mul";        "(Mul ?c ?x)"               => "?x"  if splat("?c", 1.0) if same_type("?x")),
        // x + 0 => x                      (only the sign of a zero can differ)
        rw!("add-zero";       "(Add ?x ?c)"               => "?x"  if splat("?c", 0.0) if same_type("?x")),
        // 0 + x => x
        rw!("zero-add";       "(Add ?c ?x)"               => "?x"  if splat("?c", 0.0) if same_type("?x")),
        // x - 0 => x
        rw!("sub-zero";       "(Sub ?x ?c)"               => "?x"  if splat("?c", 0.0) if same_type("?x")),
        // x / 1 => x
        rw!("div-one";        "(Div ?x ?c)"               => "?x"  if splat("?c", 1.0) if same_type("?x")),
        // -(-x) => x                      (exact, also for wrapping integers)
        rw!("neg-neg";        "(Neg (Neg ?x))"            => "?x"),
        // sqrt(x) * sqrt(x) => x          (sound for x >= 0, which the analysis proves)
        rw!("sqrt-mul-sqrt";  "(Mul (Sqrt ?x) (Sqrt ?x))" => "?x"  if nonneg("?x")),
        // Identity(x) => x
        rw!("identity";       "(Identity ?x)"             => "?x"),
        // Cast<to=T>(x: T) => x
        rw!("cast-noop";      "(Cast ?x)"                 => { Apply(cast_noop) }),
        // Cast<B>(Cast<A>(x)) => Cast<B>(x), or x when x: B    (sound: A holds x exactly)
        rw!("cast-cast";      "(Cast (Cast ?x))"          => { Apply(cast_chain) }),
    ]
}
