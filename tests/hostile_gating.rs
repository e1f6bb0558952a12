//! Issue 13, review "a" (F10, F8, F5): what `fci report --promote` decides on, and what it
//! writes, is bound to the run. The decision is made from this manifest's own records,
//! checked against those fci kept for the run, never from the results store (where other runs
//! of the same NVR, or manifests reported unchecked, left results); a manifest cut short is
//! refused; and the subject is the one fci recorded, so an edited package, commit or branch
//! excludes or promotes nothing. tests/hostile/{forged-report-then-promote,
//! other-runs-results, truncated-manifest, edited-subject}/PROMISE state the promises.

mod common;
use common::distgit::{DistGit, ALICE};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    &[tool::GIT],
];

/// Gating on the build and the STI tests (Fedora CI's tier0), in fci's default namespace (Fedora CI's).
const TIER0_GATING: &str = "--- !Policy\n\
    id: tier0\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.tier0.functional}\n";

/// Gating on the build alone.
const BUILD_GATING: &str = "--- !Policy\n\
    id: build\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n";

/// `fci report` of `m` (saved as `name`) gated on `gating`, with `extra` flags.
fn report(w: &Ws, m: &Value, name: &str, gating: &str, extra: &[&str]) -> Run {
    let p = w.save(name, m);
    let g = w.path().join(format!("gating-{name}.yaml"));
    std::fs::write(&g, gating).unwrap();
    let mut args = vec![
        "report",
        "-m",
        p.to_str().unwrap(),
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "fci_promote",
    ];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn stage_mut<'a>(m: &'a mut Value, name: &str) -> &'a mut Value {
    m["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .rev()
        .find(|s| s["name"] == name)
        .unwrap()
}

/// `t` (RFC 3339) an hour later.
fn hour_later(t: &Value) -> Value {
    let d = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap()
        + chrono::Duration::hours(1);
    json!(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn state(w: &Ws, which: &str) -> Option<Value> {
    let p = w.ws().join(format!("state/{which}/f41.json"));
    std::fs::read_to_string(p)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
}

/// Exit 2, one line naming the manifest file and each of `words`.
fn refused(r: &Run, file: &str, words: &[&str]) {
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no manifest: {}", r.stdout);
    assert!(r.stderr.contains(file), "{}", r.stderr);
    for w in words {
        assert!(r.stderr.contains(w), "{w:?} missing: {}", r.stderr);
    }
}

/// The built and tested manifest of example `name`; its test exits `code`.
fn tested(w: &Ws, name: &str, code: i32) -> Value {
    let b = w.build(name, &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let t = w.test(&b.manifest(), &[]);
    assert_eq!(t.code, code, "{}", t.stderr);
    t.manifest()
}

#[test]
fn a_forged_report_never_decides_a_promotion() {
    let w = Ws::new();
    // A change whose tests fail.
    let honest = tested(&w, "hello-broken-test", 1);
    // Its copy, the test verdict edited to PASSED an hour later (a new result id, the
    // latest submit time), reported WITHOUT --promote: the run's records say otherwise.
    let mut forged = honest.clone();
    let t = stage_mut(&mut forged, "test");
    t["outcome"] = "PASSED".into();
    for r in t["results"].as_array_mut().unwrap() {
        r["outcome"] = "PASSED".into();
    }
    t["started"] = hour_later(&t["started"]);
    t["finished"] = hour_later(&t["finished"]);
    let r = report(&w, &forged, "forged.json", TIER0_GATING, &[]);
    refused(&r, "forged.json", &["stage `test`", "outcome is PASSED"]);
    assert!(
        !w.ws().join("results/results.sqlite").exists(),
        "forged results recorded"
    );
    // Under a run id this workspace has no records of, it is recorded as it says (and the
    // report says so), but it decides no promotion.
    let mut unknown = forged.clone();
    unknown["run"]["id"] = json!(uuid::Uuid::new_v4().to_string());
    let r = report(&w, &unknown, "unknown.json", TIER0_GATING, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    assert_eq!(s["data"]["unbound"], true, "{s:#}");
    assert!(
        s["notes"]
            .to_string()
            .contains("has no records in this workspace"),
        "{s:#}"
    );
    // The honest manifest's promotion is decided on its own records: tier0 FAILED.
    let r = report(&w, &honest, "honest.json", TIER0_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    assert_eq!(s["data"]["excluded"], true, "{s:#}");
    assert!(
        s["data"]["decision"]["unsatisfied_requirements"]
            .to_string()
            .contains("fedora-ci.koji-build.tier0.functional"),
        "{s:#}"
    );
    assert!(state(&w, "known-good").is_none(), "promoted");
    let excluded = state(&w, "excluded").unwrap();
    assert_eq!(excluded[0]["run"], honest["run"]["id"]);
}

/// A copy of example hello-atomic whose spec says `why` (same NVR: another dist-git change
/// that does not bump Release).
fn change_of_hello(w: &Ws, tag: &str, why: &str) -> PathBuf {
    let dir = w.path().join(format!("hello-{tag}"));
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(example("hello-atomic"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let spec = dir.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec).unwrap();
    let changed = text.replacen("A tiny C program", &format!("{why}. A tiny C program"), 1);
    assert_ne!(text, changed, "the spec's description changed");
    std::fs::write(&spec, changed).unwrap();
    dir
}

fn build_dir(w: &Ws, dir: &Path) -> Value {
    let la = lookaside();
    let b = w.run(&[
        "build",
        dir.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
    ]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    b.manifest()
}

#[test]
fn a_promotion_is_decided_on_its_own_runs_results_only() {
    let w = Ws::new();
    // Change A passes its tests, and is reported (not promoted).
    let a = build_dir(&w, &change_of_hello(&w, "a", "Change A"));
    let t = w.test(&a, &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let r = report(&w, &t.manifest(), "a.json", TIER0_GATING, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Change B, the same NVR, is built but never tested: A's tier0 PASSED is not B's.
    let b = build_dir(&w, &change_of_hello(&w, "b", "Change B"));
    assert_eq!(a["stages"][0]["data"]["nvr"], b["stages"][0]["data"]["nvr"]);
    let r = report(&w, &b, "b.json", TIER0_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    let unsat = s["data"]["decision"]["unsatisfied_requirements"].to_string();
    assert!(
        unsat.contains("test-result-missing") && unsat.contains("tier0.functional"),
        "{s:#}"
    );
    assert!(state(&w, "known-good").is_none(), "B promoted on A's tests");
    // B tested now: its build manifest, cut before the test record fci wrote for the run, is
    // refused, and nothing is written.
    let tb = w.test(&b, &[]);
    assert_eq!(tb.code, 0, "{}", tb.stderr);
    let before = state(&w, "excluded");
    let r = report(&w, &b, "b-cut.json", TIER0_GATING, &["--promote"]);
    refused(
        &r,
        "b-cut.json",
        &["stage `test`", "does not have it", "dropped"],
    );
    assert_eq!(state(&w, "excluded"), before);
    assert!(state(&w, "known-good").is_none());
    // The whole manifest is promoted on its own, passing, results.
    let r = report(
        &w,
        &tb.manifest(),
        "b-tested.json",
        TIER0_GATING,
        &["--promote"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kg = state(&w, "known-good").unwrap();
    assert_eq!(kg["hello-atomic"]["run"], b["run"]["id"]);
    // A report taken in the middle of the pipeline cuts nothing short.
    let r = report(
        &w,
        &tb.manifest(),
        "b-again.json",
        TIER0_GATING,
        &["--promote"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn an_edited_subject_excludes_and_promotes_nothing() {
    let w = Ws::new();
    // Another package, tally, followed by fci watch; its packager pushes a fix.
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = w.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        "dist_git: ./rpms\nbranches: [f41]\npackages: [tally]\n",
    )
    .unwrap();
    let watch = || w.run(&["watch", "--config", cfg.to_str().unwrap(), "--once"]);
    assert_eq!(watch().code, 0);
    let fix = d.push("tally", "f41", ALICE, "tally: a fix");
    // hello-broken-test's failing run, its subject edited to name tally's fix.
    let honest = tested(&w, "hello-broken-test", 1);
    let mut edited = honest.clone();
    edited["subject"]["package"] = "tally".into();
    edited["subject"]["commit"] = fix.as_str().into();
    let r = report(&w, &edited, "edited.json", TIER0_GATING, &["--promote"]);
    refused(&r, "edited.json", &["subject.commit", "stage `test`"]);
    assert!(state(&w, "excluded").is_none(), "tally's fix excluded");
    assert!(!w.ws().join("results/results.sqlite").exists());
    // So fci watch still queues tally's fix.
    let r = watch();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stderr);
    assert!(r.stdout.contains(&fix));
    // Without --promote too, the edited subject is refused.
    let r = report(&w, &edited, "edited-report.json", TIER0_GATING, &[]);
    refused(&r, "edited-report.json", &["subject.commit"]);
    // A passing build whose branch is edited writes no other branch's known-good set.
    let b = w.build("hello-atomic", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let mut f42 = b.manifest();
    f42["subject"]["branch"] = "f42".into();
    let r = report(&w, &f42, "f42.json", BUILD_GATING, &["--promote"]);
    refused(&r, "f42.json", &["subject.branch"]);
    assert!(!w.ws().join("state/known-good/f42.json").exists());
    // Nor do artifacts renamed to another package (their nevra names what a report speaks
    // for): reported as glibc, they would pass glibc's gate and stand in its known-good entry.
    let mut renamed = b.manifest();
    for a in renamed["artifacts"].as_array_mut().unwrap() {
        if a["nevra"].is_object() {
            a["nevra"]["name"] = "glibc".into();
            a["nevra"]["version"] = "2.40".into();
        }
    }
    for extra in [&["--promote"][..], &[]] {
        let r = report(&w, &renamed, "renamed.json", BUILD_GATING, extra);
        refused(&r, "renamed.json", &["stage `build`", "artifacts"]);
    }
    assert!(!w.ws().join("state/known-good/f41.json").exists());
    // The honest manifests are taken as they are.
    let r = report(&w, &honest, "honest.json", TIER0_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        state(&w, "excluded").unwrap()[0]["package"],
        "hello-broken-test"
    );
    let r = report(&w, &b.manifest(), "b.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(state(&w, "known-good").unwrap()["hello-atomic"].is_object());
}

/// Gating on the build and the test stage's own result.
const TEST_STAGE_GATING: &str = "--- !Policy\n\
    id: test-stage\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.test.functional}\n";

#[test]
fn a_case_named_as_its_stage_and_an_unnamed_failed_stage_promote_nothing() {
    let w = Ws::new();
    let b = w.build("hello-atomic", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let tests = fixture("case-named-functional");
    let t = w.test(&b.manifest(), &["--tests-from", tests.to_str().unwrap()]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    let m = t.manifest();
    // Gated on the test stage's result: its case `functional` passed, the stage FAILED.
    let r = report(&w, &m, "named.json", TEST_STAGE_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(state(&w, "known-good").is_none(), "promoted");
    let decision =
        r.manifest()["stages"].as_array().unwrap().last().unwrap()["data"]["decision"].to_string();
    assert!(decision.contains("test-result-failed"), "{decision}");
    // Gated on the build alone: the FAILED test stage still keeps the change out.
    let r = report(&w, &m, "unnamed.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let notes = r.manifest()["stages"].as_array().unwrap().last().unwrap()["notes"].to_string();
    assert!(notes.contains("not promoted: test FAILED"), "{notes}");
    assert!(state(&w, "known-good").is_none(), "promoted");
    assert_eq!(state(&w, "excluded").unwrap()[0]["package"], "hello-atomic");
}

#[test]
fn a_stage_run_again_or_an_edited_subject_between_stages_promotes_nothing() {
    let w = Ws::new();
    let t = tested(&w, "hello-atomic", 0);
    // Rebuilt inside the run (from the tested manifest), here as another package whose own
    // tests would fail: the tests before were of the build before, and decide nothing.
    let tm = w.save("t.json", &t);
    let src = example("hello-broken-test");
    let la = lookaside();
    let rebuilt = w.run(&[
        "build",
        src.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
        "-m",
        tm.to_str().unwrap(),
    ]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let r = report(
        &w,
        &rebuilt.manifest(),
        "rebuilt.json",
        TIER0_GATING,
        &["--promote"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        state(&w, "known-good").is_none(),
        "promoted on the tests of another build"
    );
    // A subject edited between stages is refused by the next stage, before it records it.
    let b = w.build("hello-atomic", &[]);
    let mut edited = b.manifest();
    edited["subject"]["package"] = "coreutils".into();
    let p = w.save("edited-b.json", &edited);
    let r = w.run(&["test", "-m", p.to_str().unwrap()]);
    refused(&r, "edited-b.json", &["subject.package"]);
}

#[test]
fn a_failed_stage_on_another_branch_of_the_run_promotes_nothing() {
    // Composed from the build's manifest, beside the tests that failed on it: the promoted
    // manifest holds no test record, but fci kept the run's FAILED one.
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let b = w.build("hello-broken-test", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let bm = w.save("b.json", &b.manifest());
    let c = w.run(&["compose", "-m", bm.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let t = w.run(&["test", "-m", bm.to_str().unwrap()]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        state(&w, "known-good").is_none(),
        "promoted beside its failed tests"
    );
}

/// A base, and hello-broken-test built (its manifest saved as b.json, whose path is returned)
/// with its tests FAILED on that manifest.
fn built_with_failed_tests(w: &Ws) -> String {
    init_base_with(w, &["--no-kernel"], None, |_| {});
    let b = w.build("hello-broken-test", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let bm = w.save("b.json", &b.manifest());
    let bm = bm.to_str().unwrap().to_string();
    let t = w.run(&["test", "-m", &bm]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    bm
}

#[test]
fn a_failure_is_not_cleared_by_a_later_record_that_did_not_pass() {
    // The tests FAILED; their retry broke at the timeout (ERROR); the change was composed from
    // the build's manifest beside them. Only a later pass clears a failure: it stays out.
    let w = Ws::new();
    let bm = built_with_failed_tests(&w);
    let bm = bm.as_str();
    let retry = w.run(&["test", "-m", bm, "--timeout", "1", "--no-cache"]);
    assert_eq!(retry.code, 3, "{}", retry.stderr);
    let c = w.run(&["compose", "-m", bm]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        state(&w, "known-good").is_none(),
        "promoted past its failed tests"
    );
}

#[test]
fn a_failure_is_not_cleared_by_a_later_pass_of_other_tests() {
    // The package's own tests FAILED; the same build then passed other tests (--tests-from a
    // suite that runs `true`), and that manifest was composed. A failed suite is cleared only
    // by a later pass of the same suite (README "Bound to the run"): it stays out.
    let w = Ws::new();
    let bm = built_with_failed_tests(&w);
    let bm = bm.as_str();
    let other = fixture("tagged");
    let t = w.run(&["test", "-m", bm, "--tests-from", other.to_str().unwrap()]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let tm = w.save("t.json", &t.manifest());
    let c = w.run(&["compose", "-m", tm.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let notes = r.stage(&m, "report")["notes"].to_string();
    assert!(notes.contains("not promoted: test FAILED"), "{notes}");
    assert!(
        state(&w, "known-good").is_none(),
        "promoted on a pass of other tests"
    );
}

#[test]
fn no_stage_adds_a_record_to_a_run_from_an_edited_or_forged_manifest() {
    // Review G: each stage's record becomes one of the run's, and the run's records decide its
    // promotion. A stage run on an edited manifest of a recorded run (a swapped RPM; an
    // edited branch with its last record touched), or on a forged manifest that names another
    // run's id and has no record, is exit 2 and keeps nothing.
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let t = tested(&w, "hello-atomic", 0);
    let records = || {
        let mut n = 0;
        for e in walk(&w.ws().join("state/records")) {
            n += usize::from(e.extension().is_some_and(|x| x == "json"));
        }
        n
    };
    let before = records();
    // Another package's RPM in place of the run's own.
    let other = w.build("hello-broken-test", &[]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let before = before + 1;
    assert_eq!(records(), before);
    let om = other.manifest();
    let rpm_of = |m: &Value| {
        m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "rpm")
            .unwrap()
            .clone()
    };
    let mut swapped = t.clone();
    for a in swapped["artifacts"].as_array_mut().unwrap() {
        if a["type"] == "rpm" {
            *a = rpm_of(&om);
        }
    }
    let p = w.save("swapped.json", &swapped);
    let r = w.run(&["compose", "-m", p.to_str().unwrap()]);
    refused(
        &r,
        "swapped.json",
        &["stage `build`", "are not those it left"],
    );
    // An edited branch, the last record touched so that it is not one fci kept.
    let mut edited = t.clone();
    edited["subject"]["branch"] = "f40".into();
    stage_mut(&mut edited, "test")["notes"] = json!(["touched"]);
    let p = w.save("edited.json", &edited);
    let r = w.run(&["compose", "-m", p.to_str().unwrap()]);
    refused(&r, "edited.json", &["stage `test`"]);
    // A forged manifest: the run's id, no record, another package's checkout as its subject.
    let forged = json!({
        "schema": t["schema"], "run": t["run"], "artifacts": [], "stages": [],
        "subject": {"repo": example("hello-broken-test").to_str().unwrap(), "branch": "f41"},
    });
    let p = w.save("forged.json", &forged);
    let r = w.run(&["build", "-m", p.to_str().unwrap()]);
    refused(&r, "forged.json", &["no stage record", "new run id"]);
    assert_eq!(records(), before, "a record kept from an edited manifest");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn an_edited_run_config_is_refused_by_the_next_stage() {
    // Review I: run.config names the pipeline's fci.yaml (its limits on package code among
    // others): another one named in a recorded run's manifest would loosen them for the rest
    // of the run.
    let w = Ws::new();
    let b = w.build("hello-atomic", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let loose = w.path().join("loose.yaml");
    std::fs::write(&loose, "limits:\n  pids: 200000\n  memory: 200GiB\n").unwrap();
    let mut m = b.manifest();
    m["run"]["config"] = json!({"path": loose.to_str().unwrap(), "sha256": sha256_file(&loose)});
    let p = w.save("loose.json", &m);
    let r = w.run(&["test", "-m", p.to_str().unwrap()]);
    refused(&r, "loose.json", &["run.config"]);
}

#[test]
fn a_run_begun_in_another_workspace_goes_on_unbound_and_is_never_promoted_here() {
    // Review I: its first stage here found records this workspace never kept; the run goes
    // on unbound (every later stage runs, checked as an unbound manifest is), and report
    // says so; --promote refuses it.
    let a = Ws::new();
    let b = a.build("hello-atomic", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let other = Ws::new();
    std::fs::create_dir_all(other.ws()).unwrap();
    for dir in ["objects", "trees"] {
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(a.ws().join(dir))
            .arg(other.ws())
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let t = other.test(&b.manifest(), &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let tm = other.save("t.json", &t.manifest());
    let again = other.run(&["test", "-m", tm.to_str().unwrap(), "--no-cache"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let r = report(&other, &again.manifest(), "t2.json", BUILD_GATING, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "report")["data"]["unbound"], true, "{m:#}");
    let p = report(
        &other,
        &again.manifest(),
        "t3.json",
        BUILD_GATING,
        &["--promote"],
    );
    assert_eq!(p.code, 2, "{}", p.stderr);
}

#[test]
fn a_failed_check_is_not_cleared_by_a_build_without_it() {
    // Review I: the build's %check FAILED; fci's own hint (`--nocheck`) then built it
    // without %check, and the pipeline went on. A failure is cleared only by a later pass of
    // what failed (data.suite: a build that ran %check): it stays out.
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let b = w.build("hello-broken-check", &[]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    let bm = w.save("b.json", &b.manifest());
    let nocheck = w.run(&["build", "-m", bm.to_str().unwrap(), "--nocheck"]);
    assert_eq!(nocheck.code, 0, "{}", nocheck.stderr);
    let nm = w.save("n.json", &nocheck.manifest());
    let c = w.run(&["compose", "-m", nm.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let notes = r.stage(&m, "report")["notes"].to_string();
    assert!(notes.contains("not promoted: build FAILED"), "{notes}");
    assert!(
        state(&w, "known-good").is_none(),
        "promoted past its failed %check"
    );
}

/// The commit holds the first build's packages, whose tests FAILED; a rebuild in the same run
/// (other packages) then passed the same tests. Its pass says nothing of the commit's
/// packages: nothing is promoted, and the failure is named.
#[test]
fn a_pass_on_a_rebuild_does_not_clear_a_failure_of_the_composed_packages() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let dir = fixture("rebuilt-pass");
    let b = w.run(&["build", dir.to_str().unwrap(), "--branch", "f41"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let bm = w.save("b.json", &b.manifest());
    let bm = bm.to_str().unwrap();
    let c = w.run(&["compose", "-m", bm]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let t = w.run(&["test", "-m", bm]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    let tm = w.save("t.json", &t.manifest());
    // The rebuild, from the failed tests' manifest, and its tests: PASSED.
    let b2 = w.run(&[
        "build",
        "-m",
        tm.to_str().unwrap(),
        "--no-cache",
        "-D",
        "state good",
    ]);
    assert_eq!(b2.code, 0, "{}", b2.stderr);
    let b2m = w.save("b2.json", &b2.manifest());
    let t2 = w.run(&["test", "-m", b2m.to_str().unwrap()]);
    assert_eq!(t2.code, 0, "{}", t2.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let rm = r.manifest();
    assert!(
        r.stage(&rm, "report")["notes"]
            .to_string()
            .contains("not promoted: test FAILED"),
        "{rm:#}"
    );
    assert!(
        state(&w, "known-good").is_none(),
        "promoted with its packages' tests FAILED"
    );
}

/// A rebuild that made the same packages (the build's result reused) observed nothing new:
/// the tests that FAILED on those packages still keep them out.
#[test]
fn a_rebuild_of_the_same_packages_does_not_hide_their_failed_tests() {
    let w = Ws::new();
    let bm = built_with_failed_tests(&w);
    let b2 = w.run(&["build", "-m", &bm]);
    assert_eq!(b2.code, 0, "{}", b2.stderr);
    let b2m = w.save("b2.json", &b2.manifest());
    let c = w.run(&["compose", "-m", b2m.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let r = report(&w, &c.manifest(), "c.json", BUILD_GATING, &["--promote"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        state(&w, "known-good").is_none(),
        "promoted with its packages' tests FAILED"
    );
}
