//! The line that says why a build failed, for its note, its summary and its JUnit case: the
//! failing %check's own output line, else the first `error:` line of rpmbuild's output (a
//! compiler's error, `error: File not found`), else, when rpmbuild only says that a section's
//! script exited non-zero, what that script printed last.

/// Why the build whose output is `text` failed (`check_failed`: in %check), as one line;
/// None when its output names nothing (it printed nothing, say).
pub fn of(text: &str, check_failed: bool) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let line = if check_failed {
        check_line(&lines)
    } else {
        first_error(&lines)
    }?;
    Some(crate::redact::redact(&crate::progress::plain(line.trim())))
}

/// A line of the shell's trace (`+ cmd`, `++ cmd`) or a line fci wrote into the log.
fn noise(l: &str) -> bool {
    let t = l.trim_start();
    t.is_empty() || t.starts_with('+') || t.starts_with("$ ") || t.starts_with("# exit status")
}

/// rpmbuild's own `error: Bad exit status from … (%section)`.
fn bad_exit(l: &str) -> bool {
    l.trim_start().starts_with("error: Bad exit status from ")
}

/// The output line of the failing %check: among what it printed (after its `Executing`, before
/// rpmbuild's verdict), the first that reads as a failure, else the last it printed.
fn check_line<'a>(lines: &[&'a str]) -> Option<&'a str> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Executing(%check)"))
        .map_or(0, |i| i + 1);
    let end = lines[start..]
        .iter()
        .position(|l| bad_exit(l))
        .map_or(lines.len(), |i| start + i);
    let said: Vec<&str> = lines[start..end]
        .iter()
        .copied()
        .filter(|l| !noise(l))
        .collect();
    said.iter()
        .copied()
        .find(|l| failure_word(l))
        .or_else(|| said.last().copied())
}

/// A line that reads as a test's failure (`FAIL: x`, `not ok 3 - y`, `error: z`, `FAILED`).
fn failure_word(l: &str) -> bool {
    let t = l.trim_start();
    t.starts_with("FAIL")
        || t.starts_with("not ok")
        || t.starts_with("ERROR")
        || l.contains("error:")
        || l.contains("Error:")
        || l.contains(" FAILED")
}

/// The first `error:` line of rpmbuild's output; when that is only rpmbuild's `Bad exit
/// status` of a section, what the section printed last before it (`patch does not apply`),
/// with the section.
fn first_error<'a>(lines: &[&'a str]) -> Option<&'a str> {
    let at = lines
        .iter()
        .position(|l| l.contains("error:") && !noise(l))?;
    if !bad_exit(lines[at]) {
        return Some(lines[at]);
    }
    lines[..at]
        .iter()
        .rev()
        .take_while(|l| !l.starts_with("Executing("))
        .find(|l| !noise(l))
        .copied()
        .or(Some(lines[at]))
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn a_failed_check_is_named_by_its_own_output() {
        let out = "Executing(%build): /bin/bash -e /tmp/x\n+ make\nerror: not this one (in %build, which passed)\n\
            Executing(%check): /bin/bash -e /tmp/y\n+ echo 'unit test: greeting'\nunit test: greeting\n\
            + test a = b\n+ echo 'FAIL: greeting is wrong'\nFAIL: greeting is wrong\n+ exit 1\n\
            error: Bad exit status from /tmp/y (%check)\n\nRPM build errors:\n    Bad exit status from /tmp/y (%check)\n";
        assert_eq!(of(out, true).unwrap(), "FAIL: greeting is wrong");
        // No line that reads as a failure: the last it printed.
        let quiet = "Executing(%check): /bin/bash -e /tmp/y\nran 3 tests\n2 differ\nerror: Bad exit status from /tmp/y (%check)\n";
        assert_eq!(of(quiet, true).unwrap(), "2 differ");
    }

    #[test]
    fn a_failed_build_is_named_by_its_first_error() {
        let cc = "Executing(%build): /bin/bash -e /tmp/x\n+ gcc -c hello.c\nhello.c:3:1: error: expected ';' before '}' token\n\
            make: *** [Makefile:2: hello] Error 1\nerror: Bad exit status from /tmp/x (%build)\n";
        assert_eq!(
            of(cc, false).unwrap(),
            "hello.c:3:1: error: expected ';' before '}' token"
        );
        let files = "Processing files: x-1\nerror: File not found: /buildroot/usr/bin/x\n\nRPM build errors:\n    File not found: /buildroot/usr/bin/x\n";
        assert_eq!(
            of(files, false).unwrap(),
            "error: File not found: /buildroot/usr/bin/x"
        );
        let prep = "Executing(%prep): /bin/bash -e /tmp/p\n+ echo 'patch does not apply'\npatch does not apply\n+ exit 1\n\
            error: Bad exit status from /tmp/p (%prep)\n";
        assert_eq!(of(prep, false).unwrap(), "patch does not apply");
        let silent = "Executing(%prep): /bin/bash -e /tmp/p\n+ exit 1\nerror: Bad exit status from /tmp/p (%prep)\n";
        assert_eq!(
            of(silent, false).unwrap(),
            "error: Bad exit status from /tmp/p (%prep)"
        );
        assert_eq!(of("", false), None);
        // Package output cannot forge a line on stderr.
        assert_eq!(of("error: x\x1b[2J\n", false).unwrap(), "error: x\\x1b[2J");
    }
}
