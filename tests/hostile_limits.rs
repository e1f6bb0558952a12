//! Package code is bounded, not just contained: a fork bomb, a memory eater and a disk filler,
//! in `%build` and in a test, are stopped at their limits (the stage FAILED naming the limit,
//! nothing of them left running); and nothing of the caller's home reaches package code.
//! The fixtures are under `tests/hostile/`, each with its PROMISE; each is bounded itself (it
//! stops after 30 seconds and a few thousand processes, 1 GiB or 256 MiB), so a broken limit
//! makes a slow failing test, not a broken host.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, &[tool::LOSETUP]];

/// Every hostile fixture lives 30 seconds unless stopped.
const STOPPED_WITHIN: Duration = Duration::from_secs(20);
/// A test stage starts ansible or tmt first (10 s and more on a loaded machine): a test's
/// hostile run holds what it took for 120 s, so a stage over within a minute stopped it.
const TEST_STOPPED_WITHIN: Duration = Duration::from_secs(60);

fn hostile(name: &str) -> PathBuf {
    repo_root().join("tests/hostile").join(name)
}

fn notes(stage: &Value) -> String {
    stage["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn assert_nothing_left(w: &Ws) {
    // The kernel takes a moment to reap a killed namespace.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_of(&w.ws());
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still running: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn build_hostile(w: &Ws, name: &str, limit: &str) -> (Value, Duration) {
    let dir = hostile(name);
    let started = Instant::now();
    let r = w.run(&["build", dir.to_str().unwrap(), "--dist", ".fc41", limit]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    (r.stage(&m, "build").clone(), took)
}

fn assert_stopped_build(name: &str, limit: &str, reason: &str) {
    let w = Ws::new();
    let (b, took) = build_hostile(&w, name, limit);
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(notes(&b).contains(reason), "{}", notes(&b));
    assert!(
        took < STOPPED_WITHIN,
        "took {took:?}: the hostile code was not stopped"
    );
    assert_nothing_left(&w);
    // Not reused: another run may be given other limits.
    let (again, _) = build_hostile(&w, name, limit);
    assert_eq!(again["cached"], false);
    assert_nothing_left(&w);
}

#[test]
fn a_fork_bomb_in_build_is_stopped_at_the_pids_limit() {
    assert_stopped_build(
        "limits-fork-bomb-build",
        "--max-pids=64",
        "pids limit 64 reached",
    );
}

#[test]
fn a_memory_eater_in_build_is_stopped_at_the_memory_limit() {
    assert_stopped_build(
        "limits-memory-eater-build",
        "--max-memory=256M",
        "memory limit 256 MiB reached",
    );
}

#[test]
fn a_disk_filler_in_build_is_stopped_at_the_scratch_limit() {
    assert_stopped_build(
        "limits-disk-filler-build",
        "--max-scratch=64M",
        "scratch limit 64 MiB reached",
    );
}

#[test]
fn a_disk_filler_below_a_path_longer_than_path_max_is_stopped_at_the_scratch_limit() {
    assert_stopped_build(
        "limits-deep-disk-filler-build",
        "--max-scratch=64M",
        "scratch limit 64 MiB reached",
    );
}

#[test]
fn files_a_thread_holds_in_its_own_descriptor_table_are_stopped_at_the_scratch_limit() {
    assert_stopped_build(
        "limits-thread-fd-filler-build",
        "--max-scratch=64M",
        "scratch limit 64 MiB reached",
    );
}

/// Mount points below `dir` (package code's volumes) in this process's (the host's) mount
/// table.
fn mounts_below(dir: &Path) -> Vec<String> {
    mounts_in("self", dir)
}

/// Loop devices whose backing file lies below `dir`.
fn loops_below(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("losetup")
        .args(["--list", "--noheadings", "--output", "BACK-FILE"])
        .output()
        .expect("losetup (util-linux)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|f| Path::new(f).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// The watcher found no descriptor in flight over a unix socket (no kernel interface lists
/// one): the file system of the scratch size that the build writes to counts those files.
#[test]
fn files_held_only_by_descriptors_in_flight_are_stopped_at_the_scratch_limit() {
    let w = Ws::new();
    let (b, took) = build_hostile(&w, "limits-inflight-fd-filler-build", "--max-scratch=64M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        notes(&b).contains(
            "scratch limit 64 MiB reached (its file system is full, no block left: the kernel refused more)"
        ),
        "{}",
        notes(&b)
    );
    let enforced = b["data"]["limits"]["enforced_by"].as_str().unwrap_or("");
    assert!(
        enforced.contains("file system (scratch)"),
        "this host should give package code a file system of its own (root, a loop device, mkfs.ext4): {enforced}"
    );
    assert!(took < STOPPED_WITHIN, "took {took:?}");
    assert_nothing_left(&w);
    // The volume went with the stage.
    assert_eq!(mounts_below(&w.ws()), Vec::<String>::new());
    assert_eq!(loops_below(&w.ws()), Vec::<String>::new());
}

/// Mount points below `dir` in the mount namespace of process `pid`.
fn mounts_of(pid: u32, dir: &Path) -> Vec<String> {
    mounts_in(&pid.to_string(), dir)
}

/// Mount points below `dir` in `/proc/<pid>/mountinfo` (`pid` may be `self`).
fn mounts_in(pid: &str, dir: &Path) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// fci mounts its volumes in a mount namespace of its own, which the host never sees and
/// which goes with it: a fci killed outright leaves no mount and no loop device behind, and
/// the next run removes its scratch.
#[test]
fn a_killed_fci_leaves_no_volume_behind() {
    let w = Ws::new();
    let dir = hostile("limits-inflight-fd-filler-build");
    let mut child = w
        .cmd()
        .args(["build", dir.to_str().unwrap(), "--dist", ".fc41"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STOPPED_WITHIN;
    let mut seen = Vec::new();
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "no volume was mounted");
        std::thread::sleep(Duration::from_millis(20));
        seen = mounts_of(child.id(), &w.ws());
    }
    // Never in the host's mount table.
    assert_eq!(mounts_below(&w.ws()), Vec::<String>::new());
    assert_eq!(loops_below(&w.ws()).len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(processes_of(&w.ws()).is_empty() && loops_below(&w.ws()).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?} {:?}",
            processes_of(&w.ws()),
            loops_below(&w.ws())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mounts_below(&w.ws()), Vec::<String>::new());
    // Its scratch, once old enough that no run could still be setting it up, goes with the
    // next run.
    let scratch = Path::new(&seen[0]).parent().unwrap().to_path_buf();
    let old = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&scratch)
        .status()
        .unwrap();
    assert!(old.success());
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!scratch.exists(), "{} was not removed", scratch.display());
}

#[test]
fn memory_held_in_memfds_in_build_is_stopped_at_the_scratch_limit() {
    assert_stopped_build(
        "limits-memfd-filler-build",
        "--max-scratch=128M",
        "scratch limit 128 MiB reached",
    );
}

#[test]
fn shared_anonymous_memory_in_build_is_stopped_at_a_limit() {
    // Shared memory is memory and shmem both: whichever limit sees it first stops it.
    let w = Ws::new();
    let (b, took) = build_hostile(&w, "limits-shared-memory-build", "--max-memory=256M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    let n = notes(&b);
    assert!(
        n.contains("scratch limit 8 GiB reached") || n.contains("memory limit 256 MiB reached"),
        "{n}"
    );
    assert!(took < STOPPED_WITHIN, "took {took:?}: not stopped");
    assert_nothing_left(&w);
}

#[test]
fn disk_written_through_mappings_of_deleted_files_is_stopped_at_the_scratch_limit() {
    assert_stopped_build(
        "limits-mapped-deleted-build",
        "--max-scratch=128M",
        "scratch limit 128 MiB reached",
    );
}

fn built(w: &Ws) -> Value {
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.manifest()
}

fn assert_stopped_test(name: &str, run_name: &str, limit: &str, reason: &str) {
    let w = Ws::new();
    let m = built(&w);
    let tests = hostile(name);
    let started = Instant::now();
    let r = w.test(&m, &["--tests-from", tests.to_str().unwrap(), limit]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}\n{}", r.stderr, r.stdout);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(t["outcome"], "FAILED", "{t:#}");
    assert!(notes(t).contains(reason), "{}", notes(t));
    let run = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["testcase"] == run_name)
        .unwrap_or_else(|| panic!("no result for the playbook: {t:#}"));
    assert_eq!(run["outcome"], "FAILED");
    assert!(run["note"].as_str().unwrap().contains(reason), "{run:#}");
    assert!(
        took < TEST_STOPPED_WITHIN,
        "took {took:?}: the hostile test was not stopped"
    );
    assert_nothing_left(&w);
}

#[test]
fn a_fork_bomb_in_a_test_is_stopped_at_the_pids_limit() {
    assert_stopped_test(
        "limits-fork-bomb-test",
        "tests/tests.yml",
        "--max-pids=64",
        "pids limit 64 reached",
    );
}

#[test]
fn a_memory_eater_in_a_test_is_stopped_at_the_memory_limit() {
    assert_stopped_test(
        "limits-memory-eater-test",
        "tests/tests.yml",
        "--max-memory=256M",
        "memory limit 256 MiB reached",
    );
}

#[test]
fn a_memory_eater_in_a_tmt_test_is_stopped_at_the_memory_limit() {
    assert_stopped_test(
        "limits-memory-eater-tmt",
        "tmt",
        "--max-memory=256M",
        "memory limit 256 MiB reached",
    );
}

#[test]
fn a_disk_filler_in_a_test_is_stopped_at_the_scratch_limit() {
    assert_stopped_test(
        "limits-disk-filler-test",
        "tests/tests.yml",
        "--max-scratch=64M",
        "scratch limit 64 MiB reached",
    );
}

#[test]
fn a_small_package_builds_and_tests_within_the_default_limits() {
    let w = Ws::new();
    let m = built(&w);
    let r = w.test(&m, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "test")["outcome"], "PASSED");
    // Both wrote to a file system of their own, which the kernel bounds.
    for stage in ["build", "test"] {
        let enforced = r.stage(&m, stage)["data"]["limits"]["enforced_by"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            enforced.ends_with("file system (scratch); watcher (tmpfs)"),
            "{stage}: {enforced}"
        );
    }
}

#[test]
fn limits_below_fcis_minimum_are_refused() {
    let w = Ws::new();
    for (flag, says) in [
        ("--max-pids=2", "minimum"),
        ("--max-memory=1M", "minimum"),
        ("--max-scratch=lots", "not a size"),
    ] {
        let r = w.run(&[
            "build",
            hostile("limits-fork-bomb-build").to_str().unwrap(),
            flag,
        ]);
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{flag}: {}", r.stderr);
    }
}

/// A home directory with a pyenv in it, as the caller's: removed when dropped.
struct FakeHome(PathBuf);

impl Drop for FakeHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path the `limits-home-hidden-test` fixture looks for.
const FAKE_HOME: &str = "/home/fci-hostile-home";

fn fake_home(at: &str) -> FakeHome {
    use std::os::unix::fs::PermissionsExt;
    let home = FakeHome(PathBuf::from(at));
    let _ = std::fs::remove_dir_all(&home.0);
    for dir in [".pyenv/shims", ".pyenv/versions/3.99.0/bin", "bin"] {
        std::fs::create_dir_all(home.0.join(dir)).unwrap();
    }
    let python = home.0.join(".pyenv/versions/3.99.0/bin/python3");
    std::fs::write(&python, "#!/bin/sh\necho CALLERS-PYTHON\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&python, home.0.join(".pyenv/shims/python3")).unwrap();
    home
}

#[test]
fn tests_never_see_the_callers_home_or_pyenv() {
    let w = Ws::new();
    let m = built(&w);
    let home = fake_home(FAKE_HOME);
    let path = format!(
        "{0}/.pyenv/shims:{0}/.pyenv/bin:{1}",
        home.0.display(),
        std::env::var("PATH").unwrap()
    );
    let p = w.save("in.json", &m);
    let tests = hostile("limits-home-hidden-test");
    let out = w
        .cmd()
        .env("HOME", &home.0)
        .env("PYENV_ROOT", home.0.join(".pyenv"))
        .env("PATH", &path)
        .args([
            "test",
            "-m",
            p.to_str().unwrap(),
            "--tests-from",
            tests.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    let m = r.manifest();
    let t = r.stage(&m, "test");
    assert_eq!(
        results(t),
        vec![("home-hidden".to_string(), "PASSED".to_string())],
        "{t:#}"
    );
}

#[test]
fn a_test_runner_installed_in_a_home_is_refused_not_given_the_home() {
    use std::os::unix::fs::PermissionsExt;
    let w = Ws::new();
    let m = built(&w);
    let home = fake_home("/home/fci-hostile-tool");
    let fake = home.0.join("bin/ansible-playbook");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}/bin:{}",
        home.0.display(),
        std::env::var("PATH").unwrap()
    );
    let p = w.save("in.json", &m);
    let tests = fixture("plain-sti");
    let out = w
        .cmd()
        .env("PATH", &path)
        .args([
            "test",
            "-m",
            p.to_str().unwrap(),
            "--tests-from",
            tests.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ansible-playbook") && r.stderr.contains("hides from package code"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_runaway_leaves_a_concurrent_run_unaffected() {
    let w = Ws::new();
    let (bomb, normal) = std::thread::scope(|s| {
        let bomb = s.spawn(|| {
            let dir = hostile("limits-fork-bomb-build");
            w.run(&[
                "build",
                dir.to_str().unwrap(),
                "--dist",
                ".fc41",
                "--max-pids=64",
            ])
        });
        let normal = s.spawn(|| w.build("hello-atomic", &["--max-pids=64"]));
        (bomb.join().unwrap(), normal.join().unwrap())
    });
    assert_eq!(bomb.code, 1, "{}", bomb.stderr);
    let bm = bomb.manifest();
    let b = bomb.stage(&bm, "build");
    assert!(notes(b).contains("pids limit 64 reached"), "{}", notes(b));
    // The same limits, in the same workspace at the same time: a package that needs few
    // processes builds as ever.
    assert_eq!(normal.code, 0, "{}\n{}", normal.stderr, normal.stdout);
    let m = normal.manifest();
    assert_eq!(normal.stage(&m, "build")["outcome"], "PASSED");
    assert_nothing_left(&w);
}

/// Whether fci can bound package code with cgroups here: root, with the v1 pids controller
/// or a v2 hierarchy offering the pids controller.
fn cgroups_offered() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let v2_pids = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
    root && (Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() || v2_pids)
}

/// The cgroups named after the fci process `pid` (`fci-<pid>-<n>`) anywhere below
/// /sys/fs/cgroup (every v1 hierarchy and the unified one).
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("fci-{pid}-");
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path());
            }
            if depth < 12 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found
}

#[test]
fn a_fork_bomb_is_stopped_by_the_kernel_at_the_pids_limit_and_its_cgroups_removed() {
    // Never a silent skip: this machine kind (and CI) offers cgroups to root; a host that
    // does not must say so loudly here.
    assert!(
        cgroups_offered(),
        "no cgroups fci may use here (this test needs the v1 pids cgroup or v2 with pids)"
    );
    let w = Ws::new();
    let dir = hostile("limits-fork-bomb-build");
    let child = w
        .cmd()
        .args([
            "build",
            dir.to_str().unwrap(),
            "--dist",
            ".fc41",
            "--max-pids=64",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let fci = child.id();
    // Seen from outside while it runs: the run's processes (counted as `processes_of` finds
    // them), and what the kernel counts in its cgroups.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (out, seen, counted) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut seen, mut counted) = (0, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // fci itself supervises from outside the limit (its command line names the
                // workspace too): only what it started counts against the package's 64.
                let own = format!("{fci}: ");
                let run = processes_of(&w.ws());
                seen = seen.max(run.iter().filter(|p| !p.starts_with(&own)).count());
                for cg in cgroups_of(fci) {
                    let current = std::fs::read_to_string(cg.join("pids.current"))
                        .ok()
                        .and_then(|c| c.trim().parse::<u64>().ok());
                    counted = counted.max(current.unwrap_or(0));
                }
            }
            (seen, counted)
        });
        let out = child.wait_with_output().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let (seen, counted) = sampler.join().unwrap();
        (out, seen, counted)
    });
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let b = r.stage(&m, "build");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    let enforced = b["data"]["limits"]["enforced_by"]
        .as_str()
        .unwrap_or_default();
    assert!(enforced.starts_with("cgroup v"), "{b:#}");
    // The kernel's own high-water mark of the run's processes and threads (pids.peak), or
    // its word that it refused a fork at the limit.
    let n = notes(b);
    let peak = n
        .split("pids limit 64 reached (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse::<u64>().ok());
    assert!(
        n.contains("the kernel refused more") && peak.is_none_or(|p| p <= 64),
        "{n}"
    );
    assert!(seen <= 64, "{seen} processes of the run seen at once: {n}");
    assert!(counted <= 64, "{counted} in its pids cgroup: {n}");
    eprintln!("peak {peak:?}, seen {seen}, counted {counted}; {enforced}");
    assert_nothing_left(&w);
    // Its cgroups went with it, in every hierarchy.
    assert_eq!(cgroups_of(fci), Vec::<PathBuf>::new());
}

/// The bytes of every file below `dir` as their length says (holes included).
fn apparent_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// Copied byte by byte, forty logs of a 32 MiB hole each would have put 1.3 GB into the
/// store from 64 MiB of scratch.
#[test]
fn sparse_test_logs_are_never_copied_out() {
    let w = Ws::new();
    let m = built(&w);
    let before = apparent_size(&w.ws());
    let tests = hostile("sparse-logs-test");
    let r = w.test(
        &m,
        &["--tests-from", tests.to_str().unwrap(), "--max-scratch=64M"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.manifest();
    let t = r.stage(&out, "test");
    assert_eq!(t["outcome"], "PASSED", "{t:#}");
    let cases: Vec<&Value> = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["testcase"].as_str().unwrap_or("").contains("case-"))
        .collect();
    assert_eq!(cases.len(), 40, "{t:#}");
    assert!(
        cases
            .iter()
            .all(|c| c["outcome"] == "PASSED" && c["log"].is_null()),
        "{t:#}"
    );
    let grown = apparent_size(&w.ws()) - before;
    assert!(
        grown < 32 * 1024 * 1024,
        "the workspace grew by {grown} bytes"
    );
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn junk_in_the_builds_output_is_the_packages_failure() {
    let w = Ws::new();
    let (b, _) = build_hostile(&w, "junk-rpms-build", "--max-scratch=64M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        notes(&b).contains("rpm cannot read the build's packages"),
        "{}",
        notes(&b)
    );
}

#[test]
fn a_spec_that_fills_its_file_system_while_parsed_is_failed_not_an_error() {
    let w = Ws::new();
    let (b, _) = build_hostile(&w, "inode-filler-parse", "--max-scratch=1M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        notes(&b).contains("scratch limit 1 MiB reached (its file system is full, no inode left"),
        "{}",
        notes(&b)
    );
}

/// A file per 4 KiB of scratch: a build of many small files is not stopped for inodes
/// before it has used its blocks.
#[test]
fn a_build_of_many_small_files_fits_its_scratch() {
    let w = Ws::new();
    let r = w.run(&[
        "build",
        fixture("many-small-files").to_str().unwrap(),
        "--dist",
        ".fc41",
        "--max-scratch=1G",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "build")["outcome"], "PASSED");
}

#[test]
fn hard_linked_test_logs_are_copied_out_within_twice_the_scratch() {
    let w = Ws::new();
    let m = built(&w);
    let before = apparent_size(&w.ws());
    let tests = hostile("hardlinked-logs-test");
    let r = w.test(
        &m,
        &["--tests-from", tests.to_str().unwrap(), "--max-scratch=64M"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.manifest();
    let t = r.stage(&out, "test");
    assert_eq!(t["outcome"], "PASSED", "{t:#}");
    let cases: Vec<&Value> = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["testcase"].as_str().unwrap_or("").contains("case-"))
        .collect();
    assert_eq!(cases.len(), 100, "{t:#}");
    assert!(cases.iter().all(|c| c["outcome"] == "PASSED"), "{t:#}");
    // Copied out at most twice the file system (64 MiB and its inode tables and room), not
    // a hundred times 32 MiB.
    let grown = apparent_size(&w.ws()) - before;
    assert!(
        grown < 200 * 1024 * 1024,
        "the workspace grew by {grown} bytes"
    );
    assert!(cases.iter().any(|c| c["log"].is_null()), "{t:#}");
}

#[test]
fn a_retry_after_a_test_filled_its_scratch_is_failed_not_an_error() {
    let w = Ws::new();
    let m = built(&w);
    let tests = hostile("volume-filler-retried-test");
    let r = w.test(
        &m,
        &[
            "--tests-from",
            tests.to_str().unwrap(),
            "--max-scratch=64M",
            "--retries",
            "1",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let out = r.manifest();
    let t = r.stage(&out, "test");
    assert_eq!(t["outcome"], "FAILED", "{t:#}");
    assert!(
        notes(t).contains("scratch limit 64 MiB reached"),
        "{}",
        notes(t)
    );
}

#[test]
fn a_flood_of_rpm_names_in_the_output_is_the_packages_failure() {
    let w = Ws::new();
    let (b, _) = build_hostile(&w, "rpm-name-flood-build", "--max-scratch=256M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        notes(&b).contains("more than 10000 files named *.rpm"),
        "{}",
        notes(&b)
    );
}

#[test]
fn a_flood_of_names_in_the_output_is_walked_bounded_and_failed() {
    let w = Ws::new();
    let (b, _) = build_hostile(&w, "rpmdir-name-flood-build", "--max-scratch=256M");
    assert_eq!(b["outcome"], "FAILED", "{b:#}");
    assert!(
        notes(&b).contains("more than 50000 entries"),
        "{}",
        notes(&b)
    );
}

#[test]
fn copies_of_a_big_tests_tree_fit_beside_the_scratch() {
    let w = Ws::new();
    let m = built(&w);
    // The tree with a 64 MiB file (made here: not kept in git).
    let tree = w.path().join("two-suites-big-tree");
    fci::suites::runner::copy_tree(&hostile("two-suites-big-tree"), &tree).unwrap();
    std::fs::write(tree.join("tests/blob"), vec![7u8; 64 * 1024 * 1024]).unwrap();
    let r = w.test(
        &m,
        &["--tests-from", tree.to_str().unwrap(), "--max-scratch=32M"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.manifest();
    assert_eq!(r.stage(&out, "test")["outcome"], "PASSED");
}
