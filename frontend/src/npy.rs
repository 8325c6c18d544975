//! NumPy `.npy` and `.npz` files: how tensors enter and leave `smelt run` and
//! the compiled executables.
//!
//! `.npy` versions 1–3 are read (little- or big-endian, C order); `.npz`
//! archives (stored or deflated, as `np.savez`/`np.savez_compressed` write
//! them) are read entry by entry. Writing produces version-1 little-endian
//! `.npy`, byte-identical for identical tensors.

use std::io::Read;
use std::path::Path;

use smelt_ir::{DType, Tensor, TensorType};

use crate::checked;
use crate::error::{Error, Result};
use crate::limits::Limits;

const MAGIC: &[u8] = b"\x93NUMPY";
/// NumPy writes headers of a few hundred bytes; this bounds what we parse.
const MAX_HEADER: usize = 1 << 20;

fn perr(path: &Path, msg: impl Into<String>) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The NumPy `descr` of a dtype (little-endian).
fn descr(d: DType) -> &'static str {
    match d {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        // NumPy has no bfloat16; ml_dtypes writes it as 2-byte void, which
        // cannot be told apart from other 2-byte voids, so smelt uses a
        // custom descr that its own reader understands.
        DType::BF16 => "<V2",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
    }
}

fn parse_descr(s: &str) -> Option<(DType, bool)> {
    let (order, code) = s.split_at(1.min(s.len()));
    let big = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return None,
    };
    let d = match code {
        "f4" => DType::F32,
        "f2" => DType::F16,
        "V2" => DType::BF16,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        _ => return None,
    };
    Some((d, big))
}

/// Pulls the value of `'key':` out of the header dict literal.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let k = format!("'{key}':");
    let start = header.find(&k)? + k.len();
    let rest = header[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(quoted) = rest.strip_prefix('\'') {
        quoted.find('\'')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Decodes an `.npy` image held in memory; `path` names it in errors.
pub fn decode(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(perr(path, "not a .npy file (bad magic)"));
    }
    let major = bytes[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(perr(path, "truncated .npy header"));
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (
                checked::u64_to_usize(n as u64, || "the .npy header length".into())?,
                12,
            )
        }
        v => return Err(perr(path, format!("unsupported .npy version {v}"))),
    };
    if hlen > MAX_HEADER {
        return Err(perr(
            path,
            format!("the .npy header claims {hlen} bytes (at most {MAX_HEADER})"),
        ));
    }
    let hend = checked::add(hstart, hlen, || "the .npy header end".into())?;
    let header = bytes
        .get(hstart..hend)
        .ok_or_else(|| perr(path, "truncated .npy header"))?;
    let header =
        std::str::from_utf8(header).map_err(|_| perr(path, "the .npy header is not text"))?;
    let d =
        dict_value(header, "descr").ok_or_else(|| perr(path, "the .npy header has no 'descr'"))?;
    let d = d.trim_matches('\'');
    let (dtype, big) =
        parse_descr(d).ok_or_else(|| perr(path, format!("unsupported .npy dtype '{d}'")))?;
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(perr(
            path,
            "Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)",
        ));
    }
    let s =
        dict_value(header, "shape").ok_or_else(|| perr(path, "the .npy header has no 'shape'"))?;
    let inner = s.trim_start_matches('(').trim_end_matches(')');
    let mut dims = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let v: i64 = part
            .parse()
            .map_err(|_| perr(path, format!("bad dim '{part}' in the .npy shape")))?;
        dims.push(v);
    }
    let shape = checked::dims(&dims, limits.max_rank, &|| path.display().to_string())?;
    // The one size function (`.npy` data is dense); its overflow is
    // reported like every other file-supplied size.
    let nbytes = TensorType::new(dtype, shape.clone()).bytes().map_err(|e| {
        Error::Graph(format!(
            "the data size of {} overflows ({e})",
            path.display()
        ))
    })?;
    Limits::check(
        || format!("the size of {}", path.display()),
        nbytes as u64,
        limits.max_tensor_bytes,
        "max-tensor-bytes",
    )?;
    let data = &bytes[hend..];
    if data.len() != nbytes {
        return Err(perr(
            path,
            format!(
                "holds {} data bytes but {dtype} of shape {shape:?} needs {nbytes}",
                data.len()
            ),
        ));
    }
    // Per element: big-endian data is swapped one element at a time.
    if big && dtype.elem_bytes() > 1 {
        let mut swapped = data.to_vec();
        swapped
            .chunks_exact_mut(dtype.elem_bytes())
            .for_each(|c| c.reverse());
        return Ok(Tensor::from_le_bytes(dtype, shape, &swapped)?);
    }
    Ok(Tensor::from_le_bytes(dtype, shape, data)?)
}

/// Encodes a tensor as a version-1 `.npy` image.
pub fn encode(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    // Pad so the data starts on a 64-byte boundary, ending the header with '\n'.
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    // A `Tensor` is dense: element size × count is its size (a capacity hint).
    let mut out =
        Vec::with_capacity(MAGIC.len() + 4 + header.len() + t.len() * t.dtype().elem_bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.to_le_bytes());
    out
}

fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    Limits::read_file(
        path,
        limits.max_tensor_bytes.saturating_add(MAX_HEADER as u64),
        "max-tensor-bytes",
    )
}

/// Reads one `.npy` file.
pub fn read_npy(path: &Path, limits: &Limits) -> Result<Tensor> {
    decode(&read_file(path, limits)?, path, limits)
}

/// The file name of an output's `.npy` (`smelt run -o`, compiled executables):
/// characters other than ASCII letters, digits, `-`, `_` and `.` become `_`,
/// and a name that is empty or starts with `.` gets a leading `_`.
pub fn output_file_name(tensor_name: &str) -> String {
    let mut s: String = tensor_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s.push_str(".npy");
    s
}

/// Writes one `.npy` file.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    std::fs::write(path, encode(t)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every array of an `.npz` archive, in archive order, named without
/// the `.npy` suffix.
pub fn read_npz(path: &Path, limits: &Limits) -> Result<Vec<(String, Tensor)>> {
    let bytes = read_file(path, limits)?;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| perr(path, format!("not a valid .npz archive ({e})")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| perr(path, format!("entry {i}: {e}")))?;
        let name = f
            .name()
            .map_err(|e| perr(path, format!("entry {i}: {e}")))?
            .to_string();
        let cap = limits.max_tensor_bytes.saturating_add(MAX_HEADER as u64);
        if f.size() > cap {
            return Err(Error::Limit {
                what: format!("entry '{name}' of {}", path.display()),
                value: f.size(),
                limit: cap,
                key: "max-tensor-bytes",
            });
        }
        let mut buf = Vec::new();
        // `take` bounds what a lying size field can make us allocate.
        (&mut f)
            .take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| perr(path, format!("entry '{name}': {e}")))?;
        let entry = path.join(&name);
        let t = decode(&buf, &entry, limits)?;
        out.push((name.strip_suffix(".npy").unwrap_or(&name).to_string(), t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Tensor::from_vec(vec![2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        let bytes = encode(&t);
        // The header pads the data to a 64-byte boundary; the data is 24 bytes.
        assert_eq!(bytes.len() % 64, 24);
        let back = decode(&bytes, Path::new("t.npy"), &Limits::default()).unwrap();
        assert_eq!(back, t);
        let s = Tensor::scalar(7i64);
        assert_eq!(
            decode(&encode(&s), Path::new("s.npy"), &Limits::default()).unwrap(),
            s
        );
    }

    #[test]
    fn rejects_truncated_and_lying_files() {
        let t = Tensor::from_vec(vec![4], vec![1i32, 2, 3, 4]).unwrap();
        let bytes = encode(&t);
        let l = Limits::default();
        assert!(decode(&bytes[..bytes.len() - 1], Path::new("x"), &l).is_err());
        assert!(decode(&bytes[..8], Path::new("x"), &l).is_err());
        let lying = String::from_utf8_lossy(&bytes).replace("(4,)", "(9999999999999,)");
        assert!(decode(lying.as_bytes(), Path::new("x"), &l).is_err());
    }
}
