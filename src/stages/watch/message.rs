//! Dist-git push messages as the fedora-messaging git hook sends them (schema
//! `fedora_messaging_git_hook.commit.v1`, topic `git.receive`): body `{"agent": ...,
//! "commit": {repo, namespace, branch, rev, username, name, email, summary, ...}}`. Accepted
//! as the bare body, or wrapped as fedora-messaging serializes a message (`topic`, `headers`,
//! `id`, `body`), which is what a job triggered by the bus passes on.

use crate::bus::consume::Envelope;
use crate::config::Config;
use serde_json::Value;

/// A message's size at most, from a file, stdin or the broker: a git.receive message is a few
/// KiB (its `patch` field can carry a diff); anything larger is refused, never kept.
pub const MAX_BYTES: u64 = 1 << 20;

/// A push the watch acts on.
#[derive(Debug, Clone)]
pub struct Push {
    pub package: String,
    pub branch: String,
    pub rev: String,
    pub username: Option<String>,
    pub agent: Option<String>,
    pub id: Option<String>,
    pub topic: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Parsed {
    Push(Push),
    /// Not for this pipeline (another topic, namespace, package or branch): why.
    Ignored(String),
}

/// Reads one message; `Err` is a malformed message (bad input), with what is wrong.
pub fn parse(bytes: &[u8], env: &Envelope, cfg: &Config) -> Result<Parsed, String> {
    let routing_key = env.routing_key.as_deref();
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a JSON message: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let (topic, id, body) = match obj.get("body") {
        Some(body) if obj.contains_key("topic") => (
            obj["topic"].as_str().map(str::to_string),
            obj.get("id").and_then(Value::as_str).map(str::to_string),
            body,
        ),
        _ => (routing_key.map(str::to_string), None, &v),
    };
    let id = id.or_else(|| env.message_id.clone());
    if let Some(t) = &topic {
        if t != "git.receive" && !t.ends_with(".git.receive") {
            return Ok(Parsed::Ignored(format!("topic `{t}` is not git.receive")));
        }
    }
    let commit = body
        .get("commit")
        .and_then(Value::as_object)
        .ok_or("no `commit` object: not a git.receive message")?;
    let field = |k: &str| -> Result<String, String> {
        commit
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("commit.{k} is missing or not a string"))
    };
    let package = field("repo")?;
    let branch = field("branch")?;
    // Git prints ids in lower case; a hook or a hand-written message may not.
    let rev = field("rev")?.to_ascii_lowercase();
    if !crate::config::is_package_name(&package) {
        return Err(format!("commit.repo `{package}` is not a package name"));
    }
    if !super::git::is_commit_id(&rev) {
        return Err(format!("commit.rev `{rev}` is not a full commit id"));
    }
    let namespace = commit.get("namespace").and_then(Value::as_str);
    if namespace != Some(cfg.namespace.as_str()) {
        return Ok(Parsed::Ignored(format!(
            "{package}: namespace {} is not {}",
            namespace.unwrap_or("(none)"),
            cfg.namespace
        )));
    }
    if !cfg.monitors(&package) {
        return Ok(Parsed::Ignored(format!(
            "{package} is not a monitored package"
        )));
    }
    if !cfg.follows(&branch) {
        return Ok(Parsed::Ignored(format!(
            "{package}: branch `{branch}` is not followed"
        )));
    }
    Ok(Parsed::Push(Push {
        package,
        branch,
        rev,
        username: commit
            .get("username")
            .and_then(Value::as_str)
            .map(str::to_string),
        agent: body
            .get("agent")
            .and_then(Value::as_str)
            .map(str::to_string),
        id,
        topic,
    }))
}
