//! GGUF metadata values: the thirteen value types (nested arrays included)
//! and how each is read from the file.

use std::fmt;

use super::cursor::Cursor;
use crate::error::{GgufErrorKind, Result};
use crate::limits::Limits;

/// A GGUF metadata value type (`gguf_metadata_value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `u8`.
    U8,
    /// `i8`.
    I8,
    /// `u16`.
    U16,
    /// `i16`.
    I16,
    /// `u32`.
    U32,
    /// `i32`.
    I32,
    /// `f32`.
    F32,
    /// One byte, 0 or 1.
    Bool,
    /// A `u64` length and UTF-8 bytes.
    String,
    /// An element type, a `u64` count and the elements.
    Array,
    /// `u64`.
    U64,
    /// `i64`.
    I64,
    /// `f64`.
    F64,
}

impl ValueType {
    /// Every type, in code order (the code is the index).
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type of code `code`, if GGUF defines it.
    pub fn from_code(code: u32) -> Option<ValueType> {
        ValueType::ALL.get(code as usize).copied()
    }

    /// The type's name in GGUF's spelling (`UINT32`, `STRING`, …).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "UINT8",
            ValueType::I8 => "INT8",
            ValueType::U16 => "UINT16",
            ValueType::I16 => "INT16",
            ValueType::U32 => "UINT32",
            ValueType::I32 => "INT32",
            ValueType::F32 => "FLOAT32",
            ValueType::Bool => "BOOL",
            ValueType::String => "STRING",
            ValueType::Array => "ARRAY",
            ValueType::U64 => "UINT64",
            ValueType::I64 => "INT64",
            ValueType::F64 => "FLOAT64",
        }
    }

    /// The fewest bytes a value of this type takes in the file (an empty
    /// string: its length; an empty array: its type and count).
    fn min_bytes(self) -> usize {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 | ValueType::String => 8,
            ValueType::Array => 12,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `UINT8`.
    U8(u8),
    /// `INT8`.
    I8(i8),
    /// `UINT16`.
    U16(u16),
    /// `INT16`.
    I16(i16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING`.
    String(String),
    /// `ARRAY`: the element type and the elements (each of that type).
    Array(ValueType, Vec<Value>),
    /// `UINT64`.
    U64(u64),
    /// `INT64`.
    I64(i64),
    /// `FLOAT64`.
    F64(f64),
}

impl Value {
    /// The value's type.
    pub fn ty(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// An integer of any width and signedness, as `i128` (every GGUF
    /// integer fits); `None` for the other types.
    pub fn as_int(&self) -> Option<i128> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::I8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::U64(v) => Some(v.into()),
            Value::I64(v) => Some(v.into()),
            _ => None,
        }
    }

    /// A float (`FLOAT32` or `FLOAT64`) as `f64`.
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array's element type and elements.
    pub fn as_array(&self) -> Option<(ValueType, &[Value])> {
        match self {
            Value::Array(t, items) => Some((*t, items)),
            _ => None,
        }
    }
}

/// Reads a value of type `ty` at the cursor; `depth` counts the arrays it
/// is nested in (at most [`Limits::max_depth`]).
pub(super) fn read(
    cur: &mut Cursor,
    ty: ValueType,
    limits: &Limits,
    depth: usize,
) -> Result<Value> {
    Ok(match ty {
        ValueType::U8 => Value::U8(u8::from_le_bytes(cur.array("a UINT8")?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(cur.array("an INT8")?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(cur.array("a UINT16")?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(cur.array("an INT16")?)),
        ValueType::U32 => Value::U32(cur.u32("a UINT32")?),
        ValueType::I32 => Value::I32(i32::from_le_bytes(cur.array("an INT32")?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(cur.array("a FLOAT32")?)),
        ValueType::U64 => Value::U64(cur.u64("a UINT64")?),
        ValueType::I64 => Value::I64(i64::from_le_bytes(cur.array("an INT64")?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(cur.array("a FLOAT64")?)),
        ValueType::Bool => {
            let at = cur.pos();
            match cur.array::<1>("a BOOL")?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(cur.error(
                        GgufErrorKind::BadValue,
                        at,
                        format!("a BOOL must be 0 or 1, not {b}"),
                    ));
                }
            }
        }
        ValueType::String => Value::String(cur.string("a STRING value", limits)?),
        ValueType::Array => read_array(cur, limits, depth + 1)?,
    })
}

/// Reads an array (its element type, count and elements) at nesting `depth`.
fn read_array(cur: &mut Cursor, limits: &Limits, depth: usize) -> Result<Value> {
    let at = cur.pos();
    Limits::check(
        || format!("the nesting of arrays at byte {at}"),
        depth as u64,
        limits.max_depth as u64,
        "max-depth",
    )?;
    let ty = read_type(cur, "an array's element type")?;
    let count_at = cur.pos();
    let count = cur.u64("an array's length")?;
    Limits::check(
        || format!("the length of the array at byte {at}"),
        count,
        limits.max_array_len,
        "max-array-len",
    )?;
    let count = cur.checked(
        crate::checked::u64_to_usize(count, || "an array's length".into()),
        count_at,
    )?;
    cur.fits(count, ty.min_bytes(), "array elements", count_at)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(read(cur, ty, limits, depth)?);
    }
    Ok(Value::Array(ty, items))
}

/// Reads a value type code.
pub(super) fn read_type(cur: &mut Cursor, what: &str) -> Result<ValueType> {
    let at = cur.pos();
    let code = cur.u32(what)?;
    ValueType::from_code(code).ok_or_else(|| {
        cur.error(
            GgufErrorKind::UnknownValueType,
            at,
            format!("{what} is {code}, which is not a GGUF value type (0 to 12)"),
        )
    })
}
