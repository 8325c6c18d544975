//! The vector dot products against a dot product (in f64) with the weight
//! as `dequantize` decodes it, in the evaluator, and their native code
//! against the evaluator: bit for bit where the target rounds `MulAdd`
//! twice as the evaluator does (the x86-64 baselines of both code
//! generators), within the summation bound with FMA (`+avx2,+fma`, native).

use smelt_ir::DType;
use smelt_ir::encoding::{dequantize, quantize};

use super::*;
use crate::difftest::{Rng, harness_dir, run_native};
use crate::eval::Eval;
use crate::kernel::VectorShape;
use crate::lower::{IoInfo, Lowered};
use crate::plan::MemoryPlan;

fn normal(r: &mut Rng) -> f32 {
    (0..4)
        .map(|_| (r.next() >> 40) as f32 / (1u64 << 24) as f32)
        .sum::<f32>()
        * 1.7
        - 3.4
}

fn weight(f: Option<BlockFormat>, n: usize, k: usize) -> TensorType {
    match f {
        Some(f) => TensorType::encoded(DType::F32, vec![n, k], Encoding::Block(f)).unwrap(),
        None => TensorType::new(DType::F16, vec![n, k]),
    }
}

/// One product `y[n] = Σ_k x[k] · w[n, k]`: the program (weight in const
/// 0, `x` in const 1, `y` in output 0), the decoded weight and `x`.
struct Case {
    p: Program,
    w: Vec<f32>,
    x: Vec<f32>,
    n: usize,
    k: usize,
}

fn case(ty: &TensorType, f32_lanes: u8, seed: u64) -> Option<Case> {
    let mut r = Rng(seed);
    let (n, k) = (ty.shape[0], ty.shape[1]);
    let wx: Vec<f32> = (0..n * k).map(|_| normal(&mut r)).collect();
    let bytes = quantize(ty, &wx).unwrap();
    let w = dequantize(ty, &bytes).unwrap().cast(DType::F32);
    let w = w.as_slice::<f32>().unwrap().to_vec();
    let x: Vec<f32> = (0..k).map(|_| normal(&mut r)).collect();
    let mut p = Program {
        shape: VectorShape {
            f32_lanes,
            ..VectorShape::BASELINE
        },
        ..Program::default()
    };
    p.consts.push(bytes);
    p.consts
        .push(x.iter().flat_map(|v| v.to_le_bytes()).collect());
    let (row, acc) = (p.var(Scalar::I64), p.var(Scalar::F32));
    let xrow = XRow {
        buf: Buf::Const(1),
        at: i(0),
    };
    let mut body = vector_dot(&mut p, &xrow, (Buf::Const(0), ty), var(row), acc)?;
    body.push(Stmt::Store {
        buf: Buf::Output(0),
        index: var(row),
        value: var(acc),
    });
    p.body = vec![Stmt::for_loop(row, i(0), i(n as i64), body)];
    Some(Case { p, w, x, n, k })
}

/// The kernel sums `k` products in f32 through at most `k + 3` roundings
/// each (product, lane sum, scale, lane reduction) of relative size 2^-24.
fn check_bound(c: &Case, y: &[f32], what: &str) {
    let wmax = c.w.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
    let xsum: f64 = c.x.iter().map(|v| f64::from(v.abs())).sum();
    let tol = (c.k + 3) as f64 * 2f64.powi(-24) * xsum * wmax;
    for (b, got) in y.iter().enumerate() {
        let want: f64 = (c.x.iter().zip(&c.w[b * c.k..b * c.k + c.k]))
            .map(|(&p, &q)| f64::from(p) * f64::from(q))
            .sum();
        let got = f64::from(*got);
        assert!(
            (got - want).abs() <= tol,
            "{what} y[{b}]: {got} vs {want} (tolerance {tol:e})"
        );
    }
}

fn eval(c: &Case) -> Vec<f32> {
    let mut ev = Eval::new(&c.p);
    ev.mem.insert(Buf::Output(0), vec![0; 4 * c.n]);
    ev.run();
    ev.f32s(Buf::Output(0))
}

/// The formats and shapes: Q8_0, Q4_0 and Q4_1 with one and three blocks per
/// row, f16 with `k` a multiple of 16.
fn shapes() -> Vec<(Option<BlockFormat>, usize)> {
    vec![
        (Some(BlockFormat::Q8_0), 32),
        (Some(BlockFormat::Q8_0), 96),
        (Some(BlockFormat::Q4_0), 32),
        (Some(BlockFormat::Q4_0), 96),
        (Some(BlockFormat::Q4_1), 32),
        (Some(BlockFormat::Q4_1), 96),
        (None, 48),
    ]
}

#[test]
fn vector_dot_is_a_dot_product_with_the_decoded_weight() {
    for lanes in [4, 16] {
        for (f, k) in shapes() {
            let ty = weight(f, 5, k);
            let c = case(&ty, lanes, 7 + k as u64).expect("a vector schedule");
            check_bound(&c, &eval(&c), &format!("{ty} at {lanes} lanes"));
        }
    }
    // No vector schedule: other formats, f16 rows not a multiple of 16,
    // f16 weights holding an infinity.
    let mut p = Program::default();
    let acc = p.var(Scalar::F32);
    let x = XRow {
        buf: Buf::Input(0),
        at: i(0),
    };
    for ty in [weight(Some(BlockFormat::Q5_0), 2, 32), weight(None, 2, 40)] {
        assert!(vector_dot(&mut p, &x, (Buf::Const(0), &ty), i(0), acc).is_none());
    }
    let ty = weight(None, 1, 16);
    p.consts.push([vec![0u8; 30], vec![0x00, 0x7c]].concat());
    assert!(vector_dot(&mut p, &x, (Buf::Const(0), &ty), i(0), acc).is_none());
}

const HARNESS: &str = r#"
#include <stdint.h>
#include <stdio.h>
int smelt_model_run(void **ins, void **outs, void *arena, void *state, void *fault);
static float y[4096];
static char arena[64];
int main(void) {
    long n = 0;
    if (fread(&n, 8, 1, stdin) != 1) return 2;
    void *outs[1] = {y};
    if (smelt_model_run(0, outs, arena, 0, 0) != 0) return 3;
    fwrite(y, 4, (size_t) n, stdout);
    return 0;
}
"#;

fn lowered(c: &Case) -> Lowered {
    Lowered {
        program: c.p.clone(),
        inputs: vec![],
        outputs: vec![IoInfo {
            name: "y".into(),
            dtype: DType::F32,
            shape: vec![c.n],
            bytes: 4 * c.n as u64,
        }],
        plan: MemoryPlan {
            arena_bytes: 64,
            lower_bound: 64,
            ..MemoryPlan::default()
        },
    }
}

fn floats(out: &[u8]) -> Vec<f32> {
    out.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn native_vector_dots_match_the_evaluator() {
    let Some(dir) = harness_dir("gemv", HARNESS) else {
        return;
    };
    let native = crate::llvm::LlvmTarget::new("x86_64-unknown-linux-gnu", Some("native"), None);
    let avx2 = crate::llvm::LlvmTarget::new("x86_64-unknown-linux-gnu", None, Some("+avx2,+fma"));
    let opts = crate::llvm::LlvmOptions::default();
    for (f, k) in shapes() {
        let ty = weight(f, 7, k);
        // The baselines, 128-bit vectors: bit for bit.
        let c = case(&ty, 4, 11 + k as u64).unwrap();
        let want = eval(&c);
        for (backend, obj) in crate::difftest::compile_both(&lowered(&c)) {
            let obj = obj.unwrap_or_else(|e| panic!("{ty} {backend}: {e}"));
            let got = floats(&run_native(
                &dir,
                &obj,
                backend,
                &(c.n as i64).to_le_bytes(),
            ));
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{ty} {backend}: {got:?} vs {want:?}"
            );
        }
        // LLVM's wider form with FMA: within the bound.
        let c = case(&ty, 16, 13 + k as u64).unwrap();
        for (what, t) in [("native", &native), ("avx2-fma", &avx2)] {
            let Ok(t) = t else { continue };
            let obj = crate::llvm::compile(&lowered(&c), t, &opts, "d")
                .unwrap_or_else(|e| panic!("{ty} llvm {what}: {e}"));
            let got = floats(&run_native(&dir, &obj, what, &(c.n as i64).to_le_bytes()));
            check_bound(&c, &got, &format!("{ty} llvm {what}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
