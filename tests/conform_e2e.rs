//! `fci conform` through the real binary, on a manifest from a real build | compose chain.
//! There is no Kubernetes cluster here: the API server is a stand-in speaking its wire format
//! (`tests/fixtures/conform/readyz.py`: /readyz over TLS with certificates the real openssl
//! makes, 503 `[-]etcd failed` before it is ready, 401 for wrong credentials), and the runners
//! are stand-ins named like sonobuoy, e2e.test and openshift-tests that record their command
//! lines and write JUnit shaped like e2e.test's. fci's code path is the one a real cluster
//! takes.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE, tool::CONFORM];

const TOKEN: &str = "fci-test-token-7d1e0c55";

fn fixtures() -> PathBuf {
    fixture("conform")
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made once by openssl.
fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        needs();
        let dir = tempfile::tempdir().unwrap().keep();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=fci-test-ca",
        ]);
        openssl(&dir, &ca);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (who, cn) in [
            ("server", "/CN=kube-apiserver"),
            ("client", "/O=system:masters/CN=admin"),
        ] {
            let mut req = vec!["req"];
            req.extend(ec);
            let (key, csr, crt, ext) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.crt"),
                format!("{who}.ext"),
            );
            req.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
            openssl(&dir, &req);
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &crt,
                    "-extfile",
                    &ext,
                ],
            );
        }
        dir
    })
}

/// The stand-in API server; killed when dropped.
struct Api {
    child: Child,
    port: u16,
    /// readyz.py's log: a line for each request it answered.
    log: PathBuf,
}

impl Api {
    /// Whether a client asked for /readyz yet.
    fn asked_readyz(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains("GET /readyz"))
    }

    /// Ready after `ready_after` seconds (never if negative); `client_ca`: require a client
    /// certificate instead of the token.
    fn start(dir: &Path, ready_after: f64, client_ca: bool) -> Api {
        Api::answering(dir, ready_after, client_ca, "ok")
    }

    /// `answer`: what /readyz says once ready (`ok`, `redirect`, `page`).
    fn answering(dir: &Path, ready_after: f64, client_ca: bool, answer: &str) -> Api {
        let c = certs();
        let port_file = dir.join(format!("port-{}", uuid::Uuid::new_v4()));
        let mut cmd = Command::new("python3");
        cmd.arg(fixtures().join("readyz.py"))
            .arg("--cert")
            .arg(c.join("server.crt"))
            .arg("--key")
            .arg(c.join("server.key"))
            .arg("--ready-after")
            .arg(ready_after.to_string())
            .arg("--port-file")
            .arg(&port_file)
            .args(["--answer", answer])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(port_file.with_extension("log")).unwrap());
        if client_ca {
            cmd.arg("--ca").arg(c.join("ca.crt"));
        } else {
            cmd.args(["--token", TOKEN]);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "readyz.py did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Api {
            child,
            port,
            log: port_file.with_extension("log"),
        }
    }

    fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A kubeconfig for `server` with the token and the CA inline, as kubeadm writes admin.conf.
fn token_kubeconfig(dir: &Path, server: &str, token: &str) -> PathBuf {
    let ca = std::fs::read(certs().join("ca.crt")).unwrap();
    let p = dir.join(format!("kubeconfig-{}", uuid::Uuid::new_v4()));
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: admin@test\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: admin@test\n  context:\n    cluster: test\n    user: admin\nusers:\n- name: admin\n  user:\n    token: {token}\n",
            b64(&ca)
        ),
    )
    .unwrap();
    p
}

/// A kubeconfig with files beside it (paths relative to it): the CA and a client certificate.
fn cert_kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let kdir = dir.join(format!("kube-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(kdir.join("pki")).unwrap();
    for f in ["ca.crt", "client.crt", "client.key"] {
        std::fs::copy(certs().join(f), kdir.join("pki").join(f)).unwrap();
    }
    let p = kdir.join("config");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: ctx\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority: pki/ca.crt\ncontexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    client-certificate: pki/client.crt\n    client-key: pki/client.key\n"
        ),
    )
    .unwrap();
    p
}

/// build | compose of hello-atomic, for real: the manifest file composed.
fn composed(w: &Ws) -> PathBuf {
    needs();
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

/// A test's world: workspace, composed manifest, and a directory the stand-ins report into.
struct World {
    w: Ws,
    m: PathBuf,
    dir: PathBuf,
}

impl World {
    fn new() -> World {
        let w = Ws::new();
        let m = composed(&w);
        let dir = w.path().join("marks");
        std::fs::create_dir_all(&dir).unwrap();
        World { w, m, dir }
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)], with_standins: bool) -> Command {
        let mut c = self.w.cmd();
        c.arg("conform").arg("-m").arg(&self.m).args(args);
        c.env("CONFORM_DIR", &self.dir);
        let path = std::env::var("PATH").unwrap();
        if with_standins {
            c.env(
                "PATH",
                format!("{}:{path}", fixtures().join("bin").display()),
            );
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::from(self.cmd(args, env, true).output().unwrap())
    }

    fn mark(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn teardowns(&self) -> usize {
        self.mark("teardown.runs").lines().count()
    }

    fn log_of(&self, stage: &Value) -> String {
        std::fs::read_to_string(self.w.ws().join(stage["log"].as_str().unwrap())).unwrap()
    }
}

fn script(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// `--runner-cmd runner.sh {junit_dir} ;` and `--teardown teardown.sh {workdir} ;`.
fn custom_runner_args(k: &Path) -> Vec<String> {
    vec![
        "--kubeconfig".into(),
        k.display().to_string(),
        "--runner-cmd".into(),
        script("runner.sh"),
        "{junit_dir}".into(),
        ";".into(),
        "--teardown".into(),
        script("teardown.sh"),
        "{workdir}".into(),
        ";".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn conform_record(r: &Run) -> (Value, Value) {
    let m = r.manifest();
    let s = r.stage(&m, "conform").clone();
    (m, s)
}

#[test]
fn ready_after_a_delay_then_passed_with_sonobuoy() {
    let x = World::new();
    let api = Api::start(x.w.path(), 2.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let teardown = script("teardown.sh");
    let r = x.run(
        &[
            "--kubeconfig",
            k.to_str().unwrap(),
            "--teardown",
            &teardown,
            "{workdir}",
            ";",
        ],
        &[("CONFORM_JUNIT", "pass")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (m, s) = conform_record(&r);
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(s["backend"], "sonobuoy");
    assert_eq!(s["data"]["server"], api.server().as_str());
    assert_eq!(s["data"]["auth"], "token");
    assert_eq!(s["data"]["mode"], "certified-conformance");
    let waited = s["data"]["ready_wait_s"].as_f64().unwrap();
    assert!(
        waited >= 1.5,
        "ready after {waited}s, before the server was"
    );
    assert_eq!(
        s["data"]["tests"],
        serde_json::json!({"passed": 3, "failed": 0, "errors": 0, "skipped": 6700})
    );
    // Only what ran is a result; the 6,700 skipped cases are a count.
    let res = results(&s);
    assert_eq!(res.len(), 3, "{res:?}");
    assert!(res
        .iter()
        .all(|(n, o)| o == "PASSED" && n.contains("[Conformance]")));
    // The JUnit report is in the workspace, as the tarball had it.
    let junit: Vec<&Value> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "junit")
        .collect();
    assert_eq!(junit.len(), 1, "{m:#}");
    assert_eq!(junit[0]["stage"], "conform");
    let stored =
        std::fs::read_to_string(x.w.ws().join(junit[0]["path"].as_str().unwrap())).unwrap();
    assert!(stored.contains("<testsuite name=\"Kubernetes e2e suite\""));
    // sonobuoy's command lines: run, retrieve into the work directory, delete.
    let calls = x.mark("sonobuoy.calls");
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 3, "{calls}");
    assert!(
        lines[0].starts_with("run --kubeconfig ")
            && lines[0].ends_with(" --mode certified-conformance --wait"),
        "{calls}"
    );
    assert!(lines[0].contains(k.to_str().unwrap()), "{calls}");
    assert!(lines[1].starts_with("retrieve --kubeconfig "), "{calls}");
    assert!(
        lines[2].starts_with("delete --kubeconfig ") && lines[2].ends_with(" --wait"),
        "{calls}"
    );
    assert_eq!(x.teardowns(), 1);
    // The token went to the server only.
    for (what, text) in [
        ("stderr", &r.stderr),
        ("manifest", &r.stdout),
        ("log", &x.log_of(&s)),
    ] {
        assert!(!text.contains(TOKEN), "the token is in the {what}");
    }
    assert!(x.w.leftovers().is_empty(), "{:?}", x.w.leftovers());
}

#[test]
fn a_failing_conformance_test_fails_the_stage_naming_it() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", "fail")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[sig-network] DNS should provide DNS for services  [Conformance]"),
        "{}",
        r.stderr
    );
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "FAILED");
    assert_eq!(s["backend"], "custom");
    assert_eq!(s["data"]["tests"]["failed"], 1);
    assert_eq!(s["data"]["runner_exit"], 1);
    let failed: Vec<&Value> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["note"], "timed out waiting for the condition");
    // The runner's own exit status is noted; the JUnit decided.
    assert!(s["notes"].to_string().contains("exited 1"), "{s:#}");
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn a_kubeconfig_or_a_file_it_names_that_never_ends_is_refused_bounded() {
    let x = World::new();
    let bad = |kubeconfig: &Path, needles: &[&str]| {
        let k = kubeconfig.to_str().unwrap();
        let r = x.run(&["--kubeconfig", k, "--teardown", "teardown.sh", ";"], &[]);
        assert_eq!(r.code, 2, "{k}: {}", r.stderr);
        for n in needles {
            assert!(r.stderr.contains(n), "`{}` lacks `{n}`", r.stderr);
        }
    };
    // The kubeconfig a FIFO (reading it would hang), a device, or past its cap.
    let fifo = x.w.path().join("fifo.kubeconfig");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    bad(&fifo, &["fifo.kubeconfig", "not a regular file"]);
    bad(Path::new("/dev/zero"), &["/dev/zero", "not a regular file"]);
    let huge = x.w.path().join("huge.kubeconfig");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    bad(&huge, &["huge.kubeconfig", "larger than the 1 MiB limit"]);
    // A tokenFile that is /dev/zero: never read without end.
    let k = token_kubeconfig(x.w.path(), "https://127.0.0.1:1", TOKEN);
    let zero = x.w.path().join("zero.kubeconfig");
    std::fs::write(
        &zero,
        std::fs::read_to_string(&k)
            .unwrap()
            .replace(&format!("token: {TOKEN}"), "tokenFile: /dev/zero"),
    )
    .unwrap();
    bad(&zero, &["tokenFile /dev/zero", "not a regular file"]);
}

#[test]
fn a_missing_or_invalid_kubeconfig_is_bad_input() {
    let x = World::new();
    let out = x.w.path().join("out.json");
    let o = out.to_str().unwrap();
    let bad = |args: &[&str], needles: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-o", o, "--teardown", "teardown.sh", ";"]);
        let r = x.run(&all, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", r.stderr);
        for n in needles {
            assert!(lines[0].contains(n), "`{}` lacks `{n}`", lines[0]);
        }
        assert!(
            r.stdout.is_empty() && !out.exists(),
            "a manifest was written"
        );
    };
    let missing = x.w.path().join("absent.kubeconfig");
    bad(
        &["--kubeconfig", missing.to_str().unwrap()],
        &["absent.kubeconfig", "cannot read kubeconfig"],
    );
    let garbage = x.w.path().join("garbage.kubeconfig");
    std::fs::write(&garbage, "{ this: is: not yaml").unwrap();
    bad(
        &["--kubeconfig", garbage.to_str().unwrap()],
        &["garbage.kubeconfig", "not a kubeconfig"],
    );
    let k = token_kubeconfig(x.w.path(), "https://127.0.0.1:1", TOKEN);
    bad(
        &["--kubeconfig", k.to_str().unwrap(), "--context", "nope"],
        &[k.to_str().unwrap(), "no context named `nope`"],
    );
    let lost = x.w.path().join("lost.kubeconfig");
    std::fs::write(
        &lost,
        std::fs::read_to_string(&k)
            .unwrap()
            .replace("cluster: test", "cluster: elsewhere"),
    )
    .unwrap();
    bad(
        &["--kubeconfig", lost.to_str().unwrap()],
        &["lost.kubeconfig", "unknown cluster `elsewhere`"],
    );
    let plugin = x.w.path().join("plugin.kubeconfig");
    std::fs::write(
        &plugin,
        std::fs::read_to_string(&k).unwrap().replace(
            &format!("token: {TOKEN}"),
            "exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1beta1",
        ),
    )
    .unwrap();
    bad(
        &["--kubeconfig", plugin.to_str().unwrap()],
        &["plugin.kubeconfig", "exec"],
    );
    let ftp = x.w.path().join("ftp.kubeconfig");
    std::fs::write(
        &ftp,
        std::fs::read_to_string(&k)
            .unwrap()
            .replace("https://127.0.0.1:1", "ftp://127.0.0.1"),
    )
    .unwrap();
    bad(
        &["--kubeconfig", ftp.to_str().unwrap()],
        &["ftp.kubeconfig", "not an https://"],
    );
    // An unknown placeholder, and {image} without an image.
    bad(
        &[
            "--kubeconfig",
            k.to_str().unwrap(),
            "--runner-cmd",
            "x",
            "{nope}",
            ";",
        ],
        &["unknown placeholder {nope}"],
    );
    bad(
        &["--installer", "x", "{image}", ";"],
        &["{image}", "no `image` artifact"],
    );
    assert_eq!(x.teardowns(), 0, "a teardown ran for nothing");
}

#[test]
fn a_failing_installer_is_an_error_and_the_teardown_runs() {
    let x = World::new();
    let (inst, td) = (script("installer.sh"), script("teardown.sh"));
    let r = x.run(
        &[
            "--installer",
            &inst,
            "{kubeconfig}",
            ";",
            "--teardown",
            &td,
            ";",
        ],
        &[("CONFORM_INSTALL", "fail")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("installer") && r.stderr.contains("exited 2"),
        "{}",
        r.stderr
    );
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(s["data"]["installer_exit"], 2);
    assert_eq!(s["data"]["teardown_exit"], 0);
    assert!(r.stderr.contains("fatal: [node1]: FAILED!"), "{}", r.stderr);
    assert!(x.log_of(&s).contains("fatal: [node1]"));
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn an_installer_that_leaves_no_kubeconfig_is_an_error() {
    let x = World::new();
    let (inst, td) = (script("installer.sh"), script("teardown.sh"));
    let r = x.run(
        &[
            "--installer",
            &inst,
            "{kubeconfig}",
            ";",
            "--teardown",
            &td,
            ";",
        ],
        &[("CONFORM_INSTALL", "nokube")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("left no kubeconfig at ") && r.stderr.contains("/work/kubeconfig"),
        "{}",
        r.stderr
    );
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn an_installed_cluster_with_placeholders_as_single_arguments_passes() {
    let x = World::new();
    let api = Api::start(x.w.path(), 1.0, true);
    let k = cert_kubeconfig(x.w.path(), &api.server());
    let (inst, run, td) = (
        script("installer.sh"),
        script("runner.sh"),
        script("teardown.sh"),
    );
    let r = x.run(
        &[
            "--installer",
            &inst,
            "{kubeconfig}",
            "--tree={repo}",
            "commit {compose}",
            "{ref}",
            "-x",
            ";",
            "--runner-cmd",
            &run,
            "{junit_dir}",
            "k {kubeconfig}",
            "{workdir}",
            ";",
            "--teardown",
            &td,
            "{workdir}",
            ";",
        ],
        &[
            ("CONFORM_INSTALL", "ok"),
            ("CONFORM_KUBECONFIG", k.to_str().unwrap()),
            ("CONFORM_JUNIT", "pass"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (m, s) = conform_record(&r);
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(s["data"]["auth"], "client-certificate");
    assert_eq!(s["data"]["installer_exit"], 0);
    let compose = r.stage(&m, "compose");
    let commit = compose["data"]["commit"].as_str().unwrap();
    let cref = compose["data"]["ref"].as_str().unwrap();
    let argv = x.mark("installer.argv");
    let lines: Vec<&str> = argv.lines().collect();
    assert_eq!(lines.len(), 5, "{argv}");
    assert!(lines[0].ends_with("/work/kubeconfig"), "{argv}");
    assert_eq!(
        lines[1],
        format!("--tree={}", x.w.ws().join("ostree/repo").display())
    );
    assert_eq!(lines[2], format!("commit {commit}"));
    assert_eq!(lines[3], cref);
    assert_eq!(lines[4], "-x");
    let rargv = x.mark("runner.argv");
    let rl: Vec<&str> = rargv.lines().collect();
    assert_eq!(rl.len(), 3, "{rargv}");
    assert!(rl[0].ends_with("/junit"), "{rargv}");
    assert_eq!(rl[1], format!("k {}", lines[0]));
    assert_eq!(
        x.mark("teardown.runs").trim(),
        format!("teardown {}", rl[2])
    );
}

#[test]
fn a_missing_runner_is_an_infrastructure_error_naming_it() {
    let x = World::new();
    let k = token_kubeconfig(x.w.path(), "https://127.0.0.1:1", TOKEN);
    let out = x
        .cmd(
            &["--kubeconfig", k.to_str().unwrap(), "--runner", "e2e.test"],
            &[],
            false,
        )
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("e2e.test not found on PATH"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("dl.k8s.io"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
}

/// A run of the custom runner with `junit` as its report; returns it and the record.
fn with_report(junit: &str) -> (World, Run) {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", junit)]);
    (x, r)
}

#[test]
fn a_truncated_junit_report_is_never_a_pass() {
    let (x, r) = with_report("truncated");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("JUnit report junit_01.xml") && r.stderr.contains("not trusted"),
        "{}",
        r.stderr
    );
    let (m, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    // Kept for a look.
    assert!(m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "junit"));
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn a_junit_report_that_is_not_xml_is_never_a_pass() {
    let (x, r) = with_report("notxml");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("junit_01.xml"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn no_junit_report_is_an_error() {
    let (x, r) = with_report("none");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("left no JUnit report"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn a_server_that_never_gets_ready_is_an_error_after_the_timeout() {
    let x = World::new();
    let api = Api::start(x.w.path(), -1.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let mut args = custom_runner_args(&k);
    args.extend(["--ready-timeout".into(), "3".into()]);
    let start = Instant::now();
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "pass")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(
        r.stderr
            .contains(&format!("{}/readyz was not ready", api.server())),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("[-]etcd failed: reason withheld"),
        "{}",
        r.stderr
    );
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert!(
        x.mark("runner.argv").is_empty(),
        "the suite ran on an unready cluster"
    );
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn refused_credentials_are_an_error_that_never_shows_the_token() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let wrong = "wrong-token-5b9f0a";
    let k = token_kubeconfig(x.w.path(), &api.server(), wrong);
    let start = Instant::now();
    let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", "pass")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    // At once: waiting does not mend credentials.
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    for (what, text) in [
        ("stderr", &r.stderr),
        ("manifest", &r.stdout),
        ("log", &x.log_of(&s)),
    ] {
        assert!(!text.contains(wrong), "the token is in the {what}");
    }
    assert_eq!(x.teardowns(), 1);
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
}

#[test]
fn a_signal_kills_the_runner_and_the_teardown_still_runs() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let x = World::new();
        let api = Api::start(x.w.path(), 0.0, false);
        let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
        let child = x
            .cmd(
                &strs(&custom_runner_args(&k)),
                &[("CONFORM_JUNIT", "sleep")],
                true,
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pids_file = x.dir.join("runner.pids");
        let deadline = Instant::now() + Duration::from_secs(30);
        let pids: Vec<i32> = loop {
            if let Ok(t) = std::fs::read_to_string(&pids_file) {
                if t.ends_with('\n') {
                    break t.split_whitespace().map(|p| p.parse().unwrap()).collect();
                }
            }
            assert!(Instant::now() < deadline, "the runner never started");
            std::thread::sleep(Duration::from_millis(50));
        };
        // SAFETY: a signal to the fci this test started.
        unsafe { libc::kill(child.id() as i32, sig) };
        let start = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}: fci took its time"
        );
        let r = Run::from(out);
        assert_eq!(r.code, 3, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("interrupted by {name}")),
            "{}",
            r.stderr
        );
        let (_, s) = conform_record(&r);
        assert_eq!(s["outcome"], "ERROR");
        assert_eq!(s["data"]["interrupted"], name);
        assert_eq!(x.teardowns(), 1, "{name}");
        for p in pids {
            assert!(!alive(p), "{name}: runner process {p} is still running");
        }
        assert!(x.w.leftovers().is_empty(), "{:?}", x.w.leftovers());
    }
}

#[test]
fn a_runner_past_its_timeout_is_killed_with_its_children() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let mut args = custom_runner_args(&k);
    args.extend(["--timeout".into(), "2".into()]);
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "sleep")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--timeout 2s"), "{}", r.stderr);
    let pids = x.mark("runner.pids");
    for p in pids.split_whitespace() {
        assert!(
            !alive(p.parse().unwrap()),
            "runner process {p} outlived the timeout"
        );
    }
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn e2e_test_and_openshift_tests_command_lines() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let r = x.run(
        &["--kubeconfig", k.to_str().unwrap(), "--runner", "e2e.test"],
        &[("CONFORM_JUNIT", "pass")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["backend"], "e2e.test");
    let argv = x.mark("e2e.test.argv");
    let l: Vec<&str> = argv.lines().collect();
    assert_eq!(l.len(), 6, "{argv}");
    assert_eq!(&l[..2], &["--kubeconfig", k.to_str().unwrap()]);
    assert_eq!(&l[2..4], &["--ginkgo.focus", r"\[Conformance\]"]);
    assert_eq!(l[4], "--report-dir");
    assert!(l[5].ends_with("/junit"), "{argv}");

    let r = x.run(
        &[
            "--kubeconfig",
            k.to_str().unwrap(),
            "--runner",
            "openshift-tests",
        ],
        &[("CONFORM_JUNIT", "fail")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["backend"], "openshift-tests");
    let argv = x.mark("openshift-tests.argv");
    let l: Vec<&str> = argv.lines().collect();
    assert_eq!(
        &l[..3],
        &["run", "kubernetes/conformance", "--junit-dir"],
        "{argv}"
    );
    assert_eq!(l[4], format!("KUBECONFIG={}", k.display()));

    // A teardown that fails after a pass: the cluster may be left running, which is ERROR.
    let td = script("teardown.sh");
    let r = x.run(
        &[
            "--kubeconfig",
            k.to_str().unwrap(),
            "--runner",
            "e2e.test",
            "--teardown",
            &td,
            ";",
        ],
        &[("CONFORM_JUNIT", "pass"), ("CONFORM_TEARDOWN_EXIT", "4")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(s["data"]["teardown_exit"], 4);
    assert_eq!(s["data"]["tests"]["passed"], 3);
    assert!(
        r.stderr.contains("the teardown") && r.stderr.contains("exited 4"),
        "{}",
        r.stderr
    );
}

#[test]
fn reports_without_a_real_test_or_that_contradict_themselves_are_errors() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let mut args = custom_runner_args(&k);
    args.push("--no-cache".into());
    // Ginkgo's suite nodes passed, every spec skipped: nothing was tested.
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "suitenodes")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no conformance test ran"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert_eq!(s["data"]["tests"]["passed"], 0, "{s:#}");
    assert_eq!(
        s["data"]["suite_nodes"].as_array().unwrap().len(),
        3,
        "{s:#}"
    );
    assert!(results(&s).is_empty(), "{s:#}");
    // A suite-level <error> outside any test case is not dropped.
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "suiteerror")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("the suite itself failed") && r.stderr.contains("nodes are NotReady"),
        "{}",
        r.stderr
    );
    assert_eq!(conform_record(&r).1["outcome"], "ERROR");
    // failures="12" over cases that all passed: the report contradicts itself.
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "badcounts")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("inconsistent") && r.stderr.contains("failures=\"12\""),
        "{}",
        r.stderr
    );
    assert_eq!(conform_record(&r).1["outcome"], "ERROR");
    assert_eq!(x.teardowns(), 3);
}

#[test]
fn an_errored_test_case_is_a_failed_conformance_test() {
    let (x, r) = with_report("error");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[sig-apps] StatefulSet should perform rolling updates [Conformance]"),
        "{}",
        r.stderr
    );
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    assert_eq!(s["data"]["tests"]["errors"], 1);
    let bad: Vec<&Value> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "PASSED")
        .collect();
    assert_eq!(bad.len(), 1, "{s:#}");
    assert_eq!(bad[0]["outcome"], "FAILED");
    assert!(
        bad[0]["note"]
            .as_str()
            .unwrap()
            .starts_with("error: Test Panicked"),
        "{s:#}"
    );
    assert_eq!(x.teardowns(), 1);
}

#[test]
fn sonobuoy_results_that_tar_could_only_partly_unpack_are_not_trusted() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let ks = k.to_str().unwrap();
    // The passing report was unpacked before tar failed: a cut-short unpack is no result.
    let r = x.run(
        &["--kubeconfig", ks],
        &[
            ("CONFORM_JUNIT", "pass"),
            ("CONFORM_SONOBUOY_TAR", "unpacks-halfway"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("a partial unpack is not trusted"),
        "{}",
        r.stderr
    );
    let (m, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    assert!(results(&s).is_empty(), "{s:#}");
    assert!(!m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "junit"));
    let calls = x.mark("sonobuoy.calls");
    assert!(
        calls.lines().last().unwrap().starts_with("delete "),
        "{calls}"
    );
}

#[test]
fn a_failed_runner_never_passes_on_a_report() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let ks = k.to_str().unwrap();
    // `sonobuoy run` fails; `retrieve` would return an earlier run's passing results.
    let r = x.run(
        &["--kubeconfig", ks],
        &[
            ("CONFORM_JUNIT", "pass"),
            ("CONFORM_SONOBUOY_RUN_EXIT", "1"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("sonobuoy run exited 1"), "{}", r.stderr);
    let (m, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    assert!(results(&s).is_empty(), "{s:#}");
    assert!(!m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "junit"));
    let calls = x.mark("sonobuoy.calls");
    let verbs: Vec<&str> = calls
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(verbs, ["run", "delete"], "{calls}");
    // e2e.test exits non-zero, yet its report lists no failure: not a pass.
    let r = x.run(
        &["--kubeconfig", ks, "--runner", "e2e.test"],
        &[("CONFORM_JUNIT", "pass"), ("CONFORM_RUNNER_EXIT", "2")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("exited 2 but its JUnit reports no failing test"),
        "{}",
        r.stderr
    );
    assert_eq!(conform_record(&r).1["data"]["runner_exit"], 2);
    // Failing tests make e2e.test exit non-zero: then the report decides (FAILED).
    let r = x.run(
        &["--kubeconfig", ks, "--runner", "e2e.test", "--no-cache"],
        &[("CONFORM_JUNIT", "fail"), ("CONFORM_RUNNER_EXIT", "1")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "FAILED");
    assert!(s["notes"].to_string().contains("exited 1"), "{s:#}");
}

#[test]
fn sonobuoy_results_through_a_symlink_or_outside_the_tarball_are_refused() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let ks = k.to_str().unwrap();
    // plugins/e2e/results/global is a link to a passing report elsewhere; its own is failing.
    let r = x.run(
        &["--kubeconfig", ks],
        &[
            ("CONFORM_JUNIT", "fail"),
            ("CONFORM_SONOBUOY_TAR", "symlink"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("through a symlink"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["outcome"], "ERROR");
    assert!(results(&s).is_empty(), "{s:#}");
    // A member named through `..` is refused before anything is unpacked.
    let r = x.run(
        &["--kubeconfig", ks],
        &[
            ("CONFORM_JUNIT", "pass"),
            ("CONFORM_SONOBUOY_TAR", "dotdot"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("a member outside its directory") && r.stderr.contains("escaped-by-tar"),
        "{}",
        r.stderr
    );
    let calls = x.mark("sonobuoy.calls");
    assert!(
        calls.lines().last().unwrap().starts_with("delete "),
        "{calls}"
    );
    let found = Command::new("find")
        .arg(x.w.path())
        .args(["-name", "escaped-by-tar"])
        .output()
        .unwrap();
    assert!(
        found.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
}

#[test]
fn only_an_ok_body_is_ready_and_redirects_are_not_followed() {
    let x = World::new();
    for (answer, said) in [
        (
            "redirect",
            "HTTP 302: a redirect to https://sso.example.org/login",
        ),
        ("page", "HTTP 200 but the body is not `ok`: <html>"),
    ] {
        let api = Api::answering(x.w.path(), 0.0, false, answer);
        let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
        let mut args = custom_runner_args(&k);
        args.extend(["--ready-timeout".into(), "3".into()]);
        let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "pass")]);
        assert_eq!(r.code, 3, "{answer}: {}", r.stderr);
        assert!(r.stderr.contains("was not ready"), "{}", r.stderr);
        assert!(r.stderr.contains(said), "{answer}: {}", r.stderr);
        assert!(x.mark("runner.argv").is_empty(), "{answer}: the suite ran");
    }
}

/// Waits for `file` to exist (a stand-in got that far).
fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_to_the_terminals_process_group_reaches_fci_only() {
    use std::os::unix::process::CommandExt;
    // A terminal sends Ctrl-C's SIGINT to its whole foreground process group: fci leads one
    // here, as it would in a shell.
    for during in ["runner", "teardown"] {
        let x = World::new();
        let api = Api::start(x.w.path(), 0.0, false);
        let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
        let junit = if during == "runner" { "sleep" } else { "pass" };
        let child = x
            .cmd(
                &strs(&custom_runner_args(&k)),
                &[("CONFORM_JUNIT", junit), ("CONFORM_TEARDOWN_SLEEP", "2")],
                true,
            )
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mark = if during == "runner" {
            "runner.pids"
        } else {
            "teardown.runs"
        };
        wait_for(&x.dir.join(mark));
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: SIGINT to the process group this test made for fci.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
        let r = Run::from(child.wait_with_output().unwrap());
        assert_eq!(r.code, 3, "{during}: {}", r.stderr);
        let (_, s) = conform_record(&r);
        assert_eq!(s["outcome"], "ERROR", "{s:#}");
        assert_eq!(s["data"]["interrupted"], "SIGINT");
        // The teardown was not cut short by the terminal's signal.
        assert_eq!(
            x.mark("teardown.done").lines().count(),
            1,
            "{during}: {s:#}"
        );
        assert_eq!(s["data"]["teardown_exit"], 0, "{during}: {s:#}");
        let notes = s["notes"].to_string();
        assert!(
            notes.contains("the teardown ran to its end (exit 0)"),
            "{notes}"
        );
        if during == "runner" {
            assert!(notes.contains("what ran was killed"), "{notes}");
            for p in x.mark("runner.pids").split_whitespace() {
                assert!(!alive(p.parse().unwrap()), "runner process {p} is running");
            }
        } else {
            assert!(notes.contains("during the teardown"), "{notes}");
            assert!(!notes.contains("what ran was killed"), "{notes}");
        }
    }
}

#[test]
fn nothing_a_command_started_is_left_running() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let (inst, td) = (script("installer.sh"), script("teardown.sh"));
    let check = |what: &str| {
        let pids = x.mark("daemon.pids");
        let pids: Vec<i32> = pids
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(!pids.is_empty(), "{what}: no daemon started");
        for p in pids {
            assert!(!alive(p), "{what}: process {p} outlived fci");
        }
        let _ = std::fs::remove_file(x.dir.join("daemon.pids"));
    };
    // Installer, runner and teardown each leave a double-forked daemon and a background job;
    // all end normally.
    let start = Instant::now();
    let r = x.run(
        &[
            "--installer",
            &inst,
            "{kubeconfig}",
            ";",
            "--runner-cmd",
            &script("runner.sh"),
            "{junit_dir}",
            ";",
            "--teardown",
            &td,
            ";",
        ],
        &[
            ("CONFORM_INSTALL", "ok"),
            ("CONFORM_KUBECONFIG", k.to_str().unwrap()),
            ("CONFORM_JUNIT", "pass"),
            ("CONFORM_DAEMONS", "1"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(x.mark("daemon.pids").lines().count(), 6);
    check("after a normal end");
    // Each command's leftovers go when it ends, not after a wait for its output to close.
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    // A runner killed at its timeout.
    let mut args = custom_runner_args(&k);
    args.extend(["--timeout".into(), "2".into()]);
    let r = x.run(
        &strs(&args),
        &[("CONFORM_JUNIT", "sleep"), ("CONFORM_DAEMONS", "1")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    check("after a timeout");
}

#[test]
fn a_conform_result_is_never_reused() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    for run in 1..=2 {
        let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", "pass")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let (_, s) = conform_record(&r);
        assert_eq!(s["cached"], false, "run {run}: {s:#}");
        assert_eq!(x.teardowns(), run);
    }
    // The cluster changed between runs: the second run saw it.
    let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", "fail")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn a_signal_before_anything_ran_ends_the_stage_without_a_teardown() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let args = custom_runner_args(&k);
    let spawn = || {
        x.cmd(&strs(&args), &[("CONFORM_JUNIT", "sleep")], true)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The first run holds the lock of these inputs (its suite sleeps) ...
    let first = spawn();
    wait_for(&x.dir.join("runner.pids"));
    // ... the second waits for it (it has opened a lock the first holds open), and is
    // interrupted there.
    let second = spawn();
    let locks = |pid: u32| -> Vec<PathBuf> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|t| t.starts_with(x.w.ws().join("locks")))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !locks(second.id())
        .iter()
        .any(|l| locks(first.id()).contains(l))
    {
        assert!(Instant::now() < deadline, "the second run never waited");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: a signal to the fci this test started.
    unsafe { libc::kill(second.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let r = Run::from(second.wait_with_output().unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("interrupted by SIGINT while waiting for"),
        "{}",
        r.stderr
    );
    assert_eq!(conform_record(&r).1["outcome"], "ERROR");
    assert_eq!(
        x.teardowns(),
        0,
        "a teardown ran for a run that ran nothing"
    );
    // SAFETY: as above.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let r = Run::from(first.wait_with_output().unwrap());
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(x.teardowns(), 1);

    // Interrupted while waiting for an existing cluster's /readyz: nothing ran, no teardown.
    let never = Api::start(x.w.path(), -1.0, false);
    let k2 = token_kubeconfig(x.w.path(), &never.server(), TOKEN);
    let child = x
        .cmd(
            &strs(&custom_runner_args(&k2)),
            &[("CONFORM_JUNIT", "pass")],
            true,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once fci asked /readyz (and was told "not ready"), it is waiting for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !never.asked_readyz() {
        assert!(Instant::now() < deadline, "fci never asked /readyz");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 3, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["data"]["interrupted"], "SIGINT", "{s:#}");
    assert!(
        s["notes"].to_string().contains("the teardown did not run"),
        "{s:#}"
    );
    assert_eq!(x.teardowns(), 1);
}

/// `fci conform --kubeconfig K` must stop at once with exit 2, one line holding `needles` and
/// none of `secrets`, no manifest.
fn refused(x: &World, k: &Path, needles: &[&str], secrets: &[&str]) {
    let out = x.w.path().join("out.json");
    let start = Instant::now();
    let r = x.run(
        &[
            "--kubeconfig",
            k.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[("CONFORM_JUNIT", "pass")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "`{}` lacks `{n}`", r.stderr);
    }
    for s in secrets {
        assert!(!r.stderr.contains(s), "`{}` shows {s}", r.stderr);
    }
    assert!(!out.exists(), "a manifest was written");
    assert!(x.mark("sonobuoy.calls").is_empty(), "something ran");
}

#[test]
fn malformed_server_urls_are_bad_input_without_their_secrets() {
    let x = World::new();
    let k = token_kubeconfig(x.w.path(), "https://127.0.0.1:1", TOKEN);
    let with = |server: &str| {
        let p = x.w.path().join(format!("k-{}", uuid::Uuid::new_v4()));
        std::fs::write(
            &p,
            std::fs::read_to_string(&k)
                .unwrap()
                .replace("https://127.0.0.1:1", server),
        )
        .unwrap();
        p
    };
    refused(
        &x,
        &with("https://127.0.0.1:64a3"),
        &["not a valid URL", "invalid port number"],
        &[],
    );
    refused(
        &x,
        &with("https://admin:S3CRET/PW@127.0.0.1:6443"),
        &["not a valid URL"],
        &["S3CRET"],
    );
    refused(
        &x,
        &with("https://127.0.0.1:6443/?token=QUERYSECRET"),
        &["a query or a fragment", "https://127.0.0.1:6443"],
        &["QUERYSECRET"],
    );
    // A `?` or `#` in the password: nothing of the string after `://` is echoed.
    for bad in [
        "https://admin:pa55?w0rd@127.0.0.1:6443",
        "https://admin:pa55#w0rd@127.0.0.1:6443",
    ] {
        refused(
            &x,
            &with(bad),
            &["the server URL is not a valid URL"],
            &["pa55", "w0rd", "admin"],
        );
    }
}

#[test]
fn insecure_tls_is_noted_and_never_combined_with_a_ca_or_plain_http_credentials() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let text = std::fs::read_to_string(&k).unwrap();
    let write = |text: String| {
        let p = x.w.path().join(format!("k-{}", uuid::Uuid::new_v4()));
        std::fs::write(&p, text).unwrap();
        p
    };
    // A CA and insecure-skip-tls-verify: kubectl refuses it, so does fci.
    let both = write(text.replace(
        "    certificate-authority-data:",
        "    insecure-skip-tls-verify: true\n    certificate-authority-data:",
    ));
    refused(
        &x,
        &both,
        &["specifying a root certificates file with the insecure flag is not allowed"],
        &[TOKEN],
    );
    // A token over plain http.
    let http = write(text.replace(&api.server(), "http://127.0.0.1:8080"));
    refused(&x, &http, &["plain http://"], &[TOKEN]);
    // insecure-skip-tls-verify alone: it works, and the record says TLS was not verified.
    let ca_line = text
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap();
    let insecure = write(text.replace(ca_line, "    insecure-skip-tls-verify: true"));
    let r = x.run(
        &strs(&custom_runner_args(&insecure)),
        &[("CONFORM_JUNIT", "pass")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["data"]["tls_verified"], false, "{s:#}");
    assert!(
        s["notes"]
            .to_string()
            .contains("certificate was not verified"),
        "{s:#}"
    );
    // With the CA: verified.
    let r = x.run(&strs(&custom_runner_args(&k)), &[("CONFORM_JUNIT", "pass")]);
    assert_eq!(conform_record(&r).1["data"]["tls_verified"], true);
}

/// Every file below `dir` holding `secret` (the kubeconfigs themselves aside).
fn files_holding(dir: &Path, secret: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-rlaF", secret])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("kubeconfig") && !l.contains("/marks/"))
        .map(String::from)
        .collect()
}

#[test]
fn secrets_a_command_prints_are_scrubbed_from_everything_recorded() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    // The installer prints the kubeconfig it left (its token) and fails.
    let (inst, td) = (script("installer.sh"), script("teardown.sh"));
    let r = x.run(
        &[
            "--installer",
            &inst,
            "{kubeconfig}",
            ";",
            "--teardown",
            &td,
            ";",
        ],
        &[
            ("CONFORM_INSTALL", "leak"),
            ("CONFORM_KUBECONFIG", k.to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("token: ***"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert!(x.log_of(&s).contains("token: ***"), "{}", x.log_of(&s));
    for (what, text) in [
        ("stderr", &r.stderr),
        ("manifest", &r.stdout),
        ("log", &x.log_of(&s)),
    ] {
        assert!(!text.contains(TOKEN), "the token is in the {what}");
    }
    // Nor anywhere in the workspace: artifacts, cache, message journal.
    assert!(
        files_holding(&x.w.ws(), TOKEN).is_empty(),
        "{:?}",
        files_holding(&x.w.ws(), TOKEN)
    );
    // A runner printing the given kubeconfig (token and CA) to its output.
    let r = x.run(
        &strs(&custom_runner_args(&k)),
        &[("CONFORM_JUNIT", "pass"), ("CONFORM_LEAK", "1")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, s) = conform_record(&r);
    let log = x.log_of(&s);
    assert!(log.contains("token: ***") && !log.contains(TOKEN), "{log}");
    assert!(
        files_holding(&x.w.ws(), TOKEN).is_empty(),
        "{:?}",
        files_holding(&x.w.ws(), TOKEN)
    );
}

#[test]
fn commands_run_in_the_directory_fci_was_started_from() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    // A site directory as an ansible user has it: an inventory and playbooks, named
    // relatively on the command line.
    let site = x.w.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("inventory"), "[control]\nnode1\n").unwrap();
    for (name, target) in [
        ("install.sh", "installer.sh"),
        ("run.sh", "runner.sh"),
        ("destroy.sh", "teardown.sh"),
    ] {
        let p = site.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nset -e\ncat inventory > \"$CONFORM_DIR/{name}.inventory\"\npwd > \"$CONFORM_DIR/{name}.cwd\"\nexec {} \"$@\"\n",
                script(target)
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = x
        .cmd(
            &[
                "--installer",
                "./install.sh",
                "{kubeconfig}",
                "-i",
                "inventory",
                ";",
                "--runner-cmd",
                "./run.sh",
                "{junit_dir}",
                ";",
                "--teardown",
                "./destroy.sh",
                "-i",
                "inventory",
                ";",
            ],
            &[
                ("CONFORM_INSTALL", "ok"),
                ("CONFORM_KUBECONFIG", k.to_str().unwrap()),
                ("CONFORM_JUNIT", "pass"),
            ],
            true,
        )
        .current_dir(&site)
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let site = std::fs::canonicalize(&site).unwrap();
    for name in ["install.sh", "run.sh", "destroy.sh"] {
        assert_eq!(
            x.mark(&format!("{name}.cwd")).trim(),
            site.to_str().unwrap()
        );
        assert_eq!(x.mark(&format!("{name}.inventory")), "[control]\nnode1\n");
    }
}

#[test]
fn a_skipped_after_a_failure_an_idle_report_or_a_symlinked_report_never_pass() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let args = custom_runner_args(&k);
    // <failure> then <skipped> in one test case: FAILED, naming it.
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "skipfail")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("[sig-network] DNS"), "{}", r.stderr);
    assert_eq!(conform_record(&r).1["outcome"], "FAILED");
    // An empty report, or one of skipped cases only, beside a passing one: ERROR naming it.
    for idle in ["empty", "allskipped"] {
        let r = x.run(
            &strs(&args),
            &[("CONFORM_JUNIT", "pass"), ("CONFORM_JUNIT2", idle)],
        );
        assert_eq!(r.code, 3, "{idle}: {}", r.stderr);
        assert!(
            r.stderr.contains("no conformance test ran") && r.stderr.contains("junit_02.xml"),
            "{idle}: {}",
            r.stderr
        );
        assert_eq!(conform_record(&r).1["outcome"], "ERROR");
    }
    // A report that is a symlink (to any file on the host): ERROR, not silently left out.
    let r = x.run(
        &strs(&args),
        &[("CONFORM_JUNIT", "pass"), ("CONFORM_LINK", "1")],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("junit_02.xml") && r.stderr.contains("not trusted"),
        "{}",
        r.stderr
    );
    assert_eq!(conform_record(&r).1["outcome"], "ERROR");
    assert_eq!(x.teardowns(), 4);
}

#[test]
fn secrets_wrapped_encoded_or_in_the_junit_are_scrubbed_too() {
    use base64::Engine;
    let x = World::new();
    // A client key inline, its base64 wrapped at 64 columns in a YAML block, printed whole
    // by the runner.
    let api = Api::start(x.w.path(), 0.0, true);
    let c = certs();
    let key = std::fs::read(c.join("client.key")).unwrap();
    let key64 = b64(&key);
    let lines: Vec<String> = key64
        .as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8(l.to_vec()).unwrap())
        .collect();
    let k = x.w.path().join("wrapped-kubeconfig");
    std::fs::write(
        &k,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: ctx\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: |\n      {}\n",
            api.server(),
            b64(&std::fs::read(c.join("ca.crt")).unwrap()),
            b64(&std::fs::read(c.join("client.crt")).unwrap()),
            lines.join("\n      ")
        ),
    )
    .unwrap();
    let r = x.run(
        &strs(&custom_runner_args(&k)),
        &[("CONFORM_JUNIT", "pass"), ("CONFORM_LEAK", "1")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let body: Vec<String> = String::from_utf8_lossy(&key)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(String::from)
        .collect();
    for secret in lines[..lines.len() - 1].iter().chain(&body) {
        let found = files_holding(&x.w.ws(), secret);
        assert!(found.is_empty(), "{secret} is in {found:?}");
    }
    drop(api);
    // A token: base64-encoded and URL-encoded in the output, as a bearer header in the JUnit.
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let t64 = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    let r = x.run(
        &strs(&custom_runner_args(&k)),
        &[
            ("CONFORM_JUNIT", "leak"),
            ("CONFORM_SECRET", TOKEN),
            ("CONFORM_PRINT", &format!("auth {t64} and ?t={TOKEN}")),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (m, s) = conform_record(&r);
    assert!(x.log_of(&s).contains("auth *** and"), "{}", x.log_of(&s));
    for secret in [TOKEN, t64.trim_end_matches('=')] {
        let found = files_holding(&x.w.ws(), secret);
        assert!(found.is_empty(), "{secret} is in {found:?}");
        assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret));
    }
    // The JUnit is kept, scrubbed.
    let junit = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "junit")
        .unwrap();
    let kept = std::fs::read_to_string(x.w.ws().join(junit["path"].as_str().unwrap())).unwrap();
    assert!(kept.contains("Bearer ***"), "{kept}");
}

#[test]
fn after_a_signal_fcis_own_locks_are_still_waited_for() {
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let child = x
        .cmd(
            &strs(&custom_runner_args(&k)),
            &[("CONFORM_JUNIT", "sleep")],
            true,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&x.dir.join("runner.pids"));
    // Another process holds the message journal's lock a while, as a concurrent run may.
    let lock = x.w.ws().join("locks/messages.lock");
    let held = x.dir.join("held");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c"])
        .arg(format!("touch {}; sleep 3", held.display()))
        .spawn()
        .unwrap();
    wait_for(&held);
    // SIGTERM, then an impatient Ctrl-C: the first is the one recorded.
    // SAFETY: signals to the fci this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    // Deliberately later than the first signal (not a wait for anything).
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let r = Run::from(child.wait_with_output().unwrap());
    holder.wait().unwrap();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!r.stderr.contains("nothing was run"), "{}", r.stderr);
    let (_, s) = conform_record(&r);
    assert_eq!(s["data"]["interrupted"], "SIGTERM");
    let journal = std::fs::read_to_string(x.w.ws().join("messages/journal.jsonl")).unwrap();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("conform") && l.contains(".error")),
        "{journal}"
    );
}

#[test]
fn a_loopback_server_is_reached_without_the_environments_proxy() {
    // HTTPS_PROXY at a closed port: kubectl (Go) never proxies a loopback server, nor fci.
    let x = World::new();
    let api = Api::start(x.w.path(), 0.0, false);
    let k = token_kubeconfig(x.w.path(), &api.server(), TOKEN);
    let closed = "http://127.0.0.1:9";
    let mut args = custom_runner_args(&k);
    args.extend(["--ready-timeout".into(), "6".into()]);
    let r = x.run(
        &strs(&args),
        &[
            ("CONFORM_JUNIT", "pass"),
            ("HTTPS_PROXY", closed),
            ("https_proxy", closed),
            ("ALL_PROXY", closed),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The cluster's proxy-url wins over the environment, also for a loopback server: a
    // closed one means not ready.
    let via = x.w.path().join("proxied-kubeconfig");
    std::fs::write(
        &via,
        std::fs::read_to_string(&k).unwrap().replace(
            &format!("    server: {}\n", api.server()),
            &format!(
                "    server: {}\n    proxy-url: http://puser:PROXYSECRET@127.0.0.1:9\n",
                api.server()
            ),
        ),
    )
    .unwrap();
    let mut args = custom_runner_args(&via);
    args.extend(["--ready-timeout".into(), "3".into()]);
    let r = x.run(&strs(&args), &[("CONFORM_JUNIT", "pass")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not ready"), "{}", r.stderr);
    assert!(!r.stderr.contains("PROXYSECRET"), "{}", r.stderr);
    assert!(files_holding(&x.w.ws(), "PROXYSECRET").is_empty());
}
