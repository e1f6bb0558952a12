//! `fci compose` against the raw commands it wraps, doing the same work by hand (hard-link
//! checkout, `rpm -U` with its dependency check, the loader cache rebuilt with `ldconfig -r`,
//! the database read back, `ostree commit` with the base as parent and `ostree diff` against
//! it), and layering one package onto a base of a few thousand
//! files against committing the whole tree afresh. Prints ratios measured in this run (median
//! of several). Run: `cargo bench --bench compose_overhead`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{median, ms, time, Target};

fn run(c: &mut Command, what: &str) -> String {
    let out = c.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{what} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ostree(repo: &Path) -> Command {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display()));
    c
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fci = env!("CARGO_BIN_EXE_fci");
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let extra_files = support::size(3000, 100);
    // A base of a few thousand files.
    let base = s.join("base");
    run(
        Command::new(root.join("examples/base/make-base.sh"))
            .arg("--no-kernel")
            .arg(&base),
        "make-base.sh",
    );
    for i in 0..extra_files {
        let d = base.join(format!("usr/share/bench/{}", i % 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let ws = s.join("ws");
    let fci_cmd = |args: &[&str]| {
        let mut c = Command::new(fci);
        c.arg("--workspace").arg(&ws).arg("--quiet").args(args);
        c
    };
    run(
        &mut fci_cmd(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]),
        "fci base init",
    );
    let manifest = s.join("built.json");
    let built = run(
        fci_cmd(&["build"])
            .arg(root.join("examples/hello-atomic"))
            .args(["--branch", "f41", "--lookaside"])
            .arg(root.join("examples/lookaside"))
            // Only the setup, not what is measured: a scratch limit the machine's free space
            // can hold (fci refuses to start a build whose package code could fill more).
            .args(["--max-scratch", "1G"]),
        "fci build",
    );
    std::fs::write(&manifest, &built).unwrap();
    let m: serde_json::Value = serde_json::from_str(&built).unwrap();
    let rpms: Vec<PathBuf> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rpm")
        .map(|a| ws.join(a["path"].as_str().unwrap()))
        .collect();
    let repo = ws.join("ostree/repo");
    let base_commit = run(
        ostree(&repo).args(["rev-parse", "fci/f41/known-good"]),
        "rev-parse",
    );

    let fci_compose = || {
        run(
            &mut fci_cmd(&["compose", "--no-cache", "-m", manifest.to_str().unwrap()]),
            "fci compose",
        );
    };
    // What compose wraps, by hand.
    let raw_compose = |i: usize| {
        let dest = s.join(format!("raw-{i}"));
        run(
            ostree(&repo)
                .args(["checkout", "-U", "-H", &base_commit])
                .arg(&dest),
            "ostree checkout",
        );
        let db = dest.join("usr/lib/sysimage/rpm");
        for e in std::fs::read_dir(&db).unwrap() {
            let p = e.unwrap().path();
            let copy = p.with_extension("copy");
            std::fs::copy(&p, &copy).unwrap();
            std::fs::rename(&copy, &p).unwrap();
        }
        let rpm = || {
            let mut c = Command::new("rpm");
            c.arg("--root")
                .arg(&dest)
                .args(["--dbpath", "/usr/lib/sysimage/rpm"]);
            c
        };
        run(
            rpm()
                .args(["-U", "--noscripts", "--notriggers", "--force-debian"])
                .args(&rpms),
            "rpm -U",
        );
        run(
            Command::new(dest.join("usr/sbin/ldconfig"))
                // The tree keeps /etc as usr/etc (fci binds it as /etc in its sandbox).
                .args([
                    "-X",
                    "-C",
                    "/usr/etc/ld.so.cache",
                    "-f",
                    "/usr/etc/ld.so.conf",
                    "-r",
                ])
                .arg(&dest),
            "ldconfig -r",
        );
        run(rpm().args(["-qa", "--qf", "%{NEVRA}\n"]), "rpm -qa");
        let commit = run(
            ostree(&repo)
                .args(["commit", &format!("--branch=bench/raw/{i}")])
                .arg(format!("--parent={base_commit}"))
                .arg("--link-checkout-speedup")
                .arg(format!("--tree=dir={}", dest.display())),
            "ostree commit",
        );
        run(
            ostree(&repo).args(["diff", &base_commit, &commit]),
            "ostree diff",
        );
    };
    // The whole tree committed afresh into a new repository (no layering, no dedup).
    let full_tree = s.join("full");
    run(
        ostree(&repo)
            .args(["checkout", "-U", &base_commit])
            .arg(&full_tree),
        "ostree checkout (full)",
    );
    let afresh = |i: usize| {
        let r = s.join(format!("afresh-{i}"));
        run(ostree(&r).args(["init", "--mode=bare-user"]), "ostree init");
        run(
            ostree(&r)
                .args(["commit", "--branch=bench", "--owner-uid=0", "--owner-gid=0"])
                .arg(format!("--tree=dir={}", full_tree.display())),
            "ostree commit (afresh)",
        );
    };

    fci_compose();
    raw_compose(usize::MAX);
    let (mut fci_t, mut raw_t, mut fresh_t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..support::runs(7) {
        fci_t.push(time(fci_compose));
        raw_t.push(time(|| raw_compose(i)));
        fresh_t.push(time(|| afresh(i)));
    }
    let runs = support::runs(7);
    let (f, r, a) = (median(fci_t), median(raw_t), median(fresh_t));
    let (overhead, layered) = (
        f.as_secs_f64() / r.as_secs_f64(),
        f.as_secs_f64() / a.as_secs_f64(),
    );
    println!(
        "fci compose            {:>8.1} ms   raw same work by hand   {:>8.1} ms   ratio {overhead:.3}x  (target <= 1.10x)",
        ms(f), ms(r)
    );
    println!(
        "layered compose        {:>8.1} ms   whole tree afresh       {:>8.1} ms   ratio {layered:.3}x  ({extra_files} extra files in the base)",
        ms(f), ms(a)
    );
    support::record(
        "fci compose --no-cache / checkout+rpm -U+ldconfig+rpm -qa+commit+diff by hand",
        overhead,
        "x",
        Target::AtMost(1.10),
        serde_json::json!({"fci_ms": ms(f), "raw_ms": ms(r), "runs": runs, "base_extra_files": extra_files}),
    );
    support::record(
        "layered compose / whole tree committed afresh",
        layered,
        "x",
        Target::None,
        serde_json::json!({"fci_ms": ms(f), "afresh_ms": ms(a), "runs": runs, "base_extra_files": extra_files}),
    );
    support::quick_note();
}
