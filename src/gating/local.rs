//! The workspace's own waivers (`waivers/waivers.json`, oldest first, WaiverDB's data model):
//! what `fci gating waive` stores and every later decision in the workspace reads, and what
//! the WaiverDB spool compares with (apart from both, so neither imports the other).

use crate::error::FciError;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::Value;

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

pub fn save(ws: &Workspace, list: &[Value]) -> Result<()> {
    let p = ws.waivers();
    std::fs::create_dir_all(p.parent().expect("waivers has a directory"))?;
    crate::files::write_atomic(&p, serde_json::to_string_pretty(list)?.as_bytes())
}
