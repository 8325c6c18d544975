"""Writes accumulator.onnx, the stateful toy model of tests/state.rs.

The graph is one Add: y = s + x over f32[4]. ONNX has no notion of state,
so s is a plain graph input; `smelt ... --state s=y` makes it persistent
state whose next value is y, and after N steps y = N * x.

Run from the repository root: .venv/bin/python tests/state/make_accumulator.py
"""

import os

import onnx
from onnx import TensorProto, helper

here = os.path.dirname(os.path.abspath(__file__))
vec = [4]
graph = helper.make_graph(
    [helper.make_node("Add", ["s", "x"], ["y"], name="accumulate")],
    "accumulator",
    [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, vec),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, vec),
    ],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, vec)],
)
model = helper.make_model(
    graph,
    producer_name="smelt tests/state/make_accumulator.py",
    opset_imports=[helper.make_opsetid("", 17)],
)
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(here, "accumulator.onnx"))
