//! `fci report --junit FILE`: the run's results as a JUnit report, for Jenkins' `junit` step
//! and other CI systems: a test suite per stage, a test case per result (a stage without
//! results is one case of its own name). A failure or error carries its cause line as the
//! message and the end of its log (the case's, else its stage's: the last
//! [`EXCERPT_LINES`] lines, redacted) as its text, and its whole note in `<system-out>`.
//! Written by quick-junit, which escapes every string and drops what XML cannot hold
//! (control characters, ANSI escapes).

use crate::manifest::{Manifest, Outcome};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// How many of a log's last lines a failing case quotes.
pub const EXCERPT_LINES: usize = 40;

/// The most of a log's end read for an excerpt.
const EXCERPT_READ: u64 = 64 * 1024;

/// The last [`EXCERPT_LINES`] lines of the workspace log `rel` (a manifest's `log`), redacted
/// and with control characters shown escaped; None when it cannot be read or lies outside
/// the workspace.
pub fn excerpt(ws: &crate::workspace::Workspace, rel: &str) -> Option<String> {
    let path = ws.resolve(rel).ok()?;
    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let bytes = crate::caps::tail(&path, EXCERPT_READ).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let last = crate::exec::last_lines(text.trim_end(), EXCERPT_LINES);
    Some(crate::redact::redact(&crate::progress::plain_lines(&last)))
}

/// A failing case's status: its cause (the note's first line) as the message, the end of its
/// log as the text (the note when there is no log), the whole note in `<system-out>`.
fn failing(
    o: Outcome,
    note: Option<&str>,
    log: Option<String>,
) -> (TestCaseStatus, Option<String>) {
    let mut st = status(o, note);
    if o.is_pass() || o == Outcome::Skipped {
        return (st, None);
    }
    if let Some(tail) = log.filter(|t| !t.trim().is_empty()) {
        st.set_description(tail);
    }
    (st, note.map(str::to_string))
}

/// A case's status; a note, when it did not pass, as the message (its first line) and text.
fn status(o: Outcome, note: Option<&str>) -> TestCaseStatus {
    let mut st = match o {
        Outcome::Passed | Outcome::Info => return TestCaseStatus::success(),
        Outcome::Failed | Outcome::NeedsInspection => {
            TestCaseStatus::non_success(NonSuccessKind::Failure)
        }
        Outcome::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
        Outcome::Skipped => TestCaseStatus::skipped(),
    };
    st.set_type(o.as_str());
    if let Some(n) = note {
        st.set_message(n.lines().next().unwrap_or_default())
            .set_description(n);
    }
    st
}

/// The report for `m`; with `verdict` (the report's own outcome and notes), a `report` suite
/// whose `gating` case is what the report decided (a refused promotion fails it). `log` reads
/// the end of a manifest's log path ([`excerpt`]).
pub fn report(
    m: &Manifest,
    verdict: Option<(crate::manifest::Outcome, &[String])>,
    log: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let mut report = Report::new(format!("fci {}", m.run.id));
    for s in m.stages.iter().filter(|s| s.name != "report") {
        let mut suite = TestSuite::new(s.name.as_str());
        suite.set_time(seconds(s.duration_s));
        let stage_log = || s.log.as_deref().and_then(log);
        // A stage that did not pass though none of its results failed (a spec that does not
        // parse, a skip after it) is a case of its own too, with its cause: the stage's last
        // note (the driver puts a package's mistake last; a failed build's is its cause line).
        let unexplained = !s.outcome.is_pass()
            && !s.results.iter().any(|r| {
                matches!(
                    r.outcome,
                    Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
                )
            });
        if s.results.is_empty() || unexplained {
            // All the notes are its text when there is no log.
            let notes = s.notes.join("\n");
            let cause = s.notes.last().map(|last| {
                if s.notes.len() > 1 {
                    format!("{}\n{notes}", last.lines().next().unwrap_or_default())
                } else {
                    notes.clone()
                }
            });
            let tail = if s.outcome.is_pass() {
                None
            } else {
                stage_log()
            };
            let (st, out) = failing(s.outcome, cause.as_deref(), tail);
            let mut case = TestCase::new(s.name.as_str(), st);
            case.set_classname(s.name.as_str())
                .set_time(seconds(s.duration_s));
            if let Some(out) = out {
                case.set_system_out(out);
            }
            suite.add_test_case(case);
        }
        for r in &s.results {
            let passed = r.outcome.is_pass() || r.outcome == Outcome::Skipped;
            // The case's own log, else its stage's (a build's %check is in the build log).
            let tail = if passed {
                None
            } else {
                r.log.as_deref().and_then(log).or_else(stage_log)
            };
            let (st, out) = failing(r.outcome, r.note.as_deref(), tail);
            let mut case = TestCase::new(r.testcase.as_str(), st);
            case.set_classname(s.name.as_str());
            if let Some(d) = r.duration_s {
                case.set_time(seconds(d));
            }
            if let Some(out) = out {
                case.set_system_out(out);
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    if let Some((outcome, notes)) = verdict {
        let mut suite = TestSuite::new("report");
        let note = notes.join("\n");
        let mut case = TestCase::new(
            "gating",
            status(
                outcome,
                Some(&note).filter(|n| !n.is_empty()).map(String::as_str),
            ),
        );
        case.set_classname("report");
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    // quick-junit drops control characters but not the noncharacters U+FFFE and U+FFFF,
    // which XML 1.0 cannot hold either (a Jenkins junit step refuses the file): dropped here,
    // where they can only be text, never markup.
    Ok(report
        .to_string()?
        .chars()
        .filter(|c| !matches!(c, '\u{fffe}' | '\u{ffff}'))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::manifest::{Manifest, Outcome};
    use serde_json::json;

    /// What fci writes, fci's own strict reader reads back: each outcome, names with markup
    /// in them, and counts that agree with the cases.
    #[test]
    fn the_report_reads_back_through_fcis_junit_reader() {
        let evil = "<script>\"a\" & 'b'</script>\u{1b}[31m\u{fffe}";
        let stage = |name: &str, outcome: &str, results: serde_json::Value| {
            json!({"name": name, "outcome": outcome, "started": "", "finished": "",
                   "duration_s": 1.5, "input_digest": "", "notes": ["it broke\nbadly"],
                   "results": results})
        };
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r1", "created": "", "fci_version": "0"},
            "stages": [
                stage("build", "ERROR", json!([])),
                stage("test", "FAILED", json!([
                    {"testcase": "t.pass", "outcome": "PASSED", "duration_s": 2.0},
                    {"testcase": evil, "outcome": "FAILED", "note": evil},
                    {"testcase": "t.skip", "outcome": "SKIPPED"},
                    {"testcase": "t.info", "outcome": "INFO"},
                    {"testcase": "t.inspect", "outcome": "NEEDS_INSPECTION"},
                ])),
                stage("report", "PASSED", json!([])),
            ],
        }))
        .unwrap();
        let xml = super::report(&m, None, &|_| None).unwrap();
        assert!(!xml.contains("<script") && !xml.contains('\u{1b}'), "{xml}");
        // Nothing XML 1.0 cannot hold (a Jenkins junit step would refuse the file).
        assert!(!xml.contains('\u{fffe}'), "{xml}");
        let read = crate::junit::parse_report(xml.as_bytes()).unwrap();
        assert!(
            read.inconsistent.is_empty() && read.suite_failures.is_empty(),
            "{read:?}"
        );
        let got: Vec<_> = read
            .cases
            .iter()
            .map(|c| (c.classname.as_deref().unwrap(), c.name.as_str(), c.outcome))
            .collect();
        let shown = "<script>\"a\" & 'b'</script>";
        assert_eq!(
            got,
            vec![
                ("build", "build", Outcome::Error),
                ("test", "t.pass", Outcome::Passed),
                ("test", shown, Outcome::Failed),
                ("test", "t.skip", Outcome::Skipped),
                ("test", "t.info", Outcome::Passed),
                ("test", "t.inspect", Outcome::Failed),
            ]
        );
        assert_eq!(read.cases[0].message.as_deref(), Some("it broke"));
        assert_eq!(read.cases[1].time_s, Some(2.0));
    }

    /// A failing case carries its cause as the message, the end of its log (its own, else its
    /// stage's) as the text, and its note in `<system-out>`; a passing one carries neither.
    #[test]
    fn a_failure_carries_its_cause_and_its_logs_end() {
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r1", "created": "", "fci_version": "0"},
            "stages": [
                {"name": "build", "outcome": "FAILED", "started": "", "finished": "",
                 "duration_s": 1.0, "input_digest": "", "log": "logs/build.log",
                 "notes": ["unmet BuildRequires on this host: gcc", "%check failed: FAIL: greeting is wrong"],
                 "results": [{"testcase": "build.check", "outcome": "FAILED",
                              "note": "the package's unit tests (%check) failed: FAIL: greeting is wrong"}]},
                {"name": "test", "outcome": "FAILED", "started": "", "finished": "",
                 "duration_s": 1.0, "input_digest": "", "log": "logs/test.log",
                 "results": [
                    {"testcase": "spelling", "outcome": "FAILED", "log": "logs/spelling.log",
                     "note": "`grep -qx hi` exited 1 (it printed nothing)"},
                    {"testcase": "fine", "outcome": "PASSED", "log": "logs/fine.log"}]},
                {"name": "smoke", "outcome": "ERROR", "started": "", "finished": "",
                 "duration_s": 1.0, "input_digest": "", "log": "logs/smoke.log",
                 "notes": ["qemu-img cannot read the image"]},
            ],
        }))
        .unwrap();
        let logs = |rel: &str| match rel {
            "logs/build.log" => Some(
                "Executing(%check)\nFAIL: greeting is wrong\nerror: Bad exit status".to_string(),
            ),
            "logs/spelling.log" => Some("$ grep -qx hi\n# exit status 1".to_string()),
            "logs/smoke.log" => Some("$ qemu-img convert\nqemu-img: Could not open".to_string()),
            "logs/fine.log" => panic!("a passing case's log is not read"),
            _ => None,
        };
        let xml = super::report(&m, None, &logs).unwrap();
        let read = crate::junit::parse_report(xml.as_bytes()).unwrap();
        let message = |name: &str| {
            read.cases
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.message.clone())
                .unwrap()
        };
        assert_eq!(
            message("build.check"),
            "the package's unit tests (%check) failed: FAIL: greeting is wrong"
        );
        assert_eq!(
            message("spelling"),
            "`grep -qx hi` exited 1 (it printed nothing)"
        );
        assert_eq!(message("smoke"), "qemu-img cannot read the image");
        // The logs' ends are the failures' text: the %check's from its stage's log.
        assert!(
            xml.contains(
                ">Executing(%check)\nFAIL: greeting is wrong\nerror: Bad exit status</failure>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(">$ grep -qx hi\n# exit status 1</failure>"),
            "{xml}"
        );
        assert!(xml.contains("qemu-img: Could not open</error>"), "{xml}");
        assert!(
            xml.contains("<system-out>`grep -qx hi` exited 1 (it printed nothing)</system-out>"),
            "{xml}"
        );
    }

    #[test]
    fn an_excerpt_is_the_logs_last_lines_redacted_and_escaped() {
        let t = tempfile::tempdir().unwrap();
        let ws = crate::workspace::Workspace::open(t.path()).unwrap();
        let dir = t.path().join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        let mut text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        text.push_str("fetch https://user:s3cret-pass@example.org/x\n\x1b[2Jdone\n");
        std::fs::write(dir.join("a.log"), text).unwrap();
        let got = super::excerpt(&ws, "logs/a.log").unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), super::EXCERPT_LINES);
        assert_eq!(lines[0], "line 63");
        assert!(!got.contains("s3cret-pass"), "{got}");
        assert_eq!(lines[39], "\\x1b[2Jdone");
        assert_eq!(super::excerpt(&ws, "../outside.log"), None);
        assert_eq!(super::excerpt(&ws, "logs/missing.log"), None);
    }
}
