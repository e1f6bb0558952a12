//! Hostile paths (issue 13, third round): a caller's home outside `/home` is hidden from
//! package code; `-o` and `--html` never write into another user's FIFO nor hang on one with
//! no reader; promotion only moves refs in the workspace's own OSTree repository (or the
//! configured shared one). Each fixture under `tests/hostile/` has the promise it checks in
//! its `PROMISE` file.

mod common;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, tool::BASE, tool::COMPOSE];

use common::promote::*;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// A manifest to report on, saved in the scratch area.
fn a_manifest(w: &Ws) -> PathBuf {
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    w.save("built.json", &r.manifest())
}

/// A shared directory (mode 1777, the caller's, as /tmp is root's) holding a FIFO that uid
/// 65534 made.
fn shared_with_anothers_fifo(w: &Ws, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let shared = w.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fifo = shared.join(name);
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    std::os::unix::fs::lchown(&fifo, Some(65534), Some(65534)).unwrap();
    fifo
}

/// A reader already on `fifo` (so a writer would not block), which never blocks itself.
fn nonblocking_reader(fifo: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap()
}

/// Runs fci, killing it after `limit`: None when it had to be killed.
fn run_bounded(mut c: std::process::Command, limit: Duration) -> Option<Run> {
    use std::process::Stdio;
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(Run::from(child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn outputs_never_go_into_another_users_fifo_in_a_shared_directory() {
    use std::io::Read;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to chown a FIFO to another user");
        return;
    }
    let w = Ws::new();
    let m = a_manifest(&w);
    for (flag, name) in [("-o", "theirs.json"), ("--html", "theirs.html")] {
        let fifo = shared_with_anothers_fifo(&w, name);
        let mut reader = nonblocking_reader(&fifo);
        let mut c = w.cmd();
        c.args([
            "report",
            "-m",
            m.to_str().unwrap(),
            flag,
            fifo.to_str().unwrap(),
        ]);
        let r = run_bounded(c, Duration::from_secs(60)).expect("fci report returned");
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.contains(&fifo.display().to_string()) && r.stderr.contains("uid 65534"),
            "{flag}: {}",
            r.stderr
        );
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "{flag}: uid 65534 received {} bytes",
            got.len()
        );
    }
}

#[test]
fn an_output_fifo_with_no_reader_is_an_error_not_a_hang() {
    let w = Ws::new();
    let m = a_manifest(&w);
    let fifo = w.path().join("mine.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut c = w.cmd();
    c.args([
        "report",
        "-m",
        m.to_str().unwrap(),
        "-o",
        fifo.to_str().unwrap(),
    ]);
    let started = Instant::now();
    let r =
        run_bounded(c, Duration::from_secs(60)).expect("fci report hung on a FIFO with no reader");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&fifo.display().to_string()) && r.stderr.contains("no reader"),
        "{}",
        r.stderr
    );
    // The caller's own FIFO with a reader still takes the output.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "-o",
        fifo.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: serde_json::Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert!(got["stages"].is_array(), "{got:#}");
}

/// Gating on what build and compose record (as tests/hostile_binding.rs).
fn known_good(repo: &Path) -> String {
    known_good_in(repo)
}

fn promote(w: &Ws, m: &serde_json::Value, name: &str) -> Run {
    promote_with(w, m, name, COMPOSE_GATING)
}

#[test]
fn promotion_only_checks_and_moves_the_workspaces_own_ostree_repository() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "--branch", "f41", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let m = c.manifest();
    let own = w.ws().join("ostree/repo");
    // A copy of the repository elsewhere in the workspace (as package code could leave one,
    // with forged metadata, among a test's stored artifacts).
    let copy = w.ws().join("stored/forged-repo");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&own)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let mut edited = m.clone();
    for a in edited["artifacts"].as_array_mut().unwrap() {
        if a["type"] == "ostree-commit" {
            a["path"] = "stored/forged-repo".into();
        }
    }
    let r = promote(&w, &edited, "elsewhere.json");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    for word in ["elsewhere.json", "stored/forged-repo", "ostree/repo"] {
        assert!(r.stderr.contains(word), "`{word}` not in: {}", r.stderr);
    }
    assert_eq!(known_good(&own), base, "known-good moved");
    assert_eq!(known_good(&copy), base, "the copy's known-good moved");
    assert!(!w.ws().join("state/known-good/f41.json").exists());

    // The honest manifest, naming the workspace's repository, promotes.
    let r = promote(&w, &m, "honest.json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(known_good(&own), base);
}

/// fci itself, under an address-space cap (so the old code's unbounded read fails the test
/// instead of the host), in workspace `ws`.
fn fci_capped(ws: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("prlimit");
    c.arg("--as=8589934592")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(ws)
        .arg("--quiet");
    c.stdin(std::process::Stdio::null());
    c
}

#[test]
fn a_git_file_another_user_planted_above_a_checkout_is_never_read() {
    require(&[("prlimit", "util-linux")], "the planted .git test");
    let w = Ws::new();
    // Another user's FIFO named .git in a shared directory above the checkout: never opened
    // for a read that blocks.
    let dotgit = shared_with_anothers_fifo(&w, ".git");
    let co = dotgit.parent().unwrap().join("co");
    fci::suites::runner::copy_tree(&example("hello-atomic"), &co).unwrap();
    let la = lookaside();
    let mut c = fci_capped(&w.ws());
    c.args([
        "build",
        co.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
    ]);
    let r = run_bounded(c, Duration::from_secs(120)).expect("a planted .git FIFO hung fci build");
    assert_eq!(r.code, 0, "{}{}", r.stderr, r.stdout);
    let built = w.save("planted-git.json", &r.manifest());
    // The same .git as another user's link to /dev/zero: never read (it would fill memory).
    std::fs::remove_file(&dotgit).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &dotgit).unwrap();
    std::os::unix::fs::lchown(&dotgit, Some(65534), Some(65534)).unwrap();
    let mut c = fci_capped(&w.ws());
    c.args(["test", "-m", built.to_str().unwrap()]).args([
        "--tests-from",
        co.to_str().unwrap(),
        "--no-cache",
    ]);
    let t = run_bounded(c, Duration::from_secs(180)).expect("a planted .git hung fci test");
    assert_eq!(t.code, 0, "{}{}", t.stderr, t.stdout);
}

#[test]
fn a_workspace_another_user_made_or_anyone_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    let shared = w.path().join("shared-ws");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = w.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let example = example("hello-atomic");
    let run = |ws: &Path| {
        let mut c = fci_capped(ws);
        c.args(["build", example.to_str().unwrap(), "--branch", "f41"]);
        run_bounded(c, Duration::from_secs(60)).expect("fci hung")
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    // Another user's workspace, its tmp/ a link to the victim: refused before any write.
    let theirs = shared.join("ws");
    std::fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::symlink(&victim, theirs.join("tmp")).unwrap();
    std::os::unix::fs::lchown(theirs.join("tmp"), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
    let r = run(&theirs);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to uid 65534"), "{}", r.stderr);
    assert_eq!(
        mode(&victim),
        0o755,
        "fci chmodded through another user's link"
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    // One's own workspace that every user may write to: refused.
    let open = w.path().join("open-ws");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run(&open);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("writable by every user"), "{}", r.stderr);
    // One's own workspace whose cache/ is a link: refused, nothing written through it.
    let linked = w.path().join("linked-ws");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&victim, linked.join("cache")).unwrap();
    let r = run(&linked);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cache/ is a symbolic link"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}

#[test]
fn a_shared_ostree_repository_another_user_can_replace_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    let shared = w.path().join("shared-repo");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let parent = shared.join("repo-parent");
    std::fs::create_dir_all(&parent).unwrap();
    let repo = parent.join("repo");
    let run = |ws: &str| {
        let mut c = fci_capped(&w.path().join(ws));
        c.args(["base", "init", "/nonexistent-base", "--branch", "f41"])
            .arg("--ostree-repo")
            .arg(&repo);
        run_bounded(c, Duration::from_secs(60)).expect("fci hung")
    };
    // Another user's directory above the repository: they could swap the known-good base.
    std::os::unix::fs::lchown(&parent, Some(65534), Some(65534)).unwrap();
    let r = run("ws1");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to uid 65534"), "{}", r.stderr);
    // One's own, but writable by everyone (not sticky): refused too.
    std::os::unix::fs::lchown(&parent, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run("ws2");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("writable by other users"), "{}", r.stderr);
    // One's own, private: accepted (the base is what is missing now).
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run("ws3");
    assert!(r.stderr.contains("nonexistent-base"), "{}", r.stderr);
}

/// rpmbuild writes the binary packages through a link package code put in place of RPMS:
/// fci reads none of them, and the build is the package's failure, not a PASSED with its
/// source package alone.
#[test]
fn a_build_that_replaces_its_rpms_directory_is_failed() {
    let w = Ws::new();
    let dir = hostile("rpms-dir-link-build");
    let r = w.run(&["build", dir.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        b["notes"].to_string().contains(
            "package code replaced the build's RPMS directory (with a link?): its packages cannot be read as the build's"
        ),
        "{b:#}"
    );
}
