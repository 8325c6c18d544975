"""Generate the example models and their onnxruntime reference outputs.

Each example folder gets `model.onnx` (random weights, fixed seed; the MLP's
trained on a synthetic task, with `calibration.npz` samples of it),
`input.npz` (named inputs) and `expected.npz` (onnxruntime's outputs). The
files are committed; this script regenerates them byte-identically:

    .venv/bin/python examples/make_models.py
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 17


def init(name: str, arr: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(arr, name)


def save(folder: str, graph: onnx.GraphProto, inputs: dict[str, np.ndarray]) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="smelt-examples")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    out = os.path.join(HERE, folder)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, inputs)
    for k, v in inputs.items():
        np.save(os.path.join(out, f"{k}.npy"), v)
    np.savez(os.path.join(out, "input.npz"), **inputs)
    np.savez(os.path.join(out, "expected.npz"), **dict(zip(names, results)))
    print(f"{folder}: {os.path.getsize(path)} bytes, outputs {[r.shape for r in results]}")


# The MLP's task: 10 classes in 64 dims, class k's inputs N(mu_k, 2.5² I)
# with prototypes mu_k ~ N(0, I). The classes overlap (about 90 % can be
# told apart), so the trained model's
# decisions have the margins a real classifier's have (a random-weight MLP's
# logits are near-ties on many inputs, which no 8-bit model can keep).
MLP_CLASSES, MLP_DIM, MLP_NOISE = 10, 64, 2.5


def mlp_task(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of the MLP's task: inputs [n, 64] and their labels."""
    task = np.random.default_rng(20261207)
    protos = task.standard_normal((MLP_CLASSES, MLP_DIM))
    labels = rng.integers(0, MLP_CLASSES, n)
    return (protos[labels] + MLP_NOISE * rng.standard_normal((n, MLP_DIM))).astype(np.float32), labels


def train_mlp(ws: list[np.ndarray], bs: list[np.ndarray]) -> None:
    """Full-batch Adam on softmax cross-entropy over 4096 task samples, in place, in float64."""
    x, labels = mlp_task(np.random.default_rng(1), 4096)
    x = x.astype(np.float64)
    onehot = np.eye(MLP_CLASSES)[labels]
    params = [p for pair in zip(ws, bs) for p in pair]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for step in range(1, 301):
        acts = [x]
        for i, (w, b) in enumerate(zip(ws, bs)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < 2 else z)
        logits = acts[-1] - acts[-1].max(1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        grad = (probs - onehot) / len(x)
        grads = []
        for i in reversed(range(3)):
            grads = [acts[i].T @ grad, grad.sum(0)] + grads
            if i:
                grad = (grad @ ws[i].T) * (acts[i] > 0)
        for k, (p, g) in enumerate(zip(params, grads)):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            p -= 1e-2 * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)


def mlp(rng: np.random.Generator) -> None:
    """A 3-layer MLP classifier with a symbolic batch dim, trained on `mlp_task`.

    Also writes `calibration.npz`: 32 calibration then 100 held-back task
    samples stacked for `--calibrate` (`x`: [132, 1, 64]).
    """
    dims = [64, 128, 64, 10]
    ws = [rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i]) for i in range(3)]
    bs = [0.1 * rng.standard_normal(dims[i + 1]) for i in range(3)]
    rng.standard_normal((2, 64))  # the stream the other examples draw from stays as it was
    train_mlp(ws, bs)
    nodes, inits = [], []
    x = "x"
    for i in range(3):
        w, b = ws[i].astype(np.float32), bs[i].astype(np.float32)
        inits += [init(f"fc{i}.weight", w.T.copy()), init(f"fc{i}.bias", b)]
        y = f"fc{i}_out"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], name=f"fc{i}", transB=1))
        x = y
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"relu{i}"))
            x = f"relu{i}"
    nodes.append(helper.make_node("Softmax", [x], ["probs"], name="softmax", axis=-1))
    g = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    data = np.random.default_rng(2)
    save("mlp", g, {"x": mlp_task(data, 2)[0]})
    samples, _ = mlp_task(data, 132)
    np.savez(os.path.join(HERE, "mlp", "calibration.npz"), x=samples[:, None, :])


def cnn(rng: np.random.Generator) -> None:
    """A small keyword-spotting-style CNN: conv/bn/relu, depthwise, pooling, classifier."""
    nodes, inits = [], []

    def conv(name: str, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        w = (rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))).astype(np.float32)
        inits.append(init(f"{name}.weight", w))
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}.weight"], [f"{name}_out"], name=name,
                kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group,
            )
        )
        scale = (1 + 0.1 * rng.standard_normal(cout)).astype(np.float32)
        bias = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        mean = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        var = (1 + 0.1 * rng.random(cout)).astype(np.float32)
        for p, v in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
            inits.append(init(f"{name}.bn.{p}", v))
        nodes.append(
            helper.make_node(
                "BatchNormalization",
                [f"{name}_out", f"{name}.bn.scale", f"{name}.bn.bias", f"{name}.bn.mean", f"{name}.bn.var"],
                [f"{name}_bn"], name=f"{name}.bn", epsilon=1e-5,
            )
        )
        nodes.append(helper.make_node("Relu", [f"{name}_bn"], [f"{name}_relu"], name=f"{name}.relu"))
        return f"{name}_relu"

    x = conv("conv1", "mfcc", 1, 16, 3, stride=2)
    x = conv("dw2", x, 16, 16, 3, group=16)
    x = conv("pw2", x, 16, 32, 1)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    x = conv("conv3", "pool", 32, 32, 3)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    w = (rng.standard_normal((12, 32)) / np.sqrt(32)).astype(np.float32)
    inits += [init("fc.weight", w), init("fc.bias", np.zeros(12, np.float32))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1))
    g = helper.make_graph(
        nodes,
        "kws_cnn",
        [helper.make_tensor_value_info("mfcc", TensorProto.FLOAT, [1, 1, 49, 40])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 12])],
        inits,
    )
    save("cnn", g, {"mfcc": rng.standard_normal((1, 1, 49, 40)).astype(np.float32)})


def transformer(rng: np.random.Generator) -> None:
    """One pre-norm transformer encoder block (MiniLM-like), with the
    Shape → Gather → Concat → Reshape chains a PyTorch export produces."""
    d, heads, ff = 64, 4, 128
    hd = d // heads
    nodes, inits = [], []

    def w(name: str, shape: tuple[int, ...], scale: float) -> str:
        inits.append(init(name, (scale * rng.standard_normal(shape)).astype(np.float32)))
        return name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    inits += [init("ln1.gamma", np.ones(d, np.float32)), init("ln1.beta", np.zeros(d, np.float32))]
    inits += [init("ln2.gamma", np.ones(d, np.float32)), init("ln2.beta", np.zeros(d, np.float32))]
    inits += [init("c0", np.array([0], np.int64)), init("c1", np.array([1], np.int64))]
    inits += [init("heads_hd", np.array([heads, hd], np.int64)), init("minus1", np.array([-1], np.int64))]
    inits.append(init("scale", np.array(1.0 / np.sqrt(hd), np.float32)))
    h = node("LayerNormalization", ["x", "ln1.gamma", "ln1.beta"], "ln1", axis=-1, epsilon=1e-5)
    # The dynamic reshape target: [batch, seq, heads, hd] from Shape(x).
    shp = node("Shape", ["x"], "x_shape")
    b = node("Gather", [shp, "c0"], "batch_dim", axis=0)
    s = node("Gather", [shp, "c1"], "seq_dim", axis=0)
    split_shape = node("Concat", [b, s, "heads_hd"], "split_shape", axis=0)
    merge_shape = node("Concat", [b, s, "minus1"], "merge_shape", axis=0)
    qkv = []
    for p in ("q", "k", "v"):
        y = node("MatMul", [h, w(f"{p}.weight", (d, d), 1 / np.sqrt(d))], f"{p}_proj")
        y = node("Add", [y, w(f"{p}.bias", (d,), 0.02)], f"{p}_biased")
        y = node("Reshape", [y, split_shape], f"{p}_heads")
        qkv.append(node("Transpose", [y], f"{p}_t", perm=[0, 2, 1, 3]))
    q, k, v = qkv
    kt = node("Transpose", [k], "k_tt", perm=[0, 1, 3, 2])
    scores = node("MatMul", [q, kt], "scores")
    scores = node("Mul", [scores, "scale"], "scores_scaled")
    probs = node("Softmax", [scores], "attn", axis=-1)
    ctx = node("MatMul", [probs, v], "ctx")
    ctx = node("Transpose", [ctx], "ctx_t", perm=[0, 2, 1, 3])
    ctx = node("Reshape", [ctx, merge_shape], "ctx_merged")
    o = node("MatMul", [ctx, w("o.weight", (d, d), 1 / np.sqrt(d))], "o_proj")
    x1 = node("Add", ["x", o], "resid1")
    h2 = node("LayerNormalization", [x1, "ln2.gamma", "ln2.beta"], "ln2", axis=-1, epsilon=1e-5)
    f1 = node("MatMul", [h2, w("ff1.weight", (d, ff), 1 / np.sqrt(d))], "ff1")
    f1 = node("Add", [f1, w("ff1.bias", (ff,), 0.02)], "ff1_biased")
    # GELU, erf form, as exporters decompose it.
    inits += [init("sqrt2", np.array(np.sqrt(2.0), np.float32)), init("one", np.array(1.0, np.float32)), init("half", np.array(0.5, np.float32))]
    g1 = node("Div", [f1, "sqrt2"], "gelu_div")
    g1 = node("Erf", [g1], "gelu_erf")
    g1 = node("Add", [g1, "one"], "gelu_add")
    g1 = node("Mul", [f1, g1], "gelu_mul")
    g1 = node("Mul", [g1, "half"], "gelu")
    f2 = node("MatMul", [g1, w("ff2.weight", (ff, d), 1 / np.sqrt(ff))], "ff2")
    node("Add", [x1, f2], "y")
    g = helper.make_graph(
        nodes,
        "encoder_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", d])],
        inits,
    )
    save("transformer", g, {"x": rng.standard_normal((1, 16, d)).astype(np.float32)})


def main() -> None:
    rng = np.random.default_rng(20261124)
    mlp(rng)
    cnn(rng)
    transformer(rng)


if __name__ == "__main__":
    main()
