//! Macros left unexpanded in what a build made: rpm keeps the text of a macro it does not
//! know (`%systemd_post acpid.socket`) and builds on, so a package whose scriptlets or file
//! list hold one installs a scriptlet that fails, or does nothing, on every machine. Read from
//! the built packages' headers (`rpm -qp`), after a build that passed.

use crate::exec::{Cmd, Log};
use anyhow::Result;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A macro's text found in a built package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The macro as it was written (`%systemd_post`, `%{_unitdir}`).
    pub text: String,
    /// Where: `the %post scriptlet`, `a %triggerin scriptlet`, `the file list`.
    pub place: String,
    /// The package's NEVRA, as rpm names it.
    pub package: String,
}

impl Found {
    /// The note of the FAILED build: what, where, and whose doing.
    pub fn note(&self) -> String {
        format!(
            "unexpanded macro {} in {} of {}: the build environment does not define it, so rpm left its text in the package (a macro package the spec needs is missing, or the name is misspelled)",
            self.text, self.place, self.package
        )
    }
}

/// The scriptlets every package header may hold, by tag, with the section that wrote each.
const SCRIPTLETS: [(&str, &str); 7] = [
    ("PRETRANS", "%pretrans"),
    ("PREIN", "%pre"),
    ("POSTIN", "%post"),
    ("PREUN", "%preun"),
    ("POSTUN", "%postun"),
    ("POSTTRANS", "%posttrans"),
    ("VERIFYSCRIPT", "%verifyscript"),
];

/// What a header's text is, for what its `%` can mean: a scriptlet the shell runs (which
/// prints formats and may pass rpm a query format), or a path of the file list (which
/// holds neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Script,
    Path,
}

/// The arrays of a header that hold package text, with how a finding names its place. A
/// symlink's target (`ln -s %{_bogus_dir}/x`) is shipped as written, as a file name is.
const ARRAYS: [(&str, &str, Kind); 5] = [
    ("TRIGGERSCRIPTS", "a %trigger scriptlet", Kind::Script),
    (
        "FILETRIGGERSCRIPTS",
        "a %filetrigger scriptlet",
        Kind::Script,
    ),
    (
        "TRANSFILETRIGGERSCRIPTS",
        "a %transfiletrigger scriptlet",
        Kind::Script,
    ),
    ("FILENAMES", "the file list", Kind::Path),
    (
        "FILELINKTOS",
        "a symlink target in the file list",
        Kind::Path,
    ),
];

/// Every unexpanded macro in the binary packages `pkgs` (source packages are skipped: they
/// hold no scriptlets), in the packages' order. rpm prints each value shell-quoted
/// (`:shescape`), so a scriptlet's newlines and quotes cannot shift what is read as what.
/// A package rpm cannot read is not this build's: the caller's `NotTheBuilds`.
pub fn find(pkgs: &[PathBuf], log: &mut Log) -> Result<Vec<Found>> {
    let tags = Tags::of_host(log)?;
    let binaries: Vec<&PathBuf> = pkgs
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with(".src.rpm"))
        .collect();
    let mut found = Vec::new();
    // A few hundred at a time, as `spec::headers`: the kernel bounds a command line.
    for chunk in binaries.chunks(256) {
        let fixed: String = std::iter::once("%{NEVRA:shescape}".to_string())
            .chain(
                SCRIPTLETS
                    .iter()
                    .map(|(t, _)| format!(" %{{{t}:shescape}}")),
            )
            .chain(std::iter::once("\n".to_string()))
            .collect();
        let words = query(chunk, &fixed, log)?;
        for row in words.chunks(SCRIPTLETS.len() + 1) {
            let (package, scripts) = row.split_first().expect("chunks are never empty");
            for ((_, section), script) in SCRIPTLETS.iter().zip(scripts) {
                // An absent scriptlet is rpm's bare `(none)`.
                found.extend(
                    macros_in(script, Kind::Script, tags)
                        .into_iter()
                        .map(|text| Found {
                            text,
                            place: format!("the {section} scriptlet"),
                            package: package.clone(),
                        }),
                );
            }
        }
        for (tag, place, kind) in ARRAYS {
            let words = query(
                chunk,
                &format!("[%{{=NEVRA:shescape}} %{{{tag}:shescape}}\n]"),
                log,
            )?;
            for pair in words.chunks(2) {
                // A file that is no symlink has an empty target.
                if let [package, text] = pair {
                    found.extend(macros_in(text, kind, tags).into_iter().map(|m| Found {
                        text: m,
                        place: place.to_string(),
                        package: package.clone(),
                    }));
                }
            }
        }
    }
    // One finding per macro and place is enough to name it.
    let mut seen = std::collections::HashSet::new();
    found.retain(|f| seen.insert((f.text.clone(), f.place.clone(), f.package.clone())));
    Ok(found)
}

/// The names of rpm's query-format tags (`NAME`, `FILENAMES`), as `rpm --querytags` lists
/// them: a braced name among them, in either case, in a scriptlet that passes rpm a query
/// format (`--qf`, `--queryformat`) somewhere, is a tag of a query format kept apart from
/// rpm's command line (`fmt='%%{NAME}\n'; rpm -q --qf "$fmt"`), not a macro. Anywhere else
/// it is a macro: rpmbuild does not define every tag (`%{arch}` never, `%{url}` only with a
/// `URL:` line), and the file list holds no query formats.
#[derive(Debug, Clone, Default)]
pub struct Tags(HashSet<String>);

impl Tags {
    /// The tags of `rpm --querytags`' output, one a line.
    pub fn parse(listing: &str) -> Self {
        Tags(
            listing
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
        )
    }

    /// Whether `name` is a tag, compared without case.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(&name.to_ascii_lowercase())
    }

    /// The host rpm's tags, asked once per process: they are the same for every build. An
    /// rpm that cannot list them is the host's failure (ERROR), not the package's.
    fn of_host(log: &mut Log) -> Result<&'static Tags> {
        static HOST: OnceLock<Tags> = OnceLock::new();
        if let Some(tags) = HOST.get() {
            return Ok(tags);
        }
        let out = log.capture_ok(
            &Cmd::new("rpm").c_locale().arg("--querytags"),
            "the host's rpm cannot list its query-format tags (rpm --querytags), needed to tell them from unexpanded macros",
        )?;
        let tags = Tags::parse(&out.stdout);
        // A listing without NAME is no listing of rpm's tags: every tag would read as a macro.
        if !tags.contains("NAME") {
            return Err(crate::error::FciError::Infra(
                "the host's `rpm --querytags` lists no NAME tag: its output is not rpm's tag list"
                    .into(),
            )
            .into());
        }
        Ok(HOST.get_or_init(|| tags))
    }
}

/// `rpm -qp --qf FORMAT` over `pkgs`, split into the words rpm quoted.
fn query(pkgs: &[&PathBuf], format: &str, log: &mut Log) -> Result<Vec<String>> {
    let out = log.capture(
        &Cmd::new("rpm")
            .c_locale()
            .args(["-qp", "--nosignature", "--nodigest", "--qf", format, "--"])
            .args(pkgs.iter().copied()),
    )?;
    let out = out.checked().map_err(|f| {
        super::repo::NotTheBuilds(format!(
            "rpm cannot read the build's packages (package code put files that are not packages there?): {f}"
        ))
    })?;
    shlex::split(&out.stdout).ok_or_else(|| {
        super::repo::NotTheBuilds(
            "rpm's quoted output of the build's packages does not parse".into(),
        )
        .into()
    })
}

/// The macros whose text is in `text`, a scriptlet or a path (`kind`).
///
/// In a scriptlet: `%{name}`, `%{?name}`, `%{!?name:...}` always, unless the name is one of
/// rpm's `tags` and the scriptlet passes rpm a query format; a bare `%name` only where it
/// cannot be something else that scriptlets print: a printf or date conversion (`%s`,
/// `%-10s`, `%1$s`, `%lu`, `%Y`, `%s_%d`) or bash's suffix removal (`${f%.conf}`,
/// `${name%suffix}`).
///
/// In a path: a braced name always; a bare `%name` only when the name starts with `_`, as
/// every path macro of rpm's does (`%_datadir`, `%_libdir`): a file may be named with a
/// literal `%` (GConf's `%%gconf-tree.xml`, which ships as `%gconf-tree.xml`).
///
/// `%%` is a literal `%` in both.
pub fn macros_in(text: &str, kind: Kind, tags: &Tags) -> Vec<String> {
    // A tag is a query format's only where the scriptlet hands rpm one, on any of its lines
    // (`fmt='%%{NAME}'` may be set lines before `rpm -q --qf "$fmt"`).
    let passes_query_format =
        kind == Kind::Script && (text.contains("--qf") || text.contains("--queryformat"));
    let b = text.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        // A run of %: pairs are literal percent signs; only an odd one out starts a macro.
        let run = b[i..].iter().take_while(|&&c| c == b'%').count();
        let at = i + run - 1;
        i += run;
        if run % 2 == 0 {
            continue;
        }
        let braced = b.get(at + 1) == Some(&b'{');
        let mut start = at + 1 + usize::from(braced);
        if braced {
            while matches!(b.get(start), Some(b'?' | b'!')) {
                start += 1;
            }
        }
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let first_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok {
            continue;
        }
        let in_word = at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        let keep = match (kind, braced) {
            // `${var%{x}}` is bash's, not rpm's; `rpm -q --qf '%{VERSION}'` (written
            // `%%{VERSION}` in the spec) is a query format, which rpm expands at run time.
            (Kind::Script, true) => {
                let bash_parameter = in_word && inside_parameter(&text[..at]);
                let query_format_tag = passes_query_format && tags.contains(&name);
                !bash_parameter && !in_query_format(text, at) && !query_format_tag
            }
            (Kind::Script, false) => {
                !in_word
                    && !looks_like_a_format(&name)
                    && !in_query_format(text, at)
                    && !ps_column(text, at, &name)
            }
            (Kind::Path, true) => true,
            // rpm defines no macro of fewer than three characters (`%_x` is a file's name).
            (Kind::Path, false) => name.starts_with('_') && name.len() >= 3,
        };
        if keep {
            let shown = if braced {
                let end = text[at..].find('}').map_or(text.len(), |e| at + e + 1);
                // The name alone when the braces hold more (`%{?foo:bar}` is `%{?foo}`).
                if end - at <= name.len() + 4 {
                    text[at..end].to_string()
                } else {
                    format!("%{{{name}}}")
                }
            } else {
                format!("%{name}")
            };
            if !out.contains(&shown) {
                out.push(shown);
            }
        }
    }
    out
}

/// Whether the `%` at `at` is on a line that gives rpm a query format (`--qf`,
/// `--queryformat`) or a macro to expand when the scriptlet runs (`rpm -E`, `rpm --eval`),
/// or perl code (whose `%hash` is no macro) before it.
fn in_query_format(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    let before = &text[line_start..at];
    let rpm_eval = before.contains("rpm ")
        && before
            .split_whitespace()
            .any(|w| w == "-E" || w == "--eval" || w.starts_with("--eval="));
    before.contains("--qf")
        || before.contains("--queryformat")
        || rpm_eval
        || before
            .split_whitespace()
            .any(|w| w == "perl" || w.ends_with("/perl"))
}

/// Whether the bare `%name` at `at` is one of ps's column names that start with `%` (`%cpu`,
/// `%mem`) on a line that runs ps with an output format (`ps -o %cpu,%mem`, `ps -eo pid,%cpu`,
/// `ps --format`). Only those two: a ps command on the line does not hide any other macro
/// (`if ps -o pid= -C d; then systemctl try-restart %{service_nme}.service; fi`).
fn ps_column(text: &str, at: usize, name: &str) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    matches!(name, "cpu" | "mem") && in_ps_format(&text[line_start..at])
}

/// Whether `before` (a line up to a `%`) runs ps with an output format.
fn in_ps_format(before: &str) -> bool {
    let words: Vec<&str> = before.split_whitespace().collect();
    // `$(ps`, `|ps`, `x=$(/bin/ps`: the command word after what precedes it.
    let command = |w: &&str| {
        let w = w.rsplit(['(', '|', ';', '`', '&', '=']).next().unwrap_or(w);
        w == "ps" || w.ends_with("/ps")
    };
    words.iter().any(command)
        && words.iter().any(|w| {
            w.starts_with("--format")
                || w.starts_with("-o")
                || w.starts_with("-O")
                || (w.starts_with('-') && !w.starts_with("--") && w.ends_with('o'))
        })
}

/// Whether the text before a `%` ends inside an unclosed `${` (bash parameter expansion).
fn inside_parameter(before: &str) -> bool {
    before
        .rfind("${")
        .is_some_and(|p| !before[p..].contains('}'))
}

/// A bare `%name` that reads as a printf or strftime conversion rather than a macro: one or
/// two letters (`%s`, `%Y`, `%Ey`), a length modifier and a conversion (`%lu`, `%lld`,
/// `%zu`, `%hhx`), or a one-letter conversion glued to `_` or a capital (`%s_%s`, `%dT%H`):
/// macros' names are longer, and lower case after their first letter.
fn looks_like_a_format(name: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    match n.as_slice() {
        // `%s`, `%Y`, `%Ey`, `%dx%d` (1024x768): rpm's macros have longer names.
        [_] | [_, _] => true,
        // `%dT%H` (a date), `%sMB`, `%s_%s`: a conversion glued to what follows it.
        // (Never a name that starts with `_`, as rpm's internal macros do: `%__python3`.)
        [f, c, ..] if *f != '_' && (*c == '_' || c.is_ascii_uppercase()) => true,
        _ => name
            .strip_prefix("hh")
            .or_else(|| name.strip_prefix("ll"))
            .or_else(|| name.strip_prefix(['h', 'l', 'j', 'z', 't', 'L', 'q']))
            .is_some_and(|r| r.len() == 1 && "diouxXeEfFgGaAcspn".contains(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few of rpm's tags, as `rpm --querytags` prints them: a fixed set, so that the
    /// tests do not depend on the host's rpm.
    fn tags() -> Tags {
        Tags::parse("ARCH\nFILENAMES\nNAME\nRELEASE\nVERSION\n")
    }

    #[test]
    fn macros_left_in_scriptlets_are_found() {
        assert_eq!(
            macros_in(
                "%systemd_post acpid.socket acpid.service\n",
                Kind::Script,
                &tags()
            ),
            vec!["%systemd_post"]
        );
        assert_eq!(
            macros_in(
                "if [ -x %{_bindir}/foo ]; then %{?_sbindir}/bar; fi",
                Kind::Script,
                &tags()
            ),
            vec!["%{_bindir}", "%{?_sbindir}"]
        );
        assert_eq!(
            macros_in("%{!?with_x:echo no}", Kind::Script, &tags()),
            vec!["%{with_x}"]
        );
        assert_eq!(
            macros_in("/usr/lib/%{python3_sitelib}/x", Kind::Script, &tags()),
            vec!["%{python3_sitelib}"]
        );
        assert_eq!(
            macros_in("x\n  %tmpfiles_create foo.conf", Kind::Script, &tags()),
            vec!["%tmpfiles_create"]
        );
        // rpm's own macros, named with a leading `_`, are never taken for a format.
        assert_eq!(
            macros_in("%__pyhton3 -c 'print(1)' || :", Kind::Script, &tags()),
            vec!["%__pyhton3"]
        );
        // Expanded by rpm when the scriptlet runs; perl's hashes.
        assert!(macros_in("libdir=$(rpm -E %{_libdir})", Kind::Script, &tags()).is_empty());
        assert!(macros_in("libdir=$(rpm --eval '%{_libdir}')", Kind::Script, &tags()).is_empty());
        assert!(macros_in("perl -e 'my %seen; print 1'", Kind::Script, &tags()).is_empty());
        assert!(macros_in(
            "/usr/bin/perl -e 'my %seen; print 1'",
            Kind::Script,
            &tags()
        )
        .is_empty());
        // An odd run: a literal % and then a macro.
        assert_eq!(macros_in("%%%cmake", Kind::Script, &tags()), vec!["%cmake"]);
        // A braced name that is no rpm tag is a macro, outside a query format; so is a bare
        // one after ps without an output format.
        assert_eq!(
            macros_in("fmt='%{pkgname}'", Kind::Script, &tags()),
            vec!["%{pkgname}"]
        );
        assert_eq!(
            macros_in("ps ax; %cpu_count", Kind::Script, &tags()),
            vec!["%cpu_count"]
        );
        // A query format on one line does not hide a macro on the next.
        assert_eq!(
            macros_in(
                "rpm -q --qf '%{NAME}' x\n%{_bindir}/y",
                Kind::Script,
                &tags()
            ),
            vec!["%{_bindir}"]
        );
    }

    #[test]
    fn what_scriptlets_print_is_not_a_macro() {
        for s in [
            "printf '%s\\n' \"$x\"",
            "printf '%-10s %5d %1$s %05.2f %%\\n'",
            "printf '%lu %lld %zu %hhx\\n'",
            "date +%Y-%m-%dT%H:%M:%S; printf '%dx%d %sMB'",
            "date +%Ey %Od",
            "printf '%s_%s' a b; printf '%d_files'",
            "echo \"${f%.conf}\" \"${name%suffix}\" \"${x%%[0-9]*}\"",
            "echo %%{name} %%cmake 100%",
            "50% done",
            "s:gsub('%s+', '') s:match('^%d+$') s:gsub('%w', '')",
            "v=$(rpm -q --qf '%{VERSION}-%{release}\\n' kernel)",
            "rpm -qa --queryformat '%{name} %{arch}\\n' | sort",
            "perl -e 'print %ENV; my %{$h};'",
            // Review Y: a query format kept in a variable, ps's columns.
            "fmt='%{NAME}-%{VERSION}\\n'\nrpm -qa --qf \"$fmt\"",
            "ps -o pid,%cpu,%mem -p 1",
            "top=$(ps -eo %cpu --sort=-%cpu | head -2)",
            "/usr/bin/ps --format %mem,comm",
            // rpm tags in either case, in a scriptlet that passes rpm a query format: rpm
            // reads `%{name}` as `%{NAME}`.
            "fmt='%{name}-%{Version}'\nrpm -q --qf \"$fmt\" x",
            "fmt='%{arch}'; rpm -qa --queryformat=\"$fmt\"",
        ] {
            assert_eq!(
                macros_in(s, Kind::Script, &tags()),
                Vec::<String>::new(),
                "{s}"
            );
        }
    }

    #[test]
    fn an_upper_case_macro_that_is_no_rpm_tag_is_found() {
        // A case typo for `%global service_name`: upper case, but no tag of rpm's.
        assert_eq!(
            macros_in(
                "systemctl enable %{SERVICE_NAME}.service",
                Kind::Script,
                &tags()
            ),
            vec!["%{SERVICE_NAME}"]
        );
        assert_eq!(
            macros_in(
                "fmt='%{NAME}-%{SERVICE_NAME}'\nrpm -qa --qf \"$fmt\"",
                Kind::Script,
                &tags()
            ),
            vec!["%{SERVICE_NAME}"]
        );
        // The set is rpm's own list, read without case.
        assert!(tags().contains("name") && tags().contains("FileNames"));
        assert!(!tags().contains("SERVICE_NAME"));
    }

    #[test]
    fn a_ps_format_hides_only_its_percent_columns() {
        assert_eq!(
            macros_in(
                "if ps -o pid= -C d; then systemctl try-restart %{service_nme}.service; fi",
                Kind::Script,
                &tags()
            ),
            vec!["%{service_nme}"]
        );
        assert_eq!(
            macros_in(
                "ps -o %cpu,%mem -p 1 && %systemd_postun foo",
                Kind::Script,
                &tags()
            ),
            vec!["%systemd_postun"]
        );
        assert_eq!(
            macros_in("ps -eo %cpu,%cpu_count", Kind::Script, &tags()),
            vec!["%cpu_count"]
        );
    }

    #[test]
    fn a_tag_is_exempt_only_in_a_scriptlet_that_passes_a_query_format() {
        // rpmbuild never defines `%{arch}`, nor `%{url}` without a `URL:` line: without a
        // query format anywhere in the scriptlet, a tag's name is an unexpanded macro.
        assert_eq!(
            macros_in(
                "mkdir -p /var/lib/mactag/%{arch}\necho %{url} > /etc/x",
                Kind::Script,
                &tags_and_url()
            ),
            vec!["%{arch}", "%{url}"]
        );
        assert_eq!(
            macros_in("fmt='%{NAME}-%{Version}'", Kind::Script, &tags()),
            vec!["%{NAME}", "%{Version}"]
        );
        // Some line passing rpm a query format, before or after, exempts the tags.
        for s in [
            "fmt='%{NAME}-%{url}'\nrpm -q --qf \"$fmt\" x",
            "rpm -q --queryformat \"$fmt\" x\necho %{ARCH}",
        ] {
            assert!(
                macros_in(s, Kind::Script, &tags_and_url()).is_empty(),
                "{s}"
            );
        }
    }

    fn tags_and_url() -> Tags {
        Tags::parse("ARCH\nFILENAMES\nNAME\nRELEASE\nURL\nVERSION\n")
    }

    #[test]
    fn a_path_holds_no_query_format() {
        // A tag's name in a file's name or a link's target is no query format's.
        assert_eq!(
            macros_in("/usr/share/mactag/%{arch}/data", Kind::Path, &tags()),
            vec!["%{arch}"]
        );
        assert_eq!(
            macros_in("/usr/share/x/--qf/%{NAME}", Kind::Path, &tags()),
            vec!["%{NAME}"]
        );
        // Nor a perl or rpm -E line: every braced name is a macro.
        assert_eq!(
            macros_in(
                "/usr/share/perl %{_bogus}/rpm -E %{x_y}",
                Kind::Path,
                &tags()
            ),
            vec!["%{_bogus}", "%{x_y}"]
        );
        assert_eq!(
            macros_in("%{_bogus_datadir}/lnkmac/real", Kind::Path, &tags()),
            vec!["%{_bogus_datadir}"]
        );
        assert_eq!(
            macros_in("/usr/%{?_libexecdir}/a%{b_c}", Kind::Path, &tags()),
            vec!["%{?_libexecdir}", "%{b_c}"]
        );
    }

    #[test]
    fn a_bare_percent_name_in_a_path_is_a_macro_only_when_it_starts_with_an_underscore() {
        // GConf's `%%gconf-tree.xml`, shipped as `%gconf-tree.xml`: a file's literal name.
        for s in [
            "/etc/gconf/gconf.xml.defaults/%gconf-tree.xml",
            "/usr/share/doc/x/100%done",
            "/usr/share/x/%20space",
            "/usr/share/x/%_a",
            "/usr/share/x/%%_datadir",
        ] {
            assert_eq!(
                macros_in(s, Kind::Path, &tags()),
                Vec::<String>::new(),
                "{s}"
            );
        }
        // rpm's path macros all start with `_`.
        assert_eq!(
            macros_in("%_bogusdir/x", Kind::Path, &tags()),
            vec!["%_bogusdir"]
        );
        assert_eq!(
            macros_in("/usr/share/x/%gconf/%__bogus", Kind::Path, &tags()),
            vec!["%__bogus"]
        );
    }
}
