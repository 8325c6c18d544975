//! The inverse of [`OpDef::name`] and [`OpDef::attrs`]: an [`Op`] rebuilt
//! from the `Name<k=v, …>` text the IR printer writes.
//!
//! There is no second parser per family. The printed attributes are turned
//! back into ONNX attributes (numbers, lists, strings, dtype names as ONNX
//! type codes, `dtype:value` scalars as one-element tensors) and handed to
//! the family parsers ([`Op::parse`]), newest opset first. The first op whose
//! own printed attributes equal the text wins: that check is what makes the
//! round trip exact, and it also recovers the meanings that depend on the
//! opset (`Clip` bounds as attributes before opset 11, `GroupNormalization`'s
//! per-group affine before 21), which the printed attributes tell apart.
//! Fused ops are rebuilt from their base op, residual and epilogue.

use crate::attrs::{AttrValue, Attrs};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::elementwise::{Elementwise, Epilogue};
use crate::ops::fused::Fused;
use crate::ops::{Op, OpDef, ParseCtx};
use crate::tensor::Tensor;

/// The newest default-domain opset the op table knows (Range's `stash_type`
/// came with 27); [`Op::from_text`] tries it first and then each older one.
const NEWEST_OPSET: i64 = 27;

/// Attributes whose printed value is a dtype name and whose ONNX form is
/// the dtype's type code.
const DTYPE_ATTRS: &[&str] = &[
    "to",
    "dtype",
    "stash_type",
    "output_dtype",
    "precision",
    "softmax_precision",
];

impl Op {
    /// Rebuilds the op the IR printer wrote as `name<attrs…>` with
    /// `num_inputs` operands (omitted ones included) and `num_outputs`
    /// results. The op's own [`OpDef::attrs`] equal `attrs` on success.
    pub fn from_text(
        name: &str,
        attrs: &[(String, String)],
        num_inputs: usize,
        num_outputs: usize,
    ) -> Result<Op> {
        if let Some(op) = crate::ops::weights::Weights::from_text(name, attrs) {
            return op;
        }
        if let Some(base) = fused_base(name, attrs) {
            return fused_from_text(name, base, attrs, num_inputs, num_outputs);
        }
        let onnx = Attrs::new(
            attrs
                .iter()
                .map(|(k, v)| (k.clone(), onnx_value(k, v)))
                .collect(),
        );
        let mut first_err = None;
        for opset in (1..=NEWEST_OPSET).rev() {
            let ctx = ParseCtx {
                op_type: name,
                domain: "",
                opset,
                attrs: &onnx,
                num_inputs,
                num_outputs,
            };
            match Op::parse(&ctx) {
                None => return Err(Error::Unsupported(format!("unknown op '{name}'"))),
                Some(Ok(op)) if same_attrs(&op, attrs) => return Ok(op),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| {
            Error::Unsupported(format!(
                "no opset of '{name}' prints these attributes; the printer leaves out \
                 something the op needs"
            ))
        }))
    }
}

fn same_attrs(op: &Op, attrs: &[(String, String)]) -> bool {
    let got = op.attrs();
    got.len() == attrs.len()
        && got
            .iter()
            .zip(attrs)
            .all(|((k, v), (k2, v2))| k == k2 && v == v2)
}

/// The base op's name of a fused op's printed form, if `name` is one.
fn fused_base<'a>(name: &str, attrs: &'a [(String, String)]) -> Option<&'a str> {
    match name {
        "FusedConv" => Some("Conv"),
        "FusedGemm" => Some("Gemm"),
        "FusedMatMul" => Some("MatMul"),
        "FusedElementwise" => attrs
            .first()
            .filter(|(k, _)| k == "op")
            .map(|(_, v)| v.as_str())
            .or(Some("")),
        _ => None,
    }
}

fn fused_from_text(
    name: &str,
    base_name: &str,
    attrs: &[(String, String)],
    num_inputs: usize,
    num_outputs: usize,
) -> Result<Op> {
    let mut base_attrs: Vec<(String, String)> = Vec::new();
    let (mut residual, mut act) = (false, None);
    for (i, (k, v)) in attrs.iter().enumerate() {
        match k.as_str() {
            "op" if i == 0 && name == "FusedElementwise" => {}
            "residual" if v == "Add" => residual = true,
            "activation" => act = Some(epilogue(v)?),
            _ => base_attrs.push((k.clone(), v.clone())),
        }
    }
    let base_inputs = num_inputs.saturating_sub(usize::from(residual));
    let base = Op::from_text(base_name, &base_attrs, base_inputs, num_outputs)?;
    let fused = Fused::with(base, residual, act).ok_or_else(|| {
        Error::Unsupported(format!(
            "'{base_name}' with these attributes cannot be fused into {name}"
        ))
    })?;
    let op = Op::Fused(fused);
    if same_attrs(&op, attrs) {
        Ok(op)
    } else {
        Err(Error::Unsupported(format!(
            "the attributes of {name} do not print back the same"
        )))
    }
}

/// An epilogue from its printed form, `Relu` or `Clip(min=0,max=6)`.
fn epilogue(text: &str) -> Result<Epilogue> {
    let (name, attrs) = match text.split_once('(') {
        Some((n, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| Error::attr("activation", format!("'{text}' lacks a ')'")))?;
            let attrs = inner
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => Ok((k.to_string(), v.to_string())),
                    None => Err(Error::attr("activation", format!("'{kv}' is not k=v"))),
                })
                .collect::<Result<Vec<_>>>()?;
            (n, attrs)
        }
        None => (text, Vec::new()),
    };
    let op = Op::from_text(name, &attrs, 1, 1)?;
    match op {
        Op::Elementwise(Elementwise::Unary(f)) => Ok(Epilogue::Unary(f)),
        Op::Elementwise(Elementwise::Clip {
            min: Some(min),
            max: Some(max),
        }) => Ok(Epilogue::Clip { min, max }),
        _ => Err(Error::attr(
            "activation",
            format!("'{text}' is not an epilogue activation"),
        )),
    }
}

/// The ONNX attribute a printed value stands for (see the module doc).
fn onnx_value(key: &str, v: &str) -> AttrValue {
    if DTYPE_ATTRS.contains(&key)
        && let Some(d) = DType::from_name(v)
    {
        return AttrValue::Int(i64::from(d.onnx_code()));
    }
    if let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items: Vec<&str> = inner.split(',').filter(|s| !s.is_empty()).collect();
        if let Ok(ints) = items.iter().map(|s| s.parse::<i64>()).collect() {
            return AttrValue::Ints(ints);
        }
        if let Ok(floats) = items.iter().map(|s| s.parse::<f32>()).collect() {
            return AttrValue::Floats(floats);
        }
        return AttrValue::Strings(items.iter().map(|s| s.as_bytes().to_vec()).collect());
    }
    if let Ok(i) = v.parse::<i64>() {
        return AttrValue::Int(i);
    }
    if let Ok(f) = v.parse::<f32>() {
        return AttrValue::Float(f);
    }
    if let Some((d, x)) = v.split_once(':')
        && let Some(d) = DType::from_name(d)
        && let Some(t) = scalar_tensor(d, x)
    {
        return AttrValue::Tensor(t);
    }
    AttrValue::String(v.as_bytes().to_vec())
}

/// A one-element tensor of `dtype` holding the printed scalar `x`.
fn scalar_tensor(dtype: DType, x: &str) -> Option<Tensor> {
    crate::parse::parse_elems(dtype, vec![1], &[x])
}
