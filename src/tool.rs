//! The programs fci runs: where they are (as `execvp` finds them) and, when missing, what
//! provides them, in one declaration per tool.

use crate::error::FciError;
use std::path::PathBuf;

/// Finds a program on PATH or fails naming the Debian package that provides it.
pub fn require(tool: &str, package: &str) -> Result<PathBuf, FciError> {
    which(tool).ok_or_else(|| FciError::ToolMissing {
        tool: tool.to_string(),
        package: package.to_string(),
    })
}

/// The program `tool` names, found as `execvp` would run it (the `which` crate): a name with
/// a `/` as a path, else the first regular file on PATH this process may execute.
pub fn which(tool: &str) -> Option<PathBuf> {
    which::which(tool).ok()
}

/// A program a stage runs, and the Debian package that provides it: one declaration feeds
/// both the missing-tool error and the versions in the record and the input digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    /// The Debian package, or how to get the tool where no Debian package has it.
    pub source: ToolSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSource {
    Debian(&'static str),
    Elsewhere(&'static str),
}

impl Tool {
    pub const fn new(program: &'static str, package: &'static str) -> Self {
        Tool {
            program,
            source: ToolSource::Debian(package),
        }
    }

    pub const fn elsewhere(program: &'static str, hint: &'static str) -> Self {
        Tool {
            program,
            source: ToolSource::Elsewhere(hint),
        }
    }

    /// The tool's path, or the error that says how to install it (exit 3).
    pub fn find(&self) -> Result<PathBuf, crate::error::FciError> {
        match self.source {
            ToolSource::Debian(package) => require(self.program, package),
            ToolSource::Elsewhere(hint) => {
                which(self.program).ok_or_else(|| crate::error::FciError::ToolMissingHint {
                    tool: self.program.into(),
                    hint: hint.into(),
                })
            }
        }
    }
}

pub const BWRAP: Tool = Tool::new("bwrap", "bubblewrap");
pub const RPM: Tool = Tool::new("rpm", "rpm");
/// What rebuilds a composed tree's loader cache (`fci compose`); static, so it runs inside
/// the tree.
pub const LDCONFIG: Tool = Tool::new("ldconfig", "libc-bin");

/// What makes the private mount namespace for the subject's overlays (`crate::sandbox`), and
/// mounts them and package code's volumes (`crate::volume`).
pub const UNSHARE: Tool = Tool::new("unshare", "util-linux");
pub const MOUNT: Tool = Tool::new("mount", "mount");
/// `fci integrate`'s test commands enter the composed tree with it (see `sandbox::Guest`).
pub const CHROOT: Tool = Tool::new("chroot", "coreutils");

#[cfg(test)]
mod tests {
    #[test]
    fn which_finds_only_executable_regular_files() {
        use std::os::unix::fs::PermissionsExt;
        assert!(super::which("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(super::which("no-such-tool-for-fci"), None);
        let d = tempfile::tempdir().unwrap();
        let tool = d.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        let named = tool.to_str().unwrap();
        assert_eq!(super::which(named), None, "not executable");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(super::which(named), Some(tool.clone()));
        assert_eq!(
            super::which(d.path().to_str().unwrap()),
            None,
            "a directory"
        );
    }
}
