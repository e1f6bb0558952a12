//! The in-toto Statement (v1) fci writes for a stage's record: what the stage made or tested
//! (`subject`, by name and sha256) and a predicate saying how.
//!
//! - build, compose, image: SLSA Provenance v1 (`buildDefinition`: the build type, the
//!   parameters a packager chose, the resolved dependencies: the dist-git repository and
//!   commit, the base commit, the RPMs layered, the commit imaged; `runDetails`: fci as the
//!   builder with its version, the run id as the invocation, the record's start and end);
//! - test, integrate, smoke, conform: the in-toto test-result predicate v0.1 (`result`,
//!   `passedTests`, `warnedTests`, `failedTests`, `configuration`), whose subject is what was
//!   tested (the RPMs, the composed commit, the image), not the logs the stage wrote.
//!
//! A stage that did no work (SKIPPED, or one with nothing to say of) has no statement.

use crate::manifest::{
    Artifact, ArtifactKind, Manifest, Outcome, StageName, StageRecord, TestResult,
};
use serde_json::{json, Value};

pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
pub const TEST_RESULT_V0_1: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// A stage's build type: a tag URI (RFC 4151), fci's own and versioned, as SLSA asks of one.
pub fn build_type(stage: StageName) -> String {
    format!("tag:fci,2026:build-type/{}/v1", stage.as_str())
}

fn descriptor(a: &Artifact) -> Value {
    json!({"name": a.name, "digest": {"sha256": a.sha256}})
}

/// What `stage` produced, as subjects: the build's SRPM and RPMs, the composed commit, the
/// image (not its logs, its repository index or the dist-git tree it read).
fn products(m: &Manifest, stage: StageName) -> Vec<Value> {
    let kinds: &[ArtifactKind] = match stage {
        StageName::Build => &[ArtifactKind::Srpm, ArtifactKind::Rpm],
        StageName::Compose => &[ArtifactKind::OstreeCommit],
        StageName::Image => &[ArtifactKind::Image],
        _ => &[],
    };
    m.artifacts
        .iter()
        .filter(|a| a.stage == stage.as_str() && kinds.contains(&a.kind))
        .map(descriptor)
        .collect()
}

/// The binary RPMs test installs and compose layers: not the debuginfo and debugsource
/// packages (what those stages leave out, the statements do not claim).
fn package_rpms(m: &Manifest) -> impl Iterator<Item = &Artifact> {
    m.artifacts_of(ArtifactKind::Rpm)
        .filter(|a| !a.nevra.as_ref().is_some_and(|n| n.is_debug()))
}

/// What a test stage tested: the build's RPMs (test, and the build's %check), the composed
/// commit (integrate, conform), the image (smoke).
fn tested(m: &Manifest, stage: StageName) -> Vec<Value> {
    if matches!(stage, StageName::Test | StageName::Build) {
        return package_rpms(m).map(descriptor).collect();
    }
    let kind = match stage {
        StageName::Integrate | StageName::Conform => ArtifactKind::OstreeCommit,
        StageName::Smoke => ArtifactKind::Image,
        _ => return Vec::new(),
    };
    m.artifacts_of(kind).map(descriptor).collect()
}

/// What the build leaves besides its packages that later statements refer to: the snapshot
/// of the dist-git checkout (its tree digest, `crate::digest::tree_digest`), which the
/// package's tests come from.
fn byproducts(m: &Manifest, stage: StageName) -> Vec<Value> {
    if stage != StageName::Build {
        return Vec::new();
    }
    m.artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::DistGit && a.stage == stage.as_str())
        .map(|a| {
            json!({"name": DIST_GIT_TREE, "digest": {"sha256": a.sha256},
                        "annotations": {"digest": "fci tree digest of the checkout's files"}})
        })
        .collect()
}

/// The name of the build's byproduct that is its dist-git checkout's tree.
pub const DIST_GIT_TREE: &str = "dist-git-tree";

/// The dist-git repository as a URI: `git+https://…`, a local checkout `git+file:///…`.
fn repo_uri(repo: &str) -> String {
    if repo.starts_with('/') {
        format!("git+file://{repo}")
    } else {
        format!("git+{repo}")
    }
}

/// The dist-git commit the work came from. A checkout with uncommitted changes is no commit:
/// the descriptor then names the commit they sit on, never as its `gitCommit` (no commit
/// holds what was built, and `fci verify` says so).
fn dist_git(m: &Manifest) -> Option<Value> {
    let (repo, commit) = (m.subject.repo.as_ref()?, m.subject.commit.as_ref()?);
    let dirty = m.subject.extra.get("dirty") == Some(&Value::Bool(true));
    Some(if dirty {
        json!({"uri": repo_uri(repo),
               "annotations": {"branch": m.subject.branch, "uncommittedChangesOn": commit}})
    } else {
        json!({"uri": repo_uri(repo), "digest": {"gitCommit": commit},
               "annotations": {"branch": m.subject.branch}})
    })
}

/// What the stage stood on, by digest: the dist-git commit always; the lookaside sources for
/// build (as the `sources` file names them); the base and the RPMs for compose; the commit
/// for image.
fn dependencies(m: &Manifest, record: &StageRecord, stage: StageName) -> Vec<Value> {
    let mut out = Vec::new();
    out.extend(dist_git(m));
    match stage {
        StageName::Build => {
            for src in record
                .data
                .get("sources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(algo), Some(hash)) = (
                    src["name"].as_str(),
                    src["algo"].as_str(),
                    src["hash"].as_str(),
                ) else {
                    continue;
                };
                out.push(json!({"name": name, "digest": {algo: hash},
                                "annotations": {"from": "lookaside"}}));
            }
        }
        StageName::Compose => {
            if let Some(base) = m
                .subject
                .base
                .as_ref()
                .and_then(|b| b.ostree_commit.as_ref())
            {
                out.push(json!({"name": "base", "digest": {"sha256": base},
                                "annotations": {"ostree_ref": m.subject.base.as_ref().and_then(|b| b.ostree_ref.clone())}}));
            }
            out.extend(package_rpms(m).map(descriptor));
        }
        StageName::Image => out.extend(m.artifacts_of(ArtifactKind::OstreeCommit).map(descriptor)),
        _ => {}
    }
    out
}

/// The suite a test result is of, as its configuration names it: `build.check`, `test`,
/// `integrate`, `smoke`, `conform` (what `fci verify`'s policy asks for), with the run and
/// when it finished (a suite run again in the same run: the latest speaks).
pub fn suite_uri(suite: &str) -> String {
    format!("tag:fci,2026:suite/{suite}")
}

/// The in-toto test-result predicate of `results` of `suite` in `record`, whose verdict is
/// `outcome`; the tests came from the dist-git commit (their configuration, with the suite).
fn test_result(
    m: &Manifest,
    suite: &str,
    record: &StageRecord,
    outcome: Outcome,
    results: &[&TestResult],
) -> Value {
    let names = |want: &[Outcome]| -> Vec<&str> {
        results
            .iter()
            .filter(|r| want.contains(&r.outcome))
            .map(|r| r.testcase.as_str())
            .collect()
    };
    let result = match outcome {
        Outcome::Passed | Outcome::Info => "PASSED",
        Outcome::NeedsInspection => "WARNED",
        _ => "FAILED",
    };
    let mut annotations = json!({"invocationId": m.run.id, "finishedOn": record.finished});
    if let Some(from) = record.data.get("cached_from_run") {
        // Reused: that run did the testing, on the same inputs.
        annotations["cachedFromRun"] = from.clone();
    }
    let mut configuration = vec![json!({
        "name": suite, "uri": suite_uri(suite), "annotations": annotations,
    })];
    // Which tests ran: their tree (the dist-git checkout's, `--tests-from`'s, integrate's
    // `--tests`), runner and tags, as the record says.
    if let Some(tests) = record.data.get("suite").filter(|s| s["tests"].is_string()) {
        configuration.push(json!({
            "name": TESTS, "digest": {"sha256": tests["tests"]},
            "annotations": {"runner": tests["runner"], "tags": tests["tags"]},
        }));
    }
    configuration.extend(dist_git(m));
    json!({
        "result": result,
        "passedTests": names(&[Outcome::Passed, Outcome::Info]),
        "warnedTests": names(&[Outcome::NeedsInspection]),
        "failedTests": names(&[Outcome::Failed, Outcome::Error]),
        "configuration": configuration,
    })
}

fn statement(subject: Vec<Value>, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": STATEMENT_V1,
        "subject": subject,
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// The statement for `record` of `m` (the manifest as the stage left it), or none when the
/// stage says nothing a statement could (SKIPPED, no subject, a report without a gating
/// decision).
pub fn for_record(m: &Manifest, record: &StageRecord, builder_id: &str) -> Option<Value> {
    let stage = StageName::parse(&record.name)?;
    if record.outcome == Outcome::Skipped {
        return None;
    }
    let (subject, predicate_type, predicate) = match stage {
        StageName::Build | StageName::Compose | StageName::Image => {
            let subject = products(m, stage);
            let mut external = json!({
                "package": m.subject.package, "branch": m.subject.branch,
                "backend": record.backend,
            });
            if let Some(suite) = record.data.get("suite") {
                external["suite"] = suite.clone();
            }
            let mut internal = json!({"tools": record.tools, "input_digest": record.input_digest});
            if let Some(from) = record.data.get("cached_from_run") {
                // Reused: the work was done by that run, for the same inputs.
                internal["cached_from_run"] = from.clone();
            }
            let predicate = json!({
                "buildDefinition": {
                    "buildType": build_type(stage),
                    "externalParameters": external,
                    "internalParameters": internal,
                    "resolvedDependencies": dependencies(m, record, stage),
                },
                "runDetails": {
                    "builder": {"id": builder_id, "version": {"fci": m.run.fci_version}},
                    "metadata": {"invocationId": m.run.id, "startedOn": record.started,
                                 "finishedOn": record.finished},
                    "byproducts": byproducts(m, stage),
                },
            });
            (subject, SLSA_PROVENANCE_V1, predicate)
        }
        StageName::Test | StageName::Integrate | StageName::Smoke | StageName::Conform => {
            let results: Vec<&TestResult> = record.results.iter().collect();
            (
                tested(m, stage),
                TEST_RESULT_V0_1,
                test_result(m, stage.as_str(), record, record.outcome, &results),
            )
        }
        StageName::Report => return gate(m, record, builder_id),
        StageName::Watch => return None,
    };
    if subject.is_empty() {
        return None;
    }
    Some(statement(subject, predicate_type, predicate))
}

/// The build's `%check` as a test result about the RPMs it built: only when %check ran
/// (`build.check` PASSED or FAILED); a build without one, or with --nocheck, attests none.
pub fn check_of_build(m: &Manifest, record: &StageRecord) -> Option<Value> {
    if record.name != StageName::Build.as_str() {
        return None;
    }
    let check = record
        .results
        .iter()
        .find(|r| r.testcase == CHECK && matches!(r.outcome, Outcome::Passed | Outcome::Failed))?;
    let subject = tested(m, StageName::Build);
    if subject.is_empty() {
        return None;
    }
    Some(statement(
        subject,
        TEST_RESULT_V0_1,
        test_result(m, CHECK, record, check.outcome, &[check]),
    ))
}

/// The build's %check test case.
pub const CHECK: &str = "build.check";

/// The name of a test result's configuration descriptor that is the tests' tree.
pub const TESTS: &str = "tests";

/// The report's gating decision as a SLSA Verification Summary: about the run's products
/// (RPMs, composed commit, image), PASSED when the gating.yaml's policies were satisfied by
/// this run's own results, naming the attestations the run had by then.
fn gate(m: &Manifest, record: &StageRecord, builder_id: &str) -> Option<Value> {
    // The decision on this run's own results (the report's `gate`), not the NVR's.
    let gate = record.data.get("gate")?;
    let satisfied = gate["satisfied"] == Value::Bool(true);
    let policy = record
        .data
        .get("gating_policy")
        .cloned()
        .unwrap_or_default();
    let subject: Vec<Value> = package_rpms(m)
        .chain(
            m.artifacts
                .iter()
                .filter(|a| matches!(a.kind, ArtifactKind::OstreeCommit | ArtifactKind::Image)),
        )
        .map(descriptor)
        .collect();
    if subject.is_empty() {
        return None;
    }
    let inputs: Vec<Value> = m
        .artifacts_of(ArtifactKind::Attestation)
        .filter(|a| a.stage != StageName::Report.as_str())
        .map(|a| json!({"uri": a.path, "digest": {"sha256": a.sha256}}))
        .collect();
    let resource = match (&m.subject.repo, &m.subject.commit) {
        (Some(repo), Some(commit)) => format!("{}@{commit}", repo_uri(repo)),
        _ => m.run.id.clone(),
    };
    let predicate = json!({
        "verifier": {"id": builder_id, "version": {"fci": m.run.fci_version}},
        "timeVerified": record.finished,
        "resourceUri": resource,
        "policy": {"uri": policy["file"], "digest": {"sha256": policy["sha256"]}},
        "inputAttestations": inputs,
        "verificationResult": if satisfied { "PASSED" } else { "FAILED" },
        // VSA: the levels verified, or FAILED when the policy was not.
        "verifiedLevels": [if satisfied { GATE_LEVEL } else { "FAILED" }],
        "slsaVersion": "1.0",
        // fci's: the run whose decision this is (VSA has no field for it).
        "invocationId": m.run.id,
        "decision": {
            "summary": gate["summary"],
            "decision_contexts": policy["decision_contexts"],
        },
    });
    Some(statement(subject, VSA_V1, predicate))
}

/// The SLSA Verification Summary Attestation's predicate type: the report's gating decision.
pub const VSA_V1: &str = "https://slsa.dev/verification_summary/v1";
/// The level a satisfied gate verifies (a custom one: VSA reserves `SLSA_` for its own).
pub const GATE_LEVEL: &str = "FCI_GATE_SATISFIED";

/// Every statement the driver writes for `record`, each with its file name.
pub fn all(m: &Manifest, record: &StageRecord, builder_id: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(s) = for_record(m, record, builder_id) {
        out.push((format!("{}.intoto.json", record.name), s));
    }
    if let Some(s) = check_of_build(m, record) {
        out.push((format!("{CHECK}.intoto.json"), s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(kind: ArtifactKind, name: &str, sha: &str, stage: &str) -> Artifact {
        serde_json::from_value(
            json!({"type": kind.as_str(), "name": name, "path": format!("objects/{name}"),
                                      "sha256": sha, "size": 1, "stage": stage}),
        )
        .unwrap()
    }

    fn record(stage: &str, outcome: &str) -> StageRecord {
        serde_json::from_value(
            json!({"name": stage, "outcome": outcome, "started": "2026-12-07T10:00:00Z",
                                      "finished": "2026-12-07T10:01:00Z", "duration_s": 60.0,
                                      "input_digest": "d"}),
        )
        .unwrap()
    }

    fn manifest() -> Manifest {
        let mut m = Manifest::new("run-1".into());
        m.subject.package = Some("hello-atomic".into());
        m.subject.repo = Some("https://src.example.org/rpms/hello-atomic".into());
        m.subject.branch = Some("f41".into());
        m.subject.commit = Some("c0ffee".into());
        m.subject.base = Some(
            serde_json::from_value(
                json!({"ostree_ref": "fci/f41/known-good", "ostree_commit": "b45e"}),
            )
            .unwrap(),
        );
        m.artifacts = vec![
            artifact(
                ArtifactKind::Rpm,
                "hello-atomic-1.0-1.fc41.x86_64.rpm",
                "aaaa",
                "build",
            ),
            artifact(ArtifactKind::Log, "build.log", "1111", "build"),
            artifact(
                ArtifactKind::OstreeCommit,
                "fci/f41/candidate/run-1",
                "cccc",
                "compose",
            ),
        ];
        m
    }

    #[test]
    fn a_build_is_slsa_provenance_of_its_rpms_from_the_dist_git_commit() {
        let m = manifest();
        let s = for_record(&m, &record("build", "PASSED"), "https://ci.example.org/fci").unwrap();
        assert_eq!(s["_type"], STATEMENT_V1);
        assert_eq!(s["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(
            s["subject"],
            json!([{"name": "hello-atomic-1.0-1.fc41.x86_64.rpm", "digest": {"sha256": "aaaa"}}])
        );
        let p = &s["predicate"];
        assert_eq!(
            p["buildDefinition"]["buildType"],
            "tag:fci,2026:build-type/build/v1"
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
            "c0ffee"
        );
        assert_eq!(p["runDetails"]["metadata"]["invocationId"], "run-1");
        assert_eq!(
            p["runDetails"]["builder"]["id"],
            "https://ci.example.org/fci"
        );
    }

    #[test]
    fn a_compose_names_its_base_and_the_rpms_it_layered() {
        let m = manifest();
        let s = for_record(&m, &record("compose", "PASSED"), "fci").unwrap();
        assert_eq!(s["subject"][0]["digest"]["sha256"], "cccc");
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert!(deps
            .iter()
            .any(|d| d["name"] == "base" && d["digest"]["sha256"] == "b45e"));
        assert!(deps.iter().any(|d| d["digest"]["sha256"] == "aaaa"));
    }

    #[test]
    fn a_test_stage_is_a_test_result_about_what_it_tested() {
        let m = manifest();
        let mut r = record("integrate", "FAILED");
        r.results = vec![
            serde_json::from_value::<TestResult>(json!({"testcase": "boots", "outcome": "PASSED"}))
                .unwrap(),
            serde_json::from_value::<TestResult>(json!({"testcase": "runs", "outcome": "FAILED"}))
                .unwrap(),
        ];
        let s = for_record(&m, &r, "fci").unwrap();
        assert_eq!(s["predicateType"], TEST_RESULT_V0_1);
        assert_eq!(s["subject"][0]["digest"]["sha256"], "cccc");
        assert_eq!(s["predicate"]["result"], "FAILED");
        assert_eq!(s["predicate"]["passedTests"], json!(["boots"]));
        assert_eq!(s["predicate"]["failedTests"], json!(["runs"]));
        // Nothing done, nothing said.
        assert!(for_record(&m, &record("smoke", "SKIPPED"), "fci").is_none());
        assert!(
            for_record(&m, &record("smoke", "PASSED"), "fci").is_none(),
            "no image to speak of"
        );
        assert!(for_record(&m, &record("report", "PASSED"), "fci").is_none());
    }
}
