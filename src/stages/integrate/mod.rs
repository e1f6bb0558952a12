//! `fci integrate`: the pipeline's OS-level tests (STI or tmt, the runners of `fci test`)
//! on a read-only checkout of the composed commit. Each test command runs with the tree as its
//! root (`sandbox::Guest`, entered by chroot from fci's roles and its tmt plugin), so what
//! the tree lacks fails as at boot; the runner stays on the host's view, nothing of the tree
//! layered over it.

use crate::distgit;
use crate::error::FciError;
use crate::manifest::{Artifact, Manifest, Outcome, StageName, StageRecord};
use crate::ostree::{Repo, OSTREE};
use crate::progress::Spinner;
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::suites::runner::{Env, GuestTree};
use crate::suites::{self, attempts, sti, suite};
use crate::tool::Tool;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `fci integrate`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The integration tests: a directory or git URL holding tests/tests*.yml or tmt plans
    #[arg(long, value_name = "DIR|URL")]
    pub tests: String,
    /// Git ref of the tests, for a URL
    #[arg(long = "tests-ref", value_name = "REF")]
    pub tests_ref: Option<String>,
    #[command(flatten)]
    pub suite: suites::SuiteArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `fci integrate`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let common = args.common.clone();
    let mut stage = Integrate {
        args,
        foreseen: Vec::new(),
    };
    stage::drive(&mut stage, &common, workspace)
}

struct Integrate {
    args: Args,
    /// The Fedora tests its tests tree foresees (see `fci test`'s).
    foreseen: Vec<String>,
}

struct Planned {
    /// `data.suite`: which tests run.
    suite: serde_json::Value,
    /// `data.fedora_tests`: the Fedora test names its suites report under.
    fedora_tests: Vec<String>,
    repo: Repo,
    commit: String,
    tests: distgit::Checkout,
    suites: Vec<Box<dyn suite::Suite>>,
}

impl Stage for Integrate {
    type Work = Planned;

    fn name(&self) -> StageName {
        StageName::Integrate
    }

    fn tools(&self) -> Vec<Tool> {
        vec![
            OSTREE,
            crate::tool::BWRAP,
            crate::tool::RPM,
            crate::tool::CHROOT,
        ]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        let a = &self.args;
        let composed = crate::binding::require_composed(
            cx,
            "no composed `ostree-commit` artifact: run `fci compose` first",
        )?;
        let dir = cx.dir();
        let tests = distgit::checkout(
            &a.tests,
            a.tests_ref.as_deref(),
            &dir,
            vec![cx.ws.root().to_path_buf()],
            crate::duration::limit(a.suite.timeout),
            cx.log(),
        )?;
        let foreseen = suites::fedora_tests(&tests.dir, a.suite.runner);
        self.foreseen = foreseen.clone();
        let suites = suites::discover(&tests.dir, a.suite.runner)?;
        if suites.is_empty() {
            return Err(FciError::input(
                &tests.dir,
                "no integration tests here: neither tests/tests*.yml (STI) nor tmt plans",
            )
            .into());
        }
        for t in suites.iter().flat_map(|s| s.tools()) {
            cx.require(t)?;
        }
        let files = tests.files()?;
        let tests_digest = crate::digest::tree_digest(&tests.dir, &files)?;
        let inputs = json!({
            "commit": composed.commit,
            "tests": tests_digest,
            "runner": a.suite.runner,
            "tags": a.suite.tags,
            "retries": a.suite.retries,
            "network": a.suite.network,
            // The tests run in the tree, not layered over the host: a verdict of the layered
            // view (an older fci's) is not this one's.
            "guest_root": true,
            // The limits on package code are an option like any other (see fci test).
            "limits": crate::config::run_limits(a.suite.limits.partial(), cx.manifest, &mut cx.run.log),
        });
        let work = Planned {
            suite: a.suite.identity(&tests_digest),
            fedora_tests: foreseen,
            repo: composed.repo,
            commit: composed.commit,
            tests,
            suites,
        };
        Ok(Plan::Run(inputs, work))
    }

    fn mistaken(&self, _at: &str, _manifest: &mut Manifest, rec: &mut RecordParts) {
        rec.data.insert("fedora_tests".into(), json!(self.foreseen));
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let a = &self.args;
        rec.data.insert("suite".into(), p.suite.clone());
        rec.data
            .insert("fedora_tests".into(), json!(p.fedora_tests));
        let spinner = Spinner::new("integrate");
        spinner.step("checking out the composed commit");
        // Hard links into the repository, seen only through read-only binds (the guest root).
        let root = cx.dir().join("root");
        p.repo.checkout(&p.commit, &root, cx.log())?;
        let roles = sti::install_roles(&cx.ws.share("roles"))?;
        let tree = p.tests.dir.clone();
        let private: Vec<PathBuf> = p.tests.private_paths();
        let limits =
            crate::config::run_limits(a.suite.limits.partial(), cx.manifest, &mut cx.run.log);
        rec.data.insert("limits".into(), json!(limits));
        // The test commands run in the tree itself (its libraries and programs only, as at
        // boot); the runner (ansible-playbook, tmt: Python the tree does not have) runs on the
        // host's read-only view, with nothing of the tree layered over it: the package's files
        // (a `.pth` in Python's path, a program on PATH) are never the runner's. See
        // `sandbox::Guest`.
        let guest = GuestTree {
            tree: root.clone(),
            chroot: crate::tool::CHROOT.find()?,
        };
        rec.data.insert("guest_root".into(), json!(true));
        let env = Env {
            overlays: &[],
            tree: &tree,
            readonly: vec![roles.clone()],
            hide: private
                .into_iter()
                .chain(std::iter::once(cx.ws.root().to_path_buf()))
                .collect(),
            subjects: Vec::new(),
            network: a.suite.network,
            timeout: crate::duration::limit(a.suite.timeout),
            limits,
            guest: Some(&guest),
        };
        rec.data.insert("commit".into(), json!(p.commit));
        let rcx = suite::RunCtx {
            env: &env,
            tags: &a.suite.tags,
            roles: &roles,
        };
        let artifacts = attempts::run(
            attempts::Attempts {
                suites: &p.suites,
                rcx: &rcx,
                stage: StageName::Integrate,
                retries: a.suite.retries,
                rerun: None,
            },
            cx,
            rec,
            &spinner,
        )?;
        if rec.outcome == Outcome::Info {
            rec.notes
                .push("the integration tests reported only INFO".into());
        }
        Ok(artifacts)
    }

    fn summary(&self, record: &StageRecord, _manifest: &Manifest) {
        suites::results::summary(record);
    }
}
