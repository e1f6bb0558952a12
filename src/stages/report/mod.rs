//! `fci report`: for now, the offline gating decision — a package's gating.yaml evaluated
//! against ResultsDB results and WaiverDB waivers from files, printed as Greenwave's decision
//! JSON (`--gating ... --results ... --waivers ...`), and `--validate` for a gating.yaml alone.
//! Reporting a manifest's records to ResultsDB and the message bus is not built yet: without
//! `--gating` the command says so (exit 2) rather than pretend.

use crate::error::FciError;
use crate::gating::{decision, policy};
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `fci report`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The package's gating.yaml to evaluate (Greenwave's remote policy format)
    #[arg(long, value_name = "FILE", required = true)]
    pub gating: PathBuf,
    /// Only check the gating.yaml, as Greenwave's validate-gating-yaml does; exit 1 if invalid
    #[arg(long)]
    pub validate: bool,
    /// ResultsDB results as a JSON list, oldest first: POST bodies or `GET /results` items
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// WaiverDB waivers as a JSON list, oldest first
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// The gating point(s) to decide for (repeatable), e.g. bodhi_update_push_stable
    #[arg(
        long = "decision-context",
        value_name = "CTX",
        required_unless_present = "validate"
    )]
    pub decision_contexts: Vec<String>,
    /// The product version, e.g. fedora-41
    #[arg(long, value_name = "PV", required_unless_present = "validate")]
    pub product_version: Option<String>,
    /// The subject's type
    #[arg(long, value_name = "TYPE", default_value = "koji_build")]
    pub subject_type: String,
    /// The subject, e.g. an NVR for koji_build
    #[arg(long, value_name = "ID", required_unless_present = "validate")]
    pub subject_identifier: Option<String>,
}

/// Runs `fci report`; returns the exit code: 0 satisfied (or valid), 1 not, 2 bad input.
pub fn exec(args: Args) -> Result<i32> {
    let text = read(&args.gating)?;
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
        Some(p) => list(p)?
            .iter()
            .map(decision::TestResult::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FciError::input(p, e))?,
        None => Vec::new(),
    };
    let waivers = match &args.waivers {
        Some(p) => list(p)?
            .iter()
            .map(decision::Waiver::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FciError::input(p, e))?,
        None => Vec::new(),
    };
    let req = decision::Request {
        decision_contexts: args.decision_contexts.clone(),
        product_version: args.product_version.clone().unwrap_or_default(),
        subject_type: args.subject_type.clone(),
        subject_identifier: args.subject_identifier.clone().unwrap_or_default(),
    };
    let source = args.gating.display().to_string();
    let d = decision::decide(&policies, &source, &req, &results, &waivers);
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(if d["policies_satisfied"] == Value::Bool(true) {
        0
    } else {
        1
    })
}

fn read(p: &Path) -> Result<String> {
    let meta = std::fs::metadata(p).map_err(|e| FciError::input(p, format!("cannot read: {e}")))?;
    if meta.len() > policy::MAX_BYTES as u64 * 16 {
        return Err(FciError::input(p, "too large").into());
    }
    Ok(std::fs::read_to_string(p).map_err(|e| FciError::input(p, format!("cannot read: {e}")))?)
}

fn list(p: &Path) -> Result<Vec<Value>> {
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
