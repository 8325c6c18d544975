//! Static libraries end to end: `smelt compile --emit staticlib` on the MLP
//! example, for x86_64, aarch64 and armv7, linked into a C program
//! (`tests/staticlib/mlp_app.c`) by the system's gcc, statically and
//! dynamically, against its C library (and against a program that defines
//! its own `memcpy`: the library's libcalls are weak); the program runs the model on two
//! arenas at once and once more, and its output matches onnxruntime's. The
//! Cortex-M4F library goes into a C firmware (`tests/staticlib/mlp_firmware.c`)
//! built with arm-none-eabi-gcc and newlib, run under qemu-system-arm. The
//! archive and header are byte-identical across compiles, the header is
//! clean C99 and C++, and `--emit obj` writes the same header.
//!
//! The CNN and transformer examples go through a generic C program
//! (`tests/staticlib/model_app.c`) on both targets, and the MLP and the CNN
//! are linked into one program (`tests/staticlib/two_models.c`): their
//! symbols are prefixed (`mlp_run`, `cnn_run`), so they do not clash. Every
//! output is compared with onnxruntime's. Libraries from the LLVM backend
//! link and match the same way. A gather model's library returns
//! `SMELT_STATUS_OUT_OF_RANGE` and a fault record for an id past its table
//! (`tests/staticlib/gather_status.c`).

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, read_npz};

#[path = "common/targets.rs"]
mod targets;
use targets::{have, have_all, read_f32, root, runner_cmd};

fn scratch(tag: &str) -> PathBuf {
    targets::scratch("staticlib", tag)
}

fn run_ok(cmd: &mut Command, what: &str) {
    targets::run_ok(cmd, what);
}

/// `smelt compile` of the MLP (batch pinned to 2) to `dir/libmlp.a` + `dir/mlp.h`.
fn compile_mlp(target: &str, dir: &Path, emit: &str, out: &str) {
    compile_mlp_with("cranelift", target, dir, emit, out);
}

/// [`compile_mlp`] with a backend.
fn compile_mlp_with(backend: &str, target: &str, dir: &Path, emit: &str, out: &str) {
    let model = root().join("examples/mlp/model.onnx");
    run_ok(
        targets::smelt_cmd()
            .args(targets::compile_args(&model, target, backend))
            .args(["--dim", "batch=2", "--emit", emit, "-o"])
            .arg(dir.join(out)),
        &format!("smelt compile --backend {backend} --emit {emit} for {target}"),
    );
}

/// A fresh folder (`tag`) holding the MLP as `libmlp.a` + `mlp.h` for
/// `target`, compiled by `backend`.
fn mlp_staticlib(backend: &str, target: &str, tag: &str) -> PathBuf {
    let dir = scratch(tag);
    compile_mlp_with(backend, target, &dir, "staticlib", "libmlp.a");
    dir
}

/// Links the whole archive, so that the libcalls object is in the program
/// beside the C library's `memcpy` & co. even when the model calls none of
/// them: their definitions must not clash.
const WHOLE: &[&str] = &["-Wl,--whole-archive", "-lmlp", "-Wl,--no-whole-archive"];
/// Links the archive as usual: only the members the program needs.
const NEEDED: &[&str] = &["-lmlp"];

/// A C file defining `memcpy` and `memset` strongly, compiled into the
/// program with the whole archive: the library's weak ones must give way.
fn own_libcalls() -> String {
    root()
        .join("tests/staticlib/own_libcalls.c")
        .to_str()
        .unwrap()
        .to_string()
}

/// Builds `mlp_app.c` against `dir/libmlp.a` with `cc`, `flags` and `lib`
/// (how the library is named on the command line), runs it (under `runner`
/// when given) on the example's input and compares the output with
/// onnxruntime's.
fn check_app(dir: &Path, cc: &str, flags: &[&str], lib: &[&str], runner: &[&str], what: &str) {
    let app = dir.join(format!("app-{}", what.replace(' ', "-")));
    let mut build = Command::new(cc);
    build
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .args(flags)
        .arg("-I")
        .arg(dir)
        .arg(root().join("tests/staticlib/mlp_app.c"))
        .arg("-L")
        .arg(dir)
        .args(lib)
        .arg("-o")
        .arg(&app);
    run_ok(&mut build, &format!("{what}: {cc} {flags:?}"));

    let limits = Limits::default();
    let x = read_npy(&root().join("examples/mlp/x.npy"), &limits).unwrap();
    let (input, output) = (
        dir.join("x.raw"),
        dir.join(format!("probs-{}.raw", what.replace(' ', "-"))),
    );
    std::fs::write(&input, x.to_le_bytes()).unwrap();
    run_ok(
        runner_cmd(runner, &app).arg(&input).arg(&output),
        &format!("{what}: mlp_app"),
    );
    let worst = check_mlp_probs(&output, what);
    eprintln!("mlp staticlib, {what}: max abs err vs onnxruntime {worst:.2e}");
}

/// Compares the MLP's raw f32 `probs` in `output` with onnxruntime's;
/// returns the largest absolute error.
fn check_mlp_probs(output: &Path, what: &str) -> f64 {
    let expected = read_npz(
        &root().join("examples/mlp/expected.npz"),
        &Limits::default(),
    )
    .unwrap();
    let (_, want) = expected
        .iter()
        .find(|(name, _)| name == "probs")
        .expect("expected.npz has probs");
    let got: Vec<f64> = read_f32(output);
    let want = want.to_f64_vec();
    assert_eq!(got.len(), want.len(), "{what}: output size");
    let mut worst = 0f64;
    for (a, b) in got.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
            "{what}: {a} vs onnxruntime {b}"
        );
        worst = worst.max((a - b).abs());
    }
    worst
}

/// Links the MLP library in `dir` into the C test app every way a C
/// program would: static and dynamic C library, with the archive pulled in
/// as needed and whole, and with the app's own `memcpy` & co. (the archive's
/// weak libcalls must give way). `emu` runs a foreign binary; dynamic
/// binaries need `sysroot` for their loader (`None`: native, or no dynamic
/// runs when the sysroot is missing).
fn link_every_way(dir: &Path, cc: &str, emu: &[&str], sysroot: Option<&str>, what: &str) {
    let mut dynamic: Vec<&str> = emu.to_vec();
    let has_dynamic = match sysroot {
        Some(root) if Path::new(root).join("lib").exists() => {
            dynamic.extend(["-L", root]);
            true
        }
        Some(_) => false,
        None => true,
    };
    let own = own_libcalls();
    for lib in [NEEDED, WHOLE] {
        let whole = if lib == WHOLE { " whole-archive" } else { "" };
        check_app(
            dir,
            cc,
            &["-static"],
            lib,
            emu,
            &format!("{what} -static{whole}"),
        );
        if has_dynamic {
            check_app(
                dir,
                cc,
                &[],
                lib,
                &dynamic,
                &format!("{what} dynamic{whole}"),
            );
        }
    }
    check_app(
        dir,
        cc,
        &["-static", &own],
        WHOLE,
        emu,
        &format!("{what} -static own memcpy"),
    );
    if has_dynamic {
        check_app(
            dir,
            cc,
            &[&own],
            WHOLE,
            &dynamic,
            &format!("{what} dynamic own memcpy"),
        );
    }
}

/// The MLP compiled for `target` by `backend` into a fresh folder (`tag`),
/// linked every way by `cc` ([`link_every_way`]).
fn mlp_links_every_way(
    backend: &str,
    target: &str,
    cc: &str,
    emu: &[&str],
    sysroot: Option<&str>,
    tag: &str,
) {
    let dir = mlp_staticlib(backend, target, tag);
    link_every_way(
        &dir,
        cc,
        emu,
        sysroot,
        &format!("{} gcc", tag.replace('-', " ")),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_64_staticlib_links_with_gcc_static_and_dynamic() {
    if !have("gcc", "the x86_64 staticlib test") {
        return;
    }
    mlp_links_every_way(
        "cranelift",
        "x86_64-unknown-linux-gnu",
        "gcc",
        &[],
        None,
        "x86_64",
    );
}

#[test]
fn aarch64_staticlib_links_with_cross_gcc_under_qemu() {
    let cc = "aarch64-linux-gnu-gcc";
    if !have_all(&[cc, "qemu-aarch64"], "the aarch64 staticlib test") {
        return;
    }
    mlp_links_every_way(
        "cranelift",
        "aarch64-unknown-linux-gnu",
        cc,
        &["qemu-aarch64"],
        Some("/usr/aarch64-linux-gnu"),
        "aarch64",
    );
}

#[test]
fn llvm_staticlibs_link_with_gcc_on_x86_64_and_aarch64() {
    if have("gcc", "the x86_64 LLVM staticlib test") {
        let dir = mlp_staticlib("llvm", "x86_64-unknown-linux-gnu", "llvm-x86_64");
        check_app(&dir, "gcc", &["-static"], NEEDED, &[], "llvm x86_64 static");
        check_app(&dir, "gcc", &[], WHOLE, &[], "llvm x86_64 dynamic whole");
        let _ = std::fs::remove_dir_all(&dir);
    }
    let cc = "aarch64-linux-gnu-gcc";
    if have_all(&[cc, "qemu-aarch64"], "the aarch64 LLVM staticlib test") {
        let dir = mlp_staticlib("llvm", "aarch64-unknown-linux-gnu", "llvm-aarch64");
        check_app(
            &dir,
            cc,
            &["-static"],
            WHOLE,
            &["qemu-aarch64"],
            "llvm aarch64 static whole",
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn staticlib_and_header_are_byte_identical_and_obj_has_the_same_header() {
    let dir = scratch("repro");
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        let (a, b) = (dir.join("a"), dir.join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
            compile_mlp(target, d, "staticlib", "libmlp.a");
        }
        for f in ["libmlp.a", "mlp.h"] {
            assert!(
                std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
                "{target}: two compiles give different {f}"
            );
        }
        // The archive: the model and the libcalls, with a symbol index.
        let lib = std::fs::read(a.join("libmlp.a")).unwrap();
        assert!(
            lib.starts_with(b"!<arch>\n/ "),
            "{target}: not a GNU archive with an index"
        );
        for member in [&b"mlp.o/"[..], b"libcalls.o/"] {
            assert!(
                lib.windows(member.len()).any(|w| w == member),
                "{target}: no member {:?}",
                String::from_utf8_lossy(member)
            );
        }
        // `--emit obj -o mlp.o` writes the same header as mlp.h.
        let c = dir.join("c");
        std::fs::create_dir_all(&c).unwrap();
        compile_mlp(target, &c, "obj", "mlp.o");
        assert!(
            std::fs::read(c.join("mlp.h")).unwrap() == std::fs::read(a.join("mlp.h")).unwrap(),
            "{target}: --emit obj and --emit staticlib give different headers"
        );
        for d in [&a, &b, &c] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn header_is_clean_c99_and_cxx() {
    if !have("gcc", "the header check") {
        return;
    }
    let dir = mlp_staticlib("cranelift", "x86_64-unknown-linux-gnu", "header");
    let use_it = "#include \"mlp.h\"\n\
        #include \"mlp.h\"\n\
        static const uint64_t dims[] = MLP_INPUT_X_DIMS;\n\
        static unsigned char arena[MLP_ARENA_BYTES];\n\
        void go(const void *const *in, void *const *out);\n\
        void go(const void *const *in, void *const *out) {\n\
            (void)dims;\n\
            smelt_fault fault;\n\
            if (mlp_run(in, out, arena, &fault) != SMELT_STATUS_OK) (void)fault.value;\n\
        }\n";
    std::fs::write(dir.join("use.c"), use_it).unwrap();
    for (cc, std) in [("gcc", "-std=c99"), ("g++", "-std=c++11")] {
        if !have(cc, "the header check") {
            continue;
        }
        run_ok(
            Command::new(cc).current_dir(&dir).args([
                "-x",
                if cc == "gcc" { "c" } else { "c++" },
                std,
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "use.c",
            ]),
            &format!("the header as {std}"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn llvm_armv7_staticlib_links_with_cross_gcc_under_qemu() {
    let cc = "arm-linux-gnueabihf-gcc";
    if !have_all(&[cc, "qemu-arm"], "the armv7 staticlib test") {
        return;
    }
    mlp_links_every_way(
        "llvm",
        "armv7-unknown-linux-gnueabihf",
        cc,
        &["qemu-arm"],
        Some("/usr/arm-linux-gnueabihf"),
        "llvm-armv7",
    );
}

/// The Cortex-M static library in a C firmware (`tests/staticlib/mlp_firmware.c`
/// with its own start-up code and `cortex_m.ld`) built by arm-none-eabi-gcc
/// against newlib with semihosting (rdimon), run under qemu-system-arm; the
/// archive's weak libcalls give way to newlib's and libgcc's.
#[test]
fn llvm_cortex_m_staticlib_links_into_a_c_firmware() {
    let cc = "arm-none-eabi-gcc";
    if !have_all(&[cc, "qemu-system-arm"], "the Cortex-M staticlib test") {
        return;
    }
    let dir = mlp_staticlib("llvm", "thumbv7em-none-eabihf", "llvm-thumbv7em");
    let fw = dir.join("fw.elf");
    run_ok(
        Command::new(cc)
            .args([
                "-mcpu=cortex-m4",
                "-mthumb",
                "-mfpu=fpv4-sp-d16",
                "-mfloat-abi=hard",
            ])
            .args(["--specs=rdimon.specs", "-nostartfiles", "-O2", "-std=c11"])
            .args(["-Wall", "-Wextra", "-Werror", "-T"])
            .arg(root().join("tests/staticlib/cortex_m.ld"))
            .arg("-I")
            .arg(&dir)
            .arg(root().join("tests/staticlib/mlp_firmware.c"))
            .arg("-L")
            .arg(&dir)
            .arg("-lmlp")
            .arg("-o")
            .arg(&fw),
        "arm-none-eabi-gcc mlp_firmware.c -lmlp",
    );
    let limits = Limits::default();
    let x = read_npy(&root().join("examples/mlp/x.npy"), &limits).unwrap();
    std::fs::write(dir.join("in.raw"), x.to_le_bytes()).unwrap();
    run_ok(
        &mut targets::firmware_cmd(&fw, &dir),
        "mlp_firmware under qemu-system-arm",
    );
    check_mlp_probs(&dir.join("out.raw"), "Cortex-M firmware");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `smelt compile` of example `name` (with `dims`, and `options` after the
/// target) to `dir/lib{name}.a` + `dir/{name}.h`.
fn compile_example(name: &str, dims: &[&str], target: &str, options: &[&str], dir: &Path) {
    let model = root().join(format!("examples/{name}/model.onnx"));
    run_ok(
        targets::smelt_cmd()
            .arg("compile")
            .arg(&model)
            .args(dims)
            .args(["--target", target])
            .args(options)
            .args(["--emit", "staticlib", "-o"])
            .arg(dir.join(format!("lib{name}.a"))),
        &format!(
            "smelt compile {name} {}--emit staticlib for {target}",
            options.iter().map(|o| format!("{o} ")).collect::<String>()
        ),
    );
}

/// The example's inputs written raw to `dir`, in `input.npz` order; their paths.
fn raw_inputs(name: &str, dir: &Path) -> Vec<PathBuf> {
    let inputs = read_npz(
        &root().join(format!("examples/{name}/input.npz")),
        &Limits::default(),
    )
    .unwrap();
    inputs
        .iter()
        .map(|(k, t)| {
            let p = dir.join(format!("{name}-in-{k}.raw"));
            std::fs::write(&p, t.to_le_bytes()).unwrap();
            p
        })
        .collect()
}

/// Where the outputs of example `name` go, in `expected.npz` order.
fn raw_outputs(name: &str, dir: &Path, what: &str) -> Vec<PathBuf> {
    expected(name)
        .iter()
        .map(|(k, _)| dir.join(format!("{name}-out-{k}-{}.raw", what.replace(' ', "-"))))
        .collect()
}

fn expected(name: &str) -> Vec<(String, smelt_ir::Tensor)> {
    read_npz(
        &root().join(format!("examples/{name}/expected.npz")),
        &Limits::default(),
    )
    .unwrap()
}

/// Compares raw f32 output files with onnxruntime's outputs of example `name`.
fn compare(name: &str, outputs: &[PathBuf], what: &str) {
    for ((oname, want), path) in expected(name).iter().zip(outputs) {
        let got: Vec<f64> = read_f32(path);
        let want = want.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{what}: {name}/{oname} size");
        let mut worst = 0f64;
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-4 + 1e-4 * b.abs(),
                "{what}: {name}/{oname}: {a} vs onnxruntime {b}"
            );
            worst = worst.max((a - b).abs());
        }
        eprintln!("{name}/{oname} staticlib, {what}: max abs err vs onnxruntime {worst:.2e}");
    }
}

/// The dims the transformer example is compiled with.
const TRANSFORMER_DIMS: &[&str] = &["--dim", "batch=1", "--dim", "seq=16"];

/// Builds the generic C program `src` (`model_app.c`, `threads_app.c`) for
/// example `name` against `dir/lib{name}.a` with `cc` and `flags`, runs it
/// (under `runner` when given) on the example's inputs and compares its
/// outputs with onnxruntime's.
fn check_generic_app(
    src: &str,
    name: &str,
    dir: &Path,
    cc: &str,
    flags: &[&str],
    runner: &[&str],
    what: &str,
) {
    let stem = src.trim_end_matches(".c");
    let app = dir.join(format!("{name}-{stem}-{}", what.replace(' ', "-")));
    run_ok(
        Command::new(cc)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
            .args(flags)
            .arg(format!("-DMODEL_H=\"{name}.h\""))
            .arg(format!("-DNAME={name}"))
            .arg(format!("-DUPPER={}", name.to_uppercase()))
            .arg("-I")
            .arg(dir)
            .arg(root().join("tests/staticlib").join(src))
            .arg("-L")
            .arg(dir)
            .arg(format!("-l{name}"))
            .arg("-o")
            .arg(&app),
        &format!("{what}: {cc} {src} for {name}"),
    );
    let (ins, outs) = (raw_inputs(name, dir), raw_outputs(name, dir, what));
    run_ok(
        runner_cmd(runner, &app).args(&ins).args(&outs),
        &format!("{what}: {name} {stem}"),
    );
    compare(name, &outs, what);
}

/// Links the MLP and the CNN into one program with `cc` and checks both.
fn check_two_models(dir: &Path, cc: &str, runner: &[&str], what: &str) {
    let app = dir.join("two-models");
    run_ok(
        Command::new(cc)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static"])
            .arg("-I")
            .arg(dir)
            .arg(root().join("tests/staticlib/two_models.c"))
            .arg("-L")
            .arg(dir)
            .args([
                "-Wl,--whole-archive",
                "-lmlp",
                "-lcnn",
                "-Wl,--no-whole-archive",
            ])
            .arg("-o")
            .arg(&app),
        &format!("{what}: {cc} two_models.c"),
    );
    let (x, mfcc) = (raw_inputs("mlp", dir), raw_inputs("cnn", dir));
    let (probs, logits) = (raw_outputs("mlp", dir, what), raw_outputs("cnn", dir, what));
    run_ok(
        runner_cmd(runner, &app)
            .args(&x)
            .args(&mfcc)
            .args(&probs)
            .args(&logits),
        &format!("{what}: two_models"),
    );
    compare("mlp", &probs, what);
    compare("cnn", &logits, what);
}

/// The CNN and transformer libraries, and the MLP and CNN in one program.
fn cnn_transformer_and_two_models(target: &str, cc: &str, runner: &[&str], tag: &str) {
    let dir = scratch(tag);
    compile_example("mlp", &["--dim", "batch=2"], target, &[], &dir);
    compile_example("cnn", &[], target, &[], &dir);
    compile_example("transformer", TRANSFORMER_DIMS, target, &[], &dir);
    let what = format!("{tag} {cc} -static");
    for name in ["cnn", "transformer"] {
        check_generic_app("model_app.c", name, &dir, cc, &["-static"], runner, &what);
    }
    check_two_models(&dir, cc, runner, &what);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_64_cnn_transformer_and_two_models_in_one_program() {
    if !have("gcc", "the x86_64 staticlib examples test") {
        return;
    }
    cnn_transformer_and_two_models("x86_64-unknown-linux-gnu", "gcc", &[], "x86_64-examples");
}

#[test]
fn aarch64_cnn_transformer_and_two_models_in_one_program() {
    let cc = "aarch64-linux-gnu-gcc";
    if !have_all(&[cc, "qemu-aarch64"], "the aarch64 staticlib examples test") {
        return;
    }
    cnn_transformer_and_two_models(
        "aarch64-unknown-linux-gnu",
        cc,
        &["qemu-aarch64"],
        "aarch64-examples",
    );
}

#[test]
fn name_sets_the_symbol_prefix_and_a_bad_name_is_refused() {
    let dir = scratch("name");
    let model = root().join("examples/mlp/model.onnx");
    let compile = |name: &str| {
        targets::smelt_cmd()
            .arg("compile")
            .arg(&model)
            .args(["--dim", "batch=2", "--emit", "obj", "--name", name, "-o"])
            .arg(dir.join("m.o"))
            .output()
            .unwrap()
    };
    let ok = compile("my_net");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let h = std::fs::read_to_string(dir.join("m.h")).unwrap();
    for want in [
        "extern const smelt_model_info my_net_model;",
        "int32_t my_net_run(",
        "#define MY_NET_ARENA_BYTES ",
    ] {
        assert!(h.contains(want), "m.h lacks {want:?}");
    }
    let obj = std::fs::read(dir.join("m.o")).unwrap();
    for sym in [&b"my_net_run\0"[..], b"my_net_model\0"] {
        assert!(
            obj.windows(sym.len()).any(|w| w == sym),
            "no symbol {sym:?}"
        );
    }
    assert!(!obj.windows(16).any(|w| w == b"smelt_model_run\0"));
    let bad = compile("2-bad");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--name '2-bad' is not a C identifier"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A library compiled with `--threads 2` in a pthreads program
/// (`threads_app.c`) built by `cc` with each of `links`, run with `runner`:
/// runs on the main thread, on four pthreads at once and in a forked child
/// all give the same bytes, which match onnxruntime, and leave errno and
/// thread-local variables alone (the pool's raw threads have no TLS of
/// their own).
fn threaded_staticlib(target: &str, cc: &str, links: &[&str], runner: &[&str], tag: &str) {
    // qemu-user aborts a forked child of a multi-threaded process.
    let fork = if runner.is_empty() {
        "-DWITH_FORK"
    } else {
        "-DNO_FORK"
    };
    let dir = scratch(tag);
    for name in ["cnn", "transformer"] {
        let dims: &[&str] = if name == "cnn" { &[] } else { TRANSFORMER_DIMS };
        compile_example(name, dims, target, &["--threads", "2"], &dir);
        for link in links {
            let what = format!("{tag} threads {name} {cc} {link}");
            let flags = ["-pthread", link, fork];
            check_generic_app("threads_app.c", name, &dir, cc, &flags, runner, &what);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_64_threaded_staticlib_runs_beside_pthreads() {
    if !have("gcc", "the x86_64 threaded staticlib test") {
        return;
    }
    threaded_staticlib(
        "x86_64-unknown-linux-gnu",
        "gcc",
        &["-static", "-no-pie"],
        &[],
        "x86_64-threads",
    );
}

#[test]
fn aarch64_threaded_staticlib_runs_beside_pthreads_under_qemu() {
    let cc = "aarch64-linux-gnu-gcc";
    if !have_all(&[cc, "qemu-aarch64"], "the aarch64 threaded staticlib test") {
        return;
    }
    threaded_staticlib(
        "aarch64-unknown-linux-gnu",
        cc,
        &["-static"],
        &["qemu-aarch64"],
        "aarch64-threads",
    );
}

/// A failed run-time check through the C API (`tests/staticlib/gather_status.c`):
/// the library's run returns `SMELT_STATUS_OUT_OF_RANGE` and fills the
/// fault record (the check, the value, the bounds; the info table names the
/// node), and `SMELT_STATUS_OK` for in-range ids, with both backends.
#[test]
fn a_failed_check_returns_its_status_and_fault_record() {
    if !have("gcc", "the status check") {
        return;
    }
    let Some(models) = targets::python_models("staticlib", "tests/bounds/make_models.py", &[])
    else {
        return;
    };
    for backend in ["cranelift", "llvm"] {
        let dir = scratch(&format!("status-{backend}"));
        let model = models.join("gather/model.onnx");
        run_ok(
            targets::smelt_cmd()
                .args(targets::compile_args(
                    &model,
                    "x86_64-unknown-linux-gnu",
                    backend,
                ))
                .args(["--emit", "staticlib", "-o"])
                .arg(dir.join("libembed.a")),
            &format!("smelt compile --backend {backend} --emit staticlib"),
        );
        let app = dir.join("gather_status");
        run_ok(
            Command::new("gcc")
                .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
                .arg(&dir)
                .arg(root().join("tests/staticlib/gather_status.c"))
                .arg("-L")
                .arg(&dir)
                .args(["-lembed", "-o"])
                .arg(&app),
            &format!("{backend}: gcc gather_status.c"),
        );
        run_ok(
            &mut Command::new(&app),
            &format!("{backend}: gather_status"),
        );
    }
    let _ = std::fs::remove_dir_all(&models);
}
