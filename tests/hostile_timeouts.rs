//! A timeout is never a success, in any stage: each stage run with a tiny `--timeout` on slow
//! work is ERROR (or FAILED, where the package's own verdict came first), with no OSTree
//! commit, no candidate ref, no image and no cached result (a rerun without `--no-cache` runs
//! again). And a payload compose cannot install (a FIFO rpm would block on, a device node) is
//! the package's failure, found before rpm runs. Fixtures: `tests/hostile/*`, each with its
//! PROMISE.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    tool::SMOKE,
];

fn hostile(name: &str) -> PathBuf {
    repo_root().join("tests/hostile").join(name)
}

fn build_hostile(w: &Ws, name: &str) -> Value {
    let dir = hostile(name);
    let r = w.run(&["build", dir.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.manifest()
}

fn repo(w: &Ws) -> PathBuf {
    w.ws().join("ostree/repo")
}

/// The repository's refs.
fn refs(w: &Ws) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo(w).display()))
        .arg("refs")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many commit objects the repository holds.
fn commits(w: &Ws) -> usize {
    let out = Command::new("find")
        .arg(repo(w).join("objects"))
        .args(["-name", "*.commit"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn stage_run(w: &Ws, stage: &str, m: &Value, extra: &[&str]) -> Run {
    let p = w.save(&format!("{stage}-{}.json", uuid::Uuid::new_v4()), m);
    let mut args = vec![stage, "-m", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn notes(s: &Value) -> String {
    s["notes"].to_string()
}

fn has_artifact(m: &Value, kind: &str) -> bool {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == kind)
}

/// The stage's log, as stored in the workspace.
fn stage_log(w: &Ws, s: &Value) -> String {
    std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap()
}

/// Runs `stage` twice the same way (no --no-cache): `check` judges each run, and the second
/// must have run again, not reused the first.
fn twice(w: &Ws, stage: &str, m: &Value, extra: &[&str], check: impl Fn(&Run, &Value)) {
    for attempt in 1..=2 {
        let r = stage_run(w, stage, m, extra);
        let out = r.manifest();
        let s = r.stage(&out, stage);
        check(&r, s);
        assert_eq!(s["cached"], false, "run {attempt} reused a result: {s:#}");
        assert!(
            s["data"]["cached_from_run"].is_null(),
            "run {attempt}: {s:#}"
        );
    }
}

#[test]
fn a_compose_whose_install_is_killed_at_its_timeout_is_an_error_leaving_nothing() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = build_hostile(&w, "slow-install");
    assert_eq!(commits(&w), 1);
    twice(
        &w,
        "compose",
        &built,
        &["--branch", "f41", "--timeout", "1"],
        |r, s| {
            assert_eq!(r.code, 3, "{}", r.stderr);
            assert_eq!(s["outcome"], "ERROR", "{s:#}");
            let n = notes(s);
            assert!(
                n.contains("rpm was killed after 1s") && n.contains("--timeout 1"),
                "{n}"
            );
            assert!(s["data"]["commit"].is_null(), "{s:#}");
            assert!(!has_artifact(&r.manifest(), "ostree-commit"));
            assert!(r.stderr.contains("--timeout 1"), "{}", r.stderr);
        },
    );
    // No commit was made of the half-installed tree, and no candidate ref points anywhere.
    assert_eq!(commits(&w), 1, "a commit beside the base");
    let refs = refs(&w);
    assert!(!refs.contains("candidate"), "{refs}");
    w.assert_no_process("slow-install-1-1", "rpm installing the package");
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn fifos_and_device_nodes_in_the_payload_fail_compose_and_test_before_rpm_runs() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    for (fixture, path, kind) in [
        ("fifo-payload", "/usr/share/fifo-payload/pipe", "a FIFO"),
        (
            "device-payload",
            "/usr/share/device-payload/null",
            "a character device",
        ),
    ] {
        let built = build_hostile(&w, fixture);
        let start = Instant::now();
        // The old compose waited for rpm, blocked on the FIFO, for the whole timeout.
        let r = stage_run(
            &w,
            "compose",
            &built,
            &["--branch", "f41", "--timeout", "20"],
        );
        assert!(
            start.elapsed().as_secs() < 15,
            "{fixture}: took {:?}",
            start.elapsed()
        );
        assert_eq!(r.code, 1, "{fixture}: {}", r.stderr);
        let m = r.manifest();
        let s = r.stage(&m, "compose");
        assert_eq!(s["outcome"], "FAILED", "{s:#}");
        let n = notes(s);
        assert!(n.contains(&format!("{path} ({kind})")), "{n}");
        assert!(!has_artifact(&m, "ostree-commit"));
        let log = stage_log(&w, s);
        assert!(!log.contains("$ rpm --root"), "rpm ran:\n{log}");

        // fci test installs the packages too (outside the sandbox): the same check first.
        // The old test stage waited on the FIFO forever, whatever its --timeout.
        let start = Instant::now();
        let tests = common::fixture("plain-sti");
        let r = stage_run(
            &w,
            "test",
            &built,
            &["--timeout", "20", "--tests-from", tests.to_str().unwrap()],
        );
        assert!(
            start.elapsed().as_secs() < 15,
            "{fixture}: fci test took {:?}",
            start.elapsed()
        );
        assert_eq!(r.code, 1, "{fixture}: {}", r.stderr);
        let m = r.manifest();
        let s = r.stage(&m, "test");
        assert_eq!(s["outcome"], "FAILED", "{s:#}");
        let n = notes(s);
        assert!(n.contains(&format!("{path} ({kind})")), "{n}");
    }
    assert_eq!(commits(&w), 1);
    assert!(!refs(&w).contains("candidate"));
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_build_killed_at_its_timeout_is_an_error_and_runs_again() {
    let w = Ws::new();
    for attempt in 1..=2 {
        let r = w.build_fixture("slow-build", &["--timeout", "2"]);
        assert_eq!(r.code, 3, "{}", r.stderr);
        let out = r.manifest();
        let b = r.stage(&out, "build");
        assert_eq!(b["outcome"], "ERROR", "{b:#}");
        assert_eq!(b["cached"], false, "run {attempt} reused a result: {b:#}");
        assert!(notes(b).contains("killed after 2s"), "{b:#}");
        assert!(!has_artifact(&out, "rpm"), "{b:#}");
    }
    w.assert_no_process("sleep 62", "the build's process");
    // A spec whose parsing hangs is killed there too: ERROR (the host may be slow), not a
    // spec that "does not parse" (exit 2), also when it is queried before the build.
    let r = w.build_fixture("slow-parse", &["--timeout", "2", "--strict-builddeps"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let out = r.manifest();
    let b = r.stage(&out, "build");
    assert_eq!(b["outcome"], "ERROR", "{b:#}");
    assert!(
        notes(b).contains("rpmspec was killed at the time limit (--timeout 2 for the whole stage"),
        "{b:#}"
    );
    w.assert_no_process("sleep 61", "the spec's process");
}

/// A run of `stage` on the fixture that reports a passing and a failing case and then hangs:
/// killed at the timeout, FAILED (the package's failing case came first); run again with a
/// shorter timeout (not part of the inputs), it runs, instead of reusing that FAILED.
fn failed_then_killed(w: &Ws, stage: &str, m: &Value, tests_flag: &str) {
    // The test and integrate variants share the fixture's `sleep 63`: one at a time, so the
    // no-process check below sees only this run's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tests = hostile("timeout-after-failure");
    let tests = tests.to_str().unwrap();
    let r = stage_run(w, stage, m, &[tests_flag, tests, "--timeout", "10"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let s = r.stage(&out, stage);
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    let got = results(s);
    assert!(got.contains(&("fails".into(), "FAILED".into())), "{got:?}");
    assert!(
        got.contains(&("tests/tests.yml".into(), "ERROR".into())),
        "{got:?}"
    );
    assert!(s.to_string().contains("killed after 10s"), "{s:#}");
    let again = stage_run(w, stage, m, &[tests_flag, tests, "--timeout", "1"]);
    let out = again.manifest();
    let s = again.stage(&out, stage);
    assert_eq!(
        s["cached"], false,
        "the verdict of a killed run was reused: {s:#}"
    );
    assert!(s.to_string().contains("killed after 1s"), "{s:#}");
    assert_ne!(s["outcome"], "PASSED", "{s:#}");
    w.assert_no_process("sleep 63", "the test's process");
}

#[test]
fn a_test_run_killed_after_it_reported_is_never_reused() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    failed_then_killed(&w, "test", &built.manifest(), "--tests-from");
}

#[test]
fn an_integration_run_killed_at_its_timeout_is_never_reused() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let composed = stage_run(&w, "compose", &built.manifest(), &[]);
    assert_eq!(composed.code, 0, "{}", composed.stderr);
    let composed = composed.manifest();
    failed_then_killed(&w, "integrate", &composed, "--tests");
    // A run that only hangs is ERROR, every time.
    let slow = fixture("slow");
    twice(
        &w,
        "integrate",
        &composed,
        &["--tests", slow.to_str().unwrap(), "--timeout", "2"],
        |r, s| {
            assert_eq!(r.code, 3, "{}", r.stderr);
            assert_eq!(s["outcome"], "ERROR", "{s:#}");
            assert!(s.to_string().contains("killed after 2s"), "{s:#}");
        },
    );
    w.assert_no_process("sleep 61", "the test's process");
}

#[test]
fn image_and_smoke_killed_at_their_timeouts_are_not_results() {
    let w = Ws::new();
    // A base with a kernel, and 96 MiB more for the image to copy: its steps take seconds.
    init_base_with(&w, &[], None, |b: &Path| {
        let st = Command::new("head")
            .args(["-c", "100663296", "/dev/urandom"])
            .stdout(std::fs::File::create(b.join("usr/share/ballast")).unwrap())
            .status()
            .unwrap();
        assert!(st.success());
    });
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let composed = stage_run(&w, "compose", &built.manifest(), &[]);
    assert_eq!(composed.code, 0, "{}", composed.stderr);
    let composed = composed.manifest();
    twice(&w, "image", &composed, &["--timeout", "1"], |r, s| {
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert_eq!(s["outcome"], "ERROR", "{s:#}");
        assert!(notes(s).contains("past --timeout"), "{s:#}");
        assert!(!has_artifact(&r.manifest(), "image"));
    });
    let imaged = stage_run(&w, "image", &composed, &[]);
    assert_eq!(imaged.code, 0, "{}", imaged.stderr);
    // The guest cannot boot in 2s under TCG: FAILED, saying so, and never reused.
    twice(
        &w,
        "smoke",
        &imaged.manifest(),
        &["--accel", "tcg", "--timeout", "2"],
        |r, s| {
            assert_eq!(r.code, 1, "{}", r.stderr);
            assert_eq!(s["outcome"], "FAILED", "{s:#}");
            assert!(
                s["results"][0]["note"]
                    .as_str()
                    .unwrap()
                    .contains("killed after 2s"),
                "{s:#}"
            );
        },
    );
    w.assert_no_process("", "a qemu of this workspace");
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_dist_git_server_that_never_answers_is_cut_at_the_timeout() {
    // Accepts every connection and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let w = Ws::new();
    for url in [
        format!("git://127.0.0.1:{port}/rpms/stall.git"),
        format!("http://127.0.0.1:{port}/rpms/stall.git"),
    ] {
        let start = Instant::now();
        let r = w.run(&["build", &url, "--timeout", "3"]);
        assert!(
            start.elapsed().as_secs() < 30,
            "{url}: took {:?}",
            start.elapsed()
        );
        assert_eq!(r.code, 3, "{url}: {}", r.stderr);
        assert!(r.stderr.contains("--timeout 3"), "{url}: {}", r.stderr);
    }
    // The port is this test's own: no other test's process names it.
    assert_no_process_naming(
        &format!("127.0.0.1:{port}/"),
        "a git clone of the stalled server",
    );
}

#[test]
fn the_build_timeout_bounds_the_whole_build() {
    let w = Ws::new();
    let dir = hostile("slow-everywhere-build");
    let started = std::time::Instant::now();
    let r = w.run(&[
        "build",
        dir.to_str().unwrap(),
        "--dist",
        ".fc41",
        "--timeout",
        "5",
    ]);
    let took = started.elapsed();
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR", "{b:#}");
    assert!(notes(b).contains("--timeout"), "{}", notes(b));
    assert!(took.as_secs_f64() < 6.5, "took {took:?}");
}
