//! The build backends' interface (`rpmbuild.rs`, `mock.rs`): a job in, packages and a verdict out.

use crate::exec::Log;
use crate::sandbox::Sandbox;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct Job<'a> {
    /// The spec the tools read: a copy among the sources (the checkout itself, with its
    /// `.git`, is not shown to spec code).
    pub spec: &'a Path,
    /// The spec as the user knows it, for messages: its path in the dist-git repository.
    pub origin: &'a Path,
    /// How many lines fci's copy has above the spec's first line (what rpmautospec's
    /// processing added), for messages that name a line.
    pub line_offset: usize,
    /// fci's workspace, hidden from spec code but for the job's own directories.
    pub workspace: &'a Path,
    /// The checkout and its repository (their `.git`), hidden from spec code.
    pub private: &'a [PathBuf],
    pub sources: &'a Path,
    /// Private, writable; results go below it.
    pub work: &'a Path,
    pub defines: &'a [(String, String)],
    pub nodeps: bool,
    pub nocheck: bool,
    /// What is left of the build's --timeout (`timeout_whole`) for this job's command.
    pub timeout: Option<std::time::Duration>,
    pub timeout_whole: Option<std::time::Duration>,
    /// What package code may use (processes, memory, scratch).
    pub limits: crate::limits::Limits,
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
    /// Killed past a limit: which (`pids limit 1024 reached`).
    pub limit: Option<String>,
    /// The backend itself failed for a reason of the host's (not the package's): ERROR.
    pub host_failure: Option<String>,
    /// The build was killed by this signal (bwrap reports 128 + the signal).
    pub signal: Option<i32>,
    /// Package code replaced a directory the packages are written to (with a link to where
    /// fci would not look): the package's failure, whatever rpmbuild's status.
    pub outputs_replaced: Option<String>,
}

/// The signal a sandboxed command died of, from bwrap's exit status (128 + signal).
pub fn signal_of(code: Option<i32>) -> Option<i32> {
    code.filter(|c| (129..160).contains(c)).map(|c| c - 128)
}

/// What a backend does, for what the stage does around it (never a test of its name).
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    /// Builds in the host's root, against its rpm database and configuration: the host must
    /// satisfy BuildRequires (checked first with --strict-builddeps, else built with --nodeps
    /// and the unmet ones noted), its package set and rpm configuration are inputs of the
    /// build, and rpmbuild is the backend itself (a failure note need not name another).
    /// Otherwise the backend brings a build root of its own (mock's chroot).
    pub host_root: bool,
    /// Loads fci's Fedora build environment (its macros) where the host has none.
    pub fedora_macros: bool,
    /// What keeps package code from the host, as the stage record names it.
    pub isolation: &'static str,
}

pub trait Backend {
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// The programs whose versions the stage record names.
    fn tools(&self) -> Vec<crate::tool::Tool>;
    fn build(&self, job: &Job, log: &mut Log) -> Result<Output>;
}

/// The sandbox for everything that reads the spec (rpmspec expands `%(...)` too): spec code
/// is untrusted, so no network, read-only host with secrets hidden, only `work` writable.
pub fn sandbox(job: &Job) -> Sandbox {
    Sandbox {
        writable: vec![job.work.to_path_buf()],
        // The checkout first: the workspace may lie inside it (`fci build .`).
        hide: job
            .private
            .iter()
            .cloned()
            .chain(std::iter::once(job.workspace.to_path_buf()))
            .collect(),
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
        limits: job.limits,
        ..Default::default()
    }
}

/// The macro files rpmbuild loads: fci's Fedora environment where the host has none of its
/// own, and rpmautospec's fallbacks where the host lacks them (see `fedora_env`).
pub fn macro_files(job: &Job) -> Vec<PathBuf> {
    job.macros.map_or_else(Vec::new, |m| {
        super::fedora_env::macro_files(m, super::fedora_env::Host::probe(Path::new("/")))
    })
}

/// Whether rpmbuild's output shows %check running, and failing: rpmbuild's own lines, not
/// whatever a build step printed that mentions %check.
pub fn check_status(output: impl std::io::Read) -> (bool, bool) {
    let (mut ran, mut failed) = (false, false);
    // Line by line as the log streams past: it is never read whole.
    let _ = crate::caps::for_each_line(output, |l| {
        ran |= l.starts_with("Executing(%check)");
        failed |=
            l.starts_with("error: Bad exit status from ") && l.trim_end().ends_with("(%check)");
    });
    (ran, ran && failed)
}

/// Why the packages' directories below `work` cannot be read as the build's (one was
/// replaced by a link, or by something else than a directory), or None: absent or intact.
pub fn replaced_outputs(work: &Path, dirs: &[PathBuf]) -> Option<String> {
    dirs.iter()
        .find(|d| d.symlink_metadata().is_ok() && !crate::files::real_dir_below(work, d))
        .map(|d| {
            format!(
                "package code replaced the build's {} directory (with a link?): its packages cannot be read as the build's",
                d.file_name().unwrap_or_default().to_string_lossy()
            )
        })
}

/// Every `*.rpm` below `dir` (a directory the build wrote, below `work`), sorted: regular
/// files reached through real directories only, since package code could have swapped a
/// directory for a link to packages it cannot see (fci reads them as root).
/// What package code left there is its doing: a tree that cannot be listed (deeper than
/// PATH_MAX), or more files named `*.rpm` than any build makes (texlive makes about 6,000),
/// fails the build.
pub fn collect(work: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !crate::files::real_dir_below(work, dir) {
        return Ok(out);
    }
    let shown = dir.file_name().unwrap_or_default().to_string_lossy();
    let not_a_build = |why: String| -> anyhow::Error {
        super::repo::NotTheBuilds(format!(
            "the build's {shown} directory is not a build's output: {why}"
        ))
        .into()
    };
    // Walked with a bound on what is looked at, not listed whole: package code can fill its
    // scratch with hundreds of thousands of names (hard links, empty files), whose list
    // would take fci's own memory far past the scratch.
    let mut seen = 0usize;
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| not_a_build(format!("cannot list {}: {e}", d.display())))?;
        for e in entries {
            let e = e.map_err(|e| not_a_build(format!("cannot list {}: {e}", d.display())))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(not_a_build(format!("more than {MAX_ENTRIES} entries")));
            }
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if depth >= MAX_DEPTH {
                    return Err(not_a_build(format!(
                        "directories nested deeper than {MAX_DEPTH}"
                    )));
                }
                stack.push((p, depth + 1));
            } else if m.is_file() && p.extension().is_some_and(|x| x == "rpm") {
                out.push(p);
                if out.len() > MAX_PACKAGES {
                    return Err(not_a_build(format!(
                        "more than {MAX_PACKAGES} files named *.rpm"
                    )));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The most entries, and the deepest nesting, fci looks at in a build's output directory
/// (rpmbuild writes `RPMS/<arch>/*.rpm`).
const MAX_ENTRIES: usize = 50_000;
const MAX_DEPTH: usize = 8;

/// The most packages one build's output directory may hold.
pub const MAX_PACKAGES: usize = 10_000;
