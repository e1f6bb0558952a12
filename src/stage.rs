//! What every stage shares: timing, the stage log, the record, caching and output.

use crate::exec::Log;
use crate::manifest::{Artifact, Manifest, Outcome, StageRecord, TestResult};
use crate::progress;
use crate::workspace::{CacheEntry, Workspace};
use anyhow::Result;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Where the stage reads its input manifest from and writes its output to.
#[derive(Clone, Debug)]
pub struct Io {
    pub manifest: Option<PathBuf>,
    pub output: PathBuf,
}

/// A stage in progress.
pub struct StageRun {
    pub name: &'static str,
    pub started_at: String,
    started: Instant,
    pub scratch: crate::workspace::Scratch,
    pub log: Log,
}

impl StageRun {
    pub fn start(ws: &Workspace, name: &'static str) -> Result<Self> {
        ws.collect_stale();
        let scratch = ws.scratch(&format!("{name}-"))?;
        let log = Log::create(&scratch.path().join(format!("{name}.log")))?;
        Ok(StageRun {
            name,
            started_at: crate::now_rfc3339(),
            started: Instant::now(),
            scratch,
            log,
        })
    }

    /// The stage's private scratch directory (owned, so it can be used beside `&mut self.log`).
    pub fn dir(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    /// Closes the stage: stores its log and returns the record.
    pub fn finish(
        mut self,
        ws: &Workspace,
        mut rec: RecordParts,
    ) -> Result<(StageRecord, Artifact)> {
        self.log.line(&format!("# {} {}", self.name, rec.outcome));
        let log_art = ws.store(
            &self.log.path,
            "log",
            &format!("{}.log", self.name),
            self.name,
        )?;
        rec.notes.dedup();
        let record = StageRecord {
            name: self.name.to_string(),
            outcome: rec.outcome,
            started: self.started_at.clone(),
            finished: crate::now_rfc3339(),
            duration_s: round3(self.started.elapsed().as_secs_f64()),
            backend: rec.backend,
            tools: rec.tools,
            input_digest: rec.input_digest,
            cached: false,
            log: Some(log_art.path.clone()),
            results: rec.results,
            notes: rec.notes,
            data: rec.data,
            extra: Map::new(),
        };
        Ok((record, log_art))
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The parts of a record a stage decides.
pub struct RecordParts {
    pub outcome: Outcome,
    pub backend: Option<String>,
    pub tools: BTreeMap<String, String>,
    pub input_digest: String,
    pub results: Vec<TestResult>,
    pub notes: Vec<String>,
    pub data: Map<String, Value>,
}

impl RecordParts {
    pub fn new(outcome: Outcome, input_digest: String) -> Self {
        RecordParts {
            outcome,
            backend: None,
            tools: BTreeMap::new(),
            input_digest,
            results: Vec::new(),
            notes: Vec::new(),
            data: Map::new(),
        }
    }
}

/// Appends a finished (or reused) stage to the manifest and caches it when it is reusable.
pub fn commit(
    ws: &Workspace,
    manifest: &mut Manifest,
    record: StageRecord,
    artifacts: Vec<Artifact>,
    cache: bool,
) -> Result<()> {
    if cache && matches!(record.outcome, Outcome::Passed | Outcome::Failed) {
        let entry = CacheEntry {
            run_id: manifest.run.id.clone(),
            record: record.clone(),
            artifacts: artifacts.clone(),
        };
        ws.cache_put(&record.name, &record.input_digest, &entry)?;
    }
    attach(manifest, record, artifacts);
    Ok(())
}

fn attach(manifest: &mut Manifest, record: StageRecord, artifacts: Vec<Artifact>) {
    // A rerun stage's products replace its earlier ones (a rebuild's RPMs are what later
    // stages test); logs stay, since earlier records still point at them.
    manifest
        .artifacts
        .retain(|a| a.stage != record.name || a.kind == "log");
    for a in artifacts {
        if !manifest
            .artifacts
            .iter()
            .any(|b| b.path == a.path && b.kind == a.kind && b.stage == a.stage)
        {
            manifest.artifacts.push(a);
        }
    }
    manifest.stages.push(record);
}

/// Reuses a cached run: same record, marked cached, with its artifacts.
pub fn reuse(
    ws: &Workspace,
    manifest: &mut Manifest,
    stage: &str,
    digest: &str,
) -> Option<Outcome> {
    let entry = ws.cache_get(stage, digest)?;
    let mut record = entry.record;
    record.cached = true;
    record
        .data
        .insert("cached_from_run".into(), entry.run_id.into());
    let outcome = record.outcome;
    attach(manifest, record, entry.artifacts);
    progress::note(&format!(
        "{stage}: inputs unchanged, reusing the recorded result ({outcome}); --no-cache reruns"
    ));
    Some(outcome)
}

/// A record of a stage that did no work (skipped, or broke before it could), with the reason.
pub fn instant_record(stage: &str, outcome: Outcome, note: String) -> StageRecord {
    let now = crate::now_rfc3339();
    StageRecord {
        name: stage.to_string(),
        outcome,
        started: now.clone(),
        finished: now,
        duration_s: 0.0,
        backend: None,
        tools: BTreeMap::new(),
        input_digest: String::new(),
        cached: false,
        log: None,
        results: Vec::new(),
        notes: vec![note],
        data: Map::new(),
        extra: Map::new(),
    }
}

/// Records a SKIPPED stage when an earlier stage did not pass; returns its exit code.
pub fn skip_if_blocked(manifest: &mut Manifest, stage: &str) -> Option<i32> {
    let blocker = manifest.blocking_stage(stage)?;
    let (bname, boutcome) = (blocker.name.clone(), blocker.outcome);
    let note = format!("skipped: stage `{bname}` is {boutcome}");
    manifest
        .stages
        .push(instant_record(stage, Outcome::Skipped, note));
    progress::note(&format!("{stage} SKIPPED: stage `{bname}` is {boutcome}"));
    // The pipeline's status stays that of the stage that stopped it.
    Some(boutcome.exit_code())
}

/// Ends a stage: an infrastructure failure (exit 3) after the manifest was read still yields
/// a manifest, with an ERROR record saying what broke, so the pipeline sees it; bad input
/// (exit 2) yields none.
pub fn error_record(
    result: Result<i32>,
    manifest: &mut Manifest,
    stage: &str,
    output: &std::path::Path,
) -> Result<i32> {
    let err = match result {
        Ok(code) => return Ok(code),
        Err(e) if crate::error::exit_code_of(&e) != crate::error::exit::INFRA => return Err(e),
        Err(e) => e,
    };
    let msg = crate::exec::redact(&crate::error::one_line(&err));
    eprintln!("fci: error: {msg}");
    manifest
        .stages
        .push(instant_record(stage, Outcome::Error, msg));
    manifest.write(output)?;
    Ok(crate::error::exit::INFRA)
}

/// Digest of a stage's inputs, as canonical JSON.
pub fn input_digest(v: &Value) -> String {
    format!(
        "sha256:{}",
        crate::digest::sha256_bytes(v.to_string().as_bytes())
    )
}
