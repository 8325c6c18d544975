//! ONNX node attributes → [`smelt_ir::Attrs`], and the op-table lookup that
//! turns a node and its attributes into an [`Op`].

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, NodeProto};
use smelt_ir::ops::ParseCtx;
use smelt_ir::{AttrValue, Attrs, DType, Op};

use super::TensorReader;
use super::graph::{default_domain, node_name};
use super::opsets;
use crate::error::{Error, Result};

/// Looks `node` up in the op table at `opset` with its converted `attrs`:
/// `None` when no op has its name, else the op or why its attributes or
/// arity are refused (a default-domain op the model's opset predates is
/// refused too, naming the opset ONNX added it in).
pub(super) fn parse_op(
    node: &NodeProto,
    opset: i64,
    attrs: &Attrs,
) -> Option<std::result::Result<Op, smelt_ir::Error>> {
    if default_domain(&node.domain)
        && let Some(first) = opsets::first_opset(&node.op_type)
        && opset < first
    {
        return Some(Err(smelt_ir::Error::Unsupported(format!(
            "{} does not exist at opset {opset}: ONNX added it in opset {first}",
            node.op_type
        ))));
    }
    Op::parse(&ParseCtx {
        op_type: &node.op_type,
        domain: &node.domain,
        opset,
        attrs,
        num_inputs: node.input.len(),
        num_outputs: node.output.len(),
    })
}

/// Converts a node's attributes; tensor attributes are decoded with `reader`
/// when given (otherwise they become a placeholder, enough for op support checks).
pub(super) fn convert_attrs(
    node: &NodeProto,
    mut reader: Option<&mut TensorReader<'_>>,
) -> Result<Attrs> {
    let mut items = Vec::with_capacity(node.attribute.len());
    for a in &node.attribute {
        let v = convert_attr(node, a, reader.as_deref_mut())?;
        items.push((a.name.clone(), v));
    }
    Ok(Attrs::new(items))
}

fn convert_attr(
    node: &NodeProto,
    a: &AttributeProto,
    reader: Option<&mut TensorReader<'_>>,
) -> Result<AttrValue> {
    if !a.ref_attr_name.is_empty() {
        return Ok(AttrValue::Other("reference to a function attribute"));
    }
    let ty = match a.type_.enum_value() {
        Ok(AttributeType::UNDEFINED) | Err(_) => guess_attr_type(a),
        Ok(t) => t,
    };
    Ok(match ty {
        AttributeType::FLOAT => AttrValue::Float(a.f),
        AttributeType::INT => AttrValue::Int(a.i),
        AttributeType::STRING => AttrValue::String(a.s.clone()),
        AttributeType::TENSOR => match (a.t.as_ref(), reader) {
            (Some(t), Some(r)) => {
                let mut t = t.clone();
                let name = format!("{}.{}", node_name(node), a.name);
                AttrValue::Tensor(r.read_tensor(&name, &mut t)?)
            }
            (Some(t), None) => {
                // Support checks only need the dtype to be representable.
                DType::from_onnx_code(t.data_type).map_err(|e| Error::Tensor {
                    name: format!("{}.{}", node_name(node), a.name),
                    msg: e.to_string(),
                })?;
                AttrValue::Other("tensor (not decoded)")
            }
            (None, _) => AttrValue::Other("empty tensor"),
        },
        AttributeType::FLOATS => AttrValue::Floats(a.floats.clone()),
        AttributeType::INTS => AttrValue::Ints(a.ints.clone()),
        AttributeType::STRINGS => AttrValue::Strings(a.strings.clone()),
        AttributeType::GRAPH => AttrValue::Other("graph"),
        AttributeType::GRAPHS => AttrValue::Other("graphs"),
        AttributeType::TENSORS => AttrValue::Other("tensors"),
        AttributeType::SPARSE_TENSOR | AttributeType::SPARSE_TENSORS => {
            AttrValue::Other("sparse tensor")
        }
        AttributeType::TYPE_PROTO | AttributeType::TYPE_PROTOS => AttrValue::Other("type"),
        AttributeType::UNDEFINED => AttrValue::Other("undefined"),
    })
}

/// Files from before IR version 2 may leave the attribute type unset.
fn guess_attr_type(a: &AttributeProto) -> AttributeType {
    if a.t.is_some() {
        AttributeType::TENSOR
    } else if a.g.is_some() {
        AttributeType::GRAPH
    } else if !a.floats.is_empty() {
        AttributeType::FLOATS
    } else if !a.ints.is_empty() {
        AttributeType::INTS
    } else if !a.strings.is_empty() {
        AttributeType::STRINGS
    } else if !a.s.is_empty() {
        AttributeType::STRING
    } else if a.f != 0.0 {
        AttributeType::FLOAT
    } else {
        AttributeType::INT
    }
}
