//! What the STI and tmt runners share: the sandboxed environment of one attempt and its
//! raw results.

use crate::caps;
use crate::exec::{Cmd, Log};
use crate::manifest::Outcome;
use crate::sandbox::{Overlay, Sandbox};
use anyhow::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One test case as a runner reports it, before it becomes a manifest result.
#[derive(Clone, Debug)]
pub struct Case {
    pub runner: &'static str,
    pub name: String,
    /// The STI playbook or tmt plan it ran in.
    pub group: Option<String>,
    pub outcome: Outcome,
    pub log: Option<PathBuf>,
    pub duration_s: Option<f64>,
    pub note: Option<String>,
    /// A result for the whole run (it broke before or instead of reporting test cases).
    pub whole_run: bool,
    /// The run was killed at --timeout: whatever else it reported, the stage's verdict is
    /// never reused.
    pub timed_out: bool,
}

impl Case {
    pub fn key(&self) -> (String, Option<String>, String) {
        (
            self.runner.to_string(),
            self.group.clone(),
            self.name.clone(),
        )
    }

    /// The note for a run killed by the timeout.
    pub fn timeout_note(env: &Env) -> String {
        let secs = env.timeout.map_or(0, |t| t.as_secs());
        format!("killed after {secs}s: the run exceeded --timeout (raise it if the tests are just slow)")
    }

    /// The ERROR of a run killed at the timeout (`also`: what else went wrong with it): the
    /// one way a runner reports a timeout, so that none passes for a result.
    pub fn timed_out(
        runner: &'static str,
        group: Option<&str>,
        name: &str,
        env: &Env,
        also: Option<String>,
    ) -> Self {
        let note = match also {
            Some(why) => format!("{}; {why}", Case::timeout_note(env)),
            None => Case::timeout_note(env),
        };
        Case {
            timed_out: true,
            ..Case::run_error(runner, group, name, note, None)
        }
    }

    /// The whole run killed because its package code went past one of its limits (`why`:
    /// `pids limit 1024 reached`): FAILED, the package's doing.
    pub fn limit_hit(runner: &'static str, group: Option<&str>, name: &str, why: &str) -> Self {
        Case {
            outcome: Outcome::Failed,
            note: Some(format!("killed: {why}{LIMIT_NOTE}")),
            ..Case::run_error(runner, group, name, String::new(), None)
        }
    }

    /// The limit a run was killed past, when this is that run's result.
    pub fn limit_reached(&self) -> Option<&str> {
        let note = self.note.as_deref()?;
        if self.outcome != Outcome::Failed || !self.whole_run {
            return None;
        }
        note.strip_prefix("killed: ")?.strip_suffix(LIMIT_NOTE)
    }

    /// A result for the whole run when it broke before (or instead of) reporting test cases.
    pub fn run_error(
        runner: &'static str,
        group: Option<&str>,
        name: &str,
        note: String,
        log: Option<PathBuf>,
    ) -> Self {
        Case {
            runner,
            name: name.to_string(),
            group: group.map(String::from),
            outcome: Outcome::Error,
            log,
            duration_s: None,
            note: Some(note),
            whole_run: true,
            timed_out: false,
        }
    }
}

/// The cases one run (or one attempt of a stage) reported, bounded: tests may report millions.
/// Past [`caps::PASSED_LISTED`] passed and [`caps::FAILED_LISTED`] failed or errored cases,
/// a case is only counted in `unlisted`, and still decides the verdict. Names and notes are
/// cut at [`caps::CASE_TEXT`] characters. A result for a whole run (it broke, timed out, went
/// past a limit) is always listed: the stage must see it (such results are few: one per run,
/// and at most one per tmt plan, whose number is bounded).
#[derive(Default)]
pub struct Cases {
    pub listed: Vec<Case>,
    pub unlisted: Unlisted,
    passed: usize,
    failed: usize,
}

/// Cases counted but not listed.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unlisted {
    /// Passed, info or skipped.
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl Unlisted {
    pub fn add(&mut self, o: Unlisted) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.errors += o.errors;
    }

    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errors
    }

    /// What the unlisted cases add to the verdict.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> {
        let failed = (self.failed > 0).then_some(Outcome::Failed);
        let errors = (self.errors > 0).then_some(Outcome::Error);
        failed.into_iter().chain(errors)
    }
}

impl Cases {
    pub fn push(&mut self, mut c: Case) {
        let failing = !c.outcome.is_pass() && c.outcome != Outcome::Skipped;
        let (count, cap) = if failing {
            (&mut self.failed, caps::FAILED_LISTED)
        } else {
            (&mut self.passed, caps::PASSED_LISTED)
        };
        if *count >= cap && !c.whole_run {
            match c.outcome {
                Outcome::Error => self.unlisted.errors += 1,
                _ if failing => self.unlisted.failed += 1,
                _ => self.unlisted.passed += 1,
            }
            return;
        }
        *count += 1;
        if c.name.chars().nth(caps::CASE_TEXT).is_some() {
            c.name = caps::cut_text(&c.name);
        }
        if let Some(n) = c
            .note
            .as_deref()
            .filter(|n| n.chars().nth(caps::CASE_TEXT).is_some())
        {
            c.note = Some(caps::cut_text(n));
        }
        self.listed.push(c);
    }

    /// Another run's cases, under this one's caps.
    pub fn append(&mut self, other: Cases) {
        self.unlisted.add(other.unlisted);
        for c in other.listed {
            self.push(c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.unlisted.total() == 0
    }

    /// Every case, listed or not, passed.
    pub fn all_pass(&self) -> bool {
        self.unlisted.failed + self.unlisted.errors == 0
            && self.listed.iter().all(|c| c.outcome.is_pass())
    }

    pub fn any_error(&self) -> bool {
        self.unlisted.errors > 0 || self.listed.iter().any(|c| c.outcome == Outcome::Error)
    }
}

impl FromIterator<Case> for Cases {
    fn from_iter<I: IntoIterator<Item = Case>>(iter: I) -> Self {
        let mut cases = Cases::default();
        for c in iter {
            cases.push(c);
        }
        cases
    }
}

const LIMIT_NOTE: &str = " (the bounds of package code: --max-pids, --max-memory, --max-scratch)";

/// Everything an attempt needs to run isolated against the subject.
pub struct Env<'a> {
    pub overlays: &'a [Overlay],
    /// The dist-git tree (tests, plans) to copy for each attempt.
    pub tree: &'a Path,
    /// Read-only paths the tests may see (the RPMs, fci's roles).
    pub readonly: Vec<PathBuf>,
    pub subjects: Vec<PathBuf>,
    /// Hidden from the tests (fci's workspace: other runs, the overlay mountpoints through
    /// which the host's own directories would show uncovered).
    pub hide: Vec<PathBuf>,
    pub network: bool,
    /// Kill a run (one playbook or one tmt run) that takes longer.
    pub timeout: Option<std::time::Duration>,
    /// What the tests may use (processes, memory, scratch).
    pub limits: crate::limits::Limits,
}

/// How a sandboxed run ended.
pub struct Ended {
    pub code: Option<i32>,
    pub timed_out: bool,
    /// Killed past a limit: which (`memory limit 4 GiB reached`).
    pub limit: Option<String>,
}

impl Env<'_> {
    /// A fresh writable copy of the tree and a home for one attempt below `dir`.
    pub fn attempt_dirs(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let src = dir.join("src");
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        copy_tree(self.tree, &src)?;
        Ok((src, home))
    }

    /// Starts the sandbox once with nothing in it, so that a host that cannot build it is told
    /// so, instead of every test run failing with a misleading status.
    pub fn check(&self, log: &mut Log, dir: &Path) -> Result<()> {
        let probe = dir.join("sandbox-check");
        std::fs::create_dir_all(&probe)?;
        self.sandbox(&probe, &probe, &probe, Vec::new()).check(log)
    }

    /// Runs `cmd` in the sandbox with `dir` writable; extra environment on top of the basics.
    pub fn run(
        &self,
        log: &mut Log,
        dir: &Path,
        home: &Path,
        cwd: &Path,
        extra_env: Vec<(String, OsString)>,
        cmd: Cmd,
    ) -> Result<Ended> {
        let sb = self.sandbox(dir, home, cwd, extra_env);
        // Judged by the runners: an ERROR case naming --timeout, which is never reused.
        let done = log.run(&sb.wrap(&cmd)?.timeout(self.timeout).judges_timeout())?;
        Ok(Ended {
            code: done.code,
            timed_out: done.timed_out,
            limit: done.limit,
        })
    }

    /// The sandbox of one run: `dir` writable, `cwd` its working directory.
    fn sandbox(
        &self,
        dir: &Path,
        home: &Path,
        cwd: &Path,
        extra_env: Vec<(String, OsString)>,
    ) -> Sandbox {
        let mut env: Vec<(String, OsString)> = vec![
            ("PATH".into(), crate::sandbox::SYSTEM_PATH.into()),
            ("HOME".into(), home.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TMPDIR".into(), "/tmp".into()),
            (
                "TEST_SUBJECTS".into(),
                self.subjects
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into(),
            ),
        ];
        env.extend(extra_env);
        Sandbox {
            network: self.network,
            writable: vec![dir.to_path_buf()],
            readonly: self.readonly.clone(),
            overlays: self.overlays.to_vec(),
            env,
            chdir: Some(cwd.to_path_buf()),
            hide_private: true,
            hide: self.hide.clone(),
            limits: self.limits,
        }
    }
}

/// The most fci reads of a results file written by tests.
pub const OUTPUT_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads a results file that untrusted tests wrote: None when absent; an error (for the
/// record) when it is not a plain regular file or is too large. Never follows a symlink.
pub fn read_output(path: &Path) -> std::result::Result<Option<String>, String> {
    use crate::caps::{read_file_with, Open, ReadError};
    let shown = path.file_name().unwrap_or_default().to_string_lossy();
    match read_file_with(path, OUTPUT_LIMIT, Open::NO_LINK) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {shown}: {e}")),
    }
}

/// Copies a whole tree (files and symlinks, without `.git`).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    crate::workspace::copy_files(from, &crate::digest::list_files(from, &[])?, to)
}
