/*
 * What the generic staticlib test programs (model_app.c, threads_app.c)
 * share: the names of the model's symbols from -DNAME and -DUPPER, and
 * reading an input file that must hold exactly an input's bytes. Each
 * program defines PROG (its name, for messages) before including this.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL CAT(NAME, _model)
#define RUN CAT(NAME, _run)

/* The contents of `path`, which must be exactly `bytes` long; exits with a
   message otherwise. */
static void *read_file(const char *path, uint64_t bytes) {
    void *buf = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, 1, bytes, f) != bytes || fgetc(f) != EOF) {
        fprintf(stderr, PROG ": %s does not hold exactly %llu bytes\n", path, (unsigned long long)bytes);
        exit(1);
    }
    fclose(f);
    return buf;
}
