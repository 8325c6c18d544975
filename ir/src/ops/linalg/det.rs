//! `Det`: the determinant of the trailing square matrices, by LU
//! decomposition with partial pivoting in `f64`.

use super::{Linalg, float_dtype, out_elems, ty};
use crate::error::Result;
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::shape::numel;
use crate::shape_err;
use crate::tensor::Tensor;

/// Parses a `Det` node.
pub(super) fn parse_det(_ctx: &ParseCtx<'_>) -> Result<Linalg> {
    Ok(Linalg::Det)
}

/// The determinant of the row-major `n×n` matrix `a`, which it overwrites.
fn det(a: &mut [f64], n: usize) -> f64 {
    // LU decomposition with partial pivoting.
    let mut det = 1.0;
    for c in 0..n {
        let mut p = c;
        for r in c + 1..n {
            if a[r * n + c].abs() > a[p * n + c].abs() {
                p = r;
            }
        }
        if a[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for j in 0..n {
                a.swap(p * n + j, c * n + j);
            }
            det = -det;
        }
        let piv = a[c * n + c];
        det *= piv;
        for r in c + 1..n {
            let f = a[r * n + c] / piv;
            if f != 0.0 {
                for j in c + 1..n {
                    a[r * n + j] -= f * a[c * n + j];
                }
            }
        }
    }
    det
}

/// The shape rule of `Det`.
pub(super) fn infer_det(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = ty(inputs, 0, "X")?;
    float_dtype(x.dtype, "Det", "X")?;
    let r = x.shape.len();
    if r < 2 || x.shape[r - 1] != x.shape[r - 2] {
        shape_err!(
            "Det needs square matrices in the last two dims, got {:?}",
            x.shape
        );
    }
    Ok(vec![TensorType::new(x.dtype, x.shape[..r - 2].to_vec())])
}

/// Evaluates `Det`.
pub(super) fn eval_det(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let x = req(inputs, 0, "X")?;
    let r = x.rank();
    if r < 2 || x.shape()[r - 1] != x.shape()[r - 2] {
        shape_err!(
            "Det needs square matrices in the last two dims, got {:?}",
            x.shape()
        );
    }
    let n = x.shape()[r - 1];
    let v = x.to_f64_vec();
    let out: Vec<f64> = if n == 0 {
        // The determinant of a 0×0 matrix is 1.
        vec![1.0; numel(&x.shape()[..r - 2])?]
    } else if v.is_empty() {
        vec![]
    } else {
        // Non-empty data bounds n*n by the element count.
        v.chunks(n * n).map(|m| det(&mut m.to_vec(), n)).collect()
    };
    Ok(vec![
        Tensor::from_vec(x.shape()[..r - 2].to_vec(), out)?.cast(x.dtype()),
    ])
}

/// The multiply-adds of `Det`: about `n³/3` per matrix.
pub(super) fn macs_det(inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
    match opt(inputs, 0) {
        Some(x) if x.shape.len() >= 2 => {
            let n = x.shape[x.shape.len() - 1] as u64;
            out_elems(outputs).saturating_mul(n.saturating_mul(n).saturating_mul(n) / 3)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::linalg::test_util::*;

    #[test]
    fn det_values() {
        let x = t(&[2, 2, 2], &[1., 2., 3., 4., 2., 0., 0., 3.]);
        let y = run(&Linalg::Det, &[&x]).remove(0);
        let v = y.as_slice::<f32>().unwrap();
        assert!((v[0] + 2.).abs() < 1e-6 && (v[1] - 6.).abs() < 1e-6);
        let s = t(&[3, 3], &[1., 2., 3., 2., 4., 6., 0., 1., 1.]);
        assert_eq!(
            run(&Linalg::Det, &[&s])[0].as_slice::<f32>().unwrap(),
            &[0.]
        );
    }
}
