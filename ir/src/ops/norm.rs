//! Normalizations and the softmax family (BatchNormalization, LayerNormalization, Softmax, …).

use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx};
use crate::tensor::Tensor;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Norm {}

impl Norm {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[];

    /// Parses a node of this family.
    pub fn parse(_ctx: &ParseCtx<'_>) -> Option<Result<Norm>> {
        None
    }
}

impl OpDef for Norm {
    fn name(&self) -> &'static str {
        match *self {}
    }
    fn attrs(&self) -> Vec<(&'static str, String)> {
        match *self {}
    }
    fn const_operands(&self) -> Vec<usize> {
        match *self {}
    }
    fn infer(&self, _inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        match *self {}
    }
    fn eval(&self, _inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match *self {}
    }
    fn macs(&self, _inputs: &[Option<&TensorType>], _outputs: &[TensorType]) -> u64 {
        match *self {}
    }
}
