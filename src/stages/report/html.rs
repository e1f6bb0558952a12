//! `fci report --html FILE`: the run on one self-contained page (no script, no external
//! resource) a maintainer can act on: the run's identity (when, which fci, on which host,
//! with which build backend, on which base, from which dist-git commit), each stage with its
//! outcome, duration, notes, test cases and log, each failing case with its cause line, the
//! tail of its log and the command that reruns its stage, and the gating decision, each
//! unsatisfied requirement linked to the failing case behind it, with the command that waives
//! it. The page is `page.html`, rendered by minijinja with HTML auto-escaping: everything
//! from the manifest (package output), the logs and the servers is escaped by the engine, and
//! a control character in it is shown as `?`.

use crate::manifest::{Manifest, Outcome, StageName, StageRecord, TestResult};
use crate::workspace::Workspace;
use minijinja::value::{Serde, Value};
use minijinja::{context, AutoEscape, Environment};
use serde_json::{json, Value as Json};
use std::path::Path;

/// How much of a failing case's log the page shows: its last lines, each cut to a width,
/// read from at most the file's last bytes.
const EXCERPT_LINES: usize = 40;
const EXCERPT_LINE_CHARS: usize = 400;
const EXCERPT_READ_BYTES: u64 = 64 * 1024;
/// How many failing cases show their log's lines (a stage may fail thousands of cases: the
/// rest are listed, with their logs); how many the page's heading names.
const EXCERPTS: usize = 20;
const NAMED: usize = 10;

/// What the page is made of besides the manifest.
pub struct Page<'a> {
    pub manifest: &'a Manifest,
    /// Where the logs are read from (and their links are relative to).
    pub ws: &'a Workspace,
    /// The results' namespace, which the gating requirements' test cases are named in.
    pub namespace: &'a str,
    /// The base URL the workspace's files are published under, when known: logs are links.
    pub artifacts_url: Option<String>,
    /// The manifest file a rerun reads, when the report was given one (not stdin).
    pub manifest_file: Option<&'a Path>,
    /// The manifest the report writes (none: stdout): what `fci verify` reads afterwards.
    pub written_to: Option<&'a Path>,
    /// The gating.yaml the decision read: the waive command names it, so that a required
    /// test case with no result is known to `fci gating waive`.
    pub gating_file: Option<&'a Path>,
    /// The report's decision, and the product version and subject type it was asked about.
    pub decision: Option<&'a Json>,
    pub product_version: Option<&'a str>,
    pub subject_type: &'a str,
    /// The report's own outcome and notes, which the gating line shows (a promotion refused
    /// after a satisfied decision is FAILED, and says why).
    pub verdict: Option<(Outcome, &'a [String])>,
}

/// The artifacts base URL the page's log links start with: the run's own (`--artifacts-url`,
/// FCI_ARTIFACTS_URL or fci.yaml's, fixed in `run.ci` by its first stage), so the page links
/// where its messages and results do. Only an http(s) URL is a link, without the credentials
/// written into it; anything else is no link.
pub fn artifacts_url(run: Option<String>) -> Option<String> {
    let v = run?;
    let u = url::Url::parse(v.trim()).ok()?;
    matches!(u.scheme(), "http" | "https")
        .then(|| crate::redact::strip_credentials(v.trim()))
        .filter(|s| !s.is_empty())
}

/// A word for the shell: as it is when it needs no quoting, else single-quoted, or (bash,
/// zsh) `$'…'`-quoted when it holds a control character, which the page would not show.
fn sh(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else if s.chars().any(char::is_control) {
        let body: String = s
            .chars()
            .map(|c| match c {
                '\'' => "\\'".to_string(),
                '\\' => "\\\\".to_string(),
                c if c.is_control() && c.is_ascii() => format!("\\x{:02x}", c as u32),
                c if c.is_control() => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("$'{body}'")
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The URL of a workspace file under the artifacts base URL, each path segment escaped; none
/// for a path that is not the workspace's.
fn file_url(base: Option<&str>, rel: &str) -> Option<String> {
    let base = base?;
    crate::manifest::check_relative(rel).ok()?;
    let path: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(crate::net::url_segment)
        .collect();
    Some(format!("{}/{}", base.trim_end_matches('/'), path.join("/")))
}

/// The link to a log the manifest names: only a file in the workspace.
fn log_url(ws: &Workspace, base: Option<&str>, rel: &str) -> Option<String> {
    let url = file_url(base, rel)?;
    ws.resolve(rel).ok()?.is_file().then_some(url)
}

/// The last lines of a workspace file, redacted, each cut to a width, `\r`-overwritten lines
/// as a terminal shows them and terminal escapes dropped; none when the path is not a
/// regular file inside the workspace.
fn excerpt(ws: &Workspace, rel: &str) -> Option<String> {
    let p = ws.resolve(rel).ok()?;
    // Looked at before it is opened: opening a FIFO would wait for a writer.
    if !std::fs::metadata(&p).ok()?.is_file() {
        return None;
    }
    let bytes = crate::caps::tail(&p, EXCERPT_READ_BYTES).ok()?;
    // Redacted whole, before a line is cut: no part of a secret is left at a cut.
    let text = crate::redact::redact(&String::from_utf8_lossy(&bytes));
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(EXCERPT_LINES);
    let shown: Vec<String> = lines[from..]
        .iter()
        .map(|l| {
            let l = l.rsplit('\r').find(|p| !p.is_empty()).unwrap_or("");
            let l = strip_escapes(l);
            match l.char_indices().nth(EXCERPT_LINE_CHARS) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l,
            }
        })
        .collect();
    Some(shown.join("\n"))
}

/// `s` without terminal escape sequences (colours, cursor moves): ESC `[` … final byte, or
/// ESC and one character.
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            Some(']') => {
                // An operating system command (a window title), to BEL or ESC \.
                while let Some(d) = chars.next() {
                    if d == '\u{7}' || (d == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// This machine's name: the host the workspace (and so the run) is on.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn is_failing(o: Outcome) -> bool {
    matches!(
        o,
        Outcome::Failed | Outcome::Error | Outcome::NeedsInspection
    )
}

/// A failing test case, or a failing stage with no failing case of its own.
struct Failing<'a> {
    anchor: String,
    stage_index: usize,
    stage: &'a StageRecord,
    /// The case and its index among the stage's results; none for the stage itself.
    case: Option<&'a TestResult>,
    case_index: Option<usize>,
}

impl Failing<'_> {
    /// The tmt plan or STI aggregate (`tier0`) the case's result counts for.
    fn group(&self) -> Option<String> {
        let c = self.case?;
        match c.runner.as_deref() {
            Some("sti") => Some("tier0".into()),
            Some("tmt") => c.extra.get("plan").and_then(Json::as_str).map(String::from),
            _ => None,
        }
    }

    /// The case's own result name, as `resultsdb::mapping` names it.
    fn own_name(&self, ns: &str) -> Option<String> {
        let c = self.case?;
        let cat = crate::resultsdb::mapping::category(&self.stage.name);
        Some(if c.testcase == cat {
            format!("{ns}.{}.case.{}", self.stage.name, c.testcase)
        } else {
            format!("{ns}.{}.{}", self.stage.name, c.testcase)
        })
    }
}

/// The failing entries of the run, in stage order: each failing case, and each failing
/// stage none of whose cases failed (the stage itself is the case, as in the JUnit report);
/// of the records that still speak for the change (a failed build rebuilt since fails
/// nothing).
fn failing(m: &Manifest) -> Vec<Failing<'_>> {
    let current = m.current_stages();
    let mut out = Vec::new();
    for (i, s) in m.stages.iter().enumerate() {
        if !current.iter().any(|c| std::ptr::eq(*c, s)) {
            continue;
        }
        let before = out.len();
        for (j, c) in s.results.iter().enumerate() {
            if is_failing(c.outcome) {
                out.push(Failing {
                    anchor: format!("case-{i}-{j}"),
                    stage_index: i,
                    stage: s,
                    case: Some(c),
                    case_index: Some(j),
                });
            }
        }
        if out.len() == before && is_failing(s.outcome) {
            out.push(Failing {
                anchor: format!("case-{i}"),
                stage_index: i,
                stage: s,
                case: None,
                case_index: None,
            });
        }
    }
    out
}

/// The failing entry a gating requirement's test case stands for, as `resultsdb::mapping`
/// names results: a case by its own name, a tmt plan or `tier0` by the first failing case
/// counted in it (else the first of its stage: tmt broke outside the tests), a stage's own
/// result by its first failing entry; the latest record of a stage first. A requirement
/// with no result at all, in a run a failure stopped (`stopped_at`: the first stage skipped),
/// is that failure's.
fn target<'a>(
    entries: &'a [Failing<'a>],
    ns: &str,
    testcase: &str,
    missing: bool,
    stopped_at: Option<usize>,
) -> Option<&'a Failing<'a>> {
    let cat = |e: &Failing| crate::resultsdb::mapping::category(&e.stage.name);
    let aggregate = |e: &Failing| {
        format!("{ns}.{}.{}", e.stage.name, cat(e)) == testcase
            || e.group()
                .is_some_and(|g| format!("{ns}.{g}.{}", cat(e)) == testcase)
    };
    // A plan's result failed by tmt's whole run (no plan named): the test or integrate
    // stage's run of tmt.
    let whole_tmt_run = |e: &Failing| {
        (e.stage.is(StageName::Test) || e.stage.is(StageName::Integrate))
            && testcase.starts_with(&format!("{ns}."))
            && testcase.ends_with(&format!(".{}", cat(e)))
            && e.case.is_some_and(|c| {
                c.runner.as_deref() == Some("tmt") && !c.extra.contains_key("plan")
            })
    };
    let first_of_latest = |f: &dyn Fn(&Failing) -> bool| {
        let latest = entries.iter().rev().find(|e| f(e))?.stage_index;
        entries.iter().find(|e| e.stage_index == latest && f(e))
    };
    entries
        .iter()
        .rev()
        .find(|e| e.own_name(ns).as_deref() == Some(testcase))
        .or_else(|| first_of_latest(&aggregate))
        .or_else(|| first_of_latest(&whole_tmt_run))
        .or_else(|| {
            let skipped = stopped_at?;
            entries
                .iter()
                .find(|e| e.stage_index < skipped)
                .filter(|_| missing)
        })
}

/// The global flags a command for this workspace needs: none for the default one.
fn workspace_flag(ws: &Workspace) -> String {
    let default = std::env::current_dir()
        .ok()
        .and_then(|d| d.join(".fci").canonicalize().ok());
    if default.as_deref() == Some(ws.root()) {
        String::new()
    } else {
        format!(" --workspace {}", sh(&ws.root().to_string_lossy()))
    }
}

/// The run's identity, a row each: what ran, when, with what, on what, from what.
fn identity(m: &Manifest) -> Vec<(&'static str, String)> {
    let build = m.stages.iter().rev().find(|s| s.is(StageName::Build));
    let base_commit = m.subject.base.as_ref().and_then(|b| {
        match (b.ostree_ref.as_deref(), b.ostree_commit.as_deref()) {
            (Some(r), Some(c)) => Some(format!("{c} ({r})")),
            (None, Some(c)) => Some(c.to_string()),
            (Some(r), None) => Some(r.to_string()),
            (None, None) => None,
        }
    });
    let fci = env!("CARGO_PKG_VERSION");
    [
        ("run", Some(m.run.id.clone())),
        ("started", Some(m.run.created.clone())),
        ("reported", Some(crate::now_rfc3339())),
        (
            "fci",
            Some(if m.run.fci_version == fci {
                fci.to_string()
            } else {
                format!("{} (reported by {fci})", m.run.fci_version)
            }),
        ),
        ("host", host_name()),
        ("build backend", build.and_then(|b| b.backend.clone())),
        ("base commit", base_commit),
        (
            "dist-git repository",
            m.subject.repo.as_deref().map(crate::redact::redact),
        ),
        ("dist-git branch", m.subject.branch.clone()),
        ("dist-git commit", m.subject.commit.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.unwrap_or_else(|| "—".into())))
    .collect()
}

/// Each stage record (but the report's) with its cases, a failing one linked to its section.
fn stage_rows(p: &Page, entries: &[Failing]) -> Vec<Json> {
    let base = p.artifacts_url.as_deref();
    let anchors: std::collections::HashMap<(usize, Option<usize>), &str> = entries
        .iter()
        .map(|e| ((e.stage_index, e.case_index), e.anchor.as_str()))
        .collect();
    p.manifest
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is(StageName::Report))
        .map(|(i, s)| {
            let results: Vec<Json> = s
                .results
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    json!({"testcase": r.testcase, "outcome": r.outcome, "note": r.note,
                           "anchor": anchors.get(&(i, Some(j)))})
                })
                .collect();
            json!({
                "name": s.name, "outcome": s.outcome, "duration_s": s.duration_s,
                "notes": s.notes, "results": results, "log": s.log,
                "log_url": s.log.as_deref().and_then(|l| log_url(p.ws, base, l)),
                "anchor": anchors.get(&(i, None)),
            })
        })
        .collect()
}

/// The run's attestations in pipeline order (the chain from the dist-git commit to the image,
/// with the test results and the gate), each with what its statement is about as the
/// envelope says, and who signed it. Shown, not verified: `fci verify` checks them.
fn provenance_rows(p: &Page) -> Vec<Json> {
    let base = p.artifacts_url.as_deref();
    let order = |a: &crate::manifest::Artifact| {
        let stage = StageName::parse(&a.stage).map_or(usize::MAX, |s| s as usize);
        // A stage's provenance before its own test result (the build's %check).
        (
            stage,
            a.name != format!("{}.intoto.json", a.stage),
            a.name.clone(),
        )
    };
    let mut atts: Vec<&crate::manifest::Artifact> = p
        .manifest
        .artifacts_of(crate::manifest::ArtifactKind::Attestation)
        .collect();
    atts.sort_by_key(|a| order(a));
    atts.into_iter()
        .map(|a| {
            let statement = p
                .ws
                .resolve(&a.path)
                .ok()
                .and_then(|f| {
                    crate::caps::read_file_with(&f, 16 << 20, crate::caps::Open::NO_LINK).ok()
                })
                .and_then(|b| serde_json::from_slice::<crate::provenance::dsse::Envelope>(&b).ok())
                .and_then(|e| e.payload_bytes().ok())
                .and_then(|b| serde_json::from_slice::<Json>(&b).ok());
            let about: Vec<String> = statement
                .as_ref()
                .and_then(|s| s["subject"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect();
            let kind = match a.extra.get("predicate_type").and_then(Json::as_str) {
                Some(crate::provenance::statement::SLSA_PROVENANCE_V1) => "SLSA provenance v1",
                Some(crate::provenance::statement::TEST_RESULT_V0_1) => "test result v0.1",
                Some(crate::provenance::statement::VSA_V1) => "verification summary v1",
                _ => "statement",
            };
            let result = statement.as_ref().and_then(|s| {
                let p = &s["predicate"];
                p["result"]
                    .as_str()
                    .or(p["verificationResult"].as_str())
                    .map(String::from)
            });
            let signer = a
                .extra
                .get("signed_by")
                .and_then(Json::as_str)
                .map(|k| k[..k.len().min(16)].to_string());
            json!({
                "name": a.name.trim_end_matches(".intoto.json"), "kind": kind,
                "about": about, "result": result, "signed_by": signer,
                "path": a.path, "url": log_url(p.ws, base, &a.path),
                "readable": statement.is_some(),
            })
        })
        .collect()
}

/// Each failing entry's section: its cause, its log (linked), the log's last lines (of the
/// first [`EXCERPTS`]), the command that reruns its stage.
fn failure_rows<'a>(p: &Page<'a>, entries: &[Failing<'a>], fci: &str) -> Vec<Json> {
    let base = p.artifacts_url.as_deref();
    let manifest_arg = p
        .manifest_file
        .map(|f| sh(&f.to_string_lossy()))
        .unwrap_or_else(|| "MANIFEST".into());
    entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let s = e.stage;
            let (name, outcome, cause, log) = match e.case {
                Some(c) => (
                    c.testcase.as_str(),
                    c.outcome,
                    c.note.iter().cloned().collect::<Vec<_>>(),
                    c.log.as_deref().or(s.log.as_deref()),
                ),
                None => (
                    s.name.as_str(),
                    s.outcome,
                    s.notes.clone(),
                    s.log.as_deref(),
                ),
            };
            let rerun = StageName::parse(&s.name)
                .filter(|n| *n != StageName::Report)
                .map(|n| format!("{fci} {n} -m {manifest_arg} --no-cache"));
            // The lines that tell: the case's log, else (it has none, or an empty one) its
            // stage's.
            let stage_log = s.log.as_deref().filter(|l| Some(*l) != log);
            let read = |l: &'a str| excerpt(p.ws, l).map(|t| (l, t));
            let tail = if n < EXCERPTS {
                match log.and_then(read) {
                    Some((_, t)) if t.is_empty() && stage_log.is_some() => None,
                    tail => tail,
                }
                .or_else(|| stage_log.and_then(read))
            } else {
                None
            };
            json!({
                "anchor": e.anchor, "stage": s.name, "testcase": name, "outcome": outcome,
                "cause": cause, "log": log,
                "log_url": log.and_then(|l| log_url(p.ws, base, l)),
                "excerpt": tail.as_ref().map(|(_, t)| t),
                "excerpt_of": tail.as_ref().map(|(l, _)| l).filter(|l| Some(**l) != log),
                "excerpt_url": tail.as_ref().and_then(|(l, _)| log_url(p.ws, base, l)),
                "rerun": rerun,
            })
        })
        .collect()
}

/// Each unsatisfied requirement of the decision: linked to the failing entry behind it, with
/// the command that waives it.
fn requirement_rows(p: &Page, entries: &[Failing], fci: &str, subject: &str) -> Vec<Json> {
    let stopped_at = p
        .manifest
        .stages
        .iter()
        .position(|s| s.outcome == Outcome::Skipped && !s.data.contains_key("not_due"));
    p.decision
        .and_then(|d| d.get("unsatisfied_requirements"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let testcase = r.get("testcase").and_then(Json::as_str);
            let kind = r.get("type").and_then(Json::as_str).unwrap_or("");
            let scenario = r.get("scenario").and_then(Json::as_str);
            let missing = kind == "test-result-missing";
            let target =
                testcase.and_then(|t| target(entries, p.namespace, t, missing, stopped_at));
            let waive = match (testcase, p.product_version) {
                (Some(t), Some(pv)) => {
                    let id = r
                        .get("subject_identifier")
                        .and_then(Json::as_str)
                        .unwrap_or(subject);
                    let mut c = format!(
                        "{fci} gating waive {} --product-version {} --subject-identifier {}",
                        sh(t),
                        sh(pv),
                        sh(id)
                    );
                    if let Some(g) = p.gating_file {
                        c.push_str(&format!(" --gating {}", sh(&g.display().to_string())));
                    }
                    if p.subject_type != "koji_build" {
                        c.push_str(&format!(" --subject-type {}", sh(p.subject_type)));
                    }
                    if let Some(sc) = scenario {
                        c.push_str(&format!(" --scenario {}", sh(sc)));
                    }
                    c.push_str(" --comment 'WHY THIS FAILURE MAY PASS'");
                    Some(c)
                }
                _ => None,
            };
            json!({"testcase": testcase, "type": kind, "scenario": scenario, "waive": waive,
                   "anchor": target.map(|e| &e.anchor),
                   "case": target.map(|e| e.case.map_or(&e.stage.name, |c| &c.testcase))})
        })
        .collect()
}

/// The page.
pub fn page(p: &Page) -> String {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| {
        // Text only ever reaches the page through here: no escape sequence or other control
        // character of a log gets onto it, whatever a browser would make of it.
        let shown = match value.as_str() {
            Some(s) if !value.is_safe() && *state.auto_escape() == AutoEscape::Html => Value::from(
                s.chars()
                    .map(|c| match c {
                        '\n' | '\t' => c,
                        c if c.is_control() => '?',
                        c => c,
                    })
                    .collect::<String>(),
            ),
            _ => value.clone(),
        };
        minijinja::escape_formatter(out, state, &shown)
    });
    let m = p.manifest;
    let fci = format!("fci{}", workspace_flag(p.ws));
    let subject = m
        .subject_nvr()
        .or_else(|| m.subject.package.clone())
        .unwrap_or_else(|| "(no subject)".into());
    let entries = failing(m);
    let outcomes: Vec<Outcome> = m
        .current_stages()
        .iter()
        .map(|s| s.outcome)
        .chain(p.verdict.map(|v| v.0))
        .collect();
    // The run's verdict as the report's exit status says it (a stage skipped after a
    // failure follows a failing one; one not due yet fails nothing).
    let overall = if outcomes.contains(&Outcome::Error) {
        Outcome::Error
    } else if outcomes.iter().any(|o| is_failing(*o)) {
        Outcome::Failed
    } else {
        Outcome::Passed
    };
    let requirements = requirement_rows(p, &entries, &fci, &subject);
    let ctx = context! {
        subject,
        overall => overall.as_str(),
        identity => Serde(identity(m)),
        stages => Serde(stage_rows(p, &entries)),
        provenance => Serde(provenance_rows(p)),
        verify_cmd => format!(
            "{fci} verify --key PIPELINE.pub.pem -m {}",
            p.written_to
                .map(|f| sh(&f.to_string_lossy()))
                .unwrap_or_else(|| "MANIFEST    # the manifest this report writes".into())
        ),
        dist_git => m.subject.repo.clone().zip(m.subject.commit.clone()).map(|(r, c)| format!("{r} @ {c}")),
        named => NAMED,
        failures => Serde(failure_rows(p, &entries, &fci)),
        manifest_given => p.manifest_file.is_some(),
        decision => p.decision.map(Serde),
        requirements => Serde(requirements),
        verdict => p.verdict.map(|(o, notes)| context! { outcome => o.to_string(), notes => Serde(notes) }),
    };
    env.template_from_named_str("page.html", include_str!("page.html"))
        .and_then(|t| t.render(ctx))
        // The template is fixed and its values plain data: a failure here is a bug in it.
        .expect("the report page's template renders")
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use serde_json::json;

    fn ws() -> (tempfile::TempDir, crate::workspace::Workspace) {
        let d = tempfile::tempdir().unwrap();
        let ws = crate::workspace::Workspace::open(&d.path().join("ws")).unwrap();
        (d, ws)
    }

    /// Hostile strings everywhere a manifest, a log or a server puts text on the page: none
    /// of them becomes markup, a link, or a command that runs something else.
    #[test]
    fn package_output_is_escaped() {
        let evil = "<script>alert('x')</script>&\u{1b}[31m\"<img src=x onerror=alert(1)>";
        let (_d, ws) = ws();
        std::fs::create_dir_all(ws.root().join("objects/aa")).unwrap();
        std::fs::write(
            ws.root().join("objects/aa/case.log"),
            format!("one\n{evil}\n"),
        )
        .unwrap();
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": evil, "created": "2026-12-01T00:00:00Z", "fci_version": "0"},
            "subject": {"package": evil, "branch": evil, "commit": evil},
            "stages": [{
                "name": evil, "outcome": "FAILED", "started": "", "finished": "",
                "duration_s": 2.0, "input_digest": "", "log": evil, "notes": [evil],
                "results": [{"testcase": evil, "outcome": "FAILED", "note": evil,
                             "log": "objects/aa/case.log"}],
            }],
        }))
        .unwrap();
        let d = json!({
            "policies_satisfied": false, "summary": evil,
            "unsatisfied_requirements": [{"testcase": evil, "type": evil, "scenario": evil}],
        });
        let page = super::page(&super::Page {
            manifest: &m,
            ws: &ws,
            namespace: "ns",
            artifacts_url: Some("https://ci.example.org/job/1/artifact".into()),
            manifest_file: None,
            written_to: None,
            gating_file: None,
            decision: Some(&d),
            product_version: Some("fedora-41"),
            subject_type: "koji_build",
            verdict: None,
        });
        assert!(
            !page.contains("<script") && !page.contains("<img"),
            "{page}"
        );
        assert!(!page.contains('\u{1b}'), "{page}");
        let shown = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&amp;?[31m&quot;";
        // subject (title and heading), run, branch and commit (identity), the failing case
        // (the heading's list, its section, the table), its stage (section, table), its note
        // (cause, table), the stage's note and log, the gating summary, the requirement's
        // case, type and scenario.
        assert_eq!(page.matches(shown).count(), 18, "{page}");
        // The log's excerpt, its escape sequence dropped.
        let excerpt = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&amp;&quot;";
        assert!(page.contains(&format!("one\n{excerpt}")), "{page}");
        // Linked: the case's log (a file in the workspace), never the stage's (it is none).
        assert!(
            page.contains("href=\"https:&#x2f;&#x2f;ci.example.org&#x2f;job&#x2f;1&#x2f;artifact&#x2f;objects&#x2f;aa&#x2f;case.log\""),
            "{page}"
        );
        assert_eq!(page.matches("href=\"https").count(), 1, "{page}");
        // The commands quote what they name; the requirement's names no case of the run.
        assert!(
            page.contains("gating waive $&#x27;&lt;script&gt;alert(\\&#x27;x\\&#x27;)&lt;&#x2f;script&gt;&amp;\\x1b[31m"),
            "{page}"
        );
        assert!(!page.contains(": see <a"), "{page}");
        assert!(page.contains("<td>2.0s</td>"), "{page}");
        assert!(
            page.contains("<span class=\"badge fail\">FAILED</span>"),
            "{page}"
        );
    }

    fn page_of(m: &serde_json::Value, decision: Option<&serde_json::Value>) -> String {
        let (_d, ws) = ws();
        let m: Manifest = serde_json::from_value(m.clone()).unwrap();
        super::page(&super::Page {
            manifest: &m,
            ws: &ws,
            namespace: "ns",
            artifacts_url: None,
            manifest_file: Some(std::path::Path::new("run 1.json")),
            written_to: None,
            gating_file: None,
            decision,
            product_version: Some("fedora-41"),
            subject_type: "koji_build",
            verdict: None,
        })
    }

    fn stage(name: &str, outcome: &str, results: serde_json::Value) -> serde_json::Value {
        json!({"name": name, "outcome": outcome, "started": "", "finished": "",
               "duration_s": 1.0, "input_digest": "", "results": results})
    }

    /// Each requirement links to the case its result is made of, as `resultsdb::mapping`
    /// names them: a case by its name, a tmt plan by its failing case, `tier0` by the failing
    /// STI case, a stage's own result by its first failing entry; a missing one only when a
    /// failure stopped the run.
    #[test]
    fn requirements_link_to_the_cases_their_results_are_made_of() {
        let m = json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r", "created": "", "fci_version": "0"},
            "stages": [
                stage("build", "PASSED", json!([])),
                stage("test", "FAILED", json!([
                    {"testcase": "ok", "outcome": "PASSED", "runner": "sti"},
                    {"testcase": "sti-bad", "outcome": "FAILED", "runner": "sti"},
                    {"testcase": "/tests/a", "outcome": "PASSED", "runner": "tmt", "plan": "/plans/x"},
                    {"testcase": "/tests/b", "outcome": "ERROR", "runner": "tmt", "plan": "/plans/y"},
                ])),
            ],
        });
        let req = |t: &str, kind: &str| json!({"testcase": t, "type": kind});
        let d = json!({"policies_satisfied": false, "summary": "no",
        "unsatisfied_requirements": [
            req("ns.tier0.functional", "test-result-failed"),
            req("ns./plans/y.functional", "test-result-errored"),
            req("ns.test.functional", "test-result-failed"),
            req("ns.test./tests/b", "test-result-errored"),
            req("ns./plans/z.functional", "test-result-missing"),
        ]});
        let page = page_of(&m, Some(&d));
        let link = |t: &str| {
            let li = page.split(&format!("<li><code>{t}</code>")).nth(1).unwrap();
            let li = &li[..li.find("</li>").unwrap()];
            li.split("see <a href=\"#")
                .nth(1)
                .map(|a| a[..a.find('"').unwrap()].to_string())
        };
        assert_eq!(
            link("ns.tier0.functional").as_deref(),
            Some("case-1-1"),
            "{page}"
        );
        assert_eq!(
            link("ns.&#x2f;plans&#x2f;y.functional").as_deref(),
            Some("case-1-3")
        );
        assert_eq!(link("ns.test.functional").as_deref(), Some("case-1-1"));
        assert_eq!(
            link("ns.test.&#x2f;tests&#x2f;b").as_deref(),
            Some("case-1-3")
        );
        assert_eq!(link("ns.&#x2f;plans&#x2f;z.functional"), None, "{page}");
        // The commands name the manifest given, quoted.
        assert!(
            page.contains("test -m &#x27;run 1.json&#x27; --no-cache</pre>"),
            "{page}"
        );
    }

    /// A stage's older record, superseded by its rerun, fails nothing; of thousands of
    /// failing cases, the heading names ten and the first twenty show their logs' lines.
    #[test]
    fn only_current_failures_count_and_many_stay_bounded() {
        let many: Vec<_> = (0..1000)
            .map(|i| json!({"testcase": format!("t{i}"), "outcome": "FAILED", "log": "objects/x.log"}))
            .collect();
        let (_d, ws) = ws();
        std::fs::write(ws.root().join("objects/x.log"), "a failure\n").unwrap();
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r", "created": "", "fci_version": "0"},
            "stages": [
                stage("build", "FAILED", json!([])),
                stage("build", "PASSED", json!([])),
                stage("test", "FAILED", json!(many)),
            ],
        }))
        .unwrap();
        let page = super::page(&super::Page {
            manifest: &m,
            ws: &ws,
            namespace: "ns",
            artifacts_url: None,
            manifest_file: None,
            written_to: None,
            gating_file: None,
            decision: None,
            product_version: None,
            subject_type: "koji_build",
            verdict: None,
        });
        assert!(!page.contains("id=\"case-0\""), "{page}");
        assert_eq!(page.matches("<section class=\"failure\"").count(), 1000);
        assert_eq!(
            page.matches("<pre class=\"excerpt\">a failure</pre>")
                .count(),
            20
        );
        assert!(page.contains("1000 failing:"), "{page}");
        assert!(
            page.contains("<code>t9</code></a> and 990 more</p>"),
            "{page}"
        );
        // Read from stdin: the rerun says what MANIFEST is.
        assert!(page.contains("test -m MANIFEST --no-cache"), "{page}");
        assert!(page.contains("(MANIFEST: the run's manifest)"), "{page}");
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": "r", "created": "", "fci_version": "0"},
            "stages": [stage("build", "FAILED", json!([])), stage("build", "PASSED", json!([]))],
        }))
        .unwrap();
        let page = super::page(&super::Page {
            manifest: &m,
            ws: &ws,
            namespace: "ns",
            artifacts_url: None,
            manifest_file: None,
            written_to: None,
            gating_file: None,
            decision: None,
            product_version: None,
            subject_type: "koji_build",
            verdict: None,
        });
        assert!(
            page.contains("<p class=\"sub\"><span class=\"badge pass\">PASSED</span></p>"),
            "{page}"
        );
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(super::sh("fedora-41"), "fedora-41");
        assert_eq!(
            super::sh("fedora-ci.koji-build./plans/a.functional"),
            "fedora-ci.koji-build./plans/a.functional"
        );
        assert_eq!(super::sh("it's $x"), "'it'\\''s $x'");
        assert_eq!(super::sh(""), "''");
        assert_eq!(super::sh("a\nb'"), "$'a\\x0ab\\''");
        assert_eq!(super::sh("a\u{85}"), "$'a\\u0085'");
    }

    #[test]
    fn a_log_link_escapes_each_segment_and_only_names_workspace_paths() {
        let base = Some("https://ci.example.org/a/");
        assert_eq!(
            super::file_url(base, "objects/ab/x y#?.log").as_deref(),
            Some("https://ci.example.org/a/objects/ab/x%20y%23%3F.log")
        );
        assert_eq!(super::file_url(base, "../etc/passwd"), None);
        assert_eq!(super::file_url(base, "/etc/passwd"), None);
        assert_eq!(super::file_url(None, "objects/x"), None);
    }

    /// The excerpt is the log's last lines, bounded however long a line or the log is, and
    /// what a terminal would show of them.
    #[test]
    fn an_excerpt_is_the_logs_bounded_tail() {
        let (_d, ws) = ws();
        let mut log = String::new();
        for i in 0..100_000 {
            log.push_str(&format!("line {i}\n"));
        }
        log.push_str(&"x".repeat(10_000));
        log.push_str("\nprogress 10%\rprogress 100%\n\u{1b}[31mred\u{1b}[0m\n");
        log.push_str("fetching https://alice:hunter2pw@git.example.org/x\n");
        std::fs::write(ws.root().join("objects/big.log"), &log).unwrap();
        let e = super::excerpt(&ws, "objects/big.log").unwrap();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), super::EXCERPT_LINES, "{e}");
        // Redacted: no credentials of a URL in it.
        assert!(!e.contains("hunter2pw"), "{e}");
        assert!(lines[lines.len() - 1].contains("git.example.org/x"), "{e}");
        assert_eq!(lines[lines.len() - 2], "red");
        assert_eq!(lines[lines.len() - 3], "progress 100%");
        assert_eq!(
            lines[lines.len() - 4].chars().count(),
            super::EXCERPT_LINE_CHARS + 1
        );
        assert_eq!(lines[lines.len() - 5], "line 99999");
        assert!(super::excerpt(&ws, "../x").is_none());
        assert!(super::excerpt(&ws, "objects").is_none());
    }
}
