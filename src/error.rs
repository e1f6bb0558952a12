//! Typed errors of the core, each mapped to one documented exit code.

use std::path::{Path, PathBuf};

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
    /// A mistake in the package itself (its spec, `sources`, tests, plans, gating.yaml): the
    /// package's FAILED verdict, which the stage driver records (a manifest, messages) like
    /// any failure. `at` names the file as the dist-git repository does (`hello.spec:12`,
    /// `tests/tests.yml:3`), never fci's copy of it.
    #[error("{at}: {msg}")]
    Package { at: String, msg: String },
}

impl FciError {
    pub fn input(file: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        FciError::Input {
            file: file.into(),
            msg: msg.into(),
        }
    }

    /// A mistake in the package's `file` (its path relative to the dist-git repository), at
    /// `line` (1-based) when known.
    pub fn package(file: impl AsRef<Path>, line: Option<usize>, msg: impl Into<String>) -> Self {
        let file = file.as_ref().display();
        FciError::Package {
            at: match line {
                Some(n) => format!("{file}:{n}"),
                None => file.to_string(),
            },
            msg: msg.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            FciError::Package { .. } => exit::FAILED,
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

/// Whether the error chain is a mistake in the package ([`FciError::Package`]): the package's
/// FAILED verdict, not the caller's or the host's.
pub fn is_package(err: &anyhow::Error) -> bool {
    err.chain()
        .find_map(|e| e.downcast_ref::<FciError>())
        .is_some_and(|e| matches!(e, FciError::Package { .. }))
}

/// The line a YAML parser's error is at (1-based), for [`FciError::package`].
pub fn yaml_line(e: &serde_yaml_ng::Error) -> Option<usize> {
    e.location().map(|l| l.line())
}

/// `text` with fci's copies of the package's files named as the dist-git repository names
/// them: each `(copy, shown)` directory prefix (`/…/.fci/tmp/build-…/repo/`) becomes `shown`
/// (empty for the repository's top: `hello.spec`), as in what rpmspec and rpmbuild print.
pub fn as_in_dist_git(text: &str, copies: &[(&Path, &str)]) -> String {
    let mut out = text.to_string();
    for (copy, shown) in copies {
        let copy = copy.display().to_string();
        if copy.is_empty() || copy == "/" {
            continue;
        }
        out = out.replace(&format!("{copy}/"), shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_mistake_is_failed_named_by_its_dist_git_path_and_line() {
        let e: anyhow::Error = FciError::package("tests/tests.yml", Some(3), "invalid YAML").into();
        assert_eq!(e.to_string(), "tests/tests.yml:3: invalid YAML");
        assert_eq!(exit_code_of(&e), exit::FAILED);
        assert!(is_package(&e.context("test plan")));
        assert!(!is_package(&FciError::input("x", "y").into()));
        let copy = Path::new("/ws/tmp/build-1/repo");
        assert_eq!(
            as_in_dist_git(
                "error: File /ws/tmp/build-1/repo/hello.tar.gz: No such file",
                &[(copy, "")]
            ),
            "error: File hello.tar.gz: No such file"
        );
    }
}
