//! Constant folding during import: a node whose inputs are all constants
//! (or whose op reads only their types) is evaluated with the reference
//! interpreter and its results become constants, within budgets that keep a
//! tiny file from making the importer allocate or compute without bound.

use smelt_ir::{Op, OpDef, Tensor, TensorType, ValueId};

use super::import::Importer;
use crate::error::{Error, Result};

/// Largest output a constant-folded node may produce; bigger results stay
/// nodes so a tiny file cannot make the importer allocate gigabytes.
const MAX_FOLD_BYTES: usize = 64 << 20;

/// Bytes that folding may add in all, beyond [`FOLD_BYTES_PER_WEIGHT_BYTE`]
/// times the weights read so far. Folded results are kept in the graph, so
/// without a total budget a few kilobytes of broadcasting `Add`s would
/// allocate gigabytes; past the budget, nodes stay nodes.
const FOLD_BUDGET_BYTES: u64 = 256 << 20;

/// How much folding may grow the weights: enough for the usual
/// transformations of every weight (a transpose, a dequantization from 8 bits
/// to 32) while a tiny file still cannot amplify itself without bound.
const FOLD_BYTES_PER_WEIGHT_BYTE: u64 = 4;

/// Most multiply-accumulates one folded node may cost. Output size alone does
/// not bound the work (or the scratch memory: the reference convolution's
/// im2col buffer grows with the MACs), and a 250-byte file can ask for a
/// convolution of 10^12 MACs on constants it builds with `ConstantOfShape`.
const MAX_FOLD_MACS: u64 = 1 << 26;

/// Multiply-accumulates that folding may spend in all, beyond
/// [`FOLD_BYTES_PER_WEIGHT_BYTE`] per weight byte read so far: a few seconds.
const FOLD_MAC_BUDGET: u64 = 1 << 30;

impl Importer<'_> {
    /// Evaluates a node whose inputs are all constants (or whose op reads only
    /// their types) and adds its results as constants; results too large to
    /// fold stay a node.
    pub(super) fn fold(
        &mut self,
        name: &str,
        op_label: &str,
        op: Op,
        inputs: &[Option<ValueId>],
        out_names: Vec<String>,
    ) -> Result<Vec<ValueId>> {
        let ctx = |e: smelt_ir::Error| Error::Ir(e.at_node(name, op_label));
        let types = self.graph.infer(&op, inputs).map_err(ctx)?;
        let total: usize = types
            .iter()
            .map(|t| t.bytes().unwrap_or(usize::MAX))
            .fold(0usize, |a, b| a.saturating_add(b));
        let input_types: Vec<Option<&TensorType>> = inputs
            .iter()
            .map(|i| i.map(|id| &self.graph.value(id).ty))
            .collect();
        let macs = op.macs(&input_types, &types);
        let growth = self.weight_bytes.saturating_mul(FOLD_BYTES_PER_WEIGHT_BYTE);
        let over_bytes = total > MAX_FOLD_BYTES
            || self.folded_bytes.saturating_add(total as u64)
                > FOLD_BUDGET_BYTES.saturating_add(growth);
        let over_macs = macs > MAX_FOLD_MACS
            || self.folded_macs.saturating_add(macs) > FOLD_MAC_BUDGET.saturating_add(growth);
        if over_bytes || over_macs {
            return self
                .graph
                .add_node(name.to_string(), op, inputs.to_vec(), out_names)
                .map_err(Error::Ir);
        }
        let mut values = Vec::with_capacity(inputs.len());
        for inp in inputs {
            values.push(match inp {
                Some(id) => Some(match self.graph.const_value(*id) {
                    Some(t) => t.map_err(ctx)?,
                    // An op that reads only types gets a stand-in of the right type.
                    None => {
                        let ty = &self.graph.value(*id).ty;
                        Tensor::zeros(ty.dtype, ty.shape.clone()).map_err(ctx)?
                    }
                }),
                None => None,
            });
        }
        let args: Vec<Option<&Tensor>> = values.iter().map(Option::as_ref).collect();
        let outs = op.eval(&args).map_err(ctx)?;
        self.folded_bytes = self.folded_bytes.saturating_add(total as u64);
        self.folded_macs = self.folded_macs.saturating_add(macs);
        let mut ids = Vec::with_capacity(out_names.len());
        for (k, (oname, t)) in out_names.into_iter().zip(outs).enumerate() {
            if types
                .get(k)
                .is_some_and(|ty| ty.dtype != t.dtype() || ty.shape != t.shape())
            {
                return Err(ctx(smelt_ir::Error::Verify(format!(
                    "folding output {k} disagrees with its inferred type"
                ))));
            }
            ids.push(self.graph.add_const(oname, &t)?);
        }
        Ok(ids)
    }
}
