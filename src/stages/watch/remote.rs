//! Remote dist-git: one `git ls-remote` per repository for its branch heads, several at once
//! (bounded); a changed branch is fetched into a bare mirror in the workspace, so the commits
//! of the push are read in-process like a local repository's.

use crate::exec::{Cmd, Ending, Failure, Log};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a dist-git server's answer may print at most, on stdout and on stderr: the heads of a
/// few branches, or git's one-line errors, are well under it. A server that sends more (a
/// flood of refs, endless `remote:` lines) is an ERROR for its package, not fci's memory.
pub const MAX_ANSWER: usize = 1 << 20;

fn over_limit(url: &str, what: &str) -> String {
    format!(
        "{}: {what}: the server's answer is larger than the limit of {MAX_ANSWER} bytes (1 MiB): not read further",
        crate::redact::strip_credentials(url)
    )
}

fn git(args: &[&str], timeout: Duration) -> Cmd {
    // Never a prompt (a poll has no terminal), nor the host's credential or proxy quirks
    // beyond git's own configuration.
    Cmd::new("git")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .args(["-c", "protocol.version=2"])
        .args(args)
        .timeout(Some(timeout))
        .timeout_flag("--remote-timeout")
        // Judged here: a remote that does not answer in time is that package's error.
        .judges_timeout()
        // Its own group: at the deadline git's transport helpers (`git remote-https`, which
        // hold the output pipe) die with it, so a hung server costs one package the
        // timeout, not the whole poll.
        .own_group()
}

/// The heads of `branches` at `url`: branch → commit (absent branches are left out).
pub fn ls_remote(
    url: &str,
    branches: &[String],
    timeout: Duration,
    log: &mut Log,
) -> Result<BTreeMap<String, String>, String> {
    let refs: Vec<String> = branches.iter().map(|b| format!("refs/heads/{b}")).collect();
    let mut args = vec!["ls-remote", "--heads", "--", url];
    args.extend(refs.iter().map(String::as_str));
    let fail = |what: String| format!("{}: {what}", crate::redact::strip_credentials(url));
    let out = log
        .capture(&git(&args, timeout).capture_limit(MAX_ANSWER))
        .map_err(|e| fail(e.to_string()))?
        .checked()
        .map_err(|f| match f.ending {
            Ending::OutputCut => over_limit(url, "git ls-remote"),
            _ => fail(said(&f, url, timeout)),
        })?;
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

/// Fetches `branch` of `url` into the mirror at `dir` (made on first use); returns it. Only
/// this watcher uses the mirror (it holds the workspace's watch lock), so a lock file in it
/// was left by a killed run and is removed, and a half-made mirror is made again.
pub fn fetch(
    url: &str,
    branch: &str,
    dir: &Path,
    timeout: Duration,
    log: &mut Log,
) -> Result<PathBuf, String> {
    remove_stale_locks(dir, log);
    fetch_into(url, branch, dir, timeout, log).map(|()| dir.to_path_buf())
}

fn remove_stale_locks(dir: &Path, log: &mut Log) {
    let objects = |e: &walkdir::DirEntry| e.file_type().is_dir() && e.file_name() == "objects";
    let walk = walkdir::WalkDir::new(dir).min_depth(1).into_iter();
    for e in walk.filter_entry(|e| !objects(e)).flatten() {
        let p = e.path();
        if e.file_type().is_file() && p.extension().is_some_and(|x| x == "lock") {
            log.line(&format!(
                "# removing {} (left by a killed run)",
                p.display()
            ));
            let _ = std::fs::remove_file(p);
        }
    }
}

fn fetch_into(
    url: &str,
    branch: &str,
    dir: &Path,
    timeout: Duration,
    log: &mut Log,
) -> Result<(), String> {
    let fail = |what: String| format!("{}: {what}", crate::redact::strip_credentials(url));
    if !(dir.join("HEAD").is_file() && dir.join("config").is_file()) {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        log.capture(&git(&["init", "--quiet", "--bare"], timeout).arg(dir))
            .map_err(|e| fail(e.to_string()))?
            .checked()
            .map_err(|f| fail(format!("git init: {}", said(&f, url, timeout))))?;
    }
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    let dir_s = dir.to_string_lossy().into_owned();
    let out = log
        .capture(
            &git(
                &[
                    "-C",
                    &dir_s,
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--",
                    url,
                    &refspec,
                ],
                timeout,
            )
            .capture_limit(MAX_ANSWER),
        )
        .map_err(|e| fail(e.to_string()))?;
    out.checked().map_err(|f| match f.ending {
        Ending::OutputCut => over_limit(url, &format!("git fetch {branch}")),
        _ => fail(format!("git fetch {branch}: {}", said(&f, url, timeout))),
    })?;
    Ok(())
}

/// What a failed git said: no answer in time, or its own line without `url`'s credentials.
fn said(f: &Failure, url: &str, timeout: Duration) -> String {
    match f.ending {
        Ending::TimedOut(_) => format!("no answer in {} s", timeout.as_secs()),
        _ => crate::redact::scrub_credentials(&f.to_string(), url),
    }
}
