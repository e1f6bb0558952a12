//! `{name}` placeholders in the argument vectors of `--installer`, `--runner-cmd` and
//! `--teardown`: each is replaced inside its own argument, so a value with spaces stays one
//! argument and nothing is ever read by a shell. Only `{lowercase_name}` is a placeholder;
//! other braces (JSON, shell-like text a program takes as data) pass through.

use crate::error::FciError;
use std::collections::BTreeMap;

/// The values for one run: `None` for a placeholder the run cannot fill (no image).
pub type Values = BTreeMap<&'static str, Option<String>>;

/// `args` with every placeholder replaced; `flag` and `allowed` name the option in errors.
pub fn expand(
    flag: &str,
    args: &[String],
    values: &Values,
    allowed: &[&str],
) -> Result<Vec<String>, FciError> {
    args.iter()
        .map(|a| expand_one(flag, a, values, allowed))
        .collect()
}

fn expand_one(
    flag: &str,
    arg: &str,
    values: &Values,
    allowed: &[&str],
) -> Result<String, FciError> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            out.push('{');
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        if !allowed.contains(&name) {
            return Err(FciError::Usage(format!(
                "{flag}: unknown placeholder {{{name}}} in `{arg}` (known: {})",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match values.get(name).cloned().flatten() {
            Some(v) => out.push_str(&v),
            None => {
                let why = match name {
                    "image" => "the manifest has no `image` artifact (run `fci image` first)",
                    "ref" => "the compose recorded no ref",
                    _ => "it has no value in this run",
                };
                return Err(FciError::Usage(format!(
                    "{flag}: `{arg}` uses {{{name}}}, but {why}"
                )));
            }
        }
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::new();
        v.insert("compose", Some("abc".into()));
        v.insert("workdir", Some("/w d".into()));
        v.insert("image", None);
        v
    }

    #[test]
    fn replaces_inside_one_argument() {
        let args = vec![
            "--tree={compose}".to_string(),
            "{workdir}/kube config".into(),
            "{\"json\": 1}".into(),
            "{}".into(),
        ];
        let got = expand(
            "--installer",
            &args,
            &values(),
            &["compose", "workdir", "image"],
        );
        assert_eq!(
            got.unwrap(),
            vec!["--tree=abc", "/w d/kube config", "{\"json\": 1}", "{}"]
        );
    }

    #[test]
    fn unknown_or_unfilled_placeholders_are_usage_errors() {
        let allowed = ["compose", "workdir", "image"];
        let e = expand("--installer", &["{nope}".into()], &values(), &allowed).unwrap_err();
        assert!(e.to_string().contains("unknown placeholder {nope}"), "{e}");
        let e = expand("--installer", &["{image}".into()], &values(), &allowed).unwrap_err();
        assert!(e.to_string().contains("no `image` artifact"), "{e}");
    }
}
