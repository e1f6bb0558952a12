//! Hostile servers and inputs are read bounded (README "Limits"), and credentials never go
//! in clear to another host. The servers are stand-ins on loopback speaking HTTP: a ResultsDB
//! and an API server whose answers never end; the child's peak memory is measured by the
//! kernel (`wait4`'s rusage), so "bounded" is a number, not a hope.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    &[tool::GIT],
];

/// Far more than any cap, far less than the old code's appetite should be allowed to cost.
const FLOOD: u64 = 256 * 1024 * 1024;
/// What a bounded fci may use at its peak, in KiB.
const PEAK_KIB: u64 = 200 * 1024;

/// An HTTP server on loopback that answers every request with `status` and `len` bytes of
/// `fill`, without a Content-Length (the body runs until the connection closes): as much as
/// the client will take. Counts the requests.
struct Flood {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Flood {
    fn start(status: &'static str, len: u64, fill: &'static [u8]) -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || answer(conn, status, len, fill));
            }
        });
        Flood { port, hits }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn answer(mut conn: TcpStream, status: &str, len: u64, fill: &[u8]) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    );
    let chunk: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0u64;
    while sent < len {
        let n = chunk
            .len()
            .min(usize::try_from(len - sent).unwrap_or(usize::MAX));
        if conn.write_all(&chunk[..n]).is_err() {
            return;
        }
        sent += n as u64;
    }
}

fn spooled(w: &Ws) -> usize {
    let dir = w.ws().join("spool/resultsdb");
    std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .flat_map(|s| std::fs::read_dir(s.path()).into_iter().flatten().flatten())
                .filter(|f| f.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_resultsdb_answer_past_the_cap_is_an_error_naming_it_and_the_results_stay_spooled() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("b.json", &built.manifest());
    let server = Flood::start("200 OK", FLOOD, b"[");
    let mut cmd = w.cmd();
    // A token over plain http to this machine is allowed.
    cmd.env("FCI_RESULTSDB_TOKEN", "fci-bounds-token-1")
        .args(["report", "-m", m.to_str().unwrap(), "--resultsdb-url"])
        .arg(server.url());
    let (r, peak) = run_measured(cmd);
    assert!(
        server.hits.load(Ordering::SeqCst) >= 1,
        "the server was asked"
    );
    eprintln!("peak with a flooding ResultsDB: {peak} KiB");
    assert!(peak < PEAK_KIB, "fci's peak memory was {peak} KiB");
    let rm = r.manifest();
    let rep = r.stage(&rm, "report");
    // The report says why (a warning: stderr without --quiet, and the record's notes).
    let notes = rep["notes"].to_string();
    assert!(
        notes.contains("ResultsDB not reached")
            && notes.contains(&format!(
                "the answer from {}/api/v2.0/ is larger than the 4 MiB limit",
                server.url()
            )),
        "{notes}"
    );
    assert!(!r.stdout.contains("fci-bounds-token-1"), "the token shows");
    let total = rep["data"]["results"].as_u64().unwrap() as usize;
    assert!(total > 0);
    assert_eq!(rep["data"]["resultsdb"]["spooled"], total, "{rep:#}");
    assert_eq!(rep["data"]["resultsdb"]["delivered"], 0, "{rep:#}");
    assert_eq!(spooled(&w), total, "every result is still in the spool");
}

#[test]
fn credentials_never_go_in_clear_to_another_host() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("b.json", &built.manifest());
    let m = m.to_str().unwrap();
    let src = example("hello-atomic");
    // 192.0.2.1 (TEST-NET-1) answers nothing: a connection attempt would hang for seconds.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["report", "-m", m, "--resultsdb-url", "http://192.0.2.1/"],
            vec![("FCI_RESULTSDB_TOKEN", "S3CRET-token")],
            "--resultsdb-url http://192.0.2.1/ is plain http://",
        ),
        (
            vec![
                "report",
                "-m",
                m,
                "--resultsdb-url",
                "http://fci:S3CRET-pw@192.0.2.1/",
            ],
            vec![],
            "--resultsdb-url http://192.0.2.1/ is plain http://",
        ),
        (
            vec![
                "report",
                "-m",
                m,
                "--amqp-url",
                "amqp://fci:S3CRET-pw@192.0.2.1/%2f",
            ],
            vec![],
            "is plain amqp://",
        ),
        // Every stage sends its messages to FCI_AMQP_URL.
        (
            vec!["test", "-m", m],
            vec![("FCI_AMQP_URL", "amqp://fci:S3CRET-pw@192.0.2.1/")],
            "FCI_AMQP_URL amqp://192.0.2.1/ is plain amqp://",
        ),
        (
            vec!["watch", "--amqp-url", "amqp://fci:S3CRET-pw@192.0.2.1/"],
            vec![],
            "--amqp-url amqp://192.0.2.1/ is plain amqp://",
        ),
        (
            vec![
                "build",
                src.to_str().unwrap(),
                "--branch",
                "f41",
                "--lookaside",
                "http://fci:S3CRET-pw@192.0.2.1/repo/pkgs",
            ],
            vec![],
            "--lookaside http://192.0.2.1/repo/pkgs is plain http://",
        ),
        (
            vec![
                "build",
                "http://fci:S3CRET-pw@192.0.2.1/rpms/hello-atomic.git",
            ],
            vec![],
            "dist-git URL http://192.0.2.1/rpms/hello-atomic.git is plain http://",
        ),
    ];
    for (args, env, says) in cases {
        let mut cmd = w.cmd();
        cmd.args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let t = Instant::now();
        let r = Run::from(cmd.output().unwrap());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "{args:?}: took {:?}, as if it tried to connect",
            t.elapsed()
        );
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("S3CRET"), "{args:?}: {}", r.stderr);
    }
    // TLS is fine (nothing listens there: the broker is not reached, the report says so).
    let r = w.run(&[
        "report",
        "-m",
        m,
        "--amqp-url",
        &format!("amqps://fci:S3CRET-pw@127.0.0.1:{}/", free_port()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Plain amqp:// with a password to this machine is fine too.
    let r = w.run(&[
        "report",
        "-m",
        m,
        "--amqp-url",
        &format!("amqp://fci:S3CRET-pw@localhost:{}/", free_port()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("S3CRET"), "{}", r.stderr);
}

#[test]
fn a_manifest_past_the_cap_is_bad_input_naming_the_limit() {
    let w = Ws::new();
    // A valid manifest, padded past 64 MiB with white space: the old code read it whole (and
    // every stage copied it); now it is refused before it is read past the cap.
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let mut text = built.stdout.clone();
    text.push_str(&" ".repeat(64 * 1024 * 1024 + 10));
    let big = w.path().join("big.json");
    std::fs::write(&big, &text).unwrap();
    let mut cmd = w.cmd();
    cmd.args(["report", "-m", big.to_str().unwrap()]);
    let (r, peak) = run_measured(cmd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{}: the manifest is larger than the 64 MiB limit",
            big.display()
        )),
        "{}",
        r.stderr
    );
    assert!(peak < PEAK_KIB, "peak {peak} KiB");
    // The same from stdin.
    let mut child = w
        .cmd()
        .arg("report")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // fci stops reading at the cap: the rest is a broken pipe, as it should be.
        let _ = stdin.write_all(text.as_bytes());
    });
    let r = Run::from(child.wait_with_output().unwrap());
    feeder.join().unwrap();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("<stdin>: the manifest is larger than the 64 MiB limit"),
        "{}",
        r.stderr
    );
}

#[test]
fn report_inputs_are_read_up_to_their_cap_even_from_a_device() {
    let w = Ws::new();
    // /dev/zero has no size to check beforehand, and never ends.
    let mut cmd = w.cmd();
    cmd.args(["gating", "validate", "--gating", "/dev/zero"]);
    let (r, peak) = run_measured(cmd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/dev/zero: cannot read: larger than the 16 MiB limit"),
        "{}",
        r.stderr
    );
    assert!(peak < PEAK_KIB, "peak {peak} KiB");
}

#[test]
fn gating_inputs_never_block_on_a_fifo_and_never_read_the_kernels_log() {
    let w = Ws::new();
    // A package's dist-git may carry its gating.yaml as a link to /proc/kmsg: reading it as
    // root would drain the host's kernel log, and block once it is empty.
    let r = w.run(&["gating", "validate", "--gating", "/proc/kmsg"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/proc/kmsg: cannot read: a kernel interface"),
        "{}",
        r.stderr
    );
    // A FIFO no one writes to: its open would block forever; read without blocking, it ends.
    let fifo = w.path().join("gating.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let start = std::time::Instant::now();
    let r = w.run(&["gating", "validate", "--gating", fifo.to_str().unwrap()]);
    assert!(r.code != 3, "{}", r.stderr);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "it waited"
    );
}

// ---- conform: /readyz and the runner's JUnit ----

/// build | compose of hello-atomic, for real: the composed manifest.
fn composed(w: &Ws) -> PathBuf {
    let base = make_base(w, &["--no-kernel"], |_| {});
    let r = w.run(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    w.save("composed.json", &c.manifest())
}

/// A kubeconfig for a plain-http API server on loopback, without credentials.
fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let p = dir.join(format!("kubeconfig-{}", uuid::Uuid::new_v4()));
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: k\n"
        ),
    )
    .unwrap();
    p
}

fn conform(w: &Ws, m: &Path, k: &Path, junit: &Path, extra: &[&str]) -> (Run, u64) {
    let runner = repo_root().join("tests/hostile/junit-flood/runner.sh");
    let mut cmd = w.cmd();
    cmd.args(["conform", "-m", m.to_str().unwrap(), "--kubeconfig"])
        .arg(k)
        .arg("--runner-cmd")
        .arg(&runner)
        .args(["{junit_dir}", ";"])
        .args(extra)
        .env("BOUNDS_JUNIT", junit);
    run_measured(cmd)
}

fn conform_stage(r: &Run) -> Value {
    let m = r.manifest();
    r.stage(&m, "conform").clone()
}

#[test]
fn conform_reads_readyz_and_junit_bounded() {
    let w = Ws::new();
    let m = composed(&w);
    let dir = w.path();

    // An API server whose /readyz never stops answering: each poll reads the cap, no more.
    let flood = Flood::start("200 OK", FLOOD, b"ok ");
    let k = kubeconfig(dir, &flood.url());
    let junit = dir.join("pass.xml");
    std::fs::write(
        &junit,
        r#"<testsuite tests="1"><testcase name="a [Conformance]"/></testsuite>"#,
    )
    .unwrap();
    let (r, peak) = conform(&w, &m, &k, &junit, &["--ready-timeout", "3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let s = conform_stage(&r);
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    assert!(
        r.stderr.contains("larger than the 64 KiB limit"),
        "{}",
        r.stderr
    );
    assert!(flood.hits.load(Ordering::SeqCst) >= 2, "polled again");
    eprintln!("peak while polling /readyz: {peak} KiB");
    assert!(peak < PEAK_KIB, "peak {peak} KiB while polling /readyz");

    // A ready server from here on.
    let ok = Flood::start("200 OK", 2, b"ok");
    let k = kubeconfig(dir, &ok.url());

    // 200,000 passing cases and 6,000 failing ones: the manifest lists the first 10,000 and
    // 5,000, and counts all of them.
    let junit = dir.join("many.xml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&junit).unwrap());
        write!(
            f,
            r#"<testsuite name="e2e" tests="206000" failures="6000">"#
        )
        .unwrap();
        for i in 0..200_000 {
            write!(f, r#"<testcase name="pass {i} [Conformance]" time="0"/>"#).unwrap();
        }
        for i in 0..6_000 {
            write!(
                f,
                r#"<testcase name="fail {i} [Conformance]"><failure message="boom {i}"/></testcase>"#
            )
            .unwrap();
        }
        write!(f, "</testsuite>").unwrap();
    }
    let (r, _) = conform(&w, &m, &k, &junit, &["--ready-timeout", "30"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let s = conform_stage(&r);
    assert_eq!(s["outcome"], "FAILED");
    assert_eq!(
        s["data"]["tests"],
        serde_json::json!({"passed": 200_000, "failed": 6_000, "errors": 0, "skipped": 0})
    );
    assert_eq!(
        s["data"]["results_unlisted"],
        serde_json::json!({"passed": 190_000, "failed": 1_000})
    );
    let listed = results(&s);
    assert_eq!(listed.len(), 15_000);
    assert_eq!(listed.iter().filter(|(_, o)| o == "FAILED").count(), 5_000);
    assert!(
        r.stdout.len() < 16 * 1024 * 1024,
        "the manifest is {} bytes",
        r.stdout.len()
    );

    // A failure text of 48 MiB (under the file cap): read as it streams, its first line kept.
    let junit = dir.join("huge-failure.xml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&junit).unwrap());
        write!(
            f,
            r#"<testsuite tests="1" failures="1"><testcase name="big [Conformance]"><failure>the first line"#
        )
        .unwrap();
        writeln!(f).unwrap();
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..48 {
            f.write_all(&line).unwrap();
        }
        write!(f, "</failure></testcase></testsuite>").unwrap();
    }
    let (r, peak) = conform(&w, &m, &k, &junit, &["--ready-timeout", "30"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let s = conform_stage(&r);
    assert_eq!(s["results"][0]["note"], "the first line", "{s:#}");
    eprintln!("peak reading a 48 MiB failure text: {peak} KiB");
    // Less than the text itself: it streamed past, never held (nor copied to be scrubbed).
    assert!(peak < 48 * 1024, "peak {peak} KiB reading a 48 MiB failure");

    // Past the file cap: not read, not trusted, the limit named.
    let junit = dir.join("too-big.xml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&junit).unwrap());
        write!(f, r#"<testsuite><testcase name="a"><failure>"#).unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..65 {
            f.write_all(&chunk).unwrap();
        }
        write!(f, "</failure></testcase></testsuite>").unwrap();
    }
    let (r, peak) = conform(&w, &m, &k, &junit, &["--ready-timeout", "30"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let s = conform_stage(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert!(
        r.stderr
            .contains("larger than the 64 MiB limit for a JUnit report; not trusted"),
        "{}",
        r.stderr
    );
    assert!(peak < PEAK_KIB, "peak {peak} KiB");
}

// ---- test: cases reported by the tests ----

/// What fci may use at its peak while it reads a 16 MiB results file, in KiB.
const RESULTS_PEAK_KIB: u64 = 512 * 1024;

#[test]
fn a_flood_of_test_cases_is_listed_to_the_caps_counted_and_bounded() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("built.json", &built.manifest());
    let mut cmd = w.cmd();
    // With a rerun of the 5,000 failed cases listed: looked up among 806,000 results, merged
    // into 15,000 (each lookup linear, as it was, took minutes).
    cmd.args([
        "test",
        "-m",
        m.to_str().unwrap(),
        "--retries",
        "1",
        "--tests-from",
    ])
    .arg(fixture("results-flood"));
    let started = Instant::now();
    let (r, peak) = run_measured(cmd);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let s = r.stage(&out, "test");
    assert_eq!(s["outcome"], "FAILED", "{}", s["notes"]);
    // Two playbooks of 400,000 passing and 3,000 failing cases each: the first 10,000 passed
    // and 5,000 failed are listed, all the others counted.
    // Counted per playbook too (the first one's failures were all listed).
    assert_eq!(
        s["data"]["results_unlisted"],
        serde_json::json!({"passed": 790_000, "skipped": 0, "failed": 1_000, "errors": 0,
        "groups": [
            {"runner": "sti", "playbook": "tests/tests.yml",
             "passed": 390_000, "skipped": 0, "failed": 0, "errors": 0},
            {"runner": "sti", "playbook": "tests/tests_more.yml",
             "passed": 400_000, "skipped": 0, "failed": 1_000, "errors": 0},
        ]})
    );
    let listed = results(s);
    assert_eq!(listed.len(), 15_000);
    assert_eq!(listed.iter().filter(|(_, o)| o == "FAILED").count(), 5_000);
    let rerun = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["attempts"].as_array().is_some_and(|a| a.len() == 2))
        .count();
    assert_eq!(rerun, 5_000, "every failed case listed was run again");
    assert!(
        r.stdout.len() < 16 * 1024 * 1024,
        "the manifest is {} bytes",
        r.stdout.len()
    );
    eprintln!("806,000 cases and a rerun of 5,000 in {took:?}");
    // What stays is bounded by the caps; the peak is one results file's parse (YAML is parsed
    // whole: about 24 times the file, at most 16 MiB), whatever the number of playbooks. The
    // code before the caps took 2.6 GB here and wrote a 130 MB manifest.
    eprintln!("peak with 806,000 cases reported: {peak} KiB");
    assert!(peak < RESULTS_PEAK_KIB, "peak {peak} KiB");
}

#[test]
fn planted_plan_results_past_the_cap_are_an_error() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let r = w.test(
        &built.manifest(),
        &[
            "--tests-from",
            fixture("planted-plan-results").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    let broke = case(s, "tmt");
    let note = broke["note"].as_str().unwrap();
    assert!(note.contains("more than 1000 plans' results"), "{note}");
    // Read up to the cap, not past it: the planted results listed are at most the cap's.
    let planted = results(s)
        .iter()
        .filter(|(n, _)| n.starts_with("/planted/"))
        .count();
    assert!(planted <= 1000, "{planted} planted results read");
}

#[test]
fn a_dist_git_tree_past_its_cap_is_refused_before_checkout() {
    // A push of about a megabyte whose tree holds 1.1 GB of zeros.
    let w = Ws::new();
    let repo = w.path().join("bomb");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=Mallory", "-c", "user.email=m@example.org"])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "f41"]);
    std::fs::copy(
        repo_root().join("examples/hello-atomic/hello-atomic.spec"),
        repo.join("hello-atomic.spec"),
    )
    .unwrap();
    let big = std::fs::File::create(repo.join("zeros.bin")).unwrap();
    big.set_len(1100 * 1024 * 1024).unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "a bomb"]);
    std::fs::remove_file(repo.join("zeros.bin")).unwrap();
    let url = format!("file://{}", repo.display());
    let r = w.run(&["build", &url, "--branch", "f41"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("more than the 1 GiB"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // Nothing of it was written out.
    let used = Command::new("du")
        .args(["-sk"])
        .arg(w.ws())
        .output()
        .unwrap();
    let kib: u64 = String::from_utf8_lossy(&used.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 64 * 1024, "the workspace holds {kib} KiB");
}
