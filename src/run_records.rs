//! The stage records fci itself wrote for a run. A manifest is the user's file: an edited
//! one could turn a FAILED test into PASSED, and a verdict is what `report --promote` acts on.
//! So every record the stage driver finishes (run, reused from the cache, instant, skipped)
//! is also kept in the workspace's state, under `state/records/<run>/<stage>/`, with the
//! digests of the artifacts it left in the manifest; `report --promote` takes a manifest only
//! when each of its records is one of these, unchanged, and each stage's artifacts are those
//! its last record left (`check`), its subject is the one fci recorded with its last record,
//! and no record fci wrote after its last one is missing from it (`complete`). `fci report`
//! without `--promote` checks the same (but `complete`) for every run that has records here.

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Manifest, StageRecord};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A run id as a directory name: itself when it is one plainly, else its digest (`fci gc`
/// matches candidate refs and queued runs to record directories by it).
pub(crate) fn run_dir(ws: &Workspace, run: &str) -> PathBuf {
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
    // In the pipeline state: a run may start on one machine (the watch) and go on on another.
    ws.pipeline("records").join(name)
}

fn stage_dir(ws: &Workspace, run: &str, stage: &str) -> Option<PathBuf> {
    let plain = !stage.is_empty()
        && stage
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_');
    plain.then(|| run_dir(ws, run).join(stage))
}

/// What the manifest holds of `stage`'s products: each artifact but its logs (which stay
/// when a stage is rerun), whole: every field may be read later (an RPM's `nevra` names the
/// package a report speaks for).
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
    bound(serde_json::to_value(a).unwrap_or(Value::Null))
}

/// What of a record, an artifact or a subject is bound to the run: all of it but the fields
/// named `x-*`, at any depth, which are a scheduler's (a node name, a signature flag): the
/// manifest keeps them, and fci never reads them.
fn bound(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.starts_with("x-"))
                .map(|(k, v)| (k, bound(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(bound).collect()),
        v => v,
    }
}

/// `serde_json::to_value`, bound (see `bound`).
fn bound_value<T: serde::Serialize>(t: &T) -> serde_json::Result<Value> {
    serde_json::to_value(t).map(bound)
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
    let v = bound_value(record)?;
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
/// left, the records it was written after and the subject as it stood then (what the run is
/// about: package, branch, dist-git commit, base).
pub fn keep(ws: &Workspace, manifest: &Manifest) -> Result<()> {
    let Some(record) = manifest.stages.last() else {
        return Ok(());
    };
    if reproduced_here(ws, &manifest.run.id) {
        // A reproduction is not the pipeline's run: its records stay out of the state.
        return Ok(());
    }
    let Some(dir) = stage_dir(ws, &manifest.run.id, &record.name) else {
        return Ok(());
    };
    let rec = bound_value(record)?;
    let after = before(manifest, manifest.stages.len() - 1)?;
    // When fci kept it, which orders the run's records (`failed_stages`): a record reused
    // from the cache carries the time the other run finished it.
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let entry = json!({"record": rec, "after": after, "artifacts": products(manifest, &record.name),
                       "subject": bound_value(&manifest.subject)?, "kept_ns": at,
                       "config": bound_value(&manifest.run.config)?});
    let text = serde_json::to_string_pretty(&entry)?;
    let key = crate::digest::sha256_bytes(canonical(&entry).as_bytes());
    let run = run_dir(ws, &manifest.run.id);
    if !run.exists() && manifest.stages.len() > 1 {
        // The run began elsewhere (another workspace): its earlier records were never kept
        // here, so it goes on unbound, and is never promoted here (`has_records`).
        std::fs::create_dir_all(&run)?;
        crate::files::write_atomic(&run.join(UNBOUND), b"")?;
    }
    std::fs::create_dir_all(&dir)?;
    crate::files::write_atomic(&dir.join(format!("{}.json", &key[..32])), text.as_bytes())
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
    if manifest.stages.is_empty() {
        return Err(FciError::input(
            origin,
            format!(
                "no stage record: nothing fci wrote for run {} (edited manifest? a new change needs a new run id)",
                manifest.run.id.escape_debug()
            ),
        ));
    }
    // Each stage's records read once, for all its records in the manifest and the subject.
    let mut stored: std::collections::HashMap<&str, Vec<Value>> = Default::default();
    for s in &manifest.stages {
        stored.entry(s.name.as_str()).or_insert_with(|| {
            stage_dir(ws, &manifest.run.id, &s.name)
                .map(|d| kept(&d))
                .unwrap_or_default()
        });
    }
    let of = |name: &str| stored.get(name).map(Vec::as_slice).unwrap_or_default();
    for i in 0..manifest.stages.len() {
        check_record_in(manifest, i, origin, of(&manifest.stages[i].name))?;
    }
    let last = manifest.stages.last().map_or("", |s| s.name.as_str());
    check_subject(manifest, origin, of(last))
}

/// For a stage about to run on `manifest`: a run fci keeps records of here is continued only
/// from a manifest made of those records (`check`: each record unchanged, each stage's
/// artifacts and the subject as fci left them). A stage's record is kept as the run's, and
/// what the run's records say decides its promotion: an edited manifest (a swapped RPM, an
/// edited branch, a forged manifest with no record naming a victim's run) would put records
/// fci never vetted among them. A run fci has no records of (a new one, or one begun in
/// another workspace) is left to the checks each stage makes of its inputs.
pub fn continues(ws: &Workspace, manifest: &Manifest, origin: &Path) -> Result<(), FciError> {
    if !has_records(ws, &manifest.run.id) {
        return Ok(());
    }
    check(ws, manifest, origin)
}

/// The subject is bound by the run's last record: as fci recorded it then (an edited
/// package, commit or branch would exclude or promote another package's change). The records
/// are fci's (`check_record`).
/// `stored`: the records fci kept of the manifest's last stage.
fn check_subject(manifest: &Manifest, origin: &Path, stored: &[Value]) -> Result<(), FciError> {
    let Some(i) = manifest.stages.len().checked_sub(1) else {
        return Ok(());
    };
    let name = manifest.stages[i].name.as_str();
    let bad = |what: String| bad(manifest, origin, name, what);
    let got = bound_value(&manifest.stages[i]).map_err(|e| bad(e.to_string()))?;
    let after = before(manifest, i).map_err(|e| bad(e.to_string()))?;
    let matching: Vec<&Value> = stored
        .iter()
        .filter(|e| e["record"] == got && e["after"] == after)
        .collect();
    let subject = bound_value(&manifest.subject).map_err(|e| bad(e.to_string()))?;
    // The pipeline's fci.yaml the run was begun with (its limits on package code among
    // others): another one named, or none, would loosen them for the rest of the run.
    let config = bound_value(&manifest.run.config).map_err(|e| bad(e.to_string()))?;
    let same_config = |e: &&&Value| e.get("config").unwrap_or(&Value::Null) == &config;
    if matching
        .iter()
        .any(|e| e["subject"] == subject && same_config(&e))
    {
        return Ok(());
    }
    if matching.iter().any(|e| e["subject"] == subject) {
        return Err(bad(
            "the manifest's `run.config` is not the fci.yaml fci recorded for the run".into(),
        ));
    }
    let recorded = matching.first().map_or(&Value::Null, |e| &e["subject"]);
    let what = if recorded.is_null() {
        "fci kept no subject with this record (an older fci wrote it): rerun the stage".to_string()
    } else {
        let field =
            first_difference(&subject, recorded, "subject").unwrap_or_else(|| "subject".into());
        format!(
            "the manifest's `{}` is not the one fci recorded for the run",
            field.escape_debug()
        )
    };
    Err(bad(what))
}

/// The path of the first field (in key order, depth first) where `got` and `want` differ.
fn first_difference(got: &Value, want: &Value, path: &str) -> Option<String> {
    if got == want {
        return None;
    }
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        return Some(path.to_string());
    };
    let mut keys: Vec<&String> = g.keys().chain(w.keys()).collect();
    keys.sort();
    keys.dedup();
    let null = Value::Null;
    keys.into_iter().find_map(|k| {
        first_difference(
            g.get(k).unwrap_or(&null),
            w.get(k).unwrap_or(&null),
            &format!("{path}.{k}"),
        )
    })
}

/// Whether a record file `keep` wrote is whole and unchanged: `keep` names it by the digest
/// of its content, so `fci fsck` can tell a damaged one without knowing the run.
pub fn is_whole(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("does not parse: {e}"))?;
    let key = crate::digest::sha256_bytes(canonical(&v).as_bytes());
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    if key[..32] != *name {
        return Err(format!(
            "its content is not what fci kept (its digest begins {}, not its name)",
            &key[..32]
        ));
    }
    Ok(())
}

/// Whether the workspace keeps records of run `run` (fci ran a stage of it here).
pub fn has_records(ws: &Workspace, run: &str) -> bool {
    let dir = run_dir(ws, run);
    dir.is_dir() && !dir.join(UNBOUND).exists() && !reproduced_here(ws, run)
}

/// Where this workspace marks a run `fci unbundle` brought in: in the workspace's own state,
/// never the pipeline's (which may hold the CI run's records: on a worker sharing the state,
/// a reproduction must neither add records to that run nor be checked against them).
fn reproduction_mark(ws: &Workspace, run: &str) -> PathBuf {
    let name = run_dir(ws, run)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ws.state("reproduced").join(name)
}

/// Marks `run` as one `fci unbundle` brought into this workspace: its stages here go on
/// unbound, keep no records in the pipeline state, and it is never promoted here.
pub fn mark_reproduced(ws: &Workspace, run: &str) -> Result<()> {
    let at = reproduction_mark(ws, run);
    std::fs::create_dir_all(at.parent().expect("a mark has a directory"))?;
    crate::files::write_atomic(&at, b"")
}

/// Whether `fci unbundle` brought run `run` into this workspace.
pub fn reproduced_here(ws: &Workspace, run: &str) -> bool {
    reproduction_mark(ws, run).exists()
}

/// In a run's records directory: the run began in another workspace (see `keep`).
const UNBOUND: &str = "unbound";

/// The stages of run `run` that stand against it in the records fci kept (in any of the run's
/// manifests: a branch of the pipeline that skipped the stage, or a sibling it was run on),
/// with `FAILED` or `ERROR`: in the order of what they observed (`in_order`), a FAILED (or
/// NEEDS_INSPECTION) record is cleared only by a later PASSED or INFO one of the same suite
/// (`data.suite` of test, integrate, build, smoke and conform; any, for a record naming
/// none), never by a SKIPPED
/// (an image not due) or an ERROR (a retry that broke); an ERROR with no later pass stands as
/// ERROR. Only the records written after the manifest's own build count (the build's own
/// records all do). Reports left out.
pub fn failed_stages(ws: &Workspace, manifest: &Manifest) -> Vec<(String, String)> {
    let run = manifest.run.id.as_str();
    let Ok(rd) = std::fs::read_dir(run_dir(ws, run)) else {
        return Vec::new();
    };
    // Only what was observed on the manifest's own packages counts: a pass on a rebuild's
    // other packages says nothing of these, and a failure of those nothing either. A record
    // observed the packages of the last build record it was written after; a rebuild that
    // made the same packages (a reused result) observed the same.
    let packages_of = |products: &Value| -> Vec<String> {
        let mut v: Vec<String> = products
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| matches!(a["type"].as_str(), Some("rpm" | "srpm")))
            .filter_map(|a| a["sha256"].as_str().map(String::from))
            .collect();
        v.sort();
        v
    };
    let want = packages_of(&products(manifest, "build"));
    let builds: HashMap<String, Vec<String>> = stage_dir(ws, run, "build")
        .map(|d| kept(&d))
        .unwrap_or_default()
        .iter()
        .map(|e| (entry_key(e), packages_of(&e["artifacts"])))
        .collect();
    let on_build = |e: &Value| -> bool {
        if want.is_empty() {
            return true;
        }
        e["after"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .rev()
                    .filter_map(Value::as_str)
                    .find_map(|k| builds.get(k))
            })
            .is_some_and(|p| *p == want)
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let stage = e.file_name().to_string_lossy().into_owned();
        if stage == "report" {
            continue;
        }
        let entries = in_order(kept(&e.path()));
        let records: Vec<&Value> = entries
            .iter()
            .filter(|e| stage == "build" || on_build(e))
            .map(|e| &e["record"])
            .collect();
        if let Some(outcome) = standing(&records) {
            out.push((stage, outcome.to_string()));
        }
    }
    out.sort();
    out
}

/// A stage's kept records in the order of what they observed: by when the work finished (a
/// record reused from the cache is the observation it copies, never a newer one: a cached pass
/// does not clear a failure seen since), then by when fci kept them. Every record kept was
/// written by fci for a manifest it checked (`continues`), so its times are fci's.
fn in_order(mut entries: Vec<Value>) -> Vec<Value> {
    entries.sort_by(|a, b| {
        let at = |e: &Value| {
            (
                e["record"]["finished"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["kept_ns"].as_u64().unwrap_or(0),
            )
        };
        at(a).cmp(&at(b))
    });
    entries
}

/// Whether `record` is the latest that fci kept for the run of its suite (`data.suite`) —
/// what `fci test --failed-only` may rerun from: an older one would carry passes that a newer
/// failure of the same suite contradicts. True for a run this workspace keeps no records of.
pub fn latest_of_its_suite(ws: &Workspace, run: &str, record: &StageRecord) -> bool {
    if !has_records(ws, run) {
        return true;
    }
    let Ok(mine) = bound_value(record) else {
        return false;
    };
    let entries = stage_dir(ws, run, &record.name)
        .map(|d| in_order(kept(&d)))
        .unwrap_or_default();
    entries
        .iter()
        .rev()
        .find(|e| e["record"]["data"]["suite"] == mine["data"]["suite"])
        .is_some_and(|e| e["record"] == mine)
}

/// What stands against a stage from its records, in the order of what they observed: `FAILED`,
/// `ERROR` or nothing. Per suite (what the stage verified, `data.suite`), as
/// Greenwave takes each test case's latest result: a pass of other tests, or of fewer, leaves
/// a suite's failure standing. A record that names no suite (the stage broke before it knew
/// its tests; the other stages) is cleared by any later pass.
fn standing(records: &[&Value]) -> Option<&'static str> {
    let mut against: Vec<(&Value, &'static str)> = Vec::new();
    for r in records {
        let suite = &r["data"]["suite"];
        match r["outcome"].as_str().unwrap_or_default() {
            "PASSED" | "INFO" => against.retain(|(s, _)| !(s.is_null() || *s == suite)),
            outcome @ ("FAILED" | "NEEDS_INSPECTION" | "ERROR") => {
                let failed = outcome != "ERROR";
                match against.iter_mut().find(|(s, _)| *s == suite) {
                    // An ERROR (a retry that broke) never hides a failure.
                    Some((_, was)) if failed => *was = "FAILED",
                    Some(_) => {}
                    None => against.push((suite, if failed { "FAILED" } else { "ERROR" })),
                }
            }
            _ => {}
        }
    }
    against
        .iter()
        .map(|(_, o)| *o)
        .min_by_key(|o| *o != "FAILED")
}

/// No record fci wrote for the run after the manifest's records (the stages that came next)
/// is missing from it: a manifest cut short (its failing integration dropped from the end)
/// is bad input naming the stage it lacks. Reports are not stages of the change: a report
/// taken in the middle of a pipeline does not count.
pub fn complete(ws: &Workspace, manifest: &Manifest, origin: &Path) -> Result<(), FciError> {
    let mine = before(manifest, manifest.stages.len())
        .map_err(|e| FciError::input(origin, e.to_string()))?;
    let mine = mine.as_array().map(Vec::as_slice).unwrap_or_default();
    let Ok(rd) = std::fs::read_dir(run_dir(ws, &manifest.run.id)) else {
        return Ok(());
    };
    let mut stages: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "report")
        .collect();
    stages.sort();
    for stage in stages {
        let Some(dir) = stage_dir(ws, &manifest.run.id, &stage) else {
            continue;
        };
        let later = kept(&dir).into_iter().any(|e| {
            e["after"]
                .as_array()
                .is_some_and(|a| a.len() >= mine.len() && a[..mine.len()] == *mine)
        });
        if later {
            return Err(FciError::input(
                origin,
                format!(
                    "stage `{}`: fci recorded it for run {} after the manifest's last record, but the manifest does not have it (records dropped from its end?)",
                    stage.escape_debug(),
                    manifest.run.id.escape_debug()
                ),
            ));
        }
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
    let stored = stage_dir(ws, &manifest.run.id, &manifest.stages[i].name)
        .map(|d| kept(&d))
        .unwrap_or_default();
    check_record_in(manifest, i, origin, &stored)
}

/// `check_record` against the stage's records fci kept (`stored`).
fn check_record_in(
    manifest: &Manifest,
    i: usize,
    origin: &Path,
    stored: &[Value],
) -> Result<(), FciError> {
    let record = &manifest.stages[i];
    let name = record.name.as_str();
    let bad = |what: String| bad(manifest, origin, name, what);
    let got = bound_value(record).map_err(|e| bad(e.to_string()))?;
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

/// The digest of a kept entry's record, as `key` gives it for the record itself.
fn entry_key(e: &Value) -> String {
    crate::digest::sha256_bytes(canonical(&e["record"]).as_bytes())
}

/// A record's digest (of every field: two records with the same digest say the same).
pub fn digest(record: &StageRecord) -> Result<String> {
    key(record)
}

#[cfg(test)]
mod tests {
    use super::standing;
    use serde_json::{json, Value};

    fn rec(outcome: &str, suite: Option<&str>) -> Value {
        match suite {
            Some(s) => json!({"outcome": outcome, "data": {"suite": {"tests": s}}}),
            None => json!({"outcome": outcome}),
        }
    }

    fn of(records: &[Value]) -> Option<&'static str> {
        standing(&records.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_pass_reused_from_the_cache_does_not_clear_a_failure_seen_since() {
        let entry = |outcome: &str, finished: &str, kept: u64| json!({"record": {"outcome": outcome, "finished": finished}, "kept_ns": kept});
        let ordered = super::in_order(vec![
            entry("PASSED", "2026-12-06T10:00:00.000Z", 1),
            entry("FAILED", "2026-12-06T11:00:00.000Z", 2),
            // Kept last, but the pass it copies is the one at 10:00.
            entry("PASSED", "2026-12-06T10:00:00.000Z", 3),
        ]);
        let records: Vec<&Value> = ordered.iter().map(|e| &e["record"]).collect();
        assert_eq!(standing(&records), Some("FAILED"));
    }

    #[test]
    fn a_failure_is_cleared_by_a_later_pass_of_its_own_suite_only() {
        let (a, b) = (Some("a"), Some("b"));
        assert_eq!(of(&[rec("FAILED", a), rec("PASSED", b)]), Some("FAILED"));
        assert_eq!(of(&[rec("FAILED", a), rec("INFO", None)]), Some("FAILED"));
        assert_eq!(of(&[rec("FAILED", a), rec("PASSED", a)]), None);
        assert_eq!(of(&[rec("FAILED", a), rec("ERROR", a)]), Some("FAILED"));
        assert_eq!(of(&[rec("FAILED", a), rec("SKIPPED", a)]), Some("FAILED"));
        assert_eq!(of(&[rec("ERROR", a), rec("PASSED", b)]), Some("ERROR"));
        assert_eq!(
            of(&[rec("ERROR", b), rec("FAILED", a), rec("PASSED", b)]),
            Some("FAILED")
        );
        // A record that names no suite broke before it knew its tests: any pass clears it.
        assert_eq!(of(&[rec("ERROR", None), rec("PASSED", a)]), None);
        assert_eq!(of(&[rec("FAILED", None), rec("PASSED", None)]), None);
        assert_eq!(of(&[rec("PASSED", a)]), None);
    }
}
