//! The front of a GGUF file: magic, version, counts, the metadata
//! key/value pairs and the tensor infos, read and checked in file order.
//!
//! Layout (little-endian, GGUF v2 and v3): `"GGUF"`, `u32` version, `u64`
//! tensor count, `u64` key/value count, the key/value pairs (a string key,
//! a `u32` value type, the value), then one info per tensor (a string name,
//! `u32` dim count, that many `u64` dims with `ne[0]` fastest, a `u32` ggml
//! type, a `u64` offset into the data section). The data section starts at
//! the next multiple of `general.alignment` (default 32).

use std::collections::HashMap;
use std::path::Path;

use super::cursor::Cursor;
use super::ggml_type::{GgmlType, TypeCodeError};
use super::value::{self, Value};
use crate::checked;
use crate::error::{GgufErrorKind, GgufPlace, Result};
use crate::limits::Limits;

/// The most dims a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;

/// One metadata key/value pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// Where the pair starts in the file.
    pub offset: usize,
}

/// One tensor's info, validated: its shape and type are consistent and its
/// data lies inside the file (see [`super::layout`]).
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// The name in the file (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGUF's dims, `ne[0]` (the fastest-varying, a row's length) first.
    pub ne: Vec<usize>,
    /// The ggml type.
    pub ggml_type: GgmlType,
    /// The tensor's type: `ne` reversed (row-major, outermost first), its
    /// dtype and encoding.
    pub ty: smelt_ir::TensorType,
    /// Where the tensor's info starts in the file.
    pub info_offset: usize,
    /// The tensor data's offset from the start of the data section, as
    /// the file gives it.
    pub relative_offset: usize,
    /// Bytes of data.
    pub len: usize,
}

/// Everything before the data section.
pub(super) struct Header {
    /// 2 or 3.
    pub version: u32,
    /// The key/value pairs, in file order.
    pub kvs: Vec<Kv>,
    /// The tensor infos, in file order (offsets not yet checked).
    pub tensors: Vec<TensorInfo>,
    /// Where the tensor infos end.
    pub end: usize,
}

/// Reads the magic, version, counts, key/value pairs and tensor infos.
pub(super) fn read(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Header> {
    let mut cur = Cursor::new(bytes, path);
    let magic = cur.array::<4>("the magic")?;
    if &magic != b"GGUF" {
        return Err(cur.error(
            GgufErrorKind::Header,
            0,
            format!("not a GGUF file: it starts with {magic:02x?}, not \"GGUF\""),
        ));
    }
    let version = cur.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(cur.error(
                GgufErrorKind::Header,
                4,
                "GGUF version 1 is not supported (its counts are 32-bit); convert the model again with a current llama.cpp".into(),
            ));
        }
        v if (1..=3).contains(&v.swap_bytes()) => {
            return Err(cur.error(
                GgufErrorKind::Header,
                4,
                "a big-endian GGUF file; smelt reads little-endian GGUF only: convert the model again without --bigendian".into(),
            ));
        }
        v => {
            return Err(cur.error(
                GgufErrorKind::Header,
                4,
                format!("GGUF version {v} is not supported (smelt reads versions 2 and 3)"),
            ));
        }
    }
    let tensor_count = count(
        &mut cur,
        "the tensor count",
        limits.max_tensor_count,
        "max-tensor-count",
    )?;
    let kv_count = count(
        &mut cur,
        "the metadata key/value count",
        limits.max_kv_count,
        "max-kv-count",
    )?;
    // The smallest pair is an empty key, a type and a one-byte value; the
    // smallest info an empty name, one dim, a type and an offset.
    cur.fits(kv_count, 8 + 4 + 1, "metadata key/value pairs", 16)?;
    let kvs = read_kvs(&mut cur, kv_count, limits)?;
    cur.fits(tensor_count, 8 + 4 + 8 + 4 + 8, "tensor infos", cur.pos())?;
    let tensors = read_infos(&mut cur, tensor_count, limits)?;
    Ok(Header {
        version,
        kvs,
        tensors,
        end: cur.pos(),
    })
}

/// Reads a `u64` count (`what`) within the limit `key`.
fn count(cur: &mut Cursor, what: &str, limit: u64, key: &'static str) -> Result<usize> {
    let at = cur.pos();
    let n = cur.u64(what)?;
    Limits::check(|| what.to_string(), n, limit, key)?;
    cur.checked(checked::u64_to_usize(n, || what.to_string()), at)
}

/// Reads a key or tensor name (`what`) and its offset, makes it the place
/// errors name (`place` wraps it), and refuses a name `seen` already holds.
fn read_name(
    cur: &mut Cursor,
    seen: &mut HashMap<String, usize>,
    (what, place): (&str, fn(String) -> GgufPlace),
    limits: &Limits,
) -> Result<(String, usize)> {
    let offset = cur.pos();
    cur.place = GgufPlace::File;
    let name = cur.string(what, limits)?;
    cur.place = place(name.clone());
    if let Some(first) = seen.insert(name.clone(), offset) {
        return Err(cur.error(
            GgufErrorKind::Duplicate,
            offset,
            format!("{what} appears twice (first at byte {first})"),
        ));
    }
    Ok((name, offset))
}

/// Reads `count` key/value pairs, refusing duplicate keys.
fn read_kvs(cur: &mut Cursor, count: usize, limits: &Limits) -> Result<Vec<Kv>> {
    let mut kvs = Vec::with_capacity(count);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..count {
        let (key, offset) = read_name(cur, &mut seen, ("a metadata key", GgufPlace::Key), limits)?;
        let ty = value::read_type(cur, "the value type")?;
        let value = value::read(cur, ty, limits, 0)?;
        kvs.push(Kv { key, value, offset });
    }
    cur.place = GgufPlace::File;
    Ok(kvs)
}

/// Reads `count` tensor infos, checking names, dims and types.
fn read_infos(cur: &mut Cursor, count: usize, limits: &Limits) -> Result<Vec<TensorInfo>> {
    let mut infos = Vec::with_capacity(count);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..count {
        let (name, info_offset) =
            read_name(cur, &mut seen, ("a tensor name", GgufPlace::Tensor), limits)?;
        let ne = read_dims(cur, limits, info_offset)?;
        let type_at = cur.pos();
        let code = cur.u32("the tensor type")?;
        let ggml_type = GgmlType::from_code(code).map_err(|e| match e {
            TypeCodeError::Unsupported(n) => cur.error(
                GgufErrorKind::UnsupportedTensorType,
                type_at,
                format!("type {n} (code {code}) is not supported; requantize the model to Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, a K-quant, TQ1_0/TQ2_0, F16, BF16 or F32"),
            ),
            TypeCodeError::Unknown => cur.error(
                GgufErrorKind::UnknownTensorType,
                type_at,
                format!("type code {code} is not a ggml type"),
            ),
        })?;
        let relative_offset = cur.size("the tensor data offset")?;
        let len = data_len(cur, &ne, ggml_type, info_offset)?;
        let shape: Vec<usize> = ne.iter().rev().copied().collect();
        let ty = ggml_type
            .tensor_type(shape)
            .map_err(|e| cur.error(GgufErrorKind::Shape, info_offset, e.to_string()))?;
        infos.push(TensorInfo {
            name,
            ne,
            ggml_type,
            ty,
            info_offset,
            relative_offset,
            len,
        });
    }
    cur.place = GgufPlace::File;
    Ok(infos)
}

/// Reads a tensor's dim count and dims: 1 to 4 dims (at most
/// [`Limits::max_rank`]), none zero, their product representable.
fn read_dims(cur: &mut Cursor, limits: &Limits, at: usize) -> Result<Vec<usize>> {
    let n_at = cur.pos();
    let n = cur.u32("the dim count")? as usize;
    if n == 0 || n > MAX_DIMS {
        return Err(cur.error(
            GgufErrorKind::Shape,
            n_at,
            format!("the tensor has {n} dims; a ggml tensor has 1 to {MAX_DIMS}"),
        ));
    }
    Limits::check(
        || format!("the rank of the tensor at byte {at}"),
        n as u64,
        limits.max_rank as u64,
        "max-rank",
    )?;
    let mut ne = Vec::with_capacity(n);
    let mut count = 1usize;
    for i in 0..n {
        let d_at = cur.pos();
        let d = cur.u64("a dim")?;
        // ggml keeps dims as `int64_t`.
        if d == 0 || d > i64::MAX as u64 {
            return Err(cur.error(
                GgufErrorKind::Shape,
                d_at,
                format!("dim {i} (ne[{i}]) is {d}; dims must be between 1 and 2^63 - 1"),
            ));
        }
        let d = cur.checked(checked::u64_to_usize(d, || format!("ne[{i}]")), d_at)?;
        count = cur.checked(
            checked::mul(count, d, || "the tensor's element count".into()),
            d_at,
        )?;
        ne.push(d);
    }
    Ok(ne)
}

/// Bytes of a tensor of dims `ne` and type `t`: `ne[0]` a multiple of the
/// block length, then whole blocks.
fn data_len(cur: &Cursor, ne: &[usize], t: GgmlType, at: usize) -> Result<usize> {
    if !ne[0].is_multiple_of(t.block_len()) {
        return Err(cur.error(
            GgufErrorKind::Shape,
            at,
            format!(
                "its rows (ne[0]) have {} elements, not a multiple of {}'s block length {}",
                ne[0],
                t.name(),
                t.block_len()
            ),
        ));
    }
    let count = ne.iter().product::<usize>();
    cur.checked(
        checked::mul(count / t.block_len(), t.block_bytes(), || {
            "the tensor's byte size".into()
        }),
        at,
    )
}
