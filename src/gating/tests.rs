//! Decisions compared field by field with what Greenwave answers for the same inputs.

use super::decision::{decide, fnmatch, Request, TestResult, Waiver};
use super::policy::parse;
use serde_json::{json, Value};

const NVR: &str = "hello-atomic-1.0-1.fc41";

fn req(contexts: &[&str]) -> Request {
    Request {
        decision_contexts: contexts.iter().map(|s| s.to_string()).collect(),
        product_version: "fedora-41".into(),
        subject_type: "koji_build".into(),
        subject_identifier: NVR.into(),
    }
}

fn result(id: u64, testcase: &str, outcome: &str, scenario: Option<&str>) -> TestResult {
    let mut data = json!({"item": [NVR], "type": ["koji_build"]});
    if let Some(s) = scenario {
        data["scenario"] = json!([s]);
    }
    TestResult::from_json(
        &json!({"id": id, "outcome": outcome, "testcase": {"name": testcase}, "data": data}),
    )
    .unwrap()
}

fn waiver(id: u64, testcase: &str, waived: bool, scenario: Option<&str>) -> Waiver {
    Waiver::from_json(&json!({
        "id": id, "subject_type": "koji_build", "subject_identifier": NVR, "testcase": testcase,
        "scenario": scenario, "waived": waived, "product_version": "fedora-41",
        "comment": "known flake", "username": "packager"
    }))
    .unwrap()
}

const TIER0: &str = "--- !Policy\n\
    id: tier0\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable]\n\
    subject_type: koji_build\n\
    rules:\n  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n";

/// The decision, made also on the results and the waivers reversed (as ResultsDB and WaiverDB
/// list them, newest first) and rotated: every decision of these tests must be the same in
/// every order (issue 15: "reversing a results or waivers file never changes a decision").
fn decision(yaml: &str, contexts: &[&str], results: &[TestResult], waivers: &[Waiver]) -> Value {
    let once =
        |r: &[TestResult], w: &[Waiver]| decide(&parse(yaml), "gating.yaml", &req(contexts), r, w);
    let d = once(results, waivers);
    fn reversed<T: Clone>(v: &[T]) -> Vec<T> {
        v.iter().rev().cloned().collect()
    }
    fn rotated<T: Clone>(v: &[T], n: usize) -> Vec<T> {
        let mut v = v.to_vec();
        if !v.is_empty() {
            let len = v.len();
            v.rotate_left(n % len);
        }
        v
    }
    let (rr, rw) = (reversed(results), reversed(waivers));
    for (r, w) in [
        (rr.clone(), waivers.to_vec()),
        (results.to_vec(), rw.clone()),
        (rr, rw),
        (rotated(results, 1), rotated(waivers, 1)),
    ] {
        assert_eq!(
            once(&r, &w),
            d,
            "the order of the inputs changed the decision"
        );
    }
    d
}

#[test]
fn a_newer_pass_after_a_failure_passes() {
    let results = [
        result(1, "fedora-ci.koji-build.tier0.functional", "FAILED", None),
        result(2, "fedora-ci.koji-build.tier0.functional", "PASSED", None),
    ];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &results, &[]);
    assert_eq!(d["policies_satisfied"], true);
    assert_eq!(
        d["summary"],
        "All required tests (1 total) have passed or been waived"
    );
    assert_eq!(
        d["satisfied_requirements"][0],
        json!({
            "result_id": 2, "scenario": null, "source": "gating.yaml",
            "subject_identifier": NVR, "subject_type": "koji_build",
            "system_architecture": null, "system_variant": null,
            "testcase": "fedora-ci.koji-build.tier0.functional", "type": "test-result-passed"
        })
    );
    assert_eq!(d["applicable_policies"], json!(["tier0"]));
}

#[test]
fn missing_failed_and_errored_read_as_greenwave_says() {
    let d = decision(TIER0, &["bodhi_update_push_stable"], &[], &[]);
    assert_eq!(d["policies_satisfied"], false);
    assert_eq!(d["summary"], "Of 1 required test, 1 result missing");
    assert_eq!(
        d["unsatisfied_requirements"][0],
        json!({
            "item": {"item": NVR, "type": "koji_build"}, "scenario": null, "source": "gating.yaml",
            "subject_identifier": NVR, "subject_type": "koji_build",
            "testcase": "fedora-ci.koji-build.tier0.functional", "type": "test-result-missing"
        })
    );
    let two = "--- !Policy\ndecision_context: c\nrules:\n  - !PassingTestCaseRule {test_case_name: a}\n  - !PassingTestCaseRule {test_case_name: b}\n";
    let d = decision(
        two,
        &["c"],
        &[
            result(1, "a", "FAILED", None),
            result(2, "b", "NEEDS_INSPECTION", None),
        ],
        &[],
    );
    assert_eq!(d["summary"], "Of 2 required tests, 2 tests failed");
    let d = decision(
        two,
        &["c"],
        &[
            result(1, "a", "ERROR", None),
            result(2, "b", "PASSED", None),
        ],
        &[],
    );
    assert_eq!(d["summary"], "Of 2 required tests, 1 test errored");
    assert_eq!(
        d["unsatisfied_requirements"][0]["type"],
        "test-result-errored"
    );
    assert_eq!(
        d["unsatisfied_requirements"][0]["error_reason"],
        Value::Null
    );
}

#[test]
fn queued_and_running_are_only_waiting() {
    let results = [
        result(1, "fedora-ci.koji-build.tier0.functional", "PASSED", None),
        result(2, "fedora-ci.koji-build.tier0.functional", "RUNNING", None),
    ];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &results, &[]);
    assert_eq!(d["policies_satisfied"], false);
    assert_eq!(d["summary"], "Of 1 required test, 1 test incomplete");
    let u = &d["unsatisfied_requirements"][0];
    assert_eq!(u["type"], "test-result-missing");
    assert_eq!(u["result_id"], 2);
    assert_eq!(
        d["fci_waiting_for"],
        json!(["fedora-ci.koji-build.tier0.functional"])
    );
}

#[test]
fn scenarios_are_separate_requirements() {
    let results = [
        result(1, "t", "FAILED", None),
        result(2, "t", "PASSED", Some("x86_64.qcow2")),
    ];
    let any =
        "--- !Policy\ndecision_context: c\nrules:\n  - !PassingTestCaseRule {test_case_name: t}\n";
    let d = decision(any, &["c"], &results, &[]);
    // The old failure without a scenario is its own group and still blocks.
    assert_eq!(d["summary"], "Of 2 required tests, 1 test failed");
    assert_eq!(
        d["satisfied_requirements"][0]["result_id"], 2,
        "newest first"
    );
    // A rule with a scenario looks at that scenario only.
    let only = "--- !Policy\ndecision_context: c\nrules:\n  - !PassingTestCaseRule {test_case_name: t, scenario: x86_64.qcow2}\n";
    assert_eq!(
        decision(only, &["c"], &results, &[])["policies_satisfied"],
        true
    );
    let other = "--- !Policy\ndecision_context: c\nrules:\n  - !PassingTestCaseRule {test_case_name: t, scenario: aarch64}\n";
    let d = decision(other, &["c"], &results, &[]);
    assert_eq!(
        d["unsatisfied_requirements"][0]["type"],
        "test-result-missing"
    );
    assert_eq!(d["unsatisfied_requirements"][0]["scenario"], "aarch64");
}

#[test]
fn waivers_waive_and_a_newer_unwaive_revokes() {
    let failed = [result(
        7,
        "fedora-ci.koji-build.tier0.functional",
        "FAILED",
        None,
    )];
    let w = [waiver(
        1,
        "fedora-ci.koji-build.tier0.functional",
        true,
        None,
    )];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &failed, &w);
    assert_eq!(d["policies_satisfied"], true);
    assert_eq!(
        d["summary"],
        "All required tests (1 total) have passed or been waived"
    );
    let s = &d["satisfied_requirements"][0];
    assert_eq!(s["type"], "test-result-failed-waived");
    assert_eq!(s["waiver_id"], 1);
    assert!(s.get("item").is_none());
    let revoked = [
        w[0].clone(),
        waiver(2, "fedora-ci.koji-build.tier0.functional", false, None),
    ];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &failed, &revoked);
    assert_eq!(d["policies_satisfied"], false);
    // A missing result can be waived too; a waiver for another scenario does not apply.
    let d = decision(TIER0, &["bodhi_update_push_stable"], &[], &w);
    assert_eq!(
        d["satisfied_requirements"][0]["type"],
        "test-result-missing-waived"
    );
    let scoped = [waiver(
        3,
        "fedora-ci.koji-build.tier0.functional",
        true,
        Some("aarch64"),
    )];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &failed, &scoped);
    assert_eq!(d["policies_satisfied"], false);
}

#[test]
fn contexts_versions_and_packages_choose_the_policies() {
    // No overlap with the request's contexts: nothing is required.
    let d = decision(TIER0, &["bodhi_update_push_testing_critpath"], &[], &[]);
    assert_eq!(d["policies_satisfied"], true);
    assert_eq!(d["summary"], "No tests are required");
    assert_eq!(d["applicable_policies"], json!([]));
    let epel = TIER0.replace("fedora-*", "epel-*");
    assert_eq!(
        decision(&epel, &["bodhi_update_push_stable"], &[], &[])["summary"],
        "No tests are required"
    );
    let excluded = format!("{TIER0}excluded_packages: [hello-*]\n");
    let d = decision(&excluded, &["bodhi_update_push_stable"], &[], &[]);
    assert_eq!(d["satisfied_requirements"][0]["type"], "excluded");
    assert_eq!(d["policies_satisfied"], true);
    let others = format!("{TIER0}packages: [kernel, systemd*]\n");
    assert_eq!(
        decision(&others, &["bodhi_update_push_stable"], &[], &[])["summary"],
        "No tests are required"
    );
}

#[test]
fn identical_rules_in_several_policies_count_once() {
    let twice = format!("{TIER0}{}", TIER0.replace("id: tier0", "id: again"));
    let d = decision(&twice, &["bodhi_update_push_stable"], &[], &[]);
    assert_eq!(d["summary"], "Of 1 required test, 1 result missing");
    assert_eq!(d["applicable_policies"], json!(["tier0", "again"]));
}

#[test]
fn an_invalid_file_is_one_requirement_and_nothing_else_is_checked() {
    let bad = "--- !Policy\ndecision_context: c\nrules:\n  - !Nonsense {}\n";
    let d = decision(bad, &["c"], &[], &[]);
    assert_eq!(d["policies_satisfied"], false);
    assert_eq!(d["summary"], "1 error due to invalid remote rule file");
    let u = &d["unsatisfied_requirements"][0];
    assert_eq!(u["type"], "invalid-gating-yaml");
    assert_eq!(u["testcase"], "invalid-gating-yaml");
    assert!(u["details"].as_str().unwrap().contains("!Nonsense"));
}

#[test]
fn globs_are_fnmatch() {
    assert!(fnmatch("fedora-*", "fedora-41"));
    assert!(!fnmatch("fedora-*", "epel-9"));
    assert!(fnmatch("fedora-4?", "fedora-41"));
    assert!(fnmatch("fedora-[34]*", "fedora-41"));
    assert!(!fnmatch("fedora-[!4]*", "fedora-41"));
    assert!(fnmatch("*", ""));
    assert!(fnmatch("*a*b", "xxaxxb"));
    assert!(!fnmatch("*a*b", "xxaxxc"));
    assert!(fnmatch("a*", "a"));
    // Many stars against a long text: no exponential backtracking, no deep recursion.
    let started = std::time::Instant::now();
    assert!(!fnmatch(
        &format!("{}x", "*".repeat(400_000)),
        &"a".repeat(200)
    ));
    assert!(!fnmatch(
        &format!("{}x", "*".repeat(40)),
        &"a".repeat(5_000)
    ));
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn queued_results_without_an_id_are_still_only_waiting() {
    let q = TestResult::from_json(
        &json!({"outcome": "QUEUED", "testcase": "fedora-ci.koji-build.tier0.functional",
        "data": {"item": NVR, "type": "koji_build"}}),
    )
    .unwrap();
    let d = decision(TIER0, &["bodhi_update_push_stable"], &[q], &[]);
    assert_eq!(d["summary"], "Of 1 required test, 1 test incomplete");
    assert_eq!(
        d["fci_waiting_for"],
        json!(["fedora-ci.koji-build.tier0.functional"])
    );
}

/// fci's `fnmatch` against Python's own (Greenwave's) on generated patterns and names: `*`,
/// `?`, `[seq]`, `[!seq]`, ranges (reversed ones too), `]` first in a set, unmatched `[`,
/// backslashes (no escape in fnmatch), dots, slashes and non-ASCII letters. python3 is part of
/// the test environment: without it this test fails, it never passes unchecked.
#[test]
fn fnmatch_agrees_with_pythons_on_generated_patterns() {
    // A fixed linear congruential sequence: the same cases on every run.
    let mut seed: u64 = 0x5eed_f00d;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    const NAME: [char; 12] = ['a', 'b', 'c', 'z', '-', '.', '/', ']', '[', '!', 'é', '日'];
    const PAT: [&str; 30] = [
        "*", "?", "[", "]", "!", "-", "\\", "^", "a", "b", "z", ".", "/", "é", "日", "[ab]",
        "[!a]", "[a-c]", "[c-a]", "[]a]", "[!]]", "[a-]", "[!", "[]", "[!]", "[a-b-z]", "[--/]",
        "[z-ab]", "[é-日]", "[\\]",
    ];
    let mut cases: Vec<(String, String)> = Vec::new();
    for _ in 0..600 {
        let pattern: String = (0..next(7)).map(|_| PAT[next(PAT.len())]).collect();
        // A name made from the pattern (so that many match), and random ones.
        let shaped: String = pattern
            .chars()
            .map(|c| match c {
                '*' | '?' => NAME[next(4)].to_string(),
                '[' | ']' | '!' if next(2) == 0 => NAME[next(NAME.len())].to_string(),
                c => c.to_string(),
            })
            .collect();
        cases.push((pattern.clone(), shaped));
        for _ in 0..3 {
            let name: String = (0..next(6)).map(|_| NAME[next(NAME.len())]).collect();
            cases.push((pattern.clone(), name));
        }
    }
    let mut py = std::process::Command::new("python3")
        .args([
            "-c",
            "import fnmatch, json, sys\n\
             print(json.dumps([fnmatch.fnmatch(n, p) for p, n in json.load(sys.stdin)]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (the differential test of fnmatch needs it)");
    serde_json::to_writer(py.stdin.take().unwrap(), &cases).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "python3: {}", out.status);
    let python: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(python.len(), cases.len());
    let differ: Vec<_> = cases
        .iter()
        .zip(&python)
        .filter(|((p, n), want)| fnmatch(p, n) != **want)
        .map(|((p, n), want)| format!("{p:?} {n:?}: Python says {want}"))
        .collect();
    assert!(
        differ.is_empty(),
        "{} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    // Both answers are well represented, so agreement means something.
    let hits = python.iter().filter(|m| **m).count();
    assert!(
        hits > 200 && cases.len() - hits > 1000,
        "{hits} of {}",
        cases.len()
    );
}

/// ResultsDB's own `GET /results` answer (newest first) read as if it were oldest first said
/// satisfied; Greenwave says failed: the newer FAILED decides.
#[test]
fn resultsdbs_newest_first_answer_decides_as_greenwave_does() {
    let answer = json!({"prev": null, "next": null, "data": [
        {"id": 12, "outcome": "FAILED", "submit_time": "2026-12-06T11:00:00.000001",
         "testcase": {"name": "fedora-ci.koji-build.tier0.functional"},
         "data": {"item": [NVR], "type": ["koji_build"]}},
        {"id": 11, "outcome": "PASSED", "submit_time": "2026-12-06T10:00:00.000001",
         "testcase": {"name": "fedora-ci.koji-build.tier0.functional"},
         "data": {"item": [NVR], "type": ["koji_build"]}},
    ]});
    let results: Vec<TestResult> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| TestResult::from_json(r).unwrap())
        .collect();
    let d = decision(TIER0, &["bodhi_update_push_stable"], &results, &[]);
    assert_eq!(d["policies_satisfied"], false, "{d:#}");
    assert_eq!(d["summary"], "Of 1 required test, 1 test failed");
    assert_eq!(d["unsatisfied_requirements"][0]["result_id"], 12);
    // Submit time decides before id (a result posted later with an earlier submit_time is
    // older), and every form ResultsDB takes is read: ms since the epoch, with an offset.
    let t = |id: u64, outcome: &str, at: Value| {
        TestResult::from_json(&json!({"id": id, "outcome": outcome, "submit_time": at,
            "testcase": "fedora-ci.koji-build.tier0.functional",
            "data": {"item": NVR, "type": "koji_build"}}))
        .unwrap()
    };
    let d = decision(
        TIER0,
        &["bodhi_update_push_stable"],
        &[
            t(1, "PASSED", json!("2026-12-06T12:00:00.5+01:00")),
            t(2, "FAILED", json!(1_796_547_600_000u64)),
        ],
        &[],
    );
    // 1 is 11:00:00.5Z; 2 is 2026-12-06T09:00:00Z: the pass is newer.
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
}

/// WaiverDB's list (newest first, obsolete waivers included): a revocation is newer than the
/// waiver it revokes whatever the list's order; another user's or another product version's
/// waiver is not made obsolete by it.
#[test]
fn waiverdbs_newest_first_list_with_obsolete_waivers_decides_as_greenwave_does() {
    let failed = [result(
        7,
        "fedora-ci.koji-build.tier0.functional",
        "FAILED",
        None,
    )];
    let w = |id: u64, waived: bool, user: &str, pv: &str, at: &str| {
        Waiver::from_json(&json!({
            "id": id, "subject_type": "koji_build", "subject_identifier": NVR,
            "testcase": "fedora-ci.koji-build.tier0.functional", "scenario": null,
            "waived": waived, "product_version": pv, "comment": "c", "username": user,
            "proxied_by": null, "timestamp": at}))
        .unwrap()
    };
    // Newest first: the revocation (id 2) first. Read as oldest first, the waiver would win.
    let listed = [
        w(
            2,
            false,
            "packager",
            "fedora-41",
            "2026-12-06T11:00:00.000000",
        ),
        w(
            1,
            true,
            "packager",
            "fedora-41",
            "2026-12-06T10:00:00.000000",
        ),
    ];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &failed, &listed);
    assert_eq!(d["policies_satisfied"], false, "{d:#}");
    // A newer fedora-40 revocation does not obsolete the fedora-41 waiver (WaiverDB's quirk,
    // fixed), nor does another user's revoke obsolete this user's waiver.
    let others = [
        w(
            3,
            false,
            "packager",
            "fedora-40",
            "2026-12-06T12:00:00.000000",
        ),
        w(
            2,
            false,
            "someone-else",
            "fedora-41",
            "2026-12-06T11:00:00.000000",
        ),
        w(
            1,
            true,
            "packager",
            "fedora-41",
            "2026-12-06T10:00:00.000000",
        ),
    ];
    let d = decision(TIER0, &["bodhi_update_push_stable"], &failed, &others);
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
    assert_eq!(d["satisfied_requirements"][0]["waiver_id"], 1);
}

/// Greenwave's subject-type aliases: a `brew-build` result counts for a `koji_build` subject,
/// and a request for `brew-build` is a `koji_build` one.
#[test]
fn a_brew_build_result_counts_for_a_koji_build_subject() {
    let brew = TestResult::from_json(&json!({"id": 3, "outcome": "PASSED",
        "testcase": {"name": "fedora-ci.koji-build.tier0.functional"},
        "data": {"item": [NVR], "type": ["brew-build"]}}))
    .unwrap();
    let d = decision(
        TIER0,
        &["bodhi_update_push_stable"],
        std::slice::from_ref(&brew),
        &[],
    );
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
    let mut r = req(&["bodhi_update_push_stable"]);
    r.subject_type = "brew-build".into();
    let d = decide(&parse(TIER0), "gating.yaml", &r, &[brew], &[]);
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
    assert_eq!(d["satisfied_requirements"][0]["subject_type"], "koji_build");
    // A compose is found by productmd.compose.id and written as Greenwave writes it.
    let compose = "--- !Policy\ndecision_context: c\nsubject_type: compose\nrules:\n  - !PassingTestCaseRule {test_case_name: t}\n";
    let mut r = req(&["c"]);
    r.subject_type = "compose".into();
    r.subject_identifier = "Fedora-41-20261206.0".into();
    let d = decide(&parse(compose), "gating.yaml", &r, &[], &[]);
    assert_eq!(
        d["unsatisfied_requirements"][0]["item"],
        json!({"productmd.compose.id": "Fedora-41-20261206.0"})
    );
    let found = TestResult::from_json(&json!({"id": 1, "outcome": "PASSED", "testcase": "t",
        "data": {"productmd.compose.id": ["Fedora-41-20261206.0"]}}))
    .unwrap();
    let d = decide(&parse(compose), "gating.yaml", &r, &[found], &[]);
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
}

/// Only a JSON `true` (or no `waived` at all, WaiverDB's default) waives: `0`, `"false"`,
/// `"no"` are no waiver, and a `"false"` revocation never waives.
#[test]
fn only_a_boolean_true_waives() {
    use serde_json::json;
    let w = |waived: Option<Value>| {
        let mut v = json!({"subject_type": "koji_build", "subject_identifier": "x-1-1",
                           "testcase": "t", "product_version": "fedora-41"});
        if let Some(x) = waived {
            v["waived"] = x;
        }
        super::decision::Waiver::from_json(&v).unwrap().waived
    };
    assert!(w(None));
    assert!(w(Some(json!(true))));
    for no in [
        json!(false),
        json!(0),
        json!("false"),
        json!("no"),
        json!(1),
    ] {
        assert!(!w(Some(no.clone())), "{no}");
    }
}
