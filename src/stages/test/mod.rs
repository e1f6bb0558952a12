//! `fci test`: the package's own functional tests (STI and tmt) against the RPMs just built.

pub mod results;
pub mod runner;
pub mod select;
pub mod sti;
pub mod subject;
pub mod tmt;

use crate::error::FciError;
use crate::exec;
use crate::manifest::{Artifact, Manifest, Outcome, TestResult};
use crate::progress::{self, Spinner};
use crate::stage::{self, Io, RecordParts, StageRun};
use crate::workspace::Workspace;
use anyhow::Result;
use runner::{Case, Env};
use select::{Filter, Selection, Slot};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerChoice {
    /// every format the repository has (STI playbooks and tmt plans)
    Auto,
    Sti,
    Tmt,
}

#[derive(Clone, Debug)]
pub struct TestOpts {
    pub io: Io,
    pub workspace: PathBuf,
    pub runner: RunnerChoice,
    pub tags: Vec<String>,
    pub retries: u32,
    pub failed_only: bool,
    pub base_root: Option<PathBuf>,
    pub network: bool,
    pub tests_from: Option<PathBuf>,
    pub force: bool,
    pub timeout: Option<std::time::Duration>,
    pub no_cache: bool,
}

/// A test format found in the tree.
enum Suite {
    Sti(PathBuf),
    Tmt,
}

impl Suite {
    fn tool(&self) -> &'static str {
        match self {
            Suite::Sti(_) => "ansible-playbook",
            Suite::Tmt => "tmt",
        }
    }

    fn runner(&self) -> &'static str {
        match self {
            Suite::Sti(_) => "sti",
            Suite::Tmt => "tmt",
        }
    }

    /// The playbook an STI suite is; tmt's plans are groups inside one suite.
    fn group(&self) -> Option<String> {
        match self {
            Suite::Sti(pb) => Some(pb.to_string_lossy().into_owned()),
            Suite::Tmt => None,
        }
    }
}

pub fn run(opts: &TestOpts) -> Result<i32> {
    let input = opts
        .io
        .manifest
        .clone()
        .unwrap_or_else(|| PathBuf::from("-"));
    let mut manifest = Manifest::read(&input)?;
    let result = test(opts, &input, &mut manifest);
    stage::error_record(result, &mut manifest, "test", &opts.io.output)
}

fn test(opts: &TestOpts, input: &Path, manifest: &mut Manifest) -> Result<i32> {
    let ws = Workspace::open(&opts.workspace)?;
    if !opts.force {
        if let Some(code) = stage::skip_if_blocked(manifest, "test") {
            manifest.write(&opts.io.output)?;
            return Ok(code);
        }
    }
    let rpms: Vec<&Artifact> = manifest.artifacts_of("rpm").collect();
    if rpms.is_empty() {
        // Forced past a build that did not pass: say what stopped it, not "build first".
        let msg = match manifest.last_stage("build") {
            Some(b) if !b.outcome.is_pass() => format!(
                "no `rpm` artifacts to test: the build is {}{} and produced none{}",
                b.outcome,
                b.notes
                    .last()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                if b.results
                    .iter()
                    .any(|r| r.testcase == "build.check" && r.outcome == Outcome::Failed)
                {
                    "; `fci build --nocheck` builds the packages without their unit tests"
                } else {
                    ""
                }
            ),
            _ => "no `rpm` artifacts to test: run `fci build` first".to_string(),
        };
        return Err(FciError::input(input, msg).into());
    }
    // Everything consumed is what the manifest says it is: an edited path or digest is bad
    // input, never a different (or no) test run.
    let rpm_paths: Vec<PathBuf> = rpms
        .iter()
        .map(|a| ws.verify(a, "rpm", input))
        .collect::<Result<_, _>>()?;
    let tree = match &opts.tests_from {
        Some(d) if d.is_dir() => d.canonicalize()?,
        Some(d) => return Err(FciError::input(d, "no such directory").into()),
        None => {
            let a = manifest.artifacts_of("dist-git").last().ok_or_else(|| {
                FciError::input(
                    input,
                    "no `dist-git` artifact: run `fci build` first or pass --tests-from",
                )
            })?;
            ws.verify(a, "dist-git", input)?
        }
    };
    let suites = discover(&tree, opts.runner)?;
    if suites.is_empty() {
        // Most packages have no functional tests: that is a fact to record (INFO, which
        // ResultsDB counts as a pass), not an error that would break the pipeline.
        let what = match opts.runner {
            RunnerChoice::Auto => "neither tests/tests*.yml (STI) nor tmt plans (.fmf/version)",
            RunnerChoice::Sti => "no tests/tests*.yml (STI)",
            RunnerChoice::Tmt => "no tmt plans (.fmf/version)",
        };
        let note = format!("no tests to run: the dist-git tree has {what}");
        progress::note(&format!("test INFO: {note}"));
        manifest
            .stages
            .push(stage::instant_record("test", Outcome::Info, note));
        manifest.write(&opts.io.output)?;
        return Ok(Outcome::Info.exit_code());
    }
    for s in &suites {
        match s {
            Suite::Sti(_) => exec::require("ansible-playbook", "ansible-core")?,
            Suite::Tmt => {
                exec::require("rsync", "rsync")?;
                exec::require_tmt()?
            }
        };
    }
    exec::require("bwrap", "bubblewrap")?;
    exec::require("rpm", "rpm")?;

    // Test cases to rerun, and passing ones carried over, for --failed-only.
    let (only, carried) = if opts.failed_only {
        previous_failures(manifest, input)?
    } else {
        (Selection::default(), Vec::new())
    };
    let files = crate::digest::list_files(&tree, &[])?;
    let mut hc = crate::hostcache::HostCache::open(&ws);
    let tools: Vec<(&str, String)> = ["bwrap", "rpm", "ansible-playbook", "tmt"]
        .into_iter()
        .filter(|t| *t == "bwrap" || *t == "rpm" || suites.iter().any(|s| s.tool() == *t))
        .map(|t| (t, hc.version(t)))
        .collect();
    let digest = stage::input_digest(&json!({
        "stage": "test",
        "fci": env!("CARGO_PKG_VERSION"),
        "rpms": rpms.iter().map(|a| &a.sha256).collect::<Vec<_>>(),
        "tree": crate::digest::tree_digest(&tree, &files)?,
        "base_root": opts.base_root,
        // What the tests run on besides the new packages: the base's (or host's) package set.
        "base": subject::base_identity(opts.base_root.as_deref(), &mut hc),
        "tools": tools,
        // The host's standard-test-roles, when installed, run instead of fci's own.
        "host_roles": crate::digest::list_files(Path::new(sti::HOST_ROLES), &[])
            .ok()
            .map(|files| crate::digest::tree_digest(Path::new(sti::HOST_ROLES), &files).ok()),
        "runner": opts.runner,
        "tags": opts.tags,
        "retries": opts.retries,
        "only": format!("{only:?}"),
        "network": opts.network,
    }));
    if !opts.no_cache {
        if let Some(o) = stage::reuse(&ws, manifest, "test", &digest) {
            manifest.write(&opts.io.output)?;
            return Ok(o.exit_code());
        }
    }

    let spinner = Spinner::new("test");
    let mut st = StageRun::start(&ws, "test")?;
    spinner.step("installing the packages into a throwaway root");
    let subj = subject::prepare(
        &st.dir(),
        &rpm_paths,
        opts.base_root.as_deref(),
        &mut st.log,
    )?;
    let roles = sti::install_roles(&ws.root().join("share/roles"))?;
    let env = Env {
        overlays: &subj.overlays,
        tree: &tree,
        readonly: vec![ws.root().join("objects"), roles.clone()],
        hide: vec![ws.root().to_path_buf()],
        subjects: rpm_paths.clone(),
        network: opts.network,
        timeout: opts.timeout,
    };

    let scratch = st.dir();
    env.check(&mut st.log, &scratch)?;
    let mut rec = RecordParts::new(Outcome::Passed, digest.clone());
    rec.backend = Some(
        suites
            .iter()
            .map(Suite::runner)
            .collect::<Vec<_>>()
            .join("+"),
    );
    rec.tools = tools
        .iter()
        .map(|(t, v)| (t.to_string(), v.clone()))
        .collect();
    hc.save();
    rec.data
        .insert("subject_packages".into(), json!(subj.installed));
    rec.data
        .insert("unmet_requires".into(), json!(subj.unmet_requires));
    rec.data.insert("network".into(), json!(opts.network));
    if opts.failed_only {
        rec.data.insert("rerun".into(), json!(only.describe()));
    }
    if !subj.unmet_requires.is_empty() {
        rec.notes.push(format!(
            "installed with --nodeps; unmet: {}",
            subj.unmet_requires.join("; ")
        ));
    }

    let mut artifacts = Vec::new();
    let mut run_files = Vec::new();
    let mut run_once = |st: &mut StageRun,
                        attempt_no: u32,
                        sel: Option<&Selection>|
     -> Result<Vec<Case>> {
        let mut out = Vec::new();
        for (i, s) in suites.iter().enumerate() {
            let filter = match sel {
                None => Filter::default(),
                Some(sel) => match sel.for_suite(s.runner(), s.group().as_deref()) {
                    None => continue,
                    Some(f) => f,
                },
            };
            let dir = st
                .dir()
                .join(format!("attempt-{attempt_no}-{}-{i}", s.runner()));
            std::fs::create_dir_all(&dir)?;
            spinner.step(&format!(
                "running {} tests (attempt {attempt_no})",
                s.runner()
            ));
            let cases = match s {
                Suite::Sti(pb) => sti::run(
                    &env,
                    pb,
                    &opts.tags,
                    &filter.names,
                    &roles,
                    &dir,
                    &mut st.log,
                )?,
                Suite::Tmt => tmt::run(&env, &filter, &dir, &mut st.log)?,
            };
            // The run's own reports, for whoever debugs it (kept only if plain files).
            for (label, file) in run_reports(s, &dir) {
                let name = format!("{}-attempt{attempt_no}-{label}", s.runner());
                if let Ok(a) =
                    ws.store_limited(&file, "log", &name, "test", Some(results::LOG_LIMIT))
                {
                    run_files.push(json!({"attempt": attempt_no, "runner": s.runner(), "group": s.group(), "file": label, "path": a.path}));
                    artifacts.push(a);
                }
            }
            out.extend(cases.into_iter().map(|c| results::confine_log(c, &dir)));
        }
        Ok(out)
    };

    let mut cases: Vec<Slot> = Vec::new();
    if !(opts.failed_only && only.is_empty()) {
        let first = run_once(&mut st, 1, opts.failed_only.then_some(&only))?;
        cases.extend(first.into_iter().map(|c| (c, Vec::new())));
    }
    for attempt in 2..=opts.retries + 1 {
        let sel = Selection::failing(cases.iter().map(|(c, _)| c));
        if sel.is_empty() {
            break;
        }
        let again = run_once(&mut st, attempt, Some(&sel))?;
        select::merge(&mut cases, &sel, again, attempt);
    }

    if !run_files.is_empty() {
        rec.data.insert("run_files".into(), json!(run_files));
    }
    let mut results: Vec<TestResult> = carried;
    let mut logs = results::LogStore::new(&ws, &mut artifacts);
    for slot in cases {
        results.push(results::to_result(slot, &mut logs)?);
    }
    let (outcome, note) = results::stage_outcome(&results);
    rec.outcome = outcome;
    rec.notes.extend(note);
    rec.results = results;
    drop(spinner);
    let (record, log) = st.finish(&ws, rec)?;
    artifacts.push(log);
    results::summary(&record);
    let outcome = record.outcome;
    stage::commit(&ws, manifest, record, artifacts, true)?;
    manifest.write(&opts.io.output)?;
    Ok(outcome.exit_code())
}

fn discover(tree: &Path, choice: RunnerChoice) -> Result<Vec<Suite>> {
    let mut suites = Vec::new();
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Sti) {
        suites.extend(sti::discover(tree)?.into_iter().map(Suite::Sti));
    }
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Tmt) && tmt::discover(tree) {
        suites.push(Suite::Tmt);
    }
    Ok(suites)
}

/// From the input manifest's last test stage: what to rerun, and passing cases to keep.
fn previous_failures(manifest: &Manifest, input: &Path) -> Result<(Selection, Vec<TestResult>)> {
    let prev = manifest
        .last_stage("test")
        .filter(|s| !s.results.is_empty())
        .ok_or_else(|| {
            FciError::input(
                input,
                "--failed-only needs a manifest with an earlier `test` stage that has results",
            )
        })?;
    let str_of =
        |r: &TestResult, k: &str| r.extra.get(k).and_then(|v| v.as_str()).map(String::from);
    let as_case = |r: &TestResult| Case {
        runner: if r.runner.as_deref() == Some("tmt") {
            "tmt"
        } else {
            "sti"
        },
        name: r.testcase.clone(),
        group: str_of(r, "plan").or_else(|| str_of(r, "playbook")),
        outcome: r.outcome,
        log: None,
        duration_s: None,
        note: None,
        whole_run: str_of(r, "scope").as_deref() == Some("run"),
    };
    let rerun = Selection::failing(prev.results.iter().map(as_case).collect::<Vec<_>>().iter());
    // A suite rerun whole reports its passing cases again: keep only the others.
    let kept = prev
        .results
        .iter()
        .filter(|r| r.outcome.is_pass() && !rerun.covers(&as_case(r)))
        .map(|r| {
            let mut k = r.clone();
            k.note = Some(format!(
                "passed in an earlier run ({}); not rerun",
                prev.started
            ));
            k
        })
        .collect();
    Ok((rerun, kept))
}

/// The files a run reports through: STI's test.log and results.yml, tmt's results.yaml.
fn run_reports(suite: &Suite, dir: &Path) -> Vec<(String, PathBuf)> {
    match suite {
        Suite::Sti(_) => ["test.log", "results.yml"]
            .into_iter()
            .map(|f| (f.to_string(), dir.join("artifacts").join(f)))
            .filter(|(_, p)| p.exists())
            .collect(),
        Suite::Tmt => tmt::plan_results(&dir.join("tmt-run"))
            .into_iter()
            .map(|(plan, execute)| {
                (
                    format!(
                        "{}-results.yaml",
                        plan.trim_start_matches('/').replace('/', "-")
                    ),
                    execute.join("results.yaml"),
                )
            })
            .collect(),
    }
}
