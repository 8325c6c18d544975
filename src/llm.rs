//! A language model to a chat executable: the checkpoint's decode graph (one
//! token per step) and prefill graph (`chunk` tokens per step), both built
//! from the same weights and sharing the KV cache, compiled like any model
//! ([`crate::prepare`]), plus the tokenizer table and the descriptor the
//! chat runtime reads (`runtime/c/llm.h`), linked into one program by
//! [`smelt_backends::artifact::chat`].
//!
//! ```no_run
//! use smelt::{Backend, CompileOptions, ImportOptions};
//! let model = smelt::frontend::open("model.gguf".as_ref(), &Default::default())?;
//! let ckpt = model.checkpoint().expect("a language model")?;
//! let opts = CompileOptions::new("x86_64", Backend::Cranelift, "chat")?;
//! let artifact = smelt::llm::compile_chat(&ckpt, &smelt::llm::ChatOptions::default(), &opts)?;
//! # Ok::<(), smelt::Error>(())
//! ```

use smelt_backends::artifact::chat::{ChatProgram, build_chat};
use smelt_frontend::checkpoint::Checkpoint;
use smelt_frontend::llm::LlmOptions;
use smelt_frontend::tokenizer;
use smelt_runtime::llm::Descriptor;
use smelt_runtime::tokenizer::Tokenizer;

use crate::{Artifact, BuildOptions, CompileOptions, Error, Observer};

/// Prompt tokens per prefill step when none is asked for on a target with an
/// OS (a microcontroller gets no prefill model: flash holds one set of
/// weights and RAM one token's activations).
pub const DEFAULT_CHUNK: usize = 32;

/// What a chat executable is built with, besides [`CompileOptions`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// KV cache capacity in tokens (`--ctx`); `None`: the model's, at most
    /// [`smelt_frontend::llm::DEFAULT_MAX_CTX`].
    pub ctx: Option<usize>,
    /// Prompt tokens per prefill step (`--prefill-chunk`); `None`:
    /// [`DEFAULT_CHUNK`] on Linux, no prefill model on bare metal; 0 or 1:
    /// no prefill model (the prompt goes through the decode model).
    pub chunk: Option<usize>,
}

impl ChatOptions {
    /// The cache capacity.
    pub fn ctx(mut self, ctx: usize) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// The prefill chunk.
    pub fn chunk(mut self, chunk: usize) -> Self {
        self.chunk = Some(chunk);
        self
    }
}

/// Compiles `ckpt` into the chat executable `opts.output`.
pub fn compile_chat(
    ckpt: &Checkpoint,
    chat: &ChatOptions,
    opts: &CompileOptions,
) -> Result<Artifact, Error> {
    compile_chat_observed(ckpt, chat, opts, &mut ())
}

/// [`compile_chat`], with `observer` called for each graph's optimizer.
pub fn compile_chat_observed(
    ckpt: &Checkpoint,
    chat: &ChatOptions,
    opts: &CompileOptions,
    observer: &mut dyn Observer,
) -> Result<Artifact, Error> {
    let cfg = &ckpt.config;
    let data = ckpt.tokenizer.as_ref().ok_or_else(|| {
        Error::Llm("the checkpoint has no tokenizer; a chat program needs one".into())
    })?;
    let table = tokenizer::build(data).map_err(|e| Error::Llm(format!("tokenizer: {e}")))?;
    // The C tokenizer validates the table again and says how much memory
    // it builds its tables in.
    let host = Tokenizer::new(table.blob.clone())
        .map_err(|e| Error::Llm(format!("tokenizer table: {e}")))?;
    let ctx = LlmOptions {
        ctx: chat.ctx,
        ..LlmOptions::default()
    }
    .context(cfg.max_position_embeddings);
    let default_chunk = if opts.target.is_bare_metal() {
        0
    } else {
        DEFAULT_CHUNK
    };
    let chunk = chat.chunk.unwrap_or(default_chunk).min(ctx);
    let chunk = if chunk > 1 { chunk } else { 0 };
    let step = |tokens: usize| LlmOptions {
        tokens,
        ctx: Some(ctx),
        last_logits_only: true,
    };
    let decode = smelt_frontend::llm::build(ckpt, &step(1))?;
    let crate::Prepared {
        graph: decode,
        mut optimizer,
        quantize,
    } = crate::prepare(&decode, opts, observer)?;
    let prefill = match chunk {
        0 => None,
        n => {
            let g = smelt_frontend::llm::build(ckpt, &step(n))?;
            let p = crate::prepare(&g, opts, observer)?;
            optimizer.extend(p.optimizer);
            Some(p.graph)
        }
    };
    // The chat template, when the checkpoint has one smelt recognises; its
    // end-of-turn token also ends generation.
    let mut warnings = vec![];
    let chat_template = match table.vocab.chat() {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            warnings.push(format!("{e}; the program refuses --chat"));
            None
        }
        None => None,
    };
    let mut eos = ckpt.eos_token_ids.clone();
    eos.extend(host.eos());
    if let Some(t) = &chat_template {
        let options = smelt_runtime::tokenizer::EncodeOptions {
            parse_special: true,
            ..Default::default()
        };
        if let Ok(ids) = host.encode(t.end_of_turn.as_bytes(), options)
            && let [id] = ids[..]
        {
            eos.push(id);
        }
    }
    eos.sort_unstable();
    eos.dedup();
    let chat_blob = chat_template.as_ref().map(|t| t.blob()).unwrap_or_default();
    let count = |n: usize, what: &str| {
        u32::try_from(n).map_err(|_| Error::Llm(format!("{what} {n} is over 2^32")))
    };
    let descriptor = Descriptor {
        vocab: count(cfg.vocab_size, "the vocabulary size")?,
        ctx: count(ctx, "the context")?,
        chunk: count(chunk, "the prefill chunk")?,
        eos,
        tokenizer: &table.blob,
        chat_template: &chat_blob,
    };
    let build = BuildOptions {
        linker: opts.linker.as_deref(),
        memory: opts.target.memory,
        threads: opts.threads,
        min_work: opts.min_work,
        unchecked: opts.unchecked,
        ..BuildOptions::new(opts.emit, &opts.model_name)
    };
    let program = ChatProgram {
        decode: &decode,
        prefill: prefill.as_ref(),
        descriptor: &descriptor,
        tokenizer_memory: host.memory_bytes() as u64,
    };
    let report = build_chat(&program, &opts.target, &opts.backend, &opts.output, &build)?;
    Ok(Artifact {
        files: report.files,
        arena_bytes: report.arena_bytes,
        lower_bound: report.lower_bound,
        object_bytes: report.object_bytes,
        weights_bytes: decode.const_bytes() as u64,
        firmware: report.firmware,
        optimizer,
        quantize,
        warnings,
    })
}
