//! A dist-git server made here for `fci watch`'s tests: bare `<package>.git` repositories
//! and a clone per package where packagers commit and push, with git's own commands.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const ALICE: (&str, &str) = ("Alice Packager", "alice@example.org");
pub const BOB: (&str, &str) = ("Bob Packager", "bob@example.org");

/// Runs git in `dir` as `who`, without the system's configuration; its trimmed stdout.
pub fn git(dir: &Path, who: (&str, &str), args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", &format!("user.name={}", who.0)])
        .args(["-c", &format!("user.email={}", who.1)])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git is installed (apt-get install -y git)");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A dist-git server's directory: bare `<package>.git` repositories, and a clone per package
/// where packagers commit and push from.
pub struct DistGit {
    pub rpms: PathBuf,
    pub work: PathBuf,
}

impl DistGit {
    pub fn new(root: &Path) -> DistGit {
        let d = DistGit {
            rpms: root.join("rpms"),
            work: root.join("work"),
        };
        std::fs::create_dir_all(&d.rpms).unwrap();
        std::fs::create_dir_all(&d.work).unwrap();
        d
    }

    /// A package with a first commit on each branch.
    pub fn package(&self, name: &str, branches: &[&str]) {
        let bare = self.rpms.join(format!("{name}.git"));
        git(
            &self.rpms,
            ALICE,
            &["init", "-q", "--bare", bare.to_str().unwrap()],
        );
        let clone = self.work.join(name);
        git(
            &self.work,
            ALICE,
            &[
                "clone",
                "-q",
                bare.to_str().unwrap(),
                clone.to_str().unwrap(),
            ],
        );
        for b in branches {
            git(&clone, ALICE, &["checkout", "-q", "--orphan", b]);
            std::fs::write(
                clone.join(format!("{name}.spec")),
                format!("# {name} {b}\n"),
            )
            .unwrap();
            git(&clone, ALICE, &["add", "-A"]);
            git(
                &clone,
                ALICE,
                &["commit", "-q", "-m", &format!("{name}: first on {b}")],
            );
            git(&clone, ALICE, &["push", "-q", "origin", b]);
        }
    }

    /// A packager's commit, pushed; returns it.
    pub fn push(&self, name: &str, branch: &str, who: (&str, &str), msg: &str) -> String {
        let clone = self.work.join(name);
        git(&clone, who, &["checkout", "-q", branch]);
        let f = clone.join(format!("{name}.spec"));
        let mut text = std::fs::read_to_string(&f).unwrap();
        text.push_str(&format!("# {msg}\n"));
        std::fs::write(&f, text).unwrap();
        git(&clone, who, &["commit", "-q", "-am", msg]);
        git(&clone, who, &["push", "-q", "origin", branch]);
        git(&clone, who, &["rev-parse", "HEAD"])
    }

    /// A second package whose repository is a copy of `from`'s (same commits).
    pub fn copy(&self, from: &str, to: &str) {
        let (src, dest) = (
            self.rpms.join(format!("{from}.git")),
            self.rpms.join(format!("{to}.git")),
        );
        git(
            &self.rpms,
            ALICE,
            &[
                "clone",
                "-q",
                "--bare",
                src.to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
    }

    pub fn head(&self, name: &str, branch: &str) -> String {
        git(
            &self.rpms.join(format!("{name}.git")),
            ALICE,
            &["rev-parse", &format!("refs/heads/{branch}")],
        )
    }
}
