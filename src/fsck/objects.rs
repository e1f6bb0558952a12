//! `objects/` (each file's sha256 is its directory's name), `repos/` (rpm-md repositories:
//! their repodata present, what it lists there, each package one of `objects/`) and `trees/`
//! (dist-git snapshots: the tree digest is the name).

use super::{debris::removable, entries, Findings};
use crate::workspace::Workspace;
use anyhow::Result;
use std::fs;
use std::path::Path;

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn check(ws: &Workspace, f: &mut Findings) -> Result<()> {
    objects(&ws.root().join("objects"), f)?;
    repos(ws, &ws.root().join("repos"), f)?;
    trees(&ws.root().join("trees"), f)?;
    Ok(())
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn objects(dir: &Path, f: &mut Findings) -> Result<()> {
    for fan in entries(dir)? {
        let prefix = name(&fan);
        if !fan.is_dir() || !is_hex(&prefix, 2) {
            f.damage(
                &fan,
                "not an object directory (objects/<2 hex>/<sha256>/<name>)",
            );
            continue;
        }
        for obj in entries(&fan)? {
            let sha = name(&obj);
            if !obj.is_dir() || !is_hex(&sha, 64) || !sha.starts_with(&prefix) {
                f.damage(&obj, "not an object (objects/<2 hex>/<sha256>/<name>)");
                continue;
            }
            let files = entries(&obj)?;
            if files.is_empty() {
                // `Workspace::store` makes the directory, then renames the object in: a
                // process killed between the two leaves it empty.
                removable(f, &obj, "an empty object directory (a store cut short)");
            }
            for file in files {
                match fs::symlink_metadata(&file) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        f.damage(&file, "an object that is not a plain file");
                        continue;
                    }
                }
                match crate::digest::sha256_file(&file) {
                    Ok((got, _)) if got == sha => {}
                    Ok((got, _)) => f.damage(
                        &file,
                        format!("content does not match its name: sha256 is {got}"),
                    ),
                    Err(e) => f.damage(&file, crate::error::one_line(&e)),
                }
            }
        }
    }
    Ok(())
}

/// The `href`s a repomd.xml lists (the metadata files of the repository).
fn hrefs(text: &str) -> Vec<String> {
    text.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect()
}

fn repos(ws: &Workspace, dir: &Path, f: &mut Findings) -> Result<()> {
    for repo in entries(dir)? {
        if !repo.is_dir() {
            f.damage(&repo, "not a repository directory");
            continue;
        }
        let repomd = repo.join("repodata/repomd.xml");
        let Ok(text) = fs::read_to_string(&repomd) else {
            f.damage(
                &repomd,
                "missing or unreadable: the repository has no metadata",
            );
            continue;
        };
        for href in hrefs(&text) {
            if href.contains("..") || !repo.join(&href).is_file() {
                f.damage(
                    &repo.join(&href),
                    "listed in repodata/repomd.xml but missing",
                );
            }
        }
        for file in entries(&repo)? {
            if file.extension().is_none_or(|x| x != "rpm") {
                continue;
            }
            // Published as hard links into objects/: each package is one of them, unchanged.
            match crate::digest::sha256_file(&file) {
                Ok((sha, _)) => {
                    let obj = ws.root().join("objects").join(&sha[..2]).join(&sha);
                    if !obj.is_dir() {
                        f.damage(
                            &file,
                            format!(
                                "no object {} holds this package (changed, or objects/ lost it)",
                                ws.relative(&obj)
                            ),
                        );
                    }
                }
                Err(e) => f.damage(&file, crate::error::one_line(&e)),
            }
        }
    }
    Ok(())
}

fn trees(dir: &Path, f: &mut Findings) -> Result<()> {
    for tree in entries(dir)? {
        if !tree.is_dir() || !is_hex(&name(&tree), 64) {
            f.damage(&tree, "not a tree (trees/<tree digest>/)");
            continue;
        }
        let got = crate::digest::list_files(&tree, &[])
            .and_then(|files| crate::digest::tree_digest(&tree, &files));
        match got {
            Ok(d) if d == name(&tree) => {}
            Ok(d) => f.damage(
                &tree,
                format!("content does not match its name: tree digest is {d}"),
            ),
            Err(e) => f.damage(&tree, crate::error::one_line(&e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_and_an_empty_object_directory_are_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::open(&d.path().join("ws")).unwrap();
        let src = d.path().join("a.txt");
        fs::write(&src, b"hello").unwrap();
        let a = ws
            .store(
                &src,
                crate::manifest::ArtifactKind::Log,
                "a.txt",
                crate::manifest::StageName::Build,
            )
            .unwrap();
        let mut f = Findings::default();
        check(&ws, &mut f).unwrap();
        assert!(f.0.is_empty(), "{:?}", f.0);
        fs::write(ws.resolve(&a.path).unwrap(), b"hellO").unwrap();
        let empty = ws.root().join("objects/ab").join("ab".repeat(32));
        fs::create_dir_all(&empty).unwrap();
        check(&ws, &mut f).unwrap();
        let kinds: Vec<(super::super::Kind, String)> =
            f.0.iter().map(|x| (x.kind, ws.relative(&x.path))).collect();
        assert_eq!(
            kinds,
            [
                (super::super::Kind::Damage, a.path.clone()),
                (super::super::Kind::Debris, ws.relative(&empty)),
            ]
        );
    }

    #[test]
    fn repomd_hrefs_are_read() {
        let text = r#"<data type="primary"><location href="repodata/p.xml.gz"/></data>
            <data type="filelists"><location href="repodata/f.xml.gz"/></data>"#;
        assert_eq!(hrefs(text), ["repodata/p.xml.gz", "repodata/f.xml.gz"]);
    }
}
