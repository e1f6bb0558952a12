//! standard-test-beakerlib end to end: a package whose dist-git tests are beakerlib tests, as
//! many Fedora packages have, through the real fci binary, ansible-playbook and bubblewrap.
//!
//! beakerlib is packaged for Fedora and EPEL but not for Debian, where fci is developed: there
//! the role must stop with an environment error that says how to get beakerlib. The tests
//! never fake a beakerlib; where one is really installed, the test must pass instead.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, &[tool::ANSIBLE]];

const BEAKERLIB: &str = "/usr/share/beakerlib/beakerlib.sh";

fn results_of(stage: &Value) -> &Vec<Value> {
    stage["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {stage:#}"))
}

#[test]
fn beakerlib_tests_run_or_say_how_to_get_beakerlib() {
    let w = Ws::new();
    let b = w.build_fixture("beakerlib-pkg", &[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let m = b.manifest();
    let input = w.save("built.json", &m);

    // Not --quiet: the summary on stderr is part of what is checked.
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(w.ws())
        .args(["test", "--runner", "sti", "-m"])
        .arg(&input)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Run::from(out);
    assert!(
        !r.stderr.contains("not found"),
        "the role must be found: {}",
        r.stderr
    );
    let m = r.manifest();
    let stage = r.stage(&m, "test");
    let results = results_of(stage);
    assert!(
        results
            .iter()
            .all(|c| !c["note"].as_str().unwrap_or("").contains("not found")),
        "{stage:#}"
    );

    if Path::new(BEAKERLIB).exists() {
        // Untested on fci's Debian development host (no beakerlib there).
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(stage["outcome"], "PASSED", "{stage:#}");
        assert!(
            results
                .iter()
                .any(|c| c["testcase"] == "smoke" && c["outcome"] == "PASSED"),
            "{stage:#}"
        );
        return;
    }

    // An environment failure (exit 3, ERROR), not a package failure.
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(stage["outcome"], "ERROR", "{stage:#}");
    assert_eq!(results.len(), 1, "{stage:#}");
    let broke = &results[0];
    assert_eq!(broke["testcase"], "tests/tests.yml", "{stage:#}");
    assert_eq!(broke["outcome"], "ERROR");
    assert_eq!(broke["scope"], "run");
    let note = broke["note"].as_str().unwrap();
    for needed in [
        "beakerlib is not installed",
        BEAKERLIB,
        "`beakerlib` package",
        "EPEL",
        "https://github.com/beakerlib/beakerlib",
        "make install",
    ] {
        assert!(note.contains(needed), "note lacks {needed:?}: {note}");
    }
    // The summary on stderr carries the same explanation.
    assert!(r.stderr.contains("fci: test ERROR"), "{}", r.stderr);
    assert!(
        r.stderr.contains("beakerlib is not installed")
            && r.stderr.contains("https://github.com/beakerlib/beakerlib"),
        "{}",
        r.stderr
    );
    // No test ran, so none can be counted as a pass or a fail of the package.
    assert!(!results.iter().any(|c| c["testcase"] == "smoke"));
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}
