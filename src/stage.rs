//! The stage driver: what every stage shares, in one order. A stage implements [`Stage`]
//! (its name, its tools, its inputs, its work); [`drive`] does the rest:
//!
//! read the manifest → open the workspace → skip when an earlier stage did not pass → check
//! the tools → plan (resolve and verify inputs) → input digest → reuse → lock → reuse again →
//! execute → finish the record and store its log → cache → write the manifest → exit code.
//!
//! An infrastructure failure after the manifest was read still writes a manifest, with an
//! ERROR record; a mistake in the package (`FciError::Package`: a spec, tests.yml or
//! gating.yaml that does not parse) a FAILED record, exit 1; the caller's bad input (exit 2)
//! writes none.

use crate::exec::Log;
use crate::hostcache::HostCache;
use crate::manifest::{
    Artifact, ArtifactKind, Manifest, Outcome, StageName, StageRecord, TestResult,
};
use crate::progress;
use crate::workspace::{CacheEntry, Workspace};
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The flags every stage takes.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Input manifest ('-' for stdin)
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Output manifest ('-' for stdout), written atomically
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// Run even when the inputs match a recorded result
    #[arg(long)]
    pub no_cache: bool,
    /// Run even when an earlier stage did not pass
    #[arg(long)]
    pub force: bool,
    /// The namespace of the run's test names, messages and results (default
    /// fedora-ci.koji-build, or fci.yaml's ci.namespace); fixed by the run's first stage
    #[arg(long, env = "FCI_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// The URL of the CI job running this stage (default: Jenkins' BUILD_URL): the messages'
    /// run.url and log links, the results' ref_url
    #[arg(long, env = "FCI_RUN_URL", value_name = "URL")]
    pub run_url: Option<String>,
    /// The URL the workspace's files are published under: logs are linked below it (default:
    /// fci.yaml's ci.artifacts_url); fixed by the run's first stage
    #[arg(long, env = "FCI_ARTIFACTS_URL", value_name = "URL")]
    pub artifacts_url: Option<String>,
    /// The pipeline's ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes
    /// it) that signs the stage's attestations; without one they are written unsigned. The
    /// file is read, never recorded
    #[arg(long, env = "FCI_SIGNING_KEY", value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// The builder id the attestations name (SLSA's runDetails.builder.id: who ran the work;
    /// default tag:fci,2026:builder/<host name>)
    #[arg(long, env = "FCI_BUILDER_ID", value_name = "URI")]
    pub builder_id: Option<String>,
}

use crate::tool::Tool;

/// What a stage's plan decided.
pub enum Plan<W> {
    /// Run `W` (what the plan resolved, handed to `execute`); this JSON identifies the run's
    /// inputs (with fci's version and the tools' versions, it is the input digest that keys
    /// reuse and the lock).
    Run(Value, W),
    /// Nothing to run: record this outcome and note at once (e.g. no tests in the tree).
    Instant(Outcome, String),
    /// Not due yet (an image at most once per interval): a SKIPPED record with this note and
    /// data, marked `not_due`, exit 0. Later stages skip with it and exit 0 too: nothing failed.
    NotDue(String, Map<String, Value>),
}

/// Whether a recorded result with the same input digest may stand for a new run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Same inputs, same verdict: a PASSED or FAILED record is reused (never an ERROR, nor a
    /// record its stage marked not cacheable).
    Cached,
    /// Every run does the work: its result depends on more than its inputs (a live cluster,
    /// the results recorded by now). Nothing is cached; the inputs only key the lock.
    Never,
}

/// What a stage does on SIGINT or SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signals {
    /// fci dies, killing the commands it runs (exec::kill_groups_on_signal).
    Die,
    /// The signal is noted (`Ctx::cancelled`), a wait for the stage's lock ends, and the
    /// stage decides: it may have something to undo (a half-installed cluster).
    Note,
}

impl Signals {
    /// Makes this the process's way with SIGINT and SIGTERM.
    pub fn install(self) {
        match self {
            // Commands in process groups of their own go too (their death signal covers the
            // rest).
            Signals::Die => crate::exec::kill_groups_on_signals(),
            Signals::Note => crate::cancel::install(),
        }
    }
}

/// What a command that is not a stage (`fci watch`, which reads no manifest) takes from the
/// driver: the signal policy, the workspace opened and checked as every stage opens it, and
/// a lock held for the session's life, which a second session does not wait for (a cron or
/// CI job must not pile up behind a running one).
pub struct Session {
    pub ws: Workspace,
    pub lock: std::fs::File,
}

impl Session {
    pub fn start(workspace: &Path, lock: &str, what: &str, signals: Signals) -> Result<Session> {
        signals.install();
        let ws = Workspace::open(workspace)?;
        let Some(lock) = ws.try_lock(lock)? else {
            return Err(crate::error::FciError::Infra(format!(
                "another {what} is running on this workspace ({}); stop it or use another --workspace",
                ws.lock_path(lock).display()
            ))
            .into());
        };
        Ok(Session { ws, lock })
    }
}

/// What a stage is given: the workspace, the manifest, its scratch directory and log.
pub struct Ctx<'a> {
    pub ws: &'a Workspace,
    pub manifest: &'a mut Manifest,
    /// Where the manifest came from, named in bad-input errors about it.
    pub origin: PathBuf,
    pub run: StageRun,
    pub host: HostCache,
    tools: BTreeMap<String, String>,
}

impl Ctx<'_> {
    /// Fails (exit 3, naming the package to install) when `tool` is missing; otherwise its
    /// version joins the record and the input digest.
    pub fn require(&mut self, tool: Tool) -> Result<PathBuf> {
        let path = tool.find()?;
        if !self.tools.contains_key(tool.program) {
            let v = self.host.version(tool.program);
            self.tools.insert(tool.program.to_string(), v);
        }
        Ok(path)
    }

    /// Why the stage was asked to stop (a noted SIGINT or SIGTERM), if it was: only for a
    /// stage that notes signals (`Signals::Note`); any other dies of them.
    pub fn cancelled(&self) -> Option<&'static str> {
        crate::cancel::requested()
    }

    /// The stage's private scratch directory.
    pub fn dir(&self) -> PathBuf {
        self.run.dir()
    }

    pub fn log(&mut self) -> &mut Log {
        &mut self.run.log
    }

    /// An artifact the stage consumes, verified (type, confinement, content) before use.
    pub fn consume(&self, a: &Artifact, kind: ArtifactKind) -> Result<PathBuf> {
        Ok(self.ws.verify(a, kind, &self.origin)?)
    }
}

/// One stage of the pipeline. A new stage writes only its own work.
pub trait Stage {
    /// What `plan` resolved for `execute` (the verified inputs, the chosen backend).
    type Work;
    fn name(&self) -> StageName;
    /// Tools every run needs, checked before any work (more can be required while planning).
    fn tools(&self) -> Vec<Tool> {
        Vec::new()
    }
    /// Whether this run starts a new manifest instead of reading one (a build given a
    /// source and no -m).
    fn starts_run(&self) -> bool {
        false
    }
    /// Whether it runs whatever earlier stages did (a report of a failed run).
    fn runs_after_failures(&self) -> bool {
        false
    }
    fn reuse(&self) -> Reuse {
        Reuse::Cached
    }
    fn on_signal(&self) -> Signals {
        Signals::Die
    }
    /// Resolves and verifies the inputs; nothing that takes long or writes results.
    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>>;
    /// Does the work, filling `rec` (outcome, results, notes, data); returns its artifacts.
    fn execute(
        &mut self,
        cx: &mut Ctx,
        work: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>>;
    /// Brings a reused record up to today's facts.
    fn reused(&self, _manifest: &mut Manifest) {}
    /// Adds what the stage still knows to the record of a mistake in the package (`at`: the
    /// dist-git file and line it names), so that its messages reach whom they must.
    fn mistaken(&self, _at: &str, _manifest: &mut Manifest, _rec: &mut RecordParts) {}
    /// Says what happened, once the record is final (not with --quiet).
    fn summary(&self, _record: &StageRecord, _manifest: &Manifest) {}
}

/// Runs `stage` from start to exit code.
pub fn drive<S: Stage>(stage: &mut S, common: &CommonArgs, workspace: &Path) -> Result<i32> {
    stage.on_signal().install();
    let mut manifest = match &common.manifest {
        None if stage.starts_run() => Manifest::new(uuid::Uuid::new_v4().to_string()),
        m => Manifest::read(m.as_deref().unwrap_or(Path::new("-")))?,
    };
    let origin = common.manifest.clone().unwrap_or_else(|| "-".into());
    // How the run is published: fixed by its first stage, checked against by the others.
    let given = crate::bus::identity::Given {
        namespace: common.namespace.as_deref(),
        run_url: common.run_url.as_deref(),
        artifacts_url: common.artifacts_url.as_deref(),
    };
    crate::bus::identity::settle(&mut manifest, &given, workspace)?;
    let result = run(stage, common, workspace, &mut manifest, origin);
    error_record(
        result,
        &mut manifest,
        stage.name(),
        &common.output,
        workspace,
    )
}

fn run<S: Stage>(
    stage: &mut S,
    common: &CommonArgs,
    workspace: &Path,
    manifest: &mut Manifest,
    origin: PathBuf,
) -> Result<i32> {
    let name = stage.name();
    crate::config::use_state_of(manifest);
    // A key that cannot be read stops the stage before it does anything (exit 2).
    let signer = crate::provenance::attest::Signer::new(
        common.signing_key.as_deref(),
        common.builder_id.as_deref(),
    )?;
    let ws = Workspace::open(workspace)?;
    // Until the manifest is written, nothing this stage stores or reuses may be collected.
    let _in_use = crate::gc::lock::in_use(&ws)?;
    if name != StageName::Report {
        // A run fci keeps records of goes on only from those records (report checks them
        // itself, and more).
        crate::run_records::continues(&ws, manifest, &origin)?;
    }
    if !common.force && !stage.runs_after_failures() {
        if let Some(code) = skip_if_blocked(manifest, name) {
            keep_last(&ws, manifest)?;
            manifest.write(&common.output)?;
            return Ok(code);
        }
    }
    let run = StageRun::start(&ws, name)?;
    let host = HostCache::open(&ws);
    let mut cx = Ctx {
        ws: &ws,
        manifest,
        origin,
        run,
        host,
        tools: BTreeMap::new(),
    };
    let mut digest = String::new();
    // `lock` is None when the machinery broke: no summary then, the error said it all.
    let (rec, mut artifacts, lock) = match steps(stage, common, &mut cx, &signer, &mut digest) {
        Ok(Step::Done(code)) => return Ok(code),
        Ok(Step::Record(rec, artifacts, lock)) => (*rec, artifacts, Some(lock)),
        // A mistake in the package found before its work began (a spec, tests.yml or
        // gating.yaml that does not parse): its FAILED verdict, recorded and sent like any.
        Err(e) if crate::error::is_package(&e) => {
            let mut rec = RecordParts::new(name, Outcome::Passed, digest);
            rec.tools = cx.tools.clone();
            rec.mistake(&e, &mut cx.run.log);
            if let Some(at) = rec.mistake_at() {
                stage.mistaken(&at, cx.manifest, &mut rec);
            }
            // Its start is told before its end, as for any stage (else the report would
            // send `running` after the end: the last word a consumer sees).
            crate::bus::emit::started(cx.ws, cx.manifest, name, &cx.run.started_at);
            (rec, Vec::new(), None)
        }
        // Bad input: no manifest at all.
        Err(e) if crate::error::exit_code_of(&e) != crate::error::exit::INFRA => return Err(e),
        // The machinery broke once the stage had started: an ERROR record that keeps the
        // stage's log, since that is where the reason is (never cached).
        Err(e) => {
            let msg = crate::redact::redact(&crate::error::one_line(&e));
            progress::say(&format!("error: {msg}"));
            cx.run.log.line(&format!("# error: {msg}"));
            let mut rec = RecordParts::new(name, Outcome::Error, digest);
            rec.tools = cx.tools.clone();
            rec.notes.push(msg);
            // Told once (a start already told has the same id and body).
            crate::bus::emit::started(cx.ws, cx.manifest, name, &cx.run.started_at);
            (rec, Vec::new(), None)
        }
    };
    cx.host.save();
    let Ctx { manifest, run, .. } = cx;
    let cacheable = rec.cacheable;
    let (record, log) = run.finish(&ws, rec)?;
    artifacts.push(log);
    let outcome = record.outcome;
    commit(&ws, manifest, record, artifacts, cacheable)?;
    crate::provenance::attest::last_record(&ws, manifest, &signer)?;
    keep_last(&ws, manifest)?;
    // The stage ran (reused and instant records are reported by `fci report`, whose message
    // ids come from the same records).
    if let Some(r) = manifest.stages.last() {
        crate::bus::emit::ended(&ws, manifest, r);
    }
    if let Some(r) = manifest.stages.last() {
        if !progress::quiet() && lock.is_some() {
            stage.summary(r, manifest);
        }
    }
    manifest.write(&common.output)?;
    Ok(outcome.exit_code())
}

/// Keeps the record fci just added to `manifest` as this run's (crate::run_records), which is
/// what `report --promote` checks an edited manifest against.
fn keep_last(ws: &Workspace, manifest: &Manifest) -> Result<()> {
    crate::run_records::keep(ws, manifest)
}

/// Where the shared steps ended: with an exit code (skipped, instant, reused), or with a record
/// to finish, its artifacts, and the lock held until the record is committed.
enum Step {
    Done(i32),
    Record(Box<RecordParts>, Vec<Artifact>, std::fs::File),
}

fn steps<S: Stage>(
    stage: &mut S,
    common: &CommonArgs,
    cx: &mut Ctx,
    signer: &crate::provenance::attest::Signer,
    digest_out: &mut String,
) -> Result<Step> {
    let name = stage.name();
    for t in stage.tools() {
        cx.require(t)?;
    }
    let (inputs, work) = match stage.plan(cx)? {
        Plan::Run(inputs, work) => (inputs, work),
        Plan::Instant(outcome, note) => {
            progress::note(&format!("{name} {outcome}: {note}"));
            cx.manifest
                .stages
                .push(StageRecord::instant(name, outcome, note));
            keep_last(cx.ws, cx.manifest)?;
            cx.manifest.write(&common.output)?;
            return Ok(Step::Done(outcome.exit_code()));
        }
        Plan::NotDue(note, data) => {
            progress::note(&format!("{name} SKIPPED: {note}"));
            let mut rec = StageRecord::instant(name, Outcome::Skipped, note);
            rec.data = data;
            rec.data.insert("not_due".into(), Value::Bool(true));
            cx.manifest.stages.push(rec);
            keep_last(cx.ws, cx.manifest)?;
            cx.manifest.write(&common.output)?;
            return Ok(Step::Done(crate::error::exit::PASSED));
        }
    };
    let digest = input_digest(&json!({
        "stage": name.as_str(),
        "fci": env!("CARGO_PKG_VERSION"),
        "tools": cx.tools,
        "inputs": inputs,
    }));
    digest_out.clone_from(&digest);
    let cached = stage.reuse() == Reuse::Cached;
    let reuse_now = |cx: &mut Ctx| -> Result<Option<i32>> {
        if !cached || common.no_cache || reuse(cx.ws, cx.manifest, name, &digest).is_none() {
            return Ok(None);
        }
        stage.reused(cx.manifest);
        // Reused, it is this run's record too, attested by this run.
        crate::provenance::attest::last_record(cx.ws, cx.manifest, signer)?;
        keep_last(cx.ws, cx.manifest)?;
        cx.manifest.write(&common.output)?;
        Ok(cx.manifest.stages.last().map(|s| s.outcome.exit_code()))
    };
    if let Some(code) = reuse_now(cx)? {
        return Ok(Step::Done(code));
    }
    let lock_name = format!("{name}-{}", &digest[7..]);
    let lock = match stage.on_signal() {
        Signals::Die => cx.ws.lock(&lock_name)?,
        Signals::Note => cx.ws.lock_until(&lock_name, || {
            crate::cancel::requested().map(|sig| format!("interrupted by {sig}"))
        })?,
    };
    // Another run with the same inputs may have finished while this one waited for the lock.
    if let Some(code) = reuse_now(cx)? {
        return Ok(Step::Done(code));
    }
    let mut rec = RecordParts::new(name, Outcome::Passed, digest.clone());
    rec.tools = cx.tools.clone();
    rec.cacheable = cached;
    // It runs now: its record will start when its StageRun did.
    crate::bus::emit::started(cx.ws, cx.manifest, name, &cx.run.started_at);
    let artifacts = match stage.execute(cx, work, &mut rec) {
        // A mistake in the package found on the way (a spec that does not parse, a source
        // nobody provides): its FAILED verdict, with what the record holds by then.
        Err(e) if crate::error::is_package(&e) => {
            rec.mistake(&e, &mut cx.run.log);
            if let Some(at) = rec.mistake_at() {
                stage.mistaken(&at, cx.manifest, &mut rec);
            }
            Vec::new()
        }
        other => other?,
    };
    Ok(Step::Record(Box::new(rec), artifacts, lock))
}

/// A stage in progress: its timing, scratch directory and log.
pub struct StageRun {
    pub name: StageName,
    pub started_at: String,
    started: Instant,
    pub scratch: crate::workspace::Scratch,
    pub log: Log,
}

impl StageRun {
    pub fn start(ws: &Workspace, name: StageName) -> Result<Self> {
        ws.collect_stale();
        let scratch = ws.scratch(&format!("{name}-"))?;
        // `-v`: the stage's log, streamed to stderr as it is written.
        let log = Log::create(&scratch.path().join(format!("{name}.log")))?
            .streamed(crate::progress::verbose());
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

    /// A new directory `name` of the scratch directory for package code to write: a file
    /// system of its own of `limits.scratch` bytes, plus `room` for what fci puts there,
    /// where one can be made (`crate::volume`), so that the kernel bounds what package code
    /// writes there; a plain directory, bounded by the watcher, elsewhere. It stays mounted
    /// until the stage ends.
    pub fn bounded_dir(
        &mut self,
        name: &str,
        limits: &crate::limits::Limits,
        room: u64,
    ) -> Result<PathBuf> {
        let dir = self.dir().join(name);
        let image = self.dir().join(format!(".{name}.img"));
        if let Some(v) =
            crate::volume::Volume::make(&dir, &image, limits.scratch, room, &mut self.log)?
        {
            self.scratch.keep(v);
        }
        Ok(dir)
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
            ArtifactKind::Log,
            &format!("{}.log", self.name),
            self.name,
        )?;
        rec.notes.dedup();
        // How the package code's limits were enforced (cgroups, or fci's watcher).
        if let (Some(Value::Object(limits)), Some(how)) =
            (rec.data.get_mut("limits"), crate::limits::enforced_by())
        {
            limits.insert("enforced_by".into(), Value::String(how));
        }
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
            run_url: crate::manifest::job_url(),
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
    stage: StageName,
    pub outcome: Outcome,
    pub backend: Option<String>,
    pub tools: BTreeMap<String, String>,
    pub input_digest: String,
    pub results: Vec<TestResult>,
    pub notes: Vec<String>,
    pub data: Map<String, Value>,
    /// False when the outcome's cause is not the input (the host lacked a tool, rpmbuild was
    /// killed): never reused, even when FAILED.
    pub cacheable: bool,
}

impl RecordParts {
    pub fn new(stage: StageName, outcome: Outcome, input_digest: String) -> Self {
        RecordParts {
            stage,
            outcome,
            backend: None,
            tools: BTreeMap::new(),
            input_digest,
            results: Vec::new(),
            notes: Vec::new(),
            data: Map::new(),
            cacheable: true,
        }
    }

    /// The stage ends in ERROR: the host's or a tool's doing, not the input's. Said at once,
    /// kept in the notes (redacted), never reused.
    pub fn error(&mut self, msg: &str) {
        let msg = crate::redact::redact(msg);
        progress::say(&format!("{} ERROR: {msg}", self.stage));
        self.outcome = Outcome::Error;
        self.cacheable = false;
        self.notes.push(msg);
    }

    /// The stage FAILED of a mistake in the package (`crate::error::FciError::Package`):
    /// said at once, in the log and the notes (redacted), naming the dist-git file and line.
    /// Never reused: what it depends on may lie outside the inputs (a source uploaded to the
    /// lookaside since), and finding it again is cheap.
    pub fn mistake(&mut self, err: &anyhow::Error, log: &mut Log) {
        let msg = crate::redact::redact(&crate::error::one_line(err));
        progress::say(&format!("{} FAILED: {msg}", self.stage));
        log.line(&format!("# {} FAILED: {msg}", self.stage));
        self.outcome = Outcome::Failed;
        self.cacheable = false;
        self.notes.push(msg);
        // Where, for what reads it (the Fedora test a broken tests.yml or plan fails).
        let at = err.chain().find_map(|e| match e.downcast_ref() {
            Some(crate::error::FciError::Package { at, .. }) => Some(at.clone()),
            _ => None,
        });
        if let Some(at) = at {
            self.data
                .insert("mistake".into(), serde_json::json!({ "at": at }));
        }
    }

    /// The dist-git file and line of the package's mistake this record is about.
    pub fn mistake_at(&self) -> Option<String> {
        self.data
            .get("mistake")
            .and_then(|m| m.get("at"))
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// A warning: said now (not with --quiet), and kept in the record's notes.
    pub fn warn(&mut self, msg: &str) {
        let msg = crate::redact::redact(msg);
        progress::note(&format!("warning: {msg}"));
        self.notes.push(msg);
    }
}

/// Appends a finished stage to the manifest, and caches it when its outcome is the input's:
/// PASSED or FAILED, never an ERROR (the host's or the tools' doing, not the input's).
pub fn commit(
    ws: &Workspace,
    manifest: &mut Manifest,
    record: StageRecord,
    artifacts: Vec<Artifact>,
    cacheable: bool,
) -> Result<()> {
    if cacheable && matches!(record.outcome, Outcome::Passed | Outcome::Failed) {
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
        .retain(|a| a.stage != record.name || a.kind == ArtifactKind::Log);
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
fn reuse(
    ws: &Workspace,
    manifest: &mut Manifest,
    stage: StageName,
    digest: &str,
) -> Option<Outcome> {
    let entry = ws.cache_get(stage.as_str(), digest)?;
    let mut record = entry.record;
    record.cached = true;
    // Reported by this job: its links are this job's.
    record.run_url = crate::manifest::job_url();
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

/// Records a SKIPPED stage when an earlier stage did not pass; returns its exit code.
fn skip_if_blocked(manifest: &mut Manifest, stage: StageName) -> Option<i32> {
    let blocker = manifest.blocking_stage(stage)?;
    let (bname, boutcome) = (blocker.name.clone(), blocker.outcome);
    let not_due = is_not_due(blocker);
    let note = if not_due {
        format!("skipped: stage `{bname}` was not due")
    } else {
        format!("skipped: stage `{bname}` is {boutcome} (--force runs it anyway)")
    };
    let mut rec = StageRecord::instant(stage, Outcome::Skipped, note);
    if not_due {
        rec.data.insert("not_due".into(), Value::Bool(true));
    }
    manifest.stages.push(rec);
    progress::note(&format!("{stage} SKIPPED: stage `{bname}` is {boutcome}"));
    // The pipeline's status stays that of the stage that stopped it; a stage that was not
    // due stopped nothing.
    Some(if not_due {
        crate::error::exit::PASSED
    } else {
        boutcome.exit_code()
    })
}

/// A SKIPPED record of a stage that was not due (or skipped after one that was not).
pub fn is_not_due(r: &StageRecord) -> bool {
    r.outcome == Outcome::Skipped && r.data.get("not_due") == Some(&Value::Bool(true))
}

/// Ends a stage: an infrastructure failure (exit 3) after the manifest was read still yields
/// a manifest, with an ERROR record saying what broke, so the pipeline sees it; bad input
/// (exit 2) yields none.
fn error_record(
    result: Result<i32>,
    manifest: &mut Manifest,
    stage: StageName,
    output: &Path,
    workspace: &Path,
) -> Result<i32> {
    let err = match result {
        Ok(code) => return Ok(code),
        Err(e) if crate::error::exit_code_of(&e) != crate::error::exit::INFRA => return Err(e),
        Err(e) => e,
    };
    let msg = crate::redact::redact(&crate::error::one_line(&err));
    crate::progress::say(&format!("error: {msg}"));
    manifest
        .stages
        .push(StageRecord::instant(stage, Outcome::Error, msg));
    // Kept when the workspace can be opened: an ERROR record gates nothing anyway.
    if let Ok(ws) = Workspace::open(workspace) {
        let _ = keep_last(&ws, manifest);
    }
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
