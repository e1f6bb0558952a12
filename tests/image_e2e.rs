//! `fci image` and `fci smoke` through the real binary: a bootable base from
//! examples/base/make-base.sh (the host's Debian kernel, a busybox initramfs around
//! ostree-prepare-root), the change composed onto it, a real OSTree deployment in an ext4
//! disk image, and a real boot under qemu.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    tool::SMOKE,
];

/// make-base.sh (with `flags`), committed as f41's known-good base.
fn init_base(w: &Ws, flags: &[&str], edit: impl Fn(&Path)) {
    init_base_with(w, flags, None, edit);
}

/// build | compose of hello-atomic: the manifest file composed.
fn composed(w: &Ws) -> PathBuf {
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    w.save("composed.json", &c.manifest())
}

fn run_with(w: &Ws, m: &Path, args: &[&str]) -> Run {
    let mut all = vec![args[0], "-m", m.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    w.run(&all)
}

fn image_artifact(m: &Value) -> &Value {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["type"] == "image")
        .expect("an image artifact")
}

fn no_qemu_left(w: &Ws) {
    w.assert_no_process("", "a qemu of this workspace");
}

#[test]
fn image_and_smoke_boot_the_composed_commit() {
    let w = Ws::new();
    init_base(&w, &[], |_| {});
    let c = composed(&w);
    let commit = {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
        m["stages"][1]["data"]["commit"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let r = run_with(&w, &c, &["image", "--interval", "1h"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "image");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(s["data"]["commit"], commit.as_str());
    assert!(s["data"]["boot_entry"]["options"]
        .as_str()
        .unwrap()
        .contains("console=ttyS0"));
    let art = image_artifact(&m);
    assert_eq!(art["format"], "qcow2");
    assert_eq!(art["commit"], commit.as_str());
    let file = w.ws().join(art["path"].as_str().unwrap());
    assert_eq!(art["sha256"], sha256_file(&file).as_str());
    assert_eq!(
        art["size"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    let check = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(check.status.success(), "qemu-img check: {check:?}");
    let info: Value = serde_json::from_slice(
        &Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&file)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], art["virtual_size"]);
    let imaged = w.save("imaged.json", &m);

    // Within the interval: SKIPPED, exit 0, saying when the next is due; smoke follows suit.
    let again = run_with(&w, &c, &["image", "--interval", "1h"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let am = again.manifest();
    let s = again.stage(&am, "image");
    assert_eq!(s["outcome"], "SKIPPED");
    assert!(s["data"]["next_due"].is_string(), "{s:#}");
    assert!(s["notes"].to_string().contains("next is due"), "{s:#}");
    let not_due = w.save("not-due.json", &am);
    let sm = run_with(&w, &not_due, &["smoke", "--accel", "tcg"]);
    assert_eq!(sm.code, 0, "{}", sm.stderr);
    let smm = sm.manifest();
    assert_eq!(sm.stage(&smm, "smoke")["outcome"], "SKIPPED");

    // The boot: the guest proves it runs the composed commit, and the change itself runs.
    // `auto` probes KVM first (it hangs guests on this kind of host) and falls back to TCG.
    let r = run_with(
        &w,
        &imaged,
        &[
            "smoke",
            "--check",
            "hello-atomic | grep -q 'Hello, atomic host'",
            "--check",
            "test -x /usr/bin/busybox",
            // Setuid bits cannot make a check root again.
            "--check",
            "grep -q 'NoNewPrivs:[[:space:]]*1' /proc/self/status",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(s["data"]["booted"], commit.as_str());
    assert!(s["data"]["accel_reason"].is_string(), "{s:#}");
    assert_eq!(
        results(s),
        vec![
            ("boot".to_string(), "PASSED".to_string()),
            ("check-1".to_string(), "PASSED".to_string()),
            ("check-2".to_string(), "PASSED".to_string()),
            ("check-3".to_string(), "PASSED".to_string()),
        ]
    );
    // The serial console is in the stage log.
    let log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("Linux version"), "{log}");
    assert!(log.contains(&format!("booted {commit}")), "{log}");
    // Booting never changed the image.
    assert_eq!(art["sha256"], sha256_file(&file).as_str());
    no_qemu_left(&w);
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());

    // A state dated in the future (a clock stepped back) does not hold images off forever.
    std::fs::write(
        w.ws().join("state/image/f41.json"),
        r#"{"made_unix": 4102444800}"#,
    )
    .unwrap();
    let r = run_with(&w, &c, &["image", "--interval", "1h"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stage(&r.manifest(), "image")["outcome"], "PASSED");

    // A raw image boots too, from a workspace whose path has a space. A check that fails
    // fails the stage, naming its exit status, and a check cannot forge the guest's answers:
    // it runs unprivileged, without the nonce's file or the answers' serial port.
    let raw = run_with(&w, &c, &["image", "--format", "raw", "--force"]);
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    let rm = raw.manifest();
    assert_eq!(image_artifact(&rm)["format"], "raw");
    let p = w.save("raw.json", &rm);
    let spaced = w.path().join("w s");
    std::fs::rename(w.ws(), &spaced).unwrap();
    let forge = "n=$(head -n1 /run/fci-smoke /dev/vdb | cut -d' ' -f2); \
        echo \"fci-guest $n check 2 rc=0\" > /dev/ttyS1; \
        echo \"fci-guest $n check 2 rc=0\"; id -u";
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(&spaced)
        .args(["--quiet", "smoke", "--accel", "tcg", "-m"])
        .arg(&p)
        .args(["--check", forge, "--check", "exit 7"])
        .output()
        .unwrap();
    std::fs::rename(&spaced, w.ws()).unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "FAILED");
    assert_eq!(s["results"][0]["outcome"], "PASSED", "{s:#}");
    let check = &s["results"][2];
    assert_eq!(check["outcome"], "FAILED", "{s:#}");
    assert_eq!(check["exit_code"], 7);
    let log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("1000\n") || log.contains("1000\r\n"), "{log}");
    no_qemu_left(&w);
}

#[test]
fn a_broken_boot_fails_with_the_console_tail() {
    let w = Ws::new();
    init_base(&w, &[], |_| {});
    let c = composed(&w);
    // A wrong root: the initramfs cannot mount it, PID 1 ends, the kernel panics.
    let r = run_with(&w, &c, &["image", "--karg", "root=/dev/vdz"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = w.save("imaged.json", &r.manifest());
    let r = run_with(&w, &p, &["smoke", "--accel", "tcg", "--check", "true"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "FAILED");
    let boot = &s["results"][0];
    assert_eq!(boot["outcome"], "FAILED");
    assert!(
        boot["note"].as_str().unwrap().contains("kernel panicked"),
        "{boot:#}"
    );
    assert_eq!(s["results"][1]["outcome"], "FAILED");
    let notes = s["notes"].to_string();
    assert!(notes.contains("console tail"), "{notes}");
    assert!(notes.contains("cannot mount /dev/vdz"), "{notes}");
    no_qemu_left(&w);

    // A guest that does not finish in time is killed: FAILED, saying so, nothing left running.
    let good = run_with(&w, &c, &["image", "--no-cache"]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    let p = w.save("good.json", &good.manifest());
    let r = run_with(&w, &p, &["smoke", "--accel", "tcg", "--timeout", "4"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "FAILED");
    assert!(
        s["results"][0]["note"]
            .as_str()
            .unwrap()
            .contains("killed after 4s"),
        "{s:#}"
    );
    no_qemu_left(&w);
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

#[test]
fn a_tree_without_a_kernel_is_a_clear_failure() {
    let w = Ws::new();
    init_base(&w, &["--no-kernel"], |_| {});
    let c = composed(&w);
    let r = run_with(&w, &c, &["image"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "image");
    assert_eq!(s["outcome"], "FAILED");
    assert!(s["notes"].to_string().contains("has no kernel"), "{s:#}");
    assert!(!m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "image"));
    // And smoke, after it, is skipped with the failure's exit code.
    let p = w.save("failed.json", &m);
    let r = run_with(&w, &p, &["smoke"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stage(&r.manifest(), "smoke")["outcome"], "SKIPPED");
}

#[test]
fn bad_image_input_is_refused() {
    let w = Ws::new();
    init_base(&w, &["--no-kernel"], |_| {});
    let c = composed(&w);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
    // Image needs a compose: the build's own manifest has none.
    let p = w.path().join("built.json");
    let r = run_with(&w, &p, &["image"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("run `fci compose` first"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // A commit the repository does not have.
    let mut gone = m.clone();
    for a in gone["artifacts"].as_array_mut().unwrap() {
        if a["type"] == "ostree-commit" {
            a["sha256"] = "0".repeat(64).into();
        }
    }
    let r = run_with(&w, &w.save("gone.json", &gone), &["image"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("are not those it left"), "{}", r.stderr);
    // The same as from another workspace (no records of the run): the repository refuses it.
    w.forget_records();
    let r = run_with(&w, &w.save("gone.json", &gone), &["image"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("has no commit"), "{}", r.stderr);
    // Bad flags.
    for flags in [
        ["--karg", "a b"],
        ["--interval", "6x"],
        ["--interval", "100000000000000"],
    ] {
        let r = run_with(&w, &c, &["image", flags[0], flags[1]]);
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
    }
    // A compose record whose branch or ref is no name: a path out of the workspace, an
    // argument ostree would refuse.
    for (key, value) in [("branch", "../../../../tmp/escape"), ("ref", "bad ref")] {
        let mut t = m.clone();
        for st in t["stages"].as_array_mut().unwrap() {
            if st["name"] == "compose" {
                st["data"][key] = value.into();
            }
        }
        let r = run_with(&w, &w.save("t.json", &t), &["image"]);
        assert_eq!(r.code, 2, "{key}: {}", r.stderr);
        assert!(r.stderr.contains("t.json"), "{}", r.stderr);
    }

    // Smoke: an image path outside the workspace, or one that is not what was recorded.
    let mut outside = m.clone();
    outside["artifacts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "type": "image", "name": "x.qcow2", "path": "../../../etc/passwd",
            "sha256": "0".repeat(64), "size": 1, "stage": "image", "format": "qcow2",
            "commit": "0".repeat(64)
        }));
    let r = run_with(&w, &w.save("out.json", &outside), &["smoke"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("../../../etc/passwd"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = run_with(&w, &c, &["smoke"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("run `fci image` first"), "{}", r.stderr);
    // A qcow2 whose content lives in a file outside the workspace (a backing file).
    let outside = w.path().join("outside.raw");
    let overlay = w.ws().join("objects/overlay.qcow2");
    for c in [
        vec!["create", "-q", "-f", "raw", outside.to_str().unwrap(), "1M"],
        vec![
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            outside.to_str().unwrap(),
            "-F",
            "raw",
            overlay.to_str().unwrap(),
        ],
    ] {
        assert!(Command::new("qemu-img")
            .args(&c)
            .status()
            .unwrap()
            .success());
    }
    let mut backed = m.clone();
    backed["artifacts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "type": "image", "name": "overlay.qcow2", "path": "objects/overlay.qcow2",
            "sha256": sha256_file(&overlay), "size": std::fs::metadata(&overlay).unwrap().len(),
            "stage": "image", "format": "qcow2",
            "commit": m["artifacts"].as_array().unwrap().iter()
                .find(|a| a["type"] == "ostree-commit").unwrap()["sha256"]
        }));
    let r = run_with(&w, &w.save("backed.json", &backed), &["smoke"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("backing file"), "{}", r.stderr);
    let r = run_with(&w, &c, &["smoke", "--check", "a\nb"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn missing_qemu_or_ostree_names_the_package() {
    let w = Ws::new();
    init_base(&w, &["--no-kernel"], |_| {});
    let c = composed(&w);
    let bin = w.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Everything on PATH but the one tool.
    let path_without = |tool: &str| -> String {
        for dir in std::env::var("PATH").unwrap().split(':') {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten() {
                let link = bin.join(e.file_name());
                if e.file_name() != tool && !link.exists() {
                    let _ = std::os::unix::fs::symlink(e.path(), &link);
                }
            }
        }
        let _ = std::fs::remove_file(bin.join(tool));
        bin.display().to_string()
    };
    let run = |args: &[&str], path: String| {
        Run::from(
            w.cmd()
                .env("PATH", path)
                .args(args)
                .arg("-m")
                .arg(&c)
                .output()
                .unwrap(),
        )
    };
    let r = run(&["image"], path_without("ostree"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("`ostree`"), "{}", r.stderr);
    std::fs::remove_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let r = run(&["smoke"], path_without("qemu-system-x86_64"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("`qemu-system-x86`"), "{}", r.stderr);
}

/// Interrupts `fci ARGS -m M` (SIGINT, as Ctrl-C does) once `ready` says so, and waits for it.
fn interrupt(w: &Ws, m: &Path, args: &[&str], path: Option<String>, ready: impl Fn() -> bool) {
    let mut cmd = w.cmd();
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .args(args)
        .arg("-m")
        .arg(m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(ready(), "fci {args:?} never got to the point to interrupt");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(!st.success(), "fci {args:?} was not interrupted");
}

fn running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn interrupted_compose_image_and_smoke_leave_nothing_half_made() {
    let w = Ws::new();
    init_base(&w, &[], |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let repo = w.ws().join("ostree/repo");
    let refs = || {
        let out = Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .arg("refs")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ws = w.ws().display().to_string();

    // Compose, interrupted while rpm installs into the checkout: no candidate ref, a clean
    // repository, and the next compose works. The install takes milliseconds, so rpm is run
    // through a script that waits two seconds before it runs the real rpm.
    let slow = w.path().join("slow-bin");
    std::fs::create_dir_all(&slow).unwrap();
    let real_rpm = String::from_utf8(Command::new("which").arg("rpm").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        slow.join("rpm"),
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" -i \"*) sleep 2 ;; esac\nexec {real_rpm} \"$@\"\n"
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(slow.join("rpm"))
        .status()
        .unwrap();
    let path = format!("{}:{}", slow.display(), std::env::var("PATH").unwrap());
    interrupt(&w, &b, &["compose"], Some(path), || {
        running(&format!("rpm --root {ws}"))
    });
    assert!(!refs().contains("candidate"), "{}", refs());
    let fsck = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
    let c = w.run(&["compose", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let c = w.save("composed.json", &c.manifest());

    // Image, interrupted while the deployment is made: no image, no interval state.
    interrupt(&w, &c, &["image", "--interval", "1d"], None, || {
        running(&format!("ostree admin deploy --sysroot={ws}"))
            || running(&format!("mkfs.ext4 -q -F -L root -d {ws}"))
    });
    let images = || {
        Command::new("find")
            .arg(w.ws().join("objects"))
            .args(["-name", "*.qcow2"])
            .output()
            .unwrap()
            .stdout
    };
    assert!(
        images().is_empty(),
        "{}",
        String::from_utf8_lossy(&images())
    );
    assert!(!w.ws().join("state/image/f41.json").exists());
    let i = w.run(&["image", "--interval", "1d", "-m", c.to_str().unwrap()]);
    assert_eq!(i.code, 0, "{}", i.stderr);
    let i = w.save("imaged.json", &i.manifest());

    // Smoke, interrupted while the guest boots: the VM goes with fci.
    interrupt(&w, &i, &["smoke", "--accel", "tcg"], None, || {
        running(&format!("qemu-system-x86_64 .*{ws}"))
    });
    w.wait_no_process(
        "",
        std::time::Duration::from_millis(500),
        "a qemu of this workspace",
    );
    let s = w.run(&["smoke", "--accel", "tcg", "-m", i.to_str().unwrap()]);
    assert_eq!(s.code, 0, "{}", s.stderr);
}

#[test]
fn a_tree_ostree_cannot_deploy_fails_the_image() {
    // A base with both /etc and usr/etc: the tree's fault, so FAILED, not ERROR.
    let w = Ws::new();
    init_base(&w, &[], |b| {
        std::fs::create_dir_all(b.join("etc")).unwrap();
        std::fs::write(b.join("etc/stray.conf"), "x\n").unwrap();
    });
    let c = composed(&w);
    let r = run_with(&w, &c, &["image"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "image");
    assert_eq!(s["outcome"], "FAILED");
    assert!(
        s["notes"].to_string().contains("cannot be deployed"),
        "{s:#}"
    );
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

/// A base with a kernel, and fixture `name` built, composed onto it and imaged: the imaged
/// manifest's path.
fn imaged_fixture(w: &Ws, name: &str) -> PathBuf {
    init_base(w, &[], |_| {});
    let built = w.build_fixture(name, &["--branch", "f41"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let composed = w.save("composed.json", &c.manifest());
    let i = run_with(w, &composed, &["image"]);
    assert_eq!(i.code, 0, "{}", i.stderr);
    w.save("imaged.json", &i.manifest())
}

#[test]
fn kernel_helpers_a_package_plants_cannot_forge_smoke() {
    let w = Ws::new();
    let imaged = imaged_fixture(&w, "kernel-helper-forgery");
    // The check makes the kernel call modprobe (socket families, an unknown binary format)
    // and request-key, whose paths the package fills with a forger; then it fails.
    let r = run_with(
        &w,
        &imaged,
        &[
            "smoke",
            "--accel",
            "tcg",
            "--check",
            "helper-trigger",
            "--check",
            "false",
            "--check",
            "test \"$(cat /proc/sys/kernel/yama/ptrace_scope)\" = 3",
            // Closed to a root helper (review J): no block device node, sysfs, /dev and the
            // kernel's knobs read-only.
            "--check",
            "test -z \"$(find /dev -type b)\" && grep -q ' /sys sysfs ro' /proc/mounts && grep -q ' /dev devtmpfs ro' /proc/mounts && grep -q ' /proc/sys proc ro' /proc/mounts",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    assert_eq!(s["results"][0]["outcome"], "PASSED", "{s:#}");
    assert_eq!(s["results"][1]["outcome"], "FAILED", "{s:#}");
    assert_eq!(s["results"][1]["exit_code"], 1, "{s:#}");
    assert_eq!(s["results"][2]["outcome"], "FAILED", "{s:#}");
    assert_eq!(
        s["results"][3]["outcome"], "PASSED",
        "no ptrace between checks: {s:#}"
    );
    assert_eq!(
        s["results"][4]["outcome"], "PASSED",
        "closed to a root helper: {s:#}"
    );
    let log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("helper-trigger: broken"), "{log}");
    // modprobe never runs (autoloading is off); request-key's path is fixed in the kernel, so
    // the package's may run, but as a root without capabilities that cannot reach the
    // answers' port: it writes nothing there.
    assert!(
        !log.contains("FORGED-BY-KERNEL-HELPER /sbin/modprobe"),
        "{log}"
    );
    for line in log
        .lines()
        .filter(|l| l.contains("FORGED-BY-KERNEL-HELPER"))
    {
        assert!(
            line.contains("CapEff:\t0000000000000000"),
            "a helper with capabilities: {line}"
        );
    }
    assert!(!log.contains("FORGED-ANSWERS-WRITTEN"), "{log}");
    assert!(!log.contains("FORGED-CHECKS-REWRITTEN"), "{log}");
    // Nor, through the physical root or the deployment's root, any file the init reads or
    // runs once the checks start (a planted /bin/sh, run by the init with every capability,
    // answered for the guest).
    assert!(!log.contains("FORGED-PASSWD-EDITED"), "{log}");
    assert!(!log.contains("FORGED-BIN-SWAPPED"), "{log}");
    // request-key, the one helper a check can make the kernel run, is no program of the
    // package's: no helper of it runs at all.
    assert!(!log.contains("FORGED-BY-KERNEL-HELPER"), "{log}");
    assert!(!log.contains("FORGED-REBOUND"), "{log}");
    assert!(!log.contains("FORGED-RAW-DISK-OPEN"), "{log}");
    assert!(!log.contains("Calling /sbin/tomoyo-init"), "{log}");
    no_qemu_left(&w);
}

#[test]
fn a_request_key_linked_to_nothing_runs_no_check() {
    let w = Ws::new();
    let imaged = imaged_fixture(&w, "request-key-link");
    let r = run_with(&w, &imaged, &["smoke", "--accel", "tcg", "--check", "true"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(s["outcome"], "FAILED", "{s:#}");
    let log = std::fs::read_to_string(w.ws().join(s["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains("/sbin/request-key is a link to nothing"),
        "{log}"
    );
    no_qemu_left(&w);
}

#[test]
fn an_update_of_a_base_package_boots_and_runs_in_the_guest() {
    let w = Ws::new();
    // The base's sed is busybox's applet (sed-0-1); the fixture's sed 4.9 updates it.
    let imaged = imaged_fixture(&w, "compose-sed-update");
    let r = run_with(
        &w,
        &imaged,
        &[
            "smoke",
            // By path: the guest's shell is busybox's, which runs its own applet for a
            // command name it has one of (Debian builds busybox-static so), before PATH.
            "--check",
            "/usr/bin/sed --version | grep -qx 'sed (fci fixture) 4.9'",
            "--check",
            "echo abc | /usr/bin/sed s/b/x/ | grep -qx axc",
            // The guest's own rpm reads the deployed database: the update is in it.
            "--check",
            "/usr/bin/rpm -q --dbpath /usr/lib/sysimage/rpm sed | grep -q '^sed-4.9-1'",
        ],
    );
    let m = r.manifest();
    let s = r.stage(&m, "smoke");
    assert_eq!(r.code, 0, "{}{s:#}", r.stderr);
    assert_eq!(s["outcome"], "PASSED", "{s:#}");
    assert_eq!(
        results(s),
        vec![
            ("boot".to_string(), "PASSED".to_string()),
            ("check-1".to_string(), "PASSED".to_string()),
            ("check-2".to_string(), "PASSED".to_string()),
            ("check-3".to_string(), "PASSED".to_string()),
        ]
    );
    no_qemu_left(&w);
}
