//! smelt as a library: the whole pipeline behind two calls.
//!
//! ```text
//! frontend::load(path, &ImportOptions)   a model file → ir::Graph
//! compile(&graph, &CompileOptions)       optimize → lower and schedule →
//!                                        code generation → link/write → Artifact
//! ```
//!
//! With [`CompileOptions::quantize`] set, the weights of MatMul/Gemm are
//! first stored in a smaller encoding and run by weight-only kernels, or,
//! for `int8`, MatMul/Gemm/Conv become calibrated integer ops
//! ([`smelt_passes::quantize::quantize`], `--quantize SCHEME`); the
//! [`Artifact`] carries the size and accuracy report.
//!
//! [`CompileOptions::new`] resolves the target once into a [`TargetSpec`]
//! (triple, CPU, features, vector shape, the optimizer's cost figures,
//! firmware memory map), so a bad `--target`, `--cpu` or `--features` is
//! refused before any model is read, and every stage sees the same machine.
//! [`compile`] then runs the stages in order, the way Cranelift's `Context`
//! runs its passes: the e-graph optimizer ([`optimize`]), then
//! [`smelt_backends::artifact::build_for`] (lowering to kernel IR, the
//! schedules, the code generator, the linker or archive writer). The CLI
//! (`smelt compile`), the conformance runner and `examples/compile_model.rs`
//! all go through it.
//!
//! ```no_run
//! use smelt::{Backend, CompileOptions, ImportOptions};
//! let graph = smelt::frontend::load("model.onnx".as_ref(), &ImportOptions::default())?;
//! let opts = CompileOptions::new("x86_64", Backend::Cranelift, "out/model")?.threads(2);
//! let artifact = smelt::compile(&graph, &opts)?;
//! println!("wrote {:?}, arena {} bytes", artifact.files, artifact.arena_bytes);
//! # Ok::<(), smelt::Error>(())
//! ```

pub mod llm;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use smelt_ir::Graph;
use smelt_passes::egraph::cost::TargetCost;
use smelt_passes::egraph::{Pipeline, Report};
pub use smelt_passes::quantize::{
    CalibMethod, CalibrationSet, Layer, QuantizeError, QuantizeOptions, QuantizeReport, Scheme,
};

pub use smelt_backends::artifact::firmware::Usage as FirmwareUsage;
pub use smelt_backends::artifact::{Backend, BuildOptions, Emit, LlvmConfig};
pub use smelt_backends::llvm::LlvmOptions;
pub use smelt_backends::target::{Target, TargetSpec};
pub use smelt_frontend as frontend;
pub use smelt_frontend::ImportOptions;
pub use smelt_runtime::firmware::MemoryMap;

/// Everything that can stop [`compile`] (or [`optimize`]), by stage.
#[derive(Debug)]
pub enum Error {
    /// Reading or importing the model.
    Frontend(smelt_frontend::Error),
    /// The graph optimizer (an unknown pass, or a rule bug).
    Optimizer(smelt_passes::egraph::Error),
    /// Weight quantization (`--quantize`).
    Quantize(QuantizeError),
    /// The target, lowering, code generation, linking or writing files.
    Backend(smelt_backends::Error),
    /// A language model's chat program: its tokenizer, descriptor or
    /// options.
    Llm(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Frontend(e) => write!(f, "{e}"),
            Error::Optimizer(e) => write!(f, "{e}"),
            Error::Quantize(e) => write!(f, "{e}"),
            Error::Backend(e) => write!(f, "{e}"),
            Error::Llm(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Frontend(e) => Some(e),
            Error::Optimizer(e) => Some(e),
            Error::Quantize(e) => Some(e),
            Error::Backend(e) => Some(e),
            Error::Llm(_) => None,
        }
    }
}

impl From<smelt_frontend::Error> for Error {
    fn from(e: smelt_frontend::Error) -> Error {
        Error::Frontend(e)
    }
}

impl From<smelt_passes::egraph::Error> for Error {
    fn from(e: smelt_passes::egraph::Error) -> Error {
        Error::Optimizer(e)
    }
}

impl From<QuantizeError> for Error {
    fn from(e: QuantizeError) -> Error {
        Error::Quantize(e)
    }
}

impl From<smelt_backends::Error> for Error {
    fn from(e: smelt_backends::Error) -> Error {
        Error::Backend(e)
    }
}

/// What the e-graph optimizer runs: an opt level and the overrides of its
/// phases and limits (`--opt-level`, `--passes`, `--iter-limit`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeOptions {
    /// 0 (off) to 3; see `smelt_passes::egraph`.
    pub level: u8,
    /// Phases to run instead of the level's, each a group of rule files
    /// saturated together ([`Pipeline::parse_phases`] reads `--passes`).
    pub phases: Option<Vec<Vec<String>>>,
    /// Saturation iterations at most, instead of the level's.
    pub iter_limit: Option<usize>,
    /// E-graph nodes at most, instead of the level's.
    pub node_limit: Option<usize>,
    /// Wall time of the whole optimizer at most, instead of the level's.
    pub time_limit: Option<Duration>,
    /// Largest constant folded, in elements, instead of the default.
    pub fold_limit: Option<usize>,
}

/// The CLI's default opt level.
pub const DEFAULT_OPT_LEVEL: u8 = 2;

impl Default for OptimizeOptions {
    /// Level [`DEFAULT_OPT_LEVEL`], no overrides.
    fn default() -> Self {
        OptimizeOptions::level(DEFAULT_OPT_LEVEL)
    }
}

impl OptimizeOptions {
    /// Opt level `level` without overrides.
    pub fn level(level: u8) -> Self {
        OptimizeOptions {
            level,
            phases: None,
            iter_limit: None,
            node_limit: None,
            time_limit: None,
            fold_limit: None,
        }
    }

    /// The optimizer pipeline these options select, with the cost figures
    /// `costs` (a [`TargetSpec`]'s `costs`).
    pub fn pipeline(&self, costs: TargetCost) -> Pipeline {
        let mut p = Pipeline::for_level(self.level, costs);
        if let Some(phases) = &self.phases {
            p.phases = phases.clone();
        }
        let o = &mut p.options;
        o.iter_limit = self.iter_limit.unwrap_or(o.iter_limit);
        o.node_limit = self.node_limit.unwrap_or(o.node_limit);
        o.time_limit = self.time_limit.unwrap_or(o.time_limit);
        o.fold_limit = self.fold_limit.unwrap_or(o.fold_limit);
        p
    }
}

/// What [`compile`] makes and how: the resolved target, the code generator,
/// the artifact kind and path, the optimizer and the run-time options.
/// Build it with [`CompileOptions::new`] and the builder-style setters.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The target, resolved for `backend` (do not pair a spec with another
    /// backend than the one it was resolved for: the LLVM CPU and the vector
    /// shape depend on it).
    pub target: TargetSpec,
    /// The code generator and its options.
    pub backend: Backend,
    /// The artifact kind.
    pub emit: Emit,
    /// Where to write it.
    pub output: PathBuf,
    /// The model's name, recorded in its info table for messages.
    pub model_name: String,
    /// The symbol prefix of a library or object (`--name`; default from the
    /// output's file name).
    pub name: Option<String>,
    /// The `ld.lld` to link executables with (default: found on PATH).
    pub linker: Option<PathBuf>,
    /// Threads the hot loops run on (1 to 64; 1 on bare metal).
    pub threads: u32,
    /// The least work per thread of a parallel loop (0: the default; tests
    /// pass 1 to split even tiny loops).
    pub min_work: u64,
    /// Make no run-time checks (`--unchecked`): an index read from an input
    /// is clamped into range instead of failing the run.
    pub unchecked: bool,
    /// The graph optimizer.
    pub optimize: OptimizeOptions,
    /// Store the MatMul/Gemm weights quantized (`--quantize`), before the
    /// optimizer runs; `None` keeps them as imported.
    pub quantize: Option<QuantizeOptions>,
}

impl CompileOptions {
    /// An executable for `target` (a triple or short name: `x86_64`,
    /// `aarch64-unknown-linux-gnu`, `thumbv7em-none-eabihf`, …) compiled by
    /// `backend`, written to `output`; model name `model`, one thread, the
    /// default opt level. The target is resolved here: an unknown one, or an
    /// LLVM CPU or feature LLVM does not know, is an error.
    pub fn new(
        target: &str,
        backend: Backend,
        output: impl Into<PathBuf>,
    ) -> Result<CompileOptions, Error> {
        let spec = TargetSpec::resolve(target, &backend)?;
        Ok(CompileOptions::for_spec(spec, backend, output))
    }

    /// Like [`CompileOptions::new`] with a target already resolved for
    /// `backend`.
    pub fn for_spec(target: TargetSpec, backend: Backend, output: impl Into<PathBuf>) -> Self {
        CompileOptions {
            target,
            backend,
            emit: Emit::Exe,
            output: output.into(),
            model_name: "model".into(),
            name: None,
            linker: None,
            threads: 1,
            min_work: 0,
            unchecked: false,
            optimize: OptimizeOptions::default(),
            quantize: None,
        }
    }

    /// The artifact kind.
    pub fn emit(mut self, emit: Emit) -> Self {
        self.emit = emit;
        self
    }

    /// The model's name in its info table.
    pub fn model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }

    /// The symbol prefix of a library or object.
    pub fn symbol_prefix(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The linker to use.
    pub fn linker(mut self, path: impl Into<PathBuf>) -> Self {
        self.linker = Some(path.into());
        self
    }

    /// Threads the hot loops run on.
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }

    /// The least work per thread of a parallel loop.
    pub fn min_work(mut self, min_work: u64) -> Self {
        self.min_work = min_work;
        self
    }

    /// Make no run-time checks (`--unchecked`).
    pub fn unchecked(mut self, unchecked: bool) -> Self {
        self.unchecked = unchecked;
        self
    }

    /// The firmware memory map (bare-metal targets).
    pub fn memory(mut self, map: MemoryMap) -> Self {
        self.target.memory = map;
        self
    }

    /// The optimizer options.
    pub fn optimize(mut self, optimize: OptimizeOptions) -> Self {
        self.optimize = optimize;
        self
    }

    /// Quantize the weights as `quantize` says (`--quantize`).
    pub fn quantize(mut self, quantize: QuantizeOptions) -> Self {
        self.quantize = Some(quantize);
        self
    }

    /// Only the opt level (0 to 3) of the optimizer.
    pub fn opt_level(mut self, level: u8) -> Self {
        self.optimize.level = level;
        self
    }
}

/// What [`compile`] produced.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// Files written (the artifact, and a header beside a library or object).
    pub files: Vec<PathBuf>,
    /// Arena bytes the model needs.
    pub arena_bytes: u64,
    /// The liveness lower bound of activation memory.
    pub lower_bound: u64,
    /// Size of the model object (or of the assembly or LLVM IR text).
    pub object_bytes: usize,
    /// Bytes of weights in the optimized graph.
    pub weights_bytes: u64,
    /// Flash and RAM use of a firmware image (bare-metal executables).
    pub firmware: Option<FirmwareUsage>,
    /// What each optimizer phase did, in order (empty at opt level 0).
    pub optimizer: Vec<(String, Report)>,
    /// What `--quantize` stored, weight by weight, when it was asked for.
    pub quantize: Option<QuantizeReport>,
    /// What the user should know about the artifact (a chat template that
    /// is not recognised, …).
    pub warnings: Vec<String>,
}

/// Hooks into [`compile_observed`] (and [`optimize`]): what a driver wants
/// to see between stages. Both methods do nothing by default; `()` observes
/// nothing.
pub trait Observer {
    /// After each optimizer phase: its name (as `--passes` spells it), the
    /// graph it produced and its report.
    fn phase(&mut self, name: &str, graph: &Graph, report: &Report) {
        let _ = (name, graph, report);
    }

    /// After the optimizer, before lowering: the graph that is compiled and
    /// every phase's report.
    fn optimized(&mut self, graph: &Graph, reports: &[(String, Report)]) {
        let _ = (graph, reports);
    }
}

impl Observer for () {}

/// Runs the optimizer `opts` selects on `graph` with the cost figures
/// `costs`; `observer` sees each phase. Returns the optimized graph and the
/// phases' reports (none at level 0).
pub fn optimize(
    graph: &Graph,
    opts: &OptimizeOptions,
    costs: TargetCost,
    observer: &mut dyn Observer,
) -> Result<(Graph, Vec<(String, Report)>), Error> {
    let p = opts.pipeline(costs);
    if p.phases.is_empty() {
        return Ok((graph.clone(), vec![]));
    }
    Ok(p.run(graph, |name, g, r| observer.phase(name, g, r))?)
}

/// A graph ready for lowering, and how it got so.
pub(crate) struct Prepared {
    /// The graph to lower.
    pub graph: Graph,
    /// The optimizer's phases.
    pub optimizer: Vec<(String, Report)>,
    /// What `--quantize` stored.
    pub quantize: Option<QuantizeReport>,
}

/// The graph `opts` compiles from `graph`: quantized (`--quantize`), then
/// optimized (`observer` sees each phase and the result), then, on targets
/// with an OS, with weight-only products over many rows decoding their
/// weight once.
pub(crate) fn prepare(
    graph: &Graph,
    opts: &CompileOptions,
    observer: &mut dyn Observer,
) -> Result<Prepared, Error> {
    // Quantize first: the optimizer then sees the weight-only products
    // (and never folds a stored weight back to f32).
    let (quantized, quantize) = match &opts.quantize {
        Some(q) => {
            let mut g = graph.clone();
            let report = smelt_passes::quantize::quantize(&mut g, q)?;
            (Some(g), Some(report))
        }
        None => (None, None),
    };
    let graph = quantized.as_ref().unwrap_or(graph);
    let (mut graph, reports) = optimize(graph, &opts.optimize, opts.target.costs, observer)?;
    observer.optimized(&graph, &reports);
    // A weight-only product over many rows decodes its weight once into the
    // arena, except on firmware, where RAM is the budget.
    if !opts.target.is_bare_metal() {
        smelt_passes::batched::decode_batched(&mut graph, smelt_passes::batched::MIN_ROWS)
            .map_err(|e| {
                let what = format!("decoding the weights of batched products: {e}");
                Error::Backend(smelt_backends::Error::Codegen(what))
            })?;
    }
    Ok(Prepared {
        graph,
        optimizer: reports,
        quantize,
    })
}

/// Compiles `graph` as `opts` says: optimize, lower and schedule, generate
/// code, link or write. See the crate documentation.
pub fn compile(graph: &Graph, opts: &CompileOptions) -> Result<Artifact, Error> {
    compile_observed(graph, opts, &mut ())
}

/// [`compile`], with `observer` called between the stages.
pub fn compile_observed(
    graph: &Graph,
    opts: &CompileOptions,
    observer: &mut dyn Observer,
) -> Result<Artifact, Error> {
    // What the importer refuses, refused for a graph built in code too.
    if graph.outputs.is_empty() {
        return Err(Error::Frontend(smelt_frontend::Error::Graph(
            "the graph has no outputs; a model must compute at least one value".into(),
        )));
    }
    let Prepared {
        graph,
        optimizer: reports,
        quantize,
    } = prepare(graph, opts, observer)?;
    let build = BuildOptions {
        name: opts.name.as_deref(),
        linker: opts.linker.as_deref(),
        memory: opts.target.memory,
        threads: opts.threads,
        min_work: opts.min_work,
        unchecked: opts.unchecked,
        ..BuildOptions::new(opts.emit, &opts.model_name)
    };
    let report = smelt_backends::artifact::build_for(
        &graph,
        &opts.target,
        &opts.backend,
        &opts.output,
        &build,
    )?;
    Ok(Artifact {
        files: report.files,
        arena_bytes: report.arena_bytes,
        lower_bound: report.lower_bound,
        object_bytes: report.object_bytes,
        weights_bytes: graph.const_bytes() as u64,
        firmware: report.firmware,
        optimizer: reports,
        quantize,
        warnings: vec![],
    })
}
