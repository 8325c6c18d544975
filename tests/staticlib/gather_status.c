/*
 * A failed run-time check through the static library's C API: the gather
 * model of tests/bounds/make_models.py (node 'embed', a table of 10 rows of
 * 4) as libembed.a. In-range ids (negative ones included) return
 * SMELT_STATUS_OK and the table's rows; an id past the table returns
 * SMELT_STATUS_OUT_OF_RANGE and a fault record naming the check, the id and
 * the range; with a NULL fault record the status alone.
 */
#include <stdio.h>
#include <string.h>

#include "embed.h"

static int failed;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "gather_status: %s\n", what);
        failed = 1;
    }
}

int main(void) {
    static _Alignas(EMBED_ARENA_ALIGN) unsigned char arena[EMBED_ARENA_BYTES + 1];
    float y[EMBED_OUTPUT_Y_ELEMENTS];
    int64_t ids[3] = {0, -1, 9};
    const void *in[EMBED_NUM_INPUTS] = {ids};
    void *out[EMBED_NUM_OUTPUTS] = {y};
    smelt_fault fault;
    memset(&fault, 0xAB, sizeof fault);
    check(embed_run(in, out, arena, &fault) == SMELT_STATUS_OK, "in-range ids fail");
    check(fault.check == 0xABABABABu, "a run that succeeds writes the fault record");
    /* Row 9 twice (-1 counts from the end), row 0 once. */
    check(memcmp(y + 4, y + 8, 4 * sizeof(float)) == 0, "id -1 is not row 9");

    check(embed_model.num_checks >= 1 && embed_model.checks != NULL, "no checks in the table");
    ids[1] = 40000;
    check(embed_run(in, out, arena, &fault) == SMELT_STATUS_OUT_OF_RANGE, "id 40000 is accepted");
    check(fault.check < embed_model.num_checks, "the fault names no check");
    if (fault.check < embed_model.num_checks) {
        const smelt_check_info *c = &embed_model.checks[fault.check];
        check(strcmp(c->node, "embed") == 0 && strcmp(c->op, "Gather") == 0, "the check names another node");
        check(strcmp(c->what, "index") == 0 && c->lo == -10 && c->hi == 10, "the check's bounds");
    }
    check(fault.value == 40000 && fault.lo == -10 && fault.hi == 10, "the fault's value and bounds");

    ids[1] = -11;
    check(embed_run(in, out, arena, NULL) == SMELT_STATUS_OUT_OF_RANGE, "id -11 is accepted without a record");
    if (!failed) printf("ok\n");
    return failed;
}
