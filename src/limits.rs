//! Bounds on package code: how many processes, how much memory and how much scratch space
//! everything run in the sandbox may use together (time is each stage's `--timeout`).
//!
//! Where fci may make cgroups (root, a writable cgroup hierarchy), the kernel bounds processes
//! and memory: each sandboxed command gets cgroups of its own (`crate::cgroup`), which its
//! first process joins before it execs, so nothing it starts is ever outside them:
//! - processes: `pids.max` is the limit, and the kernel refuses any fork past it (processes
//!   and threads of the cgroup, bwrap and fci's mount helper included). A refused fork
//!   (`pids.events` `max`) ends the command: `pids limit N reached (P processes and threads
//!   at most: the kernel refused more)`, P being the kernel's high-water mark (`pids.peak`).
//! - memory: the kernel's count of the cgroup's anonymous memory (resident and swapped,
//!   `memory.stat`) is read every poll and ends the command at the limit; the cgroup's hard
//!   limit (`memory.max`, or v1's `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`)
//!   sits a quarter above it, so that page cache is reclaimed first and a faster eater meets
//!   the kernel's OOM killer, which also ends the command. The limit itself is not the hard
//!   limit: there the kernel reclaims page cache and program code over and over for seconds
//!   before its OOM killer acts. tmpfs pages are memory to the kernel and count toward the
//!   hard limit too.
//! - kill: a v2 cgroup's `cgroup.kill` kills the whole tree at once (on a v1-only host,
//!   the pid namespace is killed as below).
//!
//! The cgroups are removed when the command ends. cgroup v2 with the pids and memory
//! controllers (a delegated parent) is preferred, but is untested: the hosts fci is tested on
//! are v1 hybrids (v1 pids and memory, a unified hierarchy without controllers for the kill).
//! Where no cgroup can be made, fci falls back to watching processes and memory as below.
//! The stage record's `data.limits.enforced_by` says which it was
//! (`cgroup v1 (pids, memory); cgroup v2 (kill); file system (scratch); watcher (tmpfs)`).
//!
//! Where fci may make file systems, the kernel bounds scratch too: package code's writable
//! directory is a file system of the scratch size of its own (`crate::volume`), whose count
//! is read every poll instead of walking the directory, and which is stopped when full.
//!
//! The tmpfs mounts are always watched, and so, without a file system of its own, is the
//! writable directory, and without cgroups, processes and memory: fci watches the sandbox
//! from outside while it runs.
//! Every sandbox has a pid namespace of its own, so its processes are exactly those its
//! `/proc` lists; fci counts them (and their threads), sums their private memory (resident
//! and swapped), and sums its scratch: the growth of its writable directories, files it
//! deleted but still holds open, and the use of its own tmpfs mounts (`/tmp`, `/var/tmp`,
//! `/run`, `/dev/shm`, each also capped at the scratch size by the kernel). No single file may
//! exceed the scratch size (RLIMIT_FSIZE). Past a limit, fci kills the namespace's first
//! process, which takes every other one with it, and the command ends with the reason.
//!
//! The counts are sampled (every 10 ms for processes and tmpfs, 50 ms for threads and memory,
//! at least every second for the directories, sooner when their file system fills fast) by
//! a real-time thread where fci runs as root, so a runaway overshoots by what it can do in
//! that time before it is stopped (a perl fork bomb stopped at `--max-pids 64` by the watcher
//! was seen at 100 to 190 processes; by the kernel's pids limit, never past 64);
//! RLIMIT_NPROC would be exact but does not apply to root, which fci runs package code as.

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// What package code may use at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Processes and threads.
    pub pids: u64,
    /// Bytes of private memory, resident or swapped, of all its processes.
    pub memory: u64,
    /// Bytes written to its writable directories and tmpfs mounts.
    pub scratch: u64,
}

pub const DEFAULT: Limits = Limits {
    pids: 1024,
    memory: 4 * GIB,
    scratch: 8 * GIB,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT
    }
}

/// Limits some of which are set (by flags, or by fci.yaml's `limits:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    pub pids: Option<u64>,
    pub memory: Option<u64>,
    pub scratch: Option<u64>,
}

impl Partial {
    /// These, then `below`'s, then fci's defaults.
    pub fn over(self, below: Partial) -> Limits {
        Limits {
            pids: self.pids.or(below.pids).unwrap_or(DEFAULT.pids),
            memory: self.memory.or(below.memory).unwrap_or(DEFAULT.memory),
            scratch: self.scratch.or(below.scratch).unwrap_or(DEFAULT.scratch),
        }
    }
}

/// The flags of every stage that runs package code.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Most processes and threads package code may run at once (default 1024, or fci.yaml's
    /// limits.pids); past it the stage is FAILED
    #[arg(long, value_name = "N", value_parser = parse_pids)]
    pub max_pids: Option<u64>,
    /// Most memory package code may use, all its processes together (default 4GiB, or
    /// fci.yaml's limits.memory); past it the stage is FAILED
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub max_memory: Option<u64>,
    /// Most scratch space package code may fill: its build or test directory and its tmpfs
    /// mounts; also the most the change's RPMs may write when installed (test, compose)
    /// (default 8GiB, or fci.yaml's limits.scratch); past it the stage is FAILED
    #[arg(long, value_name = "SIZE", value_parser = parse_scratch)]
    pub max_scratch: Option<u64>,
}

impl LimitArgs {
    pub fn partial(&self) -> Partial {
        Partial {
            pids: self.max_pids,
            memory: self.max_memory,
            scratch: self.max_scratch,
        }
    }
}

pub const MIN_PIDS: u64 = 8;
pub const MIN_MEMORY: u64 = 16 * MIB;
pub const MIN_SCRATCH: u64 = MIB;

pub fn parse_pids(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of processes"))?;
    check_pids(n)
}

pub fn check_pids(n: u64) -> Result<u64, String> {
    if n < MIN_PIDS {
        return Err(format!(
            "{n} processes is below fci's minimum of {MIN_PIDS}"
        ));
    }
    Ok(n)
}

pub fn parse_memory(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_MEMORY {
        return Err(format!(
            "{s} is below fci's minimum of {}",
            crate::caps::human(MIN_MEMORY)
        ));
    }
    Ok(n)
}

pub fn parse_scratch(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_SCRATCH {
        return Err(format!(
            "{s} is below fci's minimum of {}",
            crate::caps::human(MIN_SCRATCH)
        ));
    }
    Ok(n)
}

/// A size: bytes, or a number with K, M, G or T (powers of 1024; `KiB`, `MB`, `g` alike).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let bad = || format!("`{s}` is not a size (bytes, or a number with K, M, G or T: 4GiB, 256M)");
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = t[digits..].trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul = match unit {
        "" => 1,
        "k" => KIB,
        "m" => MIB,
        "g" => GIB,
        "t" => 1024 * GIB,
        _ => return Err(bad()),
    };
    n.checked_mul(mul).ok_or_else(bad)
}

/// A sandboxed command was killed past a limit (the message names it): the package's
/// failure wherever package code ran.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reached(pub String);

/// What one sandboxed command may use, and where it writes.
#[derive(Clone, Debug)]
pub struct Bounds {
    pub limits: Limits,
    /// Host directories it may write: their growth is scratch.
    pub writable: Vec<PathBuf>,
    /// Its own tmpfs mounts, as it sees them: their use is scratch.
    pub tmpfs: Vec<PathBuf>,
}

const FAST: Duration = Duration::from_millis(10);
const MEMORY_EVERY: Duration = Duration::from_millis(50);
const DISK_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two walks, however slow package code makes a walk (a million
/// empty files): past it the watcher walks back to back rather than leave a window.
const DISK_MAX: Duration = Duration::from_secs(2);
const TMPFS_MAGIC: i64 = 0x0102_1994;
const PROC_MAGIC: i64 = 0x9fa0;

/// Watches one sandboxed command while it runs (see the module's description).
pub struct Monitor {
    bounds: Bounds,
    /// The command fci started (bwrap, or unshare that becomes bwrap), and a pidfd of it.
    top: Option<(i32, OwnedFd)>,
    /// The first process of the sandbox's pid namespace, and a pidfd of it. Pids are reused
    /// (a fork bomb next door wraps them quickly): every pid fci reads is checked against a
    /// pidfd still running afterwards, and signals go through pidfds.
    init: Option<(i32, OwnedFd)>,
    /// The namespace (held open, so that its identity cannot pass to another one) and its
    /// identity.
    ns: Option<(std::fs::File, (u64, u64))>,
    /// The sandbox's own /proc, held open: it lists the namespace's processes only.
    proc_dir: Option<std::fs::File>,
    /// The sandbox's tmpfs mounts, held open so that their use can be read after it ended.
    mounts: Vec<std::fs::File>,
    mounts_open: bool,
    /// The writable directories' use before the command started.
    base: u64,
    next_memory: Instant,
    next_disk: Instant,
    disk_every: Duration,
    /// When the directories were last walked: their scratch then, and how much their file
    /// systems held (anyone's writes: only a hint to walk again sooner).
    last_walk: Instant,
    last_scratch: u64,
    last_fs_used: u64,
    walk_took: Duration,
    /// The command's own cgroups, where fci could make them: the kernel's limits.
    cgroups: Option<crate::cgroup::Cgroups>,
    /// Its writable directories as file systems of their own (`crate::volume`), where each
    /// is one: the kernel's scratch limit, read instead of walking the directories.
    volumes: Option<Volumes>,
}

/// Writable directories that are each a file system of their own, of at most the scratch
/// size together: their count is the kernel's, complete, and cheap to read.
struct Volumes {
    /// Each volume once: its mountpoint, and its root held open.
    roots: Vec<(PathBuf, std::fs::File)>,
    devs: Vec<u64>,
    /// What was on them before the command started (fci's copy of the tests' tree, earlier
    /// attempts of the stage).
    base: u64,
}

impl Volumes {
    fn of(bounds: &Bounds) -> Option<Volumes> {
        use std::os::unix::fs::MetadataExt;
        if bounds.writable.is_empty() {
            return None;
        }
        let mut share = 0u64;
        let mut roots: Vec<(PathBuf, std::fs::File)> = Vec::new();
        let mut devs = Vec::new();
        for w in &bounds.writable {
            let (dir, s) = crate::volume::mounted::holding(w)?;
            if roots.iter().any(|(d, _)| d == &dir) {
                continue;
            }
            share = share.saturating_add(s);
            let f = open_dir(&dir.to_string_lossy()).ok()?;
            devs.push(f.metadata().ok()?.dev());
            roots.push((dir, f));
        }
        if share > bounds.limits.scratch {
            return None;
        }
        let mut v = Volumes {
            roots,
            devs,
            base: 0,
        };
        v.base = v.used().0;
        Some(v)
    }

    /// Bytes in use on them, and why one is full (no block or no inode left: the kernel
    /// refuses more), if one is.
    fn used(&self) -> (u64, Option<String>) {
        let (mut used, mut full) = (0, None);
        for (_, f) in &self.roots {
            let Ok(s) = rustix::fs::fstatvfs(f) else {
                continue;
            };
            used += (s.f_blocks - s.f_bfree) * s.f_frsize;
            full = full.or_else(|| crate::volume::mounted::full_of(&s));
        }
        (used, full)
    }

    /// Package code's use of them: what they hold beyond what was there before it started.
    fn grown(&self) -> (u64, Option<String>) {
        let (used, full) = self.used();
        (used.saturating_sub(self.base), full)
    }
}

/// How the bounded commands of this process were bounded, each way once (see `enforced_by`).
static ENFORCED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// How the bounded commands run since the last call were bounded (`cgroup v1 (pids, memory);
/// cgroup v2 (kill); file system (scratch); watcher (tmpfs)`), for the stage record's
/// `data.limits.enforced_by`.
pub fn enforced_by() -> Option<String> {
    let mut e = ENFORCED.lock().unwrap_or_else(|p| p.into_inner());
    let all = std::mem::take(&mut *e);
    (!all.is_empty()).then(|| all.join(" | "))
}

impl Monitor {
    /// Measures the writable directories before the command starts.
    pub fn new(bounds: Bounds) -> Monitor {
        let started = Instant::now();
        let volumes = Volumes::of(&bounds);
        // What fci put there itself: a use it cannot measure is then counted from nothing, and
        // the first poll says so.
        let base = if volumes.is_some() {
            0
        } else {
            dir_usage(&bounds.writable).unwrap_or(0)
        };
        let walk_took = started.elapsed();
        let disk_every = DISK_MIN.max(walk_took * 10).min(DISK_MAX);
        let last_fs_used = fs_used(&bounds.writable) + shmem();
        let cgroups = crate::cgroup::Cgroups::create(bounds.limits.pids, bounds.limits.memory);
        let (kernel_pids, kernel_memory) =
            cgroups.as_ref().map_or((false, false), |c| c.enforces());
        let mut watched = Vec::new();
        if !kernel_pids {
            watched.push("pids");
        }
        if !kernel_memory {
            watched.push("memory");
        }
        let mut how: Vec<String> = cgroups.iter().map(|c| c.describe()).collect();
        if volumes.is_some() {
            how.push("file system (scratch)".into());
            watched.push("tmpfs");
        } else {
            watched.push("scratch");
        }
        how.push(format!("watcher ({})", watched.join(", ")));
        let how = how.join("; ");
        {
            let mut e = ENFORCED.lock().unwrap_or_else(|p| p.into_inner());
            if !e.contains(&how) {
                e.push(how);
            }
        }
        Monitor {
            cgroups,
            volumes,
            last_walk: Instant::now(),
            last_scratch: 0,
            last_fs_used,
            walk_took,
            bounds,
            top: None,
            init: None,
            ns: None,
            proc_dir: None,
            mounts: Vec::new(),
            mounts_open: false,
            base,
            next_memory: Instant::now(),
            next_disk: Instant::now() + disk_every,
            disk_every,
        }
    }

    /// Whether this kernel has what the monitor needs (pidfds: Linux 5.3 or later).
    pub fn supported() -> bool {
        // SAFETY: getpid cannot fail.
        pidfd_open(unsafe { libc::getpid() }).is_some()
    }

    /// The command started, not yet waited for (so its pid is still its own).
    pub fn attach(&mut self, pid: u32) {
        let pid = pid as i32;
        self.top = pidfd_open(pid).map(|fd| (pid, fd));
    }

    /// Makes the calling thread (the one that polls) a real-time one where fci may (as root):
    /// a fork bomb's thousands of runnable processes would otherwise delay each poll by as
    /// long as they take to double a few times. It sleeps between polls, so it takes little.
    pub fn boost() {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is the calling thread; the parameter is plain data. Failure (no
        // privilege) leaves the thread as it was.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
        }
    }

    /// How long to wait before the next `poll`.
    pub fn interval(&self) -> Duration {
        FAST
    }

    /// RLIMIT_FSIZE for the command: no file larger than the scratch limit.
    pub fn file_size_limit(&self) -> u64 {
        self.bounds.limits.scratch
    }

    /// The descriptors (each a `cgroup.procs`) the command's first process writes `0` to
    /// before it execs, to join its cgroups; empty where there are none.
    pub fn join_fds(&self) -> Vec<i32> {
        self.cgroups
            .as_ref()
            .map_or_else(Vec::new, |c| c.join_fds())
    }

    /// The limit the sandbox is past, if any.
    pub fn poll(&mut self) -> Option<String> {
        let limits = self.bounds.limits;
        if let Some(why) = self.cgroups.as_ref().and_then(|c| c.reached(limits.memory)) {
            return Some(why);
        }
        let init = self.find_init()?;
        let proc_dir = fd_path(self.proc_dir.as_ref()?);
        let pids = ns_pids(&proc_dir);
        if pids.len() as u64 > limits.pids {
            return Some(pids_reached(limits.pids, pids.len() as u64, "processes"));
        }
        if !self.mounts_open && has_children(init) {
            // The command runs: the sandbox's mounts are in place.
            self.open_mounts(init);
        }
        let tmpfs = self.tmpfs_used();
        if tmpfs >= limits.scratch {
            return Some(scratch_reached(limits.scratch, Some(tmpfs)));
        }
        let grown = self.volumes.as_ref().map(Volumes::grown);
        if let Some((grown, full)) = &grown {
            if let Some(why) = full {
                return Some(scratch_full(limits.scratch, why));
            }
            if tmpfs + grown >= limits.scratch {
                return Some(scratch_reached(limits.scratch, Some(tmpfs + grown)));
            }
        }
        let now = Instant::now();
        if now >= self.next_memory {
            self.next_memory = now + MEMORY_EVERY;
            let (threads, memory) = threads_and_memory(&proc_dir, &pids);
            if threads > limits.pids {
                return Some(pids_reached(limits.pids, threads, "threads"));
            }
            if memory >= limits.memory {
                return Some(format!(
                    "memory limit {} reached ({} seen)",
                    crate::caps::human(limits.memory),
                    show_mib(memory)
                ));
            }
        }
        if let Some(v) = &self.volumes {
            // Nothing to walk: files held open or deleted on a volume are in its count. What
            // is held elsewhere (memfds: shared memory) is still looked for every second.
            if now >= self.next_disk {
                self.next_disk = now + DISK_MIN;
                let held = deleted_open(&proc_dir, &pids, &v.devs);
                let used = tmpfs + grown.as_ref().map_or(0, |(g, _)| *g) + held;
                if used >= limits.scratch {
                    return Some(scratch_reached(limits.scratch, Some(used)));
                }
            }
            return None;
        }
        // Walk the directories at least every second (less often when a walk is slow), and
        // sooner when their file systems, or the host's shared memory (memfds, which the walk
        // finds held open), filled by more than half of what is left (a fast writer would
        // otherwise overshoot by a second of writing).
        let fs_now = fs_used(&self.bounds.writable) + shmem();
        let left = limits.scratch.saturating_sub(self.last_scratch);
        let filling = fs_now.saturating_sub(self.last_fs_used) > left / 2
            && now >= self.last_walk + (self.walk_took * 4).max(Duration::from_millis(50));
        if now >= self.next_disk || filling {
            let started = Instant::now();
            let walked = match dir_usage(&self.bounds.writable) {
                Ok(n) => n,
                Err(why) => return Some(scratch_unmeasured(limits.scratch, &why)),
            };
            let used =
                tmpfs + walked.saturating_sub(self.base) + deleted_open(&proc_dir, &pids, &[]);
            self.walk_took = started.elapsed();
            self.disk_every = DISK_MIN.max(self.walk_took * 10).min(DISK_MAX);
            self.last_walk = Instant::now();
            self.last_scratch = used;
            self.last_fs_used = fs_now;
            self.next_disk = Instant::now() + self.disk_every;
            if used >= limits.scratch {
                return Some(scratch_reached(limits.scratch, Some(used)));
            }
        }
        None
    }

    /// After the command ended by itself, unsuccessfully: whether its scratch was full (a
    /// writer stopped by a full tmpfs or by RLIMIT_FSIZE may end before a poll sees it).
    pub fn finish(&mut self) -> Option<String> {
        // A process the kernel's OOM killer killed, a fork it refused: the command may have
        // ended of it before a poll saw it.
        let memory = self.bounds.limits.memory;
        if let Some(why) = self.cgroups.as_ref().and_then(|c| c.reached(memory)) {
            return Some(why);
        }
        let limit = self.bounds.limits.scratch;
        if let Some((_, Some(why))) = self.volumes.as_ref().map(Volumes::grown) {
            self.mounts.clear();
            return Some(scratch_full(limit, &why));
        }
        // A little below the limit: a file cut at the limit, a tmpfs full to its last page.
        let nearly = limit - limit / 100;
        let walked = match &self.volumes {
            Some(v) => Ok(v.grown().0),
            None => dir_usage(&self.bounds.writable).map(|w| w.saturating_sub(self.base)),
        };
        let walked = match walked {
            Ok(n) => n,
            Err(why) => {
                self.mounts.clear();
                return Some(scratch_unmeasured(limit, &why));
            }
        };
        let used = self.tmpfs_used() + walked;
        let full_tmpfs = self.mounts.iter().any(|m| {
            statvfs_of(m).is_some_and(|(used, size)| size > 0 && used >= size - size / 100)
        });
        self.mounts.clear();
        (used >= nearly || full_tmpfs).then(|| scratch_reached(limit, None))
    }

    /// Kills everything in the sandbox. The namespace's first process would take all others
    /// with it (the kernel kills a pid namespace whose init dies, and no process can join it
    /// then), but only once it runs again, which thousands of forking processes delay: so
    /// each process of the namespace is killed too, pass after pass until none is left (a
    /// process with a SIGKILL pending cannot fork).
    pub fn kill(&self) {
        let kill = |pid: i32| {
            if pid > 1 {
                // SAFETY: kill(2) with a positive pid signals that process only.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        };
        // A v2 cgroup kills all of it at once, forks racing with the kill included.
        let whole = self.cgroups.as_ref().is_some_and(|c| c.kill());
        for (_, fd) in [&self.init, &self.top].into_iter().flatten() {
            pidfd_kill(fd);
        }
        if whole {
            return;
        }
        let Some((_, ns)) = self.ns else { return };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let mut found = false;
            let Ok(rd) = std::fs::read_dir("/proc") else {
                return;
            };
            for e in rd.filter_map(|e| e.ok()) {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                // The namespace is held open: no other one can have its identity.
                if ns_of(pid) == Some(ns) {
                    found = true;
                    kill(pid);
                }
            }
            if !found {
                return;
            }
            // The killed need a moment of CPU to die; this thread may be real-time.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The sandbox's first process: the child of the started command in another pid
    /// namespace. Its namespace and its /proc are opened, and believed only when both it and
    /// the started command still run afterwards (so neither pid had passed to another process).
    fn find_init(&mut self) -> Option<i32> {
        if let Some((pid, _)) = &self.init {
            return Some(*pid);
        }
        let (top, top_fd) = self.top.as_ref()?;
        let top = *top;
        let own = ns_of(top)?;
        let children_of = |p: i32| -> Vec<(i32, i32)> {
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
                .map(|c| (p, c))
                .collect()
        };
        // The started command's child, or its grandchild when fci started it as the first
        // process of a namespace of its own (exec::own_pid_namespace: a waiter, then bwrap).
        let mut candidates = children_of(top);
        let grand: Vec<(i32, i32)> = candidates
            .iter()
            .flat_map(|(_, c)| children_of(*c))
            .collect();
        candidates.extend(grand);
        for (parent, c) in candidates {
            let Some(fd) = pidfd_open(c) else { continue };
            let Ok(ns_file) = std::fs::File::open(format!("/proc/{c}/ns/pid")) else {
                continue;
            };
            let Ok(m) = ns_file.metadata() else { continue };
            let ns = {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            };
            if ns == own || parent_of(c) != Some(parent) {
                continue;
            }
            let Ok(proc_dir) = open_dir(&format!("/proc/{c}/root/proc")) else {
                continue;
            };
            // Before bwrap has changed its root, that is the host's /proc: the sandbox's own
            // lists the sandbox's first process as its pid 1.
            let first = std::fs::metadata(fd_path(&proc_dir).join("1/ns/pid"))
                .ok()
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.dev(), m.ino())
                });
            if first != Some(ns)
                || !running(&fd)
                || !running(top_fd)
                || fs_type(&proc_dir) != Some(PROC_MAGIC)
            {
                continue;
            }
            self.init = Some((c, fd));
            self.ns = Some((ns_file, ns));
            self.proc_dir = Some(proc_dir);
            return Some(c);
        }
        None
    }

    fn open_mounts(&mut self, init: i32) {
        let Some((_, init_fd)) = &self.init else {
            return;
        };
        let mut opened = Vec::new();
        for t in &self.bounds.tmpfs {
            let rel = t.strip_prefix("/").unwrap_or(t);
            let Ok(f) = open_dir(&format!("/proc/{init}/root/{}", rel.display())) else {
                continue;
            };
            // The sandbox's own tmpfs, not what lies under it on the host.
            let host_dev = std::fs::metadata(t).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.dev()
            });
            let dev = f.metadata().ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.dev()
            });
            if fs_type(&f) == Some(TMPFS_MAGIC) && dev.is_some() && dev != host_dev {
                opened.push(f);
            }
        }
        // Believed only if the sandbox's first process (whose root was read) still runs.
        if running(init_fd) {
            self.mounts = opened;
            self.mounts_open = true;
        }
    }

    fn tmpfs_used(&self) -> u64 {
        self.mounts
            .iter()
            .filter_map(statvfs_of)
            .map(|(used, _)| used)
            .sum()
    }
}

fn pids_reached(n: u64, seen: u64, what: &str) -> String {
    format!("pids limit {n} reached ({seen} {what} seen)")
}

fn scratch_reached(n: u64, seen: Option<u64>) -> String {
    match seen {
        Some(used) => format!(
            "scratch limit {} reached ({} seen)",
            crate::caps::human(n),
            show_mib(used)
        ),
        None => format!("scratch limit {} reached", crate::caps::human(n)),
    }
}

/// Scratch whose use the walk could not measure (package code made a directory it cannot
/// read): counted as past the limit, since what is there is unknown.
/// The volume is full (`why`: no block, or no inode, left).
pub fn scratch_full(n: u64, why: &str) -> String {
    format!(
        "scratch limit {} reached (its file system is full, {why}: the kernel refused more)",
        crate::caps::human(n)
    )
}

fn scratch_unmeasured(n: u64, why: &str) -> String {
    format!(
        "scratch limit {} reached (its use cannot be measured: {why})",
        crate::caps::human(n)
    )
}

/// Bytes as whole MiB, for what a poll saw.
fn show_mib(n: u64) -> String {
    format!("{} MiB", n / MIB)
}

fn ns_of(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((m.dev(), m.ino()))
}

/// A pidfd of a process (None when it is gone, or the kernel has no pidfds).
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags; the result is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative result is a fresh descriptor owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process of a pidfd has not exited (a pidfd polls readable once it has).
fn running(fd: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}

fn pidfd_kill(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a pidfd, a signal, no siginfo and no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn open_dir(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// A path through an open directory (`/proc/self/fd/N`).
fn fd_path(f: &std::fs::File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn has_children(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .is_ok_and(|c| !c.trim().is_empty())
}

/// The processes of the sandbox's pid namespace: what its own /proc lists.
fn ns_pids(proc_dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

/// Threads, and memory (private resident and swapped, and shared resident) in bytes, of the
/// namespace's processes.
fn threads_and_memory(proc_dir: &Path, pids: &[String]) -> (u64, u64) {
    let (mut threads, mut kib) = (0u64, 0u64);
    for p in pids {
        let Ok(status) = std::fs::read_to_string(proc_dir.join(p).join("status")) else {
            continue;
        };
        for line in status.lines() {
            let field = |name: &str| {
                line.strip_prefix(name)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if let Some(n) = field("Threads:") {
                threads += n;
            } else if let Some(n) = field("RssAnon:")
                .or_else(|| field("VmSwap:"))
                .or_else(|| field("RssShmem:"))
            {
                // Shared memory (MAP_SHARED anonymous, mapped tmpfs files and memfds) is
                // memory too; shared between processes it is counted once per process, which
                // errs on the side of the limit.
                kib += n;
            }
        }
    }
    (threads, kib * KIB)
}

/// Bytes of files the namespace's processes deleted but still hold, open or only mapped
/// (their space is in use, though no directory shows it): memfds, deleted files kept open
/// (by any thread, in its own descriptor table too),
/// deleted files mapped and then closed (no fd left; `/proc/PID/map_files` still shows the
/// mapping), and shared anonymous memory (a shmem inode, counted here as it is backed by the
/// same shared memory a tmpfs uses). Each inode once, by its allocated blocks; none on the
/// file systems `counted` (volumes, whose own count has them).
fn deleted_open(proc_dir: &Path, pids: &[String], counted: &[u64]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    for p in pids {
        // A thread may have a descriptor table of its own (unshare(CLONE_FILES)): only
        // /proc/PID/task/TID/fd shows it, and files held there were not counted.
        let tasks: Vec<PathBuf> = std::fs::read_dir(proc_dir.join(p).join("task"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path().join("fd"))
                    .collect()
            })
            .unwrap_or_default();
        let dirs = [
            proc_dir.join(p).join("fd"),
            proc_dir.join(p).join("map_files"),
        ];
        for dir in dirs.into_iter().chain(tasks) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let Ok(m) = std::fs::metadata(e.path()) else {
                    continue;
                };
                if m.is_file()
                    && m.nlink() == 0
                    && !counted.contains(&m.dev())
                    && seen.insert((m.dev(), m.ino()))
                {
                    total += m.blocks() * 512;
                }
            }
        }
    }
    total
}

/// The space the files below `dirs` take (each at least a block, so that a flood of empty
/// files counts); links are not followed, other filesystems not entered, hard links counted
/// once. Walked by directory descriptor (openat, fstatat), never by path: below a chain of
/// directories deeper than PATH_MAX no path reaches, and a walk by path skipped what package
/// code wrote there (513 MiB past a 64 MiB limit). A directory that cannot be read for
/// another reason than having gone (no search permission, too many open descriptors) leaves
/// the use unknown: `Err`, which the limit counts as reached.
pub fn dir_usage(dirs: &[PathBuf]) -> Result<u64, String> {
    use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
    use rustix::io::Errno;
    use std::os::fd::OwnedFd;
    use std::rc::Rc;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // Gone since it was listed: nothing to count.
    let gone = |e: Errno| e == Errno::NOENT || e == Errno::NOTDIR;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for d in dirs {
        let top = match openat(CWD, d.as_path(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if gone(e) || e == Errno::LOOP => continue,
            Err(e) => return Err(format!("{}: {e}", d.display())),
        };
        let dev = rustix::fs::fstat(&top)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .st_dev;
        // Directories still to read: each by its parent's descriptor (shared, and closed
        // once its last child is opened) and its name, so that a deep chain holds few open.
        let mut stack: Vec<(Rc<OwnedFd>, std::ffi::CString)> = Vec::new();
        let mut next = Some(top);
        loop {
            let dir = match next.take() {
                Some(fd) => fd,
                None => {
                    let Some((parent, name)) = stack.pop() else {
                        break;
                    };
                    match openat(&*parent, name.as_c_str(), flags, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(e) if gone(e) => continue,
                        Err(e) => return Err(format!("a directory below {}: {e}", d.display())),
                    }
                }
            };
            let entries = Dir::read_from(&dir)
                .map_err(|e| format!("a directory below {}: {e}", d.display()))?;
            let dir = Rc::new(dir);
            for entry in entries {
                let entry = entry.map_err(|e| format!("a directory below {}: {e}", d.display()))?;
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                let st = match statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(e) if gone(e) => continue,
                    Err(e) => return Err(format!("a file below {}: {e}", d.display())),
                };
                if st.st_dev != dev {
                    continue;
                }
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if st.st_nlink > 1 && !is_dir && !seen.insert(st.st_ino) {
                    continue;
                }
                total = total.saturating_add((st.st_blocks as u64 * 512).max(4096));
                if is_dir {
                    stack.push((Rc::clone(&dir), name.to_owned()));
                }
            }
        }
    }
    Ok(total)
}

/// The host's shared memory in bytes (tmpfs, memfd): anyone's, only a hint.
fn shmem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Shmem:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * KIB)
}

/// Bytes in use on the file systems of `dirs` (each file system once).
fn fs_used(dirs: &[PathBuf]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    for d in dirs {
        let Ok(f) = std::fs::File::open(d) else {
            continue;
        };
        if f.metadata().is_ok_and(|m| seen.insert(m.dev())) {
            total += statvfs_of(&f).map_or(0, |(used, _)| used);
        }
    }
    total
}

fn fs_type(f: &std::fs::File) -> Option<i64> {
    use std::os::fd::AsRawFd;
    // SAFETY: statfs is plain data; fstatfs writes it for an open descriptor.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatfs(f.as_raw_fd(), &mut s) } == 0).then_some(s.f_type)
}

/// (bytes used, size) of the filesystem an open directory is on.
fn statvfs_of(f: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::fd::AsRawFd;
    // SAFETY: statvfs is plain data; fstatvfs writes it for an open descriptor.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(f.as_raw_fd(), &mut s) } != 0 {
        return None;
    }
    let frag = s.f_frsize;
    Some(((s.f_blocks - s.f_bfree) * frag, s.f_blocks * frag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show() {
        assert_eq!(parse_size("4GiB"), Ok(4 * GIB));
        assert_eq!(parse_size("256M"), Ok(256 * MIB));
        assert_eq!(parse_size("64mb"), Ok(64 * MIB));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4 GB of ram").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(crate::caps::human(4 * GIB), "4 GiB");
        assert_eq!(crate::caps::human(256 * MIB), "256 MiB");
        assert_eq!(crate::caps::human(1000), "1000 bytes");
        assert!(parse_memory("1M").is_err());
        assert!(parse_pids("4").is_err());
        assert_eq!(parse_pids("64"), Ok(64));
    }

    #[test]
    fn flags_win_over_the_config_over_the_defaults() {
        let flags = Partial {
            pids: Some(64),
            ..Default::default()
        };
        let config = Partial {
            pids: Some(100),
            memory: Some(GIB),
            scratch: None,
        };
        assert_eq!(
            flags.over(config),
            Limits {
                pids: 64,
                memory: GIB,
                scratch: DEFAULT.scratch
            }
        );
    }
}
