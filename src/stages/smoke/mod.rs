//! `fci smoke`: boots the image and proves that the composed commit runs.
//!
//! The kernel, initramfs and options come from the image's default boot loader entry
//! (`disk.rs`); qemu boots them (`qemu.rs`) with the disk as a snapshot and a second,
//! read-only disk holding a nonce and the `--check` commands; the guest answers on the serial
//! console (`console.rs`). PASSED only when the guest booted the manifest's commit and every
//! check exited 0. The serial console goes into the stage log.

pub mod console;
pub mod disk;
pub mod qemu;

use crate::error::FciError;
use crate::manifest::{
    Artifact, ArtifactKind, Manifest, Outcome, StageName, StageRecord, TestResult,
};
use crate::progress::{self, Spinner};
use crate::stage::{self, CommonArgs, Ctx, Plan, RecordParts, Stage};
use crate::tool::Tool;
use anyhow::Result;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `fci smoke`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A command the booted guest runs (repeatable, one test case each); it passes when the
    /// command exits 0, e.g. --check hello-atomic
    #[arg(long = "check", value_name = "CMD")]
    pub checks: Vec<String>,
    /// The accelerator: auto uses KVM only when a probe boot showed it works on this host
    #[arg(long, value_enum, default_value_t = qemu::AccelArg::Auto)]
    pub accel: qemu::AccelArg,
    /// Guest memory in MiB
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub memory: u64,
    /// Kill the guest after this long (FAILED: it did not finish booting and checking): seconds,
    /// or 90s, 5m, 1h
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `fci smoke`; returns the exit code.
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    for c in &args.checks {
        if c.trim().is_empty() || c.contains(['\n', '\r', '\0']) {
            return Err(FciError::Usage(format!(
                "--check {c:?}: one non-empty command line (no newlines)"
            ))
            .into());
        }
    }
    if !(64..=65536).contains(&args.memory) {
        return Err(FciError::Usage("--memory: between 64 and 65536 MiB".into()).into());
    }
    let common = args.common.clone();
    let mut stage = Smoke { args };
    stage::drive(&mut stage, &common, workspace)
}

struct Smoke {
    args: Args,
}

struct Planned {
    image: PathBuf,
    format: String,
    commit: String,
}

impl Stage for Smoke {
    type Work = Planned;

    fn name(&self) -> StageName {
        StageName::Smoke
    }

    fn tools(&self) -> Vec<Tool> {
        vec![qemu::QEMU, crate::stages::image::QEMU_IMG, disk::DEBUGFS]
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Self::Work>> {
        let art = cx.manifest.image().cloned().ok_or_else(|| {
            FciError::input(&cx.origin, "no `image` artifact: run `fci image` first")
        })?;
        let image = cx.consume(&art, ArtifactKind::Image)?;
        let origin = cx.origin.clone();
        let bad = |msg: &str| FciError::input(&origin, format!("artifact {}: {msg}", art.path));
        let format = match art.extra.get("format").and_then(Value::as_str) {
            Some(f @ ("qcow2" | "raw")) => f.to_string(),
            _ => return Err(bad("no `format` (qcow2 or raw)").into()),
        };
        let commit = art
            .extra
            .get("commit")
            .and_then(Value::as_str)
            .filter(|c| crate::ostree::is_checksum(c))
            .ok_or_else(|| bad("no `commit` it was made from"))?
            .to_string();
        let composed = crate::binding::require_composed(
            cx,
            "no composed `ostree-commit` artifact: an image is smoked only with the compose it was made from",
        )?;
        if composed.commit != commit {
            return Err(bad(&format!(
                "made from commit {commit}, but the compose in this manifest is {}",
                composed.commit
            ))
            .into());
        }
        if let Err(why) = disk::check_self_contained(cx, &image, &format) {
            return Err(
                FciError::input(&cx.origin, format!("artifact {}: {why}", art.path)).into(),
            );
        }
        // Only an image `fci image` made in this workspace from that commit is booted.
        crate::binding::check_image(cx, &art, &composed)?;
        let inputs = json!({
            "image": art.sha256,
            "commit": commit,
            "checks": self.args.checks,
            "memory": self.args.memory,
            "accel": format!("{:?}", self.args.accel),
        });
        let work = Planned {
            image,
            format,
            commit,
        };
        Ok(Plan::Run(inputs, work))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        p: Self::Work,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let a = &self.args;
        // What it verified: a failed check is cleared for the run only by a later boot that
        // ran the same checks (run_records::standing).
        rec.data.insert("suite".into(), json!({"checks": a.checks}));
        let spinner = Spinner::new("smoke");
        let dir = cx.dir();
        rec.backend = Some("qemu".into());
        rec.data.insert("commit".into(), json!(p.commit));

        spinner.step("reading the boot loader entry from the image");
        let Some(boot) = boot_files(cx, &p, &dir, rec)? else {
            return Ok(Vec::new());
        };

        let (accel, why) = qemu::choose(a.accel, cx, &boot.kernel)?;
        rec.data.insert("accel".into(), json!(accel.as_str()));
        rec.data.insert("accel_reason".into(), json!(why));

        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let checks_disk = dir.join("checks.img");
        std::fs::write(&checks_disk, console::checks_disk(&nonce, &a.checks))?;
        let serial = dir.join("console.log");
        let answers = dir.join("answers.log");
        let machine = qemu::Machine {
            accel,
            memory_mib: a.memory,
            kernel: &boot.kernel,
            initrd: Some(&boot.initrd),
            append: &boot.entry.options,
            disks: vec![
                (p.image.clone(), p.format.as_str(), false),
                (checks_disk, "raw", true),
            ],
            serials: vec![&serial, &answers],
            timeout: crate::duration::limit(a.timeout),
        };
        spinner.step(&format!("booting under {}", accel.as_str().to_uppercase()));
        let started = Instant::now();
        let done = machine.boot(cx)?;
        let secs = stage::round3(started.elapsed().as_secs_f64());
        rec.data.insert("boot_s".into(), json!(secs));
        cx.log().line("# serial console (ttyS0):");
        cx.log().append_file(&serial);
        cx.log().line("# the guest's answers (ttyS1):");
        cx.log().append_file(&answers);
        // What the guest wrote is read through a cap: its head and its tail, never whole.
        let read = |p: &Path| {
            let cap = crate::caps::CONSOLE_READ;
            let bytes = crate::caps::head_and_tail(p, cap, cap).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let text = read(&serial);
        if let Some(f) = done.failure().filter(|_| !done.timed_out) {
            // qemu itself refused to start (a bad option, no memory), or something killed it
            // (the OOM killer): not the guest's verdict either way.
            return Err(f
                .infra("no verdict: qemu did not run the guest to its end")
                .into());
        }
        let report = console::parse(&read(&answers), &text, &nonce);
        if let Some(b) = &report.booted {
            rec.data.insert("booted".into(), json!(b));
        }
        rec.results = results(&report, &p.commit, &a.checks, done.timed_out, a.timeout);
        rec.outcome =
            Outcome::aggregate(rec.results.iter().map(|r| r.outcome)).unwrap_or(Outcome::Failed);
        if done.timed_out {
            // A slow host, not the image, may be why: never reuse this verdict.
            rec.cacheable = false;
        }
        if rec.outcome != Outcome::Passed {
            // After a panic the kernel prints its backtrace: what led to the panic is above it.
            let upto = match text.find("Kernel panic - not syncing") {
                Some(i) => text[i..].find('\n').map_or(text.len(), |j| i + j),
                None => text.len(),
            };
            let tail = crate::exec::last_lines(&text[..upto], 15);
            rec.notes
                .push(format!("console tail:\n{}", progress::plain_lines(&tail)));
        }
        Ok(Vec::new())
    }

    fn summary(&self, record: &StageRecord, _manifest: &Manifest) {
        let (head, lines) = summary_text(record);
        progress::note_lines(&head, &lines);
    }
}

/// The summary smoke prints: a head line (the outcome, what booted, how many cases passed,
/// and the first case that did not pass with its cause), then one line per case that did not
/// pass, naming its check's command and how it ended. Apart from the printing so that it is
/// tested.
fn summary_text(record: &StageRecord) -> (String, Vec<String>) {
    let took = format!("smoke {} in {:.1}s", record.outcome, record.duration_s);
    if record.results.is_empty() {
        let why = record.notes.first().map_or("", String::as_str);
        return (format!("{took}: {why}"), Vec::new());
    }
    let booted = record
        .data
        .get("booted")
        .and_then(Value::as_str)
        .unwrap_or("nothing");
    let passed = record
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    let failing: Vec<String> = record
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Passed)
        .map(|r| {
            let why = r.note.as_deref().unwrap_or("no reason recorded");
            // The check's command, unless its note says it already.
            let command = r
                .extra
                .get("command")
                .and_then(Value::as_str)
                .filter(|c| !why.contains(&format!("`{c}`")))
                .map(|c| format!(" (`{c}`)"))
                .unwrap_or_default();
            format!("{} {}{command}: {why}", r.outcome, r.testcase)
        })
        .collect();
    let mut head = format!(
        "{took}: booted {booted}; {passed}/{} cases passed",
        record.results.len()
    );
    if let Some(first) = failing.first() {
        head.push_str("; ");
        head.push_str(first);
    }
    // One case failing is said in full by the head already.
    let lines = if failing.len() > 1 {
        failing
    } else {
        Vec::new()
    };
    (head, lines)
}

/// The image's default boot entry, kernel and initrd, read from a raw copy of the image, and
/// the entry's commit checked to be the composed one; `None` when the outcome is FAILED.
/// Apart so that `execute` reads as its steps.
fn boot_files(
    cx: &mut Ctx,
    p: &Planned,
    dir: &Path,
    rec: &mut RecordParts,
) -> Result<Option<disk::Boot>> {
    let raw = if p.format == "raw" {
        p.image.clone()
    } else {
        let raw = dir.join("disk.raw");
        let done = cx.log().capture(
            &crate::exec::Cmd::new("qemu-img")
                .args(["convert", "-f", &p.format, "-O", "raw"])
                .arg(&p.image)
                .arg(&raw),
        )?;
        if let Some(f) = done.failure() {
            rec.outcome = Outcome::Failed;
            rec.notes
                .push(format!("qemu-img cannot read the image: {f}"));
            return Ok(None);
        }
        raw
    };
    let boot = match disk::boot_files(cx, &raw, dir)? {
        Ok(b) => b,
        Err(why) => {
            rec.outcome = Outcome::Failed;
            rec.notes.push(why);
            return Ok(None);
        }
    };
    if raw != p.image {
        std::fs::remove_file(&raw)?;
    }
    rec.data.insert("boot_entry".into(), json!(boot.entry));
    rec.data.insert("entry_commit".into(), json!(boot.commit));
    if boot.commit.as_deref() != Some(p.commit.as_str()) {
        rec.outcome = Outcome::Failed;
        rec.notes.push(format!(
            "the image's default boot entry leads to commit {}, not the composed {}: not booted",
            boot.commit
                .as_deref()
                .unwrap_or("(none: no ostree= deployment link)"),
            p.commit
        ));
        return Ok(None);
    }
    Ok(Some(boot))
}

fn case(
    name: &str,
    outcome: Outcome,
    note: Option<String>,
    extra: Map<String, Value>,
) -> TestResult {
    TestResult {
        testcase: name.to_string(),
        outcome,
        runner: Some("qemu".into()),
        scenario: None,
        log: None,
        duration_s: None,
        note,
        attempts: Vec::new(),
        extra,
    }
}

/// One test case for the boot, one per check.
fn results(
    r: &console::Report,
    expected: &str,
    checks: &[String],
    timed_out: bool,
    timeout: std::time::Duration,
) -> Vec<TestResult> {
    let stopped = if timed_out {
        format!(
            "the guest was killed after {} (--timeout)",
            crate::duration::show(timeout)
        )
    } else if let Some(p) = &r.panic {
        format!("the kernel panicked: {p}")
    } else {
        "the guest stopped".to_string()
    };
    let boot = match &r.booted {
        _ if r.disorder.is_some() => case(
            "boot",
            Outcome::Failed,
            Some(format!(
                "the guest's answers came out of order (garbled or forged), at: {}",
                r.disorder.as_deref().unwrap_or_default()
            )),
            Map::new(),
        ),
        // A guest killed at the timeout did not finish, whatever it said before: a timeout is
        // never a pass (a guest that reported `done` and then hung instead of powering off).
        Some(c) if c == expected && r.done && timed_out => case(
            "boot",
            Outcome::Failed,
            Some(format!(
                "booted the composed commit and reported done, but {stopped} instead of powering off"
            )),
            Map::new(),
        ),
        // A guest that never said `done` did not finish what it was asked (a check that took
        // PID 1 down with it).
        Some(c) if c == expected && !r.done => case(
            "boot",
            Outcome::Failed,
            Some(format!(
                "booted the composed commit, but {stopped} before it reported done"
            )),
            Map::new(),
        ),
        Some(c) if c == expected => case("boot", Outcome::Passed, None, Map::new()),
        Some(c) => case(
            "boot",
            Outcome::Failed,
            Some(format!("booted commit {c}, not the composed {expected}")),
            Map::new(),
        ),
        None => case(
            "boot",
            Outcome::Failed,
            Some(format!("no proof of boot from the guest: {stopped}")),
            Map::new(),
        ),
    };
    let booted_right = r.booted.as_deref() == Some(expected) && r.disorder.is_none();
    let mut out = vec![boot];
    for (i, cmd) in checks.iter().enumerate() {
        let mut extra = Map::new();
        extra.insert("command".into(), json!(cmd));
        let (outcome, note) = match r.checks.get(&(i + 1)) {
            _ if !booted_right => (
                Outcome::Failed,
                Some("not run: the boot failed".to_string()),
            ),
            Some(Some(0)) => (Outcome::Passed, None),
            Some(Some(rc)) => (Outcome::Failed, Some(format!("`{cmd}` exited {rc}"))),
            Some(None) => (
                Outcome::Failed,
                Some(format!("no result: {stopped} during it")),
            ),
            None => (Outcome::Failed, Some(format!("never ran: {stopped} first"))),
        };
        if let Some(rc) = r.checks.get(&(i + 1)).copied().flatten() {
            extra.insert("exit_code".into(), json!(rc));
        }
        out.push(case(&format!("check-{}", i + 1), outcome, note, extra));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_smokes_summary_names_the_failing_check_its_command_and_status() {
        let report = console::parse(
            "fci-guest N booted good\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\n\
             fci-guest N check 2 start\nfci-guest N check 2 rc=3\nfci-guest N check 3 start\n\
             fci-guest N check 3 rc=0\nfci-guest N done\n",
            "",
            "N",
        );
        let checks = ["true".to_string(), "hello-atomic --bad".into(), "id".into()];
        let results = results(
            &report,
            "good",
            &checks,
            false,
            std::time::Duration::from_secs(9),
        );
        let mut data = Map::new();
        data.insert("booted".into(), json!("good"));
        let record = StageRecord {
            outcome: Outcome::Failed,
            duration_s: 12.0,
            results,
            data,
            ..StageRecord::instant(StageName::Smoke, Outcome::Failed, String::new())
        };
        let (head, lines) = summary_text(&record);
        assert_eq!(
            head,
            "smoke FAILED in 12.0s: booted good; 3/4 cases passed; \
             FAILED check-2: `hello-atomic --bad` exited 3"
        );
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(record.results[2].extra["exit_code"], 3);
        // A boot that failed: every case is said, each check with its command.
        let cut = console::parse("fci-guest N booted good\n", "", "N");
        let record = StageRecord {
            results: super::results(
                &cut,
                "good",
                &checks[..2],
                true,
                std::time::Duration::from_secs(9),
            ),
            ..record
        };
        let (head, lines) = summary_text(&record);
        assert!(head.ends_with("0/3 cases passed; FAILED boot: booted the composed commit, but the guest was killed after 9s (--timeout) before it reported done"), "{head}");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            lines[1],
            "FAILED check-1 (`true`): never ran: the guest was killed after 9s (--timeout) first"
        );
    }

    fn outcomes(r: &console::Report, checks: usize, timed_out: bool) -> Vec<(String, Outcome)> {
        let checks: Vec<String> = (0..checks).map(|i| format!("c{i}")).collect();
        results(
            r,
            "good",
            &checks,
            timed_out,
            std::time::Duration::from_secs(9),
        )
        .into_iter()
        .map(|t| (t.testcase, t.outcome))
        .collect()
    }

    #[test]
    fn only_the_composed_commit_reported_in_order_to_the_end_passes() {
        let ok = |answers: &str| console::parse(answers, "", "N");
        let all = ok("fci-guest N booted good\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\nfci-guest N done\n");
        assert!(outcomes(&all, 1, false)
            .iter()
            .all(|(_, o)| *o == Outcome::Passed));
        // Another commit booted: everything fails.
        let wrong = ok("fci-guest N booted evil\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\nfci-guest N done\n");
        assert!(outcomes(&wrong, 1, false)
            .iter()
            .all(|(_, o)| *o == Outcome::Failed));
        // No `done`: the boot fails even though the check passed.
        let cut =
            ok("fci-guest N booted good\nfci-guest N check 1 start\nfci-guest N check 1 rc=0\n");
        let got = outcomes(&cut, 1, true);
        assert_eq!(got[0].1, Outcome::Failed);
        // Out of order: nothing counts.
        let forged = ok("fci-guest N booted good\nfci-guest N check 2 rc=0\nfci-guest N done\n");
        assert!(outcomes(&forged, 2, false)
            .iter()
            .all(|(_, o)| *o == Outcome::Failed));
        // Nothing at all, or a check that never ran.
        assert!(outcomes(&ok(""), 1, true)
            .iter()
            .all(|(_, o)| *o == Outcome::Failed));
        let short = ok("fci-guest N booted good\nfci-guest N done\n");
        assert_eq!(outcomes(&short, 1, false)[1].1, Outcome::Failed);
        // Everything reported, then killed at the timeout (no power-off): not a pass.
        let hung = outcomes(&all, 1, true);
        assert_eq!(hung[0].1, Outcome::Failed, "{hung:?}");
        let notes = results(
            &all,
            "good",
            &["c0".into()],
            true,
            std::time::Duration::from_secs(9),
        );
        assert!(
            notes[0]
                .note
                .as_deref()
                .unwrap()
                .contains("killed after 9s"),
            "{:?}",
            notes[0].note
        );
    }
}
