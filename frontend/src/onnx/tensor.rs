//! `TensorProto` → typed constant bytes, with every size checked and
//! external data validated before it is mapped.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use onnx_protobuf::TensorProto;
use onnx_protobuf::tensor_proto::DataLocation;
use smelt_ir::{AffineStorage, Bytes, DType, Tensor, TensorType};

use crate::checked;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::mmap::map_file;

/// Decodes tensors of one model, sharing one mapping per external file.
pub struct TensorReader<'a> {
    /// The folder of the model file (external data must lie inside it).
    pub model_dir: &'a Path,
    /// The limits in force.
    pub limits: &'a Limits,
    maps: HashMap<PathBuf, Arc<Mmap>>,
}

impl<'a> TensorReader<'a> {
    /// A reader for tensors of a model in `model_dir`.
    pub fn new(model_dir: &'a Path, limits: &'a Limits) -> TensorReader<'a> {
        TensorReader {
            model_dir,
            limits,
            maps: HashMap::new(),
        }
    }

    /// Decodes `t` (named `name` for messages), taking its `raw_data` without
    /// copying. Returns the type and the little-endian bytes.
    pub fn read(&mut self, name: &str, t: &mut TensorProto) -> Result<(TensorType, Bytes)> {
        let terr = |msg: String| Error::Tensor {
            name: name.to_string(),
            msg,
        };
        if let Some(storage) = packed_4bit(t.data_type) {
            return self.read_4bit(name, t, storage);
        }
        let dtype = DType::from_onnx_code(t.data_type).map_err(|e| terr(e.to_string()))?;
        let shape = checked::dims(&t.dims, self.limits.max_rank, &|| {
            format!("tensor '{name}'")
        })?;
        // `checked::dims` has verified that the product does not overflow.
        let numel = shape.iter().product::<usize>();
        // The one size function (an ONNX tensor is dense); its overflow is
        // reported like every other file-supplied size.
        let ty = TensorType::new(dtype, shape);
        let nbytes = ty.bytes().map_err(|e| {
            Error::Graph(format!("the byte size of tensor '{name}' overflows ({e})"))
        })?;
        self.check_plain(name, t, nbytes)?;
        let external = t.data_location.enum_value() == Ok(DataLocation::EXTERNAL);
        if external {
            let bytes = self.read_external(name, t, nbytes)?;
            return Ok((ty, bytes));
        }
        if !t.raw_data.is_empty() || nbytes == 0 && typed_len(t) == 0 {
            if t.raw_data.len() != nbytes {
                return Err(terr(format!(
                    "raw_data holds {} bytes but {} of shape {:?} needs {nbytes}",
                    t.raw_data.len(),
                    dtype,
                    ty.shape
                )));
            }
            return Ok((ty, Bytes::from(std::mem::take(&mut t.raw_data))));
        }
        let bytes = typed_fields_to_bytes(t, dtype, numel).map_err(terr)?;
        Ok((ty, Bytes::from(bytes)))
    }

    /// Decodes `t` into a [`Tensor`] (for small tensors: attributes, test data).
    pub fn read_tensor(&mut self, name: &str, t: &mut TensorProto) -> Result<Tensor> {
        let (ty, bytes) = self.read(name, t)?;
        Tensor::from_le_bytes(ty.dtype, ty.shape, bytes.as_slice()).map_err(Error::Ir)
    }

    /// Checks that tensor `name`, of `nbytes` in the graph, is within the
    /// size limit and not segmented.
    fn check_plain(&self, name: &str, t: &TensorProto, nbytes: usize) -> Result<()> {
        Limits::check(
            || format!("the size of tensor '{name}'"),
            nbytes as u64,
            self.limits.max_tensor_bytes,
            "max-tensor-bytes",
        )?;
        if t.segment.is_some() {
            return Err(Error::Tensor {
                name: name.to_string(),
                msg: "segmented tensors are not supported".into(),
            });
        }
        Ok(())
    }

    /// Reads an ONNX `INT4`/`UINT4` tensor (two elements a byte, the
    /// earlier in the low nibble, in `raw_data`, external data or one packed
    /// byte per `int32_data` entry) as `i8`/`u8` values, one a byte: the
    /// graph's dense view of them. Which constants were 4-bit is the
    /// importer's to remember (`qdq` packs them back when it keeps a weight
    /// encoded).
    fn read_4bit(
        &mut self,
        name: &str,
        t: &mut TensorProto,
        storage: AffineStorage,
    ) -> Result<(TensorType, Bytes)> {
        let terr = |msg: String| Error::Tensor {
            name: name.to_string(),
            msg,
        };
        let shape = checked::dims(&t.dims, self.limits.max_rank, &|| {
            format!("tensor '{name}'")
        })?;
        let numel = shape.iter().product::<usize>();
        let dtype = if storage.is_signed() {
            DType::I8
        } else {
            DType::U8
        };
        // The graph holds the values one a byte.
        self.check_plain(name, t, numel)?;
        let packed = numel.div_ceil(2);
        let kind = storage.name();
        let bytes: Vec<u8> = if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
            self.read_external(name, t, packed)?.as_slice().to_vec()
        } else if !t.raw_data.is_empty() || typed_len(t) == 0 {
            if t.raw_data.len() != packed {
                return Err(terr(format!(
                    "raw_data holds {} bytes but {numel} packed {kind} values need {packed}",
                    t.raw_data.len()
                )));
            }
            std::mem::take(&mut t.raw_data)
        } else {
            if t.int32_data.len() != packed {
                return Err(terr(format!(
                    "int32_data holds {} values but {numel} packed {kind} values need {packed} (two a value)",
                    t.int32_data.len()
                )));
            }
            let mut out = Vec::with_capacity(packed);
            for &v in &t.int32_data {
                let b = u8::try_from(v).map_err(|_| {
                    terr(format!(
                        "int32_data holds {v}, not a byte of two packed {kind} values"
                    ))
                })?;
                out.push(b);
            }
            out
        };
        let values = unpack_4bit(&bytes, numel, storage.is_signed());
        Ok((TensorType::new(dtype, shape), Bytes::from(values)))
    }

    fn read_external(&mut self, name: &str, t: &TensorProto, nbytes: usize) -> Result<Bytes> {
        let mut location = None;
        let mut offset = 0usize;
        let mut length = None;
        for kv in &t.external_data {
            let num = |v: &str| -> Result<usize> {
                let n: u64 = v.parse().map_err(|_| Error::ExternalData {
                    tensor: name.to_string(),
                    location: location_str(&t.external_data),
                    msg: format!("{} '{v}' is not a non-negative integer", kv.key),
                })?;
                checked::u64_to_usize(n, || format!("external data {} of tensor '{name}'", kv.key))
            };
            match kv.key.as_str() {
                "location" => location = Some(kv.value.clone()),
                "offset" => offset = num(&kv.value)?,
                "length" => length = Some(num(&kv.value)?),
                _ => {} // checksum and unknown keys are informational
            }
        }
        let location = location.unwrap_or_default();
        let err = |msg: String| Error::ExternalData {
            tensor: name.to_string(),
            location: location.clone(),
            msg,
        };
        let path = resolve_external(self.model_dir, &location).map_err(&err)?;
        let len = length.unwrap_or(nbytes);
        if len != nbytes {
            return Err(err(format!(
                "length is {len} bytes but the tensor needs {nbytes}"
            )));
        }
        let map = match self.maps.get(&path) {
            Some(m) => m.clone(),
            None => {
                let m = map_file(&path)?;
                self.maps.insert(path.clone(), m.clone());
                m
            }
        };
        let end = checked::add(offset, len, || {
            format!("external data range of tensor '{name}'")
        })?;
        if end > map.len() {
            return Err(err(format!(
                "bytes {offset}..{end} lie outside the file, which has {} bytes",
                map.len()
            )));
        }
        Bytes::mapped(map, offset, len).map_err(Error::Ir)
    }
}

fn location_str(kvs: &[onnx_protobuf::StringStringEntryProto]) -> String {
    kvs.iter()
        .find(|kv| kv.key == "location")
        .map(|kv| kv.value.clone())
        .unwrap_or_default()
}

/// Resolves an external-data `location` against the model's folder, refusing
/// anything that could reach outside it: empty or absolute paths, `..` that
/// climbs out after normalisation, symlinks, hard links, non-regular files,
/// and files whose canonical path is not inside the canonical model folder.
pub fn resolve_external(model_dir: &Path, location: &str) -> Result<PathBuf, String> {
    if location.is_empty() {
        return Err("the location is empty".into());
    }
    let rel = Path::new(location);
    if rel.is_absolute() || location.starts_with('\\') || location.contains(':') {
        return Err(
            "absolute locations are not allowed; it must be relative to the model's folder".into(),
        );
    }
    let mut norm = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => norm.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !norm.pop() {
                    return Err("the location climbs out of the model's folder with '..'".into());
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute locations are not allowed".into());
            }
        }
    }
    if norm.as_os_str().is_empty() {
        return Err("the location names the model's folder itself".into());
    }
    let path = model_dir.join(&norm);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err("symbolic links are not followed".into());
    }
    if !meta.file_type().is_file() {
        return Err("it is not a regular file".into());
    }
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() > 1 {
            return Err(format!(
                "the file has {} hard links; a hard-linked file may lie outside the model's folder",
                meta.nlink()
            ));
        }
    }
    let dir = model_dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve the model's folder: {e}"))?;
    let canon = path
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    if !canon.starts_with(&dir) {
        return Err(format!(
            "it resolves to {}, outside the model's folder",
            canon.display()
        ));
    }
    Ok(canon)
}

/// The 4-bit affine storage of an ONNX `TensorProto.DataType` code
/// (`UINT4` = 21, `INT4` = 22), `None` for every other code.
pub fn packed_4bit(code: i32) -> Option<AffineStorage> {
    match code {
        21 => Some(AffineStorage::U4),
        22 => Some(AffineStorage::I4),
        _ => None,
    }
}

/// `numel` 4-bit values packed two a byte (low nibble first), one a byte
/// (sign-extended when `signed`).
fn unpack_4bit(packed: &[u8], numel: usize, signed: bool) -> Vec<u8> {
    (0..numel)
        .map(|j| {
            let nib = (packed[j / 2] >> (4 * (j % 2))) & 0xf;
            if signed {
                (((nib << 4) as i8) >> 4) as u8
            } else {
                nib
            }
        })
        .collect()
}

fn typed_len(t: &TensorProto) -> usize {
    t.float_data.len()
        + t.int32_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len()
}

/// Encodes the typed repeated fields of a `TensorProto` as little-endian bytes,
/// checking the count.
fn typed_fields_to_bytes(t: &TensorProto, dtype: DType, numel: usize) -> Result<Vec<u8>, String> {
    fn check<T>(v: &[T], numel: usize, field: &str) -> Result<(), String> {
        if v.len() != numel {
            return Err(format!(
                "{field} holds {} values but the shape needs {numel}",
                v.len()
            ));
        }
        Ok(())
    }
    // Element sizes here: the typed fields hold one value per element of a
    // dense tensor (the capacity is only a hint).
    let mut out = Vec::with_capacity(numel.saturating_mul(dtype.elem_bytes()).min(1 << 30));
    match dtype {
        DType::F32 => {
            check(&t.float_data, numel, "float_data")?;
            t.float_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::F64 => {
            check(&t.double_data, numel, "double_data")?;
            t.double_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::I64 => {
            check(&t.int64_data, numel, "int64_data")?;
            t.int64_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        DType::U32 | DType::U64 => {
            check(&t.uint64_data, numel, "uint64_data")?;
            for &v in &t.uint64_data {
                if dtype == DType::U32 {
                    out.extend_from_slice(&(v as u32).to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        // Narrow types travel in int32_data, one value (or bit pattern) each.
        DType::I32
        | DType::I16
        | DType::U16
        | DType::I8
        | DType::U8
        | DType::Bool
        | DType::F16
        | DType::BF16 => {
            check(&t.int32_data, numel, "int32_data")?;
            for &v in &t.int32_data {
                match dtype.elem_bytes() {
                    4 => out.extend_from_slice(&v.to_le_bytes()),
                    2 => out.extend_from_slice(&(v as u16).to_le_bytes()),
                    _ => out.push(v as u8),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ONNX `INT4`/`UINT4` tensor proto of `dims` (`code` 22 or 21).
    fn proto(code: i32, dims: &[i64]) -> TensorProto {
        TensorProto {
            data_type: code,
            dims: dims.to_vec(),
            ..Default::default()
        }
    }

    fn read(t: &mut TensorProto) -> Result<(TensorType, Bytes)> {
        let limits = Limits::default();
        TensorReader::new(Path::new("."), &limits).read("w", t)
    }

    #[test]
    fn int4_unpacks_low_nibble_first_and_sign_extends() {
        // 1, -2, 7, -8, 3: an odd count, the last high nibble unused.
        let mut t = proto(22, &[5]);
        t.raw_data = vec![0xe1, 0x87, 0x03];
        let (ty, b) = read(&mut t).unwrap();
        assert_eq!((ty.dtype, ty.shape.as_slice()), (DType::I8, &[5usize][..]));
        assert_eq!(b.as_slice(), [1, (-2i8) as u8, 7, (-8i8) as u8, 3]);
        // The same bytes as UINT4, in int32_data (one packed byte each).
        let mut t = proto(21, &[5]);
        t.int32_data = vec![0xe1, 0x87, 0x03];
        let (ty, b) = read(&mut t).unwrap();
        assert_eq!(ty.dtype, DType::U8);
        assert_eq!(b.as_slice(), [1, 14, 7, 8, 3]);
        assert_eq!(packed_4bit(1), None);
    }

    #[test]
    fn malformed_int4_names_the_tensor() {
        let mut t = proto(22, &[5]);
        t.raw_data = vec![0xe1, 0x87];
        let e = read(&mut t).unwrap_err().to_string();
        assert!(e.contains("'w'") && e.contains("need 3"), "{e}");
        let mut t = proto(21, &[4]);
        t.int32_data = vec![0x21, 0x43, 0x65];
        let e = read(&mut t).unwrap_err().to_string();
        assert!(e.contains("'w'") && e.contains("need 2"), "{e}");
        let mut t = proto(21, &[2]);
        t.int32_data = vec![300];
        let e = read(&mut t).unwrap_err().to_string();
        assert!(e.contains("'w'") && e.contains("300"), "{e}");
    }
}
