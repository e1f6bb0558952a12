//! Locating a dist-git checkout: a local directory, or a git URL (or local repo) at a ref.

use crate::error::FciError;
use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A dist-git tree ready to read, with what we know of its origin.
pub struct Checkout {
    pub dir: PathBuf,
    /// The repository as given: URL, or canonical local path.
    pub repo: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The work tree differs from `commit` (uncommitted or untracked files).
    pub dirty: bool,
    /// Paths inside the checkout that are fci's own (a workspace, an output file).
    exclude: Vec<PathBuf>,
    /// The repository's own directory on this machine, when it is local (cloned from, or
    /// used as it is): with its `.git`, never shown to package code.
    origin_dir: Option<PathBuf>,
    /// Keeps a clone alive for as long as the checkout is used.
    _clone: Option<tempfile::TempDir>,
}

pub fn is_url(s: &str) -> bool {
    ["https://", "http://", "git://", "ssh://", "file://"]
        .iter()
        .any(|p| s.starts_with(p))
}

impl Checkout {
    /// Directories package code must never see: the checkout and the repository it came
    /// from (their `.git` holds remote URLs, possibly with credentials, and hooks), and the
    /// git directory a worktree's `.git` file points to. Never a system directory.
    pub fn private_paths(&self) -> Vec<PathBuf> {
        private_dirs(std::iter::once(self.dir.clone()).chain(self.origin_dir.clone()))
    }

    /// The package's files, relative to the checkout: for a git checkout what git tracks or
    /// would track (ignored build leftovers are not the package), never fci's own paths.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = if self.dir.join(".git").exists() {
            let out = git_in(
                &self.dir,
                &[
                    "ls-files",
                    "-z",
                    "--cached",
                    "--others",
                    "--exclude-standard",
                ],
            )
            .stdout_capture()
            .unchecked()
            .run()?;
            if !out.status.success() {
                // git refuses some repositories (another owner's, say): then the directory is
                // all there is, as for any directory that is not a checkout.
                return self.plain_files();
            }
            out.stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
                // Deleted but still in the index: not part of what is built.
                .filter(|p| std::fs::symlink_metadata(self.dir.join(p)).is_ok_and(|m| !m.is_dir()))
                .collect()
        } else {
            return self.plain_files();
        };
        files.retain(|f| !self.excluded(&self.dir.join(f)));
        files.sort();
        Ok(files)
    }

    fn plain_files(&self) -> Result<Vec<PathBuf>> {
        let mut files = crate::digest::list_files(&self.dir, &[])?;
        files.retain(|f| !self.excluded(&self.dir.join(f)));
        Ok(files)
    }

    fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|e| p.starts_with(e))
    }
}

pub const GIT: crate::tool::Tool = crate::tool::Tool::new("git", "git");

/// The git directories of the repositories enclosing `dir` (a checkout that is a
/// subdirectory of a larger repository, a worktree): their `.git` holds remote URLs too.
pub fn enclosing_git_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in dir.ancestors() {
        let dotgit = a.join(".git");
        if dotgit.is_dir() {
            out.push(dotgit);
        } else if let Some(text) = gitdir_file(&dotgit) {
            if let Some(g) = text.strip_prefix("gitdir:") {
                if let Ok(g) = a.join(g.trim()).canonicalize() {
                    // A worktree's git dir lives inside the main repository's .git.
                    out.push(
                        g.ancestors()
                            .find(|x| x.file_name().is_some_and(|n| n == ".git"))
                            .map(Path::to_path_buf)
                            .unwrap_or(g),
                    );
                }
            }
        }
    }
    out
}

/// A `.git` file (`gitdir: …`) above a checkout, read only when it is a regular file (not a
/// link, FIFO or device) owned by the caller or root, of 4 KiB at most: another user
/// may have planted one in a shared directory above the checkout (a FIFO would hang fci, a
/// link to /dev/zero would fill its memory).
fn gitdir_file(dotgit: &Path) -> Option<String> {
    use crate::caps::{read_file_with, Open};
    let bytes = read_file_with(dotgit, 4096, Open::OWN_NO_LINK).ok()?;
    String::from_utf8(bytes).ok()
}

/// Directories package code must never see, for the user's checkouts `dirs`: each, and the
/// git directories of the repositories enclosing it; only those a sandbox can hide.
pub fn private_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        out.extend(enclosing_git_dirs(&d));
        out.push(d);
    }
    hideable(out)
}

/// The directories of `paths` a sandbox can hide (cover with an empty directory): absolute,
/// and none that holds a system directory the sandbox needs.
fn hideable(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    const SYSTEM: [&str; 9] = [
        "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/var/lib", "/opt", "/dev",
    ];
    paths.retain(|p| {
        p.is_absolute() && p.is_dir() && !SYSTEM.iter().any(|s| Path::new(s).starts_with(p))
    });
    paths.sort();
    paths.dedup();
    paths
}

/// Resolves `source` at `git_ref` (None: use a local directory as it is, or a URL's HEAD).
/// `exclude` names fci's own paths, which are never part of the package. A clone is bounded
/// by `timeout` (a server that accepts and never answers would hold the stage forever).
pub fn checkout(
    source: &str,
    git_ref: Option<&str>,
    scratch: &Path,
    exclude: Vec<PathBuf>,
    timeout: Option<std::time::Duration>,
    log: &mut Log,
) -> Result<Checkout> {
    if let Some(r) = git_ref {
        if r.starts_with('-') || r.is_empty() || r.contains("..") {
            return Err(FciError::Usage(format!("invalid git ref `{r}`")).into());
        }
    }
    if is_url(source) {
        crate::net::refuse_clear_credentials("dist-git URL", source, false)
            .map_err(FciError::Usage)?;
        return clone(
            source,
            source.to_string(),
            None,
            git_ref,
            scratch,
            timeout,
            log,
        );
    }
    if source.contains("://") {
        return Err(FciError::input(
            source,
            "unsupported URL scheme (use https, http, git, ssh or file)",
        )
        .into());
    }
    let path = Path::new(source);
    if !path.is_dir() {
        return Err(FciError::input(path, "no such dist-git directory").into());
    }
    let canon = path.canonicalize()?;
    let repo = canon.to_string_lossy().into_owned();
    if git_ref.is_some() {
        return clone(source, repo, Some(&canon), git_ref, scratch, timeout, log);
    }
    let (commit, branch) = git_identity(&canon);
    let mut co = Checkout {
        dir: canon,
        repo,
        commit,
        branch,
        dirty: false,
        exclude,
        origin_dir: None,
        _clone: None,
    };
    co.dirty = co.commit.is_some() && is_dirty(&co);
    Ok(co)
}

/// Clones `source` privately and checks out `git_ref`; `local` is the source's directory when
/// it is a repository on this machine (whose remote-tracking branches count too, as in a
/// fedpkg clone).
fn clone(
    source: &str,
    repo: String,
    local: Option<&Path>,
    git_ref: Option<&str>,
    scratch: &Path,
    timeout: Option<std::time::Duration>,
    log: &mut Log,
) -> Result<Checkout> {
    let git = GIT.find()?;
    let tmp = tempfile::Builder::new()
        .prefix("distgit-")
        .tempdir_in(scratch)?;
    let dir = tmp.path().join("repo");
    // Captured, so that what git prints passes through the log's redaction.
    let out = log.capture(
        &Cmd::new(&git)
            .args(["clone", "--quiet", "--no-checkout", "--"])
            .arg(source)
            .arg(&dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            // Killed at the timeout: an error of `capture` (ERROR, naming the timeout).
            .timeout(timeout),
    )?;
    if let Some(f) = out.failure() {
        // A repository that is not there is bad input; a server that cannot be reached is not.
        let missing = local.is_some()
            || source.starts_with("file://")
            || [
                "not found",
                "does not appear to be a git repository",
                "does not exist",
                "Repository not found",
            ]
            .iter()
            .any(|m| out.stderr.contains(m));
        return Err(if missing {
            f.input(source, "git clone failed")
        } else {
            f.infra(format!("{source}: git clone failed"))
        }
        .into());
    }
    let (commit, branch) = resolve_ref(&git, log, &dir, local, git_ref, source)?;
    let commit = commit.ok_or_else(|| FciError::input(source, "the repository has no commits"))?;
    // The clone's config must not keep credentials written into the URL.
    let redacted = crate::redact::redact(source);
    if redacted != source {
        log.run_ok(
            &Cmd::new(&git)
                .arg("-C")
                .arg(&dir)
                .args(["remote", "set-url", "origin"])
                .arg(&redacted),
            "git remote set-url failed (the clone would keep the URL's credentials)",
        )?;
    }
    check_tree_size(&git, log, &dir, &commit, source, timeout)?;
    log.run(
        &Cmd::new(&git)
            .arg("-C")
            .arg(&dir)
            .args(["checkout", "--quiet", "--detach"])
            .arg(&commit)
            .timeout(timeout),
    )?
    .checked()
    .map_err(|f| f.input(source, format!("git checkout of {commit} failed")))?;
    Ok(Checkout {
        dir,
        repo,
        commit: Some(commit),
        branch,
        dirty: false,
        exclude: Vec::new(),
        origin_dir: local.map(Path::to_path_buf).or_else(|| {
            source
                .strip_prefix("file://")
                .map(PathBuf::from)
                .and_then(|p| p.canonicalize().ok())
        }),
        _clone: Some(tmp),
    })
}

/// The commit `rev` names in the repository at `repo_dir`, if it names one.
fn rev_parse(git: &Path, log: &mut Log, repo_dir: &Path, rev: &str) -> Result<Option<String>> {
    let r = log.capture(
        &Cmd::new(git)
            .arg("-C")
            .arg(repo_dir)
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}")),
    )?;
    Ok(r.success().then(|| r.stdout.trim().to_string()))
}

/// The commit `git_ref` names in the fresh clone at `dir` (the remote's default branch's
/// when it is `None`), and the branch it is, if it is one.
fn resolve_ref(
    git: &Path,
    log: &mut Log,
    dir: &Path,
    local: Option<&Path>,
    git_ref: Option<&str>,
    source: &str,
) -> Result<(Option<String>, Option<String>)> {
    Ok(match git_ref {
        None => {
            // The remote's default branch is the one a plain clone builds.
            let head = rev_parse(git, log, dir, "HEAD")?;
            let default = duct::cmd(
                "git",
                [
                    "symbolic-ref",
                    "--quiet",
                    "--short",
                    "refs/remotes/origin/HEAD",
                ],
            )
            .dir(dir)
            .stderr_null()
            .read()
            .ok()
            .map(|b| b.trim().trim_start_matches("origin/").to_string())
            .filter(|b| !b.is_empty());
            (head, default)
        }
        Some(r) => {
            // A branch resolves through a branch ref (the clone's remote-tracking one, or the
            // local source's own branches and remote-tracking branches); a tag or a commit
            // id directly, and is no branch.
            let mut found = None;
            let mut places: Vec<(&Path, String, bool)> =
                vec![(dir, format!("refs/remotes/origin/{r}"), true)];
            if let Some(l) = local {
                places.push((l, format!("refs/heads/{r}"), true));
                places.push((l, format!("refs/remotes/origin/{r}"), true));
                places.push((l, format!("refs/remotes/{r}"), true));
            }
            places.push((dir, r.to_string(), false));
            for (repo_dir, rev, is_branch) in places {
                if let Some(c) = rev_parse(git, log, repo_dir, &rev)? {
                    let name = r.strip_prefix("origin/").unwrap_or(r).to_string();
                    found = Some((Some(c), is_branch.then_some(name)));
                    break;
                }
            }
            found.ok_or_else(|| FciError::input(source, format!("no such git ref `{r}`")))?
        }
    })
}

/// Refuses a tree that would write more than `caps::DIST_GIT_TREE` when checked out, from
/// its listing, before a byte is written.
fn check_tree_size(
    git: &Path,
    log: &mut Log,
    dir: &Path,
    commit: &str,
    source: &str,
    timeout: Option<std::time::Duration>,
) -> Result<()> {
    // What the checkout would write, from the tree's own listing, before a byte is written:
    // a push of a few MB can hold gigabytes of zeros (dist-git keeps sources in the lookaside).
    let listed = log
        .capture(
            &Cmd::new(git)
                .arg("-C")
                .arg(dir)
                .args(["ls-tree", "-r", "-l", "--full-tree", "--end-of-options"])
                .arg(commit)
                .timeout(timeout),
        )?
        .checked()
        .map_err(|f| f.input(source, format!("git ls-tree of {commit} failed")))?;
    let size: u64 = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    if size > crate::caps::DIST_GIT_TREE {
        return Err(FciError::input(
            source,
            format!(
                "the tree of {commit} holds {} of files, more than the {} a dist-git checkout may (sources belong in the lookaside cache)",
                crate::caps::human(size),
                crate::caps::human(crate::caps::DIST_GIT_TREE)
            ),
        )
        .into());
    }
    Ok(())
}

/// HEAD commit and branch of the work tree containing `dir`, if it is one.
/// Whether a checkout has changes (tracked or untracked, not ignored) beyond its HEAD; fci's
/// own paths inside it do not count.
/// Whether the work tree differs from the index or holds untracked files. Done without
/// `git status`, which runs the repository's configured clean filters (`.gitattributes` plus
/// `filter.<x>.clean`: a program of the checkout's choosing, as root): tracked files are
/// hashed with `hash-object --no-filters` and compared with the index, and untracked files
/// come from `ls-files`, neither of which runs filters.
fn is_dirty(co: &Checkout) -> bool {
    let run = |args: &[&str], input: Option<Vec<u8>>| -> Option<Vec<u8>> {
        let mut e = git_in(&co.dir, args).stdout_capture().unchecked();
        if let Some(i) = input {
            e = e.stdin_bytes(i);
        }
        let out = e.run().ok()?;
        out.status.success().then_some(out.stdout)
    };
    // Staged but not committed (index against HEAD: no work-tree file is read).
    if run(&["diff-index", "--cached", "--quiet", "HEAD", "--"], None).is_none() {
        return true;
    }
    let Some(staged) = run(&["ls-files", "-s", "-z"], None) else {
        return true;
    };
    // `MODE SHA STAGE\tPATH`, NUL-separated.
    let entries: Vec<(String, String, String)> = staged
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            let (meta, path) = e.split_once('\t')?;
            let mut m = meta.split(' ');
            Some((
                m.next()?.to_string(),
                m.next()?.to_string(),
                path.to_string(),
            ))
        })
        .collect();
    let mut paths: Vec<&str> = Vec::new();
    for (mode, _, path) in &entries {
        let p = co.dir.join(path);
        if co.excluded(&p) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p);
        let kind_ok = match mode.as_str() {
            "120000" => meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()),
            "160000" => true, // a submodule: its own repository
            _ => meta.as_ref().is_ok_and(|m| m.file_type().is_file()),
        };
        if !kind_ok {
            return true;
        }
        if mode != "120000" && mode != "160000" {
            paths.push(path);
        }
    }
    let input = paths.join("\n").into_bytes();
    let Some(hashes) = run(
        &["hash-object", "--no-filters", "--stdin-paths"],
        Some(input),
    ) else {
        return true;
    };
    let hashes = String::from_utf8_lossy(&hashes);
    let want: Vec<&str> = entries
        .iter()
        .filter(|(m, _, p)| m != "120000" && m != "160000" && !co.excluded(&co.dir.join(p)))
        .map(|(_, h, _)| h.as_str())
        .collect();
    if hashes.lines().ne(want.iter().copied()) {
        return true;
    }
    // Links: their target text, as git stores it.
    for (mode, sha, path) in &entries {
        if mode == "120000" {
            let text = std::fs::read_link(co.dir.join(path)).unwrap_or_default();
            let h = run(
                &["hash-object", "--stdin"],
                Some(text.as_os_str().as_encoded_bytes().to_vec()),
            );
            if h.map(|h| String::from_utf8_lossy(&h).trim().to_string()) != Some(sha.clone()) {
                return true;
            }
        }
    }
    let Some(untracked) = run(&["ls-files", "--others", "--exclude-standard", "-z"], None) else {
        return true;
    };
    untracked
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .any(|e| !co.excluded(&co.dir.join(String::from_utf8_lossy(e).as_ref())))
}

fn git_identity(dir: &Path) -> (Option<String>, Option<String>) {
    // Only a checkout's top level has `.git`; anything else needs no git process at all.
    if !dir.join(".git").exists() {
        return (None, None);
    }
    // One process for all three answers.
    let out = git_in(
        dir,
        &[
            "rev-parse",
            "--show-toplevel",
            "HEAD",
            "--abbrev-ref",
            "HEAD",
        ],
    )
    .stdout_capture()
    .unchecked()
    .run()
    .ok()
    .filter(|o| o.status.success())
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap_or_default();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    match lines.as_slice() {
        [top, commit, branch] if Path::new(top) == dir => (
            Some(commit.to_string()),
            (*branch != "HEAD").then(|| branch.to_string()),
        ),
        _ => (None, None),
    }
}

/// git run in a user's checkout, with its fsmonitor hook (a program the repository's config
/// names) turned off: reading a checkout must not run its code.
fn git_in(dir: &Path, args: &[&str]) -> duct::Expression {
    duct::cmd("git", ["-c", "core.fsmonitor=false"].iter().chain(args))
        .dir(dir)
        .stderr_null()
}

/// The default rawhide release number, for a branch that says only `rawhide`/`main`
/// (`fci build --rawhide-release`, `FCI_RAWHIDE_RELEASE`, moves it when Fedora branches).
pub const RAWHIDE: u32 = 45;

/// The `%{dist}` a Fedora/CentOS dist-git branch builds with; `rawhide` is the release
/// number rawhide currently has.
pub fn dist_for_branch(branch: &str, rawhide: u32) -> Option<String> {
    let num = |s: &str| s.parse::<u32>().ok();
    if let Some(n) = branch.strip_prefix('f').and_then(num) {
        return Some(format!(".fc{n}"));
    }
    if let Some(n) = branch.strip_prefix("epel").and_then(num) {
        return Some(format!(".el{n}"));
    }
    if let Some(n) = branch
        .strip_prefix('c')
        .and_then(|b| b.strip_suffix('s'))
        .and_then(num)
    {
        return Some(format!(".el{n}"));
    }
    if let Some(n) = branch.strip_prefix("el").and_then(num) {
        return Some(format!(".el{n}"));
    }
    match branch {
        "rawhide" | "main" | "master" => Some(format!(".fc{rawhide}")),
        _ => None,
    }
}

/// `.fc41` → (`fedora`, 41), `.el9` → (`rhel`, 9): the macro a dist tag implies.
pub fn release_macro(dist: &str) -> Option<(&'static str, String)> {
    let digits =
        |s: &str| (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())).then(|| s.to_string());
    if let Some(n) = dist.strip_prefix(".fc").and_then(digits) {
        return Some(("fedora", n));
    }
    dist.strip_prefix(".el")
        .and_then(|r| digits(r.split('_').next().unwrap_or(r)))
        .map(|n| ("rhel", n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_tags_follow_fedora_branch_names() {
        assert_eq!(dist_for_branch("f41", RAWHIDE).as_deref(), Some(".fc41"));
        assert_eq!(dist_for_branch("epel9", RAWHIDE).as_deref(), Some(".el9"));
        assert_eq!(dist_for_branch("c10s", RAWHIDE).as_deref(), Some(".el10"));
        assert_eq!(
            dist_for_branch("rawhide", RAWHIDE).as_deref(),
            Some(".fc45")
        );
        assert_eq!(dist_for_branch("feature-x", RAWHIDE), None);
    }
}
