//! The conformance runners: sonobuoy (default), e2e.test, openshift-tests, or any argument
//! vector. Each runs against the kubeconfig and leaves JUnit files; this file knows their
//! command lines and where their JUnit lands, nothing about what the JUnit says.

use super::cancel::{self, OnSignal, Stopped};
use crate::exec::{Cmd, Log};
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SONOBUOY: Tool = Tool::elsewhere(
    "sonobuoy",
    "no Debian package has it: download a release from https://github.com/vmware-tanzu/sonobuoy/releases and put `sonobuoy` on PATH",
);
pub const E2E_TEST: Tool = Tool::elsewhere(
    "e2e.test",
    "no Debian package has it: it is in Kubernetes' test tarball (https://dl.k8s.io/release/vX.Y.Z/kubernetes-test-linux-amd64.tar.gz, kubernetes/test/bin/e2e.test); put it on PATH",
);
pub const OPENSHIFT_TESTS: Tool = Tool::elsewhere(
    "openshift-tests",
    "no Debian package has it: extract it from the release payload (`oc adm release extract --command=openshift-tests`) or build it from https://github.com/openshift/origin; put it on PATH",
);
pub const TAR: Tool = Tool::new("tar", "tar");

/// `--runner`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// sonobuoy run --mode MODE --wait; retrieve; delete
    Sonobuoy,
    /// e2e.test --ginkgo.focus '\[Conformance\]'
    #[value(name = "e2e.test")]
    E2eTest,
    /// openshift-tests run kubernetes/conformance
    OpenshiftTests,
}

/// A runner, ready to run.
pub enum Runner {
    Sonobuoy {
        mode: String,
    },
    E2eTest,
    OpenshiftTests,
    /// `--runner-cmd`, its placeholders already filled in.
    Custom(Vec<String>),
}

/// How the suite ended: its JUnit files, and the runner's own exit.
pub struct Ran {
    pub junit: Vec<PathBuf>,
    /// Where the JUnit files were looked for, for the "none found" message.
    pub looked_in: String,
    /// The suite command's exit code (None: killed).
    pub exit: Option<i32>,
    pub stopped: Option<Stopped>,
    /// What else happened on the way (sonobuoy retrieve/delete trouble).
    pub notes: Vec<String>,
    /// Why no result of this run can be trusted, whatever JUnit there is (a failed
    /// `sonobuoy run`: what `retrieve` would return may be an earlier run's).
    pub untrusted: Option<String>,
}

impl Runner {
    pub fn name(&self) -> &'static str {
        match self {
            Runner::Sonobuoy { .. } => "sonobuoy",
            Runner::E2eTest => "e2e.test",
            Runner::OpenshiftTests => "openshift-tests",
            Runner::Custom(_) => "custom",
        }
    }

    /// The tools it needs; a custom runner's program is checked by the stage.
    pub fn tools(&self) -> Vec<Tool> {
        match self {
            Runner::Sonobuoy { .. } => vec![SONOBUOY, TAR],
            Runner::E2eTest => vec![E2E_TEST],
            Runner::OpenshiftTests => vec![OPENSHIFT_TESTS],
            Runner::Custom(_) => Vec::new(),
        }
    }

    /// Runs the suite against `kubeconfig`; the runner's files go below `work`, JUnit
    /// reports into `junit_dir` (a custom runner was given it as `{junit_dir}`).
    pub fn run(
        &self,
        kubeconfig: &Path,
        work: &Path,
        junit_dir: &Path,
        timeout: Option<Duration>,
        log: &mut Log,
    ) -> Result<Ran> {
        // Runners run in the directory fci was started from (relative paths are the user's).
        let base = |program: &str| Cmd::new(program).env("KUBECONFIG", kubeconfig);
        let suite = match self {
            Runner::Sonobuoy { mode } => {
                return sonobuoy(mode, kubeconfig, work, timeout, log);
            }
            Runner::E2eTest => base(E2E_TEST.program)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["--ginkgo.focus", r"\[Conformance\]", "--report-dir"])
                .arg(junit_dir),
            Runner::OpenshiftTests => base(OPENSHIFT_TESTS.program)
                .args(["run", "kubernetes/conformance", "--junit-dir"])
                .arg(junit_dir),
            Runner::Custom(argv) => base(&argv[0]).args(&argv[1..]),
        };
        let g = cancel::run(log, &suite, timeout, false, OnSignal::Kill)?;
        // The runner may have replaced its report directory by a link to reports elsewhere.
        let mut untrusted = std::fs::symlink_metadata(junit_dir)
            .is_ok_and(|m| !m.file_type().is_dir())
            .then(|| {
                format!(
                    "{} was replaced by a symlink or a file: not trusted",
                    junit_dir.display()
                )
            });
        let junit = match untrusted {
            Some(_) => Vec::new(),
            None => xml_files(junit_dir).unwrap_or_else(|why| {
                untrusted = Some(why);
                Vec::new()
            }),
        };
        Ok(Ran {
            junit,
            looked_in: format!("{}/**/*.xml", junit_dir.display()),
            exit: g.done.code,
            stopped: g.stopped,
            notes: Vec::new(),
            untrusted,
        })
    }
}

/// `sonobuoy run --wait`, then `retrieve` (the tarball's path is its output) unpacked with
/// tar, then `delete --wait`, whatever happened before (best effort: noted, never fatal).
fn sonobuoy(
    mode: &str,
    kubeconfig: &Path,
    work: &Path,
    timeout: Option<Duration>,
    log: &mut Log,
) -> Result<Ran> {
    let sono = |verb: &str| {
        Cmd::new(SONOBUOY.program)
            .arg(verb)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("KUBECONFIG", kubeconfig)
    };
    let mut notes = Vec::new();
    let results = work.join("sonobuoy-results");
    let g = cancel::run(
        log,
        &sono("run").args(["--mode", mode, "--wait"]),
        timeout,
        false,
        OnSignal::Kill,
    )?;
    let (exit, stopped) = (g.done.code, g.stopped);
    // A failed `sonobuoy run` has no results of its own: `retrieve` would fetch whatever the
    // cluster still holds (an earlier run's, when its `delete` failed). Not retrieved at all.
    let untrusted = (stopped.is_none() && exit != Some(0)).then(|| {
        format!(
            "sonobuoy run {}: its results are not retrieved (what the cluster holds may be an earlier run's)",
            super::status(exit)
        )
    });
    if stopped.is_none() && untrusted.is_none() {
        std::fs::create_dir_all(&results)?;
        let retrieve = cancel::run(
            log,
            &sono("retrieve").arg(work),
            Some(Duration::from_secs(600)),
            true,
            OnSignal::Kill,
        )?;
        let tarball = retrieve
            .done
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| std::path::absolute(l).unwrap_or_else(|_| work.join(l)));
        match tarball {
            Some(t) if retrieve.done.success() && t.is_file() => {
                if let Some(why) = unpack(log, &t, &results)? {
                    return finish(log, &sono, exit, stopped, notes, Some(why));
                }
            }
            _ => notes.push(format!(
                "sonobuoy retrieve gave no tarball ({}): {}",
                super::status(retrieve.done.code),
                retrieve.done.reason()
            )),
        }
    }
    finish(log, &sono, exit, stopped, notes, untrusted).map(|mut ran| {
        if ran.untrusted.is_none() && ran.stopped.is_none() {
            match sonobuoy_junit(&results) {
                Ok(junit) => ran.junit = junit,
                Err(why) => ran.untrusted = Some(why),
            }
        }
        ran
    })
}

/// sonobuoy's tarball `t` unpacked into `results` with tar, after its members were listed
/// and checked. `Some(why)`: the tarball is not trusted (a member outside its directory,
/// or tar could not list or unpack it).
fn unpack(log: &mut Log, t: &Path, results: &Path) -> Result<Option<String>> {
    // Listed first: a member named absolutely or through `..` would land outside
    // the results directory.
    let listed = cancel::run(
        log,
        &Cmd::new(TAR.program).arg("-tf").arg(t),
        Some(Duration::from_secs(600)),
        true,
        OnSignal::Kill,
    )?;
    if let Some(bad) = listed
        .done
        .stdout
        .lines()
        .find(|m| unsafe_member(m))
        .or_else(|| (!listed.done.success()).then_some(""))
    {
        let why = if bad.is_empty() {
            format!("tar cannot list sonobuoy's tarball {}", t.display())
        } else {
            format!(
                "sonobuoy's tarball {} has a member outside its directory ({}): not unpacked, not trusted",
                t.display(),
                crate::progress::plain(bad)
            )
        };
        return Ok(Some(why));
    }
    let untar = cancel::run(
        log,
        &Cmd::new(TAR.program)
            .args(["--no-same-owner", "--no-same-permissions", "-xf"])
            .arg(t)
            .arg("-C")
            .arg(results),
        Some(Duration::from_secs(600)),
        false,
        OnSignal::Kill,
    )?;
    if !untar.done.success() {
        // What a failed or killed tar left is part of the results at best (the
        // passing reports without the failing ones): never read.
        let why = format!(
            "tar cannot unpack sonobuoy's tarball {} ({}): a partial unpack is not trusted (see the stage log)",
            t.display(),
            super::status(untar.done.code)
        );
        return Ok(Some(why));
    }
    Ok(None)
}

/// `sonobuoy delete`, whatever happened before, then the run's end.
fn finish(
    log: &mut Log,
    sono: &dyn Fn(&str) -> Cmd,
    exit: Option<i32>,
    stopped: Option<Stopped>,
    mut notes: Vec<String>,
    untrusted: Option<String>,
) -> Result<Ran> {
    // The runner's namespace goes, also after a failure or a signal; the teardown (if any)
    // follows, and a delete that cannot finish is only noted.
    let del = cancel::run(
        log,
        &sono("delete").arg("--wait"),
        Some(Duration::from_secs(600)),
        false,
        OnSignal::Ignore,
    )?;
    if !del.done.success() {
        notes.push(format!(
            "sonobuoy delete {}: its namespace may be left on the cluster",
            super::status(del.done.code)
        ));
    }
    Ok(Ran {
        junit: Vec::new(),
        looked_in: "plugins/e2e/results/global/*.xml in sonobuoy's tarball".into(),
        exit,
        stopped,
        notes,
        untrusted,
    })
}

/// The JUnit files of an unpacked sonobuoy tarball: only regular files, reached through real
/// directories (a symlinked `global` or `results` could point at any report on the host).
fn sonobuoy_junit(results: &Path) -> Result<Vec<PathBuf>, String> {
    let global = results.join("plugins/e2e/results/global");
    if std::fs::symlink_metadata(&global).is_err() {
        return Ok(Vec::new());
    }
    if !crate::files::real_dir_below(results, &global) {
        return Err(
            "sonobuoy's tarball reaches plugins/e2e/results/global through a symlink (or it is not a directory): not trusted"
                .into(),
        );
    }
    let mut junit = Vec::new();
    for e in std::fs::read_dir(&global).map_err(|e| format!("{}: {e}", global.display()))? {
        let e = e.map_err(|e| format!("{}: {e}", global.display()))?;
        let p = e.path();
        if p.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        // file_type() does not follow a symlink.
        match e.file_type() {
            Ok(t) if t.is_file() => junit.push(p),
            _ => {
                return Err(format!(
                    "sonobuoy's {} is not a regular file (a symlink?): not trusted",
                    p.strip_prefix(results).unwrap_or(&p).display()
                ))
            }
        }
    }
    junit.sort();
    Ok(junit)
}

/// A tar member name that would not stay below the directory it is unpacked in.
fn unsafe_member(name: &str) -> bool {
    name.starts_with('/') || name.split('/').any(|c| c == "..")
}

/// Every `*.xml` file below `dir` (not following links), sorted. A `*.xml` that is not a
/// regular file (a symlink to a report elsewhere, a fifo) is an error: it is not trusted,
/// as sonobuoy's are not, and never silently left out.
fn xml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        let p = e.path();
        if e.file_type().is_dir() || p.extension().is_none_or(|x| x != "xml") {
            continue;
        }
        if !e.file_type().is_file() {
            return Err(format!(
                "the runner's {} is not a regular file (a symlink?): not trusted",
                p.strip_prefix(dir).unwrap_or(p).display()
            ));
        }
        out.push(e.into_path());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_xml_that_is_not_a_regular_file_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/junit_01.xml"), "<testsuite/>").unwrap();
        std::fs::write(d.path().join("notes.txt"), "").unwrap();
        assert_eq!(super::xml_files(d.path()).unwrap().len(), 1);
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("junit_02.xml")).unwrap();
        let e = super::xml_files(d.path()).unwrap_err();
        assert!(
            e.contains("junit_02.xml") && e.contains("not trusted"),
            "{e}"
        );
    }

    #[test]
    fn members_outside_the_directory_are_unsafe() {
        for bad in ["/etc/passwd", "../x", "plugins/../../x", "a/.."] {
            assert!(super::unsafe_member(bad), "{bad}");
        }
        for ok in ["plugins/e2e/results/global/junit_01.xml", "meta/", "a..b/c"] {
            assert!(!super::unsafe_member(ok), "{ok}");
        }
    }
}
