//! `fci test --failed-only` and the cases a stage counts without listing them: a verdict is
//! never made of what a rerun did not run, of an edited record, of a case tmt could not find,
//! or of the listed cases alone (README "Limits": unlisted cases still decide the verdict).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST];

fn built(w: &Ws) -> Value {
    let b = w.build("hello-atomic", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    b.manifest()
}

fn from(fx: &Path) -> [&str; 2] {
    ["--tests-from", fx.to_str().unwrap()]
}

fn note_has(s: &Value, text: &str) -> bool {
    s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains(text))
}

#[test]
fn failed_only_runs_everything_when_a_failure_was_only_counted() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("unlisted-failure-rerun");
    let first = w.test(&m, &from(&fx));
    assert_eq!(first.code, 1, "{}", first.stderr);
    let m1 = first.manifest();
    let s1 = first.stage(&m1, "test");
    assert_eq!(
        s1["data"]["results_unlisted"]["failed"], 1,
        "{}",
        s1["data"]
    );
    assert!(
        !s1.to_string().contains("real-bug"),
        "real-bug is only counted"
    );

    // The 5,000 listed failures pass when rerun by name; real-bug cannot be named: the whole
    // suite runs again, and real-bug (and the flaky ones, in a full run) fail again.
    let again = w.test(&m1, &[&from(&fx)[..], &["--failed-only"]].concat());
    assert_eq!(again.code, 1, "{}", again.stderr);
    let m2 = again.manifest();
    let s2 = again.stage(&m2, "test");
    assert_eq!(s2["outcome"], "FAILED");
    assert_eq!(s2["data"]["rerun"], "all");
    assert!(
        note_has(s2, "--failed-only runs every test"),
        "{}",
        s2["notes"]
    );
    assert_eq!(s2["data"]["results_unlisted"]["failed"], 1);

    // After --retries (the flaky ones passed on attempt 2, real-bug still only counted), the
    // listed cases all pass: --failed-only has nothing listed to rerun, and still runs all.
    let retried = w.test(&m, &[&from(&fx)[..], &["--retries", "1"]].concat());
    assert_eq!(retried.code, 1, "{}", retried.stderr);
    let mr = retried.manifest();
    let again = w.test(&mr, &[&from(&fx)[..], &["--failed-only"]].concat());
    assert_eq!(again.code, 1, "{}", again.stderr);
    let m3 = again.manifest();
    let s3 = again.stage(&m3, "test");
    assert_eq!(s3["outcome"], "FAILED");
    assert_eq!(s3["data"]["rerun"], "all");

    // A passing record leaves nothing to select: a full run, never its passes carried alone.
    let passed = w.test(&m, &[]);
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    let mp = passed.manifest();
    let again = w.test(&mp, &["--failed-only"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let m4 = again.manifest();
    let s4 = again.stage(&m4, "test");
    assert_eq!(s4["data"]["rerun"], "all");
    assert!(note_has(s4, "nothing failed"), "{}", s4["notes"]);
    assert!(
        !s4["results"].to_string().contains("not rerun"),
        "every case ran: {}",
        s4["results"]
    );
}

#[test]
fn failed_only_refuses_an_edited_record_and_never_takes_a_plain_runs_key() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("forged-failed-only");
    let honest = w.test(&m, &from(&fx));
    assert_eq!(honest.code, 1, "{}", honest.stderr);
    // The forgery: the failing case and the verdict edited to PASSED.
    let mut forged = honest.manifest();
    let last = forged["stages"].as_array_mut().unwrap().last_mut().unwrap();
    last["outcome"] = "PASSED".into();
    for r in last["results"].as_array_mut().unwrap() {
        r["outcome"] = "PASSED".into();
    }
    let p = w.save("forged.json", &forged);
    let r = w.run(&[
        "test",
        "-m",
        p.to_str().unwrap(),
        "--failed-only",
        "--no-cache",
        "--tests-from",
        fx.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("forged.json"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("stage `test`: its outcome is PASSED, but fci recorded FAILED"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "no manifest: {}", r.stdout);
    // A later honest run of the same build (a new run: the build is reused) is not handed a
    // forged PASSED from the cache.
    let later = w.test(&built(&w), &from(&fx));
    assert_eq!(later.code, 1, "{}", later.stderr);
    let ml = later.manifest();
    assert_eq!(later.stage(&ml, "test")["outcome"], "FAILED");

    // An honest --failed-only run has its own key: what it carries from is part of it.
    let plain = w.test(&m, &[]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let mp = plain.manifest();
    let only = w.test(&mp, &["--failed-only", "--no-cache"]);
    assert_eq!(only.code, 0, "{}", only.stderr);
    let mo = only.manifest();
    let (a, b) = (
        &plain.stage(&mp, "test")["input_digest"],
        &only.stage(&mo, "test")["input_digest"],
    );
    assert!(a.is_string() && b.is_string());
    assert_ne!(a, b, "a --failed-only run keyed as a plain run");
}

#[test]
fn failed_only_keeps_a_failing_sub_result_it_cannot_find() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("custom-subresult");
    let checks = fx.join("checks");
    let first = w.test(&m, &from(&checks));
    assert_eq!(first.code, 1, "{}", first.stderr);
    let m1 = first.manifest();
    let s1 = first.stage(&m1, "test");
    assert_eq!(case(s1, "/tests/checks/version")["outcome"], "FAILED");
    assert_eq!(case(s1, "/tests/checks/greeting")["outcome"], "PASSED");

    // The sub-result is rerun through its test, /tests/checks, and fails again.
    let again = w.test(&m1, &[&from(&checks)[..], &["--failed-only"]].concat());
    assert_eq!(again.code, 1, "{}", again.stderr);
    let m2 = again.manifest();
    let s2 = again.stage(&m2, "test");
    assert_eq!(s2["outcome"], "FAILED", "{s2:#}");
    let v = case(s2, "/tests/checks/version");
    assert_eq!(v["outcome"], "FAILED");
    assert!(v["note"].is_null(), "it was run again: {v}");
    assert!(!s2.to_string().contains("found no tests"), "{s2:#}");

    // A tree where no test of that name exists is another suite (review I): nothing of the
    // earlier record is selected or carried; every test of that tree runs, and says why.
    let removed = fx.join("removed");
    let again = w.test(&m1, &[&from(&removed)[..], &["--failed-only"]].concat());
    let m3 = again.manifest();
    let s3 = again.stage(&m3, "test");
    assert_eq!(s3["data"]["rerun"], "all", "{s3:#}");
    assert!(note_has(s3, "ran other tests"), "{}", s3["notes"]);
    assert!(
        !s3.to_string().contains("/tests/checks/greeting"),
        "a pass carried from another suite: {s3:#}"
    );
}

#[test]
fn a_flood_of_skipped_cases_is_skipped_not_passed() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("skipped-flood");
    let r = w.test(&m, &from(&fx));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let s = r.stage(&out, "test");
    assert_eq!(s["outcome"], "SKIPPED", "{}", s["notes"]);
    let u = &s["data"]["results_unlisted"];
    assert_eq!(
        (&u["passed"], &u["skipped"], &u["failed"], &u["errors"]),
        (&0.into(), &1.into(), &0.into(), &0.into()),
        "{u}"
    );
    assert!(note_has(s, "nothing was verified"), "{}", s["notes"]);
}

const GATING_PLAN_B: &str = "--- !Policy
id: plan-b
product_versions: [fedora-*]
decision_contexts: [bodhi_update_push_stable]
subject_type: koji_build
rules:
  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/b.functional}
";

#[test]
fn a_plan_failing_past_the_cap_is_not_reported_passed() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("unlisted-plan-failure");
    let r = w.test(&m, &from(&fx));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let s = r.stage(&out, "test");
    // /tests/bad is past the cap: counted only.
    assert!(
        !s["results"].to_string().contains("/tests/bad"),
        "{}",
        s["data"]
    );

    let t = w.save("tested.json", &out);
    let g = w.path().join("gating.yaml");
    std::fs::write(&g, GATING_PLAN_B).unwrap();
    let rep = w.run(&[
        "report",
        "-m",
        t.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
    ]);
    assert_eq!(rep.code, 1, "{}", rep.stderr);
    let rm = rep.manifest();
    let d = &rep.stage(&rm, "report")["data"]["decision"];
    assert_eq!(d["policies_satisfied"], false, "{d:#}");
    let unsat = d["unsatisfied_requirements"].to_string();
    assert!(
        unsat.contains("test-result-failed") && unsat.contains("/plans/b.functional"),
        "{unsat}"
    );
    // The stage says whose it is: plan b's.
    let groups = s["data"]["results_unlisted"]["groups"].as_array().unwrap();
    let b = groups
        .iter()
        .find(|g| g["plan"] == "/plans/b")
        .unwrap_or_else(|| panic!("{groups:?}"));
    assert_eq!((&b["runner"], &b["failed"]), (&"tmt".into(), &1.into()));
}

#[test]
fn one_test_in_two_plans_is_two_results() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("one-test-two-plans");
    let r = w.test(&m, &from(&fx));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let s = r.stage(&out, "test");
    let x: Vec<(&Value, &Value)> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["testcase"] == "/tests/x")
        .map(|c| (&c["plan"], &c["outcome"]))
        .collect();
    assert_eq!(x.len(), 2, "{x:?}");
    let t = w.save("tested.json", &out);
    let rep = w.run(&[
        "report",
        "-m",
        t.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
    ]);
    // The report's exit is the run's verdict: its test stage FAILED (issue 15; it was 0).
    assert_eq!(rep.code, 1, "{}", rep.stderr);
    let rm = rep.manifest();
    let rs = rep.stage(&rm, "report");
    // Every result is recorded: none shares another's id.
    assert_eq!(rs["data"]["results_new"], rs["data"]["results"], "{rs:#}");
}

#[test]
fn failed_only_keeps_a_run_level_error_of_a_runner_it_does_not_run() {
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("tmt-broken-beside-sti");
    let first = w.test(&m, &from(&fx));
    assert_eq!(first.code, 3, "{}", first.stderr);
    let m1 = first.manifest();
    let s1 = first.stage(&m1, "test");
    assert_eq!(s1["outcome"], "ERROR", "{s1:#}");
    let broke = |s: &Value| {
        s["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "ERROR" && r["testcase"].as_str().unwrap().contains("tmt"))
            .count()
    };
    assert_eq!(broke(s1), 1, "{:#}", s1["results"]);

    // --runner sti is another suite than the record's (review I): nothing of it is carried
    // or dropped; STI runs whole, and its pass stands for STI alone (tmt's error stands for
    // the run: run_records::standing).
    let again = w.test(
        &m1,
        &[&from(&fx)[..], &["--failed-only", "--runner", "sti"]].concat(),
    );
    let m2 = again.manifest();
    let s2 = again.stage(&m2, "test");
    assert_eq!(s2["data"]["rerun"], "all", "{s2:#}");
    assert!(note_has(s2, "ran other tests"), "{}", s2["notes"]);
    assert_eq!(s2["data"]["suite"]["runner"], "sti", "{s2:#}");
    assert!(!s2.to_string().contains("in an earlier run"), "{s2:#}");
}

#[test]
fn failed_only_after_a_rebuild_runs_every_test() {
    // The test record is of the packages built before; a rebuild came after it: its passes
    // say nothing of the new packages, so --failed-only runs everything.
    let w = Ws::new();
    let b = w.build("hello-broken-test", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let t = w.test(&b.manifest(), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    let tm = w.save("t.json", &t.manifest());
    let rebuilt = w.run(&["build", "-m", tm.to_str().unwrap(), "--no-cache"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let again = w.test(&rebuilt.manifest(), &["--failed-only"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    let m = again.manifest();
    let s = again.stage(&m, "test");
    assert_eq!(s["data"]["rerun"], "all", "{s:#}");
    assert!(note_has(s, "ran before its latest build"), "{}", s["notes"]);
    assert!(
        !s.to_string().contains("in an earlier run"),
        "a pass carried from the packages built before: {s:#}"
    );
}

#[test]
fn failed_only_reruns_only_from_the_latest_record_of_the_same_suite() {
    // Review I: a --failed-only run stands for its whole suite, so it reruns from a record of
    // the same suite (tests tree, --runner, --tags) that nothing of that suite came after;
    // else it runs every test.
    let w = Ws::new();
    let m = built(&w);
    let fx = fixture("plain-sti");
    let t1 = w.test(&m, &from(&fx));
    assert_eq!(t1.code, 1, "{}", t1.stderr);
    let m1 = t1.manifest();
    let full = |r: &Run, why: &str| {
        let m = r.manifest();
        let s = r.stage(&m, "test").clone();
        assert_eq!(s["data"]["rerun"], "all", "{s:#}");
        assert!(note_has(&s, why), "{}", s["notes"]);
        assert!(!s.to_string().contains("in an earlier run"), "{s:#}");
    };
    // Other tags: another suite.
    let other = w.test(
        &m1,
        &[&from(&fx)[..], &["--failed-only", "--tags", "atomic"]].concat(),
    );
    full(&other, "ran other tests");
    // The same suite ran again after it: its record is no longer the latest.
    let t2 = w.test(&m1, &[&from(&fx)[..], &["--no-cache"]].concat());
    assert_eq!(t2.code, 1, "{}", t2.stderr);
    let stale = w.test(&m1, &[&from(&fx)[..], &["--failed-only"]].concat());
    full(&stale, "ran again in this run");
    // From the latest (that full run itself), it selects.
    let latest = w.test(
        &stale.manifest(),
        &[&from(&fx)[..], &["--failed-only"]].concat(),
    );
    let ml = latest.manifest();
    let s = latest.stage(&ml, "test");
    assert_ne!(s["data"]["rerun"], "all", "{s:#}");
}
