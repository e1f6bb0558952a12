//! Messages to an AMQP broker as fedora-messaging publishes them: the `amq.topic` exchange,
//! routing key = topic, a JSON body, `content_type`/`content_encoding`, persistent delivery,
//! the message id, and fedora-messaging's headers (schema, `sent-at`, severity, priority, a
//! `fedora_messaging_rpm_<package>` filter header). With publisher confirms: a message leaves
//! the workspace's spool (`spool/amqp/<broker>/`) only once the broker acknowledged it;
//! whatever is not acknowledged (broker down, connection dropped mid-publish, a nack) stays
//! spooled and the next report sends it first. Delivery is at least once: the message id
//! lets a consumer drop a repeat after a crash between the broker's ack and the spool's removal.

use super::messages::Message;
use crate::resultsdb::store::Store;
use crate::workspace::Workspace;
use anyhow::Result;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Confirmation;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Default, Debug)]
pub struct Published {
    pub sent: usize,
    pub spooled: usize,
    pub unreachable: Option<String>,
}

fn spool_dir(ws: &Workspace, url: &str) -> PathBuf {
    let key = &crate::digest::sha256_bytes(url.as_bytes())[..16];
    ws.spool("amqp").join(key)
}

/// fedora-messaging's headers (`super::headers`) as an AMQP header table.
fn header_table(id: &str, body: &Value, sent_at: &str) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in super::headers(id, body, sent_at)
        .as_object()
        .into_iter()
        .flatten()
    {
        let v = match v {
            Value::Bool(b) => AMQPValue::Boolean(*b),
            Value::Number(n) => AMQPValue::LongInt(n.as_i64().unwrap_or_default() as i32),
            other => AMQPValue::LongString(other.as_str().unwrap_or_default().into()),
        };
        t.insert(k.as_str().into(), v);
    }
    t
}

/// Spools the messages not yet acknowledged by this broker, then sends the spool, oldest
/// event first. (Long: spooling, the session with its confirms and the count of what stayed
/// share the spool's lock, the runtime and the deadline; split, each piece would take them
/// all.)
pub fn publish(
    ws: &Workspace,
    store: &Store,
    url: &str,
    messages: &[Message],
) -> Result<Published> {
    // Checked where the URL is taken (bad input there); here too, so no caller can miss it.
    crate::net::refuse_clear_credentials("AMQP broker", url, false)
        .map_err(crate::error::FciError::Usage)?;
    // Named without credentials, and the same whatever the trailing slash.
    let plain = crate::redact::strip_credentials(url.trim_end_matches('/'));
    let dir = spool_dir(ws, &plain);
    std::fs::create_dir_all(&dir)?;
    let target = format!("amqp:{plain}");
    let _lock = ws.lock(&format!(
        "amqp-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ))?;
    let now = crate::now_rfc3339();
    for (i, m) in messages.iter().enumerate() {
        // Named `<generated_at>-<id>.json`: sorted, they go out in event order. A message
        // without one (Greenwave's decision) goes after what was spooled before, and after
        // the ones before it in this batch (its place in the batch follows the time).
        let stamp = match m.body["generated_at"].as_str() {
            Some(at) => at.to_string(),
            None => format!("{now}{i:04}"),
        };
        let at: String = stamp
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let file = dir.join(format!("{at}-{}.json", m.id));
        if file.exists() || store.delivered(&m.id, &target)? {
            continue;
        }
        let v = json!({"id": m.id, "topic": m.topic, "body": m.body});
        crate::files::write_atomic(&file, v.to_string().as_bytes())?;
    }
    let pending = crate::files::json_files(&dir)?;
    let mut out = Published::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scrub = |text: &str| crate::redact::scrub_credentials(text, url);
    let shown = plain.clone();
    let sent = std::cell::Cell::new(0usize);
    let session = async {
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| format!("{shown}: no answer within 10s"))?
        .map_err(|e| format!("{shown}: {}", scrub(&e.to_string())))?;
        let result: Result<(), String> = async {
            let ch = conn
                .create_channel()
                .await
                .map_err(|e| scrub(&e.to_string()))?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| scrub(&e.to_string()))?;
            for file in &pending {
                let Some(m) = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                else {
                    let _ = std::fs::remove_file(file);
                    continue;
                };
                let (Some(id), Some(topic)) = (m["id"].as_str(), m["topic"].as_str()) else {
                    continue;
                };
                let sent_at = chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S+00:00")
                    .to_string();
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_content_encoding("utf-8".into())
                    .with_delivery_mode(2)
                    .with_message_id(id.into())
                    .with_headers(header_table(id, &m["body"], &sent_at));
                let body = m["body"].to_string();
                let confirm = ch
                    .basic_publish(
                        "amq.topic".into(),
                        topic.into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        props,
                    )
                    .await
                    .map_err(|e| scrub(&e.to_string()))?;
                match tokio::time::timeout(Duration::from_secs(10), confirm).await {
                    Ok(Ok(Confirmation::Ack(_))) => {
                        store
                            .mark_delivered(id, &target)
                            .map_err(|e| e.to_string())?;
                        let _ = std::fs::remove_file(file);
                        sent.set(sent.get() + 1);
                    }
                    Ok(Ok(other)) => {
                        return Err(format!("the broker did not take {id}: {other:?}"))
                    }
                    Ok(Err(e)) => return Err(scrub(&e.to_string())),
                    Err(_) => return Err(format!("no confirmation for {id} within 10s")),
                }
            }
            Ok(())
        }
        .await;
        // Closed on every path, briefly: a broker that stalls does not hold us here.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "done".into())).await;
        result
    };
    // One deadline for the whole session: a broker that stalls after the handshake must not
    // hold up a stage, or the spool's lock, for longer than this.
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), session)
            .await
            .unwrap_or_else(|_| Err(format!("{shown}: the session took longer than 30s")))
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    out.sent = sent.get();
    if let Err(why) = result {
        out.unreachable = Some(scrub(&why));
    }
    out.spooled = crate::files::json_files(&dir)?.len();
    Ok(out)
}
