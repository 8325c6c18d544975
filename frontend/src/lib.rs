//! Model importers for smelt: everything that reads a file format and turns it
//! into [`smelt_ir`] values. Nothing outside this crate sees protobuf,
//! safetensors headers or NumPy headers.
//!
//! - [`load`] (and [`open`]): one entry for every model format, chosen by
//!   content ([`sniff`]); it says what a file is when it is not a model;
//! - [`onnx`]: `.onnx` models with external data → [`smelt_ir::Graph`];
//! - [`safetensors`]: binding safetensors weights to a graph's constants;
//! - [`npy`]: NumPy `.npy`/`.npz` tensors in and out;
//! - [`gguf`]: llama.cpp's GGUF files, validated and memory-mapped, and
//!   their llama-family models as a [`checkpoint::Checkpoint`];
//! - [`checkpoint`]: a language model's configuration, weights under
//!   canonical names and tokenizer, the one type the GGUF and Hugging Face
//!   readers produce and the LLM graph builder reads;
//! - [`hf`]: Hugging Face model folders → [`checkpoint::Checkpoint`];
//! - [`llm`]: the llama-family graph builder, checkpoint → step graph with
//!   the KV cache as persistent state;
//! - [`tokenizer`]: a checkpoint's tokenizer → the compact table the
//!   runtime's C tokenizer reads.
//!
//! **Architecture Invariant:** every size read from a file goes through
//! [`checked`] and every file is validated before its contents are used; the
//! parsers contain no `unsafe` (the only `unsafe` is the mmap call in `mmap`).

pub mod checked;
pub mod checkpoint;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod limits;
pub mod llm;
pub mod llm_summary;
mod mmap;
pub mod npy;
pub mod onnx;
pub mod safetensors;
pub mod sniff;
pub mod tokenizer;

pub use error::{Error, GgufErrorKind, GgufPlace, Result};
pub use limits::Limits;
pub use onnx::ImportOptions;
pub use sniff::{Format, Model, detect, load, open};
