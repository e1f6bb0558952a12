//! `fci build`: SRPM and binary RPMs from a dist-git checkout, `%check` included.
//!
//! `prepare` checks out and resolves what to build (its inputs), `work` builds it; the stage
//! driver does the rest. Backends: `rpmbuild.rs` (default) and `mock.rs`.

pub mod autospec;
pub mod backend;
mod builddeps;
mod cause;
mod define;
pub mod fedora_env;
pub mod mock;
pub mod prepare;
pub mod repo;
pub mod rpmbuild;
pub mod rpmlint;
pub mod sources;
pub mod spec;
pub mod tree;
pub mod unexpanded;
mod work;

use crate::error::FciError;
use crate::manifest::{ArtifactKind, Manifest, StageName, StageRecord};
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::tool::Tool;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

pub const RPMSPEC: Tool = Tool::new("rpmspec", "rpm");
pub const RPMBUILD: Tool = Tool::new("rpmbuild", "rpm");
pub const CREATEREPO: Tool = Tool::new("createrepo_c", "createrepo-c");
pub const MOCK: Tool = Tool::new("mock", "mock");

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// mock when it is on PATH and can build here, else rpmbuild
    Auto,
    Mock,
    Rpmbuild,
}

/// `fci build`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Dist-git checkout: a local directory or a git URL (default: the manifest's subject)
    #[arg(value_name = "PATH|URL")]
    pub source: Option<String>,
    /// Git ref (branch, tag or commit) to build
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Lookaside cache for the `sources` file: a directory or an http(s) URL
    #[arg(long, env = "FCI_LOOKASIDE", value_name = "DIR|URL")]
    pub lookaside: Option<String>,
    /// Build backend
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// mock configuration (mock -r)
    #[arg(long, value_name = "CONFIG")]
    pub mock_config: Option<String>,
    /// %{dist} tag, e.g. .fc41 (default: from the branch name)
    #[arg(long, value_name = "TAG", value_parser = parse_dist)]
    pub dist: Option<String>,
    /// Dist-git branch name, when the checkout does not tell (f41, epel9, c10s, rawhide)
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// The Fedora release number rawhide (and a `main` branch) builds for
    #[arg(long, env = "FCI_RAWHIDE_RELEASE", default_value_t = crate::distgit::RAWHIDE, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rawhide_release: u32,
    /// The spec to build, relative to the checkout (default: its only .spec)
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Extra rpm macro definition: NAME=VALUE, or as rpm takes it, 'NAME BODY' or
    /// 'NAME(OPTS) BODY' (repeatable)
    #[arg(long = "define", short = 'D', value_name = "NAME=VALUE", value_parser = define::parse_define)]
    pub defines: Vec<(String, String)>,
    /// Do not run %check (the build.check result is SKIPPED)
    #[arg(long)]
    pub nocheck: bool,
    /// Fail (ERROR) instead of building with --nodeps when the host cannot satisfy BuildRequires
    #[arg(long)]
    pub strict_builddeps: bool,
    /// Kill the build (and a clone of a dist-git URL) after this long (ERROR): seconds, or 90m,
    /// 4h, 1h30m; 0 for no limit
    #[arg(long, default_value = "4h", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A dist tag as rpm's release field can carry it: `.fc41`, `.el9_4`, or empty.
fn parse_dist(s: &str) -> Result<String, String> {
    let ok = s.is_empty()
        || (s.starts_with('.')
            && s[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~')));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a dist tag (a dot, then letters, digits, `.`, `_`, `+` or `~`: .fc41)"
        ))
    }
}

/// Runs `fci build`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    // Flags are checked before anything is read or written (bad input: exit 2).
    let lookaside = args
        .lookaside
        .as_deref()
        .map(sources::Lookaside::parse)
        .transpose()?;
    let common = args.common.clone();
    let mut stage = Build {
        args,
        lookaside,
        spinner: None,
    };
    stage::drive(&mut stage, &common, workspace)
}

struct Build {
    args: Args,
    lookaside: Option<sources::Lookaside>,
    spinner: Option<Spinner>,
}

impl Stage for Build {
    type Work = prepare::Prepared;

    fn name(&self) -> StageName {
        StageName::Build
    }

    fn starts_run(&self) -> bool {
        self.args.source.is_some()
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        // rpmbuild runs its scriptlets as `/bin/sh -e PATH` unquoted: a build directory with
        // whitespace fails every package's %prep, which is the workspace's doing, not theirs.
        if cx.ws.root().to_string_lossy().contains(char::is_whitespace) {
            return Err(FciError::Usage(format!(
                "workspace {}: rpmbuild cannot build under a path with whitespace; use --workspace without it",
                cx.ws.root().display()
            ))
            .into());
        }
        let spinner = Spinner::new("build");
        spinner.step("checking out dist-git");
        self.spinner = Some(spinner);
        let p = prepare::prepare(&self.args, cx)?;
        let inputs = p.inputs(&self.args, cx);
        Ok(Plan::Run(inputs, p))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<crate::manifest::Artifact>> {
        // What it verified: a failed %check is cleared for the run only by a later build
        // that ran %check too, never by a --nocheck one (run_records::standing).
        rec.data.insert(
            "suite".into(),
            serde_json::json!({"check": !self.args.nocheck}),
        );
        // The lookaside sources by the `sources` file's hashes: the build's attestation names
        // them among what it stood on.
        if !p.entries.is_empty() {
            let sources: Vec<_> = p
                .entries
                .iter()
                .map(|e| json!({"name": e.name, "algo": e.algo, "hash": e.hash}))
                .collect();
            rec.data.insert("sources".into(), json!(sources));
        }
        let out = work::build(
            &self.args,
            self.lookaside.as_ref(),
            &p,
            cx,
            rec,
            self.spinner.as_ref(),
        );
        self.spinner = None;
        out
    }

    /// A spec that does not parse still names its package (dist-git's rule: the spec is
    /// `<package>.spec`) and, in a local checkout, its maintainer (the latest `%changelog`
    /// entry's address, read as text): the messages of its FAILED reach them.
    fn mistaken(&self, at: &str, manifest: &mut Manifest, rec: &mut RecordParts) {
        let file = at.split(':').next().unwrap_or(at);
        let Some(package) = file.strip_suffix(".spec").filter(|p| !p.contains('/')) else {
            return;
        };
        if manifest.subject.package.is_none() && !package.is_empty() {
            manifest.subject.package = Some(package.to_string());
            rec.data.insert("package".into(), json!(package));
        }
        let local = manifest.subject.repo.as_deref().map(Path::new);
        let text = local
            .filter(|d| d.is_dir())
            .and_then(|d| {
                crate::caps::read_file_with(&d.join(file), 4 << 20, crate::caps::Open::NO_LINK).ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Some(name) = text.as_deref().and_then(spec::changelog_text_name) {
            rec.data.insert("changelog_name".into(), json!(name));
        }
    }

    fn reused(&self, manifest: &mut Manifest) {
        // The cached record describes the content; whether this checkout is dirty is today's
        // fact, and the package name it recorded goes back into the subject.
        let dirty = manifest
            .subject
            .extra
            .get("dirty")
            .is_some_and(|d| d == true);
        let commit = manifest.subject.commit.clone();
        if let Some(rec) = manifest.stages.last_mut() {
            rec.notes.retain(|n| !n.starts_with(prepare::DIRTY_NOTE));
            if dirty {
                rec.notes.push(prepare::dirty_note(commit.as_deref()));
            }
        }
        let pkg = manifest
            .stages
            .last()
            .and_then(|s| s.data.get("package"))
            .and_then(|p| p.as_str())
            .map(String::from);
        if pkg.is_some() {
            manifest.subject.package = pkg;
        }
    }

    fn summary(&self, record: &StageRecord, manifest: &Manifest) {
        let pkgs: Vec<String> = manifest
            .artifacts_of(ArtifactKind::Srpm)
            .chain(manifest.artifacts_of(ArtifactKind::Rpm))
            .filter_map(|a| a.nevra.as_ref().map(|n| n.to_string()))
            .collect();
        let pkgs = if pkgs.is_empty() {
            String::new()
        } else {
            format!(": {}", pkgs.join(", "))
        };
        // A build that did not pass says why: its last note is the cause.
        let why = match record.notes.last() {
            Some(n) if !record.outcome.is_pass() && pkgs.is_empty() => format!(": {n}"),
            _ => String::new(),
        };
        progress::note(&format!(
            "build {} in {:.1}s{pkgs}{why}",
            record.outcome, record.duration_s
        ));
    }
}
