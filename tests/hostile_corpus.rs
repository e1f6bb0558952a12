//! The hostile corpus: every directory under `tests/hostile/` is a hostile input (a spec, a
//! test tree, a manifest, a payload, a server's answer) with a one-line `PROMISE` naming what
//! fci promises about it and the test that proves it:
//!
//! `<the promise> — tests/<file>.rs::<test function>[, tests/<file>.rs::<test function>]`
//!
//! This test keeps the corpus honest (each promise names a test that exists) and keeps the
//! security section of docs/security.md listing every promise next to its test. Regenerate its
//! table with `FCI_BLESS=1 cargo test --test hostile_corpus`.

use std::path::Path;

mod common;
/// No external tool (it reads the corpus's PROMISE files and docs/security.md).
const NEEDS: common::Needs = &[];

const START: &str = "<!-- hostile-corpus:start (generated from tests/hostile/*/PROMISE) -->";
const END: &str = "<!-- hostile-corpus:end -->";

struct Promise {
    fixture: String,
    text: String,
    tests: Vec<(String, String)>,
}

fn corpus(root: &Path) -> Vec<Promise> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("tests/hostile"))
        .expect("tests/hostile exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read_to_string(dir.join("PROMISE"))
            .unwrap_or_else(|_| panic!("tests/hostile/{name} has no PROMISE file"));
        let lines: Vec<&str> = raw.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "tests/hostile/{name}/PROMISE must be one line"
        );
        let (text, refs) = lines[0]
            .rsplit_once(" — ")
            .unwrap_or_else(|| panic!("tests/hostile/{name}/PROMISE: no ' — tests/…::…'"));
        let tests = refs
            .split(", ")
            .map(|r| {
                let (file, func) = r.trim().split_once("::").unwrap_or_else(|| {
                    panic!("tests/hostile/{name}/PROMISE: {r:?} is not file::test")
                });
                (file.to_string(), func.to_string())
            })
            .collect();
        out.push(Promise {
            fixture: name,
            text: text.trim().to_string(),
            tests,
        });
    }
    out
}

fn table(promises: &[Promise]) -> String {
    let mut t =
        String::from("| hostile input (`tests/hostile/`) | promise | proved by |\n|---|---|---|\n");
    for p in promises {
        let tests: Vec<String> = p
            .tests
            .iter()
            .map(|(f, func)| format!("`{f}::{func}`"))
            .collect();
        t.push_str(&format!(
            "| `{}` | {} | {} |\n",
            p.fixture,
            p.text,
            tests.join(", ")
        ));
    }
    t
}

#[test]
fn every_hostile_input_names_a_promise_and_a_test_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let promises = corpus(root);
    assert!(promises.len() >= 10, "the corpus lost its inputs");
    for p in &promises {
        for (file, func) in &p.tests {
            let src = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|_| panic!("tests/hostile/{}: {file} does not exist", p.fixture));
            assert!(
                src.contains(&format!("fn {func}(")),
                "tests/hostile/{}: {file} has no test {func}",
                p.fixture
            );
        }
    }
}

#[test]
fn the_readme_lists_every_promise_next_to_its_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = table(&corpus(root));
    let readme_path = root.join("docs/security.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (head, rest) = readme
        .split_once(START)
        .expect("docs/security.md has the corpus start marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/security.md has the corpus end marker");
    if std::env::var_os("FCI_BLESS").is_some() {
        std::fs::write(&readme_path, format!("{head}{START}\n{want}{END}{tail}")).unwrap();
        return;
    }
    assert_eq!(
        rest.split_once(END).unwrap().0.trim_start_matches('\n'),
        want,
        "docs/security.md's hostile corpus table is stale: run FCI_BLESS=1 cargo test --test hostile_corpus"
    );
}
