//! The Fedora build environment for the rpmbuild backend on a host without Fedora's
//! redhat-rpm-config (Debian's rpm): which of fci's macro files rpmbuild loads, and a reading
//! of a failed build's output that tells a macro or tool the host lacks from a broken package.

use std::path::{Path, PathBuf};

/// fci's Fedora environment (build flags, paths, ldconfig scriptlets, bash build shell, brp
/// steps that work, debuginfo, systemd, Python, CMake and Meson): loaded only where the host has no Fedora environment of its own.
pub const ENV_FILE: &str = "fci-fedora-env.macros";
/// rpmautospec's fallbacks (%autorelease, %autochangelog): loaded wherever the host lacks them.
pub const AUTOSPEC_FILE: &str = "fci-compat.macros";

/// The files fci installs beside each other in the workspace's `share/macros`. The
/// environment is one file made of several, each holding what one of Fedora's macro packages
/// holds (redhat-rpm-config, systemd-rpm-macros, python-rpm-macros and pyproject-rpm-macros,
/// cmake-rpm-macros and meson's): a Fedora host has them all or none of them here.
pub const FILES: [(&str, &str); 2] = [
    (AUTOSPEC_FILE, include_str!("compat.macros")),
    (
        ENV_FILE,
        concat!(
            include_str!("fedora-env.macros"),
            include_str!("systemd.macros"),
            include_str!("python.macros"),
            include_str!("cmake-meson.macros"),
        ),
    ),
];

/// Fedora's own build environment (redhat-rpm-config), below the host's root.
const FEDORA_MACROS: &str = "usr/lib/rpm/redhat/macros";
/// Where rpm reads packages' macro files (rpmautospec-rpm-macros puts its own there).
const MACRO_DIRS: [&str; 2] = ["usr/lib/rpm/macros.d", "etc/rpm"];

/// What the host at `root` already provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// redhat-rpm-config is installed: the host's own Fedora environment is the real one.
    pub fedora_env: bool,
    /// Some macro file defines %autorelease (rpmautospec's macros).
    pub autorelease: bool,
}

impl Host {
    pub fn probe(root: &Path) -> Host {
        Host {
            fedora_env: root.join(FEDORA_MACROS).is_file(),
            autorelease: MACRO_DIRS
                .iter()
                .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
                .flatten()
                .flatten()
                .any(|e| defines_autorelease(&e.path())),
        }
    }
}

fn defines_autorelease(file: &Path) -> bool {
    file.is_file()
        && std::fs::read_to_string(file).is_ok_and(|t| {
            t.lines()
                .any(|l| l.trim_start().starts_with("%autorelease"))
        })
}

/// The macro files rpmbuild loads (`--load`), in order, given fci's installed rpmautospec
/// fallback file (its environment file lies beside it): on a host without a Fedora
/// environment both, on a Fedora host only the fallbacks it lacks.
pub fn macro_files(autospec_file: &Path, host: Host) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !host.fedora_env {
        out.push(autospec_file.with_file_name(ENV_FILE));
    }
    if !host.autorelease {
        out.push(autospec_file.to_path_buf());
    }
    out
}

/// Explains a failed rpmbuild from its output when the cause is the host rather than the
/// package: a macro that is not defined here (its text reached the shell, a compiler or rpm),
/// or a program that is not installed. `None` when the output shows neither.
pub fn diagnose(log_text: &str) -> Option<String> {
    let lines: Vec<&str> = log_text.lines().collect();
    // The last such line is the one that stopped the build; earlier ones (a configure script
    // probing for optional tools) did not.
    for (i, line) in lines.iter().enumerate().rev() {
        if let Some(found) = read_line(&lines, i, line) {
            return Some(match found {
                Found::Macro(m) => format!(
                    "the build used `%{m}`, which is not defined here (a macro from a package the host lacks)"
                ),
                Found::Tool(t) => format!(
                    "the build needs `{t}`, which is not installed on this host (an environment failure, not the package's)"
                ),
            });
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum Found {
    Macro(String),
    Tool(String),
}

fn read_line(lines: &[&str], i: usize, line: &str) -> Option<Found> {
    let line = line.trim_end();
    // rpm's own complaints about text that was meant to be a macro.
    if let Some(rest) = line.strip_prefix("error: ") {
        let rpm_says = [
            "File must begin with \"/\"",
            "Dependency tokens must begin with",
            "bad %if condition",
            "parse error in expression",
            "Unknown tag",
            "Docdir must begin with",
            "script program must begin with",
            "Possible unexpanded macro",
        ];
        if rpm_says.iter().any(|s| rest.contains(s)) {
            // What rpm quotes follows its message (after the first ": " past the phrase).
            let quoted = rpm_says
                .iter()
                .find_map(|s| rest.find(s).map(|p| &rest[p + s.len()..]))
                .unwrap_or(rest);
            return macro_in(quoted).map(Found::Macro);
        }
        if let Some(name) = rest
            .strip_prefix("no such macro: '")
            .and_then(|r| r.split('\'').next())
        {
            return Some(Found::Macro(name.trim_start_matches('%').to_string()));
        }
        return None;
    }
    // bash runs `%foo` (a command word that starts with %) as job control; its trace line,
    // just above, names the command.
    if line.ends_with(": fg: no job control") {
        let traced = lines[..i]
            .iter()
            .rev()
            .take(5)
            .find_map(|l| l.strip_prefix("+ "))
            .and_then(|cmd| cmd.split_whitespace().next())
            .map(|w| w.trim_matches('\''));
        return Some(Found::Macro(
            traced.and_then(macro_in).unwrap_or_else(|| "…".into()),
        ));
    }
    // bash: `line N: ${%{foo}}: bad substitution`.
    if line.to_ascii_lowercase().ends_with(": bad substitution") {
        return macro_in(line.rsplit(": ").nth(1)?).map(Found::Macro);
    }
    // A shell that could not run a command: bash `SCRIPT: line N: X: command not found`,
    // dash `SCRIPT: N: X: not found`.
    let missing = line
        .strip_suffix(": command not found")
        .or_else(|| line.strip_suffix(": not found"));
    if let Some(head) = missing {
        let (place, word) = head.rsplit_once(": ")?;
        if !at_shell_line(place) {
            return None;
        }
        if let Some(m) = word.starts_with('%').then(|| macro_in(word)).flatten() {
            return Some(Found::Macro(m));
        }
        return fatal(lines, i, place).then(|| Found::Tool(tool_name(word)));
    }
    if let Some(head) = line.strip_suffix(": No such file or directory") {
        // A macro's text taken for a file name, by a compiler or the linker.
        let (place, word) = head.rsplit_once(": ").unwrap_or(("", head));
        if word.contains('%') {
            return macro_in(word).map(Found::Macro);
        }
        // `SCRIPT: line N: ./gen.pl: /usr/bin/perl: bad interpreter`
        let (place, word) = match place.rsplit_once(": ") {
            Some((p, w)) if word == "bad interpreter" => {
                (p.rsplit_once(": ").map_or(p, |(shell, _script)| shell), w)
            }
            _ => (place, word),
        };
        let direct = place == "make" || place.starts_with("make[") || place == "env";
        let program = word.trim_matches('\'');
        if (direct || at_shell_line(place))
            && fatal(lines, i, place)
            && program.starts_with('/')
            && is_program_dir(Path::new(program).parent()?)
        {
            return Some(Found::Tool(tool_name(program)));
        }
        if direct && !program.contains('/') && fatal(lines, i, "make") {
            return Some(Found::Tool(program.to_string()));
        }
    }
    None
}

/// `SCRIPT: line N` (bash) or `SCRIPT: N` (dash, sh -c): a shell naming where it failed.
fn at_shell_line(place: &str) -> bool {
    let last = place.rsplit(": ").next().unwrap_or("");
    let n = last.strip_prefix("line ").unwrap_or(last);
    place.contains(": ") && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the failure at line `i` stopped the build: rpm's own script runs with `-e`, so a
/// command it could not run is fatal; elsewhere (a Makefile recipe) make must have stopped
/// on it (exit 127).
fn fatal(lines: &[&str], i: usize, place: &str) -> bool {
    place.contains("rpm-tmp.")
        || lines[i + 1..]
            .iter()
            .take(5)
            .any(|l| l.contains("Error 127"))
}

fn is_program_dir(dir: &Path) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| dir == Path::new(d))
}

fn tool_name(word: &str) -> String {
    let w = word.trim_matches('\'');
    Path::new(w)
        .file_name()
        .map_or(w.to_string(), |f| f.to_string_lossy().into_owned())
}

/// The first macro name in `text` (`%foo`, `%{foo}`, `%{?foo:...}`, `%{foo arg}`), without %.
/// A bare `%name` right after a letter or digit is a literal `%` of a name (`100%off.txt`,
/// `fill%s`), not a macro: rpm's text is `lib%{name}.so` where a macro sits inside a word.
fn macro_in(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(p) = rest.find('%') {
        let braced = rest[p + 1..].starts_with('{');
        let in_word = rest[..p]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if in_word && !braced {
            rest = &rest[p + 1..];
            continue;
        }
        let after = rest[p + 1..]
            .trim_start_matches('{')
            .trim_start_matches(['?', '!']);
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return Some(name);
        }
        rest = &rest[p + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(fedora_env: bool, autorelease: bool) -> Host {
        Host {
            fedora_env,
            autorelease,
        }
    }

    #[test]
    fn a_fedora_host_keeps_its_own_environment() {
        let f = Path::new("/ws/share/macros/fci-compat.macros");
        let env = PathBuf::from("/ws/share/macros/fci-fedora-env.macros");
        assert_eq!(
            macro_files(f, host(false, false)),
            vec![env.clone(), f.to_path_buf()]
        );
        assert_eq!(macro_files(f, host(true, false)), vec![f.to_path_buf()]);
        assert!(macro_files(f, host(true, true)).is_empty());
        assert_eq!(macro_files(f, host(false, true)), vec![env]);
    }

    #[test]
    fn probing_a_root_finds_redhat_rpm_config_and_rpmautospec() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(Host::probe(r), host(false, false));
        std::fs::create_dir_all(r.join("usr/lib/rpm/redhat")).unwrap();
        std::fs::write(r.join(FEDORA_MACROS), "%_vendor redhat\n").unwrap();
        std::fs::create_dir_all(r.join("usr/lib/rpm/macros.d")).unwrap();
        std::fs::write(
            r.join("usr/lib/rpm/macros.d/macros.python"),
            "%__python3 /usr/bin/python3\n",
        )
        .unwrap();
        assert_eq!(Host::probe(r), host(true, false));
        std::fs::write(
            r.join("usr/lib/rpm/macros.d/macros.rpmautospec"),
            "%autorelease(e:s:pb:n) %{?-p:0.}%{lua: ...}\n",
        )
        .unwrap();
        assert_eq!(Host::probe(r), host(true, true));
    }

    #[test]
    fn the_embedded_files_are_the_ones_the_backend_loads() {
        assert_eq!(FILES[0].0, AUTOSPEC_FILE);
        assert!(FILES[0].1.contains("%autorelease"));
        assert!(FILES[1].1.contains("%ldconfig_scriptlets"));
    }

    // Output of rpmbuild 4.18 (Debian 12), trimmed around the failure; "bash" with fci's
    // environment (%_buildshell /bin/bash), "dash" with Debian's default /bin/sh.
    const MACRO_BASH: &str = "\
Executing(%build): /bin/bash -e /w/rpmbuild/tmp/rpm-tmp.WluhZc
+ umask 022
+ export CXX
+ %py3_build
/w/rpmbuild/tmp/rpm-tmp.WluhZc: line 37: fg: no job control
error: Bad exit status from /w/rpmbuild/tmp/rpm-tmp.WluhZc (%build)

RPM build errors:
    Bad exit status from /w/rpmbuild/tmp/rpm-tmp.WluhZc (%build)
";
    const MACRO_BRACED_BASH: &str = "\
+ echo start
start
+ '%{cmake_build}' --target all
/var/tmp/rpm-tmp.YvVdyc: line 38: fg: no job control
error: Bad exit status from /var/tmp/rpm-tmp.YvVdyc (%build)
";
    const MACRO_DASH: &str = "\
start
/var/tmp/rpm-tmp.CSkvsJ: 29: %{cmake_build}: not found
error: Bad exit status from /var/tmp/rpm-tmp.CSkvsJ (%build)
";
    const MACRO_LD: &str = "\
+ /usr/bin/make -O -j2 V=1 VERBOSE=1 'LDFLAGS=%{__global_ldflags}'
cc -O2 -g -shared -Wl,-soname,libfoo.so.1 %{__global_ldflags} foo.o -o libfoo.so.1.0
/usr/bin/ld: cannot find %{__global_ldflags}: No such file or directory
collect2: error: ld returned 1 exit status
make: *** [Makefile:11: libfoo.so.1.0] Error 1
error: Bad exit status from /var/tmp/rpm-tmp.nnGO0B (%build)
";
    const MACRO_SUBST: &str = "\
/var/tmp/rpm-tmp.xvsGXV: line 37: ${%{foo}}: bad substitution
error: Bad exit status from /var/tmp/rpm-tmp.xvsGXV (%build)
";
    const MACRO_FILES: &str = "\
Processing files: py-1-1.noarch
error: File must begin with \"/\": %{python3_sitelib}/foo/

RPM build errors:
    File must begin with \"/\": %{python3_sitelib}/foo/
";
    const MACRO_BR: &str = "error: line 7: Dependency tokens must begin with alpha-numeric, '_' or '/': BuildRequires: %{py3_dist requests}\n";
    const MACRO_IF: &str = "\
error: parse error in expression:  %{fedora_major} >= 40
error:                             ^
error: /tmp/dg/ifx.spec:9: bad %if condition:  %{fedora_major} >= 40
";
    const TOOL_BASH: &str = "\
Executing(%build): /bin/bash -e /var/tmp/rpm-tmp.OYB0uP
+ cmake --version
/var/tmp/rpm-tmp.OYB0uP: line 37: cmake: command not found
error: Bad exit status from /var/tmp/rpm-tmp.OYB0uP (%build)
";
    const TOOL_DASH: &str = "\
/var/tmp/rpm-tmp.jHDS2v: 28: cmake: not found
error: Bad exit status from /var/tmp/rpm-tmp.jHDS2v (%build)
";
    const TOOL_PATH: &str = "\
+ /usr/bin/meson setup build
/var/tmp/rpm-tmp.V74Jzo: line 37: /usr/bin/meson: No such file or directory
error: Bad exit status from /var/tmp/rpm-tmp.V74Jzo (%build)
";
    const TOOL_MAKE: &str = "\
+ /usr/bin/make -O -j2 V=1 VERBOSE=1
/bin/sh: 1: bison: not found
make: *** [Makefile:4: parse.c] Error 127
error: Bad exit status from /var/tmp/rpm-tmp.Q1 (%build)
";
    const PROBE_THEN_COMPILE_ERROR: &str = "\
+ ./configure --prefix=/usr
./configure: line 812: makeinfo: command not found
checking for gcc... gcc
foo.c:3:1: error: unknown type name 'nope'
make: *** [Makefile:2: foo.o] Error 1
error: Bad exit status from /var/tmp/rpm-tmp.Q2 (%build)
";
    const CHECK_FAILED: &str = "\
Executing(%check): /bin/bash -e /var/tmp/rpm-tmp.Q3
+ make check
FAIL: test_greeting
make: *** [Makefile:9: check] Error 1
error: Bad exit status from /var/tmp/rpm-tmp.Q3 (%check)
";
    const FILE_NOT_FOUND: &str = "\
Processing files: late-fail-1-1.fc41.noarch
error: File not found: /w/rpmbuild/BUILDROOT/late-fail-1-1.fc41.x86_64/usr/share/late-fail/never-installed
";

    fn macro_note(m: &str) -> Option<String> {
        Some(format!(
            "the build used `%{m}`, which is not defined here (a macro from a package the host lacks)"
        ))
    }

    fn tool_note(t: &str) -> Option<String> {
        Some(format!(
            "the build needs `{t}`, which is not installed on this host (an environment failure, not the package's)"
        ))
    }

    #[test]
    fn undefined_macros_are_named_wherever_their_text_ends_up() {
        assert_eq!(diagnose(MACRO_BASH), macro_note("py3_build"));
        assert_eq!(diagnose(MACRO_BRACED_BASH), macro_note("cmake_build"));
        assert_eq!(diagnose(MACRO_DASH), macro_note("cmake_build"));
        assert_eq!(diagnose(MACRO_LD), macro_note("__global_ldflags"));
        assert_eq!(diagnose(MACRO_SUBST), macro_note("foo"));
        assert_eq!(diagnose(MACRO_FILES), macro_note("python3_sitelib"));
        assert_eq!(diagnose(MACRO_BR), macro_note("py3_dist"));
        assert_eq!(diagnose(MACRO_IF), macro_note("fedora_major"));
    }

    #[test]
    fn missing_programs_are_named() {
        assert_eq!(diagnose(TOOL_BASH), tool_note("cmake"));
        assert_eq!(diagnose(TOOL_DASH), tool_note("cmake"));
        assert_eq!(diagnose(TOOL_PATH), tool_note("meson"));
        assert_eq!(diagnose(TOOL_MAKE), tool_note("bison"));
        assert_eq!(
            diagnose("/var/tmp/rpm-tmp.Q4: line 30: ./gen.pl: /usr/bin/perl: bad interpreter: No such file or directory\n"),
            tool_note("perl")
        );
        assert_eq!(
            diagnose(
                "make: cmake: No such file or directory\nmake: *** [Makefile:2: all] Error 127\n"
            ),
            tool_note("cmake")
        );
    }

    #[test]
    fn the_packages_own_failures_are_not_blamed_on_the_host() {
        assert_eq!(diagnose(PROBE_THEN_COMPILE_ERROR), None);
        assert_eq!(diagnose(CHECK_FAILED), None);
        assert_eq!(diagnose(FILE_NOT_FOUND), None);
        assert_eq!(diagnose(""), None);
        // dash names no macro in its "Bad substitution".
        assert_eq!(
            diagnose("/var/tmp/rpm-tmp.E9kLAU: 28: Bad substitution\n"),
            None
        );
    }

    #[test]
    fn macro_names_are_read_from_every_spelling() {
        assert_eq!(macro_in("%foo"), Some("foo".into()));
        assert_eq!(macro_in("%{?foo:x}"), Some("foo".into()));
        assert_eq!(macro_in("%{!?foo}"), Some("foo".into()));
        assert_eq!(macro_in("a %{py3_dist x}"), Some("py3_dist".into()));
        assert_eq!(macro_in("50% done"), None);
        assert_eq!(macro_in("%1 %2"), None);
        // A literal % inside a name is none; a braced macro inside a word is one.
        assert_eq!(macro_in("/usr/share/x/100%off.txt"), None);
        assert_eq!(macro_in("lib%{_bogus}.so"), Some("_bogus".into()));
        assert_eq!(
            macro_in("/x/%python3_sitelib/y"),
            Some("python3_sitelib".into())
        );
    }

    #[test]
    fn a_percent_in_a_file_name_is_not_an_undefined_macro() {
        assert_eq!(
            diagnose(
                "install: cannot stat '100%off.txt': No such file or directory\n\
                 error: Bad exit status from /var/tmp/rpm-tmp.Q2 (%install)\n"
            ),
            None
        );
        assert_eq!(
            diagnose("gcc: error: %{_bogus_dir}/x.c: No such file or directory\n"),
            macro_note("_bogus_dir")
        );
    }
}
