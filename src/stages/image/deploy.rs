//! The deployment backend: the composed commit deployed with `ostree admin` into a fresh
//! sysroot (init-fs, os-init, pull-local, deploy with the kernel arguments), that sysroot made
//! into an ext4 filesystem (`mkfs.ext4 -d`, which keeps hard links and owners), and the
//! filesystem converted and checked with `qemu-img`.

use super::Format;
use crate::bootentry::{self, Entry};
use crate::error::FciError;
use crate::exec::{Cmd, Ending, Finished};
use crate::manifest::{Artifact, ArtifactKind, Outcome, StageName};
use crate::progress::Spinner;
use crate::stage::{Ctx, RecordParts};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Plan {
    pub repo: PathBuf,
    pub commit: String,
    pub ostree_ref: String,
    pub branch: String,
    pub state: PathBuf,
    pub os: String,
    pub kargs: Vec<String>,
    pub format: Format,
    pub size_mib: Option<u64>,
    pub timeout: Option<Duration>,
}

/// Runs the commands of one image under one deadline.
struct Steps {
    deadline: Option<Instant>,
    limit: Option<Duration>,
}

impl Steps {
    fn run(&self, cx: &mut Ctx, what: &str, cmd: Cmd) -> Result<Finished> {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let done = cx.log().capture(&cmd.timeout(left).judges_timeout())?;
        Ok(done.checked().map_err(|f| match f.ending {
            Ending::TimedOut(_) => {
                let secs = self.limit.map_or(0, |l| l.as_secs());
                FciError::Infra(format!("{what}: killed after {secs}s, past --timeout"))
            }
            _ => f.infra(format!("{what} failed")),
        })?)
    }
}

pub fn image(
    p: &Plan,
    cx: &mut Ctx,
    rec: &mut RecordParts,
    spinner: &Spinner,
) -> Result<Vec<Artifact>> {
    rec.backend = Some("ostree-deploy".into());
    rec.data.insert("commit".into(), json!(p.commit));
    rec.data.insert("ref".into(), json!(p.ostree_ref));
    rec.data.insert("branch".into(), json!(p.branch));
    rec.data.insert("os".into(), json!(p.os));
    let steps = Steps {
        deadline: p.timeout.map(|t| Instant::now() + t),
        limit: p.timeout,
    };
    let repo_arg = format!("--repo={}", p.repo.display());

    spinner.step("looking for the tree's kernel");
    let kernels = kernels(&repo_arg, &p.commit, cx)?;
    if kernels.is_empty() {
        rec.outcome = Outcome::Failed;
        rec.notes.push(format!(
            "commit {} has no kernel (usr/lib/modules/VERSION/vmlinuz): an image needs a bootable base (examples/base/make-base.sh puts one in)",
            p.commit
        ));
        return Ok(Vec::new());
    }
    rec.data.insert("kernels".into(), json!(kernels));

    let dir = cx.dir();
    let sysroot = dir.join("sysroot");
    std::fs::create_dir(&sysroot)?;
    spinner.step("deploying the commit into a sysroot");
    if let Some(failed) = deploy(p, cx, &steps, &sysroot, rec)? {
        return Ok(failed);
    }

    let entry = read_entries(&sysroot.join("boot/loader/entries"))?.ok_or_else(|| {
        FciError::Infra("ostree admin deploy wrote no usable boot loader entry".into())
    })?;
    let deployment = std::fs::read_dir(sysroot.join("ostree/deploy").join(&p.os).join("deploy"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&p.commit) && !n.ends_with(".origin"))
        .ok_or_else(|| FciError::Infra("the deployment is not in the sysroot".into()))?;
    rec.data.insert("deployment".into(), json!(deployment));
    rec.data.insert("boot_entry".into(), json!(entry));

    spinner.step("making the filesystem");
    let used = disk_usage(&sysroot)?;
    let size_mib = p
        .size_mib
        .unwrap_or_else(|| (used * 2 / (1 << 20) + 1).max(256));
    if used > size_mib << 20 {
        rec.outcome = Outcome::Failed;
        rec.notes.push(format!(
            "the deployment needs {} MiB, more than --size {size_mib}",
            used >> 20
        ));
        return Ok(Vec::new());
    }
    let (disk, virtual_size) = make_disk(p, cx, &steps, spinner, &dir, &sysroot, size_mib)?;

    spinner.step("storing the image");
    let name = format!(
        "{}-{}-{}.{}",
        p.os,
        p.branch,
        &p.commit[..12],
        p.format.as_str()
    );
    let mut art = cx
        .ws
        .store(&disk, ArtifactKind::Image, &name, StageName::Image)?;
    art.extra.insert("format".into(), json!(p.format.as_str()));
    art.extra.insert("virtual_size".into(), json!(virtual_size));
    art.extra.insert("commit".into(), json!(p.commit));
    art.extra.insert("ostree_ref".into(), json!(p.ostree_ref));
    // What binds the image to the commit for smoke and conform (crate::binding).
    crate::binding::record_image(cx.ws, &art, &p.commit)?;
    rec.data.insert("format".into(), json!(p.format.as_str()));
    rec.data.insert("virtual_size".into(), json!(virtual_size));
    rec.data.insert("used_bytes".into(), json!(used));
    rec.data.insert("image".into(), json!(art.path));
    Ok(vec![art])
}

/// The commit deployed with `ostree admin` into the fresh sysroot: init-fs, os-init,
/// pull-local, the ref, deploy with the kernel arguments. Apart so that `image` reads as its
/// steps; `Some` is the FAILED outcome to return (a tree ostree cannot deploy).
fn deploy(
    p: &Plan,
    cx: &mut Ctx,
    steps: &Steps,
    sysroot: &Path,
    rec: &mut RecordParts,
) -> Result<Option<Vec<Artifact>>> {
    let sysroot_arg = format!("--sysroot={}", sysroot.display());
    steps.run(
        cx,
        "ostree admin init-fs",
        Cmd::new("ostree")
            .args(["admin", "init-fs", "--modern"])
            .arg(sysroot),
    )?;
    steps.run(
        cx,
        "ostree admin os-init",
        Cmd::new("ostree")
            .args(["admin", "os-init"])
            .arg(&sysroot_arg)
            .arg(&p.os),
    )?;
    let deploy_repo = format!("--repo={}", sysroot.join("ostree/repo").display());
    steps.run(
        cx,
        "ostree pull-local",
        Cmd::new("ostree")
            .arg("pull-local")
            .arg(&deploy_repo)
            .arg(&p.repo)
            .arg(&p.commit),
    )?;
    steps.run(
        cx,
        "ostree refs",
        Cmd::new("ostree")
            .arg("refs")
            .arg(&deploy_repo)
            .arg(format!("--create={}", p.ostree_ref))
            .arg(&p.commit),
    )?;
    let mut deploy = Cmd::new("ostree")
        .args(["admin", "deploy"])
        .arg(&sysroot_arg)
        .arg(format!("--os={}", p.os))
        // Deployments are made immutable (chattr +i) for a running system; mkfs.ext4 -d
        // does not carry the flag into the image anyway, and without it the scratch sysroot
        // can be removed, also after a killed run.
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
        // Its final sync would freeze the host's filesystem, where the sysroot is.
        .no_fsfreeze();
    for k in &p.kargs {
        deploy = deploy.arg(format!("--karg={k}"));
    }
    // A deploy that fails on the tree's content (both /etc and usr/etc, no os-release, a
    // kernel it cannot install) is the change's failure; anything else is the host's.
    match steps.run(cx, "ostree admin deploy", deploy.arg(&p.ostree_ref)) {
        Ok(_) => {}
        Err(e) => {
            let msg = crate::error::one_line(&e);
            let content = [
                "Tree contains both",
                "os-release",
                "Installing kernel",
                "During /etc merge",
                "No kernel",
            ];
            if content.iter().any(|c| msg.contains(c)) {
                rec.outcome = Outcome::Failed;
                rec.notes
                    .push(format!("the commit cannot be deployed: {msg}"));
                return Ok(Some(Vec::new()));
            }
            return Err(e);
        }
    }
    Ok(None)
}

/// The sysroot made into an ext4 filesystem of `size_mib`, converted to qcow2 when asked and
/// checked: the disk and its virtual size. Apart so that `image` reads as its steps.
fn make_disk(
    p: &Plan,
    cx: &mut Ctx,
    steps: &Steps,
    spinner: &Spinner,
    dir: &Path,
    sysroot: &Path,
    size_mib: u64,
) -> Result<(PathBuf, u64)> {
    let raw = dir.join("disk.raw");
    steps.run(
        cx,
        "mkfs.ext4",
        Cmd::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-d"])
            .arg(sysroot)
            .arg(&raw)
            .arg(format!("{size_mib}M")),
    )?;
    let disk = match p.format {
        Format::Raw => raw,
        Format::Qcow2 => {
            spinner.step("converting to qcow2");
            let qcow2 = dir.join("disk.qcow2");
            steps.run(
                cx,
                "qemu-img convert",
                Cmd::new("qemu-img")
                    .args(["convert", "-f", "raw", "-O", "qcow2"])
                    .arg(&raw)
                    .arg(&qcow2),
            )?;
            steps.run(
                cx,
                "qemu-img check",
                Cmd::new("qemu-img")
                    .args(["check", "-f", "qcow2"])
                    .arg(&qcow2),
            )?;
            std::fs::remove_file(&raw)?;
            qcow2
        }
    };
    let info = steps.run(
        cx,
        "qemu-img info",
        Cmd::new("qemu-img")
            .args(["info", "--output=json", "-f", p.format.as_str()])
            .arg(&disk),
    )?;
    let virtual_size = serde_json::from_str::<Value>(&info.stdout)
        .ok()
        .and_then(|v| v.get("virtual-size").and_then(Value::as_u64))
        .ok_or_else(|| FciError::Infra("qemu-img info gave no virtual-size".into()))?;
    Ok((disk, virtual_size))
}

/// The kernel versions the commit carries at `usr/lib/modules/VERSION/vmlinuz`.
fn kernels(repo_arg: &str, commit: &str, cx: &mut Ctx) -> Result<Vec<String>> {
    // None: the commit has no `path`; an ostree that fails otherwise is the host's failure.
    const ABSENT: [&str; 2] = ["No such file or directory", "Not a directory"];
    let ls = |cx: &mut Ctx, path: &str| -> Result<Option<Finished>> {
        let cmd = Cmd::new("ostree").args(["ls", repo_arg, "--nul-filenames-only", commit]);
        match cx.log().capture(&cmd.args(["--", path]))?.checked() {
            Ok(done) => Ok(Some(done)),
            Err(f) if ABSENT.iter().any(|n| f.tail.contains(n)) => Ok(None),
            Err(f) => Err(f.infra(format!("ostree ls {path} failed")).into()),
        }
    };
    let Some(listing) = ls(cx, "/usr/lib/modules")? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in listing.stdout.split('\0').filter(|e| !e.is_empty()) {
        let Some(version) = entry.strip_prefix("/usr/lib/modules/") else {
            continue;
        };
        if version.is_empty() || version.contains('/') {
            continue;
        }
        if ls(cx, &format!("{entry}/vmlinuz"))?.is_some() {
            found.push(version.to_string());
        }
    }
    Ok(found)
}

/// The default entry of a sysroot's `boot/loader/entries`.
fn read_entries(dir: &Path) -> Result<Option<Entry>> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name().to_string_lossy().ends_with(".conf") {
            if let Some(entry) = Entry::parse(&std::fs::read_to_string(e.path())?) {
                entries.push(entry);
            }
        }
    }
    Ok(bootentry::default_entry(entries))
}

/// Bytes the files under `root` occupy, each hard-linked file once.
fn disk_usage(root: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let m = e?.metadata()?;
        if m.is_dir() {
            total += 4096;
        } else if seen.insert((m.dev(), m.ino())) {
            total += m.blocks() * 512;
        }
    }
    Ok(total)
}
