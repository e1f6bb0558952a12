//! Issue 16's acceptance: packages in Fedora's idioms, each through the whole chain as a
//! packager's change would go (build, test, compose onto the example base made of packages,
//! integrate inside the composed tree, image, smoke in a booted guest), and the chain's
//! failures each FAILED with the reason.

mod common;
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
];

/// An integration suite (STI) whose one test runs `check` in the composed tree.
fn suite(w: &Ws, name: &str, check: &str) -> PathBuf {
    let dir = w.path().join(format!("suite-{name}"));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let yml = format!(
        "---\n- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    tests:\n    - program-runs:\n        run: {}\n",
        serde_json::to_string(check).unwrap()
    );
    std::fs::write(dir.join("tests/tests.yml"), yml).unwrap();
    dir
}

fn stage_of(r: &Run, name: &str) -> Value {
    let m = r.manifest();
    r.stage(&m, name).clone()
}

fn step(w: &Ws, manifest: &Path, args: &[&str]) -> (Run, PathBuf) {
    let mut all = vec![args[0], "-m", manifest.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let r = w.run(&all);
    let saved = w.save(
        &format!("{}-{}.json", args[0], uuid::Uuid::new_v4()),
        &r.manifest(),
    );
    (r, saved)
}

fn passed(r: &Run, stage: &str) {
    let s = stage_of(r, stage);
    assert_eq!(r.code, 0, "{stage}: {}\n{s:#}", r.stderr);
    assert_eq!(s["outcome"], "PASSED", "{stage}: {s:#}");
}

/// `fixture` built, tested with its own tests, composed onto the known-good base, its
/// program run by `check` inside the composed tree and in the booted guest.
fn whole_chain(fixture: &str, check: &str) {
    let w = Ws::new();
    let built = w.build_fixture(fixture, &["--branch", "f41"]);
    chain_from(&w, fixture, built, check);
}

/// The chain after the build: `built` tested, composed, integrated, imaged and booted.
fn chain_from(w: &Ws, name: &str, built: Run, check: &str) {
    init_base_with(w, &[], None, |_| {});
    assert_eq!(built.code, 0, "build: {}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let (r, t) = step(w, &b, &["test"]);
    passed(&r, "test");
    let (r, c) = step(w, &t, &["compose"]);
    passed(&r, "compose");
    let tests = suite(w, name, check);
    let (r, i) = step(w, &c, &["integrate", "--tests", tests.to_str().unwrap()]);
    passed(&r, "integrate");
    let (r, img) = step(w, &i, &["image", "--interval", "0"]);
    passed(&r, "image");
    let (r, _) = step(w, &img, &["smoke", "--check", check]);
    passed(&r, "smoke");
    w.assert_no_process("", "a qemu of this workspace");
}

/// A library in %_libdir with its -devel: the program runs from the library the package
/// ships (in /usr/lib64, which the base's loader searches), in the tree and at boot.
#[test]
fn a_library_and_its_program_run_from_the_library_it_ships() {
    whole_chain(
        "libfoo",
        "foo-hello | grep -qx 'hello from libfoo (version 1)' && LD_TRACE_LOADED_OBJECTS=1 /usr/bin/foo-hello | grep -q '/usr/lib64/libfoo.so.1'",
    );
}

/// A library the composed tree lacks (loaded with dlopen, so no Requires names it): the
/// package's own tests pass on the build host, which has it; integrate, inside the tree, fails
/// as the booted guest does, both naming the library.
#[test]
fn integrate_fails_where_smoke_would() {
    let w = Ws::new();
    init_base_with(&w, &[], None, |_| {});
    let built = w.build_fixture("acl-probe", &["--branch", "f41"]);
    assert_eq!(built.code, 0, "build: {}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let (r, t) = step(&w, &b, &["test"]);
    passed(&r, "test");
    let (r, c) = step(&w, &t, &["compose"]);
    passed(&r, "compose");
    let tests = suite(&w, "acl", "acl-probe");
    let (r, _) = step(&w, &c, &["integrate", "--tests", tests.to_str().unwrap()]);
    assert_eq!(r.code, 1, "integrate: {}", r.stderr);
    let s = stage_of(&r, "integrate");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    let case = case(&s, "program-runs");
    assert_eq!(case["outcome"], "FAILED", "{s:#}");
    assert!(
        case["note"].as_str().unwrap().contains("libacl.so.1"),
        "{case:#}"
    );
    let (r, img) = step(&w, &c, &["image", "--interval", "0"]);
    passed(&r, "image");
    let (r, _) = step(&w, &img, &["smoke", "--check", "acl-probe"]);
    assert_eq!(r.code, 1, "smoke: {}", r.stderr);
    let s = stage_of(&r, "smoke");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    let log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("libacl.so.1"), "{log}");
    w.assert_no_process("", "a qemu of this workspace");
}

/// An update of a package of the base (its sed, busybox's applet, Version 0): replaced as
/// rpm -U replaces it, the new program runs in the tree and in the guest, whose rpm database
/// knows the new version. (By path: busybox's shell runs its own applets, `sed` and `rpm`,
/// for a bare name.)
#[test]
fn an_update_of_a_base_package_runs_in_the_tree_and_the_guest() {
    whole_chain(
        "compose-sed-update",
        "/usr/bin/sed --version | grep -qx 'sed (fci fixture) 4.9' && echo abc | /usr/bin/sed s/b/x/ | grep -qx axc && /usr/bin/rpm -q --dbpath /usr/lib/sysimage/rpm sed | grep -q '^sed-4.9-1'",
    );
}

/// A systemd service in Fedora's idioms: its %pre made its user (shadow-utils' useradd, in
/// the tree), its %post ran systemctl preset, and the daemon runs.
#[test]
fn a_systemd_service_gets_its_user_and_runs() {
    whole_chain(
        "systemd-service",
        "greetd fci | grep -qx 'greetd: hello, fci' && getent passwd greetd && test -f /usr/lib/systemd/system/greetd.service",
    );
}

/// A Python package built with %pyproject_*: its script runs on the base's Python, which
/// finds the module in Fedora's site-packages.
#[test]
fn a_python_package_runs_on_the_bases_python() {
    whole_chain(
        "python-pyproject",
        "fcigreet | grep -qx 'hello from fcigreet' && test -d /usr/lib/python3*/site-packages/fcigreet-1.0.dist-info",
    );
}

/// CMake and Meson projects built with %cmake and %meson.
#[test]
fn cmake_and_meson_projects_run() {
    whole_chain("cmake-project", "greet-cmake | grep -qx 'hello from cmake'");
    whole_chain("meson-project", "greet-meson | grep -qx 'hello from meson'");
}

/// %autorelease from a dist-git history of two commits: the release rpmautospec computes
/// (2) is the one built, composed and booted.
#[test]
fn an_autoreleased_package_carries_rpmautospecs_release_to_the_guest() {
    let w = Ws::new();
    let repo = w.path().join("autospec");
    std::fs::create_dir_all(repo.join("tests")).unwrap();
    std::fs::copy(
        fixture("autospec").join("autospec.spec"),
        repo.join("autospec.spec"),
    )
    .unwrap();
    std::fs::write(
        repo.join("tests/tests.yml"),
        "---\n- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    required_packages: [autospec]\n    tests:\n    - installed:\n        run: \"test -e /usr/share/autospec/fedora-41\"\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(&repo, &["add", "-A"]);
    let commit = |msg: &str| {
        git(
            &repo,
            &[
                "-c",
                "user.name=Alice",
                "-c",
                "user.email=alice@example.org",
                "commit",
                "-q",
                "--allow-empty",
                "-am",
                msg,
            ],
        )
    };
    commit("Initial import");
    commit("Rebuild");
    let calculated = std::process::Command::new("rpmautospec")
        .args(["calculate-release"])
        .arg(&repo)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&calculated.stdout);
    assert!(
        said.contains(": 2"),
        "rpmautospec calculate-release: {said}"
    );
    let built = w.run(&[
        "build",
        repo.to_str().unwrap(),
        "--dist",
        ".fc41",
        "--branch",
        "f41",
    ]);
    let m = built.manifest();
    let nevras: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        nevras.iter().any(|n| n.starts_with("autospec-2.0-2.fc41")),
        "{nevras:?}"
    );
    chain_from(
        &w,
        "autospec",
        built,
        "/usr/bin/rpm -q --dbpath /usr/lib/sysimage/rpm autospec | grep -qx 'autospec-2.0-2.fc41.noarch'",
    );
}
