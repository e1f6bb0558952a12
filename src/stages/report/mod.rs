//! `fci report`: a run's results and its gating decision.
//!
//! With a manifest (`-m`, or stdin): every stage record and test case becomes a result in the
//! workspace's results database (`crate::resultsdb`, each recorded once however often the run
//! is reported), and with `--gating` the package's gating.yaml is decided against the subject's
//! latest results there (with `--promote`: against this run's own checked records alone); the
//! report record carries the decision (PASSED when satisfied).
//! Offline, from files (`--results`, `--waivers`): Greenwave's decision JSON on stdout.
//! `--validate`: a gating.yaml alone. Posting to a remote ResultsDB, messages and promotion are
//! not built yet.

mod html;
mod manifest_mode;
mod promote;
mod waive;

use crate::error::FciError;
use crate::gating::{decision, policy};
use crate::stage::CommonArgs;
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `fci report`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The package's gating.yaml to evaluate (Greenwave's remote policy format)
    #[arg(long, value_name = "FILE")]
    pub gating: Option<PathBuf>,
    /// Only check the gating.yaml, as Greenwave's validate-gating-yaml does; exit 1 if invalid
    #[arg(long, requires = "gating")]
    pub validate: bool,
    /// Decide offline from these ResultsDB results (a JSON list, oldest first: POST bodies or
    /// `GET /results` items) instead of a manifest's
    #[arg(long, value_name = "FILE", requires = "gating")]
    pub results: Option<PathBuf>,
    /// WaiverDB waivers as a JSON list, oldest first (with a manifest: besides the
    /// workspace's own, from --waive)
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
    /// Waive this test case for --subject-identifier and --product-version (needs --comment),
    /// stored in the workspace for every later decision; prints the waiver
    #[arg(long, value_name = "TESTCASE", conflicts_with_all = ["gating", "validate"])]
    pub waive: Option<String>,
    /// With --waive: why (WaiverDB requires it)
    #[arg(long, value_name = "TEXT", requires = "waive")]
    pub comment: Option<String>,
    /// With --waive: only this scenario
    #[arg(long, value_name = "SCENARIO", requires = "waive")]
    pub scenario: Option<String>,
    /// With --waive: record `waived: false`, revoking earlier waivers
    #[arg(long, requires = "waive")]
    pub revoke: bool,
    /// With --waive: who waives (default $USER)
    #[arg(long, value_name = "NAME", requires = "waive")]
    pub username: Option<String>,
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
    /// The test case namespace, e.g. fedora-ci.koji-build to satisfy Fedora's gating.yaml
    #[arg(
        long,
        env = "FCI_NAMESPACE",
        value_name = "NS",
        default_value = "fci.koji-build"
    )]
    pub namespace: String,
    #[command(flatten)]
    pub common: CommonArgs,
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

/// Runs `fci report`; returns the exit code: 0 satisfied (or valid), 1 not, 2 bad input.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    if let Some(t) = &args.waive {
        return waive::exec(&args, t, workspace);
    }
    if !args.validate && args.results.is_none() {
        return manifest_mode::exec(args, workspace);
    }
    let gating = args.gating.clone().expect("clap requires --gating here");
    let text = read(&gating)?;
    let policies = policy::parse(&text);
    if args.validate {
        let (message, code) = match &policies {
            Ok(_) => ("All OK".to_string(), 0),
            Err(e) => (e.clone(), 1),
        };
        println!("{}", serde_json::json!({ "message": message }));
        return Ok(code);
    }
    let results = match &args.results {
        Some(p) => items(p, decision::TestResult::from_json)?,
        None => Vec::new(),
    };
    let waivers = match &args.waivers {
        Some(p) => items(p, decision::Waiver::from_json)?,
        None => Vec::new(),
    };
    let (Some(product_version), Some(subject_identifier)) = (
        args.product_version.clone(),
        args.subject_identifier.clone(),
    ) else {
        return Err(FciError::Usage(
            "an offline decision needs --product-version and --subject-identifier".into(),
        )
        .into());
    };
    if args.decision_contexts.is_empty() {
        return Err(FciError::Usage("a decision needs --decision-context".into()).into());
    }
    let req = decision::Request {
        decision_contexts: args.decision_contexts.clone(),
        product_version,
        subject_type: args.subject_type.clone(),
        subject_identifier,
    };
    let source = gating.display().to_string();
    let d = decision::decide(&policies, &source, &req, &results, &waivers);
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(if d["policies_satisfied"] == Value::Bool(true) {
        0
    } else {
        1
    })
}

/// A file given to the report, up to its cap (also a FIFO or device, whose size says nothing).
pub(crate) fn read(p: &Path) -> Result<String> {
    let f = std::fs::File::open(p).map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    let bytes = crate::caps::read_all(f, crate::caps::REPORT_INPUT)
        .map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    Ok(String::from_utf8(bytes).map_err(|_| FciError::input(p, "cannot read: not UTF-8"))?)
}

/// The items of a JSON list file, each read by `from`; bad input naming the file otherwise.
pub(crate) fn items<T>(p: &Path, from: fn(&Value) -> Result<T, String>) -> Result<Vec<T>> {
    Ok(list(p)?
        .iter()
        .map(from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FciError::input(p, e))?)
}

pub(crate) fn list(p: &Path) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(&read(p)?) {
        Ok(Value::Array(items)) => Ok(items),
        // `GET /results` answers `{"data": [...], ...}`: take its data.
        Ok(Value::Object(o)) if o.get("data").is_some_and(Value::is_array) => {
            Ok(o["data"].as_array().cloned().unwrap_or_default())
        }
        Ok(_) => Err(FciError::input(p, "expected a JSON list").into()),
        Err(e) => Err(FciError::input(p, format!("not JSON: {e}")).into()),
    }
}
