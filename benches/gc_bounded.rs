//! A workspace that stays bounded (issue 17, item 5): N runs of the example through build →
//! test → compose → report --promote (enough to make every kind of thing a run leaves: RPMs,
//! the source RPM, the repository and snapshot trees, logs, cache entries, records, an OSTree
//! commit and its candidate ref, the known-good moving; integrate, image and smoke add more of
//! the same kinds), each a new Release of the package so that nothing is reused from the
//! cache, and `fci gc --keep-runs 3 --grace 0 --ostree-depth 3` after each (`--keep-runs 1`
//! in the quick mode). Prints the size of
//! the workspace (its pipeline state and OSTree repository inside it) after each run's gc, the
//! maximum, and the stated bound. `cargo bench --bench gc_bounded`: 200 runs (FCI_GC_RUNS
//! overrides); `cargo test`: 3.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use support::Target;

/// The stated bound, in MiB: the base (about 44 MiB: its OSTree repository, with the
/// workspace's own files), the runs kept (3 by the policy, the known-good's among them, about
/// 1 MiB each with their cache entries and OSTree commits) and room for what grows slowly and
/// gc does not collect (the results store, the message journal, each subject's last gating
/// decision: about 18 KiB a run, 3.5 MiB over 200). Measured:
/// 45.1 MiB after the first run, at most 48.3 MiB over 20 runs (release build).
const BOUND_MIB: f64 = 64.0;

const GATING: &str = "--- !Policy\n\
    id: compose\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.compose.validation}\n";

fn run(c: &mut Command, what: &str) -> String {
    let out = c.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Disk use below `p` as du counts it (allocated blocks, hard links once).
fn du(p: &Path) -> u64 {
    let out = Command::new("du")
        .args(["-s", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn mib(b: u64) -> f64 {
    (b as f64 / 1048576.0 * 10.0).round() / 10.0
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fci = env!("CARGO_BIN_EXE_fci");
    let n: usize = std::env::var("FCI_GC_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| support::size(200, 3));
    // 3 runs kept; 1 in the quick mode, so that its 3 runs already show gc at work.
    let keep = support::size(3, 1).to_string();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let ws = s.join("ws");
    let fci_cmd = |args: &[&str]| {
        let mut c = Command::new(fci);
        c.arg("--workspace").arg(&ws).arg("--quiet").args(args);
        c.stdin(Stdio::null());
        c
    };
    let base = s.join("base");
    run(
        Command::new(root.join("examples/base/make-base.sh"))
            .arg("--no-kernel")
            .arg(&base),
        "make-base.sh",
    );
    run(
        &mut fci_cmd(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]),
        "fci base init",
    );
    let gating = s.join("gating.yaml");
    std::fs::write(&gating, GATING).unwrap();
    let spec_text =
        std::fs::read_to_string(root.join("examples/hello-atomic/hello-atomic.spec")).unwrap();
    let started = std::time::Instant::now();
    let mut sizes = Vec::new();
    for i in 1..=n {
        let src = s.join("change").join("hello-atomic");
        let _ = std::fs::remove_dir_all(s.join("change"));
        std::fs::create_dir_all(s.join("change")).unwrap();
        run(
            Command::new("cp")
                .arg("-a")
                .arg(root.join("examples/hello-atomic"))
                .arg(&src),
            "cp",
        );
        let spec = spec_text.replace(
            "Release:        1%{?dist}",
            &format!("Release:        {i}%{{?dist}}"),
        );
        assert!(spec != spec_text || i == 1);
        std::fs::write(src.join("hello-atomic.spec"), spec).unwrap();
        let m = |name: &str| s.join(format!("{name}.json"));
        let lookaside = root.join("examples/lookaside");
        run(
            fci_cmd(&[
                "build",
                src.to_str().unwrap(),
                "--branch",
                "f41",
                "--lookaside",
            ])
            .arg(&lookaside)
            .arg("-o")
            .arg(m("build")),
            "fci build",
        );
        for (stage, from, to) in [("test", "build", "test"), ("compose", "test", "compose")] {
            run(
                &mut fci_cmd(&[
                    stage,
                    "-m",
                    m(from).to_str().unwrap(),
                    "-o",
                    m(to).to_str().unwrap(),
                ]),
                stage,
            );
        }
        run(
            &mut fci_cmd(&[
                "report",
                "-m",
                m("compose").to_str().unwrap(),
                "--gating",
                gating.to_str().unwrap(),
                "--decision-context",
                "fci_promote",
                "--promote",
                "-o",
                m("report").to_str().unwrap(),
            ]),
            "fci report --promote",
        );
        run(
            &mut fci_cmd(&[
                "gc",
                "--keep-runs",
                "3",
                "--grace",
                "0",
                "--ostree-depth",
                "3",
            ]),
            "fci gc",
        );
        let size = du(&ws);
        sizes.push(size);
        println!(
            "run {i:>4}: workspace+state {:>8.1} MiB  ({:.0} s so far)",
            mib(size),
            started.elapsed().as_secs_f64()
        );
    }
    let max = *sizes.iter().max().unwrap();
    let first = sizes[0];
    let last = *sizes.last().unwrap();
    println!(
        "{n} runs with fci gc --keep-runs {keep} after each: max {:.1} MiB, first {:.1} MiB, last {:.1} MiB; bound <= {BOUND_MIB} MiB",
        mib(max),
        mib(first),
        mib(last)
    );
    support::record(
        "workspace+state after N runs with fci gc --keep-runs 3 after each (max)",
        mib(max),
        " MiB",
        Target::AtMost(BOUND_MIB),
        serde_json::json!({"runs": n, "keep_runs": keep, "first_mib": mib(first), "last_mib": mib(last),
                           "sizes_mib": sizes.iter().map(|b| mib(*b)).collect::<Vec<_>>()}),
    );
    assert!(
        mib(max) <= BOUND_MIB,
        "the workspace grew past the stated bound: {:.1} MiB > {BOUND_MIB} MiB",
        mib(max)
    );
    support::quick_note();
}
