"""A small model whose memory plan hits every aliasing case, with
onnxruntime's outputs: views of a graph input (one of them a graph output),
a chain of views of a computed value that is a graph output, element-wise
chains running in place (and not where an input is read later or
broadcast), a view of a constant, a graph input that is also a
graph output, and inference Dropout with its mask.

    python aliasing_model.py OUT_DIR   # writes model.onnx, input.npz, expected.npz
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
f32 = TensorProto.FLOAT
rng = np.random.default_rng(20251125)
x = rng.standard_normal((2, 3)).astype(np.float32)
y = rng.standard_normal((6,)).astype(np.float32)
k = rng.standard_normal((2, 3)).astype(np.float32)

inits = [
    numpy_helper.from_array(np.array([6], np.int64), "shape6"),
    numpy_helper.from_array(np.array([0], np.int64), "axes0"),
    numpy_helper.from_array(k, "k"),
]
nodes = [
    # A computed value viewed twice in a chain; the chain's end is an output.
    helper.make_node("Relu", ["x"], ["a"]),
    helper.make_node("Reshape", ["a", "shape6"], ["r1"]),
    helper.make_node("Identity", ["r1"], ["r2"]),
    # Element-wise chain: s is new, b and c may write over it.
    helper.make_node("Add", ["r2", "y"], ["s"]),
    helper.make_node("Neg", ["s"], ["b"]),
    helper.make_node("Sigmoid", ["b"], ["c"]),
    helper.make_node("Mul", ["c", "c"], ["c2"]),
    # Views of the graph input: one feeds an op, one is an output.
    helper.make_node("Reshape", ["x", "shape6"], ["xv"]),
    helper.make_node("Unsqueeze", ["xv", "axes0"], ["xu"]),
    helper.make_node("Squeeze", ["xu", "axes0"], ["xs"]),
    helper.make_node("Exp", ["xs"], ["e"]),
    helper.make_node("Flatten", ["x"], ["xf"], axis=0),
    # A view of a constant, used by an element-wise op that may write over e.
    helper.make_node("Reshape", ["k", "shape6"], ["kv"]),
    helper.make_node("Mul", ["kv", "e"], ["m"]),
    # Dropout at inference: the data is a view, the mask is filled.
    helper.make_node("Dropout", ["m"], ["dm", "mask"]),
    helper.make_node("Add", ["dm", "c2"], ["z0"]),
    # s is read again after b: b must not have written over it.
    helper.make_node("Sub", ["z0", "s"], ["z1"]),
    # A computed [1] broadcast over [6]: never written over (another size).
    helper.make_node("ReduceSum", ["y"], ["rs"], keepdims=1),
    helper.make_node("Relu", ["rs"], ["rr"]),
    helper.make_node("Add", ["rr", "z1"], ["z"]),
]
outputs = [
    helper.make_tensor_value_info("r2", f32, [6]),
    helper.make_tensor_value_info("z", f32, [6]),
    helper.make_tensor_value_info("x", f32, [2, 3]),
    helper.make_tensor_value_info("xf", f32, [1, 6]),
    helper.make_tensor_value_info("mask", TensorProto.BOOL, [6]),
    helper.make_tensor_value_info("xv", f32, [6]),
]
graph = helper.make_graph(
    nodes,
    "aliasing",
    [helper.make_tensor_value_info("x", f32, [2, 3]), helper.make_tensor_value_info("y", f32, [6])],
    outputs,
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
os.makedirs(out, exist_ok=True)
onnx.save(model, os.path.join(out, "model.onnx"))
np.savez(os.path.join(out, "input.npz"), x=x, y=y)
sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
res = sess.run(None, {"x": x, "y": y})
np.savez(os.path.join(out, "expected.npz"), **{o.name: r for o, r in zip(outputs, res)})
