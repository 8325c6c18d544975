"""One-node models whose indices come from run-time inputs, for
tests/bounds.rs: Gather (axis 0 with i64 ids, axis 1 with i32 ids),
GatherElements, GatherND, ScatterND, ScatterElements and OneHot, and an
embedding feeding a MatMul (for threaded programs). Writes
DIR/<name>/model.onnx, DIR/<name>/good.npz (in-range indices, negative ones
included) and DIR/<name>/bad.npz (one index out of range; for OneHot, whose
specification defines that case, an index past the depth)."""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

T = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.int32: TensorProto.INT32}


def save(out, name, node, inputs, output, inits, good, bad, nodes=None):
    graph = helper.make_graph(
        nodes or [node], name,
        [helper.make_tensor_value_info(k, T[v.dtype.type], list(v.shape)) for k, v in good.items()],
        [helper.make_tensor_value_info("y", output[0], output[1])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    np.savez(os.path.join(d, "good.npz"), **good)
    np.savez(os.path.join(d, "bad.npz"), **{**good, **bad})


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def main(out):
    rng = np.random.default_rng(17)
    F = TensorProto.FLOAT
    # An embedding lookup: a constant table of 10 rows, token ids at run time.
    save(out, "gather", helper.make_node("Gather", ["table", "ids"], ["y"], name="embed", axis=0),
         None, (F, [3, 4]), {"table": f32(rng, 10, 4)},
         {"ids": np.array([0, -1, 9], np.int64)}, {"ids": np.array([0, 40000, 1], np.int64)})
    save(out, "gather_axis1", helper.make_node("Gather", ["x", "ids"], ["y"], name="pick", axis=1),
         None, (F, [3, 2, 2]), {},
         {"x": f32(rng, 3, 5), "ids": np.array([[4, -5], [-1, 2]], np.int32)},
         {"ids": np.array([[4, -6], [0, 0]], np.int32)})
    save(out, "gather_elements",
         helper.make_node("GatherElements", ["x", "ids"], ["y"], name="ge", axis=1),
         None, (F, [3, 2]), {},
         {"x": f32(rng, 3, 4), "ids": np.array([[0, -1], [3, -4], [1, 2]], np.int64)},
         {"ids": np.array([[0, 1], [4, 0], [1, 2]], np.int64)})
    save(out, "gather_nd", helper.make_node("GatherND", ["x", "ids"], ["y"], name="gnd"),
         None, (F, [2, 3]), {},
         {"x": f32(rng, 4, 3), "ids": np.array([[-1], [2]], np.int64)},
         {"ids": np.array([[1], [-5]], np.int64)})
    save(out, "scatter_nd", helper.make_node("ScatterND", ["x", "ids", "u"], ["y"], name="snd"),
         None, (F, [5, 3]), {},
         {"x": f32(rng, 5, 3), "ids": np.array([[-1], [1]], np.int64), "u": f32(rng, 2, 3)},
         {"ids": np.array([[0], [7]], np.int64)})
    save(out, "scatter_elements",
         helper.make_node("ScatterElements", ["x", "ids", "u"], ["y"], name="se", axis=1),
         None, (F, [3, 4]), {},
         {"x": f32(rng, 3, 4), "ids": np.array([[-4, 3]], np.int64), "u": f32(rng, 1, 2)},
         {"ids": np.array([[1, -5]], np.int64)})
    # An embedding feeding a MatMul big enough to run on several threads.
    save(out, "gather_matmul", None, None, (F, [64, 128]),
         {"table": f32(rng, 100, 128), "w": f32(rng, 128, 128)},
         {"ids": rng.integers(-100, 100, 64).astype(np.int64)},
         {"ids": np.where(np.arange(64) == 37, 100, 0).astype(np.int64)},
         nodes=[helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
                helper.make_node("MatMul", ["e", "w"], ["y"], name="proj")])
    # OneHot: an index outside [-depth, depth) gives an all-off row (the
    # specification says so), so its "bad" input must still run.
    save(out, "one_hot", helper.make_node("OneHot", ["ids", "depth", "values"], ["y"], name="oh"),
         None, (F, [3, 5]),
         {"depth": np.array(5, np.int64), "values": np.array([0.0, 1.0], np.float32)},
         {"ids": np.array([0, -1, 4], np.int64)}, {"ids": np.array([0, 7, -6], np.int64)})


if __name__ == "__main__":
    main(sys.argv[1])
