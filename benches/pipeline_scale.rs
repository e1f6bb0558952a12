//! Scale-out of the per-change pipeline (issue 17, Performance): 8 changes (a new version of 8
//! packages, committed in dist-git repositories made here) queued by `fci watch`, run through
//! the whole per-change pipeline (build → test → compose → integrate → image → smoke → report
//! --promote, as examples/buildbot/master.cfg runs it) by one worker, then, on a fresh state and
//! fresh workspaces, the same changes by two workers in parallel (each its own workspace, one
//! shared `FCI_STATE`). A worker (tests/common/worker.rs) takes the next queued manifest, and
//! with none queued runs `fci watch --once`, which emits the changes whose base moved under them
//! (queued for a retest by `fci report --promote`), until nothing is queued or running.
//!
//! Measured in one run: the throughput ratio two workers / one (target at least 1.6x on this
//! 2-core machine) and the median time from a change being queued (all 8 at once, by the watch
//! that saw the commits) to its gating decision, retests included (a change's time runs to the
//! report that decided it; target at most 60 s, with two workers). Image and smoke are not due
//! (`--interval 1d`, the setup made the branch's image, as on the Buildbot workers).
//! Run: `cargo bench --bench pipeline_scale`; under `cargo test`, 2 changes.

mod support;

#[path = "../tests/common/worker.rs"]
mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{median, Target};
use worker::{drain, Pipeline, Ran, Worker};

/// The packages, the fastest first (the quick mode takes the first two): fixtures that build,
/// test, compose and integrate cleanly, and the example with its STI and tmt tests.
const PACKAGES: [&str; 8] = [
    "compose-etc",
    "share-note",
    "compose-post-ok",
    "compose-trigger",
    "etc-pkg",
    "systemd-service",
    "compose-pretrans",
    "hello-atomic",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(c: &mut Command, what: &str) -> String {
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    run(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=Bench",
                "-c",
                "user.email=bench@example.org",
            ])
            .args(args),
        "git",
    )
}

/// Dist-git: each package imported, then a packager's new version (Release 1 made 2).
fn distgit(top: &Path, packages: &[&str]) -> PathBuf {
    let rpms = top.join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    for name in packages {
        let repo = rpms.join(name);
        let src = match root().join("examples").join(name) {
            p if p.is_dir() => p,
            _ => root().join("tests/fixtures").join(name),
        };
        run(Command::new("cp").arg("-r").arg(&src).arg(&repo), "cp -r");
        git(&repo, &["init", "-q", "-b", "f41"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "import"]);
        let spec = repo.join(format!("{name}.spec"));
        let text = std::fs::read_to_string(&spec).unwrap();
        let bumped: String = text
            .lines()
            .map(|l| {
                if l.starts_with("Release:") {
                    l.replacen(" 1", " 2", 1) + "\n"
                } else {
                    l.to_string() + "\n"
                }
            })
            .collect();
        assert_ne!(bumped, text, "{name}: no Release 1");
        std::fs::write(&spec, bumped).unwrap();
        git(&repo, &["commit", "-q", "-am", "release 2"]);
    }
    rpms
}

fn pipeline(state: &Path, cfg: &Path, queue: &Path) -> Pipeline {
    Pipeline {
        fci: PathBuf::from(env!("CARGO_BIN_EXE_fci")),
        state: Some(state.to_path_buf()),
        config: cfg.to_path_buf(),
        lookaside: root().join("examples/lookaside"),
        integration: root().join("examples/buildbot/integration"),
        gating: root().join("examples/buildbot/gating.yaml"),
        queue: queue.to_path_buf(),
    }
}

/// The state every phase starts from, made once by the administrator (not measured): the
/// known-good base and the branch's first image (so the workers' image steps are not due).
fn prepare(top: &Path, base: &Path, cfg: &Path) -> PathBuf {
    let state = top.join("pristine-state");
    let p = pipeline(&state, cfg, &top.join("no-queue"));
    let admin = top.join("admin-ws");
    run(
        p.fci(&admin)
            .args(["base", "init"])
            .arg(base)
            .args(["--branch", "f41"]),
        "fci base init",
    );
    let first = top.join("first-image.json");
    run(
        p.fci(&admin)
            .arg("build")
            .arg(root().join("examples/hello-atomic"))
            .args(["--branch", "f41", "--lookaside"])
            .arg(&p.lookaside)
            .arg("-o")
            .arg(&first),
        "fci build (the first image's)",
    );
    for stage in ["compose", "image"] {
        run(
            p.fci(&admin)
                .args([stage, "-m"])
                .arg(&first)
                .arg("-o")
                .arg(&first),
            stage,
        );
    }
    state
}

/// One measured phase: a fresh state (a copy of the prepared one: no change seen, tested or
/// promoted) and fresh workspaces, the changes queued by the watch, then `workers` workers
/// until the queue drains. When the changes were queued, the wall time to drain them, the runs.
fn phase(
    top: &Path,
    pristine: &Path,
    cfg: &Path,
    n: usize,
    workers: usize,
) -> (Instant, Duration, Vec<Ran>) {
    let dir = top.join(format!("{workers}-workers"));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    run(
        Command::new("cp").arg("-a").arg(pristine).arg(&state),
        "cp -a",
    );
    let p = pipeline(&state, cfg, &dir.join("queue"));
    std::fs::create_dir_all(&p.queue).unwrap();
    let admin = dir.join("watcher-ws");
    // The watch of a fresh state sees the 8 heads as new: the changes, queued at once.
    p.watch(&admin, &["--emit-existing"]);
    assert_eq!(std::fs::read_dir(&p.queue).unwrap().count(), n);
    let ws: Vec<Worker> = (0..workers)
        .map(|i| Worker {
            n: i,
            ws: dir.join(format!("ws{i}")),
            dir: dir.join(format!("worker{i}")),
        })
        .collect();
    let t = Instant::now();
    let runs = drain(&p, &ws, Duration::from_secs(1800));
    let took = t.elapsed();
    // Every change decided, each passing (a retest is the same change, run again).
    for name in &PACKAGES[..n] {
        let decided: Vec<&Ran> = runs
            .iter()
            .filter(|r| r.package == *name && !r.needs_retest)
            .collect();
        assert_eq!(decided.len(), 1, "{name}: {runs:#?}");
        assert_eq!(decided[0].report_exit(), 0, "{name}: {:#?}", decided[0]);
    }
    (t, took, runs)
}

/// Each change's time from being queued (`start`: all at once, as the drain starts) to the
/// report that decided it.
fn decision_times(runs: &[Ran], start: Instant) -> Vec<Duration> {
    runs.iter()
        .filter(|r| !r.needs_retest)
        .map(|r| r.ended.duration_since(start))
        .collect()
}

fn main() {
    let n = support::size(8, 2);
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let top = scratch.path();
    let base = top.join("base");
    run(
        Command::new(root().join("examples/base/make-base.sh")).arg(&base),
        "make-base.sh",
    );
    distgit(top, &PACKAGES[..n]);
    let cfg = top.join("fci.yaml");
    std::fs::write(
        &cfg,
        format!(
            "dist_git: ./rpms\nbranches: [f41]\npackages: [{}]\n",
            PACKAGES[..n].join(", ")
        ),
    )
    .unwrap();

    let pristine = prepare(top, &base, &cfg);
    let mut figures = Vec::new();
    for workers in [1, 2] {
        let (start, took, runs) = phase(top, &pristine, &cfg, n, workers);
        let times = decision_times(&runs, start);
        let retests = runs.iter().filter(|r| r.needs_retest).count();
        let busy: Vec<f64> = (0..workers)
            .map(|w| {
                runs.iter()
                    .filter(|r| r.worker == w)
                    .map(|r| r.ended.duration_since(r.started).as_secs_f64())
                    .sum()
            })
            .collect();
        println!(
            "pipeline_scale: {workers} worker(s), {n} changes: {:.1} s, {} pipeline runs ({retests} retests), median queued-to-decision {:.1} s, busy per worker {busy:.1?} s",
            took.as_secs_f64(),
            runs.len(),
            median(times.clone()).as_secs_f64(),
        );
        // Where the time went: each stage's wall time summed over the runs (a stage that waits
        // for another worker's lock shows here), and each run's.
        let mut per_stage: Vec<(String, f64)> = Vec::new();
        for r in &runs {
            for ((name, _), t) in r.exits.iter().zip(&r.took) {
                match per_stage.iter_mut().find(|(n, _)| n == name) {
                    Some((_, s)) => *s += t.as_secs_f64(),
                    None => per_stage.push((name.clone(), t.as_secs_f64())),
                }
            }
            println!(
                "  worker {} {}{}: {}",
                r.worker,
                r.package,
                if r.needs_retest { " (base moved)" } else { "" },
                r.exits
                    .iter()
                    .zip(&r.took)
                    .map(|((n, _), t)| format!("{n} {:.1}", t.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!("  stages summed: {per_stage:.1?}");
        // Lock contention: every wait for a lock another fci run held, as the stages noted it.
        let mut waits: Vec<String> = Vec::new();
        for w in 0..workers {
            let d = top.join(format!("{workers}-workers/worker{w}"));
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "stderr") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    waits.extend(
                        text.lines()
                            .filter(|l| l.contains("waiting for"))
                            .map(|l| format!("{}: {l}", e.file_name().to_string_lossy())),
                    );
                }
            }
        }
        println!("  waits for another run's lock: {} {waits:#?}", waits.len());
        figures.push((took, times, runs.len(), retests));
    }
    let (one, two) = (&figures[0], &figures[1]);
    let ratio = one.0.as_secs_f64() / two.0.as_secs_f64();
    let med = |t: &Vec<Duration>| median(t.clone()).as_secs_f64();
    println!(
        "pipeline_scale: throughput two workers / one: {ratio:.2}x (target >= 1.6x); median queued-to-decision with two workers {:.1} s (target <= 60 s), with one {:.1} s",
        med(&two.1),
        med(&one.1)
    );
    let detail = serde_json::json!({
        "changes": n,
        "one_worker_s": one.0.as_secs_f64(),
        "two_workers_s": two.0.as_secs_f64(),
        "runs": [one.2, two.2],
        "retests": [one.3, two.3],
    });
    support::record(
        "throughput, two workers / one (x)",
        ratio,
        "x",
        Target::AtLeast(1.6),
        detail.clone(),
    );
    support::record(
        "median queued-to-decision, two workers",
        med(&two.1),
        " s",
        Target::AtMost(60.0),
        detail.clone(),
    );
    support::record(
        "median queued-to-decision, one worker",
        med(&one.1),
        " s",
        Target::None,
        detail,
    );
    support::quick_note();
}
