//! From test cases (with their attempts) to the manifest's results, and the stage's verdict.

use super::runner::Case;
use super::select::Slot;
use crate::manifest::{
    Artifact, ArtifactKind, Attempt, Outcome, StageName, StageRecord, TestResult,
};
use crate::progress;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One test case's result, its logs stored and every attempt recorded when it ran again.
pub fn to_result((case, earlier): Slot, logs: &mut LogStore) -> Result<TestResult> {
    let attempts: Vec<Attempt> = if earlier.is_empty() {
        Vec::new()
    } else {
        earlier
            .iter()
            .chain(std::iter::once(&case))
            .map(|c| -> Result<Attempt> {
                Ok(Attempt {
                    outcome: c.outcome,
                    log: logs.store(c)?,
                    duration_s: c.duration_s,
                })
            })
            .collect::<Result<_>>()?
    };
    // Flaky: failed before, passes now. A run that broke and then completed keeps its own note.
    let flaky =
        case.outcome.is_pass() && !case.whole_run && earlier.iter().any(|c| !c.outcome.is_pass());
    let mut r = TestResult {
        testcase: case.name.clone(),
        outcome: case.outcome,
        runner: Some(case.runner.to_string()),
        scenario: None,
        log: logs.store(&case)?,
        duration_s: case.duration_s,
        note: if flaky {
            Some(format!("flaky: passed on attempt {}", earlier.len() + 1))
        } else {
            case.note.clone()
        },
        attempts,
        extra: Default::default(),
    };
    if case.whole_run {
        r.extra.insert("scope".into(), json!("run"));
    }
    if let Some(g) = &case.group {
        let key = if case.runner == "tmt" {
            "plan"
        } else {
            "playbook"
        };
        r.extra.insert(key.into(), json!(g));
    }
    Ok(r)
}

/// A result of an earlier record as the case it was (its key, outcome and scope).
pub fn case_of(r: &TestResult) -> Case {
    let str_of = |k: &str| r.extra.get(k).and_then(|v| v.as_str()).map(String::from);
    Case {
        runner: if r.runner.as_deref() == Some("tmt") {
            "tmt"
        } else {
            "sti"
        },
        name: r.testcase.clone(),
        group: str_of("plan").or_else(|| str_of("playbook")),
        outcome: r.outcome,
        log: None,
        duration_s: None,
        note: None,
        whole_run: str_of("scope").as_deref() == Some("run"),
        timed_out: false,
    }
}

/// The stage's outcome from its results, with a note when there is nothing to judge by.
pub fn stage_outcome(results: &[TestResult]) -> (Outcome, Option<String>) {
    let counted = results
        .iter()
        .map(|r| r.outcome)
        .filter(|o| *o != Outcome::Skipped);
    let counted: Vec<Outcome> = counted.collect();
    if !counted.is_empty() && counted.iter().all(|o| *o == Outcome::Info) {
        return (Outcome::Info, None);
    }
    match Outcome::aggregate(counted) {
        Some(o) => (o, None),
        None if results.is_empty() => (Outcome::Error, Some("no test case ran".into())),
        // Nothing was verified: not a pass that could promote the change.
        None => (
            Outcome::Skipped,
            Some("every test case was skipped: nothing was verified".into()),
        ),
    }
}

/// Drops a log path that points outside the attempt's directory (test output is untrusted).
pub fn confine_log(mut c: Case, dir: &Path) -> Case {
    let base = dir.canonicalize().ok();
    c.log = c
        .log
        .and_then(|l| l.canonicalize().ok())
        .filter(|l| base.as_ref().is_some_and(|b| l.starts_with(b)) && l.is_file());
    c
}

/// A failed or errored case's note, when its runner gave none, from its own log (confined
/// already, [`confine_log`]): for fci's STI role the command, its exit status and its last
/// line (`sti::explain_failure`), else the last line the test printed, so that every failure
/// names its cause.
pub fn explain(c: Case) -> Case {
    let mut c = if c.runner == "sti" {
        super::sti::explain_failure(c)
    } else {
        c
    };
    let failing = matches!(
        c.outcome,
        Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
    );
    if failing && c.note.is_none() && !c.whole_run {
        c.note = c.log.as_deref().and_then(super::runner::last_said);
    }
    c
}

/// The most of one test log fci keeps.
pub const LOG_LIMIT: u64 = 32 * 1024 * 1024;

/// Test logs stored into the workspace, each source file once: a runner that gives all its
/// cases one log (a whole playbook's output) must not copy and hash it once per case.
pub struct LogStore<'a> {
    ws: &'a Workspace,
    pub artifacts: &'a mut Vec<Artifact>,
    stage: StageName,
    stored: HashMap<PathBuf, String>,
}

impl<'a> LogStore<'a> {
    pub fn new(ws: &'a Workspace, artifacts: &'a mut Vec<Artifact>, stage: StageName) -> Self {
        LogStore {
            ws,
            artifacts,
            stage,
            stored: HashMap::new(),
        }
    }

    fn store(&mut self, c: &Case) -> Result<Option<String>> {
        let Some(p) = &c.log else { return Ok(None) };
        if let Some(path) = self.stored.get(p) {
            return Ok(Some(path.clone()));
        }
        let name = format!("{}.log", c.name.trim_matches('/').replace('/', "-"));
        // Test output is untrusted: a plain copy, cut at a size no honest log reaches.
        let a =
            match self
                .ws
                .store_limited(p, ArtifactKind::Log, &name, self.stage, Some(LOG_LIMIT))
            {
                Ok(a) => a,
                // A log with holes, or past what fci copies out of the scratch, is not kept.
                Err(e) if e.downcast_ref::<crate::volume::Refused>().is_some() => return Ok(None),
                Err(e) => return Err(e),
            };
        let path = a.path.clone();
        if !self.artifacts.iter().any(|b| b.path == a.path) {
            self.artifacts.push(a);
        }
        self.stored.insert(p.clone(), path.clone());
        Ok(Some(path))
    }
}

pub fn summary(record: &StageRecord) {
    // A screenful: the results that did not pass first; the manifest has them all.
    const SHOWN: usize = 200;
    let mut shown: Vec<&crate::manifest::TestResult> = record.results.iter().collect();
    shown.sort_by_key(|r| r.outcome.is_pass());
    let more = shown.len().saturating_sub(SHOWN);
    shown.truncate(SHOWN);
    // Names and notes come from test output: printed as every line is (escaped, indented).
    let mut lines: Vec<String> = shown
        .into_iter()
        .map(|r| {
            let tries = if r.attempts.is_empty() {
                String::new()
            } else {
                format!(" ({} attempts)", r.attempts.len())
            };
            let note = r
                .note
                .as_deref()
                .map(|n| format!(" - {n}"))
                .unwrap_or_default();
            format!(
                "{:<16} {:<5} {}{}{}",
                r.outcome.as_str(),
                r.runner.as_deref().unwrap_or(""),
                r.testcase,
                tries,
                note
            )
        })
        .collect();
    if more > 0 {
        lines.push(format!("... and {more} more results (in the manifest)"));
    }
    progress::note_lines(
        &format!(
            "{} {} in {:.1}s",
            record.name, record.outcome, record.duration_s
        ),
        &lines,
    );
}
