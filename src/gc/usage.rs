//! Disk use, as `du` counts it: allocated blocks, each inode once (a repository's files are
//! hard links into `objects/`), on the directory's own file system (a running stage's
//! scratch volume is not the workspace's).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes and files below the given paths, counted once across them.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
}

pub struct Counter {
    seen: HashSet<(u64, u64)>,
    pub total: Usage,
}

impl Counter {
    pub fn new() -> Counter {
        Counter {
            seen: HashSet::new(),
            total: Usage::default(),
        }
    }

    /// Adds what is below `p`; returns what it added.
    pub fn add(&mut self, p: &Path) -> Usage {
        let before = self.total;
        if let Ok(m) = std::fs::symlink_metadata(p) {
            self.walk(p, &m, m.dev());
        }
        Usage {
            bytes: self.total.bytes - before.bytes,
            files: self.total.files - before.files,
        }
    }

    fn walk(&mut self, p: &Path, m: &std::fs::Metadata, dev: u64) {
        if m.dev() != dev || !self.seen.insert((m.dev(), m.ino())) {
            return;
        }
        self.total.bytes += m.blocks() * 512;
        if !m.is_dir() {
            self.total.files += 1;
            return;
        }
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if let Ok(em) = e.metadata() {
                self.walk(&e.path(), &em, dev);
            }
        }
    }
}

/// Bytes as people read them: `812 KiB`, `3.4 GiB`.
pub fn shown(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
