//! Greenwave's decision message, as its consumer publishes it (`greenwave/consumers/
//! consumer.py`): topic `greenwave.decision.update` (fedora-messaging's
//! `org.fedoraproject.prod.` prefix before it), ONE message per decision context, whose body
//! is that context's decision (`policies_satisfied`, `summary`, `satisfied_requirements`,
//! `unsatisfied_requirements`, `applicable_policies`) plus `subject_type`,
//! `subject_identifier`, `product_version`, `decision_context`, the legacy `subject` list
//! (`[Subject.to_dict()]`) and `previous`: the decision before this one for the same subject,
//! context and product version (null the first time), kept in the workspace
//! (`state/decisions/`). As Greenwave, nothing is published for a context whose decision did
//! not change, nor for one no policy applies to (Greenwave answers 404 there). fci adds
//! `notification.recipients` (the maintainer), as its other messages have it.

use super::decision::{self, Request, TestResult, Waiver};
use super::policy::Policy;
use crate::bus::messages::Message;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;

pub const TOPIC: &str = "org.fedoraproject.prod.greenwave.decision.update";

/// The fields of a Greenwave decision (what `previous` holds, what a change is judged on).
const FIELDS: [&str; 5] = [
    "applicable_policies",
    "policies_satisfied",
    "satisfied_requirements",
    "summary",
    "unsatisfied_requirements",
];

/// A decision message to publish, and the state that records it once published.
pub struct Update {
    pub message: Message,
    state: PathBuf,
    kept: Value,
}

impl Update {
    /// The message, to publish.
    pub fn message(&self) -> Message {
        Message {
            id: self.message.id.clone(),
            topic: self.message.topic.clone(),
            body: self.message.body.clone(),
        }
    }
}

/// What one context's decision is made of.
pub struct Inputs<'a> {
    pub policies: &'a Result<Vec<Policy>, String>,
    pub source: &'a str,
    pub request: &'a Request,
    pub results: &'a [TestResult],
    pub waivers: &'a [Waiver],
    pub recipients: Vec<String>,
}

fn state_file(ws: &Workspace, key: &Value) -> PathBuf {
    let digest = &crate::digest::sha256_bytes(key.to_string().as_bytes())[..32];
    ws.state(&format!("decisions/{digest}.json"))
}

/// The decision messages of a request: one per decision context whose decision changed.
pub fn updates(ws: &Workspace, i: &Inputs) -> Result<Vec<Update>> {
    let mut contexts = i.request.decision_contexts.clone();
    contexts.dedup();
    let ty = super::subject::canonical(&i.request.subject_type).to_string();
    let mut out = Vec::new();
    for ctx in contexts.iter().filter(|c| !c.is_empty()) {
        let req = Request {
            decision_contexts: vec![ctx.clone()],
            product_version: i.request.product_version.clone(),
            subject_type: ty.clone(),
            subject_identifier: i.request.subject_identifier.clone(),
        };
        let full = decision::decide(i.policies, i.source, &req, i.results, i.waivers);
        if full["applicable_policies"]
            .as_array()
            .is_none_or(|a| a.is_empty())
        {
            continue;
        }
        let d: serde_json::Map<String, Value> = FIELDS
            .iter()
            .map(|k| (k.to_string(), full[*k].clone()))
            .collect();
        let d = Value::Object(d);
        let key = json!([ty, req.subject_identifier, req.product_version, ctx]);
        let state = state_file(ws, &key);
        // `{"decision": …, "seq": N}`: the last published decision and how many there were.
        let kept = match std::fs::read_to_string(&state) {
            Ok(t) => serde_json::from_str::<Value>(&t).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let previous = kept["decision"].clone();
        if previous == d {
            continue;
        }
        let seq = kept["seq"].as_u64().unwrap_or(0) + 1;
        let mut body = d.clone();
        body["subject_type"] = json!(ty);
        body["subject_identifier"] = json!(req.subject_identifier);
        body["product_version"] = json!(req.product_version);
        body["decision_context"] = json!(ctx);
        body["subject"] = json!([super::subject::to_dict(&ty, &req.subject_identifier)]);
        body["previous"] = previous;
        body["notification"] = json!({"recipients": i.recipients});
        // The sequence number in the id: a decision that flips back and forth sends the same
        // body again, a new event that must not be taken for a repeat of the old one.
        let id = crate::digest::sha256_bytes(format!("decision\n{key}\n{seq}\n{body}").as_bytes())
            [..32]
            .to_string();
        out.push(Update {
            message: Message {
                id,
                topic: TOPIC.into(),
                body,
            },
            state,
            kept: json!({"decision": d, "seq": seq}),
        });
    }
    Ok(out)
}

/// Records the published decisions as the `previous` of the next ones.
pub fn remember(updates: &[Update]) -> Result<()> {
    for u in updates {
        if let Some(dir) = u.state.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::files::write_atomic(&u.state, u.kept.to_string().as_bytes())?;
    }
    Ok(())
}
