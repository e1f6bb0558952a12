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

impl Watcher {
    fn pending_dir(&self) -> PathBuf {
        self.ws.root().join("state/watch/pending")
    }

    /// Acts on a message; on an ERROR keeps `raw` for the next run.
    pub fn take(&mut self, parsed: message::Parsed, raw: &[u8]) -> Result<()> {
        if let Err(why) = self.act(parsed)? {
            self.error(&format!(
                "{why} (the message is kept in state/watch/pending: the next message run tries it again)"
            ));
            let dir = self.pending_dir();
            std::fs::create_dir_all(&dir)?;
            // Named by arrival, then content: kept messages are retried in order, once each.
            let name = format!(
                "{}-{}.json",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                &crate::digest::sha256_bytes(raw)[..16]
            );
            crate::workspace::write_atomic(&dir.join(name), raw)?;
        }
        Ok(())
    }

    /// Tries the kept messages again, oldest first.
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
        for file in files {
            let raw = std::fs::read(&file)?;
            let done = match message::parse(&raw, None, &self.cfg) {
                // It parsed when it was kept; edited since, it is nothing to act on.
                Err(_) => true,
                Ok(parsed) => match self.act(parsed)? {
                    Ok(()) => true,
                    Err(why) => {
                        self.error(&format!(
                            "{why} (a message kept from an earlier run; kept again)"
                        ));
                        false
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
        let old = self
            .heads
            .get(&push.package, &push.branch)
            .map(str::to_string);
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
