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
        clap_complete::generate(shell, &mut fci::cli::command(), "fci", &mut buf);
        out.push((file.to_string(), buf));
    }
    let cmd = fci::cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("render man page");
    out.push(("man/fci.1".to_string(), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("fci-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .render(&mut buf)
            .expect("render man page");
        out.push((format!("man/{name}.1"), buf));
    }
    out
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
