//! Dist-git repositories read in-process with gix: branch heads (loose or packed refs) and the
//! commits a push brought. A `git` process per repository would cost more than the whole
//! poll of a distribution's package set.

use gix::ObjectId;
use std::collections::{HashSet, VecDeque};
use std::path::Path;

/// Commits listed per change at most; a longer range is marked truncated.
const MAX_LISTED: usize = 100;

pub struct Repo(gix::Repository);

#[derive(Default)]
struct Walked {
    listed: Vec<ObjectId>,
    more: bool,
    reached_hidden_tip: bool,
}

/// One commit of a pushed range.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Commit {
    pub id: String,
    pub author: String,
    pub email: String,
    pub summary: String,
    /// Committer time, RFC 3339.
    pub date: String,
}

/// What a push brought: `from` (the head seen before) to `to`, newest commit first.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Range {
    pub from: Option<String>,
    pub to: String,
    pub commits: Vec<Commit>,
    /// The old head is not an ancestor of the new one: the branch was force-pushed.
    pub forced: bool,
    /// More commits than listed.
    pub truncated: bool,
}

impl Repo {
    /// Opens a repository (bare, or a work tree's `.git`), ignoring the host's and user's git
    /// configuration: nothing outside the repository changes what fci reads.
    pub fn open(dir: &Path) -> Result<Repo, String> {
        let git_dir = if dir.join(".git").is_dir() {
            dir.join(".git")
        } else {
            dir.to_path_buf()
        };
        if let Some(why) = unsupported(dir, &git_dir) {
            return Err(why);
        }
        let opts = gix::open::Options::isolated();
        gix::open_opts(dir, opts)
            .map(Repo)
            .map_err(|e| format!("{}: not a git repository: {e}", dir.display()))
    }

    /// The commit `refs/heads/<branch>` points at, if the branch exists.
    pub fn head(&self, branch: &str) -> Result<Option<String>, String> {
        let name = format!("refs/heads/{branch}");
        let found = self
            .0
            .try_find_reference(name.as_str())
            .map_err(|e| format!("{name}: {e}"))?;
        match found {
            None => Ok(None),
            Some(mut r) => r
                .peel_to_id()
                .map(|id| Some(id.detach().to_string()))
                .map_err(|e| format!("{name}: {e}")),
        }
    }

    /// Whether `id` is `head` or one of its ancestors.
    pub fn contains(&self, head: &str, id: &str) -> Result<bool, String> {
        Ok(self.ancestors(parse(head)?)?.contains(&parse(id)?))
    }

    pub fn has_commit(&self, id: &str) -> bool {
        ObjectId::from_hex(id.as_bytes())
            .ok()
            .is_some_and(|id| self.0.find_commit(id).is_ok())
    }

    /// The commits reachable from `to` and not from `from`, newest first (at most
    /// [`MAX_LISTED`]). Without `from` (a head never seen before), just `to`.
    pub fn range(&self, from: Option<&str>, to: &str) -> Result<Range, String> {
        let to_id = parse(to)?;
        self.0
            .find_commit(to_id)
            .map_err(|e| format!("commit {to} is not in the repository: {e}"))?;
        let mut range = Range {
            from: from.map(str::to_string),
            to: to.to_string(),
            commits: Vec::new(),
            forced: false,
            truncated: false,
        };
        let Some(from) = from else {
            range.commits.push(self.describe(to_id)?);
            return Ok(range);
        };
        if from == to {
            return Ok(range);
        }
        // The old head may be gone (rewritten and pruned): then everything from `to` is new.
        let old = parse(from)
            .ok()
            .filter(|id| self.0.find_commit(*id).is_ok());
        let walked = self.walk(to_id, old)?;
        range.truncated = walked.more;
        range.forced = !walked.reached_hidden_tip;
        range.commits = walked
            .listed
            .into_iter()
            .map(|id| self.describe(id))
            .collect::<Result<_, _>>()?;
        // Committer time, newest first (breadth-first order is close, not exact).
        range.commits.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(range)
    }

    /// The commits reachable from `tip` and not from `hidden` (as `git rev-list hidden..tip`),
    /// listing at most [`MAX_LISTED`]. The whole ancestry of `hidden` is painted first:
    /// exact whatever the commit dates (a push's commits often share one second), at the cost
    /// of one walk of the history, only for a branch that moved.
    fn walk(&self, tip: ObjectId, hidden: Option<ObjectId>) -> Result<Walked, String> {
        let painted = match hidden {
            Some(h) => self.ancestors(h)?,
            None => HashSet::new(),
        };
        let mut walked = Walked::default();
        let mut queue = VecDeque::from([tip]);
        let mut visited = HashSet::from([tip]);
        while let Some(id) = queue.pop_front() {
            if painted.contains(&id) {
                // Every path from `tip` down to `hidden` meets the painted part at `hidden`
                // itself (a commit both below and above it is it): so this tells whether
                // `hidden` is an ancestor of `tip`.
                walked.reached_hidden_tip |= Some(id) == hidden;
                continue;
            }
            if walked.listed.len() < MAX_LISTED {
                walked.listed.push(id);
            } else {
                walked.more = true;
            }
            for p in self.parents(id)? {
                if visited.insert(p) {
                    queue.push_back(p);
                }
            }
        }
        Ok(walked)
    }

    fn parents(&self, id: ObjectId) -> Result<Vec<ObjectId>, String> {
        let c = self
            .0
            .find_commit(id)
            .map_err(|e| format!("commit {id}: {e}"))?;
        Ok(c.parent_ids().map(|p| p.detach()).collect())
    }

    /// `id` and all its ancestors.
    fn ancestors(&self, id: ObjectId) -> Result<HashSet<ObjectId>, String> {
        let mut seen = HashSet::from([id]);
        let mut queue = VecDeque::from([id]);
        while let Some(c) = queue.pop_front() {
            for p in self.parents(c)? {
                if seen.insert(p) {
                    queue.push_back(p);
                }
            }
        }
        Ok(seen)
    }

    fn describe(&self, id: ObjectId) -> Result<Commit, String> {
        let c = self
            .0
            .find_commit(id)
            .map_err(|e| format!("commit {id}: {e}"))?;
        let author = c.author().map_err(|e| format!("commit {id}: {e}"))?;
        let time = c.time().map(|t| t.seconds).unwrap_or(0);
        let summary = c
            .message()
            .map(|m| m.summary().to_string())
            .unwrap_or_default();
        Ok(Commit {
            id: id.to_string(),
            author: author.name.to_string(),
            email: author.email.to_string(),
            summary,
            date: chrono::DateTime::from_timestamp(time, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }
}

/// The heads of `branches` in the repository at `dir`, read from its ref files alone (loose
/// or packed) without opening the repository: a poll of thousands of repositories is mostly
/// this. `None` when `dir` is not a plain repository layout (a `.git` file, another hash):
/// then [`Repo::open`] reads it.
pub fn read_heads(dir: &Path, branches: &[String]) -> Option<Vec<(String, Option<String>)>> {
    // A work tree's own `.git` first: its tracked files may include a `HEAD` and `refs/`.
    let git_dir = if dir.join(".git").exists() {
        if !dir.join(".git/HEAD").is_file() {
            return None;
        }
        dir.join(".git")
    } else if dir.join("HEAD").is_file() && dir.join("refs").is_dir() {
        dir.to_path_buf()
    } else {
        return None;
    };
    // Another ref storage or hash: [`Repo::open`] says what it is.
    if unsupported(dir, &git_dir).is_some() {
        return None;
    }
    let store = gix::refs::file::Store::at(git_dir, gix::hash::Kind::Sha1);
    let mut heads = Vec::with_capacity(branches.len());
    for b in branches {
        let name = format!("refs/heads/{b}");
        let found = store.try_find(name.as_str()).ok()?;
        let id = match found.map(|r| r.target) {
            None => None,
            Some(gix::refs::Target::Object(id)) => Some(id.to_string()),
            Some(gix::refs::Target::Symbolic(_)) => return None,
        };
        heads.push((b.clone(), id));
    }
    Some(heads)
}

/// Why fci cannot read the repository at `dir` (its git directory `git_dir`), if it cannot,
/// as a one-line error naming the repository or the file.
fn unsupported(dir: &Path, git_dir: &Path) -> Option<String> {
    if let Some((file, why)) = unreadable(dir, git_dir) {
        // Named, never read: what it leads to is not the repository's (a `packed-refs`
        // linked to /etc/shadow would otherwise reach an error message, line by line).
        return Some(format!("{}: {why}", file.display()));
    }
    if git_dir.join("reftable").exists() {
        Some(format!("{}: reftable ref storage is not supported (git refs migrate --ref-format=files converts it)", dir.display()))
    } else if !plain_format(git_dir) {
        Some(format!(
            "{}: only SHA-1 repositories are supported (this one uses another object format)",
            dir.display()
        ))
    } else {
        None
    }
}

/// The first file fci reads for heads (`HEAD`, `config`, `commondir`, `packed-refs`, the
/// `refs/heads` tree) that it must not read, and why: a symbolic link leading out of the
/// repository at `dir` (named, never read), something other than a regular file (a FIFO would
/// hang the whole poll, a device never end), or a file past its size (a sparse gigabyte
/// `config` would be read whole). Only the file's metadata is looked at.
fn unreadable(dir: &Path, git_dir: &Path) -> Option<(std::path::PathBuf, String)> {
    const SMALL: u64 = 1 << 20; // HEAD, config, commondir: a few lines
    const LOOSE_REF: u64 = 4096; // one id and a newline
    let root = dir.canonicalize().ok()?;
    let out = |p: &Path| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
            && p.canonicalize()
                .map_or(true, |real| !real.starts_with(&root))
    };
    let file = |p: &Path, cap: u64| -> Option<String> {
        if out(p) {
            return Some("a symbolic link out of the repository: not read".into());
        }
        let m = std::fs::metadata(p).ok()?; // absent: nothing to read
        if !m.is_file() {
            return Some("not a regular file: not read".into());
        }
        (m.len() > cap).then(|| {
            format!(
                "larger than the {} limit for it: not read",
                crate::caps::human(cap)
            )
        })
    };
    // A work tree's `.git` file (`gitdir: …`), which gix would read.
    let dotgit = dir.join(".git");
    if !dotgit.is_dir() {
        if let Some(why) = file(&dotgit, LOOSE_REF) {
            return Some((dotgit, why));
        }
    }
    if out(git_dir) {
        return Some((
            git_dir.to_path_buf(),
            "a symbolic link out of the repository: not read".into(),
        ));
    }
    for (f, cap) in [
        ("HEAD", SMALL),
        ("config", SMALL),
        ("commondir", SMALL),
        ("packed-refs", crate::caps::PACKED_REFS),
    ] {
        let p = git_dir.join(f);
        if let Some(why) = file(&p, cap) {
            return Some((p, why));
        }
    }
    if out(&git_dir.join("refs")) {
        return Some((
            git_dir.join("refs"),
            "a symbolic link out of the repository: not read".into(),
        ));
    }
    // The branches' loose refs (the directory entries say which are links and which are not
    // regular files: no stat for the plain ones but their size).
    let mut dirs = vec![git_dir.join("refs/heads")];
    while let Some(d) = dirs.pop() {
        if out(&d) {
            return Some((d, "a symbolic link out of the repository: not read".into()));
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(p),
                Ok(_) => {
                    if let Some(why) = file(&p, LOOSE_REF) {
                        return Some((p, why));
                    }
                }
                Err(_) => {}
            }
        }
    }
    None
}

/// Whether the repository uses SHA-1 objects and files refs (no `extensions.objectFormat` or
/// `extensions.refStorage` other than the defaults).
fn plain_format(git_dir: &Path) -> bool {
    let Ok(config) = std::fs::read_to_string(git_dir.join("config")) else {
        return true;
    };
    !config.lines().any(|l| {
        let l = l.trim().to_ascii_lowercase().replace(' ', "");
        (l.starts_with("objectformat=") && l != "objectformat=sha1")
            || (l.starts_with("refstorage=") && l != "refstorage=files")
    })
}

fn parse(hex: &str) -> Result<ObjectId, String> {
    ObjectId::from_hex(hex.as_bytes()).map_err(|_| format!("`{hex}` is not a commit id"))
}

/// A full commit id as git prints it (SHA-1 or SHA-256, lower-case hex).
pub fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
