//! `fci unbundle`: the bundle is read whole into a private scratch directory of the target
//! workspace, bounded and refusing what a bundle never holds (links out, `..`, devices,
//! entries outside its members); every member is checked against the index and the
//! manifest's own digests; only then is anything stored, so a tampered bundle leaves the
//! workspace as it was (no object, no manifest).

use super::index::{self, caps, Index, MemberType, FORMAT, INDEX, MANIFEST, MEMBERS};
use super::UnbundleArgs;
use crate::error::FciError;
use crate::manifest::{ArtifactKind, Manifest, StageName};
use crate::workspace::Workspace;
use anyhow::Result;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub fn exec(args: UnbundleArgs, workspace: &Path) -> Result<i32> {
    let file = &args.bundle;
    if args.output != Path::new("-") {
        crate::files::check_output(&args.output)?;
    }
    let ws = Workspace::open(workspace)?;
    // What it reads (or stores) stays until it is done: `fci gc` waits.
    let _in_use = crate::gc::lock::in_use(&ws)?;
    let scratch = ws.scratch("unbundle-")?;
    let (index, text) = extract(file, scratch.path())?;
    let manifest = verify(file, &index, &text, scratch.path())?;
    let moved = import(&ws, &index, &manifest, scratch.path())?;
    let manifest = relocate(manifest, &moved);
    crate::run_records::mark_reproduced(&ws, &manifest.run.id)
        .map_err(|e| FciError::Infra(format!("cannot mark the run as reproduced: {e}")))?;
    manifest.write(&args.output)?;
    let missing: Vec<&String> = index
        .ostree_commits
        .iter()
        .filter(|c| crate::ostree::Repo::open(&ws.ostree_repo()).map_or(true, |r| !r.has_commit(c)))
        .collect();
    crate::progress::note(&format!(
        "unbundled run {}: {} members into {}; its records are not imported (a run reproduced here is never promoted here){}",
        manifest.run.id,
        index.members.len(),
        ws.root().display(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                "; OSTree commit {} is not in this workspace's repository (a bundle does not carry it): stages that need it refuse this manifest here",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )
        }
    ));
    Ok(0)
}

/// Reads the tar file into `dest`: the index, the manifest's text, and the members below
/// `dest/members/`. Anything that is not a bundle, or not one fci could have written, is the
/// caller's bad input (exit 2), named in one line.
fn extract(file: &Path, dest: &Path) -> Result<(Index, String), FciError> {
    let not_bundle = |why: String| {
        FciError::input(
            file,
            format!("not an fci bundle ({why}): nothing was imported"),
        )
    };
    let f = fs::File::open(file).map_err(|e| FciError::input(file, format!("cannot read: {e}")))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(FciError::input(file, "cannot read: it is a directory"));
    }
    let mut f = std::io::BufReader::new(f);
    if let Some(how) = compressed(&mut f) {
        return Err(not_bundle(format!("{how}-compressed: decompress it first")));
    }
    let mut archive = tar::Archive::new(f);
    let entries = archive
        .entries()
        .map_err(|e| not_bundle(format!("tar: {e}")))?;
    let mut index: Option<Index> = None;
    // The members by path, for the entries to find theirs (many entries, many members).
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut text: Option<String> = None;
    let (mut count, mut total) = (0u64, 0u64);
    for entry in entries {
        let mut entry = entry.map_err(|e| not_bundle(format!("tar: {e}")))?;
        count += 1;
        if count > caps::ENTRIES {
            return Err(not_bundle(format!("more than {} entries", caps::ENTRIES)));
        }
        let raw = entry
            .path()
            .map_err(|e| not_bundle(format!("tar: {e}")))?
            .into_owned();
        let shown = raw.display().to_string();
        let name = plain_path(&raw)
            .ok_or_else(|| not_bundle(format!("entry {shown:?} is absolute or has `..`")))?;
        let size = entry
            .header()
            .size()
            .map_err(|e| not_bundle(format!("tar: {e}")))?;
        total = total.saturating_add(size);
        if total > caps::TOTAL {
            return Err(not_bundle(format!(
                "more than {} of content",
                crate::caps::human(caps::TOTAL)
            )));
        }
        let kind = entry.header().entry_type();
        match (count, name.as_str()) {
            (1, INDEX) => {
                let bytes = read_capped(&mut entry, caps::INDEX)
                    .map_err(|why| not_bundle(format!("{INDEX}: {why}")))?;
                let i: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| not_bundle(format!("{INDEX}: {e}")))?;
                if i.format != FORMAT {
                    return Err(not_bundle(format!(
                        "{INDEX}: format `{}`, this fci reads `{FORMAT}`",
                        i.format
                    )));
                }
                if i.members.len() as u64 > caps::ENTRIES {
                    return Err(not_bundle(format!("more than {} members", caps::ENTRIES)));
                }
                let paths: Vec<String> = i.members.iter().map(|m| m.path.clone()).collect();
                index::check_paths(&paths).map_err(not_bundle)?;
                if paths.iter().any(|p| index::normal(p) != *p) {
                    return Err(not_bundle(format!("{INDEX}: a member path is not plain")));
                }
                by_path = paths.into_iter().enumerate().map(|(n, p)| (p, n)).collect();
                index = Some(i);
                continue;
            }
            (1, _) => {
                return Err(not_bundle(format!(
                    "its first entry is {shown:?}, not {INDEX}"
                )))
            }
            (2, MANIFEST) => {
                let bytes = read_capped(&mut entry, crate::caps::MANIFEST)
                    .map_err(|why| not_bundle(format!("{MANIFEST}: {why}")))?;
                text = Some(
                    String::from_utf8(bytes)
                        .map_err(|_| not_bundle(format!("{MANIFEST}: not UTF-8")))?,
                );
                continue;
            }
            (2, _) => {
                return Err(not_bundle(format!(
                    "its second entry is {shown:?}, not {MANIFEST}"
                )))
            }
            _ => {}
        }
        let index = index.as_ref().expect("the first entry is the index");
        let rel = name
            .strip_prefix(&format!("{MEMBERS}/"))
            .ok_or_else(|| not_bundle(format!("entry {shown:?} is outside {MEMBERS}/")))?;
        let Some(member) = member_of(&by_path, rel).map(|n| &index.members[n]) else {
            return Err(not_bundle(format!(
                "entry {shown:?} is no member of its index"
            )));
        };
        let inside = rel != member.path;
        let at = dest.join(MEMBERS).join(rel);
        // Never through a link (or a file) an earlier entry made.
        let parent = Path::new(MEMBERS).join(rel);
        let parent = parent.parent().expect("below members/");
        real_dirs(dest, parent).map_err(|e| match e {
            Written::Exists => not_bundle(format!("entry {shown:?} is below a link or a file")),
            Written::Io(e) => {
                FciError::Infra(format!("cannot unpack into {}: {e}", dest.display()))
            }
        })?;
        let wrong = |what: &str| not_bundle(format!("entry {shown:?} is {what}"));
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if member.kind == MemberType::Dir && !inside {
                    return Err(wrong("a file where its index has a directory"));
                }
                write_file(&mut entry, &at).map_err(|e| match e {
                    Written::Exists => wrong("there twice"),
                    Written::Io(e) => FciError::Infra(format!(
                        "cannot unpack {shown} into {}: {e}",
                        dest.display()
                    )),
                })?;
            }
            tar::EntryType::Directory => {
                if member.kind == MemberType::File {
                    return Err(wrong("a directory where its index has a file"));
                }
                match fs::symlink_metadata(&at) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(wrong("there twice")),
                    Err(_) => fs::create_dir(&at)
                        .map_err(|e| FciError::Infra(format!("{}: {e}", at.display())))?,
                }
            }
            tar::EntryType::Symlink if inside => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| wrong("a link without a target"))?
                    .into_owned();
                let below = Path::new(rel)
                    .strip_prefix(&member.path)
                    .unwrap_or(Path::new(rel));
                if !index::link_stays_inside(below, &target) {
                    return Err(wrong(&format!(
                        "a link to {} (outside its member)",
                        target.display()
                    )));
                }
                std::os::unix::fs::symlink(&target, &at).map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => wrong("there twice"),
                    _ => FciError::Infra(format!("{}: {e}", at.display())),
                })?;
            }
            tar::EntryType::Symlink => return Err(wrong("a link (a member is a file or a tree)")),
            other => {
                return Err(wrong(&format!(
                    "of tar type {other:?}, which a bundle never holds"
                )))
            }
        }
    }
    let index = index.ok_or_else(|| not_bundle(format!("no {INDEX}")))?;
    let text = text.ok_or_else(|| not_bundle(format!("no {MANIFEST}")))?;
    Ok((index, text))
}

/// The member an entry (its path below `members/`) belongs to: itself, or the tree it is in.
fn member_of(by_path: &HashMap<String, usize>, rel: &str) -> Option<usize> {
    let mut at = rel;
    loop {
        if let Some(n) = by_path.get(at) {
            return Some(*n);
        }
        at = at.rsplit_once('/')?.0;
    }
}

/// The compression a file starts with, by its magic number: a bundle is read as a plain tar
/// archive (RPMs and images are compressed already), and the caller may have compressed it
/// for transfer.
fn compressed(f: &mut impl std::io::BufRead) -> Option<&'static str> {
    let head = f.fill_buf().ok()?;
    [
        (&[0x1f, 0x8b][..], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd][..], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
        (&b"BZh"[..], "bzip2"),
    ]
    .into_iter()
    .find(|(magic, _)| head.starts_with(magic))
    .map(|(_, how)| how)
}

/// The entry's path as plain `a/b/c`, or None when it is absolute or has `..`.
fn plain_path(p: &Path) -> Option<String> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

fn read_capped(r: &mut impl Read, cap: u64) -> Result<Vec<u8>, String> {
    crate::caps::read_all(r, cap).map_err(|e| match e {
        crate::caps::ReadError::TooLarge(t) => format!("{t}"),
        crate::caps::ReadError::Io(e) => e.to_string(),
    })
}

/// Makes `base/rel` as real directories, one component at a time, never following a link:
/// `Exists` when a component is something else (a link or a file an earlier entry made).
fn real_dirs(base: &Path, rel: &Path) -> Result<(), Written> {
    let mut p = base.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Written::Exists),
            Err(_) => fs::create_dir(&p).map_err(Written::Io)?,
        }
    }
    Ok(())
}

enum Written {
    Exists,
    Io(std::io::Error),
}

/// A new file with the entry's bytes and plain permissions (0755 when executable, else 0644).
fn write_file(entry: &mut tar::Entry<impl Read>, at: &Path) -> Result<(), Written> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let exec = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
    let mode = if exec { 0o755 } else { 0o644 };
    let mut f = fs::File::options()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(at)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Written::Exists,
            _ => Written::Io(e),
        })?;
    std::io::copy(entry, &mut f).map_err(Written::Io)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(Written::Io)?;
    Ok(())
}

/// Every member against the index, the manifest against its digest, and every artifact
/// against the manifest's own digest; every path the manifest references is carried.
fn verify(file: &Path, index: &Index, text: &str, dest: &Path) -> Result<Manifest, FciError> {
    let tampered = |what: String| {
        FciError::input(
            file,
            format!("{what} (tampered or damaged bundle): nothing was imported"),
        )
    };
    if crate::digest::sha256_bytes(text.as_bytes()) != index.manifest_sha256 {
        return Err(tampered(format!(
            "{MANIFEST} does not match its sha256 in the index"
        )));
    }
    let origin = file.join(MANIFEST);
    let manifest = Manifest::parse(text, &origin)?;
    for m in &index.members {
        let p = dest.join(MEMBERS).join(&m.path);
        let (kind, sha256, _) =
            index::digest_of(&p).map_err(|why| tampered(format!("member {}: {why}", m.path)))?;
        if kind != m.kind {
            return Err(tampered(format!(
                "member {}: not a {:?} as its index says",
                m.path, m.kind
            )));
        }
        if kind == MemberType::Dir && std::fs::symlink_metadata(p.join(".git")).is_ok() {
            // A tree's digest skips its top-level .git (a dist-git checkout's): what is there
            // would ride along unverified.
            return Err(tampered(format!(
                "member {}: holds .git, which its tree digest does not cover",
                m.path
            )));
        }
        if sha256 != m.sha256 {
            return Err(tampered(format!(
                "member {}: does not match its sha256 in the index",
                m.path
            )));
        }
        for a in index::artifacts_at(&manifest, &m.path) {
            if !index::is_artifact(a, &p, kind, &sha256) {
                return Err(tampered(format!(
                    "member {}: does not match the manifest's digest of its `{}` artifact",
                    m.path, a.kind
                )));
            }
        }
    }
    let referenced = index::referenced(&manifest);
    for p in &referenced {
        if !index.members.iter().any(|m| &m.path == p) {
            return Err(tampered(format!(
                "{MANIFEST} references {p}, which the bundle does not carry"
            )));
        }
    }
    // Exactly what the manifest references: nothing else rides along into the store.
    if let Some(m) = index.members.iter().find(|m| !referenced.contains(&m.path)) {
        return Err(tampered(format!(
            "member {}: {MANIFEST} does not reference it",
            m.path
        )));
    }
    let mut commits: Vec<&String> = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::OstreeCommit)
        .map(|a| &a.sha256)
        .collect();
    commits.dedup();
    if commits.iter().any(|c| !index.ostree_commits.contains(c)) {
        return Err(tampered(format!(
            "{MANIFEST} names an OSTree commit its index does not record"
        )));
    }
    Ok(manifest)
}

/// Stores each verified member into the workspace: files into the content-addressed object
/// store, trees published under their area (`repos/`, `trees/`). Returns the paths that
/// changed (a member the workspace knows under another name).
fn import(
    ws: &Workspace,
    index: &Index,
    manifest: &Manifest,
    dest: &Path,
) -> Result<HashMap<String, String>> {
    let mut moved = HashMap::new();
    for m in &index.members {
        let src = dest.join(MEMBERS).join(&m.path);
        let new = match m.kind {
            MemberType::File => {
                let a = index::artifacts_at(manifest, &m.path).next();
                let (kind, stage) = match a {
                    Some(a) => (a.kind.clone(), StageName::parse(&a.stage)),
                    None => (ArtifactKind::Log, None),
                };
                let name = Path::new(&m.path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "member".into());
                let stored = ws.store(&src, kind, &name, stage.unwrap_or(StageName::Report))?;
                if stored.sha256 != m.sha256 {
                    // Read twice from fci's own scratch: only a failing disk changes it.
                    return Err(FciError::Infra(format!(
                        "member {}: changed while it was stored",
                        m.path
                    ))
                    .into());
                }
                stored.path
            }
            MemberType::Dir => publish_tree(ws, &m.path, &m.sha256, &src)?,
        };
        if new != m.path {
            moved.insert(m.path.clone(), new);
        }
    }
    Ok(moved)
}

/// Publishes a verified tree at its own path when that holds the same tree already, else
/// under its area keyed by its own tree digest. Never at a free path of another name: the
/// names are content keys a later honest run computes (`trees/<tree digest>`, `repos/<digest
/// of its RPMs>`), and a bundle's tree occupying one (first writer wins) would fail that run.
fn publish_tree(ws: &Workspace, path: &str, tree: &str, src: &Path) -> Result<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let (area, key) = match parts.as_slice() {
        [area @ ("repos" | "trees"), key] => (*area, key.to_string()),
        _ => ("trees", tree.to_string()),
    };
    let same =
        |p: &Path| index::digest_of(p).is_ok_and(|(k, d, _)| k == MemberType::Dir && d == tree);
    let wanted = ws.root().join(area).join(&key);
    let key = if same(&wanted) { key } else { tree.to_string() };
    let published: PathBuf = ws.publish_dir(src, area, &key)?;
    if !same(&published) {
        return Err(FciError::Infra(format!(
            "{}: holds another tree than the bundle's {path}",
            published.display()
        ))
        .into());
    }
    Ok(ws.relative(&published))
}

/// The manifest with every path it references as the workspace now knows it.
fn relocate(mut m: Manifest, moved: &HashMap<String, String>) -> Manifest {
    if moved.is_empty() {
        return m;
    }
    let to = |p: &mut String| {
        if let Some(n) = moved.get(&index::normal(p)) {
            *p = n.clone();
        }
    };
    for a in m
        .artifacts
        .iter_mut()
        .filter(|a| a.kind != ArtifactKind::OstreeCommit)
    {
        to(&mut a.path);
    }
    for s in &mut m.stages {
        if let Some(l) = s.log.as_mut() {
            to(l);
        }
        for r in &mut s.results {
            if let Some(l) = r.log.as_mut() {
                to(l);
            }
        }
        // Stage facts naming a member (test's `run_files`) follow it too.
        for v in s.data.values_mut() {
            relocate_value(v, moved);
        }
    }
    m
}

fn relocate_value(v: &mut serde_json::Value, moved: &HashMap<String, String>) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(n) = moved.get(s.as_str()) {
                *s = n.clone();
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| relocate_value(x, moved)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| relocate_value(x, moved)),
        _ => {}
    }
}
