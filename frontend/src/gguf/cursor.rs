//! A bounds-checked little-endian cursor over the bytes of a GGUF file:
//! every read checks the bytes left, every length and count read from the
//! file goes through [`crate::checked`], and every error carries the byte
//! offset and the key or tensor being read.

use std::path::Path;

use crate::checked;
use crate::error::{Error, GgufErrorKind, GgufPlace, Result};
use crate::limits::Limits;

/// Reads a GGUF file front to back.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    /// The key or tensor being read, named in errors.
    pub place: GgufPlace,
}

/// A GGUF error at `offset` in `path`.
pub(super) fn error(
    path: &Path,
    offset: Option<usize>,
    place: GgufPlace,
    kind: GgufErrorKind,
    msg: String,
) -> Error {
    Error::Gguf {
        path: path.to_path_buf(),
        offset: offset.map(|o| o as u64),
        place,
        kind,
        msg,
    }
}

/// Turns an overflow from [`crate::checked`] into a GGUF error at `offset`.
pub(super) fn overflow(path: &Path, offset: usize, place: &GgufPlace, e: Error) -> Error {
    match e {
        Error::Graph(msg) => error(
            path,
            Some(offset),
            place.clone(),
            GgufErrorKind::Overflow,
            msg,
        ),
        other => other,
    }
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes` (the file `path`).
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Cursor<'a> {
        Cursor {
            bytes,
            pos: 0,
            path,
            place: GgufPlace::File,
        }
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the cursor.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An error of `kind` at `offset`, in the current key or tensor.
    pub fn error(&self, kind: GgufErrorKind, offset: usize, msg: String) -> Error {
        error(self.path, Some(offset), self.place.clone(), kind, msg)
    }

    /// `r`, with an overflow turned into a GGUF error at `offset`.
    pub fn checked<T>(&self, r: Result<T>, offset: usize) -> Result<T> {
        r.map_err(|e| overflow(self.path, offset, &self.place, e))
    }

    /// Fails unless `count` items of at least `min_bytes` each fit in the
    /// bytes left: checked before anything is allocated for them, so a
    /// count the file merely claims costs nothing.
    pub fn fits(&self, count: usize, min_bytes: usize, what: &str, at: usize) -> Result<()> {
        let need = self.checked(checked::mul(count, min_bytes, || what.to_string()), at)?;
        if need > self.remaining() {
            return Err(self.error(
                GgufErrorKind::Truncated,
                at,
                format!(
                    "{what}: {count} claimed, which need at least {need} bytes, but only {} bytes are left in the file",
                    self.remaining()
                ),
            ));
        }
        Ok(())
    }

    /// The next `n` bytes (`what` names them for the error).
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let start = self.pos;
        let end = self.checked(checked::add(start, n, || what.to_string()), start)?;
        if end > self.bytes.len() {
            return Err(self.error(
                GgufErrorKind::Truncated,
                start,
                format!(
                    "the file ends at byte {} inside {what}, which needs {n} bytes",
                    self.bytes.len()
                ),
            ));
        }
        self.pos = end;
        Ok(&self.bytes[start..end])
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u64` count or length as a `usize`.
    pub fn size(&mut self, what: &str) -> Result<usize> {
        let at = self.pos;
        let v = self.u64(what)?;
        self.checked(checked::u64_to_usize(v, || what.to_string()), at)
    }

    /// A GGUF string: a `u64` length, then that many bytes of UTF-8,
    /// at most [`Limits::max_string_bytes`] long.
    pub fn string(&mut self, what: &str, limits: &Limits) -> Result<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        Limits::check(
            || format!("the length of {what} at byte {at}"),
            len,
            limits.max_string_bytes,
            "max-string-bytes",
        )?;
        let len = self.checked(checked::u64_to_usize(len, || what.to_string()), at)?;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(self.error(
                GgufErrorKind::BadValue,
                at,
                format!("{what} is not valid UTF-8 ({e})"),
            )),
        }
    }
}
