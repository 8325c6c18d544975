#!/usr/bin/env python3
"""Side-by-side benchmark: smelt native executables vs onnxruntime.

For each model of ``bench/make_models.py`` this script

1. compiles it with ``smelt compile --target x86_64-unknown-linux-gnu``
   (wall clock of the whole command: import, lowering, Cranelift, link);
2. runs the executable once with ``-o DIR`` and compares every output with
   onnxruntime's (max abs error), so a fast wrong answer cannot pass;
3. times, interleaved round by round, the smelt executable (``--bench K``,
   which does its own warm-up run before the K timed runs), onnxruntime
   single-threaded (``intra_op_num_threads = inter_op_num_threads = 1``,
   sequential execution) and onnxruntime with 2 intra-op threads, all on the
   same inputs (``<name>.inputs.npz``).

Usage (from the repository root):

    .venv/bin/python bench/run.py                        # mlp mobilenetv2 resnet18 encoder
    .venv/bin/python bench/run.py --runs 9               # more rounds
    .venv/bin/python bench/run.py --models gpt2_decode   # the 124 M-param decode step (heavy)

``--runs N`` is the number of interleaved rounds: each round runs smelt, then
onnxruntime 1-thread, then onnxruntime 2-thread, so slow drifts of a shared
machine hit all three alike. In each round a runtime does K consecutive timed
runs, K chosen per model and runtime (from a probe run) so that its share of
the round takes at least ``--round-seconds`` (K = 1 for smelt on the CNNs and
the encoder, where one scalar run already takes a second or more).
onnxruntime's median and min are over all its N x K timed runs; smelt's
executable prints only the min and median of its K runs, so smelt's median is
the median of the N round medians (the plain median when K = 1) and its min
the min of the round minima.

The results table is printed and written to ``target/bench-results.md``
together with the machine (``lscpu``), the versions and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(REPO_ROOT, "target", "bench-models")
SMELT = os.path.join(REPO_ROOT, "target", "release", "smelt")
RESULTS = os.path.join(REPO_ROOT, "target", "bench-results.md")
TARGET = "x86_64-unknown-linux-gnu"
DEFAULT_MODELS = ["mlp", "mobilenetv2", "resnet18", "encoder"]
ALL_MODELS = DEFAULT_MODELS + ["gpt2_decode"]

UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
BENCH_RE = re.compile(
    r"bench: (\d+) runs after 1 warm-up: min ([0-9.]+) (ns|us|µs|ms|s), median ([0-9.]+) (ns|us|µs|ms|s) per run"
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sanitize(name: str) -> str:
    """File name smelt gives an output (letters, digits, '-', '_', '.' kept)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def ensure_models(models: list[str]) -> None:
    missing = [m for m in models
               if not (os.path.exists(os.path.join(MODELS_DIR, f"{m}.onnx"))
                       and os.path.exists(os.path.join(MODELS_DIR, f"{m}.inputs.npz")))]
    if missing:
        log(f"generating {' '.join(missing)} into {os.path.relpath(MODELS_DIR, REPO_ROOT)}")
        subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bench", "make_models.py"),
                        MODELS_DIR, "--models", *missing], check=True, cwd=REPO_ROOT)


def build_smelt() -> None:
    log("cargo build --release -q")
    subprocess.run(["cargo", "build", "--release", "-q"], check=True, cwd=REPO_ROOT)


def param_count(path: str) -> int:
    """Elements of all float initializers except scalars (op constants) and BatchNormalization running stats."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    stats = set()
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and len(node.input) >= 5:
            stats.update(node.input[3:5])
    total = 0
    for init in model.graph.initializer:
        if init.name in stats or init.data_type != onnx.TensorProto.FLOAT or not init.dims:
            continue
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total


def run_smelt_bench(exe: str, npz: str, k: int, out_dir: str | None = None) -> tuple[float, float]:
    """One invocation of the executable's --bench K; returns (min_ms, median_ms)."""
    cmd = [exe, "--input", npz, "--bench", str(k)]
    if out_dir:
        cmd += ["-o", out_dir]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{os.path.basename(exe)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    m = BENCH_RE.search(p.stdout + p.stderr)
    if not m:
        raise RuntimeError(f"no bench line in output: {(p.stdout + p.stderr).strip()[-400:]}")
    return float(m.group(2)) * UNITS[m.group(3)], float(m.group(4)) * UNITS[m.group(5)]


def ort_session(path: str, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def time_ort(sess, feeds, k: int) -> list[float]:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def bench_model(name: str, rounds: int, round_seconds: float, work: str) -> dict:
    onnx_path = os.path.join(MODELS_DIR, f"{name}.onnx")
    npz = os.path.join(MODELS_DIR, f"{name}.inputs.npz")
    row = {"model": name, "params": param_count(onnx_path)}

    exe = os.path.join(work, name)
    log(f"[{name}] smelt compile")
    t0 = time.perf_counter()
    p = subprocess.run([SMELT, "compile", onnx_path, "--target", TARGET, "-o", exe],
                       capture_output=True, text=True)
    row["compile_s"] = time.perf_counter() - t0
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        row["error"] = f"smelt compile failed (exit {p.returncode}): {err[-1] if err else '?'}"
        log(f"[{name}] {row['error']}")
        return row
    log(f"[{name}] compiled in {row['compile_s']:.2f} s: {p.stdout.strip().splitlines()[-1]}")

    with np.load(npz) as z:
        feeds = {k: z[k] for k in z.files}
    sess1 = ort_session(onnx_path, 1)
    sess2 = ort_session(onnx_path, 2)
    names = [o.name for o in sess1.get_outputs()]
    ref = dict(zip(names, sess1.run(None, feeds)))  # also ort's warm-up
    sess2.run(None, feeds)
    ort_probe_ms = min(statistics.median(time_ort(sess1, feeds, 3)), statistics.median(time_ort(sess2, feeds, 3)))

    # Correctness (and smelt's probe run, which also sizes K).
    out_dir = os.path.join(work, f"{name}.out")
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        _, probe_ms = run_smelt_bench(exe, npz, 1, out_dir)
    except RuntimeError as e:
        row["error"] = f"smelt executable failed: {e}"
        log(f"[{name}] {row['error']}")
        return row
    err = 0.0
    for n in names:
        got = np.load(os.path.join(out_dir, sanitize(n) + ".npy"))
        if got.shape != ref[n].shape:
            raise RuntimeError(f"{name}: output {n} shape {got.shape} != onnxruntime's {ref[n].shape}")
        err = max(err, float(np.max(np.abs(got.astype(np.float64) - ref[n].astype(np.float64)))))
    row["max_abs_err"] = err
    row["ref_max_abs"] = max(float(np.max(np.abs(v))) for v in ref.values())

    k = max(1, min(1000, int(round_seconds * 1e3 / max(probe_ms, 1e-3))))
    ko = max(1, min(1000, int(round_seconds * 1e3 / max(ort_probe_ms, 1e-3))))
    row["k"], row["ko"] = k, ko
    log(f"[{name}] max abs err {err:.3g}; probe smelt {probe_ms:.3f} ms, ort {ort_probe_ms:.3f} ms -> "
        f"{rounds} rounds x ({k} smelt, {ko} + {ko} ort) runs")

    s_mins, s_meds, o1, o2 = [], [], [], []
    for r in range(rounds):
        mn, md = run_smelt_bench(exe, npz, k)
        s_mins.append(mn)
        s_meds.append(md)
        o1 += time_ort(sess1, feeds, ko)
        o2 += time_ort(sess2, feeds, ko)
        log(f"[{name}] round {r + 1}/{rounds}: smelt {md:.3f} ms, ort-1 {statistics.median(o1[-ko:]):.3f} ms, "
            f"ort-2 {statistics.median(o2[-ko:]):.3f} ms")
    row.update(smelt_med=statistics.median(s_meds), smelt_min=min(s_mins),
               ort1_med=statistics.median(o1), ort1_min=min(o1),
               ort2_med=statistics.median(o2), ort2_min=min(o2))
    return row


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    info = {}
    for line in out.splitlines():
        if ":" in line:
            key, val = line.split(":", 1)
            info[key.strip()] = val.strip()
    model = info.get("Model name", platform.processor() or "?")
    cpus = info.get("CPU(s)", str(os.cpu_count()))
    cores = info.get("Core(s) per socket", "?")
    tpc = info.get("Thread(s) per core", "?")
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {cpus} CPUs ({cores} cores per socket, {tpc} threads per core){mem}, {platform.system()} {platform.machine()}"


def fmt_ms(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| model | params | smelt compile s | smelt median ms (min) | ort 1-thread median ms (min) | smelt / ort-1 | ort 2-thread median ms (min) | max abs err |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        if "error" in r:
            comp = f"{r['compile_s']:.2f}" if "compile_s" in r else "-"
            lines.append(f"| {r['model']} | {r['params']:,} | {comp} | failed: {r['error']} | | | | |")
            continue
        ratio = r["smelt_med"] / r["ort1_med"]
        ratio_s = f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['compile_s']:.2f} "
            f"| {fmt_ms(r['smelt_med'])} ({fmt_ms(r['smelt_min'])}) "
            f"| {fmt_ms(r['ort1_med'])} ({fmt_ms(r['ort1_min'])}) "
            f"| {ratio_s} "
            f"| {fmt_ms(r['ort2_med'])} ({fmt_ms(r['ort2_min'])}) "
            f"| {r['max_abs_err']:.2g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=ALL_MODELS, default=DEFAULT_MODELS,
                    help="models to run (default: all but gpt2_decode)")
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds per model (default 5)")
    ap.add_argument("--round-seconds", type=float, default=0.25,
                    help="minimum smelt time per round; sets K runs per round (default 0.25)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--out", default=RESULTS, help="markdown results file (default: target/bench-results.md)")
    ap.add_argument("--keep", metavar="DIR", help="keep the executables and outputs in DIR")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    import onnxruntime as ort

    ensure_models(args.models)
    if not args.no_build:
        build_smelt()
    work = args.keep or tempfile.mkdtemp(prefix="smelt-bench-")
    os.makedirs(work, exist_ok=True)
    t_all = time.perf_counter()
    rows = []
    try:
        for name in args.models:
            try:
                rows.append(bench_model(name, args.runs, args.round_seconds, work))
            except Exception as e:  # keep going: one failing model must not hide the others
                rows.append({"model": name, "params": param_count(os.path.join(MODELS_DIR, f"{name}.onnx")),
                             "error": str(e).strip().splitlines()[-1]})
                log(f"[{name}] failed: {e}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO_ROOT).stdout.strip() or "?"
    ks = ", ".join(f"{r['model']} {r['k']} smelt / {r['ko']} ort" for r in rows if "k" in r)
    report = "\n".join([
        "# smelt vs onnxruntime",
        "",
        f"- date: {date}; smelt commit {rev}; target {TARGET} (Cranelift, SSE vector kernels)",
        f"- machine: {machine()}",
        f"- onnxruntime {ort.__version__} (CPUExecutionProvider, sequential execution), numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- {args.runs} interleaved rounds per model; timed runs per round: {ks}; "
        f"total {time.perf_counter() - t_all:.0f} s",
        "",
        table(rows),
        "",
        "Times in ms. smelt / ort-1 is the ratio of medians (above 1: smelt is slower). "
        "max abs err is smelt's largest absolute difference from onnxruntime over all outputs.",
        "",
    ])
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    log(f"wrote {args.out}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
