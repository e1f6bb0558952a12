//! The subject under test: the new RPMs installed into a throwaway root, layered (read-only)
//! over a base tree or the host's own directories, never modifying the host.

use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::sandbox::Overlay;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where the subject's rpm database lives inside its root (under /usr, as in an OSTree tree).
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

pub struct Subject {
    pub root: PathBuf,
    pub installed: Vec<String>,
    /// Requires of the new packages that neither they nor the base provide.
    pub unmet_requires: Vec<String>,
    pub overlays: Vec<Overlay>,
    /// The subject's paths the tests cannot see: files in a directory above fci's workspace.
    pub hidden: Vec<String>,
}

/// Installs `rpms` into `dir/root` and prepares overlay mountpoints for the sandbox. rpm
/// runs outside the sandbox that bounds package code: what the headers say it would write is
/// checked first, as compose checks it (more than `scratch` bytes, or a FIFO, socket or device
/// node, on which rpm would block or which it would make on the host), and a payload rpm
/// refuses is the package's failure (the reason); rpm is bounded by `timeout` too.
pub fn prepare(
    dir: &Path,
    rpms: &[PathBuf],
    base: Option<&Path>,
    scratch: u64,
    timeout: Option<std::time::Duration>,
    log: &mut Log,
) -> Result<Result<Subject, String>> {
    if let Some(b) = base {
        if !b.is_dir() {
            return Err(FciError::input(b, "base root is not a directory").into());
        }
    }
    use crate::stages::compose::payload;
    let payload = match payload::read(rpms, log)? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(why) = payload::past_scratch(&payload, scratch) {
        return Ok(Err(why));
    }
    let special = payload::special_files(&payload);
    if !special.is_empty() {
        return Ok(Err(format!(
            "the packages ship files that are not regular files, directories or symlinks (rpm would block on a FIFO): {}",
            special.join(", ")
        )));
    }
    let root = dir.join("root");
    std::fs::create_dir_all(&root)?;
    let rpm = |c: Cmd| c.arg("--root").arg(&root).arg("--dbpath").arg(DBPATH);
    // The new packages join the base's package set: start from a copy of its database (the
    // overlay would otherwise hide it behind the root's own).
    let base_db = base
        .map(|b| b.join(DBPATH.trim_start_matches('/')))
        .filter(|d| d.is_dir());
    if let Some(db) = &base_db {
        let files = crate::digest::list_files(db, &[])?;
        crate::files::copy_files(db, &files, &root.join(DBPATH.trim_start_matches('/')))?;
    } else {
        let init = rpm(Cmd::new("rpm").c_locale()).arg("--initdb");
        log.run_ok(&init, format!("rpm --initdb failed in {}", root.display()))?;
    }
    // Debian's rpm warns on every install unless told that it is meant to manage this root.
    let debian = std::fs::read_to_string("/etc/debian_version").is_ok();
    let install = |extra: &[&str]| {
        // -U: a package of a base package's name updates it, as `fci compose` installs it.
        let mut c = rpm(Cmd::new("rpm").c_locale())
            .args(["-U", "--noscripts", "--notriggers"])
            .args(extra);
        if debian {
            c = c.arg("--force-debian");
        }
        c.arg("--").args(rpms).timeout(timeout)
    };
    // Killed at the timeout, either is an error of `capture`/`run`: ERROR, never reused.
    let check = log.capture(&install(&["--test"]))?;
    let unmet_requires: Vec<String> = check
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" is needed by "))
        // The tree under the subject (the base, or the host's own directories) may provide
        // what its rpm database cannot say: Debian's C library is in no rpm database.
        .filter(|l| {
            let req = l.split(" is needed by ").next().unwrap_or_default();
            !tree_provides(base.unwrap_or(Path::new("/")), req)
        })
        .map(String::from)
        .collect();
    // Scriptlets are package code: they are not run as root on the host (--noscripts).
    let done = log.capture(&install(&["--nodeps"]))?;
    if let Some(f) = done.failure() {
        // rpm refusing the payload is the package's doing; rpm not running is the host's.
        let said = crate::stages::compose::payload::rpm_refusals(&done.stderr);
        if !said.is_empty() {
            return Ok(Err(format!(
                "rpm refused the packages' payload: {}",
                said.join("; ")
            )));
        }
        let what = "rpm could not install the packages under test into";
        return Err(f.infra(format!("{what} {}", root.display())).into());
    }
    for lock in [".rpm.lock", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"] {
        let _ = std::fs::remove_file(root.join(DBPATH.trim_start_matches('/')).join(lock));
    }
    let installed = match installed(log, rpm(Cmd::new("rpm").c_locale()))? {
        Ok(i) => i,
        Err(why) => return Ok(Err(why)),
    };
    if base.is_none() {
        fedora_python_path(&root)?;
    }
    let (overlays, hidden) = overlays(dir, &root, base)?;
    Ok(Ok(Subject {
        root,
        installed,
        unmet_requires,
        overlays,
        hidden,
    }))
}

/// Fedora's Python reads its site directories (`%python3_sitelib`
/// /usr/lib/python3.X/site-packages, `%python3_sitearch` under /usr/lib64); Debian's reads only
/// its dist-packages. When the subject ships modules there and is layered over a Debian Python,
/// a `.pth` in Debian's site directory, in the subject's throwaway root (layered like its
/// files, part of no package), adds Fedora's, so the package's modules import as they would on
/// Fedora, as `fedora_libdirs` does for its libraries. A base tree brings its own Python.
fn fedora_python_path(root: &Path) -> Result<()> {
    let debian_site = "usr/lib/python3/dist-packages";
    if !Path::new("/").join(debian_site).is_dir() {
        return Ok(());
    }
    let mut dirs: Vec<String> = Vec::new();
    for lib in ["usr/lib64", "usr/lib"] {
        let Ok(entries) = std::fs::read_dir(root.join(lib)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // Only names Python's own versions have: they are written into Python code below.
            .filter(|n| {
                n.strip_prefix("python3.")
                    .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        names.sort();
        for n in names {
            let site = format!("{lib}/{n}/site-packages");
            if crate::files::real_dir_below(root, &root.join(&site)) {
                dirs.push(format!("site.addsitedir('/{site}')"));
            }
        }
    }
    if dirs.is_empty() {
        return Ok(());
    }
    // Made one directory at a time, never through a link the package ships (which could
    // lead out of its root), and the file new: a package's file of that name stays its own.
    let mut at = root.to_path_buf();
    for part in debian_site.split('/') {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Ok(()),
            Err(_) => std::fs::create_dir(&at)?,
        }
    }
    let pth = at.join("zz-fci-fedora-site-packages.pth");
    let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pth)
    else {
        return Ok(());
    };
    use std::io::Write;
    f.write_all(format!("import site; {}\n", dirs.join("; ")).as_bytes())?;
    Ok(())
}

/// The NEVRAs in the subject's root, sorted: `query` is rpm aimed at it. `Err` is the
/// package's failure: the same rpm just installed them, so what breaks its database now is
/// their payload (files written where rpm keeps it).
fn installed(log: &mut Log, query: Cmd) -> Result<Result<Vec<String>, String>> {
    let q = log.capture(&query.args(["-qa", "--qf", "%{NEVRA}\n"]))?;
    if let Some(f) = q.failure() {
        return Ok(Err(format!(
            "rpm cannot read the database the packages were installed into (does their payload write to {DBPATH}?): {f}"
        )));
    }
    let mut installed: Vec<String> = q.stdout.lines().map(String::from).collect();
    installed.sort();
    Ok(Ok(installed))
}

/// Identifies the package set under the new RPMs: the base tree's rpm database, or for the
/// host, its dpkg and rpm databases (by file identity, so an update is a new input).
pub fn base_identity(base: Option<&Path>, hc: &mut crate::hostcache::HostCache) -> String {
    use crate::hostcache::file_id;
    match base {
        Some(b) => {
            let db = b.join(DBPATH.trim_start_matches('/'));
            let mut ids: Vec<String> = std::fs::read_dir(&db)
                .map(|rd| rd.flatten().filter_map(|e| file_id(&e.path())).collect())
                .unwrap_or_default();
            ids.sort();
            format!("{} {}", b.display(), ids.join(" "))
        }
        None => format!(
            "host {} {}",
            file_id(Path::new("/var/lib/dpkg/status")).unwrap_or_default(),
            crate::stages::build::spec::rpmdb_identity(hc)
        ),
    }
}

/// One read-only overlay per top-level directory the subject (or base) fills, and the paths
/// of the subject that could not be shown (see [`layer`]).
pub fn overlays(
    dir: &Path,
    root: &Path,
    base: Option<&Path>,
) -> Result<(Vec<Overlay>, Vec<String>)> {
    // Never layered: kernel filesystems, scratch areas, and the homes the sandbox hides.
    const NEVER: [&str; 8] = ["proc", "sys", "dev", "tmp", "run", "boot", "root", "home"];
    let mut names: Vec<String> = Vec::new();
    for layer in std::iter::once(root).chain(base) {
        for e in std::fs::read_dir(layer)? {
            let e = e?;
            let n = e.file_name().to_string_lossy().into_owned();
            if e.file_type()?.is_dir() && !NEVER.contains(&n.as_str()) && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort();
    let (mut out, mut hidden) = (Vec::new(), Vec::new());
    for n in names {
        let layers: Vec<PathBuf> = std::iter::once(root)
            .chain(base)
            .map(|l| l.join(&n))
            .collect();
        layer(dir, Path::new(&n), layers, &mut out, &mut hidden)?;
    }
    Ok((out, hidden))
}

/// Overlays the host's `/rel` with those of `layers` that are real, non-empty directories; or,
/// when fci's own directory `dir` lies below it (a workspace in /var/tmp, a package that ships
/// /var/lib/x), each of its subdirectories instead, down to the one that holds `dir`, which
/// is never covered: the package's files directly in the directories above `dir` cannot be
/// shown, and are listed in `hidden`.
fn layer(
    dir: &Path,
    rel: &Path,
    layers: Vec<PathBuf>,
    out: &mut Vec<Overlay>,
    hidden: &mut Vec<String>,
) -> Result<()> {
    let target = Path::new("/").join(rel);
    if !target.is_dir() {
        return Ok(());
    }
    let layers: Vec<PathBuf> = layers
        .into_iter()
        // A real directory only: a symlink (shipped by the package, or in the base) would
        // layer a host directory past the sandbox's covers.
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()))
        // An empty directory adds nothing (an OSTree tree's /var, say).
        .filter(|p| std::fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_some()))
        .collect();
    if layers.is_empty() {
        return Ok(());
    }
    if !dir.starts_with(&target) {
        let mountpoint = dir.join("mnt").join(rel);
        std::fs::create_dir_all(&mountpoint)?;
        out.push(Overlay {
            layers,
            target,
            mountpoint,
        });
        return Ok(());
    }
    let mut children: Vec<String> = Vec::new();
    for l in &layers {
        for e in std::fs::read_dir(l)? {
            let e = e?;
            let n = e.file_name().to_string_lossy().into_owned();
            if !e.file_type()?.is_dir() || dir == target {
                hidden.push(target.join(&n).to_string_lossy().into_owned());
            } else if !children.contains(&n) {
                children.push(n);
            }
        }
    }
    children.sort();
    for c in children {
        let below = layers.iter().map(|l| l.join(&c)).collect();
        layer(dir, &rel.join(&c), below, out, hidden)?;
    }
    Ok(())
}

/// Whether the files of the tree at `root` satisfy a requirement that no rpm database there
/// records: a path that exists, a shared library (`libc.so.6()(64bit)`, also with a symbol
/// version) in one of the library directories, or glibc's `rtld(GNU_HASH)`.
pub fn tree_provides(root: &Path, req: &str) -> bool {
    const LIBDIRS: [&str; 6] = [
        "usr/lib64",
        "lib64",
        "usr/lib/x86_64-linux-gnu",
        "lib/x86_64-linux-gnu",
        "usr/lib",
        "lib",
    ];
    let req = req.trim();
    if let Some(path) = req.strip_prefix('/') {
        return root.join(path).exists();
    }
    if req == "rtld(GNU_HASH)" {
        return LIBDIRS
            .iter()
            .any(|d| root.join(d).join("ld-linux-x86-64.so.2").exists());
    }
    let soname = req.split('(').next().unwrap_or_default();
    let is_64 = req.ends_with("(64bit)");
    if !(soname.contains(".so") && !soname.contains('/') && is_64) {
        return false;
    }
    // `libc.so.6(GLIBC_2.38)(64bit)`: the library must define that symbol version (its name
    // stands, NUL-terminated, among the library's strings); `libc.so.6()(64bit)` any.
    let version = req[soname.len()..]
        .strip_prefix('(')
        .and_then(|r| r.split(')').next())
        .unwrap_or_default();
    LIBDIRS.iter().any(|d| {
        let lib = root.join(d).join(soname);
        if version.is_empty() {
            return lib.exists();
        }
        std::fs::read(&lib).is_ok_and(|bytes| {
            let mut needle = version.as_bytes().to_vec();
            needle.push(0);
            bytes.windows(needle.len()).any(|w| w == needle.as_slice())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::tree_provides;

    #[test]
    fn a_tree_provides_libraries_and_paths_by_its_files() {
        let t = tempfile::tempdir().unwrap();
        let lib = t.path().join("lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libc.so.6"), "\0GLIBC_2.34\0GLIBC_2.2.5\0").unwrap();
        std::fs::write(lib.join("ld-linux-x86-64.so.2"), "").unwrap();
        std::fs::create_dir_all(t.path().join("bin")).unwrap();
        std::fs::write(t.path().join("bin/sh"), "").unwrap();
        assert!(tree_provides(t.path(), "libc.so.6()(64bit)"));
        assert!(tree_provides(t.path(), "libc.so.6(GLIBC_2.34)(64bit)"));
        assert!(!tree_provides(t.path(), "libc.so.6(GLIBC_9.99)(64bit)"));
        assert!(!tree_provides(t.path(), "libc.so.6(GLIBC_2.3)(64bit)"));
        assert!(tree_provides(t.path(), "rtld(GNU_HASH)"));
        assert!(tree_provides(t.path(), "/bin/sh"));
        assert!(!tree_provides(t.path(), "libfoo.so.1()(64bit)"));
        assert!(!tree_provides(t.path(), "bash"));
        assert!(!tree_provides(t.path(), "/usr/bin/python3"));
    }
}
