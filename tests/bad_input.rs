//! Bad input: each case exits 2 with one line naming the file and the problem, never panics,
//! and leaves no partial file behind. A mistake in the package itself (a spec that does not
//! parse, a `sources` entry that does not match, a tests.yml that is not YAML) is not the
//! caller's: it is the package's FAILED verdict (exit 1) with a manifest whose record names
//! the dist-git file and line (`expect_package_failed`).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The tools these tests run (bad input is refused before any test suite, compose or boot runs): `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, &[tool::GIT]];

/// Runs fci expecting exit 2 with a single `fci: error:` line that contains every `needles`.
fn expect_bad(w: &Ws, args: &[&str], needles: &[&str]) {
    let out_file = w.path().join("out.json");
    let mut full: Vec<&str> = args.to_vec();
    let o = out_file.to_str().unwrap().to_string();
    full.extend_from_slice(&["-o", &o]);
    let r = w.run(&full);
    assert_eq!(r.code, 2, "args {args:?}: stderr {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", r.stderr);
    assert!(lines[0].starts_with("fci: error: "), "{}", lines[0]);
    for n in needles {
        assert!(
            lines[0].contains(n),
            "`{}` does not mention `{n}`",
            lines[0]
        );
    }
    assert!(!r.stderr.contains("panicked"));
    assert!(!out_file.exists(), "a partial output file was written");
    assert!(r.stdout.is_empty());
    assert!(
        w.leftovers().is_empty(),
        "scratch left behind: {:?}",
        w.leftovers()
    );
}

/// Exit 1 with a manifest whose last record (of `stage`) FAILED with a note holding every
/// `needles` (the dist-git path and line, never fci's copy): the package's mistake.
fn expect_package_failed(w: &Ws, args: &[&str], stage: &str, needles: &[&str]) -> Value {
    let r = w.run(args);
    assert_eq!(r.code, 1, "args {args:?}: stderr {}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    let m = r.manifest();
    let rec = m["stages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(rec["name"], stage, "{rec:#}");
    assert_eq!(rec["outcome"], "FAILED", "{rec:#}");
    let notes = rec["notes"].to_string();
    for n in needles {
        assert!(notes.contains(n), "`{notes}` does not mention `{n}`");
    }
    // Never fci's copy of the file (its scratch checkout, the workspace's tree).
    assert!(!notes.contains(w.ws().to_str().unwrap()), "{notes}");
    assert!(
        w.leftovers().is_empty(),
        "scratch left behind: {:?}",
        w.leftovers()
    );
    rec
}

/// Exit 2 naming `file` and the record whose artifacts the edit changed.
fn expect_not_its_records(w: &Ws, args: &[&str], file: &str) {
    expect_bad(w, args, &[file, "stage `build`", "are not those it left"]);
}

fn good_manifest(w: &Ws) -> Value {
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.manifest()
}

fn write(w: &Ws, name: &str, text: &str) -> PathBuf {
    let p = w.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn malformed_and_truncated_manifests() {
    let w = Ws::new();
    let p = write(&w, "garbage.json", "{ this is not json");
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["garbage.json", "malformed JSON"],
    );
    let m = good_manifest(&w).to_string();
    let p = write(&w, "truncated.json", &m[..m.len() / 2]);
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["truncated.json", "malformed JSON"],
    );
    let p = write(&w, "empty.json", "");
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["empty.json", "empty manifest"],
    );
    let p = write(&w, "other.json", r#"{"hello": "world"}"#);
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["other.json", "missing string field `schema`"],
    );
    expect_bad(
        &w,
        &["test", "-m", w.path().join("absent.json").to_str().unwrap()],
        &["absent.json", "cannot read manifest"],
    );
}

#[test]
fn unknown_major_version() {
    let w = Ws::new();
    let mut m = good_manifest(&w);
    m["schema"] = "fci/manifest/v2".into();
    let p = w.save("v2.json", &m);
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["v2.json", "unsupported manifest major version 2"],
    );
}

#[test]
fn artifact_paths_escaping_the_workspace() {
    let w = Ws::new();
    let good = good_manifest(&w);
    for (name, path) in [
        ("dotdot.json", "objects/../../../etc/passwd"),
        ("absolute.json", "/etc/passwd"),
    ] {
        let mut m = good.clone();
        m["artifacts"][1]["path"] = path.into();
        let p = w.save(name, &m);
        expect_bad(
            &w,
            &["test", "-m", p.to_str().unwrap()],
            &[name, "artifacts[1].path", path],
        );
        // The published schema rejects it too.
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("docs/manifest.schema.json")).unwrap(),
        )
        .unwrap();
        assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&m));
    }
}

fn copy_example(w: &Ws, name: &str) -> PathBuf {
    let d = w
        .path()
        .join(format!("{name}-{}", uuid::Uuid::new_v4()))
        .join(name);
    fci::suites::runner::copy_tree(&example(name), &d).unwrap();
    d
}

#[test]
fn missing_spec_and_spec_syntax_error() {
    let w = Ws::new();
    let d = copy_example(&w, "hello-broken-check");
    std::fs::remove_file(d.join("hello-broken-check.spec")).unwrap();
    expect_bad(
        &w,
        &["build", d.to_str().unwrap()],
        &[d.to_str().unwrap(), "no .spec file"],
    );
    let d = copy_example(&w, "hello-atomic");
    expect_bad(
        &w,
        &["build", d.to_str().unwrap(), "--spec", "nope.spec"],
        &["nope.spec", "spec file not found"],
    );
    expect_bad(
        &w,
        &["build", d.to_str().unwrap(), "--spec", "../x.spec"],
        &["x.spec", "escapes"],
    );
    let spec = d.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("License:        MIT", "Licence MIT");
    std::fs::write(&spec, text).unwrap();
    // The package's mistake (it was exit 2 with no manifest): FAILED, at its line.
    expect_package_failed(
        &w,
        &["build", d.to_str().unwrap(), "--lookaside", &lookaside()],
        "build",
        &["hello-atomic.spec:5: spec does not parse: Unknown tag: Licence MIT"],
    );
    // A Source nobody provides (neither committed nor in `sources`): the package's mistake,
    // at the line that names it.
    let d = copy_example(&w, "hello-atomic");
    let spec = d.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "Source0:        %{name}-%{version}.tar.gz\n",
        "Source0:        %{name}-%{version}.tar.gz\nSource1:        hello-atomic.conf\n",
    );
    std::fs::write(&spec, text).unwrap();
    expect_package_failed(
        &w,
        &["build", d.to_str().unwrap(), "--lookaside", &lookaside()],
        "build",
        &["hello-atomic.spec:8: Source/Patch `hello-atomic.conf` is neither in the repository nor in the `sources` file"],
    );
}

#[test]
fn sources_hash_mismatch_and_missing_lookaside_file() {
    let w = Ws::new();
    let d = copy_example(&w, "hello-atomic");
    let flat = w.path().join("flat-lookaside");
    std::fs::create_dir_all(&flat).unwrap();
    let tarball = std::fs::read_dir(example(
        "lookaside/hello-atomic/hello-atomic-1.0.tar.gz/sha512",
    ))
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path()
    .join("hello-atomic-1.0.tar.gz");
    std::fs::copy(&tarball, flat.join("hello-atomic-1.0.tar.gz")).unwrap();
    let wrong = "0".repeat(128);
    std::fs::write(
        d.join("sources"),
        format!("SHA512 (hello-atomic-1.0.tar.gz) = {wrong}\n"),
    )
    .unwrap();
    // The `sources` file's hash and a file nobody uploaded are the package's mistakes (they
    // were exit 2 with no manifest): FAILED, naming the line of `sources`.
    expect_package_failed(
        &w,
        &[
            "build",
            d.to_str().unwrap(),
            "--lookaside",
            flat.to_str().unwrap(),
        ],
        "build",
        &["sources:1: sha512 mismatch", "hello-atomic-1.0.tar.gz"],
    );
    let empty = w.path().join("empty-lookaside");
    std::fs::create_dir_all(&empty).unwrap();
    let d2 = copy_example(&w, "hello-atomic");
    let sources2 = d2.join("sources");
    expect_package_failed(
        &w,
        &[
            "build",
            d2.to_str().unwrap(),
            "--lookaside",
            empty.to_str().unwrap(),
        ],
        "build",
        &[
            "sources:1: `hello-atomic-1.0.tar.gz`",
            "not found in lookaside",
        ],
    );
    // A `sources` line that is not one is the package's mistake too.
    let d3 = copy_example(&w, "hello-atomic");
    std::fs::write(
        d3.join("sources"),
        "# the tarball\nSHA512 (x.tar.gz) = abc\n",
    )
    .unwrap();
    expect_package_failed(
        &w,
        &["build", d3.to_str().unwrap(), "--lookaside", &lookaside()],
        "build",
        &["sources:2: not a sha512 hash: `SHA512 (x.tar.gz) = abc`"],
    );
    expect_bad(
        &w,
        &["build", d2.to_str().unwrap()],
        &[sources2.to_str().unwrap(), "no --lookaside"],
    );
    expect_bad(
        &w,
        &[
            "build",
            d2.to_str().unwrap(),
            "--lookaside",
            "/nonexistent/la",
        ],
        &["/nonexistent/la", "does not exist"],
    );
    // Nothing unverified reached the lookaside cache.
    assert!(!w.ws().join("lookaside/sha512").join(&wrong).exists());
}

#[test]
fn invalid_tests_yml() {
    let w = Ws::new();
    let m = good_manifest(&w);
    let p = w.save("m.json", &m);
    let bad = fixture("badyaml");
    // The package's tests, not the caller's input (it was exit 2 with no manifest): FAILED,
    // named as the dist-git tree names the file.
    expect_package_failed(
        &w,
        &[
            "test",
            "-m",
            p.to_str().unwrap(),
            "--tests-from",
            bad.to_str().unwrap(),
        ],
        "test",
        &["tests/tests.yml:5: invalid YAML"],
    );
}

#[test]
fn nonexistent_repo_path_url_and_ref() {
    let w = Ws::new();
    expect_bad(
        &w,
        &["build", "/nonexistent/rpms/foo"],
        &["/nonexistent/rpms/foo", "no such dist-git directory"],
    );
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let url = format!("file://{}", repo.display());
    expect_bad(
        &w,
        &["build", &url, "--ref", "f99"],
        &[url.as_str(), "no such git ref `f99`"],
    );
    expect_bad(
        &w,
        &["build", &url, "--ref=--upload-pack=evil"],
        &["invalid git ref"],
    );
    let missing = format!("file://{}", w.path().join("no-such-repo").display());
    expect_bad(
        &w,
        &["build", &missing],
        &[missing.as_str(), "git clone failed"],
    );
    expect_bad(
        &w,
        &["build", "ftp://example.org/x"],
        &["ftp://example.org/x", "unsupported URL scheme"],
    );
}

#[test]
fn a_test_stage_without_build_output_says_so() {
    let w = Ws::new();
    let mut m = good_manifest(&w);
    m["artifacts"] = Value::Array(vec![]);
    let p = w.save("norpms.json", &m);
    expect_not_its_records(&w, &["test", "-m", p.to_str().unwrap()], "norpms.json");
    w.forget_records();
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["norpms.json", "no `rpm` artifacts"],
    );
    assert!(Path::new(&p).exists());
}

#[test]
fn a_manifest_whose_rpm_does_not_match_its_sha256() {
    let w = Ws::new();
    let mut m = good_manifest(&w);
    let i = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["type"] == "rpm")
        .unwrap();
    m["artifacts"][i]["sha256"] = "0".repeat(64).into();
    let p = w.save("tampered.json", &m);
    expect_not_its_records(&w, &["test", "-m", p.to_str().unwrap()], "tampered.json");
    w.forget_records();
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["tampered.json", "does not match its sha256"],
    );
}

#[test]
fn a_manifest_whose_dist_git_tree_was_edited_cannot_switch_the_tests_off() {
    let w = Ws::new();
    let m = good_manifest(&w);
    let i = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["type"] == "dist-git")
        .unwrap();
    // The whole workspace as the test tree: it has no tests, so the run would say INFO.
    let mut dot = m.clone();
    dot["artifacts"][i]["path"] = ".".into();
    let p = w.save("dot.json", &dot);
    expect_not_its_records(&w, &["test", "-m", p.to_str().unwrap()], "dot.json");
    w.forget_records();
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["dot.json", "does not match its tree digest"],
    );
    // A tree whose files changed after the build.
    let tree = w.ws().join(m["artifacts"][i]["path"].as_str().unwrap());
    std::fs::remove_dir_all(tree.join("tests")).unwrap();
    let p = w.save("same.json", &m);
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["same.json", "does not match its tree digest"],
    );
    // An artifact of another type under the dist-git name.
    let mut wrong = m.clone();
    wrong["artifacts"][i]["type"] = "rpm".into();
    let p = w.save("wrong.json", &wrong);
    let r = w.run(&["test", "-m", p.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_manifest_pointing_at_another_builds_artifacts_is_refused() {
    // Both builds are real and in the same workspace: the digests alone would agree.
    let w = Ws::new();
    let m = good_manifest(&w);
    let other = w.build("hello-broken-test", &[]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let o = other.manifest();
    let tree_of = |v: &Value| {
        v["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "dist-git")
            .unwrap()
            .clone()
    };
    let mut swapped = m.clone();
    let i = swapped["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["type"] == "dist-git")
        .unwrap();
    swapped["artifacts"][i] = tree_of(&o);
    let p = w.save("swapped.json", &swapped);
    expect_not_its_records(&w, &["test", "-m", p.to_str().unwrap()], "swapped.json");
    w.forget_records();
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &[
            "swapped.json",
            "differ from what its `build` stage recorded",
        ],
    );
    // A log relabelled as an RPM is no RPM.
    let mut relabelled = m.clone();
    let log = relabelled["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["type"] == "log")
        .unwrap();
    relabelled["artifacts"][log]["type"] = "rpm".into();
    let p = w.save("relabelled.json", &relabelled);
    expect_bad(
        &w,
        &["test", "-m", p.to_str().unwrap()],
        &["relabelled.json", "is not a rpm"],
    );
}

#[test]
fn credentials_in_a_url_never_reach_messages_or_the_workspace() {
    let w = Ws::new();
    let url = "http://bob:s3cret@127.0.0.1:9/rpms/hello.git";
    // An unreachable server is an infrastructure error: exit 3, with an ERROR record.
    let r = w.run(&["build", url]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("http://***@127.0.0.1:9/rpms/hello.git: git clone failed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("s3cret") && !r.stdout.contains("s3cret"));
    assert_eq!(r.stage(&r.manifest(), "build")["outcome"], "ERROR");
    let la = "http://bob:s3cret@127.0.0.1:9/lookaside";
    let r = w.run(&[
        "build",
        example("hello-atomic").to_str().unwrap(),
        "--lookaside",
        la,
    ]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "s3cret"])
        .arg(w.ws())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "token written to {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

#[test]
fn a_panic_in_fci_is_one_line_and_exit_3_never_a_verdict() {
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("__panic")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&r.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("fci: error: internal error at src/main.rs:"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("a deliberate panic"), "{}", lines[0]);
    assert!(r.stdout.is_empty());
}

/// A test file's missing tool fails its tests (never skips them), naming what to install.
#[test]
#[should_panic(expected = "fci-no-such-tool (install fci-no-such-package); run ./setup.sh")]
fn a_missing_tool_fails_naming_what_to_install() {
    require(
        &[("sh", "dash"), ("fci-no-such-tool", "fci-no-such-package")],
        "this test",
    );
}
