//! General file helpers, for the workspace and the manifest alike: atomic writes
//! ([`write_atomic`]), writing an output the user named ([`write_output`], through
//! [`resolve_user_path`]), real-directory and ownership checks, and plain copies out of
//! package code's reach.

use crate::error::FciError;
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory whose content decides a verdict (the shared OSTree repository, with the
/// known-good refs) is trusted only when no other user can replace it: it and every directory
/// above it belong to the caller or root, and none is writable by others unless sticky (as
/// /tmp is). Otherwise another user could swap in a base with anything in it.
pub fn only_yours(dir: &Path, what: &str) -> Result<(), FciError> {
    use std::os::unix::fs::MetadataExt;
    for d in dir.ancestors() {
        let Ok(m) = fs::metadata(d) else {
            continue; // not made yet: fci makes it, as the caller
        };
        let open = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if !crate::users::trusted_owner(m.uid()) || open {
            let why = if open {
                "is writable by other users".to_string()
            } else {
                format!("belongs to uid {}", m.uid())
            };
            return Err(FciError::Usage(format!(
                "{what} {}: {} {why}, who could replace what it holds: refusing it",
                dir.display(),
                d.display()
            )));
        }
    }
    Ok(())
}

/// Whether `dir` is `base` or a directory below it reached through real directories only:
/// after a run, package code may have swapped a directory fci reads for a symlink to one it
/// could not see (fci reads as root, outside the sandbox).
pub fn real_dir_below(base: &Path, dir: &Path) -> bool {
    let Ok(rel) = dir.strip_prefix(base) else {
        return false;
    };
    let mut p = base.to_path_buf();
    for c in std::iter::once(std::path::Component::CurDir).chain(rel.components()) {
        if let std::path::Component::Normal(n) = c {
            p.push(n);
        } else if !matches!(c, std::path::Component::CurDir) {
            return false;
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_dir() => {}
            _ => return false,
        }
    }
    true
}

/// The `*.json` files of `dir` (a spool), sorted by name.
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    Ok(v)
}

/// Writes fci's own embedded files (roles, macros) below `dir`, only where they differ.
pub fn install_files(dir: &Path, files: &[(&str, &str)]) -> Result<()> {
    for (rel, text) in files {
        let p = dir.join(rel);
        if fs::read_to_string(&p).ok().as_deref() != Some(*text) {
            fs::create_dir_all(p.parent().unwrap_or(dir))?;
            write_atomic(&p, text.as_bytes())?;
        }
    }
    Ok(())
}

/// Copies `files` (relative to `from`; symlinks stay symlinks) below `to`, which is created.
pub fn copy_files(from: &Path, files: &[PathBuf], to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for f in files {
        let (s, d) = (from.join(f), to.join(f));
        fs::create_dir_all(d.parent().unwrap_or(to))?;
        if fs::symlink_metadata(&s)?.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else {
            copy_plain(&s, &d, None)?;
        }
    }
    Ok(())
}

/// What `copy_plain` copied.
pub struct Copied {
    pub sha256: String,
    pub size: u64,
}

/// Copies the bytes of the regular file `src` (never through a symlink) into a new file `dest`
/// with plain permissions: 0755 when `src` is executable, else 0644; never setuid, setgid or
/// sticky. At most `limit` bytes are kept, followed by a note when cut.
pub fn copy_plain(src: &Path, dest: &Path, limit: Option<u64>) -> Result<Copied> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut input = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(src)
        .with_context(|| format!("{}: cannot open (not a regular file?)", src.display()))?;
    let meta = input.metadata()?;
    if !meta.is_file() {
        return Err(FciError::Infra(format!("{}: not a regular file", src.display())).into());
    }
    // Out of package code's file system: never its holes, never more than its size twice.
    crate::volume::mounted::charge_copy(
        src,
        &meta,
        limit.map_or(meta.len(), |l| meta.len().min(l)),
    )?;
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .with_context(|| format!("{}: cannot create", dest.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let cap = limit.unwrap_or(u64::MAX);
    let mut truncated = false;
    loop {
        let want = buf.len().min((cap - size).min(buf.len() as u64) as usize);
        if want == 0 {
            truncated = input.read(&mut buf[..1])? > 0;
            break;
        }
        let n = input.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    if truncated {
        let note = format!("\n[fci: cut at {size} bytes]\n");
        out.write_all(note.as_bytes())?;
        hasher.update(note.as_bytes());
        size += note.len() as u64;
    }
    // The mode given at creation is filtered by the umask; set it exactly.
    out.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(Copied {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// A file name safe to store: one component of letters, digits and `._+-`, at most 128 bytes.
pub fn plain_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(128);
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = format!("unnamed{s}");
    }
    s
}

/// The process's umask, read without changing it (`umask(2)` can only set it).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

/// What a path the user named for an output leads to, resolved by fci itself.
#[derive(Debug, PartialEq)]
pub enum UserPath {
    /// Nothing there yet (the path, resolved, with its missing part).
    Missing(PathBuf),
    File(PathBuf),
    Dir(PathBuf),
    /// A device node, a FIFO or a socket: written through itself.
    Special(PathBuf),
    /// A descriptor of the process (`/dev/stdout` on a pipe: `/proc/self/fd/1` →
    /// `pipe:[123]`), opened by whoever started fci: written through itself.
    Descriptor(PathBuf),
}

/// Resolves a path the user named for an output, link by link, as the kernel would, but never
/// following a symbolic link that another user planted in a shared directory: a link in a
/// world-writable sticky directory (`/tmp`) is followed only when the caller (euid) or the
/// directory's owner owns it, the rule of the kernel's `fs.protected_symlinks`, applied
/// whatever that sysctl says. Otherwise exit 2, naming the link: as root, `-o /tmp/x.json`
/// must not replace the `/etc/passwd` another user's link there points at. (Long: one walk,
/// link by link, keeping the state the kernel's own resolution keeps.)
pub fn resolve_user_path(path: &Path) -> Result<UserPath, FciError> {
    use std::os::unix::fs::MetadataExt;
    use std::path::Component;
    let bad = |msg: String| FciError::input(path, msg);
    let mut resolved = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|e| bad(format!("cannot resolve: {e}")))?
    };
    // Components still to walk, the next one last.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push_all = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
        let mut comps: Vec<std::ffi::OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        comps.reverse();
        todo.extend(comps);
    };
    push_all(&mut todo, path);
    let euid = crate::users::euid();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let cand = resolved.join(&c);
        let meta = match fs::symlink_metadata(&cand) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut missing = cand;
                while let Some(c) = todo.pop() {
                    missing.push(c);
                }
                return Ok(UserPath::Missing(missing));
            }
            Err(e) => return Err(bad(format!("cannot resolve {}: {e}", cand.display()))),
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            resolved = cand;
            continue;
        }
        if !ft.is_symlink() {
            if !todo.is_empty() {
                return Err(bad(format!("{} is not a directory", cand.display())));
            }
            if ft.is_file() {
                return Ok(UserPath::File(cand));
            }
            // A FIFO or device another user made in a shared directory is theirs to read:
            // the rule of the kernel's `fs.protected_fifos`, applied whatever that sysctl says.
            let dir = fs::metadata(&resolved)
                .map_err(|e| bad(format!("cannot resolve {}: {e}", resolved.display())))?;
            let shared = dir.mode() & 0o1002 == 0o1002;
            if shared && meta.uid() != euid && meta.uid() != dir.uid() {
                return Err(bad(format!(
                    "refusing to write into {} (owned by uid {}) in the world-writable sticky directory {}: a FIFO or device there is written only when it is the caller's or the directory owner's",
                    cand.display(),
                    meta.uid(),
                    resolved.display()
                )));
            }
            return Ok(UserPath::Special(cand));
        }
        links += 1;
        if links > 40 {
            return Err(bad("too many levels of symbolic links".into()));
        }
        let dir = fs::metadata(&resolved)
            .map_err(|e| bad(format!("cannot resolve {}: {e}", resolved.display())))?;
        let shared = dir.mode() & 0o1002 == 0o1002;
        if shared && meta.uid() != euid && meta.uid() != dir.uid() {
            return Err(bad(format!(
                "refusing to follow the symbolic link {} (owned by uid {}) in the world-writable sticky directory {}: a link there is followed only when it is the caller's or the directory owner's",
                cand.display(),
                meta.uid(),
                resolved.display()
            )));
        }
        let target = fs::read_link(&cand)
            .map_err(|e| bad(format!("cannot read {}: {e}", cand.display())))?;
        // A descriptor's magic link (`/proc/self/fd/1` → `pipe:[123]`) names no path: it is
        // the process's own, opened by whoever started fci, and written through itself.
        if todo.is_empty()
            && cand.starts_with("/proc")
            && !(target.is_absolute() && fs::symlink_metadata(&target).is_ok())
            && fs::metadata(&cand).is_ok()
        {
            return Ok(UserPath::Descriptor(cand));
        }
        if target.is_absolute() {
            resolved = PathBuf::from("/");
        }
        push_all(&mut todo, &target);
    }
    Ok(UserPath::Dir(resolved))
}

/// Writes an output the user named: a regular file (or a new one) atomically, by a rename in
/// its directory; anything else (`/dev/null`, a FIFO, `/dev/stdout`) through itself, since
/// renaming over it would replace a device node with a file. The path is resolved by
/// [`resolve_user_path`]: a link another user planted in `/tmp` is refused (exit 2).
pub fn write_output(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let cannot = |e: &dyn std::fmt::Display| FciError::input(path, format!("cannot write: {e}"));
    match resolve_user_path(path)? {
        UserPath::Missing(p) | UserPath::File(p) => {
            let (dir, name) = match (p.parent(), p.file_name()) {
                (Some(d), Some(n)) => (d, n),
                _ => return Err(cannot(&"not a file name").into()),
            };
            // The directory is held open while the file appears in it, and shown to be the
            // one resolved: a component swapped for a link since then (by the owner of a
            // directory on the way) changes nothing.
            let held = File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(dir)
                .map_err(|e| cannot(&format!("{}: {e}", dir.display())))?;
            let pinned = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
            if fs::read_link(&pinned).ok().as_deref() != Some(dir) {
                return Err(
                    cannot(&format!("{} changed while it was written", dir.display())).into(),
                );
            }
            write_atomic(&pinned.join(name), data).map_err(|e| {
                cannot(
                    &crate::error::one_line(&e)
                        .replace(&pinned.display().to_string(), &dir.display().to_string()),
                )
            })?
        }
        UserPath::Dir(_) => return Err(cannot(&"it is a directory").into()),
        UserPath::Special(p) => {
            // Not through a link, and still no regular file (no link or hard link swapped in).
            let mut f = open_special(&p).map_err(|e| cannot(&e))?;
            if f.metadata().map_or(true, |m| m.is_file() || m.is_dir()) {
                return Err(
                    cannot(&format!("{} changed while it was written", p.display())).into(),
                );
            }
            f.write_all(data).map_err(|e| cannot(&e))?;
        }
        UserPath::Descriptor(p) => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| cannot(&e))?;
            f.write_all(data).map_err(|e| cannot(&e))?;
        }
    }
    Ok(())
}

/// How long an output FIFO may go without a reader before fci gives up on it (exit 2).
pub const FIFO_READER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a FIFO or device for writing, never through a link: without blocking, so a FIFO with
/// no reader is waited for at most [`FIFO_READER_WAIT`], never forever; then blocking again
/// for the write itself.
fn open_special(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let deadline = std::time::Instant::now() + FIFO_READER_WAIT;
    let f = loop {
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::Error::other(format!(
                        "a FIFO with no reader (waited {}s for one)",
                        FIFO_READER_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    };
    // SAFETY: fcntl on a descriptor this function owns; no pointers.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// Whether [`write_output`] could write `path` now, without writing it: the caller's
/// mistakes (a directory, a directory that does not exist, a link another user planted)
/// found before a command does what it cannot undo (a promotion), exit 2 naming the path.
pub fn check_output(path: &Path) -> Result<()> {
    let cannot = |e: &dyn std::fmt::Display| FciError::input(path, format!("cannot write: {e}"));
    match resolve_user_path(path)? {
        UserPath::Missing(p) | UserPath::File(p) => {
            let dir = p.parent().ok_or_else(|| cannot(&"not a file name"))?;
            if !dir.is_dir() {
                return Err(cannot(&format!("{}: no such directory", dir.display())).into());
            }
            Ok(())
        }
        UserPath::Dir(_) => Err(cannot(&"it is a directory").into()),
        UserPath::Special(_) | UserPath::Descriptor(_) => Ok(()),
    }
}

/// Writes `data` to fci's standard output: a manifest, or a subcommand's answer. A closed
/// stdout (`>&-`, which Rust's own stdout takes as a success) or a reader gone (a broken
/// pipe) is the host's error (exit 3), said in one line: never a silent loss, never a panic.
pub fn to_stdout(data: &[u8]) -> Result<()> {
    use std::io::Write;
    // SAFETY: fcntl on descriptor 1 with no pointers: only asks whether it is open.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } < 0 {
        return Err(FciError::Infra("stdout is closed: nothing could be written".into()).into());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|_| out.flush())
        .map_err(|e| FciError::Infra(format!("stdout: {e}")))?;
    Ok(())
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| FciError::input(path, format!("cannot write: {e}")))?;
    tmp.write_all(data)?;
    // NamedTempFile is private (0600); the file it becomes gets the mode a plain create would.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o666 & !umask()))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| FciError::input(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}
