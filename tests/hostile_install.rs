//! What installs the change's packages outside the sandbox (the test stage's `rpm --root`
//! into the subject's root, compose's `rpm -i` into the base checkout) is bounded by the
//! scratch limit too: a payload whose files add up past it (sparse files compress to nothing
//! in the RPM, and rpm writes them whole) is the package's failure, found from the headers
//! before rpm runs. Fixtures: `tests/hostile/*`, each with its PROMISE.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE];

fn hostile(name: &str) -> PathBuf {
    repo_root().join("tests/hostile").join(name)
}

fn notes(s: &Value) -> String {
    s["notes"].to_string()
}

fn stage_run(w: &Ws, stage: &str, m: &Value, extra: &[&str]) -> Run {
    let p = w.save(&format!("{stage}-{}.json", uuid::Uuid::new_v4()), m);
    let mut args = vec![stage, "-m", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn stage_log(w: &Ws, s: &Value) -> String {
    std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap()
}

fn has_artifact(m: &Value, kind: &str) -> bool {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == kind)
}

/// The repository's refs.
fn refs(w: &Ws) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", w.ws().join("ostree/repo").display()))
        .arg("refs")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SAYS: &str =
    "the payload expands to about 480.0 MiB, past the scratch limit 64 MiB (--max-scratch)";

#[test]
fn a_sparse_payload_past_the_scratch_limit_fails_test_and_compose_before_rpm_runs() {
    let w = Ws::new();
    let fixture = hostile("sparse-payload");
    // Eight sparse 60 MiB files: they build within the limit (they take no blocks) into an
    // RPM of about 500 KB.
    let r = w.run(&[
        "build",
        fixture.to_str().unwrap(),
        "--dist",
        ".fc41",
        "--max-scratch=64M",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sparse = r.manifest();
    let normal = w.build("hello-atomic", &[]);
    assert_eq!(normal.code, 0, "{}", normal.stderr);
    let normal = normal.manifest();
    let tests = fixture.to_str().unwrap();

    // The old test stage installed all 480 MiB into its root, then PASSED.
    let r = stage_run(
        &w,
        "test",
        &sparse,
        &["--tests-from", tests, "--max-scratch=64M"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(t["outcome"], "FAILED", "{t:#}");
    assert!(notes(t).contains(SAYS), "{}", notes(t));
    assert_eq!(t["cached"], false);
    assert!(
        t["results"].as_array().is_none_or(|r| r.is_empty()),
        "{t:#}"
    );
    let log = stage_log(&w, t);
    assert!(!log.contains(" -i "), "rpm installed the subject:\n{log}");
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
    // A normal package, the same limit: tested.
    let r = stage_run(
        &w,
        "test",
        &normal,
        &["--tests-from", tests, "--max-scratch=64M"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "test")["outcome"], "PASSED");

    // Compose: the same, with the limit from --max-scratch.
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = stage_run(
        &w,
        "compose",
        &sparse,
        &["--branch", "f41", "--max-scratch=64M"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    assert!(notes(c).contains(SAYS), "{}", notes(c));
    assert!(!has_artifact(&m, "ostree-commit"));
    let log = stage_log(&w, c);
    assert!(!log.contains("$ rpm --root"), "rpm ran:\n{log}");
    assert!(!refs(&w).contains("candidate"), "{}", refs(&w));
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
    let r = stage_run(
        &w,
        "compose",
        &normal,
        &["--branch", "f41", "--max-scratch=64M"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "compose")["outcome"], "PASSED");
    assert!(has_artifact(&m, "ostree-commit"));
}

#[test]
fn a_package_for_another_architecture_fails_test_and_compose() {
    let w = Ws::new();
    let fixture = hostile("other-arch-build");
    let r = w.run(&["build", fixture.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let built = r.manifest();
    let says = "is intended for a different architecture";
    let tests = repo_root().join("examples/hello-atomic");
    let r = stage_run(
        &w,
        "test",
        &built,
        &["--tests-from", tests.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(t["outcome"], "FAILED", "{t:#}");
    assert!(notes(t).contains(says), "{}", notes(t));

    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = stage_run(&w, "compose", &built, &["--branch", "f41"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    assert!(notes(c).contains(says), "{}", notes(c));
    assert!(!has_artifact(&m, "ostree-commit"));
    assert!(!refs(&w).contains("candidate"), "{}", refs(&w));
}

#[test]
fn a_package_shadowing_true_is_tested_as_usual() {
    let w = Ws::new();
    let fixture = hostile("shadow-true-test");
    let b = w.run(&["build", fixture.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let started = std::time::Instant::now();
    let r = stage_run(
        &w,
        "test",
        &b.manifest(),
        &["--tests-from", fixture.to_str().unwrap(), "--timeout", "2m"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "test")["outcome"], "PASSED");
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
}

#[test]
fn a_payload_in_rpms_database_is_the_packages_failure() {
    let w = Ws::new();
    let fixture = hostile("rpmdb-clobber-test");
    let b = w.run(&["build", fixture.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let r = stage_run(
        &w,
        "test",
        &b.manifest(),
        &["--tests-from", fixture.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(t["outcome"], "FAILED", "{t:#}");
    assert!(
        notes(t).contains("rpm cannot read the database the packages were installed into"),
        "{}",
        notes(t)
    );
}
