//! The Cranelift backend: kernel IR → a relocatable object that exports the
//! runtime ABI (an entry point and an info table, named by
//! [`crate::abi::ModelSymbols`]: `smelt_model_run` and `smelt_model` in
//! executables, `NAME_run` and `NAME_model` in libraries and objects; see
//! `runtime/include/smelt_model.h`).
//!
//! The body is cut into parts ([`crate::split`]), one function each, which
//! the entry point calls in order. Kernel-IR variables become Cranelift
//! `Variable`s (the frontend builds SSA); loops become header/body/exit
//! blocks; the base addresses of the buffers a function uses are computed
//! once in its entry block; constants are read-only data objects.

use std::collections::HashMap;

use cranelift_codegen::ir;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value,
    types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, isa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{DataDescription, DataId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

use crate::kernel::{BinOp, Buf, CmpOp, Expr, Half, Program, Scalar, Stmt, UnOp, Var};
use crate::lower::Lowered;
use crate::target::Target;

/// The code generators' shared error (see [`crate::error`]).
pub use crate::error::CodegenError;

fn err(e: impl std::fmt::Display) -> CodegenError {
    CodegenError(e.to_string())
}

/// The Cranelift type of a scalar (the half types, which `compile` refuses
/// unexpanded, as their storage).
fn clif_type(s: Scalar) -> Type {
    match s {
        Scalar::F32 => types::F32,
        Scalar::F64 => types::F64,
        Scalar::I8 | Scalar::U8 | Scalar::Bool => types::I8,
        Scalar::I16 | Scalar::U16 | Scalar::F16 | Scalar::BF16 => types::I16,
        Scalar::I32 | Scalar::U32 => types::I32,
        Scalar::I64 | Scalar::U64 => types::I64,
    }
}

/// The Cranelift type of `lanes` elements of `s` (a scalar when `lanes` is 1).
fn clif_vtype(s: Scalar, lanes: u8) -> Type {
    let t = clif_type(s);
    if lanes == 1 {
        t
    } else {
        t.by(lanes as u32).unwrap_or(t)
    }
}

/// Flags of vector loads and stores: they never trap, but unlike scalar
/// accesses they are not marked aligned (an aligned vector load may be
/// folded into an SSE operand, which faults on an unaligned address).
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn isa_for(target: Target) -> Result<std::sync::Arc<dyn isa::TargetIsa>, CodegenError> {
    if !target.cranelift_supported() {
        return Err(CodegenError(format!(
            "Cranelift has no code generator for {target} (it has no 32-bit Arm backend); use --backend llvm"
        )));
    }
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(err)?;
    flags.set("is_pic", "true").map_err(err)?;
    let mut b = isa::lookup(crate::target::lexicon(target)).map_err(err)?;
    if target == Target::X86_64Linux {
        // x86-64-v2 baseline: SSE4.1 gives round/floor/ceil instructions
        // instead of libcalls.
        for f in [
            "has_sse3",
            "has_ssse3",
            "has_sse41",
            "has_sse42",
            "has_popcnt",
        ] {
            b.enable(f).map_err(err)?;
        }
    }
    b.finish(settings::Flags::new(flags)).map_err(err)
}

/// The vector unit this backend generates code for on `target`: 128-bit
/// vectors (Cranelift has no wider ones), 32 registers and FMA on aarch64,
/// 16 registers and no FMA on the x86-64-v2 baseline.
pub fn vector_shape(target: Target) -> crate::kernel::VectorShape {
    let aarch64 = target == Target::Aarch64Linux;
    crate::kernel::VectorShape {
        f32_lanes: crate::kernel::LANES_F32,
        registers: if aarch64 { 32 } else { 16 },
        fma: aarch64,
    }
}

/// Compiles a lowered model to an object file for `target`.
/// `symbols` names the table and the entry point
/// ([`crate::abi::ModelSymbols`]). A program scheduled for vectors
/// wider than 128 bits (an LLVM target's AVX shape) is refused.
pub fn compile(
    l: &Lowered,
    target: Target,
    model_name: &str,
    symbols: &crate::abi::ModelSymbols,
) -> Result<Vec<u8>, CodegenError> {
    crate::kernel::half::check_expanded(&l.program).map_err(err)?;
    let widest = l.program.widest_vector_bytes();
    if widest > 16 {
        return Err(CodegenError(format!(
            "the program uses {}-bit vectors but Cranelift has 128-bit vectors only: lower it \
             for Cranelift's vector shape (`cranelift::vector_shape`) or use --backend llvm",
            widest * 8
        )));
    }
    let isa = isa_for(target)?;
    let mut builder = ObjectBuilder::new(
        isa,
        model_name.as_bytes().to_vec(),
        cranelift_module::default_libcall_names(),
    )
    .map_err(err)?;
    // A section per constant, as the LLVM backend does: a linker folding
    // identical sections keeps one copy of a weight two models share.
    builder.per_data_object_section(true);
    let mut module = ObjectModule::new(builder);
    let ptr = module.target_config().pointer_type();

    let mut const_ids = Vec::with_capacity(l.program.consts.len());
    for (i, bytes) in l.program.consts.iter().enumerate() {
        let id = module
            .declare_data(&format!("smelt_const_{i}"), Linkage::Local, false, false)
            .map_err(err)?;
        let mut d = DataDescription::new();
        // Cranelift's data description owns its bytes: the one copy, made
        // for the object writer.
        d.define(bytes.to_vec().into_boxed_slice());
        d.set_align(64);
        module.define_data(id, &d).map_err(err)?;
        const_ids.push(id);
    }
    define_info(&mut module, l, model_name, &symbols.info)?;

    // The body in parts (`crate::split`), each a function taking the run
    // function's parameters: inputs, outputs, arena, and the state buffer
    // when the entry point takes it (every stateful model; every model under
    // the runtime's fixed names); then the fault record. Each returns the
    // status, as the run function does.
    let parts = crate::split::parts(&l.program, crate::split::PART_BUDGET);
    let takes_state = symbols.takes_state(l.has_state());
    let n_params = if takes_state { 4 } else { 3 };
    if takes_state {
        define_init(&mut module, l, &symbols.init)?;
    }
    let mut run_sig = module.make_signature();
    for _ in 0..=n_params {
        run_sig.params.push(AbiParam::new(ptr));
    }
    run_sig.returns.push(AbiParam::new(types::I32));
    let func_id = module
        .declare_function(&symbols.run, Linkage::Export, &run_sig)
        .map_err(err)?;
    let mut part_ids = Vec::with_capacity(parts.len());
    for part in &parts {
        let id = module
            .declare_function(&part.name(), Linkage::Local, &run_sig)
            .map_err(err)?;
        part_ids.push(id);
    }

    // Parallel loops (top level only): task functions `(ctx, lo, hi)` and
    // the runtime's `smelt_parallel_for(task, ctx, n, threads)`.
    let par_loops: Vec<&Stmt> = l
        .program
        .body
        .iter()
        .filter(|s| matches!(s, Stmt::Parallel { .. }))
        .collect();
    let mut tasks = Vec::new();
    let mut pfor = None;
    if !par_loops.is_empty() {
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        for k in 0..par_loops.len() {
            let id = module
                .declare_function(&format!("smelt_task_{k}"), Linkage::Local, &sig)
                .map_err(err)?;
            tasks.push(id);
        }
        let mut sig = module.make_signature();
        for t in [ptr, ptr, types::I64, types::I64] {
            sig.params.push(AbiParam::new(t));
        }
        pfor = Some(
            module
                .declare_function("smelt_parallel_for", Linkage::Import, &sig)
                .map_err(err)?,
        );
    }

    // The run function calls the parts in order and returns the first
    // failing status (the parts after it do not run), else 0.
    let mut fbc = FunctionBuilderContext::new();
    let mut ctx: Context = module.make_context();
    ctx.func.signature = run_sig.clone();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
        let entry = entry_block(&mut b);
        let params = b.block_params(entry).to_vec();
        let failed = b.create_block();
        b.append_block_param(failed, types::I32);
        for &id in &part_ids {
            let f = module.declare_func_in_func(id, b.func);
            let call = b.ins().call(f, &params);
            let status = b.inst_results(call)[0];
            let next = b.create_block();
            b.ins()
                .brif(status, failed, &[ir::BlockArg::Value(status)], next, &[]);
            b.switch_to_block(next);
            b.seal_block(next);
        }
        let ok = b.ins().iconst(types::I32, 0);
        b.ins().return_(&[ok]);
        b.switch_to_block(failed);
        b.seal_block(failed);
        let status = b.block_params(failed)[0];
        b.ins().return_(&[status]);
        b.finalize(module.target_config());
    }
    module
        .define_function(func_id, &mut ctx)
        .map_err(|e| err(format!("{e:?}")))?;

    for (part, &id) in parts.iter().zip(&part_ids) {
        let mut ctx: Context = module.make_context();
        ctx.func.signature = run_sig.clone();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
            let entry = entry_block(&mut b);
            let mut params = b.block_params(entry).to_vec();
            let fault = params.pop();
            let par = match pfor {
                Some(pf) if part.parallel > 0 => Some(Par {
                    pfor: module.declare_func_in_func(pf, b.func),
                    tasks: tasks[part.parallel_before..part.parallel_before + part.parallel]
                        .iter()
                        .map(|&t| module.declare_func_in_func(t, b.func))
                        .collect(),
                    args: params.clone(),
                    next: 0,
                }),
                _ => None,
            };
            let mut g = Gen::new(
                &mut module,
                l,
                b,
                &const_ids,
                &part.bufs,
                &params,
                target,
                par,
            );
            g.fault = fault;
            g.stmts(part.body)?;
            let ok = g.b.ins().iconst(types::I32, 0);
            g.b.ins().return_(&[ok]);
            g.fault_exit()?;
            let config = g.config;
            g.b.finalize(config);
        }
        module
            .define_function(id, &mut ctx)
            .map_err(|e| err(format!("{e:?}")))?;
    }

    for (k, s) in par_loops.iter().enumerate() {
        let Stmt::Parallel { var, body, .. } = s else {
            continue;
        };
        let mut ctx: Context = module.make_context();
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(types::I64));
        ctx.func.signature.params.push(AbiParam::new(types::I64));
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
        let entry = entry_block(&mut b);
        let p = b.block_params(entry).to_vec();
        let flags = MemFlagsData::trusted();
        let io: Vec<Value> = (0..n_params)
            .map(|j| b.ins().load(ptr, flags, p[0], j * 8))
            .collect();
        let (_, bufs) = crate::split::mentions(body);
        let mut g = Gen::new(&mut module, l, b, &const_ids, &bufs, &io, target, None);
        g.counted_loop(*var, p[1], p[2], body)?;
        g.b.ins().return_(&[]);
        let config = g.config;
        g.b.finalize(config);
        module
            .define_function(tasks[k], &mut ctx)
            .map_err(|e| err(format!("{e:?}")))?;
    }
    let product = module.finish();
    product.emit().map_err(err)
}

/// The function's entry block, with the signature's parameters, current
/// and sealed.
fn entry_block(b: &mut FunctionBuilder) -> Block {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    entry
}

/// Defines `init(state)`, which writes the initial state: zero bytes over
/// the whole state buffer (nothing for a stateless model).
fn define_init(module: &mut ObjectModule, l: &Lowered, symbol: &str) -> Result<(), CodegenError> {
    let ptr = module.target_config().pointer_type();
    let mut ctx: Context = module.make_context();
    ctx.func.signature.params.push(AbiParam::new(ptr));
    let id = module
        .declare_function(symbol, Linkage::Export, &ctx.func.signature)
        .map_err(err)?;
    let mut fbc = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
        let entry = entry_block(&mut b);
        let state = b.block_params(entry)[0];
        if l.plan.state_bytes > 0 {
            let config = module.target_config();
            let zero = b.ins().iconst(types::I8, 0);
            let size = b.ins().iconst(ptr, l.plan.state_bytes as i64);
            b.call_memset(config, state, zero, size);
        }
        b.ins().return_(&[]);
        b.finalize(module.target_config());
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err(format!("{e:?}")))
}

/// Emits the model's info table (names, dtypes, dims, sizes) as `info_symbol`.
fn define_info(
    module: &mut ObjectModule,
    l: &Lowered,
    model_name: &str,
    info_symbol: &str,
) -> Result<DataId, CodegenError> {
    let mut counter = 0usize;
    let mut blob =
        |module: &mut ObjectModule, bytes: Vec<u8>, align: u64| -> Result<DataId, CodegenError> {
            counter += 1;
            let id = module
                .declare_data(
                    &format!("smelt_info_{counter}"),
                    Linkage::Local,
                    false,
                    false,
                )
                .map_err(err)?;
            let mut d = DataDescription::new();
            d.define(bytes.into_boxed_slice());
            d.set_align(align);
            module.define_data(id, &d).map_err(err)?;
            Ok(id)
        };
    let cstr = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    };
    // struct smelt_tensor_info { const char *name; u32 dtype; u32 rank; const u64 *dims; u64 bytes; } = 32 bytes
    let mut tables = Vec::new();
    for list in [&l.inputs, &l.outputs] {
        let mut names = Vec::new();
        let mut dims = Vec::new();
        for io in list.iter() {
            names.push(blob(module, cstr(&io.name), 1)?);
            let d: Vec<u8> = io
                .shape
                .iter()
                .flat_map(|&x| (x as u64).to_le_bytes())
                .collect();
            dims.push(blob(module, if d.is_empty() { vec![0; 8] } else { d }, 8)?);
        }
        let id = module
            .declare_data(
                &format!("smelt_info_table_{}", tables.len()),
                Linkage::Local,
                false,
                false,
            )
            .map_err(err)?;
        let mut d = DataDescription::new();
        let mut bytes = Vec::with_capacity(list.len() * 32);
        for io in list.iter() {
            bytes.extend_from_slice(&0u64.to_le_bytes());
            bytes.extend_from_slice(&(io.dtype.onnx_code() as u32).to_le_bytes());
            bytes.extend_from_slice(&(io.shape.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&0u64.to_le_bytes());
            bytes.extend_from_slice(&io.bytes.to_le_bytes());
        }
        if bytes.is_empty() {
            bytes.resize(8, 0);
        }
        d.define(bytes.into_boxed_slice());
        d.set_align(8);
        for (k, (n, dm)) in names.iter().zip(&dims).enumerate() {
            let gn = module.declare_data_in_data(*n, &mut d);
            d.write_data_addr((k * 32) as u32, gn, 0);
            let gd = module.declare_data_in_data(*dm, &mut d);
            d.write_data_addr((k * 32 + 16) as u32, gd, 0);
        }
        module.define_data(id, &d).map_err(err)?;
        tables.push(id);
    }
    let name_id = blob(module, cstr(model_name), 1)?;
    // struct smelt_check_info { ptr node; ptr op; ptr what; i64 lo; i64 hi } = 40 bytes
    let checks = &l.program.checks;
    let mut check_strs = Vec::with_capacity(checks.len());
    for c in checks {
        check_strs.push([
            blob(module, cstr(&c.node), 1)?,
            blob(module, cstr(&c.op), 1)?,
            blob(module, cstr(&c.what), 1)?,
        ]);
    }
    let checks_id = if checks.is_empty() {
        None
    } else {
        let mut bytes = Vec::with_capacity(checks.len() * 40);
        for c in checks {
            bytes.extend_from_slice(&[0; 24]);
            bytes.extend_from_slice(&c.lo.to_le_bytes());
            bytes.extend_from_slice(&c.hi.to_le_bytes());
        }
        let id = module
            .declare_data("smelt_info_checks", Linkage::Local, false, false)
            .map_err(err)?;
        let mut d = DataDescription::new();
        d.define(bytes.into_boxed_slice());
        d.set_align(8);
        for (k, strs) in check_strs.iter().enumerate() {
            for (j, s) in strs.iter().enumerate() {
                let gs = module.declare_data_in_data(*s, &mut d);
                d.write_data_addr((k * 40 + j * 8) as u32, gs, 0);
            }
        }
        module.define_data(id, &d).map_err(err)?;
        Some(id)
    };
    // struct smelt_model_info { u32 abi; u32 nin; u32 nout; (pad) ; ptr inputs; ptr outputs; u64 arena; u64 align; ptr name; u64 state; u64 state_align; u32 num_checks; (pad); ptr checks } = 88 bytes
    let id = module
        .declare_data(info_symbol, Linkage::Export, false, false)
        .map_err(err)?;
    let mut d = DataDescription::new();
    let mut bytes = Vec::with_capacity(72);
    bytes.extend_from_slice(&smelt_runtime::ABI_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(l.inputs.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(l.outputs.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // inputs
    bytes.extend_from_slice(&0u64.to_le_bytes()); // outputs
    bytes.extend_from_slice(&l.plan.arena_bytes.max(crate::plan::ALIGN).to_le_bytes());
    bytes.extend_from_slice(&crate::plan::ALIGN.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // name
    bytes.extend_from_slice(&l.plan.state_bytes.to_le_bytes());
    bytes.extend_from_slice(&crate::plan::ALIGN.to_le_bytes());
    bytes.extend_from_slice(&(checks.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // checks
    d.define(bytes.into_boxed_slice());
    d.set_align(8);
    let gi = module.declare_data_in_data(tables[0], &mut d);
    d.write_data_addr(16, gi, 0);
    let go = module.declare_data_in_data(tables[1], &mut d);
    d.write_data_addr(24, go, 0);
    let gn = module.declare_data_in_data(name_id, &mut d);
    d.write_data_addr(48, gn, 0);
    if let Some(c) = checks_id {
        let gc = module.declare_data_in_data(c, &mut d);
        d.write_data_addr(80, gc, 0);
    }
    module.define_data(id, &d).map_err(err)?;
    Ok(id)
}

/// The run function's view of its parallel loops: `smelt_parallel_for`,
/// the outlined tasks in program order, and the run's parameters (inputs,
/// outputs, arena), which each task gets through a `ctx` array on the stack
/// and unpacks like the run function does.
struct Par {
    pfor: FuncRef,
    tasks: Vec<FuncRef>,
    args: Vec<Value>,
    next: usize,
}

struct Gen<'a> {
    p: &'a Program,
    b: FunctionBuilder<'a>,
    vars: HashMap<Var, Variable>,
    bases: HashMap<Buf, Value>,
    arena: Value,
    /// The state buffer (when the function takes it).
    state: Option<Value>,
    config: isa::TargetFrontendConfig,
    /// Whether `MulAdd` becomes one fused instruction.
    fma: bool,
    /// Parallel loops, in the run function (none in a task).
    par: Option<Par>,
    /// The caller's fault record (a pointer, maybe null), in the run
    /// function (none in a task: checks are never in parallel loops).
    fault: Option<Value>,
    /// The block every failed check jumps to, with the check's number
    /// (`i32`), the value and the bounds (`i64`); made at the first check.
    fault_block: Option<Block>,
}

impl<'a> Gen<'a> {
    /// A generator for a function whose `io` are the run function's
    /// parameters (the input and output pointer arrays, the arena and, when
    /// it takes one, the state buffer): loads the base addresses of `bufs`
    /// (the buffers the function uses) in the current (entry) block.
    /// Variables are declared as they are met.
    #[allow(clippy::too_many_arguments)]
    fn new(
        module: &mut ObjectModule,
        l: &'a Lowered,
        mut b: FunctionBuilder<'a>,
        const_ids: &[DataId],
        bufs: &[Buf],
        io: &[Value],
        target: Target,
        par: Option<Par>,
    ) -> Gen<'a> {
        let ptr = module.target_config().pointer_type();
        let (inputs, outputs, arena, state) = (io[0], io[1], io[2], io.get(3).copied());
        let mut bases: HashMap<Buf, Value> = HashMap::new();
        let flags = MemFlagsData::trusted();
        for &buf in bufs {
            let v = match buf {
                Buf::Input(k) => b.ins().load(ptr, flags, inputs, (k * 8) as i32),
                Buf::Output(k) => b.ins().load(ptr, flags, outputs, (k * 8) as i32),
                Buf::Const(i) => match const_ids.get(i as usize) {
                    Some(id) => {
                        let gv = module.declare_data_in_func(*id, b.func);
                        b.ins().symbol_value(ptr, gv)
                    }
                    // `base` reports the missing buffer.
                    None => continue,
                },
                Buf::Arena(_) | Buf::State(_) => continue,
            };
            bases.insert(buf, v);
        }
        Gen {
            p: &l.program,
            b,
            vars: HashMap::new(),
            bases,
            arena,
            state,
            config: module.target_config(),
            // NEON always has a fused multiply-add; the x86-64-v2 baseline
            // has none (FMA3 came with Haswell, and a libcall is slower
            // than the two instructions).
            fma: target == Target::Aarch64Linux,
            par,
            fault: None,
            fault_block: None,
        }
    }

    /// The Cranelift variable of `v`, declared on first use.
    fn var(&mut self, v: Var) -> Variable {
        if let Some(&x) = self.vars.get(&v) {
            return x;
        }
        let ty = clif_vtype(self.p.vars[v.0 as usize], self.p.var_lane_count(v));
        let x = self.b.declare_var(ty);
        self.vars.insert(v, x);
        x
    }

    /// `for var in s0..e0 { body }` (`s0`, `e0`: `i64` values).
    fn counted_loop(
        &mut self,
        var: Var,
        s0: Value,
        e0: Value,
        body: &[Stmt],
    ) -> Result<(), CodegenError> {
        let v = self.var(var);
        self.b.def_var(v, s0);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let cur = self.b.use_var(v);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, cur, e0);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        self.b.seal_block(body_block);
        self.stmts(body)?;
        let cur = self.b.use_var(v);
        let next = self.b.ins().iadd_imm_s(cur, 1);
        self.b.def_var(v, next);
        self.b.ins().jump(header, &[]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        Ok(())
    }

    /// A parallel loop: stores the run's parameters in a stack array and
    /// calls `smelt_parallel_for(task, ctx, extent, threads)`.
    fn parallel(&mut self, extent: i64) -> Result<(), CodegenError> {
        let threads = i64::from(self.p.threads.max(1));
        let ptr = self.config.pointer_type();
        let Some(par) = self.par.as_mut() else {
            return Err(CodegenError(
                "a parallel loop that is not at the top level of the program".into(),
            ));
        };
        let task = *par
            .tasks
            .get(par.next)
            .ok_or_else(|| CodegenError("more parallel loops than outlined tasks".into()))?;
        par.next += 1;
        let (pfor, args) = (par.pfor, par.args.clone());
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * args.len() as u32,
            3,
        ));
        for (j, a) in args.iter().enumerate() {
            self.b.ins().stack_store(ptr, *a, slot, (j * 8) as i32);
        }
        let ctx = self.b.ins().stack_addr(ptr, slot, 0);
        let f = self.b.ins().func_addr(ptr, task);
        let n = self.b.ins().iconst(types::I64, extent);
        let t = self.b.ins().iconst(types::I64, threads);
        self.b.ins().call(pfor, &[f, ctx, n, t]);
        Ok(())
    }

    /// A run-time check: `value - lo <u hi - lo` (one compare for both
    /// bounds), else a jump to the fault block.
    fn check(&mut self, value: &Expr, check: u32) -> Result<(), CodegenError> {
        let c = (self.p.checks.get(check as usize))
            .ok_or_else(|| CodegenError(format!("check {check} is not declared")))?;
        let (lo, hi) = (c.lo, c.hi);
        if self.fault.is_none() {
            return Err(CodegenError(
                "a run-time check outside the run function (in a parallel loop)".into(),
            ));
        }
        let exit = *self.fault_block.get_or_insert_with(|| {
            let blk = self.b.create_block();
            self.b.append_block_param(blk, types::I32);
            for _ in 0..3 {
                self.b.append_block_param(blk, types::I64);
            }
            blk
        });
        let v = self.expr(value)?;
        let d = self.b.ins().iadd_imm_s(v, lo.wrapping_neg());
        let ok = (self.b.ins()).icmp_imm_s(IntCC::UnsignedLessThan, d, hi.wrapping_sub(lo));
        let id = self.b.ins().iconst(types::I32, i64::from(check));
        let lo = self.b.ins().iconst(types::I64, lo);
        let hi = self.b.ins().iconst(types::I64, hi);
        let cont = self.b.create_block();
        let args = [id, v, lo, hi].map(ir::BlockArg::Value);
        self.b.ins().brif(ok, cont, &[], exit, &args);
        self.b.switch_to_block(cont);
        self.b.seal_block(cont);
        Ok(())
    }

    /// The fault block, after the function's last return: fills the fault
    /// record (`smelt_fault`) when the caller gave one and returns
    /// `SMELT_STATUS_OUT_OF_RANGE` (1).
    fn fault_exit(&mut self) -> Result<(), CodegenError> {
        let (Some(exit), Some(fault)) = (self.fault_block, self.fault) else {
            return Ok(());
        };
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        let p = self.b.block_params(exit).to_vec();
        let (fill, done) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(fault, fill, &[], done, &[]);
        self.b.switch_to_block(fill);
        self.b.seal_block(fill);
        let flags = MemFlagsData::trusted();
        let zero = self.b.ins().iconst(types::I32, 0);
        for (v, off) in [(p[0], 0), (zero, 4), (p[1], 8), (p[2], 16), (p[3], 24)] {
            self.b.ins().store(flags, v, fault, off);
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        self.b.seal_block(done);
        let status = self.b.ins().iconst(types::I32, 1);
        self.b.ins().return_(&[status]);
        Ok(())
    }

    fn base(&mut self, buf: Buf) -> Result<Value, CodegenError> {
        match buf {
            Buf::Arena(off) => Ok(self.b.ins().iadd_imm_s(self.arena, off as i64)),
            Buf::State(off) => {
                let state = self.state.ok_or_else(|| {
                    CodegenError("the program reads state but the function has no state".into())
                })?;
                Ok(self.b.ins().iadd_imm_s(state, off as i64))
            }
            other => self
                .bases
                .get(&other)
                .copied()
                .ok_or_else(|| CodegenError(format!("no buffer {other:?}"))),
        }
    }

    fn addr(&mut self, buf: Buf, index: &Expr, ty: Scalar) -> Result<Value, CodegenError> {
        let base = self.base(buf)?;
        let i = self.expr(index)?;
        let off = self.b.ins().imul_imm_s(i, ty.bytes() as i64);
        Ok(self.b.ins().iadd(base, off))
    }

    /// The address `off` bytes into `buf`.
    fn byte_addr(&mut self, buf: Buf, off: &Expr) -> Result<Value, CodegenError> {
        let base = self.base(buf)?;
        let off = self.expr(off)?;
        Ok(self.b.ins().iadd(base, off))
    }

    fn stmts(&mut self, body: &[Stmt]) -> Result<(), CodegenError> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), CodegenError> {
        match s {
            Stmt::Set(v, e) => {
                let x = self.expr(e)?;
                let v = self.var(*v);
                self.b.def_var(v, x);
            }
            Stmt::Store { buf, index, value } => {
                let ty = self.p.ty(value);
                let x = self.expr(value)?;
                let a = self.addr(*buf, index, ty)?;
                self.b.ins().store(MemFlagsData::trusted(), x, a, 0);
            }
            Stmt::VStore { buf, index, value } => {
                let ty = self.p.ty(value);
                let x = self.expr(value)?;
                let a = self.addr(*buf, index, ty)?;
                self.b.ins().store(vector_flags(), x, a, 0);
            }
            // One iteration: the body once, without the loop's blocks.
            Stmt::For { var, body, .. } if let Some(a) = s.single_iteration() => {
                let v = self.var(*var);
                let first = self.b.ins().iconst(types::I64, a);
                self.b.def_var(v, first);
                self.stmts(body)?;
                let end = self.b.ins().iconst(types::I64, a + 1);
                self.b.def_var(v, end);
            }
            Stmt::For {
                var,
                start,
                end,
                body,
            } => {
                let s0 = self.expr(start)?;
                let e0 = self.expr(end)?;
                self.counted_loop(*var, s0, e0, body)?;
            }
            Stmt::Parallel { extent, .. } => self.parallel(*extent)?,
            Stmt::Check { value, check } => self.check(value, *check)?,
            Stmt::If(c, t, e) => {
                let cv = self.expr(c)?;
                let (tb, eb, join) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().brif(cv, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.b.seal_block(tb);
                self.stmts(t)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(eb);
                self.b.seal_block(eb);
                self.stmts(e)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
                self.b.seal_block(join);
            }
            Stmt::Copy(c) => {
                let d = self.byte_addr(c.dst, &c.dst_off)?;
                let sp = self.byte_addr(c.src, &c.src_off)?;
                let n = self.expr(&c.bytes)?;
                self.b.call_memcpy(self.config, d, sp, n);
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, CodegenError> {
        Ok(match e {
            Expr::F(v, Scalar::F32) => self.b.ins().f32const(*v as f32),
            Expr::F(v, Scalar::F64) => self.b.ins().f64const(*v),
            Expr::F(v, t) => self.b.ins().iconst(clif_type(*t), *v as i64),
            Expr::I(v, t) => match t {
                Scalar::F32 => self.b.ins().f32const(*v as f32),
                Scalar::F64 => self.b.ins().f64const(*v as f64),
                _ => {
                    let ty = clif_type(*t);
                    // iconst takes the value truncated to the type's width.
                    let mask = if ty.bits() == 64 {
                        *v
                    } else {
                        *v & ((1i64 << ty.bits()) - 1)
                    };
                    self.b.ins().iconst(ty, mask)
                }
            },
            Expr::Var(v) => {
                let v = self.var(*v);
                self.b.use_var(v)
            }
            Expr::Load { buf, index, ty } => {
                let a = self.addr(*buf, index, *ty)?;
                self.b
                    .ins()
                    .load(clif_type(*ty), MemFlagsData::trusted(), a, 0)
            }
            Expr::Un(op, a) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                self.unary(*op, x, ty)?
            }
            Expr::Bin(op, a, b) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                // A vector shift takes one scalar amount for every lane.
                let y = match (op, &**b) {
                    (BinOp::Shl | BinOp::Shr, Expr::Splat(_, amount)) => self.expr(amount)?,
                    _ => self.expr(b)?,
                };
                self.binary(*op, x, y, ty)?
            }
            Expr::Cmp(op, a, b) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                if ty.is_float() {
                    let cc = match op {
                        CmpOp::Eq => FloatCC::Equal,
                        CmpOp::Ne => FloatCC::NotEqual,
                        CmpOp::Lt => FloatCC::LessThan,
                        CmpOp::Le => FloatCC::LessThanOrEqual,
                        CmpOp::Gt => FloatCC::GreaterThan,
                        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
                    };
                    self.b.ins().fcmp(cc, x, y)
                } else {
                    let s = ty.is_signed();
                    let cc = match op {
                        CmpOp::Eq => IntCC::Equal,
                        CmpOp::Ne => IntCC::NotEqual,
                        CmpOp::Lt if s => IntCC::SignedLessThan,
                        CmpOp::Le if s => IntCC::SignedLessThanOrEqual,
                        CmpOp::Gt if s => IntCC::SignedGreaterThan,
                        CmpOp::Ge if s => IntCC::SignedGreaterThanOrEqual,
                        CmpOp::Lt => IntCC::UnsignedLessThan,
                        CmpOp::Le => IntCC::UnsignedLessThanOrEqual,
                        CmpOp::Gt => IntCC::UnsignedGreaterThan,
                        CmpOp::Ge => IntCC::UnsignedGreaterThanOrEqual,
                    };
                    self.b.ins().icmp(cc, x, y)
                }
            }
            Expr::Select(c, a, b) => {
                let cv = self.expr(c)?;
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                self.b.ins().select(cv, x, y)
            }
            Expr::Cast(to, a) if self.p.lanes(a) > 1 => {
                let (from, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                self.vector_cast(x, from, *to, lanes)?
            }
            Expr::Cast(to, a) => {
                let from = self.p.ty(a);
                let x = self.expr(a)?;
                self.cast(x, from, *to)
            }
            Expr::Bitcast(to, a) => {
                let lanes = self.p.lanes(e);
                let x = self.expr(a)?;
                let to = clif_vtype(*to, lanes);
                if self.b.func.dfg.value_type(x) == to {
                    // `u8x16` as `i8x16`: one Cranelift type.
                    x
                } else if lanes == 1 {
                    self.b.ins().bitcast(to, MemFlagsData::new(), x)
                } else {
                    // Vector lanes are numbered in memory (little-endian) order.
                    let flags = MemFlagsData::new().with_endianness(ir::Endianness::Little);
                    self.b.ins().bitcast(to, flags, x)
                }
            }
            Expr::Widen(half, a) => {
                let signed = self.p.ty(a).is_signed();
                let x = self.expr(a)?;
                match (half, signed) {
                    (Half::Low, true) => self.b.ins().swiden_low(x),
                    (Half::High, true) => self.b.ins().swiden_high(x),
                    (Half::Low, false) => self.b.ins().uwiden_low(x),
                    (Half::High, false) => self.b.ins().uwiden_high(x),
                }
            }
            Expr::Dot(a, b, acc) => {
                let signed = self.p.ty(a).is_signed();
                let (x, y, z) = (self.expr(a)?, self.expr(b)?, self.expr(acc)?);
                self.dot(x, y, z, signed)
            }
            Expr::VLoad {
                buf,
                index,
                ty,
                lanes,
            } => {
                let a = self.addr(*buf, index, *ty)?;
                self.b
                    .ins()
                    .load(clif_vtype(*ty, *lanes), vector_flags(), a, 0)
            }
            Expr::Splat(lanes, a) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                self.b.ins().splat(clif_vtype(ty, *lanes), x)
            }
            Expr::Extract(a, k) => {
                let x = self.expr(a)?;
                self.b.ins().extractlane(x, *k)
            }
            Expr::Reduce(op, a) => {
                let (ty, lanes) = (self.p.ty(a), self.p.lanes(a));
                let x = self.expr(a)?;
                let mut acc = self.b.ins().extractlane(x, 0);
                for k in 1..lanes {
                    let y = self.b.ins().extractlane(x, k);
                    acc = self.binary(*op, acc, y, ty)?;
                }
                acc
            }
            Expr::MulAdd(a, b, c) => {
                let ty = self.p.ty(a);
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let z = self.expr(c)?;
                if self.fma && ty.is_float() {
                    self.b.ins().fma(x, y, z)
                } else {
                    let m = self.binary(BinOp::Mul, x, y, ty)?;
                    self.binary(BinOp::Add, m, z, ty)?
                }
            }
        })
    }

    fn unary(&mut self, op: UnOp, x: Value, ty: Scalar) -> Result<Value, CodegenError> {
        let f = ty.is_float();
        Ok(match op {
            UnOp::Neg if f => self.b.ins().fneg(x),
            UnOp::Neg => self.b.ins().ineg(x),
            UnOp::Abs if f => self.b.ins().fabs(x),
            UnOp::Abs => self.b.ins().iabs(x),
            UnOp::Sqrt => self.b.ins().sqrt(x),
            UnOp::Floor => self.b.ins().floor(x),
            UnOp::Ceil => self.b.ins().ceil(x),
            UnOp::Trunc => self.b.ins().trunc(x),
            UnOp::Nearest => self.b.ins().nearest(x),
            UnOp::Not if ty == Scalar::Bool => self.b.ins().bxor_imm_s(x, 1),
            UnOp::Not => self.b.ins().bnot(x),
            UnOp::Exp | UnOp::Log | UnOp::Tanh | UnOp::Erf | UnOp::Sin | UnOp::Cos => {
                return Err(err(format!(
                    "{op:?} must be expanded before code generation"
                )));
            }
        })
    }

    fn binary(&mut self, op: BinOp, x: Value, y: Value, ty: Scalar) -> Result<Value, CodegenError> {
        let (f, s) = (ty.is_float(), ty.is_signed());
        Ok(match op {
            BinOp::Add if f => self.b.ins().fadd(x, y),
            BinOp::Add => self.b.ins().iadd(x, y),
            BinOp::Sub if f => self.b.ins().fsub(x, y),
            BinOp::Sub => self.b.ins().isub(x, y),
            BinOp::Mul if f => self.b.ins().fmul(x, y),
            BinOp::Mul => self.b.ins().imul(x, y),
            BinOp::Div if f => self.b.ins().fdiv(x, y),
            BinOp::Div if s => self.b.ins().sdiv(x, y),
            BinOp::Div => self.b.ins().udiv(x, y),
            BinOp::Rem if s => self.b.ins().srem(x, y),
            BinOp::Rem => self.b.ins().urem(x, y),
            BinOp::Min if f => self.b.ins().fmin(x, y),
            BinOp::Min if s => self.b.ins().smin(x, y),
            BinOp::Min => self.b.ins().umin(x, y),
            BinOp::Max if f => self.b.ins().fmax(x, y),
            BinOp::Max if s => self.b.ins().smax(x, y),
            BinOp::Max => self.b.ins().umax(x, y),
            BinOp::And => self.b.ins().band(x, y),
            BinOp::Or => self.b.ins().bor(x, y),
            BinOp::Xor => self.b.ins().bxor(x, y),
            BinOp::Shl => self.b.ins().ishl(x, y),
            BinOp::Shr if s => self.b.ins().sshr(x, y),
            BinOp::Shr => self.b.ins().ushr(x, y),
            BinOp::Pow => return Err(err("Pow must be expanded before code generation")),
        })
    }

    /// [`Expr::Dot`] of two `8x16` vectors into `i32x4`, as the tree
    /// Cranelift's instruction selection folds into one `vpdpbusd` (x86
    /// with VNNI) or `sdot` (aarch64 with the dot-product extension): each
    /// half widened to `i16x8` and multiplied (the products fit), the
    /// products widened to `i32` and added in pairs twice, lane `j` getting
    /// bytes `4j .. 4j+4`, then `acc`. An unsigned `a` is the second factor,
    /// the operand order of the `vpdpbusd` pattern.
    fn dot(&mut self, a: Value, b: Value, acc: Value, a_signed: bool) -> Value {
        let widen = |g: &mut Self, half: Half, v: Value, signed: bool| match (half, signed) {
            (Half::Low, true) => g.b.ins().swiden_low(v),
            (Half::High, true) => g.b.ins().swiden_high(v),
            (Half::Low, false) => g.b.ins().uwiden_low(v),
            (Half::High, false) => g.b.ins().uwiden_high(v),
        };
        let [lo, hi] = [Half::Low, Half::High].map(|h| {
            let x = widen(self, h, a, a_signed);
            let y = widen(self, h, b, true);
            let prod = if a_signed {
                self.b.ins().imul(x, y)
            } else {
                self.b.ins().imul(y, x)
            };
            let l = self.b.ins().swiden_low(prod);
            let h = self.b.ins().swiden_high(prod);
            self.b.ins().iadd_pairwise(l, h)
        });
        let quads = self.b.ins().iadd_pairwise(lo, hi);
        self.b.ins().iadd(quads, acc)
    }

    /// A lane-wise cast of a vector that keeps the lane width (`i32x4` ↔
    /// `f32x4`, or a change of signedness); others are refused.
    fn vector_cast(
        &mut self,
        x: Value,
        from: Scalar,
        to: Scalar,
        lanes: u8,
    ) -> Result<Value, CodegenError> {
        let tt = clif_vtype(to, lanes);
        Ok(match (from.is_float(), to.is_float()) {
            _ if from.bytes() != to.bytes() => {
                return Err(err(format!(
                    "Cranelift casts vectors only between lane types of one width, not {from:?}x{lanes} to {to:?}"
                )));
            }
            (false, false) => x,
            (false, true) if from.is_signed() => self.b.ins().fcvt_from_sint(tt, x),
            (false, true) => self.b.ins().fcvt_from_uint(tt, x),
            (true, false) if to.is_signed() => self.b.ins().fcvt_to_sint_sat(tt, x),
            (true, false) => self.b.ins().fcvt_to_uint_sat(tt, x),
            (true, true) => x,
        })
    }

    fn cast(&mut self, x: Value, from: Scalar, to: Scalar) -> Value {
        let (ft, tt) = (clif_type(from), clif_type(to));
        if from == to {
            return x;
        }
        if to == Scalar::Bool {
            return if from.is_float() {
                let z = if from == Scalar::F32 {
                    self.b.ins().f32const(0.0)
                } else {
                    self.b.ins().f64const(0.0)
                };
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0)
            };
        }
        match (from.is_float(), to.is_float()) {
            (true, true) => {
                if tt.bits() > ft.bits() {
                    self.b.ins().fpromote(tt, x)
                } else {
                    self.b.ins().fdemote(tt, x)
                }
            }
            (true, false) => {
                // Saturating at the bounds of the target type (NaN to 0):
                // 8- and 16-bit types convert to i32 and clamp there.
                if tt.bits() >= 32 {
                    return if to.is_signed() {
                        self.b.ins().fcvt_to_sint_sat(tt, x)
                    } else {
                        self.b.ins().fcvt_to_uint_sat(tt, x)
                    };
                }
                let v = self.b.ins().fcvt_to_sint_sat(types::I32, x);
                let (lo, hi) = match to {
                    Scalar::I8 => (i8::MIN as i64, i8::MAX as i64),
                    Scalar::U8 => (0, u8::MAX as i64),
                    Scalar::I16 => (i16::MIN as i64, i16::MAX as i64),
                    _ => (0, u16::MAX as i64),
                };
                let lo = self.b.ins().iconst(types::I32, lo);
                let hi = self.b.ins().iconst(types::I32, hi);
                let v = self.b.ins().smax(v, lo);
                let v = self.b.ins().smin(v, hi);
                self.b.ins().ireduce(tt, v)
            }
            (false, true) => {
                let x = if ft.bits() < 32 {
                    if from.is_signed() {
                        self.b.ins().sextend(types::I32, x)
                    } else {
                        self.b.ins().uextend(types::I32, x)
                    }
                } else {
                    x
                };
                if from.is_signed() {
                    self.b.ins().fcvt_from_sint(tt, x)
                } else {
                    self.b.ins().fcvt_from_uint(tt, x)
                }
            }
            (false, false) => {
                if tt.bits() > ft.bits() {
                    if from.is_signed() {
                        self.b.ins().sextend(tt, x)
                    } else {
                        self.b.ins().uextend(tt, x)
                    }
                } else if tt.bits() < ft.bits() {
                    self.b.ins().ireduce(tt, x)
                } else {
                    x
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::build::{i, muladd, reduce, splat, var, vload};
    use crate::kernel::{LANES_F32, Var};
    use crate::lower::IoInfo;
    use crate::plan::MemoryPlan;
    use smelt_ir::DType;

    fn io(name: &str, n: usize) -> IoInfo {
        IoInfo {
            name: name.into(),
            dtype: DType::F32,
            shape: vec![n],
            bytes: 4 * n as u64,
        }
    }

    /// Every vector form of the kernel IR is accepted by Cranelift on both
    /// targets (their results are checked end to end by the conformance
    /// tests of the kernels that use them).
    #[test]
    fn vector_forms_compile_on_every_target() {
        let mut p = Program::default();
        let acc = p.vector_var(Scalar::F32, LANES_F32);
        let k = p.var(Scalar::I64);
        let s = p.var(Scalar::F32);
        let x = |e| vload(Buf::Input(0), e, Scalar::F32, LANES_F32);
        p.body = vec![
            Stmt::Set(acc, splat(LANES_F32, Expr::F(0.0, Scalar::F32))),
            Stmt::for_loop(
                k,
                i(0),
                i(4),
                vec![Stmt::Set(
                    acc,
                    muladd(
                        x(crate::kernel::build::mul(var(k), i(4))),
                        splat(LANES_F32, Expr::F(2.0, Scalar::F32)),
                        var(acc),
                    ),
                )],
            ),
            Stmt::Set(
                acc,
                Expr::Bin(
                    BinOp::Max,
                    Box::new(var(acc)),
                    Box::new(Expr::Un(UnOp::Neg, Box::new(var(acc)))),
                ),
            ),
            Stmt::VStore {
                buf: Buf::Output(0),
                index: i(0),
                value: var(acc),
            },
            Stmt::Set(s, reduce(BinOp::Add, var(acc))),
            Stmt::Store {
                buf: Buf::Output(0),
                index: i(4),
                value: Expr::Bin(
                    BinOp::Add,
                    Box::new(var(s)),
                    Box::new(Expr::Extract(Box::new(var(acc)), 3)),
                ),
            },
        ];
        assert_eq!(p.lanes(&var(acc)), LANES_F32);
        assert_eq!(p.lanes(&var(s)), 1);
        assert_eq!(p.var_lane_count(Var(k.0)), 1);
        let text = p.print();
        assert!(text.contains("f32x4 = muladd(in0:f32x4["), "{text}");
        let l = Lowered {
            program: p,
            inputs: vec![io("x", 16)],
            outputs: vec![io("y", 5)],
            plan: MemoryPlan {
                arena_bytes: 0,
                lower_bound: 0,
                ..MemoryPlan::default()
            },
        };
        for t in Target::ALL {
            if !t.cranelift_supported() {
                // No 32-bit Arm backend: a clear error pointing to LLVM.
                let e = compile(&l, t, "v", &crate::abi::ModelSymbols::runtime())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("use --backend llvm"), "{e}");
                continue;
            }
            let obj = compile(&l, t, "v", &crate::abi::ModelSymbols::runtime())
                .unwrap_or_else(|e| panic!("{t:?}: {e}"));
            assert!(!obj.is_empty());
        }
    }

    /// A program scheduled for a wider vector unit (AVX2's 8 lanes) is
    /// refused with an error naming the width, not miscompiled.
    #[test]
    fn vectors_wider_than_128_bits_are_refused() {
        let mut p = Program::default();
        let v = p.vector_var(Scalar::F32, 8);
        p.body = vec![
            Stmt::Set(v, vload(Buf::Input(0), i(0), Scalar::F32, 8)),
            Stmt::VStore {
                buf: Buf::Output(0),
                index: i(0),
                value: var(v),
            },
        ];
        assert_eq!(p.widest_vector_bytes(), 32);
        let l = Lowered {
            program: p,
            inputs: vec![io("x", 8)],
            outputs: vec![io("y", 8)],
            plan: MemoryPlan::default(),
        };
        let e = compile(
            &l,
            Target::X86_64Linux,
            "v",
            &crate::abi::ModelSymbols::runtime(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("256-bit vectors"), "{e}");
        assert_eq!(vector_shape(Target::X86_64Linux).f32_lanes, LANES_F32);
    }
}
