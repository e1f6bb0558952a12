//! Gating with Greenwave's semantics: a package's `gating.yaml` (`policy.rs`) evaluated
//! against ResultsDB results and WaiverDB waivers into a Greenwave-shaped decision
//! (`decision.rs`), with Greenwave's subject types and aliases (`subject.rs`); the workspace's
//! waivers (`local.rs`, `waive.rs`) and WaiverDB's (`waiverdb.rs`); Greenwave's decision message
//! (`message.rs`); the files it reads (`input.rs`); `fci gating` (`cli.rs`).

pub mod args;
pub mod cli;
pub mod decision;
pub mod input;
pub mod local;
pub mod message;
pub mod policy;
pub mod subject;
pub mod waive;
pub mod waiverdb;

#[cfg(test)]
mod tests;
