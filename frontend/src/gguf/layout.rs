//! Where the tensor data lies: `general.alignment`, the start of the data
//! section, and each tensor's window into the file, checked before any
//! tensor is used (aligned, inside the file, no two overlapping, within the
//! size limits).

use std::path::Path;

use super::cursor::{error, overflow};
use super::header::{DEFAULT_ALIGNMENT, Kv, TensorInfo};
use super::value::Value;
use crate::checked;
use crate::error::{GgufErrorKind, GgufPlace, Result};
use crate::limits::Limits;

/// The key that sets the alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// The alignment of the tensor data: `general.alignment` (a `UINT32`, a
/// power of two) or 32.
pub(super) fn alignment(kvs: &[Kv], path: &Path) -> Result<usize> {
    let Some(kv) = kvs.iter().find(|kv| kv.key == ALIGNMENT_KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let bad = |kind, msg| {
        error(
            path,
            Some(kv.offset),
            GgufPlace::Key(ALIGNMENT_KEY.into()),
            kind,
            msg,
        )
    };
    match kv.value {
        Value::U32(a) if a.is_power_of_two() => Ok(a as usize),
        Value::U32(a) => Err(bad(
            GgufErrorKind::BadValue,
            format!("the alignment is {a}, not a power of two"),
        )),
        ref v => Err(bad(
            GgufErrorKind::KeyType,
            format!("the alignment must be a UINT32, not a {}", v.ty()),
        )),
    }
}

/// The start of the data section: the end of the tensor infos rounded up
/// to `alignment`.
pub(super) fn data_start(infos_end: usize, alignment: usize, path: &Path) -> Result<usize> {
    let blocks = infos_end.div_ceil(alignment);
    checked::mul(blocks, alignment, || "the start of the tensor data".into())
        .map_err(|e| overflow(path, infos_end, &GgufPlace::File, e))
}

/// Checks every tensor's data window: its offset a multiple of
/// `alignment`, its bytes inside the `file_len`-byte file after
/// `data_start`, no two windows overlapping, each tensor and their sum
/// within the limits. Returns the absolute offset of each tensor's data.
pub(super) fn check(
    tensors: &[TensorInfo],
    alignment: usize,
    data_start: usize,
    file_len: usize,
    path: &Path,
    limits: &Limits,
) -> Result<Vec<usize>> {
    let mut starts = Vec::with_capacity(tensors.len());
    let mut total = 0u64;
    for t in tensors {
        let place = GgufPlace::Tensor(t.name.clone());
        let err = |kind, msg| error(path, Some(t.info_offset), place.clone(), kind, msg);
        if !t.relative_offset.is_multiple_of(alignment) {
            return Err(err(
                GgufErrorKind::Misaligned,
                format!(
                    "its data offset {} is not a multiple of the alignment {alignment}",
                    t.relative_offset
                ),
            ));
        }
        Limits::check(
            || format!("the size of tensor '{}'", t.name),
            t.len as u64,
            limits.max_tensor_bytes,
            "max-tensor-bytes",
        )?;
        total = total.saturating_add(t.len as u64);
        Limits::check(
            || "the total size of the GGUF tensors".into(),
            total,
            limits.max_weight_bytes,
            "max-weight-bytes",
        )?;
        let what = || format!("the data of tensor '{}'", t.name);
        let start = checked::add(data_start, t.relative_offset, what)
            .map_err(|e| overflow(path, t.info_offset, &place, e))?;
        let end = checked::add(start, t.len, what)
            .map_err(|e| overflow(path, t.info_offset, &place, e))?;
        if end > file_len {
            return Err(err(
                GgufErrorKind::OutOfBounds,
                format!(
                    "its {} bytes of data at byte {start} end at byte {end}, past the end of the {file_len}-byte file",
                    t.len
                ),
            ));
        }
        starts.push(start);
    }
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (starts[i], tensors[i].info_offset));
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        let a_end = starts[w[0]] + a.len;
        if starts[w[1]] < a_end {
            return Err(error(
                path,
                Some(b.info_offset),
                GgufPlace::Tensor(b.name.clone()),
                GgufErrorKind::Overlap,
                format!(
                    "its data at bytes {}..{} overlaps tensor '{}' at bytes {}..{a_end}",
                    starts[w[1]],
                    starts[w[1]] + b.len,
                    a.name,
                    starts[w[0]]
                ),
            ));
        }
    }
    Ok(starts)
}
