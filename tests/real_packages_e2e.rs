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
    init_base_with(&w, &[], None, |_| {});
    let built = w.build_fixture(fixture, &["--branch", "f41"]);
    assert_eq!(built.code, 0, "build: {}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let (r, t) = step(&w, &b, &["test"]);
    passed(&r, "test");
    let (r, c) = step(&w, &t, &["compose"]);
    passed(&r, "compose");
    let tests = suite(&w, fixture, check);
    let (r, i) = step(&w, &c, &["integrate", "--tests", tests.to_str().unwrap()]);
    passed(&r, "integrate");
    let (r, img) = step(&w, &i, &["image", "--interval", "0"]);
    passed(&r, "image");
    let (r, _) = step(&w, &img, &["smoke", "--check", check]);
    passed(&r, "smoke");
    w.assert_no_process("", "a qemu of this workspace");
}

/// A library in %_libdir with its -devel: the program runs from the library the package
/// ships (in /usr/lib64, which the base's loader searches), in the tree and at boot.
#[test]
fn a_library_and_its_program_run_from_the_library_it_ships() {
    whole_chain(
        "libfoo",
        "foo-hello | grep -qx 'hello from libfoo (version 1)' && ldd /usr/bin/foo-hello | grep -q '/usr/lib64/libfoo.so.1'",
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
