//! `fci base init`: a branch's first known-good base, the OSTree commit every compose of the
//! branch layers its change onto. Not a stage: it prints the commit's checksum, never a
//! manifest. After it, only gating (`fci report --promote`) moves the base.

use super::repo_path;
use crate::error::FciError;
use crate::ostree::{self, Repo, OSTREE};
use crate::progress;
use crate::workspace::Workspace;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `fci base`'s subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Commit a tree (a directory, or a tarball) as a branch's first known-good base; print its
    /// checksum
    #[command(
        after_help = "Exit codes: 0 committed (the checksum on stdout); 2 bad usage or input (not a base tree, a\ntarball tar cannot unpack, the branch has a base already: only gating moves it); 3 ostree\nmissing or failing."
    )]
    Init(InitArgs),
}

/// `fci base init`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// The base tree: a directory with usr/ and usr/lib/sysimage/rpm/, or a tarball of one
    /// (examples/base/make-base.sh makes one)
    #[arg(value_name = "DIR|TARBALL")]
    pub tree: PathBuf,
    /// The dist-git branch whose base it is: its ref is fci/<BRANCH>/known-good
    #[arg(long, value_name = "BRANCH")]
    pub branch: String,
    /// A shared OSTree repository (absolute path) for this workspace's pipeline, as for
    /// `fci compose` (env FCI_OSTREE_REPO; empty means unset)
    #[arg(long, value_name = "PATH")]
    pub ostree_repo: Option<PathBuf>,
}

/// Runs `fci base`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    match args.command {
        Command::Init(a) => {
            super::share_repo(a.ostree_repo.as_deref(), workspace)?;
            init(&a.tree, &a.branch, workspace)
        }
    }
}

/// The branch's first known-good base, committed from a tree (or a tarball of one). Refused
/// when the branch has one: only gating moves it.
fn init(tree: &Path, branch: &str, workspace: &Path) -> Result<i32> {
    ostree::check_branch(branch)?;
    crate::tool::require(OSTREE.program, "ostree")?;
    if !tree.exists() {
        return Err(FciError::input(tree, "no such directory or tarball").into());
    }
    let ws = Workspace::open(workspace)?;
    let scratch = ws.scratch("base-init-")?;
    let mut log = crate::exec::Log::create(&scratch.path().join("base-init.log"))?;
    let repo = Repo::open_or_init(&repo_path(&ws), &mut log)?;
    let base_ref = ostree::known_good_ref(branch);
    if let Some(c) = repo.rev_parse(&base_ref, &mut log)? {
        return Err(FciError::Usage(format!(
            "{base_ref} already exists (commit {c}): the known-good base moves only through gating"
        ))
        .into());
    }
    let dir = if tree.is_dir() {
        tree.canonicalize()?
    } else {
        let dest = scratch.path().join("tree");
        std::fs::create_dir_all(&dest)?;
        log.run(
            &crate::exec::Cmd::new("tar")
                .args(["--numeric-owner", "-xf"])
                .arg(tree)
                .arg("-C")
                .arg(&dest),
        )?
        .checked()
        .map_err(|f| f.input(tree, "not a tarball tar can unpack"))?;
        dest
    };
    for required in ["usr", "usr/lib/sysimage/rpm"] {
        if !dir.join(required).is_dir() {
            return Err(FciError::input(
                tree,
                format!("not a base tree: no {required}/ (examples/base/make-base.sh makes one)"),
            )
            .into());
        }
    }
    let commit = repo.commit(
        &dir,
        Some(&base_ref),
        None,
        &format!("fci known-good base for {branch}"),
        &[("fci.version".into(), env!("CARGO_PKG_VERSION").into())],
        &mut log,
    )?;
    progress::note(&format!("base: {base_ref} is {commit}"));
    crate::files::to_stdout(format!("{commit}\n").as_bytes())?;
    Ok(0)
}
