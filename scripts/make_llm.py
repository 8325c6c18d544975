#!/usr/bin/env python3
"""Writes random-weight (seeded) llama-family checkpoints for smelt's LLM tests,
each in two forms from the same weights:

- a Hugging Face folder: config.json, model.safetensors, generation_config.json,
  tokenizer.json (a small byte-level BPE trained with the `tokenizers` package on
  a generated corpus) and tokenizer_config.json;
- GGUF files written with the `gguf` package's GGUFWriter (F32, F16, Q8_0 via
  gguf.quants), with the metadata and tokenizer keys llama.cpp needs, and the q/k
  rows of llama/mistral permuted exactly as llama.cpp's convert_hf_to_gguf.py
  does, so llama.cpp's normal rope on the GGUF equals HF's rotate_half on the
  folder.

Usage: make_llm.py --arch llama|qwen2|qwen3|mistral --out DIR
                   [--size tiny|100m] [--gguf f32,f16,q8_0,q4_0,q4_1] [--hf-dtype f32|f16] [--shards N] [--seed N]
With --hf-dtype f16 the folder holds f16 weights and the GGUF files hold the
same (f16-rounded) values, so an F32 GGUF file is still exactly the folder.
Writes DIR/hf/ and DIR/model-<type>.gguf. Tiny models are what the tests use
(hidden 64, 2 layers, GQA 4:2, vocab 320); 100m (97 M parameters, vocab
874) is for benchmarks and is not run by the tests. --shards N splits the
folder's weights into N safetensors files with a model.safetensors.index.json.
"""

import argparse
import json
import math
import os
import random

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, quants
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SIZES = {
    # hidden, intermediate, layers, heads, kv heads, head_dim, target vocab
    "tiny": dict(hidden=64, inter=160, layers=2, heads=4, kv=2, head_dim=16, vocab=320),
    "100m": dict(hidden=768, inter=2304, layers=14, heads=12, kv=4, head_dim=64, vocab=1024),
}
EOS = "<|endoftext|>"
GGUF_TYPES = {
    "f32": GGMLQuantizationType.F32,
    "f16": GGMLQuantizationType.F16,
    "q8_0": GGMLQuantizationType.Q8_0,
    "q4_0": GGMLQuantizationType.Q4_0,
    "q4_1": GGMLQuantizationType.Q4_1,
}


def corpus(seed):
    """A deterministic text of pseudo-words, enough for a few hundred merges."""
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "zo", "qu", "the", "and", "ing"]
    words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(400)]
    lines = []
    for _ in range(600):
        lines.append(" ".join(rng.choice(words) for _ in range(12)) + ".")
    return lines


# The special tokens of --chatml, and the template (Qwen2's ChatML, with its
# default system prompt) taken from the chat-template test fixture.
CHATML_SPECIALS = ["<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = "qwen2"


def chatml_template():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "tests/chat_template/templates.json")) as f:
        templates = json.load(f)["templates"]
    return next(t["template"] for t in templates if t["name"] == CHATML_TEMPLATE)


def train_tokenizer(vocab_size, seed, specials=()):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    return tok


def make_config(arch, size, vocab):
    s = SIZES[size]
    cfg = dict(
        arch=arch,
        vocab=vocab,
        hidden=s["hidden"],
        inter=s["inter"],
        layers=s["layers"],
        heads=s["heads"],
        kv=s["kv"],
        head_dim=s["head_dim"],
        eps=1e-5 if arch in ("llama", "mistral") else 1e-6,
        theta=10000.0 if arch == "llama" else 1000000.0,
        ctx=512 if size == "tiny" else 2048,
        # llama ties the head (like SmolLM2); the others have their own.
        tie=arch in ("llama", "qwen3"),
    )
    return cfg


def make_weights(cfg, seed):
    """HF-named float32 weights, scaled so activations stay O(1) and the
    logits are spread out (random tiny models otherwise give near-ties)."""
    rng = np.random.default_rng(seed)
    h, f, d = cfg["hidden"], cfg["inter"], cfg["head_dim"]
    qd, kd = cfg["heads"] * d, cfg["kv"] * d

    def mat(out, inp):
        return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    w = {"model.embed_tokens.weight": rng.standard_normal((cfg["vocab"], h)).astype(np.float32)}
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "self_attn.q_proj.weight"] = mat(qd, h)
        w[p + "self_attn.k_proj.weight"] = mat(kd, h)
        w[p + "self_attn.v_proj.weight"] = mat(kd, h)
        if cfg["arch"] == "qwen2":
            for n, o in (("q", qd), ("k", kd), ("v", kd)):
                w[p + f"self_attn.{n}_proj.bias"] = (0.5 * rng.standard_normal(o)).astype(np.float32)
        if cfg["arch"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(d)
            w[p + "self_attn.k_norm.weight"] = norm(d)
        # Strong residual updates: with a tied head, a residual stream that
        # stays close to the token's own embedding would make every model
        # repeat its last token.
        w[p + "self_attn.o_proj.weight"] = 4.0 * mat(h, qd)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[p + "mlp.gate_proj.weight"] = mat(f, h)
        w[p + "mlp.up_proj.weight"] = mat(f, h)
        w[p + "mlp.down_proj.weight"] = 4.0 * mat(h, f)
    w["model.norm.weight"] = norm(h)
    if not cfg["tie"]:
        w["lm_head.weight"] = (2.0 * mat(cfg["vocab"], h)).astype(np.float32)
    return w


def write_hf(out, cfg, weights, tok, eos_id, shards=1, chat=None):
    os.makedirs(out, exist_ok=True)
    arch = cfg["arch"]
    class_name = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3", "mistral": "Mistral"}[arch]
    config = {
        "architectures": [f"{class_name}ForCausalLM"],
        "model_type": arch,
        "vocab_size": cfg["vocab"],
        "hidden_size": cfg["hidden"],
        "intermediate_size": cfg["inter"],
        "num_hidden_layers": cfg["layers"],
        "num_attention_heads": cfg["heads"],
        "num_key_value_heads": cfg["kv"],
        "head_dim": cfg["head_dim"],
        "rms_norm_eps": cfg["eps"],
        "rope_theta": cfg["theta"],
        "rope_scaling": cfg.get("rope_scaling"),
        "max_position_embeddings": cfg["ctx"],
        "tie_word_embeddings": cfg["tie"],
        "hidden_act": "silu",
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "torch_dtype": {"float32": "float32", "float16": "float16"}[str(weights["model.norm.weight"].dtype)],
    }
    if arch == "mistral":
        # Wider than the context, so no window applies.
        config["sliding_window"] = 4096
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": eos_id, "eos_token_id": [eos_id]}, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        tc = {"eos_token": EOS, "bos_token": None, "add_bos_token": False}
        if chat:
            tc["chat_template"] = chat
            tc["additional_special_tokens"] = CHATML_SPECIALS
        json.dump(tc, f, indent=2)
    tok.save(os.path.join(out, "tokenizer.json"))
    if shards == 1:
        save_file(weights, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        return
    names = list(weights)
    weight_map = {}
    for k in range(shards):
        file = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[k::shards]}
        save_file(part, os.path.join(out, file), metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate_half pairs (i, i+d/2)
    become adjacent rows (2i, 2i+1) within each head."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --rope-llama3: Llama 3's rescaling, with an original context that puts
# the tiny model's head_dim-16 frequencies in all three regimes (kept,
# smoothed, divided by the factor).
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}


def llama3_rope_factors(cfg):
    """The per-pair factors llama.cpp's converter stores as rope_freqs."""
    r = cfg["rope_scaling"]
    d = cfg["head_dim"]
    freqs = 1.0 / (cfg["theta"] ** (np.arange(0, d, 2, dtype=np.float32) / d))
    orig = r["original_max_position_embeddings"]
    low_wavelen = orig / r["low_freq_factor"]
    high_wavelen = orig / r["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(r["factor"])
        else:
            smooth = (orig / wavelen - r["low_freq_factor"]) / (r["high_freq_factor"] - r["low_freq_factor"])
            factors.append(1.0 / ((1 - smooth) / r["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def gguf_tensors(cfg, weights):
    """GGUF-named tensors (HF layout [out, in]; the writer reverses dims)."""
    arch = cfg["arch"]
    permuted = arch in ("llama", "mistral")
    t = {"token_embd.weight": weights["model.embed_tokens.weight"]}
    names = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        for hf, gg in names.items():
            if p + hf not in weights:
                continue
            w = weights[p + hf]
            if permuted and hf == "self_attn.q_proj.weight":
                w = permute(w, cfg["heads"])
            if permuted and hf == "self_attn.k_proj.weight":
                w = permute(w, cfg["kv"])
            t[f"blk.{i}.{gg}"] = w
    t["output_norm.weight"] = weights["model.norm.weight"]
    if "lm_head.weight" in weights:
        t["output.weight"] = weights["lm_head.weight"]
    return t


def write_gguf(path, cfg, weights, tok, eos_id, qtype, chat=None):
    arch = "llama" if cfg["arch"] == "mistral" else cfg["arch"]
    w = GGUFWriter(path, arch)
    w.add_name(f"smelt-test-{cfg['arch']}")
    hparams = [
        (w.add_context_length, "ctx"),
        (w.add_embedding_length, "hidden"),
        (w.add_block_count, "layers"),
        (w.add_feed_forward_length, "inter"),
        (w.add_head_count, "heads"),
        (w.add_head_count_kv, "kv"),
        (w.add_key_length, "head_dim"),
        (w.add_value_length, "head_dim"),
        (w.add_rope_dimension_count, "head_dim"),
        (w.add_layer_norm_rms_eps, "eps"),
        (w.add_rope_freq_base, "theta"),
        (w.add_vocab_size, "vocab"),
    ]
    for add, key in hparams:
        add(cfg[key])
    # llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q4_1, MOSTLY_Q8_0.
    w.add_file_type({"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7}[qtype])
    # Tokenizer: byte-level BPE ("gpt2"), tokens in id order.
    vocab = tok.get_vocab()
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    types = [3 if s == EOS or s in CHATML_SPECIALS else 1 for s in tokens]
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    if cfg.get("rope_scaling"):
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    w.add_tokenizer_model("gpt2")
    # The HF tokenizer splits with the GPT-2 regex (ByteLevel, use_regex);
    # llama.cpp's "default" would be another regex.
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eos_id)
    w.add_eos_token_id(eos_id)
    w.add_add_bos_token(False)
    if chat:
        w.add_chat_template(chat)
    for name, t in gguf_tensors(cfg, weights).items():
        if t.ndim == 1 or qtype == "f32":
            w.add_tensor(name, t.astype(np.float32))
        elif qtype == "f16":
            w.add_tensor(name, t.astype(np.float16))
        else:
            q = quants.quantize(t, GGUF_TYPES[qtype])
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=GGUF_TYPES[qtype])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=["llama", "qwen2", "qwen3", "mistral"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES))
    ap.add_argument("--gguf", default="f32", help="comma-separated GGUF types: f32,f16,q8_0,q4_0,q4_1")
    ap.add_argument("--hf-dtype", default="f32", choices=["f32", "f16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--chatml", action="store_true", help="ChatML special tokens and Qwen2's chat template")
    ap.add_argument("--rope-llama3", action="store_true", help="Llama 3 rope scaling (rope_freqs in GGUF)")
    a = ap.parse_args()
    chat = chatml_template() if a.chatml else None
    tok = train_tokenizer(SIZES[a.size]["vocab"], a.seed, CHATML_SPECIALS if a.chatml else ())
    vocab_size = tok.get_vocab_size()
    eos_id = tok.token_to_id(EOS)
    cfg = make_config(a.arch, a.size, vocab_size)
    if a.rope_llama3:
        cfg["rope_scaling"] = LLAMA3_ROPE
    weights = make_weights(cfg, a.seed + {"llama": 0, "qwen2": 1, "qwen3": 2, "mistral": 3}[a.arch])
    if a.hf_dtype == "f16":
        weights = {k: v.astype(np.float16) for k, v in weights.items()}
    write_hf(os.path.join(a.out, "hf"), cfg, weights, tok, eos_id, a.shards, chat)
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    for q in filter(None, a.gguf.split(",")):
        if q not in GGUF_TYPES:
            ap.error(f"unknown GGUF type {q}; use one of {', '.join(GGUF_TYPES)}")
        write_gguf(os.path.join(a.out, f"model-{q}.gguf"), cfg, weights, tok, eos_id, q, chat)


if __name__ == "__main__":
    main()
