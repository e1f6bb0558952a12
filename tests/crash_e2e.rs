//! Crashes survived: a seeded loop kills fci with SIGKILL at random points of every stage
//! (watch, build, test, compose, integrate, image, smoke, report --promote), at least 30
//! times in all. Each stage first runs unkilled (its reference: verdict, exit code, how
//! long it takes); then, per kill, the stage starts on the same input and is killed after a
//! random delay within that duration, and: nothing of it is left running (bwrap, rpmbuild,
//! ansible, qemu children of the killed fci die with it), `fci fsck` finds no damage (debris
//! allowed), and the stage run again completes with the reference's verdict and exit code.
//! A killed `report --promote` never leaves the known-good ref and the known-good set apart.
//!
//! The seed is `FCI_CRASH_SEED` or a fixed one, printed first, so a failure is reproduced by
//! running the test again with it. The random numbers are a hand-written xorshift64*: a
//! dozen lines, and a seed means the same delays whatever version of a crate is locked.

mod common;
use common::distgit::{DistGit, ALICE};
use common::promote::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    tool::SMOKE,
    &[tool::GIT],
];

/// xorshift64* (Vigna): enough for spreading kills over a stage's run, and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The fixed seed, when `FCI_CRASH_SEED` gives none.
const SEED: u64 = 0x0f5c_c0de_2026_1207;

/// One stage as the loop runs it.
struct Stage {
    name: &'static str,
    args: Vec<String>,
    /// Kills wanted: fewer for the slow ones that boot qemu.
    kills: usize,
    /// `ostree fsck` after each kill (the stages that write the OSTree repository).
    ostree: bool,
}

/// What a run ended with: exit code, and the verdict of the stage's own record.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Ending {
    code: i32,
    verdict: String,
}

fn verdict_of(stage: &str, stdout: &Path) -> String {
    let text = std::fs::read_to_string(stdout).unwrap_or_default();
    if stage == "watch" {
        // A manifest per line, each one change's: how many there are depends on where an
        // earlier run was killed, not on the watch's verdict.
        return "-".into();
    }
    let Ok(m) = serde_json::from_str::<Value>(&text) else {
        return "(no manifest)".into();
    };
    m["stages"]
        .as_array()
        .and_then(|s| s.iter().rev().find(|r| r["name"] == stage))
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or("(no record)")
        .to_string()
}

fn command(w: &Ws, args: &[String], out: &Path) -> Command {
    let mut c = w.cmd();
    c.args(args)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap());
    c
}

/// Runs the stage to its end: how it ended, and how long it took.
fn run(w: &Ws, st: &Stage, out: &Path) -> (Ending, Duration) {
    let start = Instant::now();
    let status = command(w, &st.args, out).status().unwrap();
    let took = start.elapsed();
    let e = Ending {
        code: status.code().unwrap_or(-1),
        verdict: verdict_of(st.name, out),
    };
    (e, took)
}

/// Waits until no process of the workspace is left (a killed namespace takes the kernel a
/// moment); fails naming what outlived its fci.
fn nothing_left(w: &Ws, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = processes_of(&w.ws());
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: left running after fci was killed: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `fci fsck` (with `ostree fsck` when `ostree`): must find no damage; returns its debris.
fn fsck_clean(w: &Ws, ostree: bool, what: &str) -> usize {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fci"));
    c.arg("--workspace")
        .arg(w.ws())
        .arg("fsck")
        .stdin(Stdio::null());
    if !ostree {
        c.arg("--no-ostree");
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: fsck found damage: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().filter(|l| l.starts_with("debris: ")).count()
}

/// The branch's promotion state: the known-good ref's commit, and the set's file (if any).
fn promotion_state(w: &Ws) -> (String, Option<String>) {
    (
        known_good_in(&w.ws().join("ostree/repo")),
        std::fs::read_to_string(w.ws().join("state/known-good/f41.json")).ok(),
    )
}

/// Puts the branch's promotion state back as it was before the report's first run, so that
/// every killed report really promotes.
fn restore_promotion(w: &Ws, (commit, set): &(String, Option<String>)) {
    ostree_in(
        &w.ws().join("ostree/repo"),
        &["refs", "--force", "--create=fci/f41/known-good", commit],
    );
    let p = w.ws().join("state/known-good/f41.json");
    match set {
        Some(text) => std::fs::write(&p, text).unwrap(),
        None => {
            let _ = std::fs::remove_file(&p);
        }
    }
}

#[test]
fn sigkill_anywhere_in_any_stage_leaves_nothing_running_nothing_damaged_and_a_rerun_agrees() {
    let seed = std::env::var("FCI_CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(SEED);
    eprintln!("crash_e2e: seed {seed} (FCI_CRASH_SEED={seed} cargo test --test crash_e2e reproduces this run)");
    let mut rng = Rng(seed.max(1));
    let w = Ws::new();
    let started = Instant::now();
    // A bootable base (smoke boots it), and a dist-git repository for the watch.
    init_base_with(&w, &[], None, |_| {});
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = w.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        "dist_git: ./rpms\nbranches: [f41]\npackages: [tally]\n",
    )
    .unwrap();
    let first = w.run(&["watch", "--config", cfg.to_str().unwrap(), "--once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let gating = w.path().join("gating.yaml");
    std::fs::write(&gating, COMPOSE_GATING).unwrap();

    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let p = |n: &str| w.path().join(n).to_string_lossy().into_owned();
    let example = example("hello-atomic").to_string_lossy().into_owned();
    let integration = repo_root()
        .join("examples/integration")
        .to_string_lossy()
        .into_owned();
    let la = lookaside();
    let mut stages = vec![
        Stage {
            name: "watch",
            args: s(&["watch", "--config", &cfg.to_string_lossy(), "--once"]),
            kills: 6,
            ostree: false,
        },
        Stage {
            name: "build",
            args: s(&["build", &example, "--branch", "f41", "--lookaside", &la]),
            kills: 5,
            ostree: false,
        },
        Stage {
            name: "test",
            args: s(&["test"]),
            kills: 2,
            ostree: false,
        },
        Stage {
            name: "compose",
            args: s(&["compose"]),
            kills: 6,
            ostree: true,
        },
        Stage {
            name: "integrate",
            args: s(&["integrate", "--tests", &integration]),
            kills: 2,
            ostree: false,
        },
        Stage {
            name: "image",
            args: s(&["image", "--force"]),
            kills: 2,
            ostree: true,
        },
        Stage {
            name: "smoke",
            args: s(&[
                "smoke",
                "--check",
                "hello-atomic | grep -q 'Hello, atomic host'",
            ]),
            kills: 2,
            ostree: false,
        },
        Stage {
            name: "report",
            args: s(&[
                "report",
                "--gating",
                &gating.to_string_lossy(),
                "--decision-context",
                "fci_promote",
                "--promote",
            ]),
            kills: 7,
            ostree: true,
        },
    ];
    let mut input: Option<String> = None;
    let mut total_kills = 0;
    let mut summary = Vec::new();
    for st in &mut stages {
        // Every run really does the work (a cached result would end at once), on the
        // manifest the stage before last ended with.
        if st.name != "watch" {
            st.args.push("--no-cache".into());
        }
        if let Some(m) = &input {
            st.args.extend(["-m".to_string(), m.clone()]);
        }
        if st.name == "watch" {
            d.push("tally", "f41", ALICE, "reference change");
        }
        let before_report = (st.name == "report").then(|| promotion_state(&w));
        let out = PathBuf::from(p(&format!("{}-reference.json", st.name)));
        let (reference, took) = run(&w, st, &out);
        assert!(
            reference.code == 0,
            "seed {seed}: the reference {} failed: {reference:?}: {}",
            st.name,
            std::fs::read_to_string(out.with_extension("err")).unwrap_or_default()
        );
        let promoted = before_report.as_ref().map(|_| promotion_state(&w));
        let mut last_out = out;
        let mut window = took;
        let (mut kills, mut attempts, mut debris) = (0, 0, 0);
        while kills < st.kills {
            attempts += 1;
            assert!(
                attempts <= st.kills * 4,
                "seed {seed}: {} ended before its kill {attempts} times",
                st.name
            );
            let pushed = (st.name == "watch")
                .then(|| d.push("tally", "f41", ALICE, &format!("change {attempts}")));
            if let Some(state) = &before_report {
                restore_promotion(&w, state);
            }
            let delay = Duration::from_millis(rng.below(window.as_millis() as u64));
            let what = format!(
                "seed {seed}: {} killed after {delay:?} (attempt {attempts})",
                st.name
            );
            let killed_out = PathBuf::from(p(&format!("{}-killed-{attempts}.json", st.name)));
            let mut child = command(&w, &st.args, &killed_out).spawn().unwrap();
            let spawned = Instant::now();
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                let waited = spawned.elapsed();
                if waited >= delay {
                    break None;
                }
                std::thread::sleep((delay - waited).min(Duration::from_millis(5)));
            };
            if let Some(status) = finished {
                // The stage runs faster now than its reference did (warm caches): kills
                // are drawn within the quicker run's time from now on.
                window = window.min(spawned.elapsed());
                // It ended before its kill: an unkilled run, which must agree too.
                let e = Ending {
                    code: status.code().unwrap_or(-1),
                    verdict: verdict_of(st.name, &killed_out),
                };
                assert_eq!(e, reference, "{what}: ended by itself");
                last_out = killed_out;
                continue;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            nothing_left(&w, &what);
            debris += fsck_clean(&w, st.ostree, &what);
            let rerun_out = PathBuf::from(p(&format!("{}-rerun-{attempts}.json", st.name)));
            let (again, _) = run(&w, st, &rerun_out);
            assert_eq!(
                again,
                reference,
                "{what}: the rerun disagrees: {}",
                std::fs::read_to_string(rerun_out.with_extension("err")).unwrap_or_default()
            );
            if let Some(commit) = &pushed {
                // Heads are saved only once the manifests are out: a change is emitted by
                // the killed watch or by its rerun, never lost.
                let emitted = [&killed_out, &rerun_out].iter().any(|p| {
                    std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .contains(commit.as_str())
                });
                assert!(emitted, "{what}: change {commit} was never emitted");
            }
            if let Some(state) = &promoted {
                // The promotion is whole: the ref and the set as the reference left them.
                let now = promotion_state(&w);
                assert_eq!(now.0, state.0, "{what}: the known-good ref");
                let set = |t: &Option<String>| {
                    t.as_deref()
                        .and_then(|t| serde_json::from_str::<Value>(t).ok())
                        .map(|v| v["tally"]["commit"].clone())
                };
                assert_eq!(set(&now.1), set(&state.1), "{what}: the known-good set");
            }
            last_out = rerun_out;
        }
        nothing_left(&w, st.name);
        total_kills += kills;
        summary.push(format!(
            "{}: reference {:?} in {took:?}, {kills} kills in {attempts} attempts, {debris} debris",
            st.name, reference
        ));
        if st.name != "watch" {
            input = Some(last_out.to_string_lossy().into_owned());
        }
    }
    let f = fsck_clean(&w, true, "at the end");
    eprintln!(
        "crash_e2e: seed {seed}: {total_kills} kills in {:?}; debris left at the end: {f}\n  {}",
        started.elapsed(),
        summary.join("\n  ")
    );
    assert!(total_kills >= 30, "seed {seed}: only {total_kills} kills");
}
