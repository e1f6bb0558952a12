//! `fci image | fci smoke` against the raw commands a release engineer would script for the
//! same result: an OSTree deployment (init-fs, os-init, pull-local, deploy), `mkfs.ext4 -d`,
//! `qemu-img convert` and `check`, and one qemu boot (TCG) of the entry's kernel with the
//! same checks disk, decided from the console. Prints the medians and their ratio, measured
//! in this run. Run: `cargo bench --bench image_smoke_overhead`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use support::median;

fn run(c: &mut Command, what: &str) -> String {
    let out = c.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{what} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The raw chain, in `dir`: returns once the guest has proved its boot.
fn raw_chain(dir: &Path, repo: &Path, commit: &str) {
    let sysroot = dir.join("sysroot");
    std::fs::create_dir_all(&sysroot).unwrap();
    let sr = format!("--sysroot={}", sysroot.display());
    let ostree = |args: &[&str]| {
        let mut c = Command::new("ostree");
        c.args(args);
        c
    };
    run(
        ostree(&["admin", "init-fs", "--modern"]).arg(&sysroot),
        "init-fs",
    );
    run(&mut ostree(&["admin", "os-init", &sr, "fci"]), "os-init");
    let drepo = format!("--repo={}", sysroot.join("ostree/repo").display());
    run(
        ostree(&["pull-local", &drepo]).arg(repo).arg(commit),
        "pull-local",
    );
    run(
        &mut ostree(&["refs", &drepo, "--create=bench", commit]),
        "refs",
    );
    run(
        ostree(&[
            "admin",
            "deploy",
            &sr,
            "--os=fci",
            "--karg=root=/dev/vda",
            "--karg=rw",
            "--karg=console=ttyS0",
            "--karg=panic=-1",
            "bench",
        ])
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments"),
        "deploy",
    );
    let entries = sysroot.join("boot/loader/entries");
    let entry = std::fs::read_dir(&entries)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(entry).unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap()
            .to_string()
    };
    let raw = dir.join("disk.raw");
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-d"])
            .arg(&sysroot)
            .arg(&raw)
            .arg("256M"),
        "mkfs",
    );
    let qcow2 = dir.join("disk.qcow2");
    run(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow2),
        "convert",
    );
    run(
        Command::new("qemu-img").args(["check"]).arg(&qcow2),
        "check",
    );
    let mut checks = b"fci-smoke-v1 bench\nhello-atomic\n".to_vec();
    checks.resize(4096, 0);
    std::fs::write(dir.join("checks"), checks).unwrap();
    // The console on the first serial port; the guest's answers on the second (ttyS1).
    let serial = dir.join("serial.log");
    let answers = dir.join("answers.log");
    run(
        Command::new("timeout")
            .arg("300")
            .arg("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nodefaults",
                "-nographic",
                "-no-reboot",
            ])
            .args(["-nic", "none", "-monitor", "none"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-serial")
            .arg(format!("file:{}", answers.display()))
            .arg("-kernel")
            .arg(sysroot.join(format!("boot{}", field("linux")).trim_start_matches('/')))
            .arg("-initrd")
            .arg(sysroot.join(format!("boot{}", field("initrd")).trim_start_matches('/')))
            .arg("-append")
            .arg(field("options"))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=qcow2,snapshot=on",
                qcow2.display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw,readonly=on",
                dir.join("checks").display()
            )),
        "qemu",
    );
    let said = String::from_utf8_lossy(&std::fs::read(&answers).unwrap()).into_owned();
    assert!(
        said.contains(&format!("fci-guest bench booted {commit}"))
            && said.contains("fci-guest bench check 1 rc=0")
            && said.contains("fci-guest bench done"),
        "the raw boot did not prove itself: {said}"
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fci = env!("CARGO_BIN_EXE_fci");
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let s = scratch.path();
    let base = s.join("base");
    run(
        Command::new(root.join("examples/base/make-base.sh")).arg(&base),
        "make-base.sh",
    );
    let ws = s.join("ws");
    let fci_cmd = |args: &[&str]| {
        let mut c = Command::new(fci);
        c.arg("--workspace").arg(&ws).arg("--quiet").args(args);
        c
    };
    run(
        &mut fci_cmd(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]),
        "fci base init",
    );
    let built = run(
        fci_cmd(&["build"])
            .arg(root.join("examples/hello-atomic"))
            .args(["--branch", "f41", "--lookaside"])
            .arg(root.join("examples/lookaside"))
            // Only the setup, not what is measured: a scratch limit the machine's free space
            // can hold (fci refuses to start a build whose package code could fill more).
            .args(["--max-scratch", "1G"]),
        "fci build",
    );
    let built_m = s.join("built.json");
    std::fs::write(&built_m, built).unwrap();
    let composed = run(
        &mut fci_cmd(&["compose", "-m", built_m.to_str().unwrap()]),
        "fci compose",
    );
    let composed_m = s.join("composed.json");
    std::fs::write(&composed_m, &composed).unwrap();
    let m: serde_json::Value = serde_json::from_str(&composed).unwrap();
    let commit = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "compose")
        .unwrap()["data"]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    let repo = ws.join("ostree/repo");

    let mut fci_times = Vec::new();
    let mut raw_times = Vec::new();
    let runs = support::runs(3);
    for i in 0..runs {
        let t = Instant::now();
        let imaged = run(
            &mut fci_cmd(&["image", "--no-cache", "-m", composed_m.to_str().unwrap()]),
            "fci image",
        );
        let imaged_m = s.join("imaged.json");
        std::fs::write(&imaged_m, imaged).unwrap();
        run(
            &mut fci_cmd(&[
                "smoke",
                "--no-cache",
                "--accel",
                "tcg",
                "--check",
                "hello-atomic",
                "-m",
                imaged_m.to_str().unwrap(),
            ]),
            "fci smoke",
        );
        fci_times.push(t.elapsed());

        let dir = s.join(format!("raw-{i}"));
        let t = Instant::now();
        raw_chain(&dir, &repo, &commit);
        raw_times.push(t.elapsed());
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (f, r) = (median(fci_times), median(raw_times));
    let ratio = f.as_secs_f64() / r.as_secs_f64();
    println!(
        "image+smoke: fci {:.2}s, raw commands {:.2}s: {ratio:.3}x (median of {runs}, TCG boot)",
        f.as_secs_f64(),
        r.as_secs_f64(),
    );
    support::record(
        "fci image | fci smoke / raw deploy+mkfs+qemu boot (TCG)",
        ratio,
        "x",
        support::Target::AtMost(1.10),
        serde_json::json!({"fci_ms": support::ms(f), "raw_ms": support::ms(r), "runs": runs}),
    );
    support::quick_note();
}
