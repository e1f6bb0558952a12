//! `fci report`: a run's results and its gating decision.
//!
//! With a manifest (`-m`, or stdin): every stage record and test case becomes a result in the
//! workspace's results database (`crate::resultsdb`, each recorded once however often the run
//! is reported), and with `--gating` the package's gating.yaml is decided against the subject's
//! latest results there (with `--promote`: against this run's own checked records alone); the
//! report record carries the decision and the run's verdict, which is its exit status: 0 every
//! stage passed (with `--gating`: the decision is satisfied, waivers included), 1 a stage
//! FAILED or was skipped after a failure (with `--gating`: the decision is unsatisfied), 3 a
//! stage ended in ERROR.
//! Gating without a run (a decision from files, a gating.yaml's check, a waiver) is `fci
//! gating` (`crate::gating::cli`); the spellings it had here are [`Moved`], kept hidden for
//! one release.

mod html;
mod junit_xml;
mod manifest_mode;
pub mod promote;

use crate::error::FciError;
use crate::gating::cli as gating;
use crate::stage::CommonArgs;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `fci report`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The package's gating.yaml to evaluate (Greenwave's remote policy format)
    #[arg(long, value_name = "FILE")]
    pub gating: Option<PathBuf>,
    /// WaiverDB waivers as a JSON list, oldest first, besides the workspace's own (from
    /// `fci gating waive`)
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable
    #[arg(long = "decision-context", value_name = "CTX", requires = "gating")]
    pub decision_contexts: Vec<String>,
    /// The product version, e.g. fedora-41 (default from the manifest's branch)
    #[arg(long, value_name = "PV")]
    pub product_version: Option<String>,
    /// The subject's type
    #[arg(long, value_name = "TYPE", default_value = "koji_build")]
    pub subject_type: String,
    /// The subject, e.g. an NVR for koji_build (default: the manifest's source package NVR)
    #[arg(long, value_name = "ID")]
    pub subject_identifier: Option<String>,
    /// With --gating: decided on this run's own checked records only; a satisfied decision
    /// makes the change the branch's known-good base (its composed commit, when there is
    /// one); an unsatisfied one excludes the change
    #[arg(long, requires = "gating")]
    pub promote: bool,
    /// Also post the results to this ResultsDB (its root or /api/v2.0, no query); what cannot
    /// be delivered is spooled in the workspace and delivered by the next report
    #[arg(long, env = "FCI_RESULTSDB_URL", hide_env_values = true, value_name = "URL", value_parser = nonempty)]
    pub resultsdb_url: Option<String>,
    /// Also publish the messages to this AMQP broker (amqp://user:password@host:port/vhost),
    /// as fedora-messaging does; unconfirmed ones are spooled and sent by the next report
    #[arg(long, env = "FCI_AMQP_URL", hide_env_values = true, value_name = "URL", value_parser = nonempty)]
    pub amqp_url: Option<String>,
    /// How many results are posted at once
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub resultsdb_jobs: u16,
    /// A file holding the ResultsDB token (`user:password` for HTTP Basic); or set
    /// FCI_RESULTSDB_TOKEN. Never printed or recorded
    #[arg(long, value_name = "FILE")]
    pub resultsdb_token_file: Option<PathBuf>,
    /// Print the run's table (stage, outcome, seconds, failing tests or log) even with --quiet
    #[arg(long)]
    pub summary: bool,
    /// Also write the run, with the gating decision, as one self-contained HTML page
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the run's results as a JUnit report (for Jenkins' junit step): a test suite
    /// per stage, a test case per result
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub waiverdb: crate::gating::waiverdb::WaiverDbArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub moved: Moved,
}

/// `fci report`'s flags that moved to `fci gating` (`--validate`, `--results`, `--waive` and
/// its own), hidden, accepted for one release: remove in the next.
#[derive(clap::Args, Debug, Clone)]
pub struct Moved {
    #[arg(long, requires = "gating", hide = true)]
    pub validate: bool,
    #[arg(long, value_name = "FILE", requires = "gating", hide = true)]
    pub results: Option<PathBuf>,
    #[arg(long, value_name = "TESTCASE", conflicts_with_all = ["gating", "validate"], hide = true)]
    pub waive: Option<String>,
    #[arg(long, value_name = "TEXT", requires = "waive", hide = true)]
    pub comment: Option<String>,
    #[arg(long, value_name = "SCENARIO", requires = "waive", hide = true)]
    pub scenario: Option<String>,
    #[arg(long, requires = "waive", hide = true)]
    pub revoke: bool,
    #[arg(long, value_name = "NAME", requires = "waive", hide = true)]
    pub username: Option<String>,
}

impl Args {
    /// The `fci gating` command an old spelling (`--waive`, `--validate`, `--results`) stands
    /// for, after one line saying so; `None` for a report.
    pub fn moved(&self) -> Result<Option<gating::Args>> {
        let m = &self.moved;
        let (old, new) = if m.waive.is_some() {
            ("report --waive", "gating waive")
        } else if m.validate {
            ("report --validate", "gating validate")
        } else if m.results.is_some() {
            ("report --results", "gating decide")
        } else {
            return Ok(None);
        };
        crate::progress::deprecated(old, new);
        let subject = |what: &str| match (&self.product_version, &self.subject_identifier) {
            (Some(pv), Some(id)) => Ok(gating::Subject {
                product_version: pv.clone(),
                subject_type: self.subject_type.clone(),
                subject_identifier: id.clone(),
            }),
            _ => Err(FciError::Usage(format!(
                "{what} needs --product-version and --subject-identifier"
            ))),
        };
        let command = if let Some(testcase) = &m.waive {
            let comment = m.comment.clone().filter(|c| !c.trim().is_empty());
            let comment = comment
                .ok_or_else(|| FciError::Usage("--waive needs --comment saying why".into()))?;
            let waive = gating::WaiveArgs {
                testcase: testcase.clone(),
                comment,
                scenario: m.scenario.clone(),
                revoke: m.revoke,
                username: m.username.clone(),
                gating: None,
                force: false,
                resultsdb_url: self.resultsdb_url.clone(),
                subject: subject("--waive")?,
                waiverdb: self.waiverdb.clone(),
            };
            gating::Command::Waive(waive)
        } else {
            let gating = self.gating.clone().expect("clap requires --gating here");
            if m.validate {
                gating::Command::Validate(gating::ValidateArgs { gating })
            } else {
                if self.decision_contexts.is_empty() {
                    return Err(
                        FciError::Usage("a decision needs --decision-context".into()).into(),
                    );
                }
                let decide = gating::DecideArgs {
                    gating,
                    results: m.results.clone().expect("checked above"),
                    waivers: self.waivers.clone(),
                    decision_contexts: self.decision_contexts.clone(),
                    subject: subject("an offline decision")?,
                    waiverdb: self.waiverdb.clone(),
                };
                gating::Command::Decide(decide)
            }
        };
        Ok(Some(gating::Args { command }))
    }
}

fn nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// The ResultsDB token: from `--resultsdb-token-file`, else FCI_RESULTSDB_TOKEN.
pub(crate) fn token(args: &Args) -> Result<Option<String>> {
    if let Some(p) = &args.resultsdb_token_file {
        let t = std::fs::read_to_string(p)
            .map_err(|e| FciError::input(p, format!("cannot read the token: {e}")))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(FciError::input(p, "the token file is empty").into());
        }
        crate::redact::register_secret(&t);
        return Ok(Some(t));
    }
    Ok(std::env::var("FCI_RESULTSDB_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Runs `fci report`; returns the exit code, the run's verdict: 0 every stage passed (with
/// `--gating`: the decision is satisfied), 1 a stage failed (with `--gating`: the decision is
/// not), 3 any stage ERROR.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    manifest_mode::exec(args, workspace)
}
