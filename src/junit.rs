//! JUnit XML as conformance runners write it (sonobuoy's and e2e.test's `junit_01.xml`,
//! openshift-tests): read as a stream, since a real Kubernetes e2e run has thousands of test
//! cases, most of them skipped. A test case is FAILED with a `<failure>` (or a `status`
//! attribute of `failed`, any case), ERROR with an `<error>` (or `status="error"`), SKIPPED
//! with `<skipped>` and neither of those (a `<skipped>` never hides a failure), else PASSED.
//! `<Failure>` and the like (XML names are case-sensitive) and a DTD are errors. A file that is not JUnit, or is cut
//! short, is an error naming it: a truncated report must never read as "nothing failed".
//! A `<failure>`/`<error>` outside any test case (the suite itself broke) is kept, and so is
//! every `<testsuite>`/`<testsuites>` whose `tests`/`failures`/`errors` attributes disagree
//! with the cases it lists: the caller must not read such a report as a pass.
//!
//! Bounded whatever the file holds ([`crate::caps`]): cases go to the caller one at a
//! time, never all held; of a text, CDATA section or comment only the first
//! `JUNIT_TEXT_KEPT` bytes are read (the rest streams past unbuffered, see [`Trimmed`]); a
//! tag larger than `JUNIT_TAG`, elements nested deeper than `JUNIT_DEPTH` and a DTD are errors;
//! suite-level failures and inconsistent suites past `JUNIT_FINDINGS` are only counted.

use crate::caps;
use crate::manifest::Outcome;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::Read;

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: Option<String>,
    pub outcome: Outcome,
    /// The failure's or error's message (its attribute, else its text), trimmed.
    pub message: Option<String>,
    pub time_s: Option<f64>,
}

/// A whole report: its cases, and what it says beside them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub cases: Vec<Case>,
    /// `<failure>`/`<error>` elements outside any `<testcase>`: their message (or kind).
    pub suite_failures: Vec<String>,
    /// Suites whose declared counts disagree with their cases, said in one line each.
    pub inconsistent: Vec<String>,
}

/// The counts a `<testsuite>`/`<testsuites>` declares, and what it was seen to hold.
struct Suite {
    name: String,
    declared: [Option<usize>; 3],
    counted: [usize; 3],
}

impl Suite {
    fn of(e: &BytesStart) -> Suite {
        let n = |k: &[u8]| attr(e, k).and_then(|v| v.trim().parse().ok());
        Suite {
            name: attr(e, b"name")
                .unwrap_or_else(|| String::from_utf8_lossy(e.name().as_ref()).into_owned()),
            declared: [n(b"tests"), n(b"failures"), n(b"errors")],
            counted: [0; 3],
        }
    }

    fn count(&mut self, c: &Case) {
        self.counted[0] += 1;
        match c.outcome {
            Outcome::Failed => self.counted[1] += 1,
            Outcome::Error => self.counted[2] += 1,
            _ => {}
        }
    }

    /// Declared failures or errors that are not the listed ones (either way), or more tests
    /// declared than listed (a runner that writes only the specs it ran lists fewer cases
    /// than it declares never: it may list more, skipped ones, so that is allowed).
    fn check(&self) -> Option<String> {
        let [tests, failures, errors] = self.declared;
        let mut bad = Vec::new();
        if tests.is_some_and(|t| t > self.counted[0]) {
            bad.push(format!(
                "tests=\"{}\" but {} cases",
                tests.unwrap_or(0),
                self.counted[0]
            ));
        }
        for (i, (d, what)) in [(failures, "failures"), (errors, "errors")]
            .into_iter()
            .enumerate()
        {
            if let Some(d) = d.filter(|d| *d != self.counted[i + 1]) {
                bad.push(format!(
                    "{what}=\"{d}\" but {} such cases",
                    self.counted[i + 1]
                ));
            }
        }
        (!bad.is_empty()).then(|| format!("<{}> declares {}", self.name, bad.join(", ")))
    }
}

fn attr(e: &BytesStart, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Every test case in a JUnit document; `Err` says why it cannot be trusted.
pub fn parse<R: Read>(input: R) -> Result<Vec<Case>, String> {
    parse_report(input).map(|r| r.cases)
}

/// A JUnit document with what it says outside its cases; `Err` says why it cannot be
/// trusted at all.
pub fn parse_report<R: Read>(input: R) -> Result<Report, String> {
    let mut cases = Vec::new();
    let mut report = stream_report(input, |c| cases.push(c))?;
    report.cases = cases;
    Ok(report)
}

/// Appends `item` to `list` while it holds fewer than `JUNIT_FINDINGS`; else counts it.
fn keep(list: &mut Vec<String>, more: &mut usize, item: String) {
    if list.len() < caps::JUNIT_FINDINGS {
        list.push(item);
    } else {
        *more += 1;
    }
}

/// As [`parse_report`], but each test case goes to `on_case` as it is read (the returned
/// report's `cases` is empty): a report of a million cases is never held whole.
pub fn stream_report<R: Read>(input: R, mut on_case: impl FnMut(Case)) -> Result<Report, String> {
    let mut reader = Reader::from_reader(std::io::BufReader::with_capacity(
        64 * 1024,
        Trimmed::new(input),
    ));
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut scan = Scan::default();
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| match e {
            // A limit (of the file, a tag) or the file itself: said as it is.
            quick_xml::Error::Io(io) => match caps::TooLarge::of(&io) {
                Some(t) => format!("the report is {t} for a JUnit report (read no further)"),
                None => io.to_string(),
            },
            e => format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            ),
        })?;
        match ev {
            Event::Start(e) => scan.start(&e)?,
            Event::Empty(e) => scan.empty(&e, &mut on_case)?,
            Event::Text(t) => {
                if let Some(s) = scan.text_of.as_mut() {
                    if s.len() < 4096 {
                        // A text cut short may end inside an entity: then as it is.
                        match t.unescape() {
                            Ok(u) => s.push_str(&u),
                            Err(_) => s.push_str(&String::from_utf8_lossy(&t)),
                        }
                    }
                }
            }
            Event::CData(t) => {
                if let Some(s) = scan.text_of.as_mut() {
                    if s.len() < 4096 {
                        s.push_str(&String::from_utf8_lossy(&t));
                    }
                }
            }
            Event::End(e) => scan.end(&e, &mut on_case),
            // A DTD may declare entities (expanded, or external): a report is plain JUnit.
            Event::DocType(_) => {
                return Err(
                    "the report has a DTD (<!DOCTYPE ...>): entity declarations are not accepted"
                        .into(),
                )
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    scan.finish()
}

/// What [`stream_report`] keeps between the parser's events: the case and the suites open,
/// the text of a failure being read, how deep it is, and the findings so far. Each kind
/// of event is a method of its own.
#[derive(Default)]
struct Scan {
    current: Option<Case>,
    // Collecting the text of a <failure>/<error> without a message attribute.
    text_of: Option<String>,
    depth: usize,
    saw_root: bool,
    suites: Vec<Suite>,
    report: Report,
    more_failures: usize,
    more_inconsistent: usize,
    // A suite-level <failure>/<error> being read (outside any test case).
    suite_text: Option<String>,
}

impl Scan {
    /// An element opened: a suite, a case, or what a case or suite says of itself.
    fn start(&mut self, e: &BytesStart) -> Result<(), String> {
        self.depth += 1;
        if self.depth > caps::JUNIT_DEPTH {
            return Err(format!(
                "elements nest deeper than the limit of {} levels",
                caps::JUNIT_DEPTH
            ));
        }
        let name = e.name().as_ref().to_vec();
        junit_name(&name)?;
        if self.depth == 1 {
            if !matches!(name.as_slice(), b"testsuites" | b"testsuite") {
                return Err(format!(
                    "not a JUnit report: the root element is <{}>",
                    String::from_utf8_lossy(&name)
                ));
            }
            self.saw_root = true;
        }
        match name.as_slice() {
            b"testsuite" | b"testsuites" => self.suites.push(Suite::of(e)),
            b"testcase" => self.current = Some(case_from(e)),
            b"failure" | b"error" => {
                if let Some(c) = self.current.as_mut() {
                    let had = c.message.is_some();
                    fail(c, &name, e);
                    if !had && c.message.is_none() {
                        self.text_of = Some(String::new());
                    }
                } else {
                    match attr(e, b"message") {
                        Some(m) => keep(
                            &mut self.report.suite_failures,
                            &mut self.more_failures,
                            suite_failure(&name, &m),
                        ),
                        None => {
                            self.suite_text = Some(String::from_utf8_lossy(&name).into_owned());
                            self.text_of = Some(String::new());
                        }
                    }
                }
            }
            b"skipped" => self.skip_current(),
            _ => {}
        }
        Ok(())
    }

    /// A `<skipped>` of the case being read: it is skipped, unless it failed (a failure or
    /// error is never hidden by a <skipped> beside or inside it).
    fn skip_current(&mut self) {
        if let Some(c) = self
            .current
            .as_mut()
            .filter(|c| c.outcome == Outcome::Passed)
        {
            c.outcome = Outcome::Skipped;
        }
    }

    /// An element without content: a suite or case with nothing inside, or a failure,
    /// error or skip without text.
    fn empty(&mut self, e: &BytesStart, on_case: &mut impl FnMut(Case)) -> Result<(), String> {
        let name = e.name().as_ref().to_vec();
        junit_name(&name)?;
        if self.depth == 0 {
            if !matches!(name.as_slice(), b"testsuites" | b"testsuite") {
                return Err("not a JUnit report".into());
            }
            self.saw_root = true;
        }
        match name.as_slice() {
            b"testsuite" | b"testsuites" => {
                if let Some(bad) = Suite::of(e).check() {
                    keep(
                        &mut self.report.inconsistent,
                        &mut self.more_inconsistent,
                        bad,
                    );
                }
            }
            b"testcase" => {
                let c = case_from(e);
                for s in self.suites.iter_mut() {
                    s.count(&c);
                }
                on_case(c);
            }
            b"failure" | b"error" => {
                if let Some(c) = self.current.as_mut() {
                    fail(c, &name, e);
                } else {
                    let m = attr(e, b"message").unwrap_or_default();
                    keep(
                        &mut self.report.suite_failures,
                        &mut self.more_failures,
                        suite_failure(&name, &m),
                    );
                }
            }
            b"skipped" => self.skip_current(),
            _ => {}
        }
        Ok(())
    }

    /// An element closed: a failure's text read, a case complete, a suite's counts checked.
    fn end(&mut self, e: &quick_xml::events::BytesEnd, on_case: &mut impl FnMut(Case)) {
        self.depth = self.depth.saturating_sub(1);
        match e.name().as_ref() {
            b"failure" | b"error" => {
                let text = self.text_of.take();
                if let (Some(c), Some(t)) = (self.current.as_mut(), text.as_ref()) {
                    let t = t.trim();
                    if !t.is_empty() {
                        c.message = Some(t.lines().next().unwrap_or(t).to_string());
                    }
                } else if let (Some(kind), Some(t)) = (self.suite_text.take(), text) {
                    let t = t.trim();
                    let first = t.lines().next().unwrap_or(t);
                    keep(
                        &mut self.report.suite_failures,
                        &mut self.more_failures,
                        suite_failure(kind.as_bytes(), first),
                    );
                }
            }
            b"testcase" => {
                if let Some(c) = self.current.take() {
                    for s in self.suites.iter_mut() {
                        s.count(&c);
                    }
                    on_case(c);
                }
            }
            b"testsuite" | b"testsuites" => {
                if let Some(bad) = self.suites.pop().and_then(|s| s.check()) {
                    keep(
                        &mut self.report.inconsistent,
                        &mut self.more_inconsistent,
                        bad,
                    );
                }
            }
            _ => {}
        }
    }

    /// The report at the end of the document, unless it was no JUnit or was cut short.
    fn finish(mut self) -> Result<Report, String> {
        if !self.saw_root {
            return Err("not a JUnit report: no <testsuites> or <testsuite>".into());
        }
        if self.depth != 0 {
            return Err("the report is cut short: elements are left open".into());
        }
        for (list, more, what) in [
            (
                &mut self.report.suite_failures,
                self.more_failures,
                "suite-level failures",
            ),
            (
                &mut self.report.inconsistent,
                self.more_inconsistent,
                "inconsistent suites",
            ),
        ] {
            if more > 0 {
                list.push(format!("and {more} more {what} (not listed)"));
            }
        }
        Ok(self.report)
    }
}

/// A JUnit report as quick-xml may read it, bounded: of each text, CDATA section or comment
/// only the first `JUNIT_TEXT_KEPT` bytes pass (a CDATA section or comment cut short is
/// closed again), the rest is dropped as it streams past; a tag or processing instruction
/// larger than `JUNIT_TAG` and any `<!` declaration but a comment or CDATA (a DTD) are
/// errors. So no event quick-xml reads is larger than those, whatever the file holds.
pub struct Trimmed<R> {
    inner: R,
    state: Lex,
    chunk: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

enum Lex {
    /// Character data: `n` bytes of it passed so far.
    Text {
        n: u64,
    },
    /// Just after `<`: what follows says which construct this is.
    Open {
        pre: Vec<u8>,
    },
    Tag {
        n: u64,
        quote: Option<u8>,
    },
    Pi {
        n: u64,
        prev: u8,
    },
    /// A comment (`-->` ends it) or CDATA section (`]]>`).
    Section {
        end: &'static [u8; 3],
        n: u64,
        last: [u8; 2],
        dropping: bool,
    },
}

impl<R: Read> Trimmed<R> {
    pub fn new(inner: R) -> Trimmed<R> {
        Trimmed {
            inner,
            state: Lex::Text { n: 0 },
            chunk: vec![0; 64 * 1024],
            out: Vec::new(),
            pos: 0,
            done: false,
        }
    }

    // Long because it is the lexer's state machine: one short arm per state, changing it in place.
    fn step(&mut self, b: u8) -> std::io::Result<()> {
        let keep = caps::JUNIT_TEXT_KEPT;
        let too_large = |what: &str| {
            std::io::Error::other(format!(
                "{what} larger than the {} limit",
                caps::human(caps::JUNIT_TAG)
            ))
        };
        match &mut self.state {
            Lex::Text { n } => {
                if b == b'<' {
                    self.out.push(b);
                    self.state = Lex::Open { pre: Vec::new() };
                } else if *n < keep {
                    self.out.push(b);
                    *n += 1;
                }
            }
            Lex::Open { pre } => {
                self.out.push(b);
                pre.push(b);
                let p = pre.as_slice();
                if p == b"?" {
                    self.state = Lex::Pi { n: 2, prev: 0 };
                } else if p[0] == b'!' {
                    if p == b"!--" {
                        self.state = Lex::Section {
                            end: b"-->",
                            n: 4,
                            last: [0; 2],
                            dropping: false,
                        };
                    } else if p == b"![CDATA[" {
                        self.state = Lex::Section {
                            end: b"]]>",
                            n: 9,
                            last: [0; 2],
                            dropping: false,
                        };
                    } else if !(b"!--".starts_with(p) || b"![CDATA[".starts_with(p)) {
                        return Err(std::io::Error::other(
                            "the report has a DTD or a declaration (<!...>): not accepted",
                        ));
                    }
                } else {
                    self.state = match b {
                        b'>' => Lex::Text { n: 0 },
                        b'"' | b'\'' => Lex::Tag {
                            n: 2,
                            quote: Some(b),
                        },
                        _ => Lex::Tag { n: 2, quote: None },
                    };
                }
            }
            Lex::Tag { n, quote } => {
                self.out.push(b);
                *n += 1;
                if *n > caps::JUNIT_TAG {
                    return Err(too_large("a tag"));
                }
                match *quote {
                    Some(q) if b == q => *quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => *quote = Some(b),
                    None if b == b'>' => self.state = Lex::Text { n: 0 },
                    None => {}
                }
            }
            Lex::Pi { n, prev } => {
                self.out.push(b);
                *n += 1;
                if *n > caps::JUNIT_TAG {
                    return Err(too_large("a processing instruction"));
                }
                if *prev == b'?' && b == b'>' {
                    self.state = Lex::Text { n: 0 };
                } else {
                    *prev = b;
                }
            }
            Lex::Section {
                end,
                n,
                last,
                dropping,
            } => {
                if last[..] == end[..2] && b == end[2] {
                    // Closed as it was, or closed again after what was dropped.
                    if *dropping {
                        self.out.extend_from_slice(&end[..]);
                    } else {
                        self.out.push(b);
                    }
                    self.state = Lex::Text { n: 0 };
                    return Ok(());
                }
                if *n < keep {
                    self.out.push(b);
                    *n += 1;
                } else {
                    *dropping = true;
                }
                *last = [last[1], b];
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Trimmed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.out.clear();
            self.pos = 0;
            if self.done {
                return Ok(0);
            }
            let mut chunk = std::mem::take(&mut self.chunk);
            let got = self.inner.read(&mut chunk);
            let n = match got {
                Ok(n) => n,
                Err(e) => {
                    self.chunk = chunk;
                    return Err(e);
                }
            };
            if n == 0 {
                self.done = true;
            }
            let stepped = chunk[..n].iter().try_for_each(|&b| self.step(b));
            self.chunk = chunk;
            stepped?;
        }
    }
}

fn suite_failure(kind: &[u8], message: &str) -> String {
    let m: String = message.trim().chars().take(300).collect();
    format!(
        "a suite-level <{}> outside any test case{}",
        String::from_utf8_lossy(kind),
        if m.is_empty() {
            String::new()
        } else {
            format!(": {m}")
        }
    )
}

/// JUnit's elements, whose names are case-sensitive as all XML names are.
const JUNIT: [&[u8]; 6] = [
    b"testsuites",
    b"testsuite",
    b"testcase",
    b"failure",
    b"error",
    b"skipped",
];

/// `<Failure>`, `<TESTCASE>`: not JUnit's elements, but surely meant as them; read as
/// unknown content they would hide a failure, so the report is not trusted.
fn junit_name(name: &[u8]) -> Result<(), String> {
    // `<j:failure>`: JUnit has no namespace; a prefixed JUnit name is as untrustworthy.
    if let Some(i) = name.iter().position(|&b| b == b':') {
        let local = &name[i + 1..];
        if JUNIT.iter().any(|j| j.eq_ignore_ascii_case(local)) {
            return Err(format!(
                "<{}> is not JUnit's <{}> (JUnit elements have no namespace)",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(local)
            ));
        }
    }
    match JUNIT
        .iter()
        .find(|j| j.eq_ignore_ascii_case(name) && **j != name)
    {
        Some(j) => Err(format!(
            "<{}> is not JUnit's <{}> (XML names are case-sensitive)",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(j)
        )),
        None => Ok(()),
    }
}

/// A `<failure>` or `<error>` in a test case: the worse outcome stays (an error over a
/// failure), and the first message.
fn fail(c: &mut Case, name: &[u8], e: &BytesStart) {
    let o = if name == b"failure" {
        Outcome::Failed
    } else {
        Outcome::Error
    };
    if c.outcome != Outcome::Error {
        c.outcome = o;
    }
    if c.message.is_none() {
        c.message = attr(e, b"message");
    }
}

fn case_from(e: &BytesStart) -> Case {
    // Some runners say it in a `status` attribute only (no <failure> child).
    let outcome = match attr(e, b"status").map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if matches!(s.as_str(), "failed" | "failure" | "fail") => Outcome::Failed,
        Some(s) if matches!(s.as_str(), "error" | "errored") => Outcome::Error,
        // Skipped by its status alone is not a test that ran (a <failure> still wins).
        Some(s) if matches!(s.as_str(), "skipped" | "skip" | "disabled") => Outcome::Skipped,
        _ => Outcome::Passed,
    };
    Case {
        name: attr(e, b"name").unwrap_or_default(),
        classname: attr(e, b"classname"),
        outcome,
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
    fn suite_level_failures_and_counts_that_disagree_are_reported() {
        let t = r#"<testsuites><testsuite name="e2e" tests="2" failures="0"><error message="BeforeSuite broke"/><testcase name="a"/><testcase name="b"><skipped/></testcase></testsuite></testsuites>"#;
        let r = parse_report(t.as_bytes()).unwrap();
        assert_eq!(r.cases.len(), 2);
        assert_eq!(r.suite_failures.len(), 1, "{r:?}");
        assert!(r.suite_failures[0].contains("BeforeSuite broke"));
        assert!(r.inconsistent.is_empty(), "{r:?}");
        let t = "<testsuite name=\"e2e\"><failure>etcd gone\nmore</failure></testsuite>";
        let r = parse_report(t.as_bytes()).unwrap();
        assert_eq!(
            r.suite_failures,
            vec!["a suite-level <failure> outside any test case: etcd gone"]
        );
        let t = r#"<testsuite name="e2e" tests="3" failures="12" errors="0"><testcase name="a"/><testcase name="b"/><testcase name="c"/></testsuite>"#;
        let r = parse_report(t.as_bytes()).unwrap();
        assert_eq!(r.inconsistent.len(), 1, "{r:?}");
        assert!(r.inconsistent[0].contains("failures=\"12\" but 0"), "{r:?}");
        let t = r#"<testsuites errors="1"><testsuite name="e2e" tests="9"><testcase name="a"/></testsuite></testsuites>"#;
        let r = parse_report(t.as_bytes()).unwrap();
        assert_eq!(r.inconsistent.len(), 2, "{r:?}");
        let t = r#"<testsuite name="e2e" tests="0" failures="0"/>"#;
        assert!(parse_report(t.as_bytes()).unwrap().inconsistent.is_empty());
        let t = r#"<testsuite name="e2e" tests="0" failures="2"/>"#;
        assert_eq!(parse_report(t.as_bytes()).unwrap().inconsistent.len(), 1);
        // The sample is consistent.
        let r = parse_report(E2E.as_bytes()).unwrap();
        assert!(
            r.inconsistent.is_empty() && r.suite_failures.is_empty(),
            "{r:?}"
        );
    }

    #[test]
    fn a_skipped_never_hides_a_failure() {
        for t in [
            r#"<testsuite><testcase name="a"><failure message="boom"/><skipped/></testcase></testsuite>"#,
            r#"<testsuite><testcase name="a"><failure message="boom"><skipped/></failure></testcase></testsuite>"#,
            r#"<testsuite><testcase name="a"><skipped/><failure message="boom"/></testcase></testsuite>"#,
            r#"<testsuite><testcase name="a" status="failed"/></testsuite>"#,
            r#"<testsuite><testcase name="a" status="FAILED"><skipped/></testcase></testsuite>"#,
        ] {
            let c = parse(t.as_bytes()).unwrap();
            assert_eq!(c[0].outcome, Outcome::Failed, "{t}");
        }
        let t = r#"<testsuite><testcase name="a" status="Error"></testcase><testcase name="b"><error message="x"/><failure/><skipped/></testcase></testsuite>"#;
        let c = parse(t.as_bytes()).unwrap();
        assert_eq!(c[0].outcome, Outcome::Error);
        assert_eq!(c[1].outcome, Outcome::Error);
        assert_eq!(c[1].message.as_deref(), Some("x"));
        let only_status = r#"<testsuite><testcase name="s" status="skipped"/><testcase name="f" status="skipped"><failure/></testcase></testsuite>"#;
        let cases = parse(only_status.as_bytes()).unwrap();
        assert_eq!(cases[0].outcome, Outcome::Skipped);
        assert_eq!(cases[1].outcome, Outcome::Failed);
        assert!(parse(
            r#"<testsuite xmlns:j="x"><testcase name="a"><j:failure/></testcase></testsuite>"#
                .as_bytes()
        )
        .is_err());
        let t = r#"<testsuite><testcase name="a" status="passed"/><testcase name="b" status="skipped"><skipped/></testcase></testsuite>"#;
        let c = parse(t.as_bytes()).unwrap();
        assert_eq!(c[0].outcome, Outcome::Passed);
        assert_eq!(c[1].outcome, Outcome::Skipped);
    }

    #[test]
    fn wrong_case_names_and_dtds_are_not_trusted() {
        for t in [
            r#"<testsuite><testcase name="a"><Failure message="boom"/></testcase></testsuite>"#,
            r#"<testsuite><testcase name="a"><ERROR>x</ERROR></testcase></testsuite>"#,
            r#"<testsuite><TestCase name="a"/></testsuite>"#,
            r#"<?xml version="1.0"?><!DOCTYPE testsuite [<!ENTITY x "y">]><testsuite><testcase name="&x;"/></testsuite>"#,
            r#"<!DOCTYPE testsuite SYSTEM "http://example.com/x.dtd"><testsuite/>"#,
        ] {
            assert!(parse(t.as_bytes()).is_err(), "{t}");
        }
        // Other content of a test case is no concern of JUnit's.
        let t = r#"<testsuite><testcase name="a"><system-out>Failure</system-out><properties/></testcase></testsuite>"#;
        assert_eq!(parse(t.as_bytes()).unwrap()[0].outcome, Outcome::Passed);
    }

    /// A reader that makes `head`, then `n` bytes of `fill`, then `tail`, never holding them.
    struct Lazy {
        head: Vec<u8>,
        fill: u8,
        n: u64,
        tail: Vec<u8>,
        served: u64,
    }

    impl Read for Lazy {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let total = self.head.len() as u64 + self.n + self.tail.len() as u64;
            let mut i = 0;
            while i < buf.len() && self.served < total {
                let at = self.served;
                let h = self.head.len() as u64;
                buf[i] = if at < h {
                    self.head[at as usize]
                } else if at < h + self.n {
                    self.fill
                } else {
                    self.tail[(at - h - self.n) as usize]
                };
                i += 1;
                self.served += 1;
            }
            Ok(i)
        }
    }

    fn lazy(head: &str, fill: u8, n: u64, tail: &str) -> Lazy {
        Lazy {
            head: head.as_bytes().to_vec(),
            fill,
            n,
            tail: tail.as_bytes().to_vec(),
            served: 0,
        }
    }

    #[test]
    fn a_huge_failure_text_streams_past_and_its_first_line_is_kept() {
        // 32 MiB of failure text (and of CDATA, and of a comment): what reaches the XML reader
        // is at most the kept part of each; the case is FAILED with the text's first line.
        let n = 32 * 1024 * 1024;
        for (open, close) in [("", ""), ("<![CDATA[", "]]>"), ("<!--", "-->")] {
            let doc = lazy(
                &format!("<testsuite><testcase name=\"big\"><failure>boom: the first line\n{open}"),
                b'x',
                n,
                &format!("{close}</failure></testcase><testcase name=\"after\"/></testsuite>"),
            );
            let mut out = Trimmed::new(doc);
            let mut passed = 0u64;
            let mut buf = vec![0; 1 << 16];
            loop {
                let k = out.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                passed += k as u64;
            }
            assert!(
                passed < caps::JUNIT_TEXT_KEPT + 4096,
                "{open}: {passed} bytes passed"
            );
            let doc = lazy(
                &format!("<testsuite><testcase name=\"big\"><failure>boom: the first line\n{open}"),
                b'x',
                n,
                &format!("{close}</failure></testcase><testcase name=\"after\"/></testsuite>"),
            );
            let cases = parse(doc).unwrap();
            assert_eq!(cases.len(), 2, "{open}");
            assert_eq!(cases[0].outcome, Outcome::Failed);
            let m = cases[0].message.as_deref().unwrap();
            assert!(
                m.starts_with("boom: the first line") && m.len() < 80_000,
                "{open}"
            );
            assert_eq!(cases[1].outcome, Outcome::Passed);
        }
    }

    #[test]
    fn huge_tags_deep_nesting_and_declarations_are_errors() {
        let tag = lazy(
            "<testsuite><testcase name=\"",
            b'x',
            2 * caps::JUNIT_TAG,
            "\"/></testsuite>",
        );
        let e = parse(tag).unwrap_err();
        assert!(e.contains("a tag larger than the 1 MiB limit"), "{e}");
        let deep = format!(
            "{}{}",
            "<testsuite>".repeat(caps::JUNIT_DEPTH + 1),
            "</testsuite>".repeat(caps::JUNIT_DEPTH + 1)
        );
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.contains("deeper than the limit of 256"), "{e}");
        let e = parse("<!DOCTYPE x><testsuite/>".as_bytes()).unwrap_err();
        assert!(e.contains("DTD"), "{e}");
        // A `>` in an attribute value, or a `<` in a CDATA section, is no boundary.
        let t = r#"<testsuite><testcase name="a > b"><failure><![CDATA[x < y]]></failure></testcase></testsuite>"#;
        let c = parse(t.as_bytes()).unwrap();
        assert_eq!(c[0].name, "a > b");
        assert_eq!(c[0].message.as_deref(), Some("x < y"));
        // Suite-level findings past the cap are counted, not kept.
        let mut t = String::from("<testsuite>");
        for i in 0..(caps::JUNIT_FINDINGS + 7) {
            t.push_str(&format!("<error message=\"broke {i}\"/>"));
        }
        t.push_str("</testsuite>");
        let r = parse_report(t.as_bytes()).unwrap();
        assert_eq!(r.suite_failures.len(), caps::JUNIT_FINDINGS + 1);
        assert_eq!(
            r.suite_failures.last().unwrap(),
            "and 7 more suite-level failures (not listed)"
        );
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
