//! The runner's JUnit files as the record's test results. Only passed, failed and errored
//! cases become results: a conformance run skips most of its ~7,000 cases, and those are
//! only counted, so the manifest stays small.

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

/// Reads one JUnit file, adding its cases to `results` and `tally`. `Err` says why the file
/// cannot be trusted (cut short, not XML, not JUnit).
pub fn read(
    file: &Path,
    runner: &str,
    results: &mut Vec<TestResult>,
    tally: &mut Tally,
) -> Result<(), String> {
    let f = std::fs::File::open(file).map_err(|e| format!("cannot read: {e}"))?;
    let cases = junit::parse(std::io::BufReader::new(f))?;
    for c in cases {
        match c.outcome {
            Outcome::Skipped => {
                tally.skipped += 1;
                continue;
            }
            Outcome::Failed => tally.failed += 1,
            Outcome::Error => tally.errors += 1,
            _ => tally.passed += 1,
        }
        let mut extra = Map::new();
        if let Some(cl) = c.classname.filter(|s| !s.is_empty()) {
            extra.insert("classname".into(), json!(cl));
        }
        results.push(TestResult {
            testcase: c.name,
            outcome: c.outcome,
            runner: Some(runner.to_string()),
            scenario: None,
            log: None,
            duration_s: c.time_s,
            note: c.message,
            attempts: Vec::new(),
            extra,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_cases_are_only_counted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junit_01.xml");
        let mut doc = String::from(
            r#"<testsuite name="Kubernetes e2e suite" tests="3" failures="1" errors="0">"#,
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
        read(&f, "sonobuoy", &mut results, &mut tally).unwrap();
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
        assert!(read(&f, "sonobuoy", &mut results, &mut tally).is_err());
    }
}
