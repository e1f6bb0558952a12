//! JUnit XML as conformance runners write it (sonobuoy's and e2e.test's `junit_01.xml`,
//! openshift-tests): read as a stream, since a real Kubernetes e2e run has thousands of test
//! cases, most of them skipped. A test case is FAILED with a `<failure>`, ERROR with an
//! `<error>`, SKIPPED with `<skipped>`, else PASSED. A file that is not JUnit, or is cut
//! short, is an error naming it: a truncated report must never read as "nothing failed".

use crate::manifest::Outcome;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::BufRead;

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: Option<String>,
    pub outcome: Outcome,
    /// The failure's or error's message (its attribute, else its text), trimmed.
    pub message: Option<String>,
    pub time_s: Option<f64>,
}

fn attr(e: &BytesStart, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Every test case in a JUnit document; `Err` says why it cannot be trusted.
pub fn parse<R: BufRead>(input: R) -> Result<Vec<Case>, String> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    // Collecting the text of a <failure>/<error> without a message attribute.
    let mut text_of: Option<String> = None;
    let mut depth = 0usize;
    let mut saw_root = false;
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match ev {
            Event::Start(e) => {
                depth += 1;
                let name = e.name().as_ref().to_vec();
                if depth == 1 {
                    if !matches!(name.as_slice(), b"testsuites" | b"testsuite") {
                        return Err(format!(
                            "not a JUnit report: the root element is <{}>",
                            String::from_utf8_lossy(&name)
                        ));
                    }
                    saw_root = true;
                }
                match name.as_slice() {
                    b"testcase" => current = Some(case_from(&e)),
                    b"failure" | b"error" => {
                        if let Some(c) = current.as_mut() {
                            c.outcome = if name == b"failure" {
                                Outcome::Failed
                            } else {
                                Outcome::Error
                            };
                            c.message = attr(&e, b"message");
                            if c.message.is_none() {
                                text_of = Some(String::new());
                            }
                        }
                    }
                    b"skipped" => {
                        if let Some(c) = current.as_mut() {
                            c.outcome = Outcome::Skipped;
                        }
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_vec();
                if depth == 0 {
                    if !matches!(name.as_slice(), b"testsuites" | b"testsuite") {
                        return Err("not a JUnit report".into());
                    }
                    saw_root = true;
                }
                match name.as_slice() {
                    b"testcase" => cases.push(case_from(&e)),
                    b"failure" | b"error" => {
                        if let Some(c) = current.as_mut() {
                            c.outcome = if name == b"failure" {
                                Outcome::Failed
                            } else {
                                Outcome::Error
                            };
                            c.message = attr(&e, b"message");
                        }
                    }
                    b"skipped" => {
                        if let Some(c) = current.as_mut() {
                            c.outcome = Outcome::Skipped;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(s) = text_of.as_mut() {
                    if s.len() < 4096 {
                        s.push_str(&t.unescape().unwrap_or_default());
                    }
                }
            }
            Event::CData(t) => {
                if let Some(s) = text_of.as_mut() {
                    if s.len() < 4096 {
                        s.push_str(&String::from_utf8_lossy(&t));
                    }
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.name().as_ref() {
                    b"failure" | b"error" => {
                        if let (Some(c), Some(t)) = (current.as_mut(), text_of.take()) {
                            let t = t.trim();
                            if !t.is_empty() {
                                c.message = Some(t.lines().next().unwrap_or(t).to_string());
                            }
                        }
                    }
                    b"testcase" => cases.extend(current.take()),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("not a JUnit report: no <testsuites> or <testsuite>".into());
    }
    if depth != 0 {
        return Err("the report is cut short: elements are left open".into());
    }
    Ok(cases)
}

fn case_from(e: &BytesStart) -> Case {
    Case {
        name: attr(e, b"name").unwrap_or_default(),
        classname: attr(e, b"classname"),
        outcome: Outcome::Passed,
        message: None,
        time_s: attr(e, b"time").and_then(|t| t.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like sonobuoy's e2e `junit_01.xml`: passed, failed with a message, skipped.
    const E2E: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" disabled="0" errors="0" failures="1" time="1520.2">
  <testsuite name="Kubernetes e2e suite" package="/usr/local/bin" tests="3" disabled="0" skipped="1" errors="0" failures="1" time="1520.2" timestamp="2026-12-01T10:00:00">
    <testcase name="[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a pod. [Conformance]" classname="Kubernetes e2e suite" status="passed" time="12.4"></testcase>
    <testcase name="[sig-network] DNS should provide DNS for services  [Conformance]" classname="Kubernetes e2e suite" status="failed" time="300.1">
      <failure message="timed out waiting for the condition" type="failed"><![CDATA[[FAILED] timed out waiting for the condition
In [It] at: test/e2e/network/dns_common.go:455]]></failure>
      <system-err>&lt;long log&gt;</system-err>
    </testcase>
    <testcase name="[sig-storage] CSI Volumes [Driver: csi-hostpath] should do something [Disruptive]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>"#;

    #[test]
    fn reads_e2e_reports() {
        let cases = parse(E2E.as_bytes()).unwrap();
        let outcomes: Vec<Outcome> = cases.iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes,
            vec![Outcome::Passed, Outcome::Failed, Outcome::Skipped]
        );
        assert_eq!(
            cases[1].message.as_deref(),
            Some("timed out waiting for the condition")
        );
        assert!(cases[1].name.contains("[sig-network] DNS"));
        assert_eq!(cases[0].time_s, Some(12.4));
        // A failure without a message attribute: its text's first line.
        let t = "<testsuite><testcase name=\"a\"><failure>boom\nstack</failure></testcase><testcase name=\"b\"/><testcase name=\"c\"><error message=\"crashed\"/></testcase></testsuite>";
        let c = parse(t.as_bytes()).unwrap();
        assert_eq!(c[0].message.as_deref(), Some("boom"));
        assert_eq!(c[1].outcome, Outcome::Passed);
        assert_eq!(c[2].outcome, Outcome::Error);
    }

    #[test]
    fn truncated_or_foreign_documents_are_errors() {
        let cut = &E2E[..E2E.len() / 2];
        assert!(
            parse(cut.as_bytes()).is_err(),
            "a truncated report read as complete"
        );
        assert!(parse("<html><body/></html>".as_bytes()).is_err());
        assert!(parse("not xml at all".as_bytes()).is_err());
        assert!(parse("".as_bytes()).is_err());
    }

    #[test]
    fn seven_thousand_cases_stream() {
        let mut doc = String::from("<testsuites><testsuite name=\"e2e\">");
        for i in 0..7000 {
            doc.push_str(&format!(
                "<testcase name=\"case {i}\" time=\"0\"><skipped/></testcase>"
            ));
        }
        doc.push_str("</testsuite></testsuites>");
        let cases = parse(doc.as_bytes()).unwrap();
        assert_eq!(cases.len(), 7000);
        assert!(cases.iter().all(|c| c.outcome == Outcome::Skipped));
    }
}
