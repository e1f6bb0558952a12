//! Build outcomes that mean what they say: %check verdicts, mock's host failures, the host's
//! environment in the cache key, the host's users, rpm's macro forms, warnings on failure.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The tools these tests run (mock is faked): `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, &[tool::GIT]];

fn check_result(b: &Value) -> (String, String) {
    let r = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["testcase"] == "build.check")
        .expect("a build.check result");
    (
        r["outcome"].as_str().unwrap().to_string(),
        r["note"].as_str().unwrap_or_default().to_string(),
    )
}

fn notes(b: &Value) -> String {
    b["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_compiled_out_check_is_skipped_not_passed() {
    let w = Ws::new();
    let r = w.build_fixture("check-optional", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let (outcome, note) = check_result(r.stage(&m, "build"));
    assert_eq!(outcome, "SKIPPED");
    assert!(note.contains("compiled out"), "{note}");

    // Built --with check, the same spec runs its %check.
    let r = w.build_fixture("check-optional", &["-D", "_with_check 1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(check_result(r.stage(&m, "build")).0, "PASSED");
}

#[test]
fn a_check_line_printed_by_the_package_is_not_a_check() {
    let w = Ws::new();
    let r = w.build_fixture("check-forged", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let (outcome, note) = check_result(r.stage(&m, "build"));
    assert_eq!(outcome, "SKIPPED");
    assert!(note.contains("compiled out"), "{note}");
}

#[test]
fn bad_dist_and_rawhide_flags_are_usage_errors() {
    let w = Ws::new();
    let r = w.run(&[
        "build",
        fixture("check-optional").to_str().unwrap(),
        "--dist",
        ".fc41 -D evil 1",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a dist tag"), "{}", r.stderr);
    let r = w.run(&[
        "build",
        fixture("check-optional").to_str().unwrap(),
        "--rawhide-release",
        "0",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn nocheck_skips_the_unit_tests_and_says_so() {
    let w = Ws::new();
    // hello-broken-check's %check fails; without it the build passes.
    let r = w.run(&[
        "build",
        example("hello-broken-check").to_str().unwrap(),
        "--dist",
        ".fc41",
        "--nocheck",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let (outcome, note) = check_result(r.stage(&m, "build"));
    assert_eq!(outcome, "SKIPPED");
    assert!(note.contains("--nocheck"), "{note}");
}

#[test]
fn parametric_macros_are_accepted_as_rpm_takes_them() {
    let w = Ws::new();
    let r = w.build_fixture("param-macro", &["-D", "greet(n:) hello %{-n*}"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bad = w.build_fixture("param-macro", &["-D", "greet(n: hello"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("without `)`"), "{}", bad.stderr);
}

#[test]
fn check_sees_the_hosts_users_without_regaining_capabilities() {
    let w = Ws::new();
    let r = w.build_fixture("host-users", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(check_result(r.stage(&m, "build")).0, "PASSED");
}

#[test]
fn installing_a_macro_file_on_the_host_is_a_new_input() {
    let w = Ws::new();
    let macro_file = Path::new("/etc/rpm/macros.fci-host-macro-probe");
    let _ = std::fs::remove_file(macro_file);
    let first = w.build_fixture("host-macro", &[]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    std::fs::create_dir_all("/etc/rpm").unwrap();
    std::fs::write(macro_file, "%fci_host_macro_probe yes\n").unwrap();
    let second = w.build_fixture("host-macro", &[]);
    std::fs::remove_file(macro_file).unwrap();
    assert_eq!(second.code, 0, "{}", second.stderr);
    let m = second.manifest();
    assert_eq!(second.stage(&m, "build")["cached"], false);
}

#[test]
fn unmet_buildrequires_are_named_when_the_build_fails() {
    let w = Ws::new();
    assert_eq!(
        unmet_on_host(&["coreutils"]),
        serde_json::json!(["coreutils"]),
        "this test needs an rpm database without coreutils (a Debian host)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["build", example("hello-broken-check").to_str().unwrap()])
        .args(["--dist", ".fc41"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: unmet BuildRequires on this host: coreutils"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_branch_flag_that_differs_from_the_checkout_is_reported() {
    let w = Ws::new();
    let repo = git_repo(w.path(), "hello-broken-check", "main");
    let r = w.run(&[
        "build",
        repo.to_str().unwrap(),
        "--branch",
        "f41",
        "--nocheck",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let n = notes(r.stage(&m, "build"));
    assert!(n.contains("checkout is on branch `main`"), "{n}");
    assert!(n.contains("--ref f41"), "{n}");
    // The subject names what was built; the dist follows --branch.
    assert_eq!(m["subject"]["branch"], "main");
    assert_eq!(r.stage(&m, "build")["data"]["dist"], ".fc41");
}

/// mock is not packaged for Debian, so it cannot run here. This stand-in speaks mock's
/// documented interface: `--debug-config` as the probe, and the exit codes of
/// mockbuild/exception.py (10 rpmbuild failed, 20 chroot setup failed, 1 generic).
fn fake_mock(dir: &Path, mode: &str) -> std::ffi::OsString {
    let bin = dir.join(format!("mock-{mode}"));
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
mode={mode}
case " $* " in
  *" --debug-config "*)
    if [ "$mode" = nogroup ]; then
      echo "ERROR: You are not in the mock group; add yourself with usermod -a -G mock" >&2; exit 1
    fi
    echo "config_opts['root'] = 'fedora-41-x86_64'"; exit 0 ;;
esac
case "$mode" in
  chroot) echo "ERROR: Command failed: dnf install @buildsys-build" >&2; exit 20 ;;
  buildfail) echo "ERROR: Exception(x.src.rpm) Config(fedora-41-x86_64)" >&2; exit 10 ;;
esac
exit 1
"#
    );
    let p = bin.join("mock");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

fn build_with_mock(w: &Ws, mode: &str, backend: &str) -> Run {
    let path = fake_mock(w.path(), mode);
    Run::from(
        w.cmd()
            .env("PATH", path)
            .args(["build", example("hello-atomic").to_str().unwrap()])
            .args(["--branch", "f41", "--lookaside", &lookaside()])
            .args(["--backend", backend])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_mock_that_cannot_build_here_is_an_error_and_never_cached() {
    let w = Ws::new();
    for _ in 0..2 {
        let r = build_with_mock(&w, "nogroup", "mock");
        assert_eq!(r.code, 3, "{}", r.stderr);
        let m = r.manifest();
        let b = r.stage(&m, "build");
        assert_eq!(b["outcome"], "ERROR");
        assert_eq!(b["cached"], false);
        let n = notes(b);
        assert!(n.contains("backend mock"), "{n}");
        assert!(n.contains("not in the mock group"), "{n}");
    }
    // A chroot that cannot be set up is mock's failure, not the package's.
    let r = build_with_mock(&w, "chroot", "mock");
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR");
    assert!(notes(b).contains("mock exit 20"), "{}", notes(b));
    // rpmbuild failing inside mock is the package's.
    let r = build_with_mock(&w, "buildfail", "mock");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED");
    assert_eq!(b["backend"], "mock");
    // What mock is (its capabilities), not its name, says what the record and notes hold.
    assert_eq!(b["data"]["sandbox"], "mock chroot");
    assert!(notes(b).contains("failed (backend mock)"), "{}", notes(b));
    assert!(b["data"].get("unmet_buildrequires").is_none(), "{b:#}");
}

#[test]
fn auto_passes_over_a_mock_that_cannot_build_here() {
    let w = Ws::new();
    let r = build_with_mock(&w, "nogroup", "auto");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["backend"], "rpmbuild");
    assert!(
        notes(b).contains("built with rpmbuild instead"),
        "{}",
        notes(b)
    );
}

#[test]
fn escape_sequences_in_package_output_never_reach_the_terminal() {
    let w = Ws::new();
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["build", fixture("escape-output").to_str().unwrap()])
        .args(["--dist", ".fc41"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("ESC-TEST"), "{}", r.stderr);
    assert!(
        !r.stderr.contains('\x1b') && !r.stderr.contains('\x07'),
        "{:?}",
        r.stderr
    );
}

#[test]
fn a_killed_build_says_so_and_is_never_reused() {
    let w = Ws::new();
    for _ in 0..2 {
        let r = w.build_fixture("killed-build", &[]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let m = r.manifest();
        let b = r.stage(&m, "build");
        assert_eq!(b["cached"], false);
        assert!(notes(b).contains("killed by signal 9"), "{}", notes(b));
    }
}

#[test]
fn a_build_that_lacks_a_host_tool_is_never_reused() {
    let w = Ws::new();
    for _ in 0..2 {
        let r = w.build_fixture("missing-tool", &[]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let m = r.manifest();
        assert_eq!(r.stage(&m, "build")["cached"], false);
    }
}

#[test]
fn a_build_that_breaks_its_own_spec_is_failed_not_bad_input() {
    let w = Ws::new();
    let r = w.run(&[
        "build",
        fixture("reparse-after-build").to_str().unwrap(),
        "--dist",
        ".fc41",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
}

#[test]
fn a_failed_build_names_its_cause_in_the_note_the_check_and_the_summary() {
    let w = Ws::new();
    let loud = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(w.ws())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    };
    // A failing %check: its own failure line.
    let src = example("hello-broken-check");
    let r = loud(&["build", src.to_str().unwrap(), "--branch", "f41"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    let cause = "%check failed: FAIL: greeting is wrong";
    assert_eq!(
        b["notes"].as_array().unwrap().last().unwrap(),
        cause,
        "{b:#}"
    );
    let (outcome, note) = check_result(b);
    assert_eq!(outcome, "FAILED");
    assert!(note.ends_with(": FAIL: greeting is wrong"), "{note}");
    let summary = r
        .stderr
        .lines()
        .find(|l| l.starts_with("fci: build FAILED in "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(summary.ends_with(cause), "{summary}");

    // A failing %prep: what the section printed before rpmbuild's `Bad exit status`.
    let prep = fixture("prep-fail");
    let r = loud(&["build", prep.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert!(
        notes(b).contains("rpmbuild failed: patch does not apply"),
        "{b:#}"
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("fci: build FAILED in ")
                && l.ends_with("rpmbuild failed: patch does not apply")),
        "{}",
        r.stderr
    );
}
