//! The attestations `fci verify` reads: a run's (those its manifest names) or, without a
//! manifest, every envelope in the workspace's object store. Each is checked against the
//! trusted keys before its statement counts; the manifest and the files are untrusted, the
//! signed statements are all that is believed.

use crate::manifest::{ArtifactKind, Manifest};
use crate::provenance::dsse::{Envelope, IN_TOTO};
use crate::provenance::keys::PublicKey;
use crate::provenance::statement::{SLSA_PROVENANCE_V1, STATEMENT_V1, TEST_RESULT_V0_1, VSA_V1};
use crate::workspace::Workspace;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// An envelope is a few kilobytes; anything near this is not fci's.
const MAX_ENVELOPE: u64 = 16 << 20;

/// What a statement says, as `fci verify` reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// SLSA provenance of this stage's products (build, compose, image).
    Provenance(String),
    /// A test result of this suite (build.check, test, integrate, smoke, conform).
    TestResult(String),
    /// The report's gating decision (a SLSA verification summary).
    Gate,
    /// A statement fci does not write.
    Other,
}

/// A statement whose envelope verified with a trusted key.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// Where it was read (workspace-relative).
    pub file: String,
    pub keyid: String,
    pub statement: Value,
    pub what: What,
    /// The pipeline run that wrote it.
    pub run: Option<String>,
    /// When the work it speaks of ended (RFC 3339): among several, the latest speaks.
    pub time: String,
    /// The envelope's own sha256 (what a gating decision names it by).
    pub sha256: String,
}

impl Evidence {
    /// Whether its subject names this sha256.
    pub fn about(&self, sha256: &str) -> bool {
        self.statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"]["sha256"].as_str() == Some(sha256))
    }
}

/// An attestation that was named or found and cannot be believed: the chain is broken there.
#[derive(Clone, Debug)]
pub struct Bad {
    pub file: String,
    pub why: String,
}

#[derive(Default, Debug)]
pub struct Loaded {
    pub good: Vec<Evidence>,
    pub bad: Vec<Bad>,
    /// Attestations the manifest names whose file is gone: absent, not broken.
    pub missing: Vec<String>,
    /// Envelopes in the store signed by no trusted key (other pipelines', unsigned runs'):
    /// not evidence, not damage.
    pub ignored: usize,
}

fn what_of(st: &Value) -> (What, Option<String>, String) {
    let s = |v: &Value| v.as_str().map(String::from);
    let p = &st["predicate"];
    match st["predicateType"].as_str().unwrap_or_default() {
        SLSA_PROVENANCE_V1 => {
            let stage = p["buildDefinition"]["buildType"]
                .as_str()
                .and_then(|t| t.strip_prefix("tag:fci,2026:build-type/"))
                .and_then(|t| t.split('/').next())
                .unwrap_or("unknown")
                .to_string();
            let md = &p["runDetails"]["metadata"];
            (
                What::Provenance(stage),
                s(&md["invocationId"]),
                s(&md["finishedOn"]).unwrap_or_default(),
            )
        }
        TEST_RESULT_V0_1 => {
            let suite = p["configuration"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|c| {
                    c["uri"]
                        .as_str()
                        .and_then(|u| u.strip_prefix("tag:fci,2026:suite/"))
                        .map(|n| (n.to_string(), c))
                });
            match suite {
                Some((name, c)) => (
                    What::TestResult(name),
                    s(&c["annotations"]["invocationId"]),
                    s(&c["annotations"]["finishedOn"]).unwrap_or_default(),
                ),
                None => (What::Other, None, String::new()),
            }
        }
        VSA_V1 => (
            What::Gate,
            s(&p["invocationId"]),
            s(&p["timeVerified"]).unwrap_or_default(),
        ),
        _ => (What::Other, None, String::new()),
    }
}

/// Reads and checks one envelope; `Err` says why it cannot be believed.
fn check(bytes: &[u8], keys: &[PublicKey], file: &str) -> Result<Evidence, String> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if env.payload_type != IN_TOTO {
        return Err(format!("payloadType {:?}, not {IN_TOTO}", env.payload_type));
    }
    let keyid = env.verify(keys)?;
    let payload = env.payload_bytes()?;
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|e| format!("the statement is not JSON: {e}"))?;
    if statement["_type"] != STATEMENT_V1 {
        return Err(format!(
            "not an in-toto Statement v1 ({})",
            statement["_type"]
        ));
    }
    let (what, run, time) = what_of(&statement);
    Ok(Evidence {
        file: file.to_string(),
        keyid,
        statement,
        what,
        run,
        time,
        sha256: crate::digest::sha256_bytes(bytes),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    crate::caps::read_file_with(path, MAX_ENVELOPE, crate::caps::Open::NO_LINK)
        .map_err(|e| e.to_string())
}

/// The attestations `manifest` names: each must be there as named (its sha256) and verify.
pub fn of_manifest(ws: &Workspace, m: &Manifest, keys: &[PublicKey]) -> Loaded {
    let mut out = Loaded::default();
    for a in m.artifacts_of(ArtifactKind::Attestation) {
        let shown = format!("{} ({} attestation {})", a.path, a.stage, a.name);
        let path = match ws.resolve(&a.path) {
            Ok(p) => p,
            Err(e) => {
                out.bad.push(Bad {
                    file: shown,
                    why: e.to_string(),
                });
                continue;
            }
        };
        if !path.exists() {
            out.missing.push(shown);
            continue;
        }
        // The signature first: it says what was altered, the digest only that something was.
        let checked = read(&path).and_then(|bytes| {
            let e = check(&bytes, keys, &a.path)?;
            let sha = crate::digest::sha256_bytes(&bytes);
            if sha != a.sha256 {
                return Err(format!(
                    "rewritten: its sha256 is {sha}, the manifest names {}",
                    a.sha256
                ));
            }
            Ok(e)
        });
        match checked {
            Ok(e) => out.good.push(e),
            Err(why) => out.bad.push(Bad { file: shown, why }),
        }
    }
    out
}

/// Every file of the workspace's object store (`objects/<aa>/<sha256>/<name>`), with the
/// digest it is stored under: listed once, for the envelopes and for the bytes to hash.
pub fn stored(ws: &Workspace) -> Vec<(String, PathBuf)> {
    let list = |p: &Path| std::fs::read_dir(p).into_iter().flatten().flatten();
    let mut out = Vec::new();
    for shard in list(&ws.root().join("objects")) {
        for obj in list(&shard.path()) {
            let sha = obj.file_name().to_string_lossy().into_owned();
            out.extend(list(&obj.path()).map(|f| (sha.clone(), f.path())));
        }
    }
    out
}

/// Every envelope in the workspace's object store (`objects/<xx>/<sha256>/<name>.intoto.json`):
/// those a trusted key signed are evidence; one claiming a trusted key's id whose signature
/// does not verify (or whose bytes no longer match the digest it is stored under) was altered.
pub fn of_store(ws: &Workspace, keys: &[PublicKey], stored: &[(String, PathBuf)]) -> Loaded {
    let mut out = Loaded::default();
    let trusted: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
    for (stored_as, path) in stored {
        if !path.to_string_lossy().ends_with(".intoto.json") {
            continue;
        }
        let rel = ws.relative(path);
        let Ok(bytes) = read(path) else {
            continue;
        };
        let env: Option<Envelope> = serde_json::from_slice(&bytes).ok();
        let claims_trusted = env
            .as_ref()
            .is_some_and(|e| e.signatures.iter().any(|s| trusted.contains(&s.keyid)));
        let sha = crate::digest::sha256_bytes(&bytes);
        let altered = sha != *stored_as;
        match check(&bytes, keys, &rel) {
            Ok(_) if altered => out.bad.push(Bad {
                file: rel,
                why: format!("rewritten: its sha256 is {sha}, it is stored as {stored_as}"),
            }),
            Ok(e) => out.good.push(e),
            Err(why) if claims_trusted || altered => out.bad.push(Bad { file: rel, why }),
            Err(_) => out.ignored += 1,
        }
    }
    out.good.sort_by(|a, b| a.file.cmp(&b.file));
    out
}
