//! Reading a spec file and built packages through rpm's own tools.

use super::backend::Job;
use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::hostcache::{file_id, HostCache};
use crate::manifest::Nevra;
use crate::sandbox::Sandbox;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SpecInfo {
    pub name: String,
    /// `name-version-release`, as rpmbuild would name the source package.
    pub nvr: String,
    /// The latest changelog entry's author (`Name <address> - version`).
    pub changelog_name: String,
    pub sources: Vec<String>,
    pub buildrequires: Vec<String>,
}

/// Parses the spec with `rpmspec` (so macros expand exactly as rpmbuild will see them).
pub fn query(job: &Job, sandbox: &Sandbox, log: &mut Log) -> Result<SpecInfo> {
    let spec = job.spec;
    let cmd = rpmspec(job).args(["-q", "--srpm"]);
    let qf = "N=%{NAME}\nNVR=%{NAME}-%{VERSION}-%{RELEASE}\nM=%{CHANGELOGNAME}\n[S=%{SOURCE}\n][S=%{PATCH}\n][B=%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]";
    let out = log.capture(
        &sandbox
            .wrap(&cmd.arg("--qf").arg(qf).arg(spec))?
            .timeout(job.timeout)
            .timeout_whole(job.timeout_whole),
    )?;
    if let Some(why) = out.limit {
        return Err(crate::limits::Reached(why).into());
    }
    if let Some(f) = out.failure() {
        let why = out
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .unwrap_or_else(|| f.to_string());
        return Err(not_parsed(job, &why).into());
    }
    let mut name = String::new();
    let mut nvr = String::new();
    let mut changelog_name = String::new();
    let (mut sources, mut buildrequires) = (Vec::new(), Vec::new());
    for line in out.stdout.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "N" => name = v.to_string(),
            "NVR" => nvr = v.to_string(),
            "M" if v != "(none)" => changelog_name = v.to_string(),
            "S" => sources.push(v.rsplit('/').next().unwrap_or(v).to_string()),
            "B" if !v.starts_with("rpmlib(") => {
                buildrequires.push(v.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            _ => {}
        }
    }
    Ok(SpecInfo {
        name,
        nvr,
        changelog_name,
        sources,
        buildrequires,
    })
}

/// The package's mistake rpm found parsing its spec (`why`, as rpm says it: `line 5: Unknown
/// tag: …`), at the spec's path and line in the dist-git repository, never fci's copy.
fn not_parsed(job: &Job, why: &str) -> FciError {
    let why = why.replace(
        &job.spec.display().to_string(),
        &job.origin.display().to_string(),
    );
    let why = crate::error::as_in_dist_git(&why, &[(job.sources, "")]);
    let line = why
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    // A line of what rpmautospec added above the spec is no line of the packager's.
    let line = line.map(|(n, rest)| (n.checked_sub(job.line_offset).filter(|n| *n > 0), rest));
    match line {
        Some((n, rest)) => FciError::package(job.origin, n, format!("spec does not parse: {rest}")),
        None => FciError::package(job.origin, None, format!("spec does not parse: {why}")),
    }
}

/// The line of the spec's `SourceN:` or `PatchN:` tag naming `file` (1-based), if one names
/// it as written (a name built of macros is found by rpm only).
pub fn line_naming(spec: &Path, file: &str) -> Option<usize> {
    let text = std::fs::read(spec).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .position(|l| {
            let l = l.trim_start().to_ascii_lowercase();
            (l.starts_with("source") || l.starts_with("patch"))
                && l.contains(':')
                && l.trim_end().ends_with(&file.to_ascii_lowercase())
        })
        .map(|i| i + 1)
}

/// rpmspec with the macros and definitions the build uses.
fn rpmspec(job: &Job) -> Cmd {
    let mut cmd = Cmd::new("rpmspec").c_locale();
    for m in super::backend::macro_files(job) {
        cmd = cmd.arg("--load").arg(m);
    }
    for (k, v) in job.defines {
        cmd = cmd.define(k, v);
    }
    cmd
}

/// Whether the spec, once parsed as rpmbuild parses it, has a `%check` section: rpm's word,
/// not a line in the build's output, which package code can print too.
pub fn parsed_has_check(job: &Job, sandbox: &Sandbox, log: &mut Log) -> Result<bool> {
    let out = log.capture(
        &sandbox
            .wrap(&rpmspec(job).arg("-P").arg(job.spec))?
            .timeout(job.timeout)
            .timeout_whole(job.timeout_whole),
    )?;
    if let Some(why) = out.limit {
        return Err(crate::limits::Reached(why).into());
    }
    Ok(out.success()
        && out.stdout.lines().any(|l| {
            l.strip_prefix("%check")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        }))
}

/// BuildRequires the host cannot satisfy: neither its rpm database (empty on a non-RPM host)
/// nor (with `host_too`; not for --strict-builddeps, rpm's view) what each names
/// (`builddeps::host_has`).
///
/// The answer only changes when the rpm database does, so it is memoised against the
/// database files' identities.
pub fn unmet(
    buildrequires: &[String],
    host_too: bool,
    mapped: &crate::config::HostDeps,
    hc: &mut HostCache,
    log: &mut Log,
) -> Result<Vec<String>> {
    if buildrequires.is_empty() {
        return Ok(Vec::new());
    }
    // Names come from spec code's output: none may pass as an option to rpm.
    let names: Vec<&str> = buildrequires
        .iter()
        .filter_map(|b| b.split_whitespace().next())
        .filter(|n| !n.starts_with('-'))
        .collect();
    let key = format!("unmet.v3 {} {}", rpmdb_identity(hc), names.join(" "));
    let missing = hc.get_or(key, || {
        let cmd = Cmd::new("rpm")
            .c_locale()
            .args(["-q", "--whatprovides", "--"])
            .args(&names);
        let out = log.capture(&cmd).ok()?;
        // rpm words each kind of answer differently, on stdout or stderr.
        let missing: Vec<&str> = out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .filter_map(|l| {
                l.strip_prefix("no package provides ")
                    .or_else(|| {
                        l.strip_prefix("file ")
                            .and_then(|f| f.strip_suffix(" is not owned by any package"))
                    })
                    .or_else(|| {
                        l.strip_prefix("error: file ")
                            .and_then(|f| f.strip_suffix(": No such file or directory"))
                    })
            })
            .map(str::trim)
            .collect();
        Some(serde_json::json!(missing))
    });
    let missing: Vec<String> = missing
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| names.iter().map(|n| n.to_string()).collect());
    // What rpm does not know of, the host may still have (a non-RPM host: gcc, make and
    // libattr1-dev are dpkg's): asked by what each names, never memoised (dpkg changes too).
    Ok(buildrequires
        .iter()
        .filter(|b| {
            b.split_whitespace().next().is_some_and(|n| {
                missing.iter().any(|m| m == n)
                    && !(host_too && super::builddeps::host_has(n, mapped, log))
            })
        })
        .cloned()
        .collect())
}

/// The host rpm database's files (path, size, mtime), which change whenever it does.
pub fn rpmdb_identity(hc: &mut HostCache) -> String {
    let rpm_id = crate::tool::which("rpm")
        .and_then(|p| file_id(&p))
        .unwrap_or_default();
    let dbpath = hc
        .get_or(format!("dbpath {rpm_id}"), || {
            let out = duct::cmd("rpm", ["--eval", "%{_dbpath}"])
                .stdout_capture()
                .stderr_null()
                .read()
                .ok()?;
            Some(serde_json::Value::String(out.trim().to_string()))
        })
        .and_then(|v| v.as_str().map(PathBuf::from))
        .unwrap_or_default();
    let mut ids: Vec<String> = std::fs::read_dir(&dbpath)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                // The shared-memory index and the lock change on every read.
                .filter(|p| {
                    let s = p.to_string_lossy();
                    !s.ends_with("-shm") && !s.ends_with(".lock")
                })
                .filter_map(|p| file_id(&p))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    crate::digest::sha256_bytes(format!("{} {}", dbpath.display(), ids.join(" ")).as_bytes())
}

/// Whether the spec has a `%check` section (it then reports the `build.check` test case).
pub fn has_check(spec: &Path) -> bool {
    std::fs::read_to_string(spec)
        .is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("%check")))
}

/// What fci reads from a built package's header.
pub struct Header {
    pub nevra: Nevra,
    /// For a binary package: the source package it was built from.
    pub sourcerpm: Option<String>,
    /// For a source package: the BuildRequires.
    pub requires: Vec<String>,
    /// Who wrote the latest changelog entry, when there is one: read in the same rpm call
    /// as the rest (a process of its own cost a tenth of a small build's overhead).
    pub changelog_name: Option<String>,
}

/// Each package's header (one rpm call for all): NEVRA, and requirements.
pub fn headers(pkgs: &[PathBuf], log: &mut Log) -> Result<Vec<Header>> {
    let mut rows: Vec<Header> = Vec::new();
    // A few hundred at a time: thousands of long names would pass the kernel's limit on a
    // command line.
    for chunk in pkgs.chunks(256) {
        rows.extend(headers_of(chunk, log)?);
    }
    if rows.len() != pkgs.len() {
        // A name or requirement with a tab or a newline in it: not a package rpmbuild made.
        return Err(super::repo::NotTheBuilds(format!(
            "rpm -qp returned {} headers for {} packages in the build's output",
            rows.len(),
            pkgs.len()
        ))
        .into());
    }
    Ok(rows)
}

fn headers_of(pkgs: &[PathBuf], log: &mut Log) -> Result<Vec<Header>> {
    let qf = "P\t%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\nC\t%{CHANGELOGNAME}\n[R\t%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]";
    let out = log.capture(
        &Cmd::new("rpm")
            .c_locale()
            .args(["-qp", "--nosignature", "--nodigest", "--qf", qf, "--"])
            .args(pkgs),
    )?;
    // The files are what package code left in the build's output directories.
    let out = out.checked().map_err(|f| super::repo::NotTheBuilds(format!(
        "rpm cannot read the build's packages (package code put files that are not packages there?): {f}"
    )))?;
    let mut rows: Vec<Header> = Vec::new();
    for line in out.stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["P", name, epoch, version, release, arch, sourcerpm] => rows.push(Header {
                nevra: Nevra {
                    name: name.to_string(),
                    epoch: epoch.parse().ok(),
                    version: version.to_string(),
                    release: release.to_string(),
                    // A source package has no SOURCERPM; rpm reports the build arch for it.
                    arch: if *sourcerpm == "(none)" {
                        "src".into()
                    } else {
                        arch.to_string()
                    },
                },
                sourcerpm: (*sourcerpm != "(none)").then(|| sourcerpm.to_string()),
                requires: Vec::new(),
                changelog_name: None,
            }),
            ["C", name @ ..] => {
                let name = name.join("\t");
                let name = name.trim();
                if let Some(h) = rows.last_mut() {
                    h.changelog_name =
                        (!name.is_empty() && name != "(none)").then(|| name.to_string());
                }
            }
            ["R", req] if !req.starts_with("rpmlib(") => {
                if let Some(h) = rows.last_mut() {
                    h.requires
                        .push(req.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            _ => {}
        }
    }
    Ok(rows)
}

/// The latest `%changelog` entry's head of a spec read as text (`Jane Doe <jane@example.org> -
/// 1.0-1`, without the `* date`), for a spec rpm cannot parse: macros in it stay unexpanded.
pub fn changelog_text_name(spec: &str) -> Option<String> {
    let mut lines = spec.lines().skip_while(|l| l.trim() != "%changelog");
    lines.next()?;
    let head = lines.map(str::trim).find(|l| l.starts_with('*'))?;
    // `* Mon Jan 01 2024 Name <address> - version`: the date is the first four words.
    let rest: Vec<&str> = head.trim_start_matches('*').split_whitespace().collect();
    (rest.len() > 4).then(|| rest[4..].join(" "))
}

#[cfg(test)]
mod changelog_text_tests {
    #[test]
    fn the_latest_changelog_entry_is_read_from_the_text() {
        let spec = "Name: x\n%if 1\n%changelog\n* Mon Jan 01 2024 Jane Doe <jane@example.org> - 1.0-1\n- first\n* Sun Dec 31 2023 Old <old@example.org> - 0.9-1\n";
        assert_eq!(
            super::changelog_text_name(spec).as_deref(),
            Some("Jane Doe <jane@example.org> - 1.0-1")
        );
        assert_eq!(super::changelog_text_name("Name: x\n"), None);
    }
}
