//! Package code cannot reach the host through what bwrap and fci's caller hand it: the host's
//! device nodes bound into every sandbox (package code runs as uid 0 when fci is root) and
//! descriptors fci inherited. The fixture `reach-host` tries both from %install and %post and
//! records each attempt; the host's nodes and the caller's file must come out unchanged.

mod common;
use common::trees::*;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE];

/// What package code must not change of a host device node: mode, owner, group, mtime.
fn node(p: &str) -> (u32, u32, u32, i64, i64) {
    let m = std::fs::metadata(p).unwrap();
    (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec())
}

fn nodes() -> Vec<(u32, u32, u32, i64, i64)> {
    ["/dev/null", "/dev/full"].map(node).to_vec()
}

/// fci with `args` and `outside` open as its descriptor 7, not close-on-exec (as a shell's
/// `exec 7>>FILE` leaves it).
fn run_with_fd7(w: &Ws, outside: &Path, args: &[&str]) -> Run {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(outside)
        .unwrap();
    let mut c = w.cmd();
    c.args(args);
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; the descriptor is open until the spawn returns.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Run::from(c.output().unwrap())
}

/// Every attempt of the fixture ran and was held, and /dev/null still takes writes.
fn assert_held(attempts: &str, what: &str) {
    for a in [
        "chmod-full",
        "chown-full",
        "chmod-null",
        "chown-null",
        "touch-null",
        "touch-full",
        "fd-7",
    ] {
        assert!(
            attempts.lines().any(|l| l == format!("held: {a}")),
            "{what}: {a} not held:\n{attempts}"
        );
    }
    assert!(
        attempts.lines().any(|l| l == "works: write-null"),
        "{what}: writing to /dev/null failed:\n{attempts}"
    );
}

#[test]
fn a_build_cannot_change_the_hosts_device_nodes_or_write_to_inherited_descriptors() {
    let w = Ws::new();
    let before = nodes();
    let outside = w.path().join("outside.txt");
    let dir = fixture("reach-host");
    let r = run_with_fd7(
        &w,
        &outside,
        &["build", dir.to_str().unwrap(), "--dist", ".fc41"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b:#}");
    let log = std::fs::read_to_string(w.ws().join(b["log"].as_str().unwrap())).unwrap();
    assert_eq!(
        nodes(),
        before,
        "the host's /dev/null or /dev/full changed:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "",
        "%install wrote to fci's inherited descriptor 7"
    );
    assert_held(&log, "%install");
}

#[test]
fn a_post_cannot_change_the_hosts_device_nodes_or_write_to_inherited_descriptors() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = w.build_fixture("reach-host", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let p = w.save("reach-host.json", &built.manifest());
    let before = nodes();
    let outside = w.path().join("outside.txt");
    let r = run_with_fd7(
        &w,
        &outside,
        &["compose", "--branch", "f41", "-m", p.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(nodes(), before, "the host's /dev/null or /dev/full changed");
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "",
        "%post wrote to fci's inherited descriptor 7"
    );
    let commit = c["data"]["commit"].as_str().unwrap();
    let (ok, attempts) = ostree(&w, &["cat", commit, "/usr/share/reach-host/post-attempts"]);
    assert!(ok, "{attempts}");
    assert_held(&attempts, "%post");
}
