//! `--quantize` end to end on the shipped examples (`examples/{mlp,cnn,
//! transformer}`), for every scheme:
//!
//! - the reference interpreter on the quantized graph against the float
//!   model: the normalised mean squared error of every output stays under a
//!   bound derived from the format (see [`nmse_bound`]);
//! - native code (Cranelift and LLVM on x86_64; aarch64 and armv7 under
//!   QEMU when installed) against the interpreter on the same quantized
//!   graph, within a tight tolerance (the decoded weights are bit-identical;
//!   only the summation order differs);
//! - the object file shrinks by the weight bytes the report says were
//!   saved, and two compilations give byte-identical artifacts.
//!
//! The measured numbers are printed (`cargo test --test quantize --
//! --nocapture`).

#[path = "common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

use smelt::{Backend, CompileOptions, Emit, QuantizeOptions, Scheme};
use smelt_frontend::Limits;
use smelt_frontend::npy::{output_file_name, read_npy};
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::interp::Interpreter;
use smelt_ir::{Graph, OpDef, Tensor};

/// The examples and the dims their `input.npz` pins.
const EXAMPLES: [(&str, &[(&str, usize)]); 3] = [
    ("mlp", &[("batch", 2)]),
    ("cnn", &[]),
    ("transformer", &[("batch", 1), ("seq", 16)]),
];

fn example_dir(name: &str) -> PathBuf {
    targets::root().join("examples").join(name)
}

fn import(name: &str) -> Graph {
    let mut opts = ImportOptions::default();
    for (k, v) in EXAMPLES.iter().find(|e| e.0 == name).unwrap().1.iter() {
        opts.dims.insert((*k).into(), *v);
    }
    load(&example_dir(name).join("model.onnx"), &opts).unwrap()
}

/// The example's inputs, in the graph's input order.
fn inputs(name: &str, g: &Graph) -> Vec<Tensor> {
    targets::npz_inputs(&example_dir(name).join("input.npz"), g)
}

fn quantized(g: &Graph, scheme: &str) -> (Graph, smelt::QuantizeReport) {
    let mut q = g.clone();
    let opts = QuantizeOptions::new(Scheme::parse(scheme).unwrap());
    let r = smelt_passes::quantize::quantize_weights(&mut q, &opts).unwrap();
    (q, r)
}

fn f32s(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec()
}

fn nmse(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = want.iter().map(|b| b.powi(2)).sum();
    num / den.max(f64::MIN_POSITIVE)
}

/// The relative quantization step of the storage a scheme gives the
/// examples' weights (their rows are 32, 64 or 128 long, so the K-quants
/// and ternary formats take llama.cpp's fallbacks: q4_k → q5_0,
/// q6_k → q8_0, tq2_0 → q4_0): 2^-11 for f16, 2^-8 for bf16, one step of
/// the integer range over the block's largest magnitude otherwise.
fn relative_step(scheme: &str) -> f64 {
    match scheme {
        "f16" => 2f64.powi(-11),
        "bf16" => 2f64.powi(-8),
        "w8" => 1.0 / 127.0,
        "q8_0" | "q6_k" => 1.0 / 127.0,
        "q5_0" | "q4_k" => 1.0 / 15.0,
        // With a minimum: the step spans max - min, up to twice the
        // largest magnitude.
        "q5_1" => 2.0 / 31.0,
        "q4_0" | "tq2_0" => 1.0 / 7.0,
        "q4_1" => 2.0 / 15.0,
        other => panic!("no step for {other}"),
    }
}

/// The NMSE bound of a model output: a rounding error of at most half a
/// step of the block's largest magnitude per weight (`(step / 2)²·max²`),
/// relative to the weights' mean square with `max² ≤ 16·mean²` (weights
/// within four standard deviations), summed over the model's quantized
/// layers: `layers · 4 · step²`. A format-derived bound, not a fit to the
/// measurements (which sit 2× to 50× below it).
fn nmse_bound(scheme: &str, layers: usize) -> f64 {
    let s = relative_step(scheme);
    layers as f64 * 4.0 * s * s
}

const SCHEMES: [&str; 11] = [
    "f16", "bf16", "w8", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q6_k", "tq2_0",
];

#[test]
fn the_interpreter_stays_within_the_format_bound() {
    for (name, _) in EXAMPLES {
        let g = import(name);
        let x = inputs(name, &g);
        let want = Interpreter::new(&g).run(x.clone()).unwrap();
        for scheme in SCHEMES {
            let (q, r) = quantized(&g, scheme);
            assert!(!r.weights.is_empty(), "{name}: nothing quantized");
            let got = Interpreter::new(&q).run(x.clone()).unwrap();
            let bound = nmse_bound(scheme, r.weights.len());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                let e = nmse(&f32s(a), &f32s(b));
                eprintln!(
                    "{name:<12} {scheme:<6} output {k}: nmse {e:.3e} (bound {bound:.1e}), weights {} B -> {} B",
                    r.before(),
                    r.after()
                );
                assert!(e <= bound, "{name} {scheme} output {k}: nmse {e} > {bound}");
            }
        }
    }
}

/// Compiles `g` (already quantized or not) to `out` as `emit`.
fn build(g: &Graph, target: &str, backend: Backend, emit: Emit, out: &Path) -> smelt::Artifact {
    let opts = CompileOptions::new(target, backend, out)
        .unwrap()
        .emit(emit);
    smelt::compile(g, &opts).unwrap_or_else(|e| panic!("compiling for {target}: {e}"))
}

fn llvm() -> Backend {
    Backend::Llvm(smelt::LlvmConfig::default())
}

/// Where a quantized example is compiled and run: the target, the code
/// generator and the runner (a QEMU user-mode emulator, or none).
struct Runner<'a> {
    target: &'a str,
    backend: Backend,
    runner: Option<&'a str>,
}

/// Compiles the quantized model `q` into `work`, runs it on `input` (an
/// `.npz`, or `name=file.npy`) and checks every output against `want` (the
/// interpreter's, in the graph's output order).
fn check_native(work: &Path, r: Runner<'_>, input: &Path, q: &Graph, want: &[Tensor], what: &str) {
    let exe = work.join(what.replace(' ', "-"));
    build(q, r.target, r.backend, Emit::Exe, &exe);
    let (exe, runner, g) = (&exe, r.runner, q);
    let out = exe.with_extension("out");
    targets::ok(targets::run_model(exe, runner, input, &out), what);
    for (k, &id) in g.outputs.iter().enumerate() {
        let file = out.join(output_file_name(&g.value(id).name));
        let got = f32s(&read_npy(&file, &Limits::default()).unwrap());
        let w = f32s(&want[k]);
        assert_eq!(got.len(), w.len(), "{what}");
        for (j, (a, b)) in got.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 + 1e-4 * b.abs(),
                "{what}: output {k} element {j}: native {a} vs interpreter {b}"
            );
        }
    }
}

#[test]
fn native_code_matches_the_interpreter_on_x86_64() {
    let work = targets::scratch("quantize", "native");
    for (name, _) in EXAMPLES {
        let g = import(name);
        let x = inputs(name, &g);
        for scheme in SCHEMES {
            let (q, _) = quantized(&g, scheme);
            let want = Interpreter::new(&q).run(x.clone()).unwrap();
            // Every scheme on Cranelift; LLVM on the MLP for all and on the
            // larger examples for two (its compile is slower).
            let mut backends = vec![("cranelift", Backend::Cranelift)];
            if name == "mlp" || matches!(scheme, "q8_0" | "q4_1") {
                backends.push(("llvm", llvm()));
            }
            for (bname, backend) in backends {
                let r = Runner {
                    target: "x86_64",
                    backend,
                    runner: None,
                };
                let what = format!("{name} {scheme} {bname}");
                let input = example_dir(name).join("input.npz");
                check_native(&work, r, &input, &q, &want, &what);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn native_code_matches_the_interpreter_under_qemu() {
    let work = targets::scratch("quantize", "qemu");
    let g = import("mlp");
    let x = inputs("mlp", &g);
    let cases = [
        (
            "aarch64",
            "qemu-aarch64",
            &["q8_0", "q4_1", "q5_0", "f16", "w8"][..],
        ),
        ("armv7", "qemu-arm", &["q4_0", "q5_1", "bf16", "w8"][..]),
    ];
    for (target, runner, schemes) in cases {
        if !targets::have(runner, &format!("{target} under QEMU")) {
            continue;
        }
        for &scheme in schemes {
            let (q, _) = quantized(&g, scheme);
            let want = Interpreter::new(&q).run(x.clone()).unwrap();
            // Cranelift has no 32-bit ARM backend.
            let backend = if target == "armv7" {
                llvm()
            } else {
                Backend::Cranelift
            };
            let r = Runner {
                target,
                backend,
                runner: Some(runner),
            };
            check_native(
                &work,
                r,
                &example_dir("mlp").join("input.npz"),
                &q,
                &want,
                &format!("mlp {scheme} {target}"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn objects_shrink_by_the_weight_bytes_saved() {
    let work = targets::scratch("quantize", "sizes");
    for (name, _) in EXAMPLES {
        let g = import(name);
        let float = build(
            &g,
            "x86_64",
            Backend::Cranelift,
            Emit::Obj,
            &work.join(format!("{name}.o")),
        );
        for scheme in SCHEMES {
            let (q, r) = quantized(&g, scheme);
            let obj = work.join(format!("{name}-{scheme}.o"));
            let a = build(&q, "x86_64", Backend::Cranelift, Emit::Obj, &obj);
            let saved = (r.before() - r.after()) as f64;
            let shrink = float.object_bytes as f64 - a.object_bytes as f64;
            eprintln!(
                "{name:<12} {scheme:<6} object {} B -> {} B ({:.2}x); weights {} B -> {} B ({:.2}x)",
                float.object_bytes,
                a.object_bytes,
                float.object_bytes as f64 / a.object_bytes as f64,
                r.before(),
                r.after(),
                r.before() as f64 / r.after() as f64
            );
            // The object loses the weight bytes saved, give or take the
            // code-size difference of the weight-only loops and the GEMM
            // they replace: under 768 B per weight-only product (Q4_1's
            // vector GEMV, which also sums x for the block offsets, is the
            // largest: 2 KiB for the MLP's three, now that code is cut into
            // part functions, each with its prologue, call and status
            // test), plus 1 KiB for each
            // product over many rows (the transformer's 16-row ones), which
            // decodes its weight once and adds a decode, a transpose and a
            // MatMul loop (`smelt_passes::batched`).
            let products = q
                .nodes
                .iter()
                .filter(|n| n.op.name() == "EncodedMatMul")
                .count();
            let batched = q
                .nodes
                .iter()
                .filter(|n| n.op.name() == "EncodedMatMul")
                .filter(|n| {
                    let (x, w) = (n.inputs[0].unwrap(), n.inputs[1].unwrap());
                    let k = *q.value(w).ty.shape.last().unwrap();
                    q.value(x).ty.numel().unwrap() / k >= smelt_passes::batched::MIN_ROWS
                })
                .count();
            assert!(
                shrink >= saved - 768.0 * products.max(2) as f64 - 1024.0 * batched as f64,
                "{name} {scheme}: the object shrank by {shrink} B, the weights by {saved} B"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn artifacts_are_byte_identical_across_runs() {
    let work = targets::scratch("quantize", "repro");
    let (q, _) = quantized(&import("mlp"), "q4_0");
    for (bname, backend) in [("cranelift", Backend::Cranelift), ("llvm", llvm())] {
        let (a, b) = (
            work.join(format!("a-{bname}")),
            work.join(format!("b-{bname}")),
        );
        build(&q, "x86_64", backend.clone(), Emit::Exe, &a);
        build(&q, "x86_64", backend, Emit::Exe, &b);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{bname}: two compilations differ"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn the_cli_reports_sizes_and_refuses_bad_schemes() {
    let model = example_dir("mlp").join("model.onnx");
    let m = model.to_str().unwrap();
    let out = targets::ok(
        targets::smelt(&["inspect", m, "--dim", "batch=2", "--quantize", "q8_0"]),
        "inspect --quantize",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("quantize q8_0:") && text.contains("total: 3 weights"),
        "{text}"
    );
    assert!(
        text.contains("weights by storage:") && text.contains("q8_0"),
        "{text}"
    );
    let bad = targets::smelt(&["compile", m, "--quantize", "q3"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("'q3'") && err.contains("q4_k"), "{err}");
    let work = targets::scratch("quantize", "cli");
    let exe = work.join("mlp");
    let out = targets::ok(
        targets::smelt(&[
            "compile",
            m,
            "--dim",
            "batch=2",
            "--quantize",
            "q4_0",
            "--quantize-skip",
            "fc2",
            "-o",
            exe.to_str().unwrap(),
        ]),
        "compile --quantize",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quantize q4_0:") && err.contains("kept f32"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The K-quant and ternary schemes, which the examples' rows (32 to 128
/// long) never reach: [`generated`] exercises them.
const SUPER_BLOCK_SCHEMES: [&str; 7] = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "tq1_0", "tq2_0"];

/// The relative step of a super-block format and of its fallback for the
/// generated model's 64-long rows, as [`relative_step`] counts: signed
/// formats one step of the positive range (`q3_k` -4..3, `q6_k` -32..31,
/// the ternary formats -1..1), formats with a minimum `2 / (levels - 1)`.
fn super_block_steps(scheme: &str) -> (f64, f64) {
    match scheme {
        "q2_k" => (2.0 / 3.0, 1.0 / 7.0),
        "q3_k" => (1.0 / 3.0, 1.0 / 7.0),
        "q4_k" => (2.0 / 15.0, 1.0 / 15.0),
        "q5_k" => (2.0 / 31.0, 2.0 / 31.0),
        "q6_k" => (1.0 / 31.0, 1.0 / 127.0),
        "tq1_0" | "tq2_0" => (1.0, 1.0 / 7.0),
        other => panic!("no step for {other}"),
    }
}

/// A two-layer model whose first weight has rows of 512 (two super-blocks)
/// so every super-block format applies: `y = Gemm(x · w1, w2ᵀ, b)` with
/// `x [4, 512]`, `w1 [512, 64]` (a MatMul, read as `[K, N]`) and `w2
/// [16, 64]` (a Gemm with `transB`, rows of 64: the fallback formats).
/// Weights are uniform in `±sqrt(3 / K)` (outputs of the inputs' variance); returns
/// the graph and its input.
fn generated() -> (Graph, Tensor) {
    use smelt_ir::ops::linalg::{GemmAttrs, Linalg};
    use smelt_ir::{DType, Op, TensorType};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = |n: usize, a: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * a
            })
            .collect()
    };
    let mut g = Graph::new();
    let x = g
        .add_input("x", TensorType::new(DType::F32, vec![4, 512]))
        .unwrap();
    let mut konst = |g: &mut Graph, name: &str, shape: Vec<usize>, a: f32| {
        let n = shape.iter().product();
        let v = uniform(n, a);
        g.add_const(name, &Tensor::from_vec(shape, v).unwrap())
            .unwrap()
    };
    let w1 = konst(&mut g, "w1", vec![512, 64], (3.0f32 / 512.0).sqrt());
    let w2 = konst(&mut g, "w2", vec![16, 64], (3.0f32 / 64.0).sqrt());
    // A small bias: the output's variance is the products'.
    let b = konst(&mut g, "b", vec![16], 0.01);
    let h = g
        .add_node(
            "fc1",
            Op::Linalg(Linalg::MatMul),
            vec![Some(x), Some(w1)],
            vec!["h".into()],
        )
        .unwrap()[0];
    let gemm = GemmAttrs::new().with_trans(false, true);
    let y = g
        .add_node(
            "fc2",
            Op::Linalg(Linalg::Gemm(gemm)),
            vec![Some(h), Some(w2), Some(b)],
            vec!["y".into()],
        )
        .unwrap()[0];
    g.outputs.push(y);
    let input = Tensor::from_vec(vec![4, 512], uniform(4 * 512, 1.0)).unwrap();
    (g, input)
}

/// Every super-block scheme on [`generated`]: the interpreter against the
/// float model within a format-derived NMSE bound, then native code
/// (Cranelift and LLVM on x86_64; Cranelift on aarch64 and LLVM on armv7
/// under QEMU when installed) against the interpreter as for the examples,
/// and the object shrinking by the weight bytes saved.
///
/// The bound: a weight's rounding error is at most half a step of its
/// block's largest magnitude, `(step / 2)²·max²`, and the weights are
/// uniform (`max² = 3·mean²`), so a layer's relative error is at most
/// `3/4 · step²`; the output's NMSE is bounded by the sum over both layers
/// (the first in the scheme's format, the second in its fallback).
#[test]
fn super_block_formats_compile_and_match_on_a_generated_model() {
    use smelt_frontend::npy::write_npy;
    let work = targets::scratch("quantize", "super-blocks");
    let (g, x) = generated();
    let npy = work.join("x.npy");
    write_npy(&npy, &x).unwrap();
    let input = PathBuf::from(format!("x={}", npy.display()));
    let want = Interpreter::new(&g).run(vec![x.clone()]).unwrap();
    let float = build(
        &g,
        "x86_64",
        Backend::Cranelift,
        Emit::Obj,
        &work.join("float.o"),
    );
    let qemu = [
        ("aarch64", "qemu-aarch64", Backend::Cranelift),
        ("armv7", "qemu-arm", llvm()),
    ];
    for scheme in SUPER_BLOCK_SCHEMES {
        let (q, r) = quantized(&g, scheme);
        let fell_back: Vec<_> = r.weights.iter().map(|w| w.fallback.is_some()).collect();
        assert_eq!(fell_back, [false, true], "{scheme}: {r}");
        let got = Interpreter::new(&q).run(vec![x.clone()]).unwrap();
        let (s1, s2) = super_block_steps(scheme);
        let bound = 0.75 * (s1 * s1 + s2 * s2);
        let e = nmse(&f32s(&got[0]), &f32s(&want[0]));
        let obj = build(
            &q,
            "x86_64",
            Backend::Cranelift,
            Emit::Obj,
            &work.join(format!("{scheme}.o")),
        );
        eprintln!(
            "generated {scheme:<6}: nmse {e:.3e} (bound {bound:.1e}); weights {} B -> {} B; object {} B -> {} B",
            r.before(),
            r.after(),
            float.object_bytes,
            obj.object_bytes
        );
        assert!(e <= bound, "{scheme}: nmse {e} > {bound}");
        let (saved, shrink) = (
            (r.before() - r.after()) as f64,
            float.object_bytes as f64 - obj.object_bytes as f64,
        );
        // Give or take the code-size difference, as for the examples, with
        // room for two decoders of super-block scales (up to 2 KiB).
        assert!(
            shrink >= saved - 2048.0,
            "{scheme}: the object shrank by {shrink} B, the weights by {saved} B"
        );
        for (bname, backend) in [("cranelift", Backend::Cranelift), ("llvm", llvm())] {
            let r = Runner {
                target: "x86_64",
                backend,
                runner: None,
            };
            check_native(
                &work,
                r,
                &input,
                &q,
                &got,
                &format!("generated {scheme} {bname}"),
            );
        }
        for (target, runner, backend) in &qemu {
            if !targets::have(runner, &format!("{target} under QEMU")) {
                continue;
            }
            let r = Runner {
                target,
                backend: backend.clone(),
                runner: Some(runner),
            };
            check_native(
                &work,
                r,
                &input,
                &q,
                &got,
                &format!("generated {scheme} {target}"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
