//! The IR text parser: the inverse of [`crate::print`].
//!
//! [`parse`] reads what the printer writes and rebuilds the graph through
//! [`Graph::add_node`], so every type is inferred again and checked against
//! the printed one; `print(parse(print(g))) == print(g)` holds for every
//! graph. Beyond the printer's output it accepts:
//! - constants with their values, `const [1.0, 2.5]` (what
//!   [`crate::print::PrintOptions`] writes for small constants); the plain
//!   `const N bytes` form reads as zeros, for tests that do not care;
//! - `, mapped` on a constant, kept by copying the bytes into an anonymous
//!   mapping so the round trip also holds for memory-mapped weights;
//! - a node without its `# node "…"` comment (it is named after its first
//!   result), blank lines and `//` comment lines.
//!
//! The grammar (one statement a line; whitespace is free otherwise):
//! ```text
//! graph  := "graph" "(" [ref ":" type {"," ref ":" type}] ")" "->" "(" [ref {"," ref}] ")" "{" stmt* "}"
//! stmt   := defs "=" "const" (INT "bytes" | "[" [elem {"," elem}] "]") ["," "mapped"]
//!         | defs "=" NAME ["<" attr {"," attr} ">"] "(" [arg {"," arg}] ")" ["#" "node" STRING]
//!         | state
//! defs   := ref ":" type {"," ref ":" type}
//! type   := DTYPE "[" [INT {"," INT}] "]" [ENCODING]
//! state  := "state" ref ":" type "<-" ref
//! ref    := "%" (PLAIN | STRING)           arg := ref | "_"
//! ```
//! Statements and types are each read in one function ([`Parser::stmt`],
//! [`Parser::ty`]), so a new form is one more arm there; a state line may
//! name its next value before the node that defines it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::dtype::DType;
use crate::error::Error;
use crate::graph::{Bytes, Graph, TensorType, ValueId};
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::text::{Cursor, Expected};

/// What went wrong while parsing IR text, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What was wrong there.
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, PartialEq)]
pub enum ParseErrorKind {
    /// The text does not follow the grammar.
    Expected {
        /// What the parser expected (`"a type"`, `"')'"`).
        expected: String,
        /// What it found instead (a short excerpt, or `end of input`).
        found: String,
    },
    /// A `%name` used before any statement defines it.
    UnknownValue(String),
    /// An op that cannot be rebuilt from its name and attributes, or whose
    /// operands it rejects.
    Op {
        /// The op's printed name.
        op: String,
        /// The op table's error.
        source: Error,
    },
    /// The printed type of a value differs from the type the op infers.
    TypeMismatch {
        /// The value's name.
        value: String,
        /// The type in the text.
        printed: String,
        /// The type the op infers.
        inferred: String,
    },
    /// A constant's data does not fit its type.
    ConstData {
        /// The constant's name.
        value: String,
        /// What is wrong.
        msg: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.col)?;
        match &self.kind {
            ParseErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ParseErrorKind::UnknownValue(v) => {
                write!(f, "%{v} is not defined by an earlier statement")
            }
            ParseErrorKind::Op { op, source } => write!(f, "{op}: {source}"),
            ParseErrorKind::TypeMismatch {
                value,
                printed,
                inferred,
            } => write!(
                f,
                "%{value} is written as {printed} but its op infers {inferred}"
            ),
            ParseErrorKind::ConstData { value, msg } => write!(f, "constant %{value}: {msg}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<Expected> for ParseError {
    fn from(e: Expected) -> ParseError {
        ParseError {
            line: e.line,
            col: e.col,
            kind: ParseErrorKind::Expected {
                expected: e.expected,
                found: e.found,
            },
        }
    }
}

/// Parses IR text as [`crate::print::print`] writes it.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let mut p = Parser {
        c: Cursor::new(text),
        g: Graph::new(),
        names: HashMap::new(),
        states: Vec::new(),
    };
    p.graph()?;
    Ok(p.g)
}

/// A printed element of a constant, read back exactly: the printer writes
/// each element with `Debug`, which is the shortest text that parses back to
/// the same value (`f16`/`bf16` print as the `f32` they widen to).
pub(crate) trait ElemText: Sized {
    /// The element `s` stands for; `None` when it is not one.
    fn parse_text(s: &str) -> Option<Self>;
}

macro_rules! elem_text_from_str {
    ($($t:ty),*) => {$(
        impl ElemText for $t {
            fn parse_text(s: &str) -> Option<$t> {
                <$t as FromStr>::from_str(s).ok()
            }
        }
    )*};
}
elem_text_from_str!(f32, f64, i8, u8, i16, u16, i32, u32, i64, u64, bool);

impl ElemText for half::f16 {
    fn parse_text(s: &str) -> Option<half::f16> {
        f32::parse_text(s).map(half::f16::from_f32)
    }
}

impl ElemText for half::bf16 {
    fn parse_text(s: &str) -> Option<half::bf16> {
        f32::parse_text(s).map(half::bf16::from_f32)
    }
}

/// The element of `dtype` printed as `s`, as a tensor of one element.
pub(crate) fn parse_elems(dtype: DType, shape: Vec<usize>, items: &[&str]) -> Option<Tensor> {
    crate::dispatch_dtype!(dtype, T => {
        let v = items
            .iter()
            .map(|s| <T as ElemText>::parse_text(s.trim()))
            .collect::<Option<Vec<T>>>()?;
        Tensor::from_vec(shape, v).ok()
    })
}

struct Parser<'a> {
    c: Cursor<'a>,
    g: Graph,
    /// The value each name refers to (the latest definition).
    names: HashMap<String, ValueId>,
    /// State pairs whose next value is named before it is defined: the
    /// state input, and where and what its next value's name was.
    states: Vec<(ValueId, usize, String)>,
}

/// A `name: type` definition, with where it was written.
struct Def {
    name: String,
    ty: TensorType,
    at: usize,
}

impl<'a> Parser<'a> {
    fn error_at(&self, at: usize, kind: ParseErrorKind) -> ParseError {
        let (line, col) = self.c.line_col(at);
        ParseError { line, col, kind }
    }

    /// "Expected `what`" at the cursor, as this parser's error.
    fn expected(&self, what: &str) -> ParseError {
        self.c.expected(what).into()
    }

    /// `%name` or `%"quoted name"`.
    fn value_name(&mut self) -> Result<String, ParseError> {
        self.c
            .expect("%")
            .map_err(|_| self.expected("a value (%name)"))?;
        if self.c.rest().starts_with('"') {
            return Ok(self.c.string()?);
        }
        let r = self.c.rest();
        let mut n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.:/-".contains(c)))
            .unwrap_or(r.len());
        // Plain names may hold `:`; a `:` that ends the name and is followed
        // by a blank is the type separator of `%name: type`.
        if r[..n].ends_with(':') && r[n..].starts_with([' ', '\t']) {
            n -= 1;
        }
        if n == 0 {
            return Err(self.expected("a value name"));
        }
        let start = self.c.pos;
        self.c.pos += n;
        Ok(self.c.src[start..start + n].to_string())
    }

    fn value_ref(&mut self) -> Result<ValueId, ParseError> {
        self.c.ws();
        let at = self.c.pos;
        let name = self.value_name()?;
        self.names
            .get(&name)
            .copied()
            .ok_or_else(|| self.error_at(at, ParseErrorKind::UnknownValue(name)))
    }

    /// `f32[1,4]`; the place a tensor encoding suffix will be read.
    fn ty(&mut self) -> Result<TensorType, ParseError> {
        self.c.ws();
        let at = self.c.pos;
        let name = self.c.word("a dtype")?;
        let Some(dtype) = DType::from_name(name) else {
            let found = format!("'{name}'");
            return Err(self.error_at(
                at,
                ParseErrorKind::Expected {
                    expected: "a dtype (f32, i64, …)".into(),
                    found,
                },
            ));
        };
        self.c.expect("[")?;
        let mut shape = Vec::new();
        if !self.c.eat("]") {
            loop {
                shape.push(self.c.usize("a dimension")?);
                if self.c.eat("]") {
                    break;
                }
                self.c.expect(",")?;
            }
        }
        // An encoding suffix: `q4_0`, `affine(i8,axis=0,zp)`.
        let rest = self.c.rest();
        let after = rest.trim_start_matches(' ');
        if after.len() < rest.len() && after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let at = self.c.pos + (rest.len() - after.len());
            let len = match after.strip_prefix("affine(") {
                Some(tail) => tail.find(')').map(|i| "affine(".len() + i + 1),
                None => Some(
                    after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len()),
                ),
            };
            let text = len.map(|n| &after[..n]).unwrap_or(after);
            if let Ok(encoding) = crate::encoding::Encoding::parse(text) {
                self.c.pos = at + text.len();
                return TensorType::encoded(dtype, shape, encoding)
                    .map_err(|e| self.op_error(at, "type", e));
            }
        }
        Ok(TensorType::new(dtype, shape))
    }

    fn def(&mut self) -> Result<Def, ParseError> {
        self.c.ws();
        let at = self.c.pos;
        let name = self.value_name()?;
        self.c.expect(":")?;
        let ty = self.ty()?;
        Ok(Def { name, ty, at })
    }

    fn graph(&mut self) -> Result<(), ParseError> {
        if self.c.word("'graph'").ok() != Some("graph") {
            self.c.pos = 0;
            self.c.ws();
            return Err(self.expected("'graph'"));
        }
        self.c.expect("(")?;
        if !self.c.eat(")") {
            loop {
                let d = self.def()?;
                let id = self
                    .g
                    .add_input(d.name.clone(), d.ty)
                    .map_err(|e| self.op_error(d.at, "graph", e))?;
                self.names.insert(d.name, id);
                if self.c.eat(")") {
                    break;
                }
                self.c.expect(",")?;
            }
        }
        self.c.expect("->")?;
        self.c.expect("(")?;
        let mut outputs = Vec::new();
        if !self.c.eat(")") {
            loop {
                self.c.ws();
                outputs.push((self.c.pos, self.value_name()?));
                if self.c.eat(")") {
                    break;
                }
                self.c.expect(",")?;
            }
        }
        self.c.expect("{")?;
        while !self.c.eat("}") {
            self.stmt()?;
        }
        self.c.ws();
        if !self.c.rest().is_empty() {
            return Err(self.expected("end of input"));
        }
        for (at, name) in outputs {
            let id = self
                .names
                .get(&name)
                .copied()
                .ok_or_else(|| self.error_at(at, ParseErrorKind::UnknownValue(name)))?;
            self.g.outputs.push(id);
        }
        for (input, at, name) in std::mem::take(&mut self.states) {
            let output = self
                .names
                .get(&name)
                .copied()
                .ok_or_else(|| self.error_at(at, ParseErrorKind::UnknownValue(name)))?;
            self.g
                .add_state(input, output)
                .map_err(|e| self.op_error(at, "state", e))?;
        }
        Ok(())
    }

    fn op_error(&self, at: usize, op: &str, source: Error) -> ParseError {
        self.error_at(
            at,
            ParseErrorKind::Op {
                op: op.to_string(),
                source,
            },
        )
    }

    /// One statement: a constant or a node.
    fn stmt(&mut self) -> Result<(), ParseError> {
        self.c.ws();
        if self.c.rest().is_empty() {
            return Err(self.expected("a statement or '}'"));
        }
        if let Some(tail) = self.c.rest().strip_prefix("state")
            && tail.starts_with([' ', '%'])
        {
            self.c.pos += "state".len();
            return self.state();
        }
        let mut defs = vec![self.def()?];
        while self.c.eat(",") {
            defs.push(self.def()?);
        }
        self.c.expect("=")?;
        self.c.ws();
        let at = self.c.pos;
        let head = self.c.word("'const' or an op name")?.to_string();
        match head.as_str() {
            "const" => self.constant(defs),
            _ => self.node(at, &head, defs),
        }
    }

    /// `state %s: f32[4] <- %s_next`: a state input, paired with its next
    /// value once the whole body is read.
    fn state(&mut self) -> Result<(), ParseError> {
        let d = self.def()?;
        self.c.expect("<-")?;
        self.c.ws();
        let at = self.c.pos;
        let next = self.value_name()?;
        let id = self
            .g
            .add_state_input(d.name.clone(), d.ty)
            .map_err(|e| self.op_error(d.at, "state", e))?;
        self.names.insert(d.name, id);
        self.states.push((id, at, next));
        Ok(())
    }

    fn constant(&mut self, mut defs: Vec<Def>) -> Result<(), ParseError> {
        let (Some(d), true) = (defs.pop(), defs.is_empty()) else {
            return Err(self.expected("one value defined by a constant"));
        };
        let const_err = |p: &Self, msg: String| {
            p.error_at(
                d.at,
                ParseErrorKind::ConstData {
                    value: d.name.clone(),
                    msg,
                },
            )
        };
        let want = d.ty.bytes().map_err(|e| const_err(self, e.to_string()))?;
        let bytes: Vec<u8> = if self.c.eat("[") {
            let start = self.c.pos;
            let len = self
                .c
                .rest()
                .find(']')
                .ok_or_else(|| self.expected("']'"))?;
            let inner = &self.c.src[start..start + len];
            self.c.pos += len + 1;
            let items: Vec<&str> = inner.split(',').filter(|s| !s.trim().is_empty()).collect();
            let numel = d.ty.numel().map_err(|e| const_err(self, e.to_string()))?;
            if items.len() != numel {
                return Err(const_err(
                    self,
                    format!("{} values for {numel} elements", items.len()),
                ));
            }
            let t = parse_elems(d.ty.dtype, d.ty.shape.clone(), &items)
                .ok_or_else(|| const_err(self, format!("the values are not all {}", d.ty.dtype)))?;
            t.to_le_bytes()
        } else {
            let n = self.c.usize("a byte count or '['")?;
            self.c.expect("bytes")?;
            if n != want {
                return Err(const_err(
                    self,
                    format!("{n} bytes written for a type of {want} bytes"),
                ));
            }
            vec![0; n]
        };
        let bytes = if self.c.eat(",") {
            self.c.expect("mapped")?;
            mapped(&bytes).map_err(|e| const_err(self, e))?
        } else {
            Bytes::from(bytes)
        };
        let id = self
            .g
            .add_const_bytes(d.name.clone(), d.ty, bytes)
            .map_err(|e| const_err(self, e.to_string()))?;
        self.names.insert(d.name, id);
        Ok(())
    }

    /// `k=v` pairs up to the closing `>`; a value runs to the next `, k=` or
    /// to `>(`, with brackets and parentheses nested, so Einsum's `ij,jk->ik`
    /// and an epilogue's `Clip(min=0,max=6)` need no quoting.
    fn attrs(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let key = self.c.word("an attribute name")?.to_string();
            self.c.expect("=")?;
            let start = self.c.pos;
            let bytes = self.c.src.as_bytes();
            let mut depth = 0i32;
            let mut i = start;
            let end = loop {
                let Some(&c) = bytes.get(i) else {
                    self.c.pos = i;
                    return Err(self.expected("'>'"));
                };
                match c {
                    b'(' | b'[' => depth += 1,
                    b')' | b']' => depth -= 1,
                    b'>' if depth == 0 && bytes.get(i + 1) == Some(&b'(') => break i,
                    b',' if depth == 0 && starts_attr(&self.c.src[i + 1..]) => break i,
                    b'\n' => {
                        self.c.pos = i;
                        return Err(self.expected("'>'"));
                    }
                    _ => {}
                }
                i += 1;
            };
            out.push((key, self.c.src[start..end].to_string()));
            self.c.pos = end + 1;
            if bytes[end] == b'>' {
                return Ok(out);
            }
        }
    }

    fn node(&mut self, at: usize, name: &str, defs: Vec<Def>) -> Result<(), ParseError> {
        let attrs = if self.c.rest().starts_with('<') {
            self.c.pos += 1;
            self.attrs()?
        } else {
            Vec::new()
        };
        self.c.expect("(")?;
        let mut args = Vec::new();
        if !self.c.eat(")") {
            loop {
                if self.c.eat("_") {
                    args.push(None);
                } else {
                    args.push(Some(self.value_ref()?));
                }
                if self.c.eat(")") {
                    break;
                }
                self.c.expect(",")?;
            }
        }
        let op = Op::from_text(name, &attrs, args.len(), defs.len())
            .map_err(|e| self.op_error(at, name, e))?;
        self.c.blanks();
        let node_name = if self.c.rest().starts_with('#') {
            self.c.pos += 1;
            self.c.expect("node")?;
            self.c.string()?
        } else {
            defs[0].name.clone()
        };
        let names = defs.iter().map(|d| d.name.clone()).collect();
        let ids = self
            .g
            .add_node(node_name, op, args, names)
            .map_err(|e| self.op_error(at, name, e))?;
        for (d, id) in defs.into_iter().zip(ids) {
            let inferred = &self.g.value(id).ty;
            if *inferred != d.ty {
                return Err(self.error_at(
                    d.at,
                    ParseErrorKind::TypeMismatch {
                        value: d.name,
                        printed: d.ty.to_string(),
                        inferred: inferred.to_string(),
                    },
                ));
            }
            self.names.insert(d.name, id);
        }
        Ok(())
    }
}

/// True when `s` starts (after blanks) with `word=`: the next attribute.
fn starts_attr(s: &str) -> bool {
    let s = s.trim_start_matches(' ');
    let n = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    n > 0 && s[n..].starts_with('=')
}

/// The bytes in an anonymous read-only mapping, so a constant printed as
/// `mapped` parses back to one.
fn mapped(bytes: &[u8]) -> Result<Bytes, String> {
    if bytes.is_empty() {
        return Ok(Bytes::from(Vec::new()));
    }
    let mut m = memmap2::MmapMut::map_anon(bytes.len()).map_err(|e| e.to_string())?;
    m.copy_from_slice(bytes);
    let m = m.make_read_only().map_err(|e| e.to_string())?;
    Bytes::mapped(Arc::new(m), 0, bytes.len()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::{PrintOptions, print, print_with};

    fn round_trip(text: &str) {
        let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(print_with(&g, &PrintOptions::values(64)), text);
    }

    #[test]
    fn printed_graphs_parse_back() {
        round_trip(
            "graph(%x: f32[1,4]) -> (%y) {\n  %w: f32[4,2] = const [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.5]\n  %m: f32[1,2] = MatMul(%x, %w)  # node \"mm\"\n  %y: f32[1,2] = Clip(%m, _, _)  # node \"clip\"\n}\n",
        );
        round_trip(
            "graph(%\"a b\": f32[2,3]) -> (%t) {\n  %t: f32[3,2] = Transpose<perm=[1,0]>(%\"a b\")  # node \"t\\n\"\n}\n",
        );
        round_trip(
            "graph(%a: f32[2,3], %b: f32[3,4]) -> (%c) {\n  %c: f32[2,4] = Einsum<equation=ij,jk->ik>(%a, %b)  # node \"e\"\n}\n",
        );
        round_trip(
            "graph(%x: f32[1,2,5,5], %w: f32[3,2,3,3]) -> (%y) {\n  %y: f32[1,3,5,5] = FusedConv<pads=[1,1,1,1], activation=Clip(min=0,max=6)>(%x, %w)  # node \"c\"\n}\n",
        );
        round_trip(
            "graph(%x: f32[2,2]) -> (%y) {\n  %y: f32[2,2] = Clip<min=0, max=6>(%x)  # node \"relu6\"\n}\n",
        );
    }

    #[test]
    fn state_pairs_and_encodings_parse_back() {
        round_trip(
            "graph(%x: f32[4]) -> (%y) {\n  state %s: f32[4] <- %y\n  %y: f32[4] = Add(%x, %s)  # node \"acc\"\n}\n",
        );
        round_trip("graph() -> (%w) {\n  %w: f32[2,32] q4_0 = const 36 bytes\n}\n");
        let e = parse("graph(%x: f32[4]) -> (%x) {\n  state %s: f32[4] <- %nope\n}\n").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn byte_counts_read_as_zeros_and_mapped_stays_mapped() {
        let text = "graph() -> (%c) {\n  %c: i64[2] = const 16 bytes, mapped\n}\n";
        let g = parse(text).unwrap();
        assert_eq!(print(&g), text);
        assert_eq!(
            g.const_value(g.outputs[0]).unwrap().unwrap().to_i64_vec(),
            [0, 0]
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("graph(%x: f32[2]) -> (%y) {\n  %y: f32[2] = Relu(%z)\n}\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 21));
        assert_eq!(
            e.to_string(),
            "line 2, column 21: %z is not defined by an earlier statement"
        );
        let e = parse("graph(%x: f33[2]) -> (%x) {\n}\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 11));
        assert!(e.to_string().contains("expected a dtype"), "{e}");
        let e = parse("graph(%x: f32[2]) -> (%y) {\n  %y: f32[3] = Relu(%x)\n}\n").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::TypeMismatch { .. }), "{e}");
        let e =
            parse("graph(%x: f32[2]) -> (%y) {\n  %y: f32[2] = Frobnicate(%x)\n}\n").unwrap_err();
        assert!(e.to_string().contains("Frobnicate: unsupported"), "{e}");
        let e = parse("graph(%x: f32[2]) -> (%x) {\n").unwrap_err();
        assert!(e.to_string().contains("found end of input"), "{e}");
    }
}
