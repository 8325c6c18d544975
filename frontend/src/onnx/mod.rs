//! ONNX import: `.onnx` (+ external data) → [`smelt_ir::Graph`] with static shapes.
//!
//! The importer pins symbolic dims (`--dim`, `--input-shape`), turns
//! initializers and `Constant` nodes into constants (raw bytes moved, external
//! data memory-mapped), orders nodes topologically (refusing cycles and
//! undefined values), parses every node through the op table, folds every node
//! whose inputs are all constants (this is how PyTorch's
//! `Shape → Gather → Concat → Reshape` chains become static shapes), and
//! inlines `If` nodes whose condition folds to a constant.
//!
//! This file reads the model (limits, opsets) and runs the import; the stages
//! live beside it:
//! - `summary`: what can be said from the file alone (signature, op
//!   histogram, parameters, unsupported ops);
//! - `graph`: walking nodes and subgraphs, node names, the dependency order;
//! - `attrs`: node attributes → [`smelt_ir::Attrs`] and the op-table lookup;
//! - `import`: the importer (weights, inputs, nodes, `Constant`, `If`);
//! - `fold`: constant folding within its byte and work budgets;
//! - `nbits`: onnxruntime's `com.microsoft::MatMulNBits` as `EncodedMatMul`;
//! - `qdq`: dequantized integer weights kept encoded for the products
//!   that read them;
//! - `tensor`: `TensorProto` decoding and external data.

mod attrs;
mod fold;
mod graph;
mod import;
mod nbits;
mod opsets;
mod qdq;
mod summary;
mod tensor;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use onnx_protobuf::{GraphProto, Message, ModelProto};
use smelt_ir::{Graph, Tensor, ValueId};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::safetensors::Weights;
use graph::count_nodes;
use import::{Importer, check_weights};
pub use summary::{DeclaredValue, Summary};
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
    /// For a language model (a Hugging Face folder or GGUF file), how its
    /// step graph is built; ignored for ONNX models.
    pub llm: crate::llm::LlmOptions,
}

/// A parsed `.onnx` file, not yet converted to the IR.
pub struct OnnxModel {
    path: PathBuf,
    dir: PathBuf,
    proto: ModelProto,
    /// Opset version per domain (`""` is the default ONNX domain).
    pub opsets: Vec<(String, i64)>,
}

/// Deepest protobuf message nesting the parser accepts, whatever `max_depth`
/// says: each level is a stack frame of the generated parser.
const MAX_PROTOBUF_RECURSION: usize = 400;

/// The error for a model protobuf refuses. Running out of recursion means
/// the subgraphs nest deeper than `max_depth` lets the parser follow: that
/// is the nesting limit, named with the depth the parser reached (while it
/// can be raised), not a bare "Over recursion limit".
fn parse_error(e: protobuf::Error, path: &Path, max_depth: usize, recursion: usize) -> Error {
    let msg = e.to_string();
    if !msg.contains("recursion limit") {
        return Error::Parse {
            path: path.to_path_buf(),
            msg: format!("not a valid ONNX model ({msg})"),
        };
    }
    // Each level of nesting is three levels of messages, after the model's
    // own and its graph's.
    let reached = (recursion.saturating_sub(2) / 3) as u64;
    if recursion < MAX_PROTOBUF_RECURSION {
        Error::Limit {
            what: format!(
                "the nesting depth of subgraphs in {} (where the parser stopped)",
                path.display()
            ),
            value: reached.max(max_depth as u64 + 1),
            limit: max_depth as u64,
            key: "max-depth",
        }
    } else {
        Error::Parse {
            path: path.to_path_buf(),
            msg: format!("subgraphs nest deeper than {reached} levels, more than smelt can parse"),
        }
    }
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
            .map_err(|e| parse_error(e, path, limits.max_depth, recursion))?;
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
        // A default-domain opset from a newer ONNX (or none at all) would
        // be read with the semantics of another version, silently.
        if let Some((_, v)) = opsets.iter().find(|(d, _)| d.is_empty())
            && !(1..=opsets::MAX_OPSET).contains(v)
        {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                msg: format!(
                    "the model imports opset {v} of the default ONNX domain; smelt supports opsets 1 to {}",
                    opsets::MAX_OPSET
                ),
            });
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
        let mut imp = Importer::new(&self, opts, weights.as_ref());
        let mut scope: HashMap<String, ValueId> = HashMap::new();
        let init_names: HashSet<String> = graph_proto
            .initializer
            .iter()
            .map(|t| t.name.clone())
            .collect();
        // An initializer that is also a graph input is the input's default
        // value (IR version 4 on): a value bound at run time overrides it.
        // Before IR 4 every initializer is listed as an input and is a
        // constant, so binding one is refused rather than ignored.
        let overridden = |name: &str| {
            opts.bind.contains_key(name) && graph_proto.input.iter().any(|vi| vi.name == name)
        };
        for mut t in std::mem::take(&mut graph_proto.initializer) {
            let name = t.name.clone();
            if scope.contains_key(&name) {
                return Err(Error::Graph(format!(
                    "initializer '{name}' is defined twice"
                )));
            }
            if overridden(&name) {
                if self.proto.ir_version < summary::OVERRIDABLE_IR_VERSION {
                    return Err(Error::Input {
                        name,
                        msg: format!(
                            "is an initializer of this IR version {} model, a constant that cannot be given at run time (ONNX IR < 4 lists every initializer as an input)",
                            self.proto.ir_version
                        ),
                    });
                }
                continue;
            }
            let id = imp.add_weight(&name, &mut t)?;
            scope.insert(name, id);
        }
        for vi in &graph_proto.input {
            if init_names.contains(&vi.name) && !opts.bind.contains_key(&vi.name) {
                continue; // the initializer of the same name is its value
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
        let named = (opts.bind.keys().map(|n| (n, "--bind")))
            .chain(opts.input_shapes.keys().map(|n| (n, "--input-shape")));
        for (name, flag) in named {
            if !graph_proto.input.iter().any(|vi| &vi.name == name) {
                return Err(Error::Input {
                    name: name.clone(),
                    msg: format!("{flag} names no graph input"),
                });
            }
        }
        // A model computes something: with no outputs there is nothing to
        // run or compile (ONNX requires at least one).
        if graph_proto.output.is_empty() {
            return Err(Error::Graph(
                "the graph has no outputs; a model must compute at least one value".into(),
            ));
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
