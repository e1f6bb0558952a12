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
