//! The command line: global flags and the subcommands. Each stage owns its flags (`Args` in
//! `stages/<stage>/mod.rs`, with the shared `stage::CommonArgs` flattened in).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes: 0 passed, 1 the package's FAILED verdict (its build, its tests, a mistake in its
/// spec, tests or gating.yaml; gating unsatisfied; a stage skipped after a failure), 2 the
/// caller's mistake (flags, an unreadable or tampered manifest), 3 ERROR (a missing or crashed
/// tool, the host's failure).
#[derive(Parser, Debug)]
#[command(
    name = "fci",
    version = VERSION,
    about = "Run an OS distribution's package CI pipeline, one stage at a time",
    long_about = None,
    after_help = "Each stage reads a JSON manifest (-m FILE, or stdin) and writes the updated one (-o FILE, or stdout).\n\n\
Exit codes: 0 passed; 1 the package's FAILED verdict (build, tests, a mistake in its spec, sources,\n\
tests or gating.yaml; gating unsatisfied; a stage skipped after a failure); 2 the caller's mistake\n\
(flags, an unreadable or tampered manifest); 3 ERROR (a missing or crashed tool). `fci report`\n\
exits with the run's verdict. More: man fci, man fci-<stage>, docs/ in the source."
)]
pub struct Cli {
    /// Workspace directory holding artifacts, logs, the cache and locks
    #[arg(
        long,
        global = true,
        env = "FCI_WORKSPACE",
        default_value = ".fci",
        value_name = "DIR"
    )]
    pub workspace: PathBuf,
    /// The pipeline state shared between machines (known-good refs and package set,
    /// exclusions, image schedule, watch heads, waivers, the OSTree repository): a directory
    /// on a shared volume; else fci.yaml's `state:` (of --config, or of the fci.yaml the
    /// manifest names); else the one the workspace recorded; else state/ inside it
    #[arg(long, global = true, env = "FCI_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// No progress or summaries on stderr (errors are still printed)
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Stream the stage's log live to stderr (every command it runs and their output, as
    /// mock does), escaped and with secrets masked
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// fci's version and the commit it was built from (see build.rs): `0.1.0 (abc1234)`, or
/// `0.1.0 (unknown commit)` from a tarball.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FCI_COMMIT"), ")");

impl Cli {
    /// Parses the process's arguments with [`command`]'s command line (each subcommand's help
    /// ending with its example). This inherent function is what `Cli::parse()` calls, in place
    /// of clap's derived `Parser::parse`, which would build the command line without them.
    pub fn parse() -> Self {
        use clap::FromArgMatches;
        let mut cmd = command();
        let mut matches = cmd.clone().get_matches();
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
    }
}

/// The example each command's `--help` ends with, by its path below `fci` (`""` is `fci`
/// itself): appended to the command's own `after_help` by [`command`]. The man pages' EXAMPLES
/// (tests/generated_docs.rs) show more.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "",
        "fci build rpms/hello-atomic --lookaside examples/lookaside \\\n      \
         | fci test | fci report --junit report.xml",
    ),
    (
        "watch",
        "fci watch --config fci.yaml --once --output-dir queue/\n  \
         for m in queue/*.json; do fci build -m \"$m\" | fci test | fci report; done",
    ),
    (
        "build",
        "fci build rpms/hello-atomic --branch f41 --lookaside examples/lookaside \\\n      \
         -o build.json",
    ),
    ("test", "fci test -m build.json -o test.json --retries 2"),
    (
        "compose",
        "fci base init /var/tmp/base --branch f41    # once per branch\n  \
         fci compose -m test.json -o compose.json",
    ),
    (
        "integrate",
        "fci integrate -m compose.json --tests examples/integration -o integrate.json",
    ),
    (
        "conform",
        "fci conform -m compose.json --kubeconfig ~/.kube/config --runner sonobuoy \\\n      \
         -o conform.json",
    ),
    (
        "image",
        "fci image -m integrate.json --format qcow2 -o image.json",
    ),
    (
        "smoke",
        "fci smoke -m image.json --check hello-atomic -o smoke.json",
    ),
    (
        "report",
        "fci report -m smoke.json --gating gating.yaml \\\n      \
         --decision-context bodhi_update_push_stable \\\n      \
         --junit report.xml --html report.html -o final.json",
    ),
    ("gating", "fci gating validate --gating gating.yaml"),
    (
        "gating decide",
        "fci gating decide --gating gating.yaml --results results.json \\\n      \
         --waivers waivers.json --decision-context bodhi_update_push_stable \\\n      \
         --product-version fedora-41 --subject-identifier hello-atomic-1.0-1.fc41",
    ),
    (
        "gating validate",
        "fci gating validate --gating gating.yaml",
    ),
    (
        "gating waive",
        "fci gating waive fedora-ci.koji-build.tier0.functional \\\n      \
         --subject-identifier hello-atomic-1.0-1.fc41 --product-version fedora-41 \\\n      \
         --comment \"flaky on this runner, fixed in 1.0-2\"",
    ),
    ("base", "fci base init /var/tmp/base --branch f41"),
    (
        "base init",
        "examples/base/make-base.sh /var/tmp/base\n  fci base init /var/tmp/base --branch f41",
    ),
    (
        "bundle",
        "fci bundle -m test.json -o run.fci-bundle    # on the CI worker",
    ),
    (
        "unbundle",
        "fci unbundle run.fci-bundle -o test.json    # on your machine\n  \
         fci test -m test.json -o retest.json",
    ),
    (
        "fsck",
        "fci fsck -m final.json    # after a crash: debris is fine, damage exits 1",
    ),
    (
        "gc",
        "fci gc --config fci.yaml --dry-run    # what would go, and how much\n  \
         fci gc --keep-runs 20 --max-size 20G",
    ),
    (
        "verify",
        "fci verify --key pipeline.pub.pem fedora-f41-3f1c0d2a9b7e.qcow2\n  \
         fci verify --key pipeline.pub.pem -m final.json --json",
    ),
    (
        "completions",
        "fci completions bash > /etc/bash_completion.d/fci",
    ),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch the monitored packages' dist-git branches; one manifest per new commit
    Watch(crate::stages::watch::Args),
    /// Build the SRPM and binary RPMs of a dist-git checkout (%check runs)
    Build(crate::stages::build::Args),
    /// Run the package's STI and tmt tests against the RPMs just built
    Test(crate::stages::test::Args),
    /// Commit the known-good OSTree base plus the change's RPMs (only when build and test passed)
    Compose(crate::stages::compose::Args),
    /// Run the pipeline's OS-level tests against the composed commit
    Integrate(crate::stages::integrate::Args),
    /// Install or reach a cluster running the composed tree and run the Kubernetes conformance suite
    Conform(crate::stages::conform::Args),
    /// Make a disk image (qcow2 or raw) of an OSTree deployment of the composed commit
    Image(crate::stages::image::Args),
    /// Boot the image in qemu and check that the composed commit runs
    Smoke(crate::stages::smoke::Args),
    /// Record the run's results and decide its gating (with --gating; --promote acts on it)
    // Boxed: its flags (ResultsDB, WaiverDB, AMQP, outputs) make it the largest by far.
    Report(Box<crate::stages::report::Args>),
    /// Gating without a run: decide from files, check a gating.yaml, waive a test case
    Gating(crate::gating::cli::Args),
    /// The known-good OSTree base composes build on: make a branch's first one
    Base(crate::stages::compose::base::Args),
    /// Write a run's manifest and exactly the artifacts and logs it references to one file
    Bundle(crate::bundle::BundleArgs),
    /// Bring a bundle into this workspace (every digest verified first) and write its manifest
    Unbundle(crate::bundle::UnbundleArgs),
    /// Check the workspace and the pipeline state for damage (0 clean, 1 damage found)
    Fsck(crate::fsck::Args),
    /// Remove what no recent run, known-good base or queued retest needs (objects, cache, old records, OSTree refs)
    Gc(crate::gc::Args),
    /// Check an image's, commit's or RPM's signed chain back to its dist-git commit, and the policy
    Verify(crate::verify::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions { shell: Shell },
}

/// A shell `fci completions` prints the script of: the scripts under `completions/`, made by
/// `tests/generated_docs.rs` (so that the binary does not carry a generator) and built in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Elvish,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Zsh,
}

/// fci's command line: the derived one, each command's help ending with its example
/// ([`EXAMPLES`]).
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for (path, example) in EXAMPLES {
        cmd = with_example(cmd, &path.split_whitespace().collect::<Vec<_>>(), example);
    }
    cmd
}

/// `cmd` with `example` after the help of its subcommand at `path` (itself when empty).
fn with_example(cmd: clap::Command, path: &[&str], example: &str) -> clap::Command {
    match path {
        [] => {
            let after = match cmd.get_after_help() {
                Some(h) => format!("{h}\n\n"),
                None => String::new(),
            };
            cmd.after_help(format!("{after}Example:\n  {example}"))
        }
        [first, rest @ ..] => cmd.mut_subcommand(*first, |s| with_example(s, rest, example)),
    }
}

/// The command line completions offer: without the hidden spellings kept for a release
/// (clap_complete offers hidden flags by design), so a leaf subcommand with hidden flags is
/// rebuilt from its visible ones.
pub fn completion_command() -> clap::Command {
    let mut cmd = command();
    let leaves: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.has_subcommands() && s.get_arguments().any(|a| a.is_hide_set()))
        .map(|s| s.get_name().to_string())
        .collect();
    for name in leaves {
        cmd = cmd.mut_subcommand(name, |s| {
            let visible: Vec<clap::Arg> = s
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .cloned()
                .collect();
            let new = clap::Command::new(s.get_name().to_string()).args(visible);
            match s.get_about() {
                Some(about) => new.about(about.clone()),
                None => new,
            }
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    /// Every time flag takes a duration with units as well as plain seconds, and refuses a bad
    /// one as a bad value (clap's usage error, exit 2), whatever else its stage requires.
    #[test]
    fn every_duration_flag_takes_units() {
        use clap::error::ErrorKind;
        let cmd = super::command();
        let mut seen = 0;
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                // Durations: timeouts, intervals, and gc's ages (--max-age, --grace).
                let timed = long.ends_with("timeout")
                    || long.ends_with("interval")
                    || long == "max-age"
                    || long == "grace";
                let names = arg.get_value_names().unwrap_or_default();
                let is_duration = names.iter().any(|n| n.as_str() == "DURATION");
                assert_eq!(timed, is_duration, "{} --{long}", sub.get_name());
                if !is_duration {
                    continue;
                }
                seen += 1;
                for (value, good) in [("1h30m", true), ("4h", true), ("600", true), ("4x", false)] {
                    let r = sub.clone().try_get_matches_from([
                        sub.get_name().to_string(),
                        format!("--{long}"),
                        value.to_string(),
                    ]);
                    let bad_value = r
                        .as_ref()
                        .err()
                        .is_some_and(|e| e.kind() == ErrorKind::ValueValidation);
                    assert_eq!(
                        !bad_value,
                        good,
                        "{} --{long} {value}: {r:?}",
                        sub.get_name()
                    );
                }
            }
        }
        // build, test, integrate, compose, image (2), smoke, conform (4), watch (2), gc (2)
        assert_eq!(seen, 15);
    }
}
