//! What the stage driver writes after each record: the record's statements
//! (`statement::all`), each in a DSSE envelope signed with the pipeline's key (unsigned
//! without one, and saying so), stored as an artifact of type `attestation` of that stage.
//!
//! Written fresh for every record, a reused one too (never taken from the stage cache): a
//! cached envelope would carry the key, or the lack of one, of the run that made it.

use super::dsse::{Envelope, IN_TOTO};
use super::keys::SigningKey;
use super::statement;
use crate::manifest::{ArtifactKind, Manifest, StageName};
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::json;
use std::path::Path;

/// How a pipeline signs: its key (none: statements are written unsigned) and the builder id
/// its statements name.
pub struct Signer {
    key: Option<SigningKey>,
    builder_id: String,
}

/// The builder id when none is given: fci on this host (SLSA's `builder.id` names the trust
/// boundary that ran the build; a pipeline says which with `--builder-id`).
fn default_builder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    format!("tag:fci,2026:builder/{host}")
}

impl Signer {
    /// Reads the key file, if any: a key that cannot be read is the caller's mistake (exit 2),
    /// named without its content.
    pub fn new(key_file: Option<&Path>, builder_id: Option<&str>) -> Result<Signer> {
        let key = key_file.map(SigningKey::from_file).transpose()?;
        if let Some(f) = key_file {
            // Every sandbox covers the key's path; another hard link to it would not be.
            use std::os::unix::fs::MetadataExt;
            if std::fs::metadata(f).is_ok_and(|m| m.nlink() > 1) {
                return Err(crate::error::FciError::input(
                    f,
                    "the signing key has other hard links: package code could read it through one; keep a single link",
                )
                .into());
            }
            // Package code runs in this process's sandboxes: the key is covered in each.
            crate::sandbox::keep_secret(f);
        }
        Ok(Signer {
            key,
            builder_id: builder_id.map_or_else(default_builder_id, String::from),
        })
    }

    pub fn key_id(&self) -> Option<String> {
        self.key.as_ref().map(SigningKey::key_id)
    }
}

/// Attests the manifest's last record: its earlier attestations (of an earlier run of the
/// stage) go, its statements are signed and stored, and the manifest names them.
pub fn last_record(ws: &Workspace, manifest: &mut Manifest, signer: &Signer) -> Result<()> {
    let Some(record) = manifest.stages.last() else {
        return Ok(());
    };
    let Some(stage) = StageName::parse(&record.name) else {
        return Ok(());
    };
    let statements = statement::all(manifest, record, &signer.builder_id);
    if statements.is_empty() {
        return Ok(());
    }
    manifest
        .artifacts
        .retain(|a| !(a.kind == ArtifactKind::Attestation && a.stage == stage.as_str()));
    for (name, st) in statements {
        let payload = serde_json::to_vec(&st)?;
        let envelope = Envelope::new(IN_TOTO, &payload, signer.key.as_ref());
        let bytes = serde_json::to_vec_pretty(&envelope)?;
        let mut art = ws.store_bytes(&bytes, ArtifactKind::Attestation, &name, stage)?;
        art.extra
            .insert("predicate_type".into(), st["predicateType"].clone());
        art.extra.insert("signed_by".into(), json!(signer.key_id()));
        manifest.artifacts.push(art);
    }
    Ok(())
}
