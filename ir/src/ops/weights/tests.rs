//! Unit tests of the weight ops: type rules, evaluation against the
//! composition that defines them, the verifier's admission of encoded
//! operands, and the IR text round trip.

use half::f16;

use super::*;
use crate::encoding::BlockFormat;
use crate::graph::{Bytes, Graph};
use crate::interp::Interpreter;

fn q8_0(shape: &[usize]) -> TensorType {
    TensorType::encoded(
        DType::F32,
        shape.to_vec(),
        Encoding::Block(BlockFormat::Q8_0),
    )
    .unwrap()
}

/// Q8_0 bytes for `rows` rows of 32 elements: block `r` has scale
/// `0.5 + r / 4` and quants `(r + 3 j) mod 17 - 8`.
fn q8_0_bytes(rows: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for r in 0..rows {
        let d = f16::from_f32(0.5 + r as f32 / 4.0);
        b.extend(d.to_bits().to_le_bytes());
        b.extend((0..32).map(|j| (((r + 3 * j) % 17) as i8 - 8) as u8));
    }
    b
}

fn inp(ty: &TensorType) -> Option<InferInput<'_>> {
    Some(InferInput { ty, value: None })
}

fn f32s(shape: &[usize], f: impl Fn(usize) -> f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(f).collect::<Vec<f32>>()).unwrap()
}

#[test]
fn decode_types() {
    let d = Weights::Decode;
    let w = q8_0(&[3, 64]);
    assert_eq!(
        d.infer(&[inp(&w)]).unwrap(),
        vec![TensorType::new(DType::F32, vec![3, 64])]
    );
    let h = TensorType::new(DType::F16, vec![5]);
    assert_eq!(
        d.infer(&[inp(&h)]).unwrap(),
        vec![TensorType::new(DType::F32, vec![5])]
    );
    // A dense f32 or integer tensor has nothing to decode.
    for bad in [
        TensorType::new(DType::F32, vec![3, 64]),
        TensorType::new(DType::I8, vec![3]),
    ] {
        let e = d.infer(&[inp(&bad)]).unwrap_err().to_string();
        assert!(e.contains("Decode reads"), "{e}");
    }
    assert!(d.infer(&[inp(&w), inp(&w)]).is_err());
}

#[test]
fn encoded_matmul_types() {
    let m = Weights::EncodedMatMul;
    let x = TensorType::new(DType::F32, vec![2, 7, 64]);
    let w = q8_0(&[3, 64]);
    let b = TensorType::new(DType::F32, vec![3]);
    assert_eq!(
        m.infer(&[inp(&x), inp(&w), inp(&b)]).unwrap(),
        vec![TensorType::new(DType::F32, vec![2, 7, 3])]
    );
    assert_eq!(
        m.infer(&[inp(&TensorType::new(DType::F32, vec![64])), inp(&w)])
            .unwrap(),
        vec![TensorType::new(DType::F32, vec![3])]
    );
    let check = |inputs: &[Option<InferInput<'_>>], want: &str| {
        let e = m.infer(inputs).unwrap_err().to_string();
        assert!(e.contains(want), "{e} lacks {want}");
    };
    // K disagrees.
    check(
        &[inp(&TensorType::new(DType::F32, vec![2, 32])), inp(&w)],
        "K dims",
    );
    // A 3-D weight.
    check(&[inp(&x), inp(&q8_0(&[1, 3, 64]))], "2-D");
    // An f16 activation.
    check(
        &[inp(&TensorType::new(DType::F16, vec![2, 64])), inp(&w)],
        "x must",
    );
    // A bias of the wrong length.
    check(
        &[inp(&x), inp(&w), inp(&TensorType::new(DType::F32, vec![4]))],
        "bias",
    );
    // A dense f32 weight is a plain MatMul's.
    check(
        &[inp(&x), inp(&TensorType::new(DType::F32, vec![3, 64]))],
        "needs no decoding",
    );
}

#[test]
fn eval_is_the_composition() {
    let w = f32s(&[3, 4], |i| i as f32 * 0.25 - 1.0);
    let wh = w.cast(DType::F16);
    let x = f32s(&[2, 4], |i| 1.0 - i as f32 * 0.5);
    let b = f32s(&[3], |i| i as f32);
    // y[m, n] = Σ_k x[m, k] w[n, k] + b[n], written out.
    let (xs, ws) = (x.as_slice::<f32>().unwrap(), w.as_slice::<f32>().unwrap());
    let want: Vec<f32> = (0..2)
        .flat_map(|m| (0..3).map(move |n| (m, n)))
        .map(|(m, n)| (0..4).map(|k| xs[m * 4 + k] * ws[n * 4 + k]).sum::<f32>() + n as f32)
        .collect();
    let got = Weights::EncodedMatMul
        .eval(&[Some(&x), Some(&wh), Some(&b)])
        .unwrap();
    assert_eq!(got[0].shape(), &[2, 3]);
    // The weights are multiples of 1/4, exact in f16.
    assert_eq!(got[0].as_slice::<f32>().unwrap(), want.as_slice());
    let d = Weights::Decode.eval(&[Some(&wh)]).unwrap();
    assert_eq!(d[0], w);
}

/// `y = EncodedMatMul(x, w_q8, b)` and `d = Decode(w_q8)` on an encoded
/// constant: the verifier admits the weight operand, the interpreter
/// decodes it with the reference decoder, and the text round-trips.
fn encoded_graph() -> Graph {
    let mut g = Graph::new();
    let x = g
        .add_input("x", TensorType::new(DType::F32, vec![2, 32]))
        .unwrap();
    let w = g
        .add_const_bytes("w", q8_0(&[3, 32]), Bytes::from(q8_0_bytes(3)))
        .unwrap();
    let b = g.add_const("b", &f32s(&[3], |i| i as f32 - 1.0)).unwrap();
    let y = g
        .add_node(
            "mm",
            Op::Weights(Weights::EncodedMatMul),
            vec![Some(x), Some(w), Some(b)],
            vec!["y".into()],
        )
        .unwrap()[0];
    let d = g
        .add_node(
            "dec",
            Op::Weights(Weights::Decode),
            vec![Some(w)],
            vec!["d".into()],
        )
        .unwrap()[0];
    g.outputs = vec![y, d];
    g
}

#[test]
fn interpreter_decodes_encoded_weights() {
    let g = encoded_graph();
    crate::verify::verify(&g).unwrap();
    let x = f32s(&[2, 32], |i| (i % 7) as f32 - 3.0);
    let out = Interpreter::new(&g).run(vec![x.clone()]).unwrap();
    let wty = q8_0(&[3, 32]);
    let wd = crate::encoding::dequantize(&wty, &q8_0_bytes(3)).unwrap();
    assert_eq!(out[1], wd);
    let b = f32s(&[3], |i| i as f32 - 1.0);
    let want = eval_encoded_matmul(&[Some(&x), Some(&wd), Some(&b)]).unwrap();
    assert_eq!(out[0], want);
}

#[test]
fn verifier_admits_only_the_weight_operand() {
    let enc = Encoding::Block(BlockFormat::Q8_0);
    let mm = Op::Weights(Weights::EncodedMatMul);
    assert!(crate::verify::reads_encoded(&mm, 1, enc));
    assert!(!crate::verify::reads_encoded(&mm, 0, enc));
    assert!(!crate::verify::reads_encoded(&mm, 2, enc));
    assert!(crate::verify::reads_encoded(
        &Op::Weights(Weights::Decode),
        0,
        enc
    ));
    assert!(!crate::verify::reads_encoded(
        &Op::Linalg(Linalg::MatMul),
        1,
        enc
    ));
}

#[test]
fn text_round_trips() {
    let g = encoded_graph();
    let text = crate::print::print(&g);
    assert!(text.contains("EncodedMatMul(%x, %w, %b)"), "{text}");
    assert!(text.contains("Decode(%w)"), "{text}");
    let back = crate::parse::parse(&text).unwrap();
    assert_eq!(crate::print::print(&back), text);
    assert!(Op::from_text("Decode", &[("k".into(), "1".into())], 1, 1).is_err());
}

#[test]
fn parses_only_in_the_internal_domain() {
    let attrs = crate::attrs::Attrs::new(Vec::new());
    let ctx = |domain| ParseCtx {
        op_type: "Decode",
        domain,
        opset: 1,
        attrs: &attrs,
        num_inputs: 1,
        num_outputs: 1,
    };
    assert!(Weights::parse(&ctx("")).is_none());
    assert_eq!(
        Weights::parse(&ctx(DOMAIN)).unwrap().unwrap(),
        Weights::Decode
    );
}

#[test]
fn macs_count_the_products() {
    let x = TensorType::new(DType::F32, vec![2, 64]);
    let w = q8_0(&[3, 64]);
    let out = [TensorType::new(DType::F32, vec![2, 3])];
    assert_eq!(
        Weights::EncodedMatMul.macs(&[Some(&x), Some(&w)], &out),
        2 * 3 * 64
    );
    assert_eq!(
        Weights::Decode.macs(&[Some(&w)], &[TensorType::new(DType::F32, vec![3, 64])]),
        192
    );
}

#[test]
fn encoded_gather_types_and_values() {
    let g = Weights::EncodedGather;
    let w = q8_0(&[4, 32]);
    let idx = TensorType::new(DType::I64, vec![2, 3]);
    assert_eq!(
        g.infer(&[inp(&w), inp(&idx)]).unwrap(),
        vec![TensorType::new(DType::F32, vec![2, 3, 32])]
    );
    let f_idx = TensorType::new(DType::F32, vec![3]);
    assert!(g.infer(&[inp(&w), inp(&f_idx)]).is_err());
    let w3 = q8_0(&[2, 2, 32]);
    assert!(g.infer(&[inp(&w3), inp(&idx)]).is_err());
    let dense = TensorType::new(DType::F32, vec![4, 32]);
    assert!(g.infer(&[inp(&dense), inp(&idx)]).is_err());
    // The rows of the decoded table, negative indices from the end.
    let decoded = crate::encoding::dequantize(&w, &q8_0_bytes(4)).unwrap();
    let ids = Tensor::from_vec(vec![3], vec![2i64, 0, -1]).unwrap();
    let got = g.eval(&[Some(&decoded), Some(&ids)]).unwrap();
    let want = Op::Layout(Layout::Gather { axis: 0 })
        .eval(&[Some(&decoded), Some(&ids)])
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(got[0].shape(), &[3, 32]);
}
