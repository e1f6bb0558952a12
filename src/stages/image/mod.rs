//! `fci image`: a disk image of the newest passed compose, at most once per `--interval`.
//!
//! Backend: `deploy.rs` (a real OSTree deployment, `ostree admin init-fs`/`os-init`/`deploy`,
//! into a sysroot, then `mkfs.ext4 -d` and `qemu-img`). The image has the deployment, its
//! boot loader entries (BLS, under /boot/loader) and no boot loader binary: `fci smoke` boots
//! the entry's kernel directly, as a BLS-reading loader would. osbuild or lorax would be
//! further backends behind the same function; neither is packaged for Debian, so none is here.
//!
//! The interval's state is `state/image/<branch>.json` in the workspace, written after an
//! image was stored: an interrupted run leaves the previous state, and the next run images.

pub mod deploy;

use crate::error::FciError;
use crate::manifest::{Artifact, Manifest, StageName, StageRecord};
use crate::ostree::OSTREE;
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::tool::Tool;
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const MKFS: Tool = Tool::new("mkfs.ext4", "e2fsprogs");
pub const QEMU_IMG: Tool = Tool::new("qemu-img", "qemu-utils");

/// Kernel arguments every image boots with: the root the deployment's initramfs mounts, the
/// serial console `fci smoke` reads, and a panic that stops the machine instead of hanging.
pub const DEFAULT_KARGS: [&str; 4] = ["root=/dev/vda", "rw", "console=ttyS0", "panic=-1"];

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Qcow2,
    Raw,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Raw => "raw",
        }
    }
}

/// `fci image`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Disk image format
    #[arg(long, value_enum, default_value_t = Format::Qcow2)]
    pub format: Format,
    /// Make an image at most this often per branch (seconds, or 90m, 6h, 1d12h; 0: every run);
    /// a run before then is SKIPPED saying when the next is due, and exits 0. --force images
    #[arg(long, default_value = "0", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub interval: Duration,
    /// The disk's virtual size in MiB (default: twice the deployment, at least 256)
    #[arg(long, value_name = "MIB")]
    pub size: Option<u64>,
    /// An extra kernel argument for the deployment (repeatable); the defaults are
    /// root=/dev/vda rw console=ttyS0 panic=-1
    #[arg(long = "karg", value_name = "ARG")]
    pub kargs: Vec<String>,
    /// The deployment's OS name (the stateroot under /ostree/deploy)
    #[arg(long, default_value = "fci", value_name = "NAME")]
    pub os: String,
    /// Kill the image build after this long (ERROR): seconds, or 90m, 4h, 1h30m; 0 for no limit
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `fci image`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    check_args(&args)?;
    let common = args.common.clone();
    let mut stage = Image { args };
    stage::drive(&mut stage, &common, workspace)
}

fn check_args(args: &Args) -> Result<(), FciError> {
    crate::ostree::check_branch(&args.os)
        .map_err(|_| FciError::Usage(format!("--os `{}`: not a plain name", args.os)))?;
    for k in &args.kargs {
        // Each argument is one word of the boot loader entry's `options` line.
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FciError::Usage(format!(
                "--karg `{k}`: one kernel argument, without spaces"
            )));
        }
    }
    if args.size.is_some_and(|s| !(64..=1 << 20).contains(&s)) {
        return Err(FciError::Usage("--size: between 64 and 1048576 MiB".into()));
    }
    Ok(())
}

struct Image {
    args: Args,
}

/// The interval's state of one branch.
fn state_path(cx: &Ctx, branch: &str) -> PathBuf {
    cx.ws.pipeline("image").join(format!("{branch}.json"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{secs} seconds after 1970"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

impl Stage for Image {
    type Work = deploy::Plan;

    fn name(&self) -> StageName {
        StageName::Image
    }

    fn tools(&self) -> Vec<Tool> {
        vec![OSTREE, MKFS, QEMU_IMG]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        if cx.manifest.last_stage(StageName::Compose).is_none() {
            return Err(FciError::input(
                &cx.origin,
                "no compose in the manifest: run `fci compose` first",
            )
            .into());
        }
        let composed =
            crate::binding::require_composed(cx, "no `ostree-commit` artifact from `fci compose`")?;
        let (repo, commit, branch) = (composed.repo_path, composed.commit, composed.branch);
        let state = state_path(cx, &branch);
        if !self.args.common.force && !self.args.interval.is_zero() {
            let last = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("made_unix").and_then(Value::as_u64));
            let now = unix_now();
            if last.is_some_and(|l| l > now) {
                progress::note(&format!(
                    "image: the last {branch} image is dated in the future ({}): the clock went back or the state is damaged; imaging now",
                    state.display()
                ));
            }
            if let Some(last) = last.filter(|l| *l <= now) {
                let due = last.saturating_add(self.args.interval.as_secs());
                if now < due {
                    let mut data = Map::new();
                    data.insert("next_due".into(), rfc3339(due).into());
                    data.insert("last_image".into(), rfc3339(last).into());
                    return Ok(Plan::NotDue(
                        format!(
                            "not due: the last {branch} image was made at {}; the next is due at {} (--force images now)",
                            rfc3339(last),
                            rfc3339(due)
                        ),
                        data,
                    ));
                }
            }
        }
        if !crate::users::is_root() {
            return Err(FciError::Infra(
                "fci image writes a deployment whose files belong to root: run it as root".into(),
            )
            .into());
        }
        let mut kargs: Vec<String> = DEFAULT_KARGS.iter().map(|s| s.to_string()).collect();
        kargs.extend(self.args.kargs.iter().cloned());
        let ostree_ref = composed.candidate;
        let inputs = json!({
            "commit": commit,
            "branch": branch,
            "ref": ostree_ref,
            "format": self.args.format.as_str(),
            "size": self.args.size,
            "kargs": kargs,
            "os": self.args.os,
            // Images of earlier versions have no record binding them to their commit
            // (crate::binding): never reused.
            "binding": 1,
        });
        let work = deploy::Plan {
            repo,
            commit,
            ostree_ref,
            branch,
            state,
            os: self.args.os.clone(),
            kargs,
            format: self.args.format,
            size_mib: self.args.size,
            timeout: crate::duration::limit(self.args.timeout),
        };
        Ok(Plan::Run(inputs, work))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let spinner = Spinner::new("image");
        let artifacts = deploy::image(&p, cx, rec, &spinner)?;
        if rec.outcome == crate::manifest::Outcome::Passed {
            let now = unix_now();
            let state = json!({
                "made_unix": now,
                "made": rfc3339(now),
                "commit": p.commit,
                "image": artifacts.first().map(|a| a.path.clone()),
            });
            // The image is made and stored: failing to note when keeps it, says so, and the
            // next run images again.
            let written = std::fs::create_dir_all(p.state.parent().expect("state has a parent"))
                .map_err(anyhow::Error::from)
                .and_then(|_| {
                    crate::files::write_atomic(
                        &p.state,
                        serde_json::to_string_pretty(&state)?.as_bytes(),
                    )
                });
            if let Err(e) = written {
                let msg = format!(
                    "{}: cannot record the image's time ({e}): the interval does not hold until it can",
                    p.state.display()
                );
                progress::note(&format!("warning: {msg}"));
                rec.notes.push(msg);
            }
        }
        Ok(artifacts)
    }

    fn summary(&self, record: &StageRecord, manifest: &Manifest) {
        let image = manifest
            .image()
            .map_or("no image".to_string(), |a| a.path.clone());
        progress::note(&format!(
            "image {} in {:.1}s: {image}",
            record.outcome, record.duration_s
        ));
    }
}
