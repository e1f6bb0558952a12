//! Running external programs: argument vectors only, every call logged to the stage log.

use crate::error::FciError;
use crate::redact::redact;
use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The version line of a tool, for the stage record and the input digest: `--version`'s
/// first line; for tools without `--version` (mke2fs), `-V`'s; for a YAML-ish answer
/// (`libostree:` then ` Version: '2022.7'`), the version line under it.
pub fn version(tool: &str) -> String {
    let ask = |flag: &str| {
        duct::cmd(tool, [flag])
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .read()
            .unwrap_or_default()
    };
    let mut text = ask("--version");
    let first = |t: &str| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string()
    };
    let line = first(&text).to_ascii_lowercase();
    if line.contains("invalid option") || line.contains("unrecognized option") {
        text = ask("-V");
    }
    let line = first(&text);
    if line.is_empty() {
        return "unknown".into();
    }
    if line.ends_with(':') {
        if let Some(v) = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("Version:"))
        {
            return format!(
                "{} {}",
                line.trim_end_matches(':'),
                v.trim().trim_matches('\'')
            );
        }
    }
    line
}

/// The outcome of one command.
pub struct Finished {
    /// What ran, as messages call it (`Cmd::shown`).
    pub program: String,
    /// Its exit code; None when it was killed (by its timeout or a signal).
    pub code: Option<i32>,
    /// Killed because it ran past the command's timeout. Only ever true for a command that
    /// `judges_timeout()`: for any other, a timeout is an error of `Log::run`/`capture`.
    pub timed_out: bool,
    /// The signal that ended it, when one did and it was not fci's timeout.
    pub signal: Option<i32>,
    pub stdout: String,
    /// Captured only by `capture`; otherwise it went to the log.
    pub stderr: String,
    /// Captured output passed the command's `capture_limit`: what is kept is cut there,
    /// and the command was stopped (its output pipe closed).
    pub over_limit: bool,
    /// Killed (or ended) past one of its sandbox's limits: which (`pids limit 1024 reached`).
    pub limit: Option<String>,
    /// The end of what it printed on stderr (for `run`, of its output, which shares the log
    /// with stderr): at most `FAILURE_TAIL` bytes of whole lines, redacted. What a failure
    /// quotes.
    pub tail: String,
    /// The limit it was killed at, when `timed_out`.
    pub timeout: Option<std::time::Duration>,
}

impl Finished {
    /// Exited 0: never when killed, whether by its timeout, a signal or a limit, nor when its
    /// captured output was cut (it was stopped, and what it said is not all there).
    pub fn success(&self) -> bool {
        self.code == Some(0)
            && !self.timed_out
            && self.signal.is_none()
            && self.limit.is_none()
            && !self.over_limit
    }
    /// Why it failed, for a one-line message: the last line it printed on stderr (for
    /// `run`, its output), redacted.
    pub fn reason(&self) -> &str {
        last_said(&self.tail).unwrap_or("no reason given")
    }
    /// How it failed, when it did not succeed.
    pub fn failure(&self) -> Option<Failure> {
        let ending = if self.over_limit {
            Ending::OutputCut
        } else if self.timed_out {
            Ending::TimedOut(self.timeout.map_or(0, |t| t.as_secs()))
        } else if let Some(why) = &self.limit {
            Ending::Limit(why.clone())
        } else if let Some(sig) = self.signal {
            Ending::Signal(sig)
        } else {
            match self.code {
                Some(0) => return None,
                Some(c) => Ending::Exit(c),
                None => Ending::Signal(0),
            }
        };
        Some(Failure {
            program: self.program.clone(),
            ending,
            tail: self.tail.clone(),
        })
    }
    /// The checked run: itself when it succeeded (exited 0, never killed nor cut), else how it
    /// failed, as an error for the caller to class (`Failure::infra`, `input`, or a note of
    /// the package's failure).
    pub fn checked(self) -> std::result::Result<Finished, Failure> {
        match self.failure() {
            None => Ok(self),
            Some(f) => Err(f),
        }
    }
}

/// What a failure quotes of a command's stderr at most (its last lines).
pub const FAILURE_TAIL: usize = 2048;

/// The last non-empty line of `text`, trimmed.
fn last_said(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// The last `FAILURE_TAIL` bytes of `bytes` (`cut`: their start is already cut), from the
/// start of a line, redacted.
fn failure_tail(bytes: &[u8], cut: bool) -> String {
    let bytes = bytes.trim_ascii_end();
    let mut from = bytes.len().saturating_sub(FAILURE_TAIL);
    if from > 0 || cut {
        from = bytes[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(from, |i| from + i + 1);
    }
    redact(&String::from_utf8_lossy(&bytes[from..]))
}

/// How a command that did not succeed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Exited with this code (not 0).
    Exit(i32),
    /// Killed by this signal (0: by one it could not tell).
    Signal(i32),
    /// Killed at its time limit, of this many seconds.
    TimedOut(u64),
    /// Killed past one of its sandbox's limits (`pids limit 1024 reached`).
    Limit(String),
    /// Stopped when what it printed passed what fci reads of it.
    OutputCut,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Ending::Exit(c) => write!(f, "exited {c}"),
            Ending::Signal(0) => write!(f, "was killed by a signal"),
            Ending::Signal(s) => write!(f, "was killed by signal {s}"),
            Ending::TimedOut(secs) => write!(f, "was killed at its time limit ({secs}s)"),
            Ending::Limit(why) => write!(f, "was killed: {why}"),
            Ending::OutputCut => write!(f, "was stopped: it printed more than fci reads"),
        }
    }
}

/// A command that did not succeed: what ran, how it ended and the end of what it said on
/// stderr. Shown as the tool's own last line, then how it ended: `error: Refspec not found
/// (ostree exited 1)`. Its caller says whose failure it is, with a line of context.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Failure {
    pub program: String,
    pub ending: Ending,
    /// See `Finished::tail`.
    pub tail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match last_said(&self.tail) {
            Some(line) => write!(
                f,
                "{} ({} {})",
                crate::progress::plain(line),
                self.program,
                self.ending
            ),
            None => write!(f, "{} {}", self.program, self.ending),
        }
    }
}

impl Failure {
    /// The machinery's failure (a host tool): ERROR, exit 3, as `{context}: {self}`.
    pub fn infra(&self, context: impl std::fmt::Display) -> FciError {
        FciError::Infra(format!("{context}: {self}"))
    }
    /// Bad input (exit 2): `file` is not what the tool could use.
    pub fn input(&self, file: impl Into<PathBuf>, context: impl std::fmt::Display) -> FciError {
        FciError::input(file, format!("{context}: {self}"))
    }
}

/// A stage log that records every command and its output. What the commands print (and the
/// files appended) is capped: `caps::STAGE_LOG_OUTPUT` in all, then the last
/// `caps::LOG_TAIL_KEPT` of each command's output after a note of what was cut.
pub struct Log {
    file: File,
    pub path: PathBuf,
    /// What command output may still add to the log before it is cut.
    room: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Every line written also goes to stderr (`-v`: the stage's log, streamed).
    streamed: bool,
}

/// The log file, and with `-v` stderr: each whole line written is also printed, redacted and
/// escaped (`progress::log_line`), as it arrives.
struct Sink {
    file: File,
    streamed: bool,
    partial: Vec<u8>,
}

impl Sink {
    fn new(file: File, streamed: bool) -> Sink {
        Sink {
            file,
            streamed,
            partial: Vec::new(),
        }
    }

    fn echo(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..i]);
            crate::progress::log_line(&redact(&text));
        }
        // A line with no end in sight (a progress bar's carriage returns) is shown in pieces.
        if self.partial.len() > 64 * 1024 {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            crate::progress::log_line(&redact(&text));
            self.partial.clear();
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if self.streamed {
            self.echo(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if self.streamed && !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            crate::progress::log_line(&redact(&text));
        }
    }
}

impl Log {
    pub fn create(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("{}: cannot create log", path.display()))?;
        Ok(Log {
            file,
            path: path.to_path_buf(),
            room: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
                crate::caps::STAGE_LOG_OUTPUT,
            )),
            streamed: false,
        })
    }

    /// With `on`, every line written to the log also goes to stderr as it is written (the
    /// stage's log under `-v`), redacted and escaped.
    pub fn streamed(mut self, on: bool) -> Self {
        self.streamed = on;
        self
    }

    /// The log file as a writer (and stderr, when streamed).
    fn sink(&self) -> std::io::Result<Sink> {
        Ok(Sink::new(self.file.try_clone()?, self.streamed))
    }

    pub fn line(&mut self, msg: &str) {
        let _ = writeln!(self.file, "{msg}");
        if self.streamed {
            for l in msg.lines() {
                crate::progress::log_line(&redact(l));
            }
        }
    }

    /// Runs a command with its stdout and stderr appended to the log.
    pub fn run(&mut self, cmd: &Cmd) -> Result<Finished> {
        self.exec(cmd, false)
    }

    /// Runs a command capturing stdout and stderr (stderr is also copied to the log).
    pub fn capture(&mut self, cmd: &Cmd) -> Result<Finished> {
        self.exec(cmd, true)
    }

    /// `run`, checked: a command that does not succeed is the machinery's failure (ERROR,
    /// exit 3) saying `{context}: ` and then the tool's own last line and how it ended.
    pub fn run_ok(&mut self, cmd: &Cmd, context: impl std::fmt::Display) -> Result<Finished> {
        Ok(self.run(cmd)?.checked().map_err(|f| f.infra(context))?)
    }

    /// `capture`, checked as `run_ok` is.
    pub fn capture_ok(&mut self, cmd: &Cmd, context: impl std::fmt::Display) -> Result<Finished> {
        Ok(self.capture(cmd)?.checked().map_err(|f| f.infra(context))?)
    }

    fn exec(&mut self, cmd: &Cmd, capture: bool) -> Result<Finished> {
        let shown: Vec<String> = std::iter::once(&cmd.program)
            .chain(cmd.args.iter())
            .map(|a| redact(&a.to_string_lossy()))
            .collect();
        self.line(&format!("$ {}", shown.join(" ")));
        let _ = self.file.flush();
        let start = Instant::now();
        // A command with a time limit is killed as a whole at it: what it started (git's
        // remote helper, say) would otherwise hold its output pipe open, and fci with it.
        let own_group = cmd.own_group || cmd.timeout.is_some();
        let (expr, mut monitor) = expression(cmd, own_group)?;
        // What the command prints is untrusted: it reaches the log through a pipe, redacted
        // line by line (a URL with credentials), never as the log file itself, which package
        // code could reopen through /proc/self/fd and rewrite at any offset.
        // A capture reads through pipes of its own, keeping at most its limit (by default
        // `caps::CAPTURED_OUTPUT`: what package code or a tool prints is never held whole).
        let out_tail = std::sync::Arc::new(std::sync::Mutex::new(Ring::new(FAILURE_TAIL)));
        let capture_limit = cmd
            .capture_limit
            .unwrap_or(usize::try_from(crate::caps::CAPTURED_OUTPUT).unwrap_or(usize::MAX));
        let (expr, capped, copier) = self.wire_output(expr, capture, capture_limit, &out_tail)?;
        let handle = expr
            .start()
            .with_context(|| format!("cannot run {}", cmd.program.to_string_lossy()));
        // The expression holds the pipe's write end: only the command may keep it open.
        drop(expr);
        let handle = handle?;
        // With its own group, what the command left behind in it dies when it ends (a daemon
        // would otherwise hold the output pipe open, and run on unseen).
        let group = own_group.then(|| GroupKiller::start(handle.pids().first().copied()));
        if let Some(m) = monitor.as_mut() {
            if let Some(pid) = handle.pids().first() {
                m.attach(*pid);
            }
        }
        let (out, timed_out, mut limit) = wait_watched(&handle, &mut monitor, cmd.timeout)?;
        if !timed_out && limit.is_none() && !out.status.success() {
            // A writer stopped by a full tmpfs or by the file size limit may have ended the
            // command before a poll saw it.
            limit = monitor.as_mut().and_then(|m| m.finish());
        }
        if let Some(g) = group {
            g.finish();
        }
        if let Some(done) = copier {
            // The output ends when the command and everything it started are gone; a
            // daemon that keeps the pipe open loses what it prints later.
            let _ = done.recv_timeout(std::time::Duration::from_secs(5));
        }
        let code = if timed_out || limit.is_some() {
            None
        } else {
            out.status.code()
        };
        let signal = if timed_out || limit.is_some() {
            None
        } else {
            std::os::unix::process::ExitStatusExt::signal(&out.status)
        };
        let (mut over_limit, mut out_bytes, mut err_bytes) = (false, out.stdout, out.stderr);
        if let Some((o, e)) = capped {
            for (t, bytes) in [(o, &mut out_bytes), (e, &mut err_bytes)] {
                let (b, over) = t.join().unwrap_or_default();
                *bytes = b;
                over_limit |= over;
            }
        }
        // Messages quote it (`reason`): no secret fci was given goes with it.
        let stderr = crate::redact::mask_registered(&String::from_utf8_lossy(&err_bytes));
        if capture && !stderr.is_empty() {
            let room = self.room.clone();
            if let Ok(mut sink) = self.sink() {
                copy_redacted(stderr.as_bytes(), &mut sink, &room);
            }
        }
        let status = status_text(timed_out, limit.as_deref(), code, signal);
        self.line(&format!(
            "# exit status {status} after {:.2}s",
            start.elapsed().as_secs_f64()
        ));
        if timed_out && !cmd.judges_timeout {
            // What a command cut short left behind (a half-installed tree, a partial answer)
            // is never a result: unless its caller judges the timeout itself, the run is an
            // error (ERROR, exit 3, never reused) naming the limit.
            return Err(FciError::Infra(timeout_message(cmd)).into());
        }
        let tail = output_tail(capture, &stderr, &out_tail);
        Ok(Finished {
            program: cmd.shown(),
            timed_out,
            signal,
            limit,
            code,
            stdout: String::from_utf8_lossy(&out_bytes).into_owned(),
            stderr,
            over_limit,
            tail,
            timeout: cmd.timeout.filter(|_| timed_out),
        })
    }

    /// Points the command's stdout and stderr at pipes: for a capture, two threads that keep
    /// at most `limit` bytes of each; otherwise one thread that copies both to the log,
    /// redacted, keeping the end in `out_tail` (the receiver says when it is done).
    fn wire_output(
        &self,
        mut expr: duct::Expression,
        capture: bool,
        capture_limit: usize,
        out_tail: &std::sync::Arc<std::sync::Mutex<Ring>>,
    ) -> Result<(
        duct::Expression,
        Capped,
        Option<std::sync::mpsc::Receiver<()>>,
    )> {
        if capture {
            let limit = capture_limit;
            let (out_r, out_w) = std::io::pipe()?;
            let (err_r, err_w) = std::io::pipe()?;
            expr = expr.stdout_file(out_w).stderr_file(err_w);
            let read = move |r: std::io::PipeReader| {
                std::thread::spawn(move || {
                    use std::io::Read;
                    let mut buf = Vec::new();
                    let _ = r.take(limit as u64 + 1).read_to_end(&mut buf);
                    // Dropping the read end stops a command that writes on.
                    let over = buf.len() > limit;
                    buf.truncate(limit);
                    (buf, over)
                })
            };
            Ok((expr, Some((read(out_r), read(err_r))), None))
        } else {
            let (reader, writer) = std::io::pipe()?;
            expr = expr.stdout_file(writer.try_clone()?).stderr_file(writer);
            let mut sink = self.sink()?;
            let room = self.room.clone();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            // The end of what it prints is kept for a failure to quote.
            let tee = Tee(reader, out_tail.clone());
            std::thread::spawn(move || {
                copy_redacted(tee, &mut sink, &room);
                let _ = tx.send(());
            });
            Ok((expr, None, Some(rx)))
        }
    }

    /// Appends another log (written by a concurrent step, or a guest's console) to this one,
    /// capped as command output is (it streams through; nothing is read whole).
    pub fn append_file(&mut self, other: &Path) {
        if let (Ok(f), Ok(mut sink)) = (File::open(other), self.sink()) {
            let room = self.room.clone();
            copy_redacted(f, &mut sink, &room);
        }
    }

    /// Rewrites what the log holds so far through `f`, line by line (secrets known only once
    /// the commands ran, scrubbed before the log is stored). Streams through a file beside
    /// the log: nothing is read whole.
    pub fn rewrite(&mut self, f: impl Fn(&str) -> String) -> Result<()> {
        use std::io::Seek;
        let _ = self.file.flush();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::tempfile_in(dir)?;
        let mut changed = false;
        let mut failed = None;
        crate::caps::for_each_line(File::open(&self.path)?, |line| {
            let new = f(line);
            changed |= new != line;
            if let Err(e) = writeln!(tmp, "{new}") {
                failed.get_or_insert(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if changed {
            tmp.seek(std::io::SeekFrom::Start(0))?;
            self.file.set_len(0)?;
            self.file.seek(std::io::SeekFrom::Start(0))?;
            std::io::copy(&mut tmp, &mut self.file)?;
        }
        Ok(())
    }

    /// How long the log is so far: with [`Log::between`], what one step of a stage wrote.
    pub fn end(&self) -> u64 {
        let _ = (&self.file).flush();
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// What the log holds between the offsets `from` and `to` ([`Log::end`] before and after
    /// a step), at most its last `max` bytes, from the start of a line.
    pub fn between(&self, from: u64, to: u64, max: u64) -> String {
        use std::io::Seek;
        let start = from.max(to.saturating_sub(max));
        let Ok(mut f) = File::open(&self.path) else {
            return String::new();
        };
        let mut bytes = Vec::new();
        if f.seek(std::io::SeekFrom::Start(start)).is_err()
            || f.take(to.saturating_sub(start))
                .read_to_end(&mut bytes)
                .is_err()
        {
            return String::new();
        }
        if start > from {
            let cut = bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| i + 1);
            bytes.drain(..cut);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last `n` lines of the log, for a failure report on stderr (read from its end, with
    /// a seek: at most `caps::LOG_TAIL_READ`).
    pub fn tail(&self, n: usize) -> String {
        let _ = (&self.file).flush();
        let bytes = crate::caps::tail(&self.path, crate::caps::LOG_TAIL_READ).unwrap_or_default();
        last_lines(&String::from_utf8_lossy(&bytes), n)
    }
}

/// What the command does in the child between fork and exec: join its cgroups, die with
/// fci, load its seccomp program, take its file size limit, its own process group and PID
/// namespace. Apart from `exec` because it is the one part that must stay
/// async-signal-safe and allocation-free; everything it uses is made before the fork.
struct ChildSetup {
    join: Vec<i32>,
    no_freeze: Option<std::sync::Arc<Vec<libc::sock_filter>>>,
    fsize: Option<u64>,
    own_group: bool,
    guard_pid_ns: bool,
    read_only_devices: bool,
}

impl ChildSetup {
    fn install(self, expr: duct::Expression) -> duct::Expression {
        let ChildSetup {
            join,
            no_freeze,
            fsize,
            own_group,
            guard_pid_ns,
            read_only_devices,
        } = self;
        expr
            // A killed fci takes what it started with it (a sandbox would otherwise run on,
            // past its timeout, after a CI job is cancelled).
            .before_spawn(move |c| {
                use std::os::unix::process::CommandExt;
                // SAFETY: write and prctl are async-signal-safe; nothing else runs between fork and exec
                // (the descriptors to write to were opened before the fork);
                // the seccomp program was built before the fork.
                let join = join.clone();
                let no_freeze = no_freeze.clone();
                // SAFETY: getpid cannot fail.
                let parent = unsafe { libc::getpid() };
                unsafe {
                    c.pre_exec(move || {
                        for fd in &join {
                            if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // fci died between the fork and the prctl: no signal will come, so
                        // the command must not start (a killed fci left a sandbox running).
                        if libc::getppid() != parent {
                            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                        }
                        if let Some(prog) = &no_freeze {
                            crate::seccomp::load(prog)?;
                        }
                        if let Some(max) = fsize {
                            let lim = libc::rlimit {
                                rlim_cur: max,
                                rlim_max: max,
                            };
                            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        // Its own process group: a terminal's Ctrl-C (sent to the foreground
                        // group) reaches fci only, and the group can be killed as one.
                        if own_group && libc::setpgid(0, 0) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // Package code cannot change the host's device nodes bwrap binds in.
                        if read_only_devices {
                            crate::devnodes::read_only_in_own_namespace()?;
                        }
                        // Last: what comes after the fork happens in the command only.
                        if guard_pid_ns {
                            own_pid_namespace()?;
                        }
                        Ok(())
                    });
                }
                Ok(())
            })
    }
}

/// The command as duct runs it, with what the child does before it execs (see
/// `ChildSetup`), its directory and environment, and the monitor of its bounds if it has
/// any (a bounded command where the kernel cannot bound it is an infrastructure error).
fn expression(
    cmd: &Cmd,
    own_group: bool,
) -> Result<(duct::Expression, Option<crate::limits::Monitor>)> {
    // Built before the fork: nothing is allocated between fork and exec.
    let no_freeze = match cmd.no_fsfreeze {
        true => Some(std::sync::Arc::new(crate::seccomp::no_fsfreeze_program()?)),
        false => None,
    };
    // A bounded command is measured before it starts (its directories' use so far).
    if cmd.bounds.is_some() && !crate::limits::Monitor::supported() {
        return Err(FciError::Infra(
            "package code cannot be bounded here: the kernel has no pidfds (Linux 5.3 or later is needed)"
                .into(),
        )
        .into());
    }
    let monitor = cmd.bounds.clone().map(crate::limits::Monitor::new);
    let fsize = monitor.as_ref().map(|m| m.file_size_limit());
    // The command's cgroups (`cgroup.procs`, open here): it joins them before it execs,
    // so that everything it starts is in them from its first fork.
    let join = monitor.as_ref().map_or_else(Vec::new, |m| m.join_fds());
    // Package code (a bounded command) runs as the first process of a PID namespace of its
    // own, so a killed fci takes all of it along (see own_pid_namespace).
    let guard_pid_ns = cmd.bounds.is_some();
    // Without root there is no host device node package code could change (and no
    // privilege to mount): see `devnodes`.
    let read_only_devices = cmd.read_only_devices && crate::users::is_root();
    let mut expr = ChildSetup {
        join,
        no_freeze,
        fsize,
        own_group,
        guard_pid_ns,
        read_only_devices,
    }
    .install(duct::cmd(&cmd.program, &cmd.args).unchecked().stdin_null());
    if let Some(d) = &cmd.dir {
        expr = expr.dir(d);
    }
    if cmd.clear_env {
        expr = expr.full_env(cmd.env.iter().cloned());
    } else {
        for (k, v) in &cmd.env {
            expr = expr.env(k, v);
        }
    }
    Ok((expr, monitor))
}

/// The end of what the command printed, for a failure to quote: its stderr for a capture,
/// otherwise what the log's copier kept of its output.
fn output_tail(
    capture: bool,
    stderr: &str,
    out_tail: &std::sync::Arc<std::sync::Mutex<Ring>>,
) -> String {
    if capture {
        failure_tail(stderr.as_bytes(), false)
    } else {
        let ring = std::mem::replace(
            &mut *out_tail.lock().unwrap_or_else(|p| p.into_inner()),
            Ring::new(0),
        );
        let cut = ring.dropped > 0;
        failure_tail(&ring.into_bytes(), cut)
    }
}

/// The two threads a capture reads its stdout and stderr through: what each kept, and
/// whether it printed more.
type Capped = Option<(
    std::thread::JoinHandle<(Vec<u8>, bool)>,
    std::thread::JoinHandle<(Vec<u8>, bool)>,
)>;

/// Waits for a started command: plainly, or, with a deadline or limits to keep, beside a
/// watchdog that kills it at either. Says how it ended, whether the deadline killed it, and
/// the limit that did, if one did.
fn wait_watched(
    handle: &duct::Handle,
    monitor: &mut Option<crate::limits::Monitor>,
    timeout: Option<std::time::Duration>,
) -> Result<(std::process::Output, bool, Option<String>)> {
    if timeout.is_none() && monitor.is_none() {
        return Ok((handle.wait()?.clone(), false, None));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let mut limit: Option<String> = None;
    let out = std::thread::scope(|sc| {
        // A watchdog waits for the deadline or the command, whichever comes first, and
        // polls the sandbox's limits meanwhile; the command's end wakes it at once.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = sc.spawn(move || -> (bool, Option<String>) {
            if monitor.is_some() {
                crate::limits::Monitor::boost();
            }
            loop {
                let now = Instant::now();
                let left = deadline.map(|d| d.saturating_duration_since(now));
                let wait = match (left, monitor.as_ref()) {
                    (Some(l), Some(m)) => l.min(m.interval()),
                    (Some(l), None) => l,
                    (None, Some(m)) => m.interval(),
                    (None, None) => std::time::Duration::from_secs(3600),
                };
                match done_rx.recv_timeout(wait) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return (false, None),
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // Killing the sandbox's bwrap takes everything inside with it.
                    if let Some(m) = monitor.as_ref() {
                        m.kill();
                    }
                    let _ = handle.kill();
                    return (true, None);
                }
                if let Some(m) = monitor.as_mut() {
                    if let Some(why) = m.poll() {
                        m.kill();
                        let _ = handle.kill();
                        return (false, Some(why));
                    }
                }
            }
        });
        let out = handle.wait().cloned();
        let _ = done_tx.send(());
        // Killed by the watchdog: a command that exited on its own at the deadline
        // (the kill came too late to matter) ended as it said.
        let (fired, over) = watchdog.join().unwrap_or((false, None));
        timed_out = fired && out.as_ref().map_or(true, |o| o.status.code().is_none());
        limit = over;
        out
    })?;
    Ok((out, timed_out, limit))
}

/// How a command ended, as the log's `# exit status` line says it.
fn status_text(
    timed_out: bool,
    limit: Option<&str>,
    code: Option<i32>,
    signal: Option<i32>,
) -> String {
    match (timed_out, code) {
        (true, _) => "killed: timed out".to_string(),
        (false, _) if limit.is_some() => {
            format!("killed: {}", limit.unwrap_or_default())
        }
        (false, Some(c)) => c.to_string(),
        (false, None) => match signal {
            Some(sig) => format!("killed by signal {sig}"),
            None => "killed by a signal".to_string(),
        },
    }
}

/// Kills a command's process group as soon as the command itself has ended (a zombie, or
/// gone), and once more when it was awaited.
struct GroupKiller {
    pid: Option<i32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The process groups of the commands running now with `own_group`: a signal handler may
/// kill them (a Ctrl-C or a SIGTERM does not reach a group of its own).
static GROUPS: [std::sync::atomic::AtomicI32; 64] =
    [const { std::sync::atomic::AtomicI32::new(0) }; 64];

fn register_group(pgid: i32) {
    use std::sync::atomic::Ordering;
    for slot in &GROUPS {
        if slot
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

fn unregister_group(pgid: i32) {
    use std::sync::atomic::Ordering;
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// SIGKILL to every registered command group. Async-signal-safe (atomics and kill(2) only),
/// for a signal handler.
pub fn kill_running_groups() {
    use std::sync::atomic::Ordering;
    for slot in &GROUPS {
        let g = slot.load(Ordering::SeqCst);
        if g > 0 {
            // SAFETY: kill(2) of a negative pid signals that group.
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
        }
    }
}

/// Makes SIGINT and SIGTERM kill the running commands' groups before fci dies of the
/// signal as it would have (for a command without a signal handler of its own, like watch).
pub fn kill_groups_on_signals() {
    extern "C" fn on_signal(sig: libc::c_int) {
        kill_running_groups();
        // SAFETY: restoring the default action and re-raising are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only uses async-signal-safe calls.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

impl GroupKiller {
    fn start(pid: Option<u32>) -> GroupKiller {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pid = pid.map(|p| p as i32);
        if let Some(p) = pid {
            register_group(p);
        }
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = pid.map(|pid| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .and_then(|s| {
                            s.rfind(')')
                                .and_then(|i| s[i + 1..].split_whitespace().next())
                                .map(str::to_string)
                        });
                    if state.as_deref().is_none_or(|st| st == "Z" || st == "X") {
                        kill_group(pid);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
        });
        GroupKiller { pid, stop, thread }
    }

    fn finish(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(pid) = self.pid {
            kill_group(pid);
            unregister_group(pid);
        }
    }
}

/// SIGKILL to process group `pgid` (a command started with `own_group`).
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) of a negative pid signals that group; at worst it is gone (ESRCH).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// A reader that keeps the end of what is read through it.
struct Tee<R>(R, std::sync::Arc<std::sync::Mutex<Ring>>);

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(&buf[..n]);
        Ok(n)
    }
}

/// The last `cap` bytes of a stream, kept as it flows past.
struct Ring {
    buf: Vec<u8>,
    cap: usize,
    /// Where the next byte goes, once `buf` is full.
    pos: usize,
    /// Bytes that fell out.
    dropped: u64,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            buf: Vec::new(),
            cap,
            pos: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if bytes.len() > self.cap {
            let skip = bytes.len() - self.cap;
            self.dropped += skip as u64;
            bytes = &bytes[skip..];
        }
        // Filling up first.
        let fill = (self.cap - self.buf.len()).min(bytes.len());
        self.buf.extend_from_slice(&bytes[..fill]);
        bytes = &bytes[fill..];
        // Then overwriting the oldest, wrapping around.
        while !bytes.is_empty() {
            let n = (self.cap - self.pos).min(bytes.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&bytes[..n]);
            self.dropped += n as u64;
            self.pos = (self.pos + n) % self.cap;
            bytes = &bytes[n..];
        }
    }

    /// What it holds, oldest first.
    fn into_bytes(mut self) -> Vec<u8> {
        self.buf.rotate_left(self.pos);
        self.buf
    }
}

/// Copies a command's output (or a file) into the log, redacting each line, within the room
/// the log has left (`room`, taken from as it is written): the head while there is room, then
/// the last `caps::LOG_TAIL_KEPT` after a note of what was cut. Past the room the output is
/// still read to its end, into a ring that keeps only its tail, so the command never blocks
/// and neither fci's memory nor the log grows with it. A line is cut at 64 KiB (a URL split
/// there may escape redaction; no honest line is that long).
fn copy_redacted(from: impl Read, to: &mut impl Write, room: &std::sync::atomic::AtomicU64) -> u64 {
    use std::io::BufRead;
    use std::sync::atomic::Ordering;
    let tail_kept = crate::caps::LOG_TAIL_KEPT;
    let mut head_left = room.load(Ordering::SeqCst).saturating_sub(tail_kept);
    let mut written = 0u64;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, from);
    let mut line = Vec::new();
    let mut batch = Vec::new();
    let mut ring: Option<Ring> = None;
    // The head: whole lines while they fit, written as soon as what was read is used up.
    loop {
        line.clear();
        let n = match (&mut reader).take(64 * 1024).read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        if n as u64 > head_left {
            let mut r = Ring::new(tail_kept as usize);
            r.push(&line);
            ring = Some(r);
            break;
        }
        head_left -= n as u64;
        let text = String::from_utf8_lossy(&line);
        if text.contains("://") {
            batch.extend_from_slice(redact(&text).as_bytes());
        } else {
            batch.extend_from_slice(&line);
        }
        if reader.buffer().is_empty() {
            // A failed write drops the batch: reading goes on, so the command never blocks
            // on a full pipe.
            if to.write_all(&batch).is_ok() {
                written += batch.len() as u64;
            }
            batch.clear();
        }
    }
    if to.write_all(&batch).is_ok() {
        written += batch.len() as u64;
    }
    // The rest: through the ring, read in chunks, to its end.
    if let Some(mut r) = ring {
        loop {
            let n = match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(buf) => {
                    r.push(buf);
                    buf.len()
                }
            };
            reader.consume(n);
        }
        let mut cut = r.dropped;
        let mut kept = r.into_bytes();
        if cut > 0 {
            // From the start of a line.
            let start = kept
                .iter()
                .position(|b| *b == b'\n')
                .map_or(kept.len(), |i| i + 1);
            kept.drain(..start);
            cut += start as u64;
        }
        let mut out = Vec::new();
        if cut > 0 {
            out.extend_from_slice(format!("\n{}\n", crate::caps::cut_note(cut)).as_bytes());
        }
        out.extend_from_slice(redact(&String::from_utf8_lossy(&kept)).as_bytes());
        if to.write_all(&out).is_ok() {
            written += out.len() as u64;
        }
    }
    let _ = to.flush();
    let _ = room.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
        Some(r.saturating_sub(written))
    });
    written
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Why a command was killed at its timeout, naming the program, the limit and its flag.
pub fn timeout_message(cmd: &Cmd) -> String {
    let secs = cmd.timeout.map_or(0, |t| t.as_secs());
    if let Some(whole) = cmd.timeout_whole.filter(|w| Some(*w) != cmd.timeout) {
        return format!(
            "{} was killed at the time limit ({} {} for the whole stage; {secs}s were left for it): what it left is not a result",
            cmd.shown(),
            cmd.timeout_flag,
            whole.as_secs()
        );
    }
    format!(
        "{} was killed after {secs}s, past its time limit ({} {secs}): what it left is not a result",
        cmd.shown(),
        cmd.timeout_flag
    )
}

/// A command as an argument vector.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub program: OsString,
    /// What messages call it (the program a sandbox runs), when not `program`'s name.
    pub name: Option<String>,
    pub args: Vec<OsString>,
    pub dir: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
    /// Start from an empty environment (only `env`), not fci's.
    pub clear_env: bool,
    /// Kill the command when it runs longer than this.
    pub timeout: Option<std::time::Duration>,
    /// The option that set `timeout`, for the message when it is reached.
    pub timeout_flag: &'static str,
    /// The limit the option set, when `timeout` is only what was left of it (a stage's
    /// commands share one), for the message.
    pub timeout_whole: Option<std::time::Duration>,
    /// The caller looks at `Finished::timed_out` itself; otherwise a timeout is an error.
    pub judges_timeout: bool,
    /// Files the command reads by descriptor number (a seccomp program for bwrap), kept open
    /// until the command is dropped.
    pub keep: Vec<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// Refuse `ioctl(FIFREEZE/FITHAW)` to the command (EPERM): see `no_fsfreeze`.
    pub no_fsfreeze: bool,
    /// Run in a mount namespace where the host's device nodes are read-only (a bwrap with
    /// `--dev`): see `devnodes`.
    pub read_only_devices: bool,
    /// Run in a process group of its own (a terminal's Ctrl-C does not reach it), killed
    /// whole when the command ends.
    pub own_group: bool,
    /// See `capture_limit`.
    pub capture_limit: Option<usize>,
    /// What a sandboxed command may use (processes, memory, scratch); see `limits`.
    pub bounds: Option<crate::limits::Bounds>,
}

/// Makes the command the first process (PID 1) of a new PID namespace, with the calling
/// process staying behind as a minimal waiter that passes its status on. Runs between fork
/// and exec, async-signal-safe calls only.
///
/// Why: a death signal (PR_SET_PDEATHSIG) is only as good as its weakest link. bwrap's
/// `--die-with-parent` sets it in its sandbox's first process *after* cloning it, without
/// checking that its parent is still there, so an fci killed in that instant left the sandbox
/// running for good (seen under load in CI: an orphaned bwrap, PID 1 of its namespace). When
/// the first process of a PID namespace dies, the kernel kills every process in it and in the
/// namespaces below it, bwrap's included; here both links of the chain are race-free:
/// fci → waiter (checked by the caller with getppid) → PID 1 (checked through a pipe whose
/// write end only the waiter holds). Without the privilege to make a namespace (not root),
/// the command runs as before, with its death signal only.
unsafe fn own_pid_namespace() -> std::io::Result<()> {
    let mut alive = [0; 2];
    if libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if libc::unshare(libc::CLONE_NEWPID) != 0 {
        libc::close(alive[0]);
        libc::close(alive[1]);
        return Ok(());
    }
    let child = libc::fork();
    if child < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if child == 0 {
        // PID 1: dies with the waiter; if the waiter is already gone, the pipe says so.
        libc::close(alive[1]);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut fds = libc::pollfd {
            fd: alive[0],
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut fds, 1, 0) != 0 {
            libc::_exit(128 + libc::SIGKILL);
        }
        libc::close(alive[0]);
        return Ok(());
    }
    // The waiter: holds nothing of the command's (its output pipes, the spawn's error pipe),
    // so fci sees the exec and the end of the output as if it had run the command itself;
    // only the pipe's write end, which tells PID 1 that the waiter lives.
    let keep = alive[1] as u32;
    if keep > 0 {
        libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
    }
    libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
    let mut status = 0;
    loop {
        let r = libc::waitpid(child, &mut status, 0);
        if r == child {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Dies of the same signal, without a core file of its own.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status));
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_os_string(),
            name: None,
            args: Vec::new(),
            dir: None,
            clear_env: false,
            keep: Vec::new(),
            env: Vec::new(),
            timeout: None,
            timeout_flag: "--timeout",
            timeout_whole: None,
            judges_timeout: false,
            no_fsfreeze: false,
            read_only_devices: false,
            own_group: false,
            capture_limit: None,
            bounds: None,
        }
    }
    /// What messages call it: its `name`, else its program's file name.
    pub fn shown(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            Path::new(&self.program)
                .file_name()
                .unwrap_or(self.program.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
    }
    /// Captures at most this many bytes of stdout and of stderr (an answer from a server;
    /// `caps::CAPTURED_OUTPUT` unless set): past it, the command's pipe is closed and
    /// `Finished::over_limit` says so.
    pub fn capture_limit(mut self, bytes: usize) -> Self {
        self.capture_limit = Some(bytes);
        self
    }
    /// See `own_group`.
    pub fn own_group(mut self) -> Self {
        self.own_group = true;
        self
    }
    /// `ostree admin deploy` ends with a freeze and thaw of the filesystem holding the
    /// sysroot's /boot, to flush it for a boot loader. A sysroot fci builds in its workspace
    /// sits on the host's filesystem, which that would freeze for everyone. Refused with EPERM
    /// (a seccomp filter, `seccomp::no_fsfreeze_program`), ostree falls back to `syncfs()`, as
    /// it does when not root.
    pub fn no_fsfreeze(mut self) -> Self {
        self.no_fsfreeze = true;
        self
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, it: I) -> Self {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    pub fn dir(mut self, d: impl Into<PathBuf>) -> Self {
        self.dir = Some(d.into());
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }
    /// For a tool whose messages fci reads (rpm's "is needed by", "incorrect format"):
    /// untranslated, whatever the caller's locale. `C` rather than `C.UTF-8`: gettext
    /// ignores `LANGUAGE` only under `C`; rpm prints file names as bytes either way.
    pub fn c_locale(self) -> Self {
        self.env("LC_ALL", "C")
    }
    pub fn timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.timeout = t;
        self
    }
    /// The whole limit `timeout` is what is left of, for its message.
    pub fn timeout_whole(mut self, whole: Option<std::time::Duration>) -> Self {
        self.timeout_whole = whole;
        self
    }
    /// The option that sets the timeout (`--timeout` unless said), for its message.
    pub fn timeout_flag(mut self, flag: &'static str) -> Self {
        self.timeout_flag = flag;
        self
    }
    /// The caller decides what a run killed at its timeout means (`Finished::timed_out`),
    /// and must: without this, `Log::run` and `capture` return an error for it.
    pub fn judges_timeout(mut self) -> Self {
        self.judges_timeout = true;
        self
    }
    /// `-D name value`-style pairs for rpm's `--define`.
    pub fn define(self, name: &str, value: impl AsRef<OsStr>) -> Self {
        let mut def = OsString::from(format!("{name} "));
        def.push(value.as_ref());
        self.arg("--define").arg(def)
    }
}

/// Marks every descriptor above stderr close-on-exec: those fci inherited from its caller
/// (a shell's `exec 7>>FILE`, a CI agent's sockets), which every command fci starts, and the
/// package code in its sandboxes (bwrap passes open descriptors on), would inherit in turn.
/// Called first in `main`, before fci opens anything of its own: the descriptors fci means a
/// command to have (`Cmd::keep`) are opened later, inheritable.
pub fn close_inherited_on_exec() {
    // SAFETY: close_range only changes descriptor flags; nothing is closed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    // Before Linux 5.11: one at a time, as /proc lists them.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD on a number: at worst EBADF (the listing's own descriptor,
        // closed by now).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_capture_holds_at_most_its_cap_of_output() {
        use super::{Cmd, Log};
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log")).unwrap();
        let cap = crate::caps::CAPTURED_OUTPUT;
        let flood = Cmd::new("sh")
            .arg("-c")
            .arg(format!("yes | head -c {}", cap + 32 * 1024 * 1024));
        let done = log.capture(&flood).unwrap();
        assert!(done.over_limit);
        // Cut output is never a success: what the command said is not all there.
        assert!(!done.success());
        assert_eq!(done.stdout.len() as u64, cap);
        // Within the cap, all of it.
        let done = log
            .capture(&Cmd::new("sh").arg("-c").arg("echo out; echo err >&2"))
            .unwrap();
        assert!(!done.over_limit && done.success());
        assert_eq!(
            (done.stdout.as_str(), done.stderr.as_str()),
            ("out\n", "err\n")
        );
    }

    #[test]
    fn a_timeout_is_an_error_unless_the_caller_judges_it() {
        use super::{Cmd, Log};
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log")).unwrap();
        let slow = Cmd::new("sleep")
            .arg("30")
            .timeout(Some(std::time::Duration::from_secs(1)));
        for capture in [false, true] {
            let e = if capture {
                log.capture(&slow)
            } else {
                log.run(&slow)
            }
            .err()
            .expect("a run killed at its timeout is an error");
            assert_eq!(crate::error::exit_code_of(&e), crate::error::exit::INFRA);
            let msg = crate::error::one_line(&e);
            assert!(msg.contains("sleep was killed after 1s"), "{msg}");
            assert!(msg.contains("--timeout 1"), "{msg}");
        }
        // A caller that judges it sees it, and never as a success.
        let done = log.run(&slow.clone().judges_timeout()).unwrap();
        assert!(done.timed_out && !done.success() && done.code.is_none());
        let named = slow.timeout_flag("--remote-timeout");
        let msg = crate::error::one_line(&log.run(&named).err().unwrap());
        assert!(msg.contains("--remote-timeout 1"), "{msg}");
    }

    #[test]
    fn a_command_killed_by_a_signal_is_no_success() {
        use super::{Cmd, Log};
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log")).unwrap();
        let done = log
            .run(&Cmd::new("sh").args(["-c", "kill -KILL $$"]))
            .unwrap();
        assert!(!done.success());
        assert!(!done.timed_out);
        assert_eq!(done.signal, Some(9));
        assert!(std::fs::read_to_string(dir.path().join("log"))
            .unwrap()
            .contains("killed by signal 9"));
    }

    fn log_in(dir: &tempfile::TempDir) -> super::Log {
        super::Log::create(&dir.path().join("log")).unwrap()
    }

    fn sh(script: &str) -> super::Cmd {
        super::Cmd::new("sh").arg("-c").arg(script)
    }

    #[test]
    fn a_checked_run_fails_with_the_tools_last_line_and_its_exit_code() {
        use super::Ending;
        use crate::error::{exit, exit_code_of, FciError};
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        let script = "echo out; echo first >&2; echo 'error: the tool line' >&2; echo >&2; exit 3";
        // Captured or run into the log (stdout and stderr share it), the same failure.
        for done in [log.capture(&sh(script)), log.run(&sh(script))] {
            let f = done.unwrap().checked().err().expect("exit 3 is a failure");
            assert_eq!((f.program.as_str(), &f.ending), ("sh", &Ending::Exit(3)));
            assert_eq!(f.to_string(), "error: the tool line (sh exited 3)");
            let e = anyhow::Error::from(f.infra("the tool failed"));
            assert_eq!(exit_code_of(&e), exit::INFRA);
            assert_eq!(
                crate::error::one_line(&e),
                "the tool failed: error: the tool line (sh exited 3)"
            );
            let e = anyhow::Error::from(f.input("/in/put", "not for this tool"));
            assert_eq!(exit_code_of(&e), exit::BAD_INPUT);
            assert!(e.downcast_ref::<FciError>().is_some());
        }
        // Silent, it is named by how it ended.
        let f = log.capture(&sh("exit 4")).unwrap().checked().err().unwrap();
        assert_eq!(f.to_string(), "sh exited 4");
        // The shorthand for a host tool, and a success through it.
        let e = log.capture_ok(&sh("exit 5"), "sh did not").err().unwrap();
        assert_eq!(exit_code_of(&e), exit::INFRA);
        assert_eq!(crate::error::one_line(&e), "sh did not: sh exited 5");
        let done = log.run_ok(&sh("echo fine"), "unused").unwrap();
        assert!(done.success() && done.failure().is_none());
    }

    #[test]
    fn a_killed_or_timed_out_or_cut_command_is_a_failure_that_says_so() {
        use super::Ending;
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        let f = log
            .run(&sh("echo dying >&2; kill -KILL $$"))
            .unwrap()
            .checked()
            .err()
            .unwrap();
        assert_eq!(f.ending, Ending::Signal(9));
        assert_eq!(f.to_string(), "dying (sh was killed by signal 9)");
        // Killed at its timeout: judged by the caller, a failure that says so.
        let slow = sh("sleep 30").timeout(Some(std::time::Duration::from_secs(1)));
        let judged = slow.clone().judges_timeout();
        let f = log.capture(&judged).unwrap().checked().err().unwrap();
        assert_eq!(f.ending, Ending::TimedOut(1));
        assert_eq!(f.to_string(), "sh was killed at its time limit (1s)");
        // Unjudged, an error of the run itself, naming the limit and its flag.
        let e = log.capture_ok(&slow, "c").err().unwrap();
        assert!(crate::error::one_line(&e).contains("--timeout 1"), "{e:#}");
        let cut = sh("yes | head -c 100000").capture_limit(1000);
        let f = log.capture(&cut).unwrap().checked().err().unwrap();
        assert_eq!(f.ending, Ending::OutputCut);
    }

    #[test]
    fn a_failures_tail_is_bounded_whole_lines_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        crate::redact::register_secret("Tok3nOfTheFailureTail");
        let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i of a chatty tool\" >&2; i=$((i+1)); done; \
             echo 'fatal: https://bob:pw12345@h.example/x refused Tok3nOfTheFailureTail' >&2; exit 1";
        for done in [log.capture(&sh(script)), log.run(&sh(script))] {
            let f = done.unwrap().checked().err().unwrap();
            assert!(f.tail.len() <= super::FAILURE_TAIL, "{}", f.tail.len());
            assert!(f.tail.len() > super::FAILURE_TAIL / 2, "{}", f.tail.len());
            assert!(f.tail.starts_with("line "), "{}", &f.tail[..40]);
            let shown = f.to_string();
            assert_eq!(
                shown,
                "fatal: https://***@h.example/x refused *** (sh exited 1)"
            );
            for leak in ["pw12345", "Tok3nOfTheFailureTail"] {
                assert!(!f.tail.contains(leak) && !shown.contains(leak), "{shown}");
            }
        }
    }
}
