//! completions/ and man/ are generated from the CLI here, and only here: the shipped `fci`
//! carries no generator (`fci completions SHELL` prints the scripts generated into
//! completions/, built in). This keeps them current; regenerate them with
//! `FCI_BLESS=1 cargo test --test generated_docs`, then rebuild fci. Each stage's man page
//! carries its reference, generated from docs/<stage>.md (DETAILS), so the two cannot drift.

use clap_complete::Shell;

/// The files under `completions/` and `man/`, as (path, contents), generated from the CLI and,
/// for each man page, the hand-written sections of `man/extra/<page>.md` (EXIT STATUS,
/// ENVIRONMENT, FILES, EXAMPLES, SEE ALSO) joined to its generated options, after a stage's
/// reference from docs/ (DETAILS, see `REFERENCE`).
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

/// clap_mangen's page of `cmd`, with its DETAILS from docs/ (a stage's) and the hand-written
/// sections of `man/extra/<page>.md` before its VERSION section (or at its end).
fn man_page(page: &str, cmd: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .expect("render man page");
    let generated = String::from_utf8(buf).unwrap();
    let extra = format!("{}{}", details(page), roff(&extra_markdown(page)));
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

/// The man pages that carry a stage's reference, its DETAILS section, and where it comes from:
/// the docs file and, when the file covers two commands, the `## ` heading (its start) of the
/// part that is this page's. docs/<stage>.md is the single source; the pages are generated.
const REFERENCE: [(&str, &str, Option<&str>); 16] = [
    ("fci-build", "docs/build.md", None),
    ("fci-test", "docs/test.md", Some("## `fci test`")),
    ("fci-integrate", "docs/test.md", Some("## `fci integrate")),
    ("fci-compose", "docs/compose.md", Some("## `fci compose`")),
    (
        "fci-base-init",
        "docs/compose.md",
        Some("## `fci base init"),
    ),
    ("fci-conform", "docs/conform.md", None),
    ("fci-image", "docs/image.md", Some("## `fci image`")),
    ("fci-smoke", "docs/image.md", Some("## `fci smoke`")),
    ("fci-report", "docs/report.md", None),
    ("fci-gating", "docs/gating.md", None),
    ("fci-watch", "docs/watch.md", None),
    ("fci-bundle", "docs/bundle.md", Some("## `fci bundle`")),
    ("fci-unbundle", "docs/bundle.md", Some("## `fci unbundle")),
    ("fci-fsck", "docs/fsck.md", None),
    ("fci-gc", "docs/gc.md", None),
    ("fci-verify", "docs/verify.md", None),
];

/// The markdown of a page's reference: its docs file without the `# ` title (the page's NAME
/// says it), or only its `## ` part.
fn reference_markdown(page: &str) -> Option<(&'static str, String)> {
    let (_, file, part) = REFERENCE.iter().find(|(p, _, _)| *p == page)?;
    let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = String::new();
    let mut fenced = false;
    let mut keep = part.is_none();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with("# ") {
            continue;
        } else if !fenced && line.starts_with("## ") {
            if let Some(part) = part {
                keep = line.starts_with(part);
            }
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        !out.trim().is_empty(),
        "{file} has no part {part:?} for {page}"
    );
    Some((file, out))
}

/// The page's DETAILS section (after its OPTIONS): the stage's reference from docs/, in roff;
/// empty for a page without one.
fn details(page: &str) -> String {
    match reference_markdown(page) {
        Some((file, md)) => format!(
            ".SH DETAILS\n.PP\nThis section is {file} of fci's source.\n{}",
            reference_roff(&md)
        ),
        None => String::new(),
    }
}

/// roff's escapes for text, and every character outside ASCII as its `\[uXXXX]`.
fn escape_all(text: &str) -> String {
    let mut out = String::new();
    for c in escape(text).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}

/// A docs line's inline markdown as roff: `code` and **strong** in bold, *emphasis* in
/// italics, a link as its text (and its URL when it is absolute, its docs file when not).
fn inline_md(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut plain = String::new();
    let flush = |plain: &mut String, out: &mut String| {
        out.push_str(&escape_all(plain));
        plain.clear();
    };
    let mut bold = false;
    let mut italic = false;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            if let Some(end) = rest[1..].find('`') {
                flush(&mut plain, &mut out);
                out.push_str(&format!("\\fB{}\\fR", escape_all(&rest[1..1 + end])));
                if bold {
                    out.push_str("\\fB");
                } else if italic {
                    out.push_str("\\fI");
                }
                rest = &rest[end + 2..];
                continue;
            }
        } else if rest.starts_with("**") {
            flush(&mut plain, &mut out);
            bold = !bold;
            out.push_str(if bold { "\\fB" } else { "\\fR" });
            rest = &rest[2..];
            continue;
        } else if c == '*'
            && (italic
                || rest[1..].starts_with(|n: char| n.is_alphanumeric()) && rest[1..].contains('*'))
        {
            flush(&mut plain, &mut out);
            italic = !italic;
            out.push_str(if italic { "\\fI" } else { "\\fR" });
            rest = &rest[1..];
            continue;
        } else if c == '[' {
            if let Some((label, after)) = rest[1..].split_once("](") {
                if let Some((url, tail)) = after.split_once(')') {
                    if !label.contains('[') && !url.contains(' ') {
                        flush(&mut plain, &mut out);
                        out.push_str(&inline_md(label));
                        if url.contains("://") {
                            out.push_str(&format!(" <{}>", escape_all(url)));
                        } else if let Some(file) = url.split('#').next().filter(|f| !f.is_empty()) {
                            out.push_str(&format!(" (docs/{})", escape_all(file)));
                        }
                        rest = tail;
                        continue;
                    }
                }
            }
        }
        plain.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut plain, &mut out);
    assert!(!bold && !italic, "unclosed emphasis: {text}");
    out
}

/// Lines of roff text, each ending in a newline: one that would start with a control
/// character is guarded.
fn text_lines(roff: &str) -> String {
    let mut out = String::new();
    for line in roff.lines() {
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The cells of a pipe table's row (`\|` inside a cell is a `|`).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|');
    let row = row
        .strip_suffix('|')
        .filter(|r| !r.ends_with('\\'))
        .unwrap_or(row);
    let mut out = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                out.last_mut().unwrap().push('|');
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The markdown of docs/ as roff: `##`/`###` headings as subsections, fenced code verbatim,
/// `- ` lists (continued by indented lines) as bulleted paragraphs, a pipe table as a tagged
/// paragraph per row (its first cell the tag; with more than two columns, each other cell
/// named by its column), and any other lines as paragraphs.
fn reference_roff(md: &str) -> String {
    #[derive(PartialEq)]
    enum Block {
        None,
        Para,
        Item,
        Table,
    }
    let mut out = String::new();
    let mut block = Block::None;
    let mut header: Vec<String> = Vec::new();
    let mut fenced = false;
    // The lines of the paragraph or list item being read: inline markup may span them.
    let mut text: Vec<&str> = Vec::new();
    let flush = |text: &mut Vec<&str>, out: &mut String| {
        if !text.is_empty() {
            out.push_str(&text_lines(&inline_md(&text.join("\n"))));
            text.clear();
        }
    };
    for line in md.lines() {
        if fenced {
            if line.starts_with("```") {
                fenced = false;
                out.push_str(".fi\n.RE\n");
                block = Block::None;
            } else {
                out.push_str(&text_lines(&escape_all(line)));
            }
            continue;
        }
        let item = line.strip_prefix("- ");
        let continued = match block {
            Block::Para => !line.trim().is_empty() && item.is_none() && !line.starts_with('|'),
            Block::Item => line.starts_with("  "),
            _ => false,
        };
        if continued {
            text.push(line.trim());
            continue;
        }
        flush(&mut text, &mut out);
        if line.starts_with("```") {
            fenced = true;
            out.push_str(".PP\n.RS 4\n.nf\n");
            continue;
        }
        if line.trim().is_empty() {
            block = Block::None;
            continue;
        }
        if let Some(h) = line
            .strip_prefix("## ")
            .or_else(|| line.strip_prefix("### "))
        {
            out.push_str(".SS\n");
            out.push_str(&text_lines(&inline_md(h.trim())));
            block = Block::None;
            continue;
        }
        if line.starts_with('|') {
            let row = cells(line);
            if block != Block::Table {
                header = row;
                block = Block::Table;
            } else if !row.iter().all(|c| c.chars().all(|c| c == '-' || c == ':')) {
                out.push_str(".TP\n");
                out.push_str(&text_lines(&inline_md(&row[0])));
                let rest: Vec<String> = row[1..]
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(i, c)| match header.get(i + 1) {
                        Some(h) if row.len() > 2 => format!("{h}: {c}"),
                        _ => c.clone(),
                    })
                    .collect();
                out.push_str(&text_lines(&inline_md(&rest.join("; "))));
            }
            continue;
        }
        if let Some(item) = item {
            out.push_str(".IP \\(bu 2\n");
            text.push(item.trim());
            block = Block::Item;
            continue;
        }
        out.push_str(".PP\n");
        text.push(line.trim());
        block = Block::Para;
    }
    flush(&mut text, &mut out);
    assert!(!fenced, "an unclosed code block");
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

/// A man page without its DETAILS section.
fn without_details(page: &str) -> String {
    match page.split_once("\n.SH DETAILS\n") {
        Some((before, details)) => match details.split_once("\n.SH ") {
            Some((_, after)) => format!("{before}\n.SH {after}"),
            None => before.to_string(),
        },
        None => page.to_string(),
    }
}

/// Each stage's man page carries its reference, docs/<stage>.md (or its command's part of it),
/// as DETAILS after OPTIONS and before EXIT STATUS: every heading of the part is there, every
/// part of each docs file is on some page, and no markdown is left in the roff.
#[test]
fn stage_man_pages_carry_the_docs_reference() {
    let docs = generated_docs();
    let pages = man_commands();
    let mut covered: Vec<(String, String)> = Vec::new();
    for (page, file, _) in REFERENCE {
        assert!(
            pages.iter().any(|(p, _)| p == page),
            "{page} is no man page"
        );
        let rel = format!("man/{page}.1");
        let roff =
            String::from_utf8(docs.iter().find(|(p, _)| *p == rel).unwrap().1.clone()).unwrap();
        let opts = roff.find("\n.SH OPTIONS\n").expect(&rel);
        let det = roff.find("\n.SH DETAILS\n").expect(&rel);
        let exit = roff.find("\n.SH \"EXIT STATUS\"\n").expect(&rel);
        assert!(
            opts < det && det < exit,
            "{rel}: DETAILS is not between OPTIONS and EXIT STATUS"
        );
        let details = &roff[det..exit];
        let (_, md) = reference_markdown(page).unwrap();
        let mut fenced = false;
        for line in md.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if let Some(h) = line.strip_prefix("## ").filter(|_| !fenced) {
                let want = format!(".SS\n{}\n", inline_md(h.trim()));
                assert!(
                    details.contains(&want),
                    "{rel} lacks the heading {h:?} of {file}"
                );
                covered.push((file.to_string(), h.to_string()));
            }
        }
        for l in details
            .lines()
            .filter(|l| !l.starts_with(".nf") && !l.is_empty())
        {
            assert!(
                !l.starts_with("|") && !l.starts_with("```"),
                "{rel}: markdown left: {l}"
            );
        }
        let prose: String = details
            .split(".nf\n")
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p
                } else {
                    p.split_once(".fi\n").map_or("", |x| x.1)
                }
            })
            .collect();
        // without what is in bold (code may hold anything)
        let prose: String = prose
            .split("\\fB")
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p
                } else {
                    p.split_once("\\fR").map_or("", |x| x.1)
                }
            })
            .collect();
        for bad in ["`", "](", "\\|"] {
            assert!(
                !prose.contains(bad),
                "{rel}: markdown {bad:?} left in its prose"
            );
        }
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
        for (i, _) in prose.match_indices("**") {
            assert!(
                !alnum(prose[i + 2..].chars().next()) && !alnum(prose[..i].chars().last()),
                "{rel}: markdown ** left in its prose: {}",
                &prose[i.saturating_sub(40)..]
            );
        }
    }
    for (_, file, _) in REFERENCE {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if let Some(h) = line.strip_prefix("## ").filter(|_| !fenced) {
                assert!(
                    covered.iter().any(|(f, c)| f == file && c == h),
                    "{file}: the part {h:?} is on no man page (REFERENCE)"
                );
            }
        }
    }
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
    // The generated options and the hand-written sections; not DETAILS, docs/report.md, which
    // describes `fci gating waive --comment` and `--revoke` too.
    let report = without_details(&text("man/fci-report.1"));
    let compose = without_details(&text("man/fci-compose.1"));
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
    // fci, its 15 commands, gating's 3 and base's 1
    assert_eq!(paths.len(), 22, "{paths:?}");
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
