//! The pools: `MaxPool`, `AveragePool` and `LpPool` over a window, and their
//! `Global*` forms over all spatial axes. The windowed pools precompute, per
//! output position, the flat offsets of the input elements their window
//! covers ([`PoolTable`]) and reuse that table for every `N × C` plane.

use super::kernel::unravel;
use super::{ConvOp, PoolFn, check_float, split_nc};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, req};
use crate::shape::{Shape, for_each_index, numel, strides};
use crate::tensor::{Elem, Float, Tensor};
use crate::window::{Geom, Window};
use crate::{dispatch_float, dispatch_int};

/// LpPool's `p`: a float in opset 1 and an int afterwards; both read as float.
fn parse_p(ctx: &ParseCtx<'_>) -> Result<f32> {
    let p = ctx.attrs.float("p", 2.0)?;
    if !(p.is_finite() && p > 0.0) {
        return Err(Error::attr("p", format!("must be positive, got {p}")));
    }
    Ok(p)
}

/// A windowed pool with the function `f` and the shared window attributes.
fn windowed(ctx: &ParseCtx<'_>, f: PoolFn, indices: bool) -> Result<ConvOp> {
    Ok(ConvOp::Pool {
        f,
        window: Window::parse(ctx.attrs, true)?,
        ceil_mode: ctx.attrs.int("ceil_mode", 0)? != 0,
        indices,
    })
}

/// Parses a `MaxPool` node.
pub(super) fn parse_max_pool(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    let order = ctx.attrs.int("storage_order", 0)?;
    if order != 0 && order != 1 {
        return Err(Error::attr(
            "storage_order",
            format!("must be 0 or 1, got {order}"),
        ));
    }
    let f = PoolFn::Max {
        column_major: order == 1,
    };
    windowed(ctx, f, ctx.num_outputs > 1)
}

/// Parses an `AveragePool` node.
pub(super) fn parse_average_pool(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    let f = PoolFn::Average {
        count_include_pad: ctx.attrs.int("count_include_pad", 0)? != 0,
    };
    windowed(ctx, f, false)
}

/// Parses an `LpPool` node.
pub(super) fn parse_lp_pool(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    windowed(ctx, PoolFn::Lp { p: parse_p(ctx)? }, false)
}

/// Parses a `GlobalMaxPool` node.
pub(super) fn parse_global_max_pool(_ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    Ok(ConvOp::GlobalPool {
        f: PoolFn::Max {
            column_major: false,
        },
    })
}

/// Parses a `GlobalAveragePool` node.
pub(super) fn parse_global_average_pool(_ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    Ok(ConvOp::GlobalPool {
        f: PoolFn::Average {
            count_include_pad: false,
        },
    })
}

/// Parses a `GlobalLpPool` node.
pub(super) fn parse_global_lp_pool(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    Ok(ConvOp::GlobalPool {
        f: PoolFn::Lp { p: parse_p(ctx)? },
    })
}

/// The printed attributes of a pooling function.
pub(super) fn pool_fn_attrs(f: PoolFn, v: &mut Vec<(&'static str, String)>) {
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

/// A windowed pool: the geometry and output shape.
fn pool_shape(window: &Window, ceil_mode: bool, x: &[usize]) -> Result<(Geom, Shape)> {
    let (n, c, spatial) = split_nc(x, "X", 1)?;
    let kernel = window.kernel_shape.clone().unwrap_or_default();
    let g = window.resolve(spatial, &kernel, ceil_mode)?;
    let mut out = vec![n, c];
    out.extend_from_slice(&g.out);
    numel(&out)?;
    Ok((g, out))
}

/// A global pool: `N × C × 1 × … × 1`, and the spatial plane it reduces.
fn global_pool_shape(x: &[usize]) -> Result<(Shape, &[usize])> {
    let (n, c, spatial) = split_nc(x, "X", 0)?;
    let mut shape = vec![n, c];
    shape.extend(spatial.iter().map(|_| 1));
    Ok((shape, spatial))
}

/// A windowed pool's output types (values, and MaxPool's indices if wanted).
pub(super) fn infer_pool(
    f: PoolFn,
    window: &Window,
    ceil_mode: bool,
    indices: bool,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = req(inputs, 0, "X")?.ty;
    check_pool_dtype(f, x.dtype)?;
    let (_, shape) = pool_shape(window, ceil_mode, &x.shape)?;
    let mut out = vec![TensorType::new(x.dtype, shape.clone())];
    if indices {
        out.push(TensorType::new(DType::I64, shape));
    }
    Ok(out)
}

/// A global pool's output type.
pub(super) fn infer_global_pool(inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
    check_arity(inputs, 1, 1)?;
    let x = req(inputs, 0, "X")?.ty;
    check_float(x.dtype, "X")?;
    let (shape, _) = global_pool_shape(&x.shape)?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Evaluates a windowed pool (`name` is the op's, for errors).
pub(super) fn eval_pool(
    name: &str,
    f: PoolFn,
    window: &Window,
    ceil_mode: bool,
    indices: bool,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let x = req(inputs, 0, "X")?;
    check_pool_dtype(f, x.dtype())?;
    let (g, shape) = pool_shape(window, ceil_mode, x.shape())?;
    let planes = x.shape()[0] * x.shape()[1];
    match f {
        PoolFn::Max { column_major } => {
            dispatch_float!(x.data(), v, T => max_pool::<T>(v, planes, &g, shape, column_major, indices),
                else dispatch_int!(x.data(), v, T => max_pool::<T>(v, planes, &g, shape, column_major, indices),
                    else Err(Error::Type(format!("MaxPool on {}", x.dtype())))))
        }
        PoolFn::Average { .. } | PoolFn::Lp { .. } => Ok(vec![dispatch_float!(x.data(), v, T =>
            avg_lp_pool::<T>(v, planes, &g, shape, f)?,
            else return Err(Error::Type(format!("{name} on {}", x.dtype()))))]),
    }
}

/// Evaluates a global pool (`name` is the op's, for errors).
pub(super) fn eval_global_pool(
    name: &str,
    f: PoolFn,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let x = req(inputs, 0, "X")?;
    let (shape, spatial) = global_pool_shape(x.shape())?;
    let planes = shape[0] * shape[1];
    let plane = numel(spatial)?;
    Ok(vec![
        dispatch_float!(x.data(), v, T => global_pool::<T>(v, planes, plane, shape, f)?,
        else return Err(Error::Type(format!("{name} on {}", x.dtype())))),
    ])
}

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

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::attrs::AttrValue;
    use crate::tensor::Tensor;

    #[test]
    fn max_pool_with_indices_and_ceil() {
        // A MaxPool of stride 2 with `kernel` and the attribute `extra`.
        let max_pool = |kernel: &[i64], extra: (&str, AttrValue), outputs: usize| {
            parse(
                "MaxPool",
                vec![
                    ("kernel_shape", ints(kernel)),
                    ("strides", ints(&[2, 2])),
                    extra,
                ],
                outputs,
            )
        };
        let x = iota(&[1, 1, 5, 5]);
        let op = max_pool(&[2, 2], ("storage_order", AttrValue::Int(1)), 2);
        let out = run(&op, &[&x]);
        close(&out[0], &[6., 8., 16., 18.]);
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[6, 16, 8, 18]);
        let op = max_pool(&[2, 2], ("ceil_mode", AttrValue::Int(1)), 1);
        let out = run(&op, &[&x]);
        close(&out[0], &[6., 8., 9., 16., 18., 19., 21., 23., 24.]);
        // The last window may not start in the end padding.
        let op = max_pool(&[1, 1], ("ceil_mode", AttrValue::Int(1)), 1);
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
}
