//! Epilogues: the residual `Add` and activation a fused op applies to each
//! result before it is stored, in the kernel's store or as passes over the
//! output.

use smelt_ir::ops::elementwise::{BinaryFn, Elementwise, Epilogue};

use super::super::{NodeResult, Operand};
use super::binary::clip;
use super::lower;
use super::unary::unary_float;
use crate::kernel::build::{bin, f};
use crate::kernel::{BinOp, Buf, Expr, Program, Scalar, Stmt};
use crate::mathexp;

/// The scalar formula of an activation epilogue applied to `x` (a variable
/// or constant of float type `ty`): the same formula as the separate op.
pub fn epilogue_expr(
    act: Epilogue,
    x: Expr,
    ty: Scalar,
    p: &mut Program,
    pre: &mut Vec<Stmt>,
) -> Result<Expr, String> {
    if !ty.is_float() {
        return Err(format!("activation {} on {ty:?}", act.text()));
    }
    match act {
        Epilogue::Unary(u) => unary_float(u, x, ty, p, pre),
        Epilogue::Clip { min, max } => Ok(clip(
            x,
            Some(f(min as f64, ty)),
            Some(f(max as f64, ty)),
            p,
            pre,
        )),
    }
}

/// What a fused op applies to its base's result as the result is stored:
/// a residual operand added (exactly the result's type and layout, so it is
/// read at the index of the element stored), then an activation. The
/// kernels that can apply it in their store take it; the others leave it to
/// [`Epi::passes`].
#[derive(Clone, Debug, Default)]
pub struct Epi {
    /// Added to each result before the activation.
    pub residual: Option<Operand>,
    /// Applied last.
    pub act: Option<Epilogue>,
}

impl Epi {
    /// Neither a residual nor an activation.
    pub fn is_empty(&self) -> bool {
        self.residual.is_none() && self.act.is_none()
    }

    /// The form the GEMM micro-kernel's store takes (the residual's buffer,
    /// the activation) when it can apply this epilogue to the f32 result
    /// `out`: an f32 residual of `out`'s shape, a supported activation.
    pub fn for_gemm(&self, out: &Operand) -> Option<(Option<Buf>, Option<Epilogue>)> {
        if self.act.is_some_and(|a| !a.is_supported()) || out.ty != Scalar::F32 {
            return None;
        }
        match &self.residual {
            Some(r) if r.ty != Scalar::F32 || r.shape != out.shape => None,
            r => Some((r.as_ref().map(|r| r.buf), self.act)),
        }
    }

    /// `value` (the result at flat index `idx` of a result of type `ty`)
    /// with the epilogue applied: `act(value + residual[idx])`. The value is
    /// bound to a variable first, so formulas that use it twice do not
    /// duplicate its expression.
    pub fn apply(
        &self,
        p: &mut Program,
        value: Expr,
        ty: Scalar,
        idx: Expr,
        pre: &mut Vec<Stmt>,
    ) -> Result<Expr, String> {
        let mut v = value;
        if let Some(r) = &self.residual {
            if r.ty != ty {
                return Err(format!("a {:?} residual added to a {ty:?} result", r.ty));
            }
            v = bin(BinOp::Add, v, r.load(idx));
        }
        match self.act {
            Some(act) => {
                let x = mathexp::bind(p, v, pre);
                epilogue_expr(act, x, ty, p, pre)
            }
            None => Ok(v),
        }
    }

    /// The epilogue as passes over `out` in place (after a kernel that did
    /// not apply it): the element-wise `Add` of the residual, then the
    /// activation, each the element-wise op's own lowering.
    pub fn passes(&self, out: &Operand, p: &mut Program) -> NodeResult {
        let mut stmts = Vec::new();
        if let Some(r) = &self.residual {
            stmts.extend(lower(
                &Elementwise::Binary(BinaryFn::Add),
                &[Some(out.clone()), Some(r.clone())],
                std::slice::from_ref(out),
                p,
            )?);
        }
        if let Some(act) = self.act {
            stmts.extend(epilogue_pass(act, out, p)?);
        }
        Ok(stmts)
    }
}

/// An activation applied in place to `out` (the result of a product or a
/// convolution lowered without an epilogue): the element-wise op's own
/// lowering, reading and writing the same element.
pub fn epilogue_pass(act: Epilogue, out: &Operand, p: &mut Program) -> NodeResult {
    lower(
        &act.as_op(),
        &[Some(out.clone())],
        std::slice::from_ref(out),
        p,
    )
}
