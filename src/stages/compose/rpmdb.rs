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
    /// Installed packages: name → each installed instance. One name may be installed more
    /// than once (multilib's x86_64 and i686, install-only kernels, gpg-pubkey).
    pub packages: BTreeMap<String, Vec<Instance>>,
    /// Owners of each path, as the path lands in the tree (`usr/etc/X` for `/etc/X`, no
    /// leading `/`).
    pub owners: BTreeMap<String, BTreeSet<String>>,
    /// The `%ghost` entries, as `owners`: files a package owns but never ships (the caches
    /// and indexes its scriptlets and triggers write).
    pub ghosts: BTreeMap<String, BTreeSet<String>>,
    /// Base packages with triggers or file triggers, as `PACKAGE (base): KIND`s: they would
    /// fire on the change in rpm; fci runs none (see `scriptlets`).
    pub triggers: Vec<(String, String)>,
    /// Base packages with a `%transfiletriggerin`, as (name, NEVRA): rpm runs one when the
    /// transaction installs a file below its prefixes, and so does fci (`layer`).
    pub trans_in: Vec<(String, String)>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub nevra: String,
    /// Empty for a package without one (gpg-pubkey).
    pub arch: String,
}

impl Instance {
    /// Whether installing a package of the same name and `arch` with `rpm -U` erases this
    /// one: rpm replaces an instance of the same arch, and a noarch package replaces or is
    /// replaced by any (multilib's other arch stays, as rpm's transaction colour keeps it).
    pub fn replaced_by(&self, arch: &str) -> bool {
        self.arch == arch || self.arch == "noarch" || arch == "noarch" || self.arch.is_empty()
    }
}

/// The query `read` parses: a `P` line per package, an `F` line per file it owns.
/// A `T` line per package holds its triggers' kinds (the transaction file triggers' other
/// than `in`: those fci runs), an `X` line the kinds of its transaction file triggers.
const QUERYFORMAT: &str = "P\t%{NAME}\t%{NEVRA}\t%{ARCH}\nT\t%{NAME}\t[%{TRIGGERTYPE}]\t[%{FILETRIGGERTYPE}]\t[%{TRANSFILETRIGGERTYPE} ]\nX\t%{NAME}\t%{NEVRA}\t[%{TRANSFILETRIGGERTYPE} ]\n[F\t%{=NAME}\t%{FILEFLAGS}\t%{FILENAMES}\n]";

/// The base's database (`db`, a copy of its directory: even a query writes into sqlite's
/// files), read with the host's rpm. Read by its path, not `--root`: a query needs no root, and no rpm runs inside the tree before
/// the payload checks passed. rpm failing on the base's own database is the host's or the
/// base's trouble: ERROR.
pub fn read(db: &Path, log: &mut Log) -> Result<TreeDb> {
    let q = Cmd::new("rpm")
        .c_locale()
        .arg("--dbpath")
        .arg(db)
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
            ["P", name, rest] => {
                let (nevra, arch) = rest.split_once('\t').unwrap_or((rest, ""));
                // rpm prints `(none)` for a tag a package lacks.
                let arch = if arch == "(none)" { "" } else { arch };
                db.packages
                    .entry(name.to_string())
                    .or_default()
                    .push(Instance {
                        nevra: nevra.to_string(),
                        arch: arch.to_string(),
                    });
            }
            ["T", name, kinds] => {
                for (i, kind) in super::headers::TRIGGER_KINDS.iter().enumerate() {
                    let k = kinds.split('\t').nth(i).unwrap_or_default();
                    if i == 2 {
                        // `in` is run; `un` and `postun` would fire on what the update
                        // removes.
                        for other in k.split_whitespace().filter(|t| *t != "in") {
                            db.triggers.push((
                                name.to_string(),
                                format!("{name} (base): %transfiletrigger{other}"),
                            ));
                        }
                    } else if !k.is_empty() {
                        db.triggers
                            .push((name.to_string(), format!("{name} (base): {kind}s")));
                    }
                }
            }
            ["X", name, rest] => {
                let (nevra, kinds) = rest.split_once('\t').unwrap_or((rest, ""));
                if kinds.split_whitespace().any(|k| k == "in") {
                    db.trans_in.push((name.to_string(), nevra.to_string()));
                }
            }
            ["F", name, rest] => {
                let (flags, path) = rest.split_once('\t').unwrap_or(("0", rest));
                if let Some(rel) = path.strip_prefix('/') {
                    let landing = super::payload::landing(rel);
                    // RPMFILE_GHOST
                    if flags.parse::<u64>().is_ok_and(|f| f & 0x40 != 0) {
                        db.ghosts
                            .entry(landing.clone())
                            .or_default()
                            .insert(name.to_string());
                    }
                    db.owners
                        .entry(landing)
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
    pub fn updated(&self, names: &[Named]) -> BTreeSet<String> {
        names
            .iter()
            .filter(|n| self.packages.contains_key(&n.name))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The NEVRAs the database holds once `rpm -U` installed the change's packages `names`:
    /// every base instance but those a package of the change replaces (`Instance::replaced_by`),
    /// and the change's own. Sorted.
    pub fn after_update(&self, names: &[Named]) -> Vec<String> {
        let mut v: Vec<String> = self
            .packages
            .iter()
            .flat_map(|(name, instances)| {
                instances.iter().filter(move |i| {
                    !names
                        .iter()
                        .any(|n| &n.name == name && i.replaced_by(&n.arch))
                })
            })
            .map(|i| i.nevra.clone())
            .chain(names.iter().map(|n| n.nevra.clone()))
            .collect();
        v.sort();
        v
    }

    /// The NEVRAs of the base instances the change's packages replace.
    pub fn replaced(&self, names: &[Named]) -> Vec<String> {
        names
            .iter()
            .flat_map(|n| {
                self.packages
                    .get(&n.name)
                    .into_iter()
                    .flatten()
                    .filter(|i| i.replaced_by(&n.arch))
                    .map(|i| i.nevra.clone())
            })
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

/// The tree's rpm database as the change's install left it: each file's inode, size and
/// sha256. The scriptlets see the database on a read-only mount (as under rpm, where the
/// running transaction holds its lock, a scriptlet may query it, never change it; rpm-ostree
/// writes its database after the scripts); without a capability none can remount it, but one
/// can still rename a directory above it and put another database in its place, with index
/// tables that lie (Basenames, Providename: no query of package names would see it). What
/// the seal finds changed is FAILED.
pub struct DbSeal(Vec<(String, u64, u64, [u8; 32])>);

impl DbSeal {
    pub fn take(tree: &Path) -> Result<DbSeal> {
        use sha2::Digest;
        use std::os::unix::fs::MetadataExt;
        let dir = tree.join(&DBPATH[1..]);
        let mut v = Vec::new();
        // Read through a directory that is really the tree's (`files::real_dir_below`):
        // otherwise the seal says "changed".
        if !crate::files::real_dir_below(tree, &dir) {
            return Ok(DbSeal(v));
        }
        let dir_meta = std::fs::symlink_metadata(&dir)?;
        v.push((".".to_string(), dir_meta.ino(), 0, [0; 32]));
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let m = e.path().symlink_metadata()?;
            let digest = if m.file_type().is_file() {
                let mut h = sha2::Sha256::new();
                std::io::copy(&mut std::fs::File::open(e.path())?, &mut h)?;
                h.finalize().into()
            } else {
                [0; 32]
            };
            v.push((
                e.file_name().to_string_lossy().into_owned(),
                m.ino(),
                m.len(),
                digest,
            ));
        }
        v.sort();
        Ok(DbSeal(v))
    }

    /// `Some` names what changed since `take`.
    pub fn broken(&self, tree: &Path) -> Result<Option<String>> {
        let now = DbSeal::take(tree)?;
        if now.0 == self.0 {
            return Ok(None);
        }
        let mut changed: Vec<&str> = self
            .0
            .iter()
            .filter(|e| !now.0.contains(e))
            .chain(now.0.iter().filter(|e| !self.0.contains(e)))
            .map(|e| e.0.as_str())
            .collect();
        changed.sort();
        changed.dedup();
        Ok(Some(format!(
            "the change's scriptlets replaced the tree's rpm database ({DBPATH}: {})",
            changed.join(", ")
        )))
    }
}

/// A package of the change, as its header says.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub arch: String,
    pub nevra: String,
}

/// The names, arches and NEVRAs of `rpms`, from their headers (none holds a tab or newline,
/// unlike a file name in the listing).
pub fn names(rpms: &[PathBuf], log: &mut Log) -> Result<Vec<Named>> {
    let out = log.capture_ok(
        &Cmd::new("rpm")
            .c_locale()
            .args([
                "-qp",
                "--nosignature",
                "--nodigest",
                "--qf",
                "%{NAME}\t%{ARCH}\t%{NEVRA}\n",
                "--",
            ])
            .args(rpms),
        "rpm -qp failed on the change's packages",
    )?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some(Named {
                name: f.next()?.to_string(),
                arch: f.next()?.to_string(),
                nevra: f.next()?.to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_no_other_package_owns_are_replaceable() {
        let db = parse(
            "P\tfilesystem\tfilesystem-3.18-1.noarch\tnoarch\n\
             F\tfilesystem\t0\t/usr/bin\n\
             F\tfilesystem\t0\t/etc/passwd\n\
             P\tsed\tsed-0-1.noarch\tnoarch\n\
             F\tsed\t0\t/usr/bin/sed\n\
             F\tsed\t0\t/usr/bin\n\
             F\tsed\t64\t/etc/sed.conf\n\
             P\tbusybox\tbusybox-1.35.0-1.x86_64\tx86_64\n\
             T\tbusybox\t\tin\tin postun \n\
             X\tbusybox\tbusybox-1.35.0-1.x86_64\tin postun \n\
             F\tbusybox\t0\t/usr/bin/awk\n",
        );
        let updated = db.updated(&[
            named("sed", "noarch", "sed-4.9-1.fc41.noarch"),
            named("new-package", "noarch", "new-package-1-1.noarch"),
        ]);
        assert_eq!(updated, BTreeSet::from(["sed".to_string()]));
        assert_eq!(
            db.replaceable(&updated),
            BTreeSet::from(["usr/bin/sed".to_string(), "usr/etc/sed.conf".to_string()])
        );
        assert!(db.replaceable(&BTreeSet::new()).is_empty());
        assert_eq!(
            db.triggers_not_run(&updated),
            vec![
                "busybox (base): file triggers",
                "busybox (base): %transfiletriggerpostun"
            ]
        );
        assert_eq!(
            db.ghosts.keys().collect::<Vec<_>>(),
            vec!["usr/etc/sed.conf"]
        );
        assert_eq!(
            db.trans_in,
            vec![("busybox".to_string(), "busybox-1.35.0-1.x86_64".to_string())]
        );
    }

    fn named(name: &str, arch: &str, nevra: &str) -> Named {
        Named {
            name: name.into(),
            arch: arch.into(),
            nevra: nevra.into(),
        }
    }

    /// Review Y: one name installed twice (multilib, install-only kernels, gpg-pubkey) is two
    /// packages, each kept or replaced as rpm -U would.
    #[test]
    fn a_name_installed_twice_is_two_packages() {
        let db = parse(
            "P\tgpg-pubkey\tgpg-pubkey-a15b79cc-63d04c2c\t(none)\n\
             P\tgpg-pubkey\tgpg-pubkey-18b8e74c-62f2920f\t(none)\n\
             P\tlibfoo\tlibfoo-1-1.x86_64\tx86_64\n\
             P\tlibfoo\tlibfoo-1-1.i686\ti686\n\
             P\tkernel\tkernel-6.1-1.x86_64\tx86_64\n\
             P\tkernel\tkernel-6.2-1.x86_64\tx86_64\n",
        );
        assert_eq!(db.packages["gpg-pubkey"].len(), 2);
        let change = [named("libfoo", "x86_64", "libfoo-2-1.x86_64")];
        assert_eq!(db.replaced(&change), vec!["libfoo-1-1.x86_64"]);
        assert_eq!(
            db.after_update(&change),
            vec![
                "gpg-pubkey-18b8e74c-62f2920f",
                "gpg-pubkey-a15b79cc-63d04c2c",
                "kernel-6.1-1.x86_64",
                "kernel-6.2-1.x86_64",
                "libfoo-1-1.i686",
                "libfoo-2-1.x86_64",
            ]
        );
        let change = [named("kernel", "x86_64", "kernel-6.3-1.x86_64")];
        assert_eq!(db.replaced(&change).len(), 2);
        assert!(!db
            .after_update(&change)
            .iter()
            .any(|n| n.starts_with("kernel-6.1")));
    }
}
