//! THE OP TABLE.
//!
//! Every operation smelt knows is declared here once, grouped into families
//! (one module each). A family is a closed enum of its ops with parsed
//! attributes and implements [`OpDef`]: its ONNX spelling, attributes, the
//! compile-time operands it needs, shape/type inference, reference evaluation
//! and cost. [`Op`] is the closed union of the families; every stage matches
//! it exhaustively, so a new op fails to build wherever it is not yet handled.
//! See `docs/adding-an-op.md`.

use crate::attrs::Attrs;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::tensor::Tensor;

/// Declares a family's op table once: each line gives an op's variant
/// pattern, its name (which is also its ONNX op type) and its parser. The
/// table expands to the family's `ONNX_OPS`, its `parse` (the
/// [`in_family`] check, then the dispatch to the op's parser), and the
/// exhaustive `op_name` match, so an op's spelling cannot drift between
/// them. Used by the family modules as `family_ops! { Family, "label"; … }`.
macro_rules! family_ops {
    ($family:ident, $label:literal; $($pat:pat => $name:literal, $parse:path;)*) => {
        impl $family {
            /// The ONNX op types of this family.
            pub const ONNX_OPS: &'static [&'static str] = &[$($name),*];

            /// Parses a node of this family; `None` when the node is not one
            /// of its ops.
            pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<$family>> {
                $crate::ops::in_family(ctx, Self::ONNX_OPS).then(|| parse_op(ctx))
            }
        }

        /// The op's name, which is also its ONNX op type.
        fn op_name(op: &$family) -> &'static str {
            match op {
                $($pat => $name,)*
            }
        }

        fn parse_op(ctx: &ParseCtx<'_>) -> Result<$family> {
            match ctx.op_type {
                $($name => $parse(ctx),)*
                other => Err($crate::error::Error::Unsupported(format!(
                    "op {other} is not in the {} family", $label
                ))),
            }
        }
    };
}

pub mod conv;
pub mod elementwise;
pub mod fused;
pub mod layout;
pub mod linalg;
pub mod norm;
pub mod quant;
pub mod reduce;
mod text;
pub mod weights;

/// Whether `ctx` is one of the op types `ops` in the default ONNX domain:
/// the check every family's `parse` starts with (the families declared with
/// [`family_ops!`] get it from the macro).
pub fn in_family(ctx: &ParseCtx<'_>, ops: &[&str]) -> bool {
    (ctx.domain.is_empty() || ctx.domain == "ai.onnx") && ops.contains(&ctx.op_type)
}

/// What the op table is given to parse one node.
#[derive(Clone, Copy, Debug)]
pub struct ParseCtx<'a> {
    /// The ONNX op type (`"Conv"`).
    pub op_type: &'a str,
    /// The op's domain (`""` for the default ONNX domain).
    pub domain: &'a str,
    /// The opset version of that domain the model imports.
    pub opset: i64,
    /// The node's attributes.
    pub attrs: &'a Attrs,
    /// How many inputs the node lists (omitted optional ones included).
    pub num_inputs: usize,
    /// How many outputs the node lists.
    pub num_outputs: usize,
}

/// One operand as shape inference sees it.
#[derive(Clone, Copy, Debug)]
pub struct InferInput<'a> {
    /// The operand's static type.
    pub ty: &'a TensorType,
    /// Its value, for the operands listed by [`OpDef::const_operands`] that
    /// are constants; `None` otherwise.
    pub value: Option<&'a Tensor>,
}

/// What every op (and every family, and [`Op`] itself) provides.
pub trait OpDef {
    /// The op's name, in ONNX spelling (`"Conv"`).
    fn name(&self) -> &'static str;

    /// The parsed attributes, as `name=value` text for the IR printer.
    fn attrs(&self) -> Vec<(&'static str, String)>;

    /// Indices of the operands whose values shape inference needs (a Reshape's
    /// target shape, a Slice's starts). The importer folds these to constants;
    /// one that stays a run-time value is an [`Error::NotConstant`].
    fn const_operands(&self) -> Vec<usize>;

    /// Output types for the given operands (`None` = omitted optional input).
    /// Rejects every dtype and shape the op does not accept.
    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>>;

    /// Reference evaluation, following the ONNX operator spec exactly.
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>>;

    /// Multiply-accumulates (or, for ops without them, elementary operations)
    /// done by one evaluation; the basis of `inspect`'s MAC report.
    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64;

    /// True when the results depend only on the *types* of the inputs
    /// (`Shape`, `Size`): the importer folds such nodes even when their
    /// inputs are run-time values, which turns exported shape arithmetic
    /// static.
    fn reads_only_types(&self) -> bool {
        false
    }
}

macro_rules! op_families {
    ($( $(#[$doc:meta])* $variant:ident($module:ident::$ty:ident), )*) => {
        /// Every operation of the IR: the closed union of the op families.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $( $(#[$doc])* $variant($module::$ty), )*
        }

        impl Op {
            /// Parses an ONNX node into an op; `None` when no family knows
            /// `op_type` in `domain`.
            pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Op>> {
                $(
                    if let Some(r) = $module::$ty::parse(ctx) {
                        return Some(r.map(Op::$variant));
                    }
                )*
                None
            }

            /// The ONNX op types (default domain) the op table implements.
            pub fn supported_onnx_ops() -> Vec<&'static str> {
                let mut v: Vec<&'static str> = Vec::new();
                $( v.extend_from_slice($module::$ty::ONNX_OPS); )*
                v.sort_unstable();
                v
            }
        }

        impl OpDef for Op {
            fn name(&self) -> &'static str {
                match self { $( Op::$variant(o) => o.name(), )* }
            }
            fn attrs(&self) -> Vec<(&'static str, String)> {
                match self { $( Op::$variant(o) => o.attrs(), )* }
            }
            fn const_operands(&self) -> Vec<usize> {
                match self { $( Op::$variant(o) => o.const_operands(), )* }
            }
            fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
                match self { $( Op::$variant(o) => o.infer(inputs), )* }
            }
            fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
                match self { $( Op::$variant(o) => o.eval(inputs), )* }
            }
            fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
                match self { $( Op::$variant(o) => o.macs(inputs, outputs), )* }
            }
            fn reads_only_types(&self) -> bool {
                match self { $( Op::$variant(o) => o.reads_only_types(), )* }
            }
        }
    };
}

op_families! {
    /// Element-wise math, comparisons, logic, activations, casts, `Where`.
    Elementwise(elementwise::Elementwise),
    /// Matrix products and attention: MatMul, Gemm, Einsum, Attention, …
    Linalg(linalg::Linalg),
    /// Convolutions and pooling.
    Conv(conv::ConvOp),
    /// Normalizations and the softmax family.
    Norm(norm::Norm),
    /// Reductions, arg-reductions, TopK and scans.
    Reduce(reduce::Reduce),
    /// Shape and data-movement ops: Reshape, Transpose, Concat, Gather, Slice, Pad, Resize, …
    Layout(layout::Layout),
    /// Quantization: QuantizeLinear, DequantizeLinear and the integer kernels.
    Quant(quant::Quant),
    /// A convolution or matrix product with an activation epilogue.
    Fused(fused::Fused),
    /// Ops that read a weight in its stored encoding: Decode, EncodedMatMul, EncodedGather.
    Weights(weights::Weights),
}

// ---------------------------------------------------------------------------
// Helpers shared by the family modules.

/// The operand at `i`, or an error naming it when missing.
pub fn req<T: Copy>(inputs: &[Option<T>], i: usize, what: &str) -> Result<T> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| Error::Shape(format!("missing required input {i} ({what})")))
}

/// The operand at `i` if present.
pub fn opt<T: Copy>(inputs: &[Option<T>], i: usize) -> Option<T> {
    inputs.get(i).copied().flatten()
}

/// The compile-time value of operand `i`, or [`Error::NotConstant`].
pub fn const_input<'a>(
    inputs: &[Option<InferInput<'a>>],
    i: usize,
    role: &str,
) -> Result<&'a Tensor> {
    let inp = req(inputs, i, role)?;
    inp.value.ok_or_else(|| Error::NotConstant {
        input: i,
        role: role.to_string(),
    })
}

/// The static types of concrete operands (`None` for omitted ones), for an
/// evaluation that re-runs its op's shape rule.
pub fn tensor_types(inputs: &[Option<&Tensor>]) -> Vec<Option<TensorType>> {
    inputs
        .iter()
        .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
        .collect()
}

/// Checks the operand count is within `min..=max`.
pub fn check_arity<T>(inputs: &[Option<T>], min: usize, max: usize) -> Result<()> {
    let n = inputs.len();
    if n < min || n > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Error::Shape(format!("expects {want} inputs, got {n}")));
    }
    Ok(())
}

/// Formats a list for [`OpDef::attrs`].
pub fn fmt_list<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// Helpers the families' unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{InferInput, OpDef, ParseCtx, tensor_types};
    use crate::DType;
    use crate::attrs::{AttrValue, Attrs};
    use crate::error::Result;
    use crate::graph::{Graph, TensorType, ValueId};
    use crate::tensor::Tensor;

    /// The tensor of `shape` holding `v`.
    pub(crate) fn t<T: crate::tensor::Elem>(shape: &[usize], v: &[T]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    /// The 1-D `i64` tensor holding `v`.
    pub(crate) fn i64s(v: &[i64]) -> Tensor {
        t(&[v.len()], v)
    }

    /// Adds the graph input `name` of type `dtype[dims]` to `g`.
    pub(crate) fn input(g: &mut Graph, name: &str, dtype: DType, dims: &[usize]) -> ValueId {
        g.add_input(name, TensorType::new(dtype, dims.to_vec()))
            .unwrap()
    }

    /// Adds the node `name` computing `op` of `inputs` into the one value
    /// `out`; that value, or the error the graph gives.
    pub(crate) fn node(
        g: &mut Graph,
        name: &str,
        op: super::Op,
        inputs: &[ValueId],
        out: &str,
    ) -> Result<ValueId> {
        let inputs = inputs.iter().map(|&v| Some(v)).collect();
        Ok(g.add_node(name, op, inputs, vec![out.into()])?[0])
    }

    /// Infers `op`'s output types for `inputs` (giving the shape rule their
    /// values when `with_values`), evaluates it, and checks every result
    /// against its inferred type (dtype, shape, dense encoding); returns both.
    pub(crate) fn infer_and_eval<O: OpDef + std::fmt::Debug>(
        op: &O,
        inputs: &[Option<&Tensor>],
        with_values: bool,
    ) -> Result<(Vec<Tensor>, Vec<TensorType>)> {
        let tys = tensor_types(inputs);
        let infer_in: Vec<Option<InferInput<'_>>> = tys
            .iter()
            .zip(inputs)
            .map(|(ty, v)| {
                ty.as_ref().map(|ty| InferInput {
                    ty,
                    value: if with_values { *v } else { None },
                })
            })
            .collect();
        let want = op.infer(&infer_in)?;
        let got = op.eval(inputs)?;
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(&TensorType::new(g.dtype(), g.shape().to_vec()), w, "{op:?}");
        }
        Ok((got, want))
    }

    /// Parses a default-domain node `op` at `opset` with `attrs` through a
    /// family's `parse`.
    pub(crate) fn parse_node<T>(
        parse: fn(&ParseCtx<'_>) -> Option<Result<T>>,
        op: &str,
        opset: i64,
        attrs: Vec<(&str, AttrValue)>,
        num_inputs: usize,
        num_outputs: usize,
    ) -> Option<Result<T>> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type: op,
            domain: "",
            opset,
            attrs: &attrs,
            num_inputs,
            num_outputs,
        };
        parse(&ctx)
    }
}
