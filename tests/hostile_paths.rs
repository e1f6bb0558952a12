//! Hostile paths (issue 13, third round): a caller's home outside `/home` is hidden from
//! package code; `-o` and `--html` never write into another user's FIFO nor hang on one with
//! no reader; promotion only moves refs in the workspace's own OSTree repository (or the
//! configured shared one). Each fixture under `tests/hostile/` has the promise it checks in
//! its `PROMISE` file.

mod common;

use common::*;

use std::path::{Path, PathBuf};

fn hostile(name: &str) -> PathBuf {
    repo_root().join("tests/hostile").join(name)
}

/// A caller's home outside `/home`, with a key and a pyenv in it: removed when dropped.
struct OutsideHome(tempfile::TempDir);

impl OutsideHome {
    /// Under /srv, where the fixtures look for it (`/srv/fci-hostile-home.*`): /tmp and
    /// /var/tmp would be hidden from package code anyway.
    fn new() -> Self {
        std::fs::create_dir_all("/srv").unwrap();
        let d = tempfile::Builder::new()
            .prefix("fci-hostile-home.")
            .tempdir_in("/srv")
            .unwrap();
        std::fs::create_dir_all(d.path().join(".ssh")).unwrap();
        std::fs::create_dir_all(d.path().join(".pyenv/versions")).unwrap();
        std::fs::write(d.path().join(".ssh/id_rsa"), "FCI-HOSTILE-SECRET\n").unwrap();
        OutsideHome(d)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn cmd(&self, w: &Ws) -> std::process::Command {
        let mut c = w.cmd();
        c.env("HOME", self.path())
            .env("PYENV_ROOT", self.path().join(".pyenv"));
        c
    }
}

/// Everything under the workspace's logs, for a secret that must not be there.
fn all_logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.push_str(&all_logs(&p));
        } else if p.is_file() {
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
    out
}

#[test]
fn a_home_outside_home_is_hidden_from_build() {
    let w = Ws::new();
    let home = OutsideHome::new();
    let dir = hostile("paths-home-outside-home-build");
    let out = home
        .cmd(&w)
        .args(["build", dir.to_str().unwrap(), "--dist", ".fc41"])
        .output()
        .unwrap();
    let r = Run::from(out);
    let logs = all_logs(&w.ws());
    assert!(
        !logs.contains("FCI-HOSTILE-SECRET"),
        "the secret is in a log"
    );
    assert!(
        !logs.contains(&home.path().join(".pyenv").display().to_string()),
        "the pyenv is in a log"
    );
    assert!(!r.stdout.contains("FCI-HOSTILE-SECRET"), "{}", r.stdout);
    assert!(!r.stderr.contains("FCI-HOSTILE-SECRET"), "{}", r.stderr);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "PASSED");
}

#[test]
fn a_home_outside_home_is_hidden_from_tests() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let p = w.save("in.json", &built.manifest());
    let home = OutsideHome::new();
    let tests = hostile("paths-home-outside-home-test");
    let out = home
        .cmd(&w)
        .args([
            "test",
            "-m",
            p.to_str().unwrap(),
            "--tests-from",
            tests.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    let logs = all_logs(&w.ws());
    assert!(
        !logs.contains("FCI-HOSTILE-SECRET"),
        "the secret is in a log"
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(
        results(t),
        vec![("home-outside-home".to_string(), "PASSED".to_string())],
        "{t:#}"
    );
}
