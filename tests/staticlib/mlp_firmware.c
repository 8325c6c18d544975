/*
 * A Cortex-M4F firmware in C using the static library smelt makes from
 * examples/mlp for thumbv7em-none-eabihf, as an embedded user would: only the
 * generated header mlp.h and libmlp.a, built with arm-none-eabi-gcc against
 * newlib with semihosting I/O (--specs=rdimon.specs), its own vector table,
 * start-up code and linker script (cortex_m.ld), and run under
 * qemu-system-arm -M mps2-an386.
 *
 * Reads the input x (MLP_INPUT_X_BYTES raw float32) from the host file
 * in.raw, checks the header against the model's table (mlp_model), runs the model on two
 * static arenas (the second filled with garbage) and checks that both runs
 * agree, then writes the output probs raw to out.raw. Exit status 0 on
 * success, 1 with a message otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

extern void initialise_monitor_handles(void);
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start__[], __bss_end__[], __stack_top[];
int main(void);

/* newlib's exit calls these (no constructors here). */
void _init(void) {}
void _fini(void) {}

/* The FPU must be on before any floating-point instruction. */
__attribute__((naked, noreturn)) void reset(void) {
    __asm__ volatile("ldr r0, =0xE000ED88\n"
                     "ldr r1, [r0]\n"
                     "orr r1, r1, #(0xF << 20)\n"
                     "str r1, [r0]\n"
                     "dsb\n"
                     "isb\n"
                     "b start_c\n"
                     ".ltorg\n");
}

__attribute__((noreturn, used)) void start_c(void) {
    uint32_t *s = __data_load, *d = __data_start;
    while (d < __data_end) *d++ = *s++;
    for (uint32_t *b = __bss_start__; b < __bss_end__;) *b++ = 0;
    initialise_monitor_handles();
    exit(main());
}

static void fault(void) {
    fputs("mlp_firmware: fault\n", stderr);
    exit(1);
}

__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, reset, fault, fault, fault, fault, fault,
};

#define ARENA_WORDS ((MLP_ARENA_BYTES + 7) / 8)
static uint64_t arena_a[ARENA_WORDS] __attribute__((aligned(MLP_ARENA_ALIGN)));
static uint64_t arena_b[ARENA_WORDS] __attribute__((aligned(MLP_ARENA_ALIGN)));
static float x[MLP_INPUT_X_BYTES / 4];
static float probs_a[MLP_OUTPUT_PROBS_BYTES / 4], probs_b[MLP_OUTPUT_PROBS_BYTES / 4];

static int failed;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "mlp_firmware: %s\n", what);
        failed = 1;
    }
}

static void run(void *probs, void *arena) {
    const void *inputs[MLP_NUM_INPUTS];
    void *outputs[MLP_NUM_OUTPUTS];
    inputs[MLP_INPUT_X_INDEX] = x;
    outputs[MLP_OUTPUT_PROBS_INDEX] = probs;
    check(mlp_run(inputs, outputs, arena, NULL) == SMELT_STATUS_OK, "the run failed");
}

int main(void) {
    check(mlp_model.abi_version == SMELT_ABI_VERSION, "abi version");
    check(mlp_model.arena_bytes == MLP_ARENA_BYTES, "arena bytes");
    check(mlp_model.inputs[MLP_INPUT_X_INDEX].bytes == MLP_INPUT_X_BYTES, "input bytes");
    check(mlp_model.outputs[MLP_OUTPUT_PROBS_INDEX].bytes == MLP_OUTPUT_PROBS_BYTES, "output bytes");
    FILE *in = fopen("in.raw", "rb");
    check(in && fread(x, 1, sizeof x, in) == sizeof x, "cannot read in.raw");
    if (in) fclose(in);
    if (failed) return 1;
    memset(arena_b, 0xa5, sizeof arena_b);
    run(probs_a, arena_a);
    run(probs_b, arena_b);
    check(memcmp(probs_a, probs_b, sizeof probs_a) == 0, "the two arenas give different outputs");
    FILE *out = fopen("out.raw", "wb");
    check(out && fwrite(probs_a, 1, sizeof probs_a, out) == sizeof probs_a, "cannot write out.raw");
    if (out) fclose(out);
    printf("mlp_firmware: ok\n");
    return failed;
}
