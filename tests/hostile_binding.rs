//! Issue 13, finding 1: every consumer of an `ostree-commit` or `image` artifact takes only
//! this run's. An edited manifest naming another commit of the repository (another package's
//! candidate, a commit whose parent is not the tested base, an orphan no candidate ref names)
//! or another run's image is exit 2 naming the mismatch, and nothing moves or runs.
//! The manifests are edited here; tests/hostile/swapped-{commit,image}/PROMISE state the
//! promises.

mod common;
use common::promote::*;
use common::*;
use serde_json::Value;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[
    tool::BUILD,
    tool::TEST,
    tool::BASE,
    tool::COMPOSE,
    tool::IMAGE,
    tool::SMOKE,
];

/// Gating on what build and compose record.
/// Two runs composed on the same base: hello-atomic (A) and the compose-etc fixture (B).
fn two_composes(w: &Ws) -> (Value, Value) {
    let compose = |built: Run, tag: &str| {
        assert_eq!(built.code, 0, "{}", built.stderr);
        let b = w.save(&format!("{tag}-built.json"), &built.manifest());
        let c = w.run(&["compose", "--branch", "f41", "-m", b.to_str().unwrap()]);
        assert_eq!(c.code, 0, "{}", c.stderr);
        c.manifest()
    };
    let a = compose(w.build("hello-atomic", &[]), "a");
    let b = compose(w.build_fixture("compose-etc", &["--branch", "f41"]), "b");
    (a, b)
}

fn ostree(w: &Ws, args: &[&str]) -> String {
    ostree_in(&w.ws().join("ostree/repo"), args)
}

fn known_good(w: &Ws) -> String {
    ostree(w, &["rev-parse", "fci/f41/known-good"])
}

fn commit_of(m: &Value) -> String {
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "ostree-commit")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `m` with its composed commit replaced by `commit` (artifact and compose record), and with
/// the artifact's name `name` when given.
fn with_commit(m: &Value, commit: &str, name: Option<&str>) -> Value {
    let mut t = m.clone();
    for a in t["artifacts"].as_array_mut().unwrap() {
        if a["type"] == "ostree-commit" {
            a["sha256"] = commit.into();
            if let Some(n) = name {
                a["name"] = n.into();
            }
        }
    }
    for s in t["stages"].as_array_mut().unwrap() {
        if s["name"] == "compose" {
            s["data"]["commit"] = commit.into();
            if let Some(n) = name {
                s["data"]["ref"] = n.into();
            }
        }
    }
    t
}

/// A commit of the tree `tree_of`, carrying `like`'s fci metadata, with `parent`.
fn forged_commit(w: &Ws, like: &str, tree_of: &str, parent: &str) -> String {
    let tree = w.path().join(format!("forged-{}", uuid::Uuid::new_v4()));
    ostree(
        w,
        &["checkout", "-U", "-H", tree_of, tree.to_str().unwrap()],
    );
    let mut args = vec![
        "commit".to_string(),
        "--orphan".into(),
        "--subject=forged".into(),
        "--owner-uid=0".into(),
        "--owner-gid=0".into(),
        format!("--parent={parent}"),
        format!("--tree=dir={}", tree.display()),
    ];
    for key in [
        "fci.package",
        "fci.dist-git-commit",
        "fci.run",
        "fci.base",
        "fci.rpms",
    ] {
        let v = ostree(w, &["show", &format!("--print-metadata-key={key}"), like]);
        args.push(format!(
            "--add-metadata-string={key}={}",
            v.trim_matches('\'')
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ostree(w, &args)
}

fn promote(w: &Ws, m: &Value, name: &str) -> Run {
    promote_with(w, m, name, COMPOSE_GATING)
}

/// Exit 2, one line naming the file and every one of `words`, no manifest.
fn refused(r: &Run, file: &str, words: &[&str]) {
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    for w in std::iter::once(&file).chain(words) {
        assert!(r.stderr.contains(w), "`{w}` not in: {}", r.stderr);
    }
}

#[test]
fn promotion_moves_known_good_only_to_this_runs_commit() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let (a, b) = two_composes(&w);
    let (ca, cb) = (commit_of(&a), commit_of(&b));
    let b_ref = b["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "ostree-commit")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let unchanged = |w: &Ws| {
        assert_eq!(known_good(w), base, "known-good moved");
        assert!(!w.ws().join("state/known-good/f41.json").exists());
        assert!(
            !w.ws().join("results/results.sqlite").exists(),
            "results recorded"
        );
    };

    // Another package's candidate, wholesale (artifact, name, compose record)...
    let r = promote(&w, &with_commit(&a, &cb, Some(&b_ref)), "foreign.json");
    refused(
        &r,
        "foreign.json",
        &["fci.package", "compose-etc", "hello-atomic"],
    );
    unchanged(&w);
    // ...or only its checksum.
    let r = promote(&w, &with_commit(&a, &cb, None), "sum.json");
    refused(&r, "sum.json", &["fci.package", &cb]);
    unchanged(&w);

    // A commit claiming to be A's, whose parent is B's commit, not the tested base, even with
    // A's candidate ref moved to it.
    let a_ref = format!("fci/f41/candidate/{}", a["run"]["id"].as_str().unwrap());
    let reparented = forged_commit(&w, &ca, &ca, &cb);
    ostree(
        &w,
        &["refs", "--force", &format!("--create={a_ref}"), &reparented],
    );
    let r = promote(&w, &with_commit(&a, &reparented, None), "parent.json");
    refused(&r, "parent.json", &["parent", &cb, &base]);
    unchanged(&w);
    ostree(&w, &["refs", "--force", &format!("--create={a_ref}"), &ca]);

    // A tree with A's metadata and the right parent that no candidate ref names (what an
    // interrupted or refused compose leaves).
    let orphan = forged_commit(&w, &ca, &base, &base);
    let r = promote(&w, &with_commit(&a, &orphan, None), "orphan.json");
    refused(&r, "orphan.json", &["candidate ref", &a_ref, &ca]);
    unchanged(&w);

    // A's compose record claiming to be reused from B's run, to take B's candidate ref.
    let mut reused = with_commit(&a, &cb, Some(&b_ref));
    for s in reused["stages"].as_array_mut().unwrap() {
        if s["name"] == "compose" {
            s["cached"] = true.into();
            s["data"]["cached_from_run"] = b["run"]["id"].clone();
        }
    }
    let r = promote(&w, &reused, "reused.json");
    refused(&r, "reused.json", &["fci.package"]);
    unchanged(&w);

    // The honest run promotes.
    let r = promote(&w, &a, "honest.json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    assert_eq!(r.stage(&m, "report")["data"]["promoted"]["to"], ca.as_str());
    assert_eq!(known_good(&w), ca);
}

#[test]
fn integrate_image_smoke_and_conform_take_only_this_runs_commit_and_image() {
    let w = Ws::new();
    init_base_with(&w, &[], None, |_| {});
    let (a, b) = two_composes(&w);
    let (ca, cb) = (commit_of(&a), commit_of(&b));
    let swapped = w.save("swapped.json", &with_commit(&a, &cb, None));
    let tests = example("hello-atomic");
    let m = swapped.to_str().unwrap();
    // The run's records say which commit its compose left: every stage refuses the edit.
    let r = w.run(&["image", "-m", m]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("swapped.json") && r.stderr.contains("stage `compose`"),
        "{}",
        r.stderr
    );
    // Without them (a manifest from another workspace), the commit's own metadata does.
    w.forget_records();
    for (args, what) in [
        (
            vec!["integrate", "-m", m, "--tests", tests.to_str().unwrap()],
            "integrate",
        ),
        (vec!["image", "-m", m], "image"),
        (
            vec!["conform", "-m", m, "--installer", "true", ";"],
            "conform",
        ),
    ] {
        let r = w.run(&args);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{what}");
        assert!(
            r.stderr.contains("swapped.json") && r.stderr.contains("fci.package"),
            "{what}: {}",
            r.stderr
        );
    }
    assert!(
        !w.ws().join("state/image/f41.json").exists(),
        "an image was made"
    );

    // A's image, honestly made.
    let pa = w.save("a.json", &a);
    let r = w.run(&["image", "-m", pa.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let imaged = r.manifest();
    let image = imaged["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "image")
        .unwrap()
        .clone();
    assert_eq!(image["commit"], ca.as_str());

    // Each probe below is of the commit's and the image's own binding: as from another
    // workspace, without the run's records (which refuse every edit first).
    let smoke = |m: &Value, name: &str| -> Run {
        w.forget_records();
        let p = w.save(name, m);
        let start = std::time::Instant::now();
        let r = w.run(&["smoke", "--accel", "tcg", "-m", p.to_str().unwrap()]);
        // Refused while planning: nothing was booted.
        assert!(
            start.elapsed().as_secs() < 20,
            "{name}: took {:?}",
            start.elapsed()
        );
        assert!(!w.ws().join("cache/smoke").exists(), "{name}: smoke ran");
        r
    };
    // A's image in B's run, saying it was made from B's commit.
    let mut b_with_a = b.clone();
    let mut img = image.clone();
    img["commit"] = cb.as_str().into();
    b_with_a["artifacts"].as_array_mut().unwrap().push(img);
    let r = smoke(&b_with_a, "b-with-a.json");
    refused(&r, "b-with-a.json", &["made from commit", &ca, &cb]);
    // A's image with A's compose swapped for B's commit.
    let r = smoke(&with_commit(&imaged, &cb, None), "a-swapped.json");
    assert_eq!(r.code, 2, "{}", r.stderr);
    // An image fci image did not make (valid, self-contained, with the right commit).
    let other = w.ws().join("objects/other.qcow2");
    assert!(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&other)
        .arg("1M")
        .status()
        .unwrap()
        .success());
    let mut planted = imaged.clone();
    for x in planted["artifacts"].as_array_mut().unwrap() {
        if x["type"] == "image" {
            x["path"] = "objects/other.qcow2".into();
            x["sha256"] = sha256_file(&other).into();
            x["size"] = std::fs::metadata(&other).unwrap().len().into();
        }
    }
    let r = smoke(&planted, "planted.json");
    refused(&r, "planted.json", &["`fci image` made no image"]);
    // Conform's {image} is bound the same way.
    w.forget_records();
    let p = w.save("planted-conform.json", &planted);
    let r = w.run(&[
        "conform",
        "-m",
        p.to_str().unwrap(),
        "--installer",
        "true",
        "{image}",
        ";",
    ]);
    refused(&r, "planted-conform.json", &["`fci image` made no image"]);
}

/// Gating on build, compose and the package's tests.
const TEST_GATING: &str = "--- !Policy\n\
    id: tested\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.test.functional}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.compose.validation}\n";

fn promote_gated(w: &Ws, m: &Value, name: &str) -> Run {
    promote_with(w, m, name, TEST_GATING)
}

/// build | test | compose --force of an example.
fn tested_and_composed(w: &Ws, example_name: &str, test_code: i32) -> Value {
    let built = w.build(example_name, &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let t = w.test(&built.manifest(), &[]);
    assert_eq!(t.code, test_code, "{}", t.stderr);
    let p = w.save(&format!("{example_name}-tested.json"), &t.manifest());
    let c = w.run(&[
        "compose",
        "--force",
        "--branch",
        "f41",
        "-m",
        p.to_str().unwrap(),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    c.manifest()
}

fn stage_mut<'a>(m: &'a mut Value, name: &str) -> &'a mut Value {
    m["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .rev()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[test]
fn an_edited_verdict_promotes_nothing() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let unchanged = |w: &Ws| {
        assert_eq!(known_good(w), base, "known-good moved");
        assert!(!w.ws().join("state/known-good/f41.json").exists());
        assert!(
            !w.ws().join("results/results.sqlite").exists(),
            "results recorded"
        );
    };
    // A change whose tests fail, composed anyway.
    let broken = tested_and_composed(&w, "hello-broken-test", 1);
    assert_eq!(stage_mut(&mut broken.clone(), "test")["outcome"], "FAILED");

    // Its test verdict edited to PASSED, outcome and every result.
    let mut forged = broken.clone();
    let t = stage_mut(&mut forged, "test");
    t["outcome"] = "PASSED".into();
    for r in t["results"].as_array_mut().unwrap() {
        r["outcome"] = "PASSED".into();
    }
    let r = promote_gated(&w, &forged, "forged-test.json");
    refused(
        &r,
        "forged-test.json",
        &["stage `test`", "outcome is PASSED", "fci recorded FAILED"],
    );
    unchanged(&w);
    // Only one result's verdict.
    let mut forged = broken.clone();
    let t = stage_mut(&mut forged, "test");
    let failed = t["results"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["outcome"] == "FAILED")
        .unwrap();
    failed["outcome"] = "PASSED".into();
    let r = promote_gated(&w, &forged, "forged-result.json");
    refused(&r, "forged-result.json", &["stage `test`", "result"]);
    unchanged(&w);
    // The failing result dropped.
    let mut forged = broken.clone();
    stage_mut(&mut forged, "test")["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["outcome"] != "FAILED");
    let r = promote_gated(&w, &forged, "dropped.json");
    refused(&r, "dropped.json", &["stage `test`"]);
    unchanged(&w);
    // A build record's outcome edited.
    let mut forged = broken.clone();
    stage_mut(&mut forged, "build")["outcome"] = "FAILED".into();
    let r = promote_gated(&w, &forged, "forged-build.json");
    refused(&r, "forged-build.json", &["stage `build`", "outcome"]);
    unchanged(&w);
    // The test record taken out, its attestation left: an artifact of no record.
    let mut forged = broken.clone();
    forged["stages"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["name"] != "test");
    let r = promote_gated(&w, &forged, "untested.json");
    refused(
        &r,
        "untested.json",
        &[
            "stage `test`",
            "names a stage the manifest has no record of",
        ],
    );
    unchanged(&w);
    // The test record taken out altogether, with its attestation.
    forged["artifacts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| !(a["stage"] == "test" && a["type"] == "attestation"));
    let r = promote_gated(&w, &forged, "untested.json");
    // (the compose was written after it)
    refused(
        &r,
        "untested.json",
        &["stage `compose`", "records before it"],
    );
    unchanged(&w);

    // The honest manifest is reported as it is: its tests failed, so nothing is promoted.
    let r = promote_gated(&w, &broken, "broken.json");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(known_good(&w), base, "known-good moved");
    let _ = std::fs::remove_file(w.ws().join("results/results.sqlite"));

    // An honest change whose tests pass still promotes.
    let good = tested_and_composed(&w, "hello-atomic", 0);
    let r = promote_gated(&w, &good, "good.json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(known_good(&w), commit_of(&good));
}
