//! Issue 15, item 5: fci against the real services' wire formats, field for field. Decisions
//! from ResultsDB's and WaiverDB's own answers (newest first, obsolete waivers included) and
//! with Greenwave's subject-type aliases; waivers posted to WaiverDB (a stand-in speaking its
//! API, `common::waiverdb`) through a spool, delivered exactly once, and read back for the
//! decision; Greenwave's decision message, one per decision context with its `previous`, in
//! the journal and at a real RabbitMQ; a waiver for a test case nothing knows refused.

mod common;
use common::waiverdb::StandIn;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The tools these tests run (the pika consumer is Python's): `Ws::new` fails naming any
/// that is missing.
const NEEDS: Needs = &[&[tool::PYTHON3]];

const NVR: &str = "hello-atomic-1.0-1.fc41";
const TIER0: &str = "fedora-ci.koji-build.tier0.functional";
const PLAN: &str = "fedora-ci.koji-build./plans/gating.functional";

const GATING: &str = "--- !Policy\n\
    id: fedora-ci\n\
    product_versions: [fedora-*]\n\
    decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable]\n\
    subject_type: koji_build\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n\
    --- !Policy\n\
    id: critpath\n\
    product_versions: [fedora-*]\n\
    decision_context: bodhi_update_push_stable_critpath\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/gating.functional}\n";

fn write(w: &Ws, name: &str, text: &str) -> PathBuf {
    let p = w.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const SUBJECT: [&str; 4] = [
    "--subject-identifier",
    NVR,
    "--product-version",
    "fedora-41",
];

/// `fci gating decide` on the gating.yaml above for bodhi_update_push_stable.
fn decide(w: &Ws, results: &Value, waivers: Option<&Value>, extra: &[&str]) -> (i32, Value, Run) {
    let g = write(w, "gating.yaml", GATING);
    let r = write(w, "results.json", &results.to_string());
    let mut args: Vec<String> = [
        "gating",
        "decide",
        "--gating",
        g.to_str().unwrap(),
        "--results",
        r.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(wv) = waivers {
        args.push("--waivers".into());
        args.push(
            write(w, "waivers.json", &wv.to_string())
                .display()
                .to_string(),
        );
    }
    args.extend(SUBJECT.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = w.run(&args);
    let d = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run.code, d, run)
}

fn result(id: u64, outcome: &str, at: &str, ty: &str) -> Value {
    json!({"id": id, "outcome": outcome, "submit_time": at, "testcase": {"name": TIER0},
           "data": {"item": [NVR], "type": [ty]}, "note": null, "ref_url": null, "groups": []})
}

#[test]
fn resultsdbs_and_waiverdbs_own_answers_decide_as_greenwave_whatever_their_order() {
    let w = Ws::new();
    // ResultsDB's `GET /results` answer: newest first. The newer result failed.
    let answer = json!({"prev": null, "next": null, "data": [
        result(8, "FAILED", "2026-12-06T11:00:00.000000", "koji_build"),
        result(5, "PASSED", "2026-12-06T10:00:00.000000", "koji_build"),
    ]});
    let (code, d, run) = decide(&w, &answer, None, &[]);
    assert_eq!(code, 1, "{}", run.stderr);
    assert_eq!(d["summary"], "Of 1 required test, 1 test failed");
    let mut reversed = answer.clone();
    reversed["data"].as_array_mut().unwrap().reverse();
    let (code, d2, _) = decide(&w, &reversed, None, &[]);
    assert_eq!(
        (code, &d2),
        (1, &d),
        "reversing the results changed the decision"
    );
    // WaiverDB's list, newest first, with the obsolete waiver it revoked.
    let waiver = |id: u64, waived: bool, at: &str| {
        json!({"id": id, "subject_type": "koji_build", "subject_identifier": NVR,
               "subject": {"type": "koji_build", "item": NVR}, "testcase": TIER0,
               "scenario": null, "waived": waived, "product_version": "fedora-41",
               "comment": "flaky", "username": "packager", "proxied_by": null, "timestamp": at})
    };
    let listed = json!({"data": [waiver(2, false, "2026-12-06T12:30:00.000000"),
        waiver(1, true, "2026-12-06T12:00:00.000000")], "first": null, "last": null,
        "next": null, "prev": null});
    let (code, d, run) = decide(&w, &answer, Some(&listed), &[]);
    assert_eq!(
        code, 1,
        "the revoked waiver still waived: {d:#} {}",
        run.stderr
    );
    let mut rw = listed.clone();
    rw["data"].as_array_mut().unwrap().reverse();
    let (code, d2, _) = decide(&w, &reversed, Some(&rw), &[]);
    assert_eq!(
        (code, &d2),
        (1, &d),
        "reversing the waivers changed the decision"
    );
    // A brew-build result is a koji_build subject's (Greenwave's alias).
    let brew = json!([result(
        3,
        "PASSED",
        "2026-12-06T10:00:00.000000",
        "brew-build"
    )]);
    let (code, d, run) = decide(&w, &brew, None, &[]);
    assert_eq!(code, 0, "{d:#} {}", run.stderr);
    let (code, d, _) = decide(&w, &brew, None, &["--subject-type", "brew-build"]);
    assert_eq!(code, 0, "{d:#}");
    assert_eq!(d["satisfied_requirements"][0]["subject_type"], "koji_build");
}

fn waive(w: &Ws, testcase: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = w.cmd();
    c.args(["gating", "waive", testcase, "--comment", "known flake"])
        .args(SUBJECT)
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

#[test]
fn a_waiver_for_a_test_case_nothing_knows_is_refused_naming_the_nearest() {
    let w = Ws::new();
    let g = write(&w, "gating.yaml", GATING);
    let g = g.to_str().unwrap();
    let typo = "fedora-ci.koji-build.tier0.functionl";
    let r = waive(&w, typo, &["--gating", g], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("did you mean {TIER0}?")),
        "{}",
        r.stderr
    );
    assert!(!w.ws().join("waivers/waivers.json").exists());
    // Nothing known at all (no --gating, no results): refused too.
    let r = waive(&w, TIER0, &[], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to waive"), "{}", r.stderr);
    // A test case the gating.yaml requires is waived even with no result yet (Greenwave
    // waives a missing result); --force stores one nothing knows.
    assert_eq!(waive(&w, PLAN, &["--gating", g], &[]).code, 0);
    let r = waive(&w, typo, &["--force"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.ws().join("waivers/waivers.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // A product version no policy names is a typo too (it would waive nothing).
    let r = Run::from(
        w.cmd()
            .args(["gating", "waive", TIER0, "--comment", "known flake"])
            .args([
                "--subject-identifier",
                NVR,
                "--product-version",
                "fedroa-41",
            ])
            .args(["--gating", g])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("product version fedroa-41 is named by no policy"),
        "{}",
        r.stderr
    );
}

#[test]
fn waivers_reach_waiverdb_exactly_once_through_the_spool_and_decide_from_there() {
    let w = Ws::new();
    let db = StandIn::start();
    let url = db.url();
    let g = write(&w, "gating.yaml", GATING);
    let g = g.to_str().unwrap();
    let env = [
        ("FCI_WAIVERDB_URL", url.as_str()),
        ("FCI_WAIVERDB_TOKEN", "packager:s3cr3t-pw"),
    ];
    // Delivered: WaiverDB's own body, with the authenticated user.
    let r = waive(&w, TIER0, &["--gating", g], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("s3cr3t"));
    let stored = db.waivers();
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["testcase"], TIER0);
    assert_eq!(stored[0]["username"], "packager");
    assert_eq!(stored[0]["waived"], true);
    assert_eq!(stored[0]["product_version"], "fedora-41");
    assert_eq!(stored[0]["comment"], "known flake");
    assert_eq!(
        db.state.lock().unwrap().authorization[0].as_deref(),
        Some("Basic cGFja2FnZXI6czNjcjN0LXB3")
    );
    // The decision reads it from WaiverDB (not from a file): the failure is waived.
    let failed = json!([result(
        8,
        "FAILED",
        "2026-12-06T11:00:00.000000",
        "koji_build"
    )]);
    let mut c = w.cmd();
    let rf = write(&w, "r.json", &failed.to_string());
    c.args([
        "gating",
        "decide",
        "--gating",
        g,
        "--results",
        rf.to_str().unwrap(),
    ])
    .args(["--decision-context", "bodhi_update_push_stable"])
    .args(SUBJECT)
    .envs(env);
    let decide_now = |c: &mut std::process::Command| Run::from(c.output().unwrap());
    let r = decide_now(&mut c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        d["satisfied_requirements"][0]["type"],
        "test-result-failed-waived"
    );
    assert_eq!(d["satisfied_requirements"][0]["waiver_id"], 1);

    // WaiverDB down: the revocation is spooled (exit 0, said on stderr), not lost.
    db.set_down(true);
    let r = waive(&w, TIER0, &["--gating", g, "--revoke"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("WaiverDB not reached"), "{}", r.stderr);
    assert!(r.stderr.contains("1 waivers spooled"), "{}", r.stderr);
    // Back, but its answer to the next POST is lost (stored, then 503): still spooled.
    db.set_down(false);
    db.state.lock().unwrap().store_then_fail = 1;
    let r = waive(&w, PLAN, &["--gating", g], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("2 waivers spooled"), "{}", r.stderr);
    assert_eq!(db.waivers().len(), 2);
    // The next waive delivers the rest in order, the stored one not again: each exactly once.
    db.state.lock().unwrap().page_cap = Some(1);
    let r = waive(&w, PLAN, &["--gating", g, "--revoke"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stored = db.waivers();
    let seen: Vec<(String, bool)> = stored
        .iter()
        .map(|w| {
            (
                w["testcase"].as_str().unwrap().to_string(),
                w["waived"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (TIER0.to_string(), true),
            (TIER0.to_string(), false),
            (PLAN.to_string(), true),
            (PLAN.to_string(), false),
        ]
    );
    assert_eq!(
        db.state.lock().unwrap().posts,
        4,
        "a waiver was posted twice"
    );
    // The revocation, read back from WaiverDB page by page: the failure counts again.
    let r = decide_now(&mut c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // WaiverDB refuses (no credentials): exit 3, and the workspace does not keep it.
    let before = std::fs::read_to_string(w.ws().join("waivers/waivers.json")).unwrap();
    let r = waive(
        &w,
        TIER0,
        &["--gating", g],
        &[("FCI_WAIVERDB_URL", url.as_str())],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(w.ws().join("waivers/waivers.json")).unwrap(),
        before
    );
}

/// A run's manifest as fci writes it, for a report (unbound: recorded as it says).
fn built_manifest() -> Value {
    json!({"schema": "fci/manifest/v1",
        "run": {"id": "aaaaaaaa-0000-4000-8000-000000000015", "created": "2026-12-06T10:00:00Z",
                "fci_version": "0"},
        "subject": {"package": "hello-atomic", "branch": "f41"},
        "stages": [{"name": "build", "outcome": "PASSED", "started": "2026-12-06T10:00:00Z",
            "finished": "2026-12-06T10:01:00Z", "duration_s": 60.0, "input_digest": "",
            "data": {"nvr": NVR}, "results": []}]})
}

/// Two gating points: the build alone (satisfied), and a plan this run has no result for.
const TWO_CONTEXTS: &str = "--- !Policy\n\
    id: build\n\
    decision_contexts: [bodhi_update_push_testing]\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    --- !Policy\n\
    id: plans\n\
    decision_contexts: [bodhi_update_push_stable]\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/gating.functional}\n";

fn decision_messages(w: &Ws) -> Vec<Value> {
    std::fs::read_to_string(w.ws().join("messages/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["topic"] == "org.fedoraproject.prod.greenwave.decision.update")
        .map(|m| m["body"].clone())
        .collect()
}

#[test]
fn greenwaves_decision_message_is_one_per_context_with_its_previous_at_the_broker_too() {
    use common::rabbitmq::{declare, drain, Broker};
    let w = Ws::new();
    let broker = Broker::start(&w.path().join("rabbitmq"));
    declare(&broker, "fci-greenwave");
    let m = w.save("m.json", &built_manifest());
    let g = write(&w, "gating.yaml", TWO_CONTEXTS);
    let url = broker.url();
    let report = || {
        w.run(&[
            "report",
            "-m",
            m.to_str().unwrap(),
            "--namespace",
            "fedora-ci.koji-build",
            "--gating",
            g.to_str().unwrap(),
            "--decision-context",
            "bodhi_update_push_testing",
            "--decision-context",
            "bodhi_update_push_stable",
            "--amqp-url",
            &url,
        ])
    };
    let r = report();
    assert_eq!(r.code, 1, "{}", r.stderr);
    // One message per decision context, each that context's decision, as Greenwave sends it.
    let got = decision_messages(&w);
    assert_eq!(got.len(), 2, "{got:#?}");
    let (testing, stable) = (&got[0], &got[1]);
    assert_eq!(testing["decision_context"], "bodhi_update_push_testing");
    assert_eq!(testing["policies_satisfied"], true);
    assert_eq!(testing["applicable_policies"], json!(["build"]));
    assert_eq!(
        testing["summary"],
        "All required tests (1 total) have passed or been waived"
    );
    assert_eq!(
        testing["satisfied_requirements"][0]["testcase"],
        "fedora-ci.koji-build.build.validation"
    );
    assert_eq!(testing["unsatisfied_requirements"], json!([]));
    assert_eq!(stable["decision_context"], "bodhi_update_push_stable");
    assert_eq!(stable["policies_satisfied"], false);
    assert_eq!(stable["summary"], "Of 1 required test, 1 result missing");
    assert_eq!(stable["unsatisfied_requirements"][0]["testcase"], PLAN);
    for b in &got {
        assert_eq!(b["subject_type"], "koji_build");
        assert_eq!(b["subject_identifier"], NVR);
        assert_eq!(b["product_version"], "fedora-41");
        assert_eq!(b["subject"], json!([{"type": "koji_build", "item": NVR}]));
        assert_eq!(
            b["previous"],
            Value::Null,
            "the first decision has no previous"
        );
    }
    // At the broker: the same two bodies, under Greenwave's topic.
    let at_broker: Vec<Value> = drain(&broker, "fci-greenwave")
        .into_iter()
        .filter(|m| m["routing_key"] == "org.fedoraproject.prod.greenwave.decision.update")
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(at_broker, got);

    // Waived: only the stable context's decision changed; its message says what it was.
    let r = waive(&w, PLAN, &["--gating", g.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = report();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = decision_messages(&w);
    assert_eq!(got.len(), 3, "{got:#?}");
    let flip = &got[2];
    assert_eq!(flip["decision_context"], "bodhi_update_push_stable");
    assert_eq!(flip["policies_satisfied"], true);
    assert_eq!(flip["previous"]["policies_satisfied"], false);
    assert_eq!(flip["previous"]["summary"], stable["summary"]);
    assert_eq!(
        flip["previous"]["unsatisfied_requirements"],
        stable["unsatisfied_requirements"]
    );
    let at_broker: Vec<Value> = drain(&broker, "fci-greenwave")
        .into_iter()
        .map(|m| m["body"].clone())
        .filter(|b| b.get("decision_context").is_some())
        .collect();
    assert_eq!(at_broker, vec![flip.clone()]);
    // Nothing changed: nothing is published (no flip-flop noise).
    let r = report();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(decision_messages(&w).len(), 3);
    // Revoked: it flips back, and says so.
    let r = waive(&w, PLAN, &["--revoke"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report().code, 1);
    let got = decision_messages(&w);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(got[3]["policies_satisfied"], false);
    assert_eq!(got[3]["previous"]["policies_satisfied"], true);
    assert_eq!(got[3]["summary"], stable["summary"]);
}

#[test]
fn a_report_decides_on_waiverdbs_waivers_and_delivers_the_spooled_ones() {
    let w = Ws::new();
    let db = StandIn::start();
    let url = db.url();
    let m = w.save("m.json", &built_manifest());
    let g = write(&w, "gating.yaml", TWO_CONTEXTS);
    let env = [
        ("FCI_WAIVERDB_URL", url.as_str()),
        ("FCI_WAIVERDB_TOKEN", "packager:pw-for-waivers"),
    ];
    let report = || {
        let mut c = w.cmd();
        c.args(["report", "-m", m.to_str().unwrap()])
            .args(["--namespace", "fedora-ci.koji-build"])
            .args(["--gating", g.to_str().unwrap()])
            .args(["--decision-context", "bodhi_update_push_stable"])
            .envs(env);
        Run::from(c.output().unwrap())
    };
    assert_eq!(report().code, 1);
    // A waiver someone made in WaiverDB itself (not through this workspace) decides the report.
    db.state.lock().unwrap().waivers.push(json!({
        "id": 1, "subject_type": "koji_build", "subject_identifier": NVR,
        "subject": {"type": "koji_build", "item": NVR}, "testcase": PLAN, "scenario": null,
        "waived": true, "product_version": "fedora-41", "comment": "infra outage",
        "username": "someone", "proxied_by": null, "timestamp": "2026-12-06T12:00:00.000000"}));
    let r = report();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rm = r.manifest();
    let sat = r.stage(&rm, "report")["data"]["decision"]["satisfied_requirements"].to_string();
    assert!(sat.contains("test-result-missing-waived"), "{sat}");
    // A revocation made while WaiverDB was down is spooled; the next report delivers it first
    // and decides with it (this user's revoke does not obsolete someone else's waiver, as in
    // WaiverDB: so they revoke theirs too).
    db.set_down(true);
    let r = waive(
        &w,
        PLAN,
        &[
            "--gating",
            g.to_str().unwrap(),
            "--revoke",
            "--username",
            "someone",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    db.set_down(false);
    let r = report();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let stored = db.waivers();
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert_eq!(stored[1]["waived"], false);
    assert_eq!(stored[1]["username"], "someone");
    assert_eq!(stored[1]["proxied_by"], "packager");
    assert!(!r.stdout.contains("pw-for-waivers") && !r.stderr.contains("pw-for-waivers"));
    // A report without --gating delivers what is spooled too.
    db.set_down(true);
    let r = waive(&w, PLAN, &["--gating", g.to_str().unwrap()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    db.set_down(false);
    let mut c = w.cmd();
    c.args(["report", "-m", m.to_str().unwrap()]).envs(env);
    let r = Run::from(c.output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(db.waivers().len(), 3);
    assert_eq!(db.waivers()[2]["username"], "packager");
}

#[test]
fn a_test_case_known_only_to_resultsdb_can_be_waived_and_its_typo_is_refused() {
    use common::resultsdb::StandIn as ResultsDb;
    let w = Ws::new();
    let rdb = ResultsDb::start(&["PASSED", "FAILED", "INFO", "NEEDS_INSPECTION"]);
    {
        let mut st = rdb.state.lock().unwrap();
        st.results.push(json!({"id": 1, "outcome": "FAILED", "testcase": {"name": "dist.rpmdeplint"},
            "data": {"item": [NVR], "type": ["brew-build"]}, "submit_time": "2026-12-06T10:00:00.000000"}));
    }
    let env = [("FCI_RESULTSDB_URL", rdb.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = waive(&w, "dist.rpmdeplint", &[], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = waive(&w, "dist.rpmdeplnt", &[], &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("did you mean dist.rpmdeplint?"),
        "{}",
        r.stderr
    );
}

/// A waiver spooled while WaiverDB was down is not posted over a newer one given elsewhere
/// meanwhile (a revocation by another maintainer): posting the older would overrule it.
#[test]
fn a_spooled_waiver_never_overrules_a_newer_one_given_elsewhere() {
    let w = Ws::new();
    let db = StandIn::start();
    let url = db.url();
    let g = write(&w, "gating.yaml", GATING);
    let g = g.to_str().unwrap();
    let env = [
        ("FCI_WAIVERDB_URL", url.as_str()),
        ("FCI_WAIVERDB_TOKEN", "packager:s3cr3t-pw"),
    ];
    db.set_down(true);
    let r = waive(&w, TIER0, &["--gating", g], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("1 waivers spooled"), "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Meanwhile, elsewhere: the same user's revocation reaches WaiverDB.
    db.state.lock().unwrap().waivers.push(json!({
        "id": 1, "subject_type": "koji_build", "subject_identifier": NVR,
        "subject": {"type": "koji_build", "item": NVR}, "testcase": TIER0, "scenario": null,
        "waived": false, "product_version": "fedora-41", "comment": "not flaky after all",
        "username": "packager", "proxied_by": null,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    }));
    db.set_down(false);
    let r = waive(&w, PLAN, &["--gating", g], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 spooled waivers not posted"),
        "{}",
        r.stderr
    );
    let tier0: Vec<Value> = db
        .waivers()
        .into_iter()
        .filter(|w| w["testcase"] == TIER0)
        .collect();
    assert_eq!(tier0.len(), 1, "the older waiver was posted: {tier0:#?}");
    assert_eq!(tier0[0]["waived"], false);
}
