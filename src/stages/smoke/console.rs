//! The guest's side of the smoke protocol, read from the serial console.
//!
//! fci attaches a second disk whose first line is `fci-smoke-v1 NONCE` and whose other lines
//! are the checks. The image's PID 1 (examples/base/guest-init.sh) answers on the console:
//!
//! ```text
//! fci-guest NONCE booted CHECKSUM      the commit of the deployment it booted
//! fci-guest NONCE check N start        before check N (1-based) runs
//! fci-guest NONCE check N rc=RC        its exit status
//! fci-guest NONCE done                 then it powers off
//! ```
//!
//! The nonce is new for every boot, so no earlier console output passes for this boot's.

use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The commit the guest says it booted.
    pub booted: Option<String>,
    /// Check number → its exit status, None while it had started but not ended.
    pub checks: BTreeMap<usize, Option<i32>>,
    pub done: bool,
    /// The kernel's panic line, if it panicked.
    pub panic: Option<String>,
}

pub fn parse(console: &str, nonce: &str) -> Report {
    let tag = format!("fci-guest {nonce} ");
    let mut r = Report::default();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if r.panic.is_none() {
            if let Some(i) = line.find("Kernel panic - not syncing") {
                r.panic = Some(line[i..].to_string());
            }
        }
        let Some(i) = line.find(&tag) else { continue };
        let words: Vec<&str> = line[i + tag.len()..].split_whitespace().collect();
        match words.as_slice() {
            ["booted", commit] if r.booted.is_none() => r.booted = Some(commit.to_string()),
            ["check", n, "start"] => {
                if let Ok(n) = n.parse() {
                    r.checks.entry(n).or_insert(None);
                }
            }
            ["check", n, rc] => {
                if let (Ok(n), Some(Ok(rc))) = (n.parse(), rc.strip_prefix("rc=").map(str::parse)) {
                    r.checks.insert(n, Some(rc));
                }
            }
            ["done"] => r.done = true,
            _ => {}
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
    fn reads_only_this_boots_markers() {
        let console = "\x1b[0m[ 0.1] Linux version 6.1\r\n\
            fci-guest OLD booted bbbb\n\
            fci-guest N1 booted aaaa\r\n\
            fci-guest N1 check 1 start\n\
            hello\n\
            fci-guest N1 check 1 rc=0\n\
            fci-guest N1 check 2 start\n\
            fci-guest N1 check 2 rc=3\n\
            fci-guest N1 check 3 start\n\
            [ 9.9] Kernel panic - not syncing: Attempted to kill init!\n";
        let r = parse(console, "N1");
        assert_eq!(r.booted.as_deref(), Some("aaaa"));
        assert_eq!(
            r.checks.into_iter().collect::<Vec<_>>(),
            vec![(1, Some(0)), (2, Some(3)), (3, None)]
        );
        assert!(!r.done);
        assert_eq!(
            r.panic.as_deref(),
            Some("Kernel panic - not syncing: Attempted to kill init!")
        );
    }

    #[test]
    fn the_checks_disk_is_whole_sectors() {
        let d = checks_disk("N", &["true".into(), "hello-atomic".into()]);
        assert_eq!(d.len(), 4096);
        assert!(d.starts_with(b"fci-smoke-v1 N\ntrue\nhello-atomic\n\0"));
    }
}
