//! The artifact manifest: the one document that flows between stages.
//!
//! Every struct keeps the fields it does not know in `extra`, so a manifest written by a newer
//! fci (or another tool) survives a pass through this one unchanged.

use crate::error::FciError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Component, Path};

pub const SCHEMA_PREFIX: &str = "fci/manifest/v";
pub const MAJOR: u64 = 1;

pub fn schema_id() -> String {
    format!("{SCHEMA_PREFIX}{MAJOR}")
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Manifest {
    pub schema: String,
    pub run: Run,
    #[serde(default)]
    pub subject: Subject,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Run {
    pub id: String,
    pub created: String,
    pub fci_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigRef>,
    /// How the run is published (its messages' and results' namespace, contact and links),
    /// fixed by the first stage that ran it, so that every message is the same whoever sends
    /// it later (`crate::bus::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Ci>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The run's identity as a CI pipeline (`run.ci`): what every message and result of the run
/// says of who ran it and where its files are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Ci {
    /// The namespace of its test names (`fedora-ci.koji-build`).
    pub namespace: String,
    pub contact: Contact,
    /// Who ran it (the messages' `artifact.issuer`).
    pub issuer: String,
    /// The machine architecture its stages ran on.
    pub architecture: String,
    /// The URL the workspace's files are published under (`--artifacts-url`), when there is
    /// one: logs are linked below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_url: Option<String>,
    /// The workspace as a `file:` URL on the host that ran the first stage: where the logs
    /// are when no URL is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_url: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The pipeline's contact as Fedora CI messages carry it (fci.yaml's `ci:`): only the fields
/// that are known.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Contact {
    pub name: String,
    pub team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The URL of the CI job this process runs in (`--run-url`, `FCI_RUN_URL`, Jenkins'
/// `BUILD_URL`), set once by the stage driver: each record it makes carries it.
static JOB_URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sets the job's URL (the first call wins).
pub fn set_job_url(url: Option<String>) {
    let _ = JOB_URL.set(url);
}

/// The URL of the CI job this process runs in, if known.
pub fn job_url() -> Option<String> {
    JOB_URL.get().cloned().flatten()
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ConfigRef {
    pub path: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Where the dist-git repository lives: a URL or an absolute local path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Base>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The known-good base a change is tested on.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Base {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostree_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostree_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Nevra {
    pub name: String,
    pub epoch: Option<u64>,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    /// A debuginfo or debugsource package (Fedora's names for them, which rpm's
    /// %debug_package gives): debugging data for the other packages, never part of a
    /// composed tree or a test subject, as Fedora's composes and CI install only what they ask for.
    pub fn is_debug(&self) -> bool {
        self.name.ends_with("-debuginfo") || self.name.ends_with("-debugsource")
    }
}

impl std::fmt::Display for Nevra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.epoch {
            Some(e) => write!(
                f,
                "{}-{}:{}-{}.{}",
                self.name, e, self.version, self.release, self.arch
            ),
            None => write!(
                f,
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
        }
    }
}

/// The pipeline's stages, in pipeline order: a stage is blocked only by stages before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageName {
    Watch,
    Build,
    Test,
    Compose,
    Integrate,
    Conform,
    Image,
    Smoke,
    Report,
}

impl StageName {
    pub const ALL: [StageName; 9] = [
        StageName::Watch,
        StageName::Build,
        StageName::Test,
        StageName::Compose,
        StageName::Integrate,
        StageName::Conform,
        StageName::Image,
        StageName::Smoke,
        StageName::Report,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StageName::Watch => "watch",
            StageName::Build => "build",
            StageName::Test => "test",
            StageName::Compose => "compose",
            StageName::Integrate => "integrate",
            StageName::Conform => "conform",
            StageName::Image => "image",
            StageName::Smoke => "smoke",
            StageName::Report => "report",
        }
    }

    pub fn parse(s: &str) -> Option<StageName> {
        StageName::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Artifact types of the manifest contract; types written by newer stages or other tools are
/// kept as they are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ArtifactKind {
    Srpm,
    Rpm,
    RpmRepo,
    DistGit,
    Log,
    OstreeCommit,
    Image,
    Kubeconfig,
    Junit,
    /// A DSSE envelope of an in-toto Statement about the stage's work (crate::provenance).
    Attestation,
    Other(String),
}

impl ArtifactKind {
    pub fn as_str(&self) -> &str {
        match self {
            ArtifactKind::Srpm => "srpm",
            ArtifactKind::Rpm => "rpm",
            ArtifactKind::RpmRepo => "rpm-repo",
            ArtifactKind::DistGit => "dist-git",
            ArtifactKind::Log => "log",
            ArtifactKind::OstreeCommit => "ostree-commit",
            ArtifactKind::Image => "image",
            ArtifactKind::Kubeconfig => "kubeconfig",
            ArtifactKind::Junit => "junit",
            ArtifactKind::Attestation => "attestation",
            ArtifactKind::Other(s) => s,
        }
    }
}

impl From<String> for ArtifactKind {
    fn from(s: String) -> Self {
        [
            ArtifactKind::Srpm,
            ArtifactKind::Rpm,
            ArtifactKind::RpmRepo,
            ArtifactKind::DistGit,
            ArtifactKind::Log,
            ArtifactKind::OstreeCommit,
            ArtifactKind::Image,
            ArtifactKind::Kubeconfig,
            ArtifactKind::Junit,
            ArtifactKind::Attestation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(ArtifactKind::Other(s))
    }
}

impl From<ArtifactKind> for String {
    fn from(k: ArtifactKind) -> String {
        k.as_str().to_string()
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Artifact {
    #[serde(rename = "type")]
    pub kind: ArtifactKind,
    pub name: String,
    /// Relative to the workspace root; never absolute, never `..`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nevra: Option<Nevra>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
    Info,
    NeedsInspection,
}

impl Outcome {
    /// ResultsDB semantics: INFO counts as a pass.
    pub fn is_pass(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Info)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
            Outcome::Error => "ERROR",
            Outcome::Skipped => "SKIPPED",
            Outcome::Info => "INFO",
            Outcome::NeedsInspection => "NEEDS_INSPECTION",
        }
    }
    /// The exit code a stage with this outcome ends with.
    pub fn exit_code(self) -> i32 {
        use crate::error::exit;
        match self {
            Outcome::Passed | Outcome::Info => exit::PASSED,
            Outcome::Failed | Outcome::NeedsInspection => exit::FAILED,
            Outcome::Error => exit::INFRA,
            Outcome::Skipped => exit::FAILED,
        }
    }
    /// Folds test-case outcomes into a stage outcome: any failure fails, else any error errs.
    pub fn aggregate(outcomes: impl IntoIterator<Item = Outcome>) -> Option<Outcome> {
        let mut any = false;
        let mut worst = Outcome::Passed;
        for o in outcomes {
            any = true;
            worst = match (worst, o) {
                (_, Outcome::Failed | Outcome::NeedsInspection) | (Outcome::Failed, _) => {
                    Outcome::Failed
                }
                (_, Outcome::Error) | (Outcome::Error, _) => Outcome::Error,
                _ => Outcome::Passed,
            };
        }
        any.then_some(worst)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StageRecord {
    pub name: String,
    pub outcome: Outcome,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    pub input_digest: String,
    #[serde(default)]
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TestResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Stage-specific facts (unmet BuildRequires, dist tag, run ids, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
    /// The URL of the CI job that made this record (a Jenkins build), when known: its
    /// messages' `run.url`, its results' `ref_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StageRecord {
    /// A record of a stage that did no work (skipped, or broke before it could), with the reason.
    pub fn instant(stage: StageName, outcome: Outcome, note: String) -> StageRecord {
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
            run_url: job_url(),
            extra: Map::new(),
        }
    }

    /// Whether this is a record of `stage` (a record's name is kept as written: a newer
    /// tool's stage has a name no [`StageName`] knows).
    pub fn is(&self, stage: StageName) -> bool {
        self.name == stage.as_str()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct TestResult {
    pub testcase: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every run of this test case, oldest first, when it ran more than once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Attempt {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
}

impl Manifest {
    /// The records that still speak for the change: the latest of each stage, unless a stage
    /// that comes before it in the pipeline ran again after it (a rebuild after the tests, a
    /// recompose after the integration: those results are about what was there before; a
    /// rerun the cache answered with the same record does not count). Reports are left out.
    pub fn current_stages(&self) -> Vec<&StageRecord> {
        let order = |name: &str| {
            StageName::ALL
                .iter()
                .position(|s| s.as_str() == name)
                .unwrap_or(0)
        };
        let stages: Vec<&StageRecord> = self
            .stages
            .iter()
            .filter(|s| !s.is(StageName::Report))
            .collect();
        // A rerun that reused the record of the very run `s` followed (same stage, same
        // inputs, from the cache: the same packages) changes nothing `s` was about.
        let same_as_before = |l: &StageRecord, before: &[&StageRecord]| {
            l.cached
                && before
                    .iter()
                    .rev()
                    .find(|p| p.name == l.name)
                    .is_some_and(|p| p.input_digest == l.input_digest)
        };
        stages
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                let later = &stages[i + 1..];
                !later.iter().any(|l| l.name == s.name)
                    && !later.iter().any(|l| {
                        order(&l.name) < order(&s.name) && !same_as_before(l, &stages[..*i])
                    })
            })
            .map(|(_, s)| *s)
            .collect()
    }

    pub fn new(run_id: String) -> Self {
        Manifest {
            schema: schema_id(),
            run: Run {
                id: run_id,
                created: crate::now_rfc3339(),
                fci_version: env!("CARGO_PKG_VERSION").to_string(),
                config: None,
                ci: None,
                extra: Map::new(),
            },
            subject: Subject::default(),
            artifacts: Vec::new(),
            stages: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Parses and validates a manifest; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, FciError> {
        if text.trim().is_empty() {
            return Err(FciError::input(
                origin,
                "empty manifest (expected a JSON object)",
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FciError::input(origin, format!("malformed JSON manifest: {e}")))?;
        let schema = value.get("schema").and_then(Value::as_str).ok_or_else(|| {
            FciError::input(origin, "not an fci manifest: missing string field `schema`")
        })?;
        let major = schema
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                FciError::input(
                    origin,
                    format!(
                        "unknown manifest schema `{schema}` (expected {})",
                        schema_id()
                    ),
                )
            })?;
        if major != MAJOR {
            return Err(FciError::input(
                origin,
                format!("unsupported manifest major version {major} (`{schema}`); this fci {} reads v{MAJOR}", env!("CARGO_PKG_VERSION")),
            ));
        }
        let m: Manifest = serde_json::from_value(value)
            .map_err(|e| FciError::input(origin, format!("invalid manifest: {e}")))?;
        m.validate(origin)?;
        Ok(m)
    }

    /// Checks the invariants serde cannot: confined artifact paths.
    pub fn validate(&self, origin: &Path) -> Result<(), FciError> {
        for (i, a) in self.artifacts.iter().enumerate() {
            check_relative(&a.path).map_err(|why| {
                FciError::input(origin, format!("artifacts[{i}].path `{}` {why}", a.path))
            })?;
        }
        for s in &self.stages {
            let logs = s
                .log
                .iter()
                .chain(s.results.iter().filter_map(|r| r.log.as_ref()));
            for l in logs {
                check_relative(l).map_err(|why| {
                    FciError::input(origin, format!("stage `{}` log path `{l}` {why}", s.name))
                })?;
            }
        }
        Ok(())
    }

    /// Reads a manifest from a file, or stdin when `path` is `-`, up to
    /// [`crate::caps::MANIFEST`] bytes: a larger one is bad input, never read whole.
    pub fn read(path: &Path) -> Result<Self, FciError> {
        let cap = crate::caps::MANIFEST;
        let read = |r: &mut dyn Read, shown: &Path| -> Result<String, FciError> {
            let bytes = crate::caps::read_all(r, cap).map_err(|e| match e {
                crate::caps::ReadError::TooLarge(t) => {
                    FciError::input(shown, format!("the manifest is {t} for a manifest"))
                }
                crate::caps::ReadError::Io(e) => {
                    FciError::input(shown, format!("cannot read manifest: {e}"))
                }
            })?;
            String::from_utf8(bytes)
                .map_err(|_| FciError::input(shown, "cannot read manifest: not UTF-8"))
        };
        if path == Path::new("-") {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                return Err(FciError::Usage(
                    "no manifest: give -m FILE or pipe one in (e.g. fci build PATH | fci test)"
                        .into(),
                ));
            }
            let stdin = Path::new("<stdin>");
            let text = read(&mut std::io::stdin().lock(), stdin)?;
            Self::parse(&text, stdin)
        } else {
            let mut f = std::fs::File::open(path)
                .map_err(|e| FciError::input(path, format!("cannot read manifest: {e}")))?;
            let text = read(&mut f, path)?;
            Self::parse(&text, path)
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serializes");
        s.push('\n');
        s
    }

    /// Writes to a file atomically, or to stdout when `path` is `-`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = self.to_json();
        if path == Path::new("-") {
            crate::files::to_stdout(text.as_bytes())
        } else {
            crate::files::write_output(path, text.as_bytes())
        }
    }

    /// The newest record of a stage.
    pub fn last_stage(&self, name: StageName) -> Option<&StageRecord> {
        self.stages.iter().rev().find(|s| s.name == name.as_str())
    }

    /// The newest record of an earlier stage (in pipeline order) that did not pass: the
    /// reason `stage` must skip. Later stages never block it (a rebuild after failed tests),
    /// nor do its own earlier records (a rerun, e.g. --failed-only).
    pub fn blocking_stage(&self, stage: StageName) -> Option<&StageRecord> {
        // Only the latest record of each stage counts: a rerun that passed clears an old failure.
        let mut latest: Vec<&StageRecord> = Vec::new();
        for s in self
            .stages
            .iter()
            .filter(|s| StageName::parse(&s.name).is_some_and(|n| n < stage))
        {
            latest.retain(|l| l.name != s.name);
            latest.push(s);
        }
        latest.into_iter().find(|s| !s.outcome.is_pass())
    }

    /// The composed commit: the newest `ostree-commit` artifact of the compose (another
    /// stage's `ostree-commit`, e.g. a tool's that runs later, is never it).
    pub fn composed_commit(&self) -> Option<&Artifact> {
        self.newest_of(ArtifactKind::OstreeCommit, StageName::Compose)
    }

    /// The image: the newest `image` artifact of the image stage.
    pub fn image(&self) -> Option<&Artifact> {
        self.newest_of(ArtifactKind::Image, StageName::Image)
    }

    fn newest_of(&self, kind: ArtifactKind, stage: StageName) -> Option<&Artifact> {
        self.artifacts_of(kind).rfind(|a| a.stage == stage.as_str())
    }

    /// The subject as ResultsDB and the messages name it: the source package's NVR, from the
    /// built SRPM's header, or for a failed build from its spec.
    pub fn subject_nvr(&self) -> Option<String> {
        self.artifacts_of(ArtifactKind::Srpm)
            .find_map(|a| a.nevra.as_ref())
            .map(|n| format!("{}-{}-{}", n.name, n.version, n.release))
            .or_else(|| {
                self.stages
                    .iter()
                    .rev()
                    .filter(|s| s.is(StageName::Build))
                    .find_map(|s| s.data.get("nvr").and_then(|v| v.as_str()))
                    .map(String::from)
            })
    }

    pub fn artifacts_of<'a>(
        &'a self,
        kind: ArtifactKind,
    ) -> impl DoubleEndedIterator<Item = &'a Artifact> + 'a {
        self.artifacts.iter().filter(move |a| a.kind == kind)
    }
}

/// A workspace-relative path: not absolute, no `..`, not empty.
pub fn check_relative(p: &str) -> Result<(), &'static str> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("is empty");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("escapes the workspace (`..`)"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is absolute (must be relative to the workspace)")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_earlier_stages_block() {
        let mut m = Manifest::new("r".into());
        let rec = |name: StageName, outcome| StageRecord::instant(name, outcome, String::new());
        m.stages.push(rec(StageName::Build, Outcome::Passed));
        m.stages.push(rec(StageName::Test, Outcome::Failed));
        // A rebuild is not blocked by the failed tests after it; a compose is.
        assert!(m.blocking_stage(StageName::Build).is_none());
        assert_eq!(m.blocking_stage(StageName::Compose).unwrap().name, "test");
        // The test stage's own earlier record never blocks its rerun.
        assert!(m.blocking_stage(StageName::Test).is_none());
        // A later passing rerun clears the failure.
        m.stages.push(rec(StageName::Test, Outcome::Passed));
        assert!(m.blocking_stage(StageName::Compose).is_none());
    }

    #[test]
    fn the_composed_commit_and_the_image_are_their_stages_own() {
        let mut m = Manifest::new("r".into());
        let art = |kind: ArtifactKind, stage: StageName, sha: &str| Artifact {
            kind,
            name: sha.into(),
            path: "ostree/repo".into(),
            sha256: sha.into(),
            size: 0,
            stage: stage.as_str().into(),
            nevra: None,
            extra: Map::new(),
        };
        assert!(m.composed_commit().is_none() && m.image().is_none());
        m.artifacts = vec![
            art(ArtifactKind::OstreeCommit, StageName::Compose, "composed"),
            art(ArtifactKind::Image, StageName::Image, "image"),
            // Later stages' artifacts of the same types are never the compose's or the image's.
            art(ArtifactKind::OstreeCommit, StageName::Integrate, "later"),
            art(ArtifactKind::Image, StageName::Conform, "installed"),
        ];
        assert_eq!(m.composed_commit().unwrap().sha256, "composed");
        assert_eq!(m.image().unwrap().sha256, "image");
    }

    #[test]
    fn artifact_types_round_trip_and_unknown_ones_survive() {
        for t in ["rpm", "srpm", "dist-git", "ostree-commit", "something-new"] {
            let k = ArtifactKind::from(t.to_string());
            assert_eq!(String::from(k), t);
        }
        assert_eq!(
            ArtifactKind::from("rpm-repo".to_string()),
            ArtifactKind::RpmRepo
        );
    }

    use super::*;

    fn minimal() -> String {
        Manifest::new("r1".into()).to_json()
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let mut v: Value = serde_json::from_str(&minimal()).unwrap();
        v["future"] = serde_json::json!({"k": [1, 2]});
        v["run"]["scheduler"] = "jenkins".into();
        let m = Manifest::parse(&v.to_string(), Path::new("m.json")).unwrap();
        let back: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back["future"], v["future"]);
        assert_eq!(back["run"]["scheduler"], "jenkins");
    }

    #[test]
    fn rejects_other_major_and_garbage() {
        let e = Manifest::parse(
            r#"{"schema":"fci/manifest/v2","run":{}}"#,
            Path::new("m.json"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported manifest major version 2"),
            "{e}"
        );
        let e = Manifest::parse(r#"{"schema": "fci/man"#, Path::new("m.json")).unwrap_err();
        assert!(e.to_string().starts_with("m.json: malformed JSON"), "{e}");
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(check_relative("objects/ab/x.rpm").is_ok());
        assert!(check_relative("../x").is_err());
        assert!(check_relative("a/../../x").is_err());
        assert!(check_relative("/etc/passwd").is_err());
    }

    #[test]
    fn a_stage_run_again_leaves_the_later_stages_results_behind() {
        let rec = |name: &str| -> StageRecord {
            serde_json::from_value(serde_json::json!({"name": name, "outcome": "PASSED",
                "started": "", "finished": "", "duration_s": 0.0, "input_digest": ""}))
            .unwrap()
        };
        let mut m = Manifest::new("r".into());
        let names = |m: &Manifest| -> Vec<String> {
            m.current_stages().iter().map(|s| s.name.clone()).collect()
        };
        for n in ["watch", "build", "test", "compose", "integrate", "report"] {
            m.stages.push(rec(n));
        }
        assert_eq!(
            names(&m),
            ["watch", "build", "test", "compose", "integrate"]
        );
        // Composed again: the integration was of the commit before.
        m.stages.push(rec("compose"));
        assert_eq!(names(&m), ["watch", "build", "test", "compose"]);
        // Built again: its tests, compose and integration were of the build before.
        m.stages.push(rec("integrate"));
        m.stages.push(rec("build"));
        assert_eq!(names(&m), ["watch", "build"]);
        // A rebuild the cache answered with the same record (same inputs, same packages)
        // leaves the tests of that build standing: a failure there still speaks.
        let mut m = Manifest::new("r".into());
        let mut build = rec("build");
        build.input_digest = "d1".into();
        let mut test = rec("test");
        test.outcome = Outcome::Failed;
        m.stages.extend([build.clone(), test]);
        let mut again = build.clone();
        again.cached = true;
        m.stages.push(again);
        assert_eq!(names(&m), ["test", "build"]);
        // Other inputs (the spec changed): the tests were of the build before.
        let mut other = build;
        other.input_digest = "d2".into();
        other.cached = true;
        m.stages.push(other);
        assert_eq!(names(&m), ["build"]);
    }

    #[test]
    fn aggregate_prefers_failure_over_error() {
        use Outcome::*;
        assert_eq!(Outcome::aggregate([Passed, Info]), Some(Passed));
        assert_eq!(Outcome::aggregate([Passed, Error]), Some(Error));
        assert_eq!(Outcome::aggregate([Error, Failed]), Some(Failed));
        assert_eq!(Outcome::aggregate([]), None);
    }

    #[test]
    fn debuginfo_and_debugsource_packages_are_told_by_their_names() {
        let n = |name: &str| Nevra {
            name: name.into(),
            epoch: None,
            version: "1".into(),
            release: "1".into(),
            arch: "x86_64".into(),
        };
        assert!(n("acpid-debuginfo").is_debug());
        assert!(n("acpid-debugsource").is_debug());
        assert!(!n("acpid").is_debug());
        assert!(!n("debuginfod").is_debug());
        assert!(!n("acpid-debuginfo-tools").is_debug());
    }
}
