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

/// What an `.npy` header says.
struct Header<'h> {
    descr: &'h str,
    fortran: bool,
    dims: Vec<i64>,
}

/// A cursor over a header's dict literal.
struct Lexer<'h> {
    s: &'h str,
    at: usize,
}

impl<'h> Lexer<'h> {
    fn skip_space(&mut self) {
        let rest = &self.s[self.at..];
        self.at += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// Consumes `c` after optional spaces.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.s[self.at..].starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// A quoted string without escapes (`'…'` or `"…"`).
    fn string(&mut self) -> Option<&'h str> {
        self.skip_space();
        let q = self.s[self.at..]
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')?;
        let body = &self.s[self.at + 1..];
        let end = body.find([q, '\\'])?;
        if !body[end..].starts_with(q) {
            return None;
        }
        self.at += end + 2;
        Some(&body[..end])
    }

    /// A word of letters (`True`, `False`).
    fn word(&mut self) -> &'h str {
        self.skip_space();
        let rest = &self.s[self.at..];
        let n = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        self.at += n;
        &rest[..n]
    }

    /// A decimal dim as Python writes it: digits without a sign or leading
    /// zeros, optionally the `L` of Python 2.
    fn dim(&mut self) -> Option<i64> {
        self.skip_space();
        let rest = &self.s[self.at..];
        let n = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if n == 0 || (n > 1 && rest.starts_with('0')) {
            return None;
        }
        let v = rest[..n].parse().ok()?;
        self.at += n;
        if self.s[self.at..].starts_with('L') {
            self.at += 1;
        }
        Some(v)
    }

    /// A shape tuple: `()`, `(4,)`, `(2, 3)` or `(2, 3,)`; a single dim needs
    /// its comma (`(4)` is a number, not a tuple).
    fn shape(&mut self) -> Option<Vec<i64>> {
        if !self.eat('(') {
            return None;
        }
        let mut dims = Vec::new();
        loop {
            if self.eat(')') {
                return (dims.len() != 1).then_some(dims);
            }
            dims.push(self.dim()?);
            if self.eat(',') {
                if self.eat(')') {
                    return Some(dims);
                }
            } else if self.eat(')') {
                return (dims.len() != 1).then_some(dims);
            } else {
                return None;
            }
        }
    }
}

/// Parses a header's dict literal the way NumPy accepts it, strictly: the
/// keys `descr`, `fortran_order` and `shape` once each in any order, a
/// quoted `descr`, `True` or `False`, a tuple of non-negative decimal dims,
/// an optional trailing comma, then only spaces and a final newline. The
/// runtime's C reader (`runtime/c/npy.c`) follows the same grammar, so
/// `smelt run` and a compiled program accept exactly the same headers.
fn parse_header(h: &str) -> std::result::Result<Header<'_>, String> {
    let shown: String = h.trim_end().chars().take(120).collect();
    let bad = |what: &str| format!("malformed .npy header ({what}): {shown}");
    let mut lx = Lexer { s: h, at: 0 };
    if !h.starts_with('{') {
        return Err(bad("it is not a dict"));
    }
    lx.at = 1;
    let (mut descr, mut fortran, mut dims) = (None, None, None);
    loop {
        if lx.eat('}') {
            break;
        }
        let key = lx.string().ok_or_else(|| bad("expected a quoted key"))?;
        if !lx.eat(':') {
            return Err(bad("expected ':' after a key"));
        }
        let fresh = match key {
            "descr" => {
                let d = lx
                    .string()
                    .ok_or_else(|| bad("'descr' is not a quoted dtype"))?;
                descr.replace(d).is_none()
            }
            "fortran_order" => {
                let f = match lx.word() {
                    "True" => true,
                    "False" => false,
                    _ => return Err(bad("'fortran_order' is not True or False")),
                };
                fortran.replace(f).is_none()
            }
            "shape" => {
                let s = lx
                    .shape()
                    .ok_or_else(|| bad("'shape' is not a tuple of dims"))?;
                dims.replace(s).is_none()
            }
            _ => return Err(bad(&format!("unexpected key '{key}'"))),
        };
        if !fresh {
            return Err(bad(&format!("'{key}' is given twice")));
        }
        if !lx.eat(',') {
            if lx.eat('}') {
                break;
            }
            return Err(bad("expected ',' or '}'"));
        }
    }
    let tail = &h[lx.at..];
    if !tail.trim_end_matches('\n').chars().all(|c| c == ' ') {
        return Err(bad("text after the dict"));
    }
    match (descr, fortran, dims) {
        (Some(descr), Some(fortran), Some(dims)) => Ok(Header {
            descr,
            fortran,
            dims,
        }),
        _ => Err(bad("it needs 'descr', 'fortran_order' and 'shape'")),
    }
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
    let Header {
        descr: d,
        fortran,
        dims,
    } = parse_header(header).map_err(|m| perr(path, m))?;
    let (dtype, big) =
        parse_descr(d).ok_or_else(|| perr(path, format!("unsupported .npy dtype '{d}'")))?;
    // The layout matters only with two or more dims above 1.
    if fortran && dims.iter().filter(|&&v| v > 1).count() > 1 {
        return Err(perr(
            path,
            "Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)",
        ));
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
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(perr(path, "not a file"));
    }
    // The archive's directory (read from the end of the file) comes first:
    // every entry's sizes are checked before any entry's data is read.
    let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| perr(path, format!("not a valid .npz archive ({e})")))?;
    let cap = limits.max_tensor_bytes.saturating_add(MAX_HEADER as u64);
    let entry_err = |i: usize, e: zip::result::ZipError| perr(path, format!("entry {i}: {e}"));
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(|e| entry_err(i, e))?;
        let size = f.size().max(f.compressed_size());
        if size > cap {
            let name = f
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            return Err(Error::Limit {
                what: format!("entry '{name}' of {}", path.display()),
                value: size,
                limit: cap,
                key: "max-tensor-bytes",
            });
        }
    }
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| entry_err(i, e))?;
        let name = f.name().map_err(|e| entry_err(i, e))?.to_string();
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
