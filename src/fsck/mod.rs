//! `fci fsck`: an integrity check of the workspace and its pipeline state. Each area has its
//! file here (objects and published trees, the stage cache, the pipeline state and its run
//! records, the OSTree repository and its known-good refs, the spools and the message
//! journal, the results store, scratch, the manifests given). Every finding is one line naming the file and what
//! is wrong, and is either *damage* (something a reader would trust and must not: a
//! corrupted object, a torn state file, a ref the known-good set does not name) or *debris*
//! (what a crash legitimately leaves and nothing trusts: an abandoned scratch directory, a
//! temporary file never renamed, a torn last journal line, an interrupted promotion that the
//! next report completes). `--repair` removes (or completes) debris only; damage is left for a
//! person to look at. Exit 0: no damage (debris allowed); 1: damage; 2: usage; 3: cannot check.

mod cache;
mod debris;
mod journal;
mod manifests;
mod objects;
mod ostree_repo;
mod results;
mod spools;
mod state;

use crate::error::FciError;
use crate::workspace::Workspace;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `fci fsck`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run's manifest to check too: it parses and each artifact it names verifies (repeat
    /// for several)
    #[arg(short = 'm', long = "manifest", value_name = "FILE")]
    pub manifests: Vec<PathBuf>,
    /// Skip `ostree fsck` of the OSTree repository (slow on a large repository); its
    /// known-good refs are still checked
    #[arg(long)]
    pub no_ostree: bool,
    /// Remove what crashes left (debris) and complete interrupted promotions; damage is left
    /// as it is
    #[arg(long)]
    pub repair: bool,
}

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Something a reader trusts is wrong: exit 1.
    Damage,
    /// What a crash legitimately leaves; `--repair` removes it.
    Debris,
}

/// How `--repair` removes a piece of debris.
#[derive(Debug, Clone)]
pub enum Repair {
    /// Remove the file or directory (a scratch directory's mounts first).
    Remove,
    /// Cut a torn last line off the message journal: keep this many bytes.
    Truncate(u64),
    /// Complete the interrupted promotion of this branch (`promote::finish_interrupted`).
    FinishPromotion(String),
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: Kind,
    pub path: PathBuf,
    pub what: String,
    pub repair: Option<Repair>,
}

/// The findings of one check, gathered area by area.
#[derive(Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn damage(&mut self, path: &Path, what: impl Into<String>) {
        self.0.push(Finding {
            kind: Kind::Damage,
            path: path.to_path_buf(),
            what: what.into(),
            repair: None,
        });
    }

    pub fn debris(&mut self, path: &Path, what: impl Into<String>, repair: Repair) {
        self.0.push(Finding {
            kind: Kind::Debris,
            path: path.to_path_buf(),
            what: what.into(),
            repair: Some(repair),
        });
    }

    pub fn has_damage(&self) -> bool {
        self.0.iter().any(|f| f.kind == Kind::Damage)
    }
}

/// Checks every area of the workspace `ws` (and the manifests given); an error is a check that
/// could not be made (the host's: exit 3).
pub fn check(ws: &Workspace, manifests: &[PathBuf], ostree: bool) -> Result<Findings> {
    let mut f = Findings::default();
    objects::check(ws, &mut f)?;
    cache::check(ws, &mut f)?;
    state::check(ws, &mut f)?;
    ostree_repo::check(ws, ostree, &mut f)?;
    spools::check(ws, &mut f)?;
    journal::check(ws, &mut f)?;
    results::check(ws, &mut f)?;
    debris::check(ws, &mut f)?;
    for m in manifests {
        manifests::check(ws, m, &mut f);
    }
    Ok(f)
}

/// Removes or completes one piece of debris; what it could not do, said.
fn repair(ws: &Workspace, finding: &Finding) -> Result<()> {
    let p = &finding.path;
    match &finding.repair {
        None => Ok(()),
        Some(Repair::Remove) => {
            let meta = match std::fs::symlink_metadata(p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if meta.is_dir() {
                // A killed run's volumes may still be mounted there.
                crate::volume::detach_below(p);
                std::fs::remove_dir_all(p)?;
            } else {
                std::fs::remove_file(p)?;
            }
            Ok(())
        }
        Some(Repair::Truncate(len)) => journal::truncate(ws, p, *len),
        Some(Repair::FinishPromotion(branch)) => {
            crate::stages::report::promote::finish_interrupted(ws, branch)
        }
    }
}

pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    // Checking must not make a workspace: a wrong path is the caller's mistake.
    if !workspace.join("objects").is_dir() {
        return Err(FciError::Usage(format!(
            "{}: not an fci workspace (no objects/): nothing to check",
            workspace.display()
        ))
        .into());
    }
    for m in &args.manifests {
        if !m.is_file() {
            return Err(FciError::input(m, "no such manifest file").into());
        }
    }
    let ws = Workspace::open(workspace)?;
    let found = check(&ws, &args.manifests, !args.no_ostree)?;
    let mut damage = 0;
    let mut debris = 0;
    let mut repaired = 0;
    for finding in &found.0 {
        let label = match finding.kind {
            Kind::Damage => {
                damage += 1;
                "damage"
            }
            Kind::Debris => {
                debris += 1;
                "debris"
            }
        };
        let mut line = format!("{label}: {}: {}", finding.path.display(), finding.what);
        if args.repair && finding.kind == Kind::Debris {
            match repair(&ws, finding) {
                Ok(()) => {
                    repaired += 1;
                    line.push_str(" (repaired)");
                }
                Err(e) => {
                    line.push_str(&format!(" (not repaired: {})", crate::error::one_line(&e)))
                }
            }
        }
        println!("{line}");
    }
    crate::progress::note(&format!(
        "fsck {}: {damage} damaged, {debris} debris{}",
        ws.root().display(),
        if args.repair {
            format!(" ({repaired} repaired)")
        } else if debris > 0 {
            " (fci fsck --repair removes it)".into()
        } else {
            String::new()
        }
    ));
    Ok(if damage > 0 {
        crate::error::exit::FAILED
    } else {
        crate::error::exit::PASSED
    })
}

/// Each entry of a directory, sorted (findings in a stable order); none when it is absent.
pub(crate) fn entries(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<_> = rd
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            v.sort();
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => {
            Err(crate::error::FciError::Infra(format!("cannot list {}: {e}", dir.display())).into())
        }
    }
}
