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

/// The spool of one server.
fn spool_dir(ws: &Workspace, url: &str) -> PathBuf {
    let key = &crate::digest::sha256_bytes(url.trim_end_matches('/').as_bytes())[..16];
    ws.root().join("spool/resultsdb").join(key)
}

fn id_of(r: &Value) -> Option<String> {
    match r.pointer("/data/fci_result_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first()?.as_str().map(String::from),
        _ => None,
    }
}

pub fn deliver(
    ws: &Workspace,
    store: &Store,
    url: &str,
    token: Option<String>,
    results: &[Value],
) -> Result<Delivery> {
    let dir = spool_dir(ws, url);
    std::fs::create_dir_all(dir.join("rejected"))?;
    let target = url.trim_end_matches('/');
    let _lock = ws.lock(&format!(
        "resultsdb-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ))?;
    for r in results {
        let Some(id) = id_of(r) else { continue };
        let file = dir.join(format!("{id}.json"));
        if !store.delivered(&id, target)? && !file.exists() {
            crate::workspace::write_atomic(&file, r.to_string().as_bytes())?;
        }
    }
    let mut d = Delivery::default();
    let pending = || -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        Ok(v)
    };
    let client = Client::new(url, token)?;
    let outcomes = match client.outcomes() {
        Ok(o) => o,
        Err(f) => {
            d.unreachable = Some(f.to_string());
            d.spooled = pending()?.len();
            return Ok(d);
        }
    };
    for file in pending()? {
        let mut r: Value = match std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(v) => v,
            None => {
                let _ = std::fs::rename(
                    &file,
                    dir.join("rejected")
                        .join(file.file_name().unwrap_or_default()),
                );
                continue;
            }
        };
        let Some(id) = id_of(&r) else { continue };
        // An infrastructure error is never a test failure: ERROR where the server has it,
        // else its crash outcome, else not reported.
        if r["outcome"] == "ERROR" && !outcomes.iter().any(|o| o == "ERROR") {
            if outcomes.iter().any(|o| o == "CRASHED") {
                r["outcome"] = json!("CRASHED");
            } else {
                d.not_reportable += 1;
                std::fs::remove_file(&file)?;
                continue;
            }
        }
        let done = match client.has(&id) {
            Ok(true) => {
                d.already_there += 1;
                Ok(())
            }
            Ok(false) => client.post(&r).map(|_| d.delivered += 1),
            Err(f) => Err(f),
        };
        match done {
            Ok(()) => {
                store.mark_delivered(&id, target)?;
                std::fs::remove_file(&file)?;
            }
            Err(Failure::Rejected(why)) => {
                d.rejected.push(format!("{id}: {why}"));
                std::fs::rename(&file, dir.join("rejected").join(format!("{id}.json")))?;
            }
            Err(Failure::Unreachable(why)) => {
                d.unreachable = Some(why);
                break;
            }
        }
    }
    d.spooled = pending()?.len();
    Ok(d)
}
