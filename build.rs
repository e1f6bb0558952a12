//! `fci --version` names the commit it was built from: `fci 0.1.0 (abc1234)`, with `-dirty`
//! when tracked files differ from that commit, or `(unknown commit)` when built from a tarball
//! (no git checkout of its own, or no git). The commit is passed as `FCI_COMMIT`.
//!
//! Cargo reruns this script only when the checkout's HEAD moves (`HEAD`, the branch it points
//! to, `packed-refs`) or the index changes (`git add`, `git commit`): not on every build. A file
//! edited but not added since the last build is therefore not seen as dirty until then.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rustc-env=FCI_COMMIT={}", commit(&dir));
}

fn commit(dir: &Path) -> String {
    const UNKNOWN: &str = "unknown commit";
    // Only a checkout of fci itself: a tarball unpacked inside another repository is not one.
    let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
        return UNKNOWN.into();
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), dir) {
        return UNKNOWN.into();
    }
    // What moves when HEAD does: HEAD itself (a checkout), the branch it points to (a commit),
    // packed-refs (a branch packed by gc), the index (git add, git commit: the dirty flag).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".into(), "index".into()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for rel in &watched {
        if let Some(p) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", rel],
        ) {
            // A path that does not exist would make cargo rerun this script on every build.
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    let Some(short) = git(dir, &["rev-parse", "--short", "HEAD"]) else {
        return UNKNOWN.into();
    };
    let dirty =
        git(dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{short}-dirty")
    } else {
        short
    }
}
