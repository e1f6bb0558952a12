//! The example base (examples/base/make-base.sh) is a set of RPMs built from the specs in
//! examples/base/specs: its rpm database owns every file of the tree, and the Provides are
//! rpm's own generators'.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BASE];

/// `rpm ARGS` on the tree's database, its stdout (asserting it succeeded).
fn rpm(tree: &Path, args: &[&str]) -> String {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(tree)
        .args(["--dbpath", "/usr/lib/sysimage/rpm"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every path below `dir`, as the tree's absolute paths.
fn walk(root: &Path, dir: &Path, into: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        into.insert(format!("/{}", p.strip_prefix(root).unwrap().display()));
        if e.file_type().unwrap().is_dir() {
            walk(root, &p, into);
        }
    }
}

#[test]
fn the_rpm_database_owns_every_file_of_the_base() {
    let w = Ws::new();
    for flags in [&["--no-kernel"][..], &[][..]] {
        let tree = make_base(&w, flags, |_| {});
        let mut files = BTreeSet::new();
        walk(&tree, &tree, &mut files);
        // The packages' /etc is usr/etc in an OSTree tree, as rpm-ostree lays it out; the
        // database names /etc (what a deployment sees).
        let files: BTreeSet<String> = files
            .into_iter()
            .filter(|f| !f.starts_with("/usr/lib/sysimage/rpm/"))
            .map(|f| match f.strip_prefix("/usr/etc") {
                Some(rest) => format!("/etc{rest}"),
                None => f,
            })
            .collect();
        let owned: BTreeSet<String> = rpm(&tree, &["-qa", "--qf", "[%{FILENAMES}\n]"])
            .lines()
            .map(String::from)
            .collect();
        let unowned: Vec<&String> = files.difference(&owned).collect();
        assert!(unowned.is_empty(), "{flags:?}: not owned: {unowned:?}");
        // And the database claims nothing the tree lacks (but the %ghost loader cache, which
        // make-base.sh builds, is there too).
        let missing: Vec<&String> = owned.difference(&files).collect();
        assert!(
            missing.is_empty(),
            "{flags:?}: owned, not in the tree: {missing:?}"
        );
        let names = rpm(&tree, &["-qa", "--qf", "%{NAME}\n"]);
        let mut names: Vec<&str> = names.lines().collect();
        names.sort();
        let mut want = vec![
            "bash",
            "busybox",
            "bzip2",
            "fci-guest-init",
            "filesystem",
            "glibc",
            "grep",
            "gzip",
            "python3",
            "rpm",
            "sed",
            "shadow-utils",
            "systemd",
        ];
        if flags.is_empty() {
            want.push("kernel");
            want.sort();
        }
        assert_eq!(names, want, "{flags:?}");
        // The base's packages satisfy one another's Requires.
        let verify = Command::new("rpm")
            .arg("--root")
            .arg(&tree)
            .args(["--dbpath", "/usr/lib/sysimage/rpm", "-Va", "--nofiles"])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{flags:?}: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        std::fs::remove_dir_all(&tree).unwrap();
    }
}

#[test]
fn provides_come_from_rpms_generators_and_the_loader_searches_fedoras_directories() {
    let w = Ws::new();
    let tree = make_base(&w, &["--no-kernel"], |_| {});
    // elfdeps's: the sonames and symbol versions of the host's libraries; what programs built
    // on this host require (hello-atomic: libc.so.6(GLIBC_2.34)(64bit), rtld(GNU_HASH)).
    let provides = rpm(&tree, &["-q", "--provides", "glibc"]);
    for p in [
        "libc.so.6()(64bit)",
        "libc.so.6(GLIBC_2.34)(64bit)",
        "ld-linux-x86-64.so.2()(64bit)",
        "rtld(GNU_HASH)",
    ] {
        assert!(provides.lines().any(|l| l == p), "{p} missing: {provides}");
    }
    let rpm_provides = rpm(&tree, &["-q", "--provides", "rpm"]);
    assert!(
        rpm_provides.contains("librpm.so.9()(64bit)"),
        "{rpm_provides}"
    );
    // The commands Fedora packages apart are packages of their own, of Version 0 (any real
    // one updates them), and busybox owns none of their links.
    for (pkg, cmd) in [
        ("sed", "sed"),
        ("grep", "grep"),
        ("gzip", "gunzip"),
        ("bzip2", "bzip2"),
    ] {
        let owner = rpm(
            &tree,
            &[
                "-qf",
                &format!("/usr/bin/{cmd}"),
                "--qf",
                "%{NAME} %{VERSION}",
            ],
        );
        assert_eq!(owner, format!("{pkg} 0"));
        assert_eq!(
            std::fs::read_link(tree.join("usr/bin").join(cmd)).unwrap(),
            Path::new("busybox")
        );
    }
    assert_eq!(
        rpm(
            &tree,
            &["-q", "--whatprovides", "/bin/sh", "--qf", "%{NAME}"]
        ),
        "bash"
    );
    // /bin/sh is bash, which runs what is on PATH (busybox's sh would run its own applets).
    assert_eq!(
        std::fs::read_link(tree.join("usr/bin/sh")).unwrap(),
        Path::new("bash")
    );
    assert_eq!(
        rpm(
            &tree,
            &["-q", "--whatprovides", "/sbin/ldconfig", "--qf", "%{NAME}"]
        ),
        "glibc"
    );
    // Fedora's %_libdir first; the cache is where the deployed /etc has it, and lists the
    // base's libraries.
    let conf = std::fs::read_to_string(tree.join("usr/etc/ld.so.conf")).unwrap();
    assert_eq!(conf.lines().next(), Some("/usr/lib64"), "{conf}");
    let cache = Command::new("ldconfig")
        .arg("-C")
        .arg(tree.join("usr/etc/ld.so.cache"))
        .arg("-p")
        .output()
        .unwrap();
    let cache = String::from_utf8_lossy(&cache.stdout);
    assert!(cache.contains("librpm.so.9 "), "{cache}");
    // The tree's own rpm reads the tree's database (the integration suite runs it).
    let inside = Command::new("chroot")
        .arg(&tree)
        .args([
            "/usr/bin/rpm",
            "-q",
            "--dbpath",
            "/usr/lib/sysimage/rpm",
            "sed",
        ])
        .output()
        .unwrap();
    assert!(
        inside.status.success(),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    assert!(String::from_utf8_lossy(&inside.stdout).starts_with("sed-0-1"));
    // And without --dbpath, as a Fedora scriptlet asks it: the tree's rpm names the database
    // where Fedora's does (its macros.d), not Debian's ~/.rpmdb.
    let plain = Command::new("chroot")
        .arg(&tree)
        .args(["/usr/bin/rpm", "-q", "sed"])
        .output()
        .unwrap();
    let plain_out = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.status.success() && plain_out.starts_with("sed-0-1"),
        "{plain_out}{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert_eq!(
        rpm(
            &tree,
            &[
                "-qf",
                "/usr/lib/rpm/macros.d/macros.dbpath",
                "--qf",
                "%{NAME}"
            ]
        ),
        "rpm"
    );
    // What Fedora's packages need of the tree, each working inside it: Python (its ABI
    // provided, Fedora's site-packages on its path), systemctl for %systemd_post, useradd
    // and getent for %sysusers_create_compat.
    let py = rpm(&tree, &["-q", "--provides", "python3"]);
    assert!(
        py.lines().any(|l| l.starts_with("python(abi) = 3.")),
        "{py}"
    );
    assert!(py.lines().any(|l| l == "/usr/bin/python3"), "{py}");
    for (cmd, want) in [
        (
            vec![
                "/usr/bin/python3",
                "-c",
                "import sys, json, sqlite3; print(sys.path)",
            ],
            "/site-packages",
        ),
        (vec!["/usr/bin/systemctl", "--version"], "systemd "),
        (vec!["/usr/sbin/useradd", "--help"], "Usage: useradd"),
        (vec!["/usr/bin/getent", "--version"], "getent"),
    ] {
        let out = Command::new("chroot")
            .arg(&tree)
            .args(&cmd)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.contains(want),
            "{cmd:?}: {said}"
        );
    }
}
