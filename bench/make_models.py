#!/usr/bin/env python3
"""Generate deterministic ONNX benchmark models with random weights.

Models are built with ``onnx.helper`` and NumPy only (no torch), opset 17,
IR version 8, float32, batch 1, fully static shapes. Every model and its
``<name>.inputs.npz`` are byte-identical across runs: weights come from a
NumPy PCG64 generator seeded from a fixed base seed and the model name, and
the .npz files are written with a fixed zip timestamp.

Usage (from the repository root):

    .venv/bin/python bench/make_models.py                   # -> target/bench-models
    .venv/bin/python bench/make_models.py OUT_DIR --check   # + run each with onnxruntime
    .venv/bin/python bench/make_models.py --models mlp resnet18 --check

See bench/README.md for what each model contains.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import sys
import tempfile
import time
import zipfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
BASE_SEED = 20240917
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "target", "bench-models")


def rng_for(tag: str) -> np.random.Generator:
    """Independent, reproducible generator per model / input set."""
    return np.random.default_rng(np.random.SeedSequence([BASE_SEED, zlib.crc32(tag.encode())]))


# --------------------------------------------------------------------------
# Graph builder
# --------------------------------------------------------------------------


class Builder:
    """Tiny helper that collects nodes and initializers with unique names."""

    def __init__(self, name: str):
        self.name = name
        self.rng = rng_for(name)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counts: dict[str, int] = {}
        self._consts: dict[tuple, str] = {}
        # parameter bookkeeping: every float initializer is a "weight";
        # BatchNormalization running mean/var are counted separately so the
        # trainable total can be compared with torchvision's numbers.
        self.n_params = 0
        self.n_bn_stats = 0

    def _uniq(self, base: str) -> str:
        n = self._counts.get(base, 0)
        self._counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    # -- initializers -----------------------------------------------------
    def init(self, name: str, arr: np.ndarray, bn_stat: bool = False) -> str:
        name = self._uniq(name)
        self.inits.append(numpy_helper.from_array(arr, name))
        if arr.dtype == np.float32 and arr.ndim >= 1:
            if bn_stat:
                self.n_bn_stats += arr.size
            else:
                self.n_params += arr.size
        return name

    def const(self, value, dtype=np.float32) -> str:
        """Shared small constant (scalars, shape vectors); not counted as params."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            base = "const_" + ("_".join(str(int(v)) for v in arr.ravel()) if arr.dtype == np.int64 else "f")
            name = self._uniq(base.replace("-", "m"))
            self.inits.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def normal(self, name: str, shape, std: float, mean: float = 0.0) -> str:
        a = self.rng.standard_normal(shape, dtype=np.float32)
        a *= np.float32(std)
        if mean:
            a += np.float32(mean)
        return self.init(name, a)

    def uniform(self, name: str, shape, lo: float, hi: float, bn_stat: bool = False) -> str:
        a = self.rng.random(shape, dtype=np.float32)
        a *= np.float32(hi - lo)
        a += np.float32(lo)
        return self.init(name, a, bn_stat=bn_stat)

    # -- nodes -------------------------------------------------------------
    def op(self, op_type: str, inputs, name: str | None = None, n_out: int = 1, **attrs):
        base = self._uniq(name or op_type)
        outs = [base if n_out == 1 else f"{base}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=base, **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name: str, shape, elem=TensorProto.FLOAT) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def output(self, value: str, name: str, shape, elem=TensorProto.FLOAT) -> str:
        # rename by an Identity-free trick: the producing node's output is renamed
        for node in reversed(self.nodes):
            if value in node.output:
                idx = list(node.output).index(value)
                node.output[idx] = name
                for other in self.nodes:
                    for j, inp in enumerate(other.input):
                        if inp == value:
                            other.input[j] = name
                break
        else:
            raise ValueError(f"no producer for {value}")
        self.outputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="smelt-bench",
            producer_version="1",
        )
        m.ir_version = IR_VERSION
        return m

    # -- layer helpers -----------------------------------------------------
    def conv_bn(self, x, cin, cout, k, stride=1, groups=1, prefix="conv", gamma=(0.5, 1.5)):
        """Conv (no bias, as exporters emit before fusion) + BatchNormalization."""
        fan_in = (cin // groups) * k * k
        w = self.normal(f"{prefix}.weight", (cout, cin // groups, k, k), math.sqrt(2.0 / fan_in))
        pad = k // 2
        y = self.op("Conv", [x, w], name=f"{prefix}", kernel_shape=[k, k], strides=[stride, stride],
                    pads=[pad, pad, pad, pad], group=groups, dilations=[1, 1])
        return self.bn(y, cout, prefix=f"{prefix}.bn", gamma=gamma)

    def bn(self, x, c, prefix, gamma=(0.5, 1.5)):
        # Realistic-looking inference statistics: gamma around 1, small beta,
        # running mean near 0, running var around the He-init output variance.
        g = self.uniform(f"{prefix}.weight", (c,), *gamma)
        b = self.normal(f"{prefix}.bias", (c,), 0.1)
        mean = self.rng.standard_normal((c,), dtype=np.float32)
        mean *= np.float32(0.1)
        mu = self.init(f"{prefix}.running_mean", mean, bn_stat=True)
        var = self.uniform(f"{prefix}.running_var", (c,), 0.5, 2.0, bn_stat=True)
        return self.op("BatchNormalization", [x, g, b, mu, var], name=prefix, epsilon=1e-5, momentum=0.9)

    def relu6(self, x):
        return self.op("Clip", [x, self.const(0.0), self.const(6.0)], name="Clip")

    def linear(self, x, din, dout, prefix, std=0.02):
        """MatMul with [in, out] weight + Add bias (transformer-exporter style)."""
        w = self.normal(f"{prefix}.weight", (din, dout), std)
        b = self.normal(f"{prefix}.bias", (dout,), 0.02)
        y = self.op("MatMul", [x, w], name=f"{prefix}.MatMul")
        return self.op("Add", [y, b], name=f"{prefix}.Add")

    def layernorm(self, x, d, prefix, eps):
        g = self.normal(f"{prefix}.weight", (d,), 0.05, mean=1.0)
        b = self.normal(f"{prefix}.bias", (d,), 0.02)
        return self.op("LayerNormalization", [x, g, b], name=prefix, axis=-1, epsilon=eps)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def build_mlp():
    b = Builder("mlp")
    x = b.input("input", [1, 784])
    dims = [784, 1024, 1024, 10]
    for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:])):
        w = b.normal(f"fc{i}.weight", (dout, din), math.sqrt(2.0 / din))
        bias = b.normal(f"fc{i}.bias", (dout,), 0.01)
        x = b.op("Gemm", [x, w, bias], name=f"fc{i}", transB=1, alpha=1.0, beta=1.0)
        if i < len(dims) - 2:
            x = b.op("Relu", [x], name=f"relu{i}")
    x = b.op("Softmax", [x], name="softmax", axis=-1)
    b.output(x, "output", [1, 10])
    rng = rng_for("mlp.inputs")
    inputs = {"input": rng.random((1, 784), dtype=np.float32)}
    return b, inputs


def classify(b, x, cin, gap, fc, w_std):
    """The image classifiers' head: GlobalAveragePool (node `gap`), Flatten and
    a Gemm (`fc`) from `cin` features to 1000 classes, the graph's output."""
    x = b.op("GlobalAveragePool", [x], name=gap)
    x = b.op("Flatten", [x], name="flatten", axis=1)
    w = b.normal(f"{fc}.weight", (1000, cin), w_std)
    bias = b.normal(f"{fc}.bias", (1000,), 0.01)
    x = b.op("Gemm", [x, w, bias], name=fc, transB=1, alpha=1.0, beta=1.0)
    b.output(x, "output", [1, 1000])


def image_input(model):
    """A random 1×3×224×224 image for `model`, from its own seed."""
    rng = rng_for(f"{model}.inputs")
    return {"input": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}


def build_mobilenetv2():
    b = Builder("mobilenetv2")
    x = b.input("input", [1, 3, 224, 224])
    # torchvision mobilenet_v2(width_mult=1.0): t, c, n, s
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    x = b.relu6(b.conv_bn(x, 3, 32, 3, stride=2, prefix="features.0"))
    cin = 32
    idx = 1
    for t, c, n, s in cfg:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{idx}"
            hidden = cin * t
            y = x
            if t != 1:
                y = b.relu6(b.conv_bn(y, cin, hidden, 1, prefix=f"{p}.expand"))
            y = b.relu6(b.conv_bn(y, hidden, hidden, 3, stride=stride, groups=hidden, prefix=f"{p}.dw"))
            y = b.conv_bn(y, hidden, c, 1, prefix=f"{p}.project")
            if stride == 1 and cin == c:
                y = b.op("Add", [x, y], name=f"{p}.add")
            x = y
            cin = c
            idx += 1
    x = b.relu6(b.conv_bn(x, cin, 1280, 1, prefix=f"features.{idx}"))
    classify(b, x, 1280, gap="gap", fc="classifier", w_std=0.01)
    return b, image_input("mobilenetv2")


def build_resnet18():
    b = Builder("resnet18")
    x = b.input("input", [1, 3, 224, 224])
    x = b.op("Relu", [b.conv_bn(x, 3, 64, 7, stride=2, prefix="conv1")], name="relu")
    x = b.op("MaxPool", [x], name="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for blk in range(2):
            p = f"layer{stage}.{blk}"
            stride = 2 if (blk == 0 and stage > 1) else 1
            y = b.op("Relu", [b.conv_bn(x, cin, cout, 3, stride=stride, prefix=f"{p}.conv1")], name=f"{p}.relu1")
            # smaller gamma on the residual branch's last BN, as in trained ResNets
            y = b.conv_bn(y, cout, cout, 3, prefix=f"{p}.conv2", gamma=(0.1, 0.5))
            if stride != 1 or cin != cout:
                sc = b.conv_bn(x, cin, cout, 1, stride=stride, prefix=f"{p}.downsample")
            else:
                sc = x
            y = b.op("Add", [y, sc], name=f"{p}.add")
            x = b.op("Relu", [y], name=f"{p}.relu2")
            cin = cout
    classify(b, x, 512, gap="avgpool", fc="fc", w_std=math.sqrt(1.0 / 512))
    return b, image_input("resnet18")


ENC_HIDDEN, ENC_HEADS, ENC_FFN, ENC_SEQ = 768, 12, 3072, 128


def build_encoder():
    b = Builder("encoder")
    D, H, F, S = ENC_HIDDEN, ENC_HEADS, ENC_FFN, ENC_SEQ
    dh = D // H
    x = b.input("hidden_states", [1, S, D])
    heads_shape = b.const([1, S, H, dh], np.int64)
    merged_shape = b.const([1, S, D], np.int64)

    def to_heads(t, perm):
        t = b.op("Reshape", [t, heads_shape], name="Reshape")
        return b.op("Transpose", [t], name="Transpose", perm=perm)

    q = to_heads(b.linear(x, D, D, "attention.self.query"), [0, 2, 1, 3])  # [1,H,S,dh]
    k = to_heads(b.linear(x, D, D, "attention.self.key"), [0, 2, 3, 1])    # [1,H,dh,S] = K^T
    v = to_heads(b.linear(x, D, D, "attention.self.value"), [0, 2, 1, 3])  # [1,H,S,dh]
    scores = b.op("MatMul", [q, k], name="attention.scores")               # [1,H,S,S]
    scores = b.op("Mul", [scores, b.const(1.0 / math.sqrt(dh))], name="attention.scale")
    probs = b.op("Softmax", [scores], name="attention.softmax", axis=-1)
    ctx = b.op("MatMul", [probs, v], name="attention.context")             # [1,H,S,dh]
    ctx = b.op("Transpose", [ctx], name="Transpose", perm=[0, 2, 1, 3])
    ctx = b.op("Reshape", [ctx, merged_shape], name="Reshape")
    attn = b.linear(ctx, D, D, "attention.output.dense")
    h = b.op("Add", [attn, x], name="attention.output.residual")
    h = b.layernorm(h, D, "attention.output.LayerNorm", eps=1e-12)

    f = b.linear(h, D, F, "intermediate.dense")
    # GELU, erf form as exported by PyTorch: x * 0.5 * (1 + erf(x / sqrt(2)))
    g = b.op("Div", [f, b.const(math.sqrt(2.0))], name="gelu.Div")
    g = b.op("Erf", [g], name="gelu.Erf")
    g = b.op("Add", [g, b.const(1.0)], name="gelu.Add")
    g = b.op("Mul", [f, g], name="gelu.Mul")
    g = b.op("Mul", [g, b.const(0.5)], name="gelu.Mul")
    o = b.linear(g, F, D, "output.dense")
    o = b.op("Add", [o, h], name="output.residual")
    o = b.layernorm(o, D, "output.LayerNorm", eps=1e-12)
    b.output(o, "output", [1, S, D])
    rng = rng_for("encoder.inputs")
    inputs = {"hidden_states": rng.standard_normal((1, S, D), dtype=np.float32)}
    return b, inputs


GPT_LAYERS, GPT_HIDDEN, GPT_HEADS, GPT_FFN, GPT_VOCAB, GPT_PAST = 12, 768, 12, 3072, 50257, 127


def build_gpt2_decode():
    b = Builder("gpt2_decode")
    L, D, H, F, V, T = GPT_LAYERS, GPT_HIDDEN, GPT_HEADS, GPT_FFN, GPT_VOCAB, GPT_PAST
    dh = D // H
    # The input is the already-embedded token (wte[token] + wpe[position]):
    # no Gather, so the wte table is not stored twice (only its transpose, for
    # the tied LM head) and the file stays at GPT-2-small's ~124 M params.
    x = b.input("token_embedding", [1, 1, D])
    past = []
    for i in range(L):
        past.append((b.input(f"past_key_{i}", [1, H, T, dh]), b.input(f"past_value_{i}", [1, H, T, dh])))
    heads_shape = b.const([1, 1, H, dh], np.int64)
    merged_shape = b.const([1, 1, D], np.int64)
    split_sizes = b.const([D, D, D], np.int64)
    scale = b.const(1.0 / math.sqrt(dh))
    c_gelu = b.const(math.sqrt(2.0 / math.pi))
    proj_std = 0.02 / math.sqrt(2 * L)  # GPT-2's scaled init for residual projections

    presents = []
    h = x
    for i in range(L):
        p = f"h.{i}"
        a = b.layernorm(h, D, f"{p}.ln_1", eps=1e-5)
        qkv = b.linear(a, D, 3 * D, f"{p}.attn.c_attn")                        # [1,1,3D]
        q, k, v = b.op("Split", [qkv, split_sizes], name=f"{p}.attn.Split", n_out=3, axis=-1)
        q, k, v = (b.op("Transpose", [b.op("Reshape", [t, heads_shape], name=f"{p}.attn.Reshape")],
                        name=f"{p}.attn.Transpose", perm=[0, 2, 1, 3]) for t in (q, k, v))  # [1,H,1,dh]
        pk, pv = past[i]
        k_all = b.op("Concat", [pk, k], name=f"{p}.attn.present_key", axis=2)   # [1,H,T+1,dh]
        v_all = b.op("Concat", [pv, v], name=f"{p}.attn.present_value", axis=2)
        presents.append((k_all, v_all))
        kt = b.op("Transpose", [k_all], name=f"{p}.attn.Transpose", perm=[0, 1, 3, 2])
        s = b.op("MatMul", [q, kt], name=f"{p}.attn.scores")                   # [1,H,1,T+1]
        s = b.op("Mul", [s, scale], name=f"{p}.attn.scale")
        s = b.op("Softmax", [s], name=f"{p}.attn.softmax", axis=-1)
        c = b.op("MatMul", [s, v_all], name=f"{p}.attn.context")               # [1,H,1,dh]
        c = b.op("Transpose", [c], name=f"{p}.attn.Transpose", perm=[0, 2, 1, 3])
        c = b.op("Reshape", [c, merged_shape], name=f"{p}.attn.Reshape")
        c = b.linear(c, D, D, f"{p}.attn.c_proj", std=proj_std)
        h = b.op("Add", [h, c], name=f"{p}.residual1")

        m = b.layernorm(h, D, f"{p}.ln_2", eps=1e-5)
        f = b.linear(m, D, F, f"{p}.mlp.c_fc")
        # GELU, tanh form (GPT-2 "gelu_new"):
        # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        g = b.op("Pow", [f, b.const(3.0)], name=f"{p}.mlp.gelu.Pow")
        g = b.op("Mul", [g, b.const(0.044715)], name=f"{p}.mlp.gelu.Mul")
        g = b.op("Add", [f, g], name=f"{p}.mlp.gelu.Add")
        g = b.op("Mul", [g, c_gelu], name=f"{p}.mlp.gelu.Mul")
        g = b.op("Tanh", [g], name=f"{p}.mlp.gelu.Tanh")
        g = b.op("Add", [g, b.const(1.0)], name=f"{p}.mlp.gelu.Add")
        hx = b.op("Mul", [f, b.const(0.5)], name=f"{p}.mlp.gelu.Mul")
        g = b.op("Mul", [hx, g], name=f"{p}.mlp.gelu.Mul")
        f = b.linear(g, F, D, f"{p}.mlp.c_proj", std=proj_std)
        h = b.op("Add", [h, f], name=f"{p}.residual2")

    h = b.layernorm(h, D, "ln_f", eps=1e-5)
    # Tied LM head: wte^T stored as its own [D, V] initializer.
    wte_t = b.normal("lm_head.weight_transposed", (D, V), 0.02)
    logits = b.op("MatMul", [h, wte_t], name="lm_head")
    b.output(logits, "logits", [1, 1, V])
    for i, (k_all, v_all) in enumerate(presents):
        b.output(k_all, f"present_key_{i}", [1, H, T + 1, dh])
        b.output(v_all, f"present_value_{i}", [1, H, T + 1, dh])

    rng = rng_for("gpt2_decode.inputs")
    inputs = {"token_embedding": rng.standard_normal((1, 1, D), dtype=np.float32)}
    inputs["token_embedding"] *= np.float32(0.1)
    for i in range(L):
        inputs[f"past_key_{i}"] = rng.standard_normal((1, H, T, dh), dtype=np.float32)
        inputs[f"past_value_{i}"] = rng.standard_normal((1, H, T, dh), dtype=np.float32)
    return b, inputs


MODELS = {
    "mlp": (build_mlp, False),
    "mobilenetv2": (build_mobilenetv2, False),
    "resnet18": (build_resnet18, False),
    "encoder": (build_encoder, False),
    "gpt2_decode": (build_gpt2_decode, True),  # external data
}

# int8 variants: the float model quantized by onnxruntime's own quantizer
# (`quantize_static`, QDQ format, int8 weights per output channel, int8
# activations per tensor, MinMax calibration on CALIB_SAMPLES random inputs
# drawn like the benchmark input), so smelt and onnxruntime run the same
# QDQ graph.
QUANTIZED = {
    "mobilenetv2_int8": "mobilenetv2",
    "resnet18_int8": "resnet18",
    "encoder_int8": "encoder",
}
CALIB_SAMPLES = 8


def quantize_qdq(float_path: str, out_path: str, inputs: dict[str, np.ndarray], tag: str) -> None:
    """`float_path` quantized to QDQ int8 by onnxruntime into `out_path`."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = rng_for(f"{tag}.calibration")
    samples = [{k: rng.standard_normal(v.shape, dtype=np.float32) for k, v in inputs.items()}
               for _ in range(CALIB_SAMPLES)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    # onnxruntime's recommended pre-processing: shape inference and its graph
    # optimizer (BatchNormalization folded into Conv), as a deployed model has.
    prepared = float_path + ".prepared.onnx"
    quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
    logging.getLogger().setLevel(logging.ERROR)  # its per-tensor advice is noise here
    quantize_static(prepared, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    onnx.checker.check_model(out_path, full_check=True)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez, but with a fixed zip timestamp so the file is reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def save_model(model: onnx.ModelProto, out_dir: str, name: str, external: bool) -> list[str]:
    path = os.path.join(out_dir, f"{name}.onnx")
    files = [path]
    if external:
        location = f"{name}.weights"
        data_path = os.path.join(out_dir, location)
        # onnx appends to an existing external-data file: start from scratch.
        if os.path.exists(data_path):
            os.remove(data_path)
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=location, size_threshold=1024)
        os.chmod(data_path, 0o644)  # onnx creates it 0600
        files.append(data_path)
    else:
        onnx.save(model, path)
    onnx.checker.check_model(path, full_check=True)
    return files


def run_check(out_dir: str, name: str, inputs: dict[str, np.ndarray]) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(os.path.join(out_dir, f"{name}.onnx"), so,
                                providers=["CPUExecutionProvider"])
    outs = sess.run(None, inputs)  # warm-up / validity run
    names = [o.name for o in sess.get_outputs()]
    for n, o in zip(names, outs):
        if not np.all(np.isfinite(o)):
            raise RuntimeError(f"{name}: output {n} has non-finite values")
    shown = list(zip(names, outs))
    if len(shown) > 3:
        shown = shown[:3]
    for n, o in shown:
        print(f"    {n}: {list(o.shape)}  mean={float(o.mean()):+.4g} std={float(o.std()):.4g}")
    if len(names) > 3:
        print(f"    ... {len(names) - 3} more outputs")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        sess.run(None, inputs)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times)) * 1e3
    print(f"    onnxruntime 1 thread: median of 5 = {med:.3f} ms")
    return med


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default=DEFAULT_OUT,
                    help=f"output folder (default: {os.path.relpath(DEFAULT_OUT, os.getcwd())})")
    ap.add_argument("--check", action="store_true",
                    help="run each model once with onnxruntime (single thread) and time 5 runs")
    ap.add_argument("--models", nargs="+", choices=list(MODELS) + list(QUANTIZED),
                    default=list(MODELS),
                    help="subset of models to generate (default: all)")
    args = ap.parse_args(argv)

    os.makedirs(args.out_dir, exist_ok=True)
    t_all = time.perf_counter()
    summary = []
    for name in args.models:
        source = QUANTIZED.get(name, name)
        build, external = MODELS[source]
        t0 = time.perf_counter()
        b, inputs = build()
        model = b.model()
        n_params, n_stats = b.n_params, b.n_bn_stats
        n_nodes = len(b.nodes)
        del b
        if source != name:
            with tempfile.TemporaryDirectory() as tmp:
                float_path = save_model(model, tmp, source, external)[0]
                files = [os.path.join(args.out_dir, f"{name}.onnx")]
                quantize_qdq(float_path, files[0], inputs, name)
            n_nodes = len(onnx.load(files[0]).graph.node)
        else:
            files = save_model(model, args.out_dir, name, external)
        del model
        save_npz(os.path.join(args.out_dir, f"{name}.inputs.npz"), inputs)
        size = sum(os.path.getsize(f) for f in files)
        extra = f" (+{n_stats:,} BN running stats = {n_params + n_stats:,} stored)" if n_stats else ""
        print(f"{name}: {n_params:,} params{extra}, {n_nodes} nodes, "
              f"{size / 2**20:.1f} MiB, {time.perf_counter() - t0:.1f} s")
        med = run_check(args.out_dir, name, inputs) if args.check else None
        summary.append((name, n_params, med))
    print(f"\n{'model':<12} {'params':>13} {'ort 1-thread median':>20}")
    for name, n_params, med in summary:
        lat = f"{med:.3f} ms" if med is not None else "-"
        print(f"{name:<12} {n_params:>13,} {lat:>20}")
    print(f"total {time.perf_counter() - t_all:.1f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
