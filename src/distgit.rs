//! Locating a dist-git checkout: a local directory, or a git URL (or local repo) at a ref.

use crate::error::FciError;
use crate::exec::{self, Cmd, Log};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A dist-git tree ready to read, with what we know of its origin.
pub struct Checkout {
    pub dir: PathBuf,
    /// The repository as given: URL, or canonical local path.
    pub repo: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The work tree differs from `commit` (uncommitted or untracked files).
    pub dirty: bool,
    /// Keeps a clone alive for as long as the checkout is used.
    _clone: Option<tempfile::TempDir>,
}

pub fn is_url(s: &str) -> bool {
    ["https://", "http://", "git://", "ssh://", "file://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Resolves `source` at `git_ref` (None: use a local directory as it is, or a URL's HEAD).
pub fn checkout(
    source: &str,
    git_ref: Option<&str>,
    scratch: &Path,
    log: &mut Log,
) -> Result<Checkout> {
    if let Some(r) = git_ref {
        if r.starts_with('-') || r.is_empty() || r.contains("..") {
            return Err(FciError::Usage(format!("invalid git ref `{r}`")).into());
        }
    }
    if is_url(source) {
        return clone(source, source.to_string(), git_ref, scratch, log);
    }
    if source.contains("://") {
        return Err(FciError::input(
            source,
            "unsupported URL scheme (use https, http, git, ssh or file)",
        )
        .into());
    }
    let path = Path::new(source);
    if !path.is_dir() {
        return Err(FciError::input(path, "no such dist-git directory").into());
    }
    let canon = path.canonicalize()?;
    let repo = canon.to_string_lossy().into_owned();
    if git_ref.is_some() {
        return clone(source, repo, git_ref, scratch, log);
    }
    let (commit, branch) = git_identity(&canon);
    let dirty = commit.is_some() && is_dirty(&canon);
    Ok(Checkout {
        dir: canon,
        repo,
        commit,
        branch,
        dirty,
        _clone: None,
    })
}

fn clone(
    source: &str,
    repo: String,
    git_ref: Option<&str>,
    scratch: &Path,
    log: &mut Log,
) -> Result<Checkout> {
    let git = exec::require("git", "git")?;
    let tmp = tempfile::Builder::new()
        .prefix("distgit-")
        .tempdir_in(scratch)?;
    let dir = tmp.path().join("repo");
    // Captured, so that what git prints passes through the log's redaction.
    let out = log.capture(
        &Cmd::new(&git)
            .args(["clone", "--quiet", "--no-checkout", "--"])
            .arg(source)
            .arg(&dir)
            .env("GIT_TERMINAL_PROMPT", "0"),
    )?;
    if !out.success() {
        return Err(
            FciError::input(source, format!("git clone failed: {}", last_line(log))).into(),
        );
    }
    let target = git_ref.unwrap_or("HEAD");
    // A branch name resolves through the remote-tracking ref; a tag or a commit id directly.
    let candidates = [format!("origin/{target}"), target.to_string()];
    let mut resolved = None;
    for c in &candidates {
        let r = log.capture(
            &Cmd::new(&git)
                .arg("-C")
                .arg(&dir)
                .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
                .arg(format!("{c}^{{commit}}")),
        )?;
        if r.success() {
            resolved = Some(r.stdout.trim().to_string());
            break;
        }
    }
    let commit =
        resolved.ok_or_else(|| FciError::input(source, format!("no such git ref `{target}`")))?;
    let co = log.run(
        &Cmd::new(&git)
            .arg("-C")
            .arg(&dir)
            .args(["checkout", "--quiet", "--detach"])
            .arg(&commit),
    )?;
    if !co.success() {
        return Err(FciError::input(
            source,
            format!("git checkout of {commit} failed: {}", last_line(log)),
        )
        .into());
    }
    let branch = match git_ref {
        Some(r) if !looks_like_commit(r) => Some(r.to_string()),
        _ => git_identity(&dir).1,
    };
    Ok(Checkout {
        dir,
        repo,
        commit: Some(commit),
        branch,
        dirty: false,
        _clone: Some(tmp),
    })
}

fn looks_like_commit(r: &str) -> bool {
    r.len() >= 7 && r.chars().all(|c| c.is_ascii_hexdigit())
}

fn last_line(log: &Log) -> String {
    log.tail(3)
        .lines()
        .rev()
        .find(|l| !l.starts_with('#') && !l.starts_with('$') && !l.trim().is_empty())
        .unwrap_or("see the stage log")
        .trim()
        .to_string()
}

/// HEAD commit and branch of the work tree containing `dir`, if it is one.
/// Whether a checkout has changes (tracked or untracked, not ignored) beyond its HEAD.
fn is_dirty(dir: &Path) -> bool {
    duct::cmd("git", ["status", "--porcelain"])
        .dir(dir)
        .stderr_null()
        .stdout_capture()
        .unchecked()
        .run()
        .is_ok_and(|o| !o.status.success() || !o.stdout.is_empty())
}

fn git_identity(dir: &Path) -> (Option<String>, Option<String>) {
    // Only a checkout's top level has `.git`; anything else needs no git process at all.
    if !dir.join(".git").exists() {
        return (None, None);
    }
    // One process for all three answers.
    let out = duct::cmd(
        "git",
        [
            "rev-parse",
            "--show-toplevel",
            "HEAD",
            "--abbrev-ref",
            "HEAD",
        ],
    )
    .dir(dir)
    .stderr_null()
    .stdout_capture()
    .unchecked()
    .run()
    .ok()
    .filter(|o| o.status.success())
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap_or_default();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    match lines.as_slice() {
        [top, commit, branch] if Path::new(top) == dir => (
            Some(commit.to_string()),
            (*branch != "HEAD").then(|| branch.to_string()),
        ),
        _ => (None, None),
    }
}

/// The rawhide release number assumed when a branch says only `rawhide`/`main`.
pub const RAWHIDE: u32 = 45;

/// The `%{dist}` a Fedora/CentOS dist-git branch builds with.
pub fn dist_for_branch(branch: &str) -> Option<String> {
    let num = |s: &str| s.parse::<u32>().ok();
    if let Some(n) = branch.strip_prefix('f').and_then(num) {
        return Some(format!(".fc{n}"));
    }
    if let Some(n) = branch.strip_prefix("epel").and_then(num) {
        return Some(format!(".el{n}"));
    }
    if let Some(n) = branch
        .strip_prefix('c')
        .and_then(|b| b.strip_suffix('s'))
        .and_then(num)
    {
        return Some(format!(".el{n}"));
    }
    if let Some(n) = branch.strip_prefix("el").and_then(num) {
        return Some(format!(".el{n}"));
    }
    match branch {
        "rawhide" | "main" | "master" => Some(format!(".fc{RAWHIDE}")),
        _ => None,
    }
}

/// `.fc41` → (`fedora`, 41), `.el9` → (`rhel`, 9): the macro a dist tag implies.
pub fn release_macro(dist: &str) -> Option<(&'static str, String)> {
    let digits =
        |s: &str| (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())).then(|| s.to_string());
    if let Some(n) = dist.strip_prefix(".fc").and_then(digits) {
        return Some(("fedora", n));
    }
    dist.strip_prefix(".el")
        .and_then(|r| digits(r.split('_').next().unwrap_or(r)))
        .map(|n| ("rhel", n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_tags_follow_fedora_branch_names() {
        assert_eq!(dist_for_branch("f41").as_deref(), Some(".fc41"));
        assert_eq!(dist_for_branch("epel9").as_deref(), Some(".el9"));
        assert_eq!(dist_for_branch("c10s").as_deref(), Some(".el10"));
        assert_eq!(dist_for_branch("rawhide").as_deref(), Some(".fc45"));
        assert_eq!(dist_for_branch("feature-x"), None);
    }
}
