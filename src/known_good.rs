//! The known-good package set of a branch (`<state>/known-good/<branch>.json`): what
//! `fci report --promote` made part of the branch's base, by package (its NVR, NEVRAs, run,
//! dist-git commit and composed commit). Apart from the promotion that writes it, so that
//! `fci watch` (which drops a queued retest of a commit already there) reads it without
//! depending on the report stage, nor the report on the watch's.

use crate::error::FciError;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{Map, Value};

/// Where `branch`'s known-good set is.
pub fn path(ws: &Workspace, branch: &str) -> std::path::PathBuf {
    ws.pipeline("known-good").join(format!("{branch}.json"))
}

/// The branch's known-good state; none yet is an empty one, a damaged one is left as it is.
pub fn read(path: &std::path::Path) -> Result<Map<String, Value>> {
    Ok(match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str::<Map<String, Value>>(&t).map_err(|e| {
            FciError::input(
                path,
                format!("damaged known-good state, left as it is: {e}"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(FciError::input(path, format!("cannot read: {e}")).into()),
    })
}

/// The run that made `package` at dist-git `commit` part of `branch`'s known-good set, if
/// one did (`fci watch` drops a queued retest of it).
pub fn run_of(ws: &Workspace, branch: &str, package: &str, commit: &str) -> Result<Option<String>> {
    let set = read(&path(ws, branch))?;
    Ok(set
        .get(package)
        .filter(|e| e["dist_git_commit"].as_str() == Some(commit))
        .map(|e| e["run"].as_str().unwrap_or("?").to_string()))
}
