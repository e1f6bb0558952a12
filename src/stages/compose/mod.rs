//! `fci compose`: an OSTree commit of the known-good base plus the change's binary RPMs.
//!
//! Backend: `layer.rs` (a checkout of the base, the RPM payloads installed into it with
//! `rpm -U` as rpm-ostree would: updates of base packages of the same name (`rpmdb.rs` reads
//! which, and which files only they own), dependencies checked against the tree's database,
//! the scriptlets run in a sandbox rooted in the tree and the loader cache rebuilt
//! (`scriptlets.rs`), the tree's rpm database kept right, `ostree commit` with the base as
//! parent). An
//! rpm-ostree backend would be a second file behind the same `Layer`-shaped function: it is not
//! here, since rpm-ostree is not packaged for Debian and no test could run it.
//!
//! The known-good ref (`fci/<branch>/known-good`) never moves here: `fci base init`
//! (`base.rs`) sets the first one, and only gating promotes a candidate.

pub mod base;
pub mod filetriggers;
pub mod headers;
pub mod layer;
pub mod payload;
pub mod rewrites;
pub mod rpmdb;
pub mod scriptlets;

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Base, Manifest, StageName, StageRecord};
use crate::ostree::{self, Repo, OSTREE};
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::tool::Tool;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `fci compose`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The dist-git branch whose known-good base to compose on (default: the subject's)
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// A shared OSTree repository (absolute path) for this workspace's pipeline, instead of
    /// the workspace's own `ostree/repo`; recorded in the workspace, so later stages find it
    /// (env FCI_OSTREE_REPO; empty means unset)
    #[arg(long, value_name = "PATH")]
    pub ostree_repo: Option<PathBuf>,
    /// Kill the compose after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit
    #[arg(long, default_value = "30m", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Moved to `fci base init`: accepted, hidden, for one release (remove in the next)
    #[arg(long, value_name = "DIR|TARBALL", hide = true)]
    pub init_base: Option<PathBuf>,
}

impl Args {
    /// The `fci base init` an old `--init-base` stands for, after one line saying so; `None`
    /// for a compose.
    pub fn moved(&self) -> Result<Option<base::Args>> {
        let Some(tree) = &self.init_base else {
            return Ok(None);
        };
        progress::deprecated("compose --init-base", "base init");
        let branch = self.branch.clone().ok_or_else(|| {
            FciError::Usage("--init-base needs --branch (e.g. --branch f41)".into())
        })?;
        let init = base::InitArgs {
            tree: tree.clone(),
            branch,
            ostree_repo: self.ostree_repo.clone(),
        };
        let command = base::Command::Init(init);
        Ok(Some(base::Args { command }))
    }
}

/// The pipeline's OSTree repository: the workspace's own, or the shared one it records.
pub fn repo_path(ws: &Workspace) -> PathBuf {
    ws.ostree_repo()
}

/// Makes the shared repository (`--ostree-repo`, else FCI_OSTREE_REPO; empty is unset) the
/// workspace's, when one is given.
pub(super) fn share_repo(flag: Option<&Path>, workspace: &Path) -> Result<()> {
    let shared = flag.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("FCI_OSTREE_REPO")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(shared) = &shared {
        Workspace::open(workspace)?.share_ostree(shared)?;
    }
    Ok(())
}

/// Runs `fci compose`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    share_repo(args.ostree_repo.as_deref(), workspace)?;
    let common = args.common.clone();
    let mut stage = Compose { args };
    stage::drive(&mut stage, &common, workspace)
}

struct Compose {
    args: Args,
}

impl Stage for Compose {
    type Work = layer::Plan;

    fn name(&self) -> StageName {
        StageName::Compose
    }

    fn tools(&self) -> Vec<Tool> {
        vec![OSTREE, crate::tool::RPM]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        let branch = self
            .args
            .branch
            .clone()
            .or(cx.manifest.subject.branch.clone())
            .ok_or_else(|| {
                FciError::input(&cx.origin, "no branch: the subject has none; pass --branch")
            })?;
        ostree::check_branch(&branch)?;
        // The debuginfo and debugsource packages are left out of the tree, as a compose
        // takes only the packages its treefile asks for.
        let rpms: Vec<Artifact> = cx
            .manifest
            .artifacts_of(ArtifactKind::Rpm)
            .filter(|a| !a.nevra.as_ref().is_some_and(|n| n.is_debug()))
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
                    "no OSTree repository: make the first base with `fci base init DIR --branch {branch}`"
                ),
            )
        })?;
        let base_ref = ostree::known_good_ref(&branch);
        let base = repo.rev_parse(&base_ref, cx.log())?.ok_or_else(|| {
            FciError::input(
                &repo_dir,
                format!(
                    "unknown base ref {base_ref}: make it with `fci base init DIR --branch {branch}`"
                ),
            )
        })?;
        cx.manifest.subject.base = Some(Base {
            ostree_ref: Some(base_ref.clone()),
            ostree_commit: Some(base.clone()),
            ..cx.manifest.subject.base.clone().unwrap_or_default()
        });
        // The scriptlets run within the limits and the timeout: a verdict under other ones is
        // another verdict (a %post cut at 100 MiB may pass with 2 GiB), never the cache's.
        let limits =
            crate::config::run_limits(self.args.limits.partial(), cx.manifest, &mut cx.run.log);
        let timeout = crate::duration::limit(self.args.timeout);
        let inputs = json!({
            "base": base,
            "rpms": rpms.iter().map(|r| &r.sha256).collect::<Vec<_>>(),
            "subject": [&cx.manifest.subject.package, &cx.manifest.subject.commit],
            "limits": limits,
            "timeout_s": timeout.map(|t| t.as_secs()),
            // Commits of earlier versions lack the metadata that binds them to a run
            // (crate::binding): never reused.
            "binding": 1,
        });
        let work = layer::Plan {
            repo,
            branch,
            base_ref,
            base,
            rpms: rpm_paths,
            timeout,
            limits,
        };
        Ok(Plan::Run(inputs, work))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
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
