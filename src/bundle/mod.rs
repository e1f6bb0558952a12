//! Portable runs: `fci bundle` writes a run's manifest with exactly the artifacts and logs it
//! references to one tar file; `fci unbundle` verifies every member against the bundle's index
//! and the manifest's own digests, then stores them into another workspace and writes the
//! manifest as that workspace knows it (docs/bundle.md).
//!
//! A bundle is not a stage: it adds no record to the manifest and is never cached.
//!
//! Layout of the tar file, in this order:
//! - `fci-bundle.json`: the index ([`Index`]): the manifest's sha256 and each member's path,
//!   type (file or directory), sha256 (a file's, or a directory's tree digest) and size;
//! - `manifest.json`: the manifest;
//! - `members/<path>`: each member at its workspace-relative path.

mod index;
mod pack;
mod unpack;

use std::path::PathBuf;

pub use index::{Index, Member, MemberType};

/// `fci bundle`'s flags.
#[derive(clap::Args, Debug)]
pub struct BundleArgs {
    /// The run's manifest (`-` for stdin)
    #[arg(short = 'm', long, default_value = "-", value_name = "FILE")]
    pub manifest: PathBuf,
    /// The bundle to write (a tar file)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `fci unbundle`'s flags.
#[derive(clap::Args, Debug)]
pub struct UnbundleArgs {
    /// The bundle `fci bundle` wrote
    #[arg(value_name = "FILE")]
    pub bundle: PathBuf,
    /// The manifest to write, its paths as this workspace knows them (`-` for stdout)
    #[arg(short = 'o', long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,
}

pub use pack::exec as exec_bundle;
pub use unpack::exec as exec_unbundle;
