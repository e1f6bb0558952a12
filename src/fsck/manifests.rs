//! The manifests given with `-m`: each parses, and each artifact it names is in the
//! workspace with the content the manifest records (`Workspace::verify`).

use super::Findings;
use crate::manifest::{Artifact, ArtifactKind, Manifest};
use crate::workspace::Workspace;
use std::path::Path;

/// Whether the artifact's file, tree or commit is there at all (whatever its content).
pub fn present(ws: &Workspace, a: &Artifact) -> bool {
    let Ok(p) = ws.resolve(&a.path) else {
        return false;
    };
    if a.kind == ArtifactKind::OstreeCommit {
        return crate::ostree::Repo::open(&p).is_ok_and(|r| r.has_commit(&a.sha256));
    }
    std::fs::symlink_metadata(p).is_ok()
}

/// `a` verified as a stage would before consuming it; the reason when it is not what
/// `origin` says.
pub fn verify(ws: &Workspace, a: &Artifact, origin: &Path) -> Result<(), String> {
    if a.kind == ArtifactKind::RpmRepo {
        // `fci build` records a repository by its repodata/repomd.xml's sha256 (its
        // packages are objects of their own), not by a tree digest.
        let p = ws.resolve(&a.path).map_err(|e| e.to_string())?;
        let repomd = p.join("repodata/repomd.xml");
        return match crate::digest::sha256_file(&repomd) {
            Ok((h, _)) if h == a.sha256 => Ok(()),
            Ok(_) => Err(format!(
                "artifact {}: repodata/repomd.xml does not match its sha256",
                a.path
            )),
            Err(e) => Err(format!(
                "artifact {}: {}",
                a.path,
                crate::error::one_line(&e)
            )),
        };
    }
    // An object's content is its name, which `objects::check` hashes once for the whole
    // check: an artifact naming that object by the same digest needs no second hashing (an
    // image is hundreds of megabytes, named by every record and cache entry of its run).
    let parts: Vec<&str> = a.path.split('/').collect();
    if let ["objects", fan, sha, _name] = parts[..] {
        if *sha == a.sha256 && sha.starts_with(fan) && a.kind != ArtifactKind::OstreeCommit {
            let p = ws.resolve(&a.path).map_err(|e| e.to_string())?;
            return match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => Ok(()),
                _ => Err(format!(
                    "artifact {}: missing from workspace {}",
                    a.path,
                    ws.root().display()
                )),
            };
        }
    }
    ws.verify(a, a.kind.clone(), origin)
        .map(|_| ())
        .map_err(|e| match e {
            // The origin is the line's path already.
            crate::error::FciError::Input { msg, .. } => msg,
            e => e.to_string(),
        })
}

pub fn check(ws: &Workspace, path: &Path, f: &mut Findings) {
    let m = match Manifest::read(path) {
        Ok(m) => m,
        Err(e) => {
            f.damage(path, format!("does not parse: {e}"));
            return;
        }
    };
    for a in &m.artifacts {
        if let Err(why) = verify(ws, a, path) {
            f.damage(path, why);
        }
    }
}
