//! Lowering of the conv family: `Conv`, `ConvTranspose`, the windowed pools
//! (`MaxPool`, `AveragePool`, `LpPool`) and the global pools.
//!
//! f32 2-D `Conv` with one group runs as im2col + the packed GEMM
//! micro-kernel of [`crate::schedule::gemm`] (`im2col`); depthwise f32
//! 2-D `Conv` reads a zero-bordered copy of each channel (`depthwise`).
//! Everything else is the general schedule (`direct`): a direct loop nest
//! per output element with a scalar accumulator; the pools are in `pool`.
//! Padding never reaches their inner loops: for every output position the
//! range of kernel taps that land inside the input is computed once (with
//! `min`/`max` and a division by the constant dilation), so the tap loops
//! run without a condition (`window`, which every window kernel shares).
//!
//! The direct schedule takes its arithmetic as hooks ([`DirectMath`]), so
//! the integer convolutions of the quant family (`lower::quant`) run on it
//! too ([`lower_direct`]).
//!
//! The window geometry (pads derived from `auto_pad`, `ConvTranspose`'s
//! crop) comes from [`smelt_ir::window`], the rule shape inference and the
//! interpreter use.

mod depthwise;
mod direct;
mod im2col;
mod pool;
mod window;

use smelt_ir::ops::OpDef;
use smelt_ir::ops::conv::{ConvOp, PoolFn};
use smelt_ir::window::{Geom, Window};

use super::elementwise::Epi;
use super::{NodeResult, Operand, operand};
use crate::kernel::{Program, Stmt};
use depthwise::depthwise;
pub(super) use direct::DirectMath;
use direct::{conv, conv_transpose, direct};
use im2col::fast_conv;
use pool::{SumPool, check_float, global_pool, max_pool, max_unpool, sum_pool};

/// One convolution node as its kernels take it: the resolved window, the
/// group count and the operands (`b` the optional bias).
struct ConvArgs<'a> {
    g: Geom,
    group: usize,
    x: Operand,
    w: Operand,
    b: Option<Operand>,
    y: &'a Operand,
}

impl<'a> ConvArgs<'a> {
    /// The operands of a `Conv` or `ConvTranspose` node (`what`), which must
    /// be floats, and its window, which `window` resolves from the spatial
    /// input and kernel shapes.
    fn new(
        what: &str,
        group: usize,
        ins: &[Option<Operand>],
        outs: &'a [Operand],
        window: impl FnOnce(&[usize], &[usize]) -> Result<Geom, smelt_ir::Error>,
    ) -> Result<Self, String> {
        let (x, w) = (operand(ins, 0, "X")?, operand(ins, 1, "W")?);
        let b = ins.get(2).cloned().flatten();
        let y = &outs[0];
        if !x.ty.is_float() {
            return Err(format!("{what} on {:?} has no native kernel", x.ty));
        }
        let g = resolve(window(&x.shape[2..], &w.shape[2..]), &y.shape[2..])?;
        Ok(ConvArgs {
            g,
            group,
            x,
            w,
            b,
            y,
        })
    }
}

/// Resolves the window with the IR's own rule ([`smelt_ir::window`]) and
/// checks it against the output shape the IR inferred.
fn resolve(g: Result<Geom, smelt_ir::Error>, out: &[usize]) -> Result<Geom, String> {
    let g = g.map_err(|e| e.to_string())?;
    if g.out != out {
        return Err(format!(
            "the window resolves to {:?} but the inferred output is {out:?}",
            g.out
        ));
    }
    Ok(g)
}

/// A convolution of `x` by `w` (no bias) into `y` with the arithmetic
/// `math` defines, on the direct schedule: how the quant family's integer
/// convolutions share the window machinery. `window` is resolved like
/// `Conv`'s and checked against `y`'s shape.
pub(super) fn lower_direct(
    window: &Window,
    group: usize,
    x: Operand,
    w: Operand,
    y: &Operand,
    p: &mut Program,
    math: &DirectMath<'_>,
) -> NodeResult {
    if x.shape.len() < 3 || w.shape.len() != x.shape.len() || y.shape.len() != x.shape.len() {
        return Err("a convolution needs x, w and y of one rank ≥ 3".into());
    }
    let g = resolve(
        window.resolve(&x.shape[2..], &w.shape[2..], false),
        &y.shape[2..],
    )?;
    let c = ConvArgs {
        g,
        group,
        x,
        w,
        b: None,
        y,
    };
    direct(p, &c, math)
}

/// Lowers one node of the conv family.
pub fn lower(
    op: &ConvOp,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    lower_with(op, &Epi::default(), ins, outs, p).map(|(stmts, _)| stmts)
}

/// [`lower`] with an epilogue (residual, activation) for `Conv`: the
/// statements and whether they apply it already. Every `Conv` kernel
/// applies it as it stores a result (the GEMM path in its micro-kernel's
/// store, the depthwise and direct kernels on the accumulator) except the
/// GEMM path when its store cannot take it (see [`Epi::for_gemm`]); the
/// caller then appends it as passes.
pub fn lower_with(
    op: &ConvOp,
    epi: &Epi,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> Result<(Vec<Stmt>, bool), String> {
    match op {
        ConvOp::Conv { window, group } => {
            let c = ConvArgs::new("Conv", *group, ins, outs, |xs, ws| {
                window.resolve(xs, ws, false)
            })?;
            let store_epi = epi.for_gemm(c.y);
            let se = store_epi.unwrap_or_default();
            if let Some(stmts) = fast_conv(p, &c, se) {
                return Ok((stmts, !epi.is_empty() && store_epi.is_some()));
            }
            if let Some(stmts) = depthwise(p, &c, epi) {
                return Ok((stmts?, !epi.is_empty()));
            }
            Ok((conv(p, &c, epi)?, !epi.is_empty()))
        }
        _ if !epi.is_empty() => Err(format!("no epilogue for {}", op.name())),
        _ => lower_other(op, ins, outs, p).map(|s| (s, false)),
    }
}

fn lower_other(
    op: &ConvOp,
    ins: &[Option<Operand>],
    outs: &[Operand],
    p: &mut Program,
) -> NodeResult {
    match op {
        // Handled by `lower_with`, which sends only the other ops here.
        ConvOp::Conv { .. } => lower_with(op, &Epi::default(), ins, outs, p).map(|(s, _)| s),
        ConvOp::ConvTranspose {
            window,
            group,
            output_padding,
            output_shape,
        } => {
            let c = ConvArgs::new("ConvTranspose", *group, ins, outs, |xs, ws| {
                let want = output_shape.as_ref().map(|s| {
                    if s.len() == xs.len() + 2 {
                        &s[2..]
                    } else {
                        &s[..]
                    }
                });
                window.resolve_transpose(xs, ws, output_padding, want)
            })?;
            Ok(conv_transpose(p, &c))
        }
        ConvOp::Pool {
            f,
            window,
            ceil_mode,
            indices,
        } => {
            let x = operand(ins, 0, "X")?;
            let y = &outs[0];
            let kernel = window.kernel_shape.clone().unwrap_or_default();
            let g = resolve(
                window.resolve(&x.shape[2..], &kernel, *ceil_mode),
                &y.shape[2..],
            )?;
            match f {
                PoolFn::Max { column_major } => {
                    let idx = if *indices { outs.get(1) } else { None };
                    Ok(max_pool(p, &g, &x, y, idx, *column_major))
                }
                PoolFn::Average { count_include_pad } => {
                    check_float(&x)?;
                    Ok(sum_pool(p, &g, &x, y, SumPool::Average(*count_include_pad)))
                }
                PoolFn::Lp { p: pw } => {
                    check_float(&x)?;
                    Ok(sum_pool(p, &g, &x, y, SumPool::Lp(*pw as f64)))
                }
            }
        }
        ConvOp::GlobalPool { f } => {
            let x = operand(ins, 0, "X")?;
            if !x.ty.is_float() {
                return Err(format!("global pool on {:?} has no native kernel", x.ty));
            }
            Ok(global_pool(p, &x, &outs[0], *f))
        }
        ConvOp::MaxUnpool {
            kernel_shape,
            strides,
            pads,
        } => {
            let (x, ix) = (operand(ins, 0, "X")?, operand(ins, 1, "I")?);
            let (inferred, _) =
                smelt_ir::window::unpool_shape(kernel_shape, strides, pads, &x.shape, None)
                    .map_err(|e| e.to_string())?;
            Ok(max_unpool(p, &x, &ix, &inferred, &outs[0]))
        }
    }
}
