//! Compile time and memory that grow linearly with the model: a chain of
//! 100,000 element-wise nodes imports, optimizes and compiles with both code
//! generators at `-O0` and the default level within 1 GiB of peak resident
//! memory, and the executable computes what the interpreter does; and
//! `--time-limit` bounds the whole optimizer (extraction included) on it,
//! keeping the graph unoptimized with a note.
//!
//! The model is written here as protobuf bytes (a few fields of the ONNX
//! schema), so the test needs no Python. Wall times are not asserted (the
//! machines differ); the report of issue 17 lists measured ones.

#[path = "common/targets.rs"]
mod targets;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, write_npy};
use smelt_frontend::onnx::{ImportOptions, load};
use smelt_ir::Tensor;
use smelt_ir::interp::Interpreter;

use targets::{scratch, smelt_cmd};

/// Nodes in the chain.
const NODES: usize = 100_000;

/// Peak resident memory a compilation may reach.
const MAX_RSS_KIB: u64 = 1 << 20;

// --- a minimal protobuf writer for the ONNX schema ---------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Field `field` as a varint.
fn int_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

/// Field `field` as length-delimited bytes (a string or a message).
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `ValueInfoProto` of an f32 tensor of shape `[4]`.
fn value_info(name: &str) -> Vec<u8> {
    typed_value_info(name, 1, 4)
}

/// A `ValueInfoProto` of a tensor of ONNX type `elem_type` and shape `[n]`.
fn typed_value_info(name: &str, elem_type: u64, n: u64) -> Vec<u8> {
    let mut dim = Vec::new();
    int_field(&mut dim, 1, n); // dim_value
    let mut shape = Vec::new();
    bytes_field(&mut shape, 1, &dim); // dim
    let mut tensor = Vec::new();
    int_field(&mut tensor, 1, elem_type); // elem_type
    bytes_field(&mut tensor, 2, &shape); // shape
    let mut ty = Vec::new();
    bytes_field(&mut ty, 1, &tensor); // tensor_type
    let mut vi = Vec::new();
    bytes_field(&mut vi, 1, name.as_bytes());
    bytes_field(&mut vi, 2, &ty);
    vi
}

/// A model of `n` nodes in a chain from input `x` (f32[4]) to output `y`:
/// `Add(v, one)` and `Relu(v)` in turn, so every node changes the result
/// (the adds count) and the chain cannot fold away.
fn chain_model(n: usize) -> Vec<u8> {
    let mut graph = Vec::new();
    for k in 0..n {
        let input = if k == 0 {
            "x".to_string()
        } else {
            format!("v{}", k - 1)
        };
        let output = if k + 1 == n {
            "y".to_string()
        } else {
            format!("v{k}")
        };
        let mut node = Vec::new();
        bytes_field(&mut node, 1, input.as_bytes());
        if k % 2 == 0 {
            bytes_field(&mut node, 1, b"one");
        }
        bytes_field(&mut node, 2, output.as_bytes());
        bytes_field(&mut node, 3, format!("n{k}").as_bytes());
        let op: &[u8] = if k % 2 == 0 { b"Add" } else { b"Relu" };
        bytes_field(&mut node, 4, op);
        bytes_field(&mut graph, 1, &node); // node
    }
    bytes_field(&mut graph, 2, b"chain"); // name
    let mut one = Vec::new();
    int_field(&mut one, 1, 4); // dims
    int_field(&mut one, 2, 1); // data_type FLOAT
    bytes_field(&mut one, 8, b"one"); // name
    let raw: Vec<u8> = [1f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes_field(&mut one, 9, &raw); // raw_data
    bytes_field(&mut graph, 5, &one); // initializer
    bytes_field(&mut graph, 11, &value_info("x")); // input
    bytes_field(&mut graph, 12, &value_info("y")); // output
    let mut opset = Vec::new();
    bytes_field(&mut opset, 1, b"");
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8); // ir_version
    bytes_field(&mut model, 7, &graph); // graph
    bytes_field(&mut model, 8, &opset); // opset_import
    model
}

// --- running smelt and measuring it ------------------------------------------

/// The peak resident memory (`VmHWM`) of process `pid` so far, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `cmd` to completion, sampling its peak resident memory (a high-water
/// mark, so a sample misses only what the last few milliseconds add).
fn run_measured(mut cmd: Command) -> (Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smelt runs");
    let pid = child.id();
    // Outputs are read on threads so a full pipe never blocks the child.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_t.join().expect("reader").expect("stdout");
    let stderr = err_t.join().expect("reader").expect("stderr");
    let output = Output {
        status,
        stdout,
        stderr,
    };
    (output, peak)
}

/// Compiles `model` with `args` into `exe`, checks the compilation succeeded
/// within [`MAX_RSS_KIB`], and returns its standard output.
fn compile(model: &Path, exe: &Path, args: &[&str], what: &str) -> String {
    let mut cmd = smelt_cmd();
    cmd.arg("compile").arg(model).arg("-o").arg(exe).args(args);
    let (out, peak) = run_measured(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peak < MAX_RSS_KIB,
        "{what}: peak resident memory {peak} KiB, more than {MAX_RSS_KIB} KiB"
    );
    eprintln!("{what}: peak resident memory {} MiB", peak / 1024);
    stdout
}

/// Runs `exe` on `x` and checks its output equals `want` exactly.
fn check_run(exe: &Path, dir: &Path, x: &Path, want: &Tensor, what: &str) {
    let out_dir = dir.join(format!(
        "out-{}",
        exe.file_name().unwrap().to_string_lossy()
    ));
    let out = Command::new(exe)
        .arg("--input")
        .arg(format!("x={}", x.display()))
        .arg("-o")
        .arg(&out_dir)
        .output()
        .expect("the executable runs");
    assert!(
        out.status.success(),
        "{what}: the executable failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = read_npy(&out_dir.join("y.npy"), &Limits::default()).unwrap();
    assert_eq!(got.to_f64_vec(), want.to_f64_vec(), "{what}");
}

/// The chain, its input and the interpreter's output, in a fresh folder.
fn setup(
    tag: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
    Tensor,
) {
    let dir = scratch("scale", tag);
    let model = dir.join("chain.onnx");
    std::fs::write(&model, chain_model(NODES)).unwrap();
    let g = load(&model, &ImportOptions::default()).expect("the chain imports");
    assert_eq!(g.nodes.len(), NODES);
    let x = Tensor::from_vec(vec![4], vec![-70_000.5f32, -3.0, 0.25, 12.0]).unwrap();
    let input = dir.join("x.npy");
    write_npy(&input, &x).unwrap();
    let want = Interpreter::new(&g)
        .run(vec![x])
        .expect("the interpreter runs");
    (
        dir,
        model,
        input,
        want.into_iter().next().expect("one output"),
    )
}

#[test]
fn a_100k_node_chain_compiles_in_bounded_memory_with_both_backends() {
    let (dir, model, input, want) = setup("chain");
    for backend in ["cranelift", "llvm"] {
        for level in ["0", "2"] {
            let what = format!("{NODES}-node chain, {backend}, -O{level}");
            let exe = dir.join(format!("chain-{backend}-O{level}"));
            compile(&model, &exe, &["--backend", backend, "-O", level], &what);
            check_run(&exe, &dir, &input, &want, &what);
        }
    }
}

#[test]
fn the_time_limit_bounds_the_whole_optimizer_on_a_big_graph() {
    let (dir, model, input, want) = setup("time-limit");
    let exe = dir.join("chain-limited");
    let what = format!("{NODES}-node chain, -O2 --time-limit 0.001");
    let stdout = compile(&model, &exe, &["-O", "2", "--time-limit", "0.001"], &what);
    assert!(
        stdout.contains("during extraction: the graph is kept unoptimized"),
        "{what}: no fallback note in:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("{NODES} -> {NODES} nodes")),
        "{what}: the graph changed:\n{stdout}"
    );
    check_run(&exe, &dir, &input, &want, &what);
}

/// A node `op(inputs) -> output` named `name`.
fn node(name: &str, op: &str, inputs: &[&str], output: &str) -> Vec<u8> {
    let mut node = Vec::new();
    for i in inputs {
        bytes_field(&mut node, 1, i.as_bytes());
    }
    bytes_field(&mut node, 2, output.as_bytes());
    bytes_field(&mut node, 3, name.as_bytes());
    bytes_field(&mut node, 4, op.as_bytes());
    node
}

/// A run-time check that fails in a late function of a body cut into many
/// (and LLVM modules) stops the run with its status: 3,000 Relu, a Gather
/// of run-time indices `idx` (i64[2]) from the f32[4] result, 3,000 Relu.
#[test]
fn a_failing_check_in_a_late_part_stops_the_run() {
    let dir = scratch("scale", "late-check");
    let mut graph = Vec::new();
    let relus = |graph: &mut Vec<u8>, tag: &str, from: &str| -> String {
        let mut prev = from.to_string();
        for k in 0..3000 {
            let out = format!("{tag}{k}");
            bytes_field(graph, 1, &node(&out, "Relu", &[&prev], &out));
            prev = out;
        }
        prev
    };
    let a = relus(&mut graph, "a", "x");
    bytes_field(
        &mut graph,
        1,
        &node("late_gather", "Gather", &[&a, "idx"], "g"),
    );
    let y = relus(&mut graph, "b", "g");
    bytes_field(&mut graph, 2, b"late");
    bytes_field(&mut graph, 11, &value_info("x"));
    bytes_field(&mut graph, 11, &typed_value_info("idx", 7, 2)); // INT64
    bytes_field(&mut graph, 12, &typed_value_info(&y, 1, 2));
    let mut opset = Vec::new();
    bytes_field(&mut opset, 1, b"");
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    bytes_field(&mut model, 7, &graph);
    bytes_field(&mut model, 8, &opset);
    let path = dir.join("late.onnx");
    std::fs::write(&path, model).unwrap();
    let x = Tensor::from_vec(vec![4], vec![-1f32, 2.0, 3.5, -4.0]).unwrap();
    let (xp, ok, bad) = (dir.join("x.npy"), dir.join("ok.npy"), dir.join("bad.npy"));
    write_npy(&xp, &x).unwrap();
    write_npy(&ok, &Tensor::from_vec(vec![2], vec![2i64, -3]).unwrap()).unwrap();
    write_npy(&bad, &Tensor::from_vec(vec![2], vec![1i64, 7]).unwrap()).unwrap();
    for backend in ["cranelift", "llvm"] {
        let what = format!("late check, {backend}");
        let exe = dir.join(format!("late-{backend}"));
        compile(&path, &exe, &["--backend", backend, "-O", "0"], &what);
        let run = |idx: &Path, out: &str| {
            Command::new(&exe)
                .arg("--input")
                .arg(format!("x={}", xp.display()))
                .arg("--input")
                .arg(format!("idx={}", idx.display()))
                .arg("-o")
                .arg(dir.join(out))
                .output()
                .expect("the executable runs")
        };
        let good = run(&ok, &format!("ok-{backend}"));
        assert!(good.status.success(), "{what}: in-range indices failed");
        let got = read_npy(
            &dir.join(format!("ok-{backend}")).join(format!("{y}.npy")),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(got.to_f64_vec(), [3.5, 2.0], "{what}");
        let out = run(&bad, &format!("bad-{backend}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{what}: {stderr}");
        assert!(
            stderr.contains("late_gather") && stderr.contains("index 7"),
            "{what}: {stderr}"
        );
    }
}
