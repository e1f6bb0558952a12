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
    // Only an atomic operation: the one thing a signal handler may safely do here. The
    // first signal is the one recorded (SIGTERM, then a Ctrl-C: SIGTERM).
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM are noted, not fatal, for this process, and fci is its
/// commands' child subreaper: what they leave running (a double-forked daemon) becomes fci's
/// child, not init's, so it is found and killed when the command ends.
pub fn install() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
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
        // Its own process group: a terminal's Ctrl-C reaches fci, which decides.
        let cmd = cmd.clone().own_group();
        let done = if capture {
            log.capture(&cmd)
        } else {
            log.run(&cmd)
        };
        finished.store(true, Ordering::SeqCst);
        stopped = guard.join().unwrap_or(None);
        done
    })?;
    // Nothing a command started outlives it: its group went with it; what left the group
    // (setsid) was reparented to fci, the subreaper, and goes now.
    let left = kill_descendants();
    if left > 0 {
        log.line(&format!(
            "# killed {left} processes {} left running",
            cmd.program.to_string_lossy()
        ));
    }
    reap();
    Ok(Guarded { done, stopped })
}

/// Kills every process below this one, and their process groups, repeatedly, until none is
/// left: a killed shell's children are reparented (to fci, the subreaper), so they are found
/// next time. Returns how many processes it found alive.
pub fn kill_descendants() -> usize {
    // SAFETY: getpgrp cannot fail.
    let own = unsafe { libc::getpgrp() };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let tree = descendants(std::process::id() as i32);
        if tree.is_empty() {
            break;
        }
        for (pid, pgrp) in &tree {
            seen.insert(*pid);
            if *pgrp != own {
                crate::exec::kill_group(*pgrp);
            }
            // SAFETY: kill(2) with a pid read from /proc; at worst it names a process that
            // just ended (ESRCH).
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    seen.len()
}

/// Collects the exit status of every ended child (orphans reparented to fci included), so
/// none is left a zombie. Only called when no command is running.
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child; no other code waits for one now.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// Live (not zombie) processes below `root`, with their process groups, from /proc.
fn descendants(root: i32) -> Vec<(i32, i32)> {
    let mut parent_of: Vec<(i32, i32, i32)> = Vec::new();
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
            let pgrp = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if state != "Z" && state != "X" {
                parent_of.push((pid, ppid, pgrp));
            }
        }
    }
    let mut found = vec![(root, 0)];
    let mut i = 0;
    while i < found.len() {
        let p = found[i].0;
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp, _)| *pp == p)
                .map(|(pid, _, g)| (*pid, *g)),
        );
        i += 1;
    }
    found.remove(0);
    found
}
