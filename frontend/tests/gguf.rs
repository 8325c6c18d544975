//! The GGUF reader against the `gguf` Python package, and on malformed
//! files.
//!
//! `tests/gguf/make_files.py` writes small files with `gguf.GGUFWriter` at
//! test time and describes each as `gguf.GGUFReader` reads it back: every
//! metadata value, and every tensor's type, dims, data offset and bytes
//! must be what smelt reads too; the llama, qwen2 and qwen3 files must map
//! to the expected [`Checkpoint`]. Without `.venv` (made by
//! `scripts/setup`) those tests say so and pass.
//!
//! The malformed files are built here byte by byte (no Python needed):
//! each must be refused with the right typed error, naming the file, and
//! nothing may panic; a valid file cut at every offset is refused too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value as Json;
use smelt_frontend::checkpoint::{Arch, Checkpoint, RopeLayout, RopeScaling, TokenizerData};
use smelt_frontend::gguf::{GgmlType, GgufFile, Value};
use smelt_frontend::llm::LlmOptions;
use smelt_frontend::{Error, GgufErrorKind, Limits};

/// The repository (this file is in `frontend/tests/`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of files `make_files.py` wrote (once per test run); `None`
/// without `.venv/bin/python`.
fn python_files() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = root().join(".venv/bin/python");
        if !python.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "no .venv/bin/python: CI runs scripts/setup, which makes it"
            );
            eprintln!("skipping: no .venv/bin/python (scripts/setup makes it)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("smelt-gguf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(python)
            .arg(root().join("tests/gguf/make_files.py"))
            .arg(&dir)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "make_files.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_deref()
}

/// The file `name` and its description.
fn load(dir: &Path, name: &str) -> (GgufFile, Json) {
    let path = dir.join(format!("{name}.gguf"));
    let file = GgufFile::open(&path, &Limits::default()).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (file, serde_json::from_str(&text).unwrap())
}

/// GGUFReader's view of a value: the chain of type codes (an array adds
/// its first element's chain) and the leaf values flattened, floats as
/// bit patterns.
fn reader_view(v: &Value, types: &mut Vec<u64>, leaves: &mut Vec<Json>, first: bool) {
    if first {
        types.push(v.ty() as u64);
    }
    let leaf = match v {
        Value::Array(_, items) => {
            for (i, item) in items.iter().enumerate() {
                reader_view(item, types, leaves, first && i == 0);
            }
            return;
        }
        Value::F32(f) => Json::from(f.to_bits()),
        Value::F64(f) => Json::from(f.to_bits()),
        Value::Bool(b) => Json::from(*b),
        Value::String(s) => Json::from(s.as_str()),
        other => {
            let n = other.as_int().unwrap();
            if n < 0 {
                Json::from(n as i64)
            } else {
                Json::from(n as u64)
            }
        }
    };
    leaves.push(leaf);
}

/// Every key, value, tensor and the alignment equal what GGUFReader read.
fn check_against_reader(file: &GgufFile, doc: &Json) {
    let fields = doc["fields"].as_array().unwrap();
    assert_eq!(file.metadata().len(), fields.len());
    for (kv, want) in file.metadata().iter().zip(fields) {
        assert_eq!(kv.key, want["key"].as_str().unwrap());
        let (mut types, mut leaves) = (Vec::new(), Vec::new());
        reader_view(&kv.value, &mut types, &mut leaves, true);
        let want_types: Vec<u64> = want["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert_eq!(types, want_types, "types of {}", kv.key);
        let got = if matches!(kv.value, Value::Array(..)) {
            Json::from(leaves)
        } else {
            leaves.pop().unwrap()
        };
        assert_eq!(got, want["value"], "value of {}", kv.key);
    }
    assert_eq!(file.alignment() as u64, doc["alignment"].as_u64().unwrap());
    let tensors = doc["tensors"].as_array().unwrap();
    assert_eq!(file.tensors().len(), tensors.len());
    for (t, want) in file.tensors().iter().zip(tensors) {
        assert_eq!(t.name, want["name"].as_str().unwrap());
        let code = want["type"].as_u64().unwrap() as u32;
        assert_eq!(Ok(t.ggml_type), GgmlType::from_code(code), "{}", t.name);
        let ne: Vec<usize> = want["ne"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.ne, ne, "{}", t.name);
        let rev: Vec<usize> = ne.iter().rev().copied().collect();
        assert_eq!(t.ty.shape, rev, "{}", t.name);
        assert_eq!(
            file.data_offset(&t.name),
            Some(want["offset"].as_u64().unwrap() as usize)
        );
        let bytes = file.tensor_bytes(&t.name).unwrap();
        assert!(bytes.is_mapped(), "{} is a window into the file", t.name);
        assert_eq!(bytes.len(), t.ty.bytes().unwrap(), "{}", t.name);
        assert_eq!(hex(&bytes), want["hex"].as_str().unwrap(), "{}", t.name);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_value_and_tensor_matches_gguf_reader() {
    let Some(dir) = python_files() else { return };
    for name in ["all_types", "llama", "qwen2", "qwen3", "mistral"] {
        let (file, doc) = load(dir, name);
        check_against_reader(&file, &doc);
    }
    let (file, _) = load(dir, "all_types");
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 64);
    assert!(file.data_start().is_multiple_of(64));
    // Every block format is kept in its encoding, never widened.
    let q4k = file.tensor("q4_k").unwrap();
    assert_eq!(q4k.ty.to_string(), "f32[2,256] q4_k");
    assert_eq!(file.tensor("bf16_2d").unwrap().ty.to_string(), "bf16[2,8]");
    assert_eq!(
        file.tensor("q8_0_3d").unwrap().ty.to_string(),
        "f32[2,3,32] q8_0"
    );
}

#[test]
fn version_2_reads_like_version_3() {
    let Some(dir) = python_files() else { return };
    let mut bytes = std::fs::read(dir.join("all_types.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let v2 = GgufFile::from_bytes(&bytes, Path::new("v2.gguf"), &Limits::default()).unwrap();
    let (v3, doc) = load(dir, "all_types");
    assert_eq!(v2.version(), 2);
    assert_eq!(v2.metadata(), v3.metadata());
    check_against_reader(&v2, &doc);
}

/// The canonical name and GGUF name of every tensor of a model with
/// `layers` layers, and whether it has biases, q/k norms and an output head.
fn expected_names(layers: usize, biases: bool, qk_norm: bool, head: bool) -> Vec<(String, String)> {
    let mut v = vec![
        ("embed_tokens".to_string(), "token_embd.weight".to_string()),
        ("norm".into(), "output_norm.weight".into()),
    ];
    if head {
        v.push(("lm_head".into(), "output.weight".into()));
    }
    for l in 0..layers {
        let mut parts = vec![
            ("attn_norm", "attn_norm.weight"),
            ("q_proj", "attn_q.weight"),
            ("k_proj", "attn_k.weight"),
            ("v_proj", "attn_v.weight"),
            ("o_proj", "attn_output.weight"),
            ("ffn_norm", "ffn_norm.weight"),
            ("gate_proj", "ffn_gate.weight"),
            ("up_proj", "ffn_up.weight"),
            ("down_proj", "ffn_down.weight"),
        ];
        if biases {
            parts.extend([
                ("q_bias", "attn_q.bias"),
                ("k_bias", "attn_k.bias"),
                ("v_bias", "attn_v.bias"),
            ]);
        }
        if qk_norm {
            parts.extend([
                ("q_norm", "attn_q_norm.weight"),
                ("k_norm", "attn_k_norm.weight"),
            ]);
        }
        for (c, g) in parts {
            v.push((format!("layers.{l}.{c}"), format!("blk.{l}.{g}")));
        }
    }
    v.sort();
    v
}

/// The checkpoint of model file `name` against the hyper-parameters the
/// script chose and the tensors GGUFReader read.
fn check_model(name: &str, arch: Arch) -> Checkpoint {
    let dir = python_files().unwrap();
    let (file, doc) = load(dir, name);
    let ck = file.checkpoint().unwrap();
    let hp = &doc["hparams"];
    let n = |k: &str| hp[k].as_u64().unwrap() as usize;
    let c = &ck.config;
    assert_eq!(c.arch, arch);
    assert_eq!(c.vocab_size, n("vocab"));
    assert_eq!(c.hidden_size, n("hidden"));
    assert_eq!(c.intermediate_size, n("ffn"));
    assert_eq!(c.num_layers, n("layers"));
    assert_eq!(c.num_heads, n("heads"));
    assert_eq!(c.num_kv_heads, n("kv_heads"));
    assert_eq!(c.head_dim, n("head_dim"));
    assert_eq!(c.max_position_embeddings, n("context"));
    assert_eq!(c.rms_norm_eps, hp["eps"].as_f64().unwrap() as f32);
    assert_eq!(c.rope_theta, hp["theta"].as_f64().unwrap() as f32);
    let want_layout = match arch {
        Arch::Llama | Arch::Mistral => RopeLayout::Interleaved,
        Arch::Qwen2 | Arch::Qwen3 => RopeLayout::Halves,
    };
    assert_eq!(c.rope_layout, want_layout);
    assert_eq!(c.sliding_window, None);
    let head = arch == Arch::Llama;
    assert_eq!(c.tie_word_embeddings, !head);
    let names = expected_names(c.num_layers, arch == Arch::Qwen2, arch == Arch::Qwen3, head);
    let got: Vec<&String> = ck.tensors.keys().collect();
    let want: Vec<&String> = names.iter().map(|(c, _)| c).collect();
    assert_eq!(got, want);
    let by_name: std::collections::HashMap<&str, &Json> = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    for (canonical, gguf) in &names {
        let w = &ck.tensors[canonical];
        let t = by_name[gguf.as_str()];
        let shape: Vec<usize> = t["ne"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(w.ty.shape, shape, "{canonical}");
        assert_eq!(hex(&w.bytes), t["hex"].as_str().unwrap(), "{canonical}");
        assert!(w.bytes.is_mapped());
    }
    // Matrices are [out, in]: q_proj has heads·head_dim rows of hidden.
    assert_eq!(
        ck.tensors["layers.0.q_proj"].ty.shape,
        vec![c.num_heads * c.head_dim, c.hidden_size]
    );
    assert_eq!(
        ck.tensors["layers.1.down_proj"].ty.shape,
        vec![c.hidden_size, c.intermediate_size]
    );
    let Some(TokenizerData::Gguf(tok)) = &ck.tokenizer else {
        panic!("{name}: no GGUF tokenizer")
    };
    assert_eq!(tok.tokens.len(), c.vocab_size);
    assert_eq!(tok.tokens[5], "tok5");
    assert_eq!(tok.token_types, vec![1; c.vocab_size]);
    assert_eq!(tok.eos, Some(2));
    assert_eq!(tok.chat_template.as_deref(), Some("{{ messages }}"));
    assert_eq!(ck.eos_token_ids, vec![2]);
    ck
}

#[test]
fn llama_maps_to_checkpoint() {
    if python_files().is_none() {
        return;
    }
    let ck = check_model("llama", Arch::Llama);
    assert_eq!(
        ck.config.rope_scaling,
        Some(RopeScaling::Linear { factor: 2.0 })
    );
    assert_eq!(ck.bos_token_id, Some(1));
    let Some(TokenizerData::Gguf(tok)) = &ck.tokenizer else {
        unreachable!()
    };
    assert_eq!(tok.model, "llama");
    assert_eq!(tok.scores[3], -3.0);
    assert_eq!(tok.add_bos, Some(true));
    assert!(tok.merges.is_empty());
    assert_eq!(ck.tensors["lm_head"].ty.to_string(), "f32[48,64] q8_0");
    assert_eq!(
        ck.tensors["layers.0.k_proj"].ty.to_string(),
        "f32[32,64] q4_0"
    );
    assert_eq!(ck.tensors["embed_tokens"].ty.to_string(), "f16[48,64]");
}

#[test]
fn qwen2_maps_to_checkpoint() {
    if python_files().is_none() {
        return;
    }
    let ck = check_model("qwen2", Arch::Qwen2);
    assert_eq!(ck.config.rope_scaling, None);
    // Byte-level BPE adds no BOS unless the file says so.
    assert_eq!(ck.bos_token_id, None);
    let Some(TokenizerData::Gguf(tok)) = &ck.tokenizer else {
        unreachable!()
    };
    assert_eq!(tok.model, "gpt2");
    assert_eq!(tok.pre.as_deref(), Some("qwen2"));
    assert_eq!(tok.merges, vec!["t o", "to k"]);
    assert_eq!(ck.tensors["layers.1.k_bias"].ty.shape, vec![32]);
}

#[test]
fn qwen3_maps_to_checkpoint() {
    if python_files().is_none() {
        return;
    }
    let ck = check_model("qwen3", Arch::Qwen3);
    assert_eq!(ck.tensors["layers.0.q_norm"].ty.shape, vec![16]);
}

#[test]
fn mistral_maps_to_checkpoint() {
    if python_files().is_none() {
        return;
    }
    let ck = check_model("mistral", Arch::Mistral);
    assert_eq!(ck.config.rope_layout, RopeLayout::Interleaved);
    assert!(ck.config.tie_word_embeddings);
}

#[test]
fn summary_counts_parameters_by_encoding() {
    let Some(dir) = python_files() else { return };
    let (file, _) = load(dir, "llama");
    let s = file.summary();
    assert_eq!(s.format, "GGUF v3");
    assert_eq!(s.architecture, "llama");
    assert_eq!(s.name.as_deref(), Some("tiny llama"));
    assert!(s.problem.is_none(), "{:?}", s.problem);
    let total: u64 = file
        .tensors()
        .iter()
        .map(|t| t.ty.numel().unwrap() as u64)
        .sum();
    assert_eq!(s.param_count, total);
    let q8: u64 = file
        .tensors()
        .iter()
        .filter(|t| t.ty.to_string().ends_with("q8_0"))
        .map(|t| t.len as u64)
        .sum();
    let row = s.by_encoding.iter().find(|e| e.encoding == "q8_0").unwrap();
    assert_eq!(row.bytes, q8);
    // 2 · layers · kv_heads · head_dim · 4 bytes.
    assert_eq!(s.kv_cache_bytes_per_token(), Some(2 * 2 * 2 * 16 * 4));
    // The whole cache is the state the graph builder makes, for any context.
    let ck = file.checkpoint().unwrap();
    for ctx in [1, 24] {
        let opts = LlmOptions {
            tokens: 1,
            ctx: Some(ctx),
            last_logits_only: true,
        };
        let g = smelt_frontend::llm::build(&ck, &opts).unwrap();
        let state: u64 = g
            .states
            .iter()
            .map(|st| g.value(st.input).ty.bytes().unwrap() as u64)
            .sum();
        assert_eq!(s.kv_cache_bytes(ctx), Some(state), "ctx {ctx}");
    }
}

// ---------------------------------------------------------------------------
// Malformed files, built byte by byte.

/// A GGUF file under construction.
#[derive(Clone)]
struct Builder {
    version: u32,
    kvs: Vec<Vec<u8>>,
    infos: Vec<Vec<u8>>,
    data: Vec<u8>,
    alignment: usize,
}

fn gstr(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

impl Builder {
    fn new() -> Builder {
        Builder {
            version: 3,
            kvs: Vec::new(),
            infos: Vec::new(),
            data: Vec::new(),
            alignment: 32,
        }
    }

    /// A key of type code `ty` with its encoded `payload`.
    fn kv(mut self, key: &str, ty: u32, payload: &[u8]) -> Builder {
        let mut v = gstr(key.as_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(payload);
        self.kvs.push(v);
        self
    }

    fn kv_u32(self, key: &str, v: u32) -> Builder {
        self.kv(key, 4, &v.to_le_bytes())
    }

    fn kv_f32(self, key: &str, v: f32) -> Builder {
        self.kv(key, 6, &v.to_le_bytes())
    }

    fn kv_str(self, key: &str, v: &str) -> Builder {
        self.kv(key, 8, &gstr(v.as_bytes()))
    }

    /// A tensor info with explicit dims, type code and data offset.
    fn info(mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Builder {
        let mut v = gstr(name.as_bytes());
        v.extend_from_slice(&(ne.len() as u32).to_le_bytes());
        for d in ne {
            v.extend_from_slice(&d.to_le_bytes());
        }
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&offset.to_le_bytes());
        self.infos.push(v);
        self
    }

    /// An f32 tensor of dims `ne` with data, at the next aligned offset.
    fn f32_tensor(self, name: &str, ne: &[u64]) -> Builder {
        let n: u64 = ne.iter().product();
        let mut b = self.pad();
        let offset = b.data.len() as u64;
        b.data.extend((0..n).flat_map(|i| (i as f32).to_le_bytes()));
        b.info(name, ne, 0, offset)
    }

    fn pad(mut self) -> Builder {
        while !self.data.len().is_multiple_of(self.alignment) {
            self.data.push(0);
        }
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&(self.infos.len() as u64).to_le_bytes());
        v.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            v.extend_from_slice(kv);
        }
        for info in &self.infos {
            v.extend_from_slice(info);
        }
        while !v.len().is_multiple_of(self.alignment) {
            v.push(0);
        }
        v.extend_from_slice(&self.data);
        v
    }
}

/// The error a refusal should give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Gguf(GgufErrorKind),
    Limit(&'static str),
}

/// Opens `bytes` as `name.gguf`, catching panics; the error.
fn refuse(name: &str, bytes: &[u8], limits: &Limits) -> Error {
    let path = PathBuf::from(format!("{name}.gguf"));
    let r = catch_unwind(AssertUnwindSafe(|| {
        GgufFile::from_bytes(bytes, &path, limits).and_then(|f| f.checkpoint().map(|_| ()))
    }));
    match r {
        Err(_) => panic!("{name}: the reader panicked"),
        Ok(Ok(())) => panic!("{name}: accepted"),
        Ok(Err(e)) => e,
    }
}

/// `check(name, bytes, limits, want)`: refused with `want`; a GGUF error
/// names the file.
fn check(name: &str, bytes: &[u8], limits: &Limits, want: Want) {
    let e = refuse(name, bytes, limits);
    let got = match &e {
        Error::Gguf { kind, path, .. } => {
            assert_eq!(path, Path::new(&format!("{name}.gguf")));
            assert!(e.to_string().contains(name), "{name}: {e}");
            Want::Gguf(*kind)
        }
        Error::Limit { key, .. } => Want::Limit(key),
        other => panic!("{name}: unexpected error {other:?}"),
    };
    assert_eq!(got, want, "{name}: {e}");
}

fn limits(over: &[(&str, u64)]) -> Limits {
    let mut l = Limits::default();
    for &(k, v) in over {
        l.set(k, v).unwrap();
    }
    l
}

/// A file with a bit of everything, valid.
fn valid() -> Builder {
    Builder::new()
        .kv_str("general.architecture", "test")
        .kv("n", 9, &{
            // An array of two arrays of u8.
            let mut v = 9u32.to_le_bytes().to_vec();
            v.extend_from_slice(&2u64.to_le_bytes());
            for len in [2u64, 1] {
                v.extend_from_slice(&0u32.to_le_bytes());
                v.extend_from_slice(&len.to_le_bytes());
                v.extend((0..len).map(|i| i as u8));
            }
            v
        })
        .f32_tensor("a", &[4, 2])
        .f32_tensor("b", &[3])
}

/// The bytes of `b` with the u64 at `at` replaced.
fn patch_u64(b: &Builder, at: usize, v: u64) -> Vec<u8> {
    let mut bytes = b.bytes();
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    bytes
}

#[test]
fn the_valid_builder_file_reads() {
    let b = valid().bytes();
    let f = GgufFile::from_bytes(&b, Path::new("ok.gguf"), &Limits::default()).unwrap();
    assert_eq!(f.tensors().len(), 2);
    assert_eq!(f.tensor("a").unwrap().ty.shape, vec![2, 4]);
    let a = f.tensor_bytes("a").unwrap();
    assert_eq!(&a[4..8], &1f32.to_le_bytes());
    // Not a llama-family model.
    let e = f.checkpoint().unwrap_err();
    assert!(matches!(
        e,
        Error::Gguf {
            kind: GgufErrorKind::Architecture,
            ..
        }
    ));
}

#[test]
fn truncated_files_are_refused_at_every_offset() {
    let mut files = vec![("builder", valid().bytes())];
    if let Some(dir) = python_files() {
        files.push((
            "all_types",
            std::fs::read(dir.join("all_types.gguf")).unwrap(),
        ));
    }
    let limits = Limits::default();
    for (name, bytes) in files {
        // Past the last tensor's data only padding may follow.
        let full = GgufFile::from_bytes(&bytes, Path::new("full.gguf"), &limits).unwrap();
        let end = full
            .tensors()
            .iter()
            .map(|t| full.data_offset(&t.name).unwrap() + t.len)
            .max()
            .unwrap();
        for len in 0..end {
            let cut = &bytes[..len];
            let r = catch_unwind(AssertUnwindSafe(|| {
                GgufFile::from_bytes(cut, Path::new("cut.gguf"), &limits)
            }));
            match r {
                Err(_) => panic!("{name} cut at {len}: panicked"),
                Ok(Ok(_)) => panic!("{name} cut at {len}: accepted"),
                Ok(Err(Error::Gguf { kind, .. })) => assert!(
                    matches!(kind, GgufErrorKind::Truncated | GgufErrorKind::OutOfBounds),
                    "{name} cut at {len}: {kind:?}"
                ),
                Ok(Err(e)) => panic!("{name} cut at {len}: {e}"),
            }
        }
    }
}

#[test]
fn malformed_headers_and_values_are_refused() {
    use GgufErrorKind::*;
    let d = Limits::default();
    let ok = valid();
    let mut bad_magic = ok.bytes();
    bad_magic[3] = b'X';
    check("magic", &bad_magic, &d, Want::Gguf(Header));
    for (name, version) in [("v1", 1u32), ("v4", 4), ("big_endian", 3u32.swap_bytes())] {
        let mut b = ok.clone();
        b.version = version;
        check(name, &b.bytes(), &d, Want::Gguf(Header));
    }
    // Counts: the tensor count at byte 8, the key count at byte 16; the
    // first key's length at byte 24.
    let counts = [
        ("tensors_huge", 8, u64::MAX, Want::Limit("max-tensor-count")),
        ("tensors_past_file", 8, 1000, Want::Gguf(Truncated)),
        ("kvs_huge", 16, 1 << 40, Want::Limit("max-kv-count")),
        ("kvs_past_file", 16, 5000, Want::Gguf(Truncated)),
        ("string_huge", 24, 1 << 50, Want::Limit("max-string-bytes")),
        ("string_past_file", 24, 100_000, Want::Gguf(Truncated)),
    ];
    for (name, at, value, want) in counts {
        check(name, &patch_u64(&ok, at, value), &d, want);
    }
    let bad_utf8 = Builder::new().kv("k", 8, &gstr(b"\xff\xfe"));
    check("utf8", &bad_utf8.bytes(), &d, Want::Gguf(BadValue));
    let bad_bool = Builder::new().kv("k", 7, &[2]);
    check("bool", &bad_bool.bytes(), &d, Want::Gguf(BadValue));
    check(
        "value_type",
        &Builder::new().kv("k", 13, &[0; 8]).bytes(),
        &d,
        Want::Gguf(UnknownValueType),
    );
    let array = |ty: u32, len: u64| {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v
    };
    check(
        "array_type",
        &Builder::new().kv("k", 9, &array(77, 0)).bytes(),
        &d,
        Want::Gguf(UnknownValueType),
    );
    check(
        "array_huge",
        &Builder::new().kv("k", 9, &array(0, u64::MAX)).bytes(),
        &d,
        Want::Limit("max-array-len"),
    );
    check(
        "array_past_file",
        &Builder::new().kv("k", 9, &array(10, 1_000_000)).bytes(),
        &d,
        Want::Gguf(Truncated),
    );
    let small = limits(&[("max-array-len", 2)]);
    check(
        "array_limit",
        &Builder::new().kv("k", 9, &array(0, 3)).bytes(),
        &small,
        Want::Limit("max-array-len"),
    );
    // Arrays of arrays of … 40 deep.
    let mut nested = Vec::new();
    for _ in 0..40 {
        nested.extend(array(9, 1));
    }
    nested.extend(array(0, 0));
    check(
        "array_depth",
        &Builder::new().kv("k", 9, &nested).bytes(),
        &d,
        Want::Limit("max-depth"),
    );
    let dup = Builder::new().kv_u32("k", 1).kv_u32("k", 2);
    check("duplicate_key", &dup.bytes(), &d, Want::Gguf(Duplicate));
    let align =
        |ty: u32, payload: &[u8]| Builder::new().kv("general.alignment", ty, payload).bytes();
    check(
        "alignment_48",
        &align(4, &48u32.to_le_bytes()),
        &d,
        Want::Gguf(BadValue),
    );
    check(
        "alignment_0",
        &align(4, &0u32.to_le_bytes()),
        &d,
        Want::Gguf(BadValue),
    );
    check(
        "alignment_u64",
        &align(10, &64u64.to_le_bytes()),
        &d,
        Want::Gguf(KeyType),
    );
    let many = Builder::new().kv_u32("a", 1).kv_u32("b", 2).kv_u32("c", 3);
    check(
        "kv_limit",
        &many.bytes(),
        &limits(&[("max-kv-count", 2)]),
        Want::Limit("max-kv-count"),
    );
    check(
        "string_limit",
        &many.bytes(),
        &limits(&[("max-string-bytes", 0)]),
        Want::Limit("max-string-bytes"),
    );
}

#[test]
fn malformed_tensors_are_refused() {
    use GgufErrorKind::*;
    let d = Limits::default();
    let one = |ne: &[u64], ty: u32| Builder::new().info("t", ne, ty, 0).bytes();
    check(
        "tensor_type_unknown",
        &one(&[4], 4),
        &d,
        Want::Gguf(UnknownTensorType),
    );
    check(
        "tensor_type_huge",
        &one(&[4], 1000),
        &d,
        Want::Gguf(UnknownTensorType),
    );
    check(
        "tensor_type_iq4_nl",
        &one(&[32], 20),
        &d,
        Want::Gguf(UnsupportedTensorType),
    );
    check("zero_dim", &one(&[4, 0], 0), &d, Want::Gguf(Shape));
    check("no_dims", &one(&[], 0), &d, Want::Gguf(Shape));
    check(
        "five_dims",
        &one(&[1, 1, 1, 1, 1], 0),
        &d,
        Want::Gguf(Shape),
    );
    check("dim_past_i64", &one(&[u64::MAX], 0), &d, Want::Gguf(Shape));
    check(
        "dims_overflow",
        &one(&[1 << 40, 1 << 40], 0),
        &d,
        Want::Gguf(Overflow),
    );
    check(
        "bytes_overflow",
        &one(&[1 << 62], 0),
        &d,
        Want::Gguf(Overflow),
    );
    // Q8_0 rows must be whole blocks of 32.
    check("partial_block", &one(&[16, 2], 8), &d, Want::Gguf(Shape));
    check(
        "rank_limit",
        &one(&[2, 2], 0),
        &limits(&[("max-rank", 1)]),
        Want::Limit("max-rank"),
    );
    let two = valid();
    check(
        "tensor_count_limit",
        &two.bytes(),
        &limits(&[("max-tensor-count", 1)]),
        Want::Limit("max-tensor-count"),
    );
    check(
        "tensor_bytes_limit",
        &two.bytes(),
        &limits(&[("max-tensor-bytes", 16)]),
        Want::Limit("max-tensor-bytes"),
    );
    check(
        "weight_bytes_limit",
        &two.bytes(),
        &limits(&[("max-weight-bytes", 40)]),
        Want::Limit("max-weight-bytes"),
    );
    let dup = Builder::new().f32_tensor("t", &[2]).f32_tensor("t", &[2]);
    check("duplicate_tensor", &dup.bytes(), &d, Want::Gguf(Duplicate));
    let overlap = Builder::new().f32_tensor("a", &[16]).info("b", &[8], 0, 32);
    check("overlap", &overlap.bytes(), &d, Want::Gguf(Overlap));
    let same = Builder::new().f32_tensor("a", &[4]).info("b", &[4], 0, 0);
    check("same_offset", &same.bytes(), &d, Want::Gguf(Overlap));
    let misaligned = Builder::new().f32_tensor("a", &[16]).info("b", &[1], 0, 4);
    check(
        "misaligned",
        &misaligned.bytes(),
        &d,
        Want::Gguf(Misaligned),
    );
    let past = Builder::new().f32_tensor("a", &[4]).info("b", &[4], 0, 64);
    check("data_past_file", &past.bytes(), &d, Want::Gguf(OutOfBounds));
    let far = Builder::new()
        .f32_tensor("a", &[4])
        .info("b", &[4], 0, u64::MAX - 31);
    check("offset_overflow", &far.bytes(), &d, Want::Gguf(Overflow));
}

/// A valid one-layer llama file (all f32), with `tweak` applied to its
/// tensor list: `(name, ne)` pairs.
fn tiny_llama(tweak: impl FnOnce(&mut Vec<(String, Vec<u64>)>)) -> Builder {
    let (h, ffn, vocab) = (8u64, 16u64, 10u64);
    let mut tensors: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![h, vocab]),
        ("output_norm.weight".into(), vec![h]),
        ("blk.0.attn_norm.weight".into(), vec![h]),
        ("blk.0.attn_q.weight".into(), vec![h, h]),
        ("blk.0.attn_k.weight".into(), vec![h, 4]),
        ("blk.0.attn_v.weight".into(), vec![h, 4]),
        ("blk.0.attn_output.weight".into(), vec![h, h]),
        ("blk.0.ffn_norm.weight".into(), vec![h]),
        ("blk.0.ffn_gate.weight".into(), vec![h, ffn]),
        ("blk.0.ffn_up.weight".into(), vec![h, ffn]),
        ("blk.0.ffn_down.weight".into(), vec![ffn, h]),
    ];
    tweak(&mut tensors);
    let mut b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.context_length", 64)
        .kv_u32("llama.embedding_length", h as u32)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.feed_forward_length", ffn as u32)
        .kv_u32("llama.attention.head_count", 2)
        .kv_u32("llama.attention.head_count_kv", 1)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    for (name, ne) in &tensors {
        b = b.f32_tensor(name, ne);
    }
    b
}

#[test]
fn checkpoint_problems_name_the_tensor_or_key() {
    use GgufErrorKind::*;
    let d = Limits::default();
    let ok = tiny_llama(|_| {});
    let f = GgufFile::from_bytes(&ok.bytes(), Path::new("tiny.gguf"), &d).unwrap();
    let ck = f.checkpoint().unwrap();
    assert!(ck.config.tie_word_embeddings);
    assert_eq!((ck.config.head_dim, ck.config.num_kv_heads), (4, 1));
    assert_eq!(ck.config.rope_theta, 10_000.0);
    assert!(ck.tokenizer.is_none());
    assert_eq!(ck.tensors.len(), 11);

    let missing = tiny_llama(|t| t.retain(|(n, _)| n != "blk.0.ffn_up.weight"));
    let e = refuse("missing", &missing.bytes(), &d);
    assert!(e.to_string().contains("blk.0.ffn_up.weight"), "{e}");
    check("missing", &missing.bytes(), &d, Want::Gguf(MissingTensor));
    let shape = tiny_llama(|t| t[3].1 = vec![8, 6]);
    let e = refuse("shape", &shape.bytes(), &d);
    assert!(e.to_string().contains("blk.0.attn_q.weight"), "{e}");
    check("shape", &shape.bytes(), &d, Want::Gguf(MissingTensor));
    let extra = tiny_llama(|t| {
        t.push(("blk.0.mystery.weight".into(), vec![2]));
        t.push(("blk.1.attn_q.weight".into(), vec![8, 8]));
    });
    let e = refuse("extra", &extra.bytes(), &d);
    let msg = e.to_string();
    assert!(
        msg.contains("blk.0.mystery.weight") && msg.contains("blk.1.attn_q.weight"),
        "{msg}"
    );
    check("extra", &extra.bytes(), &d, Want::Gguf(UnexpectedTensor));
    let no_eps = Builder {
        kvs: ok.kvs[..ok.kvs.len() - 1].to_vec(),
        ..ok.clone()
    };
    let e = refuse("no_eps", &no_eps.bytes(), &d);
    assert!(
        e.to_string()
            .contains("llama.attention.layer_norm_rms_epsilon"),
        "{e}"
    );
    check("no_eps", &no_eps.bytes(), &d, Want::Gguf(MissingKey));
    let wrong_type = ok.clone().kv_str("llama.rope.freq_base", "fast");
    check("key_type", &wrong_type.bytes(), &d, Want::Gguf(KeyType));
    let zero_heads = ok.clone().kv_u32("llama.attention.key_length", 0);
    check(
        "zero_head_dim",
        &zero_heads.bytes(),
        &d,
        Want::Gguf(KeyType),
    );
    let many_layers = Builder {
        kvs: ok
            .kvs
            .iter()
            .map(|kv| {
                if kv.starts_with(&gstr(b"llama.block_count")) {
                    let mut v = gstr(b"llama.block_count");
                    v.extend_from_slice(&10u32.to_le_bytes());
                    v.extend_from_slice(&u64::MAX.to_le_bytes());
                    v
                } else {
                    kv.clone()
                }
            })
            .collect(),
        ..ok.clone()
    };
    check("layers_huge", &many_layers.bytes(), &d, Want::Gguf(KeyType));
    let yarn = ok.clone().kv_str("llama.rope.scaling.type", "yarn");
    check("yarn", &yarn.bytes(), &d, Want::Gguf(Unsupported));
    let partial = ok.clone().kv_u32("llama.rope.dimension_count", 2);
    check(
        "partial_rotary",
        &partial.bytes(),
        &d,
        Want::Gguf(Unsupported),
    );
    let mut arch = ok.clone();
    arch.kvs[0] = Builder::new()
        .kv_str("general.architecture", "gpt2")
        .kvs
        .remove(0);
    check("arch", &arch.bytes(), &d, Want::Gguf(Architecture));
    let tokens = ok
        .clone()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_u32("tokenizer.ggml.eos_token_id", 3);
    check("no_tokens", &tokens.bytes(), &d, Want::Gguf(MissingKey));
}
