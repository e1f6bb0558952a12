//! `fci report --promote` as the promotion tests drive it: a gating policy for the
//! `fci_promote` decision context, and the known-good ref it moves.

use super::{Run, Ws};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Gating on the build and the compose (what every promotion needs).
pub const COMPOSE_GATING: &str = "--- !Policy\n\
    id: compose\n\
    decision_context: fci_promote\n\
    rules:\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.build.validation}\n\
    \x20 - !PassingTestCaseRule {test_case_name: fedora-ci.koji-build.compose.validation}\n";

/// `fci report --promote` of manifest `m` (saved as `name`) under the policy `gating`.
pub fn promote_with(w: &Ws, m: &Value, name: &str, gating: &str) -> Run {
    let p = w.save(name, m);
    let g = w.path().join(format!("gating-{name}.yaml"));
    std::fs::write(&g, gating).unwrap();
    w.run(&[
        "report",
        "-m",
        p.to_str().unwrap(),
        "--gating",
        g.to_str().unwrap(),
        "--decision-context",
        "fci_promote",
        "--promote",
    ])
}

/// `ostree --repo=REPO ARGS`, which must succeed: its trimmed stdout.
pub fn ostree_in(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The commit f41's known-good ref names in `repo` (which must have it).
pub fn known_good_in(repo: &Path) -> String {
    ostree_in(repo, &["rev-parse", "fci/f41/known-good"])
}
