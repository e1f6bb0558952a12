//! A Greenwave-shaped decision over a package's gating.yaml, ResultsDB results and WaiverDB
//! waivers, with Greenwave's semantics: the latest result per test case, scenario,
//! architecture and variant; PASSED and INFO pass, QUEUED and RUNNING are missing (and only
//! waiting), ERROR errs, anything else fails; identical rules are checked once; waivers turn
//! unsatisfied requirements into `...-waived` ones; its summary wording.
//!
//! Age is the results' and waivers' own, never their order in a list: ResultsDB's `GET
//! /results` and WaiverDB's `GET /waivers/` answer newest first, a file may hold either
//! order, so both are sorted by submit time (a waiver's timestamp), then id, before anything
//! is decided (`by_age`). Reversing a results or waivers list never changes a decision
//! (`gating::tests`, every decision there is also made on the reversed lists).
//!
//! Subject types are Greenwave's, aliases included (`subject.rs`): a `brew-build` result
//! counts for a `koji_build` subject.
//!
//! Deliberate differences, each a quirk of the real service the reference lists: a waiver
//! is made obsolete only by a newer one for the same subject, test case, scenario, user AND
//! product version (WaiverDB's list keeps the newest per subject/test case/scenario
//! regardless of product version, so a newer fedora-40 waiver hides a fedora-41 one: fci
//! asks WaiverDB for the obsolete ones too and decides itself); a result found by both
//! `item` and `original_spec_nvr` counts once (Greenwave counts it twice); and
//! `applicable_policies` names the gating.yaml's policies (`id`, or `gating.yaml#N` for an
//! untitled N-th document), since offline there is no server policy around them.

use super::policy::{Policy, Rule};
use super::subject;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub struct Request {
    pub decision_contexts: Vec<String>,
    pub product_version: String,
    pub subject_type: String,
    pub subject_identifier: String,
}

/// One ResultsDB result, from a `GET /results` item or a `POST /results` body.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub id: Value,
    pub outcome: String,
    pub testcase: String,
    pub scenario: Option<String>,
    pub system_architecture: Option<String>,
    pub system_variant: Option<String>,
    /// When ResultsDB says it was submitted (`None`: the input did not say).
    pub submit_time: Option<chrono::NaiveDateTime>,
    /// Every data key's values, for matching the subject (`subject::matches`).
    data: BTreeMap<String, Vec<String>>,
}

/// An id as ResultsDB and WaiverDB give it (a number, or a numeric string), for ordering:
/// absent first, then numbers, then other strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdKey {
    None,
    Num(u64),
    Text(String),
}

impl IdKey {
    fn of(v: &Value) -> IdKey {
        match v {
            Value::Number(n) => n.as_u64().map_or(IdKey::Text(n.to_string()), IdKey::Num),
            Value::String(s) => s
                .trim()
                .parse()
                .map_or_else(|_| IdKey::Text(s.clone()), IdKey::Num),
            _ => IdKey::None,
        }
    }
}

/// A ResultsDB `submit_time` (or a WaiverDB `timestamp`) as UTC: integer milliseconds since
/// the epoch, a numeric string of them, `%Y-%m-%dT%H:%M:%S(.%f)` with or without `Z` or an
/// offset (ResultsDB answers UTC without one), or a space for the `T`.
pub fn parse_time(v: &Value) -> Option<chrono::NaiveDateTime> {
    let ms = |n: i64| chrono::DateTime::from_timestamp_millis(n).map(|d| d.naive_utc());
    match v {
        Value::Number(n) => n.as_i64().and_then(ms),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return ms(n);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.naive_utc())
                .ok()
                .or_else(|| {
                    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"]
                        .iter()
                        .find_map(|f| chrono::DateTime::parse_from_str(s, f).ok())
                        .map(|d| d.naive_utc())
                })
                .or_else(|| {
                    let bare = s.trim_end_matches('Z');
                    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                        .iter()
                        .find_map(|f| chrono::NaiveDateTime::parse_from_str(bare, f).ok())
                })
        }
        _ => None,
    }
}

/// Oldest first by (time, id): the order a decision reads results and waivers in, whatever
/// order the input had. Items that say neither keep their relative input order (stable).
fn by_age<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> (Option<chrono::NaiveDateTime>, IdKey),
) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(|x| key(x));
    v
}

/// The values of a ResultsDB `data` key: a list (GET) or a scalar (POST).
fn data_values(data: &Value, key: &str) -> Vec<String> {
    match data.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl TestResult {
    pub fn from_json(v: &Value) -> Result<TestResult, String> {
        let outcome = v
            .get("outcome")
            .and_then(Value::as_str)
            .ok_or("a result without `outcome`")?
            .to_ascii_uppercase();
        let testcase = match v.get("testcase") {
            Some(Value::String(s)) => s.clone(),
            Some(t) => t
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a result whose `testcase` has no `name`")?
                .to_string(),
            None => return Err("a result without `testcase`".into()),
        };
        let data = v.get("data").cloned().unwrap_or(Value::Null);
        let first = |k: &str| data_values(&data, k).into_iter().next();
        let all = data
            .as_object()
            .map(|o| {
                o.keys()
                    .map(|k| (k.clone(), data_values(&data, k)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(TestResult {
            id: v.get("id").cloned().unwrap_or(Value::Null),
            outcome,
            testcase,
            scenario: first("scenario"),
            system_architecture: first("system_architecture"),
            system_variant: first("system_variant"),
            submit_time: v.get("submit_time").and_then(parse_time),
            data: all,
        })
    }

    /// Whether the result is about this subject, as Greenwave's queries for its type find it.
    pub fn is_about(&self, subject_type: &str, identifier: &str) -> bool {
        subject::matches(subject_type, identifier, &|k| {
            self.data.get(k).cloned().unwrap_or_default()
        })
    }

    fn age(&self) -> (Option<chrono::NaiveDateTime>, IdKey) {
        (self.submit_time, IdKey::of(&self.id))
    }
}

/// One WaiverDB waiver.
#[derive(Clone, Debug)]
pub struct Waiver {
    pub id: Value,
    pub subject_type: String,
    pub subject_identifier: String,
    pub testcase: String,
    pub scenario: Option<String>,
    pub product_version: String,
    pub waived: bool,
    /// Who waived (WaiverDB's `username`); `None` when the input did not say.
    pub username: Option<String>,
    /// WaiverDB's `timestamp`.
    pub timestamp: Option<chrono::NaiveDateTime>,
}

impl Waiver {
    pub fn from_json(v: &Value) -> Result<Waiver, String> {
        let s = |k: &str| -> Result<String, String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("a waiver without `{k}`"))
        };
        Ok(Waiver {
            id: v.get("id").cloned().unwrap_or(Value::Null),
            subject_type: s("subject_type")?,
            subject_identifier: s("subject_identifier")?,
            testcase: s("testcase")?,
            scenario: v
                .get("scenario")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from),
            product_version: s("product_version")?,
            // WaiverDB's default is true when the field is absent; anything but a JSON
            // boolean (`0`, `"false"`, `"no"`) is no waiver: it never waives by accident.
            waived: match v.get("waived") {
                None => true,
                Some(w) => w.as_bool() == Some(true),
            },
            username: v.get("username").and_then(Value::as_str).map(String::from),
            timestamp: v.get("timestamp").and_then(parse_time),
        })
    }

    fn age(&self) -> (Option<chrono::NaiveDateTime>, IdKey) {
        (self.timestamp, IdKey::of(&self.id))
    }
}

/// `fnmatch` as Greenwave uses it (Python's `fnmatch.fnmatch` on POSIX): `*`, `?` and `[...]`
/// (with `!` negation), case-sensitive, no escape character. Proven the same as Python's by
/// `gating::tests::fnmatch_agrees_with_pythons_on_generated_patterns`. Hand-written because
/// no crate is: `glob::Pattern` refuses an unmatched `[` (Python reads it as itself),
/// `globset` takes `\` as an escape and `{a,b}` as alternation, `wildmatch` has no `[...]`.
/// Iterative, remembering only the last `*` (O(pattern × text), no recursion): a pattern in
/// a gating.yaml is input.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // One pattern item at p[i]: its length, and whether it matches the character c.
    let item = |i: usize, c: char| -> (usize, bool) {
        match p[i] {
            '?' => (1, true),
            '[' => {
                // As Python's: a `]` right after `[` or `[!` is a member, not the end.
                let neg = p.get(i + 1) == Some(&'!');
                let first = i + 1 + usize::from(neg);
                let from = first + usize::from(p.get(first) == Some(&']'));
                let Some(close) = p[from.min(p.len())..].iter().position(|x| *x == ']') else {
                    return (1, c == '[');
                };
                let close = from + close;
                let set = &p[first..close];
                let mut hit = false;
                let mut k = 0;
                while k < set.len() {
                    if k + 2 < set.len() && set[k + 1] == '-' {
                        hit |= set[k] <= c && c <= set[k + 2];
                        k += 3;
                    } else {
                        hit |= set[k] == c;
                        k += 1;
                    }
                }
                (close + 1 - i, hit != neg)
            }
            x => (1, x == c),
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        if pi < p.len() {
            let (len, ok) = item(pi, t[ti]);
            if ok {
                pi += len;
                ti += 1;
                continue;
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The package name of an NVR (`name-version-release`).
fn nvr_name(nvr: &str) -> &str {
    let mut parts = nvr.rsplitn(3, '-');
    let (_r, _v) = (parts.next(), parts.next());
    parts.next().unwrap_or(nvr)
}

/// A requirement, and whether it is satisfied.
struct Answer {
    json: Map<String, Value>,
    satisfied: bool,
    /// A QUEUED or RUNNING result: only waiting (reported as missing, counted as incomplete).
    incomplete: bool,
}

/// A requirement only waiting for a QUEUED or RUNNING result (which may have no id).
fn has_result(a: &Answer) -> bool {
    a.incomplete
}

fn kind(a: &Answer) -> &str {
    a.json.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Whether a rule applies at `now` (RFC 3339 or a bare date, UTC).
fn in_window(rule: &Rule, now: chrono::DateTime<chrono::Utc>) -> bool {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&chrono::Utc))
            .ok()
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc())
            })
    };
    let since = rule.valid_since.as_deref().and_then(parse);
    let until = rule.valid_until.as_deref().and_then(parse);
    since.is_none_or(|s| now >= s) && until.is_none_or(|u| now < u)
}

/// The decision, as Greenwave's `POST /api/v1.0/decision` answers it (keys sorted).
pub fn decide(
    policies: &Result<Vec<Policy>, String>,
    source: &str,
    req: &Request,
    results: &[TestResult],
    waivers: &[Waiver],
) -> Value {
    // Greenwave's request for an alias is about the type itself (`brew-build`: `koji_build`).
    let canonical = Request {
        decision_contexts: req.decision_contexts.clone(),
        product_version: req.product_version.clone(),
        subject_type: subject::canonical(&req.subject_type).to_string(),
        subject_identifier: req.subject_identifier.clone(),
    };
    let req = &canonical;
    let results = by_age(results, TestResult::age);
    let waivers = by_age(waivers, Waiver::age);
    let subject = |m: &mut Map<String, Value>| {
        m.insert("subject_type".into(), json!(req.subject_type));
        m.insert("subject_identifier".into(), json!(req.subject_identifier));
    };
    let item = subject::to_dict(&req.subject_type, &req.subject_identifier);
    let mut answers: Vec<Answer> = Vec::new();
    let mut applicable = Vec::new();
    match policies {
        Err(details) => {
            let mut m = Map::new();
            m.insert("type".into(), json!("invalid-gating-yaml"));
            m.insert("testcase".into(), json!("invalid-gating-yaml"));
            subject(&mut m);
            m.insert("scenario".into(), Value::Null);
            m.insert("source".into(), json!(source));
            m.insert("details".into(), json!(details));
            answers.push(Answer {
                json: m,
                satisfied: false,
                incomplete: false,
            });
        }
        Ok(policies) => apply_policies(
            policies,
            source,
            req,
            &results,
            &item,
            &mut answers,
            &mut applicable,
        ),
    }
    waive(&mut answers, &waivers, req);
    let summary = summarize(&answers);
    let satisfied = answers.iter().all(|a| a.satisfied);
    let waiting: Vec<Value> = answers
        .iter()
        .filter(|a| kind(a) == "test-result-missing" && has_result(a))
        .map(|a| a.json["testcase"].clone())
        .collect();
    let (sat, unsat): (Vec<Answer>, Vec<Answer>) = answers.into_iter().partition(|a| a.satisfied);
    let list = |v: Vec<Answer>| Value::Array(v.into_iter().map(|a| sorted(a.json)).collect());
    let mut out = Map::new();
    out.insert("applicable_policies".into(), json!(applicable));
    // fci's addition: requirements that are only waiting for a QUEUED or RUNNING result.
    out.insert("fci_waiting_for".into(), Value::Array(waiting));
    out.insert("policies_satisfied".into(), json!(satisfied));
    out.insert("satisfied_requirements".into(), list(sat));
    out.insert("summary".into(), json!(summary));
    out.insert("unsatisfied_requirements".into(), list(unsat));
    Value::Object(out)
}

/// The answers of the policies that apply to the request (each rule checked once, within
/// its window, against the results for the subject), and the names of those policies.
fn apply_policies(
    policies: &[Policy],
    source: &str,
    req: &Request,
    results: &[TestResult],
    item: &Value,
    answers: &mut Vec<Answer>,
    applicable: &mut Vec<String>,
) {
    let mine: Vec<&TestResult> = results
        .iter()
        .filter(|r| r.is_about(&req.subject_type, &req.subject_identifier))
        .collect();
    let now = chrono::Utc::now();
    let mut checked: Vec<(String, Option<String>)> = Vec::new();
    for (n, p) in policies.iter().enumerate() {
        let applies = p
            .decision_contexts
            .iter()
            .any(|c| req.decision_contexts.contains(c))
            && p.product_versions
                .iter()
                .any(|pv| fnmatch(pv, &req.product_version))
            && p.subject_types
                .iter()
                .any(|t| subject::policy_names(t, &req.subject_type));
        if !applies {
            continue;
        }
        let name =
            p.id.clone()
                .unwrap_or_else(|| format!("gating.yaml#{}", n + 1));
        applicable.push(name.clone());
        let package = nvr_name(&req.subject_identifier);
        if p.excluded_packages.iter().any(|g| fnmatch(g, package)) {
            let mut m = Map::new();
            m.insert("type".into(), json!("excluded"));
            m.insert("subject_identifier".into(), json!(req.subject_identifier));
            m.insert("policy".into(), json!(p.id));
            m.insert("source".into(), json!(source));
            answers.push(Answer {
                json: m,
                satisfied: true,
                incomplete: false,
            });
            continue;
        }
        if !p.packages.is_empty() && !p.packages.iter().any(|g| fnmatch(g, package)) {
            continue;
        }
        for rule in &p.rules {
            let key = (rule.test_case_name.clone(), rule.scenario.clone());
            if !in_window(rule, now) || checked.contains(&key) {
                continue;
            }
            checked.push(key);
            answers.extend(check_rule(rule, &mine, source, req, item));
        }
    }
}

/// Keys sorted at every level, as Greenwave's JSON answers have them.
fn sorted(m: Map<String, Value>) -> Value {
    let mut keys: Vec<(String, Value)> = m
        .into_iter()
        .map(|(k, v)| match v {
            Value::Object(o) => (k, sorted(o)),
            v => (k, v),
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(keys.into_iter().collect())
}

fn check_rule(
    rule: &Rule,
    results: &[&TestResult],
    source: &str,
    req: &Request,
    item: &Value,
) -> Vec<Answer> {
    // The latest result per scenario, architecture and variant (results come oldest first).
    let mut latest: Vec<(usize, &TestResult)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if r.testcase != rule.test_case_name {
            continue;
        }
        let group = |x: &TestResult| {
            (
                x.scenario.clone(),
                x.system_architecture.clone(),
                x.system_variant.clone(),
            )
        };
        latest.retain(|(_, l)| group(l) != group(r));
        latest.push((i, r));
    }
    latest.retain(|(_, r)| rule.scenario.is_none() || r.scenario == rule.scenario);
    latest.sort_by_key(|l| std::cmp::Reverse(l.0));
    let base = |ty: &str| {
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("testcase".into(), json!(rule.test_case_name));
        m.insert("subject_type".into(), json!(req.subject_type));
        m.insert("subject_identifier".into(), json!(req.subject_identifier));
        m.insert("source".into(), json!(source));
        m
    };
    if latest.is_empty() {
        let mut m = base("test-result-missing");
        m.insert("scenario".into(), json!(rule.scenario));
        m.insert("item".into(), item.clone());
        return vec![Answer {
            json: m,
            satisfied: false,
            incomplete: false,
        }];
    }
    latest
        .into_iter()
        .map(|(_, r)| {
            let (ty, satisfied) = match r.outcome.as_str() {
                "PASSED" | "INFO" => ("test-result-passed", true),
                "QUEUED" | "RUNNING" => ("test-result-missing", false),
                "ERROR" => ("test-result-errored", false),
                _ => ("test-result-failed", false),
            };
            let mut m = base(ty);
            m.insert("result_id".into(), r.id.clone());
            m.insert("scenario".into(), json!(r.scenario));
            m.insert("system_architecture".into(), json!(r.system_architecture));
            m.insert("system_variant".into(), json!(r.system_variant));
            if !satisfied {
                m.insert("item".into(), item.clone());
            }
            if ty == "test-result-errored" {
                m.insert("error_reason".into(), Value::Null);
            }
            Answer {
                json: m,
                satisfied,
                incomplete: matches!(r.outcome.as_str(), "QUEUED" | "RUNNING"),
            }
        })
        .collect()
}

/// Applies the waivers (oldest first) to the unsatisfied answers, as WaiverDB and Greenwave
/// do: a newer waiver for the same subject, test case, scenario, user and product version
/// makes the older ones obsolete, so `waived: false` revokes. A waived gating.yaml problem
/// disappears. (WaiverDB's own list drops obsolete waivers regardless of product version, a
/// quirk fci does not copy: a fedora-40 waiver never hides a fedora-41 one here.)
fn waive(answers: &mut Vec<Answer>, waivers: &[Waiver], req: &Request) {
    let mut effective: Vec<&Waiver> = Vec::new();
    for w in waivers.iter().filter(|w| {
        subject::canonical(&w.subject_type) == req.subject_type
            && w.subject_identifier == req.subject_identifier
            && w.product_version == req.product_version
    }) {
        effective.retain(|e| {
            !(e.testcase == w.testcase && e.scenario == w.scenario && e.username == w.username)
        });
        effective.push(w);
    }
    effective.retain(|w| w.waived);
    let mut drop = Vec::new();
    for (i, a) in answers.iter_mut().enumerate() {
        if a.satisfied {
            continue;
        }
        let testcase = a.json.get("testcase").and_then(Value::as_str).unwrap_or("");
        let scenario = a.json.get("scenario").and_then(Value::as_str);
        let Some(w) = effective.iter().rev().find(|w| {
            w.testcase == testcase && (w.scenario.is_none() || w.scenario.as_deref() == scenario)
        }) else {
            continue;
        };
        if kind(a) == "invalid-gating-yaml" {
            drop.push(i);
            continue;
        }
        let ty = format!("{}-waived", kind(a));
        a.json.insert("type".into(), json!(ty));
        a.json.remove("item");
        a.json.insert("waiver_id".into(), w.id.clone());
        a.satisfied = true;
    }
    for i in drop.into_iter().rev() {
        answers.remove(i);
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summarize(answers: &[Answer]) -> String {
    let problems = answers
        .iter()
        .filter(|a| kind(a) == "invalid-gating-yaml")
        .count();
    let tests: Vec<&Answer> = answers
        .iter()
        .filter(|a| !matches!(kind(a), "invalid-gating-yaml" | "excluded"))
        .collect();
    let count = |f: &dyn Fn(&Answer) -> bool| tests.iter().filter(|a| f(a)).count();
    let missing = count(&|a| kind(a) == "test-result-missing" && !has_result(a));
    let incomplete = count(&|a| kind(a) == "test-result-missing" && has_result(a));
    let errored = count(&|a| kind(a) == "test-result-errored");
    let failed = count(&|a| kind(a) == "test-result-failed");
    let mut parts = Vec::new();
    if problems > 0 {
        parts.push(format!(
            "{} due to invalid remote rule file",
            plural(problems, "error", "errors")
        ));
    }
    if missing + incomplete + errored + failed > 0 {
        let mut counts = Vec::new();
        if missing > 0 {
            counts.push(format!("{} missing", plural(missing, "result", "results")));
        }
        if errored > 0 {
            counts.push(format!("{} errored", plural(errored, "test", "tests")));
        }
        if failed > 0 {
            counts.push(format!("{} failed", plural(failed, "test", "tests")));
        }
        if incomplete > 0 {
            counts.push(format!(
                "{} incomplete",
                plural(incomplete, "test", "tests")
            ));
        }
        parts.push(format!(
            "Of {} required {}, {}",
            tests.len(),
            if tests.len() == 1 { "test" } else { "tests" },
            counts.join(", ")
        ));
    }
    if !parts.is_empty() {
        return parts.join(". ");
    }
    if tests.is_empty() {
        "No tests are required".into()
    } else {
        format!(
            "All required tests ({} total) have passed or been waived",
            tests.len()
        )
    }
}
