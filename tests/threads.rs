//! `smelt compile --threads N`: the example models compiled for 2 and 3
//! threads give byte-identical outputs to 1 thread, for both backends on
//! x86_64 (run here), on aarch64 (under `qemu-aarch64`) and with LLVM on
//! armv7 (under `qemu-arm`, which runs clone threads); the executable's
//! `--threads` cap gives them too; bare-metal targets refuse threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-threads-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn smelt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smelt"))
        .args(args)
        .output()
        .expect("smelt runs")
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
    let mut cmd = match runner {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(exe);
            c
        }
        None => Command::new(exe),
    };
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
        let mut args = vec![
            "compile",
            model.to_str().unwrap(),
            "--target",
            target,
            "--backend",
            backend,
            "--threads",
            threads,
            "-o",
            exe.to_str().unwrap(),
        ];
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

fn qemu(name: &str) -> Option<&str> {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: skipping: {name} is not installed (run scripts/setup)");
    }
    found.then_some(name)
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
