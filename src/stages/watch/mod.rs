//! `fci watch`: the pipeline's trigger. It learns of new commits on the monitored packages'
//! dist-git branches — by polling (`git.rs` in-process for local repositories, `remote.rs`
//! for URLs) or from push messages (`message.rs`, from a broker through `crate::bus::consume` or one
//! from a file) — and emits one manifest per change (`emit.rs`), whose subject is that
//! commit alone on the branch's current known-good base. What it has seen is in
//! `state/watch/heads.json` (`state.rs`), written only after the manifests are out.

mod emit;
pub mod git;
mod inbox;
pub mod message;
mod poll;
mod remote;
pub mod retest;
pub mod state;

use crate::bus::consume;
use crate::config::Config;
use crate::error::FciError;
use crate::manifest::Outcome;
use crate::progress;
use crate::stage::{Session, Signals};
use crate::workspace::Workspace;
use anyhow::Result;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `fci watch`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The pipeline's configuration (monitored packages, dist-git, branches)
    #[arg(
        long,
        env = "FCI_CONFIG",
        default_value = "fci.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Poll every repository once and exit (with --amqp-url: take what is queued, then exit)
    #[arg(long)]
    pub once: bool,
    /// Poll again after this long, until stopped (seconds, or 5m, 1h, 1h30m); with --amqp-url, how often
    /// kept messages are tried again while the queue is idle (default 30s)
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse, conflicts_with = "once")]
    pub interval: Option<Duration>,
    /// A remote dist-git that does not answer in this long is an ERROR for its package (seconds,
    /// or 90s, 5m)
    #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = crate::duration::parse)]
    pub remote_timeout: Duration,
    /// On the first poll of a branch, emit its head instead of only recording it as seen
    #[arg(long)]
    pub emit_existing: bool,
    /// Consume dist-git push messages (git.receive) from this AMQP broker
    #[arg(
        long,
        env = "FCI_WATCH_AMQP_URL",
        hide_env_values = true,
        value_name = "URL",
        conflicts_with = "message"
    )]
    pub amqp_url: Option<String>,
    /// The broker queue to consume (declared durable, bound to amq.topic for #.git.receive)
    #[arg(long, default_value = "fci-watch", value_name = "NAME")]
    pub queue: String,
    /// Act on one git.receive message from a file ('-' for stdin; at most 1 MiB)
    #[arg(long, value_name = "FILE")]
    pub message: Option<PathBuf>,
    /// Write each change's manifest into DIR (default: one JSON manifest per line on stdout)
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Remote repositories asked at once
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

enum Mode {
    Poll { interval: Option<Duration> },
    Message(PathBuf),
    Amqp(String),
}

/// Runs `fci watch`; returns the exit code: 0, or 3 when a repository could not be read
/// (its state is not advanced, so the next poll tries again).
pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let mode = mode(&args)?;
    let cfg = Config::load(&args.config)?;
    if let Some(state) = &cfg.state {
        crate::workspace::set_state_dir(state.clone());
    }
    let out = emit::Output::new(args.output_dir.as_deref())?;
    // One watcher per workspace: two would both see a change and both emit it. Remote git
    // runs in groups of its own (so a timeout kills its transport helpers too): a Ctrl-C or
    // SIGTERM to fci takes them along.
    let Session { ws, lock: _lock } =
        Session::start(workspace, "watch", "fci watch", Signals::Die)?;
    // And one at a time on the pipeline state, which watchers of other workspaces (other
    // machines) share: the heads are read, compared and written under this lock, so two never
    // emit the same push. A second one waits (a timer's next run finds nothing new).
    let _state_lock = ws.pipeline_lock("watch")?;
    let mut w = Watcher {
        heads: state::Heads::load(&ws.pipeline(""))?,
        cfg,
        ws,
        out,
        emit_existing: args.emit_existing,
        jobs: args.jobs as usize,
        remote_timeout: args.remote_timeout,
        errors: 0,
        emitted: 0,
    };
    match mode {
        Mode::Poll { interval } => loop {
            w.emit_retests()?;
            w.poll()?;
            match interval {
                None => break,
                Some(d) => std::thread::sleep(d),
            }
        },
        Mode::Message(path) => {
            // The message is read and checked before anything is emitted: bad input (exit 2)
            // means no output.
            let bytes = read_message(&path)?;
            let env = consume::Envelope::default();
            let parsed =
                message::parse(&bytes, &env, &w.cfg).map_err(|why| FciError::input(&path, why))?;
            w.retry_pending()?;
            w.emit_retests()?;
            w.take(parsed, &bytes, &env)?;
        }
        Mode::Amqp(url) => consume_amqp(&mut w, &url, &args)?,
    }
    progress::note(&format!("watch: {} change(s) emitted", w.emitted));
    Ok(if w.errors > 0 {
        Outcome::Error
    } else {
        Outcome::Passed
    }
    .exit_code())
}

/// The mode the flags ask for (`--message`, `--amqp-url`, or polling), with the flags
/// checked: bad usage (exit 2) is found before anything is read or locked.
fn mode(args: &Args) -> Result<Mode> {
    let mode = match (&args.message, &args.amqp_url) {
        (Some(m), _) => Mode::Message(m.clone()),
        (None, Some(u)) if u.trim().is_empty() => {
            return Err(FciError::Usage("--amqp-url is empty".into()).into())
        }
        (None, Some(u)) => {
            // Checked here, never echoed: a malformed URL would otherwise reach an error
            // message with its password.
            let ok = reqwest::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "amqp" | "amqps") && p.host().is_some());
            if !ok {
                return Err(FciError::Usage(
                    "--amqp-url is not an amqp:// or amqps:// URL with a host".into(),
                )
                .into());
            }
            crate::net::refuse_clear_credentials("--amqp-url", u, false)
                .map_err(FciError::Usage)?;
            Mode::Amqp(u.clone())
        }
        (None, None) if args.once || args.interval.is_some() => Mode::Poll {
            interval: args.interval,
        },
        (None, None) => {
            return Err(FciError::Usage(
                "fci watch: give --once or --interval DURATION to poll, --amqp-url URL to consume push messages, or --message FILE"
                    .into(),
            )
            .into())
        }
    };
    if args.interval.is_some_and(|d| d.is_zero()) {
        return Err(FciError::Usage("--interval must be longer than 0".into()).into());
    }
    if args.remote_timeout.is_zero() {
        return Err(FciError::Usage("--remote-timeout must be longer than 0".into()).into());
    }
    Ok(mode)
}

/// `--amqp-url`: pending messages retried, then each queued message parsed and taken (one
/// too large or unparsable is rejected), the pending ones retried whenever the queue is
/// idle; with `--once`, until the queue is empty.
fn consume_amqp(w: &mut Watcher, url: &str, args: &Args) -> Result<()> {
    w.retry_pending()?;
    w.emit_retests()?;
    let consumer = consume::Consumer::connect(url, &args.queue)?;
    let idle = args.interval.unwrap_or(Duration::from_secs(30));
    let n = consumer.run(args.once, idle, |event| {
        let (bytes, env) = match event {
            consume::Event::Idle => {
                w.retry_pending()?;
                w.emit_retests()?;
                return Ok(consume::Handled::Done);
            }
            consume::Event::Message(bytes, env) => (bytes, env),
        };
        if bytes.len() as u64 > message::MAX_BYTES {
            w.error(&format!(
                "a message of {} bytes ({}, message id {}) is larger than the limit of {} bytes (1 MiB) for a git.receive message: taken off the queue, not kept",
                bytes.len(),
                env.routing_key.as_deref().unwrap_or("?"),
                env.message_id.as_deref().unwrap_or("none"),
                message::MAX_BYTES
            ));
            return Ok(consume::Handled::Rejected);
        }
        match message::parse(bytes, &env, &w.cfg) {
            Ok(parsed) => {
                w.take(parsed, bytes, &env)?;
                Ok(consume::Handled::Done)
            }
            Err(why) => {
                progress::note(&format!(
                    "watch: rejected a message ({}): {why}",
                    env.routing_key.as_deref().unwrap_or("?")
                ));
                Ok(consume::Handled::Rejected)
            }
        }
    })?;
    progress::note(&format!("watch: {n} message(s) taken from the queue"));
    Ok(())
}

fn read_message(path: &Path) -> Result<Vec<u8>> {
    // A message is small; a bigger "message" is a mistake, not something to buffer.
    const MAX: u64 = message::MAX_BYTES;
    let mut bytes = Vec::new();
    let res = if path == Path::new("-") {
        std::io::stdin().take(MAX + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX + 1).read_to_end(&mut bytes))
    };
    res.map_err(|e| FciError::input(path, format!("cannot read the message: {e}")))?;
    if bytes.len() as u64 > MAX {
        return Err(FciError::input(
            path,
            format!("a message larger than the limit of {MAX} bytes (1 MiB): not read"),
        )
        .into());
    }
    Ok(bytes)
}

/// One watch session: the config, what was seen, where manifests go.
pub struct Watcher {
    cfg: Config,
    ws: Workspace,
    heads: state::Heads,
    out: emit::Output,
    emit_existing: bool,
    jobs: usize,
    remote_timeout: Duration,
    /// Repositories that could not be read in this session.
    errors: usize,
    emitted: usize,
}

/// A new head on a followed branch, ready to become a manifest.
pub struct Change {
    pub package: String,
    pub branch: String,
    /// Where the build stage clones it from (a local path or the dist-git URL).
    pub repo: String,
    pub range: git::Range,
    pub trigger: serde_json::Value,
}

impl Watcher {
    fn error(&mut self, what: &str) {
        self.errors += 1;
        progress::say(&format!("watch: ERROR {}", crate::redact::redact(what)));
    }

    /// Emits the changes, then records their heads (and `also_seen`) as seen. A change
    /// whose manifest could not be written stays unseen, and so does one whose branch state
    /// is damaged (returned, for the caller to report); the others go on.
    fn emit_all(
        &mut self,
        changes: Vec<Change>,
        also_seen: Vec<(String, String, String)>,
    ) -> Result<Vec<String>> {
        for (p, b, c) in &also_seen {
            self.heads.set_first_sight(p, b, c);
        }
        let mut failure = None;
        let mut failed = Vec::new();
        // Each branch's recorded state is read once for the batch, not once per change.
        let mut branches = std::collections::BTreeMap::new();
        for ch in changes {
            let kept = branches.entry(ch.branch.clone()).or_insert_with(|| {
                state::Branch::load(&self.ws.pipeline(""), &ch.branch).map_err(|e| e.to_string())
            });
            let kept = match kept {
                Ok(k) => &*k,
                Err(e) => {
                    failed.push(format!("{}: {e}", ch.package));
                    continue;
                }
            };
            if let Some(run) = kept.excluded_by(&ch.package, &ch.range.to) {
                progress::note(&format!(
                    "watch: {} {} on {} was excluded by run {run}: not queued again",
                    ch.package,
                    &ch.range.to[..12],
                    ch.branch
                ));
                self.heads.set(&ch.package, &ch.branch, &ch.range.to);
                continue;
            }
            let m = emit::manifest(&self.cfg, &self.ws, &ch, kept);
            // The watch record is fci's own record of this run, as every stage's is
            // (`report --promote` takes only records fci wrote).
            if let Err(e) = crate::run_records::keep(&self.ws, &m) {
                failure = Some(e);
                break;
            }
            match self.out.write(&m, &ch) {
                Ok(()) => {
                    self.emitted += 1;
                    self.heads.set(&ch.package, &ch.branch, &ch.range.to);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.heads.save()?;
        match failure {
            Some(e) => Err(e),
            None => Ok(failed),
        }
    }
}
