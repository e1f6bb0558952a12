//! The dist-git `sources` file and the lookaside cache it points into.

use crate::digest;
use crate::error::FciError;
use crate::files::copy_plain;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// Lower-case algorithm name as used in lookaside URLs: sha512, sha256 or md5.
    pub algo: String,
    pub hash: String,
}

/// The `sources` file as the dist-git repository names it, in the package's mistakes.
const SHOWN: &str = "sources";

/// Parses both the current `SHA512 (name) = hash` and the legacy `md5hash  name` formats;
/// what is wrong there is the package's mistake.
pub fn parse(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FciError::package(SHOWN, None, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| FciError::package(SHOWN, Some(i + 1), format!("{why}: `{line}`"));
        let entry = if let Some((lhs, hash)) = line.split_once(") = ") {
            let (algo, name) = lhs
                .split_once(" (")
                .ok_or_else(|| bad("expected `ALGO (name) = hash`"))?;
            Entry {
                name: name.to_string(),
                algo: algo.to_ascii_lowercase(),
                hash: hash.trim().to_ascii_lowercase(),
            }
        } else {
            let mut parts = line.split_whitespace();
            let (Some(hash), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected `ALGO (name) = hash` or `md5hash  name`").into());
            };
            Entry {
                name: name.to_string(),
                algo: "md5".into(),
                hash: hash.to_ascii_lowercase(),
            }
        };
        let expected_len = match entry.algo.as_str() {
            "sha512" => 128,
            "sha256" => 64,
            "md5" => 32,
            other => return Err(bad(&format!("unsupported hash algorithm `{other}`")).into()),
        };
        if entry.hash.len() != expected_len || !entry.hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(&format!("not a {} hash", entry.algo)).into());
        }
        if entry.name.contains('/') || entry.name.starts_with('.') || entry.name.is_empty() {
            return Err(bad("file name must be a plain name inside the repository").into());
        }
        out.push(entry);
    }
    Ok(out)
}

pub fn hash_file(algo: &str, path: &Path) -> Result<String> {
    match algo {
        "sha512" => digest::sha512_file(path),
        "sha256" => Ok(digest::sha256_file(path)?.0),
        _ => digest::md5_file(path),
    }
}

/// Where lookaside files come from.
#[derive(Clone, Debug)]
pub enum Lookaside {
    Dir(PathBuf),
    Url(String),
}

impl Lookaside {
    pub fn parse(s: &str) -> Result<Self> {
        if s.starts_with("http://") || s.starts_with("https://") {
            reqwest::Url::parse(s).map_err(|e| {
                FciError::input(
                    crate::redact::strip_credentials(s),
                    format!("invalid lookaside URL: {e}"),
                )
            })?;
            crate::net::refuse_clear_credentials("--lookaside", s, false)
                .map_err(FciError::Usage)?;
            Ok(Lookaside::Url(s.trim_end_matches('/').to_string()))
        } else if s.contains("://") {
            Err(FciError::input(
                s,
                "unsupported lookaside URL scheme (use http or https, or a directory)",
            )
            .into())
        } else {
            let p = PathBuf::from(s);
            if !p.is_dir() {
                return Err(FciError::input(&p, "lookaside directory does not exist").into());
            }
            Ok(Lookaside::Dir(p))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Lookaside::Dir(p) => p.display().to_string(),
            Lookaside::Url(u) => crate::redact::strip_credentials(u),
        }
    }

    /// Fedora's layout first, then the pre-2017 one without the algorithm, then a flat directory.
    fn candidates(&self, pkg: &str, e: &Entry) -> Vec<String> {
        let n = &e.name;
        let mut v = vec![
            format!("{pkg}/{n}/{}/{}/{n}", e.algo, e.hash),
            format!("{pkg}/{n}/{}/{n}", e.hash),
        ];
        if matches!(self, Lookaside::Dir(_)) {
            v.push(n.clone());
        }
        v
    }

    /// Copies the entry into `dest` (a file path), trying each layout; Ok(false) when absent.
    fn fetch_one(&self, pkg: &str, e: &Entry, dest: &Path) -> Result<Option<String>> {
        for rel in self.candidates(pkg, e) {
            match self {
                Lookaside::Dir(d) => {
                    let p = d.join(&rel);
                    if p.is_file() {
                        copy_plain(&p, dest, None)?;
                        return Ok(Some(p.display().to_string()));
                    }
                }
                Lookaside::Url(base) => {
                    let url = format!("{base}/{rel}");
                    // Never proxied to loopback; no redirect followed with the URL's own
                    // credentials, none from https to http without (`crate::net`).
                    let resp = crate::net::client_for(&url, crate::net::has_credentials(&url))
                        .timeout(std::time::Duration::from_secs(300))
                        .build()?
                        .get(&url)
                        .send()
                        .map_err(|e| {
                            FciError::Infra(format!(
                                "lookaside {}: {}",
                                crate::redact::strip_credentials(&url),
                                crate::redact::scrub_credentials(&e.to_string(), &url)
                            ))
                        })?;
                    if resp.status() == reqwest::StatusCode::NOT_FOUND {
                        continue;
                    }
                    if !resp.status().is_success() {
                        return Err(FciError::Infra(format!(
                            "lookaside {}: HTTP {}",
                            crate::redact::strip_credentials(&url),
                            resp.status()
                        ))
                        .into());
                    }
                    // No source is this large: a server that sends more is not a
                    // lookaside cache, and must not fill the disk.
                    save(resp, dest, crate::caps::LOOKASIDE_DOWNLOAD, &url)?;
                    // Where it came from, as shown: without credentials.
                    return Ok(Some(crate::redact::strip_credentials(&url)));
                }
            }
        }
        Ok(None)
    }
}

/// Writes an answer's body to `dest`, up to `cap` bytes; past it (or broken off) `dest` is
/// removed and the error names the limit (or the cause) and the URL without credentials.
fn save(resp: reqwest::blocking::Response, dest: &Path, cap: u64, url: &str) -> Result<()> {
    let shown = crate::redact::strip_credentials(url);
    if let Some(n) = resp.content_length().filter(|n| *n > cap) {
        return Err(FciError::Infra(format!(
            "lookaside {shown}: {n} bytes, larger than the {} limit for a source (not downloaded)",
            crate::caps::human(cap)
        ))
        .into());
    }
    let mut f = std::fs::File::create(dest)?;
    let mut body = crate::caps::Capped::new(resp, cap);
    if let Err(e) = std::io::copy(&mut body, &mut f) {
        drop(f);
        let _ = std::fs::remove_file(dest);
        let why = match crate::caps::TooLarge::of(&e) {
            Some(t) => format!("{t} for a source (download stopped)"),
            None => crate::redact::scrub_credentials(&e.to_string(), url),
        };
        return Err(FciError::Infra(format!("lookaside {shown}: {why}")).into());
    }
    Ok(())
}

/// Puts every `sources` entry into `dest_dir`, verified, using `cache` (a workspace dir) first.
pub fn fetch_all(
    sources_file: &Path,
    entries: &[Entry],
    pkg: &str,
    repo_dir: &Path,
    lookaside: Option<&Lookaside>,
    cache: &Path,
    dest_dir: &Path,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for e in entries {
        let cached = cache.join(&e.algo).join(&e.hash).join(&e.name);
        let dest = dest_dir.join(&e.name);
        let _ = std::fs::remove_file(&dest);
        if cached.is_file() {
            // Checked on every use: a damaged cache entry is dropped and fetched again.
            if hash_file(&e.algo, &cached)? == e.hash {
                link_or_copy(&cached, &dest)?;
                continue;
            }
            let _ = std::fs::remove_file(&cached);
        }
        // A file already in the checkout (as fedpkg leaves it) counts if its hash matches.
        let local = repo_dir.join(&e.name);
        let staged = dest_dir.join(format!(".{}.part", e.name));
        let from_checkout = local.is_file();
        let origin = if from_checkout {
            copy_plain(&local, &staged, None)?;
            // As the repository names it, not fci's checkout.
            format!("the repository's `{}`", e.name)
        } else {
            let Some(la) = lookaside else {
                return Err(FciError::input(
                    sources_file,
                    format!(
                        "`{}` is not in the repository and no --lookaside was given",
                        e.name
                    ),
                )
                .into());
            };
            match la.fetch_one(pkg, e, &staged)? {
                Some(o) => o,
                None => {
                    // Not uploaded (`fedpkg new-sources`): the package's mistake.
                    return Err(FciError::package(
                        SHOWN,
                        line_of(sources_file, e),
                        format!(
                            "`{}` ({} {}) not found in lookaside {}",
                            e.name,
                            e.algo,
                            e.hash,
                            la.describe()
                        ),
                    )
                    .into());
                }
            }
        };
        let got = hash_file(&e.algo, &staged)?;
        if got != e.hash {
            let _ = std::fs::remove_file(&staged);
            let what = format!(
                "{} mismatch for `{}` from {}: expected {}, got {got}",
                e.algo,
                e.name,
                crate::redact::redact(&origin),
                e.hash
            );
            // A lookaside path named by the hash serves that blob: other bytes there are the
            // server's fault (the host's, exit 3). The checkout's own file, or a flat
            // lookaside's (`{base}/{file}`), is what the `sources` file's hash is wrong about.
            let by_hash = !from_checkout && origin.contains(&e.hash);
            return Err(if by_hash {
                FciError::Infra(format!("the lookaside served other bytes: {what}"))
            } else {
                FciError::package(SHOWN, line_of(sources_file, e), what)
            }
            .into());
        }
        // md5 is not collision-resistant: an md5-verified file is used but never shared
        // through the cache with other packages.
        if e.algo != "md5" {
            let dir = cached.parent().unwrap();
            std::fs::create_dir_all(dir)?;
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            let tmp_path = tmp.into_temp_path();
            std::fs::remove_file(&tmp_path)?;
            copy_plain(&staged, &tmp_path, None)?;
            tmp_path.persist(&cached).map_err(|e| e.error)?;
        }
        std::fs::rename(&staged, &dest)?;
        notes.push(format!(
            "fetched {} from {}",
            e.name,
            crate::redact::redact(&origin)
        ));
    }
    Ok(notes)
}

/// The line of the `sources` file that names entry `e` (1-based).
fn line_of(sources_file: &Path, e: &Entry) -> Option<usize> {
    let text = std::fs::read_to_string(sources_file).ok()?;
    text.lines()
        .position(|l| l.contains(&e.name) && l.to_ascii_lowercase().contains(&e.hash))
        .map(|i| i + 1)
}

/// The cache's files are fci's own (plain mode), so a hard link is safe and free.
fn link_or_copy(src: &Path, dest: &Path) -> Result<()> {
    if std::fs::hard_link(src, dest).is_err() {
        copy_plain(src, dest, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_past_its_cap_stops_and_leaves_nothing() {
        use std::io::Write;
        // A server that sends 3 MiB without saying how much (no Content-Length).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(1) {
                let mut conn = conn.unwrap();
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut buf);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..48 {
                    if conn.write_all(&chunk).is_err() {
                        return;
                    }
                }
            }
        });
        let url = format!("http://fci:S3CRET@127.0.0.1:{port}/pkg/x.tar.gz");
        let resp = reqwest::blocking::get(&url).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.tar.gz");
        let e = save(resp, &dest, 1024 * 1024, &url)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "lookaside http://127.0.0.1:{port}/pkg/x.tar.gz: larger than the 1 MiB limit for a source (download stopped)"
            )
        );
        assert!(!dest.exists(), "a partial download is left");
    }

    #[test]
    fn parses_both_formats_and_rejects_paths() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sources");
        let h = "a".repeat(128);
        std::fs::write(
            &f,
            format!(
                "SHA512 (x-1.0.tar.gz) = {h}\n{}  old.tar.gz\n",
                "b".repeat(32)
            ),
        )
        .unwrap();
        let e = parse(&f).unwrap();
        assert_eq!(
            e[0],
            Entry {
                name: "x-1.0.tar.gz".into(),
                algo: "sha512".into(),
                hash: h
            }
        );
        assert_eq!(e[1].algo, "md5");
        std::fs::write(
            &f,
            format!("SHA512 (../etc/passwd) = {}\n", "a".repeat(128)),
        )
        .unwrap();
        assert!(parse(&f).unwrap_err().to_string().contains("plain name"));
        std::fs::write(&f, "SHA512 (x) = 123\n").unwrap();
        assert!(parse(&f)
            .unwrap_err()
            .to_string()
            .contains("sources:1: not a sha512 hash"));
    }
}
