//! The workspace's own areas: what the kept runs reference in `objects/`, `repos/` and
//! `trees/`, the cache entries kept, and the removal of the rest (with the image records of
//! images gone and the scratch of killed runs).

use crate::workspace::Workspace;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The areas whose entries are collected, and how many path components name one entry:
/// `objects/<aa>/<sha256>`, `repos/<digest>`, `trees/<digest>`.
const AREAS: &[(&str, usize)] = &[("objects", 3), ("repos", 2), ("trees", 2)];

/// The entry (`objects/aa/sha`, `repos/key`) a workspace-relative path lies in, if any.
fn unit_of(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let (_, n) = AREAS.iter().find(|(a, _)| parts.first() == Some(a))?;
    (parts.len() >= *n && !parts[..*n].contains(&"..")).then(|| parts[..*n].join("/"))
}

/// Every entry a JSON value names: any string, at any depth, that is a path into an area
/// (an artifact's path, a record's log, a test result's log, an attempt's log, ...): reading
/// every string, not a list of fields, so a field added later is never missed.
pub fn referenced(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(u) = unit_of(s) {
                out.insert(u);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| referenced(x, out)),
        Value::Object(m) => m.values().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

/// A cache entry: `cache/<stage>/<input digest>.json`.
pub struct Cached {
    pub path: PathBuf,
    pub stage: String,
    pub digest: String,
    pub entry: Option<Value>,
}

/// Every stage's cache entries (other files below `cache/`, the host's facts, are not).
pub fn cache_entries(ws: &Workspace) -> Vec<Cached> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(ws.cache(""))
        .into_iter()
        .flatten()
        .flatten()
    {
        let stage = d.file_name().to_string_lossy().into_owned();
        let a_stage = crate::manifest::StageName::ALL
            .iter()
            .any(|s| s.as_str() == stage);
        if !a_stage || !d.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(digest) = name.strip_suffix(".json") else {
                continue;
            };
            let entry = std::fs::read_to_string(f.path())
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            out.push(Cached {
                path: f.path(),
                stage: stage.clone(),
                digest: digest.to_string(),
                entry,
            });
        }
    }
    out
}

/// Every entry of the areas, as workspace-relative names.
pub fn all_units(ws: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    for (area, n) in AREAS {
        let mut level = vec![(area.to_string(), ws.root().join(area))];
        for _ in 1..*n {
            let mut next = Vec::new();
            for (rel, p) in level {
                for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        next.push((
                            format!("{rel}/{}", e.file_name().to_string_lossy()),
                            e.path(),
                        ));
                    }
                }
            }
            level = next;
        }
        out.extend(level.into_iter().map(|(rel, _)| rel));
    }
    out.sort();
    out
}

/// Removes `p` (a file or a tree): renamed into `tmp/` first, so that it disappears whole (a
/// repository half removed would be taken for a published one); what a crash leaves there is
/// `Workspace::collect_stale`'s.
pub fn remove(ws: &Workspace, p: &Path) -> std::io::Result<()> {
    let aside = ws
        .root()
        .join("tmp")
        .join(format!(".gc-{}", uuid::Uuid::new_v4()));
    std::fs::rename(p, &aside)?;
    if std::fs::symlink_metadata(&aside)?.is_dir() {
        std::fs::remove_dir_all(&aside)
    } else {
        std::fs::remove_file(&aside)
    }
}

/// Removes the empty `objects/<aa>/` directories left.
pub fn remove_empty_fans(ws: &Workspace) {
    for e in std::fs::read_dir(ws.root().join("objects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(e.path());
    }
}

/// The image records (`state/image/made/<sha256>.json`, what `fci smoke` checks an image
/// against) of images no longer in `objects/`.
pub fn orphan_image_records(ws: &Workspace) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(ws.state("image/made"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(sha) = name.strip_suffix(".json") else {
            continue;
        };
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if !ws.root().join("objects").join(&sha[..2]).join(sha).exists() {
            out.push(e.path());
        }
    }
    out
}
