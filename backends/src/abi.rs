//! The names a model object exports: the leaf both code generators and
//! [`crate::artifact`] import, so that neither generator depends on the
//! artifact writer (and the writer on them) just to agree on two symbols.
//!
//! The ABI itself (the entry point's parameters, the info table's layout)
//! is `runtime/include/smelt_model.h`; the fixed names executables use come
//! from the runtime crate ([`smelt_runtime::MODEL_SYMBOLS`]).

/// The symbols a model object defines: its description table
/// (`smelt_model_info`), its entry point and, with state, its state initializer.
/// Every code generator names them
/// through this, so all backends agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSymbols {
    /// The `const smelt_model_info` table.
    pub info: String,
    /// `int32_t run(const void *const *inputs, void *const *outputs, void
    /// *arena, smelt_fault *fault)`, or with `void *state` before the fault
    /// record (see [`ModelSymbols::takes_state`]); it returns the status
    /// (0, or 1 when a run-time check failed).
    pub run: String,
    /// `void init(void *state)`, which writes the initial state (defined
    /// when the entry point takes the state buffer).
    pub init: String,
    /// The entry point takes the state buffer and `init` is defined even for
    /// a stateless model (which ignores the buffer and whose `init` does
    /// nothing): the runtime's fixed names, so one runtime calls every model
    /// the same way.
    pub state_always: bool,
}

impl ModelSymbols {
    /// The fixed names the smelt runtime calls (`smelt_model`,
    /// `smelt_model_run`, `smelt_model_init`): what an executable's model
    /// object defines.
    pub fn runtime() -> ModelSymbols {
        let [info, run, init] = smelt_runtime::MODEL_SYMBOLS else {
            unreachable!("the runtime names three model symbols")
        };
        ModelSymbols {
            info: info.to_string(),
            run: run.to_string(),
            init: init.to_string(),
            state_always: true,
        }
    }

    /// `NAME_model`, `NAME_run` and (for a stateful model) `NAME_init` for
    /// the C identifier `name`: what a static library or object defines, so
    /// one program can link several models.
    pub fn prefixed(name: &str) -> ModelSymbols {
        ModelSymbols {
            info: format!("{name}_model"),
            run: format!("{name}_run"),
            init: format!("{name}_init"),
            state_always: false,
        }
    }

    /// Whether the entry point takes the state buffer (and `init` exists)
    /// for a model that has state or not.
    pub fn takes_state(&self, has_state: bool) -> bool {
        self.state_always || has_state
    }
}
