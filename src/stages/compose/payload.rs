//! What the change's packages put into the tree, checked against the base before rpm runs, and
//! the two places where an OSTree tree differs from what rpm writes:
//! - `/etc` is `usr/etc` in a commit (a tree with both cannot be deployed): what rpm put in
//!   `etc/` moves there, never over a base file and never through a symlink;
//! - `/var` is not carried by OSTree: directories become `tmpfiles.d` entries (as rpm-ostree
//!   does), and files there cannot be delivered at all.
//!
//! Paths are resolved as rpm resolves them under `--root` (a chroot): a symlink in the tree
//! leads somewhere inside the tree, never to the host.

use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::path::{Component, Path, PathBuf};

/// One file of the change, from the packages' headers.
pub struct Entry {
    pub mode: u32,
    /// rpm's file flags (`%ghost`, `%config`, ...).
    pub flags: u32,
    /// Bytes, as the header states them (rpm writes no more: it checks each file it writes
    /// against the header's digest).
    pub size: u64,
    pub user: String,
    pub group: String,
    pub path: String,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
    /// A `%ghost` file: owned, but not in the payload; rpm never writes it.
    pub fn is_ghost(&self) -> bool {
        self.flags & 0x40 != 0
    }
    /// The path without its leading `/`, if it is a plain absolute path.
    fn rel(&self) -> Option<&str> {
        let rel = self.path.strip_prefix('/')?;
        (!rel.is_empty() && !rel.split('/').any(|c| c == ".." || c == ".")).then_some(rel)
    }
}

pub struct Payload {
    pub nevras: Vec<String>,
    pub files: Vec<Entry>,
}

/// The `rpm -qp` query whose output `parse` reads.
/// (`LONGFILESIZES`: rpm gives it for every package, also one whose files are all below 4 GiB.)
pub const QUERYFORMAT: &str = "P %{NEVRA}\n[F %{FILEMODES:octal} %{FILEFLAGS} %{LONGFILESIZES} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]";

pub fn parse(listing: &str) -> Payload {
    let mut p = Payload {
        nevras: Vec::new(),
        files: Vec::new(),
    };
    for line in listing.lines() {
        if let Some(n) = line.strip_prefix("P ") {
            p.nevras.push(n.to_string());
        } else if let Some(rest) = line.strip_prefix("F ") {
            let mut it = rest.splitn(6, ' ');
            if let (Some(mode), Some(flags), Some(size), Some(user), Some(group), Some(path)) = (
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
            ) {
                if let (Ok(mode), Ok(flags), Ok(size)) =
                    (u32::from_str_radix(mode, 8), flags.parse(), size.parse())
                {
                    p.files.push(Entry {
                        mode,
                        flags,
                        size,
                        user: user.into(),
                        group: group.into(),
                        path: path.into(),
                    });
                }
            }
        }
    }
    p
}

/// `P NEVRA` per package of `rpms`, each followed by `F MODE FLAGS SIZE USER GROUP PATH` per
/// file: the listing `parse` reads, from the packages' headers. A listing past the capture
/// cap is the change's failure (`Ok(Err(why))`): cut, it would hide files from every check.
pub fn listing(rpms: &[PathBuf], log: &mut Log) -> Result<std::result::Result<String, String>> {
    let out = log.capture(
        &Cmd::new("rpm")
            .c_locale()
            .args(["-qp", "--nosignature", "--nodigest", "--qf"])
            .arg(QUERYFORMAT)
            .arg("--")
            .args(rpms),
    )?;
    if out.over_limit {
        return Ok(Err(format!(
            "the change's packages list more than {} of files in their headers: too many to check before rpm writes them",
            crate::caps::human(crate::caps::CAPTURED_OUTPUT)
        )));
    }
    let out = out
        .checked()
        .map_err(|f| f.infra("rpm -qp failed on the change's packages"))?;
    Ok(Ok(out.stdout))
}

/// What `rpms` put on disk, from their headers (`Ok(Err(why))`: the change's failure).
pub fn read(rpms: &[PathBuf], log: &mut Log) -> Result<std::result::Result<Payload, String>> {
    Ok(listing(rpms, log)?.map(|l| parse(&l)))
}

/// Bytes the payload writes when rpm installs it: the sizes its headers give its files, a
/// sparse file at its full size (rpm writes every byte; the payload compresses the holes
/// away), a hard-linked file at each of its names. A sound bound: rpm checks every file it
/// writes against the header's digest, so none is larger. `%ghost` files are not written.
pub fn installed_size(payload: &Payload) -> u64 {
    // Every entry rpm writes (a directory, an empty file, a link) takes at least a block and
    // an inode, as the scratch watcher counts it: 60,000 empty directories are 240 MiB, not 0.
    const BLOCK: u64 = 4096;
    payload
        .files
        .iter()
        .filter(|e| !e.is_ghost())
        .fold(0, |sum: u64, e| {
            let blocks = e.size.div_ceil(BLOCK).max(1);
            sum.saturating_add(blocks.saturating_mul(BLOCK))
        })
}

/// The package's failure when installing `payload` would write more than the scratch limit:
/// found from the headers, before rpm runs (whatever installs the change's packages, outside
/// the sandbox that watches package code, checks this first).
pub fn past_scratch(payload: &Payload, limit: u64) -> Option<String> {
    let size = installed_size(payload);
    (size > limit).then(|| {
        format!(
            "the payload expands to {}, past the scratch limit {} (--max-scratch)",
            about(size),
            crate::caps::human(limit)
        )
    })
}

/// A size in the largest unit it fills, rounded down when not exact (`480 MiB`, `about
/// 1.5 GiB`).
fn about(n: u64) -> String {
    let exact = crate::caps::human(n);
    if !exact.ends_with(" bytes") && (!exact.ends_with(" KiB") || n < 1 << 20) {
        return exact;
    }
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("about {:.1} {unit}", n as f64 / size as f64);
        }
    }
    exact
}

/// Where a package path lands in an OSTree tree: `etc/X` is `usr/etc/X`.
pub(super) fn landing(rel: &str) -> String {
    match rel.strip_prefix("etc") {
        Some("") => "usr/etc".into(),
        Some(rest) if rest.starts_with('/') => format!("usr/etc{rest}"),
        _ => rel.to_string(),
    }
}

/// What `rel` is inside `tree`, following symlinks the way a chroot does (the last one too
/// when `follow_last`); None when it does not exist. `Err(())` when a component on the way is
/// not a directory.
fn lookup(tree: &Path, rel: &str, follow_last: bool) -> Result<Option<std::fs::Metadata>, ()> {
    let mut at = PathBuf::new(); // relative to tree, symlink-free
    let mut todo: Vec<String> = rel.split('/').rev().map(String::from).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                at.pop();
                continue;
            }
            _ => {}
        }
        let next = at.join(&c);
        let Ok(m) = std::fs::symlink_metadata(tree.join(&next)) else {
            return Ok(None);
        };
        if m.file_type().is_symlink() && (!todo.is_empty() || follow_last) {
            hops += 1;
            if hops > 40 {
                return Ok(None);
            }
            let target = std::fs::read_link(tree.join(&next)).map_err(|_| ())?;
            if target.is_absolute() {
                at = PathBuf::new();
            }
            let t: Vec<String> = target
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            todo.extend(t.into_iter().rev());
            continue;
        }
        if !todo.is_empty() && !m.is_dir() {
            return Err(());
        }
        at = next;
        if todo.is_empty() {
            return Ok(Some(m));
        }
    }
    Ok(std::fs::symlink_metadata(tree.join(&at)).ok())
}

/// Paths of the change that would replace or alter something of the base: a file over
/// anything, a directory over a non-directory (a link is followed, as rpm follows it) or over
/// a directory with another mode (rpm would chmod the base's), anything under a base file.
/// `replaceable` (paths as they land, from `rpmdb::TreeDb::replaceable`) are files only the
/// base packages the change updates own: rpm -U replaces those, as in Fedora.
pub fn conflicts(
    tree: &Path,
    payload: &Payload,
    replaceable: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    for e in &payload.files {
        if e.is_ghost() || e.rel().is_some_and(|r| replaceable.contains(&landing(r))) {
            continue;
        }
        let existing = if e.path == "/" {
            Ok(std::fs::metadata(tree).ok())
        } else if let Some(rel) = e.rel() {
            lookup(tree, &landing(rel), e.is_dir())
        } else {
            // Not a plain absolute path: nothing fci can reason about.
            Err(())
        };
        let clash = match existing {
            Err(()) => true,
            Ok(None) => false,
            Ok(Some(m)) if e.is_dir() => {
                !m.is_dir() || m.permissions().mode() & 0o7777 != e.mode & 0o7777
            }
            Ok(Some(_)) => true,
        };
        if clash {
            found.push(e.path.clone());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// What kind of file a payload entry is, when it is not one an OSTree tree can hold.
fn special_kind(mode: u32) -> Option<&'static str> {
    match mode & 0o170000 {
        0o100000 | 0o040000 | 0o120000 => None,
        0o010000 => Some("a FIFO"),
        0o140000 => Some("a socket"),
        0o020000 => Some("a character device"),
        0o060000 => Some("a block device"),
        _ => Some("of an unknown file type"),
    }
}

/// The lines of `rpm -i`'s stderr that say it refused the packages themselves (their files
/// conflict, their archive does not unpack, they are for another architecture or operating
/// system): the package's doing. Anything else that stops rpm is the host's.
pub fn rpm_refusals(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("conflicts with file from package")
                || l.contains("unpacking of archive failed")
                || l.contains("already exists as a directory")
                // rpm's "package P is intended for a s390x architecture" (or operating system).
                || l.contains(" is intended for a ")
        })
        .map(str::trim)
        .collect()
}

/// What rpm's dependency check said of the change (`rpm -U` without `--nodeps`, against the
/// tree's database): each unmet Requires as `unmet Requires: X (needed by P)`, each
/// Conflicts as rpm says it. The package's doing.
pub fn unmet_dependencies(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            if let Some((what, by)) = l.split_once(" is needed by ") {
                Some(format!("unmet Requires: {what} (needed by {by})"))
            } else if l.contains(" conflicts with ") && !l.contains("conflicts with file from") {
                Some(format!("Conflicts: {l}"))
            } else if l.contains(" is obsoleted by ") {
                Some(l.to_string())
            } else {
                None
            }
        })
        .collect()
}

/// rpm refusing to update a base package with an older or the same version (`package X
/// (which is newer than Y) is already installed`): the change's failure, said as such.
pub fn not_an_update(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("package ") && l.ends_with(" is already installed"))
        .map(|l| {
            if l.contains("(which is newer than ") {
                format!("a downgrade of a base package: {l}")
            } else {
                format!("the base has this very package already: {l}")
            }
        })
        .collect()
}

/// The change's entries rpm would write that are neither regular files, directories nor
/// symlinks (FIFOs, sockets, device nodes), as `PATH (a FIFO)`: rpm blocks opening a FIFO,
/// and OSTree can commit none of them. The package's doing, refused before rpm runs.
pub fn special_files(payload: &Payload) -> Vec<String> {
    payload
        .files
        .iter()
        .filter(|e| !e.is_ghost())
        .filter_map(|e| {
            special_kind(e.mode).map(|kind| format!("{} ({kind})", escape_control(&e.path)))
        })
        .collect()
}

/// `s` with control characters (a newline in a file name) written as escapes.
fn escape_control(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}

/// The change's files under /var that are not directories: OSTree cannot deliver them.
pub fn var_files(payload: &Payload) -> Vec<String> {
    payload
        .files
        .iter()
        .filter(|e| e.rel().is_some_and(|r| r.starts_with("var/")) && !e.is_dir() && !e.is_ghost())
        .map(|e| e.path.clone())
        .collect()
}

/// `tmpfiles.d` lines that make the change's /var directories at boot.
pub fn var_tmpfiles(payload: &Payload) -> Vec<String> {
    payload
        .files
        .iter()
        .filter(|e| e.rel().is_some_and(|r| r.starts_with("var/")) && e.is_dir())
        .map(|e| {
            format!(
                "d {} {:04o} {} {} -",
                tmpfiles_escape(&e.path),
                e.mode & 0o7777,
                tmpfiles_escape(if e.user.is_empty() { "root" } else { &e.user }),
                tmpfiles_escape(if e.group.is_empty() { "root" } else { &e.group })
            )
        })
        .collect()
}

/// A tmpfiles.d field: whitespace, quotes, backslashes and control characters as C escapes.
fn tmpfiles_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_whitespace()
            || b.is_ascii_control()
            || b == b'\\'
            || b == b'"'
            || b == b'\''
            || b >= 0x80
        {
            out.push_str(&format!("\\x{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Writes `lines` as `usr/lib/tmpfiles.d/NAME` in the tree: a new file in a real directory.
/// The first line of the tmpfiles.d file fci writes (`write_tmpfiles`).
const TMPFILES_HEADER: &str = "# /var content of the change, made at boot (fci compose)";

/// Whether the tree holds `usr/lib/tmpfiles.d/<name>` as fci made it in an earlier compose of
/// the package: a plain file of the tree, owned by no package (`owners`), starting with fci's
/// header. Anything else there is not fci's to replace.
pub fn fci_tmpfiles_in(
    tree: &Path,
    name: &str,
    owners: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> bool {
    let rel = format!("usr/lib/tmpfiles.d/{name}");
    let dir = tree.join("usr/lib/tmpfiles.d");
    if owners.contains_key(&rel) || !crate::files::real_dir_below(tree, &dir) {
        return false;
    }
    let f = dir.join(name);
    std::fs::symlink_metadata(&f).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(&f).is_ok_and(|t| t.starts_with(TMPFILES_HEADER))
}

pub fn write_tmpfiles(tree: &Path, name: &str, lines: &[String]) -> Result<Result<String, String>> {
    let rel = format!("usr/lib/tmpfiles.d/{name}");
    let dir = tree.join("usr/lib/tmpfiles.d");
    if !crate::files::real_dir_below(tree, &dir) {
        // Made only inside real directories of the tree: never through a link in it.
        let parent = tree.join("usr/lib");
        if std::fs::symlink_metadata(&dir).is_ok() || !crate::files::real_dir_below(tree, &parent) {
            return Ok(Err(format!(
                "/{rel}: its directory is not a real directory"
            )));
        }
        std::fs::create_dir(&dir)?;
    }
    let mut text = format!("{TMPFILES_HEADER}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(name))
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())?;
            Ok(Ok(format!("/{rel}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(Err(format!("/{rel} exists already")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Moves what rpm put under `etc/` to `usr/etc/`; returns the paths that could not move (a
/// base file there, or a symlink on the way). Nothing is moved through a symlink. A file of
/// a package the change updates (`replaceable`, paths as they land) is replaced, as rpm -U
/// replaces it (the base's /etc is the packages' own, never a local edit); and those of its
/// files the new version no longer ships are removed: rpm removed them from `etc/`, where
/// the tree never had them.
pub fn relocate_etc(
    tree: &Path,
    replaceable: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>> {
    let etc = tree.join("etc");
    let Ok(m) = std::fs::symlink_metadata(&etc) else {
        return Ok(Vec::new());
    };
    if !m.is_dir() {
        return Ok(vec!["/etc".into()]);
    }
    let usr_etc = tree.join("usr/etc");
    if !crate::files::real_dir_below(tree, &usr_etc) {
        return Ok(vec!["/usr/etc (not a real directory in the base)".into()]);
    }
    let mut refused = Vec::new();
    let mut moved = std::collections::BTreeSet::new();
    move_into(
        &etc,
        &usr_etc,
        "/etc",
        replaceable,
        &mut moved,
        &mut refused,
    )?;
    if refused.is_empty() {
        std::fs::remove_dir_all(&etc)?;
        for rel in replaceable.iter().filter(|r| r.starts_with("usr/etc/")) {
            let stale = tree.join(rel);
            let parent_real = stale
                .parent()
                .is_some_and(|d| crate::files::real_dir_below(tree, d));
            let is_file = std::fs::symlink_metadata(&stale).is_ok_and(|m| !m.is_dir());
            if !moved.contains(rel) && parent_real && is_file {
                std::fs::remove_file(&stale)?;
            }
        }
    }
    Ok(refused)
}

fn move_into(
    from: &Path,
    to: &Path,
    shown: &str,
    replaceable: &std::collections::BTreeSet<String>,
    moved: &mut std::collections::BTreeSet<String>,
    refused: &mut Vec<String>,
) -> Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let src = e.path();
        let dest = to.join(&name);
        let shown = format!("{shown}/{}", name.to_string_lossy());
        // As it lands: /etc/x is usr/etc/x.
        let landed = landing(shown.trim_start_matches('/'));
        let src_dir = e.file_type()?.is_dir();
        match std::fs::symlink_metadata(&dest) {
            Err(_) => std::fs::rename(&src, &dest)?,
            Ok(d) if src_dir && d.is_dir() && !d.file_type().is_symlink() => {
                move_into(&src, &dest, &shown, replaceable, moved, refused)?
            }
            // The updated package's own file (never a directory: rename does not replace
            // one that holds anything).
            Ok(d) if !d.is_dir() && !src_dir && replaceable.contains(&landed) => {
                std::fs::rename(&src, &dest)?
            }
            Ok(_) => refused.push(shown),
        }
        moved.insert(landed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u32, path: &str) -> Entry {
        Entry {
            mode,
            flags: 0,
            size: 0,
            user: "root".into(),
            group: "root".into(),
            path: path.into(),
        }
    }

    #[test]
    fn conflicts_follow_the_tree_not_the_host() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        std::fs::create_dir_all(tree.join("usr/sbin")).unwrap();
        std::fs::create_dir_all(tree.join("usr/etc")).unwrap();
        std::fs::write(tree.join("usr/sbin/init"), "init").unwrap();
        std::fs::write(tree.join("usr/etc/passwd"), "root").unwrap();
        std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
        // An absolute link inside the tree points into the tree (a chroot), not at the host.
        std::os::unix::fs::symlink("/usr/sbin", tree.join("sbin")).unwrap();
        let p = Payload {
            nevras: vec![],
            files: vec![
                entry(0o100755, "/usr/bin/new"),
                entry(0o040755, "/usr/sbin/init"),
                entry(0o100644, "/usr/sbin/init/x"),
                entry(0o100644, "/sbin/init"),
                entry(0o040755, "/bin"),
                entry(0o100644, "/bin/other"),
                entry(0o100644, "/etc/passwd"),
                entry(0o100644, "/etc/new.conf"),
            ],
        };
        assert_eq!(
            conflicts(tree, &p, &Default::default()),
            vec![
                "/etc/passwd",
                "/sbin/init",
                "/usr/sbin/init",
                "/usr/sbin/init/x"
            ]
        );
    }

    #[test]
    fn files_only_updated_packages_own_may_be_replaced() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        std::fs::create_dir_all(tree.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("busybox", tree.join("usr/bin/sed")).unwrap();
        std::os::unix::fs::symlink("busybox", tree.join("usr/bin/awk")).unwrap();
        std::fs::write(tree.join("usr/etc/sed.conf"), "x").unwrap();
        let p = Payload {
            nevras: vec![],
            files: vec![
                entry(0o100755, "/usr/bin/sed"),
                entry(0o100755, "/usr/bin/awk"),
                entry(0o100644, "/etc/sed.conf"),
            ],
        };
        let replaceable = ["usr/bin/sed".to_string(), "usr/etc/sed.conf".to_string()].into();
        assert_eq!(conflicts(tree, &p, &replaceable), vec!["/usr/bin/awk"]);
    }

    #[test]
    fn rpms_dependency_and_version_refusals_are_said_plainly() {
        let stderr = "error: Failed dependencies:\n\
             \tlibfrobnicate.so.7()(64bit) is needed by x-1-1.fc41.noarch\n\
             \tfoo conflicts with (installed) bar-1-1.noarch\n\
             \tfile /usr/bin/a conflicts with file from package b-1-1.noarch\n";
        assert_eq!(
            unmet_dependencies(stderr),
            vec![
                "unmet Requires: libfrobnicate.so.7()(64bit) (needed by x-1-1.fc41.noarch)",
                "Conflicts: foo conflicts with (installed) bar-1-1.noarch",
            ]
        );
        assert_eq!(
            not_an_update(
                "\tpackage sed-0-1.noarch (which is newer than sed-0-0.fc41.noarch) is already installed\n\tpackage x-1-1.noarch is already installed\n"
            ),
            vec![
                "a downgrade of a base package: package sed-0-1.noarch (which is newer than sed-0-0.fc41.noarch) is already installed",
                "the base has this very package already: package x-1-1.noarch is already installed",
            ]
        );
    }

    #[test]
    fn etc_moves_to_usr_etc_without_replacing_anything() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/etc/pam.d")).unwrap();
        std::fs::create_dir_all(tree.join("etc/pam.d")).unwrap();
        std::fs::write(tree.join("etc/pam.d/new"), "x").unwrap();
        std::fs::write(tree.join("etc/new.conf"), "y").unwrap();
        assert!(relocate_etc(tree, &Default::default()).unwrap().is_empty());
        assert!(tree.join("usr/etc/pam.d/new").is_file());
        assert!(tree.join("usr/etc/new.conf").is_file());
        assert!(!tree.join("etc").exists());
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/new.conf"), "z").unwrap();
        assert_eq!(
            relocate_etc(tree, &Default::default()).unwrap(),
            vec!["/etc/new.conf"]
        );
        assert_eq!(
            std::fs::read_to_string(tree.join("usr/etc/new.conf")).unwrap(),
            "y"
        );
    }

    #[test]
    fn the_installed_size_counts_every_written_block_and_only_those() {
        // Two 60 MiB files (sparse or not, rpm writes them whole), a link and a directory (a
        // block each), and a %ghost file (never written).
        let p = parse(
            "P x-1-1.noarch\n\
             F 0100644 0 62914560 root root /usr/share/x/hole1\n\
             F 0100644 0 62914560 root root /usr/share/x/hole 2\n\
             F 0120777 0 6 root root /usr/share/x/link\n\
             F 040755 0 4096 root root /usr/share/x\n\
             F 0100644 64 999999999999 root root /var/log/x.log\n",
        );
        assert_eq!(installed_size(&p), 120 * 1024 * 1024 + 2 * 4096);
        // Empty entries are not free: 60,000 empty directories are 60,000 blocks.
        let dirs: String = (0..60_000)
            .map(|i| format!("F 040755 0 0 root root /usr/share/d/{i}\n"))
            .collect();
        let flood = parse(&format!("P d-1-1.noarch\n{dirs}"));
        assert_eq!(installed_size(&flood), 60_000 * 4096);
        assert!(past_scratch(&flood, 16 * 1024 * 1024).is_some());
        assert_eq!(past_scratch(&p, 121 * 1024 * 1024), None);
        assert_eq!(
            past_scratch(&p, 64 * 1024 * 1024).unwrap(),
            "the payload expands to about 120.0 MiB, past the scratch limit 64 MiB (--max-scratch)"
        );
        let huge = Payload {
            nevras: vec![],
            files: (0..3)
                .map(|_| Entry {
                    size: u64::MAX / 2,
                    ..entry(0o100644, "/x")
                })
                .collect(),
        };
        assert_eq!(installed_size(&huge), u64::MAX);
    }

    #[test]
    fn var_directories_become_tmpfiles_and_files_are_refused() {
        let p = parse(
            "P x-1-1.noarch\nF 040750 0 0 root adm /var/log/x\nF 0100644 0 0 root root /var/lib/x/state\nF 0100644 64 0 root root /var/log/x/x.log\nF 040755 0 0 root root /var/lib/a b\nF 0100755 0 0 root root /usr/bin/x\n",
        );
        assert_eq!(p.nevras, vec!["x-1-1.noarch"]);
        assert_eq!(
            var_tmpfiles(&p),
            vec![
                "d /var/log/x 0750 root adm -",
                "d /var/lib/a\\x20b 0755 root root -"
            ]
        );
        assert_eq!(var_files(&p), vec!["/var/lib/x/state"]);
    }

    #[test]
    fn fifos_sockets_and_device_nodes_are_refused_by_path() {
        // rpm's own modes: a FIFO, a socket, a character and a block device, a %ghost FIFO
        // (never written), and the three kinds a tree can hold.
        let p = parse(
            "P x-1-1.noarch\n\
             F 010644 0 0 root root /usr/share/x/pipe\n\
             F 0140755 0 0 root root /usr/share/x/sock\n\
             F 020666 0 0 root root /usr/share/x/null\n\
             F 060660 0 0 root disk /usr/share/x/sda\n\
             F 010644 64 0 root root /usr/share/x/ghost-pipe\n\
             F 0100644 0 0 root root /usr/share/x/file\n\
             F 040755 0 0 root root /usr/share/x\n\
             F 0120777 0 0 root root /usr/share/x/link\n",
        );
        assert_eq!(
            special_files(&p),
            vec![
                "/usr/share/x/pipe (a FIFO)",
                "/usr/share/x/sock (a socket)",
                "/usr/share/x/null (a character device)",
                "/usr/share/x/sda (a block device)",
            ]
        );
        let odd = Payload {
            nevras: vec![],
            files: vec![entry(0o010644, "/usr/share/x/a\nF 0100644 forged")],
        };
        assert_eq!(
            special_files(&odd),
            vec!["/usr/share/x/a\\nF 0100644 forged (a FIFO)"]
        );
    }
}
