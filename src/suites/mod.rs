//! The test suites that `fci test` and `fci integrate` run: each test format is a
//! [`suite::Suite`] (`sti.rs` with its roles, `tmt.rs`), run by `runner.rs` in the sandbox
//! against a subject (`subject.rs`: the new RPMs over the base, or a composed tree), with
//! attempts and reruns (`attempts.rs`, `select.rs`) and their results (`results.rs`).

pub mod attempts;
pub mod results;
pub mod runner;
pub mod select;
pub mod sti;
pub mod subject;
pub mod suite;
pub mod tmt;

use anyhow::Result;
use serde_json::json;
use std::path::Path;
use suite::Suite;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerChoice {
    /// every format the repository has (STI playbooks and tmt plans)
    Auto,
    Sti,
    Tmt,
}

/// The flags of every stage that runs test suites (`fci test`, `fci integrate`).
#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// Which test formats to run
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto)]
    pub runner: RunnerChoice,
    /// STI tags to select (comma-separated: classic, container, atomic)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "classic",
        value_name = "TAGS"
    )]
    pub tags: Vec<String>,
    /// Retry each failing test case up to N more times, recording every attempt
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Let the tests reach the network
    #[arg(long)]
    pub network: bool,
    /// Kill a test run (a playbook, or tmt), the install of the packages and a clone of a tests
    /// URL after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
}

impl SuiteArgs {
    /// Which tests a stage ran (`data.suite`): the tests tree, the runner and the tags. A
    /// failure fci kept for a run is cleared only by a later pass of the same suite (see
    /// `run_records::failed_stages`): a pass of other tests, or of fewer, says nothing of it.
    pub fn identity(&self, tests: &str) -> serde_json::Value {
        let mut tags = self.tags.clone();
        tags.sort();
        tags.dedup();
        json!({"tests": tests, "runner": self.runner, "tags": tags})
    }
}

pub fn discover(tree: &Path, choice: RunnerChoice) -> Result<Vec<Box<dyn Suite>>> {
    let mut suites: Vec<Box<dyn Suite>> = Vec::new();
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Sti) {
        for pb in sti::discover(tree)? {
            suites.push(Box::new(sti::Playbook(pb)));
        }
    }
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Tmt) && tmt::discover(tree) {
        tmt::check_metadata(tree)?;
        suites.push(Box::new(tmt::Plans));
    }
    Ok(suites)
}
/// The Fedora CI test names (`tier0` for STI, `/plans/<plan>` for each tmt plan) the suites
/// found in `tree` would be reported under, so that a run that breaks before any of them has
/// a result still fails each (`data.fedora_tests`; see `resultsdb::mapping::fedora_groups`):
/// else a broken tests.yml or tmt run would leave them missing, or an earlier run's PASSED
/// standing. tmt's plans are named from the files under `plans/` (`plans/a.fmf` → `/plans/a`,
/// `plans/b/main.fmf` → `/plans/b`): plans declared elsewhere are not foreseen.
pub fn fedora_tests(tree: &Path, choice: RunnerChoice) -> Vec<String> {
    // From the files alone, parsing nothing: a tests.yml or plan that does not parse must
    // not hide the others.
    let mut out = Vec::new();
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Sti) {
        let playbooks = std::fs::read_dir(tree.join("tests"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| plan_of_file(&format!("tests/{}", e.file_name().to_string_lossy())).is_some());
        if playbooks {
            out.push("tier0".to_string());
        }
    }
    if matches!(choice, RunnerChoice::Auto | RunnerChoice::Tmt) && tmt::discover(tree) {
        let files = crate::digest::list_files(&tree.join("plans"), &[]).unwrap_or_default();
        for f in files {
            if let Some(name) = plan_of_file(&format!("plans/{}", f.display())) {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// The tmt plan an fmf file under `plans/` names (`plans/a.fmf` → `/plans/a`), or the Fedora
/// test an STI playbook is reported under (`tests/tests.yml` → `tier0`).
pub fn plan_of_file(rel: &str) -> Option<String> {
    if rel.starts_with("tests/tests") && (rel.ends_with(".yml") || rel.ends_with(".yaml")) {
        return Some("tier0".into());
    }
    let stem = rel.strip_prefix("plans/")?.strip_suffix(".fmf")?;
    let stem = stem.strip_suffix("/main").unwrap_or(stem);
    (!stem.is_empty() && !stem.split('/').any(|c| c.starts_with('.'))).then(|| {
        if stem == "main" {
            "/plans".into()
        } else {
            format!("/plans/{stem}")
        }
    })
}

/// The note for the subject's paths the tests could not see (see `subject::overlays`): the
/// environment's doing (where the workspace is), said so, not the package's.
pub fn hidden_note(hidden: &[String]) -> String {
    const SHOWN: usize = 10;
    let more = hidden.len().saturating_sub(SHOWN);
    format!(
        "not visible to the tests, because fci's workspace lies in the same directory (move the workspace to see them): {}{}",
        hidden.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    )
}
