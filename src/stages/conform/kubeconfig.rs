//! The parts of a kubeconfig `fci conform` needs to ask the API server whether it is ready:
//! the chosen context's server, how to trust it and who we are. Paths inside the file are
//! relative to its directory, as kubectl reads them. Every problem is one line naming the
//! file; no message carries a credential.

use base64::Engine;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One cluster as a client sees it.
pub struct Cluster {
    pub context: String,
    /// The server URL as written (it may hold credentials: show `display_server`).
    pub server: String,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    /// The cluster's `proxy-url` (kubectl's: it wins over the environment's proxy).
    pub proxy_url: Option<String>,
    /// https with the server's certificate checked (not `insecure-skip-tls-verify`, not http).
    pub tls_verified: bool,
    pub auth: Auth,
}

/// How the client proves who it is.
pub enum Auth {
    None,
    Token(String),
    Basic {
        user: String,
        password: String,
    },
    /// Certificate and key, PEM, concatenated as reqwest's `Identity::from_pem` wants them.
    Cert(Vec<u8>),
}

impl Auth {
    /// The kind, for the record: never the secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Token(_) => "token",
            Auth::Basic { .. } => "basic",
            Auth::Cert(_) => "client-certificate",
        }
    }
}

// A hand-written Debug: a derived one would print the token into any `{:?}`.
impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.display_server())
            .field("auth", &self.auth.kind())
            .finish()
    }
}

impl Cluster {
    pub fn display_server(&self) -> String {
        crate::redact::strip_credentials(&self.server)
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: Option<RawContext>,
}

#[derive(Deserialize)]
struct RawContext {
    cluster: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Option<RawCluster>,
}

#[derive(Deserialize)]
struct RawCluster {
    server: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
    #[serde(rename = "proxy-url")]
    proxy_url: Option<String>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawUser {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(rename = "client-certificate")]
    cert: Option<String>,
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key")]
    key: Option<String>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml_ng::Value>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde_yaml_ng::Value>,
}

/// Reads `file` and resolves `context` (default: its `current-context`). `Err` is the
/// problem, to be reported against the file.
pub fn load(file: &Path, context: Option<&str>) -> Result<Cluster, String> {
    let text = crate::caps::read_file(file, crate::caps::KUBECONFIG_FILE)
        .map_err(|e| format!("cannot read kubeconfig: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| "the kubeconfig is not UTF-8".to_string())?;
    parse(&text, file.parent().unwrap_or(Path::new(".")), context)
}

fn parse(text: &str, dir: &Path, context: Option<&str>) -> Result<Cluster, String> {
    if text.trim().is_empty() {
        return Err("empty kubeconfig".into());
    }
    let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| {
        format!(
            "not a kubeconfig (YAML with clusters, contexts, users): {}",
            unquoted(&e.to_string())
        )
    })?;
    let name = match context {
        Some(c) => c.to_string(),
        None => raw
            .current_context
            .filter(|c| !c.is_empty())
            .ok_or("no current-context (set one, or give --context)")?,
    };
    let ctx = raw
        .contexts
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no context named `{name}`"))?
        .context
        .ok_or_else(|| format!("context `{name}` is empty"))?;
    let cluster_name = ctx
        .cluster
        .ok_or_else(|| format!("context `{name}` names no cluster"))?;
    let cluster = raw
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == cluster_name)
        .ok_or_else(|| format!("context `{name}` names unknown cluster `{cluster_name}`"))?
        .cluster
        .ok_or_else(|| format!("cluster `{cluster_name}` is empty"))?;
    let server = cluster
        .server
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("cluster `{cluster_name}` has no server"))?;
    let url = check_server(&server).map_err(|why| format!("cluster `{cluster_name}`: {why}"))?;
    let ca_pem = match (&cluster.ca_data, &cluster.ca) {
        (Some(d), _) => Some(decode(d).map_err(|e| {
            format!("cluster `{cluster_name}`: certificate-authority-data is not base64: {e}")
        })?),
        (None, Some(p)) => Some(read_rel(dir, p, "certificate-authority")?),
        (None, None) => None,
    };
    let auth = match ctx.user {
        None => Auth::None,
        Some(u) => {
            let user = raw
                .users
                .unwrap_or_default()
                .into_iter()
                .find(|x| x.name == u)
                .ok_or_else(|| format!("context `{name}` names unknown user `{u}`"))?;
            match user.user {
                None => Auth::None,
                Some(raw) => auth(raw, &u, dir)?,
            }
        }
    };
    if cluster.insecure && ca_pem.is_some() {
        // kubectl's own refusal, word for word.
        return Err(format!(
            "cluster `{cluster_name}`: specifying a root certificates file with the insecure flag is not allowed"
        ));
    }
    let plain = url.scheme() == "http";
    let in_url = !url.username().is_empty() || url.password().is_some();
    if plain && (in_url || matches!(auth, Auth::Token(_) | Auth::Basic { .. })) {
        return Err(format!(
            "cluster `{cluster_name}`: server `{}` is plain http://, and fci does not send a \
             token or password where anyone on the way can read it",
            crate::redact::strip_credentials(&server)
        ));
    }
    Ok(Cluster {
        context: name,
        server: server.trim_end_matches('/').to_string(),
        ca_pem,
        insecure: cluster.insecure,
        proxy_url: cluster.proxy_url.filter(|p| !p.is_empty()),
        tls_verified: !plain && !cluster.insecure,
        auth,
    })
}

/// A YAML error without the values it quotes (`invalid type: string "TOKEN"`): the file
/// holds credentials, and the message goes to stderr and the manifest.
fn unquoted(msg: &str) -> String {
    let mut out = String::new();
    for (i, part) in msg.split('"').enumerate() {
        out.push_str(if i % 2 == 1 { "…" } else { part });
    }
    out
}

/// The server as a parsed URL (a malformed one is bad input now, not a readiness timeout
/// later). Messages never quote a server string that does not parse (any part after `://`
/// may be a password: `https://admin:pa55?w0rd@h`); of one that parses, only its scheme,
/// host and port.
fn check_server(server: &str) -> Result<reqwest::Url, String> {
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        let scheme = server
            .split_once("://")
            .map(|(s, _)| s)
            .filter(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            })
            .map(|s| format!(" (its scheme is `{s}`)"))
            .unwrap_or_default();
        return Err(format!(
            "the server URL is not an https:// or http:// URL{scheme}"
        ));
    }
    if server.contains(char::is_whitespace) {
        return Err("the server URL holds white space (not shown)".into());
    }
    let url = reqwest::Url::parse(server)
        .map_err(|e| format!("the server URL is not a valid URL (not shown): {e}"))?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err("the server URL has no host".into());
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "server `{}://{host}{}` has a query or a fragment (not shown), which an API server \
             URL does not have",
            url.scheme(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ));
    }
    Ok(url)
}

fn auth(u: RawUser, name: &str, dir: &Path) -> Result<Auth, String> {
    if u.exec.is_some() || u.auth_provider.is_some() {
        return Err(format!(
            "user `{name}` gets its credentials from an exec or auth-provider plugin, which fci \
             does not run: give a token, a client certificate or a username and password"
        ));
    }
    let cert =
        match (u.cert_data, u.cert) {
            (Some(d), _) => Some(decode(&d).map_err(|e| {
                format!("user `{name}`: client-certificate-data is not base64: {e}")
            })?),
            (None, Some(p)) => Some(read_rel(dir, &p, "client-certificate")?),
            (None, None) => None,
        };
    let key = match (u.key_data, u.key) {
        (Some(d), _) => Some(
            decode(&d).map_err(|e| format!("user `{name}`: client-key-data is not base64: {e}"))?,
        ),
        (None, Some(p)) => Some(read_rel(dir, &p, "client-key")?),
        (None, None) => None,
    };
    match (cert, key) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            return Ok(Auth::Cert(c));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "user `{name}`: a client certificate needs its key, and a key its certificate"
            ))
        }
        (None, None) => {}
    }
    if let Some(t) = u.token.filter(|t| !t.is_empty()) {
        return Ok(Auth::Token(t));
    }
    if let Some(p) = u.token_file {
        let t = String::from_utf8(read_rel(dir, &p, "tokenFile")?)
            .map_err(|_| format!("user `{name}`: tokenFile is not text"))?;
        return Ok(Auth::Token(t.trim().to_string()));
    }
    if let (Some(user), Some(password)) = (u.username, u.password) {
        return Ok(Auth::Basic { user, password });
    }
    Ok(Auth::None)
}

/// Every secret a kubeconfig holds or names, found leniently (any user, any cluster; a file
/// that is not a usable kubeconfig still has its secrets): tokens, tokenFile contents,
/// passwords, client keys (inline, base64 and decoded, or from their files; the whole key,
/// each line of it and each piece of base64 a YAML block wraps it in) and the user info of
/// every server string, parsed or not. Each token, password and URL credential also in the
/// forms a command may print it in: base64 (alone, and `user:password` as Basic auth sends
/// it), URL-encoded and XML-escaped. For scrubbing what is recorded; short ones (under 4
/// characters) are masked only as whole words (see `crate::redact`).
pub fn secrets(file: &Path) -> Vec<String> {
    let Some(text) = kube_read(file).and_then(|t| String::from_utf8(t).ok()) else {
        return Vec::new();
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let Ok(v) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else {
        return Vec::new();
    };
    // Base64 text (a key, as given or decoded): whole, and each long-enough piece of it.
    let pieces = |t: &str, out: &mut Vec<String>| {
        out.push(t.trim().to_string());
        out.extend(
            t.split_whitespace()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(String::from),
        );
    };
    let mut keys: Vec<String> = Vec::new();
    let mut plain: Vec<String> = Vec::new();
    let s = |v: &serde_yaml_ng::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    for u in v
        .get("users")
        .and_then(|u| u.as_sequence())
        .into_iter()
        .flatten()
    {
        let Some(u) = u.get("user") else { continue };
        plain.extend(s(u, "token"));
        if let Some(p) = s(u, "password") {
            if let Some(user) = s(u, "username") {
                plain.push(b64(&format!("{user}:{p}")));
            }
            plain.push(p);
        }
        if let Some(f) = s(u, "tokenFile") {
            if let Some(t) = kube_read(&dir.join(f)) {
                plain.push(String::from_utf8_lossy(&t).trim().to_string());
            }
        }
        if let Some(d) = s(u, "client-key-data") {
            pieces(&d, &mut keys);
            if let Ok(k) = decode(&d) {
                pieces(&String::from_utf8_lossy(&k), &mut keys);
            }
        }
        if let Some(f) = s(u, "client-key") {
            if let Some(k) = kube_read(&dir.join(f)) {
                pieces(&String::from_utf8_lossy(&k), &mut keys);
            }
        }
    }
    for c in v
        .get("clusters")
        .and_then(|c| c.as_sequence())
        .into_iter()
        .flatten()
    {
        let cluster = c.get("cluster");
        // Whether it parses or not: `https://admin:pa55?w0rd@h` does not, and still leaks.
        for url in ["server", "proxy-url"]
            .into_iter()
            .filter_map(|k| cluster.and_then(|c| s(c, k)))
        {
            let Some(info) = crate::redact::userinfo(&url) else {
                continue;
            };
            plain.push(info.to_string());
            plain.push(b64(info));
            match info.split_once(':') {
                Some((user, password)) => {
                    plain.push(password.to_string());
                    // A user name is no secret unless long enough to be unlikely a word.
                    if user.len() >= 4 {
                        plain.push(user.to_string());
                    }
                    for p in [user, password] {
                        if let Ok(d) = percent_decode(p) {
                            plain.push(d);
                        }
                    }
                }
                // A token as the user name.
                None => plain.push(info.to_string()),
            }
        }
    }
    let mut out = keys;
    for p in plain.into_iter().filter(|p| !p.is_empty()) {
        out.push(b64(&p));
        out.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(p.as_bytes()));
        out.push(crate::net::url_segment(&p));
        out.push(xml_escape(&p));
        out.push(p);
    }
    out.retain(|x| !x.trim().is_empty());
    out.sort_by_key(|x| std::cmp::Reverse(x.len()));
    out.dedup();
    out
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// `%XX` decoded, when there is one and the result is UTF-8.
fn percent_decode(s: &str) -> Result<String, ()> {
    if !s.contains('%') {
        return Err(());
    }
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn decode(data: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let clean: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

fn read_rel(dir: &Path, p: &str, field: &str) -> Result<Vec<u8>, String> {
    let path: PathBuf = dir.join(p);
    crate::caps::read_file(&path, crate::caps::KUBECONFIG_FILE)
        .map_err(|e| format!("{field} {}: {e}", path.display()))
}

/// A kubeconfig or a file it names, bounded (see `caps::read_file`); None when unreadable.
fn kube_read(path: &Path) -> Option<Vec<u8>> {
    crate::caps::read_file(path, crate::caps::KUBECONFIG_FILE).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"
apiVersion: v1
kind: Config
current-context: admin@kind
clusters:
- name: kind
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
contexts:
- name: admin@kind
  context: {cluster: kind, user: admin}
- name: lost
  context: {cluster: nowhere, user: admin}
- name: plugin
  context: {cluster: kind, user: oidc}
users:
- name: admin
  user: {token: s3cr3t-t0ken}
- name: oidc
  user:
    exec: {command: kubelogin, apiVersion: client.authentication.k8s.io/v1}
"#;

    #[test]
    fn reads_the_current_context() {
        let c = parse(KC, Path::new("/"), None).unwrap();
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(
            c.ca_pem.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----\n"[..])
        );
        assert!(matches!(&c.auth, Auth::Token(t) if t == "s3cr3t-t0ken"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn problems_are_named_without_secrets() {
        let e = parse(KC, Path::new("/"), Some("lost")).unwrap_err();
        assert!(e.contains("unknown cluster `nowhere`"), "{e}");
        let e = parse(KC, Path::new("/"), Some("nope")).unwrap_err();
        assert!(e.contains("no context named `nope`"), "{e}");
        let e = parse(KC, Path::new("/"), Some("plugin")).unwrap_err();
        assert!(e.contains("exec"), "{e}");
        let e = parse("just text", Path::new("/"), None).unwrap_err();
        assert!(e.contains("not a kubeconfig"), "{e}");
        let ftp = KC.replace("https://127.0.0.1:6443/", "ftp://u:pw@h");
        let e = parse(&ftp, Path::new("/"), None).unwrap_err();
        assert!(e.contains("not an https://") && !e.contains("pw"), "{e}");
        for (bad, needle) in [
            ("https://127.0.0.1:64a3", "invalid port"),
            ("https://admin:S3CRET/PW@127.0.0.1", "not a valid URL"),
            (
                "https://127.0.0.1:6443/?token=QUERYSECRET",
                "a query or a fragment",
            ),
            (
                "https://127.0.0.1:6443/#QUERYSECRET",
                "a query or a fragment",
            ),
            ("https://admin:S3CRET?w0rd@127.0.0.1", "not a valid URL"),
            ("https://admin:S3CRET#w0rd@127.0.0.1", "not a valid URL"),
        ] {
            let e = parse(
                &KC.replace("https://127.0.0.1:6443/", bad),
                Path::new("/"),
                None,
            )
            .unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(!e.contains("S3CRET") && !e.contains("QUERYSECRET"), "{e}");
        }
        let both = KC.replace(
            "    certificate-authority-data:",
            "    insecure-skip-tls-verify: true\n    certificate-authority-data:",
        );
        let e = parse(&both, Path::new("/"), None).unwrap_err();
        assert!(e.contains("with the insecure flag is not allowed"), "{e}");
        let http = KC.replace("https://127.0.0.1:6443/", "http://127.0.0.1:8080");
        let e = parse(&http, Path::new("/"), None).unwrap_err();
        assert!(e.contains("plain http://"), "{e}");
        let none = KC.replace("current-context: admin@kind", "");
        assert!(parse(&none, Path::new("/"), None)
            .unwrap_err()
            .contains("no current-context"));
    }

    #[test]
    fn secrets_in_every_form_they_are_printed_in() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkeyLINEoneXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\nAwEHoUQDQgAEsecondLINEYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY\n-----END EC PRIVATE KEY-----\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        // Wrapped at 64 columns in a YAML block, as some tools write it.
        let wrapped: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let f = dir.path().join("config");
        std::fs::write(
            &f,
            format!(
                "clusters:\n- name: a\n  cluster: {{server: 'https://admin:pa55?w0rd@h:6443'}}\n- name: b\n  cluster: {{server: 'https://h:443/api/a@b'}}\nusers:\n- name: k\n  user:\n    client-key-data: |\n      {}\n- name: t\n  user: {{token: tok/en+A=}}\n- name: p\n  user: {{username: bob, password: Zq9}}\n",
                wrapped.join("\n      ")
            ),
        )
        .unwrap();
        let s = secrets(&f);
        let has = |x: &str| s.iter().any(|y| y == x);
        for piece in &wrapped[..wrapped.len() - 1] {
            assert!(has(piece), "{piece} not in {s:?}");
        }
        assert!(has(
            "MHcCAQEEIBkeyLINEoneXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
        ));
        assert!(has("pa55?w0rd") && has("admin:pa55?w0rd"), "{s:?}");
        assert!(has("tok/en+A=") && has("tok%2Fen%2BA%3D"), "{s:?}");
        let t64 = base64::engine::general_purpose::STANDARD.encode("tok/en+A=");
        assert!(has(&t64), "{s:?}");
        assert!(has("Zq9"), "{s:?}");
        let basic = base64::engine::general_purpose::STANDARD.encode("bob:Zq9");
        assert!(has(&basic), "{s:?}");
        // A host with an @ in its path holds no secret, and is never one.
        assert!(!has("h") && !has("h:443/api/a") && !has("b"), "{s:?}");
    }
}
