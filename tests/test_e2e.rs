//! `fci test` end to end: real ansible-playbook, tmt, rpm and bubblewrap.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST];

fn built(w: &Ws, example_name: &str) -> Value {
    let r = w.build(example_name, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.manifest()
}

#[test]
fn build_piped_into_test_runs_fedora_style_sti_and_tmt_unchanged() {
    let w = Ws::new();
    let mut build = w.cmd();
    build
        .args([
            "build",
            example("hello-atomic").to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &lookaside(),
        ])
        .stdout(Stdio::piped());
    let mut b = build.spawn().unwrap();
    let mut test = w.cmd();
    test.arg("test")
        .stdin(b.stdout.take().unwrap())
        .stdout(Stdio::piped());
    let t = test.output().unwrap();
    assert!(b.wait().unwrap().success());
    let r = Run::from(t);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "PASSED");
    assert_eq!(s["backend"], "sti+tmt");
    // tests/tests.yml uses `role: standard-test-basic` exactly as Fedora's do.
    assert_eq!(case(s, "greeting")["runner"], "sti");
    assert_eq!(case(s, "version")["outcome"], "PASSED");
    let tmt = case(s, "/tests/greeting");
    assert_eq!(tmt["runner"], "tmt");
    assert_eq!(tmt["plan"], "/plans/functional");
    // Each case's log is stored and shows the real run.
    let log =
        std::fs::read_to_string(w.ws().join(case(s, "greeting")["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("got: Hello, fedora!"), "{log}");
    assert!(s["data"]["subject_packages"][0]
        .as_str()
        .unwrap()
        .starts_with("hello-atomic-1.0-1.fc41"));
    // The runs' own reports are kept too.
    let files: Vec<String> = s["data"]["run_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}",
                f["runner"].as_str().unwrap(),
                f["file"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            "sti/test.log",
            "sti/results.yml",
            "tmt/plans-functional-results.yaml"
        ]
    );
    let test_log = s["data"]["run_files"][0]["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(w.ws().join(test_log)).unwrap(),
        "PASS greeting\nPASS version\n"
    );
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_failing_functional_test_is_failed_and_named() {
    let w = Ws::new();
    let m = built(&w, "hello-broken-test");
    let r = w.test(&m, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "FAILED");
    assert_eq!(case(s, "installed")["outcome"], "PASSED");
    assert_eq!(case(s, "spelling")["outcome"], "FAILED");

    // --failed-only reruns just `spelling` and carries `installed` over.
    let again = w.test(&m, &["--failed-only"]);
    assert_eq!(again.code, 1);
    let m2 = again.manifest();
    let s2 = again.stage(&m2, "test");
    assert_eq!(case(s2, "spelling")["outcome"], "FAILED");
    assert!(case(s2, "installed")["note"]
        .as_str()
        .unwrap()
        .contains("not rerun"));
    assert_eq!(s2["data"]["rerun"], serde_json::json!(["spelling"]));
    assert_eq!(
        m2["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == "test")
            .count(),
        2
    );
}

#[test]
fn retries_record_every_attempt_and_a_flaky_pass() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let flaky = fixture("flaky");
    let once = w.test(&m, &["--tests-from", flaky.to_str().unwrap()]);
    assert_eq!(once.code, 1);
    let r = w.test(
        &m,
        &["--tests-from", flaky.to_str().unwrap(), "--retries", "2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    let f = case(s, "flaky");
    assert_eq!(f["outcome"], "PASSED");
    let attempts = f["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "FAILED");
    assert_eq!(attempts[1]["outcome"], "PASSED");
    assert!(f["note"].as_str().unwrap().contains("flaky"));
    let first_log =
        std::fs::read_to_string(w.ws().join(attempts[0]["log"].as_str().unwrap())).unwrap();
    assert!(first_log.contains("first try fails"));
    // The steady test ran once only.
    assert!(case(s, "steady")["attempts"].as_array().is_none());
}

#[test]
fn tests_cannot_touch_the_host_the_network_or_secrets() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let iso = fixture("isolation");
    let out = w
        .cmd()
        .env("FCI_SECRET_TOKEN", "s3cret")
        .args([
            "test",
            "--runner",
            "sti",
            "--tests-from",
            iso.to_str().unwrap(),
            "-m",
            w.save("m.json", &m).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    for (name, outcome) in results(s) {
        assert_eq!(outcome, "PASSED", "isolation case {name} failed: {s:#}");
    }
    assert_eq!(results(s).len(), 7);
    assert!(!std::path::Path::new("/usr/fci-escape-probe").exists());
    assert!(!r.stdout.contains("s3cret"));
}

#[test]
fn a_playbook_that_runs_nothing_is_an_error_not_a_pass() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &["--tests-from", fixture("noresults").to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "ERROR");
    let c = case(s, "tests/tests.yml");
    assert!(c["note"].as_str().unwrap().contains("nothing ran"));
}

#[test]
fn a_failing_tmt_test_is_failed_and_named() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(&m, &["--tests-from", fixture("tmtfail").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["backend"], "tmt");
    assert_eq!(case(s, "/tests/good")["outcome"], "PASSED");
    assert_eq!(case(s, "/tests/bad")["outcome"], "FAILED");
}

#[test]
fn unchanged_test_inputs_reuse_the_result() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let first = w.test(&m, &["--runner", "tmt"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = w.test(&m, &["--runner", "tmt"]);
    let m2 = again.manifest();
    assert_eq!(again.stage(&m2, "test")["cached"], true);
    let fresh = w.test(&m, &["--runner", "tmt", "--no-cache"]);
    let m3 = fresh.manifest();
    assert_eq!(fresh.stage(&m3, "test")["cached"], false);
}

#[test]
fn a_hung_test_is_killed_at_the_timeout_and_is_an_error() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &[
            "--tests-from",
            fixture("slow").to_str().unwrap(),
            "--timeout",
            "4",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "ERROR");
    let c = case(s, "tests/tests.yml");
    assert!(
        c["note"].as_str().unwrap().contains("killed after 4s"),
        "{c}"
    );
    assert!(s["duration_s"].as_f64().unwrap() < 30.0);
    w.assert_no_process("sleep 61", "the test's process");
}

#[test]
fn a_plain_sti_playbook_reports_through_results_yml() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &["--tests-from", fixture("plain-sti").to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "FAILED");
    assert_eq!(case(s, "works")["outcome"], "PASSED");
    assert!(case(s, "works")["log"].is_string());
    assert_eq!(case(s, "broken")["outcome"], "FAILED");
    assert_eq!(case(s, "unrunnable")["outcome"], "ERROR");
}

#[test]
fn a_missing_required_package_is_an_error_that_says_which() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(&m, &["--tests-from", fixture("required").to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    let note = case(s, "tests/tests.yml")["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("required package(s) not in the test subject: no-such-package"),
        "{note}"
    );
}

#[test]
fn tags_select_the_plays_that_run() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let tagged = fixture("tagged");
    let classic = w.test(&m, &["--tests-from", tagged.to_str().unwrap()]);
    assert_eq!(classic.code, 0, "{}", classic.stderr);
    let names: Vec<String> = results(classic.stage(&classic.manifest(), "test"))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(names, ["on-classic"]);
    let atomic = w.test(
        &m,
        &["--tests-from", tagged.to_str().unwrap(), "--tags", "atomic"],
    );
    let names: Vec<String> = results(atomic.stage(&atomic.manifest(), "test"))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(names, ["on-atomic"]);
}

#[test]
fn unknown_manifest_fields_survive_both_stages() {
    let w = Ws::new();
    let mut m = built(&w, "hello-atomic");
    m["x-scheduler"] = serde_json::json!({"job": 42});
    m["run"]["x-trigger"] = "git.receive".into();
    m["artifacts"][0]["x-signed"] = true.into();
    m["stages"][0]["x-node"] = "worker-1".into();
    let r = w.test(&m, &["--runner", "sti"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.manifest();
    assert_eq!(out["x-scheduler"]["job"], 42);
    assert_eq!(out["run"]["x-trigger"], "git.receive");
    assert_eq!(out["artifacts"][0]["x-signed"], true);
    assert_eq!(out["stages"][0]["x-node"], "worker-1");
    assert_eq!(out["run"]["id"], m["run"]["id"]);
}

#[test]
fn the_new_rpms_join_a_base_tree_and_its_package_set() {
    let w = Ws::new();
    // A base tree with a package of its own installed, as a known-good tree would have.
    let base_build = built(&w, "hello-broken-test");
    let base_rpm = base_build["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .unwrap();
    let base = w.path().join("base");
    std::fs::create_dir_all(base.join("usr/share/fci-base")).unwrap();
    std::fs::write(base.join("usr/share/fci-base/marker"), "from the base\n").unwrap();
    let st = std::process::Command::new("rpm")
        .arg("--root")
        .arg(&base)
        .args([
            "--dbpath",
            "/usr/lib/sysimage/rpm",
            "-i",
            "--nodeps",
            "--noscripts",
            "--force-debian",
        ])
        .arg(w.ws().join(base_rpm["path"].as_str().unwrap()))
        .status()
        .unwrap();
    assert!(st.success());
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &[
            "--tests-from",
            fixture("base").to_str().unwrap(),
            "--base-root",
            base.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(results(s).len(), 4, "{s:#}");
    let pkgs = s["data"]["subject_packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 2, "{pkgs:?}");
    // The base itself is untouched.
    let q = std::process::Command::new("rpm")
        .arg("--root")
        .arg(&base)
        .args(["--dbpath", "/usr/lib/sysimage/rpm", "-qa"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&q.stdout).lines().count(), 1);
}

#[test]
fn hostile_test_output_cannot_plant_files_or_read_the_host() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &["--tests-from", fixture("hostile-output").to_str().unwrap()],
    );
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(r.code, 1, "{s:#}");
    // The setuid "log" is stored as a plain file; the others are not stored at all.
    let suid = case(s, "suid");
    let stored = w.ws().join(suid["log"].as_str().unwrap());
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o7000, 0, "stored log keeps special bits: {mode:o}");
    assert!(case(s, "escape")["log"].is_null());
    assert!(case(s, "fifo")["log"].is_null());
    let odd = case(s, "../../../../x/y");
    assert!(odd["log"].as_str().unwrap().starts_with("objects/"));
    for a in m["artifacts"].as_array().unwrap() {
        let p = w
            .ws()
            .join(a["path"].as_str().unwrap())
            .canonicalize()
            .unwrap();
        assert!(p.starts_with(w.ws().canonicalize().unwrap()));
    }
    assert!(results(s)
        .iter()
        .any(|(n, o)| n.len() == 300 && o == "FAILED"));

    let endless = w.test(
        &m,
        &["--tests-from", fixture("endless-testlog").to_str().unwrap()],
    );
    assert_eq!(endless.code, 3, "{}", endless.stderr);
    let em = endless.manifest();
    let note = case(endless.stage(&em, "test"), "tests/tests.yml")["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(note.contains("test.log"), "{note}");
}

#[test]
fn a_package_with_etc_and_root_files_does_not_uncover_host_secrets() {
    let w = Ws::new();
    let b = w.build_fixture("etc-pkg", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let m = b.manifest();
    let r = w.test(&m, &["--runner", "sti"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(results(s).len(), 4, "{s:#}");
}

#[test]
fn a_run_that_broke_is_retried_whole() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let fx = fixture("flaky-run");
    let once = w.test(&m, &["--tests-from", fx.to_str().unwrap()]);
    assert_eq!(once.code, 3, "{}", once.stderr);
    let m1 = once.manifest();
    let broke = case(once.stage(&m1, "test"), "tests/tests.yml");
    assert!(
        broke["note"]
            .as_str()
            .unwrap()
            .contains("infrastructure hiccup"),
        "{broke}"
    );
    assert_eq!(broke["scope"], "run");

    // --failed-only (from the run's latest record of the suite) knows a run-level error means rerunning that runner whole.
    let again = w.test(
        &m1,
        &["--tests-from", fx.to_str().unwrap(), "--failed-only"],
    );
    let m3 = again.manifest();
    assert_eq!(
        again.stage(&m3, "test")["data"]["rerun"],
        serde_json::json!(["sti:tests/tests.yml"])
    );

    let r = w.test(
        &m,
        &["--tests-from", fx.to_str().unwrap(), "--retries", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m2 = r.manifest();
    let s = r.stage(&m2, "test");
    assert_eq!(case(s, "works")["outcome"], "PASSED");
    let run = case(s, "tests/tests.yml");
    assert_eq!(run["outcome"], "PASSED");
    assert_eq!(run["attempts"][0]["outcome"], "ERROR");
}

fn outcomes(s: &Value) -> Vec<(String, String, usize)> {
    s["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["testcase"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["attempts"].as_array().map_or(1, |a| a.len()),
            )
        })
        .collect()
}

#[test]
fn several_playbooks_each_run_and_retry_on_their_own() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let fx = fixture("multi-pb");
    let first = w.test(&m, &["--tests-from", fx.to_str().unwrap()]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let m1 = first.manifest();
    let s1 = first.stage(&m1, "test");
    assert_eq!(case(s1, "gamma")["playbook"], "tests/tests_extra.yml");
    assert_eq!(case(s1, "alpha")["playbook"], "tests/tests.yml");

    // --failed-only from the run's latest record of the suite.
    let again = w.test(
        &m1,
        &["--tests-from", fx.to_str().unwrap(), "--failed-only"],
    );
    let m3 = again.manifest();
    let s3 = again.stage(&m3, "test");
    let names: Vec<String> = outcomes(s3).into_iter().map(|r| r.0).collect();
    assert_eq!(names.len(), 3, "each case once: {names:?}");
    assert_eq!(s3["data"]["rerun"], serde_json::json!(["gamma"]));

    let retried = w.test(
        &m,
        &["--tests-from", fx.to_str().unwrap(), "--retries", "1"],
    );
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    let m2 = retried.manifest();
    let mut got = outcomes(retried.stage(&m2, "test"));
    got.sort();
    let want = [
        ("alpha", "PASSED", 1),
        ("beta", "PASSED", 1),
        ("gamma", "PASSED", 2),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c)));
}

#[test]
fn tmt_retries_several_failures_in_one_run() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &[
            "--tests-from",
            fixture("tmt-flaky").to_str().unwrap(),
            "--retries",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let mut got = outcomes(r.stage(&m, "test"));
    got.sort();
    let want = [
        ("/tests/x", "PASSED", 2),
        ("/tests/y", "PASSED", 2),
        ("/tests/z", "PASSED", 1),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c)));
}

#[test]
fn tmt_failures_outside_tests_and_nested_results_are_judged_right() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let finish = w.test(
        &m,
        &["--tests-from", fixture("tmt-finish").to_str().unwrap()],
    );
    assert_eq!(finish.code, 3, "{}", finish.stderr);
    let mf = finish.manifest();
    let s = finish.stage(&mf, "test");
    assert_eq!(case(s, "/tests/ok")["outcome"], "PASSED");
    assert!(case(s, "tmt")["note"]
        .as_str()
        .unwrap()
        .contains("outside its tests"));

    let nested = w.test(
        &m,
        &["--tests-from", fixture("tmt-nested").to_str().unwrap()],
    );
    assert_eq!(nested.code, 0, "{}", nested.stderr);
    let mn = nested.manifest();
    assert_eq!(
        outcomes(nested.stage(&mn, "test")),
        [("/tests/outer".to_string(), "PASSED".to_string(), 1)]
    );

    let skipped = w.test(&m, &["--tests-from", fixture("tmt-skip").to_str().unwrap()]);
    let ms = skipped.manifest();
    let s = skipped.stage(&ms, "test");
    assert_eq!(s["outcome"], "SKIPPED");
    assert!(s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("every test case was skipped")));
    assert_eq!(skipped.code, 1);
}

#[test]
fn odd_test_names_and_a_missing_role() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let odd = w.test(
        &m,
        &["--tests-from", fixture("odd-names").to_str().unwrap()],
    );
    assert_eq!(odd.code, 0, "{}", odd.stderr);
    let mo = odd.manifest();
    let deep = case(odd.stage(&mo, "test"), "sub/deep");
    let log = std::fs::read_to_string(w.ws().join(deep["log"].as_str().unwrap())).unwrap();
    // The command, its output and its exit status (issue 15: a failing command's log names
    // them; it was the output alone).
    assert_eq!(log, "$ echo deep\ndeep\n# exit status 0\n");
    assert_eq!(
        case(odd.stage(&mo, "test"), "with space")["outcome"],
        "PASSED"
    );

    let missing = w.test(
        &m,
        &["--tests-from", fixture("missing-role").to_str().unwrap()],
    );
    assert_eq!(missing.code, 3);
    let mm = missing.manifest();
    let note = case(missing.stage(&mm, "test"), "tests/tests.yml")["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(note.contains("standard-test-beakerlib"), "{note}");
}

#[test]
fn a_package_without_tests_is_info_not_an_error() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let empty = w.path().join("no-tests");
    std::fs::create_dir_all(&empty).unwrap();
    let r = w.test(&m, &["--tests-from", empty.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "INFO");
    assert!(s["notes"][0].as_str().unwrap().contains("no tests to run"));
}

#[test]
fn the_workspace_and_its_overlay_mountpoints_are_hidden_from_tests() {
    // A workspace outside the directories the sandbox hides anyway (/tmp, /home, /root).
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ws = base.path().join("ws");
    let fci = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(&ws)
            .arg("-q")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    needs();
    let b = fci(&[
        "build",
        fixture("etc-pkg").to_str().unwrap(),
        "--dist",
        ".fc41",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let mpath = base.path().join("m.json");
    std::fs::write(&mpath, &b.stdout).unwrap();
    let tests = base.path().join("probe");
    std::fs::create_dir_all(tests.join("tests")).unwrap();
    let ws_s = ws.display().to_string();
    std::fs::write(
        tests.join("tests/tests.yml"),
        format!(
            "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    tests:\n    - no-mountpoints:\n        run: 'for f in {ws_s}/tmp/*/mnt/etc/shadow; do test ! -e \"$f\" || exit 1; done'\n    - no-cache:\n        run: 'test ! -e {ws_s}/cache'\n"
        ),
    )
    .unwrap();
    let t = fci(&[
        "test",
        "-m",
        mpath.to_str().unwrap(),
        "--tests-from",
        tests.to_str().unwrap(),
    ]);
    let m: Value = serde_json::from_slice(&t.stdout).unwrap();
    let s = m["stages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
}

#[test]
fn a_rerun_does_not_call_a_steady_pass_flaky_and_fmf_without_plans_is_info() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &[
            "--tests-from",
            fixture("post-fail").to_str().unwrap(),
            "--retries",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mr = r.manifest();
    let s = r.stage(&mr, "test");
    let steady = case(s, "steady");
    assert!(
        steady["attempts"].is_null() && steady["note"].is_null(),
        "{steady}"
    );
    let run = case(s, "tests/tests.yml");
    assert!(
        run["note"]
            .as_str()
            .unwrap()
            .contains("completed on attempt 2"),
        "{run}"
    );

    let fmf_only = w.path().join("fmf-only");
    std::fs::create_dir_all(fmf_only.join(".fmf")).unwrap();
    std::fs::write(fmf_only.join(".fmf/version"), "1\n").unwrap();
    let r = w.test(&m, &["--tests-from", fmf_only.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stage(&r.manifest(), "test")["outcome"], "INFO");
}

#[test]
fn two_test_runs_at_once_on_one_workspace_both_finish_intact() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let input = w.save("in.json", &m);
    let spawn = |out: &str| {
        let mut c = w.cmd();
        c.args([
            "test",
            "--runner",
            "sti",
            "--no-cache",
            "-m",
            input.to_str().unwrap(),
            "-o",
        ])
        .arg(w.path().join(out));
        c.stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let kids = vec![spawn("a.json"), spawn("b.json")];
    for (k, out) in kids.into_iter().zip(["a.json", "b.json"]) {
        let done = k.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{out}: {:?}: {} {}",
            done.status,
            String::from_utf8_lossy(&done.stderr),
            std::fs::read_to_string(w.path().join(out)).unwrap_or_default()
        );
    }
    for f in ["a.json", "b.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(w.path().join(f)).unwrap()).unwrap();
        assert_valid(&v);
        let s = v["stages"].as_array().unwrap().last().unwrap();
        assert_eq!(s["outcome"], "PASSED", "{f}: {s:#}");
        assert_eq!(results(s).len(), 2);
    }
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn tests_see_the_systems_path_not_the_callers() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    // A shadowing program first on the caller's PATH (as a pyenv or venv would be), in a
    // directory the sandbox shows (not under /tmp).
    let holder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bin = holder.path().join("shadow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("hello-atomic");
    std::fs::write(&fake, "#!/bin/sh\necho FAKE\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let input = w.save("in.json", &m);
    let out = w
        .cmd()
        .env("PATH", path)
        .args(["test", "--runner", "sti", "-m", input.to_str().unwrap()])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn cases_sharing_one_log_store_it_once_and_the_manifest_stays_compact() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(
        &m,
        &[
            "--runner",
            "sti",
            "--tests-from",
            fixture("shared-log").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    let logs: std::collections::BTreeSet<&str> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["log"].as_str().unwrap())
        .collect();
    assert_eq!(results(s).len(), 100);
    assert_eq!(logs.len(), 1, "one stored log for all cases: {logs:?}");
    let big: Vec<_> = walk(&w.ws().join("objects"))
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() >= 30 * 1024 * 1024)
        .collect();
    assert_eq!(big.len(), 1, "{big:?}");
    assert!(
        r.stdout.len() < 128 * 1024,
        "manifest of {} bytes",
        r.stdout.len()
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn forcing_tests_past_a_failed_check_says_what_stopped_the_build() {
    let w = Ws::new();
    let b = w.build("hello-broken-check", &[]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    let r = w.test(&b.manifest(), &["--force"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        // The build's note names its cause (issue 15: it said only `%check failed`).
        r.stderr
            .contains("the build is FAILED (%check failed: FAIL: greeting is wrong)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("fci build --nocheck"), "{}", r.stderr);
    assert!(!r.stderr.contains("run `fci build` first"), "{}", r.stderr);
}

#[test]
fn requirements_the_host_provides_are_not_unmet() {
    let w = Ws::new();
    let m = built(&w, "hello-atomic");
    let r = w.test(&m, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let unmet = r.stage(&m, "test")["data"]["unmet_requires"].to_string();
    // hello-atomic links against the C library, which Debian has in no rpm database.
    assert!(!unmet.contains("libc.so.6"), "{unmet}");
    assert!(!unmet.contains("rtld(GNU_HASH)"), "{unmet}");
}

#[test]
fn a_package_with_files_under_var_is_tested_with_the_workspace_in_var_tmp() {
    // The demo's workspace lives in /var/tmp; the package ships /var/lib/var-state. The old
    // test stage refused the run (exit 2, no manifest), blaming the workspace.
    let w = Ws {
        dir: tempfile::tempdir_in("/var/tmp").unwrap(),
    };
    let b = w.build_fixture("var-state", &[]);
    sti_passes(&w, &b, 2);
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_package_reshaping_the_covered_paths_is_tested_with_them_covered() {
    let w = Ws::new();
    let dir = repo_root().join("tests/hostile/etc-covers-reshaped");
    let b = w.run(&["build", dir.to_str().unwrap(), "--dist", ".fc41"]);
    sti_passes(&w, &b, 3);
}

/// The build `b` passed, and its STI tests pass with `cases` results.
fn sti_passes(w: &Ws, b: &Run, cases: usize) {
    assert_eq!(b.code, 0, "{}", b.stderr);
    let r = w.test(&b.manifest(), &["--runner", "sti"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(results(s).len(), cases, "{s:#}");
}
