//! Reading a spec file and built packages through rpm's own tools.

use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::manifest::Nevra;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SpecInfo {
    pub name: String,
    pub version: String,
    pub release: String,
    pub sources: Vec<String>,
    pub buildrequires: Vec<String>,
    pub has_check: bool,
}

/// Parses the spec with `rpmspec` (so macros expand exactly as rpmbuild will see them).
pub fn query(spec: &Path, defines: &[(String, String)], log: &mut Log) -> Result<SpecInfo> {
    let mut cmd = Cmd::new("rpmspec").args(["-q", "--srpm"]);
    for (k, v) in defines {
        cmd = cmd.define(k, v);
    }
    let qf = "N=%{NAME}\nV=%{VERSION}\nR=%{RELEASE}\n[S=%{SOURCE}\n][S=%{PATCH}\n][B=%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]";
    let out = log.capture(&cmd.arg("--qf").arg(qf).arg(spec))?;
    if !out.success() {
        let why = out
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .unwrap_or_else(|| format!("rpmspec exited with {:?}", out.code));
        return Err(FciError::input(spec, format!("spec does not parse: {why}")).into());
    }
    let (mut name, mut version, mut release) = (String::new(), String::new(), String::new());
    let (mut sources, mut buildrequires) = (Vec::new(), Vec::new());
    for line in out.stdout.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "N" => name = v.to_string(),
            "V" => version = v.to_string(),
            "R" => release = v.to_string(),
            "S" => sources.push(v.rsplit('/').next().unwrap_or(v).to_string()),
            "B" if !v.starts_with("rpmlib(") => {
                buildrequires.push(v.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(spec).unwrap_or_default();
    let has_check = text.lines().any(|l| l.trim_start().starts_with("%check"));
    Ok(SpecInfo {
        name,
        version,
        release,
        sources,
        buildrequires,
        has_check,
    })
}

/// BuildRequires the host rpm database cannot satisfy (all of them on a non-RPM host).
pub fn unmet(buildrequires: &[String], log: &mut Log) -> Result<Vec<String>> {
    if buildrequires.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = buildrequires
        .iter()
        .filter_map(|b| b.split_whitespace().next())
        .collect();
    let out = log.capture(&Cmd::new("rpm").args(["-q", "--whatprovides"]).args(&names))?;
    let missing: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("no package provides "))
        .map(str::trim)
        .collect();
    Ok(buildrequires
        .iter()
        .filter(|b| {
            b.split_whitespace()
                .next()
                .is_some_and(|n| missing.contains(&n))
        })
        .cloned()
        .collect())
}

/// NEVRA of each package, read from the package headers (one rpm call for all).
pub fn nevras(pkgs: &[PathBuf], log: &mut Log) -> Result<Vec<Nevra>> {
    let qf = "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n";
    let out = log.capture(
        &Cmd::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest", "--qf", qf])
            .args(pkgs),
    )?;
    if !out.success() {
        return Err(FciError::Infra(format!(
            "rpm -qp failed on the built packages: {}",
            out.stderr.trim()
        ))
        .into());
    }
    let rows: Vec<Nevra> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 6).then(|| Nevra {
                name: f[0].into(),
                epoch: f[1].parse().ok(),
                version: f[2].into(),
                release: f[3].into(),
                // A source package has no SOURCERPM; rpm reports the build arch for it.
                arch: if f[5] == "(none)" {
                    "src".into()
                } else {
                    f[4].into()
                },
            })
        })
        .collect();
    if rows.len() != pkgs.len() {
        return Err(FciError::Infra(format!(
            "rpm -qp returned {} headers for {} packages",
            rows.len(),
            pkgs.len()
        ))
        .into());
    }
    Ok(rows)
}
