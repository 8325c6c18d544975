//! The graph: typed values, constants and nodes in topological order.
//!
//! **Architecture Invariant:** every value has a static dtype and shape; nodes
//! are stored in an order where each input is defined before use; the graph
//! never holds protobuf or any other file-format type.

use std::fmt;
use std::sync::Arc;

use memmap2::Mmap;

use crate::dtype::DType;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::ops::{InferInput, Op, OpDef};
use crate::shape::{Shape, numel};
use crate::tensor::Tensor;

/// Index of a value in [`Graph::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a node in [`Graph::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The static type of a value.
///
/// `dtype` is the logical element type (what the values are once decoded:
/// `f32` for a Q4_0 weight); `encoding` says how the bytes hold them. Dense
/// is the default and the only encoding a node's operands and results have
/// today; the verifier admits other encodings on constants only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Logical element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape,
    /// How the elements are stored.
    pub encoding: Encoding,
}

impl TensorType {
    /// Builds a dense type.
    pub fn new(dtype: DType, shape: Shape) -> TensorType {
        TensorType {
            dtype,
            shape,
            encoding: Encoding::Dense,
        }
    }

    /// Builds a type with an encoding, checking that dtype and shape fit it
    /// (see [`Encoding::storage_bytes`]).
    pub fn encoded(dtype: DType, shape: Shape, encoding: Encoding) -> Result<TensorType> {
        let ty = TensorType {
            dtype,
            shape,
            encoding,
        };
        ty.bytes()?;
        Ok(ty)
    }

    /// True when the elements are stored densely.
    pub fn is_dense(&self) -> bool {
        self.encoding.is_dense()
    }

    /// The dtype of a dense type; for an encoded one an
    /// [`Error::UnsupportedEncoding`] naming `what` (the operation that
    /// needs dense elements). Code that dispatches on a value's element type
    /// goes through this (or [`dispatch_type!`](crate::dispatch_type)).
    pub fn dense_dtype(&self, what: &str) -> Result<DType> {
        match self.encoding {
            Encoding::Dense => Ok(self.dtype),
            encoding => Err(Error::UnsupportedEncoding {
                encoding,
                what: what.to_string(),
            }),
        }
    }

    /// The element count (checked).
    pub fn numel(&self) -> Result<usize> {
        numel(&self.shape)
    }

    /// The storage size in bytes (checked), for every encoding: the one
    /// size function, [`Encoding::storage_bytes`].
    pub fn bytes(&self) -> Result<usize> {
        self.encoding.storage_bytes(self.dtype, &self.shape)
    }
}

/// `f32[64,32]` for a dense type; an encoded type adds one space and the
/// encoding's text form: `f32[64,32] q4_0`, `f32[8,4] affine(i8,axis=0,zp)`.
impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")?;
        if !self.is_dense() {
            write!(f, " {}", self.encoding)?;
        }
        Ok(())
    }
}

/// Little-endian bytes of a constant: owned, or a window into a memory-mapped
/// file so large weights are never copied.
#[derive(Clone)]
pub enum Bytes {
    /// Bytes owned by the graph.
    Owned(Arc<[u8]>),
    /// A range of a memory-mapped file.
    Mapped {
        /// The mapping (shared by every constant of the file).
        map: Arc<Mmap>,
        /// Start of the range.
        offset: usize,
        /// Length of the range.
        len: usize,
    },
}

impl Bytes {
    /// Bytes of a mapping, checking that the range lies inside it.
    pub fn mapped(map: Arc<Mmap>, offset: usize, len: usize) -> Result<Bytes> {
        match offset.checked_add(len) {
            Some(end) if end <= map.len() => Ok(Bytes::Mapped { map, offset, len }),
            _ => Err(Error::Overflow(format!(
                "range {offset}+{len} lies outside a mapping of {} bytes",
                map.len()
            ))),
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(b) => b,
            Bytes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }

    /// True when the bytes live in a memory-mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Bytes::Mapped { .. })
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes::Owned(v.into())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Bytes({kind}, {} bytes)", self.as_slice().len())
    }
}

/// The bytes, so a `&Bytes` reads as a `&[u8]` (the kernel IR's constants
/// are `Bytes` shared with the graph, and its passes read them as slices).
impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Equal contents, owned or mapped alike.
impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// No bytes (owned).
impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::Owned(Arc::from([]))
    }
}

/// Where a value comes from.
#[derive(Clone, Debug)]
pub enum ValueDef {
    /// A graph input, supplied at run time.
    Input,
    /// A constant (weight), stored as little-endian bytes of the value's type.
    Const(Bytes),
    /// Output `.1` of node `.0`.
    Node(NodeId, usize),
}

/// A typed value of the graph.
#[derive(Clone, Debug)]
pub struct Value {
    /// The name from the model file (unique in the graph).
    pub name: String,
    /// Static type.
    pub ty: TensorType,
    /// Definition.
    pub def: ValueDef,
}

/// An operation applied to values.
#[derive(Clone, Debug)]
pub struct Node {
    /// The name from the model file (generated when the file has none).
    pub name: String,
    /// The operation with its parsed attributes.
    pub op: Op,
    /// Operands; `None` for an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    /// Results.
    pub outputs: Vec<ValueId>,
}

/// A persistent state tensor: the value `output` computes in one step is the
/// value `input` holds in the next (the first step sees all zero bytes).
///
/// The graph stays a pure function of its inputs and state inputs: the
/// pairing only tells the runtime which bytes to carry from one call to the
/// next (see ARCHITECTURE.md, "Persistent state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The state input: a [`ValueDef::Input`] value that is not in
    /// [`Graph::inputs`] (the caller never passes it).
    pub input: ValueId,
    /// The value that becomes the next step's `input` (any value of the
    /// same type; in [`Graph::outputs`] only when the caller also wants it).
    pub output: ValueId,
}

/// A model graph with static types.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All values, indexed by [`ValueId`].
    pub values: Vec<Value>,
    /// Nodes in topological order, indexed by [`NodeId`].
    pub nodes: Vec<Node>,
    /// Run-time inputs, in signature order.
    pub inputs: Vec<ValueId>,
    /// Results, in signature order.
    pub outputs: Vec<ValueId>,
    /// Persistent state, as input/output pairs in declaration order (empty
    /// for a stateless graph).
    pub states: Vec<State>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The value with this id.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    fn push_value(&mut self, name: String, ty: TensorType, def: ValueDef) -> Result<ValueId> {
        let id = u32::try_from(self.values.len())
            .map_err(|_| Error::Overflow("more than 2^32 values".into()))?;
        self.values.push(Value { name, ty, def });
        Ok(ValueId(id))
    }

    /// Adds a run-time input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> Result<ValueId> {
        let id = self.push_value(name.into(), ty, ValueDef::Input)?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a state input: an input value the caller does not pass, paired
    /// with its next value by [`Graph::add_state`].
    pub fn add_state_input(&mut self, name: impl Into<String>, ty: TensorType) -> Result<ValueId> {
        self.push_value(name.into(), ty, ValueDef::Input)
    }

    /// Declares `input` (a graph input, which leaves the signature, or a value
    /// made by [`Graph::add_state_input`]) as state whose next value is
    /// `output`. Both must have the same type.
    pub fn add_state(&mut self, input: ValueId, output: ValueId) -> Result<()> {
        let (i, o) = (self.value(input), self.value(output));
        if !matches!(i.def, ValueDef::Input) {
            return Err(Error::Verify(format!(
                "state input '{}' is not an input value",
                i.name
            )));
        }
        check_state_types(i, o)?;
        self.inputs.retain(|&v| v != input);
        self.states.push(State { input, output });
        Ok(())
    }

    /// True when the graph carries state from one step to the next.
    pub fn is_stateful(&self) -> bool {
        !self.states.is_empty()
    }

    /// Adds a constant from raw little-endian bytes; the byte count must match the type.
    pub fn add_const_bytes(
        &mut self,
        name: impl Into<String>,
        ty: TensorType,
        bytes: Bytes,
    ) -> Result<ValueId> {
        let name = name.into();
        let want = ty.bytes()?;
        if bytes.as_slice().len() != want {
            return Err(Error::Shape(format!(
                "constant '{name}' of type {ty} needs {want} bytes, got {}",
                bytes.as_slice().len()
            )));
        }
        self.push_value(name, ty, ValueDef::Const(bytes))
    }

    /// Adds a constant holding a tensor.
    pub fn add_const(&mut self, name: impl Into<String>, t: &Tensor) -> Result<ValueId> {
        let ty = TensorType::new(t.dtype(), t.shape().to_vec());
        self.add_const_bytes(name, ty, t.to_le_bytes().into())
    }

    /// The value of a constant, decoded; `None` for non-constants. An
    /// encoded constant is refused ([`Error::UnsupportedEncoding`]): what
    /// reads it must handle its encoding (or call
    /// [`dequantize`](crate::encoding::dequantize) on purpose).
    pub fn const_value(&self, id: ValueId) -> Option<Result<Tensor>> {
        let v = self.value(id);
        match &v.def {
            ValueDef::Const(b) => Some(Tensor::from_typed_bytes(&v.ty, b.as_slice()).map_err(
                |e| match e {
                    Error::UnsupportedEncoding { encoding, what } => Error::UnsupportedEncoding {
                        encoding,
                        what: format!("{what} (constant '{}')", v.name),
                    },
                    other => other,
                },
            )),
            ValueDef::Input | ValueDef::Node(..) => None,
        }
    }

    /// True when the value is a constant.
    pub fn is_const(&self, id: ValueId) -> bool {
        matches!(self.value(id).def, ValueDef::Const(_))
    }

    /// Infers the output types of `op` applied to `inputs`, decoding the
    /// constant operands the op needs at compile time.
    pub fn infer(&self, op: &Op, inputs: &[Option<ValueId>]) -> Result<Vec<TensorType>> {
        let wanted = op.const_operands();
        let mut decoded: Vec<Option<Tensor>> = Vec::with_capacity(inputs.len());
        for (i, inp) in inputs.iter().enumerate() {
            let value = match inp {
                Some(id) if wanted.contains(&i) => match self.const_value(*id) {
                    Some(t) => Some(t?),
                    None => None,
                },
                _ => None,
            };
            decoded.push(value);
        }
        let args: Vec<Option<InferInput<'_>>> = inputs
            .iter()
            .zip(&decoded)
            .map(|(inp, val)| {
                inp.map(|id| InferInput {
                    ty: &self.value(id).ty,
                    value: val.as_ref(),
                })
            })
            .collect();
        op.infer(&args)
    }

    /// Appends a node, inferring its output types. `output_names` gives one
    /// name per result the node exposes (an op may compute more).
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<Option<ValueId>>,
        output_names: Vec<String>,
    ) -> Result<Vec<ValueId>> {
        let name = name.into();
        let types = self
            .infer(&op, &inputs)
            .map_err(|e| e.at_node(&name, op.name()))?;
        if types.len() < output_names.len() {
            return Err(Error::Shape(format!(
                "the op has {} outputs but the node lists {}",
                types.len(),
                output_names.len()
            ))
            .at_node(&name, op.name()));
        }
        let node_id = NodeId(
            u32::try_from(self.nodes.len())
                .map_err(|_| Error::Overflow("more than 2^32 nodes".into()))?,
        );
        let mut outputs = Vec::with_capacity(output_names.len());
        for (i, (oname, ty)) in output_names.into_iter().zip(types).enumerate() {
            outputs.push(self.push_value(oname, ty, ValueDef::Node(node_id, i))?);
        }
        self.nodes.push(Node {
            name,
            op,
            inputs,
            outputs: outputs.clone(),
        });
        Ok(outputs)
    }

    /// A value name no value has yet: `base`, or `base.2`, `base.3`, ….
    pub fn fresh_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.find(&name).is_some() {
            k += 1;
            name = format!("{base}.{k}");
        }
        name
    }

    /// Finds a value by name.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.values
            .iter()
            .position(|v| v.name == name)
            .map(|i| ValueId(i as u32))
    }

    /// Total bytes of all constants.
    pub fn const_bytes(&self) -> usize {
        self.values
            .iter()
            .map(|v| match &v.def {
                ValueDef::Const(b) => b.as_slice().len(),
                ValueDef::Input | ValueDef::Node(..) => 0,
            })
            .sum()
    }

    /// Removes nodes and constants that no graph output or state output
    /// depends on (graph inputs and state inputs always stay: they are the
    /// signature and the state layout). Value and node ids are renumbered;
    /// relative order is kept.
    pub fn prune(&mut self) {
        let mut live = vec![false; self.values.len()];
        let states = self.states.iter().flat_map(|s| [&s.input, &s.output]);
        for id in self.outputs.iter().chain(&self.inputs).chain(states) {
            live[id.index()] = true;
        }
        let mut keep_node = vec![false; self.nodes.len()];
        for (n, node) in self.nodes.iter().enumerate().rev() {
            if node.outputs.iter().any(|o| live[o.index()]) {
                keep_node[n] = true;
                for id in node.inputs.iter().flatten() {
                    live[id.index()] = true;
                }
            }
        }
        // A kept node keeps all its outputs, used or not.
        for (n, node) in self.nodes.iter().enumerate() {
            if keep_node[n] {
                for o in &node.outputs {
                    live[o.index()] = true;
                }
            }
        }
        let mut node_map = vec![None; self.nodes.len()];
        let mut next = 0u32;
        for (n, k) in keep_node.iter().enumerate() {
            if *k {
                node_map[n] = Some(NodeId(next));
                next += 1;
            }
        }
        let mut value_map = vec![None; self.values.len()];
        let mut values = Vec::new();
        for (i, v) in std::mem::take(&mut self.values).into_iter().enumerate() {
            if live[i] {
                value_map[i] = Some(ValueId(values.len() as u32));
                let def = match v.def {
                    ValueDef::Node(n, k) => {
                        ValueDef::Node(node_map[n.index()].expect("live output of a kept node"), k)
                    }
                    other => other,
                };
                values.push(Value { def, ..v });
            }
        }
        let remap = |id: ValueId| value_map[id.index()].expect("live value");
        let nodes = std::mem::take(&mut self.nodes)
            .into_iter()
            .zip(keep_node)
            .filter(|(_, k)| *k)
            .map(|(mut node, _)| {
                node.inputs = node.inputs.iter().map(|i| i.map(remap)).collect();
                node.outputs = node.outputs.iter().map(|&o| remap(o)).collect();
                node
            })
            .collect();
        self.values = values;
        self.nodes = nodes;
        self.inputs = self.inputs.iter().map(|&i| remap(i)).collect();
        self.outputs = self.outputs.iter().map(|&i| remap(i)).collect();
        for s in &mut self.states {
            s.input = remap(s.input);
            s.output = remap(s.output);
        }
    }
}

/// Checks that a state input `i` and its next value `o` have the same type,
/// the rule both [`Graph::add_state`] and the verifier apply.
pub(crate) fn check_state_types(i: &Value, o: &Value) -> Result<()> {
    if i.ty != o.ty {
        return Err(Error::Verify(format!(
            "state input '{}' is {} but its next value '{}' is {}",
            i.name, i.ty, o.name, o.ty
        )));
    }
    Ok(())
}
