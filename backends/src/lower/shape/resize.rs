//! Lowering of Resize and Upsample: the crop (tf_crop_and_resize, also with a
//! run-time roi), nearest through an index map, linear as a multilinear
//! blend, cubic and antialiased modes through per-axis tap tables.

use smelt_ir::ops::layout::{CoordMode, InterpMode, Layout, ResizeAttrs, ResizeForm};
use smelt_ir::shape::strides;
use smelt_ir::{OpDef, Tensor};

use super::super::{NodeResult, Operand, flat_index, loop_nest};
use super::{Node, add0, axis_of, const_tensor, dtype_of, fill, i64_table, lit, mulk, remap};
use crate::kernel::build::{add, bin, cast, cmp, i, mul, select, sub, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt};

/// Lowers `Resize`.
pub(super) fn lower_resize(
    l: &Layout,
    r: &ResizeAttrs,
    node: Node<'_>,
    p: &mut Program,
) -> NodeResult {
    let Node { x, ins, out } = node;
    if out.numel() == 0 {
        return Ok(vec![]);
    }
    if x.numel() == 0 {
        return Err("Resize of an empty tensor".into());
    }
    let ev = r.extrapolation as f64;
    let fill_value = if out.ty.is_float() {
        Expr::F(ev, out.ty)
    } else {
        cast(
            out.ty,
            crate::kernel::build::un(crate::kernel::UnOp::Nearest, Expr::F(ev, Scalar::F64)),
        )
    };
    let runtime_roi = ins
        .get(1)
        .cloned()
        .flatten()
        .filter(|o| r.form == ResizeForm::Full && !matches!(o.buf, Buf::Const(_)));
    if let (CoordMode::TfCropAndResize, Some(roi)) = (r.coord, runtime_roi) {
        if r.mode != InterpMode::Linear || r.antialias {
            return Err(
                "tf_crop_and_resize with a run-time roi is lowered for linear mode only".into(),
            );
        }
        return resize_crop_runtime(l, r, ins, &x, &roi, out, p, fill_value);
    }
    let Some(crop) = resize_crop(
        l,
        ins,
        &x,
        out,
        p,
        r.coord == CoordMode::TfCropAndResize,
        ev,
    )?
    else {
        // Every output point is outside the crop.
        return Ok(fill(p, out, fill_value));
    };
    if r.mode == InterpMode::Nearest {
        // The remap fills the outside points itself.
        let maps = resize_maps(l, ins, &x, out, p, &crop)?;
        return Ok(remap(p, &x, out, &maps, fill_value));
    }
    let mut stmts = if crop.any_ext {
        fill(p, out, fill_value)
    } else {
        vec![]
    };
    stmts.extend(if r.mode == InterpMode::Linear && !r.antialias {
        resize_linear(l, ins, &x, out, p, &crop)?
    } else {
        resize_taps(l, ins, &x, out, p, &crop)?
    });
    Ok(stmts)
}

/// The multilinear blend of `x` around `base`: for each axis a pair of
/// offsets (low, high) and the weight of the high one, Σ over the 2ⁿ
/// corners of Π weights × x[corner].
pub(super) fn multilinear(
    base: &Expr,
    taps: &[(Expr, Expr, Expr)],
    x: &Operand,
    ty: Scalar,
) -> Expr {
    let mut value: Option<Expr> = None;
    for mask in 0..(1usize << taps.len()) {
        let mut at = base.clone();
        let mut weight: Option<Expr> = None;
        for (k, (a0, a1, w)) in taps.iter().enumerate() {
            let hi = mask & (1 << k) != 0;
            at = add0(at, if hi { a1.clone() } else { a0.clone() });
            let wk = if hi {
                w.clone()
            } else {
                sub(lit(1.0, ty), w.clone())
            };
            weight = Some(match weight {
                None => wk,
                Some(prev) => mul(prev, wk),
            });
        }
        let term = match weight {
            None => x.load(at),
            Some(wt) => mul(wt, x.load(at)),
        };
        value = Some(match value {
            None => term,
            Some(v) => add(v, term),
        });
    }
    value.unwrap_or_else(|| lit(0.0, ty))
}

/// The output region of a Resize that reads the input: with
/// `tf_crop_and_resize`, points outside the crop box take the extrapolation
/// value, and on each axis the inside points form one contiguous range.
pub(super) struct Crop {
    /// Flat output index of a point inside on every axis (probes read the
    /// maps of an axis through it).
    base: i64,
    /// Its coordinates.
    at: Vec<usize>,
    /// Per axis, the first inside position and the count.
    lo: Vec<usize>,
    cnt: Vec<usize>,
    /// Some point is outside.
    any_ext: bool,
}

impl Crop {
    /// The flat output index of the point that differs from `at` only in
    /// `o` on axis `ax`.
    fn along(&self, os: &[usize], ax: usize, o: usize) -> usize {
        (self.base + (o as i64 - self.at[ax] as i64) * os[ax] as i64) as usize
    }
}

/// Finds the inside region with a probe holding a constant other than the
/// extrapolation value; `None` when no point is inside.
pub(super) fn resize_crop(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &Program,
    crop: bool,
    ev: f64,
) -> Result<Option<Crop>, String> {
    let rank = out.shape.len();
    if !crop {
        return Ok(Some(Crop {
            base: 0,
            at: vec![0; rank],
            lo: vec![0; rank],
            cnt: out.shape.clone(),
            any_ext: false,
        }));
    }
    let c = if ev.is_finite() { ev + 1.0 } else { 0.0 };
    let probe = Tensor::from_vec(x.shape.clone(), vec![c; x.numel()]).map_err(|e| e.to_string())?;
    let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
    let ext = |v: f64| v == ev || (v.is_nan() && ev.is_nan());
    let Some(base) = got.iter().position(|&v| !ext(v)) else {
        return Ok(None);
    };
    let os = strides(&out.shape);
    let at: Vec<usize> = (0..rank)
        .map(|ax| (base / os[ax]) % out.shape[ax])
        .collect();
    let mut cr = Crop {
        base: base as i64,
        at,
        lo: vec![0; rank],
        cnt: vec![0; rank],
        any_ext: false,
    };
    for ax in 0..rank {
        let inside: Vec<usize> = (0..out.shape[ax])
            .filter(|&o| !ext(got[cr.along(&os, ax, o)]))
            .collect();
        let (lo, hi) = (inside[0], inside[inside.len() - 1]);
        if hi - lo + 1 != inside.len() {
            return Err("the crop region is not contiguous".into());
        }
        cr.lo[ax] = lo;
        cr.cnt[ax] = inside.len();
        cr.any_ext |= inside.len() != out.shape[ax];
    }
    Ok(Some(cr))
}

/// Linear `tf_crop_and_resize` with a run-time roi. The coordinate of output
/// point `y` on an axis is `c(y)·diff + start·(in - 1)`, where `c` is the
/// coordinate under the full roi (read off the interpreter with a probe) and
/// `diff`, `start` come from the roi at run time, rounded like the reference
/// (in f32 for an f32 roi). Taps and weights follow from the coordinate as
/// in [`resize_linear`]; points outside the input take the extrapolation value.
// Over 150 lines on purpose: the per-axis coordinate tables and the one blend
// loop share the run-time roi expressions; split, they would pass a dozen
// locals between helpers.
#[allow(clippy::too_many_arguments)]
pub(super) fn resize_crop_runtime(
    l: &Layout,
    r: &ResizeAttrs,
    ins: &[Option<Operand>],
    x: &Operand,
    roi: &Operand,
    out: &Operand,
    p: &mut Program,
    fill_value: Expr,
) -> NodeResult {
    if !x.ty.is_float() || !roi.ty.is_float() {
        return Err("tf_crop_and_resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let axes: Vec<usize> = match &r.axes {
        Some(a) => a
            .iter()
            .map(|&a| axis_of(a, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let na = axes.len();
    if roi.numel() != 2 * na {
        return Err("roi must have 2 entries per axis".into());
    }
    // Probes with the full roi.
    let mut full = vec![0.0f64; na];
    full.extend(vec![1.0f64; na]);
    let full = Tensor::from_vec(vec![2 * na], full).map_err(|e| e.to_string())?;
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    let ty = x.ty;
    // Per axis: the full-roi coordinate table, and the roi slot if cropped.
    let mut coords: Vec<Option<(Operand, Option<usize>)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let mut owned: Vec<Option<Tensor>> = Vec::new();
        let coord: Vec<f64> = (0..n)
            .map(|k| ((k / xs[ax]) % x.shape[ax]) as f64)
            .collect();
        owned.push(Some(
            Tensor::from_vec(x.shape.clone(), coord).map_err(|e| e.to_string())?,
        ));
        owned.push(Some(full.clone()));
        for o in ins.iter().skip(2) {
            owned.push(match o {
                Some(o) => Some(const_tensor(o, p)?),
                None => None,
            });
        }
        let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
        let res = l.eval(&refs).map_err(|e| e.to_string())?;
        let got = res[0].to_f64_vec();
        if res[0].shape() != out.shape.as_slice() {
            return Err("the probe's output shape differs from the inferred one".into());
        }
        let c: Vec<f64> = (0..out.shape[ax]).map(|o| got[o * os[ax]]).collect();
        let slot = axes.iter().position(|&a| a == ax);
        if slot.is_none()
            && out.shape[ax] == x.shape[ax]
            && c.iter().enumerate().all(|(o, &v)| v == o as f64)
        {
            coords.push(None);
            continue;
        }
        let t = Tensor::from_vec(vec![c.len()], c).map_err(|e| e.to_string())?;
        p.consts.push(t.to_le_bytes());
        let op = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![out.shape[ax]],
            ty: Scalar::F64,
        };
        coords.push(Some((op, slot)));
    }
    let f64c = |v: f64| Expr::F(v, Scalar::F64);
    let mut stmts = Vec::new();
    // diff and start·(in - 1) per cropped axis.
    let mut roi_vars: Vec<Option<(crate::kernel::Var, crate::kernel::Var)>> = vec![None; rank];
    for (ax, cv) in coords.iter().enumerate() {
        let Some((_, Some(slot))) = cv else { continue };
        let (dv, sv) = (p.var(Scalar::F64), p.var(Scalar::F64));
        let (st, en) = (roi.load(i(*slot as i64)), roi.load(i((na + slot) as i64)));
        let k = (x.shape[ax] as f64 - 1.0).max(0.0);
        stmts.push(Stmt::Set(dv, cast(Scalar::F64, sub(en, st.clone()))));
        stmts.push(Stmt::Set(
            sv,
            cast(Scalar::F64, mul(st, Expr::F(k, roi.ty))),
        ));
        roi_vars[ax] = Some((dv, sv));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    stmts.extend(loop_nest(p, &out.shape, |p, idx| {
        let mut pre = Vec::new();
        let mut base = i(0);
        let mut ext: Option<Expr> = None;
        let mut taps: Vec<(Expr, Expr, Expr)> = Vec::new();
        for (ax, cv) in coords.iter().enumerate() {
            let Some((table, _)) = cv else {
                base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64));
                continue;
            };
            let last = x.shape[ax] as i64 - 1;
            let xv = p.var(Scalar::F64);
            let c = table.load(idx[ax].clone());
            let coord = match roi_vars[ax] {
                Some((dv, sv)) => add(mul(c, var(dv)), var(sv)),
                None => c,
            };
            pre.push(Stmt::Set(xv, coord));
            let out_of = bin(
                BinOp::Or,
                cmp(CmpOp::Lt, var(xv), f64c(0.0)),
                cmp(CmpOp::Gt, var(xv), f64c(last as f64)),
            );
            ext = Some(match ext {
                None => out_of,
                Some(e) => bin(BinOp::Or, e, out_of),
            });
            let (fl, i0, i1, w) = (
                p.var(Scalar::F64),
                p.var(Scalar::I64),
                p.var(Scalar::I64),
                p.var(ty),
            );
            pre.push(Stmt::Set(
                fl,
                crate::kernel::build::un(crate::kernel::UnOp::Floor, var(xv)),
            ));
            pre.push(Stmt::Set(
                i0,
                bin(
                    BinOp::Max,
                    bin(BinOp::Min, cast(Scalar::I64, var(fl)), i(last)),
                    i(0),
                ),
            ));
            pre.push(Stmt::Set(i1, bin(BinOp::Min, add(var(i0), i(1)), i(last))));
            pre.push(Stmt::Set(w, cast(ty, sub(var(xv), var(fl)))));
            taps.push((
                mulk(var(i0), xs[ax] as i64),
                mulk(var(i1), xs[ax] as i64),
                var(w),
            ));
        }
        let value = multilinear(&base, &taps, &x_c, ty);
        pre.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value: match ext {
                Some(e) => select(e, fill_value.clone(), value),
                None => value,
            },
        });
        pre
    }));
    Ok(stmts)
}

/// Evaluates a Resize node with the reference interpreter on `probe` in
/// place of its data input (the other operands are compile-time constants).
pub(super) fn eval_probe(
    l: &Layout,
    ins: &[Option<Operand>],
    probe: Tensor,
    out: &Operand,
    p: &Program,
) -> Result<Tensor, String> {
    // The region of interest only matters to tf_crop_and_resize: elsewhere a
    // run-time roi is left out rather than refused.
    let roi_unused = matches!(l, Layout::Resize(r) | Layout::Upsample(r)
        if r.form == ResizeForm::Full && r.coord != CoordMode::TfCropAndResize);
    let mut owned: Vec<Option<Tensor>> = vec![Some(probe)];
    for (k, o) in ins.iter().enumerate().skip(1) {
        owned.push(match o {
            Some(o) if k == 1 && roi_unused && !matches!(o.buf, Buf::Const(_)) => None,
            Some(o) => Some(const_tensor(o, p)?),
            None => None,
        });
    }
    let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
    let res = l.eval(&refs).map_err(|e| e.to_string())?;
    let t = res.into_iter().next().ok_or("no output")?;
    if t.shape() != out.shape.as_slice() {
        return Err("the probe's output shape differs from the inferred one".into());
    }
    Ok(t)
}

/// Linear Resize (without antialias): per resized axis, each output position
/// blends two neighbouring inputs. The interpreter is run once per axis on
/// an input holding each element's coordinate along that axis; as the
/// weights of a position sum to 1, the output is the source coordinate
/// `c`, which gives the taps `floor(c)`, `floor(c) + 1` (clamped) and the
/// weight `c - floor(c)` exactly as the reference chooses them.
pub(super) fn resize_linear(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &mut Program,
    crop: &Crop,
) -> NodeResult {
    if !x.ty.is_float() {
        return Err("linear Resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    // Per axis: None (identity) or the tables (i0·stride, i1·stride, weight).
    let mut axes: Vec<Option<(Operand, Operand, Operand)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let coord: Vec<f64> = (0..n)
            .map(|k| ((k / xs[ax]) % x.shape[ax]) as f64)
            .collect();
        let probe = Tensor::from_vec(x.shape.clone(), coord).map_err(|e| e.to_string())?;
        let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
        let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
        // Outside points are never read; give them a harmless tap.
        let c: Vec<f64> = (0..out.shape[ax])
            .map(|o| {
                if (lo..hi).contains(&o) {
                    got[crop.along(&os, ax, o)]
                } else {
                    0.0
                }
            })
            .collect();
        let last = x.shape[ax] as i64 - 1;
        if out.shape[ax] == x.shape[ax]
            && crop.cnt[ax] == out.shape[ax]
            && c.iter().enumerate().all(|(o, &v)| v == o as f64)
        {
            axes.push(None);
            continue;
        }
        let mut i0 = Vec::with_capacity(c.len());
        let mut i1 = Vec::with_capacity(c.len());
        let mut w = Vec::with_capacity(c.len());
        for &v in &c {
            let f = (v.floor() as i64).clamp(0, last);
            i0.push(f * xs[ax] as i64);
            i1.push((f + 1).min(last) * xs[ax] as i64);
            w.push((v - f as f64).clamp(0.0, 1.0));
        }
        let wt = Tensor::from_vec(vec![w.len()], w)
            .map_err(|e| e.to_string())?
            .cast(dtype_of(x.ty));
        p.consts.push(wt.to_le_bytes());
        let wop = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![c.len()],
            ty: x.ty,
        };
        axes.push(Some((i64_table(p, &i0), i64_table(p, &i1), wop)));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    let ty = x.ty;
    let lo = crop.lo.clone();
    Ok(loop_nest(p, &crop.cnt, |p, idx| {
        let idx: Vec<Expr> = idx
            .iter()
            .zip(&lo)
            .map(|(e, &l)| add0(e.clone(), i(l as i64)))
            .collect();
        let idx = &idx[..];
        let mut pre = Vec::new();
        let mut base = i(0);
        // (offset of tap 0, offset of tap 1, weight of tap 1) per resized axis.
        let mut taps: Vec<(Expr, Expr, Expr)> = Vec::new();
        for (ax, a) in axes.iter().enumerate() {
            match a {
                None => base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64)),
                Some((t0, t1, tw)) => {
                    let (v0, v1, vw) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(ty));
                    pre.push(Stmt::Set(v0, t0.load(idx[ax].clone())));
                    pre.push(Stmt::Set(v1, t1.load(idx[ax].clone())));
                    pre.push(Stmt::Set(vw, tw.load(idx[ax].clone())));
                    taps.push((var(v0), var(v1), var(vw)));
                }
            }
        }
        let value = multilinear(&base, &taps, &x_c, ty);
        pre.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value,
        });
        pre
    }))
}

/// Cubic and antialiased Resize: a separable linear map with any number of
/// taps per output position. Each axis' weight matrix is read off the
/// interpreter column by column (an input that is 1 where the coordinate
/// along the axis is `j`, else 0: the weights of a position sum to 1 on
/// every axis, so the output along the axis is column `j`), then the kernel
/// loops over the taps of every resized axis.
pub(super) fn resize_taps(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &mut Program,
    crop: &Crop,
) -> NodeResult {
    if !x.ty.is_float() {
        return Err("Resize of integers has no native kernel yet".into());
    }
    let rank = x.shape.len();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let n = x.numel();
    let ty = x.ty;
    // Per axis: None (identity) or (taps, index table, weight table).
    let mut axes: Vec<Option<(usize, Operand, Operand)>> = Vec::with_capacity(rank);
    for ax in 0..rank {
        let m = out.shape[ax];
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(x.shape[ax]);
        for j in 0..x.shape[ax] {
            let hot: Vec<f64> = (0..n)
                .map(|k| ((k / xs[ax]) % x.shape[ax] == j) as u8 as f64)
                .collect();
            let probe = Tensor::from_vec(x.shape.clone(), hot).map_err(|e| e.to_string())?;
            let got = eval_probe(l, ins, probe, out, p)?.to_f64_vec();
            let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
            cols.push(
                (0..m)
                    .map(|o| {
                        if (lo..hi).contains(&o) {
                            got[crop.along(&os, ax, o)]
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }
        let identity = m == x.shape[ax]
            && crop.cnt[ax] == m
            && (0..m).all(|o| (0..m).all(|j| cols[j][o] == if o == j { 1.0 } else { 0.0 }));
        if identity {
            axes.push(None);
            continue;
        }
        let taps: Vec<Vec<(i64, f64)>> = (0..m)
            .map(|o| {
                (0..x.shape[ax])
                    .filter(|&j| cols[j][o] != 0.0)
                    .map(|j| ((j * xs[ax]) as i64, cols[j][o]))
                    .collect()
            })
            .collect();
        let k = taps.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut idx = vec![0i64; m * k];
        let mut w = vec![0f64; m * k];
        for (o, t) in taps.iter().enumerate() {
            for (q, &(a, wt)) in t.iter().enumerate() {
                idx[o * k + q] = a;
                w[o * k + q] = wt;
            }
        }
        let wt = Tensor::from_vec(vec![w.len()], w)
            .map_err(|e| e.to_string())?
            .cast(dtype_of(ty));
        p.consts.push(wt.to_le_bytes());
        let wop = Operand {
            buf: Buf::Const(p.consts.len() as u32 - 1),
            shape: vec![m * k],
            ty,
        };
        axes.push(Some((k, i64_table(p, &idx), wop)));
    }
    let (x_c, out_c) = (x.clone(), out.clone());
    let acc = p.var(ty);
    let lo = crop.lo.clone();
    Ok(loop_nest(p, &crop.cnt, |p, idx| {
        let idx: Vec<Expr> = idx
            .iter()
            .zip(&lo)
            .map(|(e, &l)| add0(e.clone(), i(l as i64)))
            .collect();
        let idx = &idx[..];
        let mut base = i(0);
        let mut weight: Option<Expr> = None;
        let mut tap_loops: Vec<(crate::kernel::Var, usize)> = Vec::new();
        for (ax, a) in axes.iter().enumerate() {
            match a {
                None => base = add0(base, mulk(idx[ax].clone(), xs[ax] as i64)),
                Some((k, ti, tw)) => {
                    let t = p.var(Scalar::I64);
                    let at = add0(mulk(idx[ax].clone(), *k as i64), var(t));
                    base = add0(base, ti.load(at.clone()));
                    let wk = tw.load(at);
                    weight = Some(match weight {
                        None => wk,
                        Some(prev) => mul(prev, wk),
                    });
                    tap_loops.push((t, *k));
                }
            }
        }
        let term = match weight {
            None => x_c.load(base),
            Some(wt) => mul(wt, x_c.load(base)),
        };
        let mut inner = vec![Stmt::Set(acc, add(var(acc), term))];
        for &(t, k) in tap_loops.iter().rev() {
            inner = vec![Stmt::for_loop(t, i(0), i(k as i64), inner)];
        }
        let mut body = vec![Stmt::Set(acc, lit(0.0, ty))];
        body.extend(inner);
        body.push(Stmt::Store {
            buf: out_c.buf,
            index: flat_index(&out_c.shape, idx),
            value: var(acc),
        });
        body
    }))
}

/// The per-axis input index maps of a nearest-neighbour Resize, obtained by
/// running the reference interpreter on an input that holds each element's
/// own flat index: every output element then holds the flat index of the
/// input element it copies, which splits into one map per axis.
pub(super) fn resize_maps(
    l: &Layout,
    ins: &[Option<Operand>],
    x: &Operand,
    out: &Operand,
    p: &Program,
    crop: &Crop,
) -> Result<Vec<Vec<Option<usize>>>, String> {
    let n = x.numel();
    let iota = Tensor::from_vec(x.shape.clone(), (0..n as i64).collect::<Vec<i64>>())
        .map_err(|e| e.to_string())?;
    let got = eval_probe(l, ins, iota, out, p)?.to_i64_vec();
    let xs = strides(&x.shape);
    let os = strides(&out.shape);
    let base = got[crop.base as usize];
    Ok((0..out.shape.len())
        .map(|ax| {
            let first = (base / xs[ax] as i64) % x.shape[ax] as i64;
            let (lo, hi) = (crop.lo[ax], crop.lo[ax] + crop.cnt[ax]);
            (0..out.shape[ax])
                .map(|o| {
                    if !(lo..hi).contains(&o) {
                        return None;
                    }
                    let v = got[crop.along(&os, ax, o)] - base;
                    Some((first + v / xs[ax] as i64) as usize)
                })
                .collect()
        })
        .collect())
}
