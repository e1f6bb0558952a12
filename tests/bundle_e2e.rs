//! `fci bundle` and `fci unbundle` end to end: a real run (rpmbuild, then STI and tmt) carried
//! to a second workspace and its tests run there again on the same RPMs; tampered, incomplete
//! and hostile bundles refused with nothing imported.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::TEST, tool::BASE, tool::COMPOSE];

/// The example built in `w`, its manifest saved as build.json.
fn built(w: &Ws) -> (Value, PathBuf) {
    let r = w.build("hello-atomic", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.manifest();
    let p = w.save("build.json", &m);
    (m, p)
}

fn bundle(w: &Ws, manifest: &Path) -> (Run, PathBuf) {
    let out = w.path().join("run.fci-bundle");
    let r = w.run(&[
        "bundle",
        "-m",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    (r, out)
}

/// Every file below `dir` (none when it does not exist).
fn files_below(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect()
}

fn rpm_digests(m: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm" || a["type"] == "srpm")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_bundled_run_is_tested_again_in_another_workspace_on_the_same_rpms() {
    let ci = Ws::new();
    let (built, build_json) = built(&ci);
    let (r, file) = bundle(&ci, &build_json);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    // The maintainer's machine: a fresh workspace that never saw the run.
    let here = Ws::new();
    let unbundled = here.path().join("unbundled.json");
    let u = here.run(&[
        "unbundle",
        file.to_str().unwrap(),
        "-o",
        unbundled.to_str().unwrap(),
    ]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&unbundled).unwrap()).unwrap();
    assert_valid(&m);
    assert_eq!(m["run"]["id"], built["run"]["id"]);
    assert_eq!(rpm_digests(&m), rpm_digests(&built));
    // Every artifact is in the new workspace's store, with the content the manifest says.
    for a in m["artifacts"].as_array().unwrap() {
        let p = here.ws().join(a["path"].as_str().unwrap());
        if a["type"] != "rpm-repo" && a["type"] != "dist-git" {
            assert_eq!(sha256_file(&p), a["sha256"].as_str().unwrap(), "{p:?}");
        } else {
            assert!(p.is_dir(), "{p:?}");
        }
    }
    // Unbundling again is harmless: the store is content-addressed.
    let again = here.run(&["unbundle", file.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.manifest()["artifacts"], m["artifacts"]);

    // The failing stage reproduced with the same inputs.
    let t = here.run(&["test", "-m", unbundled.to_str().unwrap()]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let tm = t.manifest();
    let s = t.stage(&tm, "test");
    assert_eq!(s["outcome"], "PASSED", "{s}");
    assert_eq!(s["cached"], false);
    assert_eq!(rpm_digests(&tm), rpm_digests(&built));
    assert!(s["data"]["subject_packages"][0]
        .as_str()
        .unwrap()
        .starts_with("hello-atomic-1.0-1.fc41"));
    // The run's records were not imported, and its stages here keep none: a reproduction
    // goes on unbound, never promoted here, never adding to the CI run's records.
    let run = built["run"]["id"].as_str().unwrap();
    assert!(here.ws().join("state/reproduced").join(run).exists());
    assert!(!here.ws().join("state/records").join(run).exists());
    assert!(here.leftovers().is_empty(), "{:?}", here.leftovers());

    // The tested run bundles too, with the test's logs.
    let tested = here.save("tested.json", &tm);
    let (r, _) = bundle(&here, &tested);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A composed run's OSTree commit is recorded, not carried (docs/bundle.md): unbundled where
/// the repository lacks it, the rest is imported, stderr says so, and a stage that needs the
/// commit refuses the manifest (exit 2) rather than run on something else; unbundled where
/// the repository holds it (the pipeline's own), nothing is said.
#[test]
fn a_composed_runs_commit_is_recorded_not_carried() {
    let ci = Ws::new();
    init_base_with(&ci, &["--no-kernel"], None, |_| {});
    let (_, build_json) = built(&ci);
    let c = ci.run(&["compose", "-m", build_json.to_str().unwrap()]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let composed = c.manifest();
    let commit = composed["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "ostree-commit")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let composed_json = ci.save("composed.json", &composed);
    let out = ci.path().join("composed.fci-bundle");
    let b = ci.run(&[
        "bundle",
        "-m",
        composed_json.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let index: Value = {
        let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
        let mut first = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(first.path().unwrap().to_str().unwrap(), "fci-bundle.json");
        serde_json::from_reader(&mut first).unwrap()
    };
    assert_eq!(index["ostree_commits"], serde_json::json!([commit]));
    assert!(!tar::Archive::new(std::fs::File::open(&out).unwrap())
        .entries()
        .unwrap()
        .any(|e| e.unwrap().path().unwrap().starts_with("members/ostree")));

    let here = Ws::new();
    let unbundled = here.path().join("unbundled.json");
    let u = Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(here.ws())
            .args(["unbundle", out.to_str().unwrap(), "-o"])
            .arg(&unbundled)
            .output()
            .unwrap(),
    );
    assert_eq!(u.code, 0, "{}", u.stderr);
    assert!(
        u.stderr.contains(&commit) && u.stderr.contains("not in this workspace's repository"),
        "{}",
        u.stderr
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&unbundled).unwrap()).unwrap();
    // The same artifacts, but the rpm-md repository: a bundle's tree never takes a content
    // key (repos/<digest of its RPMs>) a later honest build computes; it is published under
    // its own tree digest.
    let without_repo = |m: &Value| -> Vec<Value> {
        m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"] != "rpm-repo")
            .cloned()
            .collect()
    };
    assert_eq!(without_repo(&m), without_repo(&composed));
    let repo_of = |m: &Value| {
        m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "rpm-repo")
            .unwrap()
            .clone()
    };
    assert_eq!(repo_of(&m)["sha256"], repo_of(&composed)["sha256"]);
    assert!(here
        .ws()
        .join(repo_of(&m)["path"].as_str().unwrap())
        .join("repodata/repomd.xml")
        .is_file());
    let i = here.run(&[
        "integrate",
        "-m",
        unbundled.to_str().unwrap(),
        "--tests",
        example("integration").to_str().unwrap(),
    ]);
    assert_eq!(i.code, 2, "{}", i.stderr);
    assert!(i.stderr.contains("ostree/repo"), "{}", i.stderr);

    // Back where the repository holds it: nothing to say.
    let back = Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_fci"))
            .arg("--workspace")
            .arg(ci.ws())
            .args(["unbundle", out.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert!(
        !back.stderr.contains("not in this workspace's repository"),
        "{}",
        back.stderr
    );
}

/// Where the bytes of the tar member `name` start in `file`.
fn member_offset(file: &Path, name: &str) -> u64 {
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_str().unwrap() == name {
            return e.raw_file_position();
        }
    }
    panic!("no member {name}");
}

#[test]
fn a_tampered_bundle_is_refused_naming_the_member_and_nothing_is_imported() {
    let ci = Ws::new();
    let (built, build_json) = built(&ci);
    let (r, file) = bundle(&ci, &build_json);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rpm = built["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let here = Ws::new();
    // One byte of the RPM flipped; then one of the manifest (its digests edited in transit).
    for (member, name) in [
        (format!("members/{rpm}"), rpm.clone()),
        ("manifest.json".to_string(), "manifest.json".to_string()),
    ] {
        let mut bytes = std::fs::read(&file).unwrap();
        let at = member_offset(&file, &member) as usize + 200;
        bytes[at] ^= 0x20;
        let bad = here.path().join("tampered.fci-bundle");
        std::fs::write(&bad, &bytes).unwrap();
        let out = here.path().join("out.json");
        let u = here.run(&[
            "unbundle",
            bad.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(u.code, 2, "{}", u.stderr);
        assert_eq!(u.stderr.trim().lines().count(), 1, "{}", u.stderr);
        assert!(u.stderr.contains(&name), "{}", u.stderr);
        assert!(u.stderr.contains("nothing was imported"), "{}", u.stderr);
        assert!(!out.exists());
        for area in ["objects", "repos", "trees"] {
            let f = files_below(&here.ws().join(area));
            assert!(f.is_empty(), "{area}: {f:?}");
        }
        assert!(here.leftovers().is_empty(), "{:?}", here.leftovers());
    }
}

/// A bundle that carries one file more than its manifest references (index and digests
/// right) is refused too: only what the manifest names is ever stored.
#[test]
fn a_bundle_carrying_more_than_its_manifest_references_is_refused() {
    let ci = Ws::new();
    let (_, build_json) = built(&ci);
    let (r, file) = bundle(&ci, &build_json);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let extra = b"#!/bin/sh\necho planted\n";
    let sha = {
        let p = ci.path().join("planted");
        std::fs::write(&p, extra).unwrap();
        sha256_file(&p)
    };
    let path = format!("objects/{}/{sha}/planted", &sha[..2]);
    let out = ci.path().join("more.fci-bundle");
    let mut b = tar::Builder::new(std::fs::File::create(&out).unwrap());
    let mut a = tar::Archive::new(std::fs::File::open(&file).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == Path::new("fci-bundle.json") {
            let mut index: Value = serde_json::from_slice(&data).unwrap();
            index["members"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!(
                    {"path": path, "type": "file", "sha256": sha, "size": extra.len()}
                ));
            data = serde_json::to_vec(&index).unwrap();
        }
        let mut h = e.header().clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(extra.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, format!("members/{path}"), &extra[..])
        .unwrap();
    b.finish().unwrap();
    drop(b);
    let here = Ws::new();
    let u = here.run(&["unbundle", out.to_str().unwrap()]);
    assert_eq!(u.code, 2, "{}", u.stderr);
    assert!(u.stderr.contains(&path), "{}", u.stderr);
    assert!(u.stderr.contains("does not reference it"), "{}", u.stderr);
    assert!(u.stdout.is_empty());
    assert!(files_below(&here.ws().join("objects")).is_empty());
}

#[test]
fn a_manifest_with_a_missing_artifact_is_not_bundled() {
    let ci = Ws::new();
    let (built, build_json) = built(&ci);
    let log = built["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "build.log")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(ci.ws().join(&log)).unwrap();
    let (r, file) = bundle(&ci, &build_json);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(&log), "{}", r.stderr);
    assert!(!file.exists());
    // An artifact whose content is no longer what the manifest says: the same.
    let rpm = built["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "rpm")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let mut edited = built.clone();
    for a in edited["artifacts"].as_array_mut().unwrap() {
        if a["path"] == rpm.as_str() {
            a["sha256"] = Value::from("0".repeat(64));
        }
    }
    let edited = ci.save("edited.json", &edited);
    let (r, file) = bundle(&ci, &edited);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&rpm), "{}", r.stderr);
    assert!(!file.exists());
}

/// A tar file with these entries: (path as raw bytes, type, content or link target).
fn raw_tar(path: &Path, entries: &[(&[u8], tar::EntryType, &[u8])]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_old();
        // Written into the header as they are: the builder's own checks would refuse them.
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            h.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
    }
    b.finish().unwrap();
}

#[test]
fn what_is_no_bundle_is_refused_in_one_line_with_nothing_imported() {
    let w = Ws::new();
    let index = |path: &str, kind: &str| {
        serde_json::json!({
            "format": "fci-bundle/v1",
            "manifest_sha256": "0".repeat(64),
            "members": [{"path": path, "type": kind, "sha256": "0".repeat(64), "size": 1}],
        })
        .to_string()
    };
    let escape = index("objects/aa/x", "file");
    let linked = index("trees/t", "dir");
    let garbage = w.path().join("garbage");
    std::fs::write(&garbage, b"not a tar file at all\n").unwrap();
    let gzipped = w.path().join("bundle.gz");
    std::fs::write(&gzipped, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    let cases: Vec<(&str, PathBuf)> = vec![
        ("not an fci bundle", garbage),
        ("gzip-compressed: decompress it first", gzipped),
        ("cannot read", w.path().join("missing")),
        ("cannot read", w.path().to_path_buf()),
    ];
    let mut cases = cases;
    let mut add = |name: &str, entries: &[(&[u8], tar::EntryType, &[u8])], why: &'static str| {
        let p = w.path().join(name);
        raw_tar(&p, entries);
        cases.push((why, p));
    };
    use tar::EntryType::{Regular, Symlink};
    add(
        "dotdot.tar",
        &[
            (b"fci-bundle.json", Regular, escape.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/objects/aa/../../../../x", Regular, b"x"),
        ],
        "`..`",
    );
    add(
        "absolute.tar",
        &[
            (b"fci-bundle.json", Regular, escape.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"/etc/x", Regular, b"x"),
        ],
        "absolute",
    );
    add(
        "link-member.tar",
        &[
            (b"fci-bundle.json", Regular, escape.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/objects/aa/x", Symlink, b"/etc/passwd"),
        ],
        "a link",
    );
    add(
        "link-out.tar",
        &[
            (b"fci-bundle.json", Regular, linked.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/trees/t/l", Symlink, b"../../../etc"),
            (b"members/trees/t/l/passwd", Regular, b"x"),
        ],
        "outside its member",
    );
    add(
        "below-link.tar",
        &[
            (b"fci-bundle.json", Regular, linked.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/trees/t/l", Symlink, b"."),
            (b"members/trees/t/l/x", Regular, b"x"),
        ],
        "below a link",
    );
    add(
        "hardlink.tar",
        &[
            (b"fci-bundle.json", Regular, escape.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/objects/aa/x", tar::EntryType::Link, b""),
        ],
        "never holds",
    );
    add(
        "stray.tar",
        &[
            (b"fci-bundle.json", Regular, escape.as_bytes()),
            (b"manifest.json", Regular, b"{}"),
            (b"members/objects/bb/y", Regular, b"y"),
        ],
        "no member of its index",
    );
    add(
        "no-index.tar",
        &[(b"manifest.json", Regular, b"{}")],
        "not fci-bundle.json",
    );
    for (why, file) in cases {
        let r = w.run(&["unbundle", file.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{file:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(why), "{file:?}: {why}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        for area in ["objects", "repos", "trees"] {
            let f = files_below(&w.ws().join(area));
            assert!(f.is_empty(), "{area}: {f:?}");
        }
        assert!(!Path::new("/etc/x").exists());
        assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
    }
}
