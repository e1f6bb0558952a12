//! rpmlint on the built packages, a test case of the build (`rpmlint`, named in ResultsDB
//! `<namespace>.build.rpmlint`): INFO (its findings, with its output as a log) unless the
//! package's `gating.yaml` requires that test case, in which case an error makes it FAILED
//! and the build with it. The build's own verdict never changes for an INFO.
//!
//! rpmlint unpacks and reads what package code built, so it runs sandboxed and bounded, with
//! fci's Fedora configuration (`rpmlint-fedora.toml`) over the host's (Debian ships
//! openSUSE's defaults) and the package's own `*.rpmlintrc` filters, as Fedora's tools use it.

use super::prepare::Prepared;
use crate::exec::Cmd;
use crate::manifest::{Artifact, ArtifactKind, Outcome, TestResult};
use crate::progress;
use crate::stage::{Ctx, RecordParts};
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const RPMLINT: Tool = Tool::new("rpmlint", "rpmlint");

/// The test case's name in the build record.
pub const CASE: &str = "rpmlint";

/// fci's Fedora configuration, installed into the workspace's `share/rpmlint`.
pub const CONFIG: (&str, &str) = ("fedora.toml", include_str!("rpmlint-fedora.toml"));

/// rpmlint reads packages, it does not build them: minutes at most.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The most of rpmlint's output kept as the case's log.
const LOG_LIMIT: u64 = 8 << 20;

/// Whether the package's gating.yaml requires the rpmlint case: a rule whose test case is
/// `<namespace>.build.rpmlint` for any namespace (the build does not know the one its
/// results will be reported under). A gating.yaml that does not parse requires nothing here:
/// `fci report` and `fci gating validate` say what is wrong with it.
pub fn required_by(gating_yaml: &Path) -> bool {
    // A link was checked to point at a tracked file of the checkout: read what it names.
    let Ok(real) = gating_yaml.canonicalize() else {
        return false;
    };
    let Ok(text) = crate::caps::read_file_with(
        &real,
        crate::gating::policy::MAX_BYTES as u64,
        crate::caps::Open::NO_LINK,
    ) else {
        return false;
    };
    crate::gating::policy::parse(&String::from_utf8_lossy(&text)).is_ok_and(|policies| {
        policies
            .iter()
            .flat_map(|p| &p.rules)
            .any(|r| requires(&r.test_case_name))
    })
}

fn requires(test_case_name: &str) -> bool {
    test_case_name == format!("build.{CASE}") || test_case_name.ends_with(&format!(".build.{CASE}"))
}

/// What rpmlint said, read from its closing line (`N packages and M specfiles checked; E
/// errors, W warnings, ...`) and its `E:` lines.
#[derive(Debug, PartialEq)]
struct Findings {
    errors: u64,
    warnings: u64,
    /// The first error lines, for the result's note.
    first_errors: Vec<String>,
}

fn findings(output: &str) -> Option<Findings> {
    let summary = output.lines().rev().find(|l| l.contains(" checked; "))?;
    let count = |what: &str| -> Option<u64> {
        summary
            .split([';', ','])
            .map(str::trim)
            .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
    };
    Some(Findings {
        errors: count("errors").or_else(|| count("error"))?,
        warnings: count("warnings").or_else(|| count("warning")).unwrap_or(0),
        first_errors: output
            .lines()
            .filter(|l| l.contains(": E: "))
            .take(5)
            // Package text (a description line, a file name) quoted in a note: bounded.
            .map(|l| l.chars().take(300).collect())
            .collect(),
    })
}

/// Runs rpmlint on the build's SRPM and RPMs and records the `rpmlint` case (and its log);
/// returns the log artifact.
pub fn lint(
    p: &Prepared,
    built: &[Artifact],
    timeout: Option<Duration>,
    cx: &mut Ctx,
    rec: &mut RecordParts,
) -> Result<Vec<Artifact>> {
    let required = required_by(&p.co.dir.join("gating.yaml"));
    let packages: Vec<PathBuf> = built
        .iter()
        .filter(|a| matches!(a.kind, ArtifactKind::Srpm | ArtifactKind::Rpm))
        .map(|a| cx.ws.root().join(&a.path))
        .collect();
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let tool = match cx.require(RPMLINT) {
        Ok(t) => t,
        Err(e) => {
            let why = format!("{e} (an environment failure, not the package's)");
            not_run(required, &format!("rpmlint did not run: {why}"), rec);
            return Ok(Vec::new());
        }
    };
    let dir = cx.run.bounded_dir("rpmlint", &p.limits, 0)?;
    let config_dir = cx.ws.share("rpmlint");
    crate::files::install_files(&config_dir, &[CONFIG])?;
    let mut cmd = Cmd::new(&tool).arg("-c").arg(config_dir.join(CONFIG.0));
    // The package's filters, as Fedora keeps them in dist-git: `<name>.rpmlintrc`, else the
    // one `*.rpmlintrc` at the top (rpmlint 2 reads only its addFilter and setBadness lines).
    let mut readonly = vec![config_dir.clone()];
    let rcs: Vec<&PathBuf> = p
        .files
        .iter()
        .filter(|f| f.components().count() == 1 && f.extension().is_some_and(|x| x == "rpmlintrc"))
        .collect();
    let named = PathBuf::from(format!("{}.rpmlintrc", p.repo_name()));
    let rc = rcs
        .iter()
        .find(|f| f.as_path() == named.as_path())
        .or(rcs.first().filter(|_| rcs.len() == 1));
    let package_rc = rc.map(|r| r.display().to_string());
    if let Some(rc) = rc {
        let copy = dir.join("package.rpmlintrc");
        crate::files::copy_plain(&p.co.dir.join(rc).canonicalize()?, &copy, Some(1 << 20))?;
        cmd = cmd.arg("-r").arg(copy);
    }
    for pkg in &packages {
        if let Some(parent) = pkg.parent() {
            readonly.push(parent.to_path_buf());
        }
        cmd = cmd.arg(pkg);
    }
    std::fs::create_dir_all(dir.join("home"))?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    let mut sandbox = crate::sandbox::Sandbox {
        readonly,
        ..p.tool_sandbox(cx, &dir)
    };
    sandbox.env.push(("TMPDIR".into(), dir.join("tmp").into()));
    let limit = timeout.map_or(TIMEOUT, |t| t.min(TIMEOUT));
    let started = std::time::Instant::now();
    let out = cx.log().capture(
        &sandbox
            .wrap(&cmd)?
            .timeout(Some(limit))
            .judges_timeout()
            .capture_limit(LOG_LIMIT as usize),
    )?;
    let text = format!("{}{}", out.stdout, out.stderr);
    let log_file = dir.join("rpmlint.log");
    std::fs::write(&log_file, &text)?;
    let log = cx.ws.store_limited(
        &log_file,
        ArtifactKind::Log,
        "rpmlint.log",
        crate::manifest::StageName::Build,
        Some(LOG_LIMIT),
    )?;
    // 0: clean; 64: errors; 66: past the badness threshold. Anything else, or no closing
    // line, is rpmlint not doing its work.
    if out.over_limit && required {
        // More findings than any honest package has: the package's, not the host's.
        let msg = format!(
            "rpmlint's output passed {} MiB, and the package's gating.yaml requires {CASE}",
            LOG_LIMIT >> 20
        );
        progress::note(&format!("build FAILED: {msg}"));
        rec.outcome = Outcome::Failed;
        rec.notes.push(msg.clone());
        rec.results.push(case_result(
            Outcome::Failed,
            msg,
            Some(log.path.clone()),
            None,
        ));
        return Ok(vec![log]);
    }
    let finished = !out.timed_out
        && out.limit.is_none()
        && !out.over_limit
        && out.signal.is_none()
        && matches!(out.code, Some(0 | 64 | 66));
    // rpmlint ending on an exception with the package's own filters loaded (a regular
    // expression that does not compile, Python that is not rpmlintrc's): the package's file
    // broke it, not the host.
    let rc_broke = package_rc.as_ref().filter(|_| {
        !finished
            && !out.timed_out
            && out.limit.is_none()
            && out.signal.is_none()
            && out.code.is_some()
            && (text.contains("Traceback") || text.contains("re.error"))
    });
    if let Some(rc) = rc_broke {
        let said = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim();
        let msg = format!("the package's {rc} makes rpmlint fail: {said}");
        let outcome = if required {
            progress::note(&format!("build FAILED: {msg}"));
            rec.outcome = Outcome::Failed;
            rec.notes.push(msg.clone());
            Outcome::Failed
        } else {
            Outcome::Info
        };
        rec.results
            .push(case_result(outcome, msg, Some(log.path.clone()), None));
        return Ok(vec![log]);
    }
    let Some(f) = findings(&text).filter(|_| finished) else {
        let how = out
            .failure()
            .map_or_else(|| "it printed no summary".to_string(), |f| f.to_string());
        let why =
            format!("rpmlint did not finish ({how}): an environment failure, not the package's");
        not_run(required, &why, rec);
        if let Some(r) = rec.results.iter_mut().find(|r| r.testcase == CASE) {
            r.log = Some(log.path.clone());
        }
        return Ok(vec![log]);
    };
    let counts = format!("{} errors, {} warnings", f.errors, f.warnings);
    let (outcome, note) = if !required {
        (
            Outcome::Info,
            format!("{counts} (informational: the package's gating.yaml does not require {CASE})"),
        )
    } else if f.errors > 0 {
        let msg = format!(
            "rpmlint found {counts}, and the package's gating.yaml requires {CASE}: {}",
            f.first_errors.join("; ")
        );
        progress::note(&format!("build FAILED: {msg}"));
        rec.outcome = Outcome::Failed;
        rec.notes.push(msg);
        (Outcome::Failed, counts.clone())
    } else {
        (Outcome::Passed, counts.clone())
    };
    rec.results.push(case_result(
        outcome,
        note,
        Some(log.path.clone()),
        Some(started.elapsed().as_secs_f64()),
    ));
    Ok(vec![log])
}

/// The `rpmlint` case as the record holds it.
fn case_result(
    outcome: Outcome,
    note: String,
    log: Option<String>,
    duration_s: Option<f64>,
) -> TestResult {
    TestResult {
        testcase: CASE.into(),
        outcome,
        runner: Some("rpmlint".into()),
        scenario: None,
        log,
        duration_s,
        note: Some(note),
        attempts: Vec::new(),
        extra: Default::default(),
    }
}

/// rpmlint could not give its verdict (`why`, the host's): ERROR for a gate that requires
/// it (the stage too, never reused), else only a note.
fn not_run(required: bool, why: &str, rec: &mut RecordParts) {
    progress::note(&format!("warning: {why}"));
    rec.notes.push(why.to_string());
    if !required {
        return;
    }
    rec.outcome = Outcome::Error;
    rec.cacheable = false;
    rec.results.push(case_result(
        Outcome::Error,
        format!("{why}; the package's gating.yaml requires {CASE}"),
        None,
        None,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpmlint_output_is_read_from_its_closing_line() {
        let out = "foo.noarch: E: explicit-lib-dependency libattr\nfoo.noarch: W: no-url-tag\n 2 packages and 0 specfiles checked; 1 errors, 1 warnings, 1 badness; has taken 0.1 s \n";
        assert_eq!(
            findings(out),
            Some(Findings {
                errors: 1,
                warnings: 1,
                first_errors: vec!["foo.noarch: E: explicit-lib-dependency libattr".into()],
            })
        );
        assert_eq!(findings("Traceback (most recent call last):\n"), None);
    }

    #[test]
    fn a_gate_requires_rpmlint_by_its_name_in_any_namespace() {
        assert!(requires("fedora-ci.koji-build.build.rpmlint"));
        assert!(requires("build.rpmlint"));
        assert!(!requires("fedora-ci.koji-build.tier0.functional"));
        assert!(!requires("rpmlint2"));
    }
}
