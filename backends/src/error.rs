//! The backends' error types, at the crate boundary: [`Error`] for
//! everything between a graph and a written artifact (lowering, target and
//! option checks, code generation, linking, firmware layout, files), and
//! [`CodegenError`], which both code generators return.
//!
//! Why one code-generation error shared by Cranelift and LLVM rather than
//! one each: their failures mean the same thing (the kernel IR holds a form
//! the generator does not translate, or the generator's own library
//! refused), and callers handle them the same way; keeping it here means
//! neither backend borrows the other's type.

use std::fmt;
use std::path::PathBuf;

use crate::lower::LowerError;

/// A code generator's failure (internal: the lowering only produces what
/// the backends support, so these name a bug or a missing case).
#[derive(Debug, Clone, PartialEq)]
pub struct CodegenError(pub String);

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code generation failed: {}", self.0)
    }
}

impl std::error::Error for CodegenError {}

/// Why a graph could not become an artifact.
#[derive(Debug)]
pub enum Error {
    /// The graph cannot be lowered (every unsupported node is listed).
    Lower(LowerError),
    /// The target, its CPU or its features are refused (the message names
    /// the flag: `--target`, `--cpu`, `--features`).
    Target(String),
    /// An option does not fit the target or the code generator (`--threads`
    /// out of range or on bare metal, `--emit asm` with Cranelift).
    Options(String),
    /// Code generation failed ([`CodegenError`]'s text).
    Codegen(String),
    /// No linker was found, or it failed.
    Link(String),
    /// A firmware image does not fit its memory map (sizes in the message).
    Firmware(String),
    /// Writing or reading a file failed.
    Io(PathBuf, std::io::Error),
    /// `--name` is not a C identifier.
    Name(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lower(e) => write!(f, "{e}"),
            Error::Target(e) | Error::Options(e) | Error::Codegen(e) | Error::Firmware(e) => {
                write!(f, "{e}")
            }
            Error::Link(e) => write!(f, "linking failed: {e}"),
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Name(n) => write!(
                f,
                "--name '{n}' is not a C identifier; use ASCII letters, digits and '_', not starting with a digit"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lower(e) => Some(e),
            Error::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

impl From<LowerError> for Error {
    fn from(e: LowerError) -> Error {
        Error::Lower(e)
    }
}

impl From<CodegenError> for Error {
    fn from(e: CodegenError) -> Error {
        Error::Codegen(e.to_string())
    }
}
