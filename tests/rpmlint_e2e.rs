//! rpmlint as a test case of `fci build`: INFO unless the package's gating.yaml requires it,
//! the package's `*.rpmlintrc` filters heeded, a host without rpmlint told apart.

mod common;
use common::*;
use serde_json::Value;

const NEEDS: Needs = &[tool::BUILD];

/// A gating.yaml that requires the build's rpmlint case, as a packager writes it.
const REQUIRES_RPMLINT: &str = "--- !Policy\nproduct_versions: [fedora-*]\ndecision_contexts: [bodhi_update_push_stable]\nsubject_type: koji_build\nrules:\n  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.rpmlint}\n";

fn package(w: &Ws) -> std::path::PathBuf {
    let dir = w.path().join("lint-error");
    fci::suites::runner::copy_tree(&fixture("lint-error"), &dir).unwrap();
    dir
}

fn build(w: &Ws, dir: &std::path::Path) -> Run {
    w.run(&["build", dir.to_str().unwrap(), "--dist", ".fc41"])
}

fn log_of(w: &Ws, m: &Value, case_: &Value) -> String {
    let path = case_["log"].as_str().expect("the rpmlint case has a log");
    assert!(
        m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["path"] == path && a["type"] == "log"),
        "the log is an artifact"
    );
    std::fs::read_to_string(w.ws().join(path)).unwrap()
}

#[test]
fn rpmlint_errors_are_information_unless_the_gate_requires_rpmlint() {
    let w = Ws::new();
    let dir = package(&w);

    // Not required: INFO, with its findings, and the build's verdict is its own.
    let r = build(&w, &dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b:#}");
    let lint = case(b, "rpmlint");
    assert_eq!(lint["outcome"], "INFO", "{lint:#}");
    assert!(
        lint["note"].as_str().unwrap().starts_with("1 errors"),
        "{lint:#}"
    );
    let log = log_of(&w, &m, lint);
    assert!(log.contains("E: explicit-lib-dependency libattr"), "{log}");
    // fci's Fedora configuration: no complaint about what Koji and Fedora never set.
    for filtered in ["no-signature", "no-packager-tag", "no-group-tag"] {
        assert!(!log.contains(filtered), "{filtered} in {log}");
    }
    // Its ResultsDB name is the one a gating.yaml requires (INFO counts as passed there,
    // which is why a required rpmlint is never left INFO).
    let gate = w.path().join("requires-rpmlint.yaml");
    std::fs::write(&gate, REQUIRES_RPMLINT).unwrap();
    let rep = w.run(&[
        "report",
        "-m",
        w.save("b.json", &m).to_str().unwrap(),
        "--gating",
        gate.to_str().unwrap(),
        "--decision-context",
        "bodhi_update_push_stable",
        "--product-version",
        "fedora-41",
    ]);
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    let reported = rep.manifest();
    let decision = &rep.stage(&reported, "report")["data"]["decision"];
    assert_eq!(
        decision["satisfied_requirements"][0]["testcase"], "fedora-ci.koji-build.build.rpmlint",
        "{decision:#}"
    );

    // Required by the package's gating.yaml: its error fails the case and the build.
    std::fs::write(dir.join("gating.yaml"), REQUIRES_RPMLINT).unwrap();
    let r = build(&w, &dir);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert_eq!(case(b, "rpmlint")["outcome"], "FAILED");
    let notes = b["notes"].to_string();
    assert!(
        notes.contains("explicit-lib-dependency libattr") && notes.contains("gating.yaml"),
        "{notes}"
    );
    // The packages were built: the verdict is rpmlint's, said as such.
    assert!(m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "rpm"));

    // The package's own filters (`<name>.rpmlintrc` in dist-git) are heeded.
    std::fs::write(
        dir.join("lint-error.rpmlintrc"),
        "addFilter(\"explicit-lib-dependency libattr\")\n",
    )
    .unwrap();
    let r = build(&w, &dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b:#}");
    let lint = case(b, "rpmlint");
    assert_eq!(lint["outcome"], "PASSED", "{lint:#}");
    assert!(!log_of(&w, &m, lint).contains("E: explicit-lib-dependency"));

    // Review X: a filter that is not a regular expression breaks rpmlint: the package's
    // file, FAILED when the gate requires rpmlint (INFO, saying so, when it does not), never
    // the host's ERROR.
    std::fs::write(
        dir.join("lint-error.rpmlintrc"),
        "addFilter(\"explicit-lib-dependency(\")\n",
    )
    .unwrap();
    let r = build(&w, &dir);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    let lint = case(b, "rpmlint");
    assert_eq!(lint["outcome"], "FAILED", "{lint:#}");
    assert!(
        lint["note"]
            .as_str()
            .unwrap()
            .contains("lint-error.rpmlintrc makes rpmlint fail"),
        "{lint:#}"
    );
    std::fs::remove_file(dir.join("gating.yaml")).unwrap();
    let r = build(&w, &dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let lint = case(r.stage(&m, "build"), "rpmlint");
    assert_eq!(lint["outcome"], "INFO", "{lint:#}");
}

#[test]
fn a_host_without_rpmlint_is_a_note_or_an_error_when_the_gate_requires_it() {
    let w = Ws::new();
    let dir = package(&w);
    let path = path_without(w.path(), &["rpmlint"]);
    let build = || {
        let out = w
            .cmd()
            .env("PATH", &path)
            .args(["build", dir.to_str().unwrap(), "--dist", ".fc41"])
            .output()
            .unwrap();
        Run::from(out)
    };
    let r = build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b:#}");
    assert!(
        !b["results"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["testcase"] == "rpmlint")),
        "{b:#}"
    );
    let notes = b["notes"].to_string();
    assert!(
        notes.contains("rpmlint not found") && notes.contains("apt-get install -y rpmlint"),
        "{notes}"
    );
    assert!(notes.contains("environment failure"), "{notes}");

    std::fs::write(dir.join("gating.yaml"), REQUIRES_RPMLINT).unwrap();
    let r = build();
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR", "{b:#}");
    let lint = case(b, "rpmlint");
    assert_eq!(lint["outcome"], "ERROR");
    assert!(
        lint["note"].as_str().unwrap().contains("requires rpmlint"),
        "{lint:#}"
    );
}
