//! The dist-git checkout as a tree of files: its spec, its symlinks, its snapshot.

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, StageName};
use crate::workspace::Workspace;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Refuses symlinks that could carry anything but the package's own files into the build:
/// a link out of the checkout (fci would read its target as root on the host), into `.git`
/// (a remote URL with a token, hooks), or to a file the repository does not track (ignored
/// leftovers). What is left points at tracked files, so the input digest, which hashes each
/// link's text and each tracked file's content, covers everything a build reads.
pub fn check_symlinks(dir: &Path, files: &[PathBuf]) -> Result<()> {
    for f in files {
        let p = dir.join(f);
        if !std::fs::symlink_metadata(&p)?.file_type().is_symlink() {
            continue;
        }
        let refuse = |why: String| -> anyhow::Error {
            FciError::input(&p, format!("symlink points {why}")).into()
        };
        let Some(rel) = p
            .canonicalize()
            .ok()
            .and_then(|r| r.strip_prefix(dir).ok().map(Path::to_path_buf))
        else {
            return Err(refuse("outside the dist-git checkout (or nowhere)".into()));
        };
        if rel.as_os_str().is_empty() || rel.components().any(|c| c.as_os_str() == ".git") {
            return Err(refuse("into .git, which never reaches a package".into()));
        }
        let tracked = files.iter().any(|t| t == &rel || t.starts_with(&rel));
        if !tracked {
            return Err(refuse(format!(
                "at `{}`, which is not a file of the repository (untracked or ignored)",
                rel.display()
            )));
        }
    }
    Ok(())
}

/// The one spec of a dist-git repo (or the one named).
pub fn find_spec(dir: &Path, named: Option<&Path>) -> Result<PathBuf> {
    if let Some(n) = named {
        let p = dir.join(n);
        if !p.starts_with(dir)
            || n.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(FciError::input(n, "spec path escapes the dist-git checkout").into());
        }
        if !p.is_file() {
            return Err(FciError::input(&p, "spec file not found").into());
        }
        return Ok(p);
    }
    let mut specs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "spec") && p.is_file())
        .collect();
    specs.sort();
    match specs.len() {
        0 => Err(FciError::input(dir, "no .spec file in the dist-git checkout").into()),
        1 => Ok(specs.remove(0)),
        _ => Err(FciError::input(dir, "several .spec files; choose one with --spec").into()),
    }
}

/// The dist-git tree (tests, plans, gating.yaml; without lookaside blobs) for later stages.
pub fn snapshot(ws: &Workspace, dir: &Path, files: &[PathBuf], tree: &str) -> Result<Artifact> {
    let staged = ws.scratch("tree-")?;
    let root = staged.path().join("t");
    crate::files::copy_files(dir, files, &root)?;
    let published = ws.publish_dir(&root, "trees", tree)?;
    Ok(Artifact {
        kind: ArtifactKind::DistGit,
        name: "dist-git".into(),
        path: ws.relative(&published),
        sha256: tree.to_string(),
        size: files
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum(),
        stage: StageName::Build.to_string(),
        nevra: None,
        extra: Default::default(),
    })
}
