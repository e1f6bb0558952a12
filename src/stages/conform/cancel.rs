//! Ctrl-C and SIGTERM during `fci conform`: a cluster may be half installed, so fci must not
//! die with it. The handler only notes the signal; commands run under a guard that kills
//! their whole process tree when a signal arrived or their time ran out, so the stage can run
//! the teardown and record what happened.

use crate::exec::{Cmd, Finished, Log};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn note_signal(sig: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do here.
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM are noted, not fatal, for this process.
pub fn install() {
    // SAFETY: the handler only stores to an atomic; sigaction with a zeroed, then filled,
    // struct is the documented way to install one. SA_RESTART keeps the rest of fci's
    // blocking calls (reads, waits) from failing with EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = note_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// The signal that asked fci to stop, if one did.
pub fn requested() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}

/// Why a guarded command did not end on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    TimedOut,
    Interrupted,
}

/// A command's end, and whether the guard ended it.
pub struct Guarded {
    pub done: Finished,
    pub stopped: Option<Stopped>,
}

/// How a guard reacts to a stop request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    Kill,
    /// The teardown: it runs to its end (or its own timeout) whatever arrives.
    Ignore,
}

/// Runs `cmd` (output to the log, or captured) and kills its process tree on a signal (unless
/// `on_signal` says not to) or after `limit`.
pub fn run(
    log: &mut Log,
    cmd: &Cmd,
    limit: Option<Duration>,
    capture: bool,
    on_signal: OnSignal,
) -> Result<Guarded> {
    let finished = AtomicBool::new(false);
    let mut stopped = None;
    let done = std::thread::scope(|sc| {
        let guard = sc.spawn(|| {
            let start = Instant::now();
            while !finished.load(Ordering::SeqCst) {
                let why = if on_signal == OnSignal::Kill && requested().is_some() {
                    Some(Stopped::Interrupted)
                } else if limit.is_some_and(|l| start.elapsed() >= l) {
                    Some(Stopped::TimedOut)
                } else {
                    None
                };
                if let Some(why) = why {
                    kill_descendants();
                    return Some(why);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            None
        });
        let done = if capture {
            log.capture(cmd)
        } else {
            log.run(cmd)
        };
        finished.store(true, Ordering::SeqCst);
        stopped = guard.join().unwrap_or(None);
        done
    })?;
    Ok(Guarded { done, stopped })
}

/// Kills every process below this one, repeatedly, until none is left: a killed shell's
/// children are reparented away from it, so they are found first and killed with it.
pub fn kill_descendants() {
    for _ in 0..50 {
        let tree = descendants(std::process::id() as i32);
        if tree.is_empty() {
            return;
        }
        for pid in &tree {
            // SAFETY: kill(2) with a pid read from /proc; at worst it names a process that
            // just ended (ESRCH).
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live (not zombie) processes below `root`, from /proc.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The command name may hold spaces and parentheses: fields follow the last `)`.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap_or("");
            let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if state != "Z" && state != "X" {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == p)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}
