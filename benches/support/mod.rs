//! What every benchmark shares: its mode, and medians of timings.
//!
//! `cargo bench` passes `--bench` to a benchmark and builds it optimized: the full
//! measurement. `cargo test` also runs every benchmark (`test = true` in Cargo.toml), without
//! `--bench` and unoptimized: the quick mode, one iteration on a small input, so that a
//! benchmark that no longer runs fails the test suite instead of rotting unnoticed. Its
//! ratios say nothing and are printed as such.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Run by `cargo test` (one iteration, small inputs), not by `cargo bench`.
pub fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// How many times to measure: `full`, or once in the quick mode.
pub fn runs(full: usize) -> usize {
    if quick() {
        1
    } else {
        full
    }
}

/// An input's size: `full`, or `small` in the quick mode.
pub fn size(full: usize, small: usize) -> usize {
    if quick() {
        small
    } else {
        full
    }
}

/// Printed after a benchmark's lines in the quick mode.
pub fn quick_note() {
    if quick() {
        println!("(quick mode under cargo test: one unoptimized iteration, the ratios mean nothing; run cargo bench)");
    }
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}
