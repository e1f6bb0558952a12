//! Where a credential may go: never in clear (`http://`, `amqp://`) to a host that is not
//! this machine. One rule for every service fci talks to with a secret (ResultsDB, the AMQP
//! brokers, a lookaside cache, the Kubernetes API server). And how text becomes one segment of
//! a URL's path ([`url_segment`]).

/// How what is sent to a URL travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS or SSH (`https://`, `amqps://`, `ssh://`).
    Encrypted,
    /// In clear, to this machine (127.0.0.0/8, ::1, `localhost`).
    Loopback,
    /// In clear, over a network: anyone on the way can read it.
    Clear,
}

/// How `url` is reached; a URL that does not parse, or has no host, counts as clear.
pub fn transport(url: &str) -> Transport {
    let Ok(u) = reqwest::Url::parse(url) else {
        return Transport::Clear;
    };
    if matches!(u.scheme(), "https" | "amqps" | "ssh" | "git+ssh") {
        return Transport::Encrypted;
    }
    if loopback_host(u.host_str().unwrap_or_default()) {
        Transport::Loopback
    } else {
        Transport::Clear
    }
}

/// Whether `host` (as in a URL, IPv6 in brackets or not) is this machine: a literal loopback
/// address, or `localhost` itself. A name below it (`api.localhost`) is not: only the
/// resolver says where it goes, and a resolver may send it anywhere.
pub fn loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(a) => a.is_loopback(),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
        }
    }
}

/// Whether `url`'s host is this machine.
pub fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| loopback_host(u.host_str().unwrap_or_default()))
}

/// Whether `url` carries a user name or password itself.
pub fn has_userinfo(url: &str) -> bool {
    crate::redact::userinfo(url).is_some_and(|u| !u.is_empty())
}

/// Whether `url` carries a credential itself: a user name or password, or a query parameter
/// that `crate::redact::redact` hides (`?access_token=`, `?private_token=`, `?password=`...).
pub fn has_credentials(url: &str) -> bool {
    has_userinfo(url) || crate::redact::query_has_secret(url)
}

/// `Err`, one line, when a credential (`credential`: whether one goes with the requests,
/// besides any in the URL itself) would be sent to `url` in clear over a network. `what`
/// names the setting (`--resultsdb-url`).
pub fn refuse_clear_credentials(what: &str, url: &str, credential: bool) -> Result<(), String> {
    if !(credential || has_credentials(url)) || transport(url) != Transport::Clear {
        return Ok(());
    }
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    let secure = match scheme {
        "amqp" => "amqps://",
        _ => "https://",
    };
    Err(format!(
        "{what} {} is plain {scheme}:// to a host that is not this machine, and fci does not \
         send a token or password where anyone on the way can read it: use {secure}",
        crate::redact::strip_credentials(url)
    ))
}

/// A client for `url`, for every service fci sends a credential to over HTTP: a loopback URL
/// never goes through a proxy (the environment's `HTTP_PROXY` would carry what is meant for
/// this machine, a token with it, across a network); with `credential`, no redirect is
/// followed (reqwest keeps `Authorization` across a same-host, same-port redirect, even from
/// https to plain http); without, a redirect from https to plain http is refused (the URL's
/// own user info would follow it). A credential never goes through a plain-http proxy to
/// another host either: it only travels in clear to loopback (`refuse_clear_credentials`),
/// and loopback is never proxied; an https URL goes through a proxy as a TLS tunnel.
pub fn client_for(url: &str, credential: bool) -> reqwest::blocking::ClientBuilder {
    let mut b = reqwest::blocking::Client::builder().redirect(if credential {
        reqwest::redirect::Policy::none()
    } else {
        no_downgrade()
    });
    if transport(url) == Transport::Loopback {
        b = b.no_proxy();
    }
    b
}

/// Follows up to 10 redirects, never one from https to anything but https.
fn no_downgrade() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|a| {
        if a.previous().len() >= 10 {
            a.error("too many redirects")
        } else if a.previous().iter().any(|u| u.scheme() == "https") && a.url().scheme() != "https"
        {
            a.error("a redirect from https to plain http is not followed")
        } else {
            a.follow()
        }
    })
}

/// `s` as one segment of a URL's path: every byte but RFC 3986's unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub fn url_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for s in [
            "http://127.0.0.1:6443",
            "http://127.8.0.1",
            "http://[::1]:6443",
            "http://localhost:6443",
            "amqp://u:p@LOCALHOST./",
        ] {
            assert!(loopback(s), "{s}");
            assert_eq!(transport(s), Transport::Loopback, "{s}");
        }
        for s in [
            "http://10.0.0.1:6443",
            "http://api.example.org",
            "http://localhost.example.org",
            // Only the resolver says where a name below localhost goes.
            "http://api.localhost",
            "http://a.b.localhost.",
            "http://[::2]",
            "nonsense",
        ] {
            assert!(!loopback(s), "{s}");
            assert_eq!(transport(s), Transport::Clear, "{s}");
        }
        assert_eq!(transport("https://192.0.2.1"), Transport::Encrypted);
        assert_eq!(transport("amqps://u:p@192.0.2.1"), Transport::Encrypted);
        assert_eq!(transport("ssh://git@192.0.2.1/r"), Transport::Encrypted);
        assert_eq!(transport("git://192.0.2.1/r"), Transport::Clear);
    }

    #[test]
    fn credentials_never_go_in_clear_over_a_network() {
        let e = refuse_clear_credentials("--resultsdb-url", "http://192.0.2.1/", true).unwrap_err();
        assert!(
            e.contains("plain http://") && e.contains("192.0.2.1"),
            "{e}"
        );
        let e = refuse_clear_credentials("--amqp-url", "amqp://fci:S3CRET@192.0.2.1/%2f", false)
            .unwrap_err();
        assert!(e.contains("amqps://") && !e.contains("S3CRET"), "{e}");
        assert!(refuse_clear_credentials("x", "http://192.0.2.1/", false).is_ok());
        assert!(refuse_clear_credentials("x", "amqp://192.0.2.1/", false).is_ok());
        assert!(refuse_clear_credentials("x", "https://192.0.2.1/", true).is_ok());
        assert!(refuse_clear_credentials("x", "amqps://u:p@192.0.2.1/", false).is_ok());
        assert!(refuse_clear_credentials("x", "http://127.0.0.1:5001/", true).is_ok());
        assert!(refuse_clear_credentials("x", "amqp://u:p@[::1]/", false).is_ok());
        // A secret in the query is a credential, and is never shown.
        for url in [
            "http://192.0.2.1/?access_token=S3CRET",
            "http://192.0.2.1/x?a=b&private_token=S3CRET",
            "http://192.0.2.1/?PASSWORD=S3CRET",
            "http://192.0.2.1/?token=S3CRET",
            "http://192.0.2.1/?access%5Ftoken=S3CRET",
            "amqp://192.0.2.1/%2f?auth=S3CRET",
        ] {
            let e = refuse_clear_credentials("--x", url, false).unwrap_err();
            assert!(!e.contains("S3CRET") && e.contains("***"), "{url}: {e}");
        }
        assert!(refuse_clear_credentials("x", "http://192.0.2.1/?a=b", false).is_ok());
        assert!(refuse_clear_credentials("x", "http://127.0.0.1/?token=S", false).is_ok());
    }
}
