//! Tests of parallel loops in schedules: a GEMM scheduled for several
//! threads computes the one-thread result bit for bit (the evaluator runs a
//! parallel loop's iterations last to first, so a dependence between them
//! would show), and [`legalize_parallel`] keeps only loops the code
//! generators can outline.

use crate::kernel::build::{add, i, load, var};
use crate::kernel::{
    Buf, MIN_PARALLEL_WORK, Program, Scalar, Stmt, VectorShape, legalize_parallel,
};
use crate::schedule::eval::{Eval, f32_bytes as bytes, rand_f32 as rand};
use crate::schedule::gemm::{Gemm, Init, Tiling, gemm, pack_b, strided_a};

/// The AVX-512 shape: 16 lanes, 32 registers, FMA (wide 8×3 tiles).
const AVX512: VectorShape = VectorShape {
    f32_lanes: 16,
    registers: 32,
    fma: true,
};

/// C = A·B (+ a per-column bias) for `threads` and `shape`; the program and
/// C's bytes.
fn run_gemm(m: usize, n: usize, k: usize, threads: u32, shape: VectorShape) -> (Program, Vec<u8>) {
    let (a, b, bias) = (rand(m * k, 1), rand(k * n, 2), rand(n, 3));
    let t = Tiling::for_rows(m, shape);
    let mut p = Program {
        threads,
        shape,
        ..Program::default()
    };
    let (packed, bp) = pack_b(t, k, n, |r, c| b[r * n + c], Buf::Const(0));
    p.consts.push(packed);
    let g = Gemm {
        m,
        n,
        k,
        tiling: t,
        a: strided_a(t, m, Buf::Input(0), i(0), k as i64, 1),
        b: bp,
        c: (Buf::Output(0), i(0), n as i64),
        init: Init::Col(Buf::Input(1), i(0)),
        act: None,
        residual: None,
    };
    p.body = gemm(&mut p, &g);
    legalize_parallel(&mut p);
    let mut ev = Eval::new(&p);
    ev.mem.insert(Buf::Input(0), bytes(&a));
    ev.mem.insert(Buf::Input(1), bytes(&bias));
    ev.mem.insert(Buf::Output(0), vec![0xff; m * n * 4]);
    ev.run();
    let c = ev.mem[&Buf::Output(0)].clone();
    (p, c)
}

fn parallel_loops(p: &Program) -> usize {
    p.body
        .iter()
        .filter(|s| matches!(s, Stmt::Parallel { .. }))
        .count()
}

#[test]
fn threaded_gemm_is_bit_identical_to_one_thread() {
    // Wide (column blocks win), tall (row blocks win), a GEMV, ragged edges.
    let shapes = [(16, 256, 128), (203, 24, 64), (1, 1000, 300), (37, 45, 300)];
    for (&(m, n, k), shape) in shapes
        .iter()
        .flat_map(|s| [(s, VectorShape::BASELINE), (s, AVX512)])
    {
        let (p1, c1) = run_gemm(m, n, k, 1, shape);
        assert_eq!(
            parallel_loops(&p1),
            0,
            "{m}x{n}x{k}: no threads, no parallel loop"
        );
        for threads in [2, 3] {
            let (pt, ct) = run_gemm(m, n, k, threads, shape);
            assert!(
                parallel_loops(&pt) > 0,
                "{m}x{n}x{k}: {threads} threads give a parallel loop:\n{}",
                pt.print()
            );
            assert!(c1 == ct, "{m}x{n}x{k}: {threads} threads differ from one");
        }
    }
}

#[test]
fn tiny_gemms_stay_sequential() {
    let (p, _) = run_gemm(4, 8, 4, 4, VectorShape::BASELINE);
    const { assert!(4 * 8 * 4 < MIN_PARALLEL_WORK) };
    assert_eq!(parallel_loops(&p), 0, "{}", p.print());
}

#[test]
fn legalize_keeps_only_outlinable_parallel_loops() {
    let mut p = Program {
        threads: 2,
        ..Program::default()
    };
    let (b, j, x) = (p.var(Scalar::I64), p.var(Scalar::I64), p.var(Scalar::F32));
    let store = |idx| Stmt::Store {
        buf: Buf::Output(0),
        index: idx,
        value: load(Buf::Input(0), var(j), Scalar::F32),
    };
    let par = |body| Stmt::Parallel {
        var: j,
        extent: 8,
        body,
    };
    p.body = vec![
        // A batch of one around a parallel loop: unrolled, b becomes 0.
        Stmt::for_loop(b, i(0), i(1), vec![par(vec![store(add(var(b), var(j)))])]),
        // A batch of two: the loop inside cannot be outlined.
        Stmt::for_loop(b, i(0), i(2), vec![par(vec![store(add(var(b), var(j)))])]),
        // Reads x, set outside the loop: demoted.
        Stmt::Set(x, crate::kernel::build::f(1.0, Scalar::F32)),
        par(vec![Stmt::Store {
            buf: Buf::Output(0),
            index: var(j),
            value: var(x),
        }]),
    ];
    legalize_parallel(&mut p);
    let text = p.print();
    assert_eq!(parallel_loops(&p), 1, "{text}");
    let Stmt::Parallel { body, .. } = &p.body[0] else {
        panic!("the unrolled batch's loop comes first:\n{text}");
    };
    assert_eq!(body[0], store(add(i(0), var(j))), "{text}");
    assert!(matches!(&p.body[1], Stmt::For { body, .. } if matches!(body[0], Stmt::For { .. })));
    assert!(matches!(p.body[3], Stmt::For { .. }), "{text}");
}
