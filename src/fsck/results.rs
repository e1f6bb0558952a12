//! The results store (`results/results.sqlite`): SQLite's own `quick_check`. A crash
//! mid-transaction leaves a hot journal, which opening it rolls back (SQLite's recovery, not
//! debris fci must remove); what quick_check still finds is damage.

use super::Findings;
use crate::workspace::Workspace;
use anyhow::Result;
use rusqlite::{Connection, OpenFlags};

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    let p = ws.results_db();
    if !p.is_file() {
        return Ok(());
    }
    let conn = match Connection::open_with_flags(&p, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(c) => c,
        Err(e) => {
            f.damage(&p, format!("cannot be opened as SQLite: {e}"));
            return Ok(());
        }
    };
    // A report writing its results holds the database a moment: wait for it.
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let said: Result<Vec<String>, _> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
    match said {
        Ok(lines) if lines == ["ok"] => {}
        Ok(lines) => f.damage(&p, format!("SQLite quick_check: {}", lines.join("; "))),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            return Err(crate::error::FciError::Infra(format!(
                "{}: busy for 30s ({}): cannot check it",
                p.display(),
                msg.unwrap_or_default()
            ))
            .into())
        }
        Err(e) => f.damage(&p, format!("SQLite: {e}")),
    }
    Ok(())
}
