//! ONNX import: `.onnx` (+ external data) → [`smelt_ir::Graph`] with static shapes.
//!
//! Size: ~1,320 lines before the tests: model summary, import options, dim
//! pinning, node ordering and constant folding still share this file; they
//! are to be split by stage (issue 11 tracks it).
//!
//! The importer pins symbolic dims (`--dim`, `--input-shape`), turns
//! initializers and `Constant` nodes into constants (raw bytes moved, external
//! data memory-mapped), orders nodes topologically (refusing cycles and
//! undefined values), parses every node through the op table, folds every node
//! whose inputs are all constants (this is how PyTorch's
//! `Shape → Gather → Concat → Reshape` chains become static shapes), and
//! inlines `If` nodes whose condition folds to a constant.

mod tensor;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::dimension::Value as DimValue;
use onnx_protobuf::type_proto::Value as TypeValue;
use onnx_protobuf::{AttributeProto, GraphProto, Message, ModelProto, NodeProto, ValueInfoProto};
use petgraph::graph::DiGraph;
use smelt_ir::ops::ParseCtx;
use smelt_ir::{AttrValue, Attrs, DType, Graph, Op, OpDef, Tensor, TensorType, ValueId};

use crate::checked;
use crate::error::{Error, Result, UnsupportedOp};
use crate::limits::Limits;
use crate::safetensors::Weights;
pub use tensor::{TensorReader, resolve_external};

/// How to import a model.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Values for named symbolic dims (`--dim batch=1`).
    pub dims: HashMap<String, usize>,
    /// Whole shapes for inputs (`--input-shape x=1,3,224,224`); wins over `dims`.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Graph inputs fixed to constant values (`--bind name=file.npy`).
    pub bind: HashMap<String, Tensor>,
    /// Limits on the file.
    pub limits: Limits,
    /// A safetensors file supplying initializers by name (`--weights`): each
    /// initializer it names takes its bytes from it, memory-mapped, and its
    /// own data (inline, external or missing) is never read. Every tensor of
    /// the file must name an initializer of the same dtype and shape; see
    /// [`crate::safetensors`].
    pub weights: Option<PathBuf>,
    /// Persistent state as `(input, output)` name pairs (`--state IN=OUT`):
    /// graph input IN leaves the signature and holds, at each step, what
    /// value OUT held at the previous one (zero bytes at the first step).
    /// ONNX has no notion of state, so the user names the pairs.
    pub states: Vec<(String, String)>,
}

/// A parsed `.onnx` file, not yet converted to the IR.
pub struct OnnxModel {
    path: PathBuf,
    dir: PathBuf,
    proto: ModelProto,
    /// Opset version per domain (`""` is the default ONNX domain).
    pub opsets: Vec<(String, i64)>,
}

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
}

fn default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

impl OnnxModel {
    /// Reads and parses a model file, enforcing the file-size and nesting limits.
    pub fn read(path: &Path, limits: &Limits) -> Result<OnnxModel> {
        let bytes = Limits::read_file(path, limits.max_model_bytes, "max-model-bytes")?;
        Self::from_bytes(&bytes, path, limits)
    }

    /// Parses a model from memory; `path` locates external data and names the model in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, limits: &Limits) -> Result<OnnxModel> {
        Limits::check(
            || format!("the size of {}", path.display()),
            bytes.len() as u64,
            limits.max_model_bytes,
            "max-model-bytes",
        )?;
        // Each level of subgraph nesting costs three levels of protobuf
        // messages (graph → node → attribute); the parser's own recursion
        // limit (100 by default) would refuse depths `max_depth` allows with
        // a message that does not say which limit to raise, so it follows
        // `max_depth`, capped where deep recursion could exhaust the stack.
        let recursion = limits
            .max_depth
            .saturating_mul(3)
            .saturating_add(16)
            .min(MAX_PROTOBUF_RECURSION);
        let mut input = protobuf::CodedInputStream::from_bytes(bytes);
        input.set_recursion_limit(recursion as u32);
        let proto = ModelProto::parse_from(&mut input)
            .and_then(|m| input.check_eof().map(|()| m))
            .map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                msg: format!("not a valid ONNX model ({e})"),
            })?;
        let graph = proto.graph.as_ref().ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            msg: "the model has no graph".into(),
        })?;
        let nodes = count_nodes(graph, 0, limits)?;
        Limits::check(
            || "the number of nodes".to_string(),
            nodes as u64,
            limits.max_nodes as u64,
            "max-nodes",
        )?;
        let mut opsets: Vec<(String, i64)> = Vec::new();
        for o in &proto.opset_import {
            let d = if o.domain == "ai.onnx" {
                String::new()
            } else {
                o.domain.clone()
            };
            opsets.push((d, o.version));
        }
        if proto.opset_import.is_empty() && proto.ir_version < 3 {
            // IR version 1/2 files predate opset_import; they use opset 1
            // semantics. Newer files may import only other domains
            // (`ai.onnx.ml`): their default-domain nodes are then reported
            // as unsupported, by name.
            opsets.push((String::new(), 1));
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(OnnxModel {
            path: path.to_path_buf(),
            dir,
            proto,
            opsets,
        })
    }

    /// The model file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn graph_proto(&self) -> &GraphProto {
        // `from_bytes` refused models without a graph.
        self.proto.graph.as_ref().expect("checked in from_bytes")
    }

    /// The opset version of `domain` (`""` = default), if imported.
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let d = if domain == "ai.onnx" { "" } else { domain };
        self.opsets.iter().find(|(x, _)| x == d).map(|(_, v)| *v)
    }

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
            let n: u64 = t
                .dims
                .iter()
                .map(|&d| d.max(0) as u64)
                .fold(1u64, |a, d| a.saturating_mul(d));
            param_count = param_count.saturating_add(n);
            // A summary of an unvalidated file: raw dims, saturating, before
            // any shape exists, so element size × count (ONNX tensors are
            // dense) rather than the checked size function.
            let eb = DType::from_onnx_code(t.data_type)
                .map(|d| d.elem_bytes() as u64)
                .unwrap_or(0);
            param_bytes = param_bytes.saturating_add(n.saturating_mul(eb));
        }
        let mut node_count = 0usize;
        self.walk_nodes(g, &mut |node| {
            node_count += 1;
            let key = if default_domain(&node.domain) {
                node.op_type.clone()
            } else {
                format!("{}.{}", node.domain, node.op_type)
            };
            *hist.entry(key).or_default() += 1;
            if node.op_type == "Constant" && default_domain(&node.domain) {
                for a in &node.attribute {
                    if a.name == "value" {
                        let n: u64 =
                            a.t.dims
                                .iter()
                                .map(|&d| d.max(0) as u64)
                                .fold(1u64, |x, d| x.saturating_mul(d));
                        param_count = param_count.saturating_add(n);
                        // Saturating element size × count, as for initializers.
                        let eb = DType::from_onnx_code(a.t.data_type)
                            .map(|d| d.elem_bytes() as u64)
                            .unwrap_or(0);
                        param_bytes = param_bytes.saturating_add(n.saturating_mul(eb));
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
            outputs: g.output.iter().map(declared).collect(),
            op_histogram,
            node_count,
            param_count,
            param_bytes,
            unsupported,
        }
    }

    fn walk_nodes<'g>(&self, g: &'g GraphProto, f: &mut dyn FnMut(&'g NodeProto)) {
        for n in &g.node {
            f(n);
            for a in &n.attribute {
                if let Some(sg) = a.g.as_ref() {
                    self.walk_nodes(sg, f);
                }
                for sg in &a.graphs {
                    self.walk_nodes(sg, f);
                }
            }
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
        let ctx = ParseCtx {
            op_type: &node.op_type,
            domain: &node.domain,
            opset,
            attrs: &attrs,
            num_inputs: node.input.len(),
            num_outputs: node.output.len(),
        };
        match Op::parse(&ctx) {
            None => Some("no such op in smelt's op table".into()),
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(_)) => None,
        }
    }

    /// Converts to the IR with static shapes.
    pub fn import(mut self, opts: &ImportOptions) -> Result<Graph> {
        let unsupported = self.summary().unsupported;
        if !unsupported.is_empty() {
            return Err(Error::UnsupportedOps(unsupported));
        }
        let mut graph_proto = self.proto.graph.take().unwrap_or_default();
        let weights = match &opts.weights {
            Some(path) => {
                let w = Weights::open(path, &opts.limits)?;
                check_weights(&w, &graph_proto, &opts.limits)?;
                Some(w)
            }
            None => None,
        };
        let mut imp = Importer {
            model: &self,
            opts,
            reader: TensorReader::new(&self.dir, &opts.limits),
            graph: Graph::new(),
            weight_bytes: 0,
            folded_bytes: 0,
            folded_macs: 0,
            weights: weights.as_ref(),
        };
        let mut scope: HashMap<String, ValueId> = HashMap::new();
        let init_names: HashSet<String> = graph_proto
            .initializer
            .iter()
            .map(|t| t.name.clone())
            .collect();
        for mut t in std::mem::take(&mut graph_proto.initializer) {
            let name = t.name.clone();
            if scope.contains_key(&name) {
                return Err(Error::Graph(format!(
                    "initializer '{name}' is defined twice"
                )));
            }
            let id = imp.add_weight(&name, &mut t)?;
            scope.insert(name, id);
        }
        for vi in &graph_proto.input {
            if init_names.contains(&vi.name) {
                continue; // an initializer with the same name is its value
            }
            if scope.contains_key(&vi.name) {
                return Err(Error::Graph(format!(
                    "graph input '{}' is declared twice",
                    vi.name
                )));
            }
            let id = imp.add_input(vi)?;
            scope.insert(vi.name.clone(), id);
        }
        for name in opts.bind.keys() {
            if !graph_proto.input.iter().any(|vi| &vi.name == name) {
                return Err(Error::Input {
                    name: name.clone(),
                    msg: "--bind names no graph input".into(),
                });
            }
        }
        for name in opts.input_shapes.keys() {
            if !graph_proto.input.iter().any(|vi| &vi.name == name) {
                return Err(Error::Input {
                    name: name.clone(),
                    msg: "--input-shape names no graph input".into(),
                });
            }
        }
        imp.import_nodes(&mut graph_proto.node, &mut scope, 0)?;
        for vi in &graph_proto.output {
            let id = *scope.get(&vi.name).ok_or_else(|| {
                Error::Graph(format!(
                    "graph output '{}' is not defined by any node, input or initializer",
                    vi.name
                ))
            })?;
            imp.check_declared_output(vi, id)?;
            // An output of an inlined If is a branch value with the branch's
            // name: it takes the graph output's name, which nothing else has.
            let v = &imp.graph.values[id.index()];
            if v.name != vi.name
                && matches!(v.def, smelt_ir::ValueDef::Node(..))
                && !imp.graph.outputs.contains(&id)
            {
                imp.graph.values[id.index()].name = vi.name.clone();
            }
            imp.graph.outputs.push(id);
        }
        let mut graph = imp.graph;
        declare_states(&mut graph, &opts.states)?;
        // Folding leaves constants (shape arithmetic, folded weights' sources)
        // that nothing reads any more.
        graph.prune();
        smelt_ir::verify::verify(&graph)?;
        Ok(graph)
    }
}

/// Pairs the state inputs and outputs `--state IN=OUT` names: IN must be a
/// graph input (not fixed by `--bind`), OUT any value of the graph (usually a
/// graph output) of the same type.
fn declare_states(graph: &mut Graph, states: &[(String, String)]) -> Result<()> {
    for (input, output) in states {
        let bad = |msg: String| Error::Graph(format!("--state {input}={output}: {msg}"));
        let i = graph
            .inputs
            .iter()
            .copied()
            .find(|&v| &graph.value(v).name == input)
            .ok_or_else(|| {
                let names: Vec<&str> = graph
                    .inputs
                    .iter()
                    .map(|&v| graph.value(v).name.as_str())
                    .collect();
                bad(format!(
                    "'{input}' is not a graph input (the inputs left are: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
        let o = graph
            .outputs
            .iter()
            .copied()
            .find(|&v| &graph.value(v).name == output)
            .or_else(|| graph.find(output))
            .ok_or_else(|| bad(format!("the graph has no value '{output}'")))?;
        let (ti, to) = (&graph.value(i).ty, &graph.value(o).ty);
        if ti != to {
            return Err(bad(format!(
                "input '{input}' is {ti} but '{output}' is {to}; a state and its next value need one type"
            )));
        }
        graph.add_state(i, o).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

fn hist_key(node: &NodeProto) -> String {
    if default_domain(&node.domain) {
        node.op_type.clone()
    } else {
        format!("{}.{}", node.domain, node.op_type)
    }
}

fn node_name(node: &NodeProto) -> String {
    if !node.name.is_empty() {
        return node.name.clone();
    }
    match node.output.iter().find(|o| !o.is_empty()) {
        Some(o) => format!("{}→{o}", node.op_type),
        None => node.op_type.clone(),
    }
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

fn count_nodes(g: &GraphProto, depth: usize, limits: &Limits) -> Result<usize> {
    let mut n = g.node.len();
    for node in &g.node {
        if node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            Limits::check(
                || {
                    format!(
                        "the subgraph nesting depth inside node '{}' ({})",
                        node_name(node),
                        node.op_type
                    )
                },
                depth as u64 + 1,
                limits.max_depth as u64,
                "max-depth",
            )?;
        }
        for a in &node.attribute {
            if let Some(sg) = a.g.as_ref() {
                n = n.saturating_add(count_nodes(sg, depth + 1, limits)?);
            }
            for sg in &a.graphs {
                n = n.saturating_add(count_nodes(sg, depth + 1, limits)?);
            }
        }
    }
    Ok(n)
}

/// Checks a safetensors file against the initializers of `g` and its
/// subgraphs, reporting every mismatch at once.
fn check_weights(w: &Weights, g: &GraphProto, limits: &Limits) -> Result<()> {
    fn collect<'g>(
        g: &'g GraphProto,
        out: &mut HashMap<&'g str, Vec<&'g onnx_protobuf::TensorProto>>,
    ) {
        for t in &g.initializer {
            out.entry(t.name.as_str()).or_default().push(t);
        }
        for n in &g.node {
            for a in &n.attribute {
                a.g.iter().chain(&a.graphs).for_each(|sg| collect(sg, out));
            }
        }
    }
    let mut inits = HashMap::new();
    collect(g, &mut inits);
    w.check("initializer", &|name| {
        let declared = |t: &onnx_protobuf::TensorProto| -> Result<TensorType, String> {
            let dtype = DType::from_onnx_code(t.data_type).map_err(|e| e.to_string())?;
            let shape = checked::dims(&t.dims, limits.max_rank, &|| {
                format!("initializer '{name}'")
            })
            .map_err(|e| e.to_string())?;
            Ok(TensorType::new(dtype, shape))
        };
        // Subgraphs may declare initializers of the same name; all must agree.
        let mut types = inits.get(name)?.iter().map(|t| declared(t));
        let first = types.next()?;
        for other in types {
            if other != first {
                return Some(Err(
                    "subgraphs declare initializers of this name with different types".into(),
                ));
            }
        }
        Some(first)
    })
}

/// Converts a node's attributes; tensor attributes are decoded with `reader`
/// when given (otherwise they become a placeholder, enough for op support checks).
fn convert_attrs(node: &NodeProto, mut reader: Option<&mut TensorReader<'_>>) -> Result<Attrs> {
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

/// Deepest protobuf message nesting the parser accepts, whatever `max_depth`
/// says: each level is a stack frame of the generated parser.
const MAX_PROTOBUF_RECURSION: usize = 400;

/// Largest output a constant-folded node may produce; bigger results stay
/// nodes so a tiny file cannot make the importer allocate gigabytes.
const MAX_FOLD_BYTES: usize = 64 << 20;

/// Bytes that folding may add in all, beyond [`FOLD_BYTES_PER_WEIGHT_BYTE`]
/// times the weights read so far. Folded results are kept in the graph, so
/// without a total budget a few kilobytes of broadcasting `Add`s would
/// allocate gigabytes; past the budget, nodes stay nodes.
const FOLD_BUDGET_BYTES: u64 = 256 << 20;

/// How much folding may grow the weights: enough for the usual
/// transformations of every weight (a transpose, a dequantization from 8 bits
/// to 32) while a tiny file still cannot amplify itself without bound.
const FOLD_BYTES_PER_WEIGHT_BYTE: u64 = 4;

/// Most multiply-accumulates one folded node may cost. Output size alone does
/// not bound the work (or the scratch memory: the reference convolution's
/// im2col buffer grows with the MACs), and a 250-byte file can ask for a
/// convolution of 10^12 MACs on constants it builds with `ConstantOfShape`.
const MAX_FOLD_MACS: u64 = 1 << 26;

/// Multiply-accumulates that folding may spend in all, beyond
/// [`FOLD_BYTES_PER_WEIGHT_BYTE`] per weight byte read so far: a few seconds.
const FOLD_MAC_BUDGET: u64 = 1 << 30;

struct Importer<'m> {
    model: &'m OnnxModel,
    opts: &'m ImportOptions,
    reader: TensorReader<'m>,
    graph: Graph,
    weight_bytes: u64,
    /// Bytes of constants produced by folding, against the fold budget.
    folded_bytes: u64,
    /// Multiply-accumulates spent folding, against the fold budget.
    folded_macs: u64,
    /// Initializers by name from `ImportOptions::weights`, already checked
    /// against the declared types by [`check_weights`].
    weights: Option<&'m Weights>,
}

impl<'m> Importer<'m> {
    fn add_weight(&mut self, name: &str, t: &mut onnx_protobuf::TensorProto) -> Result<ValueId> {
        let (ty, bytes) = match self.weights {
            Some(w) if w.get(name).is_some() => w.typed_bytes(name)?,
            _ => self.reader.read(name, t)?,
        };
        self.count_weight(bytes.as_slice().len())?;
        Ok(self.graph.add_const_bytes(name, ty, bytes)?)
    }

    fn count_weight(&mut self, n: usize) -> Result<()> {
        self.weight_bytes = self.weight_bytes.saturating_add(n as u64);
        Limits::check(
            || "the total size of the weights".to_string(),
            self.weight_bytes,
            self.opts.limits.max_weight_bytes,
            "max-weight-bytes",
        )
    }

    fn add_input(&mut self, vi: &ValueInfoProto) -> Result<ValueId> {
        let name = vi.name.clone();
        let ierr = |msg: String| Error::Input {
            name: name.clone(),
            msg,
        };
        let tt = match vi.type_.as_ref().and_then(|t| t.value.as_ref()) {
            Some(TypeValue::TensorType(tt)) => tt,
            Some(_) => {
                return Err(ierr(
                    "only tensor inputs are supported (not sequences, maps or optionals)".into(),
                ));
            }
            None => return Err(ierr("the input has no type".into())),
        };
        let dtype = DType::from_onnx_code(tt.elem_type).map_err(|e| ierr(e.to_string()))?;
        if let Some(t) = self.opts.bind.get(&name) {
            if t.dtype() != dtype {
                return Err(ierr(format!(
                    "--bind gives a {} tensor but the input is {dtype}",
                    t.dtype()
                )));
            }
            return Ok(self.graph.add_const(&name, t)?);
        }
        let shape = if let Some(s) = self.opts.input_shapes.get(&name) {
            if let Some(decl) = tt.shape.as_ref() {
                if decl.dim.len() != s.len() {
                    return Err(ierr(format!(
                        "--input-shape gives rank {} but the model declares rank {}",
                        s.len(),
                        decl.dim.len()
                    )));
                }
                for (axis, (d, &v)) in decl.dim.iter().zip(s).enumerate() {
                    if let Some(DimValue::DimValue(fixed)) = d.value
                        && fixed >= 0
                        && fixed as usize != v
                    {
                        return Err(ierr(format!(
                            "--input-shape gives {v} at axis {axis}, but the model fixes it to {fixed}"
                        )));
                    }
                }
            }
            s.clone()
        } else {
            let decl = tt.shape.as_ref().ok_or_else(|| {
                ierr("the model gives no shape; pin it with --input-shape NAME=D0,D1,…".to_string())
            })?;
            let mut shape = Vec::with_capacity(decl.dim.len());
            for (axis, d) in decl.dim.iter().enumerate() {
                let v = match &d.value {
                    Some(DimValue::DimValue(v)) if *v >= 0 => checked::to_usize(*v, || format!("dim {axis} of input '{name}'"))?,
                    Some(DimValue::DimParam(p)) if !p.is_empty() && p != "?" => *self.opts.dims.get(p).ok_or_else(|| {
                        ierr(format!(
                            "axis {axis} is the symbolic dim '{p}'; pin it with --dim {p}=N or --input-shape {name}=…"
                        ))
                    })?,
                    _ => {
                        return Err(ierr(format!(
                            "axis {axis} has no fixed size; pin the whole shape with --input-shape {name}=D0,D1,…"
                        )));
                    }
                };
                shape.push(v);
            }
            shape
        };
        if shape.len() > self.opts.limits.max_rank {
            return Err(Error::Limit {
                what: format!("the rank of input '{name}'"),
                value: shape.len() as u64,
                limit: self.opts.limits.max_rank as u64,
                key: "max-rank",
            });
        }
        let ty = TensorType::new(dtype, shape);
        let bytes = ty.bytes().map_err(|e| ierr(e.to_string()))?;
        Limits::check(
            || format!("the size of input '{name}'"),
            bytes as u64,
            self.opts.limits.max_tensor_bytes,
            "max-tensor-bytes",
        )?;
        Ok(self.graph.add_input(name.clone(), ty)?)
    }

    fn check_declared_output(&self, vi: &ValueInfoProto, id: ValueId) -> Result<()> {
        let have = &self.graph.value(id).ty;
        let Some(TypeValue::TensorType(tt)) = vi.type_.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Ok(());
        };
        let err = |msg: String| Error::Graph(format!("output '{}': {msg}", vi.name));
        if tt.elem_type != 0 {
            let want = DType::from_onnx_code(tt.elem_type).map_err(|e| err(e.to_string()))?;
            if want != have.dtype {
                return Err(err(format!(
                    "the model declares {want} but it computes {}",
                    have.dtype
                )));
            }
        }
        if let Some(shape) = tt.shape.as_ref() {
            if shape.dim.len() != have.shape.len() && !shape.dim.is_empty() {
                return Err(err(format!(
                    "the model declares rank {} but it computes {}",
                    shape.dim.len(),
                    have
                )));
            }
            for (axis, d) in shape.dim.iter().enumerate() {
                if let Some(DimValue::DimValue(v)) = d.value
                    && v >= 0
                    && have.shape.get(axis).copied() != Some(v as usize)
                {
                    return Err(err(format!(
                        "the model declares {v} at axis {axis} but it computes {have}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Imports `nodes` in dependency order into the graph, resolving names in `scope`.
    fn import_nodes(
        &mut self,
        nodes: &mut [NodeProto],
        scope: &mut HashMap<String, ValueId>,
        depth: usize,
    ) -> Result<()> {
        for i in topo_order(nodes, scope)? {
            let node = &mut nodes[i];
            self.import_node(node, scope, depth)?;
        }
        Ok(())
    }

    fn import_node(
        &mut self,
        node: &mut NodeProto,
        scope: &mut HashMap<String, ValueId>,
        depth: usize,
    ) -> Result<()> {
        let name = node_name(node);
        let opset = self.model.opset(&node.domain).unwrap_or(0);
        let op_label = hist_key(node);
        if default_domain(&node.domain) && node.op_type == "Constant" {
            return self.import_constant(node, &name, scope);
        }
        if default_domain(&node.domain) && node.op_type == "If" {
            return self.import_if(node, &name, scope, depth);
        }
        let attrs = convert_attrs(node, Some(&mut self.reader))?;
        let ctx = ParseCtx {
            op_type: &node.op_type,
            domain: &node.domain,
            opset,
            attrs: &attrs,
            num_inputs: node.input.len(),
            num_outputs: node.output.len(),
        };
        let op = match Op::parse(&ctx) {
            Some(Ok(op)) => op,
            Some(Err(e)) => return Err(Error::Ir(e.at_node(&name, &op_label))),
            None => {
                return Err(Error::UnsupportedOps(vec![UnsupportedOp {
                    node: name,
                    op: op_label,
                    reason: "no such op in smelt's op table".into(),
                }]));
            }
        };
        let mut inputs = Vec::with_capacity(node.input.len());
        for inp in &node.input {
            if inp.is_empty() {
                inputs.push(None);
            } else {
                inputs.push(Some(*scope.get(inp).ok_or_else(|| {
                    Error::Graph(format!(
                        "node '{name}' ({op_label}) uses '{inp}', which nothing defines"
                    ))
                })?));
            }
        }
        let mut out_names = Vec::with_capacity(node.output.len());
        for (k, o) in node.output.iter().enumerate() {
            out_names.push(if o.is_empty() {
                format!("{name}:unused{k}")
            } else {
                o.clone()
            });
        }
        let all_const = inputs.iter().flatten().all(|&id| self.graph.is_const(id));
        let ids = if all_const || op.reads_only_types() {
            self.fold(&name, &op_label, op, &inputs, out_names)?
        } else {
            self.graph
                .add_node(name.clone(), op, inputs, out_names)
                .map_err(|e| self.not_constant_hint(e, node, &name, &op_label))?
        };
        for &id in &ids {
            // Activations are tensors too: a shape that asks for more than the
            // published limit is refused here, not when the run allocates it.
            let ty = &self.graph.value(id).ty;
            let bytes = ty.bytes().map(|b| b as u64).unwrap_or(u64::MAX);
            Limits::check(
                || {
                    format!(
                        "the size of '{}' ({ty}) computed by node '{name}' ({op_label})",
                        self.graph.value(id).name
                    )
                },
                bytes,
                self.opts.limits.max_tensor_bytes,
                "max-tensor-bytes",
            )?;
        }
        for (o, id) in node.output.iter().zip(ids) {
            if o.is_empty() {
                continue;
            }
            if scope.insert(o.clone(), id).is_some() {
                return Err(Error::Graph(format!(
                    "value '{o}' is defined twice (again by node '{name}')"
                )));
            }
        }
        Ok(())
    }

    /// Turns an [`smelt_ir::Error::NotConstant`] into an error naming the operand.
    fn not_constant_hint(
        &self,
        e: smelt_ir::Error,
        node: &NodeProto,
        name: &str,
        op: &str,
    ) -> Error {
        if let smelt_ir::Error::NotConstant { input, role } = e.root() {
            let operand = node.input.get(*input).cloned().unwrap_or_default();
            let is_input = self
                .graph
                .inputs
                .iter()
                .any(|&i| self.graph.value(i).name == operand);
            return Error::NeedsConstant {
                node: name.to_string(),
                op: op.to_string(),
                operand,
                role: role.clone(),
                is_graph_input: is_input,
            };
        }
        Error::Ir(e)
    }

    /// Evaluates a node whose inputs are all constants (or whose op reads only
    /// their types) and adds its results as constants; results too large to
    /// fold stay a node.
    fn fold(
        &mut self,
        name: &str,
        op_label: &str,
        op: Op,
        inputs: &[Option<ValueId>],
        out_names: Vec<String>,
    ) -> Result<Vec<ValueId>> {
        let ctx = |e: smelt_ir::Error| Error::Ir(e.at_node(name, op_label));
        let types = self.graph.infer(&op, inputs).map_err(ctx)?;
        let total: usize = types
            .iter()
            .map(|t| t.bytes().unwrap_or(usize::MAX))
            .fold(0usize, |a, b| a.saturating_add(b));
        let input_types: Vec<Option<&TensorType>> = inputs
            .iter()
            .map(|i| i.map(|id| &self.graph.value(id).ty))
            .collect();
        let macs = op.macs(&input_types, &types);
        let growth = self.weight_bytes.saturating_mul(FOLD_BYTES_PER_WEIGHT_BYTE);
        let over_bytes = total > MAX_FOLD_BYTES
            || self.folded_bytes.saturating_add(total as u64)
                > FOLD_BUDGET_BYTES.saturating_add(growth);
        let over_macs = macs > MAX_FOLD_MACS
            || self.folded_macs.saturating_add(macs) > FOLD_MAC_BUDGET.saturating_add(growth);
        if over_bytes || over_macs {
            return self
                .graph
                .add_node(name.to_string(), op, inputs.to_vec(), out_names)
                .map_err(Error::Ir);
        }
        let mut values = Vec::with_capacity(inputs.len());
        for inp in inputs {
            values.push(match inp {
                Some(id) => Some(match self.graph.const_value(*id) {
                    Some(t) => t.map_err(ctx)?,
                    // An op that reads only types gets a stand-in of the right type.
                    None => {
                        let ty = &self.graph.value(*id).ty;
                        Tensor::zeros(ty.dtype, ty.shape.clone()).map_err(ctx)?
                    }
                }),
                None => None,
            });
        }
        let args: Vec<Option<&Tensor>> = values.iter().map(Option::as_ref).collect();
        let outs = op.eval(&args).map_err(ctx)?;
        self.folded_bytes = self.folded_bytes.saturating_add(total as u64);
        self.folded_macs = self.folded_macs.saturating_add(macs);
        let mut ids = Vec::with_capacity(out_names.len());
        for (k, (oname, t)) in out_names.into_iter().zip(outs).enumerate() {
            if types
                .get(k)
                .is_some_and(|ty| ty.dtype != t.dtype() || ty.shape != t.shape())
            {
                return Err(ctx(smelt_ir::Error::Verify(format!(
                    "folding output {k} disagrees with its inferred type"
                ))));
            }
            ids.push(self.graph.add_const(oname, &t)?);
        }
        Ok(ids)
    }

    fn import_constant(
        &mut self,
        node: &mut NodeProto,
        name: &str,
        scope: &mut HashMap<String, ValueId>,
    ) -> Result<()> {
        let out = node
            .output
            .first()
            .cloned()
            .ok_or_else(|| Error::Graph(format!("Constant node '{name}' has no output")))?;
        let attr = node.attribute.first_mut().ok_or_else(|| {
            Error::Graph(format!("Constant node '{name}' has no value attribute"))
        })?;
        let t = match attr.name.as_str() {
            "value" => {
                let mut tp = attr.t.take().unwrap_or_default();
                let (ty, bytes) = self.reader.read(&out, &mut tp)?;
                self.count_weight(bytes.as_slice().len())?;
                let id = self.graph.add_const_bytes(out.clone(), ty, bytes)?;
                return self.bind_output(scope, out, id, name);
            }
            "value_float" => Tensor::scalar(attr.f),
            "value_floats" => Tensor::from_vec(vec![attr.floats.len()], attr.floats.clone())?,
            "value_int" => Tensor::scalar(attr.i),
            "value_ints" => Tensor::from_vec(vec![attr.ints.len()], attr.ints.clone())?,
            other => {
                return Err(Error::UnsupportedOps(vec![UnsupportedOp {
                    node: name.to_string(),
                    op: "Constant".into(),
                    reason: format!(
                        "attribute '{other}' (strings and sparse tensors are not supported)"
                    ),
                }]));
            }
        };
        let id = self.graph.add_const(out.clone(), &t)?;
        self.bind_output(scope, out, id, name)
    }

    fn bind_output(
        &mut self,
        scope: &mut HashMap<String, ValueId>,
        out: String,
        id: ValueId,
        node: &str,
    ) -> Result<()> {
        if scope.insert(out.clone(), id).is_some() {
            return Err(Error::Graph(format!(
                "value '{out}' is defined twice (again by node '{node}')"
            )));
        }
        Ok(())
    }

    /// Inlines the branch an `If` with a constant condition takes.
    fn import_if(
        &mut self,
        node: &mut NodeProto,
        name: &str,
        scope: &mut HashMap<String, ValueId>,
        depth: usize,
    ) -> Result<()> {
        let cond_name = node.input.first().cloned().unwrap_or_default();
        let cond = scope.get(&cond_name).copied().ok_or_else(|| {
            Error::Graph(format!(
                "node '{name}' (If) uses '{cond_name}', which nothing defines"
            ))
        })?;
        let value = match self.graph.const_value(cond) {
            Some(v) => v?,
            // A condition that is a graph input can be fixed with --bind.
            None if self.graph.inputs.contains(&cond) => {
                return Err(Error::NeedsConstant {
                    node: name.to_string(),
                    op: "If".into(),
                    operand: cond_name,
                    role: "condition".into(),
                    is_graph_input: true,
                });
            }
            None => {
                return Err(Error::UnsupportedOps(vec![UnsupportedOp {
                    node: name.to_string(),
                    op: "If".into(),
                    reason: "the condition is computed at run time; only an If whose condition folds to a constant is supported".into(),
                }]));
            }
        };
        let taken = value.to_f64_vec().first().is_some_and(|&c| c != 0.0);
        let branch = if taken { "then_branch" } else { "else_branch" };
        let attr = node
            .attribute
            .iter_mut()
            .find(|a| a.name == branch)
            .ok_or_else(|| Error::Graph(format!("node '{name}' (If) has no {branch}")))?;
        let mut sub = attr.g.take().unwrap_or_default();
        Limits::check(
            || "the subgraph nesting depth".to_string(),
            (depth + 1) as u64,
            self.opts.limits.max_depth as u64,
            "max-depth",
        )?;
        // The branch sees the outer scope; its own names must not leak out.
        let mut inner = scope.clone();
        for mut t in std::mem::take(&mut sub.initializer) {
            let tname = t.name.clone();
            let id = self.add_weight(&tname, &mut t)?;
            inner.insert(tname, id);
        }
        self.import_nodes(&mut sub.node, &mut inner, depth + 1)?;
        if sub.output.len() != node.output.len() {
            return Err(Error::Graph(format!(
                "node '{name}' (If): the {branch} has {} outputs but the node has {}",
                sub.output.len(),
                node.output.len()
            )));
        }
        for (vi, out) in sub.output.iter().zip(node.output.clone()) {
            let id = *inner.get(&vi.name).ok_or_else(|| {
                Error::Graph(format!(
                    "node '{name}' (If): branch output '{}' is not defined",
                    vi.name
                ))
            })?;
            if out.is_empty() {
                continue;
            }
            self.bind_output(scope, out, id, name)?;
        }
        Ok(())
    }
}

/// A dependency order of `nodes`: node `b` after node `a` when `b` reads a
/// value `a` writes (also through a subgraph). Refuses cycles and values that
/// nothing defines.
fn topo_order(nodes: &[NodeProto], scope: &HashMap<String, ValueId>) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            if o.is_empty() {
                continue;
            }
            if producer.insert(o.as_str(), i).is_some() || scope.contains_key(o) {
                return Err(Error::Graph(format!(
                    "value '{o}' is defined twice (again by node '{}')",
                    node_name(n)
                )));
            }
        }
    }
    let mut dag: DiGraph<usize, ()> = DiGraph::with_capacity(nodes.len(), nodes.len());
    let idx: Vec<_> = (0..nodes.len()).map(|i| dag.add_node(i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        let mut uses: Vec<&str> = n
            .input
            .iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect();
        for a in &n.attribute {
            if let Some(g) = a.g.as_ref() {
                free_names(g, &mut uses);
            }
            for g in &a.graphs {
                free_names(g, &mut uses);
            }
        }
        for u in uses {
            match producer.get(u) {
                Some(&p) => {
                    dag.add_edge(idx[p], idx[i], ());
                }
                None if scope.contains_key(u) => {}
                None => {
                    return Err(Error::Graph(format!(
                        "node '{}' ({}) uses '{u}', which no node, input or initializer defines",
                        node_name(n),
                        n.op_type
                    )));
                }
            }
        }
    }
    petgraph::algo::toposort(&dag, None)
        .map(|order| order.into_iter().map(|n| dag[n]).collect())
        .map_err(|cycle| {
            let n = &nodes[dag[cycle.node_id()]];
            Error::Graph(format!(
                "the graph has a cycle through node '{}' ({})",
                node_name(n),
                n.op_type
            ))
        })
}

/// Names a subgraph reads from enclosing scopes.
fn free_names<'g>(g: &'g GraphProto, out: &mut Vec<&'g str>) {
    let mut defined: HashSet<&str> = HashSet::new();
    defined.extend(g.input.iter().map(|v| v.name.as_str()));
    defined.extend(g.initializer.iter().map(|t| t.name.as_str()));
    for n in &g.node {
        defined.extend(n.output.iter().map(String::as_str));
    }
    for n in &g.node {
        for i in &n.input {
            if !i.is_empty() && !defined.contains(i.as_str()) {
                out.push(i);
            }
        }
        for a in &n.attribute {
            if let Some(sg) = a.g.as_ref() {
                let mut inner = Vec::new();
                free_names(sg, &mut inner);
                out.extend(inner.into_iter().filter(|x| !defined.contains(x)));
            }
        }
    }
    for o in &g.output {
        if !defined.contains(o.name.as_str()) {
            out.push(o.name.as_str());
        }
    }
}

/// Reads a serialized `TensorProto` file (the ONNX test-data `.pb` format).
pub fn read_tensor_pb(path: &Path, limits: &Limits) -> Result<(String, Tensor)> {
    let bytes = Limits::read_file(path, limits.max_model_bytes, "max-model-bytes")?;
    let mut tp =
        onnx_protobuf::TensorProto::parse_from_bytes(&bytes).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            msg: format!("not a TensorProto ({e})"),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut reader = TensorReader::new(dir, limits);
    let name = tp.name.clone();
    let label = if name.is_empty() {
        path.display().to_string()
    } else {
        name.clone()
    };
    let t = reader.read_tensor(&label, &mut tp)?;
    Ok((name, t))
}

/// Reads and imports a model in one step.
pub fn load(path: &Path, opts: &ImportOptions) -> Result<Graph> {
    OnnxModel::read(path, &opts.limits)?.import(opts)
}
