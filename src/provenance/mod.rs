//! Provenance (issue 18): in-toto Statements about the artifacts fci makes, in DSSE envelopes
//! signed with the pipeline's ed25519 key, checkable offline by anyone holding the public key
//! (docs/design.md names the spec versions). This module holds the envelope and the keys; the
//! statements each stage writes, and `fci verify`, build on it.

pub mod attest;
pub mod dsse;
pub mod keys;
pub mod statement;
