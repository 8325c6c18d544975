//! Tests of encodings: sizes, GGUF codes, text form, size errors, the
//! verifier's and the dispatch gate's refusals, and the decoders against the
//! `gguf` package's reference vectors.

use super::*;
use crate::graph::{Bytes, Graph, TensorType};
use crate::ops::Op;
use crate::tensor::Tensor;

/// (format, block length, block bytes, GGUF type code). The codes and sizes
/// are `gguf.GGMLQuantizationType` and `gguf.GGML_QUANT_SIZES` of the `gguf`
/// Python package 0.19.0 (= `ggml_type` and `sizeof(block_*)` in ggml's
/// `ggml.h` / `ggml-common.h`).
const TABLE: [(BlockFormat, usize, usize, u32); 12] = [
    (BlockFormat::Q8_0, 32, 34, 8),
    (BlockFormat::Q4_0, 32, 18, 2),
    (BlockFormat::Q4_1, 32, 20, 3),
    (BlockFormat::Q5_0, 32, 22, 6),
    (BlockFormat::Q5_1, 32, 24, 7),
    (BlockFormat::Q2K, 256, 84, 10),
    (BlockFormat::Q3K, 256, 110, 11),
    (BlockFormat::Q4K, 256, 144, 12),
    (BlockFormat::Q5K, 256, 176, 13),
    (BlockFormat::Q6K, 256, 210, 14),
    (BlockFormat::TQ1_0, 256, 54, 34),
    (BlockFormat::TQ2_0, 256, 66, 35),
];

#[test]
fn block_sizes_and_gguf_codes() {
    assert_eq!(BlockFormat::ALL.len(), TABLE.len());
    for (f, len, bytes, code) in TABLE {
        assert_eq!(f.block_len(), len, "{f}");
        assert_eq!(f.block_bytes(), bytes, "{f}");
        assert_eq!(f.gguf_type(), code, "{f}");
        assert_eq!(BlockFormat::from_gguf_type(code), Some(f));
        assert_eq!(BlockFormat::from_name(f.name()), Some(f));
        // Two rows of two blocks each.
        let ty = TensorType::encoded(DType::F32, vec![2, 2 * len], Encoding::Block(f)).unwrap();
        assert_eq!(ty.bytes().unwrap(), 4 * bytes, "{f}");
    }
    assert_eq!(
        BlockFormat::from_gguf_type(0),
        None,
        "F32 is an element type"
    );
    assert_eq!(BlockFormat::from_name("Q4_0"), None, "names are lowercase");
}

#[test]
fn dense_sizes_are_unchanged() {
    for d in DType::ALL {
        let ty = TensorType::new(d, vec![3, 5]);
        assert_eq!(ty.bytes().unwrap(), 15 * d.elem_bytes());
        assert!(ty.is_dense());
    }
    assert_eq!(TensorType::new(DType::F32, vec![]).bytes().unwrap(), 4);
}

#[test]
fn block_size_errors_name_the_format_and_dim() {
    let err = TensorType::encoded(DType::F32, vec![4, 48], Encoding::Block(BlockFormat::Q4_0))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Encoding {
            encoding: Encoding::Block(BlockFormat::Q4_0),
            msg: "the innermost dimension is 48, not a multiple of the block length 32".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "encoding q4_0: the innermost dimension is 48, not a multiple of the block length 32"
    );
    // 256-element super-blocks: a hidden size of 576 fits Q8_0 but not Q4_K.
    let q8 = Encoding::Block(BlockFormat::Q8_0);
    assert_eq!(q8.storage_bytes(DType::F32, &[2, 576]).unwrap(), 36 * 34);
    let q4k = Encoding::Block(BlockFormat::Q4K);
    assert!(matches!(
        q4k.storage_bytes(DType::F32, &[2, 576]),
        Err(Error::Encoding { msg, .. }) if msg.contains("576")
    ));
    assert!(matches!(
        q8.storage_bytes(DType::F32, &[]),
        Err(Error::Encoding { .. })
    ));
    assert!(matches!(
        q8.storage_bytes(DType::I32, &[32]),
        Err(Error::Encoding { msg, .. }) if msg.contains("i32")
    ));
    assert!(matches!(
        q8.storage_bytes(DType::F32, &[usize::MAX / 2, 64]),
        Err(Error::Overflow(_))
    ));
    // Zero rows are fine: no blocks.
    assert_eq!(q4k.storage_bytes(DType::F32, &[0, 256]).unwrap(), 0);
}

fn affine(storage: AffineStorage, granularity: Granularity, zero_point: bool) -> Encoding {
    Encoding::Affine(Affine {
        storage,
        granularity,
        zero_point,
    })
}

#[test]
fn affine_layouts() {
    use AffineStorage::*;
    use Granularity::*;
    // i8 per tensor, no zero point: 6 values, 2 bytes of padding, 1 scale.
    let e = affine(I8, PerTensor, false);
    assert_eq!(e.storage_bytes(DType::F32, &[2, 3]).unwrap(), 6 + 2 + 4);
    // u8 per axis 0 with zero points: 8 + 2 scales + 2 zero points.
    let e = affine(U8, PerAxis { axis: 0 }, true);
    assert_eq!(e.storage_bytes(DType::F32, &[2, 4]).unwrap(), 8 + 8 + 2);
    // u4, 7 values: 4 bytes; blocks of 2 along axis 1 of [1,7]: 4 groups,
    // 16 bytes of scales, 2 bytes of zero points.
    let a = Affine {
        storage: U4,
        granularity: PerBlock { axis: 1, block: 2 },
        zero_point: true,
    };
    assert_eq!(
        a.layout(&[1, 7]).unwrap(),
        AffineLayout {
            numel: 7,
            groups: 4,
            values_bytes: 4,
            scales_offset: 4,
            zero_points_offset: Some(20),
            total: 22,
        }
    );
    // i16 per axis 1 of [3,2]: 12 bytes, 2 scales.
    let e = affine(I16, PerAxis { axis: 1 }, false);
    assert_eq!(e.storage_bytes(DType::F32, &[3, 2]).unwrap(), 12 + 8);
    for bad in [
        affine(I8, PerAxis { axis: 2 }, false),
        affine(I8, PerBlock { axis: 0, block: 0 }, false),
        affine(I8, PerBlock { axis: 5, block: 4 }, false),
    ] {
        assert!(
            matches!(
                bad.storage_bytes(DType::F32, &[2, 4]),
                Err(Error::Encoding { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn text_form_round_trips() {
    use AffineStorage::*;
    use Granularity::*;
    let cases = [
        (Encoding::Dense, "dense"),
        (Encoding::Block(BlockFormat::Q4_0), "q4_0"),
        (Encoding::Block(BlockFormat::Q6K), "q6_k"),
        (Encoding::Block(BlockFormat::TQ1_0), "tq1_0"),
        (affine(I8, PerTensor, false), "affine(i8)"),
        (affine(U8, PerTensor, true), "affine(u8,zp)"),
        (affine(I8, PerAxis { axis: 0 }, false), "affine(i8,axis=0)"),
        (
            affine(U4, PerBlock { axis: 1, block: 32 }, true),
            "affine(u4,axis=1,block=32,zp)",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
        assert_eq!(Encoding::parse(text).unwrap(), e);
    }
    for bad in [
        "q4",
        "Q4_0",
        "affine(i8",
        "affine(i3)",
        "affine(i8,block=4)",
        "affine(i8,zp,axis=0)",
        "affine(i8,axis=x)",
        "affine(i8,axis=0,axis=1)",
    ] {
        assert!(Encoding::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn display_adds_a_suffix_only_when_encoded() {
    assert_eq!(
        TensorType::new(DType::F32, vec![64, 32]).to_string(),
        "f32[64,32]"
    );
    let q =
        TensorType::encoded(DType::F32, vec![64, 32], Encoding::Block(BlockFormat::Q4_0)).unwrap();
    assert_eq!(q.to_string(), "f32[64,32] q4_0");
    let a = TensorType::encoded(
        DType::F32,
        vec![8, 4],
        affine(AffineStorage::I8, Granularity::PerAxis { axis: 0 }, true),
    )
    .unwrap();
    assert_eq!(a.to_string(), "f32[8,4] affine(i8,axis=0,zp)");
}

fn q8_weight() -> (TensorType, Bytes) {
    let ty =
        TensorType::encoded(DType::F32, vec![2, 32], Encoding::Block(BlockFormat::Q8_0)).unwrap();
    let mut bytes = vec![0u8; 68];
    // d = 1.0 (f16 0x3c00) in both blocks, q = 1..=32.
    for (b, block) in bytes.chunks_exact_mut(34).enumerate() {
        block[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        for (i, q) in block[2..].iter_mut().enumerate() {
            *q = (i + 1 + b) as u8;
        }
    }
    (ty, bytes.into())
}

#[test]
fn graph_refuses_encoded_operands_typed() {
    let mut g = Graph::new();
    let x = g
        .add_input("x", TensorType::new(DType::F32, vec![1, 2]))
        .unwrap();
    let (ty, bytes) = q8_weight();
    let w = g.add_const_bytes("w", ty.clone(), bytes.clone()).unwrap();
    // The constant itself verifies and prints with its encoding.
    crate::verify::verify(&g).unwrap();
    assert!(crate::print::print(&g).contains("%w: f32[2,32] q8_0 = const 68 bytes"));
    // Reading it as a dense tensor is refused, naming the constant.
    let err = g.const_value(w).unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "q8_0-encoded tensor not supported by the dense tensor decoder (constant 'w'); \
         dequantize it to a dense type first"
    );
    // A node reading it: no op declares encoded operands yet. Build the node
    // by hand (add_node would infer with the dense type) and verify.
    let dense = g
        .add_const_bytes(
            "wd",
            TensorType::new(DType::F32, vec![2, 32]),
            vec![0u8; 256].into(),
        )
        .unwrap();
    let op = Op::Linalg(crate::ops::linalg::Linalg::MatMul);
    let y = g
        .add_node("mm", op, vec![Some(x), Some(dense)], vec!["y".into()])
        .unwrap();
    g.outputs.push(y[0]);
    crate::verify::verify(&g).unwrap();
    g.nodes[0].inputs[1] = Some(w);
    let err = crate::verify::verify(&g).unwrap_err();
    assert!(
        matches!(err.root(), Error::UnsupportedEncoding { encoding, what }
            if *encoding == Encoding::Block(BlockFormat::Q8_0) && what == "input 1 ('w')"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("node 'mm' (MatMul): q8_0-encoded")
    );
    // Encoded graph inputs and outputs are refused too.
    let mut g = Graph::new();
    g.add_input("x", ty.clone()).unwrap();
    assert!(matches!(
        crate::verify::verify(&g),
        Err(Error::UnsupportedEncoding { what, .. }) if what == "graph input 'x'"
    ));
    let mut g = Graph::new();
    let w = g.add_const_bytes("w", ty, bytes).unwrap();
    g.outputs.push(w);
    assert!(matches!(
        crate::verify::verify(&g),
        Err(Error::UnsupportedEncoding { what, .. }) if what == "graph output 'w'"
    ));
}

#[test]
fn dispatch_refuses_encodings() {
    let (ty, bytes) = q8_weight();
    let r: Result<usize> = crate::dispatch_type!(&ty, "the test", T => std::mem::size_of::<T>());
    assert!(matches!(
        r,
        Err(Error::UnsupportedEncoding { what, .. }) if what == "the test"
    ));
    assert!(matches!(
        Tensor::from_typed_bytes(&ty, bytes.as_slice()),
        Err(Error::UnsupportedEncoding { .. })
    ));
    let dense = TensorType::new(DType::U16, vec![2]);
    let r: Result<usize> = crate::dispatch_type!(&dense, "the test", T => std::mem::size_of::<T>());
    assert_eq!(r.unwrap(), 2);
    assert_eq!(
        Tensor::from_typed_bytes(&dense, &[1, 0, 2, 0]).unwrap(),
        Tensor::from_vec(vec![2], vec![1u16, 2]).unwrap()
    );
    // The wrong byte count is an error, not a panic.
    assert!(dequantize(&ty, &bytes.as_slice()[..67]).is_err());
}

/// The blocks and expected values of `ir/tests/data/gguf/<name>.bin`
/// (written by `scripts/gguf_fixtures.py` with the `gguf` package).
fn fixture(f: BlockFormat) -> (Vec<u8>, Vec<f32>) {
    let path = format!(
        "{}/tests/data/gguf/{}.bin",
        env!("CARGO_MANIFEST_DIR"),
        f.name()
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let per_block = f.block_bytes() + 4 * f.block_len();
    assert_eq!(data.len() % per_block, 0, "{path}");
    let split = data.len() / per_block * f.block_bytes();
    let values = data[split..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data[..split].to_vec(), values)
}

#[test]
fn block_decoders_match_gguf_bit_for_bit() {
    for f in BlockFormat::ALL {
        let (blocks, want) = fixture(f);
        let ty = TensorType::encoded(DType::F32, vec![want.len()], Encoding::Block(f)).unwrap();
        let got = dequantize(&ty, &blocks).unwrap();
        let got = got.as_slice::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{f}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{f} element {i}: {g} vs {w}");
        }
    }
}

#[test]
fn block_rows_decode_in_row_major_order() {
    // Two rows of one Q8_0 block each give the same values as one row of two.
    let (ty, bytes) = q8_weight();
    let rows = dequantize(&ty, bytes.as_slice()).unwrap();
    let flat = TensorType::encoded(DType::F32, vec![64], ty.encoding).unwrap();
    let flat = dequantize(&flat, bytes.as_slice()).unwrap();
    assert_eq!(rows.shape(), &[2, 32]);
    assert_eq!(
        rows.as_slice::<f32>().unwrap(),
        flat.as_slice::<f32>().unwrap()
    );
    assert_eq!(rows.as_slice::<f32>().unwrap()[33], 2.0 + 1.0);
}

/// Bytes of an affine constant laid out by hand: values, padding, scales,
/// zero points.
fn affine_bytes(values: &[u8], scales: &[f32], zps: &[u8]) -> Vec<u8> {
    let mut b = values.to_vec();
    b.resize(values.len().next_multiple_of(4), 0);
    for s in scales {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b.extend_from_slice(zps);
    b
}

#[test]
fn affine_decoders_follow_dequantize_linear() {
    use AffineStorage::*;
    use Granularity::*;
    let check = |e: Encoding, shape: Vec<usize>, bytes: Vec<u8>, want: &[f32]| {
        let ty = TensorType::encoded(DType::F32, shape, e).unwrap();
        let got = dequantize(&ty, &bytes).unwrap();
        assert_eq!(got.as_slice::<f32>().unwrap(), want, "{e}");
    };
    // i8 per tensor with a zero point (the interpreter's DequantizeLinear test).
    check(
        affine(I8, PerTensor, true),
        vec![3],
        affine_bytes(&[0, 3, 0x80], &[0.5], &[1]),
        &[-0.5, 1.0, -64.5],
    );
    // u8 per axis 0: row r scaled by scales[r], minus zero point zps[r].
    check(
        affine(U8, PerAxis { axis: 0 }, true),
        vec![2, 2],
        affine_bytes(&[10, 12, 10, 12], &[1.0, 0.5], &[10, 12]),
        &[0.0, 2.0, -1.0, 0.0],
    );
    // i4 per axis 1 of [2,3]: nibbles low first; -8, 7, -1, 1, 2, 3.
    check(
        affine(I4, PerAxis { axis: 1 }, false),
        vec![2, 3],
        affine_bytes(&[0x78, 0x1f, 0x32], &[1.0, 2.0, 4.0], &[]),
        &[-8.0, 14.0, -4.0, 1.0, 4.0, 12.0],
    );
    // u4 blocks of 2 along axis 1 of [1,3]: groups {0,1} and {2}; the zero
    // points 1 and 2 share one byte.
    check(
        affine(U4, PerBlock { axis: 1, block: 2 }, true),
        vec![1, 3],
        affine_bytes(&[0x53, 0x04], &[1.0, 0.25], &[0x21]),
        &[2.0, 4.0, 0.5],
    );
    // i16 per tensor without zero point, and a per-block axis 0 case:
    // blocks of 2 rows of [3,2] give scale rows {0,1} and {2}.
    check(
        affine(I16, PerTensor, false),
        vec![2],
        affine_bytes(&[0x00, 0x80, 0xff, 0x7f], &[1.0], &[]),
        &[-32768.0, 32767.0],
    );
    check(
        affine(U8, PerBlock { axis: 0, block: 2 }, false),
        vec![3, 2],
        affine_bytes(&[1, 2, 3, 4, 5, 6], &[1.0, 10.0, 100.0, 1000.0], &[]),
        &[1.0, 20.0, 3.0, 40.0, 500.0, 6000.0],
    );
}

#[test]
fn dense_dequantize_is_the_dense_decoder() {
    let ty = TensorType::new(DType::I8, vec![2]);
    let t = dequantize(&ty, &[0xff, 2]).unwrap();
    assert_eq!(t, Tensor::from_vec(vec![2], vec![-1i8, 2]).unwrap());
}
