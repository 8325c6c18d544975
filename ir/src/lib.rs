//! smelt's graph IR.
//!
//! A [`Graph`] of statically typed values and [`Node`]s whose [`Op`]s come from
//! one op table ([`ops`]). The [`interp`] module is the reference interpreter:
//! it follows the ONNX operator spec and is the oracle every later stage
//! (optimizer, code generators) is tested against. [`verify`] checks the
//! graph's invariants and [`print`] renders it as text, which
//! [`parse()`] reads back.

pub mod attrs;
pub mod dtype;
pub mod encoding;
pub mod error;
pub mod graph;
pub mod interp;
pub mod ops;
pub mod parse;
pub mod print;
pub mod shape;
pub mod tensor;
pub mod text;
pub mod verify;
pub mod window;

pub use attrs::{AttrValue, Attrs};
pub use dtype::DType;
pub use encoding::{Affine, AffineStorage, BlockFormat, Encoding, Granularity};
pub use error::{Error, Result};
pub use graph::{Bytes, Graph, Node, NodeId, State, TensorType, Value, ValueDef, ValueId};
pub use ops::{Op, OpDef};
pub use parse::{ParseError, ParseErrorKind, parse};
pub use shape::Shape;
pub use tensor::{Data, Tensor};

/// Re-exported so the dispatch macros can name the half-precision types.
pub use half;
