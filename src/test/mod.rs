//! `fci test` (placeholder while the build stage is brought up).
use crate::stage::Io;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerChoice { Auto, Sti, Tmt }

pub struct TestOpts {
    pub io: Io, pub workspace: PathBuf, pub runner: RunnerChoice, pub tags: Vec<String>, pub retries: u32,
    pub failed_only: bool, pub base_root: Option<PathBuf>, pub network: bool, pub tests_from: Option<PathBuf>,
    pub force: bool, pub no_cache: bool,
}
pub fn run(_o: &TestOpts) -> anyhow::Result<i32> { unimplemented!() }
