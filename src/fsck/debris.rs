//! What a crash leaves and nothing trusts: the scratch directories of killed runs in `tmp/`
//! (unlocked: a running one holds its lock), files never renamed into place (`tmp/.obj-*`
//! of `Workspace::store`, `.tmp*` beside a file `files::write_atomic` was writing).

use super::{entries, Findings, Repair};
use crate::workspace::Workspace;
use anyhow::Result;
use std::fs;
use std::path::Path;

/// How old debris must be before `--repair` removes it: a running fci may be between making
/// such a file and renaming it (milliseconds), and must not lose it to a repair.
const SETTLED_SECS: u64 = 60;

fn settled(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a.as_secs() >= SETTLED_SECS)
}

/// `p` as debris, removed by `--repair` once it is old enough that no running fci can still
/// be about to rename or lock it.
pub fn removable(f: &mut Findings, p: &Path, what: &str) {
    if settled(p) {
        f.debris(p, what, Repair::Remove);
    } else {
        f.0.push(super::Finding {
            kind: super::Kind::Debris,
            path: p.to_path_buf(),
            what: format!(
                "{what}; recent, perhaps a running fci's: left until it is {SETTLED_SECS}s old"
            ),
            repair: None,
        });
    }
}

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    for p in entries(&ws.root().join("tmp"))? {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            // A running stage holds its scratch's lock for the scratch's whole life.
            let abandoned = fs::File::open(p.join(".lock")).map_or(true, |l| l.try_lock().is_ok());
            if abandoned {
                removable(
                    f,
                    &p,
                    "scratch of a run that ended without removing it (killed)",
                );
            }
        } else {
            removable(
                f,
                &p,
                "a file in tmp/ never renamed into place (a store cut short)",
            );
        }
    }
    // Files `write_atomic` never renamed, wherever fci keeps its own files.
    let mut roots = vec![];
    for sub in ["cache", "spool", "state", "messages", "waivers", "results"] {
        roots.push(ws.root().join(sub));
    }
    let pipeline = ws.pipeline("");
    if !pipeline.starts_with(ws.root()) {
        roots.push(pipeline);
    }
    for root in roots {
        for e in walkdir::WalkDir::new(&root)
            .min_depth(1)
            .into_iter()
            // The OSTree repository keeps its own staging (ostree fsck's business).
            .filter_entry(|e| !(e.depth() == 1 && e.file_name() == "ostree"))
            .flatten()
        {
            let n = e.file_name().to_string_lossy();
            if e.file_type().is_file() && n.starts_with(".tmp") {
                removable(
                    f,
                    e.path(),
                    "a temporary file never renamed into place (a write cut short)",
                );
            }
        }
    }
    Ok(())
}
