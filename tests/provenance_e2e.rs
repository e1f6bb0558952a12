//! Provenance end to end (issue 18): a whole example run (build | test | compose | integrate |
//! image | smoke | report --gating --promote) with the pipeline's key, as an administrator
//! makes one with openssl; every envelope checked by the reference in-toto tooling; `fci
//! verify` on the final image walks back to the dist-git commit; one flipped byte of an RPM,
//! of a statement, of a signature or of the image breaks the chain there (exit 2, named); a
//! run without its smoke attestation fails the default policy (exit 1); a bundle carries the
//! attestations to another workspace, where the chain verifies again.

mod common;
use common::intoto::{openssl_key_pair, reference_verify};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    tool::SMOKE,
    &[tool::OPENSSL, tool::GIT],
];

/// Runs a stage with the pipeline's key (FCI_SIGNING_KEY, as Jenkins or Buildbot would pass
/// it) on `input`, into `output`; asserts it exits 0.
fn stage(w: &Ws, key: &Path, input: &Path, output: &Path, args: &[&str]) {
    let out = w
        .cmd()
        .env("FCI_SIGNING_KEY", key)
        .args(&args[..1])
        .arg("-m")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(&args[1..])
        .output()
        .unwrap();
    let r = Run::from(out);
    let notes = std::fs::read_to_string(output).unwrap_or_default();
    assert_eq!(r.code, 0, "{args:?}: {}{notes}", r.stderr);
}

/// fci with the pipeline's key in FCI_SIGNING_KEY, as Jenkins or Buildbot would pass it.
fn signed(w: &Ws, key: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> std::process::Output {
    w.cmd()
        .env("FCI_SIGNING_KEY", key)
        .args(args)
        .output()
        .unwrap()
}

fn verify(w: &Ws, args: &[&str]) -> Run {
    w.run(&[&["verify"], args].concat())
}

fn flip(file: &Path, at: usize) {
    let mut b = std::fs::read(file).unwrap();
    b[at] ^= 1;
    std::fs::write(file, b).unwrap();
}

fn attestations(m: &Value) -> Vec<&Value> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "attestation")
        .collect()
}

fn artifact<'a>(m: &'a Value, kind: &str, name: &str) -> &'a Value {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == kind && a["name"].as_str().unwrap().starts_with(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Where in the envelope `file` its field `field`'s value starts.
fn field_at(file: &Path, field: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    text.find(&format!("\"{field}\": \"")).unwrap() + field.len() + 4 + 10
}

/// The full example run with the key; the final manifest's path.
fn signed_run(w: &Ws, key: &Path) -> PathBuf {
    init_base_with(w, &[], None, |_| {});
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let built = w.path().join("built.json");
    let la = lookaside();
    let out = signed(
        w,
        key,
        &[
            "build",
            repo.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &la,
            "-o",
            built.to_str().unwrap(),
        ],
    );
    let r = Run::from(out);
    assert_eq!(r.code, 0, "build: {}", r.stderr);
    let integration = example("integration");
    let gating = example("hello-atomic").join("gating.yaml");
    let html = w.path().join("report.html");
    let steps: [(&str, Vec<&str>); 6] = [
        ("test", vec!["test"]),
        ("compose", vec!["compose"]),
        (
            "integrate",
            vec!["integrate", "--tests", integration.to_str().unwrap()],
        ),
        ("image", vec!["image"]),
        (
            "smoke",
            vec!["smoke", "--accel", "tcg", "--check", "hello-atomic"],
        ),
        (
            "report",
            vec![
                "report",
                "--gating",
                gating.to_str().unwrap(),
                "--decision-context",
                "bodhi_update_push_stable",
                "--promote",
                "--html",
                html.to_str().unwrap(),
            ],
        ),
    ];
    let mut input = built;
    for (name, args) in steps {
        let output = w.path().join(format!("{name}.json"));
        stage(w, key, &input, &output, &args);
        input = output;
    }
    input
}

#[test]
fn a_signed_run_verifies_back_to_its_dist_git_commit_and_any_altered_byte_is_named() {
    let w = Ws::new();
    let (key, public) = openssl_key_pair(w.path(), "pipeline");
    let (_, stranger) = openssl_key_pair(w.path(), "stranger");
    let final_json = signed_run(&w, &key);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&final_json).unwrap()).unwrap();
    assert_valid(&m);
    let pubkey = public.to_str().unwrap();
    let fj = final_json.to_str().unwrap();

    // One envelope per statement, each signed; the reference tooling verifies every one.
    let names: Vec<&str> = attestations(&m)
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for want in [
        "build.intoto.json",
        "build.check.intoto.json",
        "test.intoto.json",
        "compose.intoto.json",
        "integrate.intoto.json",
        "image.intoto.json",
        "smoke.intoto.json",
        "report.intoto.json",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let keyid = attestations(&m)[0]["signed_by"]
        .as_str()
        .unwrap()
        .to_string();
    for a in attestations(&m) {
        assert_eq!(a["signed_by"], keyid.as_str(), "{a}");
        let file = w.ws().join(a["path"].as_str().unwrap());
        let (ok, out) = reference_verify(&file, &public, &keyid);
        assert!(ok, "{}: {out}", a["name"]);
        assert!(out.starts_with("https://in-toto.io/Statement/v1"), "{out}");
    }
    // The build's provenance names the dist-git commit and the lookaside source.
    let envelope = |name: &str| -> Value {
        let a = attestations(&m)
            .into_iter()
            .find(|a| a["name"] == name)
            .unwrap();
        let e: Value = serde_json::from_slice(
            &std::fs::read(w.ws().join(a["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        use base64::Engine;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(e["payload"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&payload).unwrap()
    };
    let build = envelope("build.intoto.json");
    assert_eq!(build["predicateType"], "https://slsa.dev/provenance/v1");
    let deps = build["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let commit = m["subject"]["commit"].as_str().unwrap();
    assert!(
        deps.iter().any(|d| d["digest"]["gitCommit"] == commit),
        "{deps:?}"
    );
    assert!(
        deps.iter().any(|d| d["digest"]["sha512"].is_string()),
        "the lookaside tarball: {deps:?}"
    );
    assert_eq!(
        envelope("report.intoto.json")["predicate"]["verificationResult"],
        "PASSED"
    );
    // The report's page lists the chain's statements with their signer; its results link them.
    let page = std::fs::read_to_string(w.path().join("report.html")).unwrap();
    assert!(page.contains("<h2>Provenance</h2>"), "{page}");
    for row in [
        "<tr><td>build</td><td>SLSA provenance v1</td>",
        "<tr><td>smoke</td><td>test result v0.1</td>",
    ] {
        assert!(page.contains(row), "{row}");
    }
    assert!(page.contains(&keyid[..16]), "the signer's key id");
    let report = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["name"] == "report")
        .unwrap();
    let store = w
        .ws()
        .join(report["data"]["results_store"].as_str().unwrap());
    let db = rusqlite::Connection::open(store).unwrap();
    let linked: i64 = db
        .query_row(
            "SELECT count(*) FROM results WHERE data LIKE '%provenance%intoto.json%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(linked > 0, "no result carries data.provenance");

    // The chain from the image, as a tree and as JSON.
    let v = verify(&w, &["--key", pubkey, "-m", fj]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains(&format!("@ {commit}")), "{}", v.stdout);
    for line in [
        "image fci-f41-",
        "ostree-commit ",
        "rpm hello-atomic-1.0-1.fc41.x86_64.rpm",
        "dist-git git+",
    ] {
        assert!(v.stdout.contains(line), "{line}: {}", v.stdout);
    }
    let j = verify(&w, &["--key", pubkey, "-m", fj, "--json"]);
    assert_eq!(j.code, 0, "{}", j.stderr);
    let jv: Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(jv["verified"], true);
    assert_eq!(jv["chain"][0]["kind"], "image");
    // How long it takes is benches/verify_chain.rs's to say.
    let policy: Vec<(&str, &str)> = jv["policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["rule"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        policy,
        [
            ("check", "ok"),
            ("test", "ok"),
            ("smoke", "ok"),
            ("gate", "ok")
        ]
    );
    // Given the image file alone, the workspace's attestations are the evidence.
    let image = w
        .ws()
        .join(artifact(&m, "image", "fci-f41-")["path"].as_str().unwrap());
    let alone = verify(&w, &["--key", pubkey, image.to_str().unwrap()]);
    assert_eq!(alone.code, 0, "{}{}", alone.stdout, alone.stderr);
    // A key the pipeline never used verifies nothing.
    let other = verify(&w, &["--key", stranger.to_str().unwrap(), "-m", fj]);
    assert_eq!(other.code, 2, "{}", other.stdout);
    assert!(other.stdout.contains("NOT VERIFIED"), "{}", other.stdout);
    // What test and compose left out (debuginfo, debugsource) no statement claims.
    let tested = envelope("test.intoto.json");
    let names: Vec<&str> = tested["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello-atomic-1.0-1.fc41.x86_64.rpm"], "{names:?}");
    // A manifest that leaves the image out does not skip the smoke rule: it fails.
    let mut no_image = m.clone();
    no_image["artifacts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["type"] != "image");
    let ni = w.save("no-image.json", &no_image);
    let r = verify(&w, &["--key", pubkey, "-m", ni.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("the chain has no image for smoke to be about"),
        "{}",
        r.stdout
    );

    // One flipped byte, then put back: the chain breaks at that link, named.
    let rpm = w.ws().join(
        artifact(&m, "rpm", "hello-atomic-1.0-1.fc41.x86_64")["path"]
            .as_str()
            .unwrap(),
    );
    let at = |name: &str| -> PathBuf {
        w.ws().join(
            attestations(&m)
                .into_iter()
                .find(|a| a["name"] == name)
                .unwrap()["path"]
                .as_str()
                .unwrap(),
        )
    };
    let cases: Vec<(PathBuf, usize, &str)> = vec![
        (rpm.clone(), 4096, "rpm hello-atomic-1.0-1.fc41.x86_64.rpm"),
        (image.clone(), 8192, "fci-f41-"),
        (
            at("compose.intoto.json"),
            field_at(&at("compose.intoto.json"), "payload"),
            "compose.intoto.json",
        ),
        (
            at("smoke.intoto.json"),
            field_at(&at("smoke.intoto.json"), "sig"),
            "smoke.intoto.json",
        ),
    ];
    for (file, offset, named) in cases {
        flip(&file, offset);
        for args in [vec!["-m", fj], vec![image.to_str().unwrap()]] {
            let r = verify(&w, &[&["--key", pubkey], &args[..]].concat());
            let last = r.stdout.lines().last().unwrap_or_default().to_string();
            assert_eq!(r.code, 2, "{named} {args:?}: {}{}", r.stdout, r.stderr);
            assert!(
                last.starts_with("NOT VERIFIED: chain broken at") && last.contains(named),
                "{named}: {last}"
            );
        }
        flip(&file, offset);
    }
    // The reference tooling agrees about a flipped statement byte.
    let c = at("compose.intoto.json");
    let off = field_at(&c, "payload");
    flip(&c, off);
    assert!(!reference_verify(&c, &public, &keyid).0);
    flip(&c, off);
    assert_eq!(verify(&w, &["--key", pubkey, "-m", fj]).code, 0);

    // Without the smoke attestation the default policy fails (exit 1); a policy that does
    // not ask for smoke holds.
    let mut no_smoke = m.clone();
    no_smoke["artifacts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| !(a["type"] == "attestation" && a["stage"] == "smoke"));
    let ns = w.save("no-smoke.json", &no_smoke);
    let r = verify(&w, &["--key", pubkey, "-m", ns.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let last = r.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("NOT VERIFIED: policy `smoke` failed"),
        "{last}"
    );
    let r = verify(
        &w,
        &[
            "--key",
            pubkey,
            "-m",
            ns.to_str().unwrap(),
            "--require",
            "check,test,gate",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);

    // A bundle carries the attestations: in another workspace the chain verifies again
    // (the OSTree commit is recorded, not carried: its bytes are not checked there).
    let bundle = w.path().join("run.fci-bundle");
    let b = w.run(&["bundle", "-m", fj, "-o", bundle.to_str().unwrap()]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let there = Ws::new();
    let unbundled = there.path().join("unbundled.json");
    let u = there.run(&[
        "unbundle",
        bundle.to_str().unwrap(),
        "-o",
        unbundled.to_str().unwrap(),
    ]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    let r = verify(
        &there,
        &["--key", pubkey, "-m", unbundled.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // The same NVR from another commit, built and reported but never tested: the NVR's
    // decision is satisfied by the first run's result, but the gate the report signs about
    // these RPMs is this run's own, and says FAILED.
    let repo = w.path().join("hello-atomic.git-src");
    std::fs::write(repo.join("README.packager"), "a packaging note\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "a packaging note"]);
    let la = lookaside();
    let b2 = w.path().join("built2.json");
    let out = signed(
        &w,
        &key,
        &[
            "build",
            repo.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &la,
            "-o",
            b2.to_str().unwrap(),
        ],
    );
    assert_eq!(Run::from(out).code, 0);
    let r2 = w.path().join("reported2.json");
    let gating = example("hello-atomic").join("gating.yaml");
    let out = signed(
        &w,
        &key,
        &[
            "report",
            "-m",
            b2.to_str().unwrap(),
            "-o",
            r2.to_str().unwrap(),
            "--gating",
            gating.to_str().unwrap(),
            "--decision-context",
            "bodhi_update_push_stable",
        ],
    );
    let out = Run::from(out);
    assert_eq!(out.code, 0, "the NVR's decision: {}", out.stderr);
    let m2: Value = serde_json::from_str(&std::fs::read_to_string(&r2).unwrap()).unwrap();
    let vsa = attestations(&m2)
        .into_iter()
        .find(|a| a["name"] == "report.intoto.json")
        .unwrap();
    let e: Value =
        serde_json::from_slice(&std::fs::read(w.ws().join(vsa["path"].as_str().unwrap())).unwrap())
            .unwrap();
    use base64::Engine;
    let st: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(e["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(st["predicate"]["verificationResult"], "FAILED", "{st}");
    let r = verify(
        &w,
        &[
            "--key",
            pubkey,
            "-m",
            r2.to_str().unwrap(),
            "--require",
            "gate",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
}

#[test]
fn without_a_key_statements_are_written_unsigned_and_verify_nothing() {
    let w = Ws::new();
    let (_, public) = openssl_key_pair(w.path(), "pipeline");
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let la = lookaside();
    let r = w.run(&[
        "build",
        repo.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let atts = attestations(&m);
    assert_eq!(atts.len(), 2, "{atts:?}");
    for a in &atts {
        assert!(a["signed_by"].is_null(), "{a}");
        let e: Value = serde_json::from_slice(
            &std::fs::read(w.ws().join(a["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(e["signatures"], serde_json::json!([]), "unsigned says so");
    }
    let built = w.save("built.json", &m);
    let v = verify(
        &w,
        &[
            "--key",
            public.to_str().unwrap(),
            "-m",
            built.to_str().unwrap(),
        ],
    );
    assert_eq!(v.code, 2, "{}", v.stdout);
    assert!(
        v.stdout.contains("the envelope is unsigned"),
        "{}",
        v.stdout
    );

    // A key file that is no private key: the caller's mistake, one line naming the file and
    // never its content, and no manifest.
    let r = signed(&w, &public, &["test", "-m", built.to_str().unwrap()]);
    let r = Run::from(r);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains(public.to_str().unwrap()) && !r.stderr.contains("BEGIN PUBLIC KEY"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    // And verify's own mistakes: no key, an unknown rule.
    let v = verify(&w, &["-m", built.to_str().unwrap()]);
    assert_eq!(v.code, 2, "{}", v.stderr);
    let v = verify(
        &w,
        &[
            "--key",
            public.to_str().unwrap(),
            "-m",
            built.to_str().unwrap(),
            "--require",
            "smok",
        ],
    );
    assert_eq!(v.code, 2, "{}", v.stderr);
    assert!(v.stderr.contains("unknown rule `smok`"), "{}", v.stderr);
}

/// Removes a directory outside the scratch area when the test ends, passed or not.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The signing key where the sandbox shows the host (a world-readable file under /var/lib,
/// as a careless administrator might leave it): package code still cannot read it, so it
/// never reaches a log, and the run is signed all the same.
#[test]
fn package_code_never_reads_the_signing_key() {
    let w = Ws::new();
    let dir = PathBuf::from(format!("/var/lib/fci-tests/{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let _gone = Removed(dir.clone());
    let (key, public) = openssl_key_pair(&dir, "pipeline");
    use std::os::unix::fs::PermissionsExt;
    for d in [&dir, dir.parent().unwrap()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let spec = repo.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "%check\n",
        &format!(
            "%check\nif cat {k}; then echo fci-key-leaked; exit 1; fi\ntest ! -s {k}\n",
            k = key.display()
        ),
    );
    std::fs::write(&spec, text).unwrap();
    git(
        &repo,
        &["commit", "-q", "-am", "%check: read the pipeline's key"],
    );
    let la = lookaside();
    let out = signed(
        &w,
        &key,
        &[
            "build",
            repo.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &la,
        ],
    );
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let secret = std::fs::read_to_string(&key).unwrap();
    let body: String = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    for entry in walkdir::WalkDir::new(w.ws()).into_iter().flatten() {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            // (Had %check read it, the build would have failed: it exits 1 then.)
            assert!(
                !text.contains(&body),
                "{} holds the key",
                entry.path().display()
            );
        }
    }
    let built = w.save("built.json", &m);
    let v = verify(
        &w,
        &[
            "--key",
            public.to_str().unwrap(),
            "-m",
            built.to_str().unwrap(),
            "--require",
            "check",
        ],
    );
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);

    // The key's text where its file's name belongs (a CI "secret text" binding): refused
    // without showing it.
    let out = signed(&w, &secret, &["test", "-m", built.to_str().unwrap()]);
    let r = Run::from(out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        !r.stderr.contains(&body) && !r.stderr.contains("BEGIN"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("not as the name of a file"),
        "{}",
        r.stderr
    );
    // Or base64 of it, as CI variables often hold keys: not shown either.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&secret);
    let out = signed(&w, &encoded, &["test", "-m", built.to_str().unwrap()]);
    let r = Run::from(out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.stderr.contains(&encoded[..40]), "{}", r.stderr);
    // A second hard link to the key would show it to package code: refused.
    let link = dir.join("again.pem");
    std::fs::hard_link(&key, &link).unwrap();
    let out = signed(&w, &key, &["test", "-m", built.to_str().unwrap()]);
    let r = Run::from(out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("other hard links"), "{}", r.stderr);
    std::fs::remove_file(&link).unwrap();

    // The package's tests from the dist-git checkout satisfy the test rule; tests from
    // elsewhere (--tests-from), passing or not, do not stand in for them.
    let tested = w.path().join("tested.json");
    let out = signed(
        &w,
        &key,
        &[
            "test",
            "-m",
            built.to_str().unwrap(),
            "-o",
            tested.to_str().unwrap(),
        ],
    );
    assert_eq!(Run::from(out).code, 0);
    let pk = public.to_str().unwrap();
    let v = verify(
        &w,
        &[
            "--key",
            pk,
            "-m",
            tested.to_str().unwrap(),
            "--require",
            "check,test",
        ],
    );
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let other = w.path().join("other-tests/tests");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("tests.yml"),
        "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    tests:\n    - always:\n        run: \"true\"\n",
    )
    .unwrap();
    let elsewhere = w.path().join("elsewhere.json");
    let out = signed(
        &w,
        &key,
        &[
            "test",
            "-m",
            tested.to_str().unwrap(),
            "-o",
            elsewhere.to_str().unwrap(),
            "--tests-from",
            other.parent().unwrap().to_str().unwrap(),
        ],
    );
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = verify(
        &w,
        &[
            "--key",
            pk,
            "-m",
            elsewhere.to_str().unwrap(),
            "--require",
            "check,test",
        ],
    );
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("came from elsewhere"), "{}", v.stdout);
    let v = verify(
        &w,
        &[
            "--key",
            pk,
            "-m",
            elsewhere.to_str().unwrap(),
            "--require",
            "",
        ],
    );
    assert_eq!(v.code, 2, "an empty policy is said `none`: {}", v.stderr);

    // Uncommitted changes on top of the commit: no commit holds what was built.
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("Release:", "# not committed\nRelease:")).unwrap();
    let dirty = w.path().join("dirty.json");
    let out = signed(
        &w,
        &key,
        &[
            "build",
            repo.to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &la,
            "-o",
            dirty.to_str().unwrap(),
        ],
    );
    assert_eq!(Run::from(out).code, 0);
    let v = verify(
        &w,
        &[
            "--key",
            pk,
            "-m",
            dirty.to_str().unwrap(),
            "--require",
            "check",
        ],
    );
    assert_eq!(v.code, 2, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("uncommitted changes"), "{}", v.stdout);
}
