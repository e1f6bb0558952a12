//! `fci gc`: keeps what recent runs, the known-good base and anything still referenced need,
//! and removes the rest, so that a workspace (and the pipeline state) stays bounded however
//! many runs go through it (docs/gc.md).
//!
//! What refers to what (read from the code that writes each):
//! - A run's manifest is the user's file, but fci keeps every record it adds to one in the
//!   pipeline state, `<state>/records/<run>/<stage>/*.json` (crate::run_records::keep): the
//!   record itself (its `log`, each result's and attempt's `log`: paths into `objects/`), the
//!   run's products (each artifact but logs: `objects/…`, `repos/…`, `trees/…`, the
//!   `ostree-commit` with its candidate ref) and the subject. So a run's records name every
//!   file its manifests can reference; what they reference is found by reading every string of
//!   them that is a path into one of those areas ([`objects::referenced`]).
//! - A reused stage's record has the cache entry's input digest and `data.cached_from_run`;
//!   the cache entry (`cache/<stage>/<digest>.json`, crate::workspace::CacheEntry) names the
//!   artifacts and the log of the run that made it. A kept run keeps the cache entries of its
//!   records' input digests, and the cache entries a kept run made; every other entry goes
//!   (an old run's, or one whose artifacts are gone).
//! - `repos/<digest>/` are hard links into `objects/` (crate::stages::build::repo): a whole
//!   entry, kept when named; removing an object a kept repository links keeps its data.
//! - `state/image/made/<sha256>.json` speaks for an image object (crate::binding): it goes with
//!   the image.
//! - The known-good runs (`<state>/known-good/<branch>.json`, each package's `run`) and the
//!   runs queued for a retest (`<state>/retest/<branch>.json`) are always kept, whatever the
//!   policy ([`records::pinned`]); so is a run whose last record is within the grace period,
//!   and an entry of `objects/`, `repos/` or `trees/` that appeared within it (what `fci
//!   unbundle` imported for a stage about to run, which no record names yet).
//! - OSTree: `fci/<branch>/known-good` refs always stay (with `ostree_depth` commits of their
//!   history: a queued run composes on the known-good it was emitted on); a run's candidate
//!   ref `fci/<branch>/candidate/<run>` goes with the run's records ([`ostree`]).
//! - `tmp/`: the scratch of killed runs (unlocked), `Workspace::collect_stale`.
//! - `spool/`: a delivery leaves the spool when the server confirmed it (crate::resultsdb::
//!   deliver, crate::bus::publish), so every spooled file is undelivered or unconfirmed (a
//!   crash between the two, which the next report settles by asking the server first): gc
//!   cannot tell a delivered one without the server, and never touches the spool.
//! - Not collected: `lookaside/` (sources by their digest), the results store, the message
//!   journal, each subject's last gating decision (`state/decisions/`, the `previous` of the
//!   next decision message) and the waivers: each a few KiB a run, and each what a later
//!   report reads (message ids, `previous`), which no record says when it may go.
//!
//! Safety against other fci processes: the workspace's collection lock (see [`lock`]), and in
//! the pipeline state the `gc` lock (one gc at a time across workers) and the `ostree-prune`
//! lock (see [`ostree`]).

pub mod lock;
mod objects;
pub mod ostree;
pub mod policy;
mod records;
mod usage;

use crate::error::FciError;
use crate::workspace::Workspace;
use anyhow::Result;
use policy::Policy;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `fci gc`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline's fci.yaml, whose `gc:` section is the policy (the flags override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Keep at most the N newest runs (besides the known-good's, those queued for a retest and
    /// those within the grace period)
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<usize>,
    /// Remove runs whose last record is older than this (14d, 36h)
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub max_age: Option<std::time::Duration>,
    /// Drop the oldest runs until the workspace and state take at most this (20G, 500M)
    #[arg(long, value_name = "SIZE", value_parser = crate::limits::parse_size)]
    pub max_size: Option<u64>,
    /// Always keep a run whose last record is younger than this: its next stage may be about
    /// to start (default 1h)
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub grace: Option<std::time::Duration>,
    /// Commits of each kept OSTree ref's history to keep (default 10)
    #[arg(long, value_name = "N")]
    pub ostree_depth: Option<u32>,
    /// List what would be removed, with its size, and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout too
    #[arg(long)]
    pub json: bool,
}

/// What the runs decided: the record directories kept, the cache entries kept, and the
/// area entries they reference.
struct Roots {
    units: BTreeSet<String>,
    cache: BTreeSet<PathBuf>,
}

fn roots(ws: &Workspace, runs: &[&records::Run], cache: &[objects::Cached]) -> Roots {
    let mut units = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let names: BTreeSet<String> = runs.iter().map(|r| r.name()).collect();
    for r in runs {
        for e in &r.entries {
            objects::referenced(e, &mut units);
            if let (Some(s), Some(d)) = (
                e["record"]["name"].as_str(),
                e["record"]["input_digest"].as_str(),
            ) {
                keys.insert((s.to_string(), d.to_string()));
            }
        }
    }
    let mut kept = BTreeSet::new();
    for c in cache {
        let Some(entry) = &c.entry else { continue };
        let made_by_kept = entry["run_id"].as_str().is_some_and(|id| {
            crate::run_records::run_dir(ws, id)
                .file_name()
                .is_some_and(|n| names.contains(&*n.to_string_lossy()))
        });
        let named = keys.contains(&(c.stage.clone(), c.digest.clone()));
        // One whose artifacts are gone is never reused (`cache_get`): nothing to keep it for.
        if (made_by_kept || named) && ws.cache_get(&c.stage, &c.digest).is_some() {
            objects::referenced(entry, &mut units);
            kept.insert(c.path.clone());
        }
    }
    Roots { units, cache: kept }
}

/// The directories whose size is the workspace's: itself, and the pipeline state and the
/// OSTree repository when they are elsewhere.
fn measured(ws: &Workspace) -> Vec<PathBuf> {
    let mut out = vec![ws.root().to_path_buf()];
    for p in [ws.pipeline(""), ws.ostree_repo()] {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out
}

fn size_of(ws: &Workspace) -> u64 {
    let mut c = usage::Counter::new();
    for p in measured(ws) {
        c.add(&p);
    }
    c.total.bytes
}

pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    let from_file = match &args.config {
        Some(p) => {
            let cfg = crate::config::Config::load(p)?;
            // The pipeline state fci.yaml names, as `fci watch` takes it (--state and
            // FCI_STATE, given first, win).
            if let Some(state) = &cfg.state {
                crate::workspace::set_state_dir(state.clone());
            }
            cfg.gc
        }
        None => Policy::default(),
    };
    let policy = from_file
        .overridden_by(Policy {
            keep_runs: args.keep_runs,
            max_age: args.max_age,
            max_size: args.max_size,
            grace: args.grace,
            ostree_depth: args.ostree_depth,
        })
        .with_defaults();
    let ws = Workspace::open(workspace)?;
    let host = |what: &str, e: &dyn std::fmt::Display| -> anyhow::Error {
        FciError::Infra(format!(
            "gc: {what}: {e} (the host's, nothing of a package)"
        ))
        .into()
    };
    let scratch = ws.scratch("gc-")?;
    let mut log = crate::exec::Log::create(&scratch.path().join("gc.log"))?;
    let before = size_of(&ws);
    // One gc at a time over the pipeline state, on any worker.
    let _pipeline = ws.pipeline_lock("gc")?;
    let mut removed = usage::Counter::new();
    let mut listed: Vec<(String, u64)> = Vec::new();
    let (kept_runs, dropped_runs);
    {
        let _alone = lock::exclusive(&ws)?;
        if !args.dry_run {
            ws.collect_stale();
            records::remove_leftovers(&ws);
        }
        let runs = records::runs(&ws);
        let pinned = records::pinned(&ws);
        let now = std::time::SystemTime::now();
        let mut keep: Vec<(&records::Run, &'static str)> = Vec::new();
        let mut drop: Vec<&records::Run> = Vec::new();
        for (rank, r) in runs.iter().enumerate() {
            match records::kept_because(&policy, &pinned, rank, r, now) {
                Some(why) => keep.push((r, why)),
                None => drop.push(r),
            }
        }
        let cache = objects::cache_entries(&ws);
        let units = objects::all_units(&ws);
        let mut sizes = usage::Counter::new();
        let unit_size: std::collections::BTreeMap<&String, u64> = units
            .iter()
            .map(|u| (u, sizes.add(&ws.root().join(u)).bytes))
            .collect();
        let mut r = roots(
            &ws,
            &keep.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            &cache,
        );
        if let Some(max) = policy.max_size {
            // Everything but the collected areas stays; the oldest runs the policy alone keeps
            // go, one by one, until what their references take fits (those always kept stay,
            // even past the size: said so below).
            let rest = before.saturating_sub(sizes.total.bytes);
            let taken =
                |r: &Roots| rest + r.units.iter().filter_map(|u| unit_size.get(u)).sum::<u64>();
            while taken(&r) > max {
                let Some(i) = keep
                    .iter()
                    .rposition(|(_, why)| *why == "within the policy")
                else {
                    break;
                };
                drop.push(keep.remove(i).0);
                r = roots(
                    &ws,
                    &keep.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
                    &cache,
                );
            }
        }
        // Whatever appeared within the grace period stays too, referenced or not: what
        // `fci unbundle` just imported for a stage to run on, which no record names yet.
        let young = |p: &Path| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() < policy.grace())
        };
        for u in units.iter().filter(|u| !r.units.contains(*u)) {
            let p = ws.root().join(u);
            if young(&p) {
                continue;
            }
            let got = removed.add(&p);
            listed.push((u.clone(), got.bytes));
            if !args.dry_run {
                objects::remove(&ws, &p).map_err(|e| host(&format!("cannot remove {u}"), &e))?;
            }
        }
        for c in cache.iter().filter(|c| !r.cache.contains(&c.path)) {
            let got = removed.add(&c.path);
            listed.push((ws.relative(&c.path), got.bytes));
            if !args.dry_run {
                std::fs::remove_file(&c.path)
                    .map_err(|e| host(&format!("cannot remove {}", c.path.display()), &e))?;
            }
        }
        if !args.dry_run {
            objects::remove_empty_fans(&ws);
            for p in objects::orphan_image_records(&ws) {
                removed.add(&p);
                let _ = std::fs::remove_file(&p);
            }
        }
        for d in &drop {
            let got = removed.add(&d.dir);
            listed.push((format!("records/{}", d.name()), got.bytes));
            if !args.dry_run {
                records::remove(&ws, &d.dir)
                    .map_err(|e| host(&format!("cannot remove {}", d.dir.display()), &e))?;
            }
        }
        kept_runs = keep.len();
        dropped_runs = drop.len();
    }
    let depth = policy.ostree_depth.unwrap_or(policy::DEFAULT_OSTREE_DEPTH);
    let pruned = ostree::collect(&ws, depth, args.dry_run, &mut log)?;
    for r in &pruned.refs {
        listed.push((format!("ostree ref {r}"), 0));
    }
    if args.dry_run {
        for (what, bytes) in &listed {
            println!("{bytes}\t{what}");
        }
        if pruned.objects > 0 {
            println!(
                "{}\tostree: {} unreachable objects",
                pruned.bytes, pruned.objects
            );
        }
    }
    let after = size_of(&ws);
    let freed = if args.dry_run {
        removed.total.bytes + pruned.bytes
    } else {
        before.saturating_sub(after)
    };
    let files = removed.total.files + pruned.objects;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let line = format!(
        "gc: {verb} {files} files ({dropped_runs} runs, {} ostree refs), {} {}; workspace now {} ({kept_runs} runs kept)",
        pruned.refs.len(),
        if args.dry_run { "freeing" } else { "freed" },
        usage::shown(freed),
        usage::shown(after),
    );
    crate::progress::note(&line);
    if args.json {
        println!(
            "{}",
            json!({"dry_run": args.dry_run, "removed_files": files, "removed_runs": dropped_runs,
                   "kept_runs": kept_runs, "removed_ostree_refs": pruned.refs,
                   "ostree_objects": pruned.objects, "freed_bytes": freed,
                   "bytes_before": before, "bytes_after": after})
        );
    }
    Ok(crate::error::exit::PASSED)
}
