//! `ConvTranspose`: the gradient of `Conv` with respect to its input, as a
//! matrix product followed by col2im.

use super::convolution::{check_bias, check_weight_rank, operand_types, operands};
use super::kernel::{col2im, gemm, in_f64, zeroed};
use super::{ConvOp, check_group, parse_group, split_nc};
use crate::dispatch_float;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx};
use crate::shape::{Shape, numel};
use crate::tensor::{Float, Tensor};
use crate::window::{Geom, Window, usizes};

/// Parses a `ConvTranspose` node.
pub(super) fn parse_conv_transpose(ctx: &ParseCtx<'_>) -> Result<ConvOp> {
    let a = ctx.attrs;
    Ok(ConvOp::ConvTranspose {
        window: Window::parse(a, false)?,
        group: parse_group(ctx)?,
        output_padding: usizes(a, "output_padding", 0)?.unwrap_or_default(),
        output_shape: usizes(a, "output_shape", 0)?,
    })
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
    check_weight_rank(x, w)?;
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

/// `ConvTranspose`'s output type.
pub(super) fn infer_conv_transpose(
    window: &Window,
    group: usize,
    output_padding: &[usize],
    output_shape: Option<&[usize]>,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let (x, w, b) = operand_types(inputs)?;
    let (_, shape) = conv_transpose_shape(
        window,
        group,
        output_padding,
        output_shape,
        &x.shape,
        &w.shape,
        b.map(|b| b.shape.as_slice()),
    )?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}

/// Evaluates `ConvTranspose`.
pub(super) fn eval_conv_transpose(
    window: &Window,
    group: usize,
    output_padding: &[usize],
    output_shape: Option<&[usize]>,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>> {
    let (x, w, b) = operands(inputs)?;
    let (g, shape) = conv_transpose_shape(
        window,
        group,
        output_padding,
        output_shape,
        x.shape(),
        w.shape(),
        b.map(|b| b.shape()),
    )?;
    let y = dispatch_float!(x.data(), _v, T => conv_transpose_typed::<T>(x, w, b, &g, group, shape)?,
        else return Err(Error::Type(format!("ConvTranspose on {}", x.dtype()))));
    Ok(vec![y])
}

fn conv_transpose_typed<T: Float>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    g: &Geom,
    group: usize,
    out_shape: Shape,
) -> Result<Tensor> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let (cg, mg) = (c / group, w.shape()[1]);
    let m = out_shape[1];
    let p: usize = g.input.iter().product();
    let out_sz: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let kdim = mg * kprod;
    in_f64::<T>(x, w, b, out_shape, out_sz, |xv, wv, y| {
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
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::attrs::AttrValue;

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
}
