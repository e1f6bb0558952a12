//! A package's `gating.yaml`, read as Greenwave reads a remote policy file: a YAML stream of
//! documents, each one a policy whatever its top-level tag, with `!PassingTestCaseRule` rules.
//! The first problem anywhere invalidates the whole file, with Greenwave's message for it (the
//! decision reports it as one `invalid-gating-yaml` requirement).

use serde_yaml_ng::Value;

/// Files larger than this are refused before parsing (a policy file is a few KiB).
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub test_case_name: String,
    pub scenario: Option<String>,
    pub valid_since: Option<String>,
    pub valid_until: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub id: Option<String>,
    pub product_versions: Vec<String>,
    pub decision_contexts: Vec<String>,
    pub subject_types: Vec<String>,
    pub rules: Vec<Rule>,
    pub packages: Vec<String>,
    pub excluded_packages: Vec<String>,
}

impl Policy {
    /// Greenwave's label for a policy in messages: `Policy 'ID'` or `Policy 'untitled'`.
    fn label(id: Option<&str>) -> String {
        format!("Policy '{}'", id.unwrap_or("untitled"))
    }
}

/// Parses a gating.yaml; `Err` holds the `details` Greenwave gives for an invalid file.
pub fn parse(text: &str) -> Result<Vec<Policy>, String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "YAML Parser Error: the file is larger than {MAX_BYTES} bytes"
        ));
    }
    if flow_depth(text) > MAX_DEPTH {
        return Err(format!(
            "YAML Parser Error: collections nested deeper than {MAX_DEPTH} levels"
        ));
    }
    let mut policies = Vec::new();
    // Only comments and blank lines: no documents at all (an explicit `---` is one).
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(policies);
    }
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = match serde::Deserialize::deserialize(doc) {
            Ok(v) => v,
            Err(e) => return Err(yaml_error(&e)),
        };
        // An explicit empty document is null: not a mapping.
        policies.push(policy(value)?);
    }
    Ok(policies)
}

/// Deeper nesting than any policy file needs; the YAML parser slows down sharply with it.
const MAX_DEPTH: usize = 64;

/// The deepest nesting of flow collections (`[`, `{`) outside quoted strings and comments.
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for line in text.lines() {
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    max = max.max(depth);
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

fn yaml_error(e: &serde_yaml_ng::Error) -> String {
    let msg = e.to_string();
    if let Some(tag) = msg
        .split("unknown variant `")
        .nth(1)
        .and_then(|r| r.split('`').next())
    {
        return format!("could not determine a constructor for the tag '!{tag}'");
    }
    format!("YAML Parser Error: {msg}")
}

fn untag(v: Value) -> (Option<String>, Value) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            (Some(tag.trim_start_matches('!').to_string()), t.value)
        }
        v => (None, v),
    }
}

fn policy(doc: Value) -> Result<Policy, String> {
    let (_tag, doc) = untag(doc);
    let Value::Mapping(map) = doc else {
        return Err("Expected mapping for !Policy tagged object".into());
    };
    let get = |k: &str| map.get(Value::String(k.into())).cloned();
    let id = match get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(scalar_text(&other)),
    };
    let label = Policy::label(id.as_deref());
    let attr = |name: &str, msg: String| format!("{label}: Attribute '{name}': {msg}");
    let str_list = |name: &str, default: Vec<String>| -> Result<Vec<String>, String> {
        match get(name) {
            None => Ok(default),
            Some(Value::Sequence(items)) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(attr(name, "Expected list of str objects".into())),
                })
                .collect(),
            Some(_) => Err(attr(
                name,
                "expected a sequence node, but found scalar".into(),
            )),
        }
    };
    let one_or_list = |single: &str, plural: &str| -> Result<Option<Vec<String>>, String> {
        match (get(single), get(plural)) {
            (Some(_), Some(_)) => Err(format!(
                "{label}: Both properties \"{plural}\" and \"{single}\" were set"
            )),
            (Some(Value::String(s)), None) => Ok(Some(vec![s])),
            (Some(_), None) => Err(attr(single, "Expected a string".into())),
            (None, Some(_)) => str_list(plural, Vec::new()).map(Some),
            (None, None) => Ok(None),
        }
    };
    let product_versions = str_list("product_versions", vec!["*".into()])?;
    let subject_types =
        one_or_list("subject_type", "subject_types")?.unwrap_or_else(|| vec!["koji_build".into()]);
    let packages = str_list("packages", Vec::new())?;
    // `blacklist` is the older name some files still use.
    let mut excluded_packages = str_list("excluded_packages", Vec::new())?;
    excluded_packages.extend(str_list("blacklist", Vec::new())?);
    let rules = match get("rules") {
        None => return Err(format!("{label}: Attribute 'rules' is required")),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|r| rule(r).map_err(|m| attr("rules", m)))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(attr(
                "rules",
                "expected a sequence node, but found scalar".into(),
            ))
        }
    };
    let decision_contexts = match one_or_list("decision_context", "decision_contexts")? {
        Some(c) if !c.is_empty() => c,
        _ => return Err(format!("{label}: No decision contexts provided")),
    };
    Ok(Policy {
        id,
        product_versions,
        decision_contexts,
        subject_types,
        rules,
        packages,
        excluded_packages,
    })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn rule(v: Value) -> Result<Rule, String> {
    let (tag, body) = untag(v);
    let tag = match tag {
        None => return Err("Expected list of Rule objects".into()),
        Some(t) => t,
    };
    match tag.as_str() {
        "PassingTestCaseRule" => {}
        "RemoteRule" => return Err("RemoteRule is not allowed in remote policies".into()),
        "PackageSpecificBuild" | "FedoraAtomicCi" => {
            return Err(format!(
                "!{tag} is obsolete. Please use the \"packages\" allowlist instead."
            ))
        }
        other => {
            return Err(format!(
                "could not determine a constructor for the tag '!{other}'"
            ))
        }
    }
    let Value::Mapping(map) = body else {
        return Err("YAML object !PassingTestCaseRule: expected a mapping".into());
    };
    let field = |k: &str| -> Result<Option<String>, String> {
        match map.get(Value::String(k.into())) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(scalar_text(other))),
            Some(_) => Err(format!(
                "YAML object !PassingTestCaseRule: Attribute '{k}': Expected a string"
            )),
        }
    };
    let test_case_name = field("test_case_name")?.ok_or_else(|| {
        "YAML object !PassingTestCaseRule: Attribute 'test_case_name' is required".to_string()
    })?;
    Ok(Rule {
        test_case_name,
        scenario: field("scenario")?,
        valid_since: field("valid_since")?,
        valid_until: field("valid_until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedora_shapes_parse() {
        let text = "--- !Policy\n\
            product_versions:\n  - fedora-*\n\
            decision_contexts: [bodhi_update_push_testing, bodhi_update_push_stable]\n\
            subject_type: koji_build\n\
            rules:\n  - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build./plans/gating.functional}\n\
            --- !Policy\n\
            id: old\n\
            decision_context: bodhi_update_push_stable\n\
            rules:\n  - !PassingTestCaseRule {test_case_name: dist.rpmdeplint, scenario: x86_64}\n\
            ---\n\
            decision_context: untagged\n\
            rules: []\n";
        let p = parse(text).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].decision_contexts.len(), 2);
        assert_eq!(p[0].subject_types, vec!["koji_build"]);
        assert_eq!(p[1].product_versions, vec!["*"]);
        assert_eq!(p[1].rules[0].scenario.as_deref(), Some("x86_64"));
        assert!(p[2].rules.is_empty());
    }

    #[test]
    fn invalid_files_say_what_greenwave_says() {
        let cases = [
            (
                "--- !Policy\ndecision_context: a\nrules:\n  - !Nonsense {test_case_name: x}\n",
                "could not determine a constructor for the tag '!Nonsense'",
            ),
            (
                "--- !Policy\ndecision_context: a\ndecision_contexts: [b]\nrules: []\n",
                "Policy 'untitled': Both properties \"decision_contexts\" and \"decision_context\" were set",
            ),
            ("--- !Policy\nid: p\ndecision_context: a\n", "Policy 'p': Attribute 'rules' is required"),
            ("--- !Policy\nrules: []\n", "Policy 'untitled': No decision contexts provided"),
            (
                "--- !Policy\ndecision_context: a\nrules:\n  - !RemoteRule {}\n",
                "RemoteRule is not allowed in remote policies",
            ),
            (
                "--- !Policy\ndecision_context: a\nrules:\n  - !PackageSpecificBuild {test_case_name: x}\n",
                "!PackageSpecificBuild is obsolete",
            ),
            (
                "--- !Policy\ndecision_context: a\nrules:\n  - {test_case_name: x}\n",
                "Expected list of Rule objects",
            ),
            ("---\n---\n", "Expected mapping for !Policy tagged object"),
            (
                "--- !Policy\ndecision_context: a\nproduct_versions: [1, 2]\nrules: []\n",
                "Expected list of str objects",
            ),
            ("key: [unclosed\n", "YAML Parser Error"),
        ];
        for (text, says) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(parse("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_is_refused_fast() {
        let deep = format!("x: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
        let started = std::time::Instant::now();
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                c = (b'a' + i) as char,
                p = (b'a' + i - 1) as char
            ));
        }
        bomb.push_str("decision_context: x\nrules: []\n");
        let started = std::time::Instant::now();
        let r = parse(&bomb);
        assert!(r.is_err(), "a billion laughs parsed");
        assert!(started.elapsed().as_secs() < 5);
    }
}
