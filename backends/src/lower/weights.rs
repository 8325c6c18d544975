//! Lowering of the weight ops (`ir/src/ops/weights.rs`): `Decode` and the
//! weight-only `EncodedMatMul`, which read a constant in its stored
//! encoding (GGUF blocks, affine int8, dense f16/bf16) with byte loads and
//! decode it in kernel IR, so both code generators get the same code and
//! the artifact holds the encoded bytes (the constant reaches
//! `Program::consts` by reference, unchanged).
//!
//! `EncodedMatMul(x, w[N, K], b)` is, per output `(m, n)`, a dot product
//! along `K`: for a block format with one scale per block (Q8_0, Q4_0,
//! Q5_0) the quants of a block are summed against `x` first and the sum is
//! scaled once (`acc += d · Σ q·x`, as ggml's dot kernels do); the other
//! encodings decode each element (`acc += decode(w[n, k]) · x[m, k]`).

use smelt_ir::encoding::{AffineStorage, Granularity};
use smelt_ir::ops::weights::Weights;
use smelt_ir::ops::{Op, OpDef};
use smelt_ir::{BlockFormat, DType, Encoding, Graph, Node, TensorType, ValueId};

use super::{NodeResult, loop_nest};
use crate::kernel::build::{add, bin, cast, cmp, f, i, load, mul, select, sub, var};
use crate::kernel::{BinOp, Buf, CmpOp, Expr, Program, Scalar, Stmt};

mod decode;

use decode::{block_quant, block_scale, decode_element};

/// The operands of a weight op as lowering sees them: each input's buffer
/// and full type (the encoding included, which [`super::Operand`] does not
/// carry), and the output's buffer and type.
pub(super) struct WeightOperands {
    ins: Vec<Option<(Buf, TensorType)>>,
    out: (Buf, TensorType),
}

impl WeightOperands {
    /// Reads the operands of `node` from the graph and the buffers the
    /// memory plan chose.
    pub(super) fn of(
        g: &Graph,
        node: &Node,
        buf: impl Fn(ValueId) -> Option<Buf>,
    ) -> Result<WeightOperands, String> {
        let ins = node
            .inputs
            .iter()
            .map(|id| id.and_then(|id| Some((buf(id)?, g.value(id).ty.clone()))))
            .collect();
        let out_id = *node.outputs.first().ok_or("the node has no output")?;
        let out = (
            buf(out_id).ok_or("the output has no buffer")?,
            g.value(out_id).ty.clone(),
        );
        Ok(WeightOperands { ins, out })
    }

    fn input(&self, k: usize, what: &str) -> Result<&(Buf, TensorType), String> {
        self.ins
            .get(k)
            .and_then(Option::as_ref)
            .ok_or(format!("no {what}"))
    }
}

/// Lowers a `Decode` or `EncodedMatMul` node (`op` is a weight op).
pub(super) fn lower(op: &Op, ops: &WeightOperands, p: &mut Program) -> NodeResult {
    match op {
        Op::Weights(Weights::Decode) => lower_decode(ops, p),
        Op::Weights(Weights::EncodedMatMul) => lower_encoded_matmul(ops, p),
        other => Err(format!("{} is not a weight op", other.name())),
    }
}

/// `(rows, K)` of a stored weight: its innermost dim is `K`.
fn rows_k(ty: &TensorType) -> Result<(usize, usize), String> {
    let k = *ty.shape.last().ok_or("a rank-0 weight")?;
    let n = ty.numel().map_err(|e| e.to_string())?;
    Ok((n.checked_div(k).unwrap_or(0), k))
}

fn lower_decode(ops: &WeightOperands, p: &mut Program) -> NodeResult {
    let (wbuf, wty) = ops.input(0, "weight")?;
    let (rows, k) = rows_k(wty)?;
    // Checked before the loops: the decoder's refusal is the node's error
    // (inside, the element is then always decodable).
    decode_element(p, wty, *wbuf, i(0), i(0))?;
    let out = ops.out.0;
    let nest = loop_nest(p, &[rows, k], |p, idx| {
        let (r, kk) = (idx[0].clone(), idx[1].clone());
        let value = decode_element(p, wty, *wbuf, r.clone(), kk.clone())
            .unwrap_or_else(|_| f(0.0, Scalar::F32));
        vec![Stmt::Store {
            buf: out,
            index: add(mul(r, i(k as i64)), kk),
            value,
        }]
    });
    Ok(p.par_nest(nest, (rows * k) as u64))
}

fn lower_encoded_matmul(ops: &WeightOperands, p: &mut Program) -> NodeResult {
    let (xbuf, xty) = ops.input(0, "x")?;
    let (wbuf, wty) = ops.input(1, "weight")?;
    let bias = ops.ins.get(2).and_then(Option::as_ref);
    let (obuf, oty) = &ops.out;
    if xty.dtype != DType::F32 || oty.dtype != DType::F32 {
        return Err(format!("EncodedMatMul of {} to {}", xty.dtype, oty.dtype));
    }
    let (n, k) = rows_k(wty)?;
    let m = xty
        .numel()
        .map_err(|e| e.to_string())?
        .checked_div(k)
        .unwrap_or(0);
    // Checked before the loops: the decoder's refusal is the node's error.
    decode_element(p, wty, *wbuf, i(0), i(0))?;
    let acc = p.var(Scalar::F32);
    let kv = p.var(Scalar::I64);
    let (wbuf, obuf) = (*wbuf, *obuf);
    let (xbuf, wty) = (*xbuf, wty.clone());
    let block = match wty.encoding {
        Encoding::Block(f @ (BlockFormat::Q8_0 | BlockFormat::Q4_0 | BlockFormat::Q5_0)) => Some(f),
        _ => None,
    };
    let inner = p.var(Scalar::F32);
    let jv = p.var(Scalar::I64);
    let nest = loop_nest(p, &[m, n], |p, idx| {
        let (mi, ni) = (idx[0].clone(), idx[1].clone());
        let x_at = |kk: Expr| load(xbuf, add(mul(mi.clone(), i(k as i64)), kk), Scalar::F32);
        let dot = match block {
            // acc += d · Σ_j q_j · x[kb·B + j], one scale per block.
            Some(fmt) => {
                let bl = fmt.block_len() as i64;
                let kk = add(mul(var(kv), i(bl)), var(jv));
                let q = block_quant(fmt, wbuf, ni.clone(), k, var(kv), var(jv));
                let d = block_scale(fmt, wbuf, ni.clone(), k, var(kv));
                vec![Stmt::for_loop(
                    kv,
                    i(0),
                    i(k as i64 / bl),
                    vec![
                        Stmt::Set(inner, f(0.0, Scalar::F32)),
                        Stmt::for_loop(
                            jv,
                            i(0),
                            i(bl),
                            vec![Stmt::Set(inner, add(var(inner), mul(q, x_at(kk))))],
                        ),
                        Stmt::Set(acc, add(var(acc), mul(d, var(inner)))),
                    ],
                )]
            }
            // acc += decode(w[n, k]) · x[m, k].
            None => {
                let wv = decode_element(p, &wty, wbuf, ni.clone(), var(kv))
                    .unwrap_or_else(|_| f(0.0, Scalar::F32));
                vec![Stmt::for_loop(
                    kv,
                    i(0),
                    i(k as i64),
                    vec![Stmt::Set(acc, add(var(acc), mul(wv, x_at(var(kv)))))],
                )]
            }
        };
        let result = match bias {
            Some((b, _)) => add(var(acc), load(*b, ni.clone(), Scalar::F32)),
            None => var(acc),
        };
        let mut body = vec![Stmt::Set(acc, f(0.0, Scalar::F32))];
        body.extend(dot);
        body.push(Stmt::Store {
            buf: obuf,
            index: add(mul(mi, i(n as i64)), ni),
            value: result,
        });
        body
    });
    Ok(p.par_nest(nest, (m * n * k) as u64))
}

/// Integer helpers on `U32`/`I32` kernel values.
fn u32c(v: i64) -> Expr {
    Expr::I(v, Scalar::U32)
}

fn i32c(v: i64) -> Expr {
    Expr::I(v, Scalar::I32)
}

/// An f32 from IEEE half bits (`h`, a `U16` value), exactly: the magnitude
/// bits shifted into an f32 and scaled by 2^112 rebias the exponent (and
/// make half subnormals normal); infinities and NaNs keep their payload.
fn half_to_f32(h: Expr) -> Expr {
    let h = cast(Scalar::U32, h);
    let mag = bin(
        BinOp::Shl,
        bin(BinOp::And, h.clone(), u32c(0x7fff)),
        u32c(13),
    );
    let scaled = mul(
        Expr::Bitcast(Scalar::F32, Box::new(mag.clone())),
        f(2f64.powi(112), Scalar::F32),
    );
    let special = cmp(
        CmpOp::Eq,
        bin(BinOp::And, h.clone(), u32c(0x7c00)),
        u32c(0x7c00),
    );
    let inf_nan = Expr::Bitcast(
        Scalar::F32,
        Box::new(bin(BinOp::Or, mag, u32c(0x7f80_0000))),
    );
    let abs = select(special, inf_nan, scaled);
    let sign = bin(BinOp::Shl, bin(BinOp::And, h, u32c(0x8000)), u32c(16));
    Expr::Bitcast(
        Scalar::F32,
        Box::new(bin(
            BinOp::Or,
            Expr::Bitcast(Scalar::U32, Box::new(abs)),
            sign,
        )),
    )
}

/// An f32 from bfloat16 bits (`U16`): the top half of the f32.
fn bf16_to_f32(h: Expr) -> Expr {
    let bits = bin(BinOp::Shl, cast(Scalar::U32, h), u32c(16));
    Expr::Bitcast(Scalar::F32, Box::new(bits))
}

/// The byte at `off` (an `I64` byte offset) of `buf`, as `U8`.
fn byte(buf: Buf, off: Expr) -> Expr {
    load(buf, off, Scalar::U8)
}

/// The f16 at the even byte offset `off` of `buf`, as f32.
fn half_at(buf: Buf, off: Expr) -> Expr {
    half_to_f32(load(buf, bin(BinOp::Div, off, i(2)), Scalar::U16))
}

/// The affine group of element `(r, k)` of a 2-D `[rows, kdim]` tensor.
fn affine_group(g: Granularity, r: Expr, k: Expr, kdim: usize, rank: usize) -> Option<Expr> {
    Some(match g {
        Granularity::PerTensor => i(0),
        Granularity::PerAxis { axis } if axis + 2 == rank => r,
        Granularity::PerAxis { axis } if axis + 1 == rank => k,
        Granularity::PerBlock { axis, block } if axis + 1 == rank => {
            let per_row = kdim.div_ceil(block) as i64;
            add(mul(r, i(per_row)), bin(BinOp::Div, k, i(block as i64)))
        }
        _ => return None,
    })
}

/// `(f32(q) - f32(zp)) · scale` for an 8-bit affine weight.
fn affine_value(
    ty: &TensorType,
    a: &smelt_ir::Affine,
    buf: Buf,
    r: Expr,
    k: Expr,
) -> Result<Expr, String> {
    let (_, kdim) = rows_k(ty)?;
    let lay = a.layout(&ty.shape).map_err(|e| e.to_string())?;
    if ty.shape.len() != 2 {
        return Err(format!("an affine weight of rank {}", ty.shape.len()));
    }
    let q_ty = match a.storage {
        AffineStorage::I8 => Scalar::I8,
        AffineStorage::U8 => Scalar::U8,
        other => {
            return Err(format!(
                "affine {} weights have no native decoder yet",
                other.name()
            ));
        }
    };
    let grp = affine_group(a.granularity, r.clone(), k.clone(), kdim, 2)
        .ok_or("this affine granularity has no native decoder yet")?;
    let q = cast(Scalar::F32, load(buf, add(mul(r, i(kdim as i64)), k), q_ty));
    let q = match lay.zero_points_offset {
        Some(zo) => sub(
            q,
            cast(Scalar::F32, load(buf, add(i(zo as i64), grp.clone()), q_ty)),
        ),
        None => q,
    };
    let scale = load(buf, add(i(lay.scales_offset as i64 / 4), grp), Scalar::F32);
    Ok(mul(q, scale))
}
