//! Results in ResultsDB's data model: a manifest's records and test cases as results
//! (`mapping.rs`), the workspace's own results database (`store.rs`), and a remote ResultsDB
//! (`client.rs`) reached through a spool (`deliver.rs`). Messages are the bus's
//! (`crate::bus`).

pub mod client;
pub mod deliver;
pub mod mapping;
pub mod store;
