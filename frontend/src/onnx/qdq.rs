//! Quantized weights stay quantized: a constant integer weight that the
//! model dequantizes reaches the IR as one affine-encoded constant (the
//! integers as the file stores them, then the scales and zero points, see
//! [`smelt_ir::encoding::AffineLayout`]) read by `Decode` or
//! `EncodedMatMul`, not as the f32 tensor folding would make of it.
//!
//! Two forms are recognised, when every operand is a constant:
//! - `DequantizeLinear(q, scale[, zero_point])` (per tensor, per axis or
//!   blocked, f32 scales and output);
//! - `Mul(Cast<to=f32>(q), scale)` with a scalar scale or one that varies
//!   along a single axis of `q` (the weight-only form exporters write).
//!
//! Both fold as before (the f32 constant is what every other reader sees);
//! the importer remembers where the folded constant came from
//! ([`QuantOrigin`]). When a `MatMul` or `Gemm` node reads it as its
//! weight, the node reads the encoded constant instead: `MatMul(x, w[K, N])`
//! becomes `EncodedMatMul(x, wᵀ)` with `wᵀ` stored `[N, K]` (integers,
//! scales and zero points transposed, so exact), and so does `Gemm(x, w, c)`
//! with unit `alpha` and `beta`, no `transA` and `c` absent or `[N]`
//! (`EncodedMatMul(x, w[N, K], c)`); any other `Gemm` reads
//! `Decode(w[N, K])` with `transB=1`. A `Conv` weight (any rank, per
//! tensor, per output channel or blocked) is read through `Decode(w)`:
//! the weight stays encoded in the artifact and is decoded into the arena
//! once per run (see ARCHITECTURE.md). The folded f32 constant is then
//! pruned.
//!
//! The integers may be 8- or 16-bit (`i8`, `u8`, `i16`, `u16`) or ONNX
//! `INT4`/`UINT4`: those the reader hands over one a byte (see
//! `tensor::packed_4bit`) and the importer remembers in
//! `Importer::packed4`; they are packed back two a byte here, so an
//! untransposed weight keeps the file's packed bytes.
//!
//! The decoded values are bit-identical to `DequantizeLinear`'s: both
//! compute `(q - zero_point)` exactly and multiply once by the f32 scale.

use smelt_ir::ops::conv::ConvOp;
use smelt_ir::ops::elementwise::{BinaryFn, Elementwise};
use smelt_ir::ops::linalg::{GemmAttrs, Linalg};
use smelt_ir::ops::quant::Quant;
use smelt_ir::ops::weights::Weights;
use smelt_ir::shape::norm_axis;
use smelt_ir::{
    Affine, AffineStorage, DType, Encoding, Granularity, Graph, Op, TensorType, ValueDef, ValueId,
};

use super::import::Importer;
use crate::error::{Error, Result};

/// Where a folded f32 constant came from: integers `q` times `scale`
/// (minus `zero_point`), as an affine encoding describes them.
#[derive(Clone, Copy, Debug)]
pub(super) struct QuantOrigin {
    q: ValueId,
    scale: ValueId,
    zero_point: Option<ValueId>,
    affine: Affine,
}

/// The bytes of a constant, `None` for any other value.
fn const_bytes(g: &Graph, id: ValueId) -> Option<&[u8]> {
    match &g.value(id).def {
        ValueDef::Const(b) => Some(b.as_slice()),
        ValueDef::Input | ValueDef::Node(..) => None,
    }
}

/// The affine storage of the bytes of a dense integer constant as the
/// graph holds them (one element per byte or per two bytes).
fn dense_storage(ty: &TensorType) -> Option<AffineStorage> {
    if !ty.is_dense() {
        return None;
    }
    match ty.dtype {
        DType::I8 => Some(AffineStorage::I8),
        DType::U8 => Some(AffineStorage::U8),
        DType::I16 => Some(AffineStorage::I16),
        DType::U16 => Some(AffineStorage::U16),
        _ => None,
    }
}

/// True when `id` is a dense f32 constant.
fn is_f32_const(g: &Graph, id: ValueId) -> bool {
    g.is_const(id) && g.value(id).ty.dtype == DType::F32 && g.value(id).ty.is_dense()
}

/// The granularity of a `Mul` scale of shape `scale` broadcast against
/// integers of shape `q` (the product must keep `q`'s shape): a single
/// element, or one axis of `q` with every other dim 1.
fn broadcast_granularity(q: &[usize], scale: &[usize]) -> Option<Granularity> {
    if scale.len() > q.len() {
        return None;
    }
    let lead = q.len() - scale.len();
    let varying: Vec<usize> = (0..scale.len()).filter(|&i| scale[i] != 1).collect();
    match varying[..] {
        [] => Some(Granularity::PerTensor),
        [i] if scale[i] == q[lead + i] => Some(Granularity::PerAxis { axis: lead + i }),
        _ => None,
    }
}

/// Integer `i` of packed `storage` bytes.
pub(super) fn unpack(s: AffineStorage, b: &[u8], i: usize) -> i32 {
    match s {
        AffineStorage::I8 => i32::from(b[i] as i8),
        AffineStorage::U8 => i32::from(b[i]),
        AffineStorage::I16 => i32::from(i16::from_le_bytes([b[2 * i], b[2 * i + 1]])),
        AffineStorage::U16 => i32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])),
        AffineStorage::I4 | AffineStorage::U4 => {
            let nib = (b[i / 2] >> (4 * (i % 2))) & 0xf;
            if s == AffineStorage::I4 {
                i32::from(((nib << 4) as i8) >> 4)
            } else {
                i32::from(nib)
            }
        }
    }
}

/// Stores integer `v` as element `j` of packed `storage` bytes `out`
/// (zeroed beforehand for the 4-bit types).
pub(super) fn pack(s: AffineStorage, out: &mut [u8], j: usize, v: i32) {
    match s {
        AffineStorage::I8 | AffineStorage::U8 => out[j] = v as u8,
        AffineStorage::I16 | AffineStorage::U16 => {
            out[2 * j..2 * j + 2].copy_from_slice(&(v as u16).to_le_bytes());
        }
        AffineStorage::I4 | AffineStorage::U4 => out[j / 2] |= ((v as u8) & 0xf) << (4 * (j % 2)),
    }
}

/// The `count` integers of bytes `b` (packed as storage `from`) packed as
/// storage `to` and reordered so that output element `j` is input element
/// `order(j)`.
fn repack(
    (from, to): (AffineStorage, AffineStorage),
    b: &[u8],
    count: usize,
    order: impl Fn(usize) -> usize,
) -> Vec<u8> {
    let mut out = vec![0u8; to.packed_bytes(count).unwrap_or(0)];
    for j in 0..count {
        pack(to, &mut out, j, unpack(from, b, order(j)));
    }
    out
}

impl QuantOrigin {
    /// The encoded constant's type and bytes; `transpose` stores a 2-D
    /// `[K, N]` weight as `[N, K]` (the axis or blocks follow).
    fn encode(&self, g: &Graph, transpose: bool) -> Result<(TensorType, Vec<u8>)> {
        let missing = || Error::Graph("a quantized weight's operand is not a constant".into());
        let source = |id: ValueId| dense_storage(&g.value(id).ty).ok_or_else(missing);
        let q_from = source(self.q)?;
        let zp_from = self.zero_point.map(source).transpose()?;
        let shape = g.value(self.q).ty.shape.clone();
        let q = const_bytes(g, self.q).ok_or_else(missing)?;
        let scales = const_bytes(g, self.scale).ok_or_else(missing)?;
        let zp = match self.zero_point {
            Some(z) => Some(const_bytes(g, z).ok_or_else(missing)?),
            None => None,
        };
        let mut a = self.affine;
        let (shape, order): (Vec<usize>, Box<dyn Fn(usize) -> usize>) = if transpose {
            let (k, n) = (shape[0], shape[1]);
            (vec![n, k], Box::new(move |j| (j % k) * n + j / k))
        } else {
            (shape, Box::new(|j| j))
        };
        // The scale (and zero point) tensor: its shape before the transpose.
        let mut group_order: Box<dyn Fn(usize) -> usize> = Box::new(|j| j);
        if transpose {
            match &mut a.granularity {
                Granularity::PerTensor => {}
                Granularity::PerAxis { axis } => *axis = 1 - *axis,
                Granularity::PerBlock { axis, block } => {
                    // Scales [k', n'] (before) become [n', k'] (after).
                    let (k, n) = (shape[1], shape[0]);
                    let (kb, nb) = if *axis == 0 {
                        (k.div_ceil(*block), n)
                    } else {
                        (k, n.div_ceil(*block))
                    };
                    group_order = Box::new(move |j| (j % kb) * nb + j / kb);
                    *axis = 1 - *axis;
                }
            }
        }
        let ty = TensorType::encoded(DType::F32, shape.clone(), Encoding::Affine(a))?;
        let layout = a.layout(&shape)?;
        let mut bytes = repack((q_from, a.storage), q, layout.numel, order);
        bytes.resize(layout.scales_offset, 0);
        for j in 0..layout.groups {
            let o = 4 * group_order(j);
            bytes.extend_from_slice(&scales[o..o + 4]);
        }
        if let (Some(z), Some(from)) = (zp, zp_from) {
            bytes.extend(repack((from, a.storage), z, layout.groups, &group_order));
        }
        Ok((ty, bytes))
    }
}

impl Importer<'_> {
    /// The affine storage of integer constant `id` when smelt keeps it
    /// encoded: its file's 4-bit type, or its dense 8- or 16-bit type.
    fn storage_of(&self, id: ValueId) -> Option<AffineStorage> {
        match self.packed4.get(&id) {
            Some(&s) => Some(s),
            None => dense_storage(&self.graph.value(id).ty),
        }
    }

    /// Records where the constants `outs` that `op` folded from `inputs`
    /// came from, when they are a dequantized integer weight.
    pub(super) fn note_quantized(&mut self, op: &Op, inputs: &[Option<ValueId>], outs: &[ValueId]) {
        let g = &self.graph;
        let [out] = outs else { return };
        if !is_f32_const(g, *out) {
            return;
        }
        let input = |i: usize| inputs.get(i).copied().flatten();
        let origin = match op {
            Op::Quant(Quant::DequantizeLinear(attrs)) => {
                let (Some(q), Some(scale)) = (input(0), input(1)) else {
                    return;
                };
                let zp = input(2);
                let qty = &g.value(q).ty;
                let Some(storage) = self.storage_of(q) else {
                    return;
                };
                // The zero points are stored like the values (ONNX gives
                // them one type), so a 4-bit weight needs 4-bit ones.
                if !is_f32_const(g, scale)
                    || zp.is_some_and(|z| self.storage_of(z) != Some(storage))
                {
                    return;
                }
                let rank = qty.shape.len();
                let sshape = &g.value(scale).ty.shape;
                let granularity = if attrs.block_size > 0 {
                    let Ok(axis) = norm_axis(attrs.axis, rank) else {
                        return;
                    };
                    Granularity::PerBlock {
                        axis,
                        block: attrs.block_size,
                    }
                } else if sshape.iter().product::<usize>() == 1 && sshape.len() <= 1 {
                    Granularity::PerTensor
                } else {
                    let Ok(axis) = norm_axis(attrs.axis, rank) else {
                        return;
                    };
                    Granularity::PerAxis { axis }
                };
                QuantOrigin {
                    q,
                    scale,
                    zero_point: zp,
                    affine: Affine {
                        storage,
                        granularity,
                        zero_point: zp.is_some(),
                    },
                }
            }
            Op::Elementwise(Elementwise::Binary(BinaryFn::Mul)) => {
                let (Some(a), Some(b)) = (input(0), input(1)) else {
                    return;
                };
                let (cast, scale) = match (self.casts.get(&a), self.casts.get(&b)) {
                    (Some(&q), None) => (q, b),
                    (None, Some(&q)) => (q, a),
                    _ => return,
                };
                let qty = &g.value(cast).ty;
                let Some(storage) = self.storage_of(cast) else {
                    return;
                };
                if !is_f32_const(g, scale) || g.value(*out).ty.shape != qty.shape {
                    return;
                }
                let Some(granularity) = broadcast_granularity(&qty.shape, &g.value(scale).ty.shape)
                else {
                    return;
                };
                QuantOrigin {
                    q: cast,
                    scale,
                    zero_point: None,
                    affine: Affine {
                        storage,
                        granularity,
                        zero_point: false,
                    },
                }
            }
            Op::Elementwise(Elementwise::Cast { to: DType::F32 }) => {
                if let Some(q) = input(0)
                    && self.storage_of(q).is_some()
                {
                    self.casts.insert(*out, q);
                }
                return;
            }
            _ => return,
        };
        // The scales must be the whole scale tensor of the granularity.
        let groups = origin.affine.groups(&g.value(origin.q).ty.shape);
        let nscales = g.value(origin.scale).ty.numel().ok();
        let nzp = origin.zero_point.map(|z| g.value(z).ty.numel().ok());
        if groups.is_err() || groups.ok() != nscales || nzp.is_some_and(|n| n != nscales) {
            return;
        }
        self.quantized.insert(*out, origin);
    }

    /// Points a `MatMul` or `Gemm` reading a dequantized weight (see
    /// [`Importer::note_quantized`]) at the encoded weight instead: returns
    /// the op to add in place of `op` and rewrites `inputs`.
    pub(super) fn use_quantized(
        &mut self,
        name: &str,
        op: Op,
        inputs: &mut [Option<ValueId>],
    ) -> Result<Op> {
        let Some(w) = inputs.get(1).copied().flatten() else {
            return Ok(op);
        };
        let Some(origin) = self.quantized.get(&w).copied() else {
            return Ok(op);
        };
        let x_f32 = inputs[0].is_some_and(|x| {
            let t = &self.graph.value(x).ty;
            t.dtype == DType::F32 && t.is_dense() && !t.shape.is_empty()
        });
        let two_d = self.graph.value(w).ty.shape.len() == 2;
        match op {
            Op::Linalg(Linalg::MatMul) if two_d && x_f32 => {
                let wt = self.encoded(name, w, origin, true)?;
                inputs[1] = Some(wt);
                Ok(Op::Weights(Weights::EncodedMatMul))
            }
            Op::Linalg(Linalg::Gemm(attrs))
                if two_d && x_f32 && self.plain_gemm(&attrs, inputs) =>
            {
                let w = self.encoded(name, w, origin, !attrs.trans_b)?;
                inputs[1] = Some(w);
                Ok(Op::Weights(Weights::EncodedMatMul))
            }
            Op::Linalg(Linalg::Gemm(mut attrs)) if two_d => {
                let transpose = !attrs.trans_b;
                attrs.trans_b = true;
                let enc = self.encoded(name, w, origin, transpose)?;
                inputs[1] = Some(self.decoded(name, enc)?);
                Ok(Op::Linalg(Linalg::Gemm(attrs)))
            }
            Op::Conv(ConvOp::Conv { .. }) if x_f32 => {
                let enc = self.encoded(name, w, origin, false)?;
                inputs[1] = Some(self.decoded(name, enc)?);
                Ok(op)
            }
            other => Ok(other),
        }
    }

    /// `Decode(enc)`, added for node `node` (named in errors).
    fn decoded(&mut self, node: &str, enc: ValueId) -> Result<ValueId> {
        let dname = self
            .graph
            .fresh_name(&format!("{}.decoded", self.graph.value(enc).name));
        let ids = self
            .graph
            .add_node(
                dname.clone(),
                Op::Weights(Weights::Decode),
                vec![Some(enc)],
                vec![dname],
            )
            .map_err(|e| Error::Ir(e.at_node(node, "Decode")))?;
        Ok(ids[0])
    }

    /// True when `Gemm<attrs>(x, w[, c])` is `x · w' + c` with `c` absent or
    /// a dense f32 `[N]` (no `transA`, unit `alpha` and `beta`): the
    /// product `EncodedMatMul` computes.
    fn plain_gemm(&self, attrs: &GemmAttrs, inputs: &[Option<ValueId>]) -> bool {
        let g = &self.graph;
        let x_2d = inputs[0].is_some_and(|x| g.value(x).ty.shape.len() == 2);
        let Some(w) = inputs[1] else { return false };
        let ws = &g.value(w).ty.shape;
        let n = if attrs.trans_b { ws[0] } else { ws[1] };
        let c_ok = match inputs.get(2).copied().flatten() {
            None => true,
            Some(c) => {
                let t = &g.value(c).ty;
                attrs.beta == 1.0 && t.dtype == DType::F32 && t.is_dense() && t.shape == [n]
            }
        };
        x_2d && !attrs.trans_a && attrs.alpha == 1.0 && c_ok
    }

    /// The encoded constant for folded weight `w` (transposed or not),
    /// added once and shared by every product that reads it.
    fn encoded(
        &mut self,
        node: &str,
        w: ValueId,
        origin: QuantOrigin,
        transpose: bool,
    ) -> Result<ValueId> {
        if let Some(&id) = self.encoded.get(&(w, transpose)) {
            return Ok(id);
        }
        let (ty, bytes) = origin.encode(&self.graph, transpose).map_err(|e| match e {
            Error::Ir(e) => Error::Ir(e.at_node(node, "DequantizeLinear")),
            other => other,
        })?;
        let suffix = if transpose { "encoded.t" } else { "encoded" };
        let name = self
            .graph
            .fresh_name(&format!("{}.{suffix}", self.graph.value(w).name));
        let id = self.graph.add_const_bytes(name, ty, bytes.into())?;
        self.encoded.insert((w, transpose), id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_scales_name_one_axis() {
        assert_eq!(
            broadcast_granularity(&[4, 3], &[]),
            Some(Granularity::PerTensor)
        );
        assert_eq!(
            broadcast_granularity(&[4, 3], &[1]),
            Some(Granularity::PerTensor)
        );
        assert_eq!(
            broadcast_granularity(&[4, 3], &[3]),
            Some(Granularity::PerAxis { axis: 1 })
        );
        assert_eq!(
            broadcast_granularity(&[4, 3], &[4, 1]),
            Some(Granularity::PerAxis { axis: 0 })
        );
        assert_eq!(broadcast_granularity(&[4, 3], &[4, 3]), None);
        assert_eq!(broadcast_granularity(&[4, 3], &[2]), None);
        assert_eq!(broadcast_granularity(&[3], &[2, 3]), None);
    }

    #[test]
    fn repack_transposes_4_bit_values() {
        // [2, 3] u4 values 0..6, transposed to [3, 2].
        let b = [0x10, 0x32, 0x54];
        let u4 = (AffineStorage::U4, AffineStorage::U4);
        let t = repack(u4, &b, 6, |j| (j % 2) * 3 + j / 2);
        assert_eq!(t, [0x30, 0x41, 0x52]);
    }

    #[test]
    fn repack_packs_signed_bytes_into_nibbles() {
        // i8 values 1, -2, 7, -8, 3 (as the reader unpacks an INT4 tensor)
        // pack back into the file's bytes, the odd tail's high nibble 0.
        let b = [1u8, (-2i8) as u8, 7, (-8i8) as u8, 3];
        let t = repack((AffineStorage::I8, AffineStorage::I4), &b, 5, |j| j);
        assert_eq!(t, [0xe1, 0x87, 0x03]);
    }
}
