//! `cache/`: each stage's entries (`cache/<stage>/<input digest>.json`) parse and the
//! artifacts they name verify; the host's facts (`cache/host.json`) parse.

use super::{debris::removable, entries, manifests, Findings};
use crate::manifest::StageName;
use crate::workspace::{CacheEntry, Workspace};
use anyhow::Result;
use std::path::Path;

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    for p in entries(&ws.cache(""))? {
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if p.is_dir() && StageName::parse(&n).is_some() {
            for e in entries(&p)? {
                if e.extension().is_some_and(|x| x == "json") {
                    entry(ws, &e, f);
                }
            }
        } else if p.is_file() && n.ends_with(".json") {
            json_parses(&p, f);
        }
    }
    Ok(())
}

/// A JSON file fci wrote (always whole, by rename): one that does not parse is damage.
pub fn json_parses(p: &Path, f: &mut Findings) -> Option<serde_json::Value> {
    match std::fs::read(p) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                f.damage(p, format!("does not parse as JSON: {e}"));
                None
            }
        },
        Err(e) => {
            f.damage(p, format!("cannot read: {e}"));
            None
        }
    }
}

fn entry(ws: &Workspace, p: &Path, f: &mut Findings) {
    let Some(v) = json_parses(p, f) else {
        return;
    };
    let entry: CacheEntry = match serde_json::from_value(v) {
        Ok(e) => e,
        Err(e) => {
            f.damage(p, format!("not a cache entry: {e}"));
            return;
        }
    };
    for a in &entry.artifacts {
        if !manifests::present(ws, a) {
            // The cache misses such an entry (`Workspace::cache_get`) and runs the stage
            // again: what `fci gc` pruned, not damage.
            removable(
                f,
                p,
                &format!(
                    "stale cache entry: its artifact {} is gone (the cache misses it)",
                    a.path
                ),
            );
            return;
        }
        if let Err(why) = manifests::verify(ws, a, p) {
            f.damage(p, why);
        }
    }
}
