//! Build backends: rpmbuild in an isolated `_topdir`, or mock.

use crate::exec::{Cmd, Log};
use crate::sandbox::Sandbox;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct Job<'a> {
    /// The spec the tools read: a copy among the sources (the checkout itself, with its
    /// `.git`, is not shown to spec code).
    pub spec: &'a Path,
    /// The spec as the user knows it, for messages.
    pub origin: &'a Path,
    /// fci's workspace, hidden from spec code but for the job's own directories.
    pub workspace: &'a Path,
    pub sources: &'a Path,
    /// Private, writable; results go below it.
    pub work: &'a Path,
    pub defines: &'a [(String, String)],
    pub nodeps: bool,
    pub nocheck: bool,
    pub timeout: Option<std::time::Duration>,
    /// fci's macro file for what the host's rpm lacks (rpmautospec's fallbacks); its Fedora
    /// build environment lies beside it. rpmbuild loads those the host needs (`fedora_env`).
    pub macros: Option<&'a Path>,
}

pub struct Output {
    pub success: bool,
    /// The failure was in %check (the package's own unit tests).
    pub check_failed: bool,
    /// %check ran (to its end or its failure).
    pub check_ran: bool,
    pub packages: Vec<PathBuf>,
    /// The end of the build's output, for a failure report.
    pub tail: String,
    /// Killed by the timeout.
    pub timed_out: bool,
    /// The backend itself failed for a reason of the host's (not the package's): ERROR.
    pub host_failure: Option<String>,
}

pub trait Backend {
    fn name(&self) -> &'static str;
    /// The programs whose versions the stage record names.
    fn tools(&self) -> Vec<&'static str>;
    fn build(&self, job: &Job, log: &mut Log) -> Result<Output>;
}

/// The sandbox for everything that reads the spec (rpmspec expands `%(...)` too): spec code
/// is untrusted, so no network, read-only host with secrets hidden, only `work` writable.
pub fn sandbox(job: &Job) -> Sandbox {
    Sandbox {
        writable: vec![job.work.to_path_buf()],
        hide: vec![job.workspace.to_path_buf()],
        readonly: [Some(job.sources), job.spec.parent(), job.macros]
            .into_iter()
            .flatten()
            .map(Path::to_path_buf)
            .chain(macro_files(job))
            .collect(),
        env: vec![
            ("PATH".into(), crate::sandbox::SYSTEM_PATH.into()),
            ("HOME".into(), job.work.join("home").into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        hide_private: true,
        ..Default::default()
    }
}

/// The macro files rpmbuild loads: fci's Fedora environment where the host has none of its
/// own, and rpmautospec's fallbacks where the host lacks them (see `fedora_env`).
fn macro_files(job: &Job) -> Vec<PathBuf> {
    job.macros.map_or_else(Vec::new, |m| {
        super::fedora_env::macro_files(m, super::fedora_env::Host::probe(Path::new("/")))
    })
}

pub struct Rpmbuild;

impl Backend for Rpmbuild {
    fn name(&self) -> &'static str {
        "rpmbuild"
    }

    fn tools(&self) -> Vec<&'static str> {
        vec!["rpmbuild", "bwrap"]
    }

    fn build(&self, job: &Job, log: &mut Log) -> Result<Output> {
        let top = job.work.join("rpmbuild");
        let home = job.work.join("home");
        for d in ["BUILD", "BUILDROOT", "RPMS", "SRPMS", "SPECS", "tmp"] {
            std::fs::create_dir_all(top.join(d))?;
        }
        std::fs::create_dir_all(&home)?;
        let mut cmd = Cmd::new("rpmbuild").arg("-ba");
        for m in macro_files(job) {
            cmd = cmd.arg("--load").arg(m);
        }
        if job.nodeps {
            cmd = cmd.arg("--nodeps");
        }
        if job.nocheck {
            cmd = cmd.arg("--nocheck");
        }
        cmd = cmd
            .define("_topdir", &top)
            .define("_sourcedir", job.sources)
            .define("_tmppath", top.join("tmp"))
            .define("_builddir", top.join("BUILD"));
        for (k, v) in job.defines {
            cmd = cmd.define(k, v);
        }
        let cmd = cmd.arg(job.spec);
        let cmd = sandbox(job).wrap(&cmd)?;
        let done = log.run(&cmd.timeout(job.timeout))?;
        let tail = log.tail(40);
        let packages = collect(&top.join("SRPMS"))?
            .into_iter()
            .chain(collect(&top.join("RPMS"))?)
            .collect();
        let (check_ran, check_failed) =
            check_status(&std::fs::read_to_string(&log.path).unwrap_or_default());
        Ok(Output {
            success: done.success(),
            check_failed,
            check_ran,
            packages,
            tail,
            timed_out: done.timed_out,
            host_failure: None,
        })
    }
}

pub struct Mock {
    pub config: Option<String>,
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn tools(&self) -> Vec<&'static str> {
        vec!["mock"]
    }

    fn build(&self, job: &Job, log: &mut Log) -> Result<Output> {
        let srpm_dir = job.work.join("mock-srpm");
        let rpm_dir = job.work.join("mock-rpms");
        std::fs::create_dir_all(&srpm_dir)?;
        std::fs::create_dir_all(&rpm_dir)?;
        let base = |c: Cmd| {
            let mut c = match &self.config {
                Some(cfg) => c.arg("-r").arg(cfg),
                None => c,
            };
            for (k, v) in job.defines {
                c = c.define(k, v);
            }
            c
        };
        let srpm = log.run(
            &base(Cmd::new("mock"))
                .arg("--resultdir")
                .arg(&srpm_dir)
                .arg("--buildsrpm")
                .arg("--spec")
                .arg(job.spec)
                .arg("--sources")
                .arg(job.sources)
                .timeout(job.timeout),
        )?;
        let srpms = collect(&srpm_dir)?;
        if !srpm.success() || srpms.is_empty() {
            return Ok(Output {
                success: false,
                check_failed: false,
                check_ran: false,
                packages: srpms,
                tail: log.tail(40),
                timed_out: srpm.timed_out,
                host_failure: mock_host_failure(&srpm),
            });
        }
        let mut rebuild = base(Cmd::new("mock"))
            .arg("--resultdir")
            .arg(&rpm_dir)
            .arg("--rebuild");
        if job.nocheck {
            rebuild = rebuild.arg("--nocheck");
        }
        let done = log.run(&rebuild.arg(&srpms[0]).timeout(job.timeout))?;
        // mock keeps rpmbuild's output in build.log, not on its own stderr.
        let build_log = std::fs::read_to_string(rpm_dir.join("build.log")).unwrap_or_default();
        log.line(&crate::exec::redact(&build_log));
        let rpms: Vec<PathBuf> = collect(&rpm_dir)?
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".src.rpm"))
            .collect();
        let (check_ran, check_failed) = check_status(&build_log);
        Ok(Output {
            success: done.success(),
            check_failed,
            check_ran,
            packages: srpms.into_iter().chain(rpms).collect(),
            tail: crate::exec::last_lines(&build_log, 40),
            timed_out: done.timed_out,
            host_failure: mock_host_failure(&done),
        })
    }
}

impl Mock {
    /// Asks mock for its configuration, which fails the way a build would for the host's
    /// reasons (not in the `mock` group, a missing or broken config, mock run as root where
    /// it refuses): the reason, or None when mock can build here.
    pub fn probe(&self, log: &mut Log) -> Result<Option<String>> {
        let mut cmd = Cmd::new("mock");
        if let Some(cfg) = &self.config {
            cmd = cmd.arg("-r").arg(cfg);
        }
        let done = log.capture(&cmd.arg("--debug-config"))?;
        if done.success() {
            return Ok(None);
        }
        let said = done
            .stderr
            .lines()
            .chain(done.stdout.lines())
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no reason given")
            .trim()
            .to_string();
        Ok(Some(format!(
            "mock cannot build here (exit {}): {said}",
            done.code.map_or("by a signal".into(), |c| c.to_string())
        )))
    }
}

/// mock's exit codes (mockbuild/exception.py) tell its own failures from the package's: 10 is
/// rpmbuild failing and 40 a bad source package; 1, 5, 20, 30, 50, 60 and 70 are mock's own
/// (its setup, the chroot, dnf, a lock, the result directory).
fn mock_host_failure(done: &crate::exec::Finished) -> Option<String> {
    if done.timed_out {
        return None;
    }
    let meaning = match done.code? {
        0 | 10 | 40 => return None,
        5 => "command line not accepted",
        20 => "the chroot could not be set up",
        30 => "dnf failed in the chroot (repositories or BuildRequires)",
        50 => "a subcommand could not be started",
        60 => "the build root is locked by another mock",
        70 => "the result directory could not be created",
        _ => "mock failed before or around the build",
    };
    Some(format!(
        "mock exit {}: {meaning}",
        done.code.unwrap_or_default()
    ))
}

/// Whether rpmbuild's output shows %check running, and failing: rpmbuild's own lines, not
/// whatever a build step printed that mentions %check.
fn check_status(output: &str) -> (bool, bool) {
    let ran = output.lines().any(|l| l.starts_with("Executing(%check)"));
    let failed = output.lines().any(|l| {
        l.starts_with("error: Bad exit status from ") && l.trim_end().ends_with("(%check)")
    });
    (ran, ran && failed)
}

/// Every `*.rpm` below `dir`, sorted.
fn collect(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for f in crate::digest::list_files(dir, &[])? {
        if f.extension().is_some_and(|e| e == "rpm") {
            out.push(dir.join(f));
        }
    }
    Ok(out)
}
