use clap::Parser;
use fci::cli::{Cli, Command};
use fci::error::exit_code_of;
use fci::stage::Io;

fn main() {
    // The sandbox helper runs before clap: its arguments are a command line to exec.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "__sandbox") {
        if let Err(e) = fci::sandbox::helper(&raw[2..]) {
            eprintln!("fci: error: {e:#}");
            std::process::exit(exit_code_of(&e));
        }
        return;
    }
    let cli = Cli::parse();
    fci::progress::set_quiet(cli.quiet);
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "fci: error: {}",
                fci::exec::redact(&fci::error::one_line(&e))
            );
            exit_code_of(&e)
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Build(a) => fci::stages::build::run(&fci::stages::build::BuildOpts {
            io: Io {
                manifest: a.io.manifest,
                output: a.io.output,
            },
            source: a.source,
            git_ref: a.git_ref,
            workspace: cli.workspace,
            lookaside: a.lookaside,
            backend: a.backend,
            mock_config: a.mock_config,
            dist: a.dist,
            branch: a.branch,
            spec: a.spec,
            defines: a.defines,
            strict_builddeps: a.strict_builddeps,
            nocheck: a.nocheck,
            timeout: fci::cli::timeout(a.timeout),
            no_cache: a.io.no_cache,
        }),
        Command::Test(a) => fci::stages::test::run(&fci::stages::test::TestOpts {
            io: Io {
                manifest: a.io.manifest,
                output: a.io.output,
            },
            workspace: cli.workspace,
            runner: a.runner,
            tags: a.tags,
            retries: a.retries,
            failed_only: a.failed_only,
            base_root: a.base_root,
            network: a.network,
            tests_from: a.tests_from,
            force: a.force,
            timeout: fci::cli::timeout(a.timeout),
            no_cache: a.io.no_cache,
        }),
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
