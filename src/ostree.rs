//! An OSTree repository in the workspace (or shared), through the `ostree` command: the
//! known-good base per branch, composed commits, checkouts and diffs.

use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub const OSTREE: Tool = Tool::new("ostree", "ostree");

/// The ref of a branch's known-good base; only gating (a later stage) moves it.
pub fn known_good_ref(branch: &str) -> String {
    format!("fci/{branch}/known-good")
}

/// A branch name usable inside a ref (`f41`, `epel9`, `rawhide`).
pub fn check_branch(branch: &str) -> Result<(), FciError> {
    let ok = !branch.is_empty()
        && !branch.starts_with(['-', '.'])
        && !branch.contains("..")
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(FciError::Usage(format!(
            "`{branch}` is not a branch name fci can put in an OSTree ref"
        )))
    }
}

/// A ref name ostree accepts and fci can pass as one argument: `fci/f41/candidate/<id>`.
pub fn is_ref(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with(['-', '.'])
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
        })
}

pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    /// The repository at `path`, made (`bare-user`, which hard-link checkouts need) when absent.
    pub fn open_or_init(path: &Path, log: &mut Log) -> Result<Repo> {
        if !path.join("config").is_file() {
            std::fs::create_dir_all(path)?;
            log.run_ok(
                &Cmd::new("ostree")
                    .arg("init")
                    .arg(format!("--repo={}", path.display()))
                    .arg("--mode=bare-user"),
                format!("ostree init failed for {}", path.display()),
            )?;
        }
        Repo::open(path)
    }

    /// An existing repository, or bad input naming it.
    pub fn open(path: &Path) -> Result<Repo> {
        if !path.join("config").is_file() || !path.join("objects").is_dir() {
            return Err(
                FciError::input(path, "not an OSTree repository (no config or objects)").into(),
            );
        }
        Ok(Repo {
            path: path.to_path_buf(),
        })
    }

    fn cmd(&self, verb: &str) -> Cmd {
        Cmd::new("ostree")
            .arg(verb)
            .arg(format!("--repo={}", self.path.display()))
    }

    /// The commit a ref or checksum names, if any.
    pub fn rev_parse(&self, rev: &str, log: &mut Log) -> Result<Option<String>> {
        // A local ref is a file holding its checksum: read it rather than start a process
        // (it sits on the compose's critical path). Anything else goes to ostree.
        if !rev
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            let file = self.path.join("refs/heads").join(rev);
            if let Ok(text) = std::fs::read_to_string(&file) {
                let c = text.trim();
                if is_checksum(c) && std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
                    return Ok(Some(c.to_string()));
                }
            }
        }
        let out = log.capture(&self.cmd("rev-parse").arg("--").arg(rev))?;
        let c = out.stdout.trim();
        Ok((out.success() && is_checksum(c)).then(|| c.to_string()))
    }

    /// Whether the repository holds the commit object `checksum`.
    pub fn has_commit(&self, checksum: &str) -> bool {
        is_checksum(checksum)
            && self
                .path
                .join("objects")
                .join(&checksum[..2])
                .join(format!("{}.commit", &checksum[2..]))
                .is_file()
    }

    /// Checks `commit` out into `dest` as hard links into the repository (fast, and nothing
    /// copied): never edit a file of it in place.
    /// Where the kernel would refuse the links (see `links_refused`), copies instead.
    pub fn checkout(&self, commit: &str, dest: &Path, log: &mut Log) -> Result<()> {
        if self.links_refused() {
            return self.checkout_copy(commit, dest, log);
        }
        let cmd = self.cmd("checkout").args(["-U", "-H", "--"]);
        log.run_ok(
            &cmd.arg(commit).arg(dest),
            format!("ostree checkout of {commit} failed"),
        )?;
        Ok(())
    }

    /// Whether hard links to this repository's objects may be refused to this process: not
    /// root, and objects other users write (another user's repository, or a pipeline state
    /// shared by the workers' group: a set-group-ID directory, as examples/buildbot/start.sh
    /// makes it). With `fs.protected_hardlinks` (Debian's and Fedora's default) the kernel
    /// lets nobody link a file they neither own nor may write, and every worker user's
    /// objects are read-only to the others. A user's own group-writable repository (umask
    /// 002) keeps its links.
    fn links_refused(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        if crate::users::is_root() {
            return false;
        }
        std::fs::metadata(self.path.join("objects"))
            .is_ok_and(|m| m.uid() != crate::users::euid() || m.mode() & 0o2000 != 0)
    }

    /// `checkout`, with every file a copy of its object (or a reflink), never a hard link: for
    /// a tree that code fci does not control writes into (the change's scriptlets), where a
    /// write in place into a hard link would change the repository's object.
    ///
    /// As root, in ostree's plain mode (no `-U`): each file gets the owner and group its
    /// object records, so that what the tree's scriptlets leave (and `commit` keeps) is the
    /// base's ownership, not root's everywhere.
    pub fn checkout_copy(&self, commit: &str, dest: &Path, log: &mut Log) -> Result<()> {
        let mut cmd = self.cmd("checkout");
        if !crate::users::is_root() {
            cmd = cmd.arg("-U");
        }
        let cmd = cmd.args(["--force-copy", "--"]);
        log.run_ok(
            &cmd.arg(commit).arg(dest),
            format!("ostree checkout of {commit} failed"),
        )?;
        Ok(())
    }

    /// The directories and links of `commit` (and files below `usr/etc`) whose owner or group
    /// is not root's (`ostree ls -R`), and whether any of them carries extended attributes. A hard-link checkout (`-U -H`) makes
    /// every directory root's, without xattrs; a commit that keeps real owners
    /// (`commit`) would record that as a change of each.
    pub fn dir_owners(&self, commit: &str, log: &mut Log) -> Result<DirOwners> {
        let out = log.capture_ok(
            &self.cmd("ls").args(["-R", "-X", "--", commit]),
            "ostree ls of the base commit failed",
        )?;
        Ok(parse_dir_owners(&out.stdout))
    }

    /// Whether `commit` has `path` (`ostree ls -d`): false when ostree says there is no such
    /// file; any other failure of ostree is the host's error.
    pub fn has_path(&self, commit: &str, path: &str, log: &mut Log) -> Result<bool> {
        let out = log.capture(&self.cmd("ls").args(["-d", "--", commit, path]).c_locale())?;
        match out.failure() {
            None => Ok(true),
            Some(_) if out.stderr.contains("No such file or directory") => Ok(false),
            Some(f) => Err(f
                .infra(format!("ostree ls of {path} in {commit} failed"))
                .into()),
        }
    }

    /// A copy of the directory `subpath` of `commit` at `dest`: what a query of it may write
    /// (sqlite's files) never reaches the repository's objects.
    pub fn checkout_subpath_copy(
        &self,
        commit: &str,
        subpath: &str,
        dest: &Path,
        log: &mut Log,
    ) -> Result<()> {
        let cmd = self
            .cmd("checkout")
            .arg(format!("--subpath={subpath}"))
            .args(["-U", "--force-copy", "--"]);
        log.run_ok(
            &cmd.arg(commit).arg(dest),
            format!("ostree checkout of {subpath} of {commit} failed"),
        )?;
        Ok(())
    }

    /// Commits `tree` onto `branch` (with `parent`, a checksum) and returns the new checksum.
    /// `branch` None makes an orphan commit (no ref), for a ref set only once it is checked.
    pub fn commit(
        &self,
        tree: &Path,
        branch: Option<&str>,
        parent: Option<&str>,
        subject: &str,
        metadata: &[(String, String)],
        log: &mut Log,
    ) -> Result<String> {
        let mut c = self
            .cmd("commit")
            .arg(match branch {
                Some(b) => format!("--branch={b}"),
                None => "--orphan".into(),
            })
            .arg(format!("--subject={subject}"));
        // As root, the tree's owners are real: what rpm set from a package's %attr(-,user,
        // group), what a scriptlet chowned, the base's own (a hard link's from its object
        // through --link-checkout-speedup, a copy's from `checkout_copy`). Without root every
        // file is the caller's, which means nothing in the OS: root's.
        if !crate::users::is_root() {
            c = c.args(["--owner-uid=0", "--owner-gid=0"]);
        }
        if let Some(p) = parent {
            // A hard-link checkout of a bare-user repository: without this, the ownership
            // xattrs leak into the new commit and unchanged files show as changed.
            c = c
                .arg(format!("--parent={p}"))
                .arg("--link-checkout-speedup");
        }
        for (k, v) in metadata {
            c = c.arg(format!("--add-metadata-string={k}={v}"));
        }
        let c = c.arg(format!("--tree=dir={}", tree.display()));
        let out = log.capture_ok(&c, "ostree commit failed")?;
        let sum = out.stdout.trim().to_string();
        if !is_checksum(&sum) {
            return Err(
                FciError::Infra(format!("ostree commit printed no checksum: {sum:?}")).into(),
            );
        }
        Ok(sum)
    }

    /// Points the ref `name` at `commit`, made or moved (its caller holds the ref's lock: a
    /// branch's known-good, or a run's candidate, which a rerun of the same run's compose
    /// moves to its new commit). An error carries ostree's own reason.
    pub fn set_ref(&self, name: &str, commit: &str, log: &mut Log) -> Result<()> {
        let create = format!("--create={name}");
        log.capture_ok(
            &self.cmd("refs").args(["--force", &create, "--", commit]),
            format!("ostree refs --force {create} {commit} failed"),
        )?;
        Ok(())
    }

    /// `ostree diff`: one `A|M|D path` line per changed path.
    pub fn diff(&self, from: &str, to: &str, log: &mut Log) -> Result<Vec<String>> {
        let out = log.capture_ok(
            &self.cmd("diff").args(["--", from, to]),
            format!("ostree diff {from} {to} failed"),
        )?;
        Ok(out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect())
    }
}

/// What a commit says of itself: its parent and the string values of its metadata keys.
#[derive(Debug, Default)]
pub struct CommitInfo {
    pub parent: Option<String>,
    /// Each asked key's value; None when the commit has no such key (or a value that is not
    /// a plain string).
    pub metadata: std::collections::BTreeMap<String, Option<String>>,
}

impl Repo {
    /// The parent of `commit` and the values of its metadata `keys`, from the commit object.
    pub fn commit_info(&self, commit: &str, keys: &[&str], log: &mut Log) -> Result<CommitInfo> {
        let out = log.capture_ok(
            &self.cmd("show").args(["--", commit]),
            format!("ostree show {commit} failed"),
        )?;
        let parent = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Parent:"))
            .map(|p| p.trim().to_string())
            .filter(|p| is_checksum(p));
        let mut metadata = std::collections::BTreeMap::new();
        for key in keys {
            let out = log.capture(
                &self
                    .cmd("show")
                    .arg(format!("--print-metadata-key={key}"))
                    .arg("--")
                    .arg(commit),
            )?;
            let value = match out.checked() {
                Ok(out) => gvariant_string(out.stdout.trim_end_matches('\n')),
                Err(f) if f.tail.contains("No such metadata key") => None,
                Err(f) => {
                    let what = format!("ostree show --print-metadata-key={key} {commit} failed");
                    return Err(f.infra(what).into());
                }
            };
            metadata.insert(key.to_string(), value);
        }
        Ok(CommitInfo { parent, metadata })
    }
}

/// A GVariant string as `g_variant_print` writes it (`'text'`, or `"text"` when it holds a
/// single quote, with backslash escapes); None for anything else.
pub fn gvariant_string(printed: &str) -> Option<String> {
    let quote = printed.chars().next().filter(|q| matches!(q, '\'' | '"'))?;
    let inner = printed.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars, n: usize| -> Option<char> {
            let digits: String = chars.by_ref().take(n).collect();
            (digits.len() == n)
                .then(|| u32::from_str_radix(&digits, 16).ok())
                .flatten()
                .and_then(char::from_u32)
        };
        out.push(match chars.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            e @ ('\\' | '\'' | '"') => e,
            _ => return None,
        });
    }
    Some(out)
}

pub fn is_checksum(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// What `Repo::dir_owners` found.
#[derive(Debug, Default, PartialEq)]
pub struct DirOwners {
    /// (path in the tree, no leading `/`; kind `d` or `l`; mode; uid; gid) of each directory
    /// and link not root:root: what a hard-link checkout makes anew as root's.
    pub not_root: Vec<(String, char, u32, u32, u32)>,
    /// Whether any directory, link or file below `usr/etc` has extended attributes.
    pub xattrs: bool,
    /// Every file below `usr/etc` (path, mode, uid, gid), root's too: fci copies them after a
    /// hard-link checkout, and a copy takes the object's owner on disk, which in a bare-user
    /// repository is not the file's (its group is the set-group-ID state's, say).
    pub etc_files: Vec<(String, u32, u32, u32)>,
}

/// `ostree ls -R -X` lines: `d02755 0 5      0 { @a(ayay) [] } /usr/share/d` (kind and mode,
/// uid, gid, size, the xattrs as a GVariant, the path; a link's ends ` -> TARGET`).
fn parse_dir_owners(out: &str) -> DirOwners {
    let mut found = DirOwners::default();
    for line in out.lines() {
        let Some(kind) = line.chars().next() else {
            continue;
        };
        let rest = &line[kind.len_utf8()..];
        let mut words = rest.split_whitespace();
        let (Some(mode), Some(uid), Some(gid)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let Some((xattrs, path)) = rest
            .split_once(" } ")
            .and_then(|(head, path)| head.split_once("{ ").map(|(_, x)| (x.trim(), path)))
        else {
            continue;
        };
        let path = if kind == 'l' {
            path.split_once(" -> ").map_or(path, |(p, _)| p)
        } else {
            path
        };
        let rel = path.trim_start_matches('/');
        let in_etc = rel.starts_with("usr/etc/");
        if !(kind == 'd' || kind == 'l' || (kind == '-' && in_etc)) {
            continue;
        }
        if xattrs != "@a(ayay) []" {
            found.xattrs = true;
        }
        let (Ok(mode), Ok(uid), Ok(gid)) = (
            u32::from_str_radix(mode, 8),
            uid.parse::<u32>(),
            gid.parse::<u32>(),
        ) else {
            continue;
        };
        if kind == '-' {
            found.etc_files.push((rel.to_string(), mode, uid, gid));
        } else if uid != 0 || gid != 0 {
            found.not_root.push((rel.to_string(), kind, mode, uid, gid));
        }
    }
    found
}

#[cfg(test)]
mod tests {

    #[test]
    fn directories_not_roots_and_xattrs_are_read_from_ostree_ls() {
        let out = "d00755 0 0      0 { @a(ayay) [] } /\n\
                   d00755 0 0      0 { [(b'user.label', [byte 0x78])] } /usr/share\n\
                   -00644 0 7      2 { @a(ayay) [] } /usr/share/a\n\
                   d02755 0 5      0 { @a(ayay) [] } /usr/share/my dir\n";
        let found = super::parse_dir_owners(out);
        assert!(found.xattrs);
        assert_eq!(
            found.not_root,
            vec![("usr/share/my dir".to_string(), 'd', 0o2755, 0, 5)]
        );
        let out = "l00777 1 1      0 { @a(ayay) [] } /usr/bin/lnk -> busybox\n\
                   -00640 0 4      9 { @a(ayay) [] } /usr/etc/shadow-ish\n\
                   -00640 0 4      9 { @a(ayay) [] } /usr/bin/not-in-etc\n";
        let found = super::parse_dir_owners(out);
        assert!(!found.xattrs);
        assert_eq!(
            found.not_root,
            vec![("usr/bin/lnk".to_string(), 'l', 0o777, 1, 1)]
        );
        assert_eq!(
            found.etc_files,
            vec![("usr/etc/shadow-ish".to_string(), 0o640, 0, 4)]
        );
    }

    use super::gvariant_string;

    /// Every failed ostree command's error carries ostree's own reason, never only "failed".
    #[test]
    fn ostree_failures_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = crate::exec::Log::create(&dir.path().join("log")).unwrap();
        let repo = super::Repo::open_or_init(&dir.path().join("repo"), &mut log).unwrap();
        let missing = "0".repeat(64);
        let msg = |e: anyhow::Error| crate::error::one_line(&e);
        let e = msg(repo
            .checkout(&missing, &dir.path().join("co"), &mut log)
            .unwrap_err());
        assert!(
            e.starts_with(&format!("ostree checkout of {missing} failed: ")),
            "{e}"
        );
        assert!(
            !e.ends_with("no reason given") && e.contains(&missing[..8]),
            "{e}"
        );
        let e = msg(repo.diff(&missing, &missing, &mut log).unwrap_err());
        assert!(
            e.contains("failed: ") && !e.ends_with("no reason given"),
            "{e}"
        );
        let e = msg(repo.set_ref("bad ref", &missing, &mut log).unwrap_err());
        assert!(
            e.contains("error: Invalid refspec bad ref (ostree exited 1)"),
            "{e}"
        );
        assert!(
            e.contains("failed: ") && !e.ends_with("no reason given"),
            "{e}"
        );
    }

    #[test]
    fn printed_gvariant_strings_are_read_back() {
        assert_eq!(
            gvariant_string("'hello-atomic'").as_deref(),
            Some("hello-atomic")
        );
        assert_eq!(
            gvariant_string(r#""it's \"x\"""#).as_deref(),
            Some("it's \"x\"")
        );
        assert_eq!(gvariant_string(r"'a\nb\u00e9'").as_deref(), Some("a\nbé"));
        assert_eq!(gvariant_string("''").as_deref(), Some(""));
        for bad in ["", "'", "plain", "'a'b'", "<'x'>", "'\\q'", "@as []"] {
            assert_eq!(gvariant_string(bad), None, "{bad}");
        }
    }
}
