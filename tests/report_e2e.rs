//! `fci report` through the real binary: a run's results and its gating decision; and `fci
//! gating`: Greenwave's decision from files, a gating.yaml's check, the workspace's waivers.

mod common;
use common::promote::*;
use common::*;
use serde_json::{json, Value};

/// The tools these tests run (the broker checks its own): `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, tool::BASE, tool::COMPOSE];

const GATING: &str = "--- !Policy\n\
    id: fedora-ci\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable]\n\
    subject_type: koji_build\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/gating.functional}\n";

const NVR: &str = "hello-atomic-1.0-1.fc41";

/// `fci HEAD...` with each of `files` written and passed as `FLAG PATH`, then `extra`.
fn with_files(w: &Ws, head: &[&str], files: &[(&str, String)], extra: &[&str]) -> Run {
    let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
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

const DECIDE: [&str; 2] = ["gating", "decide"];
const VALIDATE: [&str; 2] = ["gating", "validate"];

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
    let r = with_files(
        &w,
        &DECIDE,
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
    let r = with_files(
        &w,
        &DECIDE,
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
    let r = with_files(&w, &VALIDATE, &[("--gating", GATING.into())], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), r#"{"message":"All OK"}"#);
    let bad = GATING.replace("PassingTestCaseRule", "PassingTestRule");
    let r = with_files(&w, &VALIDATE, &[("--gating", bad)], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("!PassingTestRule"), "{}", r.stdout);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let w = Ws::new();
    let r = with_files(
        &w,
        &DECIDE,
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
    let r = with_files(
        &w,
        &DECIDE,
        &[
            ("--gating", GATING.into()),
            ("--results", "[{\"outcome\": \"PASSED\"}]".into()),
        ],
        &ASK,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("without `testcase`"), "{}", r.stderr);
    // The request needs its subject.
    let files = [("--gating", GATING.into()), ("--results", "[]".into())];
    let r = with_files(&w, &DECIDE, &files, &ASK[..2]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--product-version"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // A decision context no policy names (a typo) decides nothing: Greenwave answers 404,
    // never "satisfied".
    let mut typo = ASK;
    typo[1] = "bodhi_update_push_stabel";
    let r = with_files(&w, &DECIDE, &files, &typo);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no policy applies"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

/// The one line an old spelling prints on stderr, kept hidden for one release.
fn deprecation(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.contains("deprecated"))
        .collect()
}

/// `report --results`, the spelling before `fci gating decide`: the same decision, the same
/// exit codes, and one line saying what replaces it.
#[test]
fn the_old_report_results_spelling_still_decides_and_says_what_replaces_it() {
    let w = Ws::new();
    let results = json!([
        result(1, "fedora-ci.koji-build.tier0.functional", "PASSED"),
        result(2, "fedora-ci.koji-build./plans/gating.functional", "FAILED"),
    ]);
    let files = [
        ("--gating", GATING.into()),
        ("--results", results.to_string()),
    ];
    let old = with_files(&w, &["report"], &files, &ASK);
    assert_eq!(old.code, 1, "{}", old.stderr);
    assert_eq!(
        deprecation(&old),
        ["fci: warning: `fci report --results` is deprecated and goes in the next release: use `fci gating decide`"],
        "{}",
        old.stderr
    );
    let new = with_files(&w, &DECIDE, &files, &ASK);
    assert_eq!(new.code, 1, "{}", new.stderr);
    assert!(deprecation(&new).is_empty(), "{}", new.stderr);
    let d: Value = serde_json::from_str(&old.stdout).unwrap();
    assert_eq!(d, serde_json::from_str::<Value>(&new.stdout).unwrap());
    assert_eq!(d["summary"], "Of 2 required tests, 1 test failed");
    // Without the subject, as before: bad usage.
    let r = with_files(&w, &["report"], &files, &ASK[..2]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

/// `report --validate`, the spelling before `fci gating validate`: the same answer, and one
/// line saying what replaces it (also with --quiet, which `Ws` runs every command with).
#[test]
fn the_old_report_validate_spelling_still_checks_and_says_what_replaces_it() {
    let w = Ws::new();
    let r = with_files(
        &w,
        &["report"],
        &[("--gating", GATING.into())],
        &["--validate"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), r#"{"message":"All OK"}"#);
    assert_eq!(
        deprecation(&r),
        ["fci: warning: `fci report --validate` is deprecated and goes in the next release: use `fci gating validate`"],
        "{}",
        r.stderr
    );
    let bad = GATING.replace("PassingTestCaseRule", "PassingTestRule");
    let r = with_files(&w, &["report"], &[("--gating", bad)], &["--validate"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("!PassingTestRule"), "{}", r.stdout);
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
    // Fedora CI messages for each stage's start and end, in the journal, each once.
    let journal: Vec<Value> = std::fs::read_to_string(w.ws().join("messages/journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let topics: Vec<&str> = journal
        .iter()
        .map(|m| m["topic"].as_str().unwrap())
        .collect();
    // The test's running and complete, the build's complete, and one complete per test
    // Fedora CI names (tier0, the tmt plan).
    assert_eq!(
        topics
            .iter()
            .filter(|t| t.starts_with("org.centos.prod.ci.koji-build.test."))
            .count(),
        5,
        "{topics:?}"
    );
    let types: Vec<&str> = journal
        .iter()
        .filter(|m| m["topic"] == "org.centos.prod.ci.koji-build.test.complete")
        .map(|m| m["body"]["test"]["type"].as_str().unwrap())
        .collect();
    let mut types = types;
    types.sort();
    assert_eq!(types, ["/plans/functional", "build", "test", "tier0"]);
    let done = journal
        .iter()
        .find(|m| {
            m["topic"] == "org.centos.prod.ci.koji-build.test.complete"
                && m["body"]["test"]["type"] == "test"
        })
        .unwrap();
    let b = &done["body"];
    assert_eq!(b["test"]["result"], "passed");
    // Sent as the stage ran, in the run's namespace (the default: Fedora CI's).
    assert_eq!(b["test"]["namespace"], "fedora-ci.koji-build");
    assert_eq!(b["artifact"]["type"], "koji-build");
    assert_eq!(b["artifact"]["nvr"], "hello-atomic-1.0-1.fc41");
    assert!(b["artifact"]["id"].as_u64().unwrap() > 0);
    assert_eq!(b["notification"]["recipients"][0], "fci@example.org");
    assert_eq!(b["version"], "0.2.1");
    for key in ["contact", "run", "pipeline", "system", "generated_at"] {
        assert!(!b[key].is_null(), "{key} missing: {b:#}");
    }
    assert_eq!(done["headers"]["fedora_messaging_schema"], "base.message");
    assert_eq!(
        journal
            .iter()
            .filter(|m| m["topic"].as_str().unwrap().contains("greenwave"))
            .count(),
        1,
        "one decision message for one decision"
    );
}

/// Issue 15: a passing run in the default namespace satisfies the example's own gating.yaml
/// unchanged; its messages link to the job that ran each stage and to its logs; and every
/// message the stages journaled is, id for id, the one the report would send for the run.
#[test]
fn a_passing_run_satisfies_fedoras_gating_and_each_message_id_means_one_body() {
    let w = Ws::new();
    let job = "https://jenkins.example.org/job/fci/job/hello/7/";
    let artifacts = "https://ci.example.org/ws/";
    let built = w.build("hello-atomic", &["--artifacts-url", artifacts]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let bm = built.manifest();
    assert_eq!(bm["run"]["ci"]["namespace"], "fedora-ci.koji-build");
    assert_eq!(
        bm["run"]["ci"]["contact"],
        json!({"name": "fci", "team": "fci"})
    );
    // The tests run in a Jenkins job: its BUILD_URL is the records' run_url.
    let p = w.save("built.json", &bm);
    let tested = Run::from(
        w.cmd()
            .env("BUILD_URL", job)
            .args(["test", "-m", p.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let tm = tested.manifest();
    assert_eq!(tested.stage(&tm, "test")["run_url"], job);
    let m = w.save("tested.json", &tm);
    let gating = common::example("hello-atomic").join("gating.yaml");
    let server = common::resultsdb::StandIn::start(&FEDORA_OUTCOMES);
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "--gating",
        gating.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
        "--resultsdb-url",
        &server.url(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let d = &r.stage(&rm, "report")["data"]["decision"];
    assert_eq!(d["policies_satisfied"], true, "{d:#}");
    assert!(
        d["satisfied_requirements"]
            .to_string()
            .contains("fedora-ci.koji-build.tier0.functional"),
        "{d:#}"
    );
    assert!(!r.stderr.contains("another body"), "{}", r.stderr);
    // ResultsDB has the gating's test, linked to the job that ran it and to its log.
    let got = server.results();
    let tier0 = got
        .iter()
        .find(|r| r["testcase"]["name"] == "fedora-ci.koji-build.tier0.functional")
        .expect("the STI aggregate");
    assert_eq!(tier0["ref_url"], job);
    let test_log = r.stage(&rm, "test")["log"].as_str().unwrap();
    assert_eq!(tier0["data"]["log"][0], format!("{artifacts}{test_log}"));
    let build = got
        .iter()
        .find(|r| r["testcase"]["name"] == "fedora-ci.koji-build.build.validation")
        .unwrap();
    // The build ran in no job: its log's link is its ref_url.
    let build_log = r.stage(&rm, "build")["log"].as_str().unwrap();
    assert_eq!(build["ref_url"], format!("{artifacts}{build_log}"));
    // What the stages journaled as they ran is what the report sends for the run.
    let journal: Vec<Value> = std::fs::read_to_string(w.ws().join("messages/journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &Value| {
            m["topic"]
                .as_str()
                .unwrap()
                .starts_with("org.centos.prod.ci.")
        })
        .collect();
    let manifest: fci::manifest::Manifest = serde_json::from_value(rm.clone()).unwrap();
    let resent =
        fci::bus::messages::for_run(&manifest, &fci::bus::messages::Context::of(&manifest));
    assert_eq!(journal.len(), resent.len());
    for j in &journal {
        let again = resent
            .iter()
            .find(|m| m.id == j["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("not resent: {j:#}"));
        assert_eq!(j["body"], again.body, "{}", j["topic"]);
    }
    // The links: the test's job and its console; the build (no job) its log below the
    // artifacts URL. Nothing empty, no placeholder, the runtime the test's.
    let test_done = journal
        .iter()
        .find(|m| {
            m["topic"] == "org.centos.prod.ci.koji-build.test.complete"
                && m["body"]["test"]["type"] == "test"
        })
        .unwrap();
    let run = &test_done["body"]["run"];
    assert_eq!(run["url"], job);
    assert_eq!(run["log"], format!("{job}console"));
    assert_eq!(run["rebuild"], format!("{job}rebuild"));
    assert!(
        test_done["body"]["test"]["runtime"].is_u64(),
        "{test_done:#}"
    );
    assert!(test_done["body"].get("runtime").is_none());
    let build_done = journal
        .iter()
        .find(|m| m["body"]["test"]["type"] == "build")
        .unwrap();
    let log = r.stage(&rm, "build")["log"].as_str().unwrap();
    assert_eq!(build_done["body"]["run"]["url"], artifacts);
    assert_eq!(
        build_done["body"]["run"]["log"],
        format!("{artifacts}{log}")
    );
    let text = serde_json::to_string(&journal).unwrap();
    assert!(
        !text.contains("\"\"") && !text.contains("fci:run/") && !text.contains("root@localhost")
    );
    // One namespace per run: another one is refused, naming the run's.
    let other = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "--namespace",
        "fci.koji-build",
    ]);
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(
        other.stderr.contains("fedora-ci.koji-build"),
        "{}",
        other.stderr
    );
}

#[test]
fn a_failed_run_is_reported_and_gating_names_the_failure() {
    let w = Ws::new();
    let (tested, r) = report_run(&w, "hello-broken-test");
    assert_eq!(tested.code, 1, "{}", tested.stderr);
    // The same, as one page.
    let page = w.path().join("run.html");
    let junit = w.path().join("run.xml");
    let tm = w.save("t2.json", &tested.manifest());
    let g = w.path().join("gating.yaml");
    let h = w.run(&[
        "report",
        "-m",
        tm.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
        "--html",
        page.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(h.code, 1, "{}", h.stderr);
    // And as JUnit, for Jenkins: a suite per stage, the failed test a failed case.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = fci::junit::parse(xml.as_bytes()).unwrap();
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.outcome == fci::manifest::Outcome::Failed)
        .map(|c| (c.classname.as_deref().unwrap_or(""), c.name.as_str()))
        .collect();
    // The failed test is a failed case of its stage; the report's own verdict is its
    // `gating` case, failed too.
    let (gating, tests): (Vec<(&str, &str)>, Vec<_>) =
        failed.iter().partition(|(stage, _)| *stage == "report");
    assert_eq!(gating, vec![("report", "gating")], "{xml}");
    assert!(
        !tests.is_empty() && tests.iter().all(|(stage, _)| *stage == "test"),
        "{xml}"
    );
    assert!(xml.contains("<testsuite name=\"build\""), "{xml}");
    // The failed test's case names its cause (the command and its exit status) as the
    // message, and quotes the end of its log (redacted) as the failure's text.
    let spelling = cases.iter().find(|c| c.name == "spelling").expect(&xml);
    let cause = spelling.message.as_deref().unwrap_or_default();
    assert!(
        cause.starts_with("`hello-broken-test | grep -qx 'Hello, world!'` exited 1"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "$ hello-broken-test | grep -qx &apos;Hello, world!&apos;\n# exit status 1</failure>"
        ) || xml
            .contains("$ hello-broken-test | grep -qx 'Hello, world!'\n# exit status 1</failure>"),
        "{xml}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("hello-broken-test-0.1-1.fc41"));
    assert!(html.contains("Of 2 required tests"), "{html}");
    assert!(html.contains("test-result-failed"));
    assert!(!html.contains("<script"));
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
    // The maintainer is told which requirement failed.
    let journal = std::fs::read_to_string(w.ws().join("messages/journal.jsonl")).unwrap();
    let decision: Value = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| m["topic"] == "org.fedoraproject.prod.greenwave.decision.update")
        .unwrap();
    assert_eq!(decision["body"]["policies_satisfied"], false);
    assert!(decision["body"]["unsatisfied_requirements"]
        .to_string()
        .contains("test-result-failed"));
    assert_eq!(
        decision["body"]["notification"]["recipients"][0],
        "fci@example.org"
    );
}

/// The text of a page's HTML (what a browser shows, and what a maintainer copies).
fn shown(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The part of `page` from `start` to the next `end`.
fn part<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start}: {page}"));
    let rest = &page[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

const CHECK_GATING: &str = "--- !Policy\n\
    id: fedora-ci\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_stable]\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n";

/// A run a failing %check ended (build FAILED, test skipped) gets a full page: its identity,
/// each unsatisfied requirement linked to the failing case, with the cause line, the log's
/// last lines, its link under the artifacts URL, and commands that do what they say (the
/// waive command waives, the rerun command reruns). A case's name and note from a hostile
/// manifest are text on it, never markup.
#[test]
fn a_failed_runs_page_links_each_failing_requirement_to_its_cause_and_commands() {
    let w = Ws::new();
    // The run's first stage fixes where its files are served; the page links there.
    let art = [
        "--artifacts-url",
        "https://ci.example.org/job/7/artifact/ws/",
    ];
    let built = w.build("hello-broken-check", &art);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let tested = w.test(&built.manifest(), &[]);
    assert_eq!(tested.code, 1, "{}", tested.stderr);
    let m = w.save("tested.json", &tested.manifest());
    let g = w.path().join("gating.yaml");
    std::fs::write(&g, CHECK_GATING).unwrap();
    let page = w.path().join("run.html");
    let report = |extra: &[&str]| {
        let mut c = w.cmd();
        c.args(["report", "-m", m.to_str().unwrap(), "--namespace"])
            .args(["fedora-ci.koji-build", "--html", page.to_str().unwrap()])
            .args(extra);
        let r = Run::from(c.output().unwrap());
        (r, std::fs::read_to_string(&page).unwrap())
    };
    let gate = [
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
    ];
    let (r, html) = report(&gate);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained, no script.
    for bad in ["<script", "<link", " src=", "@import"] {
        assert!(!html.contains(bad), "{bad}: {html}");
    }
    let text = shown(&html);
    // The run's identity.
    let ws = w.ws().canonicalize().unwrap();
    for row in [
        format!(
            "<tr><th>fci</th><td><code>{}</code>",
            env!("CARGO_PKG_VERSION")
        ),
        "<tr><th>build backend</th><td><code>rpmbuild</code>".into(),
        "<tr><th>dist-git branch</th><td><code>f41</code>".into(),
        format!(
            "<tr><th>dist-git repository</th><td><code>{}</code>",
            example("hello-broken-check").display()
        ),
    ] {
        assert!(text.contains(&row), "{row}: {html}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        text.contains(&format!(
            "<tr><th>host</th><td><code>{}</code>",
            host.trim()
        )),
        "{html}"
    );
    // Each requirement links to the failing case: the build's failed result, and the test
    // result missing because the failure stopped the run.
    let section = part(
        &html,
        "<section class=\"failure\" id=\"case-0-0\">",
        "</section>",
    );
    for req in [
        "fedora-ci.koji-build.build.validation</code> — test-result-failed",
        "fedora-ci.koji-build.tier0.functional</code> — test-result-missing",
    ] {
        let li = part(&html, req, "</li>");
        assert!(
            li.contains("see <a href=\"#case-0-0\"><code>build.check</code></a>"),
            "{li}"
        );
    }
    // The cause line, the log's last lines (the failing check's output among them), linked.
    assert!(
        section.contains(
            "<p class=\"cause\">the package&#x27;s unit tests (%check) failed: FAIL: greeting is wrong</p>"
        ),
        "{section}"
    );
    let excerpt = shown(part(section, "<pre class=\"excerpt\">", "</pre>"));
    assert!(excerpt.contains("FAIL: greeting is wrong"), "{excerpt}");
    assert!(excerpt.lines().count() <= 41, "{excerpt}");
    let tm = tested.manifest();
    let log = tested.stage(&tm, "build")["log"].as_str().unwrap();
    let link = format!("href=\"https://ci.example.org/job/7/artifact/ws/{log}\"");
    assert!(shown(section).contains(&link), "{section}");
    // The commands, exactly; and they do what they say.
    let waive = format!(
        "fci --workspace {} gating waive fedora-ci.koji-build.tier0.functional --product-version fedora-41 --subject-identifier hello-broken-check-0.1-1.fc41 --gating {} --comment 'WHY THIS FAILURE MAY PASS'",
        ws.display(),
        g.display()
    );
    assert!(
        text.contains(&format!("<pre class=\"cmd\">{waive}</pre>")),
        "{html}"
    );
    let rerun = format!(
        "fci --workspace {} build -m {} --no-cache",
        ws.display(),
        m.display()
    );
    assert!(
        shown(section).contains(&format!("<pre class=\"cmd\">{rerun}</pre>")),
        "{section}"
    );
    let fci = env!("CARGO_BIN_EXE_fci");
    let sh = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{fci}{} >/dev/null",
                cmd.strip_prefix("fci").unwrap()
            ))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    };
    let waived = sh(&waive);
    assert_eq!(waived.code, 0, "{}", waived.stderr);
    let (r, html) = report(&gate);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // Waived, the requirement is no longer unsatisfied; the failed build still is.
    let unsatisfied = part(&html, "<ul class=\"requirements\">", "</ul>");
    assert!(!unsatisfied.contains("tier0.functional"), "{unsatisfied}");
    assert!(
        unsatisfied.contains("build.validation</code> — test-result-failed"),
        "{unsatisfied}"
    );
    let again = sh(&rerun);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("%check failed"), "{}", again.stderr);

    // A hostile manifest: the case's name and note are text on the page.
    let mut hostile = tm.clone();
    let build = hostile["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == "build")
        .unwrap();
    build["results"][0]["testcase"] = json!("<script>alert(1)</script>");
    build["results"][0]["note"] = json!("</pre><script>alert(2)</script><a href=\"javascript:x\">");
    std::fs::write(&m, serde_json::to_string(&hostile).unwrap()).unwrap();
    w.forget_records();
    let (r, html) = report(&[]);
    // Reported as the manifest says (its verdict is the exit status's business, not the
    // page's): a page either way.
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    assert!(
        !html.contains("<script") && !html.contains("javascript:x\">"),
        "{html}"
    );
    let section = part(
        &html,
        "<section class=\"failure\" id=\"case-0-0\">",
        "</section>",
    );
    assert!(
        section.contains("<code>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</code>"),
        "{section}"
    );
    assert!(
        section.contains("<p class=\"cause\">&lt;&#x2f;pre&gt;&lt;script&gt;alert(2)&lt;&#x2f;script&gt;&lt;a href=&quot;javascript:x&quot;&gt;</p>"),
        "{section}"
    );
    // Without --gating, the failed run's page is whole all the same: its identity, the failing
    // case with its log's lines and the rerun command, the stage skipped after it.
    let text = shown(&html);
    assert!(
        text.contains("<tr><th>build backend</th><td><code>rpmbuild</code>"),
        "{html}"
    );
    assert!(
        shown(section).contains("FAIL: greeting is wrong"),
        "{section}"
    );
    assert!(shown(section).contains(&rerun), "{section}");
    assert!(
        html.contains("<tr><td>test</td><td><span class=\"badge skip\">SKIPPED</span>"),
        "{html}"
    );
    assert!(!html.contains("<h2>Gating</h2>"), "{html}");
}

/// A passing run's page: its identity and stages, nothing failing, nothing to waive or rerun.
#[test]
fn a_passing_runs_page_shows_its_identity_and_nothing_to_act_on() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    let tested = w.test(&built.manifest(), &[]);
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let m = w.save("tested.json", &tested.manifest());
    let g = w.path().join("gating.yaml");
    std::fs::write(&g, FEDORA_GATING).unwrap();
    let page = w.path().join("run.html");
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "--namespace",
        "fedora-ci.koji-build",
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<p class=\"sub\"><span class=\"badge pass\">PASSED</span></p>"),
        "{html}"
    );
    assert!(
        html.contains("All required tests (2 total) have passed"),
        "{html}"
    );
    for absent in [
        "case-",
        "What failed",
        "gating waive",
        "--no-cache",
        "<a href=\"http",
    ] {
        assert!(!html.contains(absent), "{absent}: {html}");
    }
    let text = shown(&html);
    assert!(
        text.contains("<tr><th>build backend</th><td><code>rpmbuild</code>"),
        "{html}"
    );
    let tm = tested.manifest();
    let run = format!(
        "<tr><th>run</th><td><code>{}</code>",
        tm["run"]["id"].as_str().unwrap()
    );
    assert!(text.contains(&run), "{html}");
    for stage in ["build", "test"] {
        assert!(
            html.contains(&format!(
                "<tr><td>{stage}</td><td><span class=\"badge pass\">PASSED"
            )),
            "{html}"
        );
    }
}

/// build | compose | report --promote of a package (an example or a fixture).
fn promote_run(w: &Ws, built: Run, tag: &str) -> Run {
    let b = w.save(&format!("{tag}-built.json"), &built.manifest());
    let c = w.run(&["compose", "--branch", "f41", "-m", b.to_str().unwrap()]);
    promote_with(
        w,
        &c.manifest(),
        &format!("{tag}-composed.json"),
        COMPOSE_GATING,
    )
}

fn known_good(w: &Ws) -> String {
    let out = std::process::Command::new("ostree")
        .arg(format!("--repo={}", w.ws().join("ostree/repo").display()))
        .args(["rev-parse", "fci/f41/known-good"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_passing_change_becomes_the_base_and_a_failing_one_is_excluded() {
    let w = Ws::new();
    let first_base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    // Packager A's change passes gating and becomes the known-good base.
    let a = promote_run(&w, w.build("hello-atomic", &[]), "a");
    assert_eq!(a.code, 0, "{}", a.stderr);
    let am = a.manifest();
    let s = a.stage(&am, "report");
    let a_commit = s["data"]["promoted"]["to"].as_str().unwrap().to_string();
    assert_eq!(s["data"]["promoted"]["from"], first_base.as_str());
    assert_eq!(known_good(&w), a_commit);
    // Packager B's change fails: excluded, and the base does not move.
    let b = promote_run(&w, w.build("hello-broken-check", &[]), "b");
    assert_eq!(b.code, 1, "{}", b.stderr);
    let bm = b.manifest();
    assert_eq!(b.stage(&bm, "report")["data"]["excluded"], true);
    assert_eq!(known_good(&w), a_commit);
    let excluded: Value = serde_json::from_str(
        &std::fs::read_to_string(w.ws().join("state/excluded/f41.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(excluded[0]["package"], "hello-broken-check");
    // The next change is tested on A's base, unaffected by B.
    let c = promote_run(
        &w,
        w.build_fixture("compose-etc", &["--branch", "f41"]),
        "c",
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    let cm = c.manifest();
    assert_eq!(cm["subject"]["base"]["ostree_commit"], a_commit.as_str());
    let set: Value = serde_json::from_str(
        &std::fs::read_to_string(w.ws().join("state/known-good/f41.json")).unwrap(),
    )
    .unwrap();
    assert!(set["hello-atomic"]["nevras"]
        .to_string()
        .contains("hello-atomic-1.0-1.fc41"));
    assert!(set.get("compose-etc").is_some());
    assert!(set.get("hello-broken-check").is_none());
    // Each run's messages (build, compose; a failed build's) as the stages journaled
    // them are the report's, id for id.
    for (run, m) in [(&a, &am), (&b, &bm), (&c, &cm)] {
        assert!(!run.stderr.contains("another body"), "{}", run.stderr);
        journaled_as_resent(&w, m);
    }
}

/// The Fedora CI messages the journal holds for the run of manifest `m` are, id for id, those
/// `fci report` sends for it (bodies a function of the manifest), and there is one for each.
fn journaled_as_resent(w: &Ws, m: &Value) {
    let journal: Vec<Value> = std::fs::read_to_string(w.ws().join("messages/journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|j: &Value| {
            j["topic"]
                .as_str()
                .unwrap()
                .starts_with("org.centos.prod.ci.")
                && j["body"]["pipeline"]["id"] == m["run"]["id"]
        })
        .collect();
    let manifest: fci::manifest::Manifest = serde_json::from_value(m.clone()).unwrap();
    let resent =
        fci::bus::messages::for_run(&manifest, &fci::bus::messages::Context::of(&manifest));
    assert!(!resent.is_empty());
    assert_eq!(journal.len(), resent.len(), "{journal:#?}");
    for j in &journal {
        let again = resent
            .iter()
            .find(|r| r.id == j["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("not resent: {j:#}"));
        assert_eq!(j["body"], again.body, "{}", j["topic"]);
    }
}

#[test]
fn a_change_tested_on_a_base_that_moved_must_be_retested() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    // Two changes composed on the same base; the first promoted moves it.
    let built_a = w.build("hello-atomic", &[]);
    let built_c = w.build_fixture("compose-etc", &["--branch", "f41"]);
    let ba = w.save("a.json", &built_a.manifest());
    let bc = w.save("c.json", &built_c.manifest());
    let ca = w.run(&["compose", "--branch", "f41", "-m", ba.to_str().unwrap()]);
    let cc = w.run(&["compose", "--branch", "f41", "-m", bc.to_str().unwrap()]);
    let report = |m: &Value, name: &str| promote_with(&w, m, name, COMPOSE_GATING);
    let ra = report(&ca.manifest(), "ra.json");
    assert_eq!(ra.code, 0, "{}", ra.stderr);
    let moved = known_good(&w);
    let rc = report(&cc.manifest(), "rc.json");
    // Not the package's failure: ERROR (the pipeline's state moved under the run).
    assert_eq!(rc.code, 3, "{}", rc.stderr);
    let m = rc.manifest();
    let s = rc.stage(&m, "report");
    assert_eq!(s["data"]["needs_retest"], true);
    assert!(s["notes"].to_string().contains("retest"), "{s:#}");
    assert_eq!(known_good(&w), moved);
    // The promoted change reported again: known-good already is its commit, so there is
    // nothing to retest and nothing to move.
    let again = report(&ca.manifest(), "ra2.json");
    assert_eq!(again.code, 0, "{}", again.stderr);
    let am = again.manifest();
    let s = again.stage(&am, "report");
    assert!(
        s["notes"]
            .to_string()
            .contains("already is this change's commit"),
        "{s:#}"
    );
    assert_eq!(known_good(&w), moved);
}

#[test]
fn waivers_added_in_the_workspace_decide_later_reports() {
    let w = Ws::new();
    let (tested, r) = report_run(&w, "hello-broken-test");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = tested.manifest();
    let nvr = m["stages"][0]["data"]["nvr"].as_str().unwrap().to_string();
    let rm = r.manifest();
    let unsat = &r.stage(&rm, "report")["data"]["decision"]["unsatisfied_requirements"];
    let failing: Vec<String> = unsat
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["testcase"].as_str().unwrap().to_string())
        .collect();
    assert!(!failing.is_empty());
    // `head` is `gating waive`, or the spelling before it, `report --waive`.
    let waive = |head: &[&str], extra: &[&str]| {
        for f in &failing {
            let mut args = head.to_vec();
            args.extend([
                f,
                "--subject-identifier",
                &nvr,
                "--product-version",
                "fedora-41",
                "--comment",
                "known flake, fix in 1.0-2",
            ]);
            args.extend_from_slice(extra);
            let r = w.run(&args);
            assert_eq!(r.code, 0, "{}", r.stderr);
            let waiver: Value = serde_json::from_str(&r.stdout).unwrap();
            assert_eq!(waiver["testcase"], f.as_str(), "{waiver:#}");
            assert_eq!(waiver["waived"], !extra.contains(&"--revoke"), "{waiver:#}");
            let warned: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| l.contains("deprecated"))
                .collect();
            if head[0] == "report" {
                assert_eq!(
                    warned,
                    ["fci: warning: `fci report --waive` is deprecated and goes in the next release: use `fci gating waive`"],
                    "{}",
                    r.stderr
                );
            } else {
                assert!(warned.is_empty(), "{}", r.stderr);
            }
        }
    };
    // A waiver for a subject the workspace has no results for is refused.
    let typo = w.run(&[
        "gating",
        "waive",
        &failing[0],
        "--subject-identifier",
        "hello-broken-tset-1.0-1.fc41",
        "--product-version",
        "fedora-41",
        "--comment",
        "x",
    ]);
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(typo.stderr.contains("nothing to waive"), "{}", typo.stderr);
    // One failing requirement has no result at all (a plan that never ran): only the
    // gating.yaml that requires it makes it a test case to waive (issue 15: a test case
    // nothing knows is refused, naming the nearest).
    let g = w.path().join("gating.yaml");
    waive(&["gating", "waive"], &["--gating", g.to_str().unwrap()]);
    let again = |name: &str| {
        let p = w.save(name, &m);
        let g = w.path().join("gating.yaml");
        w.run(&[
            "report",
            "-m",
            p.to_str().unwrap(),
            "--namespace",
            "fedora-ci.koji-build",
            "--gating",
            g.to_str().unwrap(),
            "--decision-context",
            "bodhi_update_push_stable",
        ])
    };
    let waived = again("w1.json");
    assert_eq!(waived.code, 0, "{}", waived.stderr);
    let wm = waived.manifest();
    let sat = wm["stages"].as_array().unwrap().last().unwrap()["data"]["decision"]
        ["satisfied_requirements"]
        .to_string();
    assert!(sat.contains("test-result-failed-waived"), "{sat}");
    // Revoked, through the old spelling (kept hidden for one release): the failure counts
    // again.
    waive(&["report", "--waive"], &["--revoke"]);
    assert_eq!(again("w2.json").code, 1);
}

const FEDORA_OUTCOMES: [&str; 7] = [
    "PASSED",
    "INFO",
    "FAILED",
    "NEEDS_INSPECTION",
    "CRASHED",
    "QUEUED",
    "RUNNING",
];

#[test]
fn results_reach_resultsdb_exactly_once_through_the_spool() {
    use common::resultsdb::StandIn;
    let w = Ws::new();
    let mut server = StandIn::start(&FEDORA_OUTCOMES);
    let built = w.build("hello-atomic", &[]);
    let tested = w.test(&built.manifest(), &[]);
    let m = w.save("tested.json", &tested.manifest());
    let token = "s3cr3t-resultsdb-token";
    let url = server.url();
    let report = |extra: &[&str]| {
        Run::from(
            w.cmd()
                .env("FCI_RESULTSDB_TOKEN", token)
                .args(["report", "-m", m.to_str().unwrap(), "--resultsdb-url"])
                .arg(&url)
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    // The server goes away after 3 results: the rest is spooled, and the report says so.
    // (One at a time, so that it goes away mid-run whatever the timing.)
    server.state.lock().unwrap().die_after = Some(3);
    let r = report(&["--resultsdb-jobs", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let s = r.stage(&rm, "report");
    let total = s["data"]["results"].as_u64().unwrap() as usize;
    // Requests already in flight when it went away may have been stored too.
    let delivered = s["data"]["resultsdb"]["delivered"].as_u64().unwrap() as usize;
    assert_eq!(delivered, server.results().len(), "{s:#}");
    assert!((3..total).contains(&delivered), "{s:#}");
    assert_eq!(
        s["data"]["resultsdb"]["spooled"],
        total - delivered,
        "{s:#}"
    );
    assert!(s["notes"].to_string().contains("spooled"), "{s:#}");
    // Back, and answering 503 twice: retried, then the spool is delivered, nothing twice.
    server.restart();
    server.state.lock().unwrap().fail_posts = 2;
    let r = report(&["--namespace", "fedora-ci.koji-build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A 503 to a POST leaves that result spooled (it might have been stored): the next
    // reports look it up and finish the delivery.
    for _ in 0..3 {
        let r = report(&[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let got = server.results();
    assert_eq!(got.len(), total, "every result exactly once");
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r["data"]["fci_result_id"][0].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total);
    // What arrived is what ResultsDB expects.
    let tier0 = got
        .iter()
        .find(|r| r["testcase"]["name"] == "fedora-ci.koji-build.tier0.functional")
        .expect("the STI aggregate");
    assert_eq!(tier0["outcome"], "PASSED");
    assert_eq!(tier0["data"]["item"][0], "hello-atomic-1.0-1.fc41");
    assert_eq!(tier0["data"]["type"][0], "koji_build");
    let st = server.state.lock().unwrap();
    assert!(st
        .authorization
        .iter()
        .all(|a| a.as_deref() == Some(&format!("Bearer {token}"))));
    drop(st);
    // A crash between a POST and the spool's removal: the result is found, not posted again.
    let spool = w.ws().join("spool/resultsdb");
    let server_dir = std::fs::read_dir(&spool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let replay = got[0].clone();
    let mut body = serde_json::json!({"testcase": replay["testcase"], "outcome": replay["outcome"], "data": {}});
    for (k, v) in replay["data"].as_object().unwrap() {
        body["data"][k] = v[0].clone();
    }
    let id = body["data"]["fci_result_id"].as_str().unwrap().to_string();
    std::fs::write(server_dir.join(format!("{id}.json")), body.to_string()).unwrap();
    let r = report(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.results().len(), total);
    let rm = r.manifest();
    assert_eq!(
        r.stage(&rm, "report")["data"]["resultsdb"]["already_there"],
        1
    );
    // The token is in no output, manifest or log.
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains(token));
    }
    let log = std::fs::read_to_string(w.ws().join(r.stage(&rm, "report")["log"].as_str().unwrap()))
        .unwrap();
    assert!(!log.contains(token));
}

#[test]
fn a_post_stored_but_answered_5xx_is_not_posted_again() {
    use common::resultsdb::StandIn;
    let w = Ws::new();
    let server = StandIn::start(&FEDORA_OUTCOMES);
    server.state.lock().unwrap().store_then_fail = 3;
    let built = w.build("hello-atomic", &[]);
    let m = w.save("b.json", &built.manifest());
    // Spelled as the API root with a trailing slash: the same server as its root.
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "--resultsdb-url",
        &format!("{}/api/v2.0/", server.url()),
        "--resultsdb-jobs",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let total = r.stage(&r.manifest(), "report")["data"]["results"]
        .as_u64()
        .unwrap() as usize;
    // Each ambiguous POST waits for the next report, which finds it stored.
    for _ in 0..4 {
        let again = w.run(&[
            "report",
            "-m",
            m.to_str().unwrap(),
            "--resultsdb-url",
            &format!("{}/api/v2.0/", server.url()),
            "--resultsdb-jobs",
            "1",
        ]);
        assert_eq!(again.code, 0, "{}", again.stderr);
    }
    assert_eq!(server.results().len(), total, "each result stored once");
}

#[test]
fn gating_takes_the_newest_submitted_result_and_a_promotion_its_own_runs() {
    let w = Ws::new();
    let g = w.path().join("g.yaml");
    std::fs::write(
        &g,
        "--- !Policy\nid: p\ndecision_context: c\nrules:\n  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n",
    )
    .unwrap();
    let built = w.build("hello-atomic", &[]);
    let passed = built.manifest();
    // The same subject built again an hour later, and failing.
    let mut failed = passed.clone();
    failed["run"]["id"] = json!("bbbbbbbb-0000-4000-8000-000000000002");
    let later = |t: &str| {
        let d = chrono::DateTime::parse_from_rfc3339(t).unwrap() + chrono::Duration::hours(1);
        d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let b = &mut failed["stages"][0];
    b["outcome"] = json!("FAILED");
    b["started"] = json!(later(b["started"].as_str().unwrap()));
    b["finished"] = json!(later(b["finished"].as_str().unwrap()));
    let report = |m: &Value, name: &str, extra: &[&str]| {
        let p = w.save(name, m);
        let mut args = vec![
            "report",
            "-m",
            p.to_str().unwrap(),
            "--gating",
            g.to_str().unwrap(),
            "--decision-context",
            "c",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    // (`failed` is an edited copy under a run id this workspace has no records of: recorded
    // as it says, and saying so.)
    let f = report(&failed, "f.json", &[]);
    assert_eq!(f.code, 1, "{}", f.stderr);
    assert_eq!(f.stage(&f.manifest(), "report")["data"]["unbound"], true);
    // The older, passing run reported last does not hide the newer failure.
    let r = report(&passed, "p.json", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // A context no policy names (a typo) promotes nothing, even with nothing required.
    let typo = w.run(&[
        "report",
        "-m",
        w.save("q.json", &passed).to_str().unwrap(),
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "cc",
        "--promote",
    ]);
    assert_eq!(typo.code, 1, "{}", typo.stderr);
    let tm = typo.manifest();
    assert!(typo.stage(&tm, "report")["notes"]
        .to_string()
        .contains("not promoted"));
    assert!(!w.ws().join("state/known-good/f41.json").exists());
    // A promotion is decided on the run's own records alone, never on another run's
    // results: the honest run is promoted. A damaged state file is an error first, never
    // silently replaced.
    std::fs::create_dir_all(w.ws().join("state/known-good")).unwrap();
    std::fs::write(w.ws().join("state/known-good/f41.json"), "{\"bash\": 1,").unwrap();
    let r = report(&passed, "p2.json", &["--promote"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("damaged known-good state"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(w.ws().join("state/known-good/f41.json")).unwrap(),
        "{\"bash\": 1,"
    );
    std::fs::remove_file(w.ws().join("state/known-good/f41.json")).unwrap();
    let r = report(&passed, "p3.json", &["--promote"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(w.ws().join("state/known-good/f41.json").exists());
}

#[test]
fn messages_reach_rabbitmq_as_fedora_messaging_sends_them_and_survive_its_restart() {
    use common::rabbitmq::{declare, drain, Broker};
    let w = Ws::new();
    let broker = Broker::start(&w.path().join("rabbitmq"));
    declare(&broker, "fci-test");
    let built = w.build("hello-atomic", &[]);
    let b = w.save("b.json", &built.manifest());
    let url = broker.url();
    let r = w.run(&["report", "-m", b.to_str().unwrap(), "--amqp-url", &url]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let s = r.stage(&rm, "report");
    // The build's complete message (a build has no `running`: its artifact exists at its end).
    assert_eq!(s["data"]["amqp"]["sent"], 1, "{s:#}");
    assert!(
        !rm.to_string().contains("guest:guest"),
        "credentials in the manifest"
    );
    let got = drain(&broker, "fci-test");
    assert_eq!(got.len(), 1, "{got:#?}");
    let done = got
        .iter()
        .find(|m| m["routing_key"] == "org.centos.prod.ci.koji-build.test.complete")
        .expect("the build's complete message");
    assert_eq!(done["content_type"], "application/json");
    assert_eq!(done["content_encoding"], "utf-8");
    assert_eq!(done["delivery_mode"], 2);
    assert!(done["message_id"].as_str().is_some_and(|m| !m.is_empty()));
    let h = &done["headers"];
    assert_eq!(h["fedora_messaging_schema"], "base.message");
    assert_eq!(h["fedora_messaging_severity"], 20);
    assert_eq!(h["priority"], 0);
    assert_eq!(h["fedora_messaging_rpm_hello-atomic"], true);
    assert!(h["sent-at"].as_str().unwrap().ends_with("+00:00"));
    let body = &done["body"];
    assert_eq!(body["artifact"]["nvr"], "hello-atomic-1.0-1.fc41");
    assert_eq!(body["test"]["result"], "passed");
    assert_eq!(body["notification"]["recipients"][0], "fci@example.org");

    // The broker goes away: the next run's messages are spooled, not lost...
    broker.stop();
    let tested = w.test(&built.manifest(), &[]);
    let t = w.save("t.json", &tested.manifest());
    let r = w.run(&["report", "-m", t.to_str().unwrap(), "--amqp-url", &url]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let s = r.stage(&rm, "report");
    // The test's running and complete, and a complete for each of its Fedora tests (tier0,
    // the tmt plan).
    assert_eq!(s["data"]["amqp"]["sent"], 0, "{s:#}");
    assert_eq!(s["data"]["amqp"]["spooled"], 4, "{s:#}");
    assert!(s["notes"].to_string().contains("spooled"), "{s:#}");
    // ...and once it is back, the next report sends them, each once.
    broker.launch();
    let r = w.run(&["report", "-m", t.to_str().unwrap(), "--amqp-url", &url]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    assert_eq!(r.stage(&rm, "report")["data"]["amqp"]["sent"], 4);
    let got = drain(&broker, "fci-test");
    let topics: Vec<&str> = got
        .iter()
        .map(|m| m["routing_key"].as_str().unwrap())
        .collect();
    // In the order of the events: the spool is sent oldest first.
    assert_eq!(
        topics,
        vec![
            "org.centos.prod.ci.koji-build.test.running",
            "org.centos.prod.ci.koji-build.test.complete",
            "org.centos.prod.ci.koji-build.test.complete",
            "org.centos.prod.ci.koji-build.test.complete"
        ]
    );
    assert!(got
        .iter()
        .all(|m| m["body"]["pipeline"]["stage"]["name"] == "test"));

    // With FCI_AMQP_URL set, every stage publishes its own start and end as it runs.
    let la = lookaside();
    let out = w
        .cmd()
        .env("FCI_AMQP_URL", &url)
        .arg("build")
        .arg(example("hello-atomic"))
        .args(["--branch", "f41", "--lookaside", &la, "--no-cache"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = drain(&broker, "fci-test");
    let topics: Vec<&str> = got
        .iter()
        .map(|m| m["routing_key"].as_str().unwrap())
        .collect();
    assert_eq!(topics, vec!["org.centos.prod.ci.koji-build.test.complete"]);
}

#[test]
fn a_resultsdb_that_refuses_garbles_or_stalls_loses_nothing() {
    use common::resultsdb::StandIn;
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    let m = w.save("b.json", &built.manifest());
    let report = |server: &StandIn| {
        Run::from(
            w.cmd()
                .env("FCI_RESULTSDB_TIMEOUT", "1")
                .args([
                    "report",
                    "-m",
                    m.to_str().unwrap(),
                    "--resultsdb-url",
                    &server.url(),
                ])
                .output()
                .unwrap(),
        )
    };
    // Garbage (200 and HTML): nothing counts as delivered, everything stays spooled.
    let garbled = StandIn::start(&FEDORA_OUTCOMES);
    garbled.state.lock().unwrap().garbage = true;
    let r = report(&garbled);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let s = r.stage(&rm, "report");
    let total = s["data"]["results"].as_u64().unwrap();
    assert_eq!(s["data"]["resultsdb"]["delivered"], 0, "{s:#}");
    assert_eq!(s["data"]["resultsdb"]["spooled"], total, "{s:#}");
    // Too slow to answer: the same.
    let slow = StandIn::start(&FEDORA_OUTCOMES);
    slow.state.lock().unwrap().delay = Some(std::time::Duration::from_secs(3));
    let r = report(&slow);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    assert_eq!(
        r.stage(&rm, "report")["data"]["resultsdb"]["spooled"],
        total
    );
    // Refused (400): kept in rejected/, named in the notes, not retried as if it might pass.
    let strict = StandIn::start(&FEDORA_OUTCOMES);
    strict.state.lock().unwrap().reject_posts = true;
    let r = report(&strict);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let s = r.stage(&rm, "report");
    assert_eq!(
        s["data"]["resultsdb"]["rejected"].as_array().unwrap().len() as u64,
        total,
        "{s:#}"
    );
    assert!(s["notes"].to_string().contains("refused"), "{s:#}");
    let rejected = std::fs::read_dir(w.ws().join("spool/resultsdb"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path().join("rejected")).map_or(0, |r| r.count()))
        .sum::<usize>();
    assert_eq!(rejected as u64, total);
}

#[test]
fn a_broker_that_never_answers_delays_a_stage_but_never_fails_it() {
    // Takes the connection and says nothing (a stalled broker or a black hole).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "amqp://fci:pa55w0rd-xyz@127.0.0.1:{}/%2f",
        silent.local_addr().unwrap().port()
    );
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    let m = w.save("b.json", &built.manifest());
    let started = std::time::Instant::now();
    let out = w
        .cmd()
        .env("FCI_AMQP_URL", &url)
        .args(["test", "-m", m.to_str().unwrap()])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed().as_secs() < 120,
        "the stage waited on the broker"
    );
    // The stage's messages wait in the spool (the warning is quiet under --quiet): its
    // running and complete, and a complete for tier0 and for the tmt plan.
    let spooled: usize = std::fs::read_dir(w.ws().join("spool/amqp"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum();
    assert_eq!(spooled, 4);
    assert!(!r.stderr.contains("pa55w0rd-xyz"), "{}", r.stderr);
    assert!(!r.stdout.contains("pa55w0rd-xyz"));
    // Nor does --help show a URL from the environment.
    let help = Run::from(
        w.cmd()
            .env("FCI_AMQP_URL", &url)
            .env("FCI_RESULTSDB_URL", "https://bob:hunter2-abc@rdb.example/")
            .args(["report", "--help"])
            .output()
            .unwrap(),
    );
    assert!(!help.stdout.contains("pa55w0rd-xyz") && !help.stdout.contains("hunter2-abc"));
    drop(silent);
}

#[test]
fn a_promotion_is_not_done_when_its_outputs_cannot_be_written_and_they_show_its_verdict() {
    let w = Ws::new();
    let first = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = w.save("built.json", &w.build("hello-atomic", &[]).manifest());
    let c = w.run(&["compose", "--branch", "f41", "-m", built.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let m = w.save("composed.json", &c.manifest());
    let g = w.path().join("gating.yaml");
    std::fs::write(&g, COMPOSE_GATING).unwrap();
    let report = |context: &str, extra: &[&str]| {
        let mut args = vec![
            "report",
            "-m",
            m.to_str().unwrap(),
            "--gating",
            g.to_str().unwrap(),
            "--decision-context",
            context,
            "--promote",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    // An output that cannot be written is the caller's mistake, found before anything is
    // recorded or promoted.
    let r = report("fci_promote", &["--junit", "/nonexistent-dir/j.xml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent-dir"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(known_good(&w), first);
    // A promotion refused (a decision context no policy names): FAILED on the page and in
    // the JUnit report, as in the record.
    let page = w.path().join("page.html");
    let junit = w.path().join("report.xml");
    let (p, j) = (page.to_str().unwrap(), junit.to_str().unwrap());
    let r = report("fci_promot", &["--html", p, "--junit", j]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(known_good(&w), first);
    let html = std::fs::read_to_string(&page).unwrap();
    // The page names the base the change was composed on (and its ref).
    assert!(
        html.contains(&format!("<tr><th>base commit</th><td><code>{first} (")),
        "{html}"
    );
    let gating = html.split("<h2>Gating</h2>").nth(1).unwrap();
    assert!(gating.contains("badge fail\">FAILED"), "{gating}");
    assert!(gating.contains("not promoted"), "{gating}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let case = xml.split("name=\"gating\"").nth(1).unwrap();
    assert!(case.contains("<failure"), "{xml}");
    // Written, the same promotion goes through.
    let r = report("fci_promote", &["--html", p, "--junit", j]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(known_good(&w), first);
}
