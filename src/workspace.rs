//! The workspace: content-addressed artifacts, stage cache, logs, locks.
//!
//! Layout (all below the workspace root):
//! - `objects/<aa>/<sha256>/<name>`: artifacts, keyed by content, keeping their file name
//! - `repos/<digest>/`: rpm-md repositories (hard links into `objects/`)
//! - `cache/<stage>/<input-digest>.json`: stage records for reuse
//! - `locks/`: advisory locks; `tmp/`: private scratch dirs of running stages
//! - `state/`: what stages keep between runs (watch heads, image times, known-good, records)
//!
//! What the pipeline shares between machines (the known-good refs and package set, the
//! exclusions, the image schedule, the watch's heads, the waivers, the OSTree repository) is
//! the *pipeline state* (`pipeline`): `state/` inside the workspace unless a state directory
//! is given (`--state DIR`, `FCI_STATE`), meant for a shared volume; everything else is the
//! machine's own and disposable. Its locks are `crate::statelock`'s (fcntl, NFSv4-safe).
//! - `spool/`: deliveries not yet confirmed (ResultsDB, AMQP)
//! - `share/`: fci's own files handed to package code (STI roles, rpm macros)
//! - `results/results.sqlite`, `waivers/waivers.json`, `messages/journal.jsonl`: the results
//!   store, the waivers, the message journal
//!
//! Each place is named once, by the accessors below; nothing else joins these names.
//!
//! Every file appears by `rename(2)` from `tmp/`, so a reader never sees a torn file and two
//! runs storing the same content both succeed.

use crate::error::FciError;
use crate::files::{copy_plain, only_yours, plain_name, resolve_user_path, write_atomic};
use crate::manifest::{check_relative, Artifact, ArtifactKind, StageName, StageRecord};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub struct Workspace {
    root: PathBuf,
    /// The pipeline state directory given to this workspace (`--state`), if any.
    pipeline: Option<PathBuf>,
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

/// Where the workspace records the pipeline state directory it was given.
const STATE_RECORD: &str = "pipeline-state";

/// The pipeline state directory this process was given (`--state`, `FCI_STATE`), set once by
/// `main` before any workspace is opened.
static STATE_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Gives every workspace this process opens the pipeline state directory `dir`. The first
/// one given wins: `main` gives `--state`/`FCI_STATE` before any fci.yaml's `state:` is read.
pub fn set_state_dir(dir: PathBuf) {
    let _ = STATE_DIR.set(dir);
}

/// The marker fci leaves in a pipeline state directory it made: a recorded state without it
/// is not the pipeline's (an unmounted volume's empty mount point), never silently begun anew.
const STATE_MARKER: &str = "FCI-STATE";

/// The top-level entries of a pipeline state (`Workspace::pipeline`'s names): real
/// directories, never symbolic links. The state is written by every worker's user (a group);
/// one of them must not turn another's (or root's) writes elsewhere through a link.
const STATE_DIRS: &[&str] = &[
    "known-good",
    "excluded",
    "retest",
    "image",
    "watch",
    "records",
    "waivers",
    "locks",
    "ostree",
];

/// The pipeline state directory for the workspace at `root`: the one given, checked against
/// the one it recorded (a workspace keeps one pipeline), or the recorded one, or none. Each
/// use checks it again: owned by this user or root, not writable by every user, its
/// top-level entries real directories, and (once recorded) still the state fci made.
fn pipeline_dir(root: &Path) -> Result<Option<PathBuf>> {
    let recorded = fs::read_to_string(root.join(STATE_RECORD))
        .ok()
        .map(|t| PathBuf::from(t.trim()));
    let given = match STATE_DIR.get() {
        Some(given) => {
            if given.is_absolute() {
                resolve_user_path(given)?;
            }
            Some(normalize(given).ok_or_else(|| {
                FciError::Usage(format!(
                    "--state {}: give an absolute path, without `..` below what exists",
                    given.display()
                ))
            })?)
        }
        None => None,
    };
    let Some(dir) = given.clone().or_else(|| recorded.clone()) else {
        return Ok(None);
    };
    match (&recorded, &given) {
        (Some(r), Some(g)) if r != g => {
            return Err(FciError::Usage(format!(
                "this workspace uses the pipeline state {}, not {}",
                r.display(),
                g.display()
            ))
            .into())
        }
        (None, Some(_)) => {
            let own = [
                "state/known-good",
                "state/excluded",
                "ostree/repo/config",
                SHARED_OSTREE,
            ]
            .iter()
            .find(|p| root.join(p).exists());
            if let Some(own) = own {
                return Err(FciError::Usage(format!(
                    "this workspace keeps its own pipeline state ({}): use a new workspace with --state",
                    root.join(own).display()
                ))
                .into());
            }
        }
        _ => {}
    }
    if recorded.is_some() && !dir.join(STATE_MARKER).is_file() {
        // An unmounted NFS volume leaves an empty directory (or none): beginning a new state
        // there would record every head as seen and lose the known-good base.
        return Err(FciError::Infra(format!(
            "the pipeline state {} this workspace uses is missing or not fci's (no {STATE_MARKER} in it): is its volume mounted?",
            dir.display()
        ))
        .into());
    }
    // Shared by the workers' users (a group), never by every user of the machine.
    fs::create_dir_all(&dir)
        .map_err(|e| FciError::Infra(format!("cannot make {}: {e}", dir.display())))?;
    check_state_dir(&dir)?;
    if !dir.join(STATE_MARKER).exists() {
        write_atomic(
            &dir.join(STATE_MARKER),
            b"An fci pipeline state directory (README: Running under a scheduler).\n",
        )
        .map_err(|e| FciError::Infra(format!("cannot write {}: {e}", dir.display())))?;
    }
    if recorded.is_none() {
        write_atomic(
            &root.join(STATE_RECORD),
            format!("{}\n", dir.display()).as_bytes(),
        )
        .map_err(|e| FciError::Infra(format!("cannot record --state: {e}")))?;
    }
    Ok(Some(dir))
}

/// What `pipeline_dir` requires of a state directory, on every use.
fn check_state_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(dir)
        .map_err(|e| FciError::Infra(format!("cannot read {}: {e}", dir.display())))?;
    if m.mode() & 0o002 != 0 {
        return Err(FciError::input(
            dir,
            "the pipeline state directory is writable by every user: refusing to use it (chmod o-w)",
        )
        .into());
    }
    if !crate::users::trusted_owner(m.uid()) {
        return Err(FciError::input(
            dir,
            format!(
                "the pipeline state directory belongs to uid {}, neither you nor root: refusing to use it (its owner could redirect what fci writes there)",
                m.uid()
            ),
        )
        .into());
    }
    for sub in STATE_DIRS {
        let d = dir.join(sub);
        match fs::symlink_metadata(&d) {
            Ok(m) if !m.file_type().is_dir() => {
                return Err(FciError::input(
                    dir,
                    format!(
                        "{sub} is not a directory (a symbolic link?): refusing to write through it"
                    ),
                )
                .into())
            }
            _ => {}
        }
    }
    // A state its group shares stays writable by the group whatever this caller's umask
    // (a worker's 022 would leave directories and lock files the next worker cannot write).
    if m.mode() & 0o020 != 0 {
        // SAFETY: umask only sets the process's file mode creation mask.
        unsafe {
            libc::umask(0o002);
        }
    }
    Ok(())
}

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
        let pipeline = pipeline_dir(&root)?;
        // The pipeline's OSTree repository is part of its state: in the state directory, unless
        // the workspace was given one of its own (`--ostree-repo`).
        let shared_ostree = fs::read_to_string(root.join(SHARED_OSTREE))
            .ok()
            .map(|t| PathBuf::from(t.trim()));
        if let Some(repo) = &shared_ostree {
            // Checked on every use: its owner may have changed since it was recorded.
            only_yours(repo, "the workspace's shared OSTree repository")?;
        }
        let shared_ostree =
            shared_ostree.or_else(|| pipeline.as_ref().map(|p| p.join(OSTREE_REPO)));
        Ok(Workspace {
            root,
            pipeline,
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

    /// `<dir>/<rel>` below the root (`rel` empty: the directory itself).
    fn at(&self, dir: &str, rel: &str) -> PathBuf {
        let d = self.root.join(dir);
        if rel.is_empty() {
            d
        } else {
            d.join(rel)
        }
    }

    /// `state/<rel>`: what stages keep between runs.
    pub fn state(&self, rel: &str) -> PathBuf {
        self.at("state", rel)
    }

    /// `<pipeline state>/<rel>`: what the pipeline shares between machines (see the module's
    /// comment); `state/<rel>` without a state directory.
    pub fn pipeline(&self, rel: &str) -> PathBuf {
        match &self.pipeline {
            Some(p) if rel.is_empty() => p.clone(),
            Some(p) => p.join(rel),
            None => self.state(rel),
        }
    }

    /// The named lock on the pipeline state, held against every fci process sharing it, on
    /// this machine or another (`crate::statelock`); released on drop.
    pub fn pipeline_lock(&self, name: &str) -> Result<crate::statelock::StateLock> {
        crate::statelock::lock(&self.pipeline("locks").join(format!("{name}.lock")))
    }

    /// `spool/<rel>`: deliveries not yet confirmed.
    pub fn spool(&self, rel: &str) -> PathBuf {
        self.at("spool", rel)
    }

    /// `share/<rel>`: fci's own files handed to package code.
    pub fn share(&self, rel: &str) -> PathBuf {
        self.at("share", rel)
    }

    /// `cache/<rel>`: stage records for reuse, and the host's facts.
    pub fn cache(&self, rel: &str) -> PathBuf {
        self.at("cache", rel)
    }

    /// `tmp/<rel>`: private scratch of running stages.
    fn tmp(&self, rel: &str) -> PathBuf {
        self.at("tmp", rel)
    }

    /// The workspace's results store.
    pub fn results_db(&self) -> PathBuf {
        self.at("results", "results.sqlite")
    }

    /// The pipeline's waivers (kept locally: fci waive); in the state directory when there
    /// is one.
    pub fn waivers(&self) -> PathBuf {
        match &self.pipeline {
            Some(p) => p.join("waivers/waivers.json"),
            None => self.at("waivers", "waivers.json"),
        }
    }

    /// The message journal.
    pub fn journal(&self) -> PathBuf {
        self.at("messages", "journal.jsonl")
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
            .tempdir_in(self.tmp(""))
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
        let Ok(rd) = fs::read_dir(self.tmp("")) else {
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

    /// Stores `bytes` (fci's own output: an attestation) as an artifact, as `store` does.
    pub fn store_bytes(
        &self,
        bytes: &[u8],
        kind: ArtifactKind,
        name: &str,
        stage: StageName,
    ) -> Result<Artifact> {
        let tmp = self.tmp(&format!(".src-{}", uuid::Uuid::new_v4()));
        fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        let out = self.store(&tmp, kind, name, stage);
        let _ = fs::remove_file(&tmp);
        out
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
        let tmp = self.tmp(&format!(".obj-{}", uuid::Uuid::new_v4()));
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
        self.cache(stage).join(format!("{digest}.json"))
    }

    /// A cached run of `stage` with this input digest whose artifacts are all still present.
    pub fn cache_get(&self, stage: &str, digest: &str) -> Option<CacheEntry> {
        let text = fs::read_to_string(self.cache_path(stage, digest)).ok()?;
        let entry: CacheEntry = serde_json::from_str(&text).ok()?;
        let complete = entry.artifacts.iter().all(|a| {
            let Ok(p) = self.resolve(&a.path) else {
                return false;
            };
            // An OSTree commit is there while the repository has its object: a pruned one
            // (its candidate ref deleted) is made again, never a PASSED naming nothing.
            if a.kind == ArtifactKind::OstreeCommit {
                return a.sha256.len() == 64
                    && a.sha256.bytes().all(|b| b.is_ascii_hexdigit())
                    && p.join("objects")
                        .join(&a.sha256[..2])
                        .join(format!("{}.commit", &a.sha256[2..]))
                        .is_file();
            }
            fs::metadata(p).is_ok_and(|m| m.is_dir() || m.len() == a.size)
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

    /// Where the named lock's file is.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    fn lock_file(&self, name: &str) -> Result<(File, PathBuf)> {
        let path = self.lock_path(name);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open lock", path.display()))?;
        Ok((f, path))
    }

    /// Blocks until this process holds the named lock; released on drop. Only the stage's
    /// input lock, taken by the driver with `lock_until`, ends its wait on a noted signal;
    /// fci's own bookkeeping (the message journal, the AMQP spool, resultsdb delivery) always
    /// waits, so the stage's end is recorded after a signal too.
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
