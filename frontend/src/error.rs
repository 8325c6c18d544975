//! The frontend's error type: every message names the file, tensor, node, op
//! or byte offset it is about.

use std::fmt;
use std::path::PathBuf;

/// Result alias for the frontend.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One node whose op smelt cannot import.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedOp {
    /// The node's name.
    pub node: String,
    /// The op type, with its domain when not the default one.
    pub op: String,
    /// Why (unknown op, unsupported attribute value, …).
    pub reason: String,
}

/// Everything that can go wrong while reading a model, weights or tensors.
#[derive(Debug)]
pub enum Error {
    /// Reading a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not a valid model/tensor file of its format.
    Parse {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        msg: String,
    },
    /// A published limit was exceeded.
    Limit {
        /// What was measured.
        what: String,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
        /// The `--limit` key that raises it.
        key: &'static str,
    },
    /// A tensor (initializer, constant, attribute, input file) is malformed.
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// An external-data reference is refused or broken.
    ExternalData {
        /// The tensor that refers to it.
        tensor: String,
        /// The `location` it names.
        location: String,
        /// Why it is refused.
        msg: String,
    },
    /// A graph input cannot be given a static shape, or an input file does not fit.
    Input {
        /// The input's name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// An operand that shapes depend on is computed at run time.
    NeedsConstant {
        /// The node's name.
        node: String,
        /// Its op.
        op: String,
        /// The operand's value name.
        operand: String,
        /// What the operand is for (`shape`, `axes`, …).
        role: String,
        /// True when the operand is itself a graph input (so `--bind` fixes it).
        is_graph_input: bool,
    },
    /// Nodes whose ops cannot be imported (all of them, not just the first).
    UnsupportedOps(Vec<UnsupportedOp>),
    /// The graph is structurally broken (undefined value, cycle, duplicate name).
    Graph(String),
    /// An error from the IR (shape inference, folding), usually at a node.
    Ir(smelt_ir::Error),
    /// Weights from a safetensors file do not fit the graph (every mismatch).
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// One line per mismatch.
        problems: Vec<String>,
    },
    /// The file given as a model is something else (a NumPy array, a
    /// safetensors file, a directory, an empty file, …); see
    /// [`crate::sniff`].
    NotAModel {
        /// The file or directory.
        path: PathBuf,
        /// What it is and what to do with it.
        what: String,
    },
    /// The file is a model in a format smelt will read but does not yet
    /// (GGUF, a Hugging Face directory).
    FormatNotSupported {
        /// The file or directory.
        path: PathBuf,
        /// The format's name.
        format: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// A language model's configuration is missing a key, has a value of
    /// the wrong kind, or describes a model smelt cannot build.
    Config {
        /// The key (`num_key_value_heads`, `rope_scaling.factor`, …).
        key: String,
        /// What is wrong, and what to do.
        msg: String,
    },
    /// A GGUF file is malformed, or uses something smelt does not read
    /// (see [`crate::gguf`]).
    Gguf {
        /// The file.
        path: PathBuf,
        /// The byte offset in the file the problem is at (the start of the
        /// value, tensor info or tensor data concerned), when there is one.
        offset: Option<u64>,
        /// The metadata key or tensor the problem is in.
        place: GgufPlace,
        /// What kind of problem it is.
        kind: GgufErrorKind,
        /// What is wrong, and what to do about it.
        msg: String,
    },
}

/// Where in a GGUF file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GgufPlace {
    /// The header, or the file as a whole.
    File,
    /// A metadata key/value pair, by key.
    Key(String),
    /// A tensor, by its name in the file.
    Tensor(String),
}

/// The kinds of GGUF errors, so callers and tests can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufErrorKind {
    /// Not a GGUF file, big-endian, or a version other than 2 and 3.
    Header,
    /// The file ends inside a structure, or a count or length claims more
    /// bytes than the file has left.
    Truncated,
    /// A size, count or offset overflows the machine's integers.
    Overflow,
    /// A metadata value type code that GGUF does not define.
    UnknownValueType,
    /// A malformed value: a string that is not UTF-8, a bool other than 0
    /// or 1, an alignment that is not a power of two.
    BadValue,
    /// A key or tensor name that appears twice.
    Duplicate,
    /// A tensor type code that ggml does not define.
    UnknownTensorType,
    /// A ggml tensor type smelt does not read (IQ formats, Q8_1, MXFP4, …).
    UnsupportedTensorType,
    /// Tensor dims: none, more than four, zero, or a row length that is not
    /// a multiple of the type's block length.
    Shape,
    /// Tensor data whose offset is not a multiple of the alignment.
    Misaligned,
    /// Tensor data that ends past the end of the file.
    OutOfBounds,
    /// Two tensors whose data overlap.
    Overlap,
    /// A metadata key the model needs is absent.
    MissingKey,
    /// A metadata key has the wrong type or an unusable value.
    KeyType,
    /// A `general.architecture` smelt does not build.
    Architecture,
    /// A tensor the architecture needs is absent, or has the wrong shape.
    MissingTensor,
    /// Tensors the architecture does not use.
    UnexpectedTensor,
    /// A model feature smelt does not support yet (a rope scaling type,
    /// partial rotary embeddings, …).
    Unsupported,
}

impl fmt::Display for GgufPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufPlace::File => Ok(()),
            GgufPlace::Key(k) => write!(f, "key '{k}'"),
            GgufPlace::Tensor(t) => write!(f, "tensor '{t}'"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Parse { path, msg } => write!(f, "{}: {msg}", path.display()),
            Error::Limit {
                what,
                value,
                limit,
                key,
            } => write!(
                f,
                "{what} is {value}, over the limit of {limit}; raise it with --limit {key}=N if the file is trusted"
            ),
            Error::Tensor { name, msg } => write!(f, "tensor '{name}': {msg}"),
            Error::ExternalData {
                tensor,
                location,
                msg,
            } => {
                write!(
                    f,
                    "tensor '{tensor}': external data '{location}' refused: {msg}"
                )
            }
            Error::Input { name, msg } => write!(f, "input '{name}': {msg}"),
            Error::NeedsConstant {
                node,
                op,
                operand,
                role,
                is_graph_input,
            } => {
                write!(
                    f,
                    "node '{node}' ({op}): operand '{operand}' ({role}) must be known at compile time because shapes depend on it"
                )?;
                if *is_graph_input {
                    write!(
                        f,
                        "; it is a graph input: fix its value with --bind {operand}=FILE.npy"
                    )
                } else {
                    write!(
                        f,
                        "; it is computed at run time from graph inputs: fix those with --bind NAME=FILE.npy"
                    )
                }
            }
            Error::UnsupportedOps(ops) => {
                write!(f, "{} node(s) use ops smelt does not support:", ops.len())?;
                for op in ops {
                    write!(f, "\n  node '{}' ({}): {}", op.node, op.op, op.reason)?;
                }
                Ok(())
            }
            Error::Graph(m) => write!(f, "invalid graph: {m}"),
            Error::Ir(e) => write!(f, "{e}"),
            Error::Weights { path, problems } => {
                write!(
                    f,
                    "{}: {} weight(s) do not fit the graph:",
                    path.display(),
                    problems.len()
                )?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
            Error::NotAModel { path, what } => write!(f, "{}: {what}", path.display()),
            Error::FormatNotSupported { path, format, hint } => write!(
                f,
                "{}: {format} models are not supported yet; {hint}",
                path.display()
            ),
            Error::Config { key, msg } => write!(f, "config '{key}': {msg}"),
            Error::Gguf {
                path,
                offset,
                place,
                msg,
                ..
            } => {
                write!(f, "{}: ", path.display())?;
                if *place != GgufPlace::File {
                    write!(f, "{place}: ")?;
                }
                write!(f, "{msg}")?;
                if let Some(o) = offset {
                    write!(f, " (at byte {o})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<smelt_ir::Error> for Error {
    fn from(e: smelt_ir::Error) -> Error {
        Error::Ir(e)
    }
}
