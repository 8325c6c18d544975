#!/usr/bin/env python3
"""Side-by-side benchmark: smelt native executables vs onnxruntime.

For each model of ``bench/make_models.py`` and each smelt configuration
(``--configs``, e.g. ``cranelift-O2,llvm-O2,llvm-O0,llvm-O3``: the code
generator, ``--backend cranelift|llvm``, and the graph optimizer's level,
``--opt-level 0..3``) this script

1. compiles the model with ``smelt compile --target x86_64-unknown-linux-gnu
   --backend B --opt-level N`` (wall clock of the whole command: import,
   optimizer, lowering, code generation, link);
2. runs each executable once with ``-o DIR`` and compares every output with
   onnxruntime's (max abs error), so a fast wrong answer cannot pass;
3. times, interleaved round by round, every smelt executable (``--bench K``,
   which does its own warm-up run before the K timed runs), onnxruntime
   single-threaded (``intra_op_num_threads = inter_op_num_threads = 1``,
   sequential execution) and onnxruntime with 2 intra-op threads, all on the
   same inputs (``<name>.inputs.npz``).

A configuration with a ``-tN`` suffix is compiled with ``--threads N`` (the
hot loops on N threads of the runtime's pool); the "smelt 2-thread" column
shows the first ``-t2`` configuration, and the ratio table adds each threaded
configuration over its 1-thread twin. The default set includes
``llvm-O2-t2``. On a machine whose cores other work shares, the 2-thread
figures are what that machine gave, not a clean scaling measurement.

Usage (from the repository root):

    .venv/bin/python bench/run.py                        # mlp mobilenetv2 resnet18 encoder
    .venv/bin/python bench/run.py --runs 9               # more rounds
    .venv/bin/python bench/run.py --configs cranelift-O2,llvm-O2
    .venv/bin/python bench/run.py --models gpt2_decode   # the 124 M-param decode step (heavy)

A configuration is ``BACKEND-O<N>`` with an optional ``-native`` suffix
(LLVM only: ``--cpu native``, this machine's instruction set instead of the
x86-64-v2 baseline) and an optional ``-t<THREADS>`` suffix (``--threads``).

``--runs N`` is the number of interleaved rounds: each round runs every smelt
configuration (in an order rotated from round to round), then onnxruntime
1-thread, then onnxruntime 2-thread, so slow drifts of a shared machine hit
all alike. In each round a runtime does K consecutive timed runs, K chosen
per model and runtime (from a probe run) so that its share of the round takes
at least ``--round-seconds``. onnxruntime's median and min are over all its
N x K timed runs; smelt's executable prints only the min and median of its K
runs, so smelt's median is the median of the N round medians (the plain
median when K = 1) and its min the min of the round minima.

The results tables are printed and written to ``target/bench-results.md``
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
# The int8 QDQ variants (bench/make_models.py QUANTIZED) of three of them.
INT8_MODELS = ["mobilenetv2_int8", "resnet18_int8", "encoder_int8"]
ALL_MODELS = DEFAULT_MODELS + INT8_MODELS + ["gpt2_decode"]
DEFAULT_CONFIGS = "cranelift-O2,llvm-O2,llvm-O0-native,llvm-O3-native,llvm-O3-native-t2"

UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
BENCH_RE = re.compile(
    r"bench: (\d+) runs after 1 warm-up: min ([0-9.]+) (ns|us|µs|ms|s), median ([0-9.]+) (ns|us|µs|ms|s) per run"
)
CONFIG_RE = re.compile(r"^(cranelift|llvm)-O([0-3])(-native)?(?:-t([0-9]+))?$")
# An output is wrong when its max abs error exceeds this times max(1, largest |reference value|).
TOLERANCE = 1e-3
# ...or, for an output a DequantizeLinear produces (the int8 QDQ models), this
# many of its quantization steps: onnxruntime runs such a graph with fused
# integer kernels that round each requantization once, smelt as written, so
# the two may differ by a step at a rounding boundary, and such differences
# propagate through the layers.
QDQ_STEPS = 4
OPTIMIZER_RE = re.compile(r"optimizer \(([^)]*)\): (\d+) -> (\d+) nodes")


class Config:
    """One smelt configuration: code generator, optimizer level, CPU."""

    def __init__(self, spec: str):
        m = CONFIG_RE.match(spec)
        if not m:
            raise ValueError(f"bad configuration '{spec}': expected BACKEND-O<N>[-native][-t<THREADS>], "
                             f"BACKEND cranelift or llvm, N 0..3 (e.g. llvm-O2, llvm-O2-t2)")
        self.name = spec
        self.backend = m.group(1)
        self.level = int(m.group(2))
        self.native = bool(m.group(3))
        self.threads = int(m.group(4) or 1)
        if not 1 <= self.threads <= 64:
            raise ValueError(f"'{spec}': threads must be 1 to 64")
        if self.native and self.backend != "llvm":
            raise ValueError(f"'{spec}': -native (--cpu native) needs the llvm backend")

    def flags(self) -> list[str]:
        f = ["--backend", self.backend, "--opt-level", str(self.level)]
        if self.native:
            f += ["--cpu", "native"]
        if self.threads > 1:
            f += ["--threads", str(self.threads)]
        return f

    def label(self) -> str:
        return (f"{self.backend} -O{self.level}" + (" native" if self.native else "")
                + (f" {self.threads}-thread" if self.threads > 1 else ""))

    def one_thread_twin(self, configs: list["Config"]) -> "Config | None":
        """The configuration that differs from this one only in running on one thread."""
        for c in configs:
            if (c.threads == 1 and c.backend == self.backend and c.level == self.level
                    and c.native == self.native):
                return c
        return None


def parse_configs(text: str) -> list[Config]:
    configs, seen = [], set()
    for spec in (s.strip() for s in text.split(",")):
        if not spec:
            continue
        if spec in seen:
            raise ValueError(f"configuration '{spec}' given twice")
        seen.add(spec)
        configs.append(Config(spec))
    if not configs:
        raise ValueError("no configuration given")
    return configs


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
    """Elements of all float and 8-bit initializers except scalars (op constants), BatchNormalization
    running stats and quantization parameters (scales and zero points)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    stats = set()
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and len(node.input) >= 5:
            stats.update(node.input[3:5])
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            stats.update(node.input[1:3])
    weights = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    total = 0
    for init in model.graph.initializer:
        if init.name in stats or init.data_type not in weights or not init.dims:
            continue
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total


def output_tolerances(path: str, ref: dict) -> dict:
    """Largest admissible abs error per output: QDQ_STEPS quantization steps for an output a
    DequantizeLinear with a scalar constant scale produces, else TOLERANCE relative."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path, load_external_data=False)
    inits = {t.name: t for t in model.graph.initializer}
    dq_scale = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[1] in inits:
            scale = numpy_helper.to_array(inits[node.input[1]])
            if scale.size == 1:
                dq_scale[node.output[0]] = float(scale.reshape(()))
    relative = TOLERANCE * max(1.0, max(float(np.max(np.abs(v))) for v in ref.values()))
    return {n: QDQ_STEPS * dq_scale[n] if n in dq_scale else relative for n in ref}


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


def runs_per_round(round_seconds: float, probe_ms: float) -> int:
    return max(1, min(1000, int(round_seconds * 1e3 / max(probe_ms, 1e-3))))


def compile_and_check(name: str, cfg: Config, onnx_path: str, npz: str, names: list[str],
                      ref: dict, work: str) -> dict:
    """Compiles one configuration, checks its outputs; returns its result dict (with 'exe' and 'probe_ms')."""
    res: dict = {}
    exe = os.path.join(work, f"{name}.{cfg.name}")
    log(f"[{name}] {cfg.name}: smelt compile {' '.join(cfg.flags())}")
    t0 = time.perf_counter()
    p = subprocess.run([SMELT, "compile", onnx_path, "--target", TARGET, *cfg.flags(), "-o", exe],
                       capture_output=True, text=True)
    res["compile_s"] = time.perf_counter() - t0
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        res["error"] = f"compile failed (exit {p.returncode}): {err[-1] if err else '?'}"
        log(f"[{name}] {cfg.name}: {res['error']}")
        return res
    phases = OPTIMIZER_RE.findall(p.stdout)
    if phases:
        res["nodes"] = (int(phases[0][1]), int(phases[-1][2]))
    log(f"[{name}] {cfg.name}: compiled in {res['compile_s']:.2f} s: {p.stdout.strip().splitlines()[-1]}")

    out_dir = os.path.join(work, f"{name}.{cfg.name}.out")
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        _, res["probe_ms"] = run_smelt_bench(exe, npz, 1, out_dir)
    except RuntimeError as e:
        res["error"] = f"executable failed: {e}"
        log(f"[{name}] {cfg.name}: {res['error']}")
        return res
    err = 0.0
    tols = output_tolerances(onnx_path, ref)
    for n in names:
        got = np.load(os.path.join(out_dir, sanitize(n) + ".npy"))
        if got.shape != ref[n].shape:
            res["error"] = f"output {n} shape {got.shape} != onnxruntime's {ref[n].shape}"
            log(f"[{name}] {cfg.name}: {res['error']}")
            return res
        e = float(np.max(np.abs(got.astype(np.float64) - ref[n].astype(np.float64))))
        err = max(err, e)
        if not e <= tols[n]:  # also catches NaN
            res["wrong"] = True
            log(f"[{name}] {cfg.name}: WRONG OUTPUT {n}: max abs err {e:.3g} > {tols[n]:.3g}")
    shutil.rmtree(out_dir, ignore_errors=True)
    res["max_abs_err"] = err
    res["exe"] = exe
    log(f"[{name}] {cfg.name}: max abs err {err:.3g}, probe {res['probe_ms']:.3f} ms")
    return res


def bench_model(name: str, configs: list[Config], rounds: int, round_seconds: float, work: str) -> dict:
    onnx_path = os.path.join(MODELS_DIR, f"{name}.onnx")
    npz = os.path.join(MODELS_DIR, f"{name}.inputs.npz")
    row = {"model": name, "params": param_count(onnx_path), "smelt": {}}

    with np.load(npz) as z:
        feeds = {k: z[k] for k in z.files}
    sess1 = ort_session(onnx_path, 1)
    sess2 = ort_session(onnx_path, 2)
    names = [o.name for o in sess1.get_outputs()]
    ref = dict(zip(names, sess1.run(None, feeds)))  # also ort's warm-up
    sess2.run(None, feeds)
    row["ref_max_abs"] = max(float(np.max(np.abs(v))) for v in ref.values())
    ort_probe_ms = min(statistics.median(time_ort(sess1, feeds, 3)), statistics.median(time_ort(sess2, feeds, 3)))
    ko = runs_per_round(round_seconds, ort_probe_ms)
    row["ko"] = ko

    for cfg in configs:
        res = compile_and_check(name, cfg, onnx_path, npz, names, ref, work)
        if "probe_ms" in res and "error" not in res:
            res["k"] = runs_per_round(round_seconds, res["probe_ms"])
            res.update(mins=[], meds=[])
        row["smelt"][cfg.name] = res
    live = [c for c in configs if "k" in row["smelt"][c.name]]
    log(f"[{name}] {rounds} rounds x (" + ", ".join(f"{row['smelt'][c.name]['k']} {c.name}" for c in live)
        + f", {ko} + {ko} ort) runs")

    o1, o2 = [], []
    for r in range(rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for cfg in order:
            res = row["smelt"][cfg.name]
            mn, md = run_smelt_bench(res["exe"], npz, res["k"])
            res["mins"].append(mn)
            res["meds"].append(md)
        o1 += time_ort(sess1, feeds, ko)
        o2 += time_ort(sess2, feeds, ko)
        log(f"[{name}] round {r + 1}/{rounds}: "
            + ", ".join(f"{c.name} {row['smelt'][c.name]['meds'][-1]:.3f}" for c in live)
            + f", ort-1 {statistics.median(o1[-ko:]):.3f}, ort-2 {statistics.median(o2[-ko:]):.3f} ms")
    for cfg in live:
        res = row["smelt"][cfg.name]
        res["med"] = statistics.median(res.pop("meds"))
        res["min"] = min(res.pop("mins"))
        os.remove(res.pop("exe"))  # gpt2_decode executables are ~472 MiB each
    row.update(ort1_med=statistics.median(o1), ort1_min=min(o1),
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


def fmt_ratio(v: float) -> str:
    if v >= 10:
        return f"{v:.0f}×"
    return f"{v:.2f}×" if v < 1 else f"{v:.1f}×"


def opt_pairs(configs: list[Config]) -> list[tuple[Config, Config]]:
    """(-O0, -O3) pairs of configurations that differ only in the optimizer level."""
    pairs = []
    for lo in configs:
        for hi in configs:
            if (lo.level == 0 and hi.level == 3 and lo.backend == hi.backend and lo.native == hi.native
                    and lo.threads == hi.threads):
                pairs.append((lo, hi))
    return pairs


def cell(res: dict | None, key: str, fmt) -> str:
    if res is None:
        return "not run"
    if "error" in res:
        return "failed"
    return fmt(res[key]) if key in res else "-"


def tables(rows: list[dict], configs: list[Config]) -> str:
    out = []
    # Latency.
    hdr = ["model", "params", "ort 1-thread", "ort 2-thread"] + [c.label() for c in configs] + ["smelt 2-thread"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|---|" + "--:|" * (len(hdr) - 1))
    for r in rows:
        cells = [r["model"], f"{r['params']:,}"]
        if "ort1_med" in r:
            cells += [f"{fmt_ms(r['ort1_med'])} ({fmt_ms(r['ort1_min'])})",
                      f"{fmt_ms(r['ort2_med'])} ({fmt_ms(r['ort2_min'])})"]
        else:
            cells += [f"failed: {r.get('error', '?')}", ""]
        for c in configs:
            res = r.get("smelt", {}).get(c.name)
            cells.append(cell(res, "med", lambda _, res=res: f"{fmt_ms(res['med'])} ({fmt_ms(res['min'])})"))
        two = next((c for c in configs if c.threads == 2), None)
        if two is None:
            cells.append("not run (add a -t2 configuration)")
        else:
            res = r.get("smelt", {}).get(two.name)
            cells.append(cell(res, "med", lambda _, res=res, two=two:
                              f"{fmt_ms(res['med'])} ({fmt_ms(res['min'])}, {two.name})"))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Median ms (min in parentheses) of one inference. smelt columns without a thread count run "
               "on one core; \"smelt 2-thread\" repeats the first `-t2` configuration (`--threads 2`).")
    out.append("")

    # Ratios.
    pairs = opt_pairs(configs) + [(c.one_thread_twin(configs), c) for c in configs
                                  if c.threads > 1 and c.one_thread_twin(configs)]
    hdr = ["model"] + [f"{c.label()} / ort-1" for c in configs] + [f"{hi.label()} / {lo.label()}" for lo, hi in pairs]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|---|" + "--:|" * (len(hdr) - 1))
    for r in rows:
        cells = [r["model"]]
        sm = r.get("smelt", {})
        for c in configs:
            res = sm.get(c.name)
            if "ort1_med" in r and res is not None and "med" in res:
                cells.append(fmt_ratio(res["med"] / r["ort1_med"]))
            else:
                cells.append(cell(res, "med", str))
        for lo, hi in pairs:
            a, b = sm.get(lo.name), sm.get(hi.name)
            cells.append(fmt_ratio(b["med"] / a["med"]) if a and b and "med" in a and "med" in b else "-")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Ratios of medians: smelt / ort-1 above 1 means smelt is that many times slower than "
               "single-threaded onnxruntime; -O3 / -O0 below 1 means the graph optimizer made it faster; "
               "N-thread / 1-thread below 1 means the threads made it faster.")
    out.append("")

    # Compile times, graph sizes and errors.
    hdr = ["model"] + [f"{c.label()}: compile s, nodes, max abs err" for c in configs]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|---|" + "--:|" * (len(hdr) - 1))
    for r in rows:
        cells = [r["model"]]
        for c in configs:
            res = r.get("smelt", {}).get(c.name)
            if res is None:
                cells.append("not run")
                continue
            comp = f"{res['compile_s']:.2f}" if "compile_s" in res else "-"
            if "error" in res:
                cells.append(f"{comp}, failed: {res['error']}")
                continue
            nodes = f"{res['nodes'][0]}→{res['nodes'][1]}" if "nodes" in res else "as imported"
            wrong = " **WRONG**" if res.get("wrong") else ""
            cells.append(f"{comp}, {nodes}, {res['max_abs_err']:.2g}{wrong}")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("compile s: wall clock of `smelt compile` (import, optimizer, lowering, code generation, link). "
               "nodes: graph nodes before → after the optimizer. max abs err: largest absolute difference "
               "from onnxruntime over all outputs (**WRONG** above "
               f"{TOLERANCE:g} × max(1, largest |output|), or {QDQ_STEPS} quantization steps for an output "
               "a DequantizeLinear makes; such a configuration is still timed but the run exits 1).")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=ALL_MODELS, default=DEFAULT_MODELS,
                    help="models to run (default: all but gpt2_decode)")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help=f"smelt configurations, comma-separated BACKEND-O<N>[-native] (default {DEFAULT_CONFIGS})")
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds per model (default 5)")
    ap.add_argument("--round-seconds", type=float, default=0.25,
                    help="minimum time per runtime per round; sets K runs per round (default 0.25)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--out", default=RESULTS, help="markdown results file (default: target/bench-results.md)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep what is left there (outputs of failures)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not args.round_seconds > 0:
        ap.error("--round-seconds must be positive")
    try:
        configs = parse_configs(args.configs)
    except ValueError as e:
        ap.error(f"--configs: {e}")

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
                rows.append(bench_model(name, configs, args.runs, args.round_seconds, work))
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
    ks = "; ".join(
        f"{r['model']} " + ", ".join(f"{res['k']}" for res in r["smelt"].values() if "k" in res)
        + f" smelt / {r['ko']} ort" for r in rows if "ko" in r)
    report = "\n".join([
        "# smelt vs onnxruntime",
        "",
        f"- date: {date}; smelt commit {rev}; target {TARGET}; configurations "
        + ", ".join(f"{c.name} (`{' '.join(c.flags())}`)" for c in configs),
        f"- machine: {machine()}",
        f"- onnxruntime {ort.__version__} (CPUExecutionProvider, sequential execution), numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- {args.runs} interleaved rounds per model; timed runs per round: {ks}; "
        f"total {time.perf_counter() - t_all:.0f} s",
        "",
        tables(rows, configs),
        "",
    ])
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    log(f"wrote {args.out}")
    failed = any("error" in r or any("error" in res or res.get("wrong") for res in r.get("smelt", {}).values())
                 for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
