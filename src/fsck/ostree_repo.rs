//! The pipeline's OSTree repository: each branch's known-good ref resolves to a commit the
//! repository holds and is the commit its known-good set last promoted (or, during an
//! interrupted promotion, one of the two it moves between); `ostree fsck` of the whole
//! repository unless `--no-ostree`.

use super::{entries, Findings};
use crate::exec::{Cmd, Log};
use crate::ostree::{is_checksum, known_good_ref, Repo};
use crate::stages::report::promote;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::Value;

/// The commit a known-good set's latest promotion moved the ref to: of its entries with a
/// commit (a package promoted without a composed commit moved nothing), the latest.
pub fn last_promoted(set: &Value) -> Option<String> {
    set.as_object()?
        .values()
        .filter_map(|e| Some((e["at"].as_str()?, e["commit"].as_str()?)))
        .max()
        .map(|(_, c)| c.to_string())
}

/// The commit `refs/heads/<name>` holds, read as `Repo::rev_parse` reads a local ref.
fn read_ref(repo: &Repo, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(repo.path.join("refs/heads").join(name)).ok()?;
    Some(text.trim().to_string())
}

pub fn check(ws: &Workspace, run_fsck: bool, f: &mut Findings) -> Result<()> {
    let path = ws.ostree_repo();
    if !path.join("config").exists() {
        // No compose has made it yet; a known-good set without one is damage below.
        for set in entries(&ws.pipeline("known-good"))? {
            let Some(v) = std::fs::read(&set)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            else {
                continue;
            };
            if last_promoted(&v).is_some() {
                f.damage(
                    &set,
                    format!(
                        "names promoted commits, but there is no OSTree repository at {}",
                        path.display()
                    ),
                );
            }
        }
        return Ok(());
    }
    let repo = match Repo::open(&path) {
        Ok(r) => r,
        Err(e) => {
            f.damage(&path, crate::error::one_line(&e));
            return Ok(());
        }
    };
    refs(ws, &repo, f)?;
    if run_fsck {
        fsck(ws, &repo, f)?;
    }
    Ok(())
}

fn refs(ws: &Workspace, repo: &Repo, f: &mut Findings) -> Result<()> {
    // Every ref fci keeps names a commit the repository holds.
    let heads = repo.path.join("refs/heads");
    for e in walkdir::WalkDir::new(heads.join("fci"))
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        if !e.file_type().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let c = text.trim();
        if !is_checksum(c) {
            f.damage(e.path(), "a ref that holds no commit checksum");
        } else if !repo.has_commit(c) {
            f.damage(
                e.path(),
                format!("names commit {c}, which the repository does not hold"),
            );
        }
    }
    for set in entries(&ws.pipeline("known-good"))? {
        let n = set
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(branch) = n.strip_suffix(".json").filter(|_| !n.starts_with('.')) else {
            continue;
        };
        let Some(v) = std::fs::read(&set)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue; // state.rs names a set that does not parse
        };
        let kg = known_good_ref(branch);
        let now = read_ref(repo, &kg);
        if let Some(intent) = promote::read_intent(ws, branch) {
            // Between the two states of an interrupted promotion: either is consistent.
            let from = intent["from"].as_str();
            if now.as_deref() != from && now.as_deref() != intent["to"].as_str() {
                f.damage(
                    &set,
                    format!(
                        "{kg} is {}, neither end of the interrupted promotion {} → {}",
                        now.as_deref().unwrap_or("(none)"),
                        from.unwrap_or("(none)"),
                        intent["to"].as_str().unwrap_or("(none)")
                    ),
                );
            }
            continue;
        }
        if let Some(want) = last_promoted(&v) {
            if now.as_deref() != Some(want.as_str()) {
                f.damage(
                    &set,
                    format!(
                        "{kg} is {}, but the known-good set last promoted {want} (a half-done or foreign ref move)",
                        now.as_deref().unwrap_or("(none)")
                    ),
                );
            }
        }
    }
    Ok(())
}

fn fsck(ws: &Workspace, repo: &Repo, f: &mut Findings) -> Result<()> {
    let scratch = ws.scratch("fsck-")?;
    let mut log = Log::create(&scratch.path().join("ostree-fsck.log"))?;
    let out = log.capture(
        &Cmd::new("ostree")
            .arg("fsck")
            .arg("--quiet")
            .arg(format!("--repo={}", repo.path.display())),
    )?;
    if out.success() {
        return Ok(());
    }
    if out.code.is_none() {
        return Err(crate::error::FciError::Infra(format!(
            "ostree fsck of {} did not finish ({}): cannot check it",
            repo.path.display(),
            out.reason()
        ))
        .into());
    }
    let said: Vec<&str> = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    f.damage(
        &repo.path,
        format!(
            "ostree fsck: {}",
            if said.is_empty() {
                "failed without saying why".to_string()
            } else {
                said.iter()
                    .rev()
                    .take(3)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::last_promoted;
    use serde_json::json;

    #[test]
    fn the_ref_is_the_latest_promotion_that_moved_it() {
        let set = json!({
            "a": {"commit": "c1", "at": "2026-12-07T10:00:00.000Z"},
            "b": {"commit": "c2", "at": "2026-12-07T11:00:00.000Z"},
            // Promoted later without a composed commit: the ref did not move.
            "c": {"commit": null, "at": "2026-12-07T12:00:00.000Z"},
        });
        assert_eq!(last_promoted(&set).as_deref(), Some("c2"));
        assert_eq!(last_promoted(&json!({})), None);
    }
}
