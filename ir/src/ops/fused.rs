//! Fused ops: a convolution or matrix product with a residual tensor added
//! to its result and/or an activation applied to it as it is stored (an
//! *epilogue*): `FusedConv`, `FusedGemm`, `FusedMatMul`; and the same
//! epilogue after an element-wise op, `FusedElementwise` (a chain such as
//! `Relu(a + b)`, `a * b + c`, `(x + b) + r` run as one loop).
//!
//! Only the optimizer makes them (`passes/src/rules/fusion.rs`); no ONNX
//! model spells them. A fused op has its own name, so the rules that match
//! `Conv`, `Gemm` or `MatMul` by name (BatchNormalization folding,
//! `MatMul + Add → Gemm`, transpose sinking) never see one: folding those
//! into a product whose result is already activated would be unsound.
//!
//! The meaning is defined by composition and nothing else: the base op's
//! evaluation, then (with a residual) the element-wise `Add` of the last
//! input, which must have exactly the result's type (no broadcasting), then
//! the activation (an [`Epilogue`], evaluated by the element-wise op it
//! stands for): `act(base(inputs[..n-1]) + inputs[n-1])`.

use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::conv::ConvOp;
use crate::ops::elementwise::{BinaryFn, Elementwise, Epilogue};
use crate::ops::linalg::Linalg;
use crate::ops::{InferInput, Op, OpDef, ParseCtx};
use crate::tensor::Tensor;

/// `act(base(inputs…) + residual)` for a `Conv`, `Gemm`, `MatMul` or
/// element-wise ([`Fused::chain_head`]) base, where the residual and the
/// activation are each optional (at least one is present).
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    base: Box<Op>,
    residual: bool,
    act: Option<Epilogue>,
}

impl Fused {
    /// The ONNX op types of the default domain this family implements (none).
    pub const ONNX_OPS: &'static [&'static str] = &[];

    /// No ONNX node parses to a fused op.
    pub fn parse(_ctx: &ParseCtx<'_>) -> Option<Result<Fused>> {
        None
    }

    /// `act` applied to `base`'s result; `None` unless `base` is a `Conv`,
    /// `Gemm`, `MatMul` or [`Fused::chain_head`] and `act` is one of
    /// [`Epilogue::is_supported`] (the ops and activations the backends have
    /// an epilogue for).
    pub fn new(base: Op, act: Epilogue) -> Option<Fused> {
        Fused::with(base, false, Some(act))
    }

    /// `act(base(…) + residual)` (the residual the last input when
    /// `residual`); `None` for an unsupported base or activation, or when
    /// there is neither a residual nor an activation.
    pub fn with(base: Op, residual: bool, act: Option<Epilogue>) -> Option<Fused> {
        if act.is_some_and(|a| !a.is_supported()) || (!residual && act.is_none()) {
            return None;
        }
        let ok = match &base {
            Op::Conv(ConvOp::Conv { .. }) | Op::Linalg(Linalg::Gemm(_) | Linalg::MatMul) => true,
            Op::Elementwise(e) => Fused::chain_head(e),
            _ => false,
        };
        ok.then(|| Fused {
            base: Box::new(base),
            residual,
            act,
        })
    }

    /// The element-wise ops that may head a fused chain `act(e(…) + r)`:
    /// float arithmetic and the activations (no comparisons, casts or
    /// integer-only ops; the result must be a float for the epilogue).
    pub fn chain_head(e: &Elementwise) -> bool {
        match e {
            Elementwise::Binary(b) => matches!(
                b,
                BinaryFn::Add | BinaryFn::Sub | BinaryFn::Mul | BinaryFn::Div
            ),
            Elementwise::Unary(u) => Epilogue::Unary(*u).is_supported(),
            _ => false,
        }
    }

    /// The product or convolution.
    pub fn base(&self) -> &Op {
        &self.base
    }

    /// Whether the last input is added to the base's result.
    pub fn residual(&self) -> bool {
        self.residual
    }

    /// The activation applied to its result (after the residual), if any.
    pub fn act(&self) -> Option<Epilogue> {
        self.act
    }

    /// The base's inputs: all but the residual.
    fn base_inputs<'a, T>(&self, inputs: &'a [T]) -> &'a [T] {
        match (self.residual, inputs.split_last()) {
            (true, Some((_, rest))) => rest,
            _ => inputs,
        }
    }
}

impl OpDef for Fused {
    fn name(&self) -> &'static str {
        match &*self.base {
            Op::Conv(_) => "FusedConv",
            Op::Linalg(Linalg::Gemm(_)) => "FusedGemm",
            Op::Elementwise(_) => "FusedElementwise",
            _ => "FusedMatMul",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut a = self.base.attrs();
        if let Op::Elementwise(_) = &*self.base {
            a.insert(0, ("op", self.base.name().to_string()));
        }
        if self.residual {
            a.push(("residual", "Add".to_string()));
        }
        if let Some(act) = self.act {
            a.push(("activation", act.text()));
        }
        a
    }

    fn const_operands(&self) -> Vec<usize> {
        self.base.const_operands()
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let out = self.base.infer(self.base_inputs(inputs))?;
        if let Some(t) = out.iter().find(|t| !t.dtype.is_float()) {
            return Err(Error::Type(format!(
                "{} applies an epilogue to a {} result; epilogues take floats",
                self.name(),
                t.dtype
            )));
        }
        if self.residual {
            let r = crate::ops::req(inputs, inputs.len().saturating_sub(1), "residual")?;
            if out.len() != 1 || *r.ty != out[0] {
                return Err(Error::Type(format!(
                    "{} adds a residual of type {} to a result of type {}; they must be equal",
                    self.name(),
                    r.ty,
                    out[0]
                )));
            }
        }
        Ok(out)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let mut ys = self.base.eval(self.base_inputs(inputs))?;
        if self.residual {
            let r = crate::ops::req(inputs, inputs.len().saturating_sub(1), "residual")?;
            let add = Elementwise::Binary(BinaryFn::Add);
            ys = ys
                .iter()
                .map(|y| {
                    add.eval(&[Some(y), Some(r)])?
                        .pop()
                        .ok_or_else(|| Error::Eval("Add produced no result".into()))
                })
                .collect::<Result<_>>()?;
        }
        match self.act {
            Some(act) => ys.iter().map(|y| act.eval(y)).collect(),
            None => Ok(ys),
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        // The product's work plus one operation per output element for the
        // residual and one for the activation.
        let per: u64 = outputs.iter().map(|t| t.numel().unwrap_or(0) as u64).sum();
        let steps = self.residual as u64 + self.act.is_some() as u64;
        self.base.macs(self.base_inputs(inputs), outputs) + per * steps
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
    fn residual_is_added_before_the_activation() {
        let a = t(&[2, 2], &[1.0, -2.0, 3.0, 4.0]);
        let b = t(&[2, 2], &[1.0, 0.5, -1.0, 2.0]);
        let r = t(&[2, 2], &[-9.0, 0.25, 2.0, -1.5]);
        let mm = Op::Linalg(Linalg::MatMul);
        let y = mm.eval(&[Some(&a), Some(&b)]).unwrap();
        let sum = Elementwise::Binary(BinaryFn::Add)
            .eval(&[Some(&y[0]), Some(&r)])
            .unwrap();
        let plain = Fused::with(mm.clone(), true, None).unwrap();
        assert_eq!(plain.eval(&[Some(&a), Some(&b), Some(&r)]).unwrap(), sum);
        let relu = Epilogue::Unary(UnaryFn::Relu);
        let f = Fused::with(mm.clone(), true, Some(relu)).unwrap();
        let want = relu.as_op().eval(&[Some(&sum[0])]).unwrap();
        assert_eq!(f.eval(&[Some(&a), Some(&b), Some(&r)]).unwrap(), want);
        assert!(f.attrs().contains(&("residual", "Add".to_string())));
        // Neither a residual nor an activation: not a fused op.
        assert!(Fused::with(mm.clone(), false, None).is_none());
        // A residual that would broadcast is a type error, not a silent
        // broadcast.
        let ta = TensorType::new(crate::DType::F32, vec![2, 2]);
        let tr = TensorType::new(crate::DType::F32, vec![2]);
        let inp = |ty| Some(InferInput { ty, value: None });
        assert!(plain.infer(&[inp(&ta), inp(&ta), inp(&tr)]).is_err());
        assert_eq!(
            plain.infer(&[inp(&ta), inp(&ta), inp(&ta)]).unwrap(),
            vec![ta.clone()]
        );
    }

    #[test]
    fn names_attributes_and_bases() {
        let g = GemmAttrs::new().with_trans(false, true);
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
