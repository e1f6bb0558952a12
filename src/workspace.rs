//! The workspace: content-addressed artifacts, stage cache, logs, locks.
//!
//! Layout (all below the workspace root):
//! - `objects/<aa>/<sha256>/<name>`: artifacts, keyed by content, keeping their file name
//! - `repos/<digest>/`: rpm-md repositories (hard links into `objects/`)
//! - `cache/<stage>/<input-digest>.json`: stage records for reuse
//! - `locks/`: advisory locks; `tmp/`: private scratch dirs of running stages
//!
//! Every file appears by `rename(2)` from `tmp/`, so a reader never sees a torn file and two
//! runs storing the same content both succeed.

use crate::error::FciError;
use crate::manifest::{check_relative, Artifact, ArtifactKind, StageName, StageRecord};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Workspace {
    root: PathBuf,
    /// A shared OSTree repository outside the workspace, where the manifest's `ostree/repo`
    /// lives (`fci compose --ostree-repo`); None: the workspace's own.
    shared_ostree: Option<PathBuf>,
}

/// The manifest's name for the OSTree repository, wherever it is.
pub const OSTREE_REPO: &str = "ostree/repo";

/// An absolute path with its existing part resolved (symlinks, `..`), so that one
/// directory has one name; None when it is relative or `..` follows what does not exist.
fn normalize(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?.to_path_buf();
    }
    if rest.iter().any(|c| c == "..") {
        return None;
    }
    let mut out = existing.canonicalize().ok()?;
    for c in rest.into_iter().rev() {
        out.push(c);
    }
    Some(out)
}

/// Where the workspace records a shared OSTree repository.
const SHARED_OSTREE: &str = "ostree/shared-repo";

/// What the cache keeps of a stage run: its record and the artifacts it produced.
#[derive(Serialize, Deserialize)]
pub struct CacheEntry {
    pub run_id: String,
    pub record: StageRecord,
    pub artifacts: Vec<Artifact>,
}

impl Workspace {
    pub fn open(root: &Path) -> Result<Self> {
        // fci writes everything there: never through a link another user planted in /tmp.
        resolve_user_path(root)?;
        // A workspace another user made (or may write to) is theirs to rig: links in it would
        // carry root's writes and chmods anywhere, and their cache entries would be reused.
        if let Ok(m) = fs::metadata(root) {
            use std::os::unix::fs::MetadataExt;
            if !crate::users::trusted_owner(m.uid()) {
                return Err(FciError::input(
                    root,
                    format!(
                        "the workspace belongs to uid {}, not to you: refusing to use it",
                        m.uid()
                    ),
                )
                .into());
            }
            if m.mode() & 0o002 != 0 {
                return Err(FciError::input(
                    root,
                    "the workspace is writable by every user: refusing to use it (chmod o-w)",
                )
                .into());
            }
        }
        for sub in ["objects", "repos", "cache", "locks", "tmp"] {
            let d = root.join(sub);
            if fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(FciError::input(
                    root,
                    format!("{sub}/ is a symbolic link: refusing to write through it"),
                )
                .into());
            }
            fs::create_dir_all(&d).map_err(|e| {
                FciError::input(
                    root,
                    format!("cannot create workspace directory {}: {e}", d.display()),
                )
            })?;
        }
        // Runs' scratch holds what package code made as root (setuid files, a subject root
        // with device nodes): nobody else may reach it.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o700))
            .with_context(|| format!("{}: cannot make tmp/ private", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("{}: cannot resolve workspace", root.display()))?;
        let shared_ostree = fs::read_to_string(root.join(SHARED_OSTREE))
            .ok()
            .map(|t| PathBuf::from(t.trim()));
        if let Some(repo) = &shared_ostree {
            // Checked on every use: its owner may have changed since it was recorded.
            only_yours(repo, "the workspace's shared OSTree repository")?;
        }
        Ok(Workspace {
            root,
            shared_ostree,
        })
    }

    /// The OSTree repository the pipeline uses: the shared one, or `ostree/repo` inside.
    pub fn ostree_repo(&self) -> PathBuf {
        self.shared_ostree
            .clone()
            .unwrap_or_else(|| self.root.join(OSTREE_REPO))
    }

    /// Makes `repo` (absolute) the workspace's OSTree repository, once: a workspace keeps one
    /// repository, so a different one later is refused.
    pub fn share_ostree(&mut self, repo: &Path) -> Result<(), FciError> {
        // fci writes there: never through a link another user planted in /tmp.
        if repo.is_absolute() {
            resolve_user_path(repo)?;
        }
        let repo = &normalize(repo).ok_or_else(|| {
            FciError::Usage(format!(
                "--ostree-repo {}: give an absolute path, without `..` below what exists",
                repo.display()
            ))
        })?;
        only_yours(repo, "--ostree-repo")?;
        match &self.shared_ostree {
            Some(p) if p == repo => return Ok(()),
            Some(p) => {
                return Err(FciError::Usage(format!(
                    "this workspace uses the OSTree repository {}, not {}",
                    p.display(),
                    repo.display()
                )))
            }
            None if self.root.join(OSTREE_REPO).join("config").exists() => {
                return Err(FciError::Usage(format!(
                    "this workspace has its own OSTree repository ({}): use a new workspace for --ostree-repo",
                    self.root.join(OSTREE_REPO).display()
                )))
            }
            None => {}
        }
        let text = format!("{}\n", repo.display());
        fs::create_dir_all(self.root.join("ostree"))
            .and_then(|_| {
                write_atomic(&self.root.join(SHARED_OSTREE), text.as_bytes())
                    .map_err(std::io::Error::other)
            })
            .map_err(|e| FciError::Infra(format!("cannot record --ostree-repo: {e}")))?;
        self.shared_ostree = Some(repo.to_path_buf());
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a workspace-relative artifact path, refusing escapes.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, FciError> {
        check_relative(rel).map_err(|why| FciError::input(rel, format!("artifact path {why}")))?;
        // The workspace's configuration, not the manifest, says where a shared repository is.
        if let (Some(shared), OSTREE_REPO) = (&self.shared_ostree, rel) {
            return Ok(shared.clone());
        }
        let p = self.root.join(rel);
        // A symlink on the way must not lead out either.
        if let Ok(real) = p.canonicalize() {
            if !real.starts_with(&self.root) {
                return Err(FciError::input(
                    rel,
                    "artifact path leads out of the workspace through a symlink",
                ));
            }
        }
        Ok(p)
    }

    /// The path of an artifact a stage is about to consume, once it is shown to be what the
    /// manifest says: the expected type, inside the workspace, and the recorded content (a
    /// file's sha256, or a tree's digest over its files). `origin` is the manifest, named in
    /// the bad-input error an edited manifest or a damaged workspace gets (exit 2).
    pub fn verify(
        &self,
        a: &Artifact,
        kind: ArtifactKind,
        origin: &Path,
    ) -> Result<PathBuf, FciError> {
        let bad = |msg: String| FciError::input(origin, format!("artifact {}: {msg}", a.path));
        if a.kind != kind {
            return Err(bad(format!("expected type `{kind}`, found `{}`", a.kind)));
        }
        let p = self.resolve(&a.path)?;
        let meta = std::fs::symlink_metadata(&p).map_err(|_| {
            bad(format!(
                "missing from workspace {} (edited manifest or another workspace?)",
                self.root.display()
            ))
        })?;
        if kind == ArtifactKind::OstreeCommit {
            // Only the workspace's own repository (or the shared one it is configured with):
            // another repository inside the workspace (one package code left among a test's
            // artifacts, with forged metadata) is never checked nor has its refs moved.
            let same = |x: &Path, y: &Path| match (x.canonicalize(), y.canonicalize()) {
                (Ok(x), Ok(y)) => x == y,
                _ => x == y,
            };
            if a.path != OSTREE_REPO || !same(&p, &self.ostree_repo()) {
                return Err(bad(format!(
                    "is not the workspace's OSTree repository {} ({OSTREE_REPO})",
                    self.ostree_repo().display()
                )));
            }
            // A commit is named by its checksum: the repository must hold that commit.
            let repo = crate::ostree::Repo::open(&p)
                .map_err(|_| bad("is not an OSTree repository".into()))?;
            if !repo.has_commit(&a.sha256) {
                return Err(bad(format!("the repository has no commit {}", a.sha256)));
            }
            return Ok(p);
        }
        let found = if meta.is_dir() {
            crate::digest::list_files(&p, &[])
                .and_then(|files| crate::digest::tree_digest(&p, &files))
        } else if meta.is_file() {
            crate::digest::sha256_file(&p).map(|(h, _)| h)
        } else {
            return Err(bad("neither a file nor a directory".into()));
        }
        .map_err(|e| bad(format!("cannot read: {e}")))?;
        // An RPM is what its lead says: a binary package for `rpm`, a source one for `srpm`
        // (an edited type must not feed a log, or a source package, to rpm -i).
        let lead_type = |want: u8| -> bool {
            use std::io::Read;
            let mut lead = [0u8; 8];
            std::fs::File::open(&p)
                .and_then(|mut f| f.read_exact(&mut lead))
                .is_ok_and(|_| lead[..4] == [0xed, 0xab, 0xee, 0xdb] && lead[6..8] == [0, want])
        };
        let shape = match kind {
            ArtifactKind::Rpm => meta.is_file() && lead_type(0),
            ArtifactKind::Srpm => meta.is_file() && lead_type(1),
            ArtifactKind::DistGit => meta.is_dir(),
            ArtifactKind::Image => meta.is_file(),
            _ => true,
        };
        if !shape {
            return Err(bad(format!("is not a {kind}")));
        }
        if found != a.sha256 {
            let what = if meta.is_dir() {
                "tree digest"
            } else {
                "sha256"
            };
            return Err(bad(format!(
                "does not match its {what} (edited manifest or damaged workspace)"
            )));
        }
        Ok(p)
    }

    pub fn relative(&self, abs: &Path) -> String {
        abs.strip_prefix(&self.root)
            .unwrap_or(abs)
            .to_string_lossy()
            .into_owned()
    }

    /// A private scratch directory, removed when dropped. It holds a lock for its whole life,
    /// so `collect_stale` can tell the scratch of a killed run from that of a running one.
    pub fn scratch(&self, prefix: &str) -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("tmp"))
            .context("cannot create a scratch directory in the workspace")?;
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        }
        let lock = File::create(dir.path().join(".lock"))?;
        lock.lock()?;
        Ok(Scratch {
            volumes: Vec::new(),
            dir,
            _lock: lock,
        })
    }

    /// Removes what killed runs left in `tmp/`: unlocked scratch directories and stray files,
    /// once they are old enough that no run can still be setting them up.
    pub fn collect_stale(&self) {
        let Ok(rd) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let old = |m: &fs::Metadata| {
            m.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|a| a.as_secs() > 600)
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !old(&meta) {
                continue;
            }
            if meta.is_dir() {
                let abandoned = File::open(p.join(".lock")).map_or(true, |f| f.try_lock().is_ok());
                if abandoned {
                    // A killed run's volumes are still mounted there.
                    crate::volume::detach_below(&p);
                    let _ = fs::remove_dir_all(&p);
                }
            } else {
                let _ = fs::remove_file(&p);
            }
        }
    }

    /// Copies a file into the object store and describes it as an artifact.
    pub fn store(
        &self,
        src: &Path,
        kind: ArtifactKind,
        name: &str,
        stage: StageName,
    ) -> Result<Artifact> {
        self.store_limited(src, kind, name, stage, None)
    }

    /// Like `store`, keeping at most `limit` bytes (for output of untrusted code).
    pub fn store_limited(
        &self,
        src: &Path,
        kind: ArtifactKind,
        name: &str,
        stage: StageName,
        limit: Option<u64>,
    ) -> Result<Artifact> {
        let name = plain_name(name);
        // Always a copy with plain permissions: the source may be package output, and a hard
        // link would carry its owner and mode (setuid, world-writable) into the workspace.
        let tmp = self
            .root
            .join("tmp")
            .join(format!(".obj-{}", uuid::Uuid::new_v4()));
        let copied = copy_plain(src, &tmp, limit);
        let copied = match copied {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let dir = self
            .root
            .join("objects")
            .join(&copied.sha256[..2])
            .join(&copied.sha256);
        let dest = dir.join(&name);
        fs::create_dir_all(&dir)?;
        if dest.exists() {
            fs::remove_file(&tmp)?;
        } else {
            fs::rename(&tmp, &dest).with_context(|| format!("cannot store {}", dest.display()))?;
        }
        Ok(Artifact {
            kind,
            name,
            path: self.relative(&dest),
            sha256: copied.sha256,
            size: copied.size,
            stage: stage.to_string(),
            nevra: None,
            extra: Default::default(),
        })
    }

    /// Publishes a finished directory under `repos/<key>` (first writer wins).
    pub fn publish_dir(&self, staged: &Path, area: &str, key: &str) -> Result<PathBuf> {
        let dest = self.root.join(area).join(key);
        fs::create_dir_all(self.root.join(area))?;
        if !dest.exists() {
            if let Err(e) = fs::rename(staged, &dest) {
                // Another run published the same content first: theirs is identical.
                if !dest.exists() {
                    return Err(e).with_context(|| format!("cannot publish {}", dest.display()));
                }
            }
        }
        Ok(dest)
    }

    fn cache_path(&self, stage: &str, digest: &str) -> PathBuf {
        self.root
            .join("cache")
            .join(stage)
            .join(format!("{digest}.json"))
    }

    /// A cached run of `stage` with this input digest whose artifacts are all still present.
    pub fn cache_get(&self, stage: &str, digest: &str) -> Option<CacheEntry> {
        let text = fs::read_to_string(self.cache_path(stage, digest)).ok()?;
        let entry: CacheEntry = serde_json::from_str(&text).ok()?;
        let complete = entry.artifacts.iter().all(|a| {
            self.resolve(&a.path)
                .ok()
                .and_then(|p| fs::metadata(p).ok())
                .is_some_and(|m| m.is_dir() || m.len() == a.size)
        });
        complete.then_some(entry)
    }

    pub fn cache_put(&self, stage: &str, digest: &str, entry: &CacheEntry) -> Result<()> {
        let p = self.cache_path(stage, digest);
        fs::create_dir_all(p.parent().unwrap())?;
        write_atomic(&p, serde_json::to_string_pretty(entry)?.as_bytes())
    }

    /// The named lock if no other process holds it now; released on drop.
    pub fn try_lock(&self, name: &str) -> Result<Option<File>> {
        let (f, _) = self.lock_file(name)?;
        Ok(f.try_lock().is_ok().then_some(f))
    }

    fn lock_file(&self, name: &str) -> Result<(File, PathBuf)> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open lock", path.display()))?;
        Ok((f, path))
    }

    /// Blocks until this process holds the named lock; released on drop. Only a lock whose
    /// name a stage registered with `interrupt_lock_waits` (its input lock) ends its wait on
    /// a signal that stage noted; fci's own bookkeeping (the message journal, the AMQP spool,
    /// resultsdb delivery) always waits, so the stage's end is recorded after a signal too.
    pub fn lock(&self, name: &str) -> Result<File> {
        self.lock_waiting(name, None)
    }

    /// `lock`, whose wait ends (exit 3, "nothing was run") once `stop` says why: for a stage
    /// that notes signals instead of dying of them (stage::Signals::Note).
    pub fn lock_until(&self, name: &str, stop: impl Fn() -> Option<String>) -> Result<File> {
        self.lock_waiting(name, Some(&stop))
    }

    fn lock_waiting(&self, name: &str, stop: Option<&dyn Fn() -> Option<String>>) -> Result<File> {
        let (f, path) = self.lock_file(name)?;
        if f.try_lock().is_err() {
            crate::progress::note(&format!(
                "waiting for {} (another fci run holds it)",
                path.display()
            ));
            match stop {
                None => f
                    .lock()
                    .with_context(|| format!("{}: cannot take lock", path.display()))?,
                // A stage that handles signals itself: poll, so a signal ends the wait.
                Some(stop) => loop {
                    if let Some(why) = stop() {
                        return Err(crate::error::FciError::Infra(format!(
                            "{why} while waiting for {}: nothing was run",
                            path.display()
                        ))
                        .into());
                    }
                    match f.try_lock() {
                        Ok(()) => break,
                        Err(std::fs::TryLockError::WouldBlock) => {
                            std::thread::sleep(std::time::Duration::from_millis(100))
                        }
                        Err(std::fs::TryLockError::Error(e)) => {
                            return Err(anyhow::Error::new(e)
                                .context(format!("{}: cannot take lock", path.display())))
                        }
                    }
                },
            }
        }
        Ok(f)
    }
}

/// Whether `dir` is `base` or a directory below it reached through real directories only:
/// after a run, package code may have swapped a directory fci reads for a symlink to one it
/// could not see (fci reads as root, outside the sandbox).
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
    crate::volume::charge_copy(src, &meta, limit.map_or(meta.len(), |l| meta.len().min(l)))?;
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

pub struct Scratch {
    /// Package code's file systems mounted inside (`crate::volume`): declared first, so that
    /// they are unmounted before the directory is removed.
    volumes: Vec<crate::volume::Volume>,
    dir: tempfile::TempDir,
    _lock: File,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps a volume mounted inside until the scratch directory is removed.
    pub fn keep(&mut self, v: crate::volume::Volume) {
        self.volumes.push(v);
    }
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
/// must not replace the `/etc/passwd` another user's link there points at.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_content_addressed_and_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let f = d.path().join("a.txt");
        fs::write(&f, b"hello").unwrap();
        let a = ws
            .store(&f, ArtifactKind::Log, "a.txt", StageName::Build)
            .unwrap();
        let b = ws
            .store(&f, ArtifactKind::Log, "a.txt", StageName::Build)
            .unwrap();
        assert_eq!(a.path, b.path);
        assert!(a.path.starts_with("objects/2c/2cf24dba"));
        assert_eq!(fs::read(ws.resolve(&a.path).unwrap()).unwrap(), b"hello");
        assert!(ws.resolve("../etc/passwd").is_err());
    }

    #[test]
    fn stale_scratch_of_a_killed_run_is_collected_but_a_live_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let live = ws.scratch("live-").unwrap();
        let dead = ws.root().join("tmp/dead-x");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join(".lock"), b"").unwrap();
        let stray = ws.root().join("tmp/.obj-stray");
        fs::write(&stray, b"x").unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [live.path(), dead.as_path(), stray.as_path()] {
            File::open(p).unwrap().set_modified(long_ago).unwrap();
        }
        ws.collect_stale();
        assert!(live.path().is_dir());
        assert!(!dead.exists());
        assert!(!stray.exists());
    }
}
