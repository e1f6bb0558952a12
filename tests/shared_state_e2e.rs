//! Pipeline state apart from the workspace (issue 17 item 1): two workers, each with a
//! workspace of its own, share one state directory (`FCI_STATE`, as on a shared volume): the
//! OSTree repository with the known-good refs, the known-good set, the exclusions, the watch's
//! heads and the runs' records. Two changes tested on the same base race to promote: exactly
//! one moves the base; the other is neither promoted nor excluded but queued, and the next
//! `fci watch` emits it again on the new base, where it passes and is promoted in turn.

mod common;
use common::promote::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE, &[tool::GIT]];

/// fci in `w`'s workspace with the shared state `state`.
fn with_state(w: &Ws, state: &Path, args: &[&str]) -> Run {
    Run::from(w.cmd().env("FCI_STATE", state).args(args).output().unwrap())
}

/// A dist-git repository for `name` on branch f41, from `src` (a package directory).
fn distgit(rpms: &Path, name: &str, src: &Path) -> PathBuf {
    let repo = rpms.join(name);
    let st = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    for args in [
        &["init", "-q", "-b", "f41"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=Alice",
            "-c",
            "user.email=alice@example.org",
            "commit",
            "-q",
            "-m",
            "import",
        ],
    ] {
        let st = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    }
    repo
}

/// build → compose of the watch's manifest `m` in `w`: the composed manifest.
fn build_and_compose(w: &Ws, state: &Path, m: &Value, name: &str) -> Value {
    let p = w.save(&format!("{name}-watch.json"), m);
    let la = lookaside();
    let b = with_state(
        w,
        state,
        &["build", "-m", p.to_str().unwrap(), "--lookaside", &la],
    );
    assert_eq!(b.code, 0, "{name}: {}", b.stderr);
    let p = w.save(&format!("{name}-built.json"), &b.manifest());
    let c = with_state(w, state, &["compose", "-m", p.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{name}: {}", c.stderr);
    c.manifest()
}

/// `fci report --promote` of `m` in `w`, gating on build and compose.
fn promote(w: &Ws, state: &Path, m: &Value, name: &str) -> Run {
    let p = w.save(&format!("{name}-composed.json"), m);
    let g = w.path().join(format!("gating-{name}.yaml"));
    std::fs::write(&g, COMPOSE_GATING).unwrap();
    with_state(
        w,
        state,
        &[
            "report",
            "-m",
            p.to_str().unwrap(),
            "--gating",
            g.to_str().unwrap(),
            "--decision-context",
            "fci_promote",
            "--promote",
        ],
    )
}

fn package_of(m: &Value) -> &str {
    m["subject"]["package"].as_str().unwrap()
}

#[test]
fn two_workers_race_to_promote_and_the_loser_is_retested_on_the_new_base() {
    let w1 = Ws::new();
    let w2 = Ws::new();
    let state = w1.path().join("shared-state");
    let base = make_base(&w1, &["--no-kernel"], |_| {});
    let r = with_state(
        &w1,
        &state,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The repository is the state's, not the workspace's.
    let repo = state.join("ostree/repo");
    assert!(repo.join("config").is_file());
    assert!(!w1.ws().join("ostree/repo/config").exists());
    let first_base = known_good_in(&repo);

    let rpms = w1.path().join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    distgit(&rpms, "hello-atomic", &example("hello-atomic"));
    distgit(&rpms, "compose-etc", &fixture("compose-etc"));
    let cfg = w1.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        "dist_git: ./rpms\nbranches: [f41]\npackages: [hello-atomic, compose-etc]\n",
    )
    .unwrap();
    let watch = |w: &Ws, extra: &[&str]| {
        let mut args = vec!["watch", "--config", cfg.to_str().unwrap(), "--once"];
        args.extend_from_slice(extra);
        with_state(w, &state, &args)
    };
    // The master's watch emits both heads; each goes to a worker of its own.
    let r = watch(&w1, &["--emit-existing"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ms.len(), 2, "{}", r.stdout);
    // The heads are the pipeline's: a second watcher on another worker sees nothing new.
    let again = watch(&w2, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.trim().is_empty(), "{}", again.stdout);

    let (ma, mb) = (&ms[0], &ms[1]);
    let (ca, cb) = std::thread::scope(|s| {
        let a = s.spawn(|| build_and_compose(&w1, &state, ma, "a"));
        let b = s.spawn(|| build_and_compose(&w2, &state, mb, "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    for c in [&ca, &cb] {
        assert_eq!(c["subject"]["base"]["ostree_commit"], first_base.as_str());
    }
    // Both report at once: the promotion is a compare-and-swap under the state's lock.
    let (ra, rb) = std::thread::scope(|s| {
        let a = s.spawn(|| promote(&w1, &state, &ca, "a"));
        let b = s.spawn(|| promote(&w2, &state, &cb, "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let won: Vec<&Run> = [&ra, &rb].into_iter().filter(|r| r.code == 0).collect();
    assert_eq!(
        won.len(),
        1,
        "a {}: {}\nb {}: {}",
        ra.code,
        ra.stderr,
        rb.code,
        rb.stderr
    );
    let (winner, loser, loser_m, loser_w) = if ra.code == 0 {
        (&ca, &rb, mb, &w2)
    } else {
        (&cb, &ra, ma, &w1)
    };
    // Not the packager's failure: ERROR, exit 3 (the base moved under it).
    assert_eq!(loser.code, 3, "{}", loser.stderr);
    let lm = loser.manifest();
    let s = loser.stage(&lm, "report");
    assert_eq!(s["data"]["needs_retest"], true, "{s:#}");
    assert_eq!(s["data"]["retest_queued"], true, "{s:#}");
    let moved = known_good_in(&repo);
    assert_ne!(moved, first_base);
    // Not excluded: the base moving is not the packager's failure.
    assert!(
        !state.join("excluded/f41.json").exists()
            || !std::fs::read_to_string(state.join("excluded/f41.json"))
                .unwrap()
                .contains(package_of(loser_m))
    );

    // The next watch, on any worker, emits the loser again on the new base.
    let r = watch(&w2, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ms.len(), 1, "{}", r.stdout);
    let retest = &ms[0];
    assert_eq!(package_of(retest), package_of(loser_m));
    assert_eq!(retest["subject"]["commit"], loser_m["subject"]["commit"]);
    assert_eq!(retest["subject"]["base"]["ostree_commit"], moved.as_str());
    assert_ne!(retest["run"]["id"], loser_m["run"]["id"]);
    // Emitted once: the queue is empty after.
    let r = watch(&w1, &[]);
    assert!(r.stdout.trim().is_empty(), "{}", r.stdout);

    let c = build_and_compose(loser_w, &state, retest, "retest");
    let r = promote(loser_w, &state, &c, "retest");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let now = known_good_in(&repo);
    assert_eq!(
        now,
        c["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "ostree-commit")
            .unwrap()["sha256"]
            .as_str()
            .unwrap()
    );
    let set: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("known-good/f41.json")).unwrap())
            .unwrap();
    assert!(set.get(package_of(winner)).is_some(), "{set:#}");
    assert!(set.get(package_of(loser_m)).is_some(), "{set:#}");
    let fsck = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
}

/// A workspace that keeps its own pipeline state cannot be given a shared one (its known-good
/// would split in two); one given a state keeps it.
#[test]
fn a_workspace_keeps_one_pipeline_state() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let state = w.path().join("shared-state");
    let base = w.path().join("base");
    let r = with_state(
        &w,
        &state,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("keeps its own pipeline state"),
        "{}",
        r.stderr
    );

    let w2 = Ws::new();
    let base = make_base(&w2, &["--no-kernel"], |_| {});
    let r = with_state(
        &w2,
        &state,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other = w2.path().join("other-state");
    let r = with_state(
        &w2,
        &other,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("uses the pipeline state"), "{}", r.stderr);
}

/// fci.yaml's `state:` (relative to the file) gives the pipeline state to `fci watch` and,
/// through the fci.yaml its manifests pin, to every stage of a worker told nothing; `--state`
/// or `FCI_STATE` still wins over it.
#[test]
fn fci_yaml_names_the_state_for_the_watch_and_every_worker() {
    let w1 = Ws::new();
    let state = w1.path().join("shared-state");
    let base = make_base(&w1, &["--no-kernel"], |_| {});
    let r = with_state(
        &w1,
        &state,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let repo = state.join("ostree/repo");
    let rpms = w1.path().join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    distgit(&rpms, "hello-atomic", &example("hello-atomic"));
    let cfg = w1.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        "dist_git: ./rpms\nbranches: [f41]\npackages: [hello-atomic]\nstate: shared-state\n",
    )
    .unwrap();

    // The watch, on a machine of its own, told nothing but --config.
    let watcher = Ws::new();
    let r = Run::from(
        watcher
            .cmd()
            .args(["watch", "--config", cfg.to_str().unwrap()])
            .args(["--once", "--emit-existing"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert!(state.join("watch").exists(), "the heads are the state's");
    assert_eq!(
        std::fs::read_to_string(watcher.ws().join("pipeline-state"))
            .unwrap()
            .trim(),
        state.to_str().unwrap()
    );

    // A worker told nothing: the manifest's pinned fci.yaml names the state.
    let worker = Ws::new();
    let p = worker.save("watch.json", &m);
    let b = Run::from(
        worker
            .cmd()
            .args([
                "build",
                "-m",
                p.to_str().unwrap(),
                "--lookaside",
                &lookaside(),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    let p = worker.save("built.json", &b.manifest());
    let c = Run::from(
        worker
            .cmd()
            .args(["compose", "-m", p.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert_eq!(
        c.manifest()["subject"]["base"]["ostree_commit"],
        known_good_in(&repo).as_str()
    );
    assert!(!worker.ws().join("ostree/repo/config").exists());

    // FCI_STATE wins over the fci.yaml: this worker keeps the state it was given.
    let other = Ws::new();
    let elsewhere = other.path().join("elsewhere");
    let p = other.save("watch.json", &m);
    let b = with_state(
        &other,
        &elsewhere,
        &[
            "build",
            "-m",
            p.to_str().unwrap(),
            "--lookaside",
            &lookaside(),
        ],
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(
        std::fs::read_to_string(other.ws().join("pipeline-state"))
            .unwrap()
            .trim(),
        elsewhere.to_str().unwrap()
    );
}
