//! A real distributed engine (issue 17 item 2): Buildbot 4.3 (`examples/buildbot/master.cfg`,
//! started by `examples/buildbot/start.sh`) with a master and two workers on loopback, each
//! worker its own user, basedir and workspace, the pipeline state shared. Dist-git is served
//! by `git daemon` on loopback (as a dist-git server would serve it; a local path owned by
//! another user is refused by git). Three packagers push: compose-etc and share-note (two
//! packages of the same shape) pass and race to promote on the same base, one on each worker;
//! then hello-broken-test, which fails its tests.
//! Checked through Buildbot's REST API and the state: every change ran, both workers ran
//! builds, the failing change is excluded and its maintainer told, both passing changes became
//! known-good in turn (the loser of the race retested on the winner's base, emitted by the
//! next watch), the report's HTML page and JUnit file are attached to every build, `ostree
//! fsck` is clean and nothing is left running.
//!
//! No qemu: an image is made once by the administrator (root) when the state is set up, and
//! the workers' `fci image --interval 1d` is not due, so image and smoke are SKIPPED (exit 0).

mod common;
use common::*;
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    &[tool::GIT],
];

const PACKAGER: [&str; 4] = [
    "-c",
    "user.name=Bob Packager",
    "-c",
    "user.email=bob@example.org",
];

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("BUILDBOT_VENV").unwrap_or_else(|_| "/opt/fci/buildbot".into()))
}

fn fci_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fci")
}

/// Runs `cmd` with umask 002, as the administrator writes the shared state (the workers'
/// group must be able to write what root makes there).
fn shared_umask(cmd: &mut Command) -> &mut Command {
    // SAFETY: umask(2) is async-signal-safe and touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o002);
            Ok(())
        })
    }
}

/// The master, the workers and the dist-git server: stopped (and checked gone) on drop, also
/// when an assertion failed.
struct Deployment {
    top: PathBuf,
    env: Vec<(String, String)>,
    gitd: Option<Child>,
    www: u16,
}

impl Deployment {
    fn start_sh(&self, verb: &str) -> std::process::Output {
        let mut c = Command::new(repo_root().join("examples/buildbot/start.sh"));
        c.arg(verb).stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn stop(&mut self) {
        let out = self.start_sh("stop");
        if let Some(mut g) = self.gitd.take() {
            let _ = g.kill();
            let _ = g.wait();
        }
        assert!(out.status.success(), "start.sh stop: {out:?}");
    }

    fn api(&self, path: &str) -> Value {
        let url = format!("http://127.0.0.1:{}/api/v2/{path}", self.www);
        serde_json::from_str(&self.raw(path)).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// The body of a REST answer. Polled while Buildbot is busy, its web server sometimes cuts
    /// an answer short (hyper: IncompleteBody under load 8): a transport error is asked again,
    /// a few times, before it fails the test; an HTTP error status fails it at once.
    fn raw(&self, path: &str) -> String {
        let url = format!("http://127.0.0.1:{}/api/v2/{path}", self.www);
        let mut tries = 0;
        loop {
            tries += 1;
            let got = http().get(&url).send().and_then(|r| {
                assert!(r.status().is_success(), "{url}: {}", r.status());
                r.text()
            });
            match got {
                Ok(body) => return body,
                Err(e) if tries < 5 => {
                    eprintln!("{url}: {e}; asking again");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Err(e) => panic!("{url}: {e} ({tries} tries)"),
            }
        }
    }

    /// A log of a build's step as it was attached, without the header Buildbot's raw
    /// download puts before it (builder, build number, worker).
    fn attached(&self, build: &Value, step: &str, log: &str) -> String {
        let raw = self.raw(&format!("builds/{build}/steps/{step}/logs/{log}/raw"));
        let mut rest = raw.as_str();
        for field in ["Builder: ", "Build number: ", "Worker name: "] {
            if rest.starts_with(field) {
                rest = rest.split_once('\n').map_or("", |(_, r)| r);
            }
        }
        rest.to_string()
    }

    /// Every process of the deployment: its basedirs, workspaces and dist-git below `top`.
    fn processes(&self) -> Vec<String> {
        processes_of(&self.top)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.start_sh("stop");
        if let Some(mut g) = self.gitd.take() {
            let _ = g.kill();
            let _ = g.wait();
        }
    }
}

/// A dist-git repository `rpms/<name>` on branch f41 from the package directory `src`.
fn distgit(rpms: &Path, name: &str, src: &Path) {
    let repo = rpms.join(name);
    fci::suites::runner::copy_tree(src, &repo).unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(&repo, &["add", "-A"]);
    let mut args = PACKAGER.to_vec();
    args.extend(["commit", "-q", "-m", "import"]);
    git(&repo, &args);
}

/// A packager's push: a new commit on f41.
fn push(rpms: &Path, name: &str) {
    let repo = rpms.join(name);
    std::fs::write(repo.join("README.packager"), format!("{name}: a note\n")).unwrap();
    git(&repo, &["add", "-A"]);
    let mut args = PACKAGER.to_vec();
    args.extend(["commit", "-q", "-m", "a packaging note"]);
    git(&repo, &args);
}

/// fci as the administrator, in its own workspace, on the shared state.
fn admin(top: &Path, state: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(fci_bin());
    c.arg("--workspace")
        .arg(top.join("admin-ws"))
        .arg("--quiet")
        .args(args)
        .env("FCI_STATE", state)
        .stdin(Stdio::null());
    Run::from(shared_umask(&mut c).output().unwrap())
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn known_good_set(state: &Path) -> Value {
    std::fs::read_to_string(state.join("known-good/f41.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The first build of `package`'s changes among `bs`.
fn first_build_of<'a>(bs: &'a [Value], package: &str) -> &'a Value {
    bs.iter()
        .filter(|b| {
            let text = b["properties"]["fci_manifest"][0].as_str().unwrap();
            serde_json::from_str::<Value>(text).unwrap()["subject"]["package"] == package
        })
        .min_by_key(|b| b["buildid"].as_u64())
        .unwrap()
}

#[test]
fn buildbot_runs_each_change_on_one_worker_and_promotes_in_turn() {
    let w = Ws::new();
    assert!(
        venv().join("bin/buildbot").is_file() && venv().join("bin/buildbot-worker").is_file(),
        "Buildbot is missing in {}: run ./setup.sh --deps-only",
        venv().display()
    );
    assert!(
        fci::users::is_root(),
        "the Buildbot test runs as root: it makes the workers' users and the first image"
    );
    let top = w.path().to_path_buf();
    // The workers' users reach the scratch area (their basedirs, the fci.yaml).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = top.join("state");
    let bbdir = top.join("bb");
    let (www, pb, gitport) = (free_port(), free_port(), free_port());

    // Dist-git, served on loopback.
    let rpms = top.join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    distgit(&rpms, "share-note", &fixture("share-note"));
    distgit(&rpms, "compose-etc", &fixture("compose-etc"));
    distgit(&rpms, "hello-broken-test", &example("hello-broken-test"));
    // git-daemon itself (`git daemon` would run it as a child of its own, which killing `git`
    // leaves behind).
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = PathBuf::from(String::from_utf8_lossy(&exec_path.stdout).trim());
    let gitd = Command::new(exec_path.join("git-daemon"))
        .arg(format!("--base-path={}", rpms.display()))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={gitport}"))
        .arg(&rpms)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cfg = top.join("fci.yaml");
    std::fs::write(
        &cfg,
        format!(
            "dist_git: git://127.0.0.1:{gitport}/{{package}}\nbranches: [f41]\npackages: [share-note, compose-etc, hello-broken-test]\n"
        ),
    )
    .unwrap();

    // What the workers' users run and read, copied into the scratch area: the checkout this
    // test runs from may sit below a directory they cannot enter (a CI's clone).
    let shared = top.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let fci = shared.join("fci");
    std::fs::copy(fci_bin(), &fci).unwrap();
    for dir in ["examples/lookaside", "examples/buildbot/integration"] {
        let to = shared.join(Path::new(dir).file_name().unwrap());
        fci::suites::runner::copy_tree(&repo_root().join(dir), &to).unwrap();
    }
    let gating = shared.join("gating.yaml");
    std::fs::copy(repo_root().join("examples/buildbot/gating.yaml"), &gating).unwrap();
    let st = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&shared)
        .status()
        .unwrap();
    assert!(st.success());

    let env: Vec<(String, String)> = [
        ("FCI_BB_DIR", bbdir.display().to_string()),
        ("FCI_STATE", state.display().to_string()),
        ("FCI_CONFIG", cfg.display().to_string()),
        ("FCI_BIN", fci.display().to_string()),
        (
            "FCI_LOOKASIDE",
            shared.join("lookaside").display().to_string(),
        ),
        (
            "FCI_INTEGRATION",
            shared.join("integration").display().to_string(),
        ),
        ("FCI_GATING", gating.display().to_string()),
        ("FCI_IMAGE_INTERVAL", "1d".to_string()),
        ("FCI_WATCH_INTERVAL", "3".to_string()),
        ("BB_WWW_PORT", www.to_string()),
        ("BB_WORKER_PORT", pb.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut d = Deployment {
        top: top.clone(),
        env,
        gitd: Some(gitd),
        www,
    };

    // The administrator sets the state up: the group-owned directory, the known-good base,
    // and the branch's first image (root's: `fci image` needs root), so that the workers'
    // image steps are not due.
    let out = d.start_sh("prepare");
    assert!(out.status.success(), "start.sh prepare: {out:?}");
    let base = make_base(&w, &[], |_| {});
    let r = admin(
        &top,
        &state,
        &["base", "init", base.to_str().unwrap(), "--branch", "f41"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let repo = state.join("ostree/repo");
    let first_base = common::promote::known_good_in(&repo);
    let first = top.join("first-image.json");
    let la = lookaside();
    let ex = example("hello-atomic");
    let f = first.to_str().unwrap();
    let r = admin(
        &top,
        &state,
        &[
            "build",
            ex.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &la,
            "-o",
            f,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for stage in ["compose", "image"] {
        let r = admin(&top, &state, &[stage, "-m", f, "-o", f]);
        assert_eq!(
            r.code,
            0,
            "{stage}: {}{}",
            r.stderr,
            std::fs::read_to_string(f).unwrap_or_default()
        );
    }
    assert!(state.join("image/f41.json").is_file());

    let started = Instant::now();
    let out = d.start_sh("start");
    assert!(out.status.success(), "start.sh start: {out:?}");
    // Both workers connected, and the watch's first poll recorded the heads (a push before
    // it would count as history, not as a change).
    wait_until("both workers connected", Duration::from_secs(60), || {
        let ws = d.api("workers");
        ws["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["connected_to"].as_array().is_some_and(|c| !c.is_empty()))
            && ws["workers"].as_array().unwrap().len() == 2
    });
    wait_until("the first watch", Duration::from_secs(60), || {
        state.join("watch/heads.json").is_file()
    });
    // The worker processes run as their own users.
    for (i, user) in ["fci-worker1", "fci-worker2"].iter().enumerate() {
        let pid: u32 = std::fs::read_to_string(bbdir.join(format!("worker{}/twistd.pid", i + 1)))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let id = Command::new("id").args(["-u", user]).output().unwrap();
        assert_eq!(uid, String::from_utf8_lossy(&id.stdout).trim(), "{user}");
        assert_ne!(uid, "0");
    }

    // The race made certain, whatever the machine's load: the test holds the branch's
    // promotion lock in the shared state (fci's own fcntl lock) until both passing changes
    // reached their report, so both were composed on the first base and race for it at once.
    let locks = state.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock_file = locks.join("known-good-f41.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .unwrap();
    for p in [&locks, &lock_file] {
        let st = Command::new("chgrp")
            .arg("fci-workers")
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::set_permissions(&lock_file, std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let gate = fci::statelock::lock(&lock_file).unwrap();
    // Two packagers push; both changes start at once, one on each worker (a third change
    // pushed with them could take a worker first). Then the failing change.
    for p in ["share-note", "compose-etc"] {
        push(&rpms, p);
    }
    wait_until(
        "both passing changes building",
        Duration::from_secs(120),
        || {
            let bs = d.api("builds");
            bs["builds"].as_array().unwrap().len() >= 2
        },
    );
    push(&rpms, "hello-broken-test");
    let reporting = |b: &Value| {
        let steps = d.api(&format!("builds/{}/steps", b["buildid"]));
        steps["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "report" && !s["started_at"].is_null())
    };
    wait_until(
        "both passing changes at their report, waiting for the promotion lock",
        Duration::from_secs(600),
        || {
            let bs = d.api("builds");
            let bs = bs["builds"].as_array().unwrap();
            bs.len() >= 2 && bs[..2].iter().all(reporting)
        },
    );
    drop(gate);
    // Done: both passing changes known-good and every build finished (the retest included).
    wait_until(
        "both passing changes known-good and every build done",
        Duration::from_secs(900),
        || {
            let set = known_good_set(&state);
            let builds = d.api("builds");
            let bs = builds["builds"].as_array().unwrap();
            set.get("share-note").is_some()
                && set.get("compose-etc").is_some()
                && bs.len() >= 4
                && bs.iter().all(|b| b["complete"] == true)
        },
    );
    let took = started.elapsed();

    let builds = d.api("builds?property=fci_manifest&property=workername");
    let bs = builds["builds"].as_array().unwrap();
    let subject = |b: &Value| -> Value {
        let text = b["properties"]["fci_manifest"][0].as_str().unwrap();
        serde_json::from_str::<Value>(text).unwrap()["subject"].clone()
    };
    let package = |b: &Value| subject(b)["package"].as_str().unwrap().to_string();
    let of = |p: &str| -> Vec<&Value> { bs.iter().filter(|b| package(b) == p).collect() };
    // Every change ran, each as one build on one worker; the race's loser twice.
    assert_eq!(bs.len(), 4, "{builds:#}");
    assert_eq!(of("hello-broken-test").len(), 1);
    let (ha, ce) = (of("share-note"), of("compose-etc"));
    assert_eq!(ha.len() + ce.len(), 3, "{builds:#}");
    let workers: std::collections::BTreeSet<String> = bs
        .iter()
        .map(|b| {
            b["properties"]["workername"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(workers.len(), 2, "both workers ran builds: {workers:?}");
    // The racing changes ran at the same time, one on each worker.
    let (a, b) = (
        first_build_of(bs, "share-note"),
        first_build_of(bs, "compose-etc"),
    );
    assert_ne!(a["workerid"], b["workerid"]);
    let at = |b: &Value, k: &str| b[k].as_u64().unwrap();
    assert!(
        at(a, "started_at") < at(b, "complete_at") && at(b, "started_at") < at(a, "complete_at"),
        "not in parallel: {a:#} {b:#}"
    );

    // The race: both tested on the first base; the winner moved it; the loser's report said
    // retest (not its failure), and the next watch emitted it again on the winner's base.
    let (winner, loser) = if ha.len() == 1 {
        (&ha, &ce)
    } else {
        (&ce, &ha)
    };
    assert_eq!(loser.len(), 2);
    assert_eq!(
        subject(winner[0])["base"]["ostree_commit"],
        first_base.as_str()
    );
    assert_eq!(
        subject(loser[0])["base"]["ostree_commit"],
        first_base.as_str()
    );
    assert_eq!(winner[0]["results"], 0, "{:#}", winner[0]);
    let retest = loser.iter().max_by_key(|b| b["buildid"].as_u64()).unwrap();
    let lost = loser.iter().min_by_key(|b| b["buildid"].as_u64()).unwrap();
    assert_eq!(subject(lost)["commit"], subject(retest)["commit"]);
    let lost_report = d.attached(&lost["buildid"], "report", "fci-manifest_json");
    let lost_m: Value =
        serde_json::from_str(&lost_report).unwrap_or_else(|e| panic!("{e}: {lost_report:?}"));
    let rec = lost_m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["name"] == "report")
        .unwrap();
    assert_eq!(rec["data"]["needs_retest"], true, "{rec:#}");
    // Not the packager's failure: the build is WARNINGS (1), not FAILURE.
    assert_eq!(lost["results"], 1, "{lost:#}");
    assert_eq!(retest["results"], 0, "{retest:#}");
    // The retest's base is the winner's commit: the known-good ref's parent now.
    let now = common::promote::known_good_in(&repo);
    let parent = common::promote::ostree_in(&repo, &["rev-parse", &format!("{now}^")]);
    assert_eq!(subject(retest)["base"]["ostree_commit"], parent.as_str());
    let grand = common::promote::ostree_in(&repo, &["rev-parse", &format!("{parent}^")]);
    assert_eq!(grand, first_base);
    let set = known_good_set(&state);
    for p in ["share-note", "compose-etc"] {
        assert!(set.get(p).is_some(), "{set:#}");
    }
    assert!(set.get("hello-broken-test").is_none(), "{set:#}");

    // The failing change: its build red, excluded, its maintainer told (the decision message
    // in the journal of the worker that ran it, to the address of its changelog).
    let broken = of("hello-broken-test")[0];
    assert_eq!(broken["results"], 2, "{broken:#}");
    let excluded = std::fs::read_to_string(state.join("excluded/f41.json")).unwrap();
    assert!(excluded.contains("hello-broken-test"), "{excluded}");
    assert!(!excluded.contains("\"share-note\""), "{excluded}");
    assert!(!excluded.contains("\"compose-etc\""), "{excluded}");
    let broken_worker = broken["properties"]["workername"][0].as_str().unwrap();
    let n = if broken_worker == "fci-worker1" { 1 } else { 2 };
    let journal =
        std::fs::read_to_string(bbdir.join(format!("worker{n}/workspace/messages/journal.jsonl")))
            .unwrap();
    let told = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .any(|m| {
            m["topic"] == "org.fedoraproject.prod.greenwave.decision.update"
                && m["body"]["policies_satisfied"] == false
                && m["body"]["subject_identifier"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("hello-broken-test-"))
                && m["body"]["notification"]["recipients"][0] == "fci@example.org"
        });
    assert!(
        told,
        "no decision to hello-broken-test's maintainer in {journal}"
    );

    // Each build: its stages as steps, image and smoke skipped (not due) but passing, the
    // report always run, with the HTML page and the JUnit file attached.
    for b in bs {
        let id = &b["buildid"];
        let steps = d.api(&format!("builds/{id}/steps"));
        let names: Vec<&str> = steps["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        for s in [
            "build",
            "test",
            "compose",
            "integrate",
            "image",
            "smoke",
            "report",
        ] {
            assert!(names.contains(&s), "build {id}: {names:?}");
        }
        let html = d.attached(id, "report", "fci-report_html");
        assert!(html.contains("<html"), "build {id}: {html:.200}");
        let junit = d.attached(id, "report", "fci-junit_xml");
        assert!(junit.contains("<testsuite"), "build {id}: {junit:.200}");
        if b["results"] == 0 {
            let image = d.raw(&format!("builds/{id}/steps/image/logs/stdio/raw"));
            assert!(image.contains("not due"), "build {id}: {image}");
        }
    }
    let test_log = d.raw(&format!(
        "builds/{}/steps/test/logs/stdio/raw",
        broken["buildid"]
    ));
    assert!(test_log.contains("fci: test FAILED"), "{test_log}");

    // The shared repository is sound; everything stops and nothing is left running.
    let fsck = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
    d.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = d.processes();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left running: {left:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut log = String::new();
    std::fs::File::open(bbdir.join("master/twistd.log"))
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!log.contains("fci watch exited"), "the watch failed: {log}");
    eprintln!("buildbot: 4 builds on 2 workers in {took:?}");
}

/// The client of Buildbot's REST API: a master answering slowly on a loaded 2-core machine
/// (the suite runs beside it) is not a failure; reqwest's default 30 s is too short for that.
fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(180))
        .build()
        .unwrap()
}
