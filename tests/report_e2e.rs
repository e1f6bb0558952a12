//! `fci report --gating` through the real binary: Greenwave's decision from files.

mod common;
use common::*;
use serde_json::{json, Value};

const GATING: &str = "--- !Policy\n\
    id: fedora-ci\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable]\n\
    subject_type: koji_build\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/gating.functional}\n";

const NVR: &str = "hello-atomic-1.0-1.fc41";

fn report(w: &Ws, files: &[(&str, String)], extra: &[&str]) -> Run {
    let mut args = vec!["report".to_string()];
    for (flag, text) in files {
        let p = w.path().join(flag.trim_start_matches('-'));
        std::fs::write(&p, text).unwrap();
        args.push(flag.to_string());
        args.push(p.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.run(&args)
}

fn result(id: u64, testcase: &str, outcome: &str) -> Value {
    json!({"id": id, "outcome": outcome, "testcase": {"name": testcase},
           "data": {"item": [NVR], "type": ["koji_build"]}})
}

const ASK: [&str; 6] = [
    "--decision-context",
    "bodhi_update_push_stable",
    "--product-version",
    "fedora-41",
    "--subject-identifier",
    NVR,
];

#[test]
fn a_decision_from_files_exits_by_its_verdict() {
    let w = Ws::new();
    let results = json!([
        result(1, "fedora-ci.koji-build.tier0.functional", "FAILED"),
        result(2, "fedora-ci.koji-build.tier0.functional", "PASSED"),
        result(3, "fedora-ci.koji-build./plans/gating.functional", "FAILED"),
    ]);
    let r = report(
        &w,
        &[
            ("--gating", GATING.into()),
            ("--results", results.to_string()),
        ],
        &ASK,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let d: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(d["summary"], "Of 2 required tests, 1 test failed");
    assert_eq!(d["policies_satisfied"], false);
    // A waiver for the failing plan satisfies the decision.
    let waivers = json!([{"id": 9, "subject_type": "koji_build", "subject_identifier": NVR,
        "testcase": "fedora-ci.koji-build./plans/gating.functional", "waived": true,
        "product_version": "fedora-41", "comment": "flaky on s390x", "username": "packager"}]);
    let r = report(
        &w,
        &[
            ("--gating", GATING.into()),
            ("--results", json!({"data": results}).to_string()),
            ("--waivers", waivers.to_string()),
        ],
        &ASK,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        d["summary"],
        "All required tests (2 total) have passed or been waived"
    );
}

#[test]
fn validate_says_what_is_wrong() {
    let w = Ws::new();
    let r = report(&w, &[("--gating", GATING.into())], &["--validate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), r#"{"message":"All OK"}"#);
    let bad = GATING.replace("PassingTestCaseRule", "PassingTestRule");
    let r = report(&w, &[("--gating", bad)], &["--validate"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("!PassingTestRule"), "{}", r.stdout);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let w = Ws::new();
    let r = report(
        &w,
        &[
            ("--gating", GATING.into()),
            ("--results", "{not json".into()),
        ],
        &ASK,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("results: not JSON"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = report(
        &w,
        &[
            ("--gating", GATING.into()),
            ("--results", "[{\"outcome\": \"PASSED\"}]".into()),
        ],
        &ASK,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("without `testcase`"), "{}", r.stderr);
    // The request needs its subject.
    let r = report(&w, &[("--gating", GATING.into())], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

const FEDORA_GATING: &str = "--- !Policy\n\
    id: fedora-ci\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_stable]\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/functional.functional}\n";

/// build | test of an example, reported with Fedora's names against FEDORA_GATING.
fn report_run(w: &Ws, example: &str) -> (Run, Run) {
    let built = w.build(example, &[]);
    let tested = w.test(&built.manifest(), &[]);
    let m = w.save("tested.json", &tested.manifest());
    let g = w.path().join("gating.yaml");
    std::fs::write(&g, FEDORA_GATING).unwrap();
    let args = [
        "report",
        "-m",
        m.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
    ];
    (tested, w.run(&args))
}

#[test]
fn a_run_is_recorded_once_and_gated_on_its_latest_results() {
    let w = Ws::new();
    let (_, r) = report_run(&w, "hello-atomic");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    let d = &s["data"]["decision"];
    assert_eq!(
        d["summary"],
        "All required tests (2 total) have passed or been waived"
    );
    let total = s["data"]["results"].as_u64().unwrap();
    assert!(total >= 5, "{s:#}");
    assert_eq!(s["data"]["results_new"], total);
    // Reported again: nothing is recorded twice.
    let p = w.save("reported.json", &m);
    let again = w.run(&[
        "report",
        "-m",
        p.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let am = again.manifest();
    assert_eq!(again.stage(&am, "report")["data"]["results_new"], 0);
}

#[test]
fn a_failed_run_is_reported_and_gating_names_the_failure() {
    let w = Ws::new();
    let (tested, r) = report_run(&w, "hello-broken-test");
    assert_eq!(tested.code, 1, "{}", tested.stderr);
    // The report runs after a failure (it is not skipped), and the decision fails.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    let unsat = s["data"]["decision"]["unsatisfied_requirements"].to_string();
    assert!(unsat.contains("test-result-failed"), "{unsat}");
    assert!(
        s["notes"]
            .to_string()
            .contains("gating: Of 2 required tests"),
        "{s:#}"
    );
}
