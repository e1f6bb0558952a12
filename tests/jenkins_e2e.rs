//! A CI job's view (issue 15, "Outcomes"): fci run as a Jenkins `sh` step runs it, under
//! `sh -e`, goes red on a red change and green on a green one. A failing %check, a spec that
//! does not parse and a tests/tests.yml that is not YAML each end the job non-zero and leave
//! the manifests (`tee`, `-o`), a JUnit file for Jenkins' `junit` step and a message in the
//! workspace's journal, each naming the cause as the packager knows it (the dist-git path and
//! line, never fci's copy).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tools these tests run (the passing run runs hello-atomic's STI and tmt tests): `Ws::new`
/// fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST];

/// Runs `script` as Jenkins' `sh` step does (`sh -ec`), in a directory of its own under the
/// scratch area, with fci on PATH and the workspace and lookaside from the environment, as a
/// job's `environment {}` block sets them. Returns the run and the directory.
fn job(w: &Ws, name: &str, script: &str) -> (Run, PathBuf) {
    let dir = w.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_fci")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(&dir)
        .env("PATH", path)
        .env("FCI_WORKSPACE", w.ws())
        .env("FCI_LOOKASIDE", lookaside())
        .env_remove("FCI_AMQP_URL")
        .env_remove("FCI_RESULTSDB_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (Run::from(out), dir)
}

fn read_manifest(p: &Path) -> Value {
    let text = std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: no manifest written ({e})", p.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_valid(&v);
    v
}

fn record<'a>(m: &'a Value, stage: &str) -> &'a Value {
    m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["name"] == stage)
        .unwrap_or_else(|| panic!("no `{stage}` record: {m:#}"))
}

/// The messages of the workspace's journal (`messages/journal.jsonl`).
fn journal(w: &Ws) -> Vec<Value> {
    std::fs::read_to_string(w.ws().join("messages/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a red job must leave: exit 1; the build's manifest (`b.json`) and the report's
/// (`r.json`), whose report record FAILED naming `stage` and `cause`; a JUnit file naming the
/// cause in a failure; a message of `stage`'s end in the journal.
fn assert_red(r: &Run, dir: &Path, stage: &str, cause: &str) -> Value {
    assert_eq!(r.code, 1, "the job must go red: {}", r.stderr);
    assert!(!r.stderr.contains("fci: error:"), "{}", r.stderr);
    let built = read_manifest(&dir.join("b.json"));
    assert!(built["stages"][0]["name"] == "build", "{built:#}");
    let m = read_manifest(&dir.join("r.json"));
    let failed = record(&m, stage);
    assert_eq!(failed["outcome"], "FAILED", "{failed:#}");
    assert!(failed.to_string().contains(cause), "{failed:#}");
    let report = record(&m, "report");
    assert_eq!(report["outcome"], "FAILED", "{report:#}");
    let first = report["notes"][0].as_str().unwrap_or_default();
    assert!(
        first.starts_with(&format!("run FAILED: stage `{stage}` is FAILED"))
            && first.contains(cause),
        "the report says which stage failed and why: {report:#}"
    );
    // Never fci's copy of a file: its scratch checkout or the workspace's tree.
    let ws = w_path(dir);
    assert!(!first.contains(&ws), "{first}");
    let xml = std::fs::read_to_string(dir.join("r.xml")).expect("a JUnit file");
    assert!(xml.contains("<failure"), "{xml}");
    let cases = fci::junit::parse_report(xml.as_bytes()).unwrap();
    assert!(
        cases
            .cases
            .iter()
            .any(|c| c.outcome == fci::manifest::Outcome::Failed
                && c.message.as_deref().is_some_and(|msg| msg.contains(cause))),
        "no failed JUnit case names `{cause}`: {xml}"
    );
    m
}

/// The workspace's path as a message would show it (fci's copies live there).
fn w_path(dir: &Path) -> String {
    dir.parent().unwrap().join("ws").display().to_string()
}

/// The journal holds the end of `stage` of run `run`, failed; returns its body.
fn journal_end(w: &Ws, run: &str, stage: &str) -> Value {
    let msgs = journal(w);
    let ended: Vec<&Value> = msgs
        .iter()
        .filter(|m| {
            m["body"]["pipeline"]["id"] == run
                && m["body"]["pipeline"]["stage"]["name"] == stage
                // The stage's own (a test stage also sends one per Fedora test: tier0, plans).
                && m["body"]["test"]["type"] == stage
                && !m["topic"].as_str().unwrap().ends_with(".running")
        })
        .collect();
    assert_eq!(ended.len(), 1, "{msgs:#?}");
    // Its start, if told, is told before its end (never `running` as the last word).
    let of_stage = |m: &&Value| {
        m["body"]["pipeline"]["id"] == run && m["body"]["pipeline"]["stage"]["name"] == stage
    };
    let last_end = msgs
        .iter()
        .rposition(|m| of_stage(&m) && !m["topic"].as_str().unwrap().ends_with(".running"));
    let last_running = msgs
        .iter()
        .rposition(|m| of_stage(&m) && m["topic"].as_str().unwrap().ends_with(".running"));
    assert!(last_running < last_end, "{msgs:#?}");
    assert_eq!(
        ended[0]["body"]["test"]["result"], "failed",
        "{:#}",
        ended[0]
    );
    ended[0]["body"].clone()
}

/// The pipe, with `tee` keeping each manifest, as a Jenkins job archives them.
fn piped(src: &Path) -> String {
    format!(
        "fci build {} --dist .fc41 | tee b.json | fci test | tee t.json | fci report --junit r.xml -o r.json",
        src.display()
    )
}

/// Step by step with files (`-o`, `-m`): each stage's own status does not stop the job
/// (`|| :`); the report's is the job's.
fn stepwise(src: &Path) -> String {
    format!(
        "fci build {} --dist .fc41 -o b.json || :\n\
         fci test -m b.json -o t.json || :\n\
         fci report -m t.json --junit r.xml -o r.json",
        src.display()
    )
}

/// Both ways of writing the job end red with everything said, and the failed stage's end in
/// the journal.
fn red_both_ways(w: &Ws, src: &Path, stage: &str, cause: &str) {
    for (name, script) in [("pipe", piped(src)), ("steps", stepwise(src))] {
        let (r, dir) = job(w, name, &script);
        let m = assert_red(&r, &dir, stage, cause);
        journal_end(w, m["run"]["id"].as_str().unwrap(), stage);
    }
}

/// The maintainer's message of the failed stage (its `complete` message, as Fedora's Jenkins
/// library fills `test.note`) names the cause, as the record and the JUnit file do.
///
/// Needs the stage messages to carry the record's cause (`src/bus/messages.rs`, another part
/// of issue 15): fails until they do.
#[test]
fn the_maintainers_message_names_the_cause() {
    let w = Ws::new();
    for (i, (src, stage, cause)) in [
        (example("hello-broken-check"), "build", "%check"),
        (
            fixture("spec-unclosed-if"),
            "build",
            "spec-unclosed-if.spec:26: spec does not parse",
        ),
        (
            fixture("tests-yml-typo"),
            "test",
            "tests/tests.yml:8: invalid YAML",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (r, dir) = job(&w, &format!("job-{i}"), &piped(&src));
        let m = assert_red(&r, &dir, stage, cause);
        let body = journal_end(&w, m["run"]["id"].as_str().unwrap(), stage);
        assert!(
            body.to_string().contains(cause),
            "the maintainer's message does not name `{cause}`: {body:#}"
        );
        // It reaches the maintainer and names the component, even when the spec does not
        // parse (its package is the spec's name, its maintainer read from %changelog).
        assert!(
            body["notification"]["recipients"][0]
                .as_str()
                .is_some_and(|r| r.contains('@')),
            "{body:#}"
        );
        assert!(body["artifact"]["component"].is_string(), "{body:#}");
    }
}

#[test]
fn a_failing_check_turns_the_job_red() {
    let w = Ws::new();
    // build FAILED (%check), test SKIPPED: the report's exit, the job's, is 1 (it was 0).
    red_both_ways(&w, &example("hello-broken-check"), "build", "%check");
}

#[test]
fn a_spec_that_does_not_parse_turns_the_job_red_naming_its_line() {
    let w = Ws::new();
    // Was exit 2 with no manifest, and the rest of the pipe failed on nothing.
    red_both_ways(
        &w,
        &fixture("spec-unclosed-if"),
        "build",
        "spec-unclosed-if.spec:26: spec does not parse: Unclosed %if",
    );
}

#[test]
fn a_tests_yml_that_is_not_yaml_turns_the_job_red_naming_its_line() {
    let w = Ws::new();
    red_both_ways(
        &w,
        &fixture("tests-yml-typo"),
        "test",
        "tests/tests.yml:8: invalid YAML",
    );
}

#[test]
fn a_passing_change_keeps_the_job_green() {
    let w = Ws::new();
    let src = example("hello-atomic");
    let script = format!(
        "fci build {} --branch f41 | tee b.json | fci test | tee t.json | fci report --junit r.xml -o r.json",
        src.display()
    );
    let (r, dir) = job(&w, "pipe", &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_manifest(&dir.join("r.json"));
    for s in ["build", "test", "report"] {
        assert_eq!(record(&m, s)["outcome"], "PASSED", "{m:#}");
    }
    let xml = std::fs::read_to_string(dir.join("r.xml")).unwrap();
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
}

/// A gating.yaml (the dist-git's, given to `--gating`) that does not parse: the job goes red
/// and the report, its record and its JUnit file name the file and line.
#[test]
fn a_gating_yaml_that_does_not_parse_turns_the_job_red_naming_its_line() {
    let w = Ws::new();
    let dir = w.path().join("gate");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gating.yaml"),
        "--- !Policy\n\
         product_versions:\n  - fedora-*\n\
         decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable\n\
         subject_type: koji_build\n\
         rules:\n  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n",
    )
    .unwrap();
    let script = format!(
        "fci build {} --branch f41 -o b.json\n\
         fci report -m b.json --gating gating.yaml --decision-context bodhi_update_push_stable --junit r.xml -o r.json",
        example("hello-atomic").display()
    );
    let (r, dir) = job(&w, "gate", &script);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = read_manifest(&dir.join("r.json"));
    let report = record(&m, "report");
    assert_eq!(report["outcome"], "FAILED", "{report:#}");
    let cause = "gating.yaml:5: YAML Parser Error";
    assert!(report["notes"].to_string().contains(cause), "{report:#}");
    let xml = std::fs::read_to_string(dir.join("r.xml")).unwrap();
    assert!(xml.contains("<failure") && xml.contains(cause), "{xml}");
}

/// The gate sees a broken tests.yml as the failure it is. A passing run of hello-atomic, then
/// the packager breaks `tests/tests.yml` without bumping Release (the same NVR): the second
/// job goes red and the decision finds `tier0.functional` failed, not satisfied by the first
/// run's PASSED (the broken run used to record no tier0 result at all). And a decision that
/// is satisfied only because no policy requires the failing test leaves the job red too.
#[test]
fn a_broken_tests_yml_fails_its_gate_and_a_satisfied_gate_does_not_hide_a_failure() {
    let w = Ws::new();
    let pkg = w.path().join("pkg");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(example("hello-atomic"))
        .arg(&pkg)
        .status()
        .unwrap();
    assert!(copied.success());
    let gate = "--gating pkg/gating.yaml --decision-context bodhi_update_push_stable";
    let job_in = |name: &str, script: &str| {
        let (r, _) = job(&w, name, &format!("cd .. && {script}"));
        r
    };
    let pipe = |out: &str, gate: &str| {
        format!(
            "fci build pkg --branch f41 | fci test | fci report {gate} --junit {out}.xml -o {out}.json"
        )
    };
    let r = job_in("first", &pipe("first", gate));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tests = pkg.join("tests/tests.yml");
    let text = std::fs::read_to_string(&tests).unwrap();
    std::fs::write(&tests, format!("{text}\n  - [unclosed\n")).unwrap();
    let r = job_in("second", &pipe("second", gate));
    assert_eq!(r.code, 1, "the job must go red: {}", r.stderr);
    let m = read_manifest(&w.path().join("second.json"));
    let decision = &record(&m, "report")["data"]["decision"];
    assert_eq!(decision["policies_satisfied"], false, "{decision:#}");
    let unsatisfied = decision["unsatisfied_requirements"].to_string();
    assert!(
        unsatisfied.contains("fedora-ci.koji-build.tier0.functional")
            && unsatisfied.contains("test-result-failed"),
        "{decision:#}"
    );
    // The tmt plan beside the broken tests.yml is failed with it, never left missing (an
    // earlier PASSED of it would still gate).
    let test = record(&m, "test");
    let foreseen = test["data"]["fedora_tests"].to_string();
    assert!(
        foreseen.contains("tier0") && foreseen.contains("/plans/"),
        "{test:#}"
    );
    // No policy requires any test: satisfied, yet the test stage FAILED, so the job is red.
    std::fs::write(
        w.path().join("norules.yaml"),
        "--- !Policy\nproduct_versions: [fedora-*]\ndecision_context: bodhi_update_push_stable\nrules: []\n",
    )
    .unwrap();
    let r = job_in(
        "third",
        &pipe(
            "third",
            "--gating norules.yaml --decision-context bodhi_update_push_stable",
        ),
    );
    assert_eq!(r.code, 1, "a satisfied gate hid a failure: {}", r.stderr);
    let m = read_manifest(&w.path().join("third.json"));
    let report = record(&m, "report");
    assert_eq!(report["outcome"], "FAILED", "{report:#}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("run FAILED: stage `test` is FAILED"),
        "{report:#}"
    );
}
