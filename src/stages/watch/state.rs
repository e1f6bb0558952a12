//! What the watch has seen, per package and branch (`state/watch/heads.json`), and what the
//! report recorded (the known-good package set, the excluded changes). The heads are written
//! only after the manifests of their changes are out: a crash in between re-emits a change
//! (consumers de-duplicate by commit), it never loses one.

use crate::error::FciError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Heads {
    path: PathBuf,
    /// `package/branch` → commit, and whether it was only recorded at a first poll (never
    /// emitted: a push message for it still makes a run).
    seen: BTreeMap<String, (String, bool)>,
    dirty: bool,
}

pub fn key(package: &str, branch: &str) -> String {
    format!("{package}/{branch}")
}

impl Heads {
    pub fn load(state_dir: &Path) -> Result<Heads, FciError> {
        let path = state_dir.join("watch").join("heads.json");
        let seen = match std::fs::read(&path) {
            Ok(bytes) => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    FciError::input(&path, format!("damaged watch state, left as it is: {e}"))
                })?;
                let mut seen = BTreeMap::new();
                for (k, e) in v["heads"].as_object().into_iter().flatten() {
                    let c = e["commit"].as_str().filter(|c| super::git::is_commit_id(c));
                    let c = c.ok_or_else(|| {
                        FciError::input(&path, format!("damaged watch state: `{k}` has no commit"))
                    })?;
                    let first = e["first_sight"].as_bool().unwrap_or(false);
                    seen.insert(k.clone(), (c.to_string(), first));
                }
                seen
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(FciError::input(&path, format!("cannot read: {e}"))),
        };
        Ok(Heads {
            path,
            seen,
            dirty: false,
        })
    }

    pub fn get(&self, package: &str, branch: &str) -> Option<&str> {
        self.seen
            .get(&key(package, branch))
            .map(|(c, _)| c.as_str())
    }

    /// Whether the head was only recorded by a first poll, never emitted.
    pub fn first_sight(&self, package: &str, branch: &str) -> bool {
        self.seen
            .get(&key(package, branch))
            .is_some_and(|(_, f)| *f)
    }

    /// Records `commit` as emitted (or deliberately not queued).
    pub fn set(&mut self, package: &str, branch: &str, commit: &str) {
        self.put(package, branch, commit, false);
    }

    /// Records `commit` as seen at a first poll, without a run.
    pub fn set_first_sight(&mut self, package: &str, branch: &str, commit: &str) {
        self.put(package, branch, commit, true);
    }

    fn put(&mut self, package: &str, branch: &str, commit: &str, first: bool) {
        let new = (commit.to_string(), first);
        let old = self.seen.insert(key(package, branch), new.clone());
        self.dirty |= old.as_ref() != Some(&new);
    }

    /// Writes the heads when they changed.
    pub fn save(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let heads: Map<String, Value> = self
            .seen
            .iter()
            .map(|(k, (c, first))| {
                let e = if *first {
                    json!({ "commit": c, "first_sight": true })
                } else {
                    json!({ "commit": c })
                };
                (k.clone(), e)
            })
            .collect();
        let doc = json!({ "heads": heads, "updated": crate::now_rfc3339() });
        std::fs::create_dir_all(self.path.parent().expect("state file has a directory"))?;
        crate::files::write_atomic(&self.path, serde_json::to_string(&doc)?.as_bytes())?;
        self.dirty = false;
        Ok(())
    }
}

/// The report's record of a branch: the known-good package set (NEVRAs) and the excluded
/// changes (package, dist-git commit).
pub struct Branch {
    pub packages: Vec<String>,
    excluded: Vec<(String, String, String)>,
}

impl Branch {
    pub fn load(state_dir: &Path, branch: &str) -> Result<Branch, FciError> {
        let kg = state_dir.join("known-good").join(format!("{branch}.json"));
        let mut packages: Vec<String> = read_json(&kg)?
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, e)| e["nevras"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        packages.sort();
        let ex = state_dir.join("excluded").join(format!("{branch}.json"));
        let excluded = read_json(&ex)?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["package"].as_str()?.to_string(),
                    e["dist_git_commit"].as_str()?.to_string(),
                    e["run"].as_str().unwrap_or("?").to_string(),
                ))
            })
            .collect();
        Ok(Branch { packages, excluded })
    }

    /// The run that excluded this change, if the report excluded it.
    pub fn excluded_by(&self, package: &str, commit: &str) -> Option<&str> {
        self.excluded
            .iter()
            .find(|(p, c, _)| p == package && c == commit)
            .map(|(_, _, run)| run.as_str())
    }
}

fn read_json(path: &Path) -> Result<Value, FciError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| FciError::input(path, format!("damaged state, left as it is: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(FciError::input(path, format!("cannot read: {e}"))),
    }
}
