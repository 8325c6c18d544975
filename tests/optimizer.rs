//! Optimizer tests.
//!
//! - Soundness of every rule: for each rule a small graph in which its
//!   left-hand side occurs is built with random shapes and constants; the
//!   optimizer runs with only that rule, extracting the rewritten forms
//!   first, and the rule must have applied. Both graphs run on random inputs
//!   in the reference interpreter and must agree within tolerance. A rule
//!   without a case here fails `every_rule_has_a_soundness_case`.
//! - Golden IR per rule file (`tests/optimizer/<file>.ir`: before → after),
//!   refreshed with `UPDATE_GOLDEN=1 cargo test --test optimizer`.
//! - The example models at opt-level 0 and 3 give the same outputs.
//!
//! Over 1,200 lines because the soundness cases of every rule file sit in
//! one place, next to the completeness check that every rule has one; the
//! split planned is one module per rule file under `tests/optimizer/`.

#[path = "common/golden.rs"]
mod golden_file;
#[path = "common/targets.rs"]
mod targets;

use std::collections::BTreeMap;
use std::path::Path;

use smelt_ir::attrs::{AttrValue, Attrs};
use smelt_ir::interp::Interpreter;
use smelt_ir::ops::ParseCtx;
use smelt_ir::{DType, Graph, Op, OpDef, Tensor, TensorType, ValueId};
use smelt_passes::egraph::cost::TARGETS;
use smelt_passes::egraph::{Options, Pipeline, optimize};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn shape(&mut self, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| self.range(1, 5)).collect()
    }
}

/// Graph builder for the cases.
struct B {
    g: Graph,
    rng: Rng,
    n: usize,
}

fn a_int(k: &str, v: i64) -> (String, AttrValue) {
    (k.into(), AttrValue::Int(v))
}
fn a_ints(k: &str, v: &[i64]) -> (String, AttrValue) {
    (k.into(), AttrValue::Ints(v.to_vec()))
}
fn a_f(k: &str, v: f32) -> (String, AttrValue) {
    (k.into(), AttrValue::Float(v))
}

impl B {
    fn new(seed: u64) -> B {
        B {
            g: Graph::new(),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            n: 0,
        }
    }
    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }
    fn input(&mut self, shape: Vec<usize>) -> ValueId {
        let n = self.name("x");
        self.g
            .add_input(n, TensorType::new(DType::F32, shape))
            .unwrap()
    }
    fn rand_const(&mut self, shape: Vec<usize>, lo: f32, hi: f32) -> ValueId {
        let len: usize = shape.iter().product();
        let v: Vec<f32> = (0..len).map(|_| self.rng.f32(lo, hi)).collect();
        self.konst(Tensor::from_vec(shape, v).unwrap())
    }
    /// An f32 input of a random shape of rank `rank`, and that shape.
    fn rand_input(&mut self, rank: usize) -> (ValueId, Vec<usize>) {
        let s = self.rng.shape(rank);
        (self.input(s.clone()), s)
    }
    /// `x op c` for an input `x` of a random shape of rank `rank` and a
    /// scalar constant `c`.
    fn x_op_splat(&mut self, rank: usize, op: &str, c: f32) -> ValueId {
        let (x, _) = self.rand_input(rank);
        let c = self.splat(c);
        self.op(op, &[x, c])
    }
    /// `c op x`, as [`B::x_op_splat`] with the operands swapped.
    fn splat_op_x(&mut self, rank: usize, op: &str, c: f32) -> ValueId {
        let (x, _) = self.rand_input(rank);
        let c = self.splat(c);
        self.op(op, &[c, x])
    }
    /// `c op x` for a rank-2 input `x` and a constant row `c` in [-2, 2].
    fn row_const_op_x(&mut self, op: &str) -> ValueId {
        let (x, s) = self.rand_input(2);
        let c = self.rand_const(vec![s[1]], -2.0, 2.0);
        self.op(op, &[c, x])
    }
    /// `(x op1 c) op2 k` for a rank-2 input `x`, a constant row `c` in
    /// `range` and a scalar `k`.
    fn const_chain(&mut self, op1: &str, range: (f32, f32), op2: &str, k: f32) -> ValueId {
        let (x, s) = self.rand_input(2);
        let c = self.rand_const(vec![s[1]], range.0, range.1);
        let d = self.splat(k);
        let y = self.op(op1, &[x, c]);
        self.op(op2, &[y, d])
    }
    fn splat(&mut self, x: f32) -> ValueId {
        self.konst(Tensor::scalar(x))
    }
    fn ints(&mut self, v: &[i64]) -> ValueId {
        self.konst(Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap())
    }
    fn konst(&mut self, t: Tensor) -> ValueId {
        let n = self.name("c");
        self.g.add_const(n, &t).unwrap()
    }
    fn op_attrs(
        &mut self,
        name: &str,
        attrs: Vec<(String, AttrValue)>,
        ins: &[ValueId],
    ) -> ValueId {
        let attrs = Attrs::new(attrs);
        let ctx = ParseCtx {
            op_type: name,
            domain: "",
            opset: 21,
            attrs: &attrs,
            num_inputs: ins.len(),
            num_outputs: 1,
        };
        let op = Op::parse(&ctx)
            .expect("known op")
            .expect("valid attributes");
        let vn = self.name("v");
        let nn = self.name("n");
        self.g
            .add_node(nn, op, ins.iter().map(|&i| Some(i)).collect(), vec![vn])
            .unwrap_or_else(|e| panic!("building {name}: {e}"))[0]
    }
    fn op(&mut self, name: &str, ins: &[ValueId]) -> ValueId {
        self.op_attrs(name, vec![], ins)
    }
    fn transpose(&mut self, x: ValueId, perm: &[i64]) -> ValueId {
        self.op_attrs("Transpose", vec![a_ints("perm", perm)], &[x])
    }
    fn rand_perm(&mut self, rank: usize) -> Vec<i64> {
        let mut p: Vec<i64> = (0..rank as i64).collect();
        for i in (1..rank).rev() {
            let j = self.rng.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}

type Case = fn(&mut B) -> ValueId;

/// The soundness cases: rule name → a graph containing its left-hand side.
fn cases() -> Vec<(&'static str, Case)> {
    let mut v: Vec<(&'static str, Case)> = vec![
        ("mul-one", |b| b.x_op_splat(3, "Mul", 1.0)),
        ("one-mul", |b| b.splat_op_x(2, "Mul", 1.0)),
        ("add-zero", |b| b.x_op_splat(3, "Add", 0.0)),
        ("zero-add", |b| b.splat_op_x(2, "Add", 0.0)),
        ("sub-zero", |b| b.x_op_splat(2, "Sub", 0.0)),
        ("div-one", |b| b.x_op_splat(2, "Div", 1.0)),
        ("neg-neg", |b| {
            let (x, _) = b.rand_input(3);
            let y = b.op("Neg", &[x]);
            b.op("Neg", &[y])
        }),
        ("sqrt-mul-sqrt", |b| {
            let (x, _) = b.rand_input(2);
            let e = b.op("Exp", &[x]);
            let r = b.op("Sqrt", &[e]);
            b.op("Mul", &[r, r])
        }),
        ("identity", |b| {
            let (x, _) = b.rand_input(2);
            let y = b.op("Relu", &[x]);
            b.op("Identity", &[y])
        }),
        ("cast-noop", |b| {
            let (x, _) = b.rand_input(2);
            b.op_attrs("Cast", vec![a_int("to", 1)], &[x])
        }),
        ("cast-cast", |b| {
            let (x, _) = b.rand_input(2);
            let y = b.op_attrs("Cast", vec![a_int("to", 11)], &[x]); // f64
            b.op_attrs("Cast", vec![a_int("to", 1)], &[y])
        }),
        ("mul-const-right", |b| b.row_const_op_x("Mul")),
        ("add-const-right", |b| b.row_const_op_x("Add")),
        ("mul-mul-const", |b| {
            let (x, s) = b.rand_input(3);
            let c = b.rand_const(vec![s[2]], -2.0, 2.0);
            let d = b.rand_const(vec![1, s[2]], -2.0, 2.0);
            let y = b.op("Mul", &[x, c]);
            b.op("Mul", &[y, d])
        }),
        ("add-add-const", |b| {
            b.const_chain("Add", (-2.0, 2.0), "Add", 0.5)
        }),
        ("sub-add-const", |b| {
            b.const_chain("Sub", (-2.0, 2.0), "Add", 0.25)
        }),
        ("div-mul-const", |b| {
            b.const_chain("Div", (0.5, 2.0), "Mul", 3.0)
        }),
        ("transpose-transpose", |b| {
            let r = b.rng.range(2, 4);
            let (x, _) = b.rand_input(r);
            let p = b.rand_perm(r);
            let q = b.rand_perm(r);
            let y = b.transpose(x, &p);
            b.transpose(y, &q)
        }),
        ("transpose-identity", |b| {
            let (x, _) = b.rand_input(3);
            b.transpose(x, &[0, 1, 2])
        }),
        ("reshape-reshape", |b| {
            let (x, s) = b.rand_input(3);
            let n: usize = s.iter().product();
            let a = b.ints(&[n as i64]);
            let y = b.op("Reshape", &[x, a]);
            let t = b.ints(&[s[0] as i64, -1]);
            b.op("Reshape", &[y, t])
        }),
        ("flatten-reshape", |b| {
            let (x, s) = b.rand_input(3);
            let a = b.ints(&[s[2] as i64, s[1] as i64, s[0] as i64]);
            let y = b.op("Reshape", &[x, a]);
            b.op_attrs("Flatten", vec![a_int("axis", 1)], &[y])
        }),
        ("squeeze-reshape", |b| {
            let (x, s) = b.rand_input(2);
            let a = b.ints(&[1, (s[0] * s[1]) as i64]);
            let y = b.op("Reshape", &[x, a]);
            let ax = b.ints(&[0]);
            b.op("Squeeze", &[y, ax])
        }),
        ("unsqueeze-reshape", |b| {
            let (x, s) = b.rand_input(2);
            let a = b.ints(&[(s[0] * s[1]) as i64]);
            let y = b.op("Reshape", &[x, a]);
            let ax = b.ints(&[0]);
            b.op("Unsqueeze", &[y, ax])
        }),
        ("reshape-noop", |b| {
            let (x, s) = b.rand_input(3);
            let a = b.ints(&s.iter().map(|&d| d as i64).collect::<Vec<_>>());
            b.op("Reshape", &[x, a])
        }),
        ("gemm-absorb-transpose", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let a = b.input(vec![k, m]);
            let w = b.input(vec![k, n]);
            let c = b.rand_const(vec![n], -1.0, 1.0);
            let at = b.transpose(a, &[1, 0]);
            b.op_attrs(
                "Gemm",
                vec![a_f("alpha", 0.5), a_f("beta", 2.0)],
                &[at, w, c],
            )
        }),
        ("gemm2-absorb-transpose", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let a = b.input(vec![m, k]);
            let w2 = b.input(vec![n, k]);
            let w2t = b.transpose(w2, &[1, 0]);
            b.op_attrs("Gemm", vec![a_int("transB", 0)], &[a, w2t])
        }),
        ("matmul-absorb-transpose", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let a = b.input(vec![m, k]);
            let w = b.input(vec![n, k]);
            let wt = b.transpose(w, &[1, 0]);
            b.op("MatMul", &[a, wt])
        }),
        ("bn-into-conv", |b| bn_conv(b, false)),
        ("bn-into-conv-bias", |b| bn_conv(b, true)),
        ("bn-into-matmul", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let x = b.input(vec![m, k]);
            let w = b.rand_const(vec![k, n], -1.0, 1.0);
            let y = b.op("MatMul", &[x, w]);
            bn(b, y, n)
        }),
        ("bn-into-gemm", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let x = b.input(vec![m, k]);
            let w = b.rand_const(vec![n, k], -1.0, 1.0);
            let c = b.rand_const(vec![n], -1.0, 1.0);
            let y = b.op_attrs(
                "Gemm",
                vec![a_int("transB", 1), a_f("alpha", 0.7), a_f("beta", 1.5)],
                &[x, w, c],
            );
            bn(b, y, n)
        }),
        ("matmul-add-gemm", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let x = b.input(vec![m, k]);
            let w = b.rand_const(vec![k, n], -1.0, 1.0);
            let c = b.rand_const(vec![n], -1.0, 1.0);
            let y = b.op("MatMul", &[x, w]);
            b.op("Add", &[y, c])
        }),
        ("add-matmul-gemm", |b| {
            let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 5), b.rng.range(1, 5));
            let x = b.input(vec![m, k]);
            let w = b.input(vec![k, n]);
            let c = b.input(vec![m, n]);
            let y = b.op("MatMul", &[x, w]);
            b.op("Add", &[c, y])
        }),
        ("gelu-erf", |b| {
            let (x, _) = b.rand_input(3);
            let r2 = b.splat(std::f32::consts::SQRT_2);
            let one = b.splat(1.0);
            let half = b.splat(0.5);
            let d = b.op("Div", &[x, r2]);
            let e = b.op("Erf", &[d]);
            let a = b.op("Add", &[e, one]);
            let m = b.op("Mul", &[x, a]);
            b.op("Mul", &[m, half])
        }),
        ("gelu-erf-half-first", |b| {
            let (x, _) = b.rand_input(2);
            let r2 = b.splat(2f32.sqrt() * (1.0 + 2e-6)); // as an exporter might round it
            let one = b.splat(1.0);
            let half = b.splat(0.5);
            let h = b.op("Mul", &[x, half]);
            let d = b.op("Div", &[x, r2]);
            let e = b.op("Erf", &[d]);
            let a = b.op("Add", &[e, one]);
            b.op("Mul", &[h, a])
        }),
        ("gelu-tanh", |b| {
            let (x, _) = b.rand_input(2);
            let three = b.splat(3.0);
            let k = b.splat(0.044715);
            let c = b.splat(0.7978846);
            let one = b.splat(1.0);
            let half = b.splat(0.5);
            let p = b.op("Pow", &[x, three]);
            let pk = b.op("Mul", &[p, k]);
            let a = b.op("Add", &[x, pk]);
            let ac = b.op("Mul", &[a, c]);
            let t = b.op("Tanh", &[ac]);
            let t1 = b.op("Add", &[t, one]);
            let h = b.op("Mul", &[x, half]);
            b.op("Mul", &[h, t1])
        }),
        ("relu-epilogue", |b| {
            let y = product(b);
            b.op("Relu", &[y])
        }),
        ("residual-epilogue", |b| {
            let y = product(b);
            let shape = b.g.value(y).ty.shape.clone();
            let r = b.input(shape);
            if b.rng.below(2) == 0 {
                b.op("Add", &[y, r])
            } else {
                b.op("Add", &[r, y])
            }
        }),
        ("clip-epilogue", |b| {
            let y = product(b);
            let lo = b.splat(-0.5);
            let hi = b.splat(0.75);
            b.op("Clip", &[y, lo, hi])
        }),
        ("sigmoid-epilogue", |b| {
            let y = product(b);
            b.op("Sigmoid", &[y])
        }),
        ("tanh-epilogue", |b| {
            let y = product(b);
            b.op("Tanh", &[y])
        }),
        ("hardswish-epilogue", |b| {
            let y = product(b);
            b.op("HardSwish", &[y])
        }),
        ("gelu-epilogue", |b| {
            let y = product(b);
            let approx = if b.rng.below(2) == 0 { "none" } else { "tanh" };
            let attrs = vec![("approximate".to_string(), AttrValue::String(approx.into()))];
            b.op_attrs("Gelu", attrs, &[y])
        }),
        ("swish-epilogue", |b| {
            let y = product(b);
            b.op_attrs("Swish", vec![a_f("alpha", 1.5)], &[y])
        }),
        ("silu", |b| {
            let (x, _) = b.rand_input(3);
            let g = b.op("Sigmoid", &[x]);
            b.op("Mul", &[x, g])
        }),
        ("silu-rev", |b| {
            let (x, _) = b.rand_input(2);
            let g = b.op("Sigmoid", &[x]);
            b.op("Mul", &[g, x])
        }),
        ("hardswish", |b| {
            let (x, _) = b.rand_input(3);
            let h = b.op_attrs(
                "HardSigmoid",
                vec![a_f("alpha", 1.0 / 6.0), a_f("beta", 0.5)],
                &[x],
            );
            b.op("Mul", &[x, h])
        }),
        ("hardswish-clip", |b| {
            let (x, _) = b.rand_input(3);
            let three = b.splat(3.0);
            let lo = b.splat(0.0);
            let hi = b.splat(6.0);
            let six = b.splat(6.0);
            let a = b.op("Add", &[x, three]);
            let c = b.op("Clip", &[a, lo, hi]);
            let m = b.op("Mul", &[x, c]);
            b.op("Div", &[m, six])
        }),
        ("softmax", |b| {
            let r = b.rng.range(1, 3);
            let (x, _) = b.rand_input(r);
            let axis = -(1 + b.rng.below(r) as i64);
            let ax = b.ints(&[axis]);
            let mx = b.op("ReduceMax", &[x, ax]);
            let d = b.op("Sub", &[x, mx]);
            let e = b.op("Exp", &[d]);
            let sm = b.op("ReduceSum", &[e, ax]);
            b.op("Div", &[e, sm])
        }),
        ("layernorm", |b| {
            let (x, s) = b.rand_input(3);
            let ax = b.ints(&[-1]);
            let mean = b.op("ReduceMean", &[x, ax]);
            let d = b.op("Sub", &[x, mean]);
            let two = b.splat(2.0);
            let sq = b.op("Pow", &[d, two]);
            let v = b.op("ReduceMean", &[sq, ax]);
            let eps = b.splat(1e-5);
            let ve = b.op("Add", &[v, eps]);
            let sd = b.op("Sqrt", &[ve]);
            let y = b.op("Div", &[d, sd]);
            let g = b.rand_const(vec![s[2]], 0.5, 1.5);
            let bb = b.rand_const(vec![s[2]], -1.0, 1.0);
            let yg = b.op("Mul", &[y, g]);
            b.op("Add", &[yg, bb])
        }),
        ("rmsnorm", |b| {
            let (x, s) = b.rand_input(3);
            let ax = b.ints(&[-1]);
            let two = b.splat(2.0);
            let sq = b.op("Pow", &[x, two]);
            let ms = b.op("ReduceMean", &[sq, ax]);
            let eps = b.splat(1e-6);
            let me = b.op("Add", &[ms, eps]);
            let sd = b.op("Sqrt", &[me]);
            let y = b.op("Div", &[x, sd]);
            let g = b.rand_const(vec![s[2]], 0.5, 1.5);
            b.op("Mul", &[y, g])
        }),
        ("attention", |b| {
            let (bt, h, sq, sk, d) = (
                b.rng.range(1, 2),
                b.rng.range(1, 3),
                b.rng.range(1, 5),
                b.rng.range(1, 5),
                b.rng.range(1, 4),
            );
            let q = b.input(vec![bt, h, sq, d]);
            let k = b.input(vec![bt, sk, h, d]);
            let v = b.input(vec![bt, h, sk, d]);
            let kt = b.transpose(k, &[0, 2, 3, 1]);
            let qk = b.op("MatMul", &[q, kt]);
            let c = b.splat(0.35);
            let sc = b.op("Mul", &[qk, c]);
            let p = b.op_attrs("Softmax", vec![a_int("axis", -1)], &[sc]);
            b.op("MatMul", &[p, v])
        }),
    ];
    v.push(("sink-transpose-relu", |b| sink_unary(b, "Relu")));
    v.push(("sink-transpose-neg", |b| sink_unary(b, "Neg")));
    v.push(("sink-transpose-exp", |b| sink_unary(b, "Exp")));
    v.push(("sink-transpose-sigmoid", |b| sink_unary(b, "Sigmoid")));
    v.push(("sink-transpose-tanh", |b| sink_unary(b, "Tanh")));
    v.push(("sink-transpose-erf", |b| sink_unary(b, "Erf")));
    v.push(("sink-transpose-sqrt", |b| sink_unary(b, "Sqrt")));
    v.push(("sink-transpose-abs", |b| sink_unary(b, "Abs")));
    v.push(("sink-transpose-add", |b| sink_binary(b, "Add")));
    v.push(("sink-transpose-sub", |b| sink_binary(b, "Sub")));
    v.push(("sink-transpose-mul", |b| sink_binary(b, "Mul")));
    v.push(("sink-transpose-div", |b| sink_binary(b, "Div")));
    v.push(("matmul-decoded", |b| {
        let (m, _, w, dw) = decoded_weight(b);
        let x = b.input(vec![m, b.g.value(w).ty.shape[1]]);
        let t = b.transpose(dw, &[1, 0]);
        b.op("MatMul", &[x, t])
    }));
    v.push(("gemm-decoded", |b| {
        let (m, n, w, dw) = decoded_weight(b);
        let x = b.input(vec![m, b.g.value(w).ty.shape[1]]);
        let c = b.rand_const(vec![n], -1.0, 1.0);
        b.op_attrs("Gemm", vec![a_int("transB", 1)], &[x, dw, c])
    }));
    v.push(("gemm-decoded-nobias", |b| {
        let (m, _, w, dw) = decoded_weight(b);
        let x = b.input(vec![m, b.g.value(w).ty.shape[1]]);
        b.op_attrs("Gemm", vec![a_int("transB", 1)], &[x, dw])
    }));
    v.push(("q-of-dq", |b| q_of_dq(b, true)));
    v.push(("q-of-dq-nozp", |b| q_of_dq(b, false)));
    v.push(("qlinear-conv", |b| qdq_conv(b, false)));
    v.push(("qlinear-conv-act", |b| qdq_conv(b, true)));
    v.push(("qlinear-matmul", qdq_matmul));
    v.push(("qlinear-gemm", qdq_gemm));
    v
}

/// Tolerance of a rule's soundness check: the QDQ-to-integer rules
/// (`rules/qlinear.rs`) may move an output by one quantization step (what
/// onnxruntime accepts between its float and integer forms); every other
/// rule by rounding only.
fn steps_allowed(rule: &str) -> f64 {
    if rule.starts_with("qlinear-") {
        1.0
    } else {
        0.0
    }
}

/// `DequantizeLinear(QuantizeLinear(x))` of a fresh f32 input of `shape`,
/// per tensor, to u8 or i8 with a random zero point: the activation
/// operand of a QDQ graph.
fn qdq_input(b: &mut B, shape: Vec<usize>) -> ValueId {
    let x = b.input(shape);
    let s = b.rand_const(vec![], 4.0 / 255.0, 6.0 / 255.0);
    let z = if b.rng.below(2) == 0 {
        Tensor::scalar(b.rng.range(100, 156) as u8)
    } else {
        Tensor::scalar(b.rng.range(0, 40) as i8 - 20)
    };
    let z = b.konst(z);
    let q = b.op_attrs("QuantizeLinear", vec![a_int("axis", 1)], &[x, s, z]);
    b.op_attrs("DequantizeLinear", vec![a_int("axis", 1)], &[q, s, z])
}

/// A constant i8 weight of `shape` with random integers, dequantized per
/// tensor or per index of `axis` (scales in [0.005, 0.02], zero points 0 or
/// small).
fn qdq_weight(b: &mut B, shape: Vec<usize>, axis: usize) -> ValueId {
    let n: usize = shape.iter().product();
    let v: Vec<i8> = (0..n).map(|_| b.rng.below(255) as i8).collect();
    let wq = b.konst(Tensor::from_vec(shape.clone(), v).unwrap());
    let groups = if b.rng.below(2) == 0 { 1 } else { shape[axis] };
    let sshape = if groups == 1 { vec![] } else { vec![groups] };
    let s = b.rand_const(sshape.clone(), 0.005, 0.02);
    let z: Vec<i8> = (0..groups).map(|_| b.rng.below(5) as i8 - 2).collect();
    let z = b.konst(Tensor::from_vec(sshape, z).unwrap());
    b.op_attrs(
        "DequantizeLinear",
        vec![a_int("axis", axis as i64)],
        &[wq, s, z],
    )
}

/// `QuantizeLinear(y)` per tensor with a scale that spreads `y` over about
/// `levels` steps: to u8 (zero point 128, or 0 with `floor`) or i8 (0, or
/// -128 with `floor`).
fn qdq_output(b: &mut B, y: ValueId, floor: bool) -> ValueId {
    let s = b.rand_const(vec![], 0.02, 0.05);
    let z = match (b.rng.below(2), floor) {
        (0, false) => b.konst(Tensor::scalar(128u8)),
        (0, true) => b.konst(Tensor::scalar(0u8)),
        (_, false) => b.konst(Tensor::scalar(0i8)),
        (_, true) => b.konst(Tensor::scalar(-128i8)),
    };
    b.op_attrs("QuantizeLinear", vec![a_int("axis", 1)], &[y, s, z])
}

/// `Q(Conv(DQ(x), DQ(W), b?))` (or, with `act`, `Q(Relu(…))` or
/// `Q(Clip(…, 0, 6))`, with the output zero point at the type's minimum):
/// the QDQ convolution `quantize_static` writes.
fn qdq_conv(b: &mut B, act: bool) -> ValueId {
    let (ci, co) = (b.rng.range(1, 4), b.rng.range(1, 6));
    let (h, w) = (b.rng.range(3, 6), b.rng.range(3, 6));
    let x = qdq_input(b, vec![1, ci, h, w]);
    let wt = qdq_weight(b, vec![co, ci, 3, 3], 0);
    let attrs = vec![a_ints("pads", &[1, 1, 1, 1])];
    let c = if b.rng.below(2) == 0 {
        let bias = b.rand_const(vec![co], -0.5, 0.5);
        b.op_attrs("Conv", attrs, &[x, wt, bias])
    } else {
        b.op_attrs("Conv", attrs, &[x, wt])
    };
    let y = match (act, b.rng.below(2)) {
        (false, _) => c,
        (true, 0) => b.op("Relu", &[c]),
        (true, _) => {
            // Clip to [0, 6] is the saturation only when Q(6) reaches the
            // maximum: scale the output so that 6 is its largest value.
            let (lo, hi) = (b.splat(0.0), b.splat(6.0));
            let r = b.op("Clip", &[c, lo, hi]);
            let s = b.konst(Tensor::scalar(6.0f32 / 255.0));
            let z = b.konst(Tensor::scalar(-128i8));
            return b.op_attrs("QuantizeLinear", vec![a_int("axis", 1)], &[r, s, z]);
        }
    };
    qdq_output(b, y, act)
}

/// `Q(EncodedMatMul(DQ(a), W[N, K], b))` with `W` affine i8 per row (the
/// importer's form of a QDQ `Gemm` with bias) and `a` of rank 2 or 3.
fn qdq_gemm(b: &mut B) -> ValueId {
    use smelt_ir::ops::weights::Weights;
    use smelt_ir::{Affine, AffineStorage, Encoding, Granularity};
    let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 8), b.rng.range(1, 6));
    let shape = if b.rng.below(2) == 0 {
        vec![m, k]
    } else {
        vec![1, m, k]
    };
    let a = qdq_input(b, shape);
    let mut bytes: Vec<u8> = (0..n * k).map(|_| b.rng.below(255) as u8).collect();
    bytes.resize((n * k).next_multiple_of(4), 0);
    for _ in 0..n {
        bytes.extend(b.rng.f32(0.005, 0.02).to_le_bytes());
    }
    let enc = Encoding::Affine(Affine {
        storage: AffineStorage::I8,
        granularity: Granularity::PerAxis { axis: 0 },
        zero_point: false,
    });
    let ty = TensorType::encoded(DType::F32, vec![n, k], enc).unwrap();
    let name = b.name("w");
    let w = b.g.add_const_bytes(name, ty, bytes.into()).unwrap();
    let bias = b.rand_const(vec![n], -0.5, 0.5);
    let (vn, nn) = (b.name("v"), b.name("n"));
    let y =
        b.g.add_node(
            nn,
            Op::Weights(Weights::EncodedMatMul),
            vec![Some(a), Some(w), Some(bias)],
            vec![vn],
        )
        .unwrap()[0];
    qdq_output(b, y, false)
}

/// `Q(MatMul(DQ(a), DQ(W)))` with a constant `W[K, N]` per tensor or per
/// column, or `Q(MatMul(DQ(a), DQ(b)))` of two activations.
fn qdq_matmul(b: &mut B) -> ValueId {
    let (m, k, n) = (b.rng.range(1, 5), b.rng.range(1, 8), b.rng.range(1, 6));
    let a = qdq_input(b, vec![m, k]);
    let w = if b.rng.below(2) == 0 {
        qdq_weight(b, vec![k, n], 1)
    } else {
        qdq_input(b, vec![k, n])
    };
    let y = b.op("MatMul", &[a, w]);
    qdq_output(b, y, false)
}

/// `QuantizeLinear(DequantizeLinear(q, s[, z]), s[, z])` with `q` itself
/// quantized from an f32 input (so it varies at run time): int8 per axis 1
/// with zero points, or uint8 per tensor without. The outer pair reads
/// equal constants that are distinct values of the graph.
fn q_of_dq(b: &mut B, zp: bool) -> ValueId {
    let (x, shape) = b.rand_input(2);
    let per_axis = zp;
    let sshape = if per_axis { vec![shape[1]] } else { vec![] };
    let scale = b.rand_const(sshape.clone(), 0.01, 0.5);
    let scale_values = b.g.const_value(scale).unwrap().unwrap();
    let scale2 = b.konst(scale_values);
    let attrs = || vec![a_int("axis", 1)];
    if zp {
        let n: usize = sshape.iter().product();
        let z: Vec<i8> = (0..n).map(|_| b.rng.below(21) as i8 - 10).collect();
        let z1 = b.konst(Tensor::from_vec(sshape.clone(), z.clone()).unwrap());
        let z2 = b.konst(Tensor::from_vec(sshape, z).unwrap());
        let q = b.op_attrs("QuantizeLinear", attrs(), &[x, scale, z1]);
        let d = b.op_attrs("DequantizeLinear", attrs(), &[q, scale, z1]);
        b.op_attrs("QuantizeLinear", attrs(), &[d, scale2, z2])
    } else {
        let q = b.op_attrs("QuantizeLinear", attrs(), &[x, scale]);
        let d = b.op_attrs("DequantizeLinear", attrs(), &[q, scale]);
        b.op_attrs("QuantizeLinear", attrs(), &[d, scale2])
    }
}

/// A random stored weight `w` `[n, k]` (dense f16, or Q8_0 with `k = 32`)
/// and `Decode(w)`: `(m, n, w, decoded)` with a random row count `m`.
fn decoded_weight(b: &mut B) -> (usize, usize, ValueId, ValueId) {
    use smelt_ir::ops::weights::Weights;
    let (m, n) = (b.rng.range(1, 5), b.rng.range(1, 5));
    let w = if b.rng.below(2) == 0 {
        let k = b.rng.range(1, 5);
        let v: Vec<f32> = (0..n * k).map(|_| b.rng.f32(-1.0, 1.0)).collect();
        let t = Tensor::from_vec(vec![n, k], v).unwrap().cast(DType::F16);
        b.konst(t)
    } else {
        // Q8_0 blocks of 32: an f16 scale, then 32 random i8 quants.
        let mut bytes = Vec::new();
        for _ in 0..n {
            let d = Tensor::scalar(b.rng.f32(0.001, 0.02)).cast(DType::F16);
            bytes.extend(d.to_le_bytes());
            bytes.extend((0..32).map(|_| b.rng.below(255) as u8));
        }
        let enc = smelt_ir::Encoding::Block(smelt_ir::BlockFormat::Q8_0);
        let ty = TensorType::encoded(DType::F32, vec![n, 32], enc).unwrap();
        let name = b.name("q");
        b.g.add_const_bytes(name, ty, bytes.into()).unwrap()
    };
    let (vn, nn) = (b.name("v"), b.name("n"));
    let dw =
        b.g.add_node(nn, Op::Weights(Weights::Decode), vec![Some(w)], vec![vn])
            .unwrap()[0];
    (m, n, w, dw)
}

fn sink_unary(b: &mut B, f: &str) -> ValueId {
    let r = b.rng.range(2, 4);
    let (x, _) = b.rand_input(r);
    let p = b.rand_perm(r);
    let t = b.transpose(x, &p);
    b.op(f, &[t])
}

fn sink_binary(b: &mut B, f: &str) -> ValueId {
    let r = b.rng.range(2, 4);
    let (x, s) = b.rand_input(r);
    let y = b.input(s);
    let p = b.rand_perm(r);
    let tx = b.transpose(x, &p);
    let ty = b.transpose(y, &p);
    b.op(f, &[tx, ty])
}

fn bn(b: &mut B, y: ValueId, c: usize) -> ValueId {
    let s = b.rand_const(vec![c], 0.5, 1.5);
    let bb = b.rand_const(vec![c], -1.0, 1.0);
    let m = b.rand_const(vec![c], -1.0, 1.0);
    let v = b.rand_const(vec![c], 0.1, 2.0);
    b.op_attrs(
        "BatchNormalization",
        vec![a_f("epsilon", 1e-3)],
        &[y, s, bb, m, v],
    )
}

fn bn_conv(b: &mut B, bias: bool) -> ValueId {
    let (n, ci, co) = (b.rng.range(1, 2), b.rng.range(1, 4), b.rng.range(1, 4));
    let (h, w) = (b.rng.range(3, 6), b.rng.range(3, 6));
    let x = b.input(vec![n, ci, h, w]);
    let wt = b.rand_const(vec![co, ci, 3, 3], -1.0, 1.0);
    let attrs = vec![a_ints("pads", &[1, 1, 1, 1])];
    let y = if bias {
        let c = b.rand_const(vec![co], -1.0, 1.0);
        b.op_attrs("Conv", attrs, &[x, wt, c])
    } else {
        b.op_attrs("Conv", attrs, &[x, wt])
    };
    bn(b, y, co)
}

/// A random Conv (with or without bias), Gemm (transposed B, bias, alpha),
/// batched MatMul, or element-wise op (broadcasting Add, Sub, Mul, Div, or
/// Sigmoid): the producers activations and residuals fuse into.
fn product(b: &mut B) -> ValueId {
    match b.rng.below(4) {
        3 => {
            let (m, n) = (b.rng.range(1, 4), b.rng.range(1, 9));
            let x = b.input(vec![2, m, n]);
            let y = b.input(vec![m, 1]);
            match b.rng.below(5) {
                0 => b.op("Add", &[x, y]),
                1 => b.op("Sub", &[y, x]),
                2 => b.op("Mul", &[x, y]),
                3 => {
                    let d = b.rand_const(vec![n], 0.5, 2.0);
                    b.op("Div", &[x, d])
                }
                _ => b.op("Sigmoid", &[x]),
            }
        }
        0 => {
            let (n, ci, co) = (b.rng.range(1, 2), b.rng.range(1, 4), b.rng.range(1, 6));
            let (h, w) = (b.rng.range(3, 6), b.rng.range(3, 6));
            let x = b.input(vec![n, ci, h, w]);
            let wt = b.rand_const(vec![co, ci, 3, 3], -1.0, 1.0);
            let attrs = vec![a_ints("pads", &[1, 1, 1, 1])];
            if b.rng.below(2) == 0 {
                let c = b.rand_const(vec![co], -1.0, 1.0);
                b.op_attrs("Conv", attrs, &[x, wt, c])
            } else {
                b.op_attrs("Conv", attrs, &[x, wt])
            }
        }
        1 => {
            let (m, k, n) = (b.rng.range(1, 6), b.rng.range(1, 6), b.rng.range(1, 9));
            let x = b.input(vec![m, k]);
            let w = b.rand_const(vec![n, k], -1.0, 1.0);
            let c = b.rand_const(vec![n], -1.0, 1.0);
            b.op_attrs(
                "Gemm",
                vec![a_int("transB", 1), a_f("alpha", 0.9)],
                &[x, w, c],
            )
        }
        _ => {
            let (m, k, n) = (b.rng.range(1, 6), b.rng.range(1, 6), b.rng.range(1, 9));
            let x = b.input(vec![2, m, k]);
            let w = b.rand_const(vec![k, n], -1.0, 1.0);
            b.op("MatMul", &[x, w])
        }
    }
}

/// A product whose result is used by something besides its activation
/// keeps its plain form (fusing would compute it twice: extraction's tree
/// cost does not see the sharing).
#[test]
fn shared_products_are_not_fused() {
    for seed in 0..6 {
        let mut b = B::new(seed);
        let y = product(&mut b);
        let r = b.op("Relu", &[y]);
        let z = b.op("Neg", &[y]);
        b.g.outputs = vec![r, z];
        let (opt, report) = optimize(&b.g, &rule_options("relu-epilogue")).unwrap();
        assert_eq!(report.applied.get("relu-epilogue").copied().unwrap_or(0), 0);
        assert!(opt.nodes.iter().all(|n| !n.op.name().starts_with("Fused")));
        // A product that is itself a graph output is not fused either.
        let mut b = B::new(seed);
        let y = product(&mut b);
        let r = b.op("Relu", &[y]);
        b.g.outputs = vec![r, y];
        let (opt, _) = optimize(&b.g, &rule_options("relu-epilogue")).unwrap();
        assert!(opt.nodes.iter().all(|n| !n.op.name().starts_with("Fused")));
    }
}

/// `act(P(…) + r)`: the residual and then the activation fuse into one
/// op, which computes what the three ops did; a residual that broadcasts, or
/// that is the product itself, is not fused.
#[test]
fn residual_then_activation_is_sound() {
    for seed in 0..8 {
        let mut b = B::new(seed + 40);
        let y = product(&mut b);
        let shape = b.g.value(y).ty.shape.clone();
        let r = b.input(shape);
        let s = b.op("Add", &[y, r]);
        let out = if seed % 2 == 0 {
            b.op("Relu", &[s])
        } else {
            let (lo, hi) = (b.splat(0.0), b.splat(6.0));
            b.op("Clip", &[s, lo, hi])
        };
        b.g.outputs = vec![out];
        let mut o = Options::for_level(2, TARGETS[0]).unwrap();
        o.only_rules = ["residual-epilogue", "relu-epilogue", "clip-epilogue"]
            .map(String::from)
            .to_vec();
        let (opt, _) = optimize(&b.g, &o).unwrap();
        let names: Vec<&str> = opt.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(names.len(), 1, "seed {seed}: {names:?}");
        let attrs = opt.nodes[0].op.attrs();
        assert!(attrs.iter().any(|a| a.0 == "residual"), "{attrs:?}");
        assert!(attrs.iter().any(|a| a.0 == "activation"), "{attrs:?}");
        let (got, want) = run_both(&b.g, &opt, seed + 7);
        close(&got[0], &want[0], &format!("seed {seed}"));
    }
    // MobileNetV2's block: p1 + p2(…(p1)). Only p2 may take the residual:
    // fusing p1 (whose other use leads back to the Add) would run it twice.
    for seed in 0..4 {
        let mut b = B::new(seed + 80);
        let x = b.input(vec![1, 3, 5, 5]);
        let conv = |b: &mut B, x| {
            let w = b.rand_const(vec![3, 3, 1, 1], -1.0, 1.0);
            b.op("Conv", &[x, w])
        };
        let p1 = conv(&mut b, x);
        let e = conv(&mut b, p1);
        let e = b.op("Relu", &[e]);
        let p2 = conv(&mut b, e);
        let out = if seed % 2 == 0 {
            b.op("Add", &[p1, p2])
        } else {
            b.op("Add", &[p2, p1])
        };
        b.g.outputs = vec![out];
        let mut o = Options::for_level(2, TARGETS[0]).unwrap();
        o.only_rules = ["residual-epilogue", "relu-epilogue"]
            .map(String::from)
            .to_vec();
        let (opt, _) = optimize(&b.g, &o).unwrap();
        let names: Vec<String> = opt.nodes.iter().map(|n| n.op.name().to_string()).collect();
        assert_eq!(names.len(), 3, "seed {seed}: {names:?}");
        let plain = opt.nodes.iter().find(|n| n.op.name() == "Conv");
        let res = opt
            .nodes
            .iter()
            .find(|n| n.op.attrs().iter().any(|a| a.0 == "residual"));
        let (Some(plain), Some(res)) = (plain, res) else {
            panic!("seed {seed}: {names:?}");
        };
        // The residual is p1, computed once by the plain Conv.
        assert_eq!(
            res.inputs.last(),
            Some(&Some(plain.outputs[0])),
            "seed {seed}"
        );
        let (got, want) = run_both(&b.g, &opt, seed);
        close(&got[0], &want[0], &format!("block seed {seed}"));
    }
    // y + y, and a residual that broadcasts: no residual fusion.
    for seed in 0..4 {
        let mut b = B::new(seed + 60);
        let y = product(&mut b);
        let twice = b.op("Add", &[y, y]);
        let r = b.input(vec![1]);
        let out = b.op("Add", &[twice, r]);
        b.g.outputs = vec![out];
        let (opt, report) = optimize(&b.g, &rule_options("residual-epilogue")).unwrap();
        assert_eq!(
            report
                .applied
                .get("residual-epilogue")
                .copied()
                .unwrap_or(0),
            0
        );
        assert!(opt.nodes.iter().all(|n| !n.op.name().starts_with("Fused")));
    }
}

/// Constant folding never widens a stored weight: `Decode` of a constant
/// (half or block-encoded) stays a `Decode` at the highest level, and the
/// optimized graph's constants are no larger.
#[test]
fn decode_of_a_constant_is_not_folded() {
    for seed in 0..8 {
        let mut b = B::new(seed);
        let (m, _, w, dw) = decoded_weight(&mut b);
        let k = b.g.value(w).ty.shape[1];
        let x = b.input(vec![m, k]);
        let y = b.op("Relu", &[dw]);
        let t = b.transpose(y, &[1, 0]);
        let out = b.op("MatMul", &[x, t]);
        b.g.outputs = vec![out];
        let opts = Options::for_level(3, TARGETS[0]).unwrap();
        let (opt, _) = optimize(&b.g, &opts).unwrap();
        assert!(
            opt.nodes.iter().any(|n| n.op.name() == "Decode"),
            "seed {seed}: the Decode was folded"
        );
        assert!(opt.const_bytes() <= b.g.const_bytes(), "seed {seed}");
        let inputs = random_inputs(&b.g, &mut Rng(seed + 5));
        let want = Interpreter::new(&b.g).run(inputs.clone()).unwrap();
        let got = Interpreter::new(&opt).run(inputs).unwrap();
        close(&got[0], &want[0], "decode not folded");
    }
}

fn random_inputs(g: &Graph, rng: &mut Rng) -> Vec<Tensor> {
    g.inputs
        .iter()
        .map(|&i| {
            let ty = &g.value(i).ty;
            let n: usize = ty.shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.f32(-2.0, 2.0)).collect();
            Tensor::from_vec(ty.shape.clone(), v).unwrap()
        })
        .collect()
}

/// Runs `g` and its optimized form `opt` in the interpreter on the same
/// random inputs (from `seed`); returns their outputs, `opt`'s first.
fn run_both(g: &Graph, opt: &Graph, seed: u64) -> (Vec<Tensor>, Vec<Tensor>) {
    let inputs = random_inputs(g, &mut Rng(seed));
    let want = Interpreter::new(g).run(inputs.clone()).unwrap();
    let got = Interpreter::new(opt).run(inputs).unwrap();
    (got, want)
}

fn close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    assert_eq!(a.dtype(), b.dtype(), "{what}: dtypes differ");
    for (i, (x, y)) in a.to_f64_vec().iter().zip(b.to_f64_vec()).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 + 1e-4 * y.abs();
        assert!(ok, "{what}: element {i}: {x} vs {y}");
    }
}

/// Integer outputs `a` and `b` differ by at most `steps` anywhere.
fn within_steps(a: &Tensor, b: &Tensor, steps: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    assert_eq!(a.dtype(), b.dtype(), "{what}: dtypes differ");
    for (i, (x, y)) in a.to_f64_vec().iter().zip(b.to_f64_vec()).enumerate() {
        assert!((x - y).abs() <= steps, "{what}: element {i}: {x} vs {y}");
    }
}

fn rule_options(rule: &str) -> Options {
    let mut o = Options::for_level(2, TARGETS[0]).unwrap();
    o.prefer_rewritten = true;
    o.only_rules = vec![rule.to_string()];
    o
}

#[test]
fn every_rule_is_sound() {
    let mut fired: BTreeMap<&str, usize> = BTreeMap::new();
    for (rule, case) in cases() {
        for trial in 0..6u64 {
            let mut b = B::new(trial * 7919 + rule.len() as u64);
            let out = case(&mut b);
            b.g.outputs = vec![out];
            let g = b.g;
            let (opt, report) =
                optimize(&g, &rule_options(rule)).unwrap_or_else(|e| panic!("{rule}: {e}"));
            *fired.entry(rule).or_default() += report.applied.get(rule).copied().unwrap_or(0);
            let mut rng = Rng(trial + 99);
            let inputs = random_inputs(&g, &mut rng);
            let want = Interpreter::new(&g).run(inputs.clone()).unwrap();
            let got = Interpreter::new(&opt)
                .run(inputs)
                .unwrap_or_else(|e| panic!("{rule}: optimized graph fails: {e}"));
            assert_eq!(
                opt.value(opt.outputs[0]).name,
                g.value(g.outputs[0]).name,
                "{rule}: the output name changed"
            );
            let what = format!("rule {rule}, trial {trial}");
            let steps = steps_allowed(rule);
            if steps > 0.0 {
                within_steps(&got[0], &want[0], steps, &what);
            } else {
                close(&got[0], &want[0], &what);
            }
        }
    }
    let never: Vec<&&str> = fired
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(r, _)| r)
        .collect();
    assert!(
        never.is_empty(),
        "rules that never applied in their cases: {never:?}"
    );
}

#[test]
fn every_rule_has_a_soundness_case() {
    let covered: Vec<&str> = cases().iter().map(|c| c.0).collect();
    let missing: Vec<String> = smelt_passes::rules::all()
        .iter()
        .map(|r| r.name.to_string())
        .filter(|n| !covered.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a soundness case: {missing:?}"
    );
    let mut names: Vec<String> = smelt_passes::rules::all()
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "rule names must be unique");
}

#[test]
fn rule_right_hand_sides_build_only_concrete_ops() {
    for r in smelt_passes::rules::all() {
        if let Some(ast) = r.applier.get_pattern_ast() {
            assert!(
                smelt_passes::rules::rhs_is_concrete(ast),
                "rule {} builds a pattern op",
                r.name
            );
        }
    }
}

/// Golden IR per rule file: one graph exercising the file, before → after.
fn golden(file: &str, build: fn(&mut B) -> Vec<ValueId>) {
    let mut b = B::new(7);
    let outs = build(&mut b);
    b.g.outputs = outs;
    let g = b.g;
    let mut o = Options::for_level(2, TARGETS[0]).unwrap();
    o.passes = vec![file.to_string()];
    let (opt, report) = optimize(&g, &o).unwrap();
    let (got, want) = run_both(&g, &opt, 5);
    for (i, (a, w)) in got.iter().zip(&want).enumerate() {
        close(a, w, &format!("{file} golden output {i}"));
    }
    let mut text = String::new();
    text.push_str("// before\n");
    text.push_str(&smelt_ir::print::print(&g));
    text.push_str("// after\n");
    text.push_str(&smelt_ir::print::print(&opt));
    text.push_str("// rules applied\n");
    for (r, n) in &report.applied {
        text.push_str(&format!("//   {r}: {n}\n"));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/optimizer")
        .join(format!("{file}.ir"));
    golden_file::assert_golden(&path, &text);
}

#[test]
fn golden_algebra() {
    golden("algebra", |b| {
        let x = b.input(vec![2, 3]);
        let one = b.splat(1.0);
        let zero = b.splat(0.0);
        let m = b.op("Mul", &[x, one]);
        let a = b.op("Add", &[m, zero]);
        let n = b.op("Neg", &[a]);
        let nn = b.op("Neg", &[n]);
        let e = b.op("Exp", &[nn]);
        let s = b.op("Sqrt", &[e]);
        let ss = b.op("Mul", &[s, s]);
        let i = b.op("Identity", &[ss]);
        let c = b.op_attrs("Cast", vec![a_int("to", 11)], &[i]);
        vec![b.op_attrs("Cast", vec![a_int("to", 1)], &[c])]
    });
}

#[test]
fn golden_constfold() {
    golden("constfold", |b| {
        let x = b.input(vec![2, 3]);
        let c = b.ints(&[3, 2]);
        let two = b.splat(2.0);
        let half = b.splat(0.5);
        let w = b.rand_const(vec![3], -1.0, 1.0);
        let w2 = b.op("Mul", &[w, two]); // folds
        let y = b.op("Mul", &[x, w2]);
        let y = b.op("Mul", &[half, y]);
        let y = b.op("Mul", &[y, two]);
        let _ = c;
        vec![y]
    });
}

#[test]
fn golden_layout() {
    golden("layout", |b| {
        let x = b.input(vec![2, 3, 4]);
        let t1 = b.transpose(x, &[1, 0, 2]);
        let t2 = b.transpose(t1, &[1, 0, 2]);
        let r = b.op("Relu", &[t2]);
        let s = b.ints(&[24]);
        let f = b.op("Reshape", &[r, s]);
        let s2 = b.ints(&[6, 4]);
        let f2 = b.op("Reshape", &[f, s2]);
        let w = b.input(vec![5, 4]);
        let wt = b.transpose(w, &[1, 0]);
        vec![b.op("MatMul", &[f2, wt])]
    });
}

#[test]
fn golden_fusion() {
    golden("fusion", |b| {
        let x = b.input(vec![1, 2, 5, 5]);
        let w = b.rand_const(vec![3, 2, 3, 3], -1.0, 1.0);
        let c = b.op_attrs("Conv", vec![a_ints("pads", &[1, 1, 1, 1])], &[x, w]);
        let y = bn(b, c, 3);
        let g = b.op("Sigmoid", &[y]);
        let y = b.op("Mul", &[y, g]);
        let s = b.ints(&[1, 75]);
        let f = b.op("Reshape", &[y, s]);
        let w2 = b.rand_const(vec![75, 4], -0.2, 0.2);
        let bias = b.rand_const(vec![4], -1.0, 1.0);
        let m = b.op("MatMul", &[f, w2]);
        let a = b.op("Add", &[m, bias]);
        let r2 = b.splat(std::f32::consts::SQRT_2);
        let one = b.splat(1.0);
        let half = b.splat(0.5);
        let d = b.op("Div", &[a, r2]);
        let e = b.op("Erf", &[d]);
        let e1 = b.op("Add", &[e, one]);
        let gm = b.op("Mul", &[a, e1]);
        let gelu = b.op("Mul", &[gm, half]);
        // Relu6 after a Gemm: a Clip epilogue.
        let w3 = b.rand_const(vec![3, 4], -1.0, 1.0);
        let c3 = b.rand_const(vec![3], -1.0, 1.0);
        let p = b.op_attrs("Gemm", vec![a_int("transB", 1)], &[gelu, w3, c3]);
        let lo = b.splat(0.0);
        let hi = b.splat(6.0);
        let relu6 = b.op("Clip", &[p, lo, hi]);
        // A ResNet block: Relu(BN(Conv(x)) + x), a residual and an
        // activation epilogue.
        let x = b.input(vec![1, 3, 4, 4]);
        let w = b.rand_const(vec![3, 3, 3, 3], -1.0, 1.0);
        let c = b.op_attrs("Conv", vec![a_ints("pads", &[1, 1, 1, 1])], &[x, w]);
        let y = bn(b, c, 3);
        let s = b.op("Add", &[y, x]);
        let r = b.op("Relu", &[s]);
        // A MobileNetV2 block on it: depthwise Conv + BN + Relu6, then a
        // 1x1 projection added to the block's input.
        let wd = b.rand_const(vec![3, 1, 3, 3], -1.0, 1.0);
        let dw = b.op_attrs(
            "Conv",
            vec![a_ints("pads", &[1, 1, 1, 1]), a_int("group", 3)],
            &[r, wd],
        );
        let dw = bn(b, dw, 3);
        let (lo, hi) = (b.splat(0.0), b.splat(6.0));
        let dw = b.op("Clip", &[dw, lo, hi]);
        let wp = b.rand_const(vec![3, 3, 1, 1], -1.0, 1.0);
        let pr = b.op("Conv", &[dw, wp]);
        let pr = bn(b, pr, 3);
        vec![relu6, b.op("Add", &[r, pr])]
    });
}

fn run_example(name: &str, level: u8) -> (Vec<Tensor>, Option<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut opts = smelt_frontend::onnx::ImportOptions::default();
    opts.dims.insert("batch".into(), 1);
    opts.dims.insert("seq".into(), 16);
    let g = smelt_frontend::onnx::load(&root.join("examples").join(name).join("model.onnx"), &opts)
        .unwrap();
    let (g, reports) = Pipeline::for_level(level, TARGETS[0])
        .run(&g, |_, _, _| {})
        .unwrap();
    let mut rng = Rng(3);
    let inputs = random_inputs(&g, &mut rng);
    let report = reports.first().map(|r| r.1.to_string());
    (Interpreter::new(&g).run(inputs).unwrap(), report)
}

#[test]
fn examples_same_outputs_at_opt_level_0_and_3() {
    for name in ["mlp", "cnn", "transformer"] {
        let (a, _) = run_example(name, 0);
        let (b, report) = run_example(name, 3);
        assert!(report.is_some(), "{name}: the optimizer did not run");
        for (i, (x, y)) in b.iter().zip(&a).enumerate() {
            close(x, y, &format!("{name} output {i}"));
        }
    }
}

/// Compiles an example natively (Cranelift, x86_64) at an opt level, runs it
/// on the example's inputs and returns its outputs by name.
fn native_outputs(example: &str, pins: &[&str], level: &str) -> BTreeMap<String, Tensor> {
    use smelt_frontend::Limits;
    use smelt_frontend::npy::read_npy;
    let dir = targets::root().join("examples").join(example);
    let work = targets::scratch("opt", &format!("{example}-O{level}"));
    let exe = work.join("model");
    let model = dir.join("model.onnx");
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "--opt-level",
        level,
        "-o",
        exe.to_str().unwrap(),
    ];
    args.extend_from_slice(pins);
    let out = targets::smelt(&args);
    assert!(
        out.status.success(),
        "compile -O{level} {example}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out_dir = work.join("out");
    let out = targets::run_model(&exe, None, &dir.join("input.npz"), &out_dir);
    assert!(
        out.status.success(),
        "{example} -O{level}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut res = BTreeMap::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        res.insert(name, read_npy(&p, &Limits::default()).unwrap());
    }
    let _ = std::fs::remove_dir_all(&work);
    res
}

#[test]
fn examples_native_same_outputs_at_opt_level_0_and_3() {
    for (example, pins) in [
        ("mlp", &["--dim", "batch=2"][..]),
        ("cnn", &[][..]),
        ("transformer", &["--dim", "batch=1", "--dim", "seq=16"][..]),
    ] {
        let a = native_outputs(example, pins, "0");
        let b = native_outputs(example, pins, "3");
        assert!(!a.is_empty());
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, t) in &a {
            close(&b[name], t, &format!("{example}/{name} native -O3 vs -O0"));
        }
    }
}
