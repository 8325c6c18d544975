//! The ONNX importer proper: initializers and `--weights` become constants,
//! graph inputs get their pinned shapes, nodes are parsed through the op
//! table (or folded, see `fold`), `Constant` nodes become constants and an
//! `If` with a constant condition is inlined.

use std::collections::HashMap;

use onnx_protobuf::tensor_shape_proto::dimension::Value as DimValue;
use onnx_protobuf::type_proto::Value as TypeValue;
use onnx_protobuf::{GraphProto, NodeProto, ValueInfoProto};
use smelt_ir::{AffineStorage, DType, Graph, OpDef, Tensor, TensorType, ValueId};

use super::attrs::{convert_attrs, parse_op};
use super::graph::{default_domain, hist_key, node_name, subgraphs, topo_order};
use super::nbits::is_matmul_nbits;
use super::qdq::QuantOrigin;
use super::tensor::packed_4bit;
use super::{ImportOptions, OnnxModel, TensorReader};
use crate::checked;
use crate::error::{Error, Result, UnsupportedOp};
use crate::limits::Limits;
use crate::safetensors::Weights;

/// Checks a safetensors file against the initializers of `g` and its
/// subgraphs, reporting every mismatch at once.
pub(super) fn check_weights(w: &Weights, g: &GraphProto, limits: &Limits) -> Result<()> {
    fn collect<'g>(
        g: &'g GraphProto,
        out: &mut HashMap<&'g str, Vec<&'g onnx_protobuf::TensorProto>>,
    ) {
        for t in &g.initializer {
            out.entry(t.name.as_str()).or_default().push(t);
        }
        for sg in g.node.iter().flat_map(subgraphs) {
            collect(sg, out);
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

/// The state of one import: the graph built so far and the budgets spent.
pub(super) struct Importer<'m> {
    pub(super) model: &'m OnnxModel,
    pub(super) opts: &'m ImportOptions,
    pub(super) reader: TensorReader<'m>,
    pub(super) graph: Graph,
    pub(super) weight_bytes: u64,
    /// Bytes of constants produced by folding, against the fold budget.
    pub(super) folded_bytes: u64,
    /// Multiply-accumulates spent folding, against the fold budget.
    pub(super) folded_macs: u64,
    /// Initializers by name from `ImportOptions::weights`, already checked
    /// against the declared types by [`check_weights`].
    pub(super) weights: Option<&'m Weights>,
    /// Folded `Cast<to=f32>` results of integer constants, by the integers
    /// (the `Cast` half of the weight-only `Mul(Cast(q), scale)`).
    pub(super) casts: HashMap<ValueId, ValueId>,
    /// Folded f32 constants that are dequantized integer weights (`qdq`).
    pub(super) quantized: HashMap<ValueId, QuantOrigin>,
    /// Encoded constants made for those weights, by (weight, transposed).
    pub(super) encoded: HashMap<(ValueId, bool), ValueId>,
    /// Constants the file stores as `INT4`/`UINT4` (the graph holds them
    /// one a byte), by their 4-bit storage: `qdq` packs them back.
    pub(super) packed4: HashMap<ValueId, AffineStorage>,
}

impl<'m> Importer<'m> {
    /// An importer for `model` into an empty graph.
    pub(super) fn new(
        model: &'m OnnxModel,
        opts: &'m ImportOptions,
        weights: Option<&'m Weights>,
    ) -> Importer<'m> {
        Importer {
            model,
            opts,
            reader: TensorReader::new(&model.dir, &opts.limits),
            graph: Graph::new(),
            weight_bytes: 0,
            folded_bytes: 0,
            folded_macs: 0,
            weights,
            casts: HashMap::new(),
            quantized: HashMap::new(),
            encoded: HashMap::new(),
            packed4: HashMap::new(),
        }
    }

    /// Adds initializer `name` as a constant (from `--weights` when it names it).
    pub(super) fn add_weight(
        &mut self,
        name: &str,
        t: &mut onnx_protobuf::TensorProto,
    ) -> Result<ValueId> {
        let (ty, bytes, packed) = match self.weights {
            Some(w) if w.get(name).is_some() => {
                let (ty, bytes) = w.typed_bytes(name)?;
                (ty, bytes, None)
            }
            _ => {
                let packed = packed_4bit(t.data_type);
                let (ty, bytes) = self.reader.read(name, t)?;
                (ty, bytes, packed)
            }
        };
        self.count_weight(bytes.as_slice().len())?;
        let id = self.graph.add_const_bytes(name, ty, bytes)?;
        self.note_packed(id, packed);
        Ok(id)
    }

    /// Remembers that constant `id` was stored 4-bit in the file.
    fn note_packed(&mut self, id: ValueId, packed: Option<AffineStorage>) {
        if let Some(s) = packed {
            self.packed4.insert(id, s);
        }
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

    pub(super) fn add_input(&mut self, vi: &ValueInfoProto) -> Result<ValueId> {
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

    pub(super) fn check_declared_output(&self, vi: &ValueInfoProto, id: ValueId) -> Result<()> {
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
    pub(super) fn import_nodes(
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
        if is_matmul_nbits(node) {
            return self.import_matmul_nbits(node, &name, scope);
        }
        if default_domain(&node.domain) && node.op_type == "Constant" {
            return self.import_constant(node, &name, scope);
        }
        if default_domain(&node.domain) && node.op_type == "If" {
            return self.import_if(node, &name, scope, depth);
        }
        let attrs = convert_attrs(node, Some(&mut self.reader))?;
        let op = match parse_op(node, opset, &attrs) {
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
            let ids = self.fold(&name, &op_label, op.clone(), &inputs, out_names)?;
            self.note_quantized(&op, &inputs, &ids);
            ids
        } else {
            let op = self.use_quantized(&name, op, &mut inputs)?;
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
            bind_output(scope, o.clone(), id, &name)?;
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
                let packed = packed_4bit(tp.data_type);
                let (ty, bytes) = self.reader.read(&out, &mut tp)?;
                self.count_weight(bytes.as_slice().len())?;
                let id = self.graph.add_const_bytes(out.clone(), ty, bytes)?;
                self.note_packed(id, packed);
                return bind_output(scope, out, id, name);
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
        bind_output(scope, out, id, name)
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
            bind_output(scope, out, id, name)?;
        }
        Ok(())
    }
}

/// Binds `out` to `id` in `scope`, refusing a name defined before.
fn bind_output(
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
