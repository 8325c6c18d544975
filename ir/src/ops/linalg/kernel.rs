//! The matrix-product kernel every product of the family shares
//! ([`matmul_acc`]) and the dtype dispatch ([`eval_numeric`]) that runs a
//! computation written once over the accumulation type.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::{Data, Elem, Tensor};
use crate::{dispatch_int, type_err};

/// Element types a product accumulates in: `f32`, `f64` and the integers
/// (with wrapping arithmetic).
pub trait Acc: Elem {
    /// The additive identity.
    const ZERO: Self;
    /// `self + a * b`.
    fn madd(self, a: Self, b: Self) -> Self;
    /// `self + o`.
    fn plus(self, o: Self) -> Self;
}

/// Floats accumulate with plain IEEE arithmetic.
macro_rules! float_acc {
    ($($t:ty),*) => {$(
        impl Acc for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn madd(self, a: Self, b: Self) -> Self {
                self + a * b
            }
            #[inline(always)]
            fn plus(self, o: Self) -> Self {
                self + o
            }
        }
    )*};
}

float_acc!(f32, f64);

macro_rules! int_acc {
    ($($t:ty),*) => {$(
        impl Acc for $t {
            const ZERO: Self = 0;
            #[inline(always)]
            fn madd(self, a: Self, b: Self) -> Self {
                self.wrapping_add(a.wrapping_mul(b))
            }
            #[inline(always)]
            fn plus(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
        }
    )*};
}
int_acc!(i8, u8, i16, u16, i32, u32, i64, u64);

/// `c[m×n] += a[m×k] · b[k×n]`, all row-major and contiguous.
///
/// The loops run `i-k-j` so the innermost loop is an axpy over a contiguous
/// row of `b` and `c` that the compiler vectorises; four rows of `c` are
/// updated per pass so each loaded element of `b` feeds four
/// multiply-adds, and `k` and `j` are blocked so the `KB×NB` tile of `b` is
/// reused from cache across all rows of `a`. Each element of `c` still sums
/// over `k` in increasing order, so results do not depend on the blocking.
///
/// The slices must hold at least `m*k`, `k*n` and `m*n` elements.
pub fn matmul_acc<A: Acc>(m: usize, k: usize, n: usize, a: &[A], b: &[A], c: &mut [A]) {
    const KB: usize = 128;
    const NB: usize = 512;
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    for k0 in (0..k).step_by(KB) {
        let k1 = (k0 + KB).min(k);
        for j0 in (0..n).step_by(NB) {
            let j1 = (j0 + NB).min(n);
            for (blk, cblk) in c.chunks_mut(4 * n).enumerate() {
                let i0 = blk * 4;
                if cblk.len() == 4 * n {
                    let (r0, rest) = cblk.split_at_mut(n);
                    let (r1, rest) = rest.split_at_mut(n);
                    let (r2, r3) = rest.split_at_mut(n);
                    let (r0, r1, r2, r3) = (
                        &mut r0[j0..j1],
                        &mut r1[j0..j1],
                        &mut r2[j0..j1],
                        &mut r3[j0..j1],
                    );
                    for kk in k0..k1 {
                        let (a0, a1, a2, a3) = (
                            a[i0 * k + kk],
                            a[(i0 + 1) * k + kk],
                            a[(i0 + 2) * k + kk],
                            a[(i0 + 3) * k + kk],
                        );
                        let brow = &b[kk * n + j0..kk * n + j1];
                        let rows = r0
                            .iter_mut()
                            .zip(r1.iter_mut())
                            .zip(r2.iter_mut())
                            .zip(r3.iter_mut());
                        for ((((x0, x1), x2), x3), &bv) in rows.zip(brow) {
                            *x0 = x0.madd(a0, bv);
                            *x1 = x1.madd(a1, bv);
                            *x2 = x2.madd(a2, bv);
                            *x3 = x3.madd(a3, bv);
                        }
                    }
                } else {
                    for (r, crow) in cblk.chunks_exact_mut(n).enumerate() {
                        let i = i0 + r;
                        let crow = &mut crow[j0..j1];
                        for kk in k0..k1 {
                            let aik = a[i * k + kk];
                            let brow = &b[kk * n + j0..kk * n + j1];
                            for (cv, &bv) in crow.iter_mut().zip(brow) {
                                *cv = cv.madd(aik, bv);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Transposes a row-major `rows×cols` matrix.
pub fn transpose2<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        out.extend((0..rows).map(|i| v[i * cols + j]));
    }
    out
}

/// `v` (a row-major `rows×cols` matrix) transposed when `transpose`, else
/// `v` itself, borrowed.
pub(super) fn transposed_if<T: Copy>(
    transpose: bool,
    v: &[T],
    rows: usize,
    cols: usize,
) -> Cow<'_, [T]> {
    if transpose {
        Cow::Owned(transpose2(v, rows, cols))
    } else {
        Cow::Borrowed(v)
    }
}

/// A computation on operands of one numeric dtype, written once over the
/// accumulation type and run by [`eval_numeric`].
pub(super) trait NumKernel {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>>;
}

fn as_f32<T: Elem>(v: &[T]) -> Vec<f32> {
    // Exact: every f16/bf16 value is an f32.
    v.iter().map(|x| x.to_f64() as f32).collect()
}

/// Runs `k` on `ins` (all of one numeric dtype) and wraps the result, which
/// has `shape`. `f16`/`bf16` run in `f32` and round once at the end.
pub(super) fn eval_numeric<K: NumKernel>(k: &K, ins: &[&Tensor], shape: Shape) -> Result<Tensor> {
    let dt = ins
        .first()
        .map(|t| t.dtype())
        .ok_or_else(|| Error::Shape("no operands".into()))?;
    if let Some(t) = ins.iter().find(|t| t.dtype() != dt) {
        type_err!("operands have different dtypes {dt} and {}", t.dtype());
    }
    fn typed<'a, T: Elem>(ins: &[&'a Tensor]) -> Result<Vec<&'a [T]>> {
        ins.iter().map(|t| t.as_slice::<T>()).collect()
    }
    fn halves<T: Elem, K: NumKernel>(k: &K, ins: &[&Tensor], shape: Shape) -> Result<Tensor> {
        let conv: Vec<Vec<f32>> = typed::<T>(ins)?.iter().map(|v| as_f32(v)).collect();
        let refs: Vec<&[f32]> = conv.iter().map(|v| v.as_slice()).collect();
        let out: Vec<T> = k
            .run(&refs)?
            .into_iter()
            .map(|x| T::from_f64(x as f64))
            .collect();
        Tensor::from_vec(shape, out)
    }
    match ins[0].data() {
        Data::F32(_) => Tensor::from_vec(shape, k.run(&typed::<f32>(ins)?)?),
        Data::F64(_) => Tensor::from_vec(shape, k.run(&typed::<f64>(ins)?)?),
        Data::F16(_) => halves::<half::f16, K>(k, ins, shape),
        Data::BF16(_) => halves::<half::bf16, K>(k, ins, shape),
        other => dispatch_int!(other, _v, T => Tensor::from_vec(shape, k.run(&typed::<T>(ins)?)?),
            else type_err!("expects a numeric type, got {dt}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_kernel_matches_naive() {
        let (m, k, n) = (7, 300, 700);
        let a: Vec<i64> = (0..m * k).map(|i| (i as i64 * 7919) % 13 - 6).collect();
        let b: Vec<i64> = (0..k * n).map(|i| (i as i64 * 104729) % 11 - 5).collect();
        let mut c = vec![0i64; m * n];
        matmul_acc(m, k, n, &a, &b, &mut c);
        for i in 0..m {
            for j in (0..n).step_by(37) {
                let want: i64 = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
