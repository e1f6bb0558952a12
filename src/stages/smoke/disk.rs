//! What the smoke stage reads from the image itself, read-only, with debugfs: the default
//! deployment's boot loader entry, and the kernel and initramfs it names. Reading them from
//! the disk (rather than trusting the image stage's record) boots what the image really holds.

use crate::bootentry::{self, Entry};
use crate::error::FciError;
use crate::exec::Cmd;
use crate::stage::Ctx;
use crate::tool::Tool;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub const DEBUGFS: Tool = Tool::new("debugfs", "e2fsprogs");

pub struct Boot {
    pub entry: Entry,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The commit of the deployment the entry's `ostree=` link leads to on the disk: what
    /// the guest must report, checked from the host without trusting the guest.
    pub commit: Option<String>,
}

/// The default entry of the ext4 filesystem in `raw`, with its kernel and initramfs copied
/// into `dir`. None with a reason when the image holds no bootable deployment.
pub fn boot_files(cx: &mut Ctx, raw: &Path, dir: &Path) -> Result<Result<Boot, String>> {
    let listing = debugfs(cx, raw, "ls -p /boot/loader/entries")?;
    let mut entries = Vec::new();
    for line in listing.lines() {
        // `ls -p`: /inode/mode/uid/gid/name/size/
        let fields: Vec<&str> = line.split('/').collect();
        let Some(name) = fields.get(5) else { continue };
        if !name.ends_with(".conf") || !plain_name(name) {
            continue;
        }
        let text = debugfs(cx, raw, &format!("cat /boot/loader/entries/{name}"))?;
        if let Some(e) = Entry::parse(&text) {
            entries.push(e);
        }
    }
    let Some(entry) = bootentry::default_entry(entries) else {
        return Ok(Err(
            "the image has no boot loader entry in /boot/loader/entries".into(),
        ));
    };
    let kernel = dir.join("vmlinuz");
    let initrd = dir.join("initramfs.img");
    for (from, to) in [(&entry.linux, "vmlinuz"), (&entry.initrd, "initramfs.img")] {
        // Dumped by a relative name in `dir`: the request is split on spaces, and the
        // workspace's path may have some.
        let out = run(cx, raw, dir, &format!("dump /boot{from} {to}"))?;
        if !std::fs::metadata(dir.join(to)).is_ok_and(|m| m.len() > 0) {
            if out.stderr.contains("not found") {
                return Ok(Err(format!(
                    "the boot loader entry names /boot{from}, which the image does not hold"
                )));
            }
            return Err(FciError::Infra(format!(
                "debugfs could not copy /boot{from} out of the image: {}",
                out.reason()
            ))
            .into());
        }
    }
    let commit = match entry.ostree_arg() {
        Some(link) if plain_path(link) => {
            let mut target = debugfs(cx, raw, &format!("cat {link}"))?;
            if target.trim().is_empty() {
                // A short link lives in the inode: `stat` shows it.
                let stat = debugfs(cx, raw, &format!("stat {link}"))?;
                target = stat
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Fast link dest: "))
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
            }
            deployment_commit(target.trim())
        }
        _ => None,
    };
    Ok(Ok(Boot {
        entry,
        kernel,
        initrd,
        commit,
    }))
}

/// `../../../deploy/OS/deploy/CHECKSUM.SERIAL` → CHECKSUM.
fn deployment_commit(target: &str) -> Option<String> {
    let last = target.rsplit('/').next()?;
    let (sum, serial) = last.split_once('.')?;
    (target.contains("/deploy/")
        && crate::ostree::is_checksum(sum)
        && serial.bytes().all(|b| b.is_ascii_digit()))
    .then(|| sum.to_string())
}

fn plain_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.split('/').any(|c| c == "..")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
}

/// Refuses an image that is not all in its file: a qcow2 with a backing file or an external
/// data file would have qemu (as root) read a file outside the workspace, which the
/// artifact's sha256 does not cover.
pub fn check_self_contained(cx: &mut Ctx, image: &Path, format: &str) -> Result<(), String> {
    if format != "qcow2" {
        return Ok(());
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(image).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut magic)
    });
    if read.is_err() || magic != *b"QFI\xfb" {
        return Err("is not a qcow2 image".into());
    }
    // Only the header is read: --backing-chain is off and -U takes no lock.
    let out = cx
        .log()
        .capture(
            &Cmd::new("qemu-img")
                .args(["info", "-U", "--output=json", "-f", "qcow2"])
                .arg(image),
        )
        .map_err(|e| format!("qemu-img info failed: {e}"))?;
    let info: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|_| format!("qemu-img cannot read it: {}", out.reason()))?;
    let data_file = info
        .pointer("/format-specific/data/data-file")
        .and_then(|v| v.as_str());
    match (
        info.get("backing-filename").and_then(|v| v.as_str()),
        data_file,
    ) {
        (Some(b), _) => Err(format!("has a backing file ({b}): not self-contained")),
        (_, Some(d)) => Err(format!(
            "has an external data file ({d}): not self-contained"
        )),
        _ => Ok(()),
    }
}

fn debugfs(cx: &mut Ctx, raw: &Path, request: &str) -> Result<String> {
    let dir = raw.parent().unwrap_or(Path::new("/"));
    Ok(run(cx, raw, dir, request)?.stdout)
}

fn run(cx: &mut Ctx, raw: &Path, dir: &Path, request: &str) -> Result<crate::exec::Finished> {
    let debugfs = Cmd::new("debugfs").arg("-R").arg(request).arg(raw).dir(dir);
    cx.log()
        .capture_ok(&debugfs, "debugfs could not read the image")
}

fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_deployment_link_names_the_commit() {
        let sum = "a".repeat(64);
        assert_eq!(
            super::deployment_commit(&format!("../../../deploy/fci/deploy/{sum}.0")),
            Some(sum.clone())
        );
        assert_eq!(
            super::deployment_commit(&format!("/elsewhere/{sum}.0")),
            None
        );
        assert_eq!(
            super::deployment_commit("../../../deploy/fci/deploy/abc.0"),
            None
        );
        assert_eq!(
            super::deployment_commit(&format!("../../../deploy/fci/deploy/{sum}.x")),
            None
        );
    }
}
