//! The pipeline state (`state/`, or the `--state` directory): every state file parses
//! (known-good sets, exclusions, the retest queue, the image schedule, the watch's heads, the
//! waivers), and every run record fci kept is whole (its name is its content's digest) and
//! names artifacts that verify. An interrupted promotion (`promote`'s intent file) is
//! debris: the next `fci report --promote` of its branch, or `--repair`, completes it.

use super::{cache::json_parses, manifests, Findings, Repair};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    let root = ws.pipeline("");
    // A shared state directory holds the records of every worker: the artifacts of another
    // worker's records are in its own workspace, not missing from this one.
    let shared = !root.starts_with(ws.root());
    if !root.exists() {
        // No stage has kept state yet.
        return Ok(());
    }
    for e in walkdir::WalkDir::new(&root)
        .min_depth(1)
        .into_iter()
        // The OSTree repository is ostree_repo's; lock files hold nothing.
        .filter_entry(|e| {
            !(e.depth() == 1 && (e.file_name() == "ostree" || e.file_name() == "locks"))
        })
    {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                return Err(crate::error::FciError::Infra(format!(
                    "cannot list {}: {err}",
                    root.display()
                ))
                .into())
            }
        };
        let p = e.path();
        let n = e.file_name().to_string_lossy();
        if !e.file_type().is_file() || n.starts_with(".tmp") {
            continue;
        }
        let rel = p.strip_prefix(&root).unwrap_or(p);
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        match top.as_deref() {
            Some("records") if n.ends_with(".json") => record(ws, p, shared, f),
            Some("known-good")
                if n.starts_with('.') && n.ends_with(crate::stages::report::promote::INTENT) =>
            {
                let branch = n
                    .trim_start_matches('.')
                    .trim_end_matches(crate::stages::report::promote::INTENT)
                    .to_string();
                if json_parses(p, f).is_some() {
                    f.debris(
                        p,
                        format!("a promotion of {branch} cut short (the next fci report --promote of the branch completes it)"),
                        Repair::FinishPromotion(branch),
                    );
                }
            }
            Some(dir) if n.ends_with(".json") => {
                let v = json_parses(p, f);
                // The shapes fci's readers expect (`promote`, `watch::state`, `retest`).
                let wrong = match dir {
                    "known-good" => v.is_some_and(|v| !v.is_object()).then_some(
                        "a known-good set is a JSON object (package → what was promoted)",
                    ),
                    "excluded" | "retest" => v
                        .is_some_and(|v| !v.is_array())
                        .then_some("this state file is a JSON list"),
                    _ => None,
                };
                if let Some(why) = wrong {
                    f.damage(p, why);
                }
            }
            _ => {}
        }
    }
    // Kept in the workspace when there is no state directory (`Workspace::waivers`).
    let waivers = ws.waivers();
    if !waivers.starts_with(&root) && waivers.is_file() {
        json_parses(&waivers, f);
    }
    Ok(())
}

fn record(ws: &Workspace, p: &Path, shared: bool, f: &mut Findings) {
    if let Err(why) = crate::run_records::is_whole(p) {
        f.damage(p, why);
        return;
    }
    let Some(v) = json_parses(p, f) else { return };
    let artifacts = v["artifacts"].as_array().cloned().unwrap_or_default();
    for a in artifacts {
        let a: crate::manifest::Artifact =
            match serde_json::from_value::<Value>(a).and_then(serde_json::from_value) {
                Ok(a) => a,
                Err(e) => {
                    f.damage(p, format!("names an artifact that does not parse: {e}"));
                    continue;
                }
            };
        if shared && !manifests::present(ws, &a) {
            continue;
        }
        // Kept records are what `report --promote` trusts: an artifact one names that is gone
        // or changed is damage (fci gc keeps what retained records name).
        if let Err(why) = manifests::verify(ws, &a, p) {
            f.damage(p, why);
        }
    }
}
