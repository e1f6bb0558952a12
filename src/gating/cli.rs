//! `fci gating`: gating without a run. `decide` prints Greenwave's decision from files,
//! `validate` checks a gating.yaml as Greenwave's validate-gating-yaml does, `waive` records
//! a waiver in the workspace for every later decision there. None of them is a stage: what
//! they print on stdout is their answer, never a manifest.

pub use super::args::{Subject, WaiveArgs};
use super::{decision, input, policy, waive};
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `fci gating`'s subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Decide offline, as Greenwave does, from a gating.yaml, results and waivers; print the
    /// decision JSON
    #[command(
        after_help = "Exit codes: 0 the decision is satisfied; 1 it is not; 2 bad usage, unreadable input, or no\npolicy applies (Greenwave's 404) (one line on stderr, nothing on stdout); 3 --waiverdb-url could not\nbe read."
    )]
    Decide(DecideArgs),
    /// Check a gating.yaml alone, as Greenwave's validate-gating-yaml does; print
    /// {"message": ...}
    #[command(
        after_help = "Exit codes: 0 valid (`All OK`); 1 invalid (the message says why); 2 bad usage or unreadable file."
    )]
    Validate(ValidateArgs),
    /// Waive (or with --revoke, unwaive) a test case for a subject, in the workspace, for every
    /// later decision there, and with --waiverdb-url in WaiverDB; print the waiver
    #[command(
        after_help = "Exit codes: 0 recorded (with --waiverdb-url: delivered, or spooled when WaiverDB cannot be reached,\nand delivered by the next waive or report); 2 bad usage, or a test case no policy of --gating requires\nand no result of the subject has (a typo would waive nothing: the nearest known one is named;\n--force stores it anyway); 3 WaiverDB refused the waiver, or the workspace could not be read or written."
    )]
    Waive(WaiveArgs),
}

/// `fci gating decide`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct DecideArgs {
    /// The package's gating.yaml (Greenwave's remote policy format)
    #[arg(long, value_name = "FILE")]
    pub gating: PathBuf,
    /// ResultsDB results: a JSON list of POST bodies or `GET /results` items, or a whole
    /// `GET /results` answer (any order: they are taken by submit time and id)
    #[arg(long, value_name = "FILE")]
    pub results: PathBuf,
    /// WaiverDB waivers as a JSON list (any order: they are taken by timestamp and id), or a
    /// whole `GET /waivers/` answer
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable
    #[arg(long = "decision-context", value_name = "CTX", required = true)]
    pub decision_contexts: Vec<String>,
    #[command(flatten)]
    pub subject: Subject,
    #[command(flatten)]
    pub waiverdb: super::waiverdb::WaiverDbArgs,
}

/// `fci gating validate`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// The gating.yaml to check
    #[arg(long, value_name = "FILE")]
    pub gating: PathBuf,
}

/// Runs `fci gating`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    match args.command {
        Command::Decide(a) => decide(&a),
        Command::Validate(a) => validate(&a),
        Command::Waive(a) => waive::exec(&a, workspace),
    }
}

/// Greenwave's decision JSON on stdout; 0 satisfied, 1 not.
fn decide(args: &DecideArgs) -> Result<i32> {
    let policies = policy::parse(&input::read(&args.gating)?);
    let results = input::items(&args.results, decision::TestResult::from_json)?;
    let mut waivers = match &args.waivers {
        Some(p) => input::items(p, decision::Waiver::from_json)?,
        None => Vec::new(),
    };
    // With --waiverdb-url, the subject's waivers there too (unreadable: exit 3).
    if let Some(client) = args.waiverdb.client()? {
        let s = &args.subject;
        for w in super::waiverdb::waivers_for(
            &client,
            super::subject::canonical(&s.subject_type),
            &s.subject_identifier,
            &s.product_version,
        )? {
            waivers.push(decision::Waiver::from_json(&w).map_err(|e| {
                crate::error::FciError::Infra(format!("WaiverDB {}: {e}", client.target()))
            })?);
        }
    }
    let req = decision::Request {
        decision_contexts: args.decision_contexts.clone(),
        product_version: args.subject.product_version.clone(),
        subject_type: args.subject.subject_type.clone(),
        subject_identifier: args.subject.subject_identifier.clone(),
    };
    let source = args.gating.display().to_string();
    let d = decision::decide(&policies, &source, &req, &results, &waivers);
    // Greenwave answers 404 here: a context or version no policy names (a typo) decides
    // nothing, and must never read as satisfied.
    if d["applicable_policies"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        return Err(crate::error::FciError::input(
            &args.gating,
            format!(
                "no policy applies to decision context {} and product version {} (Greenwave answers 404 \"Found no applicable policies\")",
                req.decision_contexts.join(", "),
                req.product_version
            ),
        )
        .into());
    }
    crate::files::to_stdout(format!("{}\n", serde_json::to_string_pretty(&d)?).as_bytes())?;
    Ok(if d["policies_satisfied"] == Value::Bool(true) {
        0
    } else {
        1
    })
}

/// `{"message": "All OK"}` (0) or the problem (1), as Greenwave's validate-gating-yaml answers.
fn validate(args: &ValidateArgs) -> Result<i32> {
    let (message, code) = match policy::parse(&input::read(&args.gating)?) {
        Ok(_) => ("All OK".to_string(), 0),
        Err(e) => (e, 1),
    };
    crate::files::to_stdout(format!("{}\n", serde_json::json!({ "message": message })).as_bytes())?;
    Ok(code)
}
