//! completions/ and man/ are generated from the CLI here, and only here: the shipped `fci`
//! carries no generator (`fci completions SHELL` prints the scripts generated into
//! completions/, built in). This keeps them current; regenerate them with
//! `FCI_BLESS=1 cargo test --test generated_docs`, then rebuild fci.

use clap_complete::Shell;

/// The files under `completions/` and `man/`, as (path, contents), generated from the CLI and,
/// for each man page, the hand-written sections of `man/extra/<page>.md` (EXIT STATUS,
/// ENVIRONMENT, FILES, EXAMPLES, SEE ALSO) joined to its generated options.
fn generated_docs() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in COMPLETIONS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut fci::cli::completion_command(), "fci", &mut buf);
        out.push((file.to_string(), buf));
    }
    for (page, cmd) in man_commands() {
        out.push((format!("man/{page}.1"), man_page(&page, cmd)));
    }
    out
}

/// Every man page's name and its command: `fci` (its version without the commit, so that the
/// page does not change with every commit), `fci-<sub>` and `fci-<sub>-<subsub>`.
fn man_commands() -> Vec<(String, clap::Command)> {
    let cmd = fci::cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut out = vec![("fci".to_string(), cmd.clone())];
    sub_commands(&cmd, "fci", &mut out);
    out
}

/// A man page per subcommand, `fci-<sub>`, and per subcommand of those (`fci-gating-decide`).
fn sub_commands(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix}-{}", sub.get_name());
        out.push((name.clone(), sub.clone().name(name.clone())));
        sub_commands(sub, &name, out);
    }
}

/// clap_mangen's page of `cmd`, with the hand-written sections of `man/extra/<page>.md` before
/// its VERSION section (or at its end).
fn man_page(page: &str, cmd: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .expect("render man page");
    let generated = String::from_utf8(buf).unwrap();
    let extra = roff(&extra_markdown(page));
    let page = match generated.find("\n.SH VERSION\n") {
        Some(i) => format!("{}\n{extra}{}", &generated[..i], &generated[i + 1..]),
        None => format!("{generated}{extra}"),
    };
    page.into_bytes()
}

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `man/extra/<page>.md` with its `@include FILE` lines (FILE relative to `man/extra/`)
/// replaced by that file's text.
fn extra_markdown(page: &str) -> String {
    let dir = root().join("man/extra");
    let path = dir.join(format!("{page}.md"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (every man page has one)", path.display()));
    let mut out = String::new();
    for line in text.lines() {
        match line.strip_prefix("@include ") {
            Some(inc) => {
                let p = dir.join(inc.trim());
                out.push_str(
                    std::fs::read_to_string(&p)
                        .unwrap_or_else(|e| panic!("{page}: {}: {e}", p.display()))
                        .trim_end(),
                );
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The sections of an extra page's markdown, as (title, body).
fn sections(md: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in md.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            out.push((title.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            assert!(
                line.trim().is_empty(),
                "text before the first section: {line}"
            );
        }
    }
    out
}

/// roff's escapes for text: a backslash, a minus (not a hyphen), a leading control character.
fn escape(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// Text with `code` in bold.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("\\fB{part}\\fR"));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The small markdown of `man/extra/` as roff: `# TITLE` a section; blocks separated by blank
/// lines; a block indented by 4 spaces an example (verbatim); a line followed by lines
/// starting with `: ` a term and its definition; any other block a paragraph; `code` in bold.
fn roff(md: &str) -> String {
    let mut out = String::new();
    for (title, body) in sections(md) {
        out.push_str(&format!(".SH \"{title}\"\n"));
        for block in body.split("\n\n") {
            let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                continue;
            }
            if lines.iter().all(|l| l.starts_with("    ")) {
                out.push_str(".PP\n.RS 4\n.nf\n");
                for l in &lines {
                    out.push_str(&escape(&l[4..]));
                    out.push('\n');
                }
                out.push_str(".fi\n.RE\n");
            } else if lines.len() > 1 && lines[1].starts_with(": ") {
                out.push_str(".TP\n");
                out.push_str(&inline(lines[0]));
                out.push('\n');
                for l in &lines[1..] {
                    out.push_str(&inline(l.strip_prefix(": ").unwrap_or(l)));
                    out.push('\n');
                }
            } else {
                out.push_str(".PP\n");
                for l in &lines {
                    out.push_str(&inline(l));
                    out.push('\n');
                }
            }
        }
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
    let root = root();
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
    // git's answer in the checkout, or none (no git, or not a git checkout of fci itself).
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let same = |a: &str| {
        std::path::Path::new(a).canonicalize().ok()
            == std::path::Path::new(root).canonicalize().ok()
    };
    let commit = match (
        git(&["rev-parse", "--show-toplevel"]),
        git(&["rev-parse", "--short", "HEAD"]),
    ) {
        (Some(top), Some(short)) if same(&top) => short,
        _ => "unknown commit".to_string(),
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
                assert!(
                    example.contains(&format!("fci {stage}")),
                    "fci {path:?}: {example}"
                );
            }
        }
    }
}

/// Shell words of a command line as `sh` splits them (quotes, backslashes, `\`-newline), cut
/// into simple commands at unquoted `|`, `;`, `&&`, `>` and `#` (a comment): each the words of
/// one command.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let end_word = |word: &mut Option<String>, commands: &mut Vec<Vec<String>>| {
        if let Some(w) = word.take() {
            commands.last_mut().unwrap().push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(n) => word.get_or_insert_with(String::new).push(n),
            },
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    w.push(n);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => w.push(chars.next().unwrap_or('\\')),
                        _ => w.push(n),
                    }
                }
            }
            '#' if word.is_none() => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                end_word(&mut word, &mut commands);
                commands.push(Vec::new());
            }
            '|' | ';' | '&' | '>' | '\n' => {
                end_word(&mut word, &mut commands);
                commands.push(Vec::new());
            }
            c if c.is_whitespace() => end_word(&mut word, &mut commands),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut commands);
    commands.retain(|c| !c.is_empty());
    commands
}

/// Each `fci ...` command of an example (after a `do`, in a pipe) parses as fci's command
/// line: an example never shows a flag fci does not take, nor misses a required one.
fn check_example(whence: &str, example: &str) -> usize {
    let mut checked = 0;
    for words in simple_commands(example) {
        let Some(i) = words.iter().position(|w| w == "fci") else {
            continue;
        };
        use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
        match fci::cli::command().try_get_matches_from(&words[i..]) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), DisplayHelp | DisplayVersion) => {}
            Err(e) => panic!(
                "{whence}: the example `{}` does not parse:\n{e}",
                words[i..].join(" ")
            ),
        }
        checked += 1;
    }
    checked
}

/// Every man page has its hand-written EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES (in that
/// order, then SEE ALSO) in `man/extra/<page>.md`, and nothing there is for a page that does
/// not exist; its ENVIRONMENT names every variable its options read; and every fci command in
/// its EXAMPLES (and in each `--help`'s example) parses as fci's command line. So the sections
/// cannot drift from the options they are joined to.
#[test]
fn man_pages_join_hand_written_sections_that_match_the_options() {
    let pages = man_commands();
    let names: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
    for entry in std::fs::read_dir(root().join("man/extra")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                names.contains(&stem.as_str()),
                "man/extra/{stem}.md is for no man page ({names:?})"
            );
        }
    }
    let mut examples = 0;
    for (page, cmd) in &pages {
        let md = extra_markdown(page);
        let secs = sections(&md);
        let titles: Vec<&str> = secs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            titles,
            [
                "EXIT STATUS",
                "ENVIRONMENT",
                "FILES",
                "EXAMPLES",
                "SEE ALSO"
            ],
            "man/extra/{page}.md"
        );
        let body = |t: &str| &secs.iter().find(|(title, _)| title == t).unwrap().1;
        let mut cmd = cmd.clone();
        cmd.build();
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(var) = arg.get_env() {
                let var = var.to_string_lossy();
                assert!(
                    body("ENVIRONMENT").contains(&format!("`{var}`")),
                    "man/extra/{page}.md: ENVIRONMENT does not name {var} (--{})",
                    arg.get_long().unwrap_or_default()
                );
            }
        }
        for line in body("EXIT STATUS").lines() {
            if let Some(code) = line.trim().parse::<u8>().ok().filter(|c| *c > 3) {
                panic!("man/extra/{page}.md: exit status {code} is no exit code of fci");
            }
        }
        let example: String = body("EXAMPLES")
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .map(|l| format!("{l}\n"))
            .collect();
        let n = check_example(&format!("man/extra/{page}.md"), &example);
        assert!(n > 0, "man/extra/{page}.md: no fci command in EXAMPLES");
        if page != "fci" {
            let me = page.trim_start_matches("fci-").replace('-', " ");
            assert!(
                example.contains(&format!("fci {me}")),
                "man/extra/{page}.md: no example runs fci {me}"
            );
        }
        examples += n;
    }
    for (path, example) in fci::cli::EXAMPLES {
        assert!(check_example(&format!("fci {path} --help"), example) > 0);
    }
    assert!(examples >= pages.len(), "{examples}");
    // The generated page carries the sections, in roff.
    let docs = generated_docs();
    let build = &docs.iter().find(|(p, _)| p == "man/fci-build.1").unwrap().1;
    let build = String::from_utf8_lossy(build);
    for s in [
        ".SH OPTIONS",
        ".SH \"EXIT STATUS\"",
        ".SH \"ENVIRONMENT\"",
        ".SH \"FILES\"",
        ".SH \"EXAMPLES\"",
    ] {
        assert!(build.contains(s), "fci-build.1 has no {s}");
    }
    assert!(build.contains("\\fBFCI_LOOKASIDE\\fR"), "{build}");
}

/// The README's commands (its `sh` blocks, and the shell of its Jenkins example) parse as fci's
/// command line, and its two commands are what `.ci/run` and `setup.sh` run.
#[test]
fn the_readmes_commands_parse_and_its_test_command_is_ci_s() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut shell = String::new();
    let mut block: Option<&str> = None;
    for line in readme.lines() {
        match (block, line.strip_prefix("```")) {
            (None, Some(lang)) => block = Some(lang.trim()),
            (Some(_), Some(_)) => block = None,
            (Some("sh"), None) => shell.push_str(&format!("{line}\n")),
            _ => {}
        }
    }
    let jenkins = readme
        .split_once("sh '''\n")
        .and_then(|(_, rest)| rest.split_once("'''"))
        .expect("the README's Jenkins example has an sh step")
        .0;
    assert!(
        check_example("README.md (Jenkins)", jenkins) >= 3,
        "{jenkins}"
    );
    assert!(check_example("README.md", &shell) >= 8, "{shell}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let ci: Vec<&str> = ci
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(ci, ["./setup.sh --deps-only", "cargo test --locked"]);
    assert!(
        shell.contains("\n./setup.sh --deps-only && cargo test --locked ")
            && shell.starts_with("./setup.sh "),
        "the README's two commands are not setup.sh's and .ci/run's:\n{shell}"
    );
    let setup = std::fs::read_to_string(root().join("setup.sh")).unwrap();
    assert!(setup.contains("\"${1:-}\" = \"--deps-only\""));
}
