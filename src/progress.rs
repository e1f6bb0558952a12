//! Human output on stderr: a spinner for long steps, notes and summaries.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// A line that is printed also with --quiet (an error, an ERROR outcome, what failed).
pub fn say(msg: &str) {
    eprintln!("fci: {}", plain(msg));
}

/// The one line an old spelling of a command prints (also with --quiet: who scripted it must
/// learn the new one before it goes).
pub fn deprecated(old: &str, new: &str) {
    say(&format!(
        "warning: `fci {old}` is deprecated and goes in the next release: use `fci {new}`"
    ));
}

/// A note followed by lines of its own (a table, a log's tail), suppressed by --quiet: each
/// line is escaped as [`plain`] and indented, so none of them reads as a line of fci's.
pub fn note_lines(head: &str, lines: &[String]) {
    if !quiet() {
        say_lines(head, lines);
    }
}

/// [`note_lines`], also with --quiet.
pub fn say_lines(head: &str, lines: &[String]) {
    let mut out = format!("fci: {}", plain(head));
    for l in lines {
        out.push_str("\n  ");
        out.push_str(&plain(l));
    }
    eprintln!("{out}");
}

/// The one rule for text on stderr that may come from input (messages, manifests, package
/// output, file names): every control character is shown escaped (`\n`, `\r`, `\t`, `\x1b`),
/// newlines included, so input can neither move the cursor nor start a line that reads as
/// fci's own (`fci: error: ...`). Every line fci prints goes through it: [`note`], [`say`],
/// [`note_lines`], and the error printed on exit.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Control characters, line and paragraph separators, and the bidirectional
            // overrides that reorder what a terminal shows.
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Text that keeps its lines (a log's tail kept in a manifest note), with every other
/// control character escaped as [`plain`] does. Not for stderr: print through
/// [`note_lines`].
pub fn plain_lines(text: &str) -> String {
    text.split('\n').map(plain).collect::<Vec<_>>().join("\n")
}

/// The stage's log streamed live to stderr (`-v/--verbose`).
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(v: bool) {
    VERBOSE.store(v, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// One line of a stage's log, streamed to stderr with `-v`: escaped as [`plain`] and indented
/// as a log's tail is, so package output can neither steer the terminal nor print a line
/// that reads as fci's own (`fci: error: ...`).
pub fn log_line(line: &str) {
    eprintln!("  {}", plain(line));
}

/// What a step shows: on a terminal a spinner (after a second of work); elsewhere (a CI
/// console, a pipe, or with `-v`, whose streamed log a spinner would tear) one line per step,
/// with the time since the stage's first step, and a last line with the whole time.
pub struct Spinner(Shown);

enum Shown {
    Nothing,
    Bar(ProgressBar),
    Lines { stage: String, started: Instant },
}

/// `75s` as `1m15s`, `4h00m00s`: how long, for a line of a CI console.
pub fn elapsed_text(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

impl Spinner {
    pub fn new(stage: &str) -> Self {
        if quiet() {
            return Spinner(Shown::Nothing);
        }
        if verbose() || !std::io::stderr().is_terminal() {
            return Spinner(Shown::Lines {
                stage: stage.to_string(),
                started: Instant::now(),
            });
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
        Spinner(Shown::Bar(pb))
    }

    pub fn step(&self, msg: &str) {
        match &self.0 {
            Shown::Nothing => {}
            Shown::Bar(pb) => pb.set_message(plain(msg)),
            Shown::Lines { stage, started } => eprintln!(
                "fci: {stage}: {} … (at {})",
                plain(msg),
                elapsed_text(started.elapsed())
            ),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        match &self.0 {
            Shown::Nothing => {}
            Shown::Bar(pb) => pb.finish_and_clear(),
            Shown::Lines { stage, started } => eprintln!(
                "fci: {stage}: steps ended after {}",
                elapsed_text(started.elapsed())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_cannot_start_a_line_or_steer_the_terminal() {
        assert_eq!(
            plain("pkg\nfci: error: forged\r\x1b[2J\t\u{85}x"),
            "pkg\\nfci: error: forged\\r\\x1b[2J\\t\\x85x"
        );
        assert_eq!(plain("ünïcode ok"), "ünïcode ok");
        assert_eq!(plain_lines("a\x1b\nb"), "a\\x1b\nb");
    }

    #[test]
    fn elapsed_time_reads_as_a_person_says_it() {
        let t = |s| elapsed_text(Duration::from_secs(s));
        assert_eq!(t(5), "5s");
        assert_eq!(t(75), "1m15s");
        assert_eq!(t(4 * 3600), "4h00m00s");
    }
}
