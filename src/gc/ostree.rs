//! The pipeline's OSTree repository: candidate refs of runs gone, then `ostree prune
//! --refs-only --depth=N` of what no ref reaches. Every `fci/<branch>/known-good` ref stays,
//! with N commits of its history (the policy's `ostree_depth`).
//!
//! Concurrent commits: ostree 2022.7 locks its repository itself (`core.locking`, on by
//! default): a commit's transaction holds the repository lock shared and `prune` takes it
//! exclusively, so a prune never removes the objects of a transaction in flight (checked: a
//! prune started during `ostree commit` waits for it, docs/gc.md). What that lock does not
//! cover is `fci compose`'s orphan commit between its transaction and the candidate ref set
//! once the commit is checked: no ref reaches it then. So compose holds the pipeline lock
//! `ostree-prune` shared over that window ([`hold_against_prune`]) and gc takes it exclusively
//! for the prune: an fcntl lock in the state directory, so it holds across workers.

use crate::exec::{Cmd, Log};
use crate::workspace::Workspace;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn prune_lock(ws: &Workspace) -> PathBuf {
    ws.pipeline("locks").join("ostree-prune.lock")
}

/// Held by a compose from its commit until its candidate ref is set: no prune meanwhile.
pub fn hold_against_prune(ws: &Workspace) -> Result<crate::statelock::StateLock> {
    crate::statelock::lock_shared(&prune_lock(ws))
}

fn ostree(repo: &Path, verb: &str) -> Cmd {
    Cmd::new("ostree")
        .arg(verb)
        .arg(format!("--repo={}", repo.display()))
}

/// The run a candidate ref (`fci/<branch>/candidate/<run>`) names.
fn candidate_run(r: &str) -> Option<&str> {
    let mut parts = r.splitn(4, '/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("fci"), Some(_), Some("candidate"), Some(run)) => Some(run),
        _ => None,
    }
}

/// What the OSTree part did (or would do).
#[derive(Default)]
pub struct Pruned {
    pub refs: Vec<String>,
    pub objects: u64,
    pub bytes: u64,
}

/// Deletes the candidate refs of runs whose records are gone (looked at now, under the
/// caller's pipeline lock: a run that started since the policy was applied has records, and
/// keeps its ref), then prunes.
pub fn collect(ws: &Workspace, depth: u32, dry_run: bool, log: &mut Log) -> Result<Pruned> {
    let repo = ws.ostree_repo();
    let mut out = Pruned::default();
    if !repo.join("config").is_file() {
        return Ok(out);
    }
    let refs = log.capture_ok(&ostree(&repo, "refs"), "ostree refs failed")?;
    let gone: BTreeSet<String> = refs
        .stdout
        .lines()
        .map(str::trim)
        .filter(|r| {
            candidate_run(r).is_some_and(|run| !crate::run_records::run_dir(ws, run).exists())
        })
        .map(String::from)
        .collect();
    for r in &gone {
        if !dry_run {
            log.capture_ok(
                &ostree(&repo, "refs").args(["--delete", "--", r.as_str()]),
                format!("ostree refs --delete {r} failed"),
            )?;
        }
        out.refs.push(r.clone());
    }
    let _alone = crate::statelock::lock(&prune_lock(ws))?;
    let mut prune = ostree(&repo, "prune")
        .arg("--refs-only")
        .arg(format!("--depth={depth}"));
    if dry_run {
        prune = prune.arg("--no-prune");
    }
    let done = log.capture_ok(&prune, "ostree prune failed")?;
    // "Total objects: N\nDeleted M objects, X MB freed" (or "No unreachable objects").
    for l in done.stdout.lines() {
        if let Some(rest) = l.strip_prefix("Deleted ") {
            let mut w = rest.split_whitespace();
            out.objects = w.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let _ = w.next();
            let amount: Option<f64> = w.next().and_then(|n| n.parse().ok());
            let unit = w.next().unwrap_or("");
            if let Some(a) = amount {
                let mul = match unit {
                    "kB" => 1e3,
                    "MB" => 1e6,
                    "GB" => 1e9,
                    _ => 1.0,
                };
                out.bytes = (a * mul) as u64;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_candidate_ref_names_its_run() {
        assert_eq!(
            super::candidate_run("fci/f41/candidate/abc-1"),
            Some("abc-1")
        );
        assert_eq!(super::candidate_run("fci/f41/known-good"), None);
    }
}
