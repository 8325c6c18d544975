//! Fused ops: a convolution or matrix product with an activation applied to
//! its result as it is stored (an *epilogue*): `FusedConv`, `FusedGemm`,
//! `FusedMatMul`.
//!
//! Only the optimizer makes them (`passes/src/rules/fusion.rs`); no ONNX
//! model spells them. A fused op has its own name, so the rules that match
//! `Conv`, `Gemm` or `MatMul` by name (BatchNormalization folding,
//! `MatMul + Add → Gemm`, transpose sinking) never see one: folding those
//! into a product whose result is already activated would be unsound.
//!
//! The meaning is defined by composition and nothing else: the base op's
//! evaluation followed by the activation's (an [`Epilogue`], which is
//! evaluated by the element-wise op it stands for).

use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::conv::ConvOp;
use crate::ops::elementwise::Epilogue;
use crate::ops::linalg::Linalg;
use crate::ops::{InferInput, Op, OpDef, ParseCtx};
use crate::tensor::Tensor;

/// `act(base(inputs…))` for a `Conv`, `Gemm` or `MatMul` base.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    base: Box<Op>,
    act: Epilogue,
}

impl Fused {
    /// The ONNX op types of the default domain this family implements (none).
    pub const ONNX_OPS: &'static [&'static str] = &[];

    /// No ONNX node parses to a fused op.
    pub fn parse(_ctx: &ParseCtx<'_>) -> Option<Result<Fused>> {
        None
    }

    /// `act` applied to `base`'s result; `None` unless `base` is a `Conv`,
    /// `Gemm` or `MatMul` and `act` is one of [`Epilogue::is_supported`] (the
    /// ops and activations the backends have an epilogue for).
    pub fn new(base: Op, act: Epilogue) -> Option<Fused> {
        if !act.is_supported() {
            return None;
        }
        match &base {
            Op::Conv(ConvOp::Conv { .. }) | Op::Linalg(Linalg::Gemm(_) | Linalg::MatMul) => {
                Some(Fused {
                    base: Box::new(base),
                    act,
                })
            }
            _ => None,
        }
    }

    /// The product or convolution.
    pub fn base(&self) -> &Op {
        &self.base
    }

    /// The activation applied to its result.
    pub fn act(&self) -> Epilogue {
        self.act
    }
}

impl OpDef for Fused {
    fn name(&self) -> &'static str {
        match &*self.base {
            Op::Conv(_) => "FusedConv",
            Op::Linalg(Linalg::Gemm(_)) => "FusedGemm",
            _ => "FusedMatMul",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut a = self.base.attrs();
        a.push(("activation", self.act.text()));
        a
    }

    fn const_operands(&self) -> Vec<usize> {
        self.base.const_operands()
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let out = self.base.infer(inputs)?;
        if let Some(t) = out.iter().find(|t| !t.dtype.is_float()) {
            return Err(Error::Type(format!(
                "{} applies {} to a {} result; activations take floats",
                self.name(),
                self.act.text(),
                t.dtype
            )));
        }
        Ok(out)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        self.base
            .eval(inputs)?
            .iter()
            .map(|y| self.act.eval(y))
            .collect()
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        // The product's work plus one operation per output element.
        let act: u64 = outputs.iter().map(|t| t.numel().unwrap_or(0) as u64).sum();
        self.base.macs(inputs, outputs) + act
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::elementwise::UnaryFn;
    use crate::ops::linalg::GemmAttrs;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn fused_matmul_is_the_composition() {
        let a = t(&[2, 2], &[1.0, -2.0, 3.0, 4.0]);
        let b = t(&[2, 2], &[1.0, 0.5, -1.0, 2.0]);
        for act in [
            Epilogue::Unary(UnaryFn::Relu),
            Epilogue::Unary(UnaryFn::Sigmoid),
            Epilogue::Unary(UnaryFn::HardSwish),
            Epilogue::Unary(UnaryFn::Gelu { tanh: false }),
            Epilogue::Unary(UnaryFn::Swish { alpha: 1.0 }),
            Epilogue::Clip { min: 0.0, max: 6.0 },
        ] {
            let f = Fused::new(Op::Linalg(Linalg::MatMul), act).unwrap();
            let got = f.eval(&[Some(&a), Some(&b)]).unwrap();
            let y = Op::Linalg(Linalg::MatMul)
                .eval(&[Some(&a), Some(&b)])
                .unwrap();
            let want = act.as_op().eval(&[Some(&y[0])]).unwrap();
            assert_eq!(got, want, "{}", act.text());
        }
    }

    #[test]
    fn names_attributes_and_bases() {
        let g = GemmAttrs {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
            c_required: false,
            c_exact: false,
        };
        let f = Fused::new(
            Op::Linalg(Linalg::Gemm(g)),
            Epilogue::Clip { min: 0.0, max: 6.0 },
        )
        .unwrap();
        assert_eq!(f.name(), "FusedGemm");
        assert!(
            f.attrs()
                .contains(&("activation", "Clip(min=0,max=6)".to_string()))
        );
        assert!(Fused::new(Op::Linalg(Linalg::Det), Epilogue::Unary(UnaryFn::Relu)).is_none());
    }
}
