//! The guest's side of the smoke protocol.
//!
//! fci attaches a second disk whose first line is `fci-smoke-v1 NONCE` and whose other lines
//! are the checks. The image's PID 1 (examples/base/guest-init.sh) answers on the second serial
//! port (ttyS1, which only root in the guest can open; the console is the first), in order:
//!
//! ```text
//! fci-guest NONCE booted CHECKSUM      the commit of the deployment it booted
//! fci-guest NONCE check N start        before check N (1, 2, ...) runs
//! fci-guest NONCE check N rc=RC        its exit status
//! fci-guest NONCE done                 then it powers off
//! ```
//!
//! The nonce is new for every boot, so no earlier output passes for this boot's. Answers out
//! of that order (repeated, skipped, a result before its start) void the boot's proof.

use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The commit the guest says it booted.
    pub booted: Option<String>,
    /// Check number → its exit status, None while it had started but not ended.
    pub checks: BTreeMap<usize, Option<i32>>,
    pub done: bool,
    /// The kernel's panic line, if it panicked (from the console).
    pub panic: Option<String>,
    /// The first answer out of order, if any.
    pub disorder: Option<String>,
}

/// Reads the answers (ttyS1) and the console (ttyS0) of one boot.
pub fn parse(answers: &str, console: &str, nonce: &str) -> Report {
    let tag = format!("fci-guest {nonce} ");
    let mut r = Report {
        panic: console.lines().find_map(|l| {
            l.find("Kernel panic - not syncing")
                .map(|i| l[i..].trim_end_matches('\r').to_string())
        }),
        ..Report::default()
    };
    for line in answers.lines() {
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix(&tag) else {
            continue;
        };
        if r.disorder.is_some() {
            break;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        // The check the guest is in, and the next one it may start.
        let current = r
            .checks
            .iter()
            .next_back()
            .map(|(n, rc)| (*n, rc.is_none()));
        let next = current.map_or(1, |(n, _)| n + 1);
        let in_order = match words.as_slice() {
            _ if r.done => false,
            ["booted", commit] if r.booted.is_none() && r.checks.is_empty() => {
                r.booted = Some(commit.to_string());
                true
            }
            _ if r.booted.is_none() => false,
            ["check", n, "start"]
                if n.parse() == Ok(next) && current.is_none_or(|(_, open)| !open) =>
            {
                r.checks.insert(next, None);
                true
            }
            ["check", n, rc] => match (
                current,
                n.parse::<usize>(),
                rc.strip_prefix("rc=").map(str::parse::<i32>),
            ) {
                (Some((cur, true)), Ok(n), Some(Ok(rc))) if n == cur => {
                    r.checks.insert(n, Some(rc));
                    true
                }
                _ => false,
            },
            ["done"] if current.is_none_or(|(_, open)| !open) => {
                r.done = true;
                true
            }
            _ => false,
        };
        if !in_order {
            r.disorder = Some(line.to_string());
        }
    }
    r
}

/// The disk fci hands the guest: the protocol line, then one check per line, padded to whole
/// sectors (the guest strips the padding).
pub fn checks_disk(nonce: &str, checks: &[String]) -> Vec<u8> {
    let mut text = format!("fci-smoke-v1 {nonce}\n");
    for c in checks {
        text.push_str(c);
        text.push('\n');
    }
    let mut bytes = text.into_bytes();
    let padded = bytes.len().div_ceil(4096) * 4096;
    bytes.resize(padded, 0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_this_boots_answers_in_order() {
        let answers = "fci-guest OLD booted bbbb\n\
            fci-guest N1 booted aaaa\r\n\
            fci-guest N1 check 1 start\n\
            fci-guest N1 check 1 rc=0\n\
            fci-guest N1 check 2 start\n\
            fci-guest N1 check 2 rc=3\n\
            fci-guest N1 check 3 start\n";
        let console = "[ 9.9] Kernel panic - not syncing: Attempted to kill init!\r\n";
        let r = parse(answers, console, "N1");
        assert_eq!(r.booted.as_deref(), Some("aaaa"));
        assert_eq!(
            r.checks.into_iter().collect::<Vec<_>>(),
            vec![(1, Some(0)), (2, Some(3)), (3, None)]
        );
        assert!(!r.done);
        assert_eq!(r.disorder, None);
        assert_eq!(
            r.panic.as_deref(),
            Some("Kernel panic - not syncing: Attempted to kill init!")
        );
    }

    #[test]
    fn answers_out_of_order_void_the_proof() {
        let forged = [
            // A result for a check that is not running.
            "fci-guest N booted a\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\nfci-guest N check 2 rc=0\n",
            // A later check's start before the current one ended.
            "fci-guest N booted a\nfci-guest N check 1 start\nfci-guest N check 2 start\n",
            // A second result for the same check.
            "fci-guest N booted a\nfci-guest N check 1 start\nfci-guest N check 1 rc=1\nfci-guest N check 1 rc=0\n",
            // Anything after done, or a second boot.
            "fci-guest N booted a\nfci-guest N done\nfci-guest N check 1 start\n",
            "fci-guest N booted a\nfci-guest N booted b\n",
            // Done while a check runs.
            "fci-guest N booted a\nfci-guest N check 1 start\nfci-guest N done\n",
        ];
        for f in forged {
            assert!(parse(f, "", "N").disorder.is_some(), "{f}");
        }
        let fine = "fci-guest N booted a\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\nfci-guest N done\n";
        let r = parse(fine, "", "N");
        assert!(r.disorder.is_none() && r.done);
        // The tag counts only at the start of a line.
        assert_eq!(parse("x fci-guest N booted a\n", "", "N").booted, None);
    }

    #[test]
    fn the_checks_disk_is_whole_sectors() {
        let d = checks_disk("N", &["true".into(), "hello-atomic".into()]);
        assert_eq!(d.len(), 4096);
        assert!(d.starts_with(b"fci-smoke-v1 N\ntrue\nhello-atomic\n\0"));
    }
}
