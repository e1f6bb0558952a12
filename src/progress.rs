//! Human output on stderr: a spinner for long steps, notes and summaries.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A one-line note for the person watching (suppressed by --quiet).
pub fn note(msg: &str) {
    if !quiet() {
        eprintln!("fci: {}", plain(msg));
    }
}

/// Text for the terminal with control characters (escape sequences from package output)
/// shown as `?`; newlines and tabs stay.
pub fn plain(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A spinner that appears only on a terminal and only after a second of work.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn new(stage: &str) -> Self {
        if quiet() || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let pb = ProgressBar::hidden();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {wide_msg} [{elapsed}]")
                .expect("valid template"),
        );
        pb.set_prefix(stage.to_string());
        let shown = pb.clone();
        // Steps shorter than a second finish before the spinner would flicker into view.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Spinner(Some(pb))
    }

    pub fn step(&self, msg: &str) {
        if let Some(pb) = &self.0 {
            pb.set_message(msg.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
