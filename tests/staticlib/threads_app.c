/*
 * A pthreads program using a static library compiled with --threads N > 1
 * (the model's hot loops run on smelt's raw clone threads beside the
 * program's own threads): compiled with
 *
 *   -DMODEL_H='"cnn.h"' -DNAME=cnn -DUPPER=CNN -pthread
 *
 *   threads_app IN0.raw ... OUT0.raw ...
 *
 * runs the model on the main thread (which starts the pool), then on four
 * pthreads at once, each with its own arena and outputs (one gets the pool,
 * the others find it busy and run alone), then in a forked child (which has
 * no workers and starts new ones), and checks that every run gives the
 * main thread's bytes and that errno, a thread-local variable, survives the
 * runs. Writes the main thread's outputs raw. Exit status 0 on success.
 * -DNO_FORK leaves the fork out (qemu-user 7.2 aborts a forked child of a
 * process with several threads: "assertion failed: (cpu == current_cpu)").
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include MODEL_H

#define PROG "threads_app"
#include "app_common.h"

#define NIN CAT(UPPER, _NUM_INPUTS)
#define NOUT CAT(UPPER, _NUM_OUTPUTS)
#define RUNNERS 4

#if CAT(UPPER, _THREADS) < 2
#error "compile the model with --threads 2 or more"
#endif

static const void *inputs[NIN];
static void *want[NOUT];
static _Thread_local int tls_mark;

/* Runs the model three times on a fresh arena; returns 0 when every output
   equals `want` (or, with want unset, fills it). */
static int run_and_check(int fill) {
    void *outputs[NOUT];
    size_t arena_bytes = (MODEL.arena_bytes + MODEL.arena_align - 1) / MODEL.arena_align * MODEL.arena_align;
    void *arena = aligned_alloc(MODEL.arena_align, arena_bytes ? arena_bytes : MODEL.arena_align);
    int bad = 0;
    if (!arena) return 1;
    for (uint32_t i = 0; i < NOUT; i++) {
        outputs[i] = malloc(MODEL.outputs[i].bytes ? MODEL.outputs[i].bytes : 1);
        if (!outputs[i]) return 1;
    }
    for (int rep = 0; rep < 3; rep++) {
        memset(arena, 0xA5, arena_bytes);
        for (uint32_t i = 0; i < NOUT; i++) memset(outputs[i], 0xFF, MODEL.outputs[i].bytes);
        tls_mark = 1234 + rep;
        errno = 77;
        if (RUN(inputs, outputs, arena, NULL) != SMELT_STATUS_OK) {
            fprintf(stderr, "threads_app: the run failed a check\n");
            bad = 1;
        }
        if (errno != 77 || tls_mark != 1234 + rep) {
            fprintf(stderr, "threads_app: the run changed errno or a thread-local variable\n");
            bad = 1;
        }
        for (uint32_t i = 0; i < NOUT; i++) {
            if (fill && rep == 0) {
                want[i] = malloc(MODEL.outputs[i].bytes ? MODEL.outputs[i].bytes : 1);
                memcpy(want[i], outputs[i], MODEL.outputs[i].bytes);
            } else if (memcmp(want[i], outputs[i], MODEL.outputs[i].bytes) != 0) {
                fprintf(stderr, "threads_app: output %u differs between runs\n", i);
                bad = 1;
            }
        }
    }
    for (uint32_t i = 0; i < NOUT; i++) free(outputs[i]);
    free(arena);
    return bad;
}

static void *runner(void *arg) {
    (void)arg;
    return (void *)(intptr_t)run_and_check(0);
}

int main(int argc, char **argv) {
    uint32_t i;
    if ((uint32_t)argc != 1 + NIN + NOUT) {
        fprintf(stderr, "usage: threads_app IN0.raw ... OUT0.raw ...\n");
        return 2;
    }
    for (i = 0; i < NIN; i++) inputs[i] = read_file(argv[1 + i], MODEL.inputs[i].bytes);
    if (run_and_check(1)) return 1;

    pthread_t t[RUNNERS];
    for (i = 0; i < RUNNERS; i++)
        if (pthread_create(&t[i], 0, runner, 0)) return 1;
    for (i = 0; i < RUNNERS; i++) {
        void *r;
        if (pthread_join(t[i], &r) || r) {
            fprintf(stderr, "threads_app: the run on pthread %u failed\n", i);
            return 1;
        }
    }

#ifndef NO_FORK
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) _exit(run_and_check(0));
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "threads_app: the run in a forked child failed\n");
        return 1;
    }
#endif

    for (i = 0; i < NOUT; i++) {
        const char *path = argv[1 + NIN + i];
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(want[i], 1, MODEL.outputs[i].bytes, f) != MODEL.outputs[i].bytes || fclose(f)) {
            fprintf(stderr, "threads_app: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}
