//! Content digests: files, byte strings and whole directory trees.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256, Sha512};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub fn sha256_bytes(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hash_reader<D: Digest>(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut h = D::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), total))
}

/// sha256 and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    hash_reader::<Sha256>(f).with_context(|| format!("{}: cannot read", path.display()))
}

pub fn sha512_file(path: &Path) -> Result<String> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    Ok(hash_reader::<Sha512>(f)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .0)
}

/// The old dist-git `sources` format (`HASH  name`) uses md5.
pub fn md5_file(path: &Path) -> Result<String> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    Ok(hash_reader::<md5::Md5>(f)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .0)
}

/// Regular files below `root` (relative paths, sorted), skipping `.git` and the named dirs.
pub fn list_files(root: &Path, skip: &[&str]) -> Result<Vec<PathBuf>> {
    let skipped = |e: &walkdir::DirEntry| {
        let name = e.file_name().to_string_lossy();
        e.depth() == 1 && (name == ".git" || skip.contains(&name.as_ref()))
    };
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !skipped(e))
    {
        let e = e.with_context(|| format!("{}: cannot list", root.display()))?;
        if e.file_type().is_file() || e.file_type().is_symlink() {
            out.push(e.path().strip_prefix(root)?.to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

/// Digest of a directory tree: paths, executable bits, symlink targets and contents.
pub fn tree_digest(root: &Path, files: &[PathBuf]) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    for rel in files {
        let p = root.join(rel);
        let meta = std::fs::symlink_metadata(&p)?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        if meta.file_type().is_symlink() {
            h.update(b"L");
            h.update(std::fs::read_link(&p)?.to_string_lossy().as_bytes());
        } else {
            h.update(if meta.permissions().mode() & 0o111 != 0 {
                b"X"
            } else {
                b"F"
            });
            h.update(sha256_file(&p)?.0.as_bytes());
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}
