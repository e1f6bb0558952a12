//! `fci build` end to end, with the real rpmbuild, rpmspec and createrepo_c.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, &[tool::GIT, tool::RPMAUTOSPEC]];

/// The package's own binary RPMs: not the debuginfo and debugsource packages that Fedora's
/// build environment makes beside them (`debug_artifacts`).
fn rpm_artifacts(m: &Value) -> Vec<&Value> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm" && !is_debug(a))
        .collect()
}

fn is_debug(a: &Value) -> bool {
    let name = a["nevra"]["name"].as_str().unwrap_or("");
    name.ends_with("-debuginfo") || name.ends_with("-debugsource")
}

/// The names of the debuginfo and debugsource RPMs a build recorded.
fn debug_artifacts(m: &Value) -> Vec<String> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm" && is_debug(a))
        .map(|a| a["nevra"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn builds_installable_rpms_whose_nevra_matches_the_spec() {
    let w = Ws::new();
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let build = r.stage(&m, "build");
    assert_eq!(build["outcome"], "PASSED");
    assert_eq!(build["backend"], "rpmbuild");
    assert_eq!(build["data"]["sandbox"], "bubblewrap");
    assert_eq!(build["data"]["dist"], ".fc41");
    assert_eq!(
        build["data"]["unmet_buildrequires"],
        unmet_on_host(&["gcc", "make"])
    );
    // rpmlint's findings are informational: hello-atomic's gating.yaml does not require it.
    assert_eq!(
        results(build),
        vec![
            ("build.check".to_string(), "PASSED".to_string()),
            ("rpmlint".to_string(), "INFO".to_string())
        ]
    );
    assert_eq!(m["subject"]["package"], "hello-atomic");

    // What the spec says, asked of rpm itself.
    let q = Command::new("rpmspec")
        .args([
            "-q",
            "--define",
            "dist .fc41",
            "--qf",
            "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n",
        ])
        .arg(example("hello-atomic/hello-atomic.spec"))
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&q.stdout).trim().to_string();
    let rpms = rpm_artifacts(&m);
    assert_eq!(rpms.len(), 1);
    // As on Fedora: the debugging symbols and sources in packages of their own.
    assert_eq!(
        debug_artifacts(&m),
        vec!["hello-atomic-debuginfo", "hello-atomic-debugsource"]
    );
    let n = &rpms[0]["nevra"];
    assert_eq!(
        format!(
            "{}-{}-{}.{}",
            n["name"].as_str().unwrap(),
            n["version"].as_str().unwrap(),
            n["release"].as_str().unwrap(),
            n["arch"].as_str().unwrap()
        ),
        expected
    );
    let srpm: Vec<&Value> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "srpm")
        .collect();
    assert_eq!(srpm[0]["nevra"]["arch"], "src");

    // The package is real: sha256 matches, it installs into a fresh root, the program runs.
    let path = w.ws().join(rpms[0]["path"].as_str().unwrap());
    let (sha, size) = fci::digest::sha256_file(&path).unwrap();
    assert_eq!(rpms[0]["sha256"], sha.as_str());
    assert_eq!(rpms[0]["size"], size);
    let root = w.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let st = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--force-debian",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new(root.join("usr/bin/hello-atomic"))
        .arg("rpm")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, rpm!\n");

    // The repository is valid rpm-md listing the package.
    let repo = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm-repo")
        .unwrap();
    let repodir = w.ws().join(repo["path"].as_str().unwrap());
    let repomd = std::fs::read_to_string(repodir.join("repodata/repomd.xml")).unwrap();
    assert!(repomd.contains("primary"));
    assert!(repodir.join(rpms[0]["name"].as_str().unwrap()).is_file());
    assert!(
        w.leftovers().is_empty(),
        "scratch left behind: {:?}",
        w.leftovers()
    );
}

#[test]
fn failing_check_is_failed_with_exit_1_and_the_log_tail() {
    let w = Ws::new();
    let r = w.run(&[
        "build",
        example("hello-broken-check").to_str().unwrap(),
        "--branch",
        "f41",
    ]);
    assert_eq!(r.code, 1);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED");
    assert_eq!(
        results(b),
        vec![("build.check".to_string(), "FAILED".to_string())]
    );
    assert!(b["log"].is_string());
    // Without --quiet the tail of the log reaches stderr.
    let mut c = Command::new(env!("CARGO_BIN_EXE_fci"));
    let loud = c
        .arg("--workspace")
        .arg(w.ws())
        .args([
            "build",
            example("hello-broken-check").to_str().unwrap(),
            "--branch",
            "f41",
            "--no-cache",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert_eq!(loud.status.code(), Some(1));
    assert!(
        stderr.contains("%check failed") && stderr.contains("FAIL: greeting is wrong"),
        "{stderr}"
    );
}

#[test]
fn unchanged_inputs_reuse_the_result_unless_no_cache() {
    let w = Ws::new();
    let first = w.build("hello-atomic", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let m1 = first.manifest();
    let second = w.build("hello-atomic", &[]);
    assert_eq!(second.code, 0);
    let m2 = second.manifest();
    let b2 = second.stage(&m2, "build");
    assert_eq!(b2["cached"], true);
    assert_eq!(
        b2["input_digest"],
        first.stage(&m1, "build")["input_digest"]
    );
    assert_eq!(
        rpm_artifacts(&m2)[0]["sha256"],
        rpm_artifacts(&m1)[0]["sha256"]
    );
    let third = w.build("hello-atomic", &["--no-cache"]);
    assert_eq!(third.code, 0);
    let m3 = third.manifest();
    assert_eq!(third.stage(&m3, "build")["cached"], false);
    // A different dist is a different input.
    let other = w.build("hello-atomic", &["--dist", ".fc40"]);
    let m4 = other.manifest();
    assert_eq!(other.stage(&m4, "build")["cached"], false);
    assert_eq!(rpm_artifacts(&m4)[0]["nevra"]["release"], "1.fc40");
}

#[test]
fn two_builds_at_once_on_one_workspace_both_finish_intact() {
    let w = Ws::new();
    let spawn = |name: &str, out: &str| {
        let mut c = w.cmd();
        c.args([
            "build",
            example(name).to_str().unwrap(),
            "--branch",
            "f41",
            "--lookaside",
            &lookaside(),
            "--no-cache",
            "-o",
        ])
        .arg(w.path().join(out));
        c.spawn().unwrap()
    };
    let kids = vec![
        spawn("hello-atomic", "a.json"),
        spawn("hello-atomic", "b.json"),
        spawn("hello-broken-test", "c.json"),
    ];
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    for f in ["a.json", "b.json", "c.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(w.path().join(f)).unwrap()).unwrap();
        assert_valid(&v);
        for a in v["artifacts"].as_array().unwrap() {
            let p = w.ws().join(a["path"].as_str().unwrap());
            if a["type"] != "rpm-repo" && a["type"] != "dist-git" {
                assert_eq!(
                    fci::digest::sha256_file(&p).unwrap().0,
                    a["sha256"].as_str().unwrap(),
                    "{f}: {p:?}"
                );
            }
        }
    }
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn builds_from_a_git_url_at_a_ref() {
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-atomic", "f40");
    let url = format!("file://{}", repo.display());
    let r = w.run(&["build", &url, "--ref", "f40", "--lookaside", &lookaside()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(m["subject"]["repo"], url.as_str());
    assert_eq!(m["subject"]["branch"], "f40");
    assert_eq!(m["subject"]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(rpm_artifacts(&m)[0]["nevra"]["release"], "1.fc40");
    // The manifest alone says what to build again.
    let p = w.save("m.json", &m);
    let again = w.run(&[
        "build",
        "-m",
        p.to_str().unwrap(),
        "--lookaside",
        &lookaside(),
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stage(&again.manifest(), "build")["cached"], true);
}

#[test]
fn fetches_sources_from_an_http_lookaside_and_verifies_them() {
    let w = Ws::new();
    let root = example("lookaside");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let served = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut paths = Vec::new();
        for stream in server.incoming().take(1) {
            let mut s = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap().to_string();
            let file = root.join(path.trim_start_matches("/repo/pkgs/rpms/"));
            match std::fs::read(&file) {
                Ok(body) => {
                    write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    s.write_all(&body).unwrap();
                }
                Err(_) => write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap(),
            }
            paths.push(path);
        }
        paths
    });
    let url = format!("http://{addr}/repo/pkgs/rpms");
    let r = w.run(&[
        "build",
        example("hello-atomic").to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &url,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let paths = served.join().unwrap();
    assert!(
        paths[0].starts_with("/repo/pkgs/rpms/hello-atomic/hello-atomic-1.0.tar.gz/sha512/"),
        "{paths:?}"
    );
}

#[test]
fn a_missing_tool_names_the_package_to_install() {
    let w = Ws::new();
    let empty = w.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = w
        .cmd()
        .env("PATH", &empty)
        .args(["build", example("hello-atomic").to_str().unwrap()])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr
            .contains("rpmbuild not found on PATH: install the Debian package `rpm`"),
        "{}",
        r.stderr
    );
    // The run itself broke: the manifest still goes downstream, with an ERROR record.
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR");
    assert!(b["notes"][0]
        .as_str()
        .unwrap()
        .contains("install the Debian package `rpm`"));
    // The stage had started: its log is kept with the ERROR record.
    let log = w
        .ws()
        .join(b["log"].as_str().expect("an ERROR record with its log"));
    assert!(std::fs::read_to_string(log).unwrap().contains("# error:"));
}

#[test]
fn strict_builddeps_turns_unmet_buildrequires_into_error() {
    // Needs a host whose rpm database lacks gcc and make, as Debian's (empty) one does.
    assert_eq!(
        rpm_lacks(&["gcc", "make"]),
        serde_json::json!(["gcc", "make"]),
        "this test needs an rpm database without gcc and make (a Debian host)"
    );
    let w = Ws::new();
    let r = w.build("hello-atomic", &["--strict-builddeps"]);
    assert_eq!(r.code, 3);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR");
    assert!(
        b["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("cannot satisfy BuildRequires: gcc, make")),
        "{b}"
    );
    // And a later stage skips instead of testing nothing.
    let t = w.test(&m, &[]);
    assert_eq!(t.code, 3);
    assert_eq!(t.stage(&t.manifest(), "test")["outcome"], "SKIPPED");
}

#[test]
fn a_hung_build_is_killed_at_the_timeout_and_is_an_error() {
    let w = Ws::new();
    let r = w.build_fixture("slow-build", &["--timeout", "3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR");
    assert!(b["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("killed after 3s")));
    w.assert_no_process("sleep 62", "the build's process");
}

/// `--timeout` takes units (`1h`, `1h30m`) as well as seconds; a bad one is bad usage, said
/// on one line naming the flag and the value.
#[test]
fn the_timeout_takes_units_and_a_bad_one_is_named() {
    let w = Ws::new();
    let r = w.build("hello-atomic", &["--timeout", "1h"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "PASSED");
    assert_eq!(r.stage(&m, "build")["cached"], false);
    for bad in ["4x", "1h30", "an hour", "100000000000000"] {
        let r = w.build("hello-atomic", &["--timeout", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ")
                && first.contains("--timeout")
                && first.contains(&format!("'{bad}'")),
            "{bad}: {}",
            r.stderr
        );
    }
}

#[test]
fn spec_code_runs_sandboxed_even_when_only_parsed() {
    let w = Ws::new();
    let probe = std::path::Path::new("/var/tmp/fci-hostile-spec-probe");
    let _ = std::fs::remove_file(probe);
    let out = w
        .cmd()
        .env("FCI_SECRET_TOKEN", "s3cret")
        .args([
            "build",
            fixture("hostile-spec").to_str().unwrap(),
            "--dist",
            ".fc41",
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    // %check passes only when the sandbox hides secrets, the network and the host's files.
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!probe.exists(), "rpmspec's %(...) wrote to the host");
    assert!(!std::path::Path::new("/usr/hostile-spec-probe").exists());
    assert!(!r.stdout.contains("s3cret"));
}

#[test]
fn a_symlink_out_of_the_checkout_is_refused() {
    let w = Ws::new();
    let d = w.path().join("linked");
    fci::suites::runner::copy_tree(&example("hello-broken-check"), &d).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("data")).unwrap();
    let r = w.run(&["build", d.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("data: symlink points outside the dist-git checkout"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_symlink_into_git_is_refused_without_showing_the_token() {
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-broken-check", "f41");
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://fci:TOKEN-123@example.org/rpms/x.git",
        ],
    );
    std::os::unix::fs::symlink(".git/config", repo.join("notes.txt")).unwrap();
    git(&repo, &["add", "notes.txt"]);
    git(&repo, &["commit", "-q", "-m", "notes"]);
    let r = w.run(&["build", repo.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("notes.txt: symlink points into .git"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("TOKEN-123") && !r.stdout.contains("TOKEN-123"));
}

#[test]
fn a_symlink_to_an_ignored_file_is_refused() {
    // The build would read the ignored file, which the input digest does not cover.
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-broken-check", "f41");
    std::fs::write(repo.join(".gitignore"), "local.txt\n").unwrap();
    std::fs::write(repo.join("local.txt"), "one\n").unwrap();
    std::os::unix::fs::symlink("local.txt", repo.join("data")).unwrap();
    git(&repo, &["add", ".gitignore", "data"]);
    git(&repo, &["commit", "-q", "-m", "data"]);
    let r = w.run(&["build", repo.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("data: symlink points at `local.txt`, which is not a file of the repository"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_rebuild_replaces_the_earlier_builds_packages() {
    let w = Ws::new();
    let first = w.build("hello-atomic", &[]);
    let p = w.save("m.json", &first.manifest());
    let src = example("hello-atomic");
    let la = lookaside();
    let r = w.run(&[
        "build",
        src.to_str().unwrap(),
        "-m",
        p.to_str().unwrap(),
        "--dist",
        ".fc40",
        "--lookaside",
        &la,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let rpms = rpm_artifacts(&m);
    assert_eq!(rpms.len(), 1, "{rpms:?}");
    assert_eq!(rpms[0]["nevra"]["release"], "1.fc40");
    // Both build records and both logs remain (each build's own, and its rpmlint case's):
    // the history is kept.
    assert_eq!(m["stages"].as_array().unwrap().len(), 2);
    for name in ["build.log", "rpmlint.log"] {
        assert_eq!(
            m["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["type"] == "log" && a["name"] == name)
                .count(),
            2,
            "{name}"
        );
    }
}

#[test]
fn a_dirty_work_tree_is_recorded_as_such() {
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let la = lookaside();
    let clean = w.run(&["build", repo.to_str().unwrap(), "--lookaside", &la]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let mc = clean.manifest();
    assert_eq!(mc["subject"]["branch"], "f41");
    assert!(mc["subject"]["dirty"].is_null());
    let spec = repo.join("hello-atomic.spec");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("Release:        1%{?dist}", "Release:        2%{?dist}");
    std::fs::write(&spec, text).unwrap();
    let dirty = w.run(&["build", repo.to_str().unwrap(), "--lookaside", &la]);
    assert_eq!(dirty.code, 0, "{}", dirty.stderr);
    let md = dirty.manifest();
    assert_eq!(md["subject"]["dirty"], true);
    assert_eq!(md["subject"]["commit"], mc["subject"]["commit"]);
    assert_eq!(rpm_artifacts(&md)[0]["nevra"]["release"], "2.fc41");
    let notes = dirty.stage(&md, "build")["notes"].to_string();
    assert!(notes.contains("uncommitted changes"), "{notes}");
    // Once committed, the same content is reused, without yesterday's dirty note.
    git(&repo, &["commit", "-qam", "release 2"]);
    let committed = w.run(&["build", repo.to_str().unwrap(), "--lookaside", &la]);
    let mc2 = committed.manifest();
    let b = committed.stage(&mc2, "build");
    assert_eq!(b["cached"], true);
    assert!(!b["notes"].to_string().contains("uncommitted"), "{b}");
    assert!(mc2["subject"]["dirty"].is_null());
}

#[test]
fn fedora_style_specs_with_rpmautospec_and_release_conditionals_build() {
    let w = Ws::new();
    // rpmautospec computes %autorelease from the dist-git history, as Koji does: a git
    // checkout of the fixture with one commit is release 1.
    let spec = w.path().join("autospec");
    fci::suites::runner::copy_tree(&fixture("autospec"), &spec).unwrap();
    git(&spec, &["init", "-q", "-b", "f41"]);
    git(&spec, &["add", "-A"]);
    git(&spec, &["commit", "-q", "-m", "initial"]);
    for (dist, release, file) in [
        (".fc41", "1.fc41", "fedora-41"),
        (".el9", "1.el9", "rhel-9"),
    ] {
        let r = w.run(&["build", spec.to_str().unwrap(), "--dist", dist]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let m = r.manifest();
        let rpm = rpm_artifacts(&m)[0];
        assert_eq!(rpm["nevra"]["release"], release);
        let path = w.ws().join(rpm["path"].as_str().unwrap());
        let files = Command::new("rpm")
            .args(["-qpl"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&files.stdout).contains(file),
            "{}",
            String::from_utf8_lossy(&files.stdout)
        );
        let log = Command::new("rpm")
            .args(["-qp", "--changelog"])
            .arg(&path)
            .output()
            .unwrap();
        // rpmautospec's entry for the commit: its message, and the EVR without the dist tag.
        let log = String::from_utf8_lossy(&log.stdout);
        assert!(
            log.contains("fci <fci@example.org> - 2.0-1\n- initial"),
            "{log}"
        );
    }
}

#[test]
fn git_checkouts_the_way_packagers_have_them() {
    let w = Ws::new();
    let la = lookaside();
    let origin = git_repo(w.path(), "hello-atomic", "rawhide");
    git(&origin, &["branch", "f41"]);
    git(&origin, &["tag", "v1"]);
    // A fedpkg-style clone: the default branch locally, f41 only as a remote-tracking branch.
    git(
        w.path(),
        &["clone", "-q", origin.to_str().unwrap(), "pkgclone"],
    );
    let clone = w.path().join("pkgclone");

    let r = w.run(&[
        "build",
        clone.to_str().unwrap(),
        "--ref",
        "f41",
        "--lookaside",
        &la,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(m["subject"]["branch"], "f41");
    assert_eq!(rpm_artifacts(&m)[0]["nevra"]["release"], "1.fc41");

    // A URL without a ref builds the default branch, and knows its name.
    let url = format!("file://{}", origin.display());
    let r = w.run(&["build", &url, "--lookaside", &la]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(m["subject"]["branch"], "rawhide");
    assert_eq!(
        rpm_artifacts(&m)[0]["nevra"]["release"],
        format!("1.fc{}", fci::distgit::RAWHIDE)
    );
    // Rawhide's release number is configuration, not a constant.
    let r = w.run(&["build", &url, "--lookaside", &la, "--rawhide-release", "46"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(rpm_artifacts(&m)[0]["nevra"]["release"], "1.fc46");

    // A tag is no branch.
    let r = w.run(&[
        "build",
        &url,
        "--ref",
        "v1",
        "--dist",
        ".fc41",
        "--lookaside",
        &la,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.manifest()["subject"]["branch"].is_null());

    // Ignored build leftovers and a workspace inside the checkout are not the package.
    std::fs::write(clone.join(".git/info/exclude"), "x86_64/\n").unwrap();
    std::fs::create_dir_all(clone.join("x86_64")).unwrap();
    std::fs::write(clone.join("x86_64/old-build.rpm"), "junk").unwrap();
    let inside = clone.join(".fci");
    let build_inside = || {
        let out = Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(&inside)
            .args(["-q", "build", ".", "--lookaside", &la, "-o", "out.json"])
            .current_dir(&clone)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(clone.join("out.json")).unwrap())
                .unwrap();
        v
    };
    let first = build_inside();
    let second = build_inside();
    assert!(first["subject"]["dirty"].is_null(), "{}", first["subject"]);
    assert_eq!(second["stages"][0]["cached"], true);
    let tree = first["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "dist-git")
        .unwrap();
    let snap = inside.join(tree["path"].as_str().unwrap());
    let files: Vec<String> = fci::digest::list_files(&snap, &[])
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with(".fci") && !f.starts_with("x86_64") && f != "out.json"),
        "{files:?}"
    );
    assert!(files.contains(&"hello-atomic.spec".to_string()));
}

#[test]
fn buildrequires_of_every_kind_are_reported() {
    let w = Ws::new();
    let r = w.build_fixture("file-br", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(
        r.stage(&m, "build")["data"]["unmet_buildrequires"],
        unmet_on_host(&["/usr/bin/fci-no-such-tool"])
    );
    let strict = w.build_fixture("file-br", &["--strict-builddeps"]);
    assert_eq!(strict.code, 3, "{}", strict.stderr);
    // A failed build says which BuildRequires were missing: the likeliest cause.
    let failed = w.run(&[
        "build",
        example("hello-broken-check").to_str().unwrap(),
        "--dist",
        ".fc41",
    ]);
    assert_eq!(failed.code, 1);
    let mf = failed.manifest();
    assert_eq!(
        failed.stage(&mf, "build")["data"]["unmet_buildrequires"],
        unmet_on_host(&["coreutils"])
    );
}

#[test]
fn a_sandbox_that_cannot_start_is_the_hosts_problem_not_the_specs() {
    let w = Ws::new();
    let bin = w.path().join("broken-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = w
        .cmd()
        .env("PATH", path)
        .args([
            "build",
            example("hello-atomic").to_str().unwrap(),
            "--dist",
            ".fc41",
            "--lookaside",
            &lookaside(),
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the sandbox (bubblewrap) cannot start here: bwrap: No permissions"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stage(&r.manifest(), "build")["outcome"], "ERROR");
}

#[test]
fn define_dist_lookaside_cache_and_output_mode() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    // -D dist= is the dist, and %rhel follows from it.
    let r = w.build("hello-atomic", &["-D", "dist=.el8"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["data"]["dist"], ".el8");
    assert_eq!(rpm_artifacts(&m)[0]["nevra"]["release"], "1.el8");
    // A damaged lookaside cache entry is noticed and fetched again.
    let cached: Vec<_> = fci::digest::list_files(&w.ws().join("lookaside"), &[]).unwrap();
    let entry = w.ws().join("lookaside").join(&cached[0]);
    std::fs::write(&entry, "damaged").unwrap();
    let again = w.build("hello-atomic", &["-D", "dist=.el8", "--no-cache"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_ne!(std::fs::read(&entry).unwrap(), b"damaged");
    // -o writes a file others can read, as any file the user creates.
    let out = w.path().join("m.json");
    let r = w.run(&[
        "build",
        example("hello-atomic").to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &lookaside(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn forged_spec_output_never_reaches_rpm_as_an_option() {
    let w = Ws::new();
    let probe = std::path::Path::new("/var/tmp/fci-forged-probe");
    let _ = std::fs::remove_file(probe);
    for extra in [&[][..], &["--strict-builddeps"][..]] {
        let mut args = vec!["build", "--dist", ".fc41"];
        let f = fixture("forged-query");
        args.push(f.to_str().unwrap());
        args.extend_from_slice(extra);
        let r = w.run(&args);
        assert_ne!(r.code, 0, "{}", r.stderr);
    }
    assert!(
        !probe.exists(),
        "an option smuggled through spec output ran on the host"
    );
}

#[test]
fn a_spec_that_hangs_while_parsed_is_killed_at_the_timeout() {
    let w = Ws::new();
    let start = std::time::Instant::now();
    let r = w.build_fixture("slow-parse", &["--timeout", "3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    assert_eq!(r.stage(&r.manifest(), "build")["outcome"], "ERROR");
    w.assert_no_process("sleep 61", "the spec's process");
}

#[test]
fn another_users_checkout_and_fci_paths_beside_it() {
    let w = Ws::new();
    let la = lookaside();
    // git refuses a repository owned by someone else: fci builds the directory as it is.
    let repo = git_repo(w.path(), "hello-atomic", "f41");
    let st = Command::new("chown")
        .args(["-R", "nobody:"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let r = w.run(&[
        "build",
        repo.to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        &la,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.manifest()["subject"]["commit"].is_null());
    // A clean checkout stays clean with fci's workspace and output in a new directory in it.
    let mine = w.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    let repo = git_repo(&mine, "hello-atomic", "f41");
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .args([
            "--workspace",
            "out/ws",
            "-q",
            "build",
            ".",
            "--lookaside",
            &la,
            "-o",
            "out/b.json",
        ])
        .current_dir(&repo)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    std::fs::create_dir_all(repo.join("out")).ok();
    assert!(out.success());
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("out/b.json")).unwrap()).unwrap();
    assert!(m["subject"]["dirty"].is_null(), "{}", m["subject"]);
}

#[test]
fn spec_chooses_the_spec_even_beside_a_namesake() {
    let w = Ws::new();
    let d = w.path().join("two-specs");
    fci::suites::runner::copy_tree(&example("hello-broken-test"), &d).unwrap();
    std::fs::create_dir_all(d.join("alt")).unwrap();
    let text = std::fs::read_to_string(d.join("hello-broken-test.spec"))
        .unwrap()
        .replace("Version:        0.1", "Version:        0.2");
    std::fs::write(d.join("alt/hello-broken-test.spec"), text).unwrap();
    let r = w.run(&[
        "build",
        d.to_str().unwrap(),
        "--spec",
        "alt/hello-broken-test.spec",
        "--dist",
        ".fc41",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(rpm_artifacts(&r.manifest())[0]["nevra"]["version"], "0.2");
}

#[test]
fn the_check_result_says_what_check_did() {
    let w = Ws::new();
    let late = w.build_fixture("late-fail", &[]);
    assert_eq!(late.code, 1, "{}", late.stderr);
    let m = late.manifest();
    let b = late.stage(&m, "build");
    assert_eq!(
        results(b),
        vec![("build.check".to_string(), "PASSED".to_string())]
    );
    assert!(b["notes"].to_string().contains("rpmbuild failed"), "{b}");
    let prep = w.build_fixture("prep-fail", &[]);
    assert_eq!(prep.code, 1, "{}", prep.stderr);
    let m = prep.manifest();
    assert_eq!(
        results(prep.stage(&m, "build")),
        vec![("build.check".to_string(), "SKIPPED".to_string())]
    );
}

#[test]
fn a_workspace_path_with_whitespace_is_refused_before_building() {
    // rpmbuild cannot run scriptlets under such a path: that is no package failure.
    let w = Ws::new();
    let spaced = w.path().join("w s");
    let la = lookaside();
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(&spaced)
        .args(["--quiet", "build"])
        .arg(example("hello-atomic"))
        .args(["--branch", "f41", "--lookaside", &la])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("whitespace"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn output_to_a_device_or_a_link_writes_through_it() {
    // `-o /dev/null` must not rename a file over the device node (it did).
    let w = Ws::new();
    let r = w.build("hello-atomic", &["-o", "/dev/null"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(t.is_char_device(), "/dev/null is no longer a device");
    // A link to a file: the file gets the manifest, the link stays a link.
    let target = w.path().join("manifest.json");
    std::fs::write(&target, "old").unwrap();
    let link = w.path().join("out.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = w.build("hello-atomic", &["-o", link.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(m["stages"][0]["name"], "build");
}

/// The lookaside serves its blobs by their hash: other bytes under the hash the `sources`
/// file names are the server's fault (the host's, exit 3), not the caller's bad input.
#[test]
fn a_lookaside_serving_other_bytes_is_the_hosts_error() {
    let w = Ws::new();
    let la = w.path().join("lookaside");
    fci::suites::runner::copy_tree(&example("lookaside"), &la).unwrap();
    let mut blobs = Vec::new();
    let mut stack = vec![la.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e
                .path()
                .to_string_lossy()
                .contains("hello-atomic-1.0.tar.gz/")
            {
                blobs.push(e.path());
            }
        }
    }
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    std::fs::remove_file(&blobs[0]).unwrap();
    std::fs::write(&blobs[0], b"not the tarball").unwrap();
    let r = w.run(&[
        "build",
        example("hello-atomic").to_str().unwrap(),
        "--branch",
        "f41",
        "--lookaside",
        la.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("the lookaside served other bytes"),
        "{}",
        r.stderr
    );
}
