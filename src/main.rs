use fci::cli::{Cli, Command, Shell};
use fci::error::exit_code_of;

fn main() {
    // The sandbox helper runs before clap: its arguments are a command line to exec.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "__sandbox") {
        if let Err(e) = fci::sandbox::helper(&raw[2..]) {
            fci::progress::say(&format!("error: {}", fci::error::one_line(&e)));
            std::process::exit(exit_code_of(&e));
        }
        return;
    }
    // First of all, and not in the sandbox helper (which hands bwrap its seccomp program by
    // number): what fci's caller left open is not package code's to write to.
    fci::exec::close_inherited_on_exec();
    // Before any thread starts: fci's mounts (package code's volumes) are its own, and go
    // with it however it ends.
    fci::volume::private_mounts();
    // Before anything can print them: the credentials in fci's arguments and variables.
    fci::redact::register_secrets_of_invocation();
    // A bug in fci (a panic, in any thread) is the host's failure, never a verdict: one line
    // and exit 3, as for any other infrastructure error.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        fci::progress::say(&format!(
            "error: internal error{at}: {} (a bug in fci, not in the package: please report it)",
            fci::redact::redact(&what).escape_debug()
        ));
        std::process::exit(fci::error::exit::INFRA);
    }));
    // The hook's own test (tests/bad_input.rs): no input is meant to make fci panic.
    if raw.get(1).is_some_and(|a| a == "__panic") {
        panic!("a deliberate panic (`fci __panic`)\nsecond line");
    }
    let cli = Cli::parse();
    fci::progress::set_quiet(cli.quiet);
    fci::progress::set_verbose(cli.verbose);
    if let Some(state) = &cli.state {
        // Absolute, as the workspace records it: relative to where fci was started.
        let state = std::env::current_dir()
            .map(|d| d.join(state))
            .unwrap_or_else(|_| state.clone());
        fci::workspace::set_state_dir(state);
    }
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            fci::progress::say(&format!(
                "error: {}",
                fci::redact::redact(&fci::error::one_line(&e))
            ));
            exit_code_of(&e)
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    // Every stage sends its messages to FCI_AMQP_URL: never a password in clear to another host.
    if !matches!(cli.command, Command::Completions { .. }) {
        if let Some(u) = std::env::var("FCI_AMQP_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            fci::net::refuse_clear_credentials("FCI_AMQP_URL", &u, false)
                .map_err(fci::error::FciError::Usage)?;
        }
    }
    match cli.command {
        Command::Watch(a) => fci::stages::watch::exec(a, &cli.workspace),
        Command::Build(a) => fci::stages::build::exec(a, &cli.workspace),
        Command::Test(a) => fci::stages::test::exec(a, &cli.workspace),
        Command::Compose(a) => match a.moved()? {
            Some(base) => fci::stages::compose::base::exec(base, &cli.workspace),
            None => fci::stages::compose::exec(a, &cli.workspace),
        },
        Command::Integrate(a) => fci::stages::integrate::exec(a, &cli.workspace),
        Command::Conform(a) => fci::stages::conform::exec(a, &cli.workspace),
        Command::Image(a) => fci::stages::image::exec(a, &cli.workspace),
        Command::Smoke(a) => fci::stages::smoke::exec(a, &cli.workspace),
        Command::Report(a) => match a.moved()? {
            Some(gating) => fci::gating::cli::exec(gating, &cli.workspace),
            None => fci::stages::report::exec(*a, &cli.workspace),
        },
        Command::Gating(a) => fci::gating::cli::exec(a, &cli.workspace),
        Command::Base(a) => fci::stages::compose::base::exec(a, &cli.workspace),
        Command::Bundle(a) => fci::bundle::exec_bundle(a, &cli.workspace),
        Command::Unbundle(a) => fci::bundle::exec_unbundle(a, &cli.workspace),
        Command::Fsck(a) => fci::fsck::exec(a, &cli.workspace),
        Command::Gc(a) => fci::gc::exec(a, &cli.workspace),
        Command::Verify(a) => fci::verify::exec(a, &cli.workspace),
        Command::Completions { shell } => {
            use std::io::Write;
            std::io::stdout().write_all(completion_script(shell))?;
            Ok(0)
        }
    }
}

/// The completion scripts as generated into `completions/` (tests/generated_docs.rs keeps them
/// current), built in: no generator ships with fci.
fn completion_script(shell: Shell) -> &'static [u8] {
    match shell {
        Shell::Bash => include_bytes!("../completions/fci.bash"),
        Shell::Elvish => include_bytes!("../completions/fci.elv"),
        Shell::Fish => include_bytes!("../completions/fci.fish"),
        Shell::PowerShell => include_bytes!("../completions/_fci.ps1"),
        Shell::Zsh => include_bytes!("../completions/_fci"),
    }
}
