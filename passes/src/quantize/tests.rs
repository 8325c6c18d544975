//! Unit tests of the quantize pass: the rewrite keeps the graph's meaning
//! within the format's error, sizes and fallbacks are as the report says,
//! and bad options are typed errors.

use smelt_ir::interp::Interpreter;
use smelt_ir::ops::Op;
use smelt_ir::ops::linalg::{GemmAttrs, Linalg};

use super::*;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn t(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), values(n, seed)).unwrap()
}

/// `y = Gemm<transB, alpha=0.5, beta=2>(MatMul(x, w1), w2, c)`: x `[2, k]`,
/// w1 `[k, 64]` (K-major, transposed when stored), w2 `[32, 64]`.
fn model(k: usize) -> Graph {
    let mut g = Graph::new();
    let x = g
        .add_input("x", TensorType::new(DType::F32, vec![2, k]))
        .unwrap();
    let w1 = g.add_const("w1", &t(&[k, 64], 1)).unwrap();
    let w2 = g.add_const("w2", &t(&[32, 64], 2)).unwrap();
    let c = g.add_const("c", &t(&[32], 3)).unwrap();
    let h = g
        .add_node(
            "mm",
            Op::Linalg(Linalg::MatMul),
            vec![Some(x), Some(w1)],
            vec!["h".into()],
        )
        .unwrap()[0];
    let gemm = GemmAttrs::new()
        .with_scales(0.5, 2.0)
        .with_trans(false, true);
    let y = g
        .add_node(
            "gemm",
            Op::Linalg(Linalg::Gemm(gemm)),
            vec![Some(h), Some(w2), Some(c)],
            vec!["y".into()],
        )
        .unwrap()[0];
    g.outputs = vec![y];
    g
}

fn run(g: &Graph, x: &Tensor) -> Vec<f32> {
    Interpreter::new(g).run(vec![x.clone()]).unwrap()[0]
        .as_slice::<f32>()
        .unwrap()
        .to_vec()
}

/// Normalised mean squared error of `got` against `want`.
fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    num / den
}

#[test]
fn every_scheme_keeps_the_meaning() {
    let x = t(&[2, 64], 9);
    let float = model(64);
    let want = run(&float, &x);
    // Per scheme, a bound on the NMSE: a few times the format's relative
    // step squared (f16 2^-11, bf16 2^-8, 8-bit 1/127, 5-bit 1/16 (q5_0)
    // or 1/31, 4-bit 1/8 or 1/15) summed over two layers.
    for (name, bound) in [
        ("f16", 1e-6),
        ("bf16", 1e-4),
        ("w8", 1e-3),
        ("q8_0", 1e-3),
        ("q5_0", 1e-2),
        ("q5_1", 1e-2),
        ("q4_0", 3e-2),
        ("q4_1", 3e-2),
    ] {
        let mut g = float.clone();
        let r =
            quantize_weights(&mut g, &QuantizeOptions::new(Scheme::parse(name).unwrap())).unwrap();
        assert_eq!(r.weights.len(), 2, "{name}");
        assert!(r.kept.is_empty(), "{name}: {:?}", r.kept);
        assert!(
            g.nodes
                .iter()
                .all(|n| n.op == Op::Weights(Weights::EncodedMatMul)),
            "{name}"
        );
        // The weights are stored [N, K]: w1 transposed.
        assert_eq!(r.weights[0].shape, vec![64, 64]);
        assert_eq!(r.weights[1].shape, vec![32, 64]);
        assert_eq!(r.before(), (64 * 64 + 32 * 64) * 4);
        assert_eq!(
            g.const_bytes(),
            r.after() + 32 * 4,
            "{name}: the f32 weights remain"
        );
        let e = nmse(&run(&g, &x), &want);
        assert!(e < bound, "{name}: nmse {e} >= {bound}");
        assert!(e > 0.0 || name == "f16", "{name}: suspiciously exact");
    }
}

#[test]
fn sizes_follow_the_formats() {
    let expect = [
        ("f16", 2.0),
        ("bf16", 2.0),
        ("q8_0", 34.0 / 32.0),
        ("q4_0", 18.0 / 32.0),
        ("q4_1", 20.0 / 32.0),
        ("q5_0", 22.0 / 32.0),
        ("q5_1", 24.0 / 32.0),
    ];
    for (name, bytes_per) in expect {
        let mut g = model(64);
        let r =
            quantize_weights(&mut g, &QuantizeOptions::new(Scheme::parse(name).unwrap())).unwrap();
        let want = ((64 * 64 + 32 * 64) as f64 * bytes_per) as usize;
        assert_eq!(r.after(), want, "{name}");
    }
    // w8: one byte per weight plus one f32 scale per output channel.
    let mut g = model(64);
    let r = quantize_weights(&mut g, &QuantizeOptions::new(Scheme::W8)).unwrap();
    assert_eq!(r.after(), 64 * 64 + 64 * 4 + 32 * 64 + 32 * 4);
    assert_eq!(r.weights[0].encoding, "affine(i8,axis=0)");
}

#[test]
fn rows_that_do_not_fit_fall_back() {
    let s = |n| Scheme::parse(n).unwrap();
    let (ty, why) = s("q6_k").storage(8, 96).unwrap();
    assert_eq!(ty.encoding, Encoding::Block(BlockFormat::Q8_0));
    assert!(why.unwrap().contains("256"));
    let (ty, _) = s("q4_k").storage(8, 64).unwrap();
    assert_eq!(ty.encoding, Encoding::Block(BlockFormat::Q5_0));
    let (ty, _) = s("tq2_0").storage(8, 64).unwrap();
    assert_eq!(ty.encoding, Encoding::Block(BlockFormat::Q4_0));
    let (ty, why) = s("q8_0").storage(8, 48).unwrap();
    assert_eq!(ty, TensorType::new(DType::F16, vec![8, 48]));
    assert!(why.unwrap().contains("32"));
    let (ty, why) = s("q4_k").storage(8, 512).unwrap();
    assert_eq!(ty.encoding, Encoding::Block(BlockFormat::Q4K));
    assert!(why.is_none());
    // A whole graph: K = 48 keeps f16 and says so.
    let mut g = model(48);
    let r = quantize_weights(&mut g, &QuantizeOptions::new(s("q8_0"))).unwrap();
    let mm = &r.weights[0];
    assert_eq!(
        (mm.encoding.as_str(), mm.shape.clone()),
        ("f16", vec![64, 48])
    );
    assert!(mm.fallback.is_some());
    assert!(r.to_string().contains("fallback"), "{r}");
}

#[test]
fn skipped_nodes_stay_float() {
    let mut g = model(64);
    let opts = QuantizeOptions::new(Scheme::F16).skip(["gemm"]);
    let r = quantize_weights(&mut g, &opts).unwrap();
    assert_eq!(r.weights.len(), 1);
    assert_eq!(
        r.kept,
        vec![("gemm".to_string(), "--quantize-skip".to_string())]
    );
    assert!(matches!(g.nodes[1].op, Op::Linalg(Linalg::Gemm(_))));
    let e = quantize_weights(
        &mut model(64),
        &QuantizeOptions::new(Scheme::F16).skip(["nope"]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn unknown_schemes_list_the_valid_ones() {
    let e = Scheme::parse("q3").unwrap_err().to_string();
    assert!(
        e.contains("'q3'") && e.contains("q8_0") && e.contains("w8"),
        "{e}"
    );
    for n in Scheme::NAMES {
        assert_eq!(Scheme::parse(n).unwrap().name(), n);
    }
}

#[test]
fn bytes_by_encoding_counts_every_constant() {
    let mut g = model(64);
    quantize_weights(
        &mut g,
        &QuantizeOptions::new(Scheme::parse("q8_0").unwrap()),
    )
    .unwrap();
    let by = bytes_by_encoding(&g);
    assert_eq!(
        by,
        vec![
            ("f32".to_string(), 1, 32 * 4),
            ("q8_0".to_string(), 2, (64 * 64 + 32 * 64) / 32 * 34),
        ]
    );
}
