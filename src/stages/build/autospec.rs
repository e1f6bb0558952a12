//! `%autorelease` and `%autochangelog` as Koji computes them: rpmautospec's `process-distgit`
//! on the dist-git checkout rewrites the spec with the release number and the changelog its
//! git history gives (Koji's builder does this after its SCM checkout, before building the
//! SRPM). rpm's own fallback (`1`, a placeholder changelog) would give another NVR than Koji.
//!
//! rpmautospec parses the spec with rpm (expanding `%(...)`, package code), so it runs in the
//! build's sandbox, on a private clone of the checkout: the checkout's `.git` (its config may
//! hold a remote URL with credentials) is never shown to spec code.

use super::prepare::Prepared;
use crate::error::FciError;
use crate::exec::Cmd;
use crate::stage::Ctx;
use crate::tool::Tool;
use anyhow::Result;
use std::path::Path;

pub const RPMAUTOSPEC: Tool = Tool::elsewhere(
    "rpmautospec",
    "install it from PyPI with its git and rpm bindings (./setup.sh --deps-only puts it in /opt/fci/rpmautospec: pip install 'rpmautospec[click,pygit2,rpm]', rpm's bindings from Debian's python3-rpm); fci never builds such a spec with rpm's fallback release, which is not Koji's",
);

/// What processing found, for the build record.
pub struct Processed {
    /// The release number rpmautospec computed (before `%autorelease -b`'s base and flags).
    pub release_number: Option<u64>,
    /// How many lines process-distgit added above the spec's first line.
    pub line_offset: usize,
}

/// Whether the spec uses rpmautospec's features and is not processed yet: rpmautospec-core's
/// own test (`specfile_uses_rpmautospec`), line by line as it reads the file.
pub fn uses_autospec(text: &str) -> bool {
    let mut autorelease = false;
    let mut autochangelog = false;
    let mut in_changelog = false;
    for line in text.lines() {
        if !in_changelog {
            autorelease |= has_autorelease(line);
            in_changelog = is_changelog_header(line);
        }
        autochangelog |= is_autochangelog(line);
        if is_autorelease_definition(line) {
            // Already processed (a spec from an SRPM): its %define holds the release.
            return false;
        }
    }
    autorelease || autochangelog
}

/// `%autorelease` (then whitespace or the line's end) or `%{autorelease ...}`, `%{?autorelease}`.
fn has_autorelease(line: &str) -> bool {
    line.match_indices('%').any(|(i, _)| {
        let rest = &line[i + 1..];
        if let Some(after) = rest.strip_prefix("autorelease") {
            return after.is_empty() || after.starts_with(char::is_whitespace);
        }
        let Some(inner) = rest.strip_prefix('{') else {
            return false;
        };
        let inner = inner.strip_prefix('?').unwrap_or(inner);
        let Some(after) = inner.strip_prefix("autorelease") else {
            return false;
        };
        match after.chars().next() {
            Some('}') => true,
            Some(c) if c.is_whitespace() => after.contains('}'),
            _ => false,
        }
    })
}

/// `%changelog`, alone or followed by whitespace, in any case.
fn is_changelog_header(line: &str) -> bool {
    let l = line.trim_end_matches('\n');
    l.len() >= 10
        && l.is_char_boundary(10)
        && l[..10].eq_ignore_ascii_case("%changelog")
        && l[10..].chars().next().is_none_or(char::is_whitespace)
}

/// A line of only `%autochangelog` (or `%{autochangelog}`, `%{?autochangelog}`).
fn is_autochangelog(line: &str) -> bool {
    let l = line.trim();
    matches!(
        l,
        "%autochangelog" | "%{autochangelog}" | "%{?autochangelog}"
    )
}

/// `%define autorelease(`: what process-distgit writes at the spec's top.
fn is_autorelease_definition(line: &str) -> bool {
    line.trim_start()
        .strip_prefix("%define")
        .filter(|r| r.starts_with(char::is_whitespace))
        .and_then(|r| r.trim_start().strip_prefix("autorelease"))
        .is_some_and(|r| r.trim_start().starts_with('('))
}

/// The message for a spec that needs rpmautospec in a checkout that is not a git repository:
/// Koji builds only from git, so there is no release to compute (the caller's input, exit 2).
fn not_git(p: &Prepared) -> FciError {
    FciError::input(
        &p.co.dir,
        format!(
            "{} uses %autorelease/%autochangelog, which rpmautospec computes from the dist-git history as Koji does, and this directory is not a git repository (Koji builds only from git): build a git checkout of the package",
            p.spec_in_repo().display()
        ),
    )
}

/// Rewrites `spec_copy` (fci's copy of the spec, which every later step reads) as Koji's
/// builder does, when the spec uses rpmautospec's features; `None` when it does not.
/// `timeout` is what is left of the build's `--timeout` (`whole`).
pub fn process(
    p: &Prepared,
    spec_copy: &Path,
    (timeout, whole): (Option<std::time::Duration>, Option<std::time::Duration>),
    cx: &mut Ctx,
) -> Result<Option<Processed>> {
    if !p.autospec {
        return Ok(None);
    }
    let Some(commit) = p.co.commit.clone() else {
        return Err(not_git(p).into());
    };
    let tool = cx.require(RPMAUTOSPEC)?;
    // Package code runs it, in a sandbox that hides homes: a tool installed in one would not run.
    crate::sandbox::check_outside_homes("rpmautospec", &tool)?;
    let git = cx.require(crate::distgit::GIT)?;
    let dir = cx.run.bounded_dir("autospec", &p.limits, 0)?;
    let clone = dir.join("repo");
    private_clone(&git, p, &commit, &clone, cx)?;
    let spec_rel = p.spec_in_repo();
    let out_spec = dir.join("processed.spec");
    let sandbox = crate::sandbox::Sandbox {
        chdir: Some(clone.clone()),
        ..p.tool_sandbox(cx, &dir)
    };
    std::fs::create_dir_all(dir.join("home"))?;
    // rpmautospec parses the spec with rpm at each commit: with the macros the build parses
    // it with (fci's Fedora environment where the host has none, the dist and its
    // definitions), so that conditionals and versions read as they will in the build.
    std::fs::write(dir.join("home/.rpmmacros"), rpmmacros(p))?;
    let cmd = Cmd::new(&tool)
        .args(["--no-pager", "process-distgit"])
        .arg(clone.join(&spec_rel))
        .arg(&out_spec);
    let out = cx
        .log()
        .capture(&sandbox.wrap(&cmd)?.timeout(timeout).timeout_whole(whole))?;
    if let Some(why) = out.limit {
        return Err(crate::limits::Reached(why).into());
    }
    if let Some(f) = out.failure() {
        let said = format!("{}\n{}", out.stdout, out.stderr);
        // Python failing to start or import is the host's rpmautospec, not the package.
        if ["Traceback", "ImportError", "ModuleNotFoundError"]
            .iter()
            .any(|m| said.contains(m))
            && !said.contains("SpecParseFailure")
        {
            return Err(f
                .infra("rpmautospec is broken on this host (an environment failure, not the package's)")
                .into());
        }
        let why = said
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("no reason given")
            .to_string();
        // rpmautospec does not say why rpm could not parse the spec: rpmspec, in the same
        // sandbox and with the same macros, says where.
        let (line, reason) = if why.contains("parse spec file") {
            rpm_reason(&sandbox, &clone.join(&spec_rel), timeout, cx)?
        } else {
            (None, None)
        };
        let reason = reason.map_or(String::new(), |r| format!(": {r}"));
        return Err(FciError::package(
            &spec_rel,
            line,
            format!("rpmautospec process-distgit cannot process the spec ({why}){reason}"),
        )
        .into());
    }
    let text = crate::caps::read_file_with(&out_spec, 64 << 20, crate::caps::Open::NO_LINK)
        .map_err(|e| {
            FciError::package(
                &spec_rel,
                None,
                format!("rpmautospec's processed spec cannot be read: {e}"),
            )
        })?;
    let text = String::from_utf8_lossy(&text);
    let original = std::fs::read(spec_copy)?;
    let line_offset = lines_above(&String::from_utf8_lossy(&original), &text);
    std::fs::remove_file(spec_copy)?;
    crate::files::copy_plain(&out_spec, spec_copy, None)?;
    Ok(Some(Processed {
        release_number: release_number(&text),
        line_offset,
    }))
}

/// What rpm says is wrong with the spec at `spec` (its line, and its first error), parsed
/// as rpmautospec parses it.
fn rpm_reason(
    sandbox: &crate::sandbox::Sandbox,
    spec: &Path,
    timeout: Option<std::time::Duration>,
    cx: &mut Ctx,
) -> Result<(Option<usize>, Option<String>)> {
    let cmd = Cmd::new("rpmspec")
        .c_locale()
        .args(["-q", "--srpm", "--qf", ""])
        .arg(spec);
    let out = cx.log().capture(&sandbox.wrap(&cmd)?.timeout(timeout))?;
    let Some(err) = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim)
    else {
        return Ok((None, None));
    };
    let err = err.replace(&format!("{}:", spec.display()), "");
    let (line, rest) = err
        .strip_prefix("line ")
        .and_then(|r| r.split_once(": "))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest.to_string())))
        .map_or((None, err.clone()), |(n, r)| (Some(n), r));
    Ok((line, Some(rest)))
}

/// The `~/.rpmmacros` rpmautospec's rpm reads: fci's Fedora environment where the host has
/// none (never its %autorelease fallback: rpmautospec defines its own), then the build's
/// definitions (`%dist`, `%fedora`, `-D`), each on one line.
fn rpmmacros(p: &Prepared) -> String {
    let mut text = String::new();
    if !super::fedora_env::Host::probe(Path::new("/")).fedora_env {
        let env = super::fedora_env::FILES
            .iter()
            .find(|(name, _)| *name == super::fedora_env::ENV_FILE);
        if let Some((_, body)) = env {
            text.push_str(body);
            text.push('\n');
        }
    }
    for (name, value) in &p.defines {
        text.push_str(&format!("%{name} {}\n", value.replace('\n', "\\\n")));
    }
    text
}

/// A clone of the checkout at `commit`, made by fci (package code sees only it): with the
/// work tree's tracked files as they are, so that a dirty checkout is processed as
/// rpmautospec processes one ("Uncommitted changes", the next release).
fn private_clone(git: &Path, p: &Prepared, commit: &str, clone: &Path, cx: &mut Ctx) -> Result<()> {
    let g = || {
        Cmd::new(git)
            .args([
                "-c",
                "core.fsmonitor=false",
                "-c",
                "protocol.file.allow=always",
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
    };
    let log = cx.log();
    log.run_ok(
        &g().args(["clone", "--quiet", "--no-checkout", "--"])
            .arg(&p.co.dir)
            .arg(clone),
        "cannot clone the dist-git checkout for rpmautospec",
    )?;
    log.run_ok(
        &g().arg("-C")
            .arg(clone)
            .args(["checkout", "--quiet", "--detach"])
            .arg(commit),
        "cannot check out the build's commit for rpmautospec",
    )?;
    if !p.co.dirty {
        return Ok(());
    }
    // "Uncommitted changes" are signed by who would commit them, as rpmautospec says it in
    // the checkout itself (git's user.name and user.email there).
    for key in ["user.name", "user.email"] {
        let got = log.capture(&g().arg("-C").arg(&p.co.dir).args(["config", "--get", key]))?;
        let value = got.stdout.trim();
        if got.success() && !value.is_empty() {
            log.run_ok(
                &g().arg("-C").arg(clone).args(["config", key]).arg(value),
                "cannot set the clone's git identity for rpmautospec",
            )?;
        }
    }
    for f in &p.files {
        let real = p.co.dir.join(f).canonicalize()?;
        if real.is_file() {
            let dest = clone.join(f);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if dest.symlink_metadata().is_ok() {
                std::fs::remove_file(&dest)?;
            }
            crate::files::copy_plain(&real, &dest, None)?;
        }
    }
    // Tracked files deleted from the work tree are changes too.
    let tracked = log.capture_ok(
        &g().arg("-C").arg(clone).args(["ls-files", "-z"]),
        "cannot list the clone's files for rpmautospec",
    )?;
    for f in tracked.stdout.split('\0').filter(|f| !f.is_empty()) {
        if p.co.dir.join(f).symlink_metadata().is_err() {
            let _ = std::fs::remove_file(clone.join(f));
        }
    }
    Ok(())
}

/// How many lines `processed` has above where `original`'s first lines begin (what
/// process-distgit puts at the top: its `%define autorelease` block).
fn lines_above(original: &str, processed: &str) -> usize {
    let head: Vec<&str> = original.lines().take(20).collect();
    let lines: Vec<&str> = processed.lines().collect();
    (0..lines.len().min(100))
        .find(|&at| lines[at..].starts_with(&head))
        .unwrap_or(0)
}

/// `release_number = N;` in the `%define autorelease` process-distgit wrote.
fn release_number(processed: &str) -> Option<u64> {
    processed
        .lines()
        .take_while(|l| !l.starts_with("## END: Set by rpmautospec"))
        .find_map(|l| l.trim().strip_prefix("release_number = "))
        .and_then(|n| n.trim_end_matches(';').trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rpmautospec-core's own cases: what counts as using it, and what is already processed.
    #[test]
    fn specs_that_use_rpmautospec_are_told_as_rpmautospec_tells_them() {
        assert!(uses_autospec("Release: %autorelease\n"));
        assert!(uses_autospec("Release: %autorelease -b 5\n"));
        assert!(uses_autospec("Release: %{autorelease}\n"));
        assert!(uses_autospec("Release: %{?autorelease}\n"));
        assert!(uses_autospec("Release: %{autorelease -p}\n"));
        assert!(uses_autospec("Release: 1\n%changelog\n%autochangelog\n"));
        assert!(!uses_autospec("Release: 1%{?dist}\n%changelog\n* Mon x\n"));
        assert!(!uses_autospec("Release: %autoreleasefoo\n"));
        // After %changelog, %autorelease is text of an entry.
        assert!(!uses_autospec(
            "Release: 1\n%changelog\n- switch to %autorelease\n"
        ));
        let processed = "%define autorelease(e:s:pb:n) %{?-p:0.}%{lua:\n    release_number = 2;\n}\n## END: Set by rpmautospec\nRelease: %autorelease\n";
        assert!(!uses_autospec(processed));
        assert_eq!(release_number(processed), Some(2));
        assert!(is_changelog_header("%ChangeLog") && !is_changelog_header("%changelogs"));
        assert_eq!(lines_above("Release: %autorelease\n", processed), 4);
        assert_eq!(lines_above("Name: a\n", "Name: a\n"), 0);
    }
}
