//! A file system of its own for package code's writable directory, so that the kernel bounds
//! its scratch: a sparse image file of the scratch size (plus what fci itself puts there),
//! made ext4 by `mkfs.ext4` and loop-mounted on the directory by `mount`. Package code that
//! fills it gets ENOSPC from the kernel, whatever it hides its files behind: deleted files held
//! open, descriptors in flight over a unix socket, mappings, paths deeper than PATH_MAX. The
//! watcher of `crate::limits` had to find each of those in /proc, and each review found one
//! more it missed; the file system's own count has no such gaps.
//!
//! It needs root, a loop device (`/dev/loop-control`), `mkfs.ext4` and `mount`; where any is
//! missing the directory stays a plain one, the watcher bounds it, and the stage record's
//! `data.limits.enforced_by` says which it was. Mounts are `nosuid,nodev`: package code runs
//! as root, and a device node it made there must not open the host's disks.

pub mod mounted;

use crate::exec::{Cmd, Log};
use anyhow::Result;
pub use mounted::{full, holding, Refused};
use std::path::{Path, PathBuf};

/// The programs, named in the log and in the stage record's tools.
pub const MKFS: crate::tool::Tool = crate::tool::Tool::new("mkfs.ext4", "e2fsprogs");

/// Gives this process (as root) a mount namespace of its own, whose mounts follow the host's
/// but are never seen there: the volumes fci mounts go with it however it ends (a SIGTERM, a
/// SIGKILL: the kernel unmounts them when the last process in the namespace is gone, and
/// their loop devices clear themselves). Must run before the process has threads (unshare of
/// the mount namespace needs the file system attributes unshared too); where it cannot (not
/// root, a kernel or container that refuses), mounts stay the host's and a killed fci's are
/// unmounted by the next run (`detach_below`).
pub fn private_mounts() {
    if !crate::users::is_root() {
        return;
    }
    // SAFETY: plain system calls on constant arguments; the process is single-threaded here.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) == 0 {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            );
        }
    }
}

/// A mounted volume: unmounted (lazily, so a straggler cannot keep it) and its image removed
/// when dropped.
#[derive(Debug)]
pub struct Volume {
    dir: PathBuf,
    image: PathBuf,
}

/// Why no volume can be made here (not root, no loop device, no mkfs.ext4), or None.
pub fn unsupported() -> Option<String> {
    if !crate::users::is_root() {
        return Some("fci is not root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop device (/dev/loop-control)".into());
    }
    if let Err(e) = MKFS.find() {
        return Some(e.to_string());
    }
    if let Err(e) = crate::tool::MOUNT.find() {
        return Some(e.to_string());
    }
    None
}

impl Volume {
    /// Makes `dir` (created here; it must not exist yet) the root of a fresh file system of
    /// `scratch + room` bytes, its image at `image`. `room` is for what fci itself puts there
    /// (the tests' copy of their tree). None, with the reason logged, where no volume can be
    /// made: the directory is then a plain one.
    pub fn make(
        dir: &Path,
        image: &Path,
        scratch: u64,
        room: u64,
        log: &mut Log,
    ) -> Result<Option<Volume>> {
        std::fs::create_dir(dir)?;
        if let Some(why) = unsupported() {
            log.line(&format!(
                "fci: {} is a plain directory, bounded by the watcher: {why}",
                dir.display()
            ));
            return Ok(None);
        }
        // Inode tables for a file per 4 KiB (a flood of empty files runs out of inodes when
        // it would have filled the blocks at a block each), which take a sixteenth: of the
        // room for fci's own copies too; and the rest of ext4's bookkeeping (bitmaps, group
        // descriptors: up to 3% on a small file system).
        let base = scratch.saturating_add(room);
        let size = base.saturating_add(base / 16).saturating_add(base / 32);
        let parent = image.parent().unwrap_or(Path::new("/"));
        if let Some(free) = free_bytes(parent) {
            if free < size {
                return Err(crate::error::FciError::Infra(format!(
                    "the workspace's file system has {} free, less than the {} package code may fill (its scratch limit and room for fci's copy): free some space or lower --max-scratch",
                    crate::caps::human(free),
                    crate::caps::human(size)
                ))
                .into());
            }
        }
        {
            let f = std::fs::File::create_new(image)?;
            // Sparse: the host's disk is used only as package code writes.
            f.set_len(size)?;
        }
        let mkfs = Cmd::new(MKFS.find()?)
            // No blocks reserved for root (package code runs as root); inode tables initialised
            // lazily and never by the kernel (noinit_itable): an 8 GiB volume is made, mounted
            // and unmounted in about 25 ms.
            .args(["-q", "-F", "-m", "0", "-i", "4096"])
            // No journal (scratch is thrown away), no blocks reserved for growing it (it never
            // grows): mkfs takes 10 ms instead of 35 at 8 GiB.
            .args(["-O", "^has_journal,^resize_inode"])
            .args(["-E", "nodiscard,lazy_itable_init=1"])
            .arg("--")
            .arg(image);
        let made = log.capture(&mkfs)?;
        let mounted = made.success()
            && log
                .capture(
                    &Cmd::new(crate::tool::MOUNT.find()?)
                        .args([
                            "-t",
                            "ext4",
                            "-o",
                            "loop,nosuid,nodev,noinit_itable,errors=remount-ro",
                        ])
                        .arg("--")
                        .arg(image)
                        .arg(dir),
                )?
                .success();
        if !mounted {
            let _ = std::fs::remove_file(image);
            log.line(&format!(
                "fci: {} is a plain directory, bounded by the watcher: its file system could not be made or mounted (see above)",
                dir.display()
            ));
            return Ok(None);
        }
        let v = Volume {
            dir: dir.to_path_buf(),
            image: image.to_path_buf(),
        };
        // mkfs's lost+found is nothing of the package's.
        let _ = std::fs::remove_dir(dir.join("lost+found"));
        mounted::add(dir, scratch, size);
        Ok(Some(v))
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        mounted::remove(&self.dir);
        detach(&self.dir);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Bytes the unprivileged may still write on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    rustix::fs::statvfs(dir)
        .ok()
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// Unmounts `dir` at once, even if something still holds it open (MNT_DETACH): the loop
/// device goes when the last holder does (mount's `loop` sets it to clear itself).
fn detach(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a valid NUL-terminated path; umount2 only reads it.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW);
    }
}

/// Unmounts every mount below `dir` (the scratch of a killed fci, about to be removed: its
/// removal would otherwise empty a volume and then stop at its mountpoint).
pub fn detach_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut below: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(dir))
        .collect();
    // The deepest first.
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in below {
        detach(&p);
    }
}

/// A mountinfo path: space, tab, newline and backslash are written as octal escapes.
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: &u8| (b'0'..=b'7').contains(c);
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(octal) {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read_back() {
        assert_eq!(unescape(r"/a\040b\134c"), PathBuf::from("/a b\\c"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }
}
