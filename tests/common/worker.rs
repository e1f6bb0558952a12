//! Workers as a scheduler runs them (examples/buildbot/master.cfg): each takes the next change
//! `fci watch` queued, runs the whole per-change pipeline on it in its workspace (build → test
//! → compose → integrate → image when due → smoke → report --promote, the report even after a
//! failed stage), and, with nothing queued, runs `fci watch --once` to pick up the changes
//! `fci report --promote` queued for a retest (their base moved under them), until the queue
//! is empty and no worker can queue another. Used by tests/concurrency_e2e.rs and, included
//! by path, benches/pipeline_scale.rs: so it uses nothing else of tests/common.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every worker of a pipeline is given: the same files as Buildbot's master.cfg gives its
/// workers.
#[derive(Clone)]
pub struct Pipeline {
    pub fci: PathBuf,
    /// `FCI_STATE`, shared by every worker; `None`: the state inside the workspace.
    pub state: Option<PathBuf>,
    /// The fci.yaml `fci watch` follows.
    pub config: PathBuf,
    pub lookaside: PathBuf,
    /// `fci integrate --tests`: examples/buildbot/integration.
    pub integration: PathBuf,
    /// The promotion policy: examples/buildbot/gating.yaml.
    pub gating: PathBuf,
    /// The queue: the directory `fci watch --output-dir` writes the changes' manifests to.
    pub queue: PathBuf,
}

/// One run of the per-change pipeline on one change.
#[derive(Clone, Debug)]
pub struct Ran {
    pub worker: usize,
    pub package: String,
    pub commit: String,
    pub run_id: String,
    /// Each stage's exit status, in order (the report's last).
    pub exits: Vec<(String, i32)>,
    /// Each stage's wall time, in the same order.
    pub took: Vec<Duration>,
    /// The report's final manifest.
    pub manifest: PathBuf,
    /// The report's record said the base moved while the change was tested: it was queued for a
    /// retest, and this run decided nothing.
    pub needs_retest: bool,
    pub started: Instant,
    pub ended: Instant,
}

impl Ran {
    pub fn report_exit(&self) -> i32 {
        self.exits.last().map(|e| e.1).unwrap_or(-1)
    }
}

/// The pipeline's stages as a worker runs them, each reading and rewriting `change.json`; the
/// report writes `final`.
fn stages(p: &Pipeline, change: &Path, final_: &Path) -> Vec<(&'static str, Vec<String>)> {
    let c = change.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut out = vec![
        (
            "build",
            s(&[
                "build",
                "-m",
                &c,
                "--lookaside",
                &p.lookaside.display().to_string(),
                "-o",
                &c,
            ]),
        ),
        ("test", s(&["test", "-m", &c, "-o", &c])),
        ("compose", s(&["compose", "-m", &c, "-o", &c])),
        (
            "integrate",
            s(&[
                "integrate",
                "-m",
                &c,
                "--tests",
                &p.integration.display().to_string(),
                "-o",
                &c,
            ]),
        ),
        // As the Buildbot workers run it: imaged at most once a day (the setup made the
        // branch's image, so it is not due and image and smoke are SKIPPED, exit 0).
        (
            "image",
            s(&["image", "-m", &c, "--interval", "1d", "-o", &c]),
        ),
        (
            "smoke",
            s(&["smoke", "-m", &c, "--check", "true", "-o", &c]),
        ),
    ];
    out.push((
        "report",
        s(&[
            "report",
            "-m",
            &c,
            "--gating",
            &p.gating.display().to_string(),
            "--decision-context",
            "fci_promote",
            "--promote",
            "--require-stages",
            "build,test,compose,integrate,image,smoke",
            "-o",
            &final_.display().to_string(),
        ]),
    ));
    out
}

impl Pipeline {
    /// fci in workspace `ws` with this pipeline's state.
    pub fn fci(&self, ws: &Path) -> Command {
        let mut c = Command::new(&self.fci);
        // Not --quiet: each stage's notes (a wait for another run's lock among them) are kept
        // in the worker's stderr files.
        c.arg("--workspace").arg(ws);
        if let Some(s) = &self.state {
            c.env("FCI_STATE", s);
        }
        c.stdin(Stdio::null());
        c
    }

    /// `fci watch --once` into the queue; panics unless it exits 0. Extra flags: `extra`.
    pub fn watch(&self, ws: &Path, extra: &[&str]) {
        self.watch_into(ws, &self.queue, extra)
    }

    /// `fci watch --once` writing what it emits into `dir`.
    pub fn watch_into(&self, ws: &Path, dir: &Path, extra: &[&str]) {
        let out = self
            .fci(ws)
            .args(["watch", "--once", "--config"])
            .arg(&self.config)
            .arg("--output-dir")
            .arg(dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fci watch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The whole per-change pipeline on the manifest `change` (moved out of the queue) in
    /// workspace `ws`; `logs` keeps each stage's stderr.
    pub fn run_change(&self, worker: usize, ws: &Path, change: &Path, logs: &Path) -> Ran {
        let started = Instant::now();
        let m: Value = serde_json::from_str(&std::fs::read_to_string(change).unwrap()).unwrap();
        let subject = &m["subject"];
        let final_ = change.with_extension("final.json");
        let mut exits = Vec::new();
        let mut took = Vec::new();
        for (name, args) in stages(self, change, &final_) {
            let err = std::fs::File::create(logs.join(format!(
                "{}-{name}.stderr",
                change.file_stem().unwrap().to_string_lossy()
            )))
            .unwrap();
            let t = Instant::now();
            let st = self
                .fci(ws)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(err)
                .status()
                .unwrap();
            exits.push((name.to_string(), st.code().unwrap_or(-1)));
            took.push(t.elapsed());
        }
        let report: Value = std::fs::read_to_string(&final_)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let needs_retest = report["stages"]
            .as_array()
            .and_then(|a| a.iter().rfind(|s| s["name"] == "report"))
            .is_some_and(|s| s["data"]["needs_retest"] == true);
        Ran {
            worker,
            package: subject["package"].as_str().unwrap_or("").to_string(),
            commit: subject["commit"].as_str().unwrap_or("").to_string(),
            run_id: m["run"]["id"].as_str().unwrap_or("").to_string(),
            exits,
            took,
            manifest: final_,
            needs_retest,
            started,
            ended: Instant::now(),
        }
    }
}

/// A worker: its number, its workspace, and a directory for the manifests it takes.
pub struct Worker {
    pub n: usize,
    pub ws: PathBuf,
    pub dir: PathBuf,
}

/// What the workers share: the queue's dispatch and the count of pipelines running (a running
/// report may still queue a retest, so the work is not over while one runs).
#[derive(Default)]
struct Dispatch {
    taken: AtomicUsize,
    running: AtomicUsize,
    finished: AtomicUsize,
    gate: Mutex<()>,
    /// Workers of one workspace run its watch one at a time (fci refuses a second watch on a
    /// workspace: a scheduler has one change source per workspace, as Buildbot's master).
    watch: Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>>,
}

impl Dispatch {
    /// Runs `watch` as the only watch of workspace `ws` at the moment.
    fn watching(&self, ws: &Path, watch: impl FnOnce()) {
        let one = self
            .watch
            .lock()
            .unwrap()
            .entry(ws.to_path_buf())
            .or_default()
            .clone();
        let _w = one.lock().unwrap();
        watch();
    }
}

/// The oldest manifest in the queue, moved into `to` (a rename: two workers never take the
/// same one).
fn take(queue: &Path, to: &Path, n: usize) -> Option<PathBuf> {
    let mut names: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(queue)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    names.sort();
    for (_, p) in names {
        let dest = to.join(format!(
            "{n:03}-{}",
            p.file_name().unwrap().to_string_lossy()
        ));
        if std::fs::rename(&p, &dest).is_ok() {
            return Some(dest);
        }
    }
    None
}

/// Runs `workers` until the queue is empty, no pipeline runs and `fci watch` emits nothing more:
/// every run, in the order they ended. Fails (panics) after `limit`.
pub fn drain(p: &Pipeline, workers: &[Worker], limit: Duration) -> Vec<Ran> {
    let d = Dispatch::default();
    let ran = Mutex::new(Vec::new());
    let deadline = Instant::now() + limit;
    std::thread::scope(|s| {
        for w in workers {
            let (d, ran) = (&d, &ran);
            std::fs::create_dir_all(&w.dir).unwrap();
            s.spawn(move || loop {
                assert!(
                    Instant::now() < deadline,
                    "worker {}: the queue not drained within {limit:?}",
                    w.n
                );
                let got = {
                    let _g = d.gate.lock().unwrap();
                    let n = d.taken.fetch_add(1, Ordering::SeqCst);
                    let got = take(&p.queue, &w.dir, n);
                    if got.is_some() {
                        d.running.fetch_add(1, Ordering::SeqCst);
                    }
                    got
                };
                if let Some(change) = got {
                    let mut next = Some(change);
                    while let Some(change) = next.take() {
                        let r = p.run_change(w.n, &w.ws, &change, &w.dir);
                        // Affinity, as a scheduler would give it (Buildbot's nextWorker): a
                        // change whose base moved is retested by the worker that just ran it,
                        // whose workspace reuses its build and test from the cache; only
                        // compose onwards run again. Other retests the watch emits go to the
                        // queue.
                        if r.needs_retest {
                            let mine = w
                                .dir
                                .join(format!("retest-{}", d.taken.fetch_add(1, Ordering::SeqCst)));
                            std::fs::create_dir_all(&mine).unwrap();
                            d.watching(&w.ws, || p.watch_into(&w.ws, &mine, &[]));
                            for e in std::fs::read_dir(&mine).unwrap().flatten() {
                                let m: Value = serde_json::from_str(
                                    &std::fs::read_to_string(e.path()).unwrap(),
                                )
                                .unwrap();
                                if next.is_none() && m["subject"]["package"] == r.package.as_str() {
                                    next = Some(e.path());
                                } else {
                                    std::fs::rename(e.path(), p.queue.join(e.file_name())).unwrap();
                                }
                            }
                        }
                        ran.lock().unwrap().push(r);
                    }
                    let _g = d.gate.lock().unwrap();
                    d.running.fetch_sub(1, Ordering::SeqCst);
                    d.finished.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                // Nothing queued: the pipelines that ended so far have queued their retests;
                // a watch now emits them.
                let finished = d.finished.load(Ordering::SeqCst);
                d.watching(&w.ws, || p.watch(&w.ws, &[]));
                let _g = d.gate.lock().unwrap();
                let queued = std::fs::read_dir(&p.queue)
                    .unwrap()
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "json"));
                if !queued
                    && d.running.load(Ordering::SeqCst) == 0
                    && d.finished.load(Ordering::SeqCst) == finished
                {
                    return;
                }
                drop(_g);
                if !queued {
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });
    ran.into_inner().unwrap()
}
