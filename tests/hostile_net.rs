//! Where a credential may go, and what a manifest may make fci read: a secret in a URL's query
//! is a credential like a password (never in clear to another host, never shown); a token for
//! a loopback server never leaves this machine through a proxy nor follows a redirect; an
//! fci.yaml a manifest names is read bounded and never quoted. The servers are stand-ins on
//! loopback speaking HTTP (a ResultsDB, a proxy, a redirecting server).

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD];

/// A manifest with nothing in it but its run (enough for `fci report`).
fn bare_manifest(w: &Ws) -> String {
    let m = json!({
        "schema": "fci/manifest/v1",
        "run": {"id": "r1", "created": "2026-01-01T00:00:00Z", "fci_version": "0.1.0"},
    });
    w.save("bare.json", &m).to_string_lossy().into_owned()
}

/// An HTTP server on loopback that records each request's head (request line and headers)
/// and answers with `answer(head)`.
struct Recorder {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start(answer: fn(&str, u16) -> String) -> Recorder {
        // `answer` is given the request's head (its first line first) and the port.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let h = h.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    h.lock().unwrap().push(head.clone());
                    let _ = conn.write_all(answer(&head, port).as_bytes());
                });
            }
        });
        Recorder { port, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

#[test]
fn a_secret_in_a_url_query_is_a_credential_never_sent_in_clear_nor_shown() {
    let w = Ws::new();
    let m = bare_manifest(&w);
    let db = common::resultsdb::StandIn::start(&["PASSED", "FAILED"]);
    let src = example("hello-atomic");
    let on_loopback = format!("{}/?access_token=S3CRET", db.url());
    // 192.0.2.2 (TEST-NET-1) answers nothing: a connection attempt would hang for seconds.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "report",
                "-m",
                &m,
                "--resultsdb-url",
                "http://192.0.2.2:8765/?access_token=S3CRET",
            ],
            "--resultsdb-url http://192.0.2.2:8765/?access_token=*** is plain http://",
        ),
        (
            vec![
                "report",
                "-m",
                &m,
                "--resultsdb-url",
                "http://192.0.2.2/?x=1&Private_Token=S3CRET",
            ],
            "is plain http://",
        ),
        // On loopback, a query is still no way to name a ResultsDB: the API's paths go after
        // the URL (the old code asked `GET /?access_token=S3CRET/api/v2.0/`).
        (
            vec!["report", "-m", &m, "--resultsdb-url", &on_loopback],
            "has a query or fragment, which is refused",
        ),
        (
            vec![
                "report",
                "-m",
                &m,
                "--amqp-url",
                "amqp://192.0.2.2/%2f?password=S3CRET",
            ],
            "is plain amqp://",
        ),
        (
            vec![
                "report",
                "-m",
                &m,
                "--waiverdb-url",
                "http://192.0.2.2:8766/?access_token=S3CRET",
            ],
            "--waiverdb-url http://192.0.2.2:8766/?access_token=*** is plain http://",
        ),
        (
            vec![
                "gating",
                "waive",
                "fedora-ci.koji-build.tier0.functional",
                "--force",
                "--comment",
                "x",
                "--subject-identifier",
                "hello-1.0-1.fc41",
                "--product-version",
                "fedora-41",
                "--waiverdb-url",
                "http://192.0.2.2:8766/?access_token=S3CRET",
            ],
            "is plain http://",
        ),
        (
            vec![
                "build",
                src.to_str().unwrap(),
                "--branch",
                "f41",
                "--lookaside",
                "http://192.0.2.2/repo/pkgs?token=S3CRET",
            ],
            "--lookaside http://192.0.2.2/repo/pkgs?token=*** is plain http://",
        ),
    ];
    for (args, says) in cases {
        let t = Instant::now();
        let r = w.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "{args:?}: took {:?}, as if it tried to connect",
            t.elapsed()
        );
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("S3CRET"), "{args:?}: {}", r.stderr);
        assert!(!r.stdout.contains("S3CRET"), "{args:?}: {}", r.stdout);
    }
    assert!(
        db.state.lock().unwrap().authorization.is_empty(),
        "the ResultsDB was asked"
    );
}

#[test]
fn a_token_for_a_loopback_resultsdb_never_goes_through_a_proxy() {
    let w = Ws::new();
    let m = bare_manifest(&w);
    // A ResultsDB's API root (outcomes), recording what it is sent.
    let db = Recorder::start(|_, _| {
        let body = r#"{"outcomes": ["PASSED", "FAILED"]}"#;
        format!(
            "HTTP/1.1 300 Multiple Choices\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let db_url = format!("http://127.0.0.1:{}/", db.port);
    // A proxy that reads what it is sent and answers 502.
    let proxy = Recorder::start(|_, _| {
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    });
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let mut cmd = w.cmd();
    cmd.args(["report", "-m", &m, "--resultsdb-url", &db_url])
        .env("FCI_RESULTSDB_TOKEN", "S3CRET")
        .env("FCI_RESULTSDB_TIMEOUT", "3");
    for k in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env(k, &proxy_url);
    }
    for k in ["NO_PROXY", "no_proxy"] {
        cmd.env_remove(k);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let heads = proxy.heads();
    assert!(heads.is_empty(), "the proxy was sent: {heads:?}");
    // The server itself was asked, with the token.
    let asked = db.heads();
    assert!(
        !asked.is_empty(),
        "the ResultsDB was never asked: {}",
        r.stderr
    );
    assert!(
        asked.iter().all(|h| h
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cret")),
        "{asked:?}"
    );
}

#[test]
fn a_token_never_follows_a_redirect() {
    let w = Ws::new();
    let m = bare_manifest(&w);
    // Every request but one for /elsewhere is sent there, on the same host and port (where
    // reqwest keeps `Authorization`, even from https to plain http).
    let server = Recorder::start(|first, port| {
        if first.contains(" /elsewhere") {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        } else {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/elsewhere\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
    });
    let mut cmd = w.cmd();
    cmd.args([
        "report",
        "-m",
        &m,
        "--resultsdb-url",
        &format!("http://127.0.0.1:{}/", server.port),
    ])
    .env("FCI_RESULTSDB_TOKEN", "S3CRET")
    .env("FCI_RESULTSDB_TIMEOUT", "3");
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let heads = server.heads();
    assert!(
        !heads.is_empty(),
        "the server was never asked: {}",
        r.stderr
    );
    assert!(
        heads.iter().all(|h| !h.contains("/elsewhere")),
        "a redirect was followed: {heads:?}"
    );
}

#[test]
fn a_config_a_manifest_names_is_read_bounded_and_never_quoted() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let shadow = w.path().join("fake-shadow");
    std::fs::write(&shadow, "root:$6$FAKEHASHS3CRET:19000:0:99999:7:::\n").unwrap();
    let sha = fci::digest::sha256_bytes(&std::fs::read(&shadow).unwrap());
    let fifo = w.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let zeros = "0".repeat(64);
    // As from another workspace: in this one, the run's records bind run.config and refuse
    // any edit of it first (hostile_gating::an_edited_run_config_is_refused_by_the_next_stage);
    // what is checked here is how a config a manifest names is read.
    w.forget_records();
    for (path, sha256, says) in [
        (
            shadow.display().to_string(),
            sha.clone(),
            "not a valid fci.yaml (line 1, column 1)",
        ),
        (
            shadow.display().to_string(),
            zeros.clone(),
            "changed since fci watch read it",
        ),
        ("/dev/zero".to_string(), zeros.clone(), "not a regular file"),
        (
            fifo.display().to_string(),
            zeros.clone(),
            "not a regular file",
        ),
    ] {
        let mut m: Value = built.manifest();
        m["run"]["config"] = json!({"path": path, "sha256": sha256});
        let t = Instant::now();
        let mut cmd = w.cmd();
        let p = w.save("edited.json", &m);
        cmd.args(["test", "--no-cache", "-m", p.to_str().unwrap()]);
        // The old code read /dev/zero whole: bounded here so it fails rather than swaps.
        let r = Run::from(
            std::process::Command::new("timeout")
                .arg("120")
                .arg(cmd.get_program())
                .args(cmd.get_args())
                .output()
                .unwrap(),
        );
        assert!(
            t.elapsed() < Duration::from_secs(100),
            "{path}: took {:?}",
            t.elapsed()
        );
        let out = r.manifest();
        let log = out["stages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s["name"] == "test")
            .and_then(|s| s["log"].as_str())
            .map(|l| std::fs::read_to_string(w.ws().join(l)).unwrap())
            .unwrap_or_else(|| panic!("{path}: no test log: {out:#}"));
        let said: Vec<&str> = log.lines().filter(|l| l.starts_with("# limits")).collect();
        assert!(log.contains(says), "{path}: {said:?}");
        assert!(log.contains("its limits: are not used"), "{path}: {log}");
        assert!(
            !log.contains("S3CRET") && !log.contains("root:"),
            "{path}: {log}"
        );
        assert!(!r.stderr.contains("S3CRET"), "{path}: {}", r.stderr);
    }
}

/// A ResultsDB that refuses each result with a message quoting the request's headers (as a
/// debugging proxy or a verbose error page does): the token it quotes is never shown.
#[test]
fn a_token_a_server_quotes_back_is_never_shown_or_recorded() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("built.json", &built.manifest());
    let db = Recorder::start(|head, _| {
        let reply = |status: &str, body: String| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        if head.starts_with("GET /api/v2.0/ ") {
            reply(
                "300 Multiple Choices",
                r#"{"outcomes": ["PASSED", "FAILED", "INFO", "NEEDS_INSPECTION"]}"#.into(),
            )
        } else if head.starts_with("GET ") {
            reply("200 OK", r#"{"data": []}"#.into())
        } else {
            reply(
                "400 Bad Request",
                json!({"message": format!("refused: {head}")}).to_string(),
            )
        }
    });
    let out = w.path().join("reported.json");
    let mut cmd = w.cmd();
    cmd.args([
        "report",
        "-m",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .args(["--resultsdb-url", &format!("http://127.0.0.1:{}/", db.port)])
    .env("FCI_RESULTSDB_TOKEN", "SuperSecretToken123")
    .env("FCI_RESULTSDB_TIMEOUT", "3");
    let r = Run::from(cmd.output().unwrap());
    // The server saw the token and quoted it back.
    assert!(db.heads().iter().any(|h| h.contains("SuperSecretToken123")));
    let reported = std::fs::read_to_string(&out).unwrap_or_default();
    // Refused, and said so with the server's words, the token masked.
    assert!(reported.contains("HTTP 400: "), "{}\n{reported}", r.stderr);
    assert!(reported.contains("***"), "{reported}");
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("manifest", &reported),
    ] {
        assert!(!text.contains("SuperSecretToken123"), "{what}: {text}");
    }
    let grep = std::process::Command::new("grep")
        .args(["-rl", "--binary-files=text", "SuperSecretToken123"])
        .arg(w.ws())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "recorded in: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

/// A server that answers every lookup with some other result (it ignores the filter) cannot
/// say whether fci's result is stored: nothing is marked delivered, nothing is posted, and
/// the results stay spooled for a later delivery.
#[test]
fn a_lookup_answered_with_other_results_delivers_nothing() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("built.json", &built.manifest());
    let db = Recorder::start(|head, _| {
        let body = if head.starts_with("GET /api/v2.0/ ") {
            r#"{"outcomes": ["PASSED", "FAILED", "INFO", "NEEDS_INSPECTION"]}"#
        } else if head.starts_with("GET ") {
            r#"{"data": [{"id": 7, "data": {"fci_result_id": ["another-result"]}}]}"#
        } else {
            r#"{"id": 8}"#
        };
        let status = if head.starts_with("GET /api/v2.0/ ") {
            "300 Multiple Choices"
        } else {
            "200 OK"
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let out = w.path().join("reported.json");
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--resultsdb-url",
        &format!("http://127.0.0.1:{}/", db.port),
    ]);
    let reported = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        reported.contains("ignores the fci_result_id filter"),
        "{}\n{reported}",
        r.stderr
    );
    let posts: Vec<String> = db
        .heads()
        .into_iter()
        .filter(|h| h.starts_with("POST"))
        .collect();
    assert!(posts.is_empty(), "posted: {posts:?}");
}

/// A password in --resultsdb-url, in every form it travels in: the server quotes the Basic
/// header back (base64 of the decoded pair) and the decoded password; and a redirect that
/// would put it into a path is never followed.
#[test]
fn a_password_in_the_resultsdb_url_is_masked_in_every_form_and_never_redirected() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = w.save("built.json", &built.manifest());
    let db = Recorder::start(|head, port| {
        let reply = |status: &str, extra: String, body: String| {
            format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        if head.starts_with("GET /api/v2.0/ ") {
            // Sent on to a path that names the password.
            reply(
                "307 Temporary Redirect",
                format!("Location: http://127.0.0.1:{port}/leak/Pa#ss@word9\r\n"),
                String::new(),
            )
        } else if head.starts_with("GET ") {
            reply("200 OK", String::new(), r#"{"data": []}"#.into())
        } else {
            let auth = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .unwrap_or_default()
                .to_string();
            reply(
                "400 Bad Request",
                String::new(),
                json!({"message": format!("refused {auth} for user fciuser, password Pa#ss@word9")})
                    .to_string(),
            )
        }
    });
    let out = w.path().join("reported.json");
    let url = format!("http://fciuser:Pa%23ss%40word9@127.0.0.1:{}/", db.port);
    let r = w.run(&[
        "report",
        "-m",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--resultsdb-url",
        &url,
    ]);
    let heads = db.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: basic")),
        "{heads:?}"
    );
    assert!(
        heads.iter().all(|h| !h.contains("/leak")),
        "a redirect was followed: {heads:?}"
    );
    assert!(heads.iter().any(|h| h.starts_with("POST")), "{heads:?}");
    let reported = std::fs::read_to_string(&out).unwrap_or_default();
    // The refusal is recorded with the server's words, every form of the password masked.
    assert!(reported.contains("HTTP 400: "), "{}\n{reported}", r.stderr);
    let basic = "ZmNpdXNlcjpQYSNzc0B3b3JkOQ=="; // base64("fciuser:Pa#ss@word9")
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("manifest", &reported),
    ] {
        for secret in ["Pa#ss@word9", "Pa%23ss%40word9", basic] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
    let grep = std::process::Command::new("grep")
        .args([
            "-rlE",
            "--binary-files=text",
            "Pa#ss@word9|ZmNpdXNlcjpQYSNzc0B3b3JkOQ",
        ])
        .arg(w.ws())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "recorded in: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}
