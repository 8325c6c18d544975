//! The IR's error type.

use std::fmt;

use crate::encoding::Encoding;

/// Result alias for IR operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the IR: while parsing op attributes,
/// inferring shapes, verifying a graph or evaluating it.
///
/// Op-level errors do not know which node they come from; [`Error::at_node`]
/// wraps them with the node's name and op so every message reaching the user
/// names its node.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An attribute is missing, has the wrong kind or an invalid value.
    Attr {
        /// The attribute name.
        attr: String,
        /// What is wrong with it.
        msg: String,
    },
    /// Input dtypes or shapes do not fit the op.
    Shape(String),
    /// A dtype is not accepted by the op.
    Type(String),
    /// Something valid in ONNX that smelt does not (yet) support.
    Unsupported(String),
    /// An operand that must be known at compile time (a shape, axes, pads, …)
    /// is computed at run time instead.
    NotConstant {
        /// Index of the operand in the node's inputs.
        input: usize,
        /// What the operand is used for (`shape`, `axes`, …).
        role: String,
    },
    /// A size computation overflowed (dims too large, byte counts).
    Overflow(String),
    /// A value is out of range while evaluating (an index, a count).
    Eval(String),
    /// The graph breaks an IR invariant.
    Verify(String),
    /// A tensor's dtype or shape does not fit its encoding (a block format
    /// whose block length does not divide the innermost dimension, an affine
    /// axis out of range, …).
    Encoding {
        /// The encoding.
        encoding: Encoding,
        /// What does not fit.
        msg: String,
    },
    /// An encoded (block- or affine-quantized) tensor reached code that only
    /// handles dense tensors.
    UnsupportedEncoding {
        /// The encoding.
        encoding: Encoding,
        /// What refused it: an operation, or a value or op with its role.
        what: String,
    },
    /// An error at a node, with the node's name and op.
    Node {
        /// The node's name.
        node: String,
        /// The node's op, in ONNX spelling.
        op: String,
        /// What went wrong.
        source: Box<Error>,
    },
}

impl Error {
    /// Shorthand for an [`Error::Attr`].
    pub fn attr(attr: &str, msg: impl Into<String>) -> Error {
        Error::Attr {
            attr: attr.to_string(),
            msg: msg.into(),
        }
    }

    /// Wraps this error with the node it happened at (once: an error that
    /// already names a node keeps it).
    pub fn at_node(self, node: &str, op: &str) -> Error {
        match self {
            Error::Node { .. } => self,
            other => Error::Node {
                node: node.to_string(),
                op: op.to_string(),
                source: Box::new(other),
            },
        }
    }

    /// The innermost error, below any node context.
    pub fn root(&self) -> &Error {
        match self {
            Error::Node { source, .. } => source.root(),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Attr { attr, msg } => write!(f, "attribute '{attr}': {msg}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::Type(m) => write!(f, "type error: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::NotConstant { input, role } => write!(
                f,
                "input {input} ({role}) must be known at compile time but is computed at run time; \
                 bind the graph input it comes from with --bind NAME=FILE.npy"
            ),
            Error::Overflow(m) => write!(f, "size overflow: {m}"),
            Error::Eval(m) => write!(f, "evaluation error: {m}"),
            Error::Verify(m) => write!(f, "invalid graph: {m}"),
            Error::Encoding { encoding, msg } => write!(f, "encoding {encoding}: {msg}"),
            Error::UnsupportedEncoding { encoding, what } => write!(
                f,
                "{encoding}-encoded tensor not supported by {what}; \
                 dequantize it to a dense type first"
            ),
            Error::Node { node, op, source } => write!(f, "node '{node}' ({op}): {source}"),
        }
    }
}

impl std::error::Error for Error {}

/// Returns early with an [`Error::Shape`] built from a format string.
#[macro_export]
macro_rules! shape_err {
    ($($t:tt)*) => { return Err($crate::Error::Shape(format!($($t)*))) };
}

/// Returns early with an [`Error::Type`] built from a format string.
#[macro_export]
macro_rules! type_err {
    ($($t:tt)*) => { return Err($crate::Error::Type(format!($($t)*))) };
}
