//! Issue 16 item 3: `fci integrate` runs each test command with the composed tree as its root,
//! not layered over the host: a library or program the tree lacks fails there, as it would at
//! boot, while the runner (ansible-playbook, tmt) stays on the host's view.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, tool::BASE, tool::COMPOSE];

/// Built (with `build`), composed onto the example base without a kernel: the manifest's file.
fn composed(w: &Ws, built: Run) -> PathBuf {
    init_base_with(w, &["--no-kernel"], None, |_| {});
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "--branch", "f41", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    w.save("composed.json", &c.manifest())
}

fn integrate(w: &Ws, manifest: &Path, tests: &Path, runner: &str) -> Run {
    w.run(&[
        "integrate",
        "--tests",
        tests.to_str().unwrap(),
        "--runner",
        runner,
        "-m",
        manifest.to_str().unwrap(),
    ])
}

/// The text of a case's stored log.
fn log_of(w: &Ws, case: &Value) -> String {
    let rel = case["log"]
        .as_str()
        .unwrap_or_else(|| panic!("no log: {case:#}"));
    std::fs::read_to_string(w.ws().join(rel)).unwrap()
}

/// An STI suite of `name: command` tests, in the scratch area.
fn suite(w: &Ws, name: &str, tests: &[(&str, &str)]) -> PathBuf {
    let dir = w.path().join(name);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let mut yml = String::from(
        "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    tests:\n",
    );
    for (n, cmd) in tests {
        // A YAML single-quoted scalar: only its quote is doubled.
        yml.push_str(&format!(
            "    - {n}:\n        run: '{}'\n",
            cmd.replace('\'', "''")
        ));
    }
    std::fs::write(dir.join("tests/tests.yml"), yml).unwrap();
    dir
}

#[test]
fn a_program_whose_library_only_the_host_has_passes_test_and_fails_integrate() {
    // The fixture's program links libacl.so.1, which the host has and the base does not.
    assert!(
        Path::new("/usr/lib/x86_64-linux-gnu/libacl.so.1").exists(),
        "the host lacks libacl.so.1 (apt-get install -y libacl1): this test proves nothing"
    );
    let w = Ws::new();
    let built = w.build_fixture("host-lib-only", &["--branch", "f41"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // fci test layers the package over the host: the host's libacl stands in, it passes.
    let t = w.test(&built.manifest(), &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let m = t.manifest();
    let s = t.stage(&m, "test");
    assert_eq!(
        results(s),
        vec![
            ("program-runs".to_string(), "PASSED".to_string()),
            ("/tests/program-runs".to_string(), "PASSED".to_string()),
        ],
        "{s:#}"
    );
    let manifest = composed(&w, t);
    let fixture = fixture("host-lib-only");

    // integrate runs the same command in the composed tree, where the loader finds no libacl.
    let r = integrate(&w, &manifest, &fixture, "sti");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    assert_eq!(s["data"]["guest_root"], true, "{s:#}");
    let c = case(s, "program-runs");
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    let missing = "libacl.so.1: cannot open shared object file";
    assert!(c["note"].as_str().unwrap().contains(missing), "{c:#}");
    let log = log_of(&w, c);
    assert!(log.contains(missing), "{log}");
    assert!(log.starts_with("$ /usr/bin/acl-probe\n"), "{log}");
    assert!(log.ends_with("# exit status 127\n"), "{log}");

    // tmt's tests run in the tree too (fci's tmt plugin). tmt would judge the loader's exit
    // status 127 an `error` (ERROR: the host's); in the tree it is what the tree lacks, the
    // change's failure: FAILED, the loader's message in its log.
    let r = integrate(&w, &manifest, &fixture, "tmt");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    let c = case(s, "/tests/program-runs");
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    assert!(c["note"].as_str().unwrap().contains(missing), "{c:#}");
    assert!(log_of(&w, c).contains(missing));
}

#[test]
fn a_library_packages_program_runs_in_integrate_from_the_library_it_ships() {
    // Not on the host: what foo-hello loads can only be the tree's.
    for d in [
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
    ] {
        assert!(
            !Path::new(d).join("libfoo.so.1").exists(),
            "the host has {d}/libfoo.so.1"
        );
    }
    let w = Ws::new();
    let manifest = composed(&w, w.build_fixture("libfoo", &["--branch", "f41"]));
    // No search path given: the base's ld.so.conf names /usr/lib64 and compose rebuilt the
    // loader cache with the library in it, as the guest's loader finds it at boot.
    let tests = suite(
        &w,
        "libfoo-suite",
        &[
            (
                "program-runs",
                "/usr/bin/foo-hello | grep -q \"hello from libfoo\"",
            ),
            (
                "loads-the-trees-library",
                "LD_TRACE_LOADED_OBJECTS=1 /usr/bin/foo-hello | grep \"libfoo.so.1 => /usr/lib64/libfoo.so.1\"",
            ),
        ],
    );
    let r = integrate(&w, &manifest, &tests, "sti");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    let mut got = results(s);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("loads-the-trees-library".to_string(), "PASSED".to_string()),
            ("program-runs".to_string(), "PASSED".to_string()),
        ]
    );
}

#[test]
fn the_guest_root_is_the_tree_alone_read_only_and_still_sandboxed() {
    let w = Ws::new();
    let manifest = composed(&w, w.build("hello-atomic", &[]));
    // Each check names the program it relies on, so that a missing one cannot pass as a
    // refusal.
    let tests = suite(
        &w,
        "guest-suite",
        &[
            // The tree's files, its /etc (usr/etc), and nothing of the host's.
            ("etc-is-the-trees", "grep -q '^ID=fci-base' /etc/os-release"),
            (
                "host-files-absent",
                "test ! -e /usr/lib/x86_64-linux-gnu/libacl.so.1 && test ! -e /etc/shadow && test ! -e /usr/bin/ansible-playbook && test ! -e /usr/bin/ostree",
            ),
            ("program-runs", "/usr/bin/hello-atomic | grep -q 'Hello, atomic host'"),
            // Read-only: the tree, the guest's root, the kernel's knobs.
            (
                "tree-read-only",
                "test -x /usr/bin/touch && ! touch /usr/fci-probe 2>/dev/null && ! touch /fci-probe 2>/dev/null",
            ),
            (
                "proc-knobs-read-only",
                "test -e /proc/sys/kernel/core_pattern && ! sh -c 'echo x > /proc/sys/kernel/core_pattern' 2>/dev/null",
            ),
            // Writable: the run's own directories and scratch.
            (
                "artifacts-writable",
                "echo from-the-guest > \"$TEST_ARTIFACTS/guest-wrote\" && grep -q from-the-guest \"$TEST_ARTIFACTS/guest-wrote\" && touch ./here",
            ),
            ("tmp-writable", "echo x > /tmp/x && test -s /tmp/x"),
            // No capability but chroot's, no network.
            (
                "no-mount",
                "test -x /usr/bin/mount && ! mount -t tmpfs none /mnt 2>/dev/null",
            ),
            (
                "no-network",
                "test -x /usr/bin/wget && ! wget -q -T 3 -O /dev/null http://1.1.1.1/ 2>/dev/null",
            ),
        ],
    );
    let r = integrate(&w, &manifest, &tests, "sti");
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(r.code, 0, "{}\n{s:#}", r.stderr);
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(results(s).len(), 9, "{s:#}");
}

#[test]
fn the_runner_never_loads_the_trees_python_files() {
    let w = Ws::new();
    let hostile = repo_root().join("tests/hostile/pth-in-tree");
    let built = w.run(&[
        "build",
        hostile.to_str().unwrap(),
        "--dist",
        ".fc41",
        "--branch",
        "f41",
    ]);
    let manifest = composed(&w, built);
    // The tests see the package's file (in the tree); ansible-playbook, on the host's view,
    // never reads it: were it loaded, Python would exit 97 and no test would run.
    let tests = suite(
        &w,
        "pth-suite",
        &[(
            "file-in-tree",
            "grep -q '^import os' /usr/lib/python3/dist-packages/zz-fci-hostile.pth",
        )],
    );
    let r = integrate(&w, &manifest, &tests, "sti");
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(r.code, 0, "{}\n{s:#}", r.stderr);
    assert_eq!(
        results(s),
        vec![("file-in-tree".to_string(), "PASSED".to_string())],
        "{s:#}"
    );
}

#[test]
fn the_roles_ask_the_trees_rpm_database_and_look_for_beakerlib_in_the_tree() {
    let w = Ws::new();
    let manifest = composed(&w, w.build("hello-atomic", &[]));
    let write = |name: &str, yml: &str| {
        let dir = w.path().join(name);
        std::fs::create_dir_all(dir.join("tests/bl")).unwrap();
        std::fs::write(dir.join("tests/tests.yml"), yml).unwrap();
        std::fs::write(dir.join("tests/bl/runtest.sh"), "rlJournalStart\n").unwrap();
        dir
    };
    // hello-atomic is in the tree's database only (not the host's): the role finds it there.
    let required = write(
        "required",
        "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    required_packages: [hello-atomic]\n    tests:\n    - runs:\n        run: /usr/bin/hello-atomic\n",
    );
    let r = integrate(&w, &manifest, &required, "sti");
    let m = r.manifest();
    let s = r.stage(&m, "integrate");
    assert_eq!(r.code, 0, "{}\n{s:#}", r.stderr);
    assert_eq!(results(s), vec![("runs".to_string(), "PASSED".to_string())]);
    // The example base has no beakerlib: the role says so (the host's would not do).
    let bl = write(
        "beakerlib",
        "- hosts: localhost\n  roles:\n  - role: standard-test-beakerlib\n    tags: [classic]\n    tests: [bl]\n",
    );
    let r = integrate(&w, &manifest, &bl, "sti");
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "integrate").to_string();
    assert!(s.contains("beakerlib is not installed"), "{s}");
    assert!(s.contains("composed tree"), "{s}");
}
