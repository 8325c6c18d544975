//! Quantized ONNX weights stay quantized on import (`frontend/src/onnx/qdq.rs`)
//! on small models `tests/qdq/make_models.py` writes with the `onnx` package
//! (a `DequantizeLinear`'d int8 per-axis `MatMul` weight, a uint8 per-tensor
//! `Gemm` weight with a zero point, an int8 per-axis `Gemm` weight without
//! `transB`, an opset-21 blocked uint8 weight, the weight-only
//! `Mul(Cast(int8), scale)` form, int8 and uint8 `Conv` weights, an int16
//! weight, `INT4`/`UINT4` weights per axis and blocked, and
//! `com.microsoft::MatMulNBits` with 4 and 8 bits) and on the MLP example
//! quantized by onnxruntime's `quantize_static` (QDQ, per channel):
//!
//! - the imported graph holds the weights affine-encoded (no f32 constant
//!   of rank 2 or more is left) and reads them with `EncodedMatMul` or
//!   `Decode`; an `INT4` weight keeps the file's packed bytes;
//! - the interpreter on it matches onnxruntime, and matches the interpreter
//!   on the same model with its weights dequantized ahead of time exactly;
//! - native code (Cranelift and LLVM, x86_64) matches onnxruntime;
//! - the object is smaller than the dequantized model's by the weight
//!   bytes saved (printed with `-- --nocapture`).

#[path = "common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use smelt::{Backend, CompileOptions, Emit};
use smelt_frontend::Limits;
use smelt_frontend::npy::read_npz;
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::interp::Interpreter;
use smelt_ir::ops::weights::Weights;
use smelt_ir::{Encoding, Graph, Op, ValueDef};

/// The models, how many weights each keeps encoded, and how many of them
/// compiled code reads through a `Decode` (a `Conv` weight) rather than
/// with `EncodedMatMul`.
const CASES: [(&str, usize, usize); 15] = [
    ("matmul_i8_axis", 1, 0),
    ("gemm_u8_tensor_zp", 1, 0),
    ("gemm_i8_axis_notrans", 1, 0),
    ("matmul_u8_blocked", 1, 0),
    ("cast_mul_i8", 1, 0),
    ("mlp_qdq", 3, 0),
    ("nbits_zp_padded", 1, 0),
    ("nbits_bias", 1, 0),
    ("conv_i8_axis", 1, 1),
    ("conv_u8_tensor_zp", 1, 1),
    ("matmul_i16_axis", 1, 0),
    ("conv_i4_axis", 1, 1),
    ("matmul_u4_blocked", 1, 0),
    ("nbits8_zp_padded", 1, 0),
    ("nbits8_bias", 1, 0),
];

/// The models' folder, written once per test process; `None` (after
/// saying so) without the repository's Python.
fn models() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        targets::python_models(
            "qdq",
            "tests/qdq/make_models.py",
            &[targets::root().join("examples/mlp")],
        )
    })
    .as_deref()
}

fn import(path: &Path) -> Graph {
    load(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Affine-encoded constants of `g`, dense float constants of rank 2 or
/// more, and the nodes that read a weight in its encoding.
fn census(g: &Graph) -> (usize, usize, usize) {
    let consts = g
        .values
        .iter()
        .filter(|v| matches!(v.def, ValueDef::Const(_)));
    let affine = consts
        .clone()
        .filter(|v| matches!(v.ty.encoding, Encoding::Affine(_)))
        .count();
    let dense_2d = consts
        .filter(|v| v.ty.is_dense() && v.ty.dtype.is_float() && v.ty.shape.len() >= 2)
        .count();
    let readers = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Weights(Weights::Decode | Weights::EncodedMatMul)))
        .count();
    (affine, dense_2d, readers)
}

#[test]
fn imported_weights_stay_encoded_and_match_onnxruntime() {
    let Some(dir) = models() else { return };
    for (name, encoded, _) in CASES {
        let d = dir.join(name);
        let g = import(&d.join("model.onnx"));
        let (affine, dense_2d, readers) = census(&g);
        assert_eq!(affine, encoded, "{name}: encoded weights");
        assert_eq!(dense_2d, 0, "{name}: a float weight is left");
        assert_eq!(readers, encoded, "{name}: Decode/EncodedMatMul nodes");
        let x = targets::npz_inputs(&d.join("input.npz"), &g);
        let got = Interpreter::new(&g).run(x.clone()).unwrap();
        // `MatMulNBits` has no float twin (onnxruntime's contrib op).
        let float = d.join("float.onnx");
        let want_float = match float.exists() {
            true => Interpreter::new(&import(&float)).run(x).unwrap(),
            false => got.clone(),
        };
        let expected = read_npz(&d.join("expected.npz"), &Limits::default()).unwrap();
        for (k, &id) in g.outputs.iter().enumerate() {
            let out = &g.value(id).name;
            let ort = &expected.iter().find(|(n, _)| n == out).unwrap().1;
            let (a, f, o) = (
                got[k].to_f64_vec(),
                want_float[k].to_f64_vec(),
                ort.to_f64_vec(),
            );
            // The decoded weights are bit-identical to the dequantized ones.
            assert_eq!(a, f, "{name}: {out} differs from the dequantized model");
            for (j, (a, o)) in a.iter().zip(&o).enumerate() {
                assert!(
                    (a - o).abs() <= 1e-6 + 1e-5 * o.abs(),
                    "{name}: {out}[{j}]: interpreter {a} vs onnxruntime {o}"
                );
            }
        }
    }
}

/// Counts the compiled graph's `EncodedMatMul` and `Decode` nodes.
#[derive(Default)]
struct Products {
    encoded: usize,
    decode: usize,
}

impl smelt::Observer for Products {
    fn optimized(&mut self, graph: &Graph, _: &[(String, smelt_passes::Report)]) {
        for n in &graph.nodes {
            match n.op {
                Op::Weights(Weights::EncodedMatMul) => self.encoded += 1,
                Op::Weights(Weights::Decode) => self.decode += 1,
                _ => {}
            }
        }
    }
}

/// An `INT4` weight's encoded constant begins with the file's packed bytes
/// (`make_models.py` writes them to `wq.bin`): nothing is re-quantized.
#[test]
fn int4_weights_keep_the_files_packed_bytes() {
    let Some(dir) = models() else { return };
    let d = dir.join("conv_i4_axis");
    let packed = std::fs::read(d.join("wq.bin")).unwrap();
    let g = import(&d.join("model.onnx"));
    let enc: Vec<&[u8]> = g
        .values
        .iter()
        .filter(|v| matches!(v.ty.encoding, Encoding::Affine(_)))
        .filter_map(|v| match &v.def {
            ValueDef::Const(b) => Some(b.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(enc.len(), 1);
    assert_eq!(packed.len(), 68, "5·3·3·3 = 135 nibbles");
    assert_eq!(&enc[0][..packed.len()], &packed[..]);
}

/// `smelt inspect` shows the bytes by encoding (68 of the 88 are the 135
/// packed `INT4` values); `--quantize` on weights the model already quantizes says so.
#[test]
fn inspect_shows_the_imported_encodings() {
    let Some(dir) = models() else { return };
    let m = dir.join("conv_i4_axis/model.onnx");
    let out = targets::ok(
        targets::smelt(&["inspect", m.to_str().unwrap()]),
        "inspect conv_i4_axis",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("affine(i4,axis=0)        1 tensor(s)         88 B 100.0%"),
        "{text}"
    );
    let m = dir.join("mlp_qdq/model.onnx");
    let out = targets::ok(
        targets::smelt(&["inspect", m.to_str().unwrap(), "--quantize", "q8_0"]),
        "inspect mlp_qdq --quantize",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 product weight(s) are already stored encoded")
            && text.contains("affine(i8,axis=0,zp)     3 tensor(s)"),
        "{text}"
    );
}

/// Compiles `g` for x86_64; every imported product reads its weight
/// encoded in the compiled graph: `EncodedMatMul` for the products, a
/// `Decode` for the `decodes` convolution weights.
fn build(g: &Graph, decodes: usize, backend: Backend, emit: Emit, out: &Path) -> smelt::Artifact {
    build_for("x86_64", g, decodes, backend, emit, out)
}

/// [`build`] for `target`.
fn build_for(
    target: &str,
    g: &Graph,
    decodes: usize,
    backend: Backend,
    emit: Emit,
    out: &Path,
) -> smelt::Artifact {
    let opts = CompileOptions::new(target, backend, out)
        .unwrap()
        .emit(emit);
    let mut seen = Products::default();
    let a = smelt::compile_observed(g, &opts, &mut seen)
        .unwrap_or_else(|e| panic!("compiling {}: {e}", out.display()));
    let (affine, _, _) = census(g);
    assert_eq!(
        (seen.encoded, seen.decode),
        (affine - decodes, decodes),
        "{}: EncodedMatMul and Decode nodes compiled",
        out.display()
    );
    a
}

/// The cases native code compiles, with their `Decode` counts: `mlp_qdq`
/// also quantizes activations (`QuantizeLinear` on run-time values), which
/// only the interpreter runs.
fn native_cases() -> impl Iterator<Item = (&'static str, usize)> {
    CASES
        .iter()
        .map(|c| (c.0, c.2))
        .filter(|&(n, _)| n != "mlp_qdq")
}

#[test]
fn native_code_matches_onnxruntime_on_x86_64() {
    let Some(dir) = models() else { return };
    let work = targets::scratch("qdq", "native");
    for (name, decodes) in native_cases() {
        let d = dir.join(name);
        let g = import(&d.join("model.onnx"));
        let llvm = Backend::Llvm(smelt::LlvmConfig::default());
        for (bname, backend) in [("cranelift", Backend::Cranelift), ("llvm", llvm)] {
            let what = format!("{name} {bname}");
            let exe = work.join(format!("{name}-{bname}"));
            build(&g, decodes, backend, Emit::Exe, &exe);
            let out = exe.with_extension("out");
            targets::ok(
                targets::run_model(&exe, None, &d.join("input.npz"), &out),
                &what,
            );
            targets::check_npy_outputs(&d.join("expected.npz"), &out, 1e-6, 1e-5, &what);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The cases [`native_code_matches_onnxruntime_under_qemu`] runs.
const QEMU_CASES: [&str; 9] = [
    "conv_i8_axis",
    "conv_i4_axis",
    "matmul_i16_axis",
    "matmul_u4_blocked",
    "nbits_zp_padded",
    "nbits_bias",
    "nbits8_zp_padded",
    "nbits8_bias",
    "conv_u8_tensor_zp",
];

/// The imports this suite added after the 8-bit `MatMul`/`Gemm` ones (a
/// `Conv` weight, 16- and 4-bit integers, `MatMulNBits` with 4 and 8 bits)
/// on aarch64 under QEMU (Cranelift) and armv7 (LLVM).
#[test]
fn native_code_matches_onnxruntime_under_qemu() {
    let Some(dir) = models() else { return };
    let work = targets::scratch("qdq", "qemu");
    let llvm = || Backend::Llvm(smelt::LlvmConfig::default());
    let runners = [
        ("aarch64", "qemu-aarch64", Backend::Cranelift),
        ("armv7", "qemu-arm", llvm()),
    ];
    for (target, runner, backend) in runners {
        if !targets::have(runner, &format!("{target} under QEMU")) {
            continue;
        }
        let cases = native_cases().filter(|(n, _)| QEMU_CASES.contains(n));
        for (name, decodes) in cases {
            let d = dir.join(name);
            let g = import(&d.join("model.onnx"));
            let what = format!("{name} {target}");
            let exe = work.join(format!("{name}-{target}"));
            build_for(target, &g, decodes, backend.clone(), Emit::Exe, &exe);
            let out = exe.with_extension("out");
            targets::ok(
                targets::run_model(&exe, Some(runner), &d.join("input.npz"), &out),
                &what,
            );
            targets::check_npy_outputs(&d.join("expected.npz"), &out, 1e-6, 1e-5, &what);
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn objects_shrink_by_the_weight_bytes_saved() {
    let Some(dir) = models() else { return };
    let work = targets::scratch("qdq", "sizes");
    for (name, decodes) in native_cases().filter(|c| !c.0.starts_with("nbits")) {
        let d = dir.join(name);
        let (g, float) = (import(&d.join("model.onnx")), import(&d.join("float.onnx")));
        let q = build(
            &g,
            decodes,
            Backend::Cranelift,
            Emit::Obj,
            &work.join(format!("{name}.o")),
        );
        let f = build(
            &float,
            0,
            Backend::Cranelift,
            Emit::Obj,
            &work.join(format!("{name}-f32.o")),
        );
        let saved = float.const_bytes() as f64 - g.const_bytes() as f64;
        let shrink = f.object_bytes as f64 - q.object_bytes as f64;
        eprintln!(
            "{name:<22} object {} B (f32 weights) -> {} B; weights {} B -> {} B",
            f.object_bytes,
            q.object_bytes,
            float.const_bytes(),
            g.const_bytes()
        );
        // The weight-only loops and the GEMM they replace differ in code
        // size by under 1 KiB.
        assert!(saved > 0.0, "{name}: no weight bytes saved");
        assert!(
            shrink >= saved - 1024.0,
            "{name}: the object shrank by {shrink} B, the weights by {saved} B"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
