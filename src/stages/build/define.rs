//! `--define`: the macro definitions a build passes to rpm.

/// A macro definition as `NAME=VALUE`, or as rpm's `--define` takes it: `NAME BODY` or a
/// parametric `NAME(OPTS) BODY`. The name keeps its `(OPTS)`, since that is how rpm reads it.
pub fn parse_define(s: &str) -> Result<(String, String), String> {
    let name_end = s
        .find(|c: char| c == '=' || c == '(' || c.is_whitespace())
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(name_end);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid macro name `{name}`: expected NAME=VALUE, NAME BODY or NAME(OPTS) BODY"
        ));
    }
    if let Some(v) = rest.strip_prefix('=') {
        return Ok((name.to_string(), v.to_string()));
    }
    let (opts, body) = match rest.strip_prefix('(') {
        Some(r) => {
            let close = r
                .find(')')
                .ok_or_else(|| format!("macro `{name}`: `(` without `)`"))?;
            (format!("({})", &r[..close]), &r[close + 1..])
        }
        None => (String::new(), rest),
    };
    if !body.starts_with(char::is_whitespace) {
        return Err(format!("macro `{name}{opts}` has no body"));
    }
    Ok((format!("{name}{opts}"), body.trim_start().to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_define;

    #[test]
    fn defines_take_rpms_forms() {
        assert_eq!(
            parse_define("dist=.fc41").unwrap(),
            ("dist".into(), ".fc41".into())
        );
        assert_eq!(
            parse_define("with_x 1").unwrap(),
            ("with_x".into(), "1".into())
        );
        assert_eq!(
            parse_define("greet(n:) hello %{-n*}").unwrap(),
            ("greet(n:)".into(), "hello %{-n*}".into())
        );
        assert!(parse_define("bad-name=1").is_err());
        assert!(parse_define("greet(n: x").is_err());
        assert!(parse_define("nobody").is_err());
    }
}
