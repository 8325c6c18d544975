//! Random valid graphs from a stream of choices: the generator behind the
//! differential compiler fuzzer (`fuzz/fuzz_targets/compile_diff.rs`), the
//! optimizer fuzzer (`fuzz/fuzz_targets/optimize_eq.rs`) and their seeded
//! smoke test (`tests/compile_fuzz.rs`).
//!
//! Every decision reads one byte of the stream; an exhausted stream answers
//! 0, which always means "the smallest choice" (fewer nodes, the first op,
//! the smallest dim). So a shorter stream gives a smaller graph, and
//! shrinking a failing stream (deleting and zeroing bytes) shrinks the graph
//! it stands for: libFuzzer's `-minimize_crash` and [`shrink`] both work
//! on the bytes alone.
//!
//! Nodes come from a table of op templates (element-wise, shape, reduction,
//! normalization, matrix and convolution ops) with attribute generators; an
//! op is parsed by the op table ([`Op::parse`]) and typed by
//! [`Graph::add_node`], and a node the op table refuses is skipped, so only
//! well-typed graphs come out. Input values lie in [-2, 2] with a few exact
//! zeros and halves, where rounding and sign cases live.

#![allow(dead_code)]

use smelt_ir::attrs::{AttrValue, Attrs};
use smelt_ir::ops::{Op, ParseCtx};
use smelt_ir::{DType, Graph, Tensor, TensorType, ValueId};

/// Reads choices from bytes; 0 once they run out.
pub struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Choices<'a> {
    /// Choices read from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Choices<'a> {
        Choices { bytes, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A number in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            self.byte() as usize % n
        } else {
            (self.byte() as usize | (self.byte() as usize) << 8) % n
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// One of `xs` (not empty).
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// True with probability about `k` in 256 (never once exhausted).
    pub fn chance(&mut self, k: u8) -> bool {
        let b = self.byte();
        b != 0 && b <= k
    }
}

/// A generated graph and its inputs (in the order of [`Graph::inputs`]).
pub struct Case {
    /// The graph: f32 inputs, at least one output.
    pub graph: Graph,
    /// One tensor per graph input.
    pub inputs: Vec<Tensor>,
}

/// The ops a graph may hold. Each is an op type, the opset it is parsed
/// at and how its operands and attributes are made.
#[derive(Clone, Copy, Debug)]
enum Template {
    /// `op(x)`, no attributes.
    Unary(&'static str),
    /// `op(x)` with one float attribute in the given range.
    UnaryAlpha(&'static str, &'static str, f32, f32),
    /// `op(x, y)` with `y` broadcastable to `x`.
    Binary(&'static str),
    /// `op(x, y)` with a bool result.
    Compare(&'static str),
    /// `Where(x > 0, x, y)`.
    Where,
    /// `Clip(x, lo, hi)` with constant bounds.
    Clip,
    /// `Cast(x)` to an integer type and back.
    CastRound,
    /// `Softmax`/`LogSoftmax` over an axis.
    Softmax(&'static str),
    /// `ReduceX(x, axes)`.
    Reduce(&'static str),
    /// `Transpose(x)` with a random permutation.
    Transpose,
    /// `Reshape(x)` to a random factorization of its size.
    Reshape,
    /// `Concat(x, x')` along an axis.
    Concat,
    /// `Slice(x)` with constant starts/ends/steps.
    Slice,
    /// `MatMul(x, W)` with a constant `W`.
    MatMul,
    /// `Gemm(x, W, b)` on a matrix.
    Gemm,
    /// `Conv(x, W, b)` on an NCHW tensor.
    Conv,
    /// `MaxPool`/`AveragePool` on an NCHW tensor.
    Pool(&'static str),
    /// `GlobalAveragePool`/`GlobalMaxPool` on an NCHW tensor.
    GlobalPool(&'static str),
    /// `BatchNormalization` (inference) on an NCHW tensor.
    BatchNorm,
    /// `LayerNormalization` over the last axis.
    LayerNorm,
    /// `Gather(x, indices)` with constant indices, some negative.
    Gather,
    /// `Pad(x, pads)` in one of the three modes.
    Pad,
    /// `Tile(x, repeats)`.
    Tile,
    /// `Expand(x, shape)` with a leading dim added.
    Expand,
    /// `Unsqueeze(x, axes)`.
    Unsqueeze,
    /// `Pow(x, e)` with a constant exponent.
    Pow,
    /// `ArgMax`/`ArgMin` (i64), cast to f32.
    Arg(&'static str),
    /// `CumSum(x, axis)`.
    CumSum,
}

impl Template {
    /// A step function of its operand (rounding, compares, casts to
    /// integers, arg-max): an operand one rounding error away from a step
    /// gives a different answer, so it only reads exact values.
    fn steps(self) -> bool {
        matches!(
            self,
            Template::Unary("Floor" | "Ceil" | "Round" | "Sign")
                | Template::Compare(_)
                | Template::Where
                | Template::CastRound
                | Template::Arg(_)
        )
    }

    /// Its result is exact (the same bits on every backend, whatever the
    /// order of evaluation) when its one run-time operand is: moves,
    /// selections, sign changes and steps.
    fn keeps_exact(self) -> bool {
        self.steps()
            || matches!(
                self,
                Template::Unary("Relu" | "Neg" | "Abs" | "Identity")
                    | Template::Transpose
                    | Template::Reshape
                    | Template::Slice
                    | Template::Gather
                    | Template::Pad
                    | Template::Tile
                    | Template::Expand
                    | Template::Unsqueeze
                    | Template::Pool("MaxPool")
                    | Template::GlobalPool("GlobalMaxPool")
                    | Template::Reduce("ReduceMax" | "ReduceMin")
            )
    }
}

const TEMPLATES: &[Template] = &[
    Template::Unary("Relu"),
    Template::Unary("Sigmoid"),
    Template::Unary("Tanh"),
    Template::Unary("Exp"),
    Template::Unary("Neg"),
    Template::Unary("Abs"),
    Template::Unary("Sqrt"),
    Template::Unary("Erf"),
    Template::Unary("Softplus"),
    Template::Unary("Softsign"),
    Template::Unary("HardSwish"),
    Template::Unary("Floor"),
    Template::Unary("Ceil"),
    Template::Unary("Round"),
    Template::Unary("Sin"),
    Template::Unary("Cos"),
    Template::Unary("Log"),
    Template::Unary("Identity"),
    Template::Unary("Sign"),
    Template::UnaryAlpha("LeakyRelu", "alpha", 0.01, 0.3),
    Template::UnaryAlpha("Elu", "alpha", 0.5, 1.5),
    Template::UnaryAlpha("HardSigmoid", "alpha", 0.1, 0.3),
    Template::UnaryAlpha("Selu", "gamma", 1.0, 1.1),
    Template::UnaryAlpha("Gelu", "", 0.0, 0.0),
    Template::Binary("Add"),
    Template::Binary("Sub"),
    Template::Binary("Mul"),
    Template::Binary("Div"),
    Template::Binary("Max"),
    Template::Binary("Min"),
    Template::Binary("PRelu"),
    Template::Compare("Greater"),
    Template::Compare("Less"),
    Template::Compare("Equal"),
    Template::Where,
    Template::Clip,
    Template::CastRound,
    Template::Softmax("Softmax"),
    Template::Softmax("LogSoftmax"),
    Template::Reduce("ReduceSum"),
    Template::Reduce("ReduceMean"),
    Template::Reduce("ReduceMax"),
    Template::Reduce("ReduceMin"),
    Template::Reduce("ReduceL2"),
    Template::Transpose,
    Template::Reshape,
    Template::Concat,
    Template::Slice,
    Template::MatMul,
    Template::Gemm,
    Template::Conv,
    Template::Pool("MaxPool"),
    Template::Pool("AveragePool"),
    Template::GlobalPool("GlobalAveragePool"),
    Template::GlobalPool("GlobalMaxPool"),
    Template::BatchNorm,
    Template::LayerNorm,
    Template::Gather,
    Template::Pad,
    Template::Tile,
    Template::Expand,
    Template::Unsqueeze,
    Template::Pow,
    Template::Arg("ArgMax"),
    Template::Arg("ArgMin"),
    Template::CumSum,
];

/// Most nodes a graph gets.
pub const MAX_NODES: usize = 16;

/// Values in [-2, 2] with exact zeros and halves now and then.
fn values(c: &mut Choices<'_>, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match c.below(16) {
            0 => 0.0,
            1 => c.pick(&[0.5, -0.5, 1.5, -2.5, 1.0]),
            _ => (c.below(4001) as f32 - 2000.0) / 1000.0,
        })
        .collect()
}

fn tensor(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v).expect("the length matches the shape")
}

fn ints(v: Vec<i64>) -> Tensor {
    Tensor::from_vec(vec![v.len()], v).expect("a vector")
}

/// Builds graphs from choices.
struct Builder<'c, 'a> {
    c: &'c mut Choices<'a>,
    g: Graph,
    /// The f32 values nodes may read.
    pool: Vec<ValueId>,
    /// Those of them every backend computes to the same bits (see
    /// [`Template::keeps_exact`]): graph inputs and what exact ops make of
    /// them. Only these feed step functions, so a rounding difference
    /// upstream cannot flip a step and pass for a miscompile.
    exact: Vec<ValueId>,
    consts: usize,
}

impl Builder<'_, '_> {
    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.value(v).ty.shape.to_vec()
    }

    fn constant(&mut self, t: &Tensor) -> ValueId {
        self.consts += 1;
        let name = format!("c{}", self.consts);
        self.g.add_const(name, t).expect("a fresh constant name")
    }

    fn f32_const(&mut self, shape: &[usize]) -> ValueId {
        let n = shape.iter().product();
        let v = values(self.c, n);
        self.constant(&tensor(shape, v))
    }

    /// Adds the node `op_type` at `opset`; `None` when the op table refuses
    /// it (an attribute or a type it does not take).
    fn node(
        &mut self,
        op_type: &str,
        opset: i64,
        attrs: Vec<(&str, AttrValue)>,
        inputs: Vec<Option<ValueId>>,
    ) -> Option<ValueId> {
        let attrs = Attrs::new(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let ctx = ParseCtx {
            op_type,
            domain: "",
            opset,
            attrs: &attrs,
            num_inputs: inputs.len(),
            num_outputs: 1,
        };
        let op: Op = Op::parse(&ctx)?.ok()?;
        let name = self.g.fresh_name(&op_type.to_lowercase());
        let out = self.g.add_node(name.clone(), op, inputs, vec![name]).ok()?;
        Some(out[0])
    }

    /// A second operand for `x`: another value of the same shape, or a
    /// constant whose shape broadcasts to it (a suffix, with 1s).
    fn partner(&mut self, x: ValueId) -> ValueId {
        let shape = self.shape(x);
        let same: Vec<ValueId> = self
            .pool
            .iter()
            .copied()
            .filter(|&v| v != x && self.shape(v) == shape)
            .collect();
        if !same.is_empty() && self.c.chance(128) {
            return self.c.pick(&same);
        }
        let keep = self.c.range(0, shape.len());
        let mut s: Vec<usize> = shape[shape.len() - keep..].to_vec();
        for d in s.iter_mut() {
            if self.c.chance(60) {
                *d = 1;
            }
        }
        self.f32_const(&s)
    }

    fn axis(&mut self, rank: usize) -> i64 {
        let a = self.c.below(rank.max(1)) as i64;
        if self.c.chance(80) {
            a - rank as i64
        } else {
            a
        }
    }

    fn step(&mut self) -> Option<ValueId> {
        let t = self.c.pick(TEMPLATES);
        // Mostly the newest value, so that graphs grow deep rather than
        // wide (most of a wide graph is pruned as dead).
        let from = if t.steps() { &self.exact } else { &self.pool };
        let x = match from.last() {
            None => return None,
            Some(&newest) if !self.c.chance(80) => newest,
            Some(_) => self.c.pick(&from.clone()),
        };
        let y = self.make(t, x)?;
        if t.keeps_exact() && self.exact.contains(&x) {
            self.exact.push(y);
        }
        Some(y)
    }

    /// Applies template `t` to `x`.
    fn make(&mut self, t: Template, x: ValueId) -> Option<ValueId> {
        let shape = self.shape(x);
        let rank = shape.len();
        let f = |v: f32| AttrValue::Float(v);
        let i = AttrValue::Int;
        match t {
            Template::Unary(op) => self.node(op, 17, vec![], vec![Some(x)]),
            Template::UnaryAlpha("Gelu", ..) => {
                let approx = self.c.pick(&["none", "tanh"]);
                let a = vec![("approximate", AttrValue::String(approx.into()))];
                self.node("Gelu", 20, a, vec![Some(x)])
            }
            Template::UnaryAlpha(op, name, lo, hi) => {
                let v = lo + (hi - lo) * self.c.below(101) as f32 / 100.0;
                self.node(op, 17, vec![(name, f(v))], vec![Some(x)])
            }
            Template::Binary("Div") => {
                // By constants away from zero: dividing by a value near zero
                // turns a rounding difference upstream into a large one.
                let y = self.partner(x);
                let s = self.shape(y);
                let n = s.iter().product();
                let v = values(self.c, n)
                    .iter()
                    .map(|v| v.signum() * (0.5 + v.abs() * 0.75))
                    .collect();
                let d = self.constant(&tensor(&s, v));
                self.node("Div", 17, vec![], vec![Some(x), Some(d)])
            }
            Template::Binary(op) => {
                let y = self.partner(x);
                self.node(op, 17, vec![], vec![Some(x), Some(y)])
            }
            Template::Compare(op) => {
                let y = self.partner(x);
                let b = self.node(op, 17, vec![], vec![Some(x), Some(y)])?;
                let to = vec![("to", i(DType::F32.onnx_code() as i64))];
                self.node("Cast", 17, to, vec![Some(b)])
            }
            Template::Where => {
                let zero = self.constant(&tensor(&[1], vec![0.0]));
                let cond = self.node("Greater", 17, vec![], vec![Some(x), Some(zero)])?;
                let y = self.partner(x);
                self.node("Where", 17, vec![], vec![Some(cond), Some(x), Some(y)])
            }
            Template::Clip => {
                let lo = values(self.c, 1)[0].min(0.0);
                let hi = lo + self.c.range(0, 4) as f32 / 2.0;
                let lo = self.constant(&Tensor::scalar(lo));
                let hi = self.constant(&Tensor::scalar(hi));
                self.node("Clip", 17, vec![], vec![Some(x), Some(lo), Some(hi)])
            }
            Template::CastRound => {
                let to = self.c.pick(&[DType::I32, DType::I64, DType::I8, DType::U8]);
                let mid = self.node(
                    "Cast",
                    17,
                    vec![("to", i(to.onnx_code() as i64))],
                    vec![Some(x)],
                )?;
                let back = vec![("to", i(DType::F32.onnx_code() as i64))];
                self.node("Cast", 17, back, vec![Some(mid)])
            }
            Template::Softmax(op) => {
                let a = self.axis(rank);
                self.node(op, 17, vec![("axis", i(a))], vec![Some(x)])
            }
            Template::Reduce(op) => {
                let mut axes: Vec<i64> = (0..rank as i64).filter(|_| self.c.chance(100)).collect();
                if axes.is_empty() && rank > 0 {
                    axes.push(self.axis(rank));
                }
                let keep = i(self.c.below(2) as i64);
                let axes = self.constant(&ints(axes));
                self.node(op, 18, vec![("keepdims", keep)], vec![Some(x), Some(axes)])
            }
            Template::Transpose => {
                let mut perm: Vec<i64> = (0..rank as i64).collect();
                for k in (1..rank).rev() {
                    perm.swap(k, self.c.below(k + 1));
                }
                self.node(
                    "Transpose",
                    17,
                    vec![("perm", AttrValue::Ints(perm))],
                    vec![Some(x)],
                )
            }
            Template::Reshape => {
                let n: usize = shape.iter().product();
                let mut dims = Vec::new();
                let mut rest = n;
                while rest > 1 && dims.len() < 3 {
                    let divs: Vec<usize> = (2..=rest).filter(|d| rest.is_multiple_of(*d)).collect();
                    let d = self.c.pick(&divs);
                    dims.push(d as i64);
                    rest /= d;
                }
                dims.push(rest as i64);
                if self.c.chance(80) {
                    let k = self.c.below(dims.len());
                    dims[k] = -1;
                }
                let s = self.constant(&ints(dims));
                self.node("Reshape", 17, vec![], vec![Some(x), Some(s)])
            }
            Template::Concat => {
                let y = self.partner(x);
                if self.shape(y) != shape {
                    return None;
                }
                let a = self.axis(rank);
                self.node("Concat", 17, vec![("axis", i(a))], vec![Some(x), Some(y)])
            }
            Template::Slice => {
                let a = self.c.below(rank.max(1));
                let d = *shape.get(a)? as i64;
                let start = self.c.range(0, d as usize - 1) as i64;
                let step = self.c.pick(&[1i64, 1, 2, -1]);
                let (s, e) = if step > 0 {
                    (start, d)
                } else {
                    (d - 1, start - 1 - d)
                };
                let inputs = [
                    ints(vec![s]),
                    ints(vec![e]),
                    ints(vec![a as i64]),
                    ints(vec![step]),
                ];
                let ids: Vec<Option<ValueId>> = std::iter::once(Some(x))
                    .chain(inputs.iter().map(|t| Some(self.constant(t))))
                    .collect();
                self.node("Slice", 17, vec![], ids)
            }
            Template::MatMul => {
                let k = *shape.last()?;
                let n = self.c.range(1, 8);
                let w = self.f32_const(&[k, n]);
                self.node("MatMul", 17, vec![], vec![Some(x), Some(w)])
            }
            Template::Gemm => {
                if rank != 2 {
                    return None;
                }
                let trans_b = self.c.below(2);
                let n = self.c.range(1, 8);
                let w = if trans_b == 1 {
                    [n, shape[1]]
                } else {
                    [shape[1], n]
                };
                let w = self.f32_const(&w);
                let b = self.f32_const(&[n]);
                let alpha = f(self.c.pick(&[1.0, 0.5, 2.0]));
                let a = vec![("transB", i(trans_b as i64)), ("alpha", alpha)];
                self.node("Gemm", 17, a, vec![Some(x), Some(w), Some(b)])
            }
            Template::Conv => {
                if rank != 4 {
                    return None;
                }
                let c_in = shape[1];
                let group = if self.c.chance(60) { c_in } else { 1 };
                let m = if group > 1 {
                    c_in * self.c.range(1, 2)
                } else {
                    self.c.range(1, 6)
                };
                let kh = self.c.range(1, 3.min(shape[2]));
                let kw = self.c.range(1, 3.min(shape[3]));
                let w = self.f32_const(&[m, c_in / group, kh, kw]);
                let b = self.f32_const(&[m]);
                let s = self.c.range(1, 2) as i64;
                let p = self.c.below(2) as i64;
                let a = vec![
                    ("group", i(group as i64)),
                    ("strides", AttrValue::Ints(vec![s, s])),
                    ("pads", AttrValue::Ints(vec![p, p, p, p])),
                ];
                let bias = self.c.below(2) == 1;
                self.node("Conv", 17, a, vec![Some(x), Some(w), bias.then_some(b)])
            }
            Template::Pool(op) => {
                if rank != 4 {
                    return None;
                }
                let kh = self.c.range(1, 3.min(shape[2])) as i64;
                let kw = self.c.range(1, 3.min(shape[3])) as i64;
                let s = self.c.range(1, 2) as i64;
                let a = vec![
                    ("kernel_shape", AttrValue::Ints(vec![kh, kw])),
                    ("strides", AttrValue::Ints(vec![s, s])),
                ];
                self.node(op, 17, a, vec![Some(x)])
            }
            Template::GlobalPool(op) => {
                if rank != 4 {
                    return None;
                }
                self.node(op, 17, vec![], vec![Some(x)])
            }
            Template::BatchNorm => {
                if rank != 4 {
                    return None;
                }
                let c = shape[1];
                let scale = self.f32_const(&[c]);
                let bias = self.f32_const(&[c]);
                let mean = self.f32_const(&[c]);
                let var = values(self.c, c).iter().map(|v| v.abs() + 0.5).collect();
                let var = self.constant(&tensor(&[c], var));
                let ins = [x, scale, bias, mean, var].map(Some).to_vec();
                self.node("BatchNormalization", 15, vec![], ins)
            }
            Template::LayerNorm => {
                let d = *shape.last()?;
                let scale = self.f32_const(&[d]);
                let bias = self.f32_const(&[d]);
                self.node(
                    "LayerNormalization",
                    17,
                    vec![],
                    vec![Some(x), Some(scale), Some(bias)],
                )
            }
            Template::Gather => {
                let a = self.c.below(rank.max(1));
                let d = *shape.get(a)? as i64;
                let n = self.c.range(1, 4);
                let idx = (0..n)
                    .map(|_| self.c.below(2 * d as usize) as i64 - d)
                    .collect::<Vec<i64>>();
                let idx = self.constant(&ints(idx));
                self.node(
                    "Gather",
                    17,
                    vec![("axis", i(a as i64))],
                    vec![Some(x), Some(idx)],
                )
            }
            Template::Pad => {
                let pads = (0..2 * rank).map(|_| self.c.below(3) as i64).collect();
                let pads = self.constant(&ints(pads));
                let mode = self.c.pick(&["constant", "reflect", "edge"]);
                let v = values(self.c, 1)[0];
                let value = self.constant(&Tensor::scalar(v));
                let a = vec![("mode", AttrValue::String(mode.into()))];
                self.node("Pad", 18, a, vec![Some(x), Some(pads), Some(value)])
            }
            Template::Tile => {
                let reps = (0..rank).map(|_| self.c.range(1, 2) as i64).collect();
                let reps = self.constant(&ints(reps));
                self.node("Tile", 17, vec![], vec![Some(x), Some(reps)])
            }
            Template::Expand => {
                let mut to: Vec<i64> = vec![self.c.range(1, 3) as i64];
                to.extend(shape.iter().map(|&d| d as i64));
                let to = self.constant(&ints(to));
                self.node("Expand", 17, vec![], vec![Some(x), Some(to)])
            }
            Template::Unsqueeze => {
                let a = self.c.below(rank + 1) as i64;
                let axes = self.constant(&ints(vec![a]));
                self.node("Unsqueeze", 17, vec![], vec![Some(x), Some(axes)])
            }
            Template::Pow => {
                let e = self.c.pick(&[2.0f32, 3.0, 0.5, 1.0, 0.0]);
                let e = self.constant(&Tensor::scalar(e));
                self.node("Pow", 17, vec![], vec![Some(x), Some(e)])
            }
            Template::Arg(op) => {
                let a = self.axis(rank);
                let keep = i(self.c.below(2) as i64);
                let last = i(self.c.below(2) as i64);
                let at = vec![
                    ("axis", i(a)),
                    ("keepdims", keep),
                    ("select_last_index", last),
                ];
                let idx = self.node(op, 17, at, vec![Some(x)])?;
                let to = vec![("to", i(DType::F32.onnx_code() as i64))];
                self.node("Cast", 17, to, vec![Some(idx)])
            }
            Template::CumSum => {
                let axis = self.axis(rank);
                let a = self.constant(&Tensor::scalar(axis));
                let excl = i(self.c.below(2) as i64);
                let rev = i(self.c.below(2) as i64);
                let at = vec![("exclusive", excl), ("reverse", rev)];
                self.node("CumSum", 17, at, vec![Some(x), Some(a)])
            }
        }
    }
}

/// The graph and inputs `bytes` stand for.
pub fn generate(bytes: &[u8]) -> Case {
    let mut c = Choices::new(bytes);
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    let mut pool = Vec::new();
    for k in 0..c.range(1, 2) {
        let rank = c.range(1, 4);
        let shape: Vec<usize> = (0..rank)
            .map(|d| {
                if rank == 4 && d == 0 {
                    1
                } else {
                    c.range(1, 6)
                }
            })
            .collect();
        let ty = TensorType::new(DType::F32, shape.clone());
        let id = g
            .add_input(format!("x{k}"), ty)
            .expect("a fresh input name");
        pool.push(id);
        let n = shape.iter().product();
        inputs.push(tensor(&shape, values(&mut c, n)));
    }
    let mut b = Builder {
        c: &mut c,
        g,
        exact: pool.clone(),
        pool,
        consts: 0,
    };
    let nodes = b.c.range(1, MAX_NODES);
    let mut made = Vec::new();
    for _ in 0..nodes * 2 {
        if made.len() == nodes {
            break;
        }
        if let Some(v) = b.step() {
            b.pool.push(v);
            made.push(v);
        }
    }
    if made.is_empty() {
        let x = b.pool[0];
        made.push(
            b.node("Identity", 17, vec![], vec![Some(x)])
                .expect("Identity of an f32"),
        );
    }
    // The last value made is an output; earlier ones are now and then.
    let mut outputs: Vec<ValueId> = made
        .iter()
        .rev()
        .skip(1)
        .copied()
        .filter(|_| b.c.chance(40))
        .collect();
    outputs.insert(0, made[made.len() - 1]);
    let mut g = b.g;
    g.outputs = outputs;
    g.prune();
    Case { graph: g, inputs }
}

/// Shrinks `bytes` while `fails` holds: deletes runs of bytes (long runs
/// first), then lowers single bytes to 0, until no step keeps it failing.
/// `fails(bytes)` must hold on entry.
pub fn shrink(bytes: &[u8], mut fails: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let mut best = bytes.to_vec();
    let mut changed = true;
    while changed {
        changed = false;
        let mut run = best.len().next_power_of_two();
        while run >= 1 {
            let mut at = 0;
            while at < best.len() {
                let mut cand = best.clone();
                cand.drain(at..(at + run).min(best.len()));
                if fails(&cand) {
                    best = cand;
                    changed = true;
                } else {
                    at += run;
                }
            }
            run /= 2;
        }
        for at in 0..best.len() {
            if best[at] != 0 {
                let mut cand = best.clone();
                cand[at] = 0;
                if fails(&cand) {
                    best = cand;
                    changed = true;
                }
            }
        }
    }
    best
}
