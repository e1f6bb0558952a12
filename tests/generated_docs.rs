//! completions/ and man/ are generated from the CLI here, and only here: the shipped `fci`
//! carries no generator (`fci completions SHELL` prints the scripts generated into
//! completions/, built in). This keeps them current; regenerate them with
//! `FCI_BLESS=1 cargo test --test generated_docs`, then rebuild fci.

use clap_complete::Shell;

/// The files under `completions/` and `man/`, as (path, contents), generated from the CLI.
fn generated_docs() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in COMPLETIONS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut fci::cli::completion_command(), "fci", &mut buf);
        out.push((file.to_string(), buf));
    }
    let cmd = fci::cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("render man page");
    out.push(("man/fci.1".to_string(), buf));
    man_pages(&cmd, "fci", &mut out);
    out
}

/// A man page per subcommand, `man/fci-<sub>.1`, and per subcommand of those
/// (`man/fci-gating-decide.1`).
fn man_pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix}-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .render(&mut buf)
            .expect("render man page");
        out.push((format!("man/{name}.1"), buf));
        man_pages(sub, &name, out);
    }
}

/// Each shell `fci completions` takes, its name there and its script's file.
const COMPLETIONS: [(Shell, &str); 5] = [
    (Shell::Bash, "completions/fci.bash"),
    (Shell::Zsh, "completions/_fci"),
    (Shell::Fish, "completions/fci.fish"),
    (Shell::Elvish, "completions/fci.elv"),
    (Shell::PowerShell, "completions/_fci.ps1"),
];

#[test]
fn completions_and_man_pages_match_the_cli() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("FCI_BLESS").is_some();
    for (rel, want) in generated_docs() {
        let p = root.join(&rel);
        if bless {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &want).unwrap();
            continue;
        }
        let have = std::fs::read(&p).unwrap_or_default();
        assert!(
            have == want,
            "{rel} is stale: run FCI_BLESS=1 cargo test --test generated_docs"
        );
    }
}

/// Whether `text` names the flag `flag` itself (not one it begins, as --results begins
/// --resultsdb-url).
fn names(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        !text[i + flag.len()..]
            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The old spellings kept hidden for one release (`report --waive`, `compose --init-base`,
/// ...) are offered by no completion of report or compose and shown by none of their man
/// pages; their replacements have man pages of their own.
#[test]
fn hidden_spellings_are_neither_completed_nor_documented() {
    let docs = generated_docs();
    let text = |rel: &str| {
        let t = &docs.iter().find(|(p, _)| p == rel).unwrap().1;
        String::from_utf8_lossy(t).replace("\\-", "-")
    };
    let moved = [
        "--validate",
        "--results",
        "--waive",
        "--comment",
        "--revoke",
    ];
    let report = text("man/fci-report.1");
    let compose = text("man/fci-compose.1");
    for old in moved {
        assert!(!names(&report, old), "fci-report.1 shows {old}");
    }
    assert!(
        !names(&compose, "--init-base"),
        "fci-compose.1 shows --init-base"
    );
    let bash = text("completions/fci.bash");
    let opts = |markers: &[&str]| {
        bash.lines()
            .find(|l| l.contains("opts=") && markers.iter().all(|m| l.contains(m)))
            .unwrap()
            .to_string()
    };
    let report = opts(&["--promote"]);
    let compose = opts(&["--ostree-repo", "--max-scratch"]);
    for old in moved {
        assert!(!names(&report, old), "report completes {old}: {report}");
    }
    assert!(!names(&compose, "--init-base"), "{compose}");
    for shell in ["completions/_fci", "completions/fci.fish"] {
        assert!(
            !names(&text(shell), "init-base"),
            "{shell} offers --init-base"
        );
    }
    for page in [
        "gating-decide",
        "gating-validate",
        "gating-waive",
        "base-init",
    ] {
        let page = text(&format!("man/fci-{page}.1"));
        assert!(page.contains("Exit codes: 0"), "{page}");
    }
}

/// `fci completions SHELL` prints the script generated for SHELL, for every shell it takes.
#[test]
fn fci_completions_prints_the_generated_scripts() {
    if std::env::var_os("FCI_BLESS").is_some() {
        // The binary under test was built with the scripts being replaced.
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shells = fci::cli::command()
        .find_subcommand("completions")
        .and_then(|c| c.get_arguments().find(|a| a.get_id() == "shell").cloned())
        .map(|a| a.get_possible_values().len())
        .unwrap();
    assert_eq!(
        shells,
        COMPLETIONS.len(),
        "a shell without a generated script"
    );
    for (shell, rel) in COMPLETIONS {
        let name = clap::ValueEnum::to_possible_value(&shell)
            .unwrap()
            .get_name()
            .to_string();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
            .args(["completions", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let want = std::fs::read(root.join(rel)).unwrap();
        assert!(out.stdout == want, "fci completions {name} is not {rel}");
        assert!(!out.stdout.is_empty(), "{name}");
    }
}

/// `fci --version` names the commit of the checkout it was built from (build.rs), as
/// `fci 0.1.0 (abc1234)` (`abc1234-dirty` when tracked files differ from it); from a tarball,
/// `(unknown commit)`.
#[test]
fn fci_version_names_the_commit() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let version = String::from_utf8(out.stdout).unwrap();
    let git = std::process::Command::new("git")
        .args(["-C", root, "rev-parse", "--short", "HEAD"])
        .output()
        .unwrap();
    let top = std::process::Command::new("git")
        .args(["-C", root, "rev-parse", "--show-toplevel"])
        .output()
        .unwrap();
    let checkout = git.status.success()
        && std::path::Path::new(String::from_utf8_lossy(&top.stdout).trim())
            .canonicalize()
            .ok()
            == std::path::Path::new(root).canonicalize().ok();
    let commit = if checkout {
        String::from_utf8(git.stdout).unwrap().trim().to_string()
    } else {
        "unknown commit".to_string()
    };
    let want = format!("fci {} ({commit}", env!("CARGO_PKG_VERSION"));
    assert!(
        version.starts_with(&want)
            && (version.trim_end().ends_with(&format!("{commit})"))
                || version.trim_end().ends_with(&format!("{commit}-dirty)"))),
        "fci --version says {version:?}, the checkout is at {commit}"
    );
}

/// The paths of fci's commands that have a help of their own: `[]` (fci), `["build"]`,
/// `["gating", "decide"]`, ...
fn command_paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut p = prefix.clone();
        p.push(sub.get_name().to_string());
        command_paths(sub, p, out);
    }
}

/// Every command's `--help` (and `-h`), as the real binary prints it, ends with an example:
/// an `Example:` heading followed only by indented command lines, the first naming fci.
#[test]
fn every_help_ends_with_an_example() {
    let mut paths = Vec::new();
    command_paths(&fci::cli::command(), Vec::new(), &mut paths);
    // fci, its 12 commands, gating's 3 and base's 1
    assert_eq!(paths.len(), 17, "{paths:?}");
    for path in &paths {
        for flag in ["--help", "-h"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
                .args(path)
                .arg(flag)
                .output()
                .unwrap();
            assert!(out.status.success(), "fci {path:?} {flag}: {out:?}");
            let help = String::from_utf8(out.stdout).unwrap();
            let (_, example) = help
                .rsplit_once("\nExample:\n")
                .unwrap_or_else(|| panic!("fci {path:?} {flag} has no example:\n{help}"));
            let lines: Vec<&str> = example.lines().collect();
            assert!(
                !lines.is_empty() && lines.iter().all(|l| l.starts_with("  ")),
                "fci {path:?} {flag}: the example is not last:\n{example}"
            );
            let first = lines[0].trim_start();
            assert!(
                first.starts_with("fci ") || first.starts_with("examples/"),
                "fci {path:?} {flag}: {first}"
            );
            if let Some(stage) = path.first() {
                assert!(example.contains(&format!("fci {stage}")), "fci {path:?}: {example}");
            }
        }
    }
}
