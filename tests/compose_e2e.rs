//! `fci compose` through the real binary: a base made by examples/base/make-base.sh, the
//! change's RPMs layered onto it with real rpm and ostree.

mod common;
use common::trees::*;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE];

/// The example base without a kernel (compose does not boot it), as f41's known-good base.
fn init_base(w: &Ws, extra: impl Fn(&Path)) -> String {
    init_base_with(w, &["--no-kernel"], None, extra)
}

fn compose(w: &Ws, m: &Value) -> Run {
    let p = w.save(&format!("c-{}.json", uuid::Uuid::new_v4()), m);
    w.run(&["compose", "-m", p.to_str().unwrap()])
}

#[test]
fn composes_the_change_onto_the_known_good_base() {
    let w = Ws::new();
    let base = init_base(&w, |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    assert_eq!(c["outcome"], "PASSED");
    assert_eq!(c["backend"], "layer");
    let commit = c["data"]["commit"].as_str().unwrap();
    assert_eq!(c["data"]["parent"], base.as_str());
    assert_eq!(m["subject"]["base"]["ostree_ref"], "fci/f41/known-good");
    assert_eq!(m["subject"]["base"]["ostree_commit"], base.as_str());
    let art = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "ostree-commit")
        .unwrap();
    assert_eq!(art["sha256"], commit);
    assert_eq!(art["path"], "ostree/repo");

    // The new commit has the package's file and its rpm database entry; rpm's lock of the
    // run was not committed.
    let diff = c["data"]["diff"].to_string();
    assert!(diff.contains("A /usr/bin/hello-atomic"), "{diff}");
    assert!(!diff.contains(".rpm.lock"), "{diff}");
    // The build's debuginfo and debugsource packages are not part of the tree.
    assert!(!diff.contains("/usr/lib/debug"), "{diff}");
    assert!(!diff.contains("/usr/src/debug"), "{diff}");
    let co = w.path().join("co");
    let (ok, out) = ostree(&w, &["checkout", "-U", commit, co.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(co.join("usr/bin/hello-atomic").is_file());
    let q = Command::new("rpm")
        .arg("--root")
        .arg(&co)
        .args(["--dbpath", "/usr/lib/sysimage/rpm", "-q", "hello-atomic"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert!(String::from_utf8_lossy(&q.stdout).starts_with("hello-atomic-1.0-1.fc41"));
    // The commit names the change.
    let (_, meta) = ostree(&w, &["show", "--print-metadata-key=fci.package", commit]);
    assert!(meta.contains("hello-atomic"), "{meta}");

    // No write reached a repository object, and the known-good ref did not move.
    let (ok, out) = ostree(&w, &["fsck"]);
    assert!(ok, "ostree fsck: {out}");
    let (_, kg) = ostree(&w, &["rev-parse", "fci/f41/known-good"]);
    assert_eq!(kg.trim(), base);
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());

    // The same run composed again (a retry, --no-cache): a new commit, and the run's
    // candidate ref moves to it.
    let b = w.save("built.json", &built.manifest());
    let again = w.run(&["compose", "--no-cache", "-m", b.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let am = again.manifest();
    let ac = again.stage(&am, "compose");
    assert_eq!(ac["outcome"], "PASSED", "{ac:#}");
    let (_, cand) = ostree(&w, &["rev-parse", ac["data"]["ref"].as_str().unwrap()]);
    assert_eq!(cand.trim(), ac["data"]["commit"].as_str().unwrap());

    // And again with --force, alone (the recorded result may be reused) and beside
    // --no-cache (composed afresh): each passes, and the candidate ref names its commit.
    for flags in [&["--force"][..], &["--force", "--no-cache"][..]] {
        let mut args = vec!["compose"];
        args.extend_from_slice(flags);
        args.extend(["-m", b.to_str().unwrap()]);
        let again = w.run(&args);
        assert_eq!(again.code, 0, "{flags:?}: {}", again.stderr);
        let am = again.manifest();
        let ac = again.stage(&am, "compose");
        assert_eq!(ac["outcome"], "PASSED", "{flags:?}: {ac:#}");
        let (_, cand) = ostree(&w, &["rev-parse", ac["data"]["ref"].as_str().unwrap()]);
        assert_eq!(
            cand.trim(),
            ac["data"]["commit"].as_str().unwrap(),
            "{flags:?}"
        );
    }
    let (ok, out) = ostree(&w, &["fsck"]);
    assert!(ok, "ostree fsck after the reruns: {out}");
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_package_that_replaces_a_base_file_fails_naming_it() {
    let w = Ws::new();
    init_base(&w, |b| {
        std::fs::write(b.join("usr/bin/hello-atomic"), "the base's own\n").unwrap();
    });
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    assert_eq!(c["outcome"], "FAILED");
    assert!(
        c["notes"].to_string().contains("/usr/bin/hello-atomic"),
        "{c:#}"
    );
    let (_, refs) = ostree(&w, &["refs"]);
    assert!(!refs.contains("candidate"), "{refs}");
}

#[test]
fn compose_is_skipped_when_the_build_failed() {
    let w = Ws::new();
    init_base(&w, |_| {});
    let built = w.build("hello-broken-check", &[]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "compose")["outcome"], "SKIPPED");
}

#[test]
fn bad_bases_and_repositories_are_clear_errors() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // No repository yet.
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("fci base init"), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    init_base(&w, |_| {});
    // The known-good base is set once; only gating moves it.
    let base = w.path().join("base");
    let again = w.run(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // Another branch has no base.
    let r = w.run(&[
        "compose",
        "-m",
        w.save("m.json", &built.manifest()).to_str().unwrap(),
        "--branch",
        "f40",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown base ref fci/f40/known-good"),
        "{}",
        r.stderr
    );
    // A tree that is no base.
    let empty = w.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = w.run(&["base", "init", empty.to_str().unwrap(), "--branch", "f39"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a base tree"), "{}", r.stderr);
    // A file that is no tarball: the caller's input, and tar's own words with how it ended.
    let junk = w.path().join("junk.tar");
    std::fs::write(&junk, "not a tarball\n").unwrap();
    let r = w.run(&[
        "compose",
        "--init-base",
        junk.to_str().unwrap(),
        "--branch",
        "f38",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a tarball tar can unpack: tar: ")
            && r.stderr.contains("(tar exited 2)"),
        "{}",
        r.stderr
    );
    // A corrupt repository.
    std::fs::remove_dir_all(repo(&w).join("objects")).unwrap();
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no OSTree repository"), "{}", r.stderr);
}

/// `compose --init-base`, the spelling before `fci base init`, kept hidden for one release:
/// it still makes the base, and says once on stderr what replaces it.
#[test]
fn the_old_init_base_spelling_still_works_and_says_what_replaces_it() {
    let w = Ws::new();
    let base = make_base(&w, &["--no-kernel"], |_| {});
    let r = w.run(&[
        "compose",
        "--init-base",
        base.to_str().unwrap(),
        "--branch",
        "f41",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warned: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("deprecated"))
        .collect();
    assert_eq!(
        warned,
        ["fci: warning: `fci compose --init-base` is deprecated and goes in the next release: use `fci base init`"],
        "{}",
        r.stderr
    );
    let (_, kg) = ostree(&w, &["rev-parse", "fci/f41/known-good"]);
    assert_eq!(r.stdout.trim(), kg.trim());
    assert_eq!(kg.trim().len(), 64, "{kg}");
}

#[test]
fn a_missing_ostree_names_its_package() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let p = w.save("m.json", &built.manifest());
    let empty = w.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let r = Run::from(
        w.cmd()
            .env("PATH", &empty)
            .args(["compose", "-m", p.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("install the Debian package `ostree`"),
        "{}",
        r.stderr
    );
}

#[test]
fn integrate_runs_the_example_suite_on_the_composed_commit() {
    let w = Ws::new();
    let base = init_base(&w, |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let composed = compose(&w, &built.manifest());
    assert_eq!(composed.code, 0, "{}", composed.stderr);
    let p = w.save("composed.json", &composed.manifest());
    let suite = repo_root().join("examples/integration");
    let r = w.run(&[
        "integrate",
        "--tests",
        suite.to_str().unwrap(),
        "-m",
        p.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    let mut got = results(s);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("base-intact".to_string(), "PASSED".to_string()),
            ("package-in-rpmdb".to_string(), "PASSED".to_string()),
            ("program-runs".to_string(), "PASSED".to_string()),
        ]
    );
    let commit = r.stage(&m, "compose")["data"]["commit"].clone();
    assert_eq!(s["data"]["commit"], commit);

    // Integration needs a composed commit, and one the repository really has.
    let built_only = w.save("built.json", &built.manifest());
    let r = w.run(&[
        "integrate",
        "--tests",
        suite.to_str().unwrap(),
        "-m",
        built_only.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("run `fci compose` first"), "{}", r.stderr);
    let mut forged = composed.manifest();
    for a in forged["artifacts"].as_array_mut().unwrap() {
        if a["type"] == "ostree-commit" {
            a["sha256"] = "0".repeat(64).into();
        }
    }
    let p = w.save("forged.json", &forged);
    let integrate = || {
        w.run(&[
            "integrate",
            "--tests",
            suite.to_str().unwrap(),
            "-m",
            p.to_str().unwrap(),
        ])
    };
    // The run's records say which commit its compose left.
    let r = integrate();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("are not those it left"), "{}", r.stderr);
    // Without them (a manifest from another workspace), the repository does.
    w.forget_records();
    let r = integrate();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("has no commit"), "{}", r.stderr);

    // A later stage's `ostree-commit` artifact (here the base's commit, recorded after the
    // compose's; without the run's records, which would refuse the edit first) is never the
    // composed commit: integrate still takes compose's.
    let mut later = composed.manifest();
    let mut other = later["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "ostree-commit")
        .unwrap()
        .clone();
    other["stage"] = "image".into();
    other["sha256"] = base.clone().into();
    later["artifacts"].as_array_mut().unwrap().push(other);
    let p = w.save("later.json", &later);
    let r = w.run(&[
        "integrate",
        "--tests",
        suite.to_str().unwrap(),
        "-m",
        p.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "integrate")["data"]["commit"], commit);
}

#[test]
fn a_shared_ostree_repository_serves_the_workspace() {
    let w = Ws::new();
    let shared = w.path().join("shared/repo");
    init_base_with(&w, &["--no-kernel"], Some(&shared), |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // The workspace remembers its repository: no flag needed any more.
    let r = compose(&w, &built.manifest());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let commit = r.stage(&m, "compose")["data"]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !repo(&w).join("config").exists(),
        "a second repository was made"
    );
    let show = Command::new("ostree")
        .arg(format!("--repo={}", shared.display()))
        .args(["rev-parse", &commit])
        .output()
        .unwrap();
    assert!(
        show.status.success(),
        "the shared repository lacks the commit"
    );
    // Later stages find the commit through the workspace.
    let p = w.save("composed.json", &m);
    let suite = repo_root().join("examples/integration");
    let i = w.run(&[
        "integrate",
        "--tests",
        suite.to_str().unwrap(),
        "-m",
        p.to_str().unwrap(),
    ]);
    assert_eq!(i.code, 0, "{}", i.stderr);
    // The same repository by another spelling is the same; an empty FCI_OSTREE_REPO is unset.
    let respelled = w.path().join("shared/../shared/repo");
    let again = w.save("b.json", &built.manifest());
    let r = w.run(&[
        "compose",
        "--ostree-repo",
        respelled.to_str().unwrap(),
        "-m",
        again.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = Run::from(
        w.cmd()
            .env("FCI_OSTREE_REPO", "")
            .args(["compose", "-m", again.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One repository per workspace; a relative path is refused.
    let other = w.path().join("other/repo");
    for bad in [other.to_str().unwrap(), "relative/repo"] {
        let r = w.run(&[
            "compose",
            "--ostree-repo",
            bad,
            "-m",
            w.save("b.json", &built.manifest()).to_str().unwrap(),
        ]);
        assert_eq!(r.code, 2, "{}", r.stderr);
    }
}

#[test]
fn etc_and_var_are_laid_out_as_ostree_needs() {
    let w = Ws::new();
    init_base(&w, |_| {});
    let r = compose_fixture(&w, "compose-etc", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let c = r.stage(&m, "compose");
    let commit = c["data"]["commit"].as_str().unwrap();
    // /etc is usr/etc in a commit: a tree with both could not be deployed.
    let (ok, _) = ostree(&w, &["ls", commit, "/usr/etc/compose-etc.conf"]);
    assert!(ok, "the config file is not in usr/etc");
    let (ok, _) = ostree(&w, &["ls", commit, "/etc"]);
    assert!(!ok, "the commit has an /etc");
    // /var is not carried: the directory is made at boot by systemd-tmpfiles.
    assert_eq!(
        c["data"]["var_tmpfiles"],
        "/usr/lib/tmpfiles.d/fci-compose-etc.conf"
    );
    // A %ghost file under /var is not in the payload: nothing is lost, the compose passes.
    let g = compose_fixture(&w, "compose-var-ghost", &[]);
    assert_eq!(g.code, 0, "{}", g.stderr);
    let (ok, text) = ostree(
        &w,
        &["cat", commit, "/usr/lib/tmpfiles.d/fci-compose-etc.conf"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("d /var/log/compose-etc 0750 root root -"),
        "{text}"
    );
}

#[test]
fn payloads_ostree_cannot_carry_fail_naming_the_paths() {
    let w = Ws::new();
    init_base(&w, |_| {});
    for (fixture, says) in [
        // A directory over the base's init program (rpm would replace it silently).
        ("compose-dir-over-file", "/usr/sbin/init"),
        // A file under /var, which no deployment would ever see.
        ("compose-var-file", "/var/lib/compose-var-file/state"),
        // A payload rpm itself refuses: the change's failure, not the host's.
        ("compose-unpack-fail", "unpacking of archive failed"),
        // The root directory with another mode (no diff line would ever show it).
        ("compose-root-mode", "replaces files of the base: /"),
    ] {
        let r = compose_fixture(&w, fixture, &[]);
        assert_eq!(r.code, 1, "{fixture}: {}", r.stderr);
        let m = r.manifest();
        let c = r.stage(&m, "compose");
        assert_eq!(c["outcome"], "FAILED", "{fixture}");
        assert!(c["notes"].to_string().contains(says), "{fixture}: {c:#}");
    }
    let (_, refs) = ostree(&w, &["refs"]);
    assert!(!refs.contains("candidate"), "{refs}");
    let (ok, out) = ostree(&w, &["fsck"]);
    assert!(ok, "{out}");
}
