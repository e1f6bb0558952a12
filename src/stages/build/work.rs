//! The build itself, step by step: sources, the backend's run, and what its result means.

use super::backend::{self, Job, Output};
use super::prepare::Prepared;
use super::{fedora_env, repo, sources, spec, tree, Args};
use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Outcome, TestResult};
use crate::progress::{self, Spinner};
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;

/// Where a build's files are, for the backend's jobs.
struct Dirs {
    sources: PathBuf,
    work: PathBuf,
    spec_copy: PathBuf,
    macros: Option<PathBuf>,
}

pub fn build(
    args: &Args,
    lookaside: Option<&sources::Lookaside>,
    p: &Prepared,
    cx: &mut Ctx,
    rec: &mut RecordParts,
    spinner: Option<&Spinner>,
) -> Result<Vec<Artifact>> {
    let result = build_bounded(args, lookaside, p, cx, rec, spinner);
    // Whatever failed (fci's own writes there included), a full file system of the build's
    // is package code's doing: it filled it.
    if let (Err(_), Some(why)) = (&result, crate::volume::full(&cx.dir().join("work"))) {
        limit_reached(rec, &crate::limits::scratch_full(p.limits.scratch, &why));
        return Ok(Vec::new());
    }
    match result {
        // Spec code parsed by rpmspec went past a limit: the package's failure.
        Err(e) if e.downcast_ref::<crate::limits::Reached>().is_some() => {
            limit_reached(rec, &e.to_string());
            Ok(Vec::new())
        }
        // A package in the output the build did not make, or a sparse one: the package's doing.
        Err(e)
            if e.downcast_ref::<repo::NotTheBuilds>().is_some()
                || e.downcast_ref::<crate::volume::Refused>().is_some() =>
        {
            rec.outcome = Outcome::Failed;
            progress::note(&format!("build FAILED: {e}"));
            rec.notes.push(e.to_string());
            Ok(Vec::new())
        }
        other => other,
    }
}

/// The build FAILED because its package code went past a limit (`why` names it); not
/// reused, since another run may be given other limits.
fn limit_reached(rec: &mut RecordParts, why: &str) {
    rec.outcome = Outcome::Failed;
    rec.cacheable = false;
    let msg = format!("package code went past its limits: {why}");
    progress::note(&format!("build FAILED: {msg}"));
    rec.notes.push(msg);
}

fn build_bounded(
    args: &Args,
    lookaside: Option<&sources::Lookaside>,
    p: &Prepared,
    cx: &mut Ctx,
    rec: &mut RecordParts,
    spinner: Option<&Spinner>,
) -> Result<Vec<Artifact>> {
    let step = |s: &str| {
        if let Some(sp) = spinner {
            sp.step(s)
        }
    };
    step("fetching sources");
    let limits = p.limits;
    let dirs = stage_files(p, lookaside, cx, rec)?;
    let rpmbuild = p.backend.capabilities().host_root;
    let private = p.co.private_paths();
    rec.data.insert("limits".into(), json!(limits));
    // --timeout bounds the whole build, not each command of it (the spec's parses, rpmbuild,
    // the parse that explains a failure): each gets what is left.
    let deadline = crate::duration::limit(args.timeout).map(|t| std::time::Instant::now() + t);
    let left = || {
        deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .max(std::time::Duration::from_millis(1))
        })
    };
    // As Koji's builder does after its checkout: the spec's %autorelease and %autochangelog
    // computed from the dist-git history, in the copy every later step reads.
    let processed = super::autospec::process(
        p,
        &dirs.spec_copy,
        (left(), crate::duration::limit(args.timeout)),
        cx,
    )?;
    let line_offset = processed.as_ref().map_or(0, |d| d.line_offset);
    if let Some(done) = processed {
        rec.data.insert(
            "autorelease".into(),
            json!({"by": "rpmautospec process-distgit", "release_number": done.release_number}),
        );
    }
    let spec_in_repo = p.spec_in_repo();
    let job = |nodeps| Job {
        private: &private,
        spec: &dirs.spec_copy,
        origin: &spec_in_repo,
        line_offset,
        workspace: cx.ws.root(),
        sources: &dirs.sources,
        work: &dirs.work,
        defines: &p.defines,
        nodeps,
        nocheck: args.nocheck,
        timeout: left(),
        timeout_whole: crate::duration::limit(args.timeout),
        limits,
        macros: dirs.macros.as_deref(),
    };
    rec.backend = Some(p.backend.name().to_string());
    rec.data.insert(
        "spec".into(),
        json!(p.spec_path.file_name().map(|f| f.to_string_lossy())),
    );
    rec.data.insert("dist".into(), json!(p.dist));
    let sandbox = p.backend.capabilities().isolation;
    rec.data.insert("sandbox".into(), json!(sandbox));
    rec.notes.extend(p.notes.iter().cloned());

    // --strict-builddeps asks before building. Otherwise rpmbuild runs with --nodeps (which
    // changes nothing where the host satisfies BuildRequires) and the built SRPM's header
    // says what the spec says: no separate spec query on the way to a good build.
    if args.strict_builddeps && rpmbuild && unmet_builddeps(&job(true), cx, rec)? {
        return Ok(Vec::new());
    }
    // rpmbuild's "Executing(%check)" shares the log with package output: a build that says
    // so is believed only when the spec, parsed before the build left anything behind, has
    // a %check.
    let has_check = spec::has_check(&p.spec_path);
    let parsed_check = if has_check && !args.nocheck {
        let j = job(true);
        spec::parsed_has_check(&j, &backend::sandbox(&j), cx.log())?
    } else {
        false
    };
    step(&format!(
        "building {} with {}",
        p.spec_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        p.backend.name()
    ));
    let from = cx.log().end();
    let out = p
        .backend
        .build(&job(rpmbuild && !args.strict_builddeps), cx.log())?;
    // What the build printed, before anything else is logged: where its cause is found.
    let printed = (from, cx.log().end());
    if has_check {
        let ran = parsed_check && (out.check_ran || out.success);
        rec.results.push(check_result(&out, ran, args.nocheck));
    }
    if !out.success {
        explain_failure(args, p, &job(true), (&out, printed), cx, rec)?;
        return Ok(Vec::new());
    }

    step("checking the packages for unexpanded macros");
    if unexpanded_macros(&out.packages, cx, rec)? {
        return Ok(Vec::new());
    }
    step("recording packages");
    let mut artifacts = record_built(args, p, &out.packages, rpmbuild, cx, rec)?;
    step("rpmlint");
    let logs = super::rpmlint::lint(p, &artifacts, left(), cx, rec)?;
    artifacts.extend(logs);
    Ok(artifacts)
}

/// A build that passed but left a macro's text in a package's scriptlets or file list is
/// FAILED, naming each (`true`); its packages are not recorded, since they would install
/// that text. Not reused: installing the macros' package changes the outcome, not the inputs.
fn unexpanded_macros(packages: &[PathBuf], cx: &mut Ctx, rec: &mut RecordParts) -> Result<bool> {
    let found = super::unexpanded::find(packages, cx.log())?;
    let Some(first) = found.first() else {
        return Ok(false);
    };
    // A package the build did not make fails as such, whatever it holds; else the package's
    // name and NVR for the messages, from its source package's header.
    let headers = spec::headers(packages, cx.log())?;
    repo::check_origin(packages, &headers)?;
    if let Some(src) = headers.iter().find(|h| h.nevra.arch == "src") {
        let n = &src.nevra;
        let nvr = format!("{}-{}-{}", n.name, n.version, n.release);
        note_package(cx, rec, &n.name, Some(&nvr), &src.requires);
    }
    rec.outcome = Outcome::Failed;
    rec.cacheable = false;
    progress::note(&format!("build FAILED: {}", first.note()));
    // The first few are enough to fix the spec; the count says whether there are more.
    const SHOWN: usize = 10;
    rec.notes
        .extend(found.iter().take(SHOWN).map(super::unexpanded::Found::note));
    if found.len() > SHOWN {
        rec.notes.push(format!(
            "{} more unexpanded macros in the built packages",
            found.len() - SHOWN
        ));
    }
    Ok(true)
}

/// --strict-builddeps: the spec's BuildRequires asked of the host before building; `true`
/// when some are unmet (the outcome is then ERROR). Apart so that `build_bounded` reads as
/// its steps.
fn unmet_builddeps(j: &Job, cx: &mut Ctx, rec: &mut RecordParts) -> Result<bool> {
    let info = spec::query(j, &backend::sandbox(j), cx.log())?;
    note_package(cx, rec, &info.name, Some(&info.nvr), &info.buildrequires);
    if !info.changelog_name.is_empty() {
        rec.data
            .insert("changelog_name".into(), json!(info.changelog_name));
    }
    // Strict: rpm's own view, as rpmbuild without --nodeps will hold it.
    let unmet = spec::unmet(
        &info.buildrequires,
        false,
        &Default::default(),
        &mut cx.host,
        &mut cx.run.log,
    )?;
    rec.data.insert("unmet_buildrequires".into(), json!(unmet));
    if !unmet.is_empty() {
        let msg = format!(
            "host rpm database cannot satisfy BuildRequires: {} (--strict-builddeps)",
            unmet.join(", ")
        );
        progress::say(&format!("build ERROR: {msg}"));
        rec.outcome = Outcome::Error;
        rec.notes.push(msg);
        return Ok(true);
    }
    Ok(false)
}

/// The built packages recorded as artifacts, the package they make noted, and the tree's
/// snapshot beside them. Apart so that `build_bounded` reads as its steps.
fn record_built(
    args: &Args,
    p: &Prepared,
    packages: &[PathBuf],
    rpmbuild: bool,
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<Vec<Artifact>> {
    let (mut artifacts, buildrequires, changelog_name) =
        repo::record_packages(cx.ws, &mut cx.run, packages)?;
    let (package, nvr) = artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Srpm)
        .and_then(|a| a.nevra.as_ref())
        .map(|n| {
            (
                n.name.clone(),
                format!("{}-{}-{}", n.name, n.version, n.release),
            )
        })
        .ok_or_else(|| {
            FciError::Infra(format!("{} produced no source package", p.backend.name()))
        })?;
    note_package(cx, rec, &package, Some(&nvr), &buildrequires);
    // Who maintains it (the latest changelog entry), for the messages of every stage.
    if let Some(name) = changelog_name {
        rec.data.insert("changelog_name".into(), json!(name));
    }
    if rpmbuild && !args.strict_builddeps {
        note_unmet(&buildrequires, p, cx, rec)?;
    }
    artifacts.push(tree::snapshot(cx.ws, &p.co.dir, &p.files, &p.tree)?);
    Ok(artifacts)
}

/// The sources (the checkout's top-level files and the lookaside's blobs), a private copy of
/// the spec, and fci's macro files, in the stage's scratch directory.
fn stage_files(
    p: &Prepared,
    lookaside: Option<&sources::Lookaside>,
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<Dirs> {
    let srcdir = cx.dir().join("SOURCES");
    std::fs::create_dir_all(&srcdir)?;
    for f in &p.files {
        if f.components().count() == 1 {
            // Symlinks were checked to point at tracked files; copy what they point at.
            let real = p.co.dir.join(f).canonicalize()?;
            if real.is_file() {
                crate::files::copy_plain(&real, &srcdir.join(f), None)?;
            }
        }
    }
    let notes = sources::fetch_all(
        &p.co.dir.join("sources"),
        &p.entries,
        &p.repo_name(),
        &p.co.dir,
        lookaside,
        &cx.ws.root().join("lookaside"),
        &srcdir,
    )?;
    rec.notes.extend(notes);
    // Package code's only writable directory: a file system of the scratch size where one
    // can be made.
    let work = cx.run.bounded_dir("work", &p.limits, 0)?;
    // fci's Fedora build environment, for rpmbuild on a host without one; mock has the real one.
    let macros = if p.backend.capabilities().fedora_macros {
        let dir = cx.ws.share("macros");
        crate::files::install_files(&dir, &fedora_env::FILES)?;
        Some(dir.join(fedora_env::AUTOSPEC_FILE))
    } else {
        None
    };
    // Spec code sees a copy of the chosen spec in a directory of its own (read-only in the
    // sandbox), not the checkout, whose .git may hold a remote URL with credentials.
    let spec_dir = cx.dir().join("SPEC");
    std::fs::create_dir_all(&spec_dir)?;
    let spec_copy = spec_dir.join(p.spec_path.file_name().unwrap_or_default());
    // A spec that is a link points at a tracked file (links were checked): copy that.
    crate::files::copy_plain(&p.spec_path.canonicalize()?, &spec_copy, None)?;
    Ok(Dirs {
        sources: srcdir,
        work,
        spec_copy,
        macros,
    })
}

/// `build.check`: PASSED only when rpmbuild ran %check and it passed (also when a later step
/// failed); otherwise why it has no verdict.
fn check_result(out: &Output, ran: bool, nocheck: bool) -> TestResult {
    let killed;
    let (outcome, note) = if nocheck {
        (Outcome::Skipped, "not run: --nocheck")
    } else if let Some(why) = &out.limit {
        killed = if ran {
            format!("killed while %check ran: {why}")
        } else {
            format!("not run: the build was killed before %check: {why}")
        };
        (
            if ran {
                Outcome::Failed
            } else {
                Outcome::Skipped
            },
            killed.as_str(),
        )
    } else if out.timed_out && ran {
        (Outcome::Error, "killed by --timeout while %check ran")
    } else if out.timed_out {
        (
            Outcome::Skipped,
            "not run: the build was killed by --timeout before %check",
        )
    } else if out.check_failed {
        (Outcome::Failed, "the package's unit tests (%check) failed")
    } else if ran {
        (Outcome::Passed, "the package's unit tests, run by %check")
    } else if out.success {
        (
            Outcome::Skipped,
            "not run: the spec's %check is compiled out (a conditional such as %if %{with check} left it empty)",
        )
    } else {
        (Outcome::Skipped, "not run: the build failed before %check")
    };
    TestResult {
        testcase: "build.check".into(),
        outcome,
        runner: Some("rpmbuild %check".into()),
        scenario: None,
        log: None,
        duration_s: None,
        note: Some(note.into()),
        attempts: Vec::new(),
        extra: Default::default(),
    }
}

/// Why a build failed decides its outcome and exit: the timeout or the backend itself is
/// ERROR; a sandbox that cannot start is the host's (exit 3); anything else is the package's
/// (FAILED), a spec that does not parse or a Source nobody provides named by its line
/// (`FciError::Package`).
fn explain_failure(
    args: &Args,
    p: &Prepared,
    query_job: &Job,
    (out, printed): (&Output, (u64, u64)),
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<()> {
    if explained_early(args, p, out, rec) {
        return Ok(());
    }
    let buildrequires = reparse(p, query_job, cx, rec)?;
    let rpmbuild = p.backend.capabilities().host_root;
    if rpmbuild && !args.strict_builddeps {
        // Missing build dependencies are the likeliest cause: say which.
        note_unmet(&buildrequires, p, cx, rec)?;
    }
    if let Some(sig) = out.signal {
        // Killed, not failed: the cause (the kernel's OOM killer, an operator) is the host's.
        rec.cacheable = false;
        rec.notes.push(format!(
            "{} was killed by signal {sig} (out of memory?): not the package's failure, not reused",
            p.backend.name()
        ));
    }
    let what = if args.strict_builddeps
        && out.tail.contains("Failed build dependencies")
        && !out.tail.contains("Executing(")
    {
        // Only without --nodeps: what rpmbuild found missing that the query could not see
        // (file requirements, %generate_buildrequires).
        rec.outcome = Outcome::Error;
        "rpmbuild found unmet BuildRequires (--strict-builddeps)"
    } else {
        rec.outcome = Outcome::Failed;
        if out.check_failed {
            "%check failed"
        } else {
            "rpmbuild failed"
        }
    };
    // The note names the backend when rpmbuild ran inside another (mock's chroot).
    let what = if rpmbuild {
        what.to_string()
    } else {
        format!("{what} (backend {})", p.backend.name())
    };
    // The line that says why: the failing %check's, or the build's first error.
    let output = cx
        .log()
        .between(printed.0, printed.1, crate::caps::LOG_TAIL_READ);
    let what = match super::cause::of(&output, out.check_failed) {
        Some(cause) => {
            if let Some(check) = rec
                .results
                .iter_mut()
                .find(|r| r.testcase == "build.check" && r.outcome == Outcome::Failed)
            {
                check.note = Some(format!("{}: {cause}", check.note.as_deref().unwrap_or("")));
            }
            format!("{what}: {cause}")
        }
        None => what,
    };
    rec.notes.push(what.clone());
    // A build that stopped on an undefined macro or a missing host tool says so: that is the
    // host's environment, not the package.
    // The line that stopped the build is near the log's end: its end is read, with a seek.
    let end = crate::caps::tail(&cx.run.log.path, crate::caps::LOG_TAIL_READ).unwrap_or_default();
    if let Some(why) = fedora_env::diagnose(&String::from_utf8_lossy(&end)) {
        // The host's environment, not the package: installing the tool or the macros' package
        // must rebuild, so this failure is never reused.
        rec.cacheable = false;
        progress::note(&format!("build: {why}"));
        rec.notes.push(why);
    }
    // As the packager knows the files: rpmbuild names fci's copies (the spec's, SOURCES/).
    let tail = out.tail.replace(
        &query_job.spec.display().to_string(),
        &query_job.origin.display().to_string(),
    );
    let tail = crate::error::as_in_dist_git(&tail, &[(query_job.sources, ""), (&p.co.dir, "")]);
    let tail = tail.lines().skip(tail.lines().count().saturating_sub(20));
    // The log's tail is package output: escaped and indented, as every printed line.
    progress::note_lines(
        &format!("build {} ({what}); last lines of the log:", rec.outcome),
        &tail.map(str::to_string).collect::<Vec<_>>(),
    );
    Ok(())
}

/// A failure that is not rpmbuild's: a limit reached, outputs replaced, --timeout, the
/// backend broken; `true` when it was one (the record says which). Apart so that
/// `explain_failure` reads as its steps.
fn explained_early(args: &Args, p: &Prepared, out: &Output, rec: &mut RecordParts) -> bool {
    if let Some(why) = &out.limit {
        limit_reached(rec, why);
        return true;
    }
    if let Some(why) = &out.outputs_replaced {
        rec.outcome = Outcome::Failed;
        progress::note(&format!("build FAILED: {why}"));
        rec.notes.push(why.clone());
        return true;
    }
    if out.timed_out {
        rec.outcome = Outcome::Error;
        rec.notes.push(format!(
            "killed after {}: the build exceeded --timeout",
            crate::duration::show(args.timeout)
        ));
        progress::note(&format!(
            "build ERROR: killed after {} (--timeout)",
            crate::duration::show(args.timeout)
        ));
        return true;
    }
    if let Some(why) = &out.host_failure {
        // The backend broke, not the package: ERROR, which is never reused.
        let msg = format!("backend {}: {why}", p.backend.name());
        progress::note(&format!("build ERROR: {msg}"));
        rec.outcome = Outcome::Error;
        rec.notes.push(msg);
        return true;
    }
    false
}

/// The spec parsed again after a failed build, for the package it names and its build
/// dependencies (returned); a source it names that is nowhere is the package's mistake. Apart so that
/// `explain_failure` reads as its steps.
fn reparse(
    p: &Prepared,
    query_job: &Job,
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<Vec<String>> {
    // Parsed again in a fresh directory: spec code that reads what its build left behind
    // (a file in its home) must parse as it did before the build, so that its own failure
    // is never taken for the caller's unparsable spec.
    let fresh = cx.run.bounded_dir("reparse", &p.limits, 0)?;
    let query_job = &Job {
        work: &fresh,
        ..*query_job
    };
    let sb = backend::sandbox(query_job);
    sb.check(cx.log())?;
    let info = spec::query(query_job, &sb, cx.log())?;
    if let Some(s) = info
        .sources
        .iter()
        .find(|s| !query_job.sources.join(s).is_file())
    {
        return Err(FciError::package(
            p.spec_in_repo(),
            spec::line_naming(&p.spec_path, s),
            format!("Source/Patch `{s}` is neither in the repository nor in the `sources` file"),
        )
        .into());
    }
    note_package(cx, rec, &info.name, Some(&info.nvr), &info.buildrequires);
    if !info.changelog_name.is_empty() {
        rec.data
            .insert("changelog_name".into(), json!(info.changelog_name));
    }
    Ok(info.buildrequires)
}

/// The package's name (into the subject too) and its BuildRequires.
fn note_package(
    cx: &mut Ctx,
    rec: &mut RecordParts,
    name: &str,
    nvr: Option<&str>,
    buildrequires: &[String],
) {
    cx.manifest.subject.package = Some(name.to_string());
    rec.data.insert("package".into(), json!(name));
    if let Some(nvr) = nvr.filter(|n| !n.is_empty()) {
        rec.data.insert("nvr".into(), json!(nvr));
    }
    rec.data
        .insert("buildrequires".into(), json!(buildrequires));
}

/// BuildRequires the host cannot satisfy (built with --nodeps): recorded, and warned about.
fn note_unmet(
    buildrequires: &[String],
    p: &Prepared,
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<()> {
    let unmet = spec::unmet(
        buildrequires,
        true,
        &p.host_deps,
        &mut cx.host,
        &mut cx.run.log,
    )?;
    if !unmet.is_empty() {
        let msg = format!(
            "unmet BuildRequires on this host: {}; built with --nodeps",
            unmet.join(", ")
        );
        progress::note(&format!("warning: {msg}"));
        rec.notes.push(msg);
    }
    rec.data.insert("unmet_buildrequires".into(), json!(unmet));
    Ok(())
}
