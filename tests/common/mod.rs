//! Helpers for the end-to-end tests: they drive the real `fci` binary through the real tools.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A program the tests run (themselves or through fci), and what installs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

/// A test file's declaration of the tools it needs: every file that includes this module
/// declares `const NEEDS: common::Needs = &[tool::BUILD, ...];` at its top (it does not
/// compile without one), naming only what its tests run. `Ws::new` (or `needs()`, for a test
/// without a workspace) checks it and fails, never skips, naming what to install.
pub type Needs = &'static [&'static [Tool]];

/// The tools, and the groups each stage (or test helper) calls.
pub mod tool {
    use super::Tool;
    const fn t(program: &'static str, install: &'static str) -> Tool {
        Tool { program, install }
    }
    pub const RPM: Tool = t("rpm", "rpm");
    pub const RPMBUILD: Tool = t("rpmbuild", "rpm");
    pub const RPMSPEC: Tool = t("rpmspec", "rpm");
    pub const CREATEREPO: Tool = t("createrepo_c", "createrepo-c");
    pub const BWRAP: Tool = t("bwrap", "bubblewrap");
    pub const UNSHARE: Tool = t("unshare", "util-linux");
    pub const MOUNT: Tool = t("mount", "mount");
    pub const MKFS: Tool = t("mkfs.ext4", "e2fsprogs");
    pub const ANSIBLE: Tool = t("ansible-playbook", "ansible-core");
    pub const TMT: Tool = t("tmt", "tmt (pip install tmt; needs rsync)");
    pub const RSYNC: Tool = t("rsync", "rsync");
    pub const GIT: Tool = t("git", "git");
    pub const OSTREE: Tool = t("ostree", "ostree");
    pub const BUSYBOX: Tool = t("busybox", "busybox-static");
    pub const CPIO: Tool = t("cpio", "cpio");
    pub const QEMU_IMG: Tool = t("qemu-img", "qemu-utils");
    pub const QEMU: Tool = t("qemu-system-x86_64", "qemu-system-x86");
    pub const DEBUGFS: Tool = t("debugfs", "e2fsprogs");
    pub const PROCPS: Tool = t("ps", "procps");
    pub const TAR: Tool = t("tar", "tar");
    pub const OPENSSL: Tool = t("openssl", "openssl");
    pub const PYTHON3: Tool = t("python3", "python3");
    pub const LOSETUP: Tool = t("losetup", "mount");
    pub const CHATTR: Tool = t("chattr", "e2fsprogs");
    pub const RPMLINT: Tool = t("rpmlint", "rpmlint");
    pub const RPMAUTOSPEC: Tool = t(
        "rpmautospec",
        "rpmautospec (./setup.sh --deps-only: a venv in /opt/fci/rpmautospec)",
    );

    /// `fci build` (rpmbuild in bwrap, its scratch a file system of its own).
    pub const BUILD: &[Tool] = &[
        RPM, RPMSPEC, RPMBUILD, CREATEREPO, BWRAP, UNSHARE, MOUNT, MKFS, RPMLINT,
    ];
    /// `fci test` on STI and tmt suites (hello-atomic has both).
    pub const TEST: &[Tool] = &[RPM, ANSIBLE, TMT, RSYNC, BWRAP, UNSHARE, MOUNT, MKFS];
    /// A base tree (examples/base/make-base.sh: its packages built with rpmbuild and
    /// installed with rpm) committed by `fci base init`.
    pub const BASE: &[Tool] = &[BUSYBOX, CPIO, RPM, RPMBUILD, OSTREE];
    /// `fci compose` and `fci integrate`.
    pub const COMPOSE: &[Tool] = &[RPM, OSTREE, BWRAP, UNSHARE, MOUNT];
    /// `fci image`.
    pub const IMAGE: &[Tool] = &[OSTREE, MKFS, QEMU_IMG];
    /// `fci smoke`.
    pub const SMOKE: &[Tool] = &[QEMU, QEMU_IMG, DEBUGFS];
    /// `fci conform`'s fake clusters and certificates.
    pub const CONFORM: &[Tool] = &[TAR, OPENSSL, PYTHON3];
}

/// Fails (never skips) when a tool this test file declares in `NEEDS` is missing, naming what
/// to install.
pub fn needs() {
    let mut all: Vec<(&str, &str)> = Vec::new();
    for t in crate::NEEDS.iter().flat_map(|g| g.iter()) {
        if !all.iter().any(|(p, _)| *p == t.program) {
            all.push((t.program, t.install));
        }
    }
    require(
        &all,
        concat!("tests/", env!("CARGO_CRATE_NAME"), ".rs (its NEEDS)"),
    );
}

/// Fails (never skips) when one of `needed` (program, what provides it) is missing.
pub fn require(needed: &[(&str, &str)], what: &str) {
    let missing: Vec<String> = needed
        .iter()
        .filter(|(t, _)| fci::tool::which(t).is_none())
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
        needs();
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

/// Processes that still belong to a run in `ws`: their working directory is below it, or
/// their command line or environment names it (rpmbuild's scriptlets carry RPM_BUILD_DIR,
/// spec code and tests their HOME and TEST_ARTIFACTS, all below the workspace: the sandbox
/// binds them at their own paths). Scoped to one workspace, unlike `pgrep -f`, which also
/// sees the same fixtures run by other tests and other workers.
pub fn processes_of(ws: &Path) -> Vec<String> {
    let needle = ws.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let p = e.path();
        let cwd = std::fs::read_link(p.join("cwd")).unwrap_or_default();
        let text = |f: &str| {
            String::from_utf8_lossy(&std::fs::read(p.join(f)).unwrap_or_default()).into_owned()
        };
        let cmdline = text("cmdline");
        if cwd.starts_with(ws) || cmdline.contains(&needle) || text("environ").contains(&needle) {
            out.push(format!("{name}: {}", cmdline.replace('\0', " ")));
        }
    }
    out
}

/// Fails when any process's command line contains `unique`: only for a string no other test
/// or worker can have in its command lines (this test's own port or path).
pub fn assert_no_process_naming(unique: &str, what: &str) {
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(unique))
        .collect();
    assert!(left.is_empty(), "{what} outlived the timeout: {left:#?}");
}

impl Ws {
    /// This workspace's processes whose command line contains `pattern`.
    pub fn processes(&self, pattern: &str) -> Vec<String> {
        processes_of(&self.ws())
            .into_iter()
            .filter(|p| p.contains(pattern))
            .collect()
    }

    /// Fails when a process of this workspace's runs whose command line contains `pattern`
    /// is still alive (checked now: fci has returned).
    pub fn assert_no_process(&self, pattern: &str, what: &str) {
        let left = self.processes(pattern);
        assert!(left.is_empty(), "{what} outlived the timeout: {left:#?}");
    }

    /// Waits until a process of this workspace whose command line contains `pattern` runs;
    /// fails after `within`.
    pub fn wait_for_process(&self, pattern: &str, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        while self.processes(pattern).is_empty() {
            assert!(Instant::now() < deadline, "{what} never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no process of this workspace whose command line contains `pattern` is
    /// left (the kernel takes a moment to reap a killed namespace); fails after `within`.
    pub fn wait_no_process(&self, pattern: &str, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        loop {
            let left = self.processes(pattern);
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "{what} still running: {left:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Which of `names` the host's rpm database cannot provide: what fci must call unmet. On
/// Debian the rpm database is empty, so all of them; on an RPM host, fewer.
pub fn unmet_on_host(names: &[&str]) -> serde_json::Value {
    // What rpm lacks and the host has otherwise (a command on PATH, a file) is met.
    let lacking: Vec<String> = serde_json::from_value(rpm_lacks(names)).unwrap();
    let unmet: Vec<String> = lacking
        .into_iter()
        .filter(|n| {
            if n.starts_with('/') {
                !Path::new(n).exists()
            } else {
                !Command::new("sh")
                    .args(["-c", "command -v \"$1\" >/dev/null", "sh", n])
                    .status()
                    .unwrap()
                    .success()
            }
        })
        .collect();
    serde_json::json!(unmet)
}

/// The names the host's rpm database provides nothing for (all of them on a Debian host).
pub fn rpm_lacks(names: &[&str]) -> serde_json::Value {
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

/// Worlds built once per test binary (base trees, workspaces with a base), below
/// `CARGO_TARGET_TMPDIR`: the directory of this process, cleared of those of processes gone.
fn worlds() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("worlds");
        let prefix = format!("{}-", env!("CARGO_CRATE_NAME"));
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = root.join(format!("{prefix}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A copy of `from` at `to` (`cp -a`: modes, links and times kept).
fn copy_world(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// The key of a world: its recipe's words.
fn world_key(words: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for w in words {
        h.update(w.as_bytes());
        h.update([0]);
    }
    format!("{:x}", h.finalize())[..16].to_string()
}

/// A digest of a tree: each entry's path, kind, mode, link target and content.
fn tree_digest(root: &Path) -> String {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    fn walk(h: &mut sha2::Sha256, root: &Path, dir: &Path) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            h.update(p.strip_prefix(root).unwrap().as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}\0", md.permissions().mode()).as_bytes());
            if md.file_type().is_symlink() {
                h.update(
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes(),
                );
            } else if md.is_dir() {
                walk(h, root, &p);
            } else if md.is_file() {
                h.update(std::fs::read(&p).unwrap());
            }
            h.update([0]);
        }
    }
    let mut h = sha2::Sha256::new();
    walk(&mut h, root, root);
    format!("{:x}", h.finalize())
}

/// One build at a time of the worlds (tests that want the same one wait for it).
static WORLDS_LOCK: Mutex<()> = Mutex::new(());

/// A base tree from examples/base/make-base.sh (with `flags`, e.g. `--no-kernel`), changed by
/// `edit`, in the scratch area's `base/`. The script runs once per test binary and flags;
/// each test gets its own copy to edit.
pub fn make_base(w: &Ws, flags: &[&str], edit: impl Fn(&Path)) -> PathBuf {
    let base = w.path().join("base");
    let pristine = worlds().join(format!("base-{}", world_key(flags)));
    {
        let _one = WORLDS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if !pristine.exists() {
            let partial = pristine.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            let st = Command::new(repo_root().join("examples/base/make-base.sh"))
                .args(flags)
                .arg(&partial)
                .status()
                .unwrap();
            assert!(st.success(), "make-base.sh failed");
            std::fs::rename(&partial, &pristine).unwrap();
        }
    }
    copy_world(&pristine, &base);
    edit(&base);
    base
}

/// `make_base`, committed as f41's known-good base (optionally into a shared repository);
/// returns its checksum. Into a workspace not made yet and no shared repository, the
/// workspace is a copy of one made once per test binary for the same (edited) tree: no
/// absolute path of a workspace is kept in it.
pub fn init_base_with(
    w: &Ws,
    flags: &[&str],
    shared: Option<&Path>,
    edit: impl Fn(&Path),
) -> String {
    let base = make_base(w, flags, edit);
    let reusable = shared.is_none() && !w.ws().exists();
    let world = worlds().join(format!("ws-{}", world_key(&[&tree_digest(&base)])));
    if reusable {
        let _one = WORLDS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if world.exists() {
            copy_world(&world.join("ws"), &w.ws());
            return std::fs::read_to_string(world.join("checksum")).unwrap();
        }
    }
    let mut args = vec!["base".to_string(), "init".to_string()];
    if let Some(s) = shared {
        args.extend(["--ostree-repo".to_string(), s.display().to_string()]);
    }
    args.extend([
        base.display().to_string(),
        "--branch".to_string(),
        "f41".to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let checksum = r.stdout.trim().to_string();
    if reusable {
        let _one = WORLDS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if !world.exists() {
            let partial = world.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::create_dir_all(&partial).unwrap();
            copy_world(&w.ws(), &partial.join("ws"));
            std::fs::write(partial.join("checksum"), &checksum).unwrap();
            std::fs::rename(&partial, &world).unwrap();
        }
    }
    checksum
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
pub mod intoto;
pub mod promote;
pub mod rabbitmq;
pub mod resultsdb;
pub mod trees;
pub mod waiverdb;
pub mod worker;

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

/// A directory to use as PATH: links to every program of the system's PATH directories but
/// `without`, so that fci finds all it needs except those (a host that lacks them).
#[allow(dead_code)]
pub fn path_without(dir: &Path, without: &[&str]) -> PathBuf {
    let bin = dir.join("path-without");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let name = e.file_name();
            let link = bin.join(&name);
            if without.iter().any(|w| name == **w) || link.symlink_metadata().is_ok() {
                continue;
            }
            std::os::unix::fs::symlink(e.path(), link).unwrap();
        }
    }
    bin
}
