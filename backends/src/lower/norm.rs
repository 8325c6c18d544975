//! Lowering of the normalization family: the batch, instance, layer, RMS,
//! group, Lp and mean-variance normalizations, LRN, and the softmax family
//! (`Softmax`, `LogSoftmax`, `Hardmax`).
//!
//! Statistics are computed like the interpreter does, in two passes (mean,
//! then the mean squared deviation), but in the operand's own type: f32
//! accumulation over one row stays well inside the conformance tolerance,
//! and keeping the type lets these loops vectorize later.

use smelt_ir::ops::norm::{Norm, SoftmaxFn};
use smelt_ir::shape::norm_axis;

use super::{NodeResult, Operand, broadcast_index, flat_index, loop_nest, operand};
use crate::kernel::build::{add, bin, cast, cmp, f, i, mul, select, sub, un, var};
use crate::kernel::{BinOp, CmpOp, Expr, Program, Scalar, Stmt, UnOp, Var};

/// `for v in 0..n { body }`.
fn for_n(v: Var, n: usize, body: Vec<Stmt>) -> Stmt {
    Stmt::for_loop(v, i(0), i(n as i64), body)
}

/// Loads `o[index]` converted to `ty`.
fn load_as(o: &Operand, index: Expr, ty: Scalar) -> Expr {
    let v = o.load(index);
    if o.ty == ty { v } else { cast(ty, v) }
}

/// Two passes over the `len` elements `x[base + j·step]`: sets `mean` to
/// their mean and `inv` to `1 / sqrt(variance + eps)`.
fn mean_inv(
    p: &mut Program,
    x: &Operand,
    base: Expr,
    step: usize,
    len: usize,
    eps: f64,
    mean: Var,
    inv: Var,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (j, acc) = (p.var(Scalar::I64), p.var(ty));
    let at = add(base, mul(var(j), i(step as i64)));
    let d = sub(x.load(at.clone()), var(mean));
    let mut s = vec![
        Stmt::Set(acc, f(0.0, ty)),
        for_n(j, len, vec![Stmt::Set(acc, add(var(acc), x.load(at)))]),
        Stmt::Set(mean, bin(BinOp::Div, var(acc), f(len as f64, ty))),
    ];
    s.extend(inv_root_mean_square(d, (j, len), acc, eps, inv, ty));
    s
}

/// With `v` an expression of loop variable `j`: sums `v²` over `j` in
/// `0..len` into `acc`, then sets `inv` to `1 / sqrt(sum / len + eps)`, the
/// normalising factor both LayerNorm's variance and RMSNorm use.
fn inv_root_mean_square(
    v: Expr,
    (j, len): (Var, usize),
    acc: Var,
    eps: f64,
    inv: Var,
    ty: Scalar,
) -> [Stmt; 3] {
    [
        Stmt::Set(acc, f(0.0, ty)),
        for_n(
            j,
            len,
            vec![Stmt::Set(acc, add(var(acc), mul(v.clone(), v)))],
        ),
        Stmt::Set(
            inv,
            bin(
                BinOp::Div,
                f(1.0, ty),
                un(
                    UnOp::Sqrt,
                    add(bin(BinOp::Div, var(acc), f(len as f64, ty)), f(eps, ty)),
                ),
            ),
        ),
    ]
}

/// Lowers one node of the normalization family.
pub fn lower(nm: &Norm, ins: &[Option<Operand>], outs: &[Operand], p: &mut Program) -> NodeResult {
    let x = operand(ins, 0, "X")?;
    if !x.ty.is_float() {
        return Err(format!("{:?} input has no native kernel", x.ty));
    }
    let y = outs[0].clone();
    let rank = x.shape.len();
    match nm {
        Norm::BatchNormalization { epsilon, spatial } => {
            let params = [
                operand(ins, 1, "scale")?,
                operand(ins, 2, "B")?,
                operand(ins, 3, "mean")?,
                operand(ins, 4, "var")?,
            ];
            Ok(batch_norm(p, &x, &params, &y, *epsilon as f64, *spatial))
        }
        Norm::InstanceNormalization { epsilon } => {
            let (s, b) = (operand(ins, 1, "scale")?, operand(ins, 2, "B")?);
            let (n, c) = (x.shape[0], x.shape[1]);
            let plane: usize = x.shape[2..].iter().product();
            // Per (n, c): one row of `plane` elements, one scale and bias.
            Ok(grouped_norm(
                p,
                &x,
                &y,
                *epsilon as f64,
                n * c,
                1,
                plane,
                |row, _| {
                    let ch = bin(BinOp::Rem, row, i(c as i64));
                    (s.load(ch.clone()), Some(b.load(ch)))
                },
            ))
        }
        Norm::GroupNormalization {
            num_groups,
            epsilon,
            per_channel,
        } => {
            let (s, b) = (operand(ins, 1, "scale")?, operand(ins, 2, "bias")?);
            let (n, c, g) = (x.shape[0], x.shape[1], *num_groups);
            let plane: usize = x.shape[2..].iter().product();
            let cg = c / g;
            let per_channel = *per_channel;
            Ok(grouped_norm(
                p,
                &x,
                &y,
                *epsilon as f64,
                n * g,
                cg,
                plane,
                |row, ch| {
                    let grp = bin(BinOp::Rem, row, i(g as i64));
                    let k = if per_channel {
                        add(mul(grp, i(cg as i64)), ch)
                    } else {
                        grp
                    };
                    (s.load(k.clone()), Some(b.load(k)))
                },
            ))
        }
        Norm::LayerNormalization {
            axis,
            epsilon,
            stash_type: _,
        } => {
            let ax = norm_axis(*axis, rank).map_err(|e| e.to_string())?;
            let s = operand(ins, 1, "Scale")?;
            let b = ins.get(2).cloned().flatten();
            let stats = if outs.len() == 3 {
                Some((outs[1].clone(), outs[2].clone()))
            } else {
                None
            };
            if let Some((m, _)) = &stats
                && !m.ty.is_float()
            {
                return Err("Mean/InvStdDev outputs must be f32 or f64".into());
            }
            Ok(layer_norm(
                p,
                &x,
                &s,
                b.as_ref(),
                &y,
                ax,
                *epsilon as f64,
                false,
                stats,
            ))
        }
        Norm::RmsNormalization { axis, epsilon } => {
            let ax = norm_axis(*axis, rank).map_err(|e| e.to_string())?;
            let s = operand(ins, 1, "scale")?;
            Ok(layer_norm(
                p,
                &x,
                &s,
                None,
                &y,
                ax,
                *epsilon as f64,
                true,
                None,
            ))
        }
        Norm::LpNormalization { axis, p: pw } => {
            let ax = norm_axis(*axis, rank).map_err(|e| e.to_string())?;
            let (outer, len, inner) = lanes(&x.shape, ax, false);
            Ok(lp_norm(p, &x, &y, outer, len, inner, *pw))
        }
        Norm::MeanVarianceNormalization { axes } => {
            let mut reduced = vec![false; rank];
            for &a in axes {
                reduced[norm_axis(a, rank).map_err(|e| e.to_string())?] = true;
            }
            Ok(mvn(p, &x, &y, &reduced))
        }
        Norm::Lrn {
            size,
            alpha,
            beta,
            bias,
        } => Ok(lrn(
            p,
            &x,
            &y,
            *size,
            *alpha as f64,
            *beta as f64,
            *bias as f64,
        )),
        Norm::Softmax {
            f: func,
            axis,
            flatten,
        } => {
            let ax = if *flatten && *axis == rank as i64 {
                rank
            } else {
                norm_axis(*axis, rank).map_err(|e| e.to_string())?
            };
            let (outer, n, inner) = lanes(&x.shape, ax, *flatten);
            Ok(match func {
                SoftmaxFn::Softmax | SoftmaxFn::LogSoftmax => {
                    softmax(p, &x, &y, outer, n, inner, *func == SoftmaxFn::LogSoftmax)
                }
                SoftmaxFn::Hardmax => hardmax(p, &x, &y, outer, n, inner),
            })
        }
    }
}

/// `(outer, len, inner)`: the lanes a function along `ax` runs over (with
/// `flatten`, everything from `ax` on is one lane).
fn lanes(shape: &[usize], ax: usize, flatten: bool) -> (usize, usize, usize) {
    let outer = shape[..ax].iter().product();
    if flatten {
        (outer, shape[ax..].iter().product(), 1)
    } else {
        (outer, shape[ax], shape[ax + 1..].iter().product())
    }
}

/// `y = x · k + d` with `k = scale / sqrt(var + eps)`, `d = B − mean · k`,
/// per channel (or, without `spatial`, per `C × D1 × …` activation).
fn batch_norm(
    p: &mut Program,
    x: &Operand,
    params: &[Operand; 4],
    y: &Operand,
    eps: f64,
    spatial: bool,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (n, c) = (x.shape[0], x.shape[1]);
    let plane: usize = x.shape[2..].iter().product();
    let (nv, cv, j) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::I64));
    let (k, d) = (p.var(ty), p.var(ty));
    let [scale, b, mean, vr] = params;
    let set_kd = |pi: Expr| {
        vec![
            Stmt::Set(
                k,
                bin(
                    BinOp::Div,
                    load_as(scale, pi.clone(), ty),
                    un(UnOp::Sqrt, add(load_as(vr, pi.clone(), ty), f(eps, ty))),
                ),
            ),
            Stmt::Set(
                d,
                sub(
                    load_as(b, pi.clone(), ty),
                    mul(load_as(mean, pi, ty), var(k)),
                ),
            ),
        ]
    };
    let at = add(
        mul(add(mul(var(nv), i(c as i64)), var(cv)), i(plane as i64)),
        var(j),
    );
    let store = Stmt::Store {
        buf: y.buf,
        index: at.clone(),
        value: add(mul(x.load(at), var(k)), var(d)),
    };
    let per_channel = if spatial {
        let mut s = set_kd(var(cv));
        s.push(for_n(j, plane, vec![store]));
        s
    } else {
        let mut s = set_kd(add(mul(var(cv), i(plane as i64)), var(j)));
        s.push(store);
        vec![for_n(j, plane, s)]
    };
    vec![for_n(nv, n, vec![for_n(cv, c, per_channel)])]
}

/// Instance and group normalization: `rows` contiguous rows of `chans ×
/// plane` elements, each normalized on its own; `affine(row, channel in
/// row)` gives the scale and bias of one channel.
fn grouped_norm(
    p: &mut Program,
    x: &Operand,
    y: &Operand,
    eps: f64,
    rows: usize,
    chans: usize,
    plane: usize,
    affine: impl Fn(Expr, Expr) -> (Expr, Option<Expr>),
) -> Vec<Stmt> {
    let ty = x.ty;
    let len = chans * plane;
    let (r, ch, j) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::I64));
    let (mean, inv, a) = (p.var(ty), p.var(ty), p.var(ty));
    let base = mul(var(r), i(len as i64));
    let mut body = mean_inv(p, x, base.clone(), 1, len, eps, mean, inv);
    let (s, b) = affine(var(r), var(ch));
    let at = add(add(base, mul(var(ch), i(plane as i64))), var(j));
    let mut value = mul(sub(x.load(at.clone()), var(mean)), var(a));
    if let Some(b) = b {
        value = add(value, b);
    }
    body.push(for_n(
        ch,
        chans,
        vec![
            Stmt::Set(a, mul(var(inv), s)),
            for_n(
                j,
                plane,
                vec![Stmt::Store {
                    buf: y.buf,
                    index: at,
                    value,
                }],
            ),
        ],
    ));
    vec![for_n(r, rows, body)]
}

/// Layer normalization (or, with `rms`, RMS normalization: no mean, no bias)
/// over the axes from `ax` on; `scale` and `b` broadcast to X. `stats` are
/// LayerNormalization's optional `Mean` and `InvStdDev` outputs.
#[allow(clippy::too_many_arguments)]
fn layer_norm(
    p: &mut Program,
    x: &Operand,
    scale: &Operand,
    b: Option<&Operand>,
    y: &Operand,
    ax: usize,
    eps: f64,
    rms: bool,
    stats: Option<(Operand, Operand)>,
) -> Vec<Stmt> {
    let ty = x.ty;
    let outer_shape = x.shape[..ax].to_vec();
    let inner_shape = x.shape[ax..].to_vec();
    let len: usize = inner_shape.iter().product();
    let (mean, inv) = (p.var(ty), p.var(ty));
    let (x, scale, b, y) = (x.clone(), scale.clone(), b.cloned(), y.clone());
    loop_nest(p, &outer_shape, |p, oidx| {
        let row = flat_index(&outer_shape, oidx);
        let base = mul(row.clone(), i(len as i64));
        let mut body = if rms {
            let (j, acc) = (p.var(Scalar::I64), p.var(ty));
            let xv = x.load(add(base.clone(), var(j)));
            inv_root_mean_square(xv, (j, len), acc, eps, inv, ty).into()
        } else {
            mean_inv(p, &x, base.clone(), 1, len, eps, mean, inv)
        };
        if let Some((m, s)) = &stats {
            body.push(Stmt::Store {
                buf: m.buf,
                index: row.clone(),
                value: cast(m.ty, var(mean)),
            });
            body.push(Stmt::Store {
                buf: s.buf,
                index: row,
                value: cast(s.ty, var(inv)),
            });
        }
        let oidx = oidx.to_vec();
        body.extend(loop_nest(p, &inner_shape, |_, iidx| {
            let full: Vec<Expr> = oidx.iter().chain(iidx).cloned().collect();
            let at = add(base.clone(), flat_index(&inner_shape, iidx));
            let xv = x.load(at.clone());
            let sv = scale.load(broadcast_index(&scale.shape, &full));
            let value = if rms {
                // Y has the scale's type.
                mul(cast(scale.ty, mul(xv, var(inv))), sv)
            } else {
                let v = mul(mul(sub(xv, var(mean)), var(inv)), sv);
                match &b {
                    Some(b) => add(v, b.load(broadcast_index(&b.shape, &full))),
                    None => v,
                }
            };
            vec![Stmt::Store {
                buf: y.buf,
                index: at,
                value,
            }]
        }));
        body
    })
}

/// `y = x / ‖x‖_p` along each lane (zeros where the norm is zero).
fn lp_norm(
    p: &mut Program,
    x: &Operand,
    y: &Operand,
    outer: usize,
    len: usize,
    inner: usize,
    pw: u8,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (o, ii, k, norm) = (
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(ty),
    );
    let at = add(
        mul(add(mul(var(o), i(len as i64)), var(k)), i(inner as i64)),
        var(ii),
    );
    let xv = x.load(at.clone());
    let term = if pw == 1 {
        un(UnOp::Abs, xv.clone())
    } else {
        mul(xv.clone(), xv.clone())
    };
    let total = if pw == 1 {
        var(norm)
    } else {
        un(UnOp::Sqrt, var(norm))
    };
    vec![for_n(
        o,
        outer,
        vec![for_n(
            ii,
            inner,
            vec![
                Stmt::Set(norm, f(0.0, ty)),
                for_n(k, len, vec![Stmt::Set(norm, add(var(norm), term))]),
                Stmt::Set(norm, total),
                for_n(
                    k,
                    len,
                    vec![Stmt::Store {
                        buf: y.buf,
                        index: at,
                        value: select(
                            cmp(CmpOp::Ne, var(norm), f(0.0, ty)),
                            bin(BinOp::Div, xv, var(norm)),
                            f(0.0, ty),
                        ),
                    }],
                ),
            ],
        )],
    )]
}

/// `MeanVarianceNormalization`: `(x − mean) / (std + 1e-9)` over the
/// `reduced` axes.
fn mvn(p: &mut Program, x: &Operand, y: &Operand, reduced: &[bool]) -> Vec<Stmt> {
    let ty = x.ty;
    let rank = x.shape.len();
    let strides = {
        let mut s = vec![1usize; rank];
        for d in (0..rank.saturating_sub(1)).rev() {
            s[d] = s[d + 1] * x.shape[d + 1];
        }
        s
    };
    let kept: Vec<usize> = (0..rank).filter(|&d| !reduced[d]).collect();
    let red: Vec<usize> = (0..rank).filter(|&d| reduced[d]).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&d| x.shape[d]).collect();
    let red_shape: Vec<usize> = red.iter().map(|&d| x.shape[d]).collect();
    let count: usize = red_shape.iter().product();
    let offset = |dims: &[usize], idx: &[Expr]| -> Expr {
        dims.iter()
            .zip(idx)
            .map(|(&d, e)| mul(e.clone(), i(strides[d] as i64)))
            .reduce(add)
            .unwrap_or_else(|| i(0))
    };
    let (mean, den, acc, base) = (p.var(ty), p.var(ty), p.var(ty), p.var(Scalar::I64));
    let (x, y) = (x.clone(), y.clone());
    loop_nest(p, &kept_shape, |p, kidx| {
        let mut body = vec![Stmt::Set(base, offset(&kept, kidx))];
        let pass = |p: &mut Program, f_: &dyn Fn(Expr) -> Stmt| {
            loop_nest(p, &red_shape, |_, ridx| {
                vec![f_(add(var(base), offset(&red, ridx)))]
            })
        };
        body.push(Stmt::Set(acc, f(0.0, ty)));
        body.extend(pass(p, &|at| Stmt::Set(acc, add(var(acc), x.load(at)))));
        body.push(Stmt::Set(
            mean,
            bin(BinOp::Div, var(acc), f(count as f64, ty)),
        ));
        body.push(Stmt::Set(acc, f(0.0, ty)));
        body.extend(pass(p, &|at| {
            let d = sub(x.load(at), var(mean));
            Stmt::Set(acc, add(var(acc), mul(d.clone(), d)))
        }));
        body.push(Stmt::Set(
            den,
            add(
                un(UnOp::Sqrt, bin(BinOp::Div, var(acc), f(count as f64, ty))),
                f(1e-9, ty),
            ),
        ));
        body.extend(pass(p, &|at| Stmt::Store {
            buf: y.buf,
            index: at.clone(),
            value: bin(BinOp::Div, sub(x.load(at), var(mean)), var(den)),
        }));
        body
    })
}

/// `LRN`: `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over the
/// channels `c − ⌊(size−1)/2⌋ ..= c + ⌈(size−1)/2⌉` that exist.
fn lrn(
    p: &mut Program,
    x: &Operand,
    y: &Operand,
    size: usize,
    alpha: f64,
    beta: f64,
    bias: f64,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (n, c) = (x.shape[0], x.shape[1]);
    let plane: usize = x.shape[2..].iter().product();
    let (before, after) = ((size - 1) / 2, size / 2);
    let (nv, cv, sv, cc, acc) = (
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(Scalar::I64),
        p.var(ty),
    );
    let at = |ch: Expr| {
        add(
            mul(add(mul(var(nv), i(c as i64)), ch), i(plane as i64)),
            var(sv),
        )
    };
    let xc = x.load(at(var(cc)));
    let lo = bin(BinOp::Max, sub(var(cv), i(before as i64)), i(0));
    let hi = bin(BinOp::Min, add(var(cv), i(after as i64 + 1)), i(c as i64));
    let den = bin(
        BinOp::Pow,
        add(f(bias, ty), mul(f(alpha / size as f64, ty), var(acc))),
        f(beta, ty),
    );
    vec![for_n(
        nv,
        n,
        vec![for_n(
            cv,
            c,
            vec![for_n(
                sv,
                plane,
                vec![
                    Stmt::Set(acc, f(0.0, ty)),
                    Stmt::for_loop(
                        cc,
                        lo,
                        hi,
                        vec![Stmt::Set(acc, add(var(acc), mul(xc.clone(), xc)))],
                    ),
                    Stmt::Store {
                        buf: y.buf,
                        index: at(var(cv)),
                        value: bin(BinOp::Div, x.load(at(var(cv))), den),
                    },
                ],
            )],
        )],
    )]
}

/// The flat index of element `j` of the lane at `idx` = `[outer, inner]`
/// in a tensor viewed as `[outer, n, inner]`.
fn lane_at(idx: &[Expr], n: usize, inner: usize, j: Expr) -> Expr {
    add(
        add(
            mul(idx[0].clone(), i((n * inner) as i64)),
            mul(j, i(inner as i64)),
        ),
        idx[1].clone(),
    )
}

/// `Softmax` / `LogSoftmax` along lanes of `n` elements with stride `inner`.
fn softmax(
    p: &mut Program,
    x: &Operand,
    out: &Operand,
    outer: usize,
    n: usize,
    inner: usize,
    is_log: bool,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (mx, sum, j) = (p.var(ty), p.var(ty), p.var(Scalar::I64));
    let (x, out) = (x.clone(), out.clone());
    loop_nest(p, &[outer, inner], |_, idx| {
        let at = |jj: Expr| lane_at(idx, n, inner, jj);
        let xj = x.load(at(var(j)));
        let shifted = bin(BinOp::Sub, xj.clone(), var(mx));
        let final_value = if is_log {
            bin(BinOp::Sub, shifted.clone(), un(UnOp::Log, var(sum)))
        } else {
            bin(BinOp::Div, un(UnOp::Exp, shifted.clone()), var(sum))
        };
        vec![
            Stmt::Set(mx, f(f64::NEG_INFINITY, ty)),
            for_n(j, n, vec![Stmt::Set(mx, bin(BinOp::Max, var(mx), xj))]),
            Stmt::Set(sum, f(0.0, ty)),
            for_n(
                j,
                n,
                vec![Stmt::Set(sum, add(var(sum), un(UnOp::Exp, shifted)))],
            ),
            for_n(
                j,
                n,
                vec![Stmt::Store {
                    buf: out.buf,
                    index: at(var(j)),
                    value: final_value,
                }],
            ),
        ]
    })
}

/// `Hardmax`: 1 at the first maximum of each lane, 0 elsewhere; a NaN counts
/// as the maximum (NumPy's argmax), so the first NaN wins.
fn hardmax(
    p: &mut Program,
    x: &Operand,
    out: &Operand,
    outer: usize,
    n: usize,
    inner: usize,
) -> Vec<Stmt> {
    let ty = x.ty;
    let (best, bi, v, j) = (p.var(ty), p.var(Scalar::I64), p.var(ty), p.var(Scalar::I64));
    let (x, out) = (x.clone(), out.clone());
    if n == 0 {
        return vec![];
    }
    loop_nest(p, &[outer, inner], |_, idx| {
        let at = |jj: Expr| lane_at(idx, n, inner, jj);
        let is_nan = |e: Expr| cmp(CmpOp::Ne, e.clone(), e);
        // Move on from the best so far unless it is NaN, when v is NaN or larger.
        let better = bin(
            BinOp::And,
            cmp(CmpOp::Eq, var(best), var(best)),
            bin(BinOp::Or, is_nan(var(v)), cmp(CmpOp::Gt, var(v), var(best))),
        );
        vec![
            Stmt::Set(best, x.load(at(i(0)))),
            Stmt::Set(bi, i(0)),
            Stmt::for_loop(
                j,
                i(1),
                i(n as i64),
                vec![
                    Stmt::Set(v, x.load(at(var(j)))),
                    Stmt::Set(bi, select(better.clone(), var(j), var(bi))),
                    Stmt::Set(best, select(better, var(v), var(best))),
                ],
            ),
            for_n(
                j,
                n,
                vec![Stmt::Store {
                    buf: out.buf,
                    index: at(var(j)),
                    value: select(cmp(CmpOp::Eq, var(j), var(bi)), f(1.0, ty), f(0.0, ty)),
                }],
            ),
        ]
    })
}
