//! Calibration data and observers for `--quantize int8 --calibrate FILE.npz`.
//!
//! [`CalibrationSet::from_stacked`] checks the archive's arrays against the
//! graph's inputs (each input's entry stacks `N ≥ 1` samples on a new
//! leading axis: `x: f32[1,3,224,224]` takes `x: f32[N,1,3,224,224]`) and
//! splits them into samples. [`observe`] runs the float graph in the
//! reference interpreter on the samples and records what the probed values
//! held: their range in a first pass and, for the histogram methods, their
//! histogram over that range in a second.

use std::collections::HashMap;

use smelt_ir::interp::Interpreter;
use smelt_ir::{Graph, Tensor, ValueId};

use super::QuantizeError;
use super::scale::Observation;

/// Calibration samples, each one set of graph inputs in
/// [`Graph::inputs`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationSet {
    /// The samples.
    pub samples: Vec<Vec<Tensor>>,
}

impl CalibrationSet {
    /// Splits stacked arrays (`name → [N, input shape…]`) into `N` samples
    /// for `g`. A missing input, an array no input is named after, a wrong
    /// dtype or shape, differing `N`s or `N = 0` is an error naming the
    /// array and what was expected.
    pub fn from_stacked(g: &Graph, entries: &[(String, Tensor)]) -> Result<Self, QuantizeError> {
        let bad = |m: String| Err(QuantizeError::Calibration(m));
        let names: Vec<&str> = g.inputs.iter().map(|&i| g.value(i).name.as_str()).collect();
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !entries.iter().any(|(k, _)| k == n))
            .collect();
        if !missing.is_empty() {
            return bad(format!(
                "the calibration data has no array for input(s) {}; it needs one per graph input ({}), each stacking N samples on a new leading axis",
                missing.join(", "),
                names.join(", ")
            ));
        }
        if let Some((k, _)) = entries.iter().find(|(k, _)| !names.contains(&k.as_str())) {
            return bad(format!(
                "the calibration data has an array '{k}' but the graph has no such input (inputs: {})",
                names.join(", ")
            ));
        }
        let mut n_samples: Option<(usize, &str)> = None;
        let mut per_input = Vec::with_capacity(names.len());
        for &id in &g.inputs {
            let v = g.value(id);
            let t = &entries
                .iter()
                .find(|(k, _)| *k == v.name)
                .expect("checked")
                .1;
            let want: Vec<usize> = std::iter::once(0)
                .chain(v.ty.shape.iter().copied())
                .collect();
            let shape_ok = t.shape().len() == want.len() && t.shape()[1..] == want[1..];
            if t.dtype() != v.ty.dtype || !shape_ok {
                let dims: Vec<String> = v.ty.shape.iter().map(usize::to_string).collect();
                return bad(format!(
                    "calibration array '{}' is {}{:?}; input '{}' is {} so it must be {}[N,{}] (N samples stacked on a new leading axis)",
                    v.name,
                    t.dtype(),
                    t.shape(),
                    v.name,
                    v.ty,
                    v.ty.dtype,
                    dims.join(",")
                ));
            }
            let n = t.shape()[0];
            if n == 0 {
                return bad(format!(
                    "calibration array '{}' holds no samples (N = 0)",
                    v.name
                ));
            }
            match n_samples {
                Some((m, other)) if m != n => {
                    return bad(format!(
                        "calibration arrays '{other}' and '{}' hold {m} and {n} samples; every input needs the same N",
                        v.name
                    ));
                }
                _ => n_samples = Some((n, &v.name)),
            }
            per_input.push(split(t, &v.ty.shape)?);
        }
        let n = n_samples.map_or(1, |(n, _)| n);
        let samples = (0..n)
            .map(|s| per_input.iter().map(|ts| ts[s].clone()).collect())
            .collect();
        Ok(CalibrationSet { samples })
    }

    /// The first `len - holdout` samples (calibration) and the last
    /// `holdout` (held back for the accuracy report); at least one sample
    /// stays for calibration.
    pub fn split(&self, holdout: usize) -> (&[Vec<Tensor>], &[Vec<Tensor>]) {
        let keep = self.samples.len().saturating_sub(holdout).max(1);
        self.samples.split_at(keep.min(self.samples.len()))
    }
}

/// `t`'s slices along its leading axis, each shaped `shape`.
fn split(t: &Tensor, shape: &[usize]) -> Result<Vec<Tensor>, QuantizeError> {
    let bytes = t.to_le_bytes();
    let n = t.shape()[0];
    let each = bytes.len() / n.max(1);
    bytes
        .chunks(each.max(1))
        .take(n)
        .map(|b| {
            Tensor::from_le_bytes(t.dtype(), shape.to_vec(), b).map_err(|source| {
                QuantizeError::Ir {
                    node: "(calibration data)".into(),
                    source,
                }
            })
        })
        .collect()
}

/// A value calibration records.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The f32 value.
    pub value: ValueId,
    /// A bias, broadcast along the last axis, subtracted before recording
    /// (a Gemm's output without its bias is what the integer product
    /// computes).
    pub minus_bias: Option<Vec<f32>>,
}

/// Runs `g` on `samples` and records each probe's range and, with
/// `histogram`, its histogram (a second run over the samples). Returns one
/// observation per probe.
pub fn observe(
    g: &Graph,
    samples: &[Vec<Tensor>],
    probes: &[Probe],
    histogram: bool,
) -> Result<Vec<Observation>, QuantizeError> {
    let mut by_value: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, p) in probes.iter().enumerate() {
        by_value.entry(p.value).or_default().push(i);
    }
    let mut obs = vec![Observation::default(); probes.len()];
    let see = |obs: &mut [Observation], id: ValueId, t: &Tensor, hist: bool| {
        let (Some(list), Ok(xs)) = (by_value.get(&id), t.as_slice::<f32>()) else {
            return;
        };
        for &i in list {
            let adjusted: Vec<f32>;
            let xs = match &probes[i].minus_bias {
                Some(b) if !b.is_empty() => {
                    adjusted = xs
                        .iter()
                        .enumerate()
                        .map(|(k, &x)| x - b[k % b.len()])
                        .collect();
                    &adjusted[..]
                }
                _ => xs,
            };
            if hist {
                obs[i].see_hist(xs);
            } else {
                obs[i].see_range(xs);
            }
        }
    };
    let interp = Interpreter::new(g);
    for pass in 0..if histogram { 2 } else { 1 } {
        let hist = pass == 1;
        for s in samples {
            for (k, &id) in g.inputs.iter().enumerate() {
                see(&mut obs, id, &s[k], hist);
            }
            interp
                .run_observed(s.clone(), |n, outs| {
                    for (&id, t) in g.node(n).outputs.iter().zip(outs) {
                        see(&mut obs, id, t, hist);
                    }
                })
                .map_err(|source| QuantizeError::Ir {
                    node: "(calibration run)".into(),
                    source,
                })?;
        }
    }
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{DType, TensorType};

    fn graph() -> Graph {
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![1, 2]))
            .unwrap();
        g.outputs = vec![x];
        g
    }

    fn err(entries: &[(String, Tensor)]) -> String {
        CalibrationSet::from_stacked(&graph(), entries)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn stacked_arrays_split_into_samples() {
        let t = Tensor::from_vec(vec![3, 1, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        let set = CalibrationSet::from_stacked(&graph(), &[("x".into(), t)]).unwrap();
        assert_eq!(set.samples.len(), 3);
        assert_eq!(
            set.samples[2][0],
            Tensor::from_vec(vec![1, 2], vec![5f32, 6.]).unwrap()
        );
        let (cal, held) = set.split(1);
        assert_eq!((cal.len(), held.len()), (2, 1));
    }

    #[test]
    fn bad_calibration_data_is_an_error_naming_it() {
        let f = |shape: Vec<usize>| {
            let n = shape.iter().product();
            Tensor::from_vec(shape, vec![0f32; n]).unwrap()
        };
        let e = err(&[]);
        assert!(e.contains("no array for input(s) x"), "{e}");
        let e = err(&[("x".into(), f(vec![4, 1, 2])), ("y".into(), f(vec![1]))]);
        assert!(
            e.contains("array 'y' but the graph has no such input"),
            "{e}"
        );
        let e = err(&[("x".into(), f(vec![1, 2]))]);
        assert!(e.contains("must be f32[N,1,2]"), "{e}");
        let e = err(&[("x".into(), f(vec![0, 1, 2]))]);
        assert!(e.contains("no samples (N = 0)"), "{e}");
        let i = Tensor::from_vec(vec![1, 1, 2], vec![1i64, 2]).unwrap();
        let e = err(&[("x".into(), i)]);
        assert!(e.contains("is i64[1, 1, 2]"), "{e}");
    }
}
