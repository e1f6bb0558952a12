//! Results in ResultsDB's data model: a manifest's records and test cases as results
//! (`mapping.rs`), and the workspace's own results database (`store.rs`).

pub mod mapping;
pub mod store;
