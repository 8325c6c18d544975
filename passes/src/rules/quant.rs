//! Quantization: rewrites of ONNX `QuantizeLinear`/`DequantizeLinear`
//! pairs.
//!
//! - `QuantizeLinear(DequantizeLinear(q, s, z), s, z)` is `q` when both use
//!   the same scales and zero points (equal constants), the same layout
//!   (axis and block size) and the quantized type of `q` (so the
//!   saturation range is `q`'s own). QDQ exporters write such pairs around
//!   every tensor that passes through an op unchanged (a reshape, a
//!   concat): folding them leaves the integers.
//!
//! Soundness: with `n = q - z` an integer of a 8- or 16-bit type (`|n| ≤
//! 2^16`), `DequantizeLinear` computes `y = fl(n·s)` in f32 and
//! `QuantizeLinear` `round(fl(y / s)) + z`. Each rounding has a relative
//! error of at most `2^-24`, so `fl(y / s)` is within `|n|·2^-23 ≤ 2^-7` of
//! `n`, rounds back to `n`, and `n + z = q` is in range (no saturation).
//! That needs `n·s` and the quotient to stay normal f32 numbers: every scale
//! must be finite with `2^-100 ≤ |s| ≤ 2^100`, which the rule checks.

use egg::{Id, Subst, rewrite as rw};
use smelt_ir::DType;
use smelt_ir::ops::Op;
use smelt_ir::ops::quant::{QAttrs, Quant};

use super::{Apply, Rule, ops_named, ty, value, var};
use crate::egraph::analysis::EG;

/// True when classes `a` and `b` are the same constant (the same class, or
/// two constants of equal type and bytes).
fn same_const(eg: &EG, a: Id, b: Id) -> bool {
    if eg.find(a) == eg.find(b) {
        return eg[a].data.is_const;
    }
    match (value(eg, a), value(eg, b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// True when every scale of class `s` is an f32 whose products with the
/// integers of 16 bits or fewer stay normal (see the module doc).
fn scales_in_range(eg: &EG, s: Id) -> bool {
    let (lo, hi) = (2f64.powi(-100), 2f64.powi(100));
    value(eg, s).is_some_and(|t| {
        t.dtype() == DType::F32
            && t.to_f64_vec()
                .iter()
                .all(|v| v.is_finite() && (lo..=hi).contains(&v.abs()))
    })
}

/// True when `QuantizeLinear<q>` and `DequantizeLinear<d>` give each element
/// the same scale: per tensor (a one-element scale, where the axis is not
/// read), or the same axis and block size.
fn same_layout(eg: &EG, q: &QAttrs, d: &QAttrs, s: Id) -> bool {
    let per_tensor = q.block_size == 0
        && d.block_size == 0
        && ty(eg, s).is_some_and(|t| t.shape.len() <= 1 && t.numel().is_ok_and(|n| n == 1));
    per_tensor || (q.axis == d.axis && q.block_size == d.block_size)
}

/// `QuantizeLinear(DequantizeLinear(q, s, z), s, z) => q` (see the module
/// doc for the conditions and why they make it exact).
fn q_of_dq(eg: &mut EG, id: Id, s: &Subst) -> Option<Id> {
    let (d, qs) = (eg.find(s[var("?d")]), eg.find(s[var("?s")]));
    let qz = s.get(var("?z")).map(|&z| eg.find(z));
    let want = ty(eg, id)?;
    if !matches!(want.dtype, DType::I8 | DType::U8 | DType::I16 | DType::U16) {
        return None;
    }
    if ty(eg, d)?.dtype != DType::F32 || !scales_in_range(eg, qs) {
        return None;
    }
    let quantizes: Vec<QAttrs> = ops_named(eg, id, "QuantizeLinear")
        .into_iter()
        .filter_map(|(op, args)| match &*op {
            Op::Quant(Quant::QuantizeLinear(a))
                if args[0] == d && args[1] == qs && args.get(2).copied() == qz =>
            {
                Some(*a)
            }
            _ => None,
        })
        .filter(|a| a.precision.is_none_or(|p| p == DType::F32))
        .collect();
    let dequantizes: Vec<(QAttrs, Vec<Id>)> = ops_named(eg, d, "DequantizeLinear")
        .into_iter()
        .filter_map(|(op, args)| match &*op {
            Op::Quant(Quant::DequantizeLinear(a)) => Some((*a, args)),
            _ => None,
        })
        .collect();
    for qa in &quantizes {
        for (da, args) in &dequantizes {
            let (q, ds, dz) = (args[0], args[1], args.get(2).copied());
            let zero_points = match (dz, qz) {
                (None, None) => true,
                (Some(a), Some(b)) => same_const(eg, a, b),
                _ => false,
            };
            if ty(eg, q).as_ref() == Some(&want)
                && same_const(eg, ds, qs)
                && zero_points
                && same_layout(eg, qa, da, qs)
            {
                return Some(q);
            }
        }
    }
    None
}

/// The quantization rules.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        // QuantizeLinear(DequantizeLinear(q, s, z), s, z) => q   (same constants, layout and type; |s| in [2^-100, 2^100])
        rw!("q-of-dq";      "(QuantizeLinear ?d ?s ?z)" => { Apply(q_of_dq) }),
        // QuantizeLinear(DequantizeLinear(q, s), s) => q         (no zero points: both 0)
        rw!("q-of-dq-nozp"; "(QuantizeLinear ?d ?s)"    => { Apply(q_of_dq) }),
    ]
}
