//! Push messages acted on. A message the watch cannot act on now (the repository is missing
//! or unreachable, the commit not there yet) is an ERROR, and it is kept in
//! `state/watch/pending/` before the broker is told it was taken: every later message run
//! tries the kept ones first, and one leaves the spool when it was acted on (emitted, found
//! already seen, or no longer for this pipeline). So an ERROR neither loses a push nor blocks
//! the queue behind it.
//!
//! The spool is bounded. A push is kept once, whatever message brought it (one file per
//! package, branch and commit: a redelivery or a second copy is not kept again). A package
//! keeps at most [`PER_PACKAGE`] messages: past that, its oldest kept message is dropped (one
//! of the same branch first), since a retry acts on the branch's head as it is then and the
//! newest push brings everything before it. The whole spool keeps at most [`TOTAL`]: past
//! that, the new message is not kept. Each of these is an ERROR naming the message dropped
//! or not kept and the limit, so nothing is lost silently.

use super::{message, poll, Change, Watcher};
use crate::progress;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// How long a message that cannot be acted on is kept and tried again.
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);

/// Messages kept at most for one package.
pub const PER_PACKAGE: usize = 16;

/// Messages kept at most in all.
pub const TOTAL: usize = 1000;

/// A kept message's file is read up to this size (the message itself is at most
/// [`message::MAX_BYTES`]); a bigger one is not fci's and is dropped.
const MAX_KEPT_FILE: u64 = 4 * message::MAX_BYTES;

/// Why a message could not be acted on now; `repo`: its package's repository could not be
/// reached (or read), which holds back the package's other kept messages in this pass.
struct Failed {
    why: String,
    repo: bool,
}

impl Watcher {
    fn pending_dir(&self) -> PathBuf {
        self.ws.state("watch/pending")
    }

    /// Acts on a message; on an ERROR keeps it for the next run (once: a redelivered or
    /// repeated message is the same kept file).
    pub fn take(
        &mut self,
        parsed: message::Parsed,
        raw: &[u8],
        env: &crate::bus::consume::Envelope,
    ) -> Result<()> {
        let push = match &parsed {
            message::Parsed::Push(p) => Some(p.clone()),
            message::Parsed::Ignored(_) => None,
        };
        let acted = self.act(parsed);
        // Only a push is ever not acted on (an ignored message is done).
        let Some(push) = push else {
            return acted.map(|_| ());
        };
        let why = match acted {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(failed)) => failed.why,
            // The manifest could not be written: the message is kept before the run stops,
            // so neither a `--message` job nor a later run loses it.
            Err(e) => {
                self.keep(&push, raw, env)?;
                return Err(e);
            }
        };
        self.error(&format!(
            "{why} (the message is kept in state/watch/pending: later message runs try it again for {} h)",
            KEEP_FOR.as_secs() / 3600
        ));
        self.keep(&push, raw, env)
    }

    /// Keeps a push's message in the spool, within its limits (see the module's text).
    fn keep(
        &mut self,
        push: &message::Push,
        raw: &[u8],
        env: &crate::bus::consume::Envelope,
    ) -> Result<()> {
        let dir = self.pending_dir();
        std::fs::create_dir_all(&dir)?;
        let h = |parts: &[&str], n: usize| {
            crate::digest::sha256_bytes(parts.join("\0").as_bytes())[..n].to_string()
        };
        let pkg = h(&[&push.package], 12);
        let branch = h(&[&push.package, &push.branch], 12);
        let key = h(&[&push.package, &push.branch, &push.rev], 16);
        // name: <arrival>-<package>-<branch>-<push>.json (hashes: names stay short and plain)
        let mut kept: Vec<String> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        kept.sort();
        if kept.iter().any(|n| n.ends_with(&format!("-{key}.json"))) {
            return Ok(());
        }
        let what = describe(push, env);
        if kept.len() >= TOTAL {
            self.error(&format!(
                "{what}: not kept: state/watch/pending already keeps {} messages (the limit is {TOTAL}); a later push or poll of {} {} brings its head",
                kept.len(),
                push.package,
                push.branch
            ));
            return Ok(());
        }
        let of_package: Vec<&String> = kept
            .iter()
            .filter(|n| n.contains(&format!("-{pkg}-")))
            .collect();
        if of_package.len() >= PER_PACKAGE {
            // The oldest of the same branch (the new push brings its head), else the oldest.
            let oldest = of_package
                .iter()
                .find(|n| n.contains(&format!("-{pkg}-{branch}-")))
                .unwrap_or(&of_package[0]);
            let file = dir.join(oldest);
            let old = read_kept(&file)
                .ok()
                .filter(|d| d.is_object())
                .map(|d| {
                    format!(
                        "{} {} {} (message id {})",
                        d["package"].as_str().unwrap_or("?"),
                        d["branch"].as_str().unwrap_or("?"),
                        d["rev"].as_str().unwrap_or("?"),
                        d["id"].as_str().unwrap_or("none")
                    )
                })
                .unwrap_or_else(|| oldest.to_string());
            std::fs::remove_file(&file)?;
            self.error(&format!(
                "{}: dropped the kept message of {old}: a package keeps at most {PER_PACKAGE} messages, and {what} is newer",
                push.package
            ));
        }
        let now = chrono::Utc::now();
        let doc = serde_json::json!({
            "kept_at": now.to_rfc3339(),
            "routing_key": env.routing_key,
            "message_id": env.message_id,
            "package": push.package,
            "branch": push.branch,
            "rev": push.rev,
            "id": push.id.as_deref().or(env.message_id.as_deref()),
            "message": String::from_utf8_lossy(raw),
        });
        // Named by arrival: kept messages are retried oldest first.
        let name = format!(
            "{}-{pkg}-{branch}-{key}.json",
            now.format("%Y%m%dT%H%M%S%.6f")
        );
        crate::files::write_atomic(&dir.join(name), doc.to_string().as_bytes())?;
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
        // A package whose repository could not be reached in this pass is not asked again
        // for each of its kept messages (a hung remote would cost its timeout once per
        // message). Any other failure is the message's own: the package's next kept message
        // is still tried (a bogus message must not hold back the real ones behind it).
        let mut unreachable: std::collections::HashSet<String> = Default::default();
        for file in files {
            let doc: serde_json::Value = read_kept(&file)?;
            let raw = doc["message"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            let env = crate::bus::consume::Envelope {
                routing_key: doc["routing_key"].as_str().map(str::to_string),
                message_id: doc["message_id"].as_str().map(str::to_string),
            };
            let kept_at = doc["kept_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let expired = kept_at.is_none_or(|t| {
                chrono::Utc::now()
                    .signed_duration_since(t)
                    .to_std()
                    .unwrap_or_default()
                    > KEEP_FOR
            });
            // Kept by an fci without the limit: over it, it is not acted on.
            if raw.len() as u64 > message::MAX_BYTES {
                self.error(&format!(
                    "dropped the kept message {}: {} bytes, over the limit of {} bytes (1 MiB) for a git.receive message",
                    file.display(),
                    raw.len(),
                    message::MAX_BYTES
                ));
                std::fs::remove_file(&file)?;
                continue;
            }
            let done = match message::parse(&raw, &env, &self.cfg) {
                // It parsed when it was kept; damaged since, it is nothing to act on.
                Err(why) => {
                    progress::note(&format!(
                        "watch: dropped a kept message that no longer reads ({}): {why}",
                        file.display()
                    ));
                    true
                }
                // Not asked again in this pass; one kept too long still leaves.
                Ok(message::Parsed::Push(p)) if unreachable.contains(&p.package) => {
                    if expired {
                        progress::note(&format!(
                            "watch: {}: a message kept since {} for {} {} (its repository cannot be reached): dropped now: kept too long",
                            p.package,
                            kept_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "?".into()),
                            p.branch,
                            p.rev
                        ));
                    }
                    expired
                }
                Ok(parsed) => match self.act(parsed.clone())? {
                    Ok(()) => true,
                    Err(Failed { why, repo }) => {
                        if let (message::Parsed::Push(p), true) = (&parsed, repo) {
                            unreachable.insert(p.package.clone());
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
    fn act(&mut self, parsed: message::Parsed) -> Result<Result<(), Failed>> {
        let push = match parsed {
            message::Parsed::Ignored(why) => {
                progress::note(&format!("watch: ignored a message: {why}"));
                return Ok(Ok(()));
            }
            message::Parsed::Push(p) => p,
        };
        let fail = |why: String| {
            Ok(Err(Failed {
                why: format!("{}: {why}", push.package),
                repo: false,
            }))
        };
        let (repo, loc, head) = match poll::read_one(self, &push.package, &push.branch) {
            Ok(x) => x,
            Err(why) => {
                return Ok(Err(Failed {
                    why: format!("{}: {why}", push.package),
                    repo: true,
                }))
            }
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
        self.emit_push(push, loc, range)
    }

    /// The change a push made (its commits `range` on the branch of the repository at
    /// `loc`) emitted, with the message as its trigger. `Ok(Err(why))`: it could not be.
    fn emit_push(
        &mut self,
        push: message::Push,
        loc: String,
        range: super::git::Range,
    ) -> Result<Result<(), Failed>> {
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
            Some(why) => Err(Failed { why, repo: false }),
            None => Ok(()),
        })
    }
}

/// A push's message in one line: package, branch, commit and message id.
fn describe(push: &message::Push, env: &crate::bus::consume::Envelope) -> String {
    format!(
        "the message of {} {} {} (message id {})",
        push.package,
        push.branch,
        push.rev,
        push.id
            .as_deref()
            .or(env.message_id.as_deref())
            .unwrap_or("none")
    )
}

/// A kept message's file; one too big to be fci's, or not JSON, reads as nothing (dropped).
fn read_kept(file: &std::path::Path) -> Result<serde_json::Value> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?
        .take(MAX_KEPT_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEPT_FILE {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}
