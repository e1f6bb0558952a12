//! The runs the pipeline state keeps records of (`<state>/records/<run>/`), which of them a
//! policy keeps, and the removal of the others' records.

use super::policy::Policy;
use crate::workspace::Workspace;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One run's records.
pub struct Run {
    /// Its records directory (`run_records::run_dir`).
    pub dir: PathBuf,
    /// When fci kept its newest record.
    pub last: SystemTime,
    /// Every record entry, as kept (`run_records::keep`).
    pub entries: Vec<Value>,
}

impl Run {
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Every run with a records directory, newest first.
pub fn runs(ws: &Workspace) -> Vec<Run> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(ws.pipeline("records")) else {
        return out;
    };
    for e in rd.flatten() {
        let dir = e.path();
        if !dir.is_dir() || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let mut entries = Vec::new();
        for stage in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(stage.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(f.path()).ok();
                if let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
                    entries.push(v);
                }
            }
        }
        // The newest record's time; the directory's own when none has one (a run the watch
        // has just made, an older fci's records).
        let kept = entries
            .iter()
            .filter_map(|v| v["kept_ns"].as_u64())
            .max()
            .map(|ns| UNIX_EPOCH + Duration::from_nanos(ns));
        let mtime = e.metadata().and_then(|m| m.modified()).ok();
        let last = kept.into_iter().chain(mtime).max().unwrap_or(UNIX_EPOCH);
        out.push(Run { dir, last, entries });
    }
    out.sort_by(|a, b| b.last.cmp(&a.last).then(a.dir.cmp(&b.dir)));
    out
}

/// Every string value named `key` at any depth of `v`.
fn strings_named<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == key => out.push(s),
                    x => strings_named(x, key, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| strings_named(x, key, out)),
        _ => {}
    }
}

/// The record directories of the runs the pipeline still needs whatever the policy: each
/// known-good package's run (`<state>/known-good/<branch>.json`) and each run queued for a
/// retest (`<state>/retest/<branch>.json`).
pub fn pinned(ws: &Workspace) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for area in ["known-good", "retest"] {
        for e in std::fs::read_dir(ws.pipeline(area))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Some(v) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            else {
                continue;
            };
            let mut ids = Vec::new();
            strings_named(&v, "run", &mut ids);
            out.extend(ids.into_iter().map(|r| crate::run_records::run_dir(ws, r)));
        }
    }
    out
}

/// Why a run is kept, or None: it goes.
pub fn kept_because(
    policy: &Policy,
    pinned: &BTreeSet<PathBuf>,
    rank: usize,
    run: &Run,
    now: SystemTime,
) -> Option<&'static str> {
    let age = now.duration_since(run.last).unwrap_or_default();
    if pinned.contains(&run.dir) {
        return Some("known-good or queued for a retest");
    }
    if age < policy.grace() {
        return Some("within the grace period");
    }
    let by_count = policy.keep_runs.is_none_or(|n| rank < n);
    let by_age = policy.max_age.is_none_or(|m| age <= m);
    (by_count && by_age).then_some("within the policy")
}

/// Removes a run's records: renamed aside first, so that a reader (or a crash) sees the
/// run's records whole or not at all.
pub fn remove(ws: &Workspace, dir: &Path) -> std::io::Result<()> {
    let aside = ws
        .pipeline("records")
        .join(format!(".gc-{}", uuid::Uuid::new_v4()));
    std::fs::rename(dir, &aside)?;
    std::fs::remove_dir_all(&aside)
}

/// Removes what an interrupted `remove` left aside.
pub fn remove_leftovers(ws: &Workspace) {
    for e in std::fs::read_dir(ws.pipeline("records"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with(".gc-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
