//! `fci report --html FILE`: the run on one self-contained page (no script, no external
//! resource): the subject, each stage with its outcome, duration, notes, test cases and log,
//! and the gating decision. Everything from the manifest is escaped: it holds package output.

use crate::manifest::{Manifest, Outcome, StageRecord};
use serde_json::Value;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn badge(o: Outcome) -> String {
    let class = match o {
        Outcome::Passed | Outcome::Info => "pass",
        Outcome::Failed | Outcome::NeedsInspection => "fail",
        Outcome::Error => "error",
        Outcome::Skipped => "skip",
    };
    format!("<span class=\"badge {class}\">{o}</span>")
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1em 0}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{background:#f6f6f6}.badge{display:inline-block;padding:.05em .55em;border-radius:.8em;font-size:.85em;font-weight:600}
.pass{background:#dff3e1;color:#1d6b2a}.fail{background:#fbe0e0;color:#9b1c1c}.error{background:#fff0d0;color:#8a5300}.skip{background:#eee;color:#555}
code,pre{font:13px ui-monospace,monospace}pre{white-space:pre-wrap;background:#fafafa;padding:.5em;border-radius:4px;margin:.3em 0}
details{margin:.2em 0}summary{cursor:pointer}";

fn stage_row(s: &StageRecord) -> String {
    let mut cases = String::new();
    for r in &s.results {
        cases.push_str(&format!(
            "<li>{} <code>{}</code>{}</li>",
            badge(r.outcome),
            esc(&r.testcase),
            r.note
                .as_deref()
                .map(|n| format!(" — {}", esc(n)))
                .unwrap_or_default()
        ));
    }
    let notes: String = s
        .notes
        .iter()
        .map(|n| format!("<pre>{}</pre>", esc(n)))
        .collect();
    let detail = if cases.is_empty() && notes.is_empty() {
        String::new()
    } else {
        format!(
            "<details{}><summary>{} test cases, {} notes</summary>{}<ul>{cases}</ul></details>",
            if s.outcome.is_pass() { "" } else { " open" },
            s.results.len(),
            s.notes.len(),
            notes
        )
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{:.1}s</td><td>{detail}</td><td><code>{}</code></td></tr>",
        esc(&s.name),
        badge(s.outcome),
        s.duration_s,
        esc(s.log.as_deref().unwrap_or(""))
    )
}

fn decision(d: &Value) -> String {
    let satisfied = d["policies_satisfied"] == Value::Bool(true);
    let mut items = String::new();
    for r in d["unsatisfied_requirements"]
        .as_array()
        .into_iter()
        .flatten()
    {
        items.push_str(&format!(
            "<li><code>{}</code> — {}{}</li>",
            esc(r["testcase"].as_str().unwrap_or("")),
            esc(r["type"].as_str().unwrap_or("")),
            r["scenario"]
                .as_str()
                .map(|s| format!(" (scenario {})", esc(s)))
                .unwrap_or_default()
        ));
    }
    format!(
        "<h2>Gating</h2><p>{} {}</p>{}",
        badge(if satisfied {
            Outcome::Passed
        } else {
            Outcome::Failed
        }),
        esc(d["summary"].as_str().unwrap_or("")),
        if items.is_empty() {
            String::new()
        } else {
            format!("<ul>{items}</ul>")
        }
    )
}

/// The page for `m`, with the report's decision if it made one.
pub fn page(m: &Manifest, decision_json: Option<&Value>) -> String {
    let subject = m
        .subject_nvr()
        .or_else(|| m.subject.package.clone())
        .unwrap_or_else(|| "(no subject)".into());
    let rows: String = m
        .stages
        .iter()
        .filter(|s| s.name != "report")
        .map(stage_row)
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fci: {t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"sub\">run <code>{run}</code>\
         {branch}{commit}</p><table><tr><th>stage</th><th>outcome</th><th>time</th>\
         <th>details</th><th>log (in the workspace)</th></tr>{rows}</table>{gating}</body></html>\n",
        t = esc(&subject),
        run = esc(&m.run.id),
        branch = m
            .subject
            .branch
            .as_deref()
            .map(|b| format!(" · branch <code>{}</code>", esc(b)))
            .unwrap_or_default(),
        commit = m
            .subject
            .commit
            .as_deref()
            .map(|c| format!(" · dist-git <code>{}</code>", esc(c)))
            .unwrap_or_default(),
        gating = decision_json.map(decision).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn package_output_is_escaped() {
        assert_eq!(
            super::esc("<script>alert('x')</script>&\u{1b}[31m"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;?[31m"
        );
    }
}
