//! Weight-only products over many rows: decode the weight once.
//!
//! `EncodedMatMul(x, w[N, K], b)` reads its weight in the stored encoding,
//! decoding each element as the dot product reaches it. That is right for
//! one row (a decode step's GEMV: the weight streams from memory once, at
//! its stored size), but with M rows every weight element is decoded M
//! times. Over [`MIN_ROWS`] rows this pass rewrites such a node to
//!
//! ```text
//! d  = Decode(w)          f32 [N, K], once per run
//! dt = Transpose(d)       f32 [K, N]
//! y  = MatMul(x, dt) (+ b)
//! ```
//!
//! so the product is an ordinary f32 MatMul (vectorised, threaded) and the
//! weight is decoded once: what ggml does for prompt processing. The cost is
//! arena space for the decoded weight, so the compile pipeline runs it only
//! for targets with an operating system, never for microcontroller firmware,
//! where RAM is the budget. The artifact still stores the encoded bytes.
//!
//! It runs after the optimizer (whose `matmul-decoded` rule would fuse the
//! result straight back) and changes no value the graph exposes: the
//! rewritten node's output keeps its id and name.

use smelt_ir::ops::elementwise::{BinaryFn, Elementwise};
use smelt_ir::ops::layout::Layout;
use smelt_ir::ops::linalg::Linalg;
use smelt_ir::ops::weights::Weights;
use smelt_ir::{Graph, Node, Op, Result};

use crate::quantize::int8::push;

/// The fewest rows of `x` for which decoding once beats decoding per row.
pub const MIN_ROWS: usize = 4;

/// Rewrites every `EncodedMatMul` with at least `min_rows` rows (see the
/// module doc); returns how many it rewrote.
pub fn decode_batched(g: &mut Graph, min_rows: usize) -> Result<usize> {
    let old = std::mem::take(&mut g.nodes);
    let mut rewritten = 0;
    for node in old {
        if !is_batched(g, &node, min_rows)? {
            push(g, node);
            continue;
        }
        let (x, w, bias) = (node.inputs[0], node.inputs[1], node.inputs.get(2).copied());
        let y = node.outputs[0];
        let base = g.value(w.expect("EncodedMatMul has a weight")).name.clone();
        let name = &node.name;
        let d_name = g.fresh_name(&format!("{base}.decoded"));
        let decode = Op::Weights(Weights::Decode);
        let d = g.add_node(format!("{name}.decode"), decode, vec![w], vec![d_name])?[0];
        let t_name = g.fresh_name(&format!("{base}.decoded.t"));
        let transpose = Op::Layout(Layout::Transpose {
            perm: Some(vec![1, 0]),
        });
        let dt = g.add_node(
            format!("{name}.transpose"),
            transpose,
            vec![Some(d)],
            vec![t_name],
        )?[0];
        let mm = Op::Linalg(Linalg::MatMul);
        match bias.flatten() {
            None => push(
                g,
                Node {
                    name: node.name.clone(),
                    op: mm,
                    inputs: vec![x, Some(dt)],
                    outputs: vec![y],
                },
            ),
            Some(b) => {
                let p_name = g.fresh_name(&format!("{}.nobias", g.value(y).name));
                let p = g.add_node(node.name.clone(), mm, vec![x, Some(dt)], vec![p_name])?[0];
                let add = Op::Elementwise(Elementwise::Binary(BinaryFn::Add));
                push(
                    g,
                    Node {
                        name: format!("{name}.bias"),
                        op: add,
                        inputs: vec![Some(p), Some(b)],
                        outputs: vec![y],
                    },
                );
            }
        }
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Whether `node` is an `EncodedMatMul` over at least `min_rows` rows.
fn is_batched(g: &Graph, node: &Node, min_rows: usize) -> Result<bool> {
    if node.op != Op::Weights(Weights::EncodedMatMul) {
        return Ok(false);
    }
    let (Some(Some(x)), Some(Some(w))) = (node.inputs.first(), node.inputs.get(1)) else {
        return Ok(false);
    };
    let k = g.value(*w).ty.shape.last().copied().unwrap_or(0);
    let rows = g.value(*x).ty.numel()?.checked_div(k).unwrap_or(0);
    Ok(rows >= min_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::interp::Interpreter;
    use smelt_ir::{BlockFormat, DType, Encoding, OpDef, Tensor, TensorType};

    /// `EncodedMatMul` of an `[m, 32]` input with a Q8_0 weight `[6, 32]`.
    fn graph(m: usize, bias: bool) -> Graph {
        let mut g = Graph::new();
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![m, 32]))
            .unwrap();
        let vals: Vec<f32> = (0..6 * 32)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
            .collect();
        let q8 = Encoding::Block(BlockFormat::Q8_0);
        let ty = TensorType::encoded(DType::F32, vec![6, 32], q8).unwrap();
        let bytes = smelt_ir::encoding::quantize(&ty, &vals).unwrap();
        let w = g.add_const_bytes("w", ty, bytes.into()).unwrap();
        let mut ins = vec![Some(x), Some(w)];
        if bias {
            let b = Tensor::from_vec(vec![6], (0..6).map(|i| i as f32).collect()).unwrap();
            ins.push(Some(g.add_const("b", &b).unwrap()));
        }
        let op = Op::Weights(Weights::EncodedMatMul);
        let y = g.add_node("mm", op, ins, vec!["y".into()]).unwrap()[0];
        g.outputs = vec![y];
        g
    }

    #[test]
    fn many_rows_decode_once_and_compute_the_same() {
        for bias in [false, true] {
            let g = graph(5, bias);
            let x: Vec<f32> = (0..5 * 32).map(|i| (i as f32 * 0.37).sin()).collect();
            let x = Tensor::from_vec(vec![5, 32], x).unwrap();
            let want = Interpreter::new(&g).run(vec![x.clone()]).unwrap();
            let mut r = g.clone();
            assert_eq!(decode_batched(&mut r, MIN_ROWS).unwrap(), 1);
            let ops: Vec<&str> = r.nodes.iter().map(|n| n.op.name()).collect();
            let mut expect = vec!["Decode", "Transpose", "MatMul"];
            if bias {
                expect.push("Add");
            }
            assert_eq!(ops, expect);
            smelt_ir::verify::verify(&r).unwrap();
            let got = Interpreter::new(&r).run(vec![x]).unwrap();
            assert_eq!(r.value(r.outputs[0]).name, "y");
            let (a, b) = (
                got[0].as_slice::<f32>().unwrap(),
                want[0].as_slice::<f32>().unwrap(),
            );
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
            }
        }
    }

    #[test]
    fn few_rows_keep_the_encoded_product() {
        let mut g = graph(MIN_ROWS - 1, true);
        assert_eq!(decode_batched(&mut g, MIN_ROWS).unwrap(), 0);
        assert_eq!(g.nodes.len(), 1);
    }
}
