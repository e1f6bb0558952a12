//! fci.yaml's `buildrequires:` mapping, from `fci watch` to the build's unmet BuildRequires:
//! a mapped name is resolved by its mapping, and only what is really missing is warned about.

mod common;
use common::*;

const NEEDS: Needs = &[tool::BUILD, &[tool::GIT]];

const SPEC: &str = "\
Name:           mapped
Version:        1.0
Release:        1%{?dist}
Summary:        Needs what only fci.yaml can say the host has
License:        MIT
BuildArch:      noarch
BuildRequires:  fci-mapped-devel
BuildRequires:  fci-mapped-tool
BuildRequires:  fci-unmapped-tool
BuildRequires:  sh

%description
Its BuildRequires name Fedora packages that a Debian host has under other names.

%install
mkdir -p %{buildroot}%{_datadir}/mapped
echo mapped > %{buildroot}%{_datadir}/mapped/marker

%files
%{_datadir}/mapped

%changelog
* Mon Jan 01 2024 Example Packager <packager@example.org> - 1.0-1
- Initial package
";

#[test]
fn fci_yaml_maps_buildrequires_to_what_the_host_has() {
    let w = Ws::new();
    let repo = w.path().join("rpms/mapped");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("mapped.spec"), SPEC).unwrap();
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "import"]);
    let cfg = w.path().join("fci.yaml");
    let head = "dist_git: ./rpms\nbranches: [f41]\npackages: [mapped]\n";
    // A value that is neither a Debian package nor a path is the caller's mistake.
    std::fs::write(
        &cfg,
        format!("{head}buildrequires: {{fci-mapped-tool: 'Bad Name'}}\n"),
    )
    .unwrap();
    let r = w.run(&["watch", "--config", cfg.to_str().unwrap(), "--once"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("fci.yaml") && r.stderr.contains("fci-mapped-tool"),
        "{}",
        r.stderr
    );
    // A Debian package dpkg has, a file, and `sh` mapped to a package the host lacks.
    std::fs::write(
        &cfg,
        format!(
            "{head}buildrequires:\n  fci-mapped-devel: dpkg\n  fci-mapped-tool: /bin/sh\n  sh: fci-no-such-debian-package\n"
        ),
    )
    .unwrap();
    let watch = || w.run(&["watch", "--config", cfg.to_str().unwrap(), "--once"]);
    assert_eq!(watch().code, 0);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "rebuild"]);
    let r = watch();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let queued = r
        .stdout
        .lines()
        .last()
        .expect("a manifest for the new commit");
    let queued = w.save("queued.json", &serde_json::from_str(queued).unwrap());

    let r = w.run(&["build", "-m", queued.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(
        b["data"]["unmet_buildrequires"],
        serde_json::json!(["fci-unmapped-tool", "sh"]),
        "{b:#}"
    );
    let notes = b["notes"].to_string();
    assert!(
        notes.contains("unmet BuildRequires on this host: fci-unmapped-tool, sh;"),
        "{notes}"
    );
}

/// Asking the host's Python whether it has a `python3dist(x)` never imports the package's own
/// files: run from the checkout (as `fci build .` is), a `csv.py` there (which
/// importlib.metadata would import) stays unread.
#[test]
fn asking_python_about_a_buildrequires_runs_none_of_the_packages_files() {
    let w = Ws::new();
    let dir = w.path().join("pybr");
    std::fs::create_dir_all(&dir).unwrap();
    let marker = w.path().join("package-code-ran");
    std::fs::write(
        dir.join("pybr.spec"),
        SPEC.replace("Name:           mapped", "Name:           pybr")
            .replace(
                "BuildRequires:  fci-mapped-devel\n",
                "BuildRequires:  python3dist(no-such-dist-xyz)\n",
            ),
    )
    .unwrap();
    for module in ["csv", "email", "textwrap", "zipfile"] {
        std::fs::write(
            dir.join(format!("{module}.py")),
            format!(
                "open({:?}, 'w').write('{module}')\n",
                marker.display().to_string()
            ),
        )
        .unwrap();
    }
    let out = w
        .cmd()
        .current_dir(&dir)
        .args(["build", ".", "--dist", ".fc41"])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!marker.exists(), "package code ran on the host");
    let b = r.stage(&r.manifest(), "build").clone();
    assert!(
        b["data"]["unmet_buildrequires"]
            .to_string()
            .contains("python3dist(no-such-dist-xyz)"),
        "{b:#}"
    );
}
