//! The targets smelt generates code for: the runtime's [`Target`] list (one
//! list for the whole compiler), plus what the code generators need of it.

use std::str::FromStr;

pub use smelt_runtime::Target;
use target_lexicon::Triple;

/// The target-lexicon triple of a target (what Cranelift's ISA lookup takes).
pub fn lexicon(t: Target) -> Triple {
    Triple::from_str(t.triple()).expect("the runtime's triples are valid")
}
