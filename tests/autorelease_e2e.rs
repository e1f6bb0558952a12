//! `%autorelease` and `%autochangelog` computed by rpmautospec from the dist-git history, as
//! Koji computes them: the NVR fci builds is the one Koji would.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDS: Needs = &[tool::BUILD, &[tool::GIT, tool::RPMAUTOSPEC]];

const SPEC: &str = "\
Name:           counted
Version:        1.0
Release:        %autorelease
Summary:        Released by its history
License:        MIT
URL:            https://example.org/counted
BuildArch:      noarch

%description
Its release and changelog come from its dist-git history.

%install
mkdir -p %{buildroot}%{_datadir}/counted
echo counted > %{buildroot}%{_datadir}/counted/marker

%files
%{_datadir}/counted

%changelog
%autochangelog
";

fn commit(repo: &Path, who: &str, msg: &str) {
    git(
        repo,
        &[
            "-c",
            &format!("user.name={who}"),
            "-c",
            &format!("user.email={}@example.org", who.to_lowercase()),
            "commit",
            "-q",
            "--allow-empty",
            "-am",
            msg,
        ],
    );
}

/// A dist-git repository on f41: an import by Alice, then a fix by Bob.
fn distgit(w: &Ws) -> PathBuf {
    let repo = w.path().join("counted");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("counted.spec"), SPEC).unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(&repo, &["add", "-A"]);
    commit(&repo, "Alice", "Initial import");
    edit(
        &repo,
        "Summary:        Released by its history",
        "Summary:        Released by its git history",
    );
    commit(&repo, "Bob", "Say where the release comes from");
    repo
}

fn edit(repo: &Path, from: &str, to: &str) {
    let spec = repo.join("counted.spec");
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains(from));
    std::fs::write(&spec, text.replace(from, to)).unwrap();
}

/// What rpmautospec itself says the release is (as Koji's builder would compute it).
fn calculated(repo: &Path) -> String {
    let out = Command::new("rpmautospec")
        .args(["--no-pager", "calculate-release"])
        .arg(repo.join("counted.spec"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("Calculated release number: ")
        .expect("rpmautospec's answer")
        .to_string()
}

fn built(w: &Ws, repo: &Path) -> (Value, String) {
    let r = w.run(&["build", repo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let rpm = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .unwrap()
        .clone();
    let log = Command::new("rpm")
        .args(["-qp", "--changelog"])
        .arg(w.ws().join(rpm["path"].as_str().unwrap()))
        .output()
        .unwrap();
    (m, String::from_utf8_lossy(&log.stdout).into_owned())
}

fn release(m: &Value) -> Vec<String> {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm" || a["type"] == "srpm")
        .map(|a| a["nevra"]["release"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_release_and_changelog_are_rpmautospecs_from_the_history() {
    let w = Ws::new();
    let repo = distgit(&w);
    let expected = calculated(&repo);
    assert_eq!(expected, "2", "two commits");
    let (m, changelog) = built(&w, &repo);
    assert_eq!(release(&m), vec!["2.fc41"; 2], "SRPM and RPM");
    let b = &m["stages"][0];
    assert_eq!(b["data"]["autorelease"]["release_number"], 2, "{b:#}");
    assert_eq!(b["data"]["nvr"], "counted-1.0-2.fc41");
    // The changelog holds the commits, newest first, as rpmautospec writes them.
    let bob = changelog.find("Bob <bob@example.org> - 1.0-2\n- Say where the release comes from");
    let alice = changelog.find("Alice <alice@example.org> - 1.0-1\n- Initial import");
    assert!(
        bob.is_some() && alice.is_some() && bob < alice,
        "{changelog}"
    );

    // A commit that changes no file is a new release (Koji's rebuild), never a reuse.
    commit(&repo, "Bob", "Rebuild");
    let (m, _) = built(&w, &repo);
    assert_eq!(calculated(&repo), "3");
    assert_eq!(release(&m), vec!["3.fc41"; 2]);
    assert_ne!(m["stages"][0]["cached"], true);

    // `%autorelease -b 10`: the base bumps the count, as rpmautospec computes it.
    edit(&repo, "%autorelease\n", "%autorelease -b 10\n");
    commit(&repo, "Alice", "Bump the release base");
    let expected = calculated(&repo);
    assert_eq!(expected, "13");
    let (m, _) = built(&w, &repo);
    assert_eq!(release(&m), vec![format!("{expected}.fc41"); 2]);

    // Uncommitted changes are the next release, their entry said as rpmautospec says it,
    // signed by the checkout's git identity.
    git(&repo, &["config", "user.name", "Carol"]);
    git(&repo, &["config", "user.email", "carol@example.org"]);
    edit(
        &repo,
        "Its release and changelog",
        "Its release and its changelog",
    );
    let expected = calculated(&repo);
    assert_eq!(expected, "14");
    let (m, changelog) = built(&w, &repo);
    assert_eq!(release(&m), vec![format!("{expected}.fc41"); 2]);
    assert!(
        changelog.contains("Carol <carol@example.org> - 1.0-14\n- Uncommitted changes"),
        "{changelog}"
    );
    assert_eq!(m["subject"]["dirty"], true);
}

#[test]
fn without_git_history_or_rpmautospec_there_is_no_release_to_build() {
    let w = Ws::new();
    // A directory that is not a git repository: Koji builds only from git (exit 2).
    let plain = w.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("counted.spec"), SPEC).unwrap();
    let r = w.run(&["build", plain.to_str().unwrap(), "--dist", ".fc41"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a git repository") && r.stderr.contains("Koji"),
        "{}",
        r.stderr
    );
    // A spec rpm cannot parse is the package's mistake, named at its line in dist-git.
    let repo = distgit(&w);
    edit(
        &repo,
        "License:        MIT\n",
        "Bogus:          tag\nLicense:        MIT\n",
    );
    commit(&repo, "Bob", "Break the spec");
    let r = w.run(&["build", repo.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("counted.spec:5:") && r.stderr.contains("Unknown tag: Bogus"),
        "{}",
        r.stderr
    );
    git(&repo, &["revert", "--no-edit", "HEAD"]);

    // A host without rpmautospec: ERROR naming it and how to install it, never rpm's
    // fallback release.
    let out = w
        .cmd()
        .env("PATH", path_without(w.path(), &["rpmautospec"]))
        .args(["build", repo.to_str().unwrap()])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("rpmautospec not found") && r.stderr.contains("/opt/fci/rpmautospec"),
        "{}",
        r.stderr
    );
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "ERROR", "{b:#}");
    assert!(
        !m["artifacts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["type"] == "rpm")),
        "nothing built: {m:#}"
    );
}

/// rpmautospec parses the spec at each commit (spec code runs): in the sandbox, on fci's own
/// clone, never seeing the checkout's `.git` and the credentials its remote URL may hold.
#[test]
fn spec_code_run_by_rpmautospec_sees_no_credentials() {
    let w = Ws::new();
    let repo = distgit(&w);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://bob:s3cret-token@example.org/rpms/counted.git",
        ],
    );
    let probe = format!(
        "Version:        1.0%(grep -qs s3cret-token {}/.git/config .git/config && echo .leaked)\n",
        repo.display()
    );
    edit(&repo, "Version:        1.0\n", &probe);
    commit(&repo, "Bob", "Probe for the remote's token");
    let (m, changelog) = built(&w, &repo);
    assert_eq!(release(&m), vec!["3.fc41"; 2]);
    let version: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm")
        .map(|a| a["nevra"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(version, vec!["1.0"]);
    assert!(!changelog.contains("leaked"), "{changelog}");
    assert!(
        changelog.contains("- 1.0-3\n- Probe for the remote's token"),
        "{changelog}"
    );
}
