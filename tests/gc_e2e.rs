//! `fci gc` end to end, on real runs of the example (rpmbuild, STI/tmt, an OSTree compose,
//! `report --promote`): what it keeps still verifies (report, bundle, the known-good checkout,
//! `ostree fsck`), what it removes is what no kept run references, `--dry-run` removes
//! nothing, a stage running beside it keeps its verdict, and a bad policy is the caller's.

mod common;
use common::promote::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, tool::BASE, tool::COMPOSE];

/// A copy of the example whose Release is `release`: a new change, nothing reused.
fn change(w: &Ws, release: usize) -> PathBuf {
    let dir = w
        .path()
        .join(format!("change-{release}"))
        .join("hello-atomic");
    copy_tree(&example("hello-atomic"), &dir);
    let spec = dir.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec).unwrap();
    let text = text.replace(
        "Release:        1%{?dist}",
        &format!("Release:        {release}%{{?dist}}"),
    );
    assert!(text.contains(&format!("Release:        {release}%")));
    std::fs::write(&spec, text).unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn stage(w: &Ws, verb: &str, m: &Value, name: &str) -> Value {
    let p = w.save(name, m);
    let r = w.run(&[verb, "-m", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{verb}: {}", r.stderr);
    r.manifest()
}

fn build(w: &Ws, release: usize) -> Value {
    let src = change(w, release);
    let r = Run::from(w.cmd().args(build_args(&src)).output().unwrap());
    assert_eq!(r.code, 0, "build: {}", r.stderr);
    r.manifest()
}

fn build_args(src: &Path) -> Vec<String> {
    vec![
        "build".into(),
        src.display().to_string(),
        "--branch".into(),
        "f41".into(),
        "--lookaside".into(),
        lookaside(),
    ]
}

/// Runs `cmd` to its end with gc (`args`) run over and over beside it; its exit code.
fn beside_gc(w: &Ws, mut cmd: std::process::Command, args: &[&str]) -> Option<i32> {
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        let r = gc(w, args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "it never ended"
        );
    }
}

/// One change through build → test → compose → report --promote; the compose manifest
/// (saved as `compose-<release>.json`) and the promoted one.
fn pipeline(w: &Ws, release: usize) -> (PathBuf, Value) {
    let b = build(w, release);
    let t = stage(w, "test", &b, &format!("build-{release}.json"));
    let c = stage(w, "compose", &t, &format!("test-{release}.json"));
    let cp = w.save(&format!("compose-{release}.json"), &c);
    let p = promote_with(w, &c, &format!("promote-{release}.json"), COMPOSE_GATING);
    assert_eq!(p.code, 0, "promote: {}", p.stderr);
    (cp, p.manifest())
}

fn gc(w: &Ws, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .arg("gc")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

/// Every file below the workspace, with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && !e.path().to_string_lossy().contains("/locks/"))
        .map(|e| (e.path().display().to_string(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

fn paths_of(m: &Value, kind: &str) -> Vec<String> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == kind)
        .map(|a| a["path"].as_str().unwrap().to_string())
        .collect()
}

fn run_id(m: &Value) -> String {
    m["run"]["id"].as_str().unwrap().to_string()
}

#[test]
fn gc_removes_what_no_kept_run_needs_and_what_it_keeps_still_verifies() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let runs: Vec<(PathBuf, Value)> = (1..=3).map(|i| pipeline(&w, i)).collect();
    let repo = w.ws().join("ostree/repo");
    let (last_compose, last) = &runs[2];
    assert_eq!(
        known_good_in(&repo),
        last_compose_commit(last_compose),
        "the last change is known-good"
    );

    // --dry-run lists, and removes nothing.
    let before = files(&w.ws());
    let dry = gc(&w, &["--keep-runs", "1", "--grace", "0", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("gc: would remove"), "{}", dry.stderr);
    let old_rpm = &paths_of(&runs[0].1, "rpm")[0];
    assert!(
        dry.stdout
            .lines()
            .any(|l| old_rpm.starts_with(l.split('\t').nth(1).unwrap())),
        "the first run's RPM is listed: {}",
        dry.stdout
    );
    assert_eq!(files(&w.ws()), before, "--dry-run removed something");
    // A size no workspace fits: every run goes but the known-good's (the last one).
    let dry = gc(
        &w,
        &[
            "--max-size",
            "1",
            "--keep-runs",
            "100",
            "--grace",
            "0",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let j: Value = serde_json::from_str(dry.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(j["removed_runs"], 2, "{j}");
    assert_eq!(j["kept_runs"], 1, "{j}");
    assert!(
        dry.stdout
            .contains(&format!("records/{}", run_id(&runs[0].1))),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains(&format!("records/{}", run_id(last))),
        "{}",
        dry.stdout
    );
    assert_eq!(files(&w.ws()), before, "--dry-run removed something");

    let r = gc(
        &w,
        &[
            "--keep-runs",
            "1",
            "--grace",
            "0",
            "--ostree-depth",
            "1",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(summary.len(), 1, "one summary line: {}", r.stderr);
    assert!(summary[0].contains("gc: removed "), "{}", r.stderr);
    assert!(summary[0].contains("workspace now"), "{}", r.stderr);
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["removed_runs"], 2, "{j}");
    assert!(
        j["bytes_after"].as_u64() < j["bytes_before"].as_u64(),
        "{j}"
    );

    // The dropped runs' products and records are gone; so are their candidate refs.
    for (_, m) in &runs[..2] {
        for p in paths_of(m, "rpm") {
            assert!(
                !w.ws().join(&p).exists(),
                "{p} of a dropped run is still there"
            );
        }
        assert!(!w.ws().join("state/records").join(run_id(m)).exists());
        let refs = ostree_in(&repo, &["refs"]);
        assert!(!refs.contains(&run_id(m)), "{refs}");
    }
    // The kept run: its candidate ref, every artifact verifies (report, bundle), the
    // known-good checks out, the repository is sound.
    let refs = ostree_in(&repo, &["refs"]);
    assert!(
        refs.contains(&format!("fci/f41/candidate/{}", run_id(last))),
        "{refs}"
    );
    let rep = w.run(&["report", "-m", last_compose.to_str().unwrap()]);
    assert_eq!(rep.code, 0, "report of a kept run: {}", rep.stderr);
    let promoted = w.save("promoted-3.json", last);
    let bundle = w.path().join("kept.fci-bundle");
    let b = w.run(&[
        "bundle",
        "-m",
        promoted.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "bundle of a kept run: {}", b.stderr);
    let co = w.path().join("checkout");
    ostree_in(
        &repo,
        &["checkout", "-U", "fci/f41/known-good", co.to_str().unwrap()],
    );
    assert!(co.join("usr/bin/hello-atomic").is_file());
    ostree_in(&repo, &["fsck"]);

    // A second gc finds nothing more to remove of what the kept run needs.
    let again = gc(
        &w,
        &[
            "--keep-runs",
            "1",
            "--grace",
            "0",
            "--ostree-depth",
            "1",
            "--json",
        ],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let j: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(j["removed_runs"], 0, "{j}");
    let rep = w.run(&["report", "-m", last_compose.to_str().unwrap()]);
    assert_eq!(rep.code, 0, "{}", rep.stderr);
}

fn last_compose_commit(compose: &Path) -> String {
    let m: Value = serde_json::from_str(&std::fs::read_to_string(compose).unwrap()).unwrap();
    m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["name"] == "compose")
        .unwrap()["data"]["commit"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_stage_running_beside_gc_keeps_its_verdict() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    // An older run, which the aggressive policy removes while the compose runs.
    let old = build(&w, 1);
    let aggressive = ["--keep-runs", "1", "--grace", "0", "--ostree-depth", "0"];
    // The same change built again reuses the old run's cache entry, while gc keeps only the
    // newest run: the new run's record names the entry, so what it reused stays.
    let rebuilt_json = w.path().join("rebuilt-1.json");
    let mut again = w.cmd();
    again
        .args(build_args(&w.path().join("change-1/hello-atomic")))
        .args(["-o", rebuilt_json.to_str().unwrap()]);
    assert_eq!(
        beside_gc(&w, again, &aggressive),
        Some(0),
        "a reusing build beside gc"
    );
    let rebuilt: Value =
        serde_json::from_str(&std::fs::read_to_string(&rebuilt_json).unwrap()).unwrap();
    let rec = rebuilt["stages"].as_array().unwrap().last().unwrap();
    assert_eq!(rec["cached"], true, "{rec}");
    let r = gc(&w, &aggressive);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = w.path().join("rebuilt.fci-bundle");
    let r = w.run(&[
        "bundle",
        "-m",
        rebuilt_json.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(
        r.code, 0,
        "bundle of the run that reused the entry: {}",
        r.stderr
    );
    // A compose beside gc, which drops both runs of release 1 meanwhile.
    let b = build(&w, 2);
    let bp = w.save("build-2.json", &b);
    let out = w.path().join("compose-2.json");
    let mut compose = w.cmd();
    compose.args([
        "compose",
        "-m",
        bp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        beside_gc(&w, compose, &aggressive),
        Some(0),
        "compose beside gc"
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let c = m["stages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(c["name"], "compose");
    assert_eq!(c["outcome"], "PASSED", "{c}");
    // gc once more after: the compose's run is the newest, kept whole.
    let r = gc(&w, &aggressive);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in paths_of(&old, "rpm") {
        assert!(
            !w.ws().join(&p).exists(),
            "{p} of the old run is still there"
        );
    }
    let bundle = w.path().join("b.fci-bundle");
    let r = w.run(&[
        "bundle",
        "-m",
        out.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "bundle after gc: {}", r.stderr);
    let r = w.run(&["report", "-m", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "report after gc: {}", r.stderr);
    ostree_in(&w.ws().join("ostree/repo"), &["fsck"]);
}

#[test]
fn a_bad_gc_policy_is_the_callers_mistake_naming_the_file() {
    let w = Ws::new();
    for (policy, says) in [
        ("gc: {keep_runs: 3, max_age: 2x}", "max_age"),
        ("gc: {keep: 3}", "keep"),
        ("gc: {max_size: lots}", "max_size"),
    ] {
        let cfg = w.path().join("fci.yaml");
        std::fs::write(
            &cfg,
            format!("dist_git: https://src.example.org\nbranches: [f41]\npackages: [hello-atomic]\n{policy}\n"),
        )
        .unwrap();
        let r = w.run(&["gc", "--config", cfg.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{policy}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{policy}: one line: {}", r.stderr);
        assert!(lines[0].contains(cfg.to_str().unwrap()), "{}", r.stderr);
        assert!(lines[0].contains(says), "{}", r.stderr);
    }
    // A good one is applied (an empty workspace: nothing to remove).
    let cfg = w.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        "dist_git: https://src.example.org\nbranches: [f41]\npackages: [hello-atomic]\ngc: {keep_runs: 3, max_age: 14d, max_size: 20G}\n",
    )
    .unwrap();
    let r = w.run(&["gc", "--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
