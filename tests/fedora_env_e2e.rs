//! fci's Fedora build environment for the rpmbuild backend, end to end: real Fedora spec
//! idioms through the real `fci` binary and Debian's rpmbuild.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD];

/// The workspace paths of the binary RPMs a build recorded.
fn binary_rpms(w: &Ws, m: &Value) -> Vec<PathBuf> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm")
        .map(|a| w.ws().join(a["path"].as_str().unwrap()))
        .collect()
}

/// What rpm itself says about a package file (`rpm -qp ARGS FILE`).
fn rpm_query(args: &[&str], rpm: &PathBuf) -> String {
    let out = Command::new("rpm")
        .arg("-qp")
        .args(args)
        .arg(rpm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rpm -qp {args:?} {}: {}",
        rpm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the build stage's log.
fn build_log(w: &Ws, r: &Run) -> String {
    let m = r.manifest();
    let log = r.stage(&m, "build")["log"].as_str().unwrap().to_string();
    std::fs::read_to_string(w.ws().join(log)).unwrap()
}

#[test]
fn a_fedora_c_library_spec_builds_with_fedoras_macros_and_compressed_man_pages() {
    let w = Ws::new();
    let r = w.build_fixture("libfoo", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b}");
    assert_eq!(
        results(b),
        vec![("build.check".to_string(), "PASSED".to_string())]
    );

    let rpms = binary_rpms(&w, &m);
    let by_name = |n: &str| {
        rpms.iter()
            .find(|p| rpm_query(&["--qf", "%{NAME}"], p) == n)
            .unwrap_or_else(|| panic!("no {n} among {rpms:?}"))
    };
    let (lib, devel) = (by_name("libfoo"), by_name("libfoo-devel"));
    let lib_files = rpm_query(&["-l"], lib);
    let devel_files = rpm_query(&["-l"], devel);
    let lib_list: Vec<&str> = lib_files.lines().collect();
    let devel_list: Vec<&str> = devel_files.lines().collect();
    // Fedora's %_libdir; man pages gzipped by the brp step, so `foo.3.*` matched.
    for f in [
        "/usr/lib64/libfoo.so.1",
        "/usr/lib64/libfoo.so.1.0",
        "/usr/bin/foo-hello",
        "/usr/share/man/man1/foo-hello.1.gz",
        "/usr/share/man/man3/foo.3.gz",
        "/usr/share/doc/libfoo/README",
        "/usr/share/licenses/libfoo/LICENSE",
    ] {
        assert!(lib_list.contains(&f), "{f} not in libfoo:\n{lib_files}");
    }
    for f in [
        "/usr/include/foo.h",
        "/usr/lib64/libfoo.so",
        "/usr/share/man/man3/foo_greeting.3.gz",
    ] {
        assert!(
            devel_list.contains(&f),
            "{f} not in libfoo-devel:\n{devel_files}"
        );
    }
    // The %exclude kept the overview page in the library package only.
    assert!(!devel_list.contains(&"/usr/share/man/man3/foo.3.gz"));
    for f in lib_list.iter().chain(&devel_list) {
        if f.starts_with("/usr/share/man/man") && f.matches('/').count() == 5 {
            assert!(f.ends_with(".gz"), "uncompressed man page {f}");
        }
        // `rm -f %{buildroot}%{_libdir}/*.{l,}a` ran under bash.
        assert!(
            !f.ends_with(".a") && !f.ends_with(".la"),
            "{f} was packaged"
        );
    }
    // As on Fedora since glibc's file triggers: %ldconfig_scriptlets adds no scriptlet.
    assert_eq!(rpm_query(&["--scripts"], lib).trim(), "");

    // The link line got Fedora-style flags, not the text of %{__global_ldflags}.
    let log = build_log(&w, &r);
    let link = log
        .lines()
        .find(|l| l.starts_with("gcc ") && l.contains("-shared"))
        .unwrap_or_else(|| panic!("no link line in the log:\n{log}"));
    assert!(
        link.contains("-Wl,-z,relro") && link.contains("-Wl,-z,now"),
        "{link}"
    );
    assert!(link.contains("-D_FORTIFY_SOURCE=3"), "{link}");
    for l in log.lines().filter(|l| l.starts_with("gcc ")) {
        assert!(
            !l.contains('%'),
            "a macro reached the compiler unexpanded: {l}"
        );
    }
}

#[test]
fn an_undefined_macro_in_the_real_build_log_is_named_by_diagnose() {
    let w = Ws::new();
    let r = w.build_fixture("undefined-macro", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "FAILED");
    let log = build_log(&w, &r);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&log).as_deref(),
        Some(
            "the build used `%cargo_build`, which is not defined here (a macro from a package \
             the host lacks)"
        ),
        "{log}"
    );
}

#[test]
fn a_missing_program_in_the_real_build_log_is_named_by_diagnose() {
    let w = Ws::new();
    let r = w.build_fixture("missing-tool", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let log = build_log(&w, &r);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&log).as_deref(),
        Some(
            "the build needs `fci-absent-generator`, which is not installed on this host (an \
             environment failure, not the package's)"
        ),
        "{log}"
    );
    // A package that builds says nothing of the kind.
    let good = w.build_fixture("libfoo", &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert_eq!(
        fci::stages::build::fedora_env::diagnose(&build_log(&w, &good)),
        None
    );
}

#[test]
fn an_undefined_macro_fails_the_build_with_a_note_that_says_so() {
    let w = Ws::new();
    let r = w.build_fixture("undefined-macro", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED");
    let notes = b["notes"].to_string();
    assert!(
        notes.contains(
            "the build used `%cargo_build`, which is not defined here (a macro from a package \
             the host lacks)"
        ),
        "{b}"
    );
}
