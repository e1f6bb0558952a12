//! What the STI and tmt runners share: the sandboxed environment of one attempt and its
//! raw results.

use crate::caps;
use crate::exec::{Cmd, Log};
use crate::manifest::Outcome;
use crate::sandbox::{Guest, Overlay, Sandbox, GUEST_CHROOT, GUEST_ROOT};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;
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

/// How many cases of each outcome were counted but not listed.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Passed or info.
    pub passed: usize,
    pub skipped: usize,
    /// Failed or needing inspection.
    pub failed: usize,
    pub errors: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.skipped += o.skipped;
        self.failed += o.failed;
        self.errors += o.errors;
    }

    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Error => self.errors += 1,
            Outcome::Skipped => self.skipped += 1,
            o if o.is_pass() => self.passed += 1,
            _ => self.failed += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.passed + self.skipped + self.failed + self.errors
    }

    pub fn json(&self) -> Value {
        json!({"passed": self.passed, "skipped": self.skipped, "failed": self.failed, "errors": self.errors})
    }
}

/// Cases counted but not listed: in all, and per runner and group (STI playbook, tmt plan),
/// which the per-plan and per-playbook results (`fci report`) are judged by too.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Unlisted {
    pub all: Counts,
    pub groups: BTreeMap<(&'static str, Option<String>), Counts>,
}

impl Unlisted {
    fn count(&mut self, c: &Case) {
        self.all.count(c.outcome);
        self.groups
            .entry((c.runner, c.group.clone()))
            .or_default()
            .count(c.outcome);
    }

    pub fn add(&mut self, o: Unlisted) {
        self.all.add(o.all);
        for (k, v) in o.groups {
            self.groups.entry(k).or_default().add(v);
        }
    }

    /// Only the failed and errored cases of `o` (a rerun's: more passes are never counted).
    pub fn add_failing(&mut self, o: Unlisted) {
        let failing = |c: Counts| Counts {
            failed: c.failed,
            errors: c.errors,
            ..Counts::default()
        };
        self.all.add(failing(o.all));
        for (k, v) in o.groups {
            if v.failed + v.errors > 0 {
                self.groups.entry(k).or_default().add(failing(v));
            }
        }
    }

    pub fn total(&self) -> usize {
        self.all.total()
    }

    /// Any failed or errored case among them.
    pub fn any_failing(&self) -> bool {
        self.all.failed + self.all.errors > 0
    }

    /// What the unlisted cases add to the verdict: only failures and errors (an unlisted
    /// pass or skip never turns a SKIPPED or INFO stage into PASSED).
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> {
        let failed = (self.all.failed > 0).then_some(Outcome::Failed);
        let errors = (self.all.errors > 0).then_some(Outcome::Error);
        failed.into_iter().chain(errors)
    }

    /// `data.results_unlisted`: the counts, and each group's (`runner`, `plan` or `playbook`).
    pub fn json(&self) -> Value {
        let mut v = self.all.json();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|((runner, group), c)| {
                let mut g = c.json();
                g["runner"] = json!(runner);
                if let Some(name) = group {
                    g[if *runner == "tmt" { "plan" } else { "playbook" }] = json!(name);
                }
                g
            })
            .collect();
        v["groups"] = json!(groups);
        v
    }

    /// The counts a manifest's `data.results_unlisted` holds (the groups' too).
    pub fn from_json(v: &Value) -> Unlisted {
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
        let counts = |v: &Value| Counts {
            passed: n(v, "passed"),
            skipped: n(v, "skipped"),
            failed: n(v, "failed"),
            errors: n(v, "errors"),
        };
        let mut u = Unlisted {
            all: counts(v),
            ..Unlisted::default()
        };
        for g in v
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (runner, key) = match g.get("runner").and_then(Value::as_str) {
                Some("tmt") => ("tmt", "plan"),
                _ => ("sti", "playbook"),
            };
            let group = g.get(key).and_then(Value::as_str).map(String::from);
            u.groups.entry((runner, group)).or_default().add(counts(g));
        }
        u
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
            self.unlisted.count(&c);
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
        !self.unlisted.any_failing() && self.listed.iter().all(|c| c.outcome.is_pass())
    }

    pub fn any_error(&self) -> bool {
        self.unlisted.all.errors > 0 || self.listed.iter().any(|c| c.outcome == Outcome::Error)
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

/// The composed tree that `fci integrate`'s test commands run in as their root (see
/// `sandbox::Guest`), and the host's chroot(8) they enter it with.
pub struct GuestTree {
    pub tree: PathBuf,
    pub chroot: PathBuf,
}

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
    /// `fci integrate`: the tree the test commands run in (`FCI_GUEST_ROOT`), the runner
    /// staying on the host's view; None (`fci test`): they run where the runner does.
    pub guest: Option<&'a GuestTree>,
}

/// How a sandboxed run ended.
pub struct Ended {
    pub code: Option<i32>,
    pub timed_out: bool,
    /// Killed past a limit: which (`memory limit 4 GiB reached`).
    pub limit: Option<String>,
    /// The end of what it printed (`exec::Finished::tail`: whole lines, redacted), where a
    /// runner finds why it stopped.
    pub tail: String,
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
    /// so, instead of every test run failing with a misleading status. `probe` is an empty
    /// directory to write (bounded as an attempt's is).
    /// Nothing means none of the subject's files either: a package's own `/usr/sbin/true`
    /// (first on PATH) must not make the host's sandbox look broken, or hang the check.
    pub fn check(&self, log: &mut Log, probe: &Path) -> Result<()> {
        let mut bare = self.sandbox(probe, probe, probe, Vec::new());
        bare.overlays.clear();
        bare.check(log)
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
            tail: done.tail,
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
        if let Some(dirs) = fedora_libdirs(self.overlays) {
            env.push(("LD_LIBRARY_PATH".into(), dirs));
        }
        if self.guest.is_some() {
            env.push(("FCI_GUEST_ROOT".into(), GUEST_ROOT.into()));
            env.push(("FCI_CHROOT".into(), GUEST_CHROOT.into()));
        }
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
            // Only the attempt's directory (the tests, their home, TEST_ARTIFACTS, tmt's
            // workdirs) is seen in the guest: fci's roles and the RPMs are the runner's.
            guest: self.guest.map(|g| Guest {
                tree: g.tree.clone(),
                writable: vec![dir.to_path_buf()],
                readonly: Vec::new(),
                chroot: g.chroot.clone(),
            }),
        }
    }
}

/// Where the subject's libraries are found when it is layered over this host: Fedora's
/// loader searches `%_libdir` (/usr/lib64, /lib64) by default, where a Fedora package puts its
/// shared libraries; Debian's searches its multiarch directories only, so a package's program
/// would not find the library the package ships. When a layer over `/usr` has libraries in
/// lib64, those directories come first (as the package's own library comes first on Fedora,
/// ahead of an older copy of the host's). Setuid programs ignore the variable, as they would.
/// `fci integrate` is not layered: it runs in the composed tree, whose own loader decides.
fn fedora_libdirs(overlays: &[Overlay]) -> Option<OsString> {
    let has_libs = |dir: PathBuf| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.contains(".so") && !n.starts_with("ld-linux")
            })
        })
    };
    let shipped = overlays
        .iter()
        .filter(|o| o.target == Path::new("/usr"))
        .flat_map(|o| o.layers.iter())
        .any(|l| has_libs(l.join("lib64")));
    shipped.then(|| "/usr/lib64:/lib64".into())
}

/// The last line a failed or errored case's own log says (what it printed before it stopped),
/// for its note when the runner gave none: read at the log's end only, with lines that are
/// the runner's own noise left out. `c.log` must be confined already
/// (`results::confine_log`).
pub fn last_said(log: &Path) -> Option<String> {
    let bytes = crate::caps::tail(log, 16 * 1024).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[fci: "))
        // tmt's test wrapper, which cannot write the kernel log in a sandbox.
        .rfind(|l| !l.ends_with("/dev/kmsg: Read-only file system"))?;
    Some(crate::redact::redact(&crate::progress::plain(
        strip_script_prefix(line),
    )))
}

/// `./script-…sh: line 1: jo: command not found` as `jo: command not found`: the shell's
/// prefix of a runner's generated script names nothing the packager wrote.
pub fn strip_script_prefix(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("./") else {
        return line;
    };
    let Some((_, after)) = rest.split_once(": line ") else {
        return line;
    };
    match after.split_once(": ") {
        Some((n, said)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => said,
        _ => line,
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
    crate::files::copy_files(from, &crate::digest::list_files(from, &[])?, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cases_log_says_why_it_stopped_without_the_runners_noise() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("output.txt");
        std::fs::write(
            &log,
            "./tmt-test-wrapper-outer.sh-x: line 21: /dev/kmsg: Read-only file system\nhi\n\
             ./tmt-test-wrapper-inner.sh-x: line 1: jo: command not found\n\
             ./tmt-test-wrapper-outer.sh-x: line 32: /dev/kmsg: Read-only file system\n",
        )
        .unwrap();
        assert_eq!(last_said(&log).unwrap(), "jo: command not found");
        assert_eq!(strip_script_prefix("./a b: line x: y"), "./a b: line x: y");
    }

    #[test]
    fn unlisted_cases_are_counted_by_outcome_and_group_and_read_back() {
        let case = |plan: &str, i: usize, outcome| Case {
            runner: "tmt",
            name: format!("/tests/{i}"),
            group: Some(plan.into()),
            outcome,
            log: None,
            duration_s: None,
            note: None,
            whole_run: false,
            timed_out: false,
        };
        let mut cases = Cases::default();
        for i in 0..caps::PASSED_LISTED + 2 {
            cases.push(case("/plans/a", i, Outcome::Skipped));
        }
        cases.push(case("/plans/b", 0, Outcome::Passed));
        let u = &cases.unlisted;
        assert_eq!(
            u.all,
            Counts {
                passed: 1,
                skipped: 2,
                failed: 0,
                errors: 0
            }
        );
        // Passes and skips only: nothing for the verdict.
        assert!(!u.any_failing());
        assert_eq!(u.outcomes().count(), 0);
        assert_eq!(Unlisted::from_json(&u.json()), *u);
    }
}
