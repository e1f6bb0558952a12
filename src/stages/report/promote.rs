//! `fci report --promote`: a gating decision acted on. Satisfied: the change becomes the
//! branch's known-good base — its composed commit moves `fci/<branch>/known-good`, only if
//! that ref still points at the base the change was tested on (else it must be retested on
//! the new base, and the report says so), and the known-good package set records its NEVRAs.
//! Not satisfied: the change is recorded as excluded, with the requirements it failed. Both
//! under one lock per branch; the state files are written atomically. Whatever the decision,
//! the composed commit must first be this run's (`bound_commit`, through crate::binding),
//! checked before the report records anything.

use crate::binding::Composed;
use crate::error::FciError;
use crate::manifest::{ArtifactKind, Outcome, StageName};
use crate::ostree;
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::{json, Map, Value};

/// The run's composed commit, if it has one, shown to be this run's (crate::binding) and
/// composed on the subject's branch: anything else is bad input, and nothing is promoted.
pub fn bound_commit(cx: &mut Ctx) -> Result<Option<Composed>> {
    let composed = crate::binding::composed(cx)?;
    if let Some(c) = &composed {
        let branch = cx.manifest.subject.branch.as_deref();
        if branch != Some(c.branch.as_str()) {
            return Err(FciError::input(
                &cx.origin,
                format!(
                    "--promote: ostree-commit {} was composed on branch {}, but the subject's branch is {}",
                    c.commit,
                    c.branch,
                    branch.unwrap_or("(none)")
                ),
            )
            .into());
        }
    }
    Ok(composed)
}

/// Acts on `decision`; `composed` is the run's commit from `bound_commit`.
pub fn apply(
    cx: &mut Ctx,
    rec: &mut RecordParts,
    decision: &Value,
    composed: Option<Composed>,
    require: &[StageName],
) -> Result<()> {
    let branch = cx
        .manifest
        .subject
        .branch
        .clone()
        .ok_or_else(|| FciError::input(&cx.origin, "--promote: the subject names no branch"))?;
    ostree::check_branch(&branch)
        .map_err(|_| FciError::input(&cx.origin, format!("--promote: bad branch `{branch}`")))?;
    let _lock = cx.ws.pipeline_lock(&format!("known-good-{branch}"))?;
    // A promotion of this branch that a kill cut short is completed first: its decision
    // stands, and this one is taken on the state it leaves (a set that agrees with its ref).
    finish_locked(cx.ws, &branch, cx.log())?;
    let package = cx.manifest.subject.package.clone().unwrap_or_default();
    let nevras: Vec<String> = cx
        .manifest
        .artifacts_of(ArtifactKind::Rpm)
        .filter_map(|a| a.nevra.as_ref())
        .map(|n| n.to_string())
        .collect();
    let nvr = cx.manifest.subject_nvr().unwrap_or_default();
    let applied = decision["applicable_policies"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if decision["policies_satisfied"] == Value::Bool(true) && !applied {
        // Greenwave itself would answer 404 here: a context or version that no policy names
        // (a typo) must not promote anything.
        rec.outcome = Outcome::Failed;
        rec.notes.push(
            "not promoted: no policy of the gating.yaml applies to this decision context and product version"
                .into(),
        );
        return Ok(());
    }
    let (failed_stages, broke) = stage_failures(cx);
    if failed_stages.is_empty() {
        // A stage the pipeline runs that left no record was cut short (killed, timed out by
        // the scheduler, never started): the results it did not give would read as failed
        // gating, and the stages after it ran on an older manifest.
        let missing: Vec<&str> = require
            .iter()
            .filter(|n| !cx.manifest.stages.iter().any(|s| s.is(**n)))
            .map(|n| n.as_str())
            .collect();
        if !missing.is_empty() {
            rec.outcome = Outcome::Error;
            rec.notes.push(format!(
                "not promoted, not excluded: no record of {} in this run (cut short: killed, timed out or never started; not the package's failure): rerun the change",
                missing.join(", ")
            ));
            return Ok(());
        }
    }
    if let Some(broke) = broke {
        if failed_stages.is_empty() {
            rec.outcome = Outcome::Error;
            rec.notes.push(format!(
                "not promoted: stage {broke} ended ERROR (the host's, not the change's) and has not passed since: rerun it"
            ));
            return Ok(());
        }
    }
    if decision["policies_satisfied"] != Value::Bool(true) || !failed_stages.is_empty() {
        return exclude(cx, rec, decision, failed_stages, &branch, &package, &nvr);
    }
    if composed.is_none() && has_known_good_ref(cx, &branch)? {
        // The base is the ref: a change that was never composed on it has nothing to move it
        // to, and its NEVRAs in the set would claim what the base does not hold.
        return Err(FciError::input(
            &cx.origin,
            format!(
                "--promote: this run has no composed commit, but {branch} has a known-good OSTree base: compose the change (fci compose) before promoting it"
            ),
        )
        .into());
    }
    let mut promoted = Map::new();
    let mut move_ref = None;
    if let Some(c) = &composed {
        let kg = ostree::known_good_ref(&branch);
        let now = c.repo.rev_parse(&kg, cx.log())?;
        if now.as_deref() == Some(c.commit.as_str()) {
            // Already this change's commit (another run of the same commit was promoted, or
            // this report was cut short after moving it): nothing to move.
            rec.notes
                .push(format!("{kg} already is this change's commit {}", c.commit));
        } else if now.as_deref() != Some(c.base.as_str()) {
            if let Some(run) = in_known_good(cx, &branch, &package)? {
                // Another run of this very commit became the base meanwhile (a report run
                // again, a duplicate emission): nothing to retest, nothing to exclude.
                rec.notes.push(format!(
                    "not promoted by this run: this commit is part of {branch}'s known-good base already (run {run})"
                ));
                return Ok(());
            }
            // Not the packager's failure (ERROR: the pipeline's state moved under the run), and
            // not excluded: queued for `fci watch` to emit again on the new base
            // (crate::stages::watch::retest).
            rec.outcome = Outcome::Error;
            let queued = match (&cx.manifest.subject.repo, &cx.manifest.subject.commit) {
                (Some(repo), Some(commit)) => {
                    crate::stages::watch::retest::enqueue(
                        cx.ws,
                        &branch,
                        crate::stages::watch::retest::Entry {
                            package: package.clone(),
                            repo: repo.clone(),
                            commit: commit.clone(),
                            run: cx.manifest.run.id.clone(),
                            tested_on: c.base.clone(),
                            moved_to: now.clone().unwrap_or_default(),
                        },
                    )?;
                    true
                }
                _ => false,
            };
            rec.notes.push(format!(
                "not promoted: {kg} is {} now, not the base {} this change was tested on; {}",
                now.as_deref().unwrap_or("(none)"),
                c.base,
                if queued {
                    "queued for a retest on the new base: the next fci watch emits it again"
                } else {
                    "retest it on the new base (its subject names no dist-git repository and commit to queue)"
                }
            ));
            rec.data.insert("needs_retest".into(), json!(true));
            rec.data.insert("retest_queued".into(), json!(queued));
            return Ok(());
        } else {
            move_ref = Some(kg.clone());
        }
        promoted.insert("ref".into(), json!(kg));
        promoted.insert("from".into(), json!(c.base));
        promoted.insert("to".into(), json!(c.commit));
    }
    let path = crate::known_good::path(cx.ws, &branch);
    let mut set = crate::known_good::read(&path)?;
    set.insert(
        package.clone(),
        json!({"nvr": nvr, "nevras": nevras, "run": cx.manifest.run.id,
               "dist_git_commit": cx.manifest.subject.commit,
               "commit": promoted.get("to"), "at": crate::now_rfc3339()}),
    );
    let set = Value::Object(set);
    match (move_ref, &composed) {
        (Some(kg), Some(c)) => {
            // The ref and the set are two files, and no rename moves both: the whole
            // promotion is written first as an intent, then applied, then the intent goes. A
            // kill anywhere leaves either nothing done, or the intent, which the next report
            // of the branch (or `fci fsck --repair`) completes: never a ref moved without its
            // set, or the reverse.
            let intent = json!({"ref": kg, "from": c.base, "to": c.commit, "set": set});
            write(&intent_path(cx.ws, &branch), &intent)?;
            finish_locked(cx.ws, &branch, cx.log())?;
        }
        _ => write(&path, &set)?,
    }
    promoted.insert("package".into(), json!(package));
    promoted.insert("nevras".into(), json!(nevras));
    rec.notes
        .push(format!("{nvr} is now part of {branch}'s known-good base"));
    rec.data.insert("promoted".into(), Value::Object(promoted));
    Ok(())
}

/// The stages that failed (the latest record of each, and any the run's other records keep
/// failed) and the first that broke on the host and has not passed since. Apart so that
/// `apply` reads as its steps.
fn stage_failures(cx: &Ctx) -> (Vec<Value>, Option<String>) {
    // Whatever the policy names, a change with a stage that failed is never the base (its
    // integration failed, its image never booted), and one with a stage that broke on the
    // host is not judged: each stage's latest record counts.
    let mut latest: Vec<&crate::manifest::StageRecord> = Vec::new();
    for s in cx
        .manifest
        .stages
        .iter()
        .filter(|s| !s.is(crate::manifest::StageName::Report))
    {
        latest.retain(|l| l.name != s.name);
        latest.push(s);
    }
    let mut failed_stages: Vec<Value> = latest
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Failed | Outcome::NeedsInspection))
        .map(|s| json!({"stage": s.name, "outcome": s.outcome}))
        .collect();
    // Nor may another branch of the run hide one: a stage that failed in the records fci
    // kept for the run (tests run beside a compose of the build's manifest), and not passed
    // since, counts too; one that broke and has not passed since is not judged.
    let mut run_broke: Option<String> = None;
    for (stage, outcome) in crate::run_records::failed_stages(cx.ws, cx.manifest) {
        if outcome == "ERROR" {
            run_broke.get_or_insert(stage);
        } else if !failed_stages.iter().any(|f| f["stage"] == stage.as_str()) {
            failed_stages.push(json!({"stage": stage, "outcome": outcome}));
        }
    }
    let broke = latest
        .iter()
        .find(|s| s.outcome == Outcome::Error)
        .map(|s| s.name.clone())
        .or(run_broke);
    (failed_stages, broke)
}

/// A change not promoted: its run joins the branch's excluded list with what it failed.
/// Apart so that `apply` reads as its steps.
fn exclude(
    cx: &Ctx,
    rec: &mut RecordParts,
    decision: &Value,
    failed_stages: Vec<Value>,
    branch: &str,
    package: &str,
    nvr: &str,
) -> Result<()> {
    let mut failed: Vec<Value> = decision["unsatisfied_requirements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"testcase": r["testcase"], "type": r["type"]}))
        .collect();
    if !failed_stages.is_empty() {
        rec.outcome = Outcome::Failed;
        rec.notes.push(format!(
            "not promoted: {} FAILED (a failed stage never becomes the base, whether or not the gating.yaml names it)",
            failed_stages
                .iter()
                .filter_map(|s| s["stage"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    failed.extend(failed_stages);
    let entry = json!({
        "package": package, "nvr": nvr, "run": cx.manifest.run.id,
        "dist_git_commit": cx.manifest.subject.commit,
        "unsatisfied": failed, "at": crate::now_rfc3339(),
    });
    if let Some(run) = in_known_good(cx, branch, package)? {
        // This commit is the base already (another run of it was promoted): excluding it
        // would list as failed what every later run is built on.
        rec.notes.push(format!(
            "not excluded: this commit is part of {branch}'s known-good base already (run {run})"
        ));
        return Ok(());
    }
    let state_dir = cx.ws.pipeline("");
    let path = state_dir.join("excluded").join(format!("{branch}.json"));
    let mut list = read_list(&path)?;
    // One entry per run, however often it is reported.
    list.retain(|e| e["run"] != entry["run"]);
    list.push(entry);
    write(&path, &Value::Array(list))?;
    rec.data.insert("excluded".into(), json!(true));
    rec.notes.push(format!(
        "{nvr} is excluded from {branch}: later runs build on the known-good base without it"
    ));
    Ok(())
}

/// Whether the pipeline's OSTree repository has `branch`'s known-good ref.
fn has_known_good_ref(cx: &mut Ctx, branch: &str) -> Result<bool> {
    let path = cx.ws.ostree_repo();
    if !path.join("config").is_file() {
        return Ok(false);
    }
    let repo = ostree::Repo::open(&path)?;
    Ok(repo
        .rev_parse(&ostree::known_good_ref(branch), cx.log())?
        .is_some())
}

/// The run that made this change's dist-git commit part of `branch`'s known-good set, if one
/// did.
fn in_known_good(cx: &Ctx, branch: &str, package: &str) -> Result<Option<String>> {
    let Some(commit) = cx.manifest.subject.commit.as_deref() else {
        return Ok(None);
    };
    crate::known_good::run_of(cx.ws, branch, package, commit)
}

/// Ends the name of a promotion's intent (`known-good/.<branch>.promoting`): what `apply` is
/// about to do to the branch's ref and set, until both are done.
pub const INTENT: &str = ".promoting";

fn intent_path(ws: &crate::workspace::Workspace, branch: &str) -> std::path::PathBuf {
    ws.pipeline("known-good").join(format!(".{branch}{INTENT}"))
}

/// The intent of a promotion of `branch` not finished yet, if any.
pub fn read_intent(ws: &crate::workspace::Workspace, branch: &str) -> Option<Value> {
    let text = std::fs::read_to_string(intent_path(ws, branch)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Completes an interrupted promotion of `branch` (`fci fsck --repair`): under the branch's
/// lock, as a report would.
pub fn finish_interrupted(ws: &crate::workspace::Workspace, branch: &str) -> Result<()> {
    ostree::check_branch(branch)?;
    let _lock = ws.pipeline_lock(&format!("known-good-{branch}"))?;
    let scratch = ws.scratch("promote-")?;
    let mut log = crate::exec::Log::create(&scratch.path().join("promote.log"))?;
    finish_locked(ws, branch, &mut log)
}

/// Applies the branch's promotion intent, if there is one: the ref moved to its commit (from
/// the base it was decided on, or already there), the set written, the intent removed. The
/// caller holds the branch's lock.
fn finish_locked(
    ws: &crate::workspace::Workspace,
    branch: &str,
    log: &mut crate::exec::Log,
) -> Result<()> {
    let path = intent_path(ws, branch);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(FciError::Infra(format!("cannot read {}: {e}", path.display())).into())
        }
    };
    // Written by rename: one that does not parse was not written by fci.
    let intent: Value = serde_json::from_str(&text).map_err(|e| {
        FciError::Infra(format!(
            "{}: damaged promotion intent, left as it is: {e}",
            path.display()
        ))
    })?;
    let (Some(kg), Some(from), Some(to)) = (
        intent["ref"].as_str(),
        intent["from"].as_str(),
        intent["to"].as_str(),
    ) else {
        return Err(FciError::Infra(format!(
            "{}: a promotion intent without ref, from and to",
            path.display()
        ))
        .into());
    };
    let repo = ostree::Repo::open(&ws.ostree_repo())?;
    let now = repo.rev_parse(kg, log)?;
    if now.as_deref() == Some(from) {
        repo.set_ref(kg, to, log)?;
    } else if now.as_deref() != Some(to) {
        // Only a promotion moves the ref, under this lock: something else moved it.
        return Err(FciError::Infra(format!(
            "{kg} is {}, neither end of the interrupted promotion {from} → {to} ({}): left for a person to look at",
            now.as_deref().unwrap_or("(none)"),
            path.display()
        ))
        .into());
    }
    write(&crate::known_good::path(ws, branch), &intent["set"])?;
    std::fs::remove_file(&path)
        .map_err(|e| FciError::Infra(format!("cannot remove {}: {e}", path.display())))?;
    Ok(())
}

/// A state list; a damaged one is an error, never silently replaced.
fn read_list(path: &std::path::Path) -> Result<Vec<Value>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(serde_json::from_str::<Vec<Value>>(&t)
            .map_err(|e| FciError::input(path, format!("damaged state, left as it is: {e}")))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FciError::input(path, format!("cannot read: {e}")).into()),
    }
}

fn write(path: &std::path::Path, v: &Value) -> Result<()> {
    // The workspace's own state: a failure to write it is the host's (a full disk), not the
    // caller's mistake.
    let host = |e: anyhow::Error| FciError::Infra(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(path.parent().expect("a state file has a directory"))
        .map_err(|e| host(e.into()))?;
    crate::files::write_atomic(path, serde_json::to_string_pretty(v)?.as_bytes())
        .map_err(|e| host(e).into())
}
