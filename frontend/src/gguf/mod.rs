//! GGUF, llama.cpp's model file: a validated reader ([`GgufFile`]) and the
//! mapping of its llama-family models onto a [`Checkpoint`]
//! ([`GgufFile::checkpoint`]).
//!
//! Versions 2 and 3, little-endian (big-endian files and version 1 are
//! refused with a message saying so). Every metadata value type is read,
//! nested arrays included; every tensor info is checked (1 to 4 dims, none
//! zero, a known ggml type, rows a whole number of blocks), and every
//! tensor's data must be aligned, inside the file and apart from every
//! other tensor's before the file is accepted. Counts, lengths and offsets
//! go through [`crate::checked`] and the [`Limits`] (`max-kv-count`,
//! `max-tensor-count`, `max-string-bytes`, `max-array-len`, `max-depth` for
//! array nesting, `max-rank`, `max-tensor-bytes`, `max-weight-bytes`); a
//! count is compared with the bytes left before anything is allocated for
//! it. Errors are [`crate::Error::Gguf`], naming the key or tensor and the byte
//! offset.
//!
//! Tensors stay windows into the memory-mapped file, in their ggml
//! encoding ([`smelt_ir::Encoding::Block`] for the block formats): nothing
//! is widened or copied.
//!
//! Files: `cursor` (bounds-checked reads), `value` (metadata values),
//! `ggml_type` (the tensor type table), `header` (key/values and tensor
//! infos), `layout` (alignment and data windows), `metadata` (typed key
//! look-ups), `checkpoint` (hyper-parameters and tensor names),
//! `tokenizer` (`tokenizer.ggml.*`), `summary` (for `smelt inspect`).

mod checkpoint;
mod cursor;
mod ggml_type;
mod header;
mod layout;
mod metadata;
mod summary;
mod tokenizer;
mod value;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use smelt_ir::Bytes;

pub use ggml_type::{GgmlType, TypeCodeError};
pub use header::{Kv, MAX_DIMS, TensorInfo};
pub use value::{Value, ValueType};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::limits::Limits;
use crate::mmap;

/// A GGUF file, validated and memory-mapped.
pub struct GgufFile {
    path: PathBuf,
    map: Arc<Mmap>,
    version: u32,
    kvs: Vec<Kv>,
    kv_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    data_offsets: Vec<usize>,
    tensor_index: HashMap<String, usize>,
    alignment: usize,
    data_start: usize,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GgufFile({}, v{}, {} keys, {} tensors)",
            self.path.display(),
            self.version,
            self.kvs.len(),
            self.tensors.len()
        )
    }
}

impl GgufFile {
    /// Maps and validates the GGUF file at `path`.
    pub fn open(path: &Path, limits: &Limits) -> Result<GgufFile> {
        GgufFile::parse(mmap::map_regular_file(path)?, path, limits)
    }

    /// Validates a GGUF file held in memory (named `path` in messages),
    /// copied into an anonymous mapping so its tensors are windows as for
    /// a file; for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8], path: &Path, limits: &Limits) -> Result<GgufFile> {
        GgufFile::parse(mmap::map_copy(bytes, path)?, path, limits)
    }

    /// Reads and checks everything in `map`.
    fn parse(map: Arc<Mmap>, path: &Path, limits: &Limits) -> Result<GgufFile> {
        let h = header::read(&map, path, limits)?;
        let alignment = layout::alignment(&h.kvs, path)?;
        let data_start = layout::data_start(h.end, alignment, path)?;
        let data_offsets =
            layout::check(&h.tensors, alignment, data_start, map.len(), path, limits)?;
        let kv_index = index(h.kvs.iter().map(|kv| &kv.key));
        let tensor_index = index(h.tensors.iter().map(|t| &t.name));
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version: h.version,
            kvs: h.kvs,
            kv_index,
            tensors: h.tensors,
            data_offsets,
            tensor_index,
            alignment,
            data_start,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata, in file order.
    pub fn metadata(&self) -> &[Kv] {
        &self.kvs
    }

    /// The key/value pair of `key`.
    pub fn kv(&self, key: &str) -> Option<&Kv> {
        self.kv_index.get(key).map(|&i| &self.kvs[i])
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv(key).map(|kv| &kv.value)
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name` (its name in the file).
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The alignment of the tensor data.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Where the data section starts.
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// Where the data of tensor `name` starts in the file.
    pub fn data_offset(&self, name: &str) -> Option<usize> {
        self.tensor_index.get(name).map(|&i| self.data_offsets[i])
    }

    /// The bytes of tensor `name`: a window into the mapped file, in the
    /// tensor's ggml encoding.
    pub fn tensor_bytes(&self, name: &str) -> Option<Bytes> {
        let i = *self.tensor_index.get(name)?;
        // `layout::check` has put every window inside the map.
        Bytes::mapped(self.map.clone(), self.data_offsets[i], self.tensors[i].len).ok()
    }

    /// The language model in the file, under canonical names (see
    /// [`crate::checkpoint`]), for the architectures the graph builder
    /// knows.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        checkpoint::build(self)
    }
}

/// Each name's position in `names`.
fn index<'a>(names: impl Iterator<Item = &'a String>) -> HashMap<String, usize> {
    names.enumerate().map(|(i, n)| (n.clone(), i)).collect()
}
