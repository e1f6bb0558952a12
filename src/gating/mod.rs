//! Gating with Greenwave's semantics: a package's `gating.yaml` (`policy.rs`) evaluated
//! against ResultsDB results and WaiverDB waivers into a Greenwave-shaped decision
//! (`decision.rs`).

pub mod decision;
pub mod policy;

#[cfg(test)]
mod tests;
