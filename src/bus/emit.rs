//! The messages every stage sends as it runs: `running` when it starts its work (not the
//! build, whose artifact exists only at its end), `complete` or `error` when its record is
//! final, to the workspace's journal, and to the AMQP broker named
//! by `FCI_AMQP_URL` when that is set (what it does not confirm stays spooled). `fci report`
//! sends the same messages (same ids) for runs whose stages did not: nothing is sent twice.
//! A message that cannot be sent never fails the stage.

use super::messages::{self, Context, Message};
use crate::manifest::{Manifest, Outcome, StageName, StageRecord};
use crate::workspace::Workspace;

/// The start of `stage` (its record does not exist yet: one with what its final record will
/// say of its start: its name, start time and job URL; the `running` message reads no more).
pub fn started(ws: &Workspace, m: &Manifest, stage: StageName, started_at: &str) {
    // The build's artifact (component, NVR) and the compose's (its commit) exist only once
    // they ended: they send no `running`.
    if matches!(
        stage,
        StageName::Report | StageName::Build | StageName::Compose
    ) {
        return;
    }
    let mut rec = crate::manifest::StageRecord::instant(stage, Outcome::Passed, String::new());
    rec.started = started_at.to_string();
    rec.notes.clear();
    send(ws, m, &rec, true);
}

/// The end of a stage: its final record.
pub fn ended(ws: &Workspace, m: &Manifest, rec: &StageRecord) {
    if rec.is(StageName::Report) || rec.outcome == Outcome::Skipped {
        return;
    }
    send(ws, m, rec, false);
}

fn send(ws: &Workspace, m: &Manifest, rec: &StageRecord, start: bool) {
    let cx = Context::of(m);
    let msgs: Vec<Message> = messages::for_record(m, rec, &cx)
        .into_iter()
        .filter(|msg| msg.topic.ends_with(".running") == start)
        .collect();
    if msgs.is_empty() {
        return;
    }
    if let Err(e) = super::journal::publish(ws, &msgs) {
        crate::progress::note(&format!("warning: message journal: {e:#}"));
    }
    let Some(url) = std::env::var("FCI_AMQP_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return;
    };
    let sent = crate::resultsdb::store::Store::open(&ws.results_db())
        .and_then(|store| super::publish::publish(ws, &store, &url, &msgs));
    match sent {
        Ok(p) if p.unreachable.is_some() => crate::progress::note(&format!(
            "warning: AMQP broker: {}; {} messages spooled for later",
            p.unreachable.unwrap_or_default(),
            p.spooled
        )),
        Ok(_) => {}
        Err(e) => crate::progress::note(&format!(
            "warning: AMQP: {}",
            crate::redact::redact(&format!("{e:#}"))
        )),
    }
}
