//! The runner's JUnit files as the record's test results. Only passed, failed and errored
//! cases become results: a conformance run skips most of its ~7,000 cases, and those are
//! only counted, so the manifest stays small. Ginkgo's suite nodes (`[SynchronizedBeforeSuite]`,
//! `[ReportAfterSuite] ...`) are test cases in its JUnit but no conformance test: they are
//! kept apart (`Findings::suite_nodes`), never counted as passed tests.

use crate::caps;
use crate::caps::cut_text as capped;
use crate::junit;
use crate::manifest::{Outcome, TestResult};
use serde_json::{json, Map};
use std::path::Path;

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn to_json(self) -> serde_json::Value {
        json!({
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
        })
    }
}

/// Ginkgo's setup and report nodes, as its JUnit reporter names them (`[%s]` of the node
/// type, then the node's text if any).
const SUITE_NODES: [&str; 7] = [
    "[SynchronizedBeforeSuite]",
    "[SynchronizedAfterSuite]",
    "[BeforeSuite]",
    "[AfterSuite]",
    "[ReportBeforeSuite]",
    "[ReportAfterSuite]",
    "[DeferCleanup (Suite)]",
];

pub fn is_suite_node(name: &str) -> bool {
    let n = name.trim_start();
    SUITE_NODES.iter().any(|p| n.starts_with(p))
}

/// What the reports say beside their test cases.
#[derive(Default, Debug)]
pub struct Findings {
    /// Suite nodes: name, outcome, message.
    pub suite_nodes: Vec<(String, Outcome, Option<String>)>,
    /// `<failure>`/`<error>` outside test cases, and failed suite nodes: the suite broke.
    pub suite_failures: Vec<String>,
    /// Declared counts that disagree with the listed cases.
    pub inconsistent: Vec<String>,
    /// Suite nodes past `JUNIT_FINDINGS`: counted, not kept.
    pub more_suite_nodes: usize,
    /// Passed and failed (or errored) cases past `PASSED_LISTED` and
    /// `FAILED_LISTED`: counted in the tally, not listed as results.
    pub unlisted_passed: usize,
    pub unlisted_failed: usize,
}

/// Reads one JUnit file, adding its cases to `results` and `tally`, and what else it says to
/// `findings`. `Err` says why the file cannot be trusted (cut short, not XML, not JUnit).
pub fn read(
    file: &Path,
    runner: &str,
    results: &mut Vec<TestResult>,
    tally: &mut Tally,
    findings: &mut Findings,
) -> Result<(), String> {
    let f = std::fs::File::open(file).map_err(|e| format!("cannot read: {e}"))?;
    // Counted across every report of the stage: `results` may hold earlier files' cases.
    let listed = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let (mut passed_listed, mut failed_listed) = (listed(Outcome::Passed), listed(Outcome::Failed));
    let mut on_case = |c: junit::Case| {
        if is_suite_node(&c.name) {
            if matches!(c.outcome, Outcome::Failed | Outcome::Error) {
                let failure = format!(
                    "{} {}{}",
                    c.name.trim(),
                    if c.outcome == Outcome::Failed {
                        "failed"
                    } else {
                        "errored"
                    },
                    c.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                if findings.suite_failures.len() < caps::JUNIT_FINDINGS {
                    findings.suite_failures.push(capped(&failure));
                }
            }
            if findings.suite_nodes.len() < caps::JUNIT_FINDINGS {
                findings.suite_nodes.push((
                    capped(&c.name),
                    c.outcome,
                    c.message.map(|m| capped(&m)),
                ));
            } else {
                findings.more_suite_nodes += 1;
            }
            return;
        }
        match c.outcome {
            Outcome::Skipped => {
                tally.skipped += 1;
                return;
            }
            Outcome::Failed => tally.failed += 1,
            Outcome::Error => tally.errors += 1,
            _ => tally.passed += 1,
        }
        // Past the caps a case is counted, not listed: the manifest stays a manifest.
        if c.outcome == Outcome::Passed {
            if passed_listed >= caps::PASSED_LISTED {
                findings.unlisted_passed += 1;
                return;
            }
            passed_listed += 1;
        } else {
            if failed_listed >= caps::FAILED_LISTED {
                findings.unlisted_failed += 1;
                return;
            }
            failed_listed += 1;
        }
        let mut extra = Map::new();
        if let Some(cl) = c.classname.filter(|s| !s.is_empty()) {
            extra.insert("classname".into(), json!(capped(&cl)));
        }
        // An errored test case (Ginkgo: panicked, interrupted, aborted) is a conformance test
        // that did not pass: FAILED, like a failure; `tests.errors` keeps how many errored.
        let (outcome, note) = match c.outcome {
            Outcome::Error => (
                Outcome::Failed,
                Some(format!(
                    "error: {}",
                    c.message.as_deref().unwrap_or("no message")
                )),
            ),
            o => (o, c.message),
        };
        let note = note.map(|n| capped(&n));
        results.push(TestResult {
            testcase: capped(&c.name),
            outcome,
            runner: Some(runner.to_string()),
            scenario: None,
            log: None,
            duration_s: c.time_s,
            note,
            attempts: Vec::new(),
            extra,
        });
    };
    let report = junit::stream_report(caps::Capped::new(f, caps::JUNIT_FILE), &mut on_case)?;
    findings.suite_failures.extend(report.suite_failures);
    findings.inconsistent.extend(report.inconsistent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut() {
        assert_eq!(capped("short"), "short");
        let long = "é".repeat(5000);
        let c = capped(&long);
        assert!(c.ends_with("… (truncated)"), "{c}");
        assert_eq!(
            c.chars().count(),
            crate::caps::CASE_TEXT + " … (truncated)".chars().count()
        );
    }

    #[test]
    fn skipped_cases_are_only_counted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junit_01.xml");
        let mut doc = String::from(
            r#"<testsuite name="Kubernetes e2e suite" tests="102" failures="1" errors="0">"#,
        );
        doc.push_str(r#"<testcase name="[sig-node] Pods should be submitted and removed [Conformance]" classname="Kubernetes e2e suite" time="5.1"></testcase>"#);
        doc.push_str(r#"<testcase name="[sig-network] DNS should work [Conformance]" classname="Kubernetes e2e suite" time="9"><failure message="timed out">x</failure></testcase>"#);
        for i in 0..100 {
            doc.push_str(&format!(
                r#"<testcase name="skip {i}"><skipped message="skipped"/></testcase>"#
            ));
        }
        doc.push_str("</testsuite>");
        std::fs::write(&f, doc).unwrap();
        let (mut results, mut tally) = (Vec::new(), Tally::default());
        let mut findings = Findings::default();
        read(&f, "sonobuoy", &mut results, &mut tally, &mut findings).unwrap();
        assert!(findings.inconsistent.is_empty(), "{findings:?}");
        assert_eq!(
            tally,
            Tally {
                passed: 1,
                failed: 1,
                errors: 0,
                skipped: 100
            }
        );
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].note.as_deref(), Some("timed out"));
        std::fs::write(&f, "<testsuite><testcase name=\"a\">").unwrap();
        assert!(read(&f, "sonobuoy", &mut results, &mut tally, &mut findings).is_err());
    }

    #[test]
    fn suite_nodes_are_not_tests() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junit_01.xml");
        std::fs::write(
            &f,
            r#"<testsuite name="Kubernetes e2e suite" tests="5" failures="1">
<testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite"/>
<testcase name="[SynchronizedAfterSuite]" classname="Kubernetes e2e suite"/>
<testcase name="[ReportAfterSuite] Kubernetes e2e suite report" classname="Kubernetes e2e suite"/>
<testcase name="[BeforeSuite]"><failure message="no nodes ready"/></testcase>
<testcase name="x [Conformance]"><skipped/></testcase>
</testsuite>"#,
        )
        .unwrap();
        let (mut results, mut tally) = (Vec::new(), Tally::default());
        let mut findings = Findings::default();
        read(&f, "e2e.test", &mut results, &mut tally, &mut findings).unwrap();
        assert!(results.is_empty(), "{results:?}");
        assert_eq!(
            tally,
            Tally {
                skipped: 1,
                ..Tally::default()
            }
        );
        assert_eq!(findings.suite_nodes.len(), 4);
        assert_eq!(
            findings.suite_failures,
            vec!["[BeforeSuite] failed: no nodes ready"]
        );
    }

    #[test]
    fn an_errored_case_is_a_failed_test() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junit_01.xml");
        std::fs::write(
            &f,
            r#"<testsuite tests="1" errors="1"><testcase name="a [Conformance]"><error message="panic"/></testcase></testsuite>"#,
        )
        .unwrap();
        let (mut results, mut tally) = (Vec::new(), Tally::default());
        read(&f, "x", &mut results, &mut tally, &mut Findings::default()).unwrap();
        assert_eq!(tally.errors, 1);
        assert_eq!(results[0].outcome, Outcome::Failed);
        assert_eq!(results[0].note.as_deref(), Some("error: panic"));
    }
}
