//! fci: a distribution's CI pipeline for OS packages, one stage at a time.
//!
//! The binary's subcommands are thin: each stage (`stages/<stage>/`) owns its flags and an
//! `exec` that hands a [`stage::Stage`] to the driver, [`stage::drive`], which returns the
//! stage's exit code.

pub mod binding;
pub mod bootentry;
pub mod bundle;
pub mod bus;
pub mod cancel;
pub mod caps;
pub mod cgroup;
pub mod cli;
pub mod config;
pub mod devnodes;
pub mod digest;
pub mod distgit;
pub mod duration;
pub mod error;
pub mod exec;
pub mod files;
pub mod fsck;
pub mod gating;
pub mod gc;
pub mod hostcache;
pub mod junit;
pub mod known_good;
pub mod limits;
pub mod manifest;
pub mod net;
pub mod ostree;
pub mod progress;
pub mod provenance;
pub mod redact;
pub mod resultsdb;
pub mod run_records;
pub mod sandbox;
pub mod seccomp;
pub mod stage;
pub mod stages;
pub mod statelock;
pub mod suites;
pub mod tool;
pub mod users;
pub mod verify;
pub mod volume;
pub mod workspace;

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
