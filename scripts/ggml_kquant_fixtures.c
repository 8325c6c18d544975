// Writes the K-quant reference vectors of ir/src/encoding/quantize/tests.rs
// with ggml's own reference quantizers (the `gguf` Python package cannot
// quantize K-quants). See scripts/ggml_kquant_fixtures.sh.
//
//   ggml_kquant_fixtures IN.f32 OUTDIR
//
// IN.f32 holds rows of 256 little-endian f32 (scripts/gguf_fixtures.py
// writes it); OUTDIR/<q2_k..q6_k>.bin receive the quantized rows.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"

// ggml-quants.o refers to these; the reference quantizers never call them.
void ggml_abort(const char * file, int line, const char * fmt, ...) { (void) file; (void) line; (void) fmt; abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t n) { (void) t; (void) n; abort(); }
const char * ggml_type_name(enum ggml_type t) { (void) t; abort(); }
size_t ggml_type_size(enum ggml_type t) { (void) t; abort(); }

typedef void (*quantize_fn)(const float *, void *, int64_t);

int main(int argc, char ** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN.f32 OUTDIR\n", argv[0]); return 2; }
    FILE * f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    static float x[1 << 16];
    size_t n = fread(x, sizeof(float), 1 << 16, f);
    fclose(f);
    if (n == 0 || n % 256 != 0) { fprintf(stderr, "%s: %zu values, not rows of 256\n", argv[1], n); return 1; }
    struct { const char * name; quantize_fn fn; size_t block_bytes; } formats[] = {
        { "q2_k", (quantize_fn) quantize_row_q2_K_ref, sizeof(block_q2_K) },
        { "q3_k", (quantize_fn) quantize_row_q3_K_ref, sizeof(block_q3_K) },
        { "q4_k", (quantize_fn) quantize_row_q4_K_ref, sizeof(block_q4_K) },
        { "q5_k", (quantize_fn) quantize_row_q5_K_ref, sizeof(block_q5_K) },
        { "q6_k", (quantize_fn) quantize_row_q6_K_ref, sizeof(block_q6_K) },
    };
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        size_t bytes = n / 256 * formats[i].block_bytes;
        unsigned char * out = calloc(bytes, 1);
        formats[i].fn(x, out, (int64_t) n);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.bin", argv[2], formats[i].name);
        FILE * o = fopen(path, "wb");
        if (!o || fwrite(out, 1, bytes, o) != bytes || fclose(o) != 0) { perror(path); return 1; }
        printf("quantize %s: %zu bytes\n", formats[i].name, bytes);
        free(out);
    }
    return 0;
}
