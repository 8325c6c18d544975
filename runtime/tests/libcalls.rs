//! The C library functions the runtime provides for generated code, run on
//! every target through hand-written models and compared bit for bit with
//! Rust's own (`f32::floor`, `f64::mul_add`, `copy_within`, …): special
//! values (NaN, infinities, signed zeros, subnormals, halfway cases), the
//! double-rounding traps of a software fmaf, and random bit patterns.

mod common;

use common::{Exe, Rng, f32_bytes, f64_bytes, i64_bytes, npy, npy_data};
use smelt_runtime::Target;

const N: usize = 4096;

fn f32_inputs(rng: &mut Rng) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let specials: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.0,
        -1.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        3.5,
        -3.5,
        0.49999997,
        -0.49999997,
        0.50000006,
        1.0000001,
        -1.0000001,
        0.99999994,
        -0.99999994,
        8388607.5,
        -8388607.5,
        8388608.0,
        -8388608.0,
        8388609.0,
        4194303.5,
        4194304.5,
        16777216.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::from_bits(0x007f_ffff),
        1e-30,
        -1e-30,
        1e30,
        123.456,
        -123.456,
        2.0,
        4.0,
        0.25,
    ];
    let mut a = specials.clone();
    let mut b: Vec<f32> = specials.iter().rev().copied().collect();
    let mut c: Vec<f32> = specials.iter().map(|x| -x * 0.5).collect();
    let pow2 = |e: i32| 2f32.powi(e);
    while a.len() < N {
        let sign = |rng: &mut Rng| if rng.next() & 1 == 0 { 1.0f32 } else { -1.0 };
        match a.len() % 6 {
            // Random bit patterns: all exponents, NaNs and subnormals included.
            0 => {
                a.push(f32::from_bits(rng.next() as u32));
                b.push(f32::from_bits(rng.next() as u32));
                c.push(f32::from_bits(rng.next() as u32));
            }
            // Fractions around integers, halfway cases included.
            1 => {
                let k = rng.below(25) as i32;
                a.push((rng.next() as i32 >> 7) as f32 * pow2(-k));
                b.push(f32::from_bits(rng.next() as u32 & 0xbfff_ffff));
                c.push(f32::from_bits(rng.next() as u32 & 0xbfff_ffff));
            }
            // fmaf double rounding: x*y is just below half an ulp of an odd
            // z, so x*y + z rounded to double is exactly halfway and ties to
            // even would round the wrong way.
            2 => {
                let k = rng.below(200) as i32 - 100;
                let s = sign(rng);
                let m = (rng.below(1 << 22) * 2 + 1) as f32;
                a.push(s * pow2(k - 24) * (1.0 + pow2(-23)));
                b.push(1.0 - pow2(-23));
                c.push(s * pow2(k) * (1.0 + m * pow2(-23)));
            }
            // The same below 2^-126, where the float result is subnormal and
            // the halfway point moves up.
            3 => {
                let s = sign(rng);
                let j = rng.below(1 << 22) as u32;
                a.push(s * pow2(-75) * (1.0 + pow2(-23)));
                b.push(pow2(-75) * (1.0 - pow2(-23)));
                c.push(s * f32::from_bits(2 * j + 1));
            }
            // Cancellation: z = -round(x*y), so the result is the product's
            // rounding error.
            4 => {
                let x = f32::from_bits(rng.next() as u32 & 0x3fff_ffff | 0x0800_0000);
                let y = f32::from_bits(rng.next() as u32 & 0x3fff_ffff | 0x0800_0000);
                a.push(x);
                b.push(y);
                c.push(-(x * y));
            }
            // Moderate magnitudes.
            _ => {
                a.push((rng.next() as i32) as f32 * pow2(-(rng.below(40) as i32)));
                b.push((rng.next() as i32) as f32 * pow2(-(rng.below(40) as i32)));
                c.push((rng.next() as i32) as f32 * pow2(-(rng.below(40) as i32)));
            }
        }
    }
    (a, b, c)
}

fn f64_inputs(rng: &mut Rng) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let specials: Vec<f64> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.0,
        -1.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999999999999994,
        -0.49999999999999994,
        4503599627370495.5,
        -4503599627370495.5,
        4503599627370496.0,
        4503599627370497.0,
        9007199254740992.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        f64::from_bits(0x8000_0000_0000_0001),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        1e-300,
        1e300,
        -123.456,
    ];
    let mut a = specials.clone();
    let mut b: Vec<f64> = specials.iter().rev().copied().collect();
    let mut c: Vec<f64> = specials.iter().map(|x| x * 0.75).collect();
    // Exact zeros: x*y = -z, with every sign combination; and z = +-0 with a
    // product that underflows (the zero takes the product's sign).
    for (x, y, z) in [
        (3.0, 5.0, -15.0),
        (-3.0, 5.0, 15.0),
        (0.0, -1.0, 0.0),
        (-0.0, 1.0, -0.0),
        (1e-200, -1e-200, 0.0),
        (-1e-200, -1e-200, -0.0),
        (1e-200, 1e-200, f64::from_bits(1)),
        (f64::MAX, 2.0, -f64::MAX),
        (f64::INFINITY, 0.0, 1.0),
        (f64::INFINITY, 1.0, f64::NEG_INFINITY),
    ] {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    while a.len() < N {
        match a.len() % 5 {
            0 => {
                a.push(f64::from_bits(rng.next()));
                b.push(f64::from_bits(rng.next()));
                c.push(f64::from_bits(rng.next()));
            }
            1 => {
                let k = rng.below(54) as i32;
                a.push((rng.next() as i64 >> 8) as f64 * 2f64.powi(-k));
                b.push(f64::from_bits(rng.next() & 0xbfff_ffff_ffff_ffff));
                c.push(f64::from_bits(rng.next() & 0xbfff_ffff_ffff_ffff));
            }
            // Cancellation: the result is the product's rounding error.
            2 => {
                let x = f64::from_bits(rng.next() & 0x3fff_ffff_ffff_ffff | 0x0100_0000_0000_0000);
                let y = f64::from_bits(rng.next() & 0x3fff_ffff_ffff_ffff | 0x0100_0000_0000_0000);
                a.push(x);
                b.push(y);
                c.push(-(x * y));
            }
            // Results in and around the subnormal range.
            3 => {
                let e = |rng: &mut Rng| (rng.below(60) + 480) << 52;
                let m = |rng: &mut Rng| rng.next() & 0x800f_ffff_ffff_ffff;
                a.push(f64::from_bits(e(rng) | m(rng)));
                b.push(f64::from_bits(e(rng) | m(rng)));
                c.push(f64::from_bits(rng.below(1 << 54) | (rng.next() & 1 << 63)));
            }
            // Near overflow.
            _ => {
                let m = |rng: &mut Rng| rng.next() & 0x800f_ffff_ffff_ffff;
                a.push(f64::from_bits((1023 + 512 + rng.below(3)) << 52 | m(rng)));
                b.push(f64::from_bits((1023 + 510 + rng.below(3)) << 52 | m(rng)));
                c.push(-f64::MAX * (rng.below(3) as f64 - 1.0));
            }
        }
    }
    (a, b, c)
}

fn read_output(exe: &Exe, name: &str) -> Vec<u8> {
    let image = std::fs::read(exe.file(&format!("out/{name}.npy")))
        .unwrap_or_else(|e| panic!("{}: output {name}: {e}", exe.target));
    npy_data(&image).to_vec()
}

/// The float types whose libcalls are checked, by bit pattern.
trait Float: Copy + std::fmt::Debug + std::fmt::LowerExp {
    fn bits(self) -> u64;
    fn from_le(b: &[u8]) -> Self;
    fn is_nan(self) -> bool;
}

impl Float for f32 {
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes(b.try_into().unwrap())
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Float for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn from_le(b: &[u8]) -> Self {
        f64::from_le_bytes(b.try_into().unwrap())
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Compares the output `name` of `exe` with `want` by bit pattern (any NaN
/// matches any NaN); lists the first misses, naming each by `inputs`.
fn check<T: Float>(exe: &Exe, name: &str, want: &[T], inputs: impl Fn(usize) -> String) {
    let got = read_output(exe, name);
    let size = got.len() / want.len();
    let mut misses = Vec::new();
    for (i, (g, &w)) in got.chunks(size).zip(want).enumerate() {
        let g = T::from_le(g);
        if g.bits() != w.bits() && !(g.is_nan() && w.is_nan()) {
            misses.push(format!(
                "  {name}({}) = {g:?} ({:#x}), want {w:?} ({:#x})",
                inputs(i),
                g.bits(),
                w.bits()
            ));
        }
    }
    assert!(
        misses.is_empty(),
        "{}: {} of {} results of {name} differ:\n{}",
        exe.target,
        misses.len(),
        want.len(),
        misses[..misses.len().min(10)].join("\n")
    );
}

/// Checks the float libcalls of one type in the outputs of `exe`: floor,
/// ceil, trunc, rint, nearbyint and sqrt (C names with `suffix`) of `x`
/// against Rust's `unary` (floor, ceil, trunc, round-ties-even, sqrt), and
/// fma of `x`, `y`, `z` against `fma`.
fn float_libcalls<T: Float>(
    exe: &Exe,
    suffix: &str,
    [x, y, z]: [&[T]; 3],
    unary: [fn(T) -> T; 5],
    fma: fn(T, T, T) -> T,
) {
    let [floor, ceil, trunc, round_even, sqrt] = unary;
    for (name, f) in [
        ("floor", floor),
        ("ceil", ceil),
        ("trunc", trunc),
        ("rint", round_even),
        ("nearbyint", round_even),
        ("sqrt", sqrt),
    ] {
        let want: Vec<T> = x.iter().map(|&v| f(v)).collect();
        check(exe, &format!("{name}{suffix}"), &want, |i| {
            format!("{:?}", x[i])
        });
    }
    let want: Vec<T> = (0..x.len()).map(|i| fma(x[i], y[i], z[i])).collect();
    check(exe, &format!("fma{suffix}"), &want, |i| {
        format!("{:e}, {:e}, {:e}", x[i], y[i], z[i])
    });
}

#[test]
fn float_libcalls_are_exact() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (a, b, c) = f32_inputs(&mut rng);
    let (da, db, dc) = f64_inputs(&mut rng);
    for t in Target::ALL {
        let Some(exe) = Exe::build("libcalls", "libcalls", t) else {
            continue;
        };
        let mut args = Vec::new();
        for (name, image) in [
            ("a", npy("<f4", &[N as u64], &f32_bytes(&a))),
            ("b", npy("<f4", &[N as u64], &f32_bytes(&b))),
            ("c", npy("<f4", &[N as u64], &f32_bytes(&c))),
            ("da", npy("<f8", &[N as u64], &f64_bytes(&da))),
            ("db", npy("<f8", &[N as u64], &f64_bytes(&db))),
            ("dc", npy("<f8", &[N as u64], &f64_bytes(&dc))),
        ] {
            std::fs::write(exe.file(&format!("{name}.npy")), image).unwrap();
            args.push(format!("--input={name}={name}.npy"));
        }
        args.push("-o".into());
        args.push("out".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        exe.run_ok(&args);

        float_libcalls(
            &exe,
            "f",
            [&a, &b, &c],
            [
                f32::floor,
                f32::ceil,
                f32::trunc,
                f32::round_ties_even,
                f32::sqrt,
            ],
            f32::mul_add,
        );
        float_libcalls(
            &exe,
            "",
            [&da, &db, &dc],
            [
                f64::floor,
                f64::ceil,
                f64::trunc,
                f64::round_ties_even,
                f64::sqrt,
            ],
            f64::mul_add,
        );
    }
}

#[test]
fn memory_functions_match_rust() {
    let mut rng = Rng(0x6d65_6d66_6e73_0002);
    let data: Vec<u8> = (0..256).map(|_| rng.next() as u8).collect();
    let mut ops: Vec<[i64; 4]> = Vec::new();
    for _ in 0..256 {
        let kind = rng.below(4) as i64;
        // Mostly short lengths (the tails and the 8-byte loop), some long.
        let n = if rng.below(3) == 0 {
            rng.below(257)
        } else {
            rng.below(48)
        };
        let a = rng.below(257 - n);
        let b = match kind {
            2 => rng.below(256),
            // Overlapping moves both ways, and equal prefixes to compare.
            1 | 3 if rng.below(2) == 0 => {
                (a as i64 + rng.below(17) as i64 - 8).clamp(0, 256 - n as i64) as u64
            }
            _ => rng.below(257 - n),
        };
        ops.push([kind, a as i64, b as i64, n as i64]);
    }
    // Replay in Rust.
    let mut buf = data.clone();
    let mut cmp = Vec::new();
    for &[kind, a, b, n] in &ops {
        let (a, b, n) = (a as usize, b as usize, n as usize);
        let mut r = 0i32;
        match kind {
            0 => buf[a..a + n].copy_from_slice(&data[b..b + n]),
            1 => buf.copy_within(b..b + n, a),
            2 => buf[a..a + n].fill(b as u8),
            _ => r = buf[a..a + n].cmp(&data[b..b + n]) as i32,
        }
        cmp.push(r);
    }
    let cmp_bytes: Vec<u8> = cmp.iter().flat_map(|x| x.to_le_bytes()).collect();
    for t in Target::ALL {
        let Some(exe) = Exe::build("memfns", "memfns", t) else {
            continue;
        };
        std::fs::write(exe.file("data.npy"), npy("|u1", &[256], &data)).unwrap();
        let flat: Vec<i64> = ops.iter().flatten().copied().collect();
        std::fs::write(
            exe.file("ops.npy"),
            npy("<i8", &[256, 4], &i64_bytes(&flat)),
        )
        .unwrap();
        exe.run_ok(&["-i", "data=data.npy", "-i", "ops=ops.npy", "-o", "out"]);
        // Output names ".buf" and "cmp/sign" become these file names.
        assert_eq!(
            read_output(&exe, "_.buf"),
            buf,
            "{}: memcpy/memmove/memset",
            exe.target
        );
        assert_eq!(
            read_output(&exe, "cmp_sign"),
            cmp_bytes,
            "{}: memcmp",
            exe.target
        );
    }
}
