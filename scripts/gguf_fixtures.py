#!/usr/bin/env python3
"""Writes the block-format reference vectors of ir/src/encoding/tests.rs.

Decoding: 
For every GGUF block format smelt knows, `ir/tests/data/gguf/<name>.bin`
holds some blocks followed by their values as decoded by the `gguf` Python
package (`gguf.quants.dequantize`, little-endian f32). The first half of the
blocks are random bytes (every bit pattern, with the f16 scale fields set to
finite values), the second half real quantizations of normal data where the
package can quantize the format. The tests compare smelt's decoder with these
bit for bit and do not need the package at run time.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0
    /tmp/gguf-venv/bin/python scripts/gguf_fixtures.py

Quantizing: `ir/tests/data/gguf/quantize/input.f32` holds rows of 256
little-endian f32 (normal data, zeros, tiny, subnormal and huge magnitudes,
rounding ties, equal maxima of opposite signs, positive-only rows) and
`quantize/<name>.bin` the bytes `gguf.quants.quantize` makes of them, for
every format the package can quantize (the K-quants it cannot:
`scripts/ggml_kquant_fixtures.sh` writes theirs with ggml's C reference). For F16 and
BF16, `quantize/halves.f32` holds special values (infinities, NaNs with
payloads, subnormals, rounding boundaries) and random bit patterns, and
`quantize/f16.bin` / `bf16.bin` their conversions.

The output is deterministic (fixed seed).
"""

import pathlib

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T, quants

# Byte offsets of the f16 fields (d, m, dmin) inside one block (ggml-common.h).
HALF_FIELDS = {
    "Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2],
    "Q6_K": [208], "TQ1_0": [52], "TQ2_0": [64],
}


def main() -> None:
    out = pathlib.Path(__file__).resolve().parent.parent / "ir/tests/data/gguf"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    for name, fields in HALF_FIELDS.items():
        t = T[name]
        block_len, block_bytes = GGML_QUANT_SIZES[t]
        n = 4 if block_len == 32 else 2
        blocks = rng.integers(0, 256, size=(n, block_bytes), dtype=np.uint8)
        for off in fields:
            h = rng.uniform(-2.0, 2.0, size=n).astype(np.float16)
            blocks[:, off:off + 2] = h.view(np.uint8).reshape(n, 2)
        try:
            x = rng.standard_normal(n * block_len).astype(np.float32)
            q = quants.quantize(x.reshape(n, block_len), t).reshape(n, block_bytes)
            blocks = np.concatenate([blocks, q])
        except NotImplementedError:
            pass
        values = quants.dequantize(blocks.reshape(-1), t).astype("<f4")
        assert np.all(np.isfinite(values)), name
        (out / f"{name.lower()}.bin").write_bytes(blocks.tobytes() + values.tobytes())
        print(f"{name}: {len(blocks)} blocks")
    quantize_fixtures(out / "quantize")


ROW = 256


def quantize_inputs(rng: np.random.Generator) -> np.ndarray:
    """Rows of ROW values that exercise the quantizers' edge cases."""
    normal = lambda: rng.standard_normal(ROW)
    zeros = normal()
    zeros[::3] = 0.0
    zeros[64:96] = 0.0  # one whole 32-block of zeros
    # Multiples of 1/2 with 127 first in every 32-block: Q8_0's scale is 1,
    # so the halves are exact rounding ties.
    ties = rng.integers(-254, 255, size=ROW) / 2.0
    ties[::32] = 127.0
    # Every 32-block has +3.5 and -3.5 as its extremes (which one is "max").
    opposite = rng.uniform(-3.0, 3.0, size=ROW)
    opposite[5::32], opposite[9::32] = -3.5, 3.5
    opposite[128 + 5::32], opposite[128 + 9::32] = 3.5, -3.5
    rows = [
        normal(),
        zeros,
        np.zeros(ROW),
        normal() * 1e-30,
        normal() * 1e-39,  # subnormal: 1/d overflows to infinity
        normal() * 1e4,
        ties,
        opposite,
        rng.uniform(0.5, 1.5, size=ROW),  # positive only: Q4_1's min > 0
    ]
    return np.stack(rows).astype("<f4")


def halves_inputs(rng: np.random.Generator) -> np.ndarray:
    """Special f32 values and random bit patterns for F16/BF16."""
    special = np.array([
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,  # zeros, infinities
        0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00000,  # NaNs: quiet, signalling
        0x7FFFFFFF, 0xFFC12345, 0x7F802000, 0x7F801FFF,  # NaN payloads
        0x00000001, 0x007FFFFF, 0x00800000,  # f32 subnormals, smallest normal
        0x33000000, 0x33000001, 0x33800000, 0x387FC000,  # f16 subnormal ties
        0x38800000, 0x477FE000, 0x477FEFFF, 0x477FF000,  # f16 normal, max, overflow
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,  # bf16 ties and neighbours
        0x7F7FFFFF, 0x7F7F8000, 0x3F800FFF, 0x3F801000,  # f32 max, f16 ties
    ], dtype=np.uint32)
    bits = rng.integers(0, 2**32, size=224, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([special, bits]).view("<f4")


def quantize_fixtures(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    x = quantize_inputs(rng)
    (out / "input.f32").write_bytes(x.tobytes())
    for name in HALF_FIELDS:
        try:
            q = quants.quantize(x, T[name])
        except NotImplementedError:
            continue
        (out / f"{name.lower()}.bin").write_bytes(q.tobytes())
        print(f"quantize {name}: {q.size} bytes")
    h = halves_inputs(rng)
    (out / "halves.f32").write_bytes(h.tobytes())
    with np.errstate(over="ignore", invalid="ignore"):
        (out / "f16.bin").write_bytes(quants.quantize(h, T.F16).astype("<f2").tobytes())
        (out / "bf16.bin").write_bytes(quants.quantize(h, T.BF16).tobytes())


if __name__ == "__main__":
    main()
