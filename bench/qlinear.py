#!/usr/bin/env python3
"""Integer kernels alone: smelt vs onnxruntime on one QLinearMatMul and one
QLinearConv (issue 12's packed int8 GEMM).

Two one-node models built with ``onnx.helper`` (deterministic weights):

- ``qlinear_matmul``: ``a`` u8 [256, 1024] x constant i8 [1024, 1024], per-tensor
  scales and zero points, u8 output;
- ``qlinear_conv``: ``x`` u8 [1, 64, 56, 56], constant i8 weights [64, 64, 3, 3]
  (pads 1), per-output-channel weight scales, i32 bias, u8 output.

Each is compiled by ``smelt compile`` (the binary given by ``--smelt``,
default ``target/debug/smelt``: the generated code does not depend on how the
compiler itself was built) in every configuration of ``--configs``, checked
against onnxruntime (at most one quantization step apart: onnxruntime
requantizes in f32, smelt like the ONNX reference in f64), then timed with
the executable's ``--bench K`` next to onnxruntime on 1 thread, interleaved
over ``--runs`` rounds; medians are printed with the ratio smelt / ort.

    .venv/bin/python bench/qlinear.py
    .venv/bin/python bench/qlinear.py --configs llvm-O2-native,cranelift-O2 --runs 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: timing helpers shared with the main benchmark)

REPO_ROOT = run.REPO_ROOT
OUT_DIR = os.path.join(REPO_ROOT, "target", "bench-models")


def init(name, arr):
    return numpy_helper.from_array(arr, name)


def qlinear_matmul(m=256, k=1024, n=1024):
    rng = np.random.default_rng(1201)
    w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
    inits = [
        init("a_scale", np.array(0.02, np.float32)),
        init("a_zp", np.array(128, np.uint8)),
        init("b", w),
        init("b_scale", np.array(0.01, np.float32)),
        init("b_zp", np.array(0, np.int8)),
        init("y_scale", np.array(0.5, np.float32)),
        init("y_zp", np.array(128, np.uint8)),
    ]
    node = helper.make_node(
        "QLinearMatMul",
        ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"],
        ["y"],
    )
    graph = helper.make_graph(
        [node], "qlinear_matmul",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [m, n])],
        inits,
    )
    inputs = {"a": rng.integers(0, 256, size=(m, k), dtype=np.uint8)}
    return graph, inputs


def qlinear_conv(c=64, hw=56):
    rng = np.random.default_rng(1202)
    w = rng.integers(-127, 128, size=(c, c, 3, 3), dtype=np.int8)
    inits = [
        init("x_scale", np.array(0.02, np.float32)),
        init("x_zp", np.array(128, np.uint8)),
        init("w", w),
        init("w_scale", (rng.random(c, dtype=np.float32) * 0.01 + 0.005).astype(np.float32)),
        init("w_zp", np.zeros(c, np.int8)),
        init("y_scale", np.array(0.4, np.float32)),
        init("y_zp", np.array(128, np.uint8)),
        init("bias", rng.integers(-5000, 5000, size=c, dtype=np.int32)),
    ]
    node = helper.make_node(
        "QLinearConv",
        ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "bias"],
        ["y"],
        pads=[1, 1, 1, 1],
        kernel_shape=[3, 3],
    )
    graph = helper.make_graph(
        [node], "qlinear_conv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, c, hw, hw])],
        inits,
    )
    inputs = {"x": rng.integers(0, 256, size=(1, c, hw, hw), dtype=np.uint8)}
    return graph, inputs


MODELS = {"qlinear_matmul": qlinear_matmul, "qlinear_conv": qlinear_conv}


def save(name):
    graph, inputs = MODELS[name]()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, f"{name}.onnx")
    onnx.save(model, path)
    npz = os.path.join(OUT_DIR, f"{name}.inputs.npz")
    np.savez(npz, **inputs)
    return path, npz, inputs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smelt", default=os.path.join(REPO_ROOT, "target", "debug", "smelt"))
    ap.add_argument("--configs", default="cranelift-O2,llvm-O2,llvm-O2-native,llvm-O2-native-t2")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--k", type=int, default=10, help="timed runs per round and runtime")
    args = ap.parse_args(argv)
    configs = [run.Config(c) for c in args.configs.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path, npz, inputs = save(name)
            sess = run.ort_session(path, 1)
            ref = sess.run(None, inputs)[0]
            exes = {}
            for c in configs:
                exe = os.path.join(tmp, f"{name}-{c.name}")
                cmd = [args.smelt, "compile", path, "--target", run.TARGET, "-o", exe] + c.flags()
                subprocess.run(cmd, check=True, capture_output=True)
                out = os.path.join(tmp, f"{name}-{c.name}-out")
                os.makedirs(out, exist_ok=True)
                run.run_smelt_bench(exe, npz, 1, out)
                got = np.load(os.path.join(out, "y.npy"))
                diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))
                if diff.max() > 1:
                    raise SystemExit(f"{name} {c.name}: {int(diff.max())} steps from onnxruntime")
                exes[c.name] = (exe, int((diff > 0).sum()))
            times = {s: [] for s in exes}
            ort_times = []
            for _ in range(args.runs):
                for s, (exe, _) in exes.items():
                    times[s].append(run.run_smelt_bench(exe, npz, args.k)[1])
                ort_times += run.time_ort(sess, inputs, args.k)
            ort_ms = statistics.median(ort_times)
            rows.append((name, "onnxruntime 1-thread", ort_ms, 1.0, 0))
            for s, (_, ndiff) in exes.items():
                ms = statistics.median(times[s])
                rows.append((name, s, ms, ms / ort_ms, ndiff))
    print(f"{'model':<16} {'config':<24} {'median ms':>10} {'/ ort':>7} {'1-step diffs':>13}")
    for name, s, ms, ratio, ndiff in rows:
        print(f"{name:<16} {s:<24} {ms:>10.3f} {ratio:>7.2f} {ndiff:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
