"""Writes the examples quantized by onnxruntime's static quantizer, the
models `tests/qdq_static.rs` compiles: for each of `mlp`, `cnn` and
`transformer`, `<out>/<name>/model.onnx` (QDQ, per-channel int8 weights,
uint8 activations, calibrated on a few deterministic random samples) with
`input.npz` (a held-back random input), `expected.npz` (onnxruntime's
outputs on it, graph optimizations disabled) and `steps.npz` (each output's
quantization step: the scale of the `DequantizeLinear` that produces it).

Usage: make_static.py OUT_DIR EXAMPLES_DIR
"""

import os
import sys

import numpy as np
import onnx
from make_models import run_unoptimized
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

# Concrete sizes for the examples' symbolic dimensions.
DIMS = {"batch": 2, "seq": 8}


def fix_dims(model):
    """The model with every symbolic input/output dimension made concrete."""
    for v in list(model.graph.input) + list(model.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_value = DIMS[d.dim_param]
    return model


def shapes(model):
    return {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
    }


class Reader(CalibrationDataReader):
    """Eight deterministic random samples of every input."""

    def __init__(self, inputs, seed):
        rng = np.random.default_rng(seed)
        self.data = iter(
            [{n: rng.standard_normal(s).astype(np.float32) for n, s in inputs.items()} for _ in range(8)]
        )

    def get_next(self):
        return next(self.data, None)


def output_steps(model):
    """The scale of the `DequantizeLinear` producing each graph output."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    steps = {}
    for out in model.graph.output:
        node = producer[out.name]
        if node.op_type != "DequantizeLinear":
            raise SystemExit(f"{out.name} is not produced by a DequantizeLinear but a {node.op_type}")
        steps[out.name] = np.float32(inits[node.input[1]]).reshape(())
    return steps


def main(out, examples):
    for seed, name in enumerate(["mlp", "cnn", "transformer"]):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "float.onnx")
        fixed = fix_dims(onnx.load(os.path.join(examples, name, "model.onnx")))
        onnx.save(fixed, src)
        ins = shapes(fixed)
        path = os.path.join(d, "model.onnx")
        quantize_static(src, path, Reader(ins, seed), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        model = onnx.load(path)
        rng = np.random.default_rng(100 + seed)
        inputs = {n: rng.standard_normal(s).astype(np.float32) for n, s in ins.items()}
        names, outs = run_unoptimized(path, inputs)
        np.savez(os.path.join(d, "input.npz"), **inputs)
        np.savez(os.path.join(d, "expected.npz"), **dict(zip(names, outs)))
        np.savez(os.path.join(d, "steps.npz"), **output_steps(model))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
