//! [`Expr::Dot`](crate::kernel::Expr::Dot) as the target's own instruction.
//!
//! The kernel IR's dot product is generic (`acc[j] + Σ_{t<4} a[4j+t] ·
//! b[4j+t]`, `a` `u8` or `i8`, `b` `i8`); LLVM does not reliably select the
//! dot instructions from the generic pattern, so the code generator calls
//! the target intrinsics itself ([`DotIsa`], chosen from the resolved CPU
//! and features):
//!
//! | target | instruction | `u8 × i8` | `i8 × i8` |
//! |---|---|---|---|
//! | x86 AVX-512 VNNI / AVX-VNNI | `vpdpbusd` | one | `a ^ 0x80` (= `a + 128` as `u8`), minus `vpdpbusd(0x80…, b)` (`128 · Σb`) |
//! | x86 without VNNI | `pmaddwd` on bytes widened to `i16` (exact; `pmaddubsw` would saturate) | pairs, then adjacent pairs added | same |
//! | aarch64 `+i8mm` | `usdot` / `sdot` | `usdot` | `sdot` |
//! | aarch64 `+dotprod` | `sdot` | `a ^ 0x80` (= `a − 128`), minus `sdot(−128…, b)` | one |
//! | ARM with DSP, no NEON (Cortex-M4, armv7 baseline) | `sxtb16`/`uxtb16` + `smlad`, per 32-bit lane | two `smlad` | two `smlad` |
//! | others (NEON armv7, aarch64 without `dotprod`) | generic IR (`smull`/`sadalp`-like, LLVM's choice) | | |
//!
//! Every form computes the same wrapping `i32` result: the products and
//! their sums are exact, and the compensation terms cancel exactly.

use super::codegen::{Gen, splat_lit, vty};
use super::target::LlvmTarget;
use crate::kernel::Scalar;

/// The dot-product instructions of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotIsa {
    /// Generic LLVM IR.
    Generic,
    /// x86 `vpdpbusd` on vectors of at most `bits` bits (512 with
    /// AVX-512 VNNI and VL, 256 with AVX-VNNI).
    Vnni {
        /// The widest vector, in bits.
        bits: u32,
    },
    /// x86 `pmaddwd` on `i16` vectors of at most `bits` bits (128 with
    /// SSE2, 256 with AVX2, 512 with AVX-512BW).
    Pmaddwd {
        /// The widest `pmaddwd`, in bits.
        bits: u32,
    },
    /// aarch64 `sdot` (`+dotprod`), and `usdot` with `+i8mm`.
    Sdot {
        /// Whether `usdot` (`u8 × i8`) exists.
        usdot: bool,
    },
    /// 32-bit ARM with the DSP extension: `smlad`.
    Smlad,
}

/// Whether `name` is enabled in `features` (the last `+name`/`-name`
/// wins), starting from `default`.
fn feature(features: &str, name: &str, default: bool) -> bool {
    let mut on = default;
    for f in features.split(',') {
        if f.strip_prefix('+') == Some(name) {
            on = true;
        } else if f.strip_prefix('-') == Some(name) {
            on = false;
        }
    }
    on
}

/// x86 CPUs with AVX-512 VNNI (LLVM 19's processor table).
const AVX512VNNI_CPUS: &[&str] = &[
    "cascadelake",
    "cooperlake",
    "icelake-client",
    "icelake_client",
    "icelake-server",
    "icelake_server",
    "tigerlake",
    "rocketlake",
    "sapphirerapids",
    "emeraldrapids",
    "graniterapids",
    "graniterapids-d",
    "graniterapids_d",
    "znver4",
    "znver5",
];

/// x86 CPUs with AVX-VNNI (the VEX form) but not AVX-512.
const AVXVNNI_CPUS: &[&str] = &[
    "alderlake",
    "raptorlake",
    "meteorlake",
    "arrowlake",
    "arrowlake-s",
    "arrowlake_s",
    "lunarlake",
    "pantherlake",
    "gracemont",
    "sierraforest",
    "grandridge",
    "clearwaterforest",
];

/// aarch64 CPUs with the dot-product extension (a selection of LLVM's).
const DOTPROD_CPUS: &[&str] = &[
    "cortex-a55",
    "cortex-a65",
    "cortex-a75",
    "cortex-a76",
    "cortex-a77",
    "cortex-a78",
    "cortex-a510",
    "cortex-a710",
    "cortex-x1",
    "cortex-x2",
    "neoverse-n1",
    "neoverse-n2",
    "neoverse-v1",
    "neoverse-v2",
    "apple-m1",
    "apple-m2",
    "apple-m3",
    "apple-a14",
    "apple-a15",
    "apple-a16",
];

/// aarch64 CPUs with `i8mm` (`usdot`), a selection of LLVM's.
const I8MM_CPUS: &[&str] = &[
    "cortex-a510",
    "cortex-a710",
    "cortex-x2",
    "neoverse-n2",
    "neoverse-v1",
    "neoverse-v2",
    "apple-m2",
    "apple-m3",
    "apple-a15",
    "apple-a16",
];

impl DotIsa {
    /// The dot instructions of `t`.
    pub fn of(t: &LlvmTarget) -> DotIsa {
        let arch = t.triple.split('-').next().unwrap_or_default();
        let (cpu, f) = (t.cpu.as_str(), t.features.as_str());
        match arch {
            "x86_64" => {
                let shape = t.vector_shape();
                let avx512 = shape.f32_lanes >= 16;
                let avx2 = shape.f32_lanes >= 8;
                let vnni512 = feature(f, "avx512vnni", AVX512VNNI_CPUS.contains(&cpu)) && avx512;
                let vl = feature(f, "avx512vl", avx512 && !matches!(cpu, "knl" | "knm"));
                let avxvnni = feature(
                    f,
                    "avxvnni",
                    AVXVNNI_CPUS.contains(&cpu)
                        || matches!(
                            cpu,
                            "sapphirerapids"
                                | "emeraldrapids"
                                | "graniterapids"
                                | "graniterapids-d"
                                | "graniterapids_d"
                        ),
                ) && avx2;
                if vnni512 && vl {
                    DotIsa::Vnni { bits: 512 }
                } else if avxvnni {
                    DotIsa::Vnni { bits: 256 }
                } else if avx512 && feature(f, "avx512bw", AVX512VNNI_CPUS.contains(&cpu)) {
                    DotIsa::Pmaddwd { bits: 512 }
                } else if avx2 {
                    DotIsa::Pmaddwd { bits: 256 }
                } else {
                    DotIsa::Pmaddwd { bits: 128 }
                }
            }
            "aarch64" => {
                let i8mm = feature(f, "i8mm", I8MM_CPUS.contains(&cpu));
                if feature(f, "dotprod", DOTPROD_CPUS.contains(&cpu) || i8mm) {
                    DotIsa::Sdot { usdot: i8mm }
                } else {
                    DotIsa::Generic
                }
            }
            a if a.starts_with("thumbv7em")
                || a.starts_with("armv7")
                || a.starts_with("thumbv7") =>
            {
                let m_profile = a.starts_with("thumbv7em");
                if !m_profile && feature(f, "neon", false) {
                    DotIsa::Generic
                } else if feature(f, "dsp", true) {
                    DotIsa::Smlad
                } else {
                    DotIsa::Generic
                }
            }
            _ => DotIsa::Generic,
        }
    }
}

/// Splits `lanes` bytes into chunks of at most `max` bytes (`lanes` a
/// multiple of 4): the vectors one instruction takes.
fn chunks(lanes: u8, max: u8) -> Vec<(u8, u8)> {
    let step = lanes.min(max);
    (0..lanes / step).map(|c| (c * step, step)).collect()
}

impl Gen<'_> {
    /// `acc + Σ a·b` by groups of 4 bytes with the target's instructions;
    /// `None` when the target has none for this width (the caller emits
    /// the generic IR).
    pub(super) fn dot_isa(
        &mut self,
        (a, b, acc): (&str, &str, &str),
        ta: Scalar,
        lanes: u8,
    ) -> Option<String> {
        let signed = ta.is_signed();
        match self.dot {
            DotIsa::Generic => None,
            DotIsa::Vnni { bits } => {
                let max = (bits / 8) as u8;
                if lanes > max || !matches!(lanes, 16 | 32 | 64) {
                    return None;
                }
                Some(self.vnni(a, b, acc, signed, lanes))
            }
            DotIsa::Pmaddwd { bits } => Some(self.pmaddwd(a, b, acc, signed, lanes, bits)),
            DotIsa::Sdot { usdot } => {
                if !lanes.is_multiple_of(16) {
                    return None;
                }
                Some(self.sdot(a, b, acc, signed, lanes, usdot))
            }
            DotIsa::Smlad => Some(self.smlad(a, b, acc, signed, lanes)),
        }
    }

    /// `a ^ 0x80` in each of its `lanes` bytes when `flip` (`a` read as
    /// the other signedness moved by 128), else `a`.
    fn flip_sign(&mut self, a: &str, lanes: u8, flip: bool) -> String {
        if !flip {
            return a.to_string();
        }
        let bt = vty(Scalar::I8, lanes);
        self.def(format!(
            "xor {bt} {a}, {}",
            splat_lit(Scalar::I8, lanes, "-128")
        ))
    }

    /// `vpdpbusd` (`u8 × i8`); an `i8` `a` goes through `a ^ 0x80`.
    fn vnni(&mut self, a: &str, b: &str, acc: &str, signed: bool, lanes: u8) -> String {
        let n = lanes / 4;
        let (bt, it) = (vty(Scalar::I8, lanes), vty(Scalar::I32, n));
        let name = format!("llvm.x86.avx512.vpdpbusd.{}", u32::from(lanes) * 8);
        let a = self.flip_sign(a, lanes, signed);
        let aw = self.def(format!("bitcast {bt} {a} to {it}"));
        let bw = self.def(format!("bitcast {bt} {b} to {it}"));
        let args = [
            (it.as_str(), acc),
            (it.as_str(), aw.as_str()),
            (it.as_str(), bw.as_str()),
        ];
        let r = self.intrinsic(&it, &name, &args);
        if !signed {
            return r;
        }
        // `(a + 128) · b` summed, minus `128 · Σ b`.
        let ones = splat_lit(Scalar::I32, n, "-2139062144");
        let zero = splat_lit(Scalar::I32, n, "0");
        let args = [
            (it.as_str(), zero.as_str()),
            (it.as_str(), ones.as_str()),
            (it.as_str(), bw.as_str()),
        ];
        let c = self.intrinsic(&it, &name, &args);
        self.def(format!("sub {it} {r}, {c}"))
    }

    /// Bytes widened to `i16`, `pmaddwd` (pair sums, exact), then adjacent
    /// pairs added.
    fn pmaddwd(
        &mut self,
        a: &str,
        b: &str,
        acc: &str,
        signed: bool,
        lanes: u8,
        bits: u32,
    ) -> String {
        let n = lanes / 4;
        let (bt, wt) = (vty(Scalar::I8, lanes), vty(Scalar::I16, lanes));
        let ext = if signed { "sext" } else { "zext" };
        let aw = self.def(format!("{ext} {bt} {a} to {wt}"));
        let bw = self.def(format!("sext {bt} {b} to {wt}"));
        let mut pairs = Vec::new();
        for (at, len) in chunks(lanes, (bits / 16) as u8) {
            let pick: Vec<u8> = (at..at + len).collect();
            let x = self.lanes_of(&aw, Scalar::I16, lanes, pick.clone());
            let y = self.lanes_of(&bw, Scalar::I16, lanes, pick);
            let name = match len {
                8 => "llvm.x86.sse2.pmadd.wd",
                16 => "llvm.x86.avx2.pmadd.wd",
                _ => "llvm.x86.avx512.pmaddw.d.512",
            };
            let (xt, rt) = (vty(Scalar::I16, len), vty(Scalar::I32, len / 2));
            pairs.push((self.intrinsic(&rt, name, &[(&xt, &x), (&xt, &y)]), len / 2));
        }
        let p = self.concat(pairs, Scalar::I32);
        let even = self.lanes_of(&p, Scalar::I32, 2 * n, (0..n).map(|j| 2 * j).collect());
        let odd = self.lanes_of(&p, Scalar::I32, 2 * n, (0..n).map(|j| 2 * j + 1).collect());
        let it = vty(Scalar::I32, n);
        let s = self.def(format!("add {it} {even}, {odd}"));
        self.def(format!("add {it} {acc}, {s}"))
    }

    /// The vectors `parts` (each of `len` lanes of `ty`) one after the other.
    fn concat(&mut self, mut parts: Vec<(String, u8)>, ty: Scalar) -> String {
        while parts.len() > 1 {
            let mut next = Vec::new();
            for pair in parts.chunks(2) {
                match pair {
                    [(x, l), (y, _)] => {
                        let t = vty(ty, *l);
                        let mask: Vec<String> = (0..2 * l).map(|k| format!("i32 {k}")).collect();
                        let v = self.def(format!(
                            "shufflevector {t} {x}, {t} {y}, <{} x i32> <{}>",
                            2 * l,
                            mask.join(", ")
                        ));
                        next.push((v, 2 * l));
                    }
                    [one] => next.push(one.clone()),
                    _ => {}
                }
            }
            parts = next;
        }
        parts.pop().map(|p| p.0).unwrap_or_default()
    }

    /// aarch64 `sdot` (`i8 × i8`) on 16-byte chunks; a `u8` `a` goes
    /// through `usdot` when the target has it, else `a ^ 0x80` and `sdot`.
    fn sdot(
        &mut self,
        a: &str,
        b: &str,
        acc: &str,
        signed: bool,
        lanes: u8,
        usdot: bool,
    ) -> String {
        let mut parts = Vec::new();
        let (bt, dt) = (vty(Scalar::I8, 16), vty(Scalar::I32, 4));
        let n = lanes / 4;
        let flip = !signed && !usdot;
        let a = self.flip_sign(a, lanes, flip);
        for (at, _) in chunks(lanes, 16) {
            let pick: Vec<u8> = (at..at + 16).collect();
            let x = self.lanes_of(&a, Scalar::I8, lanes, pick.clone());
            let y = self.lanes_of(b, Scalar::I8, lanes, pick);
            let c = self.lanes_of(acc, Scalar::I32, n, (at / 4..at / 4 + 4).collect());
            let name = if !signed && usdot {
                "llvm.aarch64.neon.usdot.v4i32.v16i8"
            } else {
                "llvm.aarch64.neon.sdot.v4i32.v16i8"
            };
            let mut r = self.intrinsic(&dt, name, &[(&dt, &c), (&bt, &x), (&bt, &y)]);
            if flip {
                // `(a − 128) · b` summed, plus `128 · Σ b`.
                let m = splat_lit(Scalar::I8, 16, "-128");
                let z = splat_lit(Scalar::I32, 4, "0");
                let comp = self.intrinsic(
                    &dt,
                    "llvm.aarch64.neon.sdot.v4i32.v16i8",
                    &[(&dt, &z), (&bt, &m), (&bt, &y)],
                );
                r = self.def(format!("sub {dt} {r}, {comp}"));
            }
            parts.push((r, 4));
        }
        self.concat(parts, Scalar::I32)
    }

    /// 32-bit ARM: per `i32` lane, bytes 0 and 2 and bytes 1 and 3 of each
    /// operand extended to `i16` pairs (`sxtb16`/`uxtb16`, the second after
    /// a rotation by 8), then two dual multiply-accumulates (`smlad`).
    fn smlad(&mut self, a: &str, b: &str, acc: &str, signed: bool, lanes: u8) -> String {
        let n = lanes / 4;
        let (bt, it) = (vty(Scalar::I8, lanes), vty(Scalar::I32, n));
        let aw = self.def(format!("bitcast {bt} {a} to {it}"));
        let bw = self.def(format!("bitcast {bt} {b} to {it}"));
        let ext_a = if signed {
            "llvm.arm.sxtb16"
        } else {
            "llvm.arm.uxtb16"
        };
        let mut r = acc.to_string();
        for j in 0..n {
            let x = self.def(format!("extractelement {it} {aw}, i64 {j}"));
            let y = self.def(format!("extractelement {it} {bw}, i64 {j}"));
            let c = self.def(format!("extractelement {it} {r}, i64 {j}"));
            let mut s = c;
            for rot in [false, true] {
                let (x, y) = if rot {
                    let args = |v: &str| {
                        [
                            ("i32", v.to_string()),
                            ("i32", v.to_string()),
                            ("i32", "8".to_string()),
                        ]
                    };
                    let xa = args(&x);
                    let ya = args(&y);
                    let xr = self.intrinsic(
                        "i32",
                        "llvm.fshr.i32",
                        &xa.iter().map(|(t, v)| (*t, v.as_str())).collect::<Vec<_>>(),
                    );
                    let yr = self.intrinsic(
                        "i32",
                        "llvm.fshr.i32",
                        &ya.iter().map(|(t, v)| (*t, v.as_str())).collect::<Vec<_>>(),
                    );
                    (xr, yr)
                } else {
                    (x.clone(), y.clone())
                };
                let x16 = self.intrinsic("i32", ext_a, &[("i32", &x)]);
                let y16 = self.intrinsic("i32", "llvm.arm.sxtb16", &[("i32", &y)]);
                s = self.intrinsic(
                    "i32",
                    "llvm.arm.smlad",
                    &[("i32", &x16), ("i32", &y16), ("i32", &s)],
                );
            }
            r = self.def(format!("insertelement {it} {r}, i32 {s}, i64 {j}"));
        }
        r
    }
}
