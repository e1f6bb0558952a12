//! The base tree's rpm database, read before the change is installed: which base packages
//! the change updates (same name: rpm -U replaces them, as in Fedora), and which files only
//! those packages own (the change may replace them; a file of any other base package is
//! still a conflict).

use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the tree keeps its rpm database (OSTree carries /usr, not /var).
pub const DBPATH: &str = "/usr/lib/sysimage/rpm";

/// What the tree's database says.
#[derive(Debug, Default)]
pub struct TreeDb {
    /// Installed packages: name → NEVRA.
    pub packages: BTreeMap<String, String>,
    /// Owners of each path, as the path lands in the tree (`usr/etc/X` for `/etc/X`, no
    /// leading `/`).
    pub owners: BTreeMap<String, BTreeSet<String>>,
    /// Base packages with triggers or file triggers, as `PACKAGE (base): KIND`s: they would
    /// fire on the change in rpm; fci runs none (see `scriptlets`).
    pub triggers: Vec<(String, String)>,
}

/// The query `read` parses: a `P` line per package, an `F` line per file it owns.
const QUERYFORMAT: &str = "P\t%{NAME}\t%{NEVRA}\nT\t%{NAME}\t[%{TRIGGERTYPE}]\t[%{FILETRIGGERTYPE}]\t[%{TRANSFILETRIGGERTYPE}]\n[F\t%{=NAME}\t%{FILENAMES}\n]";

/// The tree's database, read with the host's rpm (nothing of the change is in it yet). Read
/// by its path, not `--root`: a query needs no root, and no rpm runs inside the tree before
/// the payload checks passed. rpm failing on the base's own database is the host's or the
/// base's trouble: ERROR.
pub fn read(tree: &Path, log: &mut Log) -> Result<TreeDb> {
    let q = Cmd::new("rpm")
        .arg("--dbpath")
        .arg(tree.join(&DBPATH[1..]))
        .args(["-qa", "--qf", QUERYFORMAT]);
    let out = log.capture_ok(&q, "rpm cannot read the base tree's rpm database")?;
    // rpm leaves out every package its query format fails on and still exits 0: a package
    // missing here would be neither updated nor guarded.
    if out.stderr.contains("incorrect format") {
        return Err(crate::error::FciError::Infra(format!(
            "rpm could not read every package of the base tree's database: {}",
            out.stderr.lines().next().unwrap_or_default()
        ))
        .into());
    }
    Ok(parse(&out.stdout))
}

fn parse(out: &str) -> TreeDb {
    let mut db = TreeDb::default();
    for line in out.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        match f.as_slice() {
            ["P", name, nevra] => {
                db.packages.insert(name.to_string(), nevra.to_string());
            }
            ["T", name, kinds] => {
                for (i, kind) in super::scriptlets::TRIGGER_KINDS.iter().enumerate() {
                    if kinds.split('\t').nth(i).is_some_and(|k| !k.is_empty()) {
                        db.triggers
                            .push((name.to_string(), format!("{name} (base): {kind}s")));
                    }
                }
            }
            ["F", name, path] => {
                if let Some(rel) = path.strip_prefix('/') {
                    db.owners
                        .entry(super::payload::landing(rel))
                        .or_default()
                        .insert(name.to_string());
                }
            }
            _ => {}
        }
    }
    db
}

impl TreeDb {
    /// The base packages `names` (the change's) update: those installed under the same name.
    pub fn updated(&self, names: &[String]) -> BTreeSet<String> {
        names
            .iter()
            .filter(|n| self.packages.contains_key(*n))
            .cloned()
            .collect()
    }

    /// What of the base's triggers fci does not run for this change: those of the base
    /// packages it does not update.
    pub fn triggers_not_run(&self, updated: &BTreeSet<String>) -> Vec<String> {
        self.triggers
            .iter()
            .filter(|(name, _)| !updated.contains(name))
            .map(|(_, said)| said.clone())
            .collect()
    }

    /// The paths (as they land, no leading `/`) owned by `updated` packages and by no other:
    /// what rpm -U removes or replaces when it updates them. A directory another package
    /// shares (`/usr/bin`) is not one of them.
    pub fn replaceable(&self, updated: &BTreeSet<String>) -> BTreeSet<String> {
        self.owners
            .iter()
            .filter(|(_, by)| !by.is_empty() && by.iter().all(|n| updated.contains(n)))
            .map(|(path, _)| path.clone())
            .collect()
    }
}

/// The package names of `rpms`, from their headers (a name holds no newline, unlike a file
/// name in the listing).
pub fn names(rpms: &[PathBuf], log: &mut Log) -> Result<Vec<String>> {
    let out = log.capture_ok(
        &Cmd::new("rpm")
            .args([
                "-qp",
                "--nosignature",
                "--nodigest",
                "--qf",
                "%{NAME}\n",
                "--",
            ])
            .args(rpms),
        "rpm -qp failed on the change's packages",
    )?;
    Ok(out.stdout.lines().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_no_other_package_owns_are_replaceable() {
        let db = parse(
            "P\tfilesystem\tfilesystem-3.18-1.noarch\n\
             F\tfilesystem\t/usr/bin\n\
             F\tfilesystem\t/etc/passwd\n\
             P\tsed\tsed-0-1.noarch\n\
             F\tsed\t/usr/bin/sed\n\
             F\tsed\t/usr/bin\n\
             F\tsed\t/etc/sed.conf\n\
             P\tbusybox\tbusybox-1.35.0-1.x86_64\n\
             T\tbusybox\t\tin\t\n\
             F\tbusybox\t/usr/bin/awk\n",
        );
        let updated = db.updated(&["sed".into(), "new-package".into()]);
        assert_eq!(updated, BTreeSet::from(["sed".to_string()]));
        assert_eq!(
            db.replaceable(&updated),
            BTreeSet::from(["usr/bin/sed".to_string(), "usr/etc/sed.conf".to_string()])
        );
        assert!(db.replaceable(&BTreeSet::new()).is_empty());
        assert_eq!(
            db.triggers_not_run(&updated),
            vec!["busybox (base): file triggers"]
        );
    }
}
