//! Scale choice for `--quantize int8`: how an observed activation range
//! becomes a quantization range (`--calib minmax|percentile|entropy`), the
//! asymmetric `u8` parameters of an activation and the symmetric per-channel
//! `i8` parameters of a weight.
//!
//! Activations are asymmetric `u8` per tensor: x86's VNNI `vpdpbusd` (and
//! AVX2's `vpmaddubsw`) multiply an unsigned byte by a signed byte, so
//! `u8` activations × `i8` weights is the form the int8 kernels run
//! natively, and it is onnxruntime's default for static quantization
//! (`QUInt8` activations, `QInt8` weights). The zero point also lets a
//! post-ReLU tensor use all 256 levels. Weights are symmetric `i8` per
//! output channel with the zero point 0 and the range ±127 (never -128, so
//! the negated weight is representable and the VNNI `u8 × i8` pair sums
//! cannot saturate `vpmaddubsw`'s `i16`).
//!
//! The histogram the percentile and entropy methods read is symmetric,
//! `[-A, A]` with `A` the largest `|x|` seen, in [`HIST_BINS`] bins, so its
//! two halves fold into a histogram of `|x|` without re-binning.

use std::fmt;

/// Bins of the calibration histogram over `[-A, A]` (half of them over
/// `[0, A]`, the `|x|` histogram the entropy search reads: TensorRT's 2048).
pub const HIST_BINS: usize = 4096;

/// The default percentile of `--calib percentile`: the range keeps the
/// central 99.99 % of the values, clipping 0.005 % in each tail.
pub const DEFAULT_PERCENTILE: f64 = 99.99;

/// Quantized bins the entropy search merges the reference histogram into:
/// the positive levels of a symmetric 8-bit range, as TensorRT does.
pub const ENTROPY_QUANT_BINS: usize = 128;

/// How an activation's range is chosen from what calibration saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CalibMethod {
    /// The observed minimum and maximum.
    MinMax,
    /// Both tails clipped: the range from the `(100 - p) / 2` to the
    /// `100 - (100 - p) / 2` percentile, so `p` percent of the values are
    /// inside it.
    Percentile(f64),
    /// The threshold `T` of `[-T, T]` that minimises the KL divergence
    /// between the `|x|` histogram and its 128-level quantized form
    /// (TensorRT's calibrator, onnxruntime's `CalibraterEntropy`),
    /// intersected with the observed range.
    Entropy,
}

impl CalibMethod {
    /// The names `--calib` takes.
    pub const NAMES: [&'static str; 3] = ["minmax", "percentile", "entropy"];

    /// Parses `minmax`, `percentile`, `percentile=P` or `entropy`.
    pub fn parse(s: &str) -> Option<CalibMethod> {
        match s {
            "minmax" => Some(CalibMethod::MinMax),
            "percentile" => Some(CalibMethod::Percentile(DEFAULT_PERCENTILE)),
            "entropy" => Some(CalibMethod::Entropy),
            _ => {
                let p: f64 = s.strip_prefix("percentile=")?.parse().ok()?;
                (p > 0.0 && p <= 100.0).then_some(CalibMethod::Percentile(p))
            }
        }
    }

    /// Whether the method reads the histogram (a second calibration pass).
    pub fn needs_histogram(self) -> bool {
        !matches!(self, CalibMethod::MinMax)
    }
}

impl fmt::Display for CalibMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibMethod::MinMax => write!(f, "minmax"),
            CalibMethod::Percentile(p) => write!(f, "percentile={p}"),
            CalibMethod::Entropy => write!(f, "entropy"),
        }
    }
}

/// What calibration saw of one value: its range and, for the histogram
/// methods, its histogram over `[-absmax, absmax]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The smallest value seen.
    pub min: f32,
    /// The largest value seen.
    pub max: f32,
    /// Counts over `[-A, A]` in [`HIST_BINS`] bins, `A = max(|min|, |max|)`;
    /// empty until the second pass.
    pub hist: Vec<u64>,
}

impl Default for Observation {
    fn default() -> Self {
        Observation {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: Vec::new(),
        }
    }
}

impl Observation {
    /// Widens the range by `xs` (NaNs are ignored).
    pub fn see_range(&mut self, xs: &[f32]) {
        for &x in xs {
            if x < self.min {
                self.min = x;
            }
            if x > self.max {
                self.max = x;
            }
        }
    }

    /// `A`: the half-width of the histogram.
    pub fn absmax(&self) -> f32 {
        self.min.abs().max(self.max.abs())
    }

    /// Counts `xs` into the histogram (after [`Observation::see_range`] has
    /// seen every sample).
    pub fn see_hist(&mut self, xs: &[f32]) {
        if self.hist.is_empty() {
            self.hist = vec![0; HIST_BINS];
        }
        let a = self.absmax();
        if a.is_nan() || a <= 0.0 {
            self.hist[HIST_BINS / 2] += xs.len() as u64;
            return;
        }
        let per = HIST_BINS as f64 / (2.0 * a as f64);
        for &x in xs {
            if x.is_nan() {
                continue;
            }
            let b = ((x as f64 + a as f64) * per).floor();
            self.hist[(b.max(0.0) as usize).min(HIST_BINS - 1)] += 1;
        }
    }

    /// The range `method` chooses, always including 0 (so that 0, the
    /// padding and ReLU value, is exact).
    pub fn range(&self, method: CalibMethod) -> (f32, f32) {
        let (lo, hi) = if self.min.is_nan() || self.max.is_nan() || self.min > self.max {
            (0.0, 0.0)
        } else {
            match method {
                CalibMethod::MinMax => (self.min, self.max),
                CalibMethod::Percentile(p) => percentile_range(self, p),
                CalibMethod::Entropy => {
                    let t = entropy_threshold(&fold(&self.hist), self.absmax());
                    (self.min.max(-t), self.max.min(t))
                }
            }
        };
        (lo.min(0.0), hi.max(0.0))
    }
}

/// The `|x|` histogram: the upper half of `hist` plus the mirrored lower half.
fn fold(hist: &[u64]) -> Vec<u64> {
    let half = hist.len() / 2;
    (0..half)
        .map(|i| hist[half + i] + hist[half - 1 - i])
        .collect()
}

/// Both tails of `o`'s histogram clipped at `(100 - p) / 2` percent each.
/// Bin edges are returned, so the range covers at least `p` percent.
fn percentile_range(o: &Observation, p: f64) -> (f32, f32) {
    let total: u64 = o.hist.iter().sum();
    if total == 0 {
        return (o.min, o.max);
    }
    let tail = (total as f64) * (100.0 - p) / 200.0;
    let a = o.absmax() as f64;
    let width = 2.0 * a / o.hist.len() as f64;
    let edge = |i: usize| (-a + i as f64 * width) as f32;
    // The first bin whose cumulative count passes the lower tail, and the
    // last one from the top.
    let mut acc = 0u64;
    let mut lo_bin = 0;
    for (i, &c) in o.hist.iter().enumerate() {
        acc += c;
        if acc as f64 > tail {
            lo_bin = i;
            break;
        }
    }
    acc = 0;
    let mut hi_bin = o.hist.len() - 1;
    for (i, &c) in o.hist.iter().enumerate().rev() {
        acc += c;
        if acc as f64 > tail {
            hi_bin = i;
            break;
        }
    }
    (edge(lo_bin).max(o.min), edge(hi_bin + 1).min(o.max))
}

/// The KL-divergence threshold over an `|x|` histogram of `hist.len()` bins
/// spanning `[0, amax]` (TensorRT's entropy calibration, our own code).
///
/// For each candidate `i` from [`ENTROPY_QUANT_BINS`] to the number of
/// bins, the reference distribution `P` is the first `i` bins with every
/// count beyond them added to the last (clipping maps them there); the
/// candidate `Q` merges those `i` bins into [`ENTROPY_QUANT_BINS`] groups
/// and spreads each group's total evenly over its non-empty bins (what the
/// quantized tensor can express). The `i` with the least `KL(P || Q)` wins;
/// the threshold is the middle of its last bin. A histogram with fewer bins
/// than quantized levels, or all empty, keeps `amax`.
///
/// The first bin's count is replaced by the second's first, as NVIDIA's
/// `pytorch-quantization` calibrator does: after a ReLU half the values
/// are exactly 0, and that spike would otherwise dominate the divergence
/// and pull the threshold far below the useful range.
pub fn entropy_threshold(hist: &[u64], amax: f32) -> f32 {
    let mut hist = hist.to_vec();
    if hist.len() > 1 {
        hist[0] = hist[1];
    }
    let hist = &hist[..];
    let n = hist.len();
    let total: u64 = hist.iter().sum();
    if n <= ENTROPY_QUANT_BINS || total == 0 {
        return amax;
    }
    let width = amax as f64 / n as f64;
    let mut best = (f64::INFINITY, n);
    let mut suffix: Vec<u64> = vec![0; n + 1];
    for i in (0..n).rev() {
        suffix[i] = suffix[i + 1] + hist[i];
    }
    for i in ENTROPY_QUANT_BINS..=n {
        let mut p: Vec<f64> = hist[..i].iter().map(|&c| c as f64).collect();
        p[i - 1] += suffix[i] as f64;
        let mut q = vec![0f64; i];
        for g in 0..ENTROPY_QUANT_BINS {
            let (a, b) = (g * i / ENTROPY_QUANT_BINS, (g + 1) * i / ENTROPY_QUANT_BINS);
            let sum: f64 = hist[a..b].iter().map(|&c| c as f64).sum();
            let nonzero = hist[a..b].iter().filter(|&&c| c > 0).count();
            if nonzero > 0 {
                for k in a..b {
                    if hist[k] > 0 {
                        q[k] = sum / nonzero as f64;
                    }
                }
            }
        }
        let kl = kl_divergence(&p, &q);
        if kl < best.0 {
            best = (kl, i);
        }
    }
    ((best.1 as f64 - 0.5) * width) as f32
}

/// `KL(P || Q)` of two unnormalised histograms. A bin where `P` has mass
/// and `Q` has none (the outlier bin the clipping fills) gets a small
/// smoothing mass, as onnxruntime's `smooth_distribution` does, instead of
/// an infinite divergence.
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    const EPS: f64 = 1e-4;
    let ps: f64 = p.iter().sum();
    let qs: f64 = q.iter().sum();
    if ps == 0.0 || qs == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(q)
        .filter(|(pi, _)| **pi > 0.0)
        .map(|(&pi, &qi)| {
            let pn = pi / ps;
            let qn = if qi > 0.0 { qi / qs } else { EPS / qs };
            pn * (pn / qn).ln()
        })
        .sum()
}

/// The `u8` scale and zero point of the range `[lo, hi]` (which holds 0):
/// `scale = (hi - lo) / 255`, `zero_point = round(-lo / scale)`. An empty
/// range gets scale 1 (every value is then 0).
pub fn u8_params(lo: f32, hi: f32) -> (f32, u8) {
    let scale = (hi - lo) / 255.0;
    if scale.is_nan() || scale <= 0.0 || !scale.is_finite() {
        return (1.0, 0);
    }
    let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
    (scale, zp as u8)
}

/// Symmetric per-channel `i8` weights: `rows` holds `channels` rows; each
/// row gets `scale = max|w| / 127` (1 for an all-zero row) and
/// `q = round(w / scale)` in `-127..=127`. Returns the scales and the
/// quantized values in `rows`'s order.
pub fn i8_per_channel(rows: &[f32], channels: usize) -> (Vec<f32>, Vec<i8>) {
    let len = rows.len() / channels.max(1);
    let mut scales = Vec::with_capacity(channels);
    let mut q = Vec::with_capacity(rows.len());
    for row in rows.chunks(len.max(1)).take(channels) {
        let amax = row.iter().fold(0f32, |m, &w| m.max(w.abs()));
        let s = if amax > 0.0 && amax.is_finite() {
            amax / 127.0
        } else {
            1.0
        };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|&w| (w / s).round_ties_even().clamp(-127.0, 127.0) as i8),
        );
    }
    (scales, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-seed normal sample (xorshift + Box-Muller).
    fn normals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect()
    }

    fn observe(xs: &[f32]) -> Observation {
        let mut o = Observation::default();
        o.see_range(xs);
        o.see_hist(xs);
        o
    }

    #[test]
    fn minmax_is_the_observed_range_with_zero() {
        let o = observe(&[0.5, 2.0, -1.5, 1.0]);
        assert_eq!(o.range(CalibMethod::MinMax), (-1.5, 2.0));
        // A positive-only tensor still includes 0.
        let o = observe(&[0.5, 3.0]);
        assert_eq!(o.range(CalibMethod::MinMax), (0.0, 3.0));
    }

    #[test]
    fn percentile_clips_both_tails() {
        // 10 000 values uniform on [-1, 1) and one outlier at 50 and one at
        // -50: the 99.9th percentile range drops the outliers and keeps
        // nearly all of [-1, 1].
        let mut xs: Vec<f32> = (0..10_000).map(|i| i as f32 / 5000.0 - 1.0).collect();
        xs.extend([50.0, -50.0]);
        let o = observe(&xs);
        let (lo, hi) = o.range(CalibMethod::Percentile(99.9));
        assert!((-1.1..=-0.9).contains(&lo), "{lo}");
        assert!((0.9..=1.1).contains(&hi), "{hi}");
        // At 100 % nothing is clipped.
        let (lo, hi) = o.range(CalibMethod::Percentile(100.0));
        assert_eq!((lo, hi), (-50.0, 50.0));
    }

    #[test]
    fn entropy_picks_a_threshold_below_the_max_on_a_heavy_tail() {
        let mut xs = normals(100_000, 7);
        xs.extend([40.0, -35.0, 60.0]);
        let o = observe(&xs);
        let (lo, hi) = o.range(CalibMethod::Entropy);
        assert!(hi < 20.0 && hi > 2.0, "{hi}");
        assert!(lo > -20.0 && lo < -2.0, "{lo}");
    }

    #[test]
    fn entropy_keeps_the_range_of_a_uniform_distribution() {
        // Without a tail, clipping only loses information: the threshold
        // stays near the max.
        let xs: Vec<f32> = (0..100_000).map(|i| i as f32 / 50_000.0 - 1.0).collect();
        let t = entropy_threshold(&fold(&observe(&xs).hist), 1.0);
        assert!(t > 0.9, "{t}");
    }

    #[test]
    fn u8_params_put_zero_on_a_level() {
        let (s, z) = u8_params(-1.0, 3.0);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        assert_eq!(u8_params(0.0, 0.0), (1.0, 0));
        assert_eq!(u8_params(0.0, 2.55).1, 0);
    }

    #[test]
    fn i8_per_channel_scales_each_row() {
        let (s, q) = i8_per_channel(&[1.0, -0.6, 0.0, 0.0, 0.3, -2.54], 3);
        assert_eq!(s, vec![1.0 / 127.0, 1.0, 2.54 / 127.0]);
        assert_eq!(q, vec![127, -76, 0, 0, 15, -127]);
    }

    #[test]
    fn methods_parse() {
        assert_eq!(CalibMethod::parse("minmax"), Some(CalibMethod::MinMax));
        assert_eq!(
            CalibMethod::parse("percentile=99.9"),
            Some(CalibMethod::Percentile(99.9))
        );
        assert_eq!(CalibMethod::parse("percentile=0"), None);
        assert_eq!(CalibMethod::parse("kl"), None);
    }
}
