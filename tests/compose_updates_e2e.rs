//! `fci compose` as rpm-ostree composes (issue 16 item 2): a change updates base packages of
//! the same name (rpm -U), its dependencies are checked against the tree's rpm database, and
//! its scriptlets run in a sandbox rooted in the new tree, never writing into the repository.

mod common;
use common::trees::*;
use common::*;
use serde_json::Value;
use std::process::Command;

/// The tools these tests run: `Ws::new` fails naming any that is missing.
const NEEDS: Needs = &[tool::BUILD, tool::BASE, tool::COMPOSE];

fn compose_stage(r: &Run) -> Value {
    let m = r.manifest();
    r.stage(&m, "compose").clone()
}

#[test]
fn an_update_of_a_base_package_replaces_it_and_other_packages_files_still_conflict() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-sed-update", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(c["data"]["updates"], serde_json::json!(["sed-0-1.noarch"]));
    let commit = c["data"]["commit"].as_str().unwrap();
    let co = checkout(&w, commit, "co");
    // The database has the new sed only; /usr/bin/sed is its file, and it runs in the tree.
    let q = rpm_q(&co, &["-q", "sed"]);
    assert_eq!(q.trim(), "sed-4.9-1.fc41.noarch", "{q}");
    let owner = rpm_q(&co, &["-qf", "/usr/bin/sed"]);
    assert_eq!(owner.trim(), "sed-4.9-1.fc41.noarch", "{owner}");
    assert!(co.join("usr/bin/sed").is_file());
    let run = Command::new("chroot")
        .arg(&co)
        .args(["/usr/bin/sed", "--version"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "sed (fci fixture) 4.9"
    );
    // A shell script runs the new sed too: the base's /bin/sh is bash, not busybox's sh
    // (which runs its own sed applet before anything on PATH).
    let run = Command::new("chroot")
        .arg(&co)
        .args(["/bin/sh", "-c", "sed --version"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "sed (fci fixture) 4.9"
    );
    // Its %post ran with rpm's $1 for an update.
    assert_eq!(
        std::fs::read_to_string(co.join("usr/lib/sed-fixture.post")).unwrap(),
        "post 2\n"
    );
    // The base itself did not change: its /usr/bin/sed is still busybox's link.
    let (ok, ls) = ostree(&w, &["ls", &base, "/usr/bin/sed"]);
    assert!(ok && ls.contains("-> busybox"), "{ls}");
    assert_repo_intact(&w);

    // Taking a file of another base package (busybox's /usr/bin/awk) is still a conflict;
    // the updated package's own file is not one.
    let r = compose_fixture(&w, "compose-sed-conflict", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED");
    assert_eq!(c["data"]["conflicts"], serde_json::json!(["/usr/bin/awk"]));

    // An older sed than the base's is a downgrade.
    let r = compose_fixture(&w, "compose-sed-downgrade", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED");
    let notes = c["notes"].to_string();
    assert!(notes.contains("a downgrade of a base package"), "{notes}");
    let (_, refs) = ostree(&w, &["refs"]);
    assert_eq!(refs.matches("candidate").count(), 1, "{refs}");
    assert_repo_intact(&w);
}

#[test]
fn an_unmet_requires_fails_naming_it() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    // In a German locale (rpm-i18n has rpm's translations) rpm would say "wird benötigt
    // von": fci reads rpm's messages untranslated, and the verdict does not depend on the
    // caller's locale.
    let built = w.build_fixture("compose-unmet-requires", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let p = w.save("unmet.json", &built.manifest());
    let out = w
        .cmd()
        .env("LANGUAGE", "de")
        .env("LANG", "C.UTF-8")
        .args(["compose", "--branch", "f41", "-m", p.to_str().unwrap()])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED");
    let notes = c["notes"].to_string();
    assert!(
        notes.contains(
            "unmet Requires: libfrobnicate.so.7()(64bit) (needed by compose-unmet-requires-1-1.fc41.noarch)"
        ),
        "{notes}"
    );
    let (_, refs) = ostree(&w, &["refs"]);
    assert!(!refs.contains("candidate"), "{refs}");
}

/// A scriptlet's plain `rpm -q` (no --dbpath) finds the tree's database: the base's rpm
/// names it /usr/lib/sysimage/rpm, as Fedora's does, not Debian's ~/.rpmdb.
#[test]
fn a_scriptlets_rpm_query_finds_the_trees_database() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-post-rpmq", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    let commit = c["data"]["commit"].as_str().unwrap();
    let co = checkout(&w, commit, "co");
    let result = std::fs::read_to_string(co.join("usr/share/compose-post-rpmq/result")).unwrap();
    assert!(result.starts_with("sed-0-1"), "{result}");
}

#[test]
fn triggers_are_not_run_and_the_record_says_so() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-trigger", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(
        c["data"]["scriptlets_not_run"],
        serde_json::json!([
            "compose-trigger: triggers",
            "compose-trigger: file triggers",
            "compose-trigger: %transfiletriggerin on /etc/compose-trigger.d (outside /usr)",
            "compose-trigger: %transfiletriggerpostun"
        ])
    );
    assert!(c["data"].get("scriptlets").is_none(), "{c:#}");
    assert!(c["notes"].to_string().contains("not run"), "{c:#}");

    // A %pretrans is not run either, and never in silence.
    let r = compose_fixture(&w, "compose-pretrans", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(
        c["data"]["scriptlets_not_run"],
        serde_json::json!(["compose-pretrans: %pretrans"]),
        "{c:#}"
    );
}

/// Issue 16: a %transfiletriggerin of the change runs as rpm-ostree runs it: after the
/// %posttrans, in the new tree, with the tree's files below its prefix on stdin (also one its
/// %posttrans made, which no package owns).
#[test]
fn a_transfiletriggerin_runs_in_the_tree_with_its_files_on_stdin() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-transfiletrigger", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(
        c["data"]["scriptlets"],
        serde_json::json!([
            "compose-transfiletrigger %posttrans",
            "compose-transfiletrigger %transfiletriggerin",
            "compose-transfiletrigger %transfiletriggerin",
            "compose-transfiletrigger %transfiletriggerin"
        ])
    );
    assert!(c["data"].get("scriptlets_not_run").is_none(), "{c:#}");
    let commit = c["data"]["commit"].as_str().unwrap();
    let (ok, list) = ostree(
        &w,
        &["cat", commit, "/usr/lib/compose-transfiletrigger.list"],
    );
    assert!(ok, "{list}");
    assert_eq!(
        list,
        "/usr/lib/fci-plugins/made-by-posttrans.plugin\n/usr/lib/fci-plugins/more/two.plugin\n/usr/lib/fci-plugins/one.plugin\n"
    );
    // The higher priority first, as rpm runs them.
    let (ok, order) = ostree(
        &w,
        &["cat", commit, "/usr/lib/compose-transfiletrigger.order"],
    );
    assert!(ok, "{order}");
    assert_eq!(order, "high\ndefault\nlow\n");
    // The base is unchanged, and the repository's objects are what their checksums say.
    let (ok, _) = ostree(&w, &["ls", &base, "/usr/lib/compose-transfiletrigger.list"]);
    assert!(!ok);
    assert_repo_intact(&w);

    // A trigger that fails is the change's failure, with what it printed.
    let r = compose_fixture(&w, "compose-transfiletrigger-fail", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    let notes = c["notes"].to_string();
    assert!(
        notes.contains("%transfiletriggerin of compose-transfiletrigger-fail exited 4"),
        "{notes}"
    );
    assert!(
        notes.contains("compose-transfiletrigger-fail: cannot index 1 plugin(s)"),
        "{notes}"
    );
    let (_, refs) = ostree(&w, &["refs"]);
    assert_eq!(refs.matches("candidate").count(), 1, "{refs}");
}

#[test]
fn a_post_that_is_a_program_runs_it_in_the_tree() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-post-ldconfig", &[]);
    assert_eq!(r.code, 0, "{}{:#}", r.stderr, compose_stage(&r));
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(
        c["data"]["scriptlets"],
        serde_json::json!(["compose-post-ldconfig %post"])
    );
    // The tree's ldconfig made the soname link the package does not ship.
    let commit = c["data"]["commit"].as_str().unwrap();
    let (ok, ls) = ostree(&w, &["ls", commit, "/usr/lib64/libcomposeldconfig.so.1"]);
    assert!(ok && ls.contains("-> libcomposeldconfig.so.1.0"), "{ls}");
    assert_repo_intact(&w);
}

#[test]
fn scriptlets_run_in_the_new_tree_and_never_write_into_the_repository() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let (_, group_before) = ostree(&w, &["cat", &base, "/usr/etc/group"]);
    let r = compose_fixture(&w, "compose-post-ok", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    assert_eq!(
        c["data"]["scriptlets"],
        serde_json::json!([
            "compose-post-ok %pre",
            "compose-post-ok %post",
            "compose-post-ok %posttrans"
        ])
    );
    let commit = c["data"]["commit"].as_str().unwrap();
    let cat = |path: &str| {
        let (ok, text) = ostree(&w, &["cat", commit, path]);
        assert!(ok, "{path}: {text}");
        text
    };
    // Their effects are in the commit, with rpm's $1 (1: an install); /etc is usr/etc, and
    // what they wrote to /var (a tmpfs) is not carried.
    assert_eq!(cat("/usr/lib/compose-post-ok.pre"), "pre 1\n");
    assert_eq!(cat("/usr/lib/compose-post-ok/made-by-post"), "post 1\n");
    assert_eq!(
        cat("/usr/lib/compose-post-ok/made-by-posttrans"),
        "posttrans\n"
    );
    assert!(cat("/usr/etc/group").ends_with("compose-post-ok:x:990:\n"));
    for gone in ["/etc", "/var/lost"] {
        let (ok, _) = ostree(&w, &["ls", commit, gone]);
        assert!(!ok, "{gone} is in the commit");
    }
    // The %pre appended to a base file of the checkout: the base's own is unchanged, and
    // every object of the repository is what its checksum says.
    let (_, group_after) = ostree(&w, &["cat", &base, "/usr/etc/group"]);
    assert_eq!(group_before, group_after);
    assert!(!group_after.contains("compose-post-ok"));
    assert_repo_intact(&w);
    // The loader cache lists the library the change put in Fedora's %_libdir.
    let co = checkout(&w, commit, "co");
    let cache = Command::new("ldconfig")
        .arg("-C")
        .arg(co.join("usr/etc/ld.so.cache"))
        .arg("-p")
        .output()
        .unwrap();
    let cache = String::from_utf8_lossy(&cache.stdout);
    assert!(
        cache.contains("libcomposepostok.so.1 (libc6,x86-64) => /usr/lib64/libcomposepostok.so.1"),
        "{cache}"
    );
}

#[test]
fn a_failing_post_is_failed_with_its_output_and_a_hanging_one_is_an_error() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-post-fail", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED");
    let notes = c["notes"].to_string();
    assert!(
        notes.contains("%post of compose-post-fail exited 3"),
        "{notes}"
    );
    assert!(
        notes.contains("compose-post-fail: cannot register the frobnicator (arg 1)"),
        "{notes}"
    );
    // Killed at the compose's time limit: the host's bound, not the package's verdict.
    let r = compose_fixture(&w, "compose-post-slow", &["--timeout", "10"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "ERROR", "{c:#}");
    let (_, refs) = ostree(&w, &["refs"]);
    assert!(!refs.contains("candidate"), "{refs}");
    assert_repo_intact(&w);
}

/// Review X: an update of a base package with many files and a configuration file (the
/// base's shadow-utils): the database query sees every package (rpm dropped those with more
/// than one file), the new /etc file replaces the old one in usr/etc, and what the new
/// version no longer ships is gone.
#[test]
fn an_update_of_a_package_with_many_files_and_config_in_etc_replaces_them() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-shadow-update", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    let updates = c["data"]["updates"].to_string();
    assert!(updates.contains("shadow-utils-"), "{c:#}");
    let co = checkout(&w, c["data"]["commit"].as_str().unwrap(), "co");
    let q = rpm_q(&co, &["-q", "shadow-utils"]);
    assert_eq!(q.trim(), "shadow-utils-99.0-1.fc41.noarch", "{q}");
    let defs = std::fs::read_to_string(co.join("usr/etc/login.defs")).unwrap();
    assert!(defs.contains("fci fixture 99.0"), "{defs}");
    assert!(!co.join("etc").exists());
    assert!(
        !co.join("usr/sbin/groupadd").exists(),
        "a file the update no longer ships"
    );
    assert!(co.join("usr/sbin/useradd").is_file());
    assert_repo_intact(&w);
}

/// Review X: a scriptlet that rewrites the tree's rpm database is the change's failure:
/// erasing a base package's record (its files left owned by no package) or corrupting the
/// database, FAILED with a manifest, never PASSED nor the host's ERROR.
#[test]
fn a_scriptlet_that_changes_the_rpm_database_is_failed() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    // The database is read-only to scriptlets, as under rpm (the transaction holds its
    // lock): rpm -e --justdb and a write into its file fail there, with what they said.
    for (fixture, said) in [
        ("compose-post-justdb", "a scriptlet failed"),
        ("compose-post-dbcorrupt", "Read-only file system"),
        (
            "compose-post-dbswap",
            "the change's scriptlets replaced the tree's rpm database",
        ),
    ] {
        let r = compose_fixture(&w, fixture, &[]);
        assert_eq!(r.code, 1, "{fixture}: {}", r.stderr);
        let c = compose_stage(&r);
        assert_eq!(c["outcome"], "FAILED", "{fixture}: {c:#}");
        assert!(c["notes"].to_string().contains(said), "{fixture}: {c:#}");
    }
    assert_repo_intact(&w);
}

/// Review Y: a file trigger's stdin is no way out of the tree (its list is on a read-only
/// mount), and a payload that stands in ldconfig's way is the change's failure.
#[test]
fn a_triggers_stdin_is_read_only_and_a_broken_loader_cache_is_the_changes() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-trigger-stdin", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    let co = checkout(&w, c["data"]["commit"].as_str().unwrap(), "co");
    assert_eq!(
        std::fs::read_to_string(co.join("usr/share/compose-trigger-stdin.result")).unwrap(),
        "refused\n"
    );
    let r = compose_fixture(&w, "compose-ldcache-dir", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let c = compose_stage(&r);
    assert_eq!(c["outcome"], "FAILED", "{c:#}");
    assert!(c["notes"].to_string().contains("loader cache"), "{c:#}");
    assert_repo_intact(&w);
}

/// Review Y: a base holding one name twice (here two gpg-pubkey entries, as every Fedora
/// base has; multilib and install-only kernels alike) composes: each instance is a package
/// of its own, kept unless the change replaces it.
#[test]
fn a_base_with_one_name_installed_twice_still_composes() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |base| {
        let keys = fixture("gpg-pubkeys");
        let out = Command::new("rpm")
            .arg("--root")
            .arg(base)
            .args(["--dbpath", "/usr/lib/sysimage/rpm", "--import"])
            .arg(keys.join("fci-test-1.asc"))
            .arg(keys.join("fci-test-2.asc"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    });
    let r = compose_fixture(&w, "compose-sed-update", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    let co = checkout(&w, c["data"]["commit"].as_str().unwrap(), "co");
    let keys = rpm_q(&co, &["-q", "gpg-pubkey"]);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert_repo_intact(&w);
}

/// A %post that chowns, chgrps and chmods the files of its package works as under rpm:
/// the sandbox keeps the capabilities over the tree's files (and no other).
#[test]
fn a_post_may_change_owners_and_modes_of_the_trees_files() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-post-chown", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    assert_eq!(c["outcome"], "PASSED", "{c:#}");
    let commit = c["data"]["commit"].as_str().unwrap();
    let (ok, ls) = ostree(&w, &["ls", commit, "/usr/share/compose-post-chown/owned"]);
    assert!(ok, "{ls}");
    let f: Vec<&str> = ls.split_whitespace().collect();
    assert_eq!(&f[..3], ["-00640", "1", "2"], "{ls}");
    let (_, ls) = ostree(&w, &["ls", "-d", commit, "/usr/share/compose-post-chown"]);
    assert_eq!(ls.split_whitespace().nth(2), Some("3"), "{ls}");
    assert_repo_intact(&w);
}

/// A base package's %transfiletriggerin fires when the change installs a file below its
/// prefix (as rpm fires it): run in the new tree with the tree's files there on stdin, after
/// the change's own scriptlets, and the index it rewrites (its own file) may change. A change
/// with no file there does not fire it.
#[test]
fn a_base_packages_file_trigger_runs_when_the_change_installs_below_its_prefix() {
    let w = Ws::new();
    let built = w.build_fixture("base-indexer", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let rpm = first_rpm(&w, &built);
    init_base_with(&w, &["--no-kernel"], None, |base| {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(base)
            .args(["--dbpath", "/usr/lib/sysimage/rpm", "-i", "--nodeps"])
            .args(["--noscripts", "--notriggers", "--force-debian"])
            .arg(&rpm)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // What the trigger made when the base was composed: its %ghost index.
        std::fs::write(base.join("usr/share/fci-index/index.cache"), "none\n").unwrap();
    });
    let r = compose_fixture(&w, "compose-indexed-plugin", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    assert_eq!(
        c["data"]["scriptlets"],
        serde_json::json!(["base-indexer (base) %transfiletriggerin"]),
        "{c:#}"
    );
    assert!(c["data"].get("scriptlets_not_run").is_none(), "{c:#}");
    let commit = c["data"]["commit"].as_str().unwrap();
    let (ok, index) = ostree(&w, &["cat", commit, "/usr/share/fci-index/index.cache"]);
    assert!(ok, "{index}");
    assert_eq!(index, "/usr/share/fci-index/plugins/plugin-a.idx\n");
    assert_repo_intact(&w);

    // Review Z: the change's own %post writing a file of that base package (not one its
    // trigger rewrote) is a change of the base, trigger or not.
    let r = compose_fixture(&w, "compose-indexed-evil", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 1, "{}{c:#}", r.stderr);
    assert!(
        c["notes"]
            .to_string()
            .contains("modifies or removes base paths: M /usr/share/fci-index/README"),
        "{c:#}"
    );
    // Review AA: nor by a program of its own the trigger runs (its `sort` first on PATH).
    let r = compose_fixture(&w, "compose-indexed-hijack", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 1, "{}{c:#}", r.stderr);
    assert!(
        c["notes"]
            .to_string()
            .contains("M /usr/share/fci-index/README"),
        "{c:#}"
    );
    assert_repo_intact(&w);

    // sed installs nothing below the prefix: the trigger does not run.
    let r = compose_fixture(&w, "compose-sed-update", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    assert!(
        !c["data"]["scriptlets"].to_string().contains("base-indexer"),
        "{c:#}"
    );
}

/// Review Z: a base directory that is not root's (a setgid group directory) or that carries
/// an extended attribute (as SELinux labels every directory of a Fedora base) is the base's
/// still after a compose of a change without scriptlets (a hard-link checkout makes every
/// directory root's, without xattrs); a change is not FAILED for it.
#[test]
fn base_directories_keep_their_owners_and_xattrs_through_a_compose() {
    for xattr in [false, true] {
        let w = Ws::new();
        init_base_with(&w, &["--no-kernel"], None, |base| {
            // A link of another owner (a hard-link checkout makes links root's too).
            std::os::unix::fs::symlink("busybox", base.join("usr/bin/lnk-owned")).unwrap();
            std::os::unix::fs::lchown(base.join("usr/bin/lnk-owned"), Some(1), Some(1)).unwrap();
            let d = base.join("usr/libexec/utempter");
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::chown(&d, Some(0), Some(5)).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o2755)).unwrap();
            if xattr {
                // The test binary's worlds are keyed by the tree's files, not its xattrs: a
                // file of its own keeps this base from standing for the other.
                std::fs::write(base.join("usr/share/fci-xattr-base"), "").unwrap();
                let out = Command::new("setfattr")
                    .args(["-n", "user.fci-label", "-v", "labelled"])
                    .arg(base.join("usr/share"))
                    .output();
                // setfattr (attr) may be missing: then Python sets it.
                if !out.is_ok_and(|o| o.status.success()) {
                    let ok = Command::new("python3")
                        .args([
                            "-c",
                            "import os,sys; os.setxattr(sys.argv[1], 'user.fci-label', b'labelled')",
                        ])
                        .arg(base.join("usr/share"))
                        .status()
                        .unwrap();
                    assert!(ok.success());
                }
            }
        });
        let r = compose_fixture(&w, "compose-indexed-plugin", &[]);
        let c = compose_stage(&r);
        assert_eq!(r.code, 0, "xattr {xattr}: {}{c:#}", r.stderr);
        let commit = c["data"]["commit"].as_str().unwrap();
        let (_, ls) = ostree(&w, &["ls", "-d", commit, "/usr/libexec/utempter"]);
        let f: Vec<&str> = ls.split_whitespace().collect();
        assert_eq!(&f[..3], ["d02755", "0", "5"], "{ls}");
        if xattr {
            let (_, ls) = ostree(&w, &["ls", "-d", "-X", commit, "/usr/share"]);
            assert!(ls.contains("user.fci-label"), "{ls}");
        }
        assert_repo_intact(&w);
    }
}

/// Review Z: a scriptlet leaving a name OSTree cannot commit is the change's failure (FAILED,
/// naming it); a repository missing an object of the base is the host's (ERROR), never the
/// caller's "no rpm database".
#[test]
fn a_name_ostree_cannot_commit_is_failed_and_a_damaged_repository_is_an_error() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-post-badname", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 1, "{}{c:#}", r.stderr);
    assert!(
        c["notes"].to_string().contains("a name that is not UTF-8"),
        "{c:#}"
    );
    let (ok, ls) = ostree(
        &w,
        &["ls", "-C", &base, "/usr/lib/sysimage/rpm/rpmdb.sqlite"],
    );
    assert!(ok, "{ls}");
    let sum = ls.split_whitespace().nth(4).unwrap();
    let object = repo(&w)
        .join("objects")
        .join(&sum[..2])
        .join(format!("{}.file", &sum[2..]));
    std::fs::remove_file(&object).unwrap();
    let r = compose_fixture(&w, "compose-indexed-plugin", &["--no-cache"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        !r.stderr.contains("has no /usr/lib/sysimage/rpm"),
        "{}",
        r.stderr
    );
}

/// Review AA: ldconfig's temporary file left in a base (a scriptlet made one) is never
/// written in place: it is a repository object in a hard-link checkout.
#[test]
fn a_loader_cache_temporary_in_the_base_is_never_written_in_place() {
    let w = Ws::new();
    let base = init_base_with(&w, &["--no-kernel"], None, |base| {
        std::fs::write(base.join("usr/etc/ld.so.cache~"), "junk\n").unwrap();
    });
    let r = compose_fixture(&w, "compose-indexed-plugin", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    assert_repo_intact(&w);
    let (ok, junk) = ostree(&w, &["cat", &base, "/usr/etc/ld.so.cache~"]);
    assert!(ok && junk == "junk\n", "{junk}");
}

/// Review AA: a package with /var directories updates one whose earlier version fci composed
/// (its tmpfiles.d file is in the base): the new version's file replaces it.
#[test]
fn an_update_of_a_package_with_var_directories_replaces_its_tmpfiles() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let r = compose_fixture(&w, "compose-varpkg-1", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    let c1 = c["data"]["commit"].as_str().unwrap().to_string();
    // Promoted (as report --promote moves the ref).
    let (ok, out) = ostree(&w, &["reset", "fci/f41/known-good", &c1]);
    assert!(ok, "{out}");
    let r = compose_fixture(&w, "compose-varpkg-2", &[]);
    let c = compose_stage(&r);
    assert_eq!(r.code, 0, "{}{c:#}", r.stderr);
    let c2 = c["data"]["commit"].as_str().unwrap();
    let (ok, conf) = ostree(
        &w,
        &["cat", c2, "/usr/lib/tmpfiles.d/fci-compose-varpkg.conf"],
    );
    assert!(ok, "{conf}");
    assert!(conf.contains("/var/cache/compose-varpkg"), "{conf}");
    assert!(conf.contains("/var/lib/compose-varpkg"), "{conf}");
    assert_repo_intact(&w);
}

/// Review AA: a compose is reused only under the same limits and timeout (its scriptlets'
/// verdict depends on them), and only while its commit is still in the repository.
#[test]
fn a_compose_is_reused_only_with_its_limits_and_while_its_commit_exists() {
    let w = Ws::new();
    init_base_with(&w, &["--no-kernel"], None, |_| {});
    let built = w.build_fixture("compose-post-ok", &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let p = w.save("built.json", &built.manifest());
    let compose = |extra: &[&str]| {
        let mut args = vec!["compose", "--branch", "f41"];
        args.extend_from_slice(extra);
        args.extend(["-m", p.to_str().unwrap()]);
        let r = w.run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r
    };
    let reused = |r: &Run| compose_stage(r)["data"].get("cached_from_run").is_some();
    let first = compose(&[]);
    assert!(!reused(&first), "{}", first.stderr);
    assert!(reused(&compose(&[])));
    assert!(!reused(&compose(&["--max-memory", "3G"])));
    assert!(!reused(&compose(&["--timeout", "7m"])));
    // The commit pruned away: made again.
    let c = compose_stage(&first);
    let commit = c["data"]["commit"].as_str().unwrap();
    let refname = c["data"]["ref"].as_str().unwrap();
    let (ok, out) = ostree(&w, &["refs", "--delete", refname]);
    assert!(ok, "{out}");
    let (ok, out) = ostree(&w, &["prune", "--refs-only"]);
    assert!(ok, "{out}");
    let (gone, _) = ostree(&w, &["show", commit]);
    assert!(!gone, "{commit} still in the repository");
    let again = compose(&[]);
    assert!(!reused(&again), "{}", again.stderr);
    let c = compose_stage(&again);
    let remade = c["data"]["commit"].as_str().unwrap();
    let (ok, out) = ostree(&w, &["show", remade]);
    assert!(ok, "{out}");
}
