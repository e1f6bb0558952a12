//! The change's `%transfiletriggerin`, run as rpm-ostree runs them
//! (`rpmostree_transfiletriggers_run_sync`): after every `%posttrans`, each trigger script once,
//! in the same sandbox as the other scriptlets, with no `$1` and, on stdin, the files of the new
//! tree below its path prefixes (every entry that is not a directory, as rpm-ostree's walk of
//! the tree finds them), one a line. A trigger none of whose prefixes holds a file is not run
//! (nor in rpm-ostree). Prefixes outside `/usr`, or in `/usr/local`, rpm-ostree ignores: fci
//! too, and the record says so.
//!
//! Read from the packages' headers (`rpm -qp`), as the other scriptlets are, and not from the
//! tree's rpm database: by the time the triggers run, the change's scriptlets have had the
//! database in their hands.

use super::headers::{header, Scriptlet, Source, FILE_TRIGGER};
use crate::exec::Log;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What a maintainer calls the trigger fci runs.
pub const PHASE: &str = FILE_TRIGGER;

/// rpm's RPMSENSE_TRIGGERIN: the condition belongs to an `in` trigger (not `un`, `postun`).
const SENSE_TRIGGERIN: u64 = 1 << 16;

/// The conditions (path prefixes) of a package's transaction file triggers: per line, the
/// index of the script it belongs to, its sense flags and the prefix.
const CONDITIONS: &str =
    "[%{TRANSFILETRIGGERINDEX}\t%{TRANSFILETRIGGERFLAGS}\t%{TRANSFILETRIGGERNAME}\n]";
/// The interpreters and the bodies, per script. XML-escaped between fci's own tags: a body
/// may hold any text, but never a `<` of its own once escaped.
const PROGS: &str = "[<p>%{TRANSFILETRIGGERSCRIPTPROG:xml}</p>]";
const SCRIPTS: &str = "[<p>%{TRANSFILETRIGGERSCRIPTS:xml}</p>]";
/// Their priorities (`-P`), per script.
const PRIORITIES: &str = "[%{TRANSFILETRIGGERPRIORITIES}\n]";
/// rpm's priority of a file trigger written without `-P`.
const DEFAULT_PRIORITY: u32 = 1_000_000;

/// A package's `%transfiletriggerin` scripts, and what of them is not run (prefixes outside
/// `/usr`, as `PACKAGE: WHAT`).
#[derive(Debug, Default)]
pub struct Triggers {
    pub run: Vec<Scriptlet>,
    pub not_run: Vec<String>,
}

/// The `%transfiletriggerin` scripts of `rpm` (package `package`). `Ok(Err(why))` is the
/// change's failure.
pub fn query(
    source: Source,
    package: &str,
    log: &mut Log,
) -> Result<std::result::Result<Triggers, String>> {
    let mut out = Vec::new();
    for qf in [CONDITIONS, PROGS, SCRIPTS, PRIORITIES] {
        match header(source, qf, log)? {
            Ok(o) => out.push(o),
            Err(why) => return Ok(Err(why)),
        }
    }
    let priorities: Vec<u32> = out[3]
        .lines()
        .map(|l| l.trim().parse().unwrap_or(DEFAULT_PRIORITY))
        .collect();
    Ok(Ok(parse(package, &out[0], &out[1], &out[2], &priorities)))
}

/// The items `<p>…</p>` of a query, unescaped (`<string/>` is the empty string).
fn items(out: &str) -> Vec<String> {
    out.split("</p>")
        .filter_map(|i| i.trim_start().strip_prefix("<p>"))
        .map(|i| {
            let i = i.trim();
            let inner = i
                .strip_prefix("<string>")
                .and_then(|i| i.strip_suffix("</string>"))
                .unwrap_or("");
            quick_xml::escape::unescape(inner)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| inner.to_string())
        })
        .collect()
}

fn parse(
    package: &str,
    conditions: &str,
    progs: &str,
    scripts: &str,
    priorities: &[u32],
) -> Triggers {
    let progs = items(progs);
    let scripts = items(scripts);
    let mut found = Vec::new();
    let mut not_run = Vec::new();
    for (i, body) in scripts.iter().enumerate() {
        let mut prefixes = Vec::new();
        for line in conditions.lines() {
            let f: Vec<&str> = line.splitn(3, '\t').collect();
            let [index, flags, prefix] = f.as_slice() else {
                continue;
            };
            let sense: u64 = flags.parse().unwrap_or(0);
            if index.parse::<usize>().ok() != Some(i) || sense & SENSE_TRIGGERIN == 0 {
                continue;
            }
            let rel = prefix.trim_start_matches('/').trim_end_matches('/');
            let local = rel == "usr/local" || rel.starts_with("usr/local/");
            let in_usr = rel == "usr" || rel.starts_with("usr/");
            if in_usr && !local {
                prefixes.push(rel.to_string());
            } else if local {
                not_run.push(format!("{package}: {PHASE} on {prefix} (in /usr/local)"));
            } else if !rel.is_empty() {
                not_run.push(format!("{package}: {PHASE} on {prefix} (outside /usr)"));
            }
        }
        if prefixes.is_empty() {
            continue;
        }
        let prog: Vec<String> = progs
            .get(i)
            .map(|p| p.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        found.push(Scriptlet {
            package: package.to_string(),
            phase: PHASE,
            prog: if prog.is_empty() {
                vec!["/bin/sh".into()]
            } else {
                prog
            },
            // A `-p PROGRAM` trigger has an empty body.
            body: (!body.is_empty()).then(|| body.clone()),
            prefixes,
            priority: priorities.get(i).copied().unwrap_or(DEFAULT_PRIORITY),
            from_base: None,
        });
    }
    Triggers {
        run: found,
        not_run,
    }
}

/// The files of `tree` below `prefixes` (as the tree's own paths, `/usr/...`), sorted: every
/// entry that is not a directory, links not followed. A prefix that is not a real directory
/// of the tree (missing, or a link) holds none.
pub fn matching(tree: &Path, prefixes: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in prefixes {
        let dir = tree.join(prefix);
        if !crate::files::real_dir_below(tree, &dir) {
            continue;
        }
        for e in walkdir::WalkDir::new(&dir)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if e.file_type().is_dir() {
                continue;
            }
            if let Ok(rel) = e.path().strip_prefix(tree) {
                found.push(format!("/{}", rel.display()));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Writes `files` as a trigger's stdin into `scratch`: the path of the list.
pub fn write_list(scratch: &Path, s: &Scriptlet, files: &[String]) -> Result<PathBuf> {
    let path = scratch.join(format!(
        "filetrigger-{}.list",
        crate::files::plain_name(&s.package)
    ));
    let mut text = files.join("\n");
    text.push('\n');
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rpm 4.18 prints for a package with `%transfiletriggerin -p /sbin/ldconfig --
    /// /usr/lib64`, `%transfiletriggerin -- /usr/a /usr/b /etc/c` and
    /// `%transfiletriggerpostun -- /usr/c`.
    #[test]
    fn in_triggers_are_read_with_their_prefixes_and_bodies() {
        let conditions = "1\t65536\t/usr/a\n1\t65536\t/usr/b/\n1\t65536\t/etc/c\n2\t262144\t/usr/c\n0\t65536\t/usr/lib64\n";
        let progs = "<p>\t<string>/sbin/ldconfig</string></p><p>\t<string>/bin/sh</string></p><p>\t<string>/bin/sh</string></p>";
        let scripts = "<p>\t<string/></p><p>\t<string>echo \"a &amp; b &lt;c&gt;\"\necho line2</string></p><p>\t<string>echo postun</string></p>";
        let Triggers {
            run: found,
            not_run,
        } = parse("multi", conditions, progs, scripts, &[1_000_000, 50, 7]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].prog, vec!["/sbin/ldconfig"]);
        assert_eq!(found[0].body, None);
        assert_eq!(found[0].prefixes, vec!["usr/lib64"]);
        assert_eq!((found[0].priority, found[1].priority), (1_000_000, 50));
        assert_eq!(found[1].prog, vec!["/bin/sh"]);
        assert_eq!(
            found[1].body.as_deref(),
            Some("echo \"a & b <c>\"\necho line2")
        );
        assert_eq!(found[1].prefixes, vec!["usr/a", "usr/b"]);
        assert_eq!(
            not_run,
            vec!["multi: %transfiletriggerin on /etc/c (outside /usr)"]
        );
    }

    #[test]
    fn matching_lists_what_is_not_a_directory_below_the_prefixes() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("usr/lib/p/sub")).unwrap();
        std::fs::write(tree.join("usr/lib/p/a"), "").unwrap();
        std::fs::write(tree.join("usr/lib/p/sub/b"), "").unwrap();
        std::os::unix::fs::symlink("/etc", tree.join("usr/lib/p/link")).unwrap();
        std::os::unix::fs::symlink("/etc", tree.join("usr/lib/q")).unwrap();
        assert_eq!(
            matching(
                tree,
                &["usr/lib/p".into(), "usr/lib/q".into(), "usr/x".into()]
            ),
            vec!["/usr/lib/p/a", "/usr/lib/p/link", "/usr/lib/p/sub/b"]
        );
    }
}
