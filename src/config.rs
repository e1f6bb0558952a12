//! The pipeline's `fci.yaml`: the monitored packages (the OS's package set), where their
//! dist-git repositories live and the branches followed. Unknown keys are refused, so a typo
//! (`pakages:`) is an error rather than a pipeline that silently watches nothing.

use crate::error::FciError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Raw {
    dist_git: String,
    branches: Vec<String>,
    packages: Vec<String>,
    /// The dist-git namespace push messages carry (`rpms` on Fedora).
    #[serde(default = "default_namespace")]
    namespace: String,
    /// What package code may use (`crate::limits`); flags of the stages override each.
    #[serde(default)]
    limits: RawLimits,
    /// The pipeline's identity in its messages and results.
    #[serde(default)]
    ci: CiConfig,
    /// What satisfies a Fedora BuildRequires on this host (`libattr-devel: libattr1-dev`).
    #[serde(default)]
    buildrequires: std::collections::BTreeMap<String, String>,
    /// The pipeline state directory (`--state`), relative to this file's directory or
    /// absolute: a shared volume's path every machine of the pipeline sees alike.
    #[serde(default)]
    state: Option<PathBuf>,
    /// What `fci gc` keeps of old runs (crate::gc::policy).
    #[serde(default)]
    gc: crate::gc::policy::Raw,
}

/// What satisfies a Fedora BuildRequires name on a host whose rpm database is empty, as
/// fci.yaml's `buildrequires:` maps it: a Debian package (installed, as dpkg-query says) or
/// a file (a command by its path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostDep {
    Debian(String),
    Path(PathBuf),
}

impl std::fmt::Display for HostDep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostDep::Debian(p) => write!(f, "{p}"),
            HostDep::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// fci.yaml's `buildrequires:`, by Fedora name.
pub type HostDeps = std::collections::BTreeMap<String, HostDep>;

/// Checks `buildrequires:`: each key a BuildRequires name as a spec writes it (`gcc`,
/// `libattr-devel`, `pkgconfig(zlib)`, `perl(File::Temp)`, `/usr/bin/foo`), each value a Debian
/// package name or an absolute path.
fn parse_host_deps(raw: &std::collections::BTreeMap<String, String>) -> Result<HostDeps, String> {
    let mut out = HostDeps::new();
    for (name, to) in raw {
        let name_ok = !name.is_empty()
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-()/:".contains(c));
        if !name_ok {
            return Err(format!(
                "buildrequires: `{name}` is not a BuildRequires name (one word, as the spec names it)"
            ));
        }
        let dep = if to.starts_with('/') {
            let p = Path::new(to);
            if p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(format!("buildrequires: {name}: `{to}` has `..` in it"));
            }
            HostDep::Path(p.to_path_buf())
        } else if is_debian_package(to) {
            HostDep::Debian(to.clone())
        } else {
            return Err(format!(
                "buildrequires: {name}: `{to}` is neither a Debian package name (lowercase letters, digits, `+`, `-`, `.`; `:arch` allowed) nor an absolute path"
            ));
        };
        out.insert(name.clone(), dep);
    }
    Ok(out)
}

/// A Debian package name (Debian policy 5.6.1), with an optional `:arch` qualifier.
fn is_debian_package(s: &str) -> bool {
    let (name, arch) = s.split_once(':').map_or((s, None), |(n, a)| (n, Some(a)));
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() >= 2
        && name.chars().next().is_some_and(lower)
        && name.chars().all(|c| lower(c) || "+-.".contains(c))
        && arch.is_none_or(|a| !a.is_empty() && a.chars().all(|c| lower(c) || c == '-'))
}

/// fci.yaml's `ci:`: the pipeline's identity as Fedora CI messages carry it (`contact`), the
/// namespace of its test names and the URL its workspace's files are published under. Each
/// is optional; what is not given is not sent (name and team are fci's own).
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CiConfig {
    pub name: Option<String>,
    pub team: Option<String>,
    pub email: Option<String>,
    pub irc: Option<String>,
    pub docs: Option<String>,
    pub namespace: Option<String>,
    pub artifacts_url: Option<String>,
}

impl CiConfig {
    /// Each given value is usable: not blank, a docs or artifacts URL is http(s) without
    /// credentials, an email an address, a namespace a test name prefix.
    fn check(&self) -> Result<(), String> {
        let fields = [
            ("name", &self.name),
            ("team", &self.team),
            ("email", &self.email),
            ("irc", &self.irc),
            ("docs", &self.docs),
            ("namespace", &self.namespace),
            ("artifacts_url", &self.artifacts_url),
        ];
        for (key, v) in fields {
            if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("ci.{key} is empty: give a value or leave it out"));
            }
        }
        if let Some(e) = &self.email {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(format!("ci.email `{e}` is not an address"));
            }
        }
        for (key, v) in [("docs", &self.docs), ("artifacts_url", &self.artifacts_url)] {
            if let Some(u) = v {
                check_web_url(u).map_err(|e| format!("ci.{key}: {e}"))?;
            }
        }
        if let Some(ns) = &self.namespace {
            check_test_namespace(ns).map_err(|e| format!("ci.namespace: {e}"))?;
        }
        Ok(())
    }
}

/// An http(s) URL fci publishes (in messages, results): no credentials, no query.
pub fn check_web_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(char::is_whitespace) {
        return Err(format!("`{u}` is not an http(s) URL"));
    }
    if crate::redact::userinfo(u).is_some() || u.contains(['?', '#']) {
        return Err(format!(
            "`{}` carries credentials, a query or a fragment: it would be published in every message",
            crate::redact::strip_credentials(u)
        ));
    }
    Ok(())
}

/// A namespace of test case names (`fedora-ci.koji-build`): letters, digits, `.`, `-`, `_`.
pub fn check_test_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 200
        && !ns.starts_with('.')
        && !ns.ends_with('.')
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then_some(())
        .ok_or_else(|| format!("`{ns}` is not a namespace (letters, digits, `.`, `-`, `_`)"))
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    pids: Option<u64>,
    memory: Option<serde_yaml_ng::Value>,
    scratch: Option<serde_yaml_ng::Value>,
}

impl RawLimits {
    fn parse(&self) -> Result<crate::limits::Partial, String> {
        use crate::limits::{check_pids, parse_memory, parse_scratch};
        let size = |key: &str,
                    v: &Option<serde_yaml_ng::Value>,
                    parse: fn(&str) -> Result<u64, String>| {
            v.as_ref()
                .map(|v| match v {
                    serde_yaml_ng::Value::Number(n) => parse(&n.to_string()),
                    serde_yaml_ng::Value::String(s) => parse(s),
                    _ => Err("not a size".into()),
                })
                .transpose()
                .map_err(|e| format!("limits.{key}: {e}"))
        };
        Ok(crate::limits::Partial {
            pids: self
                .pids
                .map(check_pids)
                .transpose()
                .map_err(|e| format!("limits.pids: {e}"))?,
            memory: size("memory", &self.memory, parse_memory)?,
            scratch: size("scratch", &self.scratch, parse_scratch)?,
        })
    }
}

fn default_namespace() -> String {
    "rpms".into()
}

/// Where the dist-git repositories live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistGit {
    /// A directory of `<package>/` or `<package>.git` repositories.
    Dir(PathBuf),
    /// A base URL: `<url>/<package>.git`, or a template with `{package}`.
    Url(String),
}

impl DistGit {
    /// The URL of a package's repository (remote dist-git only).
    pub fn url_of(&self, package: &str) -> Option<String> {
        match self {
            DistGit::Dir(_) => None,
            DistGit::Url(u) if u.contains("{package}") => Some(u.replace("{package}", package)),
            DistGit::Url(u) => Some(format!("{}/{package}.git", u.trim_end_matches('/'))),
        }
    }

    /// A local package's repository: `<dir>/<package>.git` (bare) or `<dir>/<package>`.
    pub fn dir_of(&self, package: &str) -> Option<PathBuf> {
        match self {
            DistGit::Dir(d) => {
                let bare = d.join(format!("{package}.git"));
                Some(if bare.is_dir() { bare } else { d.join(package) })
            }
            DistGit::Url(_) => None,
        }
    }
}

#[derive(Debug)]
pub struct Config {
    /// The file, absolute, as the manifest's `run.config.path` names it.
    pub path: PathBuf,
    pub sha256: String,
    pub dist_git: DistGit,
    pub branches: Vec<String>,
    pub packages: Vec<String>,
    pub namespace: String,
    /// fci.yaml's `limits:`, the bounds of package code where a stage's flags set none.
    pub limits: crate::limits::Partial,
    /// fci.yaml's `ci:`, the pipeline's identity.
    pub ci: CiConfig,
    /// fci.yaml's `buildrequires:`, what satisfies a Fedora BuildRequires on this host.
    pub buildrequires: HostDeps,
    /// `state:`, absolute.
    pub state: Option<PathBuf>,
    /// fci.yaml's `gc:`, what `fci gc` keeps.
    pub gc: crate::gc::policy::Policy,
}

impl Config {
    /// The fci.yaml the user names (`--config`): errors say what is wrong in it, quoting it.
    pub fn load(path: &Path) -> Result<Config, FciError> {
        let bad = |msg: String| FciError::input(path, msg);
        let bytes = read_bounded(path, true).map_err(|e| {
            bad(format!(
                "cannot read the pipeline config: {e} (give --config FILE; the README documents fci.yaml)"
            ))
        })?;
        let raw: Raw = serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| bad(format!("not a valid fci.yaml: {e}")))?;
        Config::check(path, raw, &bytes)
    }

    /// The fci.yaml a manifest names (`run.config`), used only when it is still the file
    /// `fci watch` read: an absolute path to a regular file (not a symlink, device, FIFO or
    /// /proc file), read up to `caps::FCI_YAML`, whose sha256 is `sha256`, compared before
    /// anything is parsed. A manifest may name any file: no error quotes what is in it (a
    /// parse error gives only its line and column).
    pub fn load_pinned(path: &Path, sha256: &str) -> Result<Config, FciError> {
        let bad = |msg: String| FciError::input(path, msg);
        if !path.is_absolute() {
            return Err(bad("not an absolute path".into()));
        }
        let bytes = read_bounded(path, false).map_err(|e| bad(format!("cannot read: {e}")))?;
        if crate::digest::sha256_bytes(&bytes) != sha256 {
            return Err(bad(
                "changed since fci watch read it (another sha256)".into()
            ));
        }
        let raw: Raw = serde_yaml_ng::from_slice(&bytes).map_err(|e| {
            bad(match e.location() {
                Some(l) => format!(
                    "not a valid fci.yaml (line {}, column {})",
                    l.line(),
                    l.column()
                ),
                None => "not a valid fci.yaml".into(),
            })
        })?;
        Config::check(path, raw, &bytes).map_err(|_| bad("not a usable fci.yaml".into()))
    }

    fn check(path: &Path, raw: Raw, bytes: &[u8]) -> Result<Config, FciError> {
        let bad = |msg: String| FciError::input(path, msg);
        let path = std::path::absolute(path).map_err(|e| bad(format!("cannot resolve: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let dist_git = parse_dist_git(&raw.dist_git, dir).map_err(&bad)?;
        if raw.packages.is_empty() {
            return Err(bad("`packages` is empty: name the packages to watch".into()));
        }
        if raw.branches.is_empty() {
            return Err(bad(
                "`branches` is empty: name the dist-git branches to follow".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &raw.packages {
            if !is_package_name(p) {
                return Err(bad(format!("`{p}` is not a package name")));
            }
            if !seen.insert(p) {
                return Err(bad(format!("package `{p}` is listed twice")));
            }
        }
        let mut seen_b = std::collections::BTreeSet::new();
        for b in &raw.branches {
            crate::ostree::check_branch(b).map_err(|e| bad(format!("branches: {e}")))?;
            if !seen_b.insert(b) {
                return Err(bad(format!("branch `{b}` is listed twice")));
            }
        }
        if !is_package_name(&raw.namespace) {
            return Err(bad(format!(
                "`{}` is not a dist-git namespace",
                raw.namespace
            )));
        }
        let limits = raw.limits.parse().map_err(&bad)?;
        raw.ci.check().map_err(&bad)?;
        let buildrequires = parse_host_deps(&raw.buildrequires).map_err(&bad)?;
        let state = match raw.state {
            Some(s) if s.as_os_str().is_empty() => {
                return Err(bad(
                    "`state` is empty: name the pipeline state directory".into()
                ))
            }
            Some(s) if s.components().any(|c| c == std::path::Component::ParentDir) => {
                return Err(bad(format!(
                    "state: {}: give a path without `..`",
                    s.display()
                )))
            }
            Some(s) => Some(dir.join(s)),
            None => None,
        };
        let gc = raw.gc.parse().map_err(&bad)?;
        Ok(Config {
            state,
            gc,
            buildrequires,
            limits,
            ci: raw.ci,
            sha256: crate::digest::sha256_bytes(bytes),
            path,
            dist_git,
            branches: raw.branches,
            packages: raw.packages,
            namespace: raw.namespace,
        })
    }

    pub fn monitors(&self, package: &str) -> bool {
        self.packages.iter().any(|p| p == package)
    }

    pub fn follows(&self, branch: &str) -> bool {
        self.branches.iter().any(|b| b == branch)
    }
}

/// Gives this process the pipeline state directory `state:` of the fci.yaml a run's
/// manifest names (when it is still the file `fci watch` read), unless one was given before:
/// `--state` and `FCI_STATE` are, by `main`, so they win over fci.yaml. A worker's stages
/// thus find the shared state the pipeline's fci.yaml names without being told; a workspace
/// that recorded another refuses it (`Workspace::open`). A fci.yaml that cannot be used here
/// gives none (the stage's limits say why in its log).
pub fn use_state_of(manifest: &crate::manifest::Manifest) {
    if let Some(c) = &manifest.run.config {
        if let Ok(Config {
            state: Some(state), ..
        }) = Config::load_pinned(Path::new(&c.path), &c.sha256)
        {
            crate::workspace::set_state_dir(state);
        }
    }
}

/// The limits of package code for a run: the stage's flags, then the `limits:` of the
/// fci.yaml the run's manifest names (when it is still the file `fci watch` read: same
/// sha256), then fci's defaults. A fci.yaml that cannot be used is said in the stage log.
pub fn run_limits(
    flags: crate::limits::Partial,
    manifest: &crate::manifest::Manifest,
    log: &mut crate::exec::Log,
) -> crate::limits::Limits {
    let mut from_config = crate::limits::Partial::default();
    if let Some(c) = &manifest.run.config {
        match Config::load_pinned(Path::new(&c.path), &c.sha256) {
            Ok(cfg) => from_config = cfg.limits,
            Err(e) => log.line(&format!("# limits: {e}; its limits: are not used")),
        }
    }
    flags.over(from_config)
}

/// fci.yaml's `buildrequires:` for a run: of the fci.yaml the run's manifest names (when it
/// is still the file `fci watch` read, which refused a bad one), else none.
pub fn run_host_deps(manifest: &crate::manifest::Manifest, log: &mut crate::exec::Log) -> HostDeps {
    let Some(c) = &manifest.run.config else {
        return HostDeps::new();
    };
    match Config::load_pinned(Path::new(&c.path), &c.sha256) {
        Ok(cfg) => cfg.buildrequires,
        Err(e) => {
            log.line(&format!(
                "# buildrequires: {e}; its buildrequires: are not used"
            ));
            HostDeps::new()
        }
    }
}

/// The bytes of an fci.yaml: a regular file (never a device, FIFO or /proc file, whose size
/// says nothing), opened without blocking (a FIFO never hangs) and read through
/// `caps::Capped` up to `caps::FCI_YAML`. `follow`: whether a symlink as the last component
/// is followed (the file the user names) or refused (one a manifest names).
fn read_bounded(path: &Path, follow: bool) -> Result<Vec<u8>, String> {
    use crate::caps::{read_file_with, Open, FCI_YAML};
    let how = if follow { Open::FOLLOW } else { Open::NO_LINK };
    read_file_with(path, FCI_YAML, how).map_err(|e| e.to_string())
}

/// A dist-git package name: what Fedora's dist-git accepts, and safe as one path component.
pub fn is_package_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['.', '-'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

fn parse_dist_git(s: &str, config_dir: &Path) -> Result<DistGit, String> {
    if s.trim().is_empty() {
        return Err("`dist_git` is empty".into());
    }
    if crate::distgit::is_url(s) {
        if s.contains(['?', '#']) {
            return Err(
                "dist_git: a URL with a query or fragment is refused (it may carry a token that would reach every manifest)"
                    .into(),
            );
        }
        // An ssh user name (`ssh://git@host/`) is no secret; a password or an http token is.
        let userinfo = crate::redact::userinfo(s);
        if userinfo.is_some_and(|u| u.contains(':') || !s.starts_with("ssh://")) {
            return Err(format!(
                "dist_git `{}` carries credentials: they would reach every manifest; use a git credential helper",
                crate::redact::strip_credentials(s)
            ));
        }
        if s.contains(['{', '}']) && s.replace("{package}", "").contains(['{', '}']) {
            return Err(format!(
                "dist_git `{s}`: the only placeholder is {{package}}"
            ));
        }
        return Ok(DistGit::Url(s.to_string()));
    }
    let dir = config_dir.join(s);
    if !dir.is_dir() {
        return Err(format!(
            "dist_git `{s}` is neither a directory ({} does not exist) nor a git URL",
            dir.display()
        ));
    }
    Ok(DistGit::Dir(
        dir.canonicalize()
            .map_err(|e| format!("dist_git `{s}`: {e}"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, FciError> {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rpms")).unwrap();
        let p = d.path().join("fci.yaml");
        std::fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    #[test]
    fn reads_the_documented_keys() {
        let c =
            load("dist_git: ./rpms\nbranches: [f41]\npackages: [hello-atomic, tally]\n").unwrap();
        assert!(matches!(c.dist_git, DistGit::Dir(_)));
        assert!(c.monitors("tally") && !c.monitors("bash"));
        assert_eq!(c.namespace, "rpms");
        assert_eq!(c.ci, CiConfig::default());
    }

    #[test]
    fn state_is_relative_to_the_file_and_never_climbs_out() {
        const HEAD: &str = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n";
        let c = load(&format!("{HEAD}state: shared/state\n")).unwrap();
        let s = c.state.unwrap();
        assert!(s.is_absolute() && s.ends_with("shared/state"), "{s:?}");
        assert_eq!(s.parent().unwrap().parent(), c.path.parent());
        let c = load(&format!("{HEAD}state: /srv/fci-state\n")).unwrap();
        assert_eq!(c.state.unwrap(), Path::new("/srv/fci-state"));
        assert!(load(HEAD).unwrap().state.is_none());
        let e = load(&format!("{HEAD}state: ../elsewhere\n")).unwrap_err();
        assert!(e.to_string().contains("without `..`"), "{e}");
        assert!(load(&format!("{HEAD}state: ''\n")).is_err());
    }

    #[test]
    fn buildrequires_map_fedora_names_to_debian_packages_or_files() {
        const HEAD: &str = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n";
        let c = load(&format!(
            "{HEAD}buildrequires: {{libattr-devel: libattr1-dev, foo: /usr/bin/foo, \
             'pkgconfig(zlib)': 'zlib1g-dev:amd64', 'perl(File::Temp)': perl-modules-5.36}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.buildrequires["libattr-devel"],
            HostDep::Debian("libattr1-dev".into())
        );
        assert_eq!(c.buildrequires["foo"], HostDep::Path("/usr/bin/foo".into()));
        assert_eq!(
            c.buildrequires["pkgconfig(zlib)"],
            HostDep::Debian("zlib1g-dev:amd64".into())
        );
        assert!(load(HEAD).unwrap().buildrequires.is_empty());
        // A bad value or key is the caller's mistake (exit 2), naming fci.yaml and the entry.
        for (bad, says) in [
            (
                "{foo: 'Not A Package'}",
                "`Not A Package` is neither a Debian package",
            ),
            ("{foo: 'x;rm'}", "is neither a Debian package"),
            ("{foo: ../bin/foo}", "is neither a Debian package"),
            ("{foo: /usr/../bin/foo}", "has `..`"),
            ("{'-foo': bar}", "not a BuildRequires name"),
            ("{'foo bar': bar}", "not a BuildRequires name"),
            ("{foo: [a, b]}", "buildrequires"),
            ("[foo]", "buildrequires"),
        ] {
            let e = load(&format!("{HEAD}buildrequires: {bad}\n")).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{bad}");
            let msg = e.to_string();
            assert!(
                msg.contains("fci.yaml") && msg.contains(says),
                "{bad}: {msg}"
            );
        }
        let e = load(&format!("{HEAD}buildrequire: {{foo: bar}}\n")).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `buildrequire`"),
            "{e}"
        );
    }

    #[test]
    fn the_pipelines_identity_is_read_and_checked() {
        const HEAD: &str = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n";
        let c = load(&format!(
            "{HEAD}ci: {{name: Example CI, team: example, email: ci@example.org, irc: '#example', \
             docs: 'https://example.org/ci', namespace: example.koji-build, \
             artifacts_url: 'https://ci.example.org/artifacts/'}}\n"
        ))
        .unwrap();
        assert_eq!(c.ci.name.as_deref(), Some("Example CI"));
        assert_eq!(c.ci.namespace.as_deref(), Some("example.koji-build"));
        for (bad, says) in [
            ("ci: {nmae: x}", "unknown field"),
            ("ci: {email: ''}", "ci.email is empty"),
            ("ci: {email: nobody}", "not an address"),
            ("ci: {docs: 'ftp://x'}", "ci.docs"),
            ("ci: {artifacts_url: 'https://u:p@x/'}", "credentials"),
            ("ci: {namespace: 'a b'}", "ci.namespace"),
        ] {
            let e = load(&format!("{HEAD}{bad}\n")).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_are_read_checked_and_used_by_a_run_of_this_config() {
        const HEAD: &str = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n";
        let c = load(HEAD).unwrap();
        assert_eq!(c.limits, crate::limits::Partial::default());
        let c = load(&format!(
            "{HEAD}limits: {{pids: 64, memory: 256M, scratch: 1073741824}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.limits,
            crate::limits::Partial {
                pids: Some(64),
                memory: Some(256 << 20),
                scratch: Some(1 << 30),
            }
        );
        for (bad, says) in [
            ("limits: {pid: 64}", "unknown field"),
            ("limits: {pids: 2}", "limits.pids"),
            ("limits: {memory: lots}", "limits.memory"),
            ("limits: {scratch: [1]}", "limits.scratch"),
        ] {
            let e = load(&format!("{HEAD}{bad}\n")).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A run's stages take them from the fci.yaml its manifest names, under their flags;
        // a changed file is not used.
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rpms")).unwrap();
        let p = d.path().join("fci.yaml");
        std::fs::write(&p, format!("{HEAD}limits: {{pids: 64, memory: 1G}}\n")).unwrap();
        let cfg = Config::load(&p).unwrap();
        let mut m = crate::manifest::Manifest::new("r1".into());
        m.run.config = Some(crate::manifest::ConfigRef {
            path: p.to_string_lossy().into_owned(),
            sha256: cfg.sha256.clone(),
        });
        let mut log = crate::exec::Log::create(&d.path().join("log")).unwrap();
        let flags = crate::limits::Partial {
            memory: Some(512 << 20),
            ..Default::default()
        };
        let l = run_limits(flags, &m, &mut log);
        assert_eq!((l.pids, l.memory), (64, 512 << 20));
        assert_eq!(l.scratch, crate::limits::DEFAULT.scratch);
        std::fs::write(&p, format!("{HEAD}limits: {{pids: 99}}\n")).unwrap();
        assert_eq!(
            run_limits(flags, &m, &mut log).pids,
            crate::limits::DEFAULT.pids
        );
        assert!(std::fs::read_to_string(d.path().join("log"))
            .unwrap()
            .contains("changed since"));
    }

    #[test]
    fn a_config_a_manifest_names_is_read_bounded_and_never_quoted() {
        const HEAD: &str = "dist_git: ./rpms\nbranches: [f41]\npackages: [a]\n";
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rpms")).unwrap();
        let shadow = d.path().join("fake-shadow");
        let secret = "root:$6$FAKEHASHS3CRET:19000:0:99999:7:::\n";
        std::fs::write(&shadow, secret).unwrap();
        let fifo = d.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let good = d.path().join("fci.yaml");
        std::fs::write(&good, format!("{HEAD}limits: {{pids: 64}}\n")).unwrap();
        let link = d.path().join("link.yaml");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let sha = |p: &Path| crate::digest::sha256_bytes(&std::fs::read(p).unwrap());
        let zeros = "0".repeat(64);
        // (path, sha256, what the log says)
        let cases: Vec<(String, String, &str)> = vec![
            // The right sha256 of a file that is no fci.yaml: where, never what.
            (
                shadow.display().to_string(),
                sha(&shadow),
                "not a valid fci.yaml (line 1, column 1)",
            ),
            // Another sha256: nothing is parsed.
            (shadow.display().to_string(), zeros.clone(), "changed since"),
            // A FIFO nobody writes to: at once, never a hang.
            (
                fifo.display().to_string(),
                zeros.clone(),
                "not a regular file",
            ),
            // A device that never ends: never read.
            ("/dev/zero".into(), zeros.clone(), "not a regular file"),
            // A /proc file (size 0): read only up to the cap, compared, never quoted.
            ("/proc/self/environ".into(), zeros.clone(), "changed since"),
            (
                link.display().to_string(),
                sha(&good),
                "a symlink (not followed)",
            ),
            ("fci.yaml".into(), sha(&good), "not an absolute path"),
        ];
        for (path, sha256, says) in cases {
            let mut m = crate::manifest::Manifest::new("r1".into());
            m.run.config = Some(crate::manifest::ConfigRef {
                path: path.clone(),
                sha256,
            });
            let log_path = d.path().join("log");
            let _ = std::fs::remove_file(&log_path);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut log = crate::exec::Log::create(&log_path).unwrap();
                let l = run_limits(crate::limits::Partial::default(), &m, &mut log);
                drop(log);
                let _ = tx.send((l.pids, std::fs::read_to_string(&log_path).unwrap()));
            });
            let (pids, log) = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{path}: still reading after 10s"));
            assert_eq!(pids, crate::limits::DEFAULT.pids, "{path}");
            assert!(
                log.contains(says) && log.contains("not used"),
                "{path}: {log}"
            );
            assert!(
                !log.contains("S3CRET") && !log.contains("root:"),
                "{path}: {log}"
            );
        }
        // The file fci watch read, at its path: used.
        let mut m = crate::manifest::Manifest::new("r1".into());
        m.run.config = Some(crate::manifest::ConfigRef {
            path: good.display().to_string(),
            sha256: sha(&good),
        });
        let mut log = crate::exec::Log::create(&d.path().join("log2")).unwrap();
        let l = run_limits(crate::limits::Partial::default(), &m, &mut log);
        assert_eq!(l.pids, 64);
    }

    #[test]
    fn refuses_typos_and_bad_names() {
        for (text, want) in [
            (
                "dist_git: ./rpms\nbranches: [f41]\npakages: [a]\n",
                "unknown field",
            ),
            (
                "dist_git: ./rpms\nbranches: [f41]\npackages: [../etc]\n",
                "not a package name",
            ),
            (
                "dist_git: ./rpms\nbranches: [a/b]\npackages: [a]\n",
                "branch",
            ),
            (
                "dist_git: ./nope\nbranches: [f41]\npackages: [a]\n",
                "neither a directory",
            ),
            (
                "dist_git: ./rpms\nbranches: [f41]\npackages: [a, a]\n",
                "twice",
            ),
            ("dist_git: ./rpms\nbranches: []\npackages: [a]\n", "empty"),
            (
                "dist_git: https://u:tok@src.example/rpms\nbranches: [f41]\npackages: [a]\n",
                "credentials",
            ),
            // A `/` in the password does not hide it from the check.
            (
                "dist_git: https://u:pa/tok@src.example/rpms\nbranches: [f41]\npackages: [a]\n",
                "credentials",
            ),
            ("[not, a, mapping]\n", "not a valid fci.yaml"),
            ("dist_git: ./rpms\nbranches: [f41, f41]\npackages: [a]\n", "twice"),
            (
                "dist_git: https://src.example/{package}.git?access_token=tok@\nbranches: [f41]\npackages: [a]\n",
                "query",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("tok@"), "{e}");
        }
    }

    #[test]
    fn urls_name_each_package() {
        let u = DistGit::Url("https://src.example/rpms/".into());
        assert_eq!(
            u.url_of("bash").unwrap(),
            "https://src.example/rpms/bash.git"
        );
        let t = DistGit::Url("git://127.0.0.1:9418/{package}".into());
        assert_eq!(t.url_of("bash").unwrap(), "git://127.0.0.1:9418/bash");
    }
}
