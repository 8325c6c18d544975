//! Compile-time weight quantization (`smelt compile --quantize SCHEME`).
//!
//! [`quantize_weights`] stores the weight of every `MatMul` and `Gemm`
//! whose weight is a dense f32 2-D constant in a smaller encoding and
//! rewrites the node to the weight-only kernel
//! `EncodedMatMul(x, w'[, bias])` (`ir/src/ops/weights.rs`). The stored
//! weight `w'` is `[N, K]`: transposed when the node reads it as `[K, N]`,
//! so the blocks run along `K`, the reduction axis, as in GGUF. A Gemm's
//! `alpha` is folded into the weight before quantizing and `beta` into a
//! constant bias.
//!
//! Schemes ([`Scheme`]): `f16`, `bf16` (dense half-width), `w8` (affine
//! int8, one symmetric scale per output channel), and the GGUF block
//! formats `q8_0`, `q4_0`, `q4_1`, `q5_0`, `q5_1`, `q2_k` … `q6_k`, `tq1_0`,
//! `tq2_0`. A block format needs `K` to be a multiple of its block length;
//! otherwise the weight takes llama.cpp's fallback
//! (`llama_tensor_get_type` in `llama-quant.cpp`): `q4_k → q5_0`,
//! `q5_k → q5_1`, `q6_k → q8_0`, `q2_k`/`q3_k`/`tq1_0`/`tq2_0 → q4_0`
//! (llama.cpp takes IQ4_NL for `q2_k`/`q3_k`, which smelt does not have),
//! and when `K` is not even a multiple of the fallback's 32, `f16`. The
//! report says which weights fell back and why.
//!
//! Nodes a weight cannot be rewritten for (an f64 product, `transA`, a bias
//! that is not `[N]`-shaped with a non-unit `beta` or a non-constant one
//! that broadcasts over rows) keep their float weight and are listed in the
//! report with the reason.
//!
//! `int8` is static quantization ([`int8`]): weights and activations both
//! int8, calibrated on samples ([`calibrate`], [`scale`]); it rewrites
//! `MatMul`, `Gemm` and `Conv` to `QLinearMatMul`/`QLinearConv`. Per-layer
//! overrides ([`Layer`], `--quantize-layer NODE=SCHEME`) give single nodes
//! another scheme or keep them float, so one model can mix int8, block
//! formats and f32. With calibration data, [`quantize`] also measures the
//! quantized graph against the float one ([`accuracy`]). The module's
//! files: this one (options, report, the weight-only rewrite and the
//! driver [`quantize`]), [`calibrate`] (data and observers), [`scale`]
//! (range and scale choice), [`int8`] (the int8 rewrite), [`accuracy`]
//! (the comparison) and [`json`] (the report as JSON).

use std::collections::HashMap;
use std::fmt;

use smelt_ir::encoding::quantize as encode;
use smelt_ir::ops::linalg::{GemmAttrs, Linalg};
use smelt_ir::ops::weights::Weights;
use smelt_ir::{
    Affine, AffineStorage, BlockFormat, DType, Encoding, Granularity, Graph, Op, Tensor,
    TensorType, ValueDef, ValueId,
};

pub mod accuracy;
pub mod calibrate;
pub mod int8;
pub mod json;
pub mod scale;

pub use accuracy::{Accuracy, OutputAccuracy};
pub use calibrate::CalibrationSet;
pub use int8::Int8Node;
pub use scale::CalibMethod;

/// How weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Dense IEEE half precision.
    F16,
    /// Dense bfloat16.
    BF16,
    /// Affine int8, one symmetric scale per output channel.
    W8,
    /// A GGUF block format.
    Block(BlockFormat),
    /// Static int8: weights per output channel, activations per tensor,
    /// calibrated (`--calibrate`); see [`int8`].
    Int8,
}

impl Scheme {
    /// Every scheme's name, as `--quantize` takes it.
    pub const NAMES: [&'static str; 16] = [
        "int8", "f16", "bf16", "w8", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k",
        "q4_k", "q5_k", "q6_k", "tq1_0", "tq2_0",
    ];

    /// Parses a scheme name; an unknown one is an error listing the valid
    /// names.
    pub fn parse(name: &str) -> Result<Scheme, QuantizeError> {
        let s = match name {
            "f16" => Scheme::F16,
            "bf16" => Scheme::BF16,
            "w8" => Scheme::W8,
            "int8" => Scheme::Int8,
            other => match BlockFormat::from_name(other) {
                Some(f) => Scheme::Block(f),
                None => return Err(QuantizeError::UnknownScheme(name.to_string())),
            },
        };
        Ok(s)
    }

    /// The name `--quantize` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::F16 => "f16",
            Scheme::BF16 => "bf16",
            Scheme::W8 => "w8",
            Scheme::Int8 => "int8",
            Scheme::Block(f) => f.name(),
        }
    }

    /// The stored type of a weight `[n, k]` (rows of `k`, the reduction
    /// axis) and, when it is not this scheme's own format, why.
    pub fn storage(self, n: usize, k: usize) -> smelt_ir::Result<(TensorType, Option<String>)> {
        let shape = vec![n, k];
        let half = |d| Ok(TensorType::new(d, shape.clone()));
        let block =
            |f: BlockFormat| TensorType::encoded(DType::F32, shape.clone(), Encoding::Block(f));
        Ok(match self {
            Scheme::F16 => (half(DType::F16)?, None),
            Scheme::BF16 => (half(DType::BF16)?, None),
            // int8 weights are stored as w8's (the int8 rewrite stores its
            // own; this is the storage of a weight-only fallback).
            Scheme::W8 | Scheme::Int8 => {
                let a = Affine {
                    storage: AffineStorage::I8,
                    granularity: Granularity::PerAxis { axis: 0 },
                    zero_point: false,
                };
                let ty = TensorType::encoded(DType::F32, shape.clone(), Encoding::Affine(a))?;
                (ty, None)
            }
            Scheme::Block(f) if k.is_multiple_of(f.block_len()) => (block(f)?, None),
            Scheme::Block(f) => {
                let fb = fallback(f);
                if fb != f && k.is_multiple_of(fb.block_len()) {
                    let why = format!("K = {k} is not a multiple of {}", f.block_len());
                    (block(fb)?, Some(why))
                } else {
                    let why = format!("K = {k} is not a multiple of {}", fb.block_len());
                    (half(DType::F16)?, Some(why))
                }
            }
        })
    }
}

/// llama.cpp's fallback for a row length its format cannot hold
/// (`llama_tensor_get_type`): the K-quants and ternary formats fall back to
/// a 32-element format; the 32-element ones have none (f16 is next).
fn fallback(f: BlockFormat) -> BlockFormat {
    match f {
        BlockFormat::Q4K => BlockFormat::Q5_0,
        BlockFormat::Q5K => BlockFormat::Q5_1,
        BlockFormat::Q6K => BlockFormat::Q8_0,
        BlockFormat::Q2K | BlockFormat::Q3K | BlockFormat::TQ1_0 | BlockFormat::TQ2_0 => {
            BlockFormat::Q4_0
        }
        BlockFormat::Q8_0
        | BlockFormat::Q4_0
        | BlockFormat::Q4_1
        | BlockFormat::Q5_0
        | BlockFormat::Q5_1 => f,
    }
}

/// What one node is quantized to (`--quantize-layer NODE=SCHEME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Kept f32.
    Float,
    /// A scheme.
    Scheme(Scheme),
}

impl Layer {
    /// Parses `float` or a scheme name.
    pub fn parse(name: &str) -> Result<Layer, QuantizeError> {
        match name {
            "float" | "f32" => Ok(Layer::Float),
            other => Scheme::parse(other).map(Layer::Scheme),
        }
    }
}

/// What `--quantize` is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeOptions {
    /// The scheme of every node no override names.
    pub scheme: Scheme,
    /// Nodes whose weights stay f32 (`--quantize-skip`).
    pub skip: Vec<String>,
    /// Per-node overrides (`--quantize-layer`), the last one for a node
    /// winning; `--quantize-skip` wins over them.
    pub layers: Vec<(String, Layer)>,
    /// Calibration samples (`--calibrate`): needed by `int8`; with them
    /// the report also measures the accuracy.
    pub calibration: Option<CalibrationSet>,
    /// How activation ranges are chosen (`--calib`).
    pub calib: CalibMethod,
    /// The last samples held back from calibration and reported apart
    /// (`--calibrate-holdout`).
    pub holdout: usize,
}

impl QuantizeOptions {
    /// Quantize every weight with `scheme`.
    pub fn new(scheme: Scheme) -> QuantizeOptions {
        QuantizeOptions {
            scheme,
            skip: Vec::new(),
            layers: Vec::new(),
            calibration: None,
            calib: CalibMethod::MinMax,
            holdout: 0,
        }
    }

    /// Keep the weights of these nodes f32.
    pub fn skip(mut self, nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.skip.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Quantize node `node` as `layer` says.
    pub fn layer(mut self, node: impl Into<String>, layer: Layer) -> Self {
        self.layers.push((node.into(), layer));
        self
    }

    /// Calibrate on `set`.
    pub fn calibrate(mut self, set: CalibrationSet) -> Self {
        self.calibration = Some(set);
        self
    }

    /// Choose activation ranges with `method`.
    pub fn calib(mut self, method: CalibMethod) -> Self {
        self.calib = method;
        self
    }

    /// Hold the last `n` calibration samples back.
    pub fn holdout(mut self, n: usize) -> Self {
        self.holdout = n;
        self
    }

    /// What node `name` is quantized to, and why when it stays f32.
    fn layer_of(&self, name: &str) -> Result<Scheme, &'static str> {
        if self.skip.iter().any(|s| s == name) {
            return Err("--quantize-skip");
        }
        match self.layers.iter().rev().find(|(n, _)| n == name) {
            Some((_, Layer::Float)) => Err("--quantize-layer float"),
            Some((_, Layer::Scheme(s))) => Ok(*s),
            None => Ok(self.scheme),
        }
    }
}

/// One stored weight.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightReport {
    /// The node that reads it.
    pub node: String,
    /// The stored weight's value name.
    pub weight: String,
    /// Its shape as stored, `[N, K]`.
    pub shape: Vec<usize>,
    /// Bytes as f32.
    pub before: usize,
    /// Bytes as stored.
    pub after: usize,
    /// The storage (`q8_0`, `f16`, `affine(i8,axis=0)`).
    pub encoding: String,
    /// Why the storage is not the scheme's own format, when it is not.
    pub fallback: Option<String>,
}

/// What [`quantize_weights`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantizeReport {
    /// The scheme's name.
    pub scheme: String,
    /// The weights stored in a new encoding, in node order.
    pub weights: Vec<WeightReport>,
    /// Products whose weight stays f32: `(node, reason)`.
    pub kept: Vec<(String, String)>,
    /// The nodes the int8 rewrite changed, with their calibrated ranges.
    pub int8: Vec<Int8Node>,
    /// The calibration method, when int8 nodes were calibrated.
    pub calib: Option<String>,
    /// The quantized graph against the float one, on the calibration
    /// samples and on the held-back ones (when calibration data was given).
    pub accuracy: Vec<Accuracy>,
}

impl QuantizeReport {
    /// Bytes of the quantized weights as f32.
    pub fn before(&self) -> usize {
        self.weights.iter().map(|w| w.before).sum()
    }

    /// Bytes of the quantized weights as stored.
    pub fn after(&self) -> usize {
        self.weights.iter().map(|w| w.after).sum()
    }
}

impl fmt::Display for QuantizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "quantize {}:", self.scheme)?;
        for w in &self.weights {
            write!(
                f,
                "  {:<24} {:<14} {:>10} B -> {:>9} B  {}",
                w.node,
                format!("{:?}", w.shape),
                w.before,
                w.after,
                w.encoding
            )?;
            if let Some(why) = &w.fallback {
                write!(f, " (fallback: {why})")?;
            }
            writeln!(f)?;
        }
        for (node, why) in &self.kept {
            writeln!(f, "  {node:<24} kept f32: {why}")?;
        }
        if let Some(m) = &self.calib {
            writeln!(f, "  int8 activations (u8 per tensor, calibrated by {m}):")?;
        }
        for n in &self.int8 {
            let ((xl, xh), sx, zx) = n.input;
            let out = match n.output {
                Some(((yl, yh), sy, zy)) => {
                    format!("out u8 [{yl:.4}, {yh:.4}] scale {sy:.3e} zp {zy}")
                }
                None => "out f32 (i32 accumulator rescaled)".into(),
            };
            writeln!(
                f,
                "  {:<24} {:<14} in [{xl:.4}, {xh:.4}] scale {sx:.3e} zp {zx}, {out}",
                n.node, n.op
            )?;
        }
        let (b, a) = (self.before(), self.after());
        let ratio = if a > 0 { b as f64 / a as f64 } else { 0.0 };
        write!(
            f,
            "  total: {} weights, {b} B -> {a} B ({ratio:.2}x smaller)",
            self.weights.len()
        )?;
        for acc in &self.accuracy {
            write!(f, "\n{acc}")?;
        }
        Ok(())
    }
}

/// Why quantization failed.
#[derive(Debug)]
pub enum QuantizeError {
    /// `--quantize` names no scheme.
    UnknownScheme(String),
    /// `--quantize-skip` or `--quantize-layer` names nodes the graph does
    /// not have.
    UnknownNodes(Vec<String>),
    /// `int8` was asked for without calibration data.
    NeedsCalibration,
    /// The calibration data does not fit the graph.
    Calibration(String),
    /// Encoding a weight or rewriting a node failed.
    Ir {
        /// The node.
        node: String,
        /// What went wrong.
        source: smelt_ir::Error,
    },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizeError::UnknownScheme(s) => write!(
                f,
                "unknown quantization scheme '{s}'; use one of {}",
                Scheme::NAMES.join(", ")
            ),
            QuantizeError::UnknownNodes(v) => write!(
                f,
                "--quantize-skip/--quantize-layer name no node called {}; `smelt inspect --print-ir` lists the nodes",
                v.join(", ")
            ),
            QuantizeError::NeedsCalibration => write!(
                f,
                "--quantize int8 calibrates its activation scales: give samples with --calibrate FILE.npz (one array per input, N samples stacked on a new leading axis)"
            ),
            QuantizeError::Calibration(m) => write!(f, "{m}"),
            QuantizeError::Ir { node, source } => write!(f, "quantizing node '{node}': {source}"),
        }
    }
}

impl std::error::Error for QuantizeError {}

/// How a product reads its weight.
pub(crate) struct Product {
    x: ValueId,
    w: ValueId,
    /// The weight is stored `[K, N]` (MatMul, Gemm without transB).
    k_major: bool,
    /// Multiplies the weight (Gemm's alpha).
    alpha: f32,
    /// The bias input and the factor it is scaled by (Gemm's c and beta).
    bias: Option<(ValueId, f32)>,
}

impl Product {
    /// The weight `values` as rows of `K` per output channel, `alpha`
    /// folded in: `w'[j][kk] = alpha * w[kk][j]` (or `w[j][kk]` when the
    /// weight is stored `[N, K]`).
    fn rows(&self, values: &[f32], k: usize, n: usize) -> Vec<f32> {
        (0..n * k)
            .map(|idx| {
                let (j, kk) = (idx / k, idx % k);
                let v = if self.k_major {
                    values[kk * n + j]
                } else {
                    values[j * k + kk]
                };
                v * self.alpha
            })
            .collect()
    }
}

/// The product a node computes, or why it is not one the pass rewrites
/// (`Ok(None)`: not a product with a constant weight at all).
pub(crate) fn product(
    g: &Graph,
    op: &Op,
    inputs: &[Option<ValueId>],
) -> Result<Option<Product>, String> {
    let (x, w) = match (
        inputs.first().copied().flatten(),
        inputs.get(1).copied().flatten(),
    ) {
        (Some(x), Some(w)) => (x, w),
        _ => return Ok(None),
    };
    let wv = g.value(w);
    let is_weight = matches!(wv.def, ValueDef::Const(_))
        && wv.ty.is_dense()
        && wv.ty.dtype == DType::F32
        && wv.ty.shape.len() == 2;
    let p = match op {
        Op::Linalg(Linalg::MatMul) if is_weight => Product {
            x,
            w,
            k_major: true,
            alpha: 1.0,
            bias: None,
        },
        Op::Linalg(Linalg::Gemm(GemmAttrs {
            alpha,
            beta,
            trans_a,
            trans_b,
            ..
        })) if is_weight => {
            if *trans_a {
                return Err("Gemm with transA".into());
            }
            Product {
                x,
                w,
                k_major: !trans_b,
                alpha: *alpha,
                bias: inputs.get(2).copied().flatten().map(|c| (c, *beta)),
            }
        }
        _ => return Ok(None),
    };
    if g.value(x).ty.dtype != DType::F32 {
        return Err(format!("the activation is {}", g.value(x).ty.dtype));
    }
    Ok(Some(p))
}

/// A `[n]` f32 bias for `EncodedMatMul` from Gemm's `c` and `beta`: `c`
/// itself when it is `[N]` and `beta = 1`, else a constant `beta * c` when
/// `c` is a constant of `N` elements shaped `[N]` or `[1, N]`.
pub(crate) fn bias_input(
    g: &mut Graph,
    c: ValueId,
    beta: f32,
    n: usize,
) -> Result<ValueId, String> {
    let ty = g.value(c).ty.clone();
    if ty.dtype != DType::F32 || !ty.is_dense() {
        return Err(format!("the bias is {ty}"));
    }
    let row = ty.shape == [n] || ty.shape == [1, n];
    if ty.shape == [n] && beta == 1.0 {
        return Ok(c);
    }
    let value = match g.const_value(c) {
        Some(Ok(t)) if row => t,
        _ => return Err(format!("the bias {ty} (beta {beta}) is not a constant [N]")),
    };
    let v: Vec<f32> = value
        .as_slice::<f32>()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|&b| b * beta)
        .collect();
    let t = Tensor::from_vec(vec![n], v).map_err(|e| e.to_string())?;
    let name = g.fresh_name(&format!("{}.bias", g.value(c).name));
    g.add_const(name, &t).map_err(|e| e.to_string())
}

/// Quantizes `g` as `opts` says: the int8 rewrite on the nodes whose
/// scheme is `int8` (calibrated on `opts.calibration`, without its
/// held-back samples), then the weight-only schemes (see the module doc).
/// Every node keeps its name and result type; the f32 constants no node
/// reads any more are dropped ([`Graph::prune`]). The graph is verified
/// after. With calibration data the report compares the quantized graph
/// with the float one on the calibration and held-back samples.
pub fn quantize(g: &mut Graph, opts: &QuantizeOptions) -> Result<QuantizeReport, QuantizeError> {
    let unknown: Vec<String> = opts
        .skip
        .iter()
        .chain(opts.layers.iter().map(|(n, _)| n))
        .filter(|s| !g.nodes.iter().any(|n| &n.name == *s))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(QuantizeError::UnknownNodes(unknown));
    }
    let mut report = QuantizeReport {
        scheme: opts.scheme.name().to_string(),
        ..QuantizeReport::default()
    };
    let float = opts.calibration.as_ref().map(|_| g.clone());
    let is_int8 = |name: &str| opts.layer_of(name) == Ok(Scheme::Int8);
    if g.nodes.iter().any(|n| is_int8(&n.name)) {
        let set = opts
            .calibration
            .as_ref()
            .ok_or(QuantizeError::NeedsCalibration)?;
        let (cal, _) = set.split(opts.holdout);
        report.calib = Some(opts.calib.to_string());
        int8::rewrite(g, &is_int8, cal, opts.calib, &mut report)?;
    }
    quantize_weights_into(g, opts, &mut report)?;
    g.prune();
    smelt_ir::verify::verify(g).map_err(|source| QuantizeError::Ir {
        node: "(graph)".into(),
        source,
    })?;
    if let (Some(f), Some(set)) = (&float, &opts.calibration) {
        let (cal, held) = set.split(opts.holdout);
        report
            .accuracy
            .push(accuracy::compare(f, g, cal, "calibration")?);
        if !held.is_empty() {
            report
                .accuracy
                .push(accuracy::compare(f, g, held, "held-back")?);
        }
    }
    Ok(report)
}

/// [`quantize`] under its earlier name (weight-only schemes need nothing
/// else).
pub fn quantize_weights(
    g: &mut Graph,
    opts: &QuantizeOptions,
) -> Result<QuantizeReport, QuantizeError> {
    quantize(g, opts)
}

/// The weight-only rewrite of every `MatMul` and `Gemm` whose node's
/// scheme is not `int8`, recorded in `report`.
fn quantize_weights_into(
    g: &mut Graph,
    opts: &QuantizeOptions,
    report: &mut QuantizeReport,
) -> Result<(), QuantizeError> {
    // One stored copy per (weight, orientation, alpha, scheme): a weight
    // shared by several products is encoded once.
    let mut stored: HashMap<(ValueId, bool, u32, &str), ValueId> = HashMap::new();
    for i in 0..g.nodes.len() {
        let (name, op, inputs) = {
            let n = &g.nodes[i];
            (n.name.clone(), n.op.clone(), n.inputs.clone())
        };
        let scheme = opts.layer_of(&name);
        if scheme == Ok(Scheme::Int8) {
            // The int8 rewrite took it or said why not.
            continue;
        }
        let p = match product(g, &op, &inputs) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(why) => {
                report.kept.push((name, why));
                continue;
            }
        };
        let scheme = match scheme {
            Ok(s) => s,
            Err(why) => {
                report.kept.push((name, why.into()));
                continue;
            }
        };
        let ir = |source| QuantizeError::Ir {
            node: name.clone(),
            source,
        };
        let shape = g.value(p.w).ty.shape.clone();
        let (k, n) = if p.k_major {
            (shape[0], shape[1])
        } else {
            (shape[1], shape[0])
        };
        let bias = match p.bias.map(|(c, beta)| bias_input(g, c, beta, n)) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(why)) => {
                report.kept.push((name, why));
                continue;
            }
        };
        let key = (p.w, p.k_major, p.alpha.to_bits(), scheme.name());
        let w = match stored.get(&key) {
            Some(&w) => w,
            None => {
                let not_const = || smelt_ir::Error::Verify("the weight is not a constant".into());
                let values = g
                    .const_value(p.w)
                    .ok_or_else(not_const)
                    .and_then(|r| r)
                    .map_err(ir)?
                    .as_slice::<f32>()
                    .map_err(ir)?
                    .to_vec();
                let rows = p.rows(&values, k, n);
                let (ty, fallback) = scheme.storage(n, k).map_err(ir)?;
                let bytes = encode(&ty, &rows).map_err(ir)?;
                let wname = g.fresh_name(&format!("{}.{}", g.value(p.w).name, scheme.name()));
                let encoding = if ty.is_dense() {
                    ty.dtype.to_string()
                } else {
                    ty.encoding.to_string()
                };
                report.weights.push(WeightReport {
                    node: name.clone(),
                    weight: wname.clone(),
                    shape: vec![n, k],
                    before: n * k * 4,
                    after: bytes.len(),
                    encoding,
                    fallback,
                });
                let id = g.add_const_bytes(wname, ty, bytes.into()).map_err(ir)?;
                stored.insert(key, id);
                id
            }
        };
        let want: Vec<TensorType> = g.nodes[i]
            .outputs
            .iter()
            .map(|&o| g.value(o).ty.clone())
            .collect();
        let node = &mut g.nodes[i];
        node.op = Op::Weights(Weights::EncodedMatMul);
        node.inputs = vec![Some(p.x), Some(w)];
        node.inputs.extend(bias.map(Some));
        let got = g
            .infer(&g.nodes[i].op, &g.nodes[i].inputs)
            .map_err(|e| ir(e.at_node(&name, "EncodedMatMul")))?;
        if got != want {
            return Err(ir(smelt_ir::Error::Verify(format!(
                "EncodedMatMul infers {got:?} where the product was {want:?}"
            ))));
        }
    }
    Ok(())
}

/// Bytes of the graph's constants by storage (`f32`, `q8_0`, …), sorted by
/// name: what `smelt inspect` shows.
pub fn bytes_by_encoding(g: &Graph) -> Vec<(String, usize, usize)> {
    let mut by: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for v in &g.values {
        if let ValueDef::Const(b) = &v.def {
            let key = if v.ty.is_dense() {
                v.ty.dtype.to_string()
            } else {
                v.ty.encoding.to_string()
            };
            let e = by.entry(key).or_default();
            e.0 += 1;
            e.1 += b.as_slice().len();
        }
    }
    by.into_iter().map(|(k, (n, b))| (k, n, b)).collect()
}

#[cfg(test)]
mod tests;
