//! What the smoke stage reads from the image itself, read-only, with debugfs: the default
//! deployment's boot loader entry, and the kernel and initramfs it names. Reading them from
//! the disk (rather than trusting the image stage's record) boots what the image really holds.

use crate::bootentry::{self, Entry};
use crate::error::FciError;
use crate::exec::Cmd;
use crate::stage::{Ctx, Tool};
use anyhow::Result;
use std::path::{Path, PathBuf};

pub const DEBUGFS: Tool = Tool::new("debugfs", "e2fsprogs");

pub struct Boot {
    pub entry: Entry,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
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
    for (from, to) in [(&entry.linux, &kernel), (&entry.initrd, &initrd)] {
        debugfs(cx, raw, &format!("dump /boot{from} {}", to.display()))?;
        if !std::fs::metadata(to).is_ok_and(|m| m.len() > 0) {
            return Ok(Err(format!(
                "the boot loader entry names /boot{from}, which the image does not hold"
            )));
        }
    }
    Ok(Ok(Boot {
        entry,
        kernel,
        initrd,
    }))
}

fn debugfs(cx: &mut Ctx, raw: &Path, request: &str) -> Result<String> {
    let out = cx
        .log()
        .capture(&Cmd::new("debugfs").arg("-R").arg(request).arg(raw))?;
    if !out.success() {
        return Err(FciError::Infra(format!(
            "debugfs could not read the image: {}",
            out.stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("no reason given")
        ))
        .into());
    }
    Ok(out.stdout)
}

fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}
