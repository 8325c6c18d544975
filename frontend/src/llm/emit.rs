//! A small helper that appends nodes to an [`ir::Graph`](smelt_ir::Graph)
//! by op type and attributes (through the op table's parser, so the graph
//! holds exactly what an ONNX importer would make), plus constants and the
//! checkpoint's weights, each added once.

use std::collections::HashMap;

use smelt_ir::ops::ParseCtx;
use smelt_ir::ops::weights::DOMAIN as WEIGHTS_DOMAIN;
use smelt_ir::{AttrValue, Attrs, DType, Graph, Op, Tensor, TensorType, ValueId};

use crate::checkpoint::{Checkpoint, Weight};
use crate::error::{Error, Result};

/// The opset the builder's ops are parsed at (`Attention` and
/// `RMSNormalization` are opset 23).
const OPSET: i64 = 23;

/// An attribute list, as `(name, value)` pairs.
pub type AttrList = Vec<(&'static str, AttrValue)>;

/// An integer attribute.
pub fn int(name: &'static str, v: i64) -> (&'static str, AttrValue) {
    (name, AttrValue::Int(v))
}

/// A float attribute.
pub fn float(name: &'static str, v: f32) -> (&'static str, AttrValue) {
    (name, AttrValue::Float(v))
}

/// The graph under construction.
pub struct Emitter<'c> {
    /// The graph.
    pub g: Graph,
    ckpt: &'c Checkpoint,
    weights: HashMap<String, ValueId>,
}

impl<'c> Emitter<'c> {
    /// An empty graph whose weights come from `ckpt`.
    pub fn new(ckpt: &'c Checkpoint) -> Emitter<'c> {
        Emitter {
            g: Graph::new(),
            ckpt,
            weights: HashMap::new(),
        }
    }

    /// Appends the node `op_type(inputs)` of the default domain with
    /// `attrs`; its one output is named after `name`.
    pub fn op(
        &mut self,
        op_type: &str,
        attrs: AttrList,
        inputs: &[ValueId],
        name: &str,
    ) -> Result<ValueId> {
        self.op_in("", op_type, attrs, inputs, name)
    }

    /// Like [`Emitter::op`] in `domain`.
    fn op_in(
        &mut self,
        domain: &str,
        op_type: &str,
        attrs: AttrList,
        inputs: &[ValueId],
        name: &str,
    ) -> Result<ValueId> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type,
            domain,
            opset: OPSET,
            attrs: &attrs,
            num_inputs: inputs.len(),
            num_outputs: 1,
        };
        let op: Op = Op::parse(&ctx)
            .ok_or_else(|| Error::Graph(format!("the op table has no {op_type}")))??;
        let out = self.g.fresh_name(name);
        let node = self.g.fresh_name(&format!("{name}.node"));
        let inputs = inputs.iter().map(|&v| Some(v)).collect();
        Ok(self.g.add_node(node, op, inputs, vec![out])?[0])
    }

    /// A constant tensor named after `name`.
    pub fn constant(&mut self, name: &str, t: &Tensor) -> Result<ValueId> {
        let name = self.g.fresh_name(name);
        Ok(self.g.add_const(name, t)?)
    }

    /// An `i64` constant of shape `shape`.
    pub fn i64s(&mut self, name: &str, shape: &[usize], v: Vec<i64>) -> Result<ValueId> {
        self.constant(name, &Tensor::from_vec(shape.to_vec(), v)?)
    }

    /// An `f32` constant of shape `shape`.
    pub fn f32s(&mut self, name: &str, shape: &[usize], v: Vec<f32>) -> Result<ValueId> {
        self.constant(name, &Tensor::from_vec(shape.to_vec(), v)?)
    }

    /// `Reshape(x, shape)`.
    pub fn reshape(&mut self, x: ValueId, shape: &[usize], name: &str) -> Result<ValueId> {
        let dims = shape.iter().map(|&d| d as i64).collect();
        let s = self.i64s(&format!("{name}.shape"), &[shape.len()], dims)?;
        self.op("Reshape", vec![], &[x, s], name)
    }

    /// `Transpose(x, perm)`.
    pub fn transpose(&mut self, x: ValueId, perm: &[i64], name: &str) -> Result<ValueId> {
        self.op(
            "Transpose",
            vec![("perm", AttrValue::Ints(perm.to_vec()))],
            &[x],
            name,
        )
    }

    /// The type of value `v`.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.g.value(v).ty
    }

    /// The checkpoint weight `name`.
    fn weight(&self, name: &str) -> Result<&'c Weight> {
        self.ckpt.tensors.get(name).ok_or_else(|| Error::Tensor {
            name: name.to_string(),
            msg: "missing from the checkpoint".into(),
        })
    }

    /// The weight `name` as a constant in its stored type and bytes (a
    /// window of the file, never copied), added once.
    pub fn stored(&mut self, name: &str) -> Result<ValueId> {
        if let Some(&v) = self.weights.get(name) {
            return Ok(v);
        }
        let w = self.weight(name)?;
        let v = self
            .g
            .add_const_bytes(name, w.ty.clone(), w.bytes.clone())?;
        self.weights.insert(name.to_string(), v);
        Ok(v)
    }

    /// The weight `name` as a dense f32 constant: the stored one when it is
    /// f32 already, else decoded at build time (for the small vectors:
    /// norms and biases).
    pub fn dense_f32(&mut self, name: &str) -> Result<ValueId> {
        let w = self.weight(name)?;
        if w.ty.is_dense() && w.ty.dtype == DType::F32 {
            return self.stored(name);
        }
        let t = if w.ty.is_dense() {
            Tensor::from_typed_bytes(&w.ty, &w.bytes)?.cast(DType::F32)
        } else {
            smelt_ir::encoding::dequantize(&w.ty, &w.bytes)?
        };
        let key = format!("{name}.f32");
        if let Some(&v) = self.weights.get(&key) {
            return Ok(v);
        }
        let v = self.constant(&key, &t)?;
        self.weights.insert(key, v);
        Ok(v)
    }

    /// `x · wᵀ (+ bias)` for `x` f32 `[T, in]` and the weight `w` `[out,
    /// in]` as stored: `Gemm` with `transB` for a dense f32 weight,
    /// `EncodedMatMul` (decoding as it goes) for a half or block-encoded one.
    pub fn linear(
        &mut self,
        x: ValueId,
        w: &str,
        bias: Option<&str>,
        name: &str,
    ) -> Result<ValueId> {
        let wv = self.stored(w)?;
        let b = bias.map(|b| self.dense_f32(b)).transpose()?;
        let mut ins = vec![x, wv];
        ins.extend(b);
        let wt = self.ty(wv);
        if wt.is_dense() && wt.dtype == DType::F32 {
            self.op("Gemm", vec![int("transB", 1)], &ins, name)
        } else {
            self.op_in(WEIGHTS_DOMAIN, "EncodedMatMul", vec![], &ins, name)
        }
    }

    /// The rows `ids` (i64 `[T]`) of the embedding `w` `[vocab, hidden]` as
    /// f32 `[T, hidden]`: a `Gather` of the stored rows, then a `Cast` for a
    /// half table; of a block-encoded table, `EncodedGather`, which decodes
    /// only the rows it reads.
    pub fn embed(&mut self, w: &str, ids: ValueId, name: &str) -> Result<ValueId> {
        let wv = self.stored(w)?;
        let ty = self.ty(wv).clone();
        if ty.is_dense() {
            let rows = self.op("Gather", vec![int("axis", 0)], &[wv, ids], name)?;
            if ty.dtype == DType::F32 {
                return Ok(rows);
            }
            return self.op("Cast", vec![int("to", 1)], &[rows], name);
        }
        self.op_in(WEIGHTS_DOMAIN, "EncodedGather", vec![], &[wv, ids], name)
    }
}
