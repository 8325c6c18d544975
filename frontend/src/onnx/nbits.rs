//! onnxruntime's `com.microsoft::MatMulNBits` (the 4- and 8-bit blocked
//! weight formats its LLM exporter and `MatMulNBitsQuantizer` write)
//! imported as `EncodedMatMul(A, w[, bias])` with `w` an affine `u4` or
//! `u8` weight `[N, K]` in blocks along `K`: the integers, scales and zero
//! points as the file holds them, repacked without the block padding, so
//! nothing is re-quantized.
//!
//! Inputs: `A` f32 `[…, K]`; `B` u8 `[N, n_blocks, block_size · bits / 8]`
//! (4-bit: the element of even index in the low nibble); `scales` f32
//! `[N * n_blocks]`; optional `zero_points` packed like `B`
//! (`[N * ceil(n_blocks · bits / 8)]`, each row starting on a byte),
//! `2^(bits-1)` when absent; `g_idx` is refused; optional `bias` f32 `[N]`.
//! Only `bits` 4 and 8 (2 and 3 have no affine storage) and constant `B`,
//! `scales` and `zero_points` are supported.

use std::collections::HashMap;

use onnx_protobuf::NodeProto;
use smelt_ir::ops::weights::Weights;
use smelt_ir::{
    Affine, AffineStorage, DType, Encoding, Granularity, Op, TensorType, ValueDef, ValueId,
};

use super::attrs::convert_attrs;
use super::import::Importer;
use super::qdq::{pack, unpack};
use crate::error::{Error, Result, UnsupportedOp};

/// The domain of onnxruntime's contrib ops.
const MS_DOMAIN: &str = "com.microsoft";

/// True for a `com.microsoft::MatMulNBits` node.
pub(super) fn is_matmul_nbits(node: &NodeProto) -> bool {
    node.domain == MS_DOMAIN && node.op_type == "MatMulNBits"
}

/// Why a `MatMulNBits` node cannot be imported, judged from its attributes
/// and inputs alone; `None` when it can.
pub(super) fn unsupported_reason(node: &NodeProto) -> Option<String> {
    match attrs(node) {
        Err(e) => Some(e.to_string()),
        Ok(_) if node.input.get(4).is_some_and(|g| !g.is_empty()) => {
            Some("g_idx (act-order) is not supported".into())
        }
        Ok(_) => None,
    }
}

/// The weight's `K`, `N`, `block_size` and storage (from `bits`).
struct NBits {
    k: usize,
    n: usize,
    block: usize,
    storage: AffineStorage,
}

/// The node's [`NBits`], checking `bits`.
fn attrs(node: &NodeProto) -> Result<NBits> {
    let a = convert_attrs(node, None)?;
    let bad = |attr: &str, msg: String| Error::Ir(smelt_ir::Error::attr(attr, msg));
    let storage = match a.int("bits", 4).map_err(Error::Ir)? {
        4 => AffineStorage::U4,
        8 => AffineStorage::U8,
        bits => {
            return Err(bad(
                "bits",
                format!("only 4- and 8-bit weights are supported, got {bits}"),
            ));
        }
    };
    let dim = |name: &str| -> Result<usize> {
        let v = a.int(name, 0).map_err(Error::Ir)?;
        if v < 2 {
            return Err(bad(name, format!("must be at least 2, got {v}")));
        }
        Ok(v as usize)
    };
    let (k, n, block) = (dim("K")?, dim("N")?, dim("block_size")?);
    if block % 2 != 0 {
        return Err(bad("block_size", format!("must be even, got {block}")));
    }
    Ok(NBits {
        k,
        n,
        block,
        storage,
    })
}

impl Importer<'_> {
    /// Imports a `MatMulNBits` node as `EncodedMatMul` (see the module doc).
    pub(super) fn import_matmul_nbits(
        &mut self,
        node: &NodeProto,
        name: &str,
        scope: &mut HashMap<String, ValueId>,
    ) -> Result<()> {
        let unsupported = |reason: String| {
            Error::UnsupportedOps(vec![UnsupportedOp {
                node: name.to_string(),
                op: format!("{MS_DOMAIN}::MatMulNBits"),
                reason,
            }])
        };
        if let Some(r) = unsupported_reason(node) {
            return Err(unsupported(r));
        }
        let NBits {
            k,
            n,
            block: bs,
            storage,
        } = attrs(node)?;
        let bits = storage.bits();
        let nb = k.div_ceil(bs);
        let input = |i: usize| -> Result<Option<ValueId>> {
            match node.input.get(i).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => scope.get(s).copied().map(Some).ok_or_else(|| {
                    Error::Graph(format!(
                        "node '{name}' (MatMulNBits) uses '{s}', which nothing defines"
                    ))
                }),
            }
        };
        let a = input(0)?.ok_or_else(|| unsupported("no input A".into()))?;
        let g = &self.graph;
        let bytes_of = |id: Option<ValueId>,
                        what: &str,
                        dtype: DType,
                        len: usize|
         -> Result<Option<Vec<u8>>> {
            let Some(id) = id else { return Ok(None) };
            let v = g.value(id);
            match &v.def {
                ValueDef::Const(b)
                    if v.ty.dtype == dtype && v.ty.is_dense() && b.as_slice().len() == len =>
                {
                    Ok(Some(b.as_slice().to_vec()))
                }
                _ => Err(unsupported(format!(
                    "{what} must be a constant {dtype} of {len} bytes, got {} '{}'",
                    v.ty, v.name
                ))),
            }
        };
        let blob = bs * bits / 8;
        let b = bytes_of(input(1)?, "B", DType::U8, n * nb * blob)?
            .ok_or_else(|| unsupported("no input B".into()))?;
        let scales = bytes_of(input(2)?, "scales", DType::F32, n * nb * 4)?
            .ok_or_else(|| unsupported("no scales".into()))?;
        // Zero points per row, in bytes, and in elements (a row starts on a
        // byte, so a 4-bit row of an odd block count has a spare nibble).
        let zp_row = (nb * bits).div_ceil(8);
        let zp_stride = zp_row * 8 / bits;
        let what = format!("zero_points (packed {})", storage.name());
        let zp = bytes_of(input(3)?, &what, DType::U8, n * zp_row)?;
        let affine = Affine {
            storage,
            granularity: Granularity::PerBlock { axis: 1, block: bs },
            zero_point: true,
        };
        let ty = TensorType::encoded(DType::F32, vec![n, k], Encoding::Affine(affine))?;
        let layout = affine.layout(&[n, k])?;
        let mut w = vec![0u8; layout.total];
        for row in 0..n {
            for kk in 0..k {
                let q = unpack(storage, &b, (row * nb + kk / bs) * bs + kk % bs);
                pack(storage, &mut w, row * k + kk, q);
            }
        }
        w[layout.scales_offset..layout.scales_offset + scales.len()].copy_from_slice(&scales);
        let zo = layout.zero_points_offset.unwrap_or(layout.total);
        for row in 0..n {
            for blk in 0..nb {
                let z = match &zp {
                    Some(z) => unpack(storage, z, row * zp_stride + blk),
                    None => 1 << (bits - 1),
                };
                pack(storage, &mut w[zo..], row * nb + blk, z);
            }
        }
        let wname = self
            .graph
            .fresh_name(&format!("{name}.weight.{}", storage.name()));
        let w = self.graph.add_const_bytes(wname, ty, w.into())?;
        let bias = input(5)?;
        let out = node.output.first().cloned().unwrap_or_default();
        let ids = self
            .graph
            .add_node(
                name.to_string(),
                Op::Weights(Weights::EncodedMatMul),
                vec![Some(a), Some(w), bias],
                vec![out.clone()],
            )
            .map_err(|e| Error::Ir(e.at_node(name, "MatMulNBits")))?;
        if scope.insert(out.clone(), ids[0]).is_some() {
            return Err(Error::Graph(format!(
                "value '{out}' is defined twice (again by node '{name}')"
            )));
        }
        Ok(())
    }
}
