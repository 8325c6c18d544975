//! The kernels both convolutions share: the cache-blocked product
//! [`gemm`], the patch matrix walk behind [`im2col`] (Conv) and its adjoint
//! [`col2im`] (ConvTranspose), and the `f64` conversions around them.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::shape::{Shape, for_each_index, numel, strides};
use crate::tensor::{Float, Tensor};
use crate::window::Geom;

/// The elements of a float tensor as `f64`.
fn to_f64s<T: Float>(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.as_slice::<T>()?.iter().map(|v| v.to_f()).collect())
}

/// A tensor of element type `T` from `f64` results, rounding each once.
fn from_f64s<T: Float>(shape: Shape, y: Vec<f64>) -> Result<Tensor> {
    Tensor::from_vec(
        shape,
        y.into_iter().map(|v| T::from_f(v)).collect::<Vec<T>>(),
    )
}

/// Runs a convolution in `f64`: converts `X` and `W`, lets `body` fill the
/// zeroed output from them, adds the bias to every `plane`-sized output plane
/// of its channel and rounds the result to `T` once.
pub(super) fn in_f64<T: Float>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    out_shape: Shape,
    plane: usize,
    body: impl FnOnce(&[f64], &[f64], &mut [f64]) -> Result<()>,
) -> Result<Tensor> {
    let (xv, wv) = (to_f64s::<T>(x)?, to_f64s::<T>(w)?);
    let mut y = zeroed(numel(&out_shape)?)?;
    body(&xv, &wv, &mut y)?;
    if let Some(b) = b {
        add_bias(&mut y, &to_f64s::<T>(b)?, plane);
    }
    from_f64s::<T>(out_shape, y)
}

/// `c += a · b` for row-major `a: m × k`, `b: k × n`, `c: m × n`.
///
/// Columns are processed in tiles so that a tile of `b` stays in cache while
/// every row of `a` passes over it; four rows of `b` are combined per pass over
/// the `c` tile to cut its loads and stores. The inner loops run over
/// equal-length slices so they compile without bounds checks.
pub(super) fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    const NB: usize = 256;
    let mut j0 = 0;
    while j0 < n {
        let nb = NB.min(n - j0);
        for i in 0..m {
            let crow = &mut c[i * n + j0..i * n + j0 + nb];
            let arow = &a[i * k..(i + 1) * k];
            let bcol = |kk: usize| &b[kk * n + j0..kk * n + j0 + nb];
            let mut kk = 0;
            while kk + 4 <= k {
                let (a0, a1, a2, a3) = (arow[kk], arow[kk + 1], arow[kk + 2], arow[kk + 3]);
                let (b0, b1, b2, b3) = (bcol(kk), bcol(kk + 1), bcol(kk + 2), bcol(kk + 3));
                for j in 0..nb {
                    crow[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
                }
                kk += 4;
            }
            while kk < k {
                let a0 = arow[kk];
                for (cv, &bv) in crow.iter_mut().zip(bcol(kk)) {
                    *cv += a0 * bv;
                }
                kk += 1;
            }
        }
        j0 += nb;
    }
}

/// Unravels a flat row-major index over `shape`.
pub(super) fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
    }
    idx
}

/// A zeroed scratch buffer, or an error (not an abort) when the machine
/// cannot provide it: a model's shapes can ask for more than there is.
pub(super) fn zeroed(n: usize) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::Eval(format!(
            "cannot allocate {n} f64 values of convolution scratch"
        ))
    })?;
    v.resize(n, 0.0);
    Ok(v)
}

/// Adds `bias[c]` to every element of the `plane`-sized planes of channel `c`.
fn add_bias(y: &mut [f64], bias: &[f64], plane: usize) {
    if plane == 0 {
        return;
    }
    for (i, chunk) in y.chunks_mut(plane).enumerate() {
        let b = bias[i % bias.len()];
        for v in chunk {
            *v += b;
        }
    }
}

/// Walks the patch matrix of a window: `channels · kprod` rows, one per
/// channel and kernel position, of `P` positions each. The positions are the
/// output cells (`im2col`) or, when `transposed`, the input cells (`col2im`).
/// For every run of positions along the last spatial axis it calls
/// `f(channel, cells, base, last)`: the run's cells in the matrix, the flat
/// in-plane offset on the other side of the window that the run's taps are
/// relative to (`None` when the whole run lies in the padding), and the last
/// axis' tap map (`None` entries are padding).
fn for_each_patch_run(
    g: &Geom,
    channels: usize,
    transposed: bool,
    mut f: impl FnMut(usize, Range<usize>, Option<usize>, &[Option<usize>]),
) {
    let (positions, other) = if transposed {
        (&g.input, &g.out)
    } else {
        (&g.out, &g.input)
    };
    let p: usize = positions.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let nd = g.input.len();
    if p == 0 || kprod == 0 {
        return;
    }
    let maps: Vec<_> = (0..nd).map(|d| g.tap_map(d, transposed)).collect();
    let other_strides = strides(other);
    let last = nd - 1;
    let run = positions[last];
    for c in 0..channels {
        for kidx in 0..kprod {
            let kpos = unravel(kidx, &g.kernel);
            let row = (c * kprod + kidx) * p;
            let lastmap = &maps[last][kpos[last]];
            let mut seg = 0;
            for_each_index(&positions[..last], |pi| {
                let start = row + seg * run;
                seg += 1;
                let mut base = Some(0usize);
                for d in 0..last {
                    base = match (base, maps[d][kpos[d]][pi[d]]) {
                        (Some(b), Some(i)) => Some(b + i * other_strides[d]),
                        _ => None,
                    };
                }
                f(c, start..start + run, base, lastmap);
            });
        }
    }
}

/// Fills `col` (`channels · kprod` rows of `P` output positions) with the
/// input patches of `x` (`channels` planes of the input's spatial size).
pub(super) fn im2col(x: &[f64], channels: usize, g: &Geom, col: &mut [f64]) {
    let in_sz: usize = g.input.iter().product();
    for_each_patch_run(g, channels, false, |c, cells, base, lastmap| {
        let xc = &x[c * in_sz..(c + 1) * in_sz];
        let dst = &mut col[cells];
        match base {
            None => dst.fill(0.0),
            Some(b) => {
                for (o, m) in dst.iter_mut().zip(lastmap) {
                    *o = match m {
                        Some(i) => xc[b + i],
                        None => 0.0,
                    };
                }
            }
        }
    });
}

/// Scatter-adds `col` (`channels · kprod` rows of `P` input positions) into
/// `y` (`channels` planes of the output's spatial size): the adjoint of [`im2col`].
pub(super) fn col2im(col: &[f64], channels: usize, g: &Geom, y: &mut [f64]) {
    let out_sz: usize = g.out.iter().product();
    if out_sz == 0 {
        return;
    }
    for_each_patch_run(g, channels, true, |c, cells, base, lastmap| {
        let Some(b) = base else {
            return;
        };
        let yc = &mut y[c * out_sz..(c + 1) * out_sz];
        for (v, m) in col[cells].iter().zip(lastmap) {
            if let Some(o) = m {
                yc[b + o] += *v;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive() {
        let (m, k, n) = (5, 7, 300);
        let a: Vec<f64> = (0..m * k).map(|i| (i % 13) as f64 - 6.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i % 7) as f64 * 0.5).collect();
        let mut c = vec![1.0; m * n];
        gemm(m, k, n, &a, &b, &mut c);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = 1.0 + (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum::<f64>();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
