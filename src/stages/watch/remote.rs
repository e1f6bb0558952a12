//! Remote dist-git: one `git ls-remote` per repository for its branch heads, several at once
//! (bounded); a changed branch is fetched into a bare mirror in the workspace, so the commits
//! of the push are read in-process like a local repository's.

use crate::exec::{Cmd, Log};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A remote that does not answer in this time is unreachable for this poll.
const TIMEOUT: Duration = Duration::from_secs(120);

fn git(args: &[&str]) -> Cmd {
    // Never a prompt (a poll has no terminal), nor the host's credential or proxy quirks
    // beyond git's own configuration.
    Cmd::new("git")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .args(["-c", "protocol.version=2"])
        .args(args)
        .timeout(Some(TIMEOUT))
}

/// The heads of `branches` at `url`: branch → commit (absent branches are left out).
pub fn ls_remote(
    url: &str,
    branches: &[String],
    log: &mut Log,
) -> Result<BTreeMap<String, String>, String> {
    let refs: Vec<String> = branches.iter().map(|b| format!("refs/heads/{b}")).collect();
    let mut args = vec!["ls-remote", "--heads", "--", url];
    args.extend(refs.iter().map(String::as_str));
    let out = log
        .capture(&git(&args))
        .map_err(|e| format!("{}: {e}", crate::exec::strip_credentials(url)))?;
    if out.timed_out {
        return Err(format!(
            "{}: no answer in {} s",
            crate::exec::strip_credentials(url),
            TIMEOUT.as_secs()
        ));
    }
    if !out.success() {
        return Err(format!(
            "{}: {}",
            crate::exec::strip_credentials(url),
            crate::exec::scrub_credentials(out.reason(), url)
        ));
    }
    let mut heads = BTreeMap::new();
    for line in out.stdout.lines() {
        let Some((id, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(b) = name.strip_prefix("refs/heads/") {
            if branches.iter().any(|x| x == b) && super::git::is_commit_id(id) {
                heads.insert(b.to_string(), id.to_string());
            }
        }
    }
    Ok(heads)
}

/// Fetches `branch` of `url` into the mirror at `dir` (made on first use); returns it.
pub fn fetch(url: &str, branch: &str, dir: &Path, log: &mut Log) -> Result<PathBuf, String> {
    let fail = |what: String| format!("{}: {what}", crate::exec::strip_credentials(url));
    if !dir.join("HEAD").is_file() {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let init = log
            .capture(&git(&["init", "--quiet", "--bare"]).arg(dir))
            .map_err(|e| fail(e.to_string()))?;
        if !init.success() {
            return Err(fail(format!("git init: {}", init.reason())));
        }
    }
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    let dir_s = dir.to_string_lossy().into_owned();
    let out = log
        .capture(&git(&[
            "-C",
            &dir_s,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            url,
            &refspec,
        ]))
        .map_err(|e| fail(e.to_string()))?;
    if !out.success() {
        return Err(fail(format!(
            "git fetch {branch}: {}",
            if out.timed_out {
                "no answer".to_string()
            } else {
                crate::exec::scrub_credentials(out.reason(), url)
            }
        )));
    }
    Ok(dir.to_path_buf())
}
