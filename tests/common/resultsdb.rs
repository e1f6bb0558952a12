//! A ResultsDB v2.0 stand-in for the tests: the real API's JSON over HTTP on loopback
//! (`GET /api/v2.0/` answers 300 with the outcomes, `GET /api/v2.0/results` filters on data
//! keys, `POST /api/v2.0/results` validates and answers 201 with every data value as a list),
//! and the faults a real one has (5xx, going away mid-run).

use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct State {
    pub results: Vec<Value>,
    pub outcomes: Vec<String>,
    /// Answer the next N POSTs with 503.
    pub fail_posts: usize,
    /// Store the next N POSTs, then answer them with 503 anyway (a proxy timing out).
    pub store_then_fail: usize,
    /// Stop listening after this many more POSTs are stored.
    pub die_after: Option<usize>,
    pub authorization: Vec<Option<String>>,
    /// fci_result_id → index in `results`, for the lookups fci makes before each post.
    pub by_fci_id: std::collections::HashMap<String, usize>,
    /// Set once the server "went away": later connections are closed unanswered.
    pub dead: bool,
    /// Refuse every POST with 400 (e.g. an outcome it does not know).
    pub reject_posts: bool,
    /// Answer everything with 200 and an HTML page (a misconfigured proxy).
    pub garbage: bool,
    /// Wait this long before answering.
    pub delay: Option<std::time::Duration>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(outcomes: &[&str]) -> StandIn {
        let state = Arc::new(Mutex::new(State {
            outcomes: outcomes.iter().map(|s| s.to_string()).collect(),
            ..State::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = Some(serve(listener, state.clone()));
        StandIn {
            addr,
            state,
            handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves again on the same address (after it died), with the same results.
    pub fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            // The accept loop notices it died at its next connection.
            let _ = TcpStream::connect(self.addr);
            let _ = h.join();
        }
        let listener = TcpListener::bind(self.addr).unwrap();
        self.handle = Some(serve(listener, self.state.clone()));
    }

    pub fn results(&self) -> Vec<Value> {
        self.state.lock().unwrap().results.clone()
    }
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>) -> std::thread::JoinHandle<()> {
    state.lock().unwrap().dead = false;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if state.lock().unwrap().dead {
                return; // the listener closes: the server went away
            }
            let state = state.clone();
            // One thread per connection, as a real server answers requests concurrently.
            std::thread::spawn(move || {
                if handle(conn, &state) {
                    state.lock().unwrap().dead = true;
                }
            });
        }
    })
}

/// Serves one request; true when the server should stop afterwards.
fn handle(mut conn: TcpStream, state: &Mutex<State>) -> bool {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return false;
    }
    let mut length = 0usize;
    let mut auth = None;
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
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let delay = state.lock().unwrap().delay;
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let mut st = state.lock().unwrap();
    let mut stop = false;
    if st.garbage {
        let text = "<html><body>Bad Gateway, but 200</body></html>";
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        return false;
    }
    let (code, reply) = match (method, path.trim_end_matches('/')) {
        ("GET", "/api/v2.0") => (300, json!({"outcomes": st.outcomes})),
        ("GET", "/api/v2.0/results") if query.contains("fci_result_id=") => {
            let id = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("fci_result_id="))
                .unwrap_or("");
            let data: Vec<Value> = st
                .by_fci_id
                .get(id)
                .map(|i| st.results[*i].clone())
                .into_iter()
                .collect();
            (200, json!({"data": data, "prev": null, "next": null}))
        }
        ("GET", "/api/v2.0/results") => {
            let filters: Vec<(String, String)> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| !matches!(*k, "limit" | "page" | "_sort"))
                .map(|(k, v)| {
                    let decode = |s: &str| {
                        percent_encoding::percent_decode_str(&s.replace('+', " "))
                            .decode_utf8_lossy()
                            .into_owned()
                    };
                    (decode(k), decode(v))
                })
                .collect();
            let data: Vec<Value> = st
                .results
                .iter()
                .filter(|r| {
                    // `key=v1,v2`: any of the values, as ResultsDB reads it.
                    filters.iter().all(|(k, v)| {
                        r["data"][k]
                            .as_array()
                            .is_some_and(|a| v.split(',').any(|one| a.iter().any(|x| x == one)))
                    })
                })
                .cloned()
                .collect();
            (200, json!({"data": data, "prev": null, "next": null}))
        }
        ("POST", "/api/v2.0/results") => {
            st.authorization.push(auth);
            if st.reject_posts {
                (400, json!({"message": "Bad request"}))
            } else if st.fail_posts > 0 {
                st.fail_posts -= 1;
                (503, json!({"message": "Service Unavailable"}))
            } else {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(r) => {
                        let answer = post(&mut st, r, &mut stop);
                        if answer.0 == 201 && st.store_then_fail > 0 {
                            st.store_then_fail -= 1;
                            (503, json!({"message": "Gateway Timeout"}))
                        } else {
                            answer
                        }
                    }
                    Err(_) => (400, json!({"message": "Bad request: not JSON"})),
                }
            }
        }
        _ => (404, json!({"message": "Not found"})),
    };
    drop(st);
    let text = reply.to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = conn.flush();
    stop
}

fn post(st: &mut State, r: Value, stop: &mut bool) -> (u16, Value) {
    let outcome = r["outcome"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    if !st.outcomes.contains(&outcome) {
        return (
            400,
            json!({"validation_error": [{"outcome": format!("must be one of {:?}", st.outcomes)}]}),
        );
    }
    let name = match &r["testcase"] {
        Value::String(s) => s.clone(),
        t => match t["name"].as_str() {
            Some(n) => n.to_string(),
            None => return (400, json!({"message": "testcase required"})),
        },
    };
    let mut data = Map::new();
    if let Some(d) = r["data"].as_object() {
        for (k, v) in d {
            let list = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| json!(x.as_str().map(String::from).unwrap_or(x.to_string())))
                    .collect(),
                Value::String(s) => vec![json!(s)],
                other => vec![json!(other.to_string())],
            };
            data.insert(k.clone(), Value::Array(list));
        }
    }
    let id = st.results.len() + 1;
    let stored = json!({
        "id": id, "outcome": outcome, "note": r["note"], "ref_url": r["ref_url"],
        "testcase": {"name": name, "ref_url": null, "href": format!("/api/v2.0/testcases/{name}")},
        "groups": [], "submit_time": r["submit_time"], "data": data,
        "href": format!("/api/v2.0/results/{id}"),
    });
    if let Some(fid) = stored["data"]["fci_result_id"][0].as_str() {
        st.by_fci_id.insert(fid.to_string(), st.results.len());
    }
    st.results.push(stored.clone());
    if let Some(n) = st.die_after.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            st.die_after = None;
            *stop = true;
        }
    }
    (201, stored)
}
