//! The qemu backend: one boot of the image under qemu-system-x86_64, the disk attached as a
//! snapshot (booting never changes the image), the serial console to a file, no network, and
//! qemu's own seccomp sandbox. KVM is used only when a probe boot on this host showed it
//! works: some hosts have a /dev/kvm that hangs guests (a nested "kvm-pvm" VM does).

use crate::exec::{Cmd, Finished};
use crate::stage::Ctx;
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const QEMU: Tool = Tool::new("qemu-system-x86_64", "qemu-system-x86");

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelArg {
    /// KVM when a probe boot shows it works here, else TCG
    Auto,
    Kvm,
    Tcg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What one boot needs.
pub struct Machine<'a> {
    pub accel: Accel,
    pub memory_mib: u64,
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub append: &'a str,
    /// (file, format, read-only) for each virtio disk, in order (vda, vdb, ...).
    pub disks: Vec<(PathBuf, &'a str, bool)>,
    /// A file per serial port, in order (ttyS0 is the console).
    pub serials: Vec<&'a Path>,
    pub timeout: Option<Duration>,
}

/// A path inside qemu's `key=value,...` option syntax, where a comma is written twice.
fn opt_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

impl Machine<'_> {
    fn command(&self, scratch: &Path) -> Cmd {
        let mut c = Cmd::new(QEMU.program)
            .args(["-accel", self.accel.as_str()])
            .args(["-m", &self.memory_mib.to_string()])
            .args(["-nodefaults", "-nographic", "-no-reboot", "-no-user-config"])
            // The guest runs package code: qemu itself may not spawn, raise privileges or
            // use obsolete system calls.
            .args([
                "-sandbox",
                "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            ])
            .args(["-nic", "none", "-monitor", "none"]);
        for serial in &self.serials {
            c = c.arg("-serial").arg(format!("file:{}", serial.display()));
        }
        c = c
            .arg("-kernel")
            .arg(self.kernel)
            .arg("-append")
            .arg(self.append);
        if let Some(i) = self.initrd {
            c = c.arg("-initrd").arg(i);
        }
        for (file, format, readonly) in &self.disks {
            let mut d = format!("file={},if=virtio,format={format}", opt_path(file));
            d.push_str(if *readonly {
                ",readonly=on"
            } else {
                ",snapshot=on"
            });
            c = c.arg("-drive").arg(d);
        }
        // snapshot=on keeps the guest's writes in a temporary file under TMPDIR: the stage's
        // scratch, removed with it.
        // Judged by the stage: a guest killed at --timeout is FAILED, never reused.
        c.env("TMPDIR", scratch)
            .timeout(self.timeout)
            .judges_timeout()
    }

    pub fn boot(&self, cx: &mut Ctx) -> Result<Finished> {
        let scratch = cx.dir();
        cx.log().run(&self.command(&scratch))
    }
}

/// The accelerator to boot with, and why.
pub fn choose(arg: AccelArg, cx: &mut Ctx, kernel: &Path) -> Result<(Accel, String)> {
    match arg {
        AccelArg::Tcg => return Ok((Accel::Tcg, "--accel tcg".into())),
        AccelArg::Kvm => return Ok((Accel::Kvm, "--accel kvm".into())),
        AccelArg::Auto => {}
    }
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !usable {
        return Ok((Accel::Tcg, "no usable /dev/kvm".into()));
    }
    // One probe per host kernel and qemu binary: a stock kernel either reaches its panic
    // (no root given) within seconds under KVM, or KVM does not work here.
    let qemu_id = crate::tool::which(QEMU.program)
        .and_then(|p| crate::hostcache::file_id(&p))
        .unwrap_or_default();
    let host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let key = format!("kvm-probe {} {qemu_id}", host_kernel.trim());
    let dir = cx.dir();
    let mut probe_log = None;
    let verdict = cx.host.get_or(key, || {
        let serial = dir.join("kvm-probe.log");
        let m = Machine {
            accel: Accel::Kvm,
            memory_mib: 256,
            kernel,
            initrd: None,
            append: "console=ttyS0 panic=-1",
            disks: Vec::new(),
            serials: vec![&serial],
            timeout: Some(Duration::from_secs(10)),
        };
        let done = crate::exec::Log::create(&dir.join("kvm-probe.cmd.log"))
            .ok()?
            .run(&m.command(&dir))
            .ok()?;
        let console =
            crate::caps::head_and_tail(&serial, crate::caps::CONSOLE_READ, 0).unwrap_or_default();
        let console = String::from_utf8_lossy(&console);
        probe_log = Some(serial);
        let works = !done.timed_out && console.contains("Linux version");
        Some(serde_json::Value::Bool(works))
    });
    if let Some(p) = probe_log {
        cx.log()
            .line("# KVM probe boot (kernel only, expecting its panic):");
        cx.log().append_file(&p);
    }
    Ok(match verdict {
        Some(serde_json::Value::Bool(true)) => (Accel::Kvm, "a probe boot under KVM worked".into()),
        _ => (
            Accel::Tcg,
            "/dev/kvm exists, but a probe boot under KVM did not reach the kernel's panic within 10s"
                .into(),
        ),
    })
}
