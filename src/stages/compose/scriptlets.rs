//! The change's scriptlets, run as rpm-ostree runs them: rpm installs the payload with
//! `--noscripts`, then each package's `%pre`, `%post` and `%posttrans` (all `%pre` first, then
//! all `%post`, then all `%posttrans`, in the order the packages were given) run in a bwrap
//! sandbox whose `/` is the new tree (`crate::sandbox::rooted_in`: `usr/etc` as `/etc`, tmpfs
//! `/tmp`, `/var`, `/run`, no network), with `$1` = 1 for an install and 2 for an update of a
//! base package of the same name.
//!
//! Then the change's `%transfiletriggerin`, as rpm-ostree runs them (`filetriggers`).
//!
//! Not run, and said so (`not_run`): classic triggers (rpm-ostree refuses a package with a
//! `%triggerin`), `%filetriggerin` (rpm-ostree ignores them), `%transfiletriggerun` and
//! `%transfiletriggerpostun` (nothing is erased), the base's triggers of every kind (rpm-ostree
//! runs the base's `%transfiletriggerin` too: fci not yet), and `%pretrans`. The
//! `%preun`/`%postun` of an updated base package are not run either (a new tree is made, no
//! package is erased from a running system), as in rpm-ostree. The loader cache, which
//! Fedora's glibc rebuilds from a file trigger, is rebuilt by `rebuild_loader_cache` instead.
//! A Lua scriptlet (`-p <lua>`) runs only inside rpm: the change's failure, as in rpm-ostree.

use super::headers::header;
pub use super::headers::{Scriptlet, Source};
use crate::error::FciError;
use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The phases fci runs, in order: the rpm tag of the body, of the interpreter, and the name
/// a maintainer knows it by.
const PHASES: [(&str, &str, &str); 3] = [
    ("PREIN", "PREINPROG", "%pre"),
    ("POSTIN", "POSTINPROG", "%post"),
    ("POSTTRANS", "POSTTRANSPROG", "%posttrans"),
];

/// Where the script body is bound inside the sandbox (below its tmpfs /run).
const SCRIPT_INSIDE: &str = "/run/fci-scriptlet";
/// Where a file trigger's list of files is bound, read-only, in its sandbox.
const FILES_INSIDE: &str = "/run/fci-filetrigger.list";

/// What the change's packages would have rpm run.
#[derive(Debug, Default)]
pub struct Found {
    pub scriptlets: Vec<Scriptlet>,
    /// Triggers and file triggers fci does not run, as `PACKAGE: KIND`.
    pub not_run: Vec<String>,
}

/// The query of one package's scriptlets: its name, then per phase a line `1` or `0` (a
/// body or not) and a line of its interpreter's words, tab-separated; then the kinds of its
/// triggers and file triggers.
fn query_format() -> String {
    let mut q = String::from("%{NAME}\n");
    for (body, prog, _) in PHASES {
        q.push_str(&format!("%|{body}?{{1}}:{{0}}|\n[%{{{prog}}}\t]\n"));
    }
    q.push_str("[%{TRIGGERTYPE} ]\n[%{FILETRIGGERTYPE} ]\n[%{TRANSFILETRIGGERTYPE} ]\n");
    // %pretrans: not run either (it would run before anything is installed, where there is
    // no tree of the change's yet), but never passed over in silence.
    q.push_str("%|PRETRANS?{1}:{0}|%|PRETRANSPROG?{1}:{0}|\n");
    q
}

/// The scriptlets of `rpms` from their headers (`rpm -qp`), and what of them fci does not
/// run; `Ok(Err(why))` is the change's failure.
pub fn query(rpms: &[PathBuf], log: &mut Log) -> Result<std::result::Result<Found, String>> {
    let mut found = Found::default();
    let qf = query_format();
    for rpm in rpms {
        let out = match header(Source::File(rpm), &qf, log)? {
            Ok(o) => o,
            Err(why) => return Ok(Err(why)),
        };
        let lines: Vec<&str> = out.split('\n').collect();
        let at = |i: usize| lines.get(i).copied().unwrap_or("");
        let package = at(0).to_string();
        for (i, (body_tag, _, phase)) in PHASES.iter().enumerate() {
            let has_body = at(1 + 2 * i) == "1";
            let prog: Vec<String> = at(2 + 2 * i)
                .split('\t')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect();
            if !has_body && prog.is_empty() {
                continue;
            }
            let body = if has_body {
                match header(Source::File(rpm), &format!("%{{{body_tag}}}"), log)? {
                    Ok(b) => Some(b),
                    Err(why) => return Ok(Err(why)),
                }
            } else {
                None
            };
            found.scriptlets.push(Scriptlet {
                package: package.clone(),
                phase,
                // rpm's default interpreter for a scriptlet with a body and none named.
                prog: if prog.is_empty() {
                    vec!["/bin/sh".into()]
                } else {
                    prog
                },
                body,
                prefixes: Vec::new(),
                priority: 0,
                from_base: None,
            });
        }
        for (i, kind) in super::headers::TRIGGER_KINDS.iter().enumerate().take(2) {
            if !at(7 + i).trim().is_empty() {
                found.not_run.push(format!("{package}: {kind}s"));
            }
        }
        // Transaction file triggers: `in` ones are run (`filetriggers`), the others named.
        let mut types: Vec<&str> = at(9).split_whitespace().collect();
        types.sort();
        types.dedup();
        for t in types {
            if t != "in" {
                found
                    .not_run
                    .push(format!("{package}: %transfiletrigger{t}"));
                continue;
            }
            match super::filetriggers::query(Source::File(rpm), &package, log)? {
                Ok(t) => {
                    found.scriptlets.extend(t.run);
                    found.not_run.extend(t.not_run);
                }
                Err(why) => return Ok(Err(why)),
            }
        }
        if at(10).contains('1') {
            found.not_run.push(format!("{package}: %pretrans"));
        }
    }
    sort(&mut found.scriptlets);
    Ok(Ok(found))
}

/// %pre of every package, then %post, then %posttrans, then the file triggers, as rpm-ostree
/// runs them; file triggers of a higher priority first, as rpm runs them, the change's and
/// the base's alike (the sort is stable: the packages' order otherwise).
pub fn sort(scriptlets: &mut [Scriptlet]) {
    scriptlets.sort_by_key(|s| {
        (
            PHASES
                .iter()
                .position(|p| p.2 == s.phase)
                .unwrap_or(PHASES.len()),
            std::cmp::Reverse(s.priority),
        )
    });
}

/// How one scriptlet ended, when it did not succeed: the change's failure (FAILED, with
/// what it said). A scriptlet killed at the time limit is an error (`Err`), never this.
pub struct Refused(pub String);

/// What a scriptlet is given: rpm's `$1` (to a script), or, for a file trigger, the list of
/// its files on stdin and no `$1` (as rpm-ostree runs it).
#[derive(Clone, Copy)]
pub enum Given<'a> {
    Arg(u32),
    Files(&'a Path),
}

/// Runs `s` in the sandbox rooted in `tree`, with what it is `given`. In a tree with an
/// ld.so.conf the sandbox has started before (`rebuild_loader_cache` runs in the same one,
/// and its failure is the host's): bwrap failing here is taken for the scriptlet's failure,
/// since what the scriptlet prints cannot be told from what bwrap prints. `scratch` is where the body
/// is written on the host (bound read-only into the sandbox).
pub fn run(
    s: &Scriptlet,
    given: Given,
    tree: &Path,
    scratch: &Path,
    limits: crate::limits::Limits,
    timeout: Option<std::time::Duration>,
    log: &mut Log,
) -> Result<Option<Refused>> {
    if s.prog.first().is_some_and(|p| p == "<lua>") {
        return Ok(Some(Refused(format!(
            "{} of {} is a Lua scriptlet, which only rpm itself can run (rpm-ostree refuses them too)",
            s.phase, s.package
        ))));
    }
    // bwrap resolves `usr/etc` on the host to bind it as /etc: an earlier scriptlet may have
    // swapped it for a link to a host directory.
    if !crate::files::real_dir_below(tree, &tree.join("usr/etc")) {
        return Ok(Some(Refused(format!(
            "before {} of {}: /usr/etc is no longer a real directory of the tree (a scriptlet replaced it)",
            s.phase, s.package
        ))));
    }
    // The rpm database on a read-only mount (`rpmdb::DbSeal` says why); resolved on the host
    // by bwrap like usr/etc, so it must still be the tree's own directory.
    let db = tree.join(&super::rpmdb::DBPATH[1..]);
    if !crate::files::real_dir_below(tree, &db) {
        return Ok(Some(Refused(format!(
            "before {} of {}: {} is no longer a real directory of the tree (a scriptlet replaced it)",
            s.phase,
            s.package,
            super::rpmdb::DBPATH
        ))));
    }
    let mut files = vec![(db, PathBuf::from(super::rpmdb::DBPATH))];
    let mut inner = Cmd::new(&s.prog[0]).args(&s.prog[1..]);
    if let Some(body) = &s.body {
        let host = scratch.join(format!(
            "scriptlet-{}-{}",
            crate::files::plain_name(&s.package),
            s.phase.trim_start_matches('%')
        ));
        std::fs::write(&host, body)?;
        files.push((host, PathBuf::from(SCRIPT_INSIDE)));
        // rpm gives $1 to a script only: a `-p PROGRAM` scriptlet runs with no argument
        // (`%post -p /sbin/ldconfig` would take it for a directory).
        inner = inner.arg(SCRIPT_INSIDE);
        if let Given::Arg(arg) = given {
            inner = inner.arg(arg.to_string());
        }
    }
    // bwrap makes the mount point /etc inside the tree when there is none (a base with no
    // usr/etc is refused before): made and removed here, so that no empty /etc is committed.
    let etc = tree.join("etc");
    let made_etc = std::fs::symlink_metadata(&etc).is_err();
    if made_etc {
        std::fs::create_dir(&etc)?;
    }
    // A file trigger's list reaches it from a read-only mount, opened by the tree's shell: as
    // a file of fci's opened on its stdin, it could be reopened for writing through
    // /proc/self/fd/0 (uid 0 owns it), outside the tree and its scratch limit.
    if let Given::Files(list) = given {
        files.push((list.to_path_buf(), PathBuf::from(FILES_INSIDE)));
        inner = Cmd::new("/bin/sh")
            .args([
                "-c",
                &format!("exec \"$@\" < {FILES_INSIDE}"),
                "fci-filetrigger",
            ])
            .arg(&inner.program)
            .args(&inner.args);
    }
    let mut cmd = crate::sandbox::rooted_in(tree, true, &files, limits, &inner)?.timeout(timeout);
    // What a timeout's message names: the scriptlet, not its interpreter.
    cmd.name = Some(format!("{} of {} ({})", s.phase, s.package, s.prog[0]));
    log.line(&format!(
        "fci compose: {} of {}{} in the new tree",
        s.phase,
        s.package,
        match given {
            Given::Arg(a) => format!(" ($1 = {a})"),
            Given::Files(_) => " (its files on stdin)".to_string(),
        }
    ));
    let done = log.capture(&cmd);
    if made_etc {
        let _ = std::fs::remove_dir(&etc);
    }
    // Cut at the time limit: `capture` says so as an error (ERROR, the run's bound).
    let done = done?;
    let Some(f) = done.failure() else {
        return Ok(None);
    };
    // What it printed goes into the record: masked like every command's stderr.
    let stdout = crate::redact::mask_registered(&done.stdout);
    let said = [stdout.trim(), done.tail.trim()]
        .iter()
        .filter(|t| !t.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let said = crate::exec::last_lines(&said, 10);
    Ok(Some(Refused(format!(
        "{} of {} {}{}",
        s.phase,
        s.package,
        f.ending,
        if said.trim().is_empty() {
            " (it printed nothing)".to_string()
        } else {
            format!(": {}", said.trim())
        }
    ))))
}

/// Rebuilds the tree's loader cache (`usr/etc/ld.so.cache`, where a deployment's /etc has it)
/// from its `ld.so.conf`, as Fedora's glibc file trigger does after an install: a library the
/// change puts in /usr/lib64 is found at boot. ldconfig reads the change's files: it runs in
/// the same sandbox as the scriptlets (but with /usr read-only: without scriptlets the
/// checkout is hard links), the host's (static) ldconfig bound into it. No links
/// are made (`-X`): the packages ship their own. `Ok(Ok(false))`: the tree has no ld.so.conf; `Ok(Err(why))`: the change's failure.
pub fn rebuild_loader_cache(
    tree: &Path,
    limits: crate::limits::Limits,
    timeout: Option<std::time::Duration>,
    log: &mut Log,
) -> Result<std::result::Result<bool, String>> {
    let etc = tree.join("usr/etc");
    if !crate::files::real_dir_below(tree, &etc) {
        return Err(FciError::input(tree, "usr/etc is not a real directory of the tree").into());
    }
    let conf = std::fs::symlink_metadata(etc.join("ld.so.conf"));
    if !conf.is_ok_and(|m| m.is_file()) {
        return Ok(Ok(false));
    }
    let ldconfig = crate::tool::LDCONFIG.find()?;
    // ldconfig writes a new file and renames it over the old one; the old one is unlinked
    // first all the same: it is a hard link to a repository object in the checkout.
    // So is ldconfig's temporary file, which it opens and writes without replacing it: left
    // in a base (a scriptlet made one), it would be a repository object written in place.
    for name in ["ld.so.cache", "ld.so.cache~"] {
        let f = tree.join("usr/etc").join(name);
        if std::fs::symlink_metadata(&f).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&f)?;
        }
    }
    let inside = PathBuf::from("/run/fci-ldconfig");
    let inner = Cmd::new(&inside).args(["-X", "-f", "/etc/ld.so.conf", "-C", "/etc/ld.so.cache"]);
    let etc = tree.join("etc");
    let made_etc = std::fs::symlink_metadata(&etc).is_err();
    if made_etc {
        std::fs::create_dir(&etc)?;
    }
    let cmd = crate::sandbox::rooted_in(tree, false, &[(ldconfig, inside)], limits, &inner)?
        .timeout(timeout);
    let done = log.capture(&cmd);
    if made_etc {
        let _ = std::fs::remove_dir(&etc);
    }
    let done = done?;
    if let Some(f) = done.failure() {
        // Killed at the timeout, or not starting, is the host's; ldconfig refusing the tree
        // (the base's cache was built by the same ldconfig) is what the change put in its
        // way (a directory at /etc/ld.so.cache~, a library it cannot read).
        if done.timed_out || done.code.is_none() {
            return Err(f
                .infra("ldconfig could not rebuild the composed tree's loader cache")
                .into());
        }
        return Ok(Err(format!(
            "ldconfig could not rebuild the composed tree's loader cache after the change was installed: {}",
            done.tail.trim()
        )));
    }
    Ok(Ok(true))
}

/// What scriptlets may have left in `tree` that fci must not commit or follow: files OSTree
/// cannot hold (a FIFO, a socket), and an rpm database that is no longer plain files in a
/// real directory (fci's rpm reads it by its host path: a link would lead it out of the tree).
/// As `PATH (what)`; empty when the tree is fine.
pub fn left_behind(tree: &Path, dbpath: &str) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    for e in walkdir::WalkDir::new(tree)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let t = e.file_type();
        // OSTree commits only UTF-8 names and link targets ("Invalid UTF-8 in filename"):
        // what a scriptlet made so is its doing, not the host's.
        let target_ok =
            !t.is_symlink() || std::fs::read_link(e.path()).is_ok_and(|l| l.to_str().is_some());
        let what = if e.file_name().to_str().is_none() {
            "a name that is not UTF-8, which OSTree cannot commit"
        } else if !target_ok {
            "a link whose target is not UTF-8, which OSTree cannot commit"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device node"
        } else {
            continue;
        };
        let rel = e.path().strip_prefix(tree).unwrap_or(e.path());
        // Shown lossily (U+FFFD for what is not UTF-8): the record is JSON.
        found.push(format!("/{} ({what})", rel.to_string_lossy()));
    }
    let db = tree.join(&dbpath[1..]);
    if !crate::files::real_dir_below(tree, &db) {
        found.push(format!("{dbpath} (no longer a real directory)"));
    } else if let Ok(entries) = std::fs::read_dir(&db) {
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                found.push(format!(
                    "{dbpath}/{} (not a plain file)",
                    e.file_name().to_string_lossy()
                ));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_every_phase_and_trigger_kind() {
        let q = query_format();
        assert!(q.starts_with("%{NAME}\n%|PREIN?{1}:{0}|\n[%{PREINPROG}\t]\n"));
        assert!(q.contains("%|POSTTRANS?{1}:{0}|\n[%{POSTTRANSPROG}\t]\n"));
        // The name, two lines per phase, three kinds of trigger, %pretrans.
        assert!(q.ends_with("%|PRETRANS?{1}:{0}|%|PRETRANSPROG?{1}:{0}|\n"));
        assert_eq!(q.lines().count(), 11);
    }

    #[test]
    fn fifos_and_a_swapped_database_are_left_behind() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::write(tree.join("usr/lib/sysimage/rpm/rpmdb.sqlite"), "db").unwrap();
        assert!(left_behind(tree, "/usr/lib/sysimage/rpm").is_empty());
        let fifo = tree.join("usr/lib/pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/etc/passwd", tree.join("usr/lib/sysimage/rpm/x")).unwrap();
        assert_eq!(
            left_behind(tree, "/usr/lib/sysimage/rpm"),
            vec![
                "/usr/lib/pipe (a FIFO)",
                "/usr/lib/sysimage/rpm/x (not a plain file)"
            ]
        );
        std::fs::remove_dir_all(tree.join("usr/lib/sysimage")).unwrap();
        std::fs::create_dir(tree.join("usr/lib/sysimage")).unwrap();
        std::os::unix::fs::symlink("/var/lib/rpm", tree.join("usr/lib/sysimage/rpm")).unwrap();
        assert_eq!(
            left_behind(tree, "/usr/lib/sysimage/rpm"),
            vec![
                "/usr/lib/pipe (a FIFO)",
                "/usr/lib/sysimage/rpm (no longer a real directory)"
            ]
        );
    }

    /// Review Z: a name or link target that is not UTF-8 (`caf\xe9`) is the scriptlet's
    /// doing, named before ostree commit fails on it.
    #[test]
    fn names_ostree_cannot_commit_are_left_behind() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/lib/sysimage/rpm")).unwrap();
        let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
        std::fs::write(tree.join("usr").join(bad), "").unwrap();
        std::os::unix::fs::symlink(bad, tree.join("usr/link")).unwrap();
        assert_eq!(
            left_behind(tree, "/usr/lib/sysimage/rpm"),
            vec![
                "/usr/caf\u{fffd} (a name that is not UTF-8, which OSTree cannot commit)",
                "/usr/link (a link whose target is not UTF-8, which OSTree cannot commit)"
            ]
        );
    }
}
