//! Whether the host satisfies a BuildRequires the rpm database does not know of (a Debian
//! host's rpmdb is empty: gcc and make are installed, but as dpkg packages). Each is resolved
//! by what it names: a command on PATH, a file, `pkgconfig(x)` through pkg-config, `perl(X)`
//! and `python3dist(x)` through their interpreters, a `-devel` package through the shared
//! library it links against; a name fci.yaml's `buildrequires:` maps is resolved by its
//! mapping only (a Debian package dpkg-query says is installed, or a file). Only what none of
//! these finds is warned about as unmet.
//!
//! The names come from the spec (package code): each is checked against a strict pattern
//! before it is an argument, and never reaches an interpreter as code (`perl -M` would run
//! `Foo;system(...)`).

use crate::config::{HostDep, HostDeps};
use crate::exec::{Cmd, Log};
use std::path::Path;
use std::time::Duration;

/// How long one host query may take.
const QUERY: Duration = Duration::from_secs(10);

/// Whether the host has what the BuildRequires name `dep` (its first word) asks for: by
/// fci.yaml's mapping when it names `dep`, else by what `dep` names.
pub fn host_has(dep: &str, mapped: &HostDeps, log: &mut Log) -> bool {
    match mapped.get(dep) {
        Some(HostDep::Path(p)) => p.exists(),
        Some(HostDep::Debian(pkg)) => debian_installed(pkg, log),
        None => named(dep, log),
    }
}

/// Whether dpkg has `pkg` installed (a name fci.yaml's check let through: never an option).
fn debian_installed(pkg: &str, log: &mut Log) -> bool {
    log.capture(
        &Cmd::new("dpkg-query")
            .args(["-W", "-f", "${Status}", "--", pkg])
            .timeout(Some(QUERY)),
    )
    .is_ok_and(|out| out.success() && out.stdout.trim_end().ends_with("ok installed"))
}

fn named(dep: &str, log: &mut Log) -> bool {
    if let Some(path) = dep.strip_prefix('/') {
        return !path.is_empty() && Path::new(dep).exists();
    }
    if let Some(inner) = wrapped(dep, "pkgconfig") {
        return plain(inner, "._+-")
            && runs(Cmd::new("pkg-config").args(["--exists", "--", inner]), log);
    }
    if let Some(module) = wrapped(dep, "perl") {
        return perl_module(module)
            && runs(
                // Started in / (perl has not searched `.` since 5.26; PERL5LIB is the
                // caller's own): no file of the package's checkout is loaded.
                Cmd::new("perl")
                    .args(["-e", "eval qq{require $ARGV[0]; 1} or exit 1", module])
                    .dir("/"),
                log,
            );
    }
    if let Some(dist) = wrapped(dep, "python3dist") {
        return plain(dist, "._-")
            && runs(
                // Isolated (-I: neither the working directory, which may be the package's
                // checkout with a csv.py of its own, nor PYTHON* variables nor the user's site
                // directory are on its path) and started in /: no file of the package is ever
                // imported outside the sandbox.
                Cmd::new("python3")
                    .args([
                        "-I",
                        "-c",
                        "import sys, importlib.metadata as m; m.version(sys.argv[1])",
                        dist,
                    ])
                    .dir("/"),
                log,
            );
    }
    if !plain(dep, "._+-") {
        return false;
    }
    if let Some(lib) = dep.strip_suffix("-devel") {
        return devel_library(lib);
    }
    crate::tool::which(dep).is_some()
}

/// `name(inner)` → `inner`.
fn wrapped<'a>(dep: &'a str, name: &str) -> Option<&'a str> {
    dep.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
}

/// Letters, digits and `extra` only, not empty, not an option.
fn plain(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// `Foo::Bar_2`: a Perl module name and nothing else.
fn perl_module(s: &str) -> bool {
    !s.is_empty()
        && s.split("::").all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A `-devel` package's library for linking (`libattr-devel` → `libattr.so`, `zlib-devel` →
/// `libz.so` or `libzlib.so`) in the host's library directories, Debian's multiarch one too.
fn devel_library(stem: &str) -> bool {
    let bare = stem.strip_prefix("lib").unwrap_or(stem);
    let mut names = vec![format!("lib{bare}.so")];
    if let Some(short) = bare.strip_suffix("lib") {
        names.push(format!("lib{short}.so"));
    }
    let arch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    ["/usr/lib64", "/usr/lib", "/lib64", "/lib", arch.as_str()]
        .iter()
        .any(|d| names.iter().any(|n| Path::new(d).join(n).exists()))
}

fn runs(cmd: Cmd, log: &mut Log) -> bool {
    log.capture(&cmd.timeout(Some(QUERY)))
        .is_ok_and(|out| out.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_be_code_are_refused_before_anything_runs() {
        assert!(perl_module("File::Temp") && perl_module("Test_More"));
        for bad in ["Foo;system('x')", "Foo Bar", "", "::Foo", "1Foo"] {
            assert!(!perl_module(bad), "{bad}");
        }
        assert!(plain("zlib", "._+-") && !plain("-x", "._+-") && !plain("a b", "._+-"));
        assert_eq!(wrapped("pkgconfig(zlib)", "pkgconfig"), Some("zlib"));
        assert_eq!(wrapped("perl(File::Temp)", "perl"), Some("File::Temp"));
        assert_eq!(wrapped("gcc", "perl"), None);
    }

    /// What this host has is found by what it names; what it lacks is not.
    #[test]
    fn the_host_is_asked_by_what_each_name_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("q.log")).unwrap();
        let host_has = |dep: &str, log: &mut Log| host_has(dep, &HostDeps::new(), log);
        assert!(host_has("sh", &mut log), "a command on PATH");
        assert!(host_has("/bin/sh", &mut log), "a file");
        assert!(host_has("perl(strict)", &mut log), "a Perl module");
        assert!(!host_has("perl(No::Such::Module::Here)", &mut log));
        assert!(!host_has("no-such-command-here", &mut log));
        assert!(!host_has("/no/such/file", &mut log));
        assert!(!host_has("libno-such-thing-devel", &mut log));
        assert!(!host_has("pkgconfig(no-such-pc-here)", &mut log));
        assert!(!host_has("python3dist(no-such-dist-here)", &mut log));
    }

    /// A mapped name is resolved by its mapping alone: a Debian package as dpkg has it, a
    /// file; a name the host would otherwise have is unmet when its mapping is not there.
    #[test]
    fn fci_yaml_mappings_decide_the_names_they_map() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("q.log")).unwrap();
        let map: HostDeps = [
            ("libfoo-devel", HostDep::Debian("dpkg".into())),
            ("bar", HostDep::Path("/bin/sh".into())),
            ("sh", HostDep::Debian("no-such-debian-package-here".into())),
            ("baz", HostDep::Path("/no/such/file".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert!(
            host_has("libfoo-devel", &map, &mut log),
            "dpkg is installed"
        );
        assert!(host_has("bar", &map, &mut log));
        assert!(!host_has("sh", &map, &mut log), "mapped to what is missing");
        assert!(!host_has("baz", &map, &mut log));
        assert!(
            host_has("make", &map, &mut log),
            "not mapped: asked by its name"
        );
    }
}
