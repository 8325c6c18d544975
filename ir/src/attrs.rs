//! Node attributes as the frontends hand them to the op table.
//!
//! The op table parses these into typed fields once, at import; after that no
//! stage looks at attributes by name.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A 64-bit integer.
    Int(i64),
    /// A 32-bit float.
    Float(f32),
    /// A byte string (ONNX strings are bytes; most are UTF-8).
    String(Vec<u8>),
    /// A tensor.
    Tensor(Tensor),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A list of strings.
    Strings(Vec<Vec<u8>>),
    /// A kind smelt does not read (graphs, sparse tensors, type protos); the
    /// string names the kind for error messages.
    Other(&'static str),
}

/// The attributes of one node, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs {
    items: Vec<(String, AttrValue)>,
}

impl Attrs {
    /// Builds from name/value pairs.
    pub fn new(items: Vec<(String, AttrValue)>) -> Attrs {
        Attrs { items }
    }

    /// Looks an attribute up by name.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// True when the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(n, _)| n.as_str())
    }

    fn kind_err(name: &str, want: &str, got: &AttrValue) -> Error {
        let got = match got {
            AttrValue::Int(_) => "int",
            AttrValue::Float(_) => "float",
            AttrValue::String(_) => "string",
            AttrValue::Tensor(_) => "tensor",
            AttrValue::Ints(_) => "ints",
            AttrValue::Floats(_) => "floats",
            AttrValue::Strings(_) => "strings",
            AttrValue::Other(k) => k,
        };
        Error::attr(name, format!("expected {want}, found {got}"))
    }

    /// An optional integer attribute.
    pub fn int_opt(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(*v)),
            Some(other) => Err(Self::kind_err(name, "int", other)),
        }
    }

    /// An integer attribute with a default.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    /// A required integer attribute.
    pub fn int_req(&self, name: &str) -> Result<i64> {
        self.int_opt(name)?
            .ok_or_else(|| Error::attr(name, "is required"))
    }

    /// An optional float attribute (ints are accepted and converted).
    pub fn float_opt(&self, name: &str) -> Result<Option<f32>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Float(v)) => Ok(Some(*v)),
            Some(AttrValue::Int(v)) => Ok(Some(*v as f32)),
            Some(other) => Err(Self::kind_err(name, "float", other)),
        }
    }

    /// A float attribute with a default.
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float_opt(name)?.unwrap_or(default))
    }

    /// An optional list-of-integers attribute.
    pub fn ints_opt(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Ints(v)) => Ok(Some(v.clone())),
            Some(other) => Err(Self::kind_err(name, "ints", other)),
        }
    }

    /// An optional list-of-floats attribute.
    pub fn floats_opt(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Floats(v)) => Ok(Some(v.clone())),
            Some(other) => Err(Self::kind_err(name, "floats", other)),
        }
    }

    /// An optional UTF-8 string attribute.
    pub fn string_opt(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::String(v)) => String::from_utf8(v.clone())
                .map(Some)
                .map_err(|_| Error::attr(name, "is not valid UTF-8")),
            Some(other) => Err(Self::kind_err(name, "string", other)),
        }
    }

    /// A string attribute with a default.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .string_opt(name)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// An optional tensor attribute.
    pub fn tensor_opt(&self, name: &str) -> Result<Option<&Tensor>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Tensor(t)) => Ok(Some(t)),
            Some(other) => Err(Self::kind_err(name, "tensor", other)),
        }
    }
}
