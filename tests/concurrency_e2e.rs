//! Concurrency, proven (issue 17 item 6): (a) four per-change pipelines for four packages run
//! at once on ONE workspace (one pipeline state inside it); (b) two workers, each its own
//! workspace, share one state directory (`FCI_STATE`) and run four changes between them at
//! once. Each pipeline is the whole one a Buildbot worker runs (tests/common/worker.rs: build →
//! test → compose → integrate → image → smoke → report --promote); image and smoke are
//! SKIPPED (not due, exit 0) as on the Buildbot workers: the setup makes the branch's image, as
//! the administrator does there, and the workers image at most once a day. The changes race
//! to promote; the losers are queued for a retest, which `fci watch` emits and the workers run
//! until nothing is queued.
//!
//! Afterwards: every change ended with its verdict (all four pass), each became known-good in
//! turn (the known-good ref's history is the four promotions on the first base: none lost),
//! none was excluded, the known-good set names the four new versions, `ostree fsck` is clean,
//! every run's manifest still verifies (`fci report -m` exits as its report said) and nothing
//! is left running.

mod common;
use common::promote::{known_good_in, ostree_in};
use common::worker::{drain, Pipeline, Ran, Worker};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    &[tool::GIT],
];

/// Four packages that build, test, compose and integrate cleanly: the example (with STI and tmt
/// tests) and three fixtures (an /etc file, a plain file, scriptlets and a library).
const PACKAGES: [&str; 4] = [
    "hello-atomic",
    "compose-etc",
    "share-note",
    "compose-post-ok",
];

fn source(name: &str) -> PathBuf {
    let ex = example(name);
    if ex.is_dir() {
        ex
    } else {
        fixture(name)
    }
}

/// A packager's new version: the spec's Release 1 made 2, committed.
fn bump(repo: &Path, name: &str) -> String {
    let spec = repo.join(format!("{name}.spec"));
    let text = std::fs::read_to_string(&spec).unwrap();
    let bumped: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("Release:") {
                l.replacen(" 1", " 2", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_ne!(bumped.join("\n"), text.trim_end(), "{name}: no Release 1");
    std::fs::write(&spec, bumped.join("\n") + "\n").unwrap();
    git(
        repo,
        &["commit", "-q", "-am", &format!("{name}: release 2")],
    );
    git(repo, &["rev-parse", "HEAD"])
}

/// The scene: dist-git with the four packages imported, the known-good base and the branch's
/// first image made by the administrator, the watch's heads recorded, then a new version of
/// each package pushed and queued by `fci watch`. `state`: the shared state directory, or
/// `None` for the state inside the workspace `w`.
fn scene(w: &Ws, state: Option<&Path>) -> (Pipeline, BTreeMap<String, String>, String) {
    let top = w.path();
    let p = Pipeline {
        fci: PathBuf::from(env!("CARGO_BIN_EXE_fci")),
        state: state.map(Path::to_path_buf),
        config: top.join("fci.yaml"),
        lookaside: PathBuf::from(lookaside()),
        integration: example("buildbot/integration"),
        gating: example("buildbot/gating.yaml"),
        queue: top.join("queue"),
    };
    std::fs::create_dir_all(&p.queue).unwrap();
    let admin = top.join("admin-ws");
    let run = |args: &[&str]| -> Run {
        let ws = if state.is_some() {
            admin.clone()
        } else {
            w.ws()
        };
        Run::from(p.fci(&ws).args(args).output().unwrap())
    };
    let base = make_base(w, &[], |_| {});
    let r = run(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The branch's first image, as the administrator makes it: the workers' image steps are
    // then not due.
    let first = top.join("first-image.json");
    let f = first.to_str().unwrap();
    let la = lookaside();
    let ex = example("hello-atomic");
    let r = run(&[
        "build",
        ex.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
        "-o",
        f,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for stage in ["compose", "image"] {
        let r = run(&[stage, "-m", f, "-o", f]);
        assert_eq!(r.code, 0, "{stage}: {}", r.stderr);
    }

    let rpms = top.join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    for name in PACKAGES {
        let repo = rpms.join(name);
        fci::suites::runner::copy_tree(&source(name), &repo).unwrap();
        git(&repo, &["init", "-q", "-b", "f41"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "import"]);
    }
    std::fs::write(
        &p.config,
        format!(
            "dist_git: ./rpms\nbranches: [f41]\npackages: [{}]\n",
            PACKAGES.join(", ")
        ),
    )
    .unwrap();
    let watcher = if state.is_some() { admin } else { w.ws() };
    // The first poll records the heads; the pushes after it are the changes.
    p.watch(&watcher, &[]);
    assert_eq!(queued(&p.queue), 0);
    let pushed: BTreeMap<String, String> = PACKAGES
        .iter()
        .map(|n| (n.to_string(), bump(&rpms.join(n), n)))
        .collect();
    p.watch(&watcher, &[]);
    assert_eq!(queued(&p.queue), PACKAGES.len(), "one change per push");
    let first_base = known_good_in(&repo_of(w, state));
    (p, pushed, first_base)
}

fn queued(q: &Path) -> usize {
    std::fs::read_dir(q).unwrap().count()
}

fn repo_of(w: &Ws, state: Option<&Path>) -> PathBuf {
    match state {
        Some(s) => s.join("ostree/repo"),
        // Without a state directory the repository stays where it always was.
        None => w.ws().join("ostree/repo"),
    }
}

/// The exit status of an outcome as fci gives it.
fn exit_of(outcome: &str) -> i32 {
    match outcome {
        "PASSED" | "INFO" => 0,
        "ERROR" => 3,
        _ => 1,
    }
}

/// Everything the issue asks of the runs after the queue drained.
fn check(
    w: &Ws,
    p: &Pipeline,
    workspaces: &[PathBuf],
    pushed: &BTreeMap<String, String>,
    first_base: &str,
    runs: &[Ran],
) {
    let state_dir = match &p.state {
        Some(s) => s.clone(),
        None => w.ws().join("state"),
    };
    let repo = repo_of(w, p.state.as_deref());
    let summary: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "worker {} {} {:?} retest={}",
                r.worker, r.package, r.exits, r.needs_retest
            )
        })
        .collect();
    let summary = summary.join("\n");
    // Every run: every stage passed (image and smoke not due); the report passed, or said the
    // base moved (ERROR, exit 3: queued, not the packager's failure).
    for r in runs {
        for (stage, code) in &r.exits[..r.exits.len() - 1] {
            assert_eq!(*code, 0, "{} {stage}:\n{summary}", r.package);
        }
        assert_eq!(
            r.report_exit(),
            if r.needs_retest { 3 } else { 0 },
            "{summary}"
        );
        assert_eq!(
            pushed.get(&r.package).map(String::as_str),
            Some(r.commit.as_str()),
            "{summary}"
        );
    }
    // Each change decided once, passing; the retests were all run (a change whose base moved
    // is never lost: its last run decided it).
    let set: Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("known-good/f41.json")).unwrap(),
    )
    .unwrap();
    for name in PACKAGES {
        let of: Vec<&Ran> = runs.iter().filter(|r| r.package == name).collect();
        let decided: Vec<&&Ran> = of.iter().filter(|r| !r.needs_retest).collect();
        assert_eq!(decided.len(), 1, "{name}:\n{summary}");
        assert!(
            of.last().is_some_and(|r| !r.needs_retest),
            "{name}'s last run left a retest:\n{summary}"
        );
        // The known-good set names the new version, from the run that decided it.
        let kg = &set[name];
        let nvr = kg["nvr"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} not known-good: {set:#}"));
        let release = nvr.rsplit('-').next().unwrap();
        assert!(release == "2" || release.starts_with("2."), "{name}: {nvr}");
        assert_eq!(kg["run"], decided[0].run_id.as_str(), "{set:#}");
    }
    // None excluded (a moved base is not the packager's failure).
    if let Ok(text) = std::fs::read_to_string(state_dir.join("excluded/f41.json")) {
        for name in PACKAGES {
            assert!(
                !text.contains(&format!("\"{name}\"")),
                "{name} excluded: {text}"
            );
        }
    }
    // Each became known-good in turn: the ref's history is four promotions on the first base.
    let mut at = known_good_in(&repo);
    for _ in PACKAGES {
        at = ostree_in(&repo, &["rev-parse", &format!("{at}^")]);
    }
    assert_eq!(at, first_base, "the known-good history lost a promotion");
    let fsck = std::process::Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
    // Every run's manifest still verifies: its report again (no promotion, so nothing moves)
    // exits as its stages say. A run whose base moved passed every stage: only its promotion
    // was refused (its last report FAILED for that alone), so it verifies as passed.
    for r in runs {
        let m: Value =
            serde_json::from_str(&std::fs::read_to_string(&r.manifest).unwrap()).unwrap();
        assert_valid(&m);
        let said = m["stages"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|s| s["name"] == "report")
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string();
        let expected = if r.needs_retest { 0 } else { exit_of(&said) };
        let ws = &workspaces[r.worker];
        let again = Run::from(
            p.fci(ws)
                .args(["report", "-m"])
                .arg(&r.manifest)
                .output()
                .unwrap(),
        );
        assert_eq!(
            again.code,
            expected,
            "{} ({said}): {}",
            r.manifest.display(),
            again.stderr
        );
        let verified = again.manifest();
        let report = verified["stages"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|s| s["name"] == "report")
            .unwrap();
        assert_eq!(exit_of(report["outcome"].as_str().unwrap()), expected);
    }
    for ws in workspaces {
        let left = processes_of(ws);
        assert!(left.is_empty(), "left running: {left:#?}");
        let scratch: Vec<_> = std::fs::read_dir(ws.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            scratch.is_empty(),
            "scratch left in {}: {scratch:?}",
            ws.display()
        );
    }
    eprintln!("{} runs:\n{summary}", runs.len());
}

#[test]
fn four_pipelines_for_four_packages_at_once_on_one_workspace() {
    let w = Ws::new();
    let (p, pushed, first_base) = scene(&w, None);
    let workers: Vec<Worker> = (0..4)
        .map(|n| Worker {
            n,
            ws: w.ws(),
            dir: w.path().join(format!("worker{n}")),
        })
        .collect();
    let t = Instant::now();
    let runs = drain(&p, &workers, Duration::from_secs(300));
    eprintln!("4 pipelines on one workspace: {:?}", t.elapsed());
    let workspaces = vec![w.ws(); 4];
    check(&w, &p, &workspaces, &pushed, &first_base, &runs);
}

#[test]
fn two_workers_sharing_one_state_run_four_changes() {
    let w = Ws::new();
    let state = w.path().join("shared-state");
    let (p, pushed, first_base) = scene(&w, Some(&state));
    let w2 = w.path().join("worker2-ws");
    let workers = vec![
        Worker {
            n: 0,
            ws: w.ws(),
            dir: w.path().join("worker0"),
        },
        Worker {
            n: 1,
            ws: w2.clone(),
            dir: w.path().join("worker1"),
        },
    ];
    let t = Instant::now();
    let runs = drain(&p, &workers, Duration::from_secs(300));
    eprintln!("2 workers, one state: {:?}", t.elapsed());
    let used: std::collections::BTreeSet<usize> = runs.iter().map(|r| r.worker).collect();
    assert_eq!(used.len(), 2, "both workers ran changes");
    // The state is the shared directory's, not a workspace's.
    assert!(!w.ws().join("state/known-good").exists());
    check(&w, &p, &[w.ws(), w2], &pushed, &first_base, &runs);
}
