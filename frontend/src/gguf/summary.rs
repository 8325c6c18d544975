//! The [`LlmSummary`] of a GGUF file, for `smelt inspect`: it is made even
//! when the model cannot be built, and then says why.

use super::GgufFile;
use crate::llm_summary::LlmSummary;

impl GgufFile {
    /// What can be said about the model without building a graph.
    pub fn summary(&self) -> LlmSummary {
        let text = |key: &str| self.str_key(key).ok().flatten().map(str::to_string);
        let mut s = LlmSummary {
            format: format!("GGUF v{}", self.version),
            architecture: text("general.architecture").unwrap_or_else(|| "unknown".into()),
            name: text("general.name"),
            ..LlmSummary::default()
        };
        match self.checkpoint() {
            Ok(c) => s.config = Some(c.config),
            Err(e) => s.problem = Some(e.to_string()),
        }
        s.tally(self.tensors.iter().map(|t| &t.ty));
        s
    }
}
