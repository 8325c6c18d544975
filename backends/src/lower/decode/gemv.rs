//! Vectorised dot products of an f32 activation row with one row of a
//! Q8_0, Q4_0, Q4_1 or dense f16 weight: the weight is unpacked in vector
//! registers with the kernel IR's integer vector forms and multiplied with
//! the activation in f32 lanes, so the matrix-vector product of a decode
//! step streams the encoded bytes instead of decoding one element at a time.
//!
//! The activation stays f32 (no quantization of `x`), so the only
//! difference from the scalar kernel ([`super::encoded_dot`]) is the order
//! of the f32 sums: per block, lane `l` of a vector accumulator sums the
//! products of the elements `l, l + L, …` of the block (`L` the f32 lane
//! count), the block's scale multiplies that vector into a running vector
//! of the row, and the lanes are added at the end, lane 0 first. Q4_1's
//! `d · q + m` is summed as `d · Σ x·q + m · Σ x` per block.
//!
//! Two unpackings, by the program's vector shape: with 4 `f32` lanes (the
//! 128-bit baseline, and the only width Cranelift has) 16 bytes widen in
//! halves (`i8x16` → `i16x8` → `i32x4` → `f32x4`); with more lanes (LLVM
//! with AVX2 or AVX-512) one lane-wise cast does it (`i8x16` → `f32x16`,
//! which LLVM splits into the registers it has).

use smelt_ir::TensorType;
use smelt_ir::encoding::{BlockFormat, Encoding};

use crate::kernel::build::{add, bin, bitcast, cast, f, i, load, mul, muladd, reduce, splat, var};
use crate::kernel::build::{vload, widen};
use crate::kernel::{BinOp, Buf, Expr, Half, Program, Scalar, Stmt, Var};

use super::half_to_f32;

/// Elements one unpacking step handles: 16 bytes of quants.
const STEP: usize = 16;

/// Where the activation row is: `x[at + k]` is its element `k` (f32).
#[derive(Clone)]
pub struct XRow {
    /// The buffer.
    pub buf: Buf,
    /// The element index of the row's element 0 (`I64`).
    pub at: Expr,
}

/// Statements setting the `F32` variable `acc` to `Σ_k x[k] · w[row, k]`
/// with vector code, or `None` when the weight has no vector schedule (a
/// format other than Q8_0, Q4_0, Q4_1 and f16, or an f16 weight holding an
/// infinity or NaN, which the vector f16 decoding does not keep).
pub fn vector_dot(
    p: &mut Program,
    x: &XRow,
    w: (Buf, &TensorType),
    row: Expr,
    acc: Var,
) -> Option<Vec<Stmt>> {
    let (wbuf, wty) = w;
    let k = *wty.shape.last()?;
    let lanes = if p.shape.f32_lanes > 4 { 16 } else { 4 };
    let mut g = Gen {
        lanes,
        x: x.clone(),
        sum: p.vector_var(Scalar::F32, lanes),
        xsum: None,
        body: Vec::new(),
    };
    let total = p.vector_var(Scalar::F32, lanes);
    let blk = p.var(Scalar::I64);
    let mut out = vec![Stmt::Set(total, splat(lanes, f(0.0, Scalar::F32)))];
    match (wty.encoding, wty.dtype) {
        (Encoding::Block(fmt @ (BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q4_1)), _) => {
            let (blen, bbytes) = (fmt.block_len(), fmt.block_bytes());
            if k % blen != 0 {
                return None;
            }
            let nb = (k / blen) as i64;
            // Byte offset of the block.
            let base = mul(add(mul(row, i(nb)), var(blk)), i(bbytes as i64));
            let k0 = mul(var(blk), i(blen as i64));
            let scale = half_to_f32(load(wbuf, bin(BinOp::Div, base.clone(), i(2)), Scalar::U16));
            g.body
                .push(Stmt::Set(g.sum, splat(lanes, f(0.0, Scalar::F32))));
            // Q4_1's offset: `m · Σ x` over the block, summed from the x
            // vectors the products load.
            let xsum = (fmt == BlockFormat::Q4_1).then(|| {
                let xs = p.vector_var(Scalar::F32, lanes);
                (xs, p.vector_var(Scalar::F32, lanes))
            });
            if let Some((xs, _)) = xsum {
                g.body
                    .push(Stmt::Set(xs, splat(lanes, f(0.0, Scalar::F32))));
            }
            g.xsum = xsum;
            if fmt == BlockFormat::Q8_0 {
                for h in 0..2 {
                    let at = add(base.clone(), i(2 + (STEP * h) as i64));
                    let q = vload(wbuf, at, Scalar::I8, STEP as u8);
                    g.bytes(p, q, add(k0.clone(), i((STEP * h) as i64)));
                }
            } else {
                // Q4_0: element j in the low nibble of byte j, element
                // j + 16 in its high nibble, both stored plus 8. Q4_1: the
                // same nibbles unsigned, after the scale and the minimum.
                let (qs_at, bias) = if fmt == BlockFormat::Q4_1 {
                    (4, 0)
                } else {
                    (2, 8)
                };
                let qs = p.vector_var(Scalar::U8, STEP as u8);
                g.body.push(Stmt::Set(
                    qs,
                    vload(wbuf, add(base.clone(), i(qs_at)), Scalar::U8, STEP as u8),
                ));
                let nibbles = [
                    bin(
                        BinOp::And,
                        var(qs),
                        splat(STEP as u8, Expr::I(15, Scalar::U8)),
                    ),
                    bin(
                        BinOp::Shr,
                        var(qs),
                        splat(STEP as u8, Expr::I(4, Scalar::U8)),
                    ),
                ];
                for (h, n) in nibbles.into_iter().enumerate() {
                    let q = bin(
                        BinOp::Sub,
                        bitcast(Scalar::I8, n),
                        splat(STEP as u8, Expr::I(bias, Scalar::I8)),
                    );
                    g.bytes(p, q, add(k0.clone(), i((STEP * h) as i64)));
                }
            }
            let mut body = std::mem::take(&mut g.body);
            body.push(Stmt::Set(
                total,
                muladd(splat(lanes, scale), var(g.sum), var(total)),
            ));
            if let Some((xs, _)) = xsum {
                let min = half_to_f32(load(
                    wbuf,
                    add(bin(BinOp::Div, base.clone(), i(2)), i(1)),
                    Scalar::U16,
                ));
                body.push(Stmt::Set(
                    total,
                    muladd(splat(lanes, min), var(xs), var(total)),
                ));
            }
            out.push(Stmt::for_loop(blk, i(0), i(nb), body));
        }
        (Encoding::Dense, smelt_ir::DType::F16) => {
            if k % STEP != 0 || !finite_halves(p, wbuf) {
                return None;
            }
            let steps = (k / STEP) as i64;
            let at = add(mul(row, i(k as i64)), mul(var(blk), i(STEP as i64)));
            g.sum = total;
            g.halves(
                p,
                vload(wbuf, at, Scalar::U16, STEP as u8),
                mul(var(blk), i(STEP as i64)),
            );
            out.push(Stmt::for_loop(
                blk,
                i(0),
                i(steps),
                std::mem::take(&mut g.body),
            ));
        }
        _ => return None,
    }
    out.push(Stmt::Set(acc, reduce(BinOp::Add, var(total))));
    Some(out)
}

/// Whether the f16 constant `buf` holds no infinity or NaN (a buffer that
/// is not a constant of the program: false).
fn finite_halves(p: &Program, buf: Buf) -> bool {
    let Buf::Const(c) = buf else { return false };
    let Some(bytes) = p.consts.get(c as usize) else {
        return false;
    };
    let bytes: &[u8] = bytes;
    bytes
        .chunks_exact(2)
        .all(|h| u16::from_le_bytes([h[0], h[1]]) & 0x7c00 != 0x7c00)
}

/// The statements of one block being built.
struct Gen {
    /// `f32` lanes of the accumulators: 4, or 16 (LLVM's wider shapes).
    lanes: u8,
    x: XRow,
    /// The vector the products are added to.
    sum: Var,
    /// With an offset (Q4_1): the vector the x values are added to, and a
    /// temporary holding each loaded x vector.
    xsum: Option<(Var, Var)>,
    body: Vec<Stmt>,
}

impl Gen {
    /// `sum += f32(q[j]) · x[k0 + j]` for the 16 8-bit integers of `q`.
    fn bytes(&mut self, p: &mut Program, q: Expr, k0: Expr) {
        let qv = p.vector_var(Scalar::I8, STEP as u8);
        self.body.push(Stmt::Set(qv, q));
        if self.lanes == 16 {
            return self.fma(cast(Scalar::F32, var(qv)), k0);
        }
        for (h, half) in [Half::Low, Half::High].into_iter().enumerate() {
            let w16 = p.vector_var(Scalar::I16, 8);
            self.body.push(Stmt::Set(w16, widen(half, var(qv))));
            for (t, quarter) in [Half::Low, Half::High].into_iter().enumerate() {
                let w32 = widen(quarter, var(w16));
                let at = add(k0.clone(), i((8 * h + 4 * t) as i64));
                self.fma(cast(Scalar::F32, w32), at);
            }
        }
    }

    /// `sum += half(h[j]) · x[k0 + j]` for the 16 f16 bit patterns of `h`
    /// (finite ones: see [`half_lanes`]).
    fn halves(&mut self, p: &mut Program, h: Expr, k0: Expr) {
        if self.lanes == 16 {
            let hv = p.vector_var(Scalar::U16, STEP as u8);
            self.body.push(Stmt::Set(hv, h));
            return self.fma(half_lanes(cast(Scalar::U32, var(hv)), 16), k0);
        }
        let hv = p.vector_var(Scalar::U16, STEP as u8 / 2);
        // Two loads of 8: Cranelift's vectors are 128 bits.
        for part in 0..2 {
            let at = match &h {
                Expr::VLoad { buf, index, .. } => {
                    vload(*buf, add((**index).clone(), i(8 * part)), Scalar::U16, 8)
                }
                other => other.clone(),
            };
            self.body.push(Stmt::Set(hv, at));
            for (t, half) in [Half::Low, Half::High].into_iter().enumerate() {
                let at = add(k0.clone(), i(8 * part + 4 * t as i64));
                self.fma(half_lanes(widen(half, var(hv)), 4), at);
            }
        }
    }

    /// `sum += v · x[k0 .. k0 + lanes]` (and `xsum += x[…]`).
    fn fma(&mut self, v: Expr, k0: Expr) {
        let xv = vload(
            self.x.buf,
            add(self.x.at.clone(), k0),
            Scalar::F32,
            self.lanes,
        );
        let Some((xs, xt)) = self.xsum else {
            self.body
                .push(Stmt::Set(self.sum, muladd(v, xv, var(self.sum))));
            return;
        };
        self.body.push(Stmt::Set(xt, xv));
        self.body
            .push(Stmt::Set(self.sum, muladd(v, var(xt), var(self.sum))));
        self.body.push(Stmt::Set(xs, add(var(xs), var(xt))));
    }
}

/// The f32 values of `lanes` finite f16 bit patterns held in `u32` lanes:
/// exponent and mantissa moved into an f32's place and scaled by 2^112
/// (exact for normals and subnormals alike), the sign put back.
fn half_lanes(h: Expr, lanes: u8) -> Expr {
    let u = |v: i64| splat(lanes, Expr::I(v, Scalar::U32));
    let mag = bin(BinOp::Shl, bin(BinOp::And, h.clone(), u(0x7fff)), u(13));
    let scaled = mul(
        bitcast(Scalar::F32, mag),
        splat(lanes, f(2f64.powi(112), Scalar::F32)),
    );
    let sign = bin(BinOp::Shl, bin(BinOp::And, h, u(0x8000)), u(16));
    bitcast(
        Scalar::F32,
        bin(BinOp::Or, bitcast(Scalar::U32, scaled), sign),
    )
}

#[cfg(test)]
mod tests;
