//! Quantized ONNX weights stay quantized on import (`frontend/src/onnx/qdq.rs`)
//! on small models `tests/qdq/make_models.py` writes with the `onnx` package
//! (a `DequantizeLinear`'d int8 per-axis `MatMul` weight, a uint8 per-tensor
//! `Gemm` weight with a zero point, an int8 per-axis `Gemm` weight without
//! `transB`, an opset-21 blocked uint8 weight, the weight-only
//! `Mul(Cast(int8), scale)` form) and on the MLP example quantized by
//! onnxruntime's `quantize_static` (QDQ, per channel):
//!
//! - the imported graph holds the weights affine-encoded (no 2-D f32
//!   constant is left) and reads them with `EncodedMatMul` or `Decode`;
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

/// The models and how many weights each keeps encoded.
const CASES: [(&str, usize); 8] = [
    ("matmul_i8_axis", 1),
    ("gemm_u8_tensor_zp", 1),
    ("gemm_i8_axis_notrans", 1),
    ("matmul_u8_blocked", 1),
    ("cast_mul_i8", 1),
    ("mlp_qdq", 3),
    ("nbits_zp_padded", 1),
    ("nbits_bias", 1),
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

/// Affine-encoded constants of `g`, dense 2-D f32 constants, and the nodes
/// that read a weight in its encoding.
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
        .filter(|v| v.ty.is_dense() && v.ty.dtype.is_float() && v.ty.shape.len() == 2)
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
    for (name, encoded) in CASES {
        let d = dir.join(name);
        let g = import(&d.join("model.onnx"));
        let (affine, dense_2d, readers) = census(&g);
        assert_eq!(affine, encoded, "{name}: encoded weights");
        assert_eq!(dense_2d, 0, "{name}: a 2-D float weight is left");
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

/// Compiles `g` for x86_64; every imported product reads its weight
/// encoded, with no separate `Decode`, in the compiled graph.
fn build(g: &Graph, backend: Backend, emit: Emit, out: &Path) -> smelt::Artifact {
    let opts = CompileOptions::new("x86_64", backend, out)
        .unwrap()
        .emit(emit);
    let mut seen = Products::default();
    let a = smelt::compile_observed(g, &opts, &mut seen)
        .unwrap_or_else(|e| panic!("compiling {}: {e}", out.display()));
    let (affine, _, _) = census(g);
    assert_eq!(
        (seen.encoded, seen.decode),
        (affine, 0),
        "{}: EncodedMatMul and Decode nodes compiled",
        out.display()
    );
    a
}

/// The cases native code compiles: `mlp_qdq` also quantizes activations
/// (`QuantizeLinear` on run-time values), which only the interpreter runs;
/// the `MatMulNBits` (u4) ones wait for the native 4-bit affine decoder.
fn native_cases() -> impl Iterator<Item = &'static str> {
    CASES
        .iter()
        .map(|c| c.0)
        .filter(|&n| n != "mlp_qdq" && !n.starts_with("nbits"))
}

#[test]
fn native_code_matches_onnxruntime_on_x86_64() {
    let Some(dir) = models() else { return };
    let work = targets::scratch("qdq", "native");
    for name in native_cases() {
        let d = dir.join(name);
        let g = import(&d.join("model.onnx"));
        let llvm = Backend::Llvm(smelt::LlvmConfig::default());
        for (bname, backend) in [("cranelift", Backend::Cranelift), ("llvm", llvm)] {
            let what = format!("{name} {bname}");
            let exe = work.join(format!("{name}-{bname}"));
            build(&g, backend, Emit::Exe, &exe);
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

#[test]
fn objects_shrink_by_the_weight_bytes_saved() {
    let Some(dir) = models() else { return };
    let work = targets::scratch("qdq", "sizes");
    for name in native_cases() {
        let d = dir.join(name);
        let (g, float) = (import(&d.join("model.onnx")), import(&d.join("float.onnx")));
        let q = build(
            &g,
            Backend::Cranelift,
            Emit::Obj,
            &work.join(format!("{name}.o")),
        );
        let f = build(
            &float,
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
