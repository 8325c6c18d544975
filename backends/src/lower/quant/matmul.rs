//! `MatMulInteger` and `QLinearMatMul` on the general matmul loops: the
//! product subtracts the zero points (per tensor, per row of A or per column
//! of B) in `i32`, and `QLinearMatMul` requantizes each sum with its
//! scales, all broadcast over the output like the interpreter broadcasts
//! them.

use smelt_ir::ops::quant::qparam_shape;
use smelt_ir::shape::numel;

use super::super::linalg::{MatMulMath, general_matmul};
use super::super::{NodeResult, Operand, broadcast_index, input, operand};
use super::gemm::{self, IntGemm, Tile};
use super::{QType, centered, f32_scale, multiplier, pack};
use crate::kernel::build::{add, i, mul, var};
use crate::kernel::{Buf, Expr, Program, Scalar, Stmt};

/// A quantization parameter and the shape it broadcasts over the output
/// (rows `m` and columns `n` last, 1-D operands' unit dimensions kept).
struct Param {
    op: Operand,
    shape: Vec<usize>,
}

impl Param {
    /// The parameter's element for the output index `idx`.
    fn at(&self, idx: &[Expr]) -> Expr {
        self.op.load(broadcast_index(&self.shape, idx))
    }

    /// Whether the parameter is one value for the whole tensor.
    fn per_tensor(&self) -> bool {
        self.shape.iter().all(|&d| d == 1)
    }

    /// The parameter's element for column `n` of an output of `cols`
    /// columns, when it is per tensor or per column (else `None`).
    fn column(&self, cols: usize, n: Expr) -> Option<Expr> {
        if self.per_tensor() {
            return Some(self.op.load(i(0)));
        }
        let (last, rest) = self.shape.split_last()?;
        (*last == cols && rest.iter().all(|&d| d == 1)).then(|| self.op.load(n))
    }
}

/// The packed GEMM of an 8-bit `a` (any rank) by a constant 2-D 8-bit `b`
/// with per-tensor `za` and per-tensor or per-column `zb`, `store` taking
/// each result; `None` when the operands do not fit it.
fn packed(
    p: &mut Program,
    (a, b): (&Operand, &Operand),
    (za, zb): (Option<&Param>, Option<&Param>),
    store: &gemm::StoreFn<'_>,
) -> Option<NodeResult> {
    let [k, n] = b.shape[..] else { return None };
    let bytes = gemm::const_bytes(p, b.buf)?;
    let rows = a.numel() / k.max(1);
    let fits = gemm::is_8bit(a.ty)
        && gemm::is_8bit(b.ty)
        && a.shape.last() == Some(&k)
        && k > 0
        && rows > 0
        && n > 0
        && za.is_none_or(Param::per_tensor)
        && zb.is_none_or(|z| z.column(n, i(0)).is_some())
        && bytes.len() == k * n;
    if !fits {
        return None;
    }
    let tile = Tile::of(p.shape);
    let unsigned = b.ty == Scalar::U8;
    let packed = pack::pack(k, n, tile.nr(), unsigned, |kk, nn| bytes[kk * n + nn]);
    let (panels, col_sums) = gemm::push_packed(p, packed);
    let zb_of = |nn: Expr| {
        gemm::b_zero(b.ty, zb.and_then(|z| z.column(n, nn))).unwrap_or(Expr::I(0, Scalar::I32))
    };
    let has_zb = zb.is_some() || unsigned;
    let g = IntGemm {
        m: rows,
        k,
        n,
        tile,
        panels,
        col_sums,
        row: &|p: &mut Program, m: Expr, buf, at: Expr| copy_row_stmts(p, a, m, buf, at, k),
        za: gemm::a_zero(a.ty, za.map(|z| z.op.load(i(0)))),
        zb: if has_zb { Some(&zb_of) } else { None },
        store,
    };
    Some(gemm::lower(p, &g))
}

/// `buf[at + kk] = A'[m, kk]` for `kk < k`.
fn copy_row_stmts(
    p: &mut Program,
    a: &Operand,
    m: Expr,
    buf: Buf,
    at: Expr,
    k: usize,
) -> Vec<Stmt> {
    let kk = p.var(Scalar::I64);
    let x = a.load(add(mul(m, i(k as i64)), var(kk)));
    vec![Stmt::for_loop(
        kk,
        i(0),
        i(k as i64),
        vec![Stmt::Store {
            buf,
            index: add(at, var(kk)),
            value: gemm::a_byte(a.ty, x),
        }],
    )]
}

/// Operand `k` of `ins` as a per-row (`per_row`) or per-column parameter of
/// `of`, named `what`. Only a per-tensor parameter of a 1-D operand has a
/// native kernel.
fn param(
    ins: &[Option<Operand>],
    k: usize,
    of: &Operand,
    per_row: bool,
    what: &str,
) -> Result<Option<Param>, String> {
    let Some(op) = input(ins, k) else {
        return Ok(None);
    };
    let shape = qparam_shape(&op.shape, &of.shape, per_row, what).map_err(|e| e.to_string())?;
    if of.shape.len() < 2 && !shape.is_empty() {
        return Err(format!("{what} of a 1-D operand has no native kernel"));
    }
    Ok(Some(Param { op, shape }))
}

/// The output's zero point and scale, per tensor or broadcast over an
/// output none of whose dimensions the 1-D operands dropped.
fn out_param(op: Operand, dropped: bool) -> Result<Param, String> {
    let per_tensor = numel(&op.shape).map_err(|e| e.to_string())? == 1 && op.shape.len() <= 1;
    if per_tensor {
        return Ok(Param { op, shape: vec![] });
    }
    if dropped {
        return Err("a non-scalar y_scale with a 1-D operand has no native kernel".into());
    }
    let shape = op.shape.clone();
    Ok(Param { op, shape })
}

/// `y = Σ (a − a_zero_point)·(b − b_zero_point)` in `i32`.
pub(super) fn matmul_integer(ins: &[Option<Operand>], y: &Operand, p: &mut Program) -> NodeResult {
    let (a, b) = (operand(ins, 0, "A")?, operand(ins, 1, "B")?);
    let za = param(ins, 2, &a, true, "a_zero_point")?;
    let zb = param(ins, 3, &b, false, "b_zero_point")?;
    if y.ty != Scalar::I32 {
        return Err(format!("a {:?} result has no native kernel", y.ty));
    }
    let n = y.shape.last().copied().unwrap_or(1) as i64;
    let store = |_: &mut Program, m: Expr, nn: Expr, acc: Expr| {
        Ok(vec![Stmt::Store {
            buf: y.buf,
            index: add(mul(m, i(n)), nn),
            value: acc,
        }])
    };
    if let Some(r) = packed(p, (&a, &b), (za.as_ref(), zb.as_ref()), &store) {
        return r;
    }
    let product = |av: Expr, bv: Expr, idx: &[Expr]| {
        mul(
            centered(av, za.as_ref().map(|z| z.at(idx))),
            centered(bv, zb.as_ref().map(|z| z.at(idx))),
        )
    };
    let math = MatMulMath {
        acc: Scalar::I32,
        product: &product,
        store: &|acc, _| acc,
    };
    general_matmul(p, &a, &b, y, &math)
}

/// `y = saturate(round(Σ (a − za)·(b − zb) · sa·sb/sy) + zy)`.
pub(super) fn qlinear_matmul(ins: &[Option<Operand>], y: &Operand, p: &mut Program) -> NodeResult {
    let (a, b) = (operand(ins, 0, "a")?, operand(ins, 3, "b")?);
    let dropped = a.shape.len() < 2 || b.shape.len() < 2;
    let required = |k: usize, of: &Operand, per_row: bool, what: &str| {
        param(ins, k, of, per_row, what)?.ok_or(format!("no {what}"))
    };
    let sa = required(1, &a, true, "a_scale")?;
    let za = required(2, &a, true, "a_zero_point")?;
    let sb = required(4, &b, false, "b_scale")?;
    let zb = required(5, &b, false, "b_zero_point")?;
    let sy = out_param(operand(ins, 6, "y_scale")?, dropped)?;
    let zy = out_param(operand(ins, 7, "y_zero_point")?, dropped)?;
    for s in [&sa, &sb, &sy] {
        f32_scale(&s.op, "a scale")?;
    }
    let out = QType::of(y.ty)?;
    let n = y.shape.last().copied().unwrap_or(1);
    if [&sa, &sy, &zy].iter().all(|s| s.per_tensor()) && sb.column(n, i(0)).is_some() {
        let store = |_: &mut Program, m: Expr, nn: Expr, acc: Expr| {
            let sbn = sb
                .column(n, nn.clone())
                .ok_or("b_scale is not per column")?;
            let mult = multiplier(sa.op.load(i(0)), sbn, sy.op.load(i(0)));
            Ok(vec![Stmt::Store {
                buf: y.buf,
                index: add(mul(m, i(n as i64)), nn),
                value: out.requantize(acc, mult, zy.op.load(i(0))),
            }])
        };
        if let Some(r) = packed(p, (&a, &b), (Some(&za), Some(&zb)), &store) {
            return r;
        }
    }
    let product = |av: Expr, bv: Expr, idx: &[Expr]| {
        mul(
            centered(av, Some(za.at(idx))),
            centered(bv, Some(zb.at(idx))),
        )
    };
    let store = |acc: Expr, idx: &[Expr]| {
        let mult = multiplier(sa.at(idx), sb.at(idx), sy.at(idx));
        out.requantize(acc, mult, zy.at(idx))
    };
    let math = MatMulMath {
        acc: Scalar::I32,
        product: &product,
        store: &store,
    };
    general_matmul(p, &a, &b, y, &math)
}
