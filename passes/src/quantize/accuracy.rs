//! The accuracy report of a quantized graph against its float original, on
//! calibration samples: per f32 graph output, over all samples' elements
//! together,
//!
//! - `nmse = Σ (q - f)² / Σ f²` (the error energy relative to the signal's;
//!   `Σ (q - f)²` itself when the float output is all zero),
//! - `cosine = Σ q·f / (√Σ q² · √Σ f²)` (1 when both are all zero),
//! - `max_abs = max |q - f|`,
//! - for classifier-like outputs (one vector of class scores per sample: a
//!   single axis longer than 1) `top1`: the fraction of samples whose
//!   arg-max class agrees (the first maximum wins, as NumPy's `argmax`). An
//!   output with two such axes is not assumed to be rows of scores: a
//!   `[seq, hidden]` state is not a classifier, and its arg-max agreement
//!   says nothing; NMSE and cosine speak for it.
//!
//! The sums are in f64. [`compare`] runs both graphs in the reference
//! interpreter; [`metrics`] is the computation on given outputs.

use std::fmt;

use smelt_ir::interp::Interpreter;
use smelt_ir::{DType, Graph, Tensor};

use super::QuantizeError;

/// One output's agreement with the float model.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputAccuracy {
    /// The output's name.
    pub output: String,
    /// Normalised mean squared error.
    pub nmse: f64,
    /// Cosine similarity.
    pub cosine: f64,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Top-1 agreement, for classifier-like outputs.
    pub top1: Option<f64>,
}

/// The report over one set of samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Accuracy {
    /// Which samples: `calibration` or `held-back`.
    pub set: String,
    /// How many samples.
    pub samples: usize,
    /// One entry per f32 graph output, in output order.
    pub outputs: Vec<OutputAccuracy>,
}

/// Runs `float` and `quant` on `samples` and compares their f32 outputs.
pub fn compare(
    float: &Graph,
    quant: &Graph,
    samples: &[Vec<Tensor>],
    set: &str,
) -> Result<Accuracy, QuantizeError> {
    let run = |g: &Graph| -> Result<Vec<Vec<Tensor>>, QuantizeError> {
        let it = Interpreter::new(g);
        samples
            .iter()
            .map(|s| {
                it.run(s.clone()).map_err(|source| QuantizeError::Ir {
                    node: "(accuracy run)".into(),
                    source,
                })
            })
            .collect()
    };
    let (f, q) = (run(float)?, run(quant)?);
    let mut outputs = Vec::new();
    for (k, &id) in float.outputs.iter().enumerate() {
        let ty = &float.value(id).ty;
        if ty.dtype != DType::F32 {
            continue;
        }
        let fs: Vec<&[f32]> = f.iter().filter_map(|o| o[k].as_slice().ok()).collect();
        let qs: Vec<&[f32]> = q.iter().filter_map(|o| o[k].as_slice().ok()).collect();
        let m = metrics(&fs, &qs, &ty.shape);
        outputs.push(OutputAccuracy {
            output: float.value(id).name.clone(),
            ..m
        });
    }
    Ok(Accuracy {
        set: set.into(),
        samples: samples.len(),
        outputs,
    })
}

/// The number of classes when an output of `shape` is classifier-like: a
/// single axis longer than 1.
pub fn classes(shape: &[usize]) -> Option<usize> {
    let mut long = shape.iter().filter(|&&d| d != 1);
    match (long.next(), long.next()) {
        (Some(&c), None) => Some(c),
        _ => None,
    }
}

/// The first index of the largest value (NumPy's `argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// The metrics of quantized outputs `q` against float outputs `f` (one
/// slice per sample, each of `shape`); `output` is left empty.
pub fn metrics(f: &[&[f32]], q: &[&[f32]], shape: &[usize]) -> OutputAccuracy {
    let (mut err, mut ff, mut qq, mut qf, mut max_abs) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (fs, qs) in f.iter().zip(q) {
        for (&a, &b) in fs.iter().zip(qs.iter()) {
            let (a, b) = (a as f64, b as f64);
            err += (b - a) * (b - a);
            ff += a * a;
            qq += b * b;
            qf += a * b;
            max_abs = max_abs.max((b - a).abs());
        }
    }
    let nmse = if ff > 0.0 { err / ff } else { err };
    let cosine = if ff > 0.0 && qq > 0.0 {
        qf / (qq.sqrt() * ff.sqrt())
    } else if ff == qq {
        1.0
    } else {
        0.0
    };
    let top1 = classes(shape).map(|c| {
        let (mut agree, mut rows) = (0usize, 0usize);
        for (fs, qs) in f.iter().zip(q) {
            for (a, b) in fs.chunks(c).zip(qs.chunks(c)) {
                rows += 1;
                agree += usize::from(argmax(a) == argmax(b));
            }
        }
        if rows == 0 {
            1.0
        } else {
            agree as f64 / rows as f64
        }
    });
    OutputAccuracy {
        output: String::new(),
        nmse,
        cosine,
        max_abs,
        top1,
    }
}

impl fmt::Display for Accuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  accuracy against the float model on {} {} sample(s):",
            self.samples, self.set
        )?;
        for o in &self.outputs {
            write!(
                f,
                "\n    {:<20} nmse {:.3e}  cosine {:.6}  max abs {:.3e}",
                o.output, o.nmse, o.cosine, o.max_abs
            )?;
            if let Some(t) = o.top1 {
                write!(f, "  top-1 {:.2} %", 100.0 * t)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_like_shapes() {
        assert_eq!(classes(&[1, 12]), Some(12));
        assert_eq!(classes(&[12, 1]), Some(12));
        assert_eq!(classes(&[4, 10]), None);
        assert_eq!(classes(&[1, 16, 64]), None);
        assert_eq!(classes(&[1, 1]), None);
    }

    #[test]
    fn metrics_of_known_outputs() {
        // Two samples of a [1, 2] score vector.
        let (f0, f1) = ([1f32, 0.], [0f32, 2.]);
        let (q0, q1) = ([1f32, 0.5], [0f32, 2.]);
        let m = metrics(&[&f0, &f1], &[&q0, &q1], &[1, 2]);
        assert!((m.nmse - 0.25 / 5.0).abs() < 1e-12);
        assert!((m.cosine - 5.0 / (5f64.sqrt() * 5.25f64.sqrt())).abs() < 1e-12);
        assert_eq!(m.max_abs, 0.5);
        // Sample 0: argmax 0 both; sample 1: argmax 1 both.
        assert_eq!(m.top1, Some(1.0));
        let q0 = [0f32, 1.];
        assert_eq!(metrics(&[&f0, &f1], &[&q0, &q1], &[1, 2]).top1, Some(0.5));
        // A [2, 2] state is not a score vector: no top-1.
        let both = [1f32, 0., 0., 2.];
        assert_eq!(metrics(&[&both], &[&both], &[2, 2]).top1, None);
    }
}
