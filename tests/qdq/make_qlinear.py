"""One-node integer models with constant weights for tests/qlinear_packed.rs:
QLinearMatMul, MatMulInteger, QLinearConv and ConvInteger with shapes whose
K, N and M are not multiples of the vector width or tile, u8 and i8
activations, u8 and i8 weights, per-tensor and per-column (per-channel)
weight parameters. Writes DIR/<name>/model.onnx and DIR/<name>/input.npz."""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

T = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8, np.int32: TensorProto.INT32}


def ints(rng, shape, dt):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=np.int64).astype(dt)


def save(out, name, nodes, inputs, output, inits):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(k, T[v.dtype.type], list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", T[output[0]], output[1])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    np.savez(os.path.join(d, "input.npz"), **inputs)


def qlinear_matmul(out, name, seed, m, k, n, da, db, dy, per_column):
    rng = np.random.default_rng(seed)
    pb = (n,) if per_column else ()
    inits = {
        "sa": np.array(0.03, np.float32), "za": ints(rng, (), da),
        "b": ints(rng, (k, n), db),
        "sb": (rng.random(pb, dtype=np.float32) * 0.01 + 0.002).astype(np.float32),
        "zb": ints(rng, pb, db),
        "sy": np.array(0.7, np.float32), "zy": ints(rng, (), dy),
    }
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    save(out, name, [node], {"a": ints(rng, (m, k), da)}, (dy, [m, n]), inits)


def matmul_integer(out, name, seed, m, k, n, da, db):
    rng = np.random.default_rng(seed)
    inits = {"b": ints(rng, (k, n), db), "za": ints(rng, (), da), "zb": ints(rng, (n,), db)}
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    save(out, name, [node], {"a": ints(rng, (m, k), da)}, (np.int32, [m, n]), inits)


def qlinear_conv(out, name, seed, xs, m, kk, pads, strides, dx, dw, dy, per_channel):
    rng = np.random.default_rng(seed)
    c = xs[1]
    pw = (m,) if per_channel else ()
    inits = {
        "sx": np.array(0.02, np.float32), "zx": ints(rng, (), dx),
        "w": ints(rng, (m, c, kk, kk), dw),
        "sw": (rng.random(pw, dtype=np.float32) * 0.01 + 0.002).astype(np.float32),
        "zw": ints(rng, pw, dw) if dw == np.uint8 else np.zeros(pw, np.int8),
        "sy": np.array(0.4, np.float32), "zy": ints(rng, (), dy),
        "bias": rng.integers(-3000, 3000, size=m, dtype=np.int64).astype(np.int32),
    }
    oh = (xs[2] + pads[0] + pads[2] - kk) // strides[0] + 1
    ow = (xs[3] + pads[1] + pads[3] - kk) // strides[1] + 1
    node = helper.make_node(
        "QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"], ["y"],
        pads=pads, strides=strides, kernel_shape=[kk, kk])
    save(out, name, [node], {"x": ints(rng, xs, dx)}, (dy, [xs[0], m, oh, ow]), inits)


def conv_integer(out, name, seed, xs, m, kk, pads, dx, dw):
    rng = np.random.default_rng(seed)
    c = xs[1]
    inits = {"w": ints(rng, (m, c, kk, kk), dw), "zx": ints(rng, (), dx), "zw": ints(rng, (m,), dw)}
    oh = xs[2] + pads[0] + pads[2] - kk + 1
    ow = xs[3] + pads[1] + pads[3] - kk + 1
    node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], pads=pads, kernel_shape=[kk, kk])
    save(out, name, [node], {"x": ints(rng, xs, dx)}, (np.int32, [xs[0], m, oh, ow]), inits)


def main(out):
    u8, i8 = np.uint8, np.int8
    qlinear_matmul(out, "qmm_u8_i8_col", 1, 9, 13, 37, u8, i8, u8, True)
    qlinear_matmul(out, "qmm_i8_i8", 2, 6, 70, 19, i8, i8, i8, False)
    qlinear_matmul(out, "qmm_i8_u8_col", 3, 5, 7, 70, i8, u8, u8, True)
    matmul_integer(out, "mmi_u8_i8", 4, 7, 30, 21, u8, i8)
    matmul_integer(out, "mmi_i8_u8", 5, 4, 9, 5, i8, u8)
    qlinear_conv(out, "qconv_u8_i8_ch", 6, (1, 5, 7, 6), 19, 3, [1, 1, 1, 1], [1, 2], u8, i8, u8, True)
    qlinear_conv(out, "qconv_i8_i8", 7, (2, 3, 5, 5), 6, 3, [0, 1, 2, 0], [1, 1], i8, i8, i8, False)
    qlinear_conv(out, "qconv_u8_u8_ch", 8, (1, 4, 6, 6), 33, 1, [0, 0, 0, 0], [1, 1], u8, u8, u8, True)
    conv_integer(out, "convi_u8_i8", 9, (1, 3, 6, 5), 10, 3, [1, 1, 1, 1], u8, i8)


if __name__ == "__main__":
    main(sys.argv[1])
