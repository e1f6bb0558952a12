//! The registry of this process's mounted volumes, apart from the code that makes them (which
//! runs mkfs and mount through `crate::exec`): `crate::limits` and `crate::files` look a
//! directory up here, and `exec` watches commands through `limits`, so this part depends on
//! nothing of fci's but `caps`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The volumes of this process that are mounted: their directory and the scratch (of their
/// whole size) that is package code's. `crate::limits` looks a writable directory up here.
static MOUNTED: Mutex<Vec<Mounted>> = Mutex::new(Vec::new());

/// A volume of this process: where, package code's share of it, its whole size, and how many
/// bytes fci has copied out of it so far.
struct Mounted {
    dir: PathBuf,
    scratch: u64,
    size: u64,
    copied: u64,
}

/// A file fci does not copy out of a volume: one with holes (sparse: more bytes than it takes
/// on disk), whose copy would fill them on the host's disk, or one past what fci copies out
/// of a volume in all (hard links to one file under many names would each be copied).
/// Package code's doing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How many times its own size fci copies out of a volume at most: the packages go to the
/// object store and to the repository, each once.
const COPIED_OUT: u64 = 2;

pub(super) fn add(dir: &Path, scratch: u64, size: u64) {
    lock().push(Mounted {
        dir: dir.to_path_buf(),
        scratch,
        size,
        copied: 0,
    });
}

pub(super) fn remove(dir: &Path) {
    lock().retain(|m| m.dir != dir);
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Mounted>> {
    MOUNTED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The volume of this process that `path` lies on (its mountpoint is `path` or above it),
/// and its scratch share.
pub fn holding(path: &Path) -> Option<(PathBuf, u64)> {
    lock()
        .iter()
        .find(|m| path.starts_with(&m.dir))
        .map(|m| (m.dir.clone(), m.scratch))
}

/// Why the volume `path` lies on is full (no block or no inode left), if it is one and is.
pub fn full(path: &Path) -> Option<String> {
    let (dir, _) = holding(path)?;
    full_of(&rustix::fs::statvfs(&dir).ok()?)
}

/// Why a volume with the counts `s` is full, if it is.
pub fn full_of(s: &rustix::fs::StatVfs) -> Option<String> {
    if s.f_favail == 0 {
        Some(format!("no inode left: {} files", s.f_files - s.f_ffree))
    } else if s.f_bavail <= s.f_blocks / 100 {
        Some("no block left".into())
    } else {
        None
    }
}

/// Refuses to copy out `path` when it lies on a volume and has holes (its copy would fill
/// them on the host's disk), or when copying its `len` bytes would take what fci copied out
/// of that volume past `COPIED_OUT` times its size; else counts them.
pub fn charge_copy(path: &Path, meta: &std::fs::Metadata, len: u64) -> Result<(), Refused> {
    use std::os::unix::fs::MetadataExt;
    let mut all = lock();
    let Some(m) = all.iter_mut().find(|m| path.starts_with(&m.dir)) else {
        return Ok(());
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if meta.len() > meta.blocks().saturating_mul(512) {
        return Err(Refused(format!(
            "{name} is sparse ({} long, {} on disk): package code wrote it with holes, and fci copies no such file out of its scratch",
            crate::caps::human(meta.len()),
            crate::caps::human(meta.blocks() * 512)
        )));
    }
    let budget = m.size.saturating_mul(COPIED_OUT);
    if m.copied.saturating_add(len) > budget {
        return Err(Refused(format!(
            "{name} is not copied: what fci copied out of package code's scratch would pass {} ({COPIED_OUT} times its file system; the same file under many names?)",
            crate::caps::human(budget)
        )));
    }
    m.copied += len;
    Ok(())
}
