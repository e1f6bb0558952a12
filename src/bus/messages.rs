//! Fedora CI messages for a run: for each stage record, the `running` message of its start and
//! the `complete` (or `error`) message of its end, in the Fedora CI Messages format, with the
//! maintainer among the notification's recipients. Build and test are about the package
//! (`koji-build`); compose and the stages after it about the composed tree
//! (`productmd-compose`). A message's id is derived from the run, the record and the event,
//! so publishing a run again never sends a message twice.

use super::identity;
use crate::manifest::{Ci, Manifest, Outcome, StageName, StageRecord};
use serde_json::{json, Map, Value};

/// The Fedora CI messages schema version these bodies follow.
pub const VERSION: &str = "0.2.1";

/// What a run's messages say of it beside its records: its identity (`run.ci`) and who is
/// told. Both come from the manifest alone.
pub struct Context {
    pub ci: Ci,
    /// Who is told: the package's maintainer (its latest changelog entry's address).
    pub maintainer: Option<String>,
}

impl Context {
    /// The context of a run's messages: its recorded identity (fci's own, for a manifest no
    /// stage of this fci ran), its maintainer.
    pub fn of(m: &Manifest) -> Self {
        Context {
            ci: identity::of(m),
            maintainer: maintainer(m),
        }
    }
}

/// The maintainer as the build records up to `s` name them.
fn maintainer_at(m: &Manifest, s: &StageRecord) -> Option<String> {
    latest(m, s, StageName::Build, "changelog_name").and_then(changelog_address)
}

pub struct Message {
    pub id: String,
    pub topic: String,
    pub body: Value,
}

/// The records up to `s` (all of them for a record not yet in the manifest: a stage's start):
/// what a message of `s` may read, so that a later rebuild or recompose does not change it.
fn up_to<'a>(m: &'a Manifest, s: &StageRecord) -> &'a [StageRecord] {
    match m.stages.iter().position(|r| std::ptr::eq(r, s)) {
        Some(i) => &m.stages[..=i],
        None => &m.stages,
    }
}

/// The latest value of `key` in the data of the `stage` records up to `s`.
fn latest<'a>(m: &'a Manifest, s: &StageRecord, stage: StageName, key: &str) -> Option<&'a str> {
    up_to(m, s)
        .iter()
        .rev()
        .filter(|r| r.is(stage))
        .find_map(|r| r.data.get(key).and_then(Value::as_str))
}

fn artifact(m: &Manifest, s: &StageRecord, cx: &Context) -> (&'static str, Value) {
    if s.is(StageName::Build) || s.is(StageName::Test) {
        // Koji's task id is an integer > 0; a run without Koji gets a stable one from its id.
        let id = u64::from_str_radix(&crate::digest::sha256_bytes(m.run.id.as_bytes())[..8], 16)
            .unwrap_or(1)
            % 2_000_000_000
            + 1;
        let nvr = latest(m, s, StageName::Build, "nvr")
            .map(String::from)
            .or_else(|| m.subject_nvr());
        let component = m.subject.package.clone().or_else(|| {
            nvr.as_deref()
                .and_then(|n| n.rsplitn(3, '-').nth(2))
                .map(String::from)
        });
        let mut a =
            json!({"type": "koji-build", "id": id, "issuer": cx.ci.issuer, "scratch": true});
        if let Some(c) = component {
            a["component"] = json!(c);
        }
        if let Some(n) = nvr {
            a["nvr"] = json!(n);
        }
        // Where the source came from: `git+<repo URL>#<commit>` as Koji says it; a local
        // checkout's commit alone.
        let source = match (&m.subject.repo, &m.subject.commit) {
            (Some(r), Some(c)) if crate::distgit::is_url(r) => {
                Some(format!("git+{}#{c}", crate::redact::strip_credentials(r)))
            }
            (_, Some(c)) => Some(c.clone()),
            _ => None,
        };
        if let Some(src) = source {
            a["source"] = json!(src);
        }
        return ("koji-build", a);
    }
    // The composed commit; before there is one (a compose that failed), the compose this run
    // attempted, named by the run.
    let id = latest(m, s, StageName::Compose, "commit")
        .map(String::from)
        .or_else(|| m.composed_commit().map(|a| a.sha256.clone()))
        .unwrap_or_else(|| format!("fci-{}", m.run.id));
    (
        "productmd-compose",
        json!({"type": "productmd-compose", "id": id, "compose_type": "test"}),
    )
}

/// The package's maintainer: the address of its latest changelog entry, as the build
/// recorded it.
pub fn maintainer(m: &Manifest) -> Option<String> {
    m.stages
        .iter()
        .rev()
        .filter(|s| s.is(StageName::Build))
        .find_map(|s| s.data.get("changelog_name").and_then(|v| v.as_str()))
        .and_then(changelog_address)
}

/// Every message of the run's stage records (the report's own excluded).
pub fn for_run(m: &Manifest, cx: &Context) -> Vec<Message> {
    m.stages
        .iter()
        .filter(|s| !s.is(StageName::Report) && s.outcome != Outcome::Skipped)
        .flat_map(|s| for_record(m, s, cx))
        .collect()
}

/// The `run` object of a record's message: the job's URL and its log (Jenkins' console,
/// plain-text console and, at the end, rebuild page); without a job, the artifacts URL (else
/// the workspace's `file:` URL) and, at the end, the stage's log below it. Never an empty
/// string: what is not known is left out.
pub fn run_links(ci: &Ci, s: &StageRecord, end: bool) -> Value {
    let mut run = Map::new();
    let stage_log = s.log.as_deref().filter(|_| end);
    if let Some(u) = &s.run_url {
        let j = identity::job_links(u);
        let log = match (&j.log_raw, stage_log, &ci.artifacts_url) {
            // Jenkins: its console, as Fedora CI's pipelines say it.
            (Some(_), ..) => j.log.clone(),
            (None, Some(l), Some(base)) => identity::link(base, l),
            _ => j.log.clone(),
        };
        run.insert("url".into(), json!(j.url));
        run.insert("log".into(), json!(log));
        if let Some(raw) = j.log_raw {
            run.insert("log_raw".into(), json!(raw));
        }
        if let Some(r) = j.rebuild.filter(|_| end) {
            run.insert("rebuild".into(), json!(r));
        }
    } else if let Some(base) = ci.artifacts_url.as_ref().or(ci.workspace_url.as_ref()) {
        run.insert("url".into(), json!(base));
        let log = stage_log.map_or_else(|| base.clone(), |l| identity::link(base, l));
        run.insert("log".into(), json!(log));
    }
    Value::Object(run)
}

/// The start of every message of a record (one test: `test_type`).
fn base(m: &Manifest, s: &StageRecord, cx: &Context, test_type: &str, end: bool) -> Value {
    let (_, art) = artifact(m, s, cx);
    let c = &cx.ci.contact;
    let mut contact = json!({"name": c.name, "team": c.team});
    for (k, v) in [("email", &c.email), ("irc", &c.irc), ("docs", &c.docs)] {
        if let Some(v) = v {
            contact[k] = json!(v);
        }
    }
    let category = crate::resultsdb::mapping::category(&s.name);
    json!({
        "contact": contact,
        "run": run_links(&cx.ci, s, end),
        "artifact": art,
        "pipeline": {"id": m.run.id, "name": c.name, "stage": {"name": s.name}},
        "test": {"category": category, "namespace": cx.ci.namespace, "type": test_type},
        "version": VERSION,
    })
}

/// Fedora CI's result of an outcome (an ERROR is an `error` message instead).
fn result_of(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Info => "info",
        Outcome::NeedsInspection => "needs_inspection",
        _ => "failed",
    }
}

/// A stage record's messages: `running` (its start; not for build and compose, whose
/// artifact exists only once they end), then `complete` or `error`; for test and integrate
/// also one `complete` or `error` per test Fedora CI names (`tier0`, each tmt plan), so that
/// a message-to-ResultsDB bridge names them as fci's results do.
pub fn for_record(m: &Manifest, s: &StageRecord, cx: &Context) -> Vec<Message> {
    let mut out = Vec::new();
    let (kind, _) = artifact(m, s, cx);
    let id = |event: &str| {
        crate::digest::sha256_bytes(
            format!("{}\n{}\n{}\n{event}", m.run.id, s.name, s.started).as_bytes(),
        )[..32]
            .to_string()
    };
    if !s.is(StageName::Build) && !s.is(StageName::Compose) {
        let mut running = base(m, s, cx, &s.name, false);
        running["generated_at"] = json!(s.started);
        out.push(Message {
            id: id("running"),
            topic: format!("org.centos.prod.ci.{kind}.test.running"),
            body: running,
        });
    }
    let end = |test_type: &str, outcome: Outcome, note: Option<&str>, runtime: Option<f64>| {
        let mut end = base(m, s, cx, test_type, true);
        end["generated_at"] = json!(s.finished);
        let event = if outcome == Outcome::Error {
            let reason = note
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or("Infrastructure Failure");
            end["error"] = json!({"reason": reason});
            if let Some(log) = end["run"].get("log").cloned() {
                end["error"]["url"] = log;
            }
            "error"
        } else {
            end["test"]["result"] = json!(result_of(outcome));
            if let Some(r) = runtime {
                end["test"]["runtime"] = json!(r.round() as i64);
            }
            if let Some(n) = note.map(str::trim).filter(|n| !n.is_empty()) {
                end["test"]["note"] = json!(crate::redact::redact(n));
            }
            end["system"] = json!([{"os": "fci", "provider": "fci",
                                    "architecture": cx.ci.architecture}]);
            "complete"
        };
        if let Some(to) = maintainer_at(m, s) {
            end["notification"] = json!({"recipients": [to]});
        }
        (event, end)
    };
    // A record that did not pass says why last (its cause; warnings come before it).
    let note = if s.outcome.is_pass() {
        s.notes.first()
    } else {
        s.notes.last()
    };
    let (event, body) = end(
        &s.name,
        s.outcome,
        note.map(String::as_str),
        Some(s.duration_s),
    );
    out.push(Message {
        id: id(event),
        topic: format!("org.centos.prod.ci.{kind}.test.{event}"),
        body,
    });
    if s.is(StageName::Test) || s.is(StageName::Integrate) {
        for (group, outcome, note) in crate::resultsdb::mapping::fedora_groups(s) {
            let (event, body) = end(&group, outcome, note.as_deref(), None);
            out.push(Message {
                id: id(&format!("{event}\n{group}")),
                topic: format!("org.centos.prod.ci.{kind}.test.{event}"),
                body,
            });
        }
    }
    out
}

/// The address in an rpm changelog name: `Jane Doe <jane@example.org> - 1.0-1` → the address.
pub fn changelog_address(name: &str) -> Option<String> {
    let start = name.find('<')? + 1;
    let end = start + name[start..].find('>')?;
    let addr = name[start..end].trim();
    (addr.contains('@') && !addr.contains(char::is_whitespace)).then(|| addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ConfigRef, Contact};

    fn record(stage: StageName, outcome: Outcome, results: Value) -> StageRecord {
        let mut s = StageRecord::instant(stage, outcome, format!("{stage} {outcome}"));
        s.started = format!("2026-12-07T06:0{}:00Z", stage as u8);
        s.finished = format!("2026-12-07T06:0{}:30Z", stage as u8);
        s.duration_s = 29.6;
        s.log = Some(format!("objects/ab/abcd/{stage}.log"));
        s.results = serde_json::from_value(results).unwrap();
        s
    }

    /// A run of every stage: the build with its changelog, the tests in STI and two tmt
    /// plans, an integration that errored, and a job URL on some records.
    fn run(jenkins: Option<&str>, artifacts: Option<&str>) -> Manifest {
        let mut m = Manifest::new("run-1".into());
        m.run.config = None::<ConfigRef>;
        m.subject.package = Some("hello".into());
        m.subject.repo = Some("https://src.example.org/rpms/hello.git".into());
        m.subject.commit = Some("abc123".into());
        m.run.ci = Some(Ci {
            namespace: identity::DEFAULT_NAMESPACE.into(),
            contact: Contact {
                name: "Example CI".into(),
                team: "example".into(),
                email: Some("ci@example.org".into()),
                irc: None,
                docs: Some("https://example.org/ci".into()),
                extra: Map::new(),
            },
            issuer: "jenkins".into(),
            architecture: "x86_64".into(),
            artifacts_url: artifacts.map(String::from),
            workspace_url: Some("file://host/srv/ws/".into()),
            extra: Map::new(),
        });
        let mut build = record(StageName::Build, Outcome::Passed, json!([]));
        build.data.insert(
            "changelog_name".into(),
            json!("Jane Doe <jane@example.org> - 1.0-1"),
        );
        build.data.insert("nvr".into(), json!("hello-1.0-1.fc41"));
        let test = record(
            StageName::Test,
            Outcome::Failed,
            json!([
                {"testcase": "a", "outcome": "PASSED", "runner": "sti", "playbook": "tests/tests.yml"},
                {"testcase": "/t/x", "outcome": "PASSED", "runner": "tmt", "plan": "/plans/ok"},
                {"testcase": "/t/y", "outcome": "FAILED", "runner": "tmt", "plan": "/plans/bad"},
            ]),
        );
        let compose = record(StageName::Compose, Outcome::Passed, json!([]));
        let integrate = record(
            StageName::Integrate,
            Outcome::Error,
            json!([{"testcase": "boot", "outcome": "ERROR", "runner": "sti", "playbook": "tests/tests.yml"}]),
        );
        m.stages = vec![build, test, compose, integrate];
        for s in &mut m.stages {
            s.run_url = jenkins.map(String::from);
        }
        m
    }

    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_message_names_a_test_fci_posts_to_resultsdb() {
        let m = run(None, None);
        let posted: Vec<String> = crate::resultsdb::mapping::results(
            &m,
            &crate::resultsdb::mapping::Naming::of(&m, "ERROR"),
        )
        .iter()
        .map(|r| r["testcase"]["name"].as_str().unwrap().to_string())
        .collect();
        let msgs = for_run(&m, &Context::of(&m));
        let named: Vec<String> = msgs
            .iter()
            .map(|msg| {
                let t = &msg.body["test"];
                format!(
                    "{}.{}.{}",
                    t["namespace"].as_str().unwrap(),
                    t["type"].as_str().unwrap(),
                    t["category"].as_str().unwrap()
                )
            })
            .collect();
        for n in &named {
            assert!(posted.contains(n), "{n} is not posted: {posted:?}");
        }
        // Fedora's gating names, each with its own message.
        for want in [
            "fedora-ci.koji-build.tier0.functional",
            "fedora-ci.koji-build./plans/ok.functional",
            "fedora-ci.koji-build./plans/bad.functional",
            "fedora-ci.koji-build.tier0.integration",
        ] {
            assert!(named.iter().any(|n| n == want), "{want}: {named:?}");
        }
        let result = |ty: &str| {
            msgs.iter()
                .find(|m| m.body["test"]["type"] == ty && m.topic.ends_with(".complete"))
                .map(|m| m.body["test"]["result"].clone())
        };
        assert_eq!(result("/plans/ok"), Some(json!("passed")));
        assert_eq!(result("/plans/bad"), Some(json!("failed")));
        // The integration's tier0 errored: an error message, with its reason.
        assert!(msgs.iter().any(
            |m| m.topic == "org.centos.prod.ci.productmd-compose.test.error"
                && m.body["test"]["type"] == "tier0"
        ));
        // Ids are unique.
        let mut ids: Vec<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), msgs.len());
    }

    #[test]
    fn bodies_carry_the_runs_identity_and_links_and_nothing_empty() {
        let jenkins = "https://jenkins.example.org/job/fci/17/";
        let m = run(Some(jenkins), Some("https://ci.example.org/ws/"));
        let msgs = for_run(&m, &Context::of(&m));
        for msg in &msgs {
            let b = &msg.body;
            let mut all = Vec::new();
            strings(b, &mut all);
            assert!(all.iter().all(|s| !s.trim().is_empty()), "{b:#}");
            assert!(
                !all.iter()
                    .any(|s| s.starts_with("fci:") || s.contains("localhost")),
                "{b:#}"
            );
            assert_eq!(
                b["contact"],
                json!({"name": "Example CI", "team": "example", "email": "ci@example.org",
                       "docs": "https://example.org/ci"})
            );
            assert_eq!(b["run"]["url"], jenkins);
            assert_eq!(b["run"]["log"], format!("{jenkins}console"));
            assert_eq!(b["run"]["log_raw"], format!("{jenkins}consoleText"));
            let end = !msg.topic.ends_with(".running");
            assert_eq!(b["run"]["rebuild"].is_string(), end, "{b:#}");
            assert!(b.get("runtime").is_none(), "runtime is the test's: {b:#}");
            assert_eq!(
                b["artifact"]["issuer"].as_str().map(|_| ()),
                if b["artifact"]["type"] == "koji-build" {
                    Some(())
                } else {
                    None
                }
            );
        }
        let build = msgs
            .iter()
            .find(|m| m.body["test"]["type"] == "build")
            .unwrap();
        assert_eq!(build.body["test"]["runtime"], 30);
        assert_eq!(build.body["artifact"]["nvr"], "hello-1.0-1.fc41");
        assert_eq!(build.body["artifact"]["component"], "hello");
        assert_eq!(
            build.body["artifact"]["source"],
            "git+https://src.example.org/rpms/hello.git#abc123"
        );
        assert_eq!(
            build.body["notification"]["recipients"],
            json!(["jane@example.org"])
        );
        let err = msgs.iter().find(|m| m.topic.ends_with(".error")).unwrap();
        assert_eq!(err.body["error"]["url"], format!("{jenkins}console"));
        assert_eq!(err.body["error"]["reason"], "integrate ERROR");
        // Without a job: the stage's log below the artifacts URL, the workspace's when none.
        let m = run(None, Some("https://ci.example.org/ws/"));
        let msgs = for_run(&m, &Context::of(&m));
        let build = msgs
            .iter()
            .find(|m| m.body["test"]["type"] == "build")
            .unwrap();
        assert_eq!(
            build.body["run"],
            json!({"url": "https://ci.example.org/ws/",
                   "log": "https://ci.example.org/ws/objects/ab/abcd/build.log"})
        );
        let m = run(None, None);
        let msgs = for_run(&m, &Context::of(&m));
        let running = msgs.iter().find(|m| m.topic.ends_with(".running")).unwrap();
        assert_eq!(
            running.body["run"],
            json!({"url": "file://host/srv/ws/", "log": "file://host/srv/ws/"})
        );
        // No fci.yaml: fci's own name and team, nothing else made up.
        let mut m = run(None, None);
        m.run.ci.as_mut().unwrap().contact = identity::contact(&Default::default());
        let msgs = for_run(&m, &Context::of(&m));
        assert_eq!(
            msgs[0].body["contact"],
            json!({"name": "fci", "team": "fci"})
        );
    }

    #[test]
    fn a_running_message_sent_at_the_start_is_the_one_its_final_record_makes() {
        let m = run(Some("https://jenkins.example.org/job/fci/17/"), None);
        let cx = Context::of(&m);
        let fin = &m.stages[1];
        // What `emit::started` has at the start: the name, start time and job URL.
        let mut start = StageRecord::instant(StageName::Test, Outcome::Passed, String::new());
        start.started = fin.started.clone();
        start.run_url = fin.run_url.clone();
        start.notes.clear();
        let mut before = m.clone();
        before.stages.truncate(1);
        let at_start = for_record(&before, &start, &cx);
        let at_end = for_record(&m, fin, &cx);
        assert_eq!(at_start[0].id, at_end[0].id);
        assert_eq!(at_start[0].body, at_end[0].body);
        // A rebuild later in the run (another NVR, another changelog) does not change what
        // the earlier records' messages said.
        let mut rebuilt = m.clone();
        let mut again = rebuilt.stages[0].clone();
        again.started = "2026-12-07T07:00:00Z".into();
        again.data.insert("nvr".into(), json!("hello-1.0-2.fc41"));
        again.data.insert(
            "changelog_name".into(),
            json!("John Roe <john@example.org> - 1.0-2"),
        );
        rebuilt.stages.push(again);
        for i in 0..m.stages.len() {
            let before = for_record(&m, &m.stages[i], &cx);
            let after = for_record(&rebuilt, &rebuilt.stages[i], &cx);
            assert_eq!(before.len(), after.len());
            for (a, b) in before.iter().zip(&after) {
                assert_eq!((&a.id, &a.body), (&b.id, &b.body));
            }
        }
        let last = for_record(&rebuilt, rebuilt.stages.last().unwrap(), &cx);
        assert_eq!(last[0].body["artifact"]["nvr"], "hello-1.0-2.fc41");
    }

    #[test]
    fn the_maintainer_is_the_changelog_address() {
        assert_eq!(
            super::changelog_address("fci developers <fci@example.org> - 1.0-1").as_deref(),
            Some("fci@example.org")
        );
        assert_eq!(super::changelog_address("nobody - 1-1"), None);
    }
}
