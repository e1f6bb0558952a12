//! How a run is published: the namespace of its test names, its contact and the URLs its
//! messages and results link to.
//!
//! The run's first stage fixes them in the manifest (`run.ci`): `--namespace` (env
//! `FCI_NAMESPACE`), else fci.yaml's `ci.namespace` (the fci.yaml `fci watch` named in
//! `run.config`), else `fedora-ci.koji-build`; the contact from fci.yaml's `ci:` (name and
//! team default to fci's own; email, irc and docs only when given); `--artifacts-url` (env
//! `FCI_ARTIFACTS_URL`, else `ci.artifacts_url`); who ran it and on which architecture. Later
//! stages, and `fci report` resending the stages' messages, read them from there: a message
//! is a function of the manifest alone, so its id always means the same body. A later stage
//! given another namespace or artifacts URL is refused (exit 2): one run, one set of names.
//!
//! The job's URL (`--run-url`, env `FCI_RUN_URL`, else Jenkins' `BUILD_URL`) is each
//! record's own (`StageRecord::run_url`): the stages of one run may run in several jobs.

use crate::error::FciError;
use crate::manifest::{Ci, Contact, Manifest};
use serde_json::Map;
use std::path::Path;

/// The namespace of a run that names none: Fedora CI's, which Fedora's gating.yaml files
/// name (`fedora-ci.koji-build.tier0.functional`).
pub const DEFAULT_NAMESPACE: &str = "fedora-ci.koji-build";

/// What the stage's flags (`--namespace`, `--run-url`, `--artifacts-url`) say of the run.
pub struct Given<'a> {
    pub namespace: Option<&'a str>,
    pub run_url: Option<&'a str>,
    pub artifacts_url: Option<&'a str>,
}

/// The run's identity as its first stage fixed it (`run.ci`), or, for a manifest no stage of
/// this fci ran, fci's own: the default namespace, no links.
pub fn of(m: &Manifest) -> Ci {
    m.run.ci.clone().unwrap_or_else(|| Ci {
        namespace: DEFAULT_NAMESPACE.into(),
        contact: contact(&Default::default()),
        issuer: "fci".into(),
        architecture: std::env::consts::ARCH.into(),
        artifacts_url: None,
        workspace_url: None,
        extra: Map::new(),
    })
}

/// Fixes the run's identity in `m` (when its first stage runs), or checks that the flags do
/// not contradict it; sets the job's URL the stage's records carry.
pub fn settle(m: &mut Manifest, given: &Given, workspace: &Path) -> Result<(), FciError> {
    crate::manifest::set_job_url(job_url(given.run_url)?);
    let given_ns = given.namespace.map(str::trim).filter(|n| !n.is_empty());
    if let Some(ns) = given_ns {
        crate::config::check_test_namespace(ns)
            .map_err(|e| FciError::Usage(format!("--namespace: {e}")))?;
    }
    let given_art = given.artifacts_url.map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = given_art {
        crate::config::check_web_url(u)
            .map_err(|e| FciError::Usage(format!("--artifacts-url: {e}")))?;
    }
    if let Some(ci) = &m.run.ci {
        if let Some(ns) = given_ns.filter(|ns| *ns != ci.namespace) {
            return Err(FciError::Usage(format!(
                "run {} is named in namespace `{}` (its first stage's): --namespace (or FCI_NAMESPACE) {ns} would \
                 split its messages and results; give the same one, or none",
                m.run.id, ci.namespace
            )));
        }
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        if let Some(u) = given_art {
            if !ci.artifacts_url.as_deref().is_some_and(|a| same(a, u)) {
                return Err(FciError::Usage(format!(
                    "run {} publishes its files under {} (its first stage's): --artifacts-url (or FCI_ARTIFACTS_URL) {u} \
                     would link its messages elsewhere; give the same one, or none",
                    m.run.id,
                    ci.artifacts_url.as_deref().unwrap_or("no URL")
                )));
            }
        }
        return Ok(());
    }
    let config = pipeline_config(m);
    let namespace = given_ns
        .map(String::from)
        .or_else(|| config.namespace.clone())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let artifacts_url = given_art
        .map(String::from)
        .or_else(|| config.artifacts_url.clone())
        .map(|u| format!("{}/", u.trim_end_matches('/')));
    m.run.ci = Some(Ci {
        namespace,
        contact: contact(&config),
        issuer: std::env::var("USER")
            .ok()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "fci".into()),
        architecture: std::env::consts::ARCH.to_string(),
        artifacts_url,
        workspace_url: workspace_url(workspace),
        extra: Map::new(),
    });
    Ok(())
}

/// The contact: fci.yaml's `ci:`, with fci's own name and team where it names none (and
/// fci's own docs, when its package names a homepage or repository and the pipeline names
/// neither itself nor its docs).
pub fn contact(c: &crate::config::CiConfig) -> Contact {
    let own_docs = [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
        .into_iter()
        .find(|u| u.starts_with("https://"))
        .filter(|_| c.name.is_none())
        .map(String::from);
    Contact {
        name: c.name.clone().unwrap_or_else(|| "fci".into()),
        team: c.team.clone().unwrap_or_else(|| "fci".into()),
        email: c.email.clone(),
        irc: c.irc.clone(),
        docs: c.docs.clone().or(own_docs),
        extra: Map::new(),
    }
}

/// The `ci:` of the fci.yaml the run's manifest names (when it is still the file `fci watch`
/// read); none otherwise.
fn pipeline_config(m: &Manifest) -> crate::config::CiConfig {
    m.run
        .config
        .as_ref()
        .and_then(|c| crate::config::Config::load_pinned(Path::new(&c.path), &c.sha256).ok())
        .map(|c| c.ci)
        .unwrap_or_default()
}

/// The job's URL: `--run-url` (or `FCI_RUN_URL`), else Jenkins' `BUILD_URL`. A bad flag is
/// the caller's mistake; a bad `BUILD_URL` is not used (said once).
fn job_url(given: Option<&str>) -> Result<Option<String>, FciError> {
    if let Some(u) = given.map(str::trim).filter(|u| !u.is_empty()) {
        check_job_url(u).map_err(|e| FciError::Usage(format!("--run-url: {e}")))?;
        return Ok(Some(u.to_string()));
    }
    let Some(u) = std::env::var("BUILD_URL")
        .ok()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    match check_job_url(&u) {
        Ok(()) => Ok(Some(u)),
        Err(e) => {
            crate::progress::note(&format!("warning: BUILD_URL is not used: {e}"));
            Ok(None)
        }
    }
}

/// A job's URL: as `config::check_web_url`, but a fragment is allowed (Buildbot's pages are
/// `https://host/#/builders/3/builds/7`).
fn check_job_url(u: &str) -> Result<(), String> {
    match u.split_once('#') {
        Some((page, _)) => crate::config::check_web_url(page),
        None => crate::config::check_web_url(u),
    }
}

/// The workspace as a `file:` URL of this host (`file://host/abs/path/`).
fn workspace_url(workspace: &Path) -> Option<String> {
    let abs = std::path::absolute(workspace).ok()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        })
        .unwrap_or_default();
    let path: String = abs
        .to_string_lossy()
        .trim_end_matches('/')
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/");
    Some(format!("file://{host}{path}/"))
}

fn percent_encode(seg: &str) -> String {
    seg.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'@') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The links of a job's URL: Jenkins (a `…/job/<name>/<n>/` URL) has its console, its
/// plain-text console and its rebuild page below it; another scheduler's page is its own log.
pub struct JobLinks {
    pub url: String,
    pub log: String,
    pub log_raw: Option<String>,
    pub rebuild: Option<String>,
}

pub fn job_links(url: &str) -> JobLinks {
    let jenkins = url.contains("/job/") && {
        let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        !last.is_empty() && last.chars().all(|c| c.is_ascii_digit())
    };
    if jenkins {
        let base = format!("{}/", url.trim_end_matches('/'));
        JobLinks {
            url: base.clone(),
            log: format!("{base}console"),
            log_raw: Some(format!("{base}consoleText")),
            rebuild: Some(format!("{base}rebuild")),
        }
    } else {
        JobLinks {
            url: url.to_string(),
            log: url.to_string(),
            log_raw: None,
            rebuild: None,
        }
    }
}

/// A workspace-relative path below a base URL (`https://ci/artifacts/` + `objects/ab/…`).
pub fn link(base: &str, rel: &str) -> String {
    let path: Vec<String> = rel.split('/').map(percent_encode).collect();
    format!("{}/{}", base.trim_end_matches('/'), path.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jenkins_build_has_its_console_and_rebuild_below_it() {
        let j = job_links("https://jenkins.example.org/job/fci/job/hello/42");
        assert_eq!(j.url, "https://jenkins.example.org/job/fci/job/hello/42/");
        assert_eq!(
            j.log,
            "https://jenkins.example.org/job/fci/job/hello/42/console"
        );
        assert_eq!(
            j.log_raw.as_deref(),
            Some("https://jenkins.example.org/job/fci/job/hello/42/consoleText")
        );
        assert_eq!(
            j.rebuild.as_deref(),
            Some("https://jenkins.example.org/job/fci/job/hello/42/rebuild")
        );
        let b = job_links("https://buildbot.example.org/#/builders/3/builds/7");
        assert_eq!(b.log, b.url);
        assert!(b.log_raw.is_none() && b.rebuild.is_none());
        assert!(check_job_url("https://buildbot.example.org/#/builders/3/builds/7").is_ok());
        assert!(check_job_url("https://u:p@jenkins.example.org/job/x/1/").is_err());
        assert!(check_job_url("https://jenkins.example.org/job/x/1/?token=t").is_err());
    }

    #[test]
    fn a_log_is_linked_below_the_artifacts_url() {
        assert_eq!(
            link("https://ci.example.org/ws/", "objects/ab/x y/test.log"),
            "https://ci.example.org/ws/objects/ab/x%20y/test.log"
        );
    }
}
