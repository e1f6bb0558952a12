//! `fci gating waive TESTCASE`: a waiver in WaiverDB's data model, stored in the workspace
//! (`waivers/waivers.json`, oldest first) and used by every later decision there; with
//! `--waiverdb-url` also posted to WaiverDB (through a spool: one that cannot be delivered
//! now is delivered by the next waive or report, exactly once, see `waiverdb.rs`).
//! `--revoke` records `waived: false`, which makes the waivers before it obsolete.
//!
//! A waiver is only for a test case something knows: one the `--gating` file requires, or one
//! the subject has results for in the workspace or, with `--resultsdb-url`, in ResultsDB (a
//! revocation: also one waived before). A typo
//! would otherwise waive nothing, silently: it is refused (exit 2) naming the nearest known
//! test case, unless `--force`.

use super::args::WaiveArgs;
use super::local::{load, save};
use crate::error::FciError;
use crate::resultsdb::store::Store;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;

/// The test cases known for the subject: required by the gating.yaml given, or with results
/// in the workspace; for a revocation also those waived before in the workspace.
fn known_testcases(args: &WaiveArgs, store: &Store, ws: &Workspace) -> Result<Vec<String>> {
    let mut known: Vec<String> = store
        .results_for(&args.subject.subject_identifier, &args.subject.subject_type)?
        .iter()
        .filter_map(|r| {
            r.pointer("/testcase/name")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    if let Some(g) = &args.gating {
        let policies = super::policy::parse(&super::input::read(g)?)
            .map_err(|e| FciError::input(g, format!("not a valid gating.yaml: {e}")))?;
        known.extend(
            policies
                .iter()
                .flat_map(|p| p.rules.iter().map(|r| r.test_case_name.clone())),
        );
    }
    if args.revoke {
        known.extend(
            load(ws)?
                .iter()
                .filter(|w| w["subject_identifier"] == args.subject.subject_identifier.as_str())
                .filter_map(|w| w["testcase"].as_str().map(String::from)),
        );
    }
    known.sort();
    known.dedup();
    Ok(known)
}

/// The known test case nearest to `testcase` (edit distance; ties: the first by name).
pub fn nearest<'a>(testcase: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .min_by_key(|k| strsim::levenshtein(testcase, k))
        .map(String::as_str)
}

/// Refuses a waiver whose product version no policy of `--gating` names: a typo there waives
/// nothing, silently. (A scenario is not checked: results need not name theirs.)
fn check_scope(args: &WaiveArgs) -> Result<()> {
    let pv = &args.subject.product_version;
    if let Some(g) = &args.gating {
        let policies = super::policy::parse(&super::input::read(g)?)
            .map_err(|e| FciError::input(g, format!("not a valid gating.yaml: {e}")))?;
        let globs: Vec<&String> = policies.iter().flat_map(|p| &p.product_versions).collect();
        if !globs.is_empty() && !globs.iter().any(|g| super::decision::fnmatch(g, pv)) {
            let named: Vec<&str> = globs.iter().map(|g| g.as_str()).collect();
            return Err(FciError::Usage(format!(
                "product version {pv} is named by no policy of --gating ({}): nothing to waive; --force stores it anyway",
                named.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// Refuses a waiver for a test case nothing knows (a typo), naming the nearest known one.
fn check_known(args: &WaiveArgs, store: &Store, ws: &Workspace) -> Result<()> {
    if args.force {
        return Ok(());
    }
    check_scope(args)?;
    let mut known = known_testcases(args, store, ws)?;
    if known.contains(&args.testcase) {
        return Ok(());
    }
    // Asked only when nothing here knows it: the subject's results in ResultsDB, found as
    // Greenwave finds them.
    if let Some(url) = args
        .resultsdb_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        let client = crate::resultsdb::client::Client::new(url, None)?;
        for q in
            super::subject::queries(&args.subject.subject_type, &args.subject.subject_identifier)
        {
            known.extend(client.testcases(&q).map_err(|f| {
                FciError::Infra(format!(
                    "ResultsDB: cannot read the results of {} to check the test case ({f}); --force stores the waiver anyway",
                    args.subject.subject_identifier
                ))
            })?);
        }
        known.sort();
        known.dedup();
        if known.contains(&args.testcase) {
            return Ok(());
        }
    }
    let (ty, subject) = (&args.subject.subject_type, &args.subject.subject_identifier);
    let msg = match nearest(&args.testcase, &known) {
        None => format!(
            "no results for {ty} {subject} in this workspace and no --gating requiring {}: nothing to waive (a typo?); --force stores it anyway",
            args.testcase
        ),
        Some(n) => format!(
            "test case {} is required by no policy{} and has no result for {ty} {subject}: nothing to waive; did you mean {n}? (--force stores it anyway)",
            args.testcase,
            if args.gating.is_some() { " of --gating" } else { " given (--gating)" },
        ),
    };
    Err(FciError::Usage(msg).into())
}

/// Records the waiver (and with --waiverdb-url posts it) and prints it; 0, bad usage for a
/// test case nothing knows, 3 when WaiverDB refuses it or the workspace fails.
pub fn exec(args: &WaiveArgs, workspace: &Path) -> Result<i32> {
    let (subject, pv) = (
        &args.subject.subject_identifier,
        &args.subject.product_version,
    );
    let comment = Some(args.comment.as_str())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| FciError::Usage("a waiver needs a --comment saying why".into()))?;
    let client = args.waiverdb.client()?;
    let ws = Workspace::open(workspace)?;
    let store = Store::open(&ws.results_db())?;
    check_known(args, &store, &ws)?;
    let lock = ws.pipeline_lock("waivers")?;
    let mut list = load(&ws)?;
    let username = args
        .username
        .clone()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| client.as_ref().and_then(|c| c.user.clone()))
        .or_else(|| {
            std::env::var("USER")
                .ok()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
        })
        .or_else(crate::users::name)
        .unwrap_or_else(|| format!("uid-{}", crate::users::euid()));
    let fci_id = uuid::Uuid::new_v4().to_string();
    let waiver = json!({
        "id": list.len() + 1,
        "subject_type": args.subject.subject_type,
        "subject_identifier": subject,
        "testcase": args.testcase,
        "scenario": args.scenario,
        "waived": !args.revoke,
        "product_version": pv,
        "comment": comment,
        "username": username,
        "proxied_by": Value::Null,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        "fci_waiver_id": fci_id,
    });
    list.push(waiver.clone());
    save(&ws, &list)?;
    let Some(client) = client else {
        drop(lock);
        crate::files::to_stdout(
            format!("{}\n", serde_json::to_string_pretty(&waiver)?).as_bytes(),
        )?;
        return Ok(0);
    };
    // Spooled before it is sent: a crash or an unreachable server loses nothing.
    let body = super::waiverdb::post_body(&waiver, args.username.is_some());
    super::waiverdb::spool(&ws, &client, &fci_id, &body)?;
    let d = super::waiverdb::deliver(&ws, &store, &client)?;
    if let Some((_, why)) = d.rejected.iter().find(|(id, _)| *id == fci_id) {
        // Refused: never a waiver the workspace uses and WaiverDB does not have.
        list.retain(|w| w["fci_waiver_id"] != fci_id.as_str());
        save(&ws, &list)?;
        return Err(FciError::Infra(format!(
            "WaiverDB {} refused the waiver ({why}): not recorded",
            client.target()
        ))
        .into());
    }
    drop(lock);
    for (id, why) in d.rejected.iter().filter(|(id, _)| *id != fci_id) {
        crate::progress::say(&format!(
            "warning: WaiverDB refused an earlier spooled waiver {id} ({why}): kept in {}/rejected",
            ws.relative(&super::waiverdb::spool_path(&ws, &client))
        ));
    }
    match &d.unreachable {
        Some(why) => crate::progress::say(&format!(
            "warning: WaiverDB not reached ({why}): {} waivers spooled, delivered by the next `fci gating waive` or `fci report` with --waiverdb-url",
            d.spooled
        )),
        None => crate::progress::note(&format!(
            "waiver delivered to WaiverDB {} ({} delivered, {} already there)",
            client.target(),
            d.delivered,
            d.already_there
        )),
    }
    if d.superseded > 0 {
        crate::progress::say(&format!(
            "warning: {} spooled waivers not posted: WaiverDB has newer ones for the same test cases, given elsewhere since",
            d.superseded
        ));
    }
    crate::files::to_stdout(format!("{}\n", serde_json::to_string_pretty(&waiver)?).as_bytes())?;
    Ok(0)
}
