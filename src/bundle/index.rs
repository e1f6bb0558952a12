//! The bundle's index and what both ends compute the same way: the paths a manifest
//! references, a member's digest, and whether it is the content the manifest names.

use crate::manifest::{check_relative, Artifact, ArtifactKind, Manifest};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

/// The index's format; a reader refuses any other.
pub const FORMAT: &str = "fci-bundle/v1";
/// The index's member name in the tar file (its first entry).
pub const INDEX: &str = "fci-bundle.json";
/// The manifest's member name (the second entry).
pub const MANIFEST: &str = "manifest.json";
/// The directory the members are under, at their workspace-relative paths.
pub const MEMBERS: &str = "members";

/// Bounds on what `fci unbundle` reads (README "Limits"): a bundle is a file from elsewhere.
pub mod caps {
    /// The index (`fci-bundle.json`).
    pub const INDEX: u64 = 64 * 1024 * 1024;
    /// Every member's bytes together (a run with a disk image is a few GiB).
    pub const TOTAL: u64 = 64 * 1024 * 1024 * 1024;
    /// Entries in the tar file (files and directories of every member).
    pub const ENTRIES: u64 = 1_000_000;
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Index {
    pub format: String,
    /// sha256 of `manifest.json` as it is in the bundle.
    pub manifest_sha256: String,
    pub members: Vec<Member>,
    /// The OSTree commits the manifest names: never carried (docs/bundle.md), only recorded.
    #[serde(default)]
    pub ostree_commits: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Member {
    /// Workspace-relative, as the manifest names it.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: MemberType,
    /// A file's sha256, or a directory's tree digest (`crate::digest::tree_digest`).
    pub sha256: String,
    /// Bytes (a directory's: of its files).
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemberType {
    File,
    Dir,
}

/// Every workspace path the manifest references, once each, in order: each artifact's
/// (but an OSTree commit's, which names the repository), each record's log and each result's.
pub fn referenced(m: &Manifest) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let logs = m.stages.iter().flat_map(|s| {
        s.log
            .iter()
            .chain(s.results.iter().filter_map(|r| r.log.as_ref()))
    });
    let paths = m
        .artifacts
        .iter()
        .filter(|a| a.kind != ArtifactKind::OstreeCommit)
        .map(|a| &a.path)
        .chain(logs);
    for p in paths {
        let p = normal(p);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// A relative path without `.` components or doubled slashes: one name per member.
pub fn normal(p: &str) -> String {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Why the members' paths cannot be a bundle's: one escapes, one is there twice, or one is
/// inside another (a member is a whole file or tree, never part of another). Linear in the
/// members and their depth: an index may list many.
pub fn check_paths(paths: &[String]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        check_relative(p).map_err(|why| format!("member {p} {why}"))?;
        if !seen.insert(normal(p)) {
            return Err(format!("member {p} is there twice"));
        }
    }
    for p in paths {
        let p = normal(p);
        let mut at = p.as_str();
        while let Some((up, _)) = at.rsplit_once('/') {
            if seen.contains(up) {
                return Err(format!("member {p} is inside member {up}"));
            }
            at = up;
        }
    }
    Ok(())
}

/// The member's digest and size: a file's sha256, or a directory's tree digest and the
/// bytes of its files. Anything else (a link, a device) is no member.
pub fn digest_of(p: &Path) -> Result<(MemberType, String, u64), String> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| format!("cannot read: {e}"))?;
    if meta.is_file() {
        let (sha, size) = crate::digest::sha256_file(p).map_err(|e| crate::error::one_line(&e))?;
        Ok((MemberType::File, sha, size))
    } else if meta.is_dir() {
        let files = crate::digest::list_files(p, &[]).map_err(|e| crate::error::one_line(&e))?;
        let tree = crate::digest::tree_digest(p, &files).map_err(|e| crate::error::one_line(&e))?;
        let mut size = 0;
        for f in &files {
            let m = std::fs::symlink_metadata(p.join(f)).map_err(|e| e.to_string())?;
            if m.is_file() {
                size += m.len();
            }
        }
        Ok((MemberType::Dir, tree, size))
    } else {
        Err("neither a file nor a directory".into())
    }
}

/// Whether the member at `p` (its index digest `found`) is the content the manifest's
/// artifact `a` names: a file's sha256; a repository's (`rpm-repo`) the sha256 of its
/// `repodata/repomd.xml`, as `fci build` records it; another tree's its tree digest.
pub fn is_artifact(a: &Artifact, p: &Path, kind: MemberType, found: &str) -> bool {
    match (kind, &a.kind) {
        (MemberType::Dir, ArtifactKind::RpmRepo) => {
            let repomd = p.join("repodata/repomd.xml");
            std::fs::symlink_metadata(&repomd).is_ok_and(|m| m.is_file())
                && crate::digest::sha256_file(&repomd).is_ok_and(|(h, _)| h == a.sha256)
        }
        _ => found == a.sha256,
    }
}

/// The artifacts of the manifest at the workspace path `path`.
pub fn artifacts_at<'a>(m: &'a Manifest, path: &'a str) -> impl Iterator<Item = &'a Artifact> {
    m.artifacts
        .iter()
        .filter(move |a| a.kind != ArtifactKind::OstreeCommit && normal(&a.path) == path)
}

/// A link inside a member's tree may only point within it: relative, `..` only at its start
/// (after a name, `..` would climb from wherever a link among them leads), and never above the
/// member's root from where it is (`at`, relative to the root, below real directories only).
pub fn link_stays_inside(at: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = at.parent().map_or(0, |d| {
        d.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count() as i64
    });
    let mut named = false;
    for c in target.components() {
        match c {
            Component::Normal(_) => named = true,
            Component::ParentDir if !named => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_or_escaping_members_are_refused() {
        assert!(check_paths(&["objects/a/x".into(), "trees/t".into()]).is_ok());
        assert!(check_paths(&["trees/t".into(), "trees/t/f".into()]).is_err());
        assert!(check_paths(&["trees/t/f".into(), "trees/t".into()]).is_err());
        assert!(check_paths(&["trees/t".into(), "trees/t".into()]).is_err());
        assert!(check_paths(&["trees/t-1/f".into(), "trees/t".into()]).is_ok());
        assert!(check_paths(&["../x".into()]).is_err());
        assert!(check_paths(&["/etc/passwd".into()]).is_err());
    }

    #[test]
    fn links_must_stay_in_their_member() {
        assert!(link_stays_inside(Path::new("d/l"), Path::new("../f")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../f")));
        assert!(!link_stays_inside(
            Path::new("d/l"),
            Path::new("/etc/passwd")
        ));
        assert!(!link_stays_inside(Path::new("d/l"), Path::new("../../f")));
        assert!(!link_stays_inside(Path::new("d/l"), Path::new("x/../../f")));
    }
}
