//! `smelt inspect` on a language model, against figures computed without
//! the code under test: `scripts/make_llm.py` writes tiny random-weight
//! checkpoints (a Hugging Face folder and GGUF files of the same weights),
//! and for each
//!
//! - the KV cache bytes per token and for `--ctx` equal
//!   `2 · layers · kv_heads · head_dim · 4` computed here from
//!   `config.json`;
//! - the parameters by encoding (tensors, elements, bytes) equal the sums
//!   over the files' tensors as the `gguf` and `safetensors` packages read
//!   them (`tests/llm_inspect/tensors.py`);
//! - the arena, the state buffer (the KV cache) and the weights equal what
//!   `smelt compile` of the same model with the same `--ctx` reports (its
//!   header's `#define`s and its summary line), for x86_64 and for the
//!   Cortex-M4F, where the estimate is also checked against `--memory`.
//!
//! `--ctx` on an ONNX model is refused. Without `.venv` (made by
//! `scripts/setup`) the checkpoint tests say so and skip.

#[path = "common/targets.rs"]
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use targets::{ok, root, run_ok, smelt, venv_python};

/// The context the checks use: small, so the cache is small, and a
/// multiple of 4 tokens (a 16-wide f32 head row is 64 bytes), so each
/// layer's cache fills whole 64-byte state slots.
const CTX: &str = "24";

/// A byte count as `smelt inspect` prints it (`512 B`, or `12.0 KiB (12288
/// B)`): the exact count is the capture.
const BYTES: &str = r"(?:[0-9.]+ [KMGT]iB \()?([0-9]+) B\)?";

/// `make_llm.py args` into a fresh folder, or `None` without `.venv`.
fn make_llm(tag: &str, args: &[&str]) -> Option<PathBuf> {
    targets::make_llm("llm-inspect", tag, args)
}

/// The first capture of `re` in `text`, as a number (thousands separators
/// dropped).
fn number(text: &str, re: &str) -> u64 {
    let caps = Regex::new(re)
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("no match for {re} in:\n{text}"));
    caps[1].replace(',', "").parse().unwrap()
}

/// The captures of `re` in `text`, as numbers.
fn numbers(text: &str, re: &str) -> Vec<u64> {
    let caps = Regex::new(re)
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("no match for {re} in:\n{text}"));
    caps.iter()
        .skip(1)
        .map(|c| c.unwrap().as_str().replace(',', "").parse().unwrap())
        .collect()
}

/// `smelt inspect model args…`'s standard output.
fn inspect(model: &Path, args: &[&str]) -> String {
    let mut all = vec!["inspect", model.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = ok(
        smelt(&all),
        &format!("smelt inspect {}", all[1..].join(" ")),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The KV cache bytes of one token, from the folder's `config.json`.
fn kv_bytes_per_token(hf: &Path) -> u64 {
    let text = std::fs::read_to_string(hf.join("config.json")).unwrap();
    let c: serde_json::Value = serde_json::from_str(&text).unwrap();
    let key = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("config.json: {k}"));
    let heads = key("num_attention_heads");
    let kv_heads = c["num_key_value_heads"].as_u64().unwrap_or(heads);
    let head_dim = c["head_dim"].as_u64().unwrap_or(key("hidden_size") / heads);
    2 * key("num_hidden_layers") * kv_heads * head_dim * 4
}

/// Tensors, elements and bytes per encoding of `files`, counted by the
/// Python packages.
fn file_counts(files: &[PathBuf]) -> BTreeMap<String, [u64; 3]> {
    let python = venv_python("the tensor counts").expect("checked by make_llm");
    let out = run_ok(
        Command::new(python)
            .arg(root().join("tests/llm_inspect/tensors.py"))
            .args(files),
        "tensors.py",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The parameters by encoding `smelt inspect` printed.
fn printed_counts(text: &str) -> BTreeMap<String, [u64; 3]> {
    let re = Regex::new(&format!(
        r"(?m)^  ([a-z0-9_]+): ([0-9]+) tensor\(s\), ([0-9,]+) parameters, {BYTES}$"
    ))
    .unwrap();
    re.captures_iter(text)
        .map(|c| {
            let n = |i: usize| c[i].replace(',', "").parse().unwrap();
            (c[1].to_string(), [n(2), n(3), n(4)])
        })
        .collect()
}

/// Checks the KV cache and parameter figures of `smelt inspect model` for
/// the folder `hf` describing it and the weight `files`; returns the
/// printed report.
fn check_summary(model: &Path, hf: &Path, files: &[PathBuf]) -> String {
    let text = inspect(model, &["--ctx", CTX]);
    let per_token = kv_bytes_per_token(hf);
    let ctx: u64 = CTX.parse().unwrap();
    let kv = numbers(
        &text,
        &format!(
            r"KV cache: {BYTES} per token \(f32 keys and values\); {BYTES} for a context of ([0-9]+) tokens \(--ctx {CTX}\)"
        ),
    );
    assert_eq!(kv, vec![per_token, per_token * ctx, ctx], "{text}");
    let want = file_counts(files);
    assert_eq!(printed_counts(&text), want, "{}:\n{text}", model.display());
    let total: u64 = want.values().map(|c| c[1]).sum();
    assert_eq!(number(&text, r"(?m)^parameters: ([0-9,]+) "), total);
    text
}

/// The decode step's figures `smelt inspect` printed: (weights, tokenizer
/// table, state, arena).
fn printed_memory(text: &str) -> [u64; 4] {
    let ro = numbers(
        text,
        &format!(
            r"  read-only: {BYTES} = weights and constants {BYTES} \+ tokenizer table {BYTES}"
        ),
    );
    assert_eq!(ro[0], ro[1] + ro[2], "{text}");
    let ram = numbers(
        text,
        &format!(
            r"  RAM: {BYTES} = KV cache \(state\) {BYTES} \+ arena {BYTES} \+ inputs and outputs {BYTES} \+ tokenizer tables {BYTES}"
        ),
    );
    assert_eq!(ram[0], ram[1..].iter().sum::<u64>(), "{text}");
    [ro[1], ro[2], ram[1], ram[2]]
}

/// Compiles `model` with `--ctx` to an object for `target` with `backend`
/// and checks the arena, state buffer and weights against `smelt inspect`'s
/// report `text` for the same target.
fn check_against_compile(model: &Path, text: &str, target: &str, backend: &str, dir: &Path) {
    let [weights, _, state, arena] = printed_memory(text);
    let obj = dir.join(format!("m-{target}.o"));
    let out = ok(
        smelt(&[
            "compile",
            model.to_str().unwrap(),
            "--ctx",
            CTX,
            "--target",
            target,
            "--backend",
            backend,
            "--emit",
            "obj",
            "-o",
            obj.to_str().unwrap(),
        ]),
        "smelt compile",
    );
    let header = std::fs::read_to_string(obj.with_extension("h")).unwrap();
    let define = |name: &str| number(&header, &format!(r"#define \w+_{name} ([0-9]+)"));
    // The header's arena is at least one alignment unit.
    assert_eq!(arena.max(64), define("ARENA_BYTES"), "{target}: arena");
    assert_eq!(state, define("STATE_BYTES"), "{target}: state");
    // Every layer's cache fills whole state slots (see CTX): the state
    // buffer is the KV cache.
    let kv = number(text, &format!(r"; {BYTES} for a context"));
    assert_eq!(state, kv, "{target}: state buffer against the KV cache");
    // The summary line prints the arena and the weights rounded.
    let line = String::from_utf8(out.stdout).unwrap();
    let human = |what: &str| {
        let re = Regex::new(&format!(r"{what} ([0-9.]+ [KMGT]?i?B)")).unwrap();
        re.captures(&line).unwrap()[1].to_string()
    };
    let rounded = |n: u64| {
        let h = Regex::new(&format!(r"([0-9.]+ [KMGT]?i?B) \({n} B\)|\b({n} B)"))
            .unwrap()
            .captures(text)
            .unwrap_or_else(|| panic!("{n} B is not in:\n{text}"));
        h.get(1).or(h.get(2)).unwrap().as_str().to_string()
    };
    assert_eq!(human("arena"), rounded(arena), "{target}: {line}");
    assert_eq!(human("weights"), rounded(weights), "{target}: {line}");
}

#[test]
fn hugging_face_folder_figures_are_the_real_ones() {
    let Some(dir) = make_llm("hf", &["--arch", "llama", "--gguf", "f32"]) else {
        return;
    };
    let hf = dir.join("hf");
    let text = check_summary(&hf, &hf, &[hf.join("model.safetensors")]);
    // Without --ctx the context is the model's maximum (at most 4096), and
    // a larger --ctx is clamped to it; the report says which.
    let text_json = std::fs::read_to_string(hf.join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text_json).unwrap();
    let max = config["max_position_embeddings"].as_u64().unwrap();
    let ctx = max.min(4096);
    let per_token = kv_bytes_per_token(&hf);
    for (args, why) in [
        (vec![], "the default"),
        (vec!["--ctx", "100000"], "--ctx 100000, clamped"),
    ] {
        let t = inspect(&hf, &args);
        let kv = numbers(
            &t,
            &format!(r"; {BYTES} for a context of ([0-9]+) tokens \({why}"),
        );
        assert_eq!(kv, vec![per_token * ctx, ctx], "{t}");
    }
    // The folder's tokenizer is one smelt builds: its table counts.
    let [_, table, _, _] = printed_memory(&text);
    assert!(table > 0, "{text}");
    assert!(
        text.contains("decode step on x86_64-unknown-linux-gnu"),
        "{text}"
    );
    check_against_compile(&hf, &text, "x86_64-unknown-linux-gnu", "cranelift", &dir);

    // The Cortex-M4F: planned as the LLVM backend compiles it, and checked
    // against the memory map.
    let m4 = "thumbv7em-none-eabihf";
    let text = inspect(&hf, &["--ctx", CTX, "--target", m4]);
    assert!(text.contains("backend llvm"), "{text}");
    assert!(text.contains("  fits the memory map\n"), "{text}");
    check_against_compile(&hf, &text, m4, "llvm", &dir);
    let small = inspect(
        &hf,
        &[
            "--ctx",
            CTX,
            "--target",
            m4,
            "--memory",
            "flash=64K,ram=32K,stack=8K",
        ],
    );
    assert!(
        small.contains("the firmware does not fit the memory map: flash: needs"),
        "{small}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gguf_figures_are_the_real_ones() {
    // f16 weights in the folder and F16 and Q8_0 files: three encodings.
    let Some(dir) = make_llm(
        "gguf",
        &["--arch", "qwen2", "--hf-dtype", "f16", "--gguf", "f16,q8_0"],
    ) else {
        return;
    };
    let hf = dir.join("hf");
    check_summary(&hf, &hf, &[hf.join("model.safetensors")]);
    for file in ["model-f16.gguf", "model-q8_0.gguf"] {
        let gguf = dir.join(file);
        let text = check_summary(&gguf, &hf, std::slice::from_ref(&gguf));
        check_against_compile(&gguf, &text, "x86_64-unknown-linux-gnu", "cranelift", &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctx_is_refused_on_onnx_models() {
    let mlp = root().join("examples/mlp/model.onnx");
    for cmd in ["inspect", "compile", "run"] {
        let o = smelt(&[cmd, mlp.to_str().unwrap(), "--ctx", "8"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success()
                && err.contains("--ctx 8 sets a language model's KV cache capacity")
                && err.contains("read as ONNX, which has no KV cache; drop --ctx"),
            "{cmd}: {err}"
        );
    }
}
