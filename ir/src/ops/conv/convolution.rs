//! `Conv`: grouped N-D convolution as im2col followed by a cache-blocked
//! matrix product, plus the operand checks `ConvTranspose` shares.

use super::kernel::{gemm, im2col, in_f64, zeroed};
use super::{ConvOp, check_float, check_group, parse_group, split_nc};
use crate::dispatch_float;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, check_arity, opt, req};
use crate::shape::{Shape, numel};
use crate::tensor::{Float, Tensor};
use crate::window::{Geom, Window};

/// Parses a `Conv` node.
pub(super) fn parse_conv(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    Ok(ConvOp::Conv {
        window: Window::parse(ctx.attrs, false)?,
        group: parse_group(ctx)?,
    })
}

/// The printed attributes of both convolutions' window and group.
pub(super) fn conv_attrs(window: &Window, group: usize, v: &mut Vec<(&'static str, String)>) {
    window.attrs(v);
    if group != 1 {
        v.push(("group", group.to_string()));
    }
}

/// The types of a convolution's `X`, `W` and optional `B`, checked for
/// arity and a shared float dtype.
pub(super) fn operand_types<'a>(
    inputs: &[Option<InferInput<'a>>],
) -> Result<(&'a TensorType, &'a TensorType, Option<&'a TensorType>)> {
    check_arity(inputs, 2, 3)?;
    let (x, w) = (req(inputs, 0, "X")?.ty, req(inputs, 1, "W")?.ty);
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
    Ok((x, w, b))
}

/// A convolution's `X`, `W` and optional `B`, checked for a shared dtype.
pub(super) fn operands<'a>(
    inputs: &[Option<&'a Tensor>],
) -> Result<(&'a Tensor, &'a Tensor, Option<&'a Tensor>)> {
    let (x, w, b) = (req(inputs, 0, "X")?, req(inputs, 1, "W")?, opt(inputs, 2));
    for t in std::iter::once(w).chain(b) {
        if t.dtype() != x.dtype() {
            return Err(Error::Type(format!(
                "operands have different dtypes {} and {}",
                x.dtype(),
                t.dtype()
            )));
        }
    }
    Ok((x, w, b))
}

/// Checks that `W` has `X`'s rank (both convolutions).
pub(super) fn check_weight_rank(x: &[usize], w: &[usize]) -> Result<()> {
    if w.len() != x.len() {
        return Err(Error::Shape(format!(
            "W has shape {w:?} but X has rank {}",
            x.len()
        )));
    }
    Ok(())
}

/// Checks that the optional bias has one value per output channel.
pub(super) fn check_bias(b: Option<&[usize]>, m: usize) -> Result<()> {
    match b {
        Some(b) if b != [m] => Err(Error::Shape(format!("B must have shape [{m}], got {b:?}"))),
        Some(_) | None => Ok(()),
    }
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
    check_weight_rank(x, w)?;
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

/// `Conv`'s output type.
pub(super) fn infer_conv(
    window: &Window,
    group: usize,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, w, b) = operand_types(inputs)?;
    let bshape = b.map(|b| b.shape.as_slice());
    let (_, shape) = conv_shape(window, group, &x.shape, &w.shape, bshape)?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Evaluates `Conv`.
pub(super) fn eval_conv(
    window: &Window,
    group: usize,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let (x, w, b) = operands(inputs)?;
    let (g, shape) = conv_shape(window, group, x.shape(), w.shape(), b.map(|b| b.shape()))?;
    let y = dispatch_float!(x.data(), _v, T => conv_typed::<T>(x, w, b, &g, group, shape)?,
        else return Err(Error::Type(format!("Conv on {}", x.dtype()))));
    Ok(vec![y])
}

fn conv_typed<T: Float>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    g: &Geom,
    group: usize,
    out_shape: Shape,
) -> Result<Tensor> {
    let (n, c, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cg, mg) = (c / group, m / group);
    let in_sz: usize = g.input.iter().product();
    let p: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let kdim = cg * kprod;
    // A 1×1 kernel with unit strides and no padding reads each input plane as is.
    let pointwise = g.kernel.iter().all(|&k| k == 1)
        && g.strides.iter().all(|&s| s == 1)
        && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0);
    in_f64::<T>(x, w, b, out_shape, p, |xv, wv, y| {
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
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::attrs::AttrValue;
    use crate::ops::OpDef;

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
}
