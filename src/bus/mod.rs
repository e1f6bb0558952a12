//! The message bus: Fedora CI messages for a run (`messages.rs`), sent as each stage runs
//! (`emit.rs`) to the workspace's journal (`journal.rs`) and to an AMQP broker
//! (`publish.rs`), and dist-git push messages taken from a broker for the watch
//! (`consume.rs`).

pub mod consume;
pub mod emit;
pub mod identity;
pub mod journal;
pub mod messages;
pub mod publish;

use serde_json::{json, Value};

/// fedora-messaging's headers for a message (`{"id", "topic", "body"}`) sent at `sent_at`:
/// its schema, severity and priority, its id, and the `fedora_messaging_rpm_<package>` filter
/// header of the package it is about. The journal writes them as they are; AMQP sends them as
/// the message's header table.
pub fn headers(id: &str, body: &Value, sent_at: &str) -> Value {
    let mut h = json!({
        "fedora_messaging_schema": "base.message",
        "fedora_messaging_severity": 20,
        "sent-at": sent_at,
        "priority": 0,
        "fci_message_id": id,
    });
    if let Some(p) = body
        .pointer("/artifact/component")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        h[format!("fedora_messaging_rpm_{p}")] = json!(true);
    }
    h
}
