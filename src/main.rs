use clap::Parser;
use fci::cli::{Cli, Command};
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
    // Before any thread starts: fci's mounts (package code's volumes) are its own, and go
    // with it however it ends.
    fci::volume::private_mounts();
    // Before anything can print them: the credentials in fci's arguments and variables.
    fci::redact::register_secrets_of_invocation();
    let cli = Cli::parse();
    fci::progress::set_quiet(cli.quiet);
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
        Command::Compose(a) => fci::stages::compose::exec(a, &cli.workspace),
        Command::Integrate(a) => fci::stages::integrate::exec(a, &cli.workspace),
        Command::Conform(a) => fci::stages::conform::exec(a, &cli.workspace),
        Command::Image(a) => fci::stages::image::exec(a, &cli.workspace),
        Command::Smoke(a) => fci::stages::smoke::exec(a, &cli.workspace),
        Command::Report(a) => fci::stages::report::exec(a, &cli.workspace),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut fci::cli::command(),
                "fci",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    }
}
