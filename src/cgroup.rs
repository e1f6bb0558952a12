//! Kernel limits for one sandboxed command: cgroups made for it alone, which its first
//! process joins before it execs (so every process it ever starts is in them), removed when
//! it ends. See `crate::limits` for what is enforced how.
//!
//! In order of preference:
//! - cgroup v2 with the `pids` and `memory` controllers, where the parent of fci's own cgroup
//!   (or the root, when fci is in the root) enables both for its children (a delegated
//!   subtree): one cgroup with `pids.max`, `memory.max` and `memory.swap.max` 0. Untested:
//!   the hosts fci is tested on have no v2 controllers.
//! - cgroup v1: a child of fci's own `pids` cgroup (`pids.max`) and of its own `memory` cgroup
//!   (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` where swap is accounted).
//!   Where the unified (v2) hierarchy is mounted too, even without controllers, a child of
//!   fci's own cgroup there as well: its `cgroup.kill` kills the whole tree at once.
//!
//! A cgroup that cannot be made (not root, a read-only or absent hierarchy) is left out
//! silently: the limit it would have enforced stays with the watcher.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a cgroup of the command is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// cgroup v2 with the pids and memory controllers.
    V2Limits,
    /// cgroup v2 without controllers: for `cgroup.kill` only.
    V2Kill,
    V1Pids,
    V1Memory,
}

struct Group {
    dir: PathBuf,
    kind: Kind,
}

/// The cgroups of one command (see the module's description).
pub struct Cgroups {
    groups: Vec<Group>,
    /// Their `cgroup.procs`, open for writing: the command's first process writes `0` into
    /// each before it execs (see `join`).
    procs: Vec<File>,
    pids_limit: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Cgroups {
    /// Makes the command's cgroups with these limits; None when none could be made.
    pub fn create(pids: u64, memory: u64) -> Option<Cgroups> {
        let mounts = Mounts::read();
        let own = own_cgroups();
        // SAFETY: getpid cannot fail.
        let name = format!(
            "fci-{}-{}",
            unsafe { libc::getpid() },
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cg = Cgroups {
            groups: Vec::new(),
            procs: Vec::new(),
            pids_limit: pids,
        };
        let v2_own = mounts.v2.as_ref().and_then(|m| {
            own.iter()
                .find(|(ctl, _)| ctl.is_empty())
                .and_then(|(_, p)| m.resolve(p))
                .map(|own| (m.mountpoint.clone(), own))
        });
        if let Some((mountpoint, own)) = &v2_own {
            // The parent of fci's own cgroup: its children may have controllers (fci's own,
            // holding processes, may not give its own children any).
            let parent = if own == mountpoint {
                own.clone()
            } else {
                own.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let delegated = std::fs::read_to_string(parent.join("cgroup.subtree_control"))
                .is_ok_and(|s| {
                    let c: Vec<&str> = s.split_whitespace().collect();
                    c.contains(&"pids") && c.contains(&"memory")
                });
            if delegated && parent.starts_with(mountpoint) {
                let dir = parent.join(&name);
                let made = cg.add(dir, Kind::V2Limits, |d| {
                    write(d, "pids.max", pids)?;
                    write(d, "memory.max", ceiling(memory))?;
                    if d.join("memory.swap.max").exists() {
                        write(d, "memory.swap.max", 0)?;
                    }
                    // An OOM kill takes the whole cgroup, not one process of it.
                    let _ = write(d, "memory.oom.group", 1);
                    Ok(())
                });
                if made {
                    return Some(cg);
                }
            }
            cg.add(own.join(&name), Kind::V2Kill, |d| {
                if d.join("cgroup.kill").exists() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("no cgroup.kill"))
                }
            });
        }
        for (controller, kind) in [("pids", Kind::V1Pids), ("memory", Kind::V1Memory)] {
            let Some(m) = mounts
                .v1
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == controller))
            else {
                continue;
            };
            let Some(own) = own
                .iter()
                .find(|(ctl, _)| ctl.split(',').any(|c| c == controller))
                .and_then(|(_, p)| m.resolve(p))
            else {
                continue;
            };
            cg.add(own.join(&name), kind, |d| match kind {
                Kind::V1Pids => write(d, "pids.max", pids),
                _ => {
                    write(d, "memory.limit_in_bytes", ceiling(memory))?;
                    if d.join("memory.memsw.limit_in_bytes").exists() {
                        write(d, "memory.memsw.limit_in_bytes", ceiling(memory))?;
                    }
                    Ok(())
                }
            });
        }
        (!cg.groups.is_empty()).then_some(cg)
    }

    /// Makes one cgroup and sets it up; on any failure removes it again and says false.
    fn add(
        &mut self,
        dir: PathBuf,
        kind: Kind,
        setup: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> bool {
        if let Some(parent) = dir.parent() {
            sweep(parent);
        }
        if std::fs::create_dir(&dir).is_err() {
            return false;
        }
        let procs = setup(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
        });
        match procs {
            Ok(f) => {
                self.procs.push(f);
                self.groups.push(Group { dir, kind });
                true
            }
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                false
            }
        }
    }

    /// The descriptors the command's first process writes `0` to, between fork and exec,
    /// to join its cgroups (see `join`).
    pub fn join_fds(&self) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Whether the kernel enforces the pids limit, and the memory limit.
    pub fn enforces(&self) -> (bool, bool) {
        let has = |k: &[Kind]| self.groups.iter().any(|g| k.contains(&g.kind));
        (
            has(&[Kind::V2Limits, Kind::V1Pids]),
            has(&[Kind::V2Limits, Kind::V1Memory]),
        )
    }

    /// What enforces the limits: `cgroup v1 (pids, memory); cgroup v2 (kill)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.groups.iter().any(|g| g.kind == Kind::V2Limits) {
            parts.push("cgroup v2 (pids, memory)".to_string());
        }
        let v1: Vec<&str> = self
            .groups
            .iter()
            .filter_map(|g| match g.kind {
                Kind::V1Pids => Some("pids"),
                Kind::V1Memory => Some("memory"),
                _ => None,
            })
            .collect();
        if !v1.is_empty() {
            parts.push(format!("cgroup v1 ({})", v1.join(", ")));
        }
        if self.groups.iter().any(|g| g.kind == Kind::V2Kill) {
            parts.push("cgroup v2 (kill)".to_string());
        }
        parts.join("; ")
    }

    /// The limit the kernel stopped the command at, if any: a fork it refused at the pids
    /// limit, or a process its OOM killer killed at the memory limit.
    pub fn reached(&self, memory: u64) -> Option<String> {
        for g in &self.groups {
            let events = |file: &str, key: &str| counter(&g.dir.join(file), key);
            let pids =
                matches!(g.kind, Kind::V2Limits | Kind::V1Pids) && events("pids.events", "max") > 0;
            if pids {
                let peak = std::fs::read_to_string(g.dir.join("pids.peak"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                let n = self.pids_limit;
                return Some(match peak {
                    Some(p) => format!(
                        "pids limit {n} reached ({p} processes and threads at most: the kernel refused more)"
                    ),
                    None => format!("pids limit {n} reached (the kernel refused more)"),
                });
            }
            // Anonymous memory (resident and swapped) of all its processes, as the kernel
            // counts it: the memory limit itself (page cache, reclaimable, is not memory use).
            let stat = || std::fs::read_to_string(g.dir.join("memory.stat")).unwrap_or_default();
            let anon = match g.kind {
                Kind::V2Limits => field(&stat(), "anon"),
                Kind::V1Memory => {
                    let stat = stat();
                    field(&stat, "total_rss") + field(&stat, "total_swap")
                }
                _ => 0,
            };
            if anon >= memory {
                return Some(format!(
                    "memory limit {} reached ({} MiB seen by the kernel)",
                    crate::caps::human(memory),
                    anon >> 20
                ));
            }
            let oom = match g.kind {
                Kind::V2Limits => {
                    events("memory.events", "oom_kill") > 0 || events("memory.events", "oom") > 0
                }
                Kind::V1Memory => events("memory.oom_control", "oom_kill") > 0,
                _ => false,
            };
            if oom {
                return Some(format!(
                    "memory limit {} reached (the kernel's OOM killer stopped it at {})",
                    crate::caps::human(memory),
                    crate::caps::human(ceiling(memory))
                ));
            }
        }
        None
    }

    /// Kills everything in the command's cgroups at once, where a v2 cgroup can
    /// (`cgroup.kill`); false when none can.
    pub fn kill(&self) -> bool {
        let mut killed = false;
        for g in &self.groups {
            if matches!(g.kind, Kind::V2Limits | Kind::V2Kill) {
                killed |= std::fs::OpenOptions::new()
                    .write(true)
                    .open(g.dir.join("cgroup.kill"))
                    .and_then(|mut f| f.write_all(b"1"))
                    .is_ok();
            }
        }
        killed
    }
}

impl Drop for Cgroups {
    /// Removes the cgroups once the processes in them are gone (what is left is killed first,
    /// where a v2 cgroup can).
    fn drop(&mut self) {
        self.procs.clear();
        let until = Instant::now() + Duration::from_secs(5);
        let mut killed = false;
        for g in &self.groups {
            while std::fs::remove_dir(&g.dir).is_err() && g.dir.exists() {
                if Instant::now() >= until {
                    break;
                }
                if !killed {
                    killed = true;
                    self.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The kernel's hard memory limit for a memory limit: a quarter above it (at least 32 MiB).
/// fci stops the command when its anonymous memory reaches the limit (see `reached`); the
/// kernel's own limit, where it would reclaim the command's page cache and code over and over
/// before its OOM killer acts (seconds of thrashing), is the backstop for what grows faster
/// than fci polls.
pub fn ceiling(memory: u64) -> u64 {
    memory.saturating_add((memory / 4).max(32 << 20))
}

/// Writes a number into a cgroup's file.
fn write(dir: &Path, file: &str, n: u64) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))?
        .write_all(n.to_string().as_bytes())
}

/// A `key N` line's N in a cgroup's flat-keyed file (0 when absent).
fn counter(file: &Path, key: &str) -> u64 {
    field(&std::fs::read_to_string(file).unwrap_or_default(), key)
}

/// A `key N` line's N in a flat-keyed text (0 when absent).
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key))
                .then(|| w.next().and_then(|n| n.parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// Removes the cgroups that fci processes no longer running left in `dir` (killed before they
/// could): an empty cgroup is removed, one still holding processes stays.
fn sweep(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("fci-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// fci's own cgroups: (controllers, path) per `/proc/self/cgroup` line; v2's controllers are
/// empty.
fn own_cgroups() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

struct Mount {
    /// The hierarchy's directory mounted there.
    root: String,
    mountpoint: PathBuf,
    controllers: Vec<String>,
}

impl Mount {
    /// Where a cgroup of this hierarchy (as `/proc/self/cgroup` names it) is.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())?
        };
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return None;
        }
        Some(if rel.is_empty() {
            self.mountpoint.clone()
        } else {
            self.mountpoint.join(rel)
        })
    }
}

struct Mounts {
    v2: Option<Mount>,
    v1: Vec<Mount>,
}

impl Mounts {
    /// The cgroup hierarchies mounted in fci's mount namespace (`/proc/self/mountinfo`).
    fn read() -> Mounts {
        let mut m = Mounts {
            v2: None,
            v1: Vec::new(),
        };
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in info.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 || l[3].contains('\\') || l[4].contains('\\') {
                continue;
            }
            let mount = |controllers| Mount {
                root: l[3].to_string(),
                mountpoint: PathBuf::from(l[4]),
                controllers,
            };
            match r[0] {
                "cgroup2" if m.v2.is_none() => m.v2 = Some(mount(Vec::new())),
                "cgroup" => {
                    let c = r[2]
                        .split(',')
                        .filter(|o| *o == "pids" || *o == "memory")
                        .map(str::to_string)
                        .collect::<Vec<_>>();
                    if !c.is_empty() {
                        m.v1.push(mount(c));
                    }
                }
                _ => {}
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_fields_and_hierarchy_paths() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(field(oom, "oom_kill"), 2);
        assert_eq!(field(oom, "oom"), 0);
        assert_eq!(field("max 0\n", "max"), 0);
        let m = Mount {
            root: "/".into(),
            mountpoint: "/sys/fs/cgroup/memory".into(),
            controllers: vec!["memory".into()],
        };
        assert_eq!(
            m.resolve("/process_api/x"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/x"))
        );
        assert_eq!(m.resolve("/"), Some(PathBuf::from("/sys/fs/cgroup/memory")));
        assert_eq!(m.resolve("/a/../b"), None);
        // A hierarchy mounted from one of its cgroups (a container's view).
        let c = Mount {
            root: "/machine/ct".into(),
            mountpoint: "/sys/fs/cgroup".into(),
            controllers: Vec::new(),
        };
        assert_eq!(
            c.resolve("/machine/ct/svc"),
            Some(PathBuf::from("/sys/fs/cgroup/svc"))
        );
        assert_eq!(c.resolve("/elsewhere"), None);
        assert_eq!(ceiling(256 << 20), 320 << 20);
        assert_eq!(ceiling(16 << 20), 48 << 20);
    }
}
