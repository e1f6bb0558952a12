//! The layer backend: a hard-link checkout of the base commit, the change's RPM payloads
//! installed into it (the tree's rpm database, under /usr, kept right), and a commit with the
//! base as parent onto a candidate ref.

use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::manifest::{Artifact, ArtifactKind, Outcome, StageName};
use crate::ostree::Repo;
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the tree keeps its rpm database (OSTree carries /usr, not /var).
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

pub struct Plan {
    pub repo: Repo,
    pub branch: String,
    pub base_ref: String,
    pub base: String,
    pub rpms: Vec<PathBuf>,
    pub timeout: Option<std::time::Duration>,
}

pub fn compose(p: &Plan, cx: &mut Ctx, rec: &mut RecordParts) -> Result<Vec<Artifact>> {
    rec.backend = Some("layer".into());
    rec.data.insert("branch".into(), json!(p.branch));
    rec.data.insert("base_ref".into(), json!(p.base_ref));
    rec.data.insert("parent".into(), json!(p.base));
    let dir = cx.dir();
    let tree = dir.join("tree");
    // The change's file list is read while the base is checked out: two processes at once on
    // the compose's critical path.
    let mut side = Log::create(&dir.join("rpm-qp.log"))?;
    let (checked_out, listing) = std::thread::scope(|s| {
        let listing = s.spawn(|| payload_files(&p.rpms, &mut side));
        let checked_out = p.repo.checkout(&p.base, &tree, cx.log());
        (checked_out, listing.join().expect("rpm -qp thread"))
    });
    cx.log().append_file(&side.path);
    checked_out?;
    let listing = listing?;
    // Every file of the checkout is a hard link to a repository object: what rpm changes in
    // place (its database) is copied first, so no write ever reaches the repository.
    unshare_rpmdb(&tree)?;

    let conflicts = conflicts_with_base(&tree, &listing);
    if !conflicts.is_empty() {
        let msg = format!(
            "the change replaces files of the base: {}",
            conflicts.join(", ")
        );
        crate::progress::note(&format!("compose FAILED: {msg}"));
        rec.outcome = Outcome::Failed;
        rec.notes.push(msg);
        rec.data.insert("conflicts".into(), json!(conflicts));
        return Ok(Vec::new());
    }
    let debian = Path::new("/etc/debian_version").exists();
    let mut install = Cmd::new("rpm").arg("--root").arg(&tree).args([
        "--dbpath",
        DBPATH,
        "-i",
        "--nodeps",
        "--noscripts",
        "--notriggers",
    ]);
    if debian {
        // Debian's rpm asks to be told that it is meant to manage this root.
        install = install.arg("--force-debian");
    }
    let done = cx
        .log()
        .capture(&install.arg("--").args(&p.rpms).timeout(p.timeout))?;
    if !done.success() {
        let said: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| l.contains("conflicts with file from package"))
            .map(str::trim)
            .collect();
        if !said.is_empty() {
            rec.outcome = Outcome::Failed;
            rec.notes.push(format!(
                "the change conflicts with the base's packages: {}",
                said.join("; ")
            ));
            return Ok(Vec::new());
        }
        return Err(FciError::Infra(format!(
            "rpm could not install the change into the base checkout: {}",
            done.stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("no reason given")
        ))
        .into());
    }
    // Before the commit: a committed file may be the repository's object itself, and even a
    // query writes into the rpm database's files.
    let installed = query_installed(&tree, cx.log())?;
    // rpm's lock is the run's. sqlite's -shm and -wal stay: the database is in WAL mode, and
    // on a read-only /usr (a deployment, or the integration tests' overlay) sqlite can read
    // it only when they exist.
    let _ = std::fs::remove_file(tree.join(&DBPATH[1..]).join(".rpm.lock"));
    let subject = &cx.manifest.subject;
    let package = subject.package.clone().unwrap_or_default();
    let candidate = format!("fci/{}/candidate/{}", p.branch, cx.manifest.run.id);
    // From the packages' own headers.
    let nevras: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("P "))
        .filter(|n| n.starts_with(&format!("{package}-")) || package.is_empty())
        .map(String::from)
        .collect();
    let metadata = vec![
        ("fci.package".to_string(), package.clone()),
        (
            "fci.dist-git-commit".to_string(),
            subject.commit.clone().unwrap_or_default(),
        ),
        ("fci.nevras".to_string(), nevras.join(" ")),
        ("fci.run".to_string(), cx.manifest.run.id.clone()),
        (
            "fci.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    let commit = p.repo.commit(
        &tree,
        &candidate,
        Some(&p.base),
        &format!("fci compose: {package} on {}", p.base_ref),
        &metadata,
        cx.log(),
    )?;
    let diff = p.repo.diff(&p.base, &commit, cx.log())?;
    rec.data.insert("ref".into(), json!(candidate));
    rec.data.insert("commit".into(), json!(commit));
    rec.data.insert("diff".into(), json!(diff));
    rec.data.insert("packages".into(), json!(installed));
    Ok(vec![Artifact {
        kind: ArtifactKind::OstreeCommit,
        name: candidate,
        path: crate::workspace::OSTREE_REPO.to_string(),
        sha256: commit,
        size: 0,
        stage: StageName::Compose.to_string(),
        nevra: None,
        extra: Default::default(),
    }])
}

/// Replaces each file of the tree's rpm database by a copy of itself (renamed over it), so
/// rpm's in-place writes land in new files, not in the repository's objects.
fn unshare_rpmdb(tree: &Path) -> Result<()> {
    let db = tree.join(&DBPATH[1..]);
    if !crate::workspace::real_dir_below(tree, &db) {
        return Err(FciError::input(
            tree,
            format!(
                "the base tree has no {DBPATH} directory (examples/base/make-base.sh makes one)"
            ),
        )
        .into());
    }
    for e in std::fs::read_dir(&db)? {
        let e = e?;
        if !e.file_type()?.is_file() {
            continue;
        }
        let copy = db.join(format!(".fci-copy-{}", e.file_name().to_string_lossy()));
        std::fs::copy(e.path(), &copy)?;
        std::fs::rename(&copy, e.path())?;
    }
    Ok(())
}

/// `P NEVRA` per package of the change, each followed by `F MODE PATH` per file.
fn payload_files(rpms: &[PathBuf], log: &mut Log) -> Result<String> {
    let out = log.capture(
        &Cmd::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest", "--qf"])
            .arg("P %{NEVRA}\n[F %{FILEMODES:octal} %{FILENAMES}\n]")
            .arg("--")
            .args(rpms),
    )?;
    if !out.success() {
        return Err(FciError::Infra(format!(
            "rpm -qp failed on the change's packages: {}",
            out.stderr.trim()
        ))
        .into());
    }
    Ok(out.stdout)
}

/// Paths the change's packages would write over (anything but a directory that the base
/// already has). The base's own files need not be in its rpm database (a Debian-made base).
fn conflicts_with_base(tree: &Path, listing: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in listing.lines() {
        let Some((mode, path)) = line.strip_prefix("F ").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if mode.starts_with("40") {
            continue; // a directory: shared, not replaced
        }
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            continue;
        }
        if std::fs::symlink_metadata(tree.join(rel)).is_ok() {
            found.push(path.to_string());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Every package in the composed tree's rpm database, as NEVRA.
fn query_installed(tree: &Path, log: &mut Log) -> Result<Vec<String>> {
    let out = log.capture(&Cmd::new("rpm").arg("--root").arg(tree).args([
        "--dbpath",
        DBPATH,
        "-qa",
        "--qf",
        "%{NEVRA}\n",
    ]))?;
    let mut v: Vec<String> = out.stdout.lines().map(String::from).collect();
    v.sort();
    Ok(v)
}
