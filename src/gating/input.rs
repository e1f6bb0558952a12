//! The files gating reads: a gating.yaml, results and waivers lists, each read up to its cap
//! (also a FIFO or a device, whose size says nothing), bad input naming the file.

use crate::error::FciError;
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

/// A file given to gating or the report, up to its cap.
pub fn read(p: &Path) -> Result<String> {
    let f = std::fs::File::open(p).map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    let bytes = crate::caps::read_all(f, crate::caps::REPORT_INPUT)
        .map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    Ok(String::from_utf8(bytes).map_err(|_| FciError::input(p, "cannot read: not UTF-8"))?)
}

/// The items of a JSON list file, each read by `from`; bad input naming the file otherwise.
pub fn items<T>(p: &Path, from: fn(&Value) -> Result<T, String>) -> Result<Vec<T>> {
    list(p)?
        .iter()
        .map(from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FciError::input(p, e).into())
}

fn list(p: &Path) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(&read(p)?) {
        Ok(Value::Array(items)) => Ok(items),
        // `GET /results` answers `{"data": [...], ...}`: take its data.
        Ok(Value::Object(o)) if o.get("data").is_some_and(Value::is_array) => {
            Ok(o["data"].as_array().cloned().unwrap_or_default())
        }
        Ok(_) => Err(FciError::input(p, "expected a JSON list").into()),
        Err(e) => Err(FciError::input(p, format!("not JSON: {e}")).into()),
    }
}
