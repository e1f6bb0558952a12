//! 10,000 results reported to a ResultsDB (the tests' stand-in, speaking its HTTP API on
//! loopback) through `fci report --resultsdb-url`: with bounded concurrency (the default, 8)
//! against one at a time. Prints results per second and the ratio, from one run (target:
//! at least 500 results/s). Run: `cargo bench --bench report_resultsdb`.

mod support;

#[path = "../tests/common/resultsdb.rs"]
#[allow(dead_code)]
mod resultsdb;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const OUTCOMES: [&str; 7] = [
    "PASSED",
    "INFO",
    "FAILED",
    "NEEDS_INSPECTION",
    "CRASHED",
    "QUEUED",
    "RUNNING",
];

fn fci(ws: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fci"));
    c.arg("--workspace").arg(ws).arg("--quiet");
    c
}

/// A built manifest plus a test stage: with the build record and its cases, `results`.
fn manifest(ws: &Path, root: &Path, results: usize) -> Value {
    let out = fci(ws)
        .arg("build")
        .arg(root.join("examples/hello-atomic"))
        .args(["--branch", "f41", "--lookaside"])
        .arg(root.join("examples/lookaside"))
        // Only the setup, not what is measured: a scratch limit the machine's free space can
        // hold (fci refuses to start a build whose package code could fill more).
        .args(["--max-scratch", "1G"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "fci build failed");
    let mut m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut test = m["stages"][0].clone();
    test["name"] = json!("test");
    // Two stage results (build, test) and the build's own cases (%check, rpmlint).
    let build_cases = m["stages"][0]["results"].as_array().map_or(0, Vec::len);
    test["results"] = Value::Array(
        (0..results - 2 - build_cases)
            .map(|i| json!({"testcase": format!("case-{i}"), "outcome": if i % 10 == 0 { "FAILED" } else { "PASSED" }, "runner": "tmt"}))
            .collect(),
    );
    m["stages"].as_array_mut().unwrap().push(test);
    // A run this workspace keeps no records of (the test stage above is made up): reported as
    // the manifest says, which is what is measured here (a recorded run's made-up stage would
    // be refused).
    m["run"]["id"] = json!("bench-run-without-records");
    m
}

fn run(jobs: &str, root: &Path, results: usize) -> f64 {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ws = dir.path().join("ws");
    let server = resultsdb::StandIn::start(&OUTCOMES);
    let m = manifest(&ws, root, results);
    let p = dir.path().join("m.json");
    std::fs::write(&p, m.to_string()).unwrap();
    let t = Instant::now();
    let out = fci(&ws)
        .args(["report", "-m"])
        .arg(&p)
        .args([
            "--resultsdb-url",
            &server.url(),
            "--resultsdb-jobs",
            jobs,
            "-o",
            "/dev/null",
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "fci report failed");
    let got = server.results().len();
    assert_eq!(got, results, "every result delivered once");
    results as f64 / secs
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = support::size(10_000, 200);
    let one = run("1", root, results);
    let many = run("8", root, results);
    println!(
        "{results} results to ResultsDB: {many:.0} results/s with 8 at a time, {one:.0} results/s one at a time: {:.2}x (target >= 500 results/s)",
        many / one
    );
    support::record(
        "results/s to ResultsDB, 8 at a time",
        many,
        " results/s",
        support::Target::AtLeast(500.0),
        serde_json::json!({"results": results, "one_at_a_time_per_s": one.round()}),
    );
    support::record(
        "8 at a time / one at a time",
        many / one,
        "x",
        support::Target::None,
        serde_json::json!({"results": results}),
    );
    support::quick_note();
}
