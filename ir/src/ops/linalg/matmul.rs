//! `MatMul` (NumPy `matmul` semantics, broadcast batches) and `Gemm`
//! (`alpha * A' * B' + beta * C`), both on the shared kernel.

use super::kernel::{Acc, NumKernel, eval_numeric, matmul_acc, transposed_if};
use super::{Linalg, numeric_dtype, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::shape::{Shape, broadcast_index_map, broadcast_shapes, numel};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// The attributes of `Gemm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmAttrs {
    /// Multiplier of `A' * B'`.
    pub alpha: f32,
    /// Multiplier of `C`.
    pub beta: f32,
    /// Transpose `A` first.
    pub trans_a: bool,
    /// Transpose `B` first.
    pub trans_b: bool,
    /// Opsets before 11 require `C`.
    pub c_required: bool,
    /// Opsets before 7 with `broadcast = 0`: `C` must have the output's shape.
    pub c_exact: bool,
}

/// Parses a `MatMul` node.
pub(super) fn parse_matmul(_ctx: &ParseCtx<'_>) -> Result<Linalg> {
    Ok(Linalg::MatMul)
}

/// Parses a `Gemm` node.
pub(super) fn parse_gemm(ctx: &ParseCtx<'_>) -> Result<Linalg> {
    let a = ctx.attrs;
    Ok(Linalg::Gemm(GemmAttrs {
        alpha: a.float("alpha", 1.0)?,
        beta: a.float("beta", 1.0)?,
        trans_a: a.int("transA", 0)? != 0,
        trans_b: a.int("transB", 0)? != 0,
        c_required: ctx.opset < 11,
        c_exact: ctx.opset < 7 && a.int("broadcast", 0)? == 0,
    }))
}

/// The shapes of a batched matrix product with NumPy `matmul` semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    /// Rows of each product.
    pub m: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Columns of each product.
    pub n: usize,
    /// `A`'s batch dims, left-padded with 1 to the rank of `batch`.
    pub a_batch: Shape,
    /// `B`'s batch dims, left-padded with 1 to the rank of `batch`.
    pub b_batch: Shape,
    /// The broadcast batch dims.
    pub batch: Shape,
    /// The result's shape (1-D operands drop their promoted dimension).
    pub out: Shape,
}

impl MatmulDims {
    /// Resolves `matmul(a, b)` for operand shapes `a` and `b`.
    pub fn new(a: &[usize], b: &[usize]) -> Result<MatmulDims> {
        if a.is_empty() || b.is_empty() {
            shape_err!("matmul operands must have rank 1 or more, got {a:?} and {b:?}");
        }
        let a2: Shape = if a.len() == 1 {
            vec![1, a[0]]
        } else {
            a.to_vec()
        };
        let b2: Shape = if b.len() == 1 {
            vec![b[0], 1]
        } else {
            b.to_vec()
        };
        let (ra, rb) = (a2.len(), b2.len());
        let (m, k, kb, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
        if k != kb {
            shape_err!("matmul of {a:?} and {b:?}: inner dimensions {k} and {kb} differ");
        }
        let batch = broadcast_shapes(&[&a2[..ra - 2], &b2[..rb - 2]])?;
        let pad = |s: &[usize]| -> Shape {
            let mut v = vec![1; batch.len() - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (a_batch, b_batch) = (pad(&a2[..ra - 2]), pad(&b2[..rb - 2]));
        let mut out = batch.clone();
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        numel(&batch)?
            .checked_mul(m)
            .and_then(|x| x.checked_mul(n))
            .ok_or_else(|| Error::Overflow(format!("matmul of {a:?} and {b:?}")))?;
        Ok(MatmulDims {
            m,
            k,
            n,
            a_batch,
            b_batch,
            batch,
            out,
        })
    }

    /// Multiply-accumulates of the product.
    pub fn macs(&self) -> u64 {
        let nb: u64 = self.batch.iter().map(|&d| d as u64).product();
        nb.saturating_mul(self.m as u64)
            .saturating_mul(self.k as u64)
            .saturating_mul(self.n as u64)
    }
}

/// The batched product of `a` and `b` (shapes as resolved in `d`), in the
/// accumulation type. The slices must hold the element counts of their shapes.
pub fn batched_matmul<A: Acc>(a: &[A], b: &[A], d: &MatmulDims) -> Vec<A> {
    let (m, k, n) = (d.m, d.k, d.n);
    let nb: usize = d.batch.iter().product();
    let mut out = vec![A::ZERO; nb * m * n];
    if out.is_empty() {
        return out;
    }
    let b_shared = d.b_batch.iter().all(|&x| x == 1);
    if b_shared && d.a_batch == d.batch {
        // B is the same matrix for every batch and A is not broadcast: the
        // batches are just more rows (a linear layer over a sequence).
        matmul_acc(nb * m, k, n, a, b, &mut out);
        return out;
    }
    let ia = broadcast_index_map(&d.a_batch, &d.batch);
    let ib = broadcast_index_map(&d.b_batch, &d.batch);
    for (bi, (&ja, &jb)) in ia.iter().zip(&ib).enumerate() {
        matmul_acc(
            m,
            k,
            n,
            &a[ja * m * k..(ja + 1) * m * k],
            &b[jb * k * n..(jb + 1) * k * n],
            &mut out[bi * m * n..(bi + 1) * m * n],
        );
    }
    out
}

struct MatMulKernel<'a>(&'a MatmulDims);

impl NumKernel for MatMulKernel<'_> {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        Ok(batched_matmul(ins[0], ins[1], self.0))
    }
}

/// `A' * B'` of a `Gemm`, before `alpha`, `beta` and `C`.
struct GemmKernel {
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
}

impl NumKernel for GemmKernel {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        let (m, k, n) = (self.m, self.k, self.n);
        let a = transposed_if(self.trans_a, ins[0], k, m);
        let b = transposed_if(self.trans_b, ins[1], n, k);
        let mut c = vec![A::ZERO; m * n];
        matmul_acc(m, k, n, &a, &b, &mut c);
        Ok(c)
    }
}

/// The shape rule of `MatMul`.
pub(super) fn infer_matmul(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 2)?;
    let (a, b) = (ty(inputs, 0, "A")?, ty(inputs, 1, "B")?);
    numeric_dtype(a.dtype, "MatMul")?;
    if a.dtype != b.dtype {
        type_err!("A is {} but B is {}", a.dtype, b.dtype);
    }
    Ok(vec![TensorType::new(
        a.dtype,
        MatmulDims::new(&a.shape, &b.shape)?.out,
    )])
}

/// Evaluates `MatMul`.
pub(super) fn eval_matmul(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (req(inputs, 0, "A")?, req(inputs, 1, "B")?);
    let d = MatmulDims::new(a.shape(), b.shape())?;
    Ok(vec![eval_numeric(
        &MatMulKernel(&d),
        &[a, b],
        d.out.clone(),
    )?])
}

/// The multiply-adds of `MatMul`.
pub(super) fn macs_matmul(inputs: &[Option<&TensorType>]) -> u64 {
    match (opt(inputs, 0), opt(inputs, 1)) {
        (Some(a), Some(b)) => MatmulDims::new(&a.shape, &b.shape)
            .map(|d| d.macs())
            .unwrap_or(0),
        _ => 0,
    }
}

impl Default for GemmAttrs {
    fn default() -> GemmAttrs {
        GemmAttrs::new()
    }
}

impl GemmAttrs {
    /// `A · B + C` with today's semantics (opset 11+: `C` optional and
    /// broadcast): alpha and beta 1, no transposes. The `with_*` methods set
    /// the rest.
    pub fn new() -> GemmAttrs {
        GemmAttrs {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
            c_required: false,
            c_exact: false,
        }
    }

    /// Sets `alpha` and `beta`.
    pub fn with_scales(self, alpha: f32, beta: f32) -> GemmAttrs {
        GemmAttrs {
            alpha,
            beta,
            ..self
        }
    }

    /// Sets `transA` and `transB`.
    pub fn with_trans(self, trans_a: bool, trans_b: bool) -> GemmAttrs {
        GemmAttrs {
            trans_a,
            trans_b,
            ..self
        }
    }

    /// `(m, k, n)` for operand shapes `a` and `b`.
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
        if a.len() != 2 || b.len() != 2 {
            shape_err!("Gemm operands must be 2-D, got {a:?} and {b:?}");
        }
        let (m, k) = if self.trans_a {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (kb, n) = if self.trans_b {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        if k != kb {
            shape_err!(
                "Gemm of {a:?} and {b:?} (transA={}, transB={}): inner dimensions {k} and {kb} differ",
                self.trans_a as u8,
                self.trans_b as u8
            );
        }
        numel(&[m, n])?;
        Ok((m, k, n))
    }

    fn check_c(&self, c: Option<&[usize]>, m: usize, n: usize) -> Result<()> {
        match c {
            None if self.c_required => shape_err!("C is required before opset 11"),
            None => Ok(()),
            Some(c) => {
                let out = [m, n];
                let ok = if self.c_exact {
                    c == out
                } else {
                    c.len() <= 2
                        && broadcast_shapes(&[c, &out])
                            .map(|s| s == out)
                            .unwrap_or(false)
                };
                if !ok {
                    shape_err!("C of shape {c:?} does not broadcast to the output [{m}, {n}]");
                }
                Ok(())
            }
        }
    }
}

fn gemm(g: &GemmAttrs, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
    let (m, k, n) = g.dims(a.shape(), b.shape())?;
    g.check_c(c.map(|c| c.shape()), m, n)?;
    let kern = GemmKernel {
        m,
        k,
        n,
        trans_a: g.trans_a,
        trans_b: g.trans_b,
    };
    let ab = eval_numeric(&kern, &[a, b], vec![m, n])?;
    let (alpha, beta) = (g.alpha as f64, g.beta as f64);
    let c = match c {
        Some(c) if beta != 0.0 => {
            if c.dtype() != a.dtype() {
                type_err!("C is {} but A is {}", c.dtype(), a.dtype());
            }
            Some(c)
        }
        // `beta = 0` ignores C entirely (even its NaNs), like the reference.
        _ => None,
    };
    if alpha == 1.0 && c.is_none() {
        return Ok(ab);
    }
    let cmap = c.map(|c| broadcast_index_map(c.shape(), &[m, n]));
    let cv = c.map(|c| c.to_f64_vec());
    let abv = ab.to_f64_vec();
    let y: Vec<f64> = abv
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut y = alpha * x;
            if let (Some(map), Some(cv)) = (&cmap, &cv) {
                y += beta * cv[map[i]];
            }
            y
        })
        .collect();
    Ok(Tensor::from_vec(vec![m, n], y)?.cast(a.dtype()))
}

/// The shape rule of `Gemm`.
pub(super) fn infer_gemm(
    g: &GemmAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 2, 3)?;
    let (a, b) = (ty(inputs, 0, "A")?, ty(inputs, 1, "B")?);
    numeric_dtype(a.dtype, "Gemm")?;
    if a.dtype != b.dtype {
        type_err!("A is {} but B is {}", a.dtype, b.dtype);
    }
    let (m, _, n) = g.dims(&a.shape, &b.shape)?;
    let c = opt(inputs, 2).map(|c| c.ty);
    if let Some(c) = c
        && c.dtype != a.dtype
    {
        type_err!("C is {} but A is {}", c.dtype, a.dtype);
    }
    g.check_c(c.map(|c| c.shape.as_slice()), m, n)?;
    Ok(vec![TensorType::new(a.dtype, vec![m, n])])
}

/// Evaluates `Gemm`.
pub(super) fn eval_gemm(g: &GemmAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    Ok(vec![gemm(
        g,
        req(inputs, 0, "A")?,
        req(inputs, 1, "B")?,
        opt(inputs, 2),
    )?])
}

/// The multiply-adds of `Gemm`.
pub(super) fn macs_gemm(g: &GemmAttrs, inputs: &[Option<&TensorType>]) -> u64 {
    match (opt(inputs, 0), opt(inputs, 1)) {
        (Some(a), Some(b)) => g
            .dims(&a.shape, &b.shape)
            .map(|(m, k, n)| (m as u64).saturating_mul(k as u64).saturating_mul(n as u64))
            .unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;
    use crate::dtype::DType;
    use crate::graph::TensorType;
    use crate::ops::linalg::test_util::*;
    use crate::ops::{InferInput, OpDef};
    #[test]
    fn matmul_2d_and_vectors() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = t(&[3, 2], &[7., 8., 9., 10., 11., 12.]);
        assert_eq!(
            run(&Linalg::MatMul, &[&a, &b])[0],
            t(&[2, 2], &[58., 64., 139., 154.])
        );
        let v = t(&[3], &[1., 0., -1.]);
        assert_eq!(run(&Linalg::MatMul, &[&a, &v])[0], t(&[2], &[-2., -2.]));
        assert_eq!(run(&Linalg::MatMul, &[&v, &b])[0], t(&[2], &[-4., -4.]));
        assert_eq!(run(&Linalg::MatMul, &[&v, &v])[0], t(&[], &[2.]));
    }

    #[test]
    fn matmul_broadcasts_batches() {
        // [2,1,2,2] x [3,2,1] -> [2,3,2,1]
        let a = t(&[2, 1, 2, 2], &[1., 0., 0., 1., 2., 0., 0., 2.]);
        let b = t(&[3, 2, 1], &[1., 2., 3., 4., 5., 6.]);
        let y = run(&Linalg::MatMul, &[&a, &b]).remove(0);
        assert_eq!(y.shape(), &[2, 3, 2, 1]);
        assert_eq!(
            y.as_slice::<f32>().unwrap(),
            &[1., 2., 3., 4., 5., 6., 2., 4., 6., 8., 10., 12.]
        );
        assert!(
            Linalg::MatMul
                .eval(&[Some(&a), Some(&t(&[3], &[1., 2., 3.]))])
                .is_err()
        );
    }

    #[test]
    fn matmul_integers_wrap_and_half_rounds_once() {
        let a = Tensor::from_vec(vec![1, 2], vec![200u8, 100]).unwrap();
        let b = Tensor::from_vec(vec![2, 1], vec![2u8, 1]).unwrap();
        // 400 + 100 = 500 wraps to 244.
        assert_eq!(
            run(&Linalg::MatMul, &[&a, &b])[0].as_slice::<u8>().unwrap(),
            &[244]
        );
        let h = |v: &[f32]| {
            v.iter()
                .map(|&x| half::f16::from_f32(x))
                .collect::<Vec<_>>()
        };
        let a = Tensor::from_vec(vec![1, 3], h(&[2048., 1., 1.])).unwrap();
        let b = Tensor::from_vec(vec![3, 1], h(&[1., 1., 1.])).unwrap();
        // Accumulating in f16 would give 2048 (2049 rounds to even twice).
        let y = run(&Linalg::MatMul, &[&a, &b]).remove(0);
        assert_eq!(y.as_slice::<half::f16>().unwrap()[0].to_f32(), 2050.);
        assert!(
            Linalg::MatMul
                .infer(&[
                    Some(InferInput {
                        ty: &TensorType::new(DType::Bool, vec![1, 1]),
                        value: None
                    }),
                    Some(InferInput {
                        ty: &TensorType::new(DType::Bool, vec![1, 1]),
                        value: None
                    }),
                ])
                .is_err()
        );
    }

    #[test]
    fn gemm_attributes() {
        let a = t(&[3, 2], &[1., 4., 2., 5., 3., 6.]); // A^T = [[1,2,3],[4,5,6]]
        let b = t(&[2, 3], &[1., 3., 5., 2., 4., 6.]); // B^T = [[1,2],[3,4],[5,6]]
        let c = t(&[2], &[1., -1.]);
        let op = parse(
            "Gemm",
            13,
            vec![
                ("transA", AttrValue::Int(1)),
                ("transB", AttrValue::Int(1)),
                ("alpha", AttrValue::Float(0.5)),
                ("beta", AttrValue::Float(2.0)),
            ],
        )
        .unwrap();
        // A'B' = [[22, 28], [49, 64]]
        assert_eq!(
            run(&op, &[&a, &b, &c])[0],
            t(&[2, 2], &[13., 12., 26.5, 30.])
        );
        let op = parse("Gemm", 13, vec![]).unwrap();
        let bad_c = t(&[3], &[0., 0., 0.]);
        let ab = [Some(&a), Some(&t(&[2, 2], &[1., 0., 0., 1.])), Some(&bad_c)];
        assert!(op.eval(&ab).is_err());
        assert!(
            parse("Gemm", 9, vec![])
                .unwrap()
                .eval(&[Some(&a), Some(&a)])
                .is_err()
        );
    }
}
