//! `fci gating waive TESTCASE`: a waiver in WaiverDB's data model, stored in the workspace
//! (`waivers/waivers.json`, oldest first) and used by every later decision there. `--revoke`
//! records `waived: false`, which revokes the waivers before it. A waiver is only for a
//! subject the workspace has results for: a typo would otherwise waive nothing, silently.

use super::args::WaiveArgs;
use crate::error::FciError;
use crate::resultsdb::store::Store;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;

/// The workspace's waivers, oldest first.
pub fn load(ws: &Workspace) -> Result<Vec<Value>> {
    let p = ws.waivers();
    match std::fs::read_to_string(&p) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(Value::Array(list)) => Ok(list),
            // The workspace's file, not the caller's input: the host's error (exit 3).
            _ => Err(FciError::Infra(format!(
                "{}: not a JSON list of waivers (the workspace's waivers are damaged)",
                p.display()
            ))
            .into()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FciError::Infra(format!("{}: cannot read: {e}", p.display())).into()),
    }
}

/// Records the waiver and prints it; 0, or bad usage when the workspace has no results for
/// the subject.
pub fn exec(args: &WaiveArgs, workspace: &Path) -> Result<i32> {
    let (subject, pv) = (
        &args.subject.subject_identifier,
        &args.subject.product_version,
    );
    let comment = Some(args.comment.as_str())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| FciError::Usage("a waiver needs a --comment saying why".into()))?;
    let ws = Workspace::open(workspace)?;
    let store = Store::open(&ws.results_db())?;
    if store
        .results_for(subject, &args.subject.subject_type)?
        .is_empty()
    {
        return Err(FciError::Usage(format!(
            "no results for {} {subject} in this workspace: nothing to waive (a typo?)",
            args.subject.subject_type
        ))
        .into());
    }
    let _lock = ws.lock("waivers")?;
    let mut list = load(&ws)?;
    let username = args
        .username
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let waiver = json!({
        "id": list.len() + 1,
        "subject_type": args.subject.subject_type,
        "subject_identifier": subject,
        "testcase": args.testcase,
        "scenario": args.scenario,
        "waived": !args.revoke,
        "product_version": pv,
        "comment": comment,
        "username": username,
        "proxied_by": Value::Null,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    });
    list.push(waiver.clone());
    let p = ws.waivers();
    std::fs::create_dir_all(p.parent().expect("waivers has a directory"))?;
    crate::files::write_atomic(&p, serde_json::to_string_pretty(&list)?.as_bytes())?;
    crate::files::to_stdout(format!("{}\n", serde_json::to_string_pretty(&waiver)?).as_bytes())?;
    Ok(0)
}
