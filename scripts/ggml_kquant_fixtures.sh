#!/bin/sh
# Writes ir/tests/data/gguf/quantize/q{2,3,4,5,6}_k.bin: the K-quant
# quantizations of quantize/input.f32 (written by scripts/gguf_fixtures.py)
# by ggml's own reference quantizers (`quantize_row_q*_K_ref`), which the
# `gguf` Python package cannot run. ggml's C is compiled without fused
# multiply-add (-ffp-contract=off) and without asserts, as the f32 operations
# of smelt's quantizers are written.
#
#   scripts/ggml_kquant_fixtures.sh GGML_DIR
#
# GGML_DIR is a ggml source tree (github.com/ggml-org/ggml, or the ggml/
# folder of llama.cpp), with src/ggml-quants.c and include/ggml.h. The
# committed vectors come from ggml commit d99724f2. Needs a C compiler.
set -eu
ggml=${1:?usage: $0 GGML_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/ir/tests/data/gguf/quantize
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
flags="-O2 -ffp-contract=off -DNDEBUG -I$ggml/include -I$ggml/src"
$cc $flags -c "$ggml/src/ggml-quants.c" -o "$tmp/ggml-quants.o"
$cc $flags "$root/scripts/ggml_kquant_fixtures.c" "$tmp/ggml-quants.o" -lm -o "$tmp/fixtures"
"$tmp/fixtures" "$out/input.f32" "$out"
