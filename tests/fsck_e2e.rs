//! `fci fsck` on a workspace a real run left (build, compose on a real OSTree base, report
//! --promote): clean, it exits 0; each kind of damage (an object's byte flipped, a cache
//! entry cut short, a spooled entry half written, the known-good ref moved, a manifest's
//! digest edited, a run record edited) exits 1 naming the file; what a crash leaves (scratch,
//! a file never renamed, a torn journal line, an interrupted promotion) is debris: exit 0, and
//! `--repair` removes or completes it.

mod common;
use common::promote::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE];

/// build | compose | report --promote of hello-atomic on the example base without a kernel:
/// the promoted manifest, and the base's commit.
fn promoted(w: &Ws) -> (PathBuf, String) {
    let base = init_base_with(w, &["--no-kernel"], None, |_| {});
    let built = w.build("hello-atomic", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let b = w.save("built.json", &built.manifest());
    let c = w.run(&["compose", "-m", b.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let r = promote_with(w, &c.manifest(), "composed.json", COMPOSE_GATING);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (w.save("final.json", &r.manifest()), base)
}

struct Fsck {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `fci fsck` of the workspace `ws` with `args`.
fn fsck(ws: &Path, args: &[&str]) -> Fsck {
    let out = Command::new(env!("CARGO_BIN_EXE_fci"))
        .arg("--workspace")
        .arg(ws)
        .arg("fsck")
        .args(args)
        .output()
        .unwrap();
    Fsck {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A copy of the workspace (`cp -a`) at `name` in the scratch area, to damage.
fn copy_of(w: &Ws, name: &str) -> PathBuf {
    let to = w.path().join(name);
    let st = Command::new("cp")
        .arg("-a")
        .arg(w.ws())
        .arg(&to)
        .status()
        .unwrap();
    assert!(st.success());
    to
}

/// The first file below `dir` whose path ends with `suffix`.
fn find(dir: &Path, suffix: &str) -> PathBuf {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .min()
        .unwrap_or_else(|| panic!("no *{suffix} below {}", dir.display()))
}

/// Exit 1, with a `damage:` line naming `file` (and containing `what`).
fn assert_damage(f: &Fsck, file: &Path, what: &str) {
    assert_eq!(f.code, 1, "{}{}", f.stdout, f.stderr);
    let named = format!("damage: {}: ", file.display());
    assert!(
        f.stdout
            .lines()
            .any(|l| l.starts_with(&named) && l.contains(what)),
        "no damage line naming {} ({what}): {}",
        file.display(),
        f.stdout
    );
}

/// Sets a file's (or directory's) modification time an hour back: debris old enough for
/// `--repair`, which leaves what a running fci may be about to rename.
fn age(p: &Path) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::open(p).unwrap().set_modified(then).unwrap();
}

#[test]
fn a_clean_run_passes_and_each_kind_of_damage_is_named() {
    let w = Ws::new();
    let (final_json, base) = promoted(&w);
    let clean = fsck(&w.ws(), &["-m", final_json.to_str().unwrap()]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.is_empty(), "{}", clean.stdout);

    // A byte flipped in an object.
    let ws = copy_of(&w, "flipped");
    let rpm = find(&ws.join("objects"), ".x86_64.rpm");
    let mut bytes = std::fs::read(&rpm).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&rpm, bytes).unwrap();
    assert_damage(&fsck(&ws, &[]), &rpm, "does not match its name");

    // A cache entry cut short.
    let ws = copy_of(&w, "truncated");
    let entry = find(&ws.join("cache/compose"), ".json");
    let len = std::fs::metadata(&entry).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&entry)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_damage(&fsck(&ws, &["--no-ostree"]), &entry, "does not parse");

    // A spooled entry half written.
    let ws = copy_of(&w, "spool");
    let spooled = ws.join("spool/resultsdb/0123456789abcdef/r-1.json");
    std::fs::create_dir_all(spooled.parent().unwrap()).unwrap();
    std::fs::write(&spooled, br#"{"outcome": "PASSED", "testcase": {"na"#).unwrap();
    assert_damage(&fsck(&ws, &["--no-ostree"]), &spooled, "does not parse");

    // The known-good ref moved back to the base behind the known-good set's back.
    let ws = copy_of(&w, "moved");
    ostree_in(
        &ws.join("ostree/repo"),
        &["refs", "--force", "--create=fci/f41/known-good", &base],
    );
    assert_damage(
        &fsck(&ws, &["--no-ostree"]),
        &ws.join("state/known-good/f41.json"),
        "fci/f41/known-good is",
    );

    // A manifest whose artifact digest was edited.
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(&final_json).unwrap()).unwrap();
    let a = m["artifacts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["type"] == "rpm")
        .unwrap();
    a["sha256"] = "0".repeat(64).into();
    let edited = w.save("edited.json", &m);
    assert_damage(
        &fsck(&w.ws(), &["--no-ostree", "-m", edited.to_str().unwrap()]),
        &edited,
        "sha256",
    );

    // A run record edited (a FAILED made PASSED, say): its name is its digest.
    let ws = copy_of(&w, "record");
    let record = find(&ws.join("state/records"), ".json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    v["record"]["notes"] = serde_json::json!(["edited by hand"]);
    std::fs::write(&record, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    assert_damage(&fsck(&ws, &["--no-ostree"]), &record, "not what fci kept");

    // The results store overwritten at its start.
    let ws = copy_of(&w, "results");
    let db = ws.join("results/results.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&db, bytes).unwrap();
    assert_damage(&fsck(&ws, &["--no-ostree"]), &db, "SQLite");

    // An object of the OSTree repository corrupted: ostree fsck says so.
    let ws = copy_of(&w, "ostree");
    let file = find(&ws.join("ostree/repo/objects"), ".file");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(b'!');
    std::fs::write(&file, bytes).unwrap();
    assert_damage(&fsck(&ws, &[]), &ws.join("ostree/repo"), "ostree fsck");
    // ... which --no-ostree does not look at.
    assert_eq!(fsck(&ws, &["--no-ostree"]).code, 0);
}

#[test]
fn what_a_crash_leaves_is_debris_and_repair_removes_only_that() {
    let w = Ws::new();
    let (final_json, base) = promoted(&w);
    let ws = w.ws();
    // A killed run's scratch (unlocked), a store cut short, a state file never renamed, a
    // torn last journal line.
    let scratch = ws.join("tmp/build-killed");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join(".lock"), b"").unwrap();
    let stray = ws.join("tmp/.obj-killed");
    std::fs::write(&stray, b"half").unwrap();
    let unrenamed = ws.join("state/known-good/.tmpAbC123");
    std::fs::write(&unrenamed, b"{\"hello").unwrap();
    let journal = ws.join("messages/journal.jsonl");
    let whole = std::fs::read(&journal).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(b"{\"id\": \"cut-");
    std::fs::write(&journal, &torn).unwrap();
    // A promotion cut short after its intent: the ref still at the base, the set not written.
    let set: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("state/known-good/f41.json")).unwrap(),
    )
    .unwrap();
    let commit = set["hello-atomic"]["commit"].as_str().unwrap().to_string();
    let repo = ws.join("ostree/repo");
    ostree_in(
        &repo,
        &["refs", "--force", "--create=fci/f41/known-good", &base],
    );
    std::fs::write(ws.join("state/known-good/f41.json"), "{}").unwrap();
    let intent =
        serde_json::json!({"ref": "fci/f41/known-good", "from": base, "to": commit, "set": set});
    std::fs::write(
        ws.join("state/known-good/.f41.promoting"),
        intent.to_string(),
    )
    .unwrap();

    let f = fsck(&ws, &["-m", final_json.to_str().unwrap()]);
    assert_eq!(f.code, 0, "debris is no damage: {}{}", f.stdout, f.stderr);
    for p in [&scratch, &stray, &unrenamed, &journal] {
        assert!(
            f.stdout.contains(&format!("debris: {}: ", p.display())),
            "{} not named: {}",
            p.display(),
            f.stdout
        );
    }
    assert!(
        f.stdout.contains("a promotion of f41 cut short"),
        "{}",
        f.stdout
    );

    // Recent debris may be a running fci's: --repair leaves it until it is old enough.
    let f = fsck(&ws, &["--repair"]);
    assert_eq!(f.code, 0, "{}{}", f.stdout, f.stderr);
    assert!(stray.exists() && unrenamed.exists() && scratch.exists());
    for p in [&scratch, &stray, &unrenamed] {
        age(p);
    }
    // A live run's scratch (locked) is nobody's debris.
    let live = ws.join("tmp/test-live");
    std::fs::create_dir_all(&live).unwrap();
    let lock = std::fs::File::create(live.join(".lock")).unwrap();
    lock.lock().unwrap();
    age(&live);

    let f = fsck(&ws, &["--repair"]);
    assert_eq!(f.code, 0, "{}{}", f.stdout, f.stderr);
    assert!(
        !scratch.exists() && !stray.exists() && !unrenamed.exists(),
        "{}",
        f.stdout
    );
    assert!(live.is_dir(), "a running stage's scratch was removed");
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        whole,
        "the torn line is cut, nothing else"
    );
    // The promotion was completed, not undone: its decision stands.
    assert_eq!(known_good_in(&repo), commit);
    assert!(!ws.join("state/known-good/.f41.promoting").exists());
    let now: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("state/known-good/f41.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(now, set);
    drop(lock);
    std::fs::remove_dir_all(&live).unwrap();

    let f = fsck(&ws, &["-m", final_json.to_str().unwrap()]);
    assert_eq!(f.code, 0, "{}{}", f.stdout, f.stderr);
    assert!(f.stdout.is_empty(), "nothing left: {}", f.stdout);
}

#[test]
fn usage_and_host_errors_have_their_own_exit_codes() {
    let w = Ws::new();
    // No workspace there: the caller's mistake, and none is made.
    let f = fsck(&w.path().join("nowhere"), &[]);
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert!(!w.path().join("nowhere").exists());
    std::fs::create_dir_all(w.ws().join("objects")).unwrap();
    let f = fsck(
        &w.ws(),
        &["-m", w.path().join("missing.json").to_str().unwrap()],
    );
    assert_eq!(f.code, 2, "{}", f.stderr);
    // An empty workspace is clean.
    let f = fsck(&w.ws(), &[]);
    assert_eq!(f.code, 0, "{}{}", f.stdout, f.stderr);
}
