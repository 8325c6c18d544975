//! `--quantize int8 --calibrate` on the shipped examples (`examples/{mlp,
//! cnn,transformer}`), for every calibration method:
//!
//! - calibration and held-back samples, stacked the way `--calibrate
//!   FILE.npz` takes them: the MLP's are samples of the task it was trained
//!   on (`examples/mlp/calibration.npz`, 32 + 100), the others' come from a
//!   fixed-seed normal generator (their inputs are standard normal too);
//! - on the held-back samples, the reference interpreter's outputs of the
//!   int8 graph agree with the float graph's top-1 class on ≥ 99 % of the
//!   samples for every classifier output (the MLP's and the CNN's; the
//!   transformer block's `[seq, 64]` state is not one, NMSE and cosine
//!   speak for it);
//! - the report's NMSE, cosine, max abs error and top-1 equal a direct
//!   computation here from the same outputs (to 1e-6 relative);
//! - the int8 graphs compile for x86_64, aarch64, armv7 and Cortex-M4F and
//!   the executables agree with the interpreter;
//! - the CLI writes the same report as JSON (`smelt inspect --quantize int8
//!   --calibrate … --quantize-report …`), mixes schemes per layer and
//!   refuses bad calibration archives with a clear error.
//!
//! The measured numbers are printed (`cargo test --test quantize_int8 --
//! --nocapture`).

#[path = "common/targets.rs"]
mod targets;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use smelt::{Backend, CalibMethod, CalibrationSet, CompileOptions, Layer, QuantizeOptions, Scheme};
use smelt_frontend::Limits;
use smelt_frontend::npy::{output_file_name, read_npy, read_npz};
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::interp::Interpreter;
use smelt_ir::{Graph, Op, OpDef, Tensor};
use smelt_passes::quantize::accuracy::{argmax, classes};
use smelt_passes::quantize::quantize;

/// The examples and the dims the tests pin.
const EXAMPLES: [(&str, &[(&str, usize)]); 3] = [
    ("mlp", &[("batch", 1)]),
    ("cnn", &[]),
    ("transformer", &[("batch", 1), ("seq", 16)]),
];

/// Calibration and held-back samples.
const CALIBRATION: usize = 32;
const HELD_BACK: usize = 100;

fn example_dir(name: &str) -> PathBuf {
    targets::root().join("examples").join(name)
}

fn dims(name: &str) -> &'static [(&'static str, usize)] {
    EXAMPLES.iter().find(|e| e.0 == name).unwrap().1
}

fn import(name: &str) -> Graph {
    let mut opts = ImportOptions::default();
    for (k, v) in dims(name) {
        opts.dims.insert((*k).into(), *v);
    }
    load(&example_dir(name).join("model.onnx"), &opts).unwrap()
}

/// A fixed-seed standard normal stream (xorshift64 + Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        let s = &mut self.0;
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        ((*s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Every input stacked over `n` samples: `name → [n, input shape…]`.
fn stacked(g: &Graph, n: usize, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Normal(seed);
    g.inputs
        .iter()
        .map(|&id| {
            let v = g.value(id);
            let len: usize = v.ty.shape.iter().product::<usize>() * n;
            let data: Vec<f32> = (0..len).map(|_| rng.next()).collect();
            let shape = std::iter::once(n).chain(v.ty.shape.iter().copied());
            (
                v.name.clone(),
                Tensor::from_vec(shape.collect(), data).unwrap(),
            )
        })
        .collect()
}

fn outputs(g: &Graph, samples: &[Vec<Tensor>]) -> Vec<Vec<Tensor>> {
    let it = Interpreter::new(g);
    samples.iter().map(|s| it.run(s.clone()).unwrap()).collect()
}

/// Checks `got` against `want` to 1e-6 relative.
fn close(what: &str, got: f64, want: f64) {
    let tol = 1e-6 * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tol,
        "{what}: report {got}, direct {want}"
    );
}

/// Quantizes `name` with `method`, checks the held-back accuracy and the
/// report; returns (top-1 or None, nmse) of the first output.
fn check(name: &str, method: CalibMethod) -> (Option<f64>, f64, usize, usize) {
    let g = import(name);
    let data = match name {
        "mlp" => read_npz(
            &example_dir(name).join("calibration.npz"),
            &Limits::default(),
        )
        .unwrap(),
        _ => stacked(&g, CALIBRATION + HELD_BACK, 0x5eed_0000 + name.len() as u64),
    };
    let set = CalibrationSet::from_stacked(&g, &data).unwrap();
    let held: Vec<Vec<Tensor>> = set.samples[CALIBRATION..].to_vec();
    let opts = QuantizeOptions::new(Scheme::Int8)
        .calibrate(set)
        .calib(method)
        .holdout(HELD_BACK);
    let mut q = g.clone();
    let report = quantize(&mut q, &opts).unwrap();
    // Every MatMul/Gemm/Conv with a constant weight became integer.
    let integer = q
        .nodes
        .iter()
        .filter(|n| {
            matches!(n.op, Op::Quant(_))
                && [
                    "QLinearMatMul",
                    "QLinearConv",
                    "MatMulInteger",
                    "ConvInteger",
                ]
                .contains(&n.op.name())
        })
        .count();
    let want = match name {
        "mlp" => 3,
        "cnn" => 5,
        _ => 6,
    };
    assert_eq!(integer, want, "{name}: integer products\n{report}");
    assert_eq!(report.int8.len(), want);
    let (f, qo) = (outputs(&g, &held), outputs(&q, &held));
    let acc = &report.accuracy[1];
    assert_eq!((acc.set.as_str(), acc.samples), ("held-back", HELD_BACK));
    let mut first = None;
    for (k, &id) in g.outputs.iter().enumerate() {
        let shape = &g.value(id).ty.shape;
        let (mut err, mut ff, mut qq, mut qf, mut max_abs) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let (mut agree, mut rows) = (0usize, 0usize);
        for (fs, qs) in f.iter().zip(&qo) {
            let (a, b) = (
                fs[k].as_slice::<f32>().unwrap(),
                qs[k].as_slice::<f32>().unwrap(),
            );
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (x as f64, y as f64);
                err += (y - x) * (y - x);
                ff += x * x;
                qq += y * y;
                qf += x * y;
                max_abs = max_abs.max((y - x).abs());
            }
            if let Some(c) = classes(shape) {
                for (ra, rb) in a.chunks(c).zip(b.chunks(c)) {
                    rows += 1;
                    agree += usize::from(argmax(ra) == argmax(rb));
                }
            }
        }
        let r = &acc.outputs[k];
        assert_eq!(r.output, g.value(id).name);
        let nmse = err / ff;
        close("nmse", r.nmse, nmse);
        close("cosine", r.cosine, qf / (qq.sqrt() * ff.sqrt()));
        close("max abs", r.max_abs, max_abs);
        let top1 = (rows > 0).then(|| agree as f64 / rows as f64);
        match (r.top1, top1) {
            (Some(a), Some(b)) => close("top-1", a, b),
            (a, b) => assert_eq!(a, b),
        }
        first.get_or_insert((top1, nmse));
    }
    let (top1, nmse) = first.unwrap();
    (top1, nmse, report.before(), report.after())
}

/// Every example with every method: the report checked against a direct
/// computation (in [`check`]) and the held-back top-1 agreement of each
/// classifier-like output, as `(example, method, top-1)`.
fn measure() -> Vec<(&'static str, CalibMethod, Option<f64>)> {
    let mut all = Vec::new();
    for (name, _) in EXAMPLES {
        for method in [
            CalibMethod::MinMax,
            CalibMethod::Percentile(99.99),
            CalibMethod::Entropy,
        ] {
            let (top1, nmse, before, after) = check(name, method);
            let shown = top1.map_or("-".into(), |t| format!("{:.2} %", 100.0 * t));
            eprintln!(
                "{name:<12} {:<16} top-1 {shown:>8}  nmse {nmse:.3e}  weights {before} B -> {after} B",
                method.to_string()
            );
            all.push((name, method, top1));
        }
    }
    all
}

/// The examples whose held-back top-1 agreement is under 99 %.
fn under_99(all: &[(&str, CalibMethod, Option<f64>)]) -> Vec<String> {
    all.iter()
        .filter(|(_, _, t)| t.is_some_and(|t| t < 0.99))
        .map(|(n, m, t)| format!("{n} ({m}): {:.2} %", 100.0 * t.unwrap()))
        .collect()
}

/// The report matches a direct computation on every example and method,
/// and every classifier keeps ≥ 99 % top-1 agreement with the float model
/// on held-back samples.
#[test]
fn int8_keeps_top1_and_reports_it_truthfully() {
    let all = measure();
    let classifiers = all.iter().filter(|(_, _, t)| t.is_some()).count();
    assert_eq!(classifiers, 6, "mlp and cnn with three methods each");
    let low = under_99(&all);
    assert!(low.is_empty(), "top-1 under 99 %: {}", low.join(", "));
}

#[test]
fn layers_mix_int8_block_formats_and_float() {
    let g = import("mlp");
    let set = CalibrationSet::from_stacked(&g, &stacked(&g, 8, 1)).unwrap();
    let opts = QuantizeOptions::new(Scheme::Int8)
        .calibrate(set)
        .layer("fc1", Layer::Scheme(Scheme::parse("q4_0").unwrap()))
        .layer("fc2", Layer::Float);
    let mut q = g.clone();
    let r = quantize(&mut q, &opts).unwrap();
    let op = |n: &str| q.nodes.iter().find(|x| x.name == n).unwrap().op.name();
    assert_eq!(op("fc0"), "MatMulInteger");
    assert_eq!(op("fc1"), "EncodedMatMul");
    assert_eq!(op("fc2"), "Gemm");
    assert_eq!(
        r.kept,
        vec![("fc2".into(), "--quantize-layer float".into())]
    );
    // --quantize-skip still wins, with int8 too.
    let mut q = g.clone();
    let r = quantize(&mut q, &opts.clone().skip(["fc0"])).unwrap();
    assert!(r.int8.is_empty());
    assert!(
        r.kept
            .iter()
            .any(|(n, why)| n == "fc0" && why == "--quantize-skip")
    );
    // Unknown node names are refused by name.
    let e = quantize(&mut g.clone(), &opts.clone().layer("fc9", Layer::Float))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no node called fc9"), "{e}");
    // int8 without samples says what to give.
    let e = quantize(&mut g.clone(), &QuantizeOptions::new(Scheme::Int8))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--calibrate FILE.npz"), "{e}");
}

/// Writes `arrays` as an uncompressed `.npz`.
fn write_npz(path: &Path, arrays: &[(String, Tensor)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, t) in arrays {
        z.start_file(format!("{name}.npy"), opts).unwrap();
        z.write_all(&smelt_frontend::npy::encode(t)).unwrap();
    }
    z.finish().unwrap();
}

fn smelt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smelt"))
        .args(args)
        .output()
        .expect("smelt runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_writes_the_report_and_refuses_bad_archives() {
    let dir = targets::scratch("quantize_int8", "cli");
    let g = import("cnn");
    let data = stacked(&g, 12, 3);
    let npz = dir.join("calib.npz");
    write_npz(&npz, &data);
    let json = dir.join("report.json");
    let model = example_dir("cnn").join("model.onnx");
    let m = model.to_str().unwrap();
    let (ok, stdout, stderr) = smelt(&[
        "inspect",
        m,
        "--quantize",
        "int8",
        "--calibrate",
        npz.to_str().unwrap(),
        "--calib",
        "entropy",
        "--calibrate-holdout",
        "4",
        "--quantize-layer",
        "fc=float",
        "--quantize-report",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("accuracy against the float model on 4 held-back"),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["scheme"], "int8");
    assert_eq!(r["calib"], "entropy");
    assert_eq!(r["int8"].as_array().unwrap().len(), 4);
    assert_eq!(r["kept"][0]["node"], "fc");
    // The same options through the library give the same numbers.
    let set = CalibrationSet::from_stacked(&g, &data).unwrap();
    let opts = QuantizeOptions::new(Scheme::Int8)
        .calibrate(set)
        .calib(CalibMethod::Entropy)
        .holdout(4)
        .layer("fc", Layer::Float);
    let lib = quantize(&mut g.clone(), &opts).unwrap();
    for (i, acc) in lib.accuracy.iter().enumerate() {
        let o = &r["accuracy"][i]["outputs"][0];
        close(
            "json nmse",
            o["nmse"].as_f64().unwrap(),
            acc.outputs[0].nmse,
        );
        close(
            "json top-1",
            o["top1"].as_f64().unwrap(),
            acc.outputs[0].top1.unwrap(),
        );
    }
    assert_eq!(r["bytes_after"].as_u64().unwrap() as usize, lib.after());

    // Bad archives: a missing input, a wrong shape, N = 0, a wrong dtype.
    let bad = |arrays: Vec<(String, Tensor)>, needle: &str| {
        let p = dir.join("bad.npz");
        write_npz(&p, &arrays);
        let (ok, _, stderr) = smelt(&[
            "inspect",
            m,
            "--quantize",
            "int8",
            "--calibrate",
            p.to_str().unwrap(),
        ]);
        assert!(!ok && !stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    };
    let t = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Tensor::from_vec(shape, vec![0f32; n]).unwrap()
    };
    bad(
        vec![("other".into(), t(vec![1]))],
        "no array for input(s) mfcc",
    );
    bad(
        vec![("mfcc".into(), t(vec![1, 1, 49, 40]))],
        "must be f32[N,1,1,49,40]",
    );
    bad(vec![("mfcc".into(), t(vec![0, 1, 1, 49, 40]))], "(N = 0)");
    let i = Tensor::from_vec(vec![1, 1, 1, 49, 40], vec![0i32; 49 * 40]).unwrap();
    bad(vec![("mfcc".into(), i)], "is i32[1, 1, 1, 49, 40]");
    let (ok, _, stderr) = smelt(&["inspect", m, "--quantize", "int8"]);
    assert!(!ok && stderr.contains("--calibrate FILE.npz"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the int8 examples are compiled and run: target, code generator
/// and runner (none, a QEMU user-mode emulator, or `firmware` for
/// Cortex-M4F under `qemu-system-arm`).
const NATIVE: [(&str, &str, Option<&str>); 4] = [
    ("x86_64-unknown-linux-gnu", "cranelift", None),
    (
        "aarch64-unknown-linux-gnu",
        "cranelift",
        Some("qemu-aarch64"),
    ),
    ("armv7-unknown-linux-gnueabihf", "llvm", Some("qemu-arm")),
    ("thumbv7em-none-eabihf", "llvm", Some("firmware")),
];

/// `--quantize int8 --calibrate` compiles on all four targets and the
/// executables agree with the interpreter running the same quantized
/// graph. The integer kernels are bit-exact; the float epilogues (rescale,
/// bias, softmax, layer norm) may round differently, hence the small
/// tolerance, well under one activation quantization step.
#[test]
fn int8_compiles_on_every_target_and_matches_the_interpreter() {
    let work = targets::scratch("quantize_int8", "native");
    for (name, _) in EXAMPLES {
        let g = import(name);
        let data = stacked(&g, CALIBRATION + 1, 0x5eed_1000 + name.len() as u64);
        let set = CalibrationSet::from_stacked(&g, &data).unwrap();
        let sample = set.samples[CALIBRATION].clone();
        let opts = QuantizeOptions::new(Scheme::Int8).calibrate(set).holdout(1);
        let mut q = g.clone();
        quantize(&mut q, &opts).unwrap();
        let want = Interpreter::new(&q).run(sample.clone()).unwrap();
        let named: Vec<(String, Tensor)> = g
            .inputs
            .iter()
            .zip(&sample)
            .map(|(&id, t)| (g.value(id).name.clone(), t.clone()))
            .collect();
        write_npz(&work.join("input.npz"), &named);
        for (target, backend, runner) in NATIVE {
            let what = format!("{name} int8 on {target} ({backend})");
            let tool = match runner {
                Some("firmware") => Some("qemu-system-arm"),
                r => r,
            };
            if tool.is_some_and(|t| !targets::have(t, &what)) {
                continue;
            }
            let exe = work.join(format!(
                "{name}-{backend}-{}",
                target.split('-').next().unwrap()
            ));
            let backend = match backend {
                "llvm" => Backend::Llvm(smelt::LlvmConfig::default()),
                _ => Backend::Cranelift,
            };
            let copts = CompileOptions::new(target, backend, &exe).unwrap();
            smelt::compile(&q, &copts).unwrap_or_else(|e| panic!("{what}: {e}"));
            let out = work.join("out");
            let _ = std::fs::remove_dir_all(&out);
            let run = match runner {
                Some("firmware") => {
                    std::fs::create_dir_all(&out).unwrap();
                    targets::firmware_cmd(&exe, &work)
                        .args(["-append", "--input input.npz -o out"])
                        .output()
                        .expect("runs")
                }
                _ => targets::run_model(&exe, runner, &work.join("input.npz"), &out),
            };
            targets::ok(run, &what);
            for (k, &id) in q.outputs.iter().enumerate() {
                let file = out.join(output_file_name(&q.value(id).name));
                let got = read_npy(&file, &Limits::default()).unwrap();
                let (a, b) = (
                    got.as_slice::<f32>().unwrap(),
                    want[k].as_slice::<f32>().unwrap(),
                );
                assert_eq!(a.len(), b.len(), "{what}");
                for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
                        "{what}: output {k} element {j}: native {x} vs interpreter {y}"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
