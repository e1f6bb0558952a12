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
