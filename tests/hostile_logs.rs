//! What package code prints, and what a guest writes to its console, is stored and read
//! bounded (README "Limits"): a stage log takes at most `caps::STAGE_LOG_OUTPUT` of output
//! (its head, then the last lines after a note of the cut), the command is never blocked,
//! the stage is not failed for being chatty, and fci reads logs and consoles through caps or
//! from their end, never whole. Peak memory is the kernel's number (GNU time's `%M`), as in
//! tests/hostile_bounds.rs.

mod common;
use common::*;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD];

const MIB: u64 = 1024 * 1024;
/// What a bounded fci may use at its peak, in KiB.
const PEAK_KIB: u64 = 200 * 1024;
/// The stored log: the cap, and room for fci's own lines and the last part kept.
const LOG_MAX: u64 = 64 * MIB + 2 * MIB;

fn hostile(name: &str) -> PathBuf {
    repo_root().join("tests/hostile").join(name)
}

/// The first and the last `n` bytes of a file, without reading it whole.
fn ends(path: &Path, n: u64) -> (String, String) {
    let mut f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut head = Vec::new();
    (&mut f).take(n).read_to_end(&mut head).unwrap();
    f.seek(SeekFrom::Start(len.saturating_sub(n))).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    (
        String::from_utf8_lossy(&head).into_owned(),
        String::from_utf8_lossy(&tail).into_owned(),
    )
}

#[test]
fn a_chatty_build_passes_with_its_log_cut_and_fci_bounded() {
    let w = Ws::new();
    let dir = hostile("chatty-build");
    let mut cmd = w.cmd();
    cmd.args([
        "build",
        dir.to_str().unwrap(),
        "--dist",
        ".fc41",
        "--max-scratch=64M",
        "--max-memory=64M",
    ]);
    let started = std::time::Instant::now();
    let (r, peak) = run_measured(cmd);
    let took = started.elapsed();
    // Chatty is not a failure: the build passes, its log cut.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "PASSED", "{b:#}");
    let log = w.ws().join(b["log"].as_str().expect("the build's log"));
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        size <= LOG_MAX,
        "the stored log is {size} bytes, past the 64 MiB cap"
    );
    assert!(size >= 60 * MIB, "the head was not kept: {size} bytes");
    let (head, tail) = ends(&log, 4 * MIB);
    assert!(
        head.contains("chatty-build: the first line"),
        "{}",
        &head[..2000]
    );
    assert!(
        tail.contains("chatty-build: the last line"),
        "the end of the output is lost"
    );
    // The note says where and how much was cut, and why.
    let note = tail
        .lines()
        .find(|l| l.starts_with("[fci: ") && l.contains("bytes of output cut here"))
        .unwrap_or_else(|| panic!("no note of the cut in the log's end"));
    assert!(note.ends_with(": past the 64 MiB log cap]"), "{note}");
    let cut: u64 = note["[fci: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cut > 230 * MIB && cut < 300 * MIB, "{note}");
    assert!(peak < PEAK_KIB, "fci's peak memory was {peak} KiB");
    eprintln!("chatty build: {took:?}, peak {peak} KiB, stored log {size} bytes");
}

/// A guest's console of 400 MB (sparse: no disk is spent), ending in a kernel panic.
fn flooded_console(dir: &Path) -> PathBuf {
    let p = dir.join("serial.log");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(b"[    0.000000] Linux version 6.11\n").unwrap();
    f.set_len(400 * 1000 * 1000).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"\n[  99.000000] Kernel panic - not syncing: the end\n")
        .unwrap();
    p
}

/// This test process's peak resident memory, in KiB.
fn own_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_flooded_console_is_read_and_stored_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let serial = flooded_console(dir.path());
    // Stored: appended to the stage log as a command's output is, capped.
    let log_path = dir.path().join("smoke.log");
    let mut log = fci::exec::Log::create(&log_path).unwrap();
    log.line("# serial console (ttyS0):");
    log.append_file(&serial);
    drop(log);
    let size = std::fs::metadata(&log_path).unwrap().len();
    assert!(size <= LOG_MAX, "the stored console is {size} bytes");
    let (head, tail) = ends(&log_path, MIB);
    assert!(head.contains("Linux version 6.11"));
    assert!(tail.contains("Kernel panic - not syncing: the end"));
    assert!(tail.contains("bytes of output cut here: past the 64 MiB log cap]"));
    // Read: its head and its end, the middle skipped.
    let cap = fci::caps::CONSOLE_READ;
    let read = fci::caps::head_and_tail(&serial, cap, cap).unwrap();
    assert!(
        read.len() as u64 <= 2 * cap + 100,
        "{} bytes read",
        read.len()
    );
    let text = String::from_utf8_lossy(&read);
    assert!(text.contains("Linux version 6.11"));
    assert!(text.contains("Kernel panic - not syncing: the end"));
    assert!(text.contains("bytes not read here]"));
    let peak = own_peak_kib();
    assert!(peak < PEAK_KIB, "the test's peak memory was {peak} KiB");
}
