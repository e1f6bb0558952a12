//! Package code is hostile, also when fci runs as root (as setup.sh and CI machines do):
//! a spec and a test try every way out of the sandbox, and nothing may get out.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, &[tool::GIT, tool::PROCPS]];

/// Host paths the attempts would leave behind had they got out.
fn traces(marker: &str) -> Vec<String> {
    [
        format!("/tmp/{marker}"),
        format!("/usr/{marker}"),
        format!("/etc/{marker}"),
        format!("/var/lib/{marker}"),
        format!("/tmp/{marker}-sda"),
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect()
}

fn attempt_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.starts_with("held: ") || l.starts_with("ESCAPED: "))
        .collect()
}

/// Every attempt ran (its line is there) and was held.
fn assert_all_held(log: &str, what: &str) {
    let lines = attempt_lines(log);
    assert!(
        lines.len() >= 24,
        "{what}: attempts missing from the log:\n{log}"
    );
    let escaped: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ESCAPED")).collect();
    assert!(escaped.is_empty(), "{what}: {escaped:?}");
}

/// The hostile package as a dist-git repository whose remote URL holds a token, with its own
/// path written beside the attempts (where a real attacker would guess it).
fn hostile_repo(w: &Ws) -> std::path::PathBuf {
    let repo = w.path().join("hostile-escape");
    fci::suites::runner::copy_tree(&fixture("hostile-escape"), &repo).unwrap();
    std::fs::write(repo.join("checkout-path"), repo.to_str().unwrap()).unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://fci:gitTOKEN-42@example.org/rpms/x.git",
        ],
    );
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "hostile"]);
    repo
}

/// fci with a secret in its environment, which package code must never see.
fn run_with_secret(w: &Ws, args: &[&str]) -> Run {
    Run::from(
        w.cmd()
            .env("FCI_SECRET_TOKEN", "envSECRET-42")
            .args(args)
            .output()
            .unwrap(),
    )
}

fn assert_no_secret(text: &str, what: &str) {
    for s in ["envSECRET-42", "gitTOKEN-42"] {
        assert!(!text.contains(s), "{what} carries {s}");
    }
}

#[test]
fn a_hostile_spec_cannot_leave_the_build_sandbox() {
    let w = Ws::new();
    let repo = hostile_repo(&w);
    let r = run_with_secret(&w, &["build", repo.to_str().unwrap()]);
    // fci survived the spec's `pkill -x fci` and reports what happened.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED");
    let log = std::fs::read_to_string(w.ws().join(b["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains(&format!("checkout: {}", repo.display())),
        "{log}"
    );
    assert_all_held(&log, "%build");
    // 32-bit calls are filtered too: the keyrings through i386's int 0x80.
    if cfg!(target_arch = "x86_64") {
        assert!(log.contains("held: user-keyring-i386"), "{log}");
    }
    assert!(
        log.starts_with("$ "),
        "the log was rewritten: {}",
        &log[..80.min(log.len())]
    );
    assert!(!log.contains("s3cr3t-token"), "credentials in build.log");
    assert!(log.contains("https://***@example.org/rpms/hostile-escape.git"));
    assert_no_secret(&log, "build.log");
    assert_no_secret(&r.stdout, "the manifest");
    assert!(log.contains("Executing(%check)"));
    assert_eq!(
        results(b),
        vec![
            ("build.check".into(), "PASSED".into()),
            ("rpmlint".into(), "INFO".into())
        ]
    );
    for marker in ["fci-escape-build", "fci-escape-check"] {
        assert_eq!(traces(marker), Vec::<String>::new(), "{marker} got out");
    }
}

#[test]
fn a_hostile_test_cannot_leave_the_test_sandbox() {
    let w = Ws::new();
    let repo = hostile_repo(&w);
    let built = run_with_secret(&w, &["build", repo.to_str().unwrap()]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let input = w.save("built.json", &built.manifest());
    let r = run_with_secret(
        &w,
        &["test", "--runner", "sti", "-m", input.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(
        results(s),
        vec![("escape-attempts".into(), "PASSED".into())]
    );
    let case_log = s["results"][0]["log"].as_str().unwrap();
    let log = std::fs::read_to_string(w.ws().join(case_log)).unwrap();
    assert!(
        log.contains(&format!("checkout: {}", repo.display())),
        "{log}"
    );
    assert_all_held(&log, "test");
    let stage_log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(stage_log.starts_with("$ "), "the stage log was rewritten");
    assert_no_secret(&log, "the test's log");
    assert_eq!(traces("fci-escape-test"), Vec::<String>::new());
}

#[test]
fn a_test_that_swaps_its_artifacts_for_a_link_reads_nothing_through_it() {
    let w = Ws::new();
    // A results file the tests cannot see: /tmp is private in the sandbox.
    let hidden = w.path().join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("test.log"), "PASS stolen\n").unwrap();
    std::fs::write(
        hidden.join("results.yml"),
        "results:\n- {test: stolen, result: pass}\n",
    )
    .unwrap();
    let tests = w.path().join("swap");
    fci::suites::runner::copy_tree(&fixture("swap-artifacts"), &tests).unwrap();
    std::fs::write(tests.join("tests/host-dir"), hidden.to_str().unwrap()).unwrap();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let r = w.test(
        &built.manifest(),
        &["--runner", "sti", "--tests-from", tests.to_str().unwrap()],
    );
    let m = r.manifest();
    let s = r.stage(&m, "test");
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    assert!(results(s).iter().all(|(n, _)| n != "stolen"), "{s:#}");
    assert!(s.to_string().contains("no longer a directory"), "{s:#}");
    assert!(s["data"]["run_files"].is_null(), "{s:#}");
}

#[test]
fn packages_the_build_did_not_make_are_never_recorded_as_its_own() {
    let w = Ws::new();
    let other = w.build("hello-atomic", &[]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let om = other.manifest();
    let foreign = om["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = w.ws().join(foreign);
    // A directory of RPMs on the host that package code cannot see (/tmp is private).
    let hidden = w.path().join("hidden-rpms");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::copy(&foreign, hidden.join(foreign.file_name().unwrap())).unwrap();
    let pkg = w.path().join("planted-rpm");
    fci::suites::runner::copy_tree(&fixture("planted-rpm"), &pkg).unwrap();
    std::fs::copy(&foreign, pkg.join("foreign.rpm")).unwrap();
    std::fs::write(pkg.join("host-dir"), hidden.to_str().unwrap()).unwrap();

    // A regular file dropped into the output: its SOURCERPM is another package's.
    let r = w.run(&[
        "build",
        pkg.to_str().unwrap(),
        "--dist",
        ".fc41",
        "-D",
        "mode copy",
    ]);
    // The package's doing: FAILED (exit 1) with a manifest, not the caller's mistake.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        b["notes"]
            .to_string()
            .contains("names source package hello-atomic"),
        "{b:#}"
    );
    assert!(
        !m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "rpm"),
        "{m:#}"
    );

    // The output directory swapped for a link: nothing is read through it.
    let r = w.run(&[
        "build",
        pkg.to_str().unwrap(),
        "--dist",
        ".fc41",
        "-D",
        "mode link",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        b["notes"]
            .to_string()
            .contains("package code replaced the build's RPMS directory"),
        "{b:#}"
    );
    let names: Vec<String> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm")
        .map(|a| a["nevra"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.contains(&"hello-atomic".to_string()),
        "{names:?}: {}",
        r.stderr
    );
}

#[test]
fn what_package_code_leaves_in_the_workspace_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    let r = w.build_fixture("hostile-escape", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Scratch holds setuid files and device nodes made as root while a run lasts.
    let mode = std::fs::metadata(w.ws().join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "tmp/ is {mode:o}");
}

#[test]
fn killing_fci_takes_its_sandboxes_with_it() {
    let w = Ws::new();
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let input = w.save("m.json", &built.manifest());
    let mut child = w
        .cmd()
        .args(["test", "-m", input.to_str().unwrap(), "--runner", "sti"])
        .args(["--tests-from", fixture("slow").to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the test inside the sandbox, then kill fci as a cancelled CI job would.
    w.wait_for_process("sleep 61", Duration::from_secs(60), "the test");
    child.kill().unwrap();
    child.wait().unwrap();
    w.wait_no_process(
        "sleep 61",
        Duration::from_secs(2),
        "a sandbox of a killed fci",
    );
}

#[test]
fn a_top_level_link_in_the_subject_layers_nothing_of_the_host() {
    let w = Ws::new();
    let built = w.build_fixture("toplink", &[]);
    assert_eq!(built.code, 0, "{}{}", built.stderr, built.stdout);
    // A base with a real /srv: the package's /srv -> /root lands on it.
    let base = w.path().join("base");
    std::fs::create_dir_all(base.join("srv")).unwrap();
    let r = w.test(
        &built.manifest(),
        &["--runner", "sti", "--base-root", base.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(
        results(r.stage(&m, "test")),
        vec![("srv-shows-no-host-root".into(), "PASSED".into())]
    );
}

#[test]
fn a_sources_file_linked_out_of_the_checkout_is_never_read() {
    let w = Ws::new();
    let secret = w.path().join("host-secret");
    std::fs::write(&secret, "TOPSECRET-LINE not a sources line\n").unwrap();
    let pkg = w.path().join("pkg");
    fci::suites::runner::copy_tree(&example("hello-broken-check"), &pkg).unwrap();
    std::os::unix::fs::symlink(&secret, pkg.join("sources")).unwrap();
    let r = w.run(&["build", pkg.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("sources: symlink points outside"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("TOPSECRET"), "{}", r.stderr);
}

#[test]
fn reading_a_checkout_runs_none_of_its_git_filters() {
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-broken-check", "f41");
    std::fs::write(repo.join(".gitattributes"), "*.txt filter=x\n").unwrap();
    std::fs::write(repo.join("a.txt"), "hi\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "filter"]);
    let marker = w.path().join("filter-ran");
    git(
        &repo,
        &[
            "config",
            "filter.x.clean",
            &format!("sh -c 'touch {}; cat'", marker.display()),
        ],
    );
    // A newer mtime makes git re-read the file (and run its clean filter) when it looks.
    std::fs::write(repo.join("a.txt"), "hi\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(repo.join("a.txt"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    let r = w.run(&["build", repo.to_str().unwrap(), "--nocheck"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!marker.exists(), "the checkout's clean filter ran");
    // The content is what was committed: not dirty.
    assert!(
        r.manifest()["subject"].get("dirty").is_none(),
        "{}",
        r.stdout
    );
}

#[test]
fn a_checkout_inside_a_larger_repository_hides_that_repositorys_git() {
    let w = Ws::new();
    let outer = w.path().join("monorepo");
    let pkg = outer.join("rpms/hostile-escape");
    fci::suites::runner::copy_tree(&fixture("hostile-escape"), &pkg).unwrap();
    // The attempts look for the outer repository's .git.
    std::fs::write(pkg.join("checkout-path"), outer.to_str().unwrap()).unwrap();
    git(&outer, &["init", "-q", "-b", "main"]);
    git(
        &outer,
        &[
            "remote",
            "add",
            "origin",
            "https://fci:gitTOKEN-42@example.org/all.git",
        ],
    );
    git(&outer, &["add", "-A"]);
    git(&outer, &["commit", "-q", "-m", "all"]);
    let r = run_with_secret(&w, &["build", pkg.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    let log = std::fs::read_to_string(w.ws().join(b["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains(&format!("checkout: {}", outer.display())),
        "{log}"
    );
    assert_all_held(&log, "%build");
    assert_no_secret(&log, "build.log");
}
