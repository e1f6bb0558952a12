//! The schedulers' configurations fci ships (issue 17): `examples/jenkins/Jenkinsfile` and,
//! when it is there, `examples/buildbot/master.cfg`. Jenkins cannot be installed here, so the
//! Jenkinsfile is never run: instead every fci command in them is parsed by fci's own command
//! line (`fci::cli::command()`, clap's `try_get_matches_from`), not run, so a renamed or
//! removed flag, a bad value (a duration, an enum) or a subcommand that does not exist fails
//! here instead of in a scheduler's first build. The Jenkinsfile's chain is checked too: each
//! stage after the build reads the manifest the stage before it wrote, and the report (in
//! `post`) picks the last of them. And the file compiles as Groovy (`groovyc`): its syntax,
//! not its steps, which only Jenkins runs.
//!
//! What counts as a command: in a Groovy file, the script of each `sh` step (`sh '...'`,
//! `sh script: '...'`, `sh(...)`); in a Python one (Buildbot), a string given as `command=`
//! or to `util.Interpolate(...)`, and a list whose first element is `'fci'`
//! (`['fci', 'build', '-m', util.Interpolate('%(prop:manifest)s')]`); in any of them, a list
//! starting with `'fci'`. A script is split into its commands (newlines, `;`, `|`, `&&`,
//! `||`); those whose first word is `fci` are invocations. Shell variables (`$CHANGE`,
//! `${FCI_CONFIG}`), command substitutions and Buildbot's renderables stand for values: each
//! is replaced by a realistic one chosen by its name ([`value_for`]).

use std::path::{Path, PathBuf};

/// A source file's language: what its comments and string literals look like.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Groovy,
    Python,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Ident(String),
    Punct(char),
}

/// A token and the line it starts on.
#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// One fci command found in a file.
#[derive(Clone, Debug)]
struct Invocation {
    /// `file:line` of the string or list it was found in.
    origin: String,
    /// The index of that token: where in the file it is (before or after `post`).
    at: usize,
    /// `fci` and its arguments, placeholders substituted.
    argv: Vec<String>,
    /// It reads the command before it through a pipe (`... | fci test`).
    piped_in: bool,
    /// Its output goes to the next command through a pipe.
    piped_out: bool,
}

impl Invocation {
    fn subcommand(&self) -> &str {
        self.argv.get(1).map(String::as_str).unwrap_or("")
    }

    /// The value of the flag `long` (or `short`): `--flag V`, `--flag=V`, `-m V`.
    fn flag(&self, long: &str, short: Option<&str>) -> Option<&str> {
        let mut it = self.argv.iter().skip(2);
        while let Some(a) = it.next() {
            if a == long || Some(a.as_str()) == short {
                return it.next().map(String::as_str);
            }
            if let Some(v) = a.strip_prefix(&format!("{long}=")) {
                return Some(v);
            }
        }
        None
    }

    fn has(&self, flag: &str) -> bool {
        self.argv.iter().skip(2).any(|a| a == flag)
    }

    fn shown(&self) -> String {
        format!("{}: `{}`", self.origin, self.argv.join(" "))
    }
}

fn lang_of(path: &Path) -> Lang {
    match path.extension().and_then(|e| e.to_str()) {
        Some("cfg" | "py") => Lang::Python,
        _ => Lang::Groovy,
    }
}

/// Splits `src` into string literals, identifiers and punctuation, skipping whitespace and
/// comments (`//` and `/* */` in Groovy, `#` in Python), so that a quote in a comment (`the
/// agent's`) opens no string. Strings: `'…'`, `"…"`, `'''…'''`, `"""…"""`, with Python's
/// prefixes (`r`, `f`, `b`, `u`). Groovy's slashy strings are not read (this file's own
/// configurations use none).
fn lex(src: &str, lang: Lang) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < c.len() {
        let ch = c[i];
        let rest = |k: usize| c.get(i + k).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if (lang == Lang::Python && ch == '#')
            || (lang == Lang::Groovy && ch == '/' && rest(1) == Some('/'))
        {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if lang == Lang::Groovy && ch == '/' && rest(1) == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if ch == '\'' || ch == '"' {
            let start = line;
            let (s, next) = string(&c, i, false, &mut line);
            out.push(Token {
                tok: Tok::Str(s),
                line: start,
            });
            i = next;
        } else if ch.is_alphabetic() || ch == '_' {
            let from = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[from..i].iter().collect();
            let prefix = lang == Lang::Python
                && word.len() <= 2
                && word.chars().all(|p| "rRbBuUfF".contains(p))
                && matches!(c.get(i), Some('\'' | '"'));
            if prefix {
                let start = line;
                let raw = word.contains(['r', 'R']);
                let (s, next) = string(&c, i, raw, &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start,
                });
                i = next;
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The string literal opening at `c[i]`: its value and the index after it. Escapes as Groovy
/// and Python read them (`\\`, `\'`, `\"`, `\$`, `\n`, `\t`); any other escape, and a
/// backslash before a newline, is kept as written.
fn string(c: &[char], i: usize, raw: bool, line: &mut usize) -> (String, usize) {
    let q = c[i];
    let triple = c.get(i + 1) == Some(&q) && c.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut s = String::new();
    while j < c.len() {
        let ch = c[j];
        if ch == q && (!triple || (c.get(j + 1) == Some(&q) && c.get(j + 2) == Some(&q))) {
            return (s, if triple { j + 3 } else { j + 1 });
        }
        if ch == '\n' {
            *line += 1;
        }
        if ch == '\\' && !raw && j + 1 < c.len() {
            let e = c[j + 1];
            match e {
                '\\' | '\'' | '"' | '$' => s.push(e),
                'n' => s.push('\n'),
                't' => s.push('\t'),
                // Kept as written: the shell reads it as the same continuation, and the
                // commands after it keep their line numbers.
                '\n' => {
                    *line += 1;
                    s.push_str("\\\n");
                }
                _ => {
                    s.push('\\');
                    s.push(e);
                }
            }
            j += 2;
            continue;
        }
        s.push(ch);
        j += 1;
    }
    (s, j)
}

/// A realistic value for a shell variable, a Buildbot property or a Python name, by its
/// name: what a job's environment or a build's properties would hold there. A name this
/// table does not know stands for a plain word (fine for a path or a name; a flag that
/// takes a duration or a choice needs the name here).
fn value_for(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    let has = |k: &str| n.contains(k);
    let v = if has("url") {
        "https://ci.example.org/job/fci/42/"
    } else if has("state") {
        "/srv/fci-state"
    } else if has("workspace") {
        "/var/lib/fci/workspace"
    } else if has("config") {
        "/srv/fci-config/fci.yaml"
    } else if has("gating") {
        "gating.yaml"
    } else if has("interval") {
        "6h"
    } else if has("timeout") {
        "1h"
    } else if has("branch") {
        "f41"
    } else if has("commit") || has("rev") {
        "0123456789abcdef0123456789abcdef01234567"
    } else if has("package") || has("component") {
        "hello-atomic"
    } else if has("message") || has("msg") {
        "fci-message.json"
    } else if has("junit") {
        "fci-junit.xml"
    } else if has("html") {
        "fci-report.html"
    } else if has("tests") {
        "examples/integration"
    } else if has("namespace") {
        "fedora-ci.koji-build"
    } else if has("context") {
        "bodhi_update_push_stable"
    } else if has("queue") || has("dir") {
        "fci-queue"
    } else if has("manifest") || has("change") || has("json") || n == "m" || n == "last" {
        "fci-build.json"
    } else if has("jobs") || has("retries") || has("number") {
        "2"
    } else {
        return n
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
            .collect();
    };
    v.to_string()
}

/// `text` with its shell variables (`$X`, `${X}`, `${X:-d}`), command substitutions
/// (`$(…)`, backquotes) and special parameters (`$?`, `$1`) replaced by values, except
/// inside single quotes, where the shell expands nothing.
fn expand_shell(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut single = false;
    while i < c.len() {
        let ch = c[i];
        if ch == '\'' && !in_double(&c, i) {
            single = !single;
            out.push(ch);
            i += 1;
            continue;
        }
        if single {
            out.push(ch);
            i += 1;
            continue;
        }
        if ch == '\\' && i + 1 < c.len() {
            out.push(ch);
            out.push(c[i + 1]);
            i += 2;
            continue;
        }
        if ch == '`' {
            let end = c[i + 1..]
                .iter()
                .position(|&x| x == '`')
                .map_or(c.len(), |p| i + 1 + p + 1);
            out.push_str(&value_for("output"));
            i = end;
            continue;
        }
        if ch != '$' || i + 1 >= c.len() {
            out.push(ch);
            i += 1;
            continue;
        }
        let next = c[i + 1];
        if next == '(' || next == '{' {
            let close = if next == '(' { ')' } else { '}' };
            let mut depth = 0;
            let mut j = i + 1;
            while j < c.len() {
                if c[j] == next {
                    depth += 1;
                } else if c[j] == close {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                j += 1;
            }
            let inner: String = c[i + 2..j.min(c.len())].iter().collect();
            if next == '(' {
                out.push_str(&value_for("output"));
            } else {
                // `${X:-default}`, `${params.CHANGE}` (Groovy): the name is X, CHANGE.
                let name = inner
                    .split(|x: char| !(x.is_alphanumeric() || x == '_' || x == '.'))
                    .next()
                    .unwrap_or_default();
                out.push_str(&value_for(name.rsplit('.').next().unwrap_or(name)));
            }
            i = j + 1;
        } else if next.is_alphabetic() || next == '_' {
            let mut j = i + 1;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let name: String = c[i + 1..j].iter().collect();
            out.push_str(&value_for(&name));
            i = j;
        } else if next.is_ascii_digit() || "?#$!@*-".contains(next) {
            out.push('0');
            i += 2;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

/// Whether `c[i]` is inside double quotes (a single quote there is a plain character).
fn in_double(c: &[char], i: usize) -> bool {
    let mut double = false;
    let mut single = false;
    let mut k = 0;
    while k < i {
        match c[k] {
            '\\' if !single => k += 1,
            '"' if !single => double = !double,
            '\'' if !double => single = !single,
            _ => {}
        }
        k += 1;
    }
    double
}

/// How one command of a script ended: what joins it to the next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sep {
    Pipe,
    Other,
}

/// A shell script's simple commands, in order, each with the separator after it and the
/// number of lines before it in the script: split at
/// newlines, `;`, `&`, `|`, `&&` and `||` outside quotes, `$(…)` and backquotes; a backslash
/// before a newline continues the line; `#` at the start of a word opens a comment.
fn shell_commands(script: &str) -> Vec<(String, Sep, usize)> {
    let c: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    // Newlines seen so far, and where the current command started.
    let (mut nl, mut start) = (0, 0);
    let (mut single, mut double, mut back) = (false, false, false);
    let mut paren = 0usize;
    let mut i = 0;
    let push = |cur: &mut String, sep: Sep, start: usize, out: &mut Vec<(String, Sep, usize)>| {
        if !cur.trim().is_empty() {
            out.push((cur.trim().to_string(), sep, start));
        }
        cur.clear();
    };
    while i < c.len() {
        let ch = c[i];
        if cur.trim().is_empty() {
            start = nl;
        }
        if ch == '\n' || (ch == '\\' && c.get(i + 1) == Some(&'\n')) {
            nl += 1;
        }
        let quoted = single || double || back || paren > 0;
        match ch {
            '\\' if !single && i + 1 < c.len() => {
                if c[i + 1] == '\n' {
                    cur.push(' ');
                } else {
                    cur.push(ch);
                    cur.push(c[i + 1]);
                }
                i += 2;
                continue;
            }
            '\'' if !double && !back => single = !single,
            '"' if !single && !back => double = !double,
            '`' if !single => back = !back,
            '(' if !single && i > 0 && c[i - 1] == '$' => paren += 1,
            ')' if !single && paren > 0 => paren -= 1,
            '#' if !quoted && (cur.is_empty() || cur.ends_with(char::is_whitespace)) => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\n' | ';' if !quoted => {
                push(&mut cur, Sep::Other, start, &mut out);
                i += 1;
                continue;
            }
            '|' | '&' if !quoted => {
                let double_op = c.get(i + 1) == Some(&ch);
                let sep = if ch == '|' && !double_op {
                    Sep::Pipe
                } else {
                    Sep::Other
                };
                // `2>&1`, `>&2`: a redirection, not a separator.
                if ch == '&' && !double_op && (cur.ends_with('>') || cur.ends_with('<')) {
                    cur.push(ch);
                    i += 1;
                    continue;
                }
                push(&mut cur, sep, start, &mut out);
                i += if double_op { 2 } else { 1 };
                continue;
            }
            _ => {}
        }
        cur.push(ch);
        i += 1;
    }
    push(&mut cur, Sep::Other, start, &mut out);
    out
}

/// The words of one simple command as the shell runs it: variables expanded to values,
/// quotes removed, and without what is not the program's arguments: leading keywords (`then`,
/// `do`, `!`), variable assignments (`X=1 fci …`) and redirections (`> file`, `2>/dev/null`).
fn words(command: &str) -> Option<Vec<String>> {
    let mut w = shlex::split(&expand_shell(command))?;
    const KEYWORDS: &[&str] = &[
        "then", "do", "else", "if", "elif", "while", "until", "!", "{", "(", "time", "exec",
        "command",
    ];
    while let Some(first) = w.first() {
        let assignment = first.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        if KEYWORDS.contains(&first.as_str()) || assignment {
            w.remove(0);
        } else {
            break;
        }
    }
    let mut out = Vec::new();
    let mut it = w.into_iter();
    while let Some(word) = it.next() {
        let op = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '&');
        if op.starts_with('>') || op.starts_with('<') {
            let target = op.trim_start_matches(['>', '<', '&']);
            if target.is_empty() {
                it.next();
            }
            continue;
        }
        out.push(word);
    }
    Some(out)
}

/// The fci invocations of one shell script found at token `at` (line `line`) of `file`.
fn from_script(file: &str, at: usize, line: usize, script: &str, out: &mut Vec<Invocation>) {
    let commands = shell_commands(script);
    for (k, (command, sep, lines_before)) in commands.iter().enumerate() {
        let line = line + lines_before;
        let Some(w) = words(command) else {
            panic!("{file}:{line}: cannot split `{command}` into words (unclosed quote?)");
        };
        if w.first().map(String::as_str) != Some("fci") || w.len() < 2 {
            continue;
        }
        let piped_in = k > 0 && commands[k - 1].1 == Sep::Pipe;
        out.push(Invocation {
            origin: format!("{file}:{line}"),
            at,
            argv: w,
            piped_in,
            piped_out: *sep == Sep::Pipe,
        });
    }
}

/// Buildbot's renderable placeholders in a string (`%(prop:manifest)s`, `%(kw:x)s`,
/// `%(worker:basedir)s`, `%(src::branch)s`) replaced by values.
fn expand_interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(p) = rest.find("%(") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let Some(end) = after.find(")s") else {
            out.push_str(&rest[p..]);
            return out;
        };
        let inner = &after[..end];
        // `prop:name`, `prop:name:-default`, `src:codebase:attr`: the name is the last part
        // before any default.
        let name = inner.split(":-").next().unwrap_or(inner);
        out.push_str(&value_for(name.rsplit(':').next().unwrap_or(name)));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The end (exclusive) of the bracketed group opening at `toks[open]`.
fn matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// The argv of a list literal opening at `toks[open]` whose first element is `'fci'`, or
/// `None` when it is a template fci's command line cannot be checked from (its subcommand
/// is not a literal, or it splices another list in with `*`).
fn from_list(toks: &[Token], open: usize) -> Option<Vec<String>> {
    let end = matching(toks, open);
    let inner = &toks[open + 1..end - 1];
    let mut elements: Vec<&[Token]> = Vec::new();
    let (mut from, mut depth) = (0, 0);
    for (k, t) in inner.iter().enumerate() {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                elements.push(&inner[from..k]);
                from = k + 1;
            }
            _ => {}
        }
    }
    if from < inner.len() {
        elements.push(&inner[from..]);
    }
    let mut argv = Vec::new();
    for (k, e) in elements.iter().enumerate() {
        let value = match e {
            [] => continue,
            [Token {
                tok: Tok::Ident(i), ..
            }] if k == 0 && i == "FCI" => "fci".to_string(),
            [Token {
                tok: Tok::Str(s), ..
            }] => expand_interpolate(s),
            _ if k <= 1 => return None,
            [Token {
                tok: Tok::Punct('*'),
                ..
            }, ..] => return None,
            _ => {
                // A renderable or a name: `util.Interpolate('%(prop:manifest)s')` renders its
                // string; `util.Property('manifest')`, a Python variable: a value by name.
                let strings: Vec<&String> = e
                    .iter()
                    .filter_map(|t| match &t.tok {
                        Tok::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                let idents: Vec<&String> = e
                    .iter()
                    .filter_map(|t| match &t.tok {
                        Tok::Ident(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                let interpolate = idents
                    .iter()
                    .any(|i| *i == "Interpolate" || *i == "WithProperties");
                match (strings.first(), idents.last()) {
                    (Some(s), _) if interpolate => expand_interpolate(s),
                    (Some(s), _) => value_for(s),
                    (None, Some(i)) => value_for(i),
                    (None, None) => return None,
                }
            }
        };
        argv.push(value);
    }
    Some(argv)
}

/// Every fci invocation in `src` (the file `file`), and the lists skipped as templates.
fn extract(file: &str, src: &str, lang: Lang) -> (Vec<Invocation>, Vec<String>) {
    let toks = lex(src, lang);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let ident = |k: usize, name: &str| matches!(toks.get(k), Some(Token { tok: Tok::Ident(i), .. }) if i == name);
    let punct = |k: usize, p: char| matches!(toks.get(k), Some(Token { tok: Tok::Punct(c), .. }) if *c == p);
    for (k, t) in toks.iter().enumerate() {
        match &t.tok {
            Tok::Punct('[') => {
                // `'fci'`, or `FCI`: a variable holding fci's path (examples/buildbot).
                let first = match toks.get(k + 1) {
                    Some(Token {
                        tok: Tok::Str(s), ..
                    }) => Some(s.as_str()),
                    Some(Token {
                        tok: Tok::Ident(i), ..
                    }) if i == "FCI" => Some("fci"),
                    _ => None,
                };
                if let Some(first) = first {
                    if first == "fci" {
                        match from_list(&toks, k) {
                            Some(argv) => out.push(Invocation {
                                origin: format!("{file}:{}", t.line),
                                at: k,
                                argv,
                                piped_in: false,
                                piped_out: false,
                            }),
                            None => skipped.push(format!("{file}:{}", t.line)),
                        }
                    }
                }
            }
            Tok::Str(s) if k > 0 => {
                let script = match lang {
                    // `sh '…'`, `sh(…'…')`, `sh script: '…'`, `sh(label: …, script: '…')`.
                    Lang::Groovy => {
                        let direct = ident(k - 1, "sh")
                            || (punct(k - 1, '(') && k >= 2 && ident(k - 2, "sh"));
                        let keyword = punct(k - 1, ':')
                            && k >= 2
                            && ident(k - 2, "script")
                            && (k.saturating_sub(12)..k).any(|j| ident(j, "sh"));
                        (direct || keyword).then(|| s.clone())
                    }
                    // `command='…'`, `util.Interpolate('…')`.
                    Lang::Python => {
                        let command = punct(k - 1, '=') && k >= 2 && ident(k - 2, "command");
                        let interpolate = punct(k - 1, '(')
                            && k >= 2
                            && (ident(k - 2, "Interpolate") || ident(k - 2, "WithProperties"));
                        if command {
                            Some(s.clone())
                        } else if interpolate {
                            Some(expand_interpolate(s))
                        } else {
                            None
                        }
                    }
                };
                if let Some(script) = script {
                    from_script(file, k, t.line, &script, &mut out);
                }
            }
            _ => {}
        }
    }
    (out, skipped)
}

/// Whether `argv` is a command line fci accepts: parsed by fci's own clap definition, never
/// run. `Err` says why not, as fci itself would.
fn check(argv: &[String]) -> Result<(), String> {
    match fci::cli::command().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.render().to_string()),
    }
}

/// Every invocation's failure to parse, one line each (with clap's message).
fn failures(invocations: &[Invocation]) -> Vec<String> {
    invocations
        .iter()
        .filter_map(|inv| {
            check(&inv.argv)
                .err()
                .map(|e| format!("{}\n    {}", inv.shown(), e.trim().replace('\n', "\n    ")))
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Option<String> {
    std::fs::read_to_string(root().join(rel)).ok()
}

/// The per-change pipeline's stages, in order (the report apart: it runs in `post`).
const CHAIN: &[&str] = &["build", "test", "compose", "integrate", "image", "smoke"];

fn jenkinsfile() -> (String, Vec<Invocation>) {
    let rel = "examples/jenkins/Jenkinsfile";
    let src = read(rel).expect("examples/jenkins/Jenkinsfile");
    let (found, skipped) = extract(rel, &src, Lang::Groovy);
    assert!(skipped.is_empty(), "{skipped:?}");
    (src, found)
}

#[test]
fn every_fci_command_in_the_jenkinsfile_is_a_valid_invocation() {
    let (_, found) = jenkinsfile();
    for inv in &found {
        eprintln!("checking {}", inv.shown());
    }
    // Not vacuous: the watch (message and poll), the six stages and the report (two ways).
    assert!(found.len() >= 10, "found only {found:#?}");
    for sub in ["watch", "report"].iter().chain(CHAIN) {
        assert!(
            found.iter().any(|i| i.subcommand() == *sub),
            "no `fci {sub}` found in the Jenkinsfile: {found:#?}"
        );
    }
    let bad = failures(&found);
    assert!(
        bad.is_empty(),
        "the Jenkinsfile runs fci commands the CLI refuses:\n{}",
        bad.join("\n")
    );
}

/// Buildbot's master.cfg (issue 17, item 2), when it is in the tree.
#[test]
fn every_fci_command_in_the_buildbot_config_is_a_valid_invocation() {
    let rel = "examples/buildbot/master.cfg";
    let Some(src) = read(rel) else {
        eprintln!("{rel}: not in the tree; nothing to check");
        return;
    };
    let (found, skipped) = extract(rel, &src, lang_of(Path::new(rel)));
    eprintln!(
        "{rel}: {} fci invocation(s) checked; {} list(s) built at run time skipped {skipped:?}",
        found.len(),
        skipped.len()
    );
    assert!(
        !found.is_empty(),
        "{rel}: no fci command found (as `command='fci …'`, util.Interpolate('fci …') or a list \
         ['fci', …]); if it writes them another way, teach tests/scheduler_configs.rs to read it"
    );
    let bad = failures(&found);
    assert!(
        bad.is_empty(),
        "{rel} runs fci commands the CLI refuses:\n{}",
        bad.join("\n")
    );
}

/// The chain: the build reads the change (`-m`, the manifest fci watch wrote); every stage
/// after it reads the manifest the stage before it wrote (`-m FILE`, or stdin through a
/// pipe); each writes its own to a file (`-o`) so that a failed stage still leaves one; and
/// the report, in `post` (so that it runs whatever stopped the run), reads the last of them,
/// chosen from the list of exactly those files, in order, with its JUnit file given to
/// Jenkins' `junit` step and its HTML page archived.
#[test]
fn the_jenkinsfile_chains_its_stages_and_reports_in_post() {
    let (src, found) = jenkinsfile();
    let toks = lex(&src, Lang::Groovy);
    let stages: Vec<&Invocation> = found
        .iter()
        .filter(|i| CHAIN.contains(&i.subcommand()))
        .collect();
    let order: Vec<&str> = stages.iter().map(|i| i.subcommand()).collect();
    assert_eq!(order, CHAIN, "the stages, in order, each once");
    let build = stages[0];
    assert!(
        build.flag("--manifest", Some("-m")).is_some(),
        "the build reads the change: {}",
        build.shown()
    );
    let mut outputs = Vec::new();
    for (k, inv) in stages.iter().enumerate() {
        let out = inv.flag("--output", Some("-o"));
        assert!(
            out.is_some_and(|o| o != "-"),
            "{}: a stage writes its manifest to a file (-o), which stays when it fails",
            inv.shown()
        );
        if k > 0 {
            let reads = inv.flag("--manifest", Some("-m"));
            let prev = stages[k - 1].flag("--output", Some("-o"));
            let from_file = reads.is_some() && reads != Some("-") && reads == prev;
            let from_pipe = inv.piped_in && matches!(reads, None | Some("-"));
            assert!(
                from_file || from_pipe,
                "{}: does not read what `fci {}` wrote ({prev:?})",
                inv.shown(),
                stages[k - 1].subcommand()
            );
        }
        outputs.push(out.unwrap().to_string());
    }
    // The pipeline-level `post`: the last `post {` of the file.
    let post = (0..toks.len())
        .rev()
        .find(|&k| {
            toks[k].tok == Tok::Ident("post".into())
                && toks.get(k + 1).map(|t| &t.tok) == Some(&Tok::Punct('{'))
        })
        .expect("a post section");
    let reports: Vec<&Invocation> = found
        .iter()
        .filter(|i| i.subcommand() == "report")
        .collect();
    assert!(
        reports.iter().any(|r| r.has("--promote")),
        "the change is promoted (or excluded): {reports:#?}"
    );
    for r in &reports {
        assert!(
            r.at > post,
            "{}: not in post, so a failure skips it",
            r.shown()
        );
        assert!(
            r.flag("--manifest", Some("-m")).is_some() || r.piped_in,
            "{}: reads no manifest",
            r.shown()
        );
        for (flag, short) in [
            ("--gating", None),
            ("--junit", None),
            ("--html", None),
            ("--output", Some("-o")),
        ] {
            assert!(r.flag(flag, short).is_some(), "{}: no {flag}", r.shown());
        }
    }
    // The list the report's manifest is picked from: a list literal in post whose strings
    // are the stages' outputs, in the stages' order.
    let lists: Vec<Vec<String>> = (post..toks.len())
        .filter(|&k| toks[k].tok == Tok::Punct('['))
        .map(|k| {
            toks[k + 1..matching(&toks, k) - 1]
                .iter()
                .filter_map(|t| match &t.tok {
                    Tok::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    assert!(
        lists.contains(&outputs),
        "post picks the last manifest from a list that is not the stages' outputs {outputs:?}: {lists:?}"
    );
    // Jenkins is given the JUnit file and archives the page and the manifests.
    let junit = reports[0].flag("--junit", None).unwrap();
    let html = reports[0].flag("--html", None).unwrap();
    let step_with = |step: &str, what: &str| {
        (post..toks.len()).any(|k| {
            toks[k].tok == Tok::Ident(step.into())
                && toks[k + 1..(k + 6).min(toks.len())]
                    .iter()
                    .any(|t| matches!(&t.tok, Tok::Str(s) if s.contains(what)))
        })
    };
    assert!(step_with("junit", junit), "no junit step on {junit}");
    assert!(step_with("archiveArtifacts", html), "{html} not archived");
    assert!(
        step_with("archiveArtifacts", "fci-*.json"),
        "manifests not archived"
    );
}

/// `groovyc` (Debian's `groovy`, setup.sh) compiling `file` (a copy named `*.groovy`) into a
/// scratch directory: `Err` with its message when it does not compile. Compiling checks the
/// syntax alone: the steps (`sh`, `junit`) are method calls Groovy resolves only when run.
fn groovyc(name: &str, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(format!("{name}.groovy"));
    std::fs::write(&src, text).unwrap();
    let mut cmd = std::process::Command::new("groovyc");
    cmd.arg("-d").arg(dir.path().join("classes")).arg(&src);
    // Debian's groovyc runs /usr/lib/jvm/default-java unless JAVA_HOME says otherwise, and a
    // JDK installed without default-jre has no such link: the JDK of `java` on PATH then.
    let default = Path::new("/usr/lib/jvm/default-java/bin/java");
    if std::env::var_os("JAVA_HOME").is_none() && !default.exists() {
        if let Ok(java) = which_java() {
            cmd.env("JAVA_HOME", java);
        }
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("groovyc: {e}: install groovy (./setup.sh --deps-only installs it)")
    });
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The JDK home of the `java` on PATH (`…/bin/java`, symlinks resolved).
fn which_java() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let java = std::env::split_paths(&path)
        .map(|d| d.join("java"))
        .find(|j| j.is_file())
        .ok_or("no java on PATH")?;
    let real = java.canonicalize().map_err(|e| e.to_string())?;
    Ok(real
        .parent()
        .and_then(Path::parent)
        .ok_or("java is not in a bin/ directory")?
        .to_path_buf())
}

/// The Jenkinsfile is Groovy that compiles (Groovy 2.4, the line Jenkins runs pipelines on);
/// the same check refuses a Jenkinsfile with a brace missing.
#[test]
fn the_jenkinsfile_compiles_as_groovy() {
    let src = read("examples/jenkins/Jenkinsfile").unwrap();
    if let Err(e) = groovyc("Jenkinsfile", &src) {
        panic!("examples/jenkins/Jenkinsfile does not compile:\n{e}");
    }
    let broken = src.replacen("steps { sh 'fci test", "steps  sh 'fci test", 1);
    assert_ne!(broken, src);
    let e = groovyc("Jenkinsfile", &broken).expect_err("a missing brace compiled");
    assert!(e.contains("Jenkinsfile.groovy"), "{e}");
}

// The checker itself: it must refuse what fci refuses, or the tests above prove nothing.

/// A line with a flag fci does not have, a bad value, a misspelt subcommand: each refused,
/// through the same extraction and check as the real files.
#[test]
fn the_checker_refuses_a_flag_a_value_or_a_subcommand_fci_does_not_have() {
    let bad = r#"
pipeline {
  stages {
    stage('x') {
      steps {
        sh 'fci build -m fci-change.json --no-such-flag -o fci-build.json'
        sh '''
          fci image -m "$CHANGE" --interval soon -o fci-image.json
          fci bild -m fci-change.json
          fci test -m fci-build.json --runner pytest | fci report --junit r.xml
        '''
      }
    }
  }
}
"#;
    let (found, _) = extract("bad.Jenkinsfile", bad, Lang::Groovy);
    let argvs: Vec<String> = found.iter().map(|i| i.argv.join(" ")).collect();
    assert_eq!(
        argvs,
        [
            "fci build -m fci-change.json --no-such-flag -o fci-build.json",
            "fci image -m fci-build.json --interval soon -o fci-image.json",
            "fci bild -m fci-change.json",
            "fci test -m fci-build.json --runner pytest",
            "fci report --junit r.xml",
        ]
    );
    let errors: Vec<Option<String>> = found.iter().map(|i| check(&i.argv).err()).collect();
    for (inv, err) in found.iter().zip(&errors).take(4) {
        assert!(err.is_some(), "accepted: {}", inv.shown());
    }
    assert!(errors[0].as_ref().unwrap().contains("--no-such-flag"));
    assert!(errors[1].as_ref().unwrap().contains("soon"));
    assert!(errors[2].as_ref().unwrap().contains("bild"));
    assert!(errors[3].as_ref().unwrap().contains("pytest"));
    // The last one is fine, and it reads the test's manifest through the pipe.
    assert_eq!(errors[4], None);
    assert!(found[3].piped_out && found[4].piped_in);
    assert_eq!(failures(&found).len(), 4);
}

/// The same line in a Jenkinsfile passes only once it is right: the checker is not refusing
/// everything.
#[test]
fn the_checker_accepts_the_same_lines_once_they_are_right() {
    let good = r#"sh 'fci build -m fci-change.json --nocheck -o fci-build.json'
sh(label: 'image', script: 'fci image -m "${CHANGE}" --interval 1h30m -o fci-image.json')
// sh 'fci bundle -m x' in a comment is not a command; nor is a string outside sh:
echo 'fci bild is not run'
"#;
    let (found, _) = extract("good.Jenkinsfile", good, Lang::Groovy);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(failures(&found), Vec::<String>::new());
}

/// Buildbot's ways of writing a command: a list with renderables, a `command=` string, an
/// Interpolate'd one; a bad flag in any of them is refused; a list built at run time is
/// skipped, not guessed.
#[test]
fn the_checker_reads_buildbot_lists_and_strings() {
    let cfg = r#"
# the worker's basedir: 'quoted' in a comment opens nothing
factory.addStep(steps.ShellCommand(
    name='build', description='fci build running',
    command=['fci', 'build', '-m', util.Interpolate('%(prop:manifest)s'), '-o', 'build.json'],
    env={'FCI_STATE': '/srv/fci-state'}))
factory.addStep(steps.ShellCommand(command=['fci', 'test', '-m', 'build.json', '--retries', util.Property('retries'), '-o', 'test.json']))
factory.addStep(steps.ShellCommand(command='fci compose -m test.json -o compose.json'))
factory.addStep(steps.ShellCommand(command=util.Interpolate('fci report -m %(prop:last)s --junit-file r.xml')))
factory.addStep(steps.ShellCommand(command=['fci', *stage_args]))
"#;
    let (found, skipped) = extract("master.cfg", cfg, Lang::Python);
    let argvs: Vec<String> = found.iter().map(|i| i.argv.join(" ")).collect();
    assert_eq!(
        argvs,
        [
            "fci build -m fci-build.json -o build.json",
            "fci test -m build.json --retries 2 -o test.json",
            "fci compose -m test.json -o compose.json",
            "fci report -m fci-build.json --junit-file r.xml",
        ]
    );
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    let bad = failures(&found);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(bad[0].contains("--junit-file"), "{bad:#?}");
}
