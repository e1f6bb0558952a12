//! Standard Test Interface: `tests/tests*.yml` run by ansible-playbook.

use super::runner::{read_output, Case, Cases, Env, OUTPUT_LIMIT};
use super::select::Filter;
use super::suite::{RunCtx, Suite};
use crate::error::FciError;
use crate::exec::{Cmd, Log};
use crate::manifest::Outcome;
use crate::tool::Tool;
use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const ROLE_FILES: [(&str, &str); 8] = [
    (
        "standard-test-basic/defaults/main.yml",
        include_str!("roles/standard-test-basic/defaults/main.yml"),
    ),
    (
        "standard-test-basic/meta/main.yml",
        include_str!("roles/standard-test-basic/meta/main.yml"),
    ),
    (
        "standard-test-basic/tasks/main.yml",
        include_str!("roles/standard-test-basic/tasks/main.yml"),
    ),
    (
        "standard-test-basic/tasks/run_one.yml",
        include_str!("roles/standard-test-basic/tasks/run_one.yml"),
    ),
    (
        "standard-test-beakerlib/defaults/main.yml",
        include_str!("roles/standard-test-beakerlib/defaults/main.yml"),
    ),
    (
        "standard-test-beakerlib/meta/main.yml",
        include_str!("roles/standard-test-beakerlib/meta/main.yml"),
    ),
    (
        "standard-test-beakerlib/tasks/main.yml",
        include_str!("roles/standard-test-beakerlib/tasks/main.yml"),
    ),
    (
        "standard-test-beakerlib/tasks/run_one.yml",
        include_str!("roles/standard-test-beakerlib/tasks/run_one.yml"),
    ),
];

/// Where Fedora's and EPEL's `standard-test-roles` package installs its roles.
pub const HOST_ROLES: &str = "/usr/share/ansible/roles";

/// The roles fci has its own implementation of.
const STANDARD_ROLES: [&str; 2] = ["standard-test-basic", "standard-test-beakerlib"];

/// Writes fci's roles below `dir` (idempotent) and returns the roles path.
pub fn install_roles(dir: &Path) -> Result<PathBuf> {
    crate::files::install_files(dir, &ROLE_FILES)?;
    Ok(dir.to_path_buf())
}

/// ANSIBLE_ROLES_PATH, in search order: the host's roles directory `host` first when it holds
/// one of the standard test roles (standard-test-roles is installed: its roles are the
/// reference), then fci's own `own`, which stand in for whichever the host lacks.
pub fn roles_path(host: &Path, own: &Path) -> Vec<PathBuf> {
    let installed = STANDARD_ROLES.iter().any(|r| host.join(r).is_dir());
    let mut out = Vec::new();
    if installed && host != own {
        out.push(host.to_path_buf());
    }
    out.push(own.to_path_buf());
    out
}

/// The STI playbooks of a dist-git tree: `tests/tests*.yml`, validated as YAML (what does
/// not parse is the package's mistake, `FciError::Package`).
pub fn discover(tree: &Path) -> Result<Vec<PathBuf>> {
    let dir = tree.join("tests");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("tests")
                && (n.ends_with(".yml") || n.ends_with(".yaml"))
                && e.path().is_file()
            {
                out.push(PathBuf::from("tests").join(n));
            }
        }
    }
    out.sort();
    // What is wrong there is the package's mistake, named by its path in the tree.
    for p in &out {
        let full = tree.join(p);
        let text = std::fs::read_to_string(&full)
            .map_err(|e| FciError::package(p, None, format!("cannot read: {e}")))?;
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| {
            FciError::package(p, crate::error::yaml_line(&e), format!("invalid YAML: {e}"))
        })?;
        if !v.is_sequence() {
            return Err(FciError::package(
                p,
                None,
                "not an Ansible playbook (expected a list of plays)",
            )
            .into());
        }
        if let Some(why) = role_tests_shape(&v) {
            return Err(FciError::package(p, line_of(&text, "tests:"), why).into());
        }
    }
    Ok(out)
}

/// What is wrong with a play's standard-test role's `tests:` (it must be a list of tests, each
/// a name or a one-key mapping of a name to its command), else None: a shape the role cannot
/// take is the package's mistake, said before anything runs (ansible would only fail with the
/// role's own error, which reads as the host's).
fn role_tests_shape(playbook: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value;
    let plays = playbook.as_sequence()?;
    for play in plays {
        let roles = play.get("roles").and_then(Value::as_sequence);
        for role in roles.into_iter().flatten() {
            let Some(tests) = role.get("tests") else {
                continue;
            };
            let name = role.get("role").and_then(Value::as_str).unwrap_or("a role");
            let Some(list) = tests.as_sequence() else {
                return Some(format!(
                    "`tests:` of {name} must be a list of tests (one `- name` or `- name: command` per test)"
                ));
            };
            let bad = list.iter().find(|t| match t {
                Value::String(_) => false,
                Value::Mapping(m) => m.len() != 1,
                _ => true,
            });
            if bad.is_some() {
                return Some(format!(
                    "`tests:` of {name}: each test must be a name or `name: command`"
                ));
            }
        }
    }
    None
}

/// The 1-based line of the first line of `text` whose content starts with `key`.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
}

#[derive(Deserialize)]
struct ResultsYml {
    #[serde(default)]
    results: Vec<ResultRow>,
}

#[derive(Deserialize)]
struct ResultRow {
    test: String,
    result: String,
    #[serde(default)]
    logs: Vec<String>,
}

fn exit_meaning(code: Option<i32>) -> String {
    let what = match code {
        Some(1) => "error",
        Some(2) => "one or more hosts failed",
        Some(4) => "unreachable host or playbook parse error",
        Some(5) => "bad options",
        Some(8) => "play stopped",
        Some(99) => "interrupted",
        Some(250) => "unexpected error",
        Some(_) => "unknown status",
        None => "killed by a signal",
    };
    format!(
        "ansible-playbook exited {} ({what})",
        code.map_or("-".into(), |c| c.to_string())
    )
}

/// Runs one playbook once; `only` limits the role's tests (empty: all).
pub fn run(
    env: &Env,
    playbook: &Path,
    tags: &[String],
    only: &[String],
    roles: &Path,
    dir: &Path,
    log: &mut Log,
) -> Result<Cases> {
    let search = roles_path(Path::new(HOST_ROLES), roles);
    // The host's roles directory, when used, must be readable in the sandbox whatever the
    // subject's overlays put over /usr.
    let env = &Env {
        readonly: env
            .readonly
            .iter()
            .chain(search.iter().filter(|p| p.as_path() != roles))
            .cloned()
            .collect(),
        subjects: env.subjects.clone(),
        hide: env.hide.clone(),
        ..*env
    };
    let (src, home) = env.attempt_dirs(dir)?;
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let inventory = dir.join("inventory");
    std::fs::write(
        &inventory,
        "localhost ansible_connection=local ansible_python_interpreter=auto_silent\n",
    )?;
    let vars = dir.join("fci-vars.json");
    // Extra vars: a playbook cannot override them. With a guest (fci integrate), fci's roles
    // run each test command in the composed tree (see `sandbox::Guest`).
    let mut vars_json = serde_json::json!({ "fci_only": only });
    if env.guest.is_some() {
        vars_json["fci_guest_root"] = crate::sandbox::GUEST_ROOT.into();
        vars_json["fci_chroot"] = crate::sandbox::GUEST_CHROOT.into();
        // The roles' `required_packages` are asked of the tree's rpm database (by the host's
        // rpm: the runner's side has no view of the tree but the guest root).
        vars_json["fci_rpm_dbpath"] =
            format!("{}{}", crate::sandbox::GUEST_ROOT, super::subject::DBPATH).into();
    }
    std::fs::write(&vars, vars_json.to_string())?;
    let pb_abs = src.join(playbook);
    let cwd = pb_abs.parent().unwrap().to_path_buf();
    // Found on the caller's PATH, run by its full path: the sandbox's PATH is the system's.
    let playbook_tool = ANSIBLE_PLAYBOOK.find()?;
    crate::sandbox::check_outside_homes(ANSIBLE_PLAYBOOK.program, &playbook_tool)?;
    let mut cmd = Cmd::new(playbook_tool)
        .arg("-i")
        .arg(&inventory)
        .arg("-e")
        .arg(format!("@{}", vars.display()));
    if !tags.is_empty() {
        cmd = cmd.arg("--tags").arg(tags.join(","));
    }
    let cmd = cmd.arg(&pb_abs);
    let env_vars = ansible_env(&artifacts, &search, &home)?;
    let ended = env.run(log, dir, &home, &cwd, env_vars, cmd)?;
    let code = ended.code;
    let name = playbook.to_string_lossy().into_owned();
    let group = Some(name.as_str());
    let broke = |note: String| Case::run_error("sti", group, &name, note, None);
    let parsed = if crate::files::real_dir_below(dir, &artifacts) {
        parse_results(&artifacts, &name, only)
    } else {
        Err("TEST_ARTIFACTS is no longer a directory of the run (replaced by a symlink?)".into())
    };
    if let Some(why) = ended.limit.as_deref() {
        // Killed past a limit: what the tests reported so far, and the kill, the package
        // code's doing.
        let mut cases = parsed.unwrap_or_default();
        cases.push(Case::limit_hit("sti", group, &name, why));
        return Ok(cases);
    }
    let mut cases = match parsed {
        Ok(c) => c,
        Err(why) if ended.timed_out => {
            return Ok(Cases::from_iter([Case::timed_out(
                "sti",
                group,
                &name,
                env,
                Some(why),
            )]))
        }
        Err(why) => return Ok(Cases::from_iter([broke(why)])),
    };
    if ended.timed_out {
        cases.push(Case::timed_out("sti", group, &name, env, None));
        return Ok(cases);
    }
    let why = || match ansible_reason(&log.tail(80)) {
        Some(m) => format!("{}: {m}", exit_meaning(code)),
        None => exit_meaning(code),
    };
    if cases.is_empty() {
        let note = if code == Some(0) {
            "playbook exited 0 but left no test.log or results.yml in TEST_ARTIFACTS: nothing ran"
                .to_string()
        } else {
            format!("{} (no results)", why())
        };
        return Ok(Cases::from_iter([broke(note)]));
    }
    // A non-zero exit with every case passing means the run itself broke after the tests.
    if code != Some(0) && cases.all_pass() {
        cases.push(broke(why()));
    }
    Ok(cases)
}

/// The environment ansible-playbook runs with: the standard's TEST_ARTIFACTS, the roles' path,
/// temporary files in the run's home, and ansible's colours, retry files and warnings off.
fn ansible_env(
    artifacts: &Path,
    search: &[PathBuf],
    home: &Path,
) -> Result<Vec<(String, std::ffi::OsString)>> {
    let ansible_tmp = home.join(".ansible/tmp");
    Ok(vec![
        ("TEST_ARTIFACTS".to_string(), artifacts.to_path_buf().into()),
        ("ANSIBLE_ROLES_PATH".into(), std::env::join_paths(search)?),
        ("ANSIBLE_LOCAL_TEMP".into(), ansible_tmp.clone().into()),
        ("ANSIBLE_REMOTE_TEMP".into(), ansible_tmp.into()),
        ("ANSIBLE_NOCOLOR".into(), "1".into()),
        ("ANSIBLE_RETRY_FILES_ENABLED".into(), "0".into()),
        ("ANSIBLE_LOCALHOST_WARNING".into(), "0".into()),
        ("ANSIBLE_INVENTORY_UNPARSED_WARNING".into(), "0".into()),
    ])
}

/// Why ansible stopped: the `msg` of the last `fatal:` task, or its own `ERROR!` line (a
/// missing role, a syntax error).
fn ansible_reason(output: &str) -> Option<String> {
    let fatal = output
        .lines()
        .rev()
        .find(|l| l.starts_with("fatal: "))
        .and_then(|line| {
            let json = &line[line.find("=> ")? + 3..];
            let v: serde_json::Value = serde_json::from_str(json).ok()?;
            v.get("msg")
                .and_then(|m| m.as_str())
                .map(|m| m.trim().to_string())
        });
    fatal.or_else(|| {
        output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("ERROR! "))
            .map(|m| m.trim().to_string())
    })
}

/// results.yml (STI 2.0) when present, else test.log's `PASS|FAIL|ERROR name` lines, only the
/// cases named in `only` when it is not empty; an error says why the tests' output could not
/// be read. Log paths are confined by the caller.
fn parse_results(
    artifacts: &Path,
    playbook: &str,
    only: &[String],
) -> std::result::Result<Cases, String> {
    let case = |name: &str, result: &str, log: Option<PathBuf>| {
        let unnamed = name.trim().is_empty();
        Case {
            runner: "sti",
            name: if unnamed {
                "(unnamed)".to_string()
            } else {
                name.to_string()
            },
            group: Some(playbook.to_string()),
            outcome: match result.to_ascii_lowercase().as_str() {
                _ if unnamed => Outcome::Error,
                "pass" | "passed" => Outcome::Passed,
                "fail" | "failed" => Outcome::Failed,
                "info" => Outcome::Info,
                _ => Outcome::Error,
            },
            log: log.filter(|p| p.is_file()),
            duration_s: None,
            note: unnamed.then(|| "a result without a test name".to_string()),
            whole_run: false,
            timed_out: false,
        }
    };
    // A set: a rerun may name thousands of cases, and each of the results is looked up.
    let only: std::collections::HashSet<&str> = only.iter().map(String::as_str).collect();
    let wanted = |name: &str| only.is_empty() || only.contains(name);
    let mut cases = Cases::default();
    if let Some(text) = read_output(&artifacts.join("results.yml"))? {
        let parsed: ResultsYml =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("invalid results.yml: {e}"))?;
        drop(text);
        if !parsed.results.is_empty() {
            for r in parsed.results.into_iter().filter(|r| wanted(&r.test)) {
                let log = r.logs.first().map(|l| artifacts.join(l));
                cases.push(case(
                    &r.test,
                    &r.result,
                    log.or_else(|| Some(artifacts.join(format!("{}.log", r.test)))),
                ));
            }
            return Ok(cases);
        }
    }
    let text = read_output(&artifacts.join("test.log"))?.unwrap_or_default();
    for (r, n) in text
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(r, _)| matches!(*r, "PASS" | "FAIL" | "ERROR"))
        .filter(|(_, n)| wanted(n.trim()))
    {
        cases.push(case(
            n.trim(),
            r,
            Some(artifacts.join(format!("{}.log", n.trim()))),
        ));
    }
    Ok(cases)
}

/// A failed STI case's note from its own log, when fci's standard-test-basic wrote it (`$ CMD`
/// first, `# exit status N` last): the command, its exit status and the last line it printed
/// (`` `./runtest.sh` exited 1: jo: command not found ``). `c.log` must be confined to the
/// attempt's directory already (`results::confine_log`); the log is read at its head and tail
/// only. A case with a note of its own, or another role's log, is left as it is.
pub fn explain_failure(mut c: Case) -> Case {
    if c.outcome != Outcome::Failed || c.note.is_some() {
        return c;
    }
    let Some(log) = &c.log else { return c };
    let Ok(bytes) = crate::caps::head_and_tail(log, 4096, 16 * 1024) else {
        return c;
    };
    c.note = note_of_log(&String::from_utf8_lossy(&bytes));
    c
}

/// See [`explain_failure`].
fn note_of_log(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let command = lines.next()?.strip_prefix("$ ")?.trim();
    let rest: Vec<&str> = lines.collect();
    let (at, status) = rest
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| Some((i, l.strip_prefix("# exit status ")?.trim())))?;
    let said = rest[..at]
        .iter()
        .map(|l| l.trim())
        .rfind(|l| !l.is_empty() && !l.starts_with("[fci: "));
    let head = format!("`{command}` exited {status}");
    let note = match said {
        Some(line) => format!("{head}: {line}"),
        None => format!("{head} (it printed nothing)"),
    };
    Some(crate::redact::redact(&crate::progress::plain(&note)))
}

/// How many tests a playbook's standard-test roles list (`tests:` of each role of each play),
/// for a step line; None when it cannot tell (it is read again, bounded, and never trusted
/// for anything else).
fn count_tests(playbook: &Path) -> Option<usize> {
    let text =
        crate::caps::read_file_with(playbook, OUTPUT_LIMIT, crate::caps::Open::NO_LINK).ok()?;
    let plays: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&text).ok()?;
    let tests = |role: &serde_yaml_ng::Value| {
        role.get("tests")
            .and_then(serde_yaml_ng::Value::as_sequence)
            .map_or(0, Vec::len)
    };
    Some(
        plays
            .as_sequence()?
            .iter()
            .filter_map(|play| play.get("roles")?.as_sequence())
            .flatten()
            .map(tests)
            .sum(),
    )
}

/// One STI playbook (`tests/tests*.yml`) as a suite.
pub struct Playbook(pub PathBuf);

pub const ANSIBLE_PLAYBOOK: Tool = Tool::new("ansible-playbook", "ansible-core");

impl Suite for Playbook {
    fn runner(&self) -> &'static str {
        "sti"
    }

    fn tools(&self) -> Vec<Tool> {
        vec![ANSIBLE_PLAYBOOK]
    }

    fn group(&self) -> Option<String> {
        Some(self.0.to_string_lossy().into_owned())
    }

    fn run(&self, cx: &RunCtx, only: &Filter, dir: &Path, log: &mut Log) -> Result<Cases> {
        run(cx.env, &self.0, cx.tags, &only.names, cx.roles, dir, log)
    }

    fn shown(&self, tree: &Path) -> String {
        let name = self.0.to_string_lossy();
        match count_tests(&tree.join(&self.0)) {
            Some(1) => format!("{name} (1 test)"),
            Some(n) if n > 0 => format!("{name} ({n} tests)"),
            _ => name.into_owned(),
        }
    }

    fn reports(&self, dir: &Path) -> Vec<(String, PathBuf)> {
        if !crate::files::real_dir_below(dir, &dir.join("artifacts")) {
            return Vec::new();
        }
        ["test.log", "results.yml"]
            .into_iter()
            .map(|f| (f.to_string(), dir.join("artifacts").join(f)))
            .filter(|(_, p)| p.exists())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    /// A `tests:` the standard-test roles cannot take is the package's mistake, named before
    /// anything runs (it was ansible's error, an ERROR blamed on the host).
    #[test]
    fn a_role_tests_shape_the_roles_cannot_take_is_named() {
        let shape = |y: &str| super::role_tests_shape(&serde_yaml_ng::from_str(y).unwrap());
        let ok = "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tests:\n    - simple:\n        run: ./t.sh\n    - other\n";
        assert_eq!(shape(ok), None);
        let mapping = "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tests:\n      simple:\n        run: ./t.sh\n";
        assert!(shape(mapping).unwrap().contains("must be a list"));
        let number =
            "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tests: [3]\n";
        assert!(shape(number).unwrap().contains("each test must be"));
    }

    use super::*;

    #[test]
    fn host_roles_come_first_only_when_standard_test_roles_is_installed() {
        let t = tempfile::tempdir().unwrap();
        let (host, own) = (t.path().join("host"), t.path().join("own"));
        std::fs::create_dir_all(host.join("some-other-role")).unwrap();
        assert_eq!(roles_path(&host, &own), vec![own.clone()]);
        assert_eq!(
            roles_path(&t.path().join("absent"), &own),
            vec![own.clone()]
        );
        for role in STANDARD_ROLES {
            let h = t.path().join(format!("host-{role}"));
            std::fs::create_dir_all(h.join(role)).unwrap();
            assert_eq!(roles_path(&h, &own), vec![h.clone(), own.clone()], "{role}");
        }
        // fci's own directory is never listed twice.
        std::fs::create_dir_all(own.join("standard-test-basic")).unwrap();
        assert_eq!(roles_path(&own, &own), vec![own.clone()]);
    }

    #[test]
    fn fci_ships_both_standard_roles() {
        let t = tempfile::tempdir().unwrap();
        let dir = install_roles(t.path()).unwrap();
        for role in STANDARD_ROLES {
            for f in ["defaults/main.yml", "meta/main.yml", "tasks/main.yml"] {
                assert!(dir.join(role).join(f).is_file(), "{role}/{f}");
            }
        }
    }

    #[test]
    fn a_failed_commands_note_names_it_its_status_and_its_last_line() {
        assert_eq!(
            note_of_log("$ ./runtest.sh\nstarting\njo: command not found\n\n# exit status 127\n")
                .unwrap(),
            "`./runtest.sh` exited 127: jo: command not found"
        );
        assert_eq!(
            note_of_log("$ false\n# exit status 1\n").unwrap(),
            "`false` exited 1 (it printed nothing)"
        );
        // Another role's log (no header fci wrote): no note made up.
        assert_eq!(note_of_log("some output\n"), None);
        assert_eq!(note_of_log("$ cut short\nno status\n"), None);
    }

    #[test]
    fn a_step_line_counts_the_playbooks_tests() {
        let t = tempfile::tempdir().unwrap();
        let pb = t.path().join("tests/tests.yml");
        std::fs::create_dir_all(pb.parent().unwrap()).unwrap();
        std::fs::write(
            &pb,
            "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tests:\n    - a\n    - b:\n        run: x\n\
             - hosts: localhost\n  roles:\n  - role: standard-test-beakerlib\n    tests: [c]\n",
        )
        .unwrap();
        let suite = Playbook(PathBuf::from("tests/tests.yml"));
        assert_eq!(suite.shown(t.path()), "tests/tests.yml (3 tests)");
        std::fs::write(&pb, "- hosts: localhost\n  tasks: []\n").unwrap();
        assert_eq!(suite.shown(t.path()), "tests/tests.yml");
    }

    #[test]
    fn the_missing_beakerlib_message_becomes_the_note() {
        let out = "TASK [standard-test-beakerlib : Refuse to run without beakerlib] ***\n\
            fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"standard-test-beakerlib: beakerlib is not installed (/usr/share/beakerlib/beakerlib.sh is missing)\"}\n\
            PLAY RECAP ***\n";
        let why = ansible_reason(out).unwrap();
        assert!(why.contains("beakerlib is not installed"), "{why}");
    }
}
