//! The built packages: recorded with their NEVRA, and indexed as an rpm-md repository.

use super::spec;
use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::manifest::{Artifact, ArtifactKind, StageName};
use crate::stage::StageRun;
use crate::workspace::Workspace;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A package in the build's output that the build did not make (package code can write
/// there): the package's failure, named with the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotTheBuilds(pub String);

/// Stores every package (NEVRA from its header) and publishes a repository of the binary ones;
/// also returns the source package's BuildRequires and its latest changelog entry's author.
pub fn record_packages(
    ws: &Workspace,
    st: &mut StageRun,
    packages: &[PathBuf],
) -> Result<(Vec<Artifact>, Vec<String>, Option<String>)> {
    let mut artifacts = Vec::new();
    let mut buildrequires = Vec::new();
    let mut changelog_name = None;
    // createrepo_c runs beside the header queries and the hashing: both only read the RPMs.
    let staged = st.dir().join("repo");
    std::fs::create_dir_all(&staged)?;
    for p in packages {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if !name.ends_with(".src.rpm") && !name.ends_with(".nosrc.rpm") {
            crate::files::copy_plain(p, &staged.join(&*name), None)?;
        }
    }
    let cr_log = st.dir().join("createrepo.log");
    let (indexed, recorded) = std::thread::scope(|sc| {
        // Its failure's reason: createrepo_c's own last line.
        let cr = sc.spawn(|| -> Result<Option<String>> {
            let mut l = Log::create(&cr_log)?;
            let cmd = Cmd::new("createrepo_c")
                .args(["--quiet", "--no-database"])
                .arg(&staged);
            let done = l.capture(&cmd)?;
            Ok((!done.success()).then(|| done.reason().to_string()))
        });
        let recorded = (|| -> Result<Vec<Artifact>> {
            let headers = spec::headers(packages, &mut st.log)?;
            check_origin(packages, &headers)?;
            let mut arts = Vec::new();
            for (p, h) in packages.iter().zip(headers) {
                let n = h.nevra;
                let kind = if n.arch == "src" {
                    buildrequires = h.requires;
                    changelog_name = h.changelog_name;
                    ArtifactKind::Srpm
                } else {
                    ArtifactKind::Rpm
                };
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let mut a = ws.store(p, kind, &name, StageName::Build)?;
                a.nevra = Some(n);
                arts.push(a);
            }
            Ok(arts)
        })();
        (cr.join().expect("createrepo thread"), recorded)
    });
    st.log.append_file(&cr_log);
    artifacts.extend(recorded?);
    if let Some(why) = indexed? {
        return Err(FciError::Infra(format!(
            "createrepo_c failed on {}: {why}",
            staged.display()
        ))
        .into());
    }
    artifacts.push(publish_repo(ws, &staged, &artifacts)?);
    Ok((artifacts, buildrequires, changelog_name))
}

/// Every binary package comes from this build's source package (`headers` are the
/// packages', in order): package code can drop any RPM into the output directories.
pub fn check_origin(packages: &[PathBuf], headers: &[spec::Header]) -> Result<()> {
    let srpm_file = packages
        .iter()
        .zip(headers)
        .find(|(_, h)| h.nevra.arch == "src")
        .and_then(|(p, _)| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    for (p, h) in packages.iter().zip(headers) {
        if h.nevra.arch != "src" && h.sourcerpm != srpm_file {
            return Err(NotTheBuilds(format!(
                "{} in the build's output names source package {}, not this build's {}: package code put it there",
                p.file_name().unwrap_or_default().to_string_lossy(),
                h.sourcerpm.as_deref().unwrap_or("(none)"),
                srpm_file.as_deref().unwrap_or("(none)")
            ))
            .into());
        }
    }
    Ok(())
}

/// Publishes the indexed repository of the binary packages under `repos/`.
fn publish_repo(ws: &Workspace, staged: &Path, artifacts: &[Artifact]) -> Result<Artifact> {
    let rpms: Vec<&Artifact> = artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::Rpm)
        .collect();
    let ids: Vec<&str> = rpms.iter().map(|a| a.sha256.as_str()).collect();
    let key = crate::digest::sha256_bytes(ids.join(",").as_bytes());
    let dir = ws.publish_dir(staged, "repos", &key)?;
    let (sha, _) = crate::digest::sha256_file(&dir.join("repodata/repomd.xml"))?;
    Ok(Artifact {
        kind: ArtifactKind::RpmRepo,
        name: "repo".into(),
        path: ws.relative(&dir),
        sha256: sha,
        size: rpms.iter().map(|a| a.size).sum(),
        stage: StageName::Build.to_string(),
        nevra: None,
        extra: Default::default(),
    })
}
