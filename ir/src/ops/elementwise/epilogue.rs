//! [`Epilogue`]: an activation a fused convolution or matrix product applies
//! as it stores its result, defined by the element-wise op it stands for.

use super::{Elementwise, UnaryFn};
use crate::error::{Error, Result};
use crate::ops::OpDef;
use crate::tensor::Tensor;

/// An activation applied to the result of a convolution or matrix product
/// as it is stored (an *epilogue*, see [`crate::ops::fused`]). Its meaning is
/// the element-wise op it stands for, evaluated by that op's code: there is
/// one definition of each activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// A unary activation (`Relu`, `Sigmoid`, `HardSwish`, `Gelu`, `Swish`, …).
    Unary(UnaryFn),
    /// `Clip` with constant bounds (`Relu6` is `Clip(0, 6)`).
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl Epilogue {
    /// The element-wise op the epilogue applies.
    pub fn as_op(self) -> Elementwise {
        match self {
            Epilogue::Unary(f) => Elementwise::Unary(f),
            Epilogue::Clip { min, max } => Elementwise::Clip {
                min: Some(min),
                max: Some(max),
            },
        }
    }

    /// The activations a fused op may carry (the backends apply each of
    /// them in a GEMM store): Relu, Clip, Sigmoid, Tanh, HardSwish, Gelu and
    /// Swish (SiLU).
    pub fn is_supported(self) -> bool {
        match self {
            Epilogue::Clip { .. } => true,
            Epilogue::Unary(f) => matches!(
                f,
                UnaryFn::Relu
                    | UnaryFn::Sigmoid
                    | UnaryFn::Tanh
                    | UnaryFn::HardSwish
                    | UnaryFn::Gelu { .. }
                    | UnaryFn::Swish { .. }
            ),
        }
    }

    /// Applies the epilogue to `x`, exactly as the separate op would.
    pub fn eval(self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.as_op().eval(&[Some(x)])?;
        out.pop()
            .ok_or_else(|| Error::Eval("activation produced no result".into()))
    }

    /// The printed form: the op's name and attributes, `Clip(min=0,max=6)`.
    pub fn text(self) -> String {
        let attrs = match self {
            Epilogue::Unary(f) => f.attrs(),
            Epilogue::Clip { min, max } => vec![("min", min.to_string()), ("max", max.to_string())],
        };
        let name = self.as_op().name();
        if attrs.is_empty() {
            return name.to_string();
        }
        let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}({})", a.join(","))
    }
}
