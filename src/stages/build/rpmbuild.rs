//! The rpmbuild backend: rpmbuild in an isolated `_topdir`, inside bubblewrap.

use super::backend::{
    check_status, collect, macro_files, sandbox, Backend, Capabilities, Job, Output,
};
use crate::exec::{Cmd, Log};
use anyhow::Result;

pub struct Rpmbuild;

impl Backend for Rpmbuild {
    fn name(&self) -> &'static str {
        "rpmbuild"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            host_root: true,
            fedora_macros: true,
            isolation: "bubblewrap",
        }
    }

    fn tools(&self) -> Vec<crate::tool::Tool> {
        vec![super::RPMBUILD, crate::tool::BWRAP]
    }

    fn build(&self, job: &Job, log: &mut Log) -> Result<Output> {
        let top = job.work.join("rpmbuild");
        let home = job.work.join("home");
        for d in ["BUILD", "BUILDROOT", "RPMS", "SRPMS", "SPECS", "tmp"] {
            std::fs::create_dir_all(top.join(d))?;
        }
        std::fs::create_dir_all(&home)?;
        let mut cmd = Cmd::new("rpmbuild").arg("-ba");
        for m in macro_files(job) {
            cmd = cmd.arg("--load").arg(m);
        }
        if job.nodeps {
            cmd = cmd.arg("--nodeps");
        }
        if job.nocheck {
            cmd = cmd.arg("--nocheck");
        }
        cmd = cmd
            .define("_topdir", &top)
            .define("_sourcedir", job.sources)
            .define("_tmppath", top.join("tmp"))
            .define("_builddir", top.join("BUILD"));
        for (k, v) in job.defines {
            cmd = cmd.define(k, v);
        }
        let cmd = cmd.arg(job.spec);
        let cmd = sandbox(job).wrap(&cmd)?;
        // A timeout is judged by `work::explain_failure`: ERROR, never reused.
        let done = log.run(
            &cmd.timeout(job.timeout)
                .timeout_whole(job.timeout_whole)
                .judges_timeout(),
        )?;
        let outputs_replaced =
            super::backend::replaced_outputs(job.work, &[top.join("SRPMS"), top.join("RPMS")]);
        if let Some(why) = &outputs_replaced {
            log.line(&format!("fci: {why}"));
        }
        let tail = log.tail(40);
        let packages = collect(job.work, &top.join("SRPMS"))?
            .into_iter()
            .chain(collect(job.work, &top.join("RPMS"))?)
            .collect();
        let (check_ran, check_failed) = match std::fs::File::open(&log.path) {
            Ok(f) => check_status(f),
            Err(_) => (false, false),
        };
        Ok(Output {
            success: done.success() && outputs_replaced.is_none(),
            outputs_replaced,
            check_failed,
            check_ran,
            packages,
            tail,
            timed_out: done.timed_out,
            limit: done.limit,
            host_failure: None,
            signal: super::backend::signal_of(done.code).or(done.signal),
        })
    }
}
