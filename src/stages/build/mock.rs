//! The mock backend: mock builds the SRPM, then rebuilds it in its chroot. mock is not
//! packaged for Debian, where fci is developed: this backend runs in the tests only through a
//! stand-in that speaks mock's interface (its probe and exit codes), never a real chroot.

use super::backend::{check_status, collect, Backend, Capabilities, Job, Output};
use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::path::PathBuf;

pub struct Mock {
    pub config: Option<String>,
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn capabilities(&self) -> Capabilities {
        // mock's chroot has its own Fedora environment and package set.
        Capabilities {
            host_root: false,
            fedora_macros: false,
            isolation: "mock chroot",
        }
    }

    fn tools(&self) -> Vec<crate::tool::Tool> {
        vec![super::MOCK]
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
                .timeout(job.timeout)
                .timeout_whole(job.timeout_whole)
                .judges_timeout(),
        )?;
        let srpms = collect(job.work, &srpm_dir)?;
        if !srpm.success() || srpms.is_empty() {
            return Ok(Output {
                success: false,
                check_failed: false,
                check_ran: false,
                packages: srpms,
                tail: log.tail(40),
                timed_out: srpm.timed_out,
                limit: None,
                host_failure: mock_host_failure(&srpm),
                signal: srpm.signal,
                // mock writes its results itself, outside the chroot.
                outputs_replaced: None,
            });
        }
        let mut rebuild = base(Cmd::new("mock"))
            .arg("--resultdir")
            .arg(&rpm_dir)
            .arg("--rebuild");
        if job.nocheck {
            rebuild = rebuild.arg("--nocheck");
        }
        let done = log.run(
            &rebuild
                .arg(&srpms[0])
                .timeout(job.timeout)
                .timeout_whole(job.timeout_whole)
                .judges_timeout(),
        )?;
        // mock keeps rpmbuild's output in build.log, not on its own stderr.
        // Appended capped, as command output is; read back line by line and from its end.
        let build_log = rpm_dir.join("build.log");
        log.append_file(&build_log);
        let rpms: Vec<PathBuf> = collect(job.work, &rpm_dir)?
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".src.rpm"))
            .collect();
        let (check_ran, check_failed) = match std::fs::File::open(&build_log) {
            Ok(f) => check_status(f),
            Err(_) => (false, false),
        };
        let tail = crate::caps::tail(&build_log, crate::caps::LOG_TAIL_READ).unwrap_or_default();
        Ok(Output {
            success: done.success(),
            check_failed,
            check_ran,
            packages: srpms.into_iter().chain(rpms).collect(),
            tail: crate::redact::redact(&crate::exec::last_lines(
                &String::from_utf8_lossy(&tail),
                40,
            )),
            timed_out: done.timed_out,
            limit: None,
            host_failure: mock_host_failure(&done),
            signal: done.signal,
            outputs_replaced: None,
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
