//! One entry for every model format: [`open`] and [`load`] look at what a
//! path holds (by content, not by its extension) and hand it to the reader
//! of its format, or say what the file is when it is not a model.
//!
//! The model formats are ONNX ([`crate::onnx`]), GGUF files
//! ([`crate::gguf`]) and Hugging Face model folders ([`crate::hf`]: a
//! folder with `config.json`, weights in safetensors); the two checkpoint
//! formats become a [`Checkpoint`] that the LLM graph builder
//! ([`crate::llm`]) imports. The seam for each is [`Format`]: a reader adds
//! a [`Model`] variant, its arm in [`open`], and its `summary`/`import`
//! arms, and nothing outside this crate changes (the rest of the pipeline
//! only sees `ir::Graph`).
//!
//! Files that are not models get a message saying what they are and where
//! they go instead: a NumPy array is an input (`--input`/`--bind`), a
//! safetensors file holds weights (`--weights`), a directory without
//! `config.json` is not a model folder, an empty file has no graph, and for
//! unknown bytes the ONNX parser's error gets the first bytes in hex.

use std::io::Read;
use std::path::{Path, PathBuf};

use smelt_ir::{Graph, Tensor};

use crate::checkpoint::{Checkpoint, TokenizerData};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::limits::Limits;
use crate::llm::LlmOptions;
use crate::llm_summary::LlmSummary;
use crate::onnx::{DeclaredValue, ImportOptions, OnnxModel, Summary};

/// A model format smelt recognizes by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An ONNX `ModelProto` (protobuf; also the fallback for bytes no other
    /// check claims, so the parser's error describes them).
    Onnx,
    /// A GGUF file (llama.cpp's format; magic `GGUF`).
    Gguf,
    /// A Hugging Face model directory (`config.json` plus weights).
    HuggingFace,
}

/// What a model path holds, by its first bytes (or, for a directory, its
/// files): a model format, or an error saying what the file is instead.
pub fn detect(path: &Path) -> Result<Format> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let not_a_model = |what: String| Error::NotAModel {
        path: path.to_path_buf(),
        what,
    };
    if meta.is_dir() {
        if path.join("config.json").is_file() {
            return Ok(Format::HuggingFace);
        }
        let hint = if path.join("model.onnx").is_file() {
            format!("; did you mean {}?", path.join("model.onnx").display())
        } else {
            String::new()
        };
        return Err(not_a_model(format!(
            "a directory without config.json is not a model folder; give the .onnx file{hint}"
        )));
    }
    if meta.len() == 0 {
        return Err(not_a_model(
            "the file is empty (0 bytes), so the model has no graph".into(),
        ));
    }
    let mut head = [0u8; 16];
    let n = read_head(path, &mut head).map_err(io)?;
    classify(&head[..n], meta.len(), path).map_err(not_a_model)
}

/// Reads up to `buf.len()` bytes from the start of `path`.
fn read_head(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The format of a file from its first bytes and length; `Err` says what a
/// non-model file is.
fn classify(head: &[u8], len: u64, path: &Path) -> std::result::Result<Format, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if head.starts_with(b"GGUF") {
        return Ok(Format::Gguf);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Err("a NumPy array, not a model; give it to a model as --input NAME=FILE.npy (or fix a shape operand with --bind)".into());
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Err(if ext == "npz" {
            "a NumPy .npz archive of arrays, not a model; give it to a model as --input FILE.npz"
                .into()
        } else {
            "a zip archive (a NumPy .npz or a PyTorch checkpoint?), not a model; export the model to ONNX".into()
        });
    }
    if head.get(4..8) == Some(b"TFL3") {
        return Err(
            "a TensorFlow Lite model; smelt reads ONNX: convert it (e.g. with tf2onnx)".into(),
        );
    }
    if head.starts_with(b"\x7fELF") {
        return Err("an ELF executable or object, not a model".into());
    }
    // safetensors: a little-endian u64 header length, then a JSON object.
    if head.len() >= 9 && head[8] == b'{' {
        let header = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if (2..=len - 8).contains(&header) {
            return Err("safetensors weights, not a model; pass them with --weights FILE.safetensors beside the .onnx model".into());
        }
    }
    Ok(Format::Onnx)
}

/// The first bytes of `path` in hex, for a file no format claims.
fn hex_head(path: &Path) -> String {
    let mut head = [0u8; 16];
    let n = read_head(path, &mut head).unwrap_or(0);
    let bytes: Vec<String> = head[..n].iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(" ")
}

/// A model read from disk, not yet converted to the IR: one variant per
/// format smelt reads.
pub enum Model {
    /// An ONNX model.
    Onnx(OnnxModel),
    /// A language model from a Hugging Face folder.
    HuggingFace(Checkpoint),
    /// A GGUF file, validated (its checkpoint is built on import).
    Gguf(GgufFile),
}

impl Model {
    /// What can be said about the model without importing it.
    pub fn summary(&self) -> Summary {
        match self {
            Model::Onnx(m) => m.summary(),
            Model::HuggingFace(c) => {
                llm_signature(c, &format!("Hugging Face {}", c.config.arch.name()))
            }
            Model::Gguf(m) => Summary {
                llm: Some(m.summary()),
                ..Summary::default()
            },
        }
    }

    /// The language model's checkpoint (config, weights, tokenizer), or
    /// `None` for a model that is not a language model.
    pub fn checkpoint(&self) -> Option<Result<Checkpoint>> {
        match self {
            Model::Onnx(_) => None,
            Model::HuggingFace(c) => Some(Ok(c.clone())),
            Model::Gguf(m) => Some(m.checkpoint()),
        }
    }

    /// A language model's tokenizer as its checkpoint describes it (`None`
    /// for an ONNX model, or a checkpoint without one); the table the
    /// runtime reads is built from it by [`crate::tokenizer::build`].
    pub fn tokenizer(&self) -> Result<Option<TokenizerData>> {
        Ok(self.checkpoint().transpose()?.and_then(|c| c.tokenizer))
    }

    /// Converts the model to the IR as `opts` says (pinned dims and shapes,
    /// bound inputs, external weights; for a language model, the step graph
    /// [`ImportOptions::llm`] describes).
    pub fn import(self, opts: &ImportOptions) -> Result<Graph> {
        match self {
            Model::Onnx(m) => m.import(opts),
            Model::HuggingFace(c) => crate::llm::build(&c, &opts.llm),
            Model::Gguf(m) => crate::llm::build(&m.checkpoint()?, &opts.llm),
        }
    }
}

/// The summary of a language model's step graph: its signature for the
/// default options (one token per step) and its parameters; `producer`
/// names the file format.
fn llm_signature(c: &Checkpoint, producer: &str) -> Summary {
    let t = LlmOptions::default().tokens;
    let declared = |name: &str, dtype: &str, dims: Vec<usize>| DeclaredValue {
        name: name.into(),
        dtype: dtype.into(),
        dims: Some(dims.iter().map(usize::to_string).collect()),
    };
    let s = LlmSummary::of_checkpoint("Hugging Face", c);
    Summary {
        producer: producer.into(),
        inputs: vec![
            declared("tokens", "i64", vec![t]),
            declared("pos", "i64", vec![1]),
        ],
        outputs: vec![declared("logits", "f32", vec![t, c.config.vocab_size])],
        param_count: s.param_count,
        param_bytes: s.param_bytes,
        llm: Some(s),
        ..Summary::default()
    }
}

/// Reads the model at `path` in whatever format it is ([`detect`]), within
/// `limits`.
pub fn open(path: &Path, limits: &Limits) -> Result<Model> {
    match detect(path)? {
        Format::Onnx => match OnnxModel::read(path, limits) {
            Ok(m) => Ok(Model::Onnx(m)),
            // Bytes no format claimed and protobuf refused: show them, so
            // the user sees what the file starts with.
            Err(Error::Parse { path, msg }) if msg.starts_with("not a valid ONNX model") => {
                let head = hex_head(&path);
                Err(Error::Parse {
                    msg: format!("{msg}; the file starts with {head}"),
                    path,
                })
            }
            Err(e) => Err(e),
        },
        Format::Gguf => Ok(Model::Gguf(GgufFile::open(path, limits)?)),
        Format::HuggingFace => Ok(Model::HuggingFace(crate::hf::read(path, limits)?)),
    }
}

/// Reads the model at `path` and imports it as `opts` says: the one call
/// from a file to an [`smelt_ir::Graph`].
pub fn load(path: &Path, opts: &ImportOptions) -> Result<Graph> {
    open(path, &opts.limits)?.import(opts)
}

/// Builder-style setters, so a program can write
/// `ImportOptions::default().dim("batch", 1).weights("w.safetensors")`.
impl ImportOptions {
    /// Pins the named symbolic dim `name` to `value` (`--dim`).
    pub fn dim(mut self, name: impl Into<String>, value: usize) -> Self {
        self.dims.insert(name.into(), value);
        self
    }

    /// Fixes the whole shape of the input `name` (`--input-shape`; wins
    /// over [`ImportOptions::dim`]).
    pub fn input_shape(mut self, name: impl Into<String>, dims: Vec<usize>) -> Self {
        self.input_shapes.insert(name.into(), dims);
        self
    }

    /// Fixes the input `name` to a constant value (`--bind`).
    pub fn bind(mut self, name: impl Into<String>, value: Tensor) -> Self {
        self.bind.insert(name.into(), value);
        self
    }

    /// Takes initializers from a safetensors file (`--weights`).
    pub fn weights(mut self, path: impl Into<PathBuf>) -> Self {
        self.weights = Some(path.into());
        self
    }

    /// How a language model's step graph is built (tokens per step,
    /// context).
    pub fn llm(mut self, llm: LlmOptions) -> Self {
        self.llm = llm;
        self
    }

    /// Replaces the limits on untrusted files (`--limit`).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch folder.
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("smelt-sniff-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// `check(file name, bytes, expected text)`: opening the file fails
    /// with a message containing the text.
    fn check(dir: &Path, name: &str, bytes: &[u8], want: &str) {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = match open(&p, &Limits::default()) {
            Ok(_) => panic!("{name}: opened as a model"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{name}: expected '{want}' in: {e}");
        assert!(e.contains(name), "{name}: the message names the file: {e}");
    }

    #[test]
    fn non_models_are_named() {
        let d = scratch("files");
        check(
            &d,
            "x.npy",
            b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4'}",
            "a NumPy array, not a model",
        );
        check(&d, "x.npz", b"PK\x03\x04rest", "NumPy .npz archive");
        check(&d, "m.pt", b"PK\x03\x04rest", "PyTorch checkpoint");
        let mut st = 14u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"__meta\":{}}  ");
        check(&d, "w.safetensors", &st, "pass them with --weights");
        check(&d, "empty.onnx", b"", "no graph");
        check(&d, "a.out", b"\x7fELF\x02\x01\x01", "ELF");
        check(
            &d,
            "m.tflite",
            b"\x1c\x00\x00\x00TFL3\x00\x00",
            "TensorFlow Lite",
        );
        // Unknown bytes: the parser's error, with the first bytes in hex.
        check(
            &d,
            "junk.onnx",
            b"\xff\xfe\xfd\xfc junk",
            "the file starts with ff fe fd fc 20 6a",
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn future_formats_are_recognized() {
        let d = scratch("formats");
        // A GGUF header cut short is read as GGUF and refused as such.
        check(
            &d,
            "m.gguf",
            b"GGUF\x03\x00\x00\x00",
            "the file ends at byte 8 inside the tensor count",
        );
        let hf = d.join("hf-model");
        std::fs::create_dir_all(&hf).unwrap();
        std::fs::write(hf.join("config.json"), b"{}").unwrap();
        assert_eq!(detect(&hf).unwrap(), Format::HuggingFace);
        // A folder is read as a Hugging Face model: an empty config names
        // the first key it misses.
        let e = open(&hf, &Limits::default()).err().unwrap().to_string();
        assert!(e.contains("config 'model_type': the key is missing"), "{e}");
        let plain = d.join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::write(plain.join("model.onnx"), b"").unwrap();
        let e = open(&plain, &Limits::default()).err().unwrap().to_string();
        assert!(e.contains("without config.json"), "{e}");
        assert!(e.contains("did you mean"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn onnx_models_load_with_builder_options() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mlp/model.onnx");
        assert_eq!(detect(&model).unwrap(), Format::Onnx);
        let opts = ImportOptions::default()
            .limits(Limits::default())
            .dim("batch", 1);
        let g = load(&model, &opts).unwrap();
        assert!(!g.nodes.is_empty());
        assert_eq!(g.inputs.len(), 1);
    }
}
