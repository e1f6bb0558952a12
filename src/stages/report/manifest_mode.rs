//! `fci report -m MANIFEST`: the run's results into the workspace's results database, and
//! with `--gating` the decision for its subject, as a stage record. It runs whatever earlier
//! stages did (a failed run is reported too) and is never reused: every report reads the
//! latest results. Its outcome, and so its exit status, is the run's verdict
//! ([`run_verdict`]): PASSED (0) when every stage passed, or with `--gating` the decision is
//! satisfied (waivers included); FAILED (1) when a stage failed (or was skipped after a
//! failure), or with `--gating` the decision is not; ERROR (3) when a stage ended in ERROR.

use super::Args;
use crate::error::FciError;
use crate::gating::{decision, policy};
use crate::manifest::{Artifact, Manifest, Outcome, StageName, StageRecord};
use crate::progress;
use crate::resultsdb::{mapping, store::Store};
use crate::stage::{self, Ctx, Plan, RecordParts, Reuse, Stage};
use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;

pub fn exec(args: Args, workspace: &Path) -> Result<i32> {
    if args.summary {
        // The table is the stage's summary, which --quiet would silence.
        progress::set_quiet(false);
    }
    let common = args.common.clone();
    let mut stage = Report { args };
    stage::drive(&mut stage, &common, workspace)
}

struct Report {
    args: Args,
}

/// What the report's plan found out about the run.
struct Planned {
    /// With --promote: the run's composed commit, bound to it before anything is recorded.
    composed: Option<crate::binding::Composed>,
    /// The workspace has no records of the manifest's run: reported as the manifest says.
    unbound: bool,
    /// The caller's gating inputs, read before anything is recorded or sent: the
    /// gating.yaml's text and the `--waivers` given.
    gating_text: Option<String>,
    waivers_given: Vec<decision::Waiver>,
}

/// Greenwave's product version for a dist-git branch: `f41` → `fedora-41`, `epel9` →
/// `epel-9`, `rawhide` → `fedora-rawhide`.
fn product_version(branch: &str) -> Option<String> {
    if let Some(n) = branch
        .strip_prefix('f')
        .filter(|n| n.parse::<u32>().is_ok())
    {
        return Some(format!("fedora-{n}"));
    }
    if let Some(n) = branch
        .strip_prefix("epel")
        .filter(|n| n.parse::<u32>().is_ok())
    {
        return Some(format!("epel-{n}"));
    }
    matches!(branch, "rawhide" | "main").then(|| "fedora-rawhide".to_string())
}

impl Report {
    /// The outputs besides the manifest: --html, --junit.
    /// The page and the JUnit report, with the report's own verdict (a refused promotion
    /// is FAILED there too). Written last, once the verdict is final; checked in `plan`, so a
    /// failure now (the disk filled since) is a warning: what was recorded, sent or promoted
    /// stands, and the manifest says so.
    fn write_outputs(
        &self,
        cx: &Ctx,
        decided: Option<(&Value, &decision::Request)>,
        rec: &mut RecordParts,
    ) {
        let decision = decided.map(|(d, _)| d);
        let verdict = decision.map(|_| (rec.outcome, rec.notes.as_slice()));
        let mut failed = Vec::new();
        if let Some(p) = &self.args.html {
            // A rerun reads the manifest the report read, else the one it writes.
            let common = &self.args.common;
            let file = [common.manifest.as_deref(), Some(common.output.as_path())]
                .into_iter()
                .flatten()
                .find(|f| *f != Path::new("-"));
            let ci = crate::bus::messages::Context::of(cx.manifest).ci;
            let page = super::html::page(&super::html::Page {
                manifest: cx.manifest,
                ws: cx.ws,
                namespace: &ci.namespace,
                artifacts_url: super::html::artifacts_url(ci.artifacts_url.clone()),
                manifest_file: file,
                written_to: Some(common.output.as_path()).filter(|f| *f != Path::new("-")),
                gating_file: self.args.gating.as_deref(),
                decision,
                product_version: decided.map(|(_, r)| r.product_version.as_str()),
                subject_type: &self.args.subject_type,
                verdict,
            });
            if let Err(e) = crate::files::write_output(p, page.as_bytes()) {
                failed.push(crate::error::one_line(&e));
            }
        }
        if let Some(p) = &self.args.junit {
            let log = |rel: &str| super::junit_xml::excerpt(cx.ws, rel);
            let written = super::junit_xml::report(cx.manifest, verdict, &log)
                .and_then(|xml| crate::files::write_output(p, xml.as_bytes()));
            if let Err(e) = written {
                failed.push(crate::error::one_line(&e));
            }
        }
        for f in failed {
            rec.warn(&f);
        }
    }

    /// The run's messages into the journal, and with --amqp-url to the broker, each outcome in
    /// the record; a message that cannot be sent never fails the report. Returns the
    /// maintainer they go to. Apart so that `execute` reads as its steps.
    fn announce(&self, cx: &Ctx, store: &Store, rec: &mut RecordParts) -> Option<String> {
        let mcx = crate::bus::messages::Context::of(cx.manifest);
        let maintainer = mcx.maintainer.clone();
        let messages = crate::bus::messages::for_run(cx.manifest, &mcx);
        // A message that cannot be sent never fails the report: it says so.
        let sent = match crate::bus::journal::publish(cx.ws, &messages) {
            Ok(n) => n,
            Err(e) => {
                let msg = format!("message journal: {e:#}");
                rec.warn(&msg);
                0
            }
        };
        if let Some(url) = &self.args.amqp_url {
            let p = match crate::bus::publish::publish(cx.ws, store, url, &messages) {
                Ok(p) => p,
                Err(e) => crate::bus::publish::Published {
                    unreachable: Some(crate::redact::scrub_credentials(&format!("{e:#}"), url)),
                    ..Default::default()
                },
            };
            if let Some(why) = &p.unreachable {
                let msg = format!(
                    "AMQP broker not reached or dropped ({why}): {} messages spooled for the next report",
                    p.spooled
                );
                rec.warn(&msg);
            }
            rec.data.insert(
                "amqp".into(),
                json!({"url": crate::redact::strip_credentials(url), "sent": p.sent, "spooled": p.spooled}),
            );
        }
        rec.data.insert(
            "messages".into(),
            json!({"journal": cx.ws.relative(&cx.ws.journal()),
                   "total": messages.len(), "new": sent,
                   "recipients": maintainer.iter().collect::<Vec<_>>()}),
        );
        maintainer
    }

    /// With --resultsdb-url: the results delivered to ResultsDB (what cannot be, spooled), and
    /// what happened in the record. Apart so that `execute` reads as its steps.
    fn deliver(
        &self,
        cx: &Ctx,
        store: &Store,
        results: &[Value],
        rec: &mut RecordParts,
    ) -> Result<()> {
        if let Some(url) = &self.args.resultsdb_url {
            let token = super::token(&self.args)?;
            let d = crate::resultsdb::deliver::deliver(
                cx.ws,
                store,
                url,
                token,
                results,
                usize::from(self.args.resultsdb_jobs),
            )?;
            let mut j = d.to_json();
            j["url"] = json!(crate::redact::strip_credentials(url));
            if let Some(why) = &d.unreachable {
                let msg = format!(
                    "ResultsDB not reached ({why}): {} results spooled for the next report",
                    d.spooled
                );
                rec.warn(&msg);
            }
            if !d.rejected.is_empty() {
                let msg = format!(
                    "ResultsDB refused {} results (kept in the spool's rejected/): {}",
                    d.rejected.len(),
                    d.rejected.join("; ")
                );
                rec.warn(&msg);
            }
            rec.data.insert("resultsdb".into(), j);
        }
        Ok(())
    }

    /// The subject and product version a gating decision is about: from the flags, else from
    /// the manifest. Apart so that `execute` reads as its steps.
    fn gating_subject(&self, cx: &Ctx) -> Result<(String, String)> {
        let subject = self
            .args
            .subject_identifier
            .clone()
            .or_else(|| cx.manifest.subject_nvr())
            .ok_or_else(|| {
                FciError::input(
                    &cx.origin,
                    "no subject: the manifest has no source package; pass --subject-identifier",
                )
            })?;
        let pv = self
            .args
            .product_version
            .clone()
            .or_else(|| {
                cx.manifest
                    .subject
                    .branch
                    .as_deref()
                    .and_then(product_version)
            })
            .ok_or_else(|| {
                FciError::input(
                    &cx.origin,
                    "no product version for the subject's branch; pass --product-version",
                )
            })?;
        Ok((subject, pv))
    }

    /// The decision as Greenwave announces it (`gating::message`: one message per decision
    /// context whose decision changed, with its `previous`), to the journal and with
    /// --amqp-url to the broker; a message that cannot be sent is a warning. Apart so that
    /// `execute` reads as its steps.
    fn announce_decision(
        &self,
        cx: &Ctx,
        store: &Store,
        rec: &mut RecordParts,
        inputs: &crate::gating::message::Inputs,
    ) {
        let updates = match crate::gating::message::updates(cx.ws, inputs) {
            Ok(u) => u,
            Err(e) => return rec.warn(&format!("decision messages: {e:#}")),
        };
        let owned: Vec<_> = updates.iter().map(|u| u.message()).collect();
        if let Err(e) = crate::bus::journal::publish(cx.ws, &owned) {
            return rec.warn(&format!("message journal: {e:#}"));
        }
        if let Some(url) = &self.args.amqp_url {
            match crate::bus::publish::publish(cx.ws, store, url, &owned) {
                Ok(p) if p.unreachable.is_some() => rec.warn(&format!(
                    "AMQP broker not reached or dropped ({}): {} messages spooled for the next report",
                    p.unreachable.unwrap_or_default(),
                    p.spooled
                )),
                Ok(_) => {}
                Err(e) => rec.warn(&format!(
                    "AMQP broker: {}",
                    crate::redact::scrub_credentials(&format!("{e:#}"), url)
                )),
            }
        }
        // In the journal (and spooled for the broker): the next decision's `previous`.
        if let Err(e) = crate::gating::message::remember(&updates) {
            rec.warn(&format!("decision state: {e:#}"));
        }
        rec.data
            .insert("decision_messages".into(), json!(updates.len()));
    }
}

impl Stage for Report {
    type Work = Planned;

    fn name(&self) -> StageName {
        StageName::Report
    }

    fn runs_after_failures(&self) -> bool {
        true
    }

    /// A report reads whatever results exist by now: never the same run twice.
    fn reuse(&self) -> Reuse {
        Reuse::Never
    }

    fn plan(&mut self, cx: &mut Ctx) -> Result<Plan<Planned>> {
        if let Some(g) = &self.args.gating {
            if self.args.decision_contexts.is_empty() {
                return Err(FciError::Usage(format!(
                    "--gating {}: name the gating point with --decision-context",
                    g.display()
                ))
                .into());
            }
        }
        // No token or password goes in clear to another host: refused before anything runs.
        if let Some(u) = &self.args.resultsdb_url {
            let token = super::token(&self.args)?.is_some();
            crate::resultsdb::client::check_url("--resultsdb-url", u, token)
                .map_err(FciError::Usage)?;
        }
        // A WaiverDB URL or token that cannot be used: exit 2, nothing done.
        self.args.waiverdb.client()?;
        if let Some(u) = &self.args.amqp_url {
            crate::net::refuse_clear_credentials("--amqp-url", u, false)
                .map_err(FciError::Usage)?;
        }
        // What the caller gave is checked before anything is recorded, sent or promoted: a
        // page or report that cannot be written, a gating.yaml or waivers that cannot be read
        // is exit 2 with nothing done.
        for p in [&self.args.html, &self.args.junit].into_iter().flatten() {
            crate::files::check_output(p)?;
        }
        let mut work = Planned {
            composed: None,
            unbound: false,
            gating_text: match &self.args.gating {
                Some(g) => Some(crate::gating::input::read(g)?),
                None => None,
            },
            waivers_given: match &self.args.waivers {
                Some(p) => crate::gating::input::items(p, decision::Waiver::from_json)?,
                None => Vec::new(),
            },
        };
        if self.args.promote {
            if crate::run_records::reproduced_here(cx.ws, &cx.manifest.run.id) {
                return Err(crate::error::FciError::input(
                    &cx.origin,
                    format!(
                        "--promote: run {} was brought into this workspace by fci unbundle: a reproduction is never promoted",
                        cx.manifest.run.id.escape_debug()
                    ),
                )
                .into());
            }
            // A commit that is not this run's is refused before any result is recorded.
            work.composed = super::promote::bound_commit(cx)?;
            // Nor is a verdict fci did not write: every stage record must be this run's, as fci
            // wrote it (an edited test outcome would promote a change whose tests failed), the
            // subject the one fci recorded, and no record of the run dropped from the end.
            crate::run_records::check(cx.ws, cx.manifest, &cx.origin)?;
            crate::run_records::complete(cx.ws, cx.manifest, &cx.origin)?;
        } else if crate::run_records::has_records(cx.ws, &cx.manifest.run.id) {
            // A run fci ran here is reported only as fci recorded it: edited results never
            // reach the results store, ResultsDB or the messages.
            crate::run_records::check(cx.ws, cx.manifest, &cx.origin)?;
        } else {
            work.unbound = true;
        }
        // Its inputs key only the lock (Reuse::Never): two reports of one run take turns.
        let inputs = json!({ "run": cx.manifest.run.id, "contexts": self.args.decision_contexts });
        Ok(Plan::Run(inputs, work))
    }

    fn execute(
        &mut self,
        cx: &mut Ctx,
        mut work: Planned,
        rec: &mut RecordParts,
    ) -> Result<Vec<Artifact>> {
        let naming = mapping::Naming::of(cx.manifest, "ERROR");
        let results = mapping::results(cx.manifest, &naming);
        if work.unbound {
            let msg = format!(
                "run {} has no records in this workspace: its results are recorded as the manifest says (they never decide a --promote)",
                cx.manifest.run.id.escape_debug()
            );
            rec.warn(&msg);
            rec.data.insert("unbound".into(), json!(true));
        }
        let db_path = cx.ws.results_db();
        let mut store = Store::open(&db_path)?;
        let new = store.record_all(&results)?;
        rec.data.insert("results".into(), json!(results.len()));
        rec.data.insert("results_new".into(), json!(new));
        rec.data
            .insert("results_store".into(), json!(cx.ws.relative(&db_path)));
        let maintainer = self.announce(cx, &store, rec);
        self.deliver(cx, &store, &results, rec)?;
        if self.args.gating.is_none() {
            // Waivers spooled for WaiverDB go out with every report (with --gating, just
            // before the decision reads WaiverDB's).
            crate::gating::waiverdb::flush(cx.ws, &store, &self.args.waiverdb, &mut |w| {
                rec.warn(&w)
            })?;
        }
        let (Some(gating), Some(text)) = (self.args.gating.clone(), work.gating_text.take()) else {
            run_verdict(cx.manifest, None, rec);
            self.write_outputs(cx, None, rec);
            return Ok(Vec::new());
        };
        let (subject, pv) = self.gating_subject(cx)?;
        // The policy the decision applied, by digest: the report's attestation names it.
        rec.data.insert(
            "gating_policy".into(),
            json!({"file": std::path::absolute(&gating).map_or_else(
                       |_| gating.display().to_string(),
                       |p| format!("file://{}", p.display())),
                   "sha256": crate::digest::sha256_bytes(text.as_bytes()),
                   "decision_contexts": self.args.decision_contexts}),
        );
        let policies = policy::parse(&text);
        // A promotion is decided on this run's own results, from the records checked in
        // `plan` (latest record last), never on the store's: results of other runs of the
        // same NVR (another dist-git commit) or of manifests reported unchecked would decide
        // for a change they are not about. A rule this run produced no result for is missing.
        // Only the records that still speak for the change: a stage run again after a later
        // one leaves that later one's results about what was there before.
        let mut current = cx.manifest.clone();
        current.stages = cx.manifest.current_stages().into_iter().cloned().collect();
        let as_found = |rows: Vec<Value>| {
            rows.iter()
                .map(decision::TestResult::from_json)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| FciError::Infra(format!("{}: {e}", db_path.display())))
        };
        let own = as_found(store.with_row_ids(&mapping::results(&current, &naming))?)?;
        let found = if self.args.promote {
            own.clone()
        } else {
            as_found(store.results_for(&subject, &self.args.subject_type)?)?
        };
        let mut warned = Vec::new();
        let mut waivers = crate::gating::waiverdb::for_decision(
            cx.ws,
            &store,
            &self.args.waiverdb,
            (&self.args.subject_type, &subject, &pv),
            &mut |w| warned.push(w),
        )?
        .iter()
        .map(decision::Waiver::from_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FciError::Infra(format!("{}: {e}", cx.ws.waivers().display())))?;
        for w in warned {
            rec.warn(&w);
        }
        waivers.append(&mut work.waivers_given);
        let req = decision::Request {
            decision_contexts: self.args.decision_contexts.clone(),
            product_version: pv,
            subject_type: self.args.subject_type.clone(),
            subject_identifier: subject,
        };
        let d = decision::decide(
            &policies,
            &gating.display().to_string(),
            &req,
            &found,
            &waivers,
        );
        rec.outcome = if d["policies_satisfied"] == Value::Bool(true) {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        if let Some(s) = d["summary"].as_str() {
            rec.notes.push(format!("gating: {s}"));
        }
        // A gating.yaml that does not parse is the package's mistake: named with its cause,
        // at its line when the parser says.
        for u in d["unsatisfied_requirements"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if u["type"] == "invalid-gating-yaml" {
                let details = u["details"].as_str().unwrap_or("invalid");
                let line = details
                    .split_once(" at line ")
                    .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
                    .and_then(|n: String| n.parse::<usize>().ok());
                let msg = crate::error::FciError::package(&gating, line, details);
                rec.notes.push(msg.to_string());
            }
        }
        let applies = d["applicable_policies"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        // What the report signs (crate::provenance): the decision on this run's own results
        // only, since its statement names this run's artifacts by digest; without --promote
        // the decision above may rest on another run's results for the same NVR.
        let own_decision = if self.args.promote {
            d.clone()
        } else {
            decision::decide(
                &policies,
                &gating.display().to_string(),
                &req,
                &own,
                &waivers,
            )
        };
        rec.data.insert(
            "gate".into(),
            json!({
                "satisfied": applies && own_decision["policies_satisfied"] == Value::Bool(true),
                "summary": own_decision["summary"],
                "on": "this run's results",
            }),
        );
        if self.args.promote {
            super::promote::apply(cx, rec, &d, work.composed.take(), &self.args.require_stages)?;
        } else if !applies && policies.is_ok() {
            // Greenwave answers 404 here: a context or version no policy names (a typo)
            // decides nothing, and never reads as satisfied.
            rec.outcome = Outcome::Failed;
            rec.notes.push(
                "no policy of the gating.yaml applies to this decision context and product version"
                    .into(),
            );
        }
        let inputs = crate::gating::message::Inputs {
            policies: &policies,
            source: &gating.display().to_string(),
            request: &req,
            results: &found,
            waivers: &waivers,
            recipients: maintainer.iter().cloned().collect(),
        };
        self.announce_decision(cx, &store, rec, &inputs);
        let gate = Gate::of(rec.outcome == Outcome::Passed, &d);
        run_verdict(cx.manifest, Some(&gate), rec);
        self.write_outputs(cx, Some((&d, &req)), rec);
        rec.data.insert("decision".into(), d);
        Ok(Vec::new())
    }

    fn summary(&self, record: &StageRecord, manifest: &Manifest) {
        let mut lines = stage_table(manifest);
        let recorded = format!(
            "report {}: {} results ({} new)",
            record.outcome,
            record.data.get("results").unwrap_or(&Value::Null),
            record.data.get("results_new").unwrap_or(&Value::Null)
        );
        lines.push(match record.notes.first() {
            Some(n) => format!("{recorded}; {n}"),
            None => recorded,
        });
        let head = lines.remove(0);
        progress::note_lines(&head, &lines);
    }
}

/// What a gating decision says of the run's verdict: whether it is satisfied, and the test
/// cases it waived (its `…-waived` requirements).
pub(super) struct Gate {
    pub satisfied: bool,
    pub waived: std::collections::BTreeSet<String>,
}

impl Gate {
    pub fn of(satisfied: bool, decision: &Value) -> Gate {
        let waived = decision
            .get("satisfied_requirements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| {
                r.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("-waived"))
            })
            .filter_map(|r| r.get("testcase").and_then(Value::as_str))
            .map(String::from)
            .collect();
        Gate { satisfied, waived }
    }

    /// Whether the decision waived every failure of `s`: it is satisfied, and each Fedora
    /// test `s` failed (tier0 and each tmt plan for test and integrate; else the stage's own
    /// result), as ResultsDB names it, is a test case it waived. One waived test never
    /// clears another that failed beside it.
    fn waives(&self, m: &Manifest, s: &crate::manifest::StageRecord) -> bool {
        if !self.satisfied || s.outcome == Outcome::Error {
            return false;
        }
        let ns = crate::bus::identity::of(m).namespace;
        let cat = mapping::category(&s.name);
        let mut failed: Vec<String> = mapping::fedora_groups(s)
            .into_iter()
            .filter(|(_, o, _)| !o.is_pass())
            .map(|(g, ..)| format!("{ns}.{g}.{cat}"))
            .collect();
        if failed.is_empty() {
            failed.push(format!("{ns}.{}.{cat}", s.name));
        }
        failed.iter().all(|name| self.waived.contains(name))
    }
}

/// The run's verdict on the report's record, so that its exit status is the run's: a stage
/// that ended in ERROR makes the report ERROR (exit 3); a stage that FAILED, needs inspection
/// or was skipped after a failure makes it FAILED (exit 1), with `--gating` too: a decision
/// that is satisfied because no policy requires the failing test is no pass of the run.
/// Only a failure the decision waived (a stage each of whose failed Fedora tests it waived,
/// and the stages skipped after waived failures) stands as passed, said in a note. The report's first
/// note says which stage and why (its failing case, else its last note, where the driver puts
/// the cause).
fn run_verdict(manifest: &Manifest, gate: Option<&Gate>, rec: &mut RecordParts) {
    let mut worst: Option<Outcome> = None;
    let mut said = Vec::new();
    let mut waived = Vec::new();
    let mut skipped = Vec::new();
    let mut all_failures_waived = true;
    for s in manifest.current_stages() {
        if s.outcome.is_pass() || stage::is_not_due(s) {
            continue;
        }
        if s.outcome == Outcome::Skipped {
            skipped.push(format!("stage `{}` {}", s.name, s.notes.join("; ")));
            continue;
        }
        let failing = s.results.iter().find(|r| {
            matches!(
                r.outcome,
                Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
            )
        });
        let cause = match failing {
            Some(r) => Some(match &r.note {
                Some(n) => format!("{} {}: {n}", r.testcase, r.outcome),
                None => format!("{} {}", r.testcase, r.outcome),
            }),
            None => s.notes.last().cloned(),
        };
        let line = match cause {
            Some(c) => format!("stage `{}` is {}: {c}", s.name, s.outcome),
            None => format!("stage `{}` is {}", s.name, s.outcome),
        };
        if gate.is_some_and(|g| g.waives(manifest, s)) {
            waived.push(line);
            continue;
        }
        all_failures_waived = false;
        worst = match (worst, s.outcome) {
            (_, Outcome::Error) | (Some(Outcome::Error), _) => Some(Outcome::Error),
            _ => Some(Outcome::Failed),
        };
        said.push(line);
    }
    // A skip follows what stopped it: waived with it, else a failure of its own.
    let stopped_by_waived = all_failures_waived && !waived.is_empty();
    if !skipped.is_empty() && !stopped_by_waived {
        worst = worst.or(Some(Outcome::Failed));
        if said.is_empty() {
            // Named when the stage that stopped it is not.
            said = skipped;
        }
    }
    if !waived.is_empty() {
        rec.notes
            .push(format!("the gating decision waived: {}", waived.join("; ")));
    }
    let Some(worst) = worst else {
        return;
    };
    let said = said.join("; ");
    if rec.outcome != Outcome::Error {
        rec.outcome = worst;
    }
    // First: the report's summary line shows it.
    rec.notes.insert(0, format!("run {worst}: {said}"));
}

/// The run's stages as a table for the terminal, its heading first: what failed by name, else
/// the log. Every cell is [`progress::plain`] already, so no cell spans lines.
fn stage_table(manifest: &Manifest) -> Vec<String> {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING).set_header([
        "stage",
        "outcome",
        "seconds",
        "failing tests / log",
    ]);
    for s in manifest.stages.iter().filter(|s| s.name != "report") {
        let failing: Vec<&str> = s
            .results
            .iter()
            .filter(|r| !r.outcome.is_pass() && r.outcome != Outcome::Skipped)
            .map(|r| r.testcase.as_str())
            .collect();
        // A table line, not a list: a stage may list thousands of failing cases.
        const SHOWN: usize = 10;
        let detail = match failing.len() {
            0 => s.log.clone().unwrap_or_default(),
            n if n > SHOWN => format!("{} and {} more", failing[..SHOWN].join(", "), n - SHOWN),
            _ => failing.join(", "),
        };
        t.add_row([
            progress::plain(&s.name),
            s.outcome.to_string(),
            format!("{:.1}", s.duration_s),
            progress::plain(&detail),
        ]);
    }
    if let Some(c) = t.column_mut(0) {
        c.set_padding((0, 1));
    }
    if let Some(c) = t.column_mut(2) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    t.lines().map(|l| l.trim_end().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use crate::manifest::{Manifest, Outcome, StageName};
    use crate::stage::RecordParts;
    use serde_json::json;

    fn run_of(stages: &[(&str, &str, &[&str], serde_json::Value)]) -> Manifest {
        let stages: Vec<_> = stages
            .iter()
            .map(|(name, outcome, notes, data)| {
                json!({"name": name, "outcome": outcome, "started": "", "finished": "",
                       "duration_s": 1.0, "input_digest": "", "notes": notes, "data": data})
            })
            .collect();
        serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r", "created": "", "fci_version": "0"},
            "stages": stages,
        }))
        .unwrap()
    }

    fn verdict(m: &Manifest, gated: Option<bool>) -> (Outcome, Vec<String>) {
        verdict_waiving(m, gated, &[])
    }

    fn verdict_waiving(
        m: &Manifest,
        gated: Option<bool>,
        waived: &[&str],
    ) -> (Outcome, Vec<String>) {
        let mut rec = RecordParts::new(
            StageName::Report,
            if gated == Some(false) {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            String::new(),
        );
        let gate = gated.map(|satisfied| super::Gate {
            satisfied,
            waived: waived.iter().map(|w| w.to_string()).collect(),
        });
        super::run_verdict(m, gate.as_ref(), &mut rec);
        (rec.outcome, rec.notes)
    }

    #[test]
    fn the_reports_verdict_is_the_runs_and_names_the_stage_that_failed() {
        let none = json!({});
        let passed = run_of(&[("build", "PASSED", &[], none.clone())]);
        assert_eq!(verdict(&passed, None), (Outcome::Passed, vec![]));
        // A failing %check: build FAILED, test SKIPPED after it; was PASSED, exit 0.
        let failed = run_of(&[
            ("build", "FAILED", &["dirty", "%check failed"], none.clone()),
            (
                "test",
                "SKIPPED",
                &["skipped: stage `build` is FAILED"],
                none.clone(),
            ),
            ("report", "PASSED", &[], none.clone()),
        ]);
        let (o, notes) = verdict(&failed, None);
        assert_eq!(o, Outcome::Failed);
        assert_eq!(
            notes,
            ["run FAILED: stage `build` is FAILED: %check failed"]
        );
        // With --gating, a decision satisfied because no policy requires the failing test is
        // no pass of the run (the job must go red); only a failure it waived is, said so, and
        // the stages skipped after it follow it.
        assert_eq!(verdict(&failed, Some(true)).0, Outcome::Failed);
        let build_result = "fedora-ci.koji-build.build.validation";
        let (o, notes) = verdict_waiving(&failed, Some(true), &[build_result]);
        assert_eq!(o, Outcome::Passed, "{notes:?}");
        assert!(notes[0].starts_with("the gating decision waived: stage `build`"));
        assert_eq!(
            verdict_waiving(&failed, Some(false), &[build_result]).0,
            Outcome::Failed
        );
        assert_eq!(verdict(&failed, Some(false)).0, Outcome::Failed);
        // A test stage whose STI test and tmt plan both failed: waiving tier0 alone does not
        // pass the run; waiving both does.
        let mut two = run_of(&[("test", "FAILED", &[], none.clone())]);
        two.stages[0].results = serde_json::from_value(json!([
            {"testcase": "a", "outcome": "FAILED", "runner": "sti", "playbook": "tests/tests.yml"},
            {"testcase": "/t/b", "outcome": "FAILED", "runner": "tmt", "plan": "/plans/p"},
        ]))
        .unwrap();
        let tier0 = "fedora-ci.koji-build.tier0.functional";
        let plan = "fedora-ci.koji-build./plans/p.functional";
        assert_eq!(
            verdict_waiving(&two, Some(true), &[tier0]).0,
            Outcome::Failed
        );
        assert_eq!(
            verdict_waiving(&two, Some(true), &[tier0, plan]).0,
            Outcome::Passed
        );
        // Any ERROR is the run's ERROR (exit 3), gated or not.
        let error = run_of(&[
            ("build", "PASSED", &[], none.clone()),
            ("test", "ERROR", &["tmt exited 2"], none.clone()),
        ]);
        assert_eq!(verdict(&error, None).0, Outcome::Error);
        assert_eq!(verdict(&error, Some(true)).0, Outcome::Error);
        // A stage not due stopped nothing; a failure a rebuild superseded speaks no more.
        let not_due = run_of(&[
            ("build", "PASSED", &[], none.clone()),
            ("image", "SKIPPED", &["not due"], json!({"not_due": true})),
        ]);
        assert_eq!(verdict(&not_due, None).0, Outcome::Passed);
        let rebuilt = run_of(&[
            ("build", "FAILED", &["%check failed"], none.clone()),
            ("build", "PASSED", &[], none),
        ]);
        assert_eq!(verdict(&rebuilt, None).0, Outcome::Passed);
    }

    #[test]
    fn the_stage_table_lines_up_names_failures_and_keeps_each_stage_on_one_line() {
        let failing: Vec<_> = (0..12)
            .map(|i| json!({"testcase": format!("case\n{i}"), "outcome": "FAILED"}))
            .collect();
        let stage = |name: &str, outcome: &str, d: f64, results: &[serde_json::Value]| {
            json!({"name": name, "outcome": outcome, "started": "", "finished": "",
                   "duration_s": d, "input_digest": "", "log": "logs/x.log", "results": results})
        };
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r", "created": "", "fci_version": "0"},
            "stages": [
                stage("build", "PASSED", 12.34, &[]),
                stage("test", "FAILED", 123.0, &failing),
                stage("report", "PASSED", 0.0, &[]),
            ],
        }))
        .unwrap();
        let lines = super::stage_table(&m);
        assert_eq!(
            lines,
            vec![
                "stage  outcome  seconds  failing tests / log",
                "build  PASSED      12.3  logs/x.log",
                &format!(
                    "test   FAILED     123.0  {} and 2 more",
                    (0..10)
                        .map(|i| format!("case\\n{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ]
        );
    }
}
