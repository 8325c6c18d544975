//! Rotary position embeddings computed at run time from the position input:
//! the per-pair inverse frequencies (with the configuration's rescaling) are
//! constants, the angles `(pos + t) · inv_freq` and their cosines and sines
//! are nodes, built once per graph and shared by every layer's q and k.
//!
//! Both [`RopeLayout`]s go through one formula: for a head vector `x`,
//! `rope(x) = x · cos[c] + x[perm] · sign · sin[c]`, where `c[j]` is the
//! frequency index element `j` uses and `perm` pairs each element with its
//! partner (`j ± d/2` for [`RopeLayout::Halves`], `j ± 1` for
//! [`RopeLayout::Interleaved`]); the first element of a pair takes `-sin`.

use smelt_ir::ValueId;

use super::emit::{Emitter, int};
use crate::checkpoint::{LlmConfig, RopeLayout, RopeScaling};
use crate::error::Result;

/// The inverse frequency of each rotated pair, `1 / theta^(2i/d)`, rescaled
/// as the configuration says (Hugging Face's `_compute_*_parameters`).
pub fn inv_freq(c: &LlmConfig) -> Vec<f32> {
    let d = c.head_dim;
    let base = (0..d / 2).map(|i| 1.0 / c.rope_theta.powf((2 * i) as f32 / d as f32));
    match &c.rope_scaling {
        None => base.collect(),
        Some(RopeScaling::Linear { factor }) => base.map(|f| f / factor).collect(),
        Some(RopeScaling::Factors(factors)) => base.zip(factors).map(|(f, k)| f / k).collect(),
        &Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => {
            let orig = original_max_position_embeddings as f32;
            let low_wavelen = orig / low_freq_factor;
            let high_wavelen = orig / high_freq_factor;
            base.map(|f| {
                let wavelen = 2.0 * std::f32::consts::PI / f;
                if wavelen < high_wavelen {
                    f
                } else if wavelen > low_wavelen {
                    f / factor
                } else {
                    let smooth =
                        (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * f / factor + smooth * f
                }
            })
            .collect()
        }
    }
}

/// The frequency index, partner and sign of each element of a head.
fn pairing(layout: RopeLayout, d: usize) -> (Vec<i64>, Vec<i64>, Vec<f32>) {
    let h = d / 2;
    let mut freq = Vec::with_capacity(d);
    let mut partner = Vec::with_capacity(d);
    let mut sign = Vec::with_capacity(d);
    for j in 0..d {
        let (f, p, first) = match layout {
            RopeLayout::Halves => (j % h, if j < h { j + h } else { j - h }, j < h),
            RopeLayout::Interleaved => (j / 2, j ^ 1, j % 2 == 0),
        };
        freq.push(f as i64);
        partner.push(p as i64);
        sign.push(if first { -1.0 } else { 1.0 });
    }
    (freq, partner, sign)
}

/// The run-time tables of one graph: `cos[c]` and `sign · sin[c]` per
/// token, `[T, 1, d]`, and the partner indices.
pub struct Rope {
    cos: ValueId,
    sin: ValueId,
    partner: ValueId,
}

impl Rope {
    /// The tables for the positions `positions` (i64 `[T]`).
    pub fn new(e: &mut Emitter<'_>, c: &LlmConfig, positions: ValueId, t: usize) -> Result<Rope> {
        let d = c.head_dim;
        let (freq, partner, sign) = pairing(c.rope_layout, d);
        let p = e.op("Cast", vec![int("to", 1)], &[positions], "rope.pos")?;
        let p = e.reshape(p, &[t, 1], "rope.pos")?;
        let inv = e.f32s("rope.inv_freq", &[1, d / 2], inv_freq(c))?;
        let angles = e.op("Mul", vec![], &[p, inv], "rope.angles")?;
        let freq = e.i64s("rope.freq_index", &[d], freq)?;
        let table = |op: &str, e: &mut Emitter<'_>| -> Result<ValueId> {
            let name = format!("rope.{}", op.to_ascii_lowercase());
            let v = e.op(op, vec![], &[angles], &name)?;
            e.op("Gather", vec![int("axis", 1)], &[v, freq], &name)
        };
        let cos = table("Cos", e)?;
        let sin = table("Sin", e)?;
        let sign = e.f32s("rope.sign", &[d], sign)?;
        let sin = e.op("Mul", vec![], &[sin, sign], "rope.sin")?;
        let cos = e.reshape(cos, &[t, 1, d], "rope.cos")?;
        let sin = e.reshape(sin, &[t, 1, d], "rope.sin")?;
        let partner = e.i64s("rope.partner", &[d], partner)?;
        Ok(Rope { cos, sin, partner })
    }

    /// `x` (f32 `[T, heads, d]`) rotated.
    pub fn apply(&self, e: &mut Emitter<'_>, x: ValueId, name: &str) -> Result<ValueId> {
        let a = e.op("Mul", vec![], &[x, self.cos], name)?;
        let swapped = e.op("Gather", vec![int("axis", 2)], &[x, self.partner], name)?;
        let b = e.op("Mul", vec![], &[swapped, self.sin], name)?;
        e.op("Add", vec![], &[a, b], name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_follow_the_layout() {
        let (f, p, s) = pairing(RopeLayout::Halves, 4);
        assert_eq!((f, p), (vec![0, 1, 0, 1], vec![2, 3, 0, 1]));
        assert_eq!(s, vec![-1.0, -1.0, 1.0, 1.0]);
        let (f, p, s) = pairing(RopeLayout::Interleaved, 4);
        assert_eq!((f, p), (vec![0, 0, 1, 1], vec![1, 0, 3, 2]));
        assert_eq!(s, vec![-1.0, 1.0, -1.0, 1.0]);
    }
}
