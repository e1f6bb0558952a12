//! `fci watch` end to end: real git repositories made here (several packages and branches,
//! pushes by two authors, a force-push, packed refs), polled in place and over a git daemon on
//! loopback, and push messages published with fedora-messaging through a real RabbitMQ.

mod common;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: common::Needs = &[
    common::tool::BUILD,
    &[common::tool::GIT, common::tool::CHATTR],
];

use common::distgit::{git, DistGit, ALICE, BOB};
use common::{assert_valid, free_port, Ws};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn config(dir: &Path, dist_git: &str, branches: &str, packages: &str) -> PathBuf {
    let p = dir.join("fci.yaml");
    std::fs::write(
        &p,
        format!("dist_git: {dist_git}\nbranches: {branches}\npackages: {packages}\n"),
    )
    .unwrap();
    p
}

/// The manifests of a run that wrote JSON lines.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert_valid(&v);
            v
        })
        .collect()
}

fn by_package<'a>(ms: &'a [Value], p: &str) -> &'a Value {
    ms.iter()
        .find(|m| m["subject"]["package"] == p)
        .unwrap_or_else(|| panic!("no manifest for {p}: {ms:#?}"))
}

fn watch(w: &Ws, cfg: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["watch", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn heads_state(w: &Ws) -> Value {
    serde_json::from_str(&std::fs::read_to_string(w.ws().join("state/watch/heads.json")).unwrap())
        .unwrap()
}

#[test]
fn a_poll_records_heads_first_then_emits_one_manifest_per_change() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41", "f42"]);
    d.package("other", &["f41"]);
    // A packager's checkout as the dist-git repository itself (`<package>/`, not bare).
    git(
        w.path(),
        ALICE,
        &[
            "clone",
            "-q",
            "-b",
            "f41",
            d.rpms.join("tally.git").to_str().unwrap(),
            d.rpms.join("hello").to_str().unwrap(),
        ],
    );
    let cfg = config(w.path(), "./rpms", "[f41, f42]", "[tally, hello]");

    let first = watch(&w, &cfg, &["--once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.is_empty(),
        "a first poll emits nothing: {}",
        first.stdout
    );
    let seen = heads_state(&w);
    assert_eq!(seen["heads"]["tally/f41"]["commit"], d.head("tally", "f41"));
    assert_eq!(seen["heads"]["tally/f42"]["commit"], d.head("tally", "f42"));
    assert!(seen["heads"]["other/f41"].is_null(), "unmonitored: {seen}");

    // Two packagers push at once (Alice twice in one push), and an unmonitored package moves.
    let clone = d.work.join("tally");
    git(&clone, ALICE, &["checkout", "-q", "f41"]);
    for msg in ["tally: fix the build", "tally: new upstream release"] {
        let f = clone.join("tally.spec");
        let t = std::fs::read_to_string(&f).unwrap() + msg + "\n";
        std::fs::write(&f, t).unwrap();
        git(&clone, ALICE, &["commit", "-q", "-am", msg]);
    }
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    let tally_new = d.head("tally", "f41");
    let hello = d.rpms.join("hello");
    std::fs::write(hello.join("hello.spec"), "# hello\n").unwrap();
    git(&hello, BOB, &["add", "-A"]);
    git(
        &hello,
        BOB,
        &["commit", "-q", "-m", "hello: enable the tests"],
    );
    let hello_new = git(&hello, BOB, &["rev-parse", "HEAD"]);
    d.push("other", "f41", BOB, "other: not watched");

    let second = watch(&w, &cfg, &["--once"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let ms = lines(&second.stdout);
    assert_eq!(ms.len(), 2, "one manifest per change: {ms:#?}");
    let t = by_package(&ms, "tally");
    assert_eq!(
        t["subject"]["commit"],
        tally_new.as_str(),
        "the newest is the subject"
    );
    assert_eq!(t["subject"]["branch"], "f41");
    assert_eq!(
        t["subject"]["repo"],
        d.rpms
            .join("tally.git")
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(t["subject"]["base"]["ostree_ref"], "fci/f41/known-good");
    let rec = &t["stages"][0];
    assert_eq!(rec["name"], "watch");
    assert_eq!(rec["outcome"], "PASSED");
    let range = &rec["data"]["range"];
    assert_eq!(range["from"], seen["heads"]["tally/f41"]["commit"]);
    assert_eq!(range["to"], tally_new.as_str());
    assert_eq!(range["forced"], false);
    let commits = range["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 2, "{range}");
    assert_eq!(commits[0]["id"], tally_new.as_str());
    assert_eq!(commits[0]["summary"], "tally: new upstream release");
    assert_eq!(commits[1]["summary"], "tally: fix the build");
    assert_eq!(commits[0]["author"], ALICE.0);
    let h = by_package(&ms, "hello");
    assert_eq!(h["subject"]["commit"], hello_new.as_str());
    assert_eq!(
        h["stages"][0]["data"]["range"]["commits"][0]["author"],
        BOB.0
    );
    // Each change alone, in its own run: nothing of one is in the other.
    assert_ne!(t["run"]["id"], h["run"]["id"]);
    let cfg_text = std::fs::read(&cfg).unwrap();
    assert_eq!(
        t["run"]["config"]["sha256"],
        fci::digest::sha256_bytes(&cfg_text)
    );

    let third = watch(&w, &cfg, &["--once"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stdout.is_empty(), "nothing new: {}", third.stdout);
}

#[test]
fn a_force_push_is_one_run_for_the_new_head_and_packed_refs_are_read() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let bare = d.rpms.join("tally.git");
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally]");
    d.push("tally", "f41", ALICE, "tally: one");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    let before = d.head("tally", "f41");

    // Packed: the branch lives in packed-refs alone now.
    git(&bare, ALICE, &["pack-refs", "--all", "--prune"]);
    assert!(!bare.join("refs/heads/f41").exists());
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "the same head, packed: {}", r.stdout);

    // Bob rewrites the branch: drops Alice's commit and force-pushes his own.
    let clone = d.work.join("tally");
    git(&clone, BOB, &["checkout", "-q", "f41"]);
    git(&clone, BOB, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(clone.join("tally.spec"), "# rewritten\n").unwrap();
    git(
        &clone,
        BOB,
        &["commit", "-q", "-am", "tally: rewritten history"],
    );
    git(&clone, BOB, &["push", "-q", "--force", "origin", "f41"]);
    git(&bare, ALICE, &["pack-refs", "--all", "--prune"]);
    let after = d.head("tally", "f41");
    assert_ne!(before, after);

    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0]["subject"]["commit"], after.as_str());
    let range = &ms[0]["stages"][0]["data"]["range"];
    assert_eq!(range["forced"], true, "{range}");
    assert_eq!(range["from"], before.as_str());
    let commits = range["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 1, "only Bob's commit is new: {range}");
    assert_eq!(commits[0]["author"], BOB.0);
    assert!(ms[0]["stages"][0]["notes"][0]
        .as_str()
        .unwrap()
        .contains("force-pushed"));
    let again = watch(&w, &cfg, &["--once"]);
    assert!(again.stdout.is_empty(), "{}", again.stdout);
}

#[test]
fn emit_existing_writes_a_file_per_change_and_an_excluded_change_is_not_queued() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    d.package("hello", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally, hello]");
    // The report excluded hello's head earlier (its gating failed).
    let excluded = w.ws().join("state/excluded");
    std::fs::create_dir_all(&excluded).unwrap();
    let hello_head = d.head("hello", "f41");
    std::fs::write(
        excluded.join("f41.json"),
        json!([{"package": "hello", "nvr": "hello-1-1.fc41", "run": "run-7",
                "dist_git_commit": hello_head, "unsatisfied": []}])
        .to_string(),
    )
    .unwrap();
    let kg = w.ws().join("state/known-good");
    std::fs::create_dir_all(&kg).unwrap();
    std::fs::write(
        kg.join("f41.json"),
        json!({"bash": {"nevras": ["bash-5.2.26-1.fc41.x86_64"]}}).to_string(),
    )
    .unwrap();
    let out = w.path().join("queue");
    let r = watch(
        &w,
        &cfg,
        &[
            "--once",
            "--emit-existing",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "hello is excluded: {files:?}");
    let tally = d.head("tally", "f41");
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("tally-f41-{tally}.json"))).unwrap(),
    )
    .unwrap();
    assert_valid(&m);
    assert_eq!(m["subject"]["commit"], tally.as_str());
    assert_eq!(
        m["subject"]["base"]["packages"],
        json!(["bash-5.2.26-1.fc41.x86_64"]),
        "the known-good package set is the base"
    );
    // Recorded as seen, so the excluded change is not reported again on every poll.
    let r2 = watch(&w, &cfg, &["--once"]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert!(r2.stdout.is_empty());
    assert_eq!(
        heads_state(&w)["heads"]["hello/f41"]["commit"],
        hello_head.as_str()
    );
}

#[test]
fn an_excluded_change_is_reported_on_stderr() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("hello", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[hello]");
    let excluded = w.ws().join("state/excluded");
    std::fs::create_dir_all(&excluded).unwrap();
    std::fs::write(
        excluded.join("f41.json"),
        json!([{"package": "hello", "run": "run-7", "dist_git_commit": d.head("hello", "f41")}])
            .to_string(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["watch", "--once", "--emit-existing", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("excluded by run run-7: not queued again"),
        "{stderr}"
    );
}

#[test]
fn state_moves_only_after_the_manifest_is_out() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    let state_file = w.ws().join("state/watch/heads.json");
    let before = std::fs::read(&state_file).unwrap();
    let new = d.push("tally", "f41", ALICE, "tally: a change");
    let out = w.path().join("queue");
    let name = format!("tally-f41-{new}.json");

    // The manifest cannot be written (a directory where its file goes): state stays.
    std::fs::create_dir_all(out.join(&name).join("in-the-way")).unwrap();
    let r = watch(&w, &cfg, &["--once", "--output-dir", out.to_str().unwrap()]);
    assert_eq!(
        r.code, 3,
        "the machine's failure, not bad input: {}",
        r.stderr
    );
    assert!(r.stderr.contains(&new), "{}", r.stderr);
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        before,
        "state not advanced"
    );
    std::fs::remove_dir_all(out.join(&name)).unwrap();

    // A crash between the manifest and the state (the state cannot be replaced, like a kill
    // at that moment): the manifest is out, the state is not, and the next poll emits the
    // change again rather than losing it.
    let chattr = |flag: &str| {
        let st = Command::new("chattr").arg(flag).arg(&state_file).status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "chattr {flag} failed: the test needs e2fsprogs' chattr on an ext4 /tmp (apt-get install -y e2fsprogs)"
        );
    };
    chattr("+i");
    let r = watch(&w, &cfg, &["--once", "--output-dir", out.to_str().unwrap()]);
    chattr("-i");
    assert_ne!(r.code, 0, "the state write failed: {}", r.stderr);
    let first: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&name)).unwrap()).unwrap();
    assert_eq!(std::fs::read(&state_file).unwrap(), before);
    let r = watch(&w, &cfg, &["--once", "--output-dir", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&name)).unwrap()).unwrap();
    assert_eq!(
        again["subject"]["commit"], first["subject"]["commit"],
        "re-emitted"
    );
    assert_eq!(
        heads_state(&w)["heads"]["tally/f41"]["commit"],
        new.as_str()
    );
    assert!(
        watch(&w, &cfg, &["--once", "--output-dir", out.to_str().unwrap()])
            .stderr
            .is_empty()
    );
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // `git daemon` runs `git-daemon` as a child: the whole group goes.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// `git daemon` serving `base` on loopback, ready when it answers.
fn git_daemon(base: &Path) -> (Daemon, u16) {
    let port = free_port();
    use std::os::unix::process::CommandExt;
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
        // `git daemon` runs `git-daemon` as its child: a group of their own, killed whole.
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
fn remote_dist_git_over_a_git_daemon_and_an_unreachable_one() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41", "f42"]);
    let (_daemon, port) = git_daemon(&d.rpms);
    // `hello` has no repository on this server: an ERROR for it alone.
    let cfg = config(
        w.path(),
        &format!("git://127.0.0.1:{port}"),
        "[f41, f42]",
        "[tally, hello]",
    );
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("ERROR hello"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let seen = heads_state(&w);
    assert_eq!(seen["heads"]["tally/f42"]["commit"], d.head("tally", "f42"));
    assert!(seen["heads"]["hello/f41"].is_null());

    let new = d.push("tally", "f41", BOB, "tally: over the wire");
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3, "hello is still missing: {}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0]["subject"]["commit"], new.as_str());
    assert_eq!(
        ms[0]["subject"]["repo"],
        format!("git://127.0.0.1:{port}/tally.git")
    );
    let range = &ms[0]["stages"][0]["data"]["range"];
    assert_eq!(
        range["commits"][0]["author"], BOB.0,
        "read from the fetched mirror: {range}"
    );
    assert_eq!(range["commits"].as_array().unwrap().len(), 1);

    // A run killed during a fetch leaves a lock in the mirror: the next poll goes on.
    let mirror = w.ws().join("state/watch/mirrors/tally.git");
    std::fs::write(mirror.join("refs/heads/f41.lock"), "").unwrap();
    std::fs::write(mirror.join("config.lock"), "").unwrap();
    let newer = d.push("tally", "f41", ALICE, "tally: after a killed run");
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3, "hello is still missing: {}", r.stderr);
    assert!(!r.stderr.contains("ERROR tally"), "{}", r.stderr);
    assert_eq!(lines(&r.stdout)[0]["subject"]["commit"], newer.as_str());

    // Now hello exists: a first sight, recorded; exit 0.
    d.package("hello", &["f41"]);
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // Unreachable: nothing listens there. ERROR, the state stays as it was.
    let state_file = w.ws().join("state/watch/heads.json");
    let before = std::fs::read(&state_file).unwrap();
    d.push("tally", "f41", ALICE, "tally: while the server is away");
    let gone = config(
        w.path(),
        &format!("git://127.0.0.1:{}", free_port()),
        "[f41]",
        "[tally]",
    );
    let r = watch(&w, &gone, &["--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("ERROR tally"), "{}", r.stderr);
    assert!(r.stderr.contains("next poll tries again"), "{}", r.stderr);
    assert_eq!(std::fs::read(&state_file).unwrap(), before);
}

fn git_receive(d: &DistGit, package: &str, branch: &str, rev: &str, who: (&str, &str)) -> Value {
    json!({
        "agent": who.0.split(' ').next().unwrap().to_lowercase(),
        "commit": {
            "name": who.0, "email": who.1,
            "username": who.0.split(' ').next().unwrap().to_lowercase(),
            "summary": "a change", "message": "a change\n",
            "stats": {"files": {}, "total": {"additions": 1, "deletions": 0, "lines": 1, "files": 1}},
            "rev": rev,
            "path": d.rpms.join(format!("{package}.git")).to_string_lossy(),
            "repo": package, "namespace": "rpms", "branch": branch,
            "patch": "", "date": "2026-12-01T12:00:00+00:00",
            "url": format!("https://src.example.org/rpms/{package}/c/{rev}"),
        }
    })
}

#[test]
fn a_message_from_a_file_and_the_bad_ones() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    d.package("other", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally, ghost]");
    let new = d.push("tally", "f41", ALICE, "tally: pushed");
    let save = |name: &str, v: &str| {
        let p = w.path().join(name);
        std::fs::write(&p, v).unwrap();
        p
    };
    // As fedora-messaging serializes a message (topic, headers, id, body).
    let wrapped = json!({
        "topic": "org.fedoraproject.prod.git.receive",
        "headers": {"fedora_messaging_schema": "fedora_messaging_git_hook.commit.v1"},
        "id": "2d1b1a1e-0000-4000-8000-000000000001",
        "body": git_receive(&d, "tally", "f41", &new, ALICE),
    });
    let m = save("push.json", &wrapped.to_string());
    let r = watch(&w, &cfg, &["--message", m.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["subject"]["commit"], new.as_str());
    let trig = &ms[0]["stages"][0]["data"]["trigger"];
    assert_eq!(trig["kind"], "message");
    assert_eq!(trig["username"], "alice");
    assert_eq!(trig["message_id"], "2d1b1a1e-0000-4000-8000-000000000001");
    // The same push again (a redelivery, or its second commit's message): already seen.
    let r = watch(&w, &cfg, &["--message", m.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // From stdin, the bare body.
    let other = d.push("other", "f41", BOB, "other: pushed");
    let body = git_receive(&d, "other", "f41", &other, BOB).to_string();
    let mut c = w.cmd();
    c.args(["watch", "--config", cfg.to_str().unwrap(), "--message", "-"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.arg("--quiet").spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "an unmonitored package is ignored");

    let unmonitored = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["watch", "--config", cfg.to_str().unwrap(), "--message"])
        .arg(save("other.json", &body))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unmonitored.stderr);
    assert!(unmonitored.status.success(), "{stderr}");
    assert!(
        stderr.contains("ignored") && stderr.contains("other is not a monitored package"),
        "{stderr}"
    );

    for (name, text, code, want) in [
        ("broken.json", "{\"commit\": {", 2, "not a JSON message"),
        (
            "norev.json",
            r#"{"agent": "a", "commit": {"repo": "tally", "branch": "f41", "namespace": "rpms"}}"#,
            2,
            "commit.rev",
        ),
        (
            "badrepo.json",
            &git_receive(&d, "../../etc", "f41", &new, ALICE).to_string(),
            2,
            "not a package name",
        ),
    ] {
        let p = save(name, text);
        let r = watch(&w, &cfg, &["--message", p.to_str().unwrap()]);
        assert_eq!(r.code, code, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{name}: one line: {}",
            r.stderr
        );
        if code == 2 {
            assert!(r.stderr.contains(name), "{name} named: {}", r.stderr);
        }
        assert!(r.stdout.is_empty(), "{name}");
    }
    assert!(
        !w.ws().join("state/watch/pending").exists(),
        "bad input is not kept"
    );

    // ERRORs: a commit the repository does not have yet (a mirror lagging behind the push),
    // and a monitored package dist-git has no repository for. Each is kept, and tried again
    // by every later message run until it can be acted on: never lost.
    let clone = d.work.join("tally");
    git(&clone, ALICE, &["checkout", "-q", "f41"]);
    std::fs::write(clone.join("late.txt"), "late").unwrap();
    git(&clone, ALICE, &["add", "-A"]);
    git(&clone, ALICE, &["commit", "-q", "-m", "tally: pushed late"]);
    let late = git(&clone, ALICE, &["rev-parse", "HEAD"]);
    let p = save(
        "late.json",
        &git_receive(&d, "tally", "f41", &late, ALICE).to_string(),
    );
    let r = watch(&w, &cfg, &["--message", p.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("does not have (yet)"), "{}", r.stderr);
    assert!(
        r.stderr.contains("kept in state/watch/pending"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let p = save(
        "ghost.json",
        &git_receive(&d, "ghost", "f41", &new, ALICE).to_string(),
    );
    let r = watch(&w, &cfg, &["--message", p.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ERROR ghost: no dist-git repository"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("ERROR tally"),
        "a kept message's retry is a note, not a new ERROR: {}",
        r.stderr
    );
    let pending = || {
        std::fs::read_dir(w.ws().join("state/watch/pending"))
            .unwrap()
            .count()
    };
    assert_eq!(pending(), 2);

    // The push lands, the repository appears: the next message run acts on both, once.
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    d.copy("tally", "ghost");
    let r = watch(
        &w,
        &cfg,
        &["--message", save("other2.json", &body).to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 2, "{ms:#?}");
    assert_eq!(by_package(&ms, "tally")["subject"]["commit"], late.as_str());
    assert_eq!(by_package(&ms, "ghost")["subject"]["commit"], late.as_str());
    assert_eq!(pending(), 0);
    let r = watch(
        &w,
        &cfg,
        &["--message", save("other3.json", &body).to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "acted on once: {}", r.stdout);

    // A message whose commit is on another branch does not trigger this one.
    git(&clone, BOB, &["checkout", "-q", "-b", "side"]);
    std::fs::write(clone.join("side.txt"), "side").unwrap();
    git(&clone, BOB, &["add", "-A"]);
    git(
        &clone,
        BOB,
        &["commit", "-q", "-m", "tally: on a side branch"],
    );
    git(&clone, BOB, &["push", "-q", "origin", "side"]);
    let side = git(&clone, BOB, &["rev-parse", "HEAD"]);
    let p = save(
        "side.json",
        &git_receive(&d, "tally", "f41", &side, BOB).to_string(),
    );
    // While f41 has not moved, its ref may just not have caught up: kept.
    let r = watch(&w, &cfg, &["--message", p.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not on f41 (yet)"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(pending(), 1);
    // Once f41 moved on without it, it was never f41's: ignored, and no longer kept.
    git(&clone, BOB, &["checkout", "-q", "f41"]);
    d.push("tally", "f41", BOB, "tally: f41 moves on");
    let r = watch(&w, &cfg, &["--message", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(pending(), 0);
}

#[test]
fn bad_configs_and_flags_are_bad_input() {
    let w = Ws::new();
    std::fs::create_dir_all(w.path().join("rpms")).unwrap();
    let missing = w.path().join("nope.yaml");
    let r = watch(&w, &missing, &["--once"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nope.yaml"), "{}", r.stderr);
    for (text, want) in [
        (
            "dist_git: ./rpms\nbranches: [f41]\npakages: [a]\n",
            "unknown field `pakages`",
        ),
        (
            "dist_git: ./rpms\nbranches: [f41]\npackages: [\"a b\"]\n",
            "not a package name",
        ),
        (
            "dist_git: ./rpms\nbranches: f41\npackages: [a]\n",
            "branches",
        ),
        (
            "dist_git: https://me:s3cret@src.example.org/rpms\nbranches: [f41]\npackages: [a]\n",
            "credentials",
        ),
        (": : :\n", "not a valid fci.yaml"),
    ] {
        let p = w.path().join("fci.yaml");
        std::fs::write(&p, text).unwrap();
        let r = watch(&w, &p, &["--once"]);
        assert_eq!(r.code, 2, "{text}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{text}: {}", r.stderr);
        assert!(r.stderr.contains("fci.yaml"), "{}", r.stderr);
        assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
    }
    let p = config(w.path(), "./rpms", "[f41]", "[a]");
    let r = watch(&w, &p, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--once"), "{}", r.stderr);
    for bad in [
        "amqp//guest:hunter22@x",
        "guest:hunter22@x",
        "http://guest:hunter22@x/",
    ] {
        let r = watch(&w, &p, &["--amqp-url", bad, "--once"]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(!r.stderr.contains("hunter22"), "{}", r.stderr);
    }
}

#[test]
fn push_messages_through_rabbitmq_as_dist_git_sends_them() {
    use common::rabbitmq::{publish_git_receive, Broker};
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    d.package("hello", &["f41"]);
    d.package("other", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally, hello]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    let broker = Broker::start(&w.path().join("rabbitmq"));
    let url = broker.url();
    // The queue exists before the pushes (a deployed watcher declared it earlier).
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Alice pushes two commits at once: the hook sends one message per commit.
    let clone = d.work.join("tally");
    git(&clone, ALICE, &["checkout", "-q", "f41"]);
    let mut revs = Vec::new();
    for msg in ["tally: one", "tally: two"] {
        std::fs::write(clone.join(format!("{msg}.txt")), msg).unwrap();
        git(&clone, ALICE, &["add", "-A"]);
        git(&clone, ALICE, &["commit", "-q", "-m", msg]);
        revs.push(git(&clone, ALICE, &["rev-parse", "HEAD"]));
    }
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    // Bob pushes to another package at the same time; someone to an unmonitored one.
    let hello = d.push("hello", "f41", BOB, "hello: fix");
    let other = d.push("other", "f41", BOB, "other: fix");
    publish_git_receive(
        &broker,
        &json!([
            git_receive(&d, "tally", "f41", &revs[0], ALICE),
            git_receive(&d, "tally", "f41", &revs[1], ALICE),
            git_receive(&d, "hello", "f41", &hello, BOB),
            git_receive(&d, "other", "f41", &other, BOB),
            {"topic": "org.fedoraproject.prod.git.receive", "raw": "{not json"},
        ]),
    );
    let out = w.path().join("queue");
    let r = watch(
        &w,
        &cfg,
        &[
            "--amqp-url",
            &url,
            "--once",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("guest:guest"), "{}", r.stderr);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            format!("hello-f41-{hello}.json"),
            format!("tally-f41-{}.json", revs[1]),
        ],
        "one run per packager's push, the newest commit the subject"
    );
    let t: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("tally-f41-{}.json", revs[1]))).unwrap(),
    )
    .unwrap();
    let data = &t["stages"][0]["data"];
    assert_eq!(data["trigger"]["kind"], "message");
    assert_eq!(
        data["trigger"]["topic"],
        "org.fedoraproject.prod.git.receive"
    );
    assert_eq!(data["trigger"]["username"], "alice");
    assert!(
        data["trigger"]["message_id"]
            .as_str()
            .is_some_and(|m| m.len() >= 32),
        "fedora-messaging's message id (the AMQP property): {data}"
    );
    assert_eq!(
        data["range"]["commits"].as_array().unwrap().len(),
        2,
        "{data}"
    );
    // Everything was taken and acknowledged: nothing left for the next run.
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let loud = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args([
            "watch",
            "--config",
            cfg.to_str().unwrap(),
            "--once",
            "--amqp-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&loud.stderr).contains("0 message(s) taken"),
        "{}",
        String::from_utf8_lossy(&loud.stderr)
    );

    // A push whose commit the dist-git here does not have yet: an ERROR, and the message is
    // kept (not lost, and not blocking the queue behind it); Bob's next push still goes
    // through, and the kept one is acted on once the commit is there.
    std::fs::write(clone.join("late.txt"), "late").unwrap();
    git(&clone, ALICE, &["add", "-A"]);
    git(&clone, ALICE, &["commit", "-q", "-m", "tally: late"]);
    let late = git(&clone, ALICE, &["rev-parse", "HEAD"]);
    let hello2 = d.push("hello", "f41", BOB, "hello: again");
    publish_git_receive(
        &broker,
        &json!([
            git_receive(&d, "tally", "f41", &late, ALICE),
            git_receive(&d, "hello", "f41", &hello2, BOB),
        ]),
    );
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("kept in state/watch/pending"),
        "{}",
        r.stderr
    );
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["subject"]["commit"], hello2.as_str());
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0]["subject"]["commit"], late.as_str());
    let r = watch(&w, &cfg, &["--amqp-url", &url, "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // A long-running consumer tries a kept message again while the queue is idle: the push
    // whose commit was not there yet is emitted once it is, without a restart.
    let out = w.path().join("live");
    let mut live = w
        .cmd()
        .args([
            "watch",
            "--config",
            cfg.to_str().unwrap(),
            "--amqp-url",
            &url,
        ])
        .args(["--interval", "1s", "--output-dir", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(clone.join("later.txt"), "later").unwrap();
    git(&clone, ALICE, &["add", "-A"]);
    git(&clone, ALICE, &["commit", "-q", "-m", "tally: later"]);
    let later = git(&clone, ALICE, &["rev-parse", "HEAD"]);
    publish_git_receive(
        &broker,
        &json!([git_receive(&d, "tally", "f41", &later, ALICE)]),
    );
    let pending = w.ws().join("state/watch/pending");
    let wait_for = |what: &dyn Fn() -> bool, why: &str| {
        let start = std::time::Instant::now();
        while !what() {
            assert!(start.elapsed().as_secs() < 30, "{why}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    wait_for(
        &|| std::fs::read_dir(&pending).is_ok_and(|mut d| d.next().is_some()),
        "the message was not kept",
    );
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    let file = out.join(format!("tally-f41-{later}.json"));
    wait_for(
        &|| file.exists(),
        "the kept message was not retried while idle",
    );
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 0);
}

#[test]
fn a_watched_change_builds_from_its_manifest() {
    let w = Ws::new();
    let rpms = w.path().join("rpms");
    let repo = rpms.join("hello-atomic");
    std::fs::create_dir_all(&rpms).unwrap();
    let st = Command::new("cp")
        .arg("-r")
        .arg(common::example("hello-atomic"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    git(&repo, ALICE, &["init", "-q", "-b", "f41"]);
    git(&repo, ALICE, &["add", "-A"]);
    git(
        &repo,
        ALICE,
        &["commit", "-q", "-m", "hello-atomic: import"],
    );
    let cfg = config(w.path(), "./rpms", "[f41]", "[hello-atomic]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    std::fs::write(repo.join("README.packager"), "a packager's note\n").unwrap();
    git(&repo, BOB, &["add", "-A"]);
    git(
        &repo,
        BOB,
        &["commit", "-q", "-m", "hello-atomic: add a note"],
    );
    let head = git(&repo, BOB, &["rev-parse", "HEAD"]);
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 1);
    let m = w.save("change.json", &ms[0]);
    let la = common::lookaside();
    let b = w.run(&["build", "-m", m.to_str().unwrap(), "--lookaside", &la]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let bm = b.manifest();
    assert_eq!(
        bm["run"]["id"], ms[0]["run"]["id"],
        "the build continues the watch's run"
    );
    assert_eq!(bm["subject"]["commit"], head.as_str());
    assert_eq!(bm["subject"]["branch"], "f41");
    assert_eq!(b.stage(&bm, "build")["outcome"], "PASSED");
    assert_eq!(bm["stages"][0]["name"], "watch");
    // The watch record is fci's own record of the run, as the build's is (report --promote
    // takes only those).
    let records = w
        .ws()
        .join("state/records")
        .join(ms[0]["run"]["id"].as_str().unwrap());
    for stage in ["watch", "build"] {
        let kept = std::fs::read_dir(records.join(stage)).map_or(0, |d| d.count());
        assert_eq!(kept, 1, "no record of {stage} kept for the run");
    }
}

#[test]
fn odd_repositories_and_a_damaged_branch_state_stay_with_their_package() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("a", &["f41", "f42"]);
    d.package("b", &["f41"]);
    // A packager's work tree that tracks a `HEAD` file and a `refs/` directory of its own.
    let tricky = d.rpms.join("tricky");
    std::fs::create_dir_all(tricky.join("refs/heads")).unwrap();
    git(&tricky, ALICE, &["init", "-q", "-b", "f41"]);
    std::fs::write(tricky.join("HEAD"), "ref: refs/heads/f41\n").unwrap();
    std::fs::write(
        tricky.join("refs/heads/f41"),
        format!("{}\n", "1".repeat(40)),
    )
    .unwrap();
    git(&tricky, ALICE, &["add", "-A"]);
    git(
        &tricky,
        ALICE,
        &["commit", "-q", "-m", "tricky: files named like git's"],
    );
    let tricky_head = git(&tricky, ALICE, &["rev-parse", "HEAD"]);
    // Repositories fci does not read: reftable refs, SHA-256 objects.
    git(
        &d.rpms,
        ALICE,
        &["init", "-q", "--bare", "--ref-format=reftable", "reft.git"],
    );
    git(
        &d.rpms,
        ALICE,
        &["init", "-q", "--bare", "--object-format=sha256", "sha.git"],
    );
    let cfg = config(
        w.path(),
        "./rpms",
        "[f41, f42]",
        "[a, b, tricky, reft, sha]",
    );
    let r = watch(&w, &cfg, &["--once", "--emit-existing"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(
        by_package(&ms, "tricky")["subject"]["commit"],
        tricky_head.as_str(),
        "the work tree's files are not its refs"
    );
    assert_eq!(ms.len(), 4, "a f41, a f42, b f41, tricky f41: {ms:#?}");
    assert!(
        r.stderr.contains("ERROR reft") && r.stderr.contains("reftable"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("ERROR sha") && r.stderr.contains("SHA-1"),
        "{}",
        r.stderr
    );

    // One branch's state is damaged: that branch's change waits, the others go on, once.
    std::fs::create_dir_all(w.ws().join("state/excluded")).unwrap();
    std::fs::write(w.ws().join("state/excluded/f42.json"), "{broken").unwrap();
    let a41 = d.push("a", "f41", ALICE, "a: f41");
    d.push("a", "f42", ALICE, "a: f42");
    let b41 = d.push("b", "f41", BOB, "b: f41");
    let cfg = config(w.path(), "./rpms", "[f41, f42]", "[a, b]");
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ERROR a") && r.stderr.contains("f42.json"),
        "{}",
        r.stderr
    );
    let ms = lines(&r.stdout);
    let subjects: Vec<&str> = ms
        .iter()
        .map(|m| m["subject"]["commit"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.contains(&a41.as_str()) && subjects.contains(&b41.as_str()));
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 3);
    assert!(r.stdout.is_empty(), "not emitted again: {}", r.stdout);
    std::fs::remove_file(w.ws().join("state/excluded/f42.json")).unwrap();
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout).len(), 1, "the waiting change, once mended");
}

#[test]
fn a_second_watcher_on_the_workspace_stops_at_once() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("a", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[a]");
    let mut daemon = w
        .cmd()
        .args([
            "watch",
            "--interval",
            "1h",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = w.ws().join("locks/watch.lock");
    let start = std::time::Instant::now();
    // Running once the first poll wrote its state.
    while !w.ws().join("state/watch/heads.json").exists() {
        assert!(
            start.elapsed().as_secs() < 20,
            "the first watcher did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let t = std::time::Instant::now();
    let r = watch(&w, &cfg, &["--once"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("another fci watch is running"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(lock.to_str().unwrap()), "{}", r.stderr);
    assert!(t.elapsed().as_secs() < 10, "it did not wait");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0, "free again");
}

#[test]
fn kept_messages_are_kept_once_and_a_first_sight_does_not_swallow_them() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally, ghost]");
    let head = d.head("tally", "f41");
    let save = |name: &str, v: &Value| {
        let p = w.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let ghost = save("ghost.json", &git_receive(&d, "ghost", "f41", &head, ALICE));
    for _ in 0..2 {
        let r = watch(&w, &cfg, &["--message", ghost.to_str().unwrap()]);
        assert_eq!(r.code, 3, "{}", r.stderr);
    }
    let pending = || {
        std::fs::read_dir(w.ws().join("state/watch/pending"))
            .unwrap()
            .count()
    };
    assert_eq!(pending(), 1, "the same message is kept once");
    // Bad input writes nothing, kept messages included.
    let r = watch(&w, &cfg, &["--message", "/nonexistent.json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(pending(), 1);

    // The repository appears, and a first poll records its head without a run: the kept
    // push must still make one.
    d.copy("tally", "ghost");
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "a first poll emits nothing");
    // An upper-case rev is the same commit.
    let upper = save(
        "upper.json",
        &git_receive(&d, "tally", "f41", &head.to_uppercase(), ALICE),
    );
    let r = watch(&w, &cfg, &["--message", upper.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    assert_eq!(ms.len(), 2, "the kept ghost push and tally's: {ms:#?}");
    assert_eq!(by_package(&ms, "ghost")["subject"]["commit"], head.as_str());
    assert_eq!(
        by_package(&ms, "tally")["stages"][0]["data"]["trigger"]["rev"],
        head.as_str()
    );
    assert_eq!(pending(), 0);
}

#[test]
fn a_closed_stdout_emits_nothing_and_records_nothing() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally]");
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" >&-")
        .arg(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["watch", "--once", "--emit-existing", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdout is closed"));
    assert!(!w.ws().join("state/watch/heads.json").exists());
}

/// A loopback server that accepts connections and never answers, like a stuck dist-git
/// front end; its port.
fn hung_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    port
}

/// The command lines of running processes that mention `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn a_hung_remote_costs_its_timeout_and_leaves_nothing_running() {
    let w = Ws::new();
    let port = hung_server();
    std::fs::create_dir_all(w.path().join("rpms")).unwrap();
    let cfg = config(
        w.path(),
        &format!("http://127.0.0.1:{port}/rpms"),
        "[f41]",
        "[a, b]",
    );
    let t = std::time::Instant::now();
    let r = watch(&w, &cfg, &["--once", "--remote-timeout", "2s"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(t.elapsed().as_secs() < 30, "took {:?}", t.elapsed());
    assert!(
        r.stderr.contains("ERROR a") && r.stderr.contains("ERROR b"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("no answer in 2 s"), "{}", r.stderr);
    let left = processes_mentioning(&format!("127.0.0.1:{port}"));
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_merge_lists_only_what_it_brought() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41"]);
    let clone = d.work.join("tally");
    git(&clone, ALICE, &["checkout", "-q", "f41"]);
    for i in 0..30 {
        git(
            &clone,
            ALICE,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
        );
    }
    git(&clone, ALICE, &["push", "-q", "origin", "f41"]);
    let cfg = config(w.path(), "./rpms", "[f41]", "[tally]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    // A side branch from far back, one fix on it, merged.
    git(&clone, BOB, &["checkout", "-q", "-b", "side", "f41~25"]);
    git(
        &clone,
        BOB,
        &["commit", "-q", "--allow-empty", "-m", "side fix"],
    );
    git(&clone, BOB, &["checkout", "-q", "f41"]);
    git(
        &clone,
        BOB,
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
    );
    git(&clone, BOB, &["push", "-q", "origin", "f41"]);
    let r = watch(&w, &cfg, &["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    let range = &ms[0]["stages"][0]["data"]["range"];
    let mut summaries: Vec<&str> = range["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    summaries.sort();
    assert_eq!(summaries, vec!["merge side", "side fix"], "{range}");
    assert_eq!(range["forced"], false);
}

#[test]
fn a_commit_not_yet_on_its_branch_is_kept_and_a_failed_write_keeps_the_message() {
    let w = Ws::new();
    let d = DistGit::new(w.path());
    d.package("tally", &["f41", "f42"]);
    let cfg = config(w.path(), "./rpms", "[f41, f42]", "[tally]");
    assert_eq!(watch(&w, &cfg, &["--once"]).code, 0);
    // R reaches f41; the message for f42 comes before f42's ref has caught up.
    let r41 = d.push("tally", "f41", ALICE, "tally: for both branches");
    let save = |name: &str, v: &Value| {
        let p = w.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let m42 = save("m42.json", &git_receive(&d, "tally", "f42", &r41, ALICE));
    let r = watch(&w, &cfg, &["--message", m42.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not on f42 (yet)"), "{}", r.stderr);
    let clone = d.work.join("tally");
    git(
        &clone,
        ALICE,
        &[
            "push",
            "-q",
            "--force",
            "origin",
            &format!("{r41}:refs/heads/f42"),
        ],
    );
    // Any later message run acts on it; the kept message's retry is not an ERROR of its own.
    let m41 = save("m41.json", &git_receive(&d, "tally", "f41", &r41, ALICE));
    let r = watch(&w, &cfg, &["--message", m41.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ms = lines(&r.stdout);
    let branches: Vec<&str> = ms
        .iter()
        .map(|m| m["subject"]["branch"].as_str().unwrap())
        .collect();
    assert_eq!(branches.len(), 2, "{branches:?}");
    assert!(branches.contains(&"f41") && branches.contains(&"f42"));

    // The manifest cannot be written (stdout is /dev/null): the message is kept, not lost.
    git(&clone, BOB, &["fetch", "-q", "origin"]);
    git(&clone, BOB, &["checkout", "-q", "-B", "f42", "origin/f42"]);
    let r42b = d.push("tally", "f42", BOB, "tally: f42 only");
    let m = save("m.json", &git_receive(&d, "tally", "f42", &r42b, BOB));
    let out = w
        .cmd()
        .args(["watch", "--config", cfg.to_str().unwrap(), "--message"])
        .arg(&m)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let pending = w.ws().join("state/watch/pending");
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 1);
    let r = watch(&w, &cfg, &["--message", m41.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout)[0]["subject"]["commit"], r42b.as_str());
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 0);
}

#[test]
fn a_signal_to_the_watcher_takes_its_git_along() {
    let w = Ws::new();
    let port = hung_server();
    std::fs::create_dir_all(w.path().join("rpms")).unwrap();
    let cfg = config(
        w.path(),
        &format!("http://127.0.0.1:{port}/rpms"),
        "[f41]",
        "[a]",
    );
    let needle = format!("127.0.0.1:{port}");
    let running = || processes_mentioning(&needle);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut child = w
            .cmd()
            .args(["watch", "--once", "--config", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while running().is_empty() {
            assert!(start.elapsed().as_secs() < 20, "git never started");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert!(!status.success());
        // Gone within half a second of fci's end.
        let gone = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while !running().is_empty() && std::time::Instant::now() < gone {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            running().is_empty(),
            "left running after signal {sig}: {:?}",
            running()
        );
    }
}
