//! Every size and count fci accepts from outside (caps on input, as opposed to the limits on
//! package code in `limits.rs`), in one place (README "Limits"), and the
//! one reader that enforces a byte cap: what comes from a server, a file another tool wrote or
//! a manifest is read through [`Capped`], never whole. Past a cap the read fails with an
//! error naming the limit; nothing past it is buffered.

use std::io::Read;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// An answer from ResultsDB (its API root, a result lookup, a POST's echo).
pub const RESULTSDB_ANSWER: u64 = 4 * MIB;
/// The API server's `/readyz` answer (`ok`, or a list of checks).
pub const READYZ_ANSWER: u64 = 64 * KIB;
/// One file downloaded from a lookaside cache.
pub const LOOKASIDE_DOWNLOAD: u64 = 8 * GIB;
/// A dist-git repository's `packed-refs`, which `fci watch` reads for heads (a repository
/// with a hundred thousand tags holds a few MiB).
pub const PACKED_REFS: u64 = 64 * MIB;
/// A manifest read from a file or stdin.
pub const MANIFEST: u64 = 64 * MIB;
/// A gating.yaml, results or waivers file given to `fci report` (a gating.yaml over 1 MiB is
/// then refused as Greenwave refuses it).
pub const REPORT_INPUT: u64 = 16 * MIB;
/// The pipeline's fci.yaml (`--config`, or the one a manifest's `run.config` names): no
/// honest one is near this; it keeps a document of aliases from expanding without end.
pub const FCI_YAML: u64 = 4 * MIB;
/// One JUnit report read by `fci conform`.
pub const JUNIT_FILE: u64 = 64 * MIB;
/// Of each text, CDATA or comment in a JUnit report, what is read (the rest is skipped
/// unbuffered, as it streams past).
pub const JUNIT_TEXT_KEPT: u64 = 64 * KIB;
/// One tag (`<testcase name=... >`) in a JUnit report.
pub const JUNIT_TAG: u64 = MIB;
/// How deep a JUnit report's elements may nest.
pub const JUNIT_DEPTH: usize = 256;
/// Passed test cases one stage lists as results in the manifest (more are only counted):
/// conform's JUnit cases, test's and integrate's STI and tmt cases.
pub const PASSED_LISTED: usize = 10_000;
/// Failed or errored test cases one stage lists as results in the manifest (more are only
/// counted, and still decide the verdict).
pub const FAILED_LISTED: usize = 5_000;
/// Of a test case's name or note written by the tests, what is kept (characters).
pub const CASE_TEXT: usize = 2_000;
/// What ends a name or note [`cut_text`] cut.
pub const CUT_MARK: &str = " … (truncated)";
/// A name or note that tests wrote, cut at [`CASE_TEXT`] characters and marked so (a message
/// may hold a whole log).
pub fn cut_text(text: &str) -> String {
    match text.char_indices().nth(CASE_TEXT) {
        Some((i, _)) => format!("{}{CUT_MARK}", &text[..i]),
        None => text.to_string(),
    }
}

/// What the files of one dist-git (or tests) tree checked out from a URL or a ref may hold:
/// Fedora's dist-git keeps sources in the lookaside cache, so its trees are small.
pub const DIST_GIT_TREE: u64 = GIB;
/// The tmt plans' results fci reads from one run (honest trees have tens).
pub const PLANS: usize = 1_000;
/// All the results files (tmt's results.yaml of every plan) fci reads from one run.
pub const RESULTS_TOTAL: u64 = 64 * MIB;
/// Suite-level failures, inconsistent suites and suite nodes kept per stage (more are counted).
pub const JUNIT_FINDINGS: usize = 100;
/// What the commands' output (and the files appended, such as a guest's console) may add to
/// one stage log. Past it the log keeps the last [`LOG_TAIL_KEPT`] of each command's output
/// after a note of how much was cut; the rest is read and dropped (the command is never
/// blocked), and the stage goes on: chatty is not a failure.
pub const STAGE_LOG_OUTPUT: u64 = 64 * MIB;
/// Of a command's output past [`STAGE_LOG_OUTPUT`], the end that is kept.
pub const LOG_TAIL_KEPT: u64 = MIB;
/// What a captured command's stdout, and its stderr, may hold (a query's answer, rpmspec's
/// parse): past it the command's pipe is closed, and its caller sees `over_limit`.
pub const CAPTURED_OUTPUT: u64 = 64 * MIB;
/// Of a log read back for a verdict or a failure's last lines, the end that is read.
pub const LOG_TAIL_READ: u64 = MIB;
/// Of a guest's serial console or answers, what is read: this much of its head and of its
/// tail (the middle is skipped, unread).
pub const CONSOLE_READ: u64 = 4 * MIB;

/// A size for people: `64 MiB`, `512 KiB`, `8 GiB`, `2 TiB`, `100 bytes`.
pub fn human(bytes: u64) -> String {
    for (unit, name) in [
        (1024 * GIB, "TiB"),
        (GIB, "GiB"),
        (MIB, "MiB"),
        (KIB, "KiB"),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// The error a [`Capped`] reader fails with past its cap (an `io::Error` of kind `Other`
/// wrapping this, so it passes through any reader built on top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub cap: u64,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "larger than the {} limit", human(self.cap))
    }
}

impl std::error::Error for TooLarge {}

impl TooLarge {
    /// Whether `e` (or what it wraps) is a cap that was hit, and which.
    pub fn of(e: &std::io::Error) -> Option<TooLarge> {
        e.get_ref()?.downcast_ref::<TooLarge>().copied()
    }
}

/// A reader that yields at most `cap` bytes of `inner`, and fails with [`TooLarge`] as soon as
/// `inner` holds more (it reads one byte past the cap to know, never more).
pub struct Capped<R> {
    inner: R,
    cap: u64,
    read: u64,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Capped<R> {
        Capped {
            inner,
            cap,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.read
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Up to one byte past the cap: reading it is how an oversized input is told apart.
        let left = (self.cap + 1).saturating_sub(self.read);
        if left == 0 {
            return Err(std::io::Error::other(TooLarge { cap: self.cap }));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(std::io::Error::other(TooLarge { cap: self.cap }));
        }
        Ok(n)
    }
}

/// Why a capped read failed.
#[derive(Debug)]
pub enum ReadError {
    TooLarge(TooLarge),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge(t) => t.fmt(f),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        match TooLarge::of(&e) {
            Some(t) => ReadError::TooLarge(t),
            None => ReadError::Io(e),
        }
    }
}

/// All of `r` when it holds at most `cap` bytes; else [`ReadError::TooLarge`], having read
/// `cap + 1` bytes at most.
pub fn read_all(r: impl Read, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    Capped::new(r, cap).read_to_end(&mut out)?;
    Ok(out)
}

/// A file someone else wrote (a kubeconfig and the token, certificate and key files it
/// names): read as [`read_file_with`] reads it, following links, as kubectl does.
pub fn read_file(path: &std::path::Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    read_file_with(path, cap, Open::FOLLOW)
}

/// How [`read_file_with`] takes a file that may have been planted.
#[derive(Clone, Copy, Debug)]
pub struct Open {
    /// Follow a symbolic link (else one is refused: "a symlink (not followed)").
    pub follow: bool,
    /// Only a file owned by the caller or root (another user's may have been planted).
    pub own: bool,
}

impl Open {
    pub const FOLLOW: Open = Open {
        follow: true,
        own: false,
    };
    pub const NO_LINK: Open = Open {
        follow: false,
        own: false,
    };
    pub const OWN_NO_LINK: Open = Open {
        follow: false,
        own: true,
    };
}

/// The one way fci reads a file it did not write: opened without blocking (a FIFO would hang
/// fci) and without becoming its terminal, taken only when it is a regular file (a device
/// would never end) and as `how` says of links and owners, then read as [`read_all`] does,
/// `cap` bytes at most. The errors are short lines: "not a regular file", "a symlink (not
/// followed)", "belongs to uid N", the limit.
pub fn read_file_with(path: &std::path::Path, cap: u64, how: Open) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let nofollow = if how.follow { 0 } else { libc::O_NOFOLLOW };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | nofollow)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if !how.follow => std::io::Error::other("a symlink (not followed)"),
            _ => e,
        })?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::Io(std::io::Error::other("not a regular file")));
    }
    if how.own && !crate::users::trusted_owner(meta.uid()) {
        return Err(ReadError::Io(std::io::Error::other(format!(
            "belongs to uid {}",
            meta.uid()
        ))));
    }
    read_all(f, cap)
}

/// A kubeconfig, and each file it names (token, certificates, keys).
pub const KUBECONFIG_FILE: u64 = MIB;

/// The body of an HTTP answer, read as [`read_all`] does; `Err` is one line naming what was
/// asked (`url`, shown without credentials) and the limit, or why the body broke off.
pub fn http_body(
    resp: reqwest::blocking::Response,
    cap: u64,
    url: &str,
) -> Result<Vec<u8>, String> {
    let shown = crate::redact::strip_credentials(url);
    // Refused before a byte is read when the server says so itself.
    if let Some(n) = resp.content_length().filter(|n| *n > cap) {
        return Err(format!(
            "the answer from {shown} is {n} bytes, larger than the {} limit (not read)",
            human(cap)
        ));
    }
    read_all(resp, cap).map_err(|e| match e {
        ReadError::TooLarge(t) => format!("the answer from {shown} is {t} (read no further)"),
        ReadError::Io(e) => format!(
            "the answer from {shown} broke off: {}",
            crate::redact::scrub_credentials(&e.to_string(), url)
        ),
    })
}

/// The note a log holds where `n` bytes of output were cut.
pub fn cut_note(n: u64) -> String {
    format!(
        "[fci: {n} bytes of output cut here: past the {} log cap]",
        human(STAGE_LOG_OUTPUT)
    )
}

/// The first `head` and the last `tail` bytes of the file at `path`, read with a seek (the
/// middle is never read), with a note of what was skipped between them. A file that grows
/// meanwhile is read no further than its size when opened.
pub fn head_and_tail(path: &std::path::Path, head: u64, tail: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    if len <= head + tail {
        (&mut f).take(head + tail).read_to_end(&mut out)?;
        return Ok(out);
    }
    (&mut f).take(head).read_to_end(&mut out)?;
    let skipped = len - head - tail;
    out.extend_from_slice(format!("\n[fci: {skipped} bytes not read here]\n").as_bytes());
    f.seek(SeekFrom::Start(len - tail))?;
    f.take(tail).read_to_end(&mut out)?;
    Ok(out)
}

/// The last `bytes` of the file at `path` (read with a seek), from the start of a line: the
/// line cut by the seek is dropped.
pub fn tail(path: &std::path::Path, bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    if len > bytes {
        f.seek(SeekFrom::Start(len - bytes))?;
    }
    f.take(bytes).read_to_end(&mut out)?;
    if len > bytes {
        let start = out
            .iter()
            .position(|b| *b == b'\n')
            .map_or(out.len(), |i| i + 1);
        out.drain(..start);
    }
    Ok(out)
}

/// Calls `f` with each line of `r` (without its newline, lossily decoded), as it streams
/// past: a line is cut into pieces of 64 KiB, so no more is ever buffered.
pub fn for_each_line(r: impl Read, mut f: impl FnMut(&str)) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * KIB as usize, r);
    let mut line = Vec::new();
    loop {
        line.clear();
        if (&mut reader).take(64 * KIB).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        f(&String::from_utf8_lossy(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reads_stop_one_byte_past_the_cap() {
        assert_eq!(read_all(&b"12345"[..], 5).unwrap(), b"12345");
        let e = read_all(&b"123456"[..], 5).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge(TooLarge { cap: 5 })), "{e}");
        assert_eq!(e.to_string(), "larger than the 5 bytes limit");
        // An endless source: never read further than the cap and one byte.
        let mut endless = Capped::new(std::io::repeat(b'x'), 64 * KIB);
        let mut sink = Vec::new();
        let e = endless.read_to_end(&mut sink).unwrap_err();
        assert_eq!(TooLarge::of(&e), Some(TooLarge { cap: 64 * KIB }));
        assert!(endless.count() <= 64 * KIB + 1);
        assert_eq!(human(64 * MIB), "64 MiB");
        assert_eq!(human(8 * GIB), "8 GiB");
        assert_eq!(human(1000), "1000 bytes");
    }
}
