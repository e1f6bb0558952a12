//! `fci verify` of a whole chain (issue 18: under a second): the example built from a dist-git
//! commit, composed and imaged with the pipeline's key, then `fci verify -m` from the image
//! back to the commit (every envelope's signature, every link's digest, the image, RPMs and
//! commit object hashed, the policy) against the raw floor of the same check: `sha256sum` of
//! the same bytes. Prints both medians and their ratio, measured in this run. Run: `cargo
//! bench --bench verify_chain`; `cargo test` runs it once (quick mode).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{median, ms, time, Target};

fn run(c: &mut Command, what: &str) -> String {
    let out = c.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) {
    run(
        Command::new("git")
            .args(["-c", "user.name=fci", "-c", "user.email=fci@example.org"])
            .args(args)
            .current_dir(dir),
        "git",
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fci = env!("CARGO_BIN_EXE_fci");
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let key = s.join("key.pem");
    let public = s.join("pub.pem");
    run(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key),
        "openssl genpkey",
    );
    run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
        "openssl pkey",
    );
    let base = s.join("base");
    run(
        Command::new(root.join("examples/base/make-base.sh")).arg(&base),
        "make-base.sh",
    );
    let ws = s.join("ws");
    let fci_cmd = |args: &[&str]| {
        let mut c = Command::new(fci);
        c.arg("--workspace")
            .arg(&ws)
            .arg("--quiet")
            .env("FCI_SIGNING_KEY", &key)
            .args(args);
        c
    };
    run(
        &mut fci_cmd(&["base", "init", base.to_str().unwrap(), "--branch", "f41"]),
        "fci base init",
    );
    let repo = s.join("hello-atomic");
    run(
        Command::new("cp")
            .arg("-r")
            .arg(root.join("examples/hello-atomic"))
            .arg(&repo),
        "cp",
    );
    git(&repo, &["init", "-q", "-b", "f41"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "import"]);
    let mut manifest = s.join("built.json");
    run(
        fci_cmd(&["build"])
            .arg(&repo)
            .args(["--branch", "f41", "--lookaside"])
            .arg(root.join("examples/lookaside"))
            .arg("-o")
            .arg(&manifest),
        "fci build",
    );
    for stage in ["compose", "image"] {
        let out = s.join(format!("{stage}.json"));
        run(
            &mut fci_cmd(&[
                stage,
                "-m",
                manifest.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ]),
            stage,
        );
        manifest = out;
    }
    // The bytes the verification hashes: the image, the RPMs, the commit object, the envelopes.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let mut files: Vec<PathBuf> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| ["image", "rpm", "srpm", "attestation"].contains(&a["type"].as_str().unwrap()))
        .map(|a| ws.join(a["path"].as_str().unwrap()))
        .collect();
    let commit = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "ostree-commit")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    files.push(
        ws.join("ostree/repo/objects")
            .join(&commit[..2])
            .join(format!("{}.commit", &commit[2..])),
    );
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let verify = || {
        run(
            fci_cmd(&[
                "verify",
                "--key",
                public.to_str().unwrap(),
                "--require",
                "check",
                "-m",
            ])
            .arg(&manifest),
            "fci verify",
        );
    };
    let raw = || {
        run(Command::new("sha256sum").args(&files), "sha256sum");
    };
    verify();
    raw();
    let runs = support::runs(15);
    let (mut fci_t, mut raw_t) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        fci_t.push(time(verify));
        raw_t.push(time(raw));
    }
    let (f, r) = (median(fci_t), median(raw_t));
    let ratio = f.as_secs_f64() / r.as_secs_f64();
    println!(
        "fci verify (whole chain) {:>8.1} ms   sha256sum of its {:.1} MiB {:>8.1} ms   ratio {ratio:.3}x  (target: under 1000 ms)",
        ms(f),
        bytes as f64 / 1048576.0,
        ms(r)
    );
    support::record(
        "fci verify of a whole chain (image → commit → RPMs → dist-git), ms",
        ms(f),
        "ms",
        Target::AtMost(1000.0),
        serde_json::json!({"fci_ms": ms(f), "sha256sum_ms": ms(r), "runs": runs, "bytes": bytes}),
    );
    support::record(
        "fci verify / sha256sum of the same bytes",
        ratio,
        "x",
        Target::None,
        serde_json::json!({"fci_ms": ms(f), "sha256sum_ms": ms(r), "runs": runs, "bytes": bytes}),
    );
    support::quick_note();
}
