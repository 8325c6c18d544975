//! The integer convolutions: `ConvInteger` (zero points, `i32` result) and
//! `QLinearConv` (scales and zero points, requantized result). Both resolve
//! their window like `Conv` (see [`crate::window`]) and run as im2col plus the
//! wrapping `i32` matmul kernel of [`linalg`](crate::ops::linalg).

use super::{
    Quant, check_zero_point, int8_dtype, named_types, operand_types, operands, requantize,
    with_types,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::linalg::matmul_acc;
use crate::ops::{InferInput, ParseCtx, check_arity, fmt_list, opt, req};
use crate::shape::{Shape, numel};
use crate::tensor::Tensor;
use crate::window::{AutoPad, Window, usizes};
use crate::{shape_err, type_err};

/// The attributes of `ConvInteger` and `QLinearConv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvAttrs {
    /// Padding mode.
    pub auto_pad: AutoPad,
    /// Spatial kernel dims, if given (must match the weights).
    pub kernel_shape: Option<Vec<usize>>,
    /// Spatial strides (default 1).
    pub strides: Option<Vec<usize>>,
    /// Spatial dilations (default 1).
    pub dilations: Option<Vec<usize>>,
    /// Begin pads then end pads (default 0), with `auto_pad = NOTSET`.
    pub pads: Option<Vec<usize>>,
    /// Channel groups.
    pub group: usize,
}

/// The names of `QLinearConv`'s eight required operands, in order (the
/// optional ninth is the bias `B`).
pub const QLINEAR_CONV_OPERANDS: [&str; 8] = [
    "x",
    "x_scale",
    "x_zero_point",
    "w",
    "w_scale",
    "w_zero_point",
    "y_scale",
    "y_zero_point",
];

/// Parses a `ConvInteger` node.
pub(super) fn parse_conv_integer(ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::ConvInteger(parse_conv(ctx)?))
}

/// Parses a `QLinearConv` node.
pub(super) fn parse_qlinear_conv(ctx: &ParseCtx<'_>) -> Result<Quant> {
    Ok(Quant::QLinearConv(parse_conv(ctx)?))
}

/// Reads the attributes `ConvInteger` and `QLinearConv` share.
fn parse_conv(ctx: &ParseCtx<'_>) -> Result<ConvAttrs> {
    let a = ctx.attrs;
    let auto_pad = AutoPad::parse(a)?;
    let list = |name: &str, min: i64| usizes(a, name, min);
    let group = a.int("group", 1)?;
    if group < 1 {
        return Err(Error::attr(
            "group",
            format!("must be positive, got {group}"),
        ));
    }
    Ok(ConvAttrs {
        auto_pad,
        kernel_shape: list("kernel_shape", 1)?,
        strides: list("strides", 1)?,
        dilations: list("dilations", 1)?,
        pads: list("pads", 0)?,
        group: group as usize,
    })
}

/// The resolved geometry of a convolution.
#[derive(Clone, Debug)]
struct ConvGeom {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    in_sp: Vec<usize>,
    k_sp: Vec<usize>,
    out_sp: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<usize>,
}

impl ConvAttrs {
    /// The window these attributes describe, resolved like `Conv`'s
    /// (explicit pads count only with auto_pad NOTSET, as the spec says).
    pub fn window(&self) -> Window {
        Window {
            kernel_shape: self.kernel_shape.clone(),
            strides: self.strides.clone().unwrap_or_default(),
            dilations: self.dilations.clone().unwrap_or_default(),
            pads: match self.auto_pad {
                AutoPad::NotSet => self.pads.clone().unwrap_or_default(),
                _ => vec![],
            },
            auto_pad: self.auto_pad,
        }
    }

    /// Resolves the geometry for `x` and `w` the way `Conv` does.
    fn geom(&self, x: &[usize], w: &[usize]) -> Result<ConvGeom> {
        if x.len() < 3 || w.len() != x.len() {
            shape_err!(
                "convolution needs x [N, C, spatial...] and w [M, C/group, kernel...] of the same rank ≥ 3, got {x:?} and {w:?}"
            );
        }
        let (n, c, m) = (x[0], x[1], w[0]);
        let g = self.group;
        if w[1] * g != c || !m.is_multiple_of(g) {
            shape_err!("channels do not fit group {g}: x {x:?}, w {w:?}");
        }
        let k_sp = w[2..].to_vec();
        if let Some(ks) = &self.kernel_shape
            && ks != &k_sp
        {
            shape_err!("kernel_shape {ks:?} differs from the weights' {k_sp:?}");
        }
        let window = self.window();
        if let Some(i) = k_sp.iter().position(|&k| k == 0) {
            shape_err!("kernel has a zero-sized spatial axis {i}");
        }
        let geom = window.resolve(&x[2..], &k_sp, false)?;
        let pad_begin = geom
            .pad_begin
            .iter()
            .map(|&p| usize::try_from(p).map_err(|_| Error::Shape(format!("negative pad {p}"))))
            .collect::<Result<Vec<usize>>>()?;
        let (in_sp, out_sp, strides, dilations) =
            (geom.input, geom.out, geom.strides, geom.dilations);
        // The output and the im2col buffer must be addressable.
        let kprod = numel(&k_sp)?;
        let mut out = vec![n, m];
        out.extend_from_slice(&out_sp);
        numel(&out)?;
        numel(&[c / g, kprod, numel(&out_sp)?])?;
        Ok(ConvGeom {
            n,
            c,
            m,
            group: g,
            in_sp,
            k_sp,
            out_sp,
            strides,
            dilations,
            pad_begin,
        })
    }

    /// The printed attributes.
    pub(super) fn attrs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![];
        if self.auto_pad != AutoPad::NotSet {
            v.push(("auto_pad", self.auto_pad.name().to_string()));
        }
        for (name, val) in [
            ("kernel_shape", &self.kernel_shape),
            ("strides", &self.strides),
            ("dilations", &self.dilations),
            ("pads", &self.pads),
        ] {
            if let Some(val) = val {
                v.push((name, fmt_list(val)));
            }
        }
        if self.group != 1 {
            v.push(("group", self.group.to_string()));
        }
        v
    }
}

impl ConvGeom {
    /// `N × M × output spatial…`.
    fn out_shape(&self) -> Shape {
        let mut s = vec![self.n, self.m];
        s.extend_from_slice(&self.out_sp);
        s
    }

    /// One product per output element, input channel of its group and kernel cell.
    fn macs(&self) -> u64 {
        let out: u64 = self.out_shape().iter().map(|&d| d as u64).product();
        let kp: u64 = self.k_sp.iter().map(|&d| d as u64).product();
        out.saturating_mul((self.c / self.group) as u64)
            .saturating_mul(kp)
    }
}

/// Every multi-index of `dims` in row-major order.
fn multi_indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        out.push(idx.clone());
        for ax in (0..dims.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}

/// Direct convolution of zero-point-adjusted `i32` data via im2col and the
/// matmul kernel. Padding contributes 0, i.e. the zero point before the
/// adjustment, as the spec requires.
fn conv_i32(x: &[i32], w: &[i32], g: &ConvGeom) -> Vec<i32> {
    let cg = g.c / g.group;
    let mg = g.m / g.group;
    let kprod: usize = g.k_sp.iter().product();
    let iprod: usize = g.in_sp.iter().product();
    let oprod: usize = g.out_sp.iter().product();
    let kidx = multi_indices(&g.k_sp);
    let oidx = multi_indices(&g.out_sp);
    let nd = g.in_sp.len();
    // For each (kernel position, output position), the input offset or None
    // when it falls into the padding.
    let mut src: Vec<Option<usize>> = Vec::with_capacity(kprod * oprod);
    for kv in &kidx {
        for ov in &oidx {
            let mut flat = 0usize;
            let mut inside = true;
            for d in 0..nd {
                let p = ov[d] * g.strides[d] + kv[d] * g.dilations[d];
                if p < g.pad_begin[d] || p - g.pad_begin[d] >= g.in_sp[d] {
                    inside = false;
                    break;
                }
                flat = flat * g.in_sp[d] + (p - g.pad_begin[d]);
            }
            src.push(inside.then_some(flat));
        }
    }
    let mut y = vec![0i32; g.n * g.m * oprod];
    let mut col = vec![0i32; cg * kprod * oprod];
    for ni in 0..g.n {
        for gi in 0..g.group {
            for ci in 0..cg {
                let xc = &x[(ni * g.c + gi * cg + ci) * iprod..][..iprod];
                let rows = &mut col[ci * kprod * oprod..(ci + 1) * kprod * oprod];
                for (dst, s) in rows.iter_mut().zip(&src) {
                    *dst = s.map(|i| xc[i]).unwrap_or(0);
                }
            }
            let wg = &w[gi * mg * cg * kprod..(gi + 1) * mg * cg * kprod];
            let yg = &mut y[(ni * g.m + gi * mg) * oprod..(ni * g.m + (gi + 1) * mg) * oprod];
            matmul_acc(mg, cg * kprod, oprod, wg, &col, yg);
        }
    }
    y
}

/// Checks a per-tensor parameter (a scalar or a one-element vector).
fn per_tensor(t: &TensorType, what: &str) -> Result<()> {
    if numel(&t.shape)? != 1 || t.shape.len() > 1 {
        shape_err!("{what} must be a scalar, got {:?}", t.shape);
    }
    Ok(())
}

/// Checks a per-tensor or per-output-channel parameter.
fn per_channel(t: &TensorType, m: usize, what: &str) -> Result<()> {
    if !(t.shape.len() <= 1 && (numel(&t.shape)? == 1 || t.shape == [m])) {
        shape_err!(
            "{what} must be a scalar or have {m} elements, got {:?}",
            t.shape
        );
    }
    Ok(())
}

/// Checks `ConvInteger`'s operands and resolves its geometry.
fn conv_integer_geom(ca: &ConvAttrs, ins: &[Option<&TensorType>]) -> Result<ConvGeom> {
    check_arity(ins, 2, 4)?;
    let (x, w) = (req(ins, 0, "x")?, req(ins, 1, "w")?);
    int8_dtype(x.dtype, "x")?;
    int8_dtype(w.dtype, "w")?;
    let g = ca.geom(&x.shape, &w.shape)?;
    if let Some(z) = check_zero_point(opt(ins, 2), x, "x_zero_point", "x")? {
        per_tensor(z, "x_zero_point")?;
    }
    if let Some(z) = check_zero_point(opt(ins, 3), w, "w_zero_point", "w")? {
        per_channel(z, g.m, "w_zero_point")?;
    }
    Ok(g)
}

/// Checks `QLinearConv`'s operands and resolves its geometry.
fn qlinear_conv_geom(ca: &ConvAttrs, ins: &[Option<&TensorType>]) -> Result<ConvGeom> {
    check_arity(ins, 8, 9)?;
    let names = QLINEAR_CONV_OPERANDS;
    let t = named_types(ins, &names)?;
    int8_dtype(t[0].dtype, "x")?;
    int8_dtype(t[3].dtype, "w")?;
    int8_dtype(t[7].dtype, "y_zero_point")?;
    if t[2].dtype != t[0].dtype || t[5].dtype != t[3].dtype {
        type_err!("zero points must have their operand's type");
    }
    for i in [1, 4, 6] {
        if t[i].dtype != DType::F32 {
            type_err!("{} must be f32, got {}", names[i], t[i].dtype);
        }
    }
    let g = ca.geom(&t[0].shape, &t[3].shape)?;
    per_tensor(t[1], "x_scale")?;
    per_tensor(t[2], "x_zero_point")?;
    per_channel(t[4], g.m, "w_scale")?;
    per_channel(t[5], g.m, "w_zero_point")?;
    per_tensor(t[6], "y_scale")?;
    per_tensor(t[7], "y_zero_point")?;
    if let Some(b) = opt(ins, 8)
        && (b.dtype != DType::I32 || b.shape != [g.m])
    {
        shape_err!("B must be i32[{}], got {b}", g.m);
    }
    Ok(g)
}

/// `x - zero_point` for a per-tensor zero point.
fn sub_scalar_zp(t: &Tensor, zp: Option<&Tensor>) -> Vec<i32> {
    let z = zp
        .map(|z| z.to_i64_vec().first().copied().unwrap_or(0) as i32)
        .unwrap_or(0);
    t.to_i64_vec()
        .into_iter()
        .map(|x| (x as i32).wrapping_sub(z))
        .collect()
}

/// `w - zero_point` for a per-tensor or per-output-channel zero point.
fn sub_channel_zp(w: &Tensor, zp: Option<&Tensor>, m: usize) -> Vec<i32> {
    let v: Vec<i32> = w.to_i64_vec().into_iter().map(|x| x as i32).collect();
    let Some(zp) = zp else { return v };
    let zv = zp.to_i64_vec();
    let per = v.len() / m.max(1);
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            x.wrapping_sub(if zv.len() == 1 {
                zv[0]
            } else {
                zv[i / per.max(1)]
            } as i32)
        })
        .collect()
}

/// `ConvInteger`'s output type.
pub(super) fn infer_conv_integer(
    c: &ConvAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let g = conv_integer_geom(c, &operand_types(inputs))?;
    Ok(vec![TensorType::new(DType::I32, g.out_shape())])
}

/// `QLinearConv`'s output type.
pub(super) fn infer_qlinear_conv(
    c: &ConvAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    let tys = operand_types(inputs);
    let g = qlinear_conv_geom(c, &tys)?;
    Ok(vec![TensorType::new(
        req(&tys, 7, "y_zero_point")?.dtype,
        g.out_shape(),
    )])
}

/// Evaluates `ConvInteger`.
pub(super) fn eval_conv_integer(c: &ConvAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let g = with_types(inputs, |tys| conv_integer_geom(c, tys))?;
    let xv = sub_scalar_zp(req(inputs, 0, "x")?, opt(inputs, 2));
    let wv = sub_channel_zp(req(inputs, 1, "w")?, opt(inputs, 3), g.m);
    Ok(vec![Tensor::from_vec(
        g.out_shape(),
        conv_i32(&xv, &wv, &g),
    )?])
}

/// Evaluates `QLinearConv`.
pub(super) fn eval_qlinear_conv(c: &ConvAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let g = with_types(inputs, |tys| qlinear_conv_geom(c, tys))?;
    let t = operands(inputs, 8)?;
    let xv = sub_scalar_zp(t[0], Some(t[2]));
    let wv = sub_channel_zp(t[3], Some(t[5]), g.m);
    let mut acc = conv_i32(&xv, &wv, &g);
    let oprod: usize = g.out_sp.iter().product();
    let channel = |i: usize| (i / oprod.max(1)) % g.m.max(1);
    if let Some(b) = opt(inputs, 8) {
        let bv = b.as_slice::<i32>()?;
        for (i, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(bv[channel(i)]);
        }
    }
    let r32 = |v: f64| v as f32 as f64;
    let (sx, sw, sy) = (
        t[1].to_f64_vec()[0],
        t[4].to_f64_vec(),
        t[6].to_f64_vec()[0],
    );
    let zy = t[7].to_f64_vec()[0];
    let mult: Vec<f64> = (0..g.m)
        .map(|m| r32(r32(sx * sw[if sw.len() == 1 { 0 } else { m }]) / sy))
        .collect();
    let y = requantize(&acc, |i| mult[channel(i)], |_| zy, t[7].dtype())?;
    Ok(vec![Tensor::from_vec(g.out_shape(), y)?.cast(t[7].dtype())])
}

/// The work of a convolution whose weights are operand `w`.
pub(super) fn macs_conv(c: &ConvAttrs, inputs: &[Option<&TensorType>], w: usize) -> u64 {
    match (opt(inputs, 0), opt(inputs, w)) {
        (Some(x), Some(w)) => c.geom(&x.shape, &w.shape).map(|g| g.macs()).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::attrs::AttrValue;

    #[test]
    fn conv_integer_pads_with_the_zero_point() {
        let c = parse(
            "ConvInteger",
            10,
            vec![("pads", AttrValue::Ints(vec![1, 1, 1, 1]))],
        )
        .unwrap();
        let x = t(&[1, 1, 2, 2], &[2u8, 3, 4, 5]);
        let w = t(&[1, 1, 2, 2], &[1u8, 1, 1, 1]);
        let zp = t(&[], &[1u8]);
        let y = run(&c, &[Some(&x), Some(&w), Some(&zp)]).unwrap().remove(0);
        // x - 1 = [[1,2],[3,4]] padded with zeros, summed over 2x2 windows.
        assert_eq!(y, t(&[1, 1, 3, 3], &[1i32, 3, 2, 4, 10, 6, 3, 7, 4]));
        let same = parse(
            "ConvInteger",
            10,
            vec![("auto_pad", AttrValue::String(b"SAME_UPPER".to_vec()))],
        )
        .unwrap();
        let y = run(&same, &[Some(&x), Some(&w), Some(&zp)])
            .unwrap()
            .remove(0);
        assert_eq!(y, t(&[1, 1, 2, 2], &[10i32, 6, 7, 4]));
    }

    #[test]
    fn qlinear_conv_per_channel() {
        let c = parse("QLinearConv", 10, vec![]).unwrap();
        let x = t(&[1, 1, 1, 2], &[10u8, 20]);
        let w = t(&[2, 1, 1, 1], &[1i8, 2]);
        let (s1, z0) = (t(&[], &[1.0f32]), t(&[], &[0u8]));
        let ws = t(&[2], &[1.0f32, 0.5]);
        let wz = t(&[2], &[0i8, 0]);
        let ys = t(&[], &[2.0f32]);
        let b = t(&[2], &[1i32, 0]);
        let ins = [
            Some(&x),
            Some(&s1),
            Some(&z0),
            Some(&w),
            Some(&ws),
            Some(&wz),
            Some(&ys),
            Some(&z0),
            Some(&b),
        ];
        // channel 0: (x + 1) / 2 -> [5.5, 10.5] -> [6, 10]; channel 1: 2x * 0.5 / 2 -> [5, 10]
        assert_eq!(
            run(&c, &ins).unwrap().remove(0),
            t(&[1, 2, 1, 2], &[6u8, 10, 5, 10])
        );
    }
}
