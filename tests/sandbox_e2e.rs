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
        lines.len() >= 15,
        "{what}: attempts missing from the log:\n{log}"
    );
    let escaped: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ESCAPED")).collect();
    assert!(escaped.is_empty(), "{what}: {escaped:?}");
}

#[test]
fn a_hostile_spec_cannot_leave_the_build_sandbox() {
    let w = Ws::new();
    let r = w.build_fixture("hostile-escape", &[]);
    // fci survived the spec's `pkill -x fci` and reports what happened.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED");
    let log = std::fs::read_to_string(w.ws().join(b["log"].as_str().unwrap())).unwrap();
    assert_all_held(&log, "%build");
    assert!(!log.contains("s3cr3t-token"), "credentials in build.log");
    assert!(log.contains("https://***@example.org/rpms/hostile-escape.git"));
    assert!(log.contains("Executing(%check)"));
    assert_eq!(results(b), vec![("build.check".into(), "PASSED".into())]);
    for marker in ["fci-escape-build", "fci-escape-check"] {
        assert_eq!(traces(marker), Vec::<String>::new(), "{marker} got out");
    }
}

#[test]
fn a_hostile_test_cannot_leave_the_test_sandbox() {
    let w = Ws::new();
    let built = w.build_fixture("hostile-escape", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let r = w.test(&built.manifest(), &["--runner", "sti"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(
        results(s),
        vec![("escape-attempts".into(), "PASSED".into())]
    );
    let case_log = s["results"][0]["log"].as_str().unwrap();
    let log = std::fs::read_to_string(w.ws().join(case_log)).unwrap();
    assert_all_held(&log, "test");
    assert_eq!(traces("fci-escape-test"), Vec::<String>::new());
}
