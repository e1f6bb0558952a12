//! `fci build`: SRPM and binary RPMs from a dist-git checkout, `%check` included.

pub mod backend;
pub mod fedora_env;
pub mod mock;
pub mod repo;
pub mod rpmbuild;
pub mod sources;
pub mod spec;
pub mod tree;

use crate::distgit;
use crate::error::FciError;
use crate::exec;
use crate::hostcache::HostCache;
use crate::manifest::{Artifact, Manifest, Outcome, TestResult};
use crate::progress::{self, Spinner};
use crate::stage::{self, Io, RecordParts, StageRun};
use crate::workspace::Workspace;
use anyhow::Result;
use backend::Backend;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// mock when it is on PATH, else rpmbuild
    Auto,
    Mock,
    Rpmbuild,
}

#[derive(Clone, Debug)]
pub struct BuildOpts {
    pub io: Io,
    pub source: Option<String>,
    pub git_ref: Option<String>,
    pub workspace: PathBuf,
    pub lookaside: Option<String>,
    pub backend: BackendChoice,
    pub mock_config: Option<String>,
    pub dist: Option<String>,
    pub branch: Option<String>,
    pub spec: Option<PathBuf>,
    pub defines: Vec<(String, String)>,
    pub strict_builddeps: bool,
    pub nocheck: bool,
    pub timeout: Option<std::time::Duration>,
    pub no_cache: bool,
}

pub fn run(opts: &BuildOpts) -> Result<i32> {
    let lookaside = opts
        .lookaside
        .as_deref()
        .map(sources::Lookaside::parse)
        .transpose()?;
    // A source argument starts a new run; otherwise the manifest's subject says what to build.
    let mut manifest = match (&opts.source, &opts.io.manifest) {
        (Some(_), None) => Manifest::new(uuid::Uuid::new_v4().to_string()),
        (_, Some(m)) => Manifest::read(m)?,
        (None, None) => Manifest::read(Path::new("-"))?,
    };
    let result = build(opts, lookaside, &mut manifest);
    if result.is_ok() {
        summary(&manifest);
    }
    stage::error_record(result, &mut manifest, "build", &opts.io.output)
}

fn build(
    opts: &BuildOpts,
    lookaside: Option<sources::Lookaside>,
    manifest: &mut Manifest,
) -> Result<i32> {
    let from_manifest = opts.source.is_none();
    let source = match &opts.source {
        Some(s) => s.clone(),
        None => manifest
            .subject
            .repo
            .clone()
            .ok_or_else(|| FciError::Usage("nothing to build: give a dist-git path or URL, or a manifest whose subject names a repo".into()))?,
    };
    let git_ref = opts.git_ref.clone().or_else(|| {
        if from_manifest {
            manifest.subject.commit.clone()
        } else {
            None
        }
    });
    exec::require("rpmspec", "rpm")?;
    // Spec code is untrusted even when only parsed: rpmspec and rpmbuild run in bubblewrap.
    exec::require("bwrap", "bubblewrap")?;
    exec::require("createrepo_c", "createrepo-c")?;

    let ws = Workspace::open(&opts.workspace)?;
    let spinner = Spinner::new("build");
    spinner.step("checking out dist-git");
    let mut st = StageRun::start(&ws, "build")?;
    let mut early_notes = Vec::new();
    let backend = choose_backend(opts, &mut st.log, &mut early_notes)?;
    if backend.name() == "rpmbuild" {
        exec::require("rpmbuild", "rpm")?;
    }
    // fci's own paths are never part of the package, even when they lie inside the checkout
    // (`fci build .` with the default workspace).
    let mut exclude = vec![ws.root().to_path_buf()];
    if opts.io.output != Path::new("-") {
        let out = &opts.io.output;
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let (Ok(dir), Some(name)) = (parent.canonicalize(), out.file_name()) {
            exclude.push(dir.join(name));
        }
    }
    let co = distgit::checkout(&source, git_ref.as_deref(), &st.dir(), exclude, &mut st.log)?;
    let spec_path = tree::find_spec(&co.dir, opts.spec.as_deref())?;
    if let (Some(asked), Some(on)) = (&opts.branch, &co.branch) {
        if asked != on {
            // --branch names the dist; it does not choose what is checked out.
            let msg = format!(
                "--branch {asked} sets the dist, but the checkout is on branch `{on}` and that is what was built (--ref {asked} builds the {asked} branch)"
            );
            progress::note(&format!("warning: {msg}"));
            early_notes.push(msg);
        }
    }
    let branch = opts
        .branch
        .clone()
        .or(co.branch.clone())
        .or(manifest.subject.branch.clone());
    // `-D dist=...` is a way to say --dist too; the last word wins, as on rpmbuild's command line.
    let defined_dist = opts
        .defines
        .iter()
        .rev()
        .find(|(k, _)| k == "dist")
        .map(|(_, v)| v.clone());
    let dist = defined_dist
        .or(opts.dist.clone())
        .or_else(|| branch.as_deref().and_then(distgit::dist_for_branch));
    let mut defines: Vec<(String, String)> = dist
        .iter()
        .map(|d| ("dist".to_string(), d.clone()))
        .collect();
    defines.extend(opts.defines.iter().filter(|(k, _)| k != "dist").cloned());
    // `%if 0%{?fedora} >= 40` and friends read the release from %fedora / %rhel.
    if let Some((name, n)) = dist.as_deref().and_then(distgit::release_macro) {
        if !defines.iter().any(|(k, _)| k == name) {
            defines.push((name.to_string(), n));
        }
    }

    let mut hc = HostCache::open(&ws);
    let sources_file = co.dir.join("sources");
    let entries = if sources_file.is_file() {
        sources::parse(&sources_file)?
    } else {
        Vec::new()
    };
    let blob_names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let files: Vec<PathBuf> = co
        .files()?
        .into_iter()
        .filter(|f| !blob_names.iter().any(|b| Path::new(b) == f.as_path()))
        .collect();
    tree::check_symlinks(&co.dir, &files)?;
    let tree = crate::digest::tree_digest(&co.dir, &files)?;
    // Named in the record, and part of the key: a new rpm (its macros, its brp scripts)
    // builds differently.
    let tool_versions: Vec<(String, String)> = backend
        .tools()
        .into_iter()
        .chain(["rpm", "createrepo_c"])
        .map(|t| (t.to_string(), hc.version(t)))
        .collect();
    let digest = stage::input_digest(&json!({
        "stage": "build",
        "fci": env!("CARGO_PKG_VERSION"),
        "backend": backend.name(),
        "mock_config": opts.mock_config,
        "defines": defines,
        "strict_builddeps": opts.strict_builddeps,
        "nocheck": opts.nocheck,
        "tree": tree,
        "spec": spec_path.strip_prefix(&co.dir).unwrap_or(&spec_path),
        "sources": entries.iter().map(|e| format!("{} {} {}", e.algo, e.hash, e.name)).collect::<Vec<_>>(),
        // What the host can satisfy decides --nodeps, so a changed rpm database is a new input.
        "host_rpmdb": (backend.name() == "rpmbuild").then(|| spec::rpmdb_identity(&mut hc)),
        // The host's package set and rpm configuration decide what rpmbuild finds (a build
        // tool, a macro file): installing one is a new input, never a reuse of the failure.
        "host_env": (backend.name() == "rpmbuild").then(crate::hostcache::build_env_identity),
        "fci_macros": fedora_env::FILES.iter().map(|(n, t)| format!("{n} {}", crate::digest::sha256_bytes(t.as_bytes()))).collect::<Vec<_>>(),
        "tools": tool_versions,
    }));

    // Credentials belong in git's credential helpers, never in the manifest.
    manifest.subject.repo = Some(crate::exec::redact(&co.repo));
    manifest.subject.branch = branch.clone();
    if co.commit.is_some() {
        manifest.subject.commit = co.commit.clone();
    }
    manifest.subject.extra.remove("dirty");
    if co.dirty {
        // The tree digest covers what is built; the commit alone would not reproduce it.
        manifest.subject.extra.insert("dirty".into(), json!(true));
        let msg = dirty_note(co.commit.as_deref());
        progress::note(&format!("warning: {msg}"));
        early_notes.push(msg);
    }

    if !opts.no_cache && reuse(&ws, manifest, &digest) {
        manifest.write(&opts.io.output)?;
        return Ok(manifest.stages.last().map_or(0, |s| s.outcome.exit_code()));
    }
    let _lock = ws.lock(&format!("build-{}", &digest[7..]))?;
    // Another run with the same inputs may have finished while we waited for the lock.
    if !opts.no_cache && reuse(&ws, manifest, &digest) {
        manifest.write(&opts.io.output)?;
        return Ok(manifest.stages.last().map_or(0, |s| s.outcome.exit_code()));
    }

    spinner.step("fetching sources");
    let srcdir = st.dir().join("SOURCES");
    std::fs::create_dir_all(&srcdir)?;
    for f in &files {
        if f.components().count() == 1 {
            // Symlinks were checked to stay inside the checkout; copy what they point at.
            let real = co.dir.join(f).canonicalize()?;
            if real.is_file() {
                crate::workspace::copy_plain(&real, &srcdir.join(f), None)?;
            }
        }
    }
    // The lookaside is keyed by the dist-git repository's name, which is the spec's stem.
    let repo_name = spec_path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let notes = sources::fetch_all(
        &sources_file,
        &entries,
        &repo_name,
        &co.dir,
        lookaside.as_ref(),
        &ws.root().join("lookaside"),
        &srcdir,
    )?;

    let mut rec = RecordParts::new(Outcome::Passed, digest.clone());
    rec.backend = Some(backend.name().to_string());
    let work = st.dir().join("work");
    std::fs::create_dir_all(&work)?;
    let check_deps = backend.name() == "rpmbuild";
    // Fedora macros Debian's rpm lacks (%autorelease, %autochangelog); mock has the real ones.
    let macros = if check_deps {
        let dir = ws.root().join("share/macros");
        crate::workspace::install_files(&dir, &fedora_env::FILES)?;
        Some(dir.join("fci-compat.macros"))
    } else {
        None
    };
    // Spec code sees a copy of the chosen spec in a directory of its own (read-only in the
    // sandbox), not the checkout, whose .git may hold a remote URL with credentials.
    let spec_dir = st.dir().join("SPEC");
    std::fs::create_dir_all(&spec_dir)?;
    let spec_copy = spec_dir.join(spec_path.file_name().unwrap_or_default());
    crate::workspace::copy_plain(&spec_path, &spec_copy, None)?;
    let job = |nodeps| backend::Job {
        spec: &spec_copy,
        origin: &spec_path,
        workspace: ws.root(),
        sources: &srcdir,
        work: &work,
        defines: &defines,
        nodeps,
        nocheck: opts.nocheck,
        timeout: opts.timeout,
        macros: macros.as_deref(),
    };
    let spec_sb = backend::sandbox(&job(true));
    rec.tools = tool_versions.into_iter().collect();
    rec.data.insert(
        "spec".into(),
        json!(spec_path.file_name().map(|f| f.to_string_lossy())),
    );
    rec.data.insert("dist".into(), json!(dist));
    rec.data.insert(
        "sandbox".into(),
        json!(if check_deps {
            "bubblewrap"
        } else {
            "mock chroot"
        }),
    );
    rec.notes.extend(early_notes);
    rec.notes.extend(notes);

    // --strict-builddeps asks before building. Otherwise rpmbuild runs with --nodeps (which
    // changes nothing where the host satisfies BuildRequires) and the built SRPM's header
    // says what the spec says: no separate spec query on the way to a good build.
    if opts.strict_builddeps && check_deps {
        let info = spec::query(&job(true), &spec_sb, &mut st.log)?;
        manifest.subject.package = Some(info.name.clone());
        rec.data.insert("package".into(), json!(info.name));
        rec.data
            .insert("buildrequires".into(), json!(info.buildrequires));
        let unmet = spec::unmet(&info.buildrequires, &mut hc, &mut st.log)?;
        rec.data.insert("unmet_buildrequires".into(), json!(unmet));
        if !unmet.is_empty() {
            let msg = format!(
                "host rpm database cannot satisfy BuildRequires: {} (--strict-builddeps)",
                unmet.join(", ")
            );
            eprintln!("fci: build ERROR: {msg}");
            rec.outcome = Outcome::Error;
            rec.notes.push(msg);
            return finish(&ws, manifest, st, rec, Vec::new(), opts);
        }
    }
    spinner.step(&format!("building with {}", backend.name()));
    let out = backend.build(&job(check_deps && !opts.strict_builddeps), &mut st.log)?;
    if spec::has_check(&spec_path) {
        let (outcome, note) = check_outcome(&out, opts.nocheck);
        rec.results.push(TestResult {
            testcase: "build.check".into(),
            outcome,
            runner: Some("rpmbuild %check".into()),
            scenario: None,
            log: None,
            duration_s: None,
            note: Some(note.into()),
            attempts: Vec::new(),
            extra: Default::default(),
        });
    }
    if !out.success {
        // Why it failed decides the exit: a sandbox that cannot start is the host's problem;
        // a spec that does not parse, or a Source nobody provides, is bad input; anything
        // else is the package's failure. A build killed by the timeout is explained by that.
        if out.timed_out {
            let secs = opts.timeout.map_or(0, |t| t.as_secs());
            rec.outcome = Outcome::Error;
            rec.notes.push(format!(
                "killed after {secs}s: the build exceeded --timeout"
            ));
            progress::note(&format!("build ERROR: killed after {secs}s (--timeout)"));
            return finish(&ws, manifest, st, rec, Vec::new(), opts);
        }
        if let Some(why) = out.host_failure {
            // The backend broke, not the package: ERROR, which is never reused.
            progress::note(&format!("build ERROR: backend {}: {why}", backend.name()));
            rec.outcome = Outcome::Error;
            rec.notes.push(format!("backend {}: {why}", backend.name()));
            return finish(&ws, manifest, st, rec, Vec::new(), opts);
        }
        spec_sb.check(&mut st.log)?;
        let info = spec::query(&job(true), &spec_sb, &mut st.log)?;
        if let Some(s) = info.sources.iter().find(|s| !srcdir.join(s).is_file()) {
            return Err(FciError::input(
                &spec_path,
                format!(
                    "Source/Patch `{s}` is neither in the repository nor in the `sources` file"
                ),
            )
            .into());
        }
        manifest.subject.package = Some(info.name.clone());
        rec.data.insert("package".into(), json!(info.name));
        rec.data
            .insert("buildrequires".into(), json!(info.buildrequires));
        if check_deps && !opts.strict_builddeps {
            // Missing build dependencies are the likeliest cause: say which.
            let unmet = spec::unmet(&info.buildrequires, &mut hc, &mut st.log)?;
            if !unmet.is_empty() {
                let msg = format!(
                    "unmet BuildRequires on this host: {}; built with --nodeps",
                    unmet.join(", ")
                );
                progress::note(&format!("warning: {msg}"));
                rec.notes.push(msg);
            }
            rec.data.insert("unmet_buildrequires".into(), json!(unmet));
        }
        let what = if opts.strict_builddeps
            && out.tail.contains("Failed build dependencies")
            && !out.tail.contains("Executing(")
        {
            // Only without --nodeps: what rpmbuild found missing that the query could not
            // see (file requirements, %generate_buildrequires).
            rec.outcome = Outcome::Error;
            "rpmbuild found unmet BuildRequires (--strict-builddeps)".to_string()
        } else {
            rec.outcome = Outcome::Failed;
            let what = if out.check_failed {
                "%check failed"
            } else {
                "rpmbuild failed"
            };
            what.to_string()
        };
        rec.notes.push(what.clone());
        // A build that stopped on an undefined macro or a missing host tool says so: that is
        // the host's environment, not the package.
        let full = std::fs::read_to_string(&st.log.path).unwrap_or_default();
        if let Some(why) = fedora_env::diagnose(&full) {
            progress::note(&format!("build: {why}"));
            rec.notes.push(why);
        }
        if !progress::quiet() {
            let tail = &out.tail;
            let tail = tail.lines().skip(tail.lines().count().saturating_sub(20));
            eprintln!(
                "fci: build {} ({what}); last lines of the log:\n{}",
                rec.outcome,
                tail.collect::<Vec<_>>().join("\n")
            );
        }
        return finish(&ws, manifest, st, rec, Vec::new(), opts);
    }

    spinner.step("recording packages");
    let (mut artifacts, buildrequires) = repo::record_packages(&ws, &mut st, &out.packages)?;
    let package = artifacts
        .iter()
        .find(|a| a.kind == "srpm")
        .and_then(|a| a.nevra.as_ref())
        .map(|n| n.name.clone())
        .ok_or_else(|| FciError::Infra(format!("{} produced no source package", backend.name())))?;
    manifest.subject.package = Some(package.clone());
    rec.data.insert("package".into(), json!(package));
    rec.data
        .insert("buildrequires".into(), json!(buildrequires));
    if check_deps && !opts.strict_builddeps {
        let unmet = spec::unmet(&buildrequires, &mut hc, &mut st.log)?;
        if !unmet.is_empty() {
            let msg = format!(
                "unmet BuildRequires on this host: {}; built with --nodeps",
                unmet.join(", ")
            );
            progress::note(&format!("warning: {msg}"));
            rec.notes.push(msg);
        }
        rec.data.insert("unmet_buildrequires".into(), json!(unmet));
    }
    artifacts.push(tree::snapshot(&ws, &co.dir, &files, &tree)?);
    finish(&ws, manifest, st, rec, artifacts, opts)
}

/// mock when asked for, or (auto) when it is on PATH and can build here; else rpmbuild. A
/// mock that cannot build for the host's reasons is ERROR when asked for by name, and passed
/// over with a note under `auto`.
fn choose_backend(
    opts: &BuildOpts,
    log: &mut crate::exec::Log,
    notes: &mut Vec<String>,
) -> Result<Box<dyn Backend>> {
    let mock = || mock::Mock {
        config: opts.mock_config.clone(),
    };
    match opts.backend {
        BackendChoice::Mock => {
            exec::require("mock", "mock")?;
            let m = mock();
            if let Some(why) = m.probe(log)? {
                return Err(FciError::Infra(format!("backend mock: {why}")).into());
            }
            Ok(Box::new(m))
        }
        BackendChoice::Auto if exec::which("mock").is_some() => {
            let m = mock();
            match m.probe(log)? {
                None => Ok(Box::new(m)),
                Some(why) => {
                    let msg = format!("{why}; built with rpmbuild instead");
                    progress::note(&format!("warning: {msg}"));
                    notes.push(msg);
                    Ok(Box::new(rpmbuild::Rpmbuild))
                }
            }
        }
        _ => Ok(Box::new(rpmbuild::Rpmbuild)),
    }
}

/// What `build.check` says: PASSED only when rpmbuild ran %check and it passed (also when a
/// later step failed); otherwise why it has no verdict.
fn check_outcome(out: &backend::Output, nocheck: bool) -> (Outcome, &'static str) {
    if out.timed_out {
        (Outcome::Error, "the build was killed by --timeout")
    } else if out.check_failed {
        (Outcome::Failed, "the package's unit tests (%check) failed")
    } else if out.check_ran {
        (Outcome::Passed, "the package's unit tests, run by %check")
    } else if nocheck {
        (Outcome::Skipped, "not run: --nocheck")
    } else if out.success {
        (
            Outcome::Skipped,
            "not run: the spec's %check is compiled out (a conditional such as %if %{with check} left it empty)",
        )
    } else {
        (Outcome::Skipped, "not run: the build failed before %check")
    }
}

/// Reuses a cached build, restoring the package name it recorded into the subject.
/// The note a build of a dirty work tree carries (it describes this run, not the content).
const DIRTY_NOTE: &str = "the work tree has uncommitted changes";

fn reuse(ws: &Workspace, manifest: &mut Manifest, digest: &str) -> bool {
    if stage::reuse(ws, manifest, "build", digest).is_none() {
        return false;
    }
    // The cached record describes the content; whether this checkout is dirty is today's fact.
    let dirty = manifest
        .subject
        .extra
        .get("dirty")
        .is_some_and(|d| d == true);
    let commit = manifest.subject.commit.clone();
    if let Some(rec) = manifest.stages.last_mut() {
        rec.notes.retain(|n| !n.starts_with(DIRTY_NOTE));
        if dirty {
            rec.notes.push(dirty_note(commit.as_deref()));
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
    true
}

fn dirty_note(commit: Option<&str>) -> String {
    format!(
        "{DIRTY_NOTE}: commit {} does not describe what was built",
        commit.unwrap_or("?")
    )
}

fn finish(
    ws: &Workspace,
    manifest: &mut Manifest,
    st: StageRun,
    rec: RecordParts,
    mut artifacts: Vec<Artifact>,
    opts: &BuildOpts,
) -> Result<i32> {
    let (record, log) = st.finish(ws, rec)?;
    artifacts.push(log);
    let outcome = record.outcome;
    stage::commit(ws, manifest, record, artifacts, true)?;
    manifest.write(&opts.io.output)?;
    Ok(outcome.exit_code())
}

/// One line for the person watching, printed once the spinner is gone.
fn summary(manifest: &Manifest) {
    let Some(record) = manifest.last_stage("build") else {
        return;
    };
    if progress::quiet() || record.cached {
        return;
    }
    let pkgs: Vec<String> = manifest
        .artifacts_of("srpm")
        .chain(manifest.artifacts_of("rpm"))
        .filter_map(|a| a.nevra.as_ref().map(|n| n.to_string()))
        .collect();
    let pkgs = if pkgs.is_empty() {
        String::new()
    } else {
        format!(": {}", pkgs.join(", "))
    };
    eprintln!(
        "fci: build {} in {:.1}s{pkgs}",
        record.outcome, record.duration_s
    );
}
