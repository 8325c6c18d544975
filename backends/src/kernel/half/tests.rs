//! The half conversions against the `half` crate, bit for bit: every f16
//! and bf16 pattern widened and narrowed back, and f32 values at every
//! rounding boundary (ties, subnormals, overflow, NaNs) narrowed; run by the
//! evaluator and, natively, by both code generators. And [`expand_halves`]
//! against the evaluator's own half semantics (the `half` crate).

use super::*;
use crate::difftest::{Rng, run_both_bytes};
use crate::eval::Eval;
use crate::kernel::build::{i, load, var};
use crate::kernel::{BinOp, Buf};

fn u16_bytes(v: impl IntoIterator<Item = u16>) -> Vec<u8> {
    v.into_iter().flat_map(|b| b.to_le_bytes()).collect()
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The program writing, for each `U16` pattern `k` of constant 0, the
/// widened value (`F32` bits, at byte `8k`) and the pattern widened and
/// narrowed again (`U16`, at byte `8k + 4`) for half type `ty`, into output
/// 0.
fn round_trip_program(ty: Scalar) -> (Program, usize) {
    let mut p = Program::default();
    p.consts.push(u16_bytes(0..=u16::MAX));
    let (k, x) = (p.var(Scalar::I64), p.var(Scalar::F32));
    let body = vec![
        Stmt::Set(x, widen(ty, load(Buf::Const(0), var(k), Scalar::U16))),
        Stmt::Store {
            buf: Buf::Output(0),
            index: mul(var(k), i(2)),
            value: var(x),
        },
        Stmt::Store {
            buf: Buf::Output(0),
            index: add(mul(var(k), i(4)), i(2)),
            value: narrow(ty, var(x)),
        },
    ];
    p.body = vec![Stmt::for_loop(k, i(0), i(65536), body)];
    (p, 8 * 65536)
}

/// What is wrong in the round-trip output `out` of half type `ty`.
fn round_trip_errors(ty: Scalar, out: &[u8]) -> Vec<String> {
    let mut errors = Vec::new();
    for (h, c) in (0..=u16::MAX).zip(out.chunks_exact(8)) {
        let wide = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let back = u16::from_le_bytes([c[4], c[5]]);
        let (want, nan) = if ty == Scalar::BF16 {
            let v = half::bf16::from_bits(h);
            (v.to_f32().to_bits(), v.is_nan())
        } else {
            let v = half::f16::from_bits(h);
            (v.to_f32().to_bits(), v.is_nan())
        };
        // A NaN comes back quiet, its sign and payload kept.
        let quiet = if ty == Scalar::BF16 { 0x40 } else { 0x200 };
        let want_back = if nan { h | quiet } else { h };
        if (wide != want || back != want_back) && errors.len() < 10 {
            errors.push(format!(
                "{ty:?} {h:#06x}: widened {wide:#010x} (want {want:#010x}), back {back:#06x}"
            ));
        }
    }
    errors
}

#[test]
fn every_half_pattern_widens_exactly_and_narrows_back() {
    for ty in [Scalar::F16, Scalar::BF16] {
        let (p, n) = round_trip_program(ty);
        let mut ev = Eval::new(&p);
        ev.mem.insert(Buf::Output(0), vec![0; n]);
        ev.run();
        let errors = round_trip_errors(ty, &ev.mem[&Buf::Output(0)]);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        for (backend, out) in run_both_bytes("half-round-trip", p, n) {
            let errors = round_trip_errors(ty, &out);
            assert!(errors.is_empty(), "{backend}: {}", errors.join("\n"));
        }
    }
}

/// f32 values at every boundary of rounding to f16 and bf16: each half
/// value, the midpoints between neighbours and the f32 values next to them
/// (ties to even both ways), f32 subnormals, the overflow threshold, the
/// infinities, NaNs with payloads, and random bit patterns.
fn rounding_cases() -> Vec<f32> {
    let mut v = Vec::new();
    let around = |x: f32, v: &mut Vec<f32>| {
        for y in [x, x.next_up(), x.next_down()] {
            v.extend([y, -y]);
        }
    };
    for h in 0..0x7c00u16 {
        let (a, b) = (
            half::f16::from_bits(h).to_f64(),
            half::f16::from_bits(h + 1).to_f64(),
        );
        around(a as f32, &mut v);
        around(((a + b) / 2.0) as f32, &mut v);
    }
    for b in 0..0x7f80u16 {
        let (a, c) = (
            half::bf16::from_bits(b).to_f64(),
            half::bf16::from_bits(b + 1).to_f64(),
        );
        around(((a + c) / 2.0) as f32, &mut v);
    }
    for x in [
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        65504.0,
        65519.996,
        65520.0,
        65536.0,
        f32::MAX,
        f32::INFINITY,
        2f32.powi(-25),
        2f32.powi(-24),
        3.0 * 2f32.powi(-26),
    ] {
        around(x, &mut v);
    }
    for bits in [
        0x7fc0_0000u32,
        0x7f80_0001,
        0x7fbf_ffff,
        0x7fa0_2000,
        0xffc0_1234,
    ] {
        v.push(f32::from_bits(bits));
    }
    let mut r = Rng(0x7a3b_91c5_d2e4_f607);
    v.extend((0..20_000).map(|_| f32::from_bits((r.next() >> 32) as u32)));
    v
}

/// The program narrowing each f32 of constant 0 to f16 (output 0, `U16`
/// at element `2k`) and to bf16 (element `2k + 1`).
fn narrow_program(xs: &[f32]) -> (Program, usize) {
    let mut p = Program::default();
    p.consts
        .push(xs.iter().flat_map(|x| x.to_le_bytes()).collect());
    let (k, x) = (p.var(Scalar::I64), p.var(Scalar::F32));
    let at = |off| add(mul(var(k), i(2)), i(off));
    let body = vec![
        Stmt::Set(x, load(Buf::Const(0), var(k), Scalar::F32)),
        Stmt::Store {
            buf: Buf::Output(0),
            index: at(0),
            value: f32_to_half(var(x)),
        },
        Stmt::Store {
            buf: Buf::Output(0),
            index: at(1),
            value: f32_to_bf16(var(x)),
        },
    ];
    p.body = vec![Stmt::for_loop(k, i(0), i(xs.len() as i64), body)];
    (p, 4 * xs.len())
}

fn narrow_errors(xs: &[f32], out: &[u8]) -> Vec<String> {
    let got = u16s(out);
    let mut errors = Vec::new();
    for (k, &x) in xs.iter().enumerate() {
        let want = [
            half::f16::from_f32(x).to_bits(),
            half::bf16::from_f32(x).to_bits(),
        ];
        if got[2 * k..2 * k + 2] != want && errors.len() < 10 {
            errors.push(format!(
                "{x:e} ({:#010x}): got {:#06x?}, want {want:#06x?}",
                x.to_bits(),
                &got[2 * k..2 * k + 2]
            ));
        }
    }
    errors
}

#[test]
fn narrowing_rounds_like_the_half_crate() {
    let xs = rounding_cases();
    let (p, n) = narrow_program(&xs);
    let mut ev = Eval::new(&p);
    ev.mem.insert(Buf::Output(0), vec![0; n]);
    ev.run();
    let errors = narrow_errors(&xs, &ev.mem[&Buf::Output(0)]);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    for (backend, out) in run_both_bytes("half-narrow", p, n) {
        let errors = narrow_errors(&xs, &out);
        assert!(errors.is_empty(), "{backend}: {}", errors.join("\n"));
    }
}

/// A program using the half types as lowering writes them: half loads,
/// arithmetic, variables and constants, casts between the half types and
/// `f64`, `f32`, `i32` and `bool`, bit casts, a half copy and stores to
/// half buffers. Inputs are constants; output 0 holds `U16`s per element:
/// `[copy, sum, f64→f16, i32→bf16, bf16→f16, f16 bits, (bf16→f32)·2 as f16,
/// f16→i32 as u16, is-nonzero]`.
fn half_program(f16s: &[u16], bf16s: &[u16], f64s: &[f64], i32s: &[i32]) -> (Program, usize) {
    let n = f16s.len();
    let mut p = Program::default();
    p.consts.push(u16_bytes(f16s.iter().copied()));
    p.consts.push(u16_bytes(bf16s.iter().copied()));
    p.consts
        .push(f64s.iter().flat_map(|x| x.to_le_bytes()).collect());
    p.consts
        .push(i32s.iter().flat_map(|x| x.to_le_bytes()).collect());
    let (k, acc) = (p.var(Scalar::I64), p.var(Scalar::F16));
    let h = || load(Buf::Const(0), var(k), Scalar::F16);
    let b = || load(Buf::Const(1), var(k), Scalar::BF16);
    const W: i64 = 9;
    let out = |slot: i64, value: Expr| Stmt::Store {
        buf: Buf::Output(0),
        index: add(mul(var(k), i(W)), i(slot)),
        value,
    };
    let body = vec![
        out(0, h()),
        Stmt::Set(
            acc,
            crate::kernel::build::bin(
                BinOp::Add,
                mul(h(), Expr::F(0.1, Scalar::F16)),
                cast(Scalar::F16, b()),
            ),
        ),
        out(1, var(acc)),
        out(
            2,
            cast(Scalar::F16, load(Buf::Const(2), var(k), Scalar::F64)),
        ),
        out(
            3,
            cast(Scalar::BF16, load(Buf::Const(3), var(k), Scalar::I32)),
        ),
        out(4, cast(Scalar::F16, b())),
        out(5, bitcast(Scalar::U16, h())),
        out(
            6,
            cast(
                Scalar::F16,
                mul(cast(Scalar::F32, b()), Expr::F(2.0, Scalar::F32)),
            ),
        ),
        out(7, cast(Scalar::U16, cast(Scalar::I32, h()))),
        out(8, cast(Scalar::U16, cast(Scalar::Bool, h()))),
    ];
    p.body = vec![Stmt::for_loop(k, i(0), i(n as i64), body)];
    (p, 2 * W as usize * n)
}

fn half_inputs() -> (Vec<u16>, Vec<u16>, Vec<f64>, Vec<i32>) {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut f16s: Vec<u16> = vec![0, 0x8000, 0x0001, 0x03ff, 0x3c00, 0x7bff, 0x7c00, 0xfe00];
    let mut bf16s: Vec<u16> = vec![0, 0x8000, 0x0001, 0x3f80, 0x7f7f, 0x7f80, 0xffc0, 0x4780];
    // Double rounding traps: 1 + 2^-11 + 2^-40 rounds up to f16, but to
    // 1 + 2^-11 (a tie, then down to 1) through f32 to nearest.
    let mut f64s = vec![
        1.0 + 2f64.powi(-11) + 2f64.powi(-40),
        -(1.0 + 2f64.powi(-11) + 2f64.powi(-40)),
        1.0 + 2f64.powi(-11),
        65519.99999,
        1e300,
        2f64.powi(-25) + 2f64.powi(-60),
        f64::NAN,
        -0.0,
    ];
    let mut i32s = vec![
        0,
        -1,
        (1 << 24) + (1 << 16) - 1,
        i32::MAX,
        i32::MIN,
        (1 << 24) + (1 << 16) + 1,
        257,
        -65536,
    ];
    for _ in 0..200 {
        f16s.push((r.next() >> 48) as u16);
        bf16s.push((r.next() >> 48) as u16);
        f64s.push(f64::from_bits(r.next() >> 2 | 0x3000_0000_0000_0000) - 1.5);
        i32s.push((r.next() >> 32) as i32 >> (r.next() % 24));
    }
    (f16s, bf16s, f64s, i32s)
}

/// Whether two `U16` outputs are the same, a NaN of either half type
/// matching any NaN (the NaN a cast makes is the hardware's).
fn same_half(a: u16, b: u16) -> bool {
    let nan = |v: u16| {
        (v & 0x7c00 == 0x7c00 && v & 0x3ff != 0) || (v & 0x7f80 == 0x7f80 && v & 0x7f != 0)
    };
    a == b || (nan(a) && nan(b))
}

#[test]
fn expansion_computes_what_the_half_types_mean() {
    let (f16s, bf16s, f64s, i32s) = half_inputs();
    let (p, n) = half_program(&f16s, &bf16s, &f64s, &i32s);
    let run = |p: &Program| {
        let mut ev = Eval::new(p);
        ev.mem.insert(Buf::Output(0), vec![0; n]);
        ev.run();
        u16s(&ev.mem[&Buf::Output(0)])
    };
    let want = run(&p);
    let mut x = p.clone();
    expand_halves(&mut x).unwrap();
    assert!(!has_halves(&x), "{}", x.print());
    assert!(check_expanded(&x).is_ok() && check_expanded(&p).is_err());
    let mut runs = vec![("evaluator", run(&x))];
    runs.extend(
        run_both_bytes("half-expand", x.clone(), n)
            .into_iter()
            .map(|(b, out)| (b, u16s(&out))),
    );
    for (who, got) in runs {
        let bad: Vec<String> = (got.iter().zip(&want).enumerate())
            .filter(|(_, (g, w))| !same_half(**g, **w))
            .take(10)
            .map(|(e, (g, w))| {
                format!(
                    "element {} slot {}: got {g:#06x}, want {w:#06x}",
                    e / 9,
                    e % 9
                )
            })
            .collect();
        assert!(bad.is_empty(), "{who}:\n{}\n{}", bad.join("\n"), x.print());
    }
    // The double-rounding trap rounds up, once.
    assert_eq!(want[2], 0x3c01);
    assert_eq!(want[9 + 2], 0xbc01);
    // A program without half types is left as it is.
    let (mut q, _) = narrow_program(&[1.0]);
    let before = q.clone();
    expand_halves(&mut q).unwrap();
    assert_eq!(q, before);
}
