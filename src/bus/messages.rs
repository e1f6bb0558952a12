//! Fedora CI messages for a run: for each stage record, the `running` message of its start and
//! the `complete` (or `error`) message of its end, in the Fedora CI Messages format, with the
//! maintainer among the notification's recipients. Build and test are about the package
//! (`koji-build`); compose and the stages after it about the composed tree
//! (`productmd-compose`). A message's id is derived from the run, the record and the event,
//! so publishing a run again never sends a message twice.

use crate::manifest::{Manifest, Outcome, StageName, StageRecord};
use serde_json::{json, Value};

/// The Fedora CI messages schema version these bodies follow.
pub const VERSION: &str = "0.2.1";

pub struct Context<'a> {
    pub namespace: &'a str,
    /// Who is told: the package's maintainer (its latest changelog entry's address).
    pub maintainer: Option<String>,
    pub issuer: String,
}

impl<'a> Context<'a> {
    /// The context of a run's messages: its maintainer, and the user sending them.
    pub fn of(m: &Manifest, namespace: &'a str) -> Self {
        Context {
            namespace,
            maintainer: maintainer(m),
            issuer: std::env::var("USER").unwrap_or_else(|_| "fci".into()),
        }
    }
}

pub struct Message {
    pub id: String,
    pub topic: String,
    pub body: Value,
}

fn artifact(m: &Manifest, s: &StageRecord, cx: &Context) -> (&'static str, Value) {
    let nvr = m.subject_nvr().unwrap_or_default();
    let component = m.subject.package.clone().unwrap_or_default();
    if s.is(StageName::Build) || s.is(StageName::Test) {
        // Koji's task id is an integer > 0; a run without Koji gets a stable one from its id.
        let id = u64::from_str_radix(&crate::digest::sha256_bytes(m.run.id.as_bytes())[..8], 16)
            .unwrap_or(1)
            % 2_000_000_000
            + 1;
        return (
            "koji-build",
            json!({"type": "koji-build", "id": id, "component": component, "issuer": cx.issuer,
                   "scratch": true, "nvr": nvr, "source": m.subject.commit}),
        );
    }
    let commit = m
        .composed_commit()
        .map(|a| a.sha256.clone())
        .unwrap_or_default();
    (
        "productmd-compose",
        json!({"type": "productmd-compose", "id": commit, "compose_type": "test"}),
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

/// The namespace of test names and messages (`FCI_NAMESPACE`, default `fci.koji-build`).
pub fn default_namespace() -> String {
    std::env::var("FCI_NAMESPACE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "fci.koji-build".into())
}

/// Every message of the run's stage records (the report's own excluded).
pub fn for_run(m: &Manifest, cx: &Context) -> Vec<Message> {
    m.stages
        .iter()
        .filter(|s| !s.is(StageName::Report) && s.outcome != Outcome::Skipped)
        .flat_map(|s| for_record(m, s, cx))
        .collect()
}

/// A stage record's two messages: `running` (its start), then `complete` or `error`.
pub fn for_record(m: &Manifest, s: &StageRecord, cx: &Context) -> Vec<Message> {
    let mut out = Vec::new();
    {
        let (kind, art) = artifact(m, s, cx);
        // The category the stage's results are named with.
        let category = crate::resultsdb::mapping::category(&s.name);
        let log = s.log.clone().unwrap_or_default();
        let base = json!({
            "contact": {"name": "fci", "team": "fci", "docs": "https://github.com/fci/fci#readme",
                        "email": cx.maintainer.clone().unwrap_or_else(|| "root@localhost".into())},
            "run": {"url": format!("fci:run/{}", m.run.id), "log": log},
            "artifact": art,
            "pipeline": {"id": m.run.id, "name": "fci", "stage": {"name": s.name}},
            "test": {"category": category, "namespace": cx.namespace, "type": s.name},
            "version": VERSION,
        });
        let id = |event: &str| {
            crate::digest::sha256_bytes(
                format!("{}\n{}\n{}\n{event}", m.run.id, s.name, s.started).as_bytes(),
            )[..32]
                .to_string()
        };
        // A build has no artifact until it ends: no `running` for it.
        if !s.is(StageName::Build) {
            let mut running = base.clone();
            running["generated_at"] = json!(s.started);
            out.push(Message {
                id: id("running"),
                topic: format!("org.centos.prod.ci.{kind}.test.running"),
                body: running,
            });
        }
        let mut end = base;
        end["generated_at"] = json!(s.finished);
        let event = if s.outcome == Outcome::Error {
            end["error"] = json!({"reason": s.notes.first().cloned().unwrap_or_default()});
            "error"
        } else {
            end["test"]["result"] = json!(match s.outcome {
                Outcome::Passed => "passed",
                Outcome::Info => "info",
                Outcome::NeedsInspection => "needs_inspection",
                _ => "failed",
            });
            end["system"] = json!([{"os": "fci", "provider": "fci",
                                    "architecture": std::env::consts::ARCH}]);
            end["runtime"] = json!(s.duration_s);
            "complete"
        };
        if let Some(to) = &cx.maintainer {
            end["notification"] = json!({"recipients": [to]});
        }
        out.push(Message {
            id: id(event),
            topic: format!("org.centos.prod.ci.{kind}.test.{event}"),
            body: end,
        });
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
    #[test]
    fn the_maintainer_is_the_changelog_address() {
        assert_eq!(
            super::changelog_address("fci developers <fci@example.org> - 1.0-1").as_deref(),
            Some("fci@example.org")
        );
        assert_eq!(super::changelog_address("nobody - 1-1"), None);
    }
}
