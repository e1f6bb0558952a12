//! What the compose stage reads from package headers: a scriptlet as rpm keeps it, where a
//! header is read from (a package file of the change, or a package installed in the base), and
//! the query itself. Apart from `scriptlets` (which runs them) and `filetriggers` (which reads
//! the transaction file triggers), which both use it.

use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::path::Path;

/// What a maintainer calls the file trigger fci runs.
pub const FILE_TRIGGER: &str = "%transfiletriggerin";

/// The kinds of trigger, in the order of rpm's tags: TRIGGERTYPE, FILETRIGGERTYPE,
/// TRANSFILETRIGGERTYPE. fci runs none of the base's, and of the change's only the
/// `%transfiletriggerin` (`filetriggers`).
pub const TRIGGER_KINDS: [&str; 3] = ["trigger", "file trigger", "transaction file trigger"];

/// One scriptlet of one package.
#[derive(Debug, Clone)]
pub struct Scriptlet {
    pub package: String,
    pub phase: &'static str,
    /// The interpreter and its arguments (`/bin/sh`, or `/sbin/ldconfig` alone with `-p`).
    pub prog: Vec<String>,
    /// The script, when there is one (a `-p PROGRAM` scriptlet has none).
    pub body: Option<String>,
    /// The path prefixes of a `%transfiletriggerin` (below the tree, no leading `/`); empty
    /// for the other phases.
    pub prefixes: Vec<String>,
    /// A file trigger's `-P` priority (rpm runs the higher first; 1000000 unless given); 0 for
    /// the other phases.
    pub priority: u32,
    /// The base package a file trigger is of (fired by the change's files); None for the
    /// change's own scriptlets.
    pub from_base: Option<String>,
}

impl Scriptlet {
    pub fn is_file_trigger(&self) -> bool {
        self.phase == FILE_TRIGGER
    }
}

/// Where a package's header is read from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A package file of the change (`rpm -qp`).
    File(&'a Path),
    /// A package installed in the base: the database directory (a copy of the base's,
    /// `layer::peek_db`) and its NEVRA.
    Installed { db: &'a Path, nevra: &'a str },
}

/// `rpm -q` with `qf` on `source`: its output; `Ok(Err(why))` when the header holds more than
/// fci reads (a script of many megabytes: the change's failure, or the base's, said as such).
/// rpm failing on a package `fci build` made, or on the base's database, is the host's
/// trouble.
pub fn header(
    source: Source,
    qf: &str,
    log: &mut Log,
) -> Result<std::result::Result<String, String>> {
    let (cmd, what) = match source {
        Source::File(rpm) => (
            rpm_qp().arg("--qf").arg(qf).arg("--").arg(rpm),
            rpm.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        ),
        Source::Installed { db, nevra } => (
            Cmd::new("rpm")
                .c_locale()
                .arg("--dbpath")
                .arg(db)
                .args(["-q", "--qf", qf, "--", nevra]),
            format!("{nevra} (base)"),
        ),
    };
    let out = log.capture(&cmd)?;
    if out.over_limit {
        return Ok(Err(format!(
            "the scriptlets in {what} are larger than fci reads ({})",
            crate::caps::human(crate::caps::CAPTURED_OUTPUT)
        )));
    }
    let out = out
        .checked()
        .map_err(|f| f.infra(format!("rpm cannot read the scriptlets of {what}")))?;
    Ok(Ok(out.stdout))
}

fn rpm_qp() -> Cmd {
    Cmd::new("rpm")
        .c_locale()
        .args(["-qp", "--nosignature", "--nodigest"])
}
