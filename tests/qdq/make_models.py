"""Writes the quantized-weight models `tests/qdq.rs` imports, each as
`<out>/<name>/model.onnx` with `input.npz` (random inputs) and
`expected.npz` (onnxruntime's outputs), plus `float.onnx`: the same model
with every weight dequantized ahead of time (what import made of it before
quantized weights stayed quantized), for the size comparison.

Usage: make_models.py OUT_DIR MLP_EXAMPLE_DIR
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(12)


def save(out, name, model, inputs, check=True):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    names, outs = run_unoptimized(path, inputs)
    np.savez(os.path.join(d, "input.npz"), **inputs)
    np.savez(os.path.join(d, "expected.npz"), **dict(zip(names, outs)))
    if check:
        save_float(model, os.path.join(d, "float.onnx"), inputs)


def run_unoptimized(path, inputs):
    """The output names of the model at `path` and onnxruntime's outputs on
    `inputs`, without graph optimizations: onnxruntime's QDQ fusions
    otherwise run `DequantizeLinear → MatMul` as an integer product on
    requantized activations, which is not what the model says (errors of
    ~5e-3)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return [o.name for o in sess.get_outputs()], sess.run(None, inputs)


def save_float(model, path, inputs):
    """The model with every all-constant node evaluated by onnxruntime into
    an f32 initializer: the float weights smelt imported before."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    consts = {t.name for t in m.graph.initializer}
    folded, keep = [], []
    for node in m.graph.node:
        if all(i in consts or i == "" for i in node.input):
            consts.update(node.output)
            folded.extend(node.output)
        else:
            keep.append(node)
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in folded)
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip(folded, sess.run(None, inputs)))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    inits.update(values)
    used = {i for n in keep for i in n.input}
    del m.graph.node[:]
    m.graph.node.extend(keep)
    del m.graph.initializer[:]
    m.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items() if k in used)
    onnx.save(m, path)


def model(nodes, inits, out_shape, opset=17, x_shape=(3, 32), extra=()):
    g = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(v, k) for k, v in inits.items()] + list(extra),
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def int4(name, dtype, values, bin_dir=None):
    """An INT4/UINT4 initializer: two values a byte, the earlier in the low
    nibble, the last high nibble 0 for an odd count; with `bin_dir`, the
    packed bytes are also written to `<bin_dir>/<name>.bin`."""
    flat = (values.reshape(-1).astype(np.int16) & 0xF).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    packed = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
    if bin_dir is not None:
        os.makedirs(bin_dir, exist_ok=True)
        with open(os.path.join(bin_dir, name + ".bin"), "wb") as f:
            f.write(packed)
    return helper.make_tensor(name, dtype, list(values.shape), packed, raw=True)


def nbits_model(ins, inits, k, n, bits, block):
    """One `com.microsoft::MatMulNBits` node, `x [3, K]` to `y [3, N]`."""
    g = helper.make_graph(
        [helper.make_node("MatMulNBits", ins, ["y"], domain="com.microsoft", K=k, N=n, bits=bits,
                          block_size=block)],
        "nbits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])],
        [numpy_helper.from_array(v, k2) for k2, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def x_input(shape=(3, 32)):
    return {"x": RNG.standard_normal(shape).astype(np.float32)}


def ints(dtype, shape):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, size=shape).astype(dtype)


def scales(shape):
    return (RNG.random(shape) * 0.02 + 0.001).astype(np.float32)


def main(out, mlp):
    k, n = 32, 24
    # MatMul(x, DQ(int8 [K, N], per output channel)) + bias.
    save(out, "matmul_i8_axis", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=1),
         helper.make_node("MatMul", ["x", "w"], ["xw"]),
         helper.make_node("Add", ["xw", "b"], ["y"])],
        {"wq": ints(np.int8, (k, n)), "ws": scales((n,)), "b": scales((n,))},
        (3, n)), x_input())
    # Gemm(x, DQ(uint8 [N, K], per tensor, zero point), transB=1) with a bias.
    save(out, "gemm_u8_tensor_zp", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"]),
         helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        {"wq": ints(np.uint8, (n, k)), "ws": np.float32(0.01), "wz": np.uint8(131),
         "b": scales((n,))},
        (3, n)), x_input())
    # Gemm(x, DQ(int8 [K, N], per axis 1, zero points)) with transB=0.
    save(out, "gemm_i8_axis_notrans", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=1),
         helper.make_node("Gemm", ["x", "w"], ["y"])],
        {"wq": ints(np.int8, (k, n)), "ws": scales((n,)), "wz": ints(np.int8, (n,))},
        (3, n)), x_input())
    # Opset 21: MatMul(x, DQ(uint8 [K, N] in blocks of 8 along K, zp)), batched x.
    save(out, "matmul_u8_blocked", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0, block_size=8),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"wq": ints(np.uint8, (k, n)), "ws": scales((k // 8, n)), "wz": ints(np.uint8, (k // 8, n))},
        (2, 3, n), opset=21, x_shape=(2, 3, k)), x_input((2, 3, k)))
    # The weight-only form: MatMul(x, Mul(Cast(int8 [K, N]), scale [N])).
    save(out, "cast_mul_i8", model(
        [helper.make_node("Cast", ["wq"], ["wf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["wf", "ws"], ["w"]),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"wq": ints(np.int8, (k, n)), "ws": scales((n,))},
        (3, n)), x_input())
    # Conv(x, DQ(int8 [M, C, 3, 3], per output channel)) with a bias.
    cx = (1, 3, 8, 8)
    save(out, "conv_i8_axis", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0),
         helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        {"wq": ints(np.int8, (8, 3, 3, 3)), "ws": scales((8,)), "b": scales((8,))},
        (1, 8, 8, 8), x_shape=cx), x_input(cx))
    # Conv(x, DQ(uint8 [M, C, 1, 1], per tensor, zero point)), stride 2.
    save(out, "conv_u8_tensor_zp", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"]),
         helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2])],
        {"wq": ints(np.uint8, (16, 3, 1, 1)), "ws": np.float32(0.01), "wz": np.uint8(120)},
        (1, 16, 4, 4), x_shape=cx), x_input(cx))
    # Opset 21: MatMul(x, DQ(int16 [K, N], per output channel, zero points)).
    save(out, "matmul_i16_axis", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=1),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"wq": ints(np.int16, (k, n)), "ws": scales((n,)) * 1e-3, "wz": ints(np.int16, (n,))},
        (3, n), opset=21), x_input())
    # Opset 21: Conv(x, DQ(INT4 [M, C, 3, 3], per output channel)): an odd
    # element count, so the last byte holds one nibble; its packed bytes
    # are written to `wq.bin` for the byte-for-byte check.
    q4 = RNG.integers(-8, 8, size=(5, 3, 3, 3)).astype(np.int8)
    save(out, "conv_i4_axis", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0),
         helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        {"ws": scales((5,))}, (1, 5, 8, 8), opset=21, x_shape=cx,
        extra=[int4("wq", TensorProto.INT4, q4, os.path.join(out, "conv_i4_axis"))]), x_input(cx))
    # Opset 21: MatMul(x, DQ(UINT4 [K, N] in blocks of 16 along K, zero points)).
    q4 = RNG.integers(0, 16, size=(k, n)).astype(np.uint8)
    z4 = RNG.integers(0, 16, size=(k // 16, n)).astype(np.uint8)
    save(out, "matmul_u4_blocked", model(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0, block_size=16),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"ws": scales((k // 16, n))}, (3, n), opset=21,
        extra=[int4("wq", TensorProto.UINT4, q4), int4("wz", TensorProto.UINT4, z4)]), x_input())
    # onnxruntime's MatMulNBits with 8 bits: blocks of 32 (K = 80 pads the
    # last one) with zero points, then blocks of 16 with a bias.
    for name, kk, bs, with_zp in [("nbits8_zp_padded", 80, 32, True), ("nbits8_bias", 48, 16, False)]:
        nb = -(-kk // bs)
        q = RNG.integers(0, 256, size=(n, nb * bs)).astype(np.uint8)
        q[:, kk:] = 0
        inits = {"B": q.reshape(n, nb, bs), "S": scales((n * nb,))}
        ins = ["x", "B", "S"]
        if with_zp:
            inits["Z"] = RNG.integers(0, 256, size=(n * nb,)).astype(np.uint8)
            ins.append("Z")
        else:
            inits["bias"] = scales((n,))
            ins += ["", "", "bias"]
        save(out, name, nbits_model(ins, inits, kk, n, 8, bs), x_input((3, kk)), check=False)
    # onnxruntime's MatMulNBits: 4-bit blocks of 16 along K; K = 40 pads the
    # last block; with packed zero points, then without (8) and with a bias.
    for name, kk, with_zp in [("nbits_zp_padded", 40, True), ("nbits_bias", 32, False)]:
        bs, nb = 16, -(-kk // 16)
        q = RNG.integers(0, 16, size=(n, nb * bs)).astype(np.uint8)
        q[:, kk:] = 0
        packed = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(n, nb, bs // 2)
        inits = {"B": packed, "S": scales((n * nb,))}
        ins = ["x", "B", "S"]
        if with_zp:
            z = RNG.integers(0, 16, size=(n, 2 * (-(-nb // 2)))).astype(np.uint8)
            inits["Z"] = (z[:, 0::2] | (z[:, 1::2] << 4)).reshape(-1)
            ins.append("Z")
        else:
            inits["bias"] = scales((n,))
            ins += ["", "", "bias"]
        save(out, name, nbits_model(ins, inits, kk, n, 4, bs), x_input((3, kk)), check=False)
    # The MLP example through onnxruntime's static quantizer (QDQ, per channel).
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": RNG.standard_normal((2, 64)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.data, None)

    d = os.path.join(out, "mlp_qdq")
    os.makedirs(d, exist_ok=True)
    fixed = onnx.load(os.path.join(mlp, "model.onnx"))
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    fixed.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 2
    src = os.path.join(d, "float_in.onnx")
    onnx.save(fixed, src)
    path = os.path.join(d, "model.onnx")
    quantize_static(src, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    save(out, "mlp_qdq", onnx.load(path), {"x": RNG.standard_normal((2, 64)).astype(np.float32)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
