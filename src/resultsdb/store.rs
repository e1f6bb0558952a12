//! The workspace's own results database (SQLite, `results/results.sqlite`): ResultsDB's data
//! model — a result has a test case, an outcome, a note, a submit time and key → values data —
//! with fci's result id unique, so recording a result twice keeps one. It answers Greenwave's
//! question, the latest result per test case, scenario, architecture and variant for an item,
//! from an index.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use std::path::Path;

pub struct Store {
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fci_result_id TEXT NOT NULL UNIQUE,
    testcase TEXT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT,
    submit_time TEXT NOT NULL,
    item TEXT,
    type TEXT,
    scenario TEXT,
    system_architecture TEXT,
    system_variant TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_item ON results (item, type, testcase, id);
CREATE TABLE IF NOT EXISTS delivered (
    fci_result_id TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (fci_result_id, target)
);
";

/// The first value of a data key (lists and scalars alike).
fn first(data: &Map<String, Value>, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::Array(a) => a.first().and_then(|v| v.as_str()).map(String::from),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Connection::open(path)
            .with_context(|| format!("{}: cannot open the results database", path.display()))?;
        // Several fci processes may report into one workspace at once.
        db.busy_timeout(std::time::Duration::from_secs(30))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.execute_batch(SCHEMA)
            .with_context(|| format!("{}: not fci's results database", path.display()))?;
        Ok(Store { db })
    }

    /// Records a result (a `POST /results` body with `data.fci_result_id`); false when it was
    /// recorded before.
    pub fn record(&mut self, r: &Value) -> Result<bool> {
        insert(&self.db, r)
    }

    /// Records many results in one transaction; returns how many were new.
    pub fn record_all(&mut self, rs: &[Value]) -> Result<usize> {
        let tx = self.db.transaction()?;
        let mut new = 0;
        for r in rs {
            new += usize::from(insert(&tx, r)?);
        }
        tx.commit()?;
        Ok(new)
    }

    /// Notes that result `id` reached `target` (a remote ResultsDB), so it is not sent again.
    pub fn mark_delivered(&self, id: &str, target: &str) -> Result<()> {
        self.db.execute(
            "INSERT OR IGNORE INTO delivered (fci_result_id, target) VALUES (?1, ?2)",
            params![id, target],
        )?;
        Ok(())
    }

    pub fn delivered(&self, id: &str, target: &str) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM delivered WHERE fci_result_id = ?1 AND target = ?2",
                params![id, target],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Whether fci's result `id` is recorded.
    pub fn has(&self, id: &str) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM results WHERE fci_result_id = ?1",
                params![id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The item's results, oldest first, as `GET /results` items: for gating, which takes the
    /// latest per test case, scenario, architecture and variant.
    /// `rs` as they are (not as the store holds them), each with the `id` the store gave the
    /// result of its `fci_result_id` (null when it has none): a run's own results, for a
    /// decision on them alone.
    pub fn with_row_ids(&self, rs: &[Value]) -> Result<Vec<Value>> {
        let mut q = self
            .db
            .prepare("SELECT id FROM results WHERE fci_result_id = ?1")?;
        rs.iter()
            .map(|r| {
                let fid = r
                    .get("data")
                    .and_then(Value::as_object)
                    .and_then(|d| first(d, "fci_result_id"));
                let id = match fid {
                    Some(f) => q
                        .query_row(params![f], |row| row.get::<_, i64>(0))
                        .optional()?,
                    None => None,
                };
                let mut r = r.clone();
                r["id"] = json!(id);
                Ok(r)
            })
            .collect()
    }

    /// The subject's results (of its type or an alias of it: a `brew-build` result is a
    /// `koji_build` subject's, as Greenwave finds it), oldest first.
    pub fn results_for(&self, item: &str, ty: &str) -> Result<Vec<Value>> {
        let mut q = self.db.prepare(
            "SELECT id, testcase, outcome, note, submit_time, data FROM results
             WHERE item = ?1 ORDER BY submit_time, id",
        )?;
        let rows = q.query_map(params![item], |row| {
            let data: String = row.get(5)?;
            Ok(json!({
                "id": row.get::<_, i64>(0)?,
                "testcase": {"name": row.get::<_, String>(1)?},
                "outcome": row.get::<_, String>(2)?,
                "note": row.get::<_, Option<String>>(3)?,
                "submit_time": row.get::<_, String>(4)?,
                "data": as_lists(serde_json::from_str(&data).unwrap_or_default()),
            }))
        })?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.retain(|r| {
            crate::gating::decision::TestResult::from_json(r).is_ok_and(|t| t.is_about(ty, item))
        });
        Ok(out)
    }
}

fn insert(db: &Connection, r: &Value) -> Result<bool> {
    let data = r
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let id = first(&data, "fci_result_id").context("a result without fci_result_id")?;
    let testcase = r
        .pointer("/testcase/name")
        .or_else(|| r.get("testcase"))
        .and_then(Value::as_str)
        .context("a result without a test case")?;
    let n = db.execute(
        "INSERT OR IGNORE INTO results (fci_result_id, testcase, outcome, note, submit_time,
             item, type, scenario, system_architecture, system_variant, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            testcase,
            r.get("outcome").and_then(Value::as_str).unwrap_or_default(),
            r.get("note").and_then(Value::as_str),
            r.get("submit_time")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            first(&data, "item"),
            first(&data, "type"),
            first(&data, "scenario"),
            first(&data, "system_architecture"),
            first(&data, "system_variant"),
            Value::Object(data.clone()).to_string(),
        ],
    )?;
    Ok(n == 1)
}

/// ResultsDB answers every data value as a list of strings.
fn as_lists(data: Map<String, Value>) -> Value {
    Value::Object(
        data.into_iter()
            .map(|(k, v)| {
                let list = match v {
                    Value::Array(a) => a,
                    Value::String(s) => vec![Value::String(s)],
                    other => vec![Value::String(other.to_string())],
                };
                (k, Value::Array(list))
            })
            .collect(),
    )
}
