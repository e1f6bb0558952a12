//! What a build is about to build: the checkout, its spec, dist and macros, its files and
//! sources, the backend. Everything here is input; nothing is built yet.

use super::backend::Backend;
use super::{
    fedora_env, mock, rpmbuild, sources, spec, tree, Args, BackendChoice, CREATEREPO, MOCK, RPMSPEC,
};
use crate::distgit::{self, Checkout};
use crate::error::FciError;
use crate::progress;
use crate::stage::Ctx;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub struct Prepared {
    pub co: Checkout,
    pub spec_path: PathBuf,
    pub dist: Option<String>,
    pub defines: Vec<(String, String)>,
    /// The `sources` file's entries (lookaside blobs).
    pub entries: Vec<sources::Entry>,
    /// The checkout's files, without lookaside blobs.
    pub files: Vec<PathBuf>,
    pub tree: String,
    pub backend: Box<dyn Backend>,
    /// Facts of this run (not of the content) for the record's notes.
    pub notes: Vec<String>,
    /// `--branch` names another branch than the checkout's.
    pub branch_mismatch: bool,
    /// What package code may use, resolved once (flags, the run's fci.yaml, defaults): an
    /// input of the build, and its bounds.
    pub limits: crate::limits::Limits,
    /// The spec uses %autorelease/%autochangelog: rpmautospec computes them from the
    /// checkout's git history (`autospec`), which is then an input of the build.
    pub autospec: bool,
    /// fci.yaml's `buildrequires:` (the run's), what satisfies a BuildRequires on this host.
    pub host_deps: crate::config::HostDeps,
}

/// The note a build of a dirty work tree carries (it describes this run, not the content).
pub const DIRTY_NOTE: &str = "the work tree has uncommitted changes";

pub fn dirty_note(commit: Option<&str>) -> String {
    format!(
        "{DIRTY_NOTE}: commit {} does not describe what was built",
        commit.unwrap_or("?")
    )
}

/// What to build and at which ref: the dist-git named, else the manifest's subject (at its
/// commit, unless --ref says). Apart so that `prepare` reads as its steps.
fn source_and_ref(args: &Args, cx: &Ctx) -> Result<(String, Option<String>)> {
    let from_manifest = args.source.is_none();
    let source = match &args.source {
        Some(s) => s.clone(),
        None => cx.manifest.subject.repo.clone().ok_or_else(|| {
            FciError::Usage(
                "nothing to build: give a dist-git path or URL, or a manifest whose subject names a repo"
                    .into(),
            )
        })?,
    };
    let git_ref = args.git_ref.clone().or_else(|| {
        if from_manifest {
            cx.manifest.subject.commit.clone()
        } else {
            None
        }
    });
    Ok((source, git_ref))
}

pub fn prepare(args: &Args, cx: &mut Ctx) -> Result<Prepared> {
    let (source, git_ref) = source_and_ref(args, cx)?;
    let mut notes = Vec::new();
    let mut branch_mismatch = false;
    // The backend's own tools first (rpmbuild, or mock), then what every build uses. Spec
    // code is untrusted even when only parsed: rpmspec and rpmbuild run in bubblewrap.
    let backend = choose_backend(args, cx, &mut notes)?;
    for t in [RPMSPEC, crate::tool::BWRAP, CREATEREPO, crate::tool::RPM] {
        cx.require(t)?;
    }
    let co = distgit::checkout(
        &source,
        git_ref.as_deref(),
        &cx.dir(),
        fci_paths(cx, &args.common.output),
        crate::duration::limit(args.timeout),
        cx.log(),
    )?;
    if co.commit.is_some() {
        // Read through git: its version is part of the record and the key.
        cx.require(crate::distgit::GIT)?;
    }
    let spec_path = tree::find_spec(&co.dir, args.spec.as_deref())?;
    if let (Some(asked), Some(on)) = (&args.branch, &co.branch) {
        if asked != on {
            // --branch names the dist; it does not choose what is checked out.
            let msg = format!(
                "--branch {asked} sets the dist, but the checkout is on branch `{on}` and that is what was built (--ref {asked} builds the {asked} branch)"
            );
            progress::note(&format!("warning: {msg}"));
            notes.push(msg);
            branch_mismatch = true;
        }
    }
    // --branch names the dist; the subject's branch is the one built when the checkout knows.
    let dist_branch = args.branch.clone().or(co.branch.clone()).or(cx
        .manifest
        .subject
        .branch
        .clone());
    let branch = co.branch.clone().or(dist_branch.clone());
    let (dist, defines) = macros(args, dist_branch.as_deref());

    // Links first: nothing in the checkout is read before they are known to stay in it (a
    // `sources` linked to /etc/shadow would be quoted in the parse error).
    let all = co.files()?;
    tree::check_symlinks(&co.dir, &all)?;
    let sources_file = co.dir.join("sources");
    let entries = if sources_file.is_file() {
        sources::parse(&sources_file)?
    } else {
        Vec::new()
    };
    let files: Vec<PathBuf> = all
        .into_iter()
        .filter(|f| !entries.iter().any(|b| Path::new(&b.name) == f.as_path()))
        .collect();
    let tree = crate::digest::tree_digest(&co.dir, &files)?;
    // The tools whose versions decide the release and the rpmlint case, in the input digest
    // (rpmautospec: only where it will run; a host without rpmlint gets a note later).
    let _ = cx.require(super::rpmlint::RPMLINT);
    // Links were checked: the spec is the checkout's own file.
    let autospec = spec_path
        .canonicalize()
        .ok()
        .and_then(|real| {
            crate::caps::read_file_with(&real, 16 << 20, crate::caps::Open::NO_LINK).ok()
        })
        .is_some_and(|t| super::autospec::uses_autospec(&String::from_utf8_lossy(&t)));
    if autospec && co.commit.is_some() {
        cx.require(super::autospec::RPMAUTOSPEC)?;
    }

    // Credentials belong in git's credential helpers, never in the manifest.
    let subject = &mut cx.manifest.subject;
    subject.repo = Some(crate::redact::redact(&co.repo));
    subject.branch = branch;
    if co.commit.is_some() {
        subject.commit = co.commit.clone();
    }
    subject.extra.remove("dirty");
    if co.dirty {
        // The tree digest covers what is built; the commit alone would not reproduce it.
        subject.extra.insert("dirty".into(), json!(true));
        let msg = dirty_note(co.commit.as_deref());
        progress::note(&format!("warning: {msg}"));
        notes.push(msg);
    }
    Ok(Prepared {
        co,
        spec_path,
        dist,
        defines,
        entries,
        files,
        tree,
        backend,
        notes,
        branch_mismatch,
        limits: crate::config::run_limits(args.limits.partial(), cx.manifest, &mut cx.run.log),
        autospec,
        host_deps: crate::config::run_host_deps(cx.manifest, &mut cx.run.log),
    })
}

impl Prepared {
    /// The sandbox a host tool that reads the package (rpmautospec, rpmlint) runs in: only
    /// `dir` writable (its home below it), the checkout's private paths and fci's workspace
    /// hidden, homes covered, within the build's limits. Each caller adds what it reads.
    pub fn tool_sandbox(&self, cx: &Ctx, dir: &Path) -> crate::sandbox::Sandbox {
        crate::sandbox::Sandbox {
            writable: vec![dir.to_path_buf()],
            hide: self
                .co
                .private_paths()
                .into_iter()
                .chain(std::iter::once(cx.ws.root().to_path_buf()))
                .collect(),
            env: vec![
                ("PATH".into(), crate::sandbox::SYSTEM_PATH.into()),
                ("HOME".into(), dir.join("home").into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            hide_private: true,
            limits: self.limits,
            ..Default::default()
        }
    }

    /// What identifies this build for reuse (the driver adds fci's and the tools' versions).
    pub fn inputs(&self, args: &Args, cx: &mut Ctx) -> Value {
        let rpmbuild = self.backend.capabilities().host_root;
        json!({
            "backend": self.backend.name(),
            "mock_config": args.mock_config,
            "defines": self.defines,
            "strict_builddeps": args.strict_builddeps,
            "nocheck": args.nocheck,
            // A pass under looser limits on package code says nothing of a run under tighter
            // ones: the limits are an option like any other.
            "limits": self.limits,
            // A --branch that differs from the checkout is stated in the record's notes.
            "branch_mismatch": self.branch_mismatch,
            "tree": self.tree,
            // %autorelease counts commits: the same tree at another commit is another build.
            "history": self.autospec.then_some(self.co.commit.as_deref()),
            "spec": self.spec_path.strip_prefix(&self.co.dir).unwrap_or(&self.spec_path),
            "sources": self.entries.iter().map(|e| format!("{} {} {}", e.algo, e.hash, e.name)).collect::<Vec<_>>(),
            // What the host can satisfy decides --nodeps, so a changed rpm database is a new input.
            "host_rpmdb": rpmbuild.then(|| spec::rpmdb_identity(&mut cx.host)),
            // The host's package set and rpm configuration decide what rpmbuild finds (a build
            // tool, a macro file): installing one is a new input, never a reuse of the failure.
            "host_env": rpmbuild.then(crate::hostcache::build_env_identity),
            // What fci.yaml maps a BuildRequires to decides which are noted unmet.
            "host_deps": self.host_deps.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>(),
            "rpmlint_config": crate::digest::sha256_bytes(super::rpmlint::CONFIG.1.as_bytes()),
            "fci_macros": fedora_env::FILES.iter().map(|(n, t)| format!("{n} {}", crate::digest::sha256_bytes(t.as_bytes()))).collect::<Vec<_>>(),
        })
    }

    /// The spec's path in the dist-git repository (as messages name it), not fci's checkout.
    pub fn spec_in_repo(&self) -> PathBuf {
        self.spec_path
            .strip_prefix(&self.co.dir)
            .unwrap_or(&self.spec_path)
            .to_path_buf()
    }

    /// The spec's file stem: the dist-git repository's name, which keys the lookaside.
    pub fn repo_name(&self) -> String {
        self.spec_path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }
}

/// fci's own paths, never part of the package even when they lie inside the checkout
/// (`fci build .` with the default workspace, `-o out.json`).
fn fci_paths(cx: &Ctx, output: &Path) -> Vec<PathBuf> {
    let mut exclude = vec![cx.ws.root().to_path_buf()];
    if output != Path::new("-") {
        let parent = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let (Ok(dir), Some(name)) = (parent.canonicalize(), output.file_name()) {
            exclude.push(dir.join(name));
        }
    }
    exclude
}

/// The dist tag and the macro definitions a build passes to rpm.
fn macros(args: &Args, branch: Option<&str>) -> (Option<String>, Vec<(String, String)>) {
    // `-D dist=...` is a way to say --dist too; the last word wins, as on rpmbuild's command line.
    let defined_dist = args
        .defines
        .iter()
        .rev()
        .find(|(k, _)| k == "dist")
        .map(|(_, v)| v.clone());
    let dist = defined_dist
        .or(args.dist.clone())
        .or_else(|| branch.and_then(|b| distgit::dist_for_branch(b, args.rawhide_release)));
    let mut defines: Vec<(String, String)> = dist
        .iter()
        .map(|d| ("dist".to_string(), d.clone()))
        .collect();
    defines.extend(args.defines.iter().filter(|(k, _)| k != "dist").cloned());
    // `%if 0%{?fedora} >= 40` and friends read the release from %fedora / %rhel.
    if let Some((name, n)) = dist.as_deref().and_then(distgit::release_macro) {
        if !defines.iter().any(|(k, _)| k == name) {
            defines.push((name.to_string(), n));
        }
    }
    (dist, defines)
}

/// mock when asked for, or (auto) when it is on PATH and can build here; else rpmbuild. A
/// mock that cannot build for the host's reasons is ERROR when asked for by name, and passed
/// over with a note under `auto`. The chosen backend's tools are required (and recorded).
fn choose_backend(args: &Args, cx: &mut Ctx, notes: &mut Vec<String>) -> Result<Box<dyn Backend>> {
    let mock = || mock::Mock {
        config: args.mock_config.clone(),
    };
    let chosen: Box<dyn Backend> = match args.backend {
        BackendChoice::Mock => {
            cx.require(MOCK)?;
            let m = mock();
            if let Some(why) = m.probe(cx.log())? {
                return Err(FciError::Infra(format!("backend mock: {why}")).into());
            }
            Box::new(m)
        }
        BackendChoice::Auto if crate::tool::which(MOCK.program).is_some() => {
            let m = mock();
            match m.probe(cx.log())? {
                None => Box::new(m),
                Some(why) => {
                    let msg = format!("{why}; built with rpmbuild instead");
                    progress::note(&format!("warning: {msg}"));
                    notes.push(msg);
                    Box::new(rpmbuild::Rpmbuild)
                }
            }
        }
        _ => Box::new(rpmbuild::Rpmbuild),
    };
    for t in chosen.tools() {
        cx.require(t)?;
    }
    Ok(chosen)
}
