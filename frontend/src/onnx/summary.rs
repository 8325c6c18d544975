//! What can be said about an ONNX model from the file alone, before any
//! import: its signature, op histogram, parameter count and every node whose
//! op cannot be imported.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::tensor_shape_proto::dimension::Value as DimValue;
use onnx_protobuf::type_proto::Value as TypeValue;
use onnx_protobuf::{NodeProto, TensorProto, ValueInfoProto};
use smelt_ir::DType;

use super::OnnxModel;
use super::attrs::{convert_attrs, parse_op};
use super::graph::{default_domain, hist_key, node_name, walk_nodes};
use super::nbits;
use crate::error::UnsupportedOp;

/// An input or output as declared in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredValue {
    /// Name.
    pub name: String,
    /// Element type name (`f32`, or the ONNX name for types smelt lacks).
    pub dtype: String,
    /// Dims as text: numbers, symbolic names, or `?`.
    pub dims: Option<Vec<String>>,
}

/// The first IR version in which an initializer that is also a graph input
/// is a default value the caller may override (before it, every initializer
/// had to be listed as an input, and they are constants).
pub(super) const OVERRIDABLE_IR_VERSION: i64 = 4;

/// What can be said about a model without importing it.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `ir_version` of the file.
    pub ir_version: i64,
    /// Producer name and version.
    pub producer: String,
    /// Opset per domain.
    pub opsets: Vec<(String, i64)>,
    /// Graph inputs that are not initializers.
    pub inputs: Vec<DeclaredValue>,
    /// Graph inputs with an initializer of the same name, from IR version 4
    /// on: the initializer is the input's default value and a value given
    /// at run time (`smelt run --input`, `--bind`) overrides it, as ONNX
    /// and onnxruntime have it. Earlier files list every initializer as an
    /// input; those are constants and not listed here.
    pub defaults: Vec<DeclaredValue>,
    /// Graph outputs.
    pub outputs: Vec<DeclaredValue>,
    /// Node count per op type (subgraphs included), sorted by op type.
    pub op_histogram: Vec<(String, usize)>,
    /// Number of nodes, subgraphs included.
    pub node_count: usize,
    /// Elements in initializers and `Constant` nodes.
    pub param_count: u64,
    /// Bytes in initializers and `Constant` nodes.
    pub param_bytes: u64,
    /// Every node whose op cannot be imported.
    pub unsupported: Vec<UnsupportedOp>,
    /// For a language-model checkpoint (GGUF, Hugging Face), what it is;
    /// the ONNX fields above are then empty.
    pub llm: Option<crate::llm_summary::LlmSummary>,
}

impl OnnxModel {
    /// Describes the model from the file alone: signature, op histogram,
    /// parameters and every unsupported op.
    pub fn summary(&self) -> Summary {
        let g = self.graph_proto();
        let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        let mut hist: HashMap<String, usize> = HashMap::new();
        let mut unsupported = Vec::new();
        let mut param_count = 0u64;
        let mut param_bytes = 0u64;
        for t in &g.initializer {
            let (n, b) = dense_size(t);
            param_count = param_count.saturating_add(n);
            param_bytes = param_bytes.saturating_add(b);
        }
        let mut node_count = 0usize;
        walk_nodes(g, &mut |node| {
            node_count += 1;
            let key = hist_key(node);
            *hist.entry(key).or_default() += 1;
            if node.op_type == "Constant" && default_domain(&node.domain) {
                for a in &node.attribute {
                    if a.name == "value" {
                        let (n, b) = dense_size(&a.t);
                        param_count = param_count.saturating_add(n);
                        param_bytes = param_bytes.saturating_add(b);
                    }
                }
            }
            if let Some(reason) = self.unsupported_reason(node) {
                unsupported.push(UnsupportedOp {
                    node: node_name(node),
                    op: hist_key(node),
                    reason,
                });
            }
        });
        let mut op_histogram: Vec<(String, usize)> = hist.into_iter().collect();
        op_histogram.sort();
        Summary {
            ir_version: self.proto.ir_version,
            producer: format!(
                "{} {}",
                self.proto.producer_name, self.proto.producer_version
            )
            .trim()
            .to_string(),
            opsets: self.opsets.clone(),
            inputs: g
                .input
                .iter()
                .filter(|i| !inits.contains(i.name.as_str()))
                .map(declared)
                .collect(),
            defaults: if self.proto.ir_version >= OVERRIDABLE_IR_VERSION {
                g.input
                    .iter()
                    .filter(|i| inits.contains(i.name.as_str()))
                    .map(declared)
                    .collect()
            } else {
                Vec::new()
            },
            outputs: g.output.iter().map(declared).collect(),
            op_histogram,
            node_count,
            param_count,
            param_bytes,
            unsupported,
            llm: None,
        }
    }

    /// Why `node` cannot be imported, or `None` when it can (as far as can be
    /// told without shapes).
    fn unsupported_reason(&self, node: &NodeProto) -> Option<String> {
        let Some(opset) = self.opset(&node.domain) else {
            return Some(format!(
                "the model imports no opset for domain '{}'",
                node.domain
            ));
        };
        if nbits::is_matmul_nbits(node) {
            return nbits::unsupported_reason(node);
        }
        if default_domain(&node.domain) {
            match node.op_type.as_str() {
                "Constant" | "If" => return None,
                "Loop" | "Scan" | "SequenceMap" => {
                    return Some("data-dependent control flow is not supported yet".into());
                }
                _ => {}
            }
        }
        let attrs = match convert_attrs(node, None) {
            Ok(a) => a,
            Err(e) => return Some(e.to_string()),
        };
        match parse_op(node, opset, &attrs) {
            None => Some("no such op in smelt's op table".into()),
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(_)) => None,
        }
    }
}

/// Elements and bytes of a tensor as its file declares it.
///
/// A summary of an unvalidated file: raw dims, saturating, before any shape
/// exists, so element size × count (ONNX tensors are dense) rather than the
/// checked size function.
fn dense_size(t: &TensorProto) -> (u64, u64) {
    let n: u64 = t
        .dims
        .iter()
        .map(|&d| d.max(0) as u64)
        .fold(1u64, |a, d| a.saturating_mul(d));
    // INT4/UINT4 hold two elements a byte.
    if super::tensor::packed_4bit(t.data_type).is_some() {
        return (n, n.div_ceil(2));
    }
    let eb = DType::from_onnx_code(t.data_type)
        .map(|d| d.elem_bytes() as u64)
        .unwrap_or(0);
    (n, n.saturating_mul(eb))
}

fn elem_type_name(code: i32) -> String {
    match DType::from_onnx_code(code) {
        Ok(d) => d.name().to_string(),
        Err(_) => format!("onnx-type-{code}"),
    }
}

fn declared(vi: &ValueInfoProto) -> DeclaredValue {
    let (dtype, dims) = match vi.type_.as_ref().and_then(|t| t.value.as_ref()) {
        Some(TypeValue::TensorType(tt)) => {
            let dims = tt.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimValue::DimValue(v)) => v.to_string(),
                        Some(DimValue::DimParam(p)) => p.clone(),
                        // The generated oneof is non-exhaustive.
                        Some(_) | None => "?".to_string(),
                    })
                    .collect()
            });
            (elem_type_name(tt.elem_type), dims)
        }
        Some(TypeValue::SequenceType(_)) => ("sequence".to_string(), None),
        Some(TypeValue::MapType(_)) => ("map".to_string(), None),
        Some(TypeValue::OptionalType(_)) => ("optional".to_string(), None),
        Some(TypeValue::SparseTensorType(_)) => ("sparse tensor".to_string(), None),
        Some(_) | None => ("?".to_string(), None),
    };
    DeclaredValue {
        name: vi.name.clone(),
        dtype,
        dims,
    }
}
