//! The message journal (`messages/journal.jsonl`): one JSON object per line. A last line
//! without its newline that does not parse is what a crash mid-append would leave: debris,
//! which the next publish (`bus::journal::publish`) and `--repair` cut off; any other line
//! that does not parse is damage.

use super::{Findings, Repair};
use crate::workspace::Workspace;
use anyhow::Result;
use std::path::Path;

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    let p = ws.journal();
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            f.damage(&p, format!("cannot read: {e}"));
            return Ok(());
        }
    };
    let whole = crate::bus::journal::whole_lines(&bytes);
    if whole < bytes.len() {
        f.debris(
            &p,
            format!(
                "a torn last line ({} bytes without a newline: an append cut short)",
                bytes.len() - whole
            ),
            Repair::Truncate(whole as u64),
        );
    }
    for (i, line) in bytes[..whole].split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) if v["id"].is_string() && v["topic"].is_string() => {}
            Ok(_) => f.damage(&p, format!("line {}: a message without id or topic", i + 1)),
            Err(e) => f.damage(&p, format!("line {}: does not parse: {e}", i + 1)),
        }
    }
    Ok(())
}

/// Cuts the journal back to its first `len` bytes, under the journal's lock (as a publish).
pub fn truncate(ws: &Workspace, p: &Path, len: u64) -> Result<()> {
    let _lock = ws.lock("messages")?;
    // Checked again under the lock: a publish may have cut it already.
    let bytes = std::fs::read(p)?;
    if crate::bus::journal::whole_lines(&bytes) as u64 == len && (bytes.len() as u64) > len {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)?
            .set_len(len)?;
    }
    Ok(())
}
