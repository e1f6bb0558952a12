//! The pipeline's stages, one folder each; every backend is a file of its own. What every
//! stage shares (workspace, skipping, input digest, reuse, lock, record, log, output, exit
//! code) is the driver in `crate::stage`: a stage module holds only its own work.

pub mod build;
pub mod compose;
pub mod conform;
pub mod image;
pub mod integrate;
pub mod report;
pub mod smoke;
pub mod test;
pub mod watch;
