//! Redaction, one module and one rule: what fci shows anywhere (a log, a manifest, a
//! message, an error) goes through [`redact`], which hides the user info and the secret query
//! parameters of every URL in it, and every secret fci was given or found, in every form it
//! may be printed in. A secret of 4 characters or more is masked wherever it appears; a
//! shorter one (a kubeconfig's password `Zq9`) only where it stands as a word of its own, so
//! that it does not blank every `Zq9x`.

/// Hides credentials written into a URL (`https://user:token@host/...`), wherever in `s` one
/// appears, so they reach no log, manifest or message. The user info is the one `userinfo`
/// finds (a `/`, `?` or `#` in a password does not end it early).
pub fn redact(s: &str) -> String {
    mask_registered(&redact_urls(s))
}

/// Secrets fci was given (tokens, URL passwords), in every form a program or a server may
/// print them: `redact` masks each wherever it appears. A server may echo the request's
/// headers, a broker or git may quote the password they refused, decoded.
static SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Registers `secret` (a token, or `user:password`): it, its parts, their percent-decoded
/// forms and the HTTP Basic encoding of the pair are masked by `redact` from now on. Parts
/// shorter than 4 characters are not masked (they would mangle every message).
pub fn register_secret(secret: &str) {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut forms: Vec<String> = Vec::new();
    for s in [secret.to_string(), decode(secret)] {
        forms.push(b64(&s));
        if let Some((user, password)) = s.split_once(':') {
            // `user:password` from a URL is sent decoded, part by part.
            let (u, p) = (decode(user), decode(password));
            forms.push(b64(&format!("{u}:{p}")));
            forms.extend([u, p, user.to_string(), password.to_string()]);
        }
        forms.push(s);
    }
    // As a JSON string shows them (a server's answer, a manifest): `"` and `\` escaped.
    let escaped: Vec<String> = forms
        .iter()
        .filter_map(|f| serde_json::to_string(f).ok())
        .map(|q| q[1..q.len() - 1].to_string())
        .collect();
    forms.extend(escaped);
    register_found(forms.into_iter().filter(|f| f.len() >= 4).collect());
}

/// Registers the credentials written into `url` (`scheme://user:password@host`), if any.
pub fn register_url_secret(url: &str) {
    if let Some(u) = userinfo(url) {
        register_secret(u);
    }
}

/// Registers the credentials of every URL among fci's arguments (`--resultsdb-url`,
/// `--amqp-url`, a dist-git or lookaside URL, in any spelling) and of its secret variables,
/// before anything can print them.
pub fn register_secrets_of_invocation() {
    for a in std::env::args() {
        let url = a
            .split_once("=")
            .filter(|_| a.starts_with("--"))
            .map_or(a.as_str(), |(_, v)| v);
        register_url_secret(url);
    }
    // Every variable of fci's (FCI_WATCH_AMQP_URL, FCI_LOOKASIDE, ...): the URLs' credentials.
    for (k, v) in std::env::vars() {
        if k.starts_with("FCI_") {
            register_url_secret(&v);
        }
    }
    if let Ok(t) = std::env::var("FCI_RESULTSDB_TOKEN") {
        register_secret(t.trim());
    }
}

/// Registers secrets as they were found, every form already spelled out (a kubeconfig's
/// tokens and passwords, `crate::stages::conform`): short ones too, masked as words.
pub fn register_found(found: Vec<String>) {
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for f in found {
        if !f.is_empty() && !all.contains(&f) {
            all.push(f);
        }
    }
    // Longest first: a part never leaves the rest of a whole one shown.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The registered secrets, longest first.
pub fn secrets() -> Vec<String> {
    SECRETS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `s` with every registered secret masked, by the module's one rule (its URLs left as
/// they are: a command's stderr, quoted whole).
pub fn mask_registered(s: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = s.to_string();
    for secret in all.iter() {
        if !out.contains(secret.as_str()) {
            continue;
        }
        out = if secret.chars().count() < 4 {
            mask_word(&out, secret)
        } else {
            out.replace(secret.as_str(), "***")
        };
    }
    out
}

/// `text` with `word` replaced by `***` where no letter or digit is next to it.
fn mask_word(text: &str, word: &str) -> String {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(word) {
        let end = i + word.len();
        if i < last || alnum(text[..i].chars().next_back()) || alnum(text[end..].chars().next()) {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str("***");
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

/// `redact` without the registered secrets: credentials written into URLs.
fn redact_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let mut url_end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>')
            .unwrap_or(tail.len());
        // A URL inside this one (`?next=https://u:p@h`) is redacted on its own: this one
        // ends where that one's scheme starts.
        if let Some(j) = tail[..url_end].find("://") {
            let scheme = tail[..j]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                .map_or(0, |k| k + 1);
            url_end = scheme;
        }
        let url = &tail[..url_end];
        let after = match userinfo_end(url) {
            Some(at) => {
                out.push_str("***");
                &url[at..]
            }
            None => url,
        };
        out.push_str(&redact_query(after));
        rest = &tail[url_end..];
    }
    out.push_str(rest);
    out
}

/// Whether a URL query parameter named `key` carries a secret (`token`, `access_token`,
/// `private_token`, `password`, `*_secret`, ...): the one rule for what is redacted from a
/// URL and for what counts as a credential in it (`crate::net`). `key` is compared
/// percent-decoded and case-blind, as a server reads it.
pub fn secret_query_key(key: &str) -> bool {
    const SECRET: [&str; 9] = [
        "token",
        "access_token",
        "private_token",
        "auth",
        "password",
        "passwd",
        "secret",
        "sig",
        "signature",
    ];
    let k = percent_decode(key).to_ascii_lowercase();
    SECRET
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")) || k.ends_with(&format!("-{s}")))
}

/// `%5F` → `_` (and `+` → space), lossily: a query key as a server reads it.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether `url`'s query (before any `#`) has a parameter that carries a secret.
pub fn query_has_secret(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = userinfo_end(rest).map_or(rest, |at| &rest[at + 1..]);
    let Some((_, query)) = rest.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split(['&', ';'])
        .any(|p| secret_query_key(p.split_once('=').map_or(p, |(k, _)| k)))
}

/// `path?access_token=X&a=b` → `path?access_token=***&a=b`.
fn redact_query(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    // Both separators a server may take (`&`, and `;` as older CGI and some proxies do),
    // as `query_has_secret` reads them: each kept as it was.
    let mut out = format!("{path}?");
    for part in query.split_inclusive(['&', ';']) {
        let (p, sep) = match part.strip_suffix(['&', ';']) {
            Some(p) => (p, &part[p.len()..]),
            None => (part, ""),
        };
        match p.split_once('=') {
            Some((k, _)) if secret_query_key(k) => out.push_str(&format!("{k}=***{sep}")),
            _ => out.push_str(part),
        }
    }
    out
}

/// Where the user info ends (the `@` before the host) in what follows `scheme://`, if any.
/// A well-formed URL: the `url` crate says whether it has user info (parsed under a scheme of
/// no special rules, `x://`, so that only the user info decides), which then runs to the last
/// `@` (`https://u:p@ss/w@h`: a password may hold an `@`). A URL no parser reads (a password
/// with an unencoded `/`, `?` or `#`: invalid, yet written) is read by hand, as no parser
/// would: its user info runs to its last `@`, so no part of such a password shows. Left
/// ambiguous, and read as a host with a path: `https://tok/en@h`.
fn userinfo_end(rest: &str) -> Option<usize> {
    let at = rest.rfind('@')?;
    match url::Url::parse(&format!("x://{rest}")) {
        Ok(u) => (!u.username().is_empty() || u.password().is_some()).then_some(at),
        Err(_) => Some(at),
    }
}

/// The user info of `url` (`user:password` of `scheme://user:password@host/...`), found as
/// `userinfo_end` says; the one rule for showing, redacting and scrubbing URLs.
pub fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    userinfo_end(rest).map(|at| &rest[..at])
}

/// `scheme://user:password@host/path?access_token=X` → `scheme://host/path?access_token=***`:
/// how a URL is shown, anywhere (a log, a message, a manifest).
pub fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = userinfo_end(rest).map_or(rest, |at| &rest[at + 1..]);
            format!("{scheme}://{}", redact_query(host))
        }
        None => url.to_string(),
    }
}

/// `text` without the user name and password of `url`, wherever they appear (a library's
/// error may quote the URL in ways a pattern would miss).
pub fn scrub_credentials(text: &str, url: &str) -> String {
    let mut out = redact(text);
    if let Some(userinfo) = userinfo(url) {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        // The user info runs to the last `@` (see `userinfo_end`); when a later `@` was the
        // path's, the password proper ends at its first `@`: scrub that reading too.
        let proper = password.and_then(|p| p.split_once('@')).map(|(p, _)| p);
        for secret in password
            .into_iter()
            .chain(proper)
            .chain([user])
            .filter(|s| s.len() >= 3)
        {
            out = out.replace(secret, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// A secret after `;` is masked as one after `&` is (both separate a query).
    #[test]
    fn a_secret_after_a_semicolon_is_masked() {
        let shown = super::redact("see https://h.example.org/r?x=1;token=S3CRET;y=2 and more");
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(shown.contains("?x=1;token=***;y=2"), "{shown}");
        let amp = super::redact("https://h.example.org/r?x=1&token=S3CRET");
        assert!(amp.ends_with("?x=1&token=***"), "{amp}");
    }

    #[test]
    fn short_secrets_are_masked_as_words() {
        super::register_found(vec!["Zq9".into()]);
        assert_eq!(
            super::redact("password Zq9, Zq9x xZq9 (Zq9)"),
            "password ***, Zq9x xZq9 (***)"
        );
    }

    #[test]
    fn registered_secrets_are_masked_in_every_form_they_are_printed_in() {
        use base64::Engine;
        super::register_secret(r#"fci:Pa"ss\w0rd%21"#);
        let decoded = r#"fci:Pa"ss\w0rd!"#;
        let basic = base64::engine::general_purpose::STANDARD.encode(decoded);
        let json = serde_json::to_string(decoded).unwrap();
        for shown in [
            r#"refused Pa"ss\w0rd%21"#.to_string(),
            r#"refused Pa"ss\w0rd!"#.to_string(),
            format!("Authorization: Basic {basic}"),
            format!("{{\"message\": {json}}}"),
        ] {
            let out = super::redact(&shown);
            assert!(
                !out.contains("ss\\w0rd") && !out.contains("w0rd"),
                "{shown} -> {out}"
            );
            assert!(!out.contains(&basic), "{out}");
        }
    }

    #[test]
    fn credentials_in_urls_are_hidden() {
        use super::redact;
        assert_eq!(
            redact("https://bob:s3cret@git.example.org/rpms/x.git"),
            "https://***@git.example.org/rpms/x.git"
        );
        assert_eq!(
            redact("fetched a from https://t0k@la.example.org/a and ssh://git@h/r"),
            "fetched a from https://***@la.example.org/a and ssh://***@h/r"
        );
        assert_eq!(redact("https://example.org/a@b"), "https://example.org/a@b");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("git clone https://h/x.git?access_token=QSECRET&ref=main done"),
            "git clone https://h/x.git?access_token=***&ref=main done"
        );
        assert_eq!(redact("https://h/a?page=2"), "https://h/a?page=2");
    }

    #[test]
    fn credentials_are_stripped_even_with_a_slash_in_the_password() {
        use super::{scrub_credentials, strip_credentials};
        assert_eq!(
            strip_credentials("https://admin:S3CRET/PW@host:6443/k8s"),
            "https://host:6443/k8s"
        );
        assert_eq!(
            strip_credentials("amqp://u:p@h:5672/%2f?x=1"),
            "amqp://h:5672/%2f?x=1"
        );
        assert_eq!(
            strip_credentials("https://h/p?next=a@b"),
            "https://h/p?next=a@b"
        );
        assert_eq!(strip_credentials("https://h:1/x"), "https://h:1/x");
        assert_eq!(
            strip_credentials("https://admin:pa55?w0rd@h:6443"),
            "https://h:6443"
        );
        assert_eq!(strip_credentials("no url"), "no url");
        let said = scrub_credentials(
            "cannot parse https://admin:S3CRET/PW@host: S3CRET/PW",
            "https://admin:S3CRET/PW@host",
        );
        assert!(!said.contains("S3CRET"), "{said}");
    }

    #[test]
    fn a_password_is_scrubbed_whichever_at_ends_it() {
        let url = "amqp://user:s3cretpw@127.0.0.1:9/vh@x";
        let out = super::scrub_credentials("refused for s3cretpw at 127.0.0.1", url);
        assert!(!out.contains("s3cretpw"), "{out}");
        assert!(!super::strip_credentials(url).contains("s3cretpw"));
    }

    #[test]
    fn one_rule_finds_the_user_info() {
        use super::{redact, scrub_credentials, strip_credentials, userinfo};
        // (url, its user info, as shown)
        for (url, info, shown) in [
            ("https://u:p@h/x", Some("u:p"), "https://h/x"),
            ("https://u:pa/ss@h/x", Some("u:pa/ss"), "https://h/x"),
            ("https://h:443/api/a@b", None, "https://h:443/api/a@b"),
            (
                "amqp://guest:S3cr/etPw@127.0.0.1:5672/%2f",
                Some("guest:S3cr/etPw"),
                "amqp://127.0.0.1:5672/%2f",
            ),
            ("https://h/?token=x", None, "https://h/?token=***"),
            ("ssh://git@host/x", Some("git"), "ssh://host/x"),
            ("https://u:p@ss/w@h/x", Some("u:p@ss/w"), "https://h/x"),
            ("https://u:pa#ss@h", Some("u:pa#ss"), "https://h"),
            ("https://[::1]:6443/a@b", None, "https://[::1]:6443/a@b"),
            (
                "https://u:p@[::1]:6443/",
                Some("u:p"),
                "https://[::1]:6443/",
            ),
            (
                "https://registry.example.org/@scope/pkg",
                None,
                "https://registry.example.org/@scope/pkg",
            ),
        ] {
            assert_eq!(userinfo(url), info, "{url}");
            assert_eq!(strip_credentials(url), shown, "{url}");
            let r = redact(&format!("see {url} now"));
            if let Some(i) = info {
                assert_eq!(
                    r,
                    format!("see {} now", shown.replacen("://", "://***@", 1)),
                    "{url}"
                );
                assert!(!r.contains(i), "{r}");
            } else {
                assert_eq!(r, format!("see {shown} now"));
            }
            // The scrubber never blanks a plain host.
            let said = scrub_credentials(&format!("cannot reach {url}: refused by h"), url);
            assert!(said.ends_with("refused by h"), "{url}: {said}");
        }
        // A URL inside another's query is redacted on its own.
        assert_eq!(
            redact("https://h/login?next=https://u:S3CRET@x/y"),
            "https://h/login?next=https://***@x/y"
        );
    }
}
