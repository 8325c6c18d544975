//! Tensors with concrete values: what the interpreter computes with and what
//! constant folding produces.
//!
//! Data is held as one typed `Vec` per dtype ([`Data`]); generic kernels are
//! written once over the [`Elem`] trait and instantiated through the
//! [`dispatch!`](crate::dispatch) macros. Weights that stay in the model file are
//! [`Bytes`] in the graph and become a `Tensor` only when the interpreter reads them.

use std::fmt;

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::shape::{Shape, numel};

/// The typed storage of a tensor, one variant per [`DType`].
#[derive(Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// A scalar element type that a [`Data`] variant holds.
///
/// `to_f64`/`from_f64` are exact for every value of every type except `i64`/`u64`
/// beyond 2^53; kernels that must be exact on 64-bit integers use the native type.
pub trait Elem:
    Copy + Default + PartialEq + PartialOrd + Send + Sync + fmt::Debug + 'static
{
    /// The dtype this Rust type stands for.
    const DTYPE: DType;
    /// Wraps a vector into [`Data`].
    fn wrap(v: Vec<Self>) -> Data;
    /// Borrows the vector of this type, if `data` holds this type.
    fn slice(data: &Data) -> Option<&[Self]>;
    /// Converts to `f64` (rounding for 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;
    /// Converts from `f64` the way ONNX `Cast` does: floats round to nearest,
    /// integers truncate toward zero and saturate at the type's bounds (NaN
    /// becomes 0), bool is `x != 0`.
    fn from_f64(v: f64) -> Self;
    /// Converts to `i64` (floats truncate toward zero).
    fn to_i64(self) -> i64;
    /// Converts from `i64` with wrapping for narrower integers.
    fn from_i64(v: i64) -> Self;
    /// Little-endian encoding size in bytes.
    const BYTES: usize;
    /// Decodes one element from `BYTES` little-endian bytes.
    fn read_le(b: &[u8]) -> Self;
    /// Appends the little-endian encoding to `out`.
    fn push_le(self, out: &mut Vec<u8>);
}

/// The items of an [`Elem`] impl that only move a `$t` in and out of
/// `Data::$d` and its little-endian bytes: the same for every integer and
/// float type.
macro_rules! elem_storage {
    ($t:ty, $d:ident) => {
        const DTYPE: DType = DType::$d;
        const BYTES: usize = std::mem::size_of::<$t>();
        fn wrap(v: Vec<Self>) -> Data {
            Data::$d(v)
        }
        fn slice(data: &Data) -> Option<&[Self]> {
            if let Data::$d(v) = data {
                Some(v)
            } else {
                None
            }
        }
        fn read_le(b: &[u8]) -> Self {
            let mut a = [0u8; std::mem::size_of::<$t>()];
            a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
            <$t>::from_le_bytes(a)
        }
        fn push_le(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
    };
}

macro_rules! int_elem {
    ($t:ty, $d:ident) => {
        impl Elem for $t {
            elem_storage!($t, $d);
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // Truncate toward zero and saturate at the type's bounds, NaN
                // to 0 (Rust's `as`): ONNX leaves out-of-range casts
                // undefined and the generated code saturates
                // (docs/semantics.md).
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
        }
    };
}
int_elem!(i8, I8);
int_elem!(u8, U8);
int_elem!(i16, I16);
int_elem!(u16, U16);
int_elem!(i32, I32);
int_elem!(u32, U32);
int_elem!(i64, I64);
int_elem!(u64, U64);

macro_rules! float_elem {
    ($t:ty, $d:ident, $from:expr, $to:expr) => {
        impl Elem for $t {
            elem_storage!($t, $d);
            fn to_f64(self) -> f64 {
                #[allow(clippy::redundant_closure_call)]
                ($to)(self)
            }
            fn from_f64(v: f64) -> Self {
                #[allow(clippy::redundant_closure_call)]
                ($from)(v)
            }
            fn to_i64(self) -> i64 {
                let v = self.to_f64();
                if v.is_nan() { 0 } else { v as i64 }
            }
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
            }
        }
    };
}
float_elem!(f32, F32, |v: f64| v as f32, |x: f32| x as f64);
float_elem!(f64, F64, |v: f64| v, |x: f64| x);
float_elem!(f16, F16, f16::from_f64, |x: f16| x.to_f64());
float_elem!(bf16, BF16, bf16::from_f64, |x: bf16| x.to_f64());

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    const BYTES: usize = 1;
    fn wrap(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
    fn slice(data: &Data) -> Option<&[Self]> {
        if let Data::Bool(v) = data {
            Some(v)
        } else {
            None
        }
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn read_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    fn push_le(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
}

/// Floating-point element types, computed in `f32` (`f16`, `bf16`, `f32`) or `f64`.
///
/// Half types round once per op, like NumPy's float16 ufuncs.
pub trait Float: Elem {
    /// Converts to the computation type (`f64` covers every float).
    fn to_f(self) -> f64;
    /// Rounds back from the computation type.
    fn from_f(v: f64) -> Self;
}
impl Float for f32 {
    fn to_f(self) -> f64 {
        self as f64
    }
    fn from_f(v: f64) -> Self {
        v as f32
    }
}
impl Float for f64 {
    fn to_f(self) -> f64 {
        self
    }
    fn from_f(v: f64) -> Self {
        v
    }
}
impl Float for f16 {
    fn to_f(self) -> f64 {
        self.to_f64()
    }
    fn from_f(v: f64) -> Self {
        f16::from_f64(v)
    }
}
impl Float for bf16 {
    fn to_f(self) -> f64 {
        self.to_f64()
    }
    fn from_f(v: f64) -> Self {
        bf16::from_f64(v)
    }
}

/// The one match behind the dispatch macros: an arm per listed variant that
/// binds `$v` and the type alias `$T`, then any extra arms.
#[doc(hidden)]
#[macro_export]
macro_rules! __dispatch_match {
    ($scrutinee:expr, $path:path, $v:ident, $T:ident, $body:expr, [$($var:ident => $ty:ty),*], $($rest:tt)*) => {{
        use $path as __E;
        match $scrutinee {
            $( __E::$var($v) => {
                #[allow(dead_code)]
                type $T = $ty;
                $body
            } )*
            $($rest)*
        }
    }};
}

/// Runs a generic expression for every dtype: binds `$v` to the typed vector of
/// `$data` (by reference) and the type alias `$T` to its element type.
///
/// ```
/// use smelt_ir::{Tensor, dispatch, tensor::Elem};
/// let t = Tensor::from_vec(vec![3], vec![1i32, 2, 3]).unwrap();
/// let sum: f64 = dispatch!(t.data(), v, T => v.iter().map(|x| x.to_f64()).sum());
/// assert_eq!(sum, 6.0);
/// ```
#[macro_export]
macro_rules! dispatch {
    ($data:expr, $v:ident, $T:ident => $body:expr) => {
        $crate::__dispatch_match!($data, $crate::tensor::Data, $v, $T, $body, [
            F32 => f32, F16 => $crate::half::f16, BF16 => $crate::half::bf16, F64 => f64,
            I8 => i8, U8 => u8, I16 => i16, U16 => u16, I32 => i32, U32 => u32,
            I64 => i64, U64 => u64, Bool => bool
        ],)
    };
}

/// Like [`dispatch!`] but only for the float dtypes; other dtypes evaluate `$else`.
#[macro_export]
macro_rules! dispatch_float {
    ($data:expr, $v:ident, $T:ident => $body:expr, else $other:expr) => {
        $crate::__dispatch_match!($data, $crate::tensor::Data, $v, $T, $body, [
            F32 => f32, F16 => $crate::half::f16, BF16 => $crate::half::bf16, F64 => f64
        ], _ => $other,)
    };
}

/// Runs a generic expression for a dtype (no data): binds the type alias `$T`.
#[macro_export]
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {{
        // A unit-variant twin of `__dispatch_match` (whose arms bind data).
        macro_rules! __arm {
            ($ty:ty) => {{
                #[allow(dead_code)]
                type $T = $ty;
                $body
            }};
        }
        use $crate::dtype::DType as __T;
        match $dtype {
            __T::F32 => __arm!(f32),
            __T::F16 => __arm!($crate::half::f16),
            __T::BF16 => __arm!($crate::half::bf16),
            __T::F64 => __arm!(f64),
            __T::I8 => __arm!(i8),
            __T::U8 => __arm!(u8),
            __T::I16 => __arm!(i16),
            __T::U16 => __arm!(u16),
            __T::I32 => __arm!(i32),
            __T::U32 => __arm!(u32),
            __T::I64 => __arm!(i64),
            __T::U64 => __arm!(u64),
            __T::Bool => __arm!(bool),
        }
    }};
}

/// Like [`dispatch_dtype!`] for a graph value's [`TensorType`]: binds `$T`
/// to its element type and evaluates to `Ok($body)` for a dense type, and to
/// an [`Error::UnsupportedEncoding`] naming `$what` (the operation) for an
/// encoded one, never a panic.
///
/// The other dispatch macros match on [`Data`] or [`DType`], which are dense
/// by construction (a `Tensor` never holds encoded bytes); an encoding can
/// only reach them through a `TensorType`, and this is the gate.
///
/// ```
/// use smelt_ir::{BlockFormat, DType, Encoding, Error, TensorType, dispatch_type, tensor::Elem};
/// let dense = TensorType::new(DType::I16, vec![4]);
/// assert_eq!(dispatch_type!(&dense, "size", T => T::BYTES).unwrap(), 2);
/// let q = TensorType::encoded(DType::F32, vec![32], Encoding::Block(BlockFormat::Q8_0)).unwrap();
/// let e = dispatch_type!(&q, "size", T => T::BYTES).unwrap_err();
/// assert!(matches!(e, Error::UnsupportedEncoding { .. }));
/// ```
#[macro_export]
macro_rules! dispatch_type {
    ($ty:expr, $what:expr, $T:ident => $body:expr) => {
        match $crate::graph::TensorType::dense_dtype($ty, $what) {
            Ok(__d) => Ok($crate::dispatch_dtype!(__d, $T => $body)),
            Err(__e) => Err(__e),
        }
    };
}

impl Data {
    /// The dtype of the stored elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::F64(_) => DType::F64,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I16(_) => DType::I16,
            Data::U16(_) => DType::U16,
            Data::I32(_) => DType::I32,
            Data::U32(_) => DType::U32,
            Data::I64(_) => DType::I64,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of stored elements.
    pub fn len(&self) -> usize {
        dispatch!(self, v, T => v.len())
    }

    /// True when no element is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tensor with a concrete value: dtype (implied by the data), shape and elements
/// in row-major order.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Data,
}

impl Tensor {
    /// Builds a tensor, checking that the element count matches the shape.
    pub fn new(shape: Shape, data: Data) -> Result<Tensor> {
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} holds {n} elements but {} were given",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Builds a tensor from a typed vector.
    pub fn from_vec<T: Elem>(shape: Shape, v: Vec<T>) -> Result<Tensor> {
        Tensor::new(shape, T::wrap(v))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor {
            shape: vec![],
            data: T::wrap(vec![v]),
        }
    }

    /// A tensor of the given dtype and shape filled with zeros (false for bool).
    pub fn zeros(dtype: DType, shape: Shape) -> Result<Tensor> {
        let n = numel(&shape)?;
        let data = dispatch_dtype!(dtype, T => T::wrap(vec![T::default(); n]));
        Ok(Tensor { shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The typed storage.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Splits into shape and storage.
    pub fn into_parts(self) -> (Shape, Data) {
        (self.shape, self.data)
    }

    /// Borrows the elements as `T`, or fails with a type error.
    pub fn as_slice<T: Elem>(&self) -> Result<&[T]> {
        T::slice(&self.data).ok_or_else(|| {
            Error::Type(format!(
                "expected a {} tensor, got {}",
                T::DTYPE,
                self.dtype()
            ))
        })
    }

    /// The same elements with another shape of equal element count.
    pub fn reshaped(self, shape: Shape) -> Result<Tensor> {
        Tensor::new(shape, self.data)
    }

    /// Converts every element to `i64` (floats truncate). Used for index and
    /// shape operands, which ONNX gives as i32 or i64.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        dispatch!(&self.data, v, T => v.iter().map(|x| x.to_i64()).collect())
    }

    /// Converts every element to `f64`.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        dispatch!(&self.data, v, T => v.iter().map(|x| x.to_f64()).collect())
    }

    /// Converts to another dtype with ONNX `Cast` semantics (saturating float
    /// to float, truncating float to int, wrapping int to int, `x != 0` to bool).
    pub fn cast(&self, to: DType) -> Tensor {
        if to == self.dtype() {
            return self.clone();
        }
        let data = dispatch!(&self.data, v, S => {
            dispatch_dtype!(to, D => D::wrap(cast_slice::<S, D>(v)))
        });
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// Decodes little-endian bytes (the ONNX `raw_data`, `.npy` and safetensors
    /// layout) of a dense tensor. The byte count must be exactly `numel ×
    /// element size`.
    pub fn from_le_bytes(dtype: DType, shape: Shape, bytes: &[u8]) -> Result<Tensor> {
        let n = numel(&shape)?;
        let want = dtype.storage_bytes(n)?;
        if bytes.len() != want {
            return Err(Error::Shape(format!(
                "{dtype} tensor of shape {shape:?} needs {want} bytes, got {}",
                bytes.len()
            )));
        }
        let data = dispatch_dtype!(dtype, T => {
            T::wrap(bytes.chunks_exact(T::BYTES).map(<T as Elem>::read_le).collect())
        });
        Ok(Tensor { shape, data })
    }

    /// Decodes the bytes of a value of type `ty`. Dense types decode as
    /// [`Tensor::from_le_bytes`]; an encoded type is refused with
    /// [`Error::UnsupportedEncoding`] (decode it on purpose with
    /// [`dequantize`](crate::encoding::dequantize)). `from_le_bytes` itself
    /// takes a bare [`DType`], so it is dense by construction; code starting
    /// from a graph value's type calls this instead.
    pub fn from_typed_bytes(ty: &TensorType, bytes: &[u8]) -> Result<Tensor> {
        let dtype = ty.dense_dtype("the dense tensor decoder")?;
        Tensor::from_le_bytes(dtype, ty.shape.clone(), bytes)
    }

    /// Encodes the elements as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        // Per element: a `Tensor` is always dense, and this is only a capacity hint.
        let mut out = Vec::with_capacity(self.len() * self.dtype().elem_bytes());
        dispatch!(&self.data, v, T => for x in v.iter() { x.push_le(&mut out) });
        out
    }
}

/// Element-wise conversion between two element types with ONNX `Cast` semantics.
pub fn cast_slice<S: Elem, D: Elem>(v: &[S]) -> Vec<D> {
    if S::DTYPE.is_float() || D::DTYPE.is_float() {
        v.iter().map(|x| D::from_f64(x.to_f64())).collect()
    } else {
        // Integer and bool conversions are exact through i64: `as` wraps u64
        // values above i64::MAX there and back, like a C cast.
        v.iter().map(|x| D::from_i64(x.to_i64())).collect()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype(), self.shape)?;
        let n = self.len().min(8);
        dispatch!(&self.data, v, T => write!(f, " {:?}", &v[..n]))?;
        if self.len() > n {
            write!(f, " …")?;
        }
        Ok(())
    }
}

/// Integer element types, with the wrapping and checked arithmetic ONNX's
/// integer kernels need (C semantics: wrap on overflow, truncate on division).
pub trait Int: Elem + Ord {
    /// Wrapping addition.
    fn wadd(self, o: Self) -> Self;
    /// Wrapping subtraction.
    fn wsub(self, o: Self) -> Self;
    /// Wrapping multiplication.
    fn wmul(self, o: Self) -> Self;
    /// Truncating division (`MIN / -1` wraps to `MIN`); `None` on division
    /// by zero.
    fn cdiv(self, o: Self) -> Option<Self>;
    /// C remainder (sign of the dividend); `None` on division by zero.
    fn crem(self, o: Self) -> Option<Self>;
    /// Wrapping negation.
    fn wneg(self) -> Self;
    /// Wrapping absolute value.
    fn wabs(self) -> Self;
    /// Bitwise and.
    fn band(self, o: Self) -> Self;
    /// Bitwise or.
    fn bor(self, o: Self) -> Self;
    /// Bitwise xor.
    fn bxor(self, o: Self) -> Self;
    /// Bitwise not.
    fn bnot(self) -> Self;
    /// Left shift; 0 when the amount is negative or the bit width or more.
    fn shl(self, o: Self) -> Self;
    /// Right shift (arithmetic for signed types); for amounts out of
    /// `0..bits`, 0 (or -1 for negative signed values).
    fn shr(self, o: Self) -> Self;
    /// Wrapping power with a non-negative exponent (negative exponents give 0
    /// unless the base is ±1, like integer NumPy).
    fn wpow(self, e: i64) -> Self;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
}

macro_rules! int_ops {
    ($($t:ty),*) => {$(
        impl Int for $t {
            fn wadd(self, o: Self) -> Self { self.wrapping_add(o) }
            fn wsub(self, o: Self) -> Self { self.wrapping_sub(o) }
            fn wmul(self, o: Self) -> Self { self.wrapping_mul(o) }
            fn cdiv(self, o: Self) -> Option<Self> { if o == 0 { None } else { Some(self.wrapping_div(o)) } }
            fn crem(self, o: Self) -> Option<Self> { if o == 0 { None } else { Some(self.wrapping_rem(o)) } }
            #[allow(clippy::unnecessary_cast)]
            fn wneg(self) -> Self { (0 as $t).wrapping_sub(self) }
            #[allow(unused_comparisons)]
            fn wabs(self) -> Self { if self < 0 as $t { self.wneg() } else { self } }
            fn band(self, o: Self) -> Self { self & o }
            fn bor(self, o: Self) -> Self { self | o }
            fn bxor(self, o: Self) -> Self { self ^ o }
            fn bnot(self) -> Self { !self }
            fn shl(self, o: Self) -> Self {
                u32::try_from(o).ok().and_then(|s| self.checked_shl(s)).unwrap_or(0)
            }
            fn shr(self, o: Self) -> Self {
                // Arithmetic for signed types: out-of-range amounts leave only sign bits.
                #[allow(unused_comparisons)]
                let fill = if self < 0 { self.bnot().band(0).bnot() } else { 0 };
                u32::try_from(o).ok().and_then(|s| self.checked_shr(s)).unwrap_or(fill)
            }
            fn wpow(self, e: i64) -> Self {
                if e < 0 {
                    #[allow(unused_comparisons)]
                    return if self == 1 { 1 } else if self < 0 as $t && self.wrapping_add(1) == 0 {
                        if e % 2 == 0 { 1 } else { self }
                    } else { 0 };
                }
                let mut acc: $t = 1;
                let mut base = self;
                let mut e = e as u64;
                while e > 0 {
                    if e & 1 == 1 { acc = acc.wrapping_mul(base); }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            const ZERO: Self = 0;
            const ONE: Self = 1;
        }
    )*};
}
int_ops!(i8, u8, i16, u16, i32, u32, i64, u64);

/// Like [`dispatch!`] but only for the integer dtypes; other dtypes evaluate `$else`.
#[macro_export]
macro_rules! dispatch_int {
    ($data:expr, $v:ident, $T:ident => $body:expr, else $other:expr) => {
        $crate::__dispatch_match!($data, $crate::tensor::Data, $v, $T, $body, [
            I8 => i8, U8 => u8, I16 => i16, U16 => u16, I32 => i32, U32 => u32,
            I64 => i64, U64 => u64
        ], _ => $other,)
    };
}
