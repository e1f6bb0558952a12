//! tmt plans, run with `tmt` against the sandboxed subject (local provisioning inside it).

use super::runner::{read_output, Case, Cases, Env};
use super::select::Filter;
use super::suite::{RunCtx, Suite};
use crate::exec::{Cmd, Log};
use crate::manifest::Outcome;
use crate::tool::Tool;
use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// fci's tmt plugin for `fci integrate`, loaded through TMT_PLUGINS: it wraps each test
/// framework's command in a chroot into the sandbox's guest root, so that tmt (Python, on the
/// host's view) runs every test command with the composed tree as its root. tmt has no
/// provisioning that would do it: `local` runs on the host, `connect` needs an SSH server the
/// tree does not have, `container` and `virtual` need podman or libvirt.
pub const GUEST_PLUGIN: (&str, &str) = ("fci_guest.py", include_str!("tmt_plugins/fci_guest.py"));

/// A tree is tmt-enabled when it has fmf metadata (`.fmf/version`).
pub fn discover(tree: &Path) -> bool {
    tree.join(".fmf/version").is_file()
}

/// The tree's fmf metadata (`*.fmf`, each a YAML document) parses: one that does not is the
/// package's mistake (`FciError::Package`, its path and line in the tree), found before tmt
/// runs, not tmt's error. What fmf and tmt make of valid YAML is theirs to say.
pub fn check_metadata(tree: &Path) -> Result<()> {
    // Larger files are left to tmt: only what fci can read cheaply is checked here.
    const READ: u64 = 1 << 20;
    for rel in crate::digest::list_files(tree, &[])? {
        if rel.extension().is_none_or(|e| e != "fmf") {
            continue;
        }
        // Regular files only: a link may point out of the tree, whose text an error quotes.
        let full = tree.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        if !meta.is_file() || meta.len() > READ {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&full) else {
            continue;
        };
        if let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
            return Err(crate::error::FciError::package(
                &rel,
                crate::error::yaml_line(&e),
                format!("invalid fmf metadata (YAML): {e}"),
            )
            .into());
        }
    }
    Ok(())
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

/// A test name as a regular expression (tmt's `--name`) matching it literally.
fn escape(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Escapes a name for tmt's `--name` regular expression, anchored.
fn exact(name: &str) -> String {
    format!("^{}$", escape(name))
}

/// A `--name` expression for a test case: the test itself, or the test it is a result of
/// (tmt names a test's own results `<test>/<result>`, `result: custom`), so that either
/// reruns. fmf tests are leaves: no test's name is another's ancestor.
fn test_of(name: &str) -> String {
    let ends = name
        .char_indices()
        .filter(|&(i, c)| c == '/' && i > 0)
        .map(|(i, _)| i)
        .chain(std::iter::once(name.len()));
    let alts: Vec<String> = ends.map(|i| escape(&name[..i])).collect();
    format!("^(?:{})$", alts.join("|"))
}

/// A whole run's error of tmt, saying why.
fn broke(note: String) -> Case {
    Case::run_error("tmt", None, "tmt", note, None)
}

/// Runs every plan once; a non-empty filter limits the tests (and plans) by name.
pub fn run(env: &Env, only: &Filter, dir: &Path, log: &mut Log) -> Result<Cases> {
    let (src, home) = env.attempt_dirs(dir)?;
    let id = dir.join("tmt-run");
    // prepare is skipped: it would install `require:` packages from the network onto the host.
    let tmt = TMT.find()?;
    crate::sandbox::check_outside_homes(TMT.program, &tmt)?;
    let mut cmd = Cmd::new(tmt)
        .arg("--root")
        .arg(&src)
        .arg("--feeling-safe")
        .args(["run", "--scratch", "--id"])
        .arg(&id)
        .args(["--all", "--skip", "prepare", "provision", "--how", "local"]);
    // tmt takes each step's options once: one `plan` and one `test`, with repeated --name.
    if !only.plans.is_empty() {
        cmd = cmd.arg("plan");
        for p in &only.plans {
            cmd = cmd.arg("--name").arg(exact(p));
        }
    }
    if !only.names.is_empty() {
        cmd = cmd.arg("test");
        for n in &only.names {
            cmd = cmd.arg("--name").arg(test_of(n));
        }
    }
    let mut extra = vec![
        (
            "TMT_WORKDIR_ROOT".to_string(),
            dir.join("tmt-workdirs").into(),
        ),
        ("NO_COLOR".into(), "1".into()),
        ("TMT_NO_COLOR".into(), "1".into()),
    ];
    if env.guest.is_some() {
        // fci integrate: each test's command runs in the composed tree (see GUEST_PLUGIN).
        let plugins = dir.join("tmt-plugins");
        crate::files::install_files(&plugins, &[GUEST_PLUGIN])?;
        extra.push(("TMT_PLUGINS".into(), plugins.into()));
    }
    let ended = env.run(log, dir, &home, &src, extra, cmd)?;
    let mut cases = read_results(&id, only);
    let code = ended.code.map_or("-".into(), |c| c.to_string());
    if let Some(why) = ended.limit.as_deref() {
        // Killed past a limit: the run's results may be partial or missing (tmt writes them as
        // it goes); the kill is the package code's doing.
        cases.listed.retain(|c| !c.whole_run);
        cases.push(Case::limit_hit("tmt", None, "tmt", why));
    } else if ended.timed_out {
        cases.push(Case::timed_out("tmt", None, "tmt", env, None));
    } else if cases.is_empty() && ended.code == Some(3) && !only.names.is_empty() {
        // A rerun of named tests that found none of them: no result (never tmt's "nothing to
        // run", INFO): the cases it was to rerun stay as they were.
        log.line("# tmt found none of the tests selected for a rerun (exit 3)");
    } else if cases.is_empty() && ended.code == Some(3) {
        // tmt's "nothing to run": fmf metadata without plans, or plans that discover no test.
        let mut none = broke("tmt found no tests to run (exit 3)".into());
        none.outcome = Outcome::Info;
        cases.push(none);
    } else if cases.is_empty() {
        let mut c = broke(because(
            format!("tmt exited {code} and reported no test results"),
            &ended.tail,
        ));
        if invalid_plan(&ended.tail) {
            // The package's fmf metadata names what tmt has not (a discover method, a key
            // its schema refuses): the package's FAILED, not the host's ERROR.
            c.outcome = Outcome::Failed;
        }
        cases.push(c);
    } else if !matches!(ended.code, Some(0 | 1 | 4)) && !cases.any_error() {
        // 0 passed, 1 a test failed, 4 all skipped; anything else broke outside the tests
        // (a plan's discover, prepare or finish): the tests' own results do not tell.
        cases.push(broke(because(
            format!("tmt exited {code}: a plan failed outside its tests"),
            &ended.tail,
        )));
    }
    Ok(cases)
}

/// Whether tmt's output says a plan itself is invalid: a step method tmt does not have
/// (`Unsupported discover method 'x' in the '/plans/a' plan.`) or a step its schema refuses
/// (`warn: /plans/a:discover - {...} is not valid`).
fn invalid_plan(output: &str) -> bool {
    output.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("Unsupported ") && l.contains(" method '") && l.contains(" plan"))
            || (l.starts_with("warn: /") && l.contains(" - ") && l.ends_with(" is not valid"))
    })
}

/// `what`, then tmt's own reason from the end of its output when it gave one, else a pointer
/// to the stage log.
fn because(what: String, output: &str) -> String {
    match reason(output) {
        Some(why) => format!("{what}: {why}"),
        None => format!("{what} (see the stage log)"),
    }
}

/// Why tmt stopped, from the end of its output: the innermost `Cause number N:` of its
/// exception chain (`Unsupported discover method 'x' in the '/plans/a' plan.`), with the last
/// line of the command output it quotes (`jo: command not found`), else its last `fail:` or
/// `Error:` line.
fn reason(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    let why = match lines.iter().rposition(|l| l.starts_with("Cause number ")) {
        Some(at) => {
            let block: Vec<&str> = lines[at + 1..]
                .iter()
                .copied()
                .filter(|l| !l.is_empty() && !l.starts_with("# exit status"))
                .collect();
            let first = *block.first()?;
            // What the failed command printed, between tmt's `# ~~~` rules.
            let quoted = block
                .iter()
                .skip(1)
                .rfind(|l| !l.starts_with('#'))
                .map(|l| super::runner::strip_script_prefix(l));
            match quoted {
                Some(q) => format!("{} {q}", first.trim_end_matches('.').to_string() + ":"),
                None => first.to_string(),
            }
        }
        None => lines
            .iter()
            .rev()
            .find_map(|l| {
                l.strip_prefix("fail: ")
                    .or_else(|| l.strip_prefix("Error: "))
            })?
            .to_string(),
    };
    Some(crate::progress::plain(&why))
}

/// The cases of each plan's results.yaml in the run's directory (with `only.names`, those
/// alone), read through the caps; an unreadable one is its plan's error. Apart so that
/// `run` reads as its steps.
fn read_results(id: &Path, only: &Filter) -> Cases {
    let mut cases = Cases::default();
    // The tests can write results files of their own into the run's directory: all of them
    // together are bounded too.
    let mut read = 0u64;
    // A set: a rerun may name thousands of cases, and each of the results is looked up.
    let only_names: std::collections::HashSet<&str> =
        only.names.iter().map(String::as_str).collect();
    for (n, (plan, execute)) in plan_results(id).into_iter().enumerate() {
        if read > crate::caps::RESULTS_TOTAL || n >= crate::caps::PLANS {
            cases.push(broke(format!(
                "the run left more than {} plans' results or {} of results.yaml in all: fci stopped reading at plan {plan}",
                crate::caps::PLANS,
                crate::caps::human(crate::caps::RESULTS_TOTAL)
            )));
            break;
        }
        let rows: Vec<Row> = match read_output(&execute.join("results.yaml")) {
            Ok(text) => {
                let text = text.unwrap_or_default();
                read += text.len() as u64;
                match serde_yaml_ng::from_str(&text) {
                    Ok(rows) => rows,
                    Err(e) => {
                        cases.push(broke(format!("invalid results.yaml of plan {plan}: {e}")));
                        continue;
                    }
                }
            }
            Err(why) => {
                cases.push(broke(why));
                continue;
            }
        };
        for r in rows {
            if !only_names.is_empty() && !only_names.contains(r.name.as_str()) {
                continue;
            }
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
                name: r.name,
                group: Some(plan.clone()),
                outcome: outcome(&r.result),
                log: r.log.first().map(|l| execute.join(l)),
                duration_s: r.duration.as_deref().and_then(seconds),
                note,
                whole_run: false,
                timed_out: false,
            });
        }
    }
    cases
}

/// (plan name, its execute directory) for each plan tmt ran: `<id>/<plan>/execute/results.yaml`.
/// The walk never enters a step's directory, so results files that tests write into their
/// own data (a nested tmt run, say) are not mistaken for tmt's.
pub fn plan_results(id: &Path) -> Vec<(String, PathBuf)> {
    const STEPS: [&str; 7] = [
        "discover",
        "provision",
        "prepare",
        "execute",
        "report",
        "finish",
        "cleanup",
    ];
    fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<(String, PathBuf)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            // One past the most read is enough to tell there are too many.
            if out.len() > crate::caps::PLANS {
                return;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if name == "execute" && e.path().join("results.yaml").is_file() {
                out.push((
                    if rel.is_empty() {
                        "/".into()
                    } else {
                        rel.to_string()
                    },
                    e.path(),
                ));
            } else if !STEPS.contains(&name.as_str()) && depth < 16 {
                walk(&e.path(), &format!("{rel}/{name}"), depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    // The run's directory itself must be one (package code may have swapped it for a link).
    if std::fs::symlink_metadata(id).is_ok_and(|m| m.file_type().is_dir()) {
        walk(id, "", 0, &mut out);
    }
    out.sort();
    out
}

pub const TMT: Tool = Tool::elsewhere(
    "tmt",
    "install it from PyPI (./setup.sh --deps-only puts it in /opt/fci/tmt; it also needs rsync)",
);
pub const RSYNC: Tool = Tool::new("rsync", "rsync");

/// The tree's tmt plans, all of them one suite (plans are its groups).
pub struct Plans;

impl Suite for Plans {
    fn runner(&self) -> &'static str {
        "tmt"
    }

    fn tools(&self) -> Vec<Tool> {
        vec![RSYNC, TMT]
    }

    fn group(&self) -> Option<String> {
        None
    }

    fn run(&self, cx: &RunCtx, only: &Filter, dir: &Path, log: &mut Log) -> Result<Cases> {
        run(cx.env, only, dir, log)
    }

    fn reports(&self, dir: &Path) -> Vec<(String, PathBuf)> {
        plan_results(&dir.join("tmt-run"))
            .into_iter()
            .map(|(plan, execute)| {
                (
                    format!(
                        "{}-results.yaml",
                        plan.trim_start_matches('/').replace('/', "-")
                    ),
                    execute.join("results.yaml"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fmf_metadata_that_is_not_yaml_is_the_packages_mistake_at_its_line() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(".fmf")).unwrap();
        std::fs::write(t.path().join(".fmf/version"), "1\n").unwrap();
        std::fs::create_dir_all(t.path().join("plans")).unwrap();
        std::fs::write(
            t.path().join("plans/ok.fmf"),
            "summary: ok\ndiscover:\n    how: fmf\nexecute:\n    how: tmt\n",
        )
        .unwrap();
        assert!(super::check_metadata(t.path()).is_ok());
        std::fs::write(
            t.path().join("plans/all.fmf"),
            "summary: all\ndiscover:\n    how: fmf\n  execute: tmt\n",
        )
        .unwrap();
        let e = super::check_metadata(t.path()).unwrap_err();
        assert!(crate::error::is_package(&e), "{e:#}");
        assert!(
            e.to_string()
                .starts_with("plans/all.fmf:4: invalid fmf metadata (YAML): "),
            "{e:#}"
        );
    }

    #[test]
    fn tmts_reason_is_its_innermost_cause() {
        let discover = "warn: /plans/bad:discover - {'how': 'nonsense'} is not valid\n\n/plans/bad\n\n\
            plan failed.\n\nThe exception was caused by 1 earlier exceptions\n\nCause number 1:\n\n    \
            Unsupported discover method 'nonsense' in the '/plans/bad' plan.\n";
        assert_eq!(
            super::because("tmt exited 2 and reported no test results".into(), discover),
            "tmt exited 2 and reported no test results: Unsupported discover method 'nonsense' in the '/plans/bad' plan."
        );
        let finish = "plan failed.\n\nCause number 1:\n\n    finish step failed\n\n    \
            Cause number 1:\n\n        Command './script-0-outer' returned 127.\n\n        \
            # stdout (1/1 lines)\n        # ~~~~~~\n        \
            ./script-0-inner: line 1: jo: command not found\n        # ~~~~~~\n\n";
        assert_eq!(
            super::reason(finish).unwrap(),
            "Command './script-0-outer' returned 127: jo: command not found"
        );
        assert_eq!(
            super::because("tmt exited 2".into(), "nothing useful\n"),
            "tmt exited 2 (see the stage log)"
        );
    }

    #[test]
    fn durations_and_names() {
        assert_eq!(super::seconds("00:01:02"), Some(62.0));
        assert_eq!(super::exact("/tests/a.b"), "^/tests/a\\.b$");
        assert_eq!(
            super::test_of("/tests/checks/v.1"),
            "^(?:/tests|/tests/checks|/tests/checks/v\\.1)$"
        );
    }
}
