//! The names a model object exports: the leaf both code generators and
//! [`crate::artifact`] import, so that neither generator depends on the
//! artifact writer (and the writer on them) just to agree on two symbols.
//!
//! The ABI itself (the entry point's parameters, the info table's layout)
//! is `runtime/include/smelt_model.h`; the fixed names executables use come
//! from the runtime crate ([`smelt_runtime::MODEL_SYMBOLS`]).

/// The two symbols a model object defines: its description table
/// (`smelt_model_info`) and its entry point. Every code generator names them
/// through this, so all backends agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSymbols {
    /// The `const smelt_model_info` table.
    pub info: String,
    /// `void run(const void *const *inputs, void *const *outputs, void *arena)`.
    pub run: String,
}

impl ModelSymbols {
    /// The fixed names the smelt runtime calls (`smelt_model`,
    /// `smelt_model_run`): what an executable's model object defines.
    pub fn runtime() -> ModelSymbols {
        let [info, run] = smelt_runtime::MODEL_SYMBOLS else {
            unreachable!("the runtime names two model symbols")
        };
        ModelSymbols {
            info: info.to_string(),
            run: run.to_string(),
        }
    }

    /// `NAME_model` and `NAME_run` for the C identifier `name`: what a static
    /// library or object defines, so one program can link several models.
    pub fn prefixed(name: &str) -> ModelSymbols {
        ModelSymbols {
            info: format!("{name}_model"),
            run: format!("{name}_run"),
        }
    }
}
