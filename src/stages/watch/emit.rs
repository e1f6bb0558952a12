//! A change as a manifest: the subject is the new head alone on the branch's known-good base
//! (the OSTree ref and commit, and the package set the report promoted), and the `watch`
//! record keeps the range of the push and what triggered it. Manifests go to a directory, one
//! file per change (named by package, branch and commit, so a re-emitted change overwrites
//! its own file), or to stdout as JSON lines.

use super::{state, Change};
use crate::config::Config;
use crate::error::FciError;
use crate::manifest::{Base, ConfigRef, Manifest, Outcome, StageName, Subject};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

pub enum Output {
    Dir(PathBuf),
    Lines,
}

impl Output {
    pub fn new(dir: Option<&Path>) -> Result<Output, FciError> {
        let Some(dir) = dir else {
            return Ok(Output::Lines);
        };
        // Resolved once, by fci's own rule for links in shared directories: the manifests
        // go where the user meant, never through a link another user planted in /tmp.
        let real = match crate::files::resolve_user_path(dir)? {
            crate::files::UserPath::Dir(p) => p,
            crate::files::UserPath::Missing(p) => {
                std::fs::create_dir_all(&p).map_err(|e| {
                    FciError::input(dir, format!("cannot create the output directory: {e}"))
                })?;
                p
            }
            _ => {
                return Err(FciError::input(
                    dir,
                    "the output directory is not a directory",
                ))
            }
        };
        Ok(Output::Dir(real))
    }

    /// Writes one manifest. A failure is the machine's (exit 3), not bad input: earlier
    /// manifests of the run may be out already.
    pub fn write(&self, m: &Manifest, ch: &Change) -> Result<()> {
        self.write_inner(m, ch).map_err(|e| {
            FciError::Infra(format!(
                "{}: cannot write the manifest of {} {}: {}",
                match self {
                    Output::Dir(d) => d.display().to_string(),
                    Output::Lines => "stdout".into(),
                },
                ch.package,
                ch.range.to,
                crate::error::one_line(&e)
            ))
            .into()
        })
    }

    fn write_inner(&self, m: &Manifest, ch: &Change) -> Result<()> {
        match self {
            Output::Dir(dir) => {
                let name = format!("{}-{}-{}.json", ch.package, ch.branch, ch.range.to);
                crate::files::write_atomic(&dir.join(name), m.to_json().as_bytes())
            }
            Output::Lines => {
                // A closed stdout is /dev/null by the time fci runs (Rust's runtime reopens it
                // there), and /dev/null takes every write: the change would be recorded as
                // seen and never emitted.
                if stdout_is_null() {
                    anyhow::bail!("stdout is closed or /dev/null: the manifest would be lost (give --output-dir DIR)");
                }
                let mut line = serde_json::to_string(m)?;
                line.push('\n');
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()?;
                Ok(())
            }
        }
    }
}

pub fn manifest(cfg: &Config, ws: &Workspace, ch: &Change, kept: &state::Branch) -> Manifest {
    let mut m = Manifest::new(uuid::Uuid::new_v4().to_string());
    m.run.config = Some(ConfigRef {
        path: cfg.path.to_string_lossy().into_owned(),
        sha256: cfg.sha256.clone(),
    });
    let kg_ref = crate::ostree::known_good_ref(&ch.branch);
    m.subject = Subject {
        package: Some(ch.package.clone()),
        repo: Some(ch.repo.clone()),
        branch: Some(ch.branch.clone()),
        commit: Some(ch.range.to.clone()),
        base: Some(Base {
            ostree_commit: known_good_commit(ws, &kg_ref),
            ostree_ref: Some(kg_ref),
            packages: kept.packages.clone(),
            extra: Default::default(),
        }),
        extra: Default::default(),
    };
    let newest = ch.range.commits.first();
    let mut note = format!(
        "{} {} on {}",
        ch.package,
        &ch.range.to[..12.min(ch.range.to.len())],
        ch.branch
    );
    if let Some(c) = newest {
        note.push_str(&format!(" by {}: {}", c.author, c.summary));
    }
    if ch.range.commits.len() > 1 {
        note.push_str(&format!(
            " (+{} earlier commit(s) in the push)",
            ch.range.commits.len() - 1
        ));
    }
    if ch.range.forced {
        note.push_str(" (history rewritten: force-pushed)");
    }
    let mut rec = crate::manifest::StageRecord::instant(StageName::Watch, Outcome::Passed, note);
    rec.data.insert("trigger".into(), ch.trigger.clone());
    rec.data.insert("range".into(), json!(ch.range));
    m.stages.push(rec);
    m
}

/// The branch's known-good commit, when the OSTree repository has one yet (the first compose
/// makes it).
fn known_good_commit(ws: &Workspace, kg_ref: &str) -> Option<String> {
    let text = std::fs::read_to_string(ws.ostree_repo().join("refs/heads").join(kg_ref)).ok()?;
    let c = text.trim();
    crate::ostree::is_checksum(c).then(|| c.to_string())
}

fn stdout_is_null() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(null) = std::fs::metadata("/dev/null") else {
        return false;
    };
    // SAFETY: fstat on descriptor 1 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(1, &mut st) } != 0 {
        return true;
    }
    (st.st_mode & libc::S_IFMT) == libc::S_IFCHR && st.st_rdev == null.rdev()
}
