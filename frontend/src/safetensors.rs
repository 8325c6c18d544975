//! Safetensors weights: validating a `.safetensors` file and binding its
//! tensors by name to a graph's constants, without copying (the file is
//! memory-mapped and each constant becomes a window into the map).
//!
//! There are two ways to bind, sharing one validated [`Weights`]:
//!
//! - **before import**, with [`crate::onnx::ImportOptions::weights`]: every
//!   initializer named in the file takes its bytes from it, and its own data
//!   (inline, external or missing) is never read. This is how a model whose
//!   initializers live elsewhere is supplied, and the right way whenever
//!   constant folding depends on the weights, because folding then sees them.
//! - **after import**, with [`bind`]: the bytes of the graph's constants are
//!   replaced. Values the importer already folded from the old bytes keep the
//!   old results, so use it only for graphs whose weights feed run-time nodes.
//!
//! Both check every tensor's dtype and shape against what the graph declares,
//! and report every mismatch at once ([`Error::Weights`]), tensors that name
//! no constant included: a tensor binding nothing is almost always a naming
//! mismatch, and silently keeping the model's own bytes would hide it.
//!
//! The header is validated here before the `safetensors` crate parses it too,
//! so that every refusal names the tensor and the offsets at fault: an 8-byte
//! length of at most [`MAX_HEADER_BYTES`] that fits the file, UTF-8 JSON
//! without duplicate keys, for each tensor a known dtype, a shape whose byte
//! size does not overflow and equals its `data_offsets` range, and ranges that
//! tile the data section exactly (no gap, no overlap, nothing past the end or
//! left over). The crate's own check then runs as a second opinion.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::Dtype;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use smelt_ir::{Bytes, DType, Graph, TensorType, ValueDef};

use crate::checked;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::mmap::{map_copy, map_regular_file};

/// Largest JSON header accepted, in bytes: the `safetensors` crate's own cap.
/// A length field above it is refused before anything is allocated.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The safetensors dtypes smelt has, in the format's spelling.
const SUPPORTED: &str = "BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64";

/// One tensor of a safetensors file, as its header describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightInfo {
    /// The tensor's name.
    pub name: String,
    /// The dtype as the file spells it (`F32`, `F8_E4M3`, …).
    pub dtype_name: String,
    /// smelt's dtype, or `None` when smelt has no such type.
    pub dtype: Option<DType>,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    /// Length of the data in bytes.
    pub len: usize,
}

impl WeightInfo {
    /// The IR type, or the problem line when smelt lacks the dtype.
    fn ty(&self) -> Result<TensorType, String> {
        match self.dtype {
            Some(d) => Ok(TensorType::new(d, self.shape.clone())),
            None => Err(format!(
                "tensor '{}' is {}, which smelt does not support (it supports {SUPPORTED})",
                self.name, self.dtype_name
            )),
        }
    }

    fn describe(&self) -> String {
        match self.dtype {
            Some(d) => TensorType::new(d, self.shape.clone()).to_string(),
            None => format!("{}{:?}", self.dtype_name, self.shape),
        }
    }
}

/// Maps a safetensors dtype to smelt's.
fn to_dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::BOOL => DType::Bool,
        Dtype::U8 => DType::U8,
        Dtype::I8 => DType::I8,
        Dtype::U16 => DType::U16,
        Dtype::I16 => DType::I16,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::U32 => DType::U32,
        Dtype::I32 => DType::I32,
        Dtype::F32 => DType::F32,
        Dtype::U64 => DType::U64,
        Dtype::I64 => DType::I64,
        Dtype::F64 => DType::F64,
        // FP8/FP6/FP4 and complex types; `Dtype` is non-exhaustive.
        _ => return None,
    })
}

/// The header's top-level entries in file order, duplicates kept (a JSON
/// object read into a map would silently keep one of them).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object mapping tensor names to their descriptions")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Validates the header of a safetensors file held in `bytes` and describes
/// its tensors in offset order. `path` names the file in messages.
pub fn parse_header(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Vec<WeightInfo>> {
    let perr = |msg: String| Error::Parse {
        path: path.to_path_buf(),
        msg,
    };
    let Some(len_field) = bytes.first_chunk::<8>() else {
        return Err(perr(format!(
            "the file has {} bytes, too few for a safetensors header (an 8-byte length, then JSON)",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(*len_field);
    if n > MAX_HEADER_BYTES {
        return Err(perr(format!(
            "the header length field says {n} bytes, over the safetensors limit of {MAX_HEADER_BYTES}; the file is corrupt or not a safetensors file"
        )));
    }
    // `n` is at most MAX_HEADER_BYTES, so it fits and `8 + n` cannot overflow.
    let n = n as usize;
    let avail = bytes.len() - 8;
    if n > avail {
        return Err(perr(format!(
            "the header length field says {n} bytes but only {avail} follow it"
        )));
    }
    let data_start = 8 + n;
    let data_len = bytes.len() - data_start;
    let header = std::str::from_utf8(&bytes[8..data_start]).map_err(|e| {
        perr(format!(
            "the header is not valid UTF-8 (at byte {})",
            8 + e.valid_up_to()
        ))
    })?;
    let Entries(entries) = serde_json::from_str(header)
        .map_err(|e| perr(format!("the header is not valid JSON ({e})")))?;

    let mut seen = HashSet::new();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(perr(format!("the header describes '{name}' twice")));
        }
        if name == "__metadata__" {
            let ok = value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(perr(
                    "the __metadata__ entry must map strings to strings".into(),
                ));
            }
            continue;
        }
        tensors.push(parse_entry(
            name, &value, data_start, data_len, path, limits,
        )?);
    }

    // The ranges must tile the data section: sorted by start, each begins
    // where the previous one ended, and the last ends at the end of the file.
    tensors.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
    let mut expected = data_start;
    let mut prev: Option<&WeightInfo> = None;
    for t in &tensors {
        let (b, e) = (t.offset - data_start, t.offset - data_start + t.len);
        if t.offset > expected {
            return Err(perr(format!(
                "tensor '{}': data_offsets [{b}, {e}] leave a gap of {} bytes after offset {}; the tensors must fill the data section without gaps or overlap",
                t.name,
                t.offset - expected,
                expected - data_start
            )));
        }
        if t.offset < expected {
            let other = prev.map(|p| p.name.as_str()).unwrap_or_default();
            return Err(perr(format!(
                "tensor '{}': data_offsets [{b}, {e}] overlap tensor '{other}', which ends at offset {}",
                t.name,
                expected - data_start
            )));
        }
        expected = t.offset + t.len;
        prev = Some(t);
    }
    if expected != bytes.len() {
        return Err(perr(format!(
            "the tensors end at offset {} of the data section but it has {data_len} bytes; {} trailing bytes belong to no tensor",
            expected - data_start,
            bytes.len() - expected
        )));
    }
    Limits::check(
        || format!("the data section of {}", path.display()),
        data_len as u64,
        limits.max_weight_bytes,
        "max-weight-bytes",
    )?;

    // Second opinion: the reference parser must accept what smelt accepted.
    safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| perr(format!("the safetensors parser refuses the file: {e}")))?;
    Ok(tensors)
}

/// Validates one tensor entry of the header.
fn parse_entry(
    name: String,
    value: &Value,
    data_start: usize,
    data_len: usize,
    path: &Path,
    limits: &Limits,
) -> Result<WeightInfo> {
    let terr = |msg: String| Error::Parse {
        path: path.to_path_buf(),
        msg: format!("tensor '{name}': {msg}"),
    };
    let obj = value
        .as_object()
        .ok_or_else(|| terr("expected an object with dtype, shape and data_offsets".into()))?;
    let dtype_name = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| terr("the dtype is missing or not a string".into()))?;
    let st_dtype: Dtype = serde_json::from_value(Value::String(dtype_name.to_string()))
        .map_err(|_| terr(format!("'{dtype_name}' is not a safetensors dtype")))?;
    let raw_shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| terr("the shape is missing or not an array".into()))?;
    if raw_shape.len() > limits.max_rank {
        return Err(Error::Limit {
            what: format!("the rank of tensor '{name}' in {}", path.display()),
            value: raw_shape.len() as u64,
            limit: limits.max_rank as u64,
            key: "max-rank",
        });
    }
    let mut shape = Vec::with_capacity(raw_shape.len());
    let mut numel = 1usize;
    for (axis, d) in raw_shape.iter().enumerate() {
        let d = d.as_u64().ok_or_else(|| {
            terr(format!(
                "dim {d} at axis {axis} is not a non-negative integer"
            ))
        })?;
        let d = checked::u64_to_usize(d, || format!("dim {axis} of tensor '{name}'"))?;
        numel = numel.checked_mul(d).ok_or_else(|| {
            terr(format!(
                "the element count of shape {raw_shape:?} overflows"
            ))
        })?;
        shape.push(d);
    }
    let bits = numel.checked_mul(st_dtype.bitsize()).ok_or_else(|| {
        terr(format!(
            "the byte size of {dtype_name} of shape {shape:?} overflows"
        ))
    })?;
    if bits % 8 != 0 {
        return Err(terr(format!(
            "{numel} elements of {dtype_name} do not fill whole bytes"
        )));
    }
    let nbytes = bits / 8;
    Limits::check(
        || format!("the size of tensor '{name}' in {}", path.display()),
        nbytes as u64,
        limits.max_tensor_bytes,
        "max-tensor-bytes",
    )?;
    let offsets = obj.get("data_offsets").and_then(Value::as_array);
    let (b, e) = match offsets
        .map(|o| o.iter().map(Value::as_u64).collect::<Vec<_>>())
        .as_deref()
    {
        Some(&[Some(b), Some(e)]) => (b, e),
        _ => {
            return Err(terr(
                "data_offsets must be two non-negative integers [begin, end]".into(),
            ));
        }
    };
    if e < b {
        return Err(terr(format!(
            "data_offsets [{b}, {e}] end before they begin"
        )));
    }
    if e - b != nbytes as u64 {
        return Err(terr(format!(
            "data_offsets [{b}, {e}] hold {} bytes but {dtype_name} of shape {shape:?} needs {nbytes}",
            e - b
        )));
    }
    if e > data_len as u64 {
        return Err(terr(format!(
            "data_offsets [{b}, {e}] lie outside the data section, which has {data_len} bytes"
        )));
    }
    // `e <= data_len`, so both fit in usize and `data_start + e` is within the file.
    Ok(WeightInfo {
        dtype_name: dtype_name.to_string(),
        dtype: to_dtype(st_dtype),
        shape,
        offset: data_start + b as usize,
        len: nbytes,
        name,
    })
}

/// A validated, memory-mapped safetensors file.
pub struct Weights {
    path: PathBuf,
    map: Arc<Mmap>,
    tensors: Vec<WeightInfo>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Weights({}, {} tensors)",
            self.path.display(),
            self.tensors.len()
        )
    }
}

impl Weights {
    /// Maps and validates a safetensors file.
    pub fn open(path: &Path, limits: &Limits) -> Result<Weights> {
        let map = map_regular_file(path)?;
        let tensors = parse_header(&map, path, limits)?;
        Ok(Weights::new(path, map, tensors))
    }

    /// The weights of the validated `tensors` in `map`, indexed by name.
    fn new(path: &Path, map: Arc<Mmap>, tensors: Vec<WeightInfo>) -> Weights {
        let by_name = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Weights {
            path: path.to_path_buf(),
            map,
            tensors,
            by_name,
        }
    }

    /// Validates a safetensors file held in memory (named `path` in
    /// messages) and copies it into an anonymous mapping, so that it binds
    /// like a file; for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Weights> {
        let tensors = parse_header(bytes, path, limits)?;
        Ok(Weights::new(path, map_copy(bytes, path)?, tensors))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[WeightInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&WeightInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The type and bytes (a window into the map) of tensor `name`.
    pub fn typed_bytes(&self, name: &str) -> Result<(TensorType, Bytes)> {
        let info = self.get(name).ok_or_else(|| Error::Weights {
            path: self.path.clone(),
            problems: vec![format!("the file has no tensor '{name}'")],
        })?;
        let ty = info.ty().map_err(|p| Error::Weights {
            path: self.path.clone(),
            problems: vec![p],
        })?;
        let bytes = Bytes::mapped(self.map.clone(), info.offset, info.len)?;
        Ok((ty, bytes))
    }

    /// Checks every tensor of the file against the types a model declares
    /// for names (`declared(name)`; `None` when the model has no such
    /// constant, `Some(Err)` when its declaration is itself unusable) and
    /// fails with every problem at once. `what` names the model's side
    /// (`constant`, `initializer`).
    pub fn check(
        &self,
        what: &str,
        declared: &dyn Fn(&str) -> Option<Result<TensorType, String>>,
    ) -> Result<()> {
        let mut problems = Vec::new();
        for t in &self.tensors {
            let have = match t.ty() {
                Ok(ty) => ty,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            match declared(&t.name) {
                None => problems.push(format!(
                    "tensor '{}' names no {what} of the model; the names must match exactly",
                    t.name
                )),
                Some(Err(msg)) => problems.push(format!("{what} '{}': {msg}", t.name)),
                Some(Ok(want)) if want != have => problems.push(format!(
                    "tensor '{}' is {} but {what} '{}' is {want}",
                    t.name,
                    t.describe(),
                    t.name
                )),
                Some(Ok(_)) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Weights {
                path: self.path.clone(),
                problems,
            })
        }
    }
}

/// What [`bind`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindReport {
    /// The constants whose bytes now come from the file, in file order.
    pub bound: Vec<String>,
    /// The bytes bound.
    pub bytes: u64,
}

/// Replaces the bytes of `graph`'s constants with the tensors of the same
/// name in the safetensors file at `path` (zero-copy). Every tensor must
/// name a constant of the same dtype and shape; all mismatches are reported
/// at once, and the graph is left untouched unless all tensors fit.
pub fn bind(graph: &mut Graph, path: &Path, limits: &Limits) -> Result<BindReport> {
    let weights = Weights::open(path, limits)?;
    bind_weights(graph, &weights)
}

/// [`bind`] with an already opened file.
pub fn bind_weights(graph: &mut Graph, weights: &Weights) -> Result<BindReport> {
    let mut consts: HashMap<&str, usize> = HashMap::new();
    for (i, v) in graph.values.iter().enumerate() {
        if matches!(v.def, ValueDef::Const(_)) {
            consts.entry(v.name.as_str()).or_insert(i);
        }
    }
    weights.check("constant", &|name| {
        consts.get(name).map(|&i| Ok(graph.values[i].ty.clone()))
    })?;
    let targets: Vec<(usize, &WeightInfo)> = weights
        .tensors
        .iter()
        .filter_map(|t| consts.get(t.name.as_str()).map(|&i| (i, t)))
        .collect();
    let mut report = BindReport::default();
    for (i, t) in targets {
        let (_, bytes) = weights.typed_bytes(&t.name)?;
        graph.values[i].def = ValueDef::Const(bytes);
        report.bound.push(t.name.clone());
        report.bytes += t.len as u64;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file from a header and a data section.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn check(header: &str, data: &[u8], expect: &str) {
        let bytes = file(header, data);
        let msg = match parse_header(&bytes, Path::new("w.safetensors"), &Limits::default()) {
            Ok(t) => format!("ok {t:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(expect),
            "{header}: expected '{expect}' in: {msg}"
        );
    }

    #[test]
    fn headers() {
        // (header, bytes of zeros after it, what the outcome says)
        #[rustfmt::skip]
        let cases: &[(&str, usize, &str)] = &[
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8, "ok"),
            (r#"{"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}"#, 1, "ok"),
            (r#"{}"#, 0, "ok"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 9, "1 trailing bytes"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4, "tensor 'a': data_offsets [0, 8] lie outside"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4, "tensor 'a': data_offsets [0, 4] hold 4 bytes"),
            (r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#, 1, "tensor 'a': 'Q4' is not a safetensors dtype"),
            (r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, 1, "tensor 'a': dim -1 at axis 0"),
            (r#"{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,1]}}"#, 1, "tensor 'a': the element count"),
            (r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#, 3, "tensor 'b': data_offsets [1, 3] overlap tensor 'a'"),
            (r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#, 3, "tensor 'b': data_offsets [2, 3] leave a gap of 1 bytes"),
            (r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, 2, "describes 'a' twice"),
            (r#"[1,2]"#, 0, "not valid JSON"),
            (r#"{"a":1}"#, 0, "tensor 'a': expected an object"),
            (r#"{"__metadata__":{"k":1}}"#, 0, "__metadata__"),
        ];
        for &(header, len, expect) in cases {
            check(header, &vec![0; len], expect);
        }
    }

    #[test]
    fn framing() {
        let l = Limits::default();
        let p = Path::new("w.safetensors");
        let err = |bytes: &[u8]| parse_header(bytes, p, &l).unwrap_err().to_string();
        assert!(err(&[1, 2]).contains("too few"));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(err(&huge).contains("over the safetensors limit"));
        let mut short = 100u64.to_le_bytes().to_vec();
        short.extend_from_slice(b"{}");
        assert!(err(&short).contains("only 2 follow"));
        let mut bad = 2u64.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert!(err(&bad).contains("not valid UTF-8 (at byte 8)"));
    }

    #[test]
    fn binds_from_memory() {
        let bytes = file(
            r#"{"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#,
            &[1, 0, 0, 0, 2, 0, 0, 0],
        );
        let w = Weights::from_bytes(&bytes, Path::new("w"), &Limits::default()).unwrap();
        let mut g = Graph::new();
        let ty = TensorType::new(DType::I32, vec![2]);
        let id = g.add_const_bytes("w", ty, Bytes::from(vec![0; 8])).unwrap();
        let report = bind_weights(&mut g, &w).unwrap();
        assert_eq!(
            report,
            BindReport {
                bound: vec!["w".into()],
                bytes: 8
            }
        );
        assert_eq!(g.const_value(id).unwrap().unwrap().to_i64_vec(), [1, 2]);
        // An empty file has nothing to bind, and binds nothing.
        let empty =
            Weights::from_bytes(&file("{}", &[]), Path::new("e"), &Limits::default()).unwrap();
        assert_eq!(bind_weights(&mut g, &empty).unwrap(), BindReport::default());
    }

    #[test]
    fn unsupported_dtype_is_named() {
        let bytes = file(
            r#"{"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#,
            &[0; 2],
        );
        let t = parse_header(&bytes, Path::new("w"), &Limits::default()).unwrap();
        assert_eq!(t[0].dtype, None);
        assert!(t[0].ty().unwrap_err().contains("tensor 'x' is F8_E4M3"));
    }
}
