//! Matrix products and attention: `MatMul`, `Gemm`, `Einsum`, `Attention`,
//! `LinearAttention`, `RotaryEmbedding` and `Det`.
//!
//! Every product goes through one kernel, [`matmul_acc`], which walks `i-k-j`
//! over contiguous rows (blocked over `k` and `j` so a tile of `B` stays in
//! cache) so the compiler vectorises the innermost loop; it is the hot path
//! of transformer models in the interpreter. `f16`/`bf16` accumulate in `f32`
//! and round once, like NumPy's half-precision `matmul`; `f32` accumulates in
//! `f32`, `f64` in `f64` and integers wrap like C.
//!
//! `Attention` and `RotaryEmbedding` compute in `f64` but round to the
//! tensor's type after each step where the ONNX reference (NumPy in that type)
//! rounds, so `f16`/`bf16` results match the reference bit for bit in the
//! common cases.

use std::collections::BTreeSet;

use crate::dtype::{DType, rounder};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, OpDef, ParseCtx, check_arity, fmt_list, opt, req};
use crate::shape::{Shape, broadcast_index_map, broadcast_shapes, numel, strides};
use crate::tensor::{Data, Elem, Tensor};
use crate::{dispatch_int, shape_err, type_err};

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Linalg {
    /// `MatMul(A, B)` with NumPy semantics (1-D operands, broadcast batches).
    MatMul,
    /// `Gemm(A, B, C?)`: `alpha * A' * B' + beta * C`.
    Gemm(GemmAttrs),
    /// `Einsum(inputs...)` with a parsed equation.
    Einsum(EinsumEq),
    /// Scaled dot-product attention (opsets 23, 24, 25).
    Attention(AttentionAttrs),
    /// Rotary positional embedding (opset 23).
    RotaryEmbedding {
        /// Rotate interleaved pairs instead of halves.
        interleaved: bool,
        /// Rotated leading part of each head (`0` = the whole head).
        rotary_dim: usize,
        /// Heads of a 3-D input (required for 3-D inputs).
        num_heads: Option<usize>,
    },
    /// Determinant of the trailing square matrices.
    Det,
    /// Linear attention with a recurrent state (opset 27).
    LinearAttention(LinearAttnAttrs),
}

/// The state update of `LinearAttention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearRule {
    /// `S += k ⊗ v`.
    Linear,
    /// `S = exp(g) * S + k ⊗ v`.
    Gated,
    /// `S += β k ⊗ (v - Sᵀk)`.
    Delta,
    /// `S = exp(g) * S; S += β k ⊗ (v - Sᵀk)`.
    GatedDelta,
}

impl LinearRule {
    fn name(self) -> &'static str {
        match self {
            LinearRule::Linear => "linear",
            LinearRule::Gated => "gated",
            LinearRule::Delta => "delta",
            LinearRule::GatedDelta => "gated_delta",
        }
    }

    fn gated(self) -> bool {
        matches!(self, LinearRule::Gated | LinearRule::GatedDelta)
    }

    fn delta(self) -> bool {
        matches!(self, LinearRule::Delta | LinearRule::GatedDelta)
    }
}

/// The attributes of `LinearAttention`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearAttnAttrs {
    /// Query heads.
    pub q_num_heads: usize,
    /// Key/value heads (and states).
    pub kv_num_heads: usize,
    /// Output scale; `0` means `1/sqrt(d_k)`.
    pub scale: f32,
    /// The recurrence.
    pub rule: LinearRule,
}

/// The attributes of `Gemm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmAttrs {
    /// Multiplier of `A' * B'`.
    pub alpha: f32,
    /// Multiplier of `C`.
    pub beta: f32,
    /// Transpose `A` first.
    pub trans_a: bool,
    /// Transpose `B` first.
    pub trans_b: bool,
    /// Opsets before 11 require `C`.
    pub c_required: bool,
    /// Opsets before 7 with `broadcast = 0`: `C` must have the output's shape.
    pub c_exact: bool,
}

/// The attributes of `Attention`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionAttrs {
    /// Apply the bottom-right aligned causal mask.
    pub is_causal: bool,
    /// Heads of a 3-D `Q`.
    pub q_num_heads: Option<usize>,
    /// Heads of 3-D `K`/`V`.
    pub kv_num_heads: Option<usize>,
    /// What the fourth output holds: 0 raw `QK`, 1 after softcap, 2 after
    /// the bias, 3 after softmax.
    pub qk_matmul_output_mode: u8,
    /// Scale of `QK^T` (default `1/sqrt(head_size)`).
    pub scale: Option<f32>,
    /// Soft cap of the logits; `0` disables it.
    pub softcap: f32,
    /// Type the softmax is computed in (default: `Q`'s type).
    pub softmax_precision: Option<DType>,
    /// Keys visible to the left of the query position (`-1` = unbounded; opset 25).
    pub left_window: i64,
    /// Keys visible to the right of the query position (`-1` = unbounded; opset 25).
    pub right_window: i64,
}

/// One subscript of an einsum term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    /// A letter.
    Label(u8),
    /// `...`.
    Ellipsis,
}

/// A parsed einsum equation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumEq {
    /// The equation as written (whitespace removed).
    pub text: String,
    /// One term per operand.
    pub inputs: Vec<Vec<Sub>>,
    /// The explicit output term (`None` in implicit mode).
    pub output: Option<Vec<Sub>>,
}

impl Linalg {
    /// The ONNX op types of this family.
    pub const ONNX_OPS: &'static [&'static str] = &[
        "MatMul",
        "Gemm",
        "Einsum",
        "Attention",
        "LinearAttention",
        "RotaryEmbedding",
        "Det",
    ];

    /// Parses a node of this family.
    pub fn parse(ctx: &ParseCtx<'_>) -> Option<Result<Linalg>> {
        if !ctx.domain.is_empty() && ctx.domain != "ai.onnx" {
            return None;
        }
        let a = ctx.attrs;
        let r = (|| -> Result<Option<Linalg>> {
            Ok(Some(match ctx.op_type {
                "MatMul" => Linalg::MatMul,
                "Det" => Linalg::Det,
                "Gemm" => Linalg::Gemm(GemmAttrs {
                    alpha: a.float("alpha", 1.0)?,
                    beta: a.float("beta", 1.0)?,
                    trans_a: a.int("transA", 0)? != 0,
                    trans_b: a.int("transB", 0)? != 0,
                    c_required: ctx.opset < 11,
                    c_exact: ctx.opset < 7 && a.int("broadcast", 0)? == 0,
                }),
                "Einsum" => {
                    let text = a
                        .string_opt("equation")?
                        .ok_or_else(|| Error::attr("equation", "is required"))?;
                    Linalg::Einsum(EinsumEq::parse(&text)?)
                }
                "Attention" => Linalg::Attention(parse_attention(ctx)?),
                "LinearAttention" => {
                    let heads = |name: &str| -> Result<usize> {
                        match a.int_req(name)? {
                            h if h > 0 => Ok(h as usize),
                            h => Err(Error::attr(name, format!("must be positive, got {h}"))),
                        }
                    };
                    let rule = match a.string("update_rule", "gated_delta")?.as_str() {
                        "linear" => LinearRule::Linear,
                        "gated" => LinearRule::Gated,
                        "delta" => LinearRule::Delta,
                        "gated_delta" => LinearRule::GatedDelta,
                        other => {
                            return Err(Error::attr(
                                "update_rule",
                                format!("'{other}' is not linear, gated, delta or gated_delta"),
                            ));
                        }
                    };
                    Linalg::LinearAttention(LinearAttnAttrs {
                        q_num_heads: heads("q_num_heads")?,
                        kv_num_heads: heads("kv_num_heads")?,
                        scale: a.float("scale", 0.0)?,
                        rule,
                    })
                }
                "RotaryEmbedding" => {
                    let rotary_dim = a.int("rotary_embedding_dim", 0)?;
                    if rotary_dim < 0 {
                        return Err(Error::attr("rotary_embedding_dim", "must not be negative"));
                    }
                    let num_heads = match a.int_opt("num_heads")? {
                        None => None,
                        Some(h) if h > 0 => Some(h as usize),
                        Some(h) => {
                            return Err(Error::attr(
                                "num_heads",
                                format!("must be positive, got {h}"),
                            ));
                        }
                    };
                    Linalg::RotaryEmbedding {
                        interleaved: a.int("interleaved", 0)? != 0,
                        rotary_dim: rotary_dim as usize,
                        num_heads,
                    }
                }
                _ => return Ok(None),
            }))
        })();
        r.transpose()
    }
}

fn parse_attention(ctx: &ParseCtx<'_>) -> Result<AttentionAttrs> {
    let a = ctx.attrs;
    let heads = |name: &str| -> Result<Option<usize>> {
        match a.int_opt(name)? {
            None => Ok(None),
            Some(h) if h > 0 => Ok(Some(h as usize)),
            Some(h) => Err(Error::attr(name, format!("must be positive, got {h}"))),
        }
    };
    let mode = a.int("qk_matmul_output_mode", 0)?;
    if !(0..=3).contains(&mode) {
        return Err(Error::attr(
            "qk_matmul_output_mode",
            format!("must be 0, 1, 2 or 3, got {mode}"),
        ));
    }
    let softmax_precision = match a.int_opt("softmax_precision")? {
        None | Some(0) => None,
        Some(code) => {
            let d = DType::from_onnx_code(code as i32)?;
            if !d.is_float() {
                return Err(Error::attr(
                    "softmax_precision",
                    format!("must be a float type, got {d}"),
                ));
            }
            Some(d)
        }
    };
    let window = |name: &str| -> Result<i64> {
        let w = a.int(name, -1)?;
        if w < -1 {
            return Err(Error::attr(
                name,
                format!("must be -1 or non-negative, got {w}"),
            ));
        }
        Ok(w)
    };
    let softcap = a.float("softcap", 0.0)?;
    if softcap < 0.0 || softcap.is_nan() {
        return Err(Error::attr(
            "softcap",
            format!("must be non-negative, got {softcap}"),
        ));
    }
    Ok(AttentionAttrs {
        is_causal: a.int("is_causal", 0)? != 0,
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        qk_matmul_output_mode: mode as u8,
        scale: a.float_opt("scale")?,
        softcap,
        softmax_precision,
        left_window: window("left_window_size")?,
        right_window: window("right_window_size")?,
    })
}

// ---------------------------------------------------------------------------
// The matrix-product kernel.

/// Element types a product accumulates in: `f32`, `f64` and the integers
/// (with wrapping arithmetic).
pub trait Acc: Elem {
    /// The additive identity.
    const ZERO: Self;
    /// `self + a * b`.
    fn madd(self, a: Self, b: Self) -> Self;
    /// `self + o`.
    fn plus(self, o: Self) -> Self;
}

impl Acc for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn madd(self, a: Self, b: Self) -> Self {
        self + a * b
    }
    #[inline(always)]
    fn plus(self, o: Self) -> Self {
        self + o
    }
}

impl Acc for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn madd(self, a: Self, b: Self) -> Self {
        self + a * b
    }
    #[inline(always)]
    fn plus(self, o: Self) -> Self {
        self + o
    }
}

macro_rules! int_acc {
    ($($t:ty),*) => {$(
        impl Acc for $t {
            const ZERO: Self = 0;
            #[inline(always)]
            fn madd(self, a: Self, b: Self) -> Self {
                self.wrapping_add(a.wrapping_mul(b))
            }
            #[inline(always)]
            fn plus(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
        }
    )*};
}
int_acc!(i8, u8, i16, u16, i32, u32, i64, u64);

/// `c[m×n] += a[m×k] · b[k×n]`, all row-major and contiguous.
///
/// The loops run `i-k-j` so the innermost loop is an axpy over a contiguous
/// row of `b` and `c` that the compiler vectorises; four rows of `c` are
/// updated per pass so each loaded element of `b` feeds four
/// multiply-adds, and `k` and `j` are blocked so the `KB×NB` tile of `b` is
/// reused from cache across all rows of `a`. Each element of `c` still sums
/// over `k` in increasing order, so results do not depend on the blocking.
///
/// The slices must hold at least `m*k`, `k*n` and `m*n` elements.
pub fn matmul_acc<A: Acc>(m: usize, k: usize, n: usize, a: &[A], b: &[A], c: &mut [A]) {
    const KB: usize = 128;
    const NB: usize = 512;
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    for k0 in (0..k).step_by(KB) {
        let k1 = (k0 + KB).min(k);
        for j0 in (0..n).step_by(NB) {
            let j1 = (j0 + NB).min(n);
            for (blk, cblk) in c.chunks_mut(4 * n).enumerate() {
                let i0 = blk * 4;
                if cblk.len() == 4 * n {
                    let (r0, rest) = cblk.split_at_mut(n);
                    let (r1, rest) = rest.split_at_mut(n);
                    let (r2, r3) = rest.split_at_mut(n);
                    let (r0, r1, r2, r3) = (
                        &mut r0[j0..j1],
                        &mut r1[j0..j1],
                        &mut r2[j0..j1],
                        &mut r3[j0..j1],
                    );
                    for kk in k0..k1 {
                        let (a0, a1, a2, a3) = (
                            a[i0 * k + kk],
                            a[(i0 + 1) * k + kk],
                            a[(i0 + 2) * k + kk],
                            a[(i0 + 3) * k + kk],
                        );
                        let brow = &b[kk * n + j0..kk * n + j1];
                        let rows = r0
                            .iter_mut()
                            .zip(r1.iter_mut())
                            .zip(r2.iter_mut())
                            .zip(r3.iter_mut());
                        for ((((x0, x1), x2), x3), &bv) in rows.zip(brow) {
                            *x0 = x0.madd(a0, bv);
                            *x1 = x1.madd(a1, bv);
                            *x2 = x2.madd(a2, bv);
                            *x3 = x3.madd(a3, bv);
                        }
                    }
                } else {
                    for (r, crow) in cblk.chunks_exact_mut(n).enumerate() {
                        let i = i0 + r;
                        let crow = &mut crow[j0..j1];
                        for kk in k0..k1 {
                            let aik = a[i * k + kk];
                            let brow = &b[kk * n + j0..kk * n + j1];
                            for (cv, &bv) in crow.iter_mut().zip(brow) {
                                *cv = cv.madd(aik, bv);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Transposes a row-major `rows×cols` matrix.
pub fn transpose2<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows * cols);
    for j in 0..cols {
        out.extend((0..rows).map(|i| v[i * cols + j]));
    }
    out
}

/// The shapes of a batched matrix product with NumPy `matmul` semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    /// Rows of each product.
    pub m: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Columns of each product.
    pub n: usize,
    /// `A`'s batch dims, left-padded with 1 to the rank of `batch`.
    pub a_batch: Shape,
    /// `B`'s batch dims, left-padded with 1 to the rank of `batch`.
    pub b_batch: Shape,
    /// The broadcast batch dims.
    pub batch: Shape,
    /// The result's shape (1-D operands drop their promoted dimension).
    pub out: Shape,
}

impl MatmulDims {
    /// Resolves `matmul(a, b)` for operand shapes `a` and `b`.
    pub fn new(a: &[usize], b: &[usize]) -> Result<MatmulDims> {
        if a.is_empty() || b.is_empty() {
            shape_err!("matmul operands must have rank 1 or more, got {a:?} and {b:?}");
        }
        let a2: Shape = if a.len() == 1 {
            vec![1, a[0]]
        } else {
            a.to_vec()
        };
        let b2: Shape = if b.len() == 1 {
            vec![b[0], 1]
        } else {
            b.to_vec()
        };
        let (ra, rb) = (a2.len(), b2.len());
        let (m, k, kb, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
        if k != kb {
            shape_err!("matmul of {a:?} and {b:?}: inner dimensions {k} and {kb} differ");
        }
        let batch = broadcast_shapes(&[&a2[..ra - 2], &b2[..rb - 2]])?;
        let pad = |s: &[usize]| -> Shape {
            let mut v = vec![1; batch.len() - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (a_batch, b_batch) = (pad(&a2[..ra - 2]), pad(&b2[..rb - 2]));
        let mut out = batch.clone();
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        numel(&batch)?
            .checked_mul(m)
            .and_then(|x| x.checked_mul(n))
            .ok_or_else(|| Error::Overflow(format!("matmul of {a:?} and {b:?}")))?;
        Ok(MatmulDims {
            m,
            k,
            n,
            a_batch,
            b_batch,
            batch,
            out,
        })
    }

    /// Multiply-accumulates of the product.
    pub fn macs(&self) -> u64 {
        let nb: u64 = self.batch.iter().map(|&d| d as u64).product();
        nb.saturating_mul(self.m as u64)
            .saturating_mul(self.k as u64)
            .saturating_mul(self.n as u64)
    }
}

/// The batched product of `a` and `b` (shapes as resolved in `d`), in the
/// accumulation type. The slices must hold the element counts of their shapes.
pub fn batched_matmul<A: Acc>(a: &[A], b: &[A], d: &MatmulDims) -> Vec<A> {
    let (m, k, n) = (d.m, d.k, d.n);
    let nb: usize = d.batch.iter().product();
    let mut out = vec![A::ZERO; nb * m * n];
    if out.is_empty() {
        return out;
    }
    let b_shared = d.b_batch.iter().all(|&x| x == 1);
    if b_shared && d.a_batch == d.batch {
        // B is the same matrix for every batch and A is not broadcast: the
        // batches are just more rows (a linear layer over a sequence).
        matmul_acc(nb * m, k, n, a, b, &mut out);
        return out;
    }
    let ia = broadcast_index_map(&d.a_batch, &d.batch);
    let ib = broadcast_index_map(&d.b_batch, &d.batch);
    for (bi, (&ja, &jb)) in ia.iter().zip(&ib).enumerate() {
        matmul_acc(
            m,
            k,
            n,
            &a[ja * m * k..(ja + 1) * m * k],
            &b[jb * k * n..(jb + 1) * k * n],
            &mut out[bi * m * n..(bi + 1) * m * n],
        );
    }
    out
}

/// A computation on operands of one numeric dtype, written once over the
/// accumulation type and run by [`eval_numeric`].
trait NumKernel {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>>;
}

fn as_f32<T: Elem>(v: &[T]) -> Vec<f32> {
    // Exact: every f16/bf16 value is an f32.
    v.iter().map(|x| x.to_f64() as f32).collect()
}

/// Runs `k` on `ins` (all of one numeric dtype) and wraps the result, which
/// has `shape`. `f16`/`bf16` run in `f32` and round once at the end.
fn eval_numeric<K: NumKernel>(k: &K, ins: &[&Tensor], shape: Shape) -> Result<Tensor> {
    let dt = ins
        .first()
        .map(|t| t.dtype())
        .ok_or_else(|| Error::Shape("no operands".into()))?;
    if let Some(t) = ins.iter().find(|t| t.dtype() != dt) {
        type_err!("operands have different dtypes {dt} and {}", t.dtype());
    }
    fn typed<'a, T: Elem>(ins: &[&'a Tensor]) -> Result<Vec<&'a [T]>> {
        ins.iter().map(|t| t.as_slice::<T>()).collect()
    }
    fn halves<T: Elem, K: NumKernel>(k: &K, ins: &[&Tensor], shape: Shape) -> Result<Tensor> {
        let conv: Vec<Vec<f32>> = typed::<T>(ins)?.iter().map(|v| as_f32(v)).collect();
        let refs: Vec<&[f32]> = conv.iter().map(|v| v.as_slice()).collect();
        let out: Vec<T> = k
            .run(&refs)?
            .into_iter()
            .map(|x| T::from_f64(x as f64))
            .collect();
        Tensor::from_vec(shape, out)
    }
    match ins[0].data() {
        Data::F32(_) => Tensor::from_vec(shape, k.run(&typed::<f32>(ins)?)?),
        Data::F64(_) => Tensor::from_vec(shape, k.run(&typed::<f64>(ins)?)?),
        Data::F16(_) => halves::<half::f16, K>(k, ins, shape),
        Data::BF16(_) => halves::<half::bf16, K>(k, ins, shape),
        other => dispatch_int!(other, _v, T => Tensor::from_vec(shape, k.run(&typed::<T>(ins)?)?),
            else type_err!("expects a numeric type, got {dt}")),
    }
}

struct MatMulKernel<'a>(&'a MatmulDims);

impl NumKernel for MatMulKernel<'_> {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        Ok(batched_matmul(ins[0], ins[1], self.0))
    }
}

/// `A' * B'` of a `Gemm`, before `alpha`, `beta` and `C`.
struct GemmKernel {
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
}

impl NumKernel for GemmKernel {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        let (m, k, n) = (self.m, self.k, self.n);
        let a_t;
        let a = if self.trans_a {
            a_t = transpose2(ins[0], k, m);
            &a_t[..]
        } else {
            ins[0]
        };
        let b_t;
        let b = if self.trans_b {
            b_t = transpose2(ins[1], n, k);
            &b_t[..]
        } else {
            ins[1]
        };
        let mut c = vec![A::ZERO; m * n];
        matmul_acc(m, k, n, a, b, &mut c);
        Ok(c)
    }
}

fn numeric_dtype(d: DType, op: &str) -> Result<()> {
    if d == DType::Bool {
        type_err!("{op} does not accept bool");
    }
    Ok(())
}

fn float_dtype(d: DType, op: &str, what: &str) -> Result<()> {
    if !d.is_float() {
        type_err!("{op} {what} must be a float type, got {d}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Gemm.

impl GemmAttrs {
    /// `(m, k, n)` for operand shapes `a` and `b`.
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
        if a.len() != 2 || b.len() != 2 {
            shape_err!("Gemm operands must be 2-D, got {a:?} and {b:?}");
        }
        let (m, k) = if self.trans_a {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (kb, n) = if self.trans_b {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        if k != kb {
            shape_err!(
                "Gemm of {a:?} and {b:?} (transA={}, transB={}): inner dimensions {k} and {kb} differ",
                self.trans_a as u8,
                self.trans_b as u8
            );
        }
        numel(&[m, n])?;
        Ok((m, k, n))
    }

    fn check_c(&self, c: Option<&[usize]>, m: usize, n: usize) -> Result<()> {
        match c {
            None if self.c_required => shape_err!("C is required before opset 11"),
            None => Ok(()),
            Some(c) => {
                let out = [m, n];
                let ok = if self.c_exact {
                    c == out
                } else {
                    c.len() <= 2
                        && broadcast_shapes(&[c, &out])
                            .map(|s| s == out)
                            .unwrap_or(false)
                };
                if !ok {
                    shape_err!("C of shape {c:?} does not broadcast to the output [{m}, {n}]");
                }
                Ok(())
            }
        }
    }
}

fn eval_gemm(g: &GemmAttrs, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Result<Tensor> {
    let (m, k, n) = g.dims(a.shape(), b.shape())?;
    g.check_c(c.map(|c| c.shape()), m, n)?;
    let kern = GemmKernel {
        m,
        k,
        n,
        trans_a: g.trans_a,
        trans_b: g.trans_b,
    };
    let ab = eval_numeric(&kern, &[a, b], vec![m, n])?;
    let (alpha, beta) = (g.alpha as f64, g.beta as f64);
    let c = match c {
        Some(c) if beta != 0.0 => {
            if c.dtype() != a.dtype() {
                type_err!("C is {} but A is {}", c.dtype(), a.dtype());
            }
            Some(c)
        }
        // `beta = 0` ignores C entirely (even its NaNs), like the reference.
        _ => None,
    };
    if alpha == 1.0 && c.is_none() {
        return Ok(ab);
    }
    let cmap = c.map(|c| broadcast_index_map(c.shape(), &[m, n]));
    let cv = c.map(|c| c.to_f64_vec());
    let abv = ab.to_f64_vec();
    let y: Vec<f64> = abv
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut y = alpha * x;
            if let (Some(map), Some(cv)) = (&cmap, &cv) {
                y += beta * cv[map[i]];
            }
            y
        })
        .collect();
    Ok(Tensor::from_vec(vec![m, n], y)?.cast(a.dtype()))
}

// ---------------------------------------------------------------------------
// Einsum.

/// Label ids: letters are their ASCII code; ellipsis dims are
/// `ELLIPSIS_BASE + i` for the `i`-th broadcast dim (right-aligned).
const ELLIPSIS_BASE: u32 = 1000;

impl EinsumEq {
    /// Parses an equation such as `"bij,bjk->bik"` or `"...ii"`.
    pub fn parse(text: &str) -> Result<EinsumEq> {
        let bad = |msg: String| Error::attr("equation", msg);
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match text.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (text.as_str(), None),
        };
        let term = |s: &str| -> Result<Vec<Sub>> {
            let mut out = Vec::new();
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    c if c.is_ascii_alphabetic() => {
                        out.push(Sub::Label(c));
                        i += 1;
                    }
                    b'.' if bytes[i..].starts_with(b"...") => {
                        if out.contains(&Sub::Ellipsis) {
                            return Err(bad(format!("term '{s}' has more than one ellipsis")));
                        }
                        out.push(Sub::Ellipsis);
                        i += 3;
                    }
                    _ => {
                        return Err(bad(format!(
                            "'{text}' has an invalid character in term '{s}'"
                        )));
                    }
                }
            }
            Ok(out)
        };
        let inputs = lhs.split(',').map(term).collect::<Result<Vec<_>>>()?;
        let output = rhs.map(term).transpose()?;
        if let Some(out) = &output {
            let mut seen = BTreeSet::new();
            for s in out {
                if let Sub::Label(c) = s
                    && !seen.insert(*c)
                {
                    return Err(bad(format!(
                        "output subscript '{}' appears twice",
                        *c as char
                    )));
                }
            }
        }
        Ok(EinsumEq {
            text,
            inputs,
            output,
        })
    }

    /// Resolves the equation against operand shapes.
    fn plan(&self, shapes: &[&[usize]]) -> Result<EinsumPlan> {
        if shapes.len() != self.inputs.len() {
            shape_err!(
                "equation '{}' has {} terms but {} operands were given",
                self.text,
                self.inputs.len(),
                shapes.len()
            );
        }
        // Broadcast dims covered by each operand's ellipsis.
        let mut ell = Vec::with_capacity(shapes.len());
        for (term, shape) in self.inputs.iter().zip(shapes) {
            let letters = term.iter().filter(|s| matches!(s, Sub::Label(_))).count();
            let has_ell = term.contains(&Sub::Ellipsis);
            if shape.len() < letters || (!has_ell && shape.len() != letters) {
                shape_err!(
                    "operand of shape {shape:?} does not fit einsum term of {letters} subscripts in '{}'",
                    self.text
                );
            }
            ell.push(shape.len() - letters);
        }
        let r = ell.iter().copied().max().unwrap_or(0);
        let mut sizes = std::collections::BTreeMap::<u32, usize>::new();
        let mut counts = std::collections::BTreeMap::<u32, usize>::new();
        let mut operands = Vec::with_capacity(shapes.len());
        for ((term, shape), &e) in self.inputs.iter().zip(shapes).zip(&ell) {
            let mut labels = Vec::with_capacity(shape.len());
            for s in term {
                match s {
                    Sub::Label(c) => labels.push(*c as u32),
                    Sub::Ellipsis => labels.extend((r - e..r).map(|i| ELLIPSIS_BASE + i as u32)),
                }
            }
            for (ax, (&l, &d)) in labels.iter().zip(shape.iter()).enumerate() {
                if labels[..ax].contains(&l) {
                    let first = shape[labels.iter().position(|&x| x == l).unwrap_or(0)];
                    if first != d {
                        shape_err!(
                            "repeated subscript '{}' has sizes {first} and {d} in one operand",
                            label_name(l)
                        );
                    }
                }
                // NumPy's implicit output counts every occurrence, so "ii" is a trace.
                *counts.entry(l).or_insert(0) += 1;
                let s = sizes.entry(l).or_insert(d);
                if *s == 1 {
                    *s = d;
                } else if d != 1 && d != *s {
                    shape_err!("subscript '{}' has sizes {} and {d}", label_name(l), *s);
                }
            }
            operands.push(labels);
        }
        let output: Vec<u32> = match &self.output {
            Some(out) => {
                if r > 0 && !out.contains(&Sub::Ellipsis) {
                    shape_err!(
                        "operands have broadcast dims but the output of '{}' has no ellipsis",
                        self.text
                    );
                }
                let mut v = Vec::new();
                for s in out {
                    match s {
                        Sub::Label(c) => {
                            if !sizes.contains_key(&(*c as u32)) {
                                shape_err!(
                                    "output subscript '{}' appears in no operand",
                                    *c as char
                                );
                            }
                            v.push(*c as u32);
                        }
                        Sub::Ellipsis => v.extend((0..r).map(|i| ELLIPSIS_BASE + i as u32)),
                    }
                }
                v
            }
            None => {
                // NumPy's implicit mode: the broadcast dims, then the letters
                // used exactly once, in ASCII order (upper case first).
                let mut v: Vec<u32> = (0..r).map(|i| ELLIPSIS_BASE + i as u32).collect();
                v.extend(
                    counts
                        .iter()
                        .filter(|&(&l, &c)| l < ELLIPSIS_BASE && c == 1)
                        .map(|(&l, _)| l),
                );
                v
            }
        };
        let out_shape = output.iter().map(|l| sizes[l]).collect();
        Ok(EinsumPlan {
            operands,
            output,
            out_shape,
        })
    }
}

fn label_name(l: u32) -> String {
    if l < ELLIPSIS_BASE {
        (l as u8 as char).to_string()
    } else {
        "...".into()
    }
}

struct EinsumPlan {
    operands: Vec<Vec<u32>>,
    output: Vec<u32>,
    out_shape: Shape,
}

/// A tensor whose axes carry einsum labels.
struct Lt<A> {
    labels: Vec<u32>,
    shape: Shape,
    data: Vec<A>,
}

/// Every flat offset `Σ idx_i * stride_i` over the index space of `dims`
/// (`(size, stride)` pairs), in row-major order.
fn offsets(dims: &[(usize, usize)]) -> Vec<usize> {
    let n: usize = dims.iter().map(|d| d.0).product();
    let mut v = Vec::with_capacity(n);
    if n == 0 {
        return v;
    }
    let mut idx = vec![0usize; dims.len()];
    let mut off = 0usize;
    for _ in 0..n {
        v.push(off);
        for ax in (0..dims.len()).rev() {
            idx[ax] += 1;
            off += dims[ax].1;
            if idx[ax] < dims[ax].0 {
                break;
            }
            off -= dims[ax].1 * idx[ax];
            idx[ax] = 0;
        }
    }
    v
}

impl<A: Acc> Lt<A> {
    /// Size and stride sum of label `l` (the sum takes diagonals of repeated labels).
    fn dim(&self, l: u32, st: &[usize]) -> (usize, usize) {
        let mut size = 1;
        let mut stride = 0;
        for (ax, &x) in self.labels.iter().enumerate() {
            if x == l {
                size = self.shape[ax];
                stride += st[ax];
            }
        }
        (size, stride)
    }

    fn size(&self, l: u32) -> usize {
        self.labels
            .iter()
            .position(|&x| x == l)
            .map(|ax| self.shape[ax])
            .unwrap_or(1)
    }

    fn unique_labels(&self) -> Vec<u32> {
        let mut v: Vec<u32> = Vec::new();
        for &l in &self.labels {
            if !v.contains(&l) {
                v.push(l);
            }
        }
        v
    }

    /// The tensor with axes `keep` (each a label of `self`, in that order),
    /// summing over the other labels and taking diagonals of repeated ones.
    fn reduce_to(self, keep: &[u32]) -> Lt<A> {
        if keep == self.labels.as_slice() {
            return self;
        }
        let st = strides(&self.shape);
        let out: Vec<(usize, usize)> = keep.iter().map(|&l| self.dim(l, &st)).collect();
        let red: Vec<(usize, usize)> = self
            .unique_labels()
            .into_iter()
            .filter(|l| !keep.contains(l))
            .map(|l| self.dim(l, &st))
            .collect();
        let ro = offsets(&red);
        let data = offsets(&out)
            .into_iter()
            .map(|o| {
                ro.iter()
                    .fold(A::ZERO, |acc, &r| acc.plus(self.data[o + r]))
            })
            .collect();
        Lt {
            labels: keep.to_vec(),
            shape: out.iter().map(|d| d.0).collect(),
            data,
        }
    }

    /// Contracts `self` with `y`, keeping the labels in `keep` (needed by the
    /// output or a later operand) and summing over the others.
    fn contract(self, y: Lt<A>, keep: &[u32]) -> Result<Lt<A>> {
        let (xl, yl) = (self.unique_labels(), y.unique_labels());
        // A shared label that is summed away contracts as a matmul dimension
        // when both sides have the same size; when one side broadcasts it
        // (size 1) that side does not depend on it and the other sums it alone.
        let contractable =
            |l: &u32| xl.contains(l) && yl.contains(l) && self.size(*l) == y.size(*l);
        let xk: Vec<u32> = xl
            .iter()
            .copied()
            .filter(|l| keep.contains(l) || contractable(l))
            .collect();
        let yk: Vec<u32> = yl
            .iter()
            .copied()
            .filter(|l| keep.contains(l) || contractable(l))
            .collect();
        let batch: Vec<u32> = xk
            .iter()
            .copied()
            .filter(|l| yk.contains(l) && keep.contains(l))
            .collect();
        let kdim: Vec<u32> = xk
            .iter()
            .copied()
            .filter(|l| yk.contains(l) && !keep.contains(l))
            .collect();
        let xo: Vec<u32> = xk.iter().copied().filter(|l| !yk.contains(l)).collect();
        let yo: Vec<u32> = yk.iter().copied().filter(|l| !xk.contains(l)).collect();
        let cat = |a: &[u32], b: &[u32], c: &[u32]| -> Vec<u32> { [a, b, c].concat() };
        let x = self.reduce_to(&cat(&batch, &xo, &kdim));
        let y = y.reduce_to(&cat(&batch, &kdim, &yo));
        let nb = batch.len();
        let a_batch: Shape = x.shape[..nb].to_vec();
        let b_batch: Shape = y.shape[..nb].to_vec();
        // The plan checked that batch sizes agree or are 1.
        let out_batch: Shape = a_batch
            .iter()
            .zip(&b_batch)
            .map(|(&p, &q)| if p == 1 { q } else { p })
            .collect();
        let m: usize = x.shape[nb..nb + xo.len()].iter().product();
        let k: usize = kdim.iter().map(|&l| x.size(l)).product();
        let n: usize = y.shape[nb + kdim.len()..].iter().product();
        let dims = MatmulDims {
            m,
            k,
            n,
            a_batch,
            b_batch,
            batch: out_batch.clone(),
            out: vec![],
        };
        let mut shape = out_batch;
        shape.extend_from_slice(&x.shape[nb..nb + xo.len()]);
        shape.extend_from_slice(&y.shape[nb + kdim.len()..]);
        // The intermediate can be larger than every operand ("i,j,ik,jk").
        numel(&shape)?;
        let data = batched_matmul(&x.data, &y.data, &dims);
        Ok(Lt {
            labels: cat(&batch, &xo, &yo),
            shape,
            data,
        })
    }
}

struct EinsumKernel<'a> {
    plan: &'a EinsumPlan,
    shapes: Vec<Shape>,
}

impl NumKernel for EinsumKernel<'_> {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        let p = self.plan;
        let lt = |i: usize| Lt {
            labels: p.operands[i].clone(),
            shape: self.shapes[i].clone(),
            data: ins[i].to_vec(),
        };
        let mut cur = lt(0);
        for i in 1..ins.len() {
            let mut keep: Vec<u32> = p.output.clone();
            for later in &p.operands[i + 1..] {
                keep.extend_from_slice(later);
            }
            cur = cur.contract(lt(i), &keep)?;
        }
        Ok(cur.reduce_to(&p.output).data)
    }
}

// ---------------------------------------------------------------------------
// Attention.

/// The resolved shapes of an `Attention` node.
#[derive(Clone, Debug)]
struct AttnDims {
    rank4: bool,
    batch: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    skv: usize,
    past: usize,
    head: usize,
    vhead: usize,
    /// `past + skv`.
    total: usize,
}

impl AttentionAttrs {
    fn dims(&self, ins: &[Option<&TensorType>]) -> Result<AttnDims> {
        let q = req(ins, 0, "Q")?;
        let k = req(ins, 1, "K")?;
        let v = req(ins, 2, "V")?;
        let (qs, ks, vs) = (&q.shape, &k.shape, &v.shape);
        if qs.len() != ks.len() || qs.len() != vs.len() || !(qs.len() == 3 || qs.len() == 4) {
            shape_err!("Q, K and V must all be 3-D or all 4-D, got {qs:?}, {ks:?} and {vs:?}");
        }
        let rank4 = qs.len() == 4;
        let (batch, hq, sq, head, hkv, skv, kh, vhead, vheads, vskv);
        if rank4 {
            (batch, hq, sq, head) = (qs[0], qs[1], qs[2], qs[3]);
            (hkv, skv, kh) = (ks[1], ks[2], ks[3]);
            (vheads, vskv, vhead) = (vs[1], vs[2], vs[3]);
            if let Some(h) = self.q_num_heads
                && h != hq
            {
                shape_err!("q_num_heads={h} but Q has {hq} heads");
            }
            if let Some(h) = self.kv_num_heads
                && h != hkv
            {
                shape_err!("kv_num_heads={h} but K has {hkv} heads");
            }
        } else {
            let (Some(nq), Some(nkv)) = (self.q_num_heads, self.kv_num_heads) else {
                shape_err!("3-D Q, K and V need the q_num_heads and kv_num_heads attributes");
            };
            if !qs[2].is_multiple_of(nq) || !ks[2].is_multiple_of(nkv) || !vs[2].is_multiple_of(nkv)
            {
                shape_err!(
                    "hidden sizes {}, {} and {} are not multiples of the head counts {nq} and {nkv}",
                    qs[2],
                    ks[2],
                    vs[2]
                );
            }
            (batch, sq, hq, head) = (qs[0], qs[1], nq, qs[2] / nq);
            (skv, hkv, kh) = (ks[1], nkv, ks[2] / nkv);
            (vskv, vheads, vhead) = (vs[1], nkv, vs[2] / nkv);
        }
        if ks[0] != batch || vs[0] != batch {
            shape_err!("Q, K and V have different batch sizes: {qs:?}, {ks:?}, {vs:?}");
        }
        if kh != head {
            shape_err!("Q has head size {head} but K has {kh}");
        }
        if vheads != hkv || vskv != skv {
            shape_err!("K {ks:?} and V {vs:?} disagree on heads or sequence length");
        }
        if hkv == 0 || !hq.is_multiple_of(hkv) {
            shape_err!("q heads ({hq}) must be a multiple of kv heads ({hkv})");
        }
        let past = match (opt(ins, 4), opt(ins, 5)) {
            (None, None) => 0,
            (Some(pk), Some(pv)) => {
                let want_k = [batch, hkv, pk.shape.get(2).copied().unwrap_or(0), head];
                let want_v = [batch, hkv, want_k[2], vhead];
                if pk.shape != want_k || pv.shape != want_v {
                    shape_err!(
                        "past_key {:?} / past_value {:?} must be {want_k:?} / {want_v:?}",
                        pk.shape,
                        pv.shape
                    );
                }
                if pk.dtype != q.dtype || pv.dtype != v.dtype {
                    type_err!("past_key/past_value must have the types of K and V");
                }
                want_k[2]
            }
            _ => shape_err!("past_key and past_value must be given together"),
        };
        let total = past
            .checked_add(skv)
            .ok_or_else(|| Error::Overflow("total sequence length".into()))?;
        if let Some(nonpad) = opt(ins, 6) {
            if past > 0 || opt(ins, 4).is_some() {
                shape_err!("nonpad_kv_seqlen cannot be combined with past_key/past_value");
            }
            if nonpad.dtype != DType::I64 || nonpad.shape != [batch] {
                shape_err!("nonpad_kv_seqlen must be i64[{batch}], got {nonpad}");
            }
        }
        if let Some(mask) = opt(ins, 3) {
            let ms = &mask.shape;
            if ms.is_empty() || ms.len() > 4 {
                shape_err!("attn_mask must have rank 1 to 4, got {ms:?}");
            }
            if ms[ms.len() - 1] > total {
                shape_err!("attn_mask {ms:?} is longer than the total sequence length {total}");
            }
            let full = [batch, hq, sq];
            let lead = &ms[..ms.len() - 1];
            for (i, &d) in lead.iter().enumerate() {
                let want = full[3 - lead.len() + i];
                if d != 1 && d != want {
                    shape_err!(
                        "attn_mask {ms:?} does not broadcast to [{batch}, {hq}, {sq}, {total}]"
                    );
                }
            }
        }
        Ok(AttnDims {
            rank4,
            batch,
            hq,
            hkv,
            sq,
            skv,
            past,
            head,
            vhead,
            total,
        })
    }
}

fn infer_attention(
    at: &AttentionAttrs,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    check_arity(inputs, 3, 7)?;
    let tys: Vec<Option<&TensorType>> = inputs.iter().map(|i| i.map(|x| x.ty)).collect();
    let d = at.dims(&tys)?;
    let (q, k, v) = (req(&tys, 0, "Q")?, req(&tys, 1, "K")?, req(&tys, 2, "V")?);
    float_dtype(q.dtype, "Attention", "Q")?;
    float_dtype(v.dtype, "Attention", "V")?;
    if k.dtype != q.dtype {
        type_err!("Q is {} but K is {}", q.dtype, k.dtype);
    }
    let y_shape = if d.rank4 {
        vec![d.batch, d.hq, d.sq, d.vhead]
    } else {
        let hidden =
            d.hq.checked_mul(d.vhead)
                .ok_or_else(|| Error::Overflow("attention output size".into()))?;
        vec![d.batch, d.sq, hidden]
    };
    numel(&y_shape)?;
    numel(&[d.batch, d.hq, d.sq, d.total])?;
    Ok(vec![
        TensorType::new(q.dtype, y_shape),
        TensorType::new(k.dtype, vec![d.batch, d.hkv, d.total, d.head]),
        TensorType::new(v.dtype, vec![d.batch, d.hkv, d.total, d.vhead]),
        TensorType::new(q.dtype, vec![d.batch, d.hq, d.sq, d.total]),
    ])
}

/// Reads a Q/K/V operand as `[batch, heads, seq, head]`, whichever layout it has.
fn to_bhsd(t: &Tensor, rank4: bool, heads: usize) -> Vec<f64> {
    let v = t.to_f64_vec();
    if rank4 {
        return v;
    }
    let s = t.shape();
    let (b, seq, hd) = (s[0], s[1], s[2] / heads);
    let mut out = Vec::with_capacity(v.len());
    for bi in 0..b {
        for h in 0..heads {
            for si in 0..seq {
                let base = (bi * seq + si) * heads * hd + h * hd;
                out.extend_from_slice(&v[base..base + hd]);
            }
        }
    }
    out
}

/// Concatenates `[b, h, past, d]` and `[b, h, cur, d]` along the sequence axis.
fn concat_seq(
    past: &[f64],
    cur: &[f64],
    b: usize,
    h: usize,
    np: usize,
    nc: usize,
    d: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(past.len() + cur.len());
    for i in 0..b * h {
        out.extend_from_slice(&past[i * np * d..(i + 1) * np * d]);
        out.extend_from_slice(&cur[i * nc * d..(i + 1) * nc * d]);
    }
    out
}

/// The additive attention bias of one query row, from the mask, the causal
/// and window constraints and the padding lengths.
struct Bias<'a> {
    at: &'a AttentionAttrs,
    d: &'a AttnDims,
    mask: Option<(Vec<f64>, bool, Shape)>,
    nonpad: Option<Vec<i64>>,
    rt: fn(f64) -> f64,
}

impl Bias<'_> {
    /// Fills `row[j]` with the bias of query `i` of head `h` in batch `b`.
    fn row(&self, b: usize, h: usize, i: usize, row: &mut [f64]) {
        let (at, d) = (self.at, self.d);
        let ninf = f64::NEG_INFINITY;
        // The causal and window frontiers are relative to the keys that
        // precede this query block.
        let offset: i64 = match &self.nonpad {
            Some(np) => np[b].saturating_sub(d.sq as i64),
            None => d.past as i64,
        };
        for (j, out) in row.iter_mut().enumerate() {
            let mut v = 0.0;
            if let Some((m, is_bool, ms)) = &self.mask {
                let r = ms.len();
                let last = ms[r - 1];
                let mv = if j < last {
                    // Right-aligned broadcast of the mask to [b, h, i, j].
                    let idx4 = [b, h, i];
                    let mut flat = 0usize;
                    for ax in 0..r - 1 {
                        let dim = ms[ax];
                        let pos = if dim == 1 { 0 } else { idx4[3 - (r - 1) + ax] };
                        flat = flat * dim + pos;
                    }
                    let x = m[flat * last + j];
                    if *is_bool {
                        if x != 0.0 { 0.0 } else { ninf }
                    } else {
                        (self.rt)(x)
                    }
                } else {
                    // Keys past a short mask are padded as masked out.
                    ninf
                };
                v += mv;
            }
            let jj = j as i64;
            let ii = i as i64;
            if at.is_causal && jj > ii.saturating_add(offset) {
                v += ninf;
            }
            if at.left_window >= 0 || at.right_window >= 0 {
                let diff = ii.saturating_add(offset).saturating_sub(jj);
                let ok = (at.left_window < 0 || diff <= at.left_window)
                    && (at.right_window < 0 || -diff <= at.right_window);
                if !ok {
                    v += ninf;
                }
            }
            if let Some(np) = &self.nonpad
                && jj >= np[b]
            {
                v += ninf;
            }
            *out = (self.rt)(v);
        }
    }
}

fn eval_attention(at: &AttentionAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let types: Vec<Option<TensorType>> = inputs
        .iter()
        .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
        .collect();
    let infer_in: Vec<Option<InferInput<'_>>> = types
        .iter()
        .map(|t| t.as_ref().map(|ty| InferInput { ty, value: None }))
        .collect();
    let out_types = infer_attention(at, &infer_in)?;
    let tys: Vec<Option<&TensorType>> = types.iter().map(|t| t.as_ref()).collect();
    let d = at.dims(&tys)?;
    let (q, k, v) = (
        req(inputs, 0, "Q")?,
        req(inputs, 1, "K")?,
        req(inputs, 2, "V")?,
    );
    let qdt = q.dtype();
    let rt = rounder(qdt);
    let pdt = at.softmax_precision.unwrap_or(qdt);
    let rp = rounder(pdt);
    let seq_round = pdt == DType::BF16;
    let qv = to_bhsd(q, d.rank4, d.hq);
    let mut kv = to_bhsd(k, d.rank4, d.hkv);
    let mut vv = to_bhsd(v, d.rank4, d.hkv);
    if let (Some(pk), Some(pv)) = (opt(inputs, 4), opt(inputs, 5)) {
        kv = concat_seq(&pk.to_f64_vec(), &kv, d.batch, d.hkv, d.past, d.skv, d.head);
        vv = concat_seq(
            &pv.to_f64_vec(),
            &vv,
            d.batch,
            d.hkv,
            d.past,
            d.skv,
            d.vhead,
        );
    }
    let present_k =
        Tensor::from_vec(out_types[1].shape.clone(), kv.clone())?.cast(out_types[1].dtype);
    let present_v =
        Tensor::from_vec(out_types[2].shape.clone(), vv.clone())?.cast(out_types[2].dtype);

    // Q and K are each scaled by sqrt(scale) (rounded to Q's type) before the
    // product, as the spec's function body does to avoid overflow.
    let scale = at
        .scale
        .map(|s| s as f64)
        .unwrap_or_else(|| 1.0 / (d.head as f64).sqrt());
    let sc = rt(scale.sqrt());
    let qs: Vec<f64> = qv.iter().map(|&x| rt(x * sc)).collect();
    let ks: Vec<f64> = kv.iter().map(|&x| rt(x * sc)).collect();

    let mask =
        opt(inputs, 3).map(|m| (m.to_f64_vec(), m.dtype() == DType::Bool, m.shape().to_vec()));
    let nonpad = opt(inputs, 6).map(|t| t.to_i64_vec());
    let bias = Bias {
        at,
        d: &d,
        mask,
        nonpad,
        rt,
    };

    let (sq, t, hd, vd) = (d.sq, d.total, d.head, d.vhead);
    let group = d.hq / d.hkv;
    let mut y = vec![0.0f64; d.batch * d.hq * sq * vd];
    let mut qk_out = vec![0.0f64; d.batch * d.hq * sq * t];
    let mut scores = vec![0.0f64; sq * t];
    let mut probs = vec![0.0f64; sq * t];
    let mut brow = vec![0.0f64; t];
    let softcap = at.softcap as f64;
    for b in 0..d.batch {
        for kh in 0..d.hkv {
            let kbase = (b * d.hkv + kh) * t;
            let kt = transpose2(&ks[kbase * hd..(kbase + t) * hd], t, hd);
            let vmat = &vv[kbase * vd..(kbase + t) * vd];
            for h in kh * group..(kh + 1) * group {
                let qbase = (b * d.hq + h) * sq;
                scores.iter_mut().for_each(|x| *x = 0.0);
                matmul_acc(
                    sq,
                    hd,
                    t,
                    &qs[qbase * hd..(qbase + sq) * hd],
                    &kt,
                    &mut scores,
                );
                let qk = &mut qk_out[qbase * t..(qbase + sq) * t];
                for i in 0..sq {
                    bias.row(b, h, i, &mut brow);
                    let srow = &mut scores[i * t..(i + 1) * t];
                    let prow = &mut probs[i * t..(i + 1) * t];
                    for j in 0..t {
                        let raw = rt(srow[j]);
                        let capped = if softcap > 0.0 {
                            rt(rt(rt(raw / softcap).tanh()) * softcap)
                        } else {
                            raw
                        };
                        let biased = rt(capped + brow[j]);
                        qk[i * t + j] = match at.qk_matmul_output_mode {
                            0 => raw,
                            1 => capped,
                            _ => biased,
                        };
                        srow[j] = rp(biased);
                    }
                    softmax_row(srow, prow, rp, seq_round);
                    // A row whose bias masks every key attends to nothing: its
                    // probabilities are zero (not NaN), decided on the bias so
                    // that NaN logits cannot leak through.
                    let all_masked = brow.iter().all(|&x| x == f64::NEG_INFINITY);
                    for p in prow.iter_mut() {
                        *p = if all_masked { 0.0 } else { rt(*p) };
                    }
                    if at.qk_matmul_output_mode == 3 {
                        qk[i * t..(i + 1) * t].copy_from_slice(prow);
                    }
                }
                let mut out = vec![0.0f64; sq * vd];
                matmul_acc(sq, t, vd, &probs, vmat, &mut out);
                for i in 0..sq {
                    for e in 0..vd {
                        let val = rt(out[i * vd + e]);
                        let idx = if d.rank4 {
                            (qbase + i) * vd + e
                        } else {
                            ((b * sq + i) * d.hq + h) * vd + e
                        };
                        y[idx] = val;
                    }
                }
            }
        }
    }
    Ok(vec![
        Tensor::from_vec(out_types[0].shape.clone(), y)?.cast(qdt),
        present_k,
        present_v,
        Tensor::from_vec(out_types[3].shape.clone(), qk_out)?.cast(qdt),
    ])
}

/// Softmax of one row in the precision `rp` rounds to; a row that is all
/// `-inf` gives zeros. `seq_round` rounds the running sum after every
/// addition, as NumPy's reduction over `bfloat16` (which has no wider
/// accumulator) does; other types sum wide and round once.
fn softmax_row(x: &[f64], out: &mut [f64], rp: fn(f64) -> f64, seq_round: bool) {
    let mut max = f64::NEG_INFINITY;
    for &v in x {
        if v.is_nan() || max.is_nan() {
            max = f64::NAN;
        } else if v > max {
            max = v;
        }
    }
    let safe = if max == f64::NEG_INFINITY { 0.0 } else { max };
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = rp(rp(v - safe).exp());
        sum += *o;
        if seq_round {
            sum = rp(sum);
        }
    }
    let sum = rp(sum);
    let sum = if sum == 0.0 { 1.0 } else { sum };
    for o in out.iter_mut() {
        *o = rp(*o / sum);
    }
}

// ---------------------------------------------------------------------------
// LinearAttention.

struct LinearDims {
    batch: usize,
    seq: usize,
    dk: usize,
    dv: usize,
    /// Decay per key dimension (`true`) or per head.
    decay_per_key: bool,
    /// Beta per kv head (`true`) or one for all heads.
    beta_per_head: bool,
}

impl LinearAttnAttrs {
    fn dims(&self, ins: &[Option<&TensorType>]) -> Result<LinearDims> {
        check_arity(ins, 3, 6)?;
        let (q, k, v) = (
            req(ins, 0, "query")?,
            req(ins, 1, "key")?,
            req(ins, 2, "value")?,
        );
        let (hq, hkv) = (self.q_num_heads, self.kv_num_heads);
        if q.shape.len() != 3 || k.shape.len() != 3 || v.shape.len() != 3 {
            shape_err!(
                "query, key and value must be 3-D, got {:?}, {:?} and {:?}",
                q.shape,
                k.shape,
                v.shape
            );
        }
        float_dtype(q.dtype, "LinearAttention", "query")?;
        if k.dtype != q.dtype || v.dtype != q.dtype {
            type_err!(
                "query, key and value must share one type, got {}, {} and {}",
                q.dtype,
                k.dtype,
                v.dtype
            );
        }
        if !hq.is_multiple_of(hkv) {
            shape_err!("q_num_heads ({hq}) must be a multiple of kv_num_heads ({hkv})");
        }
        let (batch, seq) = (q.shape[0], q.shape[1]);
        if k.shape[..2] != [batch, seq] || v.shape[..2] != [batch, seq] {
            shape_err!(
                "query {:?}, key {:?} and value {:?} disagree on batch or length",
                q.shape,
                k.shape,
                v.shape
            );
        }
        if !q.shape[2].is_multiple_of(hq) || !v.shape[2].is_multiple_of(hkv) {
            shape_err!(
                "hidden sizes {} and {} are not multiples of the head counts",
                q.shape[2],
                v.shape[2]
            );
        }
        let (dk, dv) = (q.shape[2] / hq, v.shape[2] / hkv);
        if k.shape[2] != hkv * dk {
            shape_err!(
                "key hidden size {} must be kv_num_heads * d_k = {}",
                k.shape[2],
                hkv * dk
            );
        }
        if let Some(s) = opt(ins, 3) {
            float_dtype(s.dtype, "LinearAttention", "past_state")?;
            if s.shape != [batch, hkv, dk, dv] {
                shape_err!(
                    "past_state must be [{batch}, {hkv}, {dk}, {dv}], got {:?}",
                    s.shape
                );
            }
        }
        let decay = opt(ins, 4);
        let beta = opt(ins, 5);
        if decay.is_some() != self.rule.gated() || beta.is_some() != self.rule.delta() {
            shape_err!(
                "update_rule '{}' {} decay and {} beta",
                self.rule.name(),
                if self.rule.gated() {
                    "needs"
                } else {
                    "forbids"
                },
                if self.rule.delta() {
                    "needs"
                } else {
                    "forbids"
                }
            );
        }
        let mut decay_per_key = false;
        if let Some(g) = decay {
            if g.dtype != q.dtype || g.shape.len() != 3 || g.shape[..2] != [batch, seq] {
                shape_err!("decay must be {}[{batch}, {seq}, _], got {g}", q.dtype);
            }
            decay_per_key = match g.shape[2] {
                x if x == hkv * dk => true,
                x if x == hkv => false,
                x => shape_err!(
                    "decay's last dim {x} must be kv_num_heads ({hkv}) or kv_num_heads * d_k ({})",
                    hkv * dk
                ),
            };
        }
        let mut beta_per_head = false;
        if let Some(b) = beta {
            if b.dtype != q.dtype || b.shape.len() != 3 || b.shape[..2] != [batch, seq] {
                shape_err!("beta must be {}[{batch}, {seq}, _], got {b}", q.dtype);
            }
            beta_per_head = match b.shape[2] {
                x if x == hkv => true,
                1 => false,
                x => shape_err!("beta's last dim {x} must be kv_num_heads ({hkv}) or 1"),
            };
        }
        Ok(LinearDims {
            batch,
            seq,
            dk,
            dv,
            decay_per_key,
            beta_per_head,
        })
    }
}

/// The recurrence, token by token, in `f32` like the reference (which casts
/// every input to `float32`).
fn eval_linear_attention(l: &LinearAttnAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let types: Vec<Option<TensorType>> = inputs
        .iter()
        .map(|t| t.map(|t| TensorType::new(t.dtype(), t.shape().to_vec())))
        .collect();
    let tys: Vec<Option<&TensorType>> = types.iter().map(|t| t.as_ref()).collect();
    let d = l.dims(&tys)?;
    let f32s = |t: &Tensor| -> Vec<f32> { t.to_f64_vec().into_iter().map(|x| x as f32).collect() };
    let (q, k, v) = (
        req(inputs, 0, "query")?,
        req(inputs, 1, "key")?,
        req(inputs, 2, "value")?,
    );
    let (qv, kv, vv) = (f32s(q), f32s(k), f32s(v));
    let gv = opt(inputs, 4).map(f32s);
    let bv = opt(inputs, 5).map(f32s);
    let (hq, hkv, dk, dv, seq) = (l.q_num_heads, l.kv_num_heads, d.dk, d.dv, d.seq);
    let group = hq / hkv;
    let mut state: Vec<f32> = match opt(inputs, 3) {
        Some(s) => f32s(s),
        None => vec![0.0; d.batch * hkv * dk * dv],
    };
    let scale = if l.scale == 0.0 {
        (1.0 / (dk as f64).sqrt()) as f32
    } else {
        l.scale
    };
    let mut out = vec![0.0f32; d.batch * seq * hq * dv];
    let mut vt = vec![0.0f32; dv];
    for b in 0..d.batch {
        for t in 0..seq {
            let tok = b * seq + t;
            for h in 0..hkv {
                let st = &mut state[(b * hkv + h) * dk * dv..(b * hkv + h + 1) * dk * dv];
                let kt = &kv[(tok * hkv + h) * dk..(tok * hkv + h + 1) * dk];
                vt.copy_from_slice(&vv[(tok * hkv + h) * dv..(tok * hkv + h + 1) * dv]);
                if let Some(g) = &gv {
                    for i in 0..dk {
                        let gi = if d.decay_per_key {
                            g[(tok * hkv + h) * dk + i]
                        } else {
                            g[tok * hkv + h]
                        };
                        let e = gi.exp();
                        st[i * dv..(i + 1) * dv].iter_mut().for_each(|x| *x *= e);
                    }
                }
                if let Some(beta) = &bv {
                    let bt = if d.beta_per_head {
                        beta[tok * hkv + h]
                    } else {
                        beta[tok]
                    };
                    for (m, x) in vt.iter_mut().enumerate() {
                        let retrieved: f32 = (0..dk).map(|i| st[i * dv + m] * kt[i]).sum();
                        *x = bt * (*x - retrieved);
                    }
                }
                for i in 0..dk {
                    for m in 0..dv {
                        st[i * dv + m] += kt[i] * vt[m];
                    }
                }
                for qh in h * group..(h + 1) * group {
                    let qt = &qv[(tok * hq + qh) * dk..(tok * hq + qh + 1) * dk];
                    for m in 0..dv {
                        let acc: f32 = (0..dk).map(|i| qt[i] * st[i * dv + m]).sum();
                        out[(tok * hq + qh) * dv + m] = scale * acc;
                    }
                }
            }
        }
    }
    let state_dt = opt(inputs, 3).map(|s| s.dtype()).unwrap_or(q.dtype());
    Ok(vec![
        Tensor::from_vec(vec![d.batch, seq, hq * dv], out)?.cast(q.dtype()),
        Tensor::from_vec(vec![d.batch, hkv, dk, dv], state)?.cast(state_dt),
    ])
}

// ---------------------------------------------------------------------------
// RotaryEmbedding.

struct RopeDims {
    batch: usize,
    heads: usize,
    seq: usize,
    head: usize,
    rot: usize,
}

fn rope_dims(
    rotary_dim: usize,
    num_heads: Option<usize>,
    x: &[usize],
    cos: &[usize],
    sin: &[usize],
    pos: Option<&[usize]>,
) -> Result<RopeDims> {
    let (batch, heads, seq, head) = match (x.len(), num_heads) {
        (4, _) => (x[0], x[1], x[2], x[3]),
        (3, Some(h)) => {
            if !x[2].is_multiple_of(h) {
                shape_err!("hidden size {} is not a multiple of num_heads {h}", x[2]);
            }
            (x[0], h, x[1], x[2] / h)
        }
        (3, None) => shape_err!("a 3-D input needs the num_heads attribute"),
        _ => shape_err!("input must be 3-D or 4-D, got {x:?}"),
    };
    let rot = if rotary_dim == 0 { head } else { rotary_dim };
    if rot > head || !rot.is_multiple_of(2) {
        shape_err!("rotary dimension {rot} must be even and at most the head size {head}");
    }
    let want_last = rot / 2;
    if cos != sin {
        shape_err!("cos_cache {cos:?} and sin_cache {sin:?} differ in shape");
    }
    match pos {
        Some(p) => {
            if p != [batch, seq] {
                shape_err!("position_ids must be [{batch}, {seq}], got {p:?}");
            }
            if cos.len() != 2 || cos[1] != want_last {
                shape_err!(
                    "with position_ids the caches must be [max_position, {want_last}], got {cos:?}"
                );
            }
        }
        None => {
            if cos != [batch, seq, want_last] {
                shape_err!(
                    "without position_ids the caches must be [{batch}, {seq}, {want_last}], got {cos:?}"
                );
            }
        }
    }
    Ok(RopeDims {
        batch,
        heads,
        seq,
        head,
        rot,
    })
}

fn eval_rope(
    interleaved: bool,
    d: &RopeDims,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    pos: Option<&Tensor>,
) -> Result<Tensor> {
    let rt = rounder(x.dtype());
    let xv = x.to_f64_vec();
    let (cv, sv) = (cos.to_f64_vec(), sin.to_f64_vec());
    let half = d.rot / 2;
    let max_pos = cos.shape()[0];
    let posv = pos.map(|p| p.to_i64_vec());
    let rank4 = x.rank() == 4;
    let mut out = xv.clone();
    for b in 0..d.batch {
        for s in 0..d.seq {
            let row = match &posv {
                Some(p) => {
                    let id = p[b * d.seq + s];
                    if id < 0 || id as usize >= max_pos {
                        return Err(Error::Eval(format!(
                            "position id {id} is outside the cache of {max_pos} rows"
                        )));
                    }
                    id as usize
                }
                None => b * d.seq + s,
            };
            let (c, sn) = (
                &cv[row * half..(row + 1) * half],
                &sv[row * half..(row + 1) * half],
            );
            for h in 0..d.heads {
                let base = if rank4 {
                    ((b * d.heads + h) * d.seq + s) * d.head
                } else {
                    ((b * d.seq + s) * d.heads + h) * d.head
                };
                for i in 0..half {
                    let (i1, i2) = if interleaved {
                        (base + 2 * i, base + 2 * i + 1)
                    } else {
                        (base + i, base + half + i)
                    };
                    let (x1, x2) = (xv[i1], xv[i2]);
                    out[i1] = rt(rt(c[i] * x1) - rt(sn[i] * x2));
                    out[i2] = rt(rt(sn[i] * x1) + rt(c[i] * x2));
                }
            }
        }
    }
    Ok(Tensor::from_vec(x.shape().to_vec(), out)?.cast(x.dtype()))
}

// ---------------------------------------------------------------------------
// Det.

fn det(a: &mut [f64], n: usize) -> f64 {
    // LU decomposition with partial pivoting.
    let mut det = 1.0;
    for c in 0..n {
        let mut p = c;
        for r in c + 1..n {
            if a[r * n + c].abs() > a[p * n + c].abs() {
                p = r;
            }
        }
        if a[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for j in 0..n {
                a.swap(p * n + j, c * n + j);
            }
            det = -det;
        }
        let piv = a[c * n + c];
        det *= piv;
        for r in c + 1..n {
            let f = a[r * n + c] / piv;
            if f != 0.0 {
                for j in c + 1..n {
                    a[r * n + j] -= f * a[c * n + j];
                }
            }
        }
    }
    det
}

// ---------------------------------------------------------------------------

impl OpDef for Linalg {
    fn name(&self) -> &'static str {
        match self {
            Linalg::MatMul => "MatMul",
            Linalg::Gemm(_) => "Gemm",
            Linalg::Einsum(_) => "Einsum",
            Linalg::Attention(_) => "Attention",
            Linalg::RotaryEmbedding { .. } => "RotaryEmbedding",
            Linalg::Det => "Det",
            Linalg::LinearAttention(_) => "LinearAttention",
        }
    }

    fn attrs(&self) -> Vec<(&'static str, String)> {
        match self {
            Linalg::MatMul | Linalg::Det => vec![],
            Linalg::LinearAttention(l) => vec![
                ("q_num_heads", l.q_num_heads.to_string()),
                ("kv_num_heads", l.kv_num_heads.to_string()),
                ("scale", l.scale.to_string()),
                ("update_rule", l.rule.name().to_string()),
            ],
            Linalg::Gemm(g) => vec![
                ("alpha", g.alpha.to_string()),
                ("beta", g.beta.to_string()),
                ("transA", (g.trans_a as u8).to_string()),
                ("transB", (g.trans_b as u8).to_string()),
            ],
            Linalg::Einsum(e) => vec![("equation", e.text.clone())],
            Linalg::Attention(a) => {
                let mut v = vec![("is_causal", (a.is_causal as u8).to_string())];
                if let Some(h) = a.q_num_heads {
                    v.push(("q_num_heads", h.to_string()));
                }
                if let Some(h) = a.kv_num_heads {
                    v.push(("kv_num_heads", h.to_string()));
                }
                v.push(("qk_matmul_output_mode", a.qk_matmul_output_mode.to_string()));
                if let Some(s) = a.scale {
                    v.push(("scale", s.to_string()));
                }
                v.push(("softcap", a.softcap.to_string()));
                if let Some(p) = a.softmax_precision {
                    v.push(("softmax_precision", p.name().to_string()));
                }
                if a.left_window >= 0 || a.right_window >= 0 {
                    v.push(("window", fmt_list(&[a.left_window, a.right_window])));
                }
                v
            }
            Linalg::RotaryEmbedding {
                interleaved,
                rotary_dim,
                num_heads,
            } => {
                let mut v = vec![
                    ("interleaved", (*interleaved as u8).to_string()),
                    ("rotary_embedding_dim", rotary_dim.to_string()),
                ];
                if let Some(h) = num_heads {
                    v.push(("num_heads", h.to_string()));
                }
                v
            }
        }
    }

    fn const_operands(&self) -> Vec<usize> {
        match self {
            Linalg::MatMul
            | Linalg::Gemm(_)
            | Linalg::Einsum(_)
            | Linalg::Attention(_)
            | Linalg::RotaryEmbedding { .. }
            | Linalg::Det
            | Linalg::LinearAttention(_) => vec![],
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>]) -> Result<Vec<TensorType>> {
        let ty = |i: usize, what: &str| req(inputs, i, what).map(|x| x.ty);
        match self {
            Linalg::MatMul => {
                check_arity(inputs, 2, 2)?;
                let (a, b) = (ty(0, "A")?, ty(1, "B")?);
                numeric_dtype(a.dtype, "MatMul")?;
                if a.dtype != b.dtype {
                    type_err!("A is {} but B is {}", a.dtype, b.dtype);
                }
                Ok(vec![TensorType::new(
                    a.dtype,
                    MatmulDims::new(&a.shape, &b.shape)?.out,
                )])
            }
            Linalg::Gemm(g) => {
                check_arity(inputs, 2, 3)?;
                let (a, b) = (ty(0, "A")?, ty(1, "B")?);
                numeric_dtype(a.dtype, "Gemm")?;
                if a.dtype != b.dtype {
                    type_err!("A is {} but B is {}", a.dtype, b.dtype);
                }
                let (m, _, n) = g.dims(&a.shape, &b.shape)?;
                let c = opt(inputs, 2).map(|c| c.ty);
                if let Some(c) = c
                    && c.dtype != a.dtype
                {
                    type_err!("C is {} but A is {}", c.dtype, a.dtype);
                }
                g.check_c(c.map(|c| c.shape.as_slice()), m, n)?;
                Ok(vec![TensorType::new(a.dtype, vec![m, n])])
            }
            Linalg::Einsum(e) => {
                if inputs.is_empty() {
                    shape_err!("Einsum needs at least one operand");
                }
                let tys: Vec<&TensorType> = (0..inputs.len())
                    .map(|i| ty(i, "Inputs"))
                    .collect::<Result<_>>()?;
                numeric_dtype(tys[0].dtype, "Einsum")?;
                if let Some(t) = tys.iter().find(|t| t.dtype != tys[0].dtype) {
                    type_err!(
                        "operands have different dtypes {} and {}",
                        tys[0].dtype,
                        t.dtype
                    );
                }
                let shapes: Vec<&[usize]> = tys.iter().map(|t| t.shape.as_slice()).collect();
                Ok(vec![TensorType::new(
                    tys[0].dtype,
                    e.plan(&shapes)?.out_shape,
                )])
            }
            Linalg::Attention(a) => infer_attention(a, inputs),
            Linalg::RotaryEmbedding {
                interleaved: _,
                rotary_dim,
                num_heads,
            } => {
                check_arity(inputs, 3, 4)?;
                let (x, c, s) = (ty(0, "X")?, ty(1, "cos_cache")?, ty(2, "sin_cache")?);
                float_dtype(x.dtype, "RotaryEmbedding", "X")?;
                if c.dtype != x.dtype || s.dtype != x.dtype {
                    type_err!(
                        "the caches must have X's type {}, got {} and {}",
                        x.dtype,
                        c.dtype,
                        s.dtype
                    );
                }
                let pos = opt(inputs, 3).map(|p| p.ty);
                if let Some(p) = pos
                    && p.dtype != DType::I64
                {
                    type_err!("position_ids must be i64, got {}", p.dtype);
                }
                rope_dims(
                    *rotary_dim,
                    *num_heads,
                    &x.shape,
                    &c.shape,
                    &s.shape,
                    pos.map(|p| p.shape.as_slice()),
                )?;
                Ok(vec![x.clone()])
            }
            Linalg::LinearAttention(l) => {
                let tys: Vec<Option<&TensorType>> =
                    inputs.iter().map(|i| i.map(|x| x.ty)).collect();
                let d = l.dims(&tys)?;
                let q = ty(0, "query")?;
                let state = opt(inputs, 3).map(|s| s.ty.dtype).unwrap_or(q.dtype);
                Ok(vec![
                    TensorType::new(q.dtype, vec![d.batch, d.seq, l.q_num_heads * d.dv]),
                    TensorType::new(state, vec![d.batch, l.kv_num_heads, d.dk, d.dv]),
                ])
            }
            Linalg::Det => {
                check_arity(inputs, 1, 1)?;
                let x = ty(0, "X")?;
                float_dtype(x.dtype, "Det", "X")?;
                let r = x.shape.len();
                if r < 2 || x.shape[r - 1] != x.shape[r - 2] {
                    shape_err!(
                        "Det needs square matrices in the last two dims, got {:?}",
                        x.shape
                    );
                }
                Ok(vec![TensorType::new(x.dtype, x.shape[..r - 2].to_vec())])
            }
        }
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Linalg::MatMul => {
                let (a, b) = (req(inputs, 0, "A")?, req(inputs, 1, "B")?);
                let d = MatmulDims::new(a.shape(), b.shape())?;
                Ok(vec![eval_numeric(
                    &MatMulKernel(&d),
                    &[a, b],
                    d.out.clone(),
                )?])
            }
            Linalg::Gemm(g) => Ok(vec![eval_gemm(
                g,
                req(inputs, 0, "A")?,
                req(inputs, 1, "B")?,
                opt(inputs, 2),
            )?]),
            Linalg::Einsum(e) => {
                let ins: Vec<&Tensor> = (0..inputs.len())
                    .map(|i| req(inputs, i, "Inputs"))
                    .collect::<Result<_>>()?;
                let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
                let plan = e.plan(&shapes)?;
                let kern = EinsumKernel {
                    plan: &plan,
                    shapes: shapes.iter().map(|s| s.to_vec()).collect(),
                };
                Ok(vec![eval_numeric(&kern, &ins, plan.out_shape.clone())?])
            }
            Linalg::Attention(a) => eval_attention(a, inputs),
            Linalg::LinearAttention(l) => eval_linear_attention(l, inputs),
            Linalg::RotaryEmbedding {
                interleaved,
                rotary_dim,
                num_heads,
            } => {
                let (x, c, s) = (
                    req(inputs, 0, "X")?,
                    req(inputs, 1, "cos_cache")?,
                    req(inputs, 2, "sin_cache")?,
                );
                let pos = opt(inputs, 3);
                let d = rope_dims(
                    *rotary_dim,
                    *num_heads,
                    x.shape(),
                    c.shape(),
                    s.shape(),
                    pos.map(|p| p.shape()),
                )?;
                Ok(vec![eval_rope(*interleaved, &d, x, c, s, pos)?])
            }
            Linalg::Det => {
                let x = req(inputs, 0, "X")?;
                let r = x.rank();
                if r < 2 || x.shape()[r - 1] != x.shape()[r - 2] {
                    shape_err!(
                        "Det needs square matrices in the last two dims, got {:?}",
                        x.shape()
                    );
                }
                let n = x.shape()[r - 1];
                let v = x.to_f64_vec();
                let out: Vec<f64> = if n == 0 {
                    // The determinant of a 0×0 matrix is 1.
                    vec![1.0; numel(&x.shape()[..r - 2])?]
                } else if v.is_empty() {
                    vec![]
                } else {
                    // Non-empty data bounds n*n by the element count.
                    v.chunks(n * n).map(|m| det(&mut m.to_vec(), n)).collect()
                };
                Ok(vec![
                    Tensor::from_vec(x.shape()[..r - 2].to_vec(), out)?.cast(x.dtype()),
                ])
            }
        }
    }

    fn macs(&self, inputs: &[Option<&TensorType>], outputs: &[TensorType]) -> u64 {
        let out_elems = || {
            outputs
                .iter()
                .map(|t| t.numel().unwrap_or(0) as u64)
                .sum::<u64>()
        };
        match self {
            Linalg::MatMul => match (opt(inputs, 0), opt(inputs, 1)) {
                (Some(a), Some(b)) => MatmulDims::new(&a.shape, &b.shape)
                    .map(|d| d.macs())
                    .unwrap_or(0),
                _ => 0,
            },
            Linalg::Gemm(g) => match (opt(inputs, 0), opt(inputs, 1)) {
                (Some(a), Some(b)) => g
                    .dims(&a.shape, &b.shape)
                    .map(|(m, k, n)| (m as u64).saturating_mul(k as u64).saturating_mul(n as u64))
                    .unwrap_or(0),
                _ => 0,
            },
            Linalg::Einsum(e) => {
                // The size of the full index space: an upper bound of the work.
                let shapes: Vec<&[usize]> = inputs
                    .iter()
                    .flatten()
                    .map(|t| t.shape.as_slice())
                    .collect();
                match e.plan(&shapes) {
                    Ok(p) => {
                        let mut seen = BTreeSet::new();
                        let mut n = 1u64;
                        for (labels, shape) in p.operands.iter().zip(&shapes) {
                            for (&l, &d) in labels.iter().zip(shape.iter()) {
                                if seen.insert(l) {
                                    n = n.saturating_mul(d as u64);
                                }
                            }
                        }
                        n
                    }
                    Err(_) => 0,
                }
            }
            Linalg::Attention(a) => match a.dims(inputs) {
                Ok(d) => [d.batch, d.hq, d.sq, d.total, d.head + d.vhead]
                    .iter()
                    .fold(1u64, |acc, &x| acc.saturating_mul(x as u64)),
                Err(_) => 0,
            },
            Linalg::RotaryEmbedding { .. } => out_elems(),
            Linalg::LinearAttention(l) => match l.dims(inputs) {
                // Per token and query head: the state update and the read-out.
                Ok(d) => [d.batch, d.seq, l.q_num_heads, 3 * d.dk, d.dv]
                    .iter()
                    .fold(1u64, |acc, &x| acc.saturating_mul(x as u64)),
                Err(_) => 0,
            },
            Linalg::Det => match opt(inputs, 0) {
                Some(x) if x.shape.len() >= 2 => {
                    let n = x.shape[x.shape.len() - 1] as u64;
                    out_elems().saturating_mul(n.saturating_mul(n).saturating_mul(n) / 3)
                }
                _ => 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{AttrValue, Attrs};

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn run(op: &Linalg, ins: &[&Tensor]) -> Vec<Tensor> {
        let args: Vec<Option<&Tensor>> = ins.iter().map(|x| Some(*x)).collect();
        let tys: Vec<TensorType> = ins
            .iter()
            .map(|x| TensorType::new(x.dtype(), x.shape().to_vec()))
            .collect();
        let iin: Vec<Option<InferInput<'_>>> = tys
            .iter()
            .map(|ty| Some(InferInput { ty, value: None }))
            .collect();
        let inferred = op.infer(&iin).unwrap();
        let out = op.eval(&args).unwrap();
        for (o, ty) in out.iter().zip(&inferred) {
            assert_eq!(
                &TensorType::new(o.dtype(), o.shape().to_vec()),
                ty,
                "{op:?}"
            );
        }
        out
    }

    fn parse(op: &str, opset: i64, attrs: Vec<(&str, AttrValue)>) -> Result<Linalg> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type: op,
            domain: "",
            opset,
            attrs: &attrs,
            num_inputs: 0,
            num_outputs: 1,
        };
        Linalg::parse(&ctx).unwrap()
    }

    fn einsum(eq: &str, ins: &[&Tensor]) -> Tensor {
        run(&Linalg::Einsum(EinsumEq::parse(eq).unwrap()), ins).remove(0)
    }

    #[test]
    fn matmul_2d_and_vectors() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = t(&[3, 2], &[7., 8., 9., 10., 11., 12.]);
        assert_eq!(
            run(&Linalg::MatMul, &[&a, &b])[0],
            t(&[2, 2], &[58., 64., 139., 154.])
        );
        let v = t(&[3], &[1., 0., -1.]);
        assert_eq!(run(&Linalg::MatMul, &[&a, &v])[0], t(&[2], &[-2., -2.]));
        assert_eq!(run(&Linalg::MatMul, &[&v, &b])[0], t(&[2], &[-4., -4.]));
        assert_eq!(run(&Linalg::MatMul, &[&v, &v])[0], t(&[], &[2.]));
    }

    #[test]
    fn matmul_broadcasts_batches() {
        // [2,1,2,2] x [3,2,1] -> [2,3,2,1]
        let a = t(&[2, 1, 2, 2], &[1., 0., 0., 1., 2., 0., 0., 2.]);
        let b = t(&[3, 2, 1], &[1., 2., 3., 4., 5., 6.]);
        let y = run(&Linalg::MatMul, &[&a, &b]).remove(0);
        assert_eq!(y.shape(), &[2, 3, 2, 1]);
        assert_eq!(
            y.as_slice::<f32>().unwrap(),
            &[1., 2., 3., 4., 5., 6., 2., 4., 6., 8., 10., 12.]
        );
        assert!(
            Linalg::MatMul
                .eval(&[Some(&a), Some(&t(&[3], &[1., 2., 3.]))])
                .is_err()
        );
    }

    #[test]
    fn matmul_integers_wrap_and_half_rounds_once() {
        let a = Tensor::from_vec(vec![1, 2], vec![200u8, 100]).unwrap();
        let b = Tensor::from_vec(vec![2, 1], vec![2u8, 1]).unwrap();
        // 400 + 100 = 500 wraps to 244.
        assert_eq!(
            run(&Linalg::MatMul, &[&a, &b])[0].as_slice::<u8>().unwrap(),
            &[244]
        );
        let h = |v: &[f32]| {
            v.iter()
                .map(|&x| half::f16::from_f32(x))
                .collect::<Vec<_>>()
        };
        let a = Tensor::from_vec(vec![1, 3], h(&[2048., 1., 1.])).unwrap();
        let b = Tensor::from_vec(vec![3, 1], h(&[1., 1., 1.])).unwrap();
        // Accumulating in f16 would give 2048 (2049 rounds to even twice).
        let y = run(&Linalg::MatMul, &[&a, &b]).remove(0);
        assert_eq!(y.as_slice::<half::f16>().unwrap()[0].to_f32(), 2050.);
        assert!(
            Linalg::MatMul
                .infer(&[
                    Some(InferInput {
                        ty: &TensorType::new(DType::Bool, vec![1, 1]),
                        value: None
                    }),
                    Some(InferInput {
                        ty: &TensorType::new(DType::Bool, vec![1, 1]),
                        value: None
                    }),
                ])
                .is_err()
        );
    }

    #[test]
    fn blocked_kernel_matches_naive() {
        let (m, k, n) = (7, 300, 700);
        let a: Vec<i64> = (0..m * k).map(|i| (i as i64 * 7919) % 13 - 6).collect();
        let b: Vec<i64> = (0..k * n).map(|i| (i as i64 * 104729) % 11 - 5).collect();
        let mut c = vec![0i64; m * n];
        matmul_acc(m, k, n, &a, &b, &mut c);
        for i in 0..m {
            for j in (0..n).step_by(37) {
                let want: i64 = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum();
                assert_eq!(c[i * n + j], want);
            }
        }
    }

    #[test]
    fn gemm_attributes() {
        let a = t(&[3, 2], &[1., 4., 2., 5., 3., 6.]); // A^T = [[1,2,3],[4,5,6]]
        let b = t(&[2, 3], &[1., 3., 5., 2., 4., 6.]); // B^T = [[1,2],[3,4],[5,6]]
        let c = t(&[2], &[1., -1.]);
        let op = parse(
            "Gemm",
            13,
            vec![
                ("transA", AttrValue::Int(1)),
                ("transB", AttrValue::Int(1)),
                ("alpha", AttrValue::Float(0.5)),
                ("beta", AttrValue::Float(2.0)),
            ],
        )
        .unwrap();
        // A'B' = [[22, 28], [49, 64]]
        assert_eq!(
            run(&op, &[&a, &b, &c])[0],
            t(&[2, 2], &[13., 12., 26.5, 30.])
        );
        let op = parse("Gemm", 13, vec![]).unwrap();
        let bad_c = t(&[3], &[0., 0., 0.]);
        let ab = [Some(&a), Some(&t(&[2, 2], &[1., 0., 0., 1.])), Some(&bad_c)];
        assert!(op.eval(&ab).is_err());
        assert!(
            parse("Gemm", 9, vec![])
                .unwrap()
                .eval(&[Some(&a), Some(&a)])
                .is_err()
        );
    }

    #[test]
    fn einsum_forms() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = t(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
        let ab = t(&[2, 2], &[4., 5., 10., 11.]);
        assert_eq!(einsum("ij,jk->ik", &[&a, &b]), ab);
        assert_eq!(einsum("ij,jk", &[&a, &b]), ab);
        assert_eq!(
            einsum("ij->ji", &[&a]),
            t(&[3, 2], &[1., 4., 2., 5., 3., 6.])
        );
        assert_eq!(einsum("ij->", &[&a]), t(&[], &[21.]));
        assert_eq!(einsum("ij->j", &[&a]), t(&[3], &[5., 7., 9.]));
        let sq = t(&[3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        assert_eq!(einsum("ii->i", &[&sq]), t(&[3], &[1., 5., 9.]));
        assert_eq!(einsum("ii", &[&sq]), t(&[], &[15.]));
        let v = t(&[3], &[1., 2., 3.]);
        assert_eq!(einsum("i,i", &[&v, &v]), t(&[], &[14.]));
        assert_eq!(
            einsum("i,j->ij", &[&v, &t(&[2], &[1., -1.])]),
            t(&[3, 2], &[1., -1., 2., -2., 3., -3.])
        );
        // Implicit output sorts letters: "ba" on [2,3] gives the transpose "ab".
        assert_eq!(einsum("ba", &[&a]), t(&[3, 2], &[1., 4., 2., 5., 3., 6.]));
        // Ellipsis with broadcasting batch dims.
        let x = t(&[2, 1, 2], &[1., 2., 3., 4.]);
        let y = t(&[2, 1], &[1., 1.]);
        assert_eq!(
            einsum("...ij,jk->...ik", &[&x, &y]),
            t(&[2, 1, 1], &[3., 7.])
        );
        // A size-1 contracted subscript broadcasts against the other operand.
        let c1 = t(&[2, 1], &[1., 2.]);
        assert_eq!(
            einsum("ij,jk->ik", &[&c1, &t(&[3, 1], &[1., 2., 3.])]),
            t(&[2, 1], &[6., 12.])
        );
        // Three operands.
        assert_eq!(einsum("i,i,i->", &[&v, &v, &v]), t(&[], &[36.]));
        // Integers.
        let iv = Tensor::from_vec(vec![2, 2], vec![1i32, 2, 3, 4]).unwrap();
        assert_eq!(
            einsum("ij,jk->ik", &[&iv, &iv]),
            Tensor::from_vec(vec![2, 2], vec![7i32, 10, 15, 22]).unwrap()
        );
    }

    #[test]
    fn einsum_errors() {
        assert!(EinsumEq::parse("ij,jk->ik->i").is_err());
        assert!(EinsumEq::parse("i1").is_err());
        assert!(EinsumEq::parse("ij->ii").is_err());
        let e = EinsumEq::parse("ij,jk->ik").unwrap();
        assert!(e.plan(&[&[2, 3], &[4, 5]]).is_err());
        assert!(e.plan(&[&[2, 3]]).is_err());
        assert!(EinsumEq::parse("ij->k").unwrap().plan(&[&[2, 3]]).is_err());
        assert!(EinsumEq::parse("ii->i").unwrap().plan(&[&[2, 3]]).is_err());
        assert!(
            EinsumEq::parse("...i->i")
                .unwrap()
                .plan(&[&[2, 3]])
                .is_err()
        );
    }

    #[test]
    fn det_values() {
        let x = t(&[2, 2, 2], &[1., 2., 3., 4., 2., 0., 0., 3.]);
        let y = run(&Linalg::Det, &[&x]).remove(0);
        let v = y.as_slice::<f32>().unwrap();
        assert!((v[0] + 2.).abs() < 1e-6 && (v[1] - 6.).abs() < 1e-6);
        let s = t(&[3, 3], &[1., 2., 3., 2., 4., 6., 0., 1., 1.]);
        assert_eq!(
            run(&Linalg::Det, &[&s])[0].as_slice::<f32>().unwrap(),
            &[0.]
        );
    }

    fn attention(attrs: Vec<(&str, AttrValue)>) -> Linalg {
        parse("Attention", 23, attrs).unwrap()
    }

    #[test]
    fn attention_single_head() {
        // One head of size 1: scores are q*k, scale 1.
        let q = t(&[1, 1, 2, 1], &[1., 2.]);
        let k = t(&[1, 1, 2, 1], &[0., 1.]);
        let v = t(&[1, 1, 2, 1], &[10., 20.]);
        let op = attention(vec![("scale", AttrValue::Float(1.0))]);
        let y = run(&op, &[&q, &k, &v]).remove(0);
        let y = y.as_slice::<f32>().unwrap();
        let want = |s: f64| (10. + 20. * s.exp()) / (1. + s.exp());
        assert!((y[0] as f64 - want(1.)).abs() < 1e-5);
        assert!((y[1] as f64 - want(2.)).abs() < 1e-5);
        // Causal: query 0 sees key 0 only.
        let op = attention(vec![
            ("scale", AttrValue::Float(1.0)),
            ("is_causal", AttrValue::Int(1)),
        ]);
        let y = run(&op, &[&q, &k, &v]).remove(0);
        assert_eq!(y.as_slice::<f32>().unwrap()[0], 10.);
    }

    #[test]
    fn attention_fully_masked_row_is_zero() {
        let q = t(&[1, 1, 2, 1], &[1., f32::NAN]);
        let k = t(&[1, 1, 2, 1], &[0., 1.]);
        let v = t(&[1, 1, 2, 1], &[10., 20.]);
        let mask = Tensor::from_vec(vec![2, 2], vec![true, true, false, false]).unwrap();
        let op = attention(vec![("qk_matmul_output_mode", AttrValue::Int(3))]);
        let out = run(&op, &[&q, &k, &v, &mask]);
        let y = out[0].as_slice::<f32>().unwrap();
        assert!(y[0].is_finite());
        assert_eq!(y[1], 0.);
        assert_eq!(&out[3].as_slice::<f32>().unwrap()[2..], &[0., 0.]);
    }

    #[test]
    fn attention_gqa_3d_and_past() {
        // 2 query heads share 1 kv head; past of length 1.
        let q = t(&[1, 1, 2], &[1., 1.]);
        let k = t(&[1, 1, 1], &[1.]);
        let v = t(&[1, 1, 1], &[3.]);
        let pk = t(&[1, 1, 1, 1], &[1.]);
        let pv = t(&[1, 1, 1, 1], &[5.]);
        let op = attention(vec![
            ("q_num_heads", AttrValue::Int(2)),
            ("kv_num_heads", AttrValue::Int(1)),
        ]);
        let none: Option<&Tensor> = None;
        let ins = [Some(&q), Some(&k), Some(&v), none, Some(&pk), Some(&pv)];
        let out = op.eval(&ins).unwrap();
        // Equal scores: the mean of 5 and 3 for both heads.
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[4., 4.]);
        assert_eq!(out[1].shape(), &[1, 1, 2, 1]);
        assert_eq!(out[2].as_slice::<f32>().unwrap(), &[5., 3.]);
        let bad = attention(vec![
            ("q_num_heads", AttrValue::Int(2)),
            ("kv_num_heads", AttrValue::Int(3)),
        ]);
        assert!(
            bad.eval(&[
                Some(&q),
                Some(&t(&[1, 1, 3], &[1., 1., 1.])),
                Some(&t(&[1, 1, 3], &[1., 1., 1.]))
            ])
            .is_err()
        );
    }

    #[test]
    fn rotary_halves_and_interleaved() {
        // One head of size 4, position 0 with cos=0, sin=1: (x1, x2) -> (-x2, x1).
        let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let cos = t(&[1, 2], &[0., 0.]);
        let sin = t(&[1, 2], &[1., 1.]);
        let pos = Tensor::from_vec(vec![1, 1], vec![0i64]).unwrap();
        let op = parse("RotaryEmbedding", 23, vec![]).unwrap();
        assert_eq!(
            run(&op, &[&x, &cos, &sin, &pos])[0],
            t(&[1, 1, 1, 4], &[-3., -4., 1., 2.])
        );
        let op = parse(
            "RotaryEmbedding",
            23,
            vec![("interleaved", AttrValue::Int(1))],
        )
        .unwrap();
        assert_eq!(
            run(&op, &[&x, &cos, &sin, &pos])[0],
            t(&[1, 1, 1, 4], &[-2., 1., -4., 3.])
        );
        let far = Tensor::from_vec(vec![1, 1], vec![5i64]).unwrap();
        assert!(
            op.eval(&[Some(&x), Some(&cos), Some(&sin), Some(&far)])
                .is_err()
        );
    }

    #[test]
    fn linear_attention_rules() {
        let q = t(&[1, 2, 1], &[1., 1.]);
        let k = t(&[1, 2, 1], &[1., 2.]);
        let v = t(&[1, 2, 1], &[3., 4.]);
        let attrs = |rule: &str| {
            vec![
                ("q_num_heads", AttrValue::Int(1)),
                ("kv_num_heads", AttrValue::Int(1)),
                ("scale", AttrValue::Float(1.0)),
                ("update_rule", AttrValue::String(rule.as_bytes().to_vec())),
            ]
        };
        let op = parse("LinearAttention", 27, attrs("linear")).unwrap();
        let out = run(&op, &[&q, &k, &v]);
        assert_eq!(out[0], t(&[1, 2, 1], &[3., 11.]));
        assert_eq!(out[1], t(&[1, 1, 1, 1], &[11.]));
        // Delta: v' = beta * (v - S k) = 4 - 3*2 = -2, so S = 3 + 2*(-2) = -1.
        let op = parse("LinearAttention", 27, attrs("delta")).unwrap();
        let beta = t(&[1, 2, 1], &[1., 1.]);
        let none: Option<&Tensor> = None;
        let out = op
            .eval(&[Some(&q), Some(&k), Some(&v), none, none, Some(&beta)])
            .unwrap();
        assert_eq!(out[0], t(&[1, 2, 1], &[3., -1.]));
        // Delta without beta is rejected.
        assert!(op.eval(&[Some(&q), Some(&k), Some(&v)]).is_err());
    }

    #[test]
    fn empty_and_extreme_inputs_do_not_panic() {
        let z = |shape: &[usize]| Tensor::zeros(DType::F32, shape.to_vec()).unwrap();
        assert_eq!(
            run(&Linalg::MatMul, &[&z(&[2, 0]), &z(&[0, 3])])[0],
            z(&[2, 3])
        );
        assert_eq!(
            run(&Linalg::MatMul, &[&z(&[0, 3]), &z(&[3, 0])])[0],
            z(&[0, 0])
        );
        assert_eq!(einsum("ij,jk->ik", &[&z(&[2, 0]), &z(&[0, 3])]), z(&[2, 3]));
        assert_eq!(einsum("ij->", &[&z(&[0, 3])]), z(&[]));
        assert_eq!(run(&Linalg::Det, &[&z(&[0, 2, 2])])[0], z(&[0]));
        assert_eq!(run(&Linalg::Det, &[&z(&[2, 0, 0])])[0], t(&[2], &[1., 1.]));
        let huge = MatmulDims::new(&[usize::MAX / 2, 1], &[1, 4]);
        assert!(huge.is_err());
        let q = z(&[1, 1, 2, 2]);
        let op = attention(vec![("is_causal", AttrValue::Int(1))]);
        for np in [i64::MIN, -1, 0, 1, i64::MAX] {
            let nonpad = Tensor::from_vec(vec![1], vec![np]).unwrap();
            let none: Option<&Tensor> = None;
            let out = op
                .eval(&[
                    Some(&q),
                    Some(&q),
                    Some(&q),
                    none,
                    none,
                    none,
                    Some(&nonpad),
                ])
                .unwrap();
            assert!(out[0].to_f64_vec().iter().all(|x| x.is_finite()));
        }
    }
}
