//! Facts about the host that only change when a file changes (a tool's version, the rpm
//! database's contents), memoised in the workspace so that each run does not pay a process
//! per fact. Keys embed the identity (path, size, mtime) of the files a fact depends on.

use crate::files::write_atomic;
use crate::workspace::Workspace;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

pub struct HostCache {
    path: PathBuf,
    map: Map<String, Value>,
    dirty: bool,
}

/// `path:size:mtime_ns` of a file, or None when it does not exist.
pub fn file_id(p: &Path) -> Option<String> {
    let m = std::fs::metadata(p).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(format!("{}:{}:{t}", p.display(), m.len()))
}

impl HostCache {
    pub fn open(ws: &Workspace) -> Self {
        let path = ws.cache("host.json");
        let map = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        HostCache {
            path,
            map,
            dirty: false,
        }
    }

    /// The cached value for `key`, computing and remembering it on a miss.
    pub fn get_or(
        &mut self,
        key: String,
        compute: impl FnOnce() -> Option<Value>,
    ) -> Option<Value> {
        if let Some(v) = self.map.get(&key) {
            return Some(v.clone());
        }
        let v = compute()?;
        self.map.insert(key, v.clone());
        self.dirty = true;
        Some(v)
    }

    /// `tool --version`, re-asked only when the tool's binary changes.
    pub fn version(&mut self, tool: &str) -> String {
        let id = crate::tool::which(tool).and_then(|p| file_id(&p.canonicalize().unwrap_or(p)));
        match id {
            Some(id) => self
                .get_or(format!("version2 {id}"), || {
                    Some(Value::String(crate::exec::version(tool)))
                })
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_else(|| "unknown".into()),
            None => "not installed".into(),
        }
    }

    pub fn save(&mut self) {
        if self.dirty {
            if let Ok(text) = serde_json::to_string(&self.map) {
                // A lost update only costs a recomputation next time.
                let _ = write_atomic(&self.path, text.as_bytes());
            }
            self.dirty = false;
        }
    }
}

impl Drop for HostCache {
    fn drop(&mut self) {
        self.save();
    }
}

/// Identity of what an rpmbuild on this host reads besides the package: the host's package
/// set (dpkg's and rpm's databases) and rpm's configuration (macro files, platform files).
pub fn build_env_identity() -> String {
    let mut files: Vec<PathBuf> = vec![
        PathBuf::from("/var/lib/dpkg/status"),
        PathBuf::from("/etc/rpmrc"),
    ];
    for dir in [
        "/usr/lib/rpm",
        "/usr/lib/rpm/macros.d",
        "/usr/lib/rpm/redhat",
        "/usr/lib/rpm/fileattrs",
        "/usr/lib/rpm/platform/x86_64-linux",
        "/etc/rpm",
    ] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    let ids: Vec<String> = files.iter().filter_map(|p| file_id(p)).collect();
    crate::digest::sha256_bytes(ids.join("\n").as_bytes())
}
