//! Push messages acted on. A message the watch cannot act on now (the repository is missing
//! or unreachable, the commit not there yet) is an ERROR, and it is kept in
//! `state/watch/pending/` before the broker is told it was taken: every later message run
//! tries the kept ones first, and one leaves the spool when it was acted on (emitted, found
//! already seen, or no longer for this pipeline). So an ERROR neither loses a push nor blocks
//! the queue behind it.

use super::{message, poll, Change, Watcher};
use crate::progress;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// How long a message that cannot be acted on is kept and tried again.
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);

impl Watcher {
    fn pending_dir(&self) -> PathBuf {
        self.ws.root().join("state/watch/pending")
    }

    /// Acts on a message; on an ERROR keeps it for the next run (once: a redelivered or
    /// repeated message is the same kept file).
    pub fn take(
        &mut self,
        parsed: message::Parsed,
        raw: &[u8],
        env: &message::Envelope,
    ) -> Result<()> {
        let acted = self.act(parsed);
        let why = match acted {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(why)) => why,
            // The manifest could not be written: the message is kept before the run stops,
            // so neither a `--message` job nor a later run loses it.
            Err(e) => {
                self.keep(raw, env)?;
                return Err(e);
            }
        };
        self.error(&format!(
            "{why} (the message is kept in state/watch/pending: later message runs try it again for {} h)",
            KEEP_FOR.as_secs() / 3600
        ));
        self.keep(raw, env)
    }

    fn keep(&self, raw: &[u8], env: &message::Envelope) -> Result<()> {
        let dir = self.pending_dir();
        std::fs::create_dir_all(&dir)?;
        let hash = &crate::digest::sha256_bytes(raw)[..16];
        let kept = std::fs::read_dir(&dir)?.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{hash}.json"))
        });
        if !kept {
            let now = chrono::Utc::now();
            let doc = serde_json::json!({
                "kept_at": now.to_rfc3339(),
                "routing_key": env.routing_key,
                "message_id": env.message_id,
                "message": String::from_utf8_lossy(raw),
            });
            // Named by arrival: kept messages are retried oldest first.
            let name = format!("{}-{hash}.json", now.format("%Y%m%dT%H%M%S%.6f"));
            crate::workspace::write_atomic(&dir.join(name), doc.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// Tries the kept messages again, oldest first. One that still cannot be acted on after
    /// [`KEEP_FOR`] is dropped, saying so: its commit never reached the branch (rewritten
    /// away, or a wrong message), and a later push or poll brings the branch's head anyway.
    pub fn retry_pending(&mut self) -> Result<()> {
        let dir = self.pending_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        // A package whose repository failed in this pass is not asked again for each of its
        // kept messages (a hung remote would cost its timeout once per message).
        let mut failed: std::collections::HashSet<String> = Default::default();
        for file in files {
            let doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file)?).unwrap_or_default();
            let raw = doc["message"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            let env = message::Envelope {
                routing_key: doc["routing_key"].as_str().map(str::to_string),
                message_id: doc["message_id"].as_str().map(str::to_string),
            };
            let kept_at = doc["kept_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let done = match message::parse(&raw, &env, &self.cfg) {
                // It parsed when it was kept; damaged since, it is nothing to act on.
                Err(why) => {
                    progress::note(&format!(
                        "watch: dropped a kept message that no longer reads ({}): {why}",
                        file.display()
                    ));
                    true
                }
                Ok(message::Parsed::Push(p)) if failed.contains(&p.package) => false,
                Ok(parsed) => match self.act(parsed.clone())? {
                    Ok(()) => true,
                    Err(why) => {
                        let expired = kept_at.is_none_or(|t| {
                            chrono::Utc::now()
                                .signed_duration_since(t)
                                .to_std()
                                .unwrap_or_default()
                                > KEEP_FOR
                        });
                        if let message::Parsed::Push(p) = &parsed {
                            failed.insert(p.package.clone());
                        }
                        // It was an ERROR when it came; its retries are notes, so one kept
                        // message does not make every later run fail.
                        progress::note(&format!(
                            "watch: {why} (a message kept since {}; {})",
                            kept_at
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_else(|| "?".into()),
                            if expired {
                                "dropped now: kept too long"
                            } else {
                                "kept again"
                            }
                        ));
                        expired
                    }
                },
            };
            if done {
                std::fs::remove_file(&file)?;
            }
        }
        Ok(())
    }

    /// Acts on one push: the branch's head now (the newest commit, whichever message of a
    /// push arrives first) against the head last seen. `Ok(Err(why))` is an ERROR of this
    /// message alone; `Err` stops the run (the output could not be written).
    fn act(&mut self, parsed: message::Parsed) -> Result<Result<(), String>> {
        let push = match parsed {
            message::Parsed::Ignored(why) => {
                progress::note(&format!("watch: ignored a message: {why}"));
                return Ok(Ok(()));
            }
            message::Parsed::Push(p) => p,
        };
        let fail = |why: String| Ok(Err(format!("{}: {why}", push.package)));
        let (repo, loc, head) = match poll::read_one(self, &push.package, &push.branch) {
            Ok(x) => x,
            Err(why) => return fail(why),
        };
        if !repo.has_commit(&push.rev) {
            return fail(format!(
                "the message names commit {} on {}, which the dist-git repository does not have (yet)",
                push.rev, push.branch
            ));
        }
        let Some(head) = head else {
            return fail(format!(
                "branch {} does not exist in the dist-git repository",
                push.branch
            ));
        };
        match repo.contains(&head, &push.rev) {
            Ok(true) => {}
            // In the repository but not on the branch, and the branch has not moved since it
            // was last seen: the branch's ref may not have caught up yet (a lagging replica).
            Ok(false)
                if self
                    .heads
                    .get(&push.package, &push.branch)
                    .is_none_or(|seen| seen == head) =>
            {
                return fail(format!(
                    "commit {} is not on {} (yet): the branch is still at {}",
                    push.rev, push.branch, head
                ));
            }
            Ok(false) => {
                progress::note(&format!(
                    "watch: ignored a message: {} {} is not on {} (rewritten since, or the message is wrong)",
                    push.package,
                    &push.rev[..12],
                    push.branch
                ));
                return Ok(Ok(()));
            }
            Err(why) => return fail(why),
        }
        // A head a first poll only recorded was never emitted: this push still makes a run.
        let seen = self
            .heads
            .get(&push.package, &push.branch)
            .map(str::to_string);
        let first_sight = self.heads.first_sight(&push.package, &push.branch);
        let old = seen.filter(|s| !(first_sight && *s == head));
        if old.as_deref() == Some(head.as_str()) {
            progress::note(&format!(
                "watch: {} {} on {}: already seen",
                push.package,
                &push.rev[..12],
                push.branch
            ));
            return Ok(Ok(()));
        }
        let range = match repo.range(old.as_deref(), &head) {
            Ok(r) => r,
            Err(why) => return fail(why),
        };
        let trigger = serde_json::json!({
            "kind": "message",
            "topic": push.topic,
            "message_id": push.id,
            "rev": push.rev,
            "username": push.username,
            "agent": push.agent,
        });
        let change = Change {
            package: push.package,
            branch: push.branch,
            repo: loc,
            range,
            trigger,
        };
        let failed = self.emit_all(vec![change], Vec::new())?;
        Ok(match failed.into_iter().next() {
            Some(why) => Err(why),
            None => Ok(()),
        })
    }
}
