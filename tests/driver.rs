//! The stage driver (`fci::stage::drive`) in-process, with a fake stage that runs no external
//! tool: skip after a failure, reuse, the reuse policy, the lock and a cancelled wait for it,
//! an ERROR record, a mistake in the package, bad input. Every stage gets this lifecycle from
//! the driver.

use fci::error::{exit, FciError};
use fci::manifest::{Artifact, Manifest, Outcome, StageName};
use fci::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Reuse, Signals, Stage};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod common;
/// No external tool (the driver runs in-process with a fake stage).
const NEEDS: common::Needs = &[];

/// What the fake stage does when it executes.
#[derive(Clone, Copy)]
enum Does {
    Pass,
    Fail,
    BreakHost,
    RejectInput,
    /// A mistake in the package found while planning (a tests.yml that is not YAML).
    MistakeInPlan,
    /// A mistake in the package found while working (a spec rpm cannot parse).
    MistakeInWork,
}

struct Fake {
    does: Does,
    reuse: Reuse,
    signals: Signals,
    executed: Arc<AtomicUsize>,
}

impl Fake {
    fn new(does: Does) -> Self {
        Fake {
            does,
            reuse: Reuse::Cached,
            signals: Signals::Die,
            executed: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Stage for Fake {
    /// The plan hands its work over by value.
    type Work = String;

    fn name(&self) -> StageName {
        StageName::Integrate
    }

    fn starts_run(&self) -> bool {
        true
    }

    fn reuse(&self) -> Reuse {
        self.reuse
    }

    fn on_signal(&self) -> Signals {
        self.signals
    }

    fn plan(&mut self, _cx: &mut Ctx) -> anyhow::Result<Plan<String>> {
        if let Does::RejectInput = self.does {
            return Err(FciError::Usage("--fake: not a thing the fake knows".into()).into());
        }
        if let Does::MistakeInPlan = self.does {
            return Err(FciError::package("tests/tests.yml", Some(3), "invalid YAML").into());
        }
        Ok(Plan::Run(json!({"fake": 1}), "planned work".into()))
    }

    fn execute(
        &mut self,
        _cx: &mut Ctx,
        work: String,
        rec: &mut RecordParts,
    ) -> anyhow::Result<Vec<Artifact>> {
        assert_eq!(work, "planned work");
        self.executed.fetch_add(1, Ordering::SeqCst);
        match self.does {
            Does::Pass => {}
            Does::Fail => {
                rec.outcome = Outcome::Failed;
                rec.notes.push("the fake's check failed".into());
            }
            Does::BreakHost => {
                return Err(FciError::Infra("the fake's tool broke".into()).into());
            }
            Does::MistakeInWork => {
                rec.data.insert("spec".into(), json!("fake.spec"));
                return Err(FciError::package("fake.spec", Some(12), "spec does not parse").into());
            }
            Does::RejectInput | Does::MistakeInPlan => unreachable!(),
        }
        Ok(Vec::new())
    }
}

/// The tests take turns: signal dispositions are the process's, and one test sends itself a
/// SIGTERM that only a driver with `Signals::Note` installed may see.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

struct World {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    out: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let out = dir.path().join("out.json");
        World { _dir: dir, ws, out }
    }

    fn common(&self, manifest: Option<&Path>) -> CommonArgs {
        CommonArgs {
            manifest: manifest.map(Path::to_path_buf),
            output: self.out.clone(),
            no_cache: false,
            force: false,
            namespace: None,
            run_url: None,
            artifacts_url: None,
            signing_key: None,
            builder_id: None,
        }
    }

    fn drive(&self, stage: &mut Fake, manifest: Option<&Path>) -> anyhow::Result<i32> {
        stage::drive(stage, &self.common(manifest), &self.ws)
    }

    fn output(&self) -> Manifest {
        Manifest::read(&self.out).unwrap()
    }
}

#[test]
fn a_stage_runs_its_planned_work_and_its_record_is_written() {
    let _turn = serial();
    let w = World::new();
    let mut s = Fake::new(Does::Pass);
    assert_eq!(w.drive(&mut s, None).unwrap(), exit::PASSED);
    let m = w.output();
    let r = m.stages.last().unwrap();
    assert_eq!((r.name.as_str(), r.outcome), ("integrate", Outcome::Passed));
    assert!(!r.cached);
    assert_eq!(s.executed.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stage_after_a_failed_one_is_skipped_without_running() {
    let _turn = serial();
    let w = World::new();
    let mut m = Manifest::new("run-1".into());
    m.stages.push(fci::manifest::StageRecord::instant(
        StageName::Build,
        Outcome::Failed,
        "%check failed".into(),
    ));
    let input = w._dir.path().join("in.json");
    m.write(&input).unwrap();
    let mut s = Fake::new(Does::Pass);
    assert_eq!(w.drive(&mut s, Some(&input)).unwrap(), exit::FAILED);
    let r = w.output().stages.last().unwrap().clone();
    assert_eq!(r.outcome, Outcome::Skipped);
    assert!(
        r.notes[0].contains("stage `build` is FAILED"),
        "{:?}",
        r.notes
    );
    assert_eq!(s.executed.load(Ordering::SeqCst), 0);
}

#[test]
fn the_same_inputs_reuse_the_recorded_verdict_unless_the_stage_never_reuses() {
    let _turn = serial();
    let w = World::new();
    let mut s = Fake::new(Does::Fail);
    assert_eq!(w.drive(&mut s, None).unwrap(), exit::FAILED);
    assert_eq!(w.drive(&mut s, None).unwrap(), exit::FAILED);
    assert_eq!(
        s.executed.load(Ordering::SeqCst),
        1,
        "a FAILED verdict is reused"
    );
    let r = w.output().stages.last().unwrap().clone();
    assert!(r.cached);
    assert_eq!(r.outcome, Outcome::Failed);

    let w = World::new();
    let mut s = Fake::new(Does::Fail);
    s.reuse = Reuse::Never;
    w.drive(&mut s, None).unwrap();
    w.drive(&mut s, None).unwrap();
    assert_eq!(
        s.executed.load(Ordering::SeqCst),
        2,
        "Reuse::Never runs every time"
    );
    assert!(!w.output().stages.last().unwrap().cached);
    // And leaves nothing in the cache, nor a new lock file per run.
    let locks = std::fs::read_dir(w.ws.join("locks"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("integrate-")
        })
        .count();
    assert_eq!(locks, 1, "one lock file for the inputs");
}

#[test]
fn an_error_of_the_host_is_an_error_record_and_exit_3_and_never_reused() {
    let _turn = serial();
    let w = World::new();
    let mut s = Fake::new(Does::BreakHost);
    assert_eq!(w.drive(&mut s, None).unwrap(), exit::INFRA);
    let r = w.output().stages.last().unwrap().clone();
    assert_eq!(r.outcome, Outcome::Error);
    assert!(r.notes.iter().any(|n| n.contains("the fake's tool broke")));
    assert!(
        r.log.is_some(),
        "the stage's log is kept: the reason is there"
    );
    assert_eq!(w.drive(&mut s, None).unwrap(), exit::INFRA);
    assert_eq!(s.executed.load(Ordering::SeqCst), 2);
}

#[test]
fn a_mistake_in_the_package_is_a_failed_record_and_exit_1_and_never_reused() {
    let _turn = serial();
    for (does, note, ran) in [
        (Does::MistakeInPlan, "tests/tests.yml:3: invalid YAML", 0),
        (Does::MistakeInWork, "fake.spec:12: spec does not parse", 2),
    ] {
        let w = World::new();
        let mut s = Fake::new(does);
        assert_eq!(w.drive(&mut s, None).unwrap(), exit::FAILED);
        let r = w.output().stages.last().unwrap().clone();
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        assert_eq!(r.notes.last().map(String::as_str), Some(note), "{r:?}");
        assert!(r.log.is_some(), "the stage's log is kept");
        if ran > 0 {
            // What the record held by then stays.
            assert_eq!(r.data["spec"], "fake.spec", "{r:?}");
        }
        // Found again, never reused (a source uploaded since is not an input).
        assert_eq!(w.drive(&mut s, None).unwrap(), exit::FAILED);
        assert!(!w.output().stages.last().unwrap().cached);
        assert_eq!(s.executed.load(Ordering::SeqCst), ran);
    }
}

#[test]
fn bad_input_is_exit_2_and_writes_no_manifest() {
    let _turn = serial();
    let w = World::new();
    let mut s = Fake::new(Does::RejectInput);
    let e = w.drive(&mut s, None).unwrap_err();
    assert_eq!(fci::error::exit_code_of(&e), exit::BAD_INPUT);
    assert!(!w.out.exists());
    // An unreadable manifest is the caller's too.
    let bad = w._dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let mut s = Fake::new(Does::Pass);
    let e = w.drive(&mut s, Some(&bad)).unwrap_err();
    assert_eq!(fci::error::exit_code_of(&e), exit::BAD_INPUT);
    assert_eq!(s.executed.load(Ordering::SeqCst), 0);
}

#[test]
fn a_run_waits_for_the_lock_of_the_same_inputs() {
    let _turn = serial();
    let w = Arc::new(World::new());
    let mut first = Fake::new(Does::Pass);
    first.reuse = Reuse::Never;
    w.drive(&mut first, None).unwrap();
    let digest = w.output().stages.last().unwrap().input_digest.clone();
    // Another holds the inputs' lock: a second run waits for it, then runs.
    let ws = fci::workspace::Workspace::open(&w.ws).unwrap();
    let held = ws.lock(&format!("integrate-{}", &digest[7..])).unwrap();
    let w2 = Arc::clone(&w);
    let second = std::thread::spawn(move || {
        let mut s = Fake::new(Does::Pass);
        s.reuse = Reuse::Never;
        let mut c = w2.common(None);
        c.output = w2._dir.path().join("second.json");
        let code = stage::drive(&mut s, &c, &w2.ws).unwrap();
        (code, s.executed.load(Ordering::SeqCst))
    });
    // A window, deliberately: within it the second run must not have finished.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!second.is_finished(), "it did not wait for the lock");
    drop(held);
    assert_eq!(second.join().unwrap(), (exit::PASSED, 1));
}

#[test]
fn a_noted_signal_ends_a_wait_for_the_lock_and_nothing_runs() {
    let _turn = serial();
    let w = World::new();
    let mut first = Fake::new(Does::Pass);
    first.reuse = Reuse::Never;
    w.drive(&mut first, None).unwrap();
    let digest = w.output().stages.last().unwrap().input_digest.clone();
    let ws = fci::workspace::Workspace::open(&w.ws).unwrap();
    let _held = ws.lock(&format!("integrate-{}", &digest[7..])).unwrap();
    let mut s = Fake::new(Does::Pass);
    s.reuse = Reuse::Never;
    s.signals = Signals::Note;
    // The driver installs the handler when it starts; the signal comes while it waits.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // SAFETY: raise(2) with a signal whose handler the driver installed.
        unsafe {
            libc::raise(libc::SIGTERM);
        }
    });
    let code = w.drive(&mut s, None).unwrap();
    assert_eq!(code, exit::INFRA);
    let r = w.output().stages.last().unwrap().clone();
    assert_eq!(r.outcome, Outcome::Error);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("interrupted by SIGTERM") && n.contains("nothing was run")),
        "{:?}",
        r.notes
    );
    assert_eq!(s.executed.load(Ordering::SeqCst), 0);
}

/// Issue 15: a run's identity (namespace, contact, artifacts URL) is fixed by its first stage,
/// from its flags or from the fci.yaml the run names (`ci:`), and a later stage cannot give
/// it another namespace.
#[test]
fn the_runs_identity_is_fixed_by_its_first_stage() {
    let _turn = serial();
    let w = World::new();
    let mut s = Fake::new(Does::Pass);
    let mut c = w.common(None);
    c.namespace = Some("example.koji-build".into());
    c.artifacts_url = Some("https://ci.example.org/ws".into());
    assert_eq!(stage::drive(&mut s, &c, &w.ws).unwrap(), exit::PASSED);
    let m = w.output();
    let ci = m.run.ci.clone().expect("run.ci");
    assert_eq!(ci.namespace, "example.koji-build");
    assert_eq!(
        ci.artifacts_url.as_deref(),
        Some("https://ci.example.org/ws/")
    );
    assert_eq!(
        (ci.contact.name.as_str(), ci.contact.team.as_str()),
        ("fci", "fci")
    );
    assert!(ci.contact.email.is_none() && ci.contact.docs.is_none());
    assert!(ci.workspace_url.unwrap().starts_with("file://"));
    // The next stage: the same namespace, or none, goes on; another is the caller's mistake.
    let input = w._dir.path().join("in.json");
    m.write(&input).unwrap();
    let mut c = w.common(Some(&input));
    c.namespace = Some("other.koji-build".into());
    let e = stage::drive(&mut Fake::new(Does::Pass), &c, &w.ws).unwrap_err();
    assert_eq!(fci::error::exit_code_of(&e), exit::BAD_INPUT);
    assert!(e.to_string().contains("example.koji-build"), "{e}");
    c.namespace = None;
    stage::drive(&mut Fake::new(Does::Pass), &c, &w.ws).unwrap();
    assert_eq!(w.output().run.ci.unwrap().namespace, "example.koji-build");

    // A run fci watch started names its fci.yaml: its `ci:` is the run's identity.
    let w = World::new();
    let dir = w._dir.path();
    std::fs::create_dir(dir.join("rpms")).unwrap();
    let text = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n\
        ci: {name: Example CI, team: example, email: ci@example.org, docs: 'https://example.org/ci', \
        namespace: example.koji-build}\n";
    let cfg = dir.join("fci.yaml");
    std::fs::write(&cfg, text).unwrap();
    let mut m = Manifest::new("run-2".into());
    m.run.config = Some(fci::manifest::ConfigRef {
        path: cfg.to_str().unwrap().into(),
        sha256: fci::digest::sha256_bytes(text.as_bytes()),
    });
    let input = dir.join("in.json");
    m.write(&input).unwrap();
    stage::drive(&mut Fake::new(Does::Pass), &w.common(Some(&input)), &w.ws).unwrap();
    let ci = w.output().run.ci.unwrap();
    assert_eq!(ci.namespace, "example.koji-build");
    assert_eq!(ci.contact.name, "Example CI");
    assert_eq!(ci.contact.email.as_deref(), Some("ci@example.org"));
    assert_eq!(ci.contact.docs.as_deref(), Some("https://example.org/ci"));
    assert!(ci.artifacts_url.is_none());
}
