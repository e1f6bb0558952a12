//! `fci report --junit FILE`: the run's results as a JUnit report, for Jenkins' `junit` step
//! and other CI systems: a test suite per stage, a test case per result (a stage without
//! results is one case of its own name). Written by quick-junit, which escapes every string
//! and drops what XML cannot hold (control characters, ANSI escapes).

use crate::manifest::{Manifest, Outcome};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
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
/// whose `gating` case is what the report decided (a refused promotion fails it).
pub fn report(
    m: &Manifest,
    verdict: Option<(crate::manifest::Outcome, &[String])>,
) -> anyhow::Result<String> {
    let mut report = Report::new(format!("fci {}", m.run.id));
    for s in m.stages.iter().filter(|s| s.name != "report") {
        let mut suite = TestSuite::new(s.name.as_str());
        suite.set_time(seconds(s.duration_s));
        // A stage that did not pass though none of its results failed (a spec that does not
        // parse, a skip after it) is a case of its own too, with its cause (the driver puts
        // it last).
        let unexplained = !s.outcome.is_pass()
            && !s.results.iter().any(|r| {
                matches!(
                    r.outcome,
                    Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
                )
            });
        if s.results.is_empty() || unexplained {
            let note = if s.results.is_empty() {
                s.notes.first()
            } else {
                s.notes.last()
            };
            let note = note.map(String::as_str);
            let mut case = TestCase::new(s.name.as_str(), status(s.outcome, note));
            case.set_classname(s.name.as_str())
                .set_time(seconds(s.duration_s));
            suite.add_test_case(case);
        }
        for r in &s.results {
            let mut case = TestCase::new(r.testcase.as_str(), status(r.outcome, r.note.as_deref()));
            case.set_classname(s.name.as_str());
            if let Some(d) = r.duration_s {
                case.set_time(seconds(d));
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
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use crate::manifest::{Manifest, Outcome};
    use serde_json::json;

    /// What fci writes, fci's own strict reader reads back: each outcome, names with markup
    /// in them, and counts that agree with the cases.
    #[test]
    fn the_report_reads_back_through_fcis_junit_reader() {
        let evil = "<script>\"a\" & 'b'</script>\u{1b}[31m";
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
        let xml = super::report(&m, None).unwrap();
        assert!(!xml.contains("<script") && !xml.contains('\u{1b}'), "{xml}");
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
}
