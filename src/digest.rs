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
    fn walk(root: &Path, rel: &Path, skip: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
        let dir = root.join(rel);
        let rd =
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            let name_s = name.to_string_lossy();
            if rel.as_os_str().is_empty() && (name_s == ".git" || skip.contains(&name_s.as_ref())) {
                continue;
            }
            let ft = entry.file_type()?;
            let r = rel.join(&name);
            if ft.is_dir() {
                walk(root, &r, skip, out)?;
            } else if ft.is_file() || ft.is_symlink() {
                out.push(r);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), skip, &mut out)?;
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
