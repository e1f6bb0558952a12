//! The workspace's collection lock (`locks/gc.lock`), and why it is one.
//!
//! A stage holds it shared from the moment it opens the workspace until its manifest is
//! written (crate::stage::run; `fci bundle` and `fci unbundle` likewise); `fci gc` holds it
//! exclusively while it decides what is referenced and removes the rest. So no object can go
//! while a stage is between storing it and recording it, nor between finding a cache entry
//! complete (`cache_get`) and keeping the record that now references its artifacts: both
//! happen under the shared lock, and gc computes its roots only once every such stage is done.
//!
//! A grace window by time alone (keep whatever is younger than the oldest live run) is not
//! enough: a stage that reuses a week-old cache entry makes week-old objects live again, and
//! nothing about their age says so. A lock held for a stage's whole life is: gc waits for the
//! stages running now (it says so), stages starting meanwhile wait for gc's sweep, which only
//! removes. `flock(2)` is enough here: a workspace is one machine's own; what machines share
//! (the pipeline state) is pruned under `crate::statelock`'s fcntl locks instead.

use crate::workspace::Workspace;
use anyhow::{Context, Result};
use std::fs::File;

const NAME: &str = "gc";

fn open(ws: &Workspace) -> Result<File> {
    let path = ws.lock_path(NAME);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open lock", path.display()))
}

/// Held by a stage while it uses the workspace's objects: gc waits for it.
pub struct InUse(#[allow(dead_code)] File);

/// Marks the workspace in use until dropped (waits while `fci gc` sweeps it).
pub fn in_use(ws: &Workspace) -> Result<InUse> {
    let f = open(ws)?;
    if f.try_lock_shared().is_err() {
        crate::progress::note("waiting for fci gc to finish its sweep of the workspace");
        f.lock_shared()
            .with_context(|| format!("{}: cannot take lock", ws.lock_path(NAME).display()))?;
    }
    Ok(InUse(f))
}

/// The workspace alone for gc's sweep: waits for every stage using it to end.
pub fn exclusive(ws: &Workspace) -> Result<File> {
    let f = open(ws)?;
    if f.try_lock().is_err() {
        crate::progress::note("gc: waiting for the stages running on this workspace to end");
        f.lock()
            .with_context(|| format!("{}: cannot take lock", ws.lock_path(NAME).display()))?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stages share the workspace; gc has it only once none uses it, and a stage starting
    /// meanwhile waits for gc.
    #[test]
    fn gc_waits_for_stages_and_stages_for_gc() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let one = in_use(&ws).unwrap();
        let two = in_use(&ws).unwrap();
        let probe = open(&ws).unwrap();
        assert!(probe.try_lock().is_err(), "gc swept under a running stage");
        drop(one);
        drop(two);
        let sweeping = exclusive(&ws).unwrap();
        assert!(open(&ws).unwrap().try_lock_shared().is_err());
        drop(sweeping);
        drop(in_use(&ws).unwrap());
    }
}
