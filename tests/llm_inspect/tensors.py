#!/usr/bin/env python3
"""Counts the tensors of checkpoint files by encoding, independently of smelt:
GGUF files with the `gguf` package's GGUFReader, safetensors files with the
`safetensors` package. Prints one JSON object:
{"<encoding>": [tensors, elements, bytes], ...}, encodings spelled as smelt
spells them (the GGML type or safetensors dtype in lower case: f32, f16, q8_0).

Usage: tensors.py FILE [FILE ...]   (all the files of one model)
"""

import json
import sys

import numpy as np


def gguf_tensors(path):
    from gguf import GGUFReader

    for t in GGUFReader(path).tensors:
        yield t.tensor_type.name.lower(), int(t.n_elements), int(t.n_bytes)


def safetensors_tensors(path):
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        for name in f.keys():
            dtype = f.get_slice(name).get_dtype().lower()
            a = f.get_tensor(name)
            yield dtype, int(np.prod(a.shape, dtype=np.int64)), int(a.nbytes)


def main():
    totals = {}
    for path in sys.argv[1:]:
        read = gguf_tensors if path.endswith(".gguf") else safetensors_tensors
        for enc, n, b in read(path):
            t = totals.setdefault(enc, [0, 0, 0])
            t[0] += 1
            t[1] += n
            t[2] += b
    print(json.dumps(totals, sort_keys=True))


if __name__ == "__main__":
    main()
