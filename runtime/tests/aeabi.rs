//! The Arm run-time ABI helpers (`c/aeabi.c`) on both 32-bit Arm targets,
//! through a hand-written model (`models/aeabi.c`), compared bit for bit with
//! Rust's own operations: soft-float double arithmetic, comparisons and
//! conversions (the Cortex-M4F has no double-precision unit), int64/float
//! conversions, 64-bit and 32-bit division, 64-bit shifts and half
//! precision. Inputs mix special values (zeros, infinities, NaNs,
//! subnormals, halfway cases, the integer extremes) with random bit
//! patterns and random numbers close to each other (cancellation).

mod common;

use common::{Exe, Rng, npy, npy_data};
use smelt_runtime::Target;

const N: usize = 4096;

fn specials() -> Vec<u64> {
    let mut v: Vec<u64> = [
        0.0f64,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        2.5,
        -2.5,
        3.0,
        1e300,
        -1e300,
        1e-300,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        9007199254740993.0,
        4503599627370495.5,
        9.223372036854776e18,
        -9.223372036854776e18,
        9.223372036854775e18,
        1.8446744073709552e19,
        2147483647.9,
        -2147483648.9,
        4294967295.5,
        65504.0,
        65520.0,
        6.1e-5,
        5.96e-8,
        2.98e-8,
    ]
    .iter()
    .map(|x| x.to_bits())
    .collect();
    v.extend([
        1,
        0x8000_0000_0000_0001,
        0x000f_ffff_ffff_ffff,
        0x0010_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0xfff8_0000_0000_0000,
        u64::MAX,
        i64::MIN as u64,
        i64::MAX as u64,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x0000_0001,
        0x007f_ffff,
        0x3f80_0000,
        0x4f00_0000,
        0xdf00_0000,
        0x5f80_0000,
        0x3c00,
        0x7bff,
        0xfc00,
        0x0001,
        0x7e00,
    ]);
    v
}

/// Pairs (a, b) of bit patterns: specials against specials, random bits,
/// doubles of nearby magnitude, small integers and floats in the low word.
fn inputs(rng: &mut Rng) -> (Vec<u64>, Vec<u64>) {
    let sp = specials();
    let (mut a, mut b) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 0..N {
        let (x, y) = match i % 6 {
            0 => (
                sp[rng.below(sp.len() as u64) as usize],
                sp[rng.below(sp.len() as u64) as usize],
            ),
            1 => (rng.next(), rng.next()),
            2 => {
                // Close magnitudes: cancellation in add/sub, quotients near 1.
                let x = rng.next();
                let y = (x & 0xfff0_0000_0000_0000) ^ (rng.next() & 0x800f_ffff_ffff_ffff);
                (x, y)
            }
            3 => {
                // Subnormals and numbers near the limits.
                let e = [0u64, 1, 2, 0x7fe, 0x7fd, 0x3ff][rng.below(6) as usize];
                let x = e << 52 | (rng.next() & 0x800f_ffff_ffff_ffff);
                (x, rng.next() >> rng.below(64))
            }
            4 => (
                (rng.next() as i64 >> rng.below(64)) as u64,
                (rng.next() as i64 >> rng.below(64)) as u64,
            ),
            _ => {
                // Floats of moderate size in the low word, and halves.
                let f = (rng.next() as i64 >> (rng.below(40) + 24)) as f32 * 0.37;
                (f.to_bits() as u64, rng.next() & 0xffff)
            }
        };
        a.push(x);
        b.push(y);
    }
    (a, b)
}

fn f64b(x: u64) -> f64 {
    f64::from_bits(x)
}

fn f32b(x: u64) -> f32 {
    f32::from_bits(x as u32)
}

/// An IEEE half (bits) as an f64, exactly.
fn half_value(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (e, m) = ((h >> 10 & 31) as i32, (h & 1023) as f64);
    sign * match e {
        0 => m * 2f64.powi(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + m) * 2f64.powi(e - 25),
    }
}

/// A finite f64 to half, nearest with ties to even, by search over the
/// (monotonic) positive halves: an oracle independent of the bit tricks.
fn to_half(x: f64) -> u16 {
    if x.is_nan() {
        return 0x7e00;
    }
    let sign = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    let (mut lo, mut hi) = (0u16, 0x7bffu16);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if half_value(mid) <= a {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (dl, dh) = (a - half_value(lo), half_value(hi) - a);
    let pick = if a >= half_value(hi) || dh < dl || (dh == dl && hi % 2 == 0) {
        hi
    } else {
        lo
    };
    sign | pick
}

/// What each output must hold for inputs (x, y); NaN results compare as NaN.
fn expected(name: &str, x: u64, y: u64) -> u64 {
    let (dx, dy, fx) = (f64b(x), f64b(y), f32b(x));
    let cmp = |d: f64, e: f64| {
        (d == e) as u64
            | ((d < e) as u64) << 1
            | ((d <= e) as u64) << 2
            | ((d >= e) as u64) << 3
            | ((d > e) as u64) << 4
            | ((d.is_nan() || e.is_nan()) as u64) << 5
    };
    match name {
        "dadd" => (dx + dy).to_bits(),
        "dsub" => (dx - dy).to_bits(),
        "dmul" => (dx * dy).to_bits(),
        "ddiv" => (dx / dy).to_bits(),
        "drsub" => (dy - dx).to_bits(),
        "dcmp" => cmp(dx, dy),
        "f2d" => (fx as f64).to_bits(),
        "d2f" => (dx as f32).to_bits() as u64,
        "l2d" => (x as i64 as f64).to_bits(),
        "ul2d" => (x as f64).to_bits(),
        "l2f" => (x as i64 as f32).to_bits() as u64,
        "ul2f" => (x as f32).to_bits() as u64,
        "d2lz" => dx as i64 as u64,
        "d2ulz" => dx as u64,
        "d2iz" => dx as i32 as i64 as u64,
        "d2uiz" => dx as u32 as u64,
        "f2lz" => fx as i64 as u64,
        "f2ulz" => fx as u64,
        "udiv" => x.checked_div(y).unwrap_or(0),
        "umod" => x.checked_rem(y).unwrap_or(0),
        "sdiv" if y == 0 => 0,
        "sdiv" => (x as i64).wrapping_div(y as i64) as u64,
        "smod" if y == 0 => 0,
        "smod" => (x as i64).wrapping_rem(y as i64) as u64,
        "uidiv" => (x as u32).checked_div(y as u32).unwrap_or(0) as u64,
        "idiv" if y as u32 == 0 => 0,
        "idiv" => (x as i32).wrapping_div(y as i32) as i64 as u64,
        "llsl" => x << (y & 63),
        "llsr" => x >> (y & 63),
        "lasr" => ((x as i64) >> (y & 63)) as u64,
        "f2h" => to_half(fx as f64) as u64,
        "h2f" => (half_value(x as u16) as f32).to_bits() as u64,
        "d2h" => to_half(dx) as u64,
        _ => unreachable!("{name}"),
    }
}

/// Whether a result is a NaN of the output's format.
fn is_nan(name: &str, v: u64) -> bool {
    match name {
        "dadd" | "dsub" | "dmul" | "ddiv" | "drsub" | "f2d" | "l2d" | "ul2d" => f64b(v).is_nan(),
        "d2f" | "l2f" | "ul2f" | "h2f" => f32b(v).is_nan(),
        "f2h" | "d2h" => v & 0x7c00 == 0x7c00 && v & 0x3ff != 0,
        _ => false,
    }
}

const OUTPUTS: [&str; 30] = [
    "dadd", "dsub", "dmul", "ddiv", "drsub", "dcmp", "f2d", "d2f", "l2d", "ul2d", "l2f", "ul2f",
    "d2lz", "d2ulz", "d2iz", "d2uiz", "f2lz", "f2ulz", "udiv", "umod", "sdiv", "smod", "uidiv",
    "idiv", "llsl", "llsr", "lasr", "f2h", "h2f", "d2h",
];

#[test]
fn arm_helpers_match_rust_bit_for_bit() {
    let mut rng = Rng(0xaeab_1234_5678_0003);
    let (a, b) = inputs(&mut rng);
    let bytes = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut ran = 0;
    for t in [Target::Armv7Linux, Target::ThumbV7emNone] {
        let Some(exe) = Exe::build("aeabi", "aeabi", t) else {
            continue;
        };
        ran += 1;
        std::fs::write(exe.file("a.npy"), npy("<u8", &[N as u64], &bytes(&a))).unwrap();
        std::fs::write(exe.file("b.npy"), npy("<u8", &[N as u64], &bytes(&b))).unwrap();
        exe.run_ok(&["-i", "a=a.npy", "-i", "b=b.npy", "-o", "out"]);
        let mut misses = Vec::new();
        for name in OUTPUTS {
            let image = std::fs::read(exe.file(&format!("out/{name}.npy"))).unwrap();
            let got: Vec<u64> = npy_data(&image)
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(got.len(), N);
            let mut bad = 0;
            for i in 0..N {
                let want = expected(name, a[i], b[i]);
                let ok = got[i] == want || (is_nan(name, want) && is_nan(name, got[i]));
                if !ok {
                    bad += 1;
                    if bad <= 3 {
                        misses.push(format!(
                            "  {name}({:#x}, {:#x}) = {:#x}, want {want:#x}",
                            a[i], b[i], got[i]
                        ));
                    }
                }
            }
            if bad > 3 {
                misses.push(format!("  {name}: {bad} of {N} differ"));
            }
        }
        assert!(misses.is_empty(), "{t}:\n{}", misses.join("\n"));
    }
    if ran == 0 {
        common::notice("no Arm runner: the helpers were not run");
    }
}
