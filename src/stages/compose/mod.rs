//! `fci compose`: an OSTree commit of the known-good base plus the change's binary RPMs.
//!
//! Backend: `layer.rs` (a hard-link checkout of the base, the RPM payloads installed into it
//! with the tree's rpm database kept right, `ostree commit` with the base as parent). An
//! rpm-ostree backend would be a second file behind the same `Layer`-shaped function: it is not
//! here, since rpm-ostree is not packaged for Debian and no test could run it.
//!
//! The known-good ref (`fci/<branch>/known-good`) never moves here: `--init-base` sets the
//! first one, and only gating promotes a candidate.

pub mod layer;
pub mod payload;

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Base, Manifest, StageName, StageRecord};
use crate::ostree::{self, Repo, OSTREE};
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage, Tool};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `fci compose`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Commit this tree (a directory, or a tarball) as the branch's first known-good base,
    /// print its checksum and exit
    #[arg(long, value_name = "DIR|TARBALL")]
    pub init_base: Option<PathBuf>,
    /// The dist-git branch whose known-good base to compose on (default: the subject's)
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// A shared OSTree repository (absolute path) for this workspace's pipeline, instead of
    /// the workspace's own `ostree/repo`; recorded in the workspace, so later stages find it
    /// (env FCI_OSTREE_REPO; empty means unset)
    #[arg(long, value_name = "PATH")]
    pub ostree_repo: Option<PathBuf>,
    /// Kill the compose after this many seconds (ERROR); 0 for no limit
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub timeout: u64,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The pipeline's OSTree repository: the workspace's own, or the shared one it records.
pub fn repo_path(ws: &Workspace) -> PathBuf {
    ws.ostree_repo()
}

/// Runs `fci compose`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let shared = args.ostree_repo.clone().or_else(|| {
        std::env::var_os("FCI_OSTREE_REPO")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(shared) = &shared {
        Workspace::open(workspace)?.share_ostree(shared)?;
    }
    if let Some(tree) = &args.init_base {
        return init_base(tree, args.branch.as_deref(), workspace);
    }
    let common = args.common.clone();
    let mut stage = Compose {
        args,
        planned: None,
    };
    stage::drive(&mut stage, &common, workspace)
}

struct Compose {
    args: Args,
    planned: Option<layer::Plan>,
}

impl Stage for Compose {
    fn name(&self) -> StageName {
        StageName::Compose
    }

    fn tools(&self) -> Vec<Tool> {
        vec![OSTREE, stage::RPM]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan> {
        let branch = self
            .args
            .branch
            .clone()
            .or(cx.manifest.subject.branch.clone())
            .ok_or_else(|| {
                FciError::input(&cx.origin, "no branch: the subject has none; pass --branch")
            })?;
        ostree::check_branch(&branch)?;
        let rpms: Vec<Artifact> = cx
            .manifest
            .artifacts_of(ArtifactKind::Rpm)
            .cloned()
            .collect();
        if rpms.is_empty() {
            return Err(FciError::input(
                &cx.origin,
                "no `rpm` artifacts to compose: run `fci build` (and `fci test`) first",
            )
            .into());
        }
        let rpm_paths: Vec<PathBuf> = rpms
            .iter()
            .map(|r| cx.consume(r, ArtifactKind::Rpm))
            .collect::<Result<_>>()?;
        let repo_dir = repo_path(cx.ws);
        let repo = Repo::open(&repo_dir).map_err(|_| {
            FciError::input(
                &repo_dir,
                format!(
                    "no OSTree repository: make the first base with `fci compose --init-base DIR --branch {branch}`"
                ),
            )
        })?;
        let base_ref = ostree::known_good_ref(&branch);
        let base = repo.rev_parse(&base_ref, cx.log())?.ok_or_else(|| {
            FciError::input(
                &repo_dir,
                format!(
                    "unknown base ref {base_ref}: make it with `fci compose --init-base DIR --branch {branch}`"
                ),
            )
        })?;
        cx.manifest.subject.base = Some(Base {
            ostree_ref: Some(base_ref.clone()),
            ostree_commit: Some(base.clone()),
            ..cx.manifest.subject.base.clone().unwrap_or_default()
        });
        let inputs = json!({
            "base": base,
            "rpms": rpms.iter().map(|r| &r.sha256).collect::<Vec<_>>(),
            "subject": [&cx.manifest.subject.package, &cx.manifest.subject.commit],
            // Commits of earlier versions lack the metadata that binds them to a run
            // (crate::binding): never reused.
            "binding": 1,
        });
        self.planned = Some(layer::Plan {
            repo,
            branch,
            base_ref,
            base,
            rpms: rpm_paths,
            timeout: crate::cli::timeout(self.args.timeout),
            // No package code runs here (rpm runs with --noscripts): of the limits, the
            // scratch space bounds what the install writes into the tree.
            limits: crate::config::run_limits(
                self.args.limits.partial(),
                cx.manifest,
                &mut cx.run.log,
            ),
        });
        Ok(Plan::Run(inputs))
    }

    fn execute(&mut self, cx: &mut Ctx, rec: &mut RecordParts) -> Result<Vec<Artifact>> {
        let p = self.planned.take().expect("planned before executed");
        let spinner = Spinner::new("compose");
        spinner.step("layering the change onto the base");
        layer::compose(&p, cx, rec)
    }

    fn summary(&self, record: &StageRecord, _manifest: &Manifest) {
        let commit = record
            .data
            .get("commit")
            .and_then(|c| c.as_str())
            .unwrap_or("no commit");
        progress::note(&format!(
            "compose {} in {:.1}s: {commit}",
            record.outcome, record.duration_s
        ));
    }
}

/// `--init-base`: the branch's first known-good base, committed from a tree (or a tarball of
/// one). Refused when the branch has one: only gating moves it.
fn init_base(tree: &Path, branch: Option<&str>, workspace: &Path) -> Result<i32> {
    let branch = branch
        .ok_or_else(|| FciError::Usage("--init-base needs --branch (e.g. --branch f41)".into()))?;
    ostree::check_branch(branch)?;
    crate::exec::require(OSTREE.program, "ostree")?;
    if !tree.exists() {
        return Err(FciError::input(tree, "no such directory or tarball").into());
    }
    let ws = Workspace::open(workspace)?;
    let scratch = ws.scratch("init-base-")?;
    let mut log = crate::exec::Log::create(&scratch.path().join("init-base.log"))?;
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
    progress::note(&format!("compose: {base_ref} is {commit}"));
    println!("{commit}");
    Ok(0)
}
