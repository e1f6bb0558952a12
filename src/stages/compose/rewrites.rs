//! What a base package's file trigger rewrote in the tree, and what it alone may change there.
//! Fedora's triggers keep indexes and caches, which their package owns as `%ghost` (gdk-pixbuf's
//! loaders.cache beside the loaders it watches, glib's gschemas.compiled, hicolor's
//! icon-theme.cache), anywhere in the tree. The diff guard lets such a file change only when
//! that trigger changed it, and nothing ran after it changed it since: never because the
//! change's own code (its %post, which runs before) wrote it. Only a `%ghost` of the trigger's
//! own package: the trigger runs programs of the new tree, which the change may have replaced
//! or put first on PATH (review AA), so what changes while it runs is not only its doing; a
//! cache is what the change's files decide anyway, a package's shipped file (a README, a
//! library) or a file no package owns (an initramfs) never is.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's identity and state: its inode, change time (which no one can set back), size,
/// mode and owners. A rewrite (a new file renamed over) or any write or chmod/chown moves one.
type Print = (u64, i64, i64, u64, u32, u32, u32);

/// Every file and link of `tree` (no leading `/`, the rpm database left out: it is sealed on
/// its own), with its print.
pub fn snapshot(tree: &Path) -> BTreeMap<String, Print> {
    let db = &super::rpmdb::DBPATH[1..];
    walkdir::WalkDir::new(tree)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.path()
                .strip_prefix(tree)
                .map_or(true, |rel| !rel.starts_with(db))
        })
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            let m = e.path().symlink_metadata().ok()?;
            let rel = e.path().strip_prefix(tree).ok()?.to_str()?.to_string();
            Some((
                rel,
                (
                    m.ino(),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.size(),
                    m.mode(),
                    m.uid(),
                    m.gid(),
                ),
            ))
        })
        .collect()
}

/// The files a trigger of `package` changed between `before` and `after` that it may change:
/// `%ghost` entries of its own package and of no other (`owners`, `ghosts`: path → package
/// names). With their prints after it.
pub fn changed_by(
    package: &str,
    before: &BTreeMap<String, Print>,
    after: &BTreeMap<String, Print>,
    owners: &BTreeMap<String, BTreeSet<String>>,
    ghosts: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, Print> {
    after
        .iter()
        .filter(|(path, print)| before.get(*path).is_some_and(|b| b != *print))
        .filter(|(path, _)| {
            let only_its = |m: &BTreeMap<String, BTreeSet<String>>| {
                m.get(*path)
                    .is_some_and(|by| !by.is_empty() && by.iter().all(|n| n == package))
            };
            only_its(owners) && only_its(ghosts)
        })
        .map(|(p, print)| (p.clone(), *print))
        .collect()
}

/// Of `rewritten`, the files still as their trigger left them in `now`.
pub fn still_as_left(
    rewritten: &BTreeMap<String, Print>,
    now: &BTreeMap<String, Print>,
) -> BTreeSet<String> {
    rewritten
        .iter()
        .filter(|(path, print)| now.get(*path) == Some(*print))
        .map(|(p, _)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_or_unowned_files_it_changed_and_no_one_changed_after() {
        let before = BTreeMap::from([
            ("usr/lib/own.cache".to_string(), (1, 1, 0, 1, 0o644, 0, 0)),
            ("usr/lib/free.cache".to_string(), (2, 1, 0, 1, 0o644, 0, 0)),
            ("usr/lib/libc.so.6".to_string(), (3, 1, 0, 1, 0o755, 0, 0)),
            ("usr/lib/same".to_string(), (4, 1, 0, 1, 0o644, 0, 0)),
        ]);
        let mut after = before.clone();
        after.insert("usr/lib/own.cache".into(), (9, 2, 0, 5, 0o644, 0, 0));
        after.insert("usr/lib/free.cache".into(), (2, 2, 0, 1, 0o644, 0, 0));
        after.insert("usr/lib/libc.so.6".into(), (3, 2, 0, 4, 0o755, 0, 0));
        let owners = BTreeMap::from([
            (
                "usr/lib/own.cache".to_string(),
                BTreeSet::from(["indexer".to_string()]),
            ),
            (
                "usr/lib/libc.so.6".to_string(),
                BTreeSet::from(["glibc".to_string()]),
            ),
        ]);
        let ghosts = BTreeMap::from([(
            "usr/lib/own.cache".to_string(),
            BTreeSet::from(["indexer".to_string()]),
        )]);
        // Its own %ghost only: not the unowned cache, nor glibc's library.
        let rewritten = changed_by("indexer", &before, &after, &owners, &ghosts);
        assert_eq!(rewritten.keys().collect::<Vec<_>>(), ["usr/lib/own.cache"]);
        // Something after the trigger wrote it again: no longer the trigger's.
        let mut now = after.clone();
        assert_eq!(
            still_as_left(&rewritten, &now),
            BTreeSet::from(["usr/lib/own.cache".to_string()])
        );
        now.insert("usr/lib/own.cache".into(), (9, 3, 0, 5, 0o644, 0, 0));
        assert!(still_as_left(&rewritten, &now).is_empty());
    }
}
