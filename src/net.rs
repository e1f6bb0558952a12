//! Where a credential may go: never in clear (`http://`, `amqp://`) to a host that is not
//! this machine. One rule for every service fci talks to with a secret (ResultsDB, the AMQP
//! brokers, a lookaside cache, the Kubernetes API server).

/// How what is sent to a URL travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS or SSH (`https://`, `amqps://`, `ssh://`).
    Encrypted,
    /// In clear, to this machine (127.0.0.0/8, ::1, `localhost` and names below it).
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

/// Whether `host` (as in a URL, IPv6 in brackets or not) is this machine.
pub fn loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(a) => a.is_loopback(),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// Whether `url`'s host is this machine.
pub fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| loopback_host(u.host_str().unwrap_or_default()))
}

/// Whether `url` carries a user name or password itself.
pub fn has_userinfo(url: &str) -> bool {
    crate::exec::userinfo(url).is_some_and(|u| !u.is_empty())
}

/// `Err`, one line, when a credential (`credential`: whether one goes with the requests,
/// besides any in the URL itself) would be sent to `url` in clear over a network. `what`
/// names the setting (`--resultsdb-url`).
pub fn refuse_clear_credentials(what: &str, url: &str, credential: bool) -> Result<(), String> {
    if !(credential || has_userinfo(url)) || transport(url) != Transport::Clear {
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
        crate::exec::strip_credentials(url)
    ))
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
            "http://api.localhost",
            "amqp://u:p@LOCALHOST./",
        ] {
            assert!(loopback(s), "{s}");
            assert_eq!(transport(s), Transport::Loopback, "{s}");
        }
        for s in [
            "http://10.0.0.1:6443",
            "http://api.example.org",
            "http://localhost.example.org",
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
    }
}
