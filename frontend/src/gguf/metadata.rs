//! Typed look-ups of metadata keys, each failing with an error that names
//! the key, its byte offset and the type it should have had. Integers are
//! accepted in any GGUF width that holds the value (converters differ:
//! `UINT32` and `UINT64` both occur), floats as `FLOAT32` or `FLOAT64`.

use super::GgufFile;
use super::cursor::error;
use super::value::Value;
use crate::error::{Error, GgufErrorKind, GgufPlace, Result};

impl GgufFile {
    /// An error about `key` (at its offset when the file has it).
    pub(super) fn key_error(&self, key: &str, kind: GgufErrorKind, msg: String) -> Error {
        error(
            &self.path,
            self.kv(key).map(|kv| kv.offset),
            GgufPlace::Key(key.to_string()),
            kind,
            msg,
        )
    }

    /// `value`, or an error saying `key` is missing.
    pub fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| {
            self.key_error(
                key,
                GgufErrorKind::MissingKey,
                "the model needs this key and the file does not have it".into(),
            )
        })
    }

    /// A wrong-type error for `key`, which should be `want`.
    fn wrong_type(&self, key: &str, v: &Value, want: &str) -> Error {
        self.key_error(
            key,
            GgufErrorKind::KeyType,
            format!("the value should be {want}, not a {}", v.ty()),
        )
    }

    /// A non-negative integer key.
    pub fn usize_key(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_int()
            .ok_or_else(|| self.wrong_type(key, v, "an integer"))?;
        usize::try_from(n).map(Some).map_err(|_| {
            self.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("the value is {n}, which is not a valid count"),
            )
        })
    }

    /// A token-id key (an integer below 2^32).
    pub fn u32_key(&self, key: &str) -> Result<Option<u32>> {
        let Some(n) = self.usize_key(key)? else {
            return Ok(None);
        };
        u32::try_from(n).map(Some).map_err(|_| {
            self.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("the value is {n}, too large for a token id"),
            )
        })
    }

    /// A float key.
    pub fn f32_key(&self, key: &str) -> Result<Option<f32>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_float()
            .map(|f| Some(f as f32))
            .ok_or_else(|| self.wrong_type(key, v, "a float"))
    }

    /// A string key.
    pub fn str_key(&self, key: &str) -> Result<Option<&str>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_str()
            .map(Some)
            .ok_or_else(|| self.wrong_type(key, v, "a STRING"))
    }

    /// A bool key.
    pub fn bool_key(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, v, "a BOOL")),
        }
    }

    /// An array key whose elements `f` converts (`want` names the element
    /// type for the error).
    fn array_key<T>(
        &self,
        key: &str,
        want: &str,
        f: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let (ty, items) = v.as_array().ok_or_else(|| self.wrong_type(key, v, want))?;
        let bad = || {
            self.key_error(
                key,
                GgufErrorKind::KeyType,
                format!("the value should be {want}, not an ARRAY of {ty}"),
            )
        };
        items
            .iter()
            .map(|item| f(item).ok_or_else(bad))
            .collect::<Result<Vec<T>>>()
            .map(Some)
    }

    /// An array of strings.
    pub fn str_array_key(&self, key: &str) -> Result<Option<Vec<String>>> {
        self.array_key(key, "an ARRAY of STRING", |v| {
            v.as_str().map(str::to_string)
        })
    }

    /// An array of floats.
    pub fn f32_array_key(&self, key: &str) -> Result<Option<Vec<f32>>> {
        self.array_key(key, "an ARRAY of FLOAT32", |v| {
            v.as_float().map(|f| f as f32)
        })
    }

    /// An array of `INT32`s (or narrower integers).
    pub fn i32_array_key(&self, key: &str) -> Result<Option<Vec<i32>>> {
        self.array_key(key, "an ARRAY of INT32", |v| {
            v.as_int().and_then(|n| i32::try_from(n).ok())
        })
    }
}
