//! Helpers for the end-to-end tests: they drive the real `fci` binary through the real tools.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Fails (never skips) when a tool the tests need is missing, naming what to install.
pub fn require_tools() {
    require(
        &[
            ("rpmbuild", "rpm"),
            ("rpmspec", "rpm"),
            ("createrepo_c", "createrepo-c"),
            ("ansible-playbook", "ansible-core"),
            ("bwrap", "bubblewrap"),
            ("tmt", "tmt (pip install tmt; needs rsync)"),
            ("rsync", "rsync"),
            ("git", "git"),
            ("ostree", "ostree"),
            ("busybox", "busybox-static"),
        ],
        "the end-to-end tests",
    );
}

/// Fails (never skips) when one of `needed` (program, what provides it) is missing.
pub fn require(needed: &[(&str, &str)], what: &str) {
    let missing: Vec<String> = needed
        .iter()
        .filter(|(t, _)| fci::exec::which(t).is_none())
        .map(|(t, p)| format!("{t} (install {p})"))
        .collect();
    assert!(
        missing.is_empty(),
        "tools missing for {what}: {}; run ./setup.sh",
        missing.join(", ")
    );
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

pub fn fixture(name: &str) -> PathBuf {
    // The hostile corpus (tests/hostile/, each with its PROMISE) first, then the plain ones.
    let hostile = repo_root().join("tests/hostile").join(name);
    if hostile.exists() {
        return hostile;
    }
    repo_root().join("tests/fixtures").join(name)
}

pub fn lookaside() -> String {
    example("lookaside").to_string_lossy().into_owned()
}

/// A scratch area with its own workspace.
pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    pub fn new() -> Self {
        require_tools();
        Ws {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ws(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fci"));
        c.arg("--workspace").arg(self.ws()).arg("--quiet");
        c.stdin(Stdio::null());
        c
    }

    /// Runs fci with `args`, returning the exit code, the parsed stdout manifest and stderr.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd().args(args).output().unwrap();
        Run::from(out)
    }

    pub fn build(&self, example_name: &str, extra: &[&str]) -> Run {
        let src = example(example_name);
        let la = lookaside();
        let mut args = vec![
            "build",
            src.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            la.as_str(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Builds a test fixture package for Fedora 41.
    pub fn build_fixture(&self, name: &str, extra: &[&str]) -> Run {
        let dir = fixture(name);
        let mut args = vec!["build", dir.to_str().unwrap(), "--dist", ".fc41"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Forgets the records fci keeps of this workspace's runs: a manifest then stands as one
    /// from another workspace would, and each stage's own checks of its inputs are what
    /// refuse it (with them, every stage first refuses a manifest whose records or artifacts
    /// are not the ones fci left for the run).
    #[allow(dead_code)]
    pub fn forget_records(&self) {
        let records = self.ws().join("state/records");
        if records.exists() {
            std::fs::remove_dir_all(records).unwrap();
        }
    }

    /// Writes a manifest to a file in the scratch area.
    pub fn save(&self, name: &str, v: &Value) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
        p
    }

    pub fn test(&self, manifest: &Value, extra: &[&str]) -> Run {
        let p = self.save(&format!("in-{}.json", uuid::Uuid::new_v4()), manifest);
        let mut args = vec!["test", "-m", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Files left in the workspace's scratch area (must be none after any run).
    pub fn leftovers(&self) -> Vec<String> {
        let tmp = self.ws().join("tmp");
        std::fs::read_dir(&tmp)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn manifest(&self) -> Value {
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a manifest ({e}); stderr: {}", self.stderr));
        assert_valid(&v);
        v
    }

    pub fn stage<'a>(&self, m: &'a Value, name: &str) -> &'a Value {
        m["stages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s["name"] == name)
            .unwrap()
    }
}

/// Every manifest fci writes must validate against the published schema.
pub fn assert_valid(v: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "manifest violates docs/manifest.schema.json: {errors:#?}"
    );
}

/// The stage's result for the test case `name`.
pub fn case<'a>(stage: &'a Value, name: &str) -> &'a Value {
    stage["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["testcase"] == name)
        .unwrap_or_else(|| panic!("no result {name} in {stage:#}"))
}

pub fn results(stage: &Value) -> Vec<(String, String)> {
    stage["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["testcase"].as_str().unwrap().to_string(),
                        r["outcome"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs git in `dir` (as a committer named fci) and returns its output; fails the test on error.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=fci", "-c", "user.email=fci@example.org"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository holding a copy of an example on the given branch; returns its path.
pub fn git_repo(dir: &Path, example_name: &str, branch: &str) -> PathBuf {
    let repo = dir.join(format!("{example_name}.git-src"));
    fci::suites::runner::copy_tree(&example(example_name), &repo).unwrap();
    git(&repo, &["init", "-q", "-b", branch]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    repo
}

/// Fails when a process whose command line matches `pattern` is still alive.
pub fn assert_no_process(pattern: &str, what: &str) {
    let ps = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "{what} outlived the timeout");
}

/// Which of `names` the host's rpm database cannot provide: what fci must call unmet. On
/// Debian the rpm database is empty, so all of them; on an RPM host, fewer.
pub fn unmet_on_host(names: &[&str]) -> serde_json::Value {
    let unmet: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            !Command::new("rpm")
                .args(["-q", "--whatprovides", n])
                .output()
                .unwrap()
                .status
                .success()
        })
        .collect();
    serde_json::json!(unmet)
}

/// A base tree from examples/base/make-base.sh (with `flags`, e.g. `--no-kernel`), changed by
/// `edit`, in the scratch area's `base/`.
pub fn make_base(w: &Ws, flags: &[&str], edit: impl Fn(&Path)) -> PathBuf {
    let base = w.path().join("base");
    let st = Command::new(repo_root().join("examples/base/make-base.sh"))
        .args(flags)
        .arg(&base)
        .status()
        .unwrap();
    assert!(st.success(), "make-base.sh failed");
    edit(&base);
    base
}

/// `make_base`, committed as f41's known-good base (optionally into a shared repository);
/// returns its checksum.
pub fn init_base_with(
    w: &Ws,
    flags: &[&str],
    shared: Option<&Path>,
    edit: impl Fn(&Path),
) -> String {
    let base = make_base(w, flags, edit);
    let mut args = vec!["compose".to_string()];
    if let Some(s) = shared {
        args.extend(["--ostree-repo".to_string(), s.display().to_string()]);
    }
    args.extend([
        "--init-base".to_string(),
        base.display().to_string(),
        "--branch".to_string(),
        "f41".to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

/// Runs `cmd` to its end under GNU time; its output, and its peak resident memory in KiB.
/// (Not `wait4` on our own child: a child's peak starts from this test process's, which it
/// was forked from; GNU time's is small.)
pub fn run_measured(cmd: Command) -> (Run, u64) {
    require(&[("time", "time")], "the memory measurements");
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut t = Command::new("time");
    t.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        t.current_dir(d);
    }
    let r = Run::from(t.output().unwrap());
    let text = std::fs::read_to_string(report.path()).unwrap();
    let kib = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from time: {text}"));
    (r, kib)
}

pub mod distgit;
pub mod promote;
pub mod rabbitmq;
pub mod resultsdb;

/// A file's sha256, by sha256sum (not fci's own code).
#[allow(dead_code)]
pub fn sha256_file(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
