//! `fci conform`: a cluster running the composed tree (an existing one by `--kubeconfig`, or
//! one `--installer` makes), its API server's `/readyz` awaited, the Kubernetes/OpenShift
//! conformance suite run against it (`runner.rs`), and its JUnit turned into results
//! (`results.rs`). `--teardown` runs after everything, also after a failure, an ERROR or
//! SIGINT/SIGTERM (`crate::cancel`).

pub mod kubeconfig;
pub mod placeholders;
pub mod ready;
pub mod results;
pub mod runner;

use crate::cancel::{self, OnSignal, Stopped};
use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Manifest, Outcome, StageName, StageRecord};
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Reuse, Signals, Stage};
use anyhow::Result;
use placeholders::Values;
use runner::{Kind, Runner};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `fci conform`'s flags. An argument vector (`--installer`, `--runner-cmd`, `--teardown`)
/// takes every following argument up to a lone `;` (quote it from the shell: `';'`), as
/// `find -exec` does; it runs without a shell.
#[derive(clap::Args, Debug, Clone)]
#[command(
    group(clap::ArgGroup::new("cluster").required(true).args(["kubeconfig", "installer"])),
    after_help = "Placeholders, replaced inside each argument (never through a shell): {compose} the composed \
commit, {repo} the OSTree repository, {ref} the compose's ref, {image} the manifest's disk image, \
{workdir} a fresh scratch directory, {kubeconfig} the kubeconfig ({workdir}/kubeconfig with \
--installer, where the installer must leave it); --runner-cmd also has {junit_dir}.\n\n\
Commands run in the directory fci was started from.\n\n\
Example:\n  fci conform -m composed.json --installer ./install-cluster --tree {repo} --commit {compose} \
--kubeconfig-out {kubeconfig} ';' --teardown ./destroy-cluster {workdir} ';'\n\n\
Exit codes: 0 every conformance test passed; 1 one failed or errored (named on stderr); 2 bad usage or \
kubeconfig (nothing run, no manifest); 3 ERROR: installer, readiness, runner, unreadable or \
missing JUnit, or interrupted by SIGINT/SIGTERM (the teardown ran first)."
)]
pub struct Args {
    /// An existing cluster's kubeconfig (it must run the composed tree)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// A command that installs a cluster from the composed tree and leaves {kubeconfig};
    /// its arguments end with ';'
    #[arg(
        long,
        value_name = "ARG",
        num_args = 1..,
        allow_hyphen_values = true,
        value_terminator = ";"
    )]
    pub installer: Option<Vec<String>>,
    /// The kubeconfig context to use (default: its current-context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Kill the installer after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for none
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub install_timeout: Duration,
    /// How long to wait for the API server's /readyz to answer 200 (ERROR after): seconds, or
    /// 90s, 10m
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub ready_timeout: Duration,
    /// The conformance runner
    #[arg(long, value_enum, default_value_t = Kind::Sonobuoy)]
    pub runner: Kind,
    /// sonobuoy's --mode
    #[arg(long, default_value = "certified-conformance", value_name = "MODE")]
    pub mode: String,
    /// Any other runner: a command that writes JUnit files into {junit_dir}; its arguments
    /// end with ';' (instead of --runner)
    #[arg(
        long = "runner-cmd",
        value_name = "ARG",
        num_args = 1..,
        allow_hyphen_values = true,
        value_terminator = ";",
        conflicts_with_all = ["runner", "mode"]
    )]
    pub runner_cmd: Option<Vec<String>>,
    /// Kill the conformance runner after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for
    /// none
    #[arg(long, default_value = "2h", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// A command run at the end whatever happened (also after a failure, an ERROR or
    /// Ctrl-C), e.g. to destroy the cluster; its arguments end with ';'
    #[arg(
        long,
        value_name = "ARG",
        num_args = 1..,
        allow_hyphen_values = true,
        value_terminator = ";"
    )]
    pub teardown: Option<Vec<String>>,
    /// Kill the teardown after this long: seconds, or 90m, 4h, 1h30m; 0 for none
    #[arg(long, default_value = "30m", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub teardown_timeout: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Placeholders of the installer and the teardown; the runner also has `junit_dir`.
const CLUSTER_PLACEHOLDERS: [&str; 6] =
    ["compose", "repo", "ref", "image", "workdir", "kubeconfig"];
const RUNNER_PLACEHOLDERS: [&str; 7] = [
    "compose",
    "repo",
    "ref",
    "image",
    "workdir",
    "kubeconfig",
    "junit_dir",
];

/// Runs `fci conform`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    for (flag, argv) in [
        ("--installer", &args.installer),
        ("--runner-cmd", &args.runner_cmd),
        ("--teardown", &args.teardown),
    ] {
        if argv.as_ref().is_some_and(|a| a[0].is_empty()) {
            return Err(FciError::Usage(format!("{flag}: the program is empty")).into());
        }
    }
    let common = args.common.clone();
    let mut stage = Conform {
        args,
        kubeconfig: None,
    };
    stage::drive(&mut stage, &common, workspace)
}

struct Conform {
    args: Args,
    /// The kubeconfig of the run, once planned.
    kubeconfig: Option<PathBuf>,
}

struct Planned {
    commit: String,
    workdir: PathBuf,
    junit_dir: PathBuf,
    kubeconfig: PathBuf,
    /// Read already when given by --kubeconfig; after the installer otherwise.
    cluster: Option<kubeconfig::Cluster>,
    installer: Option<Vec<String>>,
    runner: Runner,
    teardown: Option<Vec<String>>,
    /// Whether the installer or the runner was started: after a signal, the teardown runs
    /// only then (nothing of this run is on the cluster otherwise).
    started: bool,
}

impl Stage for Conform {
    type Work = Planned;

    fn name(&self) -> StageName {
        StageName::Conform
    }

    /// A conformance run's result depends on a live cluster, whose state no input digest
    /// covers (nor do the files a kubeconfig names, or the programs of
    /// --installer/--runner-cmd/--teardown). Runs with the same inputs still take the same
    /// lock, so they do not run against one cluster at once.
    fn reuse(&self) -> Reuse {
        Reuse::Never
    }

    /// A cluster may be half installed: a signal is noted, the teardown runs, the stage
    /// records what happened. A wait for the stage's lock ends on one (nothing ran yet, so
    /// no teardown: exit 3, "interrupted").
    fn on_signal(&self) -> Signals {
        Signals::Note
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        let a = &self.args;
        let composed = crate::binding::require_composed(
            cx,
            "no composed `ostree-commit` artifact: run `fci compose` first",
        )?;
        let repo = composed.repo_path.clone();
        let compose_ref = Some(composed.candidate.clone());
        let art = composed.artifact.clone();
        let workdir = cx.dir().join("work");
        let junit_dir = cx.dir().join("junit");
        let (kubeconfig, cluster, kube_digest) = given_cluster(a, &workdir)?;
        let uses_image = [&a.installer, &a.runner_cmd, &a.teardown]
            .into_iter()
            .flatten()
            .flatten()
            .any(|x| x.contains("{image}"));
        let image = match cx.manifest.image().cloned() {
            Some(img) if uses_image => {
                let path = cx.consume(&img, ArtifactKind::Image)?;
                crate::binding::check_image(cx, &img, &composed)?;
                Some((path, img.sha256))
            }
            _ => None,
        };
        let mut values = Values::new();
        values.insert("compose", Some(art.sha256.clone()));
        values.insert("repo", Some(repo.display().to_string()));
        values.insert("ref", compose_ref);
        values.insert(
            "image",
            image.as_ref().map(|(p, _)| p.display().to_string()),
        );
        values.insert("workdir", Some(workdir.display().to_string()));
        values.insert("kubeconfig", Some(kubeconfig.display().to_string()));
        values.insert("junit_dir", Some(junit_dir.display().to_string()));
        let expand = |flag: &str, argv: &Option<Vec<String>>, allowed: &[&str]| {
            argv.as_ref()
                .map(|v| placeholders::expand(flag, v, &values, allowed))
                .transpose()
        };
        let installer = expand("--installer", &a.installer, &CLUSTER_PLACEHOLDERS)?;
        let teardown = expand("--teardown", &a.teardown, &CLUSTER_PLACEHOLDERS)?;
        let runner = match expand("--runner-cmd", &a.runner_cmd, &RUNNER_PLACEHOLDERS)? {
            Some(argv) => Runner::Custom(argv),
            None => match a.runner {
                Kind::Sonobuoy => Runner::Sonobuoy {
                    mode: a.mode.clone(),
                },
                Kind::E2eTest => Runner::E2eTest,
                Kind::OpenshiftTests => Runner::OpenshiftTests,
            },
        };
        for t in runner.tools() {
            cx.require(t)?;
        }
        for (what, argv) in [
            ("--installer", &installer),
            ("--teardown", &teardown),
            ("--runner-cmd", &runner_argv(&runner)),
        ] {
            if let Some(argv) = argv {
                find_program(what, &argv[0])?;
            }
        }
        let inputs = json!({
            "commit": art.sha256,
            "image": image.map(|(_, sha)| sha),
            "kubeconfig": kube_digest,
            "context": a.context,
            "installer": a.installer,
            "runner": runner.name(),
            "mode": matches!(runner, Runner::Sonobuoy { .. }).then_some(&a.mode),
            "runner_cmd": a.runner_cmd,
            "teardown": a.teardown,
        });
        self.kubeconfig = Some(kubeconfig.clone());
        let work = Planned {
            commit: art.sha256,
            workdir,
            junit_dir,
            kubeconfig,
            cluster,
            installer,
            runner,
            teardown,
            started: false,
        };
        Ok(Plan::Run(inputs, work))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let artifacts = match self.execute_all(cx, p, rec) {
            Ok(a) => a,
            Err(e) => {
                error(rec, crate::error::one_line(&e));
                Vec::new()
            }
        };
        // The teardown may have left secrets in the log too: scrubbed last.
        add_secrets(&self.kubeconfig_path());
        scrub_record(cx, rec);
        Ok(artifacts)
    }

    fn summary(&self, record: &StageRecord, _manifest: &Manifest) {
        let d = &record.data;
        let counts = d
            .get("tests")
            .map(|t| {
                format!(
                    ": {} passed, {} failed, {} errors, {} skipped",
                    t["passed"], t["failed"], t["errors"], t["skipped"]
                )
            })
            .unwrap_or_default();
        let why = if record.outcome == Outcome::Passed {
            String::new()
        } else {
            record
                .notes
                .first()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        };
        // The failing names were printed when they were found (also with --quiet).
        progress::note(&format!(
            "conform {} in {:.1}s{counts}{why}",
            record.outcome, record.duration_s
        ));
    }
}

impl Conform {
    fn execute_all(
        &mut self,
        cx: &mut Ctx,
        mut p: Planned,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        // What it verified: a failed conformance run is cleared for the run only by a later
        // one with the same runner and mode (run_records::standing).
        rec.data.insert(
            "suite".into(),
            json!({"runner": p.runner.name(), "mode": self.args.mode, "runner_cmd": self.args.runner_cmd}),
        );
        let spinner = Spinner::new("conform");
        rec.backend = Some(p.runner.name().to_string());
        rec.data.insert("commit".into(), json!(p.commit));
        rec.data.insert("runner".into(), json!(p.runner.name()));
        if let Runner::Sonobuoy { mode } = &p.runner {
            rec.data.insert("mode".into(), json!(mode));
        }
        std::fs::create_dir_all(&p.workdir)?;
        std::fs::create_dir_all(&p.junit_dir)?;
        // Interrupted before anything ran (while planning or taking the lock): nothing of
        // this run is on a cluster, so there is nothing to tear down.
        if let Some(sig) = cx.cancelled() {
            error(
                rec,
                format!("interrupted by {sig} before anything ran; no teardown"),
            );
            rec.data.insert("interrupted".into(), json!(sig));
            return Ok(Vec::new());
        }
        let artifacts = match self.session(cx, rec, &mut p, &spinner) {
            Ok(a) => a,
            Err(e) => {
                error(rec, crate::error::one_line(&e));
                Vec::new()
            }
        };
        // Whether the signal came before the teardown (what ran was killed) or during it.
        let before_teardown = cx.cancelled().is_some();
        if let Some(argv) = &p.teardown {
            if before_teardown && !p.started {
                rec.notes.push(
                    "the teardown did not run: the signal came before the installer or the runner started"
                        .into(),
                );
            } else {
                spinner.step("tearing down");
                teardown(cx, rec, argv, self.args.teardown_timeout)?;
            }
        }
        if let Some(sig) = cx.cancelled() {
            rec.outcome = Outcome::Error;
            let torn = match rec.data.get("teardown_exit") {
                Some(Value::Number(n)) => format!("the teardown ran to its end (exit {n})"),
                Some(_) => "the teardown ran and was killed by its --teardown-timeout".into(),
                None => String::new(),
            };
            let msg = match (before_teardown, torn.is_empty()) {
                (true, true) => format!("interrupted by {sig}: what ran was killed"),
                (true, false) => format!("interrupted by {sig}: what ran was killed, then {torn}"),
                (false, _) => format!("interrupted by {sig} during the teardown: {torn}"),
            };
            progress::say(&format!("conform ERROR: {msg}"));
            rec.notes.push(msg);
            rec.data.insert("interrupted".into(), json!(sig));
        }
        Ok(artifacts)
    }

    /// The kubeconfig this run uses (given, or where the installer leaves it).
    fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig.clone().unwrap_or_default()
    }

    /// Install, wait, run, read: everything the teardown follows. An ERROR is recorded in
    /// `rec` (with its reason) rather than returned, so the record keeps what was learnt.
    /// Each step is a function of its own; one that ends the session says so by returning
    /// `false` (or `None`) with the reason already in `rec`.
    fn session(
        &self,
        cx: &mut Ctx,
        rec: &mut RecordParts,
        p: &mut Planned,
        spinner: &Spinner,
    ) -> Result<Vec<Artifact>> {
        if !self.install(cx, rec, p, spinner)? {
            return Ok(Vec::new());
        }
        let cluster = p.cluster.as_ref().expect("a cluster by now");
        record_cluster(rec, cluster);
        if !self.await_ready(cx, rec, p, spinner)? {
            return Ok(Vec::new());
        }
        let Some(ran) = self.run_suite(cx, rec, p, spinner)? else {
            return Ok(Vec::new());
        };
        spinner.step("reading the JUnit reports");
        let mut artifacts = Vec::new();
        if let Some(reports) = read_reports(cx, rec, p.runner.name(), &ran.junit, &mut artifacts)? {
            record_tally(rec, &reports);
            if trusted(rec, p.runner.name(), ran.exit, &reports) {
                decide(rec, &reports);
            }
        }
        Ok(artifacts)
    }

    /// The `--installer` (if given) run to its end, and the kubeconfig it left loaded into
    /// `p.cluster`. `false`: the session ends here (interrupted, or an ERROR recorded).
    fn install(
        &self,
        cx: &mut Ctx,
        rec: &mut RecordParts,
        p: &mut Planned,
        spinner: &Spinner,
    ) -> Result<bool> {
        let a = &self.args;
        let Some(argv) = &p.installer else {
            return Ok(true);
        };
        spinner.step("installing the cluster");
        if cx.cancelled().is_some() {
            return Ok(false);
        }
        p.started = true;
        let g = cancel::run(
            cx.log(),
            // In the directory fci was started from, as a user expects of
            // `--installer ansible-playbook -i inventory install.yml`.
            &crate::exec::Cmd::new(&argv[0]).args(&argv[1..]),
            crate::duration::limit(a.install_timeout),
            false,
            OnSignal::Kill,
        )?;
        rec.data.insert("installer_exit".into(), json!(g.done.code));
        // Whatever it did, the kubeconfig it left (if any) holds secrets it may have
        // printed: they are scrubbed from all that is recorded.
        add_secrets(&p.kubeconfig);
        match g.stopped {
            Some(Stopped::Interrupted) => return Ok(false),
            Some(Stopped::TimedOut) => {
                error(
                    rec,
                    format!(
                        "the installer ran past --install-timeout {} and was killed",
                        crate::duration::show(a.install_timeout)
                    ),
                );
                return Ok(false);
            }
            None if !g.done.success() => {
                let said = last_output(cx);
                error(
                    rec,
                    format!(
                        "the installer {} {}: {said} (the stage log has all it said)",
                        argv[0],
                        status(g.done.code)
                    ),
                );
                return Ok(false);
            }
            None => {}
        }
        if !p.kubeconfig.is_file() {
            error(
                rec,
                format!(
                    "the installer succeeded but left no kubeconfig at {}",
                    p.kubeconfig.display()
                ),
            );
            return Ok(false);
        }
        match kubeconfig::load(&p.kubeconfig, a.context.as_deref())
            .and_then(|c| ready::client(&c).map(|_| c))
        {
            Ok(c) => p.cluster = Some(c),
            Err(why) => {
                error(
                    rec,
                    format!(
                        "{}: the installer's kubeconfig is unusable: {why}",
                        p.kubeconfig.display()
                    ),
                );
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The cluster's API server awaited until its `/readyz` answers 200. `false`: the
    /// session ends here (interrupted, or an ERROR recorded).
    fn await_ready(
        &self,
        cx: &mut Ctx,
        rec: &mut RecordParts,
        p: &Planned,
        spinner: &Spinner,
    ) -> Result<bool> {
        let a = &self.args;
        let cluster = p.cluster.as_ref().expect("a cluster by now");
        spinner.step(&format!("waiting for {}/readyz", cluster.display_server()));
        let client = ready::client(cluster)
            .map_err(|why| FciError::Infra(format!("{}: {why}", p.kubeconfig.display())))?;
        match ready::wait(cluster, &client, a.ready_timeout, cx.log()) {
            ready::Ready::Yes { waited_s } => {
                rec.data.insert("ready_wait_s".into(), json!(waited_s));
            }
            ready::Ready::Interrupted => return Ok(false),
            ready::Ready::Refused { status } => {
                error(
                    rec,
                    format!(
                        "{}/readyz refused the credentials of context `{}` (HTTP {status})",
                        cluster.display_server(),
                        cluster.context
                    ),
                );
                return Ok(false);
            }
            ready::Ready::TimedOut { last } => {
                error(
                    rec,
                    format!(
                        "{}/readyz was not ready after --ready-timeout {}; last answer: {last}",
                        cluster.display_server(),
                        crate::duration::show(a.ready_timeout)
                    ),
                );
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The conformance runner run to its end. `None`: the session ends here (interrupted,
    /// or an ERROR recorded: killed, untrusted, or no JUnit report left).
    fn run_suite(
        &self,
        cx: &mut Ctx,
        rec: &mut RecordParts,
        p: &mut Planned,
        spinner: &Spinner,
    ) -> Result<Option<runner::Ran>> {
        let a = &self.args;
        spinner.step(&format!(
            "running the conformance suite ({})",
            p.runner.name()
        ));
        if cx.cancelled().is_some() {
            return Ok(None);
        }
        p.started = true;
        let mut ran = p.runner.run(
            &p.kubeconfig,
            &p.workdir,
            &p.junit_dir,
            crate::duration::limit(a.timeout),
            cx.log(),
        )?;
        rec.data.insert("runner_exit".into(), json!(ran.exit));
        rec.notes.extend(std::mem::take(&mut ran.notes));
        match ran.stopped {
            Some(Stopped::Interrupted) => return Ok(None),
            Some(Stopped::TimedOut) => {
                error(
                    rec,
                    format!(
                        "the {} runner ran past --timeout {} and was killed",
                        p.runner.name(),
                        crate::duration::show(a.timeout)
                    ),
                );
                return Ok(None);
            }
            None => {}
        }
        if let Some(why) = ran.untrusted.take() {
            error(rec, why);
            return Ok(None);
        }
        if ran.junit.is_empty() {
            error(
                rec,
                format!(
                    "the {} runner ({}) left no JUnit report (looked for {})",
                    p.runner.name(),
                    status(ran.exit),
                    ran.looked_in
                ),
            );
            return Ok(None);
        }
        Ok(Some(ran))
    }
}

/// What the cluster is (server, context, auth, whether TLS was verified) in the record.
fn record_cluster(rec: &mut RecordParts, cluster: &kubeconfig::Cluster) {
    rec.data
        .insert("server".into(), json!(cluster.display_server()));
    rec.data.insert("context".into(), json!(cluster.context));
    rec.data.insert("auth".into(), json!(cluster.auth.kind()));
    rec.data
        .insert("tls_verified".into(), json!(cluster.tls_verified));
    if !cluster.tls_verified {
        rec.notes.push(if cluster.insecure {
            "insecure-skip-tls-verify: the API server's certificate was not verified".into()
        } else {
            "the API server was reached over plain http: its identity was not verified".to_string()
        });
    }
}

/// What the runner's JUnit reports say, all of them read.
struct Reports {
    tally: results::Tally,
    findings: results::Findings,
    /// The reports that hold no test that ran.
    idle: Vec<String>,
}

/// Each JUnit report checked (size, secrets), stored as an artifact (into `artifacts`,
/// also when it is then not trusted) and read into the results. `None`: an ERROR was
/// recorded (a report too large, unscrubbable or unreadable).
fn read_reports(
    cx: &mut Ctx,
    rec: &mut RecordParts,
    runner: &str,
    junit: &[PathBuf],
    artifacts: &mut Vec<Artifact>,
) -> Result<Option<Reports>> {
    let mut tally = results::Tally::default();
    let mut findings = results::Findings::default();
    // Each report must hold a test that ran: an empty or all-skipped file beside a
    // passing one is a runner (or shard) that tested nothing, never part of a pass.
    let mut idle: Vec<String> = Vec::new();
    for f in junit {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        // Neither scrubbed, kept nor read past the cap: a report that large is no report.
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        if size > crate::caps::JUNIT_FILE {
            error(
                rec,
                format!(
                    "JUnit report {name} is {size} bytes, larger than the {} limit for a JUnit report; not trusted",
                    crate::caps::human(crate::caps::JUNIT_FILE)
                ),
            );
            return Ok(None);
        }
        if let Err(e) = scrub_file(f) {
            error(
                rec,
                format!("JUnit report {name}: cannot scrub secrets from it: {e}"),
            );
            return Ok(None);
        }
        // Kept whatever it says: a report that cannot be read is the first thing to see.
        let stored = cx
            .ws
            .store(f, ArtifactKind::Junit, &name, StageName::Conform)?;
        let kept = stored.path.clone();
        artifacts.push(stored);
        let before = findings.inconsistent.len();
        let (tally_before, nodes_before) = (tally, findings.suite_nodes.len());
        if let Err(why) = results::read(f, runner, &mut rec.results, &mut tally, &mut findings) {
            rec.data.insert("tests".into(), tally.to_json());
            error(
                rec,
                format!("JUnit report {name} (kept as {kept}): {why}; not trusted"),
            );
            return Ok(None);
        }
        if findings.inconsistent.len() > before {
            let why = findings.inconsistent[before..].join("; ");
            findings.inconsistent.truncate(before);
            findings.inconsistent.push(format!(
                "JUnit report {name} (kept as {kept}) is inconsistent: {why}"
            ));
        }
        let ran_here = (tally.passed + tally.failed + tally.errors)
            - (tally_before.passed + tally_before.failed + tally_before.errors);
        if ran_here == 0 {
            let nodes = findings.suite_nodes.len() - nodes_before;
            idle.push(format!(
                "JUnit report {name} (kept as {kept}) holds {} skipped cases{} and nothing else",
                tally.skipped - tally_before.skipped,
                if nodes == 0 {
                    String::new()
                } else {
                    format!(" and {nodes} suite nodes (setup, not tests)")
                }
            ));
        }
    }
    Ok(Some(Reports {
        tally,
        findings,
        idle,
    }))
}

/// The counts, the cases not listed and the suite nodes, in the record.
fn record_tally(rec: &mut RecordParts, r: &Reports) {
    let (tally, findings) = (&r.tally, &r.findings);
    rec.data.insert("tests".into(), tally.to_json());
    if findings.unlisted_passed + findings.unlisted_failed > 0 {
        rec.data.insert(
            "results_unlisted".into(),
            json!({"passed": findings.unlisted_passed, "failed": findings.unlisted_failed}),
        );
        rec.notes.push(format!(
            "{} passed and {} failed or errored cases are counted in `tests` but not listed as results (the manifest lists the first {} passed and {} failed)",
            findings.unlisted_passed,
            findings.unlisted_failed,
            crate::caps::PASSED_LISTED,
            crate::caps::FAILED_LISTED
        ));
    }
    if findings.more_suite_nodes > 0 {
        rec.notes.push(format!(
            "{} more suite nodes are not listed (the first {} are)",
            findings.more_suite_nodes,
            crate::caps::JUNIT_FINDINGS
        ));
    }
    if !findings.suite_nodes.is_empty() {
        rec.data.insert(
            "suite_nodes".into(),
            findings
                .suite_nodes
                .iter()
                .map(|(n, o, _)| json!({"name": n, "outcome": o}))
                .collect(),
        );
    }
}

/// Whether the reports can decide the outcome at all; `false` with an ERROR recorded when
/// not (inconsistent, a failed suite, an idle report, a non-zero exit with nothing failing).
fn trusted(rec: &mut RecordParts, runner: &str, exit: Option<i32>, r: &Reports) -> bool {
    let (tally, findings) = (&r.tally, &r.findings);
    // A report that contradicts itself, or a suite that broke outside its tests, is not
    // a conformance result either way: ERROR, with the cases it did list kept.
    if let Some(why) = findings.inconsistent.first() {
        error(rec, format!("{why}; not trusted"));
        return false;
    }
    if !findings.suite_failures.is_empty() {
        error(
            rec,
            format!(
                "the suite itself failed: {}",
                findings.suite_failures.join("; ")
            ),
        );
        return false;
    }
    if !r.idle.is_empty() {
        error(
            rec,
            format!("no conformance test ran: {}", r.idle.join("; ")),
        );
        return false;
    }
    if exit != Some(0) {
        // e2e.test and openshift-tests exit non-zero when a test failed: then the JUnit
        // decides. A non-zero exit with no failing test in the JUnit means the runner
        // broke in a way its report does not show: never a pass.
        if tally.failed + tally.errors == 0 {
            error(
                rec,
                format!(
                    "the {} runner {} but its JUnit reports no failing test: not trusted",
                    runner,
                    status(exit)
                ),
            );
            return false;
        }
        rec.notes.push(format!(
            "the {} runner {}; its JUnit, with failing tests, decides the outcome",
            runner,
            status(exit)
        ));
    }
    true
}

/// The outcome from the results (an ERROR when no test ran), and the failing names said.
fn decide(rec: &mut RecordParts, r: &Reports) {
    let (tally, findings) = (&r.tally, &r.findings);
    rec.outcome = match Outcome::aggregate(rec.results.iter().map(|r| r.outcome)) {
        Some(o) => o,
        None => {
            error(
                rec,
                format!(
                    "no conformance test ran: the JUnit reports hold {} skipped cases{} and nothing else",
                    tally.skipped,
                    if findings.suite_nodes.is_empty() {
                        String::new()
                    } else {
                        format!(" and {} suite nodes (setup, not tests)", findings.suite_nodes.len())
                    }
                ),
            );
            return;
        }
    };
    let failed: Vec<&str> = rec
        .results
        .iter()
        .filter(|r| !r.outcome.is_pass())
        .map(|r| r.testcase.as_str())
        .collect();
    if !failed.is_empty() {
        rec.notes.push(format!(
            "{} of {} conformance tests failed or errored",
            failed.len(),
            rec.results.len()
        ));
        // The names, also with --quiet: they are why the stage failed.
        progress::say_lines(
            &format!(
                "conform {}: {} conformance tests did not pass:",
                rec.outcome,
                failed.len()
            ),
            &failed
                .iter()
                .map(|n| crate::redact::redact(n))
                .collect::<Vec<_>>(),
        );
    }
}

/// Runs the teardown; its trouble is noted, and an ERROR only when nothing else went wrong
/// (a FAILED suite stays FAILED: that is the news, the leftover cluster a note).
fn teardown(cx: &mut Ctx, rec: &mut RecordParts, argv: &[String], limit: Duration) -> Result<()> {
    let g = cancel::run(
        cx.log(),
        &crate::exec::Cmd::new(&argv[0]).args(&argv[1..]),
        crate::duration::limit(limit),
        false,
        OnSignal::Ignore,
    )?;
    rec.data.insert("teardown_exit".into(), json!(g.done.code));
    let trouble = match g.stopped {
        Some(_) => Some(format!(
            "the teardown ran past --teardown-timeout {} and was killed",
            crate::duration::show(limit)
        )),
        None if !g.done.success() => Some(format!(
            "the teardown {} {}: the cluster may be left running",
            argv[0],
            status(g.done.code)
        )),
        None => None,
    };
    if let Some(msg) = trouble {
        if rec.outcome == Outcome::Passed {
            error(rec, msg);
        } else {
            rec.notes.push(msg);
        }
    }
    Ok(())
}

/// The secrets of a kubeconfig this run read (given, or left by the installer): never
/// written anywhere the stage records (stderr, notes, data, results, the stage log).
fn add_secrets(file: &Path) {
    crate::redact::register_found(kubeconfig::secrets(file));
}

/// A runner's JUnit file with the secrets scrubbed, before it is stored (a runner may
/// write a request's `Authorization: Bearer TOKEN` into a failure message). The scrubbed
/// text replaces the file by a rename, never writing through a link the runner made.
fn scrub_file(f: &Path) -> std::io::Result<()> {
    // Read whole (up to its cap) only when it holds a secret: else streamed past once.
    if !holds_secret(f)? {
        return Ok(());
    }
    let bytes = crate::caps::read_all(std::fs::File::open(f)?, crate::caps::JUNIT_FILE)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    let clean = crate::redact::redact(&text);
    if clean != text {
        let tmp = f.with_extension("xml.scrubbed");
        std::fs::write(&tmp, clean.as_bytes())?;
        std::fs::rename(&tmp, f)?;
    }
    Ok(())
}

/// Whether `f` holds any of the secrets, read in
/// chunks that overlap by the longest secret, so one across a chunk's end is seen.
fn holds_secret(f: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let secrets = crate::redact::secrets();
    if secrets.is_empty() {
        return Ok(false);
    }
    let overlap = secrets.iter().map(String::len).max().unwrap_or(0) + 4;
    let mut file = crate::caps::Capped::new(std::fs::File::open(f)?, crate::caps::JUNIT_FILE);
    let mut window: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1024 * 1024];
    loop {
        let n = file
            .read(&mut chunk)
            .map_err(|e| std::io::Error::other(crate::caps::ReadError::from(e).to_string()))?;
        if n == 0 {
            return Ok(false);
        }
        window.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&window);
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            return Ok(true);
        }
        let keep = window.len().min(overlap);
        window.drain(..window.len() - keep);
    }
}

fn scrub_value(v: &mut Value) {
    match v {
        Value::String(s) => *s = crate::redact::redact(s),
        Value::Array(a) => a.iter_mut().for_each(scrub_value),
        Value::Object(o) => o.values_mut().for_each(scrub_value),
        _ => {}
    }
}

/// Scrubs what the record holds and the stage log, before they are stored.
fn scrub_record(cx: &mut Ctx, rec: &mut RecordParts) {
    for n in rec.notes.iter_mut() {
        *n = crate::redact::redact(n);
    }
    for v in rec.data.values_mut() {
        scrub_value(v);
    }
    for r in rec.results.iter_mut() {
        r.testcase = crate::redact::redact(&r.testcase);
        r.note = r.note.as_deref().map(crate::redact::redact);
    }
    if let Err(e) = cx.log().rewrite(crate::redact::redact) {
        error(rec, format!("cannot scrub the stage log: {e}"));
    }
}

/// An ERROR with its reason (redacted by `RecordParts::error`): in the record, and on stderr
/// also with --quiet.
fn error(rec: &mut RecordParts, msg: String) {
    rec.error(&msg);
}

fn status(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exited {c}"),
        None => "was killed by a signal".into(),
    }
}

/// The last line a command wrote to the log (already redacted there), for a one-line reason.
fn last_output(cx: &mut Ctx) -> String {
    let tail = cx.log().tail(20);
    tail.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("# ") && !l.starts_with("$ "))
        .map_or_else(|| "no output".into(), progress::plain)
}

fn runner_argv(r: &Runner) -> Option<Vec<String>> {
    match r {
        Runner::Custom(argv) => Some(argv.clone()),
        _ => None,
    }
}

/// The kubeconfig the run uses, with the cluster it names and its digest when given by
/// `--kubeconfig` (read and checked at once: a bad one is bad usage, before anything runs);
/// else where the installer must leave it, and nothing yet.
fn given_cluster(
    a: &Args,
    workdir: &Path,
) -> Result<(PathBuf, Option<kubeconfig::Cluster>, Option<String>)> {
    Ok(match &a.kubeconfig {
        Some(k) => {
            add_secrets(k);
            let cluster = kubeconfig::load(k, a.context.as_deref())
                .and_then(|c| ready::client(&c).map(|_| c))
                .map_err(|why| FciError::input(k, why))?;
            let abs = std::path::absolute(k)?;
            let (digest, _) = crate::digest::sha256_file(&abs)?;
            (abs, Some(cluster), Some(digest))
        }
        None => (workdir.join("kubeconfig"), None, None),
    })
}

/// A user-given program must exist before a cluster is made for it (exit 3 otherwise).
fn find_program(flag: &str, program: &str) -> Result<(), FciError> {
    if crate::tool::which(program).is_some() {
        Ok(())
    } else {
        Err(FciError::ToolMissingHint {
            tool: program.into(),
            hint: format!("the program of {flag} is not an executable file; check the path"),
        })
    }
}
