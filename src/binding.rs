//! What binds a composed commit or an image to the run that consumes it. A manifest is the
//! user's file: its `ostree-commit` artifact could name any commit of the repository (another
//! package's candidate, an orphan a refused compose left), and its `image` artifact any image
//! of the content store. Every stage that consumes one (integrate, image, smoke, conform,
//! report --promote) takes it only through here, as `test` takes its RPMs only as its build
//! recorded them:
//!
//! - a composed commit must say so itself: its metadata (written by `fci compose`) names this
//!   run (or the run whose compose this one reused), the subject's package and dist-git
//!   commit, the base and the digests of the manifest's RPMs; its parent is the base the
//!   change was composed and tested on; and the run's candidate ref points at it;
//! - an image must be one `fci image` made in this workspace (its record, keyed by the
//!   image's sha256, is written beside the interval state), from that commit.
//!
//! Anything else is bad input (exit 2) naming the mismatch; nothing is consumed.

use crate::error::FciError;
use crate::manifest::{Artifact, ArtifactKind, Manifest, Outcome, StageName};
use crate::ostree::{self, Repo};
use crate::stage::Ctx;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The metadata keys `fci compose` writes into a composed commit.
pub const RUN: &str = "fci.run";
pub const PACKAGE: &str = "fci.package";
pub const DISTGIT_COMMIT: &str = "fci.dist-git-commit";
pub const BASE: &str = "fci.base";
pub const RPMS: &str = "fci.rpms";

/// The value of `fci.rpms`: the sha256 of each of the manifest's `rpm` artifacts, sorted,
/// space-separated.
pub fn rpm_digests(manifest: &Manifest) -> String {
    let mut v: Vec<&str> = manifest
        .artifacts_of(ArtifactKind::Rpm)
        .map(|a| a.sha256.as_str())
        .collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

/// The candidate ref `fci compose` sets for a run's commit.
pub fn candidate_ref(branch: &str, run: &str) -> String {
    format!("fci/{branch}/candidate/{run}")
}

/// A composed commit shown to be this run's.
pub struct Composed {
    pub repo: Repo,
    /// The repository's path, as the workspace resolves the artifact.
    pub repo_path: PathBuf,
    pub commit: String,
    pub branch: String,
    /// `fci/<branch>/candidate/<run>`, pointing at `commit`.
    pub candidate: String,
    /// The base the change was composed on: the commit's parent.
    pub base: String,
    pub artifact: Artifact,
}

/// Text from a commit or a manifest, safe on one line of an error.
fn shown(s: &str) -> String {
    let mut t: String = s
        .chars()
        .take(200)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if s.chars().count() > 200 {
        t.push('…');
    }
    t
}

/// The `ostree-commit` artifact of the manifest's compose, once shown to be this run's; None
/// when there is none (no compose, or one that made no commit). An artifact without its
/// compose record, or a passed compose without its artifact, is bad input. (Long: one list
/// of checks in order, each naming its own mismatch.)
pub fn composed(cx: &mut Ctx) -> Result<Option<Composed>> {
    let bad = |cx: &Ctx, msg: String| -> anyhow::Error { FciError::input(&cx.origin, msg).into() };
    let art = cx.manifest.composed_commit().cloned();
    let record = cx.manifest.last_stage(StageName::Compose).cloned();
    let (art, record) = match (art, record) {
        (None, Some(r)) if r.outcome == Outcome::Passed => {
            return Err(bad(
                cx,
                "the compose PASSED but its `ostree-commit` artifact is missing (edited manifest?)"
                    .into(),
            ))
        }
        (None, _) => return Ok(None),
        (Some(a), None) => {
            return Err(bad(
                cx,
                format!(
                    "ostree-commit {}: the manifest has no `compose` stage record that made it (edited manifest?)",
                    shown(&a.sha256)
                ),
            ))
        }
        (Some(a), Some(r)) if r.outcome == Outcome::Passed => (a, r),
        (Some(a), Some(r)) => {
            return Err(bad(
                cx,
                format!(
                    "ostree-commit {}: the compose that made it is {}, and a compose that did not pass makes no commit (edited manifest?)",
                    shown(&a.sha256),
                    r.outcome
                ),
            ))
        }
    };
    let repo_path = cx.consume(&art, ArtifactKind::OstreeCommit)?;
    let repo = Repo::open(&repo_path)?;
    let commit = art.sha256.clone();
    let not_ours = |what: String| {
        format!("ostree-commit {commit}: {what}: not this run's compose (edited manifest?)")
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let branch = text(record.data.get("branch"))
        .or_else(|| cx.manifest.subject.branch.clone())
        .ok_or_else(|| bad(cx, not_ours("the compose names no branch".into())))?;
    ostree::check_branch(&branch).map_err(|_| {
        bad(
            cx,
            format!(
                "the compose's branch `{}` is not a branch name",
                shown(&branch)
            ),
        )
    })?;
    // A reused compose's commit is the run's that made it.
    let run = if record.cached {
        text(record.data.get("cached_from_run")).ok_or_else(|| {
            bad(
                cx,
                not_ours("the reused compose names no run it came from".into()),
            )
        })?
    } else {
        cx.manifest.run.id.clone()
    };
    let candidate = candidate_ref(&branch, &run);
    if !ostree::is_ref(&candidate) {
        return Err(bad(
            cx,
            format!("run id `{}` cannot name an OSTree ref", shown(&run)),
        ));
    }
    let base = cx
        .manifest
        .subject
        .base
        .as_ref()
        .and_then(|b| b.ostree_commit.clone())
        .ok_or_else(|| bad(cx, not_ours("the subject records no base commit".into())))?;
    // What the commit says of itself.
    let info = repo.commit_info(
        &commit,
        &[RUN, PACKAGE, DISTGIT_COMMIT, BASE, RPMS],
        cx.log(),
    )?;
    let subject = &cx.manifest.subject;
    let expected = [
        (
            PACKAGE,
            subject.package.clone().unwrap_or_default(),
            "package",
        ),
        (
            DISTGIT_COMMIT,
            subject.commit.clone().unwrap_or_default(),
            "dist-git commit",
        ),
        (RUN, run.clone(), "run"),
        (BASE, base.clone(), "base"),
        (RPMS, rpm_digests(cx.manifest), "RPMs' sha256"),
    ];
    for (key, want, what) in expected {
        let got = info.metadata.get(key).cloned().flatten();
        if got.as_deref() != Some(want.as_str()) {
            let msg = match got {
                None => not_ours(format!(
                    "the commit has no {key} (not made by this version's `fci compose`; recompose with --no-cache)"
                )),
                Some(g) => not_ours(format!(
                    "its {key} is `{}`, but this run's {what} is `{}`",
                    shown(&g),
                    shown(&want)
                )),
            };
            return Err(bad(cx, msg));
        }
    }
    if info.parent.as_deref() != Some(base.as_str()) {
        return Err(bad(
            cx,
            not_ours(format!(
                "its parent is {}, not the base {base} this change was composed and tested on",
                info.parent.as_deref().unwrap_or("(none)")
            )),
        ));
    }
    match repo.rev_parse(&candidate, cx.log())? {
        Some(c) if c == commit => {}
        other => {
            return Err(bad(
                cx,
                not_ours(format!(
                    "the run's candidate ref {candidate} points at {}",
                    other.as_deref().unwrap_or("nothing")
                )),
            ))
        }
    }
    // What the manifest says of the compose must agree with itself.
    for (what, said, want) in [
        ("artifact name", Some(art.name.clone()), &candidate),
        (
            "compose record's ref",
            text(record.data.get("ref")),
            &candidate,
        ),
        (
            "compose record's commit",
            text(record.data.get("commit")),
            &commit,
        ),
        (
            "compose record's parent",
            text(record.data.get("parent")),
            &base,
        ),
    ] {
        if said.as_deref() != Some(want.as_str()) {
            return Err(bad(
                cx,
                not_ours(format!(
                    "the {what} is {}, not {want}",
                    said.as_deref().map_or("missing".into(), shown)
                )),
            ));
        }
    }
    Ok(Some(Composed {
        repo,
        repo_path,
        commit,
        branch,
        candidate,
        base,
        artifact: art,
    }))
}

/// `composed`, required: bad input saying `missing` when the manifest has no composed commit.
pub fn require_composed(cx: &mut Ctx, missing: &str) -> Result<Composed> {
    match composed(cx)? {
        Some(c) => Ok(c),
        None => Err(FciError::input(&cx.origin, missing.to_string()).into()),
    }
}

/// Where `fci image` records an image it made, by the image's sha256.
fn image_record(ws: &Workspace, sha256: &str) -> PathBuf {
    ws.state("image/made").join(format!("{sha256}.json"))
}

/// Records that `fci image` made `image` (stored in the content store) from `commit`.
pub fn record_image(ws: &Workspace, image: &Artifact, commit: &str) -> Result<()> {
    let path = image_record(ws, &image.sha256);
    std::fs::create_dir_all(path.parent().expect("a record has a directory"))?;
    let record = json!({"sha256": image.sha256, "path": image.path, "commit": commit});
    crate::files::write_atomic(&path, serde_json::to_string_pretty(&record)?.as_bytes())
}

/// The path of `art` (already consumed: its content is its sha256) once shown to be an image
/// `fci image` made in this workspace from the run's composed commit.
pub fn check_image(cx: &Ctx, art: &Artifact, composed: &Composed) -> Result<(), FciError> {
    let bad = |msg: String| {
        FciError::input(
            &cx.origin,
            format!(
                "image {}: {msg}: not this run's image (edited manifest?)",
                shown(&art.path)
            ),
        )
    };
    let path = image_record(cx.ws, &art.sha256);
    let made_from = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("commit").and_then(Value::as_str).map(String::from))
        .ok_or_else(|| {
            bad("`fci image` made no image with this content in this workspace".into())
        })?;
    if made_from != composed.commit {
        return Err(bad(format!(
            "made from commit {}, but this run's compose is {}",
            shown(&made_from),
            composed.commit
        )));
    }
    let said = art.extra.get("commit").and_then(Value::as_str);
    if said != Some(made_from.as_str()) {
        return Err(bad(format!(
            "the artifact says it was made from {}, but it was made from {made_from}",
            said.map_or("nothing".into(), shown)
        )));
    }
    Ok(())
}
