//! The layer backend: a checkout of the base commit (hard links, or copies when the change has
//! scriptlets), the change's RPM payloads installed into it with `rpm -U` (updating base
//! packages of the same name; dependencies checked against the tree's rpm database, under
//! /usr, kept right), the change's scriptlets run in a sandbox rooted in the tree and the
//! loader cache rebuilt (`scriptlets`), and a commit with the base as parent onto a candidate
//! ref.

use super::{filetriggers, payload, rewrites, rpmdb, scriptlets};
use crate::binding;
use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::manifest::{Artifact, ArtifactKind, Outcome, StageName};
use crate::ostree::Repo;
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the tree keeps its rpm database: `rpmdb` reads it (the layer uses it, never the
/// other way round).
pub use super::rpmdb::DBPATH;

pub struct Plan {
    pub repo: Repo,
    pub branch: String,
    pub base_ref: String,
    pub base: String,
    pub rpms: Vec<PathBuf>,
    pub timeout: Option<std::time::Duration>,
    pub limits: crate::limits::Limits,
}

pub fn compose(p: &Plan, cx: &mut Ctx, rec: &mut RecordParts) -> Result<Vec<Artifact>> {
    rec.backend = Some("layer".into());
    rec.data.insert("branch".into(), json!(p.branch));
    rec.data.insert("base_ref".into(), json!(p.base_ref));
    rec.data.insert("parent".into(), json!(p.base));
    let dir = cx.dir();
    let tree = dir.join("tree");
    // Read first: a change with scriptlets gets a checkout of copies (below).
    let mut found = match scriptlets::query(&p.rpms, cx.log())? {
        Ok(f) => f,
        Err(why) => return Ok(fail(rec, why)),
    };
    let names = rpmdb::names(&p.rpms, cx.log())?;
    // The change's file list is read while a copy of the base's rpm database is checked out
    // and read: the base packages the change updates (same name), the files only they own,
    // and the base's file triggers the change's files fire.
    let peek = dir.join("base-rpmdb");
    let mut side = Log::create(&dir.join("rpm-qp.log"))?;
    let root = crate::users::is_root();
    let (db, owners, listing) = std::thread::scope(|s| {
        let listing = s.spawn(|| payload::listing(&p.rpms, &mut side));
        let db = peek_db(p, &peek, cx.log());
        // As root the commit keeps real owners: what a hard-link checkout loses of the base's
        // directories is put back (`restore_dir_owners`).
        let owners = if root {
            p.repo.dir_owners(&p.base, cx.log())
        } else {
            Ok(Default::default())
        };
        (db, owners, listing.join().expect("rpm -qp thread"))
    });
    cx.log().append_file(&side.path);
    let db = db?;
    let owners = owners?;
    let listing = match listing? {
        Ok(l) => l,
        Err(why) => return Ok(fail(rec, why)),
    };
    let payload = payload::parse(&listing);
    let updated = db.updated(&names);
    let replaceable = db.replaceable(&updated);
    if !updated.is_empty() {
        rec.data
            .insert("updates".into(), json!(db.replaced(&names)));
    }
    let fired = match base_file_triggers(&db, &peek, &updated, &payload, cx.log())? {
        Ok(f) => f,
        Err(why) => return Ok(fail(rec, why)),
    };
    found.not_run.extend(fired.not_run);
    found.scriptlets.extend(fired.run);
    scriptlets::sort(&mut found.scriptlets);
    // Every file of a hard-link checkout is a repository object: a scriptlet writing into
    // one in place (`>>`) would change the base for every later compose. The scriptlets
    // (the change's, and the base's triggers it fires) get a tree of copies; without them
    // only rpm and fci write, and both replace files (rename, unlink) rather than write
    // into them.
    // A base whose directories carry extended attributes (SELinux labels) is checked out as
    // copies too: a hard-link checkout makes its directories without them.
    let hard_links = found.scriptlets.is_empty() && !owners.xattrs;
    if hard_links {
        p.repo.checkout(&p.base, &tree, cx.log())?;
    } else {
        p.repo.checkout_copy(&p.base, &tree, cx.log())?;
    }
    // What rpm changes in place (its database) is copied first, so no write ever reaches
    // the repository; so is /etc (usr/etc), which fci's sandboxes bind writable as /etc.
    unshare_rpmdb(&tree)?;
    if hard_links {
        unshare_below(&tree, &tree.join("usr/etc"))?;
        restore_owners(&tree, &owners)?;
    }

    // rpm runs outside the sandbox that bounds package code: what it would write is bounded
    // here, from the headers (a sparse file compresses to nothing in the RPM).
    if let Some(failed) = refuse_payload(p, &tree, &payload, &replaceable, rec) {
        return Ok(failed);
    }
    // Before rpm writes: whether the base holds the tmpfiles.d file an earlier compose of
    // this package made (the diff guard lets it change).
    let fci_tmpfiles = payload::fci_tmpfiles_in(&tree, &tmpfiles_name(cx), &db.owners)
        .then(|| format!("usr/lib/tmpfiles.d/{}", tmpfiles_name(cx)));
    if let Some(failed) = install_payload(p, cx, &tree, &payload, &replaceable, &db.owners, rec)? {
        return Ok(failed);
    }
    // As Fedora's glibc file trigger does after an install; before the scriptlets, so that
    // a program they run finds a library the change put in /usr/lib64.
    let cache_rebuilt =
        match scriptlets::rebuild_loader_cache(&tree, p.limits, p.timeout, cx.log())? {
            Ok(rebuilt) => rebuilt,
            Err(why) => return Ok(fail(rec, why)),
        };
    let rewritten = match run_scriptlets(p, cx, &tree, &found, &updated, &db, rec)? {
        Ok(r) => r,
        Err(failed) => return Ok(failed),
    };
    // Before the commit: a committed file may be the repository's object itself, and even a
    // query writes into the rpm database's files.
    let installed = match query_installed(&tree, cx.log())? {
        Ok(i) => i,
        Err(why) => return Ok(fail(rec, why)),
    };
    // The database holds the base's packages but those the change replaced, and the
    // change's: anything else is packages the change obsoletes (rpm erased them), or a
    // database the scriptlets' read-only mount did not keep them from (`scriptlets::DbSeal`).
    let expected = db.after_update(&names);
    if installed != expected {
        let gone: Vec<&String> = expected.iter().filter(|n| !installed.contains(n)).collect();
        let new: Vec<&String> = installed.iter().filter(|n| !expected.contains(n)).collect();
        return Ok(fail(
            rec,
            format!(
                "the tree's rpm database does not hold what was installed (changed by a scriptlet, or packages the change obsoletes): missing {gone:?}, unexpected {new:?}"
            ),
        ));
    }
    // rpm's lock is the run's. sqlite's -shm and -wal stay: the database is in WAL mode, and
    // on a read-only /usr (a deployment, or the integration tests' overlay) sqlite can read
    // it only when they exist.
    let _ = std::fs::remove_file(tree.join(&DBPATH[1..]).join(".rpm.lock"));
    let subject = &cx.manifest.subject;
    let package = subject.package.clone().unwrap_or_default();
    let candidate = binding::candidate_ref(&p.branch, &cx.manifest.run.id);
    let metadata = commit_metadata(p, cx, &payload, &package);
    // An orphan commit: the candidate ref appears only once the commit passed the checks
    // below, so an interrupted or refused compose leaves no ref behind. Until then no ref
    // keeps it: `fci gc`'s `ostree prune` waits (crate::gc::ostree).
    let _unpruned = crate::gc::ostree::hold_against_prune(cx.ws)?;
    let commit = p.repo.commit(
        &tree,
        None,
        Some(&p.base),
        &format!("fci compose: {package} on {}", p.base_ref),
        &metadata,
        cx.log(),
    )?;
    let diff = p.repo.diff(&p.base, &commit, cx.log())?;
    // The backstop: layering adds; only the files rpm keeps below its database directory, the
    // files of the base packages the change updates, the loader cache fci rebuilt and (when
    // the change's scriptlets ran, as rpm-ostree lets them) config in /etc may change.
    let allowed = Allowed {
        replaceable: &replaceable,
        cache: cache_rebuilt,
        etc: !found.scriptlets.is_empty(),
        rewritten: &rewritten,
        fci_tmpfiles: fci_tmpfiles.as_deref(),
    };
    let changed: Vec<&String> = diff.iter().filter(|l| !allowed.allows(l)).collect();
    if !changed.is_empty() {
        rec.data.insert("diff".into(), json!(diff));
        return Ok(fail(
            rec,
            format!(
                "the change modifies or removes base paths: {}",
                changed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    p.repo.set_ref(&candidate, &commit, cx.log())?;
    rec.data.insert("ref".into(), json!(candidate));
    rec.data.insert("commit".into(), json!(commit));
    rec.data.insert("diff".into(), json!(diff));
    rec.data.insert("packages".into(), json!(installed));
    Ok(vec![Artifact {
        kind: ArtifactKind::OstreeCommit,
        name: candidate,
        path: crate::workspace::OSTREE_REPO.to_string(),
        sha256: commit,
        size: 0,
        stage: StageName::Compose.to_string(),
        nevra: None,
        extra: Default::default(),
    }])
}

/// What the diff of the base and the composed commit may show besides additions.
struct Allowed<'a> {
    replaceable: &'a std::collections::BTreeSet<String>,
    cache: bool,
    etc: bool,
    /// What the base's file triggers rewrote of their own package's files or no package's,
    /// as they left it (`rewrites`): the index or cache each keeps.
    rewritten: &'a std::collections::BTreeSet<String>,
    /// The tmpfiles.d file an earlier compose of this package left in the base, which this
    /// one replaces or removes (`payload::fci_tmpfiles_in`).
    fci_tmpfiles: Option<&'a str>,
}

impl Allowed<'_> {
    fn allows(&self, line: &str) -> bool {
        // The database directory is rpm's own (its lock, sqlite's journal files come and go).
        if line.starts_with("A ")
            || line.starts_with(&format!("M {DBPATH}/"))
            || line.starts_with(&format!("D {DBPATH}/"))
        {
            return true;
        }
        let Some(path) = line
            .strip_prefix("M /")
            .or_else(|| line.strip_prefix("D /"))
        else {
            return false;
        };
        self.replaceable.contains(path)
            || (self.cache
                && (line == "M /usr/etc/ld.so.cache" || line == "D /usr/etc/ld.so.cache~"))
            || (self.etc && line.starts_with("M /usr/etc/"))
            || (line.starts_with("M ") && self.rewritten.contains(path))
            || self.fci_tmpfiles == Some(path)
    }
}

/// The change's %pre, %post, %posttrans and %transfiletriggerin in the new tree
/// (`scriptlets`, `filetriggers`); what fci does not run (other triggers) is said in a note and in `scriptlets_not_run`. `Some` is the FAILED outcome.
fn run_scriptlets(
    p: &Plan,
    cx: &mut Ctx,
    tree: &Path,
    found: &scriptlets::Found,
    updated: &std::collections::BTreeSet<String>,
    db: &rpmdb::TreeDb,
    rec: &mut RecordParts,
) -> Result<std::result::Result<std::collections::BTreeSet<String>, Vec<Artifact>>> {
    let mut not_run = found.not_run.clone();
    not_run.extend(db.triggers_not_run(updated));
    if !not_run.is_empty() {
        rec.notes.push(format!(
            "not run (fci compose runs the change's %pre, %post, %posttrans and %transfiletriggerin only): {}",
            not_run.join(", ")
        ));
        rec.data.insert("scriptlets_not_run".into(), json!(not_run));
    }
    let mut ran = Vec::new();
    let dir = cx.dir();
    let seal = rpmdb::DbSeal::take(tree)?;
    // What the base's triggers rewrote (their caches), with how they left it.
    let mut rewritten = std::collections::BTreeMap::new();
    for s in &found.scriptlets {
        // A file trigger reads the tree's files below its prefixes on stdin, and has no $1;
        // with none there, it is not run (as in rpm-ostree).
        let list;
        let given = if s.is_file_trigger() {
            let files = filetriggers::matching(tree, &s.prefixes);
            if files.is_empty() {
                cx.log().line(&format!(
                    "fci compose: {} of {} not run: no file below {}",
                    s.phase,
                    s.package,
                    s.prefixes.join(", ")
                ));
                continue;
            }
            list = filetriggers::write_list(&dir, s, &files)?;
            scriptlets::Given::Files(&list)
        } else {
            // rpm's $1: the number of instances once installed: 2 for an update.
            scriptlets::Given::Arg(if updated.contains(&s.package) { 2 } else { 1 })
        };
        let before = s.from_base.as_ref().map(|_| rewrites::snapshot(tree));
        let refused = scriptlets::run(s, given, tree, &dir, p.limits, p.timeout, cx.log())?;
        if let (Some(package), Some(before)) = (&s.from_base, before) {
            let after = rewrites::snapshot(tree);
            rewritten.extend(rewrites::changed_by(
                package, &before, &after, &db.owners, &db.ghosts,
            ));
        }
        if let Some(scriptlets::Refused(why)) = refused {
            rec.data.insert("scriptlets".into(), json!(ran));
            return Ok(Err(fail(rec, format!("a scriptlet failed: {why}"))));
        }
        ran.push(format!("{} {}", s.package, s.phase));
    }
    if !ran.is_empty() {
        rec.data.insert("scriptlets".into(), json!(ran));
        if let Some(why) = seal.broken(tree)? {
            return Ok(Err(fail(rec, why)));
        }
        let left = scriptlets::left_behind(tree, DBPATH);
        if !left.is_empty() {
            return Ok(Err(fail(
                rec,
                format!(
                    "the change's scriptlets left what fci cannot commit or read: {}",
                    left.join(", ")
                ),
            )));
        }
    }
    let now = if rewritten.is_empty() {
        Default::default()
    } else {
        rewrites::snapshot(tree)
    };
    Ok(Ok(rewrites::still_as_left(&rewritten, &now)))
}

/// The checks on the change's payload before rpm runs: its size against the scratch limit,
/// file kinds OSTree cannot commit, files that replace the base's, files under /var. Apart so
/// that `compose` reads as its steps; `Some` is the FAILED outcome to return.
fn refuse_payload(
    p: &Plan,
    tree: &Path,
    payload: &payload::Payload,
    replaceable: &std::collections::BTreeSet<String>,
    rec: &mut RecordParts,
) -> Option<Vec<Artifact>> {
    rec.data.insert("limits".into(), json!(p.limits));
    if let Some(why) = payload::past_scratch(payload, p.limits.scratch) {
        // Not reused: another run may be given another limit.
        rec.cacheable = false;
        return Some(fail(rec, why));
    }
    let special = payload::special_files(payload);
    if !special.is_empty() {
        return Some(fail(
            rec,
            format!(
                "the change ships files that are not regular files, directories or symlinks (rpm would block on a FIFO; OSTree can commit none of them): {}",
                special.join(", ")
            ),
        ));
    }
    let conflicts = payload::conflicts(tree, payload, replaceable);
    if !conflicts.is_empty() {
        let msg = format!(
            "the change replaces files of the base: {}",
            conflicts.join(", ")
        );
        crate::progress::note(&format!("compose FAILED: {msg}"));
        rec.outcome = Outcome::Failed;
        rec.notes.push(msg);
        rec.data.insert("conflicts".into(), json!(conflicts));
        return Some(Vec::new());
    }
    let var_files = payload::var_files(payload);
    if !var_files.is_empty() {
        return Some(fail(
            rec,
            format!(
                "OSTree does not carry /var, and the change ships files there (only directories can be made at boot): {}",
                var_files.join(", ")
            ),
        ));
    }
    None
}

/// rpm installing the change into the checkout, then its /etc moved to usr/etc and its /var
/// directories declared to systemd-tmpfiles. Apart so that `compose` reads as its steps;
/// `Some` is the FAILED outcome to return.
fn install_payload(
    p: &Plan,
    cx: &mut Ctx,
    tree: &Path,
    payload: &payload::Payload,
    replaceable: &std::collections::BTreeSet<String>,
    owners: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    rec: &mut RecordParts,
) -> Result<Option<Vec<Artifact>>> {
    // A base with its own /etc is not laid out for OSTree (deploy will say so): its /etc is
    // left as it is, the change's included.
    let base_has_etc = std::fs::symlink_metadata(tree.join("etc")).is_ok();
    let debian = Path::new("/etc/debian_version").exists();
    // -U: a package of the base's name is updated, as in Fedora. Dependencies are checked
    // against the tree's database. Scriptlets are fci's to run (`scriptlets`), in a sandbox
    // rooted in the tree, as rpm-ostree runs them; rpm would run them on the host.
    let mut install = Cmd::new("rpm").c_locale().arg("--root").arg(tree).args([
        "--dbpath",
        DBPATH,
        "-U",
        "--noscripts",
        "--notriggers",
    ]);
    if debian {
        // Debian's rpm asks to be told that it is meant to manage this root.
        install = install.arg("--force-debian");
    }
    // An install cut short by --timeout is an error of `capture` (ERROR, never reused): the
    // half-made tree is never committed.
    let done = cx
        .log()
        .capture(&install.arg("--").args(&p.rpms).timeout(p.timeout))?;
    if let Some(f) = done.failure() {
        // rpm refusing the payload is the change's doing; rpm not running is the host's.
        let unmet = payload::unmet_dependencies(&done.stderr);
        if !unmet.is_empty() {
            rec.data.insert("unmet".into(), json!(unmet));
            return Ok(Some(fail(
                rec,
                format!("the base cannot take the change: {}", unmet.join("; ")),
            )));
        }
        let older = payload::not_an_update(&done.stderr);
        if !older.is_empty() {
            return Ok(Some(fail(rec, older.join("; "))));
        }
        let said = super::payload::rpm_refusals(&done.stderr);
        if !said.is_empty() {
            return Ok(Some(fail(
                rec,
                format!(
                    "rpm refused the change's payload in the base: {}",
                    said.join("; ")
                ),
            )));
        }
        return Err(f
            .infra("rpm could not install the change into the base checkout")
            .into());
    }
    let refused = if base_has_etc {
        Vec::new()
    } else {
        payload::relocate_etc(tree, replaceable)?
    };
    if !refused.is_empty() {
        return Ok(Some(fail(
            rec,
            format!(
                "the change's /etc files would replace the base's usr/etc: {}",
                refused.join(", ")
            ),
        )));
    }
    let tmpfiles = payload::var_tmpfiles(payload);
    let name = tmpfiles_name(cx);
    // The file an earlier compose of this package made (it is in the base now): the new
    // version's replaces it, or it goes with the /var directories the new version dropped.
    if payload::fci_tmpfiles_in(tree, &name, owners) {
        std::fs::remove_file(tree.join("usr/lib/tmpfiles.d").join(&name))?;
    }
    if !tmpfiles.is_empty() {
        match payload::write_tmpfiles(tree, &name, &tmpfiles)? {
            Ok(path) => {
                rec.data.insert("var_tmpfiles".into(), json!(path));
            }
            Err(why) => {
                return Ok(Some(fail(
                    rec,
                    format!("cannot make the change's /var directories at boot: {why}"),
                )))
            }
        }
    }
    Ok(None)
}

/// The name of the tmpfiles.d file fci makes for the change's /var directories.
fn tmpfiles_name(cx: &Ctx) -> String {
    crate::files::plain_name(&format!(
        "fci-{}.conf",
        cx.manifest.subject.package.as_deref().unwrap_or("change")
    ))
}

/// The metadata the commit carries. Apart so that `compose` reads as its steps.
fn commit_metadata(
    p: &Plan,
    cx: &Ctx,
    payload: &payload::Payload,
    package: &str,
) -> Vec<(String, String)> {
    let subject = &cx.manifest.subject;
    // From the packages' own headers.
    let nevras: Vec<String> = payload
        .nevras
        .iter()
        .filter(|n| n.starts_with(&format!("{package}-")) || package.is_empty())
        .cloned()
        .collect();
    // What binds the commit to this run for every stage that consumes it (crate::binding).
    vec![
        (binding::PACKAGE.to_string(), package.to_string()),
        (
            binding::DISTGIT_COMMIT.to_string(),
            subject.commit.clone().unwrap_or_default(),
        ),
        ("fci.nevras".to_string(), nevras.join(" ")),
        (binding::RUN.to_string(), cx.manifest.run.id.clone()),
        (binding::BASE.to_string(), p.base.clone()),
        (binding::RPMS.to_string(), binding::rpm_digests(cx.manifest)),
        (
            "fci.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]
}

/// A copy of the base's rpm database directory at `peek`, read (`rpmdb::read`).
fn peek_db(p: &Plan, peek: &Path, log: &mut Log) -> Result<rpmdb::TreeDb> {
    let _ = std::fs::remove_dir_all(peek);
    // A commit without the directory is the caller's base (the same message as a tree
    // checked out whole with no database); any other failure (a damaged repository, a full
    // disk) is the host's, with ostree's own words.
    if !p.repo.has_path(&p.base, DBPATH, log)? {
        return Err(FciError::input(
            &p.repo.path,
            format!(
                "the base commit {} has no {DBPATH} directory (examples/base/make-base.sh makes one)",
                p.base
            ),
        )
        .into());
    }
    p.repo.checkout_subpath_copy(&p.base, DBPATH, peek, log)?;
    rpmdb::read(peek, log)
}

/// The base's file triggers the change fires, as rpm fires them: each `%transfiletriggerin`
/// of a base package (but those the change updates: theirs come with the change) one of whose
/// prefixes holds a file of the change. Read from the base's database (`peek`), never the
/// tree's. What they rewrite may change in the tree (`Allowed`).
struct Fired {
    run: Vec<scriptlets::Scriptlet>,
    not_run: Vec<String>,
}

fn base_file_triggers(
    db: &rpmdb::TreeDb,
    peek: &Path,
    updated: &std::collections::BTreeSet<String>,
    payload: &payload::Payload,
    log: &mut Log,
) -> Result<std::result::Result<Fired, String>> {
    let mut fired = Fired {
        run: Vec::new(),
        not_run: Vec::new(),
    };
    for (name, nevra) in &db.trans_in {
        if updated.contains(name) {
            continue;
        }
        let source = scriptlets::Source::Installed { db: peek, nevra };
        let triggers = match filetriggers::query(source, &format!("{name} (base)"), log)? {
            Ok(t) => t,
            Err(why) => return Ok(Err(why)),
        };
        for mut t in triggers.run {
            let hits = payload.files.iter().any(|f| {
                !f.is_dir()
                    && t.prefixes
                        .iter()
                        .any(|pre| f.path.starts_with(&format!("/{pre}/")))
            });
            if !hits {
                continue;
            }
            // Only rpm can run Lua: not the change's doing, so said, not FAILED.
            if t.prog.first().is_some_and(|p| p == "<lua>") {
                fired.not_run.push(format!(
                    "{name} (base): %transfiletriggerin in Lua (only rpm runs Lua)"
                ));
                continue;
            }
            t.from_base = Some(name.clone());
            fired.run.push(t);
        }
        // Prefixes outside /usr: said only when the change has a file there.
        fired
            .not_run
            .extend(triggers.not_run.into_iter().filter(|said| {
                payload.files.iter().any(|f| {
                    said.rsplit_once(" on ")
                        .and_then(|(_, rest)| rest.split(' ').next())
                        .is_some_and(|pre| {
                            f.path
                                .starts_with(&format!("{}/", pre.trim_end_matches('/')))
                        })
                })
            }));
    }
    Ok(Ok(fired))
}

/// Gives the base's directories and links that are not root's their owner, group and mode
/// again after a hard-link checkout (which makes them root's), and every /etc file (copies now,
/// `unshare_below`) the owner, group and mode its commit records: otherwise the commit,
/// keeping real owners, would record a change of each. Never a hard-linked file elsewhere:
/// that is a repository object. Before any package code ran: the tree is the base's.
fn restore_owners(tree: &Path, owners: &crate::ostree::DirOwners) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let etc = owners
        .etc_files
        .iter()
        .map(|(p, mode, uid, gid)| (p, '-', mode, uid, gid));
    let others = owners
        .not_root
        .iter()
        .map(|(p, kind, mode, uid, gid)| (p, *kind, mode, uid, gid));
    for (path, kind, mode, uid, gid) in others.chain(etc) {
        let p = tree.join(path);
        let Some(parent) = p.parent() else { continue };
        if !crate::files::real_dir_below(tree, parent) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let is = match kind {
            'd' => m.is_dir(),
            'l' => m.file_type().is_symlink(),
            _ => m.is_file() && path.starts_with("usr/etc/"),
        };
        if !is {
            continue;
        }
        std::os::unix::fs::lchown(&p, Some(*uid), Some(*gid))?;
        // After the chown, which may clear set-id bits; a link has no mode of its own.
        if kind != 'l' {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode & 0o7777))?;
        }
    }
    Ok(())
}

/// Replaces each regular file below `dir` (links not followed) by a copy of itself, renamed
/// over it: a write in place there then reaches the copy, never a repository object the
/// hard-link checkout linked. Small: the base's /etc.
fn unshare_below(tree: &Path, dir: &Path) -> Result<()> {
    if !crate::files::real_dir_below(tree, dir) {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e?;
        if !e.file_type().is_file() {
            continue;
        }
        let p = e.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let copy = p.with_file_name(format!(".fci-copy-{name}"));
        std::fs::copy(p, &copy)?;
        // The copy keeps the object's mode, owner and group.
        let m = std::fs::symlink_metadata(p)?;
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::lchown(&copy, Some(m.uid()), Some(m.gid()));
        std::fs::set_permissions(&copy, m.permissions())?;
        std::fs::rename(&copy, p)?;
    }
    Ok(())
}

/// Replaces each file of the tree's rpm database by a copy of itself (renamed over it), so
/// rpm's in-place writes land in new files, not in the repository's objects.
fn unshare_rpmdb(tree: &Path) -> Result<()> {
    let db = tree.join(&DBPATH[1..]);
    if !crate::files::real_dir_below(tree, &db) {
        return Err(FciError::input(
            tree,
            format!(
                "the base tree has no {DBPATH} directory (examples/base/make-base.sh makes one)"
            ),
        )
        .into());
    }
    unshare_below(tree, &db)
}

/// Every package in the composed tree's rpm database, as NEVRA.
/// `Err` is the change's failure: the same rpm just installed into this database, and only the
/// change's scriptlets ran since.
fn query_installed(tree: &Path, log: &mut Log) -> Result<Result<Vec<String>, String>> {
    let query = Cmd::new("rpm").c_locale().arg("--root").arg(tree);
    let query = query.args(["--dbpath", DBPATH, "-qa", "--qf", "%{NEVRA}\n"]);
    let out = log.capture(&query)?;
    if let Some(f) = out.failure() {
        return Ok(Err(format!(
            "rpm cannot read the composed tree's database after the change's install and scriptlets (did a scriptlet write to {DBPATH}?): {f}"
        )));
    }
    let mut v: Vec<String> = out.stdout.lines().map(String::from).collect();
    v.sort();
    Ok(Ok(v))
}

/// A FAILED outcome with its reason, and no artifacts.
fn fail(rec: &mut RecordParts, msg: String) -> Vec<Artifact> {
    crate::progress::note(&format!("compose FAILED: {msg}"));
    rec.outcome = Outcome::Failed;
    rec.notes.push(msg);
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// What a base trigger rewrote may change; nothing else, and never be removed.
    #[test]
    fn only_what_a_base_trigger_rewrote_may_change() {
        let rewritten =
            BTreeSet::from(["usr/lib64/gdk-pixbuf-2.0/2.10.0/loaders.cache".to_string()]);
        let none = BTreeSet::new();
        let allowed = Allowed {
            replaceable: &none,
            cache: false,
            etc: false,
            rewritten: &rewritten,
            fci_tmpfiles: None,
        };
        assert!(allowed.allows("M /usr/lib64/gdk-pixbuf-2.0/2.10.0/loaders.cache"));
        assert!(!allowed.allows("D /usr/lib64/gdk-pixbuf-2.0/2.10.0/loaders.cache"));
        assert!(!allowed.allows("M /usr/lib64/libbase.so.1"));
    }
}
