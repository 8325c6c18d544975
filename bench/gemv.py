#!/usr/bin/env python3
"""GEMV benchmark: weight streaming of smelt's encoded matrix-vector kernels
against this machine's measured read bandwidth.

For each shape ``KxN`` (``y[1, N] = x[1, K] · W[K, N]``, an ONNX MatMul with
a random f32 weight) and each weight format (``--quantize`` q8_0, q4_0, f16,
or f32 for the unquantized kernel) this script compiles the model with each
smelt configuration (as ``bench/run.py`` spells them: ``cranelift-O2``,
``llvm-O2``, ``llvm-O2-native``, ``-tN`` for threads), checks the output
against NumPy's product with the f32 weight (a quantized weight is allowed
its format's error, see ``TOLERANCE``), and times the executables
interleaved round by round (``EXE --bench K``; smelt's median is the median
of the round medians). It reports the median time per GEMV and the weight
bytes streamed per second, as a percentage of the read bandwidth
``bench/bandwidth.rs`` measures on the same number of threads, both from
DRAM (1 GiB) and for a working set of the weight's size (a small weight
stays in the caches between runs, and its roofline is the cache's).

Usage (from the repository root):

    .venv/bin/python bench/gemv.py                               # all shapes, formats, configs
    .venv/bin/python bench/gemv.py --shapes 4096x4096 --formats q4_0 --configs llvm-O2-native
    .venv/bin/python bench/gemv.py --smelt target/debug/smelt --out target/gemv.md

The timed code is the generated executable, so a debug build of smelt
measures the same kernels as a release build (it only compiles slower).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import REPO_ROOT, TARGET, Config, log, machine, parse_configs, run_smelt_bench  # noqa: E402

SHAPES = ["4096x4096", "576x1536", "1536x576", "2048x5632"]
FORMATS = ["q8_0", "q4_0", "f16", "f32"]
CONFIGS = "cranelift-O2,llvm-O2,llvm-O2-native,llvm-O2-native-t2"
# Weight bytes per element of each format (GGUF blocks of 32: an f16 scale plus the quants).
BYTES_PER_ELEM = {"q8_0": 34 / 32, "q4_0": 18 / 32, "f16": 2.0, "f32": 4.0}
# Max abs error allowed, relative to max |y|: the format's rounding of the weight.
TOLERANCE = {"q8_0": 2e-2, "q4_0": 2e-1, "f16": 2e-3, "f32": 1e-4}
BW_RE = re.compile(r"bandwidth: (\d+) bytes, (\d+) threads: median ([0-9.]+) GB/s")


def make_model(path: str, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Writes the MatMul model; returns (x, w)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(k * 100003 + n)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    x = rng.standard_normal((1, k)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="gemv")], "gemv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return x, w


def bandwidths(exe: str, sizes: list[int], threads: list[int]) -> dict:
    """{(bytes, threads): GB/s} from bench/bandwidth.rs."""
    out = {}
    for t in sorted(set(threads)):
        p = subprocess.run([exe, "--threads", str(t), *map(str, sizes)], capture_output=True, text=True,
                           check=True)
        for m in BW_RE.finditer(p.stdout):
            out[(int(m.group(1)), int(m.group(2)))] = float(m.group(3))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=SHAPES, help="KxN shapes (default: %(default)s)")
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=FORMATS)
    ap.add_argument("--configs", default=CONFIGS, help=f"smelt configurations (default {CONFIGS})")
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--round-ms", type=float, default=200.0, help="minimum time per executable per round")
    ap.add_argument("--smelt", default=os.path.join(REPO_ROOT, "target", "release", "smelt"))
    ap.add_argument("--label", default="", help="a note for the results header (e.g. 'before')")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "target", "gemv-results.md"))
    args = ap.parse_args(argv)
    configs: list[Config] = parse_configs(args.configs)
    work = tempfile.mkdtemp(prefix="smelt-gemv-")
    bw_exe = os.path.join(work, "bandwidth")
    subprocess.run(["rustc", "-C", "opt-level=3", "-C", "target-cpu=native",
                    os.path.join(REPO_ROOT, "bench", "bandwidth.rs"), "-o", bw_exe], check=True)
    rows = []
    failed = False
    try:
        for shape in args.shapes:
            k, n = (int(v) for v in shape.split("x"))
            onnx_path = os.path.join(work, f"gemv_{k}x{n}.onnx")
            x, w = make_model(onnx_path, k, n)
            npz = os.path.join(work, f"gemv_{k}x{n}.npz")
            np.savez(npz, x=x)
            ref = (x.astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
            for fmt in args.formats:
                exes = {}
                for cfg in configs:
                    exe = os.path.join(work, f"gemv_{k}x{n}.{fmt}.{cfg.name}")
                    quant = [] if fmt == "f32" else ["--quantize", fmt]
                    p = subprocess.run([args.smelt, "compile", onnx_path, "--target", TARGET, *cfg.flags(),
                                        *quant, "-o", exe], capture_output=True, text=True)
                    if p.returncode != 0:
                        log(f"{shape} {fmt} {cfg.name}: compile failed: {(p.stderr or p.stdout).strip()[-300:]}")
                        failed = True
                        continue
                    out_dir = exe + ".out"
                    run_smelt_bench(exe, npz, 1, out_dir)
                    y = np.load(os.path.join(out_dir, "y.npy"))
                    err = float(np.max(np.abs(y - ref))) / float(np.max(np.abs(ref)))
                    if not err <= TOLERANCE[fmt]:
                        log(f"{shape} {fmt} {cfg.name}: WRONG: relative error {err:.3g}")
                        failed = True
                    exes[cfg.name] = (exe, cfg.threads, err)
                meds: dict = {c: [] for c in exes}
                ks = {c: max(3, int(args.round_ms / max(run_smelt_bench(e, npz, 3)[1], 1e-3)))
                      for c, (e, _, _) in exes.items()}
                for r in range(args.runs):
                    order = list(exes)[r % max(1, len(exes)):] + list(exes)[:r % max(1, len(exes))]
                    for c in order:
                        meds[c].append(run_smelt_bench(exes[c][0], npz, ks[c])[1])
                wbytes = int(round(k * n * BYTES_PER_ELEM[fmt]))
                for c, (_, threads, err) in exes.items():
                    rows.append(dict(shape=shape, fmt=fmt, cfg=c, threads=threads, ms=statistics.median(meds[c]),
                                     wbytes=wbytes, err=err))
                    log(f"{shape} {fmt} {c}: {rows[-1]['ms']:.4f} ms, {wbytes / rows[-1]['ms'] / 1e6:.2f} GB/s")
        sizes = sorted({r["wbytes"] for r in rows} | {1 << 30})
        bw = bandwidths(bw_exe, sizes, [c.threads for c in configs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO_ROOT).stdout.strip() or "?"
    lines = [
        f"# GEMV weight streaming {args.label}".rstrip(),
        "",
        f"- date: {date}; smelt commit {rev}; target {TARGET}; {args.runs} interleaved rounds, medians",
        f"- machine: {machine()}",
        "- read bandwidth (bench/bandwidth.rs, 1 GiB): "
        + ", ".join(f"{t} thread(s) {bw[(1 << 30, t)]:.1f} GB/s" for t in sorted({c.threads for c in configs})),
        "",
        "| K×N | format | config | weight MB | median ms | weight GB/s | % DRAM bw | % bw at that size | rel. err |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gbs = r["wbytes"] / r["ms"] / 1e6
        lines.append(f"| {r['shape']} | {r['fmt']} | {r['cfg']} | {r['wbytes'] / 1e6:.2f} | {r['ms']:.4f} | "
                     f"{gbs:.2f} | {100 * gbs / bw[(1 << 30, r['threads'])]:.0f} | "
                     f"{100 * gbs / bw[(r['wbytes'], r['threads'])]:.0f} | {r['err']:.1e} |")
    report = "\n".join(lines) + "\n"
    print(report)
    with open(args.out, "w") as f:
        f.write(report)
    log(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
