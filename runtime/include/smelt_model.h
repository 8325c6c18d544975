/*
 * smelt_model.h: the interface between a model compiled by smelt and the code
 * that runs it (C99).
 *
 * A compiled model is one object (or static library) defining a description
 * (smelt_model_info) and an entry point, plus an init function when it has
 * persistent state. In the executables smelt writes they are `smelt_model`,
 * `smelt_model_run` and `smelt_model_init`, declared below: smelt's tiny
 * freestanding runtime, linked beside them, parses the command line, reads
 * the inputs from .npy files, calls `smelt_model_run` (--steps times) and
 * writes the outputs. A static library or object (`smelt compile --emit
 * staticlib|obj [--name NAME]`) defines `NAME_model` and `NAME_run` instead
 * (and `NAME_init` for a stateful model), so one program can link several
 * models; its generated header NAME.h declares them and defines
 * SMELT_MODEL_NO_FIXED_NAMES, which hides the fixed names below. NAME
 * defaults to NAME of libNAME.a (or the object's file stem), made a C
 * identifier.
 *
 * Persistent state (`smelt compile --state IN=OUT`: a KV cache, the
 * recurrent state of a streaming model) lives in a caller-owned state
 * buffer of state_bytes bytes aligned to state_align. `init` writes the
 * initial state (all zero bytes) into it; each run reads the state it holds
 * and leaves the next state there. A stateless model's library entry point
 * takes `NAME_run(inputs, outputs, arena, fault)`; a stateful one's takes
 * the buffer before the fault record, `NAME_run(inputs, outputs, arena,
 * state, fault)`. The executables' fixed-name entry point always takes the
 * state buffer (the runtime passes NULL for a stateless model).
 *
 * Run-time checks: every index, count or position a model reads from its
 * inputs (a Gather index, a token id into an embedding, a scatter position
 * into a KV cache) is checked before it is used. A run whose value is out
 * of range stops there and returns SMELT_STATUS_OUT_OF_RANGE (0 means the
 * run succeeded) after filling the caller's smelt_fault record, when the
 * caller passed one; the model's info table lists every check
 * (smelt_model.checks), so a caller can print e.g.
 *   node 'embed' (Gather): index 40000 out of range [-30522, 30522)
 * Outputs and the state buffer are then unspecified (the state must be
 * initialised again before the next run). A model compiled with
 * `--unchecked` has no checks (num_checks 0): out-of-range values are
 * clamped into range instead, and the run always returns 0. Ops whose
 * specification defines an out-of-range value are not checked: OneHot
 * writes an all-off row for one, as ONNX asks.
 *
 * Tensors are dense, row-major (C order) and little-endian, with no padding
 * between elements: an input or output of dtype D and dims d0 x d1 x ... is
 * `bytes` = d0 * d1 * ... * sizeof(D) contiguous bytes. A rank-0 tensor (a
 * scalar) has one element; a tensor with a zero dim has none (bytes = 0).
 */
#ifndef SMELT_MODEL_H
#define SMELT_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. A model object records the version it was
   generated for in `smelt_model.abi_version`; the runtime refuses a model
   whose version differs. */
#define SMELT_ABI_VERSION 3

/* The status a model's run returns. */
#define SMELT_STATUS_OK 0           /* the run completed */
#define SMELT_STATUS_OUT_OF_RANGE 1 /* a run-time value failed a check: see the fault record */
/* What smelt_check_buffers (and a library's NAME_run_checked) return for a
   buffer the model cannot be given; nothing ran. */
#define SMELT_STATUS_NULL_BUFFER 2       /* a buffer with bytes to hold is NULL */
#define SMELT_STATUS_SHORT_BUFFER 3      /* a buffer is smaller than the model needs */
#define SMELT_STATUS_MISALIGNED_BUFFER 4 /* a buffer is not aligned as the model needs */
#define SMELT_STATUS_OVERLAPPING_BUFFERS 5 /* an output overlaps another buffer */
/* smelt_fault.check of a buffer error: the fault's value then numbers the
   buffer (inputs first, then outputs, then the arena, then the state), lo is
   what it has (bytes, or the address modulo the alignment) and hi what it
   needs; for overlapping buffers, value numbers the output and lo the
   buffer it overlaps. */
#define SMELT_FAULT_BUFFER 0xffffffffu

/* Element types: the ONNX TensorProto.DataType codes. Sizes in bytes are
   given beside each; bool is one byte holding 0 or 1; f16 is IEEE binary16;
   bf16 is the upper half of an IEEE binary32. */
#define SMELT_DTYPE_F32 1   /* 4 */
#define SMELT_DTYPE_U8 2    /* 1 */
#define SMELT_DTYPE_I8 3    /* 1 */
#define SMELT_DTYPE_U16 4   /* 2 */
#define SMELT_DTYPE_I16 5   /* 2 */
#define SMELT_DTYPE_I32 6   /* 4 */
#define SMELT_DTYPE_I64 7   /* 8 */
#define SMELT_DTYPE_BOOL 9  /* 1 */
#define SMELT_DTYPE_F16 10  /* 2 */
#define SMELT_DTYPE_F64 11  /* 8 */
#define SMELT_DTYPE_U32 12  /* 4 */
#define SMELT_DTYPE_U64 13  /* 8 */
#define SMELT_DTYPE_BF16 16 /* 2 */

/* One input or output of the model. */
typedef struct {
    const char *name;     /* the ONNX value name, NUL-terminated UTF-8 */
    uint32_t dtype;       /* one of SMELT_DTYPE_* */
    uint32_t rank;        /* number of dims; 0 for a scalar */
    const uint64_t *dims; /* `rank` dims, outermost first (may be NULL when rank is 0) */
    uint64_t bytes;       /* size of the tensor's data: product of dims times the element size */
} smelt_tensor_info;

/* One run-time check of the model: the node that makes it and the values it
   accepts, lo <= value < hi (for an index into an axis of size d, which
   ONNX lets count from the end, [-d, d)). */
typedef struct {
    const char *node; /* the node's name, NUL-terminated UTF-8 */
    const char *op;   /* the node's op (`Gather`, `ScatterND`, ...) */
    const char *what; /* what the value is (`index`), for messages */
    int64_t lo;       /* the least valid value */
    int64_t hi;       /* one past the greatest valid value */
} smelt_check_info;

/* What a failed run reports (SMELT_STATUS_OUT_OF_RANGE): which check failed,
   the value it saw and the check's bounds (a copy of its lo and hi). */
typedef struct {
    uint32_t check;   /* index into smelt_model.checks */
    uint32_t reserved;
    int64_t value;    /* the value out of range */
    int64_t lo;
    int64_t hi;
} smelt_fault;

/* The model's signature and memory needs, constant for a given model. */
typedef struct {
    uint32_t abi_version;              /* SMELT_ABI_VERSION of the generator */
    uint32_t num_inputs;
    uint32_t num_outputs;
    const smelt_tensor_info *inputs;   /* num_inputs entries, in ONNX graph order */
    const smelt_tensor_info *outputs;  /* num_outputs entries, in ONNX graph order */
    uint64_t arena_bytes;              /* scratch memory one run needs (may be 0) */
    uint64_t arena_align;              /* required alignment of the arena: a power of two */
    const char *model_name;            /* NUL-terminated, for messages */
    uint64_t state_bytes;              /* the persistent state's size; 0 for a stateless model */
    uint64_t state_align;              /* required alignment of the state buffer: a power of two */
    uint32_t num_checks;
    const smelt_check_info *checks;    /* num_checks entries (may be NULL when 0) */
} smelt_model_info;

/* Fills `fault` (when not NULL) for a buffer error; returns `status`. */
static inline int32_t smelt_buffer_fault(smelt_fault *fault, int32_t status, uint32_t buffer, uint64_t has,
                                         uint64_t needs) {
    if (fault) {
        fault->check = SMELT_FAULT_BUFFER;
        fault->reserved = 0;
        fault->value = buffer;
        fault->lo = (int64_t)has;
        fault->hi = (int64_t)needs;
    }
    return status;
}

/* The size in bytes of an element of dtype SMELT_DTYPE_* `dtype`. */
static inline uint64_t smelt_dtype_size(uint32_t dtype) {
    switch (dtype) {
    case SMELT_DTYPE_U8: case SMELT_DTYPE_I8: case SMELT_DTYPE_BOOL: return 1;
    case SMELT_DTYPE_U16: case SMELT_DTYPE_I16: case SMELT_DTYPE_F16: case SMELT_DTYPE_BF16: return 2;
    case SMELT_DTYPE_I64: case SMELT_DTYPE_F64: case SMELT_DTYPE_U64: return 8;
    default: return 4;
    }
}

/* Buffer `b` (numbered as in smelt_fault): `p` of `given` bytes where
   `needed` bytes aligned to `align` are wanted. */
static inline int32_t smelt_check_buffer(smelt_fault *fault, uint32_t b, const void *p, uint64_t given,
                                         uint64_t needed, uint64_t align) {
    if (needed == 0) return SMELT_STATUS_OK;
    if (!p) return smelt_buffer_fault(fault, SMELT_STATUS_NULL_BUFFER, b, 0, needed);
    if (given < needed) return smelt_buffer_fault(fault, SMELT_STATUS_SHORT_BUFFER, b, given, needed);
    uint64_t off = (uint64_t)(uintptr_t)p & (align - 1);
    if (off) return smelt_buffer_fault(fault, SMELT_STATUS_MISALIGNED_BUFFER, b, off, align);
    return SMELT_STATUS_OK;
}

/*
 * Checks the buffers a caller is about to give model `m`'s run, without
 * running it: every input i is input_bytes[i] >= m->inputs[i].bytes bytes
 * at inputs[i], every output likewise, the arena arena_bytes >=
 * m->arena_bytes bytes and the state state_bytes >= m->state_bytes bytes
 * (both NULL-able when the model needs none), each aligned as the model
 * needs (tensors to their element size, the arena to arena_align, the state
 * to state_align), and no output overlapping another buffer. Returns
 * SMELT_STATUS_OK or the first buffer error, described in `fault` when it
 * is not NULL (see SMELT_FAULT_BUFFER).
 */
static inline int32_t smelt_check_buffers(const smelt_model_info *m, const void *const *inputs,
                                          const uint64_t *input_bytes, void *const *outputs,
                                          const uint64_t *output_bytes, const void *arena, uint64_t arena_bytes,
                                          const void *state, uint64_t state_bytes, smelt_fault *fault) {
    uint32_t ni = m->num_inputs, no = m->num_outputs, n = ni + no + 2;
    if ((ni && (!inputs || !input_bytes)) || (no && (!outputs || !output_bytes)))
        return smelt_buffer_fault(fault, SMELT_STATUS_NULL_BUFFER, ni && (!inputs || !input_bytes) ? 0 : ni, 0, 1);
    for (uint32_t b = 0; b < n; b++) {
        int32_t s;
        if (b < ni) {
            const smelt_tensor_info *t = &m->inputs[b];
            s = smelt_check_buffer(fault, b, inputs[b], input_bytes[b], t->bytes, smelt_dtype_size(t->dtype));
        } else if (b < ni + no) {
            const smelt_tensor_info *t = &m->outputs[b - ni];
            s = smelt_check_buffer(fault, b, outputs[b - ni], output_bytes[b - ni], t->bytes,
                                   smelt_dtype_size(t->dtype));
        } else if (b == ni + no) {
            s = smelt_check_buffer(fault, b, arena, arena_bytes, m->arena_bytes, m->arena_align);
        } else {
            s = smelt_check_buffer(fault, b, state, state_bytes, m->state_bytes, m->state_align);
        }
        if (s != SMELT_STATUS_OK) return s;
    }
    /* Each output against every other buffer the run touches (as much of
       each as the model uses). */
    for (uint32_t o = ni; o < ni + no; o++) {
        uint64_t ob = m->outputs[o - ni].bytes;
        uintptr_t op = (uintptr_t)outputs[o - ni];
        for (uint32_t b = 0; b < n; b++) {
            if (b == o) continue;
            const void *p;
            uint64_t bytes;
            if (b < ni) p = inputs[b], bytes = m->inputs[b].bytes;
            else if (b < ni + no) p = outputs[b - ni], bytes = m->outputs[b - ni].bytes;
            else if (b == ni + no) p = arena, bytes = m->arena_bytes;
            else p = state, bytes = m->state_bytes;
            uintptr_t bp = (uintptr_t)p;
            if (ob && bytes && op < bp + bytes && bp < op + ob)
                return smelt_buffer_fault(fault, SMELT_STATUS_OVERLAPPING_BUFFERS, o, b, 0);
        }
    }
    return SMELT_STATUS_OK;
}

#ifndef SMELT_MODEL_NO_FIXED_NAMES
/* Defined by the model object of an executable (a library's are NAME_model,
   NAME_run and NAME_init, declared by its own header). */
extern const smelt_model_info smelt_model;

/*
 * Writes the initial state (all zero bytes) into `state`, a buffer of
 * smelt_model.state_bytes bytes aligned to smelt_model.state_align; does
 * nothing for a stateless model (state_bytes 0, `state` may be NULL).
 */
void smelt_model_init(void *state);

/*
 * Runs the model once.
 *
 * inputs[i] points to the data of smelt_model.inputs[i] and outputs[i] to
 * writable memory for smelt_model.outputs[i], laid out as described above;
 * each must be aligned at least to its element size (the smelt runtime passes
 * page-aligned buffers). Inputs are only read; every byte of every output is
 * written. Inputs and outputs must not overlap each other or the arena.
 *
 * `arena` is caller-owned scratch memory of smelt_model.arena_bytes bytes,
 * aligned to smelt_model.arena_align; its contents need not be initialised
 * and are meaningless after the call. It may be NULL when arena_bytes is 0.
 *
 * `state` is the state buffer smelt_model_init wrote (NULL for a stateless
 * model): the run reads the state it holds and, after every read, leaves the
 * next state there. It must not overlap the inputs, outputs or arena.
 *
 * `fault` is caller-owned memory for a smelt_fault record, or NULL: a run
 * that fails a run-time check fills it (when not NULL) and returns
 * SMELT_STATUS_OUT_OF_RANGE; a run that succeeds returns SMELT_STATUS_OK
 * and does not touch it.
 *
 * The model has no global mutable state and never allocates: two calls with
 * two different arenas (and outputs, and state buffers) may run
 * concurrently; two instances of a stateful model are two state buffers.
 */
int32_t smelt_model_run(const void *const *inputs, void *const *outputs, void *arena, void *state,
                        smelt_fault *fault);
#endif

#ifdef __cplusplus
}
#endif

#endif /* SMELT_MODEL_H */
