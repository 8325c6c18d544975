//! The targets smelt generates code for.

use std::fmt;
use std::str::FromStr;

use target_lexicon::Triple;

/// A supported target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `x86_64-unknown-linux-gnu`.
    X86_64Linux,
    /// `aarch64-unknown-linux-gnu`.
    Aarch64Linux,
}

impl Target {
    /// Every target, in a fixed order.
    pub const ALL: [Target; 2] = [Target::X86_64Linux, Target::Aarch64Linux];

    /// The normalized triple text.
    pub fn name(self) -> &'static str {
        match self {
            Target::X86_64Linux => "x86_64-unknown-linux-gnu",
            Target::Aarch64Linux => "aarch64-unknown-linux-gnu",
        }
    }

    /// The target-lexicon triple.
    pub fn triple(self) -> Triple {
        Triple::from_str(self.name()).expect("a valid triple")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    /// Parses a triple, accepting the usual spellings (`aarch64-linux-gnu`,
    /// `x86_64-linux-gnu`, with or without the vendor).
    fn from_str(s: &str) -> Result<Target, String> {
        let t = Triple::from_str(s).map_err(|e| format!("'{s}' is not a target triple ({e})"))?;
        let arch = t.architecture.to_string();
        let os = t.operating_system.to_string();
        match (arch.as_str(), os.as_str()) {
            ("x86_64", "linux") => Ok(Target::X86_64Linux),
            ("aarch64", "linux") => Ok(Target::Aarch64Linux),
            _ => {
                let all: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                Err(format!("target '{s}' is not supported; the targets are {}", all.join(", ")))
            }
        }
    }
}
