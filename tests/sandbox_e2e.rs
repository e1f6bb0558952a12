//! Package code is hostile, also when fci runs as root (as setup.sh and CI machines do):
//! a spec and a test try every way out of the sandbox, and nothing may get out.

mod common;
use common::*;
use std::path::Path;

/// Host paths the attempts would leave behind had they got out.
fn traces(marker: &str) -> Vec<String> {
    [
        format!("/tmp/{marker}"),
        format!("/usr/{marker}"),
        format!("/etc/{marker}"),
        format!("/var/lib/{marker}"),
        format!("/tmp/{marker}-sda"),
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect()
}

fn attempt_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.starts_with("held: ") || l.starts_with("ESCAPED: "))
        .collect()
}

/// Every attempt ran (its line is there) and was held.
fn assert_all_held(log: &str, what: &str) {
    let lines = attempt_lines(log);
    assert!(
        lines.len() >= 21,
        "{what}: attempts missing from the log:\n{log}"
    );
    let escaped: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ESCAPED")).collect();
    assert!(escaped.is_empty(), "{what}: {escaped:?}");
}

/// The hostile package as a dist-git repository whose remote URL holds a token, with its own
/// path written beside the attempts (where a real attacker would guess it).
fn hostile_repo(w: &Ws) -> std::path::PathBuf {
    let repo = w.path().join("hostile-escape");
    fci::stages::test::runner::copy_tree(&fixture("hostile-escape"), &repo).unwrap();
    std::fs::write(repo.join("checkout-path"), repo.to_str().unwrap()).unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://fci:gitTOKEN-42@example.org/rpms/x.git",
        ],
    );
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "hostile"]);
    repo
}

/// fci with a secret in its environment, which package code must never see.
fn run_with_secret(w: &Ws, args: &[&str]) -> Run {
    Run::from(
        w.cmd()
            .env("FCI_SECRET_TOKEN", "envSECRET-42")
            .args(args)
            .output()
            .unwrap(),
    )
}

fn assert_no_secret(text: &str, what: &str) {
    for s in ["envSECRET-42", "gitTOKEN-42"] {
        assert!(!text.contains(s), "{what} carries {s}");
    }
}

#[test]
fn a_hostile_spec_cannot_leave_the_build_sandbox() {
    let w = Ws::new();
    let repo = hostile_repo(&w);
    let r = run_with_secret(&w, &["build", repo.to_str().unwrap()]);
    // fci survived the spec's `pkill -x fci` and reports what happened.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED");
    let log = std::fs::read_to_string(w.ws().join(b["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains(&format!("checkout: {}", repo.display())),
        "{log}"
    );
    assert_all_held(&log, "%build");
    assert!(!log.contains("s3cr3t-token"), "credentials in build.log");
    assert!(log.contains("https://***@example.org/rpms/hostile-escape.git"));
    assert_no_secret(&log, "build.log");
    assert_no_secret(&r.stdout, "the manifest");
    assert!(log.contains("Executing(%check)"));
    assert_eq!(results(b), vec![("build.check".into(), "PASSED".into())]);
    for marker in ["fci-escape-build", "fci-escape-check"] {
        assert_eq!(traces(marker), Vec::<String>::new(), "{marker} got out");
    }
}

#[test]
fn a_hostile_test_cannot_leave_the_test_sandbox() {
    let w = Ws::new();
    let repo = hostile_repo(&w);
    let built = run_with_secret(&w, &["build", repo.to_str().unwrap()]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let input = w.save("built.json", &built.manifest());
    let r = run_with_secret(
        &w,
        &["test", "--runner", "sti", "-m", input.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(
        results(s),
        vec![("escape-attempts".into(), "PASSED".into())]
    );
    let case_log = s["results"][0]["log"].as_str().unwrap();
    let log = std::fs::read_to_string(w.ws().join(case_log)).unwrap();
    assert!(
        log.contains(&format!("checkout: {}", repo.display())),
        "{log}"
    );
    assert_all_held(&log, "test");
    assert_no_secret(&log, "the test's log");
    assert_eq!(traces("fci-escape-test"), Vec::<String>::new());
}
