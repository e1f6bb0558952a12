//! `fci watch --once` over 2,000 local dist-git repositories with 20 new commits among them,
//! against a shell loop of `git -C repo rev-parse branch` over the same repositories, in one
//! run: prints both times and the ratio (target: at least 20x faster, and under a second).
//! Run: `cargo bench --bench watch_poll`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const CHANGED: usize = 20;

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.org",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn main() {
    let repos = support::size(2_000, 100);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path();
    let rpms = root.join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    // One real repository, copied: 2,000 `git init`s and commits would take a minute.
    let template = root.join("template.git");
    git(
        root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "f41",
            template.to_str().unwrap(),
        ],
    );
    let work = root.join("work");
    git(
        root,
        &[
            "clone",
            "-q",
            template.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    git(&work, &["checkout", "-q", "-b", "f41"]);
    std::fs::write(work.join("pkg.spec"), "Name: pkg\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "import"]);
    git(&work, &["push", "-q", "origin", "f41"]);
    let mut config = String::from("dist_git: ./rpms\nbranches: [f41]\npackages:\n");
    for i in 0..repos {
        let st = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(rpms.join(format!("pkg{i}.git")))
            .status()
            .unwrap();
        assert!(st.success());
        config.push_str(&format!("  - pkg{i}\n"));
    }
    let cfg = root.join("fci.yaml");
    std::fs::write(&cfg, config).unwrap();
    let ws = root.join("ws");
    let watch = || {
        let out = Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(&ws)
            .args(["--quiet", "watch", "--once", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(watch(), 0, "the first poll records the heads");
    // 20 packagers push a new commit each.
    std::fs::write(work.join("pkg.spec"), "Name: pkg\nVersion: 2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "update"]);
    for i in (0..repos).step_by(repos / CHANGED) {
        let dest = rpms.join(format!("pkg{i}.git"));
        git(&work, &["push", "-q", dest.to_str().unwrap(), "f41"]);
    }

    let t = Instant::now();
    let emitted = watch();
    let fci_s = t.elapsed().as_secs_f64();
    assert_eq!(emitted, CHANGED, "one manifest per new commit");

    let t = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg("for r in \"$1\"/*.git; do git -C \"$r\" rev-parse f41 >/dev/null; done")
        .arg("sh")
        .arg(&rpms)
        .status()
        .unwrap();
    assert!(st.success());
    let loop_s = t.elapsed().as_secs_f64();

    println!(
        "watch_poll: {repos} repositories, {CHANGED} changed: fci watch --once {:.3} s, \
         shell loop of git rev-parse {:.3} s: {:.1}x faster (target >= 20x, under 1 s)",
        fci_s,
        loop_s,
        loop_s / fci_s
    );
    support::record(
        "shell loop of git rev-parse / fci watch --once (x faster)",
        loop_s / fci_s,
        "x",
        support::Target::AtLeast(20.0),
        serde_json::json!({"repositories": repos, "changed": CHANGED, "fci_s": fci_s, "loop_s": loop_s}),
    );
    support::record(
        "fci watch --once",
        fci_s,
        " s",
        support::Target::AtMost(1.0),
        serde_json::json!({"repositories": repos, "changed": CHANGED}),
    );
    support::quick_note();
}
