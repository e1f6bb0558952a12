//! `fci verify`: checks, offline, that an artifact (an image, an OSTree commit, an RPM) came
//! from a dist-git commit through fci's stages, from the signed attestations alone: every
//! link's digest is the next statement's subject, every envelope verifies with a trusted key,
//! the artifacts' bytes at hand match, and a policy holds (by default: the build's %check,
//! the tests and the smoke test passed, the gate was satisfied). Exit 0 verified, 1 a policy
//! failed, 2 the chain is broken or a signature bad (or the caller's mistake), 3 cannot read.

mod chain;
mod evidence;
mod policy;

use crate::error::FciError;
use crate::manifest::{ArtifactKind, Manifest};
use crate::provenance::keys::PublicKey;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `fci verify`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to verify: a file (an image, an RPM), an OSTree commit's checksum, or the name of
    /// an artifact of the manifest (default with -m: the run's image, else its commit, else
    /// its RPMs)
    #[arg(value_name = "ARTIFACT")]
    pub target: Option<String>,
    /// The run's manifest: its attestations are the evidence (default: every attestation in
    /// the workspace's object store)
    #[arg(short = 'm', long = "manifest", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// A trusted public key (SPKI PEM, as `openssl pkey -pubout` writes it); repeat for
    /// several
    #[arg(long = "key", value_name = "PUB.pem", required = true)]
    pub keys: Vec<PathBuf>,
    /// The policy's rules, comma-separated: check, test, integrate, conform, smoke, gate (or
    /// none)
    #[arg(long, value_name = "RULES", default_value = policy::DEFAULT)]
    pub require: String,
    /// Print the result as JSON instead of a tree
    #[arg(long)]
    pub json: bool,
}

/// A target: its sha256, what it is if known, its name.
struct Target {
    sha256: String,
    kind: Option<String>,
    name: String,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The targets `args` names, with the files whose bytes can be checked.
fn targets(
    args: &Args,
    manifest: Option<&Manifest>,
    files: &mut chain::Files,
) -> Result<Vec<Target>> {
    let of = |a: &crate::manifest::Artifact| Target {
        sha256: a.sha256.clone(),
        kind: Some(a.kind.as_str().to_string()),
        name: a.name.clone(),
    };
    if let Some(t) = &args.target {
        let p = Path::new(t);
        if p.is_file() {
            let (sha256, _) = crate::digest::sha256_file(p)?;
            files.by_sha256.insert(sha256.clone(), p.to_path_buf());
            let name = p
                .file_name()
                .map_or_else(|| t.clone(), |n| n.to_string_lossy().into_owned());
            return Ok(vec![Target {
                sha256,
                kind: None,
                name,
            }]);
        }
        if is_sha256(t) {
            return Ok(vec![Target {
                sha256: t.to_ascii_lowercase(),
                kind: None,
                name: t.clone(),
            }]);
        }
        if let Some(a) = manifest.and_then(|m| m.artifacts.iter().find(|a| &a.name == t)) {
            return Ok(vec![of(a)]);
        }
        return Err(FciError::Usage(format!(
            "{t}: neither a file, an OSTree commit's sha256, nor an artifact of the manifest"
        ))
        .into());
    }
    let Some(m) = manifest else {
        return Err(FciError::Usage(
            "name an ARTIFACT to verify, or a run's manifest with -m".into(),
        )
        .into());
    };
    for kind in [
        ArtifactKind::Image,
        ArtifactKind::OstreeCommit,
        ArtifactKind::Rpm,
    ] {
        // The packages, not their debuginfo and debugsource (nothing tests those).
        let found: Vec<Target> = m
            .artifacts_of(kind)
            .filter(|a| !a.nevra.as_ref().is_some_and(|n| n.is_debug()))
            .map(of)
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(FciError::input(
        args.manifest.as_deref().unwrap_or(Path::new("-")),
        "the run made no image, commit or RPM to verify",
    )
    .into())
}

pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let started = std::time::Instant::now();
    let rules =
        policy::parse(&args.require).map_err(|e| FciError::Usage(format!("--require: {e}")))?;
    let keys = args
        .keys
        .iter()
        .map(|k| PublicKey::from_file(k))
        .collect::<Result<Vec<_>, _>>()?;
    if !workspace.join("objects").is_dir() {
        return Err(FciError::Usage(format!(
            "{}: not an fci workspace (no objects/): nothing to verify",
            workspace.display()
        ))
        .into());
    }
    let ws = Workspace::open(workspace)?;
    let manifest = args.manifest.as_deref().map(Manifest::read).transpose()?;
    let mut files = chain::Files {
        by_sha256: BTreeMap::new(),
        ostree_repo: Some(ws.ostree_repo()),
    };
    let stored = evidence::stored(&ws);
    let loaded = match &manifest {
        Some(m) => {
            // The bytes the run's artifacts are stored as, to be hashed against the statements.
            for a in &m.artifacts {
                if matches!(
                    a.kind,
                    ArtifactKind::Rpm | ArtifactKind::Srpm | ArtifactKind::Image
                ) {
                    if let Ok(p) = ws.resolve(&a.path) {
                        files.by_sha256.entry(a.sha256.clone()).or_insert(p);
                    }
                }
            }
            evidence::of_manifest(&ws, m, &keys)
        }
        None => evidence::of_store(&ws, &keys, &stored),
    };
    // The bytes by the digest they are stored under, whatever the manifest says of them: an
    // edited manifest must not decide which artifacts are hashed.
    for (sha, f) in stored {
        files.by_sha256.insert(sha, f);
    }
    let targets = targets(&args, manifest.as_ref(), &mut files)?;
    let mut walk = chain::Walk::new(&loaded.good, &files);
    let mut broken: Vec<String> = loaded
        .bad
        .iter()
        .map(|b| format!("attestation {}: {}", b.file, b.why))
        .collect();
    let mut chains = Vec::new();
    let mut verdicts = Vec::new();
    for t in &targets {
        let node = walk.from(&t.sha256, t.kind.as_deref(), &t.name);
        if !node.walk().iter().any(|n| n.kind == "dist-git") && node.made_by.is_some() {
            walk.broken.push(format!(
                "{} {}: the chain does not reach a dist-git commit",
                node.kind, node.name
            ));
        }
        verdicts.extend(policy::check(
            &rules,
            &node,
            &loaded.good,
            walk.run.as_deref(),
        ));
        chains.push(node);
    }
    broken.append(&mut walk.broken);
    let policy_failed = verdicts.iter().any(|v| v.status == "failed");
    let code = if !broken.is_empty() {
        crate::error::exit::BAD_INPUT
    } else if policy_failed {
        crate::error::exit::FAILED
    } else {
        crate::error::exit::PASSED
    };
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let out = json!({
            "verified": code == 0,
            "exit_code": code,
            "chain": chains,
            "policy": verdicts,
            "broken": broken,
            "missing_attestations": loaded.missing,
            "ignored_envelopes": loaded.ignored,
            "keys": keys.iter().map(PublicKey::key_id).collect::<Vec<_>>(),
            "seconds": elapsed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = String::new();
        for c in &chains {
            tree(c, "", "", &mut text);
        }
        text.push_str("policy:\n");
        for v in &verdicts {
            text.push_str(&format!("  {:<7} {:<9} {}\n", v.status, v.rule, v.why));
        }
        for m in &loaded.missing {
            text.push_str(&format!("  (attestation {m} is gone)\n"));
        }
        print!("{text}");
        let line = match (broken.first(), policy_failed) {
            (Some(b), _) => format!("NOT VERIFIED: chain broken at {b}"),
            (None, true) => {
                let first = verdicts.iter().find(|v| v.status == "failed");
                format!(
                    "NOT VERIFIED: policy `{}` failed: {}",
                    first.map_or("", |v| v.rule.as_str()),
                    first.map_or("", |v| v.why.as_str())
                )
            }
            (None, false) => {
                let git = chains
                    .first()
                    .and_then(|c| c.walk().into_iter().find(|n| n.kind == "dist-git"))
                    .map(|n| {
                        format!(
                            " from {} @ {}",
                            n.name,
                            n.digest.get("gitCommit").map_or("?", |s| s.as_str())
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "verified{git} ({} attestations, {elapsed:.2}s)",
                    loaded.good.len()
                )
            }
        };
        println!("{line}");
    }
    Ok(code)
}

/// One node and its inputs, drawn as a tree.
fn tree(n: &chain::Node, first: &str, rest: &str, out: &mut String) {
    let digest = n
        .digest
        .iter()
        .next()
        .map(|(k, v)| format!(" ({k} {})", chain::short(v)))
        .unwrap_or_default();
    let mut line = format!("{first}{} {}{digest}", n.kind, n.name);
    if let Some(m) = &n.made_by {
        line.push_str(&format!(
            ": made by {} in run {}, signed by {}",
            m.stage,
            m.run.as_deref().unwrap_or("?"),
            chain::short(&m.keyid)
        ));
        if n.file.is_some() && n.kind != "ostree-commit" {
            line.push_str(", bytes checked");
        }
    }
    if let Some(note) = &n.note {
        line.push_str(&format!(" [{note}]"));
    }
    if let Some(p) = &n.problem {
        line.push_str(&format!(" BROKEN: {p}"));
    }
    out.push_str(&line);
    out.push('\n');
    let count = n.inputs.len();
    for (i, c) in n.inputs.iter().enumerate() {
        let last = i + 1 == count;
        let (f, r) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        tree(c, &format!("{rest}{f}"), &format!("{rest}{r}"), out);
    }
}
