//! Results to a remote ResultsDB, exactly once: each result is first spooled in the workspace
//! (`spool/resultsdb/<server>/<fci result id>.json`), then delivered — unless the server has it
//! already (a crash between its POST and the spool's removal must not post it twice) — and
//! only then removed from the spool. Whatever cannot be delivered now stays spooled, and the
//! next report delivers it first. A result the server refuses (4xx) moves to `rejected/`.

use super::client::{Client, Failure};
use super::store::Store;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Default, Debug)]
pub struct Delivery {
    pub delivered: usize,
    pub already_there: usize,
    pub spooled: usize,
    pub rejected: Vec<String>,
    /// ERROR results the server has no outcome for (never reported as failures).
    pub not_reportable: usize,
    pub unreachable: Option<String>,
}

impl Delivery {
    pub fn to_json(&self) -> Value {
        json!({
            "delivered": self.delivered,
            "already_there": self.already_there,
            "spooled": self.spooled,
            "rejected": self.rejected,
            "not_reportable": self.not_reportable,
        })
    }
}

/// The spool of one server (by its API root, without credentials).
fn spool_dir(ws: &Workspace, target: &str) -> PathBuf {
    let key = &crate::digest::sha256_bytes(target.as_bytes())[..16];
    ws.spool("resultsdb").join(key)
}

fn id_of(r: &Value) -> Option<String> {
    match r.pointer("/data/fci_result_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first()?.as_str().map(String::from),
        _ => None,
    }
}

/// What became of one spooled result.
enum Outcome {
    Delivered(String),
    AlreadyThere(String),
    NotReportable,
    Rejected(String),
    Unreachable(String),
    Skipped,
}

/// Delivers one spooled result and updates the spool: removed once the server has it, moved
/// to `rejected/` when refused, left when the server cannot be reached.
fn deliver_one(
    client: &Client,
    outcomes: &[String],
    dir: &std::path::Path,
    file: &std::path::Path,
) -> Outcome {
    let rejected = |name: String| {
        let _ = std::fs::rename(file, dir.join("rejected").join(name));
    };
    let mut r: Value = match std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(v) => v,
        None => {
            rejected(
                file.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            return Outcome::Rejected(format!("{}: not a result", file.display()));
        }
    };
    let Some(id) = id_of(&r) else {
        return Outcome::Skipped;
    };
    // An infrastructure error is never a test failure: ERROR where the server has it, else
    // its crash outcome, else not reported.
    if r["outcome"] == "ERROR" && !outcomes.iter().any(|o| o == "ERROR") {
        if outcomes.iter().any(|o| o == "CRASHED") {
            r["outcome"] = json!("CRASHED");
        } else {
            let _ = std::fs::remove_file(file);
            return Outcome::NotReportable;
        }
    }
    // A lookup that fails is retried; a POST is sent at most once per run: after a timeout, a
    // 5xx or an answer without an id it may still be stored (even later), so the result
    // stays spooled and the next report looks it up before anything is posted again.
    let mut done = Err(Failure::Unreachable("not tried".into()));
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(300 << attempt));
        }
        done = match client.has(&id) {
            Ok(true) => Ok(true),
            Ok(false) => {
                done = client.post(&r).map(|_| false);
                break;
            }
            Err(f) => Err(f),
        };
        if !matches!(done, Err(Failure::Unreachable(_))) {
            break;
        }
    }
    match done {
        Ok(already) => {
            let _ = std::fs::remove_file(file);
            if already {
                Outcome::AlreadyThere(id)
            } else {
                Outcome::Delivered(id)
            }
        }
        Err(Failure::Rejected(why)) => {
            rejected(format!("{id}.json"));
            Outcome::Rejected(format!("{id}: {why}"))
        }
        Err(Failure::Unreachable(why)) => Outcome::Unreachable(why),
    }
}

pub fn deliver(
    ws: &Workspace,
    store: &Store,
    url: &str,
    token: Option<String>,
    results: &[Value],
    jobs: usize,
) -> Result<Delivery> {
    let client = Client::new(url, token)?;
    let target = client.target();
    let target = target.as_str();
    let dir = spool_dir(ws, target);
    std::fs::create_dir_all(dir.join("rejected"))?;
    let _lock = ws.lock(&format!(
        "resultsdb-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ))?;
    for r in results {
        let Some(id) = id_of(r) else { continue };
        let file = dir.join(format!("{id}.json"));
        if !store.delivered(&id, target)? && !file.exists() {
            crate::files::write_atomic(&file, r.to_string().as_bytes())?;
        }
    }
    let mut d = Delivery::default();
    let pending = || crate::files::json_files(&dir);
    let outcomes = match client.outcomes() {
        Ok(o) => o,
        Err(f) => {
            d.unreachable = Some(f.to_string());
            d.spooled = pending()?.len();
            return Ok(d);
        }
    };
    // Bounded concurrency: `jobs` workers take spooled results in order; the first one that
    // cannot reach the server stops them all (the rest stays spooled).
    let files = pending()?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<Outcome>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (client, files, next, stop, outcomes, dir) =
                (&client, &files, &next, &stop, &outcomes, &dir);
            scope.spawn(move || {
                use std::sync::atomic::Ordering;
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let o = deliver_one(client, outcomes, dir, file);
                    if matches!(o, Outcome::Unreachable(_)) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let _ = tx.send(o);
                }
            });
        }
        drop(tx);
    });
    for o in rx {
        match o {
            Outcome::Delivered(id) => {
                d.delivered += 1;
                store.mark_delivered(&id, target)?;
            }
            Outcome::AlreadyThere(id) => {
                d.already_there += 1;
                store.mark_delivered(&id, target)?;
            }
            Outcome::NotReportable => d.not_reportable += 1,
            Outcome::Rejected(why) => d.rejected.push(why),
            Outcome::Unreachable(why) => d.unreachable = Some(why),
            Outcome::Skipped => {}
        }
    }
    d.spooled = pending()?.len();
    Ok(d)
}
