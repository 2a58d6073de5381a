//! The `openpalm` command. Each subcommand lives in its own module under `cmd/`.

use clap::Parser;
use std::process::ExitCode;

mod cmd;

/// OpenPalm: open palm biometrics.
#[derive(Parser, Debug)]
#[command(name = "openpalm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
