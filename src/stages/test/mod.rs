//! `fci test`: the package's own functional tests (STI and tmt) against the RPMs just built.
//!
//! The suite runners it shares with `fci integrate` are `crate::suites`; the stage driver
//! does the rest.

use crate::error::FciError;
use crate::manifest::{
    Artifact, ArtifactKind, Manifest, Outcome, StageName, StageRecord, TestResult,
};
use crate::progress::Spinner;
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::suites::runner::Env;
use crate::suites::select::Selection;
use crate::suites::suite::{RunCtx, Suite};
use crate::suites::{
    attempts, discover, hidden_note, results, runner, sti, subject, RunnerChoice, SuiteArgs,
};
use crate::tool::Tool;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `fci test`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Rerun only the test cases that did not pass in the input manifest's test stage
    #[arg(long)]
    pub failed_only: bool,
    /// Base tree to layer under the new RPMs (default: the host's directories, read-only)
    #[arg(long, value_name = "DIR")]
    pub base_root: Option<PathBuf>,
    /// Take tests from this dist-git checkout instead of the build's snapshot
    #[arg(long, value_name = "DIR")]
    pub tests_from: Option<PathBuf>,
    #[command(flatten)]
    pub suite: SuiteArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `fci test`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let common = args.common.clone();
    let mut stage = Test {
        args,
        foreseen: Vec::new(),
    };
    stage::drive(&mut stage, &common, workspace)
}

struct Test {
    args: Args,
    /// The Fedora tests its tree foresees, found before anything in it is parsed: a record of
    /// the package's mistake fails them (see `mistaken`).
    foreseen: Vec<String>,
}

/// What a test run was planned with.
struct Planned {
    /// `data.suite`: which tests run.
    suite: serde_json::Value,
    /// `data.fedora_tests`: the Fedora test names its suites report under.
    fedora_tests: Vec<String>,
    rpms: Vec<PathBuf>,
    tree: PathBuf,
    suites: Vec<Box<dyn Suite>>,
    /// For --failed-only: what to rerun and keep, or None for a full run (with `full`, why).
    rerun: Option<attempts::Rerun>,
    full: Option<String>,
    /// The user's checkouts (`--tests-from`, a local subject repo): hidden from the tests,
    /// which get a copy of the tree (a `.git` there may hold credentials).
    private: Vec<PathBuf>,
}

impl Stage for Test {
    type Work = Planned;

    fn name(&self) -> StageName {
        StageName::Test
    }

    fn tools(&self) -> Vec<Tool> {
        vec![
            crate::tool::BWRAP,
            crate::tool::RPM,
            crate::tool::UNSHARE,
            crate::tool::MOUNT,
        ]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        let a = &self.args;
        // The subject is the packages, not their debuginfo and debugsource (Fedora CI
        // installs only what the tests need).
        let rpms: Vec<Artifact> = cx
            .manifest
            .artifacts_of(ArtifactKind::Rpm)
            .filter(|a| !a.nevra.as_ref().is_some_and(|n| n.is_debug()))
            .cloned()
            .collect();
        if rpms.is_empty() {
            return Err(FciError::input(&cx.origin, no_rpms(cx.manifest)).into());
        }
        // Everything consumed is what the manifest says it is: an edited path or digest is
        // bad input, never a different (or no) test run.
        let rpm_paths: Vec<PathBuf> = rpms
            .iter()
            .map(|r| cx.consume(r, ArtifactKind::Rpm))
            .collect::<Result<_>>()?;
        let (tree, tree_digest) = tests_tree(a, cx)?;
        if a.tests_from.is_none() {
            check_against_build(cx)?;
        }
        let foreseen = crate::suites::fedora_tests(&tree, a.suite.runner);
        self.foreseen = foreseen.clone();
        let suites = discover(&tree, a.suite.runner)?;
        if suites.is_empty() {
            // Most packages have no functional tests: that is a fact to record (INFO, which
            // ResultsDB counts as a pass), not an error that would break the pipeline.
            let what = match a.suite.runner {
                RunnerChoice::Auto => "neither tests/tests*.yml (STI) nor tmt plans (.fmf/version)",
                RunnerChoice::Sti => "no tests/tests*.yml (STI)",
                RunnerChoice::Tmt => "no tmt plans (.fmf/version)",
            };
            return Ok(Plan::Instant(
                Outcome::Info,
                format!("no tests to run: the dist-git tree has {what}"),
            ));
        }
        for t in suites.iter().flat_map(|s| s.tools()) {
            cx.require(t)?;
        }
        let (rerun, full, from) = if a.failed_only {
            failed_only(a, cx, &tree_digest)?
        } else {
            (None, None, None)
        };
        let inputs = json!({
            "rpms": rpms.iter().map(|r| &r.sha256).collect::<Vec<_>>(),
            "tree": tree_digest,
            "base_root": a.base_root,
            // What the tests run on besides the new packages: the base's (or host's) package set.
            "base": subject::base_identity(a.base_root.as_deref(), &mut cx.host),
            // The host's standard-test-roles, when installed, run instead of fci's own.
            "host_roles": crate::digest::list_files(Path::new(sti::HOST_ROLES), &[])
                .ok()
                .map(|files| crate::digest::tree_digest(Path::new(sti::HOST_ROLES), &files).ok()),
            "runner": a.suite.runner,
            "tags": a.suite.tags,
            "retries": a.suite.retries,
            // --failed-only: the record it reruns and carries from (never a plain run's key).
            "failed_only": from,
            "network": a.suite.network,
            // A pass under looser limits on package code says nothing of a run under tighter
            // ones: the limits are an option like any other.
            "limits": crate::config::run_limits(a.suite.limits.partial(), cx.manifest, &mut cx.run.log),
        });
        let local_repo = cx
            .manifest
            .subject
            .repo
            .as_deref()
            .and_then(|r| Path::new(r).canonicalize().ok());
        let private = crate::distgit::private_dirs(
            a.tests_from
                .iter()
                .filter_map(|d| d.canonicalize().ok())
                .chain(local_repo),
        );
        let work = Planned {
            suite: a.suite.identity(&tree_digest),
            fedora_tests: foreseen,
            private,
            rpms: rpm_paths,
            tree,
            suites,
            rerun,
            full,
        };
        Ok(Plan::Run(inputs, work))
    }

    fn mistaken(&self, _at: &str, _manifest: &mut Manifest, rec: &mut RecordParts) {
        rec.data.insert("fedora_tests".into(), json!(self.foreseen));
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let a = &self.args;
        let spinner = Spinner::new("test");
        spinner.step("installing the packages into a throwaway root");
        let limits =
            crate::config::run_limits(a.suite.limits.partial(), cx.manifest, &mut cx.run.log);
        rec.data.insert("limits".into(), json!(limits));
        // Before the install: a payload refused is a failure of this suite's run too.
        rec.data.insert("suite".into(), p.suite.clone());
        rec.data
            .insert("fedora_tests".into(), json!(p.fedora_tests));
        let subj = match subject::prepare(
            &cx.dir(),
            &p.rpms,
            a.base_root.as_deref(),
            limits.scratch,
            crate::duration::limit(a.suite.timeout),
            cx.log(),
        )? {
            Ok(subj) => subj,
            Err(why) => {
                // The package's failure, not reused: another run may be given another limit.
                rec.outcome = Outcome::Failed;
                rec.cacheable = false;
                crate::progress::note(&format!("test FAILED: {why}"));
                rec.notes.push(why);
                return Ok(Vec::new());
            }
        };
        let roles = sti::install_roles(&cx.ws.share("roles"))?;
        let env = Env {
            overlays: &subj.overlays,
            tree: &p.tree,
            // The subject's own packages only: the rest of the object store holds other runs'.
            readonly: p
                .rpms
                .iter()
                .cloned()
                .chain(std::iter::once(roles.clone()))
                .collect(),
            hide: p
                .private
                .iter()
                .cloned()
                .chain(std::iter::once(cx.ws.root().to_path_buf()))
                .collect(),
            subjects: p.rpms.clone(),
            network: a.suite.network,
            timeout: crate::duration::limit(a.suite.timeout),
            limits,
            // fci test runs the tests on the layered view: the subject over the host.
            guest: None,
        };
        rec.data
            .insert("subject_packages".into(), json!(subj.installed));
        rec.data
            .insert("unmet_requires".into(), json!(subj.unmet_requires));
        if let Some(r) = &p.rerun {
            rec.data.insert("rerun".into(), json!(r.only.describe()));
        }
        if let Some(why) = p.full {
            rec.data.insert("rerun".into(), json!("all"));
            let msg = format!("--failed-only runs every test: {why}");
            crate::progress::note(&msg);
            rec.notes.push(msg);
        }
        if !subj.unmet_requires.is_empty() {
            rec.notes.push(format!(
                "installed with --nodeps; unmet: {}",
                subj.unmet_requires.join("; ")
            ));
        }
        if !subj.hidden.is_empty() {
            rec.data.insert("not_layered".into(), json!(subj.hidden));
            rec.notes.push(hidden_note(&subj.hidden));
        }

        let rcx = RunCtx {
            env: &env,
            tags: &a.suite.tags,
            roles: &roles,
        };
        attempts::run(
            attempts::Attempts {
                suites: &p.suites,
                rcx: &rcx,
                stage: StageName::Test,
                retries: a.suite.retries,
                rerun: p.rerun,
            },
            cx,
            rec,
            &spinner,
        )
    }

    fn summary(&self, record: &StageRecord, _manifest: &Manifest) {
        results::summary(record);
    }
}

/// The packages and tree to test are the ones the build recorded in this workspace: an
/// edited manifest that points at another build's (valid) artifacts is bad input.
fn check_against_build(cx: &Ctx) -> Result<()> {
    let bad = |msg: &str| -> anyhow::Error { FciError::input(&cx.origin, msg.to_string()).into() };
    let Some(build) = cx.manifest.last_stage(StageName::Build) else {
        return Err(bad(
            "the manifest has artifacts but no `build` stage record: not a manifest fci build wrote",
        ));
    };
    let Some(entry) = cx
        .ws
        .cache_get(StageName::Build.as_str(), &build.input_digest)
    else {
        // A manifest from another workspace (copied artifacts): the digests were checked.
        return Ok(());
    };
    let pick = |arts: &mut dyn Iterator<Item = &Artifact>| {
        let mut v: Vec<(String, String, String)> = arts
            .filter(|x| matches!(x.kind, ArtifactKind::Rpm | ArtifactKind::DistGit))
            .map(|x| (x.kind.to_string(), x.path.clone(), x.sha256.clone()))
            .collect();
        v.sort();
        v
    };
    let recorded = pick(&mut entry.artifacts.iter());
    let given = pick(&mut cx.manifest.artifacts.iter());
    if recorded != given {
        return Err(bad(
            "the `rpm` and `dist-git` artifacts differ from what its `build` stage recorded in this workspace (edited manifest?)",
        ));
    }
    Ok(())
}

/// Why there is nothing to test: forced past a build that did not pass, say what stopped it.
fn no_rpms(manifest: &Manifest) -> String {
    match manifest.last_stage(StageName::Build) {
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
    }
}

/// The tests' tree, and its digest: `--tests-from`'s directory, or the dist-git artifact
/// (whose digest was just verified, so it is reused). Apart so that `plan` reads as its
/// steps.
fn tests_tree(a: &Args, cx: &Ctx) -> Result<(PathBuf, String)> {
    Ok(match &a.tests_from {
        Some(d) if d.is_dir() => {
            let d = d.canonicalize()?;
            let files = crate::digest::list_files(&d, &[])?;
            let digest = crate::digest::tree_digest(&d, &files)?;
            (d, digest)
        }
        Some(d) => return Err(FciError::input(d, "no such directory").into()),
        None => {
            let t = cx
                .manifest
                .artifacts_of(ArtifactKind::DistGit)
                .last()
                .cloned()
                .ok_or_else(|| {
                    FciError::input(
                        &cx.origin,
                        "no `dist-git` artifact: run `fci build` first or pass --tests-from",
                    )
                })?;
            (cx.consume(&t, ArtifactKind::DistGit)?, t.sha256)
        }
    })
}

/// --failed-only: what to rerun and keep of the input's test record, or why the run is a
/// full one; and the record's digest. Apart so that `plan` reads as its steps.
fn failed_only(
    a: &Args,
    cx: &mut Ctx,
    tree_digest: &str,
) -> Result<(Option<attempts::Rerun>, Option<String>, Option<String>)> {
    let (i, prev) = previous_test(cx.manifest, &cx.origin)?;
    // What is carried over is taken as fci recorded it: an edited record is refused
    // (a run begun in another workspace has no records here: it goes on unbound).
    if crate::run_records::has_records(cx.ws, &cx.manifest.run.id) {
        crate::run_records::check_record(cx.ws, cx.manifest, i, &cx.origin)?;
    }
    let from = crate::run_records::digest(prev)?;
    // A test record a rebuild came after is about other RPMs: its passes say nothing
    // of these.
    let current = cx
        .manifest
        .current_stages()
        .iter()
        .any(|s| std::ptr::eq(*s, prev));
    // Its passes stand for this run's tests only if it ran the same suite (a rerun of
    // an STI-only record is no run of tmt's plans) and nothing of that suite ran since
    // (a later failure of a case it passed would be dropped).
    let same_suite = prev.data.get("suite") == Some(&a.suite.identity(tree_digest));
    let chosen = if !current {
        Err("the input's test stage ran before its latest build, on other packages".into())
    } else if !same_suite {
        Err(
            "the input's test stage ran other tests (its tests tree, --runner or --tags differ)"
                .into(),
        )
    } else if !crate::run_records::latest_of_its_suite(cx.ws, &cx.manifest.run.id, prev) {
        Err("the same tests ran again in this run after the input's test stage".into())
    } else {
        previous_failures(prev)
    };
    Ok(match chosen {
        Ok(rerun) => (Some(rerun), None, Some(from)),
        Err(why) => (None, Some(why), Some(from)),
    })
}

/// The input manifest's last test stage (with results), and its index: what --failed-only
/// reruns from.
fn previous_test<'m>(manifest: &'m Manifest, input: &Path) -> Result<(usize, &'m StageRecord)> {
    manifest
        .stages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| s.is(StageName::Test))
        .filter(|(_, s)| !s.results.is_empty())
        .ok_or_else(|| {
            FciError::input(
                input,
                "--failed-only needs a manifest with an earlier `test` stage that has results",
            )
            .into()
        })
}

/// From the earlier test record: what to rerun, and what to keep; or, when --failed-only
/// cannot select exactly what did not pass, why every test must run.
fn previous_failures(prev: &StageRecord) -> std::result::Result<attempts::Rerun, String> {
    let unlisted = prev
        .data
        .get("results_unlisted")
        .map(runner::Unlisted::from_json)
        .unwrap_or_default();
    if unlisted.any_failing() {
        return Err(format!(
            "the input's test stage counted {} failed and {} errored cases without listing them, so they cannot be selected",
            unlisted.all.failed, unlisted.all.errors
        ));
    }
    let as_case = results::case_of;
    let failing: Vec<&TestResult> = prev
        .results
        .iter()
        .filter(|r| !r.outcome.is_pass() && r.outcome != Outcome::Skipped)
        .collect();
    if failing.is_empty() {
        return Err(format!(
            "nothing failed in the input's test stage (it is {}): there is nothing to select",
            prev.outcome
        ));
    }
    if let Some(r) = failing
        .iter()
        .find(|r| r.testcase.ends_with(crate::caps::CUT_MARK))
    {
        return Err(format!(
            "the name of {} was cut in the input's test stage, so it cannot be selected",
            r.testcase
                .chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
        ));
    }
    let only = Selection::failing(
        failing
            .iter()
            .map(|r| as_case(r))
            .collect::<Vec<_>>()
            .iter(),
    );
    // A suite rerun whole reports its passing cases again: keep only the others.
    let carried = prev
        .results
        .iter()
        .filter(|r| {
            (r.outcome.is_pass() || r.outcome == Outcome::Skipped) && !only.covers(&as_case(r))
        })
        .map(|r| {
            let mut k = r.clone();
            let what = if r.outcome == Outcome::Skipped {
                "skipped"
            } else {
                "passed"
            };
            k.note = Some(format!(
                "{what} in an earlier run ({}); not rerun",
                prev.started
            ));
            k
        })
        .collect();
    let selected = failing.into_iter().cloned().collect();
    Ok(attempts::Rerun {
        only,
        carried,
        selected,
        unlisted,
    })
}
