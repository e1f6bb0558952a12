//! Changes to test again on a base that moved while they were tested. Two changes tested on
//! the same known-good base race to promote; the first moves the base, and the second, whose
//! verdict no longer says anything about the new base, is neither promoted nor excluded (it
//! is not the packager's failure): `fci report --promote` queues it here, in the pipeline
//! state (`<state>/retest/<branch>.json`, under the branch's lock), and the next `fci watch`
//! (any worker's, a poll or a message run) emits it again as a new run on the base as it is
//! then. A queued commit that is no longer its branch's head (a newer push was seen since,
//! and tested on the new base anyway) is superseded and dropped, said so.

use super::{git, Change, Watcher};
use crate::error::FciError;
use crate::workspace::Workspace;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One queued retest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    pub package: String,
    pub repo: String,
    pub commit: String,
    /// The run whose promotion found the base moved.
    pub run: String,
    /// The base it was tested on, and the known-good commit when it was queued.
    pub tested_on: String,
    pub moved_to: String,
}

fn path(ws: &Workspace, branch: &str) -> PathBuf {
    ws.pipeline("retest").join(format!("{branch}.json"))
}

fn lock_name(branch: &str) -> String {
    format!("retest-{branch}")
}

fn read(path: &std::path::Path) -> Result<Vec<Entry>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(serde_json::from_str(&t).map_err(|e| {
            FciError::input(path, format!("damaged retest queue, left as it is: {e}"))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FciError::Infra(format!("cannot read {}: {e}", path.display())).into()),
    }
}

fn write(path: &std::path::Path, entries: &[Entry]) -> Result<()> {
    let host = |e: String| FciError::Infra(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(path.parent().expect("a queue has a directory"))
        .map_err(|e| host(e.to_string()))?;
    crate::files::write_atomic(path, serde_json::to_string_pretty(entries)?.as_bytes())
        .map_err(|e| host(e.to_string()).into())
}

/// Queues `entry` on `branch` (once per package and commit).
pub fn enqueue(ws: &Workspace, branch: &str, entry: Entry) -> Result<()> {
    let _lock = ws.pipeline_lock(&lock_name(branch))?;
    let p = path(ws, branch);
    let mut q = read(&p)?;
    q.retain(|e| !(e.package == entry.package && e.commit == entry.commit));
    q.push(entry);
    write(&p, &q)
}

/// A commit's first 12 characters, for a message (an entry of a hand-edited queue may hold
/// any text: never a slice inside a character).
fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

impl Watcher {
    /// Emits every queued retest of the followed branches whose commit is still its branch's
    /// head, as a new run on the current known-good base; drops the superseded; removes each
    /// from the queue once its manifest is out (a crash between the two emits it again:
    /// never lost).
    pub fn emit_retests(&mut self) -> Result<()> {
        let mut branches: Vec<String> = self.cfg.branches.clone();
        branches.sort();
        branches.dedup();
        for branch in branches {
            let _lock = self.ws.pipeline_lock(&lock_name(&branch))?;
            let p = path(&self.ws, &branch);
            let queued = read(&p)?;
            if queued.is_empty() {
                continue;
            }
            let kept = super::state::Branch::load(&self.ws.pipeline(""), &branch)?;
            let mut left = Vec::new();
            for e in queued {
                if !super::git::is_commit_id(&e.commit) {
                    // The state is written by every worker's user: a damaged entry is said
                    // and dropped, never a watch that stops on it forever.
                    self.error(&format!(
                        "retest: dropped an entry of {} whose commit is not a commit id: {:?}",
                        p.display(),
                        short(&e.commit)
                    ));
                    continue;
                }
                if let Some(run) =
                    crate::known_good::run_of(&self.ws, &branch, &e.package, &e.commit)?
                {
                    crate::progress::note(&format!(
                        "watch: retest of {} {} on {branch} dropped: that commit is part of the known-good base already (run {run})",
                        e.package,
                        short(&e.commit)
                    ));
                    continue;
                }
                if self.heads.get(&e.package, &branch) != Some(e.commit.as_str()) {
                    crate::progress::note(&format!(
                        "watch: retest of {} {} on {branch} dropped: superseded by a newer push, tested on the new base",
                        e.package,
                        short(&e.commit)
                    ));
                    continue;
                }
                let ch = Change {
                    package: e.package.clone(),
                    branch: branch.clone(),
                    repo: e.repo.clone(),
                    range: git::Range {
                        from: None,
                        to: e.commit.clone(),
                        commits: Vec::new(),
                        forced: false,
                        truncated: false,
                    },
                    trigger: serde_json::json!({
                        "retest": {"after_run": e.run, "tested_on": e.tested_on, "moved_to": e.moved_to}
                    }),
                };
                let m = super::emit::manifest(&self.cfg, &self.ws, &ch, &kept);
                let out =
                    crate::run_records::keep(&self.ws, &m).and_then(|_| self.out.write(&m, &ch));
                match out {
                    Ok(()) => {
                        self.emitted += 1;
                        crate::progress::note(&format!(
                            "watch: {} {} on {branch} queued again on the new base (its base moved while it was tested)",
                            e.package,
                            short(&e.commit)
                        ));
                    }
                    Err(err) => {
                        left.push(e);
                        self.error(&format!("retest: {}", crate::error::one_line(&err)));
                    }
                }
            }
            write(&p, &left)?;
        }
        Ok(())
    }
}
