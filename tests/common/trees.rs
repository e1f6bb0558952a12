//! The composed trees as the compose tests look at them: the workspace's OSTree repository
//! through `ostree`, a checkout of a commit, its rpm database through `rpm --root`, and a
//! fixture built and composed onto the example base.

use super::{Run, Ws};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's OSTree repository.
pub fn repo(w: &Ws) -> PathBuf {
    w.ws().join("ostree/repo")
}

/// `ostree --repo=REPO ARGS`: whether it succeeded, and what it printed (stdout, then stderr).
pub fn ostree(w: &Ws, args: &[&str]) -> (bool, String) {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo(w).display()))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `ostree fsck` passes: every object is what its checksum says.
pub fn assert_repo_intact(w: &Ws) {
    let (ok, out) = ostree(w, &["fsck"]);
    assert!(ok, "ostree fsck: {out}");
}

/// A checkout of `commit` in the scratch area, as `name`.
pub fn checkout(w: &Ws, commit: &str, name: &str) -> PathBuf {
    let co = w.path().join(name);
    let (ok, out) = ostree(w, &["checkout", "-U", commit, co.to_str().unwrap()]);
    assert!(ok, "{out}");
    co
}

/// `rpm ARGS` on the database of the tree at `tree` (what it printed, stdout then stderr).
pub fn rpm_q(tree: &Path, args: &[&str]) -> String {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(tree)
        .args(["--dbpath", "/usr/lib/sysimage/rpm"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Builds a fixture and composes it onto the workspace's f41 base (with `extra` flags).
pub fn compose_fixture(w: &Ws, name: &str, extra: &[&str]) -> Run {
    let built = w.build_fixture(name, &[]);
    assert_eq!(built.code, 0, "{name}: {}", built.stderr);
    let p = w.save(&format!("{name}.json"), &built.manifest());
    let mut args = vec!["compose", "--branch", "f41"];
    args.extend_from_slice(extra);
    args.extend(["-m", p.to_str().unwrap()]);
    w.run(&args)
}

/// The workspace path of the first binary RPM a build's manifest lists.
pub fn first_rpm(w: &Ws, built: &Run) -> PathBuf {
    let m = built.manifest();
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .map(|a| w.ws().join(a["path"].as_str().unwrap()))
        .expect("the build made no binary RPM")
}
