//! Published limits on untrusted model files. Each is configurable with
//! `--limit KEY=N`; each has an over-limit test.

use crate::error::{Error, Result};

/// The limits applied while reading a model and its weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest model (`.onnx`) file, in bytes. Protobuf itself caps at 2 GiB.
    pub max_model_bytes: u64,
    /// Deepest nesting of subgraphs (`If`/`Loop` bodies).
    pub max_depth: usize,
    /// Largest tensor rank.
    pub max_rank: usize,
    /// Most nodes in a graph, subgraphs included.
    pub max_nodes: usize,
    /// Most bytes of weights (initializers, constants, external data, safetensors).
    pub max_weight_bytes: u64,
    /// Largest single tensor (weight or activation), in bytes.
    pub max_tensor_bytes: u64,
    /// Most metadata key/value pairs in a GGUF file.
    pub max_kv_count: u64,
    /// Most tensors in a GGUF file.
    pub max_tensor_count: u64,
    /// Longest string in a GGUF file (a key, a value, a tensor name), in bytes.
    pub max_string_bytes: u64,
    /// Most elements in one GGUF metadata array (a vocabulary's tokens or
    /// merges are the long ones). Nested arrays are limited by
    /// [`Limits::max_depth`].
    pub max_array_len: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_model_bytes: 2 << 30,
            max_depth: 32,
            max_rank: 8,
            max_nodes: 1_000_000,
            max_weight_bytes: 64 << 30,
            max_tensor_bytes: 16 << 30,
            max_kv_count: 1 << 16,
            max_tensor_count: 1 << 20,
            max_string_bytes: 16 << 20,
            max_array_len: 1 << 24,
        }
    }
}

impl Limits {
    /// The keys accepted by [`Limits::set`], with one-line descriptions.
    pub const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "max-model-bytes",
            "largest .onnx file in bytes (default 2 GiB)",
        ),
        (
            "max-depth",
            "deepest subgraph nesting, and GGUF array nesting (default 32)",
        ),
        ("max-rank", "largest tensor rank (default 8)"),
        (
            "max-nodes",
            "most nodes, subgraphs included (default 1,000,000)",
        ),
        (
            "max-weight-bytes",
            "most weight bytes in all (default 64 GiB)",
        ),
        (
            "max-tensor-bytes",
            "largest single tensor in bytes (default 16 GiB)",
        ),
        ("max-kv-count", "most GGUF metadata keys (default 65,536)"),
        ("max-tensor-count", "most GGUF tensors (default 1,048,576)"),
        (
            "max-string-bytes",
            "longest GGUF string in bytes (default 16 MiB)",
        ),
        (
            "max-array-len",
            "most elements in one GGUF metadata array (default 16,777,216)",
        ),
    ];

    /// Sets one limit by key.
    pub fn set(&mut self, key: &str, value: u64) -> Result<()> {
        let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        match key {
            "max-model-bytes" => self.max_model_bytes = value,
            "max-depth" => self.max_depth = as_usize(value),
            "max-rank" => self.max_rank = as_usize(value).min(smelt_ir::shape::MAX_RANK),
            "max-nodes" => self.max_nodes = as_usize(value),
            "max-weight-bytes" => self.max_weight_bytes = value,
            "max-tensor-bytes" => self.max_tensor_bytes = value,
            "max-kv-count" => self.max_kv_count = value,
            "max-tensor-count" => self.max_tensor_count = value,
            "max-string-bytes" => self.max_string_bytes = value,
            "max-array-len" => self.max_array_len = value,
            other => {
                let keys: Vec<&str> = Limits::KEYS.iter().map(|(k, _)| *k).collect();
                return Err(Error::Graph(format!(
                    "unknown limit '{other}'; the limits are {}",
                    keys.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Fails with [`Error::Limit`] when `value > limit`.
    pub fn check(
        what: impl FnOnce() -> String,
        value: u64,
        limit: u64,
        key: &'static str,
    ) -> Result<()> {
        if value > limit {
            Err(Error::Limit {
                what: what(),
                value,
                limit,
                key,
            })
        } else {
            Ok(())
        }
    }

    /// Reads a whole file after checking that it is a regular file of at
    /// most `limit` bytes (`key` names the limit in the error).
    pub fn read_file(path: &std::path::Path, limit: u64, key: &'static str) -> Result<Vec<u8>> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                msg: "not a regular file".into(),
            });
        }
        Limits::check(
            || format!("the size of {}", path.display()),
            meta.len(),
            limit,
            key,
        )?;
        std::fs::read(path).map_err(io)
    }
}
