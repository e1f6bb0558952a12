//! tmt plans, run with `tmt` against the sandboxed subject (local provisioning inside it).

use super::runner::{read_output, Case, Env};
use crate::exec::{Cmd, Log};
use crate::manifest::Outcome;
use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A tree is tmt-enabled when it has fmf metadata (`.fmf/version`).
pub fn discover(tree: &Path) -> bool {
    tree.join(".fmf/version").is_file()
}

#[derive(Deserialize)]
struct Row {
    name: String,
    result: String,
    #[serde(default)]
    log: Vec<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    note: serde_yaml_ng::Value,
}

fn outcome(result: &str) -> Outcome {
    match result {
        "pass" => Outcome::Passed,
        "info" => Outcome::Info,
        "fail" => Outcome::Failed,
        "warn" => Outcome::NeedsInspection,
        "skip" => Outcome::Skipped,
        _ => Outcome::Error,
    }
}

fn seconds(hms: &str) -> Option<f64> {
    let parts: Vec<f64> = hms
        .split(':')
        .map(|p| p.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    Some(parts.iter().fold(0.0, |acc, p| acc * 60.0 + p))
}

/// Escapes a test name for tmt's `--name` regular expression.
fn exact(name: &str) -> String {
    let mut s = String::from("^");
    for c in name.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('$');
    s
}

/// Runs every plan once; `only` limits the tests by name (empty: all).
pub fn run(env: &Env, only: &[String], dir: &Path, log: &mut Log) -> Result<Vec<Case>> {
    let (src, home) = env.attempt_dirs(dir)?;
    let id = dir.join("tmt-run");
    // prepare is skipped: it would install `require:` packages from the network onto the host.
    let mut cmd = Cmd::new("tmt")
        .arg("--root")
        .arg(&src)
        .arg("--feeling-safe")
        .args(["run", "--scratch", "--id"])
        .arg(&id)
        .args(["--all", "--skip", "prepare", "provision", "--how", "local"]);
    for n in only {
        cmd = cmd.args(["test", "--name"]).arg(exact(n));
    }
    let extra = vec![
        (
            "TMT_WORKDIR_ROOT".to_string(),
            dir.join("tmt-workdirs").into(),
        ),
        ("NO_COLOR".into(), "1".into()),
        ("TMT_NO_COLOR".into(), "1".into()),
    ];
    let ended = env.run(log, dir, &home, &src, extra, cmd)?;
    let mut cases = Vec::new();
    for results in find_results(&id)? {
        let execute = results.parent().unwrap().to_path_buf();
        let plan = execute
            .parent()
            .and_then(|p| p.strip_prefix(&id).ok())
            .map(|p| format!("/{}", p.display()));
        let rows: Vec<Row> = match read_output(&results) {
            Ok(text) => match serde_yaml_ng::from_str(&text.unwrap_or_default()) {
                Ok(rows) => rows,
                Err(e) => {
                    cases.push(Case::run_error(
                        "tmt",
                        "tmt",
                        format!("invalid results.yaml: {e}"),
                        None,
                    ));
                    continue;
                }
            },
            Err(why) => {
                cases.push(Case::run_error("tmt", "tmt", why, None));
                continue;
            }
        };
        for r in rows {
            let note = match &r.note {
                serde_yaml_ng::Value::Sequence(v) if !v.is_empty() => Some(
                    v.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                serde_yaml_ng::Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            };
            cases.push(Case {
                runner: "tmt",
                name: r.name.clone(),
                plan: plan.clone(),
                outcome: outcome(&r.result),
                log: r.log.first().map(|l| execute.join(l)),
                duration_s: r.duration.as_deref().and_then(seconds),
                note,
                whole_run: false,
            });
        }
    }
    if !only.is_empty() {
        cases.retain(|c| only.contains(&c.name));
    }
    if ended.timed_out {
        cases.push(Case::run_error("tmt", "tmt", Case::timeout_note(env), None));
        return Ok(cases);
    }
    if cases.is_empty() {
        let note = format!(
            "tmt exited {} and reported no test results",
            ended.code.map_or("-".into(), |c| c.to_string())
        );
        return Ok(vec![Case::run_error("tmt", "tmt", note, None)]);
    }
    Ok(cases)
}

fn find_results(id: &Path) -> Result<Vec<PathBuf>> {
    if !id.is_dir() {
        return Ok(Vec::new());
    }
    Ok(crate::digest::list_files(id, &[])?
        .into_iter()
        .filter(|f| f.ends_with("execute/results.yaml"))
        .map(|f| id.join(f))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_and_names() {
        assert_eq!(super::seconds("00:01:02"), Some(62.0));
        assert_eq!(super::exact("/tests/a.b"), "^/tests/a\\.b$");
    }
}
