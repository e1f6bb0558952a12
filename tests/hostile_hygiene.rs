//! Hostile input to outputs, errors and `fci watch`'s kept messages (issue 13, findings 7–10
//! and the watch part of 8): a link another user planted in a shared directory, a ref file
//! linked out of the repository, newlines in a message's fields, huge and flooded messages,
//! and a bogus kept message in front of real ones. Each fixture under `tests/hostile/` has
//! the promise it checks in its `PROMISE` file.

mod common;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: common::Needs = &[&[common::tool::GIT]];

use common::distgit::{git, DistGit, ALICE};
use common::Ws;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The promise a fixture checks (its `PROMISE` file), which must exist.
fn promise(name: &str) -> String {
    let p = common::repo_root()
        .join("tests/hostile")
        .join(name)
        .join("PROMISE");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn config(dir: &Path, packages: &str, branches: &str) -> PathBuf {
    let p = dir.join("fci.yaml");
    std::fs::write(
        &p,
        format!("dist_git: ./rpms\nbranches: {branches}\npackages: {packages}\n"),
    )
    .unwrap();
    p
}

/// A git.receive body as the dist-git hook sends it.
fn git_receive(package: &str, branch: &str, rev: &str) -> Value {
    json!({
        "agent": "alice",
        "commit": {
            "name": ALICE.0, "email": ALICE.1, "username": "alice",
            "summary": "a change", "message": "a change\n",
            "stats": {"files": {}, "total": {"additions": 1, "deletions": 0, "lines": 1, "files": 1}},
            "rev": rev, "path": format!("/srv/git/rpms/{package}.git"),
            "repo": package, "namespace": "rpms", "branch": branch,
            "patch": "", "date": "2026-12-01T12:00:00+00:00",
            "url": format!("https://src.example.org/rpms/{package}/c/{rev}"),
        }
    })
}

fn watch(w: &Ws, cfg: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["watch", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn kept(w: &Ws) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(w.ws().join("state/watch/pending")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

/// A 40-hex commit id no repository has.
fn bogus_rev(i: usize) -> String {
    format!("{:040x}", 0xdead_0000_u64 + i as u64)
}

/// A manifest from `fci watch` (cheap to make), its watch record marked FAILED: `fci report`
/// on it writes `-o` and `--html` without building anything.
fn a_manifest(w: &Ws) -> PathBuf {
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "[tally]", "[f41]");
    let r = watch(w, &cfg, &["--once", "--emit-existing"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // As fci wrote it: a report checks a recorded run's manifest against fci's records.
    let m: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    w.save("watched.json", &m)
}

fn lchown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

/// What the kernel itself does about links in sticky directories (0: nothing).
fn protected_symlinks() -> String {
    std::fs::read_to_string("/proc/sys/fs/protected_symlinks")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn an_output_through_another_users_link_in_a_shared_directory_is_refused() {
    let _ = promise("planted-output-link");
    // As root: only root can plant a link owned by another user.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to chown a link to another user");
        return;
    }
    let w = Ws::new();
    let m = a_manifest(&w);
    let shared = w.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = w.path().join("victim");
    std::fs::write(&victim, "root:x:0:0::/root:/bin/sh\n").unwrap();
    let kernel = protected_symlinks();
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "-m", m.to_str().unwrap()];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    // Another user's link, for each output a user names: -o, --html, watch's --output-dir.
    let planted = shared.join("x.json");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    lchown(&planted, 65534);
    for flag in ["-o", "--html"] {
        let r = report(&[flag, planted.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        // fci's own refusal, whatever the kernel would do (fs.protected_symlinks = {kernel}).
        assert!(
            r.stderr.contains("refusing to follow the symbolic link")
                && r.stderr.contains(planted.to_str().unwrap())
                && r.stderr.contains("uid 65534"),
            "{flag} (fs.protected_symlinks = {kernel}): {}",
            r.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root:x:0:0::/root:/bin/sh\n",
            "{flag}: the file the link points at is untouched"
        );
        assert!(std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    // A link on the way counts too: shared/d -> a directory of the victim's.
    let victim_dir = w.path().join("etc");
    std::fs::create_dir(&victim_dir).unwrap();
    let dlink = shared.join("d");
    std::os::unix::fs::symlink(&victim_dir, &dlink).unwrap();
    lchown(&dlink, 65534);
    let r = report(&["-o", dlink.join("out.json").to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("refusing to follow"), "{}", r.stderr);
    let d = DistGit {
        rpms: w.path().join("rpms"),
        work: w.path().join("work"),
    };
    let new = d.push("tally", "f41", ALICE, "tally: pushed");
    let msg = w.save("push.json", &git_receive("tally", "f41", &new));
    let cfg = w.path().join("fci.yaml");
    let r = watch(
        &w,
        &cfg,
        &[
            "--message",
            msg.to_str().unwrap(),
            "--output-dir",
            dlink.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("refusing to follow"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
    // The workspace and a shared OSTree repository are outputs too.
    let r: common::Run = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(&dlink)
        .args(["report", "-m", m.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("refusing to follow"), "{}", r.stderr);
    let r = w.run(&[
        "compose",
        "-m",
        m.to_str().unwrap(),
        "--ostree-repo",
        dlink.join("repo").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("refusing to follow"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);

    // The caller's own link in the same directory is followed (as the kernel's rule has it):
    // the file it points at is replaced, the link stays.
    let mine = w.path().join("mine.json");
    std::fs::write(&mine, "old").unwrap();
    let own = shared.join("own.json");
    std::os::unix::fs::symlink(&mine, &own).unwrap();
    let r = report(&[
        "-o",
        own.to_str().unwrap(),
        "--html",
        shared.join("p.html").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out: Value = serde_json::from_str(&std::fs::read_to_string(&mine).unwrap()).unwrap();
    assert_eq!(out["subject"]["package"], "tally");
    assert!(std::fs::symlink_metadata(&own)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(shared.join("p.html"))
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    // So is one owned by the directory's owner (a sticky directory another user owns).
    let theirs = w.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o1777)).unwrap();
    lchown(&theirs, 65534);
    let owner_link = theirs.join("o.json");
    std::os::unix::fs::symlink(&mine, &owner_link).unwrap();
    lchown(&owner_link, 65534);
    std::fs::write(&mine, "old").unwrap();
    let r = report(&["-o", owner_link.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(std::fs::read_to_string(&mine).unwrap(), "old");

    // A FIFO in the shared directory and /dev/stdout (a pipe) still take the output.
    let fifo = shared.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = report(&["-o", fifo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(got["subject"]["package"], "tally");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let r = report(&["-o", "/dev/stdout"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(got["subject"]["package"], "tally");
    // /dev/null stays a device.
    let r = report(&["-o", "/dev/null"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_ref_file_linked_out_of_the_repository_is_named_never_quoted() {
    let _ = promise("packed-refs-link");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "[tally]", "[f41]");
    let bare = d.rpms.join("tally.git");
    git(&bare, ALICE, &["pack-refs", "--all"]);
    assert!(!bare.join("refs/heads/f41").exists());
    // A secret outside the repository, shaped like /etc/shadow.
    let secret = w.path().join("shadow");
    std::fs::write(&secret, "root:$6$S3CRETHASH$abc:19000:0:99999:7:::\n").unwrap();
    std::fs::remove_file(bare.join("packed-refs")).unwrap();
    std::os::unix::fs::symlink(&secret, bare.join("packed-refs")).unwrap();
    for mode in [&["--once"][..], &["--once", "--emit-existing"][..]] {
        let r = watch(&w, &cfg, mode);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(!r.stderr.contains("S3CRETHASH"), "{}", r.stderr);
        assert!(
            r.stderr
                .contains("packed-refs: a symbolic link out of the repository"),
            "{}",
            r.stderr
        );
    }
    // The message path reads the same repository the same way.
    let m = w.save("m.json", &git_receive("tally", "f41", &bogus_rev(0)));
    let r = watch(&w, &cfg, &["--message", m.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!r.stderr.contains("S3CRETHASH"), "{}", r.stderr);
    assert!(
        r.stderr.contains("a symbolic link out of the repository"),
        "{}",
        r.stderr
    );
    // A loose ref linked out is refused the same way.
    std::fs::remove_file(bare.join("packed-refs")).unwrap();
    std::os::unix::fs::symlink(&secret, bare.join("refs/heads/f41")).unwrap();
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!r.stderr.contains("S3CRETHASH"), "{}", r.stderr);
    assert!(
        r.stderr.contains("refs/heads/f41: a symbolic link out"),
        "{}",
        r.stderr
    );
}

/// `fci watch` in workspace `w`, killed after a minute: None when it had to be killed (a
/// hang).
fn watch_bounded(w: &Ws, cfg: &Path, extra: &[&str]) -> Option<common::Run> {
    use std::process::Stdio;
    let mut child = w
        .cmd()
        .args(["watch", "--config", cfg.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(common::Run::from(child.wait_with_output().unwrap()));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_repository_file_that_is_a_fifo_or_huge_is_named_never_read() {
    let _ = promise("repo-fifo-or-huge");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    d.package("other", &["f41"]);
    let cfg = config(w.path(), "[tally, other]", "[f41]");
    let bare = d.rpms.join("tally.git");
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    };
    type Plant<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Plant); 4] = [
        ("config", &|p: &Path| mkfifo(p)),
        ("packed-refs", &|p: &Path| mkfifo(p)),
        ("refs/heads/f41", &|p: &Path| mkfifo(p)),
        // 1 GiB, sparse: 4 KiB on disk, read whole it took 3 GiB of memory.
        ("config", &|p: &Path| {
            std::fs::File::create(p).unwrap().set_len(1 << 30).unwrap()
        }),
    ];
    for (file, plant) in cases {
        let p = bare.join(file);
        let saved = w.path().join("saved");
        let _ = std::fs::remove_file(&saved);
        if p.exists() {
            std::fs::rename(&p, &saved).unwrap();
        }
        plant(&p);
        // Each case from a first poll, so that the other package is emitted again.
        let _ = std::fs::remove_dir_all(w.ws().join("state/watch"));
        let r = watch_bounded(&w, &cfg, &["--once", "--emit-existing"])
            .unwrap_or_else(|| panic!("{file} hung fci watch"));
        assert_eq!(r.code, 3, "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{file}: ")),
            "{file}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("not read"), "{file}: {}", r.stderr);
        // The other package is not held back.
        assert!(r.stdout.contains("other"), "{file}: {}", r.stdout);
        std::fs::remove_file(&p).unwrap();
        if saved.exists() {
            std::fs::rename(&saved, &p).unwrap();
        }
    }
}

#[test]
fn newlines_in_a_message_cannot_forge_lines_on_stderr() {
    let _ = promise("forged-lines");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "[tally]", "[f41]");
    let head = git(&d.rpms.join("tally.git"), ALICE, &["rev-parse", "f41"]);
    let forged = "\nfci: error: FORGED line\r\x1b[2K";
    let mut ignored = git_receive("tally", "f41", &head);
    ignored["commit"]["namespace"] = json!(format!("rpms{forged}"));
    let mut unfollowed = git_receive("tally", "f41", &head);
    unfollowed["commit"]["branch"] = json!(format!("f99{forged}"));
    let mut bad = git_receive("tally", "f41", &head);
    bad["commit"]["rev"] = json!(format!("{head}{forged}"));
    let mut bad_repo = git_receive("tally", "f41", &head);
    bad_repo["commit"]["repo"] = json!(format!("tally{forged}"));
    for (name, m) in [
        ("ignored", ignored),
        ("unfollowed", unfollowed),
        ("bad-rev", bad),
        ("bad-repo", bad_repo),
    ] {
        let p = w.save(&format!("{name}.json"), &m);
        // Not --quiet: the notes are printed too.
        let out = Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(w.ws())
            .args(["watch", "--config", cfg.to_str().unwrap(), "--message"])
            .arg(&p)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains('\r') && !stderr.contains('\x1b'),
            "{name}: {stderr:?}"
        );
        for line in stderr.lines() {
            assert!(
                line.starts_with("fci: "),
                "{name}: a line not fci's: {stderr:?}"
            );
            assert!(
                !line.starts_with("fci: error: FORGED"),
                "{name}: {stderr:?}"
            );
        }
        // Shown, escaped, inside one of fci's lines.
        assert!(
            stderr
                .to_lowercase()
                .contains("fci: error: forged line\\r\\x1b[2k"),
            "{name}: {stderr:?}"
        );
    }
}

#[test]
fn a_bogus_kept_message_does_not_hold_back_the_real_ones() {
    let _ = promise("bogus-kept-message");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41", "f42"]);
    let cfg = config(w.path(), "[tally]", "[f41, f42]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    // First a message naming a commit the repository never gets.
    let bogus = w.save("bogus.json", &git_receive("tally", "f41", &bogus_rev(1)));
    let r = watch(&w, &cfg, &["--message", bogus.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    // Then a real one that comes before its branch has caught up.
    let r41 = d.push("tally", "f41", ALICE, "tally: for both");
    let real = w.save("real.json", &git_receive("tally", "f42", &r41));
    let r = watch(&w, &cfg, &["--message", real.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(kept(&w).len(), 2);
    git(
        &d.work.join("tally"),
        ALICE,
        &[
            "push",
            "-q",
            "--force",
            "origin",
            &format!("{r41}:refs/heads/f42"),
        ],
    );
    // The next message run: the bogus kept message fails again, the real one is acted on.
    let f41 = w.save("f41.json", &git_receive("tally", "f41", &r41));
    let r = watch(&w, &cfg, &["--message", f41.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let branches: Vec<String> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["subject"]["branch"].to_string())
        .collect();
    assert!(branches.contains(&"\"f42\"".to_string()), "{branches:?}");
    let left = kept(&w);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["rev"], bogus_rev(1));
}

#[test]
fn the_kept_message_spool_is_bounded_and_says_what_it_drops() {
    let _ = promise("flooded-spool");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    // `ghost` has no repository yet: every push for it is kept.
    let cfg = config(w.path(), "[tally, ghost]", "[f41, f42]");
    let send = |name: &str, m: &Value| {
        let p = w.save(name, m);
        watch(&w, &cfg, &["--message", p.to_str().unwrap()])
    };
    // The same push twice, as two messages (another id): kept once.
    let body = git_receive("ghost", "f41", &bogus_rev(0));
    let wrapped =
        json!({"topic": "org.fedoraproject.prod.git.receive", "id": "first-copy", "body": body});
    let r = send("m0.json", &wrapped);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(send("m0b.json", &body).code, 3);
    assert_eq!(kept(&w).len(), 1, "one push, kept once");
    // 16 per package: the 17th push drops the oldest, saying which.
    for i in 1..16 {
        assert_eq!(
            send("m.json", &git_receive("ghost", "f41", &bogus_rev(i))).code,
            3
        );
    }
    assert_eq!(kept(&w).len(), 16);
    let r = send("m.json", &git_receive("ghost", "f42", &bogus_rev(16)));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "dropped the kept message of ghost f41 {} (message id first-copy)",
            bogus_rev(0)
        )) && r.stderr.contains("at most 16 messages"),
        "{}",
        r.stderr
    );
    let k = kept(&w);
    assert_eq!(k.len(), 16);
    assert!(k.iter().all(|d| d["rev"] != bogus_rev(0)));
    assert!(k.iter().any(|d| d["rev"] == bogus_rev(16)));
    // A newer push to a branch with a kept message replaces that branch's oldest first.
    let r = send("m.json", &git_receive("ghost", "f42", &bogus_rev(17)));
    assert!(
        r.stderr.contains(&format!(
            "dropped the kept message of ghost f42 {}",
            bogus_rev(16)
        )),
        "{}",
        r.stderr
    );
    let k = kept(&w);
    assert_eq!(k.len(), 16);
    assert!(k.iter().any(|d| d["rev"] == bogus_rev(1)));

    // 1000 in all: a full spool keeps no more, and says which message it did not keep. (The
    // spool is filled with copies of a kept file, as a thousand packages' pushes leave it.)
    let dir = w.ws().join("state/watch/pending");
    let sample = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for i in 0..(1000 - 16) {
        std::fs::copy(
            &sample,
            dir.join(format!("20000101T000000.{i:06}-x-y-{i:016x}.json")),
        )
        .unwrap();
    }
    let r = send("m.json", &git_receive("tally", "f41", &bogus_rev(99)));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("the message of tally f41 {}", bogus_rev(99)))
            && r.stderr.contains("not kept")
            && r.stderr.contains("the limit is 1000"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1000);
}

#[test]
fn a_huge_message_from_the_broker_is_reported_taken_off_and_not_kept() {
    use common::rabbitmq::{publish_git_receive, Broker};
    let _ = promise("huge-message");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "[tally, ghost]", "[f41]");
    let broker = Broker::start(&w.path().join("rabbitmq"));
    let url = broker.url();
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A valid push for a package without a repository (so it would be kept), carrying 2 MiB.
    let mut big = git_receive("ghost", "f41", &bogus_rev(7));
    big["commit"]["patch"] = json!("+".repeat(2 << 20));
    let small = git_receive("ghost", "f41", &bogus_rev(8));
    publish_git_receive(
        &broker,
        &json!([
            {"topic": "org.fedoraproject.prod.git.receive", "raw": big.to_string()},
            small,
        ]),
    );
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than the limit of 1048576 bytes")
            && r.stderr.contains("not kept"),
        "{}",
        r.stderr
    );
    let k = kept(&w);
    assert_eq!(k.len(), 1, "only the small one is kept");
    assert_eq!(k[0]["rev"], bogus_rev(8));
    // Taken off the queue: the next run does not see it again.
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert!(!r.stderr.contains("larger than the limit"), "{}", r.stderr);
    // From a file, the same limit.
    let f = w.path().join("big.json");
    std::fs::write(&f, big.to_string()).unwrap();
    let r = watch(&w, &cfg, &["--message", f.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("limit of 1048576 bytes"), "{}", r.stderr);
    // One an earlier fci kept (no limit then) is dropped, saying so, never acted on again.
    let legacy = w
        .ws()
        .join("state/watch/pending/20261201T000000.000000-0123456789abcdef.json");
    std::fs::write(
        &legacy,
        json!({"kept_at": "2026-12-01T00:00:00+00:00", "routing_key": "git.receive",
               "message_id": null, "message": big.to_string()})
        .to_string(),
    )
    .unwrap();
    let small = w.save("small.json", &git_receive("tally", "f41", &bogus_rev(9)));
    let r = watch(&w, &cfg, &["--message", small.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("dropped the kept message") && r.stderr.contains("over the limit"),
        "{}",
        r.stderr
    );
    assert!(!legacy.exists());
}

/// A `git daemon` serving `base` on loopback, killed (its whole group) on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn git_daemon(base: &Path) -> (Daemon, u16) {
    use std::os::unix::process::CommandExt;
    let port = common::free_port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("git daemon (part of Debian's git package)");
    let d = Daemon(child);
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 10, "git daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (d, port)
}

#[test]
fn a_dist_git_server_that_floods_its_answer_is_cut_at_the_limit() {
    let _ = promise("ref-flood");
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    d.package("flood", &["f41"]);
    // 30,000 refs whose tail is `refs/heads/f41`: `git ls-remote URL refs/heads/f41` prints
    // them all (2.3 MB), as a hostile server's answer can be any size.
    let bare = d.rpms.join("flood.git");
    git(&bare, ALICE, &["pack-refs", "--all"]);
    let head = git(&bare, ALICE, &["rev-parse", "f41"]);
    let mut refs = std::fs::read_to_string(bare.join("packed-refs")).unwrap();
    for i in 0..30_000 {
        refs.push_str(&format!("{head} refs/heads/pad/{i:06}/refs/heads/f41\n"));
    }
    std::fs::write(bare.join("packed-refs"), refs).unwrap();
    let (_daemon, port) = git_daemon(&d.rpms);
    let cfg = w.path().join("fci.yaml");
    std::fs::write(
        &cfg,
        format!("dist_git: git://127.0.0.1:{port}\nbranches: [f41]\npackages: [tally, flood]\n"),
    )
    .unwrap();
    let r = watch(&w, &cfg, &["--once", "--emit-existing"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("flood.git: git ls-remote")
            && r.stderr.contains("larger than the limit of 1048576 bytes"),
        "{}",
        r.stderr
    );
    // The other package is emitted.
    let ms: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ms.len(), 1, "{}", r.stdout);
    assert_eq!(ms[0]["subject"]["package"], "tally");
}
