//! A test format found in the dist-git tree, behind one interface: `sti.rs` (one suite per
//! playbook) and `tmt.rs` (one suite for all plans). The test stage drives any of them the
//! same way: attempts, reruns of what failed, the run's own reports kept.

use super::runner::{Cases, Env};
use super::select::Filter;
use crate::exec::Log;
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What every run of a suite shares besides the sandbox: the STI tags, fci's roles.
pub struct RunCtx<'a> {
    pub env: &'a Env<'a>,
    pub tags: &'a [String],
    pub roles: &'a Path,
}

pub trait Suite {
    /// The runner's name, as results and reruns know it (`sti`, `tmt`).
    fn runner(&self) -> &'static str;
    /// The programs it runs.
    fn tools(&self) -> Vec<Tool>;
    /// The STI playbook it is; tmt's plans are groups inside one suite.
    fn group(&self) -> Option<String>;
    /// Runs the selected cases in `dir`, a fresh directory of this attempt.
    fn run(&self, cx: &RunCtx, only: &Filter, dir: &Path, log: &mut Log) -> Result<Cases>;
    /// The run's own report files in `dir`, (label, path), kept for whoever debugs it.
    fn reports(&self, dir: &Path) -> Vec<(String, PathBuf)>;
    /// What a step line says it runs (`tests/tests.yml (3 tests)`), the dist-git tree `tree`.
    fn shown(&self, _tree: &Path) -> String {
        self.group()
            .unwrap_or_else(|| format!("the {} plans", self.runner()))
    }
}
