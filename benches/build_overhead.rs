//! `fci build` against plain `rpmbuild -ba` on the same spec, and a cached rerun against the
//! first run. Prints ratios measured in this run (median of several). Run: `cargo bench`.

mod support;

use std::path::Path;
use std::process::Command;
use support::{median, ms, time, Target};

fn check(st: std::process::ExitStatus, what: &str) {
    assert!(st.success(), "{what} failed");
}

fn main() {
    let runs = support::runs(7);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fci = env!("CARGO_BIN_EXE_fci");
    let example = root.join("examples/hello-atomic");
    let lookaside = root.join("examples/lookaside");
    let scratch = tempfile::tempdir().unwrap();
    let sources = scratch.path().join("SOURCES");
    std::fs::create_dir_all(&sources).unwrap();
    for f in
        std::fs::read_dir(lookaside.join("hello-atomic/hello-atomic-1.0.tar.gz/sha512")).unwrap()
    {
        std::fs::copy(
            f.unwrap().path().join("hello-atomic-1.0.tar.gz"),
            sources.join("hello-atomic-1.0.tar.gz"),
        )
        .unwrap();
    }

    let raw = |i: usize| {
        let top = scratch.path().join(format!("raw-{i}"));
        let st = Command::new("rpmbuild")
            .args(["-ba", "--nodeps", "--quiet"])
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_sourcedir {}", sources.display()))
            .args(["--define", "dist .fc41"])
            .arg(example.join("hello-atomic.spec"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        check(st, "rpmbuild -ba");
    };
    let fci_build = |ws: &Path, extra: &[&str]| {
        let st = Command::new(fci)
            .arg("--workspace")
            .arg(ws)
            .args(["--quiet", "build"])
            .arg(&example)
            .args(["--branch", "f41", "--lookaside"])
            .arg(&lookaside)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        check(st, "fci build");
    };

    // Warm both paths once (page cache, lookaside cache) before measuring.
    raw(usize::MAX);
    let warm_ws = scratch.path().join("ws-warm");
    fci_build(&warm_ws, &["--no-cache"]);

    let mut raw_t = Vec::new();
    let mut fci_t = Vec::new();
    for i in 0..runs {
        // Interleaved so that drift on the machine affects both sides alike.
        raw_t.push(time(|| raw(i)));
        fci_t.push(time(|| fci_build(&warm_ws, &["--no-cache"])));
    }
    let (raw_m, fci_m) = (median(raw_t), median(fci_t));

    let mut first_t = Vec::new();
    let mut cached_t = Vec::new();
    for i in 0..runs {
        let ws = scratch.path().join(format!("ws-{i}"));
        first_t.push(time(|| fci_build(&ws, &[])));
        cached_t.push(time(|| fci_build(&ws, &[])));
    }
    let (first_m, cached_m) = (median(first_t), median(cached_t));

    let overhead = fci_m.as_secs_f64() / raw_m.as_secs_f64();
    let cached = cached_m.as_secs_f64() / first_m.as_secs_f64();
    println!("fci build (no cache)   {:>8.1} ms   rpmbuild -ba {:>8.1} ms   ratio {overhead:.3}x  (target <= 1.10x)",
        ms(fci_m), ms(raw_m));
    println!("fci build (cached)     {:>8.1} ms   first run    {:>8.1} ms   ratio {cached:.3}x  (target <= 0.02x)",
        ms(cached_m), ms(first_m));
    support::record(
        "fci build --no-cache / rpmbuild -ba (hello-atomic)",
        overhead,
        "x",
        Target::AtMost(1.10),
        serde_json::json!({"fci_ms": ms(fci_m), "rpmbuild_ms": ms(raw_m), "runs": runs}),
    );
    support::record(
        "fci build cached / first run",
        cached,
        "x",
        Target::AtMost(0.02),
        serde_json::json!({"cached_ms": ms(cached_m), "first_ms": ms(first_m), "runs": runs}),
    );
    support::quick_note();
}
