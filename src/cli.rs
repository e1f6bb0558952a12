//! The command line: global flags and the subcommands. Each stage owns its flags (`Args` in
//! `stages/<stage>/mod.rs`, with the shared `stage::CommonArgs` flattened in).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes: 0 passed, 1 the stage's tests or build failed (or a skipped stage's upstream
/// failed), 2 bad usage or input, 3 infrastructure error (missing tool, crashed tool, ERROR).
#[derive(Parser, Debug)]
#[command(
    name = "fci",
    version,
    about = "Run an OS distribution's package CI pipeline, one stage at a time",
    long_about = None,
    after_help = "Each stage reads a JSON manifest (-m FILE, or stdin) and writes the updated one (-o FILE, or stdout):\n  fci build ./rpms/hello | fci test\n\nExit codes: 0 passed; 1 the build or tests failed (a skipped stage repeats its upstream's 1);\n2 bad usage or input; 3 infrastructure error (missing or crashed tool, ERROR outcome)."
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
    /// No progress or summaries on stderr (errors are still printed)
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

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
    Report(crate::stages::report::Args),
    /// Gating without a run: decide from files, check a gating.yaml, waive a test case
    Gating(crate::gating::cli::Args),
    /// The known-good OSTree base composes build on: make a branch's first one
    Base(crate::stages::compose::base::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
}

/// A macro definition as `NAME=VALUE`, or as rpm's `--define` takes it: `NAME BODY` or a
/// parametric `NAME(OPTS) BODY`. The name keeps its `(OPTS)`, since that is how rpm reads it.
pub fn parse_define(s: &str) -> Result<(String, String), String> {
    let name_end = s
        .find(|c: char| c == '=' || c == '(' || c.is_whitespace())
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(name_end);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid macro name `{name}`: expected NAME=VALUE, NAME BODY or NAME(OPTS) BODY"
        ));
    }
    if let Some(v) = rest.strip_prefix('=') {
        return Ok((name.to_string(), v.to_string()));
    }
    let (opts, body) = match rest.strip_prefix('(') {
        Some(r) => {
            let close = r
                .find(')')
                .ok_or_else(|| format!("macro `{name}`: `(` without `)`"))?;
            (format!("({})", &r[..close]), &r[close + 1..])
        }
        None => (String::new(), rest),
    };
    if !body.starts_with(char::is_whitespace) {
        return Err(format!("macro `{name}{opts}` has no body"));
    }
    Ok((format!("{name}{opts}"), body.trim_start().to_string()))
}

/// Seconds from the command line as a timeout; 0 means none.
pub fn timeout(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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

/// The files under `completions/` and `man/`, as (path, contents), generated from the CLI.
pub fn generated_docs() -> Vec<(String, Vec<u8>)> {
    use clap_complete::Shell;
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/fci.bash"),
        (Shell::Zsh, "completions/_fci"),
        (Shell::Fish, "completions/fci.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut completion_command(), "fci", &mut buf);
        out.push((file.to_string(), buf));
    }
    let cmd = command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("render man page");
    out.push(("man/fci.1".to_string(), buf));
    man_pages(&cmd, "fci", &mut out);
    out
}

/// A man page per subcommand, `man/fci-<sub>.1`, and per subcommand of those
/// (`man/fci-gating-decide.1`).
fn man_pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix}-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .render(&mut buf)
            .expect("render man page");
        out.push((format!("man/{name}.1"), buf));
        man_pages(sub, &name, out);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_define;

    #[test]
    fn defines_take_rpms_forms() {
        assert_eq!(
            parse_define("dist=.fc41").unwrap(),
            ("dist".into(), ".fc41".into())
        );
        assert_eq!(
            parse_define("with_x 1").unwrap(),
            ("with_x".into(), "1".into())
        );
        assert_eq!(
            parse_define("greet(n:) hello %{-n*}").unwrap(),
            ("greet(n:)".into(), "hello %{-n*}".into())
        );
        assert!(parse_define("bad-name=1").is_err());
        assert!(parse_define("greet(n: x").is_err());
        assert!(parse_define("nobody").is_err());
    }
}

/// A duration as `SECS`, or a number with `s`, `m`, `h` or `d` (`90m`, `6h`, `1d`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 3600, 90m, 6h, 1d)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    // A hundred years is forever for a pipeline, and keeps every date computable.
    n.checked_mul(mult)
        .filter(|secs| *secs <= 100 * 365 * 86400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is longer than 100 years"))
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn durations() {
        use super::parse_duration as p;
        assert_eq!(p("90").unwrap().as_secs(), 90);
        assert_eq!(p("90m").unwrap().as_secs(), 5400);
        assert_eq!(p("6h").unwrap().as_secs(), 21600);
        assert_eq!(p("1d").unwrap().as_secs(), 86400);
        assert!(p("6x").is_err());
        assert!(p("h").is_err());
        assert!(p("").is_err());
        assert!(p("100000000000000").is_err());
        assert!(p("36501d").is_err());
    }
}
