//! Objects for the 32-bit ARM targets: ELF class and machine, the
//! hard-float attributes, the info table's 32-bit layout, no unwinder
//! references; and (where the cross tools are installed) a C program that
//! links the armv7 object, checks `smelt_model` field by field and runs the
//! model under `qemu-arm`.

use std::path::PathBuf;
use std::process::Command;

use object::{Object, ObjectSection, ObjectSymbol};
use smelt_ir::DType;

use super::*;
use crate::kernel::build::{add, cast, f, i, load, mul, muladd, reduce, splat, var, vload};
use crate::kernel::{BinOp, Buf, Expr, LANES_F32, Program, Scalar, Stmt, UnOp};
use crate::lower::IoInfo;
use crate::plan::MemoryPlan;

const N: usize = 8;

/// `t = x·w` into the arena; `y = max(t + i, 0)`; `z = i32(x · 1e10)`
/// (saturating); `k = i64 index · 3 >> 1`.
fn sample() -> Lowered {
    let mut p = Program::default();
    let iv = p.var(Scalar::I64);
    let w: Vec<u8> = (0..N)
        .flat_map(|k| (k as f32 * 0.5 - 1.0).to_le_bytes())
        .collect();
    p.consts.push(w);
    let x = load(Buf::Input(0), var(iv), Scalar::F32);
    let body = vec![
        Stmt::Store {
            buf: Buf::Arena(64),
            index: var(iv),
            value: mul(x.clone(), load(Buf::Const(0), var(iv), Scalar::F32)),
        },
        Stmt::Store {
            buf: Buf::Output(0),
            index: var(iv),
            value: crate::kernel::build::bin(
                BinOp::Max,
                add(
                    load(Buf::Arena(64), var(iv), Scalar::F32),
                    cast(Scalar::F32, var(iv)),
                ),
                f(0.0, Scalar::F32),
            ),
        },
        Stmt::Store {
            buf: Buf::Output(1),
            index: var(iv),
            value: cast(Scalar::I32, mul(x, f(1e10, Scalar::F32))),
        },
        Stmt::Store {
            buf: Buf::Output(2),
            index: var(iv),
            value: crate::kernel::build::bin(BinOp::Shr, mul(var(iv), i(3)), i(65)),
        },
    ];
    p.body = vec![Stmt::for_loop(iv, i(0), i(N as i64), body)];
    let io = |name: &str, dtype: DType| IoInfo {
        name: name.into(),
        dtype,
        shape: vec![N],
        bytes: smelt_ir::TensorType::new(dtype, vec![N]).bytes().unwrap() as u64,
    };
    Lowered {
        program: p,
        inputs: vec![io("x", DType::F32)],
        outputs: vec![
            io("y", DType::F32),
            io("z", DType::I32),
            io("k", DType::I64),
        ],
        plan: MemoryPlan {
            arena_bytes: 64 + 4 * N as u64,
            lower_bound: 4 * N as u64,
            ..MemoryPlan::default()
        },
    }
}

/// The ARM build attributes of an object: (tag, integer value) of the
/// file-scope `aeabi` subsection (string-valued tags are skipped).
fn arm_attributes(obj: &[u8]) -> Vec<(u64, u64)> {
    let file = object::File::parse(obj).unwrap();
    let data = file
        .section_by_name(".ARM.attributes")
        .expect("an .ARM.attributes section")
        .data()
        .unwrap();
    assert_eq!(data[0], b'A');
    let uleb = |d: &[u8], pos: &mut usize| -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = d[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    };
    let skip_str = |d: &[u8], pos: &mut usize| {
        while d[*pos] != 0 {
            *pos += 1;
        }
        *pos += 1;
    };
    let u32_at = |d: &[u8], p: usize| u32::from_le_bytes(d[p..p + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut pos = 1;
    while pos < data.len() {
        let len = u32_at(data, pos);
        let end = pos + len;
        let mut q = pos + 4;
        let vendor_start = q;
        skip_str(data, &mut q);
        if &data[vendor_start..q - 1] == b"aeabi" {
            while q < end {
                let (tag, size) = (data[q], u32_at(data, q + 1));
                let sub_end = q + size;
                q += 5;
                if tag == 1 {
                    while q < sub_end {
                        let t = uleb(data, &mut q);
                        // The ARM ABI's rule: 4, 5 and 67 are strings; 32
                        // is a number then a string; above 32, odd tags
                        // are strings.
                        match t {
                            4 | 5 | 67 => skip_str(data, &mut q),
                            32 => {
                                out.push((t, uleb(data, &mut q)));
                                skip_str(data, &mut q);
                            }
                            t if t > 32 && t % 2 == 1 => skip_str(data, &mut q),
                            t => out.push((t, uleb(data, &mut q))),
                        }
                    }
                }
                q = sub_end;
            }
        }
        pos = end;
    }
    out
}

fn compile_for(triple: &str) -> Vec<u8> {
    let t = LlvmTarget::baseline(triple).unwrap();
    compile(&sample(), &t, &LlvmOptions::default(), "sample").unwrap()
}

/// Checks what every 32-bit ARM object must have; returns the attributes.
fn check_arm_object(obj: &[u8], triple: &str) -> Vec<(u64, u64)> {
    let file = object::File::parse(obj).unwrap();
    assert!(!file.is_64(), "{triple}: a 32-bit object");
    assert_eq!(file.architecture(), object::Architecture::Arm, "{triple}");
    let sym = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .unwrap_or_else(|| panic!("{triple}: no symbol {name}"))
    };
    assert!(sym("smelt_model_run").is_definition());
    let info = sym("smelt_model");
    assert!(info.is_global() && info.is_definition());
    // { u32 ×3, ptr, ptr, (pad), u64, u64, ptr, (pad), u64, u64 } with
    // 4-byte pointers and 8-byte-aligned u64s: 12 + 4 + 4 + (4) + 8 + 8 + 4
    // + (4) + 8 + 8 = 64 (ABI v2 added the last two), + u32 + ptr = 72
    // (ABI v3: the checks).
    assert_eq!(info.size(), 72, "{triple}: smelt_model_info is 72 bytes");
    let undefined: Vec<String> = file
        .symbols()
        .filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty())
        .map(|s| s.name().unwrap().to_string())
        .collect();
    assert!(
        !undefined.iter().any(|s| s.contains("unwind")),
        "{triple}: the object references the unwinder: {undefined:?}"
    );
    let attrs = arm_attributes(obj);
    // Tag_ABI_VFP_args (28) = 1: floats are passed in VFP registers.
    assert!(
        attrs.contains(&(28, 1)),
        "{triple}: not the hard-float calling convention: {attrs:?}"
    );
    attrs
}

#[test]
fn armv7_linux_object_is_hard_float_and_32_bit() {
    let obj = compile_for("armv7-unknown-linux-gnueabihf");
    let attrs = check_arm_object(&obj, "armv7");
    // Tag_CPU_arch_profile (7) = 'A'; Tag_FP_arch (10) = 4, VFPv3-D16 (the
    // gnueabihf baseline); NEON off: Tag_Advanced_SIMD_arch (12) absent or 0.
    assert!(attrs.contains(&(7, u64::from(b'A'))), "{attrs:?}");
    assert!(attrs.contains(&(10, 4)), "{attrs:?}");
    assert!(!attrs.iter().any(|&(t, v)| t == 12 && v != 0), "{attrs:?}");
}

#[test]
fn thumbv7em_object_is_hard_float_cortex_m4() {
    // The three-part triple must be normalized, or LLVM uses soft float.
    let obj = compile_for("thumbv7em-none-eabihf");
    let attrs = check_arm_object(&obj, "thumbv7em");
    // Tag_CPU_arch_profile (7) = 'M', Tag_THUMB_ISA_use (9) = Thumb-2.
    assert!(attrs.contains(&(7, u64::from(b'M'))), "{attrs:?}");
    assert!(attrs.contains(&(9, 2)), "{attrs:?}");
}

#[test]
fn x86_64_and_aarch64_info_tables_have_8_byte_pointers() {
    for triple in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        let obj = compile_for(triple);
        let file = object::File::parse(&*obj).unwrap();
        assert!(file.is_64());
        let info = file
            .symbols()
            .find(|s| s.name() == Ok("smelt_model"))
            .unwrap();
        // ABI v3: 56 bytes of v1, state_bytes and state_align (v2), then
        // num_checks and the checks table.
        assert_eq!(info.size(), 88, "{triple}");
    }
}

#[test]
fn text_outputs_and_opt_levels() {
    let t = LlvmTarget::baseline("x86_64-unknown-linux-gnu").unwrap();
    let l = sample();
    let ir = compile_llvm_ir(&l, &t, &LlvmOptions::default(), "sample").unwrap();
    assert!(ir.contains(" i32 @smelt_model_run("), "{ir}");
    assert!(ir.contains("noalias"), "{ir}");
    let asm = compile_asm(&l, &t, &LlvmOptions { opt_level: 0 }, "sample").unwrap();
    assert!(asm.contains("smelt_model_run:"), "{asm}");
    let e = compile(&l, &t, &LlvmOptions { opt_level: 4 }, "sample").unwrap_err();
    assert!(e.to_string().contains("0 to 3"), "{e}");
    // Byte-identical objects from two compiles.
    let a = compile(&l, &t, &LlvmOptions::default(), "sample").unwrap();
    let b = compile(&l, &t, &LlvmOptions::default(), "sample").unwrap();
    assert!(a == b);
}

/// The C side of the ABI on armv7: `smelt_model` read through the header's
/// structs, and a run checked against the same arithmetic in C.
const ARMV7_APP: &str = r#"
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "smelt_model.h"
#define N 8
int main(void) {
    const smelt_model_info *m = &smelt_model;
    if (m->abi_version != SMELT_ABI_VERSION || m->num_inputs != 1 || m->num_outputs != 3) {
        printf("bad header fields %u %u %u\n", m->abi_version, m->num_inputs, m->num_outputs);
        return 1;
    }
    if (strcmp(m->inputs[0].name, "x") || strcmp(m->outputs[2].name, "k") ||
        m->outputs[1].dtype != SMELT_DTYPE_I32 || m->inputs[0].rank != 1 ||
        m->inputs[0].dims[0] != N || m->outputs[2].bytes != 8 * N ||
        m->arena_bytes != 96 || m->arena_align != 64 || strcmp(m->model_name, "sample")) {
        printf("bad tensor info\n");
        return 2;
    }
    static float x[N], y[N];
    static int32_t z[N];
    static int64_t k[N];
    static _Alignas(64) unsigned char arena[96];
    for (int i = 0; i < N; i++) x[i] = (float)i * 0.75f - 2.0f;
    const void *ins[1] = {x};
    void *outs[3] = {y, z, k};
    if (smelt_model_run(ins, outs, arena, 0, 0) != SMELT_STATUS_OK) return 3;
    for (int i = 0; i < N; i++) {
        float w = (float)i * 0.5f - 1.0f;
        float t = x[i] * w + (float)i;
        float ye = t > 0.0f ? t : 0.0f;
        double big = (double)(x[i] * 1e10f);
        int32_t ze = big >= 2147483647.0 ? INT32_MAX : big <= -2147483648.0 ? INT32_MIN : (int32_t)big;
        int64_t ke = ((int64_t)i * 3) >> 1;
        if (y[i] != ye || z[i] != ze || k[i] != ke) {
            printf("element %d: y %g vs %g, z %d vs %d, k %lld vs %lld\n", i, y[i], ye, z[i], ze,
                   (long long)k[i], (long long)ke);
            return 3;
        }
    }
    printf("ok\n");
    return 0;
}
"#;

#[test]
fn armv7_object_links_into_c_and_runs_under_qemu() {
    let obj = compile_for("armv7-linux-gnueabihf");
    run_c_harness(
        &obj,
        ARMV7_APP,
        "arm-linux-gnueabihf-gcc",
        Some("qemu-arm"),
        "armv7",
    );
}

/// `acc = Σ_k x[4k..4k+4] · 2` (vectors), then `y[0..4] = max(acc, −acc)`,
/// `y[4] = reduce_add(acc) + acc[3]`, `y[5] = reduce_max(acc)`.
fn vector_sample() -> Lowered {
    let mut p = Program::default();
    let acc = p.vector_var(Scalar::F32, LANES_F32);
    let k = p.var(Scalar::I64);
    let s = p.var(Scalar::F32);
    let x = |e| vload(Buf::Input(0), e, Scalar::F32, LANES_F32);
    p.body = vec![
        Stmt::Set(acc, splat(LANES_F32, f(0.0, Scalar::F32))),
        Stmt::for_loop(
            k,
            i(0),
            i(4),
            vec![Stmt::Set(
                acc,
                muladd(
                    x(mul(var(k), i(4))),
                    splat(LANES_F32, f(2.0, Scalar::F32)),
                    var(acc),
                ),
            )],
        ),
        Stmt::VStore {
            buf: Buf::Output(0),
            index: i(0),
            value: Expr::Bin(
                BinOp::Max,
                Box::new(var(acc)),
                Box::new(Expr::Un(UnOp::Neg, Box::new(var(acc)))),
            ),
        },
        Stmt::Set(s, reduce(BinOp::Add, var(acc))),
        Stmt::Store {
            buf: Buf::Output(0),
            index: i(4),
            value: add(var(s), Expr::Extract(Box::new(var(acc)), 3)),
        },
        Stmt::Store {
            buf: Buf::Output(0),
            index: i(5),
            value: reduce(BinOp::Max, var(acc)),
        },
    ];
    let io = |name: &str, n: usize| IoInfo {
        name: name.into(),
        dtype: DType::F32,
        shape: vec![n],
        bytes: 4 * n as u64,
    };
    Lowered {
        program: p,
        inputs: vec![io("x", 16)],
        outputs: vec![io("y", 6)],
        plan: MemoryPlan {
            arena_bytes: 0,
            lower_bound: 0,
            ..MemoryPlan::default()
        },
    }
}

const VECTOR_APP: &str = r#"
#include <stdio.h>
#include "smelt_model.h"
int main(void) {
    static float x[16], y[6];
    for (int i = 0; i < 16; i++) x[i] = (float)(i % 5) - 1.5f;
    const void *ins[1] = {x};
    void *outs[1] = {y};
    if (smelt_model_run(ins, outs, 0, 0, 0) != SMELT_STATUS_OK) return 3;
    float acc[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 4; l++) acc[l] = x[4 * k + l] * 2.0f + acc[l];
    float want[6];
    for (int l = 0; l < 4; l++) want[l] = acc[l] > -acc[l] ? acc[l] : -acc[l];
    want[4] = ((acc[0] + acc[1]) + acc[2]) + acc[3] + acc[3];
    float m = acc[0];
    for (int l = 1; l < 4; l++) m = acc[l] > m ? acc[l] : m;
    want[5] = m;
    for (int i = 0; i < 6; i++)
        if (y[i] != want[i]) { printf("y[%d] = %g, want %g\n", i, y[i], want[i]); return 1; }
    printf("ok\n");
    return 0;
}
"#;

/// Links `obj` with `app` by `cc` and runs it (under `runner`); the app
/// prints `ok`. Skipped (with a message) when a tool is missing.
fn run_c_harness(obj: &[u8], app: &str, cc: &str, runner: Option<&str>, tag: &str) {
    for tool in [Some(cc), runner].into_iter().flatten() {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipping the {tag} C harness: {tool} is not installed");
            return;
        }
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("smelt-llvm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.o"), obj).unwrap();
    std::fs::write(dir.join("app.c"), app).unwrap();
    std::fs::write(dir.join("smelt_model.h"), smelt_runtime::HEADER).unwrap();
    let build = Command::new(cc)
        .current_dir(&dir)
        .args(["-std=c11", "-O1", "-ffp-contract=off", "-static"])
        .args(["app.c", "model.o", "-o", "app"])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{tag}: {cc}: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let app = dir.join("app");
    let run = match runner {
        Some(r) => Command::new(r).arg(&app).output().unwrap(),
        None => Command::new(&app).output().unwrap(),
    };
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{tag}: the C harness failed: {stdout}"
    );
    assert_eq!(stdout.trim(), "ok", "{tag}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel IR's vector forms compile for every triple and compute what C
/// computes lane by lane (x86_64 natively, armv7 under qemu-arm; the sums
/// are exact, so fused and unfused multiply-adds agree).
#[test]
fn vector_forms_compile_everywhere_and_run() {
    let l = vector_sample();
    for triple in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "armv7-unknown-linux-gnueabihf",
        "thumbv7em-none-eabihf",
    ] {
        let t = LlvmTarget::baseline(triple).unwrap();
        let obj = compile(&l, &t, &LlvmOptions::default(), "v")
            .unwrap_or_else(|e| panic!("{triple}: {e}"));
        match triple {
            "x86_64-unknown-linux-gnu" if cfg!(target_arch = "x86_64") => {
                run_c_harness(&obj, VECTOR_APP, "gcc", None, "x86_64-vector")
            }
            "aarch64-unknown-linux-gnu" => run_c_harness(
                &obj,
                VECTOR_APP,
                "aarch64-linux-gnu-gcc",
                Some("qemu-aarch64"),
                "aarch64-vector",
            ),
            "armv7-unknown-linux-gnueabihf" => run_c_harness(
                &obj,
                VECTOR_APP,
                "arm-linux-gnueabihf-gcc",
                Some("qemu-arm"),
                "armv7-vector",
            ),
            _ => assert!(!obj.is_empty()),
        }
    }
}
