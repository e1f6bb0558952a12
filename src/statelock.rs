//! Locks on the pipeline's shared state (`--state DIR`, meant for a shared volume the way
//! Koji keeps /mnt/koji on NFS for its builders): open-file-description `fcntl` locks
//! (`F_OFD_SETLKW`). Unlike `flock(2)`, which NFS only emulates, these are byte-range locks that
//! NFSv4 carries to the server, so workers on other machines exclude one another; unlike
//! classic POSIX locks they belong to the open file, not the process, so a thread closing
//! another descriptor of the same file does not drop them. The lock file stays; the lock goes
//! with its holder (closed, exited or killed), so no lock outlives the process that held it.
//! Hand-written over libc: std's `File::lock` is `flock(2)`.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A held lock: released when dropped (the file is closed).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

fn whole_file_write_lock() -> libc::flock {
    whole_file(libc::F_WRLCK)
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain data; zero is a valid value of every field.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = 0;
    l.l_len = 0;
    l.l_pid = 0;
    l
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot make the lock's directory", dir.display()))?;
    }
    File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("{}: cannot open lock", path.display()))
}

/// Takes the lock at `path` if no other holder has it now.
pub fn try_lock(path: &Path) -> Result<Option<StateLock>> {
    try_kind(path, whole_file_write_lock())
}

fn try_kind(path: &Path, l: libc::flock) -> Result<Option<StateLock>> {
    let file = open(path)?;
    // SAFETY: fcntl with a valid descriptor and a pointer to a live flock.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &l) };
    if r == 0 {
        return Ok(Some(StateLock { _file: file }));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
        _ => Err(anyhow::Error::new(e).context(format!("{}: cannot take lock", path.display()))),
    }
}

/// Waits until the lock at `path` is this process's.
pub fn lock(path: &Path) -> Result<StateLock> {
    if let Some(l) = try_lock(path)? {
        return Ok(l);
    }
    wait(path, whole_file_write_lock())
}

/// Waits for the lock at `path` shared with other shared holders (readers of what an
/// exclusive holder changes: `fci compose` between its orphan commit and the ref that keeps
/// it, against `fci gc`'s `ostree prune`, which takes it exclusively).
pub fn lock_shared(path: &Path) -> Result<StateLock> {
    let l = whole_file(libc::F_RDLCK);
    if let Some(held) = try_kind(path, l)? {
        return Ok(held);
    }
    wait(path, l)
}

fn wait(path: &Path, l: libc::flock) -> Result<StateLock> {
    crate::progress::note(&format!(
        "waiting for {} (another fci run, here or on another worker, holds it)",
        path.display()
    ));
    let file = open(path)?;
    loop {
        // SAFETY: as above.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &l) };
        if r == 0 {
            return Ok(StateLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(
                anyhow::Error::new(e).context(format!("{}: cannot take lock", path.display()))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One holder at a time, across descriptors of one process too (OFD locks conflict
    /// between open files, unlike classic POSIX locks); free again once dropped.
    #[test]
    fn one_holder_at_a_time_and_free_once_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("locks/known-good-f41.lock");
        let held = try_lock(&p).unwrap().expect("free");
        assert!(try_lock(&p).unwrap().is_none());
        drop(held);
        let again = lock(&p).unwrap();
        assert!(try_lock(&p).unwrap().is_none());
        drop(again);
        assert!(p.exists(), "the lock file stays; the lock does not");
    }

    /// Shared holders coexist; the exclusive lock waits for all of them.
    #[test]
    fn shared_holders_keep_the_exclusive_one_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("locks/ostree-prune.lock");
        let a = lock_shared(&p).unwrap();
        let b = lock_shared(&p).unwrap();
        assert!(try_lock(&p).unwrap().is_none());
        drop(a);
        assert!(try_lock(&p).unwrap().is_none());
        drop(b);
        let alone = try_lock(&p)
            .unwrap()
            .expect("free once the shared holders are gone");
        drop(alone);
    }
}
