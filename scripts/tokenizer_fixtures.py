#!/usr/bin/env python3
"""Reference data for tests/tokenizer.rs, from vocabularies a registry
package ships: the llama-cpp-python 0.3.36 source distribution (which
scripts/setup downloads into target/llama-cpp/src/) vendors llama.cpp,
whose models/ folder has vocab-only GGUF files with expected token ids.

Usage: tokenizer_fixtures.py OUT_DIR TEXT_FILE

For each vocabulary NAME this writes OUT_DIR/NAME/:
  gguf_tokenizer.json  the GGUF's tokenizer.ggml.* keys (read with
                       gguf.GGUFReader), as the Rust test's GgufTokenizer
  tokenizer.json       the Hugging Face tokenizer built from the same
                       vocabulary and merges with the pre-tokenizer the
                       model documents (see `reference`): THE REFERENCE
  expected.json        what the `tokenizers` package gives with it: ids of
                       TEXT_FILE (whole and line by line, no special tokens),
                       of a text with the EOS token's text in it (added
                       tokens found), and of llama.cpp's test strings
It checks first that the reference reproduces llama.cpp's expected ids
(.gguf.out, made by the model's original Hugging Face tokenizer) on
llama.cpp's test strings (.gguf.inp), and fails if not.
"""
import json
import os
import sys
import tarfile

import gguf
import tokenizers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SDIST = os.path.join(ROOT, "target", "llama-cpp", "src", "llama_cpp_python-0.3.36.tar.gz")
CACHE = os.path.join(ROOT, "target", "llama-cpp-python", "vocab")
MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
# name -> (GGUF file, pre-tokenizer)
VOCABS = {
    "gpt2": ("ggml-vocab-gpt-2.gguf", "gpt2"),
    "starcoder": ("ggml-vocab-starcoder.gguf", "smollm"),
    "qwen2": ("ggml-vocab-qwen2.gguf", "qwen2"),
    "llama3": ("ggml-vocab-llama-bpe.gguf", "llama3"),
    "llama-spm": ("ggml-vocab-llama-spm.gguf", "spm"),
}
LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def extract():
    """The vocab files, extracted once from the sdist into target/."""
    want = [f for f, _ in VOCABS.values()]
    if all(os.path.exists(os.path.join(CACHE, f + x)) for f in want for x in ("", ".inp", ".out")):
        return
    if not os.path.exists(SDIST):
        sys.exit(f"{SDIST} is missing: run scripts/setup")
    os.makedirs(CACHE, exist_ok=True)
    with tarfile.open(SDIST) as tar:
        for f in want:
            for x in ("", ".inp", ".out"):
                m = tar.getmember(MODELS + f + x)
                data = tar.extractfile(m).read()
                with open(os.path.join(CACHE, f + x), "wb") as out:
                    out.write(data)


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def read_gguf(path):
    r = gguf.GGUFReader(path)
    return {
        "model": field(r, "tokenizer.ggml.model"),
        "pre": field(r, "tokenizer.ggml.pre"),
        "tokens": field(r, "tokenizer.ggml.tokens"),
        "scores": field(r, "tokenizer.ggml.scores") or [],
        "token_types": field(r, "tokenizer.ggml.token_type") or [],
        "merges": field(r, "tokenizer.ggml.merges") or [],
        "bos": field(r, "tokenizer.ggml.bos_token_id"),
        "eos": field(r, "tokenizer.ggml.eos_token_id"),
        "add_bos": field(r, "tokenizer.ggml.add_bos_token"),
        "chat_template": field(r, "tokenizer.chat_template"),
    }


def spm_merges(tokens, types, scores):
    """transformers' generate_merges over the normal pieces (what
    frontend/src/tokenizer/spm.rs does too)."""
    vocab = {}
    for i, t in enumerate(tokens):
        if types[i] == NORMAL:
            vocab.setdefault(t, i)
    merges = []
    for i, piece in enumerate(tokens):
        if types[i] != NORMAL or vocab[piece] != i:
            continue
        local = []
        for cut in range(1, len(piece)):
            l, r = piece[:cut], piece[cut:]
            if l in vocab and r in vocab:
                local.append((l, r, scores[i]))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    return [[l, r] for l, r, _ in merges]


def reference(g, pre):
    """The Hugging Face tokenizer.json equivalent to the GGUF vocabulary:
    byte-level BPE with the model's documented pre-tokenizer (GPT-2's
    ByteLevel regex; StarCoder/SmolLM2's Digits(individual) + ByteLevel;
    Llama 3's and Qwen2's Split regex + ByteLevel, Llama 3 with
    ignore_merges), or for SentencePiece the legacy Llama layout
    (Prepend + Replace normalizer, BPE with byte fallback, merges from the
    scores)."""
    tokens, types = g["tokens"], g["token_types"] or [NORMAL] * len(g["tokens"])
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": types[i] in (CONTROL, UNKNOWN)}
        for i, t in enumerate(tokens) if types[i] in (UNKNOWN, CONTROL, USER_DEFINED, UNUSED)
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    model = {"type": "BPE", "dropout": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "ignore_merges": pre == "llama3"}
    d = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
         "normalizer": None, "post_processor": None}
    if pre == "spm":
        model.update(unk_token="<unk>", fuse_unk=True, byte_fallback=True,
                     vocab={t: i for i, t in enumerate(tokens)},
                     merges=spm_merges(tokens, types, g["scores"]))
        d["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        d["pre_tokenizer"] = None
        d["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    else:
        model.update(unk_token=None, fuse_unk=False, byte_fallback=False,
                     # Added tokens too, as in real files: tokenizers gives an
                     # added token missing from the model's vocab another id.
                     vocab={t: i for i, t in enumerate(tokens)},
                     merges=[m.split(" ", 1) for m in g["merges"]])
        if pre == "gpt2":
            d["pre_tokenizer"] = byte_level
        elif pre == "smollm":
            d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": True}, byte_level]}
        else:
            regex = LLAMA3_REGEX if pre == "llama3" else QWEN2_REGEX
            d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
                dict(byte_level, use_regex=False)]}
        d["decoder"] = dict(byte_level, add_prefix_space=True)
    d["model"] = model
    return d


def llama_cpp_cases(path):
    inp = open(path + ".inp", encoding="utf-8", newline="").read().split("\n__ggml_vocab_test__\n")
    out = open(path + ".out", encoding="utf-8", newline="").read().split("\n")
    cases = []
    for i, text in enumerate(inp):
        if i < len(out) and (text.strip() or text):
            cases.append((text, [int(x) for x in out[i].split()]))
    return cases


def main():
    out_dir, text_file = sys.argv[1], sys.argv[2]
    text = open(text_file, encoding="utf-8", newline="").read()
    extract()
    for name, (file, pre) in VOCABS.items():
        g = read_gguf(os.path.join(CACHE, file))
        d = reference(g, pre)
        tok = tokenizers.Tokenizer.from_str(json.dumps(d))
        cases = llama_cpp_cases(os.path.join(CACHE, file))
        bad = [(t, ids) for t, ids in cases
               if tok.encode(t, add_special_tokens=False).ids != ids]
        if bad:
            t, ids = bad[0]
            sys.exit(f"{name}: the reference differs from llama.cpp's expected ids on "
                     f"{len(bad)} of {len(cases)} strings, first {t!r}: "
                     f"{tok.encode(t, add_special_tokens=False).ids} != {ids}")
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text, f"{name}: no round trip"
        lines = [tok.encode(l, add_special_tokens=False).ids for l in text.split("\n")]
        # Added tokens are found in the text (tokenizers always does).
        special = "Hello" + g["tokens"][g["eos"]] + " world"
        d_dir = os.path.join(out_dir, name)
        os.makedirs(d_dir, exist_ok=True)
        with open(os.path.join(d_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False)
        with open(os.path.join(d_dir, "gguf_tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(g, f, ensure_ascii=False)
        with open(os.path.join(d_dir, "expected.json"), "w", encoding="utf-8") as f:
            json.dump({
                "tokenizers_version": tokenizers.__version__,
                "text": ids,
                "lines": lines,
                "special": {"text": special, "ids": tok.encode(special, add_special_tokens=False).ids},
                "cases": [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids}
                          for t, _ in cases],
            }, f)
        print(f"{name}: {len(g['tokens'])} tokens, {len(ids)} ids for the text, "
              f"{len(cases)} llama.cpp strings agree")


if __name__ == "__main__":
    main()
