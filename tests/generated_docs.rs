//! completions/ and man/ are generated from the CLI; this keeps them current.
//! Regenerate with `FCI_BLESS=1 cargo test --test generated_docs`.

#[test]
fn completions_and_man_pages_match_the_cli() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("FCI_BLESS").is_some();
    for (rel, want) in fci::cli::generated_docs() {
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
    let docs = fci::cli::generated_docs();
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
