//! `fci report --html FILE`: the run on one self-contained page (no script, no external
//! resource): the subject, each stage with its outcome, duration, notes, test cases and log,
//! and the gating decision. The page is `page.html`, rendered by minijinja with HTML
//! auto-escaping: everything from the manifest (package output) and the servers is escaped by
//! the engine, and a control character in it is shown as `?`.

use crate::manifest::Manifest;
use minijinja::value::{Serde, Value};
use minijinja::{context, AutoEscape, Environment};

/// The page for `m`, with the report's decision if it made one.
/// `verdict`: the report's own outcome and notes, which the gating line shows (a promotion
/// refused after a satisfied decision is FAILED, and says why).
pub fn page(
    m: &Manifest,
    decision: Option<&serde_json::Value>,
    verdict: Option<(crate::manifest::Outcome, &[String])>,
) -> String {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| {
        // Text only ever reaches the page through here: no escape sequence or other control
        // character of a log gets onto it, whatever a browser would make of it.
        let shown = match value.as_str() {
            Some(s) if !value.is_safe() && *state.auto_escape() == AutoEscape::Html => Value::from(
                s.chars()
                    .map(|c| match c {
                        '\n' | '\t' => c,
                        c if c.is_control() => '?',
                        c => c,
                    })
                    .collect::<String>(),
            ),
            _ => value.clone(),
        };
        minijinja::escape_formatter(out, state, &shown)
    });
    let subject = m
        .subject_nvr()
        .or_else(|| m.subject.package.clone())
        .unwrap_or_else(|| "(no subject)".into());
    let stages: Vec<_> = m.stages.iter().filter(|s| s.name != "report").collect();
    let ctx = context! {
        subject,
        run => m.run.id.as_str(),
        branch => m.subject.branch.as_deref(),
        commit => m.subject.commit.as_deref(),
        stages => Serde(stages),
        decision => decision.map(Serde),
        verdict => verdict.map(|(o, notes)| context! { outcome => o.to_string(), notes => Serde(notes) }),
    };
    env.template_from_named_str("page.html", include_str!("page.html"))
        .and_then(|t| t.render(ctx))
        // The template is fixed and its values plain data: a failure here is a bug in it.
        .expect("the report page's template renders")
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use serde_json::json;

    /// Hostile strings everywhere a manifest or a server puts text on the page: none of them
    /// becomes markup.
    #[test]
    fn package_output_is_escaped() {
        let evil = "<script>alert('x')</script>&\u{1b}[31m\"<img src=x onerror=alert(1)>";
        let m: Manifest = serde_json::from_value(json!({
            "schema": "fci.manifest/v1",
            "run": {"id": evil, "created": "2026-12-01T00:00:00Z", "fci_version": "0"},
            "subject": {"package": evil, "branch": evil, "commit": evil},
            "stages": [{
                "name": evil, "outcome": "FAILED", "started": "", "finished": "",
                "duration_s": 2.0, "input_digest": "", "log": evil, "notes": [evil],
                "results": [{"testcase": evil, "outcome": "FAILED", "note": evil}],
            }],
        }))
        .unwrap();
        let d = json!({
            "policies_satisfied": false, "summary": evil,
            "unsatisfied_requirements": [{"testcase": evil, "type": evil, "scenario": evil}],
        });
        let page = super::page(&m, Some(&d), None);
        assert!(
            !page.contains("<script") && !page.contains("<img"),
            "{page}"
        );
        assert!(!page.contains('\u{1b}'), "{page}");
        let shown = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&amp;?[31m&quot;";
        // subject (title and heading), run, branch, commit, stage, log, note, case, case note,
        // gating summary, requirement's case, type and scenario.
        assert_eq!(page.matches(shown).count(), 14, "{page}");
        assert!(page.contains("<td>2.0s</td>"), "{page}");
        assert!(page.contains("<details open><summary>1 test cases, 1 notes</summary>"));
        assert!(
            page.contains("<span class=\"badge fail\">FAILED</span>"),
            "{page}"
        );
    }
}
