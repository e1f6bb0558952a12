//! Typed errors of the core, each mapped to one documented exit code.

use std::path::PathBuf;

/// Exit codes are a stable contract (see README "Exit codes").
pub mod exit {
    pub const PASSED: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const INFRA: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum FciError {
    /// Bad usage or input: a file the user gave us is wrong.
    #[error("{}: {msg}", file.display())]
    Input { file: PathBuf, msg: String },
    /// Bad usage that is not tied to one file.
    #[error("{0}")]
    Usage(String),
    /// A required program is not installed.
    #[error("{tool} not found on PATH: install the Debian package `{package}` (apt-get install -y {package})")]
    ToolMissing { tool: String, package: String },
    /// A required program that no Debian package provides.
    #[error("{tool} not found on PATH: {hint}")]
    ToolMissingHint { tool: String, hint: String },
    /// The machinery around the package broke (tool crash, I/O, lock).
    #[error("{0}")]
    Infra(String),
}

impl FciError {
    pub fn input(file: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        FciError::Input {
            file: file.into(),
            msg: msg.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            FciError::Input { .. } | FciError::Usage(_) => exit::BAD_INPUT,
            FciError::ToolMissing { .. }
            | FciError::ToolMissingHint { .. }
            | FciError::Infra(_) => exit::INFRA,
        }
    }
}

/// The error chain on one line, outermost first, without repeating itself.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// The exit code for any error chain: the first typed error decides, otherwise infrastructure.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<FciError>())
        .map(FciError::exit_code)
        .unwrap_or(exit::INFRA)
}
