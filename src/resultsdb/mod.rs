//! Results in ResultsDB's data model: a manifest's records and test cases as results
//! (`mapping.rs`), the workspace's own results database (`store.rs`), and a remote ResultsDB
//! (`client.rs`) reached through a spool (`deliver.rs`).

pub mod amqp;
pub mod client;
pub mod deliver;
pub mod emit;
pub mod journal;
pub mod mapping;
pub mod messages;
pub mod store;
