//! Chat executables (`smelt compile MODEL.gguf|HF_DIR --emit exe`) against
//! llama.cpp and against each other.
//!
//! `scripts/make_llm.py` writes random-weight checkpoints (a Hugging Face
//! folder and GGUF files of the same weights, with a small byte-level BPE
//! tokenizer). llama.cpp (`tests/llm/ref_logits.c --text`) tokenizes the
//! prompt itself and extends it greedily; the chat program, given the same
//! text, must print the same token ids (`--ids --temp 0`) at every step
//! until the first one where llama.cpp's top two logits are a near-tie.
//! The prompt is longer than the prefill chunk, so whole chunks go through
//! the prefill model and the rest through the decode model. Further:
//!
//! - the program's ids are the same for every prefill chunk, for the Hugging
//!   Face folder and the GGUF file, and on every target: aarch64 and armv7
//!   under user-mode QEMU and Cortex-M4F firmware under `qemu-system-arm`
//!   (the prompt passed through semihosting);
//! - the streamed text is the `tokenizers` package's decoding of the ids;
//! - sampling is reproducible by seed, and top-k 1 is greedy;
//! - a prompt longer than the context, and bad flags, are refused with a
//!   message and a non-zero status; `--bench` prints its timings line.
//!
//! Without `.venv` or the built reference (`scripts/setup` makes both) the
//! tests say so and skip; under CI they fail instead.

#[path = "common/llm.rs"]
mod llm_ref;
#[path = "common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llm_ref::{make_llm, reference};
use targets::{firmware_cmd, have, ok, run_ok, runner_cmd, scratch, smelt, venv_python};

/// The prompt: about 20 tokens of the test tokenizer, several prefill chunks.
const PROMPT: &str = "Hello world, this is a prompt that spans several chunks";
/// Tokens generated.
const N: usize = 24;
/// The prefill chunk of the test programs (the prompt is not a multiple).
const CHUNK: &str = "4";
/// The KV cache capacity of the test programs.
const CTX: &str = "96";

/// Compiles `model` into the chat program `out` for `target` with
/// `backend` and `extra` flags.
fn compile(model: &Path, out: &Path, target: &str, backend: &str, extra: &[&str]) {
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "--target",
        target,
        "--backend",
        backend,
        "--ctx",
        CTX,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(smelt(&args), &format!("smelt compile {}", model.display()));
}

/// Runs the chat program `exe` (under `runner`) with `args`.
fn chat(exe: &Path, runner: &[&str], args: &[&str]) -> Output {
    runner_cmd(runner, exe).args(args).output().expect("runs")
}

/// The ids `--ids` printed.
fn ids_of(out: &Output, what: &str) -> Vec<u32> {
    let out = ok(out.clone(), what);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{what}: not an id: {s}"))
        })
        .collect()
}

/// The greedy ids of `exe` on PROMPT.
fn greedy(exe: &Path, runner: &[&str]) -> Vec<u32> {
    let n = N.to_string();
    let out = chat(
        exe,
        runner,
        &["-p", PROMPT, "-n", &n, "--temp", "0", "--ids"],
    );
    ids_of(&out, &format!("{} under {runner:?}", exe.display()))
}

/// Runs ref_logits on `gguf` with `args`: the fed ids and one logits row
/// per fed token.
fn ref_logits(
    bin: &Path,
    gguf: &Path,
    dir: &Path,
    n: usize,
    args: &[String],
) -> (Vec<u32>, Vec<Vec<f32>>) {
    let file = dir.join("ref.f32");
    let mut cmd = Command::new(bin);
    cmd.arg(gguf)
        .arg(n.to_string())
        .arg(&file)
        .arg("--batch")
        .args(args);
    let out = run_ok(&mut cmd, "ref_logits");
    let ids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let flat: Vec<f32> = std::fs::read(&file)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let vocab = flat.len() / ids.len();
    (ids, flat.chunks(vocab).map(<[f32]>::to_vec).collect())
}

/// Checks smelt's greedy continuation `got` of PROMPT against llama.cpp on
/// `gguf`: llama.cpp tokenizes PROMPT, then reads the prompt and `got` in
/// one batch (teacher forcing), and at every step smelt's token must be
/// llama.cpp's argmax, or within `tol` of its largest logit (a near-tie,
/// where the two implementations' rounding may pick either). Returns how
/// many of smelt's tokens are exactly llama.cpp's argmax.
fn check_against_llama_cpp(
    bin: &Path,
    gguf: &Path,
    dir: &Path,
    got: &[u32],
    tol: f32,
    what: &str,
) -> usize {
    check_continuation(bin, gguf, dir, PROMPT, got, tol, what)
}

/// [`check_against_llama_cpp`] for the prompt `text`.
fn check_continuation(
    bin: &Path,
    gguf: &Path,
    dir: &Path,
    text: &str,
    got: &[u32],
    tol: f32,
    what: &str,
) -> usize {
    let (prompt, _) = ref_logits(bin, gguf, dir, 0, &["--text".into(), text.into()]);
    let mut ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    ids.extend(got[..got.len() - 1].iter().map(u32::to_string));
    let (fed, rows) = ref_logits(bin, gguf, dir, ids.len(), &ids);
    assert_eq!(fed.len(), prompt.len() + got.len() - 1);
    let mut exact = 0;
    for (k, &g) in got.iter().enumerate() {
        let row = &rows[prompt.len() - 1 + k];
        let (best, max) = row
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
        let mine = row[g as usize];
        assert!(
            mine >= max - tol,
            "{what}: step {k}: smelt chose {g} (llama.cpp's logit {mine}), llama.cpp's argmax \
             is {best} ({max}); smelt's ids {got:?}"
        );
        exact += usize::from(g as usize == best);
    }
    exact
}

/// The checkpoints of `arch` with GGUF files of `types`, or `None` without
/// `.venv`.
fn checkpoints(arch: &str, types: &str) -> Option<PathBuf> {
    make_llm(
        &format!("chat-{arch}-{types}"),
        &["--arch", arch, "--gguf", types],
    )
}

#[test]
fn greedy_ids_match_llama_cpp() {
    let Some(bin) = reference() else { return };
    // The tolerance per format: llama.cpp rounds the activations of an F16
    // product to f16 and of a Q8_0 product to Q8_0 blocks, smelt keeps them
    // f32 (tests/llm.rs measures the logit errors: 1e-4 for F32, up to 0.7
    // for Q8_0); Q4_0 and Q4_1 products quantize activations to Q8_0 and
    // Q8_1 blocks in llama.cpp.
    let cases = [
        ("llama", "q8_0", 1.0),
        ("qwen2", "f32", 1e-3),
        ("mistral", "f16", 0.1),
        ("qwen3", "q4_0", 1.5),
        ("llama", "q4_1", 1.5),
    ];
    for (arch, ty, tol) in cases {
        let Some(dir) = checkpoints(arch, ty) else {
            return;
        };
        let gguf = dir.join(format!("model-{ty}.gguf"));
        let exe = dir.join("chat");
        compile(
            &gguf,
            &exe,
            "x86_64",
            "cranelift",
            &["--prefill-chunk", CHUNK],
        );
        let what = format!("{arch} {ty}");
        let got = greedy(&exe, &[]);
        let exact = check_against_llama_cpp(&bin, &gguf, &dir, &got, tol, &what);
        eprintln!("{what}: {exact} of {N} tokens are llama.cpp's argmax, the rest within {tol}");
        if ty == "f32" {
            assert!(
                exact + 2 >= N,
                "{what}: only {exact} of {N} tokens are llama.cpp's argmax"
            );
        }
    }
}

#[test]
fn same_ids_for_every_chunk_and_both_formats() {
    let Some(dir) = checkpoints("llama", "f32") else {
        return;
    };
    let gguf = dir.join("model-f32.gguf");
    let base = dir.join("chat-1");
    compile(
        &gguf,
        &base,
        "x86_64",
        "cranelift",
        &["--prefill-chunk", "1"],
    );
    let want = greedy(&base, &[]);
    for chunk in ["4", "7", "32"] {
        let exe = dir.join(format!("chat-{chunk}"));
        compile(
            &gguf,
            &exe,
            "x86_64",
            "cranelift",
            &["--prefill-chunk", chunk],
        );
        assert_eq!(greedy(&exe, &[]), want, "prefill chunk {chunk}");
    }
    let hf = dir.join("chat-hf");
    compile(&dir.join("hf"), &hf, "x86_64", "cranelift", &[]);
    assert_eq!(greedy(&hf, &[]), want, "the Hugging Face folder");
}

#[test]
fn same_ids_on_every_target() {
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let gguf = dir.join("model-q8_0.gguf");
    let host = dir.join("chat-x86_64");
    compile(
        &gguf,
        &host,
        "x86_64",
        "cranelift",
        &["--prefill-chunk", CHUNK],
    );
    let want = greedy(&host, &[]);
    let llvm = dir.join("chat-x86_64-llvm");
    compile(&gguf, &llvm, "x86_64", "llvm", &["--prefill-chunk", CHUNK]);
    assert_eq!(greedy(&llvm, &[]), want, "x86_64 llvm");
    for (target, backend, qemu) in [
        ("aarch64", "cranelift", "qemu-aarch64"),
        ("aarch64", "llvm", "qemu-aarch64"),
        ("armv7", "llvm", "qemu-arm"),
    ] {
        if !have(qemu, "the chat program under QEMU") {
            continue;
        }
        let exe = dir.join(format!("chat-{target}-{backend}"));
        compile(&gguf, &exe, target, backend, &["--prefill-chunk", CHUNK]);
        assert_eq!(greedy(&exe, &[qemu]), want, "{target} {backend}");
    }
    if have("qemu-system-arm", "the chat firmware") {
        let fw = dir.join("chat-m4");
        compile(&gguf, &fw, "thumbv7em-none-eabihf", "llvm", &[]);
        let out = firmware_cmd(&fw, &dir)
            .arg("-append")
            .arg(format!("-p \"{PROMPT}\" -n {N} --temp 0 --ids"))
            .output()
            .unwrap();
        assert_eq!(ids_of(&out, "the Cortex-M4F firmware"), want);
    }
}

#[test]
fn text_is_the_tokenizers_decoding() {
    let Some(python) = venv_python("the chat text check") else {
        return;
    };
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let exe = dir.join("chat");
    compile(
        &dir.join("model-q8_0.gguf"),
        &exe,
        "x86_64",
        "cranelift",
        &[],
    );
    let ids = greedy(&exe, &[]);
    let n = N.to_string();
    let out = chat(&exe, &[], &["-p", PROMPT, "-n", &n, "--temp", "0"]);
    let text = ok(out, "chat").stdout;
    let script = "import sys, tokenizers\n\
                  t = tokenizers.Tokenizer.from_file(sys.argv[1])\n\
                  ids = [int(x) for x in sys.argv[2:]]\n\
                  sys.stdout.buffer.write(t.decode(ids, skip_special_tokens=True).encode('utf-8', 'surrogateescape'))\n";
    let mut cmd = Command::new(python);
    cmd.args(["-c", script])
        .arg(dir.join("hf/tokenizer.json"))
        .args(ids.iter().map(u32::to_string));
    let want = run_ok(&mut cmd, "tokenizers decode").stdout;
    // The program ends the text with a newline; invalid UTF-8 in a piece
    // (random weights pick bytes freely) is U+FFFD in `tokenizers`.
    let got = String::from_utf8_lossy(&text).into_owned();
    let want = String::from_utf8_lossy(&want).into_owned();
    assert_eq!(got.strip_suffix('\n'), Some(want.as_str()));
}

#[test]
fn sampling_is_seeded_and_top_k_one_is_greedy() {
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let exe = dir.join("chat");
    compile(
        &dir.join("model-q8_0.gguf"),
        &exe,
        "x86_64",
        "cranelift",
        &[],
    );
    let n = N.to_string();
    let sample = |seed: &str| {
        let args = [
            "-p", PROMPT, "-n", &n, "--temp", "1.5", "--seed", seed, "--ids",
        ];
        ids_of(&chat(&exe, &[], &args), "sampling")
    };
    let (a, b, c) = (sample("7"), sample("7"), sample("8"));
    assert_eq!(a, b, "the same seed gives the same tokens");
    assert_ne!(a, c, "another seed gives other tokens");
    let top1 = [
        "-p", PROMPT, "-n", &n, "--temp", "5", "--top-k", "1", "--ids",
    ];
    assert_eq!(
        ids_of(&chat(&exe, &[], &top1), "top-k 1"),
        greedy(&exe, &[])
    );
}

#[test]
fn errors_and_bench() {
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let exe = dir.join("chat");
    let gguf = dir.join("model-q8_0.gguf");
    let ok_args = ["--ctx", "8", "-o", exe.to_str().unwrap()];
    ok(
        smelt(&[&["compile", gguf.to_str().unwrap()][..], &ok_args].concat()),
        "compile",
    );
    let long = chat(&exe, &[], &["-p", PROMPT, "--temp", "0"]);
    assert_eq!(long.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&long.stderr);
    assert!(msg.contains("compile with a larger --ctx"), "{msg}");
    for bad in [
        &["--temp", "hot"][..],
        &["-n", "-3"],
        &["--frobnicate"],
        &["--chat"],
    ] {
        let out = chat(&exe, &[], &[&["-p", "hi"][..], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    }
    let out = ok(
        chat(&exe, &[], &["-p", "hi", "-n", "5", "--bench"]),
        "--bench",
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    // timings: prompt P tokens X tok/s, decode 4 tokens Y tok/s
    assert_eq!(words.len(), 11, "{line}");
    assert_eq!(
        (words[0], words[1], words[6], words[7]),
        ("timings:", "prompt", "decode", "4")
    );
    assert!(words[4].parse::<f64>().unwrap() > 0.0, "{line}");
    assert!(words[9].parse::<f64>().unwrap() > 0.0, "{line}");
    // A language model keeps --emit obj for its step graph; --prefill-chunk
    // belongs to the executable only.
    let obj = dir.join("step.o");
    let out = smelt(&[
        "compile",
        gguf.to_str().unwrap(),
        "--emit",
        "obj",
        "--prefill-chunk",
        "4",
        "-o",
        obj.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prefill-chunk"));
    let _ = scratch("chat", "unused");
}

/// Builds `tests/chat/embed.c` against the library `libtiny.a` in `dir`
/// with `cc` and runs it (under `runner`): its three lines of ids.
fn embed(dir: &Path, cc: &str, runner: &[&str], what: &str) -> Vec<Vec<u32>> {
    let app = dir.join(format!("embed-{}", what.replace(' ', "-")));
    let mut build = Command::new(cc);
    build
        .args([
            "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-I",
        ])
        .arg(dir)
        .arg(targets::root().join("tests/chat/embed.c"))
        .arg("-L")
        .arg(dir)
        .args(["-ltiny", "-o"])
        .arg(&app);
    run_ok(&mut build, &format!("{what}: {cc} embed.c"));
    let n = N.to_string();
    let out = run_ok(runner_cmd(runner, &app).args([PROMPT, &n]), what);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(|s| s.parse().unwrap()).collect())
        .collect()
}

#[test]
fn c_api_gives_the_chat_programs_ids() {
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let gguf = dir.join("model-q8_0.gguf");
    let exe = dir.join("chat");
    compile(
        &gguf,
        &exe,
        "x86_64",
        "cranelift",
        &["--prefill-chunk", CHUNK],
    );
    let want = greedy(&exe, &[]);
    for (target, cc, runner) in [
        ("x86_64", "gcc", &[][..]),
        ("aarch64", "aarch64-linux-gnu-gcc", &["qemu-aarch64"][..]),
    ] {
        if !runner
            .iter()
            .chain([&cc])
            .all(|t| have(t, "the C API test"))
        {
            continue;
        }
        let lib_dir = dir.join(format!("lib-{target}"));
        std::fs::create_dir_all(&lib_dir).unwrap();
        let lib = lib_dir.join("libtiny.a");
        let args = ["--emit", "staticlib", "--prefill-chunk", CHUNK];
        compile(&gguf, &lib, target, "cranelift", &args);
        // The same inputs give the same bytes.
        let again = dir.join(format!("again-{target}/libtiny.a"));
        std::fs::create_dir_all(again.parent().unwrap()).unwrap();
        compile(&gguf, &again, target, "cranelift", &args);
        assert_eq!(std::fs::read(&lib).unwrap(), std::fs::read(&again).unwrap());
        let lines = embed(&lib_dir, cc, runner, target);
        assert_eq!(lines.len(), 3, "{target}: {lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line, &want, "{target}: line {} of embed.c", i + 1);
        }
        if target == "x86_64" && have("g++", "the header as C++") {
            let mut cxx = Command::new("g++");
            cxx.args(["-x", "c++", "-fsyntax-only", "-Wall", "-Werror"])
                .arg(lib_dir.join("tiny.h"));
            run_ok(&mut cxx, "tiny.h as C++");
        }
    }
}

#[test]
fn chat_program_is_reproducible() {
    let Some(dir) = checkpoints("llama", "q8_0") else {
        return;
    };
    let gguf = dir.join("model-q8_0.gguf");
    let (a, b) = (dir.join("a/chat"), dir.join("b/chat"));
    for exe in [&a, &b] {
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        compile(&gguf, exe, "x86_64", "cranelift", &[]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// `messages` (role, content pairs) rendered by jinja2 from the chat
/// template of `hf/tokenizer_config.json` the way Hugging Face transformers
/// renders it (trim_blocks, lstrip_blocks), with the generation prompt.
fn jinja(python: &Path, hf: &Path, messages: &[(&str, &str)]) -> String {
    let script = "import json, sys, jinja2.sandbox\n\
                  t = json.load(open(sys.argv[1]))['chat_template']\n\
                  env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)\n\
                  m = [{'role': r, 'content': c} for r, c in zip(sys.argv[2::2], sys.argv[3::2])]\n\
                  sys.stdout.write(env.from_string(t).render(messages=m, add_generation_prompt=True))\n";
    let mut cmd = Command::new(python);
    cmd.args(["-c", script])
        .arg(hf.join("tokenizer_config.json"))
        .args(messages.iter().flat_map(|(r, c)| [*r, *c]));
    String::from_utf8(run_ok(&mut cmd, "jinja2").stdout).unwrap()
}

#[test]
fn chat_turns_follow_the_template() {
    let Some(bin) = reference() else { return };
    let Some(python) = venv_python("the chat template test") else {
        return;
    };
    let Some(dir) = make_llm(
        "chat-chatml",
        &["--arch", "qwen2", "--gguf", "q8_0", "--chatml"],
    ) else {
        return;
    };
    let gguf = dir.join("model-q8_0.gguf");
    let exe = dir.join("chat");
    compile(&gguf, &exe, "x86_64", "cranelift", &[]);
    let n = N.to_string();
    // With a system message, and without (the template's default one).
    let cases: [(Option<&str>, &str); 2] = [
        (Some("Be brief."), "Hello there"),
        (None, "What is a llama?"),
    ];
    for (system, user) in cases {
        let mut args = vec![
            "--chat",
            "-p",
            user,
            "-n",
            &n,
            "--temp",
            "0",
            "--ids",
            "--verbose-prompt",
        ];
        let mut messages = vec![];
        if let Some(s) = system {
            args.extend(["--system", s]);
            messages.push(("system", s));
        }
        messages.push(("user", user));
        let out = ok(chat(&exe, &[], &args), "chat --chat");
        let text = jinja(&python, &dir.join("hf"), &messages);
        let (want, _) = ref_logits(&bin, &gguf, &dir, 0, &["--text".into(), text.clone()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let prompt: Vec<u32> = stderr
            .lines()
            .find_map(|l| l.strip_prefix("prompt:"))
            .unwrap_or_else(|| panic!("no prompt line: {stderr}"))
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(prompt, want, "{system:?}: the prompt of {text:?}");
        let got: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(!got.is_empty());
        check_continuation(&bin, &gguf, &dir, &text, &got, 1.0, "chatml");
    }
    // Two turns from stdin: two lines of ids, the second turn's prompt
    // closes the first answer and opens the next turn.
    let mut child = Command::new(&exe)
        .args([
            "--chat",
            "-n",
            "4",
            "--temp",
            "0",
            "--ids",
            "--verbose-prompt",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hi\nTell me more\n")
        .unwrap();
    let out = ok(child.wait_with_output().unwrap(), "two turns");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("prompt:")
            .count(),
        2
    );
}

#[test]
fn llama3_rope_scaling_matches_llama_cpp() {
    let Some(bin) = reference() else { return };
    let Some(dir) = make_llm(
        "chat-rope-llama3",
        &["--arch", "llama", "--gguf", "f32", "--rope-llama3"],
    ) else {
        return;
    };
    // config.json's rope_scaling (Hugging Face's formula) and the GGUF
    // file's rope_freqs tensor (llama.cpp's converter's factors).
    let gguf = dir.join("model-f32.gguf");
    let (a, b) = (dir.join("chat-gguf"), dir.join("chat-hf"));
    compile(&gguf, &a, "x86_64", "cranelift", &[]);
    compile(&dir.join("hf"), &b, "x86_64", "cranelift", &[]);
    let got = greedy(&a, &[]);
    assert_eq!(greedy(&b, &[]), got, "the GGUF and Hugging Face forms");
    let exact = check_against_llama_cpp(&bin, &gguf, &dir, &got, 1e-3, "llama3 rope");
    assert!(
        exact + 2 >= N,
        "only {exact} of {N} tokens are llama.cpp's argmax"
    );
}
