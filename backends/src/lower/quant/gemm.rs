//! The integer GEMM schedule of the quant family: `Y[m, n] =
//! epilogue(Σ_k (A[m, k] − za) · (B[k, n] − zb[n]))` with `A` an 8-bit
//! activation read at run time and `B` a constant 8-bit weight packed at
//! compile time ([`super::pack`]).
//!
//! The sum is expanded so that the inner loop multiplies raw bytes with
//! [`Expr::Dot`] (`u8 × i8`, four `k` per `i32` lane, the form of
//! `vpdpbusd`/`sdot`):
//!
//! `Σ (a − za)(b − zb) = Σ a·b − zb · Σ_k a − za · Σ_k b + K · za · zb`,
//!
//! an identity of wrapping `i32` arithmetic, so the result is the scalar
//! kernel's bit for bit. The column sums `Σ_k b` are computed at compile
//! time; the row sums `Σ_k a` once per row when its block is packed. An
//! `i8` activation is stored plus 128 (`a' = a + 128` as `u8`, its zero
//! point moved alike), a `u8` weight minus 128 ([`super::pack`]), which
//! leaves every difference `a − za`, `b − zb` unchanged.
//!
//! Rows run in blocks of `MR`, parallel over blocks ([`Program::par_for`]):
//! each block first copies its rows into the scratch area (`u8`, padded
//! to whole groups of 4 `k` with zeros, the row sums beside them), then
//! runs every panel of `NR = NV · lanes` columns as an `MR × NV` register
//! tile of `i32` vectors, `K / 4` dot steps each, stores the tile to the
//! scratch area and applies the scalar epilogue (zero-point correction,
//! then the op's own: requantization or a plain store) to each valid
//! element. The rows left over (`M mod MR`) run as one more block after
//! the parallel loop, the columns left over as one narrower panel.

use super::pack::{self, Packed};
use crate::kernel::build::{add, bitcast, dot, i, load, mul, splat, sub, var, vload};
use crate::kernel::{Buf, Expr, Program, Scalar, Stmt, Var, VectorShape};

/// Writes row `m` of `A'` (`K` bytes, `u8`) into `buf` from byte `at`.
pub(super) type RowFn<'a> = dyn Fn(&mut Program, Expr, Buf, Expr) -> Vec<Stmt> + 'a;

/// The statements storing the corrected sum (`i32`) of element `(m, n)`.
pub(super) type StoreFn<'a> =
    dyn Fn(&mut Program, Expr, Expr, Expr) -> Result<Vec<Stmt>, String> + 'a;

/// The register tile: `mr` rows × `nv` vectors of `lanes` `i32` lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Rows of a block.
    pub mr: usize,
    /// Accumulator vectors per row.
    pub nv: usize,
    /// `i32` lanes of a vector (the `f32` lane count of the vector unit).
    pub lanes: u8,
}

impl Tile {
    /// The tile for a vector unit: 4 × 4 vectors with 32 registers (16
    /// accumulators, 4 weight vectors, 1 broadcast), 4 × 2 with 16.
    pub fn of(shape: VectorShape) -> Tile {
        let nv = if shape.registers >= 32 { 4 } else { 2 };
        Tile {
            mr: 4,
            nv,
            lanes: shape.f32_lanes.max(4),
        }
    }

    /// Columns of a panel.
    pub fn nr(self) -> usize {
        self.nv * usize::from(self.lanes)
    }
}

/// One integer GEMM.
pub(super) struct IntGemm<'a> {
    /// Rows of A and Y.
    pub m: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Columns of B and Y.
    pub n: usize,
    /// The tile the weight was packed for.
    pub tile: Tile,
    /// The packed panels (`i8`).
    pub panels: Buf,
    /// The column sums (`i32`).
    pub col_sums: Buf,
    /// Copies a row of `A'`.
    pub row: &'a RowFn<'a>,
    /// The zero point of `A'` (`i32`).
    pub za: Expr,
    /// The zero point of `B'` for column `n` (`i32`), `None` when it is 0
    /// (then the row sums are not needed).
    pub zb: Option<&'a dyn Fn(Expr) -> Expr>,
    /// Stores the result of `(m, n)`.
    pub store: &'a StoreFn<'a>,
}

/// Pushes a packed weight's panels and column sums as constants; their
/// buffers.
pub(super) fn push_packed(p: &mut Program, packed: Packed) -> (Buf, Buf) {
    p.consts.push(packed.panels);
    let panels = Buf::Const(p.consts.len() as u32 - 1);
    p.consts.push(packed.col_sums);
    (panels, Buf::Const(p.consts.len() as u32 - 1))
}

fn i32c(v: i64) -> Expr {
    Expr::I(v, Scalar::I32)
}

/// Rounds a byte count up to 64 (the arena's alignment).
fn round64(b: usize) -> usize {
    b.div_ceil(64) * 64
}

/// The scratch area of one GEMM, three regions indexed by the global row
/// so blocks never share bytes: packed rows (`u8`, also read as `i32`
/// groups) from byte 0, row sums (`i32`) from `i32` element `sums`, tiles
/// (`i32`) from `i32` element `tiles`.
struct Scratch {
    rows: Buf,
    sums: i64,
    tiles: i64,
}

/// The GEMM's statements.
pub(super) fn lower(p: &mut Program, g: &IntGemm) -> Result<Vec<Stmt>, String> {
    let t = g.tile;
    let kp = 4 * pack::groups(g.k);
    let nblk = g.m.div_ceil(t.mr);
    let rows_bytes = round64(nblk * t.mr * kp);
    let sums_bytes = round64(nblk * t.mr * 4);
    let tiles_bytes = nblk * t.mr * t.nr() * 4;
    let s = Scratch {
        rows: p.scratch((rows_bytes + sums_bytes + tiles_bytes) as u64),
        sums: (rows_bytes / 4) as i64,
        tiles: ((rows_bytes + sums_bytes) / 4) as i64,
    };
    let full = g.m / t.mr;
    let mut out = Vec::new();
    if full > 0 {
        let rb = p.var(Scalar::I64);
        let body = block(p, g, &s, mul(var(rb), i(t.mr as i64)), t.mr)?;
        let work = (t.mr * g.n * g.k) as u64;
        out.push(p.par_for(rb, full, work, body));
    }
    if !g.m.is_multiple_of(t.mr) {
        out.extend(block(p, g, &s, i((full * t.mr) as i64), g.m % t.mr)?);
    }
    Ok(out)
}

/// One block of `rows` rows from row `row0`: pack, then every panel.
fn block(
    p: &mut Program,
    g: &IntGemm,
    s: &Scratch,
    row0: Expr,
    rows: usize,
) -> Result<Vec<Stmt>, String> {
    let t = g.tile;
    let kp = 4 * pack::groups(g.k) as i64;
    let (r, kk, sum) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::I32));
    let m = add(row0.clone(), var(r));
    let at = mul(m.clone(), i(kp));
    let mut pack_row = (g.row)(p, m.clone(), s.rows, at.clone());
    if (g.k as i64) < kp {
        pack_row.push(Stmt::for_loop(
            kk,
            i(g.k as i64),
            i(kp),
            vec![Stmt::Store {
                buf: s.rows,
                index: add(at.clone(), var(kk)),
                value: Expr::I(0, Scalar::U8),
            }],
        ));
    }
    if g.zb.is_some() {
        let byte = load(s.rows, add(at, var(kk)), Scalar::U8);
        pack_row.extend([
            Stmt::Set(sum, i32c(0)),
            Stmt::for_loop(
                kk,
                i(0),
                i(g.k as i64),
                vec![Stmt::Set(
                    sum,
                    add(var(sum), crate::kernel::build::cast(Scalar::I32, byte)),
                )],
            ),
            Stmt::Store {
                buf: s.rows,
                index: add(i(s.sums), m),
                value: var(sum),
            },
        ]);
    }
    let mut out = vec![Stmt::for_loop(r, i(0), i(rows as i64), pack_row)];
    let (nr, lanes) = (t.nr(), usize::from(t.lanes));
    let (np, tail) = (g.n / nr, g.n % nr);
    if np > 0 {
        let pn = p.var(Scalar::I64);
        let body = panel(p, g, s, (&row0, rows), var(pn), t.nv, nr)?;
        out.push(Stmt::for_loop(pn, i(0), i(np as i64), body));
    }
    if tail > 0 {
        out.extend(panel(
            p,
            g,
            s,
            (&row0, rows),
            i(np as i64),
            tail.div_ceil(lanes),
            tail,
        )?);
    }
    Ok(out)
}

/// One `rows × nv`-vector tile of panel `pn`, `width` of whose columns are
/// stored.
fn panel(
    p: &mut Program,
    g: &IntGemm,
    s: &Scratch,
    (row0, rows): (&Expr, usize),
    pn: Expr,
    nv: usize,
    width: usize,
) -> Result<Vec<Stmt>, String> {
    let t = g.tile;
    let (nr, lanes) = (t.nr() as i64, t.lanes);
    let kg = pack::groups(g.k) as i64;
    let blanes = 4 * lanes;
    let acc: Vec<Vec<Var>> = (0..rows)
        .map(|_| (0..nv).map(|_| p.vector_var(Scalar::I32, lanes)).collect())
        .collect();
    let bv: Vec<Var> = (0..nv).map(|_| p.vector_var(Scalar::I8, blanes)).collect();
    let av = p.vector_var(Scalar::U8, blanes);
    let step = p.var(Scalar::I64);
    let mut out: Vec<Stmt> = acc
        .iter()
        .flatten()
        .map(|&a| Stmt::Set(a, splat(lanes, i32c(0))))
        .collect();
    let mut body = Vec::new();
    for (v, &b) in bv.iter().enumerate() {
        let at = mul(
            add(
                mul(add(mul(pn.clone(), i(kg)), var(step)), i(nr)),
                i((v * usize::from(lanes)) as i64),
            ),
            i(4),
        );
        body.push(Stmt::Set(b, vload(g.panels, at, Scalar::I8, blanes)));
    }
    for (r, row) in acc.iter().enumerate() {
        let group = load(
            s.rows,
            add(mul(add(row0.clone(), i(r as i64)), i(kg)), var(step)),
            Scalar::I32,
        );
        body.push(Stmt::Set(av, bitcast(Scalar::U8, splat(lanes, group))));
        for (&a, &b) in row.iter().zip(&bv) {
            body.push(Stmt::Set(a, dot(var(av), var(b), var(a))));
        }
    }
    out.push(Stmt::for_loop(step, i(0), i(kg), body));
    for (r, row) in acc.iter().enumerate() {
        for (v, &a) in row.iter().enumerate() {
            out.push(Stmt::VStore {
                buf: s.rows,
                index: add(
                    mul(add(row0.clone(), i(r as i64)), i(nr)),
                    i(s.tiles + (v * usize::from(lanes)) as i64),
                ),
                value: var(a),
            });
        }
    }
    // The epilogue, element by element.
    let (rr, c) = (p.var(Scalar::I64), p.var(Scalar::I64));
    let m = add(row0.clone(), var(rr));
    let n = add(mul(pn, i(nr)), var(c));
    let raw = load(
        s.rows,
        add(mul(m.clone(), i(nr)), add(i(s.tiles), var(c))),
        Scalar::I32,
    );
    let col = load(g.col_sums, n.clone(), Scalar::I32);
    let mut sum = sub(raw, mul(g.za.clone(), col));
    if let Some(zb) = g.zb {
        let z = zb(n.clone());
        let rowsum = load(s.rows, add(i(s.sums), m.clone()), Scalar::I32);
        let k_za = mul(i32c(g.k as i64), g.za.clone());
        sum = add(sub(sum, mul(z.clone(), rowsum)), mul(k_za, z));
    }
    let store = (g.store)(p, m, n, sum)?;
    out.push(Stmt::for_loop(
        rr,
        i(0),
        i(rows as i64),
        vec![Stmt::for_loop(c, i(0), i(width as i64), store)],
    ));
    Ok(out)
}

/// The bytes of a constant buffer of the program, `None` for any other.
pub(super) fn const_bytes(p: &Program, buf: Buf) -> Option<Vec<u8>> {
    let Buf::Const(c) = buf else { return None };
    p.consts.get(c as usize).map(|b| b.to_vec())
}

/// Whether `ty` is an 8-bit integer type (the GEMM's operands).
pub(super) fn is_8bit(ty: Scalar) -> bool {
    matches!(ty, Scalar::U8 | Scalar::I8)
}

/// An activation element of type `ty` as the `u8` of `A'` (plus 128 for
/// `i8`).
pub(super) fn a_byte(ty: Scalar, x: Expr) -> Expr {
    use crate::kernel::build::cast;
    if ty == Scalar::I8 {
        cast(Scalar::U8, add(cast(Scalar::I32, x), i32c(128)))
    } else {
        x
    }
}

/// An activation zero point (any integer type) as `A'`'s (`i32`).
pub(super) fn a_zero(ty: Scalar, z: Option<Expr>) -> Expr {
    let z = z.map_or(i32c(0), |z| crate::kernel::build::cast(Scalar::I32, z));
    if ty == Scalar::I8 {
        add(z, i32c(128))
    } else {
        z
    }
}

/// A weight zero point (any integer type) as `B'`'s (`i32`), or `None`
/// when it is known to be 0.
pub(super) fn b_zero(ty: Scalar, z: Option<Expr>) -> Option<Expr> {
    let z = z.map(|z| crate::kernel::build::cast(Scalar::I32, z));
    match (ty, z) {
        (Scalar::U8, Some(z)) => Some(sub(z, i32c(128))),
        (Scalar::U8, None) => Some(i32c(-128)),
        (_, z) => z,
    }
}
