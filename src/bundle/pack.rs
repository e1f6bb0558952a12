//! `fci bundle`: the run's manifest and exactly what it references, shown to be what the
//! manifest says before anything is written, into one tar file that appears whole or not at all.

use super::index::{self, Index, Member, MemberType, FORMAT, INDEX, MANIFEST, MEMBERS};
use super::BundleArgs;
use crate::error::FciError;
use crate::manifest::{ArtifactKind, Manifest};
use crate::workspace::Workspace;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn exec(args: BundleArgs, workspace: &Path) -> Result<i32> {
    let ws = Workspace::open(workspace)?;
    // What it reads (or stores) stays until it is done: `fci gc` waits.
    let _in_use = crate::gc::lock::in_use(&ws)?;
    let manifest = Manifest::read(&args.manifest)?;
    let origin = if args.manifest == Path::new("-") {
        Path::new("<stdin>")
    } else {
        args.manifest.as_path()
    };
    // The caller's mistake (a directory, no such directory) before any work.
    crate::files::check_output(&args.output)?;
    let text = manifest.to_json();
    let (members, commits) = members_of(&ws, &manifest, origin)?;
    let index = Index {
        format: FORMAT.into(),
        manifest_sha256: crate::digest::sha256_bytes(text.as_bytes()),
        members,
        ostree_commits: commits,
    };
    write(&ws, &index, &text, &args.output)?;
    let total: u64 = index.members.iter().map(|m| m.size).sum();
    crate::progress::note(&format!(
        "bundled run {}: {} members, {} into {}{}",
        manifest.run.id,
        index.members.len(),
        crate::caps::human(total),
        args.output.display(),
        if index.ostree_commits.is_empty() {
            String::new()
        } else {
            format!(
                " (OSTree commit {} recorded, not carried: see docs/bundle.md)",
                index.ostree_commits.join(", ")
            )
        }
    ));
    Ok(0)
}

/// Each path the manifest references, shown to be what the manifest says (an artifact's own
/// digest; a log only records have is taken as it is), with its digest; and the OSTree
/// commits it names, each shown to be in the workspace's repository.
fn members_of(
    ws: &Workspace,
    manifest: &Manifest,
    origin: &Path,
) -> Result<(Vec<Member>, Vec<String>), FciError> {
    let paths = index::referenced(manifest);
    index::check_paths(&paths).map_err(|why| FciError::input(origin, why))?;
    let mut members = Vec::new();
    for path in paths {
        let bad = |why: String| FciError::input(origin, format!("member {path}: {why}"));
        let p = ws.resolve(&path)?;
        if std::fs::symlink_metadata(&p).is_err() {
            return Err(bad(format!(
                "missing from workspace {} (edited manifest or another workspace?): nothing was written",
                ws.root().display()
            )));
        }
        let (kind, sha256, size) = index::digest_of(&p).map_err(&bad)?;
        if kind == MemberType::Dir {
            check_tree(&p).map_err(&bad)?;
        }
        for a in index::artifacts_at(manifest, &path) {
            if !index::is_artifact(a, &p, kind, &sha256) {
                return Err(bad(format!(
                    "does not match the manifest's digest of its `{}` artifact (damaged workspace or edited manifest): nothing was written",
                    a.kind
                )));
            }
        }
        members.push(Member {
            path,
            kind,
            sha256,
            size,
        });
    }
    let mut commits = Vec::new();
    for a in manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::OstreeCommit)
    {
        ws.verify(a, ArtifactKind::OstreeCommit, origin)?;
        if !commits.contains(&a.sha256) {
            commits.push(a.sha256.clone());
        }
    }
    Ok((members, commits))
}

/// A tree a bundle can carry: files, directories and links that stay inside it.
fn check_tree(root: &Path) -> Result<(), String> {
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.map_err(|e| format!("cannot list: {e}"))?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let t = e.file_type();
        if t.is_symlink() {
            let target = std::fs::read_link(e.path()).map_err(|e| e.to_string())?;
            if !index::link_stays_inside(rel, &target) {
                return Err(format!(
                    "{}: a link to {} (outside the tree), which a bundle does not carry",
                    rel.display(),
                    target.display()
                ));
            }
        } else if !t.is_file() && !t.is_dir() {
            return Err(format!(
                "{}: neither a file, a directory nor a link",
                rel.display()
            ));
        }
    }
    Ok(())
}

/// Writes the tar file through a temporary file beside `out` and a rename: never a partial
/// bundle under its name.
fn write(ws: &Workspace, index: &Index, manifest: &str, out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let cannot = |e: &dyn std::fmt::Display| FciError::input(out, format!("cannot write: {e}"));
    let tmp = tempfile::Builder::new()
        .prefix(".fci-bundle-")
        .tempfile_in(dir)
        .map_err(|e| cannot(&e))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
    // Members are stored with their content and the executable bit only (tree digests
    // count it): no owner, no time, nothing of this machine.
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let index_text = serde_json::to_vec_pretty(index)?;
    append_bytes(&mut tar, INDEX, &index_text)?;
    append_bytes(&mut tar, MANIFEST, manifest.as_bytes())?;
    for m in &index.members {
        let src = ws.resolve(&m.path)?;
        let name = format!("{MEMBERS}/{}", m.path);
        match m.kind {
            MemberType::File => tar.append_path_with_name(&src, &name)?,
            MemberType::Dir => tar.append_dir_all(&name, &src)?,
        }
    }
    let w = tar.into_inner()?;
    w.into_inner()
        .map_err(|e| cannot(&e.error()))?
        .sync_all()
        .map_err(|e| cannot(&e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| cannot(&e))?;
    }
    tmp.persist(out).map_err(|e| cannot(&e.error))?;
    Ok(())
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)?;
    Ok(())
}
