#!/usr/bin/env python3
"""Writes the GGUF files of tests/gguf.rs with the `gguf` package's
GGUFWriter, and describes each as GGUFReader reads it back.

    .venv/bin/python tests/gguf/make_files.py OUTDIR

For every `NAME.gguf` it writes `NAME.json`: the metadata (key, the type
codes GGUFReader reports, its `contents()`, floats as their IEEE bit
patterns so nothing is lost in JSON), the tensors (name, ggml type code,
`ne` dims, absolute data offset, data bytes in hex), and for the model
files the hyper-parameters the script chose. The output is deterministic.

`--seeds DIR` instead writes a few small valid files as the fuzz seed
corpus (tests/malformed/gguf_*.gguf, committed).
"""

import json
import pathlib
import struct
import sys

import numpy as np
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFValueType as V, GGUFWriter
from gguf import GGMLQuantizationType as T

RNG = np.random.default_rng(13)


def raw_blocks(rows: int, cols: int, t: T) -> np.ndarray:
    """Random bytes for a `rows` × `cols` tensor of block type `t`, with
    finite f16 fields (the bytes are compared, never decoded)."""
    block_len, block_bytes = GGML_QUANT_SIZES[t]
    assert cols % block_len == 0
    data = RNG.integers(0, 256, size=(rows, cols // block_len * block_bytes), dtype=np.uint8)
    return data


def f16(shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float16)


def f32(shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def write(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bits(v, ty):
    """A leaf value for JSON: floats as bit patterns."""
    if ty == V.FLOAT32:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    if ty == V.FLOAT64:
        return struct.unpack("<Q", struct.pack("<d", v))[0]
    if ty == V.BOOL:
        return bool(v)
    return v


def describe(path: pathlib.Path, extra: dict) -> None:
    r = GGUFReader(path)
    fields = []
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        types = [int(t) for t in f.types]
        value = f.contents()
        leaf = f.types[-1]
        if isinstance(value, list):
            value = [bits(v, leaf) for v in value]
        else:
            value = bits(value, leaf)
        fields.append({"key": key, "types": types, "value": value})
    tensors = [
        {
            "name": t.name,
            "type": int(t.tensor_type),
            "ne": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "hex": t.data.tobytes().hex(),
        }
        for t in r.tensors
    ]
    doc = {"fields": fields, "tensors": tensors, "alignment": int(r.alignment), **extra}
    path.with_suffix(".json").write_text(json.dumps(doc))


def all_types(out: pathlib.Path) -> None:
    """Every metadata value type, nested arrays, every tensor type smelt
    reads, ranks 1 to 4, a 64-byte alignment."""
    w = GGUFWriter(out / "all_types.gguf", "test")
    w.add_custom_alignment(64)
    scalars = [
        ("t.u8", 200, V.UINT8), ("t.i8", -100, V.INT8), ("t.u16", 60000, V.UINT16),
        ("t.i16", -30000, V.INT16), ("t.u32", 4000000000, V.UINT32), ("t.i32", -2000000000, V.INT32),
        ("t.f32", 0.1, V.FLOAT32), ("t.bool", True, V.BOOL), ("t.string", "héllo ✓ 字", V.STRING),
        ("t.u64", 2**64 - 1, V.UINT64), ("t.i64", -(2**63), V.INT64), ("t.f64", -1e300, V.FLOAT64),
        ("t.empty_string", "", V.STRING), ("t.false", False, V.BOOL),
    ]
    for key, val, ty in scalars:
        w.add_key_value(key, val, ty)
    arrays = [
        ("a.u8", [0, 1, 255], V.UINT8), ("a.i8", [-128, 127], V.INT8), ("a.u16", [1, 65535], V.UINT16),
        ("a.i16", [-5, 5], V.INT16), ("a.u32", [7, 8, 9], V.UINT32), ("a.i32", [-1, 0, 1], V.INT32),
        ("a.f32", [1.5, -0.25, 3e38], V.FLOAT32), ("a.bool", [True, False, True], V.BOOL),
        ("a.string", ["a", "", "bc ✓"], V.STRING), ("a.u64", [2**63], V.UINT64),
        ("a.i64", [-1, 2**62], V.INT64), ("a.f64", [0.5, -2.0], V.FLOAT64),
    ]
    for key, val, ty in arrays:
        w.add_key_value(key, val, V.ARRAY, sub_type=ty)
    w.add_key_value("a.nested", [[1, 2], [3, 4, 5]], V.ARRAY)
    w.add_key_value("a.nested_strings", [["x", "y"], ["z"]], V.ARRAY)
    w.add_tensor("f32_1d", f32((7,)))
    w.add_tensor("f16_2d", f16((3, 5)))
    w.add_tensor("bf16_2d", RNG.integers(0, 2**16, size=(2, 8), dtype=np.uint16), raw_dtype=T.BF16)
    w.add_tensor("f32_4d", f32((2, 3, 1, 4)))
    w.add_tensor("i8", RNG.integers(-128, 128, size=(6,), dtype=np.int8))
    w.add_tensor("i16", RNG.integers(-100, 100, size=(2, 2), dtype=np.int16))
    w.add_tensor("i32", RNG.integers(-100, 100, size=(3,), dtype=np.int32))
    w.add_tensor("i64", RNG.integers(-100, 100, size=(3,), dtype=np.int64))
    w.add_tensor("f64", RNG.standard_normal((2,)))
    for t in [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]:
        w.add_tensor(t.name.lower(), raw_blocks(3, 64, t), raw_dtype=t)
    for t in [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.TQ1_0, T.TQ2_0]:
        w.add_tensor(t.name.lower(), raw_blocks(2, 256, t), raw_dtype=t)
    w.add_tensor("q8_0_3d", raw_blocks(6, 32, T.Q8_0).reshape(2, 3, 34), raw_dtype=T.Q8_0)
    write(w)
    describe(out / "all_types.gguf", {})


def model(out: pathlib.Path, arch: str) -> None:
    """A tiny model of `arch` in mixed tensor types, with a tokenizer."""
    hp = dict(vocab=48, hidden=64, ffn=96, layers=2, heads=4, kv_heads=2, head_dim=16,
              context=256, eps=1e-6, theta=500000.0)
    w = GGUFWriter(out / f"{arch}.gguf", arch)
    w.add_name(f"tiny {arch}")
    w.add_context_length(hp["context"])
    w.add_embedding_length(hp["hidden"])
    w.add_block_count(hp["layers"])
    w.add_feed_forward_length(hp["ffn"])
    w.add_head_count(hp["heads"])
    w.add_head_count_kv(hp["kv_heads"])
    w.add_layer_norm_rms_eps(hp["eps"])
    w.add_rope_freq_base(hp["theta"])
    w.add_rope_dimension_count(hp["head_dim"])
    tokens = [f"tok{i}" for i in range(hp["vocab"])]
    if arch == "llama":
        w.add_tokenizer_model("llama")
        w.add_token_scores([float(-i) for i in range(hp["vocab"])])
        w.add_bos_token_id(1)
        w.add_add_bos_token(True)
        w.add_rope_scaling_type(__import__("gguf").RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(2.0)
        hp["rope_scaling_linear"] = 2.0
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(arch)
        w.add_token_merges(["t o", "to k"])
        w.add_add_bos_token(False)
    w.add_token_list(tokens)
    w.add_token_types([1] * hp["vocab"])
    w.add_eos_token_id(2)
    w.add_chat_template("{{ messages }}")
    h, q, kv, ffn = hp["hidden"], hp["heads"] * hp["head_dim"], hp["kv_heads"] * hp["head_dim"], hp["ffn"]
    w.add_tensor("token_embd.weight", f16((hp["vocab"], h)))
    for l in range(hp["layers"]):
        b = f"blk.{l}."
        w.add_tensor(b + "attn_norm.weight", f32((h,)))
        w.add_tensor(b + "attn_q.weight", raw_blocks(q, h, T.Q8_0), raw_dtype=T.Q8_0)
        w.add_tensor(b + "attn_k.weight", raw_blocks(kv, h, T.Q4_0), raw_dtype=T.Q4_0)
        w.add_tensor(b + "attn_v.weight", f16((kv, h)))
        if arch == "qwen2":
            w.add_tensor(b + "attn_q.bias", f32((q,)))
            w.add_tensor(b + "attn_k.bias", f32((kv,)))
            w.add_tensor(b + "attn_v.bias", f32((kv,)))
        if arch == "qwen3":
            w.add_tensor(b + "attn_q_norm.weight", f32((hp["head_dim"],)))
            w.add_tensor(b + "attn_k_norm.weight", f32((hp["head_dim"],)))
        w.add_tensor(b + "attn_output.weight", raw_blocks(h, q, T.Q4_1), raw_dtype=T.Q4_1)
        w.add_tensor(b + "ffn_norm.weight", f32((h,)))
        w.add_tensor(b + "ffn_gate.weight", raw_blocks(ffn, h, T.Q5_0), raw_dtype=T.Q5_0)
        w.add_tensor(b + "ffn_up.weight", f32((ffn, h)))
        w.add_tensor(b + "ffn_down.weight", raw_blocks(h, ffn, T.Q8_0), raw_dtype=T.Q8_0)
    w.add_tensor("output_norm.weight", f32((h,)))
    # llama keeps a separate output head; the qwens tie it to the embedding.
    if arch == "llama":
        w.add_tensor("output.weight", raw_blocks(hp["vocab"], h, T.Q6_K if h % 256 == 0 else T.Q8_0), raw_dtype=T.Q6_K if h % 256 == 0 else T.Q8_0)
    write(w)
    describe(out / f"{arch}.gguf", {"hparams": hp})


def seeds(out: pathlib.Path) -> None:
    """Small valid files for the fuzzer to start from."""
    w = GGUFWriter(out / "gguf_small.gguf", "llama")
    w.add_key_value("a.nested", [[1, 2], [3]], V.ARRAY)
    w.add_key_value("s", "x", V.STRING)
    w.add_tensor("a", f32((4,)))
    w.add_tensor("b", raw_blocks(1, 32, T.Q4_0), raw_dtype=T.Q4_0)
    write(w)
    w = GGUFWriter(out / "gguf_model.gguf", "llama")
    w.add_context_length(16)
    w.add_embedding_length(32)
    w.add_block_count(1)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b"])
    w.add_tensor("token_embd.weight", raw_blocks(2, 32, T.Q8_0), raw_dtype=T.Q8_0)
    for n in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]:
        w.add_tensor(f"blk.0.{n}.weight", raw_blocks(32, 32, T.Q4_0), raw_dtype=T.Q4_0)
    for n in ["blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"]:
        w.add_tensor(f"{n}.weight", f32((32,)))
    write(w)


def main() -> None:
    if sys.argv[1] == "--seeds":
        seeds(pathlib.Path(sys.argv[2]))
        return
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    all_types(out)
    for arch in ["llama", "qwen2", "qwen3", "mistral"]:
        model(out, arch)


if __name__ == "__main__":
    main()
