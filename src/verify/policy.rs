//! What `fci verify` asks of a verified chain besides its links: signed test results that
//! passed, and a satisfied gate. Default: the build's %check, the package's tests, the
//! image's smoke test, and the report's gating decision (`--require` chooses).

use super::chain::{pick, Node};
use super::evidence::{Evidence, What};
use serde::Serialize;

/// The rules `--require` knows, with what each is about.
pub const RULES: [&str; 6] = ["check", "test", "integrate", "conform", "smoke", "gate"];
pub const DEFAULT: &str = "check,test,smoke,gate";

#[derive(Serialize, Debug, Clone)]
pub struct Verdict {
    pub rule: String,
    /// ok, failed
    pub status: &'static str,
    pub why: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<String>,
}

/// The rules of a `--require` value: comma-separated names of `RULES`, or `none`.
pub fn parse(s: &str) -> Result<Vec<String>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    if s.trim().is_empty() {
        // An empty value is a mistake more often than a wish for no policy: say `none`.
        return Err("no rules named (an empty policy is `none`)".into());
    }
    let mut out = Vec::new();
    for r in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !RULES.contains(&r) {
            return Err(format!(
                "unknown rule `{r}` (rules: {}, or none)",
                RULES.join(", ")
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    Ok(out)
}

/// The suite a rule asks about, and which kind of link it speaks of.
fn suite(rule: &str) -> (&'static str, &'static str) {
    match rule {
        "check" => ("build.check", "rpm"),
        "test" => ("test", "rpm"),
        "integrate" => ("integrate", "ostree-commit"),
        "conform" => ("conform", "ostree-commit"),
        _ => ("smoke", "image"),
    }
}

fn names(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Checks `rules` against the chain rooted at `chain` (its target first). With `gate`
/// required, the test results the other rules rest on must be among those the gating
/// decision names (its `inputAttestations`): a manifest cannot swap in another run's PASSED
/// result for one the decision saw FAILED, nor leave the later one out.
pub fn check(
    rules: &[String],
    chain: &Node,
    evidence: &[Evidence],
    run: Option<&str>,
) -> Vec<Verdict> {
    let mut verdicts = rules_alone(rules, chain, evidence, run);
    if !rules.iter().any(|r| r == "gate") {
        return verdicts;
    }
    let target = chain.sha256().unwrap_or_default();
    let inputs: Vec<&str> = pick(evidence, run, target, |w| *w == What::Gate)
        .map(|g| {
            g.statement["predicate"]["inputAttestations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["digest"]["sha256"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for v in verdicts
        .iter_mut()
        .filter(|v| v.status == "ok" && v.rule != "gate")
    {
        let outside = v.attestations.iter().find(|f| {
            evidence
                .iter()
                .find(|e| &e.file == *f)
                .is_some_and(|e| !inputs.contains(&e.sha256.as_str()))
        });
        if let Some(f) = outside {
            v.why = format!("{f} is not one of the attestations the gating decision was made on");
            v.status = "failed";
        }
    }
    verdicts
}

fn rules_alone(
    rules: &[String],
    chain: &Node,
    evidence: &[Evidence],
    run: Option<&str>,
) -> Vec<Verdict> {
    let nodes = chain.walk();
    rules
        .iter()
        .map(|rule| {
            if rule == "gate" {
                return gate(chain, evidence, run);
            }
            let (suite, kind) = suite(rule);
            let subjects: Vec<&Node> = nodes
                .iter()
                .copied()
                .filter(|n| n.kind == kind && n.made_by.is_some())
                .collect();
            if subjects.is_empty() {
                // Required, and nothing to be about: never a vacuous pass (a manifest that
                // leaves the image out must not skip the smoke test).
                return Verdict {
                    rule: rule.clone(),
                    status: "failed",
                    why: format!(
                        "the chain has no {kind} for {suite} to be about (--require names the rules that fit what is verified)"
                    ),
                    attestations: Vec::new(),
                };
            }
            let mut used = Vec::new();
            let mut passed = Vec::new();
            for n in &subjects {
                let sha = n.sha256().unwrap_or_default();
                let found = pick(evidence, run, sha, |w| *w == What::TestResult(suite.into()));
                let Some(e) = found else {
                    return Verdict {
                        rule: rule.clone(),
                        status: "failed",
                        why: format!("no signed {suite} result about {} {}", n.kind, n.name),
                        attestations: used,
                    };
                };
                if !used.contains(&e.file) {
                    used.push(e.file.clone());
                }
                // Another run's result about the same bytes that did not pass, no older than
                // this one (a record reused from the cache keeps its run's times): the verdict
                // is not the evidence's to pick. A run's own manifest (-m) has one of each.
                let conflict = evidence.iter().find(|o| {
                    o.what == What::TestResult(suite.into())
                        && o.about(sha)
                        && o.run != e.run
                        && o.time >= e.time
                        && o.statement["predicate"]["result"] != "PASSED"
                });
                if let Some(o) = conflict {
                    return Verdict {
                        rule: rule.clone(),
                        status: "failed",
                        why: format!(
                            "{suite} results about {} {} disagree: run {} says {} ({}); verify with -m the run's manifest",
                            n.kind,
                            n.name,
                            o.run.as_deref().unwrap_or("?"),
                            o.statement["predicate"]["result"].as_str().unwrap_or("?"),
                            o.file
                        ),
                        attestations: used,
                    };
                }
                let p = &e.statement["predicate"];
                // The package's tests are the dist-git commit's: the tree they ran from is the
                // checkout the RPM's build provenance names (not `--tests-from` elsewhere).
                if suite == "test" {
                    if let Some(why) = tests_not_from_dist_git(evidence, run, sha, e) {
                        return Verdict {
                            rule: rule.clone(),
                            status: "failed",
                            why: format!("test about {} {}: {why}", n.kind, n.name),
                            attestations: used,
                        };
                    }
                }
                if p["result"] != "PASSED" {
                    return Verdict {
                        rule: rule.clone(),
                        status: "failed",
                        why: format!(
                            "{suite} {} about {} {}{}",
                            p["result"].as_str().unwrap_or("has no result"),
                            n.kind,
                            n.name,
                            match names(&p["failedTests"]) {
                                f if f.is_empty() => String::new(),
                                f => format!(": failed {f}"),
                            }
                        ),
                        attestations: used,
                    };
                }
                for t in names(&p["passedTests"])
                    .split(", ")
                    .filter(|t| !t.is_empty())
                {
                    if !passed.iter().any(|p| p == t) {
                        passed.push(t.to_string());
                    }
                }
            }
            Verdict {
                rule: rule.clone(),
                status: "ok",
                why: format!("{suite} passed ({})", passed.join(", ")),
                attestations: used,
            }
        })
        .collect()
}

/// Why the tests of test result `e` about `sha` are not the dist-git checkout's its build
/// provenance names, if they are not.
fn tests_not_from_dist_git(
    evidence: &[Evidence],
    run: Option<&str>,
    sha: &str,
    e: &Evidence,
) -> Option<String> {
    use crate::provenance::statement::{DIST_GIT_TREE, TESTS};
    let ran = e.statement["predicate"]["configuration"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == TESTS)
        .and_then(|c| c["digest"]["sha256"].as_str());
    let build = pick(evidence, run, sha, |w| matches!(w, What::Provenance(_)));
    let checkout = build.and_then(|b| {
        b.statement["predicate"]["runDetails"]["byproducts"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == DIST_GIT_TREE)?["digest"]["sha256"]
            .as_str()
    });
    match (ran, checkout) {
        (Some(r), Some(c)) if r == c => None,
        (Some(r), Some(c)) => Some(format!(
            "its tests (tree {}) are not the dist-git checkout's (tree {}): they came from elsewhere",
            super::chain::short(r),
            super::chain::short(c)
        )),
        (None, _) => Some("it does not say which tests ran".into()),
        (_, None) => Some("the build provenance names no dist-git checkout".into()),
    }
}

/// The report's gating decision about the target.
fn gate(chain: &Node, evidence: &[Evidence], run: Option<&str>) -> Verdict {
    let sha = chain.sha256().unwrap_or_default();
    let Some(e) = pick(evidence, run, sha, |w| *w == What::Gate) else {
        return Verdict {
            rule: "gate".into(),
            status: "failed",
            why: format!(
                "no signed gating decision about {} {}",
                chain.kind, chain.name
            ),
            attestations: Vec::new(),
        };
    };
    let p = &e.statement["predicate"];
    let summary = p["decision"]["summary"].as_str().unwrap_or_default();
    let passed = p["verificationResult"] == "PASSED";
    Verdict {
        rule: "gate".into(),
        status: if passed { "ok" } else { "failed" },
        why: format!(
            "gating decision {}{}",
            p["verificationResult"].as_str().unwrap_or("missing"),
            if summary.is_empty() {
                String::new()
            } else {
                format!(": {summary}")
            }
        ),
        attestations: vec![e.file.clone()],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_parse_and_unknown_ones_are_named() {
        assert_eq!(
            super::parse("check, test,check").unwrap(),
            ["check", "test"]
        );
        assert!(super::parse("none").unwrap().is_empty());
        assert!(super::parse("chek")
            .unwrap_err()
            .contains("unknown rule `chek`"));
    }
}
