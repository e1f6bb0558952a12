//! A ResultsDB v2.0 server, over its HTTP API: the outcomes it accepts (`GET /api/v2.0/`),
//! whether fci's result is there already (`GET /api/v2.0/results?fci_result_id=ID`), and
//! `POST /api/v2.0/results`. The token is sent as a header and never appears anywhere else.

use anyhow::Result;
use serde_json::Value;
use std::time::Duration;

pub struct Client {
    api: String,
    auth: Option<String>,
    http: reqwest::blocking::Client,
}

/// Why a request did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Not reached, timed out, or a 5xx after the retries: try again later (spool).
    Unreachable(String),
    /// The server refused the result itself (4xx): retrying will not help.
    Rejected(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(m) | Failure::Rejected(m) => f.write_str(m),
        }
    }
}

const RETRIES: u32 = 3;

impl Client {
    /// `url` is the server's root or its `/api/v2.0`; `token` a bearer token, or `user:password`
    /// for HTTP Basic (Fedora's ResultsDB has Basic in front of writes).
    /// A token, or a password in `url`, over plain http to another host is bad input.
    /// A query or fragment is refused: the API's paths go after the URL, and a token there
    /// would reach every log and manifest that names the server.
    pub fn new(url: &str, token: Option<String>) -> Result<Client> {
        check_url("ResultsDB", url, token.is_some()).map_err(crate::error::FciError::Usage)?;
        let base = url.trim_end_matches('/');
        let api = if base.ends_with("/api/v2.0") {
            base.to_string()
        } else {
            format!("{base}/api/v2.0")
        };
        // A server may echo the request's headers back: every form of the credentials is
        // masked wherever fci shows text (`redact::redact`), however the client was made.
        if let Some(t) = &token {
            crate::redact::register_secret(t);
        }
        crate::redact::register_url_secret(url);
        let auth = token.map(|t| {
            if t.contains(':') {
                format!("Basic {}", base64(t.as_bytes()))
            } else {
                format!("Bearer {t}")
            }
        });
        // A slow server is one that does not answer within this (FCI_RESULTSDB_TIMEOUT, a
        // duration as the flags take it: seconds, or `90s`, `2m`).
        let limit = std::env::var("FCI_RESULTSDB_TIMEOUT")
            .ok()
            .and_then(|s| crate::duration::parse(&s).ok())
            .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(600)).contains(d))
            .unwrap_or(Duration::from_secs(20));
        // Never proxied to loopback, no redirect followed with a token (`crate::net`).
        // A password in the URL is a credential too: no redirect is followed with it.
        let credentialed = auth.is_some() || crate::redact::userinfo(url).is_some();
        let http = crate::net::client_for(url, credentialed)
            .connect_timeout(limit.min(Duration::from_secs(5)))
            .timeout(limit)
            .build()?;
        Ok(Client { api, auth, http })
    }

    /// `text` from the server, for a message: its URLs' credentials and every form of the
    /// registered secrets masked, at most 512 bytes of it.
    fn scrub(&self, text: &str) -> String {
        let mut out = crate::redact::redact(text);
        if out.len() > 512 {
            let mut end = 512;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push_str("...");
        }
        out
    }

    /// The server's API root with any credentials removed: what names it in the workspace
    /// (the spool, the delivered marks) whichever way its URL was spelled.
    pub fn target(&self) -> String {
        crate::redact::strip_credentials(&self.api)
    }

    fn send(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<(u16, Value), Failure> {
        self.send_tries(build, RETRIES)
    }

    fn send_tries(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
        tries: u32,
    ) -> Result<(u16, Value), Failure> {
        send_json(&self.api, self.auth.as_deref(), build, tries)
    }

    /// The outcomes the server accepts, from `GET /api/v2.0/` (ResultsDB answers it with 300).
    pub fn outcomes(&self) -> Result<Vec<String>, Failure> {
        let (status, body) = self.send(|| self.http.get(format!("{}/", self.api)))?;
        let list = body.get("outcomes").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect::<Vec<_>>()
        });
        match list {
            Some(l) if !l.is_empty() => Ok(l),
            _ if status < 400 => Ok(["PASSED", "INFO", "FAILED", "NEEDS_INSPECTION"]
                .map(String::from)
                .to_vec()),
            _ => Err(Failure::Rejected(format!(
                "{}: HTTP {status} for the API root",
                crate::redact::strip_credentials(&self.api)
            ))),
        }
    }

    /// Whether the server has fci's result `id` (a data filter, as ResultsDB offers for any key).
    pub fn has(&self, id: &str) -> Result<bool, Failure> {
        let (status, body) = self.send(|| {
            self.http
                .get(format!("{}/results", self.api))
                .query(&[("fci_result_id", id), ("limit", "1")])
        })?;
        // Anything but ResultsDB's answer cannot tell whether the result is there: try later.
        match (status, body.get("data").and_then(Value::as_array)) {
            (200, Some(d)) if d.is_empty() => Ok(false),
            // Only a result that carries this id is this one (ResultsDB keeps data values as
            // lists of strings). A server that answers with other results ignores the filter:
            // it cannot say, and the result stays spooled rather than be lost or posted twice.
            (200, Some(d)) => {
                let carries = |r: &Value| match &r["data"]["fci_result_id"] {
                    Value::Array(v) => v.iter().any(|x| x.as_str() == Some(id)),
                    Value::String(s) => s == id,
                    _ => false,
                };
                if d.iter().any(carries) {
                    Ok(true)
                } else {
                    Err(Failure::Unreachable(format!(
                        "{}: the answer to a lookup of result {id} lists other results (the server ignores the fci_result_id filter?): cannot tell whether it is stored",
                        crate::redact::strip_credentials(&self.api)
                    )))
                }
            }
            _ => Err(Failure::Unreachable(format!(
                "{}: HTTP {status} and no result list when looking for result {id}",
                crate::redact::strip_credentials(&self.api)
            ))),
        }
    }

    /// The test case names of the results matching `filters` (data filters, as Greenwave
    /// queries a subject's results), every page (`page` from 0; at most 50 of 100).
    pub fn testcases(&self, filters: &[(String, String)]) -> Result<Vec<String>, Failure> {
        let mut out = Vec::new();
        for page in 0..50u32 {
            let mut q: Vec<(String, String)> = filters.to_vec();
            q.push(("limit".into(), "100".into()));
            q.push(("page".into(), page.to_string()));
            let (status, body) =
                self.send(|| self.http.get(format!("{}/results", self.api)).query(&q))?;
            let Some(data) = body.get("data").and_then(Value::as_array) else {
                return Err(Failure::Unreachable(format!(
                    "{}: HTTP {status} and no result list",
                    crate::redact::strip_credentials(&self.api)
                )));
            };
            out.extend(data.iter().filter_map(|r| {
                r.pointer("/testcase/name")
                    .or_else(|| r.get("testcase"))
                    .and_then(Value::as_str)
                    .map(String::from)
            }));
            if body.get("next").is_none_or(Value::is_null) || data.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    /// Posts one result; the server's id.
    /// (Once: a POST is not idempotent, so after a timeout or a 5xx the caller looks the
    /// result up again before posting again, since it may have been stored.)
    pub fn post(&self, result: &Value) -> Result<Value, Failure> {
        let (status, body) = self.send_tries(
            || {
                self.http
                    .post(format!("{}/results", self.api))
                    .header("Content-Type", "application/json")
                    .body(result.to_string())
            },
            1,
        )?;
        match status {
            // Stored only when the server says which result it made; a garbled answer is
            // looked up again before anything is posted again.
            200 | 201 => body
                .get("id")
                .filter(|i| i.is_u64() || i.is_string())
                .cloned()
                .ok_or_else(|| {
                    Failure::Unreachable(format!(
                        "{}: HTTP {status} without a result id",
                        crate::redact::strip_credentials(&self.api)
                    ))
                }),
            _ => Err(Failure::Rejected(format!(
                "HTTP {status}: {}",
                self.scrub(&body.to_string())
            ))),
        }
    }
}

/// `Err`, one line, when `url` cannot name a ResultsDB server: it has a query or fragment
/// (the API's paths go after it), or would send a credential in clear to another host.
pub fn check_url(what: &str, url: &str, token: bool) -> Result<(), String> {
    crate::net::refuse_clear_credentials(what, url, token)?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = crate::redact::userinfo(url).map_or(rest, |u| &rest[u.len() + 1..]);
    if rest.contains(['?', '#']) {
        return Err(format!(
            "{what} {} has a query or fragment, which is refused (the API's paths go after \
             the URL; a token goes in FCI_RESULTSDB_TOKEN)",
            crate::redact::strip_credentials(url)
        ));
    }
    Ok(())
}

/// Standard base64, for HTTP Basic.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One JSON exchange with a results service (ResultsDB, WaiverDB): up to `tries` attempts,
/// backing off, a 5xx or no answer retried; the answer read up to its cap (past it, no
/// service's answer: what was to be delivered stays spooled); the status and the JSON body
/// (null when it is none). Errors never name the credentials in `api`.
pub fn send_json(
    api: &str,
    auth: Option<&str>,
    build: impl Fn() -> reqwest::blocking::RequestBuilder,
    tries: u32,
) -> Result<(u16, Value), Failure> {
    let mut last = String::new();
    for attempt in 0..tries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300 << attempt));
        }
        let mut req = build();
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        match req.send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let url = resp.url().to_string();
                let text = crate::caps::http_body(resp, crate::caps::RESULTSDB_ANSWER, &url)
                    .map_err(Failure::Unreachable)?;
                if status >= 500 {
                    last = format!("HTTP {status}");
                    continue;
                }
                let body = serde_json::from_slice(&text).unwrap_or(Value::Null);
                return Ok((status, body));
            }
            // reqwest's message names the URL (never the headers): without credentials.
            Err(e) => last = crate::redact::scrub_credentials(&e.to_string(), api),
        }
    }
    Err(Failure::Unreachable(format!(
        "{}: {last} (after {tries} tries)",
        crate::redact::strip_credentials(api)
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(
            super::base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
