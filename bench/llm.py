#!/usr/bin/env python3
"""Side-by-side benchmark of language models: smelt's chat programs against
llama.cpp's llama-bench on the same GGUF files, on this machine.

1. ``scripts/make_llm.py --size 100m`` writes a ~97 M-parameter llama
   checkpoint (random weights, 1024-token vocabulary) as GGUF files of each
   format (cached in ``target/bench-llm``);
2. ``bench/setup-llama-bench`` builds llama-bench natively (cached);
3. ``smelt compile FILE --backend llvm --cpu native --threads 2 --ctx 512
   --prefill-chunk 64`` makes one chat program per format (compile time
   reported);
4. interleaved round by round, per format and thread count: ``llama-bench
   -m FILE -p P -n N -t T -r 1`` (prompt processing of P tokens, generation
   of N) and ``./chat --bench --bench-prompt P -n N+1 --threads T`` (a
   prompt of P token ids, then N decode steps); the medians of the rounds
   are reported with the ratio smelt / llama.cpp (above 1: smelt faster);
5. the roofline: the file's bytes (every weight is read once per decoded
   token) against this machine's read bandwidth (numpy, one thread): the
   decode rate one thread cannot pass.

Usage (from the repository root, after scripts/setup):

    .venv/bin/python bench/llm.py                 # f32 q8_0 q4_0 q4_1, 1 and 2 threads, 3 rounds
    .venv/bin/python bench/llm.py --formats q8_0 --threads 1 --runs 5
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "target", "bench-llm", "llama100m")
SMELT = os.path.join(ROOT, "target", "release", "smelt")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def models(formats):
    missing = [f for f in formats if not os.path.exists(os.path.join(DIR, f"model-{f}.gguf"))]
    if missing:
        print(f"writing the 100m checkpoint ({', '.join(missing)}) ...", file=sys.stderr)
        run([sys.executable, os.path.join(ROOT, "scripts", "make_llm.py"), "--arch", "llama",
             "--size", "100m", "--out", DIR, "--gguf", ",".join(formats)])
    return {f: os.path.join(DIR, f"model-{f}.gguf") for f in formats}


def llama_bench():
    run([os.path.join(ROOT, "bench", "setup-llama-bench")])
    return os.path.join(ROOT, run([os.path.join(ROOT, "bench", "setup-llama-bench"), "--path"]).stdout.strip())


def compile_chat(gguf, fmt, threads):
    exe = os.path.join(DIR, f"chat-{fmt}")
    t0 = time.monotonic()
    run([SMELT, "compile", gguf, "--backend", "llvm", "--cpu", "native", "--threads", str(threads),
         "--ctx", "512", "--prefill-chunk", "64", "-o", exe])
    return exe, time.monotonic() - t0


def smelt_rates(exe, p, n, t):
    out = run([exe, "--bench", "--bench-prompt", str(p), "-n", str(n + 1), "--threads", str(t)]).stdout
    m = re.match(r"timings: prompt (\d+) tokens ([\d.]+) tok/s, decode (\d+) tokens ([\d.]+) tok/s", out)
    if not m or int(m.group(1)) != p or int(m.group(3)) != n:
        raise SystemExit(f"unexpected --bench line: {out!r}")
    return float(m.group(2)), float(m.group(4))


def llama_rates(bench, gguf, p, n, t):
    out = run([bench, "-m", gguf, "-p", str(p), "-n", str(n), "-t", str(t), "-r", "1", "-o", "json"]).stdout
    rows = json.loads(out)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] == p and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] == n and r["n_prompt"] == 0)
    return pp, tg


def bandwidth():
    """Read bandwidth (bytes per second) of one thread: the best of five
    sums over 256 MiB of f64, far larger than the caches."""
    import numpy as np

    a = np.ones(32 << 20, dtype=np.float64)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a.sum()
        best = max(best, a.nbytes / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", default="f32,q8_0,q4_0,q4_1")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=64, help="prompt tokens (pp)")
    ap.add_argument("--gen", type=int, default=32, help="generated tokens (tg)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    a = ap.parse_args()
    formats = a.formats.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    files = models(formats)
    bench = llama_bench()
    exes, compile_s = {}, {}
    for f in formats:
        exes[f], compile_s[f] = compile_chat(files[f], f, max(threads))
    results = {(f, t): {"smelt": [], "llama": []} for f in formats for t in threads}
    for r in range(a.runs):
        for f in formats:
            for t in threads:
                pair = [("smelt", lambda: smelt_rates(exes[f], a.prompt, a.gen, t)),
                        ("llama", lambda: llama_rates(bench, files[f], a.prompt, a.gen, t))]
                for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                    results[(f, t)][name].append(fn())
        print(f"round {r + 1} of {a.runs} done", file=sys.stderr)
    bw = bandwidth()
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"read bandwidth {bw / 1e9:.1f} GB/s (one thread). Prompt {a.prompt} tokens, "
        f"{a.gen} generated; medians of {a.runs} interleaved rounds.",
        "",
        "| format | threads | weights | smelt pp tok/s | llama.cpp pp tok/s | pp ratio | smelt tg tok/s "
        "| llama.cpp tg tok/s | tg ratio | roofline tg tok/s | smelt compile |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in formats:
        size = os.path.getsize(files[f])
        for t in threads:
            s, l = results[(f, t)]["smelt"], results[(f, t)]["llama"]
            spp, stg = statistics.median(x[0] for x in s), statistics.median(x[1] for x in s)
            lpp, ltg = statistics.median(x[0] for x in l), statistics.median(x[1] for x in l)
            lines.append(
                f"| {f} | {t} | {size / 2**20:.0f} MiB | {spp:.1f} | {lpp:.1f} | {spp / lpp:.2f} | "
                f"{stg:.1f} | {ltg:.1f} | {stg / ltg:.2f} | {bw / size:.0f} | {compile_s[f]:.0f} s |"
            )
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
