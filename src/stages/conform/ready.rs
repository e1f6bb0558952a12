//! Waiting for the API server: `GET {server}/readyz` with the kubeconfig's trust and
//! credentials until it answers 200 with the body `ok`. Not answering, 5xx, failed checks
//! (`[-]etcd failed`), another 200 body and a redirect (never followed) mean "not yet";
//! 401/403 mean the credentials were refused, which waiting will not mend.

use super::cancel;
use super::kubeconfig::{Auth, Cluster};
use crate::exec::Log;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_secs(2);

pub enum Ready {
    Yes { waited_s: f64 },
    TimedOut { last: String },
    Refused { status: u16 },
    Interrupted,
}

/// A client for `cluster`; `Err` says why the kubeconfig's TLS material is unusable.
pub fn client(cluster: &Cluster) -> Result<reqwest::blocking::Client, String> {
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        // A redirect is an answer, not readiness: the credentials must not follow it elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    if let Some(pem) = &cluster.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or("the certificate authority is not a PEM certificate")?;
        // As kubectl does: the cluster's CA alone vouches for its server.
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if cluster.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    // As kubectl: the cluster's `proxy-url` if it has one; else the environment's proxy
    // (HTTPS_PROXY, NO_PROXY), but never for a loopback or localhost server (Go's rule).
    match &cluster.proxy_url {
        Some(p) => {
            let proxy = reqwest::Proxy::all(p.as_str()).map_err(|_| {
                "the cluster's proxy-url is not a usable proxy URL (not shown)".to_string()
            })?;
            b = b.no_proxy().proxy(proxy);
        }
        None if crate::net::loopback(&cluster.server) => b = b.no_proxy(),
        None => {}
    }
    if let Auth::Cert(pem) = &cluster.auth {
        let id = reqwest::Identity::from_pem(pem)
            .map_err(|_| "the client certificate or key is not usable PEM")?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| format!("cannot make an HTTPS client: {e}"))
}

/// Polls until ready, refused, interrupted or `timeout`; every answer goes to the log.
pub fn wait(
    cluster: &Cluster,
    client: &reqwest::blocking::Client,
    timeout: Duration,
    log: &mut Log,
) -> Ready {
    let url = format!("{}/readyz", cluster.server);
    let shown = format!("{}/readyz", cluster.display_server());
    let start = Instant::now();
    log.line(&format!(
        "# waiting for {shown} (up to {}s)",
        timeout.as_secs()
    ));
    loop {
        if cancel::requested().is_some() {
            return Ready::Interrupted;
        }
        // A hanging request must not carry the wait past its timeout.
        let left = timeout.saturating_sub(start.elapsed());
        let mut req = client.get(&url).timeout(
            Duration::from_secs(10)
                .min(left)
                .max(Duration::from_secs(1)),
        );
        match &cluster.auth {
            Auth::Token(t) => req = req.bearer_auth(t),
            Auth::Basic { user, password } => req = req.basic_auth(user, Some(password)),
            Auth::None | Auth::Cert(_) => {}
        }
        let answer = match req.send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
                if status == 401 || status == 403 {
                    log.line(&format!("# {shown}: HTTP {status}"));
                    return Ready::Refused { status };
                }
                // Read up to the cap (`ok`, or a list of checks): an endless answer is not
                // the API server, and is not read past it.
                let body = match crate::caps::http_body(resp, crate::caps::READYZ_ANSWER, &url) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(why) => {
                        let answer = format!("HTTP {status}: {}", crate::redact::redact(&why));
                        log.line(&format!("# {shown}: {answer}"));
                        if start.elapsed() >= timeout {
                            return Ready::TimedOut { last: answer };
                        }
                        if pause(start, timeout) {
                            return Ready::Interrupted;
                        }
                        continue;
                    }
                };
                // The API server's readyz answers exactly `ok`; any other 200 (a proxy's
                // login page, a load balancer's default site) is not the API server ready.
                if status == 200 && body.trim() == "ok" {
                    log.line(&format!("# {shown}: 200 ok"));
                    return Ready::Yes {
                        waited_s: crate::stage::round3(start.elapsed().as_secs_f64()),
                    };
                }
                if (300..400).contains(&status) {
                    let to = location.as_deref().map_or_else(
                        || "no Location".to_string(),
                        |l| crate::redact::redact(&crate::redact::strip_credentials(l)),
                    );
                    format!("HTTP {status}: a redirect to {to} (not followed)")
                } else if status == 200 {
                    format!(
                        "HTTP 200 but the body is not `ok`: {}",
                        first_line(&body).chars().take(200).collect::<String>()
                    )
                } else {
                    format!("HTTP {status}: {}", failed_checks(&body))
                }
            }
            Err(e) => crate::redact::scrub_credentials(&reason(&e), &cluster.server),
        };
        log.line(&format!("# {shown}: {answer}"));
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ready::TimedOut { last: answer };
        }
        if pause(start, timeout) {
            return Ready::Interrupted;
        }
    }
}

/// Waits for the next poll; true when interrupted. Small steps: a signal must not wait out
/// the poll interval.
fn pause(start: Instant, timeout: Duration) -> bool {
    let until = Instant::now() + POLL.min(timeout.saturating_sub(start.elapsed()));
    while Instant::now() < until {
        if cancel::requested().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// What readyz says failed (`[-]etcd failed: reason withheld`), else its first line.
fn failed_checks(body: &str) -> String {
    let failed: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[-]"))
        .collect();
    let text = if failed.is_empty() {
        first_line(body).to_string()
    } else {
        failed.join("; ")
    };
    text.chars().take(300).collect()
}

fn first_line(body: &str) -> &str {
    body.trim().lines().next().unwrap_or("(empty body)")
}

/// The innermost cause of a request error ("Connection refused"), not the URL reqwest
/// wraps around it.
fn reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let inner = cause.to_string();
    if e.is_timeout() {
        format!("no answer in time ({inner})")
    } else if e.is_connect() {
        format!("cannot connect: {inner}")
    } else {
        inner
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failed_checks_are_what_is_shown() {
        let body = "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n";
        assert_eq!(
            super::failed_checks(body),
            "[-]etcd failed: reason withheld"
        );
        assert_eq!(super::failed_checks("overloaded\n"), "overloaded");
    }
}
