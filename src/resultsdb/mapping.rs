//! A manifest's stage records and test cases as ResultsDB v2.0 results (`POST /results`
//! bodies), named the way Fedora CI names them so that an existing gating.yaml is satisfied:
//!
//! - one result per stage record: `<ns>.<stage>.<category>` (build, compose and image are
//!   `validation`, test and smoke `functional`, integrate `integration`);
//! - for `test` and `integrate`, Fedora CI's own names: the STI cases together as
//!   `<ns>.tier0.<category>`, each tmt plan as `<ns>.<plan>.<category>` (so with
//!   `--namespace fedora-ci.koji-build`: `fedora-ci.koji-build.tier0.functional`,
//!   `fedora-ci.koji-build./plans/gating.functional`);
//! - one result per test case: `<ns>.<stage>.<case>`.
//!
//! The namespace is the run's (`run.ci.namespace`, default `fedora-ci.koji-build`). Each
//! result's `ref_url` is the job that made its record (`StageRecord::run_url`), else its log's
//! link; `data.log` is the log's URL below the run's artifacts URL when it has one, else its
//! path in the workspace.
//!
//! A SKIPPED record or case is no result (nothing ran: gating sees it as missing). ERROR stays
//! ERROR where the server has it, else the server's crash outcome: never FAILED.

use crate::manifest::{ArtifactKind, Manifest, Outcome, StageName, StageRecord, TestResult};
use serde_json::{json, Map, Value};

/// What the results are about and how they are named.
pub struct Naming {
    pub namespace: String,
    /// The outcome an infrastructure error is reported as (`ERROR`, or `CRASHED` on servers
    /// that have no ERROR).
    pub error_outcome: String,
    /// The URL the workspace's files are published under: logs are linked below it.
    pub artifacts_url: Option<String>,
    /// The architecture the stages ran on.
    pub architecture: String,
}

impl Naming {
    /// The run's own naming (`run.ci`), with `error_outcome` for an ERROR.
    pub fn of(m: &Manifest, error_outcome: &str) -> Naming {
        let ci = crate::bus::identity::of(m);
        Naming {
            namespace: ci.namespace,
            error_outcome: error_outcome.to_string(),
            artifacts_url: ci.artifacts_url,
            architecture: ci.architecture,
        }
    }
}

/// Fedora CI's test category of a stage's results and messages.
pub fn category(stage: &str) -> &'static str {
    match stage {
        "test" | "smoke" => "functional",
        "integrate" => "integration",
        _ => "validation",
    }
}

fn outcome(o: Outcome, naming: &Naming) -> Option<String> {
    Some(match o {
        Outcome::Passed => "PASSED".into(),
        Outcome::Failed => "FAILED".into(),
        Outcome::Info => "INFO".into(),
        Outcome::NeedsInspection => "NEEDS_INSPECTION".into(),
        Outcome::Error => naming.error_outcome.clone(),
        Outcome::Skipped => return None,
    })
}

/// A stable id for one result of one run, so that reporting twice never records twice. A
/// test case's group (its tmt plan or STI playbook) is part of it: one test in two plans is
/// two results.
pub fn result_id(run: &str, stage: &StageRecord, testcase: &str, group: Option<&str>) -> String {
    let mut text = format!("{run}\n{}\n{}\n{testcase}", stage.name, stage.started);
    if let Some(g) = group {
        text.push_str(&format!("\n{g}"));
    }
    crate::digest::sha256_bytes(text.as_bytes())[..32].to_string()
}

/// A test case's tmt plan or STI playbook.
fn group_of(c: &TestResult) -> Option<&str> {
    c.extra
        .get("plan")
        .or_else(|| c.extra.get("playbook"))
        .and_then(Value::as_str)
}

/// Every result of the manifest, oldest stage first.
pub fn results(m: &Manifest, naming: &Naming) -> Vec<Value> {
    let item = m.subject_nvr().or_else(|| m.subject.package.clone());
    let ns = &naming.namespace;
    let mut out = Vec::new();
    // A report's own record is about the results, not one of them.
    for s in m.stages.iter().filter(|s| !s.is(StageName::Report)) {
        let cat = category(&s.name);
        let mut push = |testcase: String,
                        group: Option<&str>,
                        o: Outcome,
                        note: Option<&str>,
                        extra: Map<String, Value>| {
            let Some(outcome) = outcome(o, naming) else {
                return;
            };
            let mut data = Map::new();
            if let Some(i) = &item {
                data.insert("item".into(), json!(i));
                data.insert("type".into(), json!("koji_build"));
            }
            data.insert("system_architecture".into(), json!(naming.architecture));
            data.insert("fci_run".into(), json!(m.run.id));
            data.insert("fci_stage".into(), json!(s.name));
            data.insert(
                "fci_result_id".into(),
                json!(result_id(&m.run.id, s, &testcase, group)),
            );
            let log = s.log.as_deref().map(|l| match &naming.artifacts_url {
                Some(base) => crate::bus::identity::link(base, l),
                None => l.to_string(),
            });
            if let Some(log) = &log {
                data.insert("log".into(), json!(log));
            }
            // The stage's signed statements (crate::provenance): what `fci verify` checks.
            let provenance: Vec<String> = m
                .artifacts_of(ArtifactKind::Attestation)
                .filter(|a| a.stage == s.name)
                .map(|a| match &naming.artifacts_url {
                    Some(base) => crate::bus::identity::link(base, &a.path),
                    None => a.path.clone(),
                })
                .collect();
            if !provenance.is_empty() {
                data.insert("provenance".into(), json!(provenance));
            }
            data.extend(extra);
            let mut r = Map::new();
            r.insert("testcase".into(), json!({"name": testcase}));
            r.insert("outcome".into(), json!(outcome));
            // Where a reader goes from the result: the job that made it, else its log's link.
            let linked = log.filter(|_| naming.artifacts_url.is_some());
            if let Some(u) = s.run_url.clone().or(linked) {
                r.insert("ref_url".into(), json!(u));
            }
            if let Some(n) = note {
                r.insert("note".into(), json!(crate::redact::redact(n)));
            }
            r.insert("submit_time".into(), json!(submit_time(&s.finished)));
            r.insert("data".into(), Value::Object(data));
            out.push(Value::Object(r));
        };
        let note = s.notes.first().map(String::as_str);
        push(
            format!("{ns}.{}.{cat}", s.name),
            None,
            s.outcome,
            note,
            Map::new(),
        );
        if s.is(StageName::Test) || s.is(StageName::Integrate) {
            for (group, o, note) in fedora_groups(s) {
                push(
                    format!("{ns}.{group}.{cat}"),
                    None,
                    o,
                    note.as_deref(),
                    Map::new(),
                );
            }
        }
        for c in &s.results {
            let mut extra = Map::new();
            if let Some(sc) = &c.scenario {
                extra.insert("scenario".into(), json!(sc));
            }
            if let Some(r) = &c.runner {
                extra.insert("fci_runner".into(), json!(r));
            }
            // A case named as the stage's own result (an STI test called `functional`) would
            // take its name, and the later result decides: the case gets a name of its own.
            let name = if c.testcase == cat {
                format!("{ns}.{}.case.{}", s.name, c.testcase)
            } else {
                format!("{ns}.{}.{}", s.name, c.testcase)
            };
            push(name, group_of(c), c.outcome, c.note.as_deref(), extra);
        }
    }
    out
}

/// Fedora CI's aggregates: `tier0` for the STI cases, each tmt plan by its name; each with
/// the cases the stage counted without listing them (`data.results_unlisted`), and a note
/// when some of those failed.
pub(crate) fn fedora_groups(s: &StageRecord) -> Vec<(String, Outcome, Option<String>)> {
    let name_of = |runner: Option<&str>, plan: Option<&str>| match (runner, plan) {
        (Some("tmt"), Some(plan)) => Some(plan.to_string()),
        (Some("sti"), _) => Some("tier0".to_string()),
        _ => None,
    };
    // (name, outcomes, unlisted failed, unlisted errored)
    let mut groups: Vec<(String, Vec<Outcome>, u64, u64)> = Vec::new();
    let mut add = |name: String, o: Option<Outcome>, failed: u64, errors: u64| {
        let i = match groups.iter().position(|(g, ..)| *g == name) {
            Some(i) => i,
            None => {
                groups.push((name, Vec::new(), 0, 0));
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.1.extend(o);
        g.2 += failed;
        g.3 += errors;
    };
    // A result of tmt's whole run (it broke outside the tests, timed out, went past a limit)
    // names no plan: it is every plan's, else gating one plan would pass it.
    let mut tmt_whole: Vec<Outcome> = Vec::new();
    for c in &s.results {
        let plan = c.extra.get("plan").and_then(Value::as_str);
        if let Some(name) = name_of(c.runner.as_deref(), plan) {
            add(name, Some(c.outcome), 0, 0);
        } else if c.runner.as_deref() == Some("tmt") {
            tmt_whole.push(c.outcome);
        }
    }
    let unlisted = s.data.get("results_unlisted");
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let per_group = unlisted
        .and_then(|u| u.get("groups"))
        .and_then(Value::as_array);
    for g in per_group.into_iter().flatten() {
        let runner = g.get("runner").and_then(Value::as_str);
        let Some(name) = name_of(runner, g.get("plan").and_then(Value::as_str)) else {
            continue;
        };
        let (failed, errors) = (n(g, "failed"), n(g, "errors"));
        let o = if failed > 0 {
            Some(Outcome::Failed)
        } else if errors > 0 {
            Some(Outcome::Error)
        } else if n(g, "passed") > 0 {
            Some(Outcome::Passed)
        } else {
            None
        };
        add(name, o, failed, errors);
    }
    let tmt_plans = |g: &str| {
        s.results.iter().any(|c| {
            c.runner.as_deref() == Some("tmt")
                && c.extra.get("plan").and_then(Value::as_str) == Some(g)
        }) || per_group.into_iter().flatten().any(|u| {
            u.get("runner").and_then(Value::as_str) == Some("tmt")
                && u.get("plan").and_then(Value::as_str) == Some(g)
        })
    };
    for (g, v, ..) in groups.iter_mut() {
        if !tmt_whole.is_empty() && tmt_plans(g) {
            v.extend(tmt_whole.iter().copied());
        }
    }
    // A record that counts failures without saying whose: no group of it passes.
    let whose_unknown =
        per_group.is_none() && unlisted.is_some_and(|u| n(u, "failed") + n(u, "errors") > 0);
    let got: Vec<(String, Outcome, Option<String>)> = groups
        .into_iter()
        .filter_map(|(g, mut v, mut failed, mut errors)| {
            if whose_unknown {
                let u = unlisted.expect("counted");
                (failed, errors) = (n(u, "failed"), n(u, "errors"));
                v.extend((failed > 0).then_some(Outcome::Failed));
                v.extend((errors > 0).then_some(Outcome::Error));
            }
            let counted: Vec<Outcome> = v.into_iter().filter(|o| *o != Outcome::Skipped).collect();
            let note = (failed + errors > 0).then(|| {
                format!(
                    "{failed} failed and {errors} errored cases{} are counted but not listed",
                    if whose_unknown { " of the stage" } else { "" }
                )
            });
            Outcome::aggregate(counted).map(|o| (g, o, note))
        })
        .collect();
    let reported: Vec<String> = got.iter().map(|(g, ..)| g.clone()).collect();
    let mut all = got;
    all.extend(unreported(s, &reported));
    all
}

/// The Fedora tests a record that did not pass foresaw (`data.fedora_tests`, or the tests.yml
/// or plan its package mistake is in) but has no result of: each is the stage's failure, with
/// its cause, never missing (Bodhi would show "waiting") nor left to an earlier run's PASSED.
fn unreported(s: &StageRecord, reported: &[String]) -> Vec<(String, Outcome, Option<String>)> {
    if !matches!(
        s.outcome,
        Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
    ) {
        return Vec::new();
    }
    let mut names: Vec<String> = s
        .data
        .get("fedora_tests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let mistake = s
        .data
        .get("mistake")
        .and_then(|m| m.get("at"))
        .and_then(Value::as_str);
    if let Some(file) = mistake.map(|at| at.split(':').next().unwrap_or(at)) {
        names.extend(crate::suites::plan_of_file(file));
    }
    // The stage's cause, else the first failure it recorded, else what is known.
    let cause = s
        .notes
        .last()
        .cloned()
        .or_else(|| {
            s.results
                .iter()
                .filter(|r| !r.outcome.is_pass())
                .find_map(|r| r.note.clone())
        })
        .or_else(|| {
            Some(format!(
                "the {} stage ended {} before this test had a result",
                s.name, s.outcome
            ))
        });
    let mut out: Vec<(String, Outcome, Option<String>)> = Vec::new();
    for n in names {
        if !reported.contains(&n) && !out.iter().any(|(g, ..)| *g == n) {
            out.push((n, s.outcome, cause.clone()));
        }
    }
    out
}

/// ResultsDB's `submit_time` form: `%Y-%m-%dT%H:%M:%S.%f` (fractional seconds required). Never
/// later than now: the latest result decides a gate, and a manifest claiming a time to come
/// (2099) would have overruled every real result until then. An unreadable time is now.
fn submit_time(rfc3339: &str) -> String {
    let now = chrono::Utc::now();
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Utc).min(now))
        .unwrap_or(now)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(results: Value, unlisted: Value) -> StageRecord {
        let mut s = crate::manifest::StageRecord::instant(
            crate::manifest::StageName::Test,
            Outcome::Failed,
            String::new(),
        );
        s.results = serde_json::from_value(results).unwrap();
        s.data.insert("results_unlisted".into(), unlisted);
        s
    }

    /// A run that broke before any test had a result (a tests.yml that is not YAML, a tmt run
    /// that could not discover its plan) fails the Fedora tests it foresaw, with its cause:
    /// missing would read as "waiting", and an earlier run's PASSED would still gate.
    #[test]
    fn a_run_that_broke_before_any_result_fails_the_fedora_tests_it_foresaw() {
        let mut s = record(json!([]), Value::Null);
        s.data.remove("results_unlisted");
        s.notes = vec!["tests/tests.yml:8: invalid YAML: did not find expected node".into()];
        s.data
            .insert("mistake".into(), json!({"at": "tests/tests.yml:8"}));
        let g = fedora_groups(&s);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].0, "tier0");
        assert_eq!(g[0].1, Outcome::Failed);
        assert!(g[0].2.as_deref().unwrap().contains("tests/tests.yml:8"));
        // A plan's own file names its plan; a tmt run that broke names every plan foreseen.
        s.data
            .insert("mistake".into(), json!({"at": "plans/smoke/main.fmf:3"}));
        assert_eq!(fedora_groups(&s)[0].0, "/plans/smoke");
        s.data.remove("mistake");
        s.outcome = Outcome::Error;
        s.data
            .insert("fedora_tests".into(), json!(["/plans/a", "/plans/b"]));
        let g = fedora_groups(&s);
        let names: Vec<_> = g.iter().map(|(n, o, _)| (n.as_str(), *o)).collect();
        assert_eq!(
            names,
            [("/plans/a", Outcome::Error), ("/plans/b", Outcome::Error)]
        );
        // A passing record foresees nothing missing.
        s.outcome = Outcome::Passed;
        assert!(fedora_groups(&s).is_empty());
    }

    #[test]
    fn unlisted_failures_decide_the_groups_they_belong_to() {
        let listed = json!([
            {"testcase": "/tests/ok", "outcome": "PASSED", "runner": "tmt", "plan": "/plans/b"},
            {"testcase": "/tests/ok", "outcome": "PASSED", "runner": "tmt", "plan": "/plans/c"},
            {"testcase": "a", "outcome": "PASSED", "runner": "sti", "playbook": "tests/tests.yml"},
        ]);
        let outcomes = |s: &StageRecord| -> Vec<(String, Outcome)> {
            fedora_groups(s)
                .into_iter()
                .map(|(g, o, _)| (g, o))
                .collect()
        };
        // Per group: plan b's unlisted failure is b's alone; plan d exists only unlisted.
        let s = record(
            listed.clone(),
            json!({"passed": 1, "failed": 1, "errors": 0, "groups": [
                {"runner": "tmt", "plan": "/plans/b", "passed": 0, "skipped": 0, "failed": 1, "errors": 0},
                {"runner": "tmt", "plan": "/plans/d", "passed": 1, "skipped": 0, "failed": 0, "errors": 0},
            ]}),
        );
        assert_eq!(
            outcomes(&s),
            [
                ("/plans/b".to_string(), Outcome::Failed),
                ("/plans/c".to_string(), Outcome::Passed),
                ("tier0".to_string(), Outcome::Passed),
                ("/plans/d".to_string(), Outcome::Passed),
            ]
        );
        // Counts without groups (an older record): whose failure it is is unknown, so no
        // group passes.
        let s = record(listed, json!({"passed": 0, "failed": 0, "errors": 2}));
        let got = fedora_groups(&s);
        assert!(got.iter().all(|(_, o, _)| *o == Outcome::Error), "{got:?}");
        assert!(got[0]
            .2
            .as_deref()
            .unwrap()
            .contains("2 errored cases of the stage"));
    }

    #[test]
    fn an_error_of_tmts_whole_run_is_every_plans() {
        let s = record(
            json!([
                {"testcase": "/tests/ok", "outcome": "PASSED", "runner": "tmt", "plan": "/plans/a"},
                {"testcase": "a", "outcome": "PASSED", "runner": "sti", "playbook": "tests/tests.yml"},
                {"testcase": "tmt", "outcome": "ERROR", "runner": "tmt"},
            ]),
            json!({"passed": 1, "failed": 0, "errors": 0, "groups": [
                {"runner": "tmt", "plan": "/plans/d", "passed": 1, "skipped": 0, "failed": 0, "errors": 0},
            ]}),
        );
        let got: Vec<(String, Outcome)> = fedora_groups(&s)
            .into_iter()
            .map(|(g, o, _)| (g, o))
            .collect();
        assert_eq!(
            got,
            [
                ("/plans/a".to_string(), Outcome::Error),
                ("tier0".to_string(), Outcome::Passed),
                ("/plans/d".to_string(), Outcome::Error),
            ]
        );
    }

    #[test]
    fn results_are_named_in_the_runs_namespace_and_link_to_their_job_and_log() {
        let mut m = Manifest::new("run-1".into());
        m.subject.package = Some("hello".into());
        let mut s = record(
            json!([{"testcase": "a", "outcome": "PASSED", "runner": "sti", "playbook": "tests/tests.yml"}]),
            json!({}),
        );
        s.outcome = Outcome::Passed;
        s.log = Some("objects/ab/abcd/test.log".into());
        m.stages.push(s.clone());
        // No run.ci (a manifest no stage of this fci ran): the default namespace, plain paths.
        let got = results(&m, &Naming::of(&m, "ERROR"));
        let names: Vec<&str> = got
            .iter()
            .map(|r| r["testcase"]["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"fedora-ci.koji-build.tier0.functional"),
            "{names:?}"
        );
        assert_eq!(got[0]["data"]["log"], "objects/ab/abcd/test.log");
        assert!(got[0].get("ref_url").is_none());
        // With an artifacts URL: the log is a link, and the result's ref_url too.
        let mut naming = Naming::of(&m, "ERROR");
        naming.artifacts_url = Some("https://ci.example.org/ws/".into());
        let got = results(&m, &naming);
        let log = "https://ci.example.org/ws/objects/ab/abcd/test.log";
        assert_eq!(got[0]["data"]["log"], log);
        assert_eq!(got[0]["ref_url"], log);
        // With the job's URL: that is the ref_url.
        m.stages[0].run_url = Some("https://jenkins.example.org/job/fci/3/".into());
        let got = results(&m, &naming);
        assert!(got
            .iter()
            .all(|r| r["ref_url"] == "https://jenkins.example.org/job/fci/3/"));
    }

    #[test]
    fn a_result_links_its_stages_attestations() {
        let mut m = Manifest::new("run-1".into());
        m.subject.package = Some("hello".into());
        let mut s = record(
            json!([{"testcase": "a", "outcome": "PASSED", "runner": "sti", "playbook": "tests/tests.yml"}]),
            json!({}),
        );
        s.outcome = Outcome::Passed;
        m.stages.push(s);
        let att = |stage: &str| -> crate::manifest::Artifact {
            serde_json::from_value(
                json!({"type": "attestation", "name": format!("{stage}.intoto.json"),
                "path": format!("objects/cd/cdef/{stage}.intoto.json"), "sha256": "cdef",
                "size": 1, "stage": stage}),
            )
            .unwrap()
        };
        m.artifacts = vec![att("test"), att("build")];
        let mut naming = Naming::of(&m, "ERROR");
        naming.artifacts_url = Some("https://ci.example.org/ws/".into());
        let got = results(&m, &naming);
        assert_eq!(
            got[0]["data"]["provenance"],
            json!(["https://ci.example.org/ws/objects/cd/cdef/test.intoto.json"]),
            "its own stage's, linked"
        );
    }

    #[test]
    fn a_result_is_never_submitted_later_than_now() {
        assert_eq!(
            submit_time("2026-12-06T10:00:00.5Z"),
            "2026-12-06T10:00:00.500000"
        );
        let future = submit_time("2099-01-01T00:00:00Z");
        assert!(future.as_str() < "2099", "{future}");
        assert!(!submit_time("not a time").is_empty());
    }

    #[test]
    fn one_case_in_two_groups_has_two_ids_and_one_without_a_group_keeps_its_id() {
        let s = record(json!([]), json!({}));
        let plain = result_id("run", &s, "/tests/x", None);
        assert_ne!(result_id("run", &s, "/tests/x", Some("/plans/a")), plain);
        assert_ne!(
            result_id("run", &s, "/tests/x", Some("/plans/a")),
            result_id("run", &s, "/tests/x", Some("/plans/b"))
        );
        let text = format!("run\ntest\n{}\n/tests/x", s.started);
        assert_eq!(plain, crate::digest::sha256_bytes(text.as_bytes())[..32]);
    }
}
