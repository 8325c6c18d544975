//! The per-model C header of a static library or object: the generic ABI
//! (`smelt_model.h`, inlined so that the header stands alone) plus
//! `#define`s for this model's arena and for each input's and output's
//! index, dtype, byte size, element count, rank and dims, with the model and
//! tensor names turned into C identifiers.

use std::collections::HashSet;
use std::fmt::Write;

use smelt_ir::DType;

use crate::lower::IoInfo;

/// What the header describes.
pub struct HeaderModel<'a> {
    /// The symbol prefix, a C identifier: the model defines `NAME_model` and
    /// `NAME_run`; the macro prefix is this in upper case.
    pub name: &'a str,
    /// The target triple, for the opening comment.
    pub triple: &'a str,
    /// Inputs, in ONNX graph order.
    pub inputs: &'a [IoInfo],
    /// Outputs, in ONNX graph order.
    pub outputs: &'a [IoInfo],
    /// `NAME_model.arena_bytes`.
    pub arena_bytes: u64,
    /// `NAME_model.arena_align`.
    pub arena_align: u64,
    /// `NAME_model.state_bytes`: 0 for a stateless model, whose `NAME_run`
    /// takes three arguments and which has no `NAME_init`.
    pub state_bytes: u64,
    /// `NAME_model.state_align`.
    pub state_align: u64,
    /// `--threads` (1: no thread pool, and no line in the header).
    pub threads: u32,
    /// `NAME_model.num_checks`: the model's run-time checks.
    pub checks: usize,
    /// Compiled with `--unchecked` (no checks; the header says so).
    pub unchecked: bool,
}

/// Upper-case C identifier characters for `s`: ASCII letters and digits kept
/// (upper-cased), everything else `_`.
fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The macro prefix of a model: a C identifier that starts with a letter.
pub fn prefix(name: &str) -> String {
    let id = ident(name);
    if id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id
    } else {
        format!("MODEL_{id}")
    }
}

/// One identifier per tensor, unique within `list`: names that become the
/// same identifier (`x` and `X`, `a.b` and `a_b`) get `_2`, `_3`, … in
/// order. Every macro of a tensor is `<prefix>_<INPUT|OUTPUT>_<ident>_<FIELD>`
/// with fields that contain no `_`, so distinct identifiers never give the
/// same macro.
fn tensor_idents(list: &[IoInfo]) -> Vec<String> {
    let mut used = HashSet::new();
    list.iter()
        .enumerate()
        .map(|(i, io)| {
            let base = if io.name.is_empty() {
                format!("T{i}")
            } else {
                ident(&io.name)
            };
            let mut id = base.clone();
            let mut n = 2;
            while !used.insert(id.clone()) {
                id = format!("{base}_{n}");
                n += 1;
            }
            id
        })
        .collect()
}

/// `s` as text that is safe inside a C comment: printable ASCII is kept
/// except `*`, `?` and `\` (no comment end, trigraph or line splice), which
/// are written `\xNN` like every other byte.
pub(crate) fn comment_text(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && !matches!(b, b'*' | b'?' | b'\\') {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The C type of one element, for comments.
fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::F16 => "uint16_t holding IEEE binary16 bits",
        DType::BF16 => "uint16_t holding bfloat16 bits",
        DType::I8 => "int8_t",
        DType::U8 => "uint8_t",
        DType::I16 => "int16_t",
        DType::U16 => "uint16_t",
        DType::I32 => "int32_t",
        DType::U32 => "uint32_t",
        DType::I64 => "int64_t",
        DType::U64 => "uint64_t",
        DType::Bool => "uint8_t holding 0 or 1",
    }
}

fn tensors(h: &mut String, p: &str, kind: &str, list: &[IoInfo]) {
    let kind_uc = kind.to_ascii_uppercase();
    for ((i, io), id) in list.iter().enumerate().zip(tensor_idents(list)) {
        let m = format!("{p}_{kind_uc}_{id}");
        let dims: Vec<String> = io.shape.iter().map(|d| d.to_string()).collect();
        let elements: u64 = io.shape.iter().map(|&d| d as u64).product();
        let _ = writeln!(
            h,
            "\n/* {kind} {i}: \"{}\", {} [{}]: {} {}, {} bytes */",
            comment_text(&io.name),
            io.dtype,
            dims.join(", "),
            elements,
            c_type(io.dtype),
            io.bytes
        );
        let _ = writeln!(h, "#define {m}_INDEX {i}");
        let _ = writeln!(
            h,
            "#define {m}_DTYPE SMELT_DTYPE_{}",
            io.dtype.name().to_ascii_uppercase()
        );
        let _ = writeln!(h, "#define {m}_BYTES {}", io.bytes);
        let _ = writeln!(h, "#define {m}_ELEMENTS {elements}");
        let _ = writeln!(h, "#define {m}_RANK {}", io.shape.len());
        if dims.is_empty() {
            let _ = writeln!(h, "/* a scalar: rank 0, so no {m}_DIMS */");
        } else {
            let _ = writeln!(h, "#define {m}_DIMS {{{}}}", dims.join(", "));
        }
    }
}

/// The run lines of the opening comment's example.
fn run_doc(model: &HeaderModel<'_>, p: &str) -> String {
    let name = comment_text(model.name);
    let status = " *   (a status other than SMELT_STATUS_OK: an input value failed a run-time\n \
                  *   check, which `fault` names; see \"Run-time checks\" below)\n";
    if model.state_bytes == 0 {
        return format!(
            " *   smelt_fault fault;\n \
             *   int32_t status = {name}_run(inputs, outputs, arena, &fault);\n{status}"
        );
    }
    format!(
        " *   void *state = aligned_alloc({p}_STATE_ALIGN, {p}_STATE_BYTES);\n \
         *   {name}_init(state);                          once, before the first step\n \
         *   smelt_fault fault;\n \
         *   int32_t status = {name}_run(inputs, outputs, arena, state, &fault);   each step\n{status}"
    )
}

/// The declarations of the entry point (and of the init function of a
/// stateful model).
fn prototypes(model: &HeaderModel<'_>) -> String {
    let name = model.name;
    let returns = "/* Returns SMELT_STATUS_OK, or SMELT_STATUS_OUT_OF_RANGE after filling\n   \
                   `fault` (when not NULL) if an input value failed a run-time check. */\n";
    let (state_param, state_arg, state_check) = if model.state_bytes == 0 {
        ("", "", "0, 0")
    } else {
        (
            " void *state, uint64_t state_bytes,",
            " state,",
            "state, state_bytes",
        )
    };
    let checked = format!(
        "/* {name}_run with the caller's buffers checked first by\n   \
         smelt_check_buffers (their sizes in bytes beside them): a\n   \
         SMELT_STATUS_*_BUFFER(S) status, and nothing run, when one is NULL,\n   \
         short, misaligned or overlapping. */\n\
         static inline int32_t {name}_run_checked(const void *const *inputs, const uint64_t *input_bytes,\n    \
         void *const *outputs, const uint64_t *output_bytes, void *arena, uint64_t arena_bytes,{state_param}\n    \
         smelt_fault *fault) {{\n    \
         int32_t s = smelt_check_buffers(&{name}_model, inputs, input_bytes, outputs, output_bytes, arena,\n        \
         arena_bytes, {state_check}, fault);\n    \
         return s != SMELT_STATUS_OK ? s : {name}_run(inputs, outputs, arena,{state_arg} fault);\n\
         }}\n"
    );
    if model.state_bytes == 0 {
        return format!(
            "{returns}int32_t {name}_run(const void *const *inputs, void *const *outputs, void *arena,\n    \
             smelt_fault *fault);\n{checked}"
        );
    }
    format!(
        "/* Writes the initial state (all zero bytes) into `state`, a buffer of\n   \
         {p}_STATE_BYTES bytes aligned to {p}_STATE_ALIGN. */\n\
         void {name}_init(void *state);\n\
         /* One step: reads the state `state` holds and leaves the next one there\n   \
         (after every read of the old one). `state` must not overlap the\n   \
         inputs, the outputs or the arena. */\n\
         {returns}\
         int32_t {name}_run(const void *const *inputs, void *const *outputs, void *arena, void *state,\n    \
         smelt_fault *fault);\n{checked}",
        p = prefix(name)
    )
}

/// The header text.
pub fn render(model: &HeaderModel<'_>) -> String {
    let p = prefix(model.name);
    let mut h = String::new();
    let _ = write!(
        h,
        "/*\n\
         \x20* The model library \"{name}\" compiled by smelt for {triple}.\n\
         \x20* Generated by smelt; do not edit. C99, and usable from C++.\n\
         \x20*\n\
         \x20* The generic interface (smelt_model.h) is inlined below, followed by\n\
         \x20* this model's sizes and shapes as constants. A run:\n\
         \x20*\n\
         \x20*   const void *inputs[{p}_NUM_INPUTS];    by {p}_INPUT_<NAME>_INDEX\n\
         \x20*   void *outputs[{p}_NUM_OUTPUTS];        by {p}_OUTPUT_<NAME>_INDEX\n\
         \x20*   void *arena = aligned_alloc({p}_ARENA_ALIGN, {p}_ARENA_BYTES);\n\
         {run_doc}\
         \x20*\n\
         \x20* The model keeps no global mutable state: runs on different arenas\n\
         \x20* (and outputs{and_state}) may go on concurrently.\n\
         \x20*/\n\
         #ifndef SMELT_MODEL_{p}_H\n\
         #define SMELT_MODEL_{p}_H\n\n\
         /* A library declares its own prefixed symbols, below. */\n\
         #define SMELT_MODEL_NO_FIXED_NAMES 1\n",
        name = comment_text(model.name),
        triple = model.triple,
        run_doc = run_doc(model, &p),
        and_state = if model.state_bytes > 0 {
            ", and state buffers"
        } else {
            ""
        },
    );
    h.push_str(smelt_runtime::HEADER);
    let _ = write!(
        h,
        "\n/* The model library \"{name}\": its description and entry point. */\n\
         extern const smelt_model_info {name}_model;\n\
         {protos}\
         \n/* These constants equal the fields of {name}_model. */\n\
         #define {p}_NUM_INPUTS {}\n\
         #define {p}_NUM_OUTPUTS {}\n\
         /* Bytes of scratch memory one run needs, and their alignment. */\n\
         #define {p}_ARENA_BYTES {}\n\
         #define {p}_ARENA_ALIGN {}\n",
        model.inputs.len(),
        model.outputs.len(),
        model.arena_bytes,
        model.arena_align,
        name = comment_text(model.name),
        protos = prototypes(model),
    );
    if model.state_bytes > 0 {
        let _ = write!(
            h,
            "/* Bytes of the persistent state, and their alignment: one caller-owned\n   \
             buffer per instance, written by {name}_init and carried by {name}_run\n   \
             from one call to the next. */\n\
             #define {p}_STATE_BYTES {}\n\
             #define {p}_STATE_ALIGN {}\n",
            model.state_bytes,
            model.state_align,
            name = model.name,
        );
    }
    if model.threads > 1 {
        let _ = write!(
            h,
            "/* Compiled with --threads {t}: the hot loops run on up to {t} threads, the\n   \
             caller's and workers of a small pool started on the first run (raw Linux\n   \
             threads without TLS that run only the model's loops; see the smelt README). */\n\
             #define {p}_THREADS {t}\n",
            t = model.threads
        );
    }
    if model.unchecked {
        let _ = write!(
            h,
            "/* Compiled with --unchecked: no run-time checks. An index, token id or\n   \
             position out of range in the inputs is clamped into range (never read or\n   \
             written outside a buffer, but the result is meaningless) and {name}_run\n   \
             always returns SMELT_STATUS_OK: the caller guarantees its inputs. */\n\
             #define {p}_UNCHECKED 1\n",
            name = model.name,
        );
    }
    let _ = write!(
        h,
        "/* Run-time checks ({name}_model.checks): indices, token ids and positions\n   \
         read from the inputs, each checked before it is used. */\n\
         #define {p}_NUM_CHECKS {}\n",
        model.checks,
        name = model.name,
    );
    tensors(&mut h, &p, "input", model.inputs);
    tensors(&mut h, &p, "output", model.outputs);
    let _ = writeln!(h, "\n#endif /* SMELT_MODEL_{p}_H */");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(name: &str, dtype: DType, shape: &[usize]) -> IoInfo {
        let bytes = smelt_ir::TensorType::new(dtype, shape.to_vec())
            .bytes()
            .unwrap() as u64;
        IoInfo {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            bytes,
        }
    }

    #[test]
    fn identifiers_are_sanitised_and_unique() {
        assert_eq!(prefix("mlp"), "MLP");
        assert_eq!(prefix("my-net.v2"), "MY_NET_V2");
        assert_eq!(prefix("2net"), "MODEL_2NET");
        let list = [
            io("x", DType::F32, &[1]),
            io("X", DType::F32, &[1]),
            io("a.b", DType::F32, &[1]),
            io("a_b", DType::F32, &[1]),
            io("", DType::F32, &[1]),
            io("x", DType::F32, &[1]),
        ];
        assert_eq!(
            tensor_idents(&list),
            ["X", "X_2", "A_B", "A_B_2", "T4", "X_3"]
        );
    }

    #[test]
    fn macros_and_comments() {
        let inputs = [io("in*/put?", DType::F32, &[1, 64])];
        let outputs = [io("y", DType::I64, &[]), io("Y", DType::Bool, &[3])];
        let h = render(&HeaderModel {
            threads: 1,
            checks: 0,
            unchecked: false,
            name: "mlp",
            triple: "x86_64-unknown-linux-gnu",
            inputs: &inputs,
            outputs: &outputs,
            arena_bytes: 4096,
            arena_align: 64,
            state_bytes: 0,
            state_align: 64,
        });
        for want in [
            "#ifndef SMELT_MODEL_MLP_H\n",
            "#define MLP_ARENA_BYTES 4096\n",
            "#define MLP_ARENA_ALIGN 64\n",
            "#define MLP_NUM_INPUTS 1\n",
            "#define MLP_INPUT_IN__PUT__INDEX 0\n",
            "#define MLP_INPUT_IN__PUT__DTYPE SMELT_DTYPE_F32\n",
            "#define MLP_INPUT_IN__PUT__BYTES 256\n",
            "#define MLP_INPUT_IN__PUT__DIMS {1, 64}\n",
            "\"in\\x2a/put\\x3f\", f32 [1, 64]: 64 float, 256 bytes",
            "#define MLP_OUTPUT_Y_RANK 0\n",
            "#define MLP_OUTPUT_Y_DTYPE SMELT_DTYPE_I64\n",
            "#define MLP_OUTPUT_Y_2_DIMS {3}\n",
            "#define MLP_OUTPUT_Y_2_DTYPE SMELT_DTYPE_BOOL\n",
            "extern const smelt_model_info mlp_model;\n",
            "int32_t mlp_run(const void *const *inputs, void *const *outputs, void *arena,\n    \
             smelt_fault *fault);\n",
            " *   int32_t status = mlp_run(inputs, outputs, arena, &fault);\n",
            "#define SMELT_STATUS_OUT_OF_RANGE 1",
            "#define SMELT_MODEL_NO_FIXED_NAMES 1\n",
            "#define MLP_NUM_CHECKS 0\n",
            "#endif /* SMELT_MODEL_MLP_H */\n",
        ] {
            assert!(h.contains(want), "missing {want:?} in\n{h}");
        }
        assert!(!h.contains("#define MLP_OUTPUT_Y_DIMS"));
        assert!(!h.contains("mlp_init") && !h.contains("MLP_STATE_BYTES"));
        assert!(!h.contains("MLP_UNCHECKED"));
    }

    #[test]
    fn an_unchecked_model_says_so() {
        let io = [io("x", DType::F32, &[4])];
        let h = render(&HeaderModel {
            threads: 1,
            checks: 0,
            unchecked: true,
            name: "emb",
            triple: "x86_64-unknown-linux-gnu",
            inputs: &io,
            outputs: &io,
            arena_bytes: 64,
            arena_align: 64,
            state_bytes: 0,
            state_align: 64,
        });
        for want in [
            "/* Compiled with --unchecked: no run-time checks.",
            "emb_run\n   always returns SMELT_STATUS_OK",
            "#define EMB_UNCHECKED 1\n",
            "#define EMB_NUM_CHECKS 0\n",
        ] {
            assert!(h.contains(want), "missing {want:?} in\n{h}");
        }
    }

    #[test]
    fn a_stateful_model_declares_init_and_a_run_taking_the_state() {
        let io = [io("x", DType::F32, &[4])];
        let h = render(&HeaderModel {
            threads: 1,
            checks: 0,
            unchecked: false,
            name: "acc",
            triple: "x86_64-unknown-linux-gnu",
            inputs: &io,
            outputs: &io,
            arena_bytes: 64,
            arena_align: 64,
            state_bytes: 64,
            state_align: 64,
        });
        for want in [
            "void acc_init(void *state);\n",
            "int32_t acc_run(const void *const *inputs, void *const *outputs, void *arena, void *state,\n    \
             smelt_fault *fault);\n",
            "#define ACC_STATE_BYTES 64\n",
            "#define ACC_STATE_ALIGN 64\n",
            " *   acc_init(state); ",
        ] {
            assert!(h.contains(want), "missing {want:?} in\n{h}");
        }
    }
}
