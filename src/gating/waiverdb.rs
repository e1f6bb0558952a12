//! A WaiverDB server (v1.0 API): `POST /api/v1.0/waivers/` and the subject's waivers from
//! `GET /api/v1.0/waivers/` (paged, newest first, obsolete ones asked for too: fci decides
//! which are obsolete, see `decision.rs`). Waivers go out through a spool, as results do
//! (`crate::resultsdb::deliver`): each is first written to `spool/waiverdb/<server>/`, then
//! posted, and removed from the spool only once the server has it; one that cannot be
//! delivered now stays spooled and the next `fci gating waive` or `fci report` with the same
//! server delivers it first, in the order they were made, exactly once (before each POST the
//! server's waivers are read: a waiver it has already, from a POST whose answer was lost, is
//! not posted again). The token (`user:password` for HTTP Basic, else a bearer token) is sent
//! as a header only and registered with `crate::redact`.

use crate::error::FciError;
use crate::resultsdb::client::Failure;
use crate::resultsdb::store::Store;
use crate::workspace::Workspace;
use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `--waiverdb-url` and its token, shared by `fci gating waive|decide` and `fci report`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WaiverDbArgs {
    /// WaiverDB (its root or /api/v1.0): waivers are posted there (spooled when it cannot be
    /// reached) and decisions read the subject's waivers from it
    #[arg(long, env = "FCI_WAIVERDB_URL", hide_env_values = true, value_name = "URL", value_parser = nonempty)]
    pub waiverdb_url: Option<String>,
    /// A file holding the WaiverDB token (`user:password` for HTTP Basic); or set
    /// FCI_WAIVERDB_TOKEN. Never printed or recorded
    #[arg(long, value_name = "FILE")]
    pub waiverdb_token_file: Option<PathBuf>,
}

fn nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("empty".into())
    } else {
        Ok(s.to_string())
    }
}

impl WaiverDbArgs {
    /// The token: from `--waiverdb-token-file`, else FCI_WAIVERDB_TOKEN; registered as a secret.
    pub fn token(&self) -> Result<Option<String>> {
        let t = match &self.waiverdb_token_file {
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| FciError::input(p, format!("cannot read the token: {e}")))?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    return Err(FciError::input(p, "the token file is empty").into());
                }
                Some(t)
            }
            None => std::env::var("FCI_WAIVERDB_TOKEN")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        if let Some(t) = &t {
            crate::redact::register_secret(t);
        }
        Ok(t)
    }

    /// The client, when `--waiverdb-url` is given (bad URL or token: exit 2).
    pub fn client(&self) -> Result<Option<Client>> {
        match &self.waiverdb_url {
            Some(u) => Ok(Some(Client::new(u, self.token()?)?)),
            None => Ok(None),
        }
    }
}

pub struct Client {
    api: String,
    auth: Option<String>,
    /// The user the server will record (HTTP Basic's), when the token says.
    pub user: Option<String>,
    http: reqwest::blocking::Client,
}

/// Pages read at most (of 100 waivers each): a subject with more is refused, never cut short.
const MAX_PAGES: usize = 100;

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Result<Client> {
        crate::resultsdb::client::check_url("--waiverdb-url", url, token.is_some())
            .map_err(FciError::Usage)?;
        let base = url.trim_end_matches('/');
        let api = if base.ends_with("/api/v1.0") {
            base.to_string()
        } else {
            format!("{base}/api/v1.0")
        };
        if let Some(t) = &token {
            crate::redact::register_secret(t);
        }
        crate::redact::register_url_secret(url);
        let user = token
            .as_deref()
            .and_then(|t| t.split_once(':'))
            .map(|(u, _)| u.to_string());
        let auth = token.map(|t| {
            use base64::Engine;
            if t.contains(':') {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(t.as_bytes())
                )
            } else {
                format!("Bearer {t}")
            }
        });
        let credentialed = auth.is_some() || crate::redact::userinfo(url).is_some();
        let limit = Duration::from_secs(20);
        let http = crate::net::client_for(url, credentialed)
            .connect_timeout(Duration::from_secs(5))
            .timeout(limit)
            .build()?;
        Ok(Client {
            api,
            auth,
            user,
            http,
        })
    }

    /// The server's API root without credentials: what names it in the workspace.
    pub fn target(&self) -> String {
        crate::redact::strip_credentials(&self.api)
    }

    fn send(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
        tries: u32,
    ) -> Result<(u16, Value), Failure> {
        crate::resultsdb::client::send_json(&self.api, self.auth.as_deref(), build, tries)
    }

    /// Posts one waiver (once: a POST is not idempotent); the server's waiver.
    pub fn post(&self, waiver: &Value) -> Result<Value, Failure> {
        let (status, body) = self.send(
            || {
                self.http
                    .post(format!("{}/waivers/", self.api))
                    .header("Content-Type", "application/json")
                    .body(waiver.to_string())
            },
            1,
        )?;
        match status {
            200 | 201 if body.get("id").is_some() => Ok(body),
            200 | 201 => Err(Failure::Unreachable(format!(
                "{}: HTTP {status} without a waiver id",
                self.target()
            ))),
            _ => Err(Failure::Rejected(format!(
                "HTTP {status}: {}",
                crate::redact::redact(&body.to_string())
                    .chars()
                    .take(512)
                    .collect::<String>()
            ))),
        }
    }

    /// The subject's waivers, every page, obsolete ones included (`include_obsolete=1`):
    /// which are obsolete is decided with the product version, unlike WaiverDB's own list.
    pub fn list(
        &self,
        subject_type: &str,
        subject_identifier: &str,
        product_version: Option<&str>,
        testcase: Option<&str>,
    ) -> Result<Vec<Value>, Failure> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q: Vec<(&str, String)> = vec![
                ("subject_type", subject_type.to_string()),
                ("subject_identifier", subject_identifier.to_string()),
                ("include_obsolete", "1".into()),
                ("limit", "100".into()),
                ("page", page.to_string()),
            ];
            if let Some(pv) = product_version {
                q.push(("product_version", pv.to_string()));
            }
            if let Some(t) = testcase {
                q.push(("testcase", t.to_string()));
            }
            let (status, body) = self.send(
                || self.http.get(format!("{}/waivers/", self.api)).query(&q),
                3,
            )?;
            let Some(data) = body.get("data").and_then(Value::as_array) else {
                return Err(Failure::Unreachable(format!(
                    "{}: HTTP {status} and no waiver list",
                    self.target()
                )));
            };
            out.extend(data.iter().cloned());
            // The next page by number, never by the URL the server names (it could be
            // another host, and the token would follow it).
            if body.get("next").is_none_or(Value::is_null) || data.is_empty() {
                return Ok(out);
            }
        }
        Err(Failure::Rejected(format!(
            "{}: more than {} waivers for {subject_identifier}",
            self.target(),
            MAX_PAGES * 100
        )))
    }
}

/// The spool of one server.
fn spool_dir(ws: &Workspace, target: &str) -> PathBuf {
    let key = &crate::digest::sha256_bytes(target.as_bytes())[..16];
    ws.spool("waiverdb").join(key)
}

/// What the store's delivered marks call this server.
fn mark_target(target: &str) -> String {
    format!("waiverdb:{target}")
}

/// WaiverDB's POST body for a workspace waiver (its own fields only; `username` only when
/// given explicitly: WaiverDB records the authenticated user, and a username is a proxy
/// request it may refuse).
pub fn post_body(w: &Value, explicit_user: bool) -> Value {
    let mut b = json!({
        "subject_type": w["subject_type"],
        "subject_identifier": w["subject_identifier"],
        "testcase": w["testcase"],
        "waived": w["waived"],
        "product_version": w["product_version"],
        "comment": w["comment"],
    });
    if let Some(s) = w["scenario"].as_str() {
        b["scenario"] = json!(s);
    }
    if explicit_user {
        b["username"] = w["username"].clone();
    }
    b
}

/// Spools one waiver for the server (`seq` orders the spool: waivers go out as made).
pub fn spool(ws: &Workspace, client: &Client, fci_id: &str, body: &Value) -> Result<PathBuf> {
    let dir = spool_dir(ws, &client.target());
    std::fs::create_dir_all(dir.join("rejected"))?;
    let at = chrono::Utc::now().format("%Y%m%dT%H%M%S%6f");
    let file = dir.join(format!("{at}-{fci_id}.json"));
    crate::files::write_atomic(
        &file,
        json!({"fci_waiver_id": fci_id, "body": body,
               "spooled_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()})
        .to_string()
        .as_bytes(),
    )?;
    Ok(file)
}

#[derive(Default, Debug)]
pub struct Delivered {
    pub delivered: usize,
    pub already_there: usize,
    /// Not posted: the server has a newer waiver for the same test case from elsewhere.
    pub superseded: usize,
    pub spooled: usize,
    /// `(fci waiver id, why)` of those the server refused (moved to the spool's rejected/).
    pub rejected: Vec<(String, String)>,
    pub unreachable: Option<String>,
}

/// What the server has of a spooled waiver, from its newest waiver for the same subject,
/// test case, scenario and product version (and user, when known).
#[derive(Debug, PartialEq, Eq)]
enum OnServer {
    /// This one (a POST whose answer was lost): posting it again is not needed.
    There,
    /// A different one given after this one was spooled (a revocation made elsewhere while
    /// the server could not be reached): posting this older one would overrule it.
    Superseded,
    /// Neither: post it.
    Missing,
}

fn on_server(
    client: &Client,
    body: &Value,
    spooled_at: Option<chrono::NaiveDateTime>,
    ours: &[Value],
) -> Result<OnServer, Failure> {
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    let list = client.list(
        &s("subject_type"),
        &s("subject_identifier"),
        Some(&s("product_version")),
        Some(&s("testcase")),
    )?;
    let user = body["username"]
        .as_str()
        .map(String::from)
        .or_else(|| client.user.clone());
    let time = |w: &Value| w.get("timestamp").and_then(super::decision::parse_time);
    let newest = list
        .iter()
        .filter(|w| {
            w["scenario"].as_str().filter(|x| !x.is_empty()) == body["scenario"].as_str()
                && w["product_version"] == body["product_version"]
                && w["testcase"] == body["testcase"]
                && user.as_deref().is_none_or(|u| w["username"] == u)
        })
        .max_by_key(|w| {
            (
                time(w).unwrap_or_default(),
                w["id"].as_u64().unwrap_or_default(),
            )
        });
    Ok(match newest {
        Some(w) if w["waived"] == body["waived"] && w["comment"] == body["comment"] => {
            OnServer::There
        }
        // Given elsewhere: none of this workspace's own waivers (one of them, delivered
        // after this one was spooled, is no reason to hold it back: the spool keeps their
        // order), and newer than this one (this host's clock; WaiverDB stamps in UTC too).
        Some(w)
            if spooled_at.is_some()
                && time(w) > spooled_at
                && !ours.iter().any(|o| same_waiver(o, w)) =>
        {
            OnServer::Superseded
        }
        _ => OnServer::Missing,
    })
}

/// Whether the workspace's waiver `ours` is the server's `theirs` (what WaiverDB keeps of it).
fn same_waiver(ours: &Value, theirs: &Value) -> bool {
    [
        "subject_type",
        "subject_identifier",
        "testcase",
        "product_version",
        "comment",
    ]
    .iter()
    .all(|k| ours[*k] == theirs[*k])
        && ours["waived"].as_bool().unwrap_or(true) == theirs["waived"].as_bool().unwrap_or(true)
        && ours["scenario"].as_str().filter(|s| !s.is_empty())
            == theirs["scenario"].as_str().filter(|s| !s.is_empty())
}

/// Delivers the server's spool, oldest first; stops at the first that cannot be delivered
/// (the later ones wait behind it: a revocation must never reach the server before the waiver
/// it revokes).
pub fn deliver(ws: &Workspace, store: &Store, client: &Client) -> Result<Delivered> {
    let target = client.target();
    let dir = spool_dir(ws, &target);
    let mut d = Delivered::default();
    if !dir.exists() {
        return Ok(d);
    }
    std::fs::create_dir_all(dir.join("rejected"))?;
    let _lock = ws.lock(&format!(
        "waiverdb-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ))?;
    let ours = super::local::load(ws)?;
    for file in crate::files::json_files(&dir)? {
        let name = file.file_name().unwrap_or_default().to_owned();
        let Some(spooled) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        else {
            let _ = std::fs::rename(&file, dir.join("rejected").join(&name));
            continue;
        };
        let id = spooled["fci_waiver_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if store.delivered(&id, &mark_target(&target))? {
            let _ = std::fs::remove_file(&file);
            continue;
        }
        let body = &spooled["body"];
        let spooled_at = spooled
            .get("spooled_at")
            .and_then(super::decision::parse_time);
        let done = match on_server(client, body, spooled_at, &ours) {
            Ok(OnServer::Missing) => client.post(body).map(|_| OnServer::Missing),
            other => other,
        };
        match done {
            Ok(what) => {
                store.mark_delivered(&id, &mark_target(&target))?;
                let _ = std::fs::remove_file(&file);
                match what {
                    OnServer::There => d.already_there += 1,
                    OnServer::Superseded => d.superseded += 1,
                    OnServer::Missing => d.delivered += 1,
                }
            }
            Err(Failure::Rejected(why)) => {
                let _ = std::fs::rename(&file, dir.join("rejected").join(&name));
                d.rejected.push((id, why));
            }
            Err(Failure::Unreachable(why)) => {
                d.unreachable = Some(why);
                break;
            }
        }
    }
    d.spooled = crate::files::json_files(&dir)?.len();
    Ok(d)
}

/// Whether the workspace waiver `fci_id` reached this server (its copy there stands for it).
pub fn delivered(store: &Store, client: &Client, fci_id: &str) -> Result<bool> {
    store.delivered(fci_id, &mark_target(&client.target()))
}

/// The waivers a decision reads with `--waiverdb-url`: the server's for the subject and
/// product version; its failure is the host's (exit 3), never a decision without them.
pub fn waivers_for(
    client: &Client,
    subject_type: &str,
    subject_identifier: &str,
    product_version: &str,
) -> Result<Vec<Value>> {
    client
        .list(
            subject_type,
            subject_identifier,
            Some(product_version),
            None,
        )
        .map_err(|f| {
            FciError::Infra(format!(
                "WaiverDB: cannot read the waivers of {subject_identifier}: {f}"
            ))
            .into()
        })
}

/// The spool's directory, for messages.
pub fn spool_path(ws: &Workspace, client: &Client) -> PathBuf {
    spool_dir(ws, &client.target())
}

/// With `--waiverdb-url`: the waivers spooled for it delivered (what a report does first,
/// with or without `--gating`); `warn` hears what could not be.
pub fn flush(
    ws: &Workspace,
    store: &Store,
    args: &WaiverDbArgs,
    warn: &mut dyn FnMut(String),
) -> Result<()> {
    let Some(client) = args.client()? else {
        return Ok(());
    };
    let d = deliver(ws, store, &client)?;
    if let Some(why) = &d.unreachable {
        warn(format!(
            "WaiverDB not reached ({why}): {} waivers spooled for the next report",
            d.spooled
        ));
    }
    if d.superseded > 0 {
        warn(format!(
            "{} spooled waivers not posted: WaiverDB has newer ones for the same test cases, given elsewhere since",
            d.superseded
        ));
    }
    for (wid, why) in &d.rejected {
        warn(format!(
            "WaiverDB refused waiver {wid} ({why}): kept in the spool's rejected/"
        ));
    }
    Ok(())
}

/// The waivers a decision in the workspace reads: the workspace's own, and with
/// `--waiverdb-url` the server's for the subject (after the spool is delivered), the
/// workspace's that reached the server counting as the server's copy. `warn` hears what could
/// not be delivered; a server that cannot be read is the host's error (exit 3).
pub fn for_decision(
    ws: &Workspace,
    store: &Store,
    args: &WaiverDbArgs,
    subject: (&str, &str, &str),
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Value>> {
    let (ty, id, pv) = subject;
    let local = super::local::load(ws)?;
    let Some(client) = args.client()? else {
        return Ok(local);
    };
    flush(ws, store, args, warn)?;
    let mut out = Vec::new();
    for w in local {
        let delivered_there = match w["fci_waiver_id"].as_str() {
            Some(f) => delivered(store, &client, f)?,
            None => false,
        };
        if !delivered_there {
            out.push(w);
        }
    }
    out.extend(waivers_for(&client, super::subject::canonical(ty), id, pv)?);
    Ok(out)
}
