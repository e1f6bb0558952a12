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

/// What a figure should be: at most, or at least, this.
#[derive(Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// Measured and kept, with no target.
    None,
}

impl Target {
    fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(value <= t),
            Target::AtLeast(t) => Some(value >= t),
            Target::None => None,
        }
    }
    fn shown(self, unit: &str) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}{unit}"),
            Target::AtLeast(t) => format!(">= {t}{unit}"),
            Target::None => "-".into(),
        }
    }
}

/// One measured figure of this benchmark (`metric`, say "fci build / rpmbuild -ba") with its
/// `unit` ("x" for a ratio), its target and `detail` (the times it was made of, in ms or s).
/// Appended to `$FCI_BENCH_RECORD.jsonl` and `.tsv` when that is set; quick-mode figures are
/// marked as such.
pub fn record(metric: &str, value: f64, unit: &str, target: Target, detail: serde_json::Value) {
    assert!(value.is_finite(), "{metric}: {value} is no measurement");
    let Some(base) = std::env::var_os("FCI_BENCH_RECORD") else {
        return;
    };
    let bench = env!("CARGO_CRATE_NAME");
    let met = target.met(value);
    let (op, t) = match target {
        Target::AtMost(t) => (Some("<="), Some(t)),
        Target::AtLeast(t) => (Some(">="), Some(t)),
        Target::None => (None, None),
    };
    let line = serde_json::json!({
        "bench": bench,
        "metric": metric,
        "value": (value * 1e4).round() / 1e4,
        "unit": unit,
        "target": t.map(|t| serde_json::json!({"op": op, "value": t})),
        "met": met,
        "quick": quick(),
        "detail": detail,
    });
    let append = |ext: &str, text: String| {
        use std::io::Write;
        let mut p = std::path::PathBuf::from(&base).into_os_string();
        p.push(ext);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(".jsonl", format!("{line}\n"));
    let met = match met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    };
    append(
        ".tsv",
        format!(
            "{bench}\t{metric}\t{value:.3}{unit}\t{}\t{met}\n",
            target.shown(unit)
        ),
    );
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}
