//! The general convolution schedules: `Conv` as a direct loop nest with a
//! scalar accumulator per output element, `ConvTranspose` as a scatter.

use super::super::elementwise::Epi;
use super::super::flat_index;
use super::ConvArgs;
use super::window::{axes, i64_vars, nest, position_loops, strides_of, tap_loops, tap_offset};
use crate::kernel::build::{add, bin, f, i, mul, var};
use crate::kernel::{BinOp, Expr, Program, Scalar, Stmt};

/// The sizes a grouped convolution, direct or transposed, is built from.
struct ConvSizes {
    /// Spatial rank.
    nd: usize,
    /// Batch, input channels, output channels.
    n: usize,
    c: usize,
    m: usize,
    /// Input and output channels per group.
    cg: usize,
    mg: usize,
    /// Elements of one input plane, one output plane and one kernel.
    in_sz: usize,
    out_sz: usize,
    kprod: usize,
}

impl ConvSizes {
    fn new(c: &ConvArgs) -> Self {
        let (g, group, x, y) = (&c.g, c.group, &c.x, c.y);
        let (c, m) = (x.shape[1], y.shape[1]);
        ConvSizes {
            nd: g.input.len(),
            n: x.shape[0],
            c,
            m,
            cg: c / group,
            mg: m / group,
            in_sz: g.input.iter().product(),
            out_sz: g.out.iter().product(),
            kprod: g.kernel.iter().product(),
        }
    }
}

/// The arithmetic of a direct convolution: what each output's sum
/// accumulates in, the product of an input and a weight element, the sum's
/// initial value and the value stored from it. The hooks get the output
/// channel `m` (an `I64` expression); `store` also gets the output's flat
/// index and may add statements before the store.
pub(in crate::lower) struct DirectMath<'a> {
    /// The accumulator's type.
    pub(in crate::lower) acc: Scalar,
    /// `product(x, w, m)`.
    pub(in crate::lower) product: &'a dyn Fn(Expr, Expr, &Expr) -> Expr,
    /// `init(m)`.
    pub(in crate::lower) init: &'a dyn Fn(&Expr) -> Expr,
    /// `store(p, sum, m, y_index, statements_before_the_store)`.
    pub(in crate::lower) store: StoreFn<'a>,
}

/// [`DirectMath::store`].
pub(in crate::lower) type StoreFn<'a> =
    &'a dyn Fn(&mut Program, Expr, &Expr, Expr, &mut Vec<Stmt>) -> Result<Expr, String>;

/// `y[n, m, o] = b[m] + Σ_{c, k} x[n, g·cg + c, o·s + k·dil − pad] · w[m, c, k]`
/// for the output channels `m` of group `g`, with the epilogue (residual,
/// activation) applied to each sum before it is stored.
pub(super) fn conv(p: &mut Program, c: &ConvArgs, epi: &Epi) -> Result<Vec<Stmt>, String> {
    let ty = c.y.ty;
    let init = |m: &Expr| match &c.b {
        Some(b) => b.load(m.clone()),
        None => f(0.0, ty),
    };
    let store = |p: &mut Program, acc: Expr, _: &Expr, y_idx: Expr, pre: &mut Vec<Stmt>| {
        epi.apply(p, acc, ty, y_idx, pre)
    };
    let math = DirectMath {
        acc: ty,
        product: &|x, w, _| mul(x, w),
        init: &init,
        store: &store,
    };
    direct(p, c, &math)
}

/// `y[n, m, o] = init(m) + Σ_{c, k} product(x[n, g·cg + c, o·s + k·dil − pad], w[m, c, k])`
/// for the output channels `m` of group `g`, stored through `math.store`.
/// Taps in the padding are skipped: they add nothing.
pub(super) fn direct(
    p: &mut Program,
    c: &ConvArgs,
    math: &DirectMath<'_>,
) -> Result<Vec<Stmt>, String> {
    let (g, group, x, w, y) = (&c.g, c.group, &c.x, &c.w, c.y);
    let sz = ConvSizes::new(c);
    let in_strides = strides_of(&g.input);
    let k_strides = strides_of(&g.kernel);
    let ax = axes(p, sz.nd);
    let [nv, gv, ocv, icv] = i64_vars(p);
    let (xc, wc, acc) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(math.acc));
    // Output channel m = g·mg + oc.
    let mch = add(mul(var(gv), i(sz.mg as i64)), var(ocv));
    let x_tap = add(var(xc), tap_offset(&ax, |d| g.dilations[d] * in_strides[d]));
    let w_tap = add(var(wc), tap_offset(&ax, |d| k_strides[d]));
    let product = (math.product)(x.load(x_tap), w.load(w_tap), &mch);
    let mac = Stmt::Set(acc, add(var(acc), product));
    let last_off = var(ax[sz.nd - 1].off);
    let per_ic = vec![
        Stmt::Set(xc, add(last_off, mul(var(icv), i(sz.in_sz as i64)))),
        Stmt::Set(
            wc,
            add(
                mul(mch.clone(), i((sz.cg * sz.kprod) as i64)),
                mul(var(icv), i(sz.kprod as i64)),
            ),
        ),
    ]
    .into_iter()
    .chain(tap_loops(&ax, vec![mac]))
    .collect();
    let o_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let y_idx = add(
        mul(
            add(mul(var(nv), i(sz.m as i64)), mch.clone()),
            i(sz.out_sz as i64),
        ),
        flat_index(&g.out, &o_idx),
    );
    let mut at_position = vec![
        Stmt::Set(acc, (math.init)(&mch)),
        Stmt::for_loop(icv, i(0), i(sz.cg as i64), per_ic),
    ];
    let value = (math.store)(p, var(acc), &mch, y_idx.clone(), &mut at_position)?;
    at_position.push(Stmt::Store {
        buf: y.buf,
        index: y_idx,
        value,
    });
    // X's first channel of the group, as a flat offset.
    let x_base = mul(
        add(mul(var(nv), i(sz.c as i64)), mul(var(gv), i(sz.cg as i64))),
        i(sz.in_sz as i64),
    );
    let positions = position_loops(g, &ax, &g.out, &g.input, &in_strides, x_base, at_position);
    Ok(nest(&[(nv, sz.n), (gv, group), (ocv, sz.mg)], positions))
}

/// `ConvTranspose` as a scatter: `y` starts at the bias, then every input
/// element adds `x[n, c, i] · w[c, oc, k]` to `y[n, g·mg + oc, i·s + k·dil − pad]`
/// for the taps that land inside the output.
pub(super) fn conv_transpose(p: &mut Program, c: &ConvArgs) -> Vec<Stmt> {
    let (g, group, x, w, b, y) = (&c.g, c.group, &c.x, &c.w, c.b.as_ref(), c.y);
    let sz = ConvSizes::new(c);
    let out_strides = strides_of(&g.out);
    let k_strides = strides_of(&g.kernel);
    let ty = y.ty;
    let mut stmts = Vec::new();
    // y = bias (or zero).
    let (pl, e) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let fill = match b {
        Some(b) => b.load(bin(BinOp::Rem, var(pl), i(sz.m as i64))),
        None => f(0.0, ty),
    };
    stmts.extend(nest(
        &[(pl, sz.n * sz.m)],
        vec![Stmt::for_loop(
            e,
            i(0),
            i(sz.out_sz as i64),
            vec![Stmt::Store {
                buf: y.buf,
                index: add(mul(var(pl), i(sz.out_sz as i64)), var(e)),
                value: fill,
            }],
        )],
    ));
    let ax = axes(p, sz.nd);
    let [nv, gv, icv, ocv] = i64_vars(p);
    let (xv, yo, wo) = (p.var(ty), p.var(Scalar::I64), p.var(Scalar::I64));
    // Input channel ci = g·cg + ic; W is [C, mg, k…].
    let ci = add(mul(var(gv), i(sz.cg as i64)), var(icv));
    let i_idx: Vec<Expr> = ax.iter().map(|a| var(a.o)).collect();
    let x_idx = add(
        mul(
            add(mul(var(nv), i(sz.c as i64)), ci.clone()),
            i(sz.in_sz as i64),
        ),
        flat_index(&g.input, &i_idx),
    );
    let y_idx = add(
        add(var(yo), mul(var(ocv), i(sz.out_sz as i64))),
        var(ax[sz.nd - 1].off),
    );
    let y_tap = add(y_idx, tap_offset(&ax, |d| g.dilations[d] * out_strides[d]));
    let w_idx = add(
        add(var(wo), mul(var(ocv), i(sz.kprod as i64))),
        tap_offset(&ax, |d| k_strides[d]),
    );
    let scatter = Stmt::Store {
        buf: y.buf,
        index: y_tap.clone(),
        value: add(y.load(y_tap), mul(var(xv), w.load(w_idx))),
    };
    let per_input = vec![
        Stmt::Set(xv, x.load(x_idx)),
        Stmt::Set(
            yo,
            mul(
                add(mul(var(nv), i(sz.m as i64)), mul(var(gv), i(sz.mg as i64))),
                i(sz.out_sz as i64),
            ),
        ),
        Stmt::Set(wo, mul(ci, i((sz.mg * sz.kprod) as i64))),
        Stmt::for_loop(ocv, i(0), i(sz.mg as i64), tap_loops(&ax, vec![scatter])),
    ];
    // Positions run over the input; taps land in the output.
    let positions = position_loops(g, &ax, &g.input, &g.out, &out_strides, i(0), per_input);
    stmts.extend(nest(&[(nv, sz.n), (gv, group), (icv, sz.cg)], positions));
    stmts
}
