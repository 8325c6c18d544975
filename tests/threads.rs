//! `smelt compile --threads N`: the example models compiled for 2 and 3
//! threads give byte-identical outputs to 1 thread, for both backends on
//! x86_64 (run here), on aarch64 (under `qemu-aarch64`) and with LLVM on
//! armv7 (under `qemu-arm`, which runs clone threads); the executable's
//! `--threads` cap gives them too; bare-metal targets refuse threads.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/targets.rs"]
mod targets;
use targets::{root, runner_cmd, smelt};

fn scratch(tag: &str) -> PathBuf {
    targets::scratch("threads", tag)
}

/// The example's outputs (file name and bytes, sorted) from `exe` run with
/// `extra` arguments.
fn run(
    exe: &Path,
    runner: Option<&str>,
    example: &str,
    extra: &[&str],
    out: &Path,
) -> Vec<(String, Vec<u8>)> {
    let input = root().join("examples").join(example).join("input.npz");
    let mut cmd = runner_cmd(runner.as_slice(), exe);
    let _ = std::fs::remove_dir_all(out);
    let res = cmd
        .arg("--input")
        .arg(&input)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .expect("runs");
    assert!(
        res.status.success(),
        "{} {extra:?}: {}",
        exe.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no outputs", exe.display());
    files
}

/// Compiles `example` for 1, 2 and 3 threads and checks that every run gives
/// the 1-thread bytes; `parallel` lists the thread counts for which the
/// model has loops big enough to run in parallel (a loop needs a minimum of
/// work per thread; checked through the outlined tasks' symbols).
fn check(
    example: &str,
    pins: &[&str],
    backend: &str,
    target: &str,
    runner: Option<&str>,
    parallel: &[&str],
) {
    let work = scratch(&format!("{example}-{target}-{backend}"));
    let model = root().join("examples").join(example).join("model.onnx");
    let mut want = None;
    for threads in ["1", "2", "3"] {
        let exe = work.join(format!("model-{threads}"));
        let mut args = targets::compile_args(&model, target, backend);
        args.extend(["--threads", threads, "-o", exe.to_str().unwrap()]);
        args.extend_from_slice(pins);
        let out = smelt(&args);
        assert!(
            out.status.success(),
            "smelt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("threads {threads},")), "{stdout}");
        let image = std::fs::read(&exe).unwrap();
        let has_tasks = image.windows(12).any(|w| w == b"smelt_task_0");
        assert_eq!(
            has_tasks,
            parallel.contains(&threads),
            "{example} on {target} ({backend}), {threads} thread(s): parallel loops present"
        );
        let got = run(&exe, runner, example, &[], &work.join("out"));
        match &want {
            None => want = Some(got),
            Some(w) => assert!(
                *w == got,
                "{example} on {target} ({backend}): {threads} threads differ from 1"
            ),
        }
        if threads == "3" {
            // Many parallel loops in a row through the same workers.
            if runner.is_none() {
                let benched = run(
                    &exe,
                    runner,
                    example,
                    &["--bench", "200"],
                    &work.join("out"),
                );
                assert!(
                    want.as_ref() == Some(&benched),
                    "{example} on {target} ({backend}): after 200 runs on 3 threads, outputs differ from 1"
                );
            }
            for cap in ["1", "2"] {
                let capped = run(
                    &exe,
                    runner,
                    example,
                    &["--threads", cap],
                    &work.join("out"),
                );
                assert!(
                    want.as_ref() == Some(&capped),
                    "{example} on {target} ({backend}): 3 threads capped at {cap} differ from 1"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

const NONE: &[&str] = &[];
const TWO: &[&str] = &["2"];
const BOTH: &[&str] = &["2", "3"];
const MLP: &[&str] = &["--dim", "batch=2"];
const CNN: &[&str] = &[];
const TRANSFORMER: &[&str] = &["--dim", "batch=1", "--dim", "seq=16"];

/// `name` when that QEMU runs here; if not, says the check is skipped.
fn qemu(name: &str) -> Option<&str> {
    targets::have(name, "this check (run scripts/setup)").then_some(name)
}

#[test]
fn x86_64_cranelift_threads_give_identical_outputs() {
    check("mlp", MLP, "cranelift", "x86_64", None, NONE);
    check("cnn", CNN, "cranelift", "x86_64", None, BOTH);
    check("transformer", TRANSFORMER, "cranelift", "x86_64", None, TWO);
}

#[test]
fn x86_64_llvm_threads_give_identical_outputs() {
    check("mlp", MLP, "llvm", "x86_64", None, NONE);
    check("cnn", CNN, "llvm", "x86_64", None, BOTH);
    check("transformer", TRANSFORMER, "llvm", "x86_64", None, TWO);
}

#[test]
fn aarch64_threads_give_identical_outputs() {
    let Some(q) = qemu("qemu-aarch64") else {
        return;
    };
    for backend in ["cranelift", "llvm"] {
        check("cnn", CNN, backend, "aarch64", Some(q), BOTH);
        check("transformer", TRANSFORMER, backend, "aarch64", Some(q), TWO);
    }
}

#[test]
fn armv7_threads_give_identical_outputs() {
    let Some(q) = qemu("qemu-arm") else {
        return;
    };
    check("cnn", CNN, "llvm", "armv7", Some(q), BOTH);
    check("transformer", TRANSFORMER, "llvm", "armv7", Some(q), TWO);
}

#[test]
fn bare_metal_and_bad_counts_are_refused() {
    let model = root().join("examples/mlp/model.onnx");
    let m = model.to_str().unwrap();
    let work = scratch("refused");
    let o = work.join("fw");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--target",
                "thumbv7em-none-eabihf",
                "--backend",
                "llvm",
                "--threads",
                "2",
            ],
            "smelt: error: --threads 2: thumbv7em-none-eabihf is bare metal with one core and no threads; use --threads 1\n",
        ),
        (
            &["--threads", "0"],
            "smelt: error: --threads 0 is out of range; use 1 to 64\n",
        ),
        (
            &["--threads", "65"],
            "smelt: error: --threads 65 is out of range; use 1 to 64\n",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["compile", m, "--dim", "batch=1", "-o", o.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = smelt(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), *want, "{args:?}");
        assert!(!o.exists(), "{args:?}: nothing written");
    }
    // One thread is fine on bare metal.
    let out = smelt(&[
        "compile",
        m,
        "--dim",
        "batch=1",
        "--target",
        "thumbv7em-none-eabihf",
        "--backend",
        "llvm",
        "--threads",
        "1",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// A MobileNet-shaped block built in IR: a depthwise 3×3 convolution (32
/// channels, 28×28), a pointwise 1×1 convolution to 48 channels (the GEMM
/// read in place) and a 3×3 stride-2 convolution (the GEMM through im2col),
/// every one with enough work to run in parallel.
fn conv_block() -> (smelt_ir::Graph, smelt_ir::Tensor) {
    use smelt_ir::ops::Op;
    use smelt_ir::ops::conv::{AutoPad, ConvOp, Window};
    use smelt_ir::{DType, Graph, Tensor, TensorType};
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    };
    let mut g = Graph::new();
    let x = g
        .add_input("x", TensorType::new(DType::F32, vec![1, 32, 28, 28]))
        .unwrap();
    let mut konst = |g: &mut Graph, name: &str, shape: Vec<usize>| {
        let n = shape.iter().product();
        g.add_const(name, &Tensor::from_vec(shape, rand(n)).unwrap())
            .unwrap()
    };
    let conv = |g: &mut Graph, name: &str, ins: Vec<_>, k: usize, s: usize, p: usize, group| {
        let window = Window {
            kernel_shape: Some(vec![k, k]),
            strides: vec![s, s],
            dilations: vec![1, 1],
            pads: vec![p; 4],
            auto_pad: AutoPad::NotSet,
        };
        g.add_node(
            name,
            Op::Conv(ConvOp::Conv { window, group }),
            ins,
            vec![format!("{name}.y")],
        )
        .unwrap()[0]
    };
    let (wd, bd) = (
        konst(&mut g, "wd", vec![32, 1, 3, 3]),
        konst(&mut g, "bd", vec![32]),
    );
    let y1 = conv(&mut g, "dw", vec![Some(x), Some(wd), Some(bd)], 3, 1, 1, 32);
    let (wp, bp) = (
        konst(&mut g, "wp", vec![48, 32, 1, 1]),
        konst(&mut g, "bp", vec![48]),
    );
    let y2 = conv(&mut g, "pw", vec![Some(y1), Some(wp), Some(bp)], 1, 1, 0, 1);
    let w3 = konst(&mut g, "w3", vec![16, 48, 3, 3]);
    let y3 = conv(&mut g, "c3", vec![Some(y2), Some(w3)], 3, 2, 1, 1);
    g.outputs.push(y3);
    let input = Tensor::from_vec(vec![1, 32, 28, 28], rand(32 * 28 * 28)).unwrap();
    (g, input)
}

/// Compiles `graph` (inputs `inputs`, by name) for 1, 2 and 3 threads on
/// every Linux target this machine runs, both backends where they exist:
/// 2 and 3 threads give the 1-thread bytes, which match the interpreter,
/// and have at least `loops` parallel loops.
fn check_graph(
    tag: &str,
    graph: &smelt_ir::Graph,
    inputs: &[(&str, smelt_ir::Tensor)],
    loops: usize,
) {
    use smelt_backends::artifact::{Backend, BuildOptions, Emit, build};
    use smelt_backends::target::Target;
    use smelt_frontend::Limits;
    use smelt_frontend::npy::{read_npy, write_npy};

    let want = smelt_ir::interp::Interpreter::new(graph)
        .run(inputs.iter().map(|(_, t)| t.clone()).collect())
        .unwrap();
    let out_name = graph.value(graph.outputs[0]).name.clone();
    let task = format!("smelt_task_{}", loops - 1).into_bytes();
    let work = scratch(tag);
    let mut input_args = Vec::new();
    for (name, t) in inputs {
        let path = work.join(format!("{name}.npy"));
        write_npy(&path, t).unwrap();
        input_args.push(format!("{name}={}", path.display()));
    }
    let llvm = || Backend::Llvm(Default::default());
    let configs: Vec<(Target, Backend, Option<&str>)> = vec![
        (Target::X86_64Linux, Backend::Cranelift, None),
        (Target::X86_64Linux, llvm(), None),
        (
            Target::Aarch64Linux,
            Backend::Cranelift,
            qemu("qemu-aarch64"),
        ),
        (Target::Aarch64Linux, llvm(), qemu("qemu-aarch64")),
        (Target::Armv7Linux, llvm(), qemu("qemu-arm")),
    ];
    for (target, backend, runner) in configs {
        if target != Target::X86_64Linux && runner.is_none() {
            continue;
        }
        let mut first: Option<Vec<u8>> = None;
        for threads in [1u32, 2, 3] {
            let exe = work.join(format!(
                "{tag}-{}-{}-{threads}",
                target.arch(),
                backend.name()
            ));
            let opts = BuildOptions {
                threads,
                ..BuildOptions::new(Emit::Exe, tag)
            };
            build(graph, target, &backend, &exe, &opts).unwrap();
            let image = std::fs::read(&exe).unwrap();
            let tasks = image.windows(task.len()).any(|w| *w == task[..]);
            assert_eq!(
                tasks,
                threads > 1,
                "{target} ({}), {threads} threads: {loops} parallel loops",
                backend.name()
            );
            let out = work.join("out");
            let _ = std::fs::remove_dir_all(&out);
            let mut cmd = match runner {
                Some(r) => {
                    let mut c = Command::new(r);
                    c.arg(&exe);
                    c
                }
                None => Command::new(&exe),
            };
            for a in &input_args {
                cmd.arg("--input").arg(a);
            }
            let res = cmd.arg("-o").arg(&out).output().unwrap();
            assert!(
                res.status.success(),
                "{}",
                String::from_utf8_lossy(&res.stderr)
            );
            let file = out.join(format!("{out_name}.npy"));
            let bytes = std::fs::read(&file).unwrap();
            match &first {
                None => {
                    let got = read_npy(&file, &Limits::default()).unwrap();
                    for (a, b) in got.to_f64_vec().iter().zip(want[0].to_f64_vec()) {
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "{target} ({}): {a} vs the interpreter's {b}",
                            backend.name()
                        );
                    }
                    first = Some(bytes);
                }
                Some(f) => assert!(
                    *f == bytes,
                    "{target} ({}): {threads} threads differ from 1",
                    backend.name()
                ),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn conv_block_threads_give_identical_outputs_on_every_linux_target() {
    let (graph, input) = conv_block();
    check_graph("conv-block", &graph, &[("x", input)], 3);
}

/// A batch of 4 products of two activations (attention heads): split by
/// batch.
#[test]
fn batched_matmul_threads_give_identical_outputs_on_every_linux_target() {
    use smelt_ir::ops::Op;
    use smelt_ir::ops::linalg::Linalg;
    use smelt_ir::{DType, Graph, Tensor, TensorType};
    let mut g = Graph::new();
    let a = g
        .add_input("a", TensorType::new(DType::F32, vec![4, 64, 96]))
        .unwrap();
    let b = g
        .add_input("b", TensorType::new(DType::F32, vec![4, 96, 80]))
        .unwrap();
    let y = g
        .add_node(
            "mm",
            Op::Linalg(Linalg::MatMul),
            vec![Some(a), Some(b)],
            vec!["y".into()],
        )
        .unwrap()[0];
    g.outputs.push(y);
    let fill = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<f32>>();
    let ta = Tensor::from_vec(vec![4, 64, 96], fill(4 * 64 * 96, 0.37)).unwrap();
    let tb = Tensor::from_vec(vec![4, 96, 80], fill(4 * 96 * 80, 0.11)).unwrap();
    check_graph("batched-matmul", &g, &[("a", ta), ("b", tb)], 1);
}
