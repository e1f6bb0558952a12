//! The job's view (issue 15, item 4): what a CI console shows of a stage (a line per step
//! outside a terminal, the stage's log streamed with -v) and the cause each failure names.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST];

/// fci without `--quiet` (what `Ws::cmd` adds), its stderr a pipe as under Jenkins.
fn loud(w: &Ws) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fci"));
    c.arg("--workspace")
        .arg(w.ws())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn build_args() -> Vec<String> {
    vec![
        "build".into(),
        example("hello-atomic").to_string_lossy().into_owned(),
        "--branch".into(),
        "f41".into(),
        "--lookaside".into(),
        lookaside(),
    ]
}

/// The line of `stderr` that starts with `prefix`, and its index.
fn line_at(stderr: &str, prefix: &str) -> Option<usize> {
    stderr.lines().position(|l| l.starts_with(prefix))
}

#[test]
fn outside_a_terminal_each_step_prints_a_line_and_quiet_silences_them() {
    let w = Ws::new();
    let r = Run::from(loud(&w).args(build_args()).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e = &r.stderr;
    // No spinner's control sequences on a console that is not a terminal.
    assert!(!e.contains('\x1b') && !e.contains('\r'), "{e:?}");
    let first = line_at(e, "fci: build: checking out dist-git … (at ").expect(e);
    let rpmbuild = line_at(
        e,
        "fci: build: building hello-atomic.spec with rpmbuild … (at ",
    )
    .expect(e);
    let ended = line_at(e, "fci: build: steps ended after ").expect(e);
    let summary = line_at(e, "fci: build PASSED in ").expect(e);
    assert!(
        first < rpmbuild && rpmbuild < ended && ended < summary,
        "{e}"
    );
    // The log itself is not streamed without -v.
    assert!(!e.contains("Executing(%build)"), "{e}");

    let m = w.save("built.json", &r.manifest());
    let t = Run::from(
        loud(&w)
            .args(["test", "-m", m.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stderr
            .lines()
            .any(|l| l.starts_with("fci: test: running tests/tests.yml (2 tests) … (at ")),
        "{}",
        t.stderr
    );
    assert!(
        t.stderr
            .lines()
            .any(|l| l.starts_with("fci: test: running the tmt plans … (at ")),
        "{}",
        t.stderr
    );

    // --quiet: no step lines, no summary.
    let q = Run::from(loud(&w).arg("--quiet").args(build_args()).output().unwrap());
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert!(!q.stderr.contains("fci: build:"), "{}", q.stderr);
}

#[test]
fn verbose_streams_the_stage_log_to_stderr_as_it_runs() {
    let w = Ws::new();
    let r = Run::from(loud(&w).arg("-v").args(build_args()).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e = &r.stderr;
    // rpmbuild's own lines, between the step that runs it and the stage's summary: streamed
    // while the stage ran, not printed after it.
    let step = line_at(e, "fci: build: building hello-atomic.spec with rpmbuild").expect(e);
    // Indented as a log's tail is: no streamed line reads as one of fci's own.
    let build = line_at(e, "  Executing(%build)").expect(e);
    let check = line_at(e, "  Executing(%check)").expect(e);
    let summary = line_at(e, "fci: build PASSED").expect(e);
    assert!(step < build && build < check && check < summary, "{e}");
    assert!(
        e.lines()
            .all(|l| l.starts_with("fci: ") || l.starts_with("  ")),
        "{e}"
    );
    // The commands fci ran are in it, as in the log.
    assert!(e.lines().any(|l| l.starts_with("  $ ")), "{e}");
    // What is streamed is the log: every streamed rpmbuild line is in the stored log too.
    let m = r.manifest();
    let log = std::fs::read_to_string(w.ws().join(r.stage(&m, "build")["log"].as_str().unwrap()))
        .unwrap();
    let streamed = e.lines().nth(build).unwrap().trim_start();
    assert!(log.contains(streamed), "{log}");

    // -q and -v together are a usage error.
    let both = Run::from(
        loud(&w)
            .args(["-q", "-v"])
            .args(build_args())
            .output()
            .unwrap(),
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
}

/// A dist-git tree holding only tests (`--tests-from`), written by the test.
fn tests_tree(w: &Ws, name: &str, files: &[(&str, &str)]) -> String {
    let dir = w.path().join(name);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

fn built(w: &Ws) -> Value {
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.manifest()
}

#[test]
fn a_failing_sti_command_leaves_its_command_output_and_status_and_names_them() {
    let w = Ws::new();
    let m = built(&w);
    let tree = tests_tree(
        &w,
        "sti-jo",
        &[(
            "tests/tests.yml",
            "- hosts: localhost\n  roles:\n  - role: standard-test-basic\n    tags: [classic]\n    tests:\n    - fine:\n        run: echo fine\n    - needs-jo:\n        run: echo starting; jo a=1\n",
        )],
    );
    let mut c = loud(&w);
    let p = w.save("in.json", &m);
    let r = Run::from(
        c.args(["test", "-m", p.to_str().unwrap(), "--tests-from", &tree])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let mt = r.manifest();
    let s = r.stage(&mt, "test");
    let bad = case(s, "needs-jo");
    assert_eq!(bad["outcome"], "FAILED");
    let log = std::fs::read_to_string(w.ws().join(bad["log"].as_str().unwrap())).unwrap();
    assert!(
        log.starts_with("$ echo starting; jo a=1\nstarting\n"),
        "{log}"
    );
    assert!(
        log.contains("jo: not found") || log.contains("jo: command not found"),
        "{log}"
    );
    assert!(log.ends_with("# exit status 127\n"), "{log}");
    // The note and the summary name the command, its status and its cause.
    let note = bad["note"].as_str().unwrap();
    assert!(
        note.starts_with("`echo starting; jo a=1` exited 127: "),
        "{note}"
    );
    assert!(note.contains("jo: "), "{note}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("FAILED")
                && l.contains("needs-jo - `echo starting; jo a=1` exited 127")),
        "{}",
        r.stderr
    );
    let fine = case(s, "fine");
    let log = std::fs::read_to_string(w.ws().join(fine["log"].as_str().unwrap())).unwrap();
    assert_eq!(log, "$ echo fine\nfine\n# exit status 0\n");
    assert!(fine["note"].is_null(), "{fine}");
}

#[test]
fn a_tmt_error_names_tmts_reason_not_only_its_exit_status() {
    let w = Ws::new();
    let m = built(&w);
    let p = w.save("in.json", &m);
    let broken = tests_tree(
        &w,
        "tmt-discover",
        &[
            (".fmf/version", "1\n"),
            (
                "plans/bad.fmf",
                "discover:\n    how: nonsense\nexecute:\n    how: tmt\n",
            ),
            ("tests/ok.fmf", "test: echo hi\n"),
        ],
    );
    let r = Run::from(
        loud(&w)
            .args(["test", "-m", p.to_str().unwrap(), "--tests-from", &broken])
            .output()
            .unwrap(),
    );
    // An invalid plan is the package's mistake: FAILED (exit 1), never the host's ERROR.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let mt = r.manifest();
    let note = case(r.stage(&mt, "test"), "tmt")["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(note.starts_with("tmt exited 2"), "{note}");
    assert!(
        note.contains("Unsupported discover method 'nonsense'"),
        "{note}"
    );
    assert!(
        r.stderr.contains("Unsupported discover method 'nonsense'"),
        "{}",
        r.stderr
    );

    // A test that errors: its note is what it said last (tmt's wrapper noise left out).
    let jo = tests_tree(
        &w,
        "tmt-jo",
        &[
            (".fmf/version", "1\n"),
            (
                "plans/a.fmf",
                "discover:\n    how: fmf\nexecute:\n    how: tmt\n",
            ),
            ("tests/jo.fmf", "test: echo hi; jo a=1\n"),
        ],
    );
    let r = Run::from(
        loud(&w)
            .args(["test", "-m", p.to_str().unwrap(), "--tests-from", &jo])
            .output()
            .unwrap(),
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    let mt = r.manifest();
    let c = case(r.stage(&mt, "test"), "/tests/jo");
    assert_eq!(c["note"], "jo: command not found", "{c}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("/tests/jo - jo: command not found")),
        "{}",
        r.stderr
    );
}
