//! Convolutions and pooling: `Conv`, `ConvTranspose`, `MaxPool`, `AveragePool`,
//! `LpPool`, their `Global*` forms and `MaxUnpool`.
//!
//! Size: ~1,240 lines before the tests, one family still in one file; it is
//! to become `ops/conv/` with a file per op like `ops/layout/` (issue 11).
//!
//! All of them slide a window over the spatial axes of an `N × C × D1 × … × Dn`
//! tensor. [`Window`] holds the attributes that describe the window and `Geom`
//! the geometry they resolve to for one input shape (kernel, strides,
//! dilations, begin/end pads, output size); shape inference and evaluation both
//! go through the same resolution, so they cannot disagree.
//!
//! `Conv` runs as im2col followed by a cache-blocked matrix product, and
//! `ConvTranspose` as a matrix product followed by col2im. Like every kernel
//! of the op table they compute in `f64` and round once: as the oracle they
//! should be closer to the exact result than the f32 code they check, and the
//! scalar loops of a dev build run no slower in f64 (the 7×7/2 stem
//! convolution of a ResNet on a 224×224 image takes ~40 ms). The pools
//! precompute, per output position, the flat offsets of the input elements
//! their window covers, and reuse that table for every `N × C` plane.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, const_input, fmt_list, opt, req};
use crate::shape::{Shape, for_each_index, numel, strides};
use crate::tensor::{Elem, Float, Tensor};
use crate::window::{Geom, unpool_shape, usizes};
use crate::{dispatch_float, dispatch_int};

/// The window attributes and their resolution, shared with the quantized
/// convolutions and the lowering (see [`crate::window`]).
pub use crate::window::{AutoPad, Window};

/// Rejects `group = 0` (parsing already does; this covers ops built directly).
fn check_group(group: usize) -> Result<()> {
    if group == 0 {
        return Err(Error::attr("group", "must be at least 1"));
    }
    Ok(())
}

/// The pooling function of a windowed pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolFn {
    /// Maximum; `storage_order` 1 makes the optional indices column-major.
    Max {
        /// Whether the indices output is column-major within each plane.
        column_major: bool,
    },
    /// Mean over the window.
    Average {
        /// Whether padded cells count in the divisor.
        count_include_pad: bool,
    },
    /// `(Σ |x|^p)^(1/p)` over the window.
    Lp {
        /// The exponent.
        p: f32,
    },
}

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum ConvOp {
    /// `Conv(X, W, B?)`: grouped N-D convolution (cross-correlation).
    Conv {
        /// Window attributes.
        window: Window,
        /// Number of channel groups.
        group: usize,
    },
    /// `ConvTranspose(X, W, B?)`: the gradient of `Conv` with respect to its input.
    ConvTranspose {
        /// Window attributes.
        window: Window,
        /// Number of channel groups.
        group: usize,
        /// Extra cells added at the end of each spatial axis.
        output_padding: Vec<usize>,
        /// Requested spatial output shape; derives the pads when present.
        output_shape: Option<Vec<usize>>,
    },
    /// `MaxPool`, `AveragePool` or `LpPool`.
    Pool {
        /// The pooling function.
        f: PoolFn,
        /// Window attributes.
        window: Window,
        /// Round the output size up instead of down.
        ceil_mode: bool,
        /// Whether the second output (MaxPool's `Indices`) is wanted.
        indices: bool,
    },
    /// `GlobalMaxPool`, `GlobalAveragePool` or `GlobalLpPool`: the pool over
    /// all spatial axes.
    GlobalPool {
        /// The pooling function (`Average` counts every element).
        f: PoolFn,
    },
    /// `MaxUnpool(X, I, output_shape?)`: scatters pooled values back.
    MaxUnpool {
        /// Window size per spatial axis.
        kernel_shape: Vec<usize>,
        /// Step between windows (empty: ones).
        strides: Vec<usize>,
        /// Begin/end pads (empty: zeros).
        pads: Vec<usize>,
    },
}

impl ConvOp {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalMaxPool",
        "GlobalAveragePool",
        "GlobalLpPool",
        "MaxUnpool",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<ConvOp>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        if !Self::ONNX_OPS.contains(&ctx.op_type) {
            return None;
        }
        Some(Self::parse_known(ctx))
    }

    fn parse_known(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
        let a = ctx.attrs;
        let group = || -> Result<usize> {
            let g = a.int("group", 1)?;
            if g < 1 {
                return Err(Error::attr("group", format!("must be at least 1, got {g}")));
            }
            usize::try_from(g).map_err(|_| Error::attr("group", "is too large"))
        };
        // LpPool's `p` is a float in opset 1 and an int afterwards; both read as float.
        let p = || -> Result<f32> {
            let p = a.float("p", 2.0)?;
            if !(p.is_finite() && p > 0.0) {
                return Err(Error::attr("p", format!("must be positive, got {p}")));
            }
            Ok(p)
        };
        let ceil_mode = || -> Result<bool> { Ok(a.int("ceil_mode", 0)? != 0) };
        Ok(match ctx.op_type {
            "Conv" => ConvOp::Conv {
                window: Window::parse(a, false)?,
                group: group()?,
            },
            "ConvTranspose" => ConvOp::ConvTranspose {
                window: Window::parse(a, false)?,
                group: group()?,
                output_padding: usizes(a, "output_padding", 0)?.unwrap_or_default(),
                output_shape: usizes(a, "output_shape", 0)?,
            },
            "MaxPool" => {
                let order = a.int("storage_order", 0)?;
                if order != 0 && order != 1 {
                    return Err(Error::attr(
                        "storage_order",
                        format!("must be 0 or 1, got {order}"),
                    ));
                }
                ConvOp::Pool {
                    f: PoolFn::Max {
                        column_major: order == 1,
                    },
                    window: Window::parse(a, true)?,
                    ceil_mode: ceil_mode()?,
                    indices: ctx.num_outputs > 1,
                }
            }
            "AveragePool" => ConvOp::Pool {
                f: PoolFn::Average {
                    count_include_pad: a.int("count_include_pad", 0)? != 0,
                },
                window: Window::parse(a, true)?,
                ceil_mode: ceil_mode()?,
                indices: false,
            },
            "LpPool" => ConvOp::Pool {
                f: PoolFn::Lp { p: p()? },
                window: Window::parse(a, true)?,
                ceil_mode: ceil_mode()?,
                indices: false,
            },
            "GlobalMaxPool" => ConvOp::GlobalPool {
                f: PoolFn::Max {
                    column_major: false,
                },
            },
            "GlobalAveragePool" => ConvOp::GlobalPool {
                f: PoolFn::Average {
                    count_include_pad: false,
                },
            },
            "GlobalLpPool" => ConvOp::GlobalPool {
                f: PoolFn::Lp { p: p()? },
            },
            "MaxUnpool" => ConvOp::MaxUnpool {
                kernel_shape: usizes(a, "kernel_shape", 1)?
                    .ok_or_else(|| Error::attr("kernel_shape", "is required"))?,
                strides: usizes(a, "strides", 1)?.unwrap_or_default(),
                pads: usizes(a, "pads", 0)?.unwrap_or_default(),
            },
            other => {
                return Err(Error::Unsupported(format!(
                    "{other} is not a convolution or pooling op"
                )));
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Shape rules.

/// Splits `N × C × spatial…`, requiring at least `min_spatial` spatial axes.
fn split_nc<'a>(
    x: &'a [usize],
    what: &str,
    min_spatial: usize,
) -> Result<(usize, usize, &'a [usize])> {
    if x.len() < 2 + min_spatial {
        return Err(Error::Shape(format!(
            "{what} must have rank at least {} (N × C × spatial…), got shape {x:?}",
            2 + min_spatial
        )));
    }
    Ok((x[0], x[1], &x[2..]))
}

fn check_float(d: DType, what: &str) -> Result<()> {
    if !d.is_float() {
        return Err(Error::Type(format!(
            "{what} must be a float tensor, got {d}"
        )));
    }
    Ok(())
}

/// `Conv`: the geometry and output shape for `X`, `W` and the optional `B`.
fn conv_shape(
    window: &Window,
    group: usize,
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
) -> Result<(Geom, Shape)> {
    check_group(group)?;
    let (n, c, spatial) = split_nc(x, "X", 1)?;
    if w.len() != x.len() {
        return Err(Error::Shape(format!(
            "W has shape {w:?} but X has rank {}",
            x.len()
        )));
    }
    let m = w[0];
    if !c.is_multiple_of(group) || !m.is_multiple_of(group) {
        return Err(Error::Shape(format!(
            "group {group} must divide the input channels ({c}) and the output channels ({m})"
        )));
    }
    if w[1] != c / group {
        return Err(Error::Shape(format!(
            "W has {} input channels per group but X has {c} channels in {group} groups",
            w[1]
        )));
    }
    check_bias(b, m)?;
    let g = window.resolve(spatial, &w[2..], false)?;
    let mut out = vec![n, m];
    out.extend_from_slice(&g.out);
    numel(&out)?;
    Ok((g, out))
}

/// Checks that the optional bias has one value per output channel.
fn check_bias(b: Option<&[usize]>, m: usize) -> Result<()> {
    match b {
        Some(b) if b != [m] => Err(Error::Shape(format!("B must have shape [{m}], got {b:?}"))),
        Some(_) | None => Ok(()),
    }
}

/// `ConvTranspose`: the geometry and output shape.
fn conv_transpose_shape(
    window: &Window,
    group: usize,
    output_padding: &[usize],
    output_shape: Option<&[usize]>,
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
) -> Result<(Geom, Shape)> {
    check_group(group)?;
    let (n, c, spatial) = split_nc(x, "X", 1)?;
    let nd = spatial.len();
    if w.len() != x.len() {
        return Err(Error::Shape(format!(
            "W has shape {w:?} but X has rank {}",
            x.len()
        )));
    }
    if !c.is_multiple_of(group) || w[0] != c {
        return Err(Error::Shape(format!(
            "W must have X's {c} channels as its first dim and group {group} must divide them, got W {w:?}"
        )));
    }
    let m = w[1]
        .checked_mul(group)
        .ok_or_else(|| Error::Overflow("output channels".into()))?;
    check_bias(b, m)?;
    let kernel = &w[2..];
    // `output_shape` may list the spatial dims only or the whole shape.
    let want = match output_shape {
        Some(s) if s.len() == nd + 2 => Some(&s[2..]),
        other => other,
    };
    let g = window.resolve_transpose(spatial, kernel, output_padding, want)?;
    let mut shape = vec![n, m];
    shape.extend_from_slice(&g.out);
    numel(&shape)?;
    Ok((g, shape))
}

fn pool_shape(window: &Window, ceil_mode: bool, x: &[usize]) -> Result<(Geom, Shape)> {
    let (n, c, spatial) = split_nc(x, "X", 1)?;
    let kernel = window.kernel_shape.clone().unwrap_or_default();
    let g = window.resolve(spatial, &kernel, ceil_mode)?;
    let mut out = vec![n, c];
    out.extend_from_slice(&g.out);
    numel(&out)?;
    Ok((g, out))
}

// ---------------------------------------------------------------------------
// Convolution kernels.

/// The elements of a float tensor as `f64`.
fn to_f64s<T: Float>(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.as_slice::<T>()?.iter().map(|v| v.to_f()).collect())
}

/// `c += a · b` for row-major `a: m × k`, `b: k × n`, `c: m × n`.
///
/// Columns are processed in tiles so that a tile of `b` stays in cache while
/// every row of `a` passes over it; four rows of `b` are combined per pass over
/// the `c` tile to cut its loads and stores. The inner loops run over
/// equal-length slices so they compile without bounds checks.
fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
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
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
    }
    idx
}

/// Fills `col` (`channels · kprod` rows of `P` output positions) with the
/// input patches of `x` (`channels` planes of the input's spatial size).
/// A zeroed scratch buffer, or an error (not an abort) when the machine
/// cannot provide it: a model's shapes can ask for more than there is.
fn zeroed(n: usize) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::Eval(format!(
            "cannot allocate {n} f64 values of convolution scratch"
        ))
    })?;
    v.resize(n, 0.0);
    Ok(v)
}

fn im2col(x: &[f64], channels: usize, g: &Geom, col: &mut [f64]) {
    let p: usize = g.out.iter().product();
    let in_sz: usize = g.input.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let nd = g.input.len();
    if p == 0 || kprod == 0 {
        return;
    }
    let maps: Vec<_> = (0..nd).map(|d| g.tap_map(d, false)).collect();
    let in_strides = strides(&g.input);
    let last = nd - 1;
    let ol = g.out[last];
    for c in 0..channels {
        let xc = &x[c * in_sz..(c + 1) * in_sz];
        for kidx in 0..kprod {
            let kpos = unravel(kidx, &g.kernel);
            let row = &mut col[(c * kprod + kidx) * p..(c * kprod + kidx + 1) * p];
            let lastmap = &maps[last][kpos[last]];
            let mut seg = 0;
            for_each_index(&g.out[..last], |oi| {
                let dst = &mut row[seg * ol..(seg + 1) * ol];
                seg += 1;
                let mut base = Some(0usize);
                for d in 0..last {
                    base = match (base, maps[d][kpos[d]][oi[d]]) {
                        (Some(b), Some(i)) => Some(b + i * in_strides[d]),
                        _ => None,
                    };
                }
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
    }
}

/// Scatter-adds `col` (`channels · kprod` rows of `P` input positions) into
/// `y` (`channels` planes of the output's spatial size): the adjoint of [`im2col`].
fn col2im(col: &[f64], channels: usize, g: &Geom, y: &mut [f64]) {
    let p: usize = g.input.iter().product();
    let out_sz: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let nd = g.input.len();
    if p == 0 || kprod == 0 || out_sz == 0 {
        return;
    }
    let maps: Vec<_> = (0..nd).map(|d| g.tap_map(d, true)).collect();
    let out_strides = strides(&g.out);
    let last = nd - 1;
    let il = g.input[last];
    for c in 0..channels {
        let yc = &mut y[c * out_sz..(c + 1) * out_sz];
        for kidx in 0..kprod {
            let kpos = unravel(kidx, &g.kernel);
            let row = &col[(c * kprod + kidx) * p..(c * kprod + kidx + 1) * p];
            let lastmap = &maps[last][kpos[last]];
            let mut seg = 0;
            for_each_index(&g.input[..last], |ii| {
                let src = &row[seg * il..(seg + 1) * il];
                seg += 1;
                let mut base = Some(0usize);
                for d in 0..last {
                    base = match (base, maps[d][kpos[d]][ii[d]]) {
                        (Some(b), Some(o)) => Some(b + o * out_strides[d]),
                        _ => None,
                    };
                }
                if let Some(b) = base {
                    for (v, m) in src.iter().zip(lastmap) {
                        if let Some(o) = m {
                            yc[b + o] += *v;
                        }
                    }
                }
            });
        }
    }
}

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

fn from_f64s<T: Float>(shape: Shape, y: Vec<f64>) -> Result<Tensor> {
    Tensor::from_vec(
        shape,
        y.into_iter().map(|v| T::from_f(v)).collect::<Vec<T>>(),
    )
}

fn conv_typed<T: Float>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    g: &Geom,
    group: usize,
    out_shape: Shape,
) -> Result<Tensor> {
    let (xv, wv) = (to_f64s::<T>(x)?, to_f64s::<T>(w)?);
    let (n, c, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cg, mg) = (c / group, m / group);
    let in_sz: usize = g.input.iter().product();
    let p: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let kdim = cg * kprod;
    let mut y = zeroed(numel(&out_shape)?)?;
    // A 1×1 kernel with unit strides and no padding reads each input plane as is.
    let pointwise = g.kernel.iter().all(|&k| k == 1)
        && g.strides.iter().all(|&s| s == 1)
        && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0);
    let mut col = if pointwise {
        vec![]
    } else {
        zeroed(kdim.saturating_mul(p))?
    };
    for ni in 0..n {
        for gi in 0..group {
            let xg = &xv[(ni * c + gi * cg) * in_sz..(ni * c + (gi + 1) * cg) * in_sz];
            let bmat: &[f64] = if pointwise {
                xg
            } else {
                im2col(xg, cg, g, &mut col);
                &col
            };
            let amat = &wv[gi * mg * kdim..(gi + 1) * mg * kdim];
            let cmat = &mut y[(ni * m + gi * mg) * p..(ni * m + (gi + 1) * mg) * p];
            gemm(mg, kdim, p, amat, bmat, cmat);
        }
    }
    if let Some(b) = b {
        add_bias(&mut y, &to_f64s::<T>(b)?, p);
    }
    from_f64s::<T>(out_shape, y)
}

fn conv_transpose_typed<T: Float>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    g: &Geom,
    group: usize,
    out_shape: Shape,
) -> Result<Tensor> {
    let (xv, wv) = (to_f64s::<T>(x)?, to_f64s::<T>(w)?);
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let (cg, mg) = (c / group, w.shape()[1]);
    let m = out_shape[1];
    let p: usize = g.input.iter().product();
    let out_sz: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let kdim = mg * kprod;
    let mut y = zeroed(numel(&out_shape)?)?;
    let mut col = zeroed(kdim.saturating_mul(p))?;
    // Per group, W is `cg × kdim`; the product needs its transpose.
    let wt: Vec<Vec<f64>> = (0..group)
        .map(|gi| {
            let wg = &wv[gi * cg * kdim..(gi + 1) * cg * kdim];
            let mut t = vec![0.0; kdim * cg];
            for ci in 0..cg {
                for kk in 0..kdim {
                    t[kk * cg + ci] = wg[ci * kdim + kk];
                }
            }
            t
        })
        .collect();
    for ni in 0..n {
        for gi in 0..group {
            let xg = &xv[(ni * c + gi * cg) * p..(ni * c + (gi + 1) * cg) * p];
            col.fill(0.0);
            gemm(kdim, cg, p, &wt[gi], xg, &mut col);
            let yg = &mut y[(ni * m + gi * mg) * out_sz..(ni * m + (gi + 1) * mg) * out_sz];
            col2im(&col, mg, g, yg);
        }
    }
    if let Some(b) = b {
        add_bias(&mut y, &to_f64s::<T>(b)?, out_sz);
    }
    from_f64s::<T>(out_shape, y)
}

// ---------------------------------------------------------------------------
// Pooling kernels.

/// For every output position of a pool, the flat in-plane offsets of the input
/// elements its window covers (CSR layout) and how many window cells lie
/// inside the padded input (the `count_include_pad` divisor).
struct PoolTable {
    start: Vec<usize>,
    offsets: Vec<usize>,
    padded: Vec<usize>,
}

impl PoolTable {
    fn new(g: &Geom) -> PoolTable {
        let nd = g.input.len();
        // Per axis and output position: the in-bounds input coordinates and the
        // number of taps inside the padded extent.
        let mut taps: Vec<Vec<Vec<usize>>> = Vec::with_capacity(nd);
        let mut padded_counts: Vec<Vec<usize>> = Vec::with_capacity(nd);
        for d in 0..nd {
            let (s, dil, pb, pe) = (
                g.strides[d] as i128,
                g.dilations[d] as i128,
                g.pad_begin[d] as i128,
                g.pad_end[d] as i128,
            );
            let inp = g.input[d] as i128;
            let mut axis_taps = Vec::with_capacity(g.out[d]);
            let mut axis_padded = Vec::with_capacity(g.out[d]);
            for o in 0..g.out[d] {
                let start = o as i128 * s - pb;
                let mut t = Vec::with_capacity(g.kernel[d]);
                let mut np = 0;
                for k in 0..g.kernel[d] {
                    let pos = start + k as i128 * dil;
                    if pos >= 0 && pos < inp {
                        t.push(pos as usize);
                    }
                    if pos >= -pb && pos < inp + pe {
                        np += 1;
                    }
                }
                axis_taps.push(t);
                axis_padded.push(np);
            }
            taps.push(axis_taps);
            padded_counts.push(axis_padded);
        }
        let in_strides = strides(&g.input);
        let mut table = PoolTable {
            start: vec![0],
            offsets: Vec::new(),
            padded: Vec::new(),
        };
        for_each_index(&g.out, |oi| {
            let lists: Vec<&[usize]> = (0..nd).map(|d| taps[d][oi[d]].as_slice()).collect();
            table
                .padded
                .push((0..nd).map(|d| padded_counts[d][oi[d]]).product());
            let lens: Vec<usize> = lists.iter().map(|l| l.len()).collect();
            for_each_index(&lens, |ti| {
                table
                    .offsets
                    .push((0..nd).map(|d| lists[d][ti[d]] * in_strides[d]).sum());
            });
            table.start.push(table.offsets.len());
        });
        table
    }

    fn window(&self, o: usize) -> &[usize] {
        &self.offsets[self.start[o]..self.start[o + 1]]
    }

    fn positions(&self) -> usize {
        self.padded.len()
    }
}

/// The smallest value of an element type (`-inf` for floats), the max-pool of
/// an empty window.
fn lowest<T: Elem>() -> T {
    match T::DTYPE {
        DType::I8 => T::from_i64(i8::MIN as i64),
        DType::I16 => T::from_i64(i16::MIN as i64),
        DType::I32 => T::from_i64(i32::MIN as i64),
        DType::I64 => T::from_i64(i64::MIN),
        DType::U8 | DType::U16 | DType::U32 | DType::U64 | DType::Bool => T::from_i64(0),
        DType::F32 | DType::F16 | DType::BF16 | DType::F64 => T::from_f64(f64::NEG_INFINITY),
    }
}

/// The flat in-plane index of `offset` in column-major order (MaxPool's
/// `storage_order = 1`).
fn column_major(offset: usize, shape: &[usize]) -> usize {
    let idx = unravel(offset, shape);
    let mut flat = 0;
    let mut stride = 1;
    for d in 0..shape.len() {
        flat += idx[d] * stride;
        stride *= shape[d];
    }
    flat
}

fn max_pool<T: Elem>(
    x: &[T],
    planes: usize,
    g: &Geom,
    out_shape: Shape,
    column: bool,
    want_indices: bool,
) -> Result<Vec<Tensor>> {
    let table = PoolTable::new(g);
    let in_sz: usize = g.input.iter().product();
    let np = table.positions();
    let mut y = Vec::with_capacity(planes * np);
    let mut idx: Vec<i64> = Vec::with_capacity(if want_indices { planes * np } else { 0 });
    for pl in 0..planes {
        let xp = &x[pl * in_sz..(pl + 1) * in_sz];
        for o in 0..np {
            // NaNs never win a comparison, so they are skipped like padding
            // (the ONNX reference drops them; onnxruntime compares the same way).
            let mut best: Option<(T, usize)> = None;
            for &off in table.window(o) {
                let v = xp[off];
                let better = match best {
                    Some((b, _)) => v > b,
                    // `partial_cmp` with itself is `None` exactly for NaN.
                    None => v.partial_cmp(&v).is_some(),
                };
                if better {
                    best = Some((v, off));
                }
            }
            let (v, off) = match best {
                Some((v, off)) => (v, Some(off)),
                // Only NaNs or no element at all: the first NaN, else the lowest value.
                None => match table.window(o).first() {
                    Some(&first) => (xp[first], Some(first)),
                    None => (lowest::<T>(), None),
                },
            };
            y.push(v);
            if want_indices {
                idx.push(match off {
                    Some(off) => {
                        let local = if column {
                            column_major(off, &g.input)
                        } else {
                            off
                        };
                        i64::try_from(pl * in_sz + local)
                            .map_err(|_| Error::Overflow("MaxPool index".into()))?
                    }
                    None => -1,
                });
            }
        }
    }
    let mut outs = vec![Tensor::from_vec(out_shape.clone(), y)?];
    if want_indices {
        outs.push(Tensor::from_vec(out_shape, idx)?);
    }
    Ok(outs)
}

fn avg_lp_pool<T: Float>(
    x: &[T],
    planes: usize,
    g: &Geom,
    out_shape: Shape,
    f: PoolFn,
) -> Result<Tensor> {
    let table = PoolTable::new(g);
    let in_sz: usize = g.input.iter().product();
    let np = table.positions();
    let mut y = Vec::with_capacity(planes * np);
    for pl in 0..planes {
        let xp = &x[pl * in_sz..(pl + 1) * in_sz];
        for o in 0..np {
            let win = table.window(o);
            let v = match f {
                PoolFn::Average { count_include_pad } => {
                    let sum: f64 = win.iter().map(|&i| xp[i].to_f()).sum();
                    let count = if count_include_pad {
                        table.padded[o]
                    } else {
                        win.len()
                    };
                    sum / count as f64
                }
                PoolFn::Lp { p } => lp(win.iter().map(|&i| xp[i].to_f()), p as f64),
                PoolFn::Max { .. } => f64::NAN,
            };
            y.push(T::from_f(v));
        }
    }
    Tensor::from_vec(out_shape, y)
}

/// `(Σ |x|^p)^(1/p)`, with the square root exact for `p = 2`.
fn lp(xs: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == 2.0 {
        xs.map(|v| v * v).sum::<f64>().sqrt()
    } else if p == 1.0 {
        xs.map(f64::abs).sum()
    } else {
        xs.map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

fn global_pool<T: Float>(
    x: &[T],
    planes: usize,
    plane: usize,
    out_shape: Shape,
    f: PoolFn,
) -> Result<Tensor> {
    let mut y = Vec::with_capacity(planes);
    for pl in 0..planes {
        let xp = x[pl * plane..(pl + 1) * plane].iter().map(|v| v.to_f());
        let v = match f {
            // NaN propagates, like NumPy's max over the axes.
            PoolFn::Max { .. } => xp.fold(f64::NEG_INFINITY, |m, v| {
                if v.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(v)
                }
            }),
            PoolFn::Average { .. } => xp.sum::<f64>() / plane as f64,
            PoolFn::Lp { p } => lp(xp, p as f64),
        };
        y.push(T::from_f(v));
    }
    Tensor::from_vec(out_shape, y)
}

fn max_unpool<T: Elem>(
    x: &[T],
    idx: &[i64],
    inferred: &[usize],
    out_shape: Shape,
) -> Result<Tensor> {
    let n_inf = numel(inferred)?;
    let mut y = vec![T::default(); n_inf];
    for (&v, &i) in x.iter().zip(idx) {
        let slot = usize::try_from(i)
            .ok()
            .filter(|&i| i < n_inf)
            .ok_or_else(|| {
                Error::Eval(format!(
                    "MaxUnpool index {i} is out of range for the unpooled shape {inferred:?}"
                ))
            })?;
        y[slot] = v;
    }
    if inferred == out_shape.as_slice() {
        return Tensor::from_vec(out_shape, y);
    }
    // Place the inferred block at the start of every axis of the larger output.
    let mut out = vec![T::default(); numel(&out_shape)?];
    let os = strides(&out_shape);
    let mut k = 0;
    for_each_index(inferred, |ii| {
        let flat: usize = ii.iter().zip(&os).map(|(i, s)| i * s).sum();
        out[flat] = y[k];
        k += 1;
    });
    Tensor::from_vec(out_shape, out)
}

// ---------------------------------------------------------------------------

impl OpDef for ConvOp {
    fn name(&self) -> &'static str {
        match self {
            ConvOp::Conv { .. } => "Conv",
            ConvOp::ConvTranspose { .. } => "ConvTranspose",
            ConvOp::Pool {
                f: PoolFn::Max { .. },
                ..
            } => "MaxPool",
            ConvOp::Pool {
                f: PoolFn::Average { .. },
                ..
            } => "AveragePool",
            ConvOp::Pool {
                f: PoolFn::Lp { .. },
                ..
            } => "LpPool",
            ConvOp::GlobalPool {
                f: PoolFn::Max { .. },
            } => "GlobalMaxPool",
            ConvOp::GlobalPool {
                f: PoolFn::Average { .. },
            } => "GlobalAveragePool",
            ConvOp::GlobalPool {
                f: PoolFn::Lp { .. },
            } => "GlobalLpPool",
            ConvOp::MaxUnpool { .. } => "MaxUnpool",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        match self {
            ConvOp::Conv { window, group } => {
                window.attrs(&mut v);
                if *group != 1 {
                    v.push(("group", group.to_string()));
                }
            }
            ConvOp::ConvTranspose {
                window,
                group,
                output_padding,
                output_shape,
            } => {
                window.attrs(&mut v);
                if *group != 1 {
                    v.push(("group", group.to_string()));
                }
                if !output_padding.is_empty() {
                    v.push(("output_padding", fmt_list(output_padding)));
                }
                if let Some(s) = output_shape {
                    v.push(("output_shape", fmt_list(s)));
                }
            }
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices: _,
            } => {
                window.attrs(&mut v);
                if *ceil_mode {
                    v.push(("ceil_mode", "1".to_string()));
                }
                pool_fn_attrs(*f, &mut v);
            }
            ConvOp::GlobalPool { f } => pool_fn_attrs(*f, &mut v),
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => {
                v.push(("kernel_shape", fmt_list(kernel_shape)));
                if !strides.is_empty() {
                    v.push(("strides", fmt_list(strides)));
                }
                if !pads.is_empty() {
                    v.push(("pads", fmt_list(pads)));
                }
            }
        }
        v
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            ConvOp::MaxUnpool { .. } => vec![2],
            ConvOp::Conv { .. }
            | ConvOp::ConvTranspose { .. }
            | ConvOp::Pool { .. }
            | ConvOp::GlobalPool { .. } => {
                vec![]
            }
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let ty = |i: usize, what: &str| req(inputs, i, what).map(|x| x.ty);
        match self {
            ConvOp::Conv { window, group } | ConvOp::ConvTranspose { window, group, .. } => {
                check_arity(inputs, 2, 3)?;
                let (x, w) = (ty(0, "X")?, ty(1, "W")?);
                let b = opt(inputs, 2).map(|b| b.ty);
                check_float(x.dtype, "X")?;
                for (t, what) in [(Some(w), "W"), (b, "B")] {
                    if let Some(t) = t
                        && t.dtype != x.dtype
                    {
                        return Err(Error::Type(format!(
                            "{what} is {} but X is {}",
                            t.dtype, x.dtype
                        )));
                    }
                }
                let bshape = b.map(|b| b.shape.as_slice());
                let (_, shape) = match self {
                    ConvOp::ConvTranspose {
                        output_padding,
                        output_shape,
                        ..
                    } => conv_transpose_shape(
                        window,
                        *group,
                        output_padding,
                        output_shape.as_deref(),
                        &x.shape,
                        &w.shape,
                        bshape,
                    )?,
                    _ => conv_shape(window, *group, &x.shape, &w.shape, bshape)?,
                };
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices,
            } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(0, "X")?;
                check_pool_dtype(*f, x.dtype)?;
                let (_, shape) = pool_shape(window, *ceil_mode, &x.shape)?;
                let mut out = vec![TensorType::new(x.dtype, shape.clone())];
                if *indices {
                    out.push(TensorType::new(DType::I64, shape));
                }
                Ok(out)
            }
            ConvOp::GlobalPool { f: _ } => {
                check_arity(inputs, 1, 1)?;
                let x = ty(0, "X")?;
                check_float(x.dtype, "X")?;
                let (n, c, spatial) = split_nc(&x.shape, "X", 0)?;
                let mut shape = vec![n, c];
                shape.extend(spatial.iter().map(|_| 1));
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => {
                check_arity(inputs, 2, 3)?;
                let (x, i) = (ty(0, "X")?, ty(1, "I")?);
                check_float(x.dtype, "X")?;
                if i.dtype != DType::I64 || i.shape != x.shape {
                    return Err(Error::Type(format!(
                        "I must be an i64 tensor of X's shape {:?}, got {i}",
                        x.shape
                    )));
                }
                let want = match opt(inputs, 2) {
                    Some(_) => Some(const_input(inputs, 2, "output_shape")?.to_i64_vec()),
                    None => None,
                };
                let (_, shape) =
                    unpool_shape(kernel_shape, strides, pads, &x.shape, want.as_deref())?;
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            ConvOp::Conv { window, group } => {
                let (x, w, b) = (req(inputs, 0, "X")?, req(inputs, 1, "W")?, opt(inputs, 2));
                check_same_dtype(x, w, b)?;
                let (g, shape) =
                    conv_shape(window, *group, x.shape(), w.shape(), b.map(|b| b.shape()))?;
                let y = dispatch_float!(x.data(), _v, T => conv_typed::<T>(x, w, b, &g, *group, shape)?,
                    else return Err(Error::Type(format!("Conv on {}", x.dtype()))));
                Ok(vec![y])
            }
            ConvOp::ConvTranspose {
                window,
                group,
                output_padding,
                output_shape,
            } => {
                let (x, w, b) = (req(inputs, 0, "X")?, req(inputs, 1, "W")?, opt(inputs, 2));
                check_same_dtype(x, w, b)?;
                let (g, shape) = conv_transpose_shape(
                    window,
                    *group,
                    output_padding,
                    output_shape.as_deref(),
                    x.shape(),
                    w.shape(),
                    b.map(|b| b.shape()),
                )?;
                let y = dispatch_float!(x.data(), _v, T => conv_transpose_typed::<T>(x, w, b, &g, *group, shape)?,
                    else return Err(Error::Type(format!("ConvTranspose on {}", x.dtype()))));
                Ok(vec![y])
            }
            ConvOp::Pool {
                f,
                window,
                ceil_mode,
                indices,
            } => {
                let x = req(inputs, 0, "X")?;
                check_pool_dtype(*f, x.dtype())?;
                let (g, shape) = pool_shape(window, *ceil_mode, x.shape())?;
                let planes = x.shape()[0] * x.shape()[1];
                match f {
                    PoolFn::Max { column_major } => {
                        let (col, want) = (*column_major, *indices);
                        dispatch_float!(x.data(), v, T => max_pool::<T>(v, planes, &g, shape, col, want),
                            else dispatch_int!(x.data(), v, T => max_pool::<T>(v, planes, &g, shape, col, want),
                                else Err(Error::Type(format!("MaxPool on {}", x.dtype())))))
                    }
                    PoolFn::Average { .. } | PoolFn::Lp { .. } => {
                        Ok(vec![dispatch_float!(x.data(), v, T =>
                        avg_lp_pool::<T>(v, planes, &g, shape, *f)?,
                        else return Err(Error::Type(format!("{} on {}", self.name(), x.dtype()))))])
                    }
                }
            }
            ConvOp::GlobalPool { f } => {
                let x = req(inputs, 0, "X")?;
                let (n, c, spatial) = split_nc(x.shape(), "X", 0)?;
                let mut shape = vec![n, c];
                shape.extend(spatial.iter().map(|_| 1));
                let plane = numel(spatial)?;
                Ok(vec![
                    dispatch_float!(x.data(), v, T => global_pool::<T>(v, n * c, plane, shape, *f)?,
                    else return Err(Error::Type(format!("{} on {}", self.name(), x.dtype())))),
                ])
            }
            ConvOp::MaxUnpool {
                kernel_shape,
                strides,
                pads,
            } => {
                let (x, i) = (req(inputs, 0, "X")?, req(inputs, 1, "I")?);
                if i.shape() != x.shape() {
                    return Err(Error::Shape(format!(
                        "I has shape {:?} but X has {:?}",
                        i.shape(),
                        x.shape()
                    )));
                }
                let want = opt(inputs, 2).map(|t| t.to_i64_vec());
                let (inferred, shape) =
                    unpool_shape(kernel_shape, strides, pads, x.shape(), want.as_deref())?;
                let idx = i.as_slice::<i64>()?;
                Ok(vec![
                    dispatch_float!(x.data(), v, T => max_unpool::<T>(v, idx, &inferred, shape)?,
                    else return Err(Error::Type(format!("MaxUnpool on {}", x.dtype())))),
                ])
            }
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let out = outputs.first().and_then(|t| t.numel().ok()).unwrap_or(0) as u64;
        let w = inputs.get(1).copied().flatten();
        let x = inputs.first().copied().flatten();
        match self {
            // Every output element sums C/group · prod(kernel) products, which
            // is exactly W's size per output channel.
            ConvOp::Conv { .. } => {
                let per_out = w
                    .map(|w| w.shape.iter().skip(1).product::<usize>())
                    .unwrap_or(0) as u64;
                out * per_out
            }
            // Every input element is scattered into (M/group) · prod(kernel) outputs.
            ConvOp::ConvTranspose { .. } => {
                let per_in = w
                    .map(|w| w.shape.iter().skip(1).product::<usize>())
                    .unwrap_or(0) as u64;
                x.and_then(|x| x.numel().ok()).unwrap_or(0) as u64 * per_in
            }
            ConvOp::Pool { window, .. } => {
                out * window
                    .kernel_shape
                    .as_ref()
                    .map(|k| k.iter().product::<usize>())
                    .unwrap_or(1) as u64
            }
            ConvOp::GlobalPool { .. } | ConvOp::MaxUnpool { .. } => {
                x.and_then(|x| x.numel().ok()).unwrap_or(0) as u64
            }
        }
    }
}

fn pool_fn_attrs(f: PoolFn, v: &mut Vec<(&'static str, String)>) {
    match f {
        PoolFn::Max { column_major } => {
            if column_major {
                v.push(("storage_order", "1".to_string()));
            }
        }
        PoolFn::Average { count_include_pad } => {
            if count_include_pad {
                v.push(("count_include_pad", "1".to_string()));
            }
        }
        PoolFn::Lp { p } => v.push(("p", p.to_string())),
    }
}

fn check_pool_dtype(f: PoolFn, d: DType) -> Result<()> {
    match f {
        // MaxPool takes i8/u8 since opset 12; the other integer widths are a
        // harmless extension of the same comparison.
        PoolFn::Max { .. } if d.is_int() => Ok(()),
        PoolFn::Max { .. } | PoolFn::Average { .. } | PoolFn::Lp { .. } => check_float(d, "X"),
    }
}

fn check_same_dtype(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<()> {
    for t in std::iter::once(w).chain(b) {
        if t.dtype() != x.dtype() {
            return Err(Error::Type(format!(
                "operands have different dtypes {} and {}",
                x.dtype(),
                t.dtype()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{AttrValue, Attrs};

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn iota(shape: &[usize]) -> Tensor {
        let n = numel(shape).unwrap();
        t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    fn parse(op: &str, attrs: Vec<(&str, AttrValue)>, num_outputs: usize) -> ConvOp {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type: op,
            domain: "",
            opset: 22,
            attrs: &attrs,
            num_inputs: 3,
            num_outputs,
        };
        ConvOp::parse(&ctx).unwrap().unwrap()
    }

    fn ints(v: &[i64]) -> AttrValue {
        AttrValue::Ints(v.to_vec())
    }

    /// Evaluates and checks the result against inference and `want`.
    fn run(op: &ConvOp, inputs: &[&Tensor]) -> Vec<Tensor> {
        let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
        let tys: Vec<TensorType> = inputs
            .iter()
            .map(|x| TensorType::new(x.dtype(), x.shape().to_vec()))
            .collect();
        let infer_in: Vec<Option<InferInput<'_>>> = tys
            .iter()
            .zip(inputs)
            .map(|(ty, v)| {
                Some(InferInput {
                    ty,
                    value: Some(*v),
                })
            })
            .collect();
        let want = op.infer(&infer_in).unwrap();
        let got = op.eval(&ins).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.dtype(), g.shape()),
                (w.dtype, w.shape.as_slice()),
                "{op:?}"
            );
        }
        got
    }

    fn close(got: &Tensor, want: &[f32]) {
        let g = got.to_f64_vec();
        assert_eq!(g.len(), want.len(), "{got:?}");
        for (a, b) in g.iter().zip(want) {
            assert!((a - *b as f64).abs() < 1e-4, "got {g:?}, want {want:?}");
        }
    }

    #[test]
    fn conv_with_and_without_padding() {
        // The ONNX basic_conv tests: 5×5 iota, 3×3 ones kernel.
        let x = iota(&[1, 1, 5, 5]);
        let w = t(&[1, 1, 3, 3], &[1.0; 9]);
        let op = parse(
            "Conv",
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("pads", ints(&[1, 1, 1, 1])),
            ],
            1,
        );
        let y = run(&op, &[&x, &w]).remove(0);
        #[rustfmt::skip]
        close(&y, &[12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81.,
                    93., 144., 153., 162., 111., 72., 111., 117., 123., 84.]);
        let op = parse("Conv", vec![], 1);
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[54., 63., 72., 99., 108., 117., 144., 153., 162.]);
    }

    #[test]
    fn conv_strides_groups_bias_same_lower() {
        let x = iota(&[1, 1, 5, 5]);
        let w = t(&[1, 1, 3, 3], &[1.0; 9]);
        let op = parse(
            "Conv",
            vec![
                ("auto_pad", AttrValue::String(b"SAME_LOWER".to_vec())),
                ("strides", ints(&[2, 2])),
            ],
            1,
        );
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[12., 27., 24., 63., 108., 81., 72., 117., 84.]);
        // Depthwise with bias: each channel scaled by its own weight.
        let x = iota(&[1, 2, 1, 2]);
        let w = t(&[2, 1, 1, 1], &[2., 3.]);
        let b = t(&[2], &[10., 20.]);
        let op = parse("Conv", vec![("group", AttrValue::Int(2))], 1);
        let y = run(&op, &[&x, &w, &b]).remove(0);
        close(&y, &[10., 12., 26., 29.]);
    }

    #[test]
    fn conv_1d_dilated() {
        let x = iota(&[1, 1, 6]);
        let w = t(&[1, 1, 2], &[1., 1.]);
        let op = parse("Conv", vec![("dilations", ints(&[2]))], 1);
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[2., 4., 6., 8.]);
    }

    #[test]
    fn conv_rejects_bad_shapes() {
        let op = parse("Conv", vec![("group", AttrValue::Int(2))], 1);
        let x = iota(&[1, 3, 4, 4]);
        let w = iota(&[2, 1, 3, 3]);
        assert!(op.eval(&[Some(&x), Some(&w)]).is_err());
        let op = parse("Conv", vec![], 1);
        let w = iota(&[2, 3, 5, 5]);
        assert!(op.eval(&[Some(&x), Some(&w)]).is_err());
    }

    #[test]
    fn conv_transpose_basic_and_output_shape() {
        // ONNX test_convtranspose_1d.
        let x = t(&[1, 1, 3], &[0., 1., 2.]);
        let w = t(&[1, 2, 3], &[1.; 6]);
        let op = parse("ConvTranspose", vec![], 1);
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[0., 1., 3., 3., 2., 0., 1., 3., 3., 2.]);
        // SAME_UPPER with stride 2 gives in·stride cells, cropping at the end.
        let op = parse(
            "ConvTranspose",
            vec![
                ("auto_pad", AttrValue::String(b"SAME_UPPER".to_vec())),
                ("strides", ints(&[2])),
            ],
            1,
        );
        let w = t(&[1, 1, 3], &[1.; 3]);
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[0., 0., 1., 1., 3., 2.]);
        // An output_shape one larger than the full result is zero-filled at the end.
        let op = parse("ConvTranspose", vec![("output_shape", ints(&[6]))], 1);
        let y = run(&op, &[&x, &w]).remove(0);
        close(&y, &[0., 1., 3., 3., 2., 0.]);
    }

    #[test]
    fn max_pool_with_indices_and_ceil() {
        let x = iota(&[1, 1, 5, 5]);
        let op = parse(
            "MaxPool",
            vec![
                ("kernel_shape", ints(&[2, 2])),
                ("strides", ints(&[2, 2])),
                ("storage_order", AttrValue::Int(1)),
            ],
            2,
        );
        let out = run(&op, &[&x]);
        close(&out[0], &[6., 8., 16., 18.]);
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[6, 16, 8, 18]);
        let op = parse(
            "MaxPool",
            vec![
                ("kernel_shape", ints(&[2, 2])),
                ("strides", ints(&[2, 2])),
                ("ceil_mode", AttrValue::Int(1)),
            ],
            1,
        );
        let out = run(&op, &[&x]);
        close(&out[0], &[6., 8., 9., 16., 18., 19., 21., 23., 24.]);
        // The last window may not start in the end padding.
        let op = parse(
            "MaxPool",
            vec![
                ("kernel_shape", ints(&[1, 1])),
                ("strides", ints(&[2, 2])),
                ("ceil_mode", AttrValue::Int(1)),
            ],
            1,
        );
        assert_eq!(run(&op, &[&iota(&[1, 1, 2, 2])])[0].shape(), &[1, 1, 1, 1]);
    }

    #[test]
    fn max_pool_u8_and_nan() {
        let x = Tensor::from_vec(vec![1, 1, 3], vec![3u8, 9, 1]).unwrap();
        let op = parse("MaxPool", vec![("kernel_shape", ints(&[2]))], 1);
        assert_eq!(run(&op, &[&x])[0].as_slice::<u8>().unwrap(), &[9, 9]);
        let x = t(&[1, 1, 3], &[f32::NAN, 1., 2.]);
        close(&run(&op, &[&x])[0], &[1., 2.]);
    }

    #[test]
    fn average_pool_padding_modes() {
        let x = iota(&[1, 1, 3, 3]);
        let base = vec![
            ("kernel_shape", ints(&[2, 2])),
            ("pads", ints(&[1, 1, 0, 0])),
        ];
        let op = parse("AveragePool", base.clone(), 1);
        close(
            &run(&op, &[&x])[0],
            &[0., 0.5, 1.5, 1.5, 2., 3., 4.5, 5., 6.],
        );
        let mut inc = base;
        inc.push(("count_include_pad", AttrValue::Int(1)));
        let op = parse("AveragePool", inc, 1);
        close(
            &run(&op, &[&x])[0],
            &[0., 0.25, 0.75, 0.75, 2., 3., 2.25, 5., 6.],
        );
    }

    #[test]
    fn lp_and_global_pools() {
        let x = t(&[1, 1, 2, 2], &[3., -4., 0., 0.]);
        let op = parse(
            "LpPool",
            vec![("kernel_shape", ints(&[2, 2])), ("p", AttrValue::Int(2))],
            1,
        );
        close(&run(&op, &[&x])[0], &[5.]);
        close(&run(&parse("GlobalLpPool", vec![], 1), &[&x])[0], &[5.]);
        close(
            &run(&parse("GlobalAveragePool", vec![], 1), &[&x])[0],
            &[-0.25],
        );
        let y = run(&parse("GlobalMaxPool", vec![], 1), &[&x]).remove(0);
        assert_eq!(y.shape(), &[1, 1, 1, 1]);
        close(&y, &[3.]);
    }

    #[test]
    fn max_unpool_places_values() {
        let x = t(&[1, 1, 2, 2], &[5., 6., 7., 8.]);
        let i = Tensor::from_vec(vec![1, 1, 2, 2], vec![5i64, 7, 13, 15]).unwrap();
        let op = parse(
            "MaxUnpool",
            vec![("kernel_shape", ints(&[2, 2])), ("strides", ints(&[2, 2]))],
            1,
        );
        let y = run(&op, &[&x, &i]).remove(0);
        #[rustfmt::skip]
        close(&y, &[0., 0., 0., 0., 0., 5., 0., 6., 0., 0., 0., 0., 0., 7., 0., 8.]);
        let bad = Tensor::from_vec(vec![1, 1, 2, 2], vec![5i64, 7, 13, 16]).unwrap();
        assert!(matches!(
            op.eval(&[Some(&x), Some(&bad)]),
            Err(Error::Eval(_))
        ));
    }

    #[test]
    fn degenerate_operands_are_errors_or_empty() {
        let x = iota(&[1, 2, 4, 4]);
        let w = iota(&[2, 2, 1, 1]);
        let zero_strides = Window {
            kernel_shape: None,
            strides: vec![0, 0],
            dilations: vec![],
            pads: vec![],
            auto_pad: AutoPad::NotSet,
        };
        let conv = ConvOp::Conv {
            window: zero_strides.clone(),
            group: 1,
        };
        assert!(conv.eval(&[Some(&x), Some(&w)]).is_err());
        let plain = Window {
            strides: vec![],
            ..zero_strides
        };
        let conv = ConvOp::Conv {
            window: plain.clone(),
            group: 0,
        };
        assert!(conv.eval(&[Some(&x), Some(&w)]).is_err());
        let convt = ConvOp::ConvTranspose {
            window: plain,
            group: 0,
            output_padding: vec![],
            output_shape: None,
        };
        assert!(convt.eval(&[Some(&x), Some(&w)]).is_err());
        // An empty batch gives an empty result.
        let op = parse("Conv", vec![("pads", ints(&[1, 1, 1, 1]))], 1);
        let y = run(&op, &[&iota(&[0, 2, 4, 4]), &iota(&[3, 2, 3, 3])]).remove(0);
        assert_eq!(y.shape(), &[0, 3, 4, 4]);
        // A window entirely in the padding pools nothing.
        let op = parse(
            "MaxPool",
            vec![("kernel_shape", ints(&[1])), ("pads", ints(&[1, 0]))],
            2,
        );
        let out = run(&op, &[&t(&[1, 1, 1], &[7.])]);
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[f32::NEG_INFINITY, 7.]);
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[-1, 0]);
    }

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
