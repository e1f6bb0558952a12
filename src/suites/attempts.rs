//! Running a stage's test suites: the first attempt, reruns of what failed (`--retries`), the
//! runs' own reports kept, results recorded. Shared by `fci test` and `fci integrate`.

use super::results;
use super::runner::{Cases, Unlisted};
use super::select::{self, Filter, Key, Selection, Slot};
use super::suite::{RunCtx, Suite};
use crate::manifest::{Artifact, ArtifactKind, Outcome, StageName, TestResult};
use crate::progress::Spinner;
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::json;
use std::collections::HashSet;

/// Room on an attempt's file system for what fci writes there besides the tree (its home,
/// the inventory, the run's own files): never package code's scratch.
const ROOM: u64 = 1024 * 1024;

/// The most runs of a stage whose copies of the tree get room besides the scratch limit.
const ROOM_RUNS: u64 = 16;

pub struct Attempts<'a> {
    pub suites: &'a [Box<dyn Suite>],
    pub rcx: &'a RunCtx<'a>,
    /// The stage whose artifacts the runs' reports become.
    pub stage: StageName,
    /// Reruns of each failing case.
    pub retries: u32,
    /// `--failed-only`: what to rerun of an earlier record and what to keep of it.
    pub rerun: Option<Rerun>,
}

/// `--failed-only`: what an earlier test record (fci's own, checked) selects and keeps.
pub struct Rerun {
    /// The cases to run (never empty: with nothing to select, everything runs).
    pub only: Selection,
    /// Its passing results, carried over.
    pub carried: Vec<TestResult>,
    /// Its failing results, all of which `only` selects: a case the rerun does not report
    /// again, and a whole run's error that no suite of this run reruns (`--runner` chose
    /// another), stays as it was.
    pub selected: Vec<TestResult>,
    /// Its passed and skipped cases counted but not listed (it had no failing one unlisted).
    pub unlisted: Unlisted,
}

/// Runs the attempts and fills `rec` (backend, results, outcome, notes, `run_files`,
/// `network`); returns the
/// artifacts (logs and reports).
pub fn run(
    a: Attempts,
    cx: &mut Ctx,
    rec: &mut RecordParts,
    spinner: &Spinner,
) -> Result<Vec<Artifact>> {
    // The runners that ran, and whether the tests had the network.
    rec.backend = Some(
        a.suites
            .iter()
            .map(|s| s.runner())
            .collect::<Vec<_>>()
            .join("+"),
    );
    rec.data.insert("network".into(), json!(a.rcx.env.network));
    let mut artifacts = Vec::new();
    let mut run_files = Vec::new();
    // Cases past the listing caps, over all attempts: counted, and they decide the verdict.
    let mut unlisted = Unlisted::default();
    let package = package_dir(&a, cx)?;
    let mut run_once = |cx: &mut Ctx, attempt: u32, sel: Option<&Selection>| -> Result<Cases> {
        // One attempt lists at most the caps' worth of cases, whatever its suites report.
        let mut out = Cases::default();
        for (i, s) in a.suites.iter().enumerate() {
            let filter = match sel {
                None => Filter::default(),
                Some(sel) => match sel.for_suite(s.runner(), s.group().as_deref()) {
                    None => continue,
                    Some(f) => f,
                },
            };
            let dir = package.join(format!("attempt-{attempt}-{}-{i}", s.runner()));
            std::fs::create_dir(&dir)?;
            let what = s.shown(a.rcx.env.tree);
            let again = if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            spinner.step(&format!("running {what}{again}"));
            let cases = s.run(a.rcx, &filter, &dir, cx.log())?;
            // The run's own reports, for whoever debugs it (kept only if plain files).
            for (label, file) in s.reports(&dir) {
                let name = format!("{}-attempt{attempt}-{label}", s.runner());
                if let Ok(art) = cx.ws.store_limited(
                    &file,
                    ArtifactKind::Log,
                    &name,
                    a.stage,
                    Some(results::LOG_LIMIT),
                ) {
                    run_files.push(json!({"attempt": attempt, "runner": s.runner(), "group": s.group(), "file": label, "path": art.path}));
                    artifacts.push(art);
                }
            }
            out.unlisted.add(cases.unlisted);
            for c in cases.listed {
                out.push(results::explain(results::confine_log(c, &dir)));
            }
        }
        Ok(out)
    };

    // An empty selection would run nothing: never a verdict made of carried passes alone.
    let rerun = a.rerun.filter(|r| !r.only.is_empty());
    let mut cases: Vec<Slot> = Vec::new();
    let scratch = a.rcx.env.limits.scratch;
    let stage = a.stage;
    let first = match run_once(cx, 1, rerun.as_ref().map(|r| &r.only)) {
        Ok(c) => c,
        Err(e) => return filled(e, rec, &package, scratch, stage),
    };
    unlisted.add(first.unlisted);
    cases.extend(first.listed.into_iter().map(|c| (c, Vec::new())));
    for attempt in 2..=a.retries + 1 {
        let sel = Selection::failing(cases.iter().map(|(c, _)| c));
        if sel.is_empty() {
            break;
        }
        let again = match run_once(cx, attempt, Some(&sel)) {
            Ok(c) => c,
            Err(e) => return filled(e, rec, &package, scratch, stage),
        };
        // A rerun lists all it reruns; more than that is never a pass.
        unlisted.add_failing(again.unlisted);
        select::merge(&mut cases, &sel, again.listed, attempt);
    }
    if !run_files.is_empty() {
        rec.data.insert("run_files".into(), json!(run_files));
    }
    mark_cut_short(&cases, rec);
    let mut results = kept_of_rerun(a.suites, rerun, &cases, &mut unlisted);
    let mut logs = results::LogStore::new(cx.ws, &mut artifacts, a.stage);
    for slot in cases {
        results.push(results::to_result(slot, &mut logs)?);
    }
    let (outcome, note) = results::stage_outcome(&results);
    rec.notes.extend(note);
    let outcome = count_unlisted(outcome, &unlisted, rec);
    rec.outcome = outcome;
    rec.results = results;
    Ok(artifacts)
}

/// The file system for all the stage's runs, its sandbox checked in it. Apart so that `run`
/// reads as its steps.
fn package_dir(a: &Attempts, cx: &mut Ctx) -> Result<std::path::PathBuf> {
    // One file system for all the stage's runs (every suite, every attempt, the sandbox
    // check): together they are bounded by the scratch limit, however many playbooks the
    // package brings. Room for fci's copy of the tree per run besides it, for at most
    // `ROOM_RUNS` runs: the copies of more (a package's thousand playbooks) are its scratch.
    let tree_size = crate::limits::dir_usage(&[a.rcx.env.tree.to_path_buf()])
        .map_err(|e| anyhow::anyhow!("cannot measure the tests' tree: {e}"))?;
    let runs = (a.suites.len() as u64 * (u64::from(a.retries) + 1)).min(ROOM_RUNS);
    let room = (tree_size + ROOM).saturating_mul(runs) + ROOM;
    let package = cx.run.bounded_dir("package", &a.rcx.env.limits, room)?;
    let probe = package.join("sandbox-check");
    std::fs::create_dir(&probe)?;
    a.rcx.env.check(cx.log(), &probe)?;
    Ok(package)
}

/// fci's own step (a run's copy of the tree) failing on the file system package code
/// filled is the package's doing, like any other of its runs past the limit: a FAILED
/// outcome, never reused; any other error stays one.
fn filled(
    e: anyhow::Error,
    rec: &mut RecordParts,
    package: &std::path::Path,
    scratch: u64,
    stage: StageName,
) -> Result<Vec<Artifact>> {
    let Some(why) = crate::volume::full(package) else {
        return Err(e);
    };
    rec.outcome = Outcome::Failed;
    rec.cacheable = false;
    let msg = format!(
        "package code went past its limits: {}",
        crate::limits::scratch_full(scratch, &why)
    );
    crate::progress::note(&format!("{} FAILED: {msg}", stage));
    rec.notes.push(msg);
    Ok(Vec::new())
}

/// A run cut short by --timeout or killed past a limit: the record is not reused, and the
/// limits reached are noted. Apart so that `run` reads as its steps.
fn mark_cut_short(cases: &[Slot], rec: &mut RecordParts) {
    if cases.iter().any(|(c, _)| c.timed_out) {
        // A run its last attempt left cut short by --timeout (a slow host may be why): its
        // ERROR, or a FAILED case it reported before, is never reused.
        rec.cacheable = false;
    }
    // A run killed past a limit is the package's failure, but not reused: another run may
    // be given other limits.
    let mut reached: Vec<String> = Vec::new();
    for (c, earlier) in cases {
        for why in std::iter::once(c)
            .chain(earlier)
            .filter_map(|c| c.limit_reached())
        {
            if !reached.iter().any(|r| r == why) {
                reached.push(why.to_string());
            }
        }
    }
    if !reached.is_empty() {
        rec.cacheable = false;
        let msg = format!("package code went past its limits: {}", reached.join("; "));
        crate::progress::note(&msg);
        rec.notes.push(msg);
    }
}

/// With `--failed-only`: the earlier results that stay as they were (selected but not run
/// again, or not rerun at all) and the passes it carries; its unlisted counts join
/// `unlisted`. Apart so that `run` reads as its steps.
fn kept_of_rerun(
    suites: &[Box<dyn Suite>],
    rerun: Option<Rerun>,
    cases: &[Slot],
    unlisted: &mut Unlisted,
) -> Vec<TestResult> {
    let mut results: Vec<TestResult> = Vec::new();
    if let Some(r) = rerun {
        // A selected case the rerun did not report again (a test no longer found, a tmt
        // sub-result, a name tmt cannot select) was not shown to pass: it stays as it was.
        // A whole run's error is answered by its suite running again (whatever it reports);
        // one whose suite is not among this run's (`--failed-only --runner sti` after tmt
        // broke) was not rerun at all: it stays, never dropped into a PASSED.
        let reported: HashSet<Key> = cases.iter().map(|(c, _)| c.key()).collect();
        for mut old in r.selected {
            let c = results::case_of(&old);
            let why = if c.whole_run {
                let rerun = suites
                    .iter()
                    .any(|s| s.runner() == c.runner && (c.group.is_none() || s.group() == c.group));
                (!rerun).then_some("not rerun: no suite of this run runs it")
            } else {
                (!reported.contains(&c.key()))
                    .then_some("selected for a rerun but not reported again")
            };
            if let Some(why) = why {
                old.note = Some(match old.note.take() {
                    Some(n) => format!("{why}; {n}"),
                    None => why.into(),
                });
                results.push(old);
            }
        }
        results.splice(0..0, r.carried);
        unlisted.add(r.unlisted);
    }
    results
}

/// The cases counted but not listed: noted, and an unlisted failure or error joins the
/// verdict. Apart so that `run` reads as its steps.
fn count_unlisted(mut outcome: Outcome, unlisted: &Unlisted, rec: &mut RecordParts) -> Outcome {
    if unlisted.total() > 0 {
        // Only an unlisted failure or error changes the verdict: a pass or skip never turns
        // SKIPPED (nothing verified) or INFO into PASSED.
        if unlisted.any_failing() {
            outcome = Outcome::aggregate(std::iter::once(outcome).chain(unlisted.outcomes()))
                .unwrap_or(outcome);
        }
        rec.data.insert("results_unlisted".into(), unlisted.json());
        let c = unlisted.all;
        let msg = format!(
            "{} passed, {} skipped, {} failed and {} errored cases are counted but not listed as results (a stage lists the first {} passed or skipped and {} failed or errored)",
            c.passed,
            c.skipped,
            c.failed,
            c.errors,
            crate::caps::PASSED_LISTED,
            crate::caps::FAILED_LISTED
        );
        crate::progress::note(&msg);
        rec.notes.push(msg);
    }
    outcome
}
