//! What keeps a promotion true on a shared pipeline state (review AB of issue 17): a
//! promotion cut short between the known-good ref and the known-good set is ended by the next
//! report, never left half done nor its change lost; a commit that is already the base is
//! neither queued again nor excluded; a run a stage of which was killed is neither promoted
//! nor excluded; a run never composed does not enter an OSTree pipeline's base; and the state
//! directory itself is checked on every use.

mod common;
use common::promote::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE, &[tool::GIT]];

/// Gating on the build alone.
const BUILD_GATING: &str = "--- !Policy\n\
    id: build\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n";

struct Pipeline {
    w: Ws,
    state: PathBuf,
    cfg: PathBuf,
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Alice",
            "-c",
            "user.email=alice@example.org",
        ])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

impl Pipeline {
    /// A workspace on a state directory with a known-good base and dist-git repositories of
    /// hello-atomic and compose-etc.
    fn new() -> Pipeline {
        let w = Ws::new();
        let state = w.path().join("state");
        let base = make_base(&w, &["--no-kernel"], |_| {});
        let p = Pipeline {
            cfg: w.path().join("fci.yaml"),
            state,
            w,
        };
        let r = p.fci(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let rpms = p.w.path().join("rpms");
        std::fs::create_dir_all(&rpms).unwrap();
        for (name, src) in [
            ("hello-atomic", example("hello-atomic")),
            ("compose-etc", fixture("compose-etc")),
        ] {
            let repo = rpms.join(name);
            assert!(Command::new("cp")
                .arg("-r")
                .arg(&src)
                .arg(&repo)
                .status()
                .unwrap()
                .success());
            git(&repo, &["init", "-q", "-b", "f41"]);
            git(&repo, &["add", "-A"]);
            git(&repo, &["commit", "-q", "-m", "import"]);
        }
        std::fs::write(
            &p.cfg,
            "dist_git: ./rpms\nbranches: [f41]\npackages: [hello-atomic, compose-etc]\n",
        )
        .unwrap();
        p
    }

    fn fci(&self, args: &[&str]) -> Run {
        Run::from(
            self.w
                .cmd()
                .env("FCI_STATE", &self.state)
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// The manifests `fci watch` emits now.
    fn watch(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["watch", "--config", self.cfg.to_str().unwrap(), "--once"];
        args.extend_from_slice(extra);
        let r = self.fci(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stage(&self, stage: &str, m: &Value, name: &str, extra: &[&str]) -> Run {
        let p = self.w.save(name, m);
        let mut args = vec![stage, "-m", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.fci(&args)
    }

    fn build(&self, m: &Value, name: &str) -> Value {
        let la = lookaside();
        let b = self.stage("build", m, &format!("{name}-w.json"), &["--lookaside", &la]);
        assert_eq!(b.code, 0, "{name}: {}", b.stderr);
        b.manifest()
    }

    fn compose(&self, m: &Value, name: &str) -> Value {
        let c = self.stage("compose", m, &format!("{name}-b.json"), &[]);
        assert_eq!(c.code, 0, "{name}: {}", c.stderr);
        c.manifest()
    }

    fn promote(&self, m: &Value, name: &str, gating: &str, extra: &[&str]) -> Run {
        self.promote_env(m, name, gating, extra, None)
    }

    fn promote_env(
        &self,
        m: &Value,
        name: &str,
        gating: &str,
        extra: &[&str],
        path: Option<&str>,
    ) -> Run {
        let p = self.w.save(&format!("{name}-c.json"), m);
        let g = self.w.path().join(format!("gating-{name}.yaml"));
        std::fs::write(&g, gating).unwrap();
        let mut c = self.w.cmd();
        c.env("FCI_STATE", &self.state);
        if let Some(path) = path {
            c.env("PATH", path);
        }
        c.args(["report", "-m", p.to_str().unwrap(), "--gating"])
            .arg(&g)
            .args(["--decision-context", "fci_promote", "--promote"])
            .args(extra);
        Run::from(c.output().unwrap())
    }

    fn repo(&self) -> PathBuf {
        self.state.join("ostree/repo")
    }

    fn read(&self, rel: &str) -> Value {
        std::fs::read_to_string(self.state.join(rel))
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or(Value::Null)
    }
}

fn package_of(m: &Value) -> &str {
    m["subject"]["package"].as_str().unwrap()
}

#[test]
fn a_promotion_cut_short_is_completed_by_the_next_and_a_change_already_known_good_is_not_queued() {
    let _ = NEEDS;
    let p = Pipeline::new();
    let ms = p.watch(&["--emit-existing"]);
    assert_eq!(ms.len(), 2);
    let ca = p.compose(&p.build(&ms[0], "a"), "a");
    let cb = p.compose(&p.build(&ms[1], "b"), "b");
    let first = known_good_in(&p.repo());

    // a's promotion fails as the known-good ref is moved (the host's ostree breaks there).
    let bin = p.w.path().join("failbin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("ostree");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --create=fci/*/known-good) exit 1;; esac; done\nexec /usr/bin/ostree \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let ra = p.promote_env(&ca, "a", COMPOSE_GATING, &[], Some(&path));
    assert_eq!(ra.code, 3, "{}", ra.stderr);
    assert_eq!(known_good_in(&p.repo()), first);
    // Neither half done: the set does not claim what the ref does not hold, and the intent
    // of the promotion is left for the next report.
    assert!(p.read("known-good/f41.json").get(package_of(&ca)).is_none());
    assert!(p.state.join("known-good/.f41.promoting").is_file());

    // The next report completes a's promotion first (its decision stands: the ref was still
    // at the base it was decided on), then finds b's base moved: b is queued for a retest.
    let rb = p.promote(&cb, "b", COMPOSE_GATING, &[]);
    assert_eq!(rb.code, 3, "{}", rb.stderr);
    assert!(!p.state.join("known-good/.f41.promoting").exists());
    assert_eq!(
        known_good_in(&p.repo()),
        ca["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "ostree-commit")
            .unwrap()["sha256"]
            .as_str()
            .unwrap()
    );
    let set = p.read("known-good/f41.json");
    assert!(set.get(package_of(&ca)).is_some(), "{set:#}");
    assert!(set.get(package_of(&cb)).is_none(), "{set:#}");
    let queued = p.read("retest/f41.json");
    assert_eq!(queued[0]["commit"], cb["subject"]["commit"], "{queued:#}");

    // The watch emits b again on the new base; it passes and is promoted.
    let again = p.watch(&[]);
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0]["subject"]["commit"], cb["subject"]["commit"]);
    let cb2 = p.compose(&p.build(&again[0], "b2"), "b2");
    let r = p.promote(&cb2, "b2", COMPOSE_GATING, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // b's first run reported again (a retried step, a hand rerun): that commit is the base
    // already, so it is neither queued for another retest nor excluded.
    let r = p.promote(&cb, "b3", COMPOSE_GATING, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("queued"),
        "{}",
        r.stderr
    );
    let queued = p.read("retest/f41.json");
    assert!(queued.as_array().is_none_or(|q| q.is_empty()), "{queued:#}");
    assert!(p.watch(&[]).is_empty());
    let excluded = p.read("excluded/f41.json");
    assert!(
        !excluded.to_string().contains(package_of(&ca)),
        "{excluded:#}"
    );
    let fsck = Command::new("ostree")
        .arg(format!("--repo={}", p.repo().display()))
        .arg("fsck")
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
}

#[test]
fn a_run_cut_short_or_never_composed_is_neither_promoted_nor_excluded() {
    let p = Pipeline::new();
    let ms = p.watch(&["--emit-existing"]);
    let built = p.build(&ms[0], "a");
    let first = known_good_in(&p.repo());
    // The test stage was killed (it wrote nothing); compose ran on the build's manifest.
    let composed = p.compose(&built, "a");
    let r = p.promote(
        &composed,
        "a",
        COMPOSE_GATING,
        &["--require-stages", "build,test,compose"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let m = r.manifest();
    let s = r.stage(&m, "report");
    assert_eq!(s["outcome"], "ERROR", "{s:#}");
    assert!(
        s["notes"].to_string().contains("no record of test"),
        "{s:#}"
    );
    assert_eq!(known_good_in(&p.repo()), first);
    assert!(p.read("excluded/f41.json").is_null());
    // A stage that is not one is the caller's mistake.
    let r = p.promote(
        &composed,
        "a-bad",
        COMPOSE_GATING,
        &["--require-stages", "tset"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);

    // The run brought into another workspace on the same state (a maintainer's
    // reproduction): never promoted there, and its stages there add nothing to its records.
    let bundle = p.w.path().join("a.bundle");
    let mp = p.w.save("a-bundled.json", &composed);
    let r = p.fci(&[
        "bundle",
        "-m",
        mp.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let here = Ws::new();
    let unb = here.path().join("unbundled.json");
    let r = Run::from(
        here.cmd()
            .env("FCI_STATE", &p.state)
            .args([
                "unbundle",
                bundle.to_str().unwrap(),
                "-o",
                unb.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let g = here.path().join("gating.yaml");
    std::fs::write(&g, COMPOSE_GATING).unwrap();
    let r = Run::from(
        here.cmd()
            .env("FCI_STATE", &p.state)
            .args([
                "report",
                "-m",
                unb.to_str().unwrap(),
                "--gating",
                g.to_str().unwrap(),
            ])
            .args(["--decision-context", "fci_promote", "--promote"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("reproduction is never promoted"),
        "{}",
        r.stderr
    );
    assert_eq!(known_good_in(&p.repo()), first);

    // Never composed: the set would claim what the base does not hold.
    let built = p.build(&ms[1], "b");
    let r = p.promote(&built, "b", BUILD_GATING, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("fci compose"), "{}", r.stderr);
    assert!(p
        .read("known-good/f41.json")
        .get(package_of(&built))
        .is_none());
    assert_eq!(known_good_in(&p.repo()), first);
}

#[test]
fn the_state_directory_is_checked_on_every_use() {
    let w = Ws::new();
    let base = make_base(&w, &["--no-kernel"], |_| {});
    let state = w.path().join("state");
    let fci = |state: &Path, args: &[&str]| {
        Run::from(w.cmd().env("FCI_STATE", state).args(args).output().unwrap())
    };
    let init = ["base", "init", base.to_str().unwrap(), "--branch", "f41"];
    // A top-level entry that is a link would carry every worker's writes elsewhere.
    std::fs::create_dir_all(&state).unwrap();
    let elsewhere = w.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, state.join("known-good")).unwrap();
    let r = fci(&state, &init);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("known-good"), "{}", r.stderr);
    std::fs::remove_file(state.join("known-good")).unwrap();
    // Another user's state: its owner could redirect what fci writes.
    std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
    let r = fci(&state, &init);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to uid 65534"), "{}", r.stderr);
    std::os::unix::fs::chown(&state, Some(0), None).unwrap();
    // A state its group shares stays writable by the group, whatever the caller's umask.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let r = Run::from(
        Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(w.ws())
            .args(init)
            .env("FCI_STATE", &state)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for d in [
        "ostree/repo",
        "ostree/repo/refs/heads",
        "ostree/repo/objects",
    ] {
        let mode = std::fs::metadata(state.join(d))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o020, 0, "{d}: {mode:o}");
    }

    // The recorded state gone (an unmounted volume): ERROR, never a new state begun there.
    let cfg = w.path().join("fci.yaml");
    let x = w.path().join("rpms/x");
    std::fs::create_dir_all(&x).unwrap();
    std::fs::write(x.join("x.spec"), "Name: x\n").unwrap();
    git(&x, &["init", "-q", "-b", "f41"]);
    git(&x, &["add", "-A"]);
    git(&x, &["commit", "-q", "-m", "import"]);
    std::fs::write(&cfg, "dist_git: ./rpms\nbranches: [f41]\npackages: [x]\n").unwrap();
    std::fs::rename(&state, w.path().join("state.unmounted")).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let r = Run::from(
        w.cmd()
            .args(["watch", "--config", cfg.to_str().unwrap(), "--once"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("is its volume mounted"), "{}", r.stderr);
    assert!(!state.join("watch").exists());
    std::fs::remove_dir(&state).unwrap();
    std::fs::rename(w.path().join("state.unmounted"), &state).unwrap();

    // A damaged retest entry is said and dropped, never a watch that stops on it.
    std::fs::create_dir_all(state.join("retest")).unwrap();
    std::fs::write(
        state.join("retest/f41.json"),
        r#"[{"package":"x","repo":"/nowhere","commit":"aéééééééé","run":"r","tested_on":"t","moved_to":"m"}]"#,
    )
    .unwrap();
    let watch = || {
        Run::from(
            w.cmd()
                .args(["watch", "--config", cfg.to_str().unwrap(), "--once"])
                .output()
                .unwrap(),
        )
    };
    let r = watch();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not a commit id"), "{}", r.stderr);
    assert!(!r.stderr.contains("internal error"), "{}", r.stderr);
    let r = watch();
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A workspace with an OSTree repository of its own takes no shared state.
    let w2 = Ws::new();
    let own = w2.path().join("own-repo");
    let r = Run::from(
        w2.cmd()
            .args(init)
            .args(["--ostree-repo", own.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = Run::from(
        w2.cmd()
            .env("FCI_STATE", &state)
            .args(["watch", "--config", cfg.to_str().unwrap(), "--once"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("keeps its own pipeline state"),
        "{}",
        r.stderr
    );
}
