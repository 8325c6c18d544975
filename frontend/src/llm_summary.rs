//! What `smelt inspect` shows of a language model before any graph is
//! built: the format, the architecture and its hyper-parameters, the
//! parameters and bytes per storage encoding, and the KV cache's size per
//! token. Readers of checkpoint formats (GGUF, Hugging Face) fill it in.

use smelt_ir::TensorType;

use crate::checkpoint::{Checkpoint, LlmConfig};

/// The parameters stored in one encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodingTotal {
    /// The encoding's name: the dtype for dense tensors (`f32`, `f16`,
    /// `bf16`), the block format otherwise (`q8_0`, `q4_k`).
    pub encoding: String,
    /// Tensors stored so.
    pub tensors: usize,
    /// Their elements.
    pub params: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A language model's summary.
#[derive(Clone, Debug, Default)]
pub struct LlmSummary {
    /// The file format and version (`GGUF v3`).
    pub format: String,
    /// The architecture as the file names it (`llama`, `qwen2`, …).
    pub architecture: String,
    /// The model's own name, when the file gives one.
    pub name: Option<String>,
    /// The hyper-parameters, when the checkpoint could be read.
    pub config: Option<LlmConfig>,
    /// Why the checkpoint cannot be read, when it cannot.
    pub problem: Option<String>,
    /// Parameters and bytes per encoding, sorted by encoding name.
    pub by_encoding: Vec<EncodingTotal>,
    /// Elements of every tensor.
    pub param_count: u64,
    /// Bytes of every tensor.
    pub param_bytes: u64,
}

impl LlmSummary {
    /// Adds up `types` by encoding into the parameter totals.
    pub fn tally<'a>(&mut self, types: impl IntoIterator<Item = &'a TensorType>) {
        for ty in types {
            let name = match ty.encoding {
                smelt_ir::Encoding::Dense => ty.dtype.name().to_string(),
                e => e.to_string(),
            };
            let params = ty.numel().unwrap_or(0) as u64;
            let bytes = ty.bytes().unwrap_or(0) as u64;
            let i = match self.by_encoding.iter().position(|t| t.encoding == name) {
                Some(i) => i,
                None => {
                    self.by_encoding.push(EncodingTotal {
                        encoding: name,
                        tensors: 0,
                        params: 0,
                        bytes: 0,
                    });
                    self.by_encoding.len() - 1
                }
            };
            let t = &mut self.by_encoding[i];
            t.tensors += 1;
            t.params = t.params.saturating_add(params);
            t.bytes = t.bytes.saturating_add(bytes);
            self.param_count = self.param_count.saturating_add(params);
            self.param_bytes = self.param_bytes.saturating_add(bytes);
        }
        self.by_encoding.sort_by(|a, b| a.encoding.cmp(&b.encoding));
    }

    /// The summary of a checkpoint read from a file in `format`.
    pub fn of_checkpoint(format: &str, c: &Checkpoint) -> LlmSummary {
        let mut s = LlmSummary {
            format: format.to_string(),
            architecture: c.config.arch.name().to_string(),
            config: Some(c.config.clone()),
            ..LlmSummary::default()
        };
        s.tally(c.tensors.values().map(|w| &w.ty));
        s
    }

    /// Bytes of KV cache one token takes, as the graph builder lays the
    /// cache out ([`crate::llm::kv_cache_bytes`] of one token).
    pub fn kv_cache_bytes_per_token(&self) -> Option<u64> {
        self.kv_cache_bytes(1)
    }

    /// Bytes of the whole KV cache for a context of `ctx` tokens
    /// ([`crate::llm::kv_cache_bytes`]).
    pub fn kv_cache_bytes(&self, ctx: usize) -> Option<u64> {
        crate::llm::kv_cache_bytes(self.config.as_ref()?, ctx)
    }
}
