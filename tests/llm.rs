//! Llama-family models against llama.cpp: `scripts/make_llm.py` writes a
//! random-weight checkpoint of each architecture (llama, qwen2 with q/k/v
//! biases, qwen3 with q/k norms, mistral) as a Hugging Face folder and as an
//! F32 GGUF file of the same weights (q/k rows permuted for llama/mistral as
//! llama.cpp's converter does). The reference is llama.cpp built from the
//! `llama-cpp-python` sdist by `scripts/setup-llama-cpp`, driven by
//! `tests/llm/ref_logits.c`: it dumps the logits of every step of a 32-token
//! greedy run on the GGUF file.
//!
//! smelt imports the Hugging Face folder (`frontend::load`: `hf.rs` and the
//! graph builder `llm/`) and runs the decode graph (T = 1) in the reference
//! interpreter step by step, the KV cache carried as state, feeding the same
//! tokens as llama.cpp. Checked at every step:
//!
//! - the logits match within `|a - b| <= ATOL + RTOL * max|ref|`;
//! - the greedy token (argmax) equals llama.cpp's wherever llama.cpp's top
//!   two logits are not a near-tie (closer than `TIE`);
//! - a prefill graph (T = 4) followed by decode steps gives the logits of
//!   T = 1 steps.
//!
//! The decode graph also compiles natively (Cranelift, x86_64): three steps
//! at a position past the start (the same token each step, as the
//! executable's `--steps` repeats its inputs) give the interpreter's logits.
//!
//! Without `.venv` or the built reference (`scripts/setup` makes both) the
//! tests say so and skip.

#[path = "common/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_frontend::ImportOptions;
use smelt_frontend::llm::LlmOptions;
use smelt_frontend::npy::{read_npy, write_npy};
use smelt_ir::interp::Interpreter;
use smelt_ir::{Graph, OpDef, Tensor};
use targets::{ok, root, run_ok, smelt};

/// Tokens of the greedy run (prompt included).
const STEPS: usize = 32;
/// The prompt's token ids.
const PROMPT: [i64; 6] = [5, 40, 77, 120, 9, 301];
/// Absolute and relative (to the step's largest reference logit) tolerance:
/// llama.cpp sums in f32 in its own order, the interpreter in another.
const ATOL: f32 = 1e-4;
const RTOL: f32 = 2e-4;
/// Top-2 logits closer than this are a near-tie: the greedy ids may differ.
const TIE: f32 = 1e-3;
/// The context the test graphs are built with.
const CTX: usize = 64;

/// The llama.cpp dumper, or `None` (after saying so) when `scripts/setup`
/// has not built it.
fn reference() -> Option<PathBuf> {
    let out = run_ok(
        Command::new(root().join("scripts/setup-llama-cpp")).arg("--path"),
        "setup-llama-cpp --path",
    );
    let path = root().join(String::from_utf8_lossy(&out.stdout).trim());
    if path.exists() {
        Some(path)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no llama.cpp reference at {}: CI runs scripts/setup, which builds it",
            path.display()
        );
        eprintln!(
            "skipping: no llama.cpp reference at {} (scripts/setup builds it)",
            path.display()
        );
        None
    }
}

/// The checkpoints of `arch` written by `make_llm.py` (`hf/` with weights
/// of `dtype`, `model-f32.gguf` of the same values), or `None` without
/// `.venv`.
fn models(arch: &str, dtype: &str) -> Option<PathBuf> {
    make_llm(
        &format!("{arch}-{dtype}"),
        &["--arch", arch, "--hf-dtype", dtype, "--gguf", "f32"],
    )
}

/// A scratch folder (tagged `tag`) filled by `make_llm.py args`, or `None`
/// (after saying so) without `.venv`.
fn make_llm(tag: &str, args: &[&str]) -> Option<PathBuf> {
    targets::make_llm("llm", tag, args)
}

/// llama.cpp's run on `gguf`: the fed token ids and the logits of every
/// step (`ids.len()` rows).
fn llama_cpp(bin: &Path, gguf: &Path, dir: &Path, batch: bool) -> (Vec<i64>, Vec<Vec<f32>>) {
    let out_file = dir.join(if batch { "ref-batch.f32" } else { "ref.f32" });
    let mut cmd = Command::new(bin);
    cmd.arg(gguf).arg(STEPS.to_string()).arg(&out_file);
    if batch {
        cmd.arg("--batch");
    }
    cmd.args(PROMPT.iter().map(i64::to_string));
    let out = run_ok(&mut cmd, "ref_logits");
    let ids: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), STEPS, "ref_logits printed {ids:?}");
    let bytes = std::fs::read(&out_file).unwrap();
    let flat: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(flat.len() % STEPS, 0);
    let vocab = flat.len() / STEPS;
    (ids, flat.chunks(vocab).map(<[f32]>::to_vec).collect())
}

/// The step graph of the folder `hf` for `tokens` per step.
fn graph(hf: &Path, tokens: usize) -> Graph {
    let opts = ImportOptions::default().llm(LlmOptions {
        tokens,
        ctx: Some(CTX),
        last_logits_only: false,
    });
    smelt_frontend::load(hf, &opts).unwrap()
}

/// Runs `graphs[i]` on chunk `i` of `ids` (chunk lengths are the graphs'
/// token counts), carrying the KV cache; the logits of every token.
fn run(graphs: &[(&Graph, usize)], ids: &[i64]) -> Vec<Vec<f32>> {
    let mut logits = Vec::new();
    let mut state: Option<Vec<Tensor>> = None;
    let mut pos = 0usize;
    for &(g, t) in graphs {
        let interp = Interpreter::new(g);
        let s = match state.take() {
            Some(s) => s,
            None => interp.zero_state().unwrap(),
        };
        let tokens = Tensor::from_vec(vec![t], ids[pos..pos + t].to_vec()).unwrap();
        let p = Tensor::from_vec(vec![1], vec![pos as i64]).unwrap();
        let (out, next) = interp.step(vec![tokens, p], s).unwrap();
        let l = out[0].as_slice::<f32>().unwrap();
        logits.extend(l.chunks(l.len() / t).map(<[f32]>::to_vec));
        state = Some(next);
        pos += t;
    }
    logits
}

/// The index of the largest value and the gap to the second largest.
fn top2(v: &[f32]) -> (usize, f32) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    (idx[0], v[idx[0]] - v[idx[1]])
}

/// Compares the logits of every step; returns the largest absolute error.
fn compare(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: step count");
    let mut worst = 0f32;
    for (s, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: vocabulary at step {s}");
        let scale = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let tol = atol + rtol * scale;
        for (v, (a, b)) in g.iter().zip(w).enumerate() {
            let err = (a - b).abs();
            assert!(
                err <= tol,
                "{what}: step {s}, token {v}: smelt {a} vs reference {b} (|diff| {err} > {tol})"
            );
            worst = worst.max(err);
        }
    }
    worst
}

/// The whole comparison for one architecture whose folder holds weights of
/// `dtype`.
fn check_arch(arch: &str, dtype: &str) {
    let (Some(bin), Some(dir)) = (reference(), models(arch, dtype)) else {
        return;
    };
    let (ids, want) = llama_cpp(&bin, &dir.join("model-f32.gguf"), &dir, false);
    let hf = dir.join("hf");
    let decode = graph(&hf, 1);
    let steps: Vec<(&Graph, usize)> = (0..STEPS).map(|_| (&decode, 1)).collect();
    let got = run(&steps, &ids);
    let worst = compare(arch, &got, &want, ATOL, RTOL);

    // Greedy ids: the token after step s is llama.cpp's argmax of step s.
    let mut ties = 0;
    for s in PROMPT.len() - 1..STEPS - 1 {
        let (best, gap) = top2(&want[s]);
        assert_eq!(
            best as i64,
            ids[s + 1],
            "{arch}: reference argmax at step {s}"
        );
        if gap < TIE {
            ties += 1;
            continue;
        }
        assert_eq!(top2(&got[s]).0, best, "{arch}: greedy token after step {s}");
    }

    // Prefill: a 4-token chunk, then single tokens, equals 1-token steps;
    // llama.cpp's batched prompt too.
    let prefill = graph(&hf, 4);
    let mut chunks = vec![(&prefill, 4)];
    chunks.extend((4..STEPS).map(|_| (&decode, 1)));
    let chunked = run(&chunks, &ids);
    compare(&format!("{arch} prefill"), &chunked, &got, 1e-5, 1e-5);
    let (batch_ids, batch_ref) = llama_cpp(&bin, &dir.join("model-f32.gguf"), &dir, true);
    assert_eq!(batch_ids[..PROMPT.len()], ids[..PROMPT.len()]);
    compare(
        &format!("{arch} llama.cpp batch"),
        &chunked[..PROMPT.len()],
        &batch_ref[..PROMPT.len()],
        ATOL,
        RTOL,
    );
    eprintln!(
        "{arch}: {STEPS} steps, largest logit error {worst:.1e} (logits up to {:.1}), {ties} near-ties, ids {:?}",
        want.iter().flatten().fold(0f32, |m, x| m.max(x.abs())),
        &ids[PROMPT.len()..]
    );
}

#[test]
fn llama_matches_llama_cpp() {
    check_arch("llama", "f32");
}

#[test]
fn qwen2_matches_llama_cpp() {
    check_arch("qwen2", "f32");
}

#[test]
fn qwen3_matches_llama_cpp() {
    check_arch("qwen3", "f32");
}

#[test]
fn mistral_matches_llama_cpp() {
    check_arch("mistral", "f32");
}

/// Half weights in the folder (read by `EncodedMatMul`, the embedding
/// gathered then widened, norms and biases widened at build time) against
/// llama.cpp on the same values in f32.
#[test]
fn f16_weights_match_llama_cpp() {
    check_arch("llama", "f16");
    check_arch("qwen2", "f16");
}

/// The decode graph's shape: inputs, output, one state pair per cache, and
/// the cache written by a `ScatterND` whose data is the state input and
/// which is that input's only reader.
#[test]
fn decode_graph_has_the_kv_cache_as_state() {
    let Some(dir) = models("qwen2", "f32") else {
        return;
    };
    let g = graph(&dir.join("hf"), 1);
    let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
    assert_eq!(names, ["tokens", "pos"]);
    assert_eq!(g.value(g.outputs[0]).ty.to_string(), "f32[1,320]");
    assert_eq!(g.states.len(), 4, "k and v caches of 2 layers");
    for s in &g.states {
        assert_eq!(g.value(s.input).ty.to_string(), "f32[2,64,16]");
        let readers: Vec<&smelt_ir::Node> = g
            .nodes
            .iter()
            .filter(|n| n.inputs.contains(&Some(s.input)))
            .collect();
        assert_eq!(readers.len(), 1, "{}", g.value(s.input).name);
        assert_eq!(readers[0].op.name(), "ScatterND");
        assert_eq!(readers[0].inputs[0], Some(s.input));
        assert_eq!(readers[0].outputs[0], s.output);
    }
}

/// Broken folders are refused with errors naming the key or tensor.
#[test]
fn bad_folders_name_the_problem() {
    let Some(dir) = models("llama", "f32") else {
        return;
    };
    let hf = dir.join("hf");
    let config = std::fs::read_to_string(hf.join("config.json")).unwrap();
    let check = |from: &str, to: &str, want: &str| {
        assert!(config.contains(from), "{from}");
        std::fs::write(hf.join("config.json"), config.replace(from, to)).unwrap();
        let e = match smelt_frontend::open(&hf, &Default::default()) {
            Ok(_) => panic!("{to}: opened"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{to}: expected '{want}' in: {e}");
    };
    check(
        "\"num_key_value_heads\": 2",
        "\"num_key_value_heads\": 3",
        "config 'num_key_value_heads'",
    );
    check(
        "\"hidden_size\": 64",
        "\"hidden_size\": 32",
        "tensor 'embed_tokens': has shape [320, 64]",
    );
    check(
        "\"tie_word_embeddings\": true",
        "\"tie_word_embeddings\": false",
        "tensor 'lm_head': missing",
    );
    check(
        "\"model_type\": \"llama\"",
        "\"model_type\": \"gpt2\"",
        "'gpt2'",
    );
    std::fs::write(hf.join("config.json"), &config).unwrap();
    assert!(smelt_frontend::open(&hf, &Default::default()).is_ok());
}

/// The compiled decode graph (Cranelift, the host) equals the interpreter
/// over three steps at position 5 from the zero cache.
#[test]
fn native_decode_matches_the_interpreter() {
    let Some(dir) = models("qwen3", "f32") else {
        return;
    };
    let hf = dir.join("hf");
    let exe = dir.join("decode");
    let (hf_s, exe_s) = (hf.to_str().unwrap(), exe.to_str().unwrap());
    ok(
        smelt(&["compile", hf_s, "--backend", "cranelift", "-o", exe_s]),
        "smelt compile",
    );
    let tokens = Tensor::from_vec(vec![1], vec![40i64]).unwrap();
    let pos = Tensor::from_vec(vec![1], vec![5i64]).unwrap();
    let (tf, pf, out) = (dir.join("tokens.npy"), dir.join("pos.npy"), dir.join("out"));
    write_npy(&tf, &tokens).unwrap();
    write_npy(&pf, &pos).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg("--input")
        .arg(format!("tokens={}", tf.display()))
        .arg("--input")
        .arg(format!("pos={}", pf.display()))
        .args(["--steps", "3", "-o"])
        .arg(&out);
    run_ok(&mut cmd, "the compiled decode step");
    let got = read_npy(&out.join("logits.npy"), &Default::default()).unwrap();
    // The executable's default context: the model's 512 positions.
    let opts = ImportOptions::default();
    let g = smelt_frontend::load(&hf, &opts).unwrap();
    let want = Interpreter::new(&g)
        .run_steps(vec![tokens, pos], 3)
        .unwrap();
    let (a, b) = (
        got.as_slice::<f32>().unwrap().to_vec(),
        want[0].as_slice::<f32>().unwrap().to_vec(),
    );
    let worst = compare("native", &[a], &[b], 1e-4, 1e-4);
    eprintln!("native decode: largest logit error {worst:.1e}");
}

/// A folder sharded over three safetensors files with an index gives the
/// unsharded folder's logits exactly.
#[test]
fn sharded_folders_read_like_single_files() {
    let (Some(one), Some(three)) = (
        models("mistral", "f32"),
        make_llm(
            "mistral-sharded",
            &["--arch", "mistral", "--shards", "3", "--gguf", ""],
        ),
    ) else {
        return;
    };
    assert!(three.join("hf/model.safetensors.index.json").is_file());
    assert!(!three.join("hf/model.safetensors").exists());
    let ids: Vec<i64> = PROMPT.to_vec();
    let steps = |hf: &Path| {
        let g = graph(hf, 1);
        let chunks: Vec<(&Graph, usize)> = ids.iter().map(|_| (&g, 1)).collect();
        run(&chunks, &ids)
    };
    assert_eq!(steps(&one.join("hf")), steps(&three.join("hf")));
}

/// Every matrix of the folder encoded as Q8_0 by smelt (`EncodedMatMul`,
/// the embedding decoded before its `Gather`) against llama.cpp on the
/// Q8_0 GGUF file of the same weights, and against the f32 graph of the
/// dequantized weights. llama.cpp also rounds the activations to 8 bits
/// before each product (`q8_0 x q8_0` dot products), smelt keeps them in
/// f32: that rounding alone moves llama.cpp's first logits by up to 0.56
/// (F32 vs Q8_0 file), so the comparison with llama.cpp is loose; the one
/// with the dequantized weights is tight.
#[test]
fn q8_0_weights_match_llama_cpp() {
    use smelt_frontend::checkpoint::Weight;
    use smelt_ir::encoding::quantize;
    use smelt_ir::{BlockFormat, DType, Encoding, TensorType};
    let (Some(bin), Some(dir)) = (
        reference(),
        make_llm("llama-q8_0", &["--arch", "llama", "--gguf", "q8_0"]),
    ) else {
        return;
    };
    let (ids, want) = llama_cpp(&bin, &dir.join("model-q8_0.gguf"), &dir, false);
    let mut ckpt = smelt_frontend::hf::read(&dir.join("hf"), &Default::default()).unwrap();
    let mut dequantized = ckpt.clone();
    for (name, w) in ckpt.tensors.iter_mut() {
        if w.ty.shape.len() != 2 {
            continue;
        }
        let values = Tensor::from_typed_bytes(&w.ty, &w.bytes).unwrap();
        let ty = TensorType::encoded(
            DType::F32,
            w.ty.shape.clone(),
            Encoding::Block(BlockFormat::Q8_0),
        )
        .unwrap();
        let bytes = quantize(&ty, values.as_slice::<f32>().unwrap()).unwrap();
        let plain = smelt_ir::encoding::dequantize(&ty, &bytes).unwrap();
        dequantized.tensors.insert(
            name.clone(),
            Weight {
                ty: w.ty.clone(),
                bytes: plain.to_le_bytes().into(),
            },
        );
        *w = Weight {
            ty,
            bytes: bytes.into(),
        };
    }
    let opts = LlmOptions {
        ctx: Some(CTX),
        ..LlmOptions::default()
    };
    let g = smelt_frontend::llm::build(&ckpt, &opts).unwrap();
    let steps: Vec<(&Graph, usize)> = (0..STEPS).map(|_| (&g, 1)).collect();
    let got = run(&steps, &ids);
    let plain = smelt_frontend::llm::build(&dequantized, &opts).unwrap();
    let steps: Vec<(&Graph, usize)> = (0..STEPS).map(|_| (&plain, 1)).collect();
    compare("q8_0 vs dequantized", &got, &run(&steps, &ids), ATOL, RTOL);
    let worst = compare("llama q8_0", &got, &want, 0.1, 0.03);
    let mut agree = 0;
    for s in PROMPT.len() - 1..STEPS - 1 {
        let (best, gap) = top2(&want[s]);
        if gap >= 1.0 {
            assert_eq!(top2(&got[s]).0, best, "q8_0: greedy token after step {s}");
            agree += 1;
        }
    }
    eprintln!("llama q8_0: largest logit error {worst:.1e}, {agree} greedy tokens checked");
}

/// smelt's two readers agree: the GGUF file (q/k rows permuted for
/// llama.cpp's interleaved rope in llama and mistral) and the Hugging Face
/// folder of the same weights give the same logits at every step.
#[test]
fn gguf_and_hugging_face_forms_give_the_same_logits() {
    for arch in ["llama", "qwen2", "qwen3", "mistral"] {
        let Some(dir) = models(arch, "f32") else {
            return;
        };
        let hf = graph(&dir.join("hf"), 1);
        let gguf = graph(&dir.join("model-f32.gguf"), 1);
        let ids: Vec<i64> = (0..12).map(|i| (i * 37 + 5) % 300).collect();
        let steps = |g: &Graph| run(&vec![(g, 1); ids.len()], &ids);
        let worst = compare(
            &format!("{arch}: GGUF vs Hugging Face"),
            &steps(&gguf),
            &steps(&hf),
            1e-5,
            1e-5,
        );
        eprintln!("{arch}: GGUF vs Hugging Face, largest logit difference {worst:.1e}");
    }
}
