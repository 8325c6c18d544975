//! Memory-mapping of weight files: the only `unsafe` in the frontend, and no
//! parsing happens here.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Maps a whole file read-only.
#[allow(unsafe_code)]
pub fn map_file(path: &Path) -> Result<Arc<Mmap>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the mapping is read-only and private to this process. If another
    // process truncates the file while it is mapped, reads could fault; smelt
    // treats model files as immutable inputs during a run, as every mmap-based
    // loader (safetensors, llama.cpp) does. All offsets into the map are
    // bounds-checked against its length before use (`Bytes::mapped`).
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    Ok(Arc::new(map))
}

/// Maps the file at `path` after checking that it is a regular file (not
/// a directory, a pipe or a device).
pub fn map_regular_file(path: &Path) -> Result<Arc<Mmap>> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            msg: "not a regular file".into(),
        });
    }
    map_file(path)
}

/// Copies bytes held in memory into an anonymous read-only mapping, so
/// that a file given as bytes (tests, fuzzing) hands out windows as a
/// mapped file does; `path` names it in errors.
pub fn map_copy(bytes: &[u8], path: &Path) -> Result<Arc<Mmap>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // An empty anonymous mapping is refused by the OS; the extra byte is
    // never part of a tensor.
    let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(io)?;
    map[..bytes.len()].copy_from_slice(bytes);
    Ok(Arc::new(map.make_read_only().map_err(io)?))
}
