#!/usr/bin/env python3
"""Writes the block-format reference vectors of ir/src/encoding/tests.rs.

For every GGUF block format smelt knows, `ir/tests/data/gguf/<name>.bin`
holds some blocks followed by their values as decoded by the `gguf` Python
package (`gguf.quants.dequantize`, little-endian f32). The first half of the
blocks are random bytes (every bit pattern, with the f16 scale fields set to
finite values), the second half real quantizations of normal data where the
package can quantize the format. The tests compare smelt's decoder with these
bit for bit and do not need the package at run time.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0
    /tmp/gguf-venv/bin/python scripts/gguf_fixtures.py

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


if __name__ == "__main__":
    main()
