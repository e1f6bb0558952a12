//! The embedded message bus: a JSON-lines journal in the workspace
//! (`messages/journal.jsonl`), one line per message as fedora-messaging would publish it
//! (topic, headers, body). The journal is its own record of what was sent: a message whose id
//! it holds is not written again, so publishing a run twice sends nothing twice. A message id
//! always means one body: a message whose id the journal holds with another body is not
//! written, and said (it would be a bug of fci: bodies are a function of the manifest).

use super::messages::Message;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

/// Appends the messages not in the journal yet; returns how many were new.
pub fn publish(ws: &Workspace, messages: &[Message]) -> Result<usize> {
    let p = ws.journal();
    std::fs::create_dir_all(p.parent().expect("the journal has a directory"))?;
    let _lock = ws.lock("messages")?;
    let bytes = std::fs::read(&p).unwrap_or_default();
    let whole = whole_lines(&bytes);
    if whole < bytes.len() {
        // A publish killed mid-append left a line without its end: cut it off, or the next
        // line would be glued to it and both lost. Its message is not in `seen`, so it is
        // written again below when this run publishes it.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(whole as u64))
            .with_context(|| format!("{}: cannot cut a torn last line", p.display()))?;
    }
    let seen: HashMap<String, Value> = String::from_utf8_lossy(&bytes[..whole])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|mut v| Some((v["id"].as_str()?.to_string(), v["body"].take())))
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .with_context(|| format!("{}: cannot open the message journal", p.display()))?;
    let now = crate::now_rfc3339();
    let mut new = 0;
    // All new lines in one buffer, written at once: `writeln!` per line would be several
    // writes, and a kill between two of them would tear a line.
    let mut out = Vec::new();
    for m in messages {
        if let Some(body) = seen.get(&m.id) {
            if *body != m.body {
                crate::progress::note(&format!(
                    "warning: message {} ({}) was journaled with another body: the journal keeps the first",
                    m.id, m.topic
                ));
            }
            continue;
        }
        let line = json!({"id": m.id, "topic": m.topic, "headers": super::headers(&m.id, &m.body, &now), "body": m.body});
        writeln!(out, "{line}")?;
        new += 1;
    }
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(new)
}

/// How many bytes of a journal are whole lines (up to and with its last newline): the rest is
/// a torn line an append cut short left.
pub fn whole_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_already_journaled_is_not_written_again_whatever_its_body() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let msg = |body: Value| Message {
            id: "id-1".into(),
            topic: "org.centos.prod.ci.koji-build.test.complete".into(),
            body,
        };
        assert_eq!(publish(&ws, &[msg(json!({"a": 1}))]).unwrap(), 1);
        assert_eq!(publish(&ws, &[msg(json!({"a": 1}))]).unwrap(), 0);
        // Another body under the same id: not written (said on stderr), the first stands.
        assert_eq!(publish(&ws, &[msg(json!({"a": 2}))]).unwrap(), 0);
        let text = std::fs::read_to_string(ws.journal()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains(r#""body":{"a":1}"#), "{text}");
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_its_message_written_whole() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let msg = |id: &str| Message {
            id: id.into(),
            topic: "org.centos.prod.ci.koji-build.test.complete".into(),
            body: json!({"id": id}),
        };
        publish(&ws, &[msg("id-1")]).unwrap();
        // A publish killed mid-append: half of id-2's line.
        let mut text = std::fs::read(ws.journal()).unwrap();
        text.extend_from_slice(br#"{"id":"id-2","top"#);
        std::fs::write(ws.journal(), &text).unwrap();
        assert_eq!(publish(&ws, &[msg("id-2")]).unwrap(), 1);
        let text = std::fs::read_to_string(ws.journal()).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids, ["id-1", "id-2"]);
        assert_eq!(whole_lines(text.as_bytes()), text.len());
    }
}
