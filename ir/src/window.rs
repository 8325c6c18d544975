//! The window geometry of the convolutions and pools, defined once.
//!
//! `Conv`, `ConvTranspose`, the windowed pools and the quantized convolutions
//! (`ConvInteger`, `QLinearConv`) all slide a window over the spatial axes of
//! an `N × C × D1 × … × Dn` tensor. [`Window`] holds the attributes that
//! describe the window and [`Geom`] the geometry they resolve to for one input
//! shape (kernel, strides, dilations, begin/end pads, output size). Shape
//! inference, the reference evaluation and the lowering to kernel IR all go
//! through [`Window::resolve`] and [`Window::resolve_transpose`], so they
//! cannot disagree on a pad.

use crate::attrs::Attrs;
use crate::error::{Error, Result};
use crate::ops::fmt_list;
use crate::shape::{Shape, numel};

/// How padding is derived (the ONNX `auto_pad` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoPad {
    /// Explicit `pads` (default zero).
    NotSet,
    /// Pad so that `out = ceil(in / stride)`, the odd extra cell at the end.
    SameUpper,
    /// Pad so that `out = ceil(in / stride)`, the odd extra cell at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// Parses the `auto_pad` attribute (an empty string means NOTSET).
    pub fn parse(a: &Attrs) -> Result<AutoPad> {
        let s = a.string("auto_pad", "NOTSET")?;
        Ok(match s.as_str() {
            // Some old exporters write an empty string for the default.
            "NOTSET" | "" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            other => {
                return Err(Error::attr(
                    "auto_pad",
                    format!("'{other}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"),
                ));
            }
        })
    }

    /// The ONNX spelling.
    pub fn name(self) -> &'static str {
        match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
            AutoPad::Valid => "VALID",
        }
    }
}

/// The window attributes shared by the convolutions and the pools. Empty lists
/// stand for the defaults (ones for strides and dilations, zeros for pads),
/// whose length depends on the input's rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// `kernel_shape`; optional for the convolutions (taken from `W`).
    pub kernel_shape: Option<Vec<usize>>,
    /// Step between windows, per spatial axis.
    pub strides: Vec<usize>,
    /// Step between kernel taps, per spatial axis.
    pub dilations: Vec<usize>,
    /// `[x1_begin, x2_begin, …, x1_end, x2_end, …]`; ignored unless `auto_pad` is NOTSET.
    pub pads: Vec<usize>,
    /// How padding is derived.
    pub auto_pad: AutoPad,
}

/// A list-of-ints attribute whose values must all be at least `min`.
pub fn usizes(a: &Attrs, name: &str, min: i64) -> Result<Option<Vec<usize>>> {
    let Some(v) = a.ints_opt(name)? else {
        return Ok(None);
    };
    let out = v
        .iter()
        .map(|&x| {
            if x < min {
                return Err(Error::attr(
                    name,
                    format!("values must be at least {min}, got {x}"),
                ));
            }
            usize::try_from(x).map_err(|_| Error::attr(name, format!("value {x} is too large")))
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(Some(out))
}

impl Window {
    /// Parses the window attributes of a node; `kernel_required` for the pools.
    pub fn parse(a: &Attrs, kernel_required: bool) -> Result<Window> {
        let kernel_shape = usizes(a, "kernel_shape", 1)?;
        if kernel_required && kernel_shape.is_none() {
            return Err(Error::attr("kernel_shape", "is required"));
        }
        let auto_pad = AutoPad::parse(a)?;
        // `pads` may not be combined with auto_pad, but exporters write zeros
        // anyway; the derived pads win, as in onnxruntime.
        let pads = if auto_pad == AutoPad::NotSet {
            usizes(a, "pads", 0)?.unwrap_or_default()
        } else {
            vec![]
        };
        Ok(Window {
            kernel_shape,
            strides: usizes(a, "strides", 1)?.unwrap_or_default(),
            dilations: usizes(a, "dilations", 1)?.unwrap_or_default(),
            pads,
            auto_pad,
        })
    }

    /// Appends the attributes that differ from their defaults, for printing.
    pub fn attrs(&self, out: &mut Vec<(&'static str, String)>) {
        if let Some(k) = &self.kernel_shape {
            out.push(("kernel_shape", fmt_list(k)));
        }
        if !self.strides.is_empty() {
            out.push(("strides", fmt_list(&self.strides)));
        }
        if !self.dilations.is_empty() {
            out.push(("dilations", fmt_list(&self.dilations)));
        }
        if !self.pads.is_empty() {
            out.push(("pads", fmt_list(&self.pads)));
        }
        if self.auto_pad != AutoPad::NotSet {
            out.push(("auto_pad", self.auto_pad.name().to_string()));
        }
    }

    /// Checks an explicit `kernel_shape` against the kernel actually used.
    pub fn check_kernel(&self, kernel: &[usize]) -> Result<()> {
        match &self.kernel_shape {
            Some(k) if k.as_slice() != kernel => Err(Error::attr(
                "kernel_shape",
                format!("is {k:?} but the weights' kernel is {kernel:?}"),
            )),
            Some(_) | None => Ok(()),
        }
    }

    /// Strides and dilations, defaulted and checked against the spatial rank.
    pub fn steps(&self, n: usize) -> Result<(Vec<usize>, Vec<usize>)> {
        Ok((
            positive_steps(&self.strides, n, "strides")?,
            positive_steps(&self.dilations, n, "dilations")?,
        ))
    }

    /// The explicit pads as (begin, end), defaulted and checked.
    pub fn explicit_pads(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        if self.pads.is_empty() {
            return Ok((vec![0; n], vec![0; n]));
        }
        if self.pads.len() != 2 * n {
            return Err(Error::attr(
                "pads",
                format!(
                    "has {} values but the input has {n} spatial axes",
                    self.pads.len()
                ),
            ));
        }
        let conv = |v: &[usize]| v.iter().map(|&p| p as i64).collect::<Vec<i64>>();
        Ok((conv(&self.pads[..n]), conv(&self.pads[n..])))
    }

    /// Resolves the window for the spatial input shape `input` and the kernel
    /// `kernel` (pools: `ceil_mode` rounds the output size up).
    pub fn resolve(&self, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Geom> {
        let n = input.len();
        self.check_kernel(kernel)?;
        kernel_rank(kernel, n)?;
        let (strides, dilations) = self.steps(n)?;
        let (mut pad_begin, mut pad_end) = self.explicit_pads(n)?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (inp, s) = (input[i] as i128, strides[i] as i128);
            let ek = extent(kernel[i], dilations[i]);
            let o: i128 = match self.auto_pad {
                AutoPad::NotSet => {
                    let padded = inp + pad_begin[i] as i128 + pad_end[i] as i128;
                    if padded < ek {
                        return Err(Error::Shape(format!(
                            "spatial axis {i}: the window spans {ek} but the padded input has only {padded}"
                        )));
                    }
                    if ceil_mode {
                        let mut o = (padded - ek + s - 1) / s + 1;
                        // The last window must start inside the input or the
                        // begin padding, never in the end padding.
                        if (o - 1) * s >= inp + pad_begin[i] as i128 {
                            o -= 1;
                        }
                        o
                    } else {
                        (padded - ek) / s + 1
                    }
                }
                AutoPad::Valid => {
                    if inp < ek {
                        return Err(Error::Shape(format!(
                            "spatial axis {i}: the window spans {ek} but the input has only {inp} (auto_pad VALID)"
                        )));
                    }
                    (inp - ek) / s + 1
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let o = (inp + s - 1) / s;
                    let total = ((o - 1) * s + ek - inp).max(0);
                    let (small, big) = (total / 2, total - total / 2);
                    let (b, e) = if self.auto_pad == AutoPad::SameUpper {
                        (small, big)
                    } else {
                        (big, small)
                    };
                    pad_begin[i] = to_i64(b)?;
                    pad_end[i] = to_i64(e)?;
                    o
                }
            };
            out.push(to_usize(o)?);
        }
        Ok(Geom {
            input: input.to_vec(),
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pad_begin,
            pad_end,
            out,
        })
    }

    /// Resolves a `ConvTranspose` window: `input` is X's spatial size and
    /// `output_shape` the requested spatial output size, if any. The pads are
    /// the crop of the full result: from `output_shape` or `auto_pad` SAME
    /// (SAME_UPPER crops more at the end, every other mode more at the
    /// beginning; a target larger than the full result is zero-filled at the
    /// end, onnxruntime's choice), else the explicit pads.
    pub fn resolve_transpose(
        &self,
        input: &[usize],
        kernel: &[usize],
        output_padding: &[usize],
        output_shape: Option<&[usize]>,
    ) -> Result<Geom> {
        let nd = input.len();
        self.check_kernel(kernel)?;
        kernel_rank(kernel, nd)?;
        let (strides, dilations) = self.steps(nd)?;
        let opad = per_axis(output_padding, nd, 0, "output_padding")?;
        if let Some(s) = output_shape
            && s.len() != nd
        {
            return Err(Error::attr(
                "output_shape",
                format!("has {} values but the input has {nd} spatial axes", s.len()),
            ));
        }
        let same = matches!(self.auto_pad, AutoPad::SameUpper | AutoPad::SameLower);
        let (mut pad_begin, mut pad_end) =
            if self.auto_pad == AutoPad::NotSet && output_shape.is_none() {
                self.explicit_pads(nd)?
            } else {
                (vec![0; nd], vec![0; nd])
            };
        let mut out = Vec::with_capacity(nd);
        for i in 0..nd {
            let (inp, s) = (input[i] as i128, strides[i] as i128);
            // The size of the full (uncropped) result along this axis.
            let full = s * (inp - 1).max(0) + opad[i] as i128 + extent(kernel[i], dilations[i]);
            let target = match output_shape {
                Some(w) => Some(w[i] as i128),
                None if same => Some(inp * s),
                None => None,
            };
            let o = match target {
                Some(t) => {
                    let total = full - t;
                    let (b, e) = if total < 0 {
                        (0, total)
                    } else if self.auto_pad == AutoPad::SameUpper {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    };
                    pad_begin[i] = to_i64(b)?;
                    pad_end[i] = to_i64(e)?;
                    t
                }
                None => {
                    let o = full - pad_begin[i] as i128 - pad_end[i] as i128;
                    if o < 0 {
                        return Err(Error::Shape(format!(
                            "spatial axis {i}: the pads {} + {} exceed the output size {full}",
                            pad_begin[i], pad_end[i]
                        )));
                    }
                    o
                }
            };
            out.push(to_usize(o)?);
        }
        Ok(Geom {
            input: input.to_vec(),
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pad_begin,
            pad_end,
            out,
        })
    }
}

/// Checks that the kernel has one size per spatial axis (an empty kernel
/// too: a pool without `kernel_shape` has none).
fn kernel_rank(kernel: &[usize], n: usize) -> Result<()> {
    if kernel.len() != n {
        return Err(Error::attr(
            "kernel_shape",
            format!(
                "has {} values but the input has {n} spatial axes",
                kernel.len()
            ),
        ));
    }
    Ok(())
}

/// A per-spatial-axis attribute: empty means `default` everywhere.
pub fn per_axis(v: &[usize], n: usize, default: usize, name: &str) -> Result<Vec<usize>> {
    if v.is_empty() {
        return Ok(vec![default; n]);
    }
    if v.len() != n {
        return Err(Error::attr(
            name,
            format!("has {} values but the input has {n} spatial axes", v.len()),
        ));
    }
    Ok(v.to_vec())
}

/// Strides or dilations: per spatial axis (default 1) and never 0. Parsing
/// already rejects 0; this also covers ops built directly.
pub fn positive_steps(v: &[usize], n: usize, name: &str) -> Result<Vec<usize>> {
    let v = per_axis(v, n, 1, name)?;
    if v.contains(&0) {
        return Err(Error::attr(
            name,
            format!("values must be at least 1, got {v:?}"),
        ));
    }
    Ok(v)
}

/// The span of a dilated kernel axis, `(k - 1) * d + 1` (0 for an empty kernel).
pub fn extent(k: usize, d: usize) -> i128 {
    if k == 0 {
        0
    } else {
        (k as i128 - 1) * d as i128 + 1
    }
}

/// A computed window size as `usize`, or an overflow error.
pub fn to_usize(v: i128) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Overflow(format!("window size {v}")))
}

fn to_i64(v: i128) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Overflow(format!("padding {v}")))
}

/// A window resolved for one input shape (all vectors per spatial axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Geom {
    /// Spatial input size (for `ConvTranspose`: the spatial size of X).
    pub input: Vec<usize>,
    /// Kernel size.
    pub kernel: Vec<usize>,
    /// Step between windows.
    pub strides: Vec<usize>,
    /// Step between kernel taps.
    pub dilations: Vec<usize>,
    /// Padding before each axis; negative only for a `ConvTranspose` whose
    /// `output_shape` asks for more than the full result.
    pub pad_begin: Vec<i64>,
    /// Padding after each axis (a `ConvTranspose` crop when negative).
    pub pad_end: Vec<i64>,
    /// Spatial output size.
    pub out: Vec<usize>,
}

impl Geom {
    /// For spatial axis `d`, kernel tap `t` and output position `o`: the input
    /// coordinate the tap reads (for a convolution; the output coordinate it
    /// writes for a transposed one), or `None` when it falls in the padding.
    pub fn tap_map(&self, d: usize, transposed: bool) -> Vec<Vec<Option<usize>>> {
        let (s, dil, pb) = (
            self.strides[d] as i128,
            self.dilations[d] as i128,
            self.pad_begin[d] as i128,
        );
        let (n_pos, limit) = if transposed {
            (self.input[d], self.out[d])
        } else {
            (self.out[d], self.input[d])
        };
        (0..self.kernel[d])
            .map(|t| {
                (0..n_pos)
                    .map(|o| {
                        let pos = o as i128 * s + t as i128 * dil - pb;
                        if pos >= 0 && pos < limit as i128 {
                            Some(pos as usize)
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// `MaxUnpool`: the shape the indices address (the inverse of a max pool
/// with these `kernel`, `strides` and `pads` on `x`) and the output shape
/// (`output_shape` when given).
pub fn unpool_shape(
    kernel: &[usize],
    strides: &[usize],
    pads: &[usize],
    x: &[usize],
    output_shape: Option<&[i64]>,
) -> Result<(Shape, Shape)> {
    if x.len() < 3 {
        return Err(Error::Shape(format!(
            "X must have rank at least 3 (N × C × spatial…), got shape {x:?}"
        )));
    }
    let spatial = &x[2..];
    let nd = spatial.len();
    if kernel.len() != nd {
        return Err(Error::attr(
            "kernel_shape",
            format!("has {} values but X has {nd} spatial axes", kernel.len()),
        ));
    }
    let strides = positive_steps(strides, nd, "strides")?;
    let pads = if pads.is_empty() {
        vec![0; 2 * nd]
    } else {
        pads.to_vec()
    };
    if pads.len() != 2 * nd {
        return Err(Error::attr(
            "pads",
            format!("has {} values but X has {nd} spatial axes", pads.len()),
        ));
    }
    let mut inferred = x[..2].to_vec();
    for i in 0..nd {
        let o = (spatial[i] as i128 - 1).max(0) * strides[i] as i128 + kernel[i] as i128
            - pads[i] as i128
            - pads[nd + i] as i128;
        if o < 0 {
            return Err(Error::Shape(format!(
                "spatial axis {i}: the pads exceed the unpooled size"
            )));
        }
        inferred.push(to_usize(o)?);
    }
    numel(&inferred)?;
    let out = match output_shape {
        None => inferred.clone(),
        Some(s) => {
            if s.len() != x.len() {
                return Err(Error::Shape(format!(
                    "output_shape {s:?} must have X's rank {}",
                    x.len()
                )));
            }
            let out: Shape = s
                .iter()
                .map(|&d| {
                    usize::try_from(d)
                        .map_err(|_| Error::Shape(format!("output_shape {s:?} has a negative dim")))
                })
                .collect::<Result<_>>()?;
            // The indices address the inferred shape, which is placed at the
            // start of each axis of the requested one (the ONNX reference).
            if out.iter().zip(&inferred).any(|(o, i)| o < i) || out[..2] != inferred[..2] {
                return Err(Error::Shape(format!(
                    "output_shape {out:?} is smaller than the unpooled shape {inferred:?}"
                )));
            }
            numel(&out)?;
            out
        }
    };
    Ok((inferred, out))
}

#[cfg(test)]
mod tests {
    use super::AutoPad::{NotSet, SameLower, SameUpper, Valid};
    use super::*;

    /// One spatial axis: auto_pad, strides, dilations, pads, input, kernel,
    /// ceil_mode, then the expected (output, pad_begin, pad_end).
    type Case = (
        AutoPad,
        &'static [usize],
        &'static [usize],
        &'static [usize],
        usize,
        usize,
        bool,
        (usize, i64, i64),
    );

    fn win(auto_pad: AutoPad, strides: &[usize], dilations: &[usize], pads: &[usize]) -> Window {
        Window {
            kernel_shape: None,
            strides: strides.to_vec(),
            dilations: dilations.to_vec(),
            pads: pads.to_vec(),
            auto_pad,
        }
    }

    fn check(cases: &[Case]) {
        for &(ap, s, d, p, input, kernel, ceil, want) in cases {
            let g = win(ap, s, d, p).resolve(&[input], &[kernel], ceil).unwrap();
            let got = (g.out[0], g.pad_begin[0], g.pad_end[0]);
            assert_eq!(
                got, want,
                "{ap:?} s {s:?} d {d:?} pads {p:?} in {input} k {kernel}"
            );
        }
    }

    #[rustfmt::skip]
    #[test]
    fn valid() {
        check(&[
            (Valid, &[],  &[], &[], 5, 3, false, (3, 0, 0)),
            (Valid, &[2], &[], &[], 7, 3, false, (3, 0, 0)),
        ]);
        assert!(win(Valid, &[], &[], &[]).resolve(&[2], &[3], false).is_err());
    }

    #[rustfmt::skip]
    #[test]
    fn same_stride_1() {
        check(&[
            (SameUpper, &[], &[], &[], 5, 3, false, (5, 1, 1)),
            (SameLower, &[], &[], &[], 5, 3, false, (5, 1, 1)),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn same_stride_2() {
        check(&[
            // out = ceil(7 / 2) = 4; total pad (4 - 1) * 2 + 3 - 7 = 2.
            (SameUpper, &[2], &[], &[], 7, 3, false, (4, 1, 1)),
            // out = 3, total pad 1: the odd cell at the end (SAME_UPPER) or
            // at the beginning (SAME_LOWER).
            (SameUpper, &[2], &[], &[], 6, 3, false, (3, 0, 1)),
            (SameLower, &[2], &[], &[], 6, 3, false, (3, 1, 0)),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn explicit_2() {
        check(&[
            (NotSet, &[],  &[], &[2, 2], 5, 3, false, (7, 2, 2)),
            (NotSet, &[2], &[], &[1, 2], 5, 3, false, (3, 1, 2)),
        ]);
        assert!(win(NotSet, &[], &[], &[1]).resolve(&[5], &[3], false).is_err());
    }

    #[rustfmt::skip]
    #[test]
    fn dilations() {
        check(&[
            // A 3-tap kernel with dilation 2 spans 5 cells.
            (NotSet,    &[], &[2], &[], 7, 3, false, (3, 0, 0)),
            (SameUpper, &[], &[2], &[], 7, 3, false, (7, 2, 2)),
        ]);
        assert_eq!((extent(3, 2), extent(0, 2)), (5, 0));
    }

    #[rustfmt::skip]
    #[test]
    fn ceil_mode() {
        check(&[
            // floor((6 - 3) / 2) + 1 = 2; ceil gives 3.
            (NotSet, &[2], &[], &[],     6, 3, false, (2, 0, 0)),
            (NotSet, &[2], &[], &[],     6, 3, true,  (3, 0, 0)),
            // A last window that would start in the end padding is dropped.
            (NotSet, &[2], &[], &[0, 1], 5, 2, true,  (3, 0, 1)),
        ]);
    }

    #[test]
    fn rejects_zero_steps_and_wrong_ranks() {
        let bad = |s: &'static [usize], kernel: &[usize]| {
            win(NotSet, s, &[], &[]).resolve(&[5], kernel, false)
        };
        assert!(bad(&[0], &[3]).is_err());
        assert!(bad(&[1, 1], &[3]).is_err());
        assert!(bad(&[], &[3, 3]).is_err());
    }

    #[test]
    fn tap_map_skips_padding() {
        let g = win(NotSet, &[], &[], &[1, 1])
            .resolve(&[3], &[3], false)
            .unwrap();
        // The first tap of the first output reads the begin pad.
        assert_eq!(g.tap_map(0, false)[0], vec![None, Some(0), Some(1)]);
    }

    /// `ConvTranspose`, one axis: auto_pad, strides, pads, input, kernel,
    /// output_padding, output_shape, then (output, pad_begin, pad_end).
    type TCase = (
        AutoPad,
        &'static [usize],
        &'static [usize],
        usize,
        usize,
        usize,
        Option<usize>,
        (usize, i64, i64),
    );

    #[rustfmt::skip]
    #[test]
    fn transpose() {
        let cases: &[TCase] = &[
            // Full result: 2 * (3 - 1) + 3 = 7.
            (NotSet,    &[2], &[],     3, 3, 0, None,    (7, 0, 0)),
            (NotSet,    &[2], &[1, 1], 3, 3, 0, None,    (5, 1, 1)),
            // Output padding adds cells at the end of the full result.
            (NotSet,    &[2], &[],     3, 3, 1, None,    (8, 0, 0)),
            // SAME: out = in * stride; the crop of 1 goes to the end for
            // SAME_UPPER, to the beginning otherwise.
            (SameUpper, &[2], &[],     3, 3, 0, None,    (6, 0, 1)),
            (SameLower, &[2], &[],     3, 3, 0, None,    (6, 1, 0)),
            // An output_shape wins over explicit pads; a larger one zero-fills.
            (NotSet,    &[2], &[3, 3], 3, 3, 0, Some(5), (5, 1, 1)),
            (NotSet,    &[2], &[],     3, 3, 0, Some(9), (9, 0, -2)),
        ];
        for &(ap, s, p, input, kernel, opad, shape, want) in cases {
            let shape = shape.map(|s| vec![s]);
            let g = win(ap, s, &[], p).resolve_transpose(&[input], &[kernel], &[opad], shape.as_deref()).unwrap();
            assert_eq!((g.out[0], g.pad_begin[0], g.pad_end[0]), want, "{ap:?} s {s:?} pads {p:?} in {input}");
        }
        assert!(win(NotSet, &[2], &[], &[4, 4]).resolve_transpose(&[3], &[3], &[], None).is_err());
    }
}
