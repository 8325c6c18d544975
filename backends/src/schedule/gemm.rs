//! A register-blocked f32 GEMM micro-kernel generator:
//! `C[m, n] = init(m, n) + Σ_k A[m, k] · B[k, n]` for `m < M`, `n < N`.
//!
//! The output is tiled into `MR × NR` blocks held in `MR · NV` vector
//! accumulators (`NR = NV · lanes` columns): per `k` the tile loads `NV`
//! vectors of B's row `k`, broadcasts `MR` scalars of A's column `k` and
//! issues `MR · NV` multiply-adds. The geometry follows the target's vector
//! unit ([`VectorShape`], [`Tiling::register_tile`]): 4 × 2 vectors of 4
//! lanes on the 128-bit baselines (8 accumulators plus 2 B vectors plus 1
//! broadcast = 11 of 16 registers), 6 × 2 of 8 with AVX2 (15 of 16), 8 × 3
//! of 16 with AVX-512 (28 of 32). The rows left over (`M mod MR`) run as
//! one block of fewer rows; the columns left over as one block of whole
//! vectors, one of 4-lane vectors and one of single columns
//! ([`col_regions`]). Fewer than `MR` rows (but at least 4) run as one
//! block of all `M` rows; a matrix–vector product (`M < 4`) uses a
//! `1 × 4·lanes` tile: four independent accumulator chains streaming B once.
//!
//! The tile loops run column blocks outside and row blocks inside, so one
//! `K × NR` panel of B stays in the L1 cache while every row block of A
//! passes over it (A is the weights in a convolution, activations in a
//! MatMul; both are read in `MR`-row panels).
//!
//! Each operand is described by [`Panels`]: how element `(row-or-column
//! block, sub-block, k)` is addressed in each region (main blocks, vector
//! tail, scalar tail). A constant operand is packed at compile time
//! ([`pack_a`], [`pack_b`]) so that every panel is read with unit stride; an
//! activation operand is read in place through its strides.

use smelt_ir::ops::elementwise::{Epilogue, UnaryFn};

use crate::kernel::build::{add, bin, i, load, mul, muladd, splat, var, vload};
use crate::kernel::{BinOp, Buf, Expr, Program, Scalar, Stmt, Var, VectorShape};
use crate::lower::elementwise::epilogue_expr;
use crate::mathexp::bind;

/// Vectors per row of the matrix–vector tile (one row).
pub const NV_GEMV: usize = 4;

/// Element address `base + block · blk + sub · sub_stride + k · k_stride`
/// (for A `sub` is the row within a row block; for B the vector within a
/// column block, whose lanes are consecutive).
#[derive(Clone, Debug)]
pub struct Panel {
    /// The buffer.
    pub buf: Buf,
    /// Index of element (0, 0, 0).
    pub base: Expr,
    /// Stride between blocks.
    pub blk: i64,
    /// Stride between rows (A) or vectors (B) of a block.
    pub sub: i64,
    /// Stride along k.
    pub k: i64,
}

/// An operand's regions: the main blocks, then (B only) a tail of whole
/// vectors and a tail of 4-lane vectors, then the scalar tail (the left-over
/// rows of A, the left-over columns of B). Each tail is one block
/// ([`col_regions`]), so its rows or vectors share every load of the other
/// operand.
#[derive(Clone, Debug)]
pub struct Panels {
    /// Main `MR`-row or `NR`-column blocks.
    pub main: Panel,
    /// B only: the whole vectors (`lanes` columns each) after the main blocks.
    pub vec_tail: Panel,
    /// B only: 4-lane vectors after those (when `lanes` is wider than 4).
    pub narrow_tail: Panel,
    /// The rows (A) or columns (B) after the vectors.
    pub scalar_tail: Panel,
}

/// The tile geometry for an `M × N` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Rows per row block.
    pub mr: usize,
    /// Vectors per column block.
    pub nv: usize,
    /// `f32` lanes per vector.
    pub lanes: usize,
}

impl Tiling {
    /// The main register tile `(MR, NV)` for a vector unit: as many
    /// accumulators as the registers allow with `NV` vectors of B and one
    /// broadcast of A live beside them, the shape picked by measurement on
    /// x86_64 (ResNet-18, see ARCHITECTURE.md, "Scheduling"):
    ///
    /// | vector unit | tile | registers used |
    /// |---|---|---|
    /// | 128-bit, 16 registers (SSE, armv7 / M4F FPU) | 4 × 2 | 8 + 2 + 1 of 16 |
    /// | 128-bit, 32 registers (aarch64 NEON; not measured) | 4 × 2 | 8 + 2 + 1 of 32 |
    /// | 256-bit, 16 registers (AVX2) | 6 × 2 | 12 + 2 + 1 of 16 |
    /// | 512-bit, 32 registers (AVX-512) | 8 × 3 | 24 + 3 + 1 of 32 |
    pub fn register_tile(shape: VectorShape) -> (usize, usize) {
        match (shape.f32_lanes, shape.registers) {
            (8 | 16, r) if r >= 32 => (8, 3),
            (8 | 16, _) => (6, 2),
            _ => (4, 2),
        }
    }

    /// The tiling for `m` rows on `shape`'s vector unit: the register tile,
    /// or for fewer rows than it has all `m` rows in one block (from 4 rows),
    /// or the matrix–vector tile (below 4 rows).
    pub fn for_rows(m: usize, shape: VectorShape) -> Tiling {
        let lanes = usize::from(shape.f32_lanes);
        let (mr, nv) = Tiling::register_tile(shape);
        if m >= mr {
            Tiling { mr, nv, lanes }
        } else if m >= 4 {
            Tiling { mr: m, nv, lanes }
        } else {
            Tiling {
                mr: 1,
                nv: NV_GEMV,
                lanes,
            }
        }
    }

    /// Columns per column block.
    pub fn nr(self) -> usize {
        self.nv * self.lanes
    }
}

/// How the accumulators start.
#[derive(Clone, Debug)]
pub enum Init {
    /// Zero.
    Zero,
    /// `bias[base + m]` (a convolution's per-channel bias).
    Row(Buf, Expr),
    /// `bias[base + n]` (a Gemm's per-column bias).
    Col(Buf, Expr),
}

/// Everything the generator needs.
#[derive(Clone, Debug)]
pub struct Gemm {
    /// Rows, columns, reduction length.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// The tiling A and B are laid out for.
    pub tiling: Tiling,
    /// A, addressed per row block.
    pub a: Panels,
    /// B, addressed per column block.
    pub b: Panels,
    /// C: buffer, index of (0, 0), row stride (unit along n).
    pub c: (Buf, Expr, i64),
    /// Accumulator start.
    pub init: Init,
    /// Activation applied to each result as it is stored.
    pub act: Option<Epilogue>,
    /// A residual added to each result before the activation: an f32 buffer
    /// laid out like C (read at the same index as the element stored).
    pub residual: Option<Buf>,
}

/// The column regions of an `n`-column product for `g`, as `(first column,
/// blocks, vectors per block, lanes)`: the main blocks, then one block each
/// of the whole `lanes`-lane vectors left, of the 4-lane vectors left (for
/// lanes wider than 4) and of the single columns left (fewer than 4).
pub fn col_regions(g: Tiling, n: usize) -> [(usize, usize, usize, usize); 4] {
    let (nr, l) = (g.nr(), g.lanes);
    let q = l.min(4);
    let n1 = n / nr * nr;
    let w = (n - n1) / l;
    let n2 = n1 + w * l;
    let nq = if q < l { (n - n2) / q } else { 0 };
    let n3 = n2 + nq * q;
    let s = n - n3;
    [
        (0, n / nr, g.nv, l),
        (n1, usize::from(w > 0), w, l),
        (n2, usize::from(nq > 0), nq, q),
        (n3, usize::from(s > 0), s, 1),
    ]
}

/// A's panels when A is read in place: `A[m, k] = buf[base + m·rs + k·cs]`.
pub fn strided_a(g: Tiling, m: usize, buf: Buf, base: Expr, rs: i64, cs: i64) -> Panels {
    let m_full = (m / g.mr * g.mr) as i64;
    let main = Panel {
        buf,
        base: base.clone(),
        blk: g.mr as i64 * rs,
        sub: rs,
        k: cs,
    };
    let tail = Panel {
        buf,
        base: add(base, i(m_full * rs)),
        blk: 0,
        sub: rs,
        k: cs,
    };
    Panels {
        main,
        vec_tail: tail.clone(),
        narrow_tail: tail.clone(),
        scalar_tail: tail,
    }
}

/// B's panels when B is read in place: `B[k, n] = buf[base + k·ld + n]`.
pub fn strided_b(g: Tiling, n: usize, buf: Buf, base: Expr, ld: i64) -> Panels {
    let [_, wide, narrow, scalar] = col_regions(g, n);
    let tail = |(start, _, _, lanes): (usize, usize, usize, usize)| Panel {
        buf,
        base: add(base.clone(), i(start as i64)),
        blk: 0,
        sub: lanes as i64,
        k: ld,
    };
    Panels {
        main: Panel {
            buf,
            base: base.clone(),
            blk: g.nr() as i64,
            sub: g.lanes as i64,
            k: ld,
        },
        vec_tail: tail(wide),
        narrow_tail: tail(narrow),
        scalar_tail: tail(scalar),
    }
}

/// Packs a constant A (`a(m, k)` gives its elements) for `g`: `MR`-row
/// panels `[block][k][row]`, then the left-over rows `[row][k]`. Returns the
/// bytes and the panels reading them from `buf`.
pub fn pack_a(
    g: Tiling,
    m: usize,
    k: usize,
    a: impl Fn(usize, usize) -> f32,
    buf: Buf,
) -> (Vec<u8>, Panels) {
    let m_full = m / g.mr * g.mr;
    let mut out = Vec::with_capacity(m * k * 4);
    for mb in 0..m_full / g.mr {
        for kk in 0..k {
            for r in 0..g.mr {
                out.extend_from_slice(&a(mb * g.mr + r, kk).to_le_bytes());
            }
        }
    }
    for row in m_full..m {
        for kk in 0..k {
            out.extend_from_slice(&a(row, kk).to_le_bytes());
        }
    }
    let tail = Panel {
        buf,
        base: i((m_full * k) as i64),
        blk: 0,
        sub: k as i64,
        k: 1,
    };
    let panels = Panels {
        main: Panel {
            buf,
            base: i(0),
            blk: (k * g.mr) as i64,
            sub: 1,
            k: g.mr as i64,
        },
        vec_tail: tail.clone(),
        narrow_tail: tail.clone(),
        scalar_tail: tail,
    };
    (out, panels)
}

/// Packs a constant B (`b(k, n)` gives its elements) for `g`: `NR`-column
/// panels `[block][k][column]`, then each tail of [`col_regions`] as one
/// panel `[k][column]`. Returns the bytes and the panels reading them from
/// `buf`.
pub fn pack_b(
    g: Tiling,
    k: usize,
    n: usize,
    b: impl Fn(usize, usize) -> f32,
    buf: Buf,
) -> (Vec<u8>, Panels) {
    let nr = g.nr();
    let [_, wide, narrow, scalar] = col_regions(g, n);
    let mut out = Vec::with_capacity(n * k * 4);
    for nb in 0..n / nr {
        for kk in 0..k {
            for c in 0..nr {
                out.extend_from_slice(&b(kk, nb * nr + c).to_le_bytes());
            }
        }
    }
    let mut tail = |(start, _, per, lanes): (usize, usize, usize, usize)| {
        for kk in 0..k {
            for c in 0..per * lanes {
                out.extend_from_slice(&b(kk, start + c).to_le_bytes());
            }
        }
        Panel {
            buf,
            base: i((start * k) as i64),
            blk: 0,
            sub: lanes as i64,
            k: (per * lanes) as i64,
        }
    };
    let (vec_tail, narrow_tail, scalar_tail) = (tail(wide), tail(narrow), tail(scalar));
    let panels = Panels {
        main: Panel {
            buf,
            base: i(0),
            blk: (k * nr) as i64,
            sub: g.lanes as i64,
            k: nr as i64,
        },
        vec_tail,
        narrow_tail,
        scalar_tail,
    };
    (out, panels)
}

/// A load of `lanes` elements (a scalar load for one).
fn vl(buf: Buf, index: Expr, lanes: usize) -> Expr {
    if lanes == 1 {
        load(buf, index, Scalar::F32)
    } else {
        vload(buf, index, Scalar::F32, lanes as u8)
    }
}

/// `x` in `lanes` lanes (itself for one).
fn sp(x: Expr, lanes: usize) -> Expr {
    if lanes == 1 { x } else { splat(lanes as u8, x) }
}

fn at(pn: &Panel, block: Expr, sub: usize, k: Expr) -> Expr {
    let mut e = add(pn.base.clone(), mul(block, i(pn.blk)));
    if sub != 0 {
        e = add(e, i(sub as i64 * pn.sub));
    }
    add(e, mul(k, i(pn.k)))
}

/// One region of rows against one region of columns.
struct Region<'a> {
    /// First row / column and block count.
    start: usize,
    blocks: usize,
    /// Rows per block (A) or vectors per block (B) and lanes per vector.
    per: usize,
    lanes: usize,
    panel: &'a Panel,
}

fn tile(p: &mut Program, g: &Gemm, rows: &Region, cols: &Region) -> Vec<Stmt> {
    if rows.blocks == 0 || cols.blocks == 0 {
        return vec![];
    }
    let (mr, nv, lanes) = (rows.per, cols.per, cols.lanes);
    let (mb, nb, kv) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::I64));
    let vt = |p: &mut Program| {
        if lanes == 1 {
            p.var(Scalar::F32)
        } else {
            p.vector_var(Scalar::F32, lanes as u8)
        }
    };
    let acc: Vec<Vec<Var>> = (0..mr).map(|_| (0..nv).map(|_| vt(p)).collect()).collect();
    let bv: Vec<Var> = (0..nv).map(|_| vt(p)).collect();
    let av: Vec<Var> = (0..mr).map(|_| vt(p)).collect();
    let row = |r: usize| {
        add(
            i(rows.start as i64),
            add(mul(var(mb), i(mr as i64)), i(r as i64)),
        )
    };
    let col = |j: usize| {
        add(
            i(cols.start as i64),
            add(mul(var(nb), i((nv * lanes) as i64)), i((j * lanes) as i64)),
        )
    };
    let mut init = Vec::new();
    for r in 0..mr {
        for j in 0..nv {
            let e = match &g.init {
                Init::Zero => sp(Expr::F(0.0, Scalar::F32), lanes),
                Init::Row(buf, base) => {
                    sp(load(*buf, add(base.clone(), row(r)), Scalar::F32), lanes)
                }
                Init::Col(buf, base) => vl(*buf, add(base.clone(), col(j)), lanes),
            };
            init.push(Stmt::Set(acc[r][j], e));
        }
    }
    // Strength-reduced operand indices: one running index per operand,
    // advanced by its k stride, with each row / vector at a constant offset
    // (which the code generators fold into the address).
    let (ai, bi) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let mut kbody = Vec::new();
    for j in 0..nv {
        let idx = add(var(bi), i(j as i64 * cols.panel.sub));
        kbody.push(Stmt::Set(bv[j], vl(cols.panel.buf, idx, lanes)));
    }
    for r in 0..mr {
        let idx = add(var(ai), i(r as i64 * rows.panel.sub));
        kbody.push(Stmt::Set(
            av[r],
            sp(load(rows.panel.buf, idx, Scalar::F32), lanes),
        ));
        for j in 0..nv {
            kbody.push(Stmt::Set(
                acc[r][j],
                muladd(var(av[r]), var(bv[j]), var(acc[r][j])),
            ));
        }
    }
    kbody.push(Stmt::Set(ai, add(var(ai), i(rows.panel.k))));
    kbody.push(Stmt::Set(bi, add(var(bi), i(cols.panel.k))));
    init.push(Stmt::Set(ai, at(rows.panel, var(mb), 0, i(0))));
    init.push(Stmt::Set(bi, at(cols.panel, var(nb), 0, i(0))));
    let (cbuf, cbase, ldc) = &g.c;
    let mut store = Vec::new();
    for r in 0..mr {
        for j in 0..nv {
            let idx = add(cbase.clone(), add(mul(row(r), i(*ldc)), col(j)));
            let epi = (g.residual, g.act);
            store.extend(store_acc(p, epi, *cbuf, idx, acc[r][j], lanes));
        }
    }
    let mut body = init;
    body.push(Stmt::for_loop(kv, i(0), i(g.k as i64), kbody));
    body.extend(store);
    // With threads, the outer loop is a parallel one over the larger of the
    // column and row block counts: every tile writes its own part of C and
    // keeps its k order, so the result is the one thread's bit for bit.
    let tile_work = (mr * nv * lanes * g.k) as u64;
    let for_ = |var, blocks: usize, body| Stmt::For {
        var,
        start: i(0),
        end: i(blocks as i64),
        body,
    };
    if p.threads > 1 && rows.blocks > cols.blocks {
        let inner = for_(nb, cols.blocks, body);
        let work = tile_work * cols.blocks as u64;
        return vec![p.par_for(mb, rows.blocks, work, vec![inner])];
    }
    let inner = for_(mb, rows.blocks, body);
    vec![p.par_for(nb, cols.blocks, tile_work * rows.blocks as u64, vec![inner])]
}

/// Stores one accumulator (a scalar or a vector of `lanes`) at `idx`,
/// applying the epilogue: the residual (loaded at `idx` from its buffer)
/// added to the accumulator, then Relu and Clip on the vector (`Max`/`Min`, which
/// keep NaN like the separate ops), any other activation per element on
/// the stored values with the element-wise op's own scalar formula (math
/// functions stay scalar in the kernel IR). The activations are the ones
/// [`Epilogue::is_supported`] admits, all float formulas of the element-wise
/// lowering, so `epilogue_expr` succeeds on f32 (the lowering's fast paths
/// refuse any other activation).
fn store_acc(
    p: &mut Program,
    (residual, act): (Option<Buf>, Option<Epilogue>),
    buf: Buf,
    idx: Expr,
    acc: Var,
    lanes: usize,
) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut value = var(acc);
    if let Some(r) = residual {
        let rv = if lanes == 1 {
            load(r, idx.clone(), Scalar::F32)
        } else {
            vl(r, idx.clone(), lanes)
        };
        value = bin(BinOp::Add, value, rv);
    }
    let vector_form = match act {
        Some(Epilogue::Unary(UnaryFn::Relu)) => Some((Some(0.0), None)),
        Some(Epilogue::Clip { min, max }) => Some((Some(min as f64), Some(max as f64))),
        _ => None,
    };
    let c = |v: f64| sp(Expr::F(v, Scalar::F32), lanes);
    match (act, vector_form) {
        (None, _) => {}
        (Some(_), Some((lo, hi))) => {
            if let Some(lo) = lo {
                value = bin(BinOp::Max, value, c(lo));
            }
            if let Some(hi) = hi {
                value = bin(BinOp::Min, value, c(hi));
            }
        }
        (Some(a), None) if lanes == 1 => {
            if let Ok(v) = epilogue_expr(a, value.clone(), Scalar::F32, p, &mut out) {
                value = v;
            }
        }
        (Some(_), None) => {}
    }
    if lanes == 1 {
        out.push(Stmt::Store {
            buf,
            index: idx,
            value,
        });
        return out;
    }
    out.push(Stmt::VStore {
        buf,
        index: idx.clone(),
        value,
    });
    if let (Some(a), None) = (act, vector_form) {
        for l in 0..lanes {
            let at = add(idx.clone(), i(l as i64));
            let x = bind(p, load(buf, at.clone(), Scalar::F32), &mut out);
            if let Ok(v) = epilogue_expr(a, x, Scalar::F32, p, &mut out) {
                out.push(Stmt::Store {
                    buf,
                    index: at,
                    value: v,
                });
            }
        }
    }
    out
}

/// The statements computing `g`.
pub fn gemm(p: &mut Program, g: &Gemm) -> Vec<Stmt> {
    let t = g.tiling;
    let m_full = g.m / t.mr * t.mr;
    let rows = [
        Region {
            start: 0,
            blocks: g.m / t.mr,
            per: t.mr,
            lanes: 1,
            panel: &g.a.main,
        },
        // The rows left over, as one block.
        Region {
            start: m_full,
            blocks: usize::from(g.m > m_full),
            per: g.m - m_full,
            lanes: 1,
            panel: &g.a.scalar_tail,
        },
    ];
    let panels = [&g.b.main, &g.b.vec_tail, &g.b.narrow_tail, &g.b.scalar_tail];
    let cols =
        col_regions(t, g.n)
            .into_iter()
            .zip(panels)
            .map(|((start, blocks, per, lanes), panel)| Region {
                start,
                blocks,
                per,
                lanes,
                panel,
            });
    let mut out = Vec::new();
    for c in cols {
        for r in &rows {
            out.extend(tile(p, g, r, &c));
        }
    }
    out
}

/// The f32 elements of a constant.
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::eval::{Eval, f32_bytes as bytes, rand_f32 as rand};

    /// The scheduled product equals the plain triple loop for every mix of
    /// packed and in-place operands, every accumulator start, and shapes
    /// that exercise each tail (rows, vector columns, scalar columns).
    fn check(m: usize, n: usize, k: usize, pack_a_: bool, pack_b_: bool, init_kind: u8) {
        check_act(
            VectorShape::BASELINE,
            m,
            n,
            k,
            pack_a_,
            pack_b_,
            init_kind,
            (false, None),
        );
    }

    /// The vector units of the targets the schedules know: the 128-bit
    /// baseline (x86-64-v2, armv7, Cortex-M4F), aarch64 NEON, AVX2, AVX-512.
    const SHAPES: [VectorShape; 4] = [
        VectorShape::BASELINE,
        VectorShape {
            f32_lanes: 4,
            registers: 32,
            fma: true,
        },
        VectorShape {
            f32_lanes: 8,
            registers: 16,
            fma: true,
        },
        VectorShape {
            f32_lanes: 16,
            registers: 32,
            fma: true,
        },
    ];

    /// [`check`] for a vector unit, with an epilogue (a residual in
    /// `Input(3)`, an activation), against the interpreter's `Add` and
    /// activation.
    #[allow(clippy::too_many_arguments)]
    fn check_act(
        shape: VectorShape,
        m: usize,
        n: usize,
        k: usize,
        pack_a_: bool,
        pack_b_: bool,
        init_kind: u8,
        (residual, act): (bool, Option<Epilogue>),
    ) {
        let a = rand(m * k, 1 + m as u64);
        let b = rand(k * n, 2 + n as u64);
        let bias = rand(m.max(n), 3);
        let t = Tiling::for_rows(m, shape);
        let mut p = Program {
            shape,
            ..Program::default()
        };
        // A is read transposed when in place (cs = m) to exercise strides.
        let a_t: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
        let ap = if pack_a_ {
            let (bytes_, panels) = pack_a(t, m, k, |r, c| a[r * k + c], Buf::Const(0));
            p.consts.push(bytes_);
            panels
        } else {
            p.consts.push(vec![]);
            strided_a(t, m, Buf::Input(0), i(0), 1, m as i64)
        };
        let bp = if pack_b_ {
            let (bytes_, panels) = pack_b(t, k, n, |r, c| b[r * n + c], Buf::Const(1));
            p.consts.push(bytes_);
            panels
        } else {
            p.consts.push(vec![]);
            strided_b(t, n, Buf::Input(1), i(0), n as i64)
        };
        let init = match init_kind {
            0 => Init::Zero,
            1 => Init::Row(Buf::Input(2), i(0)),
            _ => Init::Col(Buf::Input(2), i(0)),
        };
        let g = Gemm {
            m,
            n,
            k,
            tiling: t,
            a: ap,
            b: bp,
            c: (Buf::Output(0), i(0), n as i64),
            init,
            act,
            residual: residual.then_some(Buf::Input(3)),
        };
        p.body = gemm(&mut p, &g);
        let mut ev = Eval::new(&p);
        ev.mem.insert(Buf::Input(0), bytes(&a_t));
        ev.mem.insert(Buf::Input(1), bytes(&b));
        ev.mem.insert(Buf::Input(2), bytes(&bias));
        let res = rand(m * n, 4 + k as u64);
        ev.mem.insert(Buf::Input(3), bytes(&res));
        ev.mem.insert(Buf::Output(0), vec![0xff; m * n * 4]);
        ev.run();
        let got = ev.f32s(Buf::Output(0));
        let mut plain = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut want: f64 = match init_kind {
                    0 => 0.0,
                    1 => bias[r] as f64,
                    _ => bias[c] as f64,
                };
                for kk in 0..k {
                    want += a[r * k + kk] as f64 * b[kk * n + c] as f64;
                }
                plain[r * n + c] = want as f32;
            }
        }
        if residual {
            // Added in f32 like the separate `Add`.
            for (y, r) in plain.iter_mut().zip(&res) {
                *y += r;
            }
        }
        let plain = smelt_ir::Tensor::from_vec(vec![m, n], plain).unwrap();
        let want = match act {
            Some(a) => a.eval(&plain).unwrap(),
            None => plain,
        };
        for (x, (&g, want)) in got.iter().zip(want.to_f64_vec()).enumerate() {
            let g = g as f64;
            assert!(
                (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{shape:?} m={m} n={n} k={k} packA={pack_a_} packB={pack_b_} init={init_kind} residual={residual} act={act:?}: [{x}] {g} vs {want}"
            );
        }
    }

    #[test]
    fn scheduled_gemm_matches_the_plain_product() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 37, 5),
            (3, 16, 7),
            (4, 8, 3),
            (5, 13, 4),
            (9, 23, 17),
            (8, 4, 2),
            (6, 3, 9),
        ] {
            for pa in [false, true] {
                for pb in [false, true] {
                    for init in 0..3 {
                        check(m, n, k, pa, pb, init);
                    }
                }
            }
        }
    }

    /// Every epilogue on shapes with every tail (vector, scalar columns,
    /// leftover rows) matches the interpreter's activation of the plain
    /// product: Relu and Clip in the vector form, the others per element
    /// after the store. (`Gelu`'s erf form takes the same path as its tanh
    /// form; the evaluator runs `Exp` and `Tanh` unexpanded.)
    #[test]
    fn epilogues_match_the_interpreter() {
        let acts = [
            Epilogue::Unary(UnaryFn::Relu),
            Epilogue::Clip {
                min: -0.25,
                max: 0.5,
            },
            Epilogue::Unary(UnaryFn::Sigmoid),
            Epilogue::Unary(UnaryFn::Tanh),
            Epilogue::Unary(UnaryFn::HardSwish),
            Epilogue::Unary(UnaryFn::Gelu { tanh: true }),
            Epilogue::Unary(UnaryFn::Swish { alpha: 1.5 }),
        ];
        for act in acts {
            for &(m, n, k) in &[(1, 37, 5), (5, 13, 4), (9, 23, 17)] {
                for init in 0..3 {
                    for shape in SHAPES {
                        check_act(shape, m, n, k, init == 1, true, init, (false, Some(act)));
                    }
                }
            }
        }
    }

    /// A residual added in the store, alone and before each kind of
    /// activation (vector form, per-element form), on every tail and every
    /// target's tile.
    #[test]
    fn residual_epilogues_match_the_interpreter() {
        let acts = [
            None,
            Some(Epilogue::Unary(UnaryFn::Relu)),
            Some(Epilogue::Clip { min: 0.0, max: 6.0 }),
            Some(Epilogue::Unary(UnaryFn::Sigmoid)),
        ];
        for act in acts {
            for &(m, n, k) in &[(1, 37, 5), (5, 13, 4), (9, 23, 17)] {
                for init in 0..3 {
                    for shape in SHAPES {
                        check_act(shape, m, n, k, init == 1, init != 2, init, (true, act));
                    }
                }
            }
        }
    }

    /// Every target's tile (4, 8 and 16 lanes; 4 × 2, 6 × 2 and 8 × 3
    /// vectors) on random shapes, with ragged row, column and k tails
    /// around each tile size, packed and in place.
    #[test]
    fn wide_tiles_match_the_plain_product() {
        let mut s = 0x5eed_u64;
        let mut next = |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n) as usize
        };
        for shape in SHAPES {
            let t = Tiling::for_rows(usize::MAX, shape);
            // Exactly one tile, one tile plus every kind of tail, a matrix–
            // vector product, and random shapes up to two tiles and a half.
            let mut shapes = vec![
                (t.mr, t.nr(), 3),
                (t.mr + 1, t.nr() + t.lanes + 3, 5),
                (t.mr - 1, t.nr() * 4 + 1, 7),
                (4, t.nr() + 5, 11),
                (3, 2 * t.nr() + 9, 4),
                (t.mr + 2, t.nr() + 2 * t.lanes + 7, 6),
                (2 * t.mr + 3, t.nr() + 2 * t.lanes + 15, 9),
            ];
            for _ in 0..6 {
                shapes.push((
                    1 + next(t.mr as u64 * 5 / 2),
                    1 + next(t.nr() as u64 * 5 / 2),
                    1 + next(40),
                ));
            }
            for (m, n, k) in shapes {
                for (pa, pb) in [(false, false), (true, true), (true, false)] {
                    check_act(shape, m, n, k, pa, pb, (m + n) as u8 % 3, (false, None));
                }
            }
        }
    }

    #[test]
    fn tiles_fit_the_registers() {
        // Accumulators, B vectors and one broadcast of A.
        for shape in SHAPES {
            let (mr, nv) = Tiling::register_tile(shape);
            assert!(
                mr * nv + nv < usize::from(shape.registers),
                "{shape:?}: {mr} x {nv}"
            );
        }
    }

    #[test]
    fn unused_constants_are_dropped() {
        let mut p = Program {
            consts: vec![vec![1; 8], vec![2; 8]].into(),
            body: vec![Stmt::Store {
                buf: Buf::Output(0),
                index: i(0),
                value: load(Buf::Const(1), i(0), Scalar::F32),
            }],
            ..Program::default()
        };
        crate::schedule::drop_unused_consts(&mut p);
        assert_eq!(p.consts, vec![vec![], vec![2; 8]].into());
    }
}
