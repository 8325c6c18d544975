//! Lowering of the weight ops (`ir/src/ops/weights.rs`): `Decode`, the
//! embedding lookup `EncodedGather` and the weight-only `EncodedMatMul`,
//! which read a constant in its stored
//! encoding (GGUF blocks, affine int8, dense f16/bf16) with byte loads and
//! decode it in kernel IR, so both code generators get the same code and
//! the artifact holds the encoded bytes (the constant reaches
//! `Program::consts` by reference, unchanged).
//!
//! `EncodedMatMul(x, w[N, K], b)` is, per output `(m, n)`, a dot product
//! along `K` organised by scale group ([`encoded_dot`]): each group's scale
//! (and offset) is read once and multiplies the integer dot product of its
//! quants with `x`, `acc += scale · Σ q·x (+ offset · Σ x)`, as ggml's dot
//! kernels do; dense f16/bf16 weights decode each element. Q8_0, Q4_0 and
//! finite f16 weights take the vector schedule of `decode::vector_dot`
//! instead (the same sums in another order). Every encoding
//! `crate::lower::decode` reads is covered: all GGUF block formats (the
//! K-quants and ternary ones included), every affine form, f16 and bf16.

use smelt_ir::ops::weights::Weights;
use smelt_ir::ops::{Op, OpDef};
use smelt_ir::{DType, Graph, Node, TensorType, ValueId};

use super::decode::{XRow, decode_element, encoded_dot, vector_dot};
use super::{NodeResult, loop_nest};
use crate::kernel::build::{add, f, i, load, mul, var};
use crate::kernel::{Buf, Expr, Program, Scalar, Stmt};

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
        Op::Weights(Weights::EncodedGather) => lower_encoded_gather(ops, p),
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
    let out = ops.out.0;
    let mut failed = None;
    let nest = loop_nest(p, &[rows, k], |p, idx| {
        let (r, kk) = (idx[0].clone(), idx[1].clone());
        match decode_element(p, wty, *wbuf, r.clone(), kk.clone()) {
            Ok(value) => vec![Stmt::Store {
                buf: out,
                index: add(mul(r, i(k as i64)), kk),
                value,
            }],
            Err(e) => {
                failed = Some(e);
                Vec::new()
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(p.par_nest(nest, (rows * k) as u64))
}

/// `EncodedGather(w[R, K], indices)`: each index read once (checked,
/// wrapped and clamped into `0..R` like `Gather`'s, so no index reads
/// outside the weight), then its row decoded element by element.
fn lower_encoded_gather(ops: &WeightOperands, p: &mut Program) -> NodeResult {
    let (wbuf, wty) = ops.input(0, "weight")?;
    let (ibuf, ity) = ops.input(1, "indices")?;
    let (rows, k) = rows_k(wty)?;
    if rows == 0 {
        return Err("EncodedGather from an empty weight has no valid index".into());
    }
    let idx = super::Operand {
        buf: *ibuf,
        shape: ity.shape.clone(),
        ty: Scalar::of(ity.dtype).ok_or("indices of no kernel type")?,
    };
    let t = idx.numel();
    let out = ops.out.0;
    let kv = p.var(Scalar::I64);
    let mut failed = None;
    let nest = loop_nest(p, &[t], |p, lp| {
        let (mut s, row) = super::shape::read_index(p, &idx, lp[0].clone(), rows);
        let rv = p.var(Scalar::I64);
        let value = match decode_element(p, wty, *wbuf, var(rv), var(kv)) {
            Ok(v) => v,
            Err(e) => {
                failed = Some(e);
                return Vec::new();
            }
        };
        let store = Stmt::Store {
            buf: out,
            index: add(mul(lp[0].clone(), i(k as i64)), var(kv)),
            value,
        };
        s.push(Stmt::Set(rv, row));
        s.push(Stmt::for_loop(kv, i(0), i(k as i64), vec![store]));
        s
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(nest)
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
    let acc = p.var(Scalar::F32);
    let (xbuf, obuf) = (*xbuf, *obuf);
    let mut failed = None;
    let nest = loop_nest(p, &[m, n], |p, idx| {
        let (mi, ni) = (idx[0].clone(), idx[1].clone());
        let x_at = |kk: Expr| load(xbuf, add(mul(mi.clone(), i(k as i64)), kk), Scalar::F32);
        let row = XRow {
            buf: xbuf,
            at: mul(mi.clone(), i(k as i64)),
        };
        let dot = match vector_dot(p, &row, (*wbuf, wty), ni.clone(), acc) {
            Some(dot) => Ok(dot),
            None => encoded_dot(p, &x_at, (*wbuf, wty), ni.clone(), acc),
        };
        let dot = match dot {
            Ok(dot) => dot,
            Err(e) => {
                failed = Some(e);
                return Vec::new();
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
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(p.par_nest(nest, (m * n * k) as u64))
}
