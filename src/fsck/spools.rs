//! The delivery spools (`spool/resultsdb/<server>/`, `spool/amqp/<broker>/`, and their
//! `rejected/`): every spooled entry parses. fci writes each by rename, so a half-written
//! one is damage (the delivery would drop it), never a crash's debris.

use super::{cache::json_parses, Findings};
use crate::workspace::Workspace;
use anyhow::Result;

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    for e in walkdir::WalkDir::new(ws.spool("")).min_depth(1) {
        let e = match e {
            Ok(e) => e,
            Err(err)
                if err
                    .io_error()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
            {
                continue
            }
            Err(err) => {
                return Err(crate::error::FciError::Infra(format!(
                    "cannot list {}: {err}",
                    ws.spool("").display()
                ))
                .into())
            }
        };
        let n = e.file_name().to_string_lossy();
        if e.file_type().is_file() && n.ends_with(".json") && !n.starts_with(".tmp") {
            if let Some(v) = json_parses(e.path(), f) {
                if !v.is_object() {
                    f.damage(e.path(), "a spooled entry is a JSON object");
                }
            }
        }
    }
    Ok(())
}
