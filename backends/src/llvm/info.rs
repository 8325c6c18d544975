//! The read-only data of the LLVM module: the program's constants and the
//! `smelt_model` info table.
//!
//! The table is built from LLVM struct types that mirror the C structs of
//! `runtime/include/smelt_model.h` field by field; LLVM lays them out with
//! the target's data layout, which is the C ABI's layout, so pointer fields
//! are 4 bytes on 32-bit ARM and 8 on 64-bit targets without a hand-written
//! offset anywhere.

use inkwell::AddressSpace;
use inkwell::module::{Linkage, Module};
use inkwell::targets::TargetMachine;
use inkwell::values::{BasicValueEnum, PointerValue};

use super::CodegenError;

use crate::lower::{IoInfo, Lowered};

/// Alignment of every constant (a cache line, as in the Cranelift backend).
const CONST_ALIGN: u32 = 64;

/// Defines constant `i` of the program, declared by the parsed code as
/// `smelt_const_i`: private, read-only, 64-byte aligned, in a section of its
/// own (`.rodata.smelt_const_i`), so that a linker folding identical
/// sections (`ld.lld --icf=all`) keeps one copy of a weight two models of
/// one executable share (a chat program's prefill and decode models).
pub(super) fn define_consts(
    module: &Module,
    consts: &[smelt_ir::Bytes],
) -> Result<(), CodegenError> {
    let ctx = module.get_context();
    for (i, bytes) in consts.iter().enumerate() {
        let name = format!("smelt_const_{i}");
        let g = module
            .get_global(&name)
            .ok_or_else(|| CodegenError(format!("{name} is not declared")))?;
        g.set_initializer(&ctx.const_string(bytes, false));
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.set_unnamed_addr(true);
        g.set_alignment(CONST_ALIGN);
        g.set_section(Some(&format!(".rodata.{name}")));
    }
    Ok(())
}

/// Defines the exported read-only global `symbol` holding `bytes`, aligned
/// to `align`.
pub(super) fn define_data(module: &Module, symbol: &str, bytes: &[u8], align: u32) {
    let ctx = module.get_context();
    let init = ctx.const_string(bytes, false);
    let g = module.add_global(init.get_type(), None, symbol);
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::External);
    g.set_alignment(align);
    g.set_section(Some(&format!(".rodata.{symbol}")));
}

/// A private, read-only global holding `init`, returned as a pointer.
fn private_data<'c>(
    module: &Module<'c>,
    init: BasicValueEnum<'c>,
    name: &str,
    align: u32,
) -> PointerValue<'c> {
    let g = module.add_global(init.get_type(), None, name);
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::Private);
    g.set_unnamed_addr(true);
    g.set_alignment(align);
    g.as_pointer_value()
}

/// Defines the exported table `symbol` (a `smelt_model_info`) with its
/// tensor tables, names and dims.
pub(super) fn define_info(
    module: &Module,
    tm: &TargetMachine,
    l: &Lowered,
    model_name: &str,
    symbol: &str,
) {
    let ctx = module.get_context();
    let ptr = ctx.ptr_type(AddressSpace::default());
    let (i32t, i64t) = (ctx.i32_type(), ctx.i64_type());
    let td = tm.get_target_data();
    let u64_align = td.get_abi_alignment(&i64t);
    let ptr_align = td.get_abi_alignment(&ptr);

    // typedef struct { const char *name; uint32_t dtype; uint32_t rank;
    //                  const uint64_t *dims; uint64_t bytes; } smelt_tensor_info;
    let tensor_info = ctx.opaque_struct_type("smelt_tensor_info");
    tensor_info.set_body(
        &[
            ptr.into(),
            i32t.into(),
            i32t.into(),
            ptr.into(),
            i64t.into(),
        ],
        false,
    );
    let cstr = |s: &str, name: &str| {
        private_data(module, ctx.const_string(s.as_bytes(), true).into(), name, 1)
    };
    let table = |list: &[IoInfo], kind: &str| -> PointerValue {
        let entries: Vec<_> = list
            .iter()
            .enumerate()
            .map(|(k, io)| {
                let name = cstr(&io.name, &format!("smelt_{kind}_{k}_name"));
                // A scalar gets one zero dim, as in the Cranelift backend: the
                // pointer is never NULL.
                let dims: Vec<_> = if io.shape.is_empty() {
                    vec![i64t.const_zero()]
                } else {
                    io.shape
                        .iter()
                        .map(|&d| i64t.const_int(d as u64, false))
                        .collect()
                };
                let dims = private_data(
                    module,
                    i64t.const_array(&dims).into(),
                    &format!("smelt_{kind}_{k}_dims"),
                    u64_align,
                );
                tensor_info.const_named_struct(&[
                    name.into(),
                    i32t.const_int(io.dtype.onnx_code() as u64, false).into(),
                    i32t.const_int(io.shape.len() as u64, false).into(),
                    dims.into(),
                    i64t.const_int(io.bytes, false).into(),
                ])
            })
            .collect();
        if entries.is_empty() {
            return ptr.const_null();
        }
        private_data(
            module,
            tensor_info.const_array(&entries).into(),
            &format!("smelt_{kind}s"),
            u64_align.max(ptr_align),
        )
    };
    let inputs = table(&l.inputs, "input");
    let outputs = table(&l.outputs, "output");

    // typedef struct { const char *node, *op, *what; int64_t lo, hi; }
    //   smelt_check_info;
    let check_info = ctx.opaque_struct_type("smelt_check_info");
    check_info.set_body(
        &[ptr.into(), ptr.into(), ptr.into(), i64t.into(), i64t.into()],
        false,
    );
    let checks = &l.program.checks;
    let entries: Vec<_> = checks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            check_info.const_named_struct(&[
                cstr(&c.node, &format!("smelt_check_{k}_node")).into(),
                cstr(&c.op, &format!("smelt_check_{k}_op")).into(),
                cstr(&c.what, &format!("smelt_check_{k}_what")).into(),
                i64t.const_int(c.lo as u64, false).into(),
                i64t.const_int(c.hi as u64, false).into(),
            ])
        })
        .collect();
    let checks_ptr = if entries.is_empty() {
        ptr.const_null()
    } else {
        private_data(
            module,
            check_info.const_array(&entries).into(),
            "smelt_checks",
            u64_align.max(ptr_align),
        )
    };

    // typedef struct { uint32_t abi_version, num_inputs, num_outputs;
    //   const smelt_tensor_info *inputs, *outputs; uint64_t arena_bytes,
    //   arena_align; const char *model_name; uint64_t state_bytes,
    //   state_align; uint32_t num_checks; const smelt_check_info *checks; }
    //   smelt_model_info;
    let model_info = ctx.opaque_struct_type("smelt_model_info");
    model_info.set_body(
        &[
            i32t.into(),
            i32t.into(),
            i32t.into(),
            ptr.into(),
            ptr.into(),
            i64t.into(),
            i64t.into(),
            ptr.into(),
            i64t.into(),
            i64t.into(),
            i32t.into(),
            ptr.into(),
        ],
        false,
    );
    let name = cstr(model_name, "smelt_model_name");
    let arena = l.plan.arena_bytes.max(crate::plan::ALIGN);
    let init = model_info.const_named_struct(&[
        i32t.const_int(smelt_runtime::ABI_VERSION as u64, false)
            .into(),
        i32t.const_int(l.inputs.len() as u64, false).into(),
        i32t.const_int(l.outputs.len() as u64, false).into(),
        inputs.into(),
        outputs.into(),
        i64t.const_int(arena, false).into(),
        i64t.const_int(crate::plan::ALIGN, false).into(),
        name.into(),
        i64t.const_int(l.plan.state_bytes, false).into(),
        i64t.const_int(crate::plan::ALIGN, false).into(),
        i32t.const_int(checks.len() as u64, false).into(),
        checks_ptr.into(),
    ]);
    let g = module.add_global(model_info, None, symbol);
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::External);
    g.set_alignment(u64_align.max(ptr_align));
}
