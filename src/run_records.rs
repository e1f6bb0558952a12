//! The stage records fci itself wrote for a run. A manifest is the user's file: an edited
//! one could turn a FAILED test into PASSED, and a verdict is what `report --promote` acts on.
//! So every record the stage driver finishes (run, reused from the cache, instant, skipped)
//! is also kept in the workspace's state, under `state/records/<run>/<stage>/`, with the
//! digests of the artifacts it left in the manifest; `report --promote` takes a manifest only
//! when each of its records is one of these, unchanged, and each stage's artifacts are those
//! its last record left (`check`).

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Manifest, StageRecord};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A run id as a directory name: itself when it is one plainly, else its digest.
fn run_dir(ws: &Workspace, run: &str) -> PathBuf {
    let plain = !run.is_empty()
        && run.len() <= 128
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let name = if plain {
        run.to_string()
    } else {
        format!("sha256-{}", crate::digest::sha256_bytes(run.as_bytes()))
    };
    ws.root().join("state/records").join(name)
}

fn stage_dir(ws: &Workspace, run: &str, stage: &str) -> Option<PathBuf> {
    let plain = !stage.is_empty()
        && stage
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_');
    plain.then(|| run_dir(ws, run).join(stage))
}

/// What the manifest holds of `stage`'s products: kind, name and sha256 of each artifact but
/// its logs (which stay when a stage is rerun).
fn products(manifest: &Manifest, stage: &str) -> Value {
    let mut v: Vec<Value> = manifest
        .artifacts
        .iter()
        .filter(|a| a.stage == stage && a.kind != ArtifactKind::Log)
        .map(product)
        .collect();
    v.sort_by_key(Value::to_string);
    Value::Array(v)
}

fn product(a: &Artifact) -> Value {
    json!({"type": a.kind, "name": a.name, "sha256": a.sha256})
}

/// `v` as text with every object's keys sorted.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        v => v.to_string(),
    }
}

/// A record's digest.
fn key(record: &StageRecord) -> Result<String> {
    let v = serde_json::to_value(record)?;
    Ok(crate::digest::sha256_bytes(canonical(&v).as_bytes()))
}

/// The digests of the records before the `i`th: what it was written after.
fn before(manifest: &Manifest, i: usize) -> Result<Value> {
    manifest.stages[..i]
        .iter()
        .map(|r| key(r).map(Value::String))
        .collect::<Result<Vec<_>>>()
        .map(Value::Array)
}

/// Keeps the manifest's last record, just added by fci, as this run's: with the artifacts it
/// left and the records it was written after.
pub fn keep(ws: &Workspace, manifest: &Manifest) -> Result<()> {
    let Some(record) = manifest.stages.last() else {
        return Ok(());
    };
    let Some(dir) = stage_dir(ws, &manifest.run.id, &record.name) else {
        return Ok(());
    };
    let rec = serde_json::to_value(record)?;
    let after = before(manifest, manifest.stages.len() - 1)?;
    let entry =
        json!({"record": rec, "after": after, "artifacts": products(manifest, &record.name)});
    let text = serde_json::to_string_pretty(&entry)?;
    let key = crate::digest::sha256_bytes(canonical(&entry).as_bytes());
    std::fs::create_dir_all(&dir)?;
    crate::workspace::write_atomic(&dir.join(format!("{}.json", &key[..32])), text.as_bytes())
}

fn kept(dir: &Path) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .collect()
}

/// What differs between a manifest's record and the nearest one fci wrote.
fn difference(got: &Value, want: &Value) -> String {
    let brief = |v: &Value| {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Null => "nothing".into(),
            v => v.to_string(),
        };
        let t: String = s
            .chars()
            .take(80)
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        if s.chars().count() > 80 {
            format!("{t}…")
        } else {
            t
        }
    };
    if got["outcome"] != want["outcome"] {
        return format!(
            "its outcome is {}, but fci recorded {}",
            brief(&got["outcome"]),
            brief(&want["outcome"])
        );
    }
    let verdicts = |v: &Value| -> Vec<(Value, Value)> {
        v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["testcase"].clone(), r["outcome"].clone()))
            .collect()
    };
    let (g, w) = (verdicts(got), verdicts(want));
    if g != w {
        if let Some(((t, o), (_, wo))) = g.iter().zip(&w).find(|(a, b)| a != b) {
            return format!(
                "its result {} is {}, but fci recorded {}",
                brief(t),
                brief(o),
                brief(wo)
            );
        }
        return format!("it has {} results, but fci recorded {}", g.len(), w.len());
    }
    let keys = got
        .as_object()
        .into_iter()
        .chain(want.as_object())
        .flat_map(|m| m.keys());
    for k in keys {
        if got.get(k) != want.get(k) {
            return format!("its `{}` differs from what fci recorded", k.escape_debug());
        }
    }
    "it differs from what fci recorded".into()
}

fn bad(manifest: &Manifest, origin: &Path, stage: &str, what: String) -> FciError {
    FciError::input(
        origin,
        format!(
            "stage `{}`: {what}: not the record fci wrote for run {} (edited manifest?)",
            stage.escape_debug(),
            manifest.run.id.escape_debug()
        ),
    )
}

/// Every record of `manifest` is one fci wrote for its run, unchanged, and each stage's
/// artifacts are the ones its last record left; else bad input naming the stage and what
/// differs.
pub fn check(ws: &Workspace, manifest: &Manifest, origin: &Path) -> Result<(), FciError> {
    if let Some(a) = manifest
        .artifacts
        .iter()
        .find(|a| a.kind != ArtifactKind::Log && !manifest.stages.iter().any(|s| s.name == a.stage))
    {
        return Err(bad(
            manifest,
            origin,
            &a.stage,
            format!(
                "artifact {} names a stage the manifest has no record of",
                a.name.escape_debug()
            ),
        ));
    }
    for i in 0..manifest.stages.len() {
        check_record(ws, manifest, i, origin)?;
    }
    Ok(())
}

/// The manifest's `i`th record is one fci wrote for its run, unchanged, after the records
/// before it (so they are fci's too, unchanged); the last of its stage with the artifacts it
/// left. Else bad input naming the stage and what differs.
pub fn check_record(
    ws: &Workspace,
    manifest: &Manifest,
    i: usize,
    origin: &Path,
) -> Result<(), FciError> {
    let record = &manifest.stages[i];
    let name = record.name.as_str();
    let bad = |what: String| bad(manifest, origin, name, what);
    let got = serde_json::to_value(record).map_err(|e| bad(e.to_string()))?;
    let stored = stage_dir(ws, &manifest.run.id, name)
        .map(|d| kept(&d))
        .unwrap_or_default();
    let after = before(manifest, i).map_err(|e| bad(e.to_string()))?;
    let same: Vec<&Value> = stored.iter().filter(|e| e["record"] == got).collect();
    if !same.is_empty() && !same.iter().any(|e| e["after"] == after) {
        return Err(bad(
            "the records before it are not those fci wrote it after (one removed, added or edited?)"
                .into(),
        ));
    }
    let Some(entry) = same.iter().find(|e| e["after"] == after) else {
        // The nearest: the same start, else any of the stage's.
        let near = stored
            .iter()
            .find(|e| e["record"]["started"] == got["started"])
            .or(stored.first());
        let what = match near {
            Some(e) => difference(&got, &e["record"]),
            None => "fci wrote no record of this stage for this run".into(),
        };
        return Err(bad(what));
    };
    let last = !manifest.stages[i + 1..].iter().any(|s| s.name == name);
    if last && entry["artifacts"] != products(manifest, name) {
        return Err(bad(
            "its artifacts (or their sha256) are not those it left".into()
        ));
    }
    Ok(())
}

/// A record's digest (of every field: two records with the same digest say the same).
pub fn digest(record: &StageRecord) -> Result<String> {
    key(record)
}
