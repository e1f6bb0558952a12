//! A WaiverDB v1.0 stand-in for the tests, speaking its wire format on loopback:
//! `POST /api/v1.0/waivers/` (an object; `comment` and `product_version` required, `waived`
//! default true) answers 201 with the waiver plus `id`, `username` (the HTTP Basic user, or
//! the body's `username` as a proxy request, then `proxied_by` is the Basic user), `proxied_by`
//! and `timestamp`; `GET /api/v1.0/waivers/` filters on subject_type, subject_identifier,
//! product_version and testcase, lists newest first, drops obsolete waivers unless
//! `include_obsolete` (as WaiverDB does: the newest per subject, test case and scenario,
//! regardless of product version and user — its quirk) and pages as Flask-RESTful does
//! (`page` from 1, `limit`), answering `{data, first, last, next, prev}`. Faults: it can be
//! down (connections closed unanswered), or store a POST and answer 503 anyway.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct State {
    pub waivers: Vec<Value>,
    pub authorization: Vec<Option<String>>,
    /// Connections are closed unanswered (the server is down).
    pub down: bool,
    /// Store the next N POSTs, then answer them 503 anyway (a proxy timing out).
    pub store_then_fail: usize,
    /// POSTs seen (answered or not).
    pub posts: usize,
    /// The most a page holds whatever `limit` asks (to make a short list span pages).
    pub page_cap: Option<usize>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl StandIn {
    pub fn start() -> StandIn {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(conn, &st));
            }
        });
        StandIn { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn waivers(&self) -> Vec<Value> {
        self.state.lock().unwrap().waivers.clone()
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }
}

fn basic_user(auth: &Option<String>) -> Option<String> {
    use base64::Engine;
    let b = auth.as_deref()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(text.split_once(':')?.0.to_string())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn handle(mut conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let (mut length, mut auth) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().unwrap_or(0),
            "authorization" => auth = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut st = state.lock().unwrap();
    if st.down {
        return; // closed unanswered
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let q: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let (code, reply) = match (method, path.trim_end_matches('/')) {
        ("POST", "/api/v1.0/waivers") => {
            st.posts += 1;
            st.authorization.push(auth.clone());
            match serde_json::from_slice::<Value>(&body) {
                Ok(w) if w.is_object() => post(&mut st, w, &auth),
                _ => (400, json!({"message": "Failed to decode JSON object"})),
            }
        }
        ("GET", "/api/v1.0/waivers") => {
            let mut list: Vec<Value> = st.waivers.iter().rev().cloned().collect();
            if get("include_obsolete").is_none_or(|v| v == "0" || v == "false") {
                let mut seen = Vec::new();
                list.retain(|w| {
                    let key = (
                        w["subject_type"].clone(),
                        w["subject_identifier"].clone(),
                        w["testcase"].clone(),
                        w["scenario"].clone(),
                    );
                    let new = !seen.contains(&key);
                    seen.push(key);
                    new
                });
            }
            for k in [
                "subject_type",
                "subject_identifier",
                "product_version",
                "testcase",
            ] {
                if let Some(v) = get(k) {
                    list.retain(|w| w[k] == v.as_str());
                }
            }
            let limit: usize = get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(10)
                .min(st.page_cap.unwrap_or(usize::MAX))
                .max(1);
            let page: usize = get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let pages = list.len().div_ceil(limit).max(1);
            let data: Vec<Value> = list
                .into_iter()
                .skip((page - 1) * limit)
                .take(limit)
                .collect();
            let link = |p: usize| {
                json!(format!(
                    "http://{}/api/v1.0/waivers/?page={p}&limit={limit}",
                    "waiverdb.example"
                ))
            };
            (
                200,
                json!({
                    "data": data,
                    "first": link(1),
                    "last": link(pages),
                    "next": if page < pages { link(page + 1) } else { Value::Null },
                    "prev": if page > 1 { link(page - 1) } else { Value::Null },
                }),
            )
        }
        _ => (404, json!({"message": "Not Found"})),
    };
    drop(st);
    let text = reply.to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = conn.flush();
}

fn post(st: &mut State, w: Value, auth: &Option<String>) -> (u16, Value) {
    for k in ["subject_type", "subject_identifier", "testcase"] {
        if !w[k].is_string() {
            return (400, json!({"message": {k: "Missing required parameter"}}));
        }
    }
    if w["product_version"].as_str().is_none_or(str::is_empty) {
        return (
            400,
            json!({"message": {"product_version": "Missing required parameter"}}),
        );
    }
    if w["comment"].as_str().is_none_or(str::is_empty) {
        return (
            400,
            json!({"message": {"comment": "Missing required parameter"}}),
        );
    }
    let Some(user) = basic_user(auth) else {
        return (401, json!({"message": "Unauthorized"}));
    };
    let (username, proxied_by) = match w["username"].as_str() {
        Some(u) if u != user => (u.to_string(), json!(user)),
        _ => (user, Value::Null),
    };
    let id = st.waivers.len() + 1;
    let stored = json!({
        "id": id,
        "subject_type": w["subject_type"],
        "subject_identifier": w["subject_identifier"],
        "subject": {"type": w["subject_type"], "item": w["subject_identifier"]},
        "testcase": w["testcase"],
        "scenario": w["scenario"],
        "waived": w.get("waived").cloned().unwrap_or(json!(true)),
        "product_version": w["product_version"],
        "comment": w["comment"],
        "username": username,
        "proxied_by": proxied_by,
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
    });
    st.waivers.push(stored.clone());
    if st.store_then_fail > 0 {
        st.store_then_fail -= 1;
        return (503, json!({"message": "Service Unavailable"}));
    }
    (201, stored)
}
